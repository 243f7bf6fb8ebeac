//! The one error type of sagemeter.

use aws_sdk_sagemakerruntime::error::SdkError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_async::InvokeEndpointAsyncError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::billing::Cost;
use crate::config_error::ConfigError;

/// Result with sagemeter's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a metered call or in building a client.
///
/// SDK errors are kept whole as the error's source: match on them as you would
/// without sagemeter. Pricing failures are never errors: they show up on the
/// receipt as a fallback or an unpriced line.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
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
    /// `InvokeEndpointAsync` was not accepted: nothing was queued, nothing is billed.
    #[error("InvokeEndpointAsync on endpoint `{endpoint}` failed")]
    InvokeAsync {
        /// The endpoint that was called.
        endpoint: String,
        /// The SDK's error, untouched (boxed: it is large).
        #[source]
        source: Box<SdkError<InvokeEndpointAsyncError, HttpResponse>>,
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
        "budget exceeded for {scope}: limit ${limit}, spent ${spent}, reserved by calls in \
         flight ${reserved}; the request was not sent"
    )]
    BudgetExceeded {
        /// The budget's scope (e.g. `endpoint chat-prod`).
        scope: String,
        /// The limit, USD.
        limit: rust_decimal::Decimal,
        /// Spent in the current period, USD.
        spent: rust_decimal::Decimal,
        /// Reserved by calls in flight, USD.
        reserved: rust_decimal::Decimal,
    },
    /// A fleet budget could not be leased because the fleet table did not answer
    /// (throttled, missing, unreachable or too slow), and the fleet refuses calls
    /// then ([`WhenUnavailable::Refuse`](crate::fleet::WhenUnavailable), the
    /// default). Nothing was sent.
    #[error(
        "budget for {scope} could not be checked across the fleet ({reason}); the request \
         was not sent (fleet budgets refuse calls while the table does not answer)"
    )]
    BudgetUnavailable {
        /// The budget's scope.
        scope: String,
        /// What the table did.
        reason: String,
    },
    /// A fleet table request outside a call failed (`fleet init`, `fleet status`).
    #[error("fleet table: {0}")]
    Fleet(String),
    /// Shutdown could not finish cleanly (background work still running, or a sink
    /// could not be flushed).
    #[error("shutdown incomplete: {0}")]
    Shutdown(String),
    /// A builder was given options that cannot work: which one, what is wrong and
    /// what to do are in the [`ConfigError`].
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Error::Config(err)
    }
}
