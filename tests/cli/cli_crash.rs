//! Crash safety: `sagemeter invoke --ledger` is killed with SIGKILL while it is
//! appending receipts, to one file or to a rolling directory. Every file stays
//! readable, every record before its last newline is intact, a torn tail (when the
//! kill landed mid-line) is reported, and nothing is written twice.

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use sagemeter::Cost;
use sagemeter::ledger::{ledger_files, read_all};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `sagemeter invoke` on a fake endpoint with `ledger_args`, and kills it
/// with SIGKILL once `written()` bytes reach 300,000.
async fn invoke_then_kill(ledger_args: &[&std::ffi::OsStr], written: impl Fn() -> u64) {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let scratch = tempfile::tempdir().unwrap();
    let no_file = scratch.path().join("no-such-aws-file");
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
        .args(ledger_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sagemeter binary");

    // Let it write for a while, then kill it without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    while written() < 300_000 {
        assert!(Instant::now() < deadline, "the CLI never wrote its ledger");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// A definition (ledger format 2), not a receipt.
fn is_definition(line: &[u8]) -> bool {
    line.starts_with(br#"{"v":2,"price":"#)
        || line.starts_with(br#"{"v":2,"context":"#)
        || line.starts_with(br#"{"v":2,"origin":"#)
}

/// The bytes of `path`'s definitions.
fn definition_bytes(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| is_definition(l))
        .map(|l| l.len() as u64)
        .sum()
}

/// Every complete line of `path` is a record (or a definition) and a partial last
/// line is its torn tail; returns the records.
fn complete_records(path: &Path, last: bool) -> Vec<Cost> {
    let bytes = std::fs::read(path).unwrap();
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let complete_receipts = bytes[..complete]
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| !is_definition(l))
        .count();
    let read = read_all(path).expect("a killed writer leaves a readable ledger");
    assert_eq!(
        read.records.len(),
        complete_receipts,
        "every complete line of {} is a record",
        path.display()
    );
    assert_eq!(
        read.torn_tail.is_some(),
        complete < bytes.len(),
        "a partial last line is reported as a torn tail, nothing else is lost"
    );
    assert!(
        last || read.torn_tail.is_none(),
        "only the last file can end mid-line: {}",
        path.display()
    );
    read.records
}

fn assert_each_once_and_priced(records: &[Cost]) {
    assert!(records.len() > 100, "{} records", records.len());
    let mut seen = HashSet::new();
    let dups: Vec<_> = records
        .iter()
        .filter(|r| !seen.insert(r.call_id.clone()))
        .map(|r| (r.call_id.clone(), r.at, r.cost_usd))
        .collect();
    assert!(dups.is_empty(), "no record written twice: {dups:?}");
    assert!(
        records
            .iter()
            .all(|r| r.endpoint == "rt" && r.is_fully_priced())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_survives_sigkill_of_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.jsonl");
    invoke_then_kill(&["--ledger".as_ref(), path.as_os_str()], || {
        std::fs::metadata(&path).map_or(0, |m| m.len())
    })
    .await;
    assert_each_once_and_priced(&complete_records(&path, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_ledger_survives_sigkill_with_every_file_readable() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("receipts");
    let dir_arg = format!("{}/", dir.display());
    let total = || {
        std::fs::read_dir(&dir).map_or(0, |entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
    };
    invoke_then_kill(
        &[
            "--ledger".as_ref(),
            dir_arg.as_ref(),
            "--ledger-roll-bytes".as_ref(),
            "65536".as_ref(),
        ],
        total,
    )
    .await;
    let files = ledger_files(&dir).unwrap();
    assert!(
        files.len() >= 4,
        "{} files for 300 kB at 64 KiB a file",
        files.len()
    );
    let mut records = Vec::new();
    for (i, file) in files.iter().enumerate() {
        // The size limit counts receipts; each file also holds its definitions.
        assert!(
            std::fs::metadata(file).unwrap().len() - definition_bytes(file) <= 65_536,
            "{}",
            file.display()
        );
        records.extend(complete_records(file, i + 1 == files.len()));
    }
    assert_each_once_and_priced(&records);
}
