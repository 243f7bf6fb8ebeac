//! Ledger files that hold the same receipts: a copy of a ledger (a backup, files
//! synced from two hosts) or its conversion to the other format. Read together,
//! their receipts would count twice.

use super::LedgerError;
use crate::Cost;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What tells a receipt from every other: its endpoint, call id, start, latency
/// and cost (a call id alone does not: an async invocation has two receipts).
/// The call id is `None` only in a Parquet file another tool rewrote with a null
/// one (`report` reads such a file: it needs no call id), and then the rest tells
/// it; the cost is compared without trailing zeros (`1.5` is `1.500000`).
pub(crate) type ReceiptKey = (
    String,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
    Duration,
    Decimal,
);

/// A [`ReceiptKey`] without its call id.
type Moment = (String, chrono::DateTime<chrono::Utc>, Duration, Decimal);

/// Tells ledger files that begin with the same receipt, one file at a time: the
/// readers of many ledgers (`report`, `reconcile`, `compare --from-ledger`) give
/// it each file's first receipt. Only first receipts are kept, so memory grows
/// with the files, not their receipts; a file that holds part of another's
/// receipts from elsewhere than its start is not told.
#[derive(Debug, Clone, Default)]
pub struct FirstReceipts {
    /// The files noted, by their first receipt's key without its call id, with
    /// that call id.
    seen: HashMap<Moment, Vec<(Option<String>, PathBuf)>>,
}

impl FirstReceipts {
    /// No file seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `file` begins with `first`; [`LedgerError::SameReceipts`] when a
    /// file noted before began with the same receipt.
    pub fn note(&mut self, file: &Path, first: &Cost) -> Result<(), LedgerError> {
        self.note_key(
            file,
            (
                first.endpoint.clone(),
                Some(first.call_id.clone()),
                first.at,
                first.usage.latency,
                first.cost_usd,
            ),
        )
    }

    /// [`note`](Self::note) of a first receipt known only by its key: what a
    /// report reads of a Parquet file, whose other columns may be of types the
    /// receipt reader refuses (a copy another tool rewrote).
    pub(crate) fn note_key(&mut self, file: &Path, key: ReceiptKey) -> Result<(), LedgerError> {
        let (endpoint, call_id, at, latency, cost) = key;
        let files = self
            .seen
            .entry((endpoint, at, latency, cost.normalize()))
            .or_default();
        let earlier = files.iter().find(|(seen, _)| {
            seen.is_none() || call_id.is_none() || seen.as_deref() == call_id.as_deref()
        });
        match earlier {
            Some((seen, earlier)) => Err(LedgerError::SameReceipts {
                first: earlier.clone(),
                second: file.to_owned(),
                call_id: (seen.clone().or(call_id)).unwrap_or_else(|| "null".to_owned()),
            }),
            None => {
                files.push((call_id, file.to_owned()));
                Ok(())
            }
        }
    }
}
