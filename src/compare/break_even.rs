//! Where two plans cost the same.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::arith::{Overflow, add, div, mul, sub};
use super::engine::{CostCurve, PlanCost, calls_at_once, capacity_basis, served};
use super::format::{calls as fmt_calls, percent};
use super::{CompareError, PlanModel, UsageProfile};

/// What to do when the costs where two plans might cross are beyond a decimal.
const HINT_BREAK_EVEN: &str = "the plans' costs at the volumes where they could cross are \
     beyond an exact decimal: check the units of the prices (per call, per token, per hour, \
     per GB) and lower the prices, fees or volumes per call";

/// Crossings beyond this many calls per period are not reported: at such volumes the
/// plans never break even in practice.
pub const MAX_BREAK_EVEN_CALLS: u64 = 1_000_000_000_000_000_000;

/// Which of two plans is cheaper at each call volume, and the volumes where they cost
/// the same.
///
/// Both plans are [`CostCurve`](super::CostCurve)s of calls per period `U`. For two
/// straight lines with fixed parts `F` and per-call parts `v` the crossing is
/// `U* = (F_a − F_b) / (v_b − v_a)` — for pay per use `X` against a subscription `P`
/// over `T` periods, `U* = P·T / X`. A subscription with a quota is piecewise
/// linear, so against pay per use there can be no crossing, one, or two (cheaper only
/// between them, when the overage costs more than pay per use). Plans with the same
/// per-call cost never cross: one is cheaper at every volume.
///
/// The points and regions are where the cost curves cross, at any volume. A plan
/// cannot serve more calls than its capacity
/// ([`PlanCost::capacity_calls`](super::PlanCost::capacity_calls)): a crossing
/// beyond the capacity of either plan lists it in
/// [`BreakEvenPoint::beyond_capacity`], and the summary says the plan would be
/// cheaper only there, which of the two is cheaper at every volume both can serve
/// ("ml.m5.xlarge x1 would be cheaper only above 3,358,000 calls per month, beyond
/// the 3,285,000 it can serve at 1 call per instance: pay per use is cheaper at
/// every volume it can serve").
///
/// Two plans that both charge by the calls answered with HTTP 2XX (pay per use, a
/// subscription) are compared in answered calls over their fees' periods, where
/// their figures are exact, and the volumes found there are then given in calls
/// made: with one call in three answered, 0.0125 USD a call against 500 USD a day
/// for 40,000 calls, 0.0125 each above, break even at 40,000 × 3 = 120,000 calls a
/// day and cost the same above it, not a rounding residue of `40,000 ÷ 0.333…3`
/// calls at `0.0125 × 0.333…3` apart.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakEven {
    /// The two plans, in the order they were given.
    pub plans: [String; 2],
    /// Call volumes where the two cost the same (cheaper plan changes), ascending.
    pub points: Vec<BreakEvenPoint>,
    /// The volume ranges with the plan that is cheaper in each, from 0 calls up.
    pub regions: Vec<Region>,
    /// The capacity of each plan of the pair whose capacity is known, keyed by plan
    /// name ([`PlanCost::capacity_calls`](super::PlanCost::capacity_calls)): the
    /// regions past it are volumes that plan cannot serve.
    #[serde(default)]
    pub capacity_calls: BTreeMap<String, Decimal>,
    /// The analysis in one sentence, e.g. "subscription is cheaper above 40,000
    /// calls per month; pay per use below".
    pub summary: String,
}

/// A call volume where two plans cost the same.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakEvenPoint {
    /// Calls per period at the crossing (exact, may be fractional).
    pub calls_per_period: Decimal,
    /// What either plan costs there.
    pub cost_usd: Decimal,
    /// For plans of the pair that provision capacity (instances, provisioned
    /// concurrency): their utilisation at this volume (busy ÷ provisioned time),
    /// keyed by plan name. Empty when neither does or the latency is unknown.
    pub utilisation: BTreeMap<String, Decimal>,
    /// The plans of the pair that cannot serve this many calls (more than their
    /// [`capacity_calls`](BreakEven::capacity_calls)): the crossing is one they
    /// would make only beyond what they serve. Empty when both can.
    #[serde(default)]
    pub beyond_capacity: Vec<String>,
}

/// A range of call volumes `[from_calls, to_calls)` in which one plan is cheaper.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Lower end of the range (calls per period).
    pub from_calls: Decimal,
    /// Upper end; `None` = no upper end.
    pub to_calls: Option<Decimal>,
    /// The cheaper plan's name; `None` where both cost the same.
    pub cheaper: Option<String>,
}

/// A range of volumes `[from, to)` (`to` `None`: no upper end) and which plan is
/// cheaper in it.
type Range = (Decimal, Option<Decimal>, Verdict);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    A,
    B,
    Same,
}

pub(crate) fn break_even(
    a: &PlanCost,
    b: &PlanCost,
    profile: &UsageProfile,
) -> Result<BreakEven, CompareError> {
    let pair = format!("`{}` and `{}`", a.plan.name, b.plan.name);
    let crossing = |o: Overflow| {
        o.of(
            format!("the difference in cost between plans {pair} where they could break even"),
            HINT_BREAK_EVEN,
        )
    };
    let max_calls = Decimal::from(MAX_BREAK_EVEN_CALLS);
    // Where the cheaper plan changes, in the volumes the pair is compared in, and
    // back in calls made (`x` the volume compared, `u` the calls made).
    let frame = Frame::of(a, b, profile).map_err(crossing)?;
    let (ca, cb) = match &frame {
        Some(f) => (&f.curves[0], &f.curves[1]),
        None => (&a.curve, &b.curve),
    };
    let limit = match &frame {
        Some(f) => f.volume(max_calls).map_err(crossing)?,
        None => max_calls,
    };
    let (split, crosses_beyond) = split(ca, cb, limit).map_err(crossing)?;
    let calls = |x: Decimal| match &frame {
        Some(f) => f.calls(x),
        None => Ok(x),
    };
    let mut regions: Vec<Range> = Vec::new();
    // Each point: the calls made there, and the volume compared.
    let mut ends: Vec<(Decimal, Decimal)> = Vec::new();
    for (from, to, v) in split {
        let to = match to {
            Some(x) => {
                let u = calls(x).map_err(crossing)?;
                ends.push((u, x));
                Some(u)
            }
            None => None,
        };
        regions.push((calls(from).map_err(crossing)?, to, v));
    }

    let name = |v: Verdict| match v {
        Verdict::A => Some(a.plan.name.clone()),
        Verdict::B => Some(b.plan.name.clone()),
        Verdict::Same => None,
    };
    let points: Vec<BreakEvenPoint> = ends
        .iter()
        .map(|&(u, x)| {
            let at = |figure: &str| {
                let what = format!(
                    "{figure} where plans {pair} break even ({} calls per {})",
                    fmt_calls(u),
                    profile.period
                );
                move |o: Overflow| o.of(what.clone(), HINT_BREAK_EVEN)
            };
            let mut utilisation = BTreeMap::new();
            for p in [a, b] {
                let busy = utilisation_at(p, profile, u)
                    .map_err(at(&format!("the utilisation of `{}`", p.plan.name)))?;
                if let Some(x) = busy {
                    utilisation.insert(p.plan.name.clone(), x);
                }
            }
            Ok(BreakEvenPoint {
                calls_per_period: u,
                cost_usd: ca
                    .try_cost_usd(x)
                    .and_then(|y| match &frame {
                        Some(f) => f.usd(y),
                        None => Ok(y),
                    })
                    .map_err(at("the cost"))?,
                utilisation,
                beyond_capacity: [a, b]
                    .iter()
                    .filter(|p| p.capacity_calls.is_some_and(|c| u > c))
                    .map(|p| p.plan.name.clone())
                    .collect(),
            })
        })
        .collect::<Result<_, CompareError>>()?;
    let summary = summarise(a, b, &regions, &points, profile, crosses_beyond)?;
    Ok(BreakEven {
        plans: [a.plan.name.clone(), b.plan.name.clone()],
        points,
        regions: regions
            .into_iter()
            .map(|(from, to, v)| Region {
                from_calls: from,
                to_calls: to,
                cheaper: name(v),
            })
            .collect(),
        summary,
        capacity_calls: [a, b]
            .iter()
            .filter_map(|p| Some((p.plan.name.clone(), p.capacity_calls?)))
            .collect(),
    })
}

/// The volumes and costs two plans are compared in, when not the calls made and USD
/// of their curves.
///
/// A fee per inference and a subscription charge by the calls answered with HTTP
/// 2XX, a share `s` of the calls made: in calls made their curves hold `s × price`
/// per call and a quota lasting `included ÷ s` calls, rounded when `s` is not a
/// finite decimal (1/3), and a fee or quota amortised over another period is
/// rounded too (× 730 h ÷ 24 h). Where two such plans cost the same, or meet at a
/// quota's end, the rounded curves would differ by a residue, and cross in a
/// sliver of volumes that is no range at all. So a pair of them is compared in
/// answered calls per `H` hours, `H` the least common multiple of the
/// subscriptions' periods in hours (the compared period's when neither plan is
/// one), with costs per `H` hours, where every figure is exact:
/// a fee per inference is its price per answered call, a subscription charging its
/// fee every `h` hours `fee × H ÷ h` with `included × H ÷ h` calls. A volume `x`
/// there is `x × P ÷ (H × s)` calls made per period of `P` hours, and a cost `y`
/// is `y × P ÷ H` USD.
struct Frame {
    /// Each plan's cost in the volumes and costs compared.
    curves: [CostCurve; 2],
    /// Calls made per period = volume compared × `calls.0 ÷ calls.1`.
    calls: (Decimal, Decimal),
    /// USD per period = cost compared × `usd.0 ÷ usd.1`.
    usd: (Decimal, Decimal),
}

impl Frame {
    /// The frame of two plans that both charge by the calls answered, when their
    /// curves in calls made may be rounded; `None` to compare the curves as they are.
    fn of(a: &PlanCost, b: &PlanCost, profile: &UsageProfile) -> Result<Option<Frame>, Overflow> {
        // What a plan charges for the calls answered: a price per call, or a fee
        // every so many hours with its quota and overage.
        enum Charges {
            PerCall(Decimal),
            Fee(Decimal, u64, Option<(Decimal, Decimal)>),
        }
        let charges = |p: &PlanCost| match &p.plan.model {
            PlanModel::PerInference(x) => Some(Charges::PerCall(x.usd_per_call)),
            PlanModel::Subscription(x) => Some(Charges::Fee(
                x.fee_usd,
                x.period.whole_hours(),
                x.included_calls.zip(x.overage_usd_per_call),
            )),
            _ => None,
        };
        let (Some(ga), Some(gb)) = (charges(a), charges(b)) else {
            return Ok(None);
        };
        let hours = profile.period.whole_hours();
        // The share answered, as the engine prices it (`None`: every call), as a
        // ratio: the answered calls per period over the calls when they give it.
        let share = profile.answered_per_call.filter(|s| *s != Decimal::ONE);
        let (answered, made) = match (share, profile.answered_calls_per_period) {
            (None, _) => (Decimal::ONE, Decimal::ONE),
            (Some(s), _) if s.is_zero() => return Ok(None),
            (Some(s), Some(n))
                if !n.is_zero() && div(n, profile.calls_per_period).ok() == Some(s) =>
            {
                (n, profile.calls_per_period)
            }
            (Some(s), _) => (s, Decimal::ONE),
        };
        let periods: Vec<u64> = [&ga, &gb]
            .into_iter()
            .filter_map(|g| match g {
                Charges::Fee(_, h, _) => Some(*h),
                Charges::PerCall(_) => None,
            })
            .collect();
        if share.is_none() && periods.iter().all(|h| *h == hours) {
            // Every figure is as stated: the curves are exact.
            return Ok(None);
        }
        let lcm = |x: u64, y: u64| {
            let (mut m, mut n) = (x, y);
            while n != 0 {
                (m, n) = (n, m % n);
            }
            x / m * y
        };
        let common = periods.into_iter().reduce(lcm).unwrap_or(hours);
        let curve = |g: &Charges| -> Result<CostCurve, Overflow> {
            Ok(match g {
                Charges::PerCall(x) => CostCurve::linear(Decimal::ZERO, *x),
                Charges::Fee(fee, h, quota) => {
                    let times = Decimal::from(common / h);
                    let mut curve = CostCurve::linear(mul(*fee, times)?, Decimal::ZERO);
                    if let Some((included, overage)) = quota {
                        curve.included_calls = Some(mul(*included, times)?);
                        curve.overage_usd_per_call = Some(*overage);
                    }
                    curve
                }
            })
        };
        let (hours, common) = (Decimal::from(hours), Decimal::from(common));
        Ok(Some(Frame {
            curves: [curve(&ga)?, curve(&gb)?],
            calls: (mul(hours, made)?, mul(common, answered)?),
            usd: (hours, common),
        }))
    }

    /// Calls made per period at the volume `x` compared.
    fn calls(&self, x: Decimal) -> Result<Decimal, Overflow> {
        scale(x, self.calls).map(|u| u.normalize())
    }

    /// The volume compared at `u` calls made per period.
    fn volume(&self, u: Decimal) -> Result<Decimal, Overflow> {
        scale(u, (self.calls.1, self.calls.0))
    }

    /// USD per period at the cost `y` compared.
    fn usd(&self, y: Decimal) -> Result<Decimal, Overflow> {
        scale(y, self.usd).map(|x| x.normalize())
    }
}

/// `x × by.0 ÷ by.1`: multiplied first, exact when it can be; divided first when the
/// product is beyond a decimal.
fn scale(x: Decimal, by: (Decimal, Decimal)) -> Result<Decimal, Overflow> {
    mul(x, by.0)
        .and_then(|y| div(y, by.1))
        .or_else(|_| div(x, by.1).and_then(|y| mul(y, by.0)))
}

/// Where the cheaper of the curves `ca` and `cb` changes: the ranges of volume from
/// 0 up with the verdict in each, the changes up to `max_calls` only, and whether
/// they cross or part again beyond it.
///
/// `cost_a − cost_b` is linear between the curves' kinks: it is taken from its
/// value at the start of each segment and its slope there, each taken for 0 when
/// no larger than the rounding bounds of the figures it comes from ([`bound`]):
/// two plans that cost the same by AWS's rules cost the same, though a share of
/// 1/3 held at 28 places leaves their per-call prices 10^-28 apart.
fn split(
    ca: &CostCurve,
    cb: &CostCurve,
    max_calls: Decimal,
) -> Result<(Vec<Range>, bool), Overflow> {
    // Segments on which the difference is linear: split at each curve's kink.
    let mut starts = vec![Decimal::ZERO];
    starts.extend(
        [ca.kink(), cb.kink()]
            .into_iter()
            .flatten()
            .filter(|k| *k > Decimal::ZERO),
    );
    starts.sort();
    starts.dedup();

    let mut events: Vec<Decimal> = Vec::new();
    // The plans cross or part beyond MAX_BREAK_EVEN_CALLS (on the last, unbounded
    // segment, one between two kinks past it, or where a stretch of equal cost ends).
    let mut crosses_beyond = false;
    // Where they do, when a decimal holds it: the verdict above the last event is
    // the one below these.
    let mut beyond: Vec<Decimal> = Vec::new();
    // Each segment's start, the difference there and its slope right of it.
    let mut segments: Vec<(Decimal, Decimal, Decimal)> = Vec::new();
    for (i, &lo) in starts.iter().enumerate() {
        let hi = starts.get(i + 1).copied();
        // The difference's slope right of `u`, 0 within the prices' bounds.
        let slope_at = |u: Decimal| {
            let (ma, mb) = (
                ca.try_marginal_usd_per_call(u)?,
                cb.try_marginal_usd_per_call(u)?,
            );
            Ok(within(sub(ma, mb)?, add(bound(ma)?, bound(mb)?)?))
        };
        let slope = slope_at(lo)?;
        let at_lo = within(
            difference(ca, cb, lo)?,
            add(line_bound(ca, lo)?, line_bound(cb, lo)?)?,
        );
        segments.push((lo, at_lo, slope));
        if slope.is_zero() {
            if at_lo.is_zero() {
                // The plans coincide on this whole segment: its ends are events, those
                // past MAX_BREAK_EVEN_CALLS changes beyond, unless the plans coincide
                // on the segment beside it too (the same cost equal at 0 on both
                // sides: two like plans whose common kink is past it do not part).
                let before = match i.checked_sub(1) {
                    Some(j) => !slope_at(starts[j])?.is_zero(),
                    None => false,
                };
                let after = match hi {
                    Some(hi) => !slope_at(hi)?.is_zero(),
                    None => false,
                };
                for (end, parts) in [
                    (Some(lo).filter(|lo| *lo > Decimal::ZERO), before),
                    (hi, after),
                ] {
                    let Some(end) = end else { continue };
                    if end <= max_calls {
                        events.push(end);
                    } else if parts {
                        crosses_beyond = true;
                        beyond.push(end);
                    }
                }
            }
            continue;
        }
        let Ok(root) = div(at_lo, slope).and_then(|step| sub(lo, step)) else {
            // Beyond any representable volume: ahead when the difference and its
            // slope have opposite signs (it shrinks towards zero).
            crosses_beyond |= hi.is_none() && at_lo.is_sign_negative() != slope.is_sign_negative();
            continue;
        };
        // A root off the segment is where the lines would cross, not where they do.
        let on_segment = root >= lo && root > Decimal::ZERO && hi.is_none_or(|hi| root <= hi);
        if on_segment && root <= max_calls {
            events.push(root.normalize());
        } else if on_segment {
            // Past MAX_BREAK_EVEN_CALLS, on the last segment or between two kinks
            // beyond it (provisioned concurrency can serve more calls than that).
            // A difference that only touches 0 at a kink, the same plan cheaper on
            // the segment before as the slope leads to after, is no crossing.
            let touches = root == lo && i > 0 && {
                let (p_lo, p_at, p_slope) = segments[i - 1];
                let end = add(p_at, mul(p_slope, sub(lo, p_lo)?)?)?;
                !end.is_zero() && end.is_sign_negative() == slope.is_sign_negative()
            };
            if !touches {
                crosses_beyond = true;
                beyond.push(root);
            }
        }
    }
    events.sort();
    events.dedup();

    // The cheaper plan between consecutive events; merge neighbours with the same verdict.
    let verdict = |u: Decimal| -> Result<Verdict, Overflow> {
        let &(lo, at_lo, slope) = segments
            .iter()
            .rev()
            .find(|s| s.0 <= u)
            .expect("the first segment starts at 0");
        let d = add(at_lo, mul(slope, sub(u, lo)?)?)?;
        Ok(if d < Decimal::ZERO {
            Verdict::A
        } else if d > Decimal::ZERO {
            Verdict::B
        } else {
            Verdict::Same
        })
    };
    let mut regions: Vec<Range> = Vec::new();
    let mut lo = Decimal::ZERO;
    for (i, &hi) in events
        .iter()
        .chain(std::iter::once(&Decimal::MAX))
        .enumerate()
    {
        let last = i == events.len();
        // The last range runs on past MAX_BREAK_EVEN_CALLS: its verdict is the one
        // before the plans cross or part again beyond it, not one past that.
        let next = if last {
            beyond.iter().copied().filter(|x| *x > lo).min()
        } else {
            Some(hi)
        };
        let probe = match next {
            Some(hi) => add(lo, hi).and_then(|x| div(x, Decimal::TWO)),
            None => add(lo, lo.max(Decimal::ONE)),
        };
        let v = probe.and_then(verdict)?;
        let to = (!last).then_some(hi);
        match regions.last_mut() {
            Some(prev) if prev.2 == v => prev.1 = to,
            _ => regions.push((lo, to, v)),
        }
        lo = hi;
    }

    Ok((regions, crosses_beyond))
}

/// `cost_a(u) − cost_b(u)`, part by part: fixed parts, per-call parts, overage. Two
/// large costs that nearly agree differ by a small figure, which this reaches
/// without computing either cost.
fn difference(ca: &CostCurve, cb: &CostCurve, u: Decimal) -> Result<Decimal, Overflow> {
    let fixed = sub(ca.fixed_usd, cb.fixed_usd)?;
    let per_call = mul(sub(ca.usd_per_call, cb.usd_per_call)?, u)?;
    let d = add(fixed, per_call)?;
    sub(add(d, overage(ca, u)?)?, overage(cb, u)?)
}

/// How far a figure of a cost curve may be from the exact one it stands for:
/// `10^-26 + |x| × 10^-25`, well above what rounding to a decimal's 28 places
/// leaves (a price per call made, `price × share` with a share of 1/3 or 2/3, is
/// rounded once or twice, to 10^-28 or a part in 10^28 of it) and far below any
/// difference of prices stated in decimals.
fn bound(x: Decimal) -> Result<Decimal, Overflow> {
    add(Decimal::new(1, 26), mul(x.abs(), Decimal::new(1, 25))?)
}

/// How far a curve's cost at `u` calls may be from the exact one by its figures'
/// bounds: its fixed part's, its price per call's × `u`, and above a quota's end
/// its overage's × `u` and the included calls' × the overage.
fn line_bound(curve: &CostCurve, u: Decimal) -> Result<Decimal, Overflow> {
    let mut e = add(bound(curve.fixed_usd)?, mul(bound(curve.usd_per_call)?, u)?)?;
    if let (Some(included), Some(overage)) = (curve.included_calls, curve.overage_usd_per_call)
        && !overage.is_zero()
        && u > included
    {
        e = add(e, mul(overage.abs(), bound(included)?)?)?;
        e = add(e, mul(bound(overage)?, u)?)?;
    }
    Ok(e)
}

/// `x`, or 0 when it is no larger than `bound`: a rounding residue, no difference.
fn within(x: Decimal, bound: Decimal) -> Decimal {
    if x.abs() <= bound { Decimal::ZERO } else { x }
}

/// What the calls above a curve's included calls add at `u` calls.
fn overage(curve: &CostCurve, u: Decimal) -> Result<Decimal, Overflow> {
    match (curve.included_calls, curve.overage_usd_per_call) {
        (Some(included), Some(overage)) if u > included => mul(overage, sub(u, included)?),
        _ => Ok(Decimal::ZERO),
    }
}

/// `calls × latency / provisioned seconds` for a plan that provisions capacity.
fn utilisation_at(
    plan: &PlanCost,
    profile: &UsageProfile,
    calls: Decimal,
) -> Result<Option<Decimal>, Overflow> {
    let Some(provisioned) = plan.provisioned_seconds else {
        return Ok(None);
    };
    if profile.mean_latency.is_zero() || provisioned.is_zero() {
        return Ok(None);
    }
    let latency = Decimal::from_i128_with_scale(profile.mean_latency.as_nanos() as i128, 9);
    let serving = mul(provisioned, Decimal::from(calls_at_once(&plan.plan)))?;
    Ok(Some(div(mul(calls, latency)?, serving)?.normalize()))
}

/// The analysis in one sentence. When a crossing lies beyond the capacity of the
/// plan of the pair that serves fewer calls (the first, on a tie), it is stated as
/// one that plan would make only there, after what the crossings within it say.
fn summarise(
    a: &PlanCost,
    b: &PlanCost,
    regions: &[Range],
    points: &[BreakEvenPoint],
    profile: &UsageProfile,
    crosses_beyond: bool,
) -> Result<String, CompareError> {
    let limited = [a, b]
        .into_iter()
        .filter_map(|p| Some((p.capacity_calls?, p)))
        .reduce(|least, x| if x.0 < least.0 { x } else { least });
    let Some((capacity, limited)) = limited else {
        return summarise_costs(a, b, regions, points, profile, crosses_beyond, true);
    };
    let Some(first) = points.iter().position(|p| p.calls_per_period > capacity) else {
        return summarise_costs(a, b, regions, points, profile, crosses_beyond, true);
    };
    let plan = |v: Verdict| match v {
        Verdict::A => Some(a),
        Verdict::B => Some(b),
        Verdict::Same => None,
    };
    let per = format!("calls per {}", profile.period);
    // The regions up to the capacity, the last one open: volumes the plan can serve.
    let mut within = regions[..=first].to_vec();
    if let Some(last) = within.last_mut() {
        last.1 = None;
    }
    let u = fmt_calls(points[first].calls_per_period);
    let basis = capacity_basis(&limited.plan);
    let can_serve = |who: &str| format!("the {} {who} can serve {basis}", served(capacity));
    let tail = match plan(regions[first + 1].2) {
        Some(p) => format!(
            "{} would be cheaper only above {u} {per}, beyond {}",
            p.plan.name,
            can_serve(if p.plan.name == limited.plan.name {
                "it"
            } else {
                &limited.plan.name
            })
        ),
        None => format!(
            "{} and {} would cost the same only above {u} {per}, beyond {}",
            a.plan.name,
            b.plan.name,
            can_serve(&limited.plan.name)
        ),
    };
    Ok(match within.as_slice() {
        [(_, _, v)] => match plan(*v) {
            Some(p) => format!(
                "{tail}: {} is cheaper at every volume it can serve",
                p.plan.name
            ),
            None => format!(
                "{tail}: {} and {} cost the same at every volume {} can serve",
                a.plan.name, b.plan.name, limited.plan.name
            ),
        },
        _ => format!(
            "{}; {tail}",
            summarise_costs(a, b, &within, &points[..first], profile, false, false)?
        ),
    })
}

/// The analysis in one sentence, of where the cost curves cross. With `ends`, the
/// range of volumes a plan is cheaper in up to the highest ends at its capacity,
/// when known ("…, up to the 3,285,000 it can serve at 1 call per instance").
fn summarise_costs(
    a: &PlanCost,
    b: &PlanCost,
    regions: &[Range],
    points: &[BreakEvenPoint],
    profile: &UsageProfile,
    crosses_beyond: bool,
    ends: bool,
) -> Result<String, CompareError> {
    let plan = |v: Verdict| match v {
        Verdict::A => a.plan.name.as_str(),
        Verdict::B => b.plan.name.as_str(),
        Verdict::Same => "",
    };
    let per = format!("calls per {}", profile.period);
    let n = |u: &Decimal| fmt_calls(*u);
    // Where the plan cheaper at the highest volumes stops serving: its capacity,
    // unless the plans may cross again before it (beyond the volumes reported).
    let capacity_of = |v: Verdict| {
        let p = match v {
            Verdict::A => a,
            Verdict::B => b,
            Verdict::Same => return None,
        };
        p.capacity_calls
            .filter(|c| ends && (!crosses_beyond || *c <= Decimal::from(MAX_BREAK_EVEN_CALLS)))
            .map(|c| (c, capacity_basis(&p.plan)))
    };
    let up_to = |v: Verdict| {
        capacity_of(v)
            .map(|(c, basis)| format!(", up to the {} it can serve {basis}", served(c)))
            .unwrap_or_default()
    };
    // The last region's plan stops being cheaper past the volumes reported.
    let beyond = if crosses_beyond {
        format!(" (up to 10^18 {per}: they cross again beyond)")
    } else {
        String::new()
    };
    // "(ml.m5.xlarge x1 at 38.1% utilisation)" after the sentence, per crossing.
    let busy: Vec<String> = points
        .iter()
        .filter(|p| !p.utilisation.is_empty())
        .map(|p| {
            let who: Vec<String> = p
                .utilisation
                .iter()
                .map(|(name, x)| {
                    let serverless = [a, b].iter().any(|p| {
                        p.plan.name == *name && matches!(p.plan.model, PlanModel::Serverless(_))
                    });
                    let beyond = match (*x > Decimal::ONE, serverless) {
                        (false, _) => "",
                        (true, false) => ", more than it can serve",
                        (true, true) => ", more than its provisioned concurrency serves",
                    };
                    format!("{name} at {} utilisation{beyond}", percent(*x))
                })
                .collect();
            if points.len() == 1 {
                who.join(", ")
            } else {
                format!("at {}: {}", n(&p.calls_per_period), who.join(", "))
            }
        })
        .collect();
    let busy = if busy.is_empty() {
        String::new()
    } else {
        format!(" ({})", busy.join("; "))
    };
    Ok(match regions {
        [(_, _, Verdict::Same)] if crosses_beyond => format!(
            "{} and {} cost the same at every volume up to 10^18 {per}: they part only beyond",
            a.plan.name, b.plan.name
        ),
        [(_, _, Verdict::Same)] => format!(
            "{} and {} cost the same at every volume",
            a.plan.name, b.plan.name
        ),
        [(_, _, v)] => {
            let other = if *v == Verdict::A { b } else { a };
            let cheaper = if *v == Verdict::A { a } else { b };
            let less = sub(other.cost_usd, cheaper.cost_usd).map_err(|o| {
                o.of(
                    format!(
                        "the difference between plans `{}` and `{}`",
                        other.plan.name, cheaper.plan.name
                    ),
                    super::arith::HINT_INPUTS,
                )
            })?;
            if less.is_zero() {
                // The plans touch at the profile's volume and nowhere else.
                format!(
                    "{} costs the same as {} at {} {per} and less at every other volume",
                    cheaper.plan.name,
                    other.plan.name,
                    fmt_calls(profile.calls_per_period),
                )
            } else if let Some((c, basis)) = capacity_of(*v) {
                format!(
                    "{} is cheaper at every volume up to the {} it can serve {basis}: it {} \
                     with {} ({} USD less at {} {per})",
                    cheaper.plan.name,
                    served(c),
                    if crosses_beyond {
                        format!("would break even only beyond 10^18 {per}")
                    } else {
                        "never breaks even".into()
                    },
                    other.plan.name,
                    super::format::usd(less, 2),
                    fmt_calls(profile.calls_per_period),
                )
            } else if crosses_beyond {
                format!(
                    "{} is cheaper at every volume up to 10^18 {per}: it breaks even with {} \
                     only beyond ({} USD less at {} {per})",
                    cheaper.plan.name,
                    other.plan.name,
                    super::format::usd(less, 2),
                    fmt_calls(profile.calls_per_period),
                )
            } else {
                format!(
                    "{} is cheaper at every volume: it never breaks even with {} ({} USD less \
                     at {} {per})",
                    cheaper.plan.name,
                    other.plan.name,
                    super::format::usd(less, 2),
                    fmt_calls(profile.calls_per_period),
                )
            }
        }
        [(_, Some(u), below), (_, None, above)]
            if *below != Verdict::Same && *above != Verdict::Same =>
        {
            // A crossing below one call: in whole calls, cheaper from the first.
            let first = if *u < Decimal::ONE {
                ", so from the first call"
            } else {
                ""
            };
            format!(
                "{} is cheaper above {} {per}{first}{}{beyond}{busy}; {} below",
                plan(*above),
                n(u),
                up_to(*above),
                plan(*below)
            )
        }
        _ => {
            // "pay per use is cheaper below 32,000 calls per month, subscription between
            // 32,000 and 53,333, pay per use above 53,333"
            let clauses: Vec<String> = regions
                .iter()
                .enumerate()
                .map(|(i, (from, to, v))| {
                    let unit = if i == 0 {
                        format!(" {per}")
                    } else {
                        String::new()
                    };
                    let range = match (from.is_zero(), to) {
                        (true, Some(to)) => format!("below {}{unit}", n(to)),
                        (false, Some(to)) => format!("between {} and {}{unit}", n(from), n(to)),
                        (_, None) => format!("above {}{unit}{}", n(from), up_to(*v)),
                    };
                    match (i, v) {
                        (0, Verdict::Same) => format!("both cost the same {range}"),
                        (_, Verdict::Same) => format!("the same {range}"),
                        (0, v) => format!("{} is cheaper {range}", plan(*v)),
                        (_, v) => format!("{} {range}", plan(*v)),
                    }
                })
                .collect();
            format!("{}{beyond}{busy}", clauses.join(", "))
        }
    })
}

/// Asserts `be` finds two plans the same at every volume: no break-even point, one
/// region with no cheaper plan, and `summary` saying so.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_same_at_every_volume(be: &BreakEven, summary: &str) {
    assert!(be.points.is_empty(), "{:?}", be.points);
    assert_eq!(be.regions.len(), 1);
    assert_eq!(be.regions[0].cheaper, None);
    assert_eq!(be.summary, summary);
}

#[cfg(test)]
mod tests {
    use super::super::{
        Comparison, PerInferencePlan, PerTokenPlan, Period, Plan, RateTable, ServerlessPlan,
        TokenCalls, UsageProfile,
    };
    use rust_decimal::Decimal;
    use std::time::Duration;

    /// A per-token plan and a price per call that cost the same by AWS's rules cost
    /// the same at every volume, though their lines in calls made are a rounding
    /// step apart. 3,000 calls a day, 2,000 answered, each direction's tokens
    /// charged on 1,000 of them (a third of the calls made):
    ///   per token: 100 tokens × 1 USD ÷ 1,000,000 = 0.0001 USD a direction, on 1/3
    ///              of the calls each: 0.0001 × 1/3 + 0.0001 × 1/3 = 0.0001 × 2/3
    ///              a call made; 1,000 × 0.0001 + 1,000 × 0.0001 = 0.20 USD a day;
    ///   per call:  0.0001 USD an answered call, 2/3 of the calls made: 0.0001 ×
    ///              2/3 a call made; 2,000 × 0.0001 = 0.20 USD a day.
    /// Held at 28 places, the shares leave the lines 0.0000666…666 against
    /// 0.0000666…667 a call, 10^-28 apart: within their rounding, no difference.
    #[test]
    fn a_per_token_plan_a_rounding_step_from_a_price_per_call_costs_the_same() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let third = Decimal::ONE / Decimal::from(3);
        let mut profile = UsageProfile::builder()
            .period(Period::Day)
            .calls_per_period(3000)
            .tokens_in_per_call(100)
            .tokens_out_per_call(100)
            .build()
            .unwrap();
        profile.answered_per_call = Some(Decimal::TWO / Decimal::from(3));
        profile.answered_calls_per_period = Some(Decimal::from(2000));
        profile.token_calls = Some(TokenCalls::new(
            (third, Decimal::from(1000)),
            (third, Decimal::from(1000)),
        ));
        profile.validate().unwrap();
        let plans = [
            Plan::from(PerTokenPlan::per_million_tokens(Decimal::ONE, Decimal::ONE).unwrap())
                .named("per token"),
            Plan::from(PerInferencePlan::per_call(d("0.0001")).unwrap()).named("per call"),
        ];
        let comparison =
            Comparison::compute(&profile, &plans, &RateTable::new("us-east-1")).unwrap();
        // The lines are a rounding step apart (the defect's premise)...
        let per_call = |name: &str| comparison.plan(name).unwrap().curve.usd_per_call;
        assert_ne!(per_call("per token"), per_call("per call"));
        assert!((per_call("per token") - per_call("per call")).abs() <= d("1e-28"));
        // ...and both cost 0.20 USD a day, each the cheapest.
        for name in ["per token", "per call"] {
            let row = comparison.plan(name).unwrap();
            assert_eq!(row.cost_usd, d("0.2"), "{name}");
            assert!(row.difference_to_cheapest_usd.is_zero(), "{name}");
        }
        super::assert_same_at_every_volume(
            &comparison.break_evens[0],
            "per token and per call cost the same at every volume",
        );
    }

    /// Two like plans whose common kink lies past the largest volume reported cost
    /// the same on both sides of it: they never part, beyond or not.
    #[test]
    fn like_plans_whose_common_kink_is_past_the_largest_volume_never_part() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let plan = ServerlessPlan::new(1024)
            .unwrap()
            .with_provisioned_concurrency(200)
            .unwrap();
        let rates = RateTable::new("us-east-1")
            .with_rate(plan.duration_key("us-east-1"), d("0.0000233"))
            .unwrap()
            .with_rate(plan.standing_key("us-east-1").unwrap(), d("0.0000048"))
            .unwrap()
            .with_rate(
                plan.beyond_provisioned_key("us-east-1").unwrap(),
                d("0.00004"),
            )
            .unwrap();
        // Over a year at 4 ns a call, 200 provisioned serve 200 × 31,536,000 s ÷
        // 4 × 10^-9 s = 1.5768 × 10^18 calls, past 10^18: both plans have that kink.
        let profile = UsageProfile::builder()
            .period(Period::Year)
            .calls_per_period(0)
            .mean_latency(Duration::from_nanos(4))
            .build()
            .unwrap();
        let plans = [
            Plan::from(plan.clone()).named("a"),
            Plan::from(plan).named("b"),
        ];
        let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
        assert_eq!(
            comparison.plan("a").unwrap().curve.included_calls,
            Some(d("1576800000000000000"))
        );
        assert_eq!(
            comparison.break_evens[0].summary,
            "a and b cost the same at every volume"
        );
    }
}
