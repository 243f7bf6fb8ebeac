//! Why the account view or a reconciliation could not be made.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::fmt;

/// The SDK error behind an [`AccountError`].
type SdkSource = Box<dyn std::error::Error + Send + Sync>;

/// Why the account view or a reconciliation could not be made.
///
/// An AWS refusal keeps the SDK's error as its [`source`](std::error::Error::source)
/// (`SdkError<GetCostAndUsageError, HttpResponse>` and the like), except when what
/// it says quotes a signed request (an `InvalidSignatureException` quotes the
/// canonical request, session token included): then only the `message`, cut before
/// the quote, is kept. The `message` never names the caller (principal ARN, account
/// id: see [`crate::redact::without_identity`]), and `Debug` shows the operation,
/// code and message, never the source's raw response.
///
/// ```
/// # fn show(err: &sagemeter::account::AccountError) {
/// use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageError;
/// use aws_smithy_runtime_api::{client::result::SdkError, http::Response};
///
/// let sdk = std::error::Error::source(err)
///     .and_then(|s| s.downcast_ref::<SdkError<GetCostAndUsageError, Response>>());
/// if let Some(SdkError::ServiceError(context)) = sdk {
///     let _raw_status = context.raw().status();
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(thiserror::Error)]
pub enum AccountError {
    /// The credentials lack an IAM action.
    #[error("not allowed to call {operation}: grant the IAM action {action} ({message})")]
    MissingPermission {
        /// The IAM action to grant, e.g. `ce:GetCostAndUsage`.
        action: &'static str,
        /// The API operation that was refused.
        operation: &'static str,
        /// What the service said, without the caller's identity.
        message: String,
        /// The SDK's error (see [`AccountError`] for when it is kept).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
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
        /// The SDK's error, when the service answered (see [`AccountError`] for
        /// when it is kept).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The dates cannot be asked of Cost Explorer.
    #[error("{0}")]
    DateRange(String),
    /// A ledger cannot be reconciled with this account's bill.
    #[error("ledger {file}: {reason}")]
    Ledger {
        /// The ledger file.
        file: String,
        /// Why (another currency, a figure no meter wrote).
        reason: String,
    },
    /// A ledger could not be read.
    #[error(transparent)]
    LedgerRead(#[from] crate::ledger::LedgerError),
    /// An option cannot work (e.g. an empty tag key).
    #[error("{0}")]
    Invalid(String),
    /// A paginated API answered, as the token of its next page, a token it had
    /// already been sent (the one just sent, or one pages before): reading on
    /// would ask for the same pages without end, and stopping there would leave
    /// out the pages after them.
    #[error(
        "{operation} answered a page token it had already been sent as its next page's: \
         stopped rather than ask for the same pages again without end"
    )]
    RepeatedPageToken {
        /// The API operation, e.g. `GetMetricData`.
        operation: &'static str,
    },
}

impl fmt::Debug for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source's own Debug prints the raw response: the service's message
        // whole, the caller's identity in it.
        const SOURCE: &str = "the SDK error: see Error::source";
        let source = |s: &Option<SdkSource>| s.as_ref().map(|_| SOURCE);
        match self {
            AccountError::MissingPermission {
                action,
                operation,
                message,
                source: s,
            } => f
                .debug_struct("MissingPermission")
                .field("action", action)
                .field("operation", operation)
                .field("message", message)
                .field("source", &source(s))
                .finish(),
            AccountError::Service {
                operation,
                code,
                message,
                source: s,
            } => f
                .debug_struct("Service")
                .field("operation", operation)
                .field("code", code)
                .field("message", message)
                .field("source", &source(s))
                .finish(),
            AccountError::DateRange(message) => f.debug_tuple("DateRange").field(message).finish(),
            AccountError::Ledger { file, reason } => f
                .debug_struct("Ledger")
                .field("file", file)
                .field("reason", reason)
                .finish(),
            AccountError::LedgerRead(e) => f.debug_tuple("LedgerRead").field(e).finish(),
            AccountError::Invalid(message) => f.debug_tuple("Invalid").field(message).finish(),
            AccountError::RepeatedPageToken { operation } => f
                .debug_struct("RepeatedPageToken")
                .field("operation", operation)
                .finish(),
        }
    }
}

/// An SDK error as an [`AccountError`]: access denied names `action`.
pub(crate) fn from_sdk<E>(
    operation: &'static str,
    action: &'static str,
    err: SdkError<E, HttpResponse>,
) -> AccountError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    // Never the caller's identity, nor what the message quotes of a signed
    // request (the session token).
    let message = crate::redact::without_identity(&match &err {
        // An answer that is no AWS error at all (the SDK says "malformed JSON error
        // body"): a web page from a proxy, or an emulator for a region it does not
        // serve. Its status and type say more than the parser's complaint.
        SdkError::ResponseError(context) if !context.raw().status().is_success() => {
            not_an_aws_answer(context.raw())
        }
        _ => err
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| crate::redact::error_chain(&err)),
    });
    // The SDK error whole, unless something of it quotes a signed request: its
    // chain's Display (an unmodelled error's metadata prints the message whole)
    // or its Debug (the raw response's body).
    let quotes_a_signed_request = |text: &str| {
        matches!(
            crate::redact::without_signed_request(text),
            std::borrow::Cow::Owned(_)
        )
    };
    let source = (!quotes_a_signed_request(&DisplayErrorContext(&err).to_string())
        && !quotes_a_signed_request(&format!("{err:?}")))
    .then(|| Box::new(err) as SdkSource);
    if code.as_deref().is_some_and(is_access_denied) {
        AccountError::MissingPermission {
            action,
            operation,
            message,
            source,
        }
    } else {
        AccountError::Service {
            operation,
            code,
            message,
            source,
        }
    }
}

/// What an error answer that is not AWS's says of itself: its status and type.
fn not_an_aws_answer(raw: &HttpResponse) -> String {
    let kind = raw
        .headers()
        .get("content-type")
        .map(|t| format!(" of {}", t.split(';').next().unwrap_or(t).trim()))
        .unwrap_or_default();
    format!(
        "the endpoint answered HTTP {}{kind}, which is not an AWS error (a proxy's page, or an \
         endpoint URL that does not serve this region?)",
        raw.status().as_u16()
    )
}

/// Whether an AWS error code means "not allowed" (the codes differ by protocol).
pub(crate) fn is_access_denied(code: &str) -> bool {
    code.contains("AccessDenied") || code == "UnauthorizedOperation" || code == "NotAuthorized"
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;
    use aws_smithy_types::error::display::DisplayErrorContext;
    use std::error::Error as _;

    type CeError = SdkError<GetCostAndUsageError, Response>;

    /// Cost Explorer's answer `code`/`message`, as the SDK hands it over: an
    /// unmodelled error (its metadata), the raw response's JSON body saying the same.
    fn refusal(status: u16, code: &str, message: &str) -> CeError {
        let body = serde_json::json!({"__type": code, "Message": message}).to_string();
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(
            GetCostAndUsageError::generic(meta),
            Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body)),
        )
    }

    /// Every word of the error a caller may print: Display, its sources' Display,
    /// Debug.
    fn everything_printed(err: &AccountError) -> String {
        format!("{err}\n{}\n{err:?}", DisplayErrorContext(err))
    }

    #[test]
    fn a_request_that_never_left_says_why_without_the_sdks_debug_dump() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        // What the SDK returns when no provider in the chain has credentials: no
        // answer from AWS, so no message; the chain's messages say why.
        let err: CeError = SdkError::dispatch_failure(ConnectorError::other(
            Box::new(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "no providers in chain provided credentials",
                ),
            ),
            None,
        ));
        let err = from_sdk("GetCostAndUsage", "ce:GetCostAndUsage", err);
        let said = err.to_string();
        assert!(said.contains("dispatch failure"), "{said}");
        assert!(
            said.contains("no providers in chain provided credentials"),
            "{said}"
        );
        // Not the SDK's Debug dump of the same chain.
        assert!(!said.contains("DispatchFailure {"), "{said}");
        assert!(!said.contains("ConnectorError {"), "{said}");
    }

    #[test]
    fn an_aws_refusal_keeps_the_sdk_error_as_its_source_and_prints_no_identity() {
        let said = "User: arn:aws:sts::123456789012:assumed-role/FinOps/alice is not \
                    authorized to perform: ce:GetCostAndUsage on resource: \
                    arn:aws:ce:us-east-1:123456789012:/GetCostAndUsage because no \
                    identity-based policy allows the ce:GetCostAndUsage action";
        let err = from_sdk(
            "GetCostAndUsage",
            "ce:GetCostAndUsage",
            refusal(400, "AccessDeniedException", said),
        );
        assert!(
            matches!(
                err,
                AccountError::MissingPermission {
                    action: "ce:GetCostAndUsage",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "not allowed to call GetCostAndUsage: grant the IAM action ce:GetCostAndUsage \
             (User: <principal> is not authorized to perform: ce:GetCostAndUsage on resource: \
             arn:aws:ce:us-east-1:<account>:/GetCostAndUsage because no identity-based policy \
             allows the ce:GetCostAndUsage action)"
        );
        let debug = format!("{err:?}");
        for identity in ["123456789012", "FinOps", "alice"] {
            assert!(!debug.contains(identity), "{identity} in {debug}");
        }
        // The SDK's error, whole: what the service said is the caller's to read.
        let sdk = err
            .source()
            .and_then(|s| s.downcast_ref::<CeError>())
            .expect("the SDK error is the source");
        assert_eq!(sdk.code(), Some("AccessDeniedException"));
        assert_eq!(sdk.message(), Some(said));

        let err = from_sdk(
            "GetCostAndUsage",
            "ce:GetCostAndUsage",
            refusal(400, "LimitExceededException", "Rate exceeded"),
        );
        assert!(
            matches!(&err, AccountError::Service { code: Some(c), message, .. }
                if c == "LimitExceededException" && message == "Rate exceeded"),
            "{err:?}"
        );
        let sdk = err.source().and_then(|s| s.downcast_ref::<CeError>());
        assert_eq!(sdk.and_then(|e| e.message()), Some("Rate exceeded"));
    }

    #[test]
    fn an_answer_that_is_no_aws_error_is_named_by_its_status_and_type() {
        // What the SDK makes of a proxy's or an emulator's HTML error page: a
        // response error ("malformed JSON error body"), with the raw answer.
        let mut page = Response::new(
            StatusCode::try_from(500).unwrap(),
            SdkBody::from("<!doctype html><title>500 Internal Server Error</title>"),
        );
        page.headers_mut()
            .insert("content-type", "text/html; charset=utf-8");
        let sdk: CeError = SdkError::response_error(
            "invalid input: malformed JSON error body: unexpected token '<'",
            page,
        );
        let err = from_sdk("GetCostAndUsage", "ce:GetCostAndUsage", sdk);
        let said = err.to_string();
        assert!(
            said.starts_with("GetCostAndUsage failed: the endpoint answered HTTP 500 of text/html"),
            "{said}"
        );
        assert!(!said.contains("malformed"), "{said}");
    }

    #[test]
    fn a_signature_error_keeps_no_source_that_would_print_the_signed_request() {
        const TOKEN: &str = "SESSION-TOKEN-MARKER-3c1f";
        let said = format!(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.\n\nThe Canonical String for \
             this request should have been\n'POST\n/\n\nhost:ce.us-east-1.amazonaws.com\n\
             x-amz-date:20261204T100000Z\nx-amz-security-token:{TOKEN}\n\n\
             host;x-amz-date;x-amz-security-token\ne3b0c442'\n"
        );
        let sdk = refusal(403, "InvalidSignatureException", &said);
        // The SDK's own chain and Debug print the message whole.
        assert!(DisplayErrorContext(&sdk).to_string().contains(TOKEN));
        assert!(format!("{sdk:?}").contains(TOKEN));

        let err = from_sdk("GetCostAndUsage", "ce:GetCostAndUsage", sdk);
        assert!(err.source().is_none(), "{err:?}");
        let printed = everything_printed(&err);
        assert!(!printed.contains(TOKEN), "{printed}");
        assert!(
            err.to_string().starts_with(
                "GetCostAndUsage failed: The request signature we calculated does not match \
                 the signature you provided. Check your AWS Secret Access Key and signing method."
            ),
            "{err}"
        );
    }
}
