//! The one error type of sagemeter.

use std::fmt;

use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_sdk_sagemakerruntime::types::error::ResponseStreamError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::event_stream::RawMessage;

use crate::billing::Cost;
use crate::config_error::ConfigError;

/// Result with sagemeter's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a metered call or in building a client.
///
/// SDK errors are kept whole as the error's source: match on them as you would
/// without sagemeter. Pricing failures are never errors: they show up on the
/// receipt as a fallback or an unpriced line.
///
/// `Display` names the operation and the endpoint, never what the service said.
/// `Debug` is written by hand: for an SDK error it shows the service's error code,
/// the HTTP status and the request id, and withholds the message and the raw
/// response. A model's error (`ModelError`, and `InvokeEndpointWithResponseStream`'s)
/// quotes the model's output or the input it choked on, in its message, its
/// `OriginalMessage` and the response body, and `{:?}` is what ends up in logs
/// and panic messages (`unwrap`, `main` returning `Err`). The whole error is
/// still yours: match on `source`, or follow [`source()`](std::error::Error::source).
/// What the sources say is the SDK's, untouched: printing them (their `Debug`, the
/// SDK's `DisplayErrorContext`, a reporter such as `anyhow`'s `{:#}` that walks the
/// chain) can quote the model's output, an endpoint URL's password, the request
/// body or a credential process's output. To log a chain, use
/// [`redact::error_chain`](crate::redact::error_chain), which says each cause
/// without them.
///
/// ```
/// # fn show(err: &sagemeter::Error) {
/// // Safe to log: code, HTTP status and request id, no message.
/// tracing::warn!(error = ?err, "inference failed");
/// if let sagemeter::Error::Invoke { source, .. } = err {
///     // The model's own words, for the caller to judge.
///     let _message = source.as_service_error().and_then(|e| e.meta().message());
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(thiserror::Error)]
pub enum Error {
    /// `InvokeEndpoint` failed. The call may still have cost money (the model ran
    /// and returned an error, or the SDK timed the call out after sending it, a
    /// `cancelled` receipt): `cost` holds the receipt when one could be made.
    #[error("InvokeEndpoint on endpoint `{endpoint}` failed")]
    Invoke {
        /// The endpoint that was called.
        endpoint: String,
        /// The SDK's error, untouched (boxed: it is large).
        #[source]
        source: Box<SdkError<InvokeEndpointError, HttpResponse>>,
        /// The receipt of the failed call, when the model ran.
        cost: Option<Box<Cost>>,
    },
    /// `InvokeEndpointWithResponseStream` failed before its stream began. As with
    /// [`Error::Invoke`], `cost` holds the receipt when the model ran (a model error,
    /// or a timeout after sending).
    /// Errors in the middle of a stream come from the stream's `recv()`, as in the SDK.
    #[error("InvokeEndpointWithResponseStream on endpoint `{endpoint}` failed")]
    InvokeWithResponseStream {
        /// The endpoint that was called.
        endpoint: String,
        /// The SDK's error, untouched (boxed: it is large).
        #[source]
        source: Box<SdkError<InvokeEndpointWithResponseStreamError, HttpResponse>>,
        /// The receipt of the failed call, when the model ran.
        cost: Option<Box<Cost>>,
    },
    /// A response stream failed in its middle: the error its `recv()` returned (as
    /// the SDK's does), made a sagemeter error by `?` in a function returning
    /// [`Result`] (or `Error::from`), with `Debug` as safe to log as the others'
    /// (a `ModelStreamError`'s message quotes the model's output). The stream's
    /// receipt covers it up to the failure.
    #[error("a response stream of InvokeEndpointWithResponseStream failed midway")]
    ResponseStream {
        /// The SDK's error, untouched (boxed: it is large).
        #[source]
        source: Box<SdkError<ResponseStreamError, RawMessage>>,
    },
    /// `InvokeEndpointAsync` failed. No attempt was accepted and `cost` is `None`;
    /// an attempt cut off by a timeout after it was sent may have been queued all
    /// the same, unseen (budgets count it at its estimate; see
    /// [`is_retryable`](Error::is_retryable)). A submission SageMaker accepted (answered 2XX) but whose answer
    /// could not be read, and which the SDK's retries then failed, is queued all
    /// the same: `cost` holds its receipt (data in and the per-inference fee of
    /// each accepted submission; its compute cannot be settled, its output
    /// location being unknown).
    #[error("InvokeEndpointAsync on endpoint `{endpoint}` failed")]
    InvokeAsync {
        /// The endpoint that was called.
        endpoint: String,
        /// The SDK's error, untouched (boxed: it is large).
        #[source]
        source: Box<SdkError<InvokeEndpointAsyncError, HttpResponse>>,
        /// The receipt of the failed submission, when SageMaker accepted it.
        cost: Option<Box<Cost>>,
    },
    /// The endpoint does not exist (in this account and region), and the call has
    /// no receipt. A failed call that reached the model is [`Error::Invoke`] with
    /// its receipt, whatever discovery says.
    #[error(
        "unknown endpoint `{endpoint}`: no such SageMaker endpoint in this account and region \
         (check the name, the region and AWS_ENDPOINT_URL)"
    )]
    UnknownEndpoint {
        /// The name that was asked for.
        endpoint: String,
        /// What the service said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request was invalid before anything was sent (e.g. missing endpoint name,
    /// body over SageMaker's payload limit).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// An enforced budget has no room for this call's estimated cost. Nothing was sent.
    #[error(
        "budget exceeded for {scope} per {period}{}: the call's estimate of ${} does not fit \
         (limit ${}, spent ${}, reserved and not spent yet ${}); the request was not sent",
        if *.fleet_wide { " (fleet-wide)" } else { "" },
        .estimate.normalize(),
        .limit.normalize(),
        .spent.normalize(),
        .reserved.normalize()
    )]
    BudgetExceeded {
        /// The budget's scope (shown as e.g. `endpoint chat-prod`): which budget
        /// refused, to match on (a tenant's, an endpoint's).
        scope: crate::budget::BudgetScope,
        /// The budget's period.
        period: crate::budget::BudgetPeriod,
        /// Whether the figures below are the fleet's, as its table holds them
        /// (a fleet budget that could not lease more), not this process's.
        fleet_wide: bool,
        /// What the call was estimated to cost (see
        /// [`Budget::estimate`](crate::budget::Budget::estimate)), USD: what did not
        /// fit.
        estimate: rust_decimal::Decimal,
        /// The limit, USD.
        limit: rust_decimal::Decimal,
        /// Spent in the current period, USD; for a fleet-wide budget, by every
        /// process as of their last writes to the table.
        spent: rust_decimal::Decimal,
        /// Reserved and not spent yet, USD: by this client's calls in flight; for a
        /// fleet-wide budget, leased to processes (this one included) and not spent.
        reserved: rust_decimal::Decimal,
    },
    /// A fleet budget could not be leased because the fleet table could not be
    /// used (throttled, missing, access denied, unreachable or too slow), and the
    /// fleet refuses calls then (`fleet::WhenUnavailable::Refuse`,
    /// the default). Nothing was sent.
    #[error(
        "budget for {scope} per {period} could not be checked across the fleet ({reason}); \
         the request was not sent (fleet budgets refuse calls while the table cannot be used)"
    )]
    BudgetUnavailable {
        /// The budget's scope.
        scope: crate::budget::BudgetScope,
        /// The budget's period.
        period: crate::budget::BudgetPeriod,
        /// What the table did.
        reason: String,
    },
    /// A fleet table request outside a call failed (`fleet init`, `fleet status`).
    #[error("fleet table: {0}")]
    Fleet(String),
    /// Shutdown could not finish cleanly (background work still running, a sink
    /// that failed or did not finish in time, fleet spend not written): each
    /// problem, `; `-separated.
    #[error("shutdown incomplete: {0}")]
    Shutdown(String),
    /// [`Meter::flush`](crate::Meter::flush): the sinks that could not be
    /// flushed, each by name with its error, `; `-separated. The others were.
    #[error("flush incomplete: {0}")]
    Flush(String),
    /// A builder was given options that cannot work: which one, what is wrong and
    /// what to do are in the [`ConfigError`].
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
    /// A ledger could not be opened, written or read (from
    /// [`JsonlLedger::open`](crate::ledger::JsonlLedger::open),
    /// [`ledger::read_all`](crate::ledger::read_all) and the like): `?` on them
    /// works in a function returning [`Result`].
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// An endpoint's profile could not be discovered, from
    /// [`Meter::endpoint_profile`](crate::Meter::endpoint_profile) (a warm-up at
    /// startup): `?` on it works in a function returning [`Result`]. (A call
    /// never fails for it: its receipt says what could not be priced.)
    #[error(transparent)]
    Discovery(#[from] crate::endpoint::DiscoveryError),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invoke {
                endpoint,
                source,
                cost,
            } => f
                .debug_struct("Invoke")
                .field("endpoint", endpoint)
                .field("source", &SdkSummary(source))
                .field("cost", cost)
                .finish(),
            Error::InvokeWithResponseStream {
                endpoint,
                source,
                cost,
            } => f
                .debug_struct("InvokeWithResponseStream")
                .field("endpoint", endpoint)
                .field("source", &SdkSummary(source))
                .field("cost", cost)
                .finish(),
            Error::ResponseStream { source } => f
                .debug_struct("ResponseStream")
                .field("source", &StreamSummary(source))
                .finish(),
            Error::InvokeAsync {
                endpoint,
                source,
                cost,
            } => f
                .debug_struct("InvokeAsync")
                .field("endpoint", endpoint)
                .field("source", &SdkSummary(source))
                .field("cost", cost)
                .finish(),
            Error::UnknownEndpoint { endpoint, source } => f
                .debug_struct("UnknownEndpoint")
                .field("endpoint", endpoint)
                .field("source", &AnySummary(source.as_ref()))
                .finish(),
            Error::InvalidRequest(message) => {
                f.debug_tuple("InvalidRequest").field(message).finish()
            }
            Error::BudgetExceeded {
                scope,
                period,
                fleet_wide,
                estimate,
                limit,
                spent,
                reserved,
            } => f
                .debug_struct("BudgetExceeded")
                .field("scope", scope)
                .field("period", period)
                .field("fleet_wide", fleet_wide)
                .field("estimate", estimate)
                .field("limit", limit)
                .field("spent", spent)
                .field("reserved", reserved)
                .finish(),
            Error::BudgetUnavailable {
                scope,
                period,
                reason,
            } => f
                .debug_struct("BudgetUnavailable")
                .field("scope", scope)
                .field("period", period)
                .field("reason", reason)
                .finish(),
            Error::Fleet(message) => f.debug_tuple("Fleet").field(message).finish(),
            Error::Shutdown(message) => f.debug_tuple("Shutdown").field(message).finish(),
            Error::Flush(message) => f.debug_tuple("Flush").field(message).finish(),
            Error::Config(config) => f.debug_tuple("Config").field(config).finish(),
            Error::Ledger(ledger) => f.debug_tuple("Ledger").field(ledger).finish(),
            Error::Discovery(discovery) => f.debug_tuple("Discovery").field(discovery).finish(),
        }
    }
}

/// The SageMaker Runtime error codes a retry may get past (see
/// [`Error::is_retryable`]).
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalDependencyException",
    "InternalStreamFailure",
    "ModelNotReadyException",
];

/// [`Error::BudgetUnavailable`]'s reason for a call that needed a fleet lease after
/// the meter was shut down.
pub(crate) const SHUT_DOWN_UNAVAILABLE: &str =
    "the meter is shut down: its fleet leases were given back";

/// Whether a connector error says the connection was never made: the default HTTP
/// client (hyper) marks a failure to connect as such, whatever ended it. Nothing
/// was sent then.
pub(crate) fn never_connected(
    err: &aws_smithy_runtime_api::client::result::ConnectorError,
) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = next {
        if cause
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            return true;
        }
        next = cause.source();
    }
    false
}

/// Whether the SDK failed a call before its request was sent: it could not build
/// the request (`ConstructionFailure`), or, in the attempt, get the credentials
/// to sign it or resolve its endpoint (the orchestrator reports these as a
/// `DispatchFailure` with no response, the credentials provider's or endpoint
/// resolver's error as its cause; nothing is sent before they are done). The
/// fleet table's errors are told apart by it too.
pub(crate) fn sdk_refused<E, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ConstructionFailure(_) => true,
        SdkError::DispatchFailure(failure) => failure.as_connector_error().is_some_and(|err| {
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
            while let Some(cause) = next {
                // The generated endpoint resolvers fail with `aws_smithy_http`'s
                // type ("Missing Region", FIPS with a custom endpoint); the
                // runtime API's is the other resolvers'.
                if cause.is::<aws_credential_types::provider::error::CredentialsError>()
                    || cause.is::<aws_smithy_http::endpoint::ResolveEndpointError>()
                    || cause.is::<aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError>()
                {
                    return true;
                }
                next = cause.source();
            }
            false
        }),
        _ => false,
    }
}

/// A model error passing on a model server's "busy" answer (its original status
/// 429 or 503: overloaded, not ready): a retry may get past it, on any operation.
fn model_busy(original_status_code: Option<i32>) -> bool {
    matches!(original_status_code, Some(429 | 503))
}

/// Whether an SDK error is one a retry may get past without doing the work twice
/// unseen (see [`Error::is_retryable`]): a failure in transit only when the
/// connection was never made (a request that went out may have run), and a
/// timeout, the SDK's or the HTTP client's read timeout after connecting, only
/// when `timeout_billed` (the call's receipt bills it: a retry is billed again,
/// and says so).
fn sdk_retryable<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, timeout_billed: bool) -> bool {
    match err {
        SdkError::TimeoutError(_) => timeout_billed,
        SdkError::DispatchFailure(failure) => failure
            .as_connector_error()
            .is_some_and(|err| never_connected(err) || (timeout_billed && err.is_timeout())),
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| RETRYABLE_CODES.contains(&code)),
        _ => false,
    }
}

/// What `Debug` shows of an SDK error: its kind, and for a service error its code,
/// HTTP status and request id. Never the service's message or the response body
/// (a model's error quotes the model). A failure to build or send the request
/// shows its cause as [`error_chain`](crate::redact::error_chain) says it (never the
/// request, its URL's credentials or its body).
struct SdkSummary<'a, E>(&'a SdkError<E, HttpResponse>);

impl<E: ProvideErrorMetadata + std::error::Error + 'static> fmt::Debug for SdkSummary<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WITHHELD: &str = "withheld: it can quote the model; see Error::source";
        match self.0 {
            SdkError::ServiceError(context) => f
                .debug_struct("ServiceError")
                .field("code", &context.err().code())
                .field("status", &context.raw().status().as_u16())
                .field("request_id", &self.0.request_id())
                .field("message", &WITHHELD)
                .finish(),
            SdkError::ResponseError(context) => f
                .debug_struct("ResponseError")
                .field("status", &context.raw().status().as_u16())
                .field("request_id", &self.0.request_id())
                .field("response", &WITHHELD)
                .finish(),
            SdkError::TimeoutError(_) => f.write_str("TimeoutError"),
            // The connector's error, or building the request failed: said as
            // `error_chain` says it (the SDK's own `Debug` of an endpoint URL it
            // could not apply prints the URL and the request, body included).
            SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
                let kind = match self.0 {
                    SdkError::DispatchFailure(_) => "DispatchFailure",
                    _ => "ConstructionFailure",
                };
                f.debug_tuple(kind)
                    .field(&format_args!("{}", crate::redact::error_chain(self.0)))
                    .finish()
            }
            _ => f.write_str("SdkError"),
        }
    }
}

/// What `Debug` shows of an error in the middle of a stream: for a service error
/// its code (and a `ModelStreamError`'s error code) and request id, never its
/// message (the model's output).
struct StreamSummary<'a>(&'a SdkError<ResponseStreamError, RawMessage>);

impl fmt::Debug for StreamSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_service_error() {
            Some(service) => f
                .debug_struct("ServiceError")
                .field("code", &service.code())
                .field(
                    "error_code",
                    &match service {
                        ResponseStreamError::ModelStreamError(e) => e.error_code(),
                        _ => None,
                    },
                )
                .field("request_id", &service.request_id())
                .field(
                    "message",
                    &"withheld: it can quote the model; see Error::source",
                )
                .finish(),
            None => match self.0 {
                SdkError::ResponseError(_) => {
                    f.write_str("ResponseError (an event that does not read)")
                }
                SdkError::TimeoutError(_) => f.write_str("TimeoutError"),
                other => f
                    .debug_tuple("SdkError")
                    .field(&format_args!("{}", crate::redact::error_chain(other)))
                    .finish(),
            },
        }
    }
}

impl From<SdkError<ResponseStreamError, RawMessage>> for Error {
    fn from(source: SdkError<ResponseStreamError, RawMessage>) -> Self {
        Error::ResponseStream {
            source: Box::new(source),
        }
    }
}

/// The summary of an [`Error::UnknownEndpoint`]'s source: one of the three
/// operations' SDK errors.
struct AnySummary<'a>(&'a (dyn std::error::Error + Send + Sync + 'static));

impl fmt::Debug for AnySummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.0;
        if let Some(e) = source.downcast_ref::<SdkError<InvokeEndpointError, HttpResponse>>() {
            SdkSummary(e).fmt(f)
        } else if let Some(e) =
            source.downcast_ref::<SdkError<InvokeEndpointWithResponseStreamError, HttpResponse>>()
        {
            SdkSummary(e).fmt(f)
        } else if let Some(e) =
            source.downcast_ref::<SdkError<InvokeEndpointAsyncError, HttpResponse>>()
        {
            SdkSummary(e).fmt(f)
        } else {
            f.write_str("withheld: see Error::source")
        }
    }
}

impl Error {
    /// Whether the call was refused before its request was sent: an invalid
    /// request, a budget with no room or that could not be checked, or an SDK
    /// call that could not be made (the SDK could not build the request, get
    /// credentials to sign it, or resolve its endpoint). No SageMaker call was
    /// made, and none is billed. (Should the SDK fail so on a retry, after a
    /// first attempt was throttled or refused, that attempt went out, and was not
    /// billed either; for `InvokeEndpointAsync`, a first attempt that timed out
    /// after it was sent may have been queued, so a retry failing so is no proof
    /// that nothing was.) A connection that could not be made is not a refusal:
    /// see [`is_retryable`](Self::is_retryable). Failures the SDK reports with
    /// types of its own that it does not export (no credentials provider at all,
    /// an identity cache's load timed out) are not told apart: `false`.
    pub fn refused_before_sending(&self) -> bool {
        match self {
            Error::InvalidRequest(_)
            | Error::BudgetExceeded { .. }
            | Error::BudgetUnavailable { .. } => true,
            Error::Invoke { source, cost, .. } => cost.is_none() && sdk_refused(source),
            Error::InvokeWithResponseStream { source, cost, .. } => {
                cost.is_none() && sdk_refused(source)
            }
            Error::InvokeAsync { source, cost, .. } => cost.is_none() && sdk_refused(source),
            _ => false,
        }
    }

    /// Whether the same call, tried again, may succeed without doing the work
    /// twice unseen: SageMaker was throttling, unavailable or failed inside
    /// (`ThrottlingException`, `ServiceUnavailable`, `InternalFailure`,
    /// `InternalDependencyException`, `InternalStreamFailure`), the model was not
    /// loaded yet (`ModelNotReadyException`) or answered that it was busy (a
    /// `ModelError` whose `OriginalStatusCode` is 429 or 503: a model server's
    /// "overloaded"), the connection could not be made, the SDK timed out a call
    /// whose receipt bills it (its operation or attempt timeout, or the HTTP
    /// client's read timeout; [`cost`](Self::cost): the retry is billed again), or
    /// a fleet budget's table could not be reached.
    ///
    /// Not for what would fail again (a request SageMaker refused,
    /// `ValidationError`; a model that failed on the input, any other `ModelError`
    /// or `ModelStreamError`; an unknown endpoint; a budget with no room; a meter
    /// shut down; a configuration), nor for what may have run unseen: a failure in
    /// transit after the connection was made, and an `InvokeEndpointAsync`
    /// submission cut off by a timeout (SageMaker may have queued it: a retry
    /// would run it twice, the first without a receipt) or that SageMaker
    /// accepted before it failed (it has a [`cost`](Self::cost): queued, a retry
    /// would run it twice). The SDK has already
    /// retried what its retry policy retries. A stream that failed midway
    /// ([`Error::ResponseStream`]) was billed to the failure on the stream's
    /// receipt, not on this error.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Invoke { source, .. } => {
                let busy = match source.as_service_error() {
                    Some(InvokeEndpointError::ModelError(model)) => {
                        model_busy(model.original_status_code())
                    }
                    _ => false,
                };
                busy || sdk_retryable(source, true)
            }
            Error::InvokeWithResponseStream { source, .. } => {
                let busy = match source.as_service_error() {
                    Some(InvokeEndpointWithResponseStreamError::ModelError(model)) => {
                        model_busy(model.original_status_code())
                    }
                    _ => false,
                };
                busy || sdk_retryable(source, true)
            }
            // A submission cut off may have been queued: it would run twice, and
            // the first has no receipt. One with a receipt was queued: it would
            // run twice.
            Error::InvokeAsync { source, cost, .. } => {
                cost.is_none() && sdk_retryable(source, false)
            }
            Error::ResponseStream { source } => sdk_retryable(source, true),
            // The table may answer again; a meter shut down will not lease again.
            Error::BudgetUnavailable { reason, .. } => reason != SHUT_DOWN_UNAVAILABLE,
            _ => false,
        }
    }

    /// The receipt of a failed call that reached the model (a model error, or a
    /// call the SDK timed out after sending it), or of a failed async submission
    /// SageMaker accepted: [`Error::Invoke`]'s, [`Error::InvokeWithResponseStream`]'s
    /// or [`Error::InvokeAsync`]'s `cost`. `None` for a failure that did not reach
    /// the model (nothing billed), for an async submission no attempt of which was
    /// accepted (one cut off by a timeout after it was sent may have been queued,
    /// unseen), and for every other error; a stream
    /// that failed midway ([`Error::ResponseStream`]) has its receipt on the
    /// stream ([`MeteredEventReceiver::cost`](crate::client::MeteredEventReceiver::cost)).
    pub fn cost(&self) -> Option<&Cost> {
        match self {
            Error::Invoke { cost, .. }
            | Error::InvokeWithResponseStream { cost, .. }
            | Error::InvokeAsync { cost, .. } => cost.as_deref(),
            _ => None,
        }
    }

    /// The sagemeter error in `err`'s source chain (`err` itself included), if
    /// any: an SDK call metered by the
    /// [`MeteringInterceptor`](crate::client::MeteringInterceptor) that a budget
    /// refused fails with an SDK error that has it a few sources down.
    ///
    /// ```
    /// # fn handle(err: &(dyn std::error::Error + 'static)) {
    /// if let Some(sagemeter::Error::BudgetExceeded { scope, .. }) = sagemeter::Error::find_in(err) {
    ///     eprintln!("over budget: {scope}");
    /// }
    /// # }
    /// ```
    pub fn find_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<Error>() {
                return Some(found);
            }
            next = e.source();
        }
        None
    }
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Error::Config(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sagemakerruntime::error::ErrorMetadata;
    use aws_sdk_sagemakerruntime::types::error::ModelError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    const MARKER: &str = "SECRET-PAYLOAD-42";

    /// SageMaker's answer when the model failed: HTTP 424, `ModelError`, the
    /// model's output quoted in `Message` and `OriginalMessage`, and in the body.
    fn model_error() -> SdkError<InvokeEndpointError, HttpResponse> {
        let message = format!("Received client error (400) from primary with message \"{MARKER}\"");
        let body = format!(
            r#"{{"Message":"{message}","OriginalMessage":"{MARKER}","OriginalStatusCode":400}}"#
        );
        let mut raw = HttpResponse::new(StatusCode::try_from(424).unwrap(), SdkBody::from(body));
        raw.headers_mut().insert("x-amzn-RequestId", "req-42");
        let err = ModelError::builder()
            .message(&message)
            .original_message(MARKER)
            .original_status_code(400)
            .meta(
                ErrorMetadata::builder()
                    .code("ModelError")
                    .message(&message)
                    .build(),
            )
            .build();
        SdkError::service_error(InvokeEndpointError::ModelError(err), raw)
    }

    #[test]
    fn debug_of_a_model_error_shows_code_status_and_request_id_never_the_model() {
        let err = Error::Invoke {
            endpoint: "rt".into(),
            source: Box::new(model_error()),
            cost: None,
        };
        let debug = format!("{err:?}");
        let pretty = format!("{err:#?}");
        for text in [&debug, &pretty, &err.to_string()] {
            assert!(!text.contains(MARKER), "the model's output leaked: {text}");
        }
        assert_eq!(
            debug,
            "Invoke { endpoint: \"rt\", source: ServiceError { code: Some(\"ModelError\"), \
             status: 424, request_id: Some(\"req-42\"), message: \"withheld: it can quote the \
             model; see Error::source\" }, cost: None }"
        );
        // The caller still has the whole SDK error.
        let Error::Invoke { source, .. } = &err else {
            unreachable!()
        };
        let Some(InvokeEndpointError::ModelError(model)) = source.as_service_error() else {
            panic!("{source:?}")
        };
        assert_eq!(model.original_message(), Some(MARKER));
        let mut chain = String::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(e) = next {
            chain.push_str(&e.to_string());
            next = e.source();
        }
        assert!(chain.contains(MARKER), "{chain}");
    }

    /// An error `recv()` returned in the middle of a stream: `?` makes it a
    /// sagemeter error whose `Debug` (a `main` returning it, `unwrap`, `?err` in
    /// a log) shows its codes, never the model's output in its message.
    #[test]
    fn a_stream_error_made_a_sagemeter_error_shows_its_codes_never_the_model() {
        use aws_sdk_sagemakerruntime::types::error::ModelStreamError;
        // The error type of the SDK's `recv()`, as it is.
        #[allow(clippy::result_large_err)]
        fn next() -> std::result::Result<(), SdkError<ResponseStreamError, RawMessage>> {
            let err = ModelStreamError::builder()
                .message(format!("the model said {MARKER}"))
                .error_code("ModelCrashed")
                .meta(
                    ErrorMetadata::builder()
                        .code("ModelStreamError")
                        .message(format!("the model said {MARKER}"))
                        .build(),
                )
                .build();
            Err(SdkError::service_error(
                ResponseStreamError::ModelStreamError(err),
                RawMessage::invalid(Some(bytes::Bytes::from(MARKER))),
            ))
        }
        fn handler() -> Result<()> {
            next()?;
            Ok(())
        }
        let err = handler().unwrap_err();
        let debug = format!("{err:?}");
        for text in [&debug, &format!("{err:#?}"), &err.to_string()] {
            assert!(!text.contains(MARKER), "the model's output leaked: {text}");
        }
        assert_eq!(
            debug,
            "ResponseStream { source: ServiceError { code: Some(\"ModelStreamError\"), \
             error_code: Some(\"ModelCrashed\"), request_id: None, message: \"withheld: it \
             can quote the model; see Error::source\" } }"
        );
    }

    #[test]
    fn only_what_a_retry_may_get_past_is_retryable() {
        let invoke = |source| Error::Invoke {
            endpoint: "rt".into(),
            source: Box::new(source),
            cost: None,
        };
        let coded = |code: &str| {
            let raw = HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::empty());
            let meta = ErrorMetadata::builder().code(code).build();
            SdkError::service_error(InvokeEndpointError::generic(meta), raw)
        };
        for code in [
            "ThrottlingException",
            "ServiceUnavailable",
            "ModelNotReadyException",
        ] {
            assert!(invoke(coded(code)).is_retryable(), "{code}");
        }
        assert!(!invoke(coded("ValidationError")).is_retryable());
        // The model failed on the input (400): again, if tried again.
        assert!(!invoke(model_error()).is_retryable());
        // The model said it was busy.
        let busy = |status: i32| {
            let raw = HttpResponse::new(StatusCode::try_from(424).unwrap(), SdkBody::empty());
            let err = ModelError::builder()
                .original_status_code(status)
                .meta(ErrorMetadata::builder().code("ModelError").build())
                .build();
            invoke(SdkError::service_error(
                InvokeEndpointError::ModelError(err),
                raw,
            ))
        };
        assert!(busy(429).is_retryable() && busy(503).is_retryable());
        assert!(!busy(500).is_retryable());
        // The same on a response stream: busy before the stream began.
        let busy_streaming = |status: i32| {
            let raw = HttpResponse::new(StatusCode::try_from(424).unwrap(), SdkBody::empty());
            let err = ModelError::builder()
                .original_status_code(status)
                .meta(ErrorMetadata::builder().code("ModelError").build())
                .build();
            Error::InvokeWithResponseStream {
                endpoint: "rt".into(),
                source: Box::new(SdkError::service_error(
                    InvokeEndpointWithResponseStreamError::ModelError(err),
                    raw,
                )),
                cost: None,
            }
        };
        assert!(busy_streaming(429).is_retryable() && busy_streaming(503).is_retryable());
        assert!(!busy_streaming(500).is_retryable());
        // Timed out: the receipt bills it, the retry will be billed too.
        assert!(invoke(SdkError::timeout_error("took too long")).is_retryable());
        // An async submission timed out may have been queued: not retried unseen.
        let submitted = Error::InvokeAsync {
            endpoint: "rt".into(),
            source: Box::new(SdkError::timeout_error("took too long")),
            cost: None,
        };
        assert!(!submitted.is_retryable());
        // The HTTP client's read timeout after the request went out: the receipt
        // bills it as the SDK's other timeouts (the retry is billed too); an async
        // submission cut off by it may have been queued.
        fn read_timeout<E>() -> SdkError<E, HttpResponse> {
            SdkError::dispatch_failure(
                aws_smithy_runtime_api::client::result::ConnectorError::timeout(
                    "read timed out".into(),
                ),
            )
        }
        assert!(invoke(read_timeout()).is_retryable());
        let submitted = Error::InvokeAsync {
            endpoint: "rt".into(),
            source: Box::new(read_timeout()),
            cost: None,
        };
        assert!(!submitted.is_retryable());
        // An I/O failure once connected: the request may have run.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let io = aws_smithy_runtime_api::client::result::ConnectorError::io(reset.into());
        assert!(!invoke(SdkError::dispatch_failure(io)).is_retryable());
        let unavailable = |reason: &str| Error::BudgetUnavailable {
            scope: crate::budget::BudgetScope::Client,
            period: crate::budget::BudgetPeriod::Day,
            reason: reason.into(),
        };
        assert!(unavailable("throttled").is_retryable());
        assert!(!unavailable(SHUT_DOWN_UNAVAILABLE).is_retryable());
        assert!(!Error::InvalidRequest("too big".into()).is_retryable());
    }

    #[test]
    fn only_a_refusal_before_sending_says_it_sent_nothing() {
        assert!(Error::InvalidRequest("too big".into()).refused_before_sending());
        assert!(
            Error::BudgetUnavailable {
                scope: crate::budget::BudgetScope::Client,
                period: crate::budget::BudgetPeriod::Day,
                reason: "throttled".into()
            }
            .refused_before_sending()
        );
        let failed = Error::Invoke {
            endpoint: "rt".into(),
            source: Box::new(model_error()),
            cost: None,
        };
        assert!(!failed.refused_before_sending());
        // The SDK could not get credentials to sign the request: it was not sent
        // (the orchestrator's DispatchFailure, the provider's error its cause).
        let invoke = |source| Error::Invoke {
            endpoint: "rt".into(),
            source: Box::new(source),
            cost: None,
        };
        let no_credentials = aws_smithy_runtime_api::client::result::ConnectorError::other(
            Box::new(
                aws_credential_types::provider::error::CredentialsError::provider_error(
                    "the SSO session has expired",
                ),
            ),
            None,
        );
        assert!(invoke(SdkError::dispatch_failure(no_credentials)).refused_before_sending());
        assert!(invoke(SdkError::construction_failure("no body")).refused_before_sending());
        // A failure in transit may have sent it.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let io = aws_smithy_runtime_api::client::result::ConnectorError::io(reset.into());
        assert!(!invoke(SdkError::dispatch_failure(io)).refused_before_sending());
    }

    #[test]
    fn debug_of_an_unknown_endpoint_summarises_its_sdk_error() {
        let err = Error::UnknownEndpoint {
            endpoint: "gone".into(),
            source: Box::new(model_error()),
        };
        let debug = format!("{err:?}");
        assert!(!debug.contains(MARKER), "{debug}");
        assert!(
            debug.contains("code: Some(\"ModelError\"), status: 424"),
            "{debug}"
        );
    }
}
