//! `InvokeEndpoint`, metered: the fluent builder and the `send_metered` extension.

use super::Metered;
use super::call::{AttemptProbe, CallInFlight, CallParts};
use super::meter::{FinishedCall, Meter, Prepared};
use crate::endpoint::{DiscoveryError, EndpointProfile};
use crate::usage::{Operation, Outcome, Usage};
use crate::{Cost, Error, Result};
use aws_sdk_sagemakerruntime::error::SdkError;
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::builders::InvokeEndpointFluentBuilder;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::{
    InvokeEndpointError, InvokeEndpointOutput,
};
use aws_sdk_sagemakerruntime::primitives::Blob;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;
use tracing::field::{Empty, display};

/// Largest request body SageMaker real-time inference accepts (25 MB; serverless
/// endpoints accept 4 MB, which the service itself enforces).
pub const MAX_REQUEST_BYTES: usize = 25_000_000;

/// Ends an SDK `InvokeEndpoint` fluent builder with a metered send.
///
/// ```no_run
/// # async fn run(sdk: aws_sdk_sagemakerruntime::Client, meter: sagemeter::Meter) -> sagemeter::Result<()> {
/// use sagemeter::SendMeteredExt;
/// let response = sdk
///     .invoke_endpoint()
///     .endpoint_name("my-endpoint")
///     .body(aws_sdk_sagemakerruntime::primitives::Blob::new("{}"))
///     .send_metered(&meter) // was: .send()
///     .await?;
/// println!("{}", response.cost());
/// # Ok(()) }
/// ```
pub trait SendMeteredExt {
    /// The SDK operation's output.
    type Output;
    /// Sends the request and returns its output with its cost.
    fn send_metered(
        self,
        meter: &Meter,
    ) -> impl Future<Output = Result<Metered<Self::Output>>> + Send;
}

impl SendMeteredExt for InvokeEndpointFluentBuilder {
    type Output = InvokeEndpointOutput;

    fn send_metered(
        self,
        meter: &Meter,
    ) -> impl Future<Output = Result<Metered<InvokeEndpointOutput>>> + Send {
        invoke_endpoint(meter.clone(), self, BTreeMap::new())
    }
}

/// Measure → (price, in flight) → bill → record → return, for `InvokeEndpoint`.
///
/// An `async move` block rather than an `async fn`: a function's future keeps its
/// arguments and, once running, a moved copy of them (the 824-byte SDK builder
/// twice); a block's future uses what it captured in place.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn's future is 856 bytes larger"
)]
fn invoke_endpoint(
    meter: Meter,
    request: InvokeEndpointFluentBuilder,
    tags: BTreeMap<String, String>,
) -> impl Future<Output = Result<Metered<InvokeEndpointOutput>>> + Send {
    async move {
        let endpoint = required_endpoint(request.get_endpoint_name())?;
        let bytes_in = checked_body_len(request.get_body().as_ref(), Operation::InvokeEndpoint)?;
        let target_variant = request.get_target_variant().clone();
        // Reserve the estimated cost before anything is sent (enforced budgets).
        let reservation = meter.reserve(&endpoint, &tags)?;

        // Measure, while discovery and pricing run alongside the call. Dropped
        // from here on, the call still makes its (cancelled) receipt.
        let span = call_span(&endpoint, Operation::InvokeEndpoint);
        let call = CallInFlight::begin(
            &meter,
            endpoint,
            Operation::InvokeEndpoint,
            bytes_in as u64,
            target_variant,
            tags,
            reservation,
        );
        let send = request
            .customize()
            .interceptor(call.parts().attempts.clone())
            .send();
        // Kept whole, not taken apart: moving the SDK's result out of it would copy it.
        let sent = send_alongside_prepare(
            &meter,
            &call.parts().endpoint,
            call.parts().started_at,
            &span,
            std::pin::pin!(send),
        )
        .await;
        let CallParts {
            endpoint,
            target_variant,
            tags,
            reservation,
            started_at,
            share,
            attempts,
            ..
        } = call.into_parts();
        let prepared = sent.prepared;

        // Only a model error means the model ran (and its instance time was used).
        match sent.result {
            Err(err) if !model_ran(&err) => {
                return Err(invoke_error(endpoint, &prepared.profile, err, None));
            }
            _ => {}
        }

        let mut usage = Usage::new(Operation::InvokeEndpoint, sent.latency);
        usage.bytes_in = bytes_in as u64;
        let mut notes = Vec::new();
        bill_attempts(&mut usage, &attempts, &mut notes);
        let request_id = match &sent.result {
            Ok(output) => {
                let body = output.body().map(Blob::as_ref).unwrap_or_default();
                usage.bytes_out = body.len() as u64;
                usage.variant = output.invoked_production_variant().map(str::to_owned);
                if let Some(tokens) = meter.count_tokens(body) {
                    usage = usage.with_tokens(tokens);
                }
                output.request_id().map(str::to_owned)
            }
            Err(err) => {
                usage.outcome = Outcome::Error;
                err.as_service_error()
                    .and_then(|e| e.meta().request_id())
                    .map(str::to_owned)
            }
        };
        let call = FinishedCall {
            endpoint,
            request_id,
            started_at,
            target_variant,
            usage,
            tags,
            notes,
            shared_hours: Some(share.end(meter.now())),
        };
        let cost = in_span(&span, || meter.finish(call, &prepared));
        record_on_span(&span, &cost);
        meter.settle(reservation, &cost);

        match sent.result {
            Ok(output) => Ok(Metered::new(output, cost)),
            Err(err) => Err(invoke_error(
                cost.endpoint.clone(),
                &prepared.profile,
                err,
                Some(cost),
            )),
        }
    }
}

/// Puts the SDK's attempts on a call's usage: how many there were, and, when
/// there were retries, the time of the attempts that reached the model as the
/// billed latency (throttled and refused attempts, and the back-off between
/// attempts, are not billed).
pub(crate) fn bill_attempts(usage: &mut Usage, attempts: &AttemptProbe, notes: &mut Vec<String>) {
    let count = attempts.count();
    usage.attempts = count.max(1);
    if count > 1 {
        let (billed, billed_time) = attempts.billed();
        if billed > 0 {
            usage.latency = billed_time;
        }
        notes.push(format!(
            "{count} attempts: {billed} reached the model and are billed, {} were not",
            count - billed
        ));
    }
}

/// Whether a failed `InvokeEndpoint` reached the model: a model error is billed
/// (the instance time was used); throttling, validation or a network error is not.
fn model_ran(err: &SdkError<InvokeEndpointError>) -> bool {
    matches!(
        err.as_service_error(),
        Some(InvokeEndpointError::ModelError(_))
    )
}

/// The error of a failed `InvokeEndpoint`, with its receipt when it was billed.
fn invoke_error(
    endpoint: String,
    profile: &std::result::Result<std::sync::Arc<EndpointProfile>, DiscoveryError>,
    source: SdkError<InvokeEndpointError>,
    cost: Option<Cost>,
) -> Error {
    match profile {
        Err(DiscoveryError::NotFound { .. }) => Error::UnknownEndpoint {
            endpoint,
            source: Box::new(source),
        },
        _ => Error::Invoke {
            endpoint,
            source: Box::new(source),
            cost: cost.map(Box::new),
        },
    }
}

/// The endpoint name of a request, which every metered operation requires.
pub(crate) fn required_endpoint(name: &Option<String>) -> Result<String> {
    // `trim().is_empty()`, as a loop that stops at the first character of a name.
    name.clone()
        .filter(|name| !name.chars().all(char::is_whitespace))
        .ok_or_else(|| Error::InvalidRequest("endpoint_name is required".into()))
}

/// The size of an inline request body, refused before sending when it is over
/// SageMaker's limit.
pub(crate) fn checked_body_len(body: Option<&Blob>, operation: Operation) -> Result<usize> {
    let bytes = body.map_or(0, |b| b.as_ref().len());
    if bytes > MAX_REQUEST_BYTES {
        return Err(Error::InvalidRequest(format!(
            "request body is {bytes} bytes; SageMaker accepts at most {MAX_REQUEST_BYTES} \
             bytes for {operation} (use InvokeEndpointAsync for larger payloads)"
        )));
    }
    Ok(bytes)
}

/// A request sent while discovery and pricing ran alongside it.
pub(crate) struct Sent<T> {
    /// What the SDK's `send()` returned.
    pub result: T,
    /// The send's own latency: on a cold cache, pricing may take longer than the call.
    pub latency: Duration,
    /// Profile and rates of the endpoint.
    pub prepared: std::sync::Arc<Prepared>,
    /// When the call started (the meter's clock, for receipts and accrual).
    pub started_at: SystemTime,
    /// When the call started (monotonic, for durations measured later).
    pub started: Instant,
}

/// Measures `send` inside `span`, with the endpoint's profile and rates: at hand
/// (cached) on almost every call, else fetched by [`Meter::prepare_waiting`]
/// alongside it.
///
/// `send` comes pinned where the caller made it: an SDK send future is kilobytes,
/// and every async layer it went through by value would copy it on each move.
pub(crate) async fn send_alongside_prepare<T>(
    meter: &Meter,
    endpoint: &str,
    started_at: SystemTime,
    span: &tracing::Span,
    send: Pin<&mut impl Future<Output = T>>,
) -> Sent<T> {
    if let Some(prepared) = meter.prepare_now(endpoint, started_at) {
        let started = Instant::now();
        // A span nobody records (filtered out) is not entered on every poll.
        let result = if span.is_disabled() {
            send.await
        } else {
            send.instrument(span.clone()).await
        };
        return Sent {
            result,
            latency: started.elapsed(),
            prepared,
            started_at,
            started,
        };
    }
    let started = Instant::now();
    // Boxed: the cold path's state (discovery requests, price fetches, the response
    // while they finish) stays out of every call's future.
    let ((result, latency), prepared) = Box::pin(
        async {
            let timed = async {
                let result = send.await;
                (result, started.elapsed())
            };
            tokio::join!(timed, meter.prepare_waiting(endpoint))
        }
        .instrument(span.clone()),
    )
    .await;
    Sent {
        result,
        latency,
        prepared,
        started_at,
        started,
    }
}

/// The span of one metered call (target `sagemeter`, name `sagemaker.invoke`); the
/// cost line is logged inside it. When the receipt is made, its outcome, cost and
/// tokens are recorded on it, tokens under sagemeter's names (`input_tokens`,
/// `output_tokens`) and the OpenTelemetry GenAI ones (`gen_ai.usage.input_tokens`,
/// `gen_ai.usage.output_tokens`); the cost as `cost_usd` and as
/// `gen_ai.usage.cost.amount` / `gen_ai.usage.cost.currency`, the names proposed
/// for the OpenTelemetry GenAI conventions (not yet stable: they may change).
pub(crate) fn call_span(endpoint: &str, operation: Operation) -> tracing::Span {
    tracing::info_span!(
        target: "sagemeter",
        "sagemaker.invoke",
        endpoint = %endpoint,
        operation = operation.as_str(),
        outcome = Empty,
        cost_usd = Empty,
        input_tokens = Empty,
        output_tokens = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cost.amount = Empty,
        gen_ai.usage.cost.currency = Empty,
    )
}

/// `f` inside `span`, entered only when something records it.
pub(crate) fn in_span<T>(span: &tracing::Span, f: impl FnOnce() -> T) -> T {
    if span.is_disabled() {
        f()
    } else {
        span.in_scope(f)
    }
}

/// Records a receipt's figures on its call's span (see [`call_span`]).
pub(crate) fn record_on_span(span: &tracing::Span, cost: &Cost) {
    if span.is_disabled() {
        return;
    }
    let usage = &cost.usage;
    span.record("outcome", usage.outcome.as_str());
    span.record("cost_usd", display(cost.cost_usd));
    span.record("gen_ai.usage.cost.amount", display(cost.cost_usd));
    span.record("gen_ai.usage.cost.currency", cost.currency.as_ref());
    if let Some(n) = usage.input_tokens {
        span.record("input_tokens", n);
        span.record("gen_ai.usage.input_tokens", n);
    }
    if let Some(n) = usage.output_tokens {
        span.record("output_tokens", n);
        span.record("gen_ai.usage.output_tokens", n);
    }
}

/// A metered `InvokeEndpoint` request. Same setters as the SDK's fluent builder,
/// plus [`tag`](Self::tag); [`send`](Self::send) returns [`Metered`] output.
#[derive(Debug)]
pub struct InvokeEndpoint {
    request: InvokeEndpointFluentBuilder,
    meter: Meter,
    tags: BTreeMap<String, String>,
}

macro_rules! delegate_setters {
    ($($(#[$doc:meta])* $name:ident($($ty:tt)+)),* $(,)?) => {
        $(delegate_setters!(@one $(#[$doc])* $name($($ty)+));)*
    };
    // The conversion runs before the builder is touched: nothing between taking
    // the builder apart and putting it together can unwind, so the compiler
    // updates it in place instead of copying it.
    (@one $(#[$doc:meta])* $name:ident(impl Into<$target:ty>)) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(self, input: impl Into<$target>) -> Self {
            let input: $target = input.into();
            Self {
                request: self.request.$name(input),
                ..self
            }
        }
    };
    (@one $(#[$doc:meta])* $name:ident($ty:ty)) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(self, input: $ty) -> Self {
            Self {
                request: self.request.$name(input),
                ..self
            }
        }
    };
}
pub(crate) use delegate_setters;

impl InvokeEndpoint {
    pub(crate) fn new(request: InvokeEndpointFluentBuilder, meter: Meter) -> Self {
        InvokeEndpoint {
            request,
            meter,
            tags: BTreeMap::new(),
        }
    }

    delegate_setters! {
        /// The endpoint to call.
        endpoint_name(impl Into<String>),
        /// The request body. Never logged or recorded.
        body(Blob),
        /// MIME type of the body.
        content_type(impl Into<String>),
        /// Desired MIME type of the response.
        accept(impl Into<String>),
        /// Opaque information passed to the model container (never logged).
        custom_attributes(impl Into<String>),
        /// Model to invoke on a multi-model endpoint.
        target_model(impl Into<String>),
        /// Production variant to send the request to.
        target_variant(impl Into<String>),
        /// Container to invoke on a multi-container endpoint.
        target_container_hostname(impl Into<String>),
        /// Identifier for the inference, for data capture.
        inference_id(impl Into<String>),
        /// Explanation filter (SageMaker Clarify).
        enable_explanations(impl Into<String>),
        /// Inference component to invoke.
        inference_component_name(impl Into<String>),
        /// Stateful session id.
        session_id(impl Into<String>),
    }

    /// Attributes this call to `key=value` (on the receipt, log line and sinks).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Anything else on the SDK's builder (e.g. `customize()` is not available this
    /// way; use [`SendMeteredExt`] on the SDK builder for that).
    pub fn map_request(
        mut self,
        f: impl FnOnce(InvokeEndpointFluentBuilder) -> InvokeEndpointFluentBuilder,
    ) -> Self {
        self.request = f(self.request);
        self
    }

    /// Sends the request; the output carries its cost.
    pub fn send(self) -> impl Future<Output = Result<Metered<InvokeEndpointOutput>>> + Send {
        // Not an `async fn`: its future would hold this builder a second time.
        invoke_endpoint(self.meter, self.request, self.tags)
    }
}
