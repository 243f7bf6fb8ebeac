//! `sagemeter ledger convert … --to parquet DIR` (feature `parquet`): JSON Lines
//! ledgers become Parquet files that read back as the same receipts.

use assert_cmd::Command;
use assert_cmd::cargo::cargo_bin_cmd;
use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use predicates::prelude::*;
use sagemeter::Cost;
use sagemeter::ledger::JsonlLedger;
use std::io::Write;
use std::path::Path;

fn sagemeter() -> Command {
    cargo_bin_cmd!("sagemeter")
}

fn receipt(id: u32, at: &str) -> Cost {
    serde_json::from_value(serde_json::json!({
        "call_id": format!("c{id}"), "at": at, "endpoint": "rt", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 1},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1000 + id, "bytes_in": 10,
                  "bytes_out": 20, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [{"item": "compute", "quantity": "0.0000002777777777777777777778",
                   "unit": "instance_hours", "price": {"status": "priced", "usd_per_unit": "0.23",
                   "cost_usd": "0.000000063889", "provenance": {"source": "snapshot",
                   "sku": null, "effective_date": "2026-11-01", "fetched_at": null, "note": null}}}],
        "cost_usd": "0.000000063889", "currency": "USD",
        "running_client_usd": format!("0.{id:012}"), "running_endpoint_usd": "0.5",
        "accrual": null, "tags": {"team": "search"}
    }))
    .unwrap()
}

async fn write_jsonl(path: &Path, costs: &[Cost]) {
    let ledger = JsonlLedger::open(path).unwrap();
    for c in costs {
        ledger.try_record(c).unwrap();
    }
    ledger.shutdown().await.unwrap();
}

fn as_json(costs: &[Cost]) -> Vec<serde_json::Value> {
    costs
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect()
}

#[tokio::test]
async fn convert_writes_one_parquet_file_per_ledger_file_and_reports_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("calls.jsonl");
    let costs: Vec<Cost> = (1..=3)
        .map(|i| receipt(i, "2026-12-02T10:00:00.5Z"))
        .collect();
    write_jsonl(&single, &costs).await;
    // What a crash in the middle of a write leaves.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&single)
        .unwrap();
    file.write_all(br#"{"v":1,"call_id":"c4","at":"2026-12"#)
        .unwrap();
    drop(file);
    // And a rolling ledger's directory of two files.
    let rolling = dir.path().join("rolling");
    let at: chrono::DateTime<chrono::Utc> = "2026-12-02T11:00:00Z".parse().unwrap();
    let clock = ManualTimeSource::new(std::time::SystemTime::from(at));
    let ledger = JsonlLedger::rolling(&rolling)
        .max_bytes(1) // a file per receipt
        .time_source(SharedTimeSource::new(clock))
        .open()
        .unwrap();
    ledger
        .try_record(&receipt(5, "2026-12-02T11:00:00Z"))
        .unwrap();
    ledger
        .try_record(&receipt(6, "2026-12-02T11:00:01Z"))
        .unwrap();
    ledger.shutdown().await.unwrap();
    let rolled = sagemeter::ledger::ledger_files(&rolling).unwrap();
    assert_eq!(rolled.len(), 2);
    let out = dir.path().join("out");

    let assert = sagemeter()
        .arg("ledger")
        .arg("convert")
        .arg(&single)
        .arg(&rolling)
        .args(["--to", "parquet"])
        .arg(&out)
        .assert()
        .success();

    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[0].contains("calls.parquet: 3 records, "), "{stdout}");
    // The torn line is the file's last (after the definitions and three receipts).
    let torn_line = std::fs::read_to_string(&single).unwrap().lines().count();
    assert!(
        lines[1].contains("skipped a torn last line")
            && lines[1].contains(&format!("(line {torn_line}, 35 bytes")),
        "{stdout}"
    );
    assert!(lines[2].contains(": 1 records, "), "{stdout}");
    assert!(lines[3].contains(": 1 records, "), "{stdout}");
    assert!(
        lines[4].starts_with("converted 3 files: 5 records, "),
        "{stdout}"
    );

    let converted = sagemeter::ledger::parquet::read_all(out.join("calls.parquet")).unwrap();
    assert_eq!(as_json(&converted), as_json(&costs));
    assert_eq!(converted, costs);
    // The rolling ledger's files keep their names, and read back in order.
    let files = sagemeter::ledger::parquet::parquet_files(&out).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // Oldest first: the hour's first file, then .1, then the other names.
    assert_eq!(
        names,
        [
            "sagemeter-2026-12-02T11.parquet",
            "sagemeter-2026-12-02T11.1.parquet",
            "calls.parquet"
        ]
    );
    let rolled_back: Vec<Cost> = files[..2]
        .iter()
        .flat_map(|f| sagemeter::ledger::parquet::read_all(f).unwrap())
        .collect();
    assert_eq!(
        rolled_back,
        [
            receipt(5, "2026-12-02T11:00:00Z"),
            receipt(6, "2026-12-02T11:00:01Z")
        ]
    );
}

/// A price change record (written by the ledger when a refresh finds a new
/// rate) is no receipt: the Parquet file leaves it out, and convert says so,
/// so that nobody deletes the JSON Lines file thinking it is all in Parquet.
#[tokio::test]
async fn convert_says_the_price_change_records_it_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    write_jsonl(&path, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    for _ in 0..2 {
        file.write_all(
            br#"{"v":2,"price_change":{"at":"2026-12-02T10:00:01Z","unit":"hour","old_usd_per_unit":"0.24","new_usd_per_unit":"0.23"}}
"#,
        )
        .unwrap();
    }
    drop(file);
    let out = dir.path().join("out");
    let assert = sagemeter()
        .args(["ledger", "convert"])
        .arg(&path)
        .args(["--to", "parquet"])
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("calls.parquet: 1 records, "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "  2 price change record(s) of {} are not in the Parquet file (it holds \
             receipts): keep the JSON Lines file for them",
            path.display()
        )),
        "{stdout}"
    );
}

#[tokio::test]
async fn convert_refuses_to_overwrite_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    write_jsonl(&a, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    write_jsonl(&b, &[receipt(2, "2026-12-02T10:00:00Z")]).await;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("b.parquet"), b"someone else's").unwrap();

    sagemeter()
        .arg("ledger")
        .arg("convert")
        .arg(&a)
        .arg(&b)
        .args(["--to", "parquet"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("b.parquet exists"));

    assert!(!out.join("a.parquet").exists(), "nothing is written");
    assert_eq!(
        std::fs::read(out.join("b.parquet")).unwrap(),
        b"someone else's"
    );

    // An output that is a file, not a directory: named, and left as it was.
    sagemeter()
        .arg("ledger")
        .arg("convert")
        .arg(&a)
        .args(["--to", "parquet"])
        .arg(&b)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{} is not a directory: the output of `ledger convert` is a directory",
            b.display()
        )));
}

#[test]
fn convert_needs_parquet_and_a_directory() {
    sagemeter()
        .args(["ledger", "convert", "calls.jsonl", "out"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--to <FORMAT> <DIR>"));
    sagemeter()
        .args(["ledger", "convert", "calls.jsonl", "--to", "csv", "out"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the only format is `parquet`"));
}

/// A ledger whose amounts overflow a sum (hand-edited or corrupt) fails `report`
/// with an error naming the file and line (exit 1), never a panic (exit 101).
#[test]
fn report_of_amounts_that_overflow_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.jsonl");
    let mut text = String::new();
    for id in [1, 2] {
        let mut cost = receipt(id, "2026-12-02T10:00:00Z");
        // Decimal::MAX = 79228162514264337593543950335: twice does not fit.
        cost.cost_usd = rust_decimal::Decimal::MAX;
        text.push_str(&serde_json::to_string(&cost).unwrap());
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    sagemeter()
        .arg("report")
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "ledger {}, line 2: the cost of group `rt` overflows",
            path.display()
        )));
}

/// `report` of a ledger together with its own Parquet conversion is refused (it
/// would count every receipt twice); either one alone counts each receipt once.
#[tokio::test]
async fn report_of_a_ledger_and_its_conversion_is_refused_not_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("calls.jsonl");
    let costs: Vec<Cost> = (1..=3)
        .map(|i| receipt(i, "2026-12-02T10:00:00Z"))
        .collect();
    write_jsonl(&jsonl, &costs).await;
    sagemeter()
        .args(["ledger", "convert"])
        .arg(&jsonl)
        .args(["--to", "parquet"])
        .arg(dir.path())
        .assert()
        .success();
    let parquet = dir.path().join("calls.parquet");
    assert!(parquet.exists());

    let refusal = format!(
        "{} and {} begin with the same receipt (c1)",
        jsonl.display(),
        parquet.display()
    );
    for args in [vec![dir.path()], vec![jsonl.as_path(), parquet.as_path()]] {
        sagemeter()
            .arg("report")
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(&refusal))
            .stderr(predicate::str::contains("give one of them"));
    }
    // Alone, 3 calls: the total line starts `total  3  `.
    for alone in [&jsonl, &parquet] {
        let out = sagemeter().arg("report").arg(alone).assert().success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        let total = stdout.lines().find(|l| l.starts_with("total")).unwrap();
        assert_eq!(total.split_whitespace().nth(1), Some("3"), "{stdout}");
    }
}

/// A ledger's names reach the terminal escaped: an endpoint with an escape sequence
/// and a line break in the report's table, a call id with one in an error.
#[tokio::test]
async fn names_from_a_ledger_reach_the_terminal_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut cost = receipt(1, "2026-12-02T10:00:00Z");
    cost.endpoint = "e\u{1b}]0;PWNED\u{7}\nforged".into();
    cost.call_id = "c\u{1b}[2J".into();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    write_jsonl(&a, std::slice::from_ref(&cost)).await;
    std::fs::copy(&a, &b).unwrap();
    let out = sagemeter().arg("report").arg(&a).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        !stdout.chars().any(|c| c.is_control() && c != '\n'),
        "{stdout:?}"
    );
    assert!(stdout.contains(r"e\u{1b}]0;PWNED\u{7}\nforged"), "{stdout}");
    // The same receipts twice: the refusal quotes the call id, escaped.
    let out = sagemeter().arg("report").arg(&a).arg(&b).assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains(r"begin with the same receipt (c\u{1b}[2J)"),
        "{stderr}"
    );
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "{stderr:?}"
    );
}

/// `report` of a directory and a file in it (or of one file twice) reads the file
/// once, and says so on stderr.
#[tokio::test]
async fn report_of_a_file_named_twice_counts_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("calls.jsonl");
    let costs: Vec<Cost> = (1..=3)
        .map(|i| receipt(i, "2026-12-02T10:00:00Z"))
        .collect();
    write_jsonl(&jsonl, &costs).await;
    let again = dir.path().join(".").join("calls.jsonl");
    for args in [vec![dir.path(), jsonl.as_path()], vec![&jsonl, &again]] {
        let out = sagemeter().arg("report").args(&args).assert().success();
        let output = out.get_output();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let total = stdout.lines().find(|l| l.starts_with("total")).unwrap();
        assert_eq!(total.split_whitespace().nth(1), Some("3"), "{stdout}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("more than once"), "{stderr}");
    }
}

/// `report --chart` over a range with no calls prints the report, then fails on
/// the chart it cannot draw (exit 1), instead of printing nothing.
#[tokio::test]
async fn a_chart_that_cannot_be_drawn_still_leaves_the_report_printed() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("calls.jsonl");
    write_jsonl(&ledger, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    let chart = dir.path().join("cost.svg");
    let output = sagemeter()
        .arg("report")
        .arg(&ledger)
        .args(["--since", "2027-01-01", "--chart"])
        .arg(&chart)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let table = {
        let mut all = sagemeter();
        let out = all
            .arg("report")
            .arg(&ledger)
            .args(["--since", "2027-01-01"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(stdout, table, "the same report as without --chart");
    assert!(stderr.contains("nothing to chart"), "{stderr}");
    assert!(!chart.exists());
}

/// `invoke --ledger` on a ledger another writer holds (another `invoke`, a
/// service) fails before sending anything (exit 1), saying which ledger and why,
/// and writes nothing to it.
#[tokio::test]
async fn invoke_refuses_a_ledger_another_writer_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let held = JsonlLedger::open(&path).unwrap();
    held.try_record(&receipt(1, "2026-12-02T10:00:00Z"))
        .unwrap();
    let url = super::clean_env::refused_url();
    let mut cmd = super::clean_env::sagemeter(&url, &url);
    cmd.args(["invoke", "rt", "--body", "{}", "--ledger"])
        .arg(&path);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "ledger {} is being written by another writer",
            path.display()
        )),
        "{stderr}"
    );
    held.shutdown().await.unwrap();
    let ids: Vec<String> = sagemeter::ledger::read_all(&path)
        .unwrap()
        .records
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(ids, ["c1"]);
}

/// `convert` is all or nothing: a good file then one damaged in the middle fails
/// (exit 1) and leaves no output at all (not even the good file's, nor a hidden
/// one), so that once the damage is repaired the same command runs again.
#[tokio::test]
async fn convert_with_a_damaged_input_leaves_no_output_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    let bad = dir.path().join("bad.jsonl");
    write_jsonl(&good, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    let costs: Vec<Cost> = (2..=4)
        .map(|i| receipt(i, "2026-12-02T10:00:00Z"))
        .collect();
    write_jsonl(&bad, &costs).await;
    let whole = std::fs::read_to_string(&bad).unwrap();
    let mut lines: Vec<&str> = whole.lines().collect();
    let receipt_line = lines.len() - 2; // the second of three receipts
    let cut = &lines[receipt_line][..20];
    lines[receipt_line] = cut;
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let convert = || {
        let mut cmd = sagemeter();
        cmd.args(["ledger", "convert"])
            .arg(&good)
            .arg(&bad)
            .args(["--to", "parquet"])
            .arg(&out);
        cmd
    };

    convert()
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "ledger {}, line {}",
            bad.display(),
            receipt_line + 1
        )));
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    std::fs::write(&bad, &whole).unwrap();
    convert().assert().success();
    let read = |name: &str| sagemeter::ledger::parquet::read_all(out.join(name)).unwrap();
    assert_eq!(read("good.parquet"), [receipt(1, "2026-12-02T10:00:00Z")]);
    assert_eq!(read("bad.parquet"), costs);
}

/// A staging file left by a `convert` killed part-way is removed by the next run
/// into the same directory (with a WARN); one of a run still going is left.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn convert_removes_the_staging_files_of_runs_that_did_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("calls.jsonl");
    write_jsonl(&ledger, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Above Linux's largest pid (4,194,304): no such process. Pid 1 always runs.
    let abandoned = out.join(".calls.parquet.4194999.converting.tmp");
    let running = out.join(".other.parquet.1.converting");
    // Unwritten for an hour, as a killed run's file is (a fresh one may be a run's
    // on another host).
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for file in [&abandoned, &running] {
        std::fs::write(file, b"partial").unwrap();
        std::fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }
    sagemeter()
        .args(["ledger", "convert"])
        .arg(&ledger)
        .args(["--to", "parquet"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "removed the staging file of a `ledger convert` that did not finish",
        ));
    assert!(!abandoned.exists());
    assert!(running.exists());
    assert!(out.join("calls.parquet").exists());
}

/// A directory's file of the current UTC hour may still be appended to by its
/// rolling ledger: `convert` converts it as it is and warns on stderr, naming it.
#[tokio::test]
async fn convert_warns_about_a_file_of_the_current_hour() {
    let dir = tempfile::tempdir().unwrap();
    let rolling = dir.path().join("receipts");
    std::fs::create_dir(&rolling).unwrap();
    // This hour's name and the next's: whichever is current when the command
    // runs (an hour may turn in between).
    let now = chrono::Utc::now();
    let names: Vec<String> = [now, now + chrono::Duration::hours(1)]
        .iter()
        .map(|t| t.format("sagemeter-%Y-%m-%dT%H.jsonl").to_string())
        .collect();
    for (i, name) in names.iter().enumerate() {
        write_jsonl(
            &rolling.join(name),
            &[receipt(i as u32, "2026-12-02T10:00:00Z")],
        )
        .await;
    }
    let output = sagemeter()
        .args(["ledger", "convert"])
        .arg(&rolling)
        .args(["--to", "parquet"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warned = names.iter().any(|name| {
        stderr.contains(&format!(
            "warning: {} is a file of the current hour or day",
            rolling.join(name).display()
        ))
    });
    assert!(warned, "{stderr}");
}

/// A file a running ledger still writes (it holds the file's lock) is converted
/// as it is, with a warning naming it: what it writes later is not in the Parquet.
#[tokio::test]
async fn convert_warns_about_a_file_a_running_ledger_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    ledger
        .try_record(&receipt(1, "2026-12-02T10:00:00Z"))
        .unwrap();
    ledger.flush().await.unwrap();
    let output = sagemeter()
        .args(["ledger", "convert"])
        .arg(&path)
        .args(["--to", "parquet"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    ledger.shutdown().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: {} is being written by a running ledger",
            path.display()
        )),
        "{stderr}"
    );
}

/// A FIFO given to convert (a shell's `<(…)`) is refused at once as no ledger
/// file, never waited on for a writer (by the check for a running ledger either).
#[cfg(unix)]
#[test]
fn convert_refuses_a_fifo_at_once() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("calls.jsonl");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path and a mode.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let output = sagemeter()
        .args(["ledger", "convert"])
        .arg(&fifo)
        .args(["--to", "parquet"])
        .arg(dir.path().join("out"))
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    assert_ne!(
        output.status.code(),
        None,
        "not killed by the timeout: {output:?}"
    );
}

/// `report … --chart F | head -0`: the reader left before the report was printed;
/// the chart is drawn all the same, and the run is still a success (exit 0).
#[cfg(all(unix, feature = "charts"))]
#[tokio::test]
async fn a_reader_that_leaves_does_not_take_the_chart_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("calls.jsonl");
    write_jsonl(&ledger, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    for (chart, json) in [("cost.svg", false), ("cost.png", true)] {
        let chart = dir.path().join(chart);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sagemeter"));
        cmd.arg("report").arg(&ledger).arg("--chart").arg(&chart);
        if json {
            cmd.arg("--json");
        }
        let output = cmd
            .stdout(super::clean_env::closed_pipe())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(chart.exists(), "{} drawn", chart.display());
    }
}

/// `report --chart`: a `.png` is a PNG picture, an `.svg` an SVG document; any
/// other name is an invalid argument (exit 2), refused before any ledger is read
/// (here: one that does not exist), and nothing is written.
#[tokio::test]
async fn a_report_chart_is_an_svg_or_a_png_by_its_name_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("calls.jsonl");
    write_jsonl(&ledger, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    if cfg!(feature = "charts") {
        for (name, magic) in [("cost.png", &b"\x89PNG"[..]), ("cost.SVG", &b"<svg"[..])] {
            let chart = dir.path().join(name);
            sagemeter()
                .arg("report")
                .arg(&ledger)
                .arg("--chart")
                .arg(&chart)
                .assert()
                .success()
                .stdout(predicate::str::contains(format!(
                    "chart: {}",
                    chart.display()
                )));
            assert!(std::fs::read(&chart).unwrap().starts_with(magic), "{name}");
        }
    }
    let missing = dir.path().join("no-such-ledger.jsonl");
    for name in ["cost.gif", "cost"] {
        let chart = dir.path().join(name);
        sagemeter()
            .arg("report")
            .arg(&missing)
            .arg("--chart")
            .arg(&chart)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("name the file .svg or .png"));
        assert!(!chart.exists());
    }
}

/// `report --since` not before `--until` is an invalid argument (exit 2).
#[tokio::test]
async fn a_report_range_that_is_empty_is_an_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("calls.jsonl");
    write_jsonl(&ledger, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    sagemeter()
        .arg("report")
        .arg(&ledger)
        .args(["--since", "2026-12-02", "--until", "2026-12-01"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the range is empty"));
}

/// An empty range is refused before any ledger is read: with a ledger that does
/// not exist (a typo), it is still the invalid argument (exit 2), not the
/// missing file (exit 1), which the next run would meet once the range is fixed.
#[tokio::test]
async fn a_report_range_that_is_empty_is_refused_before_any_ledger_is_read() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["missing.jsonl", "missing.parquet"] {
        sagemeter()
            .arg("report")
            .arg(dir.path().join(name))
            .args(["--since", "2026-12-02", "--until", "2026-12-01"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("the range is empty"))
            .stderr(predicate::str::contains("cannot open").not());
    }
}

/// `ledger convert`'s warning about the current day's file goes to a stderr whose
/// reader has left: the warning is lost, the conversion is not (no panic, exit 0).
#[cfg(unix)]
#[tokio::test]
async fn a_warning_to_a_closed_stderr_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let rolled = dir.path().join("receipts");
    std::fs::create_dir(&rolled).unwrap();
    // The current day's first file: it may still be written to, so convert warns.
    let today = chrono::Utc::now().format("sagemeter-%Y-%m-%dT00.jsonl");
    write_jsonl(
        &rolled.join(today.to_string()),
        &[receipt(1, "2026-12-02T10:00:00Z")],
    )
    .await;
    let out = dir.path().join("parquet");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sagemeter"))
        .args(["ledger", "convert"])
        .arg(&rolled)
        .arg("--to")
        .args(["parquet"])
        .arg(&out)
        .stderr(super::clean_env::closed_pipe())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "converted");
}

/// `report` of a Parquet file that does not exist (a typo, alone or next to a
/// ledger that does) fails naming it (exit 1), as for a JSON Lines file: not a
/// report of the others, nor an empty one, that exits 0.
#[tokio::test]
async fn a_report_of_a_missing_parquet_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let jan = dir.path().join("jan.jsonl");
    write_jsonl(&jan, &[receipt(1, "2026-12-02T10:00:00Z")]).await;
    let missing = dir.path().join("fab.parquet");
    for args in [
        vec![missing.as_path()],
        vec![jan.as_path(), missing.as_path()],
    ] {
        sagemeter()
            .arg("report")
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("cannot open"))
            .stderr(predicate::str::contains("fab.parquet"));
    }
}
