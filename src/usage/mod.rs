//! Measure: what one call used.
//!
//! A [`Usage`] is everything sagemeter measured about one invocation: its
//! latency (client-side, from the request going out, so an upper bound of what
//! SageMaker bills), time to first
//! byte for streams, bytes in and out, the variant that served it, tokens when the
//! response says, and how the call ended. It never holds the payload.

mod tokens;

pub use tokens::{
    FnTokenCounter, MAX_STREAM_EVENT_BYTES, OpenAiUsage, StreamTokens, TgiDetails, TokenCounter,
    TokenUsage,
};
pub(crate) use tokens::{detect_tokens, is_event_stream, is_plain_text};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The SageMaker Runtime operation that was metered.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// `InvokeEndpoint`.
    #[serde(alias = "invoke_endpoint")]
    InvokeEndpoint,
    /// `InvokeEndpointWithResponseStream`.
    #[serde(alias = "invoke_endpoint_with_response_stream")]
    InvokeEndpointWithResponseStream,
    /// `InvokeEndpointAsync`.
    #[serde(alias = "invoke_endpoint_async")]
    InvokeEndpointAsync,
}

impl Operation {
    /// The API name of the operation.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::InvokeEndpoint => "InvokeEndpoint",
            Operation::InvokeEndpointWithResponseStream => "InvokeEndpointWithResponseStream",
            Operation::InvokeEndpointAsync => "InvokeEndpointAsync",
        }
    }

    /// Whether a request of this operation that failed can have reached the
    /// model, and is billed as if it ran: not an asynchronous submission, which
    /// only queues its input. Such a submission is billed for each of its
    /// attempts SageMaker accepted (answered 2XX, even cut off), its data in and
    /// one inference each, whether the call then succeeded or failed; one with no
    /// 2XX answer queued nothing seen (see `client::call::bill_submissions`).
    pub(crate) const fn failure_can_reach_model(self) -> bool {
        !matches!(self, Operation::InvokeEndpointAsync)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a call ended.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call succeeded.
    Ok,
    /// The call failed (the model or the service returned an error).
    Error,
    /// The caller dropped the call (e.g. a response stream) before it ended, or
    /// the SDK timed it out, after its request was sent. Billed for the attempts
    /// that reached the model, each until its end: its answer, its timeout, or,
    /// for the one in flight, the drop (not the SDK's back-off after an attempt
    /// until the drop). A lower bound, as the model may have run on after its
    /// caller went away.
    Cancelled,
}

impl Outcome {
    /// Lower-case name, as written in logs and ledgers.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// What one call used. Sizes are bytes, durations are [`Duration`]s (serialised
/// as whole microseconds).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The metered operation.
    pub operation: Operation,
    /// The billed time: from the request going out to the end of the response,
    /// measured by the client (an upper bound of the duration SageMaker bills),
    /// for each of the SDK's attempts that reached the model, together. Not the
    /// time before the request went out (resolving credentials, a retry rate
    /// limiter's wait), nor throttled or refused attempts, nor the back-off
    /// between attempts: so not the caller's wall time for the call. For a
    /// response stream, to its `[DONE]` part (an SSE `data: [DONE]`) when it has
    /// one, else its last part; to its failure or drop when it did not end (one
    /// dropped after its `[DONE]` part is billed to that part). For a call
    /// dropped or timed out in flight, to then.
    #[serde(rename = "latency_us", with = "micros")]
    pub latency: Duration,
    /// Time to the first byte (or first part) of the response, for streams, from
    /// when the request of the attempt that opened the stream went out.
    #[serde(
        rename = "time_to_first_byte_us",
        with = "opt_micros",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub time_to_first_byte: Option<Duration>,
    /// Bytes billed as data in: the request body once for each attempt that
    /// reached the model (SageMaker received, and bills, every such request),
    /// so a multiple of the body's size when the SDK retried after one did;
    /// an async submission's input once for each submission SageMaker
    /// accepted. The receipt's notes say when it is more than one body.
    pub bytes_in: u64,
    /// Bytes billed as data out: the response body (a stream's payloads
    /// received), plus the `Content-Length` of each attempt answered 2XX whose
    /// body was cut off (SageMaker sent it; a note says so).
    pub bytes_out: u64,
    /// Number of payload parts received (streams only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u64>,
    /// The production variant that served the call, as SageMaker reported it
    /// (or as sagemeter inferred it; see the receipt's notes).
    pub variant: Option<String>,
    /// Input (prompt) tokens, when the response reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens, when the response reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// How the call ended.
    pub outcome: Outcome,
    /// Attempts the SDK made at the call (its retries included). Throttled or
    /// refused attempts are not billed: `latency` is the time of the attempts
    /// that reached the model, one or several. Written only when not 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub attempts: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Usage {
    /// A usage record for a call of `operation` that took `latency`.
    pub fn new(operation: Operation, latency: Duration) -> Self {
        Usage {
            operation,
            latency,
            time_to_first_byte: None,
            bytes_in: 0,
            bytes_out: 0,
            parts: None,
            variant: None,
            input_tokens: None,
            output_tokens: None,
            outcome: Outcome::Ok,
            attempts: 1,
        }
    }

    /// Sets bytes in and out.
    pub fn with_bytes(mut self, bytes_in: u64, bytes_out: u64) -> Self {
        self.bytes_in = bytes_in;
        self.bytes_out = bytes_out;
        self
    }

    /// Sets the serving variant.
    pub fn with_variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// Sets the token counts.
    pub fn with_tokens(mut self, tokens: TokenUsage) -> Self {
        self.input_tokens = tokens.input;
        self.output_tokens = tokens.output;
        self
    }

    /// Sets the outcome.
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Leaves out a token count beyond any model's ([`MAX_TOKENS_PER_CALL`]), with
    /// a note saying so: a broken or hostile container's `u64::MAX` would price
    /// per-token plans at any sum and make the ledger's sums overflow. Returns each
    /// direction's note when its count was left out: why that per-token line has
    /// no count (the other's keeps its own reason).
    pub(crate) fn drop_implausible_tokens(&mut self, notes: &mut Vec<String>) -> TokensUnseen {
        let mut dropped = TokensUnseen::default();
        for (count, reason, what) in [
            (&mut self.input_tokens, &mut dropped.input, "input"),
            (&mut self.output_tokens, &mut dropped.output, "output"),
        ] {
            if let Some(n) = count.take_if(|n| *n > MAX_TOKENS_PER_CALL) {
                let note = format!(
                    "the response reported {n} {what} tokens, more than any model reads or \
                     writes in a call (at most 10^9 are counted): not counted"
                );
                notes.push(note.clone());
                *reason = Some(note);
            }
        }
        dropped
    }
}

/// Why a call's token counts were not seen or not counted, each direction on its
/// own (`None`: that per-token line, if unpriced, keeps the reason billing gave
/// it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TokensUnseen {
    /// The input tokens' reason.
    pub(crate) input: Option<String>,
    /// The output tokens' reason.
    pub(crate) output: Option<String>,
}

impl TokensUnseen {
    /// The same reason for both directions: the response was not read.
    pub(crate) fn both(reason: String) -> Self {
        TokensUnseen {
            input: Some(reason.clone()),
            output: Some(reason),
        }
    }
}

/// The most tokens counted each way for one call: far beyond any model's context
/// (millions), and what `compare` takes per call.
pub(crate) const MAX_TOKENS_PER_CALL: u64 = 1_000_000_000;

mod micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

mod opt_micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::micros::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_micros))
    }
}
