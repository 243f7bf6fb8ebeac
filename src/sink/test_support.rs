//! What the sinks' tests share: an in-memory writer and the receipts they record.

use crate::billing::Cost;
use std::sync::{Arc, Mutex};

/// An in-memory writer shared with a sink or a `tracing` subscriber, read back
/// as JSON lines.
#[derive(Clone, Default)]
pub(crate) struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    /// The JSON documents written so far, one per line.
    pub(crate) fn json_lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The receipt of an `InvokeEndpoint` call `req-1` to `rt` in us-east-1 at
/// 2026-11-02T10:00:00.250Z: 250.5 ms, 1 byte in and 1 out, 0.000015972222 USD.
pub(crate) fn cost(variant: Option<&str>, outcome: &str) -> Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": "req-1", "at": "2026-11-02T10:00:00.250Z", "endpoint": "rt",
        "region": "us-east-1", "variant": variant, "allocation": "busy_time",
        "usage": {"operation": "invoke_endpoint", "latency_us": 250500, "bytes_in": 1,
                  "bytes_out": 1, "outcome": outcome},
        "lines": [], "cost_usd": "0.000015972222", "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    }))
    .unwrap()
}

/// [`cost`] of variant `AllTraffic` as the submission (data in, nothing out) of
/// an `InvokeEndpointAsync` call.
pub(crate) fn async_submission() -> Cost {
    let mut submission = cost(Some("AllTraffic"), "ok");
    submission.usage.operation = crate::usage::Operation::InvokeEndpointAsync;
    submission.usage.bytes_out = 0;
    submission
}

/// The settlement of the async invocation whose submission is `submission`: the
/// same call, 2,048 bytes out, 0.000042 USD, and the client's settlement note.
pub(crate) fn settlement_of(submission: &Cost) -> Cost {
    let mut settlement = submission.clone();
    settlement.usage.bytes_out = 2048;
    settlement.cost_usd = "0.000042".parse().unwrap();
    settlement.notes = vec![format!(
        "{} submitted at 2026-11-02T10:00:00.250+00:00",
        crate::billing::SETTLEMENT_NOTE
    )];
    settlement
}

/// The [`settlement_of`] an [`async_submission`] carrying the token counts its
/// output reported (1,200 in, 800 out), with `outcome`.
pub(crate) fn settlement_with_tokens(outcome: crate::usage::Outcome) -> Cost {
    let mut settlement = settlement_of(&async_submission());
    settlement.usage = settlement
        .usage
        .with_tokens(crate::usage::TokenUsage::new(1200, 800))
        .with_outcome(outcome);
    settlement
}
