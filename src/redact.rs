//! Text from AWS that is safe to keep: an AWS error message can quote the request
//! it could not authenticate, session token included. Every AWS message this crate
//! puts on a receipt, in a log, a ledger or an error passes through here first.

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

/// `text` cut before the first thing it quotes of a signed request (the
/// canonical request, the string to sign, an `Authorization` header): such a quote can hold a credential (the session
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

/// `text`, a failure AWS described, without the caller's identity: the principal
/// of "User: … is not authorized" (`<principal>`), every ARN's account id
/// (`<account>`; IAM and STS ARNs' resource too, which name roles, sessions and
/// people), any other twelve-digit account id, and what it quotes of a signed
/// request ([`without_signed_request`]). The action denied
/// (`sagemaker:InvokeEndpoint`) and the resource's service and name stay: the text
/// still says which permission is missing. For text that is written down and
/// shared: receipts, JSON output, logs.
pub fn without_identity(text: &str) -> String {
    crate::endpoint::redact_identity(text)
}

/// An error and its sources by their `Display` only (a `Debug`, the SDK's
/// `DisplayErrorContext` too, prints the raw response and SDK internals), each
/// message once (wrappers often repeat their source's), joined with `: ` and cut
/// before anything it quotes of a signed request ([`without_signed_request`]).
/// What to say of a failure AWS sent no message for (no credentials, no
/// connection) or of any error a tool prints.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    match without_signed_request(&message) {
        std::borrow::Cow::Borrowed(_) => message,
        std::borrow::Cow::Owned(cut) => cut,
    }
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

    /// An error with a message and an optional source, as SDK errors chain them.
    #[derive(Debug)]
    struct Chained(&'static str, Option<Box<Chained>>);

    impl std::fmt::Display for Chained {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Chained {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn an_error_chain_says_each_message_once_and_never_the_signed_request() {
        let wrapped = Chained(
            "service error",
            Some(Box::new(Chained(
                "InvalidSignatureException",
                Some(Box::new(Chained(INVALID_SIGNATURE, None))),
            ))),
        );
        let said = error_chain(&wrapped);
        assert!(
            said.starts_with(
                "service error: InvalidSignatureException: The request signature we \
                 calculated does not match"
            ),
            "{said}"
        );
        assert!(!said.contains("SESSION-TOKEN-SECRET"), "{said}");
        // A wrapper that repeats its source's message says it once.
        let repeated = Chained(
            "dispatch failure: io error",
            Some(Box::new(Chained("io error", None))),
        );
        assert_eq!(error_chain(&repeated), "dispatch failure: io error");
    }
}
