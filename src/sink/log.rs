//! [`CostLogSink`]: the cost-per-request `tracing` line.

use super::CostSink;
use crate::billing::Cost;

/// The cost-per-request log line: one INFO event, target `sagemeter`, per call.
///
/// The builder installs it first in every client's sinks; it needs no setup
/// beyond a `tracing` subscriber in the application (without one, the event is
/// not even built). Fields: `call_id` (the receipt's, to find it in a ledger),
/// `endpoint`, `region` (the client's, when known: two clients of one process can call
/// endpoints of the same name in two regions), `variant`, `inference_component` and
/// `target_model` (when the call named one), `operation`, `outcome`,
/// `invocations` (1, but 0 on the settlement of an asynchronous invocation,
/// [`Cost::is_async_settlement`]: one `InvokeEndpointAsync` call has two receipts
/// and two lines, its submission's and its settlement's, with the same `call_id`
/// and `operation`, so that a sum of `invocations` counts the call once, as EMF's
/// `Invocations` and `sagemeter_invocations_total` do), `latency_ms`, `bytes_in`, `bytes_out`, `input_tokens`/`output_tokens` (when
/// known, of a call answered with HTTP 2XX only, as `sagemeter_tokens_total` and
/// `report` count them; also as `gen_ai.usage.input_tokens`/`gen_ai.usage.output_tokens`),
/// `cost_usd`, `running_usd`, `running_fleet_usd` (with a fleet), `price_source`
/// (`unpriced` when nothing could be
/// priced), `fully_priced`, and `tags` when the call has any (`team=search,tenant=acme`,
/// in key order; a `,`, `=` or `\` inside one is escaped with a `\`). Control
/// characters in the endpoint name, the region or a tag are written as escapes (`\n`): no
/// name makes a line of its own. Never the payload.
///
/// ```text
/// INFO sagemeter: sagemaker call cost call_id=8c5e0a6f-… endpoint=chat-prod region=us-east-1 variant="AllTraffic"
///   operation="InvokeEndpoint" outcome="ok" invocations=1 latency_ms=250.0 bytes_in=23 bytes_out=412
///   cost_usd=0.000015972222 running_usd=0.000015972222 price_source="live" fully_priced=true
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CostLogSink;

impl CostSink for CostLogSink {
    fn record(&self, cost: &Cost) {
        let u = &cost.usage;
        // Those of a call answered with HTTP 2XX only, as every view counts them.
        let (input_tokens, output_tokens) = crate::billing::counted_tokens(u);
        // Field values are only computed when the event is enabled.
        tracing::info!(
            target: "sagemeter",
            call_id = %crate::redact::printable(&cost.call_id),
            endpoint = %crate::redact::printable(&cost.endpoint),
            region = cost.region.as_deref().map(|r| tracing::field::display(crate::redact::printable(r))),
            variant = cost.variant.as_deref().unwrap_or(""),
            inference_component = cost.inference_component.as_deref(),
            target_model = cost.target_model.as_deref(),
            operation = u.operation.as_str(),
            outcome = u.outcome.as_str(),
            invocations = u8::from(!cost.is_async_settlement()),
            latency_ms = millis(u.latency),
            bytes_in = u.bytes_in,
            bytes_out = u.bytes_out,
            input_tokens,
            output_tokens,
            gen_ai.usage.input_tokens = input_tokens,
            gen_ai.usage.output_tokens = output_tokens,
            cost_usd = %cost.cost_usd,
            running_usd = %cost.running_client_usd,
            running_fleet_usd = cost.running_fleet_usd.map(tracing::field::display),
            price_source = cost.price_source().map_or("unpriced", |s| s.as_str()),
            fully_priced = cost.is_fully_priced(),
            tags = (!cost.tags.is_empty()).then_some(Tags(&cost.tags)).map(tracing::field::display),
            "sagemaker call cost"
        );
    }
}

/// A call's tags as one log field: `key=value` pairs in key order, `,`-separated.
/// A `,`, `=` or `\` inside a key or value is escaped with a `\`, and control
/// characters as Rust escapes (`\n`), so that the field reads back as the tags
/// it was made of and no tag can start a log line of its own.
struct Tags<'a>(&'a std::collections::BTreeMap<String, String>);

impl std::fmt::Display for Tags<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn part(f: &mut std::fmt::Formatter<'_>, text: &str) -> std::fmt::Result {
            for c in text.chars() {
                if matches!(c, ',' | '=' | '\\') {
                    write!(f, "\\{c}")?;
                } else {
                    f.write_str(&crate::redact::printable(c.encode_utf8(&mut [0; 4])))?;
                }
            }
            Ok(())
        }
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            part(f, key)?;
            f.write_str("=")?;
            part(f, value)?;
        }
        Ok(())
    }
}

/// A duration in milliseconds for logs and metrics: receipts keep whole
/// microseconds, and `µs / 1000` is the double nearest to that figure (4.943, where
/// `as_secs_f64() * 1000.0` gives 4.9430000000000005).
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::{CostLogSink, Tags, millis};
    use crate::billing::Cost;
    use crate::sink::CostSink;
    use crate::sink::test_support::{
        Buffer, async_submission, settlement_of, settlement_with_tokens,
    };
    use std::time::Duration;

    /// The `fields` of the cost lines `CostLogSink` logs for `costs`.
    fn logged(costs: &[&Cost]) -> Vec<serde_json::Value> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for cost in costs {
                CostLogSink.record(cost);
            }
        });
        buffer
            .json_lines()
            .into_iter()
            .map(|l| l["fields"].clone())
            .collect()
    }

    #[test]
    fn an_async_invocations_settlement_line_counts_no_invocation_and_its_submission_one() {
        // The submission (data in) of an InvokeEndpointAsync call, then its
        // settlement (data out, the client's note): same call id, operation and
        // outcome.
        let submission = async_submission();
        let settlement = settlement_of(&submission);
        let mut sync = submission.clone();
        sync.usage.operation = crate::usage::Operation::InvokeEndpoint;
        sync.usage.bytes_out = 2048;
        let lines = logged(&[&submission, &settlement, &sync]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        for line in &lines[..2] {
            assert_eq!(line["call_id"], "req-1");
            assert_eq!(line["operation"], "InvokeEndpointAsync");
            assert_eq!(line["outcome"], "ok");
        }
        // Σ invocations over the two lines: the one call, once.
        assert_eq!(lines[0]["invocations"], 1, "{:?}", lines[0]);
        assert_eq!(lines[1]["invocations"], 0, "{:?}", lines[1]);
        assert_eq!(lines[1]["cost_usd"], "0.000042");
        // A call with one receipt is one invocation.
        assert_eq!(lines[2]["invocations"], 1, "{:?}", lines[2]);
    }

    /// The cost line's tokens are those of a call answered with HTTP 2XX, as
    /// `sagemeter_tokens_total` and `report` count them: a failed asynchronous
    /// inference's settlement carrying the counts its output reported (1,200
    /// in, 800 out) logs none, under either name; an answered one logs them.
    #[test]
    fn the_cost_line_logs_tokens_only_of_a_call_answered_2xx() {
        use crate::usage::Outcome;
        let lines = logged(&[
            &settlement_with_tokens(Outcome::Error),
            &settlement_with_tokens(Outcome::Ok),
        ]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let names = [
            "input_tokens",
            "output_tokens",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
        ];
        for name in names {
            assert!(lines[0].get(name).is_none(), "{name}: {:?}", lines[0]);
        }
        for (name, n) in names.into_iter().zip([1200, 800, 1200, 800]) {
            assert_eq!(lines[1][name], n, "{name}: {:?}", lines[1]);
        }
    }

    #[test]
    fn tags_read_back_as_the_tags_they_were_and_never_break_the_line() {
        let tags = |pairs: &[(&str, &str)]| {
            let map = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Tags(&map).to_string()
        };
        assert_eq!(tags(&[("team", "a"), ("env", "prod")]), "env=prod,team=a");
        // One tag whose value holds a separator is not read as two.
        assert_eq!(
            tags(&[("team", "a,env=prod"), ("env", "dev")]),
            r"env=dev,team=a\,env\=prod"
        );
        // A backslash is escaped too, so that `\n` typed and a line break differ.
        assert_eq!(tags(&[("k", r"a\nb")]), r"k=a\\nb");
        assert_eq!(tags(&[("k", "a\nERROR forged")]), r"k=a\nERROR forged");
        assert!(!tags(&[("k\r\n", "\u{202e}x")]).contains(['\n', '\r', '\u{202e}']));
    }

    #[test]
    fn latencies_are_logged_as_the_milliseconds_receipts_state() {
        for (micros, text) in [
            (4_943, "4.943"),
            (1, "0.001"),
            (250_000, "250"),
            (5_291, "5.291"),
        ] {
            assert_eq!(millis(Duration::from_micros(micros)).to_string(), text);
        }
    }
}
