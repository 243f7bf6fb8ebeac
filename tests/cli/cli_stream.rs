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
