//! What a failed call says (stdout's `error` field, stderr): the operation, the
//! service's error code, HTTP status and request id. A model's own error message
//! (`ModelError`, `ModelStreamError`) is never shown: SageMaker quotes the model's
//! response body in it. Only the messages SageMaker writes about the request itself
//! (validation, throttling, availability, authentication) are shown, and of those
//! never the caller's identity (principal ARN, account id) nor what they quote of
//! the signed request (see [`sagemeter::redact::without_identity`]): `--json`
//! lines go to logs and tickets. The action denied stays named.

use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_sdk_sagemakerruntime::types::error::{ModelError, ResponseStreamError};
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::event_stream::RawMessage;
use sagemeter::redact::without_identity;

/// One line about a failed call or command, safe to print.
pub fn describe(error: &sagemeter::Error) -> String {
    match error {
        sagemeter::Error::Invoke { source, .. } => {
            let model = match source.as_service_error() {
                Some(InvokeEndpointError::ModelError(m)) => Some(m),
                _ => None,
            };
            format!("{error}: {}", describe_sdk(source, model))
        }
        sagemeter::Error::InvokeWithResponseStream { source, .. } => {
            let model = match source.as_service_error() {
                Some(InvokeEndpointWithResponseStreamError::ModelError(m)) => Some(m),
                _ => None,
            };
            format!("{error}: {}", describe_sdk(source, model))
        }
        sagemeter::Error::InvokeAsync { source, .. } => {
            format!("{error}: {}", describe_sdk(source, None))
        }
        // Its source is DescribeEndpoint's answer, which names the endpoint's ARN.
        sagemeter::Error::UnknownEndpoint { .. } => {
            without_identity(&sagemeter::redact::error_chain(error))
        }
        // A refusal is the estimate not fitting: when the limit is all spent,
        // that is what to say (no estimate fits); else how to state a truer one
        // (what is reserved comes back when calls in flight or leases end).
        sagemeter::Error::BudgetExceeded { limit, spent, .. } => format!(
            "{}; {}",
            sagemeter::redact::error_chain(error),
            if spent >= limit {
                "the limit is spent for this period"
            } else {
                "--estimate states what each call is assumed to cost"
            }
        ),
        other => sagemeter::redact::error_chain(other),
    }
}

/// An error in the middle of a response stream: its type and code, never its
/// message (a `ModelStreamError`'s can quote the model's output).
pub fn describe_stream_error(error: &SdkError<ResponseStreamError, RawMessage>) -> String {
    match error.as_service_error() {
        Some(ResponseStreamError::ModelStreamError(e)) => format!(
            "ModelStreamError, error code {}",
            e.error_code().unwrap_or("none")
        ),
        Some(ResponseStreamError::InternalStreamFailure(_)) => "InternalStreamFailure".into(),
        Some(other) => other.code().unwrap_or("an unnamed error").into(),
        None => match error {
            SdkError::ResponseError(_) => "an event could not be read".into(),
            other => sagemeter::redact::error_chain(other),
        },
    }
}

/// An SDK error: the service's code, status and request id, and what may be said
/// of its message ([`sagemeter::redact::service_message`]); transport errors as
/// their chain (they carry no payload).
fn describe_sdk<E>(error: &SdkError<E, Response>, model: Option<&ModelError>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let SdkError::ServiceError(context) = error else {
        return sagemeter::redact::error_chain(error);
    };
    let service = context.err();
    let code = service.code().unwrap_or("an unnamed error");
    let mut text = format!("{code} (HTTP {}", context.raw().status().as_u16());
    if let Some(id) = error.request_id() {
        text.push_str(&format!(", request id {id}"));
    }
    text.push(')');
    if let Some(model) = model {
        if let Some(status) = model.original_status_code() {
            text.push_str(&format!(": the model answered HTTP {status}"));
        }
        if let Some(arn) = model.log_stream_arn() {
            // The log group's name tells where to look; the account id is left out.
            text.push_str(&format!("; its log stream: {}", without_identity(arn)));
        }
    }
    text.push_str(&sagemeter::redact::service_message(code, service.message()));
    text
}

#[cfg(test)]
mod tests {
    use super::describe;
    use sagemeter::Decimal;

    fn refusal(limit: &str, spent: &str, reserved: Decimal) -> String {
        describe(&sagemeter::Error::BudgetExceeded {
            scope: sagemeter::budget::BudgetScope::endpoint("chat"),
            period: sagemeter::budget::BudgetPeriod::Day,
            fleet_wide: false,
            estimate: "0.30".parse().unwrap(),
            limit: limit.parse().unwrap(),
            spent: spent.parse().unwrap(),
            reserved,
        })
    }

    #[test]
    fn a_refusal_says_whether_room_was_left_and_writes_amounts_without_trailing_zeros() {
        // $0.75 of $1 spent: the $0.30 estimate would fit a truer one; the reserved
        // $0 (kept at 8 places) is written as 0.
        let room = refusal("1", "0.75", Decimal::new(0, 8));
        assert_eq!(
            room,
            "budget exceeded for endpoint chat per day: the call's estimate of $0.3 does not \
             fit (limit $1, spent $0.75, reserved and not spent yet $0); the request was not \
             sent; --estimate states what each call is assumed to cost"
        );
        // All of it spent: no estimate fits, and the hint would mislead.
        let spent = refusal("1", "1.0", Decimal::ZERO);
        assert!(
            spent.ends_with(
                "spent $1, reserved and not spent yet $0); the request was not \
                             sent; the limit is spent for this period"
            ),
            "{spent}"
        );
    }
}
