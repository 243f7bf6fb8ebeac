//! Trends: how fast rates moved, per instance size, per vCPU and per GPU.
//!
//! A size's yearly rate of change is the constant yearly rate that turns its first
//! listed rate into its latest over the time between them:
//! `(latest ÷ first)^(1 ÷ years) − 1`. The span runs from the date the size was first
//! listed on (its first point's date: the first sampled date of the version that
//! listed it, or, for a rate announced for later, its term's `effectiveDate`) to the
//! last date asked for when it is still listed, else to the
//! date it is first seen no longer listed (the first sampled date of the version that
//! dropped it: its last rate was in effect until that version took over, as on the
//! chart), so years without a change count too. Years are counted in
//! calendar months (2024-01-01 to 2026-01-01 is 2 years exactly; a part month is its
//! days over the month's length) so that a test can work the figure out by hand.

use super::{KeyHistory, PriceHistory};
use crate::pricing::PriceKey;
use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::{Decimal, MathematicalOps};
use serde::{Deserialize, Serialize};

/// Places a per-vCPU or per-GPU rate is rounded to (the Price List writes 10).
const PER_UNIT_DP: u32 = 10;

/// One instance size's trend.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeTrend {
    /// What is priced (a hosting instance type, or any key of a history).
    pub key: PriceKey,
    /// The first listed rate, USD per unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub first_usd: Decimal,
    /// The date it was first listed on: its first point's
    /// [`seen_on`](super::PricePoint::seen_on), the first sampled date of the version
    /// that listed it, or the `effectiveDate` of a term that version announced for
    /// later when it listed the size only with that term.
    pub first_on: NaiveDate,
    /// The latest listed rate, USD per unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub latest_usd: Decimal,
    /// Where the span ends: the last date asked for while the size is still listed;
    /// for a size no longer listed, the date it was first seen no longer listed
    /// ([`no_longer_listed_on`](Self::no_longer_listed_on)), since its last rate was
    /// in effect until then.
    pub latest_on: NaiveDate,
    /// The date the size was first seen no longer listed (the first sampled date of
    /// the version that dropped it), `None` while it is still listed at the end.
    pub no_longer_listed_on: Option<NaiveDate>,
    /// The yearly rate of change in percent, to 2 places (`-20.00` for −20 % a
    /// year), compounded; `None` when the span is shorter than a day, when a rate
    /// is not above 0, or when the compounded figure does not fit (a rate doubled
    /// in a day is e²⁵⁸ a year).
    #[serde(with = "rust_decimal::serde::str_option")]
    pub yearly_change_percent: Option<Decimal>,
    /// vCPUs per instance, when the Price List says.
    pub vcpu: Option<u32>,
    /// GPUs per instance, when the Price List says (and it has some).
    pub gpu: Option<u32>,
    /// The first rate per vCPU, when `vcpu` is known.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub first_usd_per_vcpu: Option<Decimal>,
    /// The latest rate per vCPU, when `vcpu` is known.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub latest_usd_per_vcpu: Option<Decimal>,
    /// The first rate per GPU, when the instance has GPUs.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub first_usd_per_gpu: Option<Decimal>,
    /// The latest rate per GPU, when the instance has GPUs.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub latest_usd_per_gpu: Option<Decimal>,
}

/// The trend of every key of a history (for a family: every size).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trend {
    /// The region.
    pub region: String,
    /// The dates the history covers.
    pub since: NaiveDate,
    /// See [`since`](Self::since).
    pub until: NaiveDate,
    /// One row per key that was listed at least once, in key order.
    pub sizes: Vec<SizeTrend>,
}

impl PriceHistory {
    /// The trend of each key in this history.
    pub fn trend(&self) -> Trend {
        Trend {
            region: self.region.clone(),
            since: self.since,
            until: self.until,
            sizes: self
                .series
                .iter()
                .filter_map(|s| s.trend(self.until))
                .collect(),
        }
    }
}

impl KeyHistory {
    /// This key's trend, up to `until` if it is still listed then, else up to the
    /// date it is first seen no longer listed; `None` if it was never listed.
    pub fn trend(&self, until: NaiveDate) -> Option<SizeTrend> {
        let first = self.first()?;
        let latest = self.latest()?;
        let (first_usd, latest_usd) = (first.usd_per_unit?, latest.usd_per_unit?);
        // The last rate held until the version that no longer lists it took over.
        let no_longer_listed_on = self
            .points
            .last()
            .filter(|p| p.usd_per_unit.is_none())
            .map(|p| p.seen_on);
        let latest_on = no_longer_listed_on.unwrap_or(until);
        let per = |usd: Decimal, n: Option<u32>| {
            n.filter(|n| *n > 0)
                .and_then(|n| usd.checked_div(Decimal::from(n)))
                .map(|v| v.round_dp(PER_UNIT_DP).normalize())
        };
        Some(SizeTrend {
            key: self.key.clone(),
            first_usd,
            first_on: first.seen_on,
            latest_usd,
            latest_on,
            no_longer_listed_on,
            yearly_change_percent: yearly_change(
                first_usd,
                latest_usd,
                years_between(first.seen_on, latest_on),
            ),
            vcpu: self.vcpu,
            gpu: self.gpu.filter(|g| *g > 0),
            first_usd_per_vcpu: per(first_usd, self.vcpu),
            latest_usd_per_vcpu: per(latest_usd, self.vcpu),
            first_usd_per_gpu: per(first_usd, self.gpu),
            latest_usd_per_gpu: per(latest_usd, self.gpu),
        })
    }

    /// The yearly rate of change as a fraction (−0.2 for −20 % a year), for
    /// projections; `None` as for [`SizeTrend::yearly_change_percent`].
    pub fn yearly_change(&self, until: NaiveDate) -> Option<Decimal> {
        let trend = self.trend(until)?;
        yearly_change_fraction(
            trend.first_usd,
            trend.latest_usd,
            years_between(trend.first_on, trend.latest_on),
        )
    }
}

/// Years from `from` to `to` in calendar months: whole months, plus the days left
/// over the length of the month they fall in, over 12. Negative spans give 0.
pub fn years_between(from: NaiveDate, to: NaiveDate) -> Decimal {
    if to <= from {
        return Decimal::ZERO;
    }
    let mut months = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    let step = |m: i32| from.checked_add_months(Months::new(m.max(0) as u32));
    while months > 0 && step(months).is_none_or(|d| d > to) {
        months -= 1;
    }
    let (Some(start), Some(end)) = (step(months), step(months + 1)) else {
        return Decimal::ZERO;
    };
    let left = (to - start).num_days();
    let month_days = (end - start).num_days().max(1);
    (Decimal::from(months) + Decimal::from(left) / Decimal::from(month_days)) / Decimal::from(12)
}

fn yearly_change_fraction(first: Decimal, latest: Decimal, years: Decimal) -> Option<Decimal> {
    if years.is_zero() || first <= Decimal::ZERO || latest <= Decimal::ZERO {
        return None;
    }
    if first == latest {
        return Some(Decimal::ZERO);
    }
    let ratio = latest.checked_div(first)?;
    let exponent = Decimal::ONE.checked_div(years)?;
    ratio
        .checked_powd(exponent)
        .map(|factor| factor - Decimal::ONE)
}

fn yearly_change(first: Decimal, latest: Decimal, years: Decimal) -> Option<Decimal> {
    yearly_change_fraction(first, latest, years)
        .and_then(|f| f.checked_mul(Decimal::ONE_HUNDRED))
        .map(|p| {
            let mut p = p.round_dp(2);
            p.rescale(2);
            p
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn years_count_calendar_months() {
        assert_eq!(
            years_between(date(2024, 1, 1), date(2026, 1, 1)),
            Decimal::from(2)
        );
        assert_eq!(
            years_between(date(2024, 3, 1), date(2024, 9, 1)),
            Decimal::new(5, 1)
        );
        // 1 month and 14 of February 2025's 28 days: 1.5 months.
        assert_eq!(
            years_between(date(2025, 1, 1), date(2025, 2, 15)),
            Decimal::new(15, 1) / Decimal::from(12)
        );
        // The 31st plus a month is the end of the next month.
        assert_eq!(
            years_between(date(2025, 1, 31), date(2025, 2, 28)),
            Decimal::ONE / Decimal::from(12)
        );
        assert_eq!(
            years_between(date(2025, 1, 1), date(2025, 1, 1)),
            Decimal::ZERO
        );
        assert_eq!(
            years_between(date(2025, 2, 1), date(2025, 1, 1)),
            Decimal::ZERO
        );
    }

    #[test]
    fn yearly_change_is_the_compound_rate() {
        // 1.00 to 0.81 over 2 years: 0.81^(1/2) = 0.9, so −10 % a year.
        assert_eq!(
            yearly_change(Decimal::ONE, Decimal::new(81, 2), Decimal::from(2)),
            Some(Decimal::from(-10))
        );
        // 2.00 to 2.50 over half a year: 1.25^2 = 1.5625, so +56.25 % a year.
        assert_eq!(
            yearly_change(Decimal::from(2), Decimal::new(25, 1), Decimal::new(5, 1)),
            Some(Decimal::new(5625, 2))
        );
        assert_eq!(
            yearly_change(Decimal::ONE, Decimal::ONE, Decimal::from(3)),
            Some(Decimal::ZERO)
        );
        assert_eq!(
            yearly_change(Decimal::ONE, Decimal::TWO, Decimal::ZERO),
            None
        );
    }
}
