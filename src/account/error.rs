//! Why the account view or a reconciliation could not be made.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::fmt;

/// Why the account view or a reconciliation could not be made.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The credentials lack an IAM action.
    #[error("not allowed to call {operation}: grant the IAM action {action} ({message})")]
    MissingPermission {
        /// The IAM action to grant, e.g. `ce:GetCostAndUsage`.
        action: &'static str,
        /// The API operation that was refused.
        operation: &'static str,
        /// What the service said.
        message: String,
    },
    /// A service answered with another error, or could not be reached.
    #[error("{operation} failed: {message}")]
    Service {
        /// The API operation, e.g. `GetCostAndUsage`.
        operation: &'static str,
        /// The service's error code, when it gave one.
        code: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// The dates cannot be asked of Cost Explorer.
    #[error("{0}")]
    DateRange(String),
    /// A ledger cannot be reconciled with this account's bill.
    #[error("ledger {file}: {reason}")]
    Ledger {
        /// The ledger file.
        file: String,
        /// Why (another region or currency).
        reason: String,
    },
    /// A ledger could not be read.
    #[error(transparent)]
    LedgerRead(#[from] crate::ledger::LedgerError),
    /// An option cannot work (e.g. an empty tag key).
    #[error("{0}")]
    Invalid(String),
}

/// An SDK error as an [`AccountError`]: access denied names `action`.
pub(crate) fn from_sdk<E, R>(
    operation: &'static str,
    action: &'static str,
    err: SdkError<E, R>,
) -> AccountError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    // Never what the message quotes of a signed request (the session token).
    let message =
        crate::redact::without_signed_request(&err.message().map(str::to_owned).unwrap_or_else(
            || aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        ))
        .into_owned();
    if code.as_deref().is_some_and(is_access_denied) {
        AccountError::MissingPermission {
            action,
            operation,
            message,
        }
    } else {
        AccountError::Service {
            operation,
            code,
            message,
        }
    }
}

/// Whether an AWS error code means "not allowed" (the codes differ by protocol).
pub(crate) fn is_access_denied(code: &str) -> bool {
    code.contains("AccessDenied") || code == "UnauthorizedOperation" || code == "NotAuthorized"
}
