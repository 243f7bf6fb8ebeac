//! Metering for a plain SDK client, with no change at the call sites.

use super::async_invoke::{accepted_then_failed, submission_call_id};
use super::call::{
    AttemptProbe, AttemptWatch, CallInFlight, CallParts, failed_outcome, failure_billed,
    finish_in_background, is_model_error_code, timed_out_after_sending,
};
use super::invoke::read_output;
use super::meter::{Meter, Phase, Targets};
use crate::billing::{INTERCEPTOR_NOTE, LineItem};
use crate::budget::Refusal;
use crate::usage::{Operation, Outcome, TokensUnseen};
use aws_sdk_sagemakerruntime::error::ProvideErrorMetadata;
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::{
    InvokeEndpointError, InvokeEndpointInput, InvokeEndpointOutput,
};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::{
    InvokeEndpointAsyncInput, InvokeEndpointAsyncOutput,
};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::{
    InvokeEndpointWithResponseStreamError, InvokeEndpointWithResponseStreamInput,
    InvokeEndpointWithResponseStreamOutput,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef, Input,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// An SDK interceptor that meters every `InvokeEndpoint` made through a plain
/// `aws_sdk_sagemakerruntime::Client`, and counts its other invocations against
/// budgets with an explicit receipt.
///
/// The SDK's output type cannot carry a receipt, so the cost goes to the cost log
/// line, the running totals and the sinks. Pricing runs on a spawned task, off the
/// call path (it needs a Tokio runtime, which the SDK needs anyway).
///
/// `InvokeEndpointWithResponseStream` and `InvokeEndpointAsync` go through the
/// same budgets (reserved before sending, refused when spent), and each makes a
/// receipt when the SDK answers, with data in priced but compute and data out
/// **unpriced**, with the reason: an interceptor does not see how long a stream
/// runs or an async job takes, nor what either finally sends back. Such a receipt counts against budgets at no less
/// than their estimate (an async submission's estimate is so charged when its
/// receipt is made: there is no settlement to release it into), and the first
/// call of each kind logs a WARN. An async submission's receipt is its inference's
/// (call id: the request id, else SageMaker's `InferenceId`), and one whose input is
/// in S3 notes that data in was not billed. Such a stream also leaves its
/// endpoint's sharing clock when its headers arrive: while it runs, calls metered
/// in full on the same endpoint are allocated as if it had ended. Use
/// [`Client::invoke_endpoint_with_response_stream`](crate::Client::invoke_endpoint_with_response_stream)
/// and [`Client::invoke_endpoint_async`](crate::Client::invoke_endpoint_async)
/// to meter them fully.
///
/// The meter's budgets see every call: an enforced budget with no room refuses the
/// call before anything is sent (the SDK's error then has
/// [`Error::BudgetExceeded`](crate::Error::BudgetExceeded) in its source chain:
/// [`Error::find_in`](crate::Error::find_in) finds it), and each receipt is settled
/// against them, alerts included. A fleet budget whose lease is too small cannot be
/// topped up from an SDK hook: such a call is reserved against the budget's whole
/// limit instead (and refused when that has no room).
///
/// **One region.** The meter meters one region's endpoints
/// ([`Meter::endpoint_region`](crate::Meter::endpoint_region)). A request whose
/// configuration is for another region (the SDK client's, or the request's own
/// `config_override`; checked once the request's configuration is whole) is
/// refused before it is sent and before its call begins (nothing reserved, no
/// sharing clock), with an [`Error::Config`](crate::Error::Config) naming both
/// regions in its source chain. This is a deliberate exception, as an enforced
/// budget's refusal is, to the interceptor's leaving inference alone: a call that
/// succeeded without the interceptor fails with it. Let through unmetered, the
/// call would be billed by AWS and missing from the meter's totals, ledgers and
/// budgets; metered, it would be priced at the meter's region's rates, on the
/// meter's endpoint of the same name. Register one interceptor, with its own
/// meter, per region.
///
/// A call dropped after its request went out (a `tokio::time::timeout`, a
/// `select!`, an aborted task) still makes its `cancelled` receipt, as a
/// [`Client`](crate::Client)'s does; an async submission dropped before its
/// answer makes none, as with `Client`: whether SageMaker queued it is not known.
/// Each call is metered once: a request sent by a
/// metered call (a [`Client`](crate::Client) over this SDK client, or
/// `send_metered`) is left to that call, and an interceptor registered twice (on
/// the client and on the request) meters it once.
///
/// ```no_run
/// # async fn run() -> sagemeter::Result<()> {
/// let sdk_config = aws_config::load_from_env().await;
/// let meter = sagemeter::Meter::builder(&sdk_config).build_meter()?;
/// let config = aws_sdk_sagemakerruntime::config::Builder::from(&sdk_config)
///     .interceptor(sagemeter::client::MeteringInterceptor::new(meter.clone()))
///     .build();
/// let sdk = aws_sdk_sagemakerruntime::Client::from_conf(config);
/// // Every sdk.invoke_endpoint()…send() now logs its cost; meter.totals() adds them up.
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MeteringInterceptor {
    meter: Meter,
    /// Whether the WARN about streams, and about async invocations, is logged.
    warned: Arc<[AtomicBool; 2]>,
}

impl MeteringInterceptor {
    /// An interceptor that records into `meter`.
    pub fn new(meter: Meter) -> Self {
        MeteringInterceptor {
            meter,
            warned: Arc::new([AtomicBool::new(false), AtomicBool::new(false)]),
        }
    }

    /// One WARN per operation kind the interceptor cannot meter fully.
    fn warn_once(&self, operation: Operation) {
        let (slot, instead) = match operation {
            Operation::InvokeEndpointWithResponseStream => {
                (0, "Client::invoke_endpoint_with_response_stream")
            }
            Operation::InvokeEndpointAsync => (1, "Client::invoke_endpoint_async"),
            _ => return,
        };
        if !self.warned[slot].swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "sagemeter", operation = operation.as_str(),
                "the SDK interceptor cannot see this operation's compute: its receipts \
                 leave compute unpriced and count against budgets at their estimate; \
                 use sagemeter::{instead} to meter it");
        }
    }
}

/// What the interceptor reads of a request before it is sent.
struct Request<'a> {
    endpoint: &'a str,
    operation: Operation,
    bytes_in: Option<u64>,
    targets: Targets,
}

/// The invocation `input` is (any other SDK operation: `None`).
fn request_of(input: &Input) -> Option<Request<'_>> {
    let len = |b: Option<&aws_sdk_sagemakerruntime::primitives::Blob>| {
        b.map_or(0, |b| b.as_ref().len() as u64)
    };
    if let Some(input) = input.downcast_ref::<InvokeEndpointInput>() {
        return Some(Request {
            endpoint: input.endpoint_name().unwrap_or_default(),
            operation: Operation::InvokeEndpoint,
            bytes_in: Some(len(input.body())),
            targets: Targets {
                variant: input.target_variant().map(str::to_owned),
                component: input.inference_component_name().map(str::to_owned),
                model: input.target_model().map(str::to_owned),
            },
        });
    }
    if let Some(input) = input.downcast_ref::<InvokeEndpointWithResponseStreamInput>() {
        return Some(Request {
            endpoint: input.endpoint_name().unwrap_or_default(),
            operation: Operation::InvokeEndpointWithResponseStream,
            bytes_in: Some(len(input.body())),
            targets: Targets {
                variant: input.target_variant().map(str::to_owned),
                component: input.inference_component_name().map(str::to_owned),
                model: None,
            },
        });
    }
    if let Some(input) = input.downcast_ref::<InvokeEndpointAsyncInput>() {
        return Some(Request {
            endpoint: input.endpoint_name().unwrap_or_default(),
            operation: Operation::InvokeEndpointAsync,
            // Input in S3 is of a size not known here: not billed.
            bytes_in: input.body().map(|b| b.as_ref().len() as u64),
            targets: Targets::default(),
        });
    }
    None
}

/// What meters `operation` fully, when the interceptor cannot.
fn metered_by(operation: Operation) -> Option<&'static str> {
    match operation {
        Operation::InvokeEndpointWithResponseStream => {
            Some("Client::invoke_endpoint_with_response_stream")
        }
        Operation::InvokeEndpointAsync => Some("Client::invoke_endpoint_async"),
        _ => None,
    }
}

/// What the reason of a line the interceptor cannot measure says after the
/// operation's name ([`not_seen`]).
pub(crate) const NOT_SEEN: &str = "is not metered through the SDK interceptor";

/// The lines of a receipt of `operation` made by the interceptor that it cannot
/// measure, with why: the compute time and the response's size (a stream the
/// caller reads, an async output in S3).
fn not_seen(operation: Operation) -> Vec<(LineItem, String)> {
    let Some(instead) = metered_by(operation) else {
        return Vec::new();
    };
    let why = |what: &str| {
        format!("{operation} {NOT_SEEN} (it does not see the {what}); use sagemeter::{instead}")
    };
    vec![
        (LineItem::Compute, why("compute time")),
        (LineItem::DataOut, why("response's size")),
    ]
}

/// Why a receipt of `operation` made by the interceptor has no token counts:
/// it never reads a stream's events or an async output.
fn tokens_unseen(operation: Operation) -> Option<String> {
    let instead = metered_by(operation)?;
    Some(format!(
        "{operation} through the SDK interceptor: it does not read the response, so its \
         token counts are not known; use sagemeter::{instead}"
    ))
}

/// Refuses a request whose configuration is for another region than `meter`'s
/// endpoints (see [`Meter::endpoint_region`]): a string compare.
fn check_region(meter: &Meter, cfg: &ConfigBag) -> Result<(), BoxError> {
    match cfg.load::<aws_types::region::Region>() {
        Some(region) => meter
            .check_region(
                "MeteringInterceptor::new",
                "the SDK client",
                region.as_ref(),
            )
            .map_err(|err| Box::new(crate::Error::Config(err)) as BoxError),
        None => Ok(()),
    }
}

/// One call's state in the SDK's config bag: its parts, taken by the first
/// `read_after_execution`; if the SDK's future is dropped first, dropping them
/// makes the call's cancelled receipt (see [`CallInFlight`]). Shared only to be
/// `Clone`.
#[derive(Debug, Clone)]
struct CallStart {
    call: Arc<Mutex<CallInFlight>>,
    attempts: AttemptProbe,
}

impl CallStart {
    fn take(&self) -> Option<CallParts> {
        self.call.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Storable for CallStart {
    type Storer = StoreReplace<Self>;
}

impl Intercept for MeteringInterceptor {
    fn name(&self) -> &'static str {
        "sagemeter::MeteringInterceptor"
    }

    // In `read_before_serialization`, not `read_before_execution`: the request's
    // configuration is whole only then (an interceptor on the SDK client runs its
    // `read_before_execution` before a per-request `config_override` is applied),
    // and it runs once, before the retry loop. The region is checked first: a
    // refused request never begins (nothing reserved, no clock, not in flight).
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A metered call owns this request and makes its receipt; and an interceptor
        // registered twice meters the call once, in the first registration.
        if AttemptWatch::in_metered_call() || cfg.load::<CallStart>().is_some() {
            return Ok(());
        }
        if let Some(request) = request_of(context.input()) {
            let Request {
                endpoint,
                operation,
                bytes_in,
                targets,
            } = request;
            // For another region than the meter's (the SDK client's, or the
            // request's own override).
            check_region(&self.meter, cfg)?;
            self.warn_once(operation);
            let reservation = match self.meter.reserve(endpoint, &BTreeMap::new()) {
                Ok(reservation) => reservation,
                // Refused before anything is sent: the SDK returns this error.
                Err(Refusal::Exceeded(err)) => {
                    crate::sink::count_refusal(&err);
                    return Err(Box::new(err));
                }
                // Leasing more of a fleet budget is a round trip that an SDK hook
                // cannot wait for: the call is reserved against the budgets' whole
                // limits instead, so calls at once cannot go past them here.
                Err(Refusal::Short(..)) => match self.meter.reserve_unleased(endpoint) {
                    Ok(reservation) => reservation,
                    Err(refusal) => {
                        let err = refusal.into_error();
                        crate::sink::count_refusal(&err);
                        return Err(Box::new(err));
                    }
                },
            };
            let started_at = self.meter.now();
            // Joined when the first request goes out (see `AttemptProbe`).
            let seat = targets.seat(&self.meter, endpoint, started_at);
            let started = Instant::now();
            let attempts = AttemptProbe::on_clock(started, seat, self.meter.inner.time.clone());
            let parts = CallParts {
                meter: self.meter.clone(),
                endpoint: endpoint.to_owned(),
                operation,
                bytes_in,
                targets,
                tags: BTreeMap::new(),
                reservation,
                started_at,
                started,
                attempts: attempts.clone(),
                // Whether SageMaker queued a dropped async submission is unknown.
                receipt_when_dropped: operation != Operation::InvokeEndpointAsync,
                note: Some(INTERCEPTOR_NOTE),
                answer: std::sync::OnceLock::new(),
                counted: self.meter.inner.calls.enter(),
            };
            cfg.interceptor_state().store_put(CallStart {
                call: Arc::new(Mutex::new(CallInFlight::new(parts))),
                attempts,
            });
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(start) = cfg.load::<CallStart>() {
            start.attempts.before_transmit(cfg);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(start) = cfg.load::<CallStart>() {
            start.attempts.after_attempt(context, cfg);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Taken once: a second registration of the interceptor finds nothing. A call
        // that fails before reaching the model just leaves the clock here (and its
        // reservation is released).
        let Some(mut start) = cfg.load::<CallStart>().and_then(CallStart::take) else {
            return Ok(());
        };
        let mut usage = start.usage(start.started.elapsed());
        let mut notes = Vec::new();
        let mut unseen = false;
        let request_id = match context.output_or_error() {
            Some(Ok(output)) => {
                if let Some(output) = output.downcast_ref::<InvokeEndpointOutput>() {
                    read_output(output, &self.meter, &mut usage)
                } else if let Some(output) =
                    output.downcast_ref::<InvokeEndpointWithResponseStreamOutput>()
                {
                    // The stream is the caller's to read: its length is not seen.
                    usage.variant = output.invoked_production_variant().map(str::to_owned);
                    unseen = true;
                    output.request_id().map(str::to_owned)
                } else if let Some(output) = output.downcast_ref::<InvokeEndpointAsyncOutput>() {
                    // Nor is the output (its input in S3 is unpriced like a
                    // Client's submission of a size not given).
                    unseen = true;
                    // The receipt is the inference's, as a Client's submission
                    // receipt is: the request id, else SageMaker's inference id.
                    submission_call_id(output)
                } else {
                    return Ok(());
                }
            }
            // An async submission only queues the request: failed, it is billed
            // only if SageMaker accepted one of its attempts (a 2XX answer cut
            // off, then retries that failed), as a Client's submission is; and
            // not billed, one whose attempt timed out after sending may have
            // been queued, its reservation counted at its estimate.
            Some(Err(_)) if !start.operation.failure_can_reach_model() => {
                if !failure_billed(start.operation, false, &start.attempts) {
                    start.settle_if_maybe_queued();
                    return Ok(());
                }
                accepted_then_failed(&mut usage, &mut notes);
                unseen = true;
                None
            }
            Some(Err(err)) => {
                // The model ran (and the time is billed) when it answered with an
                // error, or when an attempt timed out after sending (as for a
                // `Client`'s calls).
                let model_error = err.as_operation_error().and_then(|e| {
                    let (code, meta) = if let Some(e) = e.downcast_ref::<InvokeEndpointError>() {
                        (e.code(), e.meta())
                    } else {
                        let e = e.downcast_ref::<InvokeEndpointWithResponseStreamError>()?;
                        (e.code(), e.meta())
                    };
                    is_model_error_code(code).then(|| meta.request_id().map(str::to_owned))
                });
                if let Some(request_id) = model_error {
                    usage.outcome = Outcome::Error;
                    request_id
                } else if start.attempts.any_ran() {
                    usage.outcome = failed_outcome(timed_out_after_sending(err), &mut notes);
                    None
                } else {
                    return Ok(());
                }
            }
            None => return Ok(()),
        };
        // The parts' own note (INTERCEPTOR_NOTE) comes first on the receipt.
        let mut to_price = start.finish(usage, request_id, notes, self.meter.now());
        if unseen {
            let call = &mut to_price.call;
            call.unknown.extend(not_seen(call.usage.operation));
            call.tokens_unseen = tokens_unseen(call.usage.operation)
                .map(TokensUnseen::both)
                .unwrap_or_default();
        }
        finish_in_background(to_price, Phase::Whole, tracing::Span::none());
        Ok(())
    }
}
