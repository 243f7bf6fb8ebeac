//! `InvokeEndpointAsync`, metered: a receipt when the request is accepted, and one
//! when its output lands.
//!
//! An asynchronous endpoint bills instance-hours (Price List usage type `AsyncInf`,
//! [`PriceKey::AsyncInference`](crate::pricing::PriceKey::AsyncInference)) while it
//! works through its queue, long after `InvokeEndpointAsync` has returned. So a call
//! is billed in two receipts, each recorded once in the totals, logs and sinks:
//!
//! 1. **submission** ([`InvokeEndpointAsync::send`]): what is known then: data in
//!    (the inline body, or the size given with
//!    [`input_bytes`](InvokeEndpointAsync::input_bytes)) and the per-inference fee;
//! 2. **settlement** ([`AsyncInvocation::settle`] or [`Meter::settle_async`]): the
//!    compute (the time the caller states × the endpoint's `AsyncInf` rate, at a
//!    whole instance, whatever the allocation), data out and tokens.
//!
//! The caller reports completion: sagemeter does not watch S3 or SNS. Whatever tells
//! the application that the output is there (the SNS success/error topic, an S3
//! event, polling the output location with its own S3 client) also tells it when, and
//! usually hands it the output. The pending half is [`PendingInference`]: serialisable,
//! so another process (the one reading the notifications) can settle it, with a
//! meter of the region it was submitted in ([`PendingInference::region`]).
//!
//! **Settled twice, counted once.** Notifications come at least once, so the
//! same invocation may be settled again. A second settlement of a call id the
//! meter settled in the last 14 days (or, with a fleet, that any of its
//! processes settled) returns an explicit duplicate receipt
//! ([`Cost::is_duplicate_settlement`]) that bills and records nothing; see
//! [`Meter::settle_async`].
//!
//! **Budgets.** An enforced budget reserves the invocation's estimate when it is
//! submitted, as for any call; the submission receipt is charged against it and
//! the rest stays held by the [`PendingInference`] until it is settled, when the
//! settlement receipt is charged and the hold released. So queued work counts
//! against the budget before its compute is billed. Dropping the pending
//! invocation unsettled releases its hold. The hold lapses once SageMaker must
//! have run or expired the request (`RequestTTLSeconds` plus
//! `InvocationTimeoutSeconds` after submission, on the meter's clock): it is
//! then charged as run, provisionally (one WARN per client); the settlement
//! replaces that charge, and a pending invocation dropped after the lapse keeps
//! it. A copy settled with the same client's meter settles the invocation, hold
//! or charge and all; settled with another client's meter, the invocation counts
//! there, unreserved, and its hold here is taken back (a meter of another region
//! refuses it and gives it back, hold and all, in a [`SettleRefused`]). The
//! rules, worked, and their limits: the Budgets section of `docs/library.md`.
//!
//! A settlement whose future is dropped (a timeout, a cancelled task) while it
//! looks up the endpoint's rates still finishes in the background: its receipt is
//! recorded once, in the totals, sinks and budgets, as if it had been awaited.

use super::call::{
    Call, CallRequest, MeteredOperation, ReadOutput, call_span, in_span, record_on_span,
};
use super::invoke::{
    config_override_setter, delegate_setters, refused_with_override, sent_with_override,
};
use super::meter::{FinishedCall, Meter, Phase, Prepared};
use crate::billing::{LineItem, SETTLEMENT_NOTE, SettledBefore, SettledBy};
use crate::budget::Reservation;
use crate::config_error::ConfigError;
use crate::endpoint::EndpointKind;
use crate::usage::{Operation, Outcome, TokenUsage, TokensUnseen, Usage};
use crate::{Cost, Error, Result};
use aws_sdk_sagemakerruntime::error::SdkError;
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::builders::InvokeEndpointAsyncFluentBuilder;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::{
    InvokeEndpointAsyncError, InvokeEndpointAsyncOutput,
};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::Instrument;

/// A metered `InvokeEndpointAsync` request. Same setters as the SDK's fluent builder,
/// plus [`tag`](Self::tag) and [`input_bytes`](Self::input_bytes).
#[derive(Clone)]
pub struct InvokeEndpointAsync {
    request: InvokeEndpointAsyncFluentBuilder,
    meter: Meter,
    tags: BTreeMap<String, String>,
    input_bytes: Option<u64>,
    /// Why its client refuses every call (an SDK client of another region).
    refused: Option<Arc<ConfigError>>,
    /// This request's own SDK settings ([`config_override`](Self::config_override));
    /// boxed, as it is rare: the builder stays small.
    config_override: Option<Box<aws_sdk_sagemakerruntime::config::Builder>>,
}

// Hand-written: the SDK builder's Debug prints its client's configuration
// (credentials' key id included); the body and custom attributes are never shown.
impl std::fmt::Debug for InvokeEndpointAsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeEndpointAsync")
            .field("endpoint_name", self.request.get_endpoint_name())
            .field("input_bytes", &self.input_bytes)
            .field("tags", &self.tags)
            .field("config_override", &self.config_override.is_some())
            .finish_non_exhaustive()
    }
}

impl InvokeEndpointAsync {
    pub(crate) fn new(
        request: InvokeEndpointAsyncFluentBuilder,
        meter: Meter,
        refused: Option<Arc<ConfigError>>,
    ) -> Self {
        InvokeEndpointAsync {
            request,
            meter,
            tags: BTreeMap::new(),
            input_bytes: None,
            refused,
            config_override: None,
        }
    }

    delegate_setters! {
        /// The endpoint to call.
        endpoint_name / set_endpoint_name / get_endpoint_name(impl Into<String>),
        /// MIME type of the input.
        content_type / set_content_type / get_content_type(impl Into<String>),
        /// Desired MIME type of the output.
        accept / set_accept / get_accept(impl Into<String>),
        /// Opaque information passed to the model container (never logged).
        custom_attributes / set_custom_attributes / get_custom_attributes(impl Into<String>),
        /// Identifier for the inference (SageMaker makes one up otherwise).
        inference_id / set_inference_id / get_inference_id(impl Into<String>),
        /// The S3 URI of the input.
        input_location / set_input_location / get_input_location(impl Into<String>),
        /// Inline input instead of `input_location` (up to 128,000 bytes). Never logged.
        body / set_body / get_body(Blob),
        /// Extension of the output object.
        s3_output_path_extension / set_s3_output_path_extension / get_s3_output_path_extension(impl Into<String>),
        /// File name of the output object.
        filename / set_filename / get_filename(impl Into<String>),
        /// How long the request may wait in the queue, in seconds.
        request_ttl_seconds / set_request_ttl_seconds / get_request_ttl_seconds(i32),
        /// How long the model may work on the request, in seconds.
        invocation_timeout_seconds / set_invocation_timeout_seconds / get_invocation_timeout_seconds(i32),
    }

    /// The size of the input at `input_location`, billed as data processed in.
    /// Without it (and without an inline body) the submission receipt says that data
    /// in was not billed, and enforced budgets count it at the most it can be: 1 GB
    /// at the data-in rate for each attempt SageMaker may have queued (accepted, or
    /// timed out after sending).
    pub fn input_bytes(mut self, bytes: u64) -> Self {
        self.input_bytes = Some(bytes);
        self
    }

    /// Attributes this call to `key=value` (on both receipts, log lines and sinks).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    config_override_setter!("InvokeEndpointAsync::config_override");

    /// Anything else on the SDK's builder (of its `customize()`, see
    /// [`config_override`](Self::config_override)).
    pub fn map_request(
        mut self,
        f: impl FnOnce(InvokeEndpointAsyncFluentBuilder) -> InvokeEndpointAsyncFluentBuilder,
    ) -> Self {
        self.request = f(self.request);
        self
    }

    /// Queues the request; the result carries the submission receipt.
    #[inline(always)] // built where it is awaited, not copied there (see `invoke.rs`)
    pub async fn send(self) -> Result<AsyncInvocation> {
        let InvokeEndpointAsync {
            request,
            meter,
            tags,
            input_bytes,
            refused,
            config_override,
        } = self;
        let refused = refused_with_override(
            &meter,
            refused,
            config_override.as_deref(),
            "InvokeEndpointAsync::config_override",
        );
        let lifetime = async_lifetime(
            *request.get_request_ttl_seconds(),
            *request.get_invocation_timeout_seconds(),
        );
        let processing_limit = invocation_timeout(*request.get_invocation_timeout_seconds());
        let call = CallRequest::new(
            request.get_endpoint_name(),
            request.get_body().as_ref(),
            tags,
        )
        .input_bytes(input_bytes)
        .refused(refused);
        // Not accepted: nothing queued, nothing billed. Accepted, then dropped
        // while the endpoint's rates are found: queued, so its submission is still
        // billed (see `DROPPED_SUBMISSION_NOTE`).
        // A Client's runtime client carries the AttemptWatch, which an override
        // keeps.
        let read: ReadOutput<InvokeEndpointAsyncOutput> = read_submission;
        let answered = Call::run_reading::<AsyncOperation, _, _>(
            &meter,
            call,
            std::pin::pin!(sent_with_override!(request, config_override)),
            Some(read),
        )
        .await?;
        let mut receipt = answered.receipt;
        let output = match answered.result {
            Ok(output) => output,
            // Failed after SageMaker accepted an attempt (billable() returns
            // every other failed submission as an error): queued all the same.
            Err(source) => {
                let mut usage = receipt.usage(answered.latency);
                let mut notes = Vec::new();
                accepted_then_failed(&mut usage, &mut notes);
                let endpoint = receipt.endpoint().to_owned();
                // Its reservation is settled with it: no settlement will come.
                let cost = receipt.make(usage, None, notes, Phase::Submitted);
                return Err(AsyncOperation::error(endpoint, source, Some(cost)));
            }
        };
        // The estimate stays held until the settlement (the compute, nearly all of
        // the cost, is billed then): the submission only charges its own part.
        let mut hold = receipt.take_reservation();

        let usage = receipt.usage(answered.latency);
        let notes = vec![
            "submission: compute is billed as instance-hours of the async endpoint (AsyncInf) \
             and goes on the settlement receipt"
                .to_owned(),
        ];
        let call_id = submission_call_id(&output);
        let endpoint = receipt.endpoint().to_owned();
        let started_at = receipt.started_at();
        // Its part of the hold settled before the sinks run, at the time the
        // receipt was billed (read again after them, a slow sink could move
        // the charge into the next period).
        let cost =
            receipt.make_settling_part(usage, call_id, notes, Phase::Submitted, hold.as_mut());
        let submitted_at = DateTime::<Utc>::from(started_at);
        if let Some(hold) = &mut hold {
            // Past this SageMaker has run the request or dropped it: a pending
            // invocation kept unsettled (a lost notification) holds no longer.
            // Kept by the budgets as this invocation's: a copy settled here
            // settles it.
            let call = settled_key(&endpoint, &cost.call_id, submitted_at);
            hold.expire_at(DateTime::<Utc>::from(started_at + lifetime), &call);
        }

        let pending = PendingInference {
            endpoint,
            call_id: cost.call_id.clone(),
            inference_id: output.inference_id().map(str::to_owned),
            output_location: output.output_location().map(str::to_owned),
            failure_location: output.failure_location().map(str::to_owned),
            submitted_at,
            variant: cost.variant.clone(),
            variant_assumed: true,
            // The receipt's: the call's tags over the client's default tags, so
            // that a settlement by another client (another process) is
            // attributed, and counted in tag budgets, as the submission was.
            tags: cost.tags.clone(),
            invocation_timeout_seconds: Some(processing_limit.as_secs()),
            region: Some(meter.endpoint_region().to_owned()),
            // Counted among this meter's unpriced calls with the submission.
            unpriced_counted_by: (!cost.is_fully_priced()).then(|| meter.inner.id),
            hold: Hold(hold),
        };
        Ok(AsyncInvocation {
            output,
            cost,
            pending,
            meter,
        })
    }
}

/// The call id of an accepted submission (and of its settlement): the request
/// id, else SageMaker's inference id (the SDK interceptor's receipts too).
pub(super) fn submission_call_id(output: &InvokeEndpointAsyncOutput) -> Option<String> {
    output
        .request_id()
        .or(output.inference_id())
        .map(str::to_owned)
}

/// What a submission receipt reads from the accepted submission: its call id.
/// Nothing else is known until it is settled.
fn read_submission(
    output: &InvokeEndpointAsyncOutput,
    _meter: &Meter,
    _usage: &mut Usage,
) -> Option<String> {
    submission_call_id(output)
}

/// Why a submission's data-in line is unpriced when its input is in S3 and its
/// size was not given: a made-up 0 bytes would be a silent $0.
pub(crate) const DATA_IN_UNKNOWN: &str = "the input is in S3 and its size was not given \
    (Client::invoke_endpoint_async's input_bytes bills it; the SDK interceptor cannot see it)";

/// Why a settlement's data-out line is unpriced when the output's size was not
/// given.
pub(crate) const DATA_OUT_UNKNOWN: &str =
    "the output's size was not given (AsyncCompletion::output or output_bytes bills it)";

/// Why a settlement's compute line is unpriced when the completion time given is
/// before the submission's (another host's clock behind the submitting host's).
pub(crate) const CLOCKS_DISAGREE: &str = "the completion time is before the submission: the \
    clocks disagree, and the model's time is not known";

/// The note on the receipt of a submission SageMaker accepted but whose caller
/// dropped it before its receipt was made (a timeout while the endpoint's rates
/// were found): queued, it is billed as submitted; its [`PendingInference`] was
/// never handed over, so no settlement will bill its compute (enforced budgets
/// count it at no less than its estimate). Ledgers carry it, and `report` reads
/// it back (`billing::is_never_settled`): reworded, those ledgers would be misread.
pub(crate) const DROPPED_SUBMISSION_NOTE: &str = "submission dropped by the caller after \
    SageMaker accepted it, before its receipt was made: billed as submitted; its pending \
    invocation was lost with it, so its compute (AsyncInf instance-hours) is never settled \
    on a receipt";

/// The note on the receipt of a submission that failed after SageMaker accepted
/// one of its attempts (a 2XX answer whose body was cut off, then retries that
/// failed): its input is queued, and its data in and per-inference fee are
/// billed as a submission's; the accepted answer was not read, so neither its
/// inference id nor its output location is known, and its compute is never
/// settled on a receipt. Enforced budgets count it at no less than its
/// estimate, as a dropped submission ([`DROPPED_SUBMISSION_NOTE`]). Ledgers
/// carry it, and `report` reads it back (`billing::is_never_settled`): reworded,
/// those ledgers would be misread.
pub(crate) const ACCEPTED_THEN_FAILED_NOTE: &str = "the submission failed after SageMaker \
    accepted it (a 2XX answer that could not be read): queued, it is billed as submitted; its \
    output location is unknown, so the job's compute (AsyncInf instance-hours) cannot be \
    metered on a settlement receipt";

/// The note on the receipt of a submission SageMaker accepted more than once (a
/// 2XX answer whose body was cut off, then a retry, which carries no
/// idempotency token, accepted again): each accepted attempt queued a job, and
/// each runs; only the last one's output location is known, so the others'
/// compute (AsyncInf instance-hours) and data out are never settled on a
/// receipt. Enforced budgets count each of those jobs at no less than its
/// estimate, as a submission accepted then failed ([`ACCEPTED_THEN_FAILED_NOTE`]).
/// Ledgers carry it, and `report` reads it back (`billing::is_never_settled`):
/// reworded, those ledgers would be misread.
pub(crate) const ACCEPTED_MORE_THAN_ONCE_NOTE: &str = "SageMaker accepted the submission more \
    than once (a 2XX answer that could not be read, then a retry): each accepted attempt queued \
    a job that runs, but only the last one's output location is known, so the other jobs' \
    compute (AsyncInf instance-hours) and data out are never settled on a receipt";

/// Marks a submission that failed after SageMaker accepted one of its attempts:
/// its outcome an error, and [`ACCEPTED_THEN_FAILED_NOTE`] added to its notes.
/// Every receipt of such a submission is made through this (the `Client`'s, the
/// SDK interceptor's, and a dropped call's).
pub(super) fn accepted_then_failed(usage: &mut Usage, notes: &mut Vec<String>) {
    usage.outcome = Outcome::Error;
    notes.push(ACCEPTED_THEN_FAILED_NOTE.to_owned());
}

/// SageMaker's bound on an async request: at most `RequestTTLSeconds` in the queue
/// (default and at most 6 h), then at most `InvocationTimeoutSeconds` to run
/// (default 15 min, at most 1 h). Values SageMaker would refuse are taken at
/// their default (≤ 0) or cap (above it).
pub(crate) fn async_lifetime(ttl_seconds: Option<i32>, timeout_seconds: Option<i32>) -> Duration {
    const TTL_MAX: u64 = 6 * 3600;
    Duration::from_secs(seconds_or(ttl_seconds, TTL_MAX, TTL_MAX))
        + invocation_timeout(timeout_seconds)
}

/// The most SageMaker lets the model work on an asynchronous request:
/// `InvocationTimeoutSeconds` (default 900 s, at most 3,600 s).
fn invocation_timeout(timeout_seconds: Option<i32>) -> Duration {
    Duration::from_secs(seconds_or(
        timeout_seconds,
        TIMEOUT_DEFAULT_S,
        TIMEOUT_MAX_S,
    ))
}

/// `InvocationTimeoutSeconds`' default and most (AWS's `InvokeEndpointAsync`).
const TIMEOUT_DEFAULT_S: u64 = 15 * 60;
const TIMEOUT_MAX_S: u64 = 3600;

/// A request's seconds as set (positive), at most `max`, else `default`.
fn seconds_or(set: Option<i32>, default: u64, max: u64) -> u64 {
    set.and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(default, |s| s.min(max))
}

/// `InvokeEndpointAsync`'s part of the call pipeline: a failed submission none
/// of whose attempts SageMaker accepted is not billed (no receipt), one
/// that failed after it accepted an attempt is billed as submitted
/// ([`ACCEPTED_THEN_FAILED_NOTE`]), and one dropped before SageMaker answered makes no
/// receipt (whether it was queued is unknown). Unanswered, one whose attempt timed
/// out after sending (or was in flight when it was dropped) may have been queued
/// all the same: its reservation counts at its estimate, not released. One dropped after SageMaker
/// accepted it (answered, or an attempt answered 2XX and then retried) is billed
/// as submitted ([`DROPPED_SUBMISSION_NOTE`]).
pub(crate) struct AsyncOperation;

impl MeteredOperation for AsyncOperation {
    type Error = InvokeEndpointAsyncError;
    const OPERATION: Operation = Operation::InvokeEndpointAsync;
    const RECEIPT_WHEN_DROPPED: bool = false;

    fn error(
        endpoint: String,
        source: SdkError<InvokeEndpointAsyncError, HttpResponse>,
        cost: Option<Cost>,
    ) -> Error {
        Error::InvokeAsync {
            endpoint,
            source: Box::new(source),
            cost: cost.map(Box::new),
        }
    }
}

/// An accepted async invocation: the SDK output (it derefs to it), the submission
/// receipt, and what is needed to settle the rest.
#[derive(Debug)]
pub struct AsyncInvocation {
    output: InvokeEndpointAsyncOutput,
    cost: Cost,
    pending: PendingInference,
    meter: Meter,
}

impl AsyncInvocation {
    /// The submission receipt (data in, per-inference fee).
    pub fn cost(&self) -> &Cost {
        &self.cost
    }

    /// What settles this invocation later, possibly elsewhere.
    pub fn pending(&self) -> &PendingInference {
        &self.pending
    }

    /// The SDK output, the submission receipt and the pending half.
    pub fn into_parts(self) -> (InvokeEndpointAsyncOutput, Cost, PendingInference) {
        (self.output, self.cost, self.pending)
    }

    /// Settles the invocation now that its output has landed: the settlement receipt
    /// (compute, data out, tokens), or a duplicate's when a copy of it was settled
    /// already. See [`Meter::settle_async`]. The settlement is recorded even if the
    /// returned future is dropped before it is done.
    pub fn settle(
        self,
        completion: AsyncCompletion<'_>,
    ) -> impl Future<Output = Cost> + Send + use<> {
        settle(&self.meter, self.pending, completion)
    }
}

impl Deref for AsyncInvocation {
    type Target = InvokeEndpointAsyncOutput;
    fn deref(&self) -> &InvokeEndpointAsyncOutput {
        &self.output
    }
}

/// The unsettled half of an async invocation. Serialisable, to be settled by another
/// task or process with [`Meter::settle_async`]. Settling a copy again (a
/// notification delivered twice) is safe: the meter (and, with a fleet, the fleet
/// table) knows the call id settled, and the second settlement's receipt is an
/// explicit duplicate ([`Cost::is_duplicate_settlement`]: no lines, $0, a note
/// saying where it was settled), recorded nowhere. It is not a copy of the first
/// receipt, so the receipts returned sum to what was billed.
///
/// While it exists it holds the rest of the invocation's budget estimate (the
/// estimate less what the submission cost), so that enforced budgets count queued
/// work; dropping it unsettled releases that hold, unless the hold has lapsed
/// (SageMaker must have run or expired the request by then): the charge it was
/// turned into is then kept.
/// A copy read back from its serialised form holds nothing of its own, but
/// settled with the submitting client's meter it settles the invocation, hold or
/// charge and all (the rules: the Budgets section of `docs/library.md`).
#[non_exhaustive]
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingInference {
    endpoint: String,
    call_id: String,
    inference_id: Option<String>,
    output_location: Option<String>,
    failure_location: Option<String>,
    submitted_at: DateTime<Utc>,
    variant: Option<String>,
    /// Whether `variant` is sagemeter's pick, not SageMaker's word: always so,
    /// `InvokeEndpointAsync` naming no variant (the submission took the profile's
    /// only, or heaviest, one). The settlement keeps to it while the endpoint has
    /// it, else prices the variant the endpoint has now. Absent in records kept
    /// by earlier versions: assumed too, for the same reason.
    #[serde(default = "assumed")]
    variant_assumed: bool,
    /// The submission receipt's tags: the call's own over the submitting
    /// client's default tags. A settling meter's default tags add the keys
    /// these lack; on a clash these win. Records kept by earlier versions hold
    /// the call's own tags only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
    /// The request's `InvocationTimeoutSeconds` (its default when not set): the most
    /// the model can have worked on it, so the most a completion time can bill.
    /// Absent in invocations kept by earlier versions: the most AWS allows then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invocation_timeout_seconds: Option<u64>,
    /// The region of the endpoint it was submitted to: only a meter of that region
    /// settles it ([`Meter::settle_async`]). Absent in invocations kept by earlier
    /// versions: settled by the meter given, unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    /// The id of the meter that counted the invocation among its totals' unpriced
    /// calls at its submission (its receipt was not fully priced): settled by
    /// that meter, an unpriced settlement does not count it again; settled by
    /// another, it counts there, whose totals hold none of the submission.
    /// Absent when the submission was fully priced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unpriced_counted_by: Option<u64>,
    /// The budget estimate still held for the invocation (this process only).
    #[serde(skip)]
    hold: Hold,
}

/// A kept invocation's variant, when the record does not say: assumed (see
/// `PendingInference::variant_assumed`).
fn assumed() -> bool {
    true
}

/// The budget reservation a [`PendingInference`] holds until it is settled or
/// dropped. Not part of its value: equal whatever it holds, never serialised.
#[derive(Default)]
struct Hold(Option<Reservation>);

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(reservation) => write!(f, "{} USD", reservation.held_usd()),
            None => f.write_str("nothing"),
        }
    }
}

impl PartialEq for Hold {
    fn eq(&self, _: &Hold) -> bool {
        true
    }
}

impl Eq for Hold {}

impl PendingInference {
    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The call id of the submission receipt (the settlement receipt has the same).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// SageMaker's inference id.
    pub fn inference_id(&self) -> Option<&str> {
        self.inference_id.as_deref()
    }

    /// Where the output will be written (S3 URI).
    pub fn output_location(&self) -> Option<&str> {
        self.output_location.as_deref()
    }

    /// Where a failure will be written (S3 URI).
    pub fn failure_location(&self) -> Option<&str> {
        self.failure_location.as_deref()
    }

    /// When the request was sent.
    pub fn submitted_at(&self) -> DateTime<Utc> {
        self.submitted_at
    }

    /// The region of the endpoint it was submitted to (its meter's
    /// [`endpoint_region`](Meter::endpoint_region)), where it must be settled;
    /// `None` in a record kept by a version that did not write it.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
}

/// A settlement [`Meter::settle_async`] refused before it began, because the
/// invocation was submitted in another region than the meter's: the
/// [`PendingInference`] it was given, untouched (its budget hold still held), and
/// why ([`error`](Self::error), naming both regions). Nothing was billed or
/// recorded. Take the invocation back with [`into_pending`](Self::into_pending) and
/// settle it with a meter of its region ([`PendingInference::region`]).
///
/// `?` in a function returning sagemeter's [`Result`](crate::Result) turns it into
/// the [`Error::Config`] it carries, dropping the pending invocation (and its
/// hold, as [`PendingInference`] says): its compute is then billed only if a copy
/// of its record is settled elsewhere.
#[derive(Debug)]
pub struct SettleRefused {
    pending: PendingInference,
    error: ConfigError,
}

impl SettleRefused {
    pub(crate) fn new(pending: PendingInference, error: ConfigError) -> Self {
        SettleRefused { pending, error }
    }

    /// Why it was refused: which region the invocation was submitted in, which
    /// region's endpoints the meter meters.
    pub fn error(&self) -> &ConfigError {
        &self.error
    }

    /// The pending invocation, as it was given.
    pub fn pending(&self) -> &PendingInference {
        &self.pending
    }

    /// The pending invocation, to settle with a meter of its region; its budget
    /// hold goes with it.
    pub fn into_pending(self) -> PendingInference {
        self.pending
    }
}

impl std::fmt::Display for SettleRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As its `Error::Config`, which `?` makes of it.
        write!(f, "invalid configuration: {}", self.error)
    }
}

impl std::error::Error for SettleRefused {}

impl From<SettleRefused> for Error {
    fn from(refused: SettleRefused) -> Self {
        Error::Config(refused.error)
    }
}

/// How an async invocation ended, as the caller learnt it.
///
/// The billed compute time is either what the caller knows the model spent
/// ([`processed_for`](Self::processed_for), e.g. from the container's logs or the
/// `ModelLatency` metric) or the time from submission to the output landing
/// ([`completed_at`](Self::completed_at), e.g. the S3 event's or SNS
/// notification's time; [`completed_within`](Self::completed_within) for the S3
/// object's `LastModified`, to the second), which includes the time in the queue:
/// an upper bound.
#[derive(Clone)]
pub struct AsyncCompletion<'a> {
    duration: BilledDuration,
    output: Option<&'a [u8]>,
    output_content_type: Option<&'a str>,
    output_bytes: Option<u64>,
    tokens: Option<TokenUsage>,
    failed: bool,
}

// Hand-written: the output is the model's answer, a payload; its size is shown,
// never its bytes.
impl std::fmt::Debug for AsyncCompletion<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncCompletion")
            .field("duration", &self.duration)
            .field("output_len", &self.output.map(<[u8]>::len))
            .field("output_content_type", &self.output_content_type)
            .field("output_bytes", &self.output_bytes)
            .field("tokens", &self.tokens)
            .field("failed", &self.failed)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
enum BilledDuration {
    Processing(Duration),
    /// The output landed at most `precision` after the time stated.
    CompletedAt {
        at: SystemTime,
        precision: Duration,
    },
}

impl<'a> AsyncCompletion<'a> {
    /// The model worked on the request for `duration`: billed at most the
    /// request's `InvocationTimeoutSeconds` (900 s unless set), after which
    /// SageMaker expires it, with a note when the stated time is longer.
    pub fn processed_for(duration: Duration) -> Self {
        Self::with(BilledDuration::Processing(duration))
    }

    /// The output landed at `at`; billed time = `at` − submission (queue included),
    /// at most the request's `InvocationTimeoutSeconds` (900 s unless set): the
    /// model cannot have worked on it longer, and the rest was queue time (a note
    /// says so). Prefer [`processed_for`](Self::processed_for) when the processing
    /// time is known.
    ///
    /// `at` must be the time itself, not rounded down: take it from the S3
    /// event notification's `eventTime` or the SNS notification's `Timestamp`
    /// (both to the millisecond). The S3 object's `LastModified` is in whole
    /// seconds, rounded down (before the submission when both fall in one
    /// second, which leaves compute unpriced as a clock disagreement): give it
    /// to [`completed_within`](Self::completed_within) with a precision of
    /// 1 s.
    pub fn completed_at(at: SystemTime) -> Self {
        Self::completed_within(at, Duration::ZERO)
    }

    /// The output landed no later than `at` + `precision` (`at` a time rounded
    /// down to `precision`, as the S3 object's `LastModified` is to the second):
    /// billed time = `at` + `precision` − submission, an upper bound, at most the
    /// request's `InvocationTimeoutSeconds` as for
    /// [`completed_at`](Self::completed_at). An `at` up to `precision` before the
    /// submission is the same second, not a disagreement of clocks.
    ///
    /// ```
    /// # use sagemeter::client::AsyncCompletion;
    /// # use std::time::{Duration, SystemTime};
    /// # let last_modified = SystemTime::now();
    /// // `LastModified` of the output object, whole seconds:
    /// let done = AsyncCompletion::completed_within(last_modified, Duration::from_secs(1));
    /// ```
    pub fn completed_within(at: SystemTime, precision: Duration) -> Self {
        Self::with(BilledDuration::CompletedAt { at, precision })
    }

    /// The request expired in SageMaker's queue (its `RequestTTLSeconds`
    /// passed) before the model worked on it: 0 s of compute, no output
    /// (0 bytes out), [failed](Self::failed). Its settlement receipt is fully
    /// priced, at $0, whatever the endpoint's profile or rates (neither needs a
    /// rate: with none at hand, its line is left out, a note says why), and
    /// enforced budgets count the invocation at its
    /// submission's cost, its hold released. Prefer it to
    /// `processed_for(Duration::ZERO).failed()`, which states no output size:
    /// its data out is left unpriced, and budgets count the invocation at no
    /// less than its estimate.
    pub fn expired() -> Self {
        Self::processed_for(Duration::ZERO).output_bytes(0).failed()
    }

    fn with(duration: BilledDuration) -> Self {
        AsyncCompletion {
            duration,
            output: None,
            output_content_type: None,
            output_bytes: None,
            tokens: None,
            failed: false,
        }
    }

    /// The output object: its size is billed as data out and its tokens are counted
    /// with the meter's token counter. Read, never kept or logged.
    pub fn output(mut self, body: &'a [u8]) -> Self {
        self.output = Some(body);
        self
    }

    /// The output object's `Content-Type` (the S3 object's), when known: a
    /// `text/plain` output is not read for tokens (its text is the model's own, as
    /// on a stream). Without it the output is read whatever it holds.
    pub fn output_content_type(mut self, content_type: &'a str) -> Self {
        self.output_content_type = Some(content_type);
        self
    }

    /// The output size, when the body is not at hand.
    pub fn output_bytes(mut self, bytes: u64) -> Self {
        self.output_bytes = Some(bytes);
        self
    }

    /// Token counts known otherwise (they win over counting the output).
    pub fn tokens(mut self, tokens: TokenUsage) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The inference failed (its error is at the failure location). Its time is
    /// billed all the same; the receipt's outcome is `error`, and its per-token
    /// lines, if the endpoint has per-token prices, are 0 tokens at $0 (a failed
    /// inference answered none), whatever was counted. A request that expired
    /// in the queue, never processed, is [`expired`](Self::expired).
    pub fn failed(mut self) -> Self {
        self.failed = true;
        self
    }
}

/// How long a meter remembers an async invocation it settled, and the fleet table
/// keeps its mark: 14 days, the longest an SQS queue keeps a message
/// (`MessageRetentionPeriod`). SageMaker's own bound on a request (6 h queued, 1 h
/// running) limits when the first notification comes, not a copy: a consumer
/// that settles and fails before deleting its message sees it again after the
/// visibility timeout (up to 12 h), or from a dead-letter queue's redrive.
pub(crate) const SETTLED_KEPT: Duration = Duration::from_secs(14 * 24 * 3600);

/// How long a settlement holds an async invocation before its receipt is made:
/// 5 minutes, its claim in the fleet table (`fleet::SETTLEMENT_CLAIM`, the same
/// duration). A copy settled in this process while the first copy here is still
/// settling says the first holds it until then (see [`SettledCalls::remember`]).
pub(crate) const SETTLEMENT_CLAIM: Duration = Duration::from_secs(5 * 60);

/// The most settlements a meter remembers (the oldest are forgotten first): about
/// 10 MB at worst; 14 days of them at up to 0.08 settlements a second (with a
/// fleet, its table remembers the rest).
pub(crate) const MAX_SETTLED: usize = 100_000;

/// The note that starts a duplicate settlement's receipt, for people: code tells
/// a duplicate by [`Cost::settled_before`].
pub(crate) const DUPLICATE_SETTLEMENT_NOTE: &str =
    "duplicate settlement, not billed again: this async invocation was settled already";

impl Cost {
    /// Whether this is the receipt of a **duplicate** settlement of an async
    /// invocation ([`Meter::settle_async`]): the invocation was settled before
    /// (in this process, or with a fleet in any of its processes), so this
    /// receipt bills nothing and was recorded nowhere (totals, sinks, ledgers,
    /// budgets). [`settled_before`](Cost::settled_before) says when and where
    /// the first settlement was made (and so does its first note).
    pub fn is_duplicate_settlement(&self) -> bool {
        self.settled_before.is_some()
    }

    /// Whether this is the receipt of a duplicate settlement
    /// ([`is_duplicate_settlement`](Self::is_duplicate_settlement), $0, recorded
    /// nowhere) whose first settlement was still in progress, until
    /// [`SettledBefore::claim_until`]: in another process of the fleet (marked,
    /// not billed yet, its claim running), or in this process (a copy settled at
    /// the same moment, its receipt not made yet; with or without a fleet, as it
    /// may still find another process's claim running, and be no settlement).
    /// That settlement bills the invocation unless its process is killed first
    /// (a deploy, the OOM killer), so keep the queue message: do not delete it,
    /// let its visibility timeout lapse (longer than the claim, 5 min 5 s), and
    /// its next delivery bills the invocation should that settlement never
    /// finish (or is a plain duplicate once it did). This process does not
    /// remember the invocation as settled by this copy.
    pub fn is_settlement_in_progress_elsewhere(&self) -> bool {
        self.settled_before
            .as_ref()
            .is_some_and(|before| before.claim_until.is_some())
    }
}

/// The async invocations a meter settled lately, by (endpoint, call id,
/// submission time), with who billed each first (this client, or another process
/// of the fleet, as the fleet's table answered) and when: a second settlement of
/// one is a duplicate of that. Each is remembered as its settlement starts,
/// pending (`claim_until` set: still in progress here) until it ends: billed
/// here ([`settled_here`](Self::settled_here)), by another process
/// ([`settled_first_by`](Self::settled_first_by)), or in progress in another
/// ([`forget`](Self::forget)). Entries go after [`SETTLED_KEPT`] on the meter's
/// clock, or beyond [`MAX_SETTLED`].
#[derive(Default)]
pub(crate) struct SettledCalls(std::sync::Mutex<SettledInner>);

#[derive(Default)]
struct SettledInner {
    at: std::collections::HashMap<std::sync::Arc<str>, SettledBefore>,
    /// In the order remembered (oldest first).
    order: std::collections::VecDeque<(SystemTime, std::sync::Arc<str>)>,
}

impl SettledCalls {
    /// Remembers `key` as being settled by this client at `now`, pending until
    /// its settlement ends (due within [`SETTLEMENT_CLAIM`], as its claim in
    /// the fleet): `None` the first time, else who settled it before, and when (a
    /// pending one still in progress).
    fn remember(&self, key: &str, now: SystemTime) -> Option<SettledBefore> {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let SettledInner { at, order } = &mut *inner;
        // Forget what is past the bound (a clock set back forgets nothing).
        while let Some((when, old)) = order.front() {
            if now.duration_since(*when).is_ok_and(|d| d >= SETTLED_KEPT) {
                at.remove(old);
                order.pop_front();
            } else {
                break;
            }
        }
        if let Some(before) = at.get(key) {
            return Some(before.clone());
        }
        while order.len() >= MAX_SETTLED {
            if let Some((_, old)) = order.pop_front() {
                at.remove(&old);
            }
        }
        let key: std::sync::Arc<str> = key.into();
        let first = SettledBefore {
            by: SettledBy::ThisClient,
            at: Some(DateTime::<Utc>::from(now)),
            // A clock at the end of time: in progress all the same.
            claim_until: Some(DateTime::<Utc>::from(
                now.checked_add(SETTLEMENT_CLAIM).unwrap_or(now),
            )),
        };
        at.insert(key.clone(), first);
        order.push_back((now, key));
        None
    }

    /// `key`, remembered as being settled here, was billed here: final.
    /// Forgotten meanwhile, it stays forgotten.
    fn settled_here(&self, key: &str) {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(before) = inner.at.get_mut(key) {
            before.claim_until = None;
        }
    }

    /// `key`, remembered as being settled here, was settled first by another process
    /// of the fleet (its table says so): a later copy says that, not this client.
    /// Forgotten meanwhile, it stays forgotten.
    fn settled_first_by(&self, key: &str, earlier: &SettledBefore) {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(before) = inner.at.get_mut(key) {
            *before = earlier.clone();
        }
    }

    /// Forgets `key`, remembered as settled here: another process of the
    /// fleet is settling it still, and may never bill it, so a later copy asks
    /// the fleet's table again.
    fn forget(&self, key: &str) {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let SettledInner { at, order } = &mut *inner;
        if at.remove(key).is_some()
            // Remembered lately: found from the newest.
            && let Some(i) = order.iter().rposition(|(_, k)| &**k == key)
        {
            order.remove(i);
        }
    }
}

/// What identifies one async invocation in this process: a call id made up
/// locally (`local-<n>`, when SageMaker returned no request id) is unique only
/// in the process that made it, so the endpoint and the submission go with it.
fn settled_key(endpoint: &str, call_id: &str, submitted_at: DateTime<Utc>) -> String {
    format!("{endpoint}\u{0}{call_id}\u{0}{}", submitted_at.to_rfc3339())
}

/// Whether `call_id` was made up by the submitting process (`local-<n>`), not
/// SageMaker's request or inference id: the fleet cannot tell it from another
/// process's.
#[cfg(feature = "fleet")]
fn made_up_locally(call_id: &str) -> bool {
    call_id
        .strip_prefix("local-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What the fleet said of a settlement.
#[derive(Debug)]
#[cfg_attr(not(feature = "fleet"), allow(dead_code))] // Only a fleet says more than NotAsked.
enum FleetCheck {
    /// Not asked: no fleet, or a call id only this process can tell apart.
    NotAsked(Option<&'static str>),
    /// The fleet's first settlement of the invocation.
    First,
    /// The fleet's first to bill the invocation: another settlement's mark
    /// (its `settled_by`) was never billed, and is taken over.
    TakenOver(String),
    /// Another settlement came first (when, epoch ms, if known), and billed it.
    Duplicate(Option<i64>),
    /// Another settlement came first (when, epoch ms, if known), and has not
    /// billed it yet: its claim runs until the second (epoch ms).
    InProgress(Option<i64>, i64),
    /// The table could not be written: why.
    Unchecked(String),
}

type FleetCheckFuture = std::pin::Pin<Box<dyn Future<Output = FleetCheck> + Send>>;

/// Settles an async invocation (see [`Meter::settle_async`]): is it a duplicate
/// (here, then in the fleet) → price (rates as of now) → bill the compute, data
/// out and tokens → record → the settlement receipt.
///
/// Everything but the rates and the fleet's answer is worked out at once, before
/// the future is first polled (the output body is read then, not kept; the
/// invocation is remembered as being settled then, pending until its receipt,
/// so that a second settlement started at the same time is a duplicate that
/// says the first is in progress); the waits are for the endpoint's profile and
/// rates (on a cold meter) and, with a fleet, one conditional write to its table
/// (at the same time), then, once the receipt is made, a second one marking it
/// billed ([`BilledMark`]). The future is dropped before it is done (a timeout, a
/// cancelled task, or never polled): the settlement finishes in the background
/// ([`Settling`]), so it is never lost.
pub(crate) fn settle(
    meter: &Meter,
    pending: PendingInference,
    completion: AsyncCompletion<'_>,
) -> impl Future<Output = Cost> + Send + use<> {
    let endpoint = pending.endpoint.clone();
    // Made before the invocation is remembered: a panic making it (a token
    // counter's, say) leaves no record pending that nothing would resolve,
    // and the next copy bills the invocation.
    let settlement = Settlement::new(meter, pending, completion);
    let earlier = meter.inner.settled.remember(&settlement.key, meter.now());
    let job = match earlier {
        Some(earlier) => Err(settlement.duplicate(earlier, Found::Here)),
        None => Ok(Settling(Some(settlement))),
    };
    let meter = meter.clone();
    async move {
        let settling = match job {
            Ok(settling) => settling,
            Err(duplicate) => return duplicate,
        };
        let check = settling.fleet_check();
        // Dropped while it waits, `settling` (moved in) finishes in the background.
        price_in_span(&meter, &endpoint, check, move |prepared, check| {
            let mark = settling.billed_mark(&check);
            (settling.finish(prepared, check), mark)
        })
        .await
    }
}

/// The endpoint's rates and the fleet's answer together, then the settlement
/// receipt `finish` makes of them, in the settlement's call span; then, the
/// receipt made, the fleet's mark of it written billed (`finish`'s
/// [`BilledMark`]), in the background (dropped while it waits, the mark is
/// written all the same).
async fn price_in_span(
    meter: &Meter,
    endpoint: &str,
    check: FleetCheckFuture,
    finish: impl FnOnce(&Prepared, FleetCheck) -> (Cost, Option<BilledMark>),
) -> Cost {
    let span = call_span(endpoint, Operation::InvokeEndpointAsync);
    let (prepared, check) = async { tokio::join!(meter.prepare(endpoint), check) }
        .instrument(span.clone())
        .await;
    let (cost, mark) = in_span(&span, || finish(&prepared, check));
    if !cost.is_duplicate_settlement() {
        record_on_span(&span, &cost);
    }
    if let Some(mark) = mark {
        mark.write_from(meter).instrument(span).await;
    }
    cost
}

/// The second write of a settlement's mark in the fleet table, once its receipt
/// is made (recorded in the totals and handed to the sinks): the mark is billed,
/// final. Until then (its process killed in between), a later settlement of the
/// invocation takes the mark over once its claim ended
/// ([`SETTLEMENT_CLAIM`](crate::fleet::SETTLEMENT_CLAIM)), and bills it.
#[cfg(feature = "fleet")]
struct BilledMark {
    fleet: crate::fleet::Fleet,
    call_id: String,
    endpoint: String,
    claimant: String,
    /// Whether the claim is known to have been written (not when its answer
    /// was lost): a mark found not this settlement's is then warned of.
    claimed: bool,
}

/// No fleet, no mark.
#[cfg(not(feature = "fleet"))]
enum BilledMark {}

impl BilledMark {
    /// Writes the mark in the meter's background tasks (so that shutdown waits
    /// for it, and a dropped settlement future does not lose it), waiting for it
    /// here; written here when those take no more tasks (shutdown began).
    #[cfg(feature = "fleet")]
    async fn write_from(self, meter: &Meter) {
        let write = || {
            self.fleet.mark_settlement_billed(
                &self.call_id,
                &self.endpoint,
                &self.claimant,
                self.claimed,
            )
        };
        let (done, written) = tokio::sync::oneshot::channel::<()>();
        let task = write();
        let spawned = meter.inner.background.spawn(async move {
            task.await;
            let _ = done.send(());
        });
        if spawned {
            let _ = written.await;
        } else {
            // Boxed: the settlement's future stays small.
            Box::pin(write()).await;
        }
    }

    #[cfg(not(feature = "fleet"))]
    async fn write_from(self, _meter: &Meter) {
        match self {}
    }
}

/// A settlement worked out but for the endpoint's rates: what it bills, and the
/// budget hold its receipt settles.
#[derive(Debug)]
struct Settlement {
    meter: Meter,
    call: FinishedCall,
    hold: Option<Reservation>,
    /// Who this settlement is in the fleet table's mark, fixed once: asked again
    /// (a settlement dropped after its mark was written), it finds the mark its own.
    #[cfg(feature = "fleet")]
    claimant: Option<String>,
    /// Its key among the meter's settled calls (see [`settled_key`]).
    key: String,
    /// Its place among the calls shutdown waits for, until its receipt is recorded.
    _counted: crate::background::Counted,
}

/// Where a duplicate settlement was found to be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// In the meter's own memory: the first settlement of the invocation was
    /// made here (billed here, or found a duplicate in the fleet), or is being
    /// made (pending), and deals with its budget hold.
    Here,
    /// In the fleet's table: another process billed it.
    InTheFleet,
}

impl Settlement {
    /// The settlement of `pending` as `completion` says it ended. The output body is
    /// read here (its size and tokens), never kept.
    fn new(meter: &Meter, pending: PendingInference, completion: AsyncCompletion<'_>) -> Self {
        let call = settled_key(&pending.endpoint, &pending.call_id, pending.submitted_at);
        let PendingInference {
            endpoint,
            call_id,
            submitted_at,
            variant,
            variant_assumed,
            tags,
            invocation_timeout_seconds,
            unpriced_counted_by,
            hold,
            ..
        } = pending;
        // The hold is settled here only if it is this meter's budgets'. Another
        // client's is taken back there, the invocation settled here; the
        // settlement counts unreserved, unless these budgets keep a hold of
        // the invocation (this is a copy), which it takes over.
        let hold = match hold.0 {
            Some(hold) if hold.is_of(&meter.inner.budgets) => Some(hold),
            theirs => {
                if let Some(theirs) = theirs {
                    theirs.settled_elsewhere(meter.now().into());
                }
                meter
                    .reserve_nothing(&endpoint)
                    .map(|r| r.of_call(call.clone()))
            }
        };
        let submitted = SystemTime::from(submitted_at);
        let mut notes = vec![format!(
            "{SETTLEMENT_NOTE} submitted at {}",
            submitted_at.to_rfc3339()
        )];
        let mut unknown = Vec::new();
        // The most the model can have worked on the request: SageMaker expires it
        // after its `InvocationTimeoutSeconds`. As AWS takes it (1 to 3,600 s);
        // anything else (a pending invocation written by hand, or damaged) is not
        // trusted to bill less: the most AWS allows.
        // What the limit is, and for a note, why: the request's own timeout; the
        // most AWS allows when it was kept without one (by an earlier version, which
        // did not store it), or with one AWS would not take.
        let (limit, bound) = match invocation_timeout_seconds {
            Some(s) if (1..=TIMEOUT_MAX_S).contains(&s) => {
                (s, format!("the invocation timeout ({s} s)"))
            }
            Some(s) => (
                TIMEOUT_MAX_S,
                format!(
                    "AWS's longest invocation timeout ({TIMEOUT_MAX_S} s; the {s} s kept with \
                     the request is out of range, 1 to {TIMEOUT_MAX_S} s)"
                ),
            ),
            None => (
                TIMEOUT_MAX_S,
                format!(
                    "AWS's longest invocation timeout ({TIMEOUT_MAX_S} s; the request's own \
                     was not kept with it)"
                ),
            ),
        };
        let limit = Duration::from_secs(limit);
        let duration = match completion.duration {
            BilledDuration::Processing(stated) if stated > limit => {
                notes.push(format!(
                    "billed {bound}, the most the model can have worked on it (SageMaker \
                     expires the request then), not the {} s stated",
                    stated.as_secs_f64()
                ));
                limit
            }
            BilledDuration::Processing(stated) => stated,
            BilledDuration::CompletedAt { at, precision } => {
                notes.push(
                    "billed time runs from submission to completion (queue time included)"
                        .to_owned(),
                );
                // Stated to `precision` (rounded down), it landed by its end: a
                // bound past any time (too large to add) bills the most AWS
                // allows. Landed by the submission, having been stated before
                // it, it landed before it: the clocks disagree.
                if !precision.is_zero() {
                    notes.push(format!(
                        "completed within {} s of the time stated: billed to its end",
                        precision.as_secs_f64()
                    ));
                }
                let since = match at.checked_add(precision) {
                    Some(by) if by <= submitted && at < submitted => Err(()),
                    Some(by) => by.duration_since(submitted).map_err(|_| ()),
                    None => Ok(Duration::MAX),
                };
                if let Ok(waited) = since
                    && waited > limit
                {
                    // Past the invocation timeout the request was in the queue: the
                    // model worked on it for that long at the most.
                    notes.push(if precision.is_zero() {
                        format!(
                            "billed {bound}, the most the model can have worked on it: the \
                             rest of the {} s since submission was queue time",
                            waited.as_secs()
                        )
                    } else {
                        format!(
                            "billed {bound}, the most the model can have worked on it: the \
                             completion's bound is later"
                        )
                    });
                }
                since.map(|waited| waited.min(limit)).unwrap_or_else(|()| {
                    // Another host's clock (or the notification's) is behind the
                    // submitting host's: how long the model worked is not known. The
                    // reason stays the same text for every such settlement (it is
                    // warned about once per endpoint); the times go in a note.
                    unknown.push((LineItem::Compute, CLOCKS_DISAGREE.to_owned()));
                    notes.push(format!(
                        "completed at {}, before the submission at {}",
                        crate::util::utc(at)
                            .map_or_else(|| "a time no calendar holds".into(), |t| t.to_rfc3339()),
                        submitted_at.to_rfc3339()
                    ));
                    Duration::ZERO
                })
            }
        };
        let mut usage = Usage::new(Operation::InvokeEndpointAsync, duration);
        let bytes_out = completion
            .output_bytes
            .or(completion.output.map(|b| b.len() as u64));
        usage.bytes_out = bytes_out.unwrap_or(0);
        if bytes_out.is_none() {
            unknown.push((LineItem::DataOut, DATA_OUT_UNKNOWN.to_owned()));
        }
        usage.variant = variant;
        let tokens = completion.tokens.or_else(|| {
            completion
                .output
                .and_then(|body| meter.count_tokens(body, completion.output_content_type))
        });
        let mut tokens_unseen = TokensUnseen::default();
        if let Some(tokens) = tokens {
            usage = usage.with_tokens(tokens);
            tokens_unseen = usage.drop_implausible_tokens(&mut notes);
        }
        if completion.failed {
            usage.outcome = Outcome::Error;
        }
        Settlement {
            meter: meter.clone(),
            call: FinishedCall {
                endpoint,
                request_id: Some(call_id),
                started_at: submitted,
                targets: Default::default(),
                usage,
                tags,
                notes,
                shared_time: None,
                clock: None,
                serverless_ms: None,
                slots_busy_at_start: None,
                // A settlement bills no inference: its submission did.
                answers_2xx: 0,
                never_settled_jobs: 0,
                may_have_queued: 0,
                unknown,
                tokens_unseen,
                variant_assumed,
                submission_counted_unpriced: unpriced_counted_by == Some(meter.inner.id),
            },
            hold,
            #[cfg(feature = "fleet")]
            claimant: meter.inner.fleet.as_ref().map(|f| f.settlement_claimant()),
            key: call,
            _counted: meter.inner.calls.enter(),
        }
    }

    /// Asks the fleet (when on) whether another settlement of the invocation
    /// came first, marking this one otherwise. Owns what it needs.
    fn fleet_check(&self) -> FleetCheckFuture {
        #[cfg(feature = "fleet")]
        if let (Some(fleet), Some(claimant)) = (&self.meter.inner.fleet, &self.claimant) {
            let call_id = self.call.request_id.as_deref().unwrap_or_default();
            if made_up_locally(call_id) {
                return Box::pin(std::future::ready(FleetCheck::NotAsked(Some(
                    "not checked for duplicates in the fleet's other processes: the call id \
                     was made up by the submitting process (SageMaker returned no request id)",
                ))));
            }
            let claim =
                fleet.claim_settlement(call_id, &self.call.endpoint, claimant, SETTLED_KEPT);
            return Box::pin(async move {
                match claim.await {
                    Ok(crate::fleet::Claimed::First) => FleetCheck::First,
                    Ok(crate::fleet::Claimed::TakenOver { from }) => FleetCheck::TakenOver(from),
                    Ok(crate::fleet::Claimed::Before { at_ms }) => FleetCheck::Duplicate(at_ms),
                    Ok(crate::fleet::Claimed::InProgress { at_ms, until_ms }) => {
                        FleetCheck::InProgress(at_ms, until_ms)
                    }
                    Err(reason) => FleetCheck::Unchecked(reason),
                }
            });
        }
        Box::pin(std::future::ready(FleetCheck::NotAsked(None)))
    }

    /// The mark to write billed once the receipt is made: this settlement's,
    /// when `check` says it holds the invocation's mark in the fleet table, or
    /// may (the claim's answer was lost: applied, maybe; the write is
    /// conditional on the mark being this settlement's, so one not applied is
    /// left as it is).
    fn billed_mark(&self, check: &FleetCheck) -> Option<BilledMark> {
        #[cfg(feature = "fleet")]
        if let (
            FleetCheck::First | FleetCheck::TakenOver(_) | FleetCheck::Unchecked(_),
            Some(fleet),
            Some(claimant),
        ) = (check, &self.meter.inner.fleet, &self.claimant)
        {
            return Some(BilledMark {
                fleet: fleet.clone(),
                call_id: self.call.request_id.clone().unwrap_or_default(),
                endpoint: self.call.endpoint.clone(),
                claimant: claimant.clone(),
                claimed: !matches!(check, FleetCheck::Unchecked(_)),
            });
        }
        let _ = check;
        None
    }

    /// The receipt of a duplicate settlement: what the caller reported, billed
    /// nowhere (no lines, no totals, sinks or budgets), with a note saying where
    /// the invocation was first settled (`earlier`). The invocation's budget
    /// hold goes to the first settlement made here; one found by the fleet to
    /// be another process's has it taken back here.
    fn duplicate(self, earlier: SettledBefore, found: Found) -> Cost {
        let Settlement {
            meter, call, hold, ..
        } = self;
        // Nothing charged: the first settlement was, or will be.
        if let Some(hold) = hold {
            match found {
                // Made here, the first settlement takes the hold over when it
                // finishes (or took it back, the fleet's duplicate): a
                // duplicate found at once (two settled together) comes before
                // that, and must leave the hold where it finds it.
                Found::Here => hold.detach(),
                // Made by another process of the fleet, the first settlement
                // never will: the hold is taken back (see
                // `Reservation::settled_elsewhere`), in the fleet's table too.
                Found::InTheFleet => {
                    hold.settled_elsewhere(meter.now().into());
                    meter.charge_lapsed();
                }
            }
        }
        let FinishedCall {
            endpoint,
            request_id,
            started_at,
            usage,
            tags,
            mut notes,
            ..
        } = call;
        let call_id = request_id.unwrap_or_default();
        let where_ = match earlier.by {
            SettledBy::ThisClient => "by this client",
            SettledBy::Fleet => "by another process of the fleet",
        };
        let when = earlier
            .at
            .map_or_else(String::new, |at| format!(" at {}", at.to_rfc3339()));
        let note = match (earlier.claim_until, earlier.by) {
            (None, _) => format!(
                "{DUPLICATE_SETTLEMENT_NOTE} {where_}{when}; this receipt is recorded nowhere \
                 (totals, sinks, ledgers and budgets count the invocation once)"
            ),
            (Some(until), SettledBy::ThisClient) => format!(
                "{DUPLICATE_SETTLEMENT_NOTE} {where_}{when}, the first copy settled in this \
                 process, still settling (its receipt not made yet, due by {}): it bills \
                 the invocation, or finds another process of the fleet settling it, so this \
                 receipt is recorded nowhere; keep the queue message (do not delete it, let its \
                 visibility timeout lapse) so that its next delivery bills the invocation \
                 should no settlement finish",
                until.to_rfc3339()
            ),
            (Some(until), SettledBy::Fleet) => format!(
                "{DUPLICATE_SETTLEMENT_NOTE} {where_}{when}, whose settlement is still in \
                 progress (not billed yet, its claim running until {}): it bills the \
                 invocation, so this receipt is recorded nowhere; keep the queue message (do \
                 not delete it, let its visibility timeout lapse) so that its next delivery \
                 bills the invocation should that settlement never finish",
                until.to_rfc3339()
            ),
        };
        notes.insert(0, note);
        tracing::debug!(target: "sagemeter", endpoint = %endpoint, call_id = %call_id,
            settled = where_, "duplicate settlement of an async invocation: not billed again");
        let totals = meter.totals();
        // The fleet's spend as it stands: this receipt adds nothing to it.
        #[cfg(feature = "fleet")]
        let running_fleet_usd = meter
            .inner
            .fleet
            .as_ref()
            .map(|fleet| fleet.running_usd(meter.now()));
        #[cfg(not(feature = "fleet"))]
        let running_fleet_usd = None;
        let tags = meter.tags_into(tags);
        Cost {
            running_endpoint_usd: totals
                .by_endpoint
                .get(&endpoint)
                .copied()
                .unwrap_or_default(),
            call_id,
            at: DateTime::<Utc>::from(started_at),
            variant: usage.variant.clone(),
            endpoint,
            inference_component: None,
            target_model: None,
            billing: None,
            allocation: meter.inner.allocation,
            usage,
            lines: Vec::new(),
            cost_usd: rust_decimal::Decimal::ZERO,
            currency: "USD".into(),
            region: Some(meter.inner.region.clone()),
            running_client_usd: totals.client_usd,
            running_fleet_usd,
            accrual: None,
            tags,
            notes,
            settled_before: Some(earlier),
        }
    }

    /// Bill → totals → receipt → sinks, then the budgets: the compute arrives after
    /// the call, and the invocation's hold settles to it now. A duplicate the
    /// fleet found is billed nowhere.
    fn finish(mut self, prepared: &Prepared, check: FleetCheck) -> Cost {
        match check {
            FleetCheck::Duplicate(at_ms) => {
                let earlier = SettledBefore {
                    by: SettledBy::Fleet,
                    at: at_ms.and_then(DateTime::<Utc>::from_timestamp_millis),
                    claim_until: None,
                };
                // A later copy settled here is the fleet's duplicate too.
                let settled = &self.meter.inner.settled;
                settled.settled_first_by(&self.key, &earlier);
                return self.duplicate(earlier, Found::InTheFleet);
            }
            FleetCheck::InProgress(at_ms, until_ms) => {
                let earlier = SettledBefore {
                    by: SettledBy::Fleet,
                    at: at_ms.and_then(DateTime::<Utc>::from_timestamp_millis),
                    // Past any calendar (a mark damaged): running still.
                    claim_until: Some(
                        DateTime::<Utc>::from_timestamp_millis(until_ms)
                            .unwrap_or(DateTime::<Utc>::MAX_UTC),
                    ),
                };
                // Not billed yet, and maybe never (its process killed before
                // its receipt): a later copy asks the table again, and takes
                // the mark over once the claim ended. Its hold is taken back
                // as a duplicate's: the other settlement bills it, or the copy
                // that takes the mark over.
                self.meter.inner.settled.forget(&self.key);
                return self.duplicate(earlier, Found::InTheFleet);
            }
            FleetCheck::Unchecked(reason) => self.call.notes.push(format!(
                "not checked for duplicates in the fleet's other processes (the fleet table \
                 failed: {reason}): if another process settled this invocation too, it is \
                 counted twice"
            )),
            FleetCheck::TakenOver(from) => self.call.notes.push(format!(
                "billed here: the fleet table's mark of this invocation by another settlement \
                 ({from}) was not marked billed by the end of its claim (its process stopped \
                 before its receipt was made, or could not mark it), and is taken over: if \
                 that settlement billed it, it is counted twice"
            )),
            FleetCheck::NotAsked(Some(note)) => self.call.notes.push(note.to_owned()),
            FleetCheck::NotAsked(None) | FleetCheck::First => {}
        }
        let Settlement {
            meter,
            mut call,
            hold,
            key,
            ..
        } = self;
        if let Ok(profile) = &prepared.profile
            && profile.kind != EndpointKind::Async
        {
            call.notes.push(
                "the endpoint's profile is not asynchronous: compute priced at its real-time rate"
                    .to_owned(),
            );
        }
        // Its budgets settled before the sinks run, as a call's are: at the time
        // it was billed, and before another call (during a slow sink) can move
        // the budgets into the next period.
        let cost = meter.finish_settled(call, prepared, hold, None, Phase::Settled);
        // Billed here: a later copy is a plain duplicate, no longer one to keep.
        meter.inner.settled.settled_here(&key);
        cost
    }
}

/// A settlement waiting for its endpoint's rates (and the fleet's answer):
/// dropped before they come (its future was dropped), it finishes in the
/// background, as a dropped call does (see `CallInFlight`): the caller handed
/// over its [`PendingInference`] and cannot settle it again.
#[derive(Debug)]
struct Settling(Option<Settlement>);

impl Settling {
    /// Asks the fleet whether the settlement is a duplicate (see
    /// [`Settlement::fleet_check`]).
    fn fleet_check(&self) -> FleetCheckFuture {
        match &self.0 {
            Some(settlement) => settlement.fleet_check(),
            None => unreachable!("a Settling holds its settlement until finished"),
        }
    }

    /// The mark to write billed once the receipt is made (see
    /// [`Settlement::billed_mark`]).
    fn billed_mark(&self, check: &FleetCheck) -> Option<BilledMark> {
        self.0
            .as_ref()
            .and_then(|settlement| settlement.billed_mark(check))
    }

    /// The settlement receipt, priced with `prepared`.
    fn finish(mut self, prepared: &Prepared, check: FleetCheck) -> Cost {
        match self.0.take() {
            Some(settlement) => settlement.finish(prepared, check),
            None => unreachable!("a Settling holds its settlement until finished"),
        }
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        let Some(settlement) = self.0.take() else {
            return;
        };
        let background = settlement.meter.inner.background.clone();
        // Refused (shut down, no runtime), the task is dropped unrun: `later`
        // settles at once.
        background.spawn(SettleLater(Some(settlement)).run());
    }
}

/// A dropped settlement finishing in the background (see [`Settling`]); dropped
/// again before it is done (see [`NOT_WAITED`](super::meter::NOT_WAITED)), it
/// settles at once on the rates at hand ([`Meter::prepare_at_hand`]), unchecked
/// in the fleet (its mark may be written already): the invocation is still
/// billed.
struct SettleLater(Option<Settlement>);

impl SettleLater {
    async fn run(mut self) {
        let Some(settlement) = &self.0 else {
            return;
        };
        let (meter, endpoint) = (settlement.meter.clone(), settlement.call.endpoint.clone());
        // Asked again: a mark this settlement's dropped request made is found its
        // own (the same claimant).
        let check = settlement.fleet_check();
        price_in_span(&meter, &endpoint, check, move |prepared, check| {
            let settlement = self.0.take().expect("settled once");
            let mark = settlement.billed_mark(&check);
            (settlement.finish(prepared, check), mark)
        })
        .await;
    }
}

impl Drop for SettleLater {
    fn drop(&mut self) {
        let Some(settlement) = self.0.take() else {
            return;
        };
        let meter = settlement.meter.clone();
        tracing::warn!(target: "sagemeter", endpoint = %settlement.call.endpoint,
            "an async settlement was priced on the rates at hand, without waiting for the \
             others: {}", super::meter::NOT_WAITED);
        let prepared = meter.prepare_at_hand(&settlement.call.endpoint);
        #[cfg(feature = "fleet")]
        let check = FleetCheck::NotAsked(meter.inner.fleet.as_ref().map(|_| {
            "not checked for duplicates in the fleet's other processes: settled without \
             waiting for the fleet (the meter is shut down, there is no Tokio runtime, or the \
             runtime went away)"
        }));
        #[cfg(not(feature = "fleet"))]
        let check = FleetCheck::NotAsked(None);
        settlement.finish(&prepared, check);
    }
}

#[cfg(test)]
mod tests {
    use super::{AsyncCompletion, SettledBefore, SettledBy, SettledCalls, async_lifetime};
    use chrono::{DateTime, Utc};
    use std::time::{Duration, SystemTime};

    /// Settled first by this client at `at`, billed.
    fn here(at: SystemTime) -> Option<SettledBefore> {
        Some(SettledBefore {
            by: SettledBy::ThisClient,
            at: Some(DateTime::<Utc>::from(at)),
            claim_until: None,
        })
    }

    #[test]
    fn a_copy_of_a_notification_redelivered_days_later_is_still_a_duplicate() {
        let settled = SettledCalls::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let hour = Duration::from_secs(3600);
        assert_eq!(settled.remember("ep\0a", t0), None);
        settled.settled_here("ep\0a");
        // An SQS message not deleted comes back after its visibility timeout (up
        // to 12 h), or from a dead-letter queue days later: still the same call.
        assert_eq!(settled.remember("ep\0a", t0 + 12 * hour), here(t0));
        assert_eq!(settled.remember("ep\0a", t0 + 13 * 24 * hour), here(t0));
        // Past 14 days, the longest SQS keeps a message, it is forgotten.
        assert_eq!(settled.remember("ep\0b", t0 + hour), None);
        settled.settled_here("ep\0b");
        assert_eq!(settled.remember("ep\0a", t0 + 14 * 24 * hour), None);
        assert_eq!(
            settled.remember("ep\0b", t0 + 14 * 24 * hour),
            here(t0 + hour)
        );
    }

    #[test]
    fn a_copy_after_the_fleet_said_another_process_settled_it_says_so_too() {
        let settled = SettledCalls::default();
        let t1 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let fleet = SettledBefore {
            by: SettledBy::Fleet,
            at: DateTime::<Utc>::from_timestamp_millis(1_799_999_990_000),
            claim_until: None,
        };
        assert_eq!(settled.remember("ep\0a", t1), None);
        settled.settled_first_by("ep\0a", &fleet);
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(settled.remember("ep\0a", t2), Some(fleet));
    }

    /// A copy found still being settled by another process is forgotten: the
    /// next copy is the first here again (asks the fleet's table), and is kept
    /// its full 14 days from then, not from the copy forgotten.
    #[test]
    fn a_copy_forgotten_while_another_process_settles_it_is_remembered_afresh_next_time() {
        let settled = SettledCalls::default();
        let t1 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(settled.remember("ep\0a", t1), None);
        assert_eq!(settled.remember("ep\0b", t1), None);
        settled.forget("ep\0a");
        let t2 = t1 + Duration::from_secs(310);
        assert_eq!(settled.remember("ep\0a", t2), None);
        settled.settled_here("ep\0a");
        // 14 days after the first copy, the second is remembered still.
        assert_eq!(settled.remember("ep\0a", t1 + 14 * day), here(t2));
        assert_eq!(settled.remember("ep\0b", t1 + 14 * day), None);
    }

    /// A copy that comes while the first copy in this process still settles
    /// says it is in progress, until 5 minutes after the first started (keep the
    /// message: the first may yet find another process's claim running, and be
    /// forgotten); once the first is billed here, a copy is a plain duplicate;
    /// once it is forgotten, a copy is the first here again.
    #[test]
    fn a_copy_while_the_first_copy_here_still_settles_is_in_progress_until_it_ends() {
        let settled = SettledCalls::default();
        let t1 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(settled.remember("ep\0a", t1), None);
        // 1,800,000,000 s + 5 min (300 s) = 1,800,000,300 s.
        let settling = SettledBefore {
            by: SettledBy::ThisClient,
            at: Some(DateTime::<Utc>::from(t1)),
            claim_until: DateTime::<Utc>::from_timestamp(1_800_000_300, 0),
        };
        assert_eq!(settled.remember("ep\0a", t2), Some(settling.clone()));
        settled.settled_here("ep\0a");
        assert_eq!(settled.remember("ep\0a", t2), here(t1));

        assert_eq!(settled.remember("ep\0b", t1), None);
        let b = settled.remember("ep\0b", t2);
        assert_eq!(b.and_then(|b| b.claim_until), settling.claim_until);
        settled.forget("ep\0b");
        assert_eq!(settled.remember("ep\0b", t2), None);
    }

    #[test]
    fn an_async_completions_debug_shows_the_outputs_size_never_its_bytes() {
        let output = br#"{"generated_text":"the patient's diagnosis"}"#;
        let completion = AsyncCompletion::processed_for(Duration::from_secs(3)).output(output);
        let bytes_listed = format!("{:?}", &output[..4]); // "[123, 34, 103, 101]"
        for debug in [format!("{completion:?}"), format!("{completion:#?}")] {
            assert!(!debug.contains("diagnosis"), "{debug}");
            assert!(
                !debug.contains(&bytes_listed[1..bytes_listed.len() - 1]),
                "{debug}"
            );
            assert!(debug.contains(&output.len().to_string()), "{debug}");
        }
    }

    #[test]
    fn sagemakers_bound_on_an_async_request_is_its_ttl_plus_its_timeout_within_the_limits() {
        let h = |hours: u64, minutes: u64| Duration::from_secs(hours * 3600 + minutes * 60);
        // Defaults: 6 h in the queue + 15 min to run.
        assert_eq!(async_lifetime(None, None), h(6, 15));
        assert_eq!(async_lifetime(Some(600), Some(60)), h(0, 11));
        // Beyond SageMaker's limits (6 h, 1 h): capped; not positive: the default.
        assert_eq!(async_lifetime(Some(86_400), Some(7200)), h(7, 0));
        assert_eq!(async_lifetime(Some(0), Some(-1)), h(6, 15));
    }
}
