//! The one call pipeline every metered operation goes through, top to bottom:
//!
//! 1. **begin** ([`Call::begin`]): the endpoint is named, an inline body fits, the
//!    enforced budgets have room (a reservation is held), the call's place on its
//!    endpoint's processor-sharing clock is found (it joins it when its first
//!    request goes out) and its span opens (a `send_metered` call, whose SDK
//!    client's region only its request knows, begins inside the request, once that
//!    region is checked: [`Call::run_gated`]);
//! 2. **send** ([`Call::send`]): the SDK's future, pinned where the operation made
//!    it and timed, while the endpoint's profile and rates are found alongside (at
//!    hand on almost every call); the SDK's attempts are watched by an
//!    [`AttemptProbe`] (through [`AttemptWatch`]);
//! 3. **finish** ([`Receipt::make`]): usage → bill → totals → receipt → sinks, then
//!    the budget reservation settles and the span records the cost.
//!
//! An operation (`InvokeEndpoint`, the response stream, `InvokeEndpointAsync`)
//! supplies only what differs, through [`MeteredOperation`]: its name, how its
//! failures are wrapped, and what it reads from its output. "Did the model run?" has
//! one answer for all of them ([`reached_model`]): a failure reached the model when
//! SageMaker says the model answered with an error, or when an attempt timed out
//! after its request went out ([`timed_out_after_sending`]).
//!
//! If the caller drops the future after the request went out (it gave up, a
//! `tokio::time::timeout` fired), the call still makes one receipt, outcome
//! `cancelled`, billed as if the model ran until the drop: the instance was busy (and
//! serverless compute and data in are billed) whether or not anyone read the answer.
//! A call the SDK itself times out (its operation or attempt timeout, or the HTTP
//! client's read timeout) after sending is the same: one `cancelled` receipt, returned
//! with the error.
//!
//! What is billed is the time of the attempts that reached the model, each from its
//! request going out to its end ([`AttemptProbe::model_time`]): one in flight at a
//! drop or a timeout until then, but not the time before the first request went out
//! (credentials, a rate limiter's wait), nor the back-off between attempts, nor the
//! time after the last attempt ended (a drop or an operation timeout while the SDK
//! backs off), except for a stream, which runs on after its attempt's answer.

use super::meter::{FinishedCall, Meter, Phase, Prepared, Targets};
use crate::background::Counted;
use crate::billing::{Cost, LineItem};
use crate::budget::{Refusal, Reservation};
use crate::config_error::ConfigError;
use crate::error::never_connected;
use crate::totals::{CallShare, ClockSeat};
use crate::usage::{Operation, Outcome, Usage};
use crate::{Error, Result};
use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connection::{
    CaptureSmithyConnection, ConnectionId, ConnectionMetadata,
};
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;
use tracing::field::{Empty, display};

/// Largest request body SageMaker real-time inference accepts (25 MB; serverless
/// endpoints accept 4 MB, which the service itself enforces).
pub const MAX_REQUEST_BYTES: usize = 25_000_000;

/// Largest inline input (`body`) `InvokeEndpointAsync` accepts (128,000 bytes;
/// larger input goes to S3, named by `input_location`).
pub const MAX_ASYNC_INLINE_BYTES: usize = 128_000;

/// Largest input an asynchronous inference takes (AWS: "up to 1 GB"; taken as
/// 2³⁰ bytes, the larger reading), as stated with `input_bytes`: a larger size is a
/// mistake, refused rather than billed (each GB is data processed).
pub const MAX_ASYNC_INPUT_BYTES: u64 = 1 << 30;

/// Largest response body SageMaker real-time inference returns: 25 MB, its
/// payload limit, as for a request ([`MAX_REQUEST_BYTES`]; older API models
/// state 6 MiB for both, the smaller figure). A success cut off stating a
/// larger `Content-Length` did not come from SageMaker as stated (a proxy, or
/// an emulator reached through `AWS_ENDPOINT_URL`): its size is taken as not
/// known, not billed as data out ([`bill_cut_off_responses`]).
const MAX_RESPONSE_BYTES: u64 = 25_000_000;

/// What differs between the metered operations; everything else is [`Call`]'s.
pub(crate) trait MeteredOperation {
    /// The SDK operation's error.
    type Error: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static;
    /// The operation, as receipts name it.
    const OPERATION: Operation;
    /// Whether a call dropped after sending gets a `cancelled` receipt (not for an
    /// async submission: whether SageMaker queued it is unknown, unless it
    /// accepted an attempt, see [`failure_billed`]; its reservation counts at
    /// its estimate, see [`CallParts::settle_if_maybe_queued`]).
    const RECEIPT_WHEN_DROPPED: bool = true;
    /// Whether the model is done with the call when SageMaker answers (it then
    /// leaves its endpoint's sharing clock, however long its receipt waits for
    /// the endpoint's rates); not for a response stream, generating until it ends.
    const DONE_WHEN_ANSWERED: bool = true;
    /// The error of a failed call, with its receipt when the model ran.
    fn error(
        endpoint: String,
        source: SdkError<Self::Error, HttpResponse>,
        cost: Option<Cost>,
    ) -> Error;
}

/// Whether a failed call reached the model (and so used, and is billed for, its
/// compute): SageMaker answered with the model's own error (`ModelError`, or
/// `ModelStreamError` before a stream began). Throttling, validation, service and
/// network errors did not.
pub(crate) fn reached_model<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .is_some_and(|e| is_model_error_code(e.code()))
}

/// Whether a failed call of `operation` is billed (has a receipt). An async
/// submission only queues its input ([`Operation::failure_can_reach_model`]): it
/// is billed when SageMaker accepted one of its attempts, a 2XX answer, one whose
/// body was cut off (and which the SDK tried again) included; whatever a proxy or
/// an emulator answers, a failed submission with no 2XX has no receipt. (One
/// whose attempt timed out after sending may have been queued, unseen: its
/// reservation counts at its estimate, see [`CallParts::settle_if_maybe_queued`].) Any other
/// call is billed when it reached the model: SageMaker answered with the model's
/// error (`model_error`, see [`reached_model`]), or one of its attempts reached
/// it ([`AttemptProbe::any_ran`]).
pub(crate) fn failure_billed(
    operation: Operation,
    model_error: bool,
    attempts: &AttemptProbe,
) -> bool {
    if operation.failure_can_reach_model() {
        model_error || attempts.any_ran()
    } else {
        attempts.answers_2xx() > 0
    }
}

/// [`reached_model`] for an error code.
pub(crate) fn is_model_error_code(code: Option<&str>) -> bool {
    matches!(code, Some("ModelError" | "ModelStreamError"))
}

/// The note on the receipt of a call the SDK timed out after sending it. Each
/// attempt is billed to its own end: an attempt timed out at 300 ms under an
/// operation timeout of 900 ms is billed 300 ms, not until the call's timeout.
pub(crate) const SDK_TIMEOUT_NOTE: &str = "the SDK timed out the call after its request was \
    sent: each attempt that reached the model is billed until its end, its answer or the \
    timeout that cut it off (at least: the model may have run on after its caller went away)";

/// The outcome of a call that failed after reaching the model: `cancelled`,
/// with [`SDK_TIMEOUT_NOTE`] in `notes`, when the SDK timed it out after sending
/// it (billed as if the model ran until then, as a dropped call is), else
/// `error`. For a `Client`'s calls and the SDK interceptor's alike.
pub(crate) fn failed_outcome(sdk_timed_out: bool, notes: &mut Vec<String>) -> Outcome {
    if sdk_timed_out {
        notes.push(SDK_TIMEOUT_NOTE.to_owned());
        Outcome::Cancelled
    } else {
        Outcome::Error
    }
}

/// The note on the receipt of a call its caller dropped after sending it.
pub(crate) const DROPPED_NOTE: &str = "the caller dropped the call after its request was sent: \
    billed as if the model ran until then (at least: the model may have run on after its \
    caller went away)";

/// The note on the receipt of a call its caller dropped while the SDK was
/// backing off between attempts (no attempt in flight): the time after the
/// latest attempt's end is not billed.
pub(crate) const DROPPED_BACKING_OFF_NOTE: &str = "the caller dropped the call while the SDK \
    was backing off between attempts: billed for the attempts that reached the model, each \
    until its end (its answer, or its timeout), not until the drop";

/// Whether a call failed because the SDK timed it out after a request went out:
/// its operation or attempt timeout fired, or the HTTP client's read timeout did
/// (see [`timed_out_after_sending`]).
pub(crate) fn sdk_timed_out<E, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure
            .as_connector_error()
            .is_some_and(connector_timed_out_after_connecting),
        _ => false,
    }
}

/// Whether an attempt that ended with `err` and no response timed out after its
/// request went out, and so is billed as if the model ran until the timeout (as a
/// call the caller drops is): SageMaker runs, and bills, a request it received
/// whether or not the answer arrives. The SDK cannot say whether a request cut off
/// by its operation or attempt timeout had reached SageMaker, so it is counted as
/// having reached it once its connection was made; a connection the HTTP client
/// reports as never made (a connect timeout, or a timeout while connecting: see
/// [`AttemptProbe`]) did not.
pub(crate) fn timed_out_after_sending<E>(err: &OrchestratorError<E>) -> bool {
    err.is_timeout_error()
        || err
            .as_connector_error()
            .is_some_and(connector_timed_out_after_connecting)
}

/// A connector timeout that is not the connection's (see [`never_connected`]).
fn connector_timed_out_after_connecting(err: &ConnectorError) -> bool {
    err.is_timeout() && !never_connected(err)
}

/// A call that has begun: checked, reserved, seated on its sharing clock, in its
/// span (held by its part in flight, whose receipt on a drop is made in it).
#[derive(Debug)]
pub(crate) struct Call {
    in_flight: CallInFlight,
}

/// What a call is, as far as the pipeline needs to know before sending it.
#[derive(Debug)]
pub(crate) struct CallRequest {
    endpoint: Option<String>,
    /// The size of an inline body (checked against SageMaker's limit).
    inline_bytes: Option<usize>,
    /// The input's size when it is not inline (async input in S3).
    bytes_in: Option<u64>,
    targets: Targets,
    tags: BTreeMap<String, String>,
    /// Why the call is refused before it begins: its client's SDK client is for
    /// another region than the meter's endpoints (see [`Client::from_parts`](super::Client::from_parts)).
    refused: Option<Arc<ConfigError>>,
}

impl CallRequest {
    /// A request to `endpoint` with an inline `body` (if any).
    pub(crate) fn new(
        endpoint: &Option<String>,
        body: Option<&Blob>,
        tags: BTreeMap<String, String>,
    ) -> Self {
        CallRequest {
            endpoint: endpoint.clone(),
            inline_bytes: body.map(|b| b.as_ref().len()),
            bytes_in: None,
            targets: Targets::default(),
            tags,
            refused: None,
        }
    }

    /// The call is refused with `refused`, if any, before anything else.
    pub(crate) fn refused(mut self, refused: Option<Arc<ConfigError>>) -> Self {
        self.refused = refused;
        self
    }

    /// What the request targets: variant, inference component, model.
    pub(crate) fn targets(mut self, targets: Targets) -> Self {
        self.targets = targets;
        self
    }

    /// The size of an input that is not inline (`None`: not known, not billed).
    pub(crate) fn input_bytes(mut self, bytes: Option<u64>) -> Self {
        self.bytes_in = bytes;
        self
    }
}

impl Call {
    /// Begin → send → the SDK's answer, for a call of `O`: `send` is the SDK's
    /// request future, whose attempts [`AttemptWatch`] watches (on the runtime
    /// client, or on the request). A failure that did not reach the model comes back
    /// as an error here (no receipt).
    ///
    /// The request future (about 6 KB) comes pinned where the operation made it, and
    /// every layer from here down holds only a reference: a future holding it inline
    /// is copied whole each time it moves (the SDK future into each wrapper, each
    /// layer's future into the one above), and a 6 KB box is a slow allocation.
    pub(crate) async fn run<O, T, F>(
        meter: &Meter,
        request: CallRequest,
        send: Pin<&mut F>,
    ) -> Result<Answered<T, O::Error>>
    where
        O: MeteredOperation,
        F: Future<Output = std::result::Result<T, SdkError<O::Error, HttpResponse>>>,
    {
        Self::run_reading::<O, T, F>(meter, request, send, None).await
    }

    /// [`run`](Self::run), with what the operation reads from its output (`read`):
    /// a call the caller drops after the SDK answered, while its endpoint's profile
    /// or rates are still being found, is then billed as answered (until the
    /// answer, with its bytes out, tokens and variant), not as cancelled at the drop.
    pub(crate) async fn run_reading<O, T, F>(
        meter: &Meter,
        request: CallRequest,
        send: Pin<&mut F>,
        read: Option<ReadOutput<T>>,
    ) -> Result<Answered<T, O::Error>>
    where
        O: MeteredOperation,
        F: Future<Output = std::result::Result<T, SdkError<O::Error, HttpResponse>>>,
    {
        // Sent to another region than the meter's: nothing begins (no reservation,
        // no clock, no discovery), nothing is sent.
        if let Some(err) = &request.refused {
            return Err(Error::Config(ConfigError::clone(err)));
        }
        let call = match Call::begin::<O>(meter, request, None) {
            Ok(call) => call,
            Err(Begin::Refused(err)) => return Err(refused(err)),
            Err(Begin::Short(short)) => {
                let (request, refusal) = *short;
                // Fleet budgets: lease what is still short and reserve, then begin
                // with that reservation (boxed: the lease's table requests are
                // large futures, and rare).
                let endpoint = required_endpoint(&request.endpoint)?;
                let reservation = Box::pin(meter.lease(endpoint, &request.tags, refusal))
                    .await
                    .map_err(refused)?;
                Call::begin::<O>(meter, request, Some(reservation))
                    .map_err(|e| refused(e.into_error()))?
            }
        };
        let probe = call.in_flight.parts().attempts.clone();
        let sending = std::pin::pin!(AttemptWatch::scope(probe, send));
        call.send::<O, T>(sending, read).await.billable::<O>()
    }

    /// [`run_reading`](Self::run_reading) for a request of an SDK client sagemeter
    /// does not hold (`send_metered`), whose region shows only in the request's own
    /// configuration: the call begins inside the request, in the first hook of its
    /// watch ([`AttemptWatch::opening`]), once that region is checked. A request for
    /// another region than the meter's is refused there, before anything is sent,
    /// and before the call begins: nothing reserved, no sharing clock, not in
    /// flight, no discovery or price look-up.
    ///
    /// A fleet budget's lease is a round trip the hook cannot wait for: with a
    /// fleet, the call is reserved (and leased) first, and that reservation is
    /// released if the request is refused.
    pub(crate) async fn run_gated<O, T, F>(
        meter: &Meter,
        request: CallRequest,
        send: Pin<&mut F>,
        read: Option<ReadOutput<T>>,
    ) -> Result<Answered<T, O::Error>>
    where
        O: MeteredOperation,
        F: Future<Output = std::result::Result<T, SdkError<O::Error, HttpResponse>>>,
    {
        // Named, as `begin` checks: the SDK may refuse a request without one before
        // any hook runs.
        let endpoint = required_endpoint(&request.endpoint)?;
        // As `begin` checks them, before the fleet's lease: an invalid request is
        // that, not a budget refusal nor a table round trip.
        if let Err(err) = checked_sizes(&request, O::OPERATION) {
            return Err(refused(err));
        }
        let span = call_span(endpoint, O::OPERATION);
        let reserved = match reserve_before_hook(meter, endpoint, &request.tags).await {
            Ok(reserved) => reserved,
            Err(budget) => {
                // Refused by a budget: still a request of another region is that
                // configuration error, which the request's watch finds.
                let gate = Gate::checking(meter.clone());
                let probe = std::pin::pin!(GATE.scope(gate, send));
                return Err(match probe.await {
                    Err(source) if matches!(Error::find_in(&source), Some(Error::Config(_))) => {
                        failed::<O>(None, String::new(), source, None)
                    }
                    _ => refused(budget),
                });
            }
        };
        let gate = Gate::opening::<O>(meter.clone(), request, reserved, span.clone());
        let mut sending = std::pin::pin!(GATE.scope(gate, send));
        let polled_from = Instant::now();
        let first = std::future::poll_fn(|cx| match poll_opening(&span, sending.as_mut(), cx) {
            (Some(opened), polled) => Poll::Ready(FirstPoll::Opened(opened, polled)),
            (None, Poll::Ready(answered)) => Poll::Ready(FirstPoll::NotOpened(answered)),
            (None, Poll::Pending) => Poll::Pending,
        })
        .await;
        let (call, first) = match first {
            FirstPoll::Opened(Opened::Begun(call), first) => (call, first),
            FirstPoll::Opened(Opened::Refused(err), _) => return Err(refused(err)),
            // The SDK failed before the watch opened the call: refused for another
            // region, or a request it could not build. Nothing began.
            FirstPoll::NotOpened(Err(source)) => {
                let endpoint = sending
                    .as_mut()
                    .take_value()
                    .and_then(Gate::into_endpoint)
                    .unwrap_or_default();
                return Err(failed::<O>(None, endpoint, source, None));
            }
            // Not without the watch, which is the request's own: never here.
            FirstPoll::NotOpened(Ok(_)) => {
                return Err(Error::Config(ConfigError::new(
                    "SendMeteredExt::send_metered",
                    "the request was answered without sagemeter's watch on it",
                )));
            }
        };
        // The request's first poll, in which the call began (and the request may
        // have gone out), is part of its latency, as it is for a call begun before.
        let first_poll = polled_from.elapsed();
        // Boxed: answered in the very poll it began in (a request the SDK failed
        // before sending) is rare, and the answer is large.
        let first = match first {
            Poll::Ready(answered) => Some(Box::new(answered)),
            Poll::Pending => None,
        };
        let resumed = std::pin::pin!(Resumed {
            first,
            rest: sending
        });
        let mut answered = call.send::<O, T>(resumed, read).await;
        answered.latency += first_poll;
        answered.billable::<O>()
    }

    /// Begins a call of `O`: checked, reserved (unless `reserved` holds its
    /// reservation already), seated on its sharing clock (joined when its first
    /// request goes out), in its span.
    fn begin<O: MeteredOperation>(
        meter: &Meter,
        request: CallRequest,
        reserved: Option<Option<Reservation>>,
    ) -> std::result::Result<Call, Begin> {
        Self::begin_in::<O>(meter, request, reserved, None)
    }

    /// [`begin`](Self::begin), in `span` when it is given (made before the call
    /// began, see [`run_gated`](Self::run_gated)).
    fn begin_in<O: MeteredOperation>(
        meter: &Meter,
        request: CallRequest,
        reserved: Option<Option<Reservation>>,
        span: Option<tracing::Span>,
    ) -> std::result::Result<Call, Begin> {
        let endpoint = required_endpoint(&request.endpoint)?.to_owned();
        let inline = checked_sizes(&request, O::OPERATION)?;
        // Reserve the estimated cost before anything is sent (enforced budgets).
        let reservation = match reserved.map_or_else(|| meter.reserve(&endpoint, &request.tags), Ok)
        {
            Ok(reservation) => reservation,
            Err(Refusal::Exceeded(err)) => return Err(Begin::Refused(err)),
            Err(Refusal::Short(_, err)) => {
                return Err(Begin::Short(Box::new((request, *err))));
            }
        };
        let CallRequest {
            bytes_in,
            targets,
            tags,
            ..
        } = request;
        let bytes_in = match inline {
            Some(n) => Some(n as u64),
            // Only an async submission's input can be elsewhere (in S3, of the size
            // given, if any); any other call without a body sends none.
            None if O::OPERATION == Operation::InvokeEndpointAsync => bytes_in,
            None => Some(0),
        };
        let span = span.unwrap_or_else(|| call_span(&endpoint, O::OPERATION));
        let started_at = meter.now();
        let started = Instant::now();
        // Joined when the first request goes out (see `AttemptProbe`).
        let seat = targets.seat(meter, &endpoint, started_at);
        // The fleet publishes this process's calls in flight from the first call on.
        #[cfg(feature = "fleet")]
        if let Some(fleet) = &meter.inner.fleet {
            fleet.start_flushing();
        }
        Ok(Call {
            in_flight: CallInFlight::in_span(
                CallParts {
                    meter: meter.clone(),
                    endpoint,
                    operation: O::OPERATION,
                    bytes_in,
                    targets,
                    tags,
                    reservation,
                    started_at,
                    started,
                    attempts: AttemptProbe::on_clock(started, seat, meter.inner.time.clone()),
                    receipt_when_dropped: O::RECEIPT_WHEN_DROPPED,
                    note: None,
                    answer: std::sync::OnceLock::new(),
                    counted: meter.inner.calls.enter(),
                },
                span,
            ),
        })
    }

    /// Sends: awaits the SDK's future (pinned by the caller: an SDK send future is
    /// kilobytes) while the endpoint's profile and rates are found. When those take
    /// longer than the call, what the SDK answered is kept on the call's parts the
    /// moment it answers (read by `read`), for a drop before the receipt is made.
    async fn send<O: MeteredOperation, T>(
        self,
        send: Pin<
            &mut impl Future<Output = std::result::Result<T, SdkError<O::Error, HttpResponse>>>,
        >,
        read: Option<ReadOutput<T>>,
    ) -> Answered<T, O::Error> {
        let Call { in_flight } = self;
        let (parts, span) = (in_flight.parts(), &in_flight.span);
        let on_answer = |result: &std::result::Result<T, SdkError<O::Error, HttpResponse>>,
                         latency: Duration,
                         answered_at: SystemTime| {
            if O::DONE_WHEN_ANSWERED {
                parts.attempts.leave_clock_at(answered_at);
            }
            if let Some(read) = read {
                let receipt = early_receipt::<O, T>(parts, result, latency, read);
                let _ = parts.answer.set(EarlyAnswer {
                    answered_at,
                    receipt,
                });
            }
        };
        let (result, latency, answered_at, prepared) = if O::DONE_WHEN_ANSWERED {
            let (result, latency, answered_at, prepared) = send_alongside_prepare(
                &parts.meter,
                &parts.endpoint,
                parts.started_at,
                span,
                send,
                on_answer,
            )
            .await;
            (result, latency, answered_at, Rates::Found(prepared))
        } else {
            let (result, latency, answered_at, rates) =
                send_before_prepare(&parts.meter, &parts.endpoint, parts.started_at, span, send)
                    .await;
            // A failed call's receipt and error need the rates now; it left the
            // clock when SageMaker answered, not once they are found. Its receipt
            // is kept meanwhile, for a drop before they are (as `on_answer` keeps
            // an answer): the one it gets when its caller waits.
            let rates = match rates {
                Rates::Later(_) if result.is_err() => {
                    parts.attempts.leave_clock_at(answered_at);
                    if let Err(err) = &result {
                        let _ = parts.answer.set(EarlyAnswer {
                            answered_at,
                            receipt: failure_receipt::<O>(parts, err, latency),
                        });
                    }
                    let waiting = parts.meter.prepare_waiting(&parts.endpoint);
                    Rates::Found(waiting.instrument(span.clone()).await)
                }
                rates => rates,
            };
            (result, latency, answered_at, rates)
        };
        // Off the clock as it answered (the slow path left in `on_answer`): the
        // receipt, tokens counted, comes later, and a time handed to `end` then
        // would be behind the clock once other calls moved it on.
        if O::DONE_WHEN_ANSWERED && result.is_ok() {
            parts.attempts.leave_clock_at(answered_at);
        }
        let (parts, span) = in_flight.into_parts();
        Answered {
            result,
            latency,
            receipt: Receipt {
                span,
                prepared,
                parts,
                in_flight_until: Some(answered_at),
            },
        }
    }
}

/// Why a call did not begin.
enum Begin {
    /// Refused: the error to return.
    Refused(Error),
    /// Fleet budgets need more leased first (the request, and the refusal if it
    /// cannot be).
    Short(Box<(CallRequest, Error)>),
}

impl From<Error> for Begin {
    fn from(err: Error) -> Self {
        Begin::Refused(err)
    }
}

impl Begin {
    /// The error to return when beginning again did not work either.
    fn into_error(self) -> Error {
        match self {
            Begin::Refused(err) => err,
            Begin::Short(short) => short.1,
        }
    }
}

/// What the SDK answered, and the receipt still to make.
pub(crate) struct Answered<T, E> {
    pub result: std::result::Result<T, SdkError<E, HttpResponse>>,
    /// The send's own latency (on a cold cache, pricing may take longer than the call).
    pub latency: Duration,
    pub receipt: Receipt,
}

impl<T, E: ProvideErrorMetadata> Answered<T, E> {
    /// A failure that is not billed ([`failure_billed`]) has no receipt: it is
    /// returned as `O`'s error (or [`Error::UnknownEndpoint`]) here, and its
    /// reservation is released. Anything else goes on to make its receipt: a
    /// success, a model error, a failure after an attempt that reached the model
    /// (one the SDK timed out after sending, then retried or gave up on), or an
    /// async submission that failed after SageMaker accepted one of its attempts.
    ///
    /// An async submission returned so whose attempt timed out after sending
    /// may have been queued: its reservation counts at its estimate
    /// ([`CallParts::settle_if_maybe_queued`]).
    pub(crate) fn billable<O: MeteredOperation<Error = E>>(mut self) -> Result<Self>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        match self.result {
            Err(err)
                if !failure_billed(
                    O::OPERATION,
                    reached_model(&err),
                    &self.receipt.parts.attempts,
                ) =>
            {
                self.receipt.parts.settle_if_maybe_queued();
                Err(self.receipt.error::<O>(err, None))
            }
            _ => Ok(self),
        }
    }
}

/// The endpoint's profile and rates a receipt is priced with.
#[derive(Debug)]
enum Rates {
    /// Found by the time the call answered (cached, or waited for alongside it).
    Found(Arc<Prepared>),
    /// Still being found: a response stream is handed over as soon as it answers,
    /// and its receipt waits for them when the stream ends
    /// ([`Receipt::find_rates`]). The slot is filled once, by whichever of the
    /// look-up started at the answer and the receipt's wait gets there first.
    Later(Arc<tokio::sync::OnceCell<Arc<Prepared>>>),
}

/// The finish half of a call: everything its receipt needs.
#[derive(Debug)]
pub(crate) struct Receipt {
    span: tracing::Span,
    prepared: Rates,
    parts: CallParts,
    /// When the call left its endpoint's sharing clock (on the meter's clock): when
    /// the SDK answered (a cold look-up of the endpoint's rates may finish later,
    /// and the instance was not busy with the call meanwhile); `None`: when its
    /// receipt is made, unless it leaves before (a stream, in flight until it ends
    /// or hands over its `[DONE]`: [`leave_clock_at`](Self::leave_clock_at)).
    in_flight_until: Option<SystemTime>,
}

impl Receipt {
    /// The call stays on its endpoint's sharing clock until its receipt is made
    /// (a response stream: the model is busy until the stream ends), unless it
    /// leaves before ([`leave_clock_at`](Self::leave_clock_at)).
    pub(crate) fn in_flight_until_made(mut self) -> Self {
        self.in_flight_until = None;
        self
    }

    /// The call left its endpoint's sharing clock at `at` (on the meter's clock),
    /// before its receipt is made: a stream that ended at its last part, or that
    /// handed over the part that carries its `[DONE]`. Other calls may have moved
    /// the clock on since: it leaves at the latest of them then (see
    /// [`CallShare::leave_late`](crate::totals::CallShare::leave_late)).
    pub(crate) fn leave_clock_at(&mut self, at: SystemTime) {
        self.parts.attempts.leave_clock_late(at);
    }

    /// The call's budget reservation, taken out to be settled by the operation
    /// itself ([`make`](Self::make) then settles nothing): an async invocation
    /// keeps it held from submission to settlement.
    pub(crate) fn take_reservation(&mut self) -> Option<Reservation> {
        self.parts.reservation.take()
    }

    /// The meter the call goes through.
    pub(crate) fn meter(&self) -> &Meter {
        &self.parts.meter
    }

    /// When the call started, on the monotonic clock.
    pub(crate) fn started(&self) -> Instant {
        self.parts.started
    }

    /// When the latest attempt's request went out, on the monotonic clock (the
    /// call's start when none did).
    pub(crate) fn request_sent(&self) -> Instant {
        self.parts.attempts.latest_sent()
    }

    /// When the call started, on the meter's clock.
    pub(crate) fn started_at(&self) -> SystemTime {
        self.parts.started_at
    }

    /// The called endpoint.
    pub(crate) fn endpoint(&self) -> &str {
        &self.parts.endpoint
    }

    /// A usage record for this call, `latency` long, with its bytes in.
    pub(crate) fn usage(&self, latency: Duration) -> Usage {
        self.parts.usage(latency)
    }

    /// `O`'s error for a failed call that has no receipt (see [`failed`]).
    pub(crate) fn error<O: MeteredOperation>(
        &self,
        source: SdkError<O::Error, HttpResponse>,
        cost: Option<Cost>,
    ) -> Error {
        let profile_not_found = self.found().map(Prepared::not_found);
        failed::<O>(profile_not_found, self.parts.endpoint.clone(), source, cost)
    }

    /// The rates, when found.
    fn found(&self) -> Option<&Prepared> {
        match &self.prepared {
            Rates::Found(prepared) => Some(prepared),
            Rates::Later(_) => None,
        }
    }

    /// Whether the rates are found, looking again at what is at hand: the receipt
    /// can then be made without waiting.
    pub(crate) fn rates_found(&mut self) -> bool {
        if let Rates::Later(slot) = &self.prepared {
            let found = slot.get().cloned().or_else(|| {
                self.parts
                    .meter
                    .prepare_now(&self.parts.endpoint, self.parts.meter.now())
            });
            if let Some(prepared) = found {
                self.prepared = Rates::Found(prepared);
            }
        }
        matches!(self.prepared, Rates::Found(_))
    }

    /// Waits for the endpoint's profile and rates when they were not found by the
    /// time the call answered (a stream handed over at once).
    pub(crate) async fn find_rates(&mut self) {
        if !self.rates_found()
            && let Rates::Later(slot) = &self.prepared
        {
            let (meter, endpoint) = (&self.parts.meter, &self.parts.endpoint);
            let prepared = slot.get_or_init(|| meter.prepare(endpoint)).await.clone();
            self.prepared = Rates::Found(prepared);
        }
    }

    /// Makes the receipt of a call that failed after reaching the model, and
    /// returns the call's error carrying it (see [`failed`]). Its outcome is
    /// `cancelled` when the SDK timed it out (billed as if the model ran until
    /// then, as a dropped call is), else `error`.
    pub(crate) fn fail<O: MeteredOperation>(
        self,
        mut usage: Usage,
        request_id: Option<String>,
        mut notes: Vec<String>,
        source: SdkError<O::Error, HttpResponse>,
    ) -> Error {
        usage.outcome = failed_outcome(sdk_timed_out(&source), &mut notes);
        let profile_not_found = self.found().map(Prepared::not_found);
        let endpoint = self.parts.endpoint.clone();
        let cost = self.make(usage, request_id, notes, Phase::Whole);
        failed::<O>(profile_not_found, endpoint, source, Some(cost))
    }

    /// Bill → totals → receipt → budget → span → sinks, for the lines of `phase`.
    /// The budget is settled before the sinks run, and a sink that panics is
    /// caught ([`Meter::record_in_sinks`]): the caller gets its answer and receipt.
    pub(crate) fn make(
        self,
        usage: Usage,
        request_id: Option<String>,
        notes: Vec<String>,
        phase: Phase,
    ) -> Cost {
        self.make_settling_part(usage, request_id, notes, phase, None)
    }

    /// [`make`](Self::make), settling `part` too (an async submission's hold,
    /// taken out of the receipt to stay held for its settlement) for the part
    /// of the call this receipt bills, before the sinks run and at the time it
    /// was billed, as the receipt's own reservation is (see
    /// [`Meter::settle_part`]).
    pub(crate) fn make_settling_part(
        self,
        usage: Usage,
        request_id: Option<String>,
        notes: Vec<String>,
        phase: Phase,
        part: Option<&mut Reservation>,
    ) -> Cost {
        let Receipt {
            span,
            prepared,
            parts,
            in_flight_until,
        } = self;
        let prepared = match prepared {
            Rates::Found(prepared) => prepared,
            // Made where it could not wait (a stream dropped before its endpoint's
            // rates were found, outside a runtime): priced on what is at hand.
            Rates::Later(_) => {
                tracing::warn!(target: "sagemeter", endpoint = %parts.endpoint,
                    "a call was priced on the rates at hand, without waiting for the \
                     others: {}", super::meter::NOT_WAITED);
                parts.meter.prepare_at_hand(&parts.endpoint)
            }
        };
        let ended = in_flight_until.unwrap_or_else(|| parts.meter.now());
        let cost = in_span(&span, || {
            parts
                .finish(usage, request_id, notes, ended)
                .price_settling_part(&prepared, phase, part)
        });
        // After the sinks, so that the cost line (logged inside the span) is not
        // printed with its own figures twice by text formatters, which append the
        // span's fields to each event's.
        record_on_span(&span, &cost);
        cost
    }
}

/// The error of a failed call: `O`'s own error, with the receipt when there is
/// one; [`Error::UnknownEndpoint`] when there is none and discovery found no such
/// endpoint (`profile_not_found`; `None`: not known). A call with a receipt reached
/// the model and was billed, whatever discovery says: its receipt is never dropped
/// for a clearer error. A request refused by sagemeter's own interceptor before
/// it was sent, for a configuration that cannot work (an SDK client of another
/// region than the meter's), is that [`Error::Config`].
fn failed<O: MeteredOperation>(
    profile_not_found: Option<bool>,
    endpoint: String,
    source: SdkError<O::Error, HttpResponse>,
    cost: Option<Cost>,
) -> Error {
    if cost.is_none()
        && let SdkError::ConstructionFailure(_) = &source
        && let Some(Error::Config(config)) = Error::find_in(&source)
    {
        return Error::Config(config.clone());
    }
    match (profile_not_found, cost) {
        (Some(true), None) => Error::UnknownEndpoint {
            endpoint,
            source: Box::new(source),
        },
        (_, cost) => O::error(endpoint, source, cost),
    }
}

/// Puts the SDK's attempts on a call's usage: how many there were, the time of
/// the attempts that reached the model as the billed latency (see
/// [`AttemptProbe::model_time`]: not the time before the first request went out,
/// such as resolving credentials or an adaptive rate limiter's wait, nor throttled
/// and refused attempts, nor the back-off between attempts), and, when there were
/// retries, the request's bytes as data in once for each attempt that reached the
/// model (SageMaker processed, and bills, every request it received); an async
/// submission's once for each submission SageMaker accepted
/// ([`bill_submissions`]); and the response of each attempt answered 2XX whose
/// body was cut off as data out ([`bill_cut_off_responses`]). Notes on the
/// attempts are added only when there were several (on an attempt timed out
/// after sending or a cut-off response, whenever there is one). A probe that
/// saw no attempt
/// leaves the call's wall time; one that saw attempts, none of which it took
/// for reaching the model, bills the latest from its request on. Returns which
/// attempts' processor share is billed (the latest alone, in that case) and the
/// serverless milliseconds of several attempts.
pub(crate) fn bill_attempts(
    usage: &mut Usage,
    attempts: &AttemptProbe,
    notes: &mut Vec<String>,
) -> BilledTime {
    let wall = usage.latency;
    let count = attempts.count();
    usage.attempts = count.max(1);
    let mut billed_time = BilledTime {
        latest_only: false,
        serverless_ms: None,
        never_settled_jobs: 0,
        may_have_queued: 0,
    };
    if count == 0 {
        return billed_time;
    }
    let model = attempts.model_time(wall, runs_on(usage.operation));
    if model.attempts > 0 {
        usage.latency = model.time.min(wall);
    } else {
        // A receipt though no attempt was seen reaching the model (a proxy that
        // answers a model's error with another status): the latest attempt, from
        // its request to the call's end, not the time before it went out; and
        // its share.
        usage.latency = wall.saturating_sub(attempts.latest_sent_after_start());
        billed_time.latest_only = true;
    }
    if !usage.operation.failure_can_reach_model() {
        (billed_time.never_settled_jobs, billed_time.may_have_queued) =
            bill_submissions(usage, attempts, notes);
        return billed_time;
    }
    if count > 1 {
        let billed = model.attempts;
        if billed > 1 {
            billed_time.serverless_ms = Some(model.serverless_ms);
        }
        if billed_time.latest_only {
            notes.push(format!(
                "{count} attempts: none was seen reaching the model, though the call's error \
                 says it ran: the latest is billed, from its request to the call's end"
            ));
        } else {
            notes.push(format!(
                "{count} attempts: {billed} reached the model and are billed, {} were not",
                count - billed
            ));
        }
        if billed > 1 && usage.bytes_in > 0 {
            usage.bytes_in = usage.bytes_in.saturating_mul(u64::from(billed));
            notes.push(format!(
                "data in is the request's bytes once for each of the {billed} attempts that \
                 reached the model"
            ));
        }
    }
    // Said of one attempt too: the call may have ended after its timeout (an
    // operation timeout during the back-off, a drop).
    let timed_out = attempts.timed_out();
    if timed_out > 0 {
        notes.push(format!(
            "{timed_out} of the attempts timed out after the request was sent: billed as if \
             the model ran until the timeout (at least: the model may have run on after it)"
        ));
    }
    bill_cut_off_responses(usage, attempts, notes);
    billed_time
}

/// The responses of attempts answered 2XX whose body was cut off (the SDK tries
/// such an attempt again, or fails the call): SageMaker sent each, and bills
/// it as data out, besides the final body's. Each one's `Content-Length` is
/// added to the bytes out (saturating), with a note; one that stated none, or
/// one above any SageMaker response's ([`MAX_RESPONSE_BYTES`]: not SageMaker's
/// word), leaves data out a lower bound, and a note says so. Not an async
/// submission's: its answer is no data out (its output is, at settlement).
fn bill_cut_off_responses(usage: &mut Usage, attempts: &AttemptProbe, notes: &mut Vec<String>) {
    let (sized, bytes, unstated, oversized) = attempts.cut_off();
    if sized > 0 {
        usage.bytes_out = usage.bytes_out.saturating_add(bytes);
        notes.push(format!(
            "data out includes the response of each of the {sized} attempt(s) answered 2XX \
             whose body was cut off, at its Content-Length: SageMaker sent it"
        ));
    }
    if unstated > 0 {
        notes.push(format!(
            "{unstated} attempt(s) answered 2XX whose body was cut off stated no \
             Content-Length: their response is not in data out, which is a lower bound"
        ));
    }
    if oversized > 0 {
        notes.push(format!(
            "{oversized} attempt(s) answered 2XX whose body was cut off stated a \
             Content-Length above {MAX_RESPONSE_BYTES} bytes, more than any SageMaker \
             response: their response is not in data out, which is a lower bound"
        ));
    }
}

/// An async submission's data in: SageMaker queues the input of each attempt it
/// accepts (a 2XX answer, one whose body was cut off and which the SDK tried
/// again included: with no idempotency token, the retry is queued again), and
/// processes, and bills, each. The submissions billed are the attempts answered
/// 2XX, at least one when the call succeeded; the per-inference fee is charged
/// for each of them too ([`usage_charge_lines`](crate::billing::usage_charge_lines)).
/// An attempt that timed out after its request was sent may have been queued as
/// well, unseen: a note then says the figures are a lower bound. Nothing else of
/// an attempt queued anything.
///
/// Each job queued runs, but at most one is settled (the last accepted, whose
/// answer was read): a submission accepted more than once and answered says
/// that the others are never settled
/// ([`ACCEPTED_MORE_THAN_ONCE_NOTE`](super::async_invoke::ACCEPTED_MORE_THAN_ONCE_NOTE));
/// one that failed after it was accepted says so of them all already. Returns
/// the jobs beyond the first that may have been queued (accepted + timed out
/// after sending − 1: a timed-out attempt's job, if queued, is settled by
/// nobody), which budgets count at no less than their estimate
/// ([`FinishedCall::never_settled_jobs`]), and the attempts
/// that may have queued the input (accepted + timed out after sending), which
/// bound an input of unstated size ([`FinishedCall::may_have_queued`]).
fn bill_submissions(
    usage: &mut Usage,
    attempts: &AttemptProbe,
    notes: &mut Vec<String>,
) -> (u32, u32) {
    let count = attempts.count();
    let accepted = attempts
        .answers_2xx()
        .max(u32::from(usage.outcome == Outcome::Ok));
    let timed_out = attempts.timed_out();
    let may_have_queued = accepted.saturating_add(timed_out);
    if accepted > 1 {
        usage.bytes_in = usage.bytes_in.saturating_mul(u64::from(accepted));
    }
    if count <= 1 {
        return (0, may_have_queued);
    }
    notes.push(format!(
        "{count} attempts: {accepted} accepted by SageMaker (a 2XX answer, one whose body was \
         cut off included), each a submission queued and billed: its data in and \
         per-inference fee"
    ));
    if timed_out > 0 {
        notes.push(format!(
            "{timed_out} of the attempts timed out after the request was sent: SageMaker may \
             have queued them as well, unbilled here, so data in and the per-inference fee \
             are a lower bound"
        ));
    }
    if accepted > 1 && usage.outcome == Outcome::Ok {
        notes.push(super::async_invoke::ACCEPTED_MORE_THAN_ONCE_NOTE.to_owned());
    }
    (may_have_queued.saturating_sub(1), may_have_queued)
}

/// Which of a call's attempts are billed, beyond its latency: the processor
/// share is the sharing clock's advance over those attempts' own stretches
/// (see [`AttemptProbe::share_until`]), and, when several attempts reached the
/// model, the milliseconds a serverless variant bills them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BilledTime {
    /// No attempt was seen reaching the model, though the call has a receipt:
    /// its latest attempt is billed, its time and its share.
    pub(crate) latest_only: bool,
    /// Serverless milliseconds of several attempts that reached the model, each
    /// rounded up on its own (`None`: the latency, rounded up, is billed).
    pub(crate) serverless_ms: Option<u64>,
    /// An async submission's jobs that no settlement will bill, beyond the one
    /// its receipt counts ([`bill_submissions`]).
    pub(crate) never_settled_jobs: u32,
    /// An async submission's attempts that may have queued its input
    /// ([`bill_submissions`]).
    pub(crate) may_have_queued: u32,
}

/// A call refused before it began, counted (`sagemeter_budget_refused_total` for a
/// budget's refusal): the error to return.
fn refused(err: Error) -> Error {
    crate::sink::count_refusal(&err);
    err
}

/// The endpoint name of a request, which every metered operation requires.
fn required_endpoint(name: &Option<String>) -> Result<&str> {
    name.as_deref()
        .filter(|name| !name.chars().all(char::is_whitespace))
        .ok_or_else(|| Error::InvalidRequest("endpoint_name is required".into()))
}

/// The request's inline body within its operation's limit (its length), and an
/// async input's stated size within AWS's 1 GB. Checked before anything is
/// reserved: a size that is a mistake is that, not a budget refusal.
fn checked_sizes(request: &CallRequest, operation: Operation) -> Result<Option<usize>> {
    let inline = checked_body_len(request.inline_bytes, operation)?;
    if let Some(stated) = request.bytes_in
        && inline.is_none()
        && stated > MAX_ASYNC_INPUT_BYTES
    {
        return Err(Error::InvalidRequest(format!(
            "input_bytes is {stated}; an asynchronous inference's input is at most \
             {MAX_ASYNC_INPUT_BYTES} bytes (1 GB)"
        )));
    }
    Ok(inline)
}

/// The size of an inline request body, refused before sending when it is over
/// SageMaker's limit.
fn checked_body_len(inline_bytes: Option<usize>, operation: Operation) -> Result<Option<usize>> {
    let (limit, instead) = match operation {
        Operation::InvokeEndpointAsync => (MAX_ASYNC_INLINE_BYTES, "put it in S3 (input_location)"),
        _ => (
            MAX_REQUEST_BYTES,
            "use InvokeEndpointAsync for larger payloads",
        ),
    };
    if let Some(bytes) = inline_bytes
        && bytes > limit
    {
        return Err(Error::InvalidRequest(format!(
            "request body is {bytes} bytes; SageMaker accepts at most {limit} bytes inline \
             for {operation} ({instead})"
        )));
    }
    Ok(inline_bytes)
}

/// Awaits `send` inside `span`, with the endpoint's profile and rates: at hand
/// (cached) on almost every call, else fetched by [`Meter::prepare_waiting`]
/// alongside it. Returns the answer, the send's own latency, when it answered (on
/// the meter's clock) and the profile.
async fn send_alongside_prepare<T>(
    meter: &Meter,
    endpoint: &str,
    started_at: SystemTime,
    span: &tracing::Span,
    send: Pin<&mut impl Future<Output = T>>,
    on_answer: impl FnOnce(&T, Duration, SystemTime),
) -> (T, Duration, SystemTime, Arc<Prepared>) {
    if let Some(prepared) = meter.prepare_now(endpoint, started_at) {
        let started = Instant::now();
        // A span nobody records (filtered out) is not entered on every poll.
        let result = if span.is_disabled() {
            send.await
        } else {
            send.instrument(span.clone()).await
        };
        return (result, started.elapsed(), meter.now(), prepared);
    }
    let started = Instant::now();
    // Boxed: the cold path's state (discovery requests, price fetches, the response
    // while they finish) stays out of every call's future.
    let ((result, latency, answered_at), prepared) = Box::pin(
        async {
            let timed = async {
                let result = send.await;
                let (latency, answered_at) = (started.elapsed(), meter.now());
                // Kept now: the caller may drop the call while pricing goes on.
                on_answer(&result, latency, answered_at);
                (result, latency, answered_at)
            };
            tokio::join!(timed, meter.prepare_waiting(endpoint))
        }
        .instrument(span.clone()),
    )
    .await;
    (result, latency, answered_at, prepared)
}

/// Awaits a response stream's `send` inside `span` and hands the answer over at
/// once: its parts are the caller's to read from then, and timed as they come. The
/// endpoint's profile and rates come from the cache on almost every call; else
/// their look-up starts now, on its own task, and the receipt takes its answer when
/// the stream ends ([`Rates::Later`]; a failed call waits for it at once, in
/// [`Call::send`]).
async fn send_before_prepare<T, E>(
    meter: &Meter,
    endpoint: &str,
    started_at: SystemTime,
    span: &tracing::Span,
    send: Pin<&mut impl Future<Output = std::result::Result<T, E>>>,
) -> (std::result::Result<T, E>, Duration, SystemTime, Rates) {
    let rates = match meter.prepare_now(endpoint, started_at) {
        Some(prepared) => Rates::Found(prepared),
        None => {
            let slot = Arc::new(tokio::sync::OnceCell::new());
            // Not the meter's background work: nothing waits for it at shutdown,
            // and the receipt finds the rates itself when the look-up is gone.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (slot, meter, endpoint) = (slot.clone(), meter.clone(), endpoint.to_owned());
                runtime.spawn(async move {
                    slot.get_or_init(|| meter.prepare(&endpoint)).await;
                });
            }
            Rates::Later(slot)
        }
    };
    let started = Instant::now();
    let result = if span.is_disabled() {
        send.await
    } else {
        send.instrument(span.clone()).await
    };
    (result, started.elapsed(), meter.now(), rates)
}

/// The span of one metered call (target `sagemeter`, name `sagemaker.invoke`); the
/// cost line is logged inside it. Once the receipt is made and its cost line
/// logged, its outcome, cost and tokens (of a call answered with HTTP 2XX only,
/// as on the cost line) are recorded on it, tokens under
/// sagemeter's names (`input_tokens`, `output_tokens`) and the OpenTelemetry GenAI
/// ones (`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`); the cost as
/// `cost_usd` (the exact decimal, as text) and as `gen_ai.usage.cost.amount` (a
/// double, as the proposal types it) / `gen_ai.usage.cost.currency`, the names
/// proposed for the OpenTelemetry GenAI conventions (not yet stable: they may
/// change); and, as on the cost line, `price_source` and `fully_priced`, so that
/// a trace backend summing costs can tell a lower bound (an unpriced line) from
/// a full cost.
pub(crate) fn call_span(endpoint: &str, operation: Operation) -> tracing::Span {
    tracing::info_span!(
        target: "sagemeter",
        "sagemaker.invoke",
        // Escaped as on the cost line: the span's fields prefix it in most formats.
        endpoint = %crate::redact::printable(endpoint),
        operation = operation.as_str(),
        outcome = Empty,
        cost_usd = Empty,
        price_source = Empty,
        fully_priced = Empty,
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
    span.record(
        "price_source",
        cost.price_source().map_or("unpriced", |s| s.as_str()),
    );
    span.record("fully_priced", cost.is_fully_priced());
    if let Some(usd) = rust_decimal::prelude::ToPrimitive::to_f64(&cost.cost_usd) {
        span.record("gen_ai.usage.cost.amount", usd);
    }
    span.record("gen_ai.usage.cost.currency", cost.currency.as_ref());
    // Those of a call answered with HTTP 2XX only, as every view counts them.
    let (input_tokens, output_tokens) = crate::billing::counted_tokens(usage);
    if let Some(n) = input_tokens {
        span.record("input_tokens", n);
        span.record("gen_ai.usage.input_tokens", n);
    }
    if let Some(n) = output_tokens {
        span.record("output_tokens", n);
        span.record("gen_ai.usage.output_tokens", n);
    }
}

/// What a call's receipt needs that is known before it is sent.
#[derive(Debug)]
pub(crate) struct CallParts {
    pub(super) meter: Meter,
    pub(super) endpoint: String,
    pub(super) operation: Operation,
    pub(super) bytes_in: Option<u64>,
    pub(super) targets: Targets,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) reservation: Option<Reservation>,
    /// When the call started (the meter's clock, for receipts and accrual).
    pub(super) started_at: SystemTime,
    /// When the call started (monotonic, for durations).
    pub(super) started: Instant,
    /// The SDK's attempts at this call, as [`AttemptProbe`] saw them, and its
    /// place on its endpoint's processor-sharing clock from its first request on.
    pub(super) attempts: AttemptProbe,
    pub(super) receipt_when_dropped: bool,
    /// A note every receipt of the call carries (who metered it), if any.
    pub(super) note: Option<&'static str>,
    /// What the SDK answered, once it has, if the receipt is not made at once
    /// (see [`Call::run_reading`]).
    pub(super) answer: std::sync::OnceLock<EarlyAnswer>,
    /// The call's place among those shutdown waits for, until its receipt is
    /// recorded ([`ToPrice`]).
    pub(super) counted: Counted,
}

/// A call ended and billed as far as it can be without its endpoint's rates: to
/// be priced, settled against its budgets and recorded in the sinks, which
/// [`price`](Self::price) does, now or once the rates are found. Until then it
/// is among the calls shutdown waits for.
#[derive(Debug)]
pub(crate) struct ToPrice {
    meter: Meter,
    pub(super) call: FinishedCall,
    reservation: Option<Reservation>,
    _counted: Counted,
}

impl ToPrice {
    /// Prices the lines of `phase` → totals → receipt → budgets → sinks.
    pub(super) fn price(self, prepared: &Prepared, phase: Phase) -> Cost {
        self.price_settling_part(prepared, phase, None)
    }

    /// [`price`](Self::price), settling `part` (an async submission's hold)
    /// for this receipt's part of the call before the sinks run.
    pub(super) fn price_settling_part(
        self,
        prepared: &Prepared,
        phase: Phase,
        part: Option<&mut Reservation>,
    ) -> Cost {
        self.meter
            .finish_settled(self.call, prepared, self.reservation, part, phase)
    }

    /// [`price`](Self::price) in the call's `span`, then its cost recorded on it
    /// (after the sinks, as [`Receipt::make`] does).
    fn price_in(self, span: &tracing::Span, prepared: &Prepared, phase: Phase) -> Cost {
        let cost = in_span(span, || self.price(prepared, phase));
        record_on_span(span, &cost);
        cost
    }
}

/// What an operation reads from its output for the receipt (bytes out, tokens,
/// variant) into a usage record; returns the request id.
pub(crate) type ReadOutput<T> = fn(&T, &Meter, &mut Usage) -> Option<String>;

/// What the SDK answered a call, kept the moment it answered.
#[derive(Debug)]
pub(crate) struct EarlyAnswer {
    /// When it answered, on the meter's clock (the call leaves its sharing clock).
    answered_at: SystemTime,
    /// The receipt's usage, request id and notes; `None`: a failure that did not
    /// reach the model (no receipt).
    receipt: Option<(Usage, Option<String>, Vec<String>)>,
}

/// The receipt an answer makes (see [`EarlyAnswer`]), as [`Answered::billable`] and
/// [`Receipt::fail`] decide it: a success read by `read`; a failure that reached
/// the model, as an error (or `cancelled` when the SDK timed it out); else none.
fn early_receipt<O: MeteredOperation, T>(
    parts: &CallParts,
    result: &std::result::Result<T, SdkError<O::Error, HttpResponse>>,
    latency: Duration,
    read: ReadOutput<T>,
) -> Option<(Usage, Option<String>, Vec<String>)> {
    match result {
        Ok(output) => {
            let mut usage = parts.usage(latency);
            let request_id = read(output, &parts.meter, &mut usage);
            Some((usage, request_id, Vec::new()))
        }
        Err(err) => failure_receipt::<O>(parts, err, latency),
    }
}

/// The receipt a failure makes (see [`early_receipt`]): as an error (or
/// `cancelled` when the SDK timed it out) when it reached the model; else none.
fn failure_receipt<O: MeteredOperation>(
    parts: &CallParts,
    err: &SdkError<O::Error, HttpResponse>,
    latency: Duration,
) -> Option<(Usage, Option<String>, Vec<String>)> {
    if !failure_billed(O::OPERATION, reached_model(err), &parts.attempts) {
        return None;
    }
    let mut usage = parts.usage(latency);
    if !O::OPERATION.failure_can_reach_model() {
        // Queued, though the call failed: no request id nor output
        // location of the accepted submission is known.
        let mut notes = Vec::new();
        super::async_invoke::accepted_then_failed(&mut usage, &mut notes);
        return Some((usage, None, notes));
    }
    let request_id = err
        .as_service_error()
        .and_then(|e| e.meta().request_id())
        .map(str::to_owned);
    let mut notes = Vec::new();
    usage.outcome = failed_outcome(sdk_timed_out(err), &mut notes);
    Some((usage, request_id, notes))
}

/// A call whose request is about to go out or is out: dropped before the SDK
/// answers (after a request went out), it makes the call's cancelled receipt.
/// The [`MeteringInterceptor`](super::MeteringInterceptor) keeps one per call too,
/// so that a call whose SDK future is dropped is billed the same way.
///
/// It holds the call's span (a metered call's; none for the interceptor's): the
/// receipt made on a drop is priced in it and its cost recorded on it, now or
/// in the background, as a receipt made when the caller waits is.
#[derive(Debug)]
pub(crate) struct CallInFlight {
    parts: Option<CallParts>,
    span: tracing::Span,
}

impl CallParts {
    /// A usage record for this call, `latency` long, with its bytes in.
    pub(super) fn usage(&self, latency: Duration) -> Usage {
        let mut usage = Usage::new(self.operation, latency);
        usage.bytes_in = self.bytes_in.unwrap_or(0);
        usage
    }

    /// For an async submission that failed or was dropped with no 2XX answer
    /// (no receipt: [`failure_billed`]), but one of whose attempts timed out
    /// after its request went out or was in flight when it was dropped:
    /// SageMaker may have queued the job, its 202 lost with the attempt, and
    /// no settlement will come to bill it. Its reservation is settled at its
    /// estimate (counted as a call not fully priced, at $0 priced) rather
    /// than released, so that submissions timing out one after another
    /// cannot queue work past an enforced budget; each further attempt that
    /// may have queued a job (retried after a timeout) counts at the estimate
    /// too, as a receipt's further jobs do. Any other call's
    /// reservation is left as it is (released when the parts are dropped).
    pub(super) fn settle_if_maybe_queued(&mut self) {
        // Each attempt that timed out after sending, and the one in flight,
        // may have queued a job (the SDK retries a timed-out attempt).
        let jobs = self.attempts.timed_out() + u32::from(self.attempts.in_flight());
        let maybe_queued = !self.operation.failure_can_reach_model()
            && self.attempts.answers_2xx() == 0
            && jobs > 0;
        if !maybe_queued {
            return;
        }
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        tracing::debug!(target: "sagemeter", endpoint = %self.endpoint,
            "an async submission timed out or was dropped after its request went out, \
             unanswered: SageMaker may have queued it, so its budget reservation counts at \
             its estimate");
        self.meter
            .settle_at_estimate(reservation, &self.endpoint, &self.tags, jobs);
    }

    /// The call these parts end as, its share of the sharing clock ended at
    /// `ended`: the attempts billed on `usage`, the parts' own note before
    /// `notes`; to be priced.
    pub(super) fn finish(
        self,
        mut usage: Usage,
        request_id: Option<String>,
        notes: Vec<String>,
        ended: SystemTime,
    ) -> ToPrice {
        let CallParts {
            meter,
            endpoint,
            targets,
            tags,
            reservation,
            started_at,
            attempts,
            note,
            bytes_in,
            counted,
            ..
        } = self;
        let mut notes: Vec<String> = note.map(str::to_owned).into_iter().chain(notes).collect();
        let tokens_unseen = usage.drop_implausible_tokens(&mut notes);
        // Only an async submission's input can be unseen: it is in S3.
        let unknown = match bytes_in {
            Some(_) => Vec::new(),
            None => vec![(
                LineItem::DataIn,
                super::async_invoke::DATA_IN_UNKNOWN.to_owned(),
            )],
        };
        let billed = bill_attempts(&mut usage, &attempts, &mut notes);
        let slots_busy_at_start = attempts.slots_busy_at_start();
        let call = FinishedCall {
            endpoint,
            request_id,
            started_at,
            targets,
            usage,
            tags,
            notes,
            shared_time: attempts.share_until(ended, billed.latest_only),
            clock: attempts.clock(),
            serverless_ms: billed.serverless_ms,
            slots_busy_at_start,
            answers_2xx: attempts.answers_2xx(),
            never_settled_jobs: billed.never_settled_jobs,
            may_have_queued: billed.may_have_queued,
            unknown,
            tokens_unseen,
            // SageMaker's word, or none (the profile's pick, made when priced).
            variant_assumed: false,
            submission_counted_unpriced: false,
        };
        ToPrice {
            meter,
            call,
            reservation,
            _counted: counted,
        }
    }
}

/// Prices `call` (the lines of `phase`) and settles its reservation in the
/// background, where an SDK hook or a `Drop` cannot wait for the endpoint's
/// profile and rates; in the call's `span`, its cost recorded on it (a disabled
/// span: none). Never lost: see [`FinishLater`].
pub(super) fn finish_in_background(call: ToPrice, phase: Phase, span: tracing::Span) {
    let background = call.meter.inner.background.clone();
    let later = FinishLater {
        call: Some((call, phase)),
        span,
    };
    // Refused (shut down, no runtime), the task is dropped unrun: `later` finishes.
    background.spawn(later.run());
}

/// A call to be finished in the background once its rates are found, in its
/// span; dropped before (see [`NOT_WAITED`](super::meter::NOT_WAITED)), it is
/// finished at once on what is at hand ([`Meter::prepare_at_hand`]), so that the
/// totals, budgets and sinks still count it.
struct FinishLater {
    call: Option<(ToPrice, Phase)>,
    span: tracing::Span,
}

impl FinishLater {
    async fn run(mut self) {
        let Some((to_price, _)) = &self.call else {
            return;
        };
        let (meter, endpoint) = (to_price.meter.clone(), to_price.call.endpoint.clone());
        let prepared = meter.prepare(&endpoint).await;
        if let Some((to_price, phase)) = self.call.take() {
            to_price.price_in(&self.span, &prepared, phase);
        }
    }
}

impl Drop for FinishLater {
    fn drop(&mut self) {
        let Some((to_price, phase)) = self.call.take() else {
            return;
        };
        in_span(&self.span, || {
            tracing::warn!(target: "sagemeter", endpoint = %to_price.call.endpoint,
                "a call was priced on the rates at hand, without waiting for the others: {}",
                super::meter::NOT_WAITED);
        });
        let prepared = to_price.meter.prepare_at_hand(&to_price.call.endpoint);
        to_price.price_in(&self.span, &prepared, phase);
    }
}

impl CallInFlight {
    /// A call in flight with `parts`, its receipt made on drop unless taken (in no
    /// span).
    pub(crate) fn new(parts: CallParts) -> Self {
        Self::in_span(parts, tracing::Span::none())
    }

    /// [`new`](Self::new), the receipt made on drop in the call's `span`.
    fn in_span(parts: CallParts, span: tracing::Span) -> Self {
        CallInFlight {
            parts: Some(parts),
            span,
        }
    }

    /// The parts, for the one receipt of the call; `None` once taken (nothing is
    /// made on drop then).
    pub(crate) fn take(&mut self) -> Option<CallParts> {
        self.parts.take()
    }

    fn parts(&self) -> &CallParts {
        match &self.parts {
            Some(parts) => parts,
            None => unreachable!("a CallInFlight holds its parts until into_parts"),
        }
    }

    /// The parts and the span, for the receipt made when the caller waits (nothing
    /// is made on drop then).
    fn into_parts(mut self) -> (CallParts, tracing::Span) {
        let span = std::mem::replace(&mut self.span, tracing::Span::none());
        match self.parts.take() {
            Some(parts) => (parts, span),
            None => unreachable!("a CallInFlight holds its parts until into_parts"),
        }
    }
}

impl Drop for CallInFlight {
    fn drop(&mut self) {
        let Some(parts) = self.parts.take() else {
            return;
        };
        let span = &self.span;
        in_span(span, || dropped(parts, span));
    }
}

/// The receipt of a call dropped in flight (see [`CallInFlight`]), if it has one,
/// priced in its `span`.
fn dropped(mut parts: CallParts, span: &tracing::Span) {
    if let Some(answer) = parts.answer.take() {
        // The SDK had answered: billed as answered, until the answer. An async
        // submission it accepted is queued (SageMaker will run it): billed as
        // submitted, whatever became of the caller.
        let Some((usage, request_id, mut notes)) = answer.receipt else {
            // A failure that did not reach the model: no receipt (an async
            // submission that timed out after sending counts at its estimate).
            parts.settle_if_maybe_queued();
            return;
        };
        let phase = if parts.operation == Operation::InvokeEndpointAsync {
            notes.push(super::async_invoke::DROPPED_SUBMISSION_NOTE.to_owned());
            Phase::Submitted
        } else {
            // Only an answer says the model answered. A failure (a model error, an
            // SDK timeout) keeps the receipt, notes and all, its caller gets when
            // it waits.
            if usage.outcome == Outcome::Ok {
                notes.push(
                    "the caller dropped the call after the model answered, before its \
                     receipt was made: billed as answered"
                        .to_owned(),
                );
            }
            Phase::Whole
        };
        let now = parts.meter.now();
        let call = parts.finish(usage, request_id, notes, answer.answered_at);
        finish_now_or_in_background(call, now, phase, span);
        return;
    }
    if !parts.operation.failure_can_reach_model()
        && failure_billed(parts.operation, false, &parts.attempts)
    {
        // An async submission SageMaker accepted (a 2XX answer cut off, the
        // SDK retrying it when the caller went away) is queued all the same:
        // billed as one that failed after it was accepted, its reservation
        // settled on it (no settlement will come).
        let mut usage = parts.usage(parts.started.elapsed());
        let mut notes = Vec::new();
        super::async_invoke::accepted_then_failed(&mut usage, &mut notes);
        notes.push(super::async_invoke::DROPPED_SUBMISSION_NOTE.to_owned());
        let now = parts.meter.now();
        let call = parts.finish(usage, None, notes, now);
        finish_now_or_in_background(call, now, Phase::Submitted, span);
        return;
    }
    if !parts.receipt_when_dropped {
        // An async submission unanswered: no receipt, but one timed out after
        // sending, or in flight now, may have been queued.
        parts.settle_if_maybe_queued();
        return;
    }
    if !parts.attempts.transmitted() {
        return; // nothing reached SageMaker (or nothing to bill): no receipt
    }
    let wall = parts.started.elapsed();
    if parts
        .attempts
        .model_time(wall, runs_on(parts.operation))
        .attempts
        == 0
    {
        // Every attempt so far was throttled or refused, and the SDK was
        // backing off: the model never ran. The reservation is released.
        return;
    }
    let note = if parts.attempts.in_flight() {
        DROPPED_NOTE
    } else {
        DROPPED_BACKING_OFF_NOTE
    };
    let mut usage = parts.usage(wall);
    usage.outcome = Outcome::Cancelled;
    let notes = vec![note.to_owned()];
    let now = parts.meter.now();
    let call = parts.finish(usage, None, notes, now);
    finish_now_or_in_background(call, now, Phase::Whole, span);
}

/// Prices `call` (the lines of `phase`) and settles its reservation now if its
/// endpoint's profile and rates are at hand (as of `now`), else in the background;
/// in the call's `span`, its cost recorded on it.
fn finish_now_or_in_background(call: ToPrice, now: SystemTime, phase: Phase, span: &tracing::Span) {
    match call.meter.prepare_now(&call.call.endpoint, now) {
        Some(prepared) => {
            call.price_in(span, &prepared, phase);
        }
        None => finish_in_background(call, phase, span.clone()),
    }
}

tokio::task_local! {
    /// The probe of the call whose SDK future is being polled (see [`AttemptWatch`]).
    static CURRENT_CALL: AttemptProbe;
    /// The call a `send_metered` request is to begin, whose SDK future is being
    /// polled (see [`Call::run_gated`]): its request's watch opens it.
    static GATE: Gate;
}

/// A `send_metered` call not begun yet: what the watch on its request
/// ([`AttemptWatch::opening`]) needs to check the request's region, once the
/// request's configuration is whole, and then to begin the call; then the
/// begun call's probe, for its attempts.
pub(crate) struct Gate {
    meter: Meter,
    /// What begins the call (taken once).
    opening: std::cell::RefCell<Option<Opening>>,
    /// Only the region is checked: the call is refused already (by a budget), and
    /// the request is refused in any case.
    checking_only: bool,
    /// The begun call's probe.
    probe: std::cell::OnceCell<AttemptProbe>,
}

/// What a [`Gate`] begins its call with.
struct Opening {
    request: CallRequest,
    reserved: Option<Option<Reservation>>,
    span: tracing::Span,
    /// [`Call::begin_in`] for the call's operation.
    begin: BeginIn,
}

type BeginIn = fn(
    &Meter,
    CallRequest,
    Option<Option<Reservation>>,
    Option<tracing::Span>,
) -> std::result::Result<Call, Begin>;

/// What a [`Gate`] opened to: the call begun, or its refusal (a budget's).
#[allow(
    clippy::large_enum_variant,
    reason = "moved once per call; boxed, the call would cost an allocation"
)]
enum Opened {
    Begun(Call),
    Refused(Error),
}

thread_local! {
    /// What a gate opened to, from the request's watch to [`Call::run_gated`]: the
    /// watch runs inside a poll of the request, and this is taken right after that
    /// poll, on the same thread (see [`poll_opening`]).
    static OPENED: std::cell::RefCell<Option<Opened>> = const { std::cell::RefCell::new(None) };
}

/// What a gate opened to in the poll just made on this thread, if anything.
fn take_opened() -> Option<Opened> {
    OPENED.with(|opened| opened.borrow_mut().take())
}

/// Why a gated request was refused by its own watch without a configuration
/// error: the caller has the reason (a budget's refusal).
const REFUSED_UNSENT: &str = "sagemeter refused the call before it was sent";

impl Gate {
    /// A gate that begins a call of `O` of `request`, reserved with `reserved`
    /// (`None`: reserved as it begins), in `span`.
    fn opening<O: MeteredOperation>(
        meter: Meter,
        request: CallRequest,
        reserved: Option<Option<Reservation>>,
        span: tracing::Span,
    ) -> Self {
        Gate {
            meter,
            opening: std::cell::RefCell::new(Some(Opening {
                request,
                reserved,
                span,
                begin: Call::begin_in::<O>,
            })),
            checking_only: false,
            probe: std::cell::OnceCell::new(),
        }
    }

    /// A gate that only checks the request's region: it refuses the request in
    /// any case.
    fn checking(meter: Meter) -> Self {
        Gate {
            meter,
            opening: std::cell::RefCell::new(None),
            checking_only: true,
            probe: std::cell::OnceCell::new(),
        }
    }

    /// The endpoint of a call the gate did not begin.
    fn into_endpoint(self) -> Option<String> {
        self.opening
            .into_inner()
            .and_then(|opening| opening.request.endpoint)
    }

    /// Run by the request's watch once the request's configuration (`cfg`) is
    /// whole: refuses a request for another region than the meter's endpoints,
    /// else begins the call and hands it over through [`OPENED`]. A string
    /// compare, then what [`Call::begin`] does.
    fn open(&self, cfg: &ConfigBag) -> std::result::Result<(), BoxError> {
        if let Some(region) = cfg.load::<aws_types::region::Region>() {
            self.meter
                .check_region(
                    "SendMeteredExt::send_metered",
                    "the SDK client",
                    region.as_ref(),
                )
                .map_err(|err| Box::new(Error::Config(err)) as BoxError)?;
        }
        if self.checking_only {
            return Err(REFUSED_UNSENT.into());
        }
        let Some(opening) = self.opening.borrow_mut().take() else {
            return Ok(()); // begun already
        };
        let Opening {
            request,
            reserved,
            span,
            begin,
        } = opening;
        let (opened, result) = match begin(&self.meter, request, reserved, Some(span)) {
            Ok(call) => {
                let _ = self.probe.set(call.in_flight.parts().attempts.clone());
                (Opened::Begun(call), Ok(()))
            }
            // Without a fleet a budget short of room is refused, as `lease` does.
            Err(begin) => (
                Opened::Refused(begin.into_error()),
                Err(REFUSED_UNSENT.into()),
            ),
        };
        OPENED.with(|slot| *slot.borrow_mut() = Some(opened));
        result
    }
}

/// Polls a gated request once, in the call's `span`, and takes what its watch
/// opened in that poll. A panic in the poll leaves nothing for another call to
/// take: the begun call is dropped (and makes its receipt if it was sent).
///
/// What the slot holds already is put back after the poll: this poll may run
/// inside another gated request's poll (code of the application's, run by that
/// request's SDK pipeline after its watch opened its call, blocking on a second
/// `send_metered`), whose call must still be there for it to take.
fn poll_opening<F: Future>(
    span: &tracing::Span,
    request: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> (Option<Opened>, Poll<F::Output>) {
    struct ClearOnUnwind;
    impl Drop for ClearOnUnwind {
        fn drop(&mut self) {
            if std::thread::panicking() {
                drop(take_opened());
            }
        }
    }
    let outer = take_opened();
    let _clear = ClearOnUnwind;
    let polled = span.in_scope(|| request.poll(cx));
    let opened = take_opened();
    if outer.is_some() {
        OPENED.with(|slot| *slot.borrow_mut() = outer);
    }
    (opened, polled)
}

/// What the first polls of a gated request came to: its call opened (begun or
/// refused), with the request's own poll; or the request's answer without it.
#[allow(
    clippy::large_enum_variant,
    reason = "moved once per call; boxed, the call would cost an allocation"
)]
enum FirstPoll<T> {
    Opened(Opened, Poll<T>),
    NotOpened(T),
}

/// A request future polled already (while its call began), with what it answered
/// then, if it answered.
struct Resumed<'a, F: Future> {
    first: Option<Box<F::Output>>,
    rest: Pin<&'a mut F>,
}

impl<F: Future> Future for Resumed<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        match this.first.take() {
            Some(answered) => Poll::Ready(*answered),
            None => this.rest.as_mut().poll(cx),
        }
    }
}

/// A `send_metered` call's reservation when it must be made before its request's
/// watch begins the call: with a fleet, whose budgets' leases are round trips
/// the watch cannot wait for. `None`: reserved as the call begins.
async fn reserve_before_hook(
    meter: &Meter,
    endpoint: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Option<Option<Reservation>>> {
    #[cfg(feature = "fleet")]
    if meter.inner.fleet.is_some() {
        return match meter.reserve(endpoint, tags) {
            Ok(reservation) => Ok(Some(reservation)),
            Err(Refusal::Exceeded(err)) => Err(err),
            Err(Refusal::Short(_, err)) => {
                Box::pin(meter.lease(endpoint, tags, *err)).await.map(Some)
            }
        };
    }
    let _ = (meter, endpoint, tags);
    Ok(None)
}

/// The SDK's attempts at one call: how many there were, whether a request went
/// out at all, and how long the attempts that reached the model took. Fed by
/// [`AttemptWatch`] (or by [`MeteringInterceptor`](super::MeteringInterceptor)).
///
/// An attempt reached the model when SageMaker answered it with a success or a
/// model error, or when it timed out after its request went out
/// ([`timed_out_after_sending`]); a throttled, refused or failed-in-transit attempt
/// did not, and is not billed. Each attempt is counted once by its number (the orchestrator's
/// `RequestAttempts`), so a watch registered twice on one request (on the client
/// and again on the call) counts nothing twice.
#[derive(Debug, Clone)]
pub(crate) struct AttemptProbe(Arc<AttemptLog>);

#[derive(Debug)]
struct AttemptLog {
    /// What attempt times are measured from (the call's start).
    origin: Instant,
    /// The number of the latest attempt whose request went out (0: none).
    transmitted: AtomicU32,
    /// The number of the latest attempt whose end was seen.
    finished: AtomicU32,
    /// When the latest attempt's request went out, in µs since `origin`.
    attempt_started_us: AtomicU64,
    /// Microseconds spent in attempts that reached the model.
    billed_us: AtomicU64,
    /// Attempts that reached the model.
    billed: AtomicU32,
    /// The number of the latest attempt that reached the model (0: none).
    last_billed: AtomicU32,
    /// How long that attempt took, up to the end the SDK saw (for a stream, its
    /// headers).
    last_billed_us: AtomicU64,
    /// Milliseconds of the attempts that reached the model, each rounded up on
    /// its own (as serverless inference bills each request).
    billed_ms: AtomicU64,
    /// The number of the latest attempt SageMaker answered with a success (for a
    /// stream, its headers; 0: none).
    answered_ok: AtomicU32,
    /// Attempts SageMaker answered with a success (HTTP 2XX), one whose body was
    /// cut off included: AWS Marketplace charges an inference for each.
    answers_2xx: AtomicU32,
    /// Attempts that timed out after their request went out (billed, see
    /// [`timed_out_after_sending`]).
    timed_out: AtomicU32,
    /// Attempts answered 2XX whose body was cut off, with a `Content-Length`,
    /// and those lengths together (saturating); those with none; and those
    /// stating one above [`MAX_RESPONSE_BYTES`], not taken.
    cut_off_sized: AtomicU32,
    cut_off_bytes: AtomicU64,
    cut_off_unsized: AtomicU32,
    cut_off_oversized: AtomicU32,
    /// The latest attempt's connection, as the HTTP client reports it.
    connection: std::sync::Mutex<Option<CaptureSmithyConnection>>,
    /// The sharing clock the call joins when its first request goes out, and
    /// the meter's clock to read as each attempt goes out and ends (`None`: on
    /// no clock).
    seat: Option<(ClockSeat, SharedTimeSource)>,
    /// The call's place on that clock, from its first request on. It is in
    /// flight on it only while an attempt is: not while it waits for its
    /// credentials or an adaptive rate limiter, nor during the SDK's back-off
    /// between attempts; one that never sent a request never joins it.
    share: std::sync::OnceLock<CallShare>,
}

/// The connection id of the placeholder [`AttemptProbe::before_transmit`] puts in
/// an attempt's connection capture: still there after the attempt, it means the
/// HTTP client reports no connections (not that none was made).
const NO_REPORT: ConnectionId = ConnectionId::new(u64::MAX);

impl AttemptProbe {
    /// A probe for a call that started at `origin`, on no sharing clock.
    #[cfg(test)]
    pub(crate) fn new(origin: Instant) -> Self {
        Self::with_seat(origin, None)
    }

    /// A probe for a call that started at `origin`, which joins the sharing
    /// clock `seat` when its first request goes out, at that time on `time`
    /// (the meter's clock).
    pub(crate) fn on_clock(origin: Instant, seat: ClockSeat, time: SharedTimeSource) -> Self {
        Self::with_seat(origin, Some((seat, time)))
    }

    fn with_seat(origin: Instant, seat: Option<(ClockSeat, SharedTimeSource)>) -> Self {
        AttemptProbe(Arc::new(AttemptLog {
            origin,
            transmitted: AtomicU32::new(0),
            finished: AtomicU32::new(0),
            attempt_started_us: AtomicU64::new(0),
            billed_us: AtomicU64::new(0),
            billed: AtomicU32::new(0),
            last_billed: AtomicU32::new(0),
            last_billed_us: AtomicU64::new(0),
            billed_ms: AtomicU64::new(0),
            answered_ok: AtomicU32::new(0),
            answers_2xx: AtomicU32::new(0),
            timed_out: AtomicU32::new(0),
            cut_off_sized: AtomicU32::new(0),
            cut_off_bytes: AtomicU64::new(0),
            cut_off_unsized: AtomicU32::new(0),
            cut_off_oversized: AtomicU32::new(0),
            connection: std::sync::Mutex::new(None),
            seat,
            share: std::sync::OnceLock::new(),
        }))
    }

    /// The call leaves its sharing clock at `at` (see [`CallShare::leave_at`]),
    /// if it joined it.
    pub(crate) fn leave_clock_at(&self, at: SystemTime) {
        if let Some(share) = self.0.share.get() {
            share.leave_at(at);
        }
    }

    /// The call leaves its sharing clock at `at`, a time read a while ago (see
    /// [`CallShare::leave_late`]), if it joined it.
    pub(crate) fn leave_clock_late(&self, at: SystemTime) {
        if let Some(share) = self.0.share.get() {
            share.leave_late(at);
        }
    }

    /// The instance time the sharing clock allocated the call's attempts that
    /// reached the model (exact, in instance-femtoseconds), leaving it at `ended`
    /// if it has not left yet (its latest attempt's alone, when `latest`: see
    /// [`BilledTime::latest_only`]);
    /// `None` when it never joined (no request went out, or the probe is on no
    /// clock: billed as busy time then). An attempt still in flight (a dropped
    /// call) is billed as [`model_time`](Self::model_time) bills it: unless its
    /// request never left.
    pub(crate) fn share_until(
        &self,
        ended: SystemTime,
        latest: bool,
    ) -> Option<crate::billing::SharedTime> {
        let share = self.0.share.get()?;
        let log = &self.0;
        if log.finished.load(Ordering::Relaxed) < log.transmitted.load(Ordering::Relaxed)
            && self.unconnected()
        {
            share.step_off(ended, false);
        }
        Some(share.end(ended, latest))
    }

    /// The sharing clock the call joined (`None` when it never joined one).
    pub(crate) fn clock(&self) -> Option<crate::totals::EndpointSlot> {
        self.0.share.get().map(CallShare::clock)
    }

    /// The slots of the provisioned concurrency busy on the sharing clock as
    /// this call's first billed attempt went out (see
    /// [`CallShare::slots_busy_at_start`]).
    pub(crate) fn slots_busy_at_start(&self) -> Option<u32> {
        self.0.share.get().map(|share| share.slots_busy_at_start())
    }

    /// When the latest request went out, after the call started (zero when none
    /// did).
    pub(crate) fn latest_sent_after_start(&self) -> Duration {
        Duration::from_micros(self.0.attempt_started_us.load(Ordering::Relaxed))
    }

    /// Attempts made (0 when the probe saw none, e.g. nothing was sent).
    pub(crate) fn count(&self) -> u32 {
        self.0.transmitted.load(Ordering::Relaxed)
    }

    /// Whether a request went out: a call dropped while the SDK was still resolving
    /// credentials or its endpoint reached nothing and is not billed.
    pub(crate) fn transmitted(&self) -> bool {
        self.count() > 0
    }

    /// Whether an attempt that ended reached the model (answered after the model
    /// ran, or timed out after its request went out).
    pub(crate) fn any_ran(&self) -> bool {
        self.0.billed.load(Ordering::Relaxed) > 0
    }

    /// When the latest attempt's request went out (the call's start when none
    /// did).
    pub(crate) fn latest_sent(&self) -> Instant {
        self.0.origin + self.latest_sent_after_start()
    }

    /// Attempts that timed out after their request went out.
    pub(crate) fn timed_out(&self) -> u32 {
        self.0.timed_out.load(Ordering::Relaxed)
    }

    /// Whether the latest attempt's request went out (on a connection, as far
    /// as the HTTP client reports it) and its end was not seen: in flight when
    /// the call is dropped.
    pub(crate) fn in_flight(&self) -> bool {
        let log = &self.0;
        log.finished.load(Ordering::Relaxed) < log.transmitted.load(Ordering::Relaxed)
            && !self.unconnected()
    }

    /// Attempts SageMaker answered with a success (HTTP 2XX), a success whose
    /// body was cut off (and which the SDK tried again) included.
    pub(crate) fn answers_2xx(&self) -> u32 {
        self.0.answers_2xx.load(Ordering::Relaxed)
    }

    /// Attempts answered 2XX whose body was cut off: those that stated a
    /// `Content-Length`, those lengths together, those that stated none, and
    /// those that stated one above [`MAX_RESPONSE_BYTES`].
    fn cut_off(&self) -> (u32, u64, u32, u32) {
        let log = &self.0;
        (
            log.cut_off_sized.load(Ordering::Relaxed),
            log.cut_off_bytes.load(Ordering::Relaxed),
            log.cut_off_unsized.load(Ordering::Relaxed),
            log.cut_off_oversized.load(Ordering::Relaxed),
        )
    }

    /// The attempts of a call that ended `end` after it started which used the
    /// model, and for how long together: those SageMaker answered after the model
    /// ran, and those that timed out after their request went out, each until its
    /// end (its answer, or its timeout); one still in flight at `end` (a dropped
    /// call), as if the model ran until then; and, when the latest attempt opened
    /// a response that runs on after its answer (`runs_on`: a stream, whose
    /// attempt ends at its headers), that one until `end`. A throttled or refused
    /// attempt, the time before the first request went out (credentials, a rate
    /// limiter's wait) and the back-off between attempts used none, nor the time
    /// after the latest attempt's end (an operation timeout during a back-off).
    pub(crate) fn model_time(&self, end: Duration, runs_on: bool) -> ModelTime {
        let log = &self.0;
        let sent = log.transmitted.load(Ordering::Relaxed);
        if sent == 0 {
            return ModelTime::default();
        }
        let finished = log.finished.load(Ordering::Relaxed);
        let mut attempts = log.billed.load(Ordering::Relaxed);
        let mut billed_us = log.billed_us.load(Ordering::Relaxed);
        let mut billed_ms = log.billed_ms.load(Ordering::Relaxed);
        let latest_ran =
            micros_up(end).saturating_sub(log.attempt_started_us.load(Ordering::Relaxed));
        if finished < sent && !self.unconnected() {
            attempts += 1;
            billed_us = billed_us.saturating_add(latest_ran);
            billed_ms = billed_ms.saturating_add(ceil_ms(latest_ran));
        } else if runs_on
            && log.answered_ok.load(Ordering::Relaxed) == sent
            && log.last_billed.load(Ordering::Relaxed) == sent
        {
            let took = log.last_billed_us.load(Ordering::Relaxed);
            let ran = latest_ran.max(took);
            billed_us = billed_us.saturating_sub(took).saturating_add(ran);
            billed_ms = billed_ms
                .saturating_sub(ceil_ms(took))
                .saturating_add(ceil_ms(ran));
        }
        ModelTime {
            attempts,
            time: Duration::from_micros(billed_us),
            serverless_ms: billed_ms,
        }
    }

    /// An attempt's request is about to go out.
    pub(crate) fn before_transmit(&self, cfg: &ConfigBag) {
        let log = &self.0;
        let attempt = attempt_number(cfg)
            .unwrap_or_else(|| log.transmitted.load(Ordering::Relaxed).saturating_add(1));
        // The meter's clock read first: the time on the sharing clock encloses
        // the attempt's.
        let now = log.seat.as_ref().map(|(_, time)| time.now());
        if self.attempt_sent_at(attempt, micros(log.origin.elapsed()), now) {
            // The SDK's connection capture for this attempt (put there by its
            // connection-poisoning interceptor): the default HTTP client replaces
            // the placeholder with what it knows of the connection when it sends.
            let capture = cfg.load::<CaptureSmithyConnection>().cloned();
            if let Some(capture) = &capture {
                capture.set_connection_retriever(|| {
                    Some(
                        ConnectionMetadata::builder()
                            .proxied(false)
                            .connection_id(NO_REPORT)
                            .poison_fn(|| {})
                            .build(),
                    )
                });
            }
            *log.connection.lock().unwrap_or_else(|e| e.into_inner()) = capture;
        }
    }

    /// Whether the latest attempt's request never left: the HTTP client reports
    /// that its connection was not made (yet). A client that reports nothing, or
    /// no capture, is not taken as "not connected".
    fn unconnected(&self) -> bool {
        let capture = self.0.connection.lock().unwrap_or_else(|e| e.into_inner());
        capture.as_ref().is_some_and(|c| c.get().is_none())
    }

    /// Attempt number `attempt`'s request went out, `at_us` µs after the call
    /// started; whether it is a new attempt (not one seen already).
    /// The first request joins the call to its sharing clock, a later one puts
    /// it back on it (see [`CallShare::rejoin`]).
    #[cfg(test)]
    fn attempt_sent(&self, attempt: u32, at_us: u64) -> bool {
        self.attempt_sent_at(attempt, at_us, None)
    }

    /// [`attempt_sent`](Self::attempt_sent), `now` on the meter's clock (`None`:
    /// read when the call joins its sharing clock).
    fn attempt_sent_at(&self, attempt: u32, at_us: u64, now: Option<SystemTime>) -> bool {
        let log = &self.0;
        let before = log.transmitted.fetch_max(attempt, Ordering::Relaxed);
        if before < attempt {
            log.attempt_started_us.store(at_us, Ordering::Relaxed);
            if let Some((seat, time)) = &log.seat {
                let now = || now.unwrap_or_else(|| time.now());
                match log.share.get() {
                    Some(share) => share.rejoin(now()),
                    None => {
                        log.share.get_or_init(|| seat.join(now()));
                    }
                }
            }
            return true;
        }
        false
    }

    /// An attempt ended (answered, failed or timed out).
    pub(crate) fn after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        cfg: &ConfigBag,
    ) {
        let log = &self.0;
        let attempt =
            attempt_number(cfg).unwrap_or_else(|| log.transmitted.load(Ordering::Relaxed));
        let end = match context.response() {
            Some(response) => match response.status().as_u16() {
                // A success whose body could not be read (cut off): the model ran,
                // and the SDK may try again after a back-off, off the clock.
                200..300 if matches!(context.output_or_error(), Some(Err(_))) => {
                    AttemptEnd::AnsweredCutOff(content_length(response))
                }
                200..300 => AttemptEnd::AnsweredOk,
                status if status_reached_model(status) || model_error_reply(context) => {
                    AttemptEnd::ModelError
                }
                _ => AttemptEnd::NotRun,
            },
            None if matches!(context.output_or_error(),
                Some(Err(err)) if timed_out_after_sending(err))
                && !self.unconnected() =>
            {
                AttemptEnd::TimedOut
            }
            None => AttemptEnd::NotRun,
        };
        let at_us = micros_up(log.origin.elapsed());
        // The meter's clock read last: the time on the sharing clock encloses
        // the attempt's.
        let now = log.seat.as_ref().map(|(_, time)| time.now());
        self.attempt_ended_at(attempt, end, at_us, now);
    }

    /// Attempt number `attempt` ended `at_us` µs after the call started, as `end`
    /// says; counted once (an attempt not sent, or already counted, is not).
    #[cfg(test)]
    fn attempt_ended(&self, attempt: u32, end: AttemptEnd, at_us: u64) {
        self.attempt_ended_at(attempt, end, at_us, None);
    }

    /// [`attempt_ended`](Self::attempt_ended), `now` on the meter's clock
    /// (`None`: read when the call steps off its sharing clock). Any attempt but
    /// a success steps the call off the clock until its next attempt goes out
    /// (the SDK backs off, or gives up): a success is the call's last attempt,
    /// on the clock until the call leaves it (at its answer; a stream at its
    /// end). A throttled or refused attempt was on the clock while it was out
    /// (whether SageMaker would turn it away is known only from its answer):
    /// its stretch is not billed, as its time is not.
    fn attempt_ended_at(&self, attempt: u32, end: AttemptEnd, at_us: u64, now: Option<SystemTime>) {
        let log = &self.0;
        let sent = log.transmitted.load(Ordering::Relaxed);
        if attempt == 0
            || attempt > sent
            || log.finished.fetch_max(attempt, Ordering::Relaxed) >= attempt
        {
            return; // never sent, or already counted
        }
        if end != AttemptEnd::AnsweredOk
            && let (Some(share), Some((_, time))) = (log.share.get(), &log.seat)
        {
            share.step_off(now.unwrap_or_else(|| time.now()), end != AttemptEnd::NotRun);
        }
        match end {
            AttemptEnd::NotRun => return,
            AttemptEnd::AnsweredOk => {
                log.answered_ok.store(attempt, Ordering::Relaxed);
                log.answers_2xx.fetch_add(1, Ordering::Relaxed);
            }
            AttemptEnd::AnsweredCutOff(length) => {
                log.answers_2xx.fetch_add(1, Ordering::Relaxed);
                match length {
                    Some(bytes) if bytes > MAX_RESPONSE_BYTES => {
                        log.cut_off_oversized.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(bytes) => {
                        log.cut_off_sized.fetch_add(1, Ordering::Relaxed);
                        let _ = log.cut_off_bytes.fetch_update(
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                            |sum| Some(sum.saturating_add(bytes)),
                        );
                    }
                    None => {
                        log.cut_off_unsized.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            AttemptEnd::TimedOut => {
                log.timed_out.fetch_add(1, Ordering::Relaxed);
            }
            AttemptEnd::ModelError => {}
        }
        let started = log.attempt_started_us.load(Ordering::Relaxed);
        let took = at_us.saturating_sub(started);
        log.billed_us.fetch_add(took, Ordering::Relaxed);
        log.billed_ms.fetch_add(ceil_ms(took), Ordering::Relaxed);
        log.billed.fetch_add(1, Ordering::Relaxed);
        log.last_billed_us.store(took, Ordering::Relaxed);
        log.last_billed.store(attempt, Ordering::Relaxed);
    }
}

/// How an attempt ended, as far as billing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptEnd {
    /// SageMaker answered with a success (the model ran).
    AnsweredOk,
    /// SageMaker answered with a success whose body could not be read (cut
    /// off): the model ran, and the SDK may try again. With the response's
    /// `Content-Length`, when it stated one: SageMaker sent that much (unless
    /// it is above [`MAX_RESPONSE_BYTES`], which is not SageMaker's word).
    AnsweredCutOff(Option<u64>),
    /// SageMaker answered with the model's error (the model ran).
    ModelError,
    /// It timed out after its request went out ([`timed_out_after_sending`]):
    /// billed as if the model ran until then.
    TimedOut,
    /// Throttled, refused, or failed in transit: the model did not run.
    NotRun,
}

/// The part of a call's attempts that used the model ([`AttemptProbe::model_time`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ModelTime {
    /// The attempts that reached the model.
    pub(crate) attempts: u32,
    /// Their time together.
    pub(crate) time: Duration,
    /// Their milliseconds as serverless inference bills them: each attempt's
    /// rounded up on its own.
    pub(crate) serverless_ms: u64,
}

/// The length a response states (its `Content-Length`), if it states one.
fn content_length(response: &HttpResponse) -> Option<u64> {
    response
        .headers()
        .get("content-length")
        .and_then(|length| length.trim().parse().ok())
}

/// Whether `operation`'s attempt runs on after its answer: only a stream's, whose
/// answer is its headers ([`AttemptProbe::model_time`]'s `runs_on`).
fn runs_on(operation: Operation) -> bool {
    operation == Operation::InvokeEndpointWithResponseStream
}

/// Microseconds rounded up to whole milliseconds.
fn ceil_ms(us: u64) -> u64 {
    us.div_ceil(1000)
}

/// Whether an attempt was answered with a model error whose status is not 424:
/// `ModelStreamError` before a stream starts comes with 400 (a client error in
/// SageMaker Runtime's model), after the model ran.
fn model_error_reply(context: &FinalizerInterceptorContextRef<'_>) -> bool {
    use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError as StreamError;
    matches!(context.output_or_error(), Some(Err(err))
        if err
            .as_operation_error()
            .and_then(|err| err.downcast_ref::<StreamError>())
            .is_some_and(|err| is_model_error_code(err.code())))
}

/// The number of the attempt in progress, as the SDK's orchestrator counts them.
fn attempt_number(cfg: &ConfigBag) -> Option<u32> {
    cfg.load::<RequestAttempts>().map(RequestAttempts::attempts)
}

/// Whole microseconds, rounded down: when an attempt's request went out.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Whole microseconds, rounded up: an attempt's end, so that its time (from its
/// request, rounded down) is never less than it ran (an upper bound, as every
/// latency is), and never less than a time to first byte within it; and a
/// receipt's latency and time to first byte (the meter's, in whole microseconds).
pub(super) fn micros_up(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// HTTP statuses with which SageMaker Runtime answers after the model ran: a
/// success, or `ModelError` (424, the container answered with an error); the
/// status-level twin of [`reached_model`], for attempts the SDK retried.
fn status_reached_model(status: u16) -> bool {
    (200..300).contains(&status) || status == 424
}

/// The one interceptor that watches the SDK's attempts for every metered call:
/// registered once on the runtime client a [`Client`](super::Client) wraps (not on
/// each request, which would make the SDK assemble a config override per call), it
/// hands each attempt to the probe of the call being polled. Requests sent outside
/// a metered call pass untouched.
///
/// The one put on each request of `send_metered` ([`AttemptWatch::opening`])
/// also begins its call ([`Call::run_gated`]), once it has checked the request's
/// region: the fluent builder does not say which SDK client it belongs to, the
/// request's configuration does.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AttemptWatch {
    /// Whether this watch opens a `send_metered` call's [`Gate`] (the one on its
    /// request, which runs once the request's configuration is whole).
    opens: bool,
}

impl AttemptWatch {
    const NAME: &'static str = "sagemeter::AttemptWatch";

    /// The watch for one request of `send_metered`: it checks the request's
    /// region, then begins its call (see [`Call::run_gated`]).
    pub(crate) fn opening() -> Self {
        AttemptWatch { opens: true }
    }

    /// `runtime`, with the watch on its config (unless it is there already).
    pub(crate) fn on(
        runtime: aws_sdk_sagemakerruntime::Client,
    ) -> aws_sdk_sagemakerruntime::Client {
        if runtime
            .config()
            .interceptors()
            .any(|i| i.name() == Self::NAME)
        {
            return runtime;
        }
        let mut config = runtime.config().to_builder();
        // Permanent: never disabled, so the SDK does not look up whether it is on
        // each of its ~20 hooks of every call (some 6,000 instructions a call).
        config.push_interceptor(SharedInterceptor::permanent(AttemptWatch::default()));
        aws_sdk_sagemakerruntime::Client::from_conf(config.build())
    }

    /// Whether the request being sent belongs to a metered call ([`Client`](super::Client),
    /// `send_metered`): that call makes its receipt, so the
    /// [`MeteringInterceptor`](super::MeteringInterceptor) leaves it alone.
    pub(crate) fn in_metered_call() -> bool {
        CURRENT_CALL.try_with(|_| ()).is_ok() || GATE.try_with(|_| ()).is_ok()
    }

    /// The probe of the call whose SDK future is being polled, if any.
    fn with_probe(mut f: impl FnMut(&AttemptProbe)) {
        if CURRENT_CALL.try_with(&mut f).is_err() {
            let _ = GATE.try_with(|gate| gate.probe.get().map(&mut f));
        }
    }

    /// `send` (an SDK request future) with its attempts going to `probe`.
    pub(crate) fn scope<F: Future>(
        probe: AttemptProbe,
        send: F,
    ) -> impl Future<Output = F::Output> {
        CURRENT_CALL.scope(probe, send)
    }
}

impl Intercept for AttemptWatch {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A request's own interceptor runs once its configuration, overrides
        // included, is in the bag.
        if self.opens
            && let Ok(opened) = GATE.try_with(|gate| gate.open(cfg))
        {
            opened?;
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Self::with_probe(|probe| probe.before_transmit(cfg));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Self::with_probe(|probe| probe.after_attempt(context, cfg));
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    /// The span's tokens are those of a call answered with HTTP 2XX, as on
    /// the cost line: a failed asynchronous inference's settlement carrying
    /// the counts its output reported (1,200 in, 800 out) records none, under
    /// either name; an answered one records them.
    #[test]
    fn the_span_records_tokens_only_of_a_call_answered_2xx() {
        use crate::sink::test_support::{Buffer, settlement_with_tokens};
        use crate::usage::{Operation, Outcome};
        let span_fields = |outcome: Outcome| {
            let receipt = settlement_with_tokens(outcome);
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_max_level(tracing::Level::INFO)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                let span = super::call_span("ep", Operation::InvokeEndpointAsync);
                super::record_on_span(&span, &receipt);
            });
            let lines = buffer.json_lines();
            assert_eq!(lines.len(), 1, "the span's close: {lines:?}");
            lines[0]["span"].clone()
        };
        let names = [
            "input_tokens",
            "output_tokens",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
        ];
        let failed = span_fields(Outcome::Error);
        assert_eq!(failed["outcome"], "error", "{failed}");
        for name in names {
            assert!(failed.get(name).is_none(), "{name}: {failed}");
        }
        let answered = span_fields(Outcome::Ok);
        for (name, n) in names.into_iter().zip([1200, 800, 1200, 800]) {
            assert_eq!(answered[name], n, "{name}: {answered}");
        }
    }

    /// A request whose watch opens a call (refused, named `name`) and which, as
    /// the outer one, polls another gated request inside its own poll.
    struct Opens(&'static str);

    impl Future for Opens {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let name = self.0;
            super::OPENED.with(|slot| {
                *slot.borrow_mut() = Some(super::Opened::Refused(crate::Error::InvalidRequest(
                    name.into(),
                )))
            });
            if name == "outer" {
                let inner = std::pin::pin!(Opens("inner"));
                let (opened, _) = super::poll_opening(&tracing::Span::none(), inner, cx);
                assert_eq!(opened_name(opened).as_deref(), Some("inner"));
            }
            Poll::Ready(())
        }
    }

    fn opened_name(opened: Option<super::Opened>) -> Option<String> {
        match opened {
            Some(super::Opened::Refused(crate::Error::InvalidRequest(name))) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn a_gated_request_polled_inside_another_leaves_the_outer_ones_call_to_it() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let outer = std::pin::pin!(Opens("outer"));
        let (opened, polled) = super::poll_opening(&tracing::Span::none(), outer, &mut cx);
        assert!(polled.is_ready());
        // Without putting it back, the inner poll's take would leave `None` here
        // and the outer request would run on without its call.
        assert_eq!(opened_name(opened).as_deref(), Some("outer"));
        assert!(super::take_opened().is_none());
    }

    use super::*;
    use crate::pricing::PriceKey;

    /// A probe fed `attempts`: each `(sent, ended, how)`, in µs since the call
    /// started.
    fn fed(attempts: &[(u64, u64, AttemptEnd)]) -> AttemptProbe {
        let probe = AttemptProbe::new(Instant::now());
        for (n, &(sent, ended, how)) in (1..).zip(attempts) {
            assert!(probe.attempt_sent(n, sent));
            probe.attempt_ended(n, how, ended);
        }
        probe
    }

    fn ms(n: u64) -> u64 {
        n * 1000
    }

    /// A meter of `sls`, one 3 GB serverless variant in us-east-1, priced at
    /// 0.00006 USD/s (data at 0.016 USD/GB), with nothing to discover.
    fn serverless_meter() -> Meter {
        serverless_builder().build_meter().unwrap()
    }

    /// [`serverless_meter`]'s builder, for tests that add to it.
    fn serverless_builder() -> crate::ClientBuilder {
        let region = || "us-east-1".to_owned();
        crate::Client::builder(&sdk_config())
            .without_discovery()
            .endpoint_profile(crate::endpoint::EndpointProfile::new(
                "sls",
                vec![crate::endpoint::VariantProfile::serverless(
                    "AllTraffic",
                    3072,
                )],
            ))
            .price_override(PriceKey::serverless("us-east-1", 3), usd("0.00006"))
            .price_override(PriceKey::DataIn { region: region() }, usd("0.016"))
            .price_override(PriceKey::DataOut { region: region() }, usd("0.016"))
    }

    /// An SDK config for us-east-1 with test credentials, reaching nothing.
    pub(in crate::client) fn sdk_config() -> aws_types::SdkConfig {
        aws_types::SdkConfig::builder()
            .region(aws_types::region::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("test", "test", None, None, "tests"),
                ),
            )
            .build()
    }

    fn usd(s: &str) -> rust_decimal::Decimal {
        s.parse().unwrap()
    }

    /// A call of `O` begun on [`serverless_meter`]'s `sls`, its profile and rates
    /// at hand: the meter, those rates, and the call's parts to feed attempts to.
    fn begun_on_serverless<O: MeteredOperation>() -> (Meter, Arc<Prepared>, CallParts) {
        let meter = serverless_meter();
        let prepared = meter
            .prepare_now("sls", meter.now())
            .expect("the profile and rates are at hand");
        let request = CallRequest::new(&Some("sls".into()), None, BTreeMap::new());
        let Ok(call) = Call::begin::<O>(&meter, request, None) else {
            panic!("the call begins");
        };
        let (parts, _) = call.in_flight.into_parts();
        (meter, prepared, parts)
    }

    /// A meter of `pc`, serverless 2 GB with provisioned concurrency 1 in
    /// us-east-1: its inference duration at 0.0000233 USD/s, standing at
    /// 0.00001 USD/s, calls beyond it at the on-demand 0.00004 USD/s; and a
    /// call of it begun, its parts to feed attempts to.
    fn provisioned_meter() -> (Meter, Arc<Prepared>, impl Fn() -> CallParts) {
        let sdk_config = sdk_config();
        let r = || "us-east-1".to_owned();
        let meter = crate::Client::builder(&sdk_config)
            .without_discovery()
            .endpoint_profile(crate::endpoint::EndpointProfile::new(
                "pc",
                vec![
                    crate::endpoint::VariantProfile::serverless("AllTraffic", 2048)
                        .with_provisioned_concurrency(1),
                ],
            ))
            .price_override(
                PriceKey::ProvisionedConcurrencyUsage {
                    region: r(),
                    memory_gb: 2,
                },
                usd("0.0000233"),
            )
            .price_override(
                PriceKey::ProvisionedConcurrency {
                    region: r(),
                    memory_gb: 2,
                },
                usd("0.00001"),
            )
            .price_override(PriceKey::serverless("us-east-1", 2), usd("0.00004"))
            .price_override(PriceKey::DataIn { region: r() }, usd("0.016"))
            .price_override(PriceKey::DataOut { region: r() }, usd("0.016"))
            .build_meter()
            .unwrap();
        let prepared = meter
            .prepare_now("pc", meter.now())
            .expect("the profile and rates are at hand");
        let begin = {
            let meter = meter.clone();
            move || {
                let request = CallRequest::new(&Some("pc".into()), None, BTreeMap::new());
                let Ok(call) = Call::begin::<super::super::invoke::InvokeEndpointOperation>(
                    &meter, request, None,
                ) else {
                    panic!("the call begins");
                };
                call.in_flight.into_parts().0
            }
        };
        (meter, prepared, begin)
    }

    /// The compute line's cost on `cost`.
    fn compute_usd(cost: &Cost) -> rust_decimal::Decimal {
        let line = cost.lines.iter().find(|l| l.item == LineItem::Compute);
        line.and_then(|l| l.cost_usd()).unwrap()
    }

    /// On [`provisioned_meter`]'s `pc`.
    #[tokio::test]
    async fn a_call_that_finds_the_provisioned_slot_free_is_billed_on_it_whatever_runs_on_demand() {
        let (meter, prepared, begin) = provisioned_meter();
        // Each call answered `took_ms` after its request, which went out as it
        // began.
        let finish = |parts: CallParts, took_ms: u64| {
            parts
                .attempts
                .attempt_ended(1, AttemptEnd::AnsweredOk, ms(took_ms));
            let usage = parts.usage(Duration::from_millis(took_ms));
            parts
                .finish(usage, None, Vec::new(), meter.now())
                .price(&prepared, Phase::Whole)
        };
        // A runs 0–1.0 s, B 0.5–2.0 s, C 1.2–1.7 s (in that order of events).
        let (a, b, c) = (begin(), begin(), begin());
        assert!(a.attempts.attempt_sent(1, 0));
        assert!(b.attempts.attempt_sent(1, 0));
        let a = finish(a, 1_000);
        assert!(c.attempts.attempt_sent(1, 0));
        let c = finish(c, 500);
        let b = finish(b, 1_500);
        // A on the slot: 1.0 s × 0.0000233 = 0.0000233 USD.
        assert!(!a.is_beyond_provisioned(), "{:?}", a.notes);
        assert_eq!(compute_usd(&a), usd("0.0000233"));
        // B finds A on the one slot: on demand, 1.5 s × 0.00004 = 0.00006 USD.
        assert!(b.is_beyond_provisioned(), "{:?}", b.notes);
        assert!(
            b.notes.iter().any(|n| n.starts_with(
                "the call's first billed attempt went out while the provisioned \
                 concurrency of 1 was all busy (1 calls on it)"
            )),
            "{:?}",
            b.notes
        );
        assert_eq!(compute_usd(&b), usd("0.00006"));
        // C starts at 1.2 s, A's slot free since 1.0 s and B on demand (2 calls
        // were in flight, but 1 on the slot): AWS serves C on the slot,
        // 0.5 s × 0.0000233 = 0.00001165 USD; not 0.5 × 0.00004 = 0.00002.
        assert!(!c.is_beyond_provisioned(), "{:?}", c.notes);
        assert_eq!(compute_usd(&c), usd("0.00001165"));
        // The accrual's allocation holds what the provisioned concurrency
        // served: A and C, 0.0000233 + 0.00001165 = 0.00003495 USD; B's is not.
        for cost in [&c, &b] {
            let accrual = cost
                .accrual
                .as_ref()
                .expect("provisioned concurrency accrues");
            assert_eq!(accrual.allocated_usd, usd("0.00003495"));
        }
    }

    /// On [`provisioned_meter`]'s `pc`: A holds the one slot 0–1.0 s. B's first
    /// attempt, out at 0.5 s, finds it busy and is throttled at 0.51 s (not run,
    /// not billed); the SDK's retry at 1.2 s finds the slot free (A gave it
    /// back at 1.0 s), runs on it, and is answered at 1.7 s. AWS bills the
    /// request that ran, served on the provisioned concurrency: 0.5 s of
    /// inference duration × 0.0000233 USD/s = 0.00001165 USD; not on demand,
    /// 0.5 × 0.00004 = 0.00002 USD, as the throttled attempt's busy slot said.
    #[tokio::test]
    async fn a_retry_on_the_freed_slot_is_billed_on_it_whatever_its_throttled_attempt_found() {
        let (meter, prepared, begin) = provisioned_meter();
        let (a, b) = (begin(), begin());
        // In µs after each call began (A at 0, B at 0.5 s), in order of events.
        assert!(a.attempts.attempt_sent(1, 0));
        assert!(b.attempts.attempt_sent(1, 0));
        b.attempts.attempt_ended(1, AttemptEnd::NotRun, ms(10));
        a.attempts
            .attempt_ended(1, AttemptEnd::AnsweredOk, ms(1_000));
        let usage = a.usage(Duration::from_millis(1_000));
        let a = a
            .finish(usage, None, Vec::new(), meter.now())
            .price(&prepared, Phase::Whole);
        assert!(b.attempts.attempt_sent(2, ms(700)));
        b.attempts
            .attempt_ended(2, AttemptEnd::AnsweredOk, ms(1_200));
        let usage = b.usage(Duration::from_millis(1_200));
        let b = b
            .finish(usage, None, Vec::new(), meter.now())
            .price(&prepared, Phase::Whole);
        // A on the slot: 1.0 s × 0.0000233 = 0.0000233 USD.
        assert_eq!(compute_usd(&a), usd("0.0000233"));
        assert!(!b.is_beyond_provisioned(), "{:?}", b.notes);
        assert!(
            !b.notes.iter().any(|n| n.contains("all busy")),
            "{:?}",
            b.notes
        );
        assert_eq!(compute_usd(&b), usd("0.00001165"));
        // The provisioned concurrency served both: its accrual's allocation is
        // 0.0000233 + 0.00001165 = 0.00003495 USD.
        let accrual = b.accrual.as_ref().expect("provisioned concurrency accrues");
        assert_eq!(accrual.allocated_usd, usd("0.00003495"));
    }

    /// Endpoint `ab`: variant A on 1 × ml.m5.xlarge at weight 1, B on 1 ×
    /// ml.m5.xlarge at weight 0 (drained with UpdateEndpointWeightsAndCapacities),
    /// $0.23/h each. Two calls naming no variant run together from 0 to 3,600 s.
    /// SageMaker sends a call naming no variant only to variants of weight above
    /// 0, so both are A's: one instance between two calls, `k` = 1, each
    /// allocated min(1, 1/2) × 1 h = 0.5 instance-hours × $0.23 = $0.115 (not
    /// min(1, 2/2) × 1 h × 0.23 = $0.23 each, as if B's instance took calls).
    /// A accrues 1 × 1 h × $0.23 = $0.23, its receipts 0.115 + 0.115 = $0.23:
    /// utilisation 1 (not 0.46 / 0.23 = 2).
    #[tokio::test]
    async fn a_variant_of_weight_zero_shares_no_call_that_names_no_variant() {
        use aws_smithy_async::test_util::ManualTimeSource;
        let sdk_config = sdk_config();
        let r = || "us-east-1".to_owned();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_788_220_800);
        let time = ManualTimeSource::new(t0);
        let weighted = |name: &str, weight: f32| {
            let mut variant = crate::endpoint::VariantProfile::instance(name, "ml.m5.xlarge", 1);
            variant.weight = Some(weight);
            variant
        };
        let meter = crate::Client::builder(&sdk_config)
            .without_discovery()
            .endpoint_profile(crate::endpoint::EndpointProfile::new(
                "ab",
                vec![weighted("A", 1.0), weighted("B", 0.0)],
            ))
            .time_source(SharedTimeSource::new(time.clone()))
            .price_override(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), usd("0.23"))
            .price_override(PriceKey::DataIn { region: r() }, usd("0.016"))
            .price_override(PriceKey::DataOut { region: r() }, usd("0.016"))
            .build_meter()
            .unwrap();
        let prepared = meter
            .prepare_now("ab", t0)
            .expect("the profile and rates are at hand");
        let begin = || {
            let request = CallRequest::new(&Some("ab".into()), None, BTreeMap::new());
            let Ok(call) =
                Call::begin::<super::super::invoke::InvokeEndpointOperation>(&meter, request, None)
            else {
                panic!("the call begins");
            };
            call.in_flight.into_parts().0
        };
        let (first, second) = (begin(), begin());
        assert!(first.attempts.attempt_sent(1, 0));
        assert!(second.attempts.attempt_sent(1, 0));
        time.advance(Duration::from_secs(3600));
        let finish = |parts: CallParts| {
            let took = Duration::from_secs(3600);
            let took_us = u64::try_from(took.as_micros()).unwrap();
            parts
                .attempts
                .attempt_ended(1, AttemptEnd::AnsweredOk, took_us);
            let mut usage = parts.usage(took);
            // SageMaker names the variant that served it (InvokedProductionVariant).
            usage.variant = Some("A".into());
            parts
                .finish(usage, None, Vec::new(), meter.now())
                .price(&prepared, Phase::Whole)
        };
        let (first, second) = (finish(first), finish(second));
        for cost in [&first, &second] {
            let compute = cost.lines.iter().find(|l| l.item == LineItem::Compute);
            assert_eq!(
                compute.and_then(|l| l.cost_usd()),
                Some(usd("0.115")),
                "{cost:?}"
            );
        }
        let accrual = second.accrual.as_ref().expect("A accrues");
        assert_eq!(accrual.accrued_usd, usd("0.23"));
        assert_eq!(accrual.allocated_usd, usd("0.23"));
        assert_eq!(accrual.utilisation, Some(rust_decimal::Decimal::ONE));
    }

    #[tokio::test]
    async fn serverless_bills_each_attempt_that_reached_the_model_rounded_up_on_its_own() {
        let (meter, prepared, parts) =
            begun_on_serverless::<super::super::invoke::InvokeEndpointOperation>();
        // Three attempts answered with ModelError, 50.3 ms each, 100 ms apart
        // (the SDK's back-off).
        for (n, sent) in (1..).zip([0, 150_300, 300_600]) {
            assert!(parts.attempts.attempt_sent(n, sent));
            parts
                .attempts
                .attempt_ended(n, AttemptEnd::ModelError, sent + 50_300);
        }
        let mut usage = parts.usage(Duration::from_micros(351_000));
        usage.outcome = Outcome::Error;
        let cost = parts
            .finish(usage, None, Vec::new(), meter.now())
            .price(&prepared, Phase::Whole);
        assert_eq!(cost.usage.attempts, 3);
        assert_eq!(cost.usage.latency, Duration::from_micros(150_900));
        // AWS bills each request rounded up to the millisecond: 3 × 51 ms =
        // 0.153 s, × 0.00006 USD/s = 0.00000918 USD; not the 150.9 ms together
        // rounded up once, 0.151 s × 0.00006 = 0.00000906.
        let compute = cost
            .lines
            .iter()
            .find(|l| l.item == LineItem::Compute)
            .unwrap();
        assert_eq!(compute.quantity, usd("0.153"));
        assert_eq!(compute.cost_usd(), Some(usd("0.00000918")));
    }

    #[test]
    fn one_attempt_is_billed_from_its_request_not_from_the_calls_start() {
        // 1.5 s resolving credentials (or waiting on an adaptive rate limiter),
        // then the request: answered 2 ms later. Billed: 2 ms.
        let probe = fed(&[(ms(1_500), ms(1_502), AttemptEnd::AnsweredOk)]);
        let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_micros(1_502_100));
        let mut notes = Vec::new();
        let billed = bill_attempts(&mut usage, &probe, &mut notes);
        assert_eq!(usage.latency, Duration::from_millis(2));
        assert_eq!(usage.attempts, 1);
        assert!(notes.is_empty(), "{notes:?}");
        // Its processor share is its attempt's, and serverless bills its latency
        // rounded up.
        assert!(!billed.latest_only);
        assert_eq!(billed.serverless_ms, None);
    }

    #[test]
    fn an_attempt_that_timed_out_is_billed_until_its_timeout_not_until_the_calls_end() {
        // One attempt out at 1 ms, timed out at 301 ms; the SDK backs off for 2 s
        // and its operation timeout fires at 900 ms (or the caller drops the call
        // then): billed 300 ms, the attempt until its timeout.
        let probe = fed(&[(ms(1), ms(301), AttemptEnd::TimedOut)]);
        for operation in [
            Operation::InvokeEndpoint,
            // Timed out before its headers: nothing ran on after them.
            Operation::InvokeEndpointWithResponseStream,
        ] {
            let mut usage = Usage::new(operation, Duration::from_millis(900));
            bill_attempts(&mut usage, &probe, &mut Vec::new());
            assert_eq!(usage.latency, Duration::from_millis(300), "{operation}");
        }
        // Two attempts: the second (out at 1,301 ms, timed out at 1,601 ms) is not
        // stretched to the operation timeout at 2,000 ms either: 600 ms.
        let probe = fed(&[
            (ms(1), ms(301), AttemptEnd::TimedOut),
            (ms(1_301), ms(1_601), AttemptEnd::TimedOut),
        ]);
        let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_secs(2));
        bill_attempts(&mut usage, &probe, &mut Vec::new());
        assert_eq!(usage.latency, Duration::from_millis(600));
    }

    #[test]
    fn a_throttled_attempt_then_a_success_bills_the_success_alone() {
        // Attempt 1 out at 0, throttled at 10 ms; the SDK backs off 100 ms;
        // attempt 2 out at 110 ms, answered at 160 ms, the call's end.
        let probe = fed(&[
            (0, ms(10), AttemptEnd::NotRun),
            (ms(110), ms(160), AttemptEnd::AnsweredOk),
        ]);
        let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_millis(160));
        let mut notes = Vec::new();
        let billed = bill_attempts(&mut usage, &probe, &mut notes);
        // Billed: the success's 50 ms, not the throttled attempt nor the back-off.
        assert_eq!(usage.latency, Duration::from_millis(50));
        assert_eq!(usage.attempts, 2);
        assert_eq!(
            notes,
            ["2 attempts: 1 reached the model and are billed, 1 were not"]
        );
        // The success's share, not the latest's alone.
        assert!(!billed.latest_only);
        // One attempt billed: serverless bills the latency rounded up.
        assert_eq!(billed.serverless_ms, None);
    }

    #[test]
    fn a_streams_time_is_its_end_rounded_up_to_the_microsecond_less_its_request() {
        // A stream's request out at 0 µs, its headers at 2 ms, its last part at
        // 800.0005 ms: it ran 800,000.5 µs, stated rounded up as 800,001 µs
        // (an upper bound, as every latency is), billed by serverless as 801 ms
        // (0.801 s), not 800,000 µs and 0.800 s, which would bill less than the
        // stream ran and less than its time to first byte, measured from the
        // same request and rounded up, can state.
        let probe = fed(&[(0, ms(2), AttemptEnd::AnsweredOk)]);
        let model = probe.model_time(Duration::from_nanos(800_000_500), true);
        assert_eq!(model.attempts, 1);
        assert_eq!(model.time, Duration::from_micros(800_001));
        assert_eq!(model.serverless_ms, 801);
        // A call dropped mid-attempt likewise: out at 0, dropped at 350.0001 ms.
        let probe = AttemptProbe::new(Instant::now());
        assert!(probe.attempt_sent(1, 0));
        let model = probe.model_time(Duration::from_nanos(350_000_100), false);
        assert_eq!(model.time, Duration::from_micros(350_001));
        assert_eq!(model.serverless_ms, 351);
    }

    #[test]
    fn a_call_dropped_mid_attempt_bills_that_attempt_until_the_drop() {
        // Attempt 1 out at 0, answered with a model error at 50.3 ms; attempt 2
        // out at 100 ms, still in flight when the caller drops the call at
        // 350 ms: billed 50.3 ms + 250 ms = 300.3 ms.
        let probe = AttemptProbe::new(Instant::now());
        assert!(probe.attempt_sent(1, 0));
        probe.attempt_ended(1, AttemptEnd::ModelError, 50_300);
        assert!(probe.attempt_sent(2, ms(100)));
        let model = probe.model_time(Duration::from_millis(350), false);
        assert_eq!(model.attempts, 2);
        assert_eq!(model.time, Duration::from_micros(300_300));
        // Serverless: 51 ms (50.3 rounded up) + 250 ms = 301 ms.
        assert_eq!(model.serverless_ms, 51 + 250);
        let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_millis(350));
        usage.outcome = Outcome::Cancelled;
        let billed = bill_attempts(&mut usage, &probe, &mut Vec::new());
        assert_eq!(usage.latency, Duration::from_micros(300_300));
        assert_eq!(billed.serverless_ms, Some(301));
    }

    #[test]
    fn attempts_none_of_which_reached_the_model_bill_the_latest_from_its_request() {
        // 1.5 s for credentials, then one request, answered at 1,502 ms with a
        // status the probe does not take for the model's (a proxy's 500 for a
        // model error), though the call's error says the model ran: billed from
        // that request to the call's end at 1,502.1 ms, 2.1 ms; not 1,502.1 ms.
        let probe = fed(&[(ms(1_500), ms(1_502), AttemptEnd::NotRun)]);
        let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_micros(1_502_100));
        let billed = bill_attempts(&mut usage, &probe, &mut Vec::new());
        assert_eq!(usage.latency, Duration::from_micros(2_100));
        // And its share: that attempt's.
        assert!(billed.latest_only);
        // Two such attempts (the SDK retried the proxy's 500): out at 0 and
        // 110 ms, the call's end at 160.1 ms. Billed: the latest, 50.1 ms, and
        // the note says so, not that none is billed.
        let probe = fed(&[
            (0, ms(10), AttemptEnd::NotRun),
            (ms(110), ms(160), AttemptEnd::NotRun),
        ]);
        let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_micros(160_100));
        let mut notes = Vec::new();
        let billed = bill_attempts(&mut usage, &probe, &mut notes);
        assert_eq!(usage.latency, Duration::from_micros(50_100));
        assert!(billed.latest_only);
        assert!(
            !notes
                .iter()
                .any(|n| n.contains("0 reached the model and are billed")),
            "{notes:?}"
        );
        assert_eq!(
            notes,
            [
                "2 attempts: none was seen reaching the model, though the call's error says \
                 it ran: the latest is billed, from its request to the call's end"
            ]
        );
    }

    #[tokio::test]
    async fn a_timed_out_attempt_then_a_stream_bills_both_on_serverless() {
        let (meter, prepared, parts) =
            begun_on_serverless::<super::super::stream::ResponseStreamOperation>();
        // Attempt 1 out at 0, timed out after sending at 300.2 ms; attempt 2 out
        // at 400 ms, its headers at 450 ms, its stream's last part at 1,400.5 ms.
        assert!(parts.attempts.attempt_sent(1, 0));
        parts
            .attempts
            .attempt_ended(1, AttemptEnd::TimedOut, 300_200);
        assert!(parts.attempts.attempt_sent(2, ms(400)));
        parts
            .attempts
            .attempt_ended(2, AttemptEnd::AnsweredOk, ms(450));
        let usage = parts.usage(Duration::from_micros(1_400_500));
        let cost = parts
            .finish(usage, None, Vec::new(), meter.now())
            .price(&prepared, Phase::Whole);
        // The timed-out attempt until its timeout (300.2 ms), the stream from its
        // request to its end (1,000.5 ms): 1,300.7 ms.
        assert_eq!(cost.usage.latency, Duration::from_micros(1_300_700));
        assert_eq!(cost.usage.attempts, 2);
        // Serverless, each attempt rounded up to the millisecond on its own:
        // 301 ms + 1,001 ms = 1.302 s × 0.00006 USD/s = 0.00007812 USD; not the
        // 1,300.7 ms together rounded up once (1.301 s), nor the stream's attempt
        // only until its headers (301 + 50 ms), nor the call's 1,400.5 ms.
        let compute = cost
            .lines
            .iter()
            .find(|l| l.item == LineItem::Compute)
            .unwrap();
        assert_eq!(compute.quantity, usd("1.302"));
        assert_eq!(compute.cost_usd(), Some(usd("0.00007812")));
        assert!(
            cost.notes
                .iter()
                .any(|n| n.starts_with("1 of the attempts timed out after the request was sent")),
            "{:?}",
            cost.notes
        );
    }

    /// An async submission of `bytes_in` bytes begun on [`serverless_meter`]'s
    /// `sls`, with a Marketplace fee of 0.50 USD per 1,000 inferences on it: the
    /// meter, its rates, and the call's parts to feed attempts to.
    fn async_submission_begun(bytes_in: u64) -> (Meter, Arc<Prepared>, CallParts) {
        async_submission_begun_on(bytes_in, |builder| builder)
    }

    /// [`async_submission_begun`], its meter's builder finished by `more`.
    fn async_submission_begun_on(
        bytes_in: u64,
        more: impl FnOnce(crate::ClientBuilder) -> crate::ClientBuilder,
    ) -> (Meter, Arc<Prepared>, CallParts) {
        let builder = serverless_builder().usage_charges(
            "sls",
            crate::billing::UsageCharges::default().per_1000_calls(usd("0.50")),
        );
        let meter = more(builder).build_meter().unwrap();
        let prepared = meter
            .prepare_now("sls", meter.now())
            .expect("the profile and rates are at hand");
        let request = CallRequest::new(&Some("sls".into()), None, BTreeMap::new())
            .input_bytes(Some(bytes_in));
        let Ok(call) =
            Call::begin::<super::super::async_invoke::AsyncOperation>(&meter, request, None)
        else {
            panic!("the call begins");
        };
        (meter, prepared, call.in_flight.into_parts().0)
    }

    /// The receipt of an async submission of `bytes_in` B, accepted: its
    /// attempt 1, out at 0, ended `first` at `first_at` µs, and its attempt 2,
    /// out at 120 ms, was answered 202 at 140 ms.
    fn submitted_on_attempt_2(bytes_in: u64, first: AttemptEnd, first_at: u64) -> Cost {
        let (meter, prepared, parts) = async_submission_begun(bytes_in);
        submitted_on_attempt_2_of(&meter, &prepared, parts, first, first_at).0
    }

    /// [`submitted_on_attempt_2`] of the submission `parts` begun on `meter`,
    /// with how many attempts may have queued its input.
    fn submitted_on_attempt_2_of(
        meter: &Meter,
        prepared: &Arc<Prepared>,
        parts: CallParts,
        first: AttemptEnd,
        first_at: u64,
    ) -> (Cost, u32) {
        assert!(parts.attempts.attempt_sent(1, 0));
        parts.attempts.attempt_ended(1, first, first_at);
        assert!(parts.attempts.attempt_sent(2, ms(120)));
        parts
            .attempts
            .attempt_ended(2, AttemptEnd::AnsweredOk, ms(140));
        let usage = parts.usage(Duration::from_millis(140));
        let to_price = parts.finish(usage, None, Vec::new(), meter.now());
        let may_have_queued = to_price.call.may_have_queued;
        (to_price.price(prepared, Phase::Submitted), may_have_queued)
    }

    #[tokio::test]
    async fn an_async_submission_accepted_twice_bills_both_inputs_queued() {
        // 2²⁹ B in S3. Attempt 1 out at 0, answered 202 at 20 ms but its body
        // cut off: SageMaker queued the input, and the SDK tries again (a
        // transient response error), with no idempotency token; attempt 2, out at
        // 120 ms, is answered 202 at 140 ms: queued a second time.
        let cost = submitted_on_attempt_2(1 << 29, AttemptEnd::AnsweredCutOff(None), ms(20));
        // AWS processes both queued inputs: 2 × 2²⁹ B = 2³⁰ B = 1 GB × 0.016
        // USD/GB = 0.016 USD (not 0.5 GB, 0.008 USD).
        assert_eq!(cost.usage.bytes_in, 1 << 30);
        let line = |item| cost.lines.iter().find(|l| l.item == item).unwrap();
        assert_eq!(line(LineItem::DataIn).quantity, usd("1"));
        assert_eq!(line(LineItem::DataIn).cost_usd(), Some(usd("0.016")));
        // And an inference for each 202: 2 × 0.50 / 1,000 = 0.001 USD.
        assert_eq!(line(LineItem::Inference).cost_usd(), Some(usd("0.001")));
        assert_eq!(cost.cost_usd, usd("0.017"));
        assert!(
            cost.notes.iter().any(|n| n.starts_with(
                "2 attempts: 2 accepted by SageMaker (a 2XX answer, one whose body was cut off \
                 included)"
            )),
            "{:?}",
            cost.notes
        );
        // Neither attempt is said not to be billed, nor to have timed out.
        assert!(
            !cost
                .notes
                .iter()
                .any(|n| n.contains("were not") || n.contains("timed out")),
            "{:?}",
            cost.notes
        );
        // Both jobs run, but only attempt 2's output location is known: attempt
        // 1's job (its compute and data out) is never settled, and the receipt
        // says so, as one accepted then failed does.
        assert!(
            cost.notes
                .iter()
                .any(|n| n == super::super::async_invoke::ACCEPTED_MORE_THAN_ONCE_NOTE),
            "{:?}",
            cost.notes
        );
        assert!(crate::billing::is_never_settled(
            cost.notes.iter().map(String::as_str)
        ));
    }

    /// An enforced budget of 1 USD a day on `sls`, estimating a call at 0.05 USD.
    fn enforced_at_five_cents_a_call() -> crate::budget::Budget {
        use crate::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
        Budget::enforce(BudgetScope::endpoint("sls"), BudgetPeriod::Day, usd("1"))
            .unwrap()
            .estimate(Estimate::Fixed { usd: usd("0.05") })
            .unwrap()
    }

    /// What `meter`'s enforced budget has spent and holds reserved, in USD.
    fn enforced_spent_and_reserved(
        meter: &Meter,
    ) -> (rust_decimal::Decimal, rust_decimal::Decimal) {
        let status = meter.budget_status();
        let status = status
            .iter()
            .find(|s| s.mode == crate::budget::BudgetMode::Enforce)
            .unwrap();
        (status.spent_usd, status.reserved_usd)
    }

    #[tokio::test]
    async fn an_async_submission_accepted_twice_counts_its_unsettled_job_at_its_estimate() {
        // 2²⁹ B in S3, an enforced budget estimating a call at 0.05 USD. Attempt 1
        // out at 0, answered 202 at 20 ms, its body cut off; attempt 2, out at
        // 120 ms, answered 202 at 140 ms. The submission's receipt is made as
        // `invoke_endpoint_async` makes it: its reservation taken out first, to
        // stay held for attempt 2's job until its settlement.
        let (meter, prepared, mut parts) = async_submission_begun_on(1 << 29, |builder| {
            builder.budget(enforced_at_five_cents_a_call())
        });
        let mut hold = parts.reservation.take().expect("the call is reserved");
        let (cost, may_have_queued) = submitted_on_attempt_2_of(
            &meter,
            &prepared,
            parts,
            AttemptEnd::AnsweredCutOff(None),
            ms(20),
        );
        meter.settle_part(&mut hold, &cost, &prepared, may_have_queued, meter.now());
        // The submission: 2 × 0.5 GB × 0.016 USD/GB = 0.016 USD of data in, and
        // 2 × 0.50 / 1,000 = 0.001 USD of fees: 0.017 USD, spent; attempt 2's
        // job still holds the rest of its estimate, 0.05 − 0.017 = 0.033 USD,
        // until its settlement. Attempt 1's job, never settled, counts at its
        // estimate, 0.05 USD, as one accepted then failed does: 0.017 + 0.05 =
        // 0.067 USD spent (not 0.017, as if it cost nothing).
        assert_eq!(cost.cost_usd, usd("0.017"));
        assert_eq!(
            enforced_spent_and_reserved(&meter),
            (usd("0.067"), usd("0.033"))
        );
    }

    #[tokio::test]
    async fn an_async_submission_refused_once_bounds_one_input_of_unstated_size() {
        use crate::budget::{Budget, BudgetMode, BudgetPeriod, BudgetScope, Estimate, Priced};
        // us-east-1, an input in S3 of unstated size, no per-inference fee, an
        // enforced budget estimating a job at 0.05 USD. Attempt 1 out at 0,
        // refused (503) at 20 ms: SageMaker queued nothing; attempt 2, out at
        // 120 ms, answered 202 at 140 ms: queued once.
        let meter = serverless_builder()
            .budget(
                Budget::enforce(BudgetScope::endpoint("sls"), BudgetPeriod::Day, usd("10"))
                    .unwrap()
                    .estimate(Estimate::Fixed { usd: usd("0.05") })
                    .unwrap(),
            )
            .build_meter()
            .unwrap();
        let prepared = meter
            .prepare_now("sls", meter.now())
            .expect("the profile and rates are at hand");
        let request = CallRequest::new(&Some("sls".into()), None, BTreeMap::new());
        let Ok(call) =
            Call::begin::<super::super::async_invoke::AsyncOperation>(&meter, request, None)
        else {
            panic!("the call begins");
        };
        let mut parts = call.in_flight.into_parts().0;
        let mut hold = parts.reservation.take().expect("the call is reserved");
        let (cost, may_have_queued) =
            submitted_on_attempt_2_of(&meter, &prepared, parts, AttemptEnd::NotRun, ms(20));
        assert_eq!(cost.usage.attempts, 2);
        meter.settle_part(&mut hold, &cost, &prepared, may_have_queued, meter.now());
        // The job settled at 0.05 USD of compute, fully priced.
        let _ = hold.settle(&cost.tags, usd("0.05"), Priced::Fully, meter.now().into());
        // The submission's data in is at most one 1 GB input × 0.016 USD/GB =
        // 0.016 USD (the 503 queued nothing), and the job 0.05 USD: 0.066 USD
        // spent, not 2 × 0.016 + 0.05 = 0.082 USD.
        let status = meter.budget_status();
        let status = status
            .iter()
            .find(|s| s.mode == BudgetMode::Enforce)
            .unwrap();
        assert_eq!(
            (status.spent_usd, status.reserved_usd),
            (usd("0.066"), usd("0"))
        );
    }

    #[tokio::test]
    async fn an_async_submission_after_a_timed_out_attempt_bills_one_input_at_least() {
        // 2²⁹ B. Attempt 1 out at 0, timed out after sending at 100 ms (SageMaker
        // may or may not have queued it: nobody knows); attempt 2, out at 120 ms,
        // answered 202 at 140 ms.
        let cost = submitted_on_attempt_2(1 << 29, AttemptEnd::TimedOut, ms(100));
        // The accepted one, seen: 0.5 GB × 0.016 USD/GB = 0.008 USD, and one
        // inference, 0.50 / 1,000 = 0.0005 USD; at least that.
        assert_eq!(cost.usage.bytes_in, 1 << 29);
        assert_eq!(cost.cost_usd, usd("0.0085"));
        assert!(
            cost.notes
                .iter()
                .any(|n| n.starts_with("2 attempts: 1 accepted by SageMaker")),
            "{:?}",
            cost.notes
        );
        assert!(
            cost.notes.iter().any(|n| n
                == "1 of the attempts timed out after the request was sent: SageMaker may have \
                    queued them as well, unbilled here, so data in and the per-inference fee \
                    are a lower bound"),
            "{:?}",
            cost.notes
        );
        assert!(
            !cost.notes.iter().any(|n| n.contains("were not")),
            "{:?}",
            cost.notes
        );
    }

    /// Every receipt a meter makes, kept.
    #[derive(Debug, Default, Clone)]
    struct Kept(Arc<std::sync::Mutex<Vec<Cost>>>);

    impl crate::sink::CostSink for Kept {
        fn record(&self, cost: &Cost) {
            self.0.lock().unwrap().push(cost.clone());
        }
    }

    /// A call dropped in flight by a panic in the caller's code, inside a
    /// `current_thread` runtime's `block_on`: its receipt, made while the
    /// thread unwinds, is handed to a background task, which the runtime,
    /// dropped by the same panic, drops unrun. The sinks get it all the same
    /// (they got nothing, and nothing counted it missing, while the totals
    /// and budgets had it).
    #[test]
    fn a_call_dropped_by_a_panic_that_drops_its_runtime_still_reaches_the_sinks() {
        let kept = Kept::default();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let meter = serverless_builder()
                    .sink(kept.clone())
                    .build_meter()
                    .unwrap();
                let request = CallRequest::new(&Some("sls".into()), None, BTreeMap::new());
                let Ok(call) = Call::begin::<super::super::invoke::InvokeEndpointOperation>(
                    &meter, request, None,
                ) else {
                    panic!("the call begins");
                };
                assert!(call.in_flight.parts().attempts.attempt_sent(1, 0));
                panic!("the caller's code panics while its call is in flight");
            })
        }));
        assert!(unwound.is_err());
        let receipts = kept.0.lock().unwrap().clone();
        assert_eq!(receipts.len(), 1, "{receipts:#?}");
        assert_eq!(receipts[0].usage.operation, Operation::InvokeEndpoint);
        assert_eq!(receipts[0].usage.outcome, Outcome::Cancelled);
    }

    #[tokio::test]
    async fn an_async_submission_dropped_while_retrying_an_accepted_attempt_is_billed() {
        // 2²⁹ B in S3, an enforced budget estimating a call at 0.05 USD. Attempt 1
        // out at 0, answered 202 at 20 ms but its body cut off: SageMaker queued
        // the input. The SDK tries again: attempt 2 is out at 120 ms when the
        // caller drops the call (a timeout, Ctrl-C).
        let kept = Kept::default();
        let (meter, _, parts) = async_submission_begun_on(1 << 29, |builder| {
            builder
                .sink(kept.clone())
                .budget(enforced_at_five_cents_a_call())
        });
        assert!(parts.attempts.attempt_sent(1, 0));
        parts
            .attempts
            .attempt_ended(1, AttemptEnd::AnsweredCutOff(None), ms(20));
        assert!(parts.attempts.attempt_sent(2, ms(120)));
        drop(CallInFlight::new(parts));
        // The accepted submission is queued, whatever became of its caller: one
        // input, 2²⁹ B / 2³⁰ B/GB = 0.5 GB × 0.016 USD/GB = 0.008 USD, and one
        // inference, 0.50 USD / 1,000 = 0.0005 USD: 0.0085 USD (its compute
        // runs too, unseen).
        let receipts = kept.0.lock().unwrap().clone();
        assert_eq!(receipts.len(), 1, "{receipts:#?}");
        let cost = &receipts[0];
        assert_eq!(cost.usage.operation, Operation::InvokeEndpointAsync);
        assert_eq!(cost.usage.outcome, Outcome::Error);
        assert_eq!(cost.usage.bytes_in, 1 << 29);
        assert_eq!(cost.cost_usd, usd("0.0085"));
        for note in [
            super::super::async_invoke::ACCEPTED_THEN_FAILED_NOTE,
            super::super::async_invoke::DROPPED_SUBMISSION_NOTE,
        ] {
            assert!(cost.notes.iter().any(|n| n == note), "{:?}", cost.notes);
        }
        // Its reservation is settled on it, not released at 0 USD: the enforced
        // budget counts it at no less than its 0.05 USD estimate (no settlement
        // will bill its compute), and holds nothing more.
        assert_eq!(
            enforced_spent_and_reserved(&meter),
            (usd("0.05"), rust_decimal::Decimal::ZERO)
        );
    }

    #[tokio::test]
    async fn an_async_submission_dropped_after_an_attempt_timed_out_counts_at_its_estimate() {
        // 2²⁹ B in S3, an enforced budget estimating a call at 0.05 USD.
        // Attempt 1 out at 0, timed out after sending at 500 ms: SageMaker may
        // have queued the job (its 202 lost with the attempt). The caller drops
        // the call while the SDK backs off.
        let kept = Kept::default();
        let (meter, _, parts) = async_submission_begun_on(1 << 29, |builder| {
            builder
                .sink(kept.clone())
                .budget(enforced_at_five_cents_a_call())
        });
        assert!(parts.attempts.attempt_sent(1, 0));
        parts
            .attempts
            .attempt_ended(1, AttemptEnd::TimedOut, ms(500));
        drop(CallInFlight::new(parts));
        // No receipt: nothing is known to have been billed.
        assert!(kept.0.lock().unwrap().is_empty());
        // The reservation counts at its 0.05 USD estimate, nothing held (no
        // settlement will come for the job); not released, (0, 0), as if the
        // job could not have been queued.
        assert_eq!(
            enforced_spent_and_reserved(&meter),
            (usd("0.05"), rust_decimal::Decimal::ZERO)
        );
    }

    #[tokio::test]
    async fn a_dropped_async_submission_counts_at_its_estimate_on_a_default_tag_budget() {
        // As above, the budget a tag one, `team` = `search`, which the call has
        // only through the client's default tags: the reservation was taken on
        // it, so the timed-out submission counts there at its 0.05 USD estimate
        // and as one call not fully priced (released from it at (0, 0), four
        // such submissions a day could go on queueing past its $1).
        use crate::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
        let (meter, _, parts) = async_submission_begun_on(1 << 29, |builder| {
            builder.default_tag("team", "search").budget(
                Budget::enforce(
                    BudgetScope::tag("team", "search"),
                    BudgetPeriod::Day,
                    usd("1"),
                )
                .unwrap()
                .estimate(Estimate::Fixed { usd: usd("0.05") })
                .unwrap(),
            )
        });
        assert!(parts.attempts.attempt_sent(1, 0));
        parts
            .attempts
            .attempt_ended(1, AttemptEnd::TimedOut, ms(500));
        drop(CallInFlight::new(parts));
        assert_eq!(
            enforced_spent_and_reserved(&meter),
            (usd("0.05"), rust_decimal::Decimal::ZERO)
        );
        assert_eq!(meter.budget_status()[0].unpriced_calls, 1);
    }

    #[tokio::test]
    async fn an_async_submission_dropped_with_an_attempt_in_flight_counts_at_its_estimate() {
        // As above, but attempt 1, out at 0, is still in flight when the caller
        // drops the call: SageMaker may have queued it.
        let (meter, _, parts) = async_submission_begun_on(1 << 29, |builder| {
            builder.budget(enforced_at_five_cents_a_call())
        });
        assert!(parts.attempts.attempt_sent(1, 0));
        drop(CallInFlight::new(parts));
        assert_eq!(
            enforced_spent_and_reserved(&meter),
            (usd("0.05"), rust_decimal::Decimal::ZERO)
        );
    }

    #[tokio::test]
    async fn each_attempt_of_an_unanswered_async_submission_that_may_have_queued_counts() {
        // As the two above, the SDK retrying: attempts 1 and 2 each timed out after
        // sending (at 500 ms and at 1,100 ms), attempt 3 is in flight when the
        // caller drops the call. Each may have queued a job, as a receipt's
        // accepted attempts each count one: 3 x 0.05 = 0.15 USD, nothing held
        // (counted as one, 0.05, the budget would let two more jobs queue
        // per submission than it counts).
        let (meter, _, parts) = async_submission_begun_on(1 << 29, |builder| {
            builder.budget(enforced_at_five_cents_a_call())
        });
        assert!(parts.attempts.attempt_sent(1, 0));
        parts
            .attempts
            .attempt_ended(1, AttemptEnd::TimedOut, ms(500));
        assert!(parts.attempts.attempt_sent(2, 600_000));
        parts
            .attempts
            .attempt_ended(2, AttemptEnd::TimedOut, ms(1_100));
        assert!(parts.attempts.attempt_sent(3, 1_200_000));
        drop(CallInFlight::new(parts));
        assert_eq!(
            enforced_spent_and_reserved(&meter),
            (usd("0.15"), rust_decimal::Decimal::ZERO)
        );
    }

    #[tokio::test]
    async fn async_submissions_that_time_out_count_at_their_estimate_so_the_fifth_is_refused() {
        use crate::budget::{Budget, BudgetPeriod, BudgetScope, Estimate};
        use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::{
            InvokeEndpointAsyncError, InvokeEndpointAsyncOutput,
        };
        // $1.00 a day on the async endpoint, each job estimated at a fixed
        // $0.25 (a job runs up to 600 s on an ml.g5.xlarge, $1.408 an hour:
        // 600 / 3,600 × 1.408 = $0.2347). Every submission's 202 comes after
        // the SDK's 500 ms timeout: the SDK gives up after sending, and
        // SageMaker may have queued each job all the same.
        let meter = serverless_builder()
            .budget(
                Budget::enforce(BudgetScope::endpoint("sls"), BudgetPeriod::Day, usd("1"))
                    .unwrap()
                    .estimate(Estimate::Fixed { usd: usd("0.25") })
                    .unwrap(),
            )
            .build_meter()
            .unwrap();
        let prepared = meter
            .prepare_now("sls", meter.now())
            .expect("the profile and rates are at hand");
        let submit = || {
            let request = CallRequest::new(&Some("sls".into()), None, BTreeMap::new())
                .input_bytes(Some(1024));
            let call =
                Call::begin::<super::super::async_invoke::AsyncOperation>(&meter, request, None)
                    .ok()?;
            let (parts, span) = call.in_flight.into_parts();
            assert!(parts.attempts.attempt_sent(1, 0));
            parts
                .attempts
                .attempt_ended(1, AttemptEnd::TimedOut, ms(500));
            let answered: Answered<InvokeEndpointAsyncOutput, InvokeEndpointAsyncError> =
                Answered {
                    result: Err(SdkError::timeout_error("the attempt timed out")),
                    latency: Duration::from_millis(500),
                    receipt: Receipt {
                        span,
                        prepared: Rates::Found(prepared.clone()),
                        parts,
                        in_flight_until: None,
                    },
                };
            // The caller gets the SDK's error, no receipt.
            assert!(
                answered
                    .billable::<super::super::async_invoke::AsyncOperation>()
                    .is_err()
            );
            Some(())
        };
        // Each counts at its $0.25 estimate: 4 × 0.25 = $1.00 spent, then
        // 1.00 + 0.25 > 1.00, the fifth refused (released, each would let
        // every submission through, its job maybe queued).
        for n in 1..=4 {
            assert!(submit().is_some(), "submission {n} is admitted");
        }
        assert!(submit().is_none(), "submission 5 is refused");
        assert_eq!(
            enforced_spent_and_reserved(&meter),
            (usd("1"), rust_decimal::Decimal::ZERO)
        );
    }

    #[tokio::test]
    async fn an_async_submission_accepted_after_a_timed_out_attempt_counts_that_job_too() {
        // 2²⁹ B in S3, a Marketplace fee of 0.50 USD per 1,000 inferences, an
        // enforced budget estimating a call at 0.05 USD. Attempt 1 out at 0,
        // timed out after sending at 100 ms (SageMaker may have queued it: a
        // job no settlement will bill); attempt 2, out at 120 ms, answered 202
        // at 140 ms.
        let (meter, prepared, mut parts) = async_submission_begun_on(1 << 29, |builder| {
            builder.budget(enforced_at_five_cents_a_call())
        });
        let mut hold = parts.reservation.take().expect("the call is reserved");
        let (cost, may_have_queued) =
            submitted_on_attempt_2_of(&meter, &prepared, parts, AttemptEnd::TimedOut, ms(100));
        meter.settle_part(&mut hold, &cost, &prepared, may_have_queued, meter.now());
        // The submission: 0.5 GB × 0.016 USD/GB = 0.008 USD of data in, and
        // 0.50 / 1,000 = 0.0005 USD of fee: 0.0085 USD, spent; attempt 2's
        // job holds the rest of its estimate, 0.05 − 0.0085 = 0.0415 USD.
        // Attempt 1's job, maybe queued and never settled, counts at its
        // estimate, 0.05 USD: 0.0085 + 0.05 = 0.0585 USD spent (not 0.0085).
        assert_eq!(cost.cost_usd, usd("0.0085"));
        assert_eq!(
            enforced_spent_and_reserved(&meter),
            (usd("0.0585"), usd("0.0415"))
        );
    }

    /// A call's data out and notes when its first attempt, out at 0, was answered
    /// 200 at 10 ms stating `stated` (`Content-Length`), its body cut off, and the
    /// SDK's retry, out at 20 ms, answered 2 B at 30 ms.
    fn cut_off_then_answered_2_bytes(stated: Option<u64>) -> (u64, Vec<String>) {
        let probe = fed(&[
            (0, ms(10), AttemptEnd::AnsweredCutOff(stated)),
            (ms(20), ms(30), AttemptEnd::AnsweredOk),
        ]);
        let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_millis(30));
        usage.bytes_out = 2;
        let mut notes = Vec::new();
        bill_attempts(&mut usage, &probe, &mut notes);
        (usage.bytes_out, notes)
    }

    #[test]
    fn a_success_cut_off_bills_its_stated_length_out_or_says_data_out_is_a_lower_bound() {
        // One attempt, out at 0, answered 200 at 10 ms stating 100 B, its body
        // cut off; the call failed (no retry): SageMaker sent the 100 B all the
        // same, data out, though no body was read.
        let probe = fed(&[(0, ms(10), AttemptEnd::AnsweredCutOff(Some(100)))]);
        let mut usage = Usage::new(Operation::InvokeEndpoint, Duration::from_millis(10));
        let mut notes = Vec::new();
        bill_attempts(&mut usage, &probe, &mut notes);
        assert_eq!(usage.bytes_out, 100);
        assert_eq!(
            notes,
            [
                "data out includes the response of each of the 1 attempt(s) answered 2XX whose \
              body was cut off, at its Content-Length: SageMaker sent it"
            ]
        );
        // Stating no length (a chunked answer), then retried and answered 2 B:
        // only those 2 B are known, and data out is said to be a lower bound.
        let (bytes_out, notes) = cut_off_then_answered_2_bytes(None);
        assert_eq!(bytes_out, 2);
        assert!(
            notes.iter().any(|n| n
                == "1 attempt(s) answered 2XX whose body was cut off stated no Content-Length: \
                    their response is not in data out, which is a lower bound"),
            "{notes:?}"
        );
        // An async submission's cut-off 202 is no data out (its output is, at
        // settlement), whatever it states.
        let probe = fed(&[
            (0, ms(10), AttemptEnd::AnsweredCutOff(Some(100))),
            (ms(20), ms(30), AttemptEnd::AnsweredOk),
        ]);
        let mut usage = Usage::new(Operation::InvokeEndpointAsync, Duration::from_millis(30));
        bill_attempts(&mut usage, &probe, &mut Vec::new());
        assert_eq!(usage.bytes_out, 0);
    }

    /// A 200 cut off stating a length no SageMaker response has (a proxy or an
    /// emulator reached through `AWS_ENDPOINT_URL`, stating
    /// `Content-Length: 18446744073709551615`) is not data out: taken at its
    /// word, 2⁶⁴ − 1 B = 17,179,869,184 GB (of 2³⁰ B) × $0.016 a GB =
    /// $274,877,906.94 on one receipt, poisoning totals and budgets (and more
    /// than the Parquet ledger's i64 holds). SageMaker's responses are at most
    /// 25,000,000 B: its size is taken as not known, as one stating none, and
    /// data out (the retry's 2 B) is said to be a lower bound. One stating
    /// exactly 25,000,000 B is taken at its word.
    #[test]
    fn a_success_cut_off_stating_more_than_any_sagemaker_response_is_not_billed_that_size() {
        let (bytes_out, notes) = cut_off_then_answered_2_bytes(Some(u64::MAX));
        assert_eq!(bytes_out, 2);
        assert!(
            notes.iter().any(|n| n
                == "1 attempt(s) answered 2XX whose body was cut off stated a Content-Length \
                    above 25000000 bytes, more than any SageMaker response: their response \
                    is not in data out, which is a lower bound"),
            "{notes:?}"
        );
        assert!(
            !notes.iter().any(|n| n.starts_with("data out includes")),
            "{notes:?}"
        );
        // At the limit: 25,000,000 B + the retry's 2 B.
        assert_eq!(
            cut_off_then_answered_2_bytes(Some(25_000_000)).0,
            25_000_002
        );
    }

    #[test]
    fn a_stream_is_billed_from_its_request_to_its_end() {
        // Out at 5 ms, headers at 45 ms, its last part at 1,005 ms: billed 1 s,
        // from the request to its end (its attempt ended at its headers).
        let probe = fed(&[(ms(5), ms(45), AttemptEnd::AnsweredOk)]);
        let mut usage = Usage::new(
            Operation::InvokeEndpointWithResponseStream,
            Duration::from_millis(1_005),
        );
        bill_attempts(&mut usage, &probe, &mut Vec::new());
        assert_eq!(usage.latency, Duration::from_secs(1));
    }
}
