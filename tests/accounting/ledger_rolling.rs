//! The rolling ledger: one file per UTC hour (or day) and per size limit in a
//! directory, the oldest removed beyond a retention count, read back in order.

use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use rust_decimal::Decimal;
use sagemeter::Cost;
use sagemeter::ledger::{JsonlLedger, LedgerError, RollEvery, ledger_files, read_all};
use sagemeter::report::{GroupBy, ReportOptions, report_files};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A receipt with an id and a cost of id × 10⁻⁷ USD (`0.000` then the id in four digits).
fn receipt(id: u32) -> Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": format!("c{id:04}"), "at": "2026-12-02T10:30:00Z", "endpoint": "rt",
        "variant": "AllTraffic", "allocation": "busy_time",
        "usage": {"operation": "invoke_endpoint", "latency_us": 1000, "bytes_in": 10,
                  "bytes_out": 20, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [], "cost_usd": format!("0.000{id:04}"), "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    }))
    .unwrap()
}

/// A clock at 2026-12-02T10:30:00Z.
fn clock() -> (ManualTimeSource, SharedTimeSource) {
    let at: chrono::DateTime<chrono::Utc> = "2026-12-02T10:30:00Z".parse().unwrap();
    let time = ManualTimeSource::new(SystemTime::from(at));
    let shared = SharedTimeSource::new(time.clone());
    (time, shared)
}

fn names(dir: &Path) -> Vec<String> {
    ledger_files(dir)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read_dir_records(dir: &Path) -> Vec<Cost> {
    let mut records = Vec::new();
    for file in ledger_files(dir).unwrap() {
        let read = read_all(&file).unwrap();
        assert!(read.torn_tail.is_none(), "{}", file.display());
        records.extend(read.records);
    }
    records
}

/// The bytes the definitions of a file take (they are the same for every test
/// receipt) and the bytes one receipt takes.
async fn line_len() -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    ledger.try_record(&receipt(1)).unwrap();
    ledger.shutdown().await.unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let line = text.lines().last().unwrap().len() as u64 + 1;
    (text.len() as u64 - line, line)
}

#[tokio::test]
async fn files_roll_by_hour_and_size_and_read_back_in_order_exactly() {
    let (defs, line) = line_len().await;
    let (time, shared) = clock();
    let parent = tempfile::tempdir().unwrap();
    let dir: PathBuf = parent.path().join("receipts");
    // Room for three receipts a file (the limit counts receipts, not definitions).
    let ledger = JsonlLedger::rolling(&dir)
        .max_bytes(3 * line + 1)
        .time_source(shared)
        .open()
        .unwrap();
    assert_eq!(mode(&dir), 0o700, "the directory is made owner-only");
    assert_eq!(names(&dir), ["sagemeter-2026-12-02T10.jsonl"]);

    let mut written = Vec::new();
    for id in 0..7 {
        let r = receipt(id);
        ledger.try_record(&r).unwrap();
        written.push(r);
    }
    ledger.flush().await.unwrap();
    time.advance(Duration::from_secs(3600)); // 11:30: a new hour, a new file
    for id in 7..9 {
        let r = receipt(id);
        ledger.try_record(&r).unwrap();
        written.push(r);
    }
    ledger.shutdown().await.unwrap();

    assert_eq!(
        names(&dir),
        [
            "sagemeter-2026-12-02T10.jsonl",
            "sagemeter-2026-12-02T10.1.jsonl",
            "sagemeter-2026-12-02T10.2.jsonl",
            "sagemeter-2026-12-02T11.jsonl",
        ]
    );
    let sizes: Vec<u64> = ledger_files(&dir)
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(mode(p), 0o600, "{}", p.display());
            fs::metadata(p).unwrap().len()
        })
        .collect();
    assert_eq!(
        sizes,
        [
            defs + 3 * line,
            defs + 3 * line,
            defs + line,
            defs + 2 * line
        ]
    );
    // Each file reads on its own: it holds the definitions its receipts refer to.
    let per_file: Vec<usize> = ledger_files(&dir)
        .unwrap()
        .iter()
        .map(|p| read_all(p).unwrap().records.len())
        .collect();
    assert_eq!(per_file, [3, 3, 1, 2]);

    // Every receipt once, in order; the report of the directory sums them.
    let read = read_dir_records(&dir);
    assert_eq!(read, written);
    let expected: Decimal = written.iter().map(|c| c.cost_usd).sum();
    // (0 + 1 + … + 8) × 10⁻⁷ = 36 × 10⁻⁷
    assert_eq!(expected, "0.0000036".parse::<Decimal>().unwrap());
    let report = report_files([&dir], &ReportOptions::new(GroupBy::Endpoint)).unwrap();
    assert_eq!(report.total.calls, 9);
    assert_eq!(report.total.cost_usd, expected);
}

#[tokio::test]
async fn only_the_newest_files_are_kept_and_daily_files_are_named_for_midnight() {
    let (time, shared) = clock();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("receipts");
    let ledger = JsonlLedger::rolling(&dir)
        .keep_files(2)
        .time_source(shared.clone())
        .open()
        .unwrap();
    for id in 0..4 {
        ledger.try_record(&receipt(id)).unwrap();
        ledger.flush().await.unwrap();
        time.advance(Duration::from_secs(3600));
    }
    ledger.shutdown().await.unwrap();
    // 10:30, 11:30, 12:30, 13:30: the two newest remain.
    assert_eq!(
        names(&dir),
        [
            "sagemeter-2026-12-02T12.jsonl",
            "sagemeter-2026-12-02T13.jsonl"
        ]
    );
    let ids: Vec<String> = read_dir_records(&dir)
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(ids, ["c0002", "c0003"]);

    let daily = parent.path().join("daily");
    let ledger = JsonlLedger::rolling(&daily)
        .roll_every(RollEvery::Day)
        .time_source(shared)
        .open()
        .unwrap();
    ledger.try_record(&receipt(9)).unwrap();
    ledger.shutdown().await.unwrap();
    assert_eq!(names(&daily), ["sagemeter-2026-12-02T00.jsonl"]);
}

#[tokio::test]
async fn reopening_in_the_same_hour_appends_after_cutting_a_torn_tail() {
    let (_time, shared) = clock();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("receipts");
    let open = || {
        JsonlLedger::rolling(&dir)
            .time_source(shared.clone())
            .open()
            .unwrap()
    };
    let ledger = open();
    ledger.try_record(&receipt(1)).unwrap();
    ledger.try_record(&receipt(2)).unwrap();
    ledger.shutdown().await.unwrap();
    // A crash mid-line.
    let file = dir.join("sagemeter-2026-12-02T10.jsonl");
    let mut bytes = fs::read(&file).unwrap();
    bytes.extend_from_slice(br#"{"v":1,"call_id":"torn"#);
    fs::write(&file, bytes).unwrap();
    assert!(read_all(&file).unwrap().torn_tail.is_some());

    let ledger = open();
    ledger.try_record(&receipt(3)).unwrap();
    ledger.shutdown().await.unwrap();
    assert_eq!(names(&dir), ["sagemeter-2026-12-02T10.jsonl"]);
    let ids: Vec<String> = read_dir_records(&dir)
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(ids, ["c0001", "c0002", "c0003"]);
}

#[tokio::test]
async fn a_directory_others_can_read_and_zero_limits_are_refused() {
    let parent = tempfile::tempdir().unwrap();
    let open_dir = parent.path().join("shared");
    fs::create_dir(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let err = JsonlLedger::rolling(&open_dir).open().unwrap_err();
    assert!(
        matches!(err, LedgerError::DirectoryPermissions { mode: 0o755, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("run `chmod 700 "), "{err}");
    assert_eq!(mode(&open_dir), 0o755, "left as it was");

    let dir = parent.path().join("receipts");
    // Each refusal names the option at fault, not a list of rules.
    for (builder, option) in [
        (
            JsonlLedger::rolling(&dir).max_bytes(0),
            "JsonlLedgerBuilder::max_bytes",
        ),
        (
            JsonlLedger::rolling(&dir).keep_files(0),
            "JsonlLedgerBuilder::keep_files",
        ),
        (
            JsonlLedger::rolling(&dir).capacity(0),
            "JsonlLedgerBuilder::capacity",
        ),
    ] {
        let err = builder.open().unwrap_err();
        let LedgerError::InvalidOption(config) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(config.option, option);
        assert!(
            err.to_string().starts_with(&format!(
                "invalid ledger option: ledger {}: ",
                dir.display()
            )),
            "{err}"
        );
    }
    assert!(!dir.exists(), "nothing made for a refused option");
}

/// One writer per rolling ledger, whatever file each would write: a second one,
/// whose clock is an hour on (so it would start a file of its own), is refused
/// while the first writes, and opens once it has shut down. The lock file is not
/// a ledger file.
#[tokio::test]
async fn a_second_writer_of_one_directory_is_refused_until_the_first_shuts_down() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("receipts");
    let (_, time) = clock();
    let first = JsonlLedger::rolling(&dir).time_source(time).open().unwrap();
    first.try_record(&receipt(1)).unwrap();
    let (later, time) = clock();
    later.advance(Duration::from_secs(3600));
    let second = || JsonlLedger::rolling(&dir).time_source(time.clone()).open();
    let err = second().unwrap_err();
    assert!(
        matches!(&err, LedgerError::Locked { path } if path == &dir),
        "{err:?}"
    );
    assert_eq!(mode(&dir.join(".sagemeter.lock")), 0o600);
    first.shutdown().await.unwrap();

    let second = second().unwrap();
    second.try_record(&receipt(2)).unwrap();
    second.shutdown().await.unwrap();
    assert_eq!(
        names(&dir),
        [
            "sagemeter-2026-12-02T10.jsonl",
            "sagemeter-2026-12-02T11.jsonl"
        ]
    );
    let ids: Vec<_> = read_dir_records(&dir)
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(ids, ["c0001", "c0002"]);
}

/// A link planted in a rolling ledger's directory, as its lock file or as the
/// hour's file, is refused: nothing is created or written where it points.
#[tokio::test]
async fn links_in_a_rolling_ledgers_directory_are_refused() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("receipts");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let nowhere = parent.path().join("made-by-the-link");
    std::os::unix::fs::symlink(&nowhere, dir.join(".sagemeter.lock")).unwrap();
    let err = JsonlLedger::rolling(&dir).open().unwrap_err();
    assert!(matches!(err, LedgerError::Symlink { .. }), "{err:?}");
    assert!(!nowhere.exists());

    // The hour's file a link to a file of the user's: refused, the file whole.
    fs::remove_file(dir.join(".sagemeter.lock")).unwrap();
    let (_, shared) = clock();
    let victim = parent.path().join("notes.txt");
    fs::write(&victim, b"mine").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("sagemeter-2026-12-02T10.jsonl")).unwrap();
    let err = JsonlLedger::rolling(&dir)
        .time_source(shared)
        .open()
        .unwrap_err();
    // Said as the hour's file's error, as every error of a file the ledger rolls to.
    assert!(
        err.to_string()
            .contains("sagemeter-2026-12-02T10.jsonl is a symbolic link"),
        "{err:?}"
    );
    assert_eq!(fs::read(&victim).unwrap(), b"mine");
}
