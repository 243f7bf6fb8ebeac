//! A sink that keeps every receipt, and a price source that knows no price.

use sagemeter::Cost;
use sagemeter::billing::{CostLine, LineItem};
use sagemeter::pricing::{PriceError, PriceKey, PriceSource, Rate};
use sagemeter::sink::{BoxFuture, CostSink};
use std::sync::{Arc, Mutex};

/// Every receipt the meter hands to its sinks, for the tests that need the ones no
/// response carries.
#[derive(Debug, Clone, Default)]
pub struct Receipts(Arc<Mutex<Vec<Cost>>>);

impl CostSink for Receipts {
    fn record(&self, cost: &Cost) {
        self.0.lock().unwrap().push(cost.clone());
    }
}

impl Receipts {
    /// The receipts so far, in the order they were recorded.
    pub fn all(&self) -> Vec<Cost> {
        self.0.lock().unwrap().clone()
    }
}

/// A price source that has no price for anything (every line is unpriced unless an
/// override or profile says otherwise).
#[derive(Debug)]
pub struct NoPriceList;

impl PriceSource for NoPriceList {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(async move { Err(PriceError::NotFound { key: key.clone() }) })
    }
}

/// The receipt's `item` line (there is one of each at most).
pub fn line(cost: &Cost, item: LineItem) -> &CostLine {
    cost.lines
        .iter()
        .find(|l| l.item == item)
        .unwrap_or_else(|| panic!("no {item:?} line on {cost:#?}"))
}

/// Asserts that the receipt carries exactly the note `note` (among its others).
#[track_caller]
pub fn assert_noted(cost: &Cost, note: &str) {
    assert!(
        cost.notes.iter().any(|n| n == note),
        "no note {note:?} among {:?}",
        cost.notes
    );
}

/// Asserts that one of the receipt's notes contains `part`.
#[track_caller]
pub fn assert_noted_containing(cost: &Cost, part: &str) {
    assert!(
        cost.notes.iter().any(|n| n.contains(part)),
        "no note containing {part:?} among {:?}",
        cost.notes
    );
}

/// Asserts that none of the receipt's notes contains `part`.
#[track_caller]
pub fn assert_not_noted_containing(cost: &Cost, part: &str) {
    assert!(
        !cost.notes.iter().any(|n| n.contains(part)),
        "a note containing {part:?} among {:?}",
        cost.notes
    );
}
