//! The Parquet ledger (feature `parquet`): files written by `ParquetLedger` or by
//! `convert` read back equal, field by field and digit by digit, to what the JSONL
//! ledger reads back; files roll by hour and by rows, appear only when complete,
//! and are owner-only.

use aws_smithy_async::test_util::ManualTimeSource;
use aws_smithy_async::time::SharedTimeSource;
use sagemeter::Cost;
use sagemeter::ledger::parquet::{
    ParquetFileWriter, ParquetLedger, ParquetReader, convert, in_progress, parquet_files, read_all,
};
use sagemeter::ledger::{JsonlLedger, LedgerError, Refused, RollEvery};
use sagemeter::sink::CostSink;
use serde_json::json;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

fn cost(value: serde_json::Value) -> Cost {
    serde_json::from_value(value).unwrap()
}

fn provenance(source: &str) -> serde_json::Value {
    json!({"source": source, "sku": "SKU\"1", "effective_date": "2026-05-20",
           "fetched_at": "2026-11-29T09:22:12.123456789Z", "note": "fallback:\n\tcache"})
}

/// Receipts that between them set every field of a receipt, and leave every
/// optional one empty: both billing kinds and none, priced and unpriced lines,
/// every provenance field set and null, tokens, time to first byte, parts,
/// attempts ≠ 1, accrual with and without storage and none, region and none, the
/// fleet's running total, tags and notes; amounts of several scales.
fn every_field() -> Vec<Cost> {
    vec![
        cost(json!({
            "call_id": "req-\"1\"\\", "at": "2026-12-02T10:22:12.758756612Z",
            "endpoint": "llm", "variant": "AllTraffic",
            "inference_component": "llama-\"8b\"", "target_model": "m/1.tar.gz",
            "billing": {"kind": "serverless", "memory_mb": 2048, "provisioned_concurrency": 3},
            "allocation": "amortized",
            "usage": {"operation": "InvokeEndpointWithResponseStream", "latency_us": 4835,
                      "time_to_first_byte_us": 12, "bytes_in": 15, "bytes_out": 112, "parts": 4,
                      "variant": "AllTraffic", "input_tokens": 12, "output_tokens": 30,
                      "outcome": "cancelled", "attempts": 3},
            "lines": [
                {"item": "compute", "quantity": "0.0000013430555555555555555556",
                 "unit": "seconds", "price": {"status": "priced", "usd_per_unit": "0.0000200000",
                 "cost_usd": "0.000000308903", "provenance": provenance("live")}},
                {"item": "data_out", "quantity": "0.5", "unit": "gigabytes",
                 "price": {"status": "unpriced", "reason": "no \"rate\"\n東京 🙂"}},
                {"item": "inference", "quantity": "1", "unit": "calls",
                 "price": {"status": "priced", "usd_per_unit": "0.0001", "cost_usd": "0.0001",
                 "provenance": {"source": "override", "sku": null, "effective_date": null,
                                "fetched_at": null, "note": null}}},
                {"item": "input_tokens", "quantity": "12", "unit": "tokens",
                 "price": {"status": "priced", "usd_per_unit": "0", "cost_usd": "0",
                 "provenance": provenance("cache")}},
                {"item": "output_tokens", "quantity": "79228162514264337593543950335",
                 "unit": "tokens", "price": {"status": "priced", "usd_per_unit": "-0.23",
                 "cost_usd": "120.00", "provenance": provenance("snapshot")}},
                {"item": "data_in", "quantity": "0", "unit": "instance_hours",
                 "price": {"status": "unpriced", "reason": ""}}
            ],
            "cost_usd": "120.000100308903", "currency": "USD", "region": "eu-west-1",
            "running_client_usd": "1234567.5", "running_endpoint_usd": "120.000100308903",
            "running_fleet_usd": "99999999999999.000000000001",
            "accrual": {"accrued_usd": "0.000000313503", "allocated_usd": "0.000000308903",
                        "utilisation": "0.985327", "storage_usd": "0.000001",
                        "unreserved_usd": "0.0000001",
                        "standing_parts": [
                            {"billing": {"kind": "instance", "instance_type": "ml.g5.xlarge",
                                         "instance_count": 2}, "usd_per_hour": "2.816"},
                            {"billing": {"kind": "serverless", "memory_mb": 2048,
                                         "provisioned_concurrency": 3}, "usd_per_hour": "0.9"}
                        ],
                        "priced_from": [
                            {"charge": "capacity", "price_source": "snapshot",
                             "note": "primary \"failed\"\n東京"},
                            {"charge": "capacity", "price_source": "live"},
                            {"charge": "storage", "price_source": "cache",
                             "note": "refresh failed (HTTP 500); kept the last good price"}
                        ]},
            "tags": {"team": "search\\ranking", "\u{1f}odd key": "🙂", "": ""},
            "notes": ["a note with a \"quote\"", ""]
        })),
        cost(json!({
            "call_id": "local-0", "at": "2026-12-02T10:22:13Z", "endpoint": "rt",
            "variant": null, "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge",
            "instance_count": 4}, "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpointAsync", "latency_us": 0, "bytes_in": 0,
                      "bytes_out": 0, "variant": null, "outcome": "error"},
            "lines": [], "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0",
            "accrual": {"accrued_usd": "0", "allocated_usd": "0", "utilisation": null,
                        "accrued_to": "2026-12-02T18:00:00.123456789Z"}
        })),
        cost(json!({
            "call_id": "", "at": "1970-01-01T00:00:00.001Z", "endpoint": "", "variant": null,
            "billing": {"kind": "serverless", "memory_mb": 1024, "provisioned_concurrency": null},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1, "bytes_in": 1,
                      "bytes_out": 1, "variant": null, "outcome": "ok"},
            "lines": [], "cost_usd": "-0.000000000001", "currency": "USD",
            "running_client_usd": "0.000000000000", "running_endpoint_usd": "0", "accrual": null
        })),
        cost(json!({
            "call_id": "x", "at": "2262-04-11T23:47:16.854775807Z", "endpoint": "e",
            "variant": "B", "billing": null, "allocation": "busy_time",
            "usage": {"operation": "invoke_endpoint", "latency_us": 9_000_000_000_000_000_000u64,
                      "bytes_in": 9_000_000_000_000_000_000u64, "bytes_out": 1,
                      "variant": "B", "outcome": "ok", "attempts": 0},
            "lines": [{"item": "compute", "quantity": "3600", "unit": "instance_hours",
                       "price": {"status": "priced", "usd_per_unit": "1.2100",
                       "cost_usd": "4356.000000000000", "provenance": provenance("live")}}],
            "cost_usd": "4356.000000000000", "currency": "EUR", "region": "ap-northeast-1",
            "running_client_usd": "4356", "running_endpoint_usd": "4356", "accrual": null
        })),
    ]
}

/// A receipt like the ones a metered instance endpoint makes: one priced compute
/// line, accrual, one tag; `i` varies the id, time, latency and amounts.
fn typical(i: u64) -> Cost {
    let latency_us = 20_000 + (i * 7919) % 180_000;
    // ml.m5.xlarge at 0.23 USD/h: latency / 3.6e9 h × 0.23, rounded to 12 places.
    let hours =
        rust_decimal::Decimal::from(latency_us) / rust_decimal::Decimal::from(3_600_000_000u64);
    let cost_usd = (hours * rust_decimal::Decimal::new(23, 2)).round_dp(12);
    cost(json!({
        "call_id": format!("{:08x}-1b2c-4d5e-8f90-{:012x}", i * 2_654_435_761 % (1 << 32), i),
        "at": format!("2026-12-02T10:{:02}:{:02}.{:09}Z", (i / 60) % 60, i % 60, (i * 7_777_777) % 1_000_000_000),
        "endpoint": "demo-realtime", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.m5.xlarge", "instance_count": 2},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": latency_us, "bytes_in": 180 + i % 40,
                  "bytes_out": 950 + i % 300, "variant": "AllTraffic",
                  "input_tokens": 40 + i % 20, "output_tokens": 200 + i % 90, "outcome": "ok"},
        "lines": [{"item": "compute", "quantity": hours.to_string(), "unit": "instance_hours",
                   "price": {"status": "priced", "usd_per_unit": "0.23", "cost_usd": cost_usd.to_string(),
                   "provenance": {"source": "cache", "sku": "8KTQDT8XJYZ5MAS2",
                                  "effective_date": "2026-11-01T00:00:00Z",
                                  "fetched_at": "2026-12-02T09:00:00Z", "note": null}}}],
        "cost_usd": cost_usd.to_string(), "currency": "USD", "region": "us-east-1",
        "running_client_usd": (cost_usd * rust_decimal::Decimal::from(i + 1)).to_string(),
        "running_endpoint_usd": (cost_usd * rust_decimal::Decimal::from(i + 1)).to_string(),
        "accrual": {"accrued_usd": "0.191666666667", "allocated_usd": "0.095833333333",
                    "utilisation": "0.5",
                    "priced_from": [{"charge": "capacity", "price_source": "cache"}]},
        "tags": {"team": "search"}
    }))
}

/// A clock at 2026-12-02T10:30:00Z.
fn clock() -> (ManualTimeSource, SharedTimeSource) {
    let at: chrono::DateTime<chrono::Utc> = "2026-12-02T10:30:00Z".parse().unwrap();
    let time = ManualTimeSource::new(SystemTime::from(at));
    let shared = SharedTimeSource::new(time.clone());
    (time, shared)
}

/// The files in `dir`, finished or in progress, but for the writer's lock file.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".sagemeter-parquet.lock")
        .collect();
    names.sort();
    names
}

/// A ledger directory that does not exist yet (so that it is made 0700), with
/// `path()` as a `TempDir` has.
struct Receipts(PathBuf);

impl Receipts {
    fn path(&self) -> &Path {
        &self.0
    }
}

/// A `receipts` directory, not made yet, in a new temporary one (kept while
/// the first is), and the tests' clock at 10:30.
fn in_receipts_dir() -> (tempfile::TempDir, Receipts, SharedTimeSource) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Receipts(tmp.path().join("receipts"));
    let (_time, clock) = clock();
    (tmp, dir, clock)
}

/// A rolling Parquet ledger in `dir` on `clock`, every other option the
/// default.
fn rolling_in(dir: &Path, clock: SharedTimeSource) -> ParquetLedger {
    ParquetLedger::rolling(dir)
        .time_source(clock)
        .open()
        .unwrap()
}

/// [`typical`] receipt 1 at $0.0000000000001, 13 decimal places.
fn inexact() -> Cost {
    let mut inexact = typical(1);
    inexact.cost_usd = "0.0000000000001".parse().unwrap();
    inexact
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Writes `costs` to a JSONL ledger file and returns what it reads back.
async fn through_jsonl(dir: &Path, costs: &[Cost]) -> (PathBuf, Vec<Cost>) {
    let path = dir.join("calls.jsonl");
    let ledger = JsonlLedger::open(&path).unwrap();
    for c in costs {
        ledger.try_record(c).unwrap();
    }
    ledger.shutdown().await.unwrap();
    let read = sagemeter::ledger::read_all(&path).unwrap();
    assert!(read.torn_tail.is_none());
    (path, read.records)
}

/// Every receipt of every Parquet file in `dir`, files oldest first.
fn read_dir(dir: &Path) -> Vec<Cost> {
    parquet_files(dir)
        .unwrap()
        .iter()
        .flat_map(|f| read_all(f).unwrap())
        .collect()
}

/// Equal as receipts, and as JSON (so every decimal has the same digits and scale).
fn assert_same(parquet: &[Cost], jsonl: &[Cost]) {
    assert_eq!(parquet.len(), jsonl.len());
    for (p, j) in parquet.iter().zip(jsonl) {
        assert_eq!(p, j);
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            serde_json::to_value(j).unwrap(),
            "{}",
            j.call_id
        );
    }
}

#[tokio::test]
async fn a_parquet_ledger_reads_back_every_field_as_the_jsonl_ledger_does() {
    let dir = tempfile::tempdir().unwrap();
    let costs = every_field();
    let (_, jsonl) = through_jsonl(dir.path(), &costs).await;
    // The JSONL ledger itself gives back the receipts as built, to the digit.
    assert_same(&jsonl, &costs);

    let (_time, clock) = clock();
    let pq = dir.path().join("pq");
    let ledger = ParquetLedger::rolling(&pq)
        .time_source(clock)
        .open()
        .unwrap();
    for c in &costs {
        ledger.record(c);
    }
    ledger.shutdown().await.unwrap();

    assert_eq!(names(&pq), ["sagemeter-2026-12-02T10.parquet"]);
    let parquet = read_all(pq.join("sagemeter-2026-12-02T10.parquet")).unwrap();
    assert_same(&parquet, &jsonl);
    let stats = ledger.stats();
    assert_eq!(
        (stats.accepted, stats.written, stats.lost_on_error),
        (4, 4, 0)
    );
}

#[tokio::test]
async fn convert_writes_a_parquet_file_that_reads_back_as_the_jsonl_file() {
    let dir = tempfile::tempdir().unwrap();
    let costs = every_field();
    let (jsonl_path, jsonl) = through_jsonl(dir.path(), &costs).await;
    let out = dir.path().join("calls.parquet");

    let converted = convert(&jsonl_path, &out).unwrap();

    assert_eq!(converted.rows, 4);
    assert_eq!(converted.bytes, fs::metadata(&out).unwrap().len());
    assert!(converted.torn_tail.is_none());
    assert_eq!(mode(&out), 0o600);
    assert_same(&read_all(&out).unwrap(), &jsonl);
    // Never overwritten.
    let again = convert(&jsonl_path, &out).unwrap_err();
    assert!(matches!(again, LedgerError::Open { .. }), "{again:?}");
}

#[test]
fn the_columns_have_the_types_a_query_engine_reads() {
    use arrow_array::{Array, Decimal128Array, MapArray, TimestampNanosecondArray};
    use arrow_schema::{DataType, TimeUnit};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.parquet");
    let mut writer = ParquetFileWriter::create(&path).unwrap();
    for c in every_field() {
        writer.write(&c).unwrap();
    }
    // Until its footer is written the file is hidden under another name.
    assert_eq!(in_progress(&path), dir.path().join(".c.parquet.tmp"));
    assert_eq!(names(dir.path()), [".c.parquet.tmp"]);
    writer.finish().unwrap();
    assert_eq!(names(dir.path()), ["c.parquet"]);

    // Read with the parquet crate alone, as any reader would.
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batch = reader.into_iter().next().unwrap().unwrap();
    let schema = batch.schema();
    let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(ty("cost_usd"), DataType::Decimal128(38, 12));
    assert_eq!(ty("running_fleet_usd"), DataType::Decimal128(38, 12));
    assert_eq!(
        ty("at"),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    assert_eq!(ty("day"), DataType::Date32);
    assert_eq!(ty("accrual_priced_from"), DataType::Utf8);
    assert_eq!(
        ty("accrued_to"),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    assert_eq!(ty("latency_us"), DataType::Int64);
    assert!(matches!(ty("tags"), DataType::Map(..)));
    assert!(matches!(ty("lines"), DataType::List(..)));

    // 120.000100308903 USD is 120000100308903 × 10⁻¹²; 0.5 USD of a running total
    // is stored as 1234567.500000000000.
    let cost: &Decimal128Array = batch
        .column_by_name("cost_usd")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    assert_eq!(cost.value(0), 120_000_100_308_903);
    let client: &Decimal128Array = batch
        .column_by_name("running_client_usd")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    assert_eq!(client.value(0), 1_234_567_500_000_000_000);
    let fleet: &Decimal128Array = batch
        .column_by_name("running_fleet_usd")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    assert_eq!(fleet.value(0), 99_999_999_999_999_000_000_000_001);
    assert!(fleet.is_null(1));
    let at: &TimestampNanosecondArray = batch
        .column_by_name("at")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    assert_eq!(at.value(0), 1_796_206_932_758_756_612); // 2026-12-02T10:22:12.758756612Z
    let tags: &MapArray = batch
        .column_by_name("tags")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    assert_eq!(tags.value_length(0), 3);
    assert_eq!(tags.value_length(1), 0);
}

#[tokio::test]
async fn rows_roll_into_files_of_at_most_max_rows_that_read_back_in_order() {
    let (_tmp, dir, clock) = in_receipts_dir();
    let ledger = ParquetLedger::rolling(dir.path())
        .max_rows(4)
        .time_source(clock)
        .open()
        .unwrap();
    let costs: Vec<Cost> = (0..10).map(typical).collect();
    for c in &costs {
        ledger.record(c);
    }
    ledger.shutdown().await.unwrap();

    // 10 receipts, 4 per file: 4 + 4 + 2.
    assert_eq!(
        names(dir.path()),
        [
            "sagemeter-2026-12-02T10.1.parquet",
            "sagemeter-2026-12-02T10.2.parquet",
            "sagemeter-2026-12-02T10.parquet",
        ]
    );
    let files = parquet_files(dir.path()).unwrap();
    let rows: Vec<usize> = files.iter().map(|f| read_all(f).unwrap().len()).collect();
    assert_eq!(rows, [4, 4, 2]);
    assert_same(&read_dir(dir.path()), &costs);
}

#[tokio::test]
async fn a_new_hour_or_day_starts_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let (time, clock) = clock();
    let hourly = dir.path().join("hourly");
    let ledger = ParquetLedger::rolling(&hourly)
        .time_source(clock.clone())
        .open()
        .unwrap();
    ledger.record(&typical(0));
    ledger.flush().await.unwrap();
    time.advance(Duration::from_secs(3600)); // 11:30
    ledger.record(&typical(1));
    ledger.record(&typical(2));
    ledger.shutdown().await.unwrap();
    assert_eq!(
        names(&hourly),
        [
            "sagemeter-2026-12-02T10.parquet",
            "sagemeter-2026-12-02T11.parquet"
        ]
    );
    let per_file: Vec<usize> = parquet_files(&hourly)
        .unwrap()
        .iter()
        .map(|f| read_all(f).unwrap().len())
        .collect();
    assert_eq!(per_file, [1, 2]);

    let daily = dir.path().join("daily");
    let ledger = ParquetLedger::rolling(&daily)
        .roll_every(RollEvery::Day)
        .time_source(clock)
        .open()
        .unwrap();
    ledger.record(&typical(0));
    ledger.flush().await.unwrap();
    time.advance(Duration::from_secs(24 * 3600)); // the next day
    ledger.record(&typical(1));
    ledger.shutdown().await.unwrap();
    assert_eq!(
        names(&daily),
        [
            "sagemeter-2026-12-02T00.parquet",
            "sagemeter-2026-12-03T00.parquet"
        ]
    );
}

#[tokio::test]
async fn a_file_appears_only_when_complete_and_each_flush_closes_one() {
    let (_tmp, dir, clock) = in_receipts_dir();
    let ledger = rolling_in(dir.path(), clock);
    ledger.record(&typical(0));
    ledger.record(&typical(1));
    // Written or not yet, nothing is under a final name before the file is closed.
    assert!(names(dir.path()).iter().all(|n| !n.ends_with(".parquet")));
    assert!(parquet_files(dir.path()).is_err());

    ledger.flush().await.unwrap();
    assert_eq!(names(dir.path()), ["sagemeter-2026-12-02T10.parquet"]);
    assert_eq!(ledger.stats().written, 2);

    // A flush with nothing new makes no file; the next receipts start the next one.
    ledger.flush().await.unwrap();
    ledger.record(&typical(2));
    ledger.flush().await.unwrap();
    assert_eq!(
        names(dir.path()),
        [
            "sagemeter-2026-12-02T10.1.parquet",
            "sagemeter-2026-12-02T10.parquet"
        ]
    );
    assert_same(
        &read_dir(dir.path()),
        &(0..3).map(typical).collect::<Vec<_>>(),
    );
    ledger.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_shutdown_receipts_are_refused_and_counted() {
    let (_tmp, dir, clock) = in_receipts_dir();
    let ledger = rolling_in(dir.path(), clock);
    ledger.record(&typical(0));
    ledger.shutdown().await.unwrap();

    assert_eq!(ledger.try_record(&typical(1)), Err(Refused::Closed));
    ledger.record(&typical(2));
    let stats = ledger.stats();
    assert_eq!(
        (stats.accepted, stats.written, stats.refused_closed),
        (1, 1, 1),
        "try_record hands its refusal back uncounted; record counts it"
    );
    // Flush and shutdown again are harmless; nothing more was written.
    ledger.flush().await.unwrap();
    ledger.shutdown().await.unwrap();
    assert_eq!(read_dir(dir.path()), vec![typical(0)]);
}

/// One writer per directory: two would pick the same next file name, and each
/// would take the other's file in progress for a crash's leftover. The second is
/// refused while the first writes, and opens once it has shut down.
#[tokio::test]
async fn a_second_writer_of_one_directory_is_refused_until_the_first_shuts_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("receipts");
    let (_time, clock) = clock();
    let open = || {
        ParquetLedger::rolling(&dir)
            .time_source(clock.clone())
            .open()
    };
    let first = open().unwrap();
    first.record(&typical(0));
    let err = open().unwrap_err();
    assert!(
        matches!(&err, LedgerError::Locked { path } if path == &dir),
        "{err:?}"
    );
    assert_eq!(mode(&dir.join(".sagemeter-parquet.lock")), 0o600);
    first.shutdown().await.unwrap();

    let second = open().unwrap();
    second.record(&typical(1));
    second.shutdown().await.unwrap();
    assert_eq!(
        names(&dir),
        [
            "sagemeter-2026-12-02T10.1.parquet",
            "sagemeter-2026-12-02T10.parquet"
        ]
    );
    assert_same(&read_dir(&dir), &[typical(0), typical(1)]);
}

/// A shutdown whose final close fails (the directory was removed under the
/// writer) returns the error, and so does every later shutdown or flush: never
/// `Ok` for receipts that are lost.
#[tokio::test]
async fn every_shutdown_after_a_failed_final_close_returns_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("receipts");
    let (_time, clock) = clock();
    let ledger = ParquetLedger::rolling(&dir)
        .time_source(clock)
        .open()
        .unwrap();
    ledger.record(&typical(0));
    ledger.record(&typical(1));
    // The writer may be creating its file while the directory is removed (the
    // removal then finds it not empty): tried again until the directory is gone.
    // Whether the file was made before or not, both receipts are lost.
    for attempt in 1.. {
        match fs::remove_dir_all(&dir) {
            Ok(()) => break,
            Err(_) if attempt < 100 => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("removing {}: {e}", dir.display()),
        }
    }
    let first = ledger.shutdown().await.unwrap_err();
    assert!(
        matches!(first, LedgerError::Write { lost: 2, .. }),
        "{first:?}"
    );
    for again in [ledger.shutdown().await, ledger.flush().await] {
        let again = again.unwrap_err();
        assert!(
            matches!(again, LedgerError::Write { lost: 2, .. }),
            "{again:?}"
        );
        assert_eq!(again.to_string(), first.to_string());
    }
}

/// A flush given up on (its timeout fired) drops its reply: whether the writer
/// had replied yet or not, the error it carried (a receipt lost) is returned by
/// the next flush, never swallowed with the next flush saying `Ok`.
#[tokio::test]
async fn the_error_of_a_cancelled_flush_is_returned_by_the_next_flush() {
    let (_tmp, dir, clock) = in_receipts_dir();
    let ledger = rolling_in(dir.path(), clock);
    // 13 decimal places: DECIMAL(38,12) would have to round it, so it is lost.
    let inexact = inexact();
    // Dropped at once (most likely before the writer replies), then after the
    // writer has surely replied.
    for (lost, wait) in [(1, Duration::ZERO), (2, Duration::from_millis(300))] {
        ledger.record(&typical(0));
        ledger.record(&inexact);
        {
            let mut flush = Box::pin(ledger.flush());
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(flush.as_mut().poll(&mut cx).is_pending(), "queued");
            std::thread::sleep(wait);
        }
        let err = ledger.flush().await.unwrap_err();
        assert!(
            matches!(err, LedgerError::Write { lost: l, .. } if l == lost),
            "{err:?}"
        );
        assert!(err.to_string().contains("0.0000000000001"), "{err}");
        ledger.flush().await.unwrap();
    }
    ledger.shutdown().await.unwrap();
    assert_eq!(read_dir(dir.path()).len(), 2);
}

#[tokio::test]
async fn files_are_owner_only_and_a_directory_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_time, clock) = clock();
    let pq = dir.path().join("new");
    let ledger = ParquetLedger::rolling(&pq)
        .time_source(clock.clone())
        .open()
        .unwrap();
    ledger.record(&typical(0));
    ledger.shutdown().await.unwrap();
    assert_eq!(mode(&pq), 0o700);
    assert_eq!(mode(&pq.join("sagemeter-2026-12-02T10.parquet")), 0o600);

    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    let err = ParquetLedger::rolling(&shared)
        .time_source(clock)
        .open()
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::DirectoryPermissions { mode: 0o755, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("run `chmod 700 "), "{err}");
}

#[tokio::test]
async fn a_receipt_that_cannot_be_stored_exactly_is_not_written_and_is_reported() {
    let (_tmp, dir, clock) = in_receipts_dir();
    let ledger = rolling_in(dir.path(), clock);
    // 13 decimal places: DECIMAL(38,12) would have to round it.
    let inexact = inexact();
    ledger.record(&typical(0));
    ledger.record(&inexact);
    ledger.record(&typical(2));

    let err = ledger.flush().await.unwrap_err();
    assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("0.0000000000001"), "{err}");
    let stats = ledger.stats();
    assert_eq!(
        (stats.accepted, stats.written, stats.lost_on_error),
        (3, 2, 1)
    );
    assert_same(&read_dir(dir.path()), &[typical(0), typical(2)]);
    // Reported once; writing goes on.
    ledger.record(&typical(3));
    ledger.shutdown().await.unwrap();
    assert_eq!(read_dir(dir.path()).len(), 3);

    // The file writer refuses it too, and goes on with the others.
    let path = dir.path().join("one.parquet");
    let mut file = ParquetFileWriter::create(&path).unwrap();
    file.write(&typical(0)).unwrap();
    let err = file.write(&inexact).unwrap_err();
    assert!(
        matches!(err, LedgerError::Parquet { row: Some(2), .. }),
        "{err:?}"
    );
    file.write(&typical(2)).unwrap();
    assert_eq!(file.finish().unwrap().rows, 2);
    assert_same(&read_all(&path).unwrap(), &[typical(0), typical(2)]);
}

#[tokio::test]
async fn a_file_left_unfinished_by_a_crash_is_skipped_and_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (_time, clock) = clock();
    // What a crash leaves: rows without a footer, under the in-progress name.
    let leftover = dir.path().join(".sagemeter-2026-12-02T10.parquet.tmp");
    fs::write(&leftover, b"PAR1 rows without a footer").unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();

    let ledger = rolling_in(dir.path(), clock);
    ledger.record(&typical(0));
    ledger.shutdown().await.unwrap();

    assert_eq!(
        names(dir.path()),
        [
            ".sagemeter-2026-12-02T10.parquet.tmp",
            "sagemeter-2026-12-02T10.1.parquet",
        ]
    );
    assert_eq!(
        parquet_files(dir.path()).unwrap(),
        [dir.path().join("sagemeter-2026-12-02T10.1.parquet")]
    );
    // Such a file cannot be read: it says why.
    let err = read_all(&leftover).unwrap_err();
    assert!(matches!(err, LedgerError::Parquet { .. }), "{err:?}");
    assert!(err.to_string().contains("footer"), "{err}");
}

#[tokio::test]
async fn only_the_newest_files_are_kept_beyond_the_retention_count() {
    let (_tmp, dir, clock) = in_receipts_dir();
    let ledger = ParquetLedger::rolling(dir.path())
        .max_rows(1)
        .keep_files(2)
        .time_source(clock)
        .open()
        .unwrap();
    for i in 0..5 {
        ledger.record(&typical(i));
    }
    ledger.shutdown().await.unwrap();
    assert_eq!(
        names(dir.path()),
        [
            "sagemeter-2026-12-02T10.3.parquet",
            "sagemeter-2026-12-02T10.4.parquet"
        ]
    );
    assert_same(&read_dir(dir.path()), &[typical(3), typical(4)]);
}

#[tokio::test]
async fn many_typical_receipts_stream_back_and_take_a_fraction_of_the_jsonl_bytes() {
    const N: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let costs: Vec<Cost> = (0..N).map(typical).collect();
    let (jsonl_path, jsonl) = through_jsonl(dir.path(), &costs).await;
    let out = dir.path().join("calls.parquet");
    let converted = convert(&jsonl_path, &out).unwrap();

    // Several record batches (8,192 rows each) through the streaming reader.
    let mut reader = ParquetReader::open(&out).unwrap();
    let parquet: Vec<Cost> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(reader.next().is_none());
    assert_same(&parquet, &jsonl);

    let jsonl_bytes = fs::metadata(&jsonl_path).unwrap().len();
    eprintln!(
        "{N} typical receipts: JSONL {} bytes/record, Parquet {} bytes/record",
        jsonl_bytes / N,
        converted.bytes / N
    );
    assert!(
        converted.bytes * 4 < jsonl_bytes,
        "Parquet {} bytes against JSONL {jsonl_bytes}",
        converted.bytes
    );
}

/// `sagemeter report` over Parquet files (only the columns it needs, row groups
/// on every core) gives the report of the same receipts read from JSONL.
#[tokio::test]
async fn a_report_of_parquet_files_equals_the_report_of_the_jsonl_ledger() {
    use sagemeter::report::{GroupBy, ReportOptions, report_files, summarize};
    let dir = tempfile::tempdir().unwrap();
    let mut costs = every_field();
    costs.extend((0..300).map(typical));
    let (jsonl_path, jsonl) = through_jsonl(dir.path(), &costs).await;
    // Several files of several receipts: several units of work.
    let parquet_dir = Receipts(dir.path().join("parquet"));
    let ledger = ParquetLedger::rolling(parquet_dir.path())
        .max_rows(37)
        .open()
        .unwrap();
    for c in &jsonl {
        ledger.try_record(c).unwrap();
    }
    ledger.shutdown().await.unwrap();
    assert!(parquet_files(parquet_dir.path()).unwrap().len() >= 8);
    for by in [
        GroupBy::Endpoint,
        GroupBy::Variant,
        GroupBy::Tag("team".into()),
        GroupBy::Hour,
        GroupBy::Region,
    ] {
        let options = ReportOptions::new(by.clone());
        let expected = summarize(&jsonl, &options).unwrap();
        assert_eq!(expected.total.calls, 304);
        // every_field's eu-west-1 and ap-northeast-1 receipts (and two without a
        // region), typical's us-east-1: three regions, read from every format.
        assert_eq!(
            expected.regions,
            ["ap-northeast-1", "eu-west-1", "us-east-1"],
            "{by}"
        );
        assert_eq!(
            report_files([&jsonl_path], &options).unwrap(),
            expected,
            "{by}"
        );
        assert_eq!(
            report_files([parquet_dir.path()], &options).unwrap(),
            expected,
            "{by}"
        );
    }
    // Other receipts in JSONL and the Parquet files are read together, as one
    // report: 10 + 304 calls, both totals.
    let other_dir = Receipts(dir.path().join("other"));
    fs::create_dir(other_dir.path()).unwrap();
    let others: Vec<Cost> = (1000..1010).map(typical).collect();
    let (others_path, others) = through_jsonl(other_dir.path(), &others).await;
    // Of several regions, the endpoint keys start with the region (`-` for the
    // receipts without one): the region column read from the Parquet files.
    let options = ReportOptions::new(GroupBy::Endpoint);
    let by_endpoint = report_files([parquet_dir.path()], &options).unwrap();
    let mut keys: Vec<&str> = by_endpoint.groups.iter().map(|g| g.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "-/",
            "-/rt",
            "ap-northeast-1/e",
            "eu-west-1/llm",
            "us-east-1/demo-realtime"
        ]
    );
    let mixed = report_files([other_dir.path(), parquet_dir.path()], &options).unwrap();
    assert_eq!(mixed.total.calls, 314);
    assert_eq!(
        mixed.total.cost_usd,
        expected_total(&others) + expected_total(&jsonl)
    );
    let mut listed: Vec<PathBuf> = vec![others_path];
    listed.extend(parquet_files(parquet_dir.path()).unwrap());
    assert_eq!(report_files(&listed, &options).unwrap(), mixed);
}

/// A ledger reported together with its own Parquet conversion (or with a
/// Parquet ledger of the same receipts) would count every receipt twice: it is
/// refused, naming both files, and the report of either alone counts each once.
#[tokio::test]
async fn the_same_receipts_in_both_formats_are_refused_not_counted_twice() {
    use sagemeter::report::{GroupBy, ReportError, ReportOptions, report_files};
    let dir = tempfile::tempdir().unwrap();
    let costs: Vec<Cost> = (0..5).map(typical).collect();
    let (jsonl_path, jsonl) = through_jsonl(dir.path(), &costs).await;
    let converted = dir.path().join("calls.parquet");
    convert(&jsonl_path, &converted).unwrap();
    let options = ReportOptions::new(GroupBy::Endpoint);
    let refused = |result: Result<sagemeter::report::Report, ReportError>, parquet: &Path| {
        match result {
            Err(ReportError::Ledger(e @ sagemeter::ledger::LedgerError::SameReceipts { .. })) => {
                let message = e.to_string();
                let sagemeter::ledger::LedgerError::SameReceipts {
                    first,
                    second,
                    call_id,
                } = e
                else {
                    unreachable!()
                };
                assert_eq!(
                    (first.as_path(), second.as_path()),
                    (jsonl_path.as_path(), parquet)
                );
                // The first receipt written, typical(0).
                assert_eq!(call_id, jsonl[0].call_id);
                assert!(message.contains("give one of them"), "{message}");
            }
            other => panic!("not refused: {other:?}"),
        }
    };
    // The directory holding both, and the two files named.
    refused(report_files([dir.path()], &options), &converted);
    refused(
        report_files([&jsonl_path, &converted], &options),
        &converted,
    );
    // Either alone: 5 calls, the receipts' total once, also when the file is
    // named twice (the same file once canonicalised).
    for alone in [&jsonl_path, &converted] {
        let report = report_files([alone], &options).unwrap();
        assert_eq!(report.total.calls, 5);
        assert_eq!(report.total.cost_usd, expected_total(&jsonl));
        let again = dir.path().join(".").join(alone.file_name().unwrap());
        assert_eq!(report_files([alone, &again], &options).unwrap(), report);
    }

    // A Parquet ledger written from the same receipts (another name, in its own
    // directory) is refused as well.
    let parquet_dir = Receipts(dir.path().join("parquet"));
    let ledger = ParquetLedger::rolling(parquet_dir.path()).open().unwrap();
    for c in &jsonl {
        ledger.try_record(c).unwrap();
    }
    ledger.shutdown().await.unwrap();
    let files = parquet_files(parquet_dir.path()).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    refused(
        report_files([&jsonl_path, parquet_dir.path()], &options),
        &files[0],
    );
}

fn expected_total(costs: &[Cost]) -> rust_decimal::Decimal {
    costs.iter().map(|c| c.cost_usd).sum()
}

/// A Parquet file that is not a ledger's (a column of another type, a column
/// missing) is an error naming the column, never a panic.
#[test]
fn a_report_of_a_parquet_file_of_another_shape_is_an_error_naming_the_column() {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use sagemeter::report::{GroupBy, ReportError, ReportOptions, report_files};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    for (name, columns) in [
        (
            "mistyped.parquet",
            vec![("at", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)],
        ),
        (
            "missing.parquet",
            vec![(
                "latency_us",
                Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            )],
        ),
    ] {
        let path = dir.path().join(name);
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            fs::File::create(&path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let err = report_files([&path], &ReportOptions::new(GroupBy::Endpoint)).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, ReportError::Ledger(LedgerError::Parquet { .. })),
            "{err:?}"
        );
        assert!(text.contains("`at`"), "{name}: {text}");
    }
}

/// `costs` written by sagemeter to `new.parquet` in `dir`, and the same rows
/// without column `dropped` to `old.parquet`, as an older sagemeter wrote them:
/// (new, old).
fn written_with_and_without(dir: &Path, costs: &[Cost], dropped: &str) -> (PathBuf, PathBuf) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let path = dir.join("new.parquet");
    let mut writer = ParquetFileWriter::create(&path).unwrap();
    for c in costs {
        writer.write(c).unwrap();
    }
    writer.finish().unwrap();
    let mut batch = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    batch.remove_column(batch.schema().index_of(dropped).unwrap());
    let old = dir.join("old.parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(fs::File::create(&old).unwrap(), batch.schema(), None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    (path, old)
}

/// Every receipt in the Parquet file at `path`, as [`ParquetReader`] reads them.
fn read_file(path: &Path) -> Vec<Cost> {
    ParquetReader::open(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A file written before accruals said where their rates came from (no
/// `accrual_priced_from` column) reads back with none, the rest as it was, and
/// reports as before.
#[test]
fn a_file_written_before_accruals_carried_their_sources_reads_with_none() {
    use sagemeter::report::{GroupBy, ReportOptions, report_files};
    let dir = tempfile::tempdir().unwrap();
    let costs = every_field();
    let (path, old) = written_with_and_without(dir.path(), &costs, "accrual_priced_from");

    let read = read_file(&old);
    let mut expected = costs.clone();
    for c in &mut expected {
        if let Some(accrual) = c.accrual.as_mut() {
            accrual.priced_from = Default::default();
        }
    }
    assert_eq!(read, expected);
    let report = report_files([&old], &ReportOptions::new(GroupBy::Endpoint)).unwrap();
    assert!(report.accrual_fallbacks.is_empty());
    // The new file names the snapshot the first receipt's accrual was priced from.
    let report = report_files([&path], &ReportOptions::new(GroupBy::Endpoint)).unwrap();
    assert_eq!(
        report.accrual_fallbacks.len(),
        2,
        "{:?}",
        report.accrual_fallbacks
    );
}

/// A file written before accruals carried `accrued_to` (no such column) reads
/// back with none, the rest as it was; a new file keeps a settlement's.
#[test]
fn a_file_written_before_accruals_carried_accrued_to_reads_with_none() {
    let dir = tempfile::tempdir().unwrap();
    let costs = every_field();
    assert!(
        costs
            .iter()
            .any(|c| c.accrual.as_ref().is_some_and(|a| a.accrued_to.is_some()))
    );
    let (path, old) = written_with_and_without(dir.path(), &costs, "accrued_to");

    let read = read_file(&old);
    let mut expected = costs.clone();
    for c in &mut expected {
        if let Some(accrual) = c.accrual.as_mut() {
            accrual.accrued_to = None;
        }
    }
    assert_eq!(read, expected);
    assert_eq!(read_file(&path), costs);
}
