//! Counters and histograms through the `metrics` facade.

use crate::billing::Cost;
use crate::meter::Outcome;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Distinct values of one tag label kept per key; later values are reported as
/// [`OTHER_TAG_VALUE`].
pub const MAX_TAG_LABEL_VALUES: usize = 100;

/// The label value standing for every tag value past [`MAX_TAG_LABEL_VALUES`].
pub const OTHER_TAG_VALUE: &str = "_other";

/// Labels every sagemeter metric may carry already; tag keys cannot reuse them.
pub const RESERVED_LABELS: [&str; 6] = [
    "endpoint",
    "variant",
    "price_source",
    "outcome",
    "direction",
    "sink",
];

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
        "Metered calls that failed (outcome=error) or were cancelled (outcome=cancelled)."
    );
    describe_counter!(
        "sagemeter_unpriced_total",
        Unit::Count,
        "Calls with at least one unpriced cost line (their cost is a lower bound)."
    );
    describe_counter!(
        "sagemeter_cost_micro_usd_total",
        "Cost of the calls in millionths of a USD (exact total, truncated to the micro-dollar)."
    );
    describe_counter!(
        "sagemeter_tokens_total",
        Unit::Count,
        "Tokens reported by responses, by direction (input, output)."
    );
    describe_histogram!(
        "sagemeter_cost_usd",
        "Cost of one call in USD (f64: for distributions; totals are on the counter)."
    );
    describe_histogram!(
        "sagemeter_latency_seconds",
        Unit::Seconds,
        "Client-side wall time of one call."
    );
    describe_counter!(
        "sagemeter_sink_dropped_total",
        Unit::Count,
        "Receipts a sink did not write, by sink and reason (full, closed, io)."
    );
}

/// The `metrics` side of every receipt (a no-op unless the application installs a
/// recorder, e.g. `metrics-exporter-prometheus`).
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `sagemeter_invocations_total` | counter | base |
/// | `sagemeter_errors_total` | counter | base + `outcome` (`error`, `cancelled`) |
/// | `sagemeter_unpriced_total` | counter | base |
/// | `sagemeter_cost_micro_usd_total` | counter | base |
/// | `sagemeter_tokens_total` | counter | base + `direction` (`input`, `output`) |
/// | `sagemeter_cost_usd` | histogram | base |
/// | `sagemeter_latency_seconds` | histogram | base |
///
/// Base labels: `endpoint`, `variant` (empty when unknown), `price_source` (the
/// least fresh source on the receipt, `unpriced` when nothing was priced), then one
/// label per configured tag key ([`with_tag_labels`](Self::with_tag_labels)).
///
/// The facade's counters are integers, so cost is counted in micro-dollars. The
/// sub-micro-dollar remainder of each call is carried to the next call with the
/// same labels: the counter is always the exact sum of the receipts truncated to
/// the micro-dollar (never drifting with the number of calls, as per-call rounding
/// would). The exact figures are on the receipts and in the ledger.
#[derive(Debug, Default)]
pub struct CostMetrics {
    tag_keys: Vec<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Tag values seen per tag key (at most MAX_TAG_LABEL_VALUES each).
    tag_values: HashMap<String, HashSet<String>>,
    /// Sub-micro-dollar remainders per label set.
    remainders: HashMap<Vec<String>, Decimal>,
}

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
    /// and must not be one of [`RESERVED_LABELS`].
    pub fn with_tag_labels<I, S>(keys: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut tag_keys: Vec<String> = Vec::new();
        for key in keys {
            let key = key.into();
            let valid = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !key.starts_with("__");
            if !valid {
                return Err(format!(
                    "metric tag label `{key}` is not a valid label name: use letters, \
                     digits and `_`, not starting with a digit or `__`"
                ));
            }
            if RESERVED_LABELS.contains(&key.as_str()) {
                return Err(format!(
                    "metric tag label `{key}` clashes with sagemeter's own `{key}` label: \
                     tag the calls with another key"
                ));
            }
            if tag_keys.contains(&key) {
                return Err(format!("metric tag label `{key}` is listed twice"));
            }
            tag_keys.push(key);
        }
        Ok(CostMetrics {
            tag_keys,
            state: Mutex::default(),
        })
    }

    /// The tag keys that become labels.
    pub fn tag_labels(&self) -> &[String] {
        &self.tag_keys
    }

    /// Emits the metrics of one receipt.
    pub fn emit(&self, cost: &Cost) {
        let source = cost
            .price_source()
            .map_or("unpriced", |s| s.as_str())
            .to_owned();
        let mut labels: Vec<(String, String)> = Vec::with_capacity(3 + self.tag_keys.len());
        labels.push(("endpoint".into(), cost.endpoint.clone()));
        labels.push(("variant".into(), cost.variant.clone().unwrap_or_default()));
        labels.push(("price_source".into(), source));

        let micro_usd = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            for key in &self.tag_keys {
                let value = state.tag_label_value(key, cost.tags.get(key), &cost.endpoint);
                labels.push((key.clone(), value));
            }
            state.micro_usd(&labels, cost.cost_usd)
        };
        let labels: Vec<metrics::Label> = labels
            .into_iter()
            .map(|(k, v)| metrics::Label::new(k, v))
            .collect();

        metrics::counter!("sagemeter_invocations_total", labels.iter()).increment(1);
        if cost.usage.outcome != Outcome::Ok {
            let with_outcome = with_label(&labels, "outcome", cost.usage.outcome.as_str());
            metrics::counter!("sagemeter_errors_total", with_outcome).increment(1);
        }
        if !cost.is_fully_priced() {
            metrics::counter!("sagemeter_unpriced_total", labels.iter()).increment(1);
        }
        metrics::counter!("sagemeter_cost_micro_usd_total", labels.iter()).increment(micro_usd);
        for (direction, tokens) in [
            ("input", cost.usage.input_tokens),
            ("output", cost.usage.output_tokens),
        ] {
            if let Some(tokens) = tokens {
                let with_direction = with_label(&labels, "direction", direction);
                metrics::counter!("sagemeter_tokens_total", with_direction).increment(tokens);
            }
        }
        metrics::histogram!("sagemeter_cost_usd", labels.iter())
            .record(cost.cost_usd.to_f64().unwrap_or(0.0));
        metrics::histogram!("sagemeter_latency_seconds", labels.iter())
            .record(cost.usage.latency.as_secs_f64());
    }
}

fn with_label(
    labels: &[metrics::Label],
    key: &'static str,
    value: &'static str,
) -> Vec<metrics::Label> {
    let mut all = labels.to_vec();
    all.push(metrics::Label::new(key, value));
    all
}

impl State {
    fn tag_label_value(&mut self, key: &str, value: Option<&String>, endpoint: &str) -> String {
        let Some(value) = value else {
            return String::new();
        };
        let seen = self.tag_values.entry(key.to_owned()).or_default();
        if seen.contains(value) {
            return value.clone();
        }
        if seen.len() < MAX_TAG_LABEL_VALUES {
            seen.insert(value.clone());
            return value.clone();
        }
        if seen.insert(OTHER_TAG_VALUE.to_owned()) {
            tracing::warn!(target: "sagemeter", tag = key, limit = MAX_TAG_LABEL_VALUES,
                endpoint, "metric tag label has too many distinct values: further values \
                are labelled `_other` (receipts and ledgers keep the real value)");
        }
        OTHER_TAG_VALUE.to_owned()
    }

    /// Whole micro-dollars to add for this call, carrying the remainder.
    fn micro_usd(&mut self, labels: &[(String, String)], cost_usd: Decimal) -> u64 {
        if cost_usd <= Decimal::ZERO {
            return 0;
        }
        let key: Vec<String> = labels.iter().map(|(_, v)| v.clone()).collect();
        let remainder = self.remainders.entry(key).or_default();
        let exact = cost_usd * Decimal::from(1_000_000) + *remainder;
        let whole = exact.trunc();
        *remainder = exact - whole;
        whole.to_u64().unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_label_keys_are_validated() {
        for (keys, expected) in [
            (vec!["team", "team"], "twice"),
            (vec!["endpoint"], "clashes"),
            (vec!["9lives"], "not a valid label name"),
            (vec!["__name__"], "not a valid label name"),
            (vec!["a-b"], "not a valid label name"),
            (vec![""], "not a valid label name"),
        ] {
            let err = CostMetrics::with_tag_labels(keys).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        assert!(CostMetrics::with_tag_labels(["team", "env_2", "_x"]).is_ok());
    }

    #[test]
    fn micro_dollar_remainders_carry_so_the_counter_never_drifts() {
        let mut state = State::default();
        let labels = vec![("endpoint".to_owned(), "rt".to_owned())];
        // 0.0000004 USD = 0.4 µUSD a call: rounding each call would count 0 forever.
        let per_call: Decimal = "0.0000004".parse().unwrap();
        let counted: u64 = (0..10).map(|_| state.micro_usd(&labels, per_call)).sum();
        // 10 × 0.4 = 4 µUSD.
        assert_eq!(counted, 4);
    }

    #[test]
    fn tag_values_past_the_limit_become_other() {
        let mut state = State::default();
        for i in 0..MAX_TAG_LABEL_VALUES {
            assert_eq!(
                state.tag_label_value("user", Some(&i.to_string()), "rt"),
                i.to_string()
            );
        }
        let past = state.tag_label_value("user", Some(&"new".to_owned()), "rt");
        assert_eq!(past, OTHER_TAG_VALUE);
        // Known values keep their label.
        assert_eq!(
            state.tag_label_value("user", Some(&"7".to_owned()), "rt"),
            "7"
        );
        assert_eq!(state.tag_label_value("user", None, "rt"), "");
    }
}
