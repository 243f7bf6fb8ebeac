//! Counters and histograms through the `metrics` facade.

use super::CostSink;
use crate::billing::{Cost, pico_usd};
use crate::config_error::ConfigError;
use crate::usage::Outcome;
use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder, SharedString};
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Distinct values of one tag label kept per key; later values are reported as
/// [`OTHER_TAG_VALUE`].
pub const MAX_TAG_LABEL_VALUES: usize = 100;

/// The label value standing for every tag value past [`MAX_TAG_LABEL_VALUES`].
pub const OTHER_TAG_VALUE: &str = "_other";

/// Labels every sagemeter metric may carry already; tag keys cannot reuse them
/// ([`CostMetrics::with_tag_labels`] refuses them, and so does the client's
/// `build()`). `region` is one: it is the client's region, on every series, and a
/// tag of yours called `region` needs another key to be a label.
pub const RESERVED_LABELS: [&str; 8] = [
    "endpoint",
    "region",
    "variant",
    "inference_component",
    "price_source",
    "outcome",
    "direction",
    "sink",
];

/// Labels that Prometheus gives a meaning of its own; tag keys cannot be them.
/// `le` and `quantile` are written by the exporter on histogram and summary lines
/// (a second one makes the line a duplicate label, and Prometheus rejects the whole
/// scrape); `job` and `instance` are the target's, which the server sets (yours
/// would be renamed `exported_job`, `exported_instance`).
pub const PROMETHEUS_LABELS: [&str; 4] = ["le", "quantile", "job", "instance"];

/// Describes every sagemeter metric (unit and help text) to the installed recorder.
/// [`ClientBuilder::build`](crate::ClientBuilder::build) calls it; call it yourself
/// if you install the recorder after building the client.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "sagemeter_invocations_total",
        Unit::Count,
        "Metered SageMaker endpoint calls."
    );
    describe_counter!(
        "sagemeter_errors_total",
        Unit::Count,
        "Metered calls with a receipt that failed (outcome=error) or were cancelled (outcome=cancelled); failures that never reached the model are not billed and not counted."
    );
    describe_counter!(
        "sagemeter_unpriced_total",
        Unit::Count,
        "Receipts with at least one unpriced cost line (their cost is a lower bound); an async invocation has two receipts, submission and settlement, and may count twice."
    );
    describe_counter!(
        "sagemeter_cost_micro_usd_total",
        "Cost of the calls in millionths of a USD (exact total, truncated to the micro-dollar)."
    );
    describe_counter!(
        "sagemeter_tokens_total",
        Unit::Count,
        "Tokens reported by responses answered with HTTP 2XX, by direction (input, output)."
    );
    describe_histogram!(
        "sagemeter_cost_usd",
        "Cost of one receipt in USD (an async invocation has two: submission and settlement; f64: for distributions, totals are on the counter)."
    );
    describe_histogram!(
        "sagemeter_latency_seconds",
        Unit::Seconds,
        "Billed time of one receipt's call: each attempt that reached the model, from its request to its end (an async settlement: the processing time stated)."
    );
    describe_counter!(
        "sagemeter_price_changes_total",
        Unit::Count,
        "Prices that changed while cached (a refresh found a new rate for a key)."
    );
    describe_counter!(
        "sagemeter_sink_dropped_total",
        Unit::Count,
        "Receipts a sink dropped, by sink and reason (full, closed, io, panicked)."
    );
    describe_counter!(
        "sagemeter_budget_refused_total",
        Unit::Count,
        "Calls an enforced budget refused before sending, by reason (exceeded: no room; unavailable: a fleet budget could not be leased, the table not answering or the client shut down)."
    );
}

/// Counts a receipt lost because a sink's `record` panicked on it
/// (`sagemeter_sink_dropped_total{sink,reason="panicked"}`). `sink`: `queued` for
/// the sink behind a [`Queued`](super::Queued), else the sink's
/// [`name`](CostSink::name). Called after the sink's panic was caught: a recorder
/// that panics as well is caught here too, so that neither reaches the call.
#[cold]
pub(crate) fn count_panicked(sink: impl Into<SharedString>) {
    let sink = sink.into();
    let _ = std::panic::catch_unwind(move || {
        metrics::counter!("sagemeter_sink_dropped_total", "sink" => sink, "reason" => "panicked")
            .increment(1);
    });
}

/// Counts a call refused before it was sent by an enforced budget
/// (`sagemeter_budget_refused_total`, label `reason`: `exceeded`, `unavailable`);
/// any other error is not counted. Such a call has no receipt, so no sink sees it.
pub(crate) fn count_refusal(err: &crate::Error) {
    let reason = match err {
        crate::Error::BudgetExceeded { .. } => "exceeded",
        crate::Error::BudgetUnavailable { .. } => "unavailable",
        _ => return,
    };
    metrics::counter!("sagemeter_budget_refused_total", "reason" => reason).increment(1);
}

/// The `metrics` side of every receipt (a no-op unless the application installs a
/// recorder, e.g. `metrics-exporter-prometheus`).
///
/// The builder installs one in every client's sinks, right after the
/// [`CostLogSink`](super::CostLogSink), with the tag labels of
/// [`ClientBuilder::metric_tag_labels`](crate::ClientBuilder::metric_tag_labels)
/// (none: [`ClientBuilder::without_metrics`](crate::ClientBuilder::without_metrics)).
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `sagemeter_invocations_total` | counter | base |
/// | `sagemeter_errors_total` | counter (calls with a receipt: see below) | base + `outcome` (`error`, `cancelled`) |
/// | `sagemeter_unpriced_total` | counter (receipts: an async invocation's two may count twice) | base |
/// | `sagemeter_cost_micro_usd_total` | counter | base |
/// | `sagemeter_tokens_total` | counter | base + `direction` (`input`, `output`) |
/// | `sagemeter_cost_usd` | histogram | base |
/// | `sagemeter_latency_seconds` | histogram | base |
///
/// Base labels: `endpoint`, `region` (the client's, empty when unknown: two
/// clients of one process, one per region, can call endpoints of the same name,
/// two deployments), `variant` (empty when unknown), `inference_component`
/// (only on calls that named one: its name when the endpoint's profile lists it,
/// [`OTHER_TAG_VALUE`] when it does not, so that names a request makes up cannot
/// make series; when that is not known, a call whose endpoint could not be
/// described (no `sagemaker:DescribeEndpoint` permission, throttled, not at hand
/// yet) or a receipt given to this sink by another way than the client's own,
/// each endpoint labels at most [`MAX_TAG_LABEL_VALUES`] components by their
/// names, the rest [`OTHER_TAG_VALUE`]), `price_source` (the least fresh source on the
/// receipt, `unpriced` when nothing was priced), then one label per configured tag
/// key ([`with_tag_labels`](Self::with_tag_labels)). A multi-model endpoint's
/// target model is not a label: an endpoint can serve thousands; reports and the
/// ledger group by it.
///
/// Like every sink, it sees receipts only: `sagemeter_errors_total` counts the
/// failed and cancelled calls that have one. A failure that never reached the
/// model (throttled, refused as invalid, a SageMaker 5XX not the model's, a
/// connection never made) makes no receipt, as AWS bills it nothing, and is
/// counted by no sink; the caller sees it as the call's error.
///
/// The facade's counters are integers, so cost is counted in micro-dollars. The
/// sub-micro-dollar remainder of each call is carried to the next call with the
/// same labels: the counter is always the exact sum of the receipts truncated to
/// the micro-dollar (never drifting with the number of calls, as per-call rounding
/// would). The exact figures are on the receipts and in the ledger.
///
/// Each distinct label set keeps its label values (one copy of each value, shared
/// by every set that has it) and its metrics' handles; a metric's key is made only
/// to register its handle, so emitting allocates nothing but on a handle's first
/// use, its first after 0.5 s without an update, or its first a second after it
/// was registered (below). That is about 0.8 KB
/// per endpoint called, with one label set.
///
/// An exporter's idle timeout (`PrometheusBuilder::idle_timeout`, to age out the
/// series of endpoints no longer called) must be at least 1 s: a handle not updated
/// for 0.5 s is registered again before its next update, so that a series the
/// exporter removed comes back (from zero) rather than being updated where nothing
/// reads it. A handle is also registered again once a second, however busy: an
/// update landing while the exporter removes its series (it checks the series
/// idle, then removes it, in two steps) would otherwise leave a busy series
/// updated where nothing reads it for as long as it stays busy; so such a loss
/// lasts at most about a second.
#[derive(Debug, Default)]
pub struct CostMetrics {
    tag_keys: Vec<String>,
    state: Mutex<State>,
}

/// What the facade's macros would build on every call, made once per label set.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

#[derive(Debug, Default)]
struct State {
    /// Tag values seen per tag key (at most MAX_TAG_LABEL_VALUES each), in the
    /// order of `tag_keys`.
    tag_values: Vec<HashSet<String>>,
    /// Label sets seen, by endpoint (of every region: each set holds its region).
    label_sets: crate::FastMap<String, EndpointSets>,
    /// One copy of each label key and value of the label sets (but endpoints:
    /// each is its own sets'), shared by every set that has it.
    names: HashSet<Arc<str>>,
}

/// The one copy of `name` in `names`, made on first use.
fn intern(names: &mut HashSet<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(shared) = names.get(name) {
        return shared.clone();
    }
    let shared: Arc<str> = Arc::from(name);
    names.insert(shared.clone());
    shared
}

/// The label sets of one endpoint: a few are found by a scan; past
/// [`SCANNED_SETS`] (tag labels of many values make thousands) through an index
/// by the hash of their values, so that a call's look-up stays O(1).
#[derive(Debug, Default)]
struct EndpointSets {
    /// The `endpoint` label's value, shared by the sets.
    endpoint: Option<Arc<str>>,
    /// The inference components labelled, when not known to be listed (at most
    /// MAX_TAG_LABEL_VALUES).
    components: HashSet<String>,
    sets: Vec<LabelSet>,
    /// Indexes into `sets`, once there are more than [`SCANNED_SETS`].
    index: hashbrown::HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

/// How many label sets of an endpoint are scanned before an index is kept.
const SCANNED_SETS: usize = 16;

impl EndpointSets {
    fn len(&self) -> usize {
        self.sets.len()
    }
}

/// The hash of a set of label values.
fn values_hash<'a>(
    hasher: &foldhash::fast::RandomState,
    values: &Values<'_>,
    tag_values: impl Iterator<Item = &'a str>,
) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = hasher.build_hasher();
    (
        values.region,
        values.variant,
        values.component,
        values.price_source,
    )
        .hash(&mut h);
    for value in tag_values {
        value.hash(&mut h);
    }
    h.finish()
}

/// The hash of `set`'s label values, as [`values_hash`] makes it.
fn set_hash(hasher: &foldhash::fast::RandomState, set: &LabelSet) -> u64 {
    values_hash(hasher, &set.values(), set.tag_values())
}

/// The base label values of a call but its endpoint (the label sets' key).
#[derive(Debug, Clone, Copy)]
struct Values<'a> {
    region: &'a str,
    variant: &'a str,
    component: Option<&'a str>,
    price_source: &'a str,
}

/// One distinct set of label values, its handles and its micro-dollar remainder.
#[derive(Debug)]
struct LabelSet {
    /// `endpoint`, `region`, `variant`, `inference_component` (when named),
    /// `price_source`, then one per tag key: each value shared with the other sets
    /// that have it. The metric keys are made of them when a handle is registered.
    labels: Box<[Label]>,
    /// Whether `labels` has an `inference_component`.
    component: bool,
    /// Pico-dollars below one micro-dollar, carried to the next call.
    remainder_pico: u64,
    handles: Handles,
}

/// Names of the metrics of a label set, and the label some of them add.
const INVOCATIONS: &str = "sagemeter_invocations_total";
const ERRORS: &str = "sagemeter_errors_total";
const UNPRICED: &str = "sagemeter_unpriced_total";
const COST_MICRO_USD: &str = "sagemeter_cost_micro_usd_total";
const TOKENS: &str = "sagemeter_tokens_total";
const COST_USD: &str = "sagemeter_cost_usd";
const LATENCY_SECONDS: &str = "sagemeter_latency_seconds";

impl CostMetrics {
    /// Metrics with the base labels only.
    pub fn new() -> Self {
        CostMetrics::default()
    }

    /// Metrics whose labels also carry the value of these tags (`""` when a call
    /// does not have the tag).
    ///
    /// Each distinct label value is a separate time series in the exporter: list
    /// only tags with a small, fixed set of values (team, environment, model),
    /// never ids (request, user, session). As a guard, each key keeps at most
    /// [`MAX_TAG_LABEL_VALUES`] distinct values; calls with further values are
    /// counted under [`OTHER_TAG_VALUE`] (once, with a WARN). Keys must be valid
    /// Prometheus label names (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`)
    /// and must not be one of [`RESERVED_LABELS`] or [`PROMETHEUS_LABELS`].
    pub fn with_tag_labels<I, S>(keys: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        const OPTION: &str = "CostMetrics::with_tag_labels";
        let mut tag_keys: Vec<String> = Vec::new();
        for key in keys {
            let key = key.into();
            let valid = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !key.starts_with("__");
            let problem =
                |what: &str| ConfigError::new(OPTION, format!("metric tag label `{key}` {what}"));
            if !valid {
                return Err(problem("is not a valid label name")
                    .hint("use letters, digits and `_`, not starting with a digit or `__`"));
            }
            if RESERVED_LABELS.contains(&key.as_str()) {
                let hint = match key.as_str() {
                    // A tag key many have: say what sagemeter's label holds.
                    "region" => {
                        "sagemeter's `region` label is the client's region, on every series \
                         already; give your tag another key (e.g. `team_region`) and list that"
                    }
                    _ => "give your tag another key and list that",
                };
                return Err(
                    problem(&format!("clashes with sagemeter's own `{key}` label")).hint(hint),
                );
            }
            if PROMETHEUS_LABELS.contains(&key.as_str()) {
                return Err(problem(&format!(
                    "is a label Prometheus gives a meaning of its own (`{key}`)"
                ))
                .hint("tag the calls with another key"));
            }
            if tag_keys.contains(&key) {
                return Err(problem("is listed twice"));
            }
            tag_keys.push(key);
        }
        let state = State {
            tag_values: vec![HashSet::new(); tag_keys.len()],
            ..State::default()
        };
        Ok(CostMetrics {
            tag_keys,
            state: Mutex::new(state),
        })
    }

    /// The tag keys that become labels.
    pub fn tag_labels(&self) -> &[String] {
        &self.tag_keys
    }

    /// Emits the metrics of one receipt.
    ///
    /// `component_listed`: whether the endpoint's profile lists the call's
    /// inference component (the client's own calls), `None` when unknown (a receipt
    /// given to this sink by another way, or a call whose endpoint could not be
    /// described).
    fn emit(&self, cost: &Cost, component_listed: Option<bool>) {
        let mut values = Values {
            region: cost.region.as_deref().unwrap_or_default(),
            variant: cost.variant.as_deref().unwrap_or_default(),
            component: cost.inference_component.as_deref(),
            price_source: cost.price_source().map_or("unpriced", |s| s.as_str()),
        };
        let usage = &cost.usage;

        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        values.component = values.component.map(|component| {
            component_value(component, component_listed, &cost.endpoint, || {
                &mut crate::util::entry_by_str(&mut state.label_sets, &cost.endpoint).components
            })
        });
        // The tag label values of this call, bounded per key (no allocation
        // without tag labels).
        let mut tag_values = Vec::with_capacity(self.tag_keys.len());
        for (i, key) in self.tag_keys.iter().enumerate() {
            let value = tag_label_value(
                &mut state.tag_values[i],
                key,
                cost.tags.get(key).map(String::as_str),
                &cost.endpoint,
            );
            tag_values.push(value);
        }
        let set = state.label_set(&self.tag_keys, &cost.endpoint, &values, &tag_values);
        let micro_usd = set.micro_usd(cost.cost_usd);
        let LabelSet {
            labels, handles, ..
        } = set;
        let labels = &**labels;
        metrics::with_recorder(|recorder| {
            handles.register_with(recorder);
            // One clock read for every handle of the call.
            let now = now_ms();
            let key = |name| move || Key::from_parts(name, labels.to_vec());
            let with = |name, label, value| {
                move || {
                    let mut all = Vec::with_capacity(labels.len() + 1);
                    all.extend_from_slice(labels);
                    all.push(Label::from_static_parts(label, value));
                    Key::from_parts(name, all)
                }
            };
            // An async invocation is one invocation with two receipts.
            if !cost.is_async_settlement() {
                handles
                    .invocations
                    .get(recorder, now, key(INVOCATIONS))
                    .increment(1);
            }
            match usage.outcome {
                Outcome::Ok => {}
                Outcome::Error => handles
                    .errors
                    .get(
                        recorder,
                        now,
                        with(ERRORS, "outcome", Outcome::Error.as_str()),
                    )
                    .increment(1),
                Outcome::Cancelled => handles
                    .cancelled
                    .get(
                        recorder,
                        now,
                        with(ERRORS, "outcome", Outcome::Cancelled.as_str()),
                    )
                    .increment(1),
            }
            if !cost.is_fully_priced() {
                handles
                    .unpriced
                    .get(recorder, now, key(UNPRICED))
                    .increment(1);
            }
            handles
                .cost_micro_usd
                .get(recorder, now, key(COST_MICRO_USD))
                .increment(micro_usd);
            // Only a call answered with HTTP 2XX reports tokens, as `report` and
            // `compare` count them: a failed async inference's settlement may
            // carry the counts of its output, but its token lines charged none.
            let (input_tokens, output_tokens) = crate::billing::counted_tokens(usage);
            if let Some(tokens) = input_tokens {
                handles
                    .input_tokens
                    .get(recorder, now, with(TOKENS, "direction", "input"))
                    .increment(tokens);
            }
            if let Some(tokens) = output_tokens {
                handles
                    .output_tokens
                    .get(recorder, now, with(TOKENS, "direction", "output"))
                    .increment(tokens);
            }
            handles
                .cost_usd
                .get(recorder, now, key(COST_USD))
                .record(pico_usd(cost.cost_usd).map_or(0.0, |pico| pico as f64 / 1e12));
            handles
                .latency_seconds
                .get(recorder, now, key(LATENCY_SECONDS))
                .record(usage.latency.as_secs_f64());
        });
    }
}

impl super::NamesComponents for CostMetrics {
    /// Emits the metrics of a receipt of the client's own calls, saying whether the
    /// endpoint's profile lists the call's inference component: a component it does
    /// not list is labelled [`OTHER_TAG_VALUE`], so that names a request makes up
    /// cannot make series. `None`: not known (the endpoint could not be described),
    /// as for a receipt given by another way (see [`CostSink::record`]).
    fn record_call(&self, cost: &Cost, component_listed: Option<bool>) {
        self.emit(cost, component_listed);
    }
}

impl CostSink for CostMetrics {
    /// A receipt given to this sink by another way than the client's own: whether
    /// its endpoint lists its inference component is not known, so each endpoint
    /// labels at most [`MAX_TAG_LABEL_VALUES`] components, the rest
    /// [`OTHER_TAG_VALUE`].
    fn record(&self, cost: &Cost) {
        self.emit(cost, None);
    }
}

/// The recorder's handles of one label set, each registered on first use and then
/// reused, as the `metrics` facade recommends on hot paths: a recorder's
/// `register_*` looks the key up in its registry on every call.
///
/// A handle not updated for more than [`REGISTER_AGAIN_AFTER_MS`] is registered
/// again before its next update. A recorder may have dropped its metric meanwhile:
/// the Prometheus exporter's `idle_timeout` removes a metric whose value did not
/// change for the timeout, and an update to a handle kept from before would then
/// reach nothing, for good. The exporter removes a metric only after seeing no
/// change for the whole timeout, so with a timeout of at least 1 s (twice the
/// bound) a handle updated within the bound is still registered, and one idle for
/// longer comes back in the registry (from zero, as the facade's own macros bring
/// it back). Each handle keeps its own time: a busy endpoint's rarely used
/// counters (errors, cancellations) idle on their own.
///
/// A handle is also registered again once it was registered more than
/// [`REGISTERED_AT_MOST_MS`] ago, however busy: the exporter reads a metric's
/// generation and removes it in two steps, so an update that lands in between (a
/// handle registered again after idling, then updated) goes to storage the
/// registry no longer holds. Without a bound, a series updated more often than
/// every 0.5 s would stay there, missing, for as long as it stays busy; with it,
/// such a loss lasts at most about a second. Registering a metric the registry
/// still holds gives back its storage: nothing is counted twice or lost.
#[derive(Default)]
struct Handles {
    /// Address of the recorder they were registered with: when another one is
    /// current (a recorder installed later, a thread's local recorder), they are
    /// registered again with it.
    recorder: usize,
    invocations: Handle<Counter>,
    errors: Handle<Counter>,
    cancelled: Handle<Counter>,
    unpriced: Handle<Counter>,
    cost_micro_usd: Handle<Counter>,
    input_tokens: Handle<Counter>,
    output_tokens: Handle<Counter>,
    cost_usd: Handle<Histogram>,
    latency_seconds: Handle<Histogram>,
}

impl Handles {
    /// Forgets the handles of any recorder but `recorder`.
    fn register_with(&mut self, recorder: &dyn Recorder) {
        let address = recorder as *const dyn Recorder as *const () as usize;
        if self.recorder != address {
            self.forget_all(address);
        }
    }

    // Registration paths run once per label set and recorder: kept out of line, so
    // that the per-call path stays short.
    #[cold]
    #[inline(never)]
    fn forget_all(&mut self, recorder: usize) {
        *self = Handles {
            recorder,
            ..Handles::default()
        };
    }
}

impl fmt::Debug for Handles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handles").finish_non_exhaustive()
    }
}

/// A handle not updated for longer than this (in milliseconds) is registered again
/// before its next update (see [`Handles`]): half the shortest idle timeout the
/// docs ask of an exporter (1 s).
const REGISTER_AGAIN_AFTER_MS: u64 = 500;

/// A handle registered longer ago than this (in milliseconds) is registered again
/// before its next update, however busy (see [`Handles`]): one registry look-up a
/// second per busy handle.
const REGISTERED_AT_MOST_MS: u64 = 1_000;

/// Milliseconds since the first call (a monotonic clock: one read).
fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = START.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// One metric's handle, registered when first needed, when it was last updated
/// and when it was registered ([`now_ms`]).
struct Handle<T> {
    handle: Option<T>,
    updated_ms: u64,
    registered_ms: u64,
}

impl<T> Default for Handle<T> {
    fn default() -> Self {
        Handle {
            handle: None,
            updated_ms: 0,
            registered_ms: 0,
        }
    }
}

/// What a recorder registers for a key.
trait Register: Sized {
    fn register(recorder: &dyn Recorder, key: &Key) -> Self;
}

impl Register for Counter {
    fn register(recorder: &dyn Recorder, key: &Key) -> Self {
        recorder.register_counter(key, &METADATA)
    }
}

impl Register for Histogram {
    fn register(recorder: &dyn Recorder, key: &Key) -> Self {
        recorder.register_histogram(key, &METADATA)
    }
}

impl<T: Register> Handle<T> {
    /// The handle to update at `now_ms`: registered again when it was not updated
    /// for more than [`REGISTER_AGAIN_AFTER_MS`], as the recorder may have dropped
    /// its metric meanwhile, or was registered more than [`REGISTERED_AT_MOST_MS`]
    /// ago, as an update may have gone to storage the recorder dropped.
    /// Its key is made by `key` (of the label set's labels), only to register it.
    fn get(&mut self, recorder: &dyn Recorder, now_ms: u64, key: impl FnOnce() -> Key) -> &T {
        if now_ms.saturating_sub(self.updated_ms) > REGISTER_AGAIN_AFTER_MS
            || now_ms.saturating_sub(self.registered_ms) > REGISTERED_AT_MOST_MS
        {
            self.handle = None;
        }
        self.updated_ms = now_ms;
        if self.handle.is_none() {
            self.registered_ms = now_ms;
        }
        self.handle.get_or_insert_with(|| register(recorder, key))
    }
}

#[cold]
#[inline(never)]
fn register<T: Register>(recorder: &dyn Recorder, key: impl FnOnce() -> Key) -> T {
    T::register(recorder, &key())
}

/// The label value of one tag: the call's value while the key has room for it,
/// [`OTHER_TAG_VALUE`] past [`MAX_TAG_LABEL_VALUES`], `""` when the call lacks it.
/// What a call's inference component is called in a sink's output (the metrics'
/// `inference_component` label, the EMF sink's `InferenceComponent` dimension),
/// where each distinct value is a series: the request names it, and a request
/// can name anything. Its own name when the endpoint's profile lists it (`listed`
/// `Some(true)`), [`OTHER_TAG_VALUE`] when it does not (`Some(false)`), so that
/// names a request makes up cannot make series; when that is not known (`None`: the
/// endpoint could not be described, or the receipt was given to the sink by
/// another way than the client's own), its own name for the first
/// [`MAX_TAG_LABEL_VALUES`] names `seen` on the endpoint, then
/// [`OTHER_TAG_VALUE`] (with one WARN).
pub(crate) fn component_value<'a, 's>(
    component: &'a str,
    listed: Option<bool>,
    endpoint: &str,
    seen: impl FnOnce() -> &'s mut HashSet<String>,
) -> &'a str {
    match listed {
        Some(true) => component,
        Some(false) => OTHER_TAG_VALUE,
        None => tag_label_value(seen(), "inference_component", Some(component), endpoint),
    }
}

fn tag_label_value<'a>(
    seen: &mut HashSet<String>,
    key: &str,
    value: Option<&'a str>,
    endpoint: &str,
) -> &'a str {
    let Some(value) = value else {
        return "";
    };
    if seen.contains(value) {
        return value;
    }
    if seen.len() < MAX_TAG_LABEL_VALUES {
        seen.insert(value.to_owned());
        return value;
    }
    if seen.insert(OTHER_TAG_VALUE.to_owned()) {
        tracing::warn!(target: "sagemeter", label = key, limit = MAX_TAG_LABEL_VALUES,
            endpoint, "metric label has too many distinct values: further values \
            are labelled `_other` (receipts and ledgers keep the real value)");
    }
    OTHER_TAG_VALUE
}

impl State {
    /// The label set of these values, made on first use.
    fn label_set(
        &mut self,
        tag_keys: &[String],
        endpoint: &str,
        values: &Values<'_>,
        tag_values: &[&str],
    ) -> &mut LabelSet {
        let endpoint_sets = crate::util::entry_by_str(&mut self.label_sets, endpoint);
        let is = |set: &LabelSet| {
            let Values {
                region,
                variant,
                component,
                price_source,
            } = set.values();
            variant == values.variant
                && region == values.region
                && component == values.component
                && price_source == values.price_source
                && set.tag_values().eq(tag_values.iter().copied())
        };
        let found = if endpoint_sets.len() <= SCANNED_SETS {
            endpoint_sets.sets.iter().position(is)
        } else {
            let EndpointSets {
                sets,
                index,
                hasher,
                ..
            } = &*endpoint_sets;
            let hash = values_hash(hasher, values, tag_values.iter().copied());
            index.find(hash, |&i| is(&sets[i])).copied()
        };
        let index = match found {
            Some(index) => index,
            None => {
                let endpoint = endpoint_sets
                    .endpoint
                    .get_or_insert_with(|| Arc::from(endpoint))
                    .clone();
                let set = LabelSet::new(&mut self.names, tag_keys, endpoint, values, tag_values);
                // Most endpoints have one set: room for it alone, not for four.
                // Past it, the Vec grows as usual (geometrically): reserving one
                // more each time would move every set on each new one.
                if endpoint_sets.sets.is_empty() {
                    endpoint_sets.sets.reserve_exact(1);
                }
                endpoint_sets.sets.push(set);
                let added = endpoint_sets.len() - 1;
                if endpoint_sets.len() > SCANNED_SETS {
                    let EndpointSets {
                        sets,
                        index,
                        hasher,
                        ..
                    } = &mut *endpoint_sets;
                    // The first time past the scan every set so far, then each new one.
                    let from = if index.is_empty() { 0 } else { added };
                    for i in from..=added {
                        let hash = set_hash(hasher, &sets[i]);
                        index.insert_unique(hash, i, |&j| set_hash(hasher, &sets[j]));
                    }
                }
                added
            }
        };
        &mut endpoint_sets.sets[index]
    }
}

impl LabelSet {
    /// The label set of a combination of values seen for the first time.
    #[cold]
    #[inline(never)]
    fn new(
        names: &mut HashSet<Arc<str>>,
        tag_keys: &[String],
        endpoint: Arc<str>,
        values: &Values<'_>,
        tag_values: &[&str],
    ) -> LabelSet {
        let mut shared = |name: &str| SharedString::from(intern(names, name));
        let mut labels = Vec::with_capacity(5 + tag_keys.len());
        labels.push(Label::new("endpoint", endpoint));
        labels.push(Label::new("region", shared(values.region)));
        labels.push(Label::new("variant", shared(values.variant)));
        if let Some(component) = values.component {
            labels.push(Label::new("inference_component", shared(component)));
        }
        labels.push(Label::new("price_source", shared(values.price_source)));
        for (key, value) in tag_keys.iter().zip(tag_values) {
            labels.push(Label::new(shared(key), shared(value)));
        }
        LabelSet {
            labels: labels.into_boxed_slice(),
            component: values.component.is_some(),
            remainder_pico: 0,
            handles: Handles::default(),
        }
    }

    /// Its base label values but the endpoint.
    fn values(&self) -> Values<'_> {
        let at = |i: usize| self.labels.get(i).map_or("", Label::value);
        let price_source = 3 + usize::from(self.component);
        Values {
            region: at(1),
            variant: at(2),
            component: self.component.then(|| at(3)),
            price_source: at(price_source),
        }
    }

    /// Its tag label values, in the order of the tag keys.
    fn tag_values(&self) -> impl Iterator<Item = &str> {
        let from = 4 + usize::from(self.component);
        self.labels.iter().skip(from).map(Label::value)
    }

    /// Whole micro-dollars to add for this call, carrying the remainder. Receipts
    /// state costs in whole pico-dollars, so the carry is an integer.
    fn micro_usd(&mut self, cost_usd: Decimal) -> u64 {
        let Some(pico) = pico_usd(cost_usd) else {
            return 0;
        };
        let total = pico.saturating_add(u128::from(self.remainder_pico));
        self.remainder_pico = (total % 1_000_000) as u64;
        u64::try_from(total / 1_000_000).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counters named `name` that `recorder` holds, by their `label`'s value.
    fn counters_by_label(
        recorder: &metrics_util::debugging::DebuggingRecorder,
        name: &str,
        label: &str,
    ) -> std::collections::BTreeMap<String, u64> {
        let mut by_label = std::collections::BTreeMap::new();
        for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
            if key.key().name() != name {
                continue;
            }
            let metrics_util::debugging::DebugValue::Counter(n) = value else {
                panic!("a counter")
            };
            let value = key
                .key()
                .labels()
                .find(|l| l.key() == label)
                .map(|l| l.value().to_owned())
                .unwrap();
            by_label.insert(value, n);
        }
        by_label
    }

    /// Every metric name sagemeter emits anywhere has a unit and help text.
    #[test]
    fn every_metric_emitted_is_described() {
        #[derive(Default)]
        struct Described(std::sync::Mutex<HashSet<String>>);
        impl metrics::Recorder for Described {
            fn describe_counter(
                &self,
                key: metrics::KeyName,
                _: Option<metrics::Unit>,
                _: metrics::SharedString,
            ) {
                self.0.lock().unwrap().insert(key.as_str().to_owned());
            }
            fn describe_gauge(
                &self,
                key: metrics::KeyName,
                _: Option<metrics::Unit>,
                _: metrics::SharedString,
            ) {
                self.0.lock().unwrap().insert(key.as_str().to_owned());
            }
            fn describe_histogram(
                &self,
                key: metrics::KeyName,
                _: Option<metrics::Unit>,
                _: metrics::SharedString,
            ) {
                self.0.lock().unwrap().insert(key.as_str().to_owned());
            }
            fn register_counter(
                &self,
                _: &metrics::Key,
                _: &metrics::Metadata<'_>,
            ) -> metrics::Counter {
                metrics::Counter::noop()
            }
            fn register_gauge(
                &self,
                _: &metrics::Key,
                _: &metrics::Metadata<'_>,
            ) -> metrics::Gauge {
                metrics::Gauge::noop()
            }
            fn register_histogram(
                &self,
                _: &metrics::Key,
                _: &metrics::Metadata<'_>,
            ) -> metrics::Histogram {
                metrics::Histogram::noop()
            }
        }
        let described = Described::default();
        metrics::with_local_recorder(&described, describe_metrics);
        let described = described.0.into_inner().unwrap();

        // The names in the files that emit metrics, their tests left out.
        let sources = [
            include_str!("metrics.rs"),
            include_str!("../pricing/cache.rs"),
            include_str!("../ledger/writer.rs"),
            include_str!("../ledger/parquet/ledger.rs"),
        ];
        let mut emitted = HashSet::new();
        for source in sources {
            let code = source.split("#[cfg(test)]").next().unwrap();
            for piece in code.split("\"sagemeter_").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                emitted.insert(format!("sagemeter_{name}"));
            }
        }
        assert!(emitted.len() >= 9, "{emitted:?}");
        let missing: Vec<_> = emitted.difference(&described).collect();
        assert!(
            missing.is_empty(),
            "emitted with no description: {missing:?}"
        );
    }

    #[test]
    fn tag_label_keys_are_validated() {
        for (keys, expected) in [
            (vec!["team", "team"], "twice"),
            (
                vec!["endpoint"],
                "metric tag label `endpoint` clashes with sagemeter's own `endpoint` label: \
                 give your tag another key and list that",
            ),
            // Every series carries the client's region: a tag key `region` is refused,
            // saying what to do.
            (
                vec!["team", "region"],
                "metric tag label `region` clashes with sagemeter's own `region` label: \
                 sagemeter's `region` label is the client's region, on every series already; \
                 give your tag another key (e.g. `team_region`) and list that",
            ),
            // A second `le` on a histogram's bucket lines fails the whole scrape.
            (
                vec!["le"],
                "a label Prometheus gives a meaning of its own (`le`)",
            ),
            (vec!["team", "quantile"], "(`quantile`)"),
            (vec!["instance"], "(`instance`)"),
            (vec!["9lives"], "not a valid label name"),
            (vec!["__name__"], "not a valid label name"),
            (vec!["a-b"], "not a valid label name"),
            (vec![""], "not a valid label name"),
        ] {
            let err = CostMetrics::with_tag_labels(keys).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        assert!(CostMetrics::with_tag_labels(["team", "env_2", "_x"]).is_ok());
    }

    /// The base values of a us-east-1 call of `variant` priced from `price_source`.
    fn values(variant: &'static str, price_source: &'static str) -> Values<'static> {
        Values {
            region: "us-east-1",
            variant,
            component: None,
            price_source,
        }
    }

    #[test]
    fn micro_dollar_remainders_carry_so_the_counter_never_drifts() {
        let mut state = State::default();
        let set = state.label_set(&[], "rt", &values("", "snapshot"), &[]);
        // 0.0000004 USD = 0.4 µUSD a call: rounding each call would count 0 forever.
        let per_call: Decimal = "0.0000004".parse().unwrap();
        let counted: u64 = (0..10).map(|_| set.micro_usd(per_call)).sum();
        // 10 × 0.4 = 4 µUSD.
        assert_eq!(counted, 4);
    }

    #[test]
    fn tag_values_past_the_limit_become_other() {
        let mut seen = HashSet::new();
        for i in 0..MAX_TAG_LABEL_VALUES {
            let value = i.to_string();
            assert_eq!(
                tag_label_value(&mut seen, "user", Some(&value), "rt"),
                value
            );
        }
        let past = tag_label_value(&mut seen, "user", Some("new"), "rt");
        assert_eq!(past, OTHER_TAG_VALUE);
        // Known values keep their label.
        assert_eq!(tag_label_value(&mut seen, "user", Some("7"), "rt"), "7");
        assert_eq!(tag_label_value(&mut seen, "user", None, "rt"), "");
    }

    #[test]
    fn a_label_set_is_made_once_and_found_again() {
        let mut state = State::default();
        let keys = ["team".to_owned()];
        state.label_set(&keys, "rt", &values("a", "live"), &["search"]);
        state.label_set(&keys, "rt", &values("a", "live"), &["search"]);
        state.label_set(&keys, "rt", &values("a", "cache"), &["search"]);
        state.label_set(&keys, "rt", &values("a", "live"), &["ads"]);
        state.label_set(&keys, "other", &values("a", "live"), &["search"]);
        // Another region's `rt`: a deployment of its own.
        let eu = Values {
            region: "eu-west-1",
            ..values("a", "live")
        };
        state.label_set(&keys, "rt", &eu, &["search"]);
        state.label_set(&keys, "rt", &eu, &["search"]);
        assert_eq!(state.label_sets["rt"].len(), 4);
        assert_eq!(state.label_sets["other"].len(), 1);
    }

    /// Label sets keep one copy of each label value, whichever endpoints they are
    /// of: 1,000 endpoints of one region, variant and price source keep those three
    /// values once (their endpoints' names are their own).
    #[test]
    fn label_values_are_kept_once_for_every_set_that_has_them() {
        let mut state = State::default();
        for i in 0..1_000 {
            let endpoint = format!("tenant-{i}");
            state.label_set(&[], &endpoint, &values("AllTraffic", "live"), &[]);
        }
        assert_eq!(state.label_sets.len(), 1_000);
        let mut kept: Vec<&str> = state.names.iter().map(|n| &**n).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["AllTraffic", "live", "us-east-1"]);
        let set = &state.label_sets["tenant-7"].sets[0];
        assert_eq!(set.labels[0].value(), "tenant-7");
        assert_eq!(set.values().variant, "AllTraffic");
        // Room for the one set, not for four.
        assert_eq!(state.label_sets["tenant-7"].sets.capacity(), 1);
    }

    /// A receipt handed to the sink by another way than the client's own (which
    /// says whether the endpoint lists the component): each endpoint labels at most
    /// MAX_TAG_LABEL_VALUES components, the rest `_other`.
    #[test]
    fn components_not_known_to_be_listed_are_bounded_per_endpoint() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let sink = CostMetrics::new();
        let receipt = |component: String| {
            let mut receipt = crate::sink::test_support::cost(Some("AllTraffic"), "ok");
            receipt.endpoint = "shared".into();
            receipt.inference_component = Some(component);
            receipt
        };
        metrics::with_local_recorder(&recorder, || {
            // 100 made-up names, then 50 more past the bound.
            for i in 0..MAX_TAG_LABEL_VALUES + 50 {
                sink.record(&receipt(format!("made-up-{i}")));
            }
        });
        let per_component = counters_by_label(
            &recorder,
            "sagemeter_invocations_total",
            "inference_component",
        );
        // 100 series of their own (one call each), and one `_other` of the 50 past them.
        assert_eq!(per_component.len(), MAX_TAG_LABEL_VALUES + 1);
        assert_eq!(per_component["made-up-0"], 1);
        assert_eq!(per_component[OTHER_TAG_VALUE], 50);
    }

    /// `sagemeter_unpriced_total` counts receipts, not calls: an asynchronous
    /// invocation has two, its submission (data in) and its settlement (data out),
    /// and in a region whose data rates are not known both have an unpriced line,
    /// so the invocation counts 2 unpriced against 1 invocation (100 such
    /// invocations: 100 invocations, 200 unpriced). Its help text says so, as the
    /// report's `unpriced_calls` does.
    #[test]
    fn unpriced_counts_receipts_so_an_async_invocation_can_count_twice() {
        use crate::sink::test_support::{async_submission, settlement_of};
        let unpriced_line = |item: &str, gigabytes: &str| {
            serde_json::from_value(serde_json::json!([{
                "item": item, "quantity": gigabytes, "unit": "gigabytes",
                "price": {"status": "unpriced", "reason": "no data rate in ap-east-2"}
            }]))
            .unwrap()
        };
        let mut submission = async_submission();
        submission.cost_usd = Decimal::ZERO;
        // 1 byte in: 1 ÷ 2³⁰ GB.
        submission.lines = unpriced_line("data_in", "0.0000000009313225746154785156");
        let mut settlement = settlement_of(&submission);
        settlement.cost_usd = Decimal::ZERO;
        // 2,048 bytes out: 2,048 ÷ 2³⁰ GB.
        settlement.lines = unpriced_line("data_out", "0.0000019073486328125");
        assert!(!submission.is_async_settlement() && settlement.is_async_settlement());
        assert!(!submission.is_fully_priced() && !settlement.is_fully_priced());

        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            describe_metrics();
            let sink = CostMetrics::new();
            sink.record(&submission);
            sink.record(&settlement);
        });
        let mut counted = std::collections::BTreeMap::new();
        let mut unpriced_help = None;
        for (key, _, help, value) in recorder.snapshotter().snapshot().into_vec() {
            let metrics_util::debugging::DebugValue::Counter(n) = value else {
                continue;
            };
            if key.key().name() == UNPRICED {
                unpriced_help = help;
            }
            *counted.entry(key.key().name().to_owned()).or_insert(0) += n;
        }
        assert_eq!(counted[INVOCATIONS], 1, "{counted:?}");
        assert_eq!(counted[UNPRICED], 2, "{counted:?}");
        let help = unpriced_help.expect("described");
        assert!(
            help.starts_with("Receipts with at least one unpriced cost line")
                && help.contains("two receipts"),
            "{help}"
        );
    }

    /// Tokens count only for a call answered with HTTP 2XX, as in `report` and
    /// `compare`: a failed asynchronous inference's settlement (outcome error)
    /// may carry the counts its output reported (1,200 in, 800 out), but its
    /// token lines charge 0 tokens, and no other view counts them; an answered
    /// settlement's count.
    #[test]
    fn tokens_count_only_for_a_call_answered_2xx() {
        use crate::sink::test_support::settlement_with_tokens;
        let tokens = |outcome: Outcome| {
            let recorder = metrics_util::debugging::DebuggingRecorder::new();
            let receipt = settlement_with_tokens(outcome);
            assert!(receipt.is_async_settlement());
            metrics::with_local_recorder(&recorder, || CostMetrics::new().record(&receipt));
            counters_by_label(&recorder, TOKENS, "direction")
        };
        let failed = tokens(Outcome::Error);
        assert!(failed.values().all(|n| *n == 0), "{failed:?}");
        let answered = tokens(Outcome::Ok);
        assert_eq!(answered.get("input"), Some(&1200));
        assert_eq!(answered.get("output"), Some(&800));
    }

    /// A recorder counting the counters it is asked to register.
    #[derive(Default)]
    struct CountsRegistrations(std::sync::atomic::AtomicUsize);

    impl metrics::Recorder for CountsRegistrations {
        fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: SharedString) {
        }
        fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: SharedString) {}
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: SharedString,
        ) {
        }
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// A handle updated every 0.4 s (never idle for 0.5 s) is registered again
    /// once its registration is more than 1 s old, so that an update that went to
    /// storage the exporter removed meanwhile is not followed by more of them for
    /// as long as the series stays busy; and one idle for more than 0.5 s is
    /// registered again on its next use.
    #[test]
    fn a_handle_is_registered_again_once_registered_a_second_ago_however_busy() {
        let recorder = CountsRegistrations::default();
        let registered = || recorder.0.load(std::sync::atomic::Ordering::Relaxed);
        let mut handle = Handle::<Counter>::default();
        let key = || Key::from_name(INVOCATIONS);
        let mut at = |now_ms: u64| {
            handle.get(&recorder, now_ms, key).increment(1);
            registered()
        };
        // First use at 0 ms: registered.
        assert_eq!(at(0), 1);
        // 400 and 800 ms: updated within 0.5 s, registered 0.4 and 0.8 s ago.
        assert_eq!(at(400), 1);
        assert_eq!(at(800), 1);
        // 1,200 ms: updated 0.4 s ago, but registered 1.2 s ago (> 1 s): again.
        assert_eq!(at(1_200), 2);
        // 1,600 and 2,000 ms: registered 0.4 and 0.8 s ago.
        assert_eq!(at(1_600), 2);
        assert_eq!(at(2_000), 2);
        // 2,400 ms: registered 1.2 s ago: again.
        assert_eq!(at(2_400), 3);
        // 3,000 ms: idle for 0.6 s (> 0.5 s), registered 0.6 s ago: again.
        assert_eq!(at(3_000), 4);
        assert_eq!(at(3_100), 4);
    }

    /// Past the few a scan finds, label sets are found through their index: each
    /// of 1,000 tag values has one set, found again (not made again) on its next call.
    /// Their Vec grows geometrically: a few dozen moves of the sets at most, not one
    /// per new set.
    #[test]
    fn many_label_sets_are_each_made_once_and_found_again() {
        let mut state = State::default();
        let keys = ["user".to_owned()];
        let mut grown = 0;
        for round in 0..2 {
            for i in 0..1_000 {
                let value = i.to_string();
                let before = state.label_sets.get("rt").map(|e| e.sets.capacity());
                let set = state.label_set(&keys, "rt", &values("a", "live"), &[&value]);
                assert!(set.tag_values().eq([value.as_str()]), "round {round}");
                if before.is_some_and(|c| c != state.label_sets["rt"].sets.capacity()) {
                    grown += 1;
                }
            }
            assert_eq!(state.label_sets["rt"].len(), 1_000, "round {round}");
        }
        // Doubling from 1 reaches 1,000 in about 10 steps; one per set would be 999.
        assert!(grown <= 20, "the sets' Vec grew {grown} times");
    }
}
