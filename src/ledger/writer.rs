//! The background line writer behind [`JsonlLedger`](super::JsonlLedger) and
//! [`EmfSink`](crate::sink::EmfSink): receipts are encoded on the call path into a
//! bounded queue of lines, and one plain thread appends them to the target.
//!
//! Why encode on the caller's thread: the line is what the writer needs, and
//! sending it instead of a copy of the receipt spares a copy of every string in
//! it, made by the caller and freed by the writer (frees from another thread
//! take the allocating thread's arena lock in glibc).
//!
//! Why a thread and not a tokio task: `record` is called from synchronous code
//! too (the interceptor, `Drop` of a cancelled stream), file I/O blocks anyway
//! (a task would need `spawn_blocking` per write), and a thread that owns its
//! buffer needs no runtime at all. The queue is tokio's bounded `mpsc`: it never
//! blocks the sender (`try_reserve`), the thread waits on it with
//! `blocking_recv_many`, and `flush().await`/`shutdown().await` are ordinary
//! async sends that queue behind every receipt recorded before them.
//!
//! Guarantees (documented on the public types):
//! - A receipt is *acknowledged* when `record` accepted it into the queue.
//!   Every acknowledged receipt is handed to the target before the
//!   next `flush`/`shutdown` returns, or that call returns the write error that
//!   lost it (and counts it in `lost_on_error`). A `flush` dropped before it
//!   returned (a timeout) passes its error on to the next (see [`Reply`]).
//! - A full queue never blocks the call: `record` drops the receipt, counts it in
//!   `dropped_full`, and logs a WARN at most once per [`WARN_EVERY`].
//! - After `shutdown` every `record` is refused (counted in `refused_closed`), and
//!   every `flush` or `shutdown` waits until the writer has finished, then
//!   returns its final result (the same for every caller; `WriterStopped` if
//!   the thread panicked), never `Ok` while lines are still being written.
//! - `try_record` hands either refusal back to its caller instead, which still
//!   holds the receipt: nothing is dropped, so nothing is counted.

use super::LedgerError;
use super::compact::Refs;
use crate::billing::Cost;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Bytes buffered by the writer before they are handed to the target, when
/// receipts keep coming (when the queue stays empty for [`COALESCE`], it goes out then).
const BUFFER_BYTES: usize = 64 * 1024;
/// Messages taken from the queue per wake-up.
const BATCH: usize = 256;
/// Room a recording thread keeps for encoding lines between receipts.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Emptied line buffers kept for reuse (one batch's worth).
const POOL_BUFFERS: usize = BATCH;
/// Line buffers larger than this (a receipt with very many tags) are freed, not kept.
const POOL_BUFFER_BYTES: usize = 8 * 1024;
/// How long the writer waits for more receipts when its queue runs dry, before
/// writing and going to sleep on the queue. While it waits, callers queue
/// without waking it: a busy client costs one write per batch, not per call.
const COALESCE: Duration = Duration::from_millis(1);
/// At most one WARN per this period for drops and refusals.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// Why `record` did not take a receipt.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue was full: the writer cannot keep up (slow disk, blocked stdout).
    Full,
    /// `shutdown()` was called (or the writer stopped).
    Closed,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Full => "queue full",
            Refused::Closed => "sink shut down",
        })
    }
}

impl std::error::Error for Refused {}

/// Counters of a background sink since it was opened.
///
/// `accepted = written + lost_on_error + (still queued or buffered)`; after a
/// successful `flush` or `shutdown` nothing accepted before it is still queued.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// Receipts accepted by `record` (acknowledged).
    pub accepted: u64,
    /// Receipts written to the target (handed to the OS for files).
    pub written: u64,
    /// Receipts dropped because the queue was full (by `record`; `try_record`
    /// hands a refused receipt back to its caller instead, uncounted).
    pub dropped_full: u64,
    /// Receipts dropped because the sink was shut down (by `record`, as above).
    pub refused_closed: u64,
    /// Accepted receipts lost: by a ledger or [`EmfSink`](crate::sink::EmfSink)
    /// because a write failed (reported by the next flush); by
    /// [`Queued`](crate::sink::Queued) because its sink panicked on them (counted
    /// and logged, not reported by a flush).
    pub lost_on_error: u64,
}

/// What [`SinkStats`] counts, as the sinks that queue receipts (the ledgers,
/// [`Queued`](crate::sink::Queued)) count it.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) dropped_full: AtomicU64,
    pub(crate) refused_closed: AtomicU64,
    pub(crate) lost_on_error: AtomicU64,
}

impl Counters {
    /// The counts now.
    pub(crate) fn stats(&self) -> SinkStats {
        SinkStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            refused_closed: self.refused_closed.load(Ordering::Relaxed),
            lost_on_error: self.lost_on_error.load(Ordering::Relaxed),
        }
    }
}

/// Line buffers the writer has emptied, handed back to the recording threads.
///
/// Why: a line (about 1.2 KB) is larger than glibc's per-thread cache takes, so a
/// fresh allocation per line went through the allocator's slow path (sorting its
/// unsorted bin), and was freed by the writer thread under the allocating
/// thread's arena lock. Reused, a line costs a copy and two short critical
/// sections.
#[derive(Default)]
struct LinePool(Mutex<Vec<Vec<u8>>>);

impl LinePool {
    /// `line` in a buffer of its own: an emptied one when there is one.
    fn copy_of(&self, line: &[u8]) -> Vec<u8> {
        let reused = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut buf = reused.unwrap_or_default();
        buf.extend_from_slice(line);
        buf
    }

    /// Takes back a written line's buffer, while the pool has room for it.
    fn put(&self, mut buf: Vec<u8>) {
        if buf.capacity() > POOL_BUFFER_BYTES {
            return;
        }
        buf.clear();
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_BUFFERS {
            pool.push(buf);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Turns one receipt into one line (including its `\n`), appended to `out`, and
/// names the definitions the line refers to in `refs` (ledger format 2; left
/// empty by encoders without any). Runs on the threads that record receipts.
pub(crate) type Encode = Box<EncodeFn<'static>>;

/// What an [`Encode`] boxes (one borrowing for `'a`, when given for one receipt).
pub(crate) type EncodeFn<'a> =
    dyn Fn(&Cost, &mut Vec<u8>, &mut Refs) -> serde_json::Result<()> + Send + Sync + 'a;

/// One line of a batch: its length, the definitions it refers to, and whether it
/// is a receipt (counted in [`SinkStats`]) or another record (a price change).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineMeta {
    pub(crate) len: usize,
    pub(crate) refs: Refs,
    pub(crate) receipt: bool,
}

/// Starts the thread that asks a writer to look at its clock every `every`: it
/// queues `tick()` among the receipts, at most one at a time (`pending` is set
/// when one is queued; the writer clears it as it takes the tick), so that a
/// writer slower than the interval finds one tick behind it, not a pile taking
/// room from receipts. It holds only a weak sender, never keeping the queue open,
/// and stops as soon as the writer ends (`stopped` disconnects when the writer
/// drops its sender).
pub(crate) fn spawn_ticker<M: Send + 'static>(
    name: String,
    every: Duration,
    stopped: std::sync::mpsc::Receiver<()>,
    weak: mpsc::WeakSender<M>,
    pending: Arc<AtomicBool>,
    tick: fn() -> M,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            let Some(tx) = weak.upgrade() else { break };
            if pending.swap(true, Ordering::AcqRel) {
                continue; // the last tick is still queued
            }
            match tx.try_send(tick()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => pending.store(false, Ordering::Release),
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
    })
}

/// `n` receipt lines of 3 bytes, `a1\n`, `a2\n`, ... (for `prefix` `a`), that refer
/// to no definition: the bytes and their metadata, for the targets' tests.
#[cfg(test)]
pub(crate) fn test_lines(prefix: char, n: usize) -> (Vec<u8>, Vec<LineMeta>) {
    let bytes: String = (1..=n).map(|i| format!("{prefix}{i}\n")).collect();
    let meta = LineMeta {
        len: 3,
        refs: Default::default(),
        receipt: true,
    };
    (bytes.into_bytes(), vec![meta; n])
}

/// A write of lines that failed after the first `written` of them were written
/// whole (0 when none was, or when the target cannot tell).
#[derive(Debug)]
pub(crate) struct WriteFailure {
    /// Lines, from the first of the batch, written whole before the failure.
    pub(crate) written: usize,
    /// What failed.
    pub(crate) source: io::Error,
}

impl From<io::Error> for WriteFailure {
    fn from(source: io::Error) -> Self {
        WriteFailure { written: 0, source }
    }
}

/// Where the lines go.
pub(crate) trait Target: Send + 'static {
    /// Writes whole lines: `bytes` is `lines` one after the other. On error, the
    /// target says how many lines (from the first) it wrote whole, and should undo
    /// a partial write of the next one if it can.
    fn write_lines(&mut self, bytes: &[u8], lines: &[LineMeta]) -> Result<(), WriteFailure>;
    /// Makes everything written durable (fsync for files).
    fn sync(&mut self) -> io::Result<()>;
}

enum Msg {
    /// One receipt's line, in a buffer from the [`LinePool`], and what it refers to.
    Line(Vec<u8>, Refs),
    /// A line that is not a receipt (a price change), written in its turn.
    Record(Vec<u8>),
    /// A receipt that could not be encoded (counted as lost, reported by the next
    /// flush).
    /// A receipt that could not be made a line (or one too long for a reader).
    Unencodable(io::Error),
    Flush {
        sync: bool,
        ack: oneshot::Sender<io::Result<()>>,
    },
    Shutdown {
        ack: oneshot::Sender<io::Result<()>>,
    },
    Tick,
}

/// How a writer thread ended: set once it has written, synced and closed
/// everything (`None` until then). The sender is dropped unset when the thread
/// panicked. Every `flush` or `shutdown` that comes too late for the queue
/// (closed by a shutdown) waits for it and returns it.
pub(crate) type Ended = Option<Result<(), Arc<io::Error>>>;

/// Waits until the writer behind `ended` has stopped: `Some` with its final
/// result, `None` when it stopped without one (it panicked).
pub(crate) async fn wait_ended(ended: &watch::Receiver<Ended>) -> Option<io::Result<()>> {
    let mut ended = ended.clone();
    let result = match ended.wait_for(Option::is_some).await {
        Ok(result) => result.clone(),
        Err(_) => return None, // the thread is gone, never having said how it ended
    };
    result.map(|r| r.map_err(shared_error))
}

/// One of the copies of a final error every caller gets: the same kind and message.
pub(crate) fn shared_error(e: Arc<io::Error>) -> io::Error {
    io::Error::new(e.kind(), e)
}

/// Flush errors whose callers stopped waiting (a flush cancelled by a timeout)
/// after the writer had replied: the writer's next flush reply, or its final
/// result, returns one of them.
pub(crate) type Unclaimed = Arc<Mutex<Option<io::Error>>>;

/// Takes an unclaimed flush error, if there is one.
pub(crate) fn take_unclaimed(unclaimed: &Unclaimed) -> Option<io::Error> {
    unclaimed.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// The caller's side of a flush's reply. A flush that is cancelled drops it
/// unread: it closes the channel, so that a reply the writer has yet to send
/// comes back to the writer (which keeps its error for the next flush), and
/// keeps an error already sent in [`Unclaimed`]. Either way the next flush or
/// shutdown returns it: an acknowledged receipt is never lost silently.
pub(crate) struct Reply {
    rx: oneshot::Receiver<io::Result<()>>,
    unclaimed: Unclaimed,
}

impl Reply {
    /// The writer's sending half, and this.
    pub(crate) fn channel(unclaimed: &Unclaimed) -> (oneshot::Sender<io::Result<()>>, Reply) {
        let (tx, rx) = oneshot::channel();
        let unclaimed = unclaimed.clone();
        (tx, Reply { rx, unclaimed })
    }

    /// The writer's reply; `Err` when the writer dropped the sender unanswered.
    pub(crate) async fn recv(&mut self) -> Result<io::Result<()>, oneshot::error::RecvError> {
        (&mut self.rx).await
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.rx.close();
        if let Ok(Err(e)) = self.rx.try_recv() {
            self.unclaimed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(e);
        }
    }
}

/// Options of a background writer.
pub(crate) struct Options {
    /// What the sink is, for messages (`ledger`, `emf`).
    pub(crate) kind: &'static str,
    /// Where it writes, for messages (a path, `stdout`).
    pub(crate) name: PathBuf,
    pub(crate) capacity: usize,
    pub(crate) sync_every: Option<Duration>,
}

/// The handle side: queue, counters, and the writer thread.
pub(crate) struct BackgroundWriter {
    kind: &'static str,
    name: PathBuf,
    capacity: usize,
    tx: Option<mpsc::Sender<Msg>>,
    encode: Encode,
    pool: Arc<LinePool>,
    closed: AtomicBool,
    counters: Arc<Counters>,
    warn: WarnLimiter,
    /// How the writer thread ended, once it has.
    ended: watch::Receiver<Ended>,
    /// Errors of flushes cancelled after the writer replied.
    unclaimed: Unclaimed,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for BackgroundWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundWriter")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl BackgroundWriter {
    pub(crate) fn start(
        options: Options,
        encode: Encode,
        target: impl Target,
    ) -> Result<Self, LedgerError> {
        // The builders check these, naming their own options; a queue of none
        // (or of more than Tokio's channel takes) would panic, so they are
        // checked again here.
        super::check_options(
            None,
            super::capacity_checks(options.capacity, "capacity")
                .into_iter()
                .chain([(
                    options.sync_every.is_some_and(|d| d.is_zero()),
                    "sync_every",
                    "sync_every must be longer than zero",
                )]),
        )?;
        // One more message for the periodic sync's tick (at most one is queued):
        // the ticks never take room from receipts. (At the channel's limit, the
        // capacity itself, a tick may take one slot of 2^61.)
        let slots = match options.sync_every {
            Some(_) => options.capacity.saturating_add(1).min(super::MAX_CAPACITY),
            None => options.capacity,
        };
        let (tx, rx) = mpsc::channel(slots);
        let counters = Arc::new(Counters::default());
        let pool = Arc::new(LinePool::default());
        let (end, ended) = watch::channel(None);
        let unclaimed = Unclaimed::default();
        let tick_pending = Arc::new(AtomicBool::new(false));
        // The sync thread waits on this between ticks; the worker drops the
        // sender when it ends, which wakes the thread to stop.
        let (sync_stop, sync_stopped) = std::sync::mpsc::channel::<()>();
        let worker = Worker {
            end,
            kind: options.kind,
            name: options.name.clone(),
            rx,
            target,
            buf: Vec::with_capacity(BUFFER_BYTES + 4096),
            lines: Vec::with_capacity(BATCH),
            unsynced: false,
            error: None,
            target_panicked: false,
            unclaimed: unclaimed.clone(),
            counters: counters.clone(),
            pool: pool.clone(),
            tick_pending: tick_pending.clone(),
            _sync_stop: sync_stop,
        };
        let thread = std::thread::Builder::new()
            .name(format!("sagemeter-{}", options.kind))
            .spawn(move || worker.run())
            .map_err(|source| LedgerError::Open {
                path: options.name.clone(),
                source,
            })?;
        if let Some(every) = options.sync_every {
            // When an fsync takes longer than `every`, ticks would otherwise pile
            // up in the receipts' queue faster than the writer clears them (each
            // one an fsync), until the queue is full and receipts are dropped.
            // With one at a time, the writer fsyncs as often as the disk allows,
            // each fsync covering every line written before it.
            spawn_ticker(
                format!("sagemeter-{}-sync", options.kind),
                every,
                sync_stopped,
                tx.downgrade(),
                tick_pending,
                || Msg::Tick,
            )
            .map_err(|source| LedgerError::Open {
                path: options.name.clone(),
                source,
            })?;
        }
        Ok(BackgroundWriter {
            kind: options.kind,
            name: options.name,
            capacity: options.capacity,
            tx: Some(tx),
            encode,
            pool,
            closed: AtomicBool::new(false),
            counters,
            warn: WarnLimiter::new(),
            ended,
            unclaimed,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues one receipt without blocking; see [`Refused`] for when it does not.
    /// A refusal goes back to the caller, who still holds the receipt: nothing is
    /// counted or logged, so a caller that retries does not show up as a drop.
    pub(crate) fn try_record(&self, cost: &Cost) -> Result<(), Refused> {
        self.try_record_with(cost, &*self.encode)
    }

    /// [`try_record`](Self::try_record), the line made by `encode` rather than by
    /// the writer's own encoder: for a sink that knows more of this receipt than
    /// the receipt says (the EMF sink, whether the endpoint lists its component).
    pub(crate) fn try_record_with(
        &self,
        cost: &Cost,
        encode: &EncodeFn<'_>,
    ) -> Result<(), Refused> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Refused::Closed);
        }
        match self.tx().try_reserve() {
            Ok(permit) => {
                // Reserve first, encode after: a refused receipt costs nothing.
                let msg = self.line(cost, encode);
                let unencodable = matches!(msg, Msg::Unencodable(_));
                permit.send(msg);
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                if unencodable {
                    // Lost as to a failed write (the writer logs it and reports
                    // it to the next flush).
                    count_lost(&self.counters, self.kind, 1);
                }
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(Refused::Full),
            Err(mpsc::error::TrySendError::Closed(())) => Err(Refused::Closed),
        }
    }

    /// [`try_record`](Self::try_record) for a caller that cannot take a refusal
    /// back (`CostSink::record`): a refused receipt is dropped, and counted,
    /// measured and warned about as such.
    pub(crate) fn record(&self, cost: &Cost) {
        self.record_with(cost, &*self.encode);
    }

    /// [`record`](Self::record), the line made by `encode` (see
    /// [`try_record_with`](Self::try_record_with)).
    pub(crate) fn record_with(&self, cost: &Cost, encode: &EncodeFn<'_>) {
        if let Err(refused) = self.try_record_with(cost, encode) {
            self.dropped(refused);
        }
    }

    /// Counts, measures and (at most once per [`WARN_EVERY`]) logs a dropped receipt.
    #[cold]
    fn dropped(&self, refused: Refused) {
        let (counter, reason) = match refused {
            Refused::Full => (&self.counters.dropped_full, "full"),
            Refused::Closed => (&self.counters.refused_closed, "closed"),
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!("sagemeter_sink_dropped_total", "sink" => self.kind, "reason" => reason)
            .increment(1);
        if self.warn.should_warn() {
            match refused {
                Refused::Full => tracing::warn!(target: "sagemeter", sink = self.kind,
                    name = %self.name.display(), dropped = n, capacity = self.capacity,
                    "receipt dropped: the sink's queue is full (the writer cannot keep up); \
                     the receipt is still returned to the caller and counted in the totals"),
                Refused::Closed => tracing::warn!(target: "sagemeter", sink = self.kind,
                    name = %self.name.display(), refused = n,
                    "receipt refused: the sink was shut down"),
            }
        }
    }

    /// The message carrying `cost`'s line, encoded by `encode` in this thread's
    /// scratch buffer and copied into a buffer from the pool.
    fn line(&self, cost: &Cost, encode: &EncodeFn<'_>) -> Msg {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            let mut refs = Refs::default();
            let msg = match encode(cost, scratch, &mut refs) {
                // A line no reader takes would make every line after it in the
                // file unreadable: the receipt is lost instead, counted and said.
                Ok(()) if scratch.len() > crate::ledger::reader::MAX_LINE_BYTES + 1 => {
                    Msg::Unencodable(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "receipt {} is a line of {} bytes, over the {} MiB a ledger line \
                             may hold (its tags?): not written",
                            cost.call_id,
                            scratch.len(),
                            crate::ledger::reader::MAX_LINE_BYTES >> 20
                        ),
                    ))
                }
                Ok(()) => Msg::Line(self.pool.copy_of(scratch), refs),
                Err(e) => Msg::Unencodable(io::Error::new(io::ErrorKind::InvalidData, e)),
            };
            // A receipt with very many tags does not keep its room forever.
            if scratch.capacity() > SCRATCH_BYTES {
                *scratch = Vec::new();
            }
            msg
        })
    }

    /// Queues a line that is not a receipt (a price change record), best effort:
    /// when the queue is full or closed it is dropped with a WARN (rate-limited).
    pub(crate) fn record_line(&self, line: Vec<u8>) {
        let dropped =
            self.closed.load(Ordering::Acquire) || self.tx().try_send(Msg::Record(line)).is_err();
        if dropped && self.warn.should_warn() {
            tracing::warn!(target: "sagemeter", sink = self.kind, name = %self.name.display(),
                "a record other than a receipt (a price change) was dropped: the sink's \
                 queue is full or closed");
        }
    }

    /// Waits until everything accepted before this call has been written
    /// (and fsynced when `sync`). After a shutdown, waits for the writer to
    /// finish and returns how it ended.
    pub(crate) async fn flush(&self, sync: bool) -> Result<(), LedgerError> {
        let (ack, mut done) = Reply::channel(&self.unclaimed);
        if self.tx().send(Msg::Flush { sync, ack }).await.is_err() {
            return self.ended().await;
        }
        match done.recv().await {
            Ok(result) => result.map_err(|source| self.write_error(source)),
            Err(_) => self.ended().await,
        }
    }

    /// Refuses new receipts, writes and fsyncs everything accepted, stops the
    /// thread. Every call returns the same result: a later one waits for the
    /// writer to finish.
    pub(crate) async fn shutdown(&self) -> Result<(), LedgerError> {
        self.closed.store(true, Ordering::Release);
        let (ack, done) = oneshot::channel();
        if self.tx().send(Msg::Shutdown { ack }).await.is_err() {
            return self.ended().await; // shut down already, or being shut down
        }
        match done.await {
            Ok(result) => result.map_err(|source| self.write_error(source)),
            Err(_) => self.ended().await,
        }
    }

    pub(crate) fn stats(&self) -> SinkStats {
        self.counters.stats()
    }

    fn tx(&self) -> &mpsc::Sender<Msg> {
        self.tx.as_ref().expect("the sender lives until drop")
    }

    /// For a call the queue no longer takes: waits until the writer has written
    /// what it was given, and returns its final result (the same for every
    /// caller); [`LedgerError::WriterStopped`] if it panicked.
    async fn ended(&self) -> Result<(), LedgerError> {
        match wait_ended(&self.ended).await {
            Some(result) => result.map_err(|source| self.write_error(source)),
            None => Err(LedgerError::WriterStopped {
                path: self.name.clone(),
            }),
        }
    }

    fn write_error(&self, source: io::Error) -> LedgerError {
        LedgerError::Write {
            path: self.name.clone(),
            lost: self.counters.lost_on_error.load(Ordering::Relaxed),
            source,
        }
    }
}

impl Drop for BackgroundWriter {
    /// Dropping the last handle closes the queue; the writer drains it, writes,
    /// fsyncs and stops, and this waits for it (like `BufWriter`'s drop), so that
    /// a program that forgets `shutdown()` still loses nothing it acknowledged.
    fn drop(&mut self) {
        drop(self.tx.take());
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!(target: "sagemeter", sink = self.kind,
                name = %self.name.display(), "the sink's writer thread panicked");
        }
    }
}

/// Counts `n` receipts lost by a sink of `kind` (a failed write, or a receipt
/// refused for its line): in `lost_on_error` and in
/// `sagemeter_sink_dropped_total{sink=kind,reason="io"}`.
pub(crate) fn count_lost(counters: &Counters, kind: &'static str, n: u64) {
    count_lost_as(counters, kind, n, "io");
}

/// [`count_lost`] with the counter's `reason`: `io`, or `panicked` for receipts
/// lost to a writer that panicked (in that write, or earlier).
fn count_lost_as(counters: &Counters, kind: &'static str, n: u64, reason: &'static str) {
    counters.lost_on_error.fetch_add(n, Ordering::Relaxed);
    metrics::counter!("sagemeter_sink_dropped_total", "sink" => kind, "reason" => reason)
        .increment(n);
}

/// The error of a write or sync given to a target that panicked (then or
/// before): it wrote nothing, and is not used again.
fn panicked_error() -> io::Error {
    io::Error::other(
        "the sink's writer panicked: what it was given is lost, and it is not used again \
         (every later write fails the same way)",
    )
}

/// The writer thread's state.
struct Worker<T> {
    /// Says how the thread ended (dropped unset if it panics).
    end: watch::Sender<Ended>,
    kind: &'static str,
    name: PathBuf,
    rx: mpsc::Receiver<Msg>,
    target: T,
    /// Encoded lines not yet handed to the target.
    buf: Vec<u8>,
    /// The receipts' lines in `buf`.
    lines: Vec<LineMeta>,
    /// Written since the last sync.
    unsynced: bool,
    /// The first write error since the last flush reply.
    error: Option<io::Error>,
    /// The target panicked in a write or sync (the user's writer, say): it is
    /// not used again, every later write and sync failing as that one did.
    target_panicked: bool,
    /// Errors of flushes cancelled after their reply was sent.
    unclaimed: Unclaimed,
    counters: Arc<Counters>,
    /// Where written lines' buffers go back to.
    pool: Arc<LinePool>,
    /// Set while a [`Msg::Tick`] is queued (the sync thread queues at most one).
    tick_pending: Arc<AtomicBool>,
    /// Dropped with the worker: tells the sync thread (if any) to stop.
    _sync_stop: std::sync::mpsc::Sender<()>,
}

impl<T: Target> Worker<T> {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut shutdown_acks = Vec::new();
        // Ends when the queue is closed (shutdown, or every handle dropped) and empty.
        while self.rx.blocking_recv_many(&mut batch, BATCH) > 0 {
            for msg in batch.drain(..) {
                match msg {
                    Msg::Line(line, refs) => {
                        self.push(&line, refs, true);
                        self.pool.put(line);
                    }
                    Msg::Record(line) => self.push(&line, Refs::default(), false),
                    Msg::Unencodable(e) => {
                        // A line over the readers' limit; or what cannot happen
                        // with the receipt types (no maps with non-string keys, no
                        // failing Serialize impls): counted (when queued) rather
                        // than panicking.
                        tracing::error!(target: "sagemeter", error = %e, "receipt lost");
                        self.error.get_or_insert(e);
                    }
                    Msg::Flush { ack, .. } if !shutdown_acks.is_empty() => {
                        // Called after the shutdown (queued behind it): it gets
                        // the final result, as the shutdown does. Answered now, it
                        // would take the pending error and skip the final fsync,
                        // and the shutdown would say Ok with a receipt lost.
                        shutdown_acks.push(ack);
                    }
                    Msg::Flush { sync, ack } => {
                        let result = self.flush(sync);
                        // Its caller gave up waiting (a flush cancelled by a
                        // timeout): the error is nobody's yet, and is kept for
                        // the next flush or shutdown, which would say Ok otherwise.
                        if let Err(Err(e)) = ack.send(result) {
                            self.error.get_or_insert(e);
                        }
                    }
                    Msg::Shutdown { ack } => {
                        // No new messages; the ones queued are still drained below.
                        self.rx.close();
                        shutdown_acks.push(ack);
                    }
                    Msg::Tick => {
                        // Taken off the queue: the next tick may be queued, and
                        // covers whatever comes in during this fsync.
                        self.tick_pending.store(false, Ordering::Release);
                        if self.unsynced || !self.buf.is_empty() {
                            let result = self.flush(true);
                            if let Err(e) = result {
                                self.error.get_or_insert(e);
                            }
                        }
                    }
                }
            }
            if self.rx.is_empty() {
                // The queue ran dry: give the callers a moment to queue more, so
                // that one write and one wake-up carry many receipts rather than
                // one each, then, still idle, hand what we have to the OS now
                // rather than at 64 KiB.
                std::thread::sleep(COALESCE);
                if self.rx.is_empty() {
                    self.write_out();
                }
            }
        }
        let result = self.flush(true).map_err(Arc::new);
        // Closed (its lock released) before any caller hears that the writer is
        // done: a ledger shut down can be opened again at once. A writer of the
        // user's may panic here too (a buffer flushed on drop): the thread still
        // says how it ended.
        let target = self.target;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(target))).is_err() {
            tracing::error!(target: "sagemeter", sink = self.kind, name = %self.name.display(),
                "the sink's writer panicked when it was closed: what it still held is lost");
        }
        if let Err(e) = &result
            && shutdown_acks.is_empty()
        {
            tracing::error!(target: "sagemeter", sink = self.kind, name = %self.name.display(),
                error = %e, "final write of the sink failed");
        }
        // Every shutdown, every flush queued behind one, and every flush or
        // shutdown too late for the queue, gets the same result.
        self.end.send_replace(Some(result.clone()));
        for ack in shutdown_acks {
            let _ = ack.send(result.clone().map_err(shared_error));
        }
    }

    fn push(&mut self, line: &[u8], refs: Refs, receipt: bool) {
        self.buf.extend_from_slice(line);
        self.lines.push(LineMeta {
            len: line.len(),
            refs,
            receipt,
        });
        if self.buf.len() >= BUFFER_BYTES {
            self.write_out();
        }
    }

    /// Hands the buffer to the target; on failure the receipts it did not write
    /// are lost (counted; those written before the failure are counted written)
    /// and the error is kept for the next flush reply.
    fn write_out(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let result = self.write_target();
        let done = match &result {
            Ok(()) => self.lines.len(),
            Err(failure) => failure.written.min(self.lines.len()),
        };
        let (written, rest) = self.lines.split_at(done);
        let receipts = |lines: &[LineMeta]| lines.iter().filter(|l| l.receipt).count() as u64;
        let (written, lost) = (receipts(written), receipts(rest));
        self.counters.written.fetch_add(written, Ordering::Relaxed);
        match result {
            Ok(()) => self.unsynced = true,
            Err(WriteFailure { source, .. }) => {
                // Lines may have been written (and a file rolled): the next
                // sync goes to the target.
                self.unsynced = true;
                let reason = if self.target_panicked {
                    "panicked"
                } else {
                    "io"
                };
                count_lost_as(&self.counters, self.kind, lost, reason);
                tracing::error!(target: "sagemeter", sink = self.kind,
                    name = %self.name.display(), lost, written, error = %source,
                    "write failed: receipts lost (those written before the failure are kept)");
                self.error.get_or_insert(source);
            }
        }
        self.buf.clear();
        self.lines.clear();
    }

    /// The target's `write_lines`, a panic in it taken as a failed write that
    /// wrote nothing (the target is not used again).
    fn write_target(&mut self) -> Result<(), WriteFailure> {
        if self.target_panicked {
            return Err(panicked_error().into());
        }
        let (target, buf, lines) = (&mut self.target, &self.buf, &self.lines);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            target.write_lines(buf, lines)
        }))
        .unwrap_or_else(|_| {
            self.target_panicked = true;
            Err(panicked_error().into())
        })
    }

    /// The target's `sync`, a panic in it taken as a failed sync (the target is
    /// not used again).
    fn sync_target(&mut self) -> io::Result<()> {
        if self.target_panicked {
            return Err(panicked_error());
        }
        let target = &mut self.target;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.sync())).unwrap_or_else(
            |_| {
                self.target_panicked = true;
                Err(panicked_error())
            },
        )
    }

    fn flush(&mut self, sync: bool) -> io::Result<()> {
        self.write_out();
        if sync && self.unsynced {
            match self.sync_target() {
                Ok(()) => self.unsynced = false,
                Err(e) => {
                    self.error.get_or_insert(e);
                }
            }
        }
        match self
            .error
            .take()
            .or_else(|| take_unclaimed(&self.unclaimed))
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Lets one WARN through per [`WARN_EVERY`].
pub(crate) struct WarnLimiter {
    start: Instant,
    /// Milliseconds since `start` of the last WARN, `u64::MAX` before the first.
    last_ms: AtomicU64,
}

impl WarnLimiter {
    pub(crate) fn new() -> Self {
        WarnLimiter {
            start: Instant::now(),
            last_ms: AtomicU64::new(u64::MAX),
        }
    }

    pub(crate) fn should_warn(&self) -> bool {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != u64::MAX && now.saturating_sub(last) < WARN_EVERY.as_millis() as u64 {
            return false;
        }
        self.last_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// A target over any `Write` (stdout, a socket, a test buffer): each batch is
/// written and flushed; `sync` is a flush.
///
/// A stream cannot be cut back as a file can: a write that fails part-way
/// leaves the lines it took whole (counted written) and perhaps the start of
/// the next (a fragment, whose receipt is lost with the rest of the batch).
/// The next write first ends that fragment with a newline, so that it is a line
/// of its own (a reader skips it as invalid) and no receipt's line is ever
/// glued to it. A failed `flush` after every byte was taken counts the batch
/// lost: a writer that holds bytes (a `BufWriter`) may pass them on later or
/// drop them with itself, and which is not known, so none is counted written
/// that may never arrive.
pub(crate) struct StreamTarget {
    out: Box<dyn io::Write + Send>,
    /// The output ends inside a line (a write failed part-way through it).
    torn: bool,
}

impl StreamTarget {
    /// A target writing to `out`.
    pub(crate) fn new(out: Box<dyn io::Write + Send>) -> Self {
        StreamTarget { out, torn: false }
    }

    /// Writes `bytes` as `write_all` does, but says how many were taken when it
    /// fails.
    fn write_counted(&mut self, bytes: &[u8]) -> Result<(), (usize, io::Error)> {
        let mut taken = 0;
        while taken < bytes.len() {
            match self.out.write(&bytes[taken..]) {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "the writer took no bytes");
                    return Err((taken, e));
                }
                Ok(n) => taken += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((taken, e)),
            }
        }
        Ok(())
    }

    /// Ends the fragment a failed write left, if any, with a newline.
    fn mend(&mut self) -> io::Result<()> {
        if self.torn {
            self.write_counted(b"\n").map_err(|(_, e)| e)?;
            self.torn = false;
        }
        Ok(())
    }
}

impl Target for StreamTarget {
    fn write_lines(&mut self, bytes: &[u8], lines: &[LineMeta]) -> Result<(), WriteFailure> {
        // Nothing of the batch follows a fragment: none of it is written if the
        // fragment cannot be ended.
        self.mend()?;
        if let Err((taken, source)) = self.write_counted(bytes) {
            // The lines taken whole; the output ends mid-line unless `taken`
            // falls on a line's end.
            let mut end = 0;
            let mut written = 0;
            for line in lines {
                if end + line.len > taken {
                    break;
                }
                end += line.len;
                written += 1;
            }
            self.torn = taken > end;
            return Err(WriteFailure { written, source });
        }
        self.out
            .flush()
            .map_err(|source| WriteFailure { written: 0, source })
    }

    fn sync(&mut self) -> io::Result<()> {
        // A shutdown after a failed write leaves no fragment at the end.
        self.mend()?;
        self.out.flush()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::mpsc as std_mpsc;

    /// A target that blocks every write until the test lets it go, and keeps
    /// what it was given and how much of it each sync made durable.
    struct Gated {
        entered: std_mpsc::Sender<()>,
        gate: std_mpsc::Receiver<()>,
        out: Arc<Mutex<Vec<u8>>>,
        synced: Arc<Mutex<Vec<usize>>>,
        fail: Arc<AtomicBool>,
        panic: Arc<AtomicBool>,
    }

    impl Target for Gated {
        fn write_lines(&mut self, bytes: &[u8], _: &[LineMeta]) -> Result<(), WriteFailure> {
            let _ = self.entered.send(());
            let _ = self.gate.recv();
            if self.panic.load(Ordering::SeqCst) {
                panic!("the target panics (a test)");
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(io::Error::other("disk on fire").into());
            }
            self.out.lock().unwrap().extend_from_slice(bytes);
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            let written = self.out.lock().unwrap().len();
            self.synced.lock().unwrap().push(written);
            Ok(())
        }
    }

    /// Writes the call id as the line; a receipt whose call id is `unencodable`
    /// fails as a failing `Serialize` impl would.
    fn encode_call_id() -> Encode {
        Box::new(|cost: &Cost, out: &mut Vec<u8>, _: &mut Refs| {
            if cost.call_id == "unencodable" {
                return Err(serde_json::from_str::<u8>("not a number").unwrap_err());
            }
            out.extend_from_slice(cost.call_id.as_bytes());
            out.push(b'\n');
            Ok(())
        })
    }

    /// A receipt of `rt` with this call id, costing nothing (the ledger's tests'
    /// receipt).
    pub(in crate::ledger) fn cost(id: &str) -> Cost {
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

    struct Harness {
        /// Lets one write through. Dropped before the writer (fields drop in
        /// order), so that a test failing with the gate closed lets the writer's
        /// drop finish instead of waiting on the gate for ever.
        open: std_mpsc::SyncSender<()>,
        writer: BackgroundWriter,
        /// Says a write has started (and is waiting for `open`).
        entered: std_mpsc::Receiver<()>,
        out: Arc<Mutex<Vec<u8>>>,
        /// The bytes written by the time of each sync, in order.
        synced: Arc<Mutex<Vec<usize>>>,
        fail: Arc<AtomicBool>,
        /// Makes the next write let through panic.
        panic: Arc<AtomicBool>,
    }

    impl Harness {
        /// Lets every write through from now on.
        fn open_gate(&self) {
            let open = self.open.clone();
            std::thread::spawn(move || while open.send(()).is_ok() {});
        }

        /// Flushes, then what was written, and the accepted, written and
        /// dropped counts.
        async fn flushed(&self) -> (String, u64, u64, u64) {
            self.writer.flush(false).await.unwrap();
            let stats = self.writer.stats();
            (
                self.written(),
                stats.accepted,
                stats.written,
                stats.dropped_full,
            )
        }

        fn written(&self) -> String {
            String::from_utf8(self.out.lock().unwrap().clone()).unwrap()
        }

        fn synced(&self) -> Vec<usize> {
            self.synced.lock().unwrap().clone()
        }
    }

    /// A writer blocked writing "a", its queue of `capacity` (at most 3) full
    /// with "b", "c", ...
    fn blocked_with_full_queue(capacity: usize) -> Harness {
        let h = gated(capacity);
        h.writer.try_record(&cost("a")).unwrap();
        h.entered.recv().unwrap();
        for name in ["b", "c", "d"].into_iter().take(capacity) {
            h.writer.try_record(&cost(name)).unwrap();
        }
        h
    }

    fn gated(capacity: usize) -> Harness {
        // A rendezvous channel: each send lets exactly one write through.
        let (open, gate) = std_mpsc::sync_channel(0);
        let (entered_tx, entered) = std_mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let synced = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicBool::new(false));
        let panic = Arc::new(AtomicBool::new(false));
        let writer = BackgroundWriter::start(
            Options {
                // The JSONL ledgers' kind: the writer as they run it.
                kind: "ledger",
                name: "test".into(),
                capacity,
                sync_every: None,
            },
            encode_call_id(),
            Gated {
                entered: entered_tx,
                gate,
                out: out.clone(),
                synced: synced.clone(),
                fail: fail.clone(),
                panic: panic.clone(),
            },
        )
        .unwrap();
        Harness {
            open,
            writer,
            entered,
            out,
            synced,
            fail,
            panic,
        }
    }

    #[tokio::test]
    async fn written_lines_give_their_buffers_back_for_the_next_receipts() {
        let h = gated(1_000);
        // The writer takes call-0, gives its buffer back, then blocks writing it
        // out for a flush (the gate is closed): until the gate opens, only this
        // test changes the pool.
        h.writer.try_record(&cost("call-0")).unwrap();
        let (ack, first_flush) = oneshot::channel();
        h.writer
            .tx()
            .send(Msg::Flush { sync: false, ack })
            .await
            .unwrap();
        h.entered.recv().unwrap();
        assert_eq!(h.writer.pool.len(), 1, "a written line's buffer is kept");
        h.writer.try_record(&cost("call-1")).unwrap();
        assert_eq!(h.writer.pool.len(), 0, "the next receipt takes it");
        h.writer.try_record(&cost("call-2")).unwrap();
        h.writer.try_record(&cost("call-3")).unwrap();
        h.open_gate();
        first_flush.await.unwrap().unwrap();
        h.writer.flush(false).await.unwrap();
        assert_eq!(h.writer.pool.len(), 3, "and every buffer comes back");
        assert_eq!(h.written(), "call-0\ncall-1\ncall-2\ncall-3\n");

        // Bounded: no more than one batch's worth, and no oversized buffers.
        let pool = LinePool::default();
        for _ in 0..POOL_BUFFERS + 10 {
            pool.put(Vec::with_capacity(64));
        }
        pool.put(Vec::with_capacity(POOL_BUFFER_BYTES + 1));
        assert_eq!(pool.len(), POOL_BUFFERS);
        assert!(pool.copy_of(b"x\n").capacity() <= POOL_BUFFER_BYTES);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_and_never_blocks_and_every_accepted_receipt_is_written()
    {
        use metrics_util::debugging::DebuggingRecorder;
        // The drops are counted on the recording thread: this test's.
        let recorder = DebuggingRecorder::new();
        let _metrics = metrics::set_default_local_recorder(&recorder);
        let h = blocked_with_full_queue(2);
        // The sink's own path drops what does not fit, without waiting.
        h.writer.record(&cost("d"));
        h.writer.record(&cost("e"));
        h.open_gate();
        assert_eq!(h.flushed().await, ("a\nb\nc\n".to_owned(), 3, 3, 2));
        // And says so in sagemeter_sink_dropped_total{sink="ledger",reason="full"}.
        let label = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            dropped_total(&recorder),
            [(vec![label("reason", "full"), label("sink", "ledger")], 2)]
        );
    }

    /// `sagemeter_sink_dropped_total` as `recorder` holds it: each series' labels
    /// (sorted) and count.
    fn dropped_total(
        recorder: &metrics_util::debugging::DebuggingRecorder,
    ) -> Vec<(Vec<(String, String)>, u64)> {
        use metrics_util::debugging::DebugValue;
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == "sagemeter_sink_dropped_total")
            .map(|(k, _, _, v)| {
                let mut labels: Vec<(String, String)> = k
                    .key()
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                labels.sort();
                let n = match v {
                    DebugValue::Counter(n) => n,
                    other => panic!("{other:?}"),
                };
                (labels, n)
            })
            .collect()
    }

    /// A receipt refused before it reaches the file (its line over the 16 MiB a
    /// reader takes, or one that cannot be encoded) is lost like one a failed
    /// write loses: counted in `lost_on_error` and in
    /// `sagemeter_sink_dropped_total{sink="ledger",reason="io"}`, as the Parquet
    /// ledger counts its refusals. Two refused here: 2 in each.
    #[tokio::test]
    async fn a_receipt_refused_for_its_line_is_counted_in_the_dropped_metric_as_lost() {
        use metrics_util::debugging::DebuggingRecorder;
        let recorder = DebuggingRecorder::new();
        let _metrics = metrics::set_default_local_recorder(&recorder);
        let h = gated(8);
        h.open_gate();
        let too_long = "x".repeat(crate::ledger::reader::MAX_LINE_BYTES + 1);
        for id in ["a", &too_long, "unencodable", "b"] {
            h.writer.try_record(&cost(id)).unwrap();
        }
        let err = h.writer.flush(false).await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 2, .. }), "{err:?}");
        assert_eq!(h.written(), "a\nb\n");
        let stats = h.writer.stats();
        assert_eq!(
            (stats.accepted, stats.written, stats.lost_on_error),
            (4, 2, 2)
        );
        let label = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            dropped_total(&recorder),
            [(vec![label("reason", "io"), label("sink", "ledger")], 2)]
        );
    }

    /// `flush(true)` (a ledger's `sync()`) and `shutdown()` each make what was
    /// written before them durable; a plain flush only writes.
    #[tokio::test]
    async fn a_sync_and_a_shutdown_each_sync_what_was_written_before_them() {
        let h = gated(8);
        h.open_gate();
        h.writer.try_record(&cost("a")).unwrap();
        h.writer.flush(true).await.unwrap();
        assert_eq!(h.synced(), [2], "a\\n written, then synced");
        h.writer.try_record(&cost("b")).unwrap();
        h.writer.flush(false).await.unwrap();
        assert_eq!(h.written(), "a\nb\n");
        assert_eq!(h.synced(), [2], "a flush without sync does not sync");
        h.writer.try_record(&cost("c")).unwrap();
        h.writer.shutdown().await.unwrap();
        assert_eq!(h.written(), "a\nb\nc\n");
        assert_eq!(h.synced(), [2, 6], "the shutdown synced a, b and c");
    }

    #[tokio::test]
    async fn a_receipt_try_record_refuses_goes_back_to_the_caller_uncounted_and_a_retry_is_written()
    {
        let h = blocked_with_full_queue(1);
        assert_eq!(h.writer.try_record(&cost("c")), Err(Refused::Full));
        assert_eq!(
            h.writer.stats().dropped_full,
            0,
            "the caller still holds it"
        );
        h.open_gate();
        // Retried until taken, as a caller that keeps every receipt would (bounded).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while h.writer.try_record(&cost("c")).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the queue never drained"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(h.flushed().await, ("a\nb\nc\n".to_owned(), 3, 3, 0));
    }

    #[tokio::test]
    async fn a_receipt_that_cannot_be_encoded_is_counted_lost_and_reported_by_the_next_flush() {
        let h = gated(8);
        h.open_gate();
        h.writer.try_record(&cost("a")).unwrap();
        h.writer.try_record(&cost("unencodable")).unwrap();
        h.writer.try_record(&cost("b")).unwrap();
        let err = h.writer.flush(false).await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
        // Nothing of it was written; the receipts around it were, and writing goes on.
        h.writer.try_record(&cost("c")).unwrap();
        h.writer.flush(false).await.unwrap();
        assert_eq!(h.written(), "a\nb\nc\n");
        let stats = h.writer.stats();
        assert_eq!(
            (stats.accepted, stats.written, stats.lost_on_error),
            (4, 3, 1)
        );
    }

    #[tokio::test]
    async fn after_shutdown_records_are_refused_and_counted() {
        let h = gated(8);
        h.open_gate();
        h.writer.try_record(&cost("a")).unwrap();
        h.writer.shutdown().await.unwrap();
        assert_eq!(h.writer.try_record(&cost("b")), Err(Refused::Closed));
        assert_eq!(
            h.writer.stats().refused_closed,
            0,
            "handed back, not dropped"
        );
        h.writer.record(&cost("c"));
        assert_eq!(h.writer.stats().refused_closed, 1);
        // Flush and shutdown again are harmless.
        h.writer.flush(true).await.unwrap();
        h.writer.shutdown().await.unwrap();
        assert_eq!(h.written(), "a\n");
    }

    /// Polls `future` once: `Some` with its output if it is done already.
    pub(crate) fn poll_once<F: Future>(future: Pin<&mut F>) -> Option<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.poll(&mut cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }

    /// A writer draining its queue after a shutdown, blocked writing "b": "a" is
    /// written, the queue is closed, "b" is not written yet. Returns the shutdown
    /// call (queued, not done).
    fn draining_after_shutdown(
        h: &Harness,
    ) -> Pin<Box<impl Future<Output = Result<(), LedgerError>> + '_>> {
        h.writer.try_record(&cost("a")).unwrap();
        h.entered.recv().unwrap(); // writing "a"
        h.writer.try_record(&cost("b")).unwrap();
        let mut shutdown = Box::pin(h.writer.shutdown());
        assert!(poll_once(shutdown.as_mut()).is_none(), "queued behind a, b");
        h.open.send(()).unwrap(); // "a" is written
        // The next batch is "b" then the shutdown: the writer closes the queue,
        // then blocks writing "b".
        h.entered.recv().unwrap();
        shutdown
    }

    #[tokio::test]
    async fn flush_or_shutdown_after_a_shutdown_waits_for_the_drain_and_returns_its_result() {
        let h = gated(8);
        let mut first = draining_after_shutdown(&h);
        // The queue no longer takes them: each waits for the writer instead of
        // saying Ok while "b" is not written.
        let mut flush = Box::pin(h.writer.flush(false));
        assert!(
            poll_once(flush.as_mut()).is_none(),
            "flush returned before b was written"
        );
        let mut second = Box::pin(h.writer.shutdown());
        assert!(
            poll_once(second.as_mut()).is_none(),
            "shutdown returned before b was written"
        );
        assert!(poll_once(first.as_mut()).is_none());

        h.open_gate();
        first.await.unwrap();
        flush.await.unwrap();
        second.await.unwrap();
        assert_eq!(h.written(), "a\nb\n");
        h.writer.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn every_shutdown_returns_the_error_of_the_final_write() {
        let h = gated(8);
        let first = draining_after_shutdown(&h);
        let second = h.writer.shutdown();
        h.fail.store(true, Ordering::SeqCst); // "b" fails
        h.open_gate();
        let (first, second) = tokio::join!(first, second);
        for err in [first.unwrap_err(), second.unwrap_err()] {
            assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
            assert!(err.to_string().contains("disk on fire"), "{err}");
        }
        // And so does any later flush or shutdown: "b" never made it.
        let later = h.writer.shutdown().await.unwrap_err();
        assert!(later.to_string().contains("disk on fire"), "{later}");
        let flush = h.writer.flush(true).await.unwrap_err();
        assert!(
            matches!(flush, LedgerError::Write { lost: 1, .. }),
            "{flush:?}"
        );
        assert_eq!(h.written(), "a\n");
    }

    /// A flush called just after a shutdown, before the writer took the
    /// shutdown from the queue, returns the shutdown's own final result: it
    /// neither takes the pending write error for itself (the shutdown then said
    /// Ok with a receipt lost) nor returns before the final fsync.
    #[tokio::test]
    async fn a_flush_queued_behind_a_shutdown_returns_the_same_final_error() {
        let h = gated(8);
        h.fail.store(true, Ordering::SeqCst); // "a" fails: lost_on_error = 1
        h.writer.try_record(&cost("a")).unwrap();
        h.entered.recv().unwrap(); // writing "a", blocked on the gate
        let mut shutdown = Box::pin(h.writer.shutdown());
        assert!(poll_once(shutdown.as_mut()).is_none(), "queued behind a");
        let mut flush = Box::pin(h.writer.flush(false));
        assert!(
            poll_once(flush.as_mut()).is_none(),
            "queued behind shutdown"
        );
        h.open_gate();
        let (shutdown, flush) = tokio::join!(shutdown, flush);
        for err in [shutdown.unwrap_err(), flush.unwrap_err()] {
            assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
            assert!(err.to_string().contains("disk on fire"), "{err}");
        }
        assert_eq!(h.written(), "");
    }

    /// A target that panics fails its write rather than Ok: the receipt it was
    /// given is lost and counted, and every later call says so (it was
    /// `WriterStopped`, the thread gone with nothing counted, before the writer
    /// caught the panic).
    #[tokio::test]
    async fn a_writer_that_panics_while_draining_says_its_write_failed_rather_than_ok() {
        let h = gated(8);
        let first = draining_after_shutdown(&h);
        let flush = h.writer.flush(false);
        h.panic.store(true, Ordering::SeqCst);
        h.open_gate();
        let (first, flush) = tokio::join!(first, flush);
        for err in [first.unwrap_err(), flush.unwrap_err()] {
            assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
            assert!(err.to_string().contains("panicked"), "{err}");
        }
        let again = h.writer.shutdown().await.unwrap_err();
        assert!(
            matches!(again, LedgerError::Write { lost: 1, .. }),
            "{again:?}"
        );
        let stats = h.writer.stats();
        assert_eq!((stats.written, stats.lost_on_error), (1, 1));
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_by_the_next_flush_with_the_count_lost_then_writing_resumes()
    {
        let h = gated(8);
        h.open_gate();
        h.fail.store(true, Ordering::SeqCst);
        h.writer.try_record(&cost("a")).unwrap();
        h.writer.try_record(&cost("b")).unwrap();
        let err = h.writer.flush(false).await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("disk on fire"), "{err}");
        h.fail.store(false, Ordering::SeqCst);
        h.writer.try_record(&cost("c")).unwrap();
        h.writer.flush(false).await.unwrap();
        assert_eq!(h.written(), "c\n");
        let stats = h.writer.stats();
        assert_eq!(
            (stats.accepted, stats.written, stats.lost_on_error),
            (3, 1, 2)
        );
    }

    #[tokio::test]
    async fn the_error_of_a_cancelled_flush_is_reported_by_the_next_flush() {
        let h = gated(8);
        h.fail.store(true, Ordering::SeqCst);
        h.writer.try_record(&cost("a")).unwrap();
        h.entered.recv().unwrap(); // writing "a", which will fail
        {
            // A flush given up on (a timeout): its Flush is queued, nobody waits.
            let mut flush = Box::pin(h.writer.flush(false));
            assert!(poll_once(flush.as_mut()).is_none(), "queued behind a");
        }
        h.open_gate();
        // "a" was acknowledged and never written: the next flush says so.
        let err = h.writer.flush(false).await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
        assert!(err.to_string().contains("disk on fire"), "{err}");
        // Said once: the flush after it has nothing more to report.
        h.writer.flush(false).await.unwrap();
        assert_eq!(h.written(), "");
    }

    #[tokio::test]
    async fn the_error_of_a_flush_cancelled_after_its_reply_is_reported_by_the_next_flush() {
        let h = gated(8);
        h.fail.store(true, Ordering::SeqCst);
        h.writer.try_record(&cost("a")).unwrap();
        h.entered.recv().unwrap(); // writing "a", which will fail
        let mut flush = Box::pin(h.writer.flush(false));
        assert!(poll_once(flush.as_mut()).is_none(), "queued behind a");
        h.writer.try_record(&cost("b")).unwrap(); // queued behind the flush
        h.open.send(()).unwrap(); // "a" fails
        // The writer replies to the flush, then takes "b": when it writes "b",
        // the reply (the error) is waiting in the flush, which is then dropped
        // unread (its timeout fired first).
        h.entered.recv().unwrap();
        drop(flush);
        h.fail.store(false, Ordering::SeqCst);
        h.open_gate();
        let err = h.writer.flush(false).await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
        assert!(err.to_string().contains("disk on fire"), "{err}");
        h.writer.flush(false).await.unwrap();
        assert_eq!(h.written(), "b\n");
    }

    #[test]
    fn dropping_the_last_handle_writes_everything_accepted_without_a_runtime() {
        let h = gated(64);
        h.open_gate();
        for i in 0..50 {
            h.writer.try_record(&cost(&i.to_string())).unwrap();
        }
        let Harness { writer, out, .. } = h;
        drop(writer);
        let lines = out.lock().unwrap().iter().filter(|&&b| b == b'\n').count();
        assert_eq!(lines, 50);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let limiter = WarnLimiter::new();
        assert!(limiter.should_warn());
        assert!(!limiter.should_warn());
        assert!(!limiter.should_warn());
    }

    /// A stream that works through a script, one step a call, then takes
    /// everything; its flush fails while `flush_fails` is set.
    struct Scripted {
        out: Arc<Mutex<Vec<u8>>>,
        script: std::collections::VecDeque<Step>,
        flush_fails: Arc<AtomicBool>,
    }

    enum Step {
        /// Takes at most this many bytes.
        Take(usize),
        Fail(io::ErrorKind),
    }

    impl io::Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = match self.script.pop_front() {
                None => buf.len(),
                Some(Step::Take(n)) => n.min(buf.len()),
                Some(Step::Fail(kind)) => return Err(kind.into()),
            };
            self.out.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            if self.flush_fails.load(Ordering::SeqCst) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            Ok(())
        }
    }

    #[test]
    fn a_stream_cut_mid_line_counts_the_whole_lines_and_ends_the_fragment_first() {
        use io::ErrorKind::{Interrupted, StorageFull};
        let out = Arc::new(Mutex::new(Vec::new()));
        let flush_fails = Arc::new(AtomicBool::new(false));
        let mut target = StreamTarget::new(Box::new(Scripted {
            out: out.clone(),
            script: [
                // a1..a3: retried once interrupted, cut inside a2.
                Step::Fail(Interrupted),
                Step::Take(4),
                Step::Fail(StorageFull),
                // b1: the newline that ends a2's fragment is refused.
                Step::Fail(StorageFull),
                // c1, c2 whole; then e1, e2 cut at e1's end.
                Step::Take(1),
                Step::Take(6),
                Step::Take(3),
                Step::Fail(StorageFull),
            ]
            .into(),
            flush_fails: flush_fails.clone(),
        }));
        let text = || String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let write = |target: &mut StreamTarget, prefix, n| {
            let (bytes, lines) = test_lines(prefix, n);
            target.write_lines(&bytes, &lines).map_err(|f| f.written)
        };

        assert_eq!(write(&mut target, 'a', 3), Err(1), "a1 whole");
        assert_eq!(text(), "a1\na");
        // Nothing follows the fragment until it is a line of its own.
        assert_eq!(write(&mut target, 'b', 1), Err(0));
        assert_eq!(text(), "a1\na");
        assert_eq!(write(&mut target, 'c', 2), Ok(()));
        assert_eq!(text(), "a1\na\nc1\nc2\n");
        // Cut at a line's end: nothing to mend.
        assert_eq!(write(&mut target, 'e', 2), Err(1));
        assert_eq!(write(&mut target, 'f', 1), Ok(()));
        assert_eq!(text(), "a1\na\nc1\nc2\ne1\nf1\n");
        // A flush that fails after the writer took every byte: its lines may
        // never arrive (a buffering writer dropped unflushed), so none is
        // counted written.
        flush_fails.store(true, Ordering::SeqCst);
        assert_eq!(write(&mut target, 'g', 2), Err(0));
        assert_eq!(text(), "a1\na\nc1\nc2\ne1\nf1\ng1\ng2\n");
    }

    /// A queue of none, or of more than Tokio's channel takes (it would panic).
    #[test]
    fn a_capacity_of_zero_or_beyond_the_limit_is_rejected() {
        for capacity in [0, super::super::MAX_CAPACITY + 1, usize::MAX] {
            let err = BackgroundWriter::start(
                Options {
                    kind: "test",
                    name: "test".into(),
                    capacity,
                    sync_every: None,
                },
                encode_call_id(),
                StreamTarget::new(Box::new(io::sink())),
            )
            .unwrap_err();
            assert!(
                matches!(&err, LedgerError::InvalidOption(c) if c.option == "capacity"),
                "{capacity}: {err:?}"
            );
        }
    }

    /// `sync_every` shorter than an fsync takes: the writer fsyncs back to back,
    /// ticks never pile up in the receipts' queue, and nothing is dropped.
    ///
    /// Figures: a tick every 10 ms, each fsync 20 ms. Queued unmerged, 100 ticks
    /// a second arrive and 1 s / 20 ms = 50 are cleared, so the backlog grows by
    /// 50 ticks plus half the receipts a second: a queue of 64 fills within about
    /// a quarter of a second and about half the receipts after that are refused.
    /// With one tick queued at a time, the writer has at most one tick and the
    /// receipts of one fsync, 20 ms / 2 ms = 10, queued: 11 of 64 slots.
    #[test]
    fn a_sync_slower_than_sync_every_keeps_one_tick_queued_and_drops_nothing() {
        struct SlowSync {
            lines: Arc<AtomicU64>,
            syncs: Arc<AtomicU64>,
        }
        impl Target for SlowSync {
            fn write_lines(&mut self, _: &[u8], lines: &[LineMeta]) -> Result<(), WriteFailure> {
                self.lines.fetch_add(lines.len() as u64, Ordering::SeqCst);
                Ok(())
            }
            fn sync(&mut self) -> io::Result<()> {
                std::thread::sleep(Duration::from_millis(20));
                self.syncs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
        let (lines, syncs) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let writer = BackgroundWriter::start(
            Options {
                kind: "test",
                name: "test".into(),
                capacity: 64,
                sync_every: Some(Duration::from_millis(10)),
            },
            encode_call_id(),
            SlowSync {
                lines: lines.clone(),
                syncs: syncs.clone(),
            },
        )
        .unwrap();
        // A receipt every 2 ms (at least: a loaded machine sleeps longer) for 1 s.
        let receipts = 500;
        let mut refused = 0;
        for i in 0..receipts {
            if writer.try_record(&cost(&i.to_string())).is_err() {
                refused += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let during = syncs.load(Ordering::SeqCst);
        let stats = writer.stats();
        drop(writer); // writes and fsyncs the rest, and waits for it
        assert_eq!(refused, 0, "receipts refused by a full queue");
        assert_eq!((stats.accepted, stats.dropped_full), (receipts, 0));
        assert_eq!(lines.load(Ordering::SeqCst), receipts, "all written");
        // About 1 s / 20 ms = 50 back to back; 10 leaves room for a loaded machine.
        assert!(during >= 10, "only {during} fsyncs in a second");
    }

    /// The periodic sync's tick never takes a receipt's room in the queue: with
    /// a queue of 1 and a tick queued behind a slow fsync, a receipt still fits.
    #[tokio::test]
    async fn a_tick_queued_behind_a_slow_fsync_leaves_the_receipts_their_whole_capacity() {
        struct GatedSync {
            entered: std_mpsc::Sender<()>,
            gate: std_mpsc::Receiver<()>,
        }
        impl Target for GatedSync {
            fn write_lines(&mut self, _: &[u8], _: &[LineMeta]) -> Result<(), WriteFailure> {
                Ok(())
            }
            fn sync(&mut self) -> io::Result<()> {
                let _ = self.entered.send(());
                let _ = self.gate.recv();
                Ok(())
            }
        }
        let (open, gate) = std_mpsc::channel();
        let (entered_tx, entered) = std_mpsc::channel();
        let writer = BackgroundWriter::start(
            Options {
                kind: "test",
                name: "test".into(),
                capacity: 1,
                sync_every: Some(Duration::from_millis(10)),
            },
            encode_call_id(),
            GatedSync {
                entered: entered_tx,
                gate,
            },
        )
        .unwrap();
        // Moved after the writer, so dropped before it: a failing assert lets the
        // fsync go instead of the writer's drop waiting on it for ever.
        let open = open;
        writer.try_record(&cost("a")).unwrap();
        entered.recv().unwrap(); // a tick's fsync of "a", held
        // The ticker queues the next tick (the last one was taken): wait until it is.
        let deadline = Instant::now() + Duration::from_secs(5);
        while writer.tx().capacity() == writer.tx().max_capacity() {
            assert!(Instant::now() < deadline, "no tick queued");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            writer.try_record(&cost("b")),
            Ok(()),
            "a receipt refused for a tick"
        );
        drop(open); // every later fsync goes through
        writer.shutdown().await.unwrap();
        assert_eq!(writer.stats().written, 2);
    }

    /// The names of this process's threads (Linux truncates them to 15 bytes).
    #[cfg(target_os = "linux")]
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_owned())
            .collect()
    }

    /// The sync thread stops when the writer does, not up to `sync_every` later.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_sync_thread_stops_with_the_writer_not_an_interval_later() {
        // Its own kind: the thread is `sagemeter-tick-sync`, seen as its first 15
        // bytes, which no other thread has (the writer's is `sagemeter-tick`).
        let sync_thread = "sagemeter-tick-";
        let writer = BackgroundWriter::start(
            Options {
                kind: "tick",
                name: "test".into(),
                capacity: 8,
                sync_every: Some(Duration::from_secs(3600)),
            },
            encode_call_id(),
            StreamTarget::new(Box::new(io::sink())),
        )
        .unwrap();
        // A new thread names itself once it runs.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !thread_names().iter().any(|n| n == sync_thread) {
            assert!(Instant::now() < deadline, "no sync thread");
            std::thread::sleep(Duration::from_millis(5));
        }
        writer.try_record(&cost("a")).unwrap();
        drop(writer);
        let deadline = Instant::now() + Duration::from_secs(5);
        while thread_names().iter().any(|n| n == sync_thread) {
            assert!(Instant::now() < deadline, "the sync thread still runs");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
