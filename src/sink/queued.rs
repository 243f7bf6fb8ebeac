//! [`Queued`]: any sink's `record` off the call path, on a thread of its own.

use super::CostSink;
use crate::billing::Cost;
use crate::ledger::SinkStats;
use crate::ledger::{Counters, WarnLimiter};
use crate::pricing::PriceChange;
use crate::util::BoxFuture;
use std::fmt;
use std::sync::atomic::Ordering;
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
/// it reached `S` and `S` flushed; `shutdown` closes the queue (receipts recorded
/// from then on, a call that ends meanwhile say, are refused and counted), waits
/// until the thread has handed `S` every receipt queued before and ended, then
/// shuts `S` down: `S` is given no receipt after its shutdown. A panic in
/// `S::record` is caught on the thread: that receipt is lost (counted in
/// `lost_on_error`), the next ones go on.
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
    capacity: usize,
    counters: Arc<Counters>,
    warn: WarnLimiter,
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

    /// `sink` behind a queue of `capacity` receipts (at least 1).
    ///
    /// # Panics
    /// If the thread cannot be started (the OS refused one), as
    /// [`std::thread::spawn`] does.
    pub fn with_capacity(sink: S, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let sink = Arc::new(sink);
        let counters = Arc::new(Counters::default());
        let (tx, mut rx) = mpsc::channel::<Msg>(capacity);
        let (on_thread, written) = (sink.clone(), counters.clone());
        let (ended, thread_ended) = watch::channel(());
        std::thread::Builder::new()
            .name("sagemeter-queued-sink".into())
            .spawn(move || {
                // Dropped when the thread ends, however it ends.
                let _ended = ended;
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Msg::Receipt(cost) => {
                            let recorded =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    on_thread.record(&cost)
                                }));
                            let counter = match recorded {
                                Ok(()) => &written.written,
                                Err(_) => {
                                    tracing::warn!(target: "sagemeter", sink = on_thread.name(),
                                        call_id = %cost.call_id,
                                        "a queued cost sink panicked recording a receipt: it \
                                         missed this receipt, the next ones go on");
                                    &written.lost_on_error
                                }
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Msg::PriceChange(change) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                on_thread.record_price_change(&change)
                            }));
                        }
                        Msg::Reached(ack) => {
                            let _ = ack.send(());
                        }
                    }
                }
            })
            .expect("the OS refused a thread for a queued sink");
        Queued {
            sink,
            queue: Mutex::new(Some(tx)),
            thread_ended,
            capacity,
            counters,
            warn: WarnLimiter::new(),
        }
    }
}

impl<S> Queued<S> {
    /// What became of the receipts recorded so far: `accepted` into the queue,
    /// `written` (handed to the sink), `dropped_full`, `refused_closed` (after
    /// shutdown), `lost_on_error` (the sink panicked on them).
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
    /// when the queue is shut down (nothing more reaches it).
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

    /// Queued as a receipt is (and dropped, uncounted, when the queue is full).
    fn record_price_change(&self, change: &PriceChange) {
        if let Some(queue) = self.sender() {
            let _ = queue.try_send(Msg::PriceChange(Box::new(change.clone())));
        }
    }

    fn flush(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            self.reached().await;
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
            self.sink.shutdown().await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::mpsc as std_mpsc;
    use std::task::{Context, Poll, Waker};
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
}
