//! What metering costs next to the call it meters.
//!
//! `cargo bench --bench overhead` runs, in one process and alternating round by
//! round (61 rounds at concurrency 1, 31 at 64), the raw
//! `aws_sdk_sagemakerruntime::Client` and `sagemeter::Client` against the same
//! in-process loopback server that answers instantly (so client overhead
//! dominates), at concurrency 1 and 64 (at 1 also a client built
//! `without_metrics()`, at 64 one with a ledger); then price look-ups, the ledger writer,
//! heap allocations per call and memory after a million calls. Throughput, ratios
//! and added CPU are medians over the rounds (ratios and CPU differences are taken
//! round by round, each metered run against the raw run next to it; the quartiles
//! of those ratios say how noisy the machine was). It prints a table and writes
//! `target/sagemeter-bench.json` (keys listed in `Figures`).
//!
//! Environment: `SAGEMETER_BENCH_SCALE` (default 1.0) scales every call count,
//! e.g. `0.1` for a quick look. `SAGEMETER_BENCH_CONTROL=1` compares each side
//! with an identical twin (the method's own lean, which should read 1.00) and raw
//! with metered, at concurrency 1, and exits. `SAGEMETER_BENCH_PROFILE=raw|metered|ledger`
//! runs only that caller (200,000 calls × scale at concurrency 64, or
//! `SAGEMETER_BENCH_CONCURRENCY`) and exits, for a profiler (`perf record`) to
//! compare one side with the other.
//!
//! With `--features fleet` (or `--all-features`) it also runs a client with the
//! fleet on (its table an in-process fake DynamoDB that counts requests) against
//! the same client with the fleet off, round by round at concurrency 1 and 64,
//! and prints the DynamoDB requests per 1,000 calls and the time the fleet adds
//! per call. `SAGEMETER_BENCH_FLEET=1` runs only that part.

// Shared with the tests; `pub` because this bench uses only part of it (public
// items are not reported as dead code).
#[path = "../tests/support/fake_pricelist.rs"]
pub mod fake_pricelist;

use aws_sdk_sagemakerruntime::primitives::Blob;
use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::pricing::{CachedPrices, LivePrices, PriceKey, PriceSource, Snapshot};
use serde::Serialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes, to see whether memory grows with the number of calls.
/// Counting is switched on only for the memory phases: a shared atomic on every
/// allocation would slow the allocation-heavier side of the throughput comparison.
struct Counting;
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(delta, Ordering::Relaxed);
        if delta > 0 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed) as i64
}

/// CPU time of the whole process (all threads).
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn scale(n: usize) -> usize {
    let s: f64 = std::env::var("SAGEMETER_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * s) as usize).max(1)
}

const BODY: &[u8] = br#"{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#;

async fn start_runtime_server() -> String {
    async fn invoke() -> impl IntoResponse {
        let mut r = (StatusCode::OK, BODY).into_response();
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert(
            "x-Amzn-Invoked-Production-Variant",
            HeaderValue::from_static("AllTraffic"),
        );
        // As SageMaker does: every response names its request.
        h.insert(
            "x-amzn-RequestId",
            HeaderValue::from_static("5b1d5c3e-8f0a-4c2e-9a43-0d6f1e2b7c55"),
        );
        r
    }
    let app = Router::new().route("/endpoints/{name}/invocations", post(invoke));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn sdk_config(url: &str) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "bench",
        ))
        .endpoint_url(url)
        .load()
        .await
}

/// One way of making a call, for the alternating rounds.
#[derive(Clone)]
enum Caller {
    Raw(aws_sdk_sagemakerruntime::Client),
    Metered(sagemeter::Client),
}

impl Caller {
    async fn call(&self) {
        match self {
            Caller::Raw(c) => {
                c.invoke_endpoint()
                    .endpoint_name("bench")
                    .content_type("application/json")
                    .body(Blob::new(&b"{\"inputs\":\"hi\"}"[..]))
                    .send()
                    .await
                    .unwrap();
            }
            Caller::Metered(c) => {
                c.invoke_endpoint()
                    .endpoint_name("bench")
                    .content_type("application/json")
                    .body(Blob::new(&b"{\"inputs\":\"hi\"}"[..]))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// The size of one call's future before it is first polled: every move of it
    /// copies this many bytes.
    fn send_future_bytes(&self) -> usize {
        match self {
            Caller::Raw(c) => std::mem::size_of_val(&c.invoke_endpoint().send()),
            Caller::Metered(c) => std::mem::size_of_val(&c.invoke_endpoint().send()),
        }
    }
}

#[derive(Clone, Copy)]
struct Run {
    calls: usize,
    wall: Duration,
    cpu: Duration,
}

impl Run {
    fn cps(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64()
    }
    fn cpu_us_per_call(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.calls as f64
    }
}

async fn run(caller: &Caller, calls: usize, concurrency: usize) -> Run {
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let per_task = calls / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let caller = caller.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    caller.call().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // A run ends when its receipts are written: a ledger's backlog must not spill
    // into the run after it (the writer thread shares the cores).
    if let Caller::Metered(client) = caller {
        client.meter().flush().await.unwrap();
    }
    Run {
        calls: per_task * concurrency,
        wall: t0.elapsed(),
        cpu: cpu_time() - cpu0,
    }
}

/// Every round runs each caller once, in turn (reversed every other round), so
/// that drift and bursts of noise from other tenants of the machine fall on all
/// alike. Figures are medians over the rounds, which one noisy round cannot move.
struct Comparison {
    /// Per caller, per round.
    rounds: Vec<Vec<Run>>,
}

impl Comparison {
    /// Median calls per second of caller `i`.
    fn cps(&self, i: usize) -> f64 {
        median(self.rounds[i].iter().map(Run::cps))
    }

    /// Median of the per-round throughput ratios of caller `i` to caller `base`.
    fn ratio(&self, i: usize, base: usize) -> f64 {
        median(
            self.rounds[i]
                .iter()
                .zip(&self.rounds[base])
                .map(|(a, b)| a.cps() / b.cps()),
        )
    }

    /// Lower and upper quartiles of the per-round throughput ratios: how far one
    /// round may land from the median on this machine.
    fn ratio_quartiles(&self, i: usize, base: usize) -> (f64, f64) {
        let mut ratios: Vec<f64> = self.rounds[i]
            .iter()
            .zip(&self.rounds[base])
            .map(|(a, b)| a.cps() / b.cps())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
        (at(0.25), at(0.75))
    }

    /// Median of the per-round differences in CPU per call, caller `i` minus `base`.
    fn added_cpu_us(&self, i: usize, base: usize) -> f64 {
        median(
            self.rounds[i]
                .iter()
                .zip(&self.rounds[base])
                .map(|(a, b)| a.cpu_us_per_call() - b.cpu_us_per_call()),
        )
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

async fn compare(
    callers: &[&Caller],
    calls: usize,
    concurrency: usize,
    rounds: usize,
) -> Comparison {
    for c in callers {
        run(c, calls / 2, concurrency).await; // warm-up
    }
    let mut per_caller = vec![Vec::with_capacity(rounds); callers.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..callers.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            per_caller[i].push(run(callers[i], calls, concurrency).await);
        }
    }
    Comparison { rounds: per_caller }
}

#[derive(Serialize, Default)]
struct Figures {
    raw_cps_c1: f64,
    metered_cps_c1: f64,
    ratio_c1: f64,
    /// Quartiles of the per-round ratios (the median is `ratio_c1`).
    ratio_c1_q1: f64,
    ratio_c1_q3: f64,
    raw_cps_c64: f64,
    metered_cps_c64: f64,
    ratio_c64: f64,
    ratio_c64_q1: f64,
    ratio_c64_q3: f64,
    ledger_cps_c64: f64,
    ratio_c64_ledger: f64,
    ratio_c64_ledger_q1: f64,
    ratio_c64_ledger_q3: f64,
    /// Receipts the ledger-on client's ledger dropped (queue full): work it skipped.
    ledger_dropped_c64: u64,
    rounds_c1: usize,
    rounds_c64: usize,
    added_cpu_us_per_call: f64,
    /// The same at concurrency 1 for a client built `without_metrics()`.
    metered_without_metrics_cps_c1: f64,
    ratio_c1_without_metrics: f64,
    ratio_c1_without_metrics_q1: f64,
    ratio_c1_without_metrics_q3: f64,
    added_cpu_us_per_call_without_metrics: f64,
    warm_lookup_ns: f64,
    cold_lookup_ms: f64,
    cold_requests_for_1000_callers: u64,
    ledger_records_per_s: f64,
    ledger_writer_bytes: i64,
    raw_allocations_per_call: f64,
    metered_allocations_per_call: f64,
    client_bytes_before: i64,
    client_bytes_after_1m_calls: i64,
    calls_for_memory: usize,
    /// Fleet on against fleet off (feature `fleet`; zero without it).
    fleet: FleetFigures,
}

/// The fleet's cost: its table's requests, and the time it adds to a call.
#[derive(Serialize, Default)]
struct FleetFigures {
    /// Calls per second, fleet off and on, concurrency 1 and 64.
    off_cps_c1: f64,
    on_cps_c1: f64,
    ratio_c1: f64,
    ratio_c1_q1: f64,
    ratio_c1_q3: f64,
    off_cps_c64: f64,
    on_cps_c64: f64,
    ratio_c64: f64,
    ratio_c64_q1: f64,
    ratio_c64_q3: f64,
    /// Wall time added per call (µs): 1/on − 1/off, at the median throughputs.
    added_us_per_call_c1: f64,
    added_us_per_call_c64: f64,
    /// CPU added per call (µs), median of the per-round differences.
    added_cpu_us_per_call_c1: f64,
    added_cpu_us_per_call_c64: f64,
    /// DynamoDB requests per 1,000 calls over the measured rounds, and their parts.
    requests_per_1000_calls: f64,
    requests: u64,
    calls: u64,
    flush_every_ms: u64,
    /// Heap allocations per call, fleet off and on (flushes included).
    off_allocations_per_call: f64,
    on_allocations_per_call: f64,
}

/// Alternating rounds: many short ones, so that the host's slow drifts and bursts
/// fall on both sides alike and the medians settle.
const ROUNDS_C1: usize = 61;
const ROUNDS_C64: usize = 31;

fn metered_client(config: &aws_types::SdkConfig) -> sagemeter::ClientBuilder {
    sagemeter::Client::builder(config)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "bench",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 1)],
        ))
        .price_source(Snapshot::bundled())
}

#[tokio::main]
async fn main() {
    // A subscriber is installed, but the INFO cost line is filtered out: this
    // measures the cost of an event that nobody records.
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .init();

    let url = start_runtime_server().await;
    let config = sdk_config(&url).await;
    let raw = Caller::Raw(aws_sdk_sagemakerruntime::Client::new(&config));
    let metered = Caller::Metered(metered_client(&config).build().unwrap());
    let without_metrics =
        Caller::Metered(metered_client(&config).without_metrics().build().unwrap());
    let ledger_dir = tempfile::tempdir().unwrap();
    // A handle kept to read its counters: a receipt the ledger dropped would be
    // work the ledger-on run skipped.
    let ledger_sink =
        sagemeter::ledger::JsonlLedger::open(ledger_dir.path().join("bench.jsonl")).unwrap();
    let ledger = Caller::Metered(
        metered_client(&config)
            .sink(ledger_sink.clone())
            .build()
            .unwrap(),
    );
    if let Ok(side) = std::env::var("SAGEMETER_BENCH_PROFILE") {
        let caller = match side.as_str() {
            "raw" => &raw,
            "metered" => &metered,
            "ledger" => &ledger,
            other => panic!("SAGEMETER_BENCH_PROFILE={other}: use raw, metered or ledger"),
        };
        let concurrency = std::env::var("SAGEMETER_BENCH_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64);
        let r = run(caller, scale(200_000), concurrency).await;
        println!(
            "{side}: {:.0} calls/s, {:.1} µs CPU per call",
            r.cps(),
            r.cpu_us_per_call()
        );
        let allocations = allocations_per_call(caller, 2_000).await;
        println!("{side}: {allocations:.1} heap allocations per call");
        println!(
            "{side}: a call's future is {} bytes",
            caller.send_future_bytes()
        );
        println!(
            "the SDK's answer is {} bytes",
            std::mem::size_of::<
                Result<
                    aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointOutput,
                    aws_sdk_sagemakerruntime::error::SdkError<
                        aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError,
                        aws_smithy_runtime_api::http::Response,
                    >,
                >,
            >()
        );
        return;
    }
    let mut f = Figures::default();

    println!(
        "sagemeter overhead benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if std::env::var_os("SAGEMETER_BENCH_CONTROL").is_some() {
        control(&config, &raw, &metered).await;
        return;
    }
    if std::env::var_os("SAGEMETER_BENCH_FLEET").is_some() {
        f.fleet = fleet_figures(&config, &metered).await;
        print_fleet(&f.fleet);
        return;
    }
    f.rounds_c1 = ROUNDS_C1;
    let c1 = compare(
        &[&raw, &metered, &without_metrics],
        scale(500),
        1,
        ROUNDS_C1,
    )
    .await;
    f.raw_cps_c1 = c1.cps(0);
    f.metered_cps_c1 = c1.cps(1);
    f.ratio_c1 = c1.ratio(1, 0);
    (f.ratio_c1_q1, f.ratio_c1_q3) = c1.ratio_quartiles(1, 0);
    f.added_cpu_us_per_call = c1.added_cpu_us(1, 0);
    f.metered_without_metrics_cps_c1 = c1.cps(2);
    f.ratio_c1_without_metrics = c1.ratio(2, 0);
    (f.ratio_c1_without_metrics_q1, f.ratio_c1_without_metrics_q3) = c1.ratio_quartiles(2, 0);
    f.added_cpu_us_per_call_without_metrics = c1.added_cpu_us(2, 0);

    f.rounds_c64 = ROUNDS_C64;
    let c64 = compare(&[&raw, &metered, &ledger], scale(3_200), 64, ROUNDS_C64).await;
    f.raw_cps_c64 = c64.cps(0);
    f.metered_cps_c64 = c64.cps(1);
    f.ledger_cps_c64 = c64.cps(2);
    f.ratio_c64 = c64.ratio(1, 0);
    f.ratio_c64_ledger = c64.ratio(2, 0);
    (f.ratio_c64_q1, f.ratio_c64_q3) = c64.ratio_quartiles(1, 0);
    (f.ratio_c64_ledger_q1, f.ratio_c64_ledger_q3) = c64.ratio_quartiles(2, 0);
    f.ledger_dropped_c64 = ledger_sink.stats().dropped_full;

    // Pricing: warm look-ups through the cache, cold through a loopback Price List.
    let pricelist = fake_pricelist::FakePriceList::start().await;
    pricelist.add_documents([
        fake_pricelist::docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000"),
        fake_pricelist::docs::hosting("us-east-1", "ml.g5.xlarge", "1.4080000000"),
    ]);
    let pricing_config = sdk_config(&pricelist.url()).await;
    let cache = Arc::new(
        CachedPrices::builder(LivePrices::from_sdk_config(&pricing_config))
            .fallback(Snapshot::bundled())
            .build(),
    );
    let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
    let t0 = Instant::now();
    cache.price(&key).await.unwrap();
    f.cold_lookup_ms = t0.elapsed().as_secs_f64() * 1e3;
    let n = scale(1_000_000);
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(cache.price(&key).await.unwrap());
    }
    f.warm_lookup_ns = t0.elapsed().as_nanos() as f64 / n as f64;

    let cold = Arc::new(
        CachedPrices::builder(LivePrices::from_sdk_config(&pricing_config))
            .fallback(Snapshot::bundled())
            .build(),
    );
    let before = pricelist.request_count();
    let key = PriceKey::hosting("us-east-1", "ml.g5.xlarge");
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let cold = cold.clone();
            let key = key.clone();
            tokio::spawn(async move { cold.price(&key).await })
        })
        .collect();
    for c in callers {
        let _ = c.await.unwrap();
    }
    f.cold_requests_for_1000_callers = (pricelist.request_count() - before) as u64;

    // Ledger writer alone: receipts straight into the sink.
    let (records_per_s, writer_bytes) = ledger_throughput(&config, scale(200_000)).await;
    f.ledger_records_per_s = records_per_s;
    f.ledger_writer_bytes = writer_bytes;

    f.fleet = fleet_figures(&config, &metered).await;

    // Heap allocations per call (the loopback server's included, alike on both sides).
    f.raw_allocations_per_call = allocations_per_call(&raw, scale(20_000)).await;
    f.metered_allocations_per_call = allocations_per_call(&metered, scale(20_000)).await;

    // Memory: live heap with the metered client after warm-up, then after a million calls.
    // Bytes allocated from here on and not freed: a client that kept per-call state
    // would show it as growth between the two readings. The earlier clients and
    // their connections go first, and this client gets a server and connections of
    // its own, made while counting: memory allocated before counting and freed
    // during it (an idle connection expiring) would read as a shrinking heap.
    drop((raw, metered, ledger, config));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // From zero: the counting phases before this one leave an offset of their own
    // (frees, while counting, of memory allocated while not), which read as a
    // negative heap.
    LIVE_BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let url = start_runtime_server().await;
    let client = Caller::Metered(metered_client(&sdk_config(&url).await).build().unwrap());
    run(&client, 6_400, 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.client_bytes_before = live_bytes();
    f.calls_for_memory = scale(1_000_000);
    run(&client, f.calls_for_memory, 64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.client_bytes_after_1m_calls = live_bytes();

    print_table(&f);
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").to_owned());
    let path = std::path::Path::new(&dir).join("sagemeter-bench.json");
    std::fs::write(&path, serde_json::to_string_pretty(&f).unwrap()).unwrap();
    println!("\nwritten to {}", path.display());
}

/// The method's own lean: each side against an identical twin, compared exactly
/// as raw is compared with metered. Ratios near 1.00 mean the order of the runs
/// and the host's drift favour neither side.
async fn control(config: &aws_types::SdkConfig, raw: &Caller, metered: &Caller) {
    let raw_twin = Caller::Raw(aws_sdk_sagemakerruntime::Client::new(config));
    let metered_twin = Caller::Metered(metered_client(config).build().unwrap());
    for (name, a, b) in [
        ("raw / raw", raw, &raw_twin),
        ("metered / metered", metered, &metered_twin),
        ("raw / metered", raw, metered),
    ] {
        let c = compare(&[a, b], scale(500), 1, ROUNDS_C1).await;
        let (q1, q3) = c.ratio_quartiles(1, 0);
        println!(
            "{name:<20} concurrency 1: ratio {:.3} (middle half {q1:.3}–{q3:.3}), \
             added CPU {:.2} µs per call",
            c.ratio(1, 0),
            c.added_cpu_us(1, 0)
        );
    }
}

async fn allocations_per_call(caller: &Caller, calls: usize) -> f64 {
    COUNTING.store(true, Ordering::SeqCst);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let r = run(caller, calls, 1).await;
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    COUNTING.store(false, Ordering::SeqCst);
    allocations as f64 / r.calls as f64
}

async fn ledger_throughput(config: &aws_types::SdkConfig, records: usize) -> (f64, i64) {
    let dir = tempfile::tempdir().unwrap();
    let sink = sagemeter::ledger::JsonlLedger::open(dir.path().join("throughput.jsonl")).unwrap();
    // One real receipt, recorded many times.
    let url = start_runtime_server().await;
    let _ = config;
    let client = metered_client(&sdk_config(&url).await).build().unwrap();
    let receipt = client
        .invoke_endpoint()
        .endpoint_name("bench")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap()
        .into_parts()
        .1;
    // Records written to the file per second: when the queue is full, wait for the
    // writer instead of dropping, so that this measures the writer, not the queue.
    COUNTING.store(true, Ordering::SeqCst);
    let base = live_bytes();
    let mut peak = 0;
    let t0 = Instant::now();
    for i in 0..records {
        while sink.try_record(&receipt).is_err() {
            std::thread::yield_now();
        }
        if i % 10_000 == 0 {
            peak = peak.max(live_bytes() - base);
        }
    }
    sink.flush().await.unwrap();
    let per_s = sink.stats().written as f64 / t0.elapsed().as_secs_f64();
    COUNTING.store(false, Ordering::SeqCst);
    sink.shutdown().await.unwrap();
    (per_s, peak)
}

/// A fake DynamoDB answering every UpdateItem as DynamoDB would the fleet's
/// first write of an item, counting the requests.
#[cfg(feature = "fleet")]
async fn start_dynamodb_fake() -> (String, Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::AtomicU64;
    let requests = Arc::new(AtomicU64::new(0));
    let counted = requests.clone();
    let app = Router::new().route(
        "/",
        post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::Relaxed);
                let mut r = (
                    StatusCode::OK,
                    r#"{"Attributes":{"spent_pico":{"N":"0"},"calls":{"N":"0"}}}"#,
                )
                    .into_response();
                r.headers_mut().insert(
                    "content-type",
                    HeaderValue::from_static("application/x-amz-json-1.0"),
                );
                r
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, requests)
}

/// Fleet on against fleet off, alternating rounds, and the table's requests.
#[cfg(feature = "fleet")]
async fn fleet_figures(config: &aws_types::SdkConfig, off: &Caller) -> FleetFigures {
    let (url, requests) = start_dynamodb_fake().await;
    let flush_every = Duration::from_millis(250);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(&url).await);
    let on = Caller::Metered(
        metered_client(config)
            .fleet(
                sagemeter::fleet::FleetConfig::dynamodb("bench")
                    .dynamodb_client(ddb)
                    .flush_every(flush_every),
            )
            .build()
            .unwrap(),
    );
    let mut g = FleetFigures {
        flush_every_ms: flush_every.as_millis() as u64,
        ..FleetFigures::default()
    };
    let before = requests.load(Ordering::Relaxed);
    let calls_c1 = scale(500);
    let c1 = compare(&[off, &on], calls_c1, 1, ROUNDS_C1).await;
    let calls_c64 = scale(3_200);
    let c64 = compare(&[off, &on], calls_c64, 64, ROUNDS_C64).await;
    g.off_allocations_per_call = allocations_per_call(off, scale(20_000)).await;
    g.on_allocations_per_call = allocations_per_call(&on, scale(20_000)).await;
    if let Caller::Metered(client) = &on {
        // Every call of the fleet-on client, warm-ups included, and its last flush.
        g.calls = client.meter().totals().calls;
        client.meter().shutdown().await.unwrap();
    }
    g.requests = requests.load(Ordering::Relaxed) - before;
    g.requests_per_1000_calls = g.requests as f64 * 1000.0 / g.calls as f64;
    g.off_cps_c1 = c1.cps(0);
    g.on_cps_c1 = c1.cps(1);
    g.ratio_c1 = c1.ratio(1, 0);
    (g.ratio_c1_q1, g.ratio_c1_q3) = c1.ratio_quartiles(1, 0);
    g.added_cpu_us_per_call_c1 = c1.added_cpu_us(1, 0);
    g.off_cps_c64 = c64.cps(0);
    g.on_cps_c64 = c64.cps(1);
    g.ratio_c64 = c64.ratio(1, 0);
    (g.ratio_c64_q1, g.ratio_c64_q3) = c64.ratio_quartiles(1, 0);
    g.added_cpu_us_per_call_c64 = c64.added_cpu_us(1, 0);
    g.added_us_per_call_c1 = 1e6 / g.on_cps_c1 - 1e6 / g.off_cps_c1;
    g.added_us_per_call_c64 = 1e6 / g.on_cps_c64 - 1e6 / g.off_cps_c64;
    g
}

#[cfg(not(feature = "fleet"))]
async fn fleet_figures(_: &aws_types::SdkConfig, _: &Caller) -> FleetFigures {
    FleetFigures::default()
}

fn print_fleet(g: &FleetFigures) {
    if g.calls == 0 {
        println!(
            "
fleet: not measured (build with --features fleet)"
        );
        return;
    }
    println!();
    println!(
        "{:<40} {:>14} {:>14} {:>8}  middle half of the rounds",
        "", "fleet off", "fleet on", "ratio"
    );
    for (name, off, on, ratio, (q1, q3)) in [
        (
            "calls/s, concurrency 1",
            g.off_cps_c1,
            g.on_cps_c1,
            g.ratio_c1,
            (g.ratio_c1_q1, g.ratio_c1_q3),
        ),
        (
            "calls/s, concurrency 64",
            g.off_cps_c64,
            g.on_cps_c64,
            g.ratio_c64,
            (g.ratio_c64_q1, g.ratio_c64_q3),
        ),
    ] {
        println!("{name:<40} {off:>14.0} {on:>14.0} {ratio:>8.3}  {q1:.3}–{q3:.3}");
    }
    println!(
        "{:<40} {:>14.2} {:>14.2}",
        "added time per call (µs), c1 / c64", g.added_us_per_call_c1, g.added_us_per_call_c64
    );
    println!(
        "{:<40} {:>14.2} {:>14.2}",
        "added CPU per call (µs), c1 / c64",
        g.added_cpu_us_per_call_c1,
        g.added_cpu_us_per_call_c64
    );
    println!(
        "{:<40} {:>14.1} {:>14.1}",
        "heap allocations per call", g.off_allocations_per_call, g.on_allocations_per_call
    );
    println!(
        "{:<40} {:>14.3}   ({} requests, {} calls, flush every {} ms)",
        "DynamoDB requests per 1,000 calls",
        g.requests_per_1000_calls,
        g.requests,
        g.calls,
        g.flush_every_ms
    );
}

fn print_table(f: &Figures) {
    println!();
    println!(
        "{:<40} {:>14} {:>14} {:>8}  middle half of the rounds",
        "", "raw", "metered", "ratio"
    );
    let rows = [
        (
            "calls/s, concurrency 1",
            f.raw_cps_c1,
            f.metered_cps_c1,
            f.ratio_c1,
            (f.ratio_c1_q1, f.ratio_c1_q3),
        ),
        (
            "calls/s, concurrency 1, without metrics",
            f.raw_cps_c1,
            f.metered_without_metrics_cps_c1,
            f.ratio_c1_without_metrics,
            (f.ratio_c1_without_metrics_q1, f.ratio_c1_without_metrics_q3),
        ),
        (
            "calls/s, concurrency 64",
            f.raw_cps_c64,
            f.metered_cps_c64,
            f.ratio_c64,
            (f.ratio_c64_q1, f.ratio_c64_q3),
        ),
        (
            "calls/s, concurrency 64, ledger on",
            f.raw_cps_c64,
            f.ledger_cps_c64,
            f.ratio_c64_ledger,
            (f.ratio_c64_ledger_q1, f.ratio_c64_ledger_q3),
        ),
    ];
    for (name, raw, metered, ratio, (q1, q3)) in rows {
        println!("{name:<40} {raw:>14.0} {metered:>14.0} {ratio:>8.3}  {q1:.3}–{q3:.3}");
    }
    println!(
        "{:<40} {:>14}",
        "  receipts the ledger dropped", f.ledger_dropped_c64
    );
    println!(
        "{:<40} {:>14.2}",
        "added CPU per call (µs), ledger off", f.added_cpu_us_per_call
    );
    println!(
        "{:<40} {:>14.2}",
        "  the same, without metrics", f.added_cpu_us_per_call_without_metrics
    );
    println!(
        "{:<40} {:>14.1}",
        "warm price look-up (ns)", f.warm_lookup_ns
    );
    println!(
        "{:<40} {:>14.2}",
        "cold price look-up (ms, loopback)", f.cold_lookup_ms
    );
    println!(
        "{:<40} {:>14}",
        "GetProducts for 1,000 cold callers", f.cold_requests_for_1000_callers
    );
    println!(
        "{:<40} {:>14.0}",
        "ledger records/s", f.ledger_records_per_s
    );
    println!(
        "{:<40} {:>14}",
        "ledger writer peak heap (bytes)", f.ledger_writer_bytes
    );
    println!(
        "{:<40} {:>14.1} {:>14.1}",
        "heap allocations per call", f.raw_allocations_per_call, f.metered_allocations_per_call
    );
    println!(
        "{:<40} {:>14} -> {} after {} calls",
        "live heap (bytes)",
        f.client_bytes_before,
        f.client_bytes_after_1m_calls,
        f.calls_for_memory
    );
    print_fleet(&f.fleet);
}
