//! What a failed call says (stdout's `error` field, stderr): the operation, the
//! service's error code, HTTP status and request id. A model's own error message
//! (`ModelError`, `ModelStreamError`) is never shown: SageMaker quotes the model's
//! response body in it. Only the messages SageMaker writes about the request itself
//! (validation, throttling, availability, authentication) are shown, and of those
//! never what they quote of the signed request (see [`without_signed_request`]).

use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_sdk_sagemakerruntime::types::error::{ModelError, ResponseStreamError};
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::event_stream::RawMessage;

/// Error codes whose message SageMaker writes about the request, never quoting the
/// model's output. Any other code's message (and an unknown error's) is withheld.
const MESSAGE_SHOWN: &[&str] = &[
    "ValidationError",
    "ModelNotReadyException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalDependencyException",
    "InternalStreamFailure",
    "ThrottlingException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
];

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
        other => crate::error_chain(other),
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
            other => crate::error_chain(other),
        },
    }
}

/// An SDK error: the service's code, status and request id (message only when
/// [`MESSAGE_SHOWN`]); transport errors as their chain (they carry no payload).
fn describe_sdk<E>(error: &SdkError<E, Response>, model: Option<&ModelError>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let SdkError::ServiceError(context) = error else {
        return crate::error_chain(error);
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
            text.push_str(&format!("; its log stream: {arn}"));
        }
    }
    match service.message() {
        Some(message) if MESSAGE_SHOWN.contains(&code) => {
            text.push_str(": ");
            text.push_str(&without_signed_request(message));
        }
        Some(_) => text.push_str(" (its message is not shown: it can quote the model's output)"),
        None => {}
    }
    text
}

/// What AWS quotes of a request it could not authenticate, lower case: an
/// `InvalidSignatureException`'s message goes on, after a blank line, with the
/// canonical request (every signed header's value, the session token in
/// `x-amz-security-token` among them) and the string to sign; an
/// `IncompleteSignature`'s quotes the `Authorization` header (`Authorization=AWS4-HMAC-SHA256
/// Credential=…, Signature=…`).
const SIGNED_REQUEST_QUOTES: &[&str] = &[
    "the canonical string",
    "the string-to-sign",
    "canonicalrequest",
    "stringtosign",
    "authorization=",
    "x-amz-security-token",
    "credential=",
    "signature=",
];

/// `text` cut before the first thing it quotes of a signed request (see
/// [`SIGNED_REQUEST_QUOTES`]): such a quote can hold a credential (the session
/// token) and the request's signed headers. What AWS says before it (`The request
/// signature we calculated does not match the signature you provided. Check your
/// AWS Secret Access Key and signing method.`) is what tells the user what is wrong.
pub fn without_signed_request(text: &str) -> std::borrow::Cow<'_, str> {
    // ASCII lower case keeps every byte where it was: the offsets hold for `text`.
    let lower = text.to_ascii_lowercase();
    let Some(at) = SIGNED_REQUEST_QUOTES
        .iter()
        .filter_map(|quote| lower.find(quote))
        .min()
    else {
        return text.into();
    };
    let kept = text[..at].trim_end();
    format!("{kept} [the rest withheld: it quotes the signed request, credentials included]").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What AWS answers a request signed with the wrong secret key: the canonical
    /// request it expected, with the session token, and the string to sign (the
    /// shape of the messages AWS services return, a placeholder token).
    const INVALID_SIGNATURE: &str = "The request signature we calculated does not match the \
        signature you provided. Check your AWS Secret Access Key and signing method. Consult \
        the service documentation for details.\n\nThe Canonical String for this request \
        should have been\n'POST\n/endpoints/rt/invocations\n\nhost:runtime.sagemaker.us-east-1.amazonaws.com\n\
        x-amz-date:20261204T100000Z\nx-amz-security-token:SESSION-TOKEN-SECRET\n\n\
        host;x-amz-date;x-amz-security-token\ne3b0c442'\n\nThe String-to-Sign should have \
        been\n'AWS4-HMAC-SHA256\n20261204T100000Z\n20261204/us-east-1/sagemaker/aws4_request\n8fa2'\n";

    #[test]
    fn a_signature_error_keeps_what_is_wrong_and_never_the_signed_request() {
        let shown = without_signed_request(INVALID_SIGNATURE);
        assert_eq!(
            shown,
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details. [the rest withheld: it quotes the signed request, \
             credentials included]"
        );
        // IncompleteSignature quotes the Authorization header on the same line.
        let incomplete = "Authorization header requires 'Signature' parameter. \
                          Authorization=AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY/20261204/us-east-1/sagemaker/aws4_request";
        let shown = without_signed_request(incomplete);
        assert!(!shown.contains("ASIAEXAMPLEKEY"), "{shown}");
        assert!(
            shown.starts_with("Authorization header requires 'Signature' parameter."),
            "{shown}"
        );
        // A message that quotes nothing of the request is left as it is.
        let throttled = "Rate exceeded";
        assert_eq!(without_signed_request(throttled), throttled);
    }
}
