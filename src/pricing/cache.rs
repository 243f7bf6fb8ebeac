//! A cache in front of a primary price source: TTL, single flight, last good price, backoff.

use super::{
    BoxFuture, NextTerm, OnPriceChange, PriceChange, PriceError, PriceKey, PriceOrigin,
    PriceSource, Rate,
};
use aws_smithy_async::time::SharedTimeSource;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, oneshot};
use tracing::Instrument;

/// How long a fetched price is served without asking again: 6 hours.
///
/// AWS publishes SageMaker price changes a few times a year, effective from a date, and
/// the Price List API is rate limited: refreshing a handful of keys four times a day keeps
/// receipts current within hours at negligible request volume.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6 * 60 * 60);

/// How long to leave the primary alone for a key after it failed: 60 seconds.
///
/// Bounds requests to at most one per key per minute during an outage or throttling,
/// while recovering within a minute once the API answers again.
pub const DEFAULT_FAILURE_BACKOFF: Duration = Duration::from_secs(60);

/// The note on a rate served past its TTL while its refresh runs.
const STALE_NOTE: &str = "cached price older than its TTL; a refresh is under way";

/// How the note on a rate served past the date of a later term its answer listed
/// without a rate for it begins: "cached price replaced by a term effective <date>;
/// a refresh is under way".
const REPLACED_NOTE_START: &str = "cached price replaced by a term effective ";

/// How the note on the last good rate, kept after a failed refresh, begins:
/// "refresh failed (<error>); kept the last good price, fetched <time>".
const FAILED_NOTE_START: &str = "refresh failed (";

/// How the note on the fallback source's rate, when the primary failed and no
/// good price is known, begins: "primary price source failed (<error>)".
const PRIMARY_FAILED_NOTE_START: &str = "primary price source failed (";

/// Whether a rate's provenance `note` (its parts joined by `; `, the latest
/// first) holds one of the notes the cache puts on a rate it serves in place of a
/// fresh answer: stale (past its TTL, or past the date of a term announced
/// without a rate), kept after a failed refresh, or the fallback source's after
/// the primary failed. A rate's other notes (which charge a SKU is, an announced
/// term in effect, a price change, $0 rows skipped) are no fallback's. Ledgers of
/// every version carry these notes, and the rule reads them back: reworded, those
/// ledgers would be misread.
pub(crate) fn is_fallback_note(note: &str) -> bool {
    [
        STALE_NOTE,
        REPLACED_NOTE_START,
        FAILED_NOTE_START,
        PRIMARY_FAILED_NOTE_START,
    ]
    .iter()
    .any(|start| {
        note.match_indices(start)
            .any(|(at, _)| at == 0 || note[..at].ends_with("; "))
    })
}

/// A cache in front of a primary price source: TTL, single flight, last good price,
/// failure backoff and a fallback source.
///
/// ```
/// use sagemeter::pricing::{CachedPrices, PriceKey, PriceOrigin, PriceSource, Snapshot};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), sagemeter::pricing::PriceError> {
/// // In production the primary is `LivePrices`; see `default_price_source`.
/// let prices = CachedPrices::builder(Snapshot::bundled())
///     .fallback(Snapshot::bundled())
///     .ttl(Duration::from_secs(3600))
///     .failure_backoff(Duration::from_secs(30))
///     .build();
/// let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
/// let rate = prices.price(&key).await?;
/// assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
/// # Ok(()) }
/// ```
///
/// What a look-up returns, per key:
///
/// | state of the key | answer | primary called? |
/// |---|---|---|
/// | fresh (younger than the TTL, and no later term its answer listed in effect yet) | the cached rate, `source = Cache` | no |
/// | never fetched | waits for the one fetch in flight, or makes it; the fetching caller gets `Live` | once for all concurrent callers |
/// | never fetched, the caller that made the fetch dropped | the fallback's rate, note says the fetch goes on | no |
/// | past the `effectiveDate` of a later term its answer listed (a change announced ahead) with that term's rate | the term's rate from that instant, `source = Cache`, its SKU and effective date, noted as taken from the announced term (after a failed refresh, also with the failure's note); the change from the kept rate is told first and noted on the first caller's rate, as if a refresh had found it; the entry stays as old as the answer | no (refreshed at its TTL, as any) |
/// | stale (past its TTL, or past the `effectiveDate` of a later term its answer listed without a usable rate for it), under a Tokio runtime | the stale rate at once, `source = Cache`, note says it is past its TTL (or replaced by the term of that date) and being refreshed, to every caller, the one that starts the refresh too; the refresh's answer replaces the entry when it lands | once, on a task of its own, nobody waiting |
/// | stale, a refresh already running | the same stale rate at once | no |
/// | stale, no Tokio runtime (the future polled by another executor) | the caller refreshes and waits; on success the new rate | yes |
/// | refresh failed, last good known | the last good rate, `source = Cache`, note says why the refresh failed | not until the backoff passes |
/// | failed, nothing good known | the fallback's rate, note names the primary's failure | not until the backoff passes |
/// | failed (either of the two above), backoff over, under a Tokio runtime | the same at once, to the caller that starts the retry too | once, on a task of its own, nobody waiting |
/// | failed, backoff over, no Tokio runtime | the caller retries and waits | yes |
/// | failed, backoff over, a retry running | what the failure left (last good or fallback) at once | no |
///
/// Under a Tokio runtime the primary is asked on a task of its own, which records
/// its answer for the key whatever becomes of the caller that started it: a look-up
/// dropped mid-fetch (a handler's timeout) neither wastes the fetch nor leaves the
/// key to be fetched again by the next caller, and the callers waiting for it get
/// the fallback's answer at once rather than their own fetch. Callers waiting for a
/// fetch take its answer when it lands, even one already stale (a zero TTL or
/// backoff): one request for all of them. A backoff too long for the clock
/// (`Duration::MAX`) never ends. Under a runtime a refresh's or retry's latency (up
/// to the live source's timeout) is thus on no caller's path: only the first
/// look-up of a key waits for the primary.
///
/// [`price_now`](PriceSource::price_now) answers without waiting wherever `price`
/// would, a stale key included (starting its refresh, under a runtime); `None` for
/// a key never fetched, a stale key without a runtime, the first look after a
/// refresh found a changed rate (that look belongs to `price`, see below), and any
/// look from the date of a term announced ahead until a call of `price` has put its
/// rate in place (telling the change first).
///
/// Each distinct failure of a key is logged once at WARN (target `sagemeter::pricing`),
/// not once per call. A refresh that finds another rate than the last good one, or a
/// term announced ahead that takes effect at another rate, is a [`PriceChange`]:
/// logged once at INFO, counted, told to the
/// [`on_change`](CachedPricesBuilder::on_change) observers before any caller gets
/// the new rate, and noted on the rate of the first call that `price` answers
/// from the cache after the refresh landed (or the term took effect), fresh or, when none came within the
/// TTL, stale (after the note that a refresh is under way; without a runtime: of
/// the call that fetched it); other calls priced at the new rate can finish before that one. All time comes from the injected
/// [`SharedTimeSource`]; when it steps back, cached prices are stale and backoffs
/// over (one early request each), rather than stretched by the step.
pub struct CachedPrices {
    inner: Arc<Inner>,
}

/// What [`CachedPrices`] shares with the fetches it leaves running on their own tasks.
struct Inner {
    primary: Arc<dyn PriceSource>,
    fallback: Option<Arc<dyn PriceSource>>,
    ttl: Duration,
    backoff: Duration,
    time: SharedTimeSource,
    slots: RwLock<crate::FastMap<PriceKey, Arc<Slot>>>,
    on_change: Vec<OnPriceChange>,
}

/// Builder for [`CachedPrices`]; start with [`CachedPrices::builder`].
pub struct CachedPricesBuilder {
    primary: Arc<dyn PriceSource>,
    fallback: Option<Arc<dyn PriceSource>>,
    ttl: Duration,
    backoff: Duration,
    time: Option<SharedTimeSource>,
    on_change: Vec<OnPriceChange>,
}

impl fmt::Debug for CachedPricesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedPricesBuilder")
            .field("primary", &self.primary)
            .field("fallback", &self.fallback)
            .field("ttl", &self.ttl)
            .field("backoff", &self.backoff)
            .field("on_change", &self.on_change.len())
            .finish_non_exhaustive()
    }
}

/// Everything known about one key.
#[derive(Default)]
struct Slot {
    state: RwLock<State>,
    /// Held while a new rate is compared with the last good one, the change told
    /// and the new rate put in place (a fetch landing, or a term announced ahead
    /// taking effect), so that each change is told once, in order, before anyone
    /// is served the new rate.
    tell: std::sync::Mutex<()>,
    /// Told when a fetch of the key lands, or leaves an answer for the callers
    /// waiting for it.
    landed: Notify,
    /// Run once, when a failed fetch is about to be recorded: where a test puts
    /// what another thread does just then.
    #[cfg(test)]
    before_failure_lands: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

#[derive(Default)]
struct State {
    good: Option<Good>,
    failure: Option<Failure>,
    /// The failure last logged at WARN for this key, so that each is logged once.
    warned: Option<PriceError>,
    /// A fetch of this key is under way: the single flight.
    fetching: bool,
    /// How many fetches of this key have landed.
    landed: u64,
    /// What the last fetch to land answers the callers that waited for it.
    last: Option<Result<Rate, PriceError>>,
    /// A refresh with no caller waiting for it found a new rate (or a term
    /// announced ahead took effect): the change's note, for the first caller
    /// served the new rate from the cache (or what a failed refresh left), or for
    /// the caller waiting for the fetch that lands next.
    announce: Option<String>,
}

struct Good {
    /// Served while fresh: `source = Cache` for a price that was fetched live.
    rate: Rate,
    /// Served while stale and a refresh is running.
    stale: Rate,
    fetched: SystemTime,
    /// When the answer listed a later term: from its date this rate is not the one
    /// in effect, so it is stale whatever its age.
    replaced: Option<Replaced>,
}

/// A later term a Price List answer listed beside the one in effect.
struct Replaced {
    /// Its `effectiveDate`.
    on: SystemTime,
    /// The term's rate as the answer gave it (noted as announced, with the term
    /// after it, if any): served from `on`. `None` when the answer gave none.
    by: Option<Rate>,
    /// Why the rate is stale from then, when the answer gave no rate for the term.
    note: String,
    /// Served from then while the refresh runs, when the answer gave no rate for
    /// the term.
    stale: Rate,
}

impl Good {
    /// The entry kept for `rate`, fetched at `fetched`, with the term `next` its
    /// answer announced (taken off the rate).
    fn new(rate: &Rate, next: Option<Box<NextTerm>>, fetched: SystemTime) -> Good {
        let replaced = next.map(|next| {
            let NextTerm { on, rate: by } = *next;
            let note = format!(
                "{REPLACED_NOTE_START}{}; a refresh is under way",
                on.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            Replaced {
                on: on.into(),
                by,
                stale: Rate::with_note_before(cached(rate), &note),
                note,
            }
        });
        // The rate served carries the terms announced after it, as they are served
        // from their dates: the accrual charges each stretch of standing capacity
        // at the rate in force then, not at the one looked up last.
        let mut served = cached(rate);
        served.next_term = replaced.as_ref().map(|replaced| {
            Box::new(NextTerm {
                on: replaced.on.into(),
                rate: replaced.by.as_ref().map(as_served),
            })
        });
        Good {
            stale: Rate::with_note_before(served.clone(), STALE_NOTE),
            rate: served,
            fetched,
            replaced,
        }
    }

    /// Whether a later term the answer listed is in effect by `now`.
    fn is_replaced(&self, now: SystemTime) -> bool {
        self.replaced.as_ref().is_some_and(|r| r.on <= now)
    }

    /// The rate of the later term the answer listed, when it is in effect by `now`
    /// and the answer gave its rate: served from then instead of this one.
    fn announced_in_effect(&self, now: SystemTime) -> Option<&Rate> {
        self.replaced
            .as_ref()
            .filter(|r| r.on <= now)
            .and_then(|r| r.by.as_ref())
    }

    /// Why the rate is stale at `now`: past its TTL, or replaced by a later term.
    fn stale_note(&self, now: SystemTime) -> &str {
        match &self.replaced {
            Some(replaced) if replaced.on <= now => &replaced.note,
            _ => STALE_NOTE,
        }
    }

    /// The rate served stale at `now`, saying why.
    fn stale_at(&self, now: SystemTime) -> &Rate {
        match &self.replaced {
            Some(replaced) if replaced.on <= now => &replaced.stale,
            _ => &self.stale,
        }
    }
}

struct Failure {
    /// `None`: a backoff too long for the clock, which never ends.
    retry_after: Option<SystemTime>,
    /// What callers get until `retry_after`: the last good price or the fallback's answer,
    /// already noted with the failure.
    answer: Result<Rate, PriceError>,
    /// When `answer` is the last good price: the note put on it, so that the rate of
    /// a term announced ahead replaces it, noted the same, from the term's date.
    kept: Option<String>,
}

/// What a caller does after one look at a key's state.
enum Next {
    Answer(Result<Rate, PriceError>),
    /// Wait for the fetch under way.
    Wait,
    /// Fetch: this caller set `fetching`.
    Fetch,
    /// Answer at once, and refresh on a task of its own: this caller set `fetching`.
    Refresh(Result<Rate, PriceError>),
    /// A term the kept answer announced ahead is in effect: put its rate in place
    /// (telling the change), then look again.
    Switch,
}

impl CachedPrices {
    /// Starts a cache in front of `primary` (typically [`LivePrices`](super::LivePrices)).
    pub fn builder(primary: impl PriceSource + 'static) -> CachedPricesBuilder {
        CachedPricesBuilder {
            primary: Arc::new(primary),
            fallback: None,
            ttl: DEFAULT_TTL,
            backoff: DEFAULT_FAILURE_BACKOFF,
            time: None,
            on_change: Vec::new(),
        }
    }

    /// Whether a fetch of `key` is under way, without taking anything the next
    /// caller would get (tests wait for refreshes to land).
    #[cfg(test)]
    pub(crate) fn is_fetching(&self, key: &PriceKey) -> bool {
        let slots = self
            .inner
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        slots.get(key).is_some_and(|slot| {
            slot.state
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .fetching
        })
    }

    /// Forgets every cached price, failure and backoff (e.g. for a `--refresh` flag).
    pub fn clear(&self) {
        self.inner
            .slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Inner {
    fn is_fresh(&self, good: &Good, now: SystemTime) -> bool {
        // Fetched "later than now": the clock stepped back and the age is unknown.
        // Stale (one refresh), rather than fresh for as long as the step.
        now.duration_since(good.fetched)
            .is_ok_and(|age| age < self.ttl)
            && !good.is_replaced(now)
    }

    fn in_backoff(&self, failure: &Failure, now: SystemTime) -> bool {
        let Some(retry_after) = failure.retry_after else {
            return true;
        };
        // A backoff ending more than one backoff from now means the clock stepped
        // back: it is over, rather than stretched by the step.
        retry_after
            .duration_since(now)
            .is_ok_and(|left| !left.is_zero() && left <= self.backoff)
    }

    /// When a backoff starting `now` ends; `None` when that is past the clock's range.
    fn backoff_end(&self, now: SystemTime) -> Option<SystemTime> {
        now.checked_add(self.backoff)
    }

    fn slot(&self, key: &PriceKey) -> Arc<Slot> {
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return slot.clone();
        }
        self.slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// What the state alone can answer: a fresh rate, or the answer kept for a backoff.
    /// `None` too while a change waits to be announced (see [`Inner::next`]).
    fn settled(&self, state: &State, now: SystemTime) -> Option<Result<Rate, PriceError>> {
        if state.announce.is_some() {
            return None;
        }
        if let Some(good) = &state.good {
            // A term the answer announced took effect: its rate, once put in place.
            if good.announced_in_effect(now).is_some() {
                return None;
            }
        }
        if let Some(good) = &state.good
            && self.is_fresh(good, now)
        {
            return Some(Ok(good.rate.clone()));
        }
        match &state.failure {
            Some(failure) if self.in_backoff(failure, now) => Some(failure.answer.clone()),
            _ => None,
        }
    }

    /// One look at the key's state: an answer, a fetch to wait for, or one to make.
    /// `waiting_since` is how many fetches had landed when this caller began waiting.
    /// With `detach` (a Tokio runtime at hand) a stale key with a last good rate is
    /// answered at once and refreshed on a task of its own ([`Next::Refresh`]).
    /// Without `waits` (`price_now`, which cannot wait) a fetch this caller would
    /// have to wait for, or a change to announce, is [`Next::Wait`]: left to a
    /// caller of `price`.
    fn next(
        &self,
        slot: &Slot,
        waiting_since: &mut Option<u64>,
        detach: bool,
        waits: bool,
    ) -> Next {
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        let now = self.time.now();
        // A term the kept answer announced ahead took effect: its rate is the one in
        // force, put in place (and the change told) before anyone is served it, by
        // a caller of `price` (the change is noted on the first receipt at it).
        if state
            .good
            .as_ref()
            .is_some_and(|good| good.announced_in_effect(now).is_some())
        {
            return if waits { Next::Switch } else { Next::Wait };
        }
        // The first caller served from the cache after a refresh found a new rate:
        // that rate, noted with the change. Only through `price`: the call path
        // reuses what `price_now` answers for a while, which would put the note on
        // every receipt meanwhile.
        if state.announce.is_some()
            && let Some(good) = &state.good
            && self.is_fresh(good, now)
        {
            if !waits {
                return Next::Wait;
            }
            let state = &mut *state;
            if let (Some(change), Some(good)) = (state.announce.take(), &state.good) {
                return Next::Answer(Ok(Rate::with_note_before(good.rate.clone(), &change)));
            }
        }
        // A change told while a fetch that then failed was under way (a term
        // announced ahead put in place meanwhile): the first caller served what
        // the failure left (the new rate, kept) is told, as after a switch that
        // followed the failure.
        if state.announce.is_some()
            && let Some(failure) = &state.failure
            && self.in_backoff(failure, now)
        {
            if !waits {
                return Next::Wait;
            }
            let kept = failure.answer.clone();
            if let Some(change) = state.announce.take() {
                return Next::Answer(kept.map(|rate| Rate::with_note_before(rate, &change)));
            }
        }
        if let Some(answer) = self.settled(&state, now) {
            return Next::Answer(answer);
        }
        // A fetch landed while this caller waited: its answer, even one already
        // stale (a zero TTL or backoff), rather than a fetch of its own.
        if let (Some(since), Some(last)) = (*waiting_since, &state.last)
            && state.landed > since
        {
            return Next::Answer(last.clone());
        }
        // A change the last refresh found that no caller has been told of (none
        // came while the new rate was fresh), or one told while a fetch that failed
        // ran and no caller came in the backoff: the first caller served it stale
        // (or what the failure left) is told, as one served it fresh would be.
        // Through `price` only, as above.
        let untold = state.announce.is_some() && state.good.is_some();
        if untold && !waits {
            return Next::Wait;
        }
        // What to serve while a fetch runs: the stale rate, else the answer kept
        // from the last failure (its backoff over, a retry due).
        let at_hand = match (&state.good, &state.failure) {
            (Some(_), _) if untold => {
                state
                    .announce
                    .clone()
                    .zip(state.good.as_ref())
                    .map(|(change, good)| {
                        let announced = Rate::with_note_before(good.rate.clone(), &change);
                        Ok(Rate::with_note_before(announced, good.stale_note(now)))
                    })
            }
            (Some(good), _) => Some(Ok(good.stale_at(now).clone())),
            (None, Some(failure)) => Some(failure.answer.clone()),
            (None, None) => None,
        };
        if state.fetching {
            return match at_hand {
                Some(answer) => {
                    if untold {
                        state.announce = None;
                    }
                    Next::Answer(answer)
                }
                None => {
                    waiting_since.get_or_insert(state.landed);
                    Next::Wait
                }
            };
        }
        // Whatever is at hand is served at once, to the caller that starts the
        // refresh too: a last good rate, even stale, or after a failure what it
        // left (the last good rate or the fallback's answer, saying why; the backoff
        // restarts below, so that is what the others get meanwhile). The refresh
        // or retry runs on a task of its own. Only a key never answered waits.
        let refresh = match &state.failure {
            Some(failure) if untold => state.announce.as_ref().map(|change| {
                failure
                    .answer
                    .clone()
                    .map(|rate| Rate::with_note_before(rate, change))
            }),
            Some(failure) => Some(failure.answer.clone()),
            None => at_hand,
        }
        .filter(|_| detach);
        if refresh.is_none() && !waits {
            return Next::Wait;
        }
        state.fetching = true;
        // A retry restarts the backoff before it asks: were its fetch dropped
        // mid-request (no runtime to leave it on), the next caller would otherwise
        // retry at once, and wait for it.
        let retry_after = self.backoff_end(now);
        if let Some(failure) = &mut state.failure {
            failure.retry_after = retry_after;
        }
        match refresh {
            Some(answer) => {
                if untold {
                    state.announce = None;
                }
                Next::Refresh(answer)
            }
            None => Next::Fetch,
        }
    }

    async fn look_up(self: &Arc<Self>, key: &PriceKey) -> Result<Rate, PriceError> {
        let slot = self.slot(key);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let mut waiting_since = None;
        // A change this caller told on switching to an announced term's rate, to be
        // noted on its answer (when it could not be left to the first caller served
        // from the cache: after a failure, whose answer the callers get).
        let mut owed: Option<String> = None;
        let noted = |answer: Result<Rate, PriceError>, owed: Option<String>| match owed {
            Some(note) => answer.map(|rate| Rate::with_note_before(rate, &note)),
            None => answer,
        };
        loop {
            // Registered before the look, so that a fetch landing after it wakes us.
            let landed = slot.landed.notified();
            let mut landed = std::pin::pin!(landed);
            landed.as_mut().enable();
            match self.next(&slot, &mut waiting_since, runtime.is_some(), true) {
                Next::Answer(answer) => return noted(answer, owed),
                Next::Wait => landed.await,
                Next::Fetch => return noted(self.fly(slot.clone(), key).await, owed),
                Next::Refresh(answer) => {
                    if let Some(runtime) = &runtime {
                        self.refresh(runtime, slot.clone(), key.clone());
                    }
                    return noted(answer, owed);
                }
                Next::Switch => {
                    if let Some(note) = self.switch(&slot) {
                        owed = Some(note);
                    }
                }
            }
        }
    }

    /// Puts in place the rate of a term the kept answer announced ahead, now in
    /// effect: the change from the kept rate told first (logged, counted, given to
    /// the observers), as a refresh that found it would. The entry stays as old as
    /// the answer (its TTL runs from the fetch). The change is noted on the rate of
    /// the first caller served from the cache; after a failure (the callers get
    /// the last good price, saying why) the failure's answer becomes the new rate,
    /// noted the same, and the change note is returned for this caller.
    fn switch(&self, slot: &Slot) -> Option<String> {
        let _telling = slot.tell.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.time.now();
        let (change, rate, fetched) = {
            let state = slot.state.read().unwrap_or_else(PoisonError::into_inner);
            // Another caller, or a fetch that landed, did it first.
            let good = state.good.as_ref()?;
            let rate = in_effect(good.announced_in_effect(now)?.clone(), now);
            let change = PriceChange::between(&good.rate, &rate, now.into());
            (change, rate, good.fetched)
        };
        if let Some(change) = &change {
            self.changed(change);
        }
        let mut rate = rate;
        let next = rate.next_term.take();
        let good = Good::new(&rate, next, fetched);
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut owed = None;
        if let Some(failure) = &mut state.failure
            && let Some(kept) = &failure.kept
        {
            failure.answer = Ok(Rate::with_note_before(good.rate.clone(), kept));
            owed = change.as_ref().map(PriceChange::note);
        } else if let Some(change) = &change {
            // After a change a refresh found that no call has been told of yet.
            let earlier = state.announce.take();
            state.announce = Some(match earlier {
                Some(earlier) => format!("{}; {earlier}", change.note()),
                None => change.note(),
            });
        }
        state.good = Some(good);
        drop(state);
        slot.landed.notify_waiters();
        owed
    }

    /// Refreshes `key` on a task of its own, for a caller that set `fetching` and
    /// was answered without waiting: its answer replaces the key's entry when it
    /// lands. Dropped with the runtime (the flight's guard lets the next caller
    /// refresh).
    fn refresh(self: &Arc<Self>, runtime: &tokio::runtime::Handle, slot: Arc<Slot>, key: PriceKey) {
        let refresh = self.clone().fetch(slot, key, None);
        drop(runtime.spawn(refresh.instrument(tracing::Span::current())));
    }

    /// Fetches `key` for a caller that set `fetching`: on a task of its own when a
    /// Tokio runtime is at hand, so that it lands whatever becomes of the caller.
    async fn fly(self: &Arc<Self>, slot: Arc<Slot>, key: &PriceKey) -> Result<Rate, PriceError> {
        // Dropped, unsent, when the caller is: tells the fetch that nobody waits.
        let (caller, gone) = oneshot::channel::<Infallible>();
        let fetch = self.clone().fetch(slot, key.clone(), Some(gone));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to leave it on: fetched on the caller's task, and dropped
            // with it (the backoff restarted before it asked still holds).
            let answer = fetch.await;
            drop(caller);
            return answer;
        };
        let task = runtime.spawn(fetch.instrument(tracing::Span::current()));
        let landed = task.await;
        drop(caller);
        match landed {
            Ok(answer) => answer,
            // The runtime is shutting down, or the fetch panicked outside the
            // primary's look-up (whose panic `asked` turns into a failure that
            // lands); the flight's guard has let the next caller fetch.
            Err(error) => {
                let what = if error.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                let error = PriceError::Unavailable {
                    reason: format!("the price look-up {what}"),
                };
                self.fall_back(key, &error).await
            }
        }
    }

    /// Asks the primary and records its answer for the key; returns the answer of
    /// the caller that started it. `gone` tells when that caller went away; `None`
    /// for a refresh nobody waits for.
    async fn fetch(
        self: Arc<Self>,
        slot: Arc<Slot>,
        key: PriceKey,
        gone: Option<oneshot::Receiver<Infallible>>,
    ) -> Result<Rate, PriceError> {
        let mut flight = Flight {
            slot: slot.clone(),
            landed: false,
        };
        let detached = gone.is_none();
        let gone = async {
            match gone {
                Some(gone) => drop(gone.await),
                None => std::future::pending::<()>().await,
            }
        };
        let mut gone = std::pin::pin!(gone);
        let asking = asked(self.primary.as_ref(), &key);
        let mut asking = std::pin::pin!(asking);
        let result = tokio::select! {
            biased;
            result = &mut asking => result,
            () = &mut gone => {
                self.abandoned(&slot, &key).await;
                asking.await
            }
        };
        let answer = self.land(&slot, &key, result, detached).await;
        flight.landed = true;
        answer
    }

    /// The caller that started the first fetch of a key went away before it
    /// landed: the callers waiting for it (and those to come) get the fallback's
    /// answer, noted, for a backoff, while the fetch goes on.
    async fn abandoned(&self, slot: &Slot, key: &PriceKey) {
        let answered = {
            let state = slot.state.read().unwrap_or_else(PoisonError::into_inner);
            state.good.is_some() || state.failure.is_some()
        };
        if answered {
            return;
        }
        let pending = PriceError::Unavailable {
            reason: "no answer yet; the look-up goes on in the background".into(),
        };
        let answer = self.fall_back(key, &pending).await;
        let now = self.time.now();
        let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.good.is_none() && state.failure.is_none() {
            state.failure = Some(Failure {
                retry_after: self.backoff_end(now),
                answer,
                kept: None,
            });
        }
        drop(state);
        slot.landed.notify_waiters();
    }

    /// Records what the primary answered for `key`; returns the answer of the caller
    /// that asked (the others get theirs from the state). A change found by a
    /// `detached` refresh, which no caller waits for, is noted on the rate of the
    /// first caller served from the cache after it.
    async fn land(
        &self,
        slot: &Slot,
        key: &PriceKey,
        result: Result<Rate, PriceError>,
        detached: bool,
    ) -> Result<Rate, PriceError> {
        let now = self.time.now();
        // A term the answer announced may be in effect already (it landed after
        // that date): its rate, as from then. One that is no price ($0, or beyond
        // any SageMaker price, from a custom source) is a failed look-up: it
        // neither replaces the last good price (told as a change to $0) nor is
        // served.
        let result = super::plausible(result.map(|rate| in_effect(rate, now)));
        let answer = match result {
            Ok(mut rate) => {
                let _telling = slot.tell.lock().unwrap_or_else(PoisonError::into_inner);
                // Kept with the entry, not on the rates served.
                let next = rate.next_term.take();
                let change = {
                    let state = slot.state.read().unwrap_or_else(PoisonError::into_inner);
                    state
                        .good
                        .as_ref()
                        .and_then(|old| PriceChange::between(&old.rate, &rate, now.into()))
                };
                let good = Good::new(&rate, next, now);
                // The terms announced after it, as the cache serves them.
                rate.next_term = good.rate.next_term.clone();
                // Told before anyone can be priced at the new rate, so that a ledger's
                // record of the change comes before every receipt at that rate.
                let found = change.map(|change| {
                    self.changed(&change);
                    change.note()
                });
                let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
                // A change told while the fetch ran (a term announced ahead put in
                // place) that no caller has been told of stays to be noted, after
                // the one this answer brings.
                let note = match (found, state.announce.take()) {
                    (Some(found), Some(earlier)) => Some(format!("{found}; {earlier}")),
                    (found, earlier) => found.or(earlier),
                };
                if detached {
                    state.announce = note;
                } else if let Some(note) = &note {
                    rate = Rate::with_note_before(rate, note);
                }
                // Recovered from a failure that was warned of (not from the fallback
                // served while a dropped caller's fetch went on).
                if state.failure.take().is_some() && state.warned.is_some() {
                    tracing::info!(target: "sagemeter::pricing", key = %key, "price source recovered");
                }
                state.last = Some(Ok(good.rate.clone()));
                state.good = Some(good);
                state.warned = None;
                state.landed += 1;
                state.fetching = false;
                Ok(rate)
            }
            Err(error) => {
                // The fallback is asked (on no lock) only when no good price is
                // known; once one is, it stays.
                let known = slot
                    .state
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .good
                    .is_some();
                let fallback = if known {
                    None
                } else {
                    Some(self.fall_back(key, &error).await)
                };
                #[cfg(test)]
                {
                    let hook = slot
                        .before_failure_lands
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                    if let Some(hook) = hook {
                        hook();
                    }
                }
                // The last good price is read under the lock it is recorded
                // under: a term announced ahead may have been put in place since
                // the fetch began (see `switch`), and its rate is the one kept.
                let mut state = slot.state.write().unwrap_or_else(PoisonError::into_inner);
                let (answer, kept) = match state.good.as_ref() {
                    Some(g) => {
                        let fetched = chrono::DateTime::<chrono::Utc>::from(g.fetched);
                        let kept = format!(
                            "{FAILED_NOTE_START}{error}); kept the last good price, fetched {}",
                            fetched.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        );
                        (
                            Ok(Rate::with_note_before(g.rate.clone(), &kept)),
                            Some(kept),
                        )
                    }
                    None => (fallback.unwrap_or_else(|| Err(error.clone())), None),
                };
                if state.warned.as_ref() != Some(&error) {
                    let using = match &answer {
                        Ok(rate) if rate.provenance.source == PriceOrigin::Cache => {
                            "the last good price"
                        }
                        Ok(_) => "the fallback price",
                        Err(_) => "no price",
                    };
                    tracing::warn!(
                        target: "sagemeter::pricing",
                        key = %key,
                        error = %error,
                        retry_in_secs = self.backoff.as_secs(),
                        "price look-up failed; using {using}"
                    );
                    state.warned = Some(error);
                }
                state.failure = Some(Failure {
                    retry_after: self.backoff_end(now),
                    answer: answer.clone(),
                    kept,
                });
                state.last = Some(answer.clone());
                state.landed += 1;
                state.fetching = false;
                // A change told while the fetch ran (a term announced ahead put in
                // place) that no caller has been told of: the caller waiting for
                // the fetch is; else the first caller served what the failure left
                // (see `next`).
                if !detached && let Some(change) = state.announce.take() {
                    answer.map(|rate| Rate::with_note_before(rate, &change))
                } else {
                    answer
                }
            }
        };
        slot.landed.notify_waiters();
        answer
    }

    /// Logs, counts and tells the observers of one change.
    fn changed(&self, change: &PriceChange) {
        tracing::info!(
            target: "sagemeter::pricing",
            key = %change.key,
            old_usd_per_unit = %change.old_usd_per_unit,
            new_usd_per_unit = %change.new_usd_per_unit,
            old_effective_date = change.old_effective_date.as_deref().unwrap_or("unknown"),
            new_effective_date = change.new_effective_date.as_deref().unwrap_or("unknown"),
            "price changed"
        );
        metrics::counter!("sagemeter_price_changes_total").increment(1);
        // On a caller's path when a term announced ahead takes effect: an observer
        // that panics must not fail the call (nor leave the others untold).
        for observer in &self.on_change {
            let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observer(change)));
            if told.is_err() {
                tracing::warn!(
                    target: "sagemeter::pricing",
                    key = %change.key,
                    "a price change observer panicked; the panic was caught"
                );
            }
        }
    }

    /// The fallback's answer for `key`, after the primary failed with `error`. A
    /// fallback's $0, or a rate beyond any SageMaker price, is no price, as the
    /// primary's is (see `land`): it is neither served nor kept for the backoff.
    async fn fall_back(&self, key: &PriceKey, error: &PriceError) -> Result<Rate, PriceError> {
        let Some(fallback) = &self.fallback else {
            return Err(error.clone());
        };
        match super::plausible(fallback.price(key).await) {
            Ok(rate) => Ok(Rate::with_note_before(
                rate,
                &format!("{PRIMARY_FAILED_NOTE_START}{error})"),
            )),
            Err(fallback_error) => Err(match error {
                // The primary (the Price List) has no such product: the fallback's
                // "not covered here, ask the Price List" would send the reader
                // back to it.
                PriceError::NotFound { .. } | PriceError::NotCovered { .. } => match fallback_error
                {
                    PriceError::NotCovered { .. } => error.clone(),
                    other => other,
                },
                PriceError::Unavailable { reason } => PriceError::Unavailable {
                    reason: format!("{reason}; fallback: {fallback_error}"),
                },
                PriceError::Malformed { reason } => PriceError::Malformed {
                    reason: format!("{reason}; fallback: {fallback_error}"),
                },
                // "Only in CNY" is the reason there is no price: a fallback's failure
                // (no CNY region is in the snapshot) says nothing more.
                PriceError::OtherCurrency { .. } => error.clone(),
                // The primary's "only $0 listed" says more than a fallback's "not found".
                PriceError::ZeroOnly { key, reason } => match fallback_error {
                    PriceError::NotFound { .. } | PriceError::NotCovered { .. } => error.clone(),
                    other => PriceError::ZeroOnly {
                        key: key.clone(),
                        reason: format!("{reason} (fallback: {other})"),
                    },
                },
            }),
        }
    }
}

/// What `primary` answers for `key`, a panic of its look-up (in `price` or in
/// polling its future) turned into an [`PriceError::Unavailable`]: a failure like
/// any other, recorded with its backoff and its answer for the callers waiting,
/// rather than an unwinding fetch that records nothing and lets each of them ask
/// again.
async fn asked(primary: &dyn PriceSource, key: &PriceKey) -> Result<Rate, PriceError> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let panicked = || PriceError::Unavailable {
        reason: "the price look-up panicked".into(),
    };
    let Ok(mut asking) = catch_unwind(AssertUnwindSafe(|| primary.price(key))) else {
        return Err(panicked());
    };
    // Polled no more once it panicked: the closure answers `Ready` then.
    std::future::poll_fn(move |cx| {
        match catch_unwind(AssertUnwindSafe(|| asking.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => std::task::Poll::Ready(Err(panicked())),
        }
    })
    .await
}

/// The single flight of one key while its fetch runs: ended by the fetch landing,
/// else by this guard when the fetch is dropped or panics outside the primary's
/// look-up (a panic of the primary itself lands as a failure, see [`asked`]), so
/// that the callers waiting for it look again (and one of them fetches).
struct Flight {
    slot: Arc<Slot>,
    landed: bool,
}

impl Drop for Flight {
    fn drop(&mut self) {
        if self.landed {
            return;
        }
        self.slot
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .fetching = false;
        self.slot.landed.notify_waiters();
    }
}

/// `rate`, or the rate of the latest term its answer announced ahead that is in
/// effect by `now` (when the answer gave one).
fn in_effect(mut rate: Rate, now: SystemTime) -> Rate {
    loop {
        match rate.next_term.take() {
            Some(next) if SystemTime::from(next.on) <= now && next.rate.is_some() => {
                let NextTerm { rate: by, .. } = *next;
                match by {
                    Some(by) => rate = by,
                    None => return rate,
                }
            }
            next => {
                rate.next_term = next;
                return rate;
            }
        }
    }
}

/// An announced term's `rate` as the cache serves it from its date (see
/// [`Good::new`]), with the terms it announces after it likewise.
fn as_served(rate: &Rate) -> Rate {
    let mut served = cached(rate);
    served.next_term = rate.next_term.as_deref().map(|next| {
        Box::new(NextTerm {
            on: next.on,
            rate: next.rate.as_ref().map(as_served),
        })
    });
    served
}

/// A fetched rate as served again from the cache.
fn cached(rate: &Rate) -> Rate {
    let mut rate = rate.clone();
    if rate.provenance.source == PriceOrigin::Live {
        rate.provenance.source = PriceOrigin::Cache;
    }
    rate
}

impl CachedPricesBuilder {
    /// The source asked when the primary fails and no good price is known (typically
    /// [`Snapshot::bundled`](super::Snapshot::bundled)). Without one, the primary's
    /// error is returned. Its answer of $0, or of more than
    /// [`MAX_SANE_USD_PER_UNIT`](super::MAX_SANE_USD_PER_UNIT) a unit, is no price,
    /// as the primary's is: the look-up fails, its error naming that answer.
    pub fn fallback(mut self, fallback: impl PriceSource + 'static) -> Self {
        self.fallback = Some(Arc::new(fallback));
        self
    }

    /// How long a fetched price is served without asking again (default [`DEFAULT_TTL`]).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long the primary is left alone for a key after it failed (default
    /// [`DEFAULT_FAILURE_BACKOFF`]).
    pub fn failure_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Also tells `observer` of every [`PriceChange`] (after the INFO event and the
    /// counter), on the task that refreshed the price, or, for a term announced
    /// ahead that took effect, on the first call to look the price up from its
    /// date (the calls after it wait for it): keep it quick. One that panics is
    /// caught, with a WARN.
    /// [`ClientBuilder`](crate::ClientBuilder)'s default source tells the client's
    /// sinks; give a [`JsonlLedger`](crate::ledger::JsonlLedger)'s
    /// [`record_price_change`](crate::ledger::JsonlLedger::record_price_change)
    /// here when you build the source yourself.
    pub fn on_change(mut self, observer: impl Fn(&PriceChange) + Send + Sync + 'static) -> Self {
        self.on_change.push(Arc::new(observer));
        self
    }

    /// Where "now" comes from for TTL and backoff (default: the system clock).
    pub fn time_source(mut self, time: SharedTimeSource) -> Self {
        self.time = Some(time);
        self
    }

    /// Builds the cache (empty; nothing is fetched until asked).
    pub fn build(self) -> CachedPrices {
        CachedPrices {
            inner: Arc::new(Inner {
                primary: self.primary,
                fallback: self.fallback,
                ttl: self.ttl,
                backoff: self.backoff,
                time: self.time.unwrap_or_default(),
                slots: RwLock::default(),
                on_change: self.on_change,
            }),
        }
    }
}

impl PriceSource for CachedPrices {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(self.inner.look_up(key))
    }

    /// A fresh rate, or the answer kept for a failure's backoff: read locks, a map
    /// look-up and a clone. A stale rate too, under a Tokio runtime, starting its
    /// refresh on a task of its own as [`price`](Self::price) does. Unknown keys,
    /// and stale ones without a runtime, need [`price`](Self::price).
    fn price_now(&self, key: &PriceKey) -> Option<Result<Rate, PriceError>> {
        let inner = &self.inner;
        let slot = {
            let slots = inner.slots.read().unwrap_or_else(PoisonError::into_inner);
            let slot = slots.get(key)?;
            let state = slot.state.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(answer) = inner.settled(&state, inner.time.now()) {
                return Some(answer);
            }
            slot.clone()
        };
        let runtime = tokio::runtime::Handle::try_current().ok();
        match inner.next(&slot, &mut None, runtime.is_some(), false) {
            Next::Answer(answer) => Some(answer),
            Next::Refresh(answer) => {
                if let Some(runtime) = &runtime {
                    inner.refresh(runtime, slot, key.clone());
                }
                Some(answer)
            }
            Next::Wait | Next::Fetch | Next::Switch => None,
        }
    }

    /// Fetches a key never answered, the one request that every caller after it
    /// waits for or finds landed; nothing for a key with an answer at hand (even
    /// stale, or kept after a failure: the next look-up answers from it at once)
    /// or with a fetch under way. The answer goes to nobody: a price change
    /// waiting to be noted stays for the first receipt priced at the new rate.
    fn warm<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let known = {
                let slots = self
                    .inner
                    .slots
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                slots.get(key).is_some_and(|slot| {
                    let state = slot.state.read().unwrap_or_else(PoisonError::into_inner);
                    state.good.is_some() || state.failure.is_some() || state.fetching
                })
            };
            if !known {
                // A key never answered has no change to note: `look_up` only
                // fetches it, or waits for the fetch another caller just started.
                let _ = self.inner.look_up(key).await;
            }
        })
    }
}

impl fmt::Debug for CachedPrices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let keys = inner
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("CachedPrices")
            .field("primary", &inner.primary)
            .field("fallback", &inner.fallback)
            .field("ttl", &inner.ttl)
            .field("failure_backoff", &inner.backoff)
            .field("keys", &keys)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{Provenance, Snapshot};
    use aws_smithy_async::test_util::ManualTimeSource;
    use aws_smithy_async::time::TimeSource;
    use rust_decimal::Decimal;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;
    use tokio::sync::Semaphore;

    /// A primary that answers from a script and can be held at a gate.
    #[derive(Debug, Default)]
    struct Scripted {
        calls: AtomicUsize,
        script: Mutex<VecDeque<Result<Decimal, PriceError>>>,
        /// When set, each call waits for a permit.
        gate: Option<Arc<Semaphore>>,
        /// The note on every rate answered (a live answer's own), if any.
        note: Option<&'static str>,
        /// From this call on (counted from 1), each call panics once past the gate.
        panics_from: Option<usize>,
    }

    impl Scripted {
        fn answering(answers: impl IntoIterator<Item = Result<Decimal, PriceError>>) -> Arc<Self> {
            Arc::new(Scripted {
                script: Mutex::new(answers.into_iter().collect()),
                ..Default::default()
            })
        }

        fn gated(
            answers: impl IntoIterator<Item = Result<Decimal, PriceError>>,
            gate: Arc<Semaphore>,
        ) -> Arc<Self> {
            Arc::new(Scripted {
                script: Mutex::new(answers.into_iter().collect()),
                gate: Some(gate),
                ..Default::default()
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl PriceSource for Scripted {
        fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
            Box::pin(async move {
                let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(gate) = &self.gate {
                    gate.acquire().await.unwrap().forget();
                }
                if self.panics_from.is_some_and(|from| call >= from) {
                    panic!("the scripted primary panics on call {call}");
                }
                let next = self.script.lock().unwrap().pop_front();
                let usd = next.unwrap_or_else(|| {
                    Err(PriceError::Unavailable {
                        reason: "script exhausted".into(),
                    })
                })?;
                let mut provenance = Provenance::new(PriceOrigin::Live)
                    .with_sku("SKU1")
                    .with_effective_date("2026-05-01T00:00:00Z");
                if let Some(note) = self.note {
                    provenance = provenance.with_note(note);
                }
                Ok(Rate::new(key.clone(), usd, provenance))
            })
        }
    }

    fn usd(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    /// Asserts `rate` came from `origin` at `usd` per unit.
    #[track_caller]
    fn assert_rate(rate: &Rate, origin: PriceOrigin, usd_per_unit: &str) {
        assert_eq!(
            (rate.provenance.source, rate.usd_per_unit),
            (origin, usd(usd_per_unit))
        );
    }

    fn throttled() -> PriceError {
        PriceError::Unavailable {
            reason: "the Price List API throttled the request (ThrottlingException, HTTP 400)"
                .into(),
        }
    }

    fn key() -> PriceKey {
        PriceKey::hosting("us-east-1", "ml.m5.xlarge")
    }

    /// `n` callers asking `prices` for [`key`] at once, each on a task of its own.
    fn callers(
        prices: &Arc<CachedPrices>,
        n: usize,
    ) -> Vec<tokio::task::JoinHandle<Result<Rate, PriceError>>> {
        (0..n)
            .map(|_| {
                let prices = prices.clone();
                tokio::spawn(async move { prices.price(&key()).await })
            })
            .collect()
    }

    fn clock() -> ManualTimeSource {
        ManualTimeSource::new(UNIX_EPOCH + Duration::from_secs(1_780_000_000))
    }

    fn cache(primary: Arc<Scripted>, time: &ManualTimeSource) -> CachedPrices {
        CachedPrices::builder(primary)
            .fallback(Snapshot::bundled())
            .ttl(Duration::from_secs(3600))
            .failure_backoff(Duration::from_secs(60))
            .time_source(SharedTimeSource::new(time.clone()))
            .build()
    }

    #[tokio::test]
    async fn first_answer_is_live_then_cached_without_asking_again() {
        let time = clock();
        let primary = Scripted::answering([Ok(usd("0.23"))]);
        let prices = cache(primary.clone(), &time);

        let first = prices.price(&key()).await.unwrap();
        assert_eq!(first.provenance.source, PriceOrigin::Live);
        time.advance(Duration::from_secs(3599));
        let second = prices.price(&key()).await.unwrap();
        assert_eq!(second.provenance.source, PriceOrigin::Cache);
        assert_eq!(second.usd_per_unit, usd("0.23"));
        assert_eq!(second.provenance.sku.as_deref(), Some("SKU1"));
        assert_eq!(second.provenance.note, None);
        assert_eq!(prices.price_now(&key()).and_then(Result::ok), Some(second));
        assert_eq!(primary.calls(), 1);
    }

    /// The note on a stale rate served while its refresh runs.
    const REFRESHING: &str = "cached price older than its TTL; a refresh is under way";

    #[tokio::test(start_paused = true)]
    async fn the_first_caller_after_the_ttl_gets_the_stale_rate_at_once_and_starts_the_refresh() {
        let time = clock();
        // The gate lets the first fetch through; the refresh never gets an answer.
        let gate = Arc::new(Semaphore::new(1));
        let primary = Scripted::gated([Ok(usd("0.23")), Ok(usd("0.25"))], gate);
        let prices = cache(primary.clone(), &time);
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(3600));

        // (Paused time: were it waiting for the refresh, the timeout would fire.)
        let stale = tokio::time::timeout(Duration::from_secs(1), prices.price(&key()))
            .await
            .expect("answered without waiting for the refresh")
            .unwrap();
        assert_eq!(
            (
                stale.provenance.source,
                stale.usd_per_unit,
                stale.provenance.note.as_deref()
            ),
            (PriceOrigin::Cache, usd("0.23"), Some(REFRESHING))
        );
        assert_eq!(stale.provenance.sku.as_deref(), Some("SKU1"));
        // It started the refresh, which runs on without it.
        until(|| primary.calls() == 2).await;
        assert!(prices.is_fetching(&key()));
        // Without waiting, the same answer.
        assert_eq!(prices.price_now(&key()), Some(Ok(stale)));
        assert_eq!(primary.calls(), 2);
    }

    #[tokio::test]
    async fn price_now_serves_a_stale_rate_and_starts_the_refresh_under_a_runtime() {
        let time = clock();
        let primary = Scripted::answering([Ok(usd("0.23")), Ok(usd("0.23"))]);
        let prices = cache(primary.clone(), &time);
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(3600));

        let stale = prices
            .price_now(&key())
            .expect("a stale rate at hand")
            .unwrap();
        assert_eq!(
            (stale.usd_per_unit, stale.provenance.note.as_deref()),
            (usd("0.23"), Some(REFRESHING))
        );
        assert!(prices.is_fetching(&key()), "the refresh started");
        until(|| !prices.is_fetching(&key())).await;
        assert_eq!(primary.calls(), 2);
        let fresh = prices.price_now(&key()).unwrap().unwrap();
        assert_eq!(
            (fresh.provenance.source, fresh.provenance.note),
            (PriceOrigin::Cache, None)
        );
    }

    /// Polls `future` once outside any runtime, as another executor would.
    fn poll_once<F: std::future::Future>(future: F) -> std::task::Poll<F::Output> {
        let mut future = std::pin::pin!(future);
        future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn without_a_tokio_runtime_the_caller_after_the_ttl_refreshes_on_its_own_task() {
        let time = clock();
        let primary = Scripted::answering([Ok(usd("0.23")), Ok(usd("0.25"))]);
        let prices = cache(primary.clone(), &time);
        let std::task::Poll::Ready(first) = poll_once(prices.price(&key())) else {
            panic!("the scripted primary answers at once");
        };
        assert_eq!(first.unwrap().usd_per_unit, usd("0.23"));
        time.advance(Duration::from_secs(3600));

        assert_eq!(prices.price_now(&key()), None, "no runtime to refresh on");
        assert_eq!(primary.calls(), 1);
        let std::task::Poll::Ready(refreshed) = poll_once(prices.price(&key())) else {
            panic!("the scripted primary answers at once");
        };
        let refreshed = refreshed.unwrap();
        assert_rate(&refreshed, PriceOrigin::Live, "0.25");
        // (0.25 − 0.23) ÷ 0.23 = 8.6956…% → +8.7%
        assert_eq!(
            refreshed.provenance.note.as_deref(),
            Some(
                "price changed: 0.25 per hour (effective 2026-05-01T00:00:00Z), was 0.23 \
                 (effective 2026-05-01T00:00:00Z) (+8.7%)"
            )
        );
        assert_eq!(primary.calls(), 2);
    }

    #[tokio::test]
    async fn thousand_concurrent_first_calls_make_one_request() {
        let time = clock();
        let gate = Arc::new(Semaphore::new(0));
        let primary = Scripted::gated([Ok(usd("0.23"))], gate.clone());
        let prices = Arc::new(cache(primary.clone(), &time));

        let tasks = callers(&prices, 1000);
        // Let every task reach the gate or the single flight, then open the gate.
        until(|| primary.calls() == 1).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(primary.calls(), 1);
        gate.add_permits(1);
        let mut live = 0;
        for task in tasks {
            let rate = task.await.unwrap().unwrap();
            assert_eq!(rate.usd_per_unit, usd("0.23"));
            live += usize::from(rate.provenance.source == PriceOrigin::Live);
        }
        assert_eq!(primary.calls(), 1);
        assert_eq!(
            live, 1,
            "one answer was fetched for its look-up, the rest came from the cache"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stale_callers_make_one_refresh_request_and_get_the_new_rate_once_it_lands() {
        let time = clock();
        let gate = Arc::new(Semaphore::new(1));
        let primary = Scripted::gated([Ok(usd("0.23")), Ok(usd("0.25"))], gate.clone());
        let prices = Arc::new(cache(primary.clone(), &time));
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(7200));

        // A hundred callers after the TTL, the refresh held at the gate: every one
        // gets the stale rate, none waits (paused time: were one waiting, the
        // timeout would fire).
        let tasks = callers(&prices, 100);
        for task in tasks {
            let rate = tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .expect("answered without waiting for the refresh")
                .unwrap()
                .unwrap();
            assert_eq!(
                (
                    rate.provenance.source,
                    rate.usd_per_unit,
                    rate.provenance.note.as_deref()
                ),
                (PriceOrigin::Cache, usd("0.23"), Some(REFRESHING))
            );
        }
        until(|| primary.calls() == 2).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(primary.calls(), 2, "one refresh for all of them");

        // Enough permits for every caller, were each to refresh.
        gate.add_permits(100);
        until(|| !prices.is_fetching(&key())).await;
        // The first caller after it lands: the new rate, noted with the change;
        // (0.25 − 0.23) ÷ 0.23 = 8.6956…% → +8.7%. Through `price` only: the call
        // path reuses what `price_now` answers for a while.
        assert_eq!(prices.price_now(&key()), None);
        let first = prices.price(&key()).await.unwrap();
        assert_rate(&first, PriceOrigin::Cache, "0.25");
        assert_eq!(
            first.provenance.note.as_deref(),
            Some(
                "price changed: 0.25 per hour (effective 2026-05-01T00:00:00Z), was 0.23 \
                 (effective 2026-05-01T00:00:00Z) (+8.7%)"
            )
        );
        // The ones after: the new rate, no note, fresh for the TTL.
        time.advance(Duration::from_secs(3599));
        let after = prices.price_now(&key()).unwrap().unwrap();
        assert_eq!(
            (after.usd_per_unit, after.provenance.note),
            (usd("0.25"), None)
        );
        assert_eq!(primary.calls(), 2);
    }

    #[tokio::test]
    async fn a_change_is_noted_on_the_first_call_after_it_even_one_after_the_ttl() {
        let time = clock();
        let primary = Scripted::answering([Ok(usd("0.23")), Ok(usd("0.25")), Ok(usd("0.25"))]);
        let prices = cache(primary.clone(), &time);
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(3600));
        // Stale: 0.23 at once; the refresh finds 0.25.
        prices.price(&key()).await.unwrap();
        until(|| !prices.is_fetching(&key())).await;

        // No call within the TTL after it: the first call, after the TTL again, is
        // served the new rate stale, and is the first told of the change;
        // (0.25 − 0.23) ÷ 0.23 = 8.6956…% → +8.7%.
        time.advance(Duration::from_secs(3600));
        assert_eq!(
            prices.price_now(&key()),
            None,
            "the note is `price`'s to give"
        );
        let first = prices.price(&key()).await.unwrap();
        assert_eq!(
            (
                first.provenance.source,
                first.usd_per_unit,
                first.provenance.note.as_deref()
            ),
            (
                PriceOrigin::Cache,
                usd("0.25"),
                Some(
                    "cached price older than its TTL; a refresh is under way; price changed: \
                     0.25 per hour (effective 2026-05-01T00:00:00Z), was 0.23 (effective \
                     2026-05-01T00:00:00Z) (+8.7%)"
                )
            )
        );
        until(|| !prices.is_fetching(&key())).await;
        // Once only: the refresh it started found 0.25 again.
        let after = prices.price(&key()).await.unwrap();
        assert_eq!(
            (after.usd_per_unit, after.provenance.note),
            (usd("0.25"), None)
        );
        assert_eq!(primary.calls(), 3);
    }

    /// A live answer's own note (which charge a provisioned-concurrency SKU is)
    /// stays on the rate the cache serves again: a fresh cached rate with it is no
    /// fallback (`sagemeter invoke` and `report` do not call it one); the same rate
    /// served stale, or kept after a failed refresh, is.
    #[tokio::test]
    async fn a_cached_rate_with_its_answers_note_is_no_fallback_until_stale_or_kept() {
        use crate::billing::{AccrualCharge, AccrualSource};
        const PC: &str = "SKU PCUSAGE is the standing charge per second provisioned per its \
                          group (ServerlessInference)";
        let fallback = |rate: &Rate| {
            let p = &rate.provenance;
            let accrual = AccrualSource::new(AccrualCharge::Capacity, p.source, p.note.clone());
            assert_eq!(p.is_fallback(), accrual.is_fallback(), "{p:?}");
            accrual.is_fallback()
        };
        let time = clock();
        let primary = Arc::new(Scripted {
            script: Mutex::new([Ok(usd("0.0000018")), Err(throttled())].into()),
            note: Some(PC),
            ..Default::default()
        });
        let prices = cache(primary.clone(), &time);
        let live = prices.price(&key()).await.unwrap();
        assert_eq!(live.provenance.note.as_deref(), Some(PC));
        assert!(!fallback(&live));
        time.advance(Duration::from_secs(60));
        let cached = prices.price(&key()).await.unwrap();
        assert_eq!(
            (cached.provenance.source, cached.provenance.note.as_deref()),
            (PriceOrigin::Cache, Some(PC))
        );
        assert!(!fallback(&cached));

        time.advance(Duration::from_secs(3600));
        let stale = prices.price(&key()).await.unwrap();
        assert_eq!(
            stale.provenance.note.as_deref(),
            Some(format!("{REFRESHING}; {PC}").as_str())
        );
        assert!(fallback(&stale));
        until(|| !prices.is_fetching(&key())).await;
        let kept = prices.price(&key()).await.unwrap();
        assert!(
            kept.provenance
                .note
                .as_deref()
                .is_some_and(|n| n.starts_with("refresh failed (") && n.ends_with(PC)),
            "{kept:?}"
        );
        assert!(fallback(&kept));
        assert_eq!(primary.calls(), 2);
    }

    #[tokio::test]
    async fn failed_refresh_keeps_the_last_good_price_and_says_why() {
        let time = clock();
        let primary = Scripted::answering([Ok(usd("0.23")), Err(throttled())]);
        let prices = cache(primary.clone(), &time);
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(3600));

        answered_stale_then_refreshed(&prices).await;

        let kept = prices.price(&key()).await.unwrap();
        assert_rate(&kept, PriceOrigin::Cache, "0.23");
        assert_eq!(
            kept.provenance.note.as_deref(),
            Some(
                "refresh failed (price source unavailable: the Price List API throttled the request \
                 (ThrottlingException, HTTP 400)); kept the last good price, fetched 2026-05-28T20:26:40Z"
            )
        );
        assert_eq!(prices.price_now(&key()), Some(Ok(kept)));
        assert_eq!(primary.calls(), 2);
    }

    /// A cache in front of `primary` whose observer collects the changes it tells.
    fn observed(
        primary: Arc<Scripted>,
        time: &ManualTimeSource,
    ) -> (CachedPrices, Arc<Mutex<Vec<PriceChange>>>) {
        let told = Arc::new(Mutex::new(Vec::new()));
        let observer = told.clone();
        let prices = CachedPrices::builder(primary)
            .fallback(Snapshot::bundled())
            .ttl(Duration::from_secs(3600))
            .failure_backoff(Duration::from_secs(60))
            .time_source(SharedTimeSource::new(time.clone()))
            .on_change(move |change| observer.lock().unwrap().push(change.clone()))
            .build();
        (prices, told)
    }

    #[tokio::test]
    async fn a_refresh_answering_no_price_is_a_failed_refresh_not_a_change() {
        // $0, and $1,000,001 (one dollar above the sane bound of $1,000,000 per
        // unit): neither is a SageMaker price.
        for (answer, error) in [
            (
                "0",
                "the price source gave 0 USD per unit for hosting ml.m5.xlarge in us-east-1; \
                 not priced at $0",
            ),
            (
                "1000001",
                "malformed price document: the price source gave 1000001 USD per unit for \
                 hosting ml.m5.xlarge in us-east-1: not a price (SageMaker prices are from 0 \
                 to 1000000 USD per unit)",
            ),
        ] {
            let time = clock();
            let primary = Scripted::answering([Ok(usd("0.23")), Ok(usd(answer))]);
            let (prices, told) = observed(primary.clone(), &time);
            prices.price(&key()).await.unwrap();
            time.advance(Duration::from_secs(3600));
            answered_stale_then_refreshed(&prices).await;

            // The last good $0.23 is kept, saying why, for every call until the
            // retry; no change to the answer is told.
            for _ in 0..10 {
                let kept = prices.price(&key()).await.unwrap();
                assert_eq!(
                    (kept.provenance.source, kept.usd_per_unit),
                    (PriceOrigin::Cache, usd("0.23")),
                    "{answer}"
                );
                let expected = format!(
                    "refresh failed ({error}); kept the last good price, fetched \
                     2026-05-28T20:26:40Z"
                );
                assert_eq!(kept.provenance.note.as_deref(), Some(expected.as_str()));
            }
            assert!(told.lock().unwrap().is_empty(), "{answer}: {told:?}");
            assert_eq!(primary.calls(), 2);
        }
    }

    #[tokio::test]
    async fn a_first_answer_of_zero_is_a_failure_and_the_fallback_prices_the_key() {
        let time = clock();
        let primary = Scripted::answering([Ok(usd("0")), Ok(usd("0"))]);
        let (prices, told) = observed(primary.clone(), &time);
        for _ in 0..3 {
            let rate = prices.price(&key()).await.unwrap();
            // The snapshot's row: AWS's on-demand price for ml.m5.xlarge hosting in
            // us-east-1, $0.23 per instance-hour.
            assert_rate(&rate, PriceOrigin::Snapshot, "0.23");
            let note = rate.provenance.note.unwrap_or_default();
            assert!(
                note.starts_with(
                    "primary price source failed (the price source gave 0 USD per unit for \
                     hosting ml.m5.xlarge in us-east-1; not priced at $0)"
                ),
                "{note}"
            );
        }
        // Within the backoff: asked once.
        assert_eq!(primary.calls(), 1);
        assert!(told.lock().unwrap().is_empty(), "{told:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_a_failed_refresh_holds_no_caller_and_its_answer_replaces_the_kept_rate()
    {
        let time = clock();
        let gate = Arc::new(Semaphore::new(2));
        let primary = Scripted::gated(
            [Ok(usd("0.23")), Err(throttled()), Ok(usd("0.23"))],
            gate.clone(),
        );
        let prices = cache(primary.clone(), &time);
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(3600));
        prices.price(&key()).await.unwrap(); // starts the refresh, which fails
        until(|| !prices.is_fetching(&key())).await;
        let kept = prices.price(&key()).await.unwrap();
        assert!(
            kept.provenance
                .note
                .as_deref()
                .is_some_and(|note| note.starts_with("refresh failed (")),
            "{kept:?}"
        );

        // The backoff passes; the retry is held at the gate. Its caller gets the
        // kept rate, saying why, at once (paused time: were it waiting, the
        // timeout would fire), and so does everyone else meanwhile.
        time.advance(Duration::from_secs(60));
        let retrying = tokio::time::timeout(Duration::from_secs(1), prices.price(&key()))
            .await
            .expect("answered without waiting for the retry")
            .unwrap();
        assert_eq!(retrying, kept);
        until(|| primary.calls() == 3).await;
        assert_eq!(prices.price(&key()).await.unwrap(), kept);
        assert_eq!(prices.price_now(&key()), Some(Ok(kept)));

        gate.add_permits(1);
        until(|| !prices.is_fetching(&key())).await;
        let recovered = prices.price(&key()).await.unwrap();
        assert_eq!(
            (
                recovered.provenance.source,
                recovered.usd_per_unit,
                recovered.provenance.note
            ),
            (PriceOrigin::Cache, usd("0.23"), None)
        );
        assert_eq!(primary.calls(), 3);
    }

    #[tokio::test]
    async fn failure_without_a_good_price_uses_the_fallback_and_names_the_failure() {
        let time = clock();
        let primary = Scripted::answering([Err(throttled())]);
        let prices = cache(primary.clone(), &time);
        let rate = prices.price(&key()).await.unwrap();
        assert_eq!(rate.provenance.source, PriceOrigin::Snapshot);
        assert_eq!(rate.usd_per_unit, usd("0.23"));
        let note = rate.provenance.note.unwrap();
        assert!(note.starts_with("primary price source failed (price source unavailable: the Price List API throttled"), "{note}");
        assert!(
            note.contains("; bundled price snapshot (as of 2026-05-20"),
            "{note}"
        );
    }

    #[tokio::test]
    async fn backoff_leaves_the_primary_alone_until_it_passes() {
        let time = clock();
        let primary = Scripted::answering([Err(throttled()), Err(throttled()), Ok(usd("0.24"))]);
        let prices = cache(primary.clone(), &time);
        for _ in 0..100 {
            assert_eq!(
                prices.price(&key()).await.unwrap().provenance.source,
                PriceOrigin::Snapshot
            );
        }
        assert_eq!(primary.calls(), 1);
        time.advance(Duration::from_secs(59));
        prices.price(&key()).await.unwrap();
        assert_eq!(primary.calls(), 1);
        time.advance(Duration::from_secs(1));
        // The retry's caller gets the fallback at once; the retry fails again on
        // its own task, and the backoff restarts.
        let retrying = prices.price(&key()).await.unwrap();
        assert_eq!(retrying.provenance.source, PriceOrigin::Snapshot);
        until(|| !prices.is_fetching(&key())).await;
        assert_eq!(primary.calls(), 2);
        time.advance(Duration::from_secs(59));
        prices.price(&key()).await.unwrap();
        assert_eq!(primary.calls(), 2);
        time.advance(Duration::from_secs(1));
        prices.price(&key()).await.unwrap();
        until(|| !prices.is_fetching(&key())).await;
        let recovered = prices.price(&key()).await.unwrap();
        assert_rate(&recovered, PriceOrigin::Cache, "0.24");
        assert_eq!(primary.calls(), 3);
    }

    /// A wall clock that can step back, as `ManualTimeSource` cannot.
    #[derive(Debug, Clone)]
    struct SteppingClock(Arc<Mutex<SystemTime>>);

    impl SteppingClock {
        fn new() -> Self {
            SteppingClock(Arc::new(Mutex::new(clock().now())))
        }

        fn step_back(&self, by: Duration) {
            *self.0.lock().unwrap() -= by;
        }

        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl TimeSource for SteppingClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    fn stepping_cache(primary: Arc<Scripted>, time: &SteppingClock) -> CachedPrices {
        CachedPrices::builder(primary)
            .fallback(Snapshot::bundled())
            .ttl(Duration::from_secs(3600))
            .failure_backoff(Duration::from_secs(60))
            .time_source(SharedTimeSource::new(time.clone()))
            .build()
    }

    #[tokio::test]
    async fn a_clock_stepped_back_ends_the_backoff() {
        let time = SteppingClock::new();
        let primary = Scripted::answering([Err(throttled()), Ok(usd("0.24"))]);
        let prices = stepping_cache(primary.clone(), &time);
        prices.price(&key()).await.unwrap();
        assert_eq!(primary.calls(), 1);

        time.step_back(Duration::from_secs(24 * 3600));
        time.advance(Duration::from_secs(61));
        prices.price(&key()).await.unwrap();
        until(|| !prices.is_fetching(&key())).await;
        assert_eq!(primary.calls(), 2, "retried, not left alone for a day");
        let retried = prices.price(&key()).await.unwrap();
        assert_rate(&retried, PriceOrigin::Cache, "0.24");
    }

    #[tokio::test]
    async fn a_clock_stepped_back_makes_a_cached_price_stale() {
        let time = SteppingClock::new();
        let primary = Scripted::answering([Ok(usd("0.23")), Ok(usd("0.23"))]);
        let prices = stepping_cache(primary.clone(), &time);
        prices.price(&key()).await.unwrap();

        time.step_back(Duration::from_secs(24 * 3600));
        answered_stale_then_refreshed(&prices).await;
        assert_eq!(
            primary.calls(),
            2,
            "refreshed, not fresh for a day and the TTL"
        );
        let refreshed = prices.price(&key()).await.unwrap();
        assert_eq!(
            (refreshed.provenance.source, refreshed.provenance.note),
            (PriceOrigin::Cache, None)
        );
        // From then on the TTL runs from the new time.
        time.advance(Duration::from_secs(3599));
        prices.price(&key()).await.unwrap();
        assert_eq!(primary.calls(), 2);
    }

    #[tokio::test]
    async fn concurrent_cold_calls_on_a_failing_primary_make_one_request() {
        let time = clock();
        let primary = Scripted::answering([Err(throttled())]);
        let prices = Arc::new(cache(primary.clone(), &time));
        let tasks = callers(&prices, 100);
        for task in tasks {
            assert_eq!(
                task.await.unwrap().unwrap().provenance.source,
                PriceOrigin::Snapshot
            );
        }
        assert_eq!(primary.calls(), 1);
    }

    /// How the note on the fallback's rate begins after the primary's look-up panicked.
    const PANICKED: &str =
        "primary price source failed (price source unavailable: the price look-up panicked)";

    #[tokio::test]
    async fn a_primary_that_panics_is_one_failed_request_for_all_its_callers_and_backs_off() {
        let time = clock();
        let gate = Arc::new(Semaphore::new(0));
        let primary = Arc::new(Scripted {
            gate: Some(gate.clone()),
            panics_from: Some(1),
            ..Default::default()
        });
        let prices = Arc::new(cache(primary.clone(), &time));
        let tasks = callers(&prices, 100);
        until(|| primary.calls() == 1).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        // A permit for every caller: were the waiters to fetch again after the
        // panic, each would reach the primary.
        gate.add_permits(100);
        for task in tasks {
            let rate = task.await.unwrap().unwrap();
            // The fallback's rate: AWS's on-demand price for ml.m5.xlarge real-time
            // hosting in us-east-1 is $0.23 per instance-hour (the bundled snapshot's
            // row), noted with the primary's failure.
            assert_rate(&rate, PriceOrigin::Snapshot, "0.23");
            let note = rate.provenance.note.unwrap_or_default();
            assert!(note.starts_with(PANICKED), "{note}");
        }
        assert_eq!(primary.calls(), 1);
        // Within the backoff (60 s) the primary is left alone.
        time.advance(Duration::from_secs(59));
        let later = prices.price(&key()).await.unwrap();
        assert_eq!(later.provenance.source, PriceOrigin::Snapshot);
        assert!(
            later
                .provenance
                .note
                .as_deref()
                .unwrap_or_default()
                .starts_with(PANICKED),
            "{later:?}"
        );
        assert_eq!(primary.calls(), 1);
    }

    #[tokio::test]
    async fn a_refresh_that_panics_keeps_the_last_good_price_and_backs_off() {
        let time = clock();
        let primary = Arc::new(Scripted {
            script: Mutex::new([Ok(usd("0.23"))].into_iter().collect()),
            panics_from: Some(2),
            ..Default::default()
        });
        let prices = cache(primary.clone(), &time);
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(3600));
        answered_stale_then_refreshed(&prices).await;
        assert_eq!(primary.calls(), 2);

        // The panic is the refresh's failure: the last good price, saying why, for
        // the backoff, not a refresh started by every call.
        for _ in 0..10 {
            let kept = prices.price(&key()).await.unwrap();
            assert_rate(&kept, PriceOrigin::Cache, "0.23");
            assert_eq!(
                kept.provenance.note.as_deref(),
                Some(
                    "refresh failed (price source unavailable: the price look-up panicked); \
                     kept the last good price, fetched 2026-05-28T20:26:40Z"
                )
            );
        }
        time.advance(Duration::from_secs(59));
        prices.price(&key()).await.unwrap();
        assert!(!prices.is_fetching(&key()));
        assert_eq!(primary.calls(), 2);
    }

    #[tokio::test]
    async fn a_retry_after_the_backoff_leaves_everyone_else_on_the_fallback() {
        let time = clock();
        let gate = Arc::new(Semaphore::new(1));
        let primary = Scripted::gated([Err(throttled()), Err(throttled())], gate.clone());
        let prices = Arc::new(cache(primary.clone(), &time));
        let first = prices.price(&key()).await.unwrap();
        assert_eq!(first.provenance.source, PriceOrigin::Snapshot);
        time.advance(Duration::from_secs(60));

        // The retry blocks at the gate...
        let retrying = {
            let prices = prices.clone();
            tokio::spawn(async move { prices.price(&key()).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(primary.calls(), 2);
        // ...and another caller gets the fallback, with the failure's note, at once.
        let meanwhile = tokio::time::timeout(Duration::from_millis(100), prices.price(&key()))
            .await
            .expect("answered at once")
            .unwrap();
        assert_eq!(meanwhile, first);

        gate.add_permits(1);
        let retried = retrying.await.unwrap().unwrap();
        assert_eq!(retried.provenance.source, PriceOrigin::Snapshot);
        assert_eq!(primary.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_the_backoff_holds_no_caller_and_its_answer_is_the_keys() {
        let time = clock();
        let gate = Arc::new(Semaphore::new(1));
        let primary = Scripted::gated([Err(throttled()), Ok(usd("0.24"))], gate.clone());
        let prices = Arc::new(cache(primary.clone(), &time));
        let first = prices.price(&key()).await.unwrap();
        assert_eq!(first.provenance.source, PriceOrigin::Snapshot);
        time.advance(Duration::from_secs(60));

        // The backoff passed; the retry is held at the gate. Its caller and the
        // next get the fallback, with the failure's note, at once (paused time:
        // were one waiting, the timeout would fire).
        for _ in 0..2 {
            let answer = tokio::time::timeout(Duration::from_secs(1), prices.price(&key()))
                .await
                .expect("answered without waiting for the retry")
                .unwrap();
            assert_eq!(answer, first);
        }
        until(|| primary.calls() == 2).await;
        assert_eq!(prices.price_now(&key()), Some(Ok(first)));
        // The retry lands on its own, and its answer is the key's.
        gate.add_permits(1);
        until(|| !prices.is_fetching(&key())).await;
        let recovered = prices.price(&key()).await.unwrap();
        assert_rate(&recovered, PriceOrigin::Cache, "0.24");
        assert_eq!(primary.calls(), 2);
    }

    #[test]
    fn without_a_tokio_runtime_the_retry_after_the_backoff_is_the_callers() {
        let time = clock();
        let primary = Scripted::answering([Err(throttled()), Ok(usd("0.24"))]);
        let prices = cache(primary.clone(), &time);
        let std::task::Poll::Ready(first) = poll_once(prices.price(&key())) else {
            panic!("the scripted primary answers at once");
        };
        assert_eq!(first.unwrap().provenance.source, PriceOrigin::Snapshot);
        time.advance(Duration::from_secs(60));
        let std::task::Poll::Ready(retried) = poll_once(prices.price(&key())) else {
            panic!("the scripted primary answers at once");
        };
        let retried = retried.unwrap();
        assert_rate(&retried, PriceOrigin::Live, "0.24");
        assert_eq!(primary.calls(), 2);
    }

    /// `prices` answers `key()` at once with its stale rate, saying it is
    /// refreshing; then the refresh lands.
    async fn answered_stale_then_refreshed(prices: &CachedPrices) {
        let stale = prices.price(&key()).await.unwrap();
        assert_eq!(stale.provenance.note.as_deref(), Some(REFRESHING));
        until(|| !prices.is_fetching(&key())).await;
    }

    /// Yields until `done` holds (a task reached a gate, a fetch landed), at most
    /// 10,000 times.
    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("never happened");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_fetch_whose_caller_is_dropped_still_answers_the_key_and_lands() {
        let time = clock();
        let gate = Arc::new(Semaphore::new(0));
        let primary = Scripted::gated([Ok(usd("0.24"))], gate.clone());
        let prices = Arc::new(cache(primary.clone(), &time));
        // A cold key; its caller (a handler cancelled at its timeout) is dropped
        // while the Price List has not answered.
        let first = {
            let prices = prices.clone();
            tokio::spawn(async move { prices.price(&key()).await })
        };
        until(|| primary.calls() == 1).await;
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());

        // The next caller neither asks again nor waits for the fetch: the snapshot's
        // rate, noted. (Paused time: were it waiting, the timeout would fire.)
        let next = tokio::time::timeout(Duration::from_secs(1), prices.price(&key()))
            .await
            .expect("answered without waiting for the fetch")
            .unwrap();
        assert_rate(&next, PriceOrigin::Snapshot, "0.23");
        let note = next.provenance.note.unwrap();
        assert!(
            note.starts_with(
                "primary price source failed (price source unavailable: no answer yet; \
                 the look-up goes on in the background)"
            ),
            "{note}"
        );
        assert_eq!(primary.calls(), 1);

        // The fetch goes on without its caller, and its answer is the key's.
        gate.add_permits(1);
        until(|| {
            prices
                .price_now(&key())
                .is_some_and(|r| r.unwrap().usd_per_unit == usd("0.24"))
        })
        .await;
        let landed = prices.price(&key()).await.unwrap();
        assert_rate(&landed, PriceOrigin::Cache, "0.24");
        assert_eq!(primary.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn warming_fetches_a_cold_key_once_and_leaves_a_known_one_and_its_change_note_alone() {
        let time = clock();
        let gate = Arc::new(Semaphore::new(0));
        let primary = Scripted::gated([Ok(usd("0.23")), Ok(usd("0.25"))], gate.clone());
        let prices = Arc::new(cache(primary.clone(), &time));
        // A cold key: the warm-up makes the one request, nobody waiting for it.
        let warming = {
            let prices = prices.clone();
            tokio::spawn(async move { prices.warm(&key()).await })
        };
        until(|| primary.calls() == 1).await;
        // Warming it again while that fetch runs returns at once, asking nothing.
        // (Paused time: were it waiting for the fetch, the timeout would fire.)
        tokio::time::timeout(Duration::from_secs(1), prices.warm(&key()))
            .await
            .expect("warming a key being fetched does not wait for it");
        gate.add_permits(1);
        warming.await.unwrap();
        let cached = prices.price_now(&key()).unwrap().unwrap();
        assert_rate(&cached, PriceOrigin::Cache, "0.23");
        prices.warm(&key()).await;
        assert_eq!(primary.calls(), 1, "a key at hand is not fetched again");

        // A refresh finds a new rate: warming leaves its note to the first receipt.
        time.advance(Duration::from_secs(3600));
        prices.price(&key()).await.unwrap();
        gate.add_permits(1);
        until(|| !prices.is_fetching(&key())).await;
        prices.warm(&key()).await;
        assert_eq!(primary.calls(), 2);
        let changed = prices.price(&key()).await.unwrap();
        assert_eq!(changed.usd_per_unit, usd("0.25"));
        assert!(
            changed
                .provenance
                .note
                .is_some_and(|note| note.starts_with("price changed: 0.25 per hour")),
            "the change is still noted on the first receipt at the new rate"
        );
    }

    #[tokio::test]
    async fn with_a_zero_ttl_concurrent_first_calls_still_make_one_request() {
        let time = clock();
        let gate = Arc::new(Semaphore::new(0));
        let primary = Scripted::gated([Ok(usd("0.23"))], gate.clone());
        let prices = Arc::new(
            CachedPrices::builder(primary.clone())
                .fallback(Snapshot::bundled())
                .ttl(Duration::ZERO)
                .time_source(SharedTimeSource::new(time.clone()))
                .build(),
        );
        let tasks = callers(&prices, 10);
        until(|| primary.calls() == 1).await;
        for _ in 0..100 {
            tokio::task::yield_now().await; // the others queue behind the fetch
        }
        // Enough permits for every caller, were each to fetch again.
        gate.add_permits(100);
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().usd_per_unit, usd("0.23"));
        }
        assert_eq!(
            primary.calls(),
            1,
            "the callers queued behind the fetch took its answer, stale or not"
        );
    }

    #[tokio::test]
    async fn a_failure_backoff_too_long_for_the_clock_never_retries() {
        let time = clock();
        let primary = Scripted::answering([Err(throttled()), Ok(usd("0.24"))]);
        let prices = CachedPrices::builder(primary.clone())
            .fallback(Snapshot::bundled())
            .failure_backoff(Duration::MAX)
            .time_source(SharedTimeSource::new(time.clone()))
            .build();
        let first = prices.price(&key()).await.unwrap();
        assert_eq!(first.provenance.source, PriceOrigin::Snapshot);
        time.advance(Duration::from_secs(365 * 24 * 3600));
        let second = prices.price(&key()).await.unwrap();
        assert_eq!(second, first, "the fallback kept, not a retry");
        assert_eq!(primary.calls(), 1);
    }

    #[tokio::test]
    async fn no_fallback_returns_the_primary_error() {
        let time = clock();
        let primary = Scripted::answering([Err(throttled())]);
        let prices = CachedPrices::builder(primary)
            .time_source(SharedTimeSource::new(time))
            .build();
        assert_eq!(prices.price(&key()).await, Err(throttled()));
    }

    #[tokio::test]
    async fn fallback_without_the_key_adds_to_the_primary_error() {
        let time = clock();
        let primary = Scripted::answering([Err(throttled())]);
        let prices = cache(primary, &time);
        let unknown = PriceKey::hosting("us-east-1", "ml.nope.xlarge");
        let err = prices.price(&unknown).await.unwrap_err();
        let PriceError::Unavailable { reason } = err else {
            panic!("{err:?}")
        };
        assert!(reason.ends_with("; fallback: no price for hosting ml.nope.xlarge in us-east-1: check the instance type and region, or set a price override"), "{reason}");
    }

    /// A fallback's $0 (or a rate beyond any SageMaker price) is no price, as the
    /// primary's is: the cache neither serves it nor keeps it for the backoff.
    #[tokio::test]
    async fn a_fallbacks_zero_or_absurd_rate_is_no_price_and_is_not_kept() {
        for (usd_per_unit, gave) in [
            (
                "0",
                "the price source gave 0 USD per unit for hosting ml.m5.xlarge in us-east-1; \
                 not priced at $0",
            ),
            (
                "10000000000000000000000000",
                "malformed price document: the price source gave 10000000000000000000000000 \
                 USD per unit for hosting ml.m5.xlarge in us-east-1: not a price",
            ),
        ] {
            let time = clock();
            let primary = Scripted::answering([Err(throttled())]);
            let fallback = Scripted::answering([Ok(usd(usd_per_unit)), Ok(usd(usd_per_unit))]);
            let prices = CachedPrices::builder(primary.clone())
                .fallback(fallback.clone())
                .failure_backoff(Duration::from_secs(60))
                .time_source(SharedTimeSource::new(time.clone()))
                .build();
            let expected = format!(
                "the Price List API throttled the request (ThrottlingException, HTTP 400); \
                 fallback: {gave}"
            );
            for answer in [
                prices.price(&key()).await,
                // Within the backoff: what the failure left, not a kept $0.
                prices.price(&key()).await,
                prices
                    .price_now(&key())
                    .expect("the failure's answer is at hand"),
            ] {
                let Err(PriceError::Unavailable { reason }) = &answer else {
                    panic!("{usd_per_unit}: {answer:?}")
                };
                assert!(reason.starts_with(&expected), "{reason}");
            }
            assert_eq!((primary.calls(), fallback.calls()), (1, 1));
        }
    }

    #[tokio::test]
    async fn a_region_the_snapshot_does_not_cover_is_named_unless_the_price_list_has_no_such_product()
     {
        let time = clock();
        let key = PriceKey::DataIn {
            region: "ap-south-1".into(),
        };
        // The Price List unreachable: the snapshot's reason is the useful part.
        let prices = cache(Scripted::answering([Err(throttled())]), &time);
        let PriceError::Unavailable { reason } = prices.price(&key).await.unwrap_err() else {
            panic!("unavailable")
        };
        assert!(
            reason.ends_with(
                "; fallback: the bundled price snapshot has no data processed in prices for \
                 ap-south-1 (it covers: eu-west-1, us-east-1); the live Price List is needed, \
                 or set a price override"
            ),
            "{reason}"
        );
        // The Price List answered that there is no such product: that is the answer,
        // not "the live Price List is needed".
        let not_found = PriceError::NotFound { key: key.clone() };
        let prices = cache(Scripted::answering([Err(not_found.clone())]), &time);
        assert_eq!(prices.price(&key).await, Err(not_found));
    }

    #[tokio::test]
    async fn keys_are_cached_independently() {
        let time = clock();
        let primary = Scripted::answering([Ok(usd("0.23")), Ok(usd("0.00006"))]);
        let prices = cache(primary.clone(), &time);
        let serverless = PriceKey::serverless("us-east-1", 3);
        assert_eq!(
            prices.price(&key()).await.unwrap().usd_per_unit,
            usd("0.23")
        );
        assert_eq!(
            prices.price(&serverless).await.unwrap().usd_per_unit,
            usd("0.00006")
        );
        assert_eq!(
            prices.price(&key()).await.unwrap().usd_per_unit,
            usd("0.23")
        );
        assert_eq!(primary.calls(), 2);
        prices.clear();
        assert_eq!(prices.price_now(&key()).and_then(Result::ok), None);
    }

    /// Counts the events of target `sagemeter::pricing` at `level` whose text
    /// contains `text`.
    #[derive(Clone)]
    struct EventCounter {
        level: tracing::Level,
        text: &'static str,
        seen: Arc<AtomicUsize>,
    }

    impl EventCounter {
        fn new(level: tracing::Level, text: &'static str) -> Self {
            EventCounter {
                level,
                text,
                seen: Arc::default(),
            }
        }

        fn count(&self) -> usize {
            self.seen.load(Ordering::SeqCst)
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EventCounter {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let meta = event.metadata();
            if *meta.level() == self.level
                && meta.target() == "sagemeter::pricing"
                && format!("{event:?}").contains(self.text)
            {
                self.seen.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_changed_rate_is_logged_counted_told_and_noted_once_and_an_unchanged_one_is_not() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        use tracing_subscriber::layer::SubscriberExt;
        let infos = EventCounter::new(tracing::Level::INFO, "price changed");
        let _log =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(infos.clone()));
        let recorder = DebuggingRecorder::new();
        let _metrics = metrics::set_default_local_recorder(&recorder);
        let told: Arc<Mutex<Vec<PriceChange>>> = Arc::default();

        let time = clock();
        // Fetched, refreshed unchanged, refreshed at a new rate, then a failed refresh.
        let primary = Scripted::answering([
            Ok(usd("0.23")),
            Ok(usd("0.23")),
            Ok(usd("0.25")),
            Err(throttled()),
        ]);
        let observer = told.clone();
        let prices = CachedPrices::builder(primary.clone())
            .ttl(Duration::from_secs(3600))
            .time_source(SharedTimeSource::new(time.clone()))
            .on_change(move |change| observer.lock().unwrap().push(change.clone()))
            .build();

        let first = prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(3600));
        answered_stale_then_refreshed(&prices).await;
        let unchanged = prices.price(&key()).await.unwrap();
        assert_eq!(
            (first.provenance.note, unchanged.provenance.note),
            (None, None)
        );
        assert!(told.lock().unwrap().is_empty(), "no change, nothing told");

        time.advance(Duration::from_secs(3600));
        answered_stale_then_refreshed(&prices).await;
        let changed = prices.price(&key()).await.unwrap();
        assert_eq!(changed.usd_per_unit, usd("0.25"));
        // (0.25 − 0.23) ÷ 0.23 = 8.6956…% → +8.7%
        assert_eq!(
            changed.provenance.note.as_deref(),
            Some(
                "price changed: 0.25 per hour (effective 2026-05-01T00:00:00Z), was 0.23 \
                 (effective 2026-05-01T00:00:00Z) (+8.7%)"
            )
        );
        // The receipts after it: the new rate, no note.
        let after = prices.price(&key()).await.unwrap();
        assert_eq!(
            (after.usd_per_unit, after.provenance.note),
            (usd("0.25"), None)
        );
        // A failed refresh keeps the rate: no change.
        time.advance(Duration::from_secs(3600));
        answered_stale_then_refreshed(&prices).await;
        let kept = prices.price(&key()).await.unwrap();
        assert_eq!(kept.usd_per_unit, usd("0.25"));

        let told = told.lock().unwrap();
        assert_eq!(told.len(), 1);
        assert_eq!(
            (
                told[0].old_usd_per_unit,
                told[0].new_usd_per_unit,
                &told[0].key
            ),
            (usd("0.23"), usd("0.25"), &key())
        );
        assert_eq!(told[0].change_percent(), Some(usd("8.70")));
        assert_eq!(infos.count(), 1);
        let counted: u64 = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == "sagemeter_price_changes_total")
            .map(|(.., v)| match v {
                DebugValue::Counter(n) => n,
                _ => 0,
            })
            .sum();
        assert_eq!(counted, 1);
    }

    #[tokio::test]
    async fn a_change_is_told_before_anyone_is_priced_at_the_new_rate() {
        // A subscriber here too: registered on a thread without one, the `price changed`
        // callsite could be cached as of no interest while another test counts it.
        let _log = tracing::subscriber::set_default(tracing_subscriber::registry());
        let time = clock();
        let primary = Scripted::answering([Ok(usd("0.23")), Ok(usd("0.25"))]);
        let (prices, seen) = seeing_price_now(
            CachedPrices::builder(primary)
                .ttl(Duration::from_secs(3600))
                .time_source(SharedTimeSource::new(time.clone())),
        );
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(3600));

        let stale = prices.price(&key()).await.unwrap();
        assert_eq!(stale.usd_per_unit, usd("0.23"));
        until(|| !prices.is_fetching(&key())).await;
        assert_eq!(
            *seen.lock().unwrap(),
            [Some(usd("0.23"))],
            "while told, calls were still priced at the stale rate"
        );
        let changed = prices.price(&key()).await.unwrap();
        assert_eq!(changed.usd_per_unit, usd("0.25"));
        assert!(
            changed
                .provenance
                .note
                .is_some_and(|note| note.starts_with("price changed: 0.25 per hour"))
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_distinct_failure_is_warned_once_per_key() {
        use tracing_subscriber::layer::SubscriberExt;
        let warns = EventCounter::new(tracing::Level::WARN, "");
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(warns.clone()));

        let time = clock();
        let timeout = PriceError::Unavailable {
            reason: "no answer within 1000 ms".into(),
        };
        let primary = Scripted::answering([
            Err(throttled()),
            Err(throttled()),
            Err(throttled()),
            Err(timeout.clone()),
            Err(timeout),
        ]);
        let prices = cache(primary.clone(), &time);
        for _ in 0..3 {
            for _ in 0..10 {
                prices.price(&key()).await.unwrap();
            }
            until(|| !prices.is_fetching(&key())).await; // the retry landed
            time.advance(Duration::from_secs(60));
        }
        assert_eq!(
            (primary.calls(), warns.count()),
            (3, 1),
            "throttled three times, warned once"
        );
        prices.price(&key()).await.unwrap();
        until(|| !prices.is_fetching(&key())).await;
        time.advance(Duration::from_secs(60));
        prices.price(&key()).await.unwrap();
        until(|| !prices.is_fetching(&key())).await;
        assert_eq!(
            (primary.calls(), warns.count()),
            (5, 2),
            "a new failure is warned once"
        );
        prices
            .price(&PriceKey::serverless("us-east-1", 3))
            .await
            .unwrap();
        assert_eq!(warns.count(), 3, "another key warns on its own");
    }

    /// A primary answering a script of whole rates (terms announced ahead included).
    #[derive(Debug, Default)]
    struct Answers {
        calls: AtomicUsize,
        script: Mutex<VecDeque<Result<Rate, PriceError>>>,
    }

    impl Answers {
        fn new(answers: impl IntoIterator<Item = Result<Rate, PriceError>>) -> Arc<Self> {
            Arc::new(Answers {
                calls: AtomicUsize::new(0),
                script: Mutex::new(answers.into_iter().collect()),
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl PriceSource for Answers {
        fn price<'a>(&'a self, _key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                let next = self.script.lock().unwrap().pop_front();
                next.unwrap_or_else(|| Err(throttled()))
            })
        }
    }

    fn utc(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .to_utc()
    }

    /// A live hosting rate of the term effective `effective`, fetched at `fetched`.
    fn live(usd_per_unit: &str, effective: &str, fetched: &str) -> Rate {
        let provenance = Provenance::new(PriceOrigin::Live)
            .with_sku("SKU1")
            .with_effective_date(effective)
            .with_fetched_at(utc(fetched));
        Rate::new(key(), usd(usd_per_unit), provenance)
    }

    /// What the live source answers at 2026-08-31T22:00Z for ml.m5.xlarge: $0.23 per
    /// hour (the term from 2026-05-01) and $0.20 announced from 2026-09-01.
    fn announcing() -> Rate {
        let fetched = "2026-08-31T22:00:00Z";
        let on = utc("2026-09-01T00:00:00Z");
        let september = Rate::with_note_before(
            live("0.20", "2026-09-01T00:00:00Z", fetched),
            &super::super::live::announced_note(on, utc(fetched)),
        );
        let mut rate = live("0.23", "2026-05-01T00:00:00Z", fetched);
        rate.next_term = Some(Box::new(NextTerm {
            on,
            rate: Some(september),
        }));
        rate
    }

    const ANNOUNCED: &str = "rate of the term effective 2026-09-01T00:00:00Z, announced in the \
                             Price List answer fetched 2026-08-31T22:00:00Z";

    /// (0.20 − 0.23) ÷ 0.23 = −0.0304… = −13.0434…% → −13.04%.
    const DOWN: &str = "price changed: 0.2 per hour (effective 2026-09-01T00:00:00Z), was 0.23 \
                        (effective 2026-05-01T00:00:00Z) (-13.04%)";

    const FAILED: &str = "refresh failed (price source unavailable: the Price List API \
                          throttled the request (ThrottlingException, HTTP 400)); kept the \
                          last good price, fetched 2026-08-31T22:00:00Z";

    /// A cache on a manual clock at 2026-08-31T22:00Z, with `ttl`, telling `told`.
    /// Fetches `key` at once at 22:00 (answered $0.23), then moves `time` on
    /// to 00:30.
    fn fetched_at_2200_then_0030(prices: &CachedPrices, time: &ManualTimeSource) {
        let std::task::Poll::Ready(first) = poll_once(prices.price(&key())) else {
            panic!("the first fetch answers at once");
        };
        assert_eq!(first.unwrap().usd_per_unit, usd("0.23"));
        // 00:30.
        time.advance(Duration::from_secs(2 * 3600 + 1800));
    }

    /// What a call would have been priced at without waiting, as each change
    /// was told.
    type Seen = Arc<Mutex<Vec<Option<Decimal>>>>;

    /// The cache `builder` builds, with an observer that records, as each
    /// change is told, what a call would be priced at without waiting: the
    /// cache and that record.
    fn seeing_price_now(builder: CachedPricesBuilder) -> (Arc<CachedPrices>, Seen) {
        let cache_of_observer: Arc<std::sync::OnceLock<std::sync::Weak<CachedPrices>>> =
            Arc::default();
        let seen: Seen = Arc::default();
        let (look, saw) = (cache_of_observer.clone(), seen.clone());
        let prices = Arc::new(
            builder
                .on_change(move |change| {
                    let now = look
                        .get()
                        .and_then(std::sync::Weak::upgrade)
                        .and_then(|prices| prices.price_now(&change.key))
                        .and_then(Result::ok)
                        .map(|rate| rate.usd_per_unit);
                    saw.lock().unwrap().push(now);
                })
                .build(),
        );
        cache_of_observer.set(Arc::downgrade(&prices)).unwrap();
        (prices, seen)
    }

    fn at_2200(
        primary: Arc<Answers>,
        ttl: Duration,
    ) -> (CachedPrices, ManualTimeSource, Arc<Mutex<Vec<PriceChange>>>) {
        let time = ManualTimeSource::new(utc("2026-08-31T22:00:00Z").into());
        let told: Arc<Mutex<Vec<PriceChange>>> = Arc::default();
        let observer = told.clone();
        let prices = CachedPrices::builder(primary)
            .fallback(Snapshot::bundled())
            .ttl(ttl)
            .time_source(SharedTimeSource::new(time.clone()))
            .on_change(move |change| observer.lock().unwrap().push(change.clone()))
            .build();
        (prices, time, told)
    }

    /// The rate, source, effective date, fetch time and note of `rate`.
    fn shown(rate: Rate) -> (Decimal, PriceOrigin, String, Option<String>, Option<String>) {
        let p = rate.provenance;
        (
            rate.usd_per_unit,
            p.source,
            p.effective_date.as_deref().unwrap_or_default().to_owned(),
            p.fetched_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            p.note.as_deref().map(str::to_owned),
        )
    }

    fn at(t: &str) -> Option<String> {
        Some(t.to_owned())
    }

    /// ml.m5.xlarge at $0.23/h with $0.20 announced from 2026-09-01T00:00Z, fetched
    /// at 22:00 the day before with a 6 h TTL. AWS bills usage at the rate of the
    /// term in force when it runs: a 1-hour call from 00:30 costs 1 h × $0.20 =
    /// $0.20, not $0.23. The cache serves $0.20 from the date without asking again,
    /// the change told once before; the refresh after the TTL that confirms it tells
    /// nothing.
    #[tokio::test(start_paused = true)]
    async fn a_term_announced_ahead_is_served_from_its_date_and_its_change_told_once() {
        let primary = Answers::new([
            Ok(announcing()),
            Ok(live("0.20", "2026-09-01T00:00:00Z", "2026-09-01T04:00:00Z")),
        ]);
        let (prices, time, told) = at_2200(primary.clone(), DEFAULT_TTL);
        let first = prices.price(&key()).await.unwrap();
        assert_eq!(
            (first.usd_per_unit, first.provenance.source),
            (usd("0.23"), PriceOrigin::Live)
        );
        // It carries the term announced, as served from its date: the accrual
        // charges the standing capacity from then at its rate.
        let next = first.next_term.as_deref().expect("the term announced");
        assert_eq!(next.on, utc("2026-09-01T00:00:00Z"));
        let announced = next.rate.clone().expect("its rate");
        assert_eq!(announced.next_term, None, "no term after it");
        assert_eq!(
            shown(announced),
            (
                usd("0.20"),
                PriceOrigin::Cache,
                "2026-09-01T00:00:00Z".into(),
                at("2026-08-31T22:00:00Z"),
                Some(ANNOUNCED.to_owned())
            )
        );

        // 2026-09-01T00:30Z.
        time.advance(Duration::from_secs(2 * 3600 + 1800));
        let at_the_date = prices.price(&key()).await.unwrap();
        // One hour of the instance at the rate served: 1 × 0.20 = 0.20 USD.
        assert_eq!(at_the_date.usd_per_unit * Decimal::ONE, usd("0.20"));
        assert_eq!(
            shown(at_the_date),
            (
                usd("0.20"),
                PriceOrigin::Cache,
                "2026-09-01T00:00:00Z".into(),
                at("2026-08-31T22:00:00Z"),
                Some(format!("{DOWN}; {ANNOUNCED}"))
            )
        );
        let after = prices.price(&key()).await.unwrap();
        assert_eq!(after.provenance.note.as_deref(), Some(ANNOUNCED));
        assert_eq!(
            prices.price_now(&key()).unwrap().unwrap().usd_per_unit,
            usd("0.20")
        );
        assert_eq!(primary.calls(), 1, "the answer had it: nothing asked");
        {
            let told = told.lock().unwrap();
            assert_eq!(told.len(), 1);
            assert_eq!(
                (
                    told[0].old_usd_per_unit,
                    told[0].new_usd_per_unit,
                    told[0].new_effective_date.as_deref(),
                    told[0].change_percent()
                ),
                (
                    usd("0.23"),
                    usd("0.20"),
                    Some("2026-09-01T00:00:00Z"),
                    Some(usd("-13.04"))
                )
            );
        }

        // 04:00, the answer 6 h old: stale, refreshed; the refresh confirms 0.20.
        time.advance(Duration::from_secs(3 * 3600 + 1800));
        let stale = prices.price(&key()).await.unwrap();
        assert_eq!(
            (stale.usd_per_unit, stale.provenance.note.as_deref()),
            (
                usd("0.20"),
                Some(format!("{REFRESHING}; {ANNOUNCED}").as_str())
            )
        );
        until(|| !prices.is_fetching(&key())).await;
        let confirmed = prices.price(&key()).await.unwrap();
        assert_eq!(
            shown(confirmed),
            (
                usd("0.20"),
                PriceOrigin::Cache,
                "2026-09-01T00:00:00Z".into(),
                at("2026-09-01T04:00:00Z"),
                None
            )
        );
        assert_eq!(told.lock().unwrap().len(), 1, "confirmed: not told again");
        assert_eq!(primary.calls(), 2);
    }

    /// AWS withdrew the announced term before the answer's TTL ran out: the refresh
    /// finds $0.23 again, a change from the $0.20 served, told and noted.
    #[tokio::test(start_paused = true)]
    async fn a_refresh_that_contradicts_an_announced_term_tells_the_change_back() {
        let primary = Answers::new([
            Ok(announcing()),
            Ok(live("0.23", "2026-05-01T00:00:00Z", "2026-09-01T04:00:00Z")),
        ]);
        let (prices, time, told) = at_2200(primary, DEFAULT_TTL);
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(2 * 3600 + 1800));
        assert_eq!(
            prices.price(&key()).await.unwrap().usd_per_unit,
            usd("0.20")
        );
        time.advance(Duration::from_secs(3 * 3600 + 1800));
        prices.price(&key()).await.unwrap();
        until(|| !prices.is_fetching(&key())).await;
        let back = prices.price(&key()).await.unwrap();
        // (0.23 − 0.20) ÷ 0.20 = 0.15 → +15%.
        assert_eq!(
            (back.usd_per_unit, back.provenance.note.as_deref()),
            (
                usd("0.23"),
                Some(
                    "price changed: 0.23 per hour (effective 2026-05-01T00:00:00Z), was 0.2 \
                     (effective 2026-09-01T00:00:00Z) (+15%)"
                )
            )
        );
        let told = told.lock().unwrap();
        assert_eq!(
            told.iter()
                .map(|c| (c.old_usd_per_unit, c.new_usd_per_unit))
                .collect::<Vec<_>>(),
            [(usd("0.23"), usd("0.20")), (usd("0.20"), usd("0.23"))]
        );
    }

    /// The Price List failing from 23:00: with the 6 h TTL nothing is asked before
    /// 04:00, so 00:30 is priced at $0.20 as above; when the refresh then fails, the
    /// kept price is the $0.20 in force, saying so.
    #[tokio::test(start_paused = true)]
    async fn with_the_price_list_failing_an_announced_term_is_served_from_its_date() {
        let primary = Answers::new([Ok(announcing())]);
        let (prices, time, told) = at_2200(primary.clone(), DEFAULT_TTL);
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(2 * 3600 + 1800));
        let at_the_date = prices.price(&key()).await.unwrap();
        assert_eq!(
            (at_the_date.usd_per_unit, at_the_date.provenance.note),
            (usd("0.20"), Some(format!("{DOWN}; {ANNOUNCED}").into()))
        );
        time.advance(Duration::from_secs(3 * 3600 + 1800));
        prices.price(&key()).await.unwrap();
        until(|| !prices.is_fetching(&key())).await;
        let kept = prices.price(&key()).await.unwrap();
        assert_eq!(
            shown(kept),
            (
                usd("0.20"),
                PriceOrigin::Cache,
                "2026-09-01T00:00:00Z".into(),
                at("2026-08-31T22:00:00Z"),
                Some(format!("{FAILED}; {ANNOUNCED}"))
            )
        );
        assert_eq!((told.lock().unwrap().len(), primary.calls()), (1, 2));
    }

    /// With a 1 h TTL the refresh at 23:30 fails, so the last good price ($0.23) is
    /// kept, saying why. From 00:00 the kept answer's announced $0.20 is the price in
    /// force: served with the same failure note, the change told once, not $0.23
    /// for as long as the Price List stays down.
    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_the_announced_term_from_its_date_not_the_replaced_price() {
        let primary = Answers::new([Ok(announcing())]);
        let (prices, time, told) = at_2200(primary.clone(), Duration::from_secs(3600));
        prices.price(&key()).await.unwrap();
        // 23:30: stale, the refresh fails.
        time.advance(Duration::from_secs(5400));
        prices.price(&key()).await.unwrap();
        until(|| !prices.is_fetching(&key())).await;
        let before = prices.price(&key()).await.unwrap();
        assert_eq!(
            (before.usd_per_unit, before.provenance.note.as_deref()),
            (usd("0.23"), Some(FAILED))
        );
        // 00:30: the backoff long over; the retry this call starts fails too.
        time.advance(Duration::from_secs(3600));
        let at_the_date = prices.price(&key()).await.unwrap();
        assert_eq!(
            (at_the_date.usd_per_unit, at_the_date.provenance.note),
            (
                usd("0.20"),
                Some(format!("{DOWN}; {FAILED}; {ANNOUNCED}").into())
            )
        );
        until(|| !prices.is_fetching(&key())).await;
        for _ in 0..3 {
            let kept = prices.price(&key()).await.unwrap();
            assert_eq!(
                shown(kept),
                (
                    usd("0.20"),
                    PriceOrigin::Cache,
                    "2026-09-01T00:00:00Z".into(),
                    at("2026-08-31T22:00:00Z"),
                    Some(format!("{FAILED}; {ANNOUNCED}"))
                )
            );
            // Hours on, still down.
            time.advance(Duration::from_secs(3600));
            prices.price(&key()).await.unwrap();
            until(|| !prices.is_fetching(&key())).await;
        }
        assert_eq!(told.lock().unwrap().len(), 1);
        assert_eq!(primary.calls(), 6);
    }

    /// A refresh started at 23:59:59 (1 h TTL) fails at 00:00 just as another call
    /// puts the announced $0.20 in place: the switch tells 0.23 → 0.20 (the ledger's
    /// record) and keeps $0.20, then the failure is recorded. What it keeps is the
    /// $0.20 in force, not the $0.23 it would have read before the switch: a call at
    /// 00:00:01 is priced 1 h × $0.20 = $0.20, noted with the change (told once, on
    /// this receipt), the failure and the announced term; the next without the change.
    #[tokio::test(start_paused = true)]
    async fn a_refresh_failing_as_an_announced_term_is_put_in_place_keeps_that_term() {
        let primary = Answers::new([Ok(announcing())]);
        let (prices, time, told) = at_2200(primary.clone(), Duration::from_secs(3600));
        prices.price(&key()).await.unwrap();
        // 23:59:59: stale; the refresh this call starts fails (nothing scripted).
        time.advance(Duration::from_secs(2 * 3600 - 1));
        let stale = prices.price(&key()).await.unwrap();
        assert_eq!(
            (stale.usd_per_unit, stale.provenance.note.as_deref()),
            (usd("0.23"), Some(REFRESHING))
        );
        // 00:00:00: the failure lands; just before it is recorded, another call
        // puts the term in place (as `look_up` does on `Next::Switch`).
        time.advance(Duration::from_secs(1));
        let slot = prices.inner.slot(&key());
        let switched: Arc<Mutex<Option<Option<String>>>> = Arc::default();
        {
            let (inner, on, switched) = (prices.inner.clone(), slot.clone(), switched.clone());
            *slot.before_failure_lands.lock().unwrap() = Some(Box::new(move || {
                *switched.lock().unwrap() = Some(inner.switch(&on));
            }));
        }
        until(|| !prices.is_fetching(&key())).await;
        assert_eq!(
            *switched.lock().unwrap(),
            Some(None),
            "switched before the failure was recorded; nothing owed to that call"
        );
        assert_eq!(told.lock().unwrap().len(), 1);

        // 00:00:01, within the 60 s backoff.
        time.advance(Duration::from_secs(1));
        assert_eq!(prices.price_now(&key()), None, "the change is for `price`");
        let first = prices.price(&key()).await.unwrap();
        assert_eq!(
            shown(first),
            (
                usd("0.20"),
                PriceOrigin::Cache,
                "2026-09-01T00:00:00Z".into(),
                at("2026-08-31T22:00:00Z"),
                Some(format!("{DOWN}; {FAILED}; {ANNOUNCED}"))
            )
        );
        for _ in 0..2 {
            let kept = prices.price(&key()).await.unwrap();
            assert_eq!(
                (kept.usd_per_unit, kept.provenance.note),
                (usd("0.20"), Some(format!("{FAILED}; {ANNOUNCED}").into()))
            );
        }
        assert_eq!(
            prices
                .price_now(&key())
                .and_then(Result::ok)
                .map(|rate| rate.usd_per_unit),
            Some(usd("0.20"))
        );
        let told = told.lock().unwrap();
        assert_eq!(
            told.iter()
                .map(|c| (c.old_usd_per_unit, c.new_usd_per_unit))
                .collect::<Vec<_>>(),
            [(usd("0.23"), usd("0.20"))]
        );
        assert_eq!(primary.calls(), 2, "no retry within the backoff");
    }

    /// Without a Tokio runtime the call at 00:30 (1 h TTL: the answer of 22:00 is
    /// stale) puts the announced $0.20 in place, telling 0.23 → 0.20, then refreshes
    /// itself; the Price List failing, it gets what the failure keeps, $0.20, noted
    /// with the change it told, the failure and the term. The next call, within the
    /// 60 s backoff, gets $0.20 without the change.
    #[test]
    fn without_a_runtime_the_call_that_puts_a_term_in_place_and_fails_to_refresh_is_told() {
        let primary = Answers::new([Ok(announcing())]);
        let (prices, time, told) = at_2200(primary.clone(), Duration::from_secs(3600));
        fetched_at_2200_then_0030(&prices, &time);
        let std::task::Poll::Ready(at_the_date) = poll_once(prices.price(&key())) else {
            panic!("the refresh fails at once");
        };
        assert_eq!(
            shown(at_the_date.unwrap()),
            (
                usd("0.20"),
                PriceOrigin::Cache,
                "2026-09-01T00:00:00Z".into(),
                at("2026-08-31T22:00:00Z"),
                Some(format!("{DOWN}; {FAILED}; {ANNOUNCED}"))
            )
        );
        let std::task::Poll::Ready(kept) = poll_once(prices.price(&key())) else {
            panic!("the kept price answers at once");
        };
        let kept = kept.unwrap();
        assert_eq!(
            (kept.usd_per_unit, kept.provenance.note),
            (usd("0.20"), Some(format!("{FAILED}; {ANNOUNCED}").into()))
        );
        assert_eq!((told.lock().unwrap().len(), primary.calls()), (1, 2));
    }

    /// What the live source answers for ml.m5.xlarge at `fetched`, before
    /// 2026-09-01: $0.23 per hour with $0.20 announced from 2026-09-01T00:00Z.
    fn announcing_at(fetched: &str) -> Rate {
        let on = utc("2026-09-01T00:00:00Z");
        let september = Rate::with_note_before(
            live("0.20", "2026-09-01T00:00:00Z", fetched),
            &super::super::live::announced_note(on, utc(fetched)),
        );
        let mut rate = live("0.23", "2026-05-01T00:00:00Z", fetched);
        rate.next_term = Some(Box::new(NextTerm {
            on,
            rate: Some(september),
        }));
        rate
    }

    /// A refresh started at 23:59:59 (1 h TTL) lands at 00:00, after another call
    /// put the announced $0.20 in place (telling 0.23 → 0.20) and before any call
    /// was served it. Its answer, fetched at 23:59:59, gives the same term: $0.20
    /// from 00:00, no change of its own. The change told stays to be noted: the
    /// call at 00:00:01 is priced 1 h × $0.20 = $0.20 with the change's note, the
    /// next without it; told once.
    #[tokio::test(start_paused = true)]
    async fn a_refresh_landing_after_an_announced_term_was_put_in_place_leaves_its_change_noted() {
        let primary = Answers::new([Ok(announcing()), Ok(announcing_at("2026-08-31T23:59:59Z"))]);
        let (prices, time, told) = at_2200(primary.clone(), Duration::from_secs(3600));
        prices.price(&key()).await.unwrap();
        // 23:59:59: stale; the refresh this call starts has not run yet.
        time.advance(Duration::from_secs(2 * 3600 - 1));
        prices.price(&key()).await.unwrap();
        // 00:00:00: another call puts the term in place (as `look_up` does on
        // `Next::Switch`), then the refresh lands.
        time.advance(Duration::from_secs(1));
        let slot = prices.inner.slot(&key());
        assert_eq!(
            prices.inner.switch(&slot),
            None,
            "nothing owed to that call"
        );
        until(|| !prices.is_fetching(&key())).await;
        assert_eq!(primary.calls(), 2);

        // 00:00:01.
        time.advance(Duration::from_secs(1));
        let announced = "rate of the term effective 2026-09-01T00:00:00Z, announced in the \
                         Price List answer fetched 2026-08-31T23:59:59Z";
        let first = prices.price(&key()).await.unwrap();
        assert_eq!(
            shown(first),
            (
                usd("0.20"),
                PriceOrigin::Cache,
                "2026-09-01T00:00:00Z".into(),
                at("2026-08-31T23:59:59Z"),
                Some(format!("{DOWN}; {announced}"))
            )
        );
        let next = prices.price(&key()).await.unwrap();
        assert_eq!(
            (next.usd_per_unit, next.provenance.note.as_deref()),
            (usd("0.20"), Some(announced))
        );
        assert_eq!(
            told.lock()
                .unwrap()
                .iter()
                .map(|c| (c.old_usd_per_unit, c.new_usd_per_unit))
                .collect::<Vec<_>>(),
            [(usd("0.23"), usd("0.20"))]
        );
    }

    /// Without a Tokio runtime the call at 00:30 (1 h TTL: the answer of 22:00 is
    /// stale) puts the announced $0.20 in place, telling 0.23 → 0.20, then refreshes
    /// itself; the Price List now lists $0.20 alone. Its rate, 1 h × $0.20 = $0.20,
    /// is noted with the change it told; the next call's is not.
    #[test]
    fn without_a_runtime_the_call_that_puts_a_term_in_place_and_refreshes_is_told() {
        let primary = Answers::new([
            Ok(announcing()),
            Ok(live("0.20", "2026-09-01T00:00:00Z", "2026-09-01T00:30:00Z")),
        ]);
        let (prices, time, told) = at_2200(primary.clone(), Duration::from_secs(3600));
        fetched_at_2200_then_0030(&prices, &time);
        let std::task::Poll::Ready(at_the_date) = poll_once(prices.price(&key())) else {
            panic!("the refresh answers at once");
        };
        assert_eq!(
            shown(at_the_date.unwrap()),
            (
                usd("0.20"),
                PriceOrigin::Live,
                "2026-09-01T00:00:00Z".into(),
                at("2026-09-01T00:30:00Z"),
                Some(DOWN.into())
            )
        );
        let std::task::Poll::Ready(next) = poll_once(prices.price(&key())) else {
            panic!("the fresh price answers at once");
        };
        let next = next.unwrap();
        assert_eq!(
            (next.usd_per_unit, next.provenance.note),
            (usd("0.20"), None)
        );
        assert_eq!((told.lock().unwrap().len(), primary.calls()), (1, 2));
    }

    /// The other order: the refresh's failure is recorded while the call at 00:00
    /// tells 0.23 → 0.20 (after the switch read the kept answer, before it put
    /// $0.20 in place), so the failure keeps $0.23. The switch then makes $0.20 what
    /// the failure left, and that call's rate is noted with the change: 1 h × $0.20
    /// = $0.20 from 00:00:01 with the failure's note, told once.
    #[tokio::test(start_paused = true)]
    async fn a_refresh_failing_while_an_announced_term_is_told_keeps_that_term() {
        let primary = Answers::new([Ok(announcing())]);
        let time = ManualTimeSource::new(utc("2026-08-31T22:00:00Z").into());
        let inner_of_observer: Arc<std::sync::OnceLock<std::sync::Weak<Inner>>> = Arc::default();
        let landed: Arc<Mutex<Vec<Result<Rate, PriceError>>>> = Arc::default();
        let (look, land) = (inner_of_observer.clone(), landed.clone());
        let prices = CachedPrices::builder(primary.clone())
            .fallback(Snapshot::bundled())
            .ttl(Duration::from_secs(3600))
            .time_source(SharedTimeSource::new(time.clone()))
            .on_change(move |change| {
                // The refresh's failure lands now (nothing to await: a good price
                // is known).
                let inner = look.get().and_then(std::sync::Weak::upgrade).unwrap();
                let slot = inner.slot(&change.key);
                let std::task::Poll::Ready(answer) =
                    poll_once(inner.land(&slot, &change.key, Err(throttled()), true))
                else {
                    panic!("the failure lands at once");
                };
                land.lock().unwrap().push(answer);
            })
            .build();
        inner_of_observer
            .set(Arc::downgrade(&prices.inner))
            .unwrap();
        prices.price(&key()).await.unwrap();
        // 00:00:00.
        time.advance(Duration::from_secs(2 * 3600));
        let slot = prices.inner.slot(&key());
        let owed = prices.inner.switch(&slot);
        {
            let landed = landed.lock().unwrap();
            assert_eq!(
                landed.len(),
                1,
                "the failure landed while the change was told"
            );
            assert_eq!(
                landed[0].as_ref().map(|rate| rate.usd_per_unit),
                Ok(usd("0.23"))
            );
        }
        assert_eq!(
            owed.as_deref(),
            Some(DOWN),
            "owed to the call that switched"
        );

        // 00:00:01, within the 60 s backoff: what the failure left is $0.20 now.
        time.advance(Duration::from_secs(1));
        for _ in 0..2 {
            let kept = prices.price(&key()).await.unwrap();
            assert_eq!(
                shown(kept),
                (
                    usd("0.20"),
                    PriceOrigin::Cache,
                    "2026-09-01T00:00:00Z".into(),
                    at("2026-08-31T22:00:00Z"),
                    Some(format!("{FAILED}; {ANNOUNCED}"))
                )
            );
        }
        assert_eq!(primary.calls(), 1, "nothing asked within the backoff");
    }

    /// Calls at the date all at once: every one is priced at $0.20, one receipt
    /// notes the change, it is told once, and while it is told nobody can be priced
    /// without waiting (neither the replaced rate nor the new one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn calls_at_the_date_wait_while_the_change_is_told_once() {
        let _log = tracing::subscriber::set_default(tracing_subscriber::registry());
        let primary = Answers::new([Ok(announcing())]);
        let time = ManualTimeSource::new(utc("2026-08-31T22:00:00Z").into());
        let (prices, seen) = seeing_price_now(
            CachedPrices::builder(primary.clone()).time_source(SharedTimeSource::new(time.clone())),
        );
        prices.price(&key()).await.unwrap();
        time.advance(Duration::from_secs(2 * 3600 + 1800));
        let calls = callers(&prices, 16);
        let mut noted = 0;
        for call in calls {
            let rate = call.await.unwrap().unwrap();
            assert_eq!(rate.usd_per_unit, usd("0.20"));
            match rate.provenance.note.as_deref() {
                Some(note) if note == format!("{DOWN}; {ANNOUNCED}") => noted += 1,
                other => assert_eq!(other, Some(ANNOUNCED)),
            }
        }
        assert_eq!(noted, 1);
        assert_eq!(*seen.lock().unwrap(), [None]);
        assert_eq!(primary.calls(), 1);
    }
}
