//! The JSON Lines ledger: one line per receipt, appended by [`JsonlLedger`] and
//! read back by [`read_all`] / [`LedgerReader`] (summarise it with
//! [`crate::report`]).
//!
//! A ledger is a sink like any other: give it to the builder with
//! [`ClientBuilder::sink`](crate::ClientBuilder::sink). Its background writer
//! (a bounded queue and one writer thread) is shared with the CloudWatch EMF sink
//! ([`crate::sink::EmfSink`]), whence [`Refused`] and [`SinkStats`].

mod compact;
mod copies;
mod error;
pub(crate) mod file;
mod line;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(test)]
mod props;
mod reader;
mod rolling;
mod writer;

pub use copies::FirstReceipts;
pub use error::{LedgerError, ParseError};
pub use file::{DEFAULT_CAPACITY, JsonlLedger, JsonlLedgerBuilder, MAX_CAPACITY, is_being_written};
pub use reader::{LedgerRead, LedgerReader, TornTail, any_ledger_files, ledger_files, read_all};
pub use rolling::RollEvery;
pub(crate) use writer::{Counters, WarnLimiter};
pub use writer::{Refused, SinkStats};

pub(crate) use compact::{Definitions, RECEIPT_PREFIX, Refs, report_row};
pub(crate) use error::{capacity_checks, check_options};
pub(crate) use reader::{
    FileId, LineError, MAX_LINE_BYTES, is_parquet_name, line_text, line_too_long, read_record,
    torn_tail,
};
#[cfg(feature = "account")]
pub(crate) use rolling::{FileName as RolledFileName, rolling_dir_of};
pub(crate) use writer::{BackgroundWriter, Encode, Options, StreamTarget};

/// The version of the ledger line format [`JsonlLedger`] writes, `"v"` on every
/// line. Readers read it and every older one (format 1: each receipt whole).
pub const LEDGER_FORMAT_VERSION: u32 = 2;
