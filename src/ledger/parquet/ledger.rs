//! [`ParquetLedger`]: receipts queued without blocking, written by one thread to
//! rolling Parquet files.

use super::file::{ParquetFileWriter, PushError};
use super::naming::{self, ParquetName};
use crate::billing::Cost;
use crate::ledger::writer::{
    Counters, Ended, Reply, Unclaimed, WarnLimiter, shared_error, spawn_ticker, take_unclaimed,
    wait_ended,
};
use crate::ledger::{DEFAULT_CAPACITY, LedgerError, Refused, RollEvery, SinkStats};
use crate::sink::CostSink;
use crate::util::BoxFuture;
use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Messages taken from the queue per wake-up.
const BATCH: usize = 256;
/// How often the writer looks at the clock when no receipt comes, to close the
/// file of a period that has ended.
const TICK: Duration = Duration::from_secs(1);
/// The `sink` label of the drop metric.
const KIND: &str = "parquet_ledger";
/// The lock file of a Parquet ledger's directory (hidden: readers skip it).
const PARQUET_DIR_LOCK: &str = ".sagemeter-parquet.lock";

/// A ledger of Parquet files: one row per receipt, typed columns (money as
/// `DECIMAL(38,12)`, times as UTC timestamps), ready for DuckDB, Athena, Spark or
/// pandas. The schema and example queries are in `docs/ledger-parquet.md`.
///
/// ```no_run
/// # async fn run(sdk_config: aws_types::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use sagemeter::ledger::RollEvery;
/// use sagemeter::ledger::parquet::ParquetLedger;
/// // 31 days, while an hour has at most 2,000,000 receipts, no flush and no restart:
/// // at most 2 files an hour, so 2 x 24 x 31 = 1,488 files.
/// let ledger = ParquetLedger::rolling("/var/lib/myservice/receipts")
///     .roll_every(RollEvery::Hour)
///     .max_rows(1_000_000)
///     .keep_files(2 * 24 * 31)
///     .open()?;
/// let client = sagemeter::Client::builder(&sdk_config)
///     .sink(ledger.clone()) // a cheap handle: keep one to flush and shut down
///     .build()?;
/// // ... calls ...
/// ledger.shutdown().await?; // the open file gets its footer and its final name
/// # Ok(()) }
/// ```
///
/// # Files
/// `DIR/sagemeter-YYYY-MM-DDTHH.parquet` (the directory created 0700; an
/// existing one with any group/other permission bit is refused), then
/// `…THH.1.parquet`, `.2`, … for more files of the same UTC hour (or day, `HH` =
/// `00`). Each file is created 0600 and written as `.sagemeter-….parquet.tmp`
/// (hidden, see [`in_progress`](super::in_progress)); it gets its
/// final name only once closed with its footer and fsynced, so a reader (or a
/// `*.parquet` glob) never sees a half-written file. A file is closed when its
/// hour or day ends (the ledger's clock is looked at every second), when it
/// reaches [`max_rows`](ParquetLedgerBuilder::max_rows), on
/// [`flush`](Self::flush) and on [`shutdown`](Self::shutdown); an existing file
/// is never appended to: a new process or a flush starts the next sequence number.
/// Which file a receipt goes to is decided when the writer takes it, by the
/// ledger's clock, as in the rolling JSONL ledger.
///
/// A directory has one writer at a time: [`open`](ParquetLedgerBuilder::open)
/// locks its `.sagemeter-parquet.lock` (`flock`) until the writer stops, and
/// refuses with [`LedgerError::Locked`] while another writer (in this process or
/// another) holds it.
///
/// # What a crash loses
/// Everything in the file being written: a Parquet file without its footer
/// cannot be read, and the `.….parquet.tmp` a crash leaves behind is never
/// renamed (a WARN names it when the ledger opens again; remove it). With hourly
/// files that is up to an hour of receipts, less with a smaller `max_rows` or a
/// periodic [`flush`](Self::flush) (each flush closes the file: many flushes make
/// many small files). Where every receipt must survive a crash, write the JSONL
/// ledger ([`JsonlLedger`](crate::ledger::JsonlLedger), which loses at most a torn
/// last line) and convert closed files to Parquet later
/// (`sagemeter ledger convert`, or [`convert`](super::convert)).
///
/// # Writing never blocks a call
/// `record` (on the call path) clones the receipt into a bounded queue
/// ([`DEFAULT_CAPACITY`], see [`capacity`](ParquetLedgerBuilder::capacity)); one
/// writer thread turns receipts into record batches of 4,096 rows and row groups
/// of 65,536 rows (Snappy-compressed), fewer when one column's text would take
/// the row group past the 2 GiB a batch's column holds. When the queue is full the receipt is
/// dropped, counted in [`SinkStats::dropped_full`] and in the metric
/// `sagemeter_sink_dropped_total{sink="parquet_ledger",reason="full"}`, and a WARN
/// is logged at most once every 10 s; [`try_record`](Self::try_record) hands a
/// refused receipt back instead.
///
/// # Exactness
/// Amounts are stored exactly or not at all: a receipt with an amount that has
/// more than 12 decimal places (receipts round to 10⁻¹² USD, so only a receipt
/// made by hand can), a time outside 1677–2262, or more than 2 GiB of text in
/// one column, is not written. It is counted
/// in [`SinkStats::lost_on_error`], logged as an ERROR, and reported by the next
/// `flush` or `shutdown` ([`LedgerError::Write`]); the other receipts are written.
///
/// # Counters
/// [`SinkStats::written`] counts receipts in closed files (readable ones): after
/// a successful `flush` or `shutdown`, `accepted = written + lost_on_error`.
#[derive(Clone, Debug)]
pub struct ParquetLedger {
    shared: Arc<Shared>,
}

/// Options of a [`ParquetLedger`]; [`open`](Self::open) checks them.
#[derive(Debug, Clone)]
pub struct ParquetLedgerBuilder {
    dir: PathBuf,
    every: RollEvery,
    max_rows: Option<u64>,
    keep_files: Option<usize>,
    time: Option<SharedTimeSource>,
    capacity: usize,
    /// How often the clock is looked at ([`TICK`]; shorter in tests).
    tick: Duration,
    /// Fsyncs the directory of a file given its final name
    /// ([`fsync_parent_dir`](crate::ledger::file::fsync_parent_dir); one that
    /// fails in tests).
    sync_dir: fn(&Path) -> io::Result<()>,
}

impl ParquetLedgerBuilder {
    /// A new file every UTC hour (the default) or day.
    pub fn roll_every(mut self, every: RollEvery) -> Self {
        self.every = every;
        self
    }

    /// Also a new file once the current one holds `rows` receipts.
    pub fn max_rows(mut self, rows: u64) -> Self {
        self.max_rows = Some(rows);
        self
    }

    /// Keeps the `files` newest files and removes older ones whenever a file is
    /// closed (default: keeps everything). Newest is by name, of the files of
    /// the clock's hour or day or earlier: after the clock is stepped back,
    /// files named later are left alone until it reaches them.
    ///
    /// It counts files, not hours or days: every file counts, and
    /// [`max_rows`](Self::max_rows), each [`flush`](ParquetLedger::flush) and
    /// each process start add files to a period. An hourly ledger flushed every
    /// 15 minutes makes 4 files an hour: `keep_files(24 * 31)` (744 files) keeps
    /// 744 / 4 = 186 hours, 7.75 days, not 31. For a period, keep the periods
    /// times the most files a period makes (see `docs/ledger-parquet.md`).
    pub fn keep_files(mut self, files: usize) -> Self {
        self.keep_files = Some(files);
        self
    }

    /// The clock that decides the hour or day (default: the system's).
    pub fn time_source(mut self, time: SharedTimeSource) -> Self {
        self.time = Some(time);
        self
    }

    /// How many receipts may wait for the writer (default [`DEFAULT_CAPACITY`];
    /// 1 to [`MAX_CAPACITY`](crate::ledger::MAX_CAPACITY)).
    pub fn capacity(mut self, receipts: usize) -> Self {
        self.capacity = receipts;
        self
    }

    /// How often the writer looks at the clock when no receipt comes.
    #[cfg(test)]
    fn tick(mut self, every: Duration) -> Self {
        self.tick = every;
        self
    }

    /// Fsyncs a finished file's directory with `sync_dir`.
    #[cfg(test)]
    fn sync_dir(mut self, sync_dir: fn(&Path) -> io::Result<()>) -> Self {
        self.sync_dir = sync_dir;
        self
    }

    /// Makes the directory (0700) if needed, locks it ([`LedgerError::Locked`]
    /// when another writer has it) and starts the writer. The first file is
    /// created when the first receipt comes.
    pub fn open(self) -> Result<ParquetLedger, LedgerError> {
        let capacity =
            crate::ledger::capacity_checks(self.capacity, "ParquetLedgerBuilder::capacity");
        crate::ledger::check_options(
            Some(&format_args!("Parquet ledger {}", self.dir.display())),
            capacity.into_iter().chain([
                (
                    self.max_rows == Some(0),
                    "ParquetLedgerBuilder::max_rows",
                    "max_rows must be at least 1",
                ),
                (
                    self.keep_files == Some(0),
                    "ParquetLedgerBuilder::keep_files",
                    "keep_files must be at least 1",
                ),
            ]),
        )?;
        crate::ledger::rolling::make_dir(&self.dir)?;
        // One writer per directory: two would pick the same next file name, and
        // each would take the other's file in progress for a crash's leftover.
        let lock = crate::ledger::file::lock_dir(&self.dir, PARQUET_DIR_LOCK)?;
        warn_about_leftovers(&self.dir);
        // One more message for the ticker's tick (at most one is queued): a tick
        // waiting behind a busy writer never takes a receipt's room. (At the
        // channel's limit, the capacity itself, a tick may take one slot of 2^61.)
        let slots = self
            .capacity
            .saturating_add(1)
            .min(crate::ledger::MAX_CAPACITY);
        let (tx, rx) = mpsc::channel(slots);
        let counters = Arc::new(Counters::default());
        let (end, ended) = watch::channel(None);
        let unclaimed = Unclaimed::default();
        let tick_pending = Arc::new(AtomicBool::new(false));
        // The ticker waits on this between ticks; the worker drops the sender
        // when it ends, which wakes the ticker to stop.
        let (tick_stop, tick_stopped) = std::sync::mpsc::channel::<()>();
        let worker = Worker {
            end,
            dir: self.dir.clone(),
            every: self.every,
            max_rows: self.max_rows,
            keep_files: self.keep_files,
            time: self
                .time
                .unwrap_or_else(|| SharedTimeSource::new(SystemTimeSource::new())),
            rx,
            counters: counters.clone(),
            current: None,
            error: None,
            unclaimed: unclaimed.clone(),
            lock: Some(lock),
            tick_pending: tick_pending.clone(),
            _tick_stop: tick_stop,
            sync_dir: self.sync_dir,
        };
        let open_err = |source| LedgerError::Open {
            path: self.dir.clone(),
            source,
        };
        let thread = std::thread::Builder::new()
            .name("sagemeter-parquet".into())
            .spawn(move || worker.run())
            .map_err(open_err)?;
        // While the writer is busy (a file's footer and fsync, a row group written
        // out, a slow disk), ticks would otherwise gather in the receipts' queue,
        // one a second, taking room from receipts; one tick looks at the clock
        // for all of them.
        let ticker = spawn_ticker(
            "sagemeter-parquet-tick".into(),
            self.tick,
            tick_stopped,
            tx.downgrade(),
            tick_pending,
            || Msg::Tick,
        )
        .map_err(open_err)?;
        Ok(ParquetLedger {
            shared: Arc::new(Shared {
                dir: self.dir,
                capacity: self.capacity,
                tx: Some(tx),
                closed: AtomicBool::new(false),
                counters,
                warn: WarnLimiter::new(),
                ended,
                unclaimed,
                thread: Mutex::new(Some(thread)),
                ticker: Mutex::new(Some(ticker)),
            }),
        })
    }
}

/// Logs the in-progress files a crashed writer left: their rows cannot be read.
fn warn_about_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if matches!(naming::parse(name), Some((_, true))) {
            tracing::warn!(target: "sagemeter", path = %entry.path().display(),
                "a Parquet ledger file was left unfinished (its writer stopped without \
                 closing it, e.g. a crash): it has no footer and its receipts cannot be \
                 read; remove it");
        }
    }
}

impl ParquetLedger {
    /// A ledger of Parquet files in `dir`, a new one every UTC hour by default;
    /// see the type's docs.
    pub fn rolling(dir: impl AsRef<Path>) -> ParquetLedgerBuilder {
        ParquetLedgerBuilder {
            dir: dir.as_ref().to_owned(),
            every: RollEvery::Hour,
            max_rows: None,
            keep_files: None,
            time: None,
            capacity: DEFAULT_CAPACITY,
            tick: TICK,
            sync_dir: crate::ledger::file::fsync_parent_dir,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// Queues one receipt without blocking; `Ok` means accepted. A refusal is
    /// yours to handle: unlike [`CostSink::record`], this counts and logs nothing.
    pub fn try_record(&self, cost: &Cost) -> Result<(), Refused> {
        self.shared.try_record(cost)
    }

    /// Waits until every receipt accepted before this call is in a closed,
    /// readable, fsynced file: the file being written is closed (the next receipt
    /// starts a new one). Returns the first error since the last flush, with the
    /// count of receipts lost so far. After [`shutdown`](Self::shutdown), waits
    /// for the writer to finish and returns how it ended.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        let (ack, mut done) = Reply::channel(&self.shared.unclaimed);
        if self.shared.tx().send(Msg::Flush { ack }).await.is_err() {
            return self.shared.ended().await;
        }
        match done.recv().await {
            Ok(result) => result.map_err(|source| self.shared.write_error(source)),
            Err(_) => self.shared.ended().await,
        }
    }

    /// Refuses new receipts, writes everything accepted, closes the file and stops
    /// the writer. Calling it again waits for the writer to finish, and returns
    /// the same result. Dropping the last handle does the same, blocking until done.
    pub async fn shutdown(&self) -> Result<(), LedgerError> {
        self.shared.closed.store(true, Ordering::Release);
        let (ack, done) = oneshot::channel();
        if self.shared.tx().send(Msg::Shutdown { ack }).await.is_err() {
            return self.shared.ended().await; // shut down already, or being shut down
        }
        match done.await {
            Ok(result) => result.map_err(|source| self.shared.write_error(source)),
            Err(_) => self.shared.ended().await,
        }
    }

    /// Counters since the ledger was opened.
    pub fn stats(&self) -> SinkStats {
        self.shared.counters.stats()
    }
}

impl CostSink for ParquetLedger {
    fn record(&self, cost: &Cost) {
        if let Err(refused) = self.shared.try_record(cost) {
            self.shared.dropped(refused);
        }
    }

    fn flush(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move { Ok(ParquetLedger::flush(self).await?) })
    }

    fn shutdown(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move { Ok(ParquetLedger::shutdown(self).await?) })
    }
}

// Receipts are held inline in the queue's blocks: boxing them would add an
// allocation per receipt on the call path to shrink the rare other messages.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Receipt(Cost),
    Flush {
        ack: oneshot::Sender<io::Result<()>>,
    },
    Shutdown {
        ack: oneshot::Sender<io::Result<()>>,
    },
    Tick,
}

/// Counts `n` receipts lost to a failed write (or refused for what they hold).
fn count_lost(counters: &Counters, n: u64) {
    crate::ledger::writer::count_lost(counters, KIND, n);
}

/// The handles' side: the queue, the counters, the writer thread.
struct Shared {
    dir: PathBuf,
    capacity: usize,
    tx: Option<mpsc::Sender<Msg>>,
    closed: AtomicBool,
    counters: Arc<Counters>,
    warn: WarnLimiter,
    /// How the writer thread ended, once it has.
    ended: watch::Receiver<Ended>,
    /// Errors of flushes cancelled after the writer replied.
    unclaimed: Unclaimed,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The thread that queues ticks; it ends with the writer thread.
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetLedger")
            .field("dir", &self.dir)
            .field("capacity", &self.capacity)
            .field("stats", &self.counters.stats())
            .finish()
    }
}

impl Shared {
    fn tx(&self) -> &mpsc::Sender<Msg> {
        self.tx.as_ref().expect("the sender lives until drop")
    }

    fn try_record(&self, cost: &Cost) -> Result<(), Refused> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Refused::Closed);
        }
        match self.tx().try_reserve() {
            Ok(permit) => {
                // Reserve first, clone after: a refused receipt costs nothing.
                permit.send(Msg::Receipt(cost.clone()));
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(Refused::Full),
            Err(mpsc::error::TrySendError::Closed(())) => Err(Refused::Closed),
        }
    }

    /// Counts, measures and (at most once per 10 s) logs a dropped receipt.
    #[cold]
    fn dropped(&self, refused: Refused) {
        let (counter, reason) = match refused {
            Refused::Full => (&self.counters.dropped_full, "full"),
            Refused::Closed => (&self.counters.refused_closed, "closed"),
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!("sagemeter_sink_dropped_total", "sink" => KIND, "reason" => reason)
            .increment(1);
        if self.warn.should_warn() {
            match refused {
                Refused::Full => tracing::warn!(target: "sagemeter", sink = KIND,
                    name = %self.dir.display(), dropped = n, capacity = self.capacity,
                    "receipt dropped: the sink's queue is full (the writer cannot keep up); \
                     the receipt is still returned to the caller and counted in the totals"),
                Refused::Closed => tracing::warn!(target: "sagemeter", sink = KIND,
                    name = %self.dir.display(), refused = n,
                    "receipt refused: the sink was shut down"),
            }
        }
    }

    /// For a call the queue no longer takes: waits until the writer has closed
    /// its file, and returns its final result (the same for every caller);
    /// [`LedgerError::WriterStopped`] if it panicked.
    async fn ended(&self) -> Result<(), LedgerError> {
        match wait_ended(&self.ended).await {
            Some(result) => result.map_err(|source| self.write_error(source)),
            None => Err(LedgerError::WriterStopped {
                path: self.dir.clone(),
            }),
        }
    }

    fn write_error(&self, source: io::Error) -> LedgerError {
        LedgerError::Write {
            path: self.dir.clone(),
            lost: self.counters.lost_on_error.load(Ordering::Relaxed),
            source,
        }
    }
}

impl Drop for Shared {
    /// Dropping the last handle closes the queue; the writer drains it, closes
    /// its file and stops, and this waits for it (and for the ticker, which
    /// stops with it).
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
            tracing::error!(target: "sagemeter", sink = KIND, name = %self.dir.display(),
                "the Parquet ledger's writer thread panicked");
        }
        let ticker = self
            .ticker
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(ticker) = ticker {
            let _ = ticker.join();
        }
    }
}

/// The writer thread's state.
struct Worker {
    /// Says how the thread ended (dropped unset if it panics).
    end: watch::Sender<Ended>,
    dir: PathBuf,
    every: RollEvery,
    max_rows: Option<u64>,
    keep_files: Option<usize>,
    time: SharedTimeSource,
    rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
    /// The file being written and its name.
    current: Option<(ParquetName, ParquetFileWriter)>,
    /// The first error since the last flush reply.
    error: Option<io::Error>,
    /// Errors of flushes cancelled after their reply was sent.
    unclaimed: Unclaimed,
    /// The directory's lock file, locked until the writer stops.
    lock: Option<std::fs::File>,
    /// Set while a [`Msg::Tick`] is queued (the ticker queues at most one).
    tick_pending: Arc<AtomicBool>,
    /// Dropped with the worker: tells the ticker to stop.
    _tick_stop: std::sync::mpsc::Sender<()>,
    /// Fsyncs a finished file's directory (see [`ParquetLedgerBuilder`]).
    sync_dir: fn(&Path) -> io::Result<()>,
}

impl Worker {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut shutdown_acks = Vec::new();
        // Ends when the queue is closed (shutdown, or every handle dropped) and empty.
        while self.rx.blocking_recv_many(&mut batch, BATCH) > 0 {
            let period = self.period();
            for msg in batch.drain(..) {
                match msg {
                    Msg::Receipt(cost) => self.write(&cost, period),
                    Msg::Flush { ack } if !shutdown_acks.is_empty() => {
                        // Called after the shutdown (queued behind it): it gets
                        // the final result, as the shutdown does. Answered now, it
                        // would take the pending error, and the shutdown would say
                        // Ok with receipts lost.
                        shutdown_acks.push(ack);
                    }
                    Msg::Flush { ack } => {
                        // Its caller gave up waiting (a flush cancelled by a
                        // timeout): the error is kept for the next flush or
                        // shutdown, which would say Ok otherwise.
                        if let Err(Err(e)) = ack.send(self.flush()) {
                            self.error.get_or_insert(e);
                        }
                    }
                    Msg::Shutdown { ack } => {
                        // No new messages; the ones queued are still drained.
                        self.rx.close();
                        shutdown_acks.push(ack);
                    }
                    Msg::Tick => {
                        // Taken off the queue: the next tick may be queued.
                        self.tick_pending.store(false, Ordering::Release);
                        if self
                            .current
                            .as_ref()
                            .is_some_and(|(name, _)| !name.same_period(&period))
                        {
                            self.close();
                        }
                    }
                }
            }
        }
        let result = self.flush().map_err(Arc::new);
        // Released before any caller hears that the writer is done: a ledger
        // shut down can be opened again at once.
        drop(self.lock.take());
        if let Err(e) = &result
            && shutdown_acks.is_empty()
        {
            tracing::error!(target: "sagemeter", sink = KIND, name = %self.dir.display(),
                error = %e, "final write of the Parquet ledger failed");
        }
        // Every shutdown, every flush queued behind one, and every flush or
        // shutdown too late for the queue, gets the same result.
        self.end.send_replace(Some(result.clone()));
        for ack in shutdown_acks {
            let _ = ack.send(result.clone().map_err(shared_error));
        }
    }

    /// The first file name of the current period.
    fn period(&self) -> ParquetName {
        ParquetName::of(self.time.now().into(), self.every)
    }

    fn write(&mut self, cost: &Cost, period: ParquetName) {
        if self
            .current
            .as_ref()
            .is_some_and(|(name, _)| !name.same_period(&period))
        {
            self.close();
        }
        if self.current.is_none() {
            match self.create(period) {
                Ok(file) => self.current = Some(file),
                Err(e) => {
                    count_lost(&self.counters, 1);
                    tracing::error!(target: "sagemeter", sink = KIND,
                        name = %self.dir.display(), error = %e,
                        "cannot create a Parquet ledger file: receipt lost");
                    self.error.get_or_insert(e);
                    return;
                }
            }
        }
        let Some((_, file)) = &mut self.current else {
            return;
        };
        match file.push(cost) {
            Ok(()) => {
                if self.max_rows.is_some_and(|max| file.rows() >= max) {
                    self.close();
                }
            }
            Err(PushError::Unencodable(e)) => {
                count_lost(&self.counters, 1);
                tracing::error!(target: "sagemeter", sink = KIND, call_id = %cost.call_id,
                    error = %e, "receipt not written to the Parquet ledger");
                self.error
                    .get_or_insert_with(|| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            Err(PushError::Failed(e)) => {
                // The file is gone, and with it every receipt in it.
                let lost = file.rows();
                self.current = None;
                self.file_lost(lost, e);
            }
        }
    }

    fn file_lost(&mut self, lost: u64, e: io::Error) {
        count_lost(&self.counters, lost);
        tracing::error!(target: "sagemeter", sink = KIND, name = %self.dir.display(),
            lost, error = %e, "writing a Parquet ledger file failed: its receipts are lost");
        self.error.get_or_insert(e);
    }

    /// A new file for `period`: the sequence number after every file of that
    /// period already in the directory, finished or not. A file numbered with
    /// the last number there is (put there by hand) leaves no next one: an
    /// error naming it, never a number wrapped onto the period's first file.
    fn create(&self, period: ParquetName) -> io::Result<(ParquetName, ParquetFileWriter)> {
        let name = self.next_name(period)?;
        let file = ParquetFileWriter::create(self.dir.join(naming::file_name(&name))).map_err(
            |e| match e {
                LedgerError::Open { source, .. } => source,
                other => io::Error::other(other.to_string()),
            },
        )?;
        Ok((name, file))
    }

    /// The name of a new file for `period`, as [`create`](Self::create) gives it.
    fn next_name(&self, period: ParquetName) -> io::Result<ParquetName> {
        let mut name = period;
        // The period's highest-numbered file so far, if any.
        let mut last: Option<std::ffi::OsString> = None;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some((existing, _)) = entry.file_name().to_str().and_then(naming::parse) else {
                continue;
            };
            if existing.same_period(&period) && (last.is_none() || existing.seq >= name.seq) {
                name.seq = existing.seq;
                last = Some(entry.file_name());
            }
        }
        if let Some(last) = last {
            name.seq = name.seq.checked_add(1).ok_or_else(|| {
                io::Error::other(format!(
                    "{} is numbered {}, the last number a ledger file can have: move it away",
                    self.dir.join(last).display(),
                    u32::MAX
                ))
            })?;
        }
        Ok(name)
    }

    /// Closes the current file, if any: footer, fsync, final name, fsync of the
    /// directory (whose failure is the next flush's error). A final name
    /// made by someone else meanwhile (a conversion or a sync into the
    /// directory) is left alone: the file takes the next sequence number.
    fn close(&mut self) {
        let Some((name, mut file)) = self.current.take() else {
            return;
        };
        let rows = file.rows();
        let closed = file.close_renaming(|taken| {
            let next = self.next_name(name)?;
            tracing::warn!(target: "sagemeter", sink = KIND, taken = %taken.display(),
                "a Parquet ledger file's name was taken by another file while it was \
                 written: that file is left alone and this one takes the next number");
            Ok(Some(self.dir.join(naming::file_name(&next))))
        });
        match closed {
            Ok(summary) => {
                self.counters.written.fetch_add(rows, Ordering::Relaxed);
                // The receipts are in the file, kept; only its name may not
                // survive a power loss: the next flush or shutdown says so.
                if let Err(e) = crate::ledger::file::sync_entry(&summary.path, &self.sync_dir) {
                    tracing::error!(target: "sagemeter", sink = KIND,
                        path = %summary.path.display(), error = %e,
                        "cannot fsync the Parquet ledger's directory: the file's name \
                         may not survive a power loss");
                    self.error.get_or_insert(e);
                }
                self.remove_old();
            }
            Err(e) => self.file_lost(rows, e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.close();
        match self
            .error
            .take()
            .or_else(|| take_unclaimed(&self.unclaimed))
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Removes the oldest finished files beyond the retention count.
    ///
    /// Only files of the clock's hour or day or earlier are counted (and
    /// removed): a file named later was written while the clock was ahead (it
    /// was stepped back), and counting it as the newest would remove the file
    /// just closed. It counts once the clock reaches its period.
    fn remove_old(&self) {
        let Some(keep) = self.keep_files else {
            return;
        };
        let now = self.period();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(ParquetName, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                match naming::parse(name.to_str()?) {
                    Some((name, false)) => Some((name, e.path())),
                    _ => None,
                }
            })
            .filter(|(name, _)| *name < now || name.same_period(&now))
            .collect();
        files.sort();
        let excess = files.len().saturating_sub(keep);
        for (_, path) in files.into_iter().take(excess) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!(target: "sagemeter", path = %path.display(),
                    "Parquet ledger: removed a file beyond the retention count"),
                Err(e) => tracing::warn!(target: "sagemeter", path = %path.display(), error = %e,
                    "Parquet ledger: could not remove a file beyond the retention count"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::writer::tests::cost;
    use std::time::{Instant, SystemTime};

    /// A clock stuck at 2026-12-02T07:30Z that holds whoever reads it while
    /// `held`, and notes that it was read: a writer held there is busy.
    #[derive(Debug, Clone)]
    struct HeldClock {
        held: Arc<AtomicBool>,
        read: Arc<AtomicBool>,
    }

    impl aws_smithy_async::time::TimeSource for HeldClock {
        fn now(&self) -> SystemTime {
            self.read.store(true, Ordering::SeqCst);
            while self.held.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            "2026-12-02T07:30:00Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                .into()
        }
    }

    /// Lets a [`HeldClock`] go when dropped (a failing test too, whose
    /// ledger's drop would otherwise wait on its writer for ever).
    struct Release(Arc<AtomicBool>);

    impl Drop for Release {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }

    impl HeldClock {
        /// Waits (at most 5 s, else fails with `why`) until the writer reads the
        /// clock, and is held there.
        fn wait_until_read(&self, why: &str) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.read.load(Ordering::SeqCst) {
                assert!(Instant::now() < deadline, "{why}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// A rolling ledger of `capacity` receipts ticking every `tick`, on a
    /// [`HeldClock`] held until the [`Release`] is dropped.
    fn held_ledger(
        capacity: usize,
        tick: Duration,
    ) -> (tempfile::TempDir, ParquetLedger, HeldClock, Release) {
        let tmp = tempfile::tempdir().unwrap();
        let clock = HeldClock {
            held: Arc::new(AtomicBool::new(true)),
            read: Arc::new(AtomicBool::new(false)),
        };
        let ledger = ParquetLedger::rolling(tmp.path().join("receipts"))
            .capacity(capacity)
            .tick(tick)
            .time_source(SharedTimeSource::new(clock.clone()))
            .open()
            .unwrap();
        let release = Release(clock.held.clone());
        (tmp, ledger, clock, release)
    }

    /// While the writer is busy, the ticker queues no tick behind the one the
    /// writer has: ticks take no room from receipts, and none is dropped.
    ///
    /// Figures: a tick every 10 ms, the writer held for 300 ms (at least: a
    /// loaded machine sleeps longer) on the clock it reads when the first tick
    /// wakes it. Queued one by one, 300 / 10 = 30 ticks would wait in a queue of
    /// 64, and of 64 receipts offered then 64 - 30 = 34 would be taken, 30
    /// refused. With the held tick still pending, none is queued: all 64 go in.
    #[tokio::test]
    async fn a_busy_writer_has_no_ticks_piling_up_in_the_queue_and_drops_no_receipt() {
        let (_tmp, ledger, clock, release) = held_ledger(64, Duration::from_millis(10));
        clock.wait_until_read("no tick woke the writer");
        std::thread::sleep(Duration::from_millis(300));
        let refused = (0..64)
            .filter(|i| ledger.try_record(&cost(&format!("r{i}"))).is_err())
            .count();
        drop(release);
        ledger.shutdown().await.unwrap();
        assert_eq!(refused, 0, "receipts refused by a queue full of ticks");
        let stats = ledger.stats();
        assert_eq!((stats.accepted, stats.written), (64, 64));
    }

    /// A tick queued while the writer is busy with a receipt has a slot of its
    /// own: with a queue of 1, a receipt recorded then still fits.
    ///
    /// Figures: a tick every 200 ms; receipt r0 recorded at once, the writer held
    /// on the clock it reads for r0; at 300 ms one tick (no tick was pending) is
    /// queued. With the tick in the receipts' one slot, r1 would be refused.
    #[tokio::test]
    async fn a_tick_queued_behind_a_busy_writer_leaves_the_receipts_their_whole_capacity() {
        let (_tmp, ledger, clock, release) = held_ledger(1, Duration::from_millis(200));
        ledger.try_record(&cost("r0")).unwrap();
        clock.wait_until_read("r0 did not reach the writer");
        std::thread::sleep(Duration::from_millis(300));
        let r1 = ledger.try_record(&cost("r1"));
        drop(release);
        ledger.shutdown().await.unwrap();
        assert!(r1.is_ok(), "r1 refused: {r1:?}");
        let stats = ledger.stats();
        assert_eq!((stats.accepted, stats.written), (2, 2));
    }

    /// A clock 3 hours fast, stepped back: `keep_files(2)` keeps the file just
    /// closed, not only the ones named later. Hourly files, each closed by a
    /// flush: a1 at 09:30 (T09), b1 at 10:30 (T10); the clock is stepped back to
    /// 07:30: c1 (T07), then d1 at 08:00:01 (T08). Of the files at or before the
    /// clock's hour there are then 2 (T07, T08): none beyond 2, so c1 stays (it
    /// was removed as its file closed, the oldest of T07, T09, T10). T09 and T10
    /// count once the clock reaches them: at 10:00:01, e1's file (T10.1) makes
    /// T07 to T10.1 five files, 3 beyond 2: T07, T08 and T09 are removed.
    #[tokio::test]
    async fn a_clock_stepped_back_keeps_the_files_it_writes_not_the_ones_named_later() {
        use crate::ledger::rolling::tests::{SteppedClock, written_across_a_step_back};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("receipts");
        let clock = SteppedClock::at("2026-12-02T09:30:00Z");
        let ledger = ParquetLedger::rolling(&dir)
            .keep_files(2)
            .time_source(SharedTimeSource::new(clock.clone()))
            .open()
            .unwrap();
        for (now, receipt) in written_across_a_step_back() {
            clock.set(now);
            ledger.try_record(&receipt).unwrap();
            ledger.flush().await.unwrap();
        }
        let file = |name: &str| dir.join(format!("sagemeter-2026-12-02T{name}.parquet"));
        for hour in ["07", "08", "09", "10"] {
            assert!(file(hour).exists(), "T{hour} removed");
        }
        let read = crate::ledger::parquet::read_all(file("07")).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].call_id, "c1");
        assert_eq!(read[0].cost_usd, "0.0042".parse().unwrap());

        clock.set("2026-12-02T10:00:01Z");
        ledger.try_record(&cost("e1")).unwrap();
        ledger.shutdown().await.unwrap();
        let kept: Vec<bool> = ["07", "08", "09", "10", "10.1"]
            .iter()
            .map(|name| file(name).exists())
            .collect();
        assert_eq!(kept, [false, false, false, true, true]);
    }

    /// A rolling ledger in `dir` whose clock stays at 2026-12-02T07:30:00Z.
    fn rolling_at_0730(dir: &std::path::Path) -> ParquetLedger {
        use crate::ledger::rolling::tests::SteppedClock;
        let clock = SteppedClock::at("2026-12-02T07:30:00Z");
        ParquetLedger::rolling(dir)
            .time_source(SharedTimeSource::new(clock))
            .open()
            .unwrap()
    }

    /// A file of the hour numbered u32::MAX (put there by hand) leaves no number
    /// for the next file: the receipt is lost, counted and reported naming that
    /// file, as the JSON Lines ledger's roll does, not a panic of the writer
    /// (which would lose every receipt queued) nor a number wrapped onto the
    /// hour's first file.
    #[tokio::test]
    async fn a_file_numbered_the_last_sequence_number_is_an_error_not_an_overflow() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("receipts");
        let ledger = rolling_at_0730(&dir);
        let last = "sagemeter-2026-12-02T07.4294967295.parquet";
        std::fs::write(dir.join(last), b"").unwrap();
        ledger.try_record(&cost("a1")).unwrap();
        let err = ledger.flush().await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
        assert!(err.to_string().contains(last), "{err}");
        ledger.shutdown().await.unwrap();
        let stats = ledger.stats();
        assert_eq!((stats.written, stats.lost_on_error), (0, 1));
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".parquet"))
            .collect();
        assert_eq!(files, [last], "no file numbered 0 (or anything) made");
    }

    /// The final name of the file being written is taken while it is written
    /// (a `ledger convert --to parquet` into the live directory, a sync back
    /// into it): the file takes the next sequence number, as a new file would,
    /// and the file already there is left as it was. One receipt a1 at 07:30:
    /// written = 1, in `T07.1`; the hand-made `T07` still holds its own bytes.
    #[tokio::test]
    async fn a_final_name_taken_while_the_file_is_written_gives_it_the_next_number() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("receipts");
        let ledger = rolling_at_0730(&dir);
        ledger.try_record(&cost("a1")).unwrap();
        // The writer has the file open under its in-progress name.
        let tmp_name = dir.join(".sagemeter-2026-12-02T07.parquet.tmp");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tmp_name.exists() {
            assert!(Instant::now() < deadline, "the file was never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        let taken = dir.join("sagemeter-2026-12-02T07.parquet");
        std::fs::write(&taken, b"someone else's").unwrap();

        ledger.flush().await.unwrap();
        ledger.shutdown().await.unwrap();
        let stats = ledger.stats();
        assert_eq!((stats.written, stats.lost_on_error), (1, 0), "{stats:?}");
        assert_eq!(std::fs::read(&taken).unwrap(), b"someone else's");
        let read = crate::ledger::parquet::read_all(dir.join("sagemeter-2026-12-02T07.1.parquet"))
            .unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].call_id, "a1");
        assert!(!tmp_name.exists(), "no in-progress file left");
    }

    /// A flush called just after a shutdown, before the writer took the
    /// shutdown from the queue, returns the shutdown's own final result: it does
    /// not take the pending error for itself, leaving the shutdown to say Ok with
    /// a receipt lost. The writer is held on its clock with a1 taken; a1's file
    /// cannot be made (the hour's last number is taken): lost_on_error = 1.
    #[tokio::test]
    async fn a_flush_queued_behind_a_shutdown_returns_the_same_final_error() {
        use crate::ledger::writer::tests::poll_once;
        let (tmp, ledger, clock, release) = held_ledger(8, Duration::from_secs(3600));
        let last = "sagemeter-2026-12-02T07.4294967295.parquet";
        std::fs::write(tmp.path().join("receipts").join(last), b"").unwrap();
        ledger.try_record(&cost("a1")).unwrap();
        clock.wait_until_read("a1 did not reach the writer");
        let mut shutdown = Box::pin(ledger.shutdown());
        assert!(poll_once(shutdown.as_mut()).is_none(), "queued behind a1");
        let mut flush = Box::pin(ledger.flush());
        assert!(
            poll_once(flush.as_mut()).is_none(),
            "queued behind shutdown"
        );
        drop(release);
        let (shutdown, flush) = tokio::join!(shutdown, flush);
        for err in [shutdown.unwrap_err(), flush.unwrap_err()] {
            assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
            assert!(err.to_string().contains(last), "{err}");
        }
        assert_eq!(ledger.stats().lost_on_error, 1);
    }

    /// A file whose directory cannot be fsynced once it has its final name
    /// (an I/O error): its receipt is in it, counted written and the file kept,
    /// but the flush that closed it fails (lost 0), not Ok with the name
    /// perhaps undone by a power loss.
    #[tokio::test]
    async fn a_failed_fsync_of_a_finished_files_directory_fails_the_flush_and_keeps_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("receipts");
        let ledger = ParquetLedger::rolling(&dir)
            .sync_dir(|_| Err(io::Error::from_raw_os_error(libc::EIO)))
            .open()
            .unwrap();
        ledger.try_record(&cost("a1")).unwrap();
        let err = ledger.flush().await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 0, .. }), "{err:?}");
        assert_eq!(ledger.stats().written, 1);
        assert_eq!(
            crate::ledger::parquet::parquet_files(&dir).unwrap().len(),
            1
        );
        ledger.shutdown().await.unwrap();
    }

    /// The ticker stops when the writer does, not up to a tick later (here an
    /// hour).
    #[tokio::test]
    async fn the_ticker_stops_with_the_writer_not_a_tick_later() {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = ParquetLedger::rolling(tmp.path().join("receipts"))
            .tick(Duration::from_secs(3600))
            .open()
            .unwrap();
        // Taken from the ledger, whose drop would otherwise wait for it.
        let ticker = ledger.shared.ticker.lock().unwrap().take().unwrap();
        ledger.try_record(&cost("a")).unwrap();
        ledger.shutdown().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ticker.is_finished() {
            assert!(Instant::now() < deadline, "the ticker still runs");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A capacity beyond Tokio's channel limit (whose channel would panic) is
    /// refused like 0, the directory not made.
    #[test]
    fn a_capacity_beyond_the_limit_is_refused_before_anything_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("receipts");
        for capacity in [0, crate::ledger::MAX_CAPACITY + 1, usize::MAX] {
            let err = ParquetLedger::rolling(&dir)
                .capacity(capacity)
                .open()
                .unwrap_err();
            assert!(
                matches!(&err, LedgerError::InvalidOption(c)
                    if c.option == "ParquetLedgerBuilder::capacity"),
                "{capacity}: {err:?}"
            );
        }
        assert!(!dir.exists(), "nothing made");
    }
}
