//! The sharing clock against a model of its rule (issue 22): while `n` calls
//! are in flight on an endpoint with `k` instances serving `m` calls each at
//! full speed, each in-flight call is allocated `min(1/m, k/n)` of an instance
//! per unit of wall time. A call is in flight only while one of its attempts
//! is; its billed share is the sum over its billed stretches, its latest share
//! that of its latest stretch; a dropped call just leaves.
//!
//! The model sweeps the events in exact rationals: times in whole ms, shares
//! in 27,720ths of an instance-ms (27,720 = lcm(1..=12): with at most 12 calls
//! and `m` ≤ 4, every `min(1/m, k/n)` × whole ms is a whole number of them). It
//! adds each stretch to every call in flight, not through one clock reading
//! per call as the code does. Time is the clock's: a reading behind its last
//! event (a call that waited for the lock, a time read a while ago) is taken
//! to be at it; one more than a second behind (not read a while ago) is the
//! wall clock stepping back, and time goes on from it, nothing elapsed.
//!
//! With a provisioned concurrency of `p` slots (or none known), the model also
//! says which attempts hold a slot: one that goes out while fewer than `p`
//! are held takes one (any, when none is known), and gives it back as it
//! steps off or its call leaves or is dropped; a call's slots busy as it
//! joined are those held then.

use super::{CallShare, EndpointSlot, Totals};
use proptest::prelude::*;
use proptest::sample::Index;
use rust_decimal::Decimal;
use std::time::{Duration, SystemTime};

/// The most calls a case joins.
const MAX_CALLS: usize = 12;

/// 27,720ths of an instance-ms: the model's unit of share.
const PARTS: u128 = 27_720;

/// Femtoseconds in a ms.
const FS_PER_MS: u128 = 1_000_000_000_000;

/// The first event's time, in ms: room for readings behind it, the wall
/// clock's steps back included (at most 40 events × 3 s, + 3 s + 5 ms).
const START_MS: u64 = 1_000_000;

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
}

/// What happens to the clock; a call is picked among those still held.
#[derive(Debug, Clone)]
enum Op {
    Join,
    StepOff {
        call: Index,
        billed: bool,
    },
    /// With `backing_off`, of the calls between attempts when there are any.
    Rejoin {
        call: Index,
        backing_off: bool,
    },
    LeaveAt {
        call: Index,
    },
    /// A time read `back_ms` before the event's (a stream's last part).
    LeaveLate {
        call: Index,
        back_ms: u64,
    },
    End {
        call: Index,
        latest: bool,
    },
    Drop {
        call: Index,
    },
    Instances(u32),
}

/// An event `after_ms` after the previous one (now and then hours), its clock
/// read `lag_ms` before it (a call that waited for the totals' lock): readings
/// are then slightly out of order, though events are not. The wall clock steps
/// back `step_back_ms` first (NTP, a VM resumed), and stays behind by it from
/// then on.
#[derive(Debug, Clone)]
struct Event {
    after_ms: u64,
    lag_ms: u64,
    step_back_ms: u64,
    op: Op,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Join),
        3 => (any::<Index>(), any::<bool>())
            .prop_map(|(call, billed)| Op::StepOff { call, billed }),
        3 => (any::<Index>(), any::<bool>())
            .prop_map(|(call, backing_off)| Op::Rejoin { call, backing_off }),
        2 => any::<Index>().prop_map(|call| Op::LeaveAt { call }),
        1 => (any::<Index>(), 0u64..3_000)
            .prop_map(|(call, back_ms)| Op::LeaveLate { call, back_ms }),
        2 => (any::<Index>(), any::<bool>())
            .prop_map(|(call, latest)| Op::End { call, latest }),
        1 => any::<Index>().prop_map(|call| Op::Drop { call }),
        1 => instances().prop_map(Op::Instances),
    ]
}

/// Instances, mostly few: more calls than `k·m` happen then.
fn instances() -> impl Strategy<Value = u32> {
    prop_oneof![2 => 0u32..=1, 1 => 2u32..=4]
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop_oneof![4 => Just(0u64), 12 => 1u64..=50, 1 => 1u64..=36_000_000],
        prop_oneof![3 => Just(0u64), 1 => 1u64..=5],
        prop_oneof![40 => Just(0u64), 1 => 1u64..=3_000],
        op(),
    )
        .prop_map(|(after_ms, lag_ms, step_back_ms, op)| Event {
            after_ms,
            lag_ms,
            step_back_ms,
            op,
        })
}

/// A call in the model. Shares in [`PARTS`]; `*_steps` count the stretches
/// between clock events (of positive length, some call in flight) the share
/// spans, each of which the code may round down by less than 1 fs.
#[derive(Debug, Default)]
struct ModelCall {
    on: bool,
    /// Its attempt in flight holds a slot of the provisioned concurrency.
    on_slot: bool,
    left: bool,
    dropped: bool,
    /// The current stretch: its share so far, its steps, its wall time (ms).
    current: u128,
    current_steps: u128,
    current_ms: u128,
    billed: u128,
    billed_steps: u128,
    /// Wall time of the billed stretches, in ms, as the clock counted it.
    billed_ms: u128,
    latest: u128,
    latest_steps: u128,
    /// The slots busy as its first billed attempt went out (its latest, until
    /// one is billed): the call's rate.
    busy_at_start: u32,
    billed_yet: bool,
}

/// When a call leaves in the model.
#[derive(Debug, Clone, Copy)]
enum Leave {
    Now(u64),
    Late(u64),
    /// Dropped: at the clock's last event, which it does not move.
    Dropped,
}

#[derive(Debug)]
struct Model {
    m: u128,
    k: u32,
    /// The provisioned concurrency (`None`: not known, every attempt takes a
    /// slot).
    slots: Option<u32>,
    /// The clock's last event: a reading before it is taken to be at it.
    last: Option<u64>,
    calls: Vec<ModelCall>,
    /// A call in flight from the start, in [`PARTS`], and its steps.
    always: u128,
    steps: u128,
    /// Instance-ms while some call was in flight (`max(k, 1)` × ms).
    busy_instance_ms: u128,
    /// Everything allocated to every call, in [`PARTS`].
    allocated: u128,
}

impl Model {
    fn new(m: u32, slots: Option<u32>) -> Self {
        Model {
            m: u128::from(m),
            k: 0,
            slots,
            last: None,
            calls: Vec::new(),
            always: 0,
            steps: 0,
            busy_instance_ms: 0,
            allocated: 0,
        }
    }

    fn in_flight(&self) -> u32 {
        self.calls.iter().filter(|c| c.on).count() as u32
    }

    fn on_slots(&self) -> u32 {
        self.calls.iter().filter(|c| c.on_slot).count() as u32
    }

    /// An attempt goes out: the slots busy before it, and whether it takes one.
    fn take_slot(&self) -> (u32, bool) {
        let busy = self.on_slots();
        (busy, self.slots.is_none_or(|p| busy < p))
    }

    /// Time moves to `reading`: a reading at or before the last event adds
    /// nothing and leaves the last event where it is, unless it is more than a
    /// second before it: the wall clock stepped back, and time goes on from the
    /// reading (nothing elapsed either).
    fn advance(&mut self, reading: u64) {
        let Some(last) = self.last else {
            self.last = Some(reading);
            return;
        };
        if reading <= last {
            if last - reading > 1_000 {
                self.last = Some(reading);
            }
            return;
        }
        let ms = u128::from(reading - last);
        // k = 0 (profile not known) counts as one instance.
        let k = u128::from(self.k.max(1));
        // k/n of an instance per ms, in PARTS: none while no call is in flight.
        if let Some(k_nths) = (PARTS * k).checked_div(u128::from(self.in_flight())) {
            // min(1/m, k/n).
            let rate = (PARTS / self.m).min(k_nths);
            for call in self.calls.iter_mut().filter(|c| c.on) {
                call.current += ms * rate;
                call.current_steps += 1;
                call.current_ms += ms;
                self.allocated += ms * rate;
            }
            self.always += ms * rate;
            self.steps += 1;
            self.busy_instance_ms += ms * k;
        }
        self.last = Some(reading);
    }

    /// Returns the slots busy as the call joined.
    fn join(&mut self, reading: u64) -> u32 {
        self.advance(reading);
        let (busy, on_slot) = self.take_slot();
        self.calls.push(ModelCall {
            on: true,
            on_slot,
            busy_at_start: busy,
            ..ModelCall::default()
        });
        busy
    }

    /// Call `i`'s current stretch ends at the last event.
    fn off(&mut self, i: usize, billed: bool) {
        let call = &mut self.calls[i];
        call.on = false;
        call.on_slot = false;
        call.latest = std::mem::take(&mut call.current);
        call.latest_steps = std::mem::take(&mut call.current_steps);
        let ms = std::mem::take(&mut call.current_ms);
        if billed {
            call.billed += call.latest;
            call.billed_steps += call.latest_steps;
            call.billed_ms += ms;
            call.billed_yet = true;
        }
    }

    /// Returns whether anything changed.
    fn step_off(&mut self, i: usize, reading: u64, billed: bool) -> bool {
        if !self.calls[i].on {
            return false;
        }
        self.advance(reading);
        self.off(i, billed);
        true
    }

    fn rejoin(&mut self, i: usize, reading: u64) -> bool {
        if self.calls[i].left || self.calls[i].on {
            return false;
        }
        self.advance(reading);
        let (busy, on_slot) = self.take_slot();
        let call = &mut self.calls[i];
        call.on = true;
        call.on_slot = on_slot;
        if !call.billed_yet {
            call.busy_at_start = busy;
        }
        true
    }

    /// Call `i` leaves (see [`Leave`]); an attempt still in flight is billed.
    fn leave(&mut self, i: usize, at: Leave) -> bool {
        let call = &mut self.calls[i];
        if std::mem::replace(&mut call.left, true) || !call.on {
            return false;
        }
        match (at, self.last) {
            (Leave::Now(reading), _) => self.advance(reading),
            // A time read a while ago: at the last event when before it, never
            // taken for the wall clock stepping back.
            (Leave::Late(at), Some(last)) => self.advance(at.max(last)),
            (Leave::Late(at), None) => self.advance(at),
            (Leave::Dropped, _) => {}
        }
        self.off(i, true);
        true
    }

    fn set_instances(&mut self, k: u32, reading: u64) -> bool {
        if k == self.k {
            return false;
        }
        self.advance(reading);
        self.k = k;
        true
    }
}

/// Instance-hours at 18 places as a count of 10⁻¹⁸ h.
fn atto_hours(share: Decimal) -> Result<u128, TestCaseError> {
    prop_assert!(share.scale() <= 18 && !share.is_sign_negative(), "{share}");
    let mut share = share;
    share.rescale(18);
    Ok(u128::try_from(share.mantissa()).unwrap_or_default())
}

/// A share given (`got`) against the model's exact one (`want`, in [`PARTS`]),
/// over `steps` clock steps.
///
/// Exactly, the share is S = want / PARTS ms = want·10¹² / PARTS fs, and in
/// 10⁻¹⁸ h, rounded down at 18 places as documented, ⌊S / 3.6⌋ = ⌊want·10¹³ /
/// (36·PARTS)⌋. The code rounds each step's advance down to whole fs, so it is
/// short of S by less than 1 fs a step: S − steps ≤ fs ≤ S. Then
/// ⌊10·fs / 36⌋ ≥ (10·(S − steps) − 35) / 36, so got ≤ ⌊10·S / 36⌋ and
/// 36 × (⌊10·S / 36⌋ − got) ≤ 10 × steps + 35: never more than the exact share,
/// and short of it by at most (10·steps + 35) / 36 atto-hours.
fn check_share(got: Decimal, want: u128, steps: u128, what: &str) -> Result<u128, TestCaseError> {
    let got = atto_hours(got)?;
    let exact = want * 10 * FS_PER_MS / (PARTS * 36);
    prop_assert!(got <= exact, "{what}: {got} > {exact} (10⁻¹⁸ h)");
    prop_assert!(
        36 * (exact - got) <= 10 * steps + 35,
        "{what}: {got} short of {exact} (10⁻¹⁸ h) over {steps} steps"
    );
    Ok(got)
}

/// The clock's calls in flight, allocation, last event and calls on slots of
/// the provisioned concurrency.
fn clock(totals: &Totals, slot: EndpointSlot) -> (u32, u128, Option<SystemTime>, u32) {
    let inner = totals.lock();
    let clock = &inner.endpoints[slot.0].sharing;
    (
        clock.in_flight,
        clock.allocated_fs,
        clock.last_event,
        clock.on_slots,
    )
}

/// Runs `events` on one endpoint (`m` calls per instance at full speed, `k0`
/// instances from the start, `slots` of provisioned concurrency) and on the
/// model, checking after each.
fn run(m: u32, k0: u32, slots: Option<u32>, events: &[Event]) -> Result<(), TestCaseError> {
    let totals = Totals::with_max_concurrency_per_instance(m);
    let slot = totals.endpoint_slot("e");
    totals.set_provisioned(slot, slots);
    let seat = totals.seat_on("e", None);
    let mut model = Model::new(m, slots);
    let mut now = START_MS;
    // How far the wall clock stepped back, all told.
    let mut behind = 0;
    if model.set_instances(k0, now) {
        totals.set_instances(slot, k0, at(now));
    }
    let mut shares: Vec<Option<CallShare>> = Vec::new();
    for (step, event) in events.iter().enumerate() {
        now += event.after_ms;
        behind += event.step_back_ms;
        let reading = now - behind - event.lag_ms;
        let before = clock(&totals, slot);
        // A call still held (not dropped); for a rejoin, one between attempts.
        let held: Vec<usize> = (0..shares.len()).filter(|&i| shares[i].is_some()).collect();
        let between: Vec<usize> = match event.op {
            Op::Rejoin {
                backing_off: true, ..
            } => held
                .iter()
                .copied()
                .filter(|&i| !model.calls[i].on && !model.calls[i].left)
                .collect(),
            _ => Vec::new(),
        };
        let pick = |call: &Index| match (between.is_empty(), held.is_empty()) {
            (false, _) => Some(between[call.index(between.len())]),
            (true, false) => Some(held[call.index(held.len())]),
            (true, true) => None,
        };
        let changed = match &event.op {
            Op::Join if shares.len() < MAX_CALLS => {
                let share = seat.join(at(reading));
                let busy = model.join(reading);
                prop_assert_eq!(share.slots_busy_at_start(), busy);
                shares.push(Some(share));
                true
            }
            Op::Join => continue,
            Op::Instances(k) => {
                totals.set_instances(slot, *k, at(reading));
                model.set_instances(*k, reading)
            }
            Op::StepOff { call, .. }
            | Op::Rejoin { call, .. }
            | Op::LeaveAt { call }
            | Op::LeaveLate { call, .. }
            | Op::End { call, .. }
            | Op::Drop { call } => {
                let Some(i) = pick(call) else { continue };
                let Some(share) = &shares[i] else { continue };
                match event.op {
                    Op::StepOff { billed, .. } => {
                        share.step_off(at(reading), billed);
                        model.step_off(i, reading, billed)
                    }
                    Op::Rejoin { .. } => {
                        share.rejoin(at(reading));
                        let changed = model.rejoin(i, reading);
                        prop_assert_eq!(
                            share.slots_busy_at_start(),
                            model.calls[i].busy_at_start,
                            "call {}'s rate at step {}",
                            i,
                            step
                        );
                        changed
                    }
                    Op::LeaveAt { .. } => {
                        share.leave_at(at(reading));
                        model.leave(i, Leave::Now(reading))
                    }
                    Op::LeaveLate { back_ms, .. } => {
                        share.leave_late(at(reading - back_ms));
                        model.leave(i, Leave::Late(reading - back_ms))
                    }
                    Op::End { latest, .. } => {
                        let got = share.end(at(reading), latest).hours();
                        let changed = model.leave(i, Leave::Now(reading));
                        let call = &model.calls[i];
                        let (want, steps) = match latest {
                            true => (call.latest, call.latest_steps),
                            false => (call.billed, call.billed_steps),
                        };
                        check_share(got, want, steps, &format!("call {i} at step {step}"))?;
                        changed
                    }
                    _ => {
                        shares[i] = None;
                        model.calls[i].dropped = true;
                        model.leave(i, Leave::Dropped)
                    }
                }
            }
        };
        let after = clock(&totals, slot);
        prop_assert_eq!(after.0, model.in_flight(), "in flight after step {}", step);
        prop_assert_eq!(after.3, model.on_slots(), "on slots after step {}", step);
        if !changed {
            prop_assert_eq!(after, before, "step {} changed the clock", step);
        }
        // A call in flight from the start: the clock itself, within its steps.
        let exact = model.always * FS_PER_MS;
        prop_assert!(PARTS * after.1 <= exact && exact <= PARTS * (after.1 + model.steps));
    }

    // Every call still held ends a ms after the last event; those that left
    // give their share as of then.
    let reading = now + 1 - behind;
    let mut billed_sum = 0;
    for (i, share) in shares.iter().enumerate() {
        let Some(share) = share else { continue };
        let got = share.end(at(reading), false).hours();
        model.leave(i, Leave::Now(reading));
        let call = &model.calls[i];
        let got = check_share(got, call.billed, call.billed_steps, &format!("call {i}"))?;
        // Each billed stretch at most 1/m of its wall time: got ≤ 10·fs / 36
        // and fs ≤ ms·10¹² / m, so 36·m·got ≤ 10·ms·10¹².
        prop_assert!(36 * model.m * got <= 10 * FS_PER_MS * call.billed_ms);
        billed_sum += got;
    }
    drop(shares);
    prop_assert_eq!(clock(&totals, slot).0, 0, "calls in flight once all left");
    prop_assert_eq!(clock(&totals, slot).3, 0, "slots held once all left");
    // All billed shares together at most k × the time some call was in flight
    // (k as it was each time): 36 × Σ got ≤ 10 × instance-ms·10¹²; the model's
    // whole allocation too (a check of the model).
    prop_assert!(36 * billed_sum <= 10 * FS_PER_MS * model.busy_instance_ms);
    prop_assert!(model.allocated <= PARTS * model.busy_instance_ms);
    let billed_ms: u128 = model
        .calls
        .iter()
        .filter(|c| !c.dropped)
        .map(|c| c.billed_ms)
        .sum();
    prop_assert!(36 * model.m * billed_sum <= 10 * FS_PER_MS * billed_ms);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random calls on one endpoint against the model: every share read, the
    /// calls in flight and on provisioned slots after every event, the clock,
    /// and the bounds.
    #[test]
    fn the_sharing_clock_allocates_min_of_one_mth_and_k_nths(
        m in 1u32..=4,
        k0 in instances(),
        slots in prop::option::of(0u32..=3),
        events in prop::collection::vec(event(), 1..40),
    ) {
        run(m, k0, slots, &events)?;
    }
}

/// One instance, one call per instance; B's end and A's are read behind the
/// clock's last event (each waited for the totals' lock): nothing elapsed.
/// A joins at 0 ms, B at 10 ms; B's end is read at 7 ms: B leaves at 10 ms,
/// its share 0. C joins at 18 ms (A alone 10–18 ms); C's end is read at 20 ms,
/// A's then at 19 ms: A leaves at 20 ms. A: 10 + 8 ms alone + 2 ms at ½ =
/// 19 ms; C: 2 ms at ½ = 1 ms. Together 20 ms, the instance's 0–20 ms counted
/// once; a clock moved back to 7 ms would count 7–10 ms twice (A 22 ms).
/// In hours, rounded down at 18 places: 0.019 / 3600 = 0.0000052777…,
/// 0.001 / 3600 = 0.00000027777….
#[test]
fn a_reading_behind_the_last_event_counts_no_time_twice() {
    let totals = Totals::default();
    let ms = |n: u64| at(START_MS + n);
    let a = totals.call_started_on("e", None, ms(0));
    let b = totals.call_started_on("e", None, ms(10));
    assert_eq!(b.end(ms(7), false).hours(), Decimal::ZERO);
    let c = totals.call_started_on("e", None, ms(18));
    assert_eq!(
        c.end(ms(20), false).hours(),
        "0.000000277777777777".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        a.end(ms(19), false).hours(),
        "0.000005277777777777".parse::<Decimal>().unwrap()
    );
    assert_eq!(totals.lock().endpoints[0].sharing.in_flight, 0);
}
