//! Price changes: a cached live price that came back different when refreshed, or
//! that a term its answer announced ahead replaced on its date.
//!
//! AWS changes SageMaker prices a few times a year, effective from a date, and
//! may list the new term in the Price List ahead of it. When
//! [`CachedPrices`](super::CachedPrices) refreshes a key and the rate differs
//! from the last good one, or the date of a term its kept answer announced comes
//! and that term's rate differs (the same change, found once: a refresh that then
//! confirms it finds none), it logs one INFO event `price changed` (target
//! `sagemeter::pricing`), counts it in `sagemeter_price_changes_total`, tells
//! the observers given to
//! [`CachedPricesBuilder::on_change`](super::CachedPricesBuilder::on_change) (the
//! client's default source tells its sinks, so a ledger gets a `price_change`
//! record) before any caller gets the new rate, and notes the change on the
//! receipt of the first call that looks the price up after the refresh landed or
//! the term took effect (a refresh runs on a task of its own while callers get the
//! stale rate; other calls priced at the new rate can finish before that one). Receipts keep
//! carrying the effective date of the rate they used, so history is never
//! repriced.

use super::{PriceKey, PriceUnit, Rate};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One price that changed between two fetches of the same key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceChange {
    /// When the refresh found it, or, for a term announced ahead, when it was put
    /// in place (by the first look-up of the price from the term's date).
    pub at: DateTime<Utc>,
    /// What is priced.
    pub key: PriceKey,
    /// The unit of both rates.
    pub unit: PriceUnit,
    /// The last good rate before.
    #[serde(with = "rust_decimal::serde::str")]
    pub old_usd_per_unit: Decimal,
    /// The rate fetched now.
    #[serde(with = "rust_decimal::serde::str")]
    pub new_usd_per_unit: Decimal,
    /// The effective date of the old rate, when known.
    pub old_effective_date: Option<Arc<str>>,
    /// The effective date of the new rate, when known.
    pub new_effective_date: Option<Arc<str>>,
    /// The SKU of the new rate, when known.
    pub sku: Option<Arc<str>>,
}

impl PriceChange {
    /// The change between `old` and `new`, or `None` when the rate is the same.
    pub(crate) fn between(old: &Rate, new: &Rate, at: DateTime<Utc>) -> Option<PriceChange> {
        (old.usd_per_unit != new.usd_per_unit).then(|| PriceChange {
            at,
            key: new.key.clone(),
            unit: new.unit,
            old_usd_per_unit: old.usd_per_unit,
            new_usd_per_unit: new.usd_per_unit,
            old_effective_date: old.provenance.effective_date.clone(),
            new_effective_date: new.provenance.effective_date.clone(),
            sku: new.provenance.sku.clone(),
        })
    }

    /// (new − old) ÷ old × 100, rounded to 2 places; `None` when the old rate was 0.
    pub fn change_percent(&self) -> Option<Decimal> {
        percent_change(self.old_usd_per_unit, self.new_usd_per_unit)
    }

    /// The note on the first receipt priced at the new rate.
    pub(crate) fn note(&self) -> String {
        let date = |d: &Option<Arc<str>>| d.as_deref().unwrap_or("unknown").to_owned();
        let percent = self
            .change_percent()
            .map(|p| {
                format!(
                    " ({}{}%)",
                    if p.is_sign_positive() { "+" } else { "" },
                    p.normalize()
                )
            })
            .unwrap_or_default();
        format!(
            "price changed: {} per {} (effective {}), was {} (effective {}){percent}",
            self.new_usd_per_unit.normalize(),
            self.unit,
            date(&self.new_effective_date),
            self.old_usd_per_unit.normalize(),
            date(&self.old_effective_date),
        )
    }
}

/// (new − old) ÷ old × 100, rounded to 2 places; `None` when `old` is 0.
pub(crate) fn percent_change(old: Decimal, new: Decimal) -> Option<Decimal> {
    if old.is_zero() {
        return None;
    }
    let ratio = new.checked_sub(old)?.checked_div(old)?;
    ratio
        .checked_mul(Decimal::ONE_HUNDRED)
        .map(|p| p.round_dp(2))
}

/// Told of every [`PriceChange`]; see [`CachedPricesBuilder::on_change`](super::CachedPricesBuilder::on_change).
pub type OnPriceChange = Arc<dyn Fn(&PriceChange) + Send + Sync>;
