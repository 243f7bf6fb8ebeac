//! [`Queued`]: any sink's `record` off the call path, on a thread of its own.

use super::CostSink;
use crate::billing::Cost;
use crate::ledger::SinkStats;
use crate::ledger::{Counters, WarnLimiter};
use crate::pricing::PriceChange;
use crate::util::BoxFuture;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// How many receipts a [`Queued`] sink holds by default before it drops them.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8_192;

/// A sink that hands each receipt to `S` on a thread of its own, so that a
/// `record` that blocks (a synchronous HTTP or Kafka client, a database insert)
/// holds up no call: a blocking `record` on the call path holds up its Tokio
/// worker, and the calls waiting there are billed the wait (see [`CostSink`]).
///
/// Receipts wait in a bounded queue ([`DEFAULT_QUEUE_CAPACITY`], or
/// [`with_capacity`](Self::with_capacity)); when it is full, a receipt is dropped
/// and counted rather than wait: [`stats`](Self::stats), the
/// `sagemeter_sink_dropped_total{sink="queued",reason="full"}` counter and a WARN
/// at most every ten seconds, as the ledgers do. The call, its totals and budgets
/// have the receipt all the same. `flush` resolves once every receipt queued before
/// it reached `S` and `S` flushed (after a shutdown began, cancelled or not, once the
/// thread has handed `S` all it had); `shutdown` closes the queue (receipts recorded
/// from then on, a call that ends meanwhile say, are refused and counted), waits
/// until the thread has handed `S` every receipt queued before and ended, then
/// shuts `S` down: `S` is given no receipt after its shutdown. `S` is shut down
/// once: a later `shutdown` (or one run at the same time) returns how the first
/// ended, and one after a shutdown of `S` that was cut off (a deadline that ran
/// out inside it: `S` may hang) fails at once, saying so, without asking `S`
/// again. A panic in
/// `S::record` is caught on the thread: that receipt is lost and counted as a
/// dropped one is (`lost_on_error` in [`stats`](Self::stats), the counter
/// `sagemeter_sink_dropped_total{sink="queued",reason="panicked"}` and a WARN
/// naming `S` at most every ten seconds), the next ones go on. `flush` and
/// `shutdown` do not fail for it: the receipt reached `S`, which lost it, as a
/// sink the meter calls itself does (see [`CostSink::record`]); watch the counter.
///
/// Dropped without `shutdown`, or after a `shutdown` that did not end (cancelled:
/// a client's `shutdown_within` that ran out; the last handle to it: a client
/// dropped when `main` returns), it does the same: the queue is closed, `S` is
/// handed every receipt queued, then shut down (its `shutdown` run on the thread,
/// a failure logged as an ERROR), and the drop waits for all of it, as a ledger's
/// does. That
/// blocks the dropping thread until `S` is done: a Tokio worker, if the last
/// `Client` is dropped in a task (await `shutdown()` there instead).
///
/// ```no_run
/// # async fn run(sdk_config: aws_types::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use sagemeter::sink::{CostSink, Queued};
///
/// /// Posts each receipt to an internal billing service, synchronously.
/// #[derive(Debug)]
/// struct BillingApi;
///
/// impl CostSink for BillingApi {
///     fn record(&self, cost: &sagemeter::Cost) {
///         // a blocking HTTP POST of `cost` here: fine on Queued's thread
/// #       let _ = cost;
///     }
/// }
///
/// let client = sagemeter::Client::builder(&sdk_config)
///     .sink(Queued::new(BillingApi))
///     .build()?;
/// // ...
/// client.shutdown().await?; // every queued receipt reaches BillingApi first
/// # Ok(()) }
/// ```
pub struct Queued<S> {
    sink: Arc<S>,
    /// `None` once shut down.
    queue: Mutex<Option<mpsc::Sender<Msg>>>,
    /// Closed (its sender dropped) when the thread ends: every message queued
    /// has been handed over.
    thread_ended: watch::Receiver<()>,
    /// The thread, joined on drop; `None` once joined.
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set by the drop of a queue whose `S` was not shut down (no `shutdown`, or
    /// one cancelled before it ended): the thread shuts `S` down once it has
    /// handed it everything.
    dropped_open: Arc<AtomicBool>,
    /// Set once a shutdown of `S` has begun (by `shutdown` or the thread):
    /// `S` is asked to shut down once, never again after a deadline cut its
    /// own shutdown off (it may hang).
    sink_shut: Arc<AtomicBool>,
    /// How `S`'s shutdown ended, once it has: every later `shutdown` returns it
    /// (an error's kind and message) rather than shut `S` down again.
    shut_result: tokio::sync::OnceCell<Result<(), (io::ErrorKind, String)>>,
    /// Sets `sink_shut`, then runs `S`'s shutdown to its end on the calling
    /// thread, in a runtime of its own, logging a failure as an ERROR.
    shut_sink: Arc<dyn Fn() + Send + Sync>,
    capacity: usize,
    counters: Arc<Counters>,
    warn: WarnLimiter,
    /// Limits the WARNs of price changes dropped apart from receipts': a full
    /// queue drops both, and the receipts' WARN must not hide the changes'.
    change_warn: WarnLimiter,
}

enum Msg {
    Receipt(Box<Cost>),
    PriceChange(Box<PriceChange>),
    /// Answered once every message before it was handed to the sink.
    Reached(oneshot::Sender<()>),
}

impl<S: CostSink + 'static> Queued<S> {
    /// `sink` behind a queue of [`DEFAULT_QUEUE_CAPACITY`] receipts.
    pub fn new(sink: S) -> Self {
        Self::with_capacity(sink, DEFAULT_QUEUE_CAPACITY)
    }

    /// `sink` behind a queue of `capacity` receipts: at least 1 and at most
    /// [`MAX_CAPACITY`](crate::ledger::MAX_CAPACITY) (Tokio's channel limit), a
    /// capacity outside that range being taken as the nearest of the two.
    ///
    /// # Panics
    /// If the thread cannot be started (the OS refused one), as
    /// [`std::thread::spawn`] does.
    pub fn with_capacity(sink: S, capacity: usize) -> Self {
        Self::start(sink, capacity, None)
    }

    /// [`with_capacity`](Self::with_capacity), the thread's metrics going to
    /// `recorder` when given rather than to the process's (a test's local
    /// recorder is its own thread's only).
    fn start(
        sink: S,
        capacity: usize,
        recorder: Option<Arc<dyn metrics::Recorder + Send + Sync>>,
    ) -> Self {
        let capacity = capacity.clamp(1, crate::ledger::MAX_CAPACITY);
        let sink = Arc::new(sink);
        let counters = Arc::new(Counters::default());
        let (tx, mut rx) = mpsc::channel::<Msg>(capacity);
        let (on_thread, written) = (sink.clone(), counters.clone());
        let (ended, thread_ended) = watch::channel(());
        let dropped_open = Arc::new(AtomicBool::new(false));
        let sink_shut = Arc::new(AtomicBool::new(false));
        let shut_sink: Arc<dyn Fn() + Send + Sync> = {
            let (sink, shut) = (sink.clone(), sink_shut.clone());
            // `S`'s own async shutdown may need a Tokio timer or I/O, and the
            // thread this runs on is in no runtime.
            Arc::new(move || {
                shut.store(true, Ordering::Release);
                let done = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(sink.shutdown()));
                if let Err(error) = done.and_then(|r| r) {
                    tracing::error!(target: "sagemeter", sink = sink.name(),
                        %error, "a queued sink dropped before its shutdown() ended could \
                        not shut its sink down");
                }
            })
        };
        let (shut_down_here, shut_here) = (dropped_open.clone(), shut_sink.clone());
        let shut_already = sink_shut.clone();
        let thread = std::thread::Builder::new()
            .name("sagemeter-queued-sink".into())
            .spawn(move || {
                // Dropped when the thread ends, however it ends.
                let _ended = ended;
                let _recorder = recorder
                    .as_deref()
                    .map(|r| metrics::set_default_local_recorder(r));
                let (warn, change_warn) = (WarnLimiter::new(), WarnLimiter::new());
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Msg::Receipt(cost) => {
                            let recorded =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    on_thread.record(&cost)
                                }));
                            match recorded {
                                Ok(()) => {
                                    written.written.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => {
                                    let lost =
                                        written.lost_on_error.fetch_add(1, Ordering::Relaxed) + 1;
                                    super::count_panicked("queued");
                                    if warn.should_warn() {
                                        tracing::warn!(target: "sagemeter",
                                            sink = on_thread.name(), lost,
                                            call_id = %cost.call_id,
                                            "a queued cost sink panicked recording a receipt: it \
                                             missed this receipt (`lost` in all so far; logged \
                                             at most every 10 s), the next ones go on");
                                    }
                                }
                            }
                        }
                        Msg::PriceChange(change) => {
                            let told =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    on_thread.record_price_change(&change)
                                }));
                            if told.is_err() && change_warn.should_warn() {
                                tracing::warn!(target: "sagemeter",
                                    sink = on_thread.name(), key = %change.key,
                                    "a queued cost sink panicked recording a price change: it \
                                     missed this change (logged at most every 10 s), the next \
                                     receipts and changes go on");
                            }
                        }
                        Msg::Reached(ack) => {
                            let _ = ack.send(());
                        }
                    }
                }
                // Dropped before a `shutdown` reached `S` (none, or one cancelled): `S`
                // has everything, and is shut down here as `shutdown` would have.
                if shut_down_here.load(Ordering::Acquire) && !shut_already.load(Ordering::Acquire) {
                    shut_here();
                }
            })
            .expect("the OS refused a thread for a queued sink");
        Queued {
            sink,
            queue: Mutex::new(Some(tx)),
            thread_ended,
            thread: Some(thread),
            dropped_open,
            sink_shut,
            shut_result: tokio::sync::OnceCell::new(),
            shut_sink,
            capacity,
            counters,
            warn: WarnLimiter::new(),
            change_warn: WarnLimiter::new(),
        }
    }
}

impl<S> Queued<S> {
    /// What became of the receipts recorded so far: `accepted` into the queue,
    /// `written` (handed to the sink), `dropped_full`, `refused_closed` (after
    /// shutdown), `lost_on_error` (the sink panicked on them; no `flush` reports
    /// them).
    pub fn stats(&self) -> SinkStats {
        self.counters.stats()
    }

    /// The sink behind the queue.
    pub fn inner(&self) -> &S {
        &self.sink
    }

    fn sender(&self) -> Option<mpsc::Sender<Msg>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until every message queued before now has reached the sink; false
    /// when the queue is shut down (nothing more is queued; what was may still
    /// be on its way to the sink until the thread ends).
    async fn reached(&self) -> bool {
        let Some(queue) = self.sender() else {
            return false;
        };
        let (ack, done) = oneshot::channel();
        queue.send(Msg::Reached(ack)).await.is_ok() && done.await.is_ok()
    }

    #[cold]
    fn dropped(&self, full: bool) {
        let (counter, reason) = if full {
            (&self.counters.dropped_full, "full")
        } else {
            (&self.counters.refused_closed, "closed")
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!("sagemeter_sink_dropped_total", "sink" => "queued", "reason" => reason)
            .increment(1);
        if self.warn.should_warn() {
            if full {
                tracing::warn!(target: "sagemeter", sink = "queued", dropped = n,
                    capacity = self.capacity,
                    "receipt dropped: a queued sink's queue is full (the sink cannot keep up); \
                     the receipt is still returned to the caller and counted in the totals");
            } else {
                tracing::warn!(target: "sagemeter", sink = "queued", refused = n,
                    "receipt refused: the queued sink was shut down");
            }
        }
    }
}

impl<S> Drop for Queued<S> {
    /// Dropping it closes the queue; the thread hands `S` every receipt queued,
    /// shuts `S` down unless a `shutdown` reached `S` (one cut off in `S`'s own
    /// shutdown, which may hang, is not run again), and ends, and this waits
    /// for it (as a ledger's drop does), so that a program that forgets
    /// `shutdown()`, or whose `shutdown()` was cancelled (a deadline that ran
    /// out), still loses no receipt the queue accepted. The thread already ended
    /// (a cancelled shutdown that had closed the queue), `S` is shut down on a
    /// thread of its own, this waiting for it.
    fn drop(&mut self) {
        let open = self
            .queue
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if !self.sink_shut.load(Ordering::Acquire) {
            self.dropped_open.store(true, Ordering::Release);
        }
        drop(open);
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Dropped by `S` on the thread itself: it ends once this returns.
        if thread.thread().id() == std::thread::current().id() {
            return;
        }
        if thread.join().is_err() {
            tracing::error!(target: "sagemeter", sink = "queued",
                "a queued sink's thread panicked: the receipts still queued were lost");
        }
        // The thread had ended before this drop: a shutdown had closed the queue
        // and was cancelled before it shut `S` down.
        if !self.sink_shut.load(Ordering::Acquire) {
            let shut = self.shut_sink.clone();
            let helper = std::thread::Builder::new()
                .name("sagemeter-queued-sink-shutdown".into())
                .spawn(move || shut());
            if helper.map(|h| h.join()).is_err() {
                tracing::error!(target: "sagemeter", sink = "queued",
                    "a queued sink's shutdown, cancelled before it ended, could not be \
                     finished: what its sink kept for its shutdown may be lost");
            }
        }
    }
}

impl<S> fmt::Debug for Queued<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queued")
            .field("sink", &std::any::type_name::<S>())
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S: CostSink + 'static> CostSink for Queued<S> {
    fn record(&self, cost: &Cost) {
        let Some(queue) = self.sender() else {
            return self.dropped(false);
        };
        match queue.try_reserve() {
            Ok(permit) => {
                permit.send(Msg::Receipt(Box::new(cost.clone())));
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(())) => self.dropped(true),
            Err(mpsc::error::TrySendError::Closed(())) => self.dropped(false),
        }
    }

    /// The sink's own name.
    fn name(&self) -> &str {
        self.sink.name()
    }

    /// Queued as a receipt is. When the queue is full or shut down the change is
    /// dropped with a WARN (at most every 10 s, as the ledger does for its
    /// `price_change` records), not counted with the receipts.
    fn record_price_change(&self, change: &PriceChange) {
        let queued = self.sender().is_some_and(|queue| {
            queue
                .try_send(Msg::PriceChange(Box::new(change.clone())))
                .is_ok()
        });
        if !queued && self.change_warn.should_warn() {
            tracing::warn!(target: "sagemeter", sink = "queued", key = %change.key,
                "a price change was dropped: the queued sink's queue is full (the sink \
                 cannot keep up) or it was shut down");
        }
    }

    fn flush(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            if !self.reached().await {
                // A shutdown has closed the queue (it may have been cancelled
                // since, or still be running): the thread is still handing `S`
                // what was queued before, and ends once it has.
                let _ = self.thread_ended.clone().changed().await;
            }
            self.sink.flush().await
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            // Closed first: a receipt recorded from now on is refused and counted,
            // not queued behind a wait it would outlast (handed to `S` after its
            // shutdown, or left on the thread when this returns).
            self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
            // The thread ends once the queue is empty and the last sender is gone
            // (a `record` or `flush` holding one lets it go once its message is in).
            let mut ended = self.thread_ended.clone();
            let _ = ended.changed().await;
            // One shutdown of `S` at a time; the others wait for its result.
            let result = self
                .shut_result
                .get_or_init(|| async {
                    // Not set if this is dropped before here: the drop then shuts
                    // `S` down. Set before `S`'s shutdown: one cut off by a
                    // deadline there (`S` may hang), which leaves no result, is
                    // run again neither by a later `shutdown` nor by the drop.
                    if self.sink_shut.swap(true, Ordering::AcqRel) {
                        return Err((
                            io::ErrorKind::Other,
                            format!(
                                "the shutdown of sink {} was cut off earlier (a deadline ran \
                                 out or it was cancelled) and is not run again: it may hang",
                                self.sink.name()
                            ),
                        ));
                    }
                    self.sink
                        .shutdown()
                        .await
                        .map_err(|e| (e.kind(), e.to_string()))
                })
                .await;
            result
                .clone()
                .map_err(|(kind, message)| io::Error::new(kind, message))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::mpsc as std_mpsc;
    use std::task::{Context, Waker};
    use std::time::Duration;

    pub(super) fn cost(id: &str) -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": id, "at": "2026-11-02T10:00:00Z", "endpoint": "rt",
            "variant": "AllTraffic", "allocation": "busy_time",
            "usage": {"operation": "invoke_endpoint", "latency_us": 1000, "bytes_in": 1,
                      "bytes_out": 1, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [], "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        }))
        .unwrap()
    }

    /// A sink whose `record` blocks until the test lets it go, one receipt per
    /// token, and that notes what it was handed and when it was shut down.
    #[derive(Debug)]
    pub(super) struct Gated {
        /// What happened to it, in order: each receipt's call id, `shutdown`.
        pub(super) events: Mutex<Vec<String>>,
        /// Said when a `record` begins (the call id).
        entered: Mutex<std_mpsc::Sender<String>>,
        /// One token lets one `record` through (at most 10 s waited, so that a
        /// failing test ends).
        gate: Mutex<std_mpsc::Receiver<()>>,
        /// Call ids whose `record` panics.
        pub(super) panics_on: Vec<String>,
    }

    /// The sink, the receiver of its `entered` signals and the sender of tokens.
    pub(super) fn gated(
        panics_on: Vec<String>,
    ) -> (Gated, std_mpsc::Receiver<String>, std_mpsc::Sender<()>) {
        let (entered, entered_rx) = std_mpsc::channel();
        let (open, gate) = std_mpsc::channel();
        let sink = Gated {
            events: Mutex::new(Vec::new()),
            entered: Mutex::new(entered),
            gate: Mutex::new(gate),
            panics_on,
        };
        (sink, entered_rx, open)
    }

    impl CostSink for Gated {
        fn record(&self, cost: &Cost) {
            let _ = self.entered.lock().unwrap().send(cost.call_id.clone());
            let _ = self
                .gate
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            if self.panics_on.contains(&cost.call_id) {
                panic!("a sink that fails on {}", cost.call_id);
            }
            self.events.lock().unwrap().push(cost.call_id.clone());
        }

        fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
            self.events.lock().unwrap().push("shutdown".to_owned());
            Box::pin(async { Ok(()) })
        }
    }

    /// A receipt recorded while the queue is being shut down (a call that ended
    /// after the meter's wait for the calls in flight) is either handed to the
    /// sink before the sink's own shutdown, or refused and counted: never
    /// counted accepted and then handed to a sink already shut down, or left on
    /// the thread when `shutdown` returns.
    fn change() -> PriceChange {
        PriceChange {
            at: "2026-09-01T00:00:00Z".parse().unwrap(),
            key: crate::pricing::PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
            unit: crate::pricing::PriceUnit::Hour,
            old_usd_per_unit: rust_decimal::Decimal::new(23, 2),
            new_usd_per_unit: rust_decimal::Decimal::new(20, 2),
            old_effective_date: None,
            new_effective_date: None,
            sku: None,
        }
    }

    /// Notes receipts and price changes in order; panics on every price change
    /// when `panics`, and blocks each `record` until let go when `gate` is set.
    #[derive(Debug, Default)]
    struct Changes {
        events: Mutex<Vec<String>>,
        panics: bool,
        gate: Option<Mutex<std_mpsc::Receiver<()>>>,
    }

    impl CostSink for Changes {
        fn record(&self, cost: &Cost) {
            if let Some(gate) = &self.gate {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(10));
            }
            self.events.lock().unwrap().push(cost.call_id.clone());
        }

        fn record_price_change(&self, change: &PriceChange) {
            if self.panics {
                panic!("a sink that fails on price changes");
            }
            self.events.lock().unwrap().push(format!(
                "{} -> {}",
                change.old_usd_per_unit, change.new_usd_per_unit
            ));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sink_that_panics_on_a_price_change_misses_it_and_takes_the_next_receipts() {
        let queued = Queued::new(Changes {
            panics: true,
            ..Changes::default()
        });
        queued.record(&cost("a"));
        queued.record_price_change(&change());
        queued.record(&cost("b"));
        queued.flush().await.unwrap();
        assert_eq!(*queued.inner().events.lock().unwrap(), ["a", "b"]);
        let stats = queued.stats();
        assert_eq!((stats.written, stats.lost_on_error), (2, 0));

        // A sink that takes changes gets them between the receipts, in order.
        let queued = Queued::new(Changes::default());
        queued.record(&cost("a"));
        queued.record_price_change(&change());
        queued.record(&cost("b"));
        queued.flush().await.unwrap();
        assert_eq!(
            *queued.inner().events.lock().unwrap(),
            ["a", "0.23 -> 0.20", "b"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_price_change_that_finds_the_queue_full_or_shut_is_dropped_with_a_warning() {
        use tracing_subscriber::layer::SubscriberExt;
        let warns = Warns::default();
        let _log =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(warns.clone()));
        let (open, gate) = std_mpsc::channel();
        let queued = Queued::with_capacity(
            Changes {
                gate: Some(Mutex::new(gate)),
                ..Changes::default()
            },
            1,
        );
        // "a" is taken by the sink's thread and held there; "b" fills the queue
        // of one; the change finds it full.
        queued.record(&cost("a"));
        let held = std::time::Instant::now();
        while queued.sender().is_some_and(|q| q.capacity() == 0) {
            assert!(held.elapsed() < Duration::from_secs(10), "never taken");
            std::thread::sleep(Duration::from_millis(1));
        }
        queued.record(&cost("b"));
        // A receipt dropped first, its WARN given: the change's is its own.
        queued.record(&cost("c"));
        assert_eq!(warns.count("receipt dropped"), 1);
        queued.record_price_change(&change());
        assert_eq!(warns.count("a price change was dropped"), 1);
        open.send(()).unwrap();
        open.send(()).unwrap();
        queued.shutdown().await.unwrap();
        assert_eq!(*queued.inner().events.lock().unwrap(), ["a", "b"]);
        assert_eq!(queued.stats().written, 2);

        // A change told after the shutdown is dropped with a WARN too.
        let shut = Queued::new(Changes::default());
        shut.shutdown().await.unwrap();
        shut.record_price_change(&change());
        assert_eq!(warns.count("a price change was dropped"), 2);
        assert!(shut.inner().events.lock().unwrap().is_empty());
    }

    /// The WARN events of target `sagemeter` seen on the test's thread.
    #[derive(Clone, Default)]
    struct Warns(Arc<Mutex<Vec<String>>>);

    impl Warns {
        fn count(&self, text: &str) -> usize {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.contains(text))
                .count()
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warns {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let meta = event.metadata();
            if *meta.level() == tracing::Level::WARN && meta.target() == "sagemeter" {
                self.0.lock().unwrap().push(format!("{event:?}"));
            }
        }
    }

    /// A slow sink that notes the receipts it was handed (shared with the test,
    /// which keeps it after the queue is dropped) and its flush and shutdown, the
    /// shutdown's waiting on a Tokio timer (a sink's own async shutdown).
    #[derive(Debug, Default)]
    struct Slow(Arc<Mutex<Vec<String>>>);

    impl CostSink for Slow {
        fn record(&self, cost: &Cost) {
            // A blocking POST that takes 20 ms.
            std::thread::sleep(Duration::from_millis(20));
            self.0.lock().unwrap().push(cost.call_id.clone());
        }

        fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                self.0.lock().unwrap().push("shutdown".to_owned());
                Ok(())
            })
        }
    }

    /// A queued sink dropped without `shutdown()` (a program that returns from
    /// main without it) hands its sink every receipt it accepted, then shuts the
    /// sink down, before the drop returns.
    #[test]
    fn a_queued_sink_dropped_without_shutdown_hands_over_every_receipt_first() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queued = Queued::new(Slow(seen.clone()));
        let ids: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
        for id in &ids {
            queued.record(&cost(id));
        }
        assert_eq!(queued.stats().accepted, 10);
        drop(queued);
        let mut expected = ids;
        expected.push("shutdown".to_owned());
        assert_eq!(*seen.lock().unwrap(), expected);
    }

    /// Dropped inside a Tokio runtime (the last client dropped in an async
    /// `main`), it waits the same way: blocking the worker until the sink has
    /// everything, as the ledger's writer does.
    #[tokio::test]
    async fn a_queued_sink_dropped_in_a_runtime_hands_over_every_receipt_first() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queued = Queued::new(Slow(seen.clone()));
        for i in 0..3 {
            queued.record(&cost(&format!("r{i}")));
        }
        drop(queued);
        assert_eq!(*seen.lock().unwrap(), ["r0", "r1", "r2", "shutdown"]);
    }

    /// Dropped after `shutdown()`, the sink is not shut down a second time.
    #[tokio::test]
    async fn a_queued_sink_dropped_after_its_shutdown_does_not_shut_its_sink_down_again() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queued = Queued::new(Slow(seen.clone()));
        queued.record(&cost("a"));
        queued.shutdown().await.unwrap();
        drop(queued);
        assert_eq!(*seen.lock().unwrap(), ["a", "shutdown"]);
    }

    /// A sink whose `record` blocks until let go (one token per receipt, at most
    /// 10 s waited) and that notes, in the list shared with the test (kept after
    /// the queue is dropped), each receipt and its shutdown.
    #[derive(Debug)]
    struct Held {
        seen: Arc<Mutex<Vec<String>>>,
        gate: Mutex<std_mpsc::Receiver<()>>,
    }

    impl CostSink for Held {
        fn record(&self, cost: &Cost) {
            let _ = self
                .gate
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            self.seen.lock().unwrap().push(cost.call_id.clone());
        }

        fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
            self.seen.lock().unwrap().push("shutdown".to_owned());
            Box::pin(async { Ok(()) })
        }
    }

    /// A queue of `Held` with `a` and `b` recorded, whose `shutdown` was polled
    /// once, while `a` was held in the sink's record, then dropped (a client's
    /// `shutdown_within` that ran out drops its sinks' shutdowns); and the sender
    /// of the sink's tokens.
    fn cancelled_shutdown() -> (Queued<Held>, Arc<Mutex<Vec<String>>>, std_mpsc::Sender<()>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (open, gate) = std_mpsc::channel();
        let queued = Queued::new(Held {
            seen: seen.clone(),
            gate: Mutex::new(gate),
        });
        queued.record(&cost("a"));
        queued.record(&cost("b"));
        {
            let mut shutdown = std::pin::pin!(queued.shutdown());
            let mut cx = Context::from_waker(Waker::noop());
            assert!(shutdown.as_mut().poll(&mut cx).is_pending());
        }
        (queued, seen, open)
    }

    /// A shutdown cancelled while it waits for the thread, then the queue
    /// dropped while the thread is still handing receipts over: the sink gets
    /// them all and is then shut down, so what it keeps for its shutdown (a
    /// batch not yet posted) is not lost uncounted.
    #[test]
    fn a_shutdown_cancelled_then_the_queue_dropped_still_shuts_the_sink_down() {
        let (queued, seen, open) = cancelled_shutdown();
        // The drop waits for the thread: let `a` and `b` through meanwhile.
        let letting = std::thread::spawn(move || {
            open.send(()).unwrap();
            open.send(()).unwrap();
        });
        drop(queued);
        letting.join().unwrap();
        assert_eq!(*seen.lock().unwrap(), ["a", "b", "shutdown"]);
    }

    /// The same when the thread had already handed everything over and ended
    /// before the drop: the drop shuts the sink down itself, once.
    #[test]
    fn a_shutdown_cancelled_after_the_thread_ended_is_finished_by_the_drop() {
        let (queued, seen, open) = cancelled_shutdown();
        open.send(()).unwrap();
        open.send(()).unwrap();
        let mut ended = queued.thread_ended.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), ended.changed())
                .await
                .expect("the thread never ended")
                .unwrap_err();
        });
        assert_eq!(*seen.lock().unwrap(), ["a", "b"]);
        drop(queued);
        assert_eq!(*seen.lock().unwrap(), ["a", "b", "shutdown"]);
    }

    /// A flush after a shutdown that was cancelled while the thread still held
    /// receipts (a `shutdown_within` that ran out, then `flush()`) waits until
    /// they all reached the sink, as any flush does, rather than return at once.
    #[tokio::test]
    async fn a_flush_after_a_cancelled_shutdown_waits_for_the_receipts_still_queued() {
        // `a` held in the sink's record, `b` queued behind it.
        let (queued, seen, open) = cancelled_shutdown();
        let letting = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            open.send(()).unwrap();
            open.send(()).unwrap();
        });
        tokio::time::timeout(Duration::from_secs(10), queued.flush())
            .await
            .expect("the flush never ended")
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["a", "b"]);
        letting.join().unwrap();
    }

    /// A sink whose shutdown never ends (its collector stopped answering),
    /// counting how often it was asked to shut down.
    #[derive(Debug, Default)]
    struct Hanging {
        shutdowns: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl CostSink for Hanging {
        fn record(&self, _: &Cost) {}

        fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
            self.shutdowns.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::pending())
        }
    }

    /// A queue before a [`Hanging`] sink, given one receipt; its count of
    /// shutdowns; a runtime to shut it down on.
    fn hanging_with_a_receipt() -> (
        Queued<Hanging>,
        Arc<std::sync::atomic::AtomicUsize>,
        tokio::runtime::Runtime,
    ) {
        let shutdowns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queued = Queued::new(Hanging {
            shutdowns: shutdowns.clone(),
        });
        queued.record(&cost("a"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (queued, shutdowns, runtime)
    }

    /// A shutdown cut off by a deadline inside the sink's own shutdown is not
    /// run again by the drop: the sink was asked once (it may hang again, and
    /// the program could never exit), and the drop returns.
    #[test]
    fn a_shutdown_cut_off_in_the_sinks_own_shutdown_is_not_run_again_by_the_drop() {
        let (queued, shutdowns, runtime) = hanging_with_a_receipt();
        runtime.block_on(async {
            let cut_off = tokio::time::timeout(Duration::from_millis(200), queued.shutdown());
            assert!(cut_off.await.is_err(), "the sink's shutdown never ends");
        });
        assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
        drop(queued);
        assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
    }

    /// A second `shutdown` after one a deadline cut off inside the sink's own
    /// shutdown (an `Arc<Queued>` given to a client, the client's shutdown run
    /// out, then the queue's own) does not ask the sink again: it says at once
    /// that the sink's shutdown was cut off, rather than hang in it a second time.
    #[test]
    fn a_shutdown_cut_off_in_the_sinks_own_shutdown_is_not_run_again_by_a_later_shutdown() {
        let (queued, shutdowns, runtime) = hanging_with_a_receipt();
        runtime.block_on(async {
            let cut_off = tokio::time::timeout(Duration::from_millis(200), queued.shutdown());
            assert!(cut_off.await.is_err(), "the sink's shutdown never ends");
            let again = tokio::time::timeout(Duration::from_millis(200), queued.shutdown())
                .await
                .expect("a later shutdown does not wait in the sink's again");
            let error = again.expect_err("the sink's shutdown never ended");
            assert!(error.to_string().contains("cut off"), "{error}");
        });
        assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
        drop(queued);
        assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
    }

    /// A sink that counts its shutdowns, each ended at once with `result`'s
    /// error kind (none: Ok), after a yield so that two shutdowns overlap.
    #[derive(Debug, Default)]
    struct CountsShutdowns {
        shutdowns: std::sync::atomic::AtomicUsize,
        fails: Option<std::io::ErrorKind>,
    }

    impl CostSink for CountsShutdowns {
        fn record(&self, _: &Cost) {}

        fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
            self.shutdowns.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::task::yield_now().await;
                match self.fails {
                    Some(kind) => Err(std::io::Error::new(kind, "the collector refused")),
                    None => Ok(()),
                }
            })
        }
    }

    /// The sink is shut down once however often, and however concurrently, the
    /// queue is: every later `shutdown` returns the first one's result.
    #[tokio::test]
    async fn shutting_a_queued_sink_down_twice_shuts_its_sink_down_once() {
        let queued = Queued::new(CountsShutdowns::default());
        queued.shutdown().await.unwrap();
        queued.shutdown().await.unwrap();
        assert_eq!(queued.inner().shutdowns.load(Ordering::SeqCst), 1);

        let queued = Queued::new(CountsShutdowns::default());
        let (a, b) = tokio::join!(queued.shutdown(), queued.shutdown());
        a.unwrap();
        b.unwrap();
        assert_eq!(queued.inner().shutdowns.load(Ordering::SeqCst), 1);

        // A failure is every caller's, with its kind and message.
        let queued = Queued::new(CountsShutdowns {
            fails: Some(std::io::ErrorKind::ConnectionRefused),
            ..CountsShutdowns::default()
        });
        for _ in 0..2 {
            let error = queued.shutdown().await.unwrap_err();
            assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
            assert_eq!(error.to_string(), "the collector refused");
        }
        assert_eq!(queued.inner().shutdowns.load(Ordering::SeqCst), 1);
    }

    /// A capacity beyond Tokio's channel limit (which would panic) is taken as
    /// the limit, and the queue works.
    #[tokio::test]
    async fn a_capacity_beyond_the_limit_is_taken_as_the_limit() {
        let queued = Queued::with_capacity(Changes::default(), usize::MAX);
        assert_eq!(queued.capacity, crate::ledger::MAX_CAPACITY);
        queued.record(&cost("a"));
        queued.shutdown().await.unwrap();
        assert_eq!(*queued.inner().events.lock().unwrap(), ["a"]);
    }

    #[tokio::test]
    async fn a_receipt_recorded_during_the_shutdown_is_written_before_it_or_refused() {
        let (sink, entered, open) = gated(Vec::new());
        let queued = Queued::with_capacity(sink, 8);
        // `a` is on the thread, in the sink's record, blocked.
        queued.record(&cost("a"));
        assert_eq!(entered.recv_timeout(Duration::from_secs(10)).unwrap(), "a");
        let mut shutdown = std::pin::pin!(queued.shutdown());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(shutdown.as_mut().poll(&mut cx).is_pending());
        // `b` ends while the shutdown waits for `a`.
        queued.record(&cost("b"));
        // `a` goes through, then `b` if it was taken: two tokens.
        open.send(()).unwrap();
        shutdown.await.unwrap();
        let (stats, events) = (
            queued.stats(),
            queued.inner().events.lock().unwrap().clone(),
        );
        open.send(()).unwrap();
        // Every receipt accepted was written by the time `shutdown` returned, and
        // the sink saw nothing after its shutdown.
        assert_eq!(
            stats.accepted,
            stats.written + stats.lost_on_error,
            "{stats:?} {events:?}"
        );
        assert_eq!(
            events.last().map(String::as_str),
            Some("shutdown"),
            "{events:?}"
        );
        // 2 recorded = accepted + refused: nothing lost uncounted.
        assert_eq!(
            stats.accepted + stats.refused_closed + stats.dropped_full,
            2
        );
    }

    /// One step of a run against a queued sink whose `record` blocks until let go.
    #[derive(Debug, Clone)]
    enum Step {
        /// A call's receipt is recorded (one the sink panics on, when true).
        Record(bool),
        /// The sink's blocked `record` is let go.
        LetGo,
        /// `flush`, the sink let go until it is done.
        Flush,
        /// `shutdown` begins; this many receipts are recorded while it waits
        /// (calls that end meanwhile); the sink is let go until it is done.
        Shutdown(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => prop_oneof![5 => Just(false), 1 => Just(true)].prop_map(Step::Record),
            3 => Just(Step::LetGo),
            1 => Just(Step::Flush),
            1 => (0..3usize).prop_map(Step::Shutdown),
        ]
    }

    /// What the docs promise a queued sink does, kept apart from the code: the
    /// thread holds the receipt in the sink's `record`, the queue up to its
    /// capacity behind it, and a receipt that finds the queue full is dropped, one
    /// recorded once the shutdown has begun refused; each is counted, by `stats()`
    /// and by `sagemeter_sink_dropped_total{sink="queued",reason}`, as is each
    /// receipt the sink panicked on (`reason="panicked"`). Every receipt
    /// accepted reaches the sink, in order, before `flush` and `shutdown` return
    /// (written, or lost to the sink's panic and counted so); the sink is shut
    /// down once, after the last receipt it was handed.
    #[derive(Debug, Default)]
    struct Model {
        in_sink: Option<String>,
        queue: VecDeque<String>,
        written: Vec<String>,
        lost: Vec<String>,
        dropped_full: u64,
        refused_closed: u64,
        closed: bool,
    }

    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn entered_is(entered: &std_mpsc::Receiver<String>, id: &str) -> Result<(), TestCaseError> {
        let got = entered
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| TestCaseError::fail(format!("{id} never reached the sink")))?;
        prop_assert_eq!(got, id, "the sink is handed receipts in the order queued");
        Ok(())
    }

    /// Lets the sink through everything held and queued, as the thread takes it.
    fn let_all_go(
        model: &mut Model,
        entered: &std_mpsc::Receiver<String>,
        open: &std_mpsc::Sender<()>,
        panics: &[String],
    ) -> Result<(), TestCaseError> {
        while let Some(id) = model.in_sink.take() {
            open.send(()).unwrap();
            if panics.contains(&id) {
                model.lost.push(id);
            } else {
                model.written.push(id);
            }
            if let Some(next) = model.queue.pop_front() {
                entered_is(entered, &next)?;
                model.in_sink = Some(next);
            }
        }
        Ok(())
    }

    /// Plays `steps`, the queue's thread counting into `recorder`; the model's
    /// drops: (queue full, refused once closed, lost to the sink's panic).
    async fn run(
        capacity: usize,
        steps: Vec<Step>,
        recorder: Arc<dyn metrics::Recorder + Send + Sync>,
    ) -> Result<(u64, u64, u64), TestCaseError> {
        let mut n = 0;
        let ids: Vec<(String, bool)> = steps
            .iter()
            .flat_map(|s| match s {
                Step::Record(panics) => vec![*panics],
                Step::Shutdown(late) => vec![false; *late],
                _ => vec![],
            })
            .map(|panics| {
                n += 1;
                (format!("r{n}"), panics)
            })
            .collect();
        let panics: Vec<String> = ids
            .iter()
            .filter(|(_, p)| *p)
            .map(|(id, _)| id.clone())
            .collect();
        let mut ids = ids.into_iter().map(|(id, _)| id);
        let (sink, entered, open) = gated(panics.clone());
        let queued = Queued::start(sink, capacity, Some(recorder));
        let mut model = Model::default();
        let record = |model: &mut Model, id: String| -> Result<(), TestCaseError> {
            queued.record(&cost(&id));
            if model.closed {
                model.refused_closed += 1;
            } else if model.in_sink.is_none() {
                // The thread is idle, the queue empty: the sink takes it.
                entered_is(&entered, &id)?;
                model.in_sink = Some(id);
            } else if model.queue.len() < capacity {
                model.queue.push_back(id);
            } else {
                model.dropped_full += 1;
            }
            Ok(())
        };
        for step in &steps {
            match step {
                Step::Record(_) => record(&mut model, ids.next().unwrap())?,
                Step::LetGo => {
                    if let Some(id) = model.in_sink.take() {
                        open.send(()).unwrap();
                        if panics.contains(&id) {
                            model.lost.push(id);
                        } else {
                            model.written.push(id);
                        }
                        if let Some(next) = model.queue.pop_front() {
                            entered_is(&entered, &next)?;
                            model.in_sink = Some(next);
                        }
                    }
                }
                Step::Flush => {
                    let_all_go(&mut model, &entered, &open, &panics)?;
                    tokio::time::timeout(Duration::from_secs(10), queued.flush())
                        .await
                        .map_err(|_| TestCaseError::fail("flush never ended"))?
                        .unwrap();
                    let stats = queued.stats();
                    prop_assert_eq!(stats.written, model.written.len() as u64);
                    prop_assert_eq!(stats.lost_on_error, model.lost.len() as u64);
                }
                Step::Shutdown(late) => {
                    let mut shutdown = std::pin::pin!(queued.shutdown());
                    let mut cx = Context::from_waker(Waker::noop());
                    let done = shutdown.as_mut().poll(&mut cx);
                    let first = !model.closed;
                    model.closed = true;
                    for _ in 0..*late {
                        record(&mut model, ids.next().unwrap())?;
                    }
                    let_all_go(&mut model, &entered, &open, &panics)?;
                    if done.is_pending() {
                        tokio::time::timeout(Duration::from_secs(10), shutdown)
                            .await
                            .map_err(|_| TestCaseError::fail("shutdown never ended"))?
                            .unwrap();
                    }
                    // Everything accepted has been handed over once it returns.
                    let stats = queued.stats();
                    prop_assert_eq!(stats.written, model.written.len() as u64);
                    prop_assert_eq!(stats.lost_on_error, model.lost.len() as u64);
                    let events = queued.inner().events.lock().unwrap().clone();
                    if first {
                        prop_assert_eq!(events.last().map(String::as_str), Some("shutdown"));
                    }
                }
            }
        }
        if !model.closed {
            let_all_go(&mut model, &entered, &open, &panics)?;
            queued.shutdown().await.unwrap();
        }

        let stats = queued.stats();
        let recorded = n as u64;
        prop_assert_eq!(stats.written, model.written.len() as u64);
        prop_assert_eq!(stats.lost_on_error, model.lost.len() as u64);
        prop_assert_eq!(stats.dropped_full, model.dropped_full);
        prop_assert_eq!(stats.refused_closed, model.refused_closed);
        prop_assert_eq!(stats.accepted, stats.written + stats.lost_on_error);
        // Nothing lost uncounted: every receipt recorded is accepted, dropped or
        // refused.
        prop_assert_eq!(
            stats.accepted + stats.dropped_full + stats.refused_closed,
            recorded
        );
        // The sink got the receipts written, in order, and was shut down once,
        // after them (a later shutdown returns the first one's result, without
        // shutting it down again).
        let events = queued.inner().events.lock().unwrap().clone();
        let records: Vec<&String> = events.iter().filter(|e| *e != "shutdown").collect();
        prop_assert_eq!(records, model.written.iter().collect::<Vec<_>>());
        let first_shutdown = events.iter().position(|e| e == "shutdown");
        prop_assert_eq!(first_shutdown, Some(model.written.len()), "{:?}", events);
        let shutdowns = events.iter().filter(|e| *e == "shutdown").count();
        prop_assert_eq!(shutdowns, 1, "{:?}", events);
        Ok((
            model.dropped_full,
            model.refused_closed,
            model.lost.len() as u64,
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_receipt_recorded_reaches_the_sink_or_is_counted_dropped_or_refused(
            capacity in 1..4usize,
            steps in prop::collection::vec(step(), 1..24),
        ) {
            use metrics_util::debugging::{DebugValue, DebuggingRecorder};
            // One recorder for the calls' side (this thread) and the queue's thread.
            let recorder = Arc::new(DebuggingRecorder::new());
            let (counted, (full, closed, panicked)) = {
                let _metrics = metrics::set_default_local_recorder(&recorder);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let drops = runtime.block_on(run(capacity, steps, recorder.clone()))?;
                (recorder.snapshotter().snapshot().into_vec(), drops)
            };
            // Each drop and loss is said by the metric too, by reason.
            let by_reason = |reason: &str| -> u64 {
                counted
                    .iter()
                    .filter(|(k, ..)| {
                        k.key().name() == "sagemeter_sink_dropped_total"
                            && k.key().labels().any(|l| l.key() == "sink" && l.value() == "queued")
                            && k.key().labels().any(|l| l.key() == "reason" && l.value() == reason)
                    })
                    .map(|(.., v)| match v {
                        DebugValue::Counter(n) => *n,
                        _ => 0,
                    })
                    .sum()
            };
            prop_assert_eq!(by_reason("full"), full);
            prop_assert_eq!(by_reason("closed"), closed);
            prop_assert_eq!(by_reason("panicked"), panicked);
        }
    }
}
