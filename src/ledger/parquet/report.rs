//! A report over Parquet ledger files: only the columns a report reads (and of
//! the cost lines only their `reason`, set on unpriced lines, their `item`, and
//! their price's `source` and `note`, which say a fallback priced it), row groups
//! spread over every core.

use super::decode::named as parse_named;
use super::reader::{builder_of, group_batch_rows, parquet_error};
use super::schema::{col, line};
use crate::billing::{LineItem, is_by_interceptor, is_settlement};
use crate::ledger::LedgerError;
use crate::ledger::copies::ReceiptKey;
use crate::pricing::PriceOrigin;
use crate::report::{CallPart, GroupBy, ReportBuilder, ReportError, ReportOptions, ReportRow};
use crate::usage::{Operation, Outcome};
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch};
use chrono::DateTime;
use parquet::arrow::ProjectionMask;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The top-level columns a report reads (operation, bytes out and notes tell an
/// asynchronous invocation's settlement from its submission, with the lines' items;
/// the amounts' scales give each cost the places its receipt had; a stream's
/// parts say it was answered, however it ended).
const COLUMNS: [&str; 14] = [
    col::AT,
    col::ENDPOINT,
    col::VARIANT,
    col::OPERATION,
    col::BYTES_OUT,
    col::COST_USD,
    col::LATENCY_US,
    col::INPUT_TOKENS,
    col::OUTPUT_TOKENS,
    col::OUTCOME,
    col::PARTS,
    col::NOTES,
    col::ACCRUAL_PRICED_FROM,
    col::AMOUNT_SCALES,
];

/// A report builder fed by every row of `files`, read on every core.
pub(crate) fn report(
    files: &[PathBuf],
    options: &ReportOptions,
) -> Result<ReportBuilder, ReportError> {
    // The units of work: every row group of every file. A file is opened at its
    // first row group's turn and closed after its last (a few are open at once,
    // whatever their number), its row groups read by position from every core:
    // once open, read whole even if it is removed meanwhile (retention).
    // One removed before it could be opened is not counted, and is said, as JSON
    // Lines' are.
    let mut units = Vec::new();
    let mut lazy = Vec::with_capacity(files.len());
    let removed = AtomicU64::new(0);
    for (i, path) in files.iter().enumerate() {
        let (groups, len) = match open(path)? {
            Some(file) => {
                let len = file.len;
                (builder_of(file, path)?.metadata().num_row_groups(), len)
            }
            None => {
                removed.fetch_add(1, Ordering::Relaxed);
                (0, 0)
            }
        };
        units.extend((0..groups).map(|g| (i, g)));
        lazy.push(LazyFile::new(groups, len));
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<((usize, usize), ReportError)>> = Mutex::new(None);
    let mut total = ReportBuilder::new(options.clone())?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(units.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut part = ReportBuilder::new(options.clone())?;
                    while let Some(&(file, group)) = units.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let read = match lazy[file].acquire(&files[file], &removed) {
                            Ok(Some(open)) => row_group(&files[file], &open, group, &mut part),
                            Ok(None) => Ok(()),
                            Err(e) => Err(e.into()),
                        };
                        lazy[file].release();
                        if let Err(e) = read {
                            let mut first = failed.lock().unwrap_or_else(|e| e.into_inner());
                            if first.as_ref().is_none_or(|(at, _)| (file, group) < *at) {
                                *first = Some(((file, group), e));
                            }
                            next.store(units.len(), Ordering::Relaxed);
                        }
                    }
                    Ok::<_, ReportError>(part)
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(part) => total.merge(part?).map_err(|e| e.in_ledgers(files, None))?,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok::<_, ReportError>(())
    })?;
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some((_, e)) => Err(e),
        None => {
            total.removed_files(removed.into_inner());
            Ok(total)
        }
    }
}

/// `path` opened for reading; `None` (with a WARN) when it was removed since it
/// was listed.
fn open(path: &Path) -> Result<Option<OpenFile>, LedgerError> {
    match crate::ledger::file::open_to_read(path) {
        Ok(file) => OpenFile::new(file)
            .map(Some)
            .map_err(|source| LedgerError::Open {
                path: path.to_owned(),
                source,
            }),
        Err(e) if crate::ledger::file::removed_before_read(&e, path) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A file of the report, opened at its first row group's turn and closed after
/// its last.
struct LazyFile {
    state: Mutex<LazyState>,
    /// Its row groups not read yet.
    remaining: AtomicUsize,
    /// Its length when it was listed: a Parquet file is written whole and
    /// renamed into place, never appended to, so another length is another file.
    len: u64,
}

enum LazyState {
    NotOpened,
    Open(OpenFile),
    /// Removed before it could be opened (counted in `removed` once), or read
    /// whole and closed.
    Gone,
}

impl LazyFile {
    fn new(groups: usize, len: u64) -> Self {
        LazyFile {
            state: Mutex::new(LazyState::NotOpened),
            remaining: AtomicUsize::new(groups),
            len,
        }
    }

    /// The open file (opened now if it is the first of its row groups' turns);
    /// `None` when it was removed before it could be opened.
    fn acquire(&self, path: &Path, removed: &AtomicU64) -> Result<Option<OpenFile>, LedgerError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let LazyState::NotOpened = *state {
            *state = match open(path)? {
                Some(file) if file.len != self.len => {
                    return Err(LedgerError::Parquet {
                        path: path.to_owned(),
                        row: None,
                        message: format!(
                            "replaced while the report was read ({} bytes when listed, {} now): \
                             report it again",
                            self.len, file.len
                        ),
                        source: None,
                    });
                }
                Some(file) => LazyState::Open(file),
                None => {
                    removed.fetch_add(1, Ordering::Relaxed);
                    LazyState::Gone
                }
            };
        }
        Ok(match &*state {
            LazyState::Open(file) => Some(file.clone()),
            _ => None,
        })
    }

    /// One of its row groups was read: after the last, the file is closed.
    fn release(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let LazyState::Open(_) = *state {
                *state = LazyState::Gone;
            }
        }
    }
}

/// A Parquet file open for reading by position (`pread`): many threads read its
/// row groups through one open file, none moving another's offset (a cloned
/// `File` shares its offset).
#[derive(Clone)]
struct OpenFile {
    file: std::sync::Arc<std::fs::File>,
    len: u64,
}

impl OpenFile {
    fn new(file: std::fs::File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(OpenFile {
            file: std::sync::Arc::new(file),
            len,
        })
    }
}

impl parquet::file::reader::Length for OpenFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for OpenFile {
    type T = std::io::BufReader<ReadAt>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(std::io::BufReader::new(ReadAt {
            file: self.file.clone(),
            at: start,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let mut buffer = vec![0; length];
        let mut reader = ReadAt {
            file: self.file.clone(),
            at: start,
        };
        std::io::Read::read_exact(&mut reader, &mut buffer)?;
        Ok(buffer.into())
    }
}

/// Reads an [`OpenFile`] from a position of its own.
struct ReadAt {
    file: std::sync::Arc<std::fs::File>,
    at: u64,
}

impl std::io::Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.at)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&*self.file, buf, self.at)?;
        #[cfg(not(any(unix, windows)))]
        let n: usize = {
            let _ = buf;
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "reading Parquet ledgers by position needs Unix or Windows",
            ));
        };
        self.at += n as u64;
        Ok(n)
    }
}

/// The rows of one row group into `part`.
fn row_group(
    path: &Path,
    open: &OpenFile,
    group: usize,
    part: &mut ReportBuilder,
) -> Result<(), ReportError> {
    let by = part.options().by.clone();
    let builder = builder_of(open.clone(), path)?;
    // Leaves: the report's columns, the lines' status, item and price source, and
    // the tags when grouping by one.
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            let parts = c.path().parts();
            let root = parts[0].as_str();
            COLUMNS.contains(&root)
                || (root == col::LINES
                    && parts.last().is_some_and(|p| {
                        [line::REASON, line::ITEM, line::SOURCE, line::NOTE].contains(&p.as_str())
                    }))
                || (root == col::TAGS && matches!(by, GroupBy::Tag(_)))
                || (root == col::INFERENCE_COMPONENT && by == GroupBy::Component)
                || (root == col::TARGET_MODEL && by == GroupBy::Model)
                || root == col::REGION
        })
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    // At most 16,384 rows at a time, fewer when a column of text would pass what
    // a batch holds.
    let batch_rows = group_batch_rows(builder.metadata().row_group(group), &mask, 16 * 1024);
    // The rows of the file before this batch's first (the earlier row groups',
    // then the earlier batches'): a damaged row is named by its 1-based row in
    // the file, as the receipt reader names it.
    let mut first_row: u64 = (builder.metadata().row_groups()[..group].iter())
        .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
        .sum();
    let reader = builder
        .with_projection(mask)
        .with_row_groups(vec![group])
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| parquet_error(path, "cannot read the file", e))?;
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(path, "cannot read a row group", e))?;
        rows(&batch, &by, part).map_err(|e| match e {
            RowsError::Data { row, message } => ReportError::Ledger(LedgerError::Parquet {
                path: path.to_owned(),
                row: row.map(|r| first_row + r as u64 + 1),
                message,
                source: None,
            }),
            RowsError::Report(e) => e.in_ledgers(&[path.to_owned()], None),
        })?;
        first_row += batch.num_rows() as u64;
    }
    Ok(())
}

/// Why a batch's rows could not be reported.
enum RowsError {
    /// A column is missing or of another type, or a value does not read: in
    /// the row of the batch `row` when it is about one.
    Data { row: Option<usize>, message: String },
    /// A sum overflowed.
    Report(ReportError),
}

impl From<String> for RowsError {
    /// About the batch, not one of its rows (a column missing or mistyped).
    fn from(message: String) -> Self {
        RowsError::Data { row: None, message }
    }
}

/// What is wrong with the batch's row `row`.
fn in_row(row: usize) -> impl Fn(String) -> RowsError {
    move |message| RowsError::Data {
        row: Some(row),
        message,
    }
}

/// The rows of one batch into `part`.
fn rows(batch: &RecordBatch, by: &GroupBy, part: &mut ReportBuilder) -> Result<(), RowsError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column `{name}`"))
    };
    let mistyped = |name: &str| format!("column `{name}` is not of the ledger's type");
    let at = column(col::AT)?
        .as_primitive_opt::<TimestampNanosecondType>()
        .ok_or_else(|| mistyped(col::AT))?;
    let strings = |name: &str| {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| mistyped(name))
    };
    let counts = |name: &str| {
        column(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| mistyped(name))
    };
    let (endpoint, variant, outcome, operation) = (
        strings(col::ENDPOINT)?,
        strings(col::VARIANT)?,
        strings(col::OUTCOME)?,
        strings(col::OPERATION)?,
    );
    // Absent from files written before they were carried: no call named one.
    let named = |name: &str, wanted: bool| match wanted {
        true => batch
            .column_by_name(name)
            .map(|c| c.as_string_opt::<i32>().ok_or_else(|| mistyped(name)))
            .transpose(),
        false => Ok(None),
    };
    let component = named(col::INFERENCE_COMPONENT, *by == GroupBy::Component)?;
    // Every grouping: several regions' same-named endpoints are told apart.
    let region = named(col::REGION, true)?;
    let model = named(col::TARGET_MODEL, *by == GroupBy::Model)?;
    let cost = column(col::COST_USD)?
        .as_primitive_opt::<Decimal128Type>()
        .ok_or_else(|| mistyped(col::COST_USD))?;
    let (latency, input, output, bytes_out) = (
        counts(col::LATENCY_US)?,
        counts(col::INPUT_TOKENS)?,
        counts(col::OUTPUT_TOKENS)?,
        counts(col::BYTES_OUT)?,
    );
    // Absent from files another tool wrote without it: no stream's parts known.
    let parts = batch
        .column_by_name(col::PARTS)
        .map(|c| {
            c.as_primitive_opt::<Int64Type>()
                .ok_or_else(|| mistyped(col::PARTS))
        })
        .transpose()?;
    let notes = column(col::NOTES)?
        .as_list_opt::<i32>()
        .ok_or_else(|| mistyped(col::NOTES))?;
    let note_texts = notes
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(|| mistyped("notes.element"))?;
    let lines = column(col::LINES)?
        .as_list_opt::<i32>()
        .ok_or_else(|| mistyped(col::LINES))?;
    // A line is unpriced when it has a reason (and priced lines have none): its
    // validity alone says so, without decoding a string per line.
    let reason = lines
        .values()
        .as_struct_opt()
        .and_then(|lines| lines.column_by_name(line::REASON))
        .ok_or_else(|| mistyped("lines.reason"))?;
    let line_strings = |name: &str| {
        lines
            .values()
            .as_struct_opt()
            .and_then(|lines| lines.column_by_name(name))
            .and_then(|column| column.as_string_opt::<i32>())
            .ok_or_else(|| mistyped(&format!("lines.{name}")))
    };
    let items = line_strings(line::ITEM)?;
    // A priced line's price source and note (null on unpriced lines).
    let (sources, line_notes) = (line_strings(line::SOURCE)?, line_strings(line::NOTE)?);
    // The same price on run after run of lines: told once per run.
    let mut last_price: Option<(&str, Option<&str>, bool)> = None;
    let tags = match by {
        GroupBy::Tag(_) => Some(
            column(col::TAGS)?
                .as_map_opt()
                .ok_or_else(|| mistyped(col::TAGS))?,
        ),
        _ => None,
    };
    let tag_entries = match tags {
        Some(tags) => Some((
            tags.keys()
                .as_string_opt::<i32>()
                .ok_or_else(|| mistyped("tags.key"))?,
            tags.values()
                .as_string_opt::<i32>()
                .ok_or_else(|| mistyped("tags.value"))?,
            tags.value_offsets(),
        )),
        None => None,
    };
    // Files rewritten by other tools may hold nulls where sagemeter writes none:
    // a null cost is no $0, nor a null time 1970. Checked once per batch.
    for (name, array) in [
        (col::AT, at as &dyn Array),
        (col::ENDPOINT, endpoint),
        (col::OPERATION, operation),
        (col::OUTCOME, outcome),
        (col::COST_USD, cost),
        (col::LATENCY_US, latency),
        (col::BYTES_OUT, bytes_out),
    ] {
        if array.null_count() > 0 {
            let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
            return Err(in_row(row)(format!("`{name}` is null")));
        }
    }
    // Absent from files written before accruals carried it. The same text on
    // run after run of rows: read once per run, its fallbacks kept.
    let priced_from = batch
        .column_by_name(col::ACCRUAL_PRICED_FROM)
        .map(|c| {
            c.as_string_opt::<i32>()
                .ok_or_else(|| mistyped(col::ACCRUAL_PRICED_FROM))
        })
        .transpose()?;
    let mut fallbacks: (Option<&str>, Vec<crate::billing::AccrualSource>) = (None, Vec::new());
    let cost_scale = cost.scale();
    // Each cost at its receipt's own places, as a JSON Lines ledger holds it (a
    // report of either then writes the same figures); absent in files another
    // tool wrote.
    let scales = batch
        .column_by_name(col::AMOUNT_SCALES)
        .and_then(|c| c.as_primitive_opt::<Int64Type>());
    let offsets = lines.value_offsets();
    // A negative count or duration (a file rewritten by another tool) is damage,
    // as the receipt reader says, not 0.
    let whole = |array: &arrow_array::PrimitiveArray<Int64Type>, i: usize, name: &str| {
        u64::try_from(array.value(i))
            .map_err(|_| in_row(i)(format!("`{name}` is negative ({})", array.value(i))))
    };
    let count = |array: &arrow_array::PrimitiveArray<Int64Type>, i: usize, name: &str| match array
        .is_valid(i)
    {
        true => whole(array, i, name).map(Some),
        false => Ok(None),
    };
    for i in 0..batch.num_rows() {
        let mut cost_usd = money(cost.value(i), cost_scale).ok_or_else(|| {
            in_row(i)(format!(
                "`cost_usd` {}e{} does not fit a decimal",
                cost.value(i),
                -i32::from(cost_scale)
            ))
        })?;
        if let Some(scales) = scales.filter(|s| s.is_valid(i)) {
            // Only trailing zeros come or go: a value with more places than its
            // scale says (rewritten by another tool) is kept as it is.
            // A scale past a decimal's 28 (its 5 bits say up to 31) is damage,
            // as the receipt reader says: no decimal has it.
            let own = super::decimal::Scales(scales.value(i)).get(0);
            if own > Decimal::MAX_SCALE {
                return Err(in_row(i)(format!(
                    "`{}` gives `cost_usd` scale {own}, more than a decimal's {}",
                    col::AMOUNT_SCALES,
                    Decimal::MAX_SCALE
                )));
            }
            if cost_usd.round_dp(own) == cost_usd {
                cost_usd.rescale(own);
            }
        }
        let mut row = ReportRow::new(
            DateTime::from_timestamp_nanos(at.value(i)),
            endpoint.value(i),
            cost_usd,
        );
        row.variant = variant.is_valid(i).then(|| variant.value(i));
        row.inference_component = component.and_then(|c| c.is_valid(i).then(|| c.value(i)));
        row.target_model = model.and_then(|m| m.is_valid(i).then(|| m.value(i)));
        row.region = region.and_then(|r| r.is_valid(i).then(|| r.value(i)));
        row.latency_us = whole(latency, i, col::LATENCY_US)?;
        row.input_tokens = count(input, i, col::INPUT_TOKENS)?;
        row.output_tokens = count(output, i, col::OUTPUT_TOKENS)?;
        row.parts = match parts {
            Some(parts) => count(parts, i, col::PARTS)?,
            None => None,
        };
        row.outcome = match outcome.value(i) {
            "ok" => Outcome::Ok,
            "error" => Outcome::Error,
            "cancelled" => Outcome::Cancelled,
            other => return Err(in_row(i)(format!("unknown outcome `{other}`"))),
        };
        let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
        row.fully_priced = (from..to).all(|l| reason.is_null(l));
        for l in (from..to).filter(|&l| sources.is_valid(l)) {
            let (source, note) = (
                sources.value(l),
                line_notes.is_valid(l).then(|| line_notes.value(l)),
            );
            let fallback = match last_price {
                Some((s, n, fallback)) if s == source && n == note => fallback,
                _ => {
                    let origin: PriceOrigin =
                        parse_named(source, "lines.source").map_err(in_row(i))?;
                    let fallback = crate::pricing::is_fallback(origin, note);
                    last_price = Some((source, note, fallback));
                    fallback
                }
            };
            if fallback {
                row.fallback_priced = true;
                break;
            }
        }
        let op: Operation = parse_named(operation.value(i), col::OPERATION).map_err(in_row(i))?;
        if op == Operation::InvokeEndpointAsync {
            // As `Cost::is_async_settlement` tells it.
            let line_items = (from..to)
                .map(|l| parse_named::<LineItem>(items.value(l), "lines.item"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(in_row(i))?;
            let notes = notes.value_offsets();
            let row_notes =
                || (notes[i] as usize..notes[i + 1] as usize).map(|n| note_texts.value(n));
            let settlement = is_settlement(
                line_items,
                whole(bytes_out, i, col::BYTES_OUT)?,
                input.is_valid(i) || output.is_valid(i),
                row_notes(),
            );
            row.part = CallPart::of(op, settlement, is_by_interceptor(row_notes()));
            row.never_settled = row.part.never_settled(row_notes());
            row.settled_in_part = row.part.settled_in_part(row_notes());
        }
        if let Some(json) = priced_from.and_then(|c| c.is_valid(i).then(|| c.value(i))) {
            if fallbacks.0 != Some(json) {
                let mut sources = super::decode::accrual_sources(json).map_err(in_row(i))?;
                sources.retain(|s| s.is_fallback());
                fallbacks = (Some(json), sources);
            }
            row.accrual_priced_from = Cow::Borrowed(&fallbacks.1);
        }
        if let (Some((keys, values, offsets)), GroupBy::Tag(key)) = (&tag_entries, by) {
            row.tag = (offsets[i] as usize..offsets[i + 1] as usize)
                .find(|&t| keys.value(t) == key)
                .map(|t| Cow::Borrowed(values.value(t)));
        }
        part.add_row(&row).map_err(RowsError::Report)?;
    }
    Ok(())
}

/// The key of `path`'s first receipt (see [`FirstReceipts`](crate::ledger::FirstReceipts)),
/// read from the columns that make it alone and as a report reads them: the cost
/// at its column's own scale, a call id that is absent or null as none. So a copy
/// another tool rewrote (`cost_usd` as `decimal128(38,6)`, a null `currency`,
/// `memory_mb` as a double), which the receipt reader refuses and a report reads,
/// is told as a copy. `None` for a file without rows; an error when a key column
/// does not read as a report reads it (the report refuses that file too).
pub(crate) fn first_key(path: &Path) -> Option<Result<ReceiptKey, LedgerError>> {
    let key = || -> Result<Option<ReceiptKey>, LedgerError> {
        let builder = super::reader::builder(path)?;
        let wanted = [
            col::ENDPOINT,
            col::CALL_ID,
            col::AT,
            col::LATENCY_US,
            col::COST_USD,
        ];
        let roots: Vec<usize> = (builder.parquet_schema().root_schema().get_fields().iter())
            .enumerate()
            .filter(|(_, f)| wanted.contains(&f.name()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let batch = builder
            .with_projection(mask)
            .with_batch_size(1)
            .with_limit(1)
            .build()
            .map_err(|e| parquet_error(path, "cannot read the file", e))?
            .next()
            .transpose()
            .map_err(|e| parquet_error(path, "cannot read a row group", e))?;
        match batch {
            Some(batch) if batch.num_rows() > 0 => {
                first_row_key(&batch)
                    .map(Some)
                    .map_err(|message| LedgerError::Parquet {
                        path: path.to_owned(),
                        row: Some(1),
                        message,
                        source: None,
                    })
            }
            _ => Ok(None),
        }
    };
    key().transpose()
}

/// The key of `batch`'s first row, its columns read as [`rows`] reads them.
fn first_row_key(batch: &RecordBatch) -> Result<ReceiptKey, String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column `{name}`"))
    };
    let mistyped = |name: &str| format!("column `{name}` is not of the ledger's type");
    let valid = |array: &dyn Array, name: &str| match array.is_valid(0) {
        true => Ok(()),
        false => Err(format!("`{name}` is null")),
    };
    let endpoint = column(col::ENDPOINT)?
        .as_string_opt::<i32>()
        .ok_or_else(|| mistyped(col::ENDPOINT))?;
    valid(endpoint, col::ENDPOINT)?;
    let at = column(col::AT)?
        .as_primitive_opt::<TimestampNanosecondType>()
        .ok_or_else(|| mistyped(col::AT))?;
    valid(at, col::AT)?;
    let latency = column(col::LATENCY_US)?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| mistyped(col::LATENCY_US))?;
    valid(latency, col::LATENCY_US)?;
    let latency = u64::try_from(latency.value(0))
        .map_err(|_| format!("`{}` is negative ({})", col::LATENCY_US, latency.value(0)))?;
    let cost = column(col::COST_USD)?
        .as_primitive_opt::<Decimal128Type>()
        .ok_or_else(|| mistyped(col::COST_USD))?;
    valid(cost, col::COST_USD)?;
    let cost_usd = money(cost.value(0), cost.scale()).ok_or_else(|| {
        format!(
            "`cost_usd` {}e{} does not fit a decimal",
            cost.value(0),
            -i32::from(cost.scale())
        )
    })?;
    // A report does not read it: absent, of another type or null, it is none.
    let call_id = batch
        .column_by_name(col::CALL_ID)
        .and_then(|c| c.as_string_opt::<i32>())
        .and_then(|c| c.is_valid(0).then(|| c.value(0).to_owned()));
    Ok((
        endpoint.value(0).to_owned(),
        call_id,
        DateTime::from_timestamp_nanos(at.value(0)),
        std::time::Duration::from_micros(latency),
        cost_usd,
    ))
}

/// The amount `mantissa` × 10^-`scale`, exactly, whatever the column's scale
/// (sagemeter writes 12; a file rewritten by another tool may have another);
/// `None` when it does not fit a [`Decimal`]. Trailing zeros are dropped when the
/// mantissa is too wide: `10^26` USD at scale 12 is 39 digits, 27 without them.
fn money(mantissa: i128, scale: i8) -> Option<Decimal> {
    match u32::try_from(scale) {
        Ok(mut scale) => {
            let mut mantissa = mantissa;
            loop {
                if let Ok(amount) = Decimal::try_from_i128_with_scale(mantissa, scale) {
                    return Some(amount);
                }
                if scale == 0 || mantissa % 10 != 0 {
                    return None;
                }
                (mantissa, scale) = (mantissa / 10, scale - 1);
            }
        }
        Err(_) => {
            let factor = 10i128.checked_pow(u32::from(scale.unsigned_abs()))?;
            Decimal::try_from_i128_with_scale(mantissa.checked_mul(factor)?, 0).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::report_files;
    use std::sync::Arc;

    /// A call on endpoint `e` with `input_tokens` that cost `cost` (no lines).
    fn receipt(i: u64, cost: &str, input_tokens: u64) -> crate::Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": format!("r{i}"), "at": format!("2026-12-02T10:00:{:02}Z", i % 60),
            "endpoint": "e", "variant": "AllTraffic", "billing": null,
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1000, "bytes_in": 0,
                      "bytes_out": 0, "variant": "AllTraffic", "input_tokens": input_tokens,
                      "outcome": "ok"},
            "lines": [], "cost_usd": cost, "currency": "USD", "region": "us-east-1",
            "running_client_usd": "1", "running_endpoint_usd": "1", "accrual": null
        }))
        .unwrap()
    }

    fn write(path: &Path, receipts: &[crate::Cost]) {
        let mut out = super::super::ParquetFileWriter::create(path).unwrap();
        for cost in receipts {
            out.write(cost).unwrap();
        }
        out.finish().unwrap();
    }

    /// Costs read back at their receipts' own places: the report of a Parquet
    /// file writes the same figures as the report of its receipts (`0.03223`, not
    /// `0.032230000000`; a p50 of `0`, not `0.000000000000`).
    #[test]
    fn a_parquet_report_writes_the_figures_its_receipts_report_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        let receipts = [
            receipt(1, "0.03223", 0),
            receipt(2, "0", 0),
            receipt(3, "0", 0),
            receipt(4, "0.500000000000", 0),
        ];
        write(&path, &receipts);
        let options = ReportOptions::new(GroupBy::Endpoint);
        let from_parquet = report(&[path], &options).unwrap().finish().unwrap();
        let in_memory = crate::report::summarize(&receipts, &options).unwrap();
        assert_eq!(
            serde_json::to_string(&from_parquet.total).unwrap(),
            serde_json::to_string(&in_memory.total).unwrap()
        );
        assert_eq!(from_parquet.total.cost_usd.to_string(), "0.532230000000");
    }

    /// Many files, each opened at its turn and closed after its row groups: all
    /// their rows are counted, and no file is left open once it is read.
    #[test]
    fn many_files_are_each_read_whole_and_closed_after_their_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..40)
            .map(|i| {
                let path = dir.path().join(format!("f{i}.parquet"));
                write(
                    &path,
                    &[receipt(2 * i, "0.25", 0), receipt(2 * i + 1, "0.5", 0)],
                );
                path
            })
            .collect();
        let options = ReportOptions::new(GroupBy::Endpoint);
        let built = report(&files, &options).unwrap().finish().unwrap();
        // 40 files × (0.25 + 0.5) = 30 USD over 80 calls.
        assert_eq!(built.total.calls, 80);
        assert_eq!(built.total.cost_usd, Decimal::new(30, 0));
        let lazy = LazyFile::new(2, std::fs::metadata(&files[0]).unwrap().len());
        let removed = AtomicU64::new(0);
        assert!(lazy.acquire(&files[0], &removed).unwrap().is_some());
        lazy.release();
        assert!(matches!(*lazy.state.lock().unwrap(), LazyState::Open(_)));
        lazy.release();
        assert!(
            matches!(*lazy.state.lock().unwrap(), LazyState::Gone),
            "closed"
        );
    }

    /// A listed file removed before the report opened it (a rolling ledger's
    /// retention) is said and not counted, as a JSON Lines file is; one removed
    /// after it was opened is read whole from the open file.
    #[test]
    fn a_file_removed_before_it_is_opened_is_said_and_one_removed_after_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, gone) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        write(&kept, &[receipt(1, "0.25", 0), receipt(2, "0.5", 0)]);
        write(&gone, &[receipt(3, "4", 0)]);
        std::fs::remove_file(&gone).unwrap();
        let options = ReportOptions::new(GroupBy::Endpoint);
        let built = report(&[kept.clone(), gone], &options)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(built.removed_files, 1);
        assert_eq!(built.total.calls, 2);
        assert_eq!(built.total.cost_usd, Decimal::new(75, 2));
        // Opened, then removed: its row groups come from the open file.
        let file = OpenFile::new(std::fs::File::open(&kept).unwrap()).unwrap();
        std::fs::remove_file(&kept).unwrap();
        let mut part = ReportBuilder::new(options).unwrap();
        row_group(&kept, &file, 0, &mut part).unwrap();
        assert_eq!(part.finish().unwrap().total.calls, 2);
    }

    /// The file at `path` rewritten by another tool (as pandas or pyarrow would):
    /// its `cost_usd` column replaced by `cost`, the rest as it was, the
    /// metadata sagemeter writes dropped.
    fn rewrite_cost(path: &Path, cost: arrow_array::Decimal128Array) {
        rewrite_column(path, col::COST_USD, Arc::new(cost));
    }

    /// Rewrites `path` with column `name` replaced by `values`, as another tool
    /// would.
    fn rewrite_column(path: &Path, name: &str, values: arrow_array::ArrayRef) {
        rewrite_column_in_groups(path, name, values, None);
    }

    /// [`rewrite_column`] into row groups of `group_rows` rows (the writer's
    /// default when `None`).
    fn rewrite_column_in_groups(
        path: &Path,
        name: &str,
        values: arrow_array::ArrayRef,
        group_rows: Option<usize>,
    ) {
        use arrow_schema::{Field, Schema};
        use parquet::arrow::ArrowWriter;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use parquet::file::properties::WriterProperties;
        let file = std::fs::File::open(path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        // Every row in one batch.
        let rows = builder.metadata().file_metadata().num_rows() as usize;
        let batch = builder
            .with_batch_size(rows.max(1))
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let schema = batch.schema();
        let index = schema.index_of(name).unwrap();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[index] = Field::new(name, values.data_type().clone(), true);
        let mut columns = batch.columns().to_vec();
        columns[index] = values;
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let properties = group_rows.map(|rows| {
            WriterProperties::builder()
                .set_max_row_group_row_count(Some(rows))
                .build()
        });
        let mut out =
            ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, properties).unwrap();
        out.write(&batch).unwrap();
        out.close().unwrap();
    }

    /// A negative latency or token count (another tool's rewrite) is damage named
    /// by its column and row, not read as 0.
    #[test]
    fn a_negative_count_in_a_rewritten_file_is_refused_not_read_as_zero() {
        let dir = tempfile::tempdir().unwrap();
        let options = ReportOptions::new(GroupBy::Endpoint);
        for name in [col::LATENCY_US, col::INPUT_TOKENS, col::OUTPUT_TOKENS] {
            let path = dir.path().join(format!("{name}.parquet"));
            write(&path, &[receipt(0, "1.5", 10)]);
            rewrite_column(
                &path,
                name,
                Arc::new(arrow_array::Int64Array::from(vec![-5])),
            );
            let err = report_files([&path], &options).unwrap_err().to_string();
            assert!(
                err.contains(&format!("row 1: `{name}` is negative (-5)")),
                "{err}"
            );
        }
    }

    /// An `amount_scales` of another tool's rewrite that gives the cost more
    /// places than a decimal holds (its 5 bits say up to 31; a `Decimal` holds
    /// 28) is damage named by its column and row, as the receipt reader refuses
    /// it: not a cost whose sums or JSON panic.
    #[test]
    fn an_amount_scale_past_what_a_decimal_holds_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let options = ReportOptions::new(GroupBy::Endpoint);
        let path = dir.path().join("scales.parquet");
        write(
            &path,
            &[
                receipt(0, "0.000000000001", 10),
                receipt(1, "0.000000000001", 10),
            ],
        );
        // -1 is every bit set: the cost's 5 bits say scale 31.
        rewrite_column(
            &path,
            col::AMOUNT_SCALES,
            Arc::new(arrow_array::Int64Array::from(vec![-1, -1])),
        );
        assert!(
            super::super::read_all(&path).is_err(),
            "the receipt reader refuses it"
        );
        match report_files([&path], &options) {
            Err(ReportError::Ledger(LedgerError::Parquet {
                path: file,
                message,
                ..
            })) => {
                assert_eq!(file, path);
                assert!(message.contains("`amount_scales`"), "{message}");
                assert!(message.contains("31"), "{message}");
            }
            other => panic!("not an error on the scale: {other:?}"),
        }
    }

    /// A damaged row is named by its 1-based row in the file, as the receipt
    /// reader names it, whatever batch or row group of the report held it: not
    /// by its place in its batch.
    #[test]
    fn a_damaged_row_is_named_by_its_row_in_the_file_as_the_reader_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = ReportOptions::new(GroupBy::Endpoint);
        let receipts: Vec<_> = (0..20_000).map(|i| receipt(i, "1.5", 10)).collect();
        // The last receipt's latency negative: the 20,000th row of the file.
        let latency = || {
            let mut us = vec![1_000i64; 20_000];
            us[19_999] = -5;
            Arc::new(arrow_array::Int64Array::from(us))
        };
        // One row group, read by the report 16,384 rows at a time: the bad row is
        // the second batch's 3,616th (index 3,615). Row groups of 8,000 rows: the
        // third's 4,000th (index 3,999), after 2 × 8,000 rows.
        for group_rows in [None, Some(8_000)] {
            let path = dir.path().join(format!("{group_rows:?}.parquet"));
            write(&path, &receipts);
            rewrite_column_in_groups(&path, col::LATENCY_US, latency(), group_rows);
            let reader_row = match super::super::read_all(&path) {
                Err(LedgerError::Parquet { row, .. }) => row,
                other => panic!("the receipt reader reads it: {other:?}"),
            };
            assert_eq!(reader_row, Some(20_000), "{group_rows:?}");
            match report_files([&path], &options) {
                Err(ReportError::Ledger(e @ LedgerError::Parquet { .. })) => {
                    let text = e.to_string();
                    let LedgerError::Parquet { row, message, .. } = e else {
                        unreachable!()
                    };
                    assert_eq!(row, reader_row, "{group_rows:?}: {text}");
                    assert_eq!(message, "`latency_us` is negative (-5)", "{text}");
                    assert!(text.contains(", row 20000: `latency_us`"), "{text}");
                }
                other => panic!("{group_rows:?}: not an error on the latency: {other:?}"),
            }
        }
    }

    /// A `cost_usd` column of another scale than sagemeter's 12 is read at its
    /// own scale; a null cost is an error, not $0.
    #[test]
    fn a_cost_column_rewritten_at_another_scale_or_with_a_null_is_read_exactly_or_refused() {
        use arrow_array::Decimal128Array;
        let dir = tempfile::tempdir().unwrap();
        let options = ReportOptions::new(GroupBy::Endpoint);
        let path = dir.path().join("rewritten.parquet");
        write(&path, &[receipt(0, "1.5", 10)]);
        assert_eq!(
            report_files([&path], &options).unwrap().total.cost_usd,
            Decimal::new(15, 1)
        );

        // decimal128(38, 6): 1.5 USD is 1_500_000 × 10⁻⁶ (read at scale 12 it
        // would be 1_500_000 × 10⁻¹² = 0.0000015 USD, a millionth of it).
        let six = Decimal128Array::from(vec![1_500_000])
            .with_precision_and_scale(38, 6)
            .unwrap();
        rewrite_cost(&path, six);
        let report = report_files([&path], &options).unwrap();
        assert_eq!(report.total.cost_usd, Decimal::new(15, 1));
        assert_eq!(report.total.calls, 1);

        // (Parquet has no negative scales; were one read, 15 × 10¹ = 150 USD.)
        assert_eq!(money(15, -1), Some(Decimal::from(150)));
        assert_eq!(money(i128::MAX, -1), None);
        // 10^26 USD at the ledger's scale 12 is a 39-digit mantissa: read as 10^26,
        // as the receipt reader (and compare) read it, not refused.
        let huge = 10i128.pow(26) * 10i128.pow(12);
        assert_eq!(money(huge, 12), Some(Decimal::from(10i128.pow(26))));
        // Digits beyond what a Decimal holds stay refused, never rounded.
        assert_eq!(money(i128::MAX, 12), None);

        // A null cost: an error naming the column, the row and the file, never $0.
        let null = Decimal128Array::from(vec![None::<i128>])
            .with_precision_and_scale(38, 12)
            .unwrap();
        rewrite_cost(&path, null);
        match report_files([&path], &options) {
            Err(ReportError::Ledger(LedgerError::Parquet {
                path: file,
                row,
                message,
                ..
            })) => {
                assert_eq!((file, row), (path.clone(), Some(1)));
                assert!(message.contains("`cost_usd` is null"), "{message}");
            }
            other => panic!("not an error on the null cost: {other:?}"),
        }
    }

    /// A Parquet file named that does not exist (a typo) is an error naming it, as
    /// a missing JSON Lines file is: not a report of the other files with the
    /// missing one noted as removed by retention, nor an empty report.
    #[test]
    fn a_missing_parquet_file_named_is_an_error_not_a_removed_file() {
        let dir = tempfile::tempdir().unwrap();
        let options = ReportOptions::new(GroupBy::Endpoint);
        let jan = dir.path().join("jan.parquet");
        write(&jan, &[receipt(0, "1.5", 10)]);
        let missing = dir.path().join("missing.parquet");
        for paths in [vec![&missing], vec![&jan, &missing]] {
            match report_files(paths, &options) {
                Err(ReportError::Ledger(LedgerError::Open { path, source })) => {
                    assert_eq!(path, missing);
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                }
                other => panic!("not an error naming the missing file: {other:?}"),
            }
        }
        assert_eq!(report_files([&jan], &options).unwrap().total.calls, 1);
    }

    /// A copy rewritten by another tool, which the receipt reader refuses and the
    /// report reads, is still told as a copy: reported with its original, its
    /// receipts would count twice ($1.50 reported as $3.00 over 2 calls).
    #[test]
    fn a_rewritten_copy_reported_with_its_original_is_refused_not_counted_twice() {
        use arrow_array::{Decimal128Array, StringArray};
        let dir = tempfile::tempdir().unwrap();
        let options = ReportOptions::new(GroupBy::Endpoint);
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        write(&a, &[receipt(0, "1.5", 10)]);
        let same = |b: &Path| match report_files([&a, &b.to_owned()], &options) {
            Err(ReportError::Ledger(LedgerError::SameReceipts {
                first,
                second,
                call_id,
            })) => {
                assert_eq!((first, second), (a.clone(), b.to_owned()));
                call_id
            }
            other => panic!("{} not refused as a copy: {other:?}", b.display()),
        };

        // decimal128(38,6): 1.5 USD is 1_500_000 × 10⁻⁶, the same cost as the
        // original's 1_500_000_000_000 × 10⁻¹².
        std::fs::copy(&a, &b).unwrap();
        rewrite_cost(
            &b,
            Decimal128Array::from(vec![1_500_000])
                .with_precision_and_scale(38, 6)
                .unwrap(),
        );
        assert!(
            super::super::read_all(&b).is_err(),
            "the receipt reader refuses it"
        );
        assert_eq!(report_files([&b], &options).unwrap().total.calls, 1);
        assert_eq!(same(&b), "r0");

        // A null currency (the report reads none) or a null call id (the rest of
        // the first row tells it).
        for column in [col::CURRENCY, col::CALL_ID] {
            let b = dir.path().join(format!("{column}.parquet"));
            std::fs::copy(&a, &b).unwrap();
            rewrite_column(&b, column, Arc::new(StringArray::from(vec![None::<&str>])));
            assert!(super::super::read_all(&b).is_err(), "{column}");
            assert_eq!(same(&b), "r0", "{column}");
        }

        // Another receipt at the same time on the same endpoint is no copy: the
        // two files report together, $1.50 + $1.25 = $2.75 over 2 calls.
        let c = dir.path().join("c.parquet");
        let mut other = receipt(0, "1.25", 10);
        other.call_id = "r1".to_owned();
        write(&c, &[other]);
        let both = report_files([&a, &c], &options).unwrap();
        assert_eq!(both.total.calls, 2);
        assert_eq!(both.total.cost_usd, Decimal::new(275, 2));
    }

    /// A directory's symbolic link to a Parquet file elsewhere is listed and
    /// counted, as a JSON Lines directory's is; a link to nothing is skipped.
    #[cfg(unix)]
    #[test]
    fn a_directory_reports_the_parquet_files_its_symbolic_links_name() {
        let dir = tempfile::tempdir().unwrap();
        let (archive, elsewhere) = (dir.path().join("archive"), dir.path().join("elsewhere"));
        std::fs::create_dir(&archive).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        write(&archive.join("2026-11.parquet"), &[receipt(0, "0.25", 0)]);
        write(&elsewhere.join("2026-12.parquet"), &[receipt(1, "0.50", 0)]);
        std::os::unix::fs::symlink(
            elsewhere.join("2026-12.parquet"),
            archive.join("2026-12.parquet"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            elsewhere.join("removed.parquet"),
            archive.join("removed.parquet"),
        )
        .unwrap();
        assert_eq!(
            super::super::parquet_files(&archive).unwrap(),
            [
                archive.join("2026-11.parquet"),
                archive.join("2026-12.parquet")
            ]
        );
        // $0.25 + $0.50 = $0.75 over 2 calls.
        let report = report_files([&archive], &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        assert_eq!(report.total.calls, 2);
        assert_eq!(report.total.cost_usd, Decimal::new(75, 2));
    }

    #[test]
    fn sums_of_parquet_rows_that_overflow_are_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let options = ReportOptions::new(GroupBy::Endpoint);
        // The token columns are Int64: i64::MAX = 9223372036854775807 thrice is
        // 27670116110564327421 > u64::MAX = 18446744073709551615.
        let max = i64::MAX as u64;
        let tokens = dir.path().join("tokens.parquet");
        write(
            &tokens,
            &[
                receipt(0, "1", max),
                receipt(1, "1", max),
                receipt(2, "1", max),
            ],
        );
        match report_files([&tokens], &options) {
            Err(ReportError::Overflow { ledgers, what, .. }) => {
                assert_eq!(ledgers, vec![tokens.clone()]);
                assert_eq!(what, "the input tokens of group `e`");
            }
            other => panic!("not an overflow: {other:?}"),
        }
        // (A row's cost_usd, read at 12 places into a Decimal's 96-bit mantissa,
        // is below 7.9 × 10¹⁶ USD: its sums cannot overflow before ~10¹² rows.)
    }
}
