//! One Parquet ledger file: written under an in-progress name, renamed to its
//! final name once its footer is written and fsynced.

use super::encode::{Columns, Refused, Unencodable};
use super::schema::{self, FORMAT_KEY, WRITER_KEY};
use crate::billing::Cost;
use crate::ledger::LedgerError;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The version of the Parquet ledger format, in every file's key-value metadata
/// under `sagemeter.ledger.format`.
pub const PARQUET_FORMAT_VERSION: u32 = 1;

/// Suffix of a file being written (see [`in_progress`]).
pub(crate) const IN_PROGRESS_SUFFIX: &str = ".tmp";

/// Rows per record batch handed to the Parquet writer (fewer when a text column
/// of the row group would pass [`MAX_COLUMN_BYTES`](super::encode::MAX_COLUMN_BYTES)).
pub(crate) const BATCH_ROWS: usize = 4096;
/// Rows per row group (the unit a reader skips or reads; held in memory until
/// full): fewer when a text column would pass
/// [`MAX_COLUMN_BYTES`](super::encode::MAX_COLUMN_BYTES), so that a reader can
/// decode any column of a row group as one batch.
pub(crate) const ROW_GROUP_ROWS: usize = 64 * 1024;

/// What was written to one file.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetFileSummary {
    /// The file, under its final name.
    pub path: PathBuf,
    /// Receipts (rows) in it.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Writes receipts to one Parquet file, all or nothing: the rows go to
/// `DIR/.NAME.tmp` ([`in_progress`], created 0600), and only
/// [`finish`](Self::finish) writes the footer, fsyncs and renames it to
/// `DIR/NAME`. Dropped unfinished, it removes `DIR/.NAME.tmp`.
///
/// ```no_run
/// use sagemeter::ledger::parquet::ParquetFileWriter;
/// let mut out = ParquetFileWriter::create("calls.parquet")?;
/// for cost in sagemeter::ledger::read_all("calls.jsonl")?.records {
///     out.write(&cost)?;
/// }
/// let written = out.finish()?;
/// println!("{} receipts, {} bytes", written.rows, written.bytes);
/// # Ok::<(), sagemeter::ledger::LedgerError>(())
/// ```
///
/// [`ParquetLedger`](super::ParquetLedger) writes its files with it, and
/// `sagemeter ledger convert` too.
pub struct ParquetFileWriter {
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once finished or failed.
    writer: Option<ArrowWriter<File>>,
    columns: Columns,
    rows: u64,
}

impl std::fmt::Debug for ParquetFileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFileWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

/// Why a receipt was not added to a file.
pub(crate) enum PushError {
    /// The receipt cannot be stored exactly; nothing of it was written, and the
    /// file goes on.
    Unencodable(Unencodable),
    /// Writing failed: the file is lost (its in-progress name removed).
    Failed(io::Error),
}

/// The name `DIR/NAME` has while it is written: `DIR/.NAME.tmp`. Hidden, so that
/// neither a `*.parquet` glob nor Hive-style readers (Athena, Spark, which skip
/// names starting with `.` or `_`) ever take a file without its footer.
pub fn in_progress(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(IN_PROGRESS_SUFFIX);
    path.with_file_name(name)
}

fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(FORMAT_KEY.into(), PARQUET_FORMAT_VERSION.to_string()),
            KeyValue::new(WRITER_KEY.into(), env!("CARGO_PKG_VERSION").to_owned()),
        ]))
        .build()
}

fn to_io(e: parquet::errors::ParquetError) -> io::Error {
    match e {
        parquet::errors::ParquetError::External(e) => match e.downcast::<io::Error>() {
            Ok(io) => *io,
            Err(other) => io::Error::other(other),
        },
        other => io::Error::other(other),
    }
}

/// The Parquet writer of a new in-progress `file`, made exactly 0600 first (the
/// umask may have taken bits away).
fn start(file: File) -> io::Result<ArrowWriter<File>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    ArrowWriter::try_new(file, schema::schema(), Some(properties())).map_err(to_io)
}

impl ParquetFileWriter {
    /// Starts `path`: creates its [`in_progress`] name with mode 0600. Refuses when
    /// `path` exists (a finished file is never overwritten) or `.NAME.tmp` does (another
    /// writer, or one that crashed: see the module's docs).
    pub fn create(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_owned();
        let tmp = in_progress(&path);
        let open_err = |source| LedgerError::Open {
            path: path.clone(),
            source,
        };
        if path.exists() {
            return Err(open_err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the file exists: remove it or write elsewhere",
            )));
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&tmp).map_err(|source| LedgerError::Open {
            path: tmp.clone(),
            source,
        })?;
        // Made by this call: removed on any error from here on, or a rerun would
        // take it for another writer's file and refuse.
        let writer = start(file).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            open_err(e)
        })?;
        Ok(ParquetFileWriter {
            path,
            tmp,
            writer: Some(writer),
            columns: Columns::default(),
            rows: 0,
        })
    }

    /// The final name of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receipts written so far (buffered ones included).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds one receipt. A receipt that cannot be stored exactly (an amount with
    /// more than 12 decimal places, a time outside 1677–2262, a count beyond
    /// `i64`, more than 2 GiB of text in one column) is refused with [`LedgerError::Parquet`] and nothing of it is
    /// written; the file goes on. Any other error loses the file
    /// ([`LedgerError::Write`]).
    pub fn write(&mut self, cost: &Cost) -> Result<(), LedgerError> {
        match self.push(cost) {
            Ok(()) => Ok(()),
            Err(PushError::Unencodable(e)) => Err(LedgerError::Parquet {
                path: self.path.clone(),
                row: Some(self.rows + 1),
                message: format!("receipt {}: {e}", cost.call_id),
                source: None,
            }),
            Err(PushError::Failed(source)) => Err(LedgerError::Write {
                path: self.path.clone(),
                lost: self.rows,
                source,
            }),
        }
    }

    pub(crate) fn push(&mut self, cost: &Cost) -> Result<(), PushError> {
        if self.writer.is_none() {
            return Err(PushError::Failed(io::Error::other(
                "the file was already finished or lost",
            )));
        }
        let pushed = match self.columns.push(cost) {
            // Its text would take a column of the row group past what one holds:
            // the batch is written out and the row group closed first, and the
            // receipt starts the next one.
            Err(Refused::Full) => {
                if let Err(e) = self.close_row_group() {
                    // Lost with the file's other receipts.
                    self.rows += 1;
                    return Err(PushError::Failed(e));
                }
                self.columns.push(cost)
            }
            pushed => pushed,
        };
        match pushed {
            Ok(()) => {}
            Err(Refused::Unencodable(e)) => return Err(PushError::Unencodable(e)),
            // Never said of an empty row group.
            Err(Refused::Full) => {
                return Err(PushError::Unencodable(Unencodable(
                    "its text does not fit an empty row group".to_owned(),
                )));
            }
        }
        self.rows += 1;
        if self.columns.rows() >= BATCH_ROWS {
            self.write_batch().map_err(PushError::Failed)?;
        }
        Ok(())
    }

    /// Hands the collected rows to the Parquet writer; on failure the file is lost.
    fn write_batch(&mut self) -> io::Result<()> {
        if self.columns.rows() == 0 {
            return Ok(());
        }
        let batch = self.columns.take_batch();
        let result = match &mut self.writer {
            Some(writer) => writer.write(&batch).map_err(to_io).map(|()| {
                // Full (`ROW_GROUP_ROWS`), the writer closed the row group.
                if writer.in_progress_rows() == 0 {
                    self.columns.row_group_closed();
                }
            }),
            None => Err(io::Error::other("the file was already finished or lost")),
        };
        if result.is_err() {
            self.abandon();
        }
        result
    }

    /// Hands the collected rows to the Parquet writer and closes the row group,
    /// before its text would pass what a column of one holds; on failure the
    /// file is lost.
    fn close_row_group(&mut self) -> io::Result<()> {
        self.write_batch()?;
        let result = match &mut self.writer {
            Some(writer) => writer.flush().map_err(to_io),
            None => Err(io::Error::other("the file was already finished or lost")),
        };
        match result {
            Ok(()) => self.columns.row_group_closed(),
            Err(_) => self.abandon(),
        }
        result
    }

    /// Writes the footer, fsyncs, and gives the file its final name, never over
    /// a file: one made at that name while this was written makes this fail
    /// ([`LedgerError::Write`], the file's receipts lost) and is left as it is.
    ///
    /// The final name is made durable too (its directory fsynced): when that
    /// fails, so does this, and the file is removed, as on any other error;
    /// but a directory that cannot be opened for reading (`EACCES`, `EPERM`:
    /// written and entered only, mode 1733) cannot be fsynced by any means,
    /// and the file is kept, with one WARN that its name may not survive a
    /// power loss.
    pub fn finish(mut self) -> Result<ParquetFileSummary, LedgerError> {
        let lost = self.rows;
        let write_err = |path: &Path, source| LedgerError::Write {
            path: path.to_owned(),
            lost,
            source,
        };
        let summary = self
            .close_renaming(|_| Ok(None))
            .map_err(|e| write_err(&self.path, e))?;
        if let Err(e) = crate::ledger::file::sync_parent_dir(&summary.path) {
            let _ = std::fs::remove_file(&summary.path);
            return Err(write_err(&summary.path, e));
        }
        Ok(summary)
    }

    /// Writes the footer, fsyncs and gives the file its final name, or the name
    /// `another(taken)` returns when its final name `taken` was made by someone
    /// else while it was written (`None`: fails, the file lost). A file at the
    /// final name is never replaced. That name is not made durable here: the
    /// caller fsyncs the directory ([`sync_parent_dir`]) and says when that
    /// fails, the file kept or not as it needs.
    ///
    /// [`sync_parent_dir`]: crate::ledger::file::sync_parent_dir
    pub(crate) fn close_renaming(
        &mut self,
        mut another: impl FnMut(&Path) -> io::Result<Option<PathBuf>>,
    ) -> io::Result<ParquetFileSummary> {
        self.write_batch()?;
        let Some(mut writer) = self.writer.take() else {
            return Err(io::Error::other("the file was already finished or lost"));
        };
        let done = writer
            .finish()
            .map_err(to_io)
            .and_then(|_| writer.inner_mut().sync_data());
        let result = done
            .and_then(|()| {
                loop {
                    match link_new(&self.tmp, &self.path) {
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            match another(&self.path)? {
                                Some(next) => self.path = next,
                                None => {
                                    return Err(io::Error::new(
                                        io::ErrorKind::AlreadyExists,
                                        format!(
                                            "{} appeared while it was written",
                                            self.path.display()
                                        ),
                                    ));
                                }
                            }
                        }
                        linked => return linked,
                    }
                }
            })
            .and_then(|()| std::fs::metadata(&self.path));
        match result {
            Ok(meta) => Ok(ParquetFileSummary {
                path: self.path.clone(),
                rows: self.rows,
                bytes: meta.len(),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&self.tmp);
                Err(e)
            }
        }
    }

    /// Gives up the file: its in-progress name is removed.
    fn abandon(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `target` becomes the name of `staging`'s file, refused ([`AlreadyExists`])
/// if `target` exists, with no moment where a file that appears there is
/// replaced: a hard link, then `staging` unlinked. On a file system without hard
/// links: a check, then a rename.
///
/// [`AlreadyExists`]: io::ErrorKind::AlreadyExists
fn link_new(staging: &Path, target: &Path) -> io::Result<()> {
    match std::fs::hard_link(staging, target) {
        Ok(()) => {
            // Named: a leftover in-progress name is only warned about on open.
            let _ = std::fs::remove_file(staging);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if target.exists() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the file exists",
        )),
        Err(_) => std::fs::rename(staging, target),
    }
}

impl Drop for ParquetFileWriter {
    /// An unfinished file is removed: without its footer no reader could use it.
    fn drop(&mut self) {
        self.abandon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call whose tag `big` is `value` (no lines).
    fn receipt(i: u64, value: String) -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": format!("r{i}"), "at": format!("2026-12-02T10:00:{:02}Z", i % 60),
            "endpoint": "e", "variant": "AllTraffic", "billing": null,
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 0,
                      "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [], "cost_usd": "0.25", "currency": "USD", "region": "us-east-1",
            "running_client_usd": "1", "running_endpoint_usd": "1", "accrual": null,
            "tags": {"big": value}
        }))
        .unwrap()
    }

    /// The row groups of the finished file `path`: rows, and the most bytes of
    /// text any one column of each decodes to (as the writer measured them).
    fn row_groups(path: &Path) -> Vec<(i64, i64)> {
        let file = File::open(path).unwrap();
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        builder
            .metadata()
            .row_groups()
            .iter()
            .map(|group| {
                // Set for the columns of text alone.
                let text = group.columns().iter();
                let text = text.filter_map(|c| c.unencoded_byte_array_data_bytes());
                let text = text.max().expect("the writer measures its text");
                (group.num_rows(), text)
            })
            .collect()
    }

    /// A receipt whose text would take a column of the row group past what one
    /// holds (2 GiB; 1,000 bytes here) starts the next row group, the batch
    /// before it written out and its row group closed first: every receipt reads
    /// back, in order. One whose text fits no row group is refused, and the file
    /// goes on.
    #[test]
    fn a_receipt_whose_text_would_overflow_a_row_group_column_starts_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.parquet");
        let mut out = ParquetFileWriter::create(&path).unwrap();
        out.columns.set_column_bytes(1000);
        let tagged = |i: u64| receipt(i, char::from(b'a' + i as u8).to_string().repeat(300));
        let receipts: Vec<Cost> = (0..7).map(tagged).collect();
        // Rows in the batch being collected, and in the row groups written.
        let written = |out: &ParquetFileWriter| {
            let writer = out.writer.as_ref().unwrap();
            let groups = writer.flushed_row_groups().iter().map(|g| g.num_rows());
            (out.columns.rows(), groups.collect::<Vec<_>>())
        };
        // Tag values of 300 bytes: 3 fit in 1,000 (900), a 4th would make 1,200.
        for cost in &receipts[..3] {
            out.write(cost).unwrap();
        }
        assert_eq!(written(&out), (3, vec![]));
        out.write(&receipts[3]).unwrap();
        assert_eq!(written(&out), (1, vec![3]), "the row group went first");

        // 1,001 bytes fit no row group: refused, nothing of it kept, the file
        // goes on.
        let err = out.write(&receipt(99, "z".repeat(1001))).unwrap_err();
        assert!(
            err.to_string()
                .contains("1001 bytes of text in `tags.value`"),
            "{err}"
        );
        assert_eq!(written(&out), (1, vec![3]));
        for cost in &receipts[4..] {
            out.write(cost).unwrap();
        }
        assert_eq!(written(&out), (1, vec![3, 3]));
        assert_eq!(out.finish().unwrap().rows, 7);
        // Row groups of 3, 3 and 1 rows: 900, 900 and 300 bytes of tag values.
        assert_eq!(row_groups(&path), [(3, 900), (3, 900), (1, 300)]);
        let read = super::super::read_all(&path).unwrap();
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(&receipts).unwrap()
        );
    }

    /// The text of a row group's earlier batches counts: with 100,000 bytes a
    /// column, receipts with 20-byte tag values make row groups of 5,000 rows
    /// (5,000 × 20 = 100,000 bytes; a 5,001st would make 100,020), though a batch
    /// of 4,096 rows (81,920 bytes) fits. So no row group holds more text in a
    /// column than a batch holds, and every reader reads a row group at once:
    /// every receipt reads back, in batches that never span row groups, and a
    /// report by tag counts them all.
    #[test]
    fn a_row_group_holds_no_more_text_in_a_column_than_a_batch_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tagged.parquet");
        let mut out = ParquetFileWriter::create(&path).unwrap();
        out.columns.set_column_bytes(100_000);
        // Tags `big` = 20 × `a`, `b` or `c`, by turns.
        let receipts: Vec<Cost> = (0..12_000u64)
            .map(|i| receipt(i, char::from(b'a' + (i % 3) as u8).to_string().repeat(20)))
            .collect();
        for cost in &receipts {
            out.write(cost).unwrap();
        }
        assert_eq!(out.finish().unwrap().rows, 12_000);
        // 12,000 rows: 5,000 + 5,000 + 2,000 (2,000 × 20 = 40,000 bytes). The
        // other texts are shorter (`processor_sharing`, 17 bytes a row: 85,000).
        assert_eq!(
            row_groups(&path),
            [(5_000, 100_000), (5_000, 100_000), (2_000, 40_000)]
        );

        // Read a row group at a time (8,192 rows at most), not 8,192 + 3,808.
        let batches: Vec<usize> = super::super::reader::record_batches(&path, None)
            .unwrap()
            .map(|batch| batch.unwrap().num_rows())
            .collect();
        assert_eq!(batches, [5_000, 5_000, 2_000]);
        let read = super::super::read_all(&path).unwrap();
        assert_eq!(read.len(), 12_000);
        assert!(
            read.iter()
                .zip(&receipts)
                .all(|(a, b)| a.call_id == b.call_id && a.tags == b.tags),
            "every receipt reads back, in order"
        );

        // By tag `big`: 4,000 calls each at $0.25 = $1,000.00; 12,000 in all,
        // $3,000.00.
        let options = crate::report::ReportOptions::new(crate::report::GroupBy::Tag("big".into()));
        let report = crate::report::report_files([&path], &options).unwrap();
        let groups: Vec<(String, u64, rust_decimal::Decimal)> = report
            .groups
            .iter()
            .map(|g| (g.key.clone(), g.calls, g.cost_usd))
            .collect();
        let thousand = rust_decimal::Decimal::from(1000);
        assert_eq!(
            groups,
            [
                ("a".repeat(20), 4_000, thousand),
                ("b".repeat(20), 4_000, thousand),
                ("c".repeat(20), 4_000, thousand),
            ]
        );
        assert_eq!(
            (report.total.calls, report.total.cost_usd),
            (12_000, rust_decimal::Decimal::from(3000))
        );
    }
}
