//! Ledgers as Parquet files (feature `parquet`): one row per receipt, typed
//! columns, for query engines (DuckDB, Athena, Spark, pandas).
//!
//! - [`ParquetLedger`]: a [`CostSink`](crate::sink::CostSink) writing rolling
//!   files `sagemeter-YYYY-MM-DDTHH[.N].parquet`, as
//!   [`JsonlLedger::rolling`](crate::ledger::JsonlLedger::rolling) does for JSONL.
//! - [`convert`]: a JSONL ledger file to a Parquet file (what
//!   `sagemeter ledger convert` does), and [`ParquetFileWriter`] for any receipts.
//! - [`read_all`], [`ParquetReader`], [`parquet_files`]: receipts back, equal to
//!   the ones the JSONL ledger reads back, field by field and digit by digit.
//!
//! ```no_run
//! use sagemeter::ledger::parquet::{convert, parquet_files, read_all};
//! let written = convert("calls.jsonl", "calls.parquet")?;
//! println!("{} receipts, {} bytes", written.rows, written.bytes);
//! for file in parquet_files("receipts/")? {
//!     let total: sagemeter::Decimal = read_all(&file)?.iter().map(|c| c.cost_usd).sum();
//!     println!("{}: ${total}", file.display());
//! }
//! # Ok::<(), sagemeter::ledger::LedgerError>(())
//! ```
//!
//! # Schema
//! One flat row per receipt (`docs/ledger-parquet.md` has the table):
//! - money (`cost_usd`, `running_*_usd`, `accrued_usd`, `allocated_usd`,
//!   `storage_usd`, and each line's `cost_usd`) and `utilisation` are
//!   `DECIMAL(38,12)`. An amount is stored exactly or not at all: one that does
//!   not fit (more than 12 decimal places, or 27 integer digits) is refused, never
//!   rounded. Each amount's own scale (`0.5` has 1 decimal place,
//!   `0.000015972222` has 12) is kept in `amount_scales` (row amounts, 5 bits each)
//!   and `lines.cost_usd_scale`, so that a receipt reads back as the same text;
//!   query engines can ignore those two.
//! - a line's `quantity` and `usd_per_unit` have up to 28 decimal places and 29
//!   digits (a compute line's quantity is instance-hours to 28 places): no
//!   `DECIMAL` of at most 38 digits holds both ends, and wider ones are read as
//!   floating point by DuckDB and refused by Athena, so they are the exact decimal
//!   text, as in the JSONL ledger (`CAST(quantity AS DECIMAL(38,20))` in a query).
//! - `at` and a price's `fetched_at` are `TIMESTAMP(NANOSECOND, UTC)`; `day` is
//!   `at`'s UTC date; durations are `int64` microseconds (`latency_us`, as the
//!   JSONL ledger writes them); counts are `int64`.
//! - `lines` is a `LIST<STRUCT<…>>`, `tags` a `MAP<string,string>`, `notes` a
//!   `LIST<string>`; how the variant is billed is flat (`billing_kind`,
//!   `instance_type`, `instance_count`, `memory_mb`, `provisioned_concurrency`).
//! - the file's key-value metadata holds `sagemeter.ledger.format`
//!   ([`PARQUET_FORMAT_VERSION`]); a newer one is refused by the reader.

mod decimal;
mod decode;
mod encode;
mod file;
mod ledger;
mod naming;
mod reader;
mod report;
mod schema;

pub use file::{PARQUET_FORMAT_VERSION, ParquetFileSummary, ParquetFileWriter, in_progress};
pub use ledger::{ParquetLedger, ParquetLedgerBuilder};
pub(crate) use reader::parquet_files_in;
pub use reader::{ParquetReader, parquet_files, read_all};

pub(crate) use report::{first_key, report};

use crate::ledger::{LedgerError, LedgerReader, TornTail};
use std::path::{Path, PathBuf};

/// What [`convert`] wrote.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The JSONL ledger file read.
    pub from: PathBuf,
    /// The Parquet file written.
    pub to: PathBuf,
    /// Receipts written.
    pub rows: u64,
    /// Size of the Parquet file in bytes.
    pub bytes: u64,
    /// The torn last line of the JSONL file (an interrupted write), skipped.
    pub torn_tail: Option<TornTail>,
    /// Price change records of the JSONL file: the Parquet file holds receipts,
    /// and these are not in it (keep the JSONL file for them).
    pub price_changes: u64,
}

/// Writes every receipt of the JSONL ledger file `jsonl` to the Parquet file
/// `parquet` (created 0600, never overwritten; written as [`in_progress`] and renamed
/// when complete). A torn last line is skipped and reported, and so are price
/// change records, which are no receipts; any other bad line, or a receipt that
/// cannot be stored exactly, is an error and no file is left.
pub fn convert(
    jsonl: impl AsRef<Path>,
    parquet: impl AsRef<Path>,
) -> Result<Converted, LedgerError> {
    let jsonl = jsonl.as_ref();
    let mut reader = LedgerReader::open(jsonl)?;
    let mut out = ParquetFileWriter::create(parquet)?;
    for cost in reader.by_ref() {
        out.write(&cost?)?;
    }
    let summary = out.finish()?;
    Ok(Converted {
        from: jsonl.to_owned(),
        to: summary.path,
        rows: summary.rows,
        bytes: summary.bytes,
        torn_tail: reader.torn_tail().cloned(),
        price_changes: reader.price_changes(),
    })
}
