//! Metering for a plain SDK client, with no change at the call sites.

use super::call::{
    AttemptProbe, SDK_TIMEOUT_NOTE, bill_attempts, is_model_error_code, timed_out_after_sending,
};
use super::meter::{FinishedCall, Meter, Targets};
use crate::budget::{Refusal, Reservation};
use crate::totals::CallShare;
use crate::usage::{Operation, Outcome, Usage};
use aws_sdk_sagemakerruntime::error::ProvideErrorMetadata;
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::{
    InvokeEndpointError, InvokeEndpointInput, InvokeEndpointOutput,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// An SDK interceptor that meters every `InvokeEndpoint` made through a plain
/// `aws_sdk_sagemakerruntime::Client`.
///
/// The SDK's output type cannot carry a receipt, so the cost goes to the cost log
/// line, the running totals and the sinks. Pricing runs on a spawned task, off the
/// call path (it needs a Tokio runtime, which the SDK needs anyway).
///
/// The meter's budgets see every call: an enforced budget with no room refuses the
/// call before anything is sent (the SDK's error then has
/// [`Error::BudgetExceeded`](crate::Error::BudgetExceeded) as its source), and each
/// receipt is settled against them, alerts included. A fleet budget whose lease is
/// too small cannot be topped up from an SDK hook, so such a call goes ahead
/// unreserved and its cost still counts.
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
}

impl MeteringInterceptor {
    /// An interceptor that records into `meter`.
    pub fn new(meter: Meter) -> Self {
        MeteringInterceptor { meter }
    }
}

#[derive(Debug, Clone)]
struct CallStart {
    endpoint: String,
    bytes_in: u64,
    targets: Targets,
    started: Instant,
    started_at: SystemTime,
    /// Taken by the first `read_after_execution`; shared only to be `Clone`.
    share: Arc<Mutex<Option<CallShare>>>,
    /// The call's budget reservation, taken with `share` (dropped unsettled, it is
    /// released).
    reservation: Arc<Mutex<Option<Reservation>>>,
    attempts: AttemptProbe,
}

impl Storable for CallStart {
    type Storer = StoreReplace<Self>;
}

impl Intercept for MeteringInterceptor {
    fn name(&self) -> &'static str {
        "sagemeter::MeteringInterceptor"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input().downcast_ref::<InvokeEndpointInput>() {
            let endpoint = input.endpoint_name().unwrap_or_default();
            let reservation = match self.meter.reserve(endpoint, &BTreeMap::new()) {
                Ok(reservation) => reservation,
                // Refused before anything is sent: the SDK returns this error.
                Err(Refusal::Exceeded(err)) => return Err(Box::new(err)),
                // Leasing more of a fleet budget is a round trip that an SDK hook
                // cannot wait for: the call goes ahead, and its cost still counts.
                Err(Refusal::Short(..)) => self.meter.reserve_nothing(endpoint),
            };
            let started_at = self.meter.now();
            let targets = Targets {
                variant: input.target_variant().map(str::to_owned),
                component: input.inference_component_name().map(str::to_owned),
                model: input.target_model().map(str::to_owned),
            };
            let share = targets.join_clock(&self.meter.inner.totals, endpoint, started_at);
            let started = Instant::now();
            cfg.interceptor_state().store_put(CallStart {
                endpoint: endpoint.to_owned(),
                bytes_in: input.body().map_or(0, |b| b.as_ref().len() as u64),
                targets,
                started,
                started_at,
                share: Arc::new(Mutex::new(Some(share))),
                reservation: Arc::new(Mutex::new(reservation)),
                attempts: AttemptProbe::new(started),
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
        let Some(start) = cfg.load::<CallStart>().cloned() else {
            return Ok(());
        };
        // A call that fails before reaching the model just leaves the clock here.
        let share = start.share.lock().unwrap_or_else(|e| e.into_inner()).take();
        let reservation = start
            .reservation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut usage = Usage::new(Operation::InvokeEndpoint, start.started.elapsed());
        usage.bytes_in = start.bytes_in;
        let mut notes = vec!["metered by the SDK interceptor".to_owned()];
        let billed = bill_attempts(&mut usage, &start.attempts, &mut notes);
        let request_id = match context.output_or_error() {
            Some(Ok(output)) => {
                let Some(output) = output.downcast_ref::<InvokeEndpointOutput>() else {
                    return Ok(());
                };
                let body = output.body().map(|b| b.as_ref()).unwrap_or_default();
                usage.bytes_out = body.len() as u64;
                usage.variant = output.invoked_production_variant().map(str::to_owned);
                if let Some(tokens) = self.meter.count_tokens(body) {
                    usage = usage.with_tokens(tokens);
                }
                output.request_id().map(str::to_owned)
            }
            Some(Err(err)) => {
                // The model ran (and the time is billed) when it answered with an
                // error, or when an attempt timed out after sending (as for a
                // `Client`'s calls).
                let model_error = err
                    .as_operation_error()
                    .and_then(|e| e.downcast_ref::<InvokeEndpointError>())
                    .filter(|e| is_model_error_code(e.code()));
                if let Some(model_error) = model_error {
                    usage.outcome = Outcome::Error;
                    model_error.meta().request_id().map(str::to_owned)
                } else if start.attempts.any_ran() {
                    usage.outcome = if timed_out_after_sending(err) {
                        notes.push(SDK_TIMEOUT_NOTE.to_owned());
                        Outcome::Cancelled
                    } else {
                        Outcome::Error
                    };
                    None
                } else {
                    return Ok(());
                }
            }
            None => return Ok(()),
        };
        let call = FinishedCall {
            endpoint: start.endpoint.clone(),
            request_id,
            started_at: start.started_at,
            targets: start.targets,
            usage,
            tags: BTreeMap::new(),
            notes,
            shared_hours: share.map(|s| billed.share(s.end(self.meter.now()))),
            compute_unknown: None,
        };
        let meter = self.meter.clone();
        let spawned = self.meter.inner.background.spawn(async move {
            let prepared = meter.prepare(&call.endpoint).await;
            let cost = meter.finish(call, &prepared);
            meter.settle(reservation, &cost);
        });
        if !spawned {
            tracing::warn!(target: "sagemeter", endpoint = %start.endpoint,
                "no Tokio runtime, or the meter is shut down: the call was not metered");
        }
        Ok(())
    }
}
