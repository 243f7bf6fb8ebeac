//! One call from the moment its request goes out until its receipt is made.
//!
//! [`CallInFlight::begin`] puts the call on its endpoint's processor-sharing
//! clock and keeps what a receipt needs. The operation takes it back with
//! [`CallInFlight::into_parts`] once the SDK has answered. If the future is
//! dropped first (the caller gave up, a `tokio::time::timeout` fired) after the
//! request was sent, the drop still makes one receipt, outcome `cancelled`,
//! billed as if the model ran until the drop: the instance was busy (and
//! serverless compute and data in are billed) whether or not anyone read the
//! answer.

use super::meter::{FinishedCall, Meter};
use crate::budget::Reservation;
use crate::totals::CallShare;
use crate::usage::{Operation, Outcome, Usage};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What a call's receipt needs that is known before it is sent.
#[derive(Debug)]
pub(crate) struct CallParts {
    pub meter: Meter,
    pub endpoint: String,
    pub operation: Operation,
    pub bytes_in: u64,
    pub target_variant: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub reservation: Option<Reservation>,
    /// When the call started (the meter's clock, for receipts and accrual).
    pub started_at: SystemTime,
    /// When the call started (monotonic, for durations).
    pub started: Instant,
    /// The call's place on its endpoint's processor-sharing clock.
    pub share: CallShare,
    /// The SDK's attempts at this call, as [`AttemptProbe`] saw them.
    pub attempts: AttemptProbe,
}

/// A call whose request is about to go out or is out; see the module docs.
#[derive(Debug)]
pub(crate) struct CallInFlight(Option<CallParts>);

impl CallInFlight {
    /// Starts a call now (on the meter's clock).
    pub(crate) fn begin(
        meter: &Meter,
        endpoint: String,
        operation: Operation,
        bytes_in: u64,
        target_variant: Option<String>,
        tags: BTreeMap<String, String>,
        reservation: Option<Reservation>,
    ) -> Self {
        let started_at = meter.now();
        let share = meter.inner.totals.call_started(&endpoint, started_at);
        CallInFlight(Some(CallParts {
            meter: meter.clone(),
            endpoint,
            operation,
            bytes_in,
            target_variant,
            tags,
            reservation,
            started_at,
            started: Instant::now(),
            share,
            attempts: AttemptProbe::default(),
        }))
    }

    /// The call's parts, to borrow while it is in flight.
    pub(crate) fn parts(&self) -> &CallParts {
        match &self.0 {
            Some(parts) => parts,
            None => unreachable!("a CallInFlight holds its parts until into_parts"),
        }
    }

    /// The SDK answered: the operation makes the receipt from here.
    pub(crate) fn into_parts(mut self) -> CallParts {
        match self.0.take() {
            Some(parts) => parts,
            None => unreachable!("a CallInFlight holds its parts until into_parts"),
        }
    }
}

impl Drop for CallInFlight {
    fn drop(&mut self) {
        let Some(parts) = self.0.take() else {
            return;
        };
        if !parts.attempts.transmitted() {
            return; // nothing reached SageMaker: nothing ran, nothing to bill
        }
        let CallParts {
            meter,
            endpoint,
            operation,
            bytes_in,
            target_variant,
            tags,
            reservation,
            started_at,
            started,
            share,
            attempts,
        } = parts;
        let mut usage = Usage::new(operation, started.elapsed());
        usage.bytes_in = bytes_in;
        usage.outcome = Outcome::Cancelled;
        usage.attempts = attempts.count().max(1);
        let call = FinishedCall {
            endpoint,
            request_id: None,
            started_at,
            target_variant,
            usage,
            tags,
            notes: vec![
                "the caller dropped the call after its request was sent: billed as if the \
                 model ran until then"
                    .to_owned(),
            ],
            shared_hours: Some(share.end(meter.now())),
        };
        let now = meter.now();
        if let Some(prepared) = meter.prepare_now(&call.endpoint, now) {
            let cost = meter.finish(call, &prepared);
            meter.settle(reservation, &cost);
            return;
        }
        // The endpoint's profile or rates are not at hand: price it in the background.
        let background = meter.inner.background.clone();
        let endpoint = call.endpoint.clone();
        let spawned = background.spawn(async move {
            let prepared = meter.prepare(&call.endpoint).await;
            let cost = meter.finish(call, &prepared);
            meter.settle(reservation, &cost);
        });
        if !spawned {
            tracing::warn!(target: "sagemeter", endpoint = %endpoint,
                "a cancelled call could not be priced: no Tokio runtime, or the meter is shut down");
        }
    }
}

/// Watches the SDK's attempts at one call (registered on the call with
/// `customize().interceptor(..)`): how many there were, whether a request went
/// out at all, and how long the attempts that reached the model took.
///
/// An attempt reached the model when SageMaker answered it with a success or a
/// model error; a throttled, refused or failed-in-transit attempt did not, and is
/// not billed.
#[derive(Debug, Clone, Default)]
pub(crate) struct AttemptProbe(Arc<AttemptLog>);

#[derive(Debug, Default)]
struct AttemptLog {
    attempts: AtomicU32,
    transmitted: AtomicBool,
    /// Microseconds spent in attempts that reached the model.
    billed_us: AtomicU64,
    /// Attempts that reached the model.
    billed: AtomicU32,
    attempt_started: Mutex<Option<Instant>>,
}

impl AttemptProbe {
    /// Attempts made (0 when the probe saw none, e.g. it was not registered).
    pub(crate) fn count(&self) -> u32 {
        self.0.attempts.load(Ordering::Relaxed)
    }

    /// Whether a request went out (or the probe saw nothing, and so cannot say it
    /// did not).
    pub(crate) fn transmitted(&self) -> bool {
        self.0.transmitted.load(Ordering::Relaxed) || self.count() == 0
    }

    /// Attempts that reached the model, and how long they took together.
    pub(crate) fn billed(&self) -> (u32, Duration) {
        (
            self.0.billed.load(Ordering::Relaxed),
            Duration::from_micros(self.0.billed_us.load(Ordering::Relaxed)),
        )
    }
}

/// HTTP statuses with which SageMaker Runtime answers after the model ran: a
/// success, or `ModelError` (424, the container answered with an error).
fn reached_model(status: u16) -> bool {
    (200..300).contains(&status) || status == 424
}

impl Intercept for AttemptProbe {
    fn name(&self) -> &'static str {
        "sagemeter::AttemptProbe"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let log = &self.0;
        log.attempts.fetch_add(1, Ordering::Relaxed);
        log.transmitted.store(true, Ordering::Relaxed);
        *log.attempt_started
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let log = &self.0;
        let started = log
            .attempt_started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let status = context.response().map(|r| r.status().as_u16());
        if let (Some(started), Some(status)) = (started, status)
            && reached_model(status)
        {
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            log.billed_us.fetch_add(us, Ordering::Relaxed);
            log.billed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
