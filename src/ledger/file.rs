//! [`JsonlLedger`]: an append-only JSON Lines file, one line per metered call.

use super::LedgerError;
use super::compact::{Defined, Dictionary};
use super::rolling::{RollEvery, Rolling, RollingTarget};
use super::writer::{
    BackgroundWriter, Encode, LineMeta, Options, Refused, SinkStats, Target, WriteFailure,
};
use crate::billing::Cost;
use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Receipts queued for the writer by default (about 1–2 KB each in memory).
pub const DEFAULT_CAPACITY: usize = 8192;

/// The most receipts a queue may hold, Tokio's channel limit (`usize::MAX >> 3`,
/// 2^61 − 1 on a 64-bit target). [`JsonlLedgerBuilder::capacity`], the Parquet
/// ledger's and [`EmfSinkBuilder::capacity`](crate::sink::EmfSinkBuilder::capacity)
/// refuse more, as they refuse 0, with [`LedgerError::InvalidOption`] before
/// anything is created; [`Queued::with_capacity`](crate::sink::Queued::with_capacity)
/// holds at most this many. Memory is taken only as receipts wait, but a queue
/// anywhere near this size bounds nothing.
pub const MAX_CAPACITY: usize = usize::MAX >> 3;

/// An append-only JSON Lines ledger: one line per call, never a payload.
///
/// ```no_run
/// # async fn run(sdk_config: aws_types::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use sagemeter::ledger::JsonlLedger;
/// let ledger = JsonlLedger::open("calls.jsonl")?; // created 0600 if new
/// let client = sagemeter::Client::builder(&sdk_config)
///     .sink(ledger.clone()) // a cheap handle: keep one to flush and shut down
///     .build()?;
/// // ... calls ...
/// ledger.shutdown().await?; // everything recorded is written and fsynced
/// # Ok(()) }
/// ```
///
/// # File format
/// UTF-8 JSON Lines, format 2 ([`LEDGER_FORMAT_VERSION`](super::LEDGER_FORMAT_VERSION),
/// `"v":2` on every line; `docs/ledger.md` in the repository describes every
/// member). What repeats from call to call (the endpoint's context, each price
/// with its source, SKU, dates and note) is a *definition* line written once per
/// file, before the first receipt that refers to it; each receipt is one short
/// line (about 370 bytes) referring to them:
/// `{"v":2,"c":0,"id":"…","at":1764633334014650925,"lat":47767,…,"l":[[1,"0.0000132686"],[2],[3]],"cost":"0.000018714",…}`.
/// Nothing is rounded or dropped: [`read_all`](super::read_all) and
/// [`LedgerReader`](super::LedgerReader) give back the very receipts written, and
/// read format 1 (each receipt whole, as serde serialises [`Cost`]) as well, even
/// mixed in one file. Money is a decimal string, durations whole microseconds.
/// Request and response bodies are never in it: a receipt has no field that
/// could hold one.
///
/// # Permissions
/// A new file is created with mode 0600 (owner read/write) whatever the umask. An
/// existing file is appended to only if no group/other permission bit is set;
/// otherwise [`open`](Self::open) refuses with [`LedgerError::Permissions`]: a
/// ledger says who called what and when, and sagemeter does not silently change
/// the mode of a file it did not create. A path that is a symbolic link
/// ([`LedgerError::Symlink`]), a file of another user's ([`LedgerError::NotOwned`])
/// and a file that is no ledger ([`LedgerError::NotALedger`], whose end the
/// torn-tail repair would cut) are refused too, and left as they are.
///
/// # Writing never blocks a call
/// [`record`](crate::sink::CostSink::record) (on the call path) only encodes the receipt's line
/// (a few microseconds, no I/O) into a bounded queue ([`DEFAULT_CAPACITY`], see
/// [`JsonlLedgerBuilder::capacity`]). One writer thread appends the lines in
/// batches of up to 64 KiB, and hands what it has to the OS whenever the queue
/// runs empty.
///
/// When the queue is full (the disk cannot keep up), the receipt is **dropped**,
/// counted in [`SinkStats::dropped_full`] and in the metric
/// `sagemeter_sink_dropped_total{sink="ledger",reason="full"}`, and a WARN is
/// logged at most once every 10 s. The call itself, its receipt and the running
/// totals are unaffected. Blocking instead would stall the async runtime's
/// worker threads, and with them every other call. Use
/// [`try_record`](Self::try_record) to know about a particular receipt: it hands a
/// refused receipt back to you (nothing dropped, so nothing counted or logged).
///
/// # Durability
/// - *Acknowledged*: `record` accepted the receipt (`try_record` returned `Ok`,
///   counted in [`SinkStats::accepted`]). Nothing acknowledged is lost by the
///   ledger: it is written before the next [`flush`](Self::flush),
///   [`sync`](Self::sync) or [`shutdown`](Self::shutdown) returns `Ok`, or that
///   call returns the write error ([`LedgerError::Write`], with the count lost).
///   A write that fails part-way (a rolling ledger that cannot open its next
///   file) loses only the receipts it did not write: those before the failure
///   are in the ledger and counted in [`SinkStats::written`].
/// - `flush().await`: everything acknowledged before it is written to the OS (it
///   survives the process crashing, not the machine losing power).
/// - `sync().await`: the same, then `fsync` (`sync_data`): it survives power loss.
///   The first `sync` of a file this process created (new, or made again after
///   another program removed it) fsyncs its directory too, so that the file's
///   name survives as well; a failure of that is its error. A directory that
///   cannot be opened for reading (`EACCES`, `EPERM`: a write-and-enter-only
///   drop directory) cannot be fsynced at all: one WARN for the file, not an error.
///   A rolling ledger fsyncs each file it rolls away from (when it holds lines not
///   yet fsynced) before closing it, so `sync` vouches for the lines of every
///   file; a failure of that `fsync` is returned by the next `sync` or `shutdown`.
/// - `shutdown().await`: flush + `fsync`, then the writer stops (a later `flush`,
///   `sync` or `shutdown` waits for it and returns the same result); later receipts are
///   refused (`record` drops them: [`SinkStats::refused_closed`], WARN;
///   `try_record` returns [`Refused::Closed`]). Dropping the last handle does the
///   same, blocking the dropping thread until done (a Tokio worker, if the last
///   `Client` is dropped in a task: await `shutdown()` there instead).
/// - Without any of these, the writer still hands lines to the OS within
///   microseconds when idle (every 64 KiB under load), and
///   [`sync_every`](JsonlLedgerBuilder::sync_every) adds a periodic `fsync`.
///
/// A crash (or power loss without `sync`) loses at most the tail not yet handed
/// to the OS (not yet fsynced), and may leave a torn last line: readers skip it and
/// report it, and the next `open` of the file repairs it (see [`open`](Self::open)).
///
/// # One writer
/// A ledger has one writer at a time: [`open`](Self::open) takes an exclusive
/// advisory lock (`flock`) on the file (on a rolling ledger's directory, on its
/// `.sagemeter.lock` file) and holds it until the writer stops (after
/// [`shutdown`](Self::shutdown), or when the last handle is dropped). A second
/// writer, in another process or this one, is refused with
/// [`LedgerError::Locked`]: two writers would number their definitions alike, and
/// one's receipts would read back as the other's endpoint and price. Readers take
/// no lock.
#[derive(Clone, Debug)]
pub struct JsonlLedger {
    writer: Arc<BackgroundWriter>,
    path: Arc<Path>,
}

/// Options of a [`JsonlLedger`]; [`open`](Self::open) checks them.
///
/// [`JsonlLedger::builder`] makes a ledger of one file,
/// [`JsonlLedger::rolling`] one of many files in a directory. The rolling
/// options ([`roll_every`](Self::roll_every), [`max_bytes`](Self::max_bytes),
/// [`keep_files`](Self::keep_files), [`time_source`](Self::time_source)) are
/// for the latter: on a ledger of one file, `open` refuses them with
/// [`LedgerError::InvalidOption`], touching nothing, rather than making a
/// directory where a file was meant.
#[derive(Debug, Clone)]
pub struct JsonlLedgerBuilder {
    path: PathBuf,
    capacity: usize,
    sync_every: Option<Duration>,
    /// A rolling ledger (`path` is then its directory), made by
    /// [`JsonlLedger::rolling`].
    rolling: bool,
    roll: RollOptions,
    /// The first rolling option set, which `open` refuses on a plain ledger.
    roll_option_set: Option<&'static str>,
}

/// How a rolling ledger rolls.
#[derive(Debug, Clone)]
struct RollOptions {
    every: RollEvery,
    max_bytes: Option<u64>,
    keep_files: Option<usize>,
    time: Option<SharedTimeSource>,
}

impl JsonlLedgerBuilder {
    /// How many receipts may wait for the writer (default [`DEFAULT_CAPACITY`];
    /// 1 to [`MAX_CAPACITY`]). More absorbs longer disk stalls at the cost of memory.
    pub fn capacity(mut self, receipts: usize) -> Self {
        self.capacity = receipts;
        self
    }

    /// `fsync` at this interval while there is unsynced data (default: only on
    /// [`sync`](JsonlLedger::sync) and [`shutdown`](JsonlLedger::shutdown)).
    /// When an `fsync` takes longer than the interval, the next one starts as
    /// soon as it ends (covering every line written meanwhile). The queue holds
    /// one more message for the periodic sync: it never takes room from
    /// receipts.
    pub fn sync_every(mut self, every: Duration) -> Self {
        self.sync_every = Some(every);
        self
    }

    /// A rolling ledger only: a new file every UTC hour (the default) or day.
    pub fn roll_every(mut self, every: RollEvery) -> Self {
        self.rolling_option("JsonlLedgerBuilder::roll_every").every = every;
        self
    }

    /// A rolling ledger only: also a new file when the current one's receipts
    /// would grow beyond `bytes` (a receipt longer than that gets a file of its
    /// own). Each file also holds the definitions its receipts refer to (prices,
    /// notes: a few hundred bytes each, a few KB a file), which are not counted
    /// in a file this process started. A process that goes on writing a file it
    /// did not start (a restart in the same hour or day) counts all of that
    /// file's bytes, definitions included, and writes the definitions its own
    /// receipts need again: a file appended to by many short runs holds fewer
    /// receipts than `bytes` suggests.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.rolling_option("JsonlLedgerBuilder::max_bytes")
            .max_bytes = Some(bytes);
        self
    }

    /// A rolling ledger only: keeps the `files` newest files and removes older
    /// ones when a new file starts (default: keeps everything). Newest is by name,
    /// of the files of the clock's hour or day or earlier: after the clock is
    /// stepped back, files named later are left alone until it reaches them.
    ///
    /// It counts files, not hours or days: every file counts, and a size roll
    /// ([`max_bytes`](Self::max_bytes)) adds files to a period. At 1 GiB an hour
    /// in files of 256 MiB, 4 files an hour, `keep_files(24 * 31)` (744 files)
    /// keeps 744 / 4 = 186 hours, 7.75 days, not 31. For a period, keep the
    /// periods times the most files a period makes (see `docs/ledger.md`).
    pub fn keep_files(mut self, files: usize) -> Self {
        self.rolling_option("JsonlLedgerBuilder::keep_files")
            .keep_files = Some(files);
        self
    }

    /// A rolling ledger only: the clock that decides the hour or day (default:
    /// the system's).
    pub fn time_source(mut self, time: SharedTimeSource) -> Self {
        self.rolling_option("JsonlLedgerBuilder::time_source").time = Some(time);
        self
    }

    /// The rolling options, `option` about to be set: noted, for `open` to
    /// refuse on a ledger of one file.
    fn rolling_option(&mut self, option: &'static str) -> &mut RollOptions {
        self.roll_option_set.get_or_insert(option);
        &mut self.roll
    }

    /// Opens (or creates) the file, or for a rolling ledger the directory (mode
    /// 0700) and its current file, and starts the writer. Refuses with
    /// [`LedgerError::Locked`] while another writer has the ledger open, and
    /// with [`LedgerError::InvalidOption`] an option that cannot work, such as a
    /// rolling ledger's on a ledger of one file.
    pub fn open(self) -> Result<JsonlLedger, LedgerError> {
        let path = self.path;
        // Checked before anything is touched (the writer checks the first two again).
        let roll = &self.roll;
        let capacity = super::capacity_checks(self.capacity, "JsonlLedgerBuilder::capacity");
        super::check_options(
            Some(&format_args!("ledger {}", path.display())),
            capacity.into_iter().chain([
                (
                    self.sync_every.is_some_and(|d| d.is_zero()),
                    "JsonlLedgerBuilder::sync_every",
                    "sync_every must be longer than zero",
                ),
                (
                    !self.rolling && self.roll_option_set.is_some(),
                    self.roll_option_set.unwrap_or_default(),
                    "this option is a rolling ledger's, and JsonlLedger::builder opens a ledger \
                     of one file: for a directory of files, use JsonlLedger::rolling(dir)",
                ),
                (
                    roll.max_bytes == Some(0),
                    "JsonlLedgerBuilder::max_bytes",
                    "max_bytes must be at least 1",
                ),
                (
                    roll.keep_files == Some(0),
                    "JsonlLedgerBuilder::keep_files",
                    "keep_files must be at least 1",
                ),
            ]),
        )?;
        let options = Options {
            kind: "ledger",
            name: path.clone(),
            capacity: self.capacity,
            sync_every: self.sync_every,
        };
        let dict = Arc::new(Dictionary::default());
        let encode = encode_record(dict.clone());
        let writer = if self.rolling {
            let roll = self.roll;
            let target = RollingTarget::open(
                Rolling {
                    dir: path.clone(),
                    every: roll.every,
                    max_bytes: roll.max_bytes,
                    keep_files: roll.keep_files,
                    time: roll
                        .time
                        .unwrap_or_else(|| SharedTimeSource::new(SystemTimeSource::new())),
                },
                dict,
            )?;
            BackgroundWriter::start(options, encode, target)?
        } else {
            let (file, len, created) = open_ledger_file(&path)?;
            let target = FileTarget::new(path.clone(), file, len, created, dict);
            BackgroundWriter::start(options, encode, target)?
        };
        Ok(JsonlLedger {
            writer: Arc::new(writer),
            path: path.into(),
        })
    }
}

impl JsonlLedger {
    /// Opens `path` for appending with the default options, creating it (mode 0600)
    /// if it does not exist. The directory must exist.
    ///
    /// An existing file whose last line was torn by a crash is repaired first: a
    /// complete record missing only its newline gets one; an incomplete fragment is
    /// cut off (with a WARN naming its size), so that new records never follow a
    /// broken line. A file whose first line is no ledger record is refused
    /// untouched ([`LedgerError::NotALedger`]).
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlLedger, LedgerError> {
        Self::builder(path).open()
    }

    /// A ledger that rolls: files `sagemeter-YYYY-MM-DDTHH.jsonl` in `dir` (made
    /// 0700 if missing), a new one every UTC hour (or day, or at a size limit),
    /// each file created 0600 and readable on its own, the oldest removed beyond a
    /// retention count. Read them back in order with
    /// [`ledger_files`](super::ledger_files).
    ///
    /// ```no_run
    /// use sagemeter::ledger::{JsonlLedger, RollEvery};
    /// // 31 days, while an hour writes less than 1 GiB: files of 256 MiB make
    /// // at most 4 files an hour, so 4 x 24 x 31 = 2,976 files (about 744 GiB).
    /// let ledger = JsonlLedger::rolling("/var/lib/myservice/receipts")
    ///     .roll_every(RollEvery::Hour)
    ///     .max_bytes(256 << 20)
    ///     .keep_files(4 * 24 * 31)
    ///     .open()?;
    /// # Ok::<(), sagemeter::ledger::LedgerError>(())
    /// ```
    pub fn rolling(dir: impl AsRef<Path>) -> JsonlLedgerBuilder {
        JsonlLedgerBuilder {
            rolling: true,
            ..Self::builder(dir)
        }
    }

    /// Options of a ledger of one file at `path`: queue capacity and periodic
    /// `fsync`. A rolling ledger's options are refused on it (see
    /// [`JsonlLedgerBuilder`]): for those, [`rolling`](Self::rolling).
    pub fn builder(path: impl AsRef<Path>) -> JsonlLedgerBuilder {
        JsonlLedgerBuilder {
            path: path.as_ref().to_owned(),
            capacity: DEFAULT_CAPACITY,
            sync_every: None,
            rolling: false,
            roll: RollOptions {
                every: RollEvery::Hour,
                max_bytes: None,
                keep_files: None,
                time: None,
            },
            roll_option_set: None,
        }
    }

    /// The file (the directory of a rolling ledger).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one receipt without blocking; `Ok` means acknowledged (see the
    /// type's *Durability*). A refusal is yours to handle (retry, keep the receipt
    /// elsewhere): unlike [`CostSink::record`](crate::sink::CostSink::record), which drops a refused receipt and
    /// counts it, this counts and logs nothing.
    pub fn try_record(&self, cost: &Cost) -> Result<(), Refused> {
        self.writer.try_record(cost)
    }

    /// Waits until every receipt acknowledged before this call is written to the OS.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        self.writer.flush(false).await
    }

    /// [`flush`](Self::flush), then `fsync`.
    pub async fn sync(&self) -> Result<(), LedgerError> {
        self.writer.flush(true).await
    }

    /// Refuses new receipts, writes and fsyncs everything acknowledged, and stops
    /// the writer (releasing the ledger's lock). Calling it again, or
    /// [`flush`](Self::flush) or [`sync`](Self::sync) after it, waits until the
    /// writer has finished and returns the same result.
    pub async fn shutdown(&self) -> Result<(), LedgerError> {
        self.writer.shutdown().await
    }

    /// Counters since the ledger was opened.
    pub fn stats(&self) -> SinkStats {
        self.writer.stats()
    }

    /// Writes a `price_change` record (format 2, see `docs/ledger.md`) in its turn
    /// among the receipts: readers skip it, and it tells an auditor when the rate
    /// behind the receipts after it changed. Best effort: dropped with a WARN when
    /// the queue is full or the ledger shut down.
    pub fn record_price_change(&self, change: &crate::pricing::PriceChange) {
        let mut line = b"{\"v\":2,\"price_change\":".to_vec();
        if serde_json::to_writer(&mut line, change).is_ok() {
            line.extend_from_slice(b"}\n");
            self.writer.record_line(line);
        }
    }

    /// Queues one receipt; a refusal is counted and logged by the writer (what
    /// [`CostSink::record`](crate::sink::CostSink::record) does for a ledger).
    pub(crate) fn enqueue(&self, cost: &Cost) {
        self.writer.record(cost);
    }
}

/// One receipt's ledger line in format 2, referring to the ledger's definitions
/// (see `compact.rs`).
fn encode_record(dict: Arc<Dictionary>) -> Encode {
    Box::new(
        move |cost: &Cost, out: &mut Vec<u8>, refs: &mut super::Refs| {
            super::compact::write_record(cost, &dict, out, refs);
            Ok(())
        },
    )
}

/// Appends whole lines, each after the definitions it refers to that the file
/// does not hold yet; undoes a partial write by truncating back to the last
/// complete line; opens its path again when the file is removed under it.
pub(super) struct FileTarget {
    /// Where the file is (opened again there when another program removes it).
    path: PathBuf,
    file: File,
    /// File length after the last successful write (only whole lines).
    good_len: u64,
    /// Of which the definitions this process wrote (not counted by [`len`](Self::len)).
    definition_bytes: u64,
    /// The ledger's definitions.
    dict: Arc<Dictionary>,
    /// Those written to this file by this process.
    defined: Defined,
    /// Written since the last [`sync`](Target::sync).
    unsynced: bool,
    /// This process created the file and its directory entry is not known to be
    /// durable yet: the next [`sync`](Target::sync) fsyncs its directory too,
    /// and fails when that does (tried again at the next). A file that was
    /// there already has no new name at stake.
    entry_unsynced: bool,
    /// A failed write left bytes after `good_len` (a partial line) that could not
    /// be cut off: nothing is appended until they are.
    damaged: bool,
    /// Test seams; none in a ledger's own target.
    hooks: FileHooks,
}

/// Seams for tests: none in a ledger's own target.
#[derive(Clone, Default)]
pub(super) struct FileHooks {
    /// Writes in place of `write_all`: a test can write part of the bytes and
    /// fail, as a full disk does.
    write: Option<WriteHook>,
    /// Called before the file is cut back to its last whole line; an error fails
    /// the cut as one from the OS would.
    before_truncate: Option<Arc<dyn Fn() -> io::Result<()> + Send + Sync>>,
    /// Fsyncs the file's directory in place of [`sync_parent_dir`]: a test can
    /// fail it.
    sync_dir: Option<DirSyncHook>,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landed {
    /// At the end of the file as this process knew it.
    InPlace,
    /// Earlier: the file was cut shorter under the write, which was cut back off.
    Early,
}

/// A [`FileHooks::write`]: writes (some of) the bytes to the file, or fails.
type WriteHook = Arc<dyn Fn(&mut File, &[u8]) -> io::Result<()> + Send + Sync>;

/// A [`FileHooks::sync_dir`]: fsyncs the directory of the file at the path given,
/// or fails.
type DirSyncHook = Arc<dyn Fn(&Path) -> io::Result<()> + Send + Sync>;

impl FileTarget {
    /// `file` at `path`, opened for appending ([`open_ledger_file`]), `len`
    /// bytes long (whole lines); `created` when that open made it (its entry is
    /// made durable by the first [`sync`](Target::sync)).
    pub(super) fn new(
        path: PathBuf,
        file: File,
        len: u64,
        created: bool,
        dict: Arc<Dictionary>,
    ) -> Self {
        FileTarget {
            path,
            file,
            good_len: len,
            definition_bytes: 0,
            dict,
            defined: Defined::default(),
            unsynced: false,
            entry_unsynced: created,
            damaged: false,
            hooks: FileHooks::default(),
        }
    }

    /// Whether lines were written since the last [`sync`](Target::sync).
    pub(super) fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// Bytes of receipts in the file (all of it, for a file this process did not
    /// start), what a size limit counts: a file is larger by the definitions
    /// its receipts need (a few hundred bytes each).
    pub(super) fn len(&self) -> u64 {
        self.good_len - self.definition_bytes
    }

    /// `bytes` (`lines`) with the definitions they need first, the ids added and
    /// the bytes they take.
    fn with_definitions(&mut self, bytes: &[u8], lines: &[LineMeta]) -> (Vec<u8>, Vec<u32>, u64) {
        let mut out = Vec::with_capacity(bytes.len() + 4096);
        let mut added = Vec::new();
        let mut added_bytes = 0;
        let mut at = 0;
        for line in lines {
            for &id in line.refs.ids() {
                if self.defined.contains(id) {
                    continue;
                }
                if let Some(definition) = self.dict.line(id) {
                    out.extend_from_slice(&definition);
                    added_bytes += definition.len() as u64;
                    self.defined.insert(id);
                    added.push(id);
                }
            }
            out.extend_from_slice(&bytes[at..at + line.len]);
            at += line.len;
        }
        out.extend_from_slice(&bytes[at..]);
        (out, added, added_bytes)
    }

    /// Appends the lines `bytes` (`lines`), after the definitions they need
    /// that the file does not hold yet.
    fn write_batch(&mut self, bytes: &[u8], lines: &[LineMeta]) -> io::Result<Landed> {
        let defined = &self.defined;
        let all_defined = lines
            .iter()
            .all(|line| line.refs.ids().iter().all(|id| defined.contains(*id)));
        if all_defined {
            return self.append(bytes);
        }
        // Rare: a definition this file does not hold yet (a new price, a new file).
        let (with_definitions, added, added_bytes) = self.with_definitions(bytes, lines);
        let written = self.append(&with_definitions);
        match written {
            Ok(Landed::InPlace) => self.definition_bytes += added_bytes,
            // Everything written to the file is forgotten (`restart`).
            Ok(Landed::Early) => {}
            Err(_) => {
                for id in added {
                    self.defined.remove(id);
                }
            }
        }
        written
    }

    /// Appends `bytes`. [`Landed::Early`] when the file was cut shorter between
    /// [`notice_truncation`](Self::notice_truncation) and the write (`O_APPEND`
    /// put the bytes at the new end, before any definition they refer to): they
    /// are cut back off and the file is taken as cut shorter, to be written again.
    fn append(&mut self, bytes: &[u8]) -> io::Result<Landed> {
        self.undamage()?;
        let written = match &self.hooks.write {
            Some(write) => write(&mut self.file, bytes),
            None => self.file.write_all(bytes),
        };
        match written {
            Ok(()) => {
                self.unsynced = true;
                let expected = self.good_len + bytes.len() as u64;
                match write_end(&mut self.file) {
                    Some(end) if end < expected => {
                        let start = end.saturating_sub(bytes.len() as u64);
                        self.cut_shorter_under_write(start)?;
                        Ok(Landed::Early)
                    }
                    _ => {
                        self.good_len = expected;
                        Ok(Landed::InPlace)
                    }
                }
            }
            Err(e) => {
                // E.g. disk full part-way: cut the partial line so the next write
                // starts on a line boundary. If that fails too, the file is left
                // alone until the cut succeeds (see `undamage`): a line appended
                // after a fragment would make every later line unreadable.
                if let Err(cut) = self.cut_off_failed_write(bytes) {
                    self.damaged = true;
                    tracing::warn!(target: "sagemeter", good_len = self.good_len,
                        error = %cut, "ledger: could not cut off the partial line of a \
                        failed write; writes are refused until it is");
                }
                Err(e)
            }
        }
    }

    /// Cuts off what the failed write of `bytes` left: a partial line after the
    /// last whole one (a disk full part-way). When the file was cut shorter by
    /// another program under the write (a copytruncate between the check and
    /// the `O_APPEND` write), the bytes landed at its new end: they are cut off
    /// there, lines of them whole too (they refer to definitions the file no
    /// longer holds), and the file goes on as cut shorter. It is never cut to
    /// the length this process knew, which would grow it back with zeros.
    fn cut_off_failed_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = self.file.metadata()?.len();
        if landed_in_place(&self.file, self.good_len, len, bytes)? {
            return match len > self.good_len {
                true => self.truncate(),
                false => Ok(()),
            };
        }
        tracing::warn!(target: "sagemeter", was = self.good_len, now = len,
            "ledger: the file was cut shorter by another program during a write that \
             failed (a copytruncate rotation?); what the write left is cut off, and the \
             definitions the next receipts need are written again; receipts written just \
             before it may have been lost (appended after the rotation's copy, they are \
             in neither file)");
        let start = landed_at(&self.file, len, bytes)?;
        self.restart(start)?;
        if self.good_len < len {
            self.truncate()?;
        }
        Ok(())
    }

    /// The bytes just written landed at `start`, before the file's length as
    /// this process knew it: the file was cut shorter under the write. They are
    /// cut back off with the rest of the line cut in two, if any (they refer to
    /// definitions the file no longer holds), and the file goes on as cut shorter.
    fn cut_shorter_under_write(&mut self, start: u64) -> io::Result<()> {
        let len = self.file.metadata()?.len();
        tracing::warn!(target: "sagemeter", was = self.good_len, now = start,
            "ledger: the file was cut shorter by another program during a write (a \
             copytruncate rotation?); the write is cut back off and made again with the \
             definitions it needs; receipts written just before it may have been lost \
             (appended after the rotation's copy, they are in neither file)");
        self.restart(start.min(len))?;
        if len > self.good_len
            && let Err(e) = self.truncate()
        {
            // Until cut off, nothing is appended (see `undamage`).
            self.damaged = true;
            return Err(e);
        }
        Ok(())
    }

    /// Goes on in a file cut to `len` bytes, from its last whole line (set as
    /// the length to cut back to), as in a new file: no definitions written yet.
    fn restart(&mut self, len: u64) -> io::Result<()> {
        self.good_len = last_line_end(&self.file, len)?;
        self.definition_bytes = 0;
        self.defined = Defined::default();
        Ok(())
    }

    /// What another program did to the file since the last write: removed it
    /// ([`reopen`](Self::reopen)) or cut it shorter
    /// ([`notice_truncation`](Self::notice_truncation)). One `fstat` a write.
    fn notice_changes(&mut self) -> io::Result<()> {
        let meta = self.file.metadata()?;
        if removed(&meta) {
            return self.reopen();
        }
        self.notice_truncation(meta.len())
    }

    /// The file has no name left: another program removed it (a rename
    /// rotation whose renamed file was then removed or compressed, an `rm`),
    /// and lines appended to it could never be read. Opens the path again as
    /// the ledger opens its file ([`open_ledger_file`]: created 0600, locked, a
    /// torn tail repaired; a rolling ledger's is its period's file) and goes on
    /// as with a new file: the definitions are written again as receipts need
    /// them (one WARN each time). Receipts appended to the file after a
    /// compressor read it and before it was removed are in no file, and which
    /// they are cannot be known here: the WARN says they may be lost, and how to
    /// rotate without. When that fails, so does the write (its
    /// receipts counted lost and the error returned by the next flush, as for any
    /// write error), and the next write tries again.
    fn reopen(&mut self) -> io::Result<()> {
        tracing::warn!(target: "sagemeter", path = %self.path.display(),
            "ledger: the file was removed by another program (a rename rotation whose \
             file was then removed or compressed?); the path is opened again and the \
             definitions its next receipts need are written again; receipts written just \
             before it may have been lost (appended after a compressor read the file, \
             they are in no file): rotate by rename with a reopen of the ledger in \
             postrotate and delaycompress");
        let (file, len, created) = open_ledger_file(&self.path).map_err(|e| {
            let said = e.to_string();
            io::Error::new(
                io::Error::from(e).kind(),
                format!(
                    "the ledger file was removed by another program and could not be \
                     opened again: {said}"
                ),
            )
        })?;
        // The file without a name is closed, and its lock released.
        self.file = file;
        // Made again here, its name is new; one another program made is not ours.
        self.entry_unsynced = created;
        self.damaged = false;
        self.restart(len)
    }

    /// Another program cut the file shorter (to `len` bytes) than this process
    /// wrote it (logrotate's `copytruncate`, `truncate -s 0`): the definitions
    /// written before are gone, and receipts appended after referring to them
    /// would read back as damage. Goes on as with a new file: the definitions are
    /// written again as receipts need them (one WARN each time). Receipts written
    /// between the rotation's copy and its cut are in neither file, and which
    /// lines the copy got cannot be known here: the WARN says they may be lost.
    fn notice_truncation(&mut self, len: u64) -> io::Result<()> {
        if len < self.good_len {
            tracing::warn!(target: "sagemeter", was = self.good_len, now = len,
                "ledger: the file was cut shorter by another program (a copytruncate \
                 rotation?); the definitions its next receipts need are written again; \
                 receipts written just before it may have been lost (appended after the \
                 rotation's copy, they are in neither file)");
            // Cut in the middle of a line, the file goes back to its last whole line:
            // a line appended to a fragment would not read.
            self.restart(len)?;
            if self.good_len < len
                && let Err(e) = self.truncate()
            {
                // Until cut off, nothing is appended (see `undamage`).
                self.damaged = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Cuts the file back to its last whole line.
    fn truncate(&mut self) -> io::Result<()> {
        if let Some(before) = &self.hooks.before_truncate {
            before()?;
        }
        self.file.set_len(self.good_len)
    }

    /// After a failed write whose partial line could not be cut off: cuts it
    /// now, or fails (the batch is then lost, counted and reported as any write
    /// error) while the file is not back to its last whole line.
    fn undamage(&mut self) -> io::Result<()> {
        if !self.damaged {
            return Ok(());
        }
        let len = self.file.metadata()?.len();
        if len > self.good_len {
            self.truncate().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "the ledger file holds the partial line of an earlier failed write \
                         ({} bytes after its last whole line) that cannot be cut off: {e}",
                        len.saturating_sub(self.good_len)
                    ),
                )
            })?;
        }
        self.damaged = false;
        Ok(())
    }
}

/// The length of `file`'s first `len` bytes up to and with its last newline (0
/// when there is none).
#[cfg(unix)]
fn last_line_end(file: &File, len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut end = len;
    let mut chunk = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(at) = memchr::memrchr(b'\n', part) {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Where `bytes`, a failed write's, begin in `file`, whose first `len` bytes
/// end with as many of them as were written: the earliest offset from which the
/// file's last bytes are the first of `bytes` (`len` when none are). Lines just
/// before them that are the same as the write's first (definitions: a receipt is
/// never written twice) are taken with them, harmlessly: no line before them
/// refers to them.
#[cfg(unix)]
fn landed_at(file: &File, len: u64, bytes: &[u8]) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let most = len.min(bytes.len() as u64);
    let mut tail = vec![0u8; most as usize];
    file.read_exact_at(&mut tail, len - most)?;
    let written = (1..=tail.len())
        .rev()
        .find(|&n| tail[tail.len() - n..] == bytes[..n])
        .unwrap_or(0);
    Ok(len - written as u64)
}

/// Elsewhere what the write left is cut back to the file's last whole line.
#[cfg(not(unix))]
fn landed_at(_: &File, len: u64, _: &[u8]) -> io::Result<u64> {
    Ok(len)
}

/// Whether a failed write of `bytes` to `file`, now `len` bytes long, landed
/// where this process left it (at `good_len`): what lies past it is the start
/// of `bytes` (nothing, when it wrote nothing). Told by what the file holds, not
/// by its length alone: a file cut shorter under a large write may be as long
/// as before, or longer, with the write at its new end.
#[cfg(unix)]
fn landed_in_place(file: &File, good_len: u64, len: u64, bytes: &[u8]) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    if len < good_len || len - good_len > bytes.len() as u64 {
        return Ok(false);
    }
    if len == good_len {
        // Nothing past it: in place, nothing written, unless the file ends with
        // the write's start (cut to just so much under it).
        return Ok(landed_at(file, len, bytes)? == len);
    }
    let mut past = vec![0u8; (len - good_len) as usize];
    file.read_exact_at(&mut past, good_len)?;
    Ok(past == bytes[..past.len()])
}

/// Elsewhere a file at least as long as this process left it is taken as
/// written in place.
#[cfg(not(unix))]
fn landed_in_place(_: &File, good_len: u64, len: u64, _: &[u8]) -> io::Result<bool> {
    Ok(len >= good_len)
}

/// Whether the file `meta` describes has no name left (no link: removed).
#[cfg(unix)]
fn removed(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.nlink() == 0
}

/// Elsewhere a removed file is not told.
#[cfg(not(unix))]
fn removed(_: &std::fs::Metadata) -> bool {
    false
}

/// Where the last write to `file` ended: its offset, which `O_APPEND` moves to
/// the end of what it wrote (`None` when it cannot be told).
#[cfg(unix)]
fn write_end(file: &mut File) -> Option<u64> {
    file.stream_position().ok()
}

/// Elsewhere where an append lands is not told.
#[cfg(not(unix))]
fn write_end(_: &mut File) -> Option<u64> {
    None
}

/// Elsewhere a file cut in the middle of a line is taken as it is.
#[cfg(not(unix))]
fn last_line_end(_: &File, len: u64) -> io::Result<u64> {
    Ok(len)
}

impl Target for FileTarget {
    /// All or nothing: a failed write is cut back off (no line of it is written).
    fn write_lines(&mut self, bytes: &[u8], lines: &[LineMeta]) -> Result<(), WriteFailure> {
        self.notice_changes()?;
        if self.write_batch(bytes, lines)? == Landed::InPlace {
            return Ok(());
        }
        // Cut shorter between the check above and the write: written again,
        // after the definitions it needs. Once: a file cut under this write too
        // loses the batch (counted and reported as any failed write).
        if self.write_batch(bytes, lines)? == Landed::InPlace {
            return Ok(());
        }
        Err(io::Error::other(
            "the ledger file was cut shorter by another program during two writes in a \
             row (a rotation?): the receipts were cut back off, not written",
        )
        .into())
    }

    /// Fsyncs the data, and the first time for a file this process created
    /// (after a reopen too) the file's directory entry: a power loss after a
    /// `sync` that said Ok takes neither the lines nor the name of a file just
    /// made ([`sync_entry`]).
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        if self.entry_unsynced {
            match &self.hooks.sync_dir {
                Some(sync_dir) => sync_entry(&self.path, &**sync_dir)?,
                None => sync_parent_dir(&self.path)?,
            }
            self.entry_unsynced = false;
        }
        self.unsynced = false;
        Ok(())
    }
}

/// Opens or creates the file as the type's docs say; returns it, its length and
/// whether this call created it.
pub(super) fn open_ledger_file(path: &Path) -> Result<(File, u64, bool), LedgerError> {
    let open_err = |source| LedgerError::Open {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a link: one someone else planted could point anywhere.
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }

    match options.clone().create_new(true).open(path) {
        Ok(file) => {
            lock(&file, path)?;
            // The umask may have taken bits away; make it exactly 0600.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(open_err)?;
            }
            // Its directory entry is made durable by the first `sync` of its
            // `FileTarget`, which returns the failure if that cannot be done.
            return Ok((file, 0, true));
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(refused_link(&e, path).unwrap_or_else(|| open_err(e))),
    }

    let mut file = options
        .open(path)
        .map_err(|e| refused_link(&e, path).unwrap_or_else(|| open_err(e)))?;
    // Before anything else: a torn-looking tail may be another writer's line
    // being written.
    lock(&file, path)?;
    let meta = file.metadata().map_err(open_err)?;
    if !meta.is_file() {
        return Err(LedgerError::NotAFile {
            path: path.to_owned(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        check_owner(&meta, path)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(LedgerError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    // Only a ledger is appended to: the torn-tail repair below would cut the end
    // off any other file (a token file named by mistake has no final newline).
    // A first line over the readers' limit (a JSON dump without newlines) is no
    // ledger either: the repair would find no line start and cut the whole file.
    if meta.len() > 0 {
        let mut reader = super::LedgerReader::new(io::BufReader::new(&file), path);
        let refused = match reader.next() {
            Some(Err(e @ LedgerError::NotALedger { .. })) => Some(e),
            Some(Err(LedgerError::Corrupt { path, source, .. })) if !reader.read_any() => {
                Some(LedgerError::NotALedger { path, source })
            }
            _ => None,
        };
        if let Some(e) = refused
            && !lost_first_write(&file).map_err(open_err)?
        {
            return Err(e);
        }
    }
    let len = repair_torn_tail(&mut file, meta.len(), path).map_err(open_err)?;
    Ok((file, len, false))
}

/// Whether `file` holds nothing but NUL bytes and blanks, with no line end: a
/// ledger's first write lost to a power cut (its blocks allocated, never written),
/// which the torn-tail repair cuts, not another file.
fn lost_first_write(mut file: &File) -> io::Result<bool> {
    file.seek(SeekFrom::Start(0))?;
    let mut chunk = [0u8; 8192];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(true);
        }
        if chunk[..n]
            .iter()
            .any(|b| !matches!(b, 0 | b' ' | b'\t' | b'\r'))
        {
            return Ok(false);
        }
    }
}

/// [`LedgerError::Symlink`] when opening `path` failed because it is a symbolic
/// link (`O_NOFOLLOW`).
fn refused_link(e: &io::Error, path: &Path) -> Option<LedgerError> {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Some(LedgerError::Symlink {
            path: path.to_owned(),
        });
    }
    let _ = (e, path);
    None
}

/// [`LedgerError::NotOwned`] unless this process's user owns what `meta`
/// describes.
#[cfg(unix)]
pub(crate) fn check_owner(meta: &std::fs::Metadata, path: &Path) -> Result<(), LedgerError> {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory of ours.
    check_owner_is(meta, path, unsafe { libc::geteuid() })
}

/// [`check_owner`] for the process of user id `user`.
#[cfg(unix)]
fn check_owner_is(meta: &std::fs::Metadata, path: &Path, user: u32) -> Result<(), LedgerError> {
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != user {
        return Err(LedgerError::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            user,
        });
    }
    Ok(())
}

/// The lock file of a rolling JSONL ledger's directory.
pub(crate) const JSONL_DIR_LOCK: &str = ".sagemeter.lock";

/// Takes the exclusive advisory lock that makes `file` (at `path`) this
/// writer's, held until it is closed; [`LedgerError::Locked`] when another
/// writer holds it. Where the file system cannot lock (some network file
/// systems), a WARN says so and the ledger opens without it.
fn lock(file: &File, path: &Path) -> Result<(), LedgerError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!(target: "sagemeter", path = %path.display(), error = %e,
                "cannot lock the ledger (the file system does not support it): make sure \
                 no other process writes it");
            Ok(())
        }
    }
}

/// Whether `err`, opening the listed ledger file `path` to read it, says it was
/// removed since it was listed (a rolling ledger's retention); said in a WARN.
pub(crate) fn removed_before_read(err: &LedgerError, path: &Path) -> bool {
    let removed =
        matches!(err, LedgerError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound);
    if removed {
        tracing::warn!(target: "sagemeter", path = %path.display(),
            "report: a ledger file was removed before it could be read (a rolling \
             ledger's retention?): its receipts are not counted");
    }
    removed
}

/// Opens the ledger file `path` for reading: a path that is not a regular file (a
/// FIFO, a device, a directory) is [`LedgerError::NotAFile`], said without waiting
/// (a FIFO's ordinary open waits for a writer, for ever).
pub(crate) fn open_to_read(path: &Path) -> Result<File, LedgerError> {
    let not_a_file = || LedgerError::NotAFile {
        path: path.to_owned(),
    };
    let open_error = |source| LedgerError::Open {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opened without waiting (a FIFO's open waits for a writer; a regular file's
    // reads are the same either way), then judged by what was opened: no window
    // for a FIFO put in its place between a check and the open.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    #[cfg(not(unix))]
    if !std::fs::metadata(path).map_err(open_error)?.is_file() {
        return Err(not_a_file());
    }
    let file = options.open(path).map_err(open_error)?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(not_a_file());
    }
    Ok(file)
}

/// Whether a [`JsonlLedger`] (of any process) is writing the ledger file `path`:
/// it holds the file's lock while it is open. `false` when that cannot be told
/// (no such regular file; a file system without locks). Only a regular file is
/// opened, without waiting (a FIFO's open waits for a writer). The probe holds a
/// shared lock for an instant, in which a writer opening the file would be
/// refused as [`LedgerError::Locked`].
pub fn is_being_written(path: impl AsRef<Path>) -> bool {
    open_to_read(path.as_ref()).is_ok_and(|file| {
        matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    })
}

/// Locks the ledger directory `dir` for this writer: an exclusive lock on its
/// file `name` (created 0600), held as long as the returned file is open;
/// [`LedgerError::Locked`] (naming the directory) when another writer has it.
pub(crate) fn lock_dir(dir: &Path, name: &str) -> Result<File, LedgerError> {
    let path = dir.join(name);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A dangling link here would create a file wherever it points.
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(&path).map_err(|source| {
        refused_link(&source, &path).unwrap_or_else(|| LedgerError::Open {
            path: path.clone(),
            source,
        })
    })?;
    lock(&file, dir)?;
    Ok(file)
}

/// Bytes read at a time looking for the start of a torn last line.
const TAIL_CHUNK: usize = 64 * 1024;

/// Makes a crash-torn last line harmless before appending; returns the new length.
///
/// Linear in the length of the last line, and bounded in memory whatever that
/// length: the line is found by reading backwards in chunks for the newline
/// before it, and checked by parsing it from the file as a stream.
fn repair_torn_tail(file: &mut File, len: u64, path: &Path) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(len); // ends on a line boundary
    }
    // Read backwards to the newline before the last line.
    let mut chunk = vec![0; TAIL_CHUNK];
    let mut pos = len;
    let line_start = loop {
        if pos == 0 {
            break 0;
        }
        let step = pos.min(TAIL_CHUNK as u64);
        pos -= step;
        let chunk = &mut chunk[..step as usize];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            break pos + i as u64 + 1;
        }
    };
    // The zeros a power loss can leave at the end (the file's size reached the
    // disk, the data written last did not) are no part of the line.
    let mut end = len;
    while end > line_start {
        let step = (end - line_start).min(TAIL_CHUNK as u64);
        let chunk = &mut chunk[..step as usize];
        file.seek(SeekFrom::Start(end - step))?;
        file.read_exact(chunk)?;
        match chunk.iter().rposition(|&b| b != 0) {
            Some(i) => {
                end = end - step + i as u64 + 1;
                break;
            }
            None => end -= step,
        }
    }
    let tail_len = len - line_start;
    file.seek(SeekFrom::Start(line_start))?;
    let tail = io::BufReader::new((&*file).take(end - line_start));
    if end > line_start && serde_json::from_reader::<_, serde::de::IgnoredAny>(tail).is_ok() {
        // Complete record, only its newline is missing (and zeros cut after it).
        file.set_len(end)?;
        file.write_all(b"\n")?;
        tracing::warn!(target: "sagemeter", path = %path.display(), zeros = len - end,
            "ledger's last record had no newline (interrupted write): added it");
        return Ok(end + 1);
    }
    file.set_len(line_start)?;
    tracing::warn!(target: "sagemeter", path = %path.display(), bytes = tail_len,
        "ledger ended in a torn line (interrupted write): cut it off before appending");
    Ok(line_start)
}

/// Makes a new (or renamed) file's directory entry durable: fsyncs its
/// directory ([`fsync_parent_dir`]), with [`sync_entry`]'s rule for a directory
/// that cannot be read.
pub(crate) fn sync_parent_dir(path: &Path) -> io::Result<()> {
    sync_entry(path, &fsync_parent_dir)
}

/// Makes the entry of the new `path` durable with `fsync_dir` (which fsyncs
/// its directory). A directory that cannot be opened for reading (`EACCES`,
/// `EPERM`: a write-and-enter-only drop directory, mode 1733) cannot be fsynced
/// by any means: failing every sync for it would break a ledger that works, so
/// that is one WARN (the name may not survive a power loss) and Ok. Any other
/// failure (an I/O error) is returned.
pub(crate) fn sync_entry(
    path: &Path,
    fsync_dir: &dyn Fn(&Path) -> io::Result<()>,
) -> io::Result<()> {
    match fsync_dir(path) {
        Err(e) if dir_unreadable(&e) => {
            tracing::warn!(target: "sagemeter", path = %path.display(), error = %e,
                "ledger: the directory cannot be opened for reading, so it cannot be \
                 fsynced: the new name may not survive a power loss");
            Ok(())
        }
        synced => synced,
    }
}

/// Whether an fsync of a directory failed because the directory cannot be
/// opened for reading (see [`sync_entry`]; [`fsync_parent_dir`] gives a denial
/// of the fsync itself another kind).
fn dir_unreadable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
}

/// Fsyncs the directory of `path`. A file system that does not fsync
/// directories at all (`EINVAL` or `ENOTSUP`, as some network and FUSE mounts
/// answer) has nothing to do here: that is Ok, as it is where this is not Unix;
/// any other failure (the directory cannot be opened, an I/O error) is
/// returned, as the entry may not survive a power loss.
pub(crate) fn fsync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        match File::open(parent)?.sync_all() {
            Err(e) if dir_sync_unsupported(&e) => Ok(()),
            // Denied by the fsync itself (a network mount whose ticket expired),
            // not by opening the directory: the name is at stake, an error
            // that `sync_entry` must not take for an unreadable directory.
            Err(e) if dir_unreadable(&e) => Err(io::Error::other(e)),
            synced => synced,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Whether an fsync of a directory failed only because its file system does
/// not do that (see [`fsync_parent_dir`]).
#[cfg(unix)]
fn dir_sync_unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::ledger::writer::test_lines as lines;

    /// A capacity beyond Tokio's channel limit (whose channel would panic) is
    /// refused like 0, the file or directory not created; the limit itself is
    /// taken.
    #[test]
    fn a_capacity_beyond_the_limit_is_refused_before_anything_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("spend.jsonl");
        let dir = tmp.path().join("receipts");
        for capacity in [MAX_CAPACITY + 1, usize::MAX] {
            for builder in [
                JsonlLedger::builder(&file),
                JsonlLedger::rolling(&dir),
                JsonlLedger::rolling(&dir).keep_files(3),
            ] {
                let err = builder.capacity(capacity).open().unwrap_err();
                assert!(
                    matches!(&err, LedgerError::InvalidOption(c)
                        if c.option == "JsonlLedgerBuilder::capacity"),
                    "{capacity}: {err:?}"
                );
                assert!(err.to_string().contains("at most"), "{err}");
            }
        }
        assert!(!file.exists() && !dir.exists(), "nothing created");
        let ledger = JsonlLedger::builder(&file)
            .capacity(MAX_CAPACITY)
            .open()
            .unwrap();
        assert!(file.exists());
        drop(ledger);
    }

    /// A ledger file another user owns is refused, naming both ids (run by any
    /// user: the process's id is given, not taken from the OS).
    #[cfg(unix)]
    #[test]
    fn a_file_another_user_owns_is_refused_naming_both_ids() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        std::fs::write(&path, b"").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let owner = meta.uid();
        assert!(check_owner_is(&meta, &path, owner).is_ok());
        let other = owner.wrapping_add(1);
        let err = check_owner_is(&meta, &path, other).unwrap_err();
        assert!(
            matches!(&err, LedgerError::NotOwned { owner: o, user: u, .. } if *o == owner && *u == other),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!(
                "belongs to user id {owner}, and this process runs as user id {other}"
            )),
            "{err}"
        );
    }

    /// The ledger lines of receipts with these call ids, as the writer encodes
    /// them (referring to definitions in `dict`).
    fn receipts(dict: &Dictionary, ids: &[&str]) -> (Vec<u8>, Vec<LineMeta>) {
        let (mut bytes, mut metas) = (Vec::new(), Vec::new());
        for id in ids {
            let cost = super::super::writer::tests::cost(id);
            let (start, mut refs) = (bytes.len(), super::super::Refs::default());
            super::super::compact::write_record(&cost, dict, &mut bytes, &mut refs);
            assert!(!refs.ids().is_empty(), "the line refers to a definition");
            metas.push(LineMeta {
                len: bytes.len() - start,
                refs,
                receipt: true,
            });
        }
        (bytes, metas)
    }

    /// A target writing a new ledger file at `path`, and its dictionary, the
    /// receipts `ids` written to it in one write.
    fn target_written(path: &Path, ids: &[&str]) -> (FileTarget, Arc<Dictionary>) {
        let dict = Arc::new(Dictionary::default());
        let (file, len, created) = open_ledger_file(path).unwrap();
        let mut target = FileTarget::new(path.to_path_buf(), file, len, created, dict.clone());
        let (bytes, lines) = receipts(&dict, ids);
        target.write_lines(&bytes, &lines).unwrap();
        (target, dict)
    }

    /// Cuts the file at `path` to `len` bytes, as another program would.
    fn cut_to(path: &Path, len: u64) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(len).unwrap();
    }

    fn call_ids(path: &Path) -> Vec<String> {
        let read = crate::ledger::read_all(path).unwrap();
        read.records.into_iter().map(|c| c.call_id).collect()
    }

    /// A rename rotation whose renamed file is then removed (or compressed), or an
    /// `rm`, leaves the writer's file without a name: lines appended to it could
    /// never be read. The writer sees it (no link left) before its next write
    /// and opens the path again as a new ledger file (0600, locked, the
    /// definitions its receipts need written again): b1 is in the file at the
    /// path, and reads back.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_file_removed_under_the_writer_is_opened_again_at_its_path() {
        use crate::ledger::writer::tests::cost;
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let ledger = JsonlLedger::open(&path).unwrap();
        ledger.try_record(&cost("a1")).unwrap();
        ledger.flush().await.unwrap();
        let rotated = tmp.path().join("calls.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        std::fs::remove_file(&rotated).unwrap();

        ledger.try_record(&cost("b1")).unwrap();
        ledger.sync().await.unwrap();
        assert_eq!(call_ids(&path), ["b1"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            matches!(JsonlLedger::open(&path), Err(LedgerError::Locked { .. })),
            "the new file is locked by its writer"
        );
        ledger.shutdown().await.unwrap();
        let stats = ledger.stats();
        assert_eq!((stats.written, stats.lost_on_error), (2, 0), "{stats:?}");
    }

    /// When the path cannot be opened again (here a directory stands there),
    /// the receipt is lost, counted and reported by the next flush, never
    /// written unseen to the file without a name; the next write tries again.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_removed_file_that_cannot_be_opened_again_loses_its_receipts_and_says_so() {
        use crate::ledger::writer::tests::cost;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let ledger = JsonlLedger::open(&path).unwrap();
        ledger.try_record(&cost("a1")).unwrap();
        ledger.flush().await.unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();

        ledger.try_record(&cost("b1")).unwrap();
        let err = ledger.flush().await.unwrap_err();
        assert!(
            matches!(&err, LedgerError::Write { lost: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("removed"), "{err}");

        std::fs::remove_dir(&path).unwrap();
        ledger.try_record(&cost("c1")).unwrap();
        ledger.shutdown().await.unwrap();
        assert_eq!(call_ids(&path), ["c1"]);
        let stats = ledger.stats();
        assert_eq!((stats.written, stats.lost_on_error), (2, 1), "{stats:?}");
    }

    /// A copytruncate between the truncation check and the `O_APPEND` write puts
    /// the batch at offset 0, without the definitions it refers to: it is cut
    /// back off and written again after them, and the file reads and opens.
    #[test]
    fn a_file_cut_shorter_under_a_write_gets_the_write_again_with_its_definitions() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (mut target, dict) = target_written(&path, &["a"]);

        let cuts = Arc::new(std::sync::atomic::AtomicUsize::new(1));
        let left = cuts.clone();
        target.hooks.write = Some(Arc::new(move |file: &mut File, bytes: &[u8]| {
            if left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                file.set_len(0)?; // another program's truncate, just before the write
            }
            file.write_all(bytes)
        }));
        let (b, b_lines) = receipts(&dict, &["b"]);
        target.write_lines(&b, &b_lines).unwrap();
        assert_eq!(call_ids(&path), ["b"]);
        let (c, c_lines) = receipts(&dict, &["c"]);
        target.write_lines(&c, &c_lines).unwrap();
        assert_eq!(call_ids(&path), ["b", "c"]);
        assert_eq!(target.good_len, std::fs::metadata(&path).unwrap().len());

        // Cut under both writes, each time by its last byte (in the middle of
        // the last line): the batch is lost (said), and the file goes back to its
        // last whole line each time: before "c", then before "b".
        cuts.store(2, Ordering::SeqCst);
        let left = cuts.clone();
        target.hooks.write = Some(Arc::new(move |file: &mut File, bytes: &[u8]| {
            if left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                file.set_len(file.metadata()?.len() - 1)?;
            }
            file.write_all(bytes)
        }));
        let (d, d_lines) = receipts(&dict, &["d"]);
        let failure = target.write_lines(&d, &d_lines).unwrap_err();
        assert_eq!(failure.written, 0);
        assert!(
            failure.source.to_string().contains("cut shorter"),
            "{failure:?}"
        );
        assert_eq!(
            call_ids(&path),
            Vec::<String>::new(),
            "the definitions only"
        );
        assert_eq!(target.good_len, std::fs::metadata(&path).unwrap().len());
        let (e, e_lines) = receipts(&dict, &["e"]);
        target.write_lines(&e, &e_lines).unwrap();
        assert_eq!(call_ids(&path), ["e"]);

        drop(target);
        assert!(open_ledger_file(&path).is_ok(), "the file opens again");
        assert_eq!(call_ids(&path), ["e"]);
    }

    /// A copytruncate between the truncation check and a write that then fails
    /// part-way (a full disk): the failed write's bytes landed at the file's new
    /// end. They are cut off there, lines of it whole included (it is all or
    /// nothing, and they refer to definitions the file no longer holds): the
    /// file is not grown back to its old length, a hole of zeros after them that
    /// the next receipts, without their definitions, would follow. The next write
    /// gets its definitions again and reads back.
    #[test]
    fn a_write_failing_in_a_file_cut_shorter_under_it_is_cut_off_where_it_landed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (mut target, dict) = target_written(&path, &["a", "b"]);
        // 10 bytes of the batch (no whole line), then all of it but its last 3
        // bytes (c's line whole, d's cut in two); then a batch longer than the
        // file was, all of it but its last 3 bytes: the file, cut to 0 under it,
        // is longer than this process left it, and still cut under.
        let many: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        // The receipts, and how many of the batch's bytes land.
        type Case<'a> = (&'a [&'a str], fn(usize) -> usize);
        let cases: [Case; 3] = [
            (&["c", "d"], |_| 10),
            (&["c", "d"], |len| len - 3),
            (&many, |len| len - 3),
        ];
        for (ids, part) in cases {
            let before = target.good_len;
            let armed = Arc::new(AtomicBool::new(true));
            target.hooks.write = Some(Arc::new(move |file: &mut File, bytes: &[u8]| {
                if !armed.swap(false, Ordering::SeqCst) {
                    return file.write_all(bytes);
                }
                file.set_len(0)?; // another program's truncate, just before the write
                file.write_all(&bytes[..part(bytes.len())])?;
                Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"))
            }));
            let (c, c_lines) = receipts(&dict, ids);
            assert!(c.len() as u64 > before || ids.len() == 2);
            let failure = target.write_lines(&c, &c_lines).unwrap_err();
            assert_eq!(failure.written, 0);
            let len = std::fs::metadata(&path).unwrap().len();
            assert_eq!(
                len, 0,
                "cut off where it landed, not grown back to {before}"
            );
            assert_eq!(target.good_len, 0);

            let (e, e_lines) = receipts(&dict, &["e"]);
            target.write_lines(&e, &e_lines).unwrap();
            assert_eq!(call_ids(&path), ["e"]);
            assert_eq!(target.good_len, std::fs::metadata(&path).unwrap().len());
        }
    }

    /// The WARN events' text seen on the test's thread.
    #[derive(Clone, Default)]
    struct Warned(Arc<std::sync::Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warned {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.lock().unwrap().push(format!("{event:?}"));
            }
        }
    }

    /// The WARN events on this thread while the guard lives.
    fn capture_warnings() -> (Warned, tracing::subscriber::DefaultGuard) {
        use tracing_subscriber::layer::SubscriberExt;
        let warned = Warned::default();
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(warned.clone()));
        (warned, guard)
    }

    /// A copytruncate rotation copies the file, then cuts it: receipts appended
    /// between the two are in neither file, and the writer cannot tell which
    /// lines the copy got. The WARN on a cut it notices, before a write or under
    /// one, says that receipts written just before it may have been lost.
    #[test]
    fn a_noticed_cut_warns_that_receipts_written_just_before_may_be_lost() {
        let (warned, _log) = capture_warnings();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (mut target, dict) = target_written(&path, &["a"]);

        // Cut before the next write.
        cut_to(&path, 0);
        let (b, b_lines) = receipts(&dict, &["b"]);
        target.write_lines(&b, &b_lines).unwrap();
        // Cut under the next one.
        let cut = Arc::new(AtomicBool::new(true));
        target.hooks.write = Some(Arc::new(move |file: &mut File, bytes: &[u8]| {
            if cut.swap(false, Ordering::SeqCst) {
                file.set_len(0)?;
            }
            file.write_all(bytes)
        }));
        let (c, c_lines) = receipts(&dict, &["c"]);
        target.write_lines(&c, &c_lines).unwrap();
        assert_eq!(call_ids(&path), ["c"]);

        let warned = warned.0.lock().unwrap().clone();
        assert_eq!(warned.len(), 2, "{warned:?}");
        for warn in &warned {
            assert!(warn.contains("cut shorter"), "{warn}");
            assert!(
                warn.contains("receipts written just before it may have been lost"),
                "{warn}"
            );
        }
    }

    /// A rename rotation that compresses the renamed file at once (logrotate's
    /// `compress` without `delaycompress`, and no reopen): receipts the writer
    /// appends to it after the compressor read it and before it removed it are
    /// in no file, and the writer cannot tell which. The WARN on the removed file
    /// says that receipts written just before it may have been lost, and how to
    /// rotate without losing any.
    #[cfg(unix)]
    #[test]
    fn a_removed_file_warns_that_receipts_written_just_before_may_be_lost() {
        let (warned, _log) = capture_warnings();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (mut target, dict) = target_written(&path, &["a"]);
        // Renamed, read by the compressor, then "a2" appended, then removed.
        let rotated = tmp.path().join("calls.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        let compressed = std::fs::read(&rotated).unwrap();
        let (a2, a2_lines) = receipts(&dict, &["a2"]);
        target.write_lines(&a2, &a2_lines).unwrap();
        std::fs::remove_file(&rotated).unwrap();

        let (b, b_lines) = receipts(&dict, &["b"]);
        target.write_lines(&b, &b_lines).unwrap();
        assert_eq!(call_ids(&path), ["b"]);
        let copy = tmp.path().join("copy.jsonl");
        std::fs::write(&copy, compressed).unwrap();
        assert_eq!(call_ids(&copy), ["a"], "a2 is in neither file");

        let warned = warned.0.lock().unwrap().clone();
        assert_eq!(warned.len(), 1, "{warned:?}");
        let warn = &warned[0];
        assert!(warn.contains("removed"), "{warn}");
        assert!(
            warn.contains("receipts written just before it may have been lost"),
            "{warn}"
        );
        assert!(warn.contains("delaycompress"), "{warn}");
    }

    /// Another program cuts the file in the middle of a line (`truncate -s N`)
    /// and the writer's cut back to the last whole line then fails: that write
    /// fails (its receipt lost, counted as any write error), and the next one
    /// cuts the fragment off first rather than append to it, so the file reads
    /// back: a, then d after the definitions written again.
    #[test]
    fn a_cut_mid_line_whose_cut_back_fails_is_cut_off_before_the_next_write() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (mut target, dict) = target_written(&path, &["a", "b"]);

        // `b`'s line cut in two, by its last 3 bytes.
        let whole = std::fs::metadata(&path).unwrap().len();
        cut_to(&path, whole - 3);
        let cut_fails = Arc::new(AtomicBool::new(true));
        let fails = cut_fails.clone();
        target.hooks.before_truncate = Some(Arc::new(move || {
            match fails.swap(false, Ordering::SeqCst) {
                true => Err(io::Error::other("cannot truncate")),
                false => Ok(()),
            }
        }));
        let (c, c_lines) = receipts(&dict, &["c"]);
        let failure = target.write_lines(&c, &c_lines).unwrap_err();
        assert_eq!(failure.written, 0);

        let (d, d_lines) = receipts(&dict, &["d"]);
        target.write_lines(&d, &d_lines).unwrap();
        assert_eq!(call_ids(&path), ["a", "d"]);
        assert_eq!(target.good_len, std::fs::metadata(&path).unwrap().len());
    }

    /// The directory of a file just made cannot be fsynced (an I/O error): the
    /// file's `sync` fails, not Ok with the file's name perhaps undone by a
    /// power loss, and the next `sync` fsyncs the directory again; once that
    /// works, later syncs fsync the data only. EINVAL (a mount that does not
    /// fsync directories) is nothing to do; a directory that is not there is an
    /// error.
    #[test]
    fn a_failed_fsync_of_a_new_files_directory_fails_its_syncs_until_one_works() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (file, len, created) = open_ledger_file(&path).unwrap();
        let mut target = FileTarget::new(
            path.clone(),
            file,
            len,
            created,
            Arc::new(Dictionary::default()),
        );
        let dir_syncs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let dir_fails = Arc::new(AtomicBool::new(true));
        let (calls, fails, file_path) = (dir_syncs.clone(), dir_fails.clone(), path.clone());
        target.hooks.sync_dir = Some(Arc::new(move |synced: &Path| {
            assert_eq!(synced, file_path);
            calls.fetch_add(1, Ordering::SeqCst);
            match fails.load(Ordering::SeqCst) {
                true => Err(io::Error::from_raw_os_error(libc::EIO)),
                false => Ok(()),
            }
        }));
        let (a, a_lines) = lines('a', 1);
        target.write_lines(&a, &a_lines).unwrap();
        let err = target.sync().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        dir_fails.store(false, Ordering::SeqCst);
        target.sync().unwrap();
        target.sync().unwrap();
        assert_eq!(
            dir_syncs.load(Ordering::SeqCst),
            2,
            "tried again once, then done"
        );

        assert!(dir_sync_unsupported(&io::Error::from_raw_os_error(
            libc::EINVAL
        )));
        assert!(!dir_sync_unsupported(&io::Error::from_raw_os_error(
            libc::EIO
        )));
        let gone = tmp.path().join("gone").join("calls.jsonl");
        let err = sync_parent_dir(&gone).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        sync_parent_dir(&path).unwrap();
    }

    /// A target whose directory fsyncs go to `answer`, counted in the count
    /// returned.
    fn with_dir_syncs(
        target: &mut FileTarget,
        answer: fn() -> io::Result<()>,
    ) -> Arc<std::sync::atomic::AtomicUsize> {
        let dir_syncs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let calls = dir_syncs.clone();
        target.hooks.sync_dir = Some(Arc::new(move |_: &Path| {
            calls.fetch_add(1, Ordering::SeqCst);
            answer()
        }));
        dir_syncs
    }

    /// A file that was there when the ledger opened it has no new name at
    /// stake: its syncs never fsync its directory, so a directory that cannot
    /// be (a write-and-enter-only drop directory) never fails them.
    #[test]
    fn an_existing_file_opened_has_no_directory_entry_to_sync() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (_, _, created) = open_ledger_file(&path).unwrap();
        assert!(created);
        let (file, len, created) = open_ledger_file(&path).unwrap();
        assert!(!created, "there already");
        let dict = Arc::new(Dictionary::default());
        let mut target = FileTarget::new(path.clone(), file, len, created, dict);
        let dir_syncs = with_dir_syncs(&mut target, || {
            Err(io::Error::from_raw_os_error(libc::EACCES))
        });
        let (a, a_lines) = lines('a', 1);
        target.write_lines(&a, &a_lines).unwrap();
        target.sync().unwrap();
        assert_eq!(dir_syncs.load(Ordering::SeqCst), 0);
    }

    /// A new file's directory that cannot be opened for reading (EACCES, EPERM:
    /// a write-and-enter-only drop directory) cannot be fsynced by any means:
    /// the sync is Ok, with one WARN that the name may not survive a power
    /// loss, and later syncs do not try again.
    #[test]
    fn a_new_files_directory_that_cannot_be_read_is_warned_once_not_an_error() {
        let (warned, _log) = capture_warnings();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (file, len, created) = open_ledger_file(&path).unwrap();
        let dict = Arc::new(Dictionary::default());
        let mut target = FileTarget::new(path.clone(), file, len, created, dict);
        let dir_syncs = with_dir_syncs(&mut target, || {
            Err(io::Error::from_raw_os_error(libc::EACCES))
        });
        for n in 0..2 {
            let (a, a_lines) = lines('a', n + 1);
            target.write_lines(&a, &a_lines).unwrap();
            target.sync().unwrap();
        }
        assert_eq!(dir_syncs.load(Ordering::SeqCst), 1);
        let warned = warned.0.lock().unwrap().clone();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].contains("may not survive a power loss"),
            "{}",
            warned[0]
        );
        assert!(dir_unreadable(&io::Error::from_raw_os_error(libc::EPERM)));
        assert!(!dir_unreadable(&io::Error::from_raw_os_error(libc::EIO)));
    }

    #[test]
    fn a_partial_line_that_cannot_be_cut_off_stops_writes_until_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("calls.jsonl");
        let (file, len, created) = open_ledger_file(&path).unwrap();
        let mut target = FileTarget::new(
            path.clone(),
            file,
            len,
            created,
            Arc::new(Dictionary::default()),
        );
        let (a, a_lines) = lines('a', 1);
        target.write_lines(&a, &a_lines).unwrap();

        // The disk fills part-way through `b1`, and cutting it off fails too.
        let disk_full = Arc::new(AtomicBool::new(true));
        let full = disk_full.clone();
        target.hooks.write = Some(Arc::new(move |file: &mut File, bytes: &[u8]| {
            if !full.load(Ordering::SeqCst) {
                return file.write_all(bytes);
            }
            file.write_all(&bytes[..2])?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"))
        }));
        let cut_fails = Arc::new(AtomicBool::new(true));
        let fails = cut_fails.clone();
        target.hooks.before_truncate = Some(Arc::new(move || match fails.load(Ordering::SeqCst) {
            true => Err(io::Error::other("cannot truncate")),
            false => Ok(()),
        }));
        let (b, b_lines) = lines('b', 1);
        let failure = target.write_lines(&b, &b_lines).unwrap_err();
        assert_eq!(failure.written, 0);
        let read = || std::fs::read_to_string(&path).unwrap();
        assert_eq!(read(), "a1\nb1", "the fragment is still there");

        // Space comes back, but the fragment is not cut off yet: the next line
        // is refused (the writer counts it lost) rather than glued to it.
        disk_full.store(false, Ordering::SeqCst);
        let (c, c_lines) = lines('c', 1);
        let failure = target.write_lines(&c, &c_lines).unwrap_err();
        assert_eq!(failure.written, 0);
        assert!(
            failure.source.to_string().contains("partial line"),
            "{failure:?}"
        );
        assert_eq!(read(), "a1\nb1");

        // Once the cut works, writing goes on after the last whole line.
        cut_fails.store(false, Ordering::SeqCst);
        let (d, d_lines) = lines('d', 1);
        target.write_lines(&d, &d_lines).unwrap();
        assert_eq!(read(), "a1\nd1\n");
    }

    /// A rolling ledger's option on a ledger of one file is refused by `open`,
    /// naming the option, before anything is made: no directory where a file
    /// was meant, and an existing ledger file is left as it is.
    #[test]
    fn a_rolling_option_on_a_ledger_of_one_file_is_refused_and_nothing_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        let new = tmp.path().join("a.jsonl");
        let existing = tmp.path().join("b.jsonl");
        drop(JsonlLedger::open(&existing).unwrap());
        let before = std::fs::read(&existing).unwrap();
        let clock = || SharedTimeSource::new(SystemTimeSource::new());
        for path in [&new, &existing] {
            let b = || JsonlLedger::builder(path);
            for (builder, option) in [
                (b().max_bytes(1 << 20), "max_bytes"),
                (b().keep_files(3), "keep_files"),
                (b().roll_every(RollEvery::Day), "roll_every"),
                (b().time_source(clock()), "time_source"),
                // The first one set is named, ahead of its own checks.
                (b().keep_files(0).max_bytes(0), "keep_files"),
            ] {
                let err = builder
                    .sync_every(Duration::from_secs(1))
                    .open()
                    .unwrap_err();
                let LedgerError::InvalidOption(c) = &err else {
                    panic!("{option}: {err:?}")
                };
                assert_eq!(c.option, format!("JsonlLedgerBuilder::{option}"));
                assert!(err.to_string().contains("JsonlLedger::rolling"), "{err}");
            }
        }
        assert!(!new.exists(), "no file or directory made");
        assert!(std::fs::metadata(&existing).unwrap().is_file());
        assert_eq!(std::fs::read(&existing).unwrap(), before);

        // The same options make a rolling ledger of `rolling`, and none is needed
        // for a ledger of one file.
        let dir = tmp.path().join("receipts");
        let rolling = JsonlLedger::rolling(&dir)
            .max_bytes(1 << 20)
            .keep_files(3)
            .time_source(clock())
            .open()
            .unwrap();
        assert!(dir.is_dir());
        drop(rolling);
        drop(
            JsonlLedger::builder(&new)
                .sync_every(Duration::from_secs(1))
                .open()
                .unwrap(),
        );
        assert!(new.is_file());
    }
}
