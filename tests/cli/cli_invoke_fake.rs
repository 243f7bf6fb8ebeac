//! `sagemeter invoke` against the in-process fakes (`FakeSageMaker`, `FakeStream`):
//! what the emulator cannot do on demand (model errors with a given message, odd
//! bodies, latency, held calls, signals, profiles).
//!
//! Run: `cargo test --features cli --test cli cli_invoke_fake::`.

use super::clean_env::{self, refused_url};
use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::fake_stream::{FakeStream, Script};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

/// Stands for the model's output: it must never be printed outside the response body.
const MARKER: &str = "MODEL-OUTPUT-MARKER-5d1c";

/// A fake SageMaker with endpoint `rt` (2 × ml.m5.xlarge).
async fn fake_rt() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    fake
}

/// `sagemeter ARGS` with a clean environment at `url`, run to the end (60 s at most).
async fn run_at(url: &str, args: &[&str]) -> Output {
    let mut cmd = clean_env::sagemeter(url, &refused_url());
    cmd.args(args);
    run(cmd).await
}

/// `cmd` run to the end (60 s at most).
pub(super) async fn run(cmd: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::from_std(cmd)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `sagemeter invoke rt` (with `--json` or not) at a fake that refuses it: the
/// output, its stdout and stderr, once it has exited 1.
async fn failed_invoke(url: &str, json: bool) -> (Output, String, String) {
    let mut args = vec!["invoke", "rt", "--body", "{}"];
    if json {
        args.push("--json");
    }
    let output = run_at(url, &args).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    (output, stdout, stderr)
}

/// The JSON lines of `stdout`.
fn json_lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The `error` of the first JSON line of `stdout`.
fn first_error(stdout: &[u8]) -> String {
    json_lines(stdout)[0]["error"].as_str().unwrap().to_owned()
}

/// SageMaker's `ModelError` message quotes the model's response body.
fn model_error_message() -> String {
    format!(
        "Received client error (400) from primary with message \"{{\"error\":\"{MARKER}\"}}\". \
         See https://us-east-1.console.aws.amazon.com/cloudwatch/home for more information."
    )
}

/// Runs `args` (with `--json` when `json`) against the fake at `url`: the run
/// fails (exit 1), and neither stdout nor stderr holds the model's message.
async fn failed_without_the_message(
    url: &str,
    args: &[&str],
    json: bool,
) -> (Output, String, String) {
    let mut args = args.to_vec();
    if json {
        args.push("--json");
    }
    let output = run_at(url, &args).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(MARKER) && !stderr.contains(MARKER),
        "the model's message leaked:\n{stdout}\n{stderr}"
    );
    (output, stdout, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_error_names_code_status_and_request_id_never_the_models_message() {
    let fake = fake_rt().await;
    fake.fail_invocations(424, "ModelError", &model_error_message());
    for json in [true, false] {
        let args = ["invoke", "rt", "--body", "{}", "-n", "2"];
        let (output, stdout, stderr) = failed_without_the_message(&fake.url, &args, json).await;
        let named = "ModelError (HTTP 424, request id req-error-1): the model answered HTTP 500";
        assert!(stderr.contains(named), "{stderr}");
        if json {
            let lines = json_lines(&output.stdout);
            assert_eq!(lines[0]["type"], "error", "{stdout}");
            let error = lines[0]["error"].as_str().unwrap();
            assert!(error.contains(named), "{error}");
            // The log group, without the account id.
            assert!(
                error.contains(
                    "log stream: arn:aws:logs:us-east-1:<account>:log-group:\
                     /aws/sagemaker/Endpoints/fake"
                ),
                "{error}"
            );
            assert!(!error.contains("123456789012"), "{error}");
            // One call at a time: the failure of the first stops the second.
            let summary = lines.last().unwrap();
            assert_eq!(summary["type"], "summary", "{stdout}");
            assert_eq!(
                (
                    &summary["requested"],
                    &summary["calls"],
                    &summary["not_sent"],
                    &summary["stopped_by"]
                ),
                (
                    &Value::from(2),
                    &Value::from(1),
                    &Value::from(1),
                    &Value::from("failure")
                ),
                "{summary}"
            );
        } else {
            assert!(
                stdout.contains("stopped early    by failure: 1 of 2 requested call(s) not sent"),
                "{stdout}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streams_model_error_never_shows_the_models_message() {
    let message = model_error_message();
    let fake = FakeStream::start(move |_| Script::new().model_error_with_message(&message)).await;
    for json in [true, false] {
        let args = ["invoke", "llm", "--stream", "--body", "{}"];
        let (output, _, stderr) = failed_without_the_message(&fake.endpoint_url, &args, json).await;
        let named = "ModelError (HTTP 424, request id fake-";
        assert!(stderr.contains(named), "{stderr}");
        if json {
            // The error line gives the reason: the code, status and request id.
            let lines = json_lines(&output.stdout);
            let error = lines[0]["error"].as_str().unwrap();
            assert!(error.contains(named), "{error}");
            assert!(error.contains("the model answered HTTP 400"), "{error}");
        }
    }
}

/// Stands for a session token: it must never be printed.
const SESSION_TOKEN: &str = "SESSION-TOKEN-MARKER-9b7e";

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_error_says_what_is_wrong_and_never_quotes_the_signed_request() {
    // AWS's answer to a request signed with the wrong secret key: what is wrong,
    // then (after a blank line) the canonical request it expected, every signed
    // header's value with it, the session token included, and the string to sign.
    let message = format!(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details.\n\nThe Canonical String for this request should have \
         been\n'POST\n/endpoints/rt/invocations\n\nhost:localhost\nx-amz-date:20261204T100000Z\n\
         x-amz-security-token:{SESSION_TOKEN}\n\nhost;x-amz-date;x-amz-security-token\n\
         e3b0c442'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n\
         20261204T100000Z\n20261204/us-east-1/sagemaker/aws4_request\n8fa2'\n"
    );
    let fake = fake_rt().await;
    fake.fail_invocations(403, "InvalidSignatureException", &message);
    for json in [true, false] {
        let (output, stdout, stderr) = failed_invoke(&fake.url, json).await;
        assert!(
            !stdout.contains(SESSION_TOKEN) && !stderr.contains(SESSION_TOKEN),
            "the session token leaked:\n{stdout}\n{stderr}"
        );
        let said = "InvalidSignatureException (HTTP 403, request id req-error-1): The request \
                    signature we calculated does not match the signature you provided. Check \
                    your AWS Secret Access Key and signing method.";
        assert!(stderr.contains(said), "{stderr}");
        if json {
            let error = first_error(&output.stdout);
            assert!(error.contains(said), "{error}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_denied_line_names_the_action_and_never_the_callers_identity() {
    // SageMaker's answer to a principal without sagemaker:InvokeEndpoint: the
    // principal's ARN (account id, role and session names) and the endpoint's ARN.
    let message = "User: arn:aws:sts::123456789012:assumed-role/FinOps/alice is not authorized \
                   to perform: sagemaker:InvokeEndpoint on resource: \
                   arn:aws:sagemaker:us-east-1:123456789012:endpoint/rt because no \
                   identity-based policy allows the sagemaker:InvokeEndpoint action";
    let fake = fake_rt().await;
    fake.fail_invocations(400, "AccessDeniedException", message);
    for json in [true, false] {
        let (output, stdout, stderr) = failed_invoke(&fake.url, json).await;
        for identity in ["123456789012", "FinOps", "alice"] {
            assert!(
                !stdout.contains(identity) && !stderr.contains(identity),
                "{identity} printed:\n{stdout}\n{stderr}"
            );
        }
        let said = "AccessDeniedException (HTTP 400, request id req-error-1): User: <principal> \
                    is not authorized to perform: sagemaker:InvokeEndpoint on resource: \
                    arn:aws:sagemaker:us-east-1:<account>:endpoint/rt because no \
                    identity-based policy allows the sagemaker:InvokeEndpoint action";
        assert!(stderr.contains(said), "{stderr}");
        if json {
            let error = first_error(&output.stdout);
            assert!(error.contains(said), "{error}");
        } else {
            // Refused before the model ran: no receipt, so no price source.
            assert!(
                stdout.contains("  price source     - (no receipt)\n"),
                "{stdout}"
            );
        }
    }
}

/// A credentials file holding profile `other` with its own key.
fn credentials_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("credentials");
    std::fs::write(
        &path,
        "[other]\naws_access_key_id = AKIDFROMPROFILE\naws_secret_access_key = profile-secret\n",
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_credentials_win_over_the_environments() {
    let fake = fake_rt().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    // The environment has keys too (clean_env sets AWS_ACCESS_KEY_ID).
    invoke_with_profile(
        &fake,
        &[("AWS_SHARED_CREDENTIALS_FILE", credentials.as_os_str())],
        "other",
    )
    .await;
    assert_signed_with(&fake, "AKIDFROMPROFILE");
}

/// `invoke rt --json --profile <profile>` against `fake`, with `env` set: it
/// must succeed.
async fn invoke_with_profile(
    fake: &FakeSageMaker,
    env: &[(&str, &std::ffi::OsStr)],
    profile: &str,
) {
    let mut cmd = clean_env::sagemeter(&fake.url, &refused_url());
    cmd.envs(env.iter().copied()).args([
        "invoke",
        "rt",
        "--body",
        "{}",
        "--json",
        "--profile",
        profile,
    ]);
    let output = run(cmd).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// `fake` was called, every request signed with access key `key`.
fn assert_signed_with(fake: &FakeSageMaker, key: &str) {
    let keys = fake.access_key_ids();
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| k == key), "signed with {keys:?}");
}

/// A fake STS at its URL: every request is answered as `AssumeRole` granting key
/// `AKIDASSUMED`; the requests' bodies are kept.
async fn fake_sts() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let app = axum::Router::new().route(
        "/",
        post(move |body: String| async move {
            seen.lock().unwrap().push(body);
            (
                [("content-type", "text/xml")],
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                 <AssumeRoleResult><Credentials>\
                 <AccessKeyId>AKIDASSUMED</AccessKeyId>\
                 <SecretAccessKey>assumed-secret</SecretAccessKey>\
                 <SessionToken>assumed-token</SessionToken>\
                 <Expiration>2099-01-01T00:00:00Z</Expiration>\
                 </Credentials><AssumedRoleUser>\
                 <AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId>\
                 <Arn>arn:aws:sts::111122223333:assumed-role/ml/session</Arn>\
                 </AssumedRoleUser></AssumeRoleResult>\
                 <ResponseMetadata><RequestId>req-sts-1</RequestId></ResponseMetadata>\
                 </AssumeRoleResponse>",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

/// `--profile` naming a profile that assumes a role (`role_arn` + `source_profile`)
/// takes the role's credentials, as `AWS_PROFILE` would: the STS client that
/// assumes it has the region (here from `AWS_REGION`), so the call is signed with
/// the role's key, not refused for a missing region.
#[tokio::test(flavor = "multi_thread")]
async fn a_profile_that_assumes_a_role_signs_with_the_roles_key() {
    let fake = fake_rt().await;
    let (sts_url, sts_bodies) = fake_sts().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = base-secret\n\
         [profile prod]\nrole_arn = arn:aws:iam::111122223333:role/ml\nsource_profile = base\n",
    )
    .unwrap();
    let env = [
        ("AWS_CONFIG_FILE", config.as_os_str()),
        ("AWS_ENDPOINT_URL_STS", sts_url.as_ref()),
    ];
    invoke_with_profile(&fake, &env, "prod").await;
    let assumed = sts_bodies.lock().unwrap().clone();
    assert!(
        assumed.iter().any(|b| b.contains("Action=AssumeRole")),
        "{assumed:?}"
    );
    assert_signed_with(&fake, "AKIDASSUMED");
}

/// A body beginning with `-` (valid JSON: `-1`) is sent as it is, not taken for
/// an option; one that is no JSON is refused without being repeated.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_beginning_with_a_hyphen_is_a_body() {
    let fake = fake_rt().await;
    let output = run_at(&fake.url, &["invoke", "rt", "--body", "-1"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(fake.invocations(), 1);
    assert_eq!(
        fake.state.received_bodies.lock().unwrap().last().unwrap(),
        b"-1"
    );
    let output = run_at(
        &fake.url,
        &["invoke", "rt", "--body", "--PAYLOAD-MARKER-2c"],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the body is not valid JSON"), "{stderr}");
    assert!(!stderr.contains("PAYLOAD-MARKER"), "{stderr}");
    assert_eq!(fake.invocations(), 1);
}

/// A body larger than any SageMaker request (`@/dev/zero`, a stream that never
/// ends) is refused after 32 MiB, not read into memory until it runs out.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_body_larger_than_any_request_is_refused_unread() {
    let args = [
        "--body",
        "@/dev/zero",
        "--content-type",
        "application/octet-stream",
    ];
    refused_unsent(&args, &["the body is over 32 MiB"]).await;
}

/// A body over SageMaker's 25 MB (but under the 32 MiB read) is refused before
/// the endpoint is even looked up: exit 2, nothing described, sent or printed.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_sagemakers_limit_is_refused_before_anything_is_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::write(&path, vec![b'x'; 25_000_001]).unwrap();
    let fake = fake_rt().await;
    let body = format!("@{}", path.display());
    let output = run_at(
        &fake.url,
        &[
            "invoke",
            "rt",
            "--body",
            &body,
            "--content-type",
            "text/csv",
        ],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the body is 25000001 bytes; SageMaker takes at most 25000000 bytes"),
        "{stderr}"
    );
    assert_eq!(text(&output.stdout), "");
    assert_eq!((fake.describe_calls(), fake.invocations()), (0, 0));
}

/// A mistyped region fails in ways that do not name it: the error says which
/// region it meant.
#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_not_found_in_a_mistyped_region_says_which_region_was_meant() {
    let fake = fake_rt().await;
    let output = run_at(
        &fake.url,
        &["--region", "us-east1", "invoke", "nope", "--body", "{}"],
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown endpoint `nope`")
            && stderr.contains("`us-east1` is not an AWS region: did you mean `us-east-1`?"),
        "{stderr}"
    );
    assert_eq!(fake.invocations(), 0);
}

/// A content type or accept type with a control character (a pasted CR LF) is a
/// usage error, not a call that fails as its request is built.
#[tokio::test(flavor = "multi_thread")]
async fn a_header_value_with_a_control_character_is_a_usage_error() {
    for flag in ["--content-type", "--accept"] {
        let args = ["--body", "a,b", flag, "text/csv\r\nX-Evil: 1"];
        let stderr = refused_unsent(&args, &["holds a control character"]).await;
        assert!(!stderr.contains('\r'), "{stderr:?}");
    }
}

/// A runtime that never answers fails the call after `--timeout` (not the command
/// held until Ctrl-C), and the call, sent, has its receipt: the model may have run.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_nobody_answers_times_out_with_its_receipt() {
    let fake = fake_rt().await;
    fake.hold();
    let started = std::time::Instant::now();
    let output = run_at(
        &fake.url,
        &["invoke", "rt", "--body", "{}", "--timeout", "1", "--json"],
    )
    .await;
    fake.release();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "not timed out");
    let line: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("a line")).unwrap();
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("read timeout occurred after 1s")),
        "{line}"
    );
    // The SDK tried it again (a timeout is retryable): every attempt reached the
    // fake, every one is on the receipt, each a second long at least.
    let receipt = &line["receipt"];
    let attempts = receipt["usage"]["attempts"].as_u64().unwrap_or(1);
    assert_eq!(attempts, fake.invocations(), "{receipt}");
    assert_eq!(receipt["usage"]["outcome"], "cancelled", "{receipt}");
    assert!(
        receipt["usage"]["latency_us"].as_u64().unwrap() >= attempts * 1_000_000,
        "{receipt}"
    );
    assert_eq!(
        receipt["lines"][0]["price"]["status"], "priced",
        "{receipt}"
    );
    for value in ["0", "3601", "-1"] {
        refused_unsent(&["--body", "{}", "--timeout", value], &["--timeout"]).await;
    }
}

/// `sagemeter invoke rt ARGS` is a usage error (exit 2) whose message holds each
/// of `says`, and nothing was sent (no call, no async submission); its stderr.
async fn refused_unsent(args: &[&str], says: &[&str]) -> String {
    let fake = fake_rt().await;
    let output = run_at(&fake.url, &[&["invoke", "rt"], args].concat()).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for said in says {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    assert_eq!(fake.invocations(), 0);
    assert_eq!(
        fake.state
            .async_submissions
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    stderr
}

/// A tag with a control character (an escape sequence, a line break) would reach
/// ledgers and reports' tables: it is refused, and not echoed raw.
#[tokio::test(flavor = "multi_thread")]
async fn a_tag_with_a_control_character_is_refused() {
    let args = ["--body", "{}", "--tag", "team=a\u{1b}[2J\nb"];
    let stderr = refused_unsent(&args, &["holds a control character"]).await;
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

/// `--input-bytes` sizes an input in S3: with `--body` (whose size is known) it
/// would be ignored and the data in billed at the body's size; it is refused,
/// nothing sent.
#[tokio::test(flavor = "multi_thread")]
async fn input_bytes_with_a_body_is_refused_not_ignored() {
    let args = ["--async", "--body", "{}", "--input-bytes", "5000000"];
    refused_unsent(&args, &["--input-bytes", "--body"]).await;
}

/// An input larger than SageMaker takes (1 GB) is a mistake, not 0.016 USD a GB
/// of data in to bill (18,446,744,073,709,551,615 bytes read as 274 million USD).
#[tokio::test(flavor = "multi_thread")]
async fn an_input_size_beyond_what_sagemaker_takes_is_refused() {
    let args = [
        "--async",
        "--input-location",
        "s3://b/in.json",
        "--input-bytes",
        "18446744073709551615",
    ];
    refused_unsent(&args, &["--input-bytes", "0..=1073741824"]).await;
}

/// A tag budget that no call carries (the CLI's calls carry only --tag tags)
/// would limit nothing: refused, saying which --tag it needs.
#[tokio::test(flavor = "multi_thread")]
async fn a_tag_budget_no_call_carries_is_refused() {
    let args = ["--body", "{}", "--budget", "tag:team=search=0.00001/day"];
    refused_unsent(
        &args,
        &["no call carries that tag", "add --tag team=search"],
    )
    .await;
    // Compared exactly: `Search` is another value.
    let args = [
        "--body",
        "{}",
        "--tag",
        "team=Search",
        "--budget",
        "tag:team=search=0.00001/day",
    ];
    refused_unsent(&args, &["add --tag team=search"]).await;
}

/// An estimate out of range names the flag and the range, not the library's types.
#[tokio::test(flavor = "multi_thread")]
async fn an_estimate_out_of_range_names_the_flag() {
    let args = [
        "--body",
        "{}",
        "--budget",
        "endpoint=1/day",
        "--estimate",
        "10000000000000",
    ];
    let stderr = refused_unsent(
        &args,
        &["--estimate: a fixed estimate of $10000000000000 is out of range"],
    )
    .await;
    assert!(!stderr.contains("Fixed {"), "{stderr}");
}

/// A credentials file that is not UTF-8 (one Latin-1 byte in a comment, or a file
/// saved as UTF-16): the SDK warns that it read nothing from it, its error's
/// `Debug` holding every byte of the file, secret keys among them. Not printed.
#[tokio::test(flavor = "multi_thread")]
async fn a_credentials_file_that_is_not_utf8_is_never_printed() {
    let fake = fake_rt().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    let mut file =
        b"[default]\naws_access_key_id = AKIDMARK\naws_secret_access_key = SECRETMARK\n# cl"
            .to_vec();
    file.extend_from_slice(&[0xE9, b'\n']);
    std::fs::write(&credentials, &file).unwrap();
    // Named whole, or from the home directory as `~/credentials` (a Dockerfile's
    // ENV does not expand `~`; the SDK does, and so does the check).
    let named = [
        credentials.as_os_str(),
        std::ffi::OsStr::new("~/credentials"),
    ];
    for (call, variable) in named.into_iter().enumerate() {
        let mut cmd = clean_env::sagemeter(&fake.url, &refused_url());
        cmd.env("HOME", dir.path())
            .env("AWS_SHARED_CREDENTIALS_FILE", variable)
            .args(["invoke", "rt", "--body", "{}"]);
        let output = run(cmd).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        // Neither the secret nor its bytes written as numbers ("SECRET": 83 69 67 82 69 84).
        for leak in [
            "SECRETMARK",
            "AKIDMARK",
            "83, 69, 67, 82, 69, 84",
            "FromUtf8Error",
        ] {
            assert!(!stderr.contains(leak), "{leak} in {stderr}");
        }
        // Why its keys are not found is said, naming the file only.
        assert!(
            stderr.contains("the AWS credentials file is not UTF-8")
                && stderr.contains(&credentials.display().to_string()),
            "{variable:?}: {stderr}"
        );
        assert_eq!(fake.invocations(), call as u64 + 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_in_neither_file_exits_2_sending_nothing() {
    let fake = fake_rt().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let mut cmd = clean_env::sagemeter(&fake.url, &refused_url());
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", &credentials).args([
        "invoke",
        "rt",
        "--body",
        "{}",
        "--profile",
        "missing",
    ]);
    let output = run(cmd).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--profile missing: no such profile"),
        "{stderr}"
    );
    assert_eq!(fake.invocations() + fake.describe_calls(), 0);

    // Named by AWS_PROFILE (a typo in the environment), the same: not the SDK's
    // "initialization error already taken" after calling.
    let mut cmd = clean_env::sagemeter(&fake.url, &refused_url());
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "missing")
        .args(["invoke", "rt", "--body", "{}"]);
    let output = run(cmd).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("AWS_PROFILE=missing: no such profile"),
        "{stderr}"
    );
    assert_eq!(fake.invocations() + fake.describe_calls(), 0);
}

/// `sagemeter ARGS` running at `url`, its stdout and stderr piped to the test.
pub(super) fn spawn_at(url: &str, args: &[&str]) -> std::process::Child {
    clean_env::sagemeter(url, &refused_url())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the sagemeter binary")
}

/// `sagemeter invoke llm --stream --body {} --ledger LEDGER` running at `url`, as
/// [`spawn_at`].
pub(super) fn spawn_stream(url: &str, ledger: &std::path::Path) -> std::process::Child {
    spawn_at(
        url,
        &[
            "invoke",
            "llm",
            "--stream",
            "--body",
            "{}",
            "--ledger",
            ledger.to_str().unwrap(),
        ],
    )
}

/// The first two lines a streaming invoke prints: its `endpoint llm ...` line, then
/// the stream's first part.
pub(super) fn read_first_part(stdout: &mut impl std::io::Read) -> String {
    let mut printed = read_line(stdout);
    printed.push_str(&read_line(stdout));
    printed
}

/// Reads one line (up to its `\n`) from `reader`, byte by byte (nothing more).
pub(super) fn read_line(reader: &mut impl std::io::Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while reader.read(&mut byte).unwrap() == 1 {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    text(&line)
}

/// Waits (60 s at most) for `child` to exit; its stderr.
pub(super) async fn wait_for_exit(
    mut child: std::process::Child,
) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("sagemeter did not exit within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
        }
        (status, stderr)
    })
    .await
    .unwrap()
}

/// Receipts in the ledger file.
pub(super) fn ledger_receipts(path: &std::path::Path) -> Vec<sagemeter::Cost> {
    sagemeter::ledger::read_all(path).unwrap().records
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_leaves_loses_no_receipt_of_the_calls_in_flight() {
    let fake = fake_rt().await;
    fake.hold();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let ledger_arg = ledger.to_str().unwrap();
    let mut child = spawn_at(
        &fake.url,
        &[
            "invoke", "rt", "--body", "{}", "-n", "40", "-c", "4", "--ledger", ledger_arg,
        ],
    );
    // The reader takes the first line (`endpoint rt ...`) and leaves (`| head -1`).
    let mut stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || read_line(&mut stdout))
        .await
        .unwrap();
    assert!(first.starts_with("endpoint rt"), "{first}");
    // One call answers at once, the other three 2 s later: the CLI's next write
    // fails while they are in flight.
    fake.wait_for_invocations(4).await;
    fake.next_latencies(&[
        Duration::ZERO,
        Duration::from_secs(2),
        Duration::from_secs(2),
        Duration::from_secs(2),
    ]);
    fake.release();
    let (status, stderr) = wait_for_exit(child).await;
    assert!(status.success(), "{status}: {stderr}");
    let receipts = ledger_receipts(&ledger);
    assert_eq!(
        receipts.len() as u64,
        fake.invocations(),
        "every call sent has its receipt in the ledger: {stderr}"
    );
    assert!(receipts.len() < 40, "no new call after the reader left");
}

/// `sagemeter invoke rt` of `calls` calls, 4 at a time, in JSON, with a ledger
/// at `ledger`.
fn spawn_run(fake: &FakeSageMaker, ledger: &std::path::Path, calls: &str) -> std::process::Child {
    spawn_at(
        &fake.url,
        &[
            "invoke",
            "rt",
            "--body",
            "{}",
            "-n",
            calls,
            "-c",
            "4",
            "--json",
            "--ledger",
            ledger.to_str().unwrap(),
        ],
    )
}

/// Sends `signal` to `child`.
#[cfg(unix)]
pub(super) fn kill(child: &std::process::Child, signal: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_stops_new_calls_and_every_call_sent_reaches_the_ledger() {
    for (signal, code, name) in [
        (libc::SIGINT, 130, "SIGINT"),
        (libc::SIGTERM, 143, "SIGTERM"),
    ] {
        let fake = fake_rt().await;
        *fake.state.latency.lock().unwrap() = Duration::from_millis(50);
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("spend.jsonl");
        let mut child = spawn_run(&fake, &ledger, "100000");
        let mut stdout = child.stdout.take().unwrap();
        // A few receipts, then the interrupt; the rest of stdout after it.
        let (child, printed) = tokio::task::spawn_blocking(move || {
            let mut printed = String::new();
            for _ in 0..5 {
                printed.push_str(&read_line(&mut stdout));
            }
            kill(&child, signal);
            std::io::Read::read_to_string(&mut stdout, &mut printed).unwrap();
            (child, printed)
        })
        .await
        .unwrap();
        let (status, stderr) = wait_for_exit(child).await;
        assert_eq!(status.code(), Some(code), "{stderr}");
        let lines = json_lines(printed.as_bytes());
        let summary = lines.last().unwrap();
        assert_eq!(summary["type"], "summary", "{printed}");
        let receipts: Vec<&Value> = lines.iter().filter(|l| l["type"] == "receipt").collect();
        assert_eq!(summary["calls"], receipts.len(), "{summary}");
        assert!(receipts.len() >= 5 && receipts.len() < 100_000);
        // The summary says the run was cut short, by what, and what was left.
        assert_eq!(summary["requested"], 100_000, "{summary}");
        assert_eq!(summary["stopped_by"], name, "{summary}");
        assert_eq!(
            summary["cancelled"],
            Value::Null,
            "none cancelled: {summary}"
        );
        assert_eq!(
            summary["not_sent"],
            100_000 - receipts.len(),
            "requested − finished: {summary}"
        );
        let in_ledger: std::collections::HashSet<String> = ledger_receipts(&ledger)
            .into_iter()
            .map(|c| c.call_id.to_string())
            .collect();
        for receipt in &receipts {
            let id = receipt["call_id"].as_str().unwrap();
            assert!(in_ledger.contains(id), "{id} not in the ledger");
        }
        assert!(
            in_ledger.len() as u64 >= fake.invocations(),
            "{} receipts for {} invocations",
            in_ledger.len(),
            fake.invocations()
        );
        assert!(stderr.contains("interrupted by"), "{stderr}");
    }
}

/// An interrupted run whose ledger could not take every receipt (its writes fail
/// once the file would pass a size limit) exits 1, not 130: 130 says the ledger
/// holds every receipt printed. Its stderr says both.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_whose_ledger_lost_receipts_exits_1() {
    use std::os::unix::process::CommandExt;
    const LIMIT: u64 = 8 * 1024;
    let fake = fake_rt().await;
    *fake.state.latency.lock().unwrap() = Duration::from_millis(20);
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let mut cmd = clean_env::sagemeter(&fake.url, &refused_url());
    cmd.args([
        "invoke",
        "rt",
        "--body",
        "{}",
        "-n",
        "100000",
        "-c",
        "4",
        "--json",
        "--ledger",
        ledger.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec, only signal(2) and setrlimit(2), both
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            // A write past LIMIT bytes fails (EFBIG) rather than killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("the sagemeter binary");
    let mut stdout = child.stdout.take().unwrap();
    // More receipts than LIMIT bytes of ledger hold, then the interrupt.
    let (child, printed) = tokio::task::spawn_blocking(move || {
        let mut printed = String::new();
        for _ in 0..60 {
            printed.push_str(&read_line(&mut stdout));
        }
        kill(&child, libc::SIGINT);
        std::io::Read::read_to_string(&mut stdout, &mut printed).unwrap();
        (child, printed)
    })
    .await
    .unwrap();
    let (status, stderr) = wait_for_exit(child).await;
    let lines = json_lines(printed.as_bytes());
    let receipts = lines.iter().filter(|l| l["type"] == "receipt").count();
    let in_ledger = ledger_receipts(&ledger).len();
    assert!(
        in_ledger < receipts,
        "{in_ledger} of {receipts} receipts in the ledger: {stderr}"
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["stopped_by"], "SIGINT", "{summary}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(stderr.contains("is missing"), "{stderr}");
}

/// A reader that stops reading (`| less`, a stalled log shipper) blocks the
/// output: new calls wait for it rather than pile their responses up, and an
/// interrupt still stops new calls at once, not when the reader comes back.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_output_holds_new_calls_back_and_an_interrupt_still_stops_them() {
    let fake = fake_rt().await;
    *fake.state.latency.lock().unwrap() = Duration::from_millis(20);
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let mut child = spawn_run(&fake, &ledger, "100000");
    let mut stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let line = read_line(&mut stdout);
        (stdout, line)
    });
    let (mut stdout, line) = first.await.unwrap();
    assert!(line.contains("\"receipt\""), "{line}");
    // Nothing read from here: the pipe fills, and the calls stop until it drains
    // (at 4 × 50 calls a second they would otherwise run on for minutes).
    let mut last = fake.invocations();
    let mut steady = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = fake.invocations();
        steady = if now == last { steady + 1 } else { 0 };
        last = now;
        if steady == 3 {
            break;
        }
    }
    assert_eq!(
        steady, 3,
        "calls went on with nobody reading: {last} so far"
    );
    kill(&child, libc::SIGINT);
    // The interrupt is heard while the output is still blocked: once the reader
    // comes back, no call has started since.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (child, printed) = tokio::task::spawn_blocking(move || {
        let mut printed = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut printed).unwrap();
        (child, printed)
    })
    .await
    .unwrap();
    let (status, stderr) = wait_for_exit(child).await;
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(
        fake.invocations(),
        last,
        "no call started after the interrupt"
    );
    let lines = json_lines(printed.as_bytes());
    let summary = lines.last().unwrap();
    assert_eq!(summary["stopped_by"], "SIGINT", "{summary}");
    let receipts = lines.iter().filter(|l| l["type"] == "receipt").count() + 1;
    assert_eq!(summary["calls"], receipts, "{summary}");
    assert_eq!(ledger_receipts(&ledger).len() as u64, last);
}

/// An interrupt while an async submission waits for SageMaker's answer ends the
/// command as any interrupted call does (exit 130, the ledger closed), saying
/// that the submission may have been queued and has no receipt (the library
/// makes none: whether SageMaker queued it is unknown).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_async_submission_ends_the_command_as_any_call_does() {
    let fake = fake_rt().await;
    fake.hold();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let child = spawn_at(
        &fake.url,
        &[
            "invoke",
            "rt",
            "--async",
            "--input-location",
            "s3://bucket/in.json",
            "--input-bytes",
            "100",
            "--json",
            "--ledger",
            ledger.to_str().unwrap(),
        ],
    );
    for _ in 0..1000 {
        if fake
            .state
            .async_submissions
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kill(&child, libc::SIGINT);
    let (status, stderr) = wait_for_exit(child).await;
    fake.release();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT: the submission was cancelled"),
        "{stderr}"
    );
    assert!(stderr.contains("has no receipt"), "{stderr}");
    assert!(ledger_receipts(&ledger).is_empty());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_second_interrupt_cancels_the_calls_in_flight_and_their_receipts_are_kept() {
    let fake = fake_rt().await;
    fake.hold();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let mut child = spawn_run(&fake, &ledger, "100");
    fake.wait_for_invocations(4).await;
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (child, printed) = tokio::task::spawn_blocking(move || {
        kill(&child, libc::SIGINT);
        // The first interrupt is taken (it says so) before the second is sent.
        let mut said = String::new();
        while !said.contains("interrupt again to cancel") {
            let line = read_line(&mut stderr);
            assert!(!line.is_empty(), "stderr ended: {said}");
            said.push_str(&line);
        }
        kill(&child, libc::SIGINT);
        let mut printed = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut printed).unwrap();
        (child, printed)
    })
    .await
    .unwrap();
    let (status, _) = wait_for_exit(child).await;
    fake.release();
    assert_eq!(status.code(), Some(130), "{printed}");
    let lines = json_lines(printed.as_bytes());
    let cancelled = lines
        .iter()
        .filter(|l| l["type"] == "error" && l["error"].as_str().unwrap().contains("cancelled"))
        .collect::<Vec<_>>();
    assert_eq!(cancelled.len(), 4, "{printed}");
    // Where its receipt is, as the summary counts it: apart from the total.
    assert!(
        cancelled
            .iter()
            .all(|l| l["error"].as_str().unwrap().ends_with(
                "its cancelled receipt is in the ledger, and counted apart from the summary's total"
            )),
        "{printed}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["cancelled"], 4, "{summary}");
    assert_eq!(summary["calls"], 0, "{summary}");
    // Each call sent has its cancelled receipt in the ledger.
    let receipts = ledger_receipts(&ledger);
    assert_eq!(receipts.len(), 4);
    assert!(
        receipts
            .iter()
            .all(|c| c.usage.outcome == sagemeter::usage::Outcome::Cancelled),
        "{receipts:?}"
    );
    let total: sagemeter::Decimal = receipts.iter().map(|c| c.cost_usd).sum();
    assert_eq!(
        summary["cancelled_usd"].as_str().unwrap(),
        total.to_string(),
        "{summary}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_ends_a_stream_with_its_receipt_printed_and_in_the_ledger() {
    let fake =
        FakeStream::start(|_| Script::new().part("Hello\n").hang_until_client_leaves()).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let mut child = spawn_stream(&fake.endpoint_url, &ledger);
    let mut stdout = child.stdout.take().unwrap();
    let (child, printed) = tokio::task::spawn_blocking(move || {
        let mut printed = read_first_part(&mut stdout);
        assert!(printed.ends_with("Hello\n"), "{printed}");
        kill(&child, libc::SIGINT);
        std::io::Read::read_to_string(&mut stdout, &mut printed).unwrap();
        (child, printed)
    })
    .await
    .unwrap();
    let (status, stderr) = wait_for_exit(child).await;
    assert_eq!(status.code(), Some(130), "{printed}\n{stderr}");
    assert!(printed.contains("#1 "), "the receipt: {printed}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert_eq!(ledger_receipts(&ledger).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_billed_stream_that_fails_before_it_begins_prints_its_failed_receipt() {
    let fake = FakeStream::start(|_| Script::new().model_error()).await;
    let output = run_at(
        &fake.endpoint_url,
        &["invoke", "llm", "--stream", "--body", "{}"],
    )
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("#1    FAILED $"), "{stdout}");
    assert!(
        stdout.contains("InvokeEndpointWithResponseStream"),
        "{stdout}"
    );
}

/// The same failed stream with its reader gone (`| head -1` once head has
/// exited): the receipt cannot be written, and the call's failure is still the
/// command's (exit 1, said on stderr), not the closed pipe's quiet exit 0.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_stream_whose_reader_left_still_exits_1() {
    let fake = FakeStream::start(|_| Script::new().model_error()).await;
    let mut cmd = clean_env::sagemeter(&fake.endpoint_url, &refused_url());
    cmd.args(["invoke", "llm", "--stream", "--body", "{}", "--json"])
        .stdout(clean_env::closed_pipe());
    // Not `run`: assert_cmd would pipe stdout in place of the closed one.
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_failing_midway_is_an_error_line_carrying_its_receipt() {
    let fake = FakeStream::start(|_| {
        Script::new()
            .part("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n")
            .model_stream_error("ModelStreamError")
    })
    .await;
    let output = run_at(
        &fake.endpoint_url,
        &["invoke", "llm", "--stream", "--body", "{}", "--json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "error", "{}", lines[0]);
    assert_eq!(lines[0]["call"], 1);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("ModelStreamError"),
        "{}",
        lines[0]
    );
    let receipt = &lines[0]["receipt"];
    assert_eq!(
        receipt["usage"]["operation"], "InvokeEndpointWithResponseStream",
        "{receipt}"
    );
    assert!(receipt["cost_usd"].is_string(), "{receipt}");

    // In text: the parts so far, then the receipt marked FAILED.
    let output = run_at(
        &fake.endpoint_url,
        &["invoke", "llm", "--stream", "--body", "{}"],
    )
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("#1    FAILED $"), "{stdout}");
}

/// The most tokens a call is counted with (10^9 each way) are summed exactly; a
/// count beyond is not counted (the receipt says so), so no total can overflow.
#[tokio::test(flavor = "multi_thread")]
async fn token_totals_are_summed_exactly_and_counts_beyond_any_model_left_out() {
    let fake = fake_rt().await;
    fake.set_response_body(
        br#"{"usage":{"prompt_tokens":1000000000,"completion_tokens":1000000000}}"#,
    );
    let output = run_at(
        &fake.url,
        &["invoke", "rt", "--body", "{}", "-n", "2", "--json"],
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.contains(r#""input_tokens":2000000000,"output_tokens":2000000000"#),
        "{summary}"
    );
    let output = run_at(&fake.url, &["invoke", "rt", "--body", "{}", "-n", "2"]).await;
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("tokens           2000000000 in, 2000000000 out"),
        "{stdout}"
    );
    // 10^19 a call: not counted, the receipts say why.
    fake.set_response_body(
        br#"{"usage":{"prompt_tokens":10000000000000000000,"completion_tokens":5}}"#,
    );
    let output = run_at(
        &fake.url,
        &["invoke", "rt", "--body", "{}", "-n", "2", "--json"],
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("the response reported 10000000000000000000 input tokens"),
        "{stdout}"
    );
    assert!(
        lines.last().unwrap().contains(r#""output_tokens":10"#),
        "{stdout}"
    );
}

/// Calls whose compute no source can price (an instance type neither the Price
/// List, refused here, nor the snapshot has): the summary counts them and says
/// its total leaves their lines out, never a total that looks whole.
#[tokio::test(flavor = "multi_thread")]
async fn the_summary_counts_the_calls_with_unpriced_lines_and_says_its_total_leaves_them_out() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "odd",
        vec![FakeVariant::instance("AllTraffic", "ml.zz9.large", 1)],
    );
    let output = run_at(
        &fake.url,
        &["invoke", "odd", "--body", "{}", "-n", "2", "--json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let lines = json_lines(&output.stdout);
    let summary = lines.last().unwrap();
    assert_eq!(summary["unpriced_calls"], 2, "{summary}");
    // The total is the data lines alone, as the receipts say.
    let receipts: rust_decimal::Decimal = lines
        .iter()
        .filter(|l| l["type"] == "receipt")
        .map(|l| {
            l["cost_usd"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        summary["total_cost_usd"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        receipts
    );
    let output = run_at(&fake.url, &["invoke", "odd", "--body", "{}", "-n", "2"]).await;
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(" USD, without the unpriced lines of 2 call(s) (UNPRICED below)"),
        "{stdout}"
    );
    assert!(stdout.contains("  UNPRICED         "), "{stdout}");
}

/// The CLI has no price override: a call no source can price says, on its own
/// receipt line as in the summary, what a CLI user can do, never to set one.
#[tokio::test(flavor = "multi_thread")]
async fn an_unpriced_call_s_receipt_line_says_what_a_cli_user_can_do() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "odd",
        vec![FakeVariant::instance("AllTraffic", "ml.zz9.large", 1)],
    );
    let output = run_at(&fake.url, &["invoke", "odd", "--body", "{}", "-n", "2"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    // The Price List is refused here, so the snapshot's answer is the one advised on.
    let advice = "; fallback: no price for hosting ml.zz9.large in us-east-1: check the \
                  instance type and the region (--region)";
    for call in ["#1 ", "#2 "] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(call))
            .unwrap_or_else(|| panic!("no receipt line for {call}: {stdout}"));
        assert!(line.ends_with(advice), "{line}");
    }
    assert!(!stdout.contains("price override"), "{stdout}");
}

/// A reason quoting what SageMaker answered (here an instance type no source
/// prices) is shown with its control characters escaped: no answer clears the
/// terminal or forges a line.
#[tokio::test(flavor = "multi_thread")]
async fn an_unpriced_reason_on_a_receipt_line_cannot_write_control_characters() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "odd",
        vec![FakeVariant::instance(
            "AllTraffic",
            "ml.zz9\u{1b}[2J\r\nforged.large",
            1,
        )],
    );
    let output = run_at(&fake.url, &["invoke", "odd", "--body", "{}"]).await;
    let stdout = text(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("#1 "))
        .unwrap_or_else(|| panic!("no receipt line: {stdout}"));
    assert!(line.contains("UNPRICED"), "{line}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\r'),
        "{stdout}"
    );
    assert!(
        line.contains("ml.zz9\\u{1b}[2J\\r\\nforged.large"),
        "{line}"
    );
}

/// A call throttled on every attempt has no receipt (AWS bills none): the
/// summary has no cost per 1,000 calls, not a $0 nothing stands behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_a_receipt_has_no_cost_per_1000_calls() {
    let fake = fake_rt().await;
    fake.throttle_next(100);
    let output = run_at(&fake.url, &["invoke", "rt", "--body", "{}", "--json"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let lines = json_lines(&output.stdout);
    let summary = lines.last().unwrap();
    assert_eq!(summary["calls"], 1, "{summary}");
    assert_eq!(summary["failed"], 1, "{summary}");
    assert_eq!(summary["cost_per_1000_calls_usd"], Value::Null, "{summary}");
    let output = run_at(&fake.url, &["invoke", "rt", "--body", "{}"]).await;
    assert!(
        !text(&output.stdout).contains("per 1,000 calls"),
        "{}",
        text(&output.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_is_not_utf8_is_printed_byte_for_byte() {
    let fake = fake_rt().await;
    let body = [0xff, 0x00, 0x89, 0x50];
    fake.set_response_body(&body);
    let output = run_at(&fake.url, &["invoke", "rt", "--body", "{}"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let header = b"response of call #1 (4 bytes, application/json):\n";
    let at = output
        .stdout
        .windows(header.len())
        .position(|w| w == header)
        .expect("the response header");
    let start = at + header.len();
    assert_eq!(&output.stdout[start..start + 5], b"\xff\x00\x89\x50\n");
}

/// `RUST_LOG=trace` (with the SDK's own switches for printing bodies on) shows the
/// SDK's DEBUG lines, never the request's or response's payload, nor the session
/// token the request is signed with, nor the access key id (the SDK's endpoint
/// resolution prints the caller's identity at DEBUG).
#[tokio::test(flavor = "multi_thread")]
async fn rust_log_trace_never_writes_a_payload_or_a_credential_to_stderr() {
    const REQUEST_MARKER: &str = "REQUEST-PAYLOAD-MARKER-7e2a";
    const STREAM_MARKER: &str = "STREAM-PART-MARKER-91c4";
    const TOKEN_MARKER: &str = "SESSION-TOKEN-MARKER-3b8f";
    const KEY_ID_MARKER: &str = "AKIAKEYIDMARKER5d0e";
    let body = format!("{{\"inputs\":\"{REQUEST_MARKER}\"}}");
    let fake = fake_rt().await;
    fake.set_response_body(format!("{{\"generated_text\":\"{MARKER}\"}}").as_bytes());
    let stream = FakeStream::start(|_| Script::new().part(STREAM_MARKER)).await;
    for (url, extra) in [(&fake.url, None), (&stream.endpoint_url, Some("--stream"))] {
        let mut cmd = clean_env::sagemeter(url, &refused_url());
        cmd.env(
            "RUST_LOG",
            "trace,aws_smithy_runtime::client::orchestrator=trace",
        )
        .env("LOG_SENSITIVE_BODIES", "true")
        .env("LOG_SIGNABLE_BODY", "true")
        .env("AWS_SESSION_TOKEN", TOKEN_MARKER)
        .env("AWS_ACCESS_KEY_ID", KEY_ID_MARKER)
        .args(["invoke", if extra.is_some() { "llm" } else { "rt" }])
        .args(["--body", &body, "--json"])
        .args(extra);
        let output = run(cmd).await;
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "{stdout}\n{stderr}");
        // The log is on: the SDK's DEBUG lines are there.
        assert!(stderr.contains("beginning attempt #1"), "{stderr}");
        for marker in [
            REQUEST_MARKER,
            MARKER,
            STREAM_MARKER,
            TOKEN_MARKER,
            KEY_ID_MARKER,
        ] {
            assert!(!stderr.contains(marker), "{marker} on stderr:\n{stderr}");
            assert!(!stdout.contains(marker), "{marker} on stdout:\n{stdout}");
        }
    }
    assert_eq!(fake.invocations(), 1);
}

/// Credentials from a profile file, at `RUST_LOG=trace`: `aws_config` logs the
/// credentials it loads (their access key id) at INFO, and none of it reaches
/// stderr; the call is signed with them all the same.
#[tokio::test(flavor = "multi_thread")]
async fn rust_log_trace_never_writes_a_profiles_access_key_id() {
    const KEY_ID_MARKER: &str = "AKIAPROFILEMARKER8c1f";
    const SECRET_MARKER: &str = "PROFILE-SECRET-MARKER-40d2";
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[leaky]\naws_access_key_id = {KEY_ID_MARKER}\naws_secret_access_key = {SECRET_MARKER}\n"
        ),
    )
    .unwrap();
    let fake = fake_rt().await;
    let mut cmd = clean_env::sagemeter(&fake.url, &refused_url());
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_PROFILE", "leaky")
        .env("RUST_LOG", "trace")
        .args(["invoke", "rt", "--body", "{}", "--json"]);
    let output = run(cmd).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("beginning attempt #1"), "{stderr}");
    assert_eq!(
        fake.access_key_ids().last().map(String::as_str),
        Some(KEY_ID_MARKER)
    );
    for marker in [KEY_ID_MARKER, SECRET_MARKER] {
        assert!(!stderr.contains(marker), "{marker} on stderr:\n{stderr}");
        assert!(!stdout.contains(marker), "{marker} on stdout:\n{stdout}");
    }
}

/// A model's error, its message quoting the model, at `RUST_LOG=trace`: neither
/// stdout, stderr (sagemeter's lines and the SDK's DEBUG ones) nor the ledger
/// repeats it; before a stream (`ModelError`) and in the middle of one
/// (`ModelStreamError`) alike.
#[tokio::test(flavor = "multi_thread")]
async fn rust_log_trace_never_writes_a_models_error_message() {
    let message = model_error_message();
    let fake = fake_rt().await;
    fake.fail_invocations(424, "ModelError", &message);
    let quoted = message.clone();
    let stream = FakeStream::start(move |endpoint| match endpoint {
        "refused" => Script::new().model_error_with_message(&quoted),
        _ => Script::new()
            .part("data: {}\n\n")
            .model_stream_error_with_message("ModelCrashed", &quoted),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let runs = [
        (&fake.url, "rt", None),
        (&stream.endpoint_url, "refused", Some("--stream")),
        (&stream.endpoint_url, "llm", Some("--stream")),
    ];
    for (i, (url, endpoint, extra)) in runs.into_iter().enumerate() {
        let ledger = dir.path().join(format!("{i}.jsonl"));
        let mut cmd = clean_env::sagemeter(url, &refused_url());
        cmd.env("RUST_LOG", "trace")
            .args(["invoke", endpoint, "--body", "{}", "--json"])
            .arg("--ledger")
            .arg(&ledger)
            .args(extra);
        let output = run(cmd).await;
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("beginning attempt #1"),
            "the log is on: {stderr}"
        );
        let ledger = std::fs::read_to_string(&ledger).unwrap();
        assert!(ledger.contains("\"outcome\":\"error\""), "billed: {ledger}");
        for (what, text) in [("stdout", stdout), ("stderr", stderr), ("ledger", ledger)] {
            assert!(
                !text.contains(MARKER),
                "{endpoint}: the model's message in {what}:\n{text}"
            );
        }
    }
}

/// `invoke --async` with an inline body over the 128,000 bytes SageMaker takes
/// inline for InvokeEndpointAsync is an invalid argument (exit 2), refused before
/// it is sent, as an over-limit body of a plain invoke is.
#[tokio::test(flavor = "multi_thread")]
async fn an_async_body_over_the_inline_limit_is_an_invalid_argument() {
    let fake = fake_rt().await;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("200k.json");
    // {"inputs":"x…x"}: 13 bytes of JSON around 199,987 x's, 200,000 bytes in all.
    let text = format!("{{\"inputs\":\"{}\"}}", "x".repeat(199_987));
    assert_eq!(text.len(), 200_000);
    std::fs::write(&body, text).unwrap();
    let body_arg = format!("@{}", body.display());
    let output = run_at(&fake.url, &["invoke", "rt", "--async", "--body", &body_arg]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at most 128000 bytes inline"), "{stderr}");
    // In the CLI's words (its flags), with no failed-call line before it.
    assert!(
        stderr.contains("put the input in S3 and pass --input-location"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("FAILED") && output.stdout.is_empty(),
        "{stderr}"
    );
    assert_eq!(fake.invocations(), 0, "nothing sent");
}

/// A password the SDK takes in an endpoint URL and `http::Uri` refuses (`|`): the
/// SDK's error then quotes the URL and the whole request, body too.
const URL_SECRET: &str = "URL|SECRET-4b2e";

/// Stands for a request body or an input location's credentials.
const BODY_MARKER: &str = "BODY-MARKER-4b2e";

/// What the CLI prints (stdout, stderr, at its default log level) when an endpoint
/// URL cannot be applied (the runtime's; discovery's and the Price List's) or an
/// async input location is no header value: never the URL's password, the body
/// or the location's query.
#[tokio::test(flavor = "multi_thread")]
async fn no_output_quotes_a_url_password_a_body_or_an_input_location() {
    let fake = fake_rt().await;
    let unappliable = format!("http://user:{URL_SECRET}@127.0.0.1:1");
    let body = format!(r#"{{"inputs":"{BODY_MARKER}"}}"#);
    let invoke = ["invoke", "rt", "--body", body.as_str(), "--json"];

    let mut runtime = clean_env::sagemeter(&unappliable, &unappliable);
    runtime.args(invoke);
    let mut discovery = clean_env::sagemeter(&fake.url, &unappliable);
    discovery
        .env("AWS_ENDPOINT_URL_SAGEMAKER", &unappliable)
        .args(invoke);
    let location = format!(
        "https://b.s3.amazonaws.com/in.json?AWSAccessKeyId=AKIA{BODY_MARKER}&\
         x-amz-security-token={BODY_MARKER}&Signature={BODY_MARKER}\r"
    );
    let mut input = clean_env::sagemeter(&fake.url, &refused_url());
    input.args([
        "invoke",
        "rt",
        "--async",
        "--input-location",
        &location,
        "--json",
    ]);

    // What each case must say it failed at: a case that never reached the SDK's
    // failure would pass the markers' check with nothing to hide.
    const NOT_APPLIED: &str = "the endpoint URL could not be applied to the request";
    for (case, cmd, said) in [
        ("runtime URL", runtime, NOT_APPLIED),
        ("discovery and Price List URLs", discovery, NOT_APPLIED),
        (
            "input location",
            input,
            "failed: failed to construct request: invalid field in input: input_location",
        ),
    ] {
        let output = run(cmd).await;
        let printed = format!("{}\n{}", text(&output.stdout), text(&output.stderr));
        for marker in [URL_SECRET, "SECRET-4b2e", BODY_MARKER] {
            assert!(!printed.contains(marker), "{case}: {marker} in\n{printed}");
        }
        assert!(printed.contains(said), "{case}: no {said:?} in\n{printed}");
    }
}

/// What the CLI logs (stderr, at its default level and at `RUST_LOG=trace`) for
/// an endpoint URL with a password and a query, one whose port does not parse,
/// and a `credential_process` that fails: never the password, the query's token
/// or what the process printed (the SDK's own warnings quote them).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn no_log_line_quotes_an_endpoint_urls_secrets_or_a_credential_processs_output() {
    let fake = fake_rt().await;
    let dir = tempfile::tempdir().unwrap();
    let at = fake.url.trim_start_matches("http://");
    let with_query = format!("http://user:URLSECRET-4b2e@{at}/?token=QSECRET-4b2e");
    let bad_port = "http://user:URLSECRET-4b2e@127.0.0.1:99999";
    let config = dir.path().join("config");
    let script = crate::support::failing_credential_process(dir.path());
    std::fs::write(
        &config,
        format!("[profile cp]\ncredential_process = {}\n", script.display()),
    )
    .unwrap();
    let invoke = ["invoke", "rt", "--body", "{}", "--json"];
    for rust_log in [None, Some("trace")] {
        let mut query = clean_env::sagemeter(&with_query, &refused_url());
        query.args(invoke);
        let mut port = clean_env::sagemeter(bad_port, &refused_url());
        port.args(invoke);
        let mut process = clean_env::sagemeter(&fake.url, &refused_url());
        process
            .env("AWS_CONFIG_FILE", &config)
            .args(invoke)
            .args(["--profile", "cp"]);
        // What each case must say: the call through the URL with a query made a
        // receipt; the others failed, saying why.
        for (case, mut cmd, said) in [
            ("URL with a query", query, r#"{"type":"receipt","call":1,"#),
            (
                "URL with a bad port",
                port,
                r#"{"type":"error","call":1,"error":"InvokeEndpoint on endpoint `rt` failed: "#,
            ),
            (
                "credential_process",
                process,
                "failed: dispatch failure: other: an error occurred while loading credentials: \
                 Error retrieving credentials: external process exited with code",
            ),
        ] {
            if let Some(level) = rust_log {
                cmd.env("RUST_LOG", level);
            }
            let output = run(cmd).await;
            let printed = format!("{}\n{}", text(&output.stdout), text(&output.stderr));
            for marker in [
                "URLSECRET-4b2e",
                "QSECRET-4b2e",
                crate::support::PROCESS_SECRET,
            ] {
                assert!(
                    !printed.contains(marker),
                    "{case} at RUST_LOG={rust_log:?}: {marker} in\n{printed}"
                );
            }
            assert!(
                printed.contains(said),
                "{case} at RUST_LOG={rust_log:?}: no {said:?} in\n{printed}"
            );
        }
    }
}

/// A TGI answer reports the tokens it generated but not the prompt's: the receipt
/// line and the summary show the count known and `?` for the other, not nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_reported_only_output_tokens_shows_them_with_a_question_mark_for_input() {
    let fake = fake_rt().await;
    fake.set_response_body(br#"[{"generated_text":"a","details":{"generated_tokens":100}}]"#);
    let output = run_at(&fake.url, &["invoke", "rt", "--body", "{}", "-n", "2"]).await;
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains(", ?+100 tokens); running $"), "{stdout}");
    // 2 calls × 100 generated tokens
    assert!(
        stdout.contains("tokens           ? in, 200 out"),
        "{stdout}"
    );
}

/// Calls that reported different counts: the summary's sums are of those that
/// reported each, and it says how many did.
#[tokio::test(flavor = "multi_thread")]
async fn the_summary_says_how_many_calls_reported_the_tokens_it_sums() {
    let fake = fake_rt().await;
    let openai: &[u8] = br#"{"usage":{"prompt_tokens":12,"completion_tokens":30}}"#;
    let tgi: &[u8] = br#"[{"generated_text":"a","details":{"generated_tokens":100}}]"#;
    fake.next_response_bodies(&[openai, tgi, openai]);
    let output = run_at(&fake.url, &["invoke", "rt", "--body", "{}", "-n", "3"]).await;
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    // In: 12 + 12 from the two OpenAI-shaped answers; out: 30 + 100 + 30.
    assert!(
        stdout.contains("tokens           24 in, 160 out (reported by 2 and 3 of 3 calls)"),
        "{stdout}"
    );
    fake.next_response_bodies(&[openai, tgi, openai]);
    let output = run_at(
        &fake.url,
        &["invoke", "rt", "--body", "{}", "-n", "3", "--json"],
    )
    .await;
    let summary = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "summary")
        .expect("a summary line");
    assert_eq!(
        (
            &summary["input_tokens"],
            &summary["calls_with_input_tokens"],
            &summary["output_tokens"],
            &summary["calls_with_output_tokens"]
        ),
        (
            &serde_json::json!(24),
            &serde_json::json!(2),
            &serde_json::json!(160),
            &serde_json::json!(3)
        )
    );
}

/// Two enforced fleet budgets of one scope and period cannot share the table's one
/// lease: an invalid argument (exit 2), found before anything is sent, the fleet
/// table's check (DescribeTable) included.
#[cfg(feature = "fleet")]
#[tokio::test(flavor = "multi_thread")]
async fn two_enforced_fleet_budgets_of_one_scope_are_refused_before_anything_is_sent() {
    let fake = fake_rt().await;
    let args = [
        "invoke",
        "rt",
        "--body",
        "{}",
        "--fleet-table",
        "t",
        "--budget",
        "endpoint=1/day",
        "--budget",
        "endpoint=2/day",
    ];
    let output = run_at(&fake.url, &args).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("two enforced fleet budgets"), "{stderr}");
    assert!(!stderr.contains("Budget::alert"), "{stderr}");
    assert_eq!(fake.requests(), 0, "{stderr}");
    // Said before the region is needed and before the ledger's file is made.
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let mut cmd = clean_env::sagemeter(&fake.url, &refused_url());
    cmd.env_remove("AWS_REGION")
        .args(args)
        .arg("--ledger")
        .arg(&ledger);
    let output = run(cmd).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("two enforced fleet budgets"), "{stderr}");
    assert!(!ledger.exists(), "{stderr}");
    assert_eq!(fake.requests(), 0, "{stderr}");
}

/// `--ledger-roll-bytes` with a file `--ledger` is an invalid argument whatever
/// the AWS environment: said (exit 2) also where no region is configured.
#[tokio::test(flavor = "multi_thread")]
async fn ledger_roll_bytes_with_a_file_ledger_is_refused_before_the_region_is_needed() {
    let fake = fake_rt().await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let mut cmd = clean_env::sagemeter(&fake.url, &refused_url());
    cmd.env_remove("AWS_REGION")
        .args(["invoke", "rt", "--body", "{}", "--ledger"])
        .arg(&ledger)
        .args(["--ledger-roll-bytes", "1000"]);
    let output = run(cmd).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--ledger-roll-bytes needs a directory --ledger"),
        "{stderr}"
    );
    assert!(!ledger.exists());
    assert_eq!(fake.requests(), 0, "{stderr}");
}
