//! Text from AWS that is safe to keep: an AWS error message can quote the request
//! it could not authenticate, session token included. Every AWS message this crate
//! puts on a receipt, in a log, a ledger or an error passes through here first.

/// What AWS quotes of a request it could not authenticate, lower case: an
/// `InvalidSignatureException`'s message goes on, after a blank line, with the
/// canonical request (every signed header's value, the session token in
/// `x-amz-security-token` among them) and the string to sign; an
/// `IncompleteSignature`'s quotes the `Authorization` header (`Authorization=AWS4-HMAC-SHA256
/// Credential=…, Signature=…`); a presigned URL's query names the access key id
/// (`AWSAccessKeyId=…`).
const SIGNED_REQUEST_QUOTES: &[&str] = &[
    "the canonical string",
    "the string-to-sign",
    "canonicalrequest",
    "stringtosign",
    "authorization=",
    "x-amz-security-token",
    "credential=",
    "signature=",
    "awsaccesskeyid=",
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

/// SageMaker Runtime error codes whose message SageMaker writes about the request
/// (validation, throttling, availability, authentication), never quoting the
/// model's output or input. Any other code's message (a `ModelError`'s, a
/// `ModelStreamError`'s, an unknown error's) can, and is withheld by
/// [`error_chain`].
pub const REQUEST_MESSAGE_CODES: &[&str] = &[
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

/// An error and its sources by their `Display` only (a `Debug`, the SDK's
/// `DisplayErrorContext` too, prints the raw request or response and SDK
/// internals), each message once (wrappers often repeat their source's), joined
/// with `: `, what a URL in it carries left out ([`without_url_secrets`]) and cut
/// before anything it quotes of a signed request ([`without_signed_request`]).
/// What some errors in the chain say is cut short: a SageMaker
/// Runtime error (of `InvokeEndpoint`, its async and streaming forms, or in a
/// response stream) ends it with its code, and its message only for
/// [`REQUEST_MESSAGE_CODES`], without the caller's identity (a model's error quotes
/// the model's output); an endpoint URL the SDK could not apply and a request field
/// the SDK refused are named, never quoted; a credential provider's failure says
/// why without the caller's identity, and a `credential_process`'s never what the
/// process wrote.
/// What to say of a failure AWS sent no message for (no credentials, no
/// connection) or of any error a tool prints.
///
/// ```
/// use aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError;
/// // What the SDK says when an endpoint URL does not parse as a request's URI:
/// // the URL and the request's Debug, body included.
/// let err = ResolveEndpointError::message(
///     "failed to apply endpoint `http://u:PASS|WORD@host` to request `Request { body: b\"BODY\" }`",
/// );
/// let said = sagemeter::redact::error_chain(&err);
/// assert!(!said.contains("PASS") && !said.contains("BODY"), "{said}");
/// ```
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = String::new();
    let mut next = Some(error);
    // What a credential provider's sources say (STS's AccessDenied, say) can name
    // the caller: from one on, each text loses the caller's identity.
    let mut under_credentials = false;
    while let Some(cause) = next {
        let (mut text, last) = said_of(cause);
        under_credentials |= cause.is::<aws_credential_types::provider::error::CredentialsError>();
        if under_credentials {
            text = without_identity(&text);
        }
        if !text.is_empty() && !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        next = if last { None } else { cause.source() };
    }
    let message = without_url_secrets(&message).into_owned();
    match without_signed_request(&message) {
        std::borrow::Cow::Borrowed(_) => message,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

/// What an endpoint URL the SDK could not apply is said as: the SDK's own message
/// quotes the URL (a password in it) and the whole request (body and headers).
const ENDPOINT_NOT_APPLIED: &str =
    "the endpoint URL could not be applied to the request (not shown: it may hold credentials)";

/// Where aws-config's message for a failing `credential_process` starts quoting
/// what the process wrote to its standard error.
const PROCESS_STDERR: &str = "Stderr:";
/// What aws-config's messages for a failing `credential_process` all say.
const EXTERNAL_PROCESS: &str = "external process";
/// What a `credential_process`'s failure is said as when it has no standard
/// error to cut before: the rest (its unparsed output, say) can quote a secret.
const PROCESS_FAILED: &str =
    "the credential_process failed (its details are not shown: they can hold secrets)";

/// What [`error_chain`] says of one error of a chain, and whether that is the
/// last it says (its sources are not looked at):
/// - a SageMaker Runtime error: [`runtime_error`], the last;
/// - an endpoint URL the SDK could not apply to the request (its message quotes
///   the URL and the request's `Debug`, body and headers): that it could not, and
///   why (the URI parser's complaint, a source's);
/// - a credential provider's failure: its kind, and why (an expired SSO token, a
///   profile that loops, a role STS refused to let the caller assume, without the
///   caller's identity), but for an unhandled one: its kind, the last;
/// - a `credential_process`'s failure: up to its standard error (which can echo a
///   secret), or only that the process failed when there is no `Stderr:` to cut at;
/// - a request field the SDK refused to build (`invalid field in input: … (details:
///   …)`, the details quoting the value, a presigned URL's signature say): the
///   field, not the details.
fn said_of(error: &(dyn std::error::Error + 'static)) -> (String, bool) {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_smithy_types::error::operation::BuildError;
    if let Some(said) = runtime_error(error) {
        return (said, true);
    }
    if let Some(credentials) = error.downcast_ref::<CredentialsError>() {
        // An unhandled failure's source can quote an environment variable's value
        // (a secret key that is no Unicode); a kind added later is withheld too.
        let last = !matches!(
            credentials,
            CredentialsError::CredentialsNotLoaded(_)
                | CredentialsError::InvalidConfiguration(_)
                | CredentialsError::ProviderTimedOut(_)
                | CredentialsError::ProviderError(_)
        );
        let text = if last {
            format!("{credentials} (the provider's details are not shown: they can hold secrets)")
        } else {
            credentials.to_string()
        };
        return (text, last);
    }
    let text = error.to_string();
    if let Some(at) = text.find(PROCESS_STDERR) {
        let said = text[..at].trim_end();
        return (
            format!("{said} (its standard error is not shown: it can hold secrets)"),
            true,
        );
    }
    if text.contains(EXTERNAL_PROCESS) {
        return (PROCESS_FAILED.to_owned(), true);
    }
    if text.contains("failed to apply endpoint") {
        return (ENDPOINT_NOT_APPLIED.to_owned(), false);
    }
    match text.find(" (details:") {
        Some(at) if error.is::<BuildError>() => (
            format!(
                "{} (details not shown: they can quote the value)",
                &text[..at]
            ),
            false,
        ),
        _ => (text, false),
    }
}

/// `text` with what each URL in it (`scheme://…`) carries besides where it
/// points left out: the user and password before the host (`<credentials>@`) and
/// the query (`?<query>`: a presigned URL's signature and session token, an API
/// key). A URL ends at white space or a quote; a password holding one is not
/// found whole (the SDK's messages that quote such a URL are withheld by
/// [`error_chain`] as a whole). Its host ends also at `,` `;` `)` `]` (an IPv6
/// host's brackets aside), and a URL after it, or in its path, is looked at too.
///
/// ```
/// assert_eq!(
///     sagemeter::redact::without_url_secrets(
///         "GET `https://me:pw@host:1/in.json?X-Amz-Signature=abc` failed"
///     ),
///     "GET `https://<credentials>@host:1/in.json?<query>` failed"
/// );
/// ```
pub fn without_url_secrets(text: &str) -> std::borrow::Cow<'_, str> {
    const SCHEME_END: &str = "://";
    if !text.contains(SCHEME_END) {
        return std::borrow::Cow::Borrowed(text);
    }
    let ends_url = |c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '<' | '>');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(SCHEME_END) {
        let (head, tail) = rest.split_at(at + SCHEME_END.len());
        out.push_str(head);
        let url = &tail[..tail.find(ends_url).unwrap_or(tail.len())];
        // The user and password are before the last `@` ahead of the path (a
        // password may hold `@`, `,`, `;`, `)`, `]`, never `/`, `?` or `#`).
        let path_start = url.find(['/', '?', '#']).unwrap_or(url.len());
        let host_start = match url[..path_start].rfind('@') {
            Some(user_end) => {
                out.push_str("<credentials>@");
                user_end + 1
            }
            None => 0,
        };
        let host_end = host_start + host_len(&url[host_start..path_start]);
        out.push_str(&url[host_start..host_end]);
        // Scanning goes on from the end of the host when another URL follows
        // before any query (a list's next one, or one in the path), else from the
        // end of this URL, its query left out.
        let after_host = &url[host_end..];
        let query = after_host.find('?');
        let nested = after_host.find(SCHEME_END);
        rest = if nested.is_some_and(|n| query.is_none_or(|q| n < q)) {
            &tail[host_end..]
        } else {
            match query {
                Some(query) => {
                    out.push_str(&after_host[..query]);
                    out.push_str("?<query>");
                }
                None => out.push_str(after_host),
            }
            &tail[url.len()..]
        };
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// How long the host (and port) at the start of `authority` (what follows a
/// URL's `user:password@`, up to its path) is: up to a `,`, `;`, `)` or `]`
/// (a list's separator, a closing bracket), past an IPv6 host's `[…]`.
fn host_len(authority: &str) -> usize {
    let from = match authority.strip_prefix('[') {
        Some(ipv6) => ipv6.find(']').map_or(0, |end| end + 2),
        None => 0,
    };
    authority[from..]
        .find([',', ';', ')', ']'])
        .map_or(authority.len(), |end| from + end)
}

/// What [`error_chain`] says of a SageMaker Runtime error: its code, and its
/// message when SageMaker wrote it about the request. `None` for other errors.
fn runtime_error(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_sdk_sagemakerruntime::error::ProvideErrorMetadata;
    use aws_sdk_sagemakerruntime::operation::{
        invoke_endpoint::InvokeEndpointError, invoke_endpoint_async::InvokeEndpointAsyncError,
        invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError,
    };
    use aws_sdk_sagemakerruntime::types::error::{
        ModelError, ModelStreamError, ResponseStreamError,
    };
    let meta = if let Some(e) = error.downcast_ref::<InvokeEndpointError>() {
        e.meta()
    } else if let Some(e) = error.downcast_ref::<InvokeEndpointWithResponseStreamError>() {
        e.meta()
    } else if let Some(e) = error.downcast_ref::<InvokeEndpointAsyncError>() {
        e.meta()
    } else if let Some(e) = error.downcast_ref::<ResponseStreamError>() {
        e.meta()
    } else if let Some(e) = error.downcast_ref::<ModelError>() {
        e.meta()
    } else if let Some(e) = error.downcast_ref::<ModelStreamError>() {
        e.meta()
    } else {
        return None;
    };
    let code = meta.code().unwrap_or("an unnamed error");
    Some(format!("{code}{}", service_message(code, meta.message())))
}

/// What may be said of a SageMaker Runtime error's `message`, after its `code`:
/// `: ` and the message, without the caller's identity, a URL's secrets and
/// anything it quotes of a model's answer, for [`REQUEST_MESSAGE_CODES`]; that it
/// is not shown for any other code (it can quote the model's output); nothing
/// when there is none.
pub fn service_message(code: &str, message: Option<&str>) -> String {
    match message {
        Some(text) if REQUEST_MESSAGE_CODES.contains(&code) => {
            let text = without_model_quote(text);
            format!(
                ": {}",
                without_url_secrets(&without_quoted_values(&without_identity(&text)))
            )
        }
        Some(_) => " (its message is not shown: it can quote the model's output)".to_owned(),
        None => String::new(),
    }
}

/// How SageMaker introduces what a model said (`Received server error (500) from
/// model with message "…"`), lower case: a gateway or proxy answering with an
/// allowed code ([`REQUEST_MESSAGE_CODES`]) can pass a model's answer on so.
const MODEL_QUOTES: &[&str] = &["with message", "from model", "from primary"];

/// `text` cut before the first of [`MODEL_QUOTES`], saying the rest is withheld.
fn without_model_quote(text: &str) -> std::borrow::Cow<'_, str> {
    // ASCII lower case keeps every byte where it was: the offsets hold for `text`.
    let lower = text.to_ascii_lowercase();
    match MODEL_QUOTES.iter().filter_map(|q| lower.find(q)).min() {
        Some(at) => format!(
            "{} [the rest withheld: it can quote the model's output]",
            text[..at].trim_end()
        )
        .into(),
        None => text.into(),
    }
}

/// `text` without the values a validation message quotes (`Value 'x' at 'body'
/// failed to satisfy constraint`: AWS leaves out the values of members it marks
/// sensitive, the body among them, but a proxy or an emulator may not): `Value
/// (not shown) at 'body' …`, the member and the constraint kept. A value ends at
/// the first `' at '` followed by a member's name and the constraint (a value may
/// hold `' at '` itself); without one, nothing from the value on is kept.
fn without_quoted_values(text: &str) -> std::borrow::Cow<'_, str> {
    const VALUE: &str = "Value '";
    const AT: &str = "' at '";
    const FAILED: &str = "' failed to satisfy constraint";
    if !text.contains(VALUE) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(VALUE) {
        out.push_str(&rest[..start]);
        let after = &rest[start + VALUE.len()..];
        // The end: `' at '`, a member's name (letters, digits, `_`, `.`), then the
        // constraint: a value holding `' at '` or the constraint's words alone
        // does not end there.
        let ends_here = |at: usize| {
            let member = &after[at + AT.len()..];
            let name = member
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(member.len());
            name > 0 && member[name..].starts_with(FAILED)
        };
        let end = after
            .match_indices(AT)
            .map(|(at, _)| at)
            .find(|&at| ends_here(at));
        match end {
            Some(at) => {
                out.push_str("Value (not shown) at '");
                rest = &after[at + AT.len()..];
            }
            None => {
                out.push_str("Value (not shown)");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// The SDK's crates and modules whose verbose events print what a call carries or
/// who makes it, each with the most verbose level of theirs that [`may_log`]
/// lets through (a crate or module covers any module in it):
/// - TRACE of the SDK crates prints the HTTP request and response
///   (`aws_smithy_runtime`: body bytes, `Authorization` and `x-amz-security-token`
///   headers), event-stream messages (`aws_smithy_http`: a stream's payload
///   parts), the signed body (`aws_sigv4` with `LOG_SIGNABLE_BODY`), chunked
///   bodies (`aws_runtime`);
/// - DEBUG of the SDK's endpoint resolution logs its parameters, the credentials'
///   access key id among them;
/// - `aws_config` logs the credentials it loads from a profile at INFO (their
///   access key id, and the account id when the profile has one) and an assumed
///   role's at DEBUG: only its warnings and errors are shown;
/// - warnings that quote an endpoint URL or a credential provider's failure whole
///   (a URL's password, its query's token, a `credential_process`'s standard
///   error): an endpoint URL setting that does not parse (`aws_config`'s), an
///   endpoint URL's query (`aws_smithy_runtime_api`'s), a provider that failed
///   (`aws_config`'s chain and profile providers): errors only (the failure
///   itself reaches the caller, as [`error_chain`] says it);
/// - DEBUG and TRACE of `hyper_util` print the connection pool's key (`pooling
///   idle connection for ("http", user:password@host)`), an endpoint URL's
///   `user:password` in it; `aws_smithy_http_client`'s DEBUG prints the whole
///   request URI, the same `user:password` in it, when it adds a proxy's
///   credentials (`added proxy authentication header for http://user:password@…`);
/// - warnings of the SDK's reader of the shared config and credentials files
///   (`aws_runtime::env_config`): a file that is not UTF-8 is printed whole, its
///   secret keys among its bytes, and a sub-property line it cannot read is
///   quoted; errors only (the file is then read as empty, and a call without
///   credentials fails saying so).
const QUIETED: &[(&str, tracing::Level)] = &[
    ("aws_smithy_runtime", tracing::Level::DEBUG),
    ("aws_smithy_http", tracing::Level::DEBUG),
    ("aws_sigv4", tracing::Level::DEBUG),
    ("aws_runtime", tracing::Level::DEBUG),
    (
        "aws_smithy_runtime::client::orchestrator::endpoints",
        tracing::Level::INFO,
    ),
    ("aws_config", tracing::Level::WARN),
    (
        "aws_config::default_provider::endpoint_url",
        tracing::Level::ERROR,
    ),
    ("aws_config::meta::credentials", tracing::Level::ERROR),
    ("aws_config::profile::credentials", tracing::Level::ERROR),
    (
        "aws_smithy_runtime_api::http::request",
        tracing::Level::ERROR,
    ),
    // The same warning (an endpoint URL's query), from the SDK's other two
    // copies of its endpoint code.
    (
        "aws_smithy_runtime::client::endpoint",
        tracing::Level::ERROR,
    ),
    ("aws_smithy_http::endpoint", tracing::Level::ERROR),
    ("hyper_util", tracing::Level::INFO),
    ("aws_smithy_http_client", tracing::Level::INFO),
    ("aws_runtime::env_config", tracing::Level::ERROR),
];

/// Whether an event of `target` at `level` may be logged without a payload or a
/// credential in it: anything but the AWS SDK's events that print them (the HTTP
/// request and response at TRACE, the access key id at DEBUG, a profile's
/// credentials as `aws_config` loads them at INFO, an endpoint URL's password or a
/// credential provider's output in a warning, a credentials file that is not
/// UTF-8 in a warning) and `hyper_util`'s and
/// `aws_smithy_http_client`'s DEBUG and TRACE. The CLI logs through it
/// whatever `RUST_LOG` says; install it as a filter of its own in a program that
/// logs the SDK's events (a directive could be outdone by a more specific one):
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let no_payloads = tracing_subscriber::filter::filter_fn(|meta| {
///     sagemeter::redact::may_log(meta.target(), *meta.level())
/// });
/// tracing_subscriber::registry()
///     .with(no_payloads)
///     .with(tracing_subscriber::EnvFilter::new("trace"))
///     .with(tracing_subscriber::fmt::layer())
///     .init();
/// ```
pub fn may_log(target: &str, level: tracing::Level) -> bool {
    let under = |module: &str| {
        target
            .strip_prefix(module)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    };
    // tracing orders levels by verbosity: TRACE is the greatest.
    QUIETED
        .iter()
        .all(|(module, shown)| !under(module) || level <= *shown)
}

/// `text` with its control characters (escape sequences, carriage returns, line
/// breaks) written as escapes (`\u{1b}`, `\r`, `\n`), for a table on a terminal:
/// an endpoint name, tag or status read from a ledger or an AWS answer could
/// otherwise clear the screen, set the window title, or forge a row of its own.
/// Other text is returned as it is.
///
/// ```
/// assert_eq!(sagemeter::redact::printable("a\u{1b}[2J\nb"), "a\\u{1b}[2J\\nb");
/// assert_eq!(sagemeter::redact::printable("team-α"), "team-α");
/// // A right-to-left override, which would show `evil` as `live`.
/// assert_eq!(sagemeter::redact::printable("\u{202e}live"), "\\u{202e}live");
/// ```
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |_| true)
}

/// [`printable`], keeping line breaks: for a message or note of several lines (an
/// error on stderr) whose other control characters a terminal would obey.
///
/// ```
/// assert_eq!(sagemeter::redact::printable_lines("a\u{1b}[2J\nb"), "a\\u{1b}[2J\nb");
/// ```
pub fn printable_lines(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| c != '\n')
}

/// `text` with each control character `escape` says yes to written as its escape.
/// The bidirectional formatting characters count as control characters: they
/// reorder what a terminal shows (a name could read as another).
fn escaped(text: &str, escape: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    let escapes = |c: char| (c.is_control() || bidi(c)) && escape(c);
    if !text.chars().any(escapes) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escapes(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

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

    /// `err` as the SDK hands it over: a service error of HTTP `status`.
    fn service_error<E>(
        err: E,
        status: u16,
    ) -> aws_sdk_sagemakerruntime::error::SdkError<E, aws_smithy_runtime_api::http::Response> {
        let raw = aws_smithy_runtime_api::http::Response::new(
            status.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from("{}"),
        );
        aws_sdk_sagemakerruntime::error::SdkError::service_error(err, raw)
    }

    fn meta(code: &str, message: &str) -> aws_smithy_types::error::ErrorMetadata {
        aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message(message)
            .build()
    }

    /// A validation message quotes the value it refused (`Value '…' at '…'`):
    /// AWS leaves out sensitive members' values (the body), but a proxy or an
    /// emulator in between may not, so no value is shown; member and constraint are.
    #[test]
    fn a_validation_message_shows_the_member_and_the_constraint_never_the_value() {
        let said = service_message(
            "ValidationError",
            Some(
                "2 validation errors detected: Value 'PAYLOAD-MARKER' at 'body' failed to \
                 satisfy constraint: Member must have length less than or equal to 6291456; \
                 Value 'chat!' at 'endpointName' failed to satisfy constraint: Member must \
                 satisfy regular expression pattern",
            ),
        );
        assert_eq!(
            said,
            ": 2 validation errors detected: Value (not shown) at 'body' failed to satisfy \
             constraint: Member must have length less than or equal to 6291456; Value (not \
             shown) at 'endpointName' failed to satisfy constraint: Member must satisfy \
             regular expression pattern"
        );
        // A value holding `' at '`, and one with no constraint after it.
        assert_eq!(
            service_message(
                "ValidationError",
                Some("Value 'hi' at 'SECRET' at 'body' failed to satisfy constraint: too long")
            ),
            ": Value (not shown) at 'body' failed to satisfy constraint: too long"
        );
        assert_eq!(
            service_message(
                "ValidationError",
                Some("1 error: Value 'SECRET' is too long")
            ),
            ": 1 error: Value (not shown)"
        );
        // A value holding the constraint's words after a `' at '`.
        assert_eq!(
            service_message(
                "ValidationError",
                Some(
                    "Value 'a' at 'b c' failed to satisfy constraint SECRET' at 'body' failed \
                     to satisfy constraint: too long"
                )
            ),
            ": Value (not shown) at 'body' failed to satisfy constraint: too long"
        );
        // A message without quoted values is kept whole.
        assert_eq!(
            service_message("ValidationError", Some("Endpoint chat not found.")),
            ": Endpoint chat not found."
        );
    }

    #[test]
    fn an_allowed_codes_message_never_passes_a_models_answer_on() {
        // A gateway answering with an allowed code, quoting the model's answer.
        assert_eq!(
            service_message(
                "ValidationError",
                Some("Received server error (500) from model with message MODELOUTPUTMARKER")
            ),
            ": Received server error (500) [the rest withheld: it can quote the model's output]"
        );
        assert_eq!(
            service_message("ThrottlingException", Some("Rate exceeded WITH MESSAGE x")),
            ": Rate exceeded [the rest withheld: it can quote the model's output]"
        );
    }

    #[test]
    fn a_models_error_in_a_chain_is_named_by_its_code_and_never_quoted() {
        use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
        use aws_sdk_sagemakerruntime::types::error::{ModelError, ValidationError};
        // SageMaker quotes the model's answer in a ModelError's message.
        let quoted = "Received client error (400) from primary with message \"PAYLOAD-MARKER\"";
        let model = InvokeEndpointError::ModelError(
            ModelError::builder()
                .message(quoted)
                .original_message("PAYLOAD-MARKER")
                .meta(meta("ModelError", quoted))
                .build(),
        );
        let said = error_chain(&service_error(model, 424));
        assert_eq!(
            said,
            "service error: ModelError (its message is not shown: it can quote the model's \
             output)"
        );
        // A message about the request is shown, without the caller's identity.
        let denied = "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: \
                      sagemaker:InvokeEndpoint on resource: \
                      arn:aws:sagemaker:us-east-1:123456789012:endpoint/chat";
        let validation = InvokeEndpointError::ValidationError(
            ValidationError::builder()
                .message("Endpoint chat of account 123456789012 not found.")
                .meta(meta(
                    "ValidationError",
                    "Endpoint chat of account 123456789012 not found.",
                ))
                .build(),
        );
        let said = error_chain(&service_error(validation, 400));
        assert_eq!(
            said,
            "service error: ValidationError: Endpoint chat of account <account> not found."
        );
        let unrecognised = InvokeEndpointError::generic(meta("AccessDeniedException", denied));
        let said = error_chain(&service_error(unrecognised, 403));
        assert!(
            said.contains("AccessDeniedException: User: <principal> is not authorized"),
            "{said}"
        );
        assert!(
            !said.contains("123456789012") && !said.contains("alice"),
            "{said}"
        );
    }

    #[test]
    fn a_url_keeps_where_it_points_and_never_its_password_or_query() {
        for (text, said) in [
            (
                "failed `http://user:pw@127.0.0.1:4711/p?token=QSECRET` now",
                "failed `http://<credentials>@127.0.0.1:4711/p?<query>` now",
            ),
            // A password holding `@`: the host is after the last one.
            ("at https://u:p@ss@host", "at https://<credentials>@host"),
            (
                "s3://bucket/key?X-Amz-Signature=abc",
                "s3://bucket/key?<query>",
            ),
            // Two URLs; a URL with neither is left as it is.
            (
                "http://a:b@h1 and \"https://h2/x?k=v\"",
                "http://<credentials>@h1 and \"https://h2/x?<query>\"",
            ),
            (
                "see https://docs.aws.amazon.com/sagemaker/",
                "see https://docs.aws.amazon.com/sagemaker/",
            ),
            // `@` after the path is no user's.
            ("https://h/mail@x", "https://h/mail@x"),
            // A list of URLs with no space between: each is looked at.
            (
                "proxy=http://u:p@h,next=https://a:b@c",
                "proxy=http://<credentials>@h,next=https://<credentials>@c",
            ),
            // A URL in another's path, with a query or without.
            (
                "https://h/p/https://u:pw@evil",
                "https://h/p/https://<credentials>@evil",
            ),
            (
                "https://h/p/https://u:pw@evil?x=1",
                "https://h/p/https://<credentials>@evil?<query>",
            ),
            // A URL in the query goes with the query.
            ("https://h?next=https://u:p@x", "https://h?<query>"),
            // The host ends at `;` `)` `]`, and an IPv6 host keeps its brackets.
            (
                "(http://u:p@h;x) [http://a:b@[::1]:8080] http://[::1]:4566/x?k=v",
                "(http://<credentials>@h;x) [http://<credentials>@[::1]:8080] \
                 http://[::1]:4566/x?<query>",
            ),
            // A password holding `,` or `)`: the user part is cut whole.
            ("https://u:p,w)d@h/x", "https://<credentials>@h/x"),
            // What follows a host cut at `,` is still this URL's, query and all,
            // when no other URL is in it.
            ("http://h,x/?token=QSECRET", "http://h,x/?<query>"),
            // Text that is no ASCII around, in and after a URL.
            (
                "é https://ü:p@hé/ü?q=ü ü",
                "é https://<credentials>@hé/ü?<query> ü",
            ),
            ("ends with https://", "ends with https://"),
            ("https://[::1", "https://[::1"),
        ] {
            assert_eq!(without_url_secrets(text), said, "{text}");
        }
    }

    #[test]
    fn a_credential_providers_failure_is_said_by_its_kind_and_a_refused_field_by_its_name() {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        // A `credential_process` that failed: the SDK quotes its standard error.
        let failed = aws_sdk_sagemakerruntime::error::SdkError::<
            aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError,
            aws_smithy_runtime_api::http::Response,
        >::dispatch_failure(ConnectorError::other(
            Box::new(CredentialsError::provider_error(
                "external process exited with code 1. Stderr: password=CPSECRET",
            )),
            None,
        ));
        let said = error_chain(&failed);
        assert_eq!(
            said,
            "dispatch failure: other: an error occurred while loading credentials: external \
             process exited with code 1. (its standard error is not shown: it can hold secrets)"
        );
        // One whose output did not parse: that it failed, not the output.
        let unparsed = CredentialsError::provider_error(
            "Error retrieving credentials from external process, could not parse response: \
             invalid JSON in response: unexpected token 'S'",
        );
        assert_eq!(
            error_chain(&unparsed),
            format!("an error occurred while loading credentials: {PROCESS_FAILED}")
        );
        // An unhandled failure (a secret key that is no Unicode, quoted): its kind.
        let unhandled = CredentialsError::unhandled("not valid unicode: \"SECRET\\xff\"");
        assert_eq!(
            error_chain(&unhandled),
            "unexpected credentials error (the provider's details are not shown: they can \
             hold secrets)"
        );
        // No provider found any: what each looked for is said.
        let none = CredentialsError::not_loaded("no providers in chain provided credentials");
        assert_eq!(
            error_chain(&none),
            "the credential provider was not enabled: no providers in chain provided credentials"
        );
        // A field the SDK refused: its name, not the value the details quote.
        let refused = aws_smithy_types::error::operation::BuildError::invalid_field(
            "input_location",
            "`https://b/in.json?X-Amz-Signature=SIG\r` cannot be used as a header value",
        );
        assert_eq!(
            error_chain(&refused),
            "invalid field in input: input_location (details not shown: they can quote the \
             value)"
        );
    }

    /// What tells the user what to do about failing credentials (log in to SSO
    /// again, fix a profile, a role's trust policy) is said, without who they are.
    #[test]
    fn a_credential_providers_failure_says_why_without_the_callers_identity() {
        use aws_credential_types::provider::error::CredentialsError;
        // aws-config's SSO provider when the cached token expired.
        let expired =
            CredentialsError::provider_error("the SSO token has expired and cannot be refreshed");
        assert_eq!(
            error_chain(&expired),
            "an error occurred while loading credentials: the SSO token has expired and \
             cannot be refreshed"
        );
        let looped = CredentialsError::invalid_configuration(
            "profile formed an infinite loop. first we loaded `a`, then attempted to reload `a`",
        );
        assert_eq!(
            error_chain(&looped),
            "the credentials provider was not properly configured: profile formed an infinite \
             loop. first we loaded `a`, then attempted to reload `a`"
        );
        // STS refusing AssumeRole names the caller: its principal is left out.
        let denied = CredentialsError::provider_error(
            "AccessDenied: User: arn:aws:iam::123456789012:user/alice is not authorized to \
             perform: sts:AssumeRole",
        );
        let said = error_chain(&denied);
        assert!(
            said.contains("is not authorized to perform: sts:AssumeRole")
                && !said.contains("123456789012")
                && !said.contains("alice"),
            "{said}"
        );
    }

    /// Warnings that quote an endpoint URL (its password, its query) or a credential
    /// provider's output, and hyper_util's pool and the SDK's HTTP client at DEBUG
    /// and TRACE (the URL's user:password):
    /// not logged; the other warnings of the same crates are.
    #[test]
    fn warnings_quoting_an_endpoint_url_or_a_credential_providers_output_are_not_logged() {
        for target in [
            "aws_config::default_provider::endpoint_url",
            "aws_config::meta::credentials::chain",
            "aws_config::profile::credentials",
            "aws_smithy_runtime_api::http::request",
            "aws_smithy_runtime::client::endpoint",
            "aws_smithy_http::endpoint",
        ] {
            assert!(!may_log(target, Level::WARN), "{target}");
            assert!(may_log(target, Level::ERROR), "{target}");
        }
        let pool = "hyper_util::client::legacy::pool";
        assert!(!may_log(pool, Level::TRACE) && !may_log(pool, Level::DEBUG));
        assert!(may_log(pool, Level::INFO));
        // Its proxy's credentials added, the SDK's HTTP client logs the request's
        // URI whole at DEBUG: an endpoint URL's user:password in it.
        let client = "aws_smithy_http_client::client";
        assert!(!may_log(client, Level::TRACE) && !may_log(client, Level::DEBUG));
        assert!(may_log(client, Level::INFO) && may_log(client, Level::WARN));
        assert!(may_log("aws_config::provider_config", Level::WARN));
        // A shared config or credentials file that is not UTF-8: the SDK's
        // warning prints its bytes whole (its `FromUtf8Error`'s `Debug`).
        for target in [
            "aws_runtime::env_config::source",
            "aws_runtime::env_config::normalize",
        ] {
            assert!(!may_log(target, Level::WARN), "{target}");
            assert!(may_log(target, Level::ERROR), "{target}");
        }
        assert!(may_log("aws_smithy_runtime_api::client", Level::TRACE));
    }

    #[test]
    fn the_sdk_crates_that_print_payloads_never_log_at_trace() {
        for target in [
            "aws_smithy_runtime",
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_http::event_stream::receiver",
            "aws_sigv4::http_request::sign",
            "aws_runtime::content_encoding",
        ] {
            assert!(!may_log(target, Level::TRACE), "{target}");
            assert!(may_log(target, Level::DEBUG), "{target}");
        }
        // Other crates (and ones whose names only start the same) keep TRACE.
        for target in [
            "sagemeter",
            "aws_smithy_runtime_api",
            "aws_configx",
            "hyper",
        ] {
            assert!(may_log(target, Level::TRACE), "{target}");
        }
        // aws_config prints the credentials it loads at INFO (a profile's) and
        // DEBUG (an assumed role's): its warnings and errors only (the profile
        // provider's errors only: its warnings quote a credential_process's output).
        for target in [
            "aws_config::profile::credentials",
            "aws_config::sts::assume_role",
        ] {
            assert!(!may_log(target, Level::INFO) && !may_log(target, Level::DEBUG));
            assert!(may_log(target, Level::ERROR));
        }
        assert!(may_log("aws_config::sts::assume_role", Level::WARN));
        // Endpoint resolution prints the access key id at DEBUG: from INFO up only.
        let endpoints = "aws_smithy_runtime::client::orchestrator::endpoints";
        assert!(!may_log(endpoints, Level::DEBUG) && !may_log(endpoints, Level::TRACE));
        assert!(may_log(endpoints, Level::INFO));
        assert!(may_log(
            "aws_smithy_runtime::client::orchestrator",
            Level::DEBUG
        ));
    }
}
