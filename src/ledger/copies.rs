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
type ReceiptKey = (
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    Duration,
    Decimal,
);

/// Tells ledger files that begin with the same receipt, one file at a time: the
/// readers of many ledgers (`report`, `reconcile`, `compare --from-ledger`) give
/// it each file's first receipt. Only first receipts are kept, so memory grows
/// with the files, not their receipts; a file that holds part of another's
/// receipts from elsewhere than its start is not told.
#[derive(Debug, Clone, Default)]
pub struct FirstReceipts {
    seen: HashMap<ReceiptKey, PathBuf>,
}

impl FirstReceipts {
    /// No file seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `file` begins with `first`; [`LedgerError::SameReceipts`] when a
    /// file noted before began with the same receipt.
    pub fn note(&mut self, file: &Path, first: &Cost) -> Result<(), LedgerError> {
        let key = (
            first.endpoint.clone(),
            first.call_id.clone(),
            first.at,
            first.usage.latency,
            first.cost_usd.normalize(),
        );
        match self.seen.get(&key) {
            Some(earlier) => Err(LedgerError::SameReceipts {
                first: earlier.clone(),
                second: file.to_owned(),
                call_id: first.call_id.clone(),
            }),
            None => {
                self.seen.insert(key, file.to_owned());
                Ok(())
            }
        }
    }
}
