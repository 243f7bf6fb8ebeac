//! The ledger at scale: bytes per receipt, writer and report throughput, peak
//! memory. See `benches/README.md` for the method and the figures.
//!
//! ```sh
//! cargo bench --bench ledger --all-features            # 1,000,000 receipts
//! SAGEMETER_BENCH_RECORDS=100000 cargo bench --bench ledger --all-features
//! bash benches/ledger-duckdb.sh                        # the same query in DuckDB
//! ```
//!
//! It writes the receipts with [`JsonlLedger`] (and, with the `parquet` feature,
//! converts them to Parquet), then reports on the files in a child process of
//! its own, which prints its peak resident memory (Linux `VmHWM`). The files
//! stay in `target/ledger-bench/` for the DuckDB script.

use rust_decimal::Decimal;
use sagemeter::Cost;
use sagemeter::ledger::{JsonlLedger, Refused};
use sagemeter::report::{GroupBy, ReportOptions, report_files};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, path, ..] = &args[..]
        && mode == "--report-child"
    {
        return report_child(Path::new(path));
    }
    let records: u64 = std::env::var("SAGEMETER_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../ledger-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the bench directory");
    #[cfg(unix)]
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("owner-only bench directory");
    let dir = dir.canonicalize().expect("the bench directory");
    println!("ledger bench: {records} receipts, {} cores", cores());

    // Format 1: each receipt whole, as the previous version wrote it (serde's
    // JSON of the receipt after `{"v":1,`; a unit test holds the two equal).
    let mut v1_bytes = 0u64;
    let sample = 10_000.min(records);
    for i in 0..sample {
        v1_bytes += serde_json::to_string(&receipt(i)).unwrap().len() as u64 + 7;
    }
    let v1_per_record = v1_bytes as f64 / sample as f64;

    // Format 2, written by the ledger.
    let jsonl = dir.join("calls.jsonl");
    let (write_secs, dropped) = write_ledger(&jsonl, records);
    let v2_bytes = std::fs::metadata(&jsonl).unwrap().len();
    let v2_per_record = v2_bytes as f64 / records as f64;
    println!(
        "bytes per receipt       format 1 {v1_per_record:>7.0}   format 2 {v2_per_record:>7.0}   ({:.1}x smaller; {:.0} MB for {records})",
        v1_per_record / v2_per_record,
        v2_bytes as f64 / 1e6
    );
    println!(
        "writer                  {:>10.0} receipts/s (one recording thread, encode + write + fsync at shutdown; {dropped} refused then retried)",
        records as f64 / write_secs
    );

    // Reports, each in a child process: receipts/s and peak memory.
    let small = dir.join("small.jsonl");
    write_ledger(&small, records / 10);
    let (small_rate, small_kb) = report_in_child(&small);
    let (rate, kb) = report_in_child(&jsonl);
    println!(
        "report, JSONL           {rate:>10.0} receipts/s, peak RSS {:.1} MB ({:.1} MB for a tenth of the receipts at {small_rate:.0}/s)",
        kb as f64 / 1024.0,
        small_kb as f64 / 1024.0
    );
    #[cfg_attr(not(feature = "parquet"), allow(unused_mut))]
    let mut figures = serde_json::json!({
        "records": records,
        "cores": cores(),
        "bytes_per_record_v1": v1_per_record.round(),
        "bytes_per_record_v2": v2_per_record.round(),
        "writer_records_per_s": (records as f64 / write_secs).round(),
        "report_jsonl_records_per_s": rate.round(),
        "report_jsonl_peak_rss_kb": kb,
        "report_jsonl_tenth_peak_rss_kb": small_kb,
    });

    #[cfg(feature = "parquet")]
    {
        let parquet = dir.join("calls.parquet");
        let started = Instant::now();
        let converted =
            sagemeter::ledger::parquet::convert(&jsonl, &parquet).expect("convert to Parquet");
        let convert_secs = started.elapsed().as_secs_f64();
        assert_eq!(converted.rows, records);
        let per_record = converted.bytes as f64 / records as f64;
        let (rate, kb) = report_in_child(&parquet);
        println!(
            "Parquet                 {per_record:>7.0} bytes per receipt, converted at {:.0} receipts/s",
            records as f64 / convert_secs
        );
        println!(
            "report, Parquet         {rate:>10.0} receipts/s, peak RSS {:.1} MB",
            kb as f64 / 1024.0
        );
        figures["bytes_per_record_parquet"] = per_record.round().into();
        figures["convert_records_per_s"] = (records as f64 / convert_secs).round().into();
        figures["report_parquet_records_per_s"] = rate.round().into();
        figures["report_parquet_peak_rss_kb"] = kb.into();
    }
    #[cfg(not(feature = "parquet"))]
    println!("report, Parquet         (build with --features parquet)");

    let out = dir.join("../sagemeter-ledger-bench.json");
    std::fs::write(&out, serde_json::to_string_pretty(&figures).unwrap()).unwrap();
    println!("figures: {}", out.display());
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Writes `records` receipts with a ledger; returns the seconds from the first
/// receipt to the end of `shutdown` (everything written and fsynced) and how
/// many times the queue was full (each retried: nothing is lost).
fn write_ledger(path: &Path, records: u64) -> (f64, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ledger = JsonlLedger::builder(path).capacity(65_536).open().unwrap();
    let mut refused = 0;
    let started = Instant::now();
    for i in 0..records {
        let cost = receipt(i);
        loop {
            match ledger.try_record(&cost) {
                Ok(()) => break,
                Err(Refused::Full) => {
                    refused += 1;
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(Refused::Closed) => panic!("the ledger closed"),
                Err(other) => panic!("{other}"),
            }
        }
    }
    runtime.block_on(ledger.shutdown()).unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(ledger.stats().written, records);
    (secs, refused)
}

/// Runs `report` on `path` in a child process; its receipts/s and peak RSS (KB).
fn report_in_child(path: &Path) -> (f64, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--report-child", path.to_str().unwrap()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the bench binary");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the report child failed: {text}");
    let mut figures = text.split_whitespace().map(|s| s.parse::<f64>());
    match (figures.next(), figures.next()) {
        (Some(Ok(rate)), Some(Ok(kb))) => (rate, kb as u64),
        _ => panic!("the report child printed {text:?}"),
    }
}

/// The child: the report of `path`, timed; prints receipts/s and its peak
/// resident memory (the kernel's `VmHWM`, counted from the child's own start).
fn report_child(path: &Path) {
    let options = ReportOptions::new(GroupBy::Endpoint);
    let started = Instant::now();
    let report = report_files([path], &options).expect("the report");
    let secs = started.elapsed().as_secs_f64();
    let calls = report.total.calls as f64;
    eprintln!(
        "  {}: {} calls, ${} (p50 ${}, p95 latency {} ms) in {secs:.2} s",
        path.file_name().unwrap().to_string_lossy(),
        report.total.calls,
        report.total.cost_usd.normalize(),
        report
            .total
            .cost_per_call_p50_usd
            .unwrap_or_default()
            .normalize(),
        report.total.latency_p95_ms.unwrap_or_default().normalize(),
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("{} {hwm_kb}", calls / secs);
}

/// Receipt `i`: three endpoints (two on instances, one serverless), three lines,
/// tokens on the LLM endpoint, two tags, a price that changes, latencies
/// spread over 20–2,000 ms, one call in 50 failed, a minute of calls every 6,000.
fn receipt(i: u64) -> Cost {
    use std::sync::OnceLock;
    static TEMPLATES: OnceLock<Vec<Cost>> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        ["llm-prod", "rank-prod", "embed-serverless"]
            .iter()
            .map(|endpoint| template(endpoint))
            .collect()
    });
    let which = (i % 7 % 3) as usize;
    let mut cost = templates[which].clone();
    let mix = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    cost.call_id = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        mix >> 32,
        (mix >> 16) & 0xffff,
        mix & 0xfff,
        i & 0xfff,
        i
    );
    cost.at += chrono::Duration::milliseconds((i / 100 * 1_000) as i64 + (i % 100) as i64 * 10);
    let latency_ms = 20 + (mix >> 40) % 1_980;
    cost.usage.latency = Duration::from_millis(latency_ms);
    cost.usage.bytes_out = 200 + (mix >> 20) % 4_000;
    if i.is_multiple_of(50) {
        cost.usage.outcome = sagemeter::usage::Outcome::Error;
    }
    if which == 0 {
        cost.usage.input_tokens = Some(100 + (mix >> 10) % 900);
        cost.usage.output_tokens = Some(20 + (mix >> 30) % 400);
    }
    // Compute: the call's share of an instance-hour (or its billed seconds), at a
    // rate that changes at the half-way mark (a refreshed live price).
    let listed = cost.lines[0].price_rate().unwrap_or_default();
    let rate = if price_changed(i) {
        listed * Decimal::new(99, 2)
    } else {
        listed
    };
    let quantity = match which {
        2 => Decimal::from(latency_ms) / Decimal::from(1_000),
        _ => Decimal::from(latency_ms * 1_000) / Decimal::from(3_600_000_000u64) / Decimal::from(3),
    };
    let mut total = Decimal::ZERO;
    for (n, line) in cost.lines.iter_mut().enumerate() {
        let (qty, usd_per_unit) = match n {
            0 => (quantity.normalize(), rate),
            1 => (gigabytes(1_534), line.price_rate().unwrap_or_default()),
            _ => (
                gigabytes(cost.usage.bytes_out),
                line.price_rate().unwrap_or_default(),
            ),
        };
        let line_cost = (qty * usd_per_unit).round_dp(12);
        total += line_cost;
        set_line(
            line,
            qty,
            usd_per_unit,
            line_cost,
            price_changed(i) && n == 0,
        );
    }
    cost.cost_usd = total;
    cost.running_client_usd = total * Decimal::from(i + 1);
    cost.running_endpoint_usd = total * Decimal::from(i / 3 + 1);
    if let Some(tags) = cost.tags.get_mut("feature") {
        *tags = ["search", "chat", "summaries", "autocomplete"][(i % 4) as usize].to_owned();
    }
    cost
}

/// The compute price is 1% lower every other 100,000 calls (a refreshed live
/// price, then the old one again): two definitions, used by turns.
fn price_changed(i: u64) -> bool {
    (i / 100_000) % 2 == 1
}

fn gigabytes(bytes: u64) -> Decimal {
    sagemeter::billing::gigabytes(bytes).normalize()
}

trait Rate {
    fn price_rate(&self) -> Option<Decimal>;
}

impl Rate for sagemeter::billing::CostLine {
    fn price_rate(&self) -> Option<Decimal> {
        match &self.price {
            sagemeter::billing::LinePrice::Priced { usd_per_unit, .. } => Some(*usd_per_unit),
            _ => None,
        }
    }
}

fn set_line(
    line: &mut sagemeter::billing::CostLine,
    quantity: Decimal,
    rate: Decimal,
    cost: Decimal,
    changed: bool,
) {
    line.quantity = quantity;
    if let sagemeter::billing::LinePrice::Priced {
        usd_per_unit,
        cost_usd,
        provenance,
    } = &mut line.price
    {
        *usd_per_unit = rate;
        *cost_usd = cost;
        if changed {
            provenance.effective_date = Some("2026-12-01".into());
        }
    }
}

fn template(endpoint: &str) -> Cost {
    let serverless = endpoint.contains("serverless");
    let billing = if serverless {
        serde_json::json!({"kind": "serverless", "memory_mb": 2048, "provisioned_concurrency": null})
    } else {
        serde_json::json!({"kind": "instance", "instance_type": "ml.g5.2xlarge", "instance_count": 3})
    };
    let (unit, rate) = if serverless {
        ("seconds", "0.00004")
    } else {
        ("instance_hours", "1.515")
    };
    let live = serde_json::json!({"source": "live", "sku": "8KTE7BNYQ6E3SPQH",
        "effective_date": "2026-11-01", "fetched_at": "2026-12-01T06:00:00Z", "note": null});
    let snapshot = serde_json::json!({"source": "snapshot", "sku": null,
        "effective_date": "2026-05-08", "fetched_at": null,
        "note": "data processing is not in the Price List: bundled price snapshot (as of 2026-05-08)"});
    serde_json::from_value(serde_json::json!({
        "call_id": "", "at": "2026-12-01T00:00:00Z", "endpoint": endpoint,
        "variant": "AllTraffic", "billing": billing, "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 0, "bytes_in": 1534,
                  "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
        "lines": [
            {"item": "compute", "quantity": "0", "unit": unit, "price": {"status": "priced",
             "usd_per_unit": rate, "cost_usd": "0", "provenance": live}},
            {"item": "data_in", "quantity": "0", "unit": "gigabytes", "price": {"status": "priced",
             "usd_per_unit": "0.016", "cost_usd": "0", "provenance": snapshot}},
            {"item": "data_out", "quantity": "0", "unit": "gigabytes", "price": {"status": "priced",
             "usd_per_unit": "0.016", "cost_usd": "0", "provenance": snapshot}}
        ],
        "cost_usd": "0", "currency": "USD", "region": "us-east-1",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "accrual": if serverless { serde_json::Value::Null } else {
            serde_json::json!({"accrued_usd": "912.345678901234", "allocated_usd": "455.123456789012",
                               "utilisation": "0.498849"}) },
        "tags": {"team": endpoint.split('-').next().unwrap(), "feature": "search"}
    }))
    .unwrap()
}
