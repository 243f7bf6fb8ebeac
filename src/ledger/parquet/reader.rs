//! Reading Parquet ledger files back: whole receipts ([`ParquetReader`],
//! [`read_all`]) or only some columns ([`record_batches`]).

use super::decode::decode;
use super::encode::MAX_COLUMN_BYTES;
use super::file::PARQUET_FORMAT_VERSION;
use super::naming;
use super::schema::FORMAT_KEY;
use crate::billing::Cost;
use crate::ledger::LedgerError;
use arrow_array::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Type as PhysicalType;
use parquet::file::metadata::RowGroupMetaData;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows decoded at a time, at most.
const READ_BATCH_ROWS: usize = 8192;

/// The rows to decode at a time from a row group of `rows` rows whose largest
/// column of text holds `bytes`: all `most` when that column fits what one
/// batch's column holds (`cap`, 2 GiB: its offsets are `i32`), else the share of
/// the rows that `cap` holds at the row group's mean, at least one. A batch
/// never spans row groups (see [`record_batches`]), so a row group sagemeter
/// wrote, whose columns never pass `cap`, always reads.
pub(super) fn batch_rows(rows: i64, bytes: i64, cap: usize, most: usize) -> usize {
    let (Ok(rows), Ok(bytes)) = (u128::try_from(rows), u128::try_from(bytes)) else {
        return most;
    };
    if bytes <= cap as u128 {
        return most;
    }
    let share = rows * cap as u128 / bytes;
    usize::try_from(share).unwrap_or(usize::MAX).clamp(1, most)
}

/// [`batch_rows`] for the row group `group`, read for the leaves `mask` takes:
/// its largest column of text by the bytes it decodes to (as its writer measured
/// them; else its uncompressed size).
pub(super) fn group_batch_rows(
    group: &RowGroupMetaData,
    mask: &ProjectionMask,
    most: usize,
) -> usize {
    let bytes = group
        .columns()
        .iter()
        .enumerate()
        .filter(|(i, column)| {
            mask.leaf_included(*i) && column.column_type() == PhysicalType::BYTE_ARRAY
        })
        .map(|(_, column)| {
            column
                .unencoded_byte_array_data_bytes()
                .unwrap_or_else(|| column.uncompressed_size())
        })
        .max()
        .unwrap_or(0);
    batch_rows(group.num_rows(), bytes, MAX_COLUMN_BYTES, most)
}

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
    let metadata = metadata_of(&file, path)?;
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
        file, metadata,
    ))
}

/// The footer of `file` (named `path` in errors), its format version checked.
fn metadata_of<R: parquet::file::reader::ChunkReader>(
    file: &R,
    path: &Path,
) -> Result<ArrowReaderMetadata, LedgerError> {
    let metadata = ArrowReaderMetadata::load(file, Default::default()).map_err(|e| {
        parquet_error(
            path,
            "not a readable Parquet file (a file whose writer never closed it has no \
             footer and cannot be read)",
            e,
        )
    })?;
    let version = metadata
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
    Ok(metadata)
}

/// Record batches of `path` with only the named top-level columns (all of them
/// for `None`), in file order: what a report over a few columns reads instead of
/// whole receipts. Unknown names are an error.
///
/// Each row group is read on its own, in batches of [`group_batch_rows`]: a batch
/// that took rows of two row groups could hold more text in a column than a
/// batch holds even when neither row group does.
pub(crate) fn record_batches(
    path: &Path,
    columns: Option<&[&str]>,
) -> Result<RecordBatches, LedgerError> {
    let file = crate::ledger::file::open_to_read(path)?;
    let metadata = metadata_of(&file, path)?;
    let mut mask = ProjectionMask::all();
    if let Some(columns) = columns {
        let roots = metadata.parquet_schema().root_schema().get_fields();
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
        mask = ProjectionMask::roots(metadata.parquet_schema(), indices);
    }
    Ok(RecordBatches {
        path: path.to_owned(),
        file,
        metadata,
        mask,
        next_group: 0,
        reader: None,
    })
}

/// The record batches of one file, a row group at a time ([`record_batches`]).
/// The iterator ends after an error.
pub(crate) struct RecordBatches {
    path: PathBuf,
    file: File,
    metadata: ArrowReaderMetadata,
    mask: ProjectionMask,
    /// The row group to read after `reader`'s.
    next_group: usize,
    /// The batches of the row group being read.
    reader: Option<ParquetRecordBatchReader>,
}

impl RecordBatches {
    /// A reader of the row group `group` alone.
    fn open_group(&self, group: usize) -> Result<ParquetRecordBatchReader, LedgerError> {
        let rows = group_batch_rows(
            self.metadata.metadata().row_group(group),
            &self.mask,
            READ_BATCH_ROWS,
        );
        // Read by `File`'s `ChunkReader`, which seeks before every read.
        let file = self
            .file
            .try_clone()
            .map_err(|e| parquet_error(&self.path, "cannot read the file", e))?;
        ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
            .with_projection(self.mask.clone())
            .with_row_groups(vec![group])
            .with_batch_size(rows)
            .build()
            .map_err(|e| parquet_error(&self.path, "cannot read the file", e))
    }

    /// Reads no further.
    fn stop(&mut self) {
        self.reader = None;
        self.next_group = self.metadata.metadata().num_row_groups();
    }
}

impl Iterator for RecordBatches {
    type Item = Result<RecordBatch, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(reader) = &mut self.reader {
                match reader.next() {
                    Some(Ok(batch)) => return Some(Ok(batch)),
                    Some(Err(e)) => {
                        self.stop();
                        return Some(Err(parquet_error(&self.path, "cannot read the file", e)));
                    }
                    None => self.reader = None,
                }
            }
            let group = self.next_group;
            if group >= self.metadata.metadata().num_row_groups() {
                return None;
            }
            self.next_group += 1;
            match self.open_group(group) {
                Ok(reader) => self.reader = Some(reader),
                Err(e) => {
                    self.stop();
                    return Some(Err(e));
                }
            }
        }
    }
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
    batches: RecordBatches,
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
    fn of_batches(path: &Path, batches: RecordBatches) -> Self {
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
            Err(e) => return Some(Err(e)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows a batch takes of a row group, worked by hand from its rows and
    /// the bytes of its largest column of text.
    #[test]
    fn a_row_groups_batch_takes_the_share_of_its_rows_that_one_batchs_text_holds() {
        const CAP: usize = i32::MAX as usize; // 2,147,483,647 bytes
        // 4,096 receipts with 600,000-byte tag values: 2,457,600,000 bytes.
        // 4,096 × 2,147,483,647 = 8,796,093,018,112; ÷ 2,457,600,000 = 3,579.1:
        // 3,579 rows hold 2,147,400,000 bytes, 3,580 would hold 2,148,000,000.
        assert_eq!(batch_rows(4_096, 2_457_600_000, CAP, 8_192), 3_579);
        // Up to the cap, all of today's 8,192 (16,384 for a report).
        assert_eq!(batch_rows(65_536, 2_147_483_647, CAP, 8_192), 8_192);
        assert_eq!(batch_rows(65_536, 1_000, CAP, 16_384), 16_384);
        // Twice the cap over 100,000 rows: 50,000 rows hold the cap, more than
        // 8,192.
        assert_eq!(batch_rows(100_000, 4_294_967_294, CAP, 8_192), 8_192);
        // 10 rows, 35 bytes, 10 a batch: 10 × 10 ÷ 35 = 2.86, 2 rows.
        assert_eq!(batch_rows(10, 35, 10, 8), 2);
        // A row alone past the cap: one row at a time, not none.
        assert_eq!(batch_rows(65_536, 1_000_000_000_000_000, CAP, 8_192), 1);
        assert_eq!(batch_rows(0, 11, 10, 8), 1);
        // Figures no writer writes (negative): as before, the most.
        assert_eq!(batch_rows(-1, 11, 10, 8), 8);
        assert_eq!(batch_rows(10, -1, 10, 8), 8);
    }
}
