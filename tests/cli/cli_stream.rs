//! `sagemeter invoke --stream` against an in-process server writing real
//! event-stream frames (no emulator serves InvokeEndpointWithResponseStream).

use crate::support::fake_stream::{FakeStream, Script};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn stream_prints_parts_as_they_arrive_then_the_receipt() {
    let fake = FakeStream::start(|_| {
        Script::new()
            .part("data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n")
            .part("data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n")
            .part("data: [DONE]\n\n")
    })
    .await;
    let url = fake.sdk_config().await.endpoint_url().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let no_file = std::env::temp_dir().join("sagemeter-cli-test-no-such-aws-file");
        assert_cmd::Command::cargo_bin("sagemeter")
            .unwrap()
            .env_clear()
            .env("AWS_ENDPOINT_URL", &url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &no_file)
            .env("AWS_SHARED_CREDENTIALS_FILE", &no_file)
            .args(["invoke", "llm", "--stream", "--body", "{\"stream\":true}"])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The parts, in order, then one receipt line with the stream's tokens.
    let hello = stdout.find("Hello").expect("first part printed");
    let world = stdout.find(" world").expect("second part printed");
    let receipt = stdout.find("#1 ").expect("a receipt");
    assert!(hello < world && world < receipt, "{stdout}");
    assert!(
        stdout.contains("InvokeEndpointWithResponseStream"),
        "{stdout}"
    );
    assert!(stdout.contains("5+2 tokens"), "{stdout}");
}

/// `invoke --stream | head -c …`: the reader leaves after the first part. The output
/// stops there, but the stream is read to its end and its receipt reaches the ledger
/// whole (`ok`, every part's time, the tokens of its last part), exit 0, as a plain
/// invoke's calls in flight do; not a `cancelled` receipt cut at the failed write.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_leaves_a_stream_loses_none_of_its_receipt() {
    use super::cli_invoke_fake::{ledger_receipts, read_first_part, spawn_stream, wait_for_exit};
    // Five parts 400 ms apart: the stream lasts at least 4 × 400 ms = 1.6 s after
    // its first part; the usage (7 in, 4 out) comes with the last.
    let pause = Duration::from_millis(400);
    let fake = FakeStream::start(move |_| {
        let mut script = Script::new();
        for word in ["Hel", "lo", " wor", "ld"] {
            script = script
                .part(format!(
                    "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{word}\"}}}}]}}\n\n"
                ))
                .pause(pause);
        }
        script.part(
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":4}}\n\n",
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("spend.jsonl");
    let mut child = spawn_stream(&fake.endpoint_url, &ledger);
    let mut stdout = child.stdout.take().unwrap();
    tokio::task::spawn_blocking(move || {
        let printed = read_first_part(&mut stdout);
        assert!(printed.contains("Hel"), "{printed}");
        drop(stdout); // the reader leaves: the next part's write fails (EPIPE)
    })
    .await
    .unwrap();
    let (status, stderr) = wait_for_exit(child).await;
    assert!(status.success(), "{status}: {stderr}");
    let receipts = ledger_receipts(&ledger);
    assert_eq!(receipts.len(), 1, "{stderr}");
    let usage = &receipts[0].usage;
    assert_eq!(usage.outcome, sagemeter::usage::Outcome::Ok, "{usage:?}");
    assert!(usage.latency >= 4 * pause, "{usage:?}");
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(7), Some(4))
    );
}

/// Ctrl-C after the model's `[DONE]`, its stream's end not come: the receipt is
/// whole (`ok`, the tokens), and the message says the answer was, not that the
/// stream was cut short; before `[DONE]` it still says cut short.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_after_done_says_the_answer_was_whole() {
    use super::cli_invoke_fake::{
        kill, ledger_receipts, read_first_part, spawn_stream, wait_for_exit,
    };
    for done in [true, false] {
        let fake = FakeStream::start(move |_| {
            let script = Script::new().part(
                "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
            );
            let script = if done { script.part("data: [DONE]\n\n") } else { script };
            script.hang_until_client_leaves()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("spend.jsonl");
        let mut child = spawn_stream(&fake.endpoint_url, &ledger);
        let mut stdout = child.stdout.take().unwrap();
        let stdout = tokio::task::spawn_blocking(move || {
            let printed = read_first_part(&mut stdout);
            assert!(printed.contains("Hi"), "{printed}");
            stdout
        })
        .await
        .unwrap();
        // The `[DONE]` part follows the first at once: well read by then.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        kill(&child, libc::SIGINT);
        let (status, stderr) = wait_for_exit(child).await;
        drop(stdout);
        assert_eq!(status.code(), Some(130), "{stderr}");
        let receipts = ledger_receipts(&ledger);
        assert_eq!(receipts.len(), 1, "{stderr}");
        let outcome = receipts[0].usage.outcome;
        if done {
            assert_eq!(outcome, sagemeter::usage::Outcome::Ok, "{stderr}");
            assert!(
                stderr.contains("interrupted by SIGINT: the stream's end was not waited for; the model's answer was whole"),
                "{stderr}"
            );
        } else {
            assert_eq!(outcome, sagemeter::usage::Outcome::Cancelled, "{stderr}");
            assert!(
                stderr.contains("interrupted by SIGINT: the stream was cut short"),
                "{stderr}"
            );
        }
    }
}

/// A stream that fails after the model's `[DONE]` (a container resetting its
/// connection once it has written it): the answer was whole, the receipt `ok`,
/// printed as a whole call (no `FAILED`), the error a note on stderr, exit 0;
/// one that fails before `[DONE]` is still a failed call, exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_failing_after_done_prints_its_whole_receipt_and_exits_0() {
    for done in [true, false] {
        let fake = FakeStream::start(move |_| {
            let script =
                Script::new().part("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n");
            let script = if done {
                script.part("data: [DONE]\n\n")
            } else {
                script
            };
            script.model_stream_error("StreamBroken")
        })
        .await;
        let mut cmd =
            super::clean_env::sagemeter(&fake.endpoint_url, &super::clean_env::refused_url());
        cmd.args(["invoke", "llm", "--stream", "--body", "{}"]);
        let output = super::cli_invoke_fake::run(cmd).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if done {
            assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
            assert!(!stdout.contains("FAILED"), "{stdout}");
            assert!(stdout.contains("#1 "), "{stdout}");
            assert!(
                stderr.contains("failed after the model's [DONE]")
                    && stderr.contains("StreamBroken")
                    && stderr.contains("the answer was whole"),
                "{stderr}"
            );
        } else {
            assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
            assert!(stdout.contains("#1    FAILED"), "{stdout}");
            assert!(
                stderr.contains("the receipt covers it up to the failure"),
                "{stderr}"
            );
        }
    }
}

/// The text receipt's lines say their quantities' units: compute is instance-hours on
/// an instance variant and seconds on a serverless one, data is in GB.
#[tokio::test(flavor = "multi_thread")]
async fn a_streams_receipt_lines_say_their_units() {
    use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
    // The endpoints are described by the fake control plane; the stream is the fake's.
    let control = FakeSageMaker::start().await;
    control.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 1)],
    );
    control.add_endpoint("sls", vec![FakeVariant::serverless("AllTraffic", 2048)]);
    let fake = FakeStream::start(|_| Script::new().part("hi\n")).await;
    for (endpoint, compute_unit) in [("rt", "instance-hours"), ("sls", "seconds")] {
        let mut cmd =
            super::clean_env::sagemeter(&fake.endpoint_url, &super::clean_env::refused_url());
        cmd.env("AWS_ENDPOINT_URL_SAGEMAKER", &control.url)
            .args(["invoke", endpoint, "--stream", "--body", "{}"]);
        let output = super::cli_invoke_fake::run(cmd).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        let line = |item: &str| {
            stdout
                .lines()
                .map(str::split_whitespace)
                .map(Iterator::collect::<Vec<_>>)
                .find(|cells| cells.first() == Some(&item))
                .unwrap_or_else(|| panic!("a {item} line: {stdout}"))
        };
        // item, quantity, unit, amount.
        assert_eq!(line("compute")[2], compute_unit, "{stdout}");
        assert_eq!(line("data_in")[2], "GB", "{stdout}");
        assert_eq!(line("data_out")[2], "GB", "{stdout}");
    }
}
