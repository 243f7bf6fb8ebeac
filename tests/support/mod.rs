//! Test support shared by every integration-test binary (`tests/accounting.rs`,
//! `tests/cli.rs`, `tests/emulator.rs`, `tests/fleet.rs`, `tests/metering.rs`), each of which declares
//! `pub mod support;` once.
//!
//! The module is `pub` in each binary, and so are the helpers below: a binary uses
//! only some of them, and public items are not reported as dead code, while a
//! private helper no test reaches still is.
//!
//! `fake_pricelist.rs`, `fake_sagemaker.rs` and `fake_stream.rs` are also included
//! by `benches/overhead.rs` and the examples: keep them free of `super::` paths.

pub mod by_hand;
pub mod emulator;
pub mod fake_pricelist;
pub mod fake_sagemaker;
pub mod fake_stream;
#[cfg(any(feature = "fleet", feature = "account"))]
pub mod fault_proxy;
pub mod logs;
pub mod receipts;
pub mod spans;

/// The counter `name` in `recorder`'s snapshot: each label set (as `(key, value)`
/// pairs, in the key's order) with its count.
pub fn counter_values(
    recorder: &metrics_util::debugging::DebuggingRecorder,
    name: &str,
) -> Vec<(Vec<(String, String)>, u64)> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == name)
        .map(|(key, _, _, value)| {
            let labels = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let metrics_util::debugging::DebugValue::Counter(n) = value else {
                panic!("{name} is a counter")
            };
            (labels, n)
        })
        .collect()
}

/// An SDK client of `config` with `meter`'s [`MeteringInterceptor`] on it: what a
/// user who keeps their SDK client writes.
///
/// [`MeteringInterceptor`]: sagemeter::client::MeteringInterceptor
pub fn intercepted(
    config: &aws_types::SdkConfig,
    meter: &sagemeter::Meter,
) -> aws_sdk_sagemakerruntime::Client {
    aws_sdk_sagemakerruntime::Client::from_conf(
        aws_sdk_sagemakerruntime::config::Builder::from(config)
            .interceptor(sagemeter::client::MeteringInterceptor::new(meter.clone()))
            .build(),
    )
}

/// A SageMaker Runtime that accepts the first request it is sent (202, as an
/// `InvokeEndpointAsync` submission is accepted) but cuts its answer's body off
/// short of its `Content-Length`, and refuses every later one with 503
/// `ServiceUnavailable`: its URL, and the count of requests it answered.
pub async fn accepting_once_then_unavailable()
-> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                // The whole request (its headers, and the body they announce),
                // so that the answer is not a reset of unread bytes.
                let whole = |request: &[u8]| {
                    let text = String::from_utf8_lossy(request).to_ascii_lowercase();
                    let Some(end) = text.find("\r\n\r\n") else {
                        return false;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |n| n.trim().parse::<usize>().unwrap_or(0));
                    request.len() >= end + 4 + length
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !whole(&request) {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer: &[u8] = match seen.fetch_add(1, Ordering::SeqCst) {
                    // 15 of the 100 bytes announced.
                    0 => {
                        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n\
                        X-Amzn-SageMaker-OutputLocation: s3://fake-bucket/output/1.out\r\n\
                        Connection: close\r\nContent-Length: 100\r\n\r\n{\"InferenceId\":"
                    }
                    _ => {
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                        x-amzn-ErrorType: ServiceUnavailable\r\nConnection: close\r\n\
                        Content-Length: 25\r\n\r\n{\"message\":\"unavailable\"}"
                    }
                };
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), requests)
}

/// An SDK client configuration from `config`, for SageMaker at `url`, trying
/// each request 3 times, 5 ms apart and more.
pub fn three_attempts_at(
    config: &aws_types::SdkConfig,
    url: &str,
) -> aws_sdk_sagemakerruntime::config::Builder {
    aws_sdk_sagemakerruntime::config::Builder::from(config)
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(5)),
        )
        .endpoint_url(url)
}

/// A client of a fake's `rt` endpoint (2 × ml.m5.xlarge) priced from overrides
/// only, with a fixed profile: no discovery, no Price List. us-east-1's public
/// rates: ml.m5.xlarge hosting 0.23 USD/h, data in and out 0.016 USD/GB.
pub async fn rt_priced_by_overrides(
    fake: &fake_sagemaker::FakeSageMaker,
) -> sagemeter::ClientBuilder {
    m5_priced_by_overrides(fake, "rt", 2).await
}

/// A client of the fake's `endpoint`, one variant `AllTraffic` of `instances` ×
/// ml.m5.xlarge, priced as [`rt_priced_by_overrides`] is.
pub async fn m5_priced_by_overrides(
    fake: &fake_sagemaker::FakeSageMaker,
    endpoint: &str,
    instances: u32,
) -> sagemeter::ClientBuilder {
    use sagemeter::endpoint::{EndpointProfile, VariantProfile};
    use sagemeter::pricing::PriceKey;
    let r = "us-east-1";
    let usd = |s: &str| s.parse::<sagemeter::Decimal>().unwrap();
    sagemeter::Client::builder(&fake.sdk_config().await)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            endpoint,
            vec![VariantProfile::instance(
                "AllTraffic",
                "ml.m5.xlarge",
                instances,
            )],
        ))
        .price_override(PriceKey::hosting(r, "ml.m5.xlarge"), usd("0.23"))
        .price_override(PriceKey::DataIn { region: r.into() }, usd("0.016"))
        .price_override(PriceKey::DataOut { region: r.into() }, usd("0.016"))
}

/// A price source with no price for anything: every line not priced by an
/// override is unpriced.
#[derive(Debug)]
pub struct NoPrices;

impl sagemeter::pricing::PriceSource for NoPrices {
    fn price<'a>(
        &'a self,
        key: &'a sagemeter::pricing::PriceKey,
    ) -> sagemeter::pricing::BoxFuture<
        'a,
        Result<sagemeter::pricing::Rate, sagemeter::pricing::PriceError>,
    > {
        Box::pin(async move { Err(sagemeter::pricing::PriceError::NotFound { key: key.clone() }) })
    }
}

/// A price source that answers only once let through (`gate` given permits): a
/// cold process whose Price List look-ups hang. us-east-1's public rates when it
/// does: ml.m5.xlarge 0.23 USD/h (hosting and async inference), data in and out
/// 0.016 USD/GB; nothing else.
#[derive(Debug)]
pub struct GatedPrices {
    pub gate: std::sync::Arc<tokio::sync::Semaphore>,
}

impl sagemeter::pricing::PriceSource for GatedPrices {
    fn price<'a>(
        &'a self,
        key: &'a sagemeter::pricing::PriceKey,
    ) -> sagemeter::pricing::BoxFuture<
        'a,
        Result<sagemeter::pricing::Rate, sagemeter::pricing::PriceError>,
    > {
        use sagemeter::pricing::{PriceError, PriceKey, PriceOrigin, Provenance, Rate};
        Box::pin(async move {
            let _pass = self.gate.acquire().await;
            let usd = match key {
                PriceKey::Hosting { instance_type, .. }
                | PriceKey::AsyncInference { instance_type, .. }
                    if instance_type == "ml.m5.xlarge" =>
                {
                    "0.23"
                }
                PriceKey::DataIn { .. } | PriceKey::DataOut { .. } => "0.016",
                _ => return Err(PriceError::NotFound { key: key.clone() }),
            };
            Ok(Rate::new(
                key.clone(),
                usd.parse().expect("a decimal"),
                Provenance::new(PriceOrigin::Live),
            ))
        })
    }
}

/// Cuts the file at `path` to `len` bytes, as a crash, a full disk or another
/// program (logrotate's `copytruncate`) leaves a ledger.
pub fn cut_to(path: &std::path::Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Submits an `InvokeEndpointAsync` of `endpoint` whose input, `input_bytes`
/// long, is in the fake's S3 bucket; the submission must be accepted.
pub async fn submit_async(
    client: &sagemeter::Client,
    endpoint: &str,
    input_bytes: u64,
) -> sagemeter::client::AsyncInvocation {
    client
        .invoke_endpoint_async()
        .endpoint_name(endpoint)
        .input_location("s3://fake-bucket/input/1.json")
        .input_bytes(input_bytes)
        .send()
        .await
        .expect("the fake queues the submission")
}

/// An `io::Write` into shared memory (e.g. an EMF sink's writer), read back with
/// [`text`](Self::text).
#[derive(Clone, Default)]
pub struct MemoryWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for MemoryWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MemoryWriter {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// What `usd_per_month` of GB-month storage costs from `from` to `to` by AWS's
/// rule: each part of the stretch is billed at its share of its own calendar
/// month (UTC). For tests whose window ends at the real time, so that the
/// expected figure follows the months the window falls in; worked out here from
/// the months' lengths, not by the crate.
pub fn gb_month_storage(
    usd_per_month: rust_decimal::Decimal,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> rust_decimal::Decimal {
    use chrono::{Datelike, NaiveDate};
    let days_in = |at: chrono::DateTime<chrono::Utc>| -> i64 {
        let first = NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap();
        let next = first + chrono::Months::new(1);
        (next - first).num_days()
    };
    let midnight_after_month = |at: chrono::DateTime<chrono::Utc>| {
        let first = NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap();
        (first + chrono::Months::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    };
    let mut total = rust_decimal::Decimal::ZERO;
    let mut at = from;
    while at < to {
        let stop = to.min(midnight_after_month(at));
        let nanos = (stop - at).num_nanoseconds().unwrap();
        total += usd_per_month * rust_decimal::Decimal::from(nanos)
            / rust_decimal::Decimal::from(days_in(at) * 86_400_000_000_000);
        at = stop;
    }
    total
}

/// A wall clock a test can set, backwards too (as NTP or a resumed VM steps it):
/// `ManualTimeSource` only moves forward.
#[derive(Debug, Clone)]
pub struct SettableClock(std::sync::Arc<std::sync::Mutex<std::time::SystemTime>>);

impl SettableClock {
    /// A clock reading `at`.
    pub fn new(at: std::time::SystemTime) -> Self {
        SettableClock(std::sync::Arc::new(std::sync::Mutex::new(at)))
    }

    /// Makes it read `at` from now on.
    pub fn set(&self, at: std::time::SystemTime) {
        *self.0.lock().unwrap() = at;
    }
}

impl aws_smithy_async::time::TimeSource for SettableClock {
    fn now(&self) -> std::time::SystemTime {
        *self.0.lock().unwrap()
    }
}

/// A manual clock at a fixed instant (2027-01-15), and the same clock shared, to
/// give a meter (`time_source`) while the test moves it on.
pub fn manual_clock() -> (
    aws_smithy_async::test_util::ManualTimeSource,
    aws_smithy_async::time::SharedTimeSource,
) {
    let time = aws_smithy_async::test_util::ManualTimeSource::new(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
    );
    let shared = aws_smithy_async::time::SharedTimeSource::new(time.clone());
    (time, shared)
}

/// An `InvokeEndpoint` of `endpoint` with an empty JSON body, which must
/// succeed: its receipt.
pub async fn call(client: &sagemeter::Client, endpoint: &str) -> sagemeter::Cost {
    client
        .invoke_endpoint()
        .endpoint_name(endpoint)
        .body(aws_sdk_sagemakerruntime::primitives::Blob::new("{}"))
        .send()
        .await
        .expect("the call succeeds")
        .into_parts()
        .1
}

/// A retry classifier that decides nothing and counts the attempts the SDK
/// classified: the SDK runs it after every interceptor's `read_after_attempt`
/// (sagemeter's watch's too), so a test that puts it on an SDK client knows
/// when an attempt's end was seen, whatever real time that took.
#[derive(Debug, Clone, Default)]
pub struct AttemptsEnded(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl AttemptsEnded {
    /// An SDK client configuration from `config`, retrying a failed attempt once,
    /// after 1 s of real time (without jitter: long enough for a test to move the
    /// meter's clock meanwhile), with this counting the attempts seen to end.
    pub fn retrying_once_after_a_second(
        &self,
        config: &aws_types::SdkConfig,
    ) -> aws_sdk_sagemakerruntime::config::Builder {
        aws_sdk_sagemakerruntime::config::Builder::from(config)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(std::time::Duration::from_secs(1))
                    .with_use_static_exponential_base(true),
            )
            .retry_classifier(self.clone())
    }

    /// Waits (up to 10 s) until `n` attempts ended.
    pub async fn wait_for(&self, n: u32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.0.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} attempts ended",
                self.0.load(std::sync::atomic::Ordering::SeqCst)
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
}

impl aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry for AttemptsEnded {
    fn classify_retry(
        &self,
        _ctx: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryAction {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        aws_smithy_runtime_api::client::retries::classifiers::RetryAction::NoActionIndicated
    }

    fn name(&self) -> &'static str {
        "AttemptsEnded"
    }
}

/// What a failing `credential_process` prints on its standard error: the SDK's
/// error quotes it whole.
#[cfg(unix)]
pub const PROCESS_SECRET: &str = "CPSTDERRSECRET-7f3a";

/// A `credential_process` that fails (exit 1) printing [`PROCESS_SECRET`] on its
/// standard error, in `dir`; its path.
#[cfg(unix)]
pub fn failing_credential_process(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho 'fetching token with password={PROCESS_SECRET} failed' >&2\nexit 1\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    script
}
