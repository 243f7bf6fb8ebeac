//! Reading Parquet ledger files back: whole receipts ([`ParquetReader`],
//! [`read_all`]) or only some columns ([`record_batches`]).

use super::decode::decode;
use super::file::PARQUET_FORMAT_VERSION;
use super::naming;
use super::schema::FORMAT_KEY;
use crate::billing::Cost;
use crate::ledger::LedgerError;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows decoded at a time.
const READ_BATCH_ROWS: usize = 8192;

pub(super) fn parquet_error(
    path: &Path,
    message: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> LedgerError {
    LedgerError::Parquet {
        path: path.to_owned(),
        row: None,
        message: message.into(),
        source: Some(Box::new(source)),
    }
}

/// Opens `path` and reads its footer; checks the format version.
pub(super) fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, LedgerError> {
    builder_of(crate::ledger::file::open_to_read(path)?, path)
}

/// [`builder`] of `file`, already open (named `path` in errors).
pub(super) fn builder_of<R: parquet::file::reader::ChunkReader + 'static>(
    file: R,
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<R>, LedgerError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        parquet_error(
            path,
            "not a readable Parquet file (a file whose writer never closed it has no \
             footer and cannot be read)",
            e,
        )
    })?;
    let version = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == FORMAT_KEY))
        .and_then(|kv| kv.value.as_deref())
        .map(|v| v.parse::<u64>());
    match version {
        // Without the key (a file rewritten by another tool), read it as version 1.
        None => {}
        Some(Ok(v)) if v <= u64::from(PARQUET_FORMAT_VERSION) => {}
        Some(Ok(v)) => {
            return Err(LedgerError::UnsupportedVersion {
                path: path.to_owned(),
                line: 0,
                version: v,
            });
        }
        Some(Err(e)) => return Err(parquet_error(path, format!("bad {FORMAT_KEY}"), e)),
    }
    Ok(builder)
}

/// Record batches of `path` with only the named top-level columns (all of them
/// for `None`), in file order: what a report over a few columns reads instead of
/// whole receipts. Unknown names are an error.
pub(crate) fn record_batches(
    path: &Path,
    columns: Option<&[&str]>,
) -> Result<ParquetRecordBatchReader, LedgerError> {
    let mut builder = builder(path)?.with_batch_size(READ_BATCH_ROWS);
    if let Some(columns) = columns {
        let roots = builder.parquet_schema().root_schema().get_fields();
        let indices = columns
            .iter()
            .map(|name| {
                roots
                    .iter()
                    .position(|f| f.name() == *name)
                    .ok_or_else(|| LedgerError::Parquet {
                        path: path.to_owned(),
                        row: None,
                        message: format!("no column `{name}`"),
                        source: None,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        builder = builder.with_projection(mask);
    }
    builder
        .build()
        .map_err(|e| parquet_error(path, "cannot read the file", e))
}

/// A streaming reader of one Parquet ledger file: an iterator of receipts,
/// decoded a batch of rows at a time. The iterator ends after an error.
///
/// ```no_run
/// use sagemeter::ledger::parquet::ParquetReader;
/// let mut total = sagemeter::Decimal::ZERO;
/// for cost in ParquetReader::open("receipts/sagemeter-2026-12-02T10.parquet")? {
///     total += cost?.cost_usd;
/// }
/// # Ok::<(), sagemeter::ledger::LedgerError>(())
/// ```
pub struct ParquetReader {
    path: PathBuf,
    batches: ParquetRecordBatchReader,
    decoded: std::vec::IntoIter<Cost>,
    /// Rows of the batches decoded so far.
    rows: u64,
    /// What stopped decoding, handed out after the rows decoded before it.
    error: Option<LedgerError>,
    done: bool,
}

impl std::fmt::Debug for ParquetReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetReader")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl ParquetReader {
    /// Opens `path` and reads its footer (a file without one, whose writer never
    /// closed it, is an error here).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref();
        Ok(Self::of_batches(path, record_batches(path, None)?))
    }

    /// The receipts of `batches`, read from `path`.
    fn of_batches(path: &Path, batches: ParquetRecordBatchReader) -> Self {
        ParquetReader {
            path: path.to_owned(),
            batches,
            decoded: Vec::new().into_iter(),
            rows: 0,
            error: None,
            done: false,
        }
    }

    fn next_batch(&mut self) -> Option<Result<(), LedgerError>> {
        let batch = match self.batches.next()? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(parquet_error(&self.path, "cannot read the file", e))),
        };
        let mut costs = Vec::with_capacity(batch.num_rows());
        let decoded = decode(&batch, &mut costs);
        let first_row = self.rows;
        self.rows += batch.num_rows() as u64;
        self.decoded = costs.into_iter();
        Some(decoded.map_err(|e| LedgerError::Parquet {
            path: self.path.clone(),
            row: e.row.map(|r| first_row + r as u64 + 1),
            message: e.message,
            source: None,
        }))
    }
}

impl Iterator for ParquetReader {
    type Item = Result<Cost, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let Some(cost) = self.decoded.next() {
                return Some(Ok(cost));
            }
            if let Some(e) = self.error.take() {
                // After the rows before the bad one; an error ends the iteration,
                // as the JSONL reader's does.
                self.done = true;
                return Some(Err(e));
            }
            match self.next_batch() {
                None => self.done = true,
                Some(Ok(())) => {}
                Some(Err(e)) => self.error = Some(e),
            }
        }
        None
    }
}

impl std::iter::FusedIterator for ParquetReader {}

/// Reads a whole Parquet ledger file.
///
/// ```no_run
/// let costs = sagemeter::ledger::parquet::read_all("receipts/sagemeter-2026-12-02T10.parquet")?;
/// let total: sagemeter::Decimal = costs.iter().map(|c| c.cost_usd).sum();
/// # Ok::<(), sagemeter::ledger::LedgerError>(())
/// ```
pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<Cost>, LedgerError> {
    ParquetReader::open(path)?.collect()
}

/// The Parquet ledger files at `path`, in the order to read them: a file is
/// itself; a directory gives a [`ParquetLedger`](super::ParquetLedger)'s files
/// oldest first, then its other `*.parquet` files by name, symbolic links to
/// files among them. Files still being written (`.sagemeter-….parquet.tmp`),
/// other hidden files, and links to nothing are not listed. A directory without
/// any is an error.
pub fn parquet_files(path: impl AsRef<Path>) -> Result<Vec<PathBuf>, LedgerError> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(|source| LedgerError::Open {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let files = parquet_files_in(path)?;
    if files.is_empty() {
        return Err(LedgerError::Open {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the directory holds no Parquet ledger file (*.parquet)",
            ),
        });
    }
    Ok(files)
}

/// The Parquet ledger files of the directory `dir`, as [`parquet_files`] lists
/// them; none is no error here (a directory of JSON Lines files).
pub(crate) fn parquet_files_in(dir: &Path) -> Result<Vec<PathBuf>, LedgerError> {
    let open_err = |source| LedgerError::Open {
        path: dir.to_owned(),
        source,
    };
    let mut rolled = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(open_err)? {
        let entry = entry.map_err(open_err)?;
        let file = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !crate::ledger::reader::is_listed_parquet(&name, &file)? {
            continue;
        }
        match naming::parse(&name) {
            Some((parsed, false)) => rolled.push((parsed, file)),
            _ => others.push(file),
        }
    }
    rolled.sort();
    others.sort();
    let mut files: Vec<PathBuf> = rolled.into_iter().map(|(_, p)| p).collect();
    files.extend(others);
    Ok(files)
}
