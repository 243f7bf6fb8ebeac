//! Crash safety: `sagemeter invoke --ledger` is killed with SIGKILL while it is
//! appending receipts. The file stays readable, every record before the last
//! newline is intact, and a torn tail (when the kill landed mid-line) is reported.

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use sagemeter::ledger::read_all;
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_survives_sigkill_of_its_writer() {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.jsonl");
    let no_file = dir.path().join("no-such-aws-file");
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_sagemeter"))
        .env_clear()
        .env("AWS_ENDPOINT_URL", &fake.url)
        .env("AWS_ENDPOINT_URL_PRICING", &refused)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &no_file)
        .env("AWS_SHARED_CREDENTIALS_FILE", &no_file)
        .args([
            "invoke", "rt", "--body", "{}", "-n", "1000000", "-c", "8", "--json",
        ])
        .arg("--ledger")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sagemeter binary");

    // Let it write for a while, then kill it without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 300_000 {
        assert!(Instant::now() < deadline, "the CLI never wrote its ledger");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let complete_lines = bytes[..complete].iter().filter(|b| **b == b'\n').count();
    let read = read_all(&path).expect("a killed writer leaves a readable ledger");
    assert!(complete_lines > 100, "{complete_lines} lines");
    assert_eq!(
        read.records.len(),
        complete_lines,
        "every complete line is a record"
    );
    assert_eq!(
        read.torn_tail.is_some(),
        complete < bytes.len(),
        "a partial last line is reported as a torn tail, nothing else is lost"
    );
    let ids: HashSet<_> = read.records.iter().map(|r| r.call_id.as_str()).collect();
    let mut seen = HashSet::new();
    let dups: Vec<_> = read
        .records
        .iter()
        .filter(|r| !seen.insert(r.call_id.clone()))
        .map(|r| (r.call_id.clone(), r.at, r.cost_usd))
        .collect();
    assert_eq!(
        ids.len(),
        read.records.len(),
        "no record written twice: {dups:?}"
    );
    assert!(
        read.records
            .iter()
            .all(|r| r.endpoint == "rt" && r.is_fully_priced())
    );
}
