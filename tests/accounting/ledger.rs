//! The JSON Lines ledger through a real client against the in-process fake
//! SageMaker: what the file holds, how it is created, how it survives a crash.

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::rt_priced_by_overrides;
use aws_sdk_sagemakerruntime::primitives::Blob;
use rust_decimal::Decimal;
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::ledger::{JsonlLedger, LedgerError, Refused, read_all};
use sagemeter::pricing::PriceKey;
use sagemeter::sink::CostSink;
use sagemeter::{Client, Cost};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn fake() -> FakeSageMaker {
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    fake
}

/// A client pricing from overrides only, with a fixed profile: no discovery,
/// no Price List.
async fn client(fake: &FakeSageMaker, ledger: &JsonlLedger) -> Client {
    rt_priced_by_overrides(fake)
        .await
        .default_tag("team", "search")
        .sink(ledger.clone())
        .build()
        .unwrap()
}

async fn call(client: &Client, body: &str, tag: Option<(&str, &str)>) -> Cost {
    let mut request = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .content_type("application/json")
        .body(Blob::new(body.to_owned()));
    if let Some((k, v)) = tag {
        request = request.tag(k, v);
    }
    request.send().await.unwrap().into_parts().1
}

/// A receipt for file-level tests that need no client.
fn receipt(id: u32) -> Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": format!("c{id}"), "at": "2026-11-02T10:00:00Z", "endpoint": "rt",
        "variant": "AllTraffic", "allocation": "busy_time",
        "usage": {"operation": "invoke_endpoint", "latency_us": 1000 + id, "bytes_in": 10,
                  "bytes_out": 20, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [], "cost_usd": format!("0.{id:06}"), "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0"
    }))
    .unwrap()
}

async fn write_receipts(path: &Path, n: u32) -> Vec<Cost> {
    let ledger = JsonlLedger::open(path).unwrap();
    let receipts: Vec<Cost> = (0..n).map(receipt).collect();
    for r in &receipts {
        ledger.try_record(r).unwrap();
    }
    ledger.shutdown().await.unwrap();
    receipts
}

/// The call ids of the receipts in the ledger at `path`, in order.
fn call_ids(path: &Path) -> Vec<String> {
    let records = read_all(path).unwrap().records;
    records.into_iter().map(|c| c.call_id).collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_ledger_holds_exactly_the_receipts_of_the_calls_with_their_tags() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    let client = client(&fake, &ledger).await;

    let mut receipts = Vec::new();
    for i in 0..20 {
        let tag = (i % 2 == 0).then_some(("tenant", "acme"));
        receipts.push(call(&client, &format!(r#"{{"n":{i}}}"#), tag).await);
    }
    ledger.shutdown().await.unwrap();

    let read = read_all(&path).unwrap();
    assert!(read.torn_tail.is_none());
    assert_eq!(read.records, receipts);
    // Format 2: what repeats (the context, the three prices, where the accrual's
    // rate came from) is defined once, first; then one short line per receipt.
    let text = fs::read_to_string(&path).unwrap();
    let (receipt_lines, definitions): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.starts_with(r#"{"v":2,"c":"#));
    assert_eq!(receipt_lines.len(), 20);
    assert_eq!(definitions.len(), 5, "{definitions:#?}");
    assert!(text.lines().take(5).eq(definitions.iter().copied()));
    assert!(
        definitions
            .contains(&r#"{"v":2,"origin":4,"charge":"capacity","price_source":"override"}"#),
        "{definitions:#?}"
    );
    for line in &receipt_lines {
        assert!(line.len() < 400, "{line}");
    }
    // Tags: the client's default on every line, the per-call one where it was set.
    assert!(read.records.iter().all(|c| c.tags["team"] == "search"));
    let acme = read
        .records
        .iter()
        .filter(|c| c.tags.get("tenant").map(String::as_str) == Some("acme"))
        .count();
    assert_eq!(acme, 10);
    // The sums agree with the client's running total to the last digit.
    let sum: Decimal = read.records.iter().map(|c| c.cost_usd).sum();
    assert_eq!(sum, client.meter().totals().client_usd);
    let stats = ledger.stats();
    assert_eq!(
        (stats.accepted, stats.written, stats.dropped_full),
        (20, 20, 0)
    );
}

#[tokio::test]
async fn no_payload_byte_reaches_the_ledger() {
    let fake = fake().await;
    let marker = "PAYLOAD-MARKER-ledger-91c2";
    fake.set_response_body(
        format!(r#"{{"text":"{marker}","usage":{{"prompt_tokens":3,"completion_tokens":4}}}}"#)
            .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    let client = client(&fake, &ledger).await;
    let cost = call(&client, &format!(r#"{{"inputs":"{marker}"}}"#), None).await;
    ledger.shutdown().await.unwrap();

    // The marker went both ways...
    assert!(
        fake.state.received_bodies.lock().unwrap()[0]
            .windows(marker.len())
            .any(|w| w == marker.as_bytes())
    );
    assert_eq!(cost.usage.output_tokens, Some(4));
    // ...and is nowhere in the file, which does hold the call.
    let bytes = fs::read(&path).unwrap();
    assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()));
    assert_eq!(read_all(&path).unwrap().records, vec![cost]);
}

#[tokio::test]
async fn a_new_ledger_file_is_owner_read_write_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    ledger.shutdown().await.unwrap();
    // Reopening an owner-only file appends to it and leaves its mode alone.
    let ledger = JsonlLedger::open(&path).unwrap();
    ledger.try_record(&receipt(1)).unwrap();
    ledger.shutdown().await.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(read_all(&path).unwrap().records.len(), 1);
}

#[tokio::test]
async fn an_existing_ledger_readable_by_others_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fs::write(&path, b"").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = JsonlLedger::open(&path).unwrap_err();
    assert!(
        matches!(err, LedgerError::Permissions { mode: 0o644, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("644") && message.contains("chmod 600"),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(mode(&path), 0o644, "permissions are not changed");
}

/// A file that is not a ledger, named by mistake (a token file: 0600, no final
/// newline), is refused and left whole: the torn-tail repair would have cut it.
#[tokio::test]
async fn a_file_that_is_no_ledger_is_refused_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    fs::write(&path, b"hvs.CAESIAbCdEfGh\nsecond-line-no-newline").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let err = JsonlLedger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"hvs.CAESIAbCdEfGh\nsecond-line-no-newline"
    );
}

/// A file whose first line is longer than a ledger line may be (16 MiB; a JSON
/// dump without newlines) is no ledger: refused and left whole, where the
/// torn-tail repair, finding no line start, would have cut it to nothing. A run of
/// zeros as long (a first write lost to a power cut) is still a ledger.
#[tokio::test]
async fn a_file_whose_first_line_is_over_16_mib_is_refused_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    let len = (16 << 20) + 1;
    fs::write(&path, vec![b'A'; len]).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let err = JsonlLedger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
    assert!(err.to_string().contains("longer than 16 MiB"), "{err}");
    assert_eq!(fs::metadata(&path).unwrap().len(), len as u64);

    let zeros = dir.path().join("calls.jsonl");
    fs::write(&zeros, vec![0u8; len]).unwrap();
    fs::set_permissions(&zeros, fs::Permissions::from_mode(0o600)).unwrap();
    write_receipts(&zeros, 1).await;
    assert_eq!(call_ids(&zeros).len(), 1);
}

/// A crash during a new ledger's very first write leaves one torn line: that is
/// still a ledger, cut and written on.
#[tokio::test]
async fn a_ledger_torn_in_its_first_write_is_cut_and_written_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    write_receipts(&path, 1).await;
    crate::support::cut_to(&path, 20);
    let ledger = JsonlLedger::open(&path).unwrap();
    ledger.try_record(&receipt(5)).unwrap();
    ledger.shutdown().await.unwrap();
    assert_eq!(call_ids(&path), ["c5"]);
}

/// A ledger whose first write was lost to a power cut holds NUL bytes where the
/// line was to be (its blocks allocated, never written): a torn line, cut, and
/// written on; not a file to refuse.
#[tokio::test]
async fn a_ledger_whose_first_write_was_lost_to_a_power_cut_is_cut_and_written_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fs::write(&path, vec![0u8; 4096]).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let ledger = JsonlLedger::open(&path).unwrap();
    ledger.try_record(&receipt(3)).unwrap();
    ledger.shutdown().await.unwrap();
    assert_eq!(call_ids(&path), ["c3"]);
}

/// A ledger path that is a symbolic link (planted, say, in a shared directory, to
/// a file of the user's) is refused, and nothing is written where it points.
#[tokio::test]
async fn a_ledger_path_that_is_a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("notes.txt");
    fs::write(&victim, b"mine\nlast line").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path().join("calls.jsonl");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = JsonlLedger::open(&link).unwrap_err();
    assert!(
        matches!(&err, LedgerError::Symlink { path } if path == &link),
        "{err:?}"
    );
    assert_eq!(fs::read(&victim).unwrap(), b"mine\nlast line");
    // A dangling link makes no file where it points either.
    let nowhere = dir.path().join("made-by-the-link");
    let dangling = dir.path().join("other.jsonl");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    let err = JsonlLedger::open(&dangling).unwrap_err();
    assert!(matches!(err, LedgerError::Symlink { .. }), "{err:?}");
    assert!(!nowhere.exists());
}

/// A ledger file of another user's (one they could read the receipts from) is
/// refused, as `JsonlLedger::open` meets it. Making one needs `chown`, so root
/// (as CI runs); the check itself is tested for any user by the unit test
/// `ledger::file::tests::a_file_another_user_owns_is_refused_naming_both_ids`.
#[tokio::test]
async fn a_ledger_owned_by_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fs::write(&path, b"").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    if std::os::unix::fs::chown(&path, Some(65534), None).is_err() {
        eprintln!("cannot give a file to another user here (the unit test checks it)");
        return;
    }
    let err = JsonlLedger::open(&path).unwrap_err();
    assert!(
        matches!(err, LedgerError::NotOwned { owner: 65534, .. }),
        "{err:?}"
    );
    // Root gives the file away: this process runs as user id 0.
    assert!(
        err.to_string()
            .contains("belongs to user id 65534, and this process runs as user id 0"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_directory_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/calls.jsonl");
    let err = JsonlLedger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir/calls.jsonl"), "{err}");
}

#[tokio::test]
async fn shutdown_writes_everything_recorded_then_refuses_more() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::builder(&path)
        .capacity(100_000)
        .open()
        .unwrap();
    let receipts: Vec<Cost> = (0..10_000).map(receipt).collect();
    for r in &receipts {
        ledger.record(r);
    }
    ledger.shutdown().await.unwrap();
    assert_eq!(read_all(&path).unwrap().records, receipts);

    // Refused: handed back by `try_record`, dropped (and counted) by `record`.
    assert_eq!(ledger.try_record(&receipt(1)), Err(Refused::Closed));
    assert_eq!(ledger.stats().refused_closed, 0);
    ledger.record(&receipt(2));
    let stats = ledger.stats();
    assert_eq!(stats.accepted, 10_000);
    assert_eq!(stats.written, 10_000);
    assert_eq!(stats.refused_closed, 1);
    // Through the trait, as a client would on shutdown: nothing left, no error.
    let sink: &dyn CostSink = &ledger;
    sink.shutdown().await.unwrap();
    sink.flush().await.unwrap();
}

#[tokio::test]
async fn flush_makes_every_record_before_it_readable_without_stopping_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    for i in 0..3 {
        ledger.try_record(&receipt(i)).unwrap();
    }
    ledger.flush().await.unwrap();
    assert_eq!(read_all(&path).unwrap().records.len(), 3);
    ledger.try_record(&receipt(3)).unwrap();
    ledger.sync().await.unwrap();
    assert_eq!(read_all(&path).unwrap().records.len(), 4);
}

#[tokio::test]
async fn dropping_the_last_handle_writes_everything_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    let copy = ledger.clone();
    for i in 0..500 {
        copy.try_record(&receipt(i)).unwrap();
    }
    drop(copy);
    drop(ledger);
    assert_eq!(read_all(&path).unwrap().records.len(), 500);
}

#[tokio::test]
async fn a_torn_last_line_is_skipped_with_a_warning_and_everything_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let receipts = write_receipts(&path, 5).await;
    // A crash in the middle of the fifth line's write.
    let len = fs::metadata(&path).unwrap().len();
    let last_line = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .len() as u64;
    let cut = len - last_line / 2;
    crate::support::cut_to(&path, cut);

    let read = read_all(&path).unwrap();
    assert_eq!(read.records, receipts[..4]);
    let torn = read.torn_tail.expect("the torn line is reported");
    // The last line (after the definitions and four receipts).
    let lines = fs::read(&path).unwrap().split(|&b| b == b'\n').count() as u64;
    assert_eq!(torn.line, lines);
    // It started right after the fourth line's newline, and ran to the cut.
    assert_eq!(torn.offset, len - last_line - 1);
    assert_eq!(torn.bytes, cut - torn.offset);
}

#[tokio::test]
async fn reopening_after_a_crash_cuts_the_torn_line_so_new_records_follow_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let receipts = write_receipts(&path, 3).await;
    let len = fs::metadata(&path).unwrap().len();
    crate::support::cut_to(&path, len - 30);

    let ledger = JsonlLedger::open(&path).unwrap();
    ledger.try_record(&receipt(99)).unwrap();
    ledger.shutdown().await.unwrap();
    let read = read_all(&path).unwrap();
    assert!(read.torn_tail.is_none());
    let ids: Vec<_> = read.records.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(ids, [&receipts[0].call_id, &receipts[1].call_id, "c99"]);
}

/// A power loss can leave zeros where the last writes were: reopening cuts
/// them, keeps a record before them whole (adding its newline) and cuts a torn
/// one, so that new records follow whole lines.
#[tokio::test]
async fn reopening_after_a_power_loss_cuts_the_zeros_and_keeps_the_records_before_them() {
    for (cut, expected) in [(1, vec!["c0", "c1", "c7"]), (30, vec!["c0", "c7"])] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        write_receipts(&path, 2).await;
        let len = fs::metadata(&path).unwrap().len();
        crate::support::cut_to(&path, len - cut);
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, &vec![0u8; 100_000]).unwrap();
        drop(file);
        let ledger = JsonlLedger::open(&path).unwrap();
        ledger.try_record(&receipt(7)).unwrap();
        ledger.shutdown().await.unwrap();
        let read = read_all(&path).unwrap();
        assert!(read.torn_tail.is_none(), "cut {cut}");
        assert_eq!(call_ids(&path), expected, "cut {cut}");
    }
}

#[tokio::test]
async fn reopening_completes_a_last_record_that_only_lost_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    write_receipts(&path, 2).await;
    let len = fs::metadata(&path).unwrap().len();
    crate::support::cut_to(&path, len - 1);
    let ledger = JsonlLedger::open(&path).unwrap();
    ledger.try_record(&receipt(7)).unwrap();
    ledger.shutdown().await.unwrap();
    assert_eq!(call_ids(&path), ["c0", "c1", "c7"]);
}

/// Two writers on one file would both number their definitions from 0, and one's
/// receipts would read back as the other's endpoint: the second is refused while
/// the first writes, and opens once it has shut down.
#[tokio::test]
async fn a_second_writer_of_one_file_is_refused_until_the_first_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let first = JsonlLedger::open(&path).unwrap();
    first.try_record(&receipt(1)).unwrap();
    let err = JsonlLedger::open(&path).unwrap_err();
    assert!(
        matches!(&err, LedgerError::Locked { path: p } if p == &path),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&*path.to_string_lossy()) && message.contains("another writer"),
        "{message}"
    );
    first.shutdown().await.unwrap();

    let second = JsonlLedger::open(&path).unwrap();
    second.try_record(&receipt(2)).unwrap();
    second.shutdown().await.unwrap();
    assert_eq!(call_ids(&path), ["c1", "c2"]);
}

/// A torn last line of 32 MiB (a crash part-way through a huge write, or junk
/// appended by something else) is found and cut off in one backward pass: the
/// file opens, and ends where the last whole line did.
#[tokio::test]
async fn reopening_cuts_a_torn_last_line_of_many_megabytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    write_receipts(&path, 2).await;
    let whole = fs::metadata(&path).unwrap().len();
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"v":2,"c":0,"id":""#).unwrap();
    file.write_all(&vec![b'x'; 32 << 20]).unwrap();
    drop(file);

    let ledger = JsonlLedger::open(&path).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        whole,
        "cut at the last newline"
    );
    ledger.try_record(&receipt(9)).unwrap();
    ledger.shutdown().await.unwrap();
    let read = read_all(&path).unwrap();
    assert!(read.torn_tail.is_none());
    let ids: Vec<_> = read.records.into_iter().map(|c| c.call_id).collect();
    assert_eq!(ids, ["c0", "c1", "c9"]);
}

#[tokio::test]
async fn damage_before_the_last_line_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    write_receipts(&path, 4).await;
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let broken = &lines[2][..lines[2].len() / 2];
    lines[2] = broken;
    fs::write(&path, lines.join("\n") + "\n").unwrap();

    let err = read_all(&path).unwrap_err();
    assert!(
        matches!(err, LedgerError::Corrupt { line: 3, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

/// A damaged line whose value the parser quotes (a long string where a number
/// belongs) is named with its line and what kind of value was found where what
/// was expected: the error never repeats what the line holds (a file given by
/// mistake may hold anything), nor does a file whose first line is no receipt.
#[tokio::test]
async fn a_damaged_lines_error_never_quotes_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    write_receipts(&path, 3).await;
    let text = fs::read_to_string(&path).unwrap();
    let long = format!("SECRET-{}", "x".repeat(3000));
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let receipt_line = lines.iter().position(|l| l.contains("\"lat\":")).unwrap();
    let at = lines[receipt_line].find("\"lat\":").unwrap() + 6;
    let end = at + lines[receipt_line][at..].find(',').unwrap();
    lines[receipt_line].replace_range(at..end, &format!("\"{long}\""));
    fs::write(&path, lines.join("\n") + "\n").unwrap();

    let err = read_all(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err:?}");
    for said in [
        err.to_string(),
        format!("{err:?}"),
        sagemeter::redact::error_chain(&err),
    ] {
        assert!(!said.contains("SECRET-"), "{said}");
        assert!(said.contains("invalid type: string, expected "), "{said}");
    }
    // A JSON Lines file that is no ledger: its first line a string.
    let other = dir.path().join("other.jsonl");
    fs::write(&other, "\"JSONSECRETMARKER\"\n").unwrap();
    let err = read_all(&other).unwrap_err();
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
    for said in [
        err.to_string(),
        format!("{err:?}"),
        sagemeter::redact::error_chain(&err),
    ] {
        assert!(!said.contains("JSONSECRETMARKER"), "{said}");
        assert!(
            said.contains("invalid type: string, expected ") && said.contains("line 1 column"),
            "{said}"
        );
    }
}

/// A ledger file cut to nothing by another program while it is written (logrotate's
/// `copytruncate`) goes on as a new file: the receipts written after the cut read
/// back, their definitions written again before them. Cut in the middle of a line,
/// it goes back to its last whole line first.
#[tokio::test]
async fn a_ledger_file_truncated_while_written_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    for id in 0..3 {
        ledger.try_record(&receipt(id)).unwrap();
    }
    ledger.flush().await.unwrap();
    assert_eq!(call_ids(&path), ["c0", "c1", "c2"]);
    // The rotation: copied away, then cut to nothing in place.
    crate::support::cut_to(&path, 0);
    for id in 3..5 {
        ledger.try_record(&receipt(id)).unwrap();
    }
    ledger.shutdown().await.unwrap();
    assert_eq!(call_ids(&path), ["c3", "c4"]);

    // Cut in the middle of its last line: back to the last whole line, and on.
    let ledger = JsonlLedger::open(&path).unwrap();
    ledger.try_record(&receipt(5)).unwrap();
    ledger.flush().await.unwrap();
    let len = fs::metadata(&path).unwrap().len();
    crate::support::cut_to(&path, len - 5);
    ledger.try_record(&receipt(6)).unwrap();
    ledger.shutdown().await.unwrap();
    assert_eq!(call_ids(&path), ["c3", "c4", "c6"]);
}

/// A FIFO named as a ledger (`mkfifo`, or a shell's `<(…)`) is no ledger file: every
/// reader says so at once instead of waiting for a writer that never comes.
#[cfg(unix)]
#[test]
fn a_fifo_is_not_a_ledger_file_and_no_reader_waits_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("calls.jsonl");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let options = sagemeter::report::ReportOptions::new(sagemeter::report::GroupBy::Endpoint);
        let report = sagemeter::report::report_files([&path], &options).map(|_| ());
        let _ = tx.send((read_all(&path).map(|_| ()), report));
    });
    let (read, report) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a reader waited on the FIFO");
    assert!(
        matches!(read, Err(LedgerError::NotAFile { .. })),
        "{read:?}"
    );
    assert!(
        matches!(
            report,
            Err(sagemeter::report::ReportError::Ledger(
                LedgerError::NotAFile { .. }
            ))
        ),
        "{report:?}"
    );
}

#[test]
fn an_unreadable_ledger_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.jsonl");
    let err = read_all(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
    let err = read_all(dir.path()).unwrap_err();
    assert!(matches!(err, LedgerError::NotAFile { .. }), "{err:?}");
    // `?` in a function returning sagemeter's Result keeps the ledger's error whole.
    fn total(path: &Path) -> sagemeter::Result<Decimal> {
        Ok(read_all(path)?.records.iter().map(|c| c.cost_usd).sum())
    }
    let err = total(&path).unwrap_err();
    assert!(
        matches!(err, sagemeter::Error::Ledger(LedgerError::Open { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
}

#[tokio::test]
async fn a_hand_written_receipt_without_envelope_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let mut f = fs::File::create(&path).unwrap();
    writeln!(f, "{}", serde_json::to_string(&receipt(1)).unwrap()).unwrap();
    drop(f);
    assert_eq!(read_all(&path).unwrap().records, vec![receipt(1)]);
}

#[tokio::test]
async fn periodic_sync_runs_alongside_the_writer_and_a_zero_interval_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let err = JsonlLedger::builder(&path)
        .sync_every(std::time::Duration::ZERO)
        .open()
        .unwrap_err();
    assert!(
        matches!(&err, LedgerError::InvalidOption(c) if c.option == "JsonlLedgerBuilder::sync_every"),
        "{err:?}"
    );
    let err = JsonlLedger::builder(&path).capacity(0).open().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid ledger option: ledger {}: the queue capacity must be at least 1",
            path.display()
        )
    );
    assert!(!path.exists(), "invalid options do not create the file");

    let ledger = JsonlLedger::builder(&path)
        .sync_every(std::time::Duration::from_millis(5))
        .open()
        .unwrap();
    for i in 0..3 {
        ledger.try_record(&receipt(i)).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(12)).await;
    }
    ledger.shutdown().await.unwrap();
    assert_eq!(read_all(&path).unwrap().records.len(), 3);
    assert_eq!(ledger.stats().written, 3);
}

#[tokio::test]
async fn a_call_tag_overrides_the_client_default_of_the_same_key() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = JsonlLedger::open(dir.path().join("tags.jsonl")).unwrap();
    let with_default = client(&fake, &ledger).await;
    let overridden = call(&with_default, "{}", Some(("team", "ads"))).await;
    assert_eq!(overridden.tags.len(), 1);
    assert_eq!(overridden.tags["team"], "ads");
    let added = call(&with_default, "{}", Some(("tenant", "acme"))).await;
    assert_eq!(added.tags.len(), 2);
    assert_eq!(
        (&*added.tags["team"], &*added.tags["tenant"]),
        ("search", "acme")
    );

    // Without defaults a receipt carries exactly the call's own tags.
    let plain = Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .price_override(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), dec("0.23"))
        .build()
        .unwrap();
    assert!(call(&plain, "{}", None).await.tags.is_empty());
    let tagged = call(&plain, "{}", Some(("tenant", "acme"))).await;
    assert_eq!(tagged.tags.len(), 1);
    assert_eq!(tagged.tags["tenant"], "acme");
}

/// A ledger the previous version wrote (format 1: every receipt whole, six calls
/// of the demo) still reads, and a new writer appends format 2 after it.
#[tokio::test]
async fn a_ledger_of_format_1_still_reads_and_takes_format_2_receipts_after_it() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-format-1.jsonl");
    let old = read_all(&fixture).unwrap();
    assert_eq!(old.records.len(), 6);
    assert!(old.torn_tail.is_none());
    // The six `cost_usd` members of the file, added by hand.
    let total: Decimal = old.records.iter().map(|c| c.cost_usd).sum();
    assert_eq!(total, "0.000006085793".parse().unwrap());
    assert_eq!(
        old.records[2].running_client_usd,
        "0.000004146347".parse().unwrap()
    );
    assert!(
        old.records
            .iter()
            .all(|c| c.is_fully_priced() && c.lines.len() == 3)
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fs::write(&path, fs::read(&fixture).unwrap()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let ledger = JsonlLedger::open(&path).unwrap();
    let mut new = old.records[0].clone();
    new.call_id = "after-the-upgrade".into();
    ledger.try_record(&new).unwrap();
    ledger.shutdown().await.unwrap();

    let read = read_all(&path).unwrap();
    assert_eq!(read.records[..6], old.records[..]);
    assert_eq!(read.records[6..], [new]);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.lines().take(6).all(|l| l.starts_with(r#"{"v":1,"#)));
    assert!(text.lines().skip(6).all(|l| l.starts_with(r#"{"v":2,"#)));
}

#[tokio::test]
async fn a_receipt_too_long_for_a_reader_is_lost_and_said_not_written_to_spoil_the_file() {
    // A reader takes lines of up to 16 MiB. A receipt whose tags make it longer
    // would be a corrupt line in the middle of the file, and every receipt after
    // it unreadable: it is not written, and its loss is counted and reported.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    let mut huge = receipt(1);
    huge.tags.insert("note".into(), "x".repeat(17 << 20));
    ledger.try_record(&receipt(0)).unwrap();
    ledger.try_record(&huge).unwrap();
    ledger.try_record(&receipt(2)).unwrap();
    let err = ledger.flush().await.unwrap_err();
    assert!(err.to_string().contains("over the 16 MiB"), "{err}");
    ledger.shutdown().await.ok();
    let stats = ledger.stats();
    assert_eq!((stats.written, stats.lost_on_error), (2, 1), "{stats:?}");
    assert_eq!(call_ids(&path), ["c0", "c2"]);
}
