//! `InvokeEndpointWithResponseStream`, metered.
//!
//! The stream is measured as it is read (time to first part, parts, bytes, tokens)
//! and its receipt is made exactly once, at the first of: the end of the stream, an
//! error in it, or the caller dropping it. Compute is billed from sending the request
//! to its `[DONE]` part (see below), or without one its last part, for a stream that
//! ended or was dropped after its `[DONE]` part (a complete answer, outcome `ok`: a
//! caller that keeps it after its last part is not the model's time), else to the
//! error or the drop. Parts are timed when `recv()` hands them over: a caller that reads
//! slowly is billed for the time it took, as sagemeter sees no part before it is read.
//!
//! A stream leaves its endpoint's sharing clock (and gives back its slot of
//! provisioned concurrency) when it ends, fails or is dropped, or earlier, when
//! `recv()` hands over the part that carries its `[DONE]` event (an SSE
//! `data: [DONE]` line in a stream of server-sent events, see
//! [`StreamTokens::done`]): the model has sent all, and a caller that stops
//! reading there and keeps the stream shares the endpoint with no one. A stream
//! with no such marker is in flight until its end is read or it is dropped.
//!
//! The stream is handed over as soon as SageMaker answers, even on the first call
//! to an endpoint whose profile and rates are still being found: its end then
//! waits for them (`recv()` returns the end once they are), and that wait is not
//! billed.

use super::call::{Call, CallRequest, MeteredOperation, Receipt};
use super::invoke::{
    config_override_setter, delegate_setters, refused_with_override, sent_with_override,
};
use super::meter::{Meter, Phase, Targets};
use crate::config_error::ConfigError;
use crate::usage::{Operation, Outcome, StreamTokens, Usage};
use crate::{Cost, Error, Result};
use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::builders::InvokeEndpointWithResponseStreamFluentBuilder;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::{
    InvokeEndpointWithResponseStreamError, InvokeEndpointWithResponseStreamOutput,
};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::primitives::event_stream::EventReceiver;
use aws_sdk_sagemakerruntime::types::ResponseStream;
use aws_sdk_sagemakerruntime::types::error::ResponseStreamError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::event_stream::RawMessage;
use std::collections::BTreeMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Instant, SystemTime};
use tokio::sync::watch;

/// What `recv()` returns: the SDK's own item type, unchanged. Its error's `Debug`
/// quotes a `ModelStreamError`'s message (the model's output): `?` in a function
/// returning [`sagemeter::Result`](crate::Result) makes it
/// [`Error::ResponseStream`](crate::Error::ResponseStream), safe to log.
pub type StreamEvent = Result<Option<ResponseStream>, SdkError<ResponseStreamError, RawMessage>>;

/// How many parts a dropped stream may still hand over, already received, before it
/// counts as cancelled (see [`MeteredEventReceiver`]).
const DRAIN_ON_DROP: usize = 64;

/// A metered `InvokeEndpointWithResponseStream` request. Same setters as the SDK's
/// fluent builder, plus [`tag`](Self::tag); [`send`](Self::send) returns a
/// [`MeteredResponseStream`].
#[derive(Clone)]
pub struct InvokeEndpointWithResponseStream {
    request: InvokeEndpointWithResponseStreamFluentBuilder,
    meter: Meter,
    tags: BTreeMap<String, String>,
    /// Why its client refuses every call (an SDK client of another region).
    refused: Option<Arc<ConfigError>>,
    /// This request's own SDK settings ([`config_override`](Self::config_override));
    /// boxed, as it is rare: the builder stays small.
    config_override: Option<Box<aws_sdk_sagemakerruntime::config::Builder>>,
}

// Hand-written: the SDK builder's Debug prints its client's configuration
// (credentials' key id included); the body and custom attributes are never shown.
impl fmt::Debug for InvokeEndpointWithResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        f.debug_struct("InvokeEndpointWithResponseStream")
            .field("endpoint_name", r.get_endpoint_name())
            .field("target_variant", r.get_target_variant())
            .field("inference_component_name", r.get_inference_component_name())
            .field("tags", &self.tags)
            .field("config_override", &self.config_override.is_some())
            .finish_non_exhaustive()
    }
}

impl InvokeEndpointWithResponseStream {
    pub(crate) fn new(
        request: InvokeEndpointWithResponseStreamFluentBuilder,
        meter: Meter,
        refused: Option<Arc<ConfigError>>,
    ) -> Self {
        InvokeEndpointWithResponseStream {
            request,
            meter,
            tags: BTreeMap::new(),
            refused,
            config_override: None,
        }
    }

    delegate_setters! {
        /// The endpoint to call.
        endpoint_name / set_endpoint_name / get_endpoint_name(impl Into<String>),
        /// The request body. Never logged or recorded.
        body / set_body / get_body(Blob),
        /// MIME type of the body.
        content_type / set_content_type / get_content_type(impl Into<String>),
        /// Desired MIME type of the response.
        accept / set_accept / get_accept(impl Into<String>),
        /// Opaque information passed to the model container (never logged).
        custom_attributes / set_custom_attributes / get_custom_attributes(impl Into<String>),
        /// Production variant to send the request to.
        target_variant / set_target_variant / get_target_variant(impl Into<String>),
        /// Container to invoke on a multi-container endpoint.
        target_container_hostname / set_target_container_hostname / get_target_container_hostname(impl Into<String>),
        /// Identifier for the inference, for data capture.
        inference_id / set_inference_id / get_inference_id(impl Into<String>),
        /// Inference component to invoke.
        inference_component_name / set_inference_component_name / get_inference_component_name(impl Into<String>),
        /// Stateful session id.
        session_id / set_session_id / get_session_id(impl Into<String>),
        /// Routing hint for prefix-aware routing (endpoints whose `RoutingStrategy`
        /// is `PREFIX_AWARE`).
        prefix_aware_id / set_prefix_aware_id / get_prefix_aware_id(impl Into<String>),
    }

    /// Attributes this call to `key=value` (on the receipt, log line and sinks).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    config_override_setter!("InvokeEndpointWithResponseStream::config_override");

    /// Anything else on the SDK's builder (of its `customize()`, see
    /// [`config_override`](Self::config_override)).
    pub fn map_request(
        mut self,
        f: impl FnOnce(
            InvokeEndpointWithResponseStreamFluentBuilder,
        ) -> InvokeEndpointWithResponseStreamFluentBuilder,
    ) -> Self {
        self.request = f(self.request);
        self
    }

    /// Sends the request. The stream is metered from here until it ends, fails or
    /// is dropped.
    #[inline(always)] // built where it is awaited, not copied there (see `invoke.rs`)
    pub fn send(self) -> impl Future<Output = Result<MeteredResponseStream>> + Send {
        // Not an `async fn`: its future would hold this builder a second time.
        let refused = refused_with_override(
            &self.meter,
            self.refused,
            self.config_override.as_deref(),
            "InvokeEndpointWithResponseStream::config_override",
        );
        invoke_endpoint_with_response_stream(
            self.meter,
            self.request,
            self.tags,
            refused,
            self.config_override,
        )
    }
}

/// Measure the initial response → hand the stream over at once (the endpoint's
/// profile and rates, when not at hand, are found meanwhile); the rest of the flow
/// runs when the stream ends.
/// `InvokeEndpointWithResponseStream` through the call pipeline ([`Call`]): what it
/// adds is a receipt made when the stream ends, fails or is dropped.
#[inline(always)]
async fn invoke_endpoint_with_response_stream(
    meter: Meter,
    request: InvokeEndpointWithResponseStreamFluentBuilder,
    tags: BTreeMap<String, String>,
    refused: Option<Arc<ConfigError>>,
    config_override: Option<Box<aws_sdk_sagemakerruntime::config::Builder>>,
) -> Result<MeteredResponseStream> {
    let call = CallRequest::new(
        request.get_endpoint_name(),
        request.get_body().as_ref(),
        tags,
    )
    .targets(Targets {
        variant: request.get_target_variant().clone(),
        component: request.get_inference_component_name().clone(),
        model: None,
    })
    .refused(refused);
    // A Client's runtime client carries the AttemptWatch, which an override keeps.
    let sending = std::pin::pin!(sent_with_override!(request, config_override));
    let answered = Call::run::<ResponseStreamOperation, _, _>(&meter, call, sending).await?;

    let receipt = answered.receipt;
    let mut usage = receipt.usage(answered.latency);
    match answered.result {
        Ok(output) => {
            usage.variant = output.invoked_production_variant().map(str::to_owned);
            // Counted from here: a stream that ends or fails before any part says 0.
            usage.parts = Some(0);
            let tokens = receipt
                .meter()
                .stream_tokens()
                .content_type(output.content_type());
            let call = StreamCall {
                request_id: output.request_id().map(str::to_owned),
                receipt: receipt.in_flight_until_made(),
                usage,
                tokens,
                last_part_at: None,
                done_at: None,
                ended_at: None,
                left_clock: false,
            };
            Ok(MeteredResponseStream::new(output, call))
        }
        // The model ran (answered with an error, or the SDK timed the call out
        // after sending it): its time was used.
        Err(source) => {
            let request_id = source
                .as_service_error()
                .and_then(|e| e.meta().request_id())
                .map(str::to_owned);
            Err(receipt.fail::<ResponseStreamOperation>(usage, request_id, Vec::new(), source))
        }
    }
}

/// `InvokeEndpointWithResponseStream`'s part of the call pipeline.
pub(crate) struct ResponseStreamOperation;

impl MeteredOperation for ResponseStreamOperation {
    type Error = InvokeEndpointWithResponseStreamError;
    const OPERATION: Operation = Operation::InvokeEndpointWithResponseStream;
    const DONE_WHEN_ANSWERED: bool = false;

    fn error(
        endpoint: String,
        source: SdkError<InvokeEndpointWithResponseStreamError, HttpResponse>,
        cost: Option<Cost>,
    ) -> Error {
        Error::InvokeWithResponseStream {
            endpoint,
            source: Box::new(source),
            cost: cost.map(Box::new),
        }
    }
}

/// One stream being metered: its receipt still to make, and its usage filled in
/// as parts arrive.
#[derive(Debug)]
struct StreamCall {
    receipt: Receipt,
    request_id: Option<String>,
    usage: Usage,
    tokens: StreamTokens,
    /// When `recv()` handed over the latest part: on the monotonic clock, and on
    /// the meter's.
    last_part_at: Option<(Instant, SystemTime)>,
    /// When `recv()` handed over the part that carries its `[DONE]` event (see
    /// [`StreamTokens::done`]), if one did: the model's answer ended there.
    done_at: Option<(Instant, SystemTime)>,
    /// When it ended, failed or was dropped, once known: its receipt may be made
    /// a little later, once its endpoint's rates are found.
    ended_at: Option<(Instant, SystemTime)>,
    /// Whether it left its endpoint's sharing clock: at its `[DONE]` part, or
    /// as it ended, failed or was dropped. Once only.
    left_clock: bool,
}

impl StreamCall {
    /// Measures one payload part. The bytes are read for tokens, never kept. The
    /// part that carries the stream's `[DONE]` leaves the sharing clock at its
    /// time: the model has sent all, however long the caller keeps the stream.
    fn part(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        let wall = self.receipt.meter().now();
        self.last_part_at = Some((now, wall));
        let usage = &mut self.usage;
        if usage.time_to_first_byte.is_none() {
            // From when the stream's request went out, as its latency is.
            usage.time_to_first_byte = Some(now.duration_since(self.receipt.request_sent()));
        }
        usage.parts = Some(usage.parts.unwrap_or(0).saturating_add(1));
        usage.bytes_out += bytes.len() as u64;
        self.tokens.push(bytes);
        if self.tokens.done() && self.done_at.is_none() {
            self.done_at = Some((now, wall));
            self.leave_clock_at(wall);
        }
    }

    /// When the stream ended, failed or was dropped: noted now the first time.
    fn end_now(&mut self) -> (Instant, SystemTime) {
        let meter = self.receipt.meter();
        *self
            .ended_at
            .get_or_insert_with(|| (Instant::now(), meter.now()))
    }

    /// Leaves the sharing clock where the receipt will bill the stream to (see
    /// [`billed_until`](Self::billed_until)). Before any wait for the
    /// endpoint's rates, so that the wait is no part of its share (the clock is
    /// left once: `finish` leaving it again changes nothing).
    fn leave_clock(&mut self, complete: bool) {
        let (_, wall) = self.billed_until(complete);
        self.leave_clock_at(wall);
    }

    /// Whether the model's answer is complete though the stream has not ended:
    /// `recv()` handed over its `[DONE]` part.
    fn answered(&self) -> bool {
        self.done_at.is_some()
    }

    /// Leaves the sharing clock at `wall` (on the meter's clock), unless it left
    /// already (at its `[DONE]` part, or before a wait for the rates).
    fn leave_clock_at(&mut self, wall: SystemTime) {
        if !std::mem::replace(&mut self.left_clock, true) {
            self.receipt.leave_clock_at(wall);
        }
    }

    /// What the stream is billed to, on the monotonic clock and on the meter's,
    /// when its answer is `complete` (it ended, or was dropped after its
    /// `[DONE]` part): its `[DONE]` part, or without one its last part (its end
    /// carries no work, and the caller may have kept it long after). Otherwise
    /// when it stopped (noted now if not yet).
    fn billed_until(&mut self, complete: bool) -> (Instant, SystemTime) {
        let stopped = self.end_now();
        match (complete, self.done_at.or(self.last_part_at)) {
            (true, Some(answered)) => answered,
            _ => stopped,
        }
    }

    /// The receipt, now. Consumes the call: a stream has one receipt.
    ///
    /// A stream that ended, or failed or was dropped after its `[DONE]` part, is
    /// billed to that part (without one, to its last part), and leaves the
    /// sharing clock then (if not at its `[DONE]` part already); one that failed
    /// or was dropped before, to when that happened
    /// ([`billed_until`](Self::billed_until)).
    fn finish(mut self, outcome: Outcome, note: Option<String>) -> Cost {
        let (ended, wall) = self.billed_until(outcome == Outcome::Ok);
        self.leave_clock_at(wall);
        let StreamCall {
            receipt,
            request_id,
            mut usage,
            mut tokens,
            ..
        } = self;
        usage.latency = ended.duration_since(receipt.started());
        usage.outcome = outcome;
        if let Some(counted) = tokens.finish() {
            usage = usage.with_tokens(counted);
        }
        receipt.make(usage, request_id, note.into_iter().collect(), Phase::Whole)
    }
}

/// A metered response stream: the SDK output's headers, and its [`body`](Self::body)
/// to read exactly like the SDK's (`response.body.recv().await?`).
#[non_exhaustive]
pub struct MeteredResponseStream {
    /// The stream of payload parts. Same `recv()` as the SDK's `EventReceiver`;
    /// it carries the receipt, so it can be moved out and read elsewhere.
    pub body: MeteredEventReceiver,
    content_type: Option<String>,
    invoked_production_variant: Option<String>,
    custom_attributes: Option<String>,
    request_id: Option<String>,
}

impl MeteredResponseStream {
    fn new(output: InvokeEndpointWithResponseStreamOutput, call: StreamCall) -> Self {
        let request_id = output.request_id().map(str::to_owned);
        let InvokeEndpointWithResponseStreamOutput {
            body,
            content_type,
            invoked_production_variant,
            custom_attributes,
            ..
        } = output;
        let (receipt, _) = watch::channel(None);
        MeteredResponseStream {
            body: MeteredEventReceiver {
                inner: body,
                call: Some(call),
                cost: None,
                receipt,
                held: None,
            },
            content_type,
            invoked_production_variant,
            custom_attributes,
            request_id,
        }
    }

    /// The stream of payload parts.
    pub fn body(&self) -> &MeteredEventReceiver {
        &self.body
    }

    /// The MIME type of the response.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The production variant that served the call.
    pub fn invoked_production_variant(&self) -> Option<&str> {
        self.invoked_production_variant.as_deref()
    }

    /// Custom attributes returned by the model (never logged).
    pub fn custom_attributes(&self) -> Option<&str> {
        self.custom_attributes.as_deref()
    }

    /// The receipt, once the stream has ended or failed; see [`MeteredEventReceiver::cost`].
    pub fn cost(&self) -> Option<&Cost> {
        self.body.cost()
    }

    /// The receipt, to await; see [`MeteredEventReceiver::receipt`].
    pub fn receipt(&self) -> StreamReceipt {
        self.body.receipt()
    }
}

impl fmt::Debug for MeteredResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredResponseStream")
            .field("body", &self.body)
            .field("content_type", &self.content_type)
            .field(
                "invoked_production_variant",
                &self.invoked_production_variant,
            )
            .field("custom_attributes", &"*** Sensitive Data Redacted ***")
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl RequestId for MeteredResponseStream {
    fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

/// The SDK's `EventReceiver`, metered.
///
/// Its receipt is made once, at the first of:
/// - `recv()` returning `Ok(None)`: the stream ended (outcome `ok`);
/// - `recv()` returning an error (`ModelStreamError`, `InternalStreamFailure`, a
///   broken connection): outcome `error`, the time used so far is billed; after
///   `recv()` handed over its `[DONE]` part, `ok`, billed to that part, the
///   error noted (the answer was complete);
/// - the receiver being dropped first: outcome `cancelled`, billed up to the drop.
///   Parts that had already arrived are read first, so a stream dropped after its
///   last part but before `recv()` said it ended is `ok`; so is one dropped after
///   `recv()` handed over its `[DONE]` part (see [`StreamTokens::done`]), billed
///   to that part, whether or not its end has arrived: the answer is complete.
///
/// Time to first byte is taken when `recv()` hands over the first part (call it as
/// soon as the stream is open for a true figure). Every receipt goes to the cost log
/// line, the running totals and the sinks at the moment it is made, whether or not
/// anyone asks for it.
pub struct MeteredEventReceiver {
    inner: EventReceiver<ResponseStream, ResponseStreamError>,
    call: Option<StreamCall>,
    cost: Option<Cost>,
    receipt: watch::Sender<Option<Cost>>,
    /// The stream's last event (its end or failure), kept while the receipt waits
    /// for the endpoint's rates: a `recv()` dropped meanwhile hands it over next.
    held: Option<StreamEvent>,
}

impl fmt::Debug for MeteredEventReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredEventReceiver")
            .field("metering", &self.call.is_some())
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl MeteredEventReceiver {
    /// The next event, exactly as the SDK's `EventReceiver::recv` returns it
    /// (`Ok(None)` at the end of the stream).
    pub async fn recv(&mut self) -> StreamEvent {
        let event = match self.held.take() {
            Some(event) => event,
            None => self.inner.recv().await,
        };
        // The stream's end or failure, on the first stream to an endpoint whose
        // rates are still being found: its time is noted now, and its receipt
        // waits for them (a plain call's answer does the same).
        if !matches!(event, Ok(Some(_)))
            && let Some(call) = self.call.as_mut()
            && !call.receipt.rates_found()
        {
            call.leave_clock(matches!(event, Ok(None)));
            self.held = Some(event);
            call.receipt.find_rates().await;
            let Some(event) = self.held.take() else {
                unreachable!("the held event is taken only here and at the start")
            };
            self.measure(&event);
            return event;
        }
        self.measure(&event);
        event
    }

    /// The receipt, once the stream has ended, failed or been cancelled; `None`
    /// while it is still open.
    pub fn cost(&self) -> Option<&Cost> {
        self.cost.as_ref()
    }

    /// The receipt, to await. Take it before the stream may be dropped: it resolves
    /// when the stream ends, fails or is dropped (a stream dropped while its
    /// endpoint's rates are still being found: once they are), to `None` only if
    /// the receipt could not be made (a panic while making it). A stream leaked
    /// with `std::mem::forget` never resolves it.
    pub fn receipt(&self) -> StreamReceipt {
        StreamReceipt {
            rx: self.receipt.subscribe(),
        }
    }

    fn measure(&mut self, event: &StreamEvent) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        match event {
            Ok(Some(ResponseStream::PayloadPart(part))) => {
                call.part(part.bytes().map(Blob::as_ref).unwrap_or_default())
            }
            // Event types newer than this SDK: not payload.
            Ok(Some(_)) => {}
            Ok(None) => self.finish(Outcome::Ok, None),
            Err(err) => {
                let (outcome, note) = self.failed(err);
                self.finish(outcome, Some(note));
            }
        }
    }

    /// How a stream that failed ends: `error`, billed to the failure; or, once
    /// `recv()` handed over its `[DONE]` part, `ok`, billed to that part, the
    /// failure noted: the answer was complete (as for a drop then).
    fn failed(&self, err: &SdkError<ResponseStreamError, RawMessage>) -> (Outcome, String) {
        let note = stream_error_note(err);
        if self.call.as_ref().is_some_and(StreamCall::answered) {
            let note =
                format!("{note}, after its [DONE] part: a complete answer, billed to that part");
            (Outcome::Ok, note)
        } else {
            (Outcome::Error, note)
        }
    }

    fn finish(&mut self, outcome: Outcome, note: Option<String>) {
        let Some(mut call) = self.call.take() else {
            return;
        };
        if call.receipt.rates_found() {
            let cost = call.finish(outcome, note);
            self.receipt.send_replace(Some(cost.clone()));
            self.cost = Some(cost);
        } else {
            // Dropped (`recv()` waits for the rates): timed now, priced later.
            call.leave_clock(outcome == Outcome::Ok);
            StreamReceiptLater::spawn(LaterReceipt {
                call,
                outcome,
                note,
                receipt: self.receipt.clone(),
            });
        }
    }

    /// Reads what has already arrived, without waiting. True when that reached the
    /// end of the stream (or an error, which then made the receipt).
    fn drain_ready(&mut self) -> bool {
        if tokio::runtime::Handle::try_current().is_err() {
            return false; // no runtime to poll the connection with
        }
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..DRAIN_ON_DROP {
            let event = {
                let mut next = std::pin::pin!(self.inner.recv());
                match next.as_mut().poll(&mut cx) {
                    Poll::Ready(event) => event,
                    Poll::Pending => return false,
                }
            };
            self.measure(&event);
            if !matches!(event, Ok(Some(_))) {
                return true;
            }
        }
        false
    }
}

impl Drop for MeteredEventReceiver {
    fn drop(&mut self) {
        let (outcome, note) = match self.held.take() {
            // Its end or failure had come; the receipt was waiting for the rates.
            Some(Ok(None)) => (Outcome::Ok, None),
            Some(Err(err)) => {
                let (outcome, note) = self.failed(&err);
                (outcome, Some(note))
            }
            _ => {
                if self.call.is_none() || self.drain_ready() {
                    return;
                }
                if self.call.as_ref().is_some_and(StreamCall::answered) {
                    // Its `[DONE]` was handed over, its end had not come yet: a
                    // complete answer, billed to that part.
                    (Outcome::Ok, None)
                } else {
                    (
                        Outcome::Cancelled,
                        Some(
                            "cancelled: the caller dropped the stream before it ended: billed \
                             until then (at least: the model may have run on after it)"
                                .to_owned(),
                        ),
                    )
                }
            }
        };
        self.finish(outcome, note);
    }
}

/// The receipt of a stream that ended while its endpoint's rates were still being
/// found, and that cannot wait for them (dropped): made in the background once they
/// are. Dropped before (the meter shut down, no runtime), it is made at once on the
/// rates at hand, saying so, so that the totals, budgets and sinks still count it.
struct StreamReceiptLater(Option<LaterReceipt>);

/// What a receipt made later needs: the call, how it ended, and where its receipt
/// goes.
struct LaterReceipt {
    call: StreamCall,
    outcome: Outcome,
    note: Option<String>,
    receipt: watch::Sender<Option<Cost>>,
}

impl StreamReceiptLater {
    fn spawn(later: LaterReceipt) {
        let background = later.call.receipt.meter().inner.background.clone();
        // Refused, the task is dropped unrun, and the receipt made then.
        background.spawn(StreamReceiptLater(Some(later)).run());
    }

    async fn run(mut self) {
        if let Some(later) = self.0.as_mut() {
            later.call.receipt.find_rates().await;
        }
        self.make();
    }

    fn make(&mut self) {
        if let Some(later) = self.0.take() {
            let cost = later.call.finish(later.outcome, later.note);
            later.receipt.send_replace(Some(cost));
        }
    }
}

impl Drop for StreamReceiptLater {
    fn drop(&mut self) {
        self.make();
    }
}

/// What a failed stream's receipt says about the failure: the error's type and code,
/// never its message (which can quote the model's output).
fn stream_error_note(err: &SdkError<ResponseStreamError, RawMessage>) -> String {
    match err.as_service_error() {
        Some(ResponseStreamError::ModelStreamError(e)) => format!(
            "the stream failed: ModelStreamError ({})",
            e.error_code().unwrap_or("no error code")
        ),
        Some(ResponseStreamError::InternalStreamFailure(_)) => {
            "the stream failed: InternalStreamFailure".to_owned()
        }
        Some(other) => format!(
            "the stream failed: {}",
            other.code().unwrap_or("unknown service error")
        ),
        None => "the stream failed: the connection or the event stream broke".to_owned(),
    }
}

/// The final receipt of a metered stream. `.await` it (or call [`get`](Self::get)):
/// it is there once the stream has ended, failed or been dropped.
///
/// ```no_run
/// # async fn run(response: sagemeter::client::MeteredResponseStream) {
/// let receipt = response.receipt();
/// drop(response); // stop early: the call still costs
/// let cost = receipt.await.expect("a dropped stream has a receipt");
/// assert_eq!(cost.usage.outcome, sagemeter::usage::Outcome::Cancelled);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StreamReceipt {
    rx: watch::Receiver<Option<Cost>>,
}

impl StreamReceipt {
    /// The receipt if it has been made, without waiting.
    pub fn get(&self) -> Option<Cost> {
        self.rx.borrow().clone()
    }

    /// Waits for the receipt; `None` only if it could not be made (see
    /// [`MeteredEventReceiver::receipt`]).
    pub async fn wait(mut self) -> Option<Cost> {
        let made = self.rx.wait_for(Option::is_some).await;
        made.ok().and_then(|cost| cost.clone())
    }
}

impl IntoFuture for StreamReceipt {
    type Output = Option<Cost>;
    type IntoFuture = Pin<Box<dyn Future<Output = Option<Cost>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}
