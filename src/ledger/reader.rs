//! Reading a JSON Lines ledger back into receipts.

use super::compact::{self, Definitions};
use super::{LEDGER_FORMAT_VERSION, LedgerError};
use crate::billing::Cost;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The longest line a reader takes (16 MiB). The writer's lines are a few hundred
/// bytes to a few KB (a receipt with many tags or notes); a longer run of bytes
/// without a newline (a JSON array dump, a zero-filled tail left by a power loss)
/// is no ledger line, and is refused as [`LedgerError::Corrupt`] once this much of
/// it is read, wherever it is, rather than read into memory whole.
pub(crate) const MAX_LINE_BYTES: usize = 16 << 20;

/// The error of a line longer than [`MAX_LINE_BYTES`].
pub(crate) fn line_too_long() -> serde_json::Error {
    serde::de::Error::custom(format_args!(
        "the line is longer than {} MiB without a newline: not a ledger line (a receipt \
         is a few KB)",
        MAX_LINE_BYTES >> 20
    ))
}

/// The text of a line to read, without surrounding whitespace, and whether zeros
/// were cut from it: a last line (`complete`: a newline after it, or not) less the
/// zeros a power loss can leave at a file's end (its size reached the disk, the
/// data written last did not). The writer cuts them before it appends
/// ([`JsonlLedger::open`](super::JsonlLedger::open)), and readers read what is
/// before them as a last line.
pub(crate) fn line_text(text: &[u8], complete: bool) -> (&[u8], bool) {
    let text = text.trim_ascii();
    if complete || text.last() != Some(&0) {
        return (text, false);
    }
    let kept = text.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    (text[..kept].trim_ascii(), true)
}

/// Line `line` of `path`, `bytes` at `offset`, its last, skipped as torn (an
/// interrupted write); said in a WARN.
pub(crate) fn torn_tail(path: &Path, line: u64, offset: u64, bytes: u64) -> TornTail {
    let tail = TornTail::new(line, offset, bytes);
    tracing::warn!(target: "sagemeter", path = %path.display(),
        line = tail.line, bytes = tail.bytes,
        "skipped a torn last line of the ledger (an interrupted write); \
         every record before it was read");
    tail
}

/// A last line cut short by a crash, skipped by the reader.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TornTail {
    /// Its 1-based line number.
    pub line: u64,
    /// Its byte offset in the file.
    pub offset: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

impl TornTail {
    pub(crate) fn new(line: u64, offset: u64, bytes: u64) -> Self {
        TornTail {
            line,
            offset,
            bytes,
        }
    }
}

/// Everything [`read_all`] found.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRead {
    /// The receipts, in file order.
    pub records: Vec<Cost>,
    /// The torn last line that was skipped, if any.
    pub torn_tail: Option<TornTail>,
}

/// Reads a whole ledger file.
///
/// ```no_run
/// let read = sagemeter::ledger::read_all("calls.jsonl")?;
/// let total: sagemeter::Decimal = read.records.iter().map(|c| c.cost_usd).sum();
/// if let Some(torn) = &read.torn_tail {
///     eprintln!("skipped a torn last line ({} bytes at line {})", torn.bytes, torn.line);
/// }
/// # Ok::<(), sagemeter::ledger::LedgerError>(())
/// ```
pub fn read_all(path: impl AsRef<Path>) -> Result<LedgerRead, LedgerError> {
    let mut reader = LedgerReader::open(path)?;
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok(LedgerRead {
        records,
        torn_tail: reader.torn_tail,
    })
}

/// What tells files apart when a reader is handed several paths: the device and
/// inode on Unix, so that a hard link or a symbolic link to a file already read is
/// the same file; elsewhere the canonical path. A path that does not resolve (a
/// missing file) is compared as given, and left for its reader to refuse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum FileId {
    #[cfg(unix)]
    Inode {
        dev: u64,
        ino: u64,
    },
    Path(PathBuf),
}

impl FileId {
    pub(crate) fn of(path: &Path) -> FileId {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if let Ok(meta) = std::fs::metadata(path) {
                return FileId::Inode {
                    dev: meta.dev(),
                    ino: meta.ino(),
                };
            }
        }
        FileId::Path(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()))
    }
}

/// The ledger files at `path`, in the order to read them: a file is itself; a
/// directory gives a rolling ledger's files oldest first
/// ([`JsonlLedger::rolling`](super::JsonlLedger::rolling)), then its other `*.jsonl`
/// files by name. A directory without any is an error, so that a typo is not an
/// empty report.
pub fn ledger_files(path: impl AsRef<Path>) -> Result<Vec<PathBuf>, LedgerError> {
    let path = path.as_ref();
    let open_err = |source| LedgerError::Open {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(open_err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let files = jsonl_files_in(path)?;
    if files.is_empty() {
        return Err(no_ledger_file(path));
    }
    Ok(files)
}

/// The `*.jsonl` files of the directory `path` in the order to read them (as
/// [`ledger_files`] says), none when it holds none.
fn jsonl_files_in(path: &Path) -> Result<Vec<PathBuf>, LedgerError> {
    let open_err = |source| LedgerError::Open {
        path: path.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = super::rolling::rolled_files(path)
        .map_err(open_err)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let mut others: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(open_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && p.extension().is_some_and(|x| x == "jsonl") && !files.contains(p)
        })
        .collect();
    others.sort();
    files.extend(others);
    Ok(files)
}

/// The error of a directory that holds no ledger file: a typo is not an empty
/// report.
fn no_ledger_file(dir: &Path) -> LedgerError {
    LedgerError::Open {
        path: dir.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the directory holds no ledger file (*.jsonl)",
        ),
    }
}

/// Whether `path` names a Parquet ledger (`*.parquet`), by its name alone.
pub(crate) fn is_parquet_name(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "parquet")
}

/// Whether the entry `name` of a directory, at `file`, is a Parquet ledger file
/// a listing takes: a `*.parquet` name, not hidden (being written, or another
/// tool's), that is a file or a symbolic link to one (as the JSON Lines listing
/// takes them). One removed since it was listed (retention), or a link to
/// nothing, is not; any other error finding what it is, is one.
pub(crate) fn is_listed_parquet(name: &str, file: &Path) -> Result<bool, LedgerError> {
    if name.starts_with('.') || !name.ends_with(".parquet") {
        return Ok(false);
    }
    match std::fs::metadata(file) {
        Ok(meta) => Ok(meta.is_file()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(LedgerError::Open {
            path: file.to_owned(),
            source,
        }),
    }
}

/// The ledger files at `path` of either format, in the order to read them: the
/// JSON Lines files as [`ledger_files`] lists them, then, with the `parquet`
/// feature, the Parquet files (a `*.parquet` path, or a directory's, as
/// `parquet::parquet_files` lists them). A path that does not exist is an error
/// ([`LedgerError::Open`]), a `*.parquet` one too; so is a directory with
/// neither, and one whose Parquet or JSON Lines files cannot be listed.
/// Without the feature, a `*.parquet` path or a directory holding a Parquet
/// ledger file is an error naming the feature: its receipts are not left out.
/// What `report` and `reconcile` read.
pub fn any_ledger_files(path: impl AsRef<Path>) -> Result<Vec<PathBuf>, LedgerError> {
    let path = path.as_ref();
    #[cfg(feature = "parquet")]
    {
        if is_parquet_name(path) {
            // One named that does not exist (a typo) is an error, as a JSON Lines
            // file is: not taken for one removed by retention while it was read.
            std::fs::metadata(path).map_err(|source| LedgerError::Open {
                path: path.to_owned(),
                source,
            })?;
            return Ok(vec![path.to_owned()]);
        }
        if path.is_dir() {
            let parquet = super::parquet::parquet_files_in(path)?;
            return with_parquet(path, jsonl_files_in(path), parquet);
        }
    }
    #[cfg(not(feature = "parquet"))]
    {
        if is_parquet_name(path) {
            return Err(without_parquet(path, path));
        }
        if path.is_dir()
            && let Some(file) = parquet_file_in(path)?
        {
            return Err(without_parquet(path, &file));
        }
    }
    ledger_files(path)
}

/// The directory `dir`'s JSON Lines files (their listing, none when it holds
/// none), then its Parquet files; an error when it holds neither. A listing
/// that failed is an error, Parquet files or not: taken for none, it would
/// leave every JSON Lines receipt of a mixed directory out without a word.
#[cfg(feature = "parquet")]
fn with_parquet(
    dir: &Path,
    jsonl: Result<Vec<PathBuf>, LedgerError>,
    parquet: Vec<PathBuf>,
) -> Result<Vec<PathBuf>, LedgerError> {
    let mut files = jsonl?;
    files.extend(parquet);
    if files.is_empty() {
        return Err(no_ledger_file(dir));
    }
    Ok(files)
}

/// The first by name of the Parquet ledger files ([`is_listed_parquet`]) of the
/// directory `dir`, if it holds any: what a sagemeter built without the `parquet`
/// feature cannot read, and refuses rather than leave out of a directory's report.
#[cfg(any(test, not(feature = "parquet")))]
fn parquet_file_in(dir: &Path) -> Result<Option<PathBuf>, LedgerError> {
    let open_err = |source| LedgerError::Open {
        path: dir.to_owned(),
        source,
    };
    let mut first: Option<PathBuf> = None;
    for entry in std::fs::read_dir(dir).map_err(open_err)? {
        let entry = entry.map_err(open_err)?;
        let file = entry.path();
        if let Some(name) = entry.file_name().to_str()
            && is_listed_parquet(name, &file)?
            && first.as_ref().is_none_or(|first| file < *first)
        {
            first = Some(file);
        }
    }
    Ok(first)
}

/// Why a sagemeter built without the `parquet` feature refuses `path`: it is, or
/// holds, the Parquet ledger `file`.
#[cfg(any(test, not(feature = "parquet")))]
fn without_parquet(path: &Path, file: &Path) -> LedgerError {
    let what = match path == file {
        true => "it is a Parquet ledger".to_owned(),
        false => format!("it holds Parquet ledger files ({} …)", file.display()),
    };
    LedgerError::Open {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "{what}, which this sagemeter, built without the `parquet` feature, does not \
                 read; rebuild it with `--features parquet`, or name its JSON Lines files"
            ),
        ),
    }
}

/// A streaming reader: an iterator of receipts, one line at a time.
///
/// - Blank lines are skipped.
/// - A last line that has no final newline and ends before its JSON does is what
///   a crash in the middle of a write leaves: it is skipped with a WARN and
///   reported by [`torn_tail`](Self::torn_tail); the iteration ends normally.
/// - A first line that is not a record (whole, or with a newline) is
///   [`LedgerError::NotALedger`]: the file is something else.
/// - Any other line that does not parse is an error naming the line
///   ([`LedgerError::Corrupt`]); so is a line longer than 16 MiB, even the last
///   one without a newline (the writer writes none: it is not a torn write, and
///   it is refused once 16 MiB of it are read, not read whole), and a record of a
///   newer format version ([`LedgerError::UnsupportedVersion`]). The iterator
///   ends after an error.
/// - Lines without a `"v"` member are read as version 1 (e.g. receipts serialised
///   by hand with `serde_json`).
#[derive(Debug)]
pub struct LedgerReader<R = BufReader<File>> {
    path: PathBuf,
    reader: R,
    line: u64,
    offset: u64,
    buf: Vec<u8>,
    /// Format 2's definitions read so far in this file.
    defs: Definitions,
    torn_tail: Option<TornTail>,
    /// Whether a line (a record or a definition) has been read.
    read_any: bool,
    done: bool,
}

impl LedgerReader {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref();
        let file = super::file::open_to_read(path)?;
        Ok(Self::new(BufReader::with_capacity(256 * 1024, file), path))
    }
}

impl<R: BufRead> LedgerReader<R> {
    /// Reads from any buffered reader; `name` is used in errors.
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Self {
        LedgerReader {
            path: name.into(),
            reader,
            line: 0,
            offset: 0,
            buf: Vec::with_capacity(4096),
            defs: Definitions::default(),
            torn_tail: None,
            read_any: false,
            done: false,
        }
    }

    /// Price change records read so far
    /// ([`JsonlLedger::record_price_change`](super::JsonlLedger::record_price_change)):
    /// records for auditors, which the iteration, of receipts, leaves out.
    pub fn price_changes(&self) -> u64 {
        self.defs.price_changes
    }

    /// The torn last line skipped, once the iteration has reached it.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// The 1-based line of the receipt the iteration returned last (0 before any):
    /// what an error about what that receipt holds names.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Whether a line (a record or a definition) has been read whole: an error
    /// before any is about the file's first line.
    pub(crate) fn read_any(&self) -> bool {
        self.read_any
    }

    fn next_record(&mut self) -> Option<Result<Cost, LedgerError>> {
        loop {
            self.buf.clear();
            // At most one byte past the limit: enough to tell a line too long.
            let limit = MAX_LINE_BYTES as u64 + 1;
            let read = match (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(0) => return None,
                Ok(n) => n,
                Err(source) => {
                    return Some(Err(LedgerError::Read {
                        path: self.path.clone(),
                        line: self.line + 1,
                        source,
                    }));
                }
            };
            self.line += 1;
            let offset = self.offset;
            self.offset += read as u64;
            let complete = self.buf.last() == Some(&b'\n');
            if !complete && read > MAX_LINE_BYTES {
                // Not a torn write either: the writer never writes such a line.
                self.buf = Vec::new(); // its room is not kept
                return Some(Err(LedgerError::Corrupt {
                    path: self.path.clone(),
                    line: self.line,
                    source: line_too_long().into(),
                }));
            }
            let (text, zeros) = line_text(&self.buf, complete);
            if text.is_empty() {
                if zeros {
                    // Only zeros: whatever was written there never reached the disk.
                    self.torn_tail = Some(torn_tail(&self.path, self.line, offset, read as u64));
                    return None;
                }
                continue;
            }
            let parsed = check_version(text)
                .map_err(|version| LedgerError::UnsupportedVersion {
                    path: self.path.clone(),
                    line: self.line,
                    version,
                })
                .and_then(|version| {
                    read_versioned(version, text, &mut self.defs).map_err(|source| {
                        LedgerError::Corrupt {
                            path: self.path.clone(),
                            line: self.line,
                            source: source.into(),
                        }
                    })
                });
            if parsed.is_ok() {
                self.read_any = true;
            }
            return match parsed {
                Ok(Some(cost)) => Some(Ok(cost)),
                Ok(None) => continue, // a definition
                Err(LedgerError::Corrupt { source, .. }) if !complete && source.is_eof() => {
                    // No newline: this was the last line, and its write was cut short.
                    self.torn_tail = Some(torn_tail(&self.path, self.line, offset, read as u64));
                    None
                }
                Err(LedgerError::Corrupt { path, source, .. }) if !self.read_any => {
                    Some(Err(LedgerError::NotALedger { path, source }))
                }
                Err(e) => Some(Err(e)),
            };
        }
    }
}

impl<R: BufRead> Iterator for LedgerReader<R> {
    type Item = Result<Cost, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_record();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

impl<R: BufRead> std::iter::FusedIterator for LedgerReader<R> {}

/// Why a line did not read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// Of a format newer than this reader.
    Version(u64),
    /// Not a record.
    Corrupt(serde_json::Error),
}

/// One line of any version: a receipt, or `None` for a definition (taken into
/// `defs`, the definitions read so far in the file).
pub(crate) fn read_record(text: &[u8], defs: &mut Definitions) -> Result<Option<Cost>, LineError> {
    let version = check_version(text).map_err(LineError::Version)?;
    read_versioned(version, text, defs).map_err(LineError::Corrupt)
}

fn read_versioned(
    version: u32,
    text: &[u8],
    defs: &mut Definitions,
) -> serde_json::Result<Option<Cost>> {
    match version {
        compact::VERSION => compact::read_line(text, defs),
        _ => serde_json::from_slice::<Cost>(text).map(Some),
    }
}

/// The line's format version (1 when it has none), or `Err(version)` when it is
/// newer than this reader. Fast path: lines written by
/// [`JsonlLedger`](super::JsonlLedger) start with `{"v":N,`.
fn check_version(line: &[u8]) -> Result<u32, u64> {
    let version = match line.strip_prefix(b"{\"v\":") {
        Some(rest) => {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|d| d.parse::<u64>().ok())
        }
        None => None,
    };
    let version = match version {
        Some(v) => Some(v),
        None => {
            #[derive(serde::Deserialize)]
            struct Versioned {
                v: Option<u64>,
            }
            // Unparseable lines are reported by the full parse that follows.
            serde_json::from_slice::<Versioned>(line)
                .ok()
                .and_then(|x| x.v)
        }
    };
    match version {
        Some(v) if v > u64::from(LEDGER_FORMAT_VERSION) => Err(v),
        Some(v) => Ok(u32::try_from(v).unwrap_or(1).max(1)),
        None => Ok(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"v":1,"call_id":"c1","at":"2026-11-02T10:00:00Z","endpoint":"rt","variant":"AllTraffic","allocation":"busy_time","usage":{"operation":"invoke_endpoint","latency_us":1000,"bytes_in":1,"bytes_out":2,"variant":"AllTraffic","outcome":"ok"},"lines":[],"cost_usd":"0.5","currency":"USD","running_client_usd":"0.5","running_endpoint_usd":"0.5"}"#;

    fn read(text: &str) -> (Vec<Result<Cost, LedgerError>>, Option<TornTail>) {
        let mut reader = LedgerReader::new(text.as_bytes(), "mem.jsonl");
        let items: Vec<_> = reader.by_ref().collect();
        (items, reader.torn_tail)
    }

    /// A directory's JSON Lines files that cannot be listed are an error, not a
    /// report of its Parquet files alone (its JSON Lines receipts left out
    /// without a word); a directory that holds none still reads its Parquet files.
    #[cfg(feature = "parquet")]
    #[test]
    fn a_mixed_directory_whose_jsonl_files_cannot_be_listed_is_an_error_not_its_parquet_alone() {
        let dir = tempfile::tempdir().unwrap();
        let parquet = dir.path().join("sagemeter-2026-12-02T07.parquet");
        for kind in [
            std::io::ErrorKind::PermissionDenied,
            // An entry removed by retention between the listing and its lstat.
            std::io::ErrorKind::NotFound,
        ] {
            let listing = Err(LedgerError::Open {
                path: dir.path().to_owned(),
                source: std::io::Error::from(kind),
            });
            let err = with_parquet(dir.path(), listing, vec![parquet.clone()]).unwrap_err();
            assert!(
                matches!(&err, LedgerError::Open { source, .. } if source.kind() == kind),
                "{err:?}"
            );
        }
        // No *.jsonl at all: the Parquet files are the ledger.
        assert_eq!(
            with_parquet(
                dir.path(),
                jsonl_files_in(dir.path()),
                vec![parquet.clone()]
            )
            .unwrap(),
            [parquet]
        );
        // Neither: an error, not an empty report.
        let err = with_parquet(dir.path(), jsonl_files_in(dir.path()), vec![]).unwrap_err();
        assert!(err.to_string().contains("no ledger file"), "{err}");
    }

    /// A directory's Parquet files that cannot be listed are an error, not a
    /// report of its JSON Lines files alone: `loop.parquet`, a link to itself,
    /// may be a ledger, and its receipts would be left out without a word.
    #[cfg(all(unix, feature = "parquet"))]
    #[test]
    fn a_directory_whose_parquet_files_cannot_be_listed_is_an_error_not_its_jsonl_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("calls.jsonl"), format!("{RECORD}\n")).unwrap();
        let looped = dir.path().join("loop.parquet");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        match any_ledger_files(dir.path()) {
            Err(LedgerError::Open { path, .. }) => assert_eq!(path, looped),
            other => panic!("not an error naming the file: {other:?}"),
        }
        // Removed, it is no error: the JSON Lines file alone.
        std::fs::remove_file(&looped).unwrap();
        assert_eq!(
            any_ledger_files(dir.path()).unwrap(),
            [dir.path().join("calls.jsonl")]
        );
    }

    /// What a sagemeter built without the `parquet` feature refuses in a
    /// directory (rather than report its JSON Lines files and leave the Parquet
    /// ones out): its first `*.parquet` file by name, a link to one too; not a
    /// hidden one (being written), a link to nothing, or a directory.
    #[cfg(unix)]
    #[test]
    fn a_parquet_file_in_a_directory_is_found_for_a_build_without_the_feature_to_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        std::fs::write(path.join("calls.jsonl"), format!("{RECORD}\n")).unwrap();
        std::fs::write(path.join(".sagemeter-2026-12-02T10.parquet.tmp"), b"").unwrap();
        std::fs::write(path.join(".hidden.parquet"), b"").unwrap();
        std::fs::create_dir(path.join("a-directory.parquet")).unwrap();
        std::os::unix::fs::symlink(path.join("gone"), path.join("a-gone.parquet")).unwrap();
        assert_eq!(parquet_file_in(path).unwrap(), None);

        std::fs::write(path.join("sagemeter-2026-12-02T10.parquet"), b"PAR1").unwrap();
        std::fs::write(path.join("elsewhere"), b"PAR1").unwrap();
        std::os::unix::fs::symlink(path.join("elsewhere"), path.join("b-link.parquet")).unwrap();
        let first = path.join("b-link.parquet");
        assert_eq!(parquet_file_in(path).unwrap(), Some(first.clone()));
        let said = without_parquet(path, &first).to_string();
        assert!(said.contains("`parquet` feature"), "{said}");
        assert!(said.contains("b-link.parquet"), "{said}");
        assert!(
            without_parquet(&first, &first)
                .to_string()
                .contains("it is a Parquet ledger"),
        );
    }

    #[test]
    fn versions_up_to_the_current_one_and_unversioned_lines_are_read() {
        let unversioned = RECORD.replacen(r#""v":1,"#, "", 1);
        let v0 = RECORD.replacen(r#""v":1"#, r#""v":0"#, 1);
        let (items, torn) = read(&format!("{RECORD}\n\n{unversioned}\n  \n{v0}\n"));
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(Result::is_ok));
        assert!(torn.is_none());
    }

    #[test]
    fn a_newer_version_is_an_error_naming_line_and_version_even_when_v_is_not_first() {
        let v3 = RECORD.replacen(r#""v":1"#, r#""v":3"#, 1);
        let (items, _) = read(&format!("{RECORD}\n{v3}\n"));
        let err = items[1].as_ref().unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::UnsupportedVersion {
                    line: 2,
                    version: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let moved = RECORD.replacen(r#""v":1,"#, "", 1).replacen(
            r#""currency":"USD""#,
            r#""currency":"USD","v":7"#,
            1,
        );
        let (items, _) = read(&format!("{moved}\n"));
        assert!(matches!(
            items[0],
            Err(LedgerError::UnsupportedVersion { version: 7, .. })
        ));
    }

    /// A format-1 line's money is read from JSON strings only, as the writer
    /// writes it: a JSON number would go through `f64` and lose digits
    /// (`0.1234567890123456789` reads as `0.12345678901234568`), silently.
    #[test]
    fn a_format_1_amount_written_as_a_json_number_is_corrupt_not_read_through_f64() {
        let (items, _) = read(&format!("{RECORD}\n"));
        assert!(matches!(items.as_slice(), [Ok(_)]), "{items:?}");
        for (member, number) in [
            (r#""cost_usd":"0.5""#, r#""cost_usd":0.1234567890123456789"#),
            (
                r#""running_client_usd":"0.5""#,
                r#""running_client_usd":123456.789012345678"#,
            ),
            (
                r#""running_endpoint_usd":"0.5""#,
                r#""running_endpoint_usd":0.5"#,
            ),
        ] {
            let damaged = RECORD.replacen(member, number, 1);
            assert_ne!(damaged, RECORD);
            let (items, _) = read(&format!("{RECORD}\n{damaged}\n"));
            assert!(
                matches!(
                    items.as_slice(),
                    [Ok(_), Err(LedgerError::Corrupt { line: 2, .. })]
                ),
                "{number}: {items:?}"
            );
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_reported_with_its_position() {
        let torn = &RECORD[..40];
        let text = format!("{RECORD}\n{RECORD}\n{torn}");
        let (items, tail) = read(&text);
        assert_eq!(items.len(), 2);
        assert_eq!(
            tail,
            Some(TornTail {
                line: 3,
                offset: 2 * (RECORD.len() as u64 + 1),
                bytes: 40
            })
        );
    }

    /// A power loss can leave zeros where the last writes were (the file's size
    /// reached the disk, their data did not): the reader skips them as the
    /// writer cuts them, and reads what is before them as a last line.
    #[test]
    fn zeros_at_the_end_are_a_torn_tail_and_what_is_before_them_a_last_line() {
        let zeros = "\0".repeat(4096);
        let torn = &RECORD[..40];
        for (text, records, tail_bytes) in [
            (format!("{RECORD}\n{RECORD}\n{zeros}"), 2, Some(4096)),
            (
                format!("{RECORD}\n{RECORD}\n{torn}{zeros}"),
                2,
                Some(40 + 4096),
            ),
            (format!("{RECORD}\n{RECORD}{zeros}"), 2, None),
            (zeros.clone(), 0, Some(4096)),
        ] {
            let (items, tail) = read(&text);
            assert_eq!(items.len(), records, "{:?}", &text[..text.len().min(50)]);
            assert!(items.iter().all(Result::is_ok), "{items:?}");
            assert_eq!(tail.map(|t| t.bytes), tail_bytes);
        }
    }

    #[test]
    fn line_is_the_last_receipts_past_blank_lines() {
        let text = format!("{RECORD}\n\n{RECORD}\n");
        let mut reader = LedgerReader::new(text.as_bytes(), "t.jsonl");
        assert_eq!(reader.line(), 0);
        reader.next().unwrap().unwrap();
        assert_eq!(reader.line(), 1);
        // line 2 is blank
        reader.next().unwrap().unwrap();
        assert_eq!(reader.line(), 3);
    }

    #[test]
    fn a_complete_last_line_without_newline_is_a_record() {
        let (items, tail) = read(&format!("{RECORD}\n{RECORD}"));
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_ok));
        assert!(tail.is_none());
    }

    #[test]
    fn a_bad_last_line_that_ends_in_a_newline_is_corruption_not_a_torn_write() {
        let (items, tail) = read(&format!("{RECORD}\n{{\"oops\"\n"));
        assert!(matches!(
            items[1],
            Err(LedgerError::Corrupt { line: 2, .. })
        ));
        assert!(tail.is_none());
    }

    /// A reader that counts the bytes read from it.
    pub(crate) struct Counting<R> {
        pub(crate) inner: R,
        pub(crate) read: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.set(self.read.get() + n as u64);
            Ok(n)
        }
    }

    /// 64 MiB without a newline (a JSON array dump, a zero-filled tail): refused
    /// as corrupt once past the 16 MiB limit, not read (or held) whole, though it
    /// is the last line and has no newline.
    #[test]
    fn a_line_longer_than_the_limit_is_corrupt_and_not_read_whole() {
        let read = std::rc::Rc::default();
        let huge = Counting {
            inner: std::io::repeat(b'x').take(64 << 20),
            read: std::rc::Rc::clone(&read),
        };
        let text = format!("{RECORD}\n");
        let source = text.as_bytes().chain(huge);
        let mut reader = LedgerReader::new(BufReader::new(source), "dump.jsonl");
        assert!(reader.next().unwrap().is_ok());
        match reader.next() {
            Some(Err(LedgerError::Corrupt {
                line: 2, source, ..
            })) => {
                assert!(source.to_string().contains("16 MiB"), "{source}")
            }
            other => panic!("not corrupt at line 2: {other:?}"),
        }
        assert!(reader.next().is_none());
        assert!(reader.torn_tail().is_none());
        // The limit and at most a buffer (8 KiB) more.
        assert!(
            read.get() <= MAX_LINE_BYTES as u64 + 8192,
            "{} bytes read",
            read.get()
        );
        assert!(reader.buf.capacity() < 4096 * 2, "its room is given back");
    }

    /// A line of exactly the limit is read (and judged as any line).
    #[test]
    fn a_torn_line_at_the_limit_is_still_a_torn_tail() {
        // A record cut short inside a string, MAX_LINE_BYTES long.
        let cut = format!("{{\"call_id\":\"{}", "x".repeat(MAX_LINE_BYTES - 12));
        assert_eq!(cut.len(), MAX_LINE_BYTES);
        let text = format!("{RECORD}\n{cut}");
        let (items, tail) = read(&text);
        assert_eq!(items.len(), 1);
        assert_eq!(tail.map(|t| t.bytes), Some(MAX_LINE_BYTES as u64));
    }

    #[test]
    fn a_file_whose_first_line_is_no_record_is_not_a_ledger_and_no_torn_tail() {
        // A request body without a final newline (whole JSON, not cut short), a
        // text, a binary: none is a ledger whose write was torn.
        for text in [
            r#"{"inputs":"hi"}"#,
            "# sagemeter\n\nEvery call",
            "\u{89}PNG\r\n",
        ] {
            let (items, tail) = read(text);
            assert!(tail.is_none(), "{text:?}");
            match items.as_slice() {
                [Err(e @ LedgerError::NotALedger { .. })] => assert!(
                    e.to_string()
                        .starts_with("mem.jsonl is not a JSON Lines ledger of sagemeter's"),
                    "{e}"
                ),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // After a record, a whole line that is no record is damage, not a torn
        // write, with or without its newline.
        for end in ["", "\n"] {
            let (items, tail) = read(&format!("{RECORD}\n{{\"inputs\":\"hi\"}}{end}"));
            assert!(tail.is_none());
            assert!(
                matches!(
                    items.as_slice(),
                    [Ok(_), Err(LedgerError::Corrupt { line: 2, .. })]
                ),
                "{items:?}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever a file holds, reading it returns records or an error; it never panics.
        #[test]
        fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let reader = LedgerReader::new(std::io::Cursor::new(bytes), "fuzz.jsonl");
            for item in reader {
                let _ = item;
            }
        }

        /// JSON-looking lines (truncated, mistyped records) never panic either.
        #[test]
        fn json_like_lines_never_panic_the_reader(lines in proptest::collection::vec(r#"\{"(v|call_id|at|usage|lines|cost_usd)":[0-9a-z"\[\]{},:.-]{0,60}\}?"#, 0..20)) {
            let text = lines.join("\n");
            let reader = LedgerReader::new(std::io::Cursor::new(text.into_bytes()), "fuzz.jsonl");
            for item in reader {
                let _ = item;
            }
        }
    }
}
