//! Prices that move: how fast AWS on-demand prices change, as a factor per month.
//!
//! A [`TrendRate`] is a change per month or per year (`-20%/year`, `-1.5%/month`); a
//! [`PriceTrend`] says which rate each AWS price follows (one for all, or one per
//! [`PriceKey`], as a trend measured from price history would). The
//! [`Projection`](super::Projection) turns them into plan costs month by month.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::CompareError;
use super::arith::{Overflow, add, div, mul, sub};
use crate::pricing::PriceKey;

/// Decimal places of every trend factor: the monthly factor a rate gives, and the
/// factor of each month (`monthly factor^(k − 1)`, computed at full decimal precision
/// and then rounded). Twelve places keep a factor within 5 × 10^-13 of the exact
/// power, so a year of compounded factors lands within 10^-11 of the yearly change
/// (`0.981576529874^12 = 0.800000000002…` for −20 %/year), far below a cent on any
/// modelled cost.
pub const FACTOR_DP: u32 = 12;

/// The largest rise a trend may state: +1,000 % a year (prices × 11), or the monthly
/// rate that compounds to it (about +22.1 % a month: 1.2212^12 is just above 11).
pub const MAX_YEARLY_CHANGE_PERCENT: u32 = 1000;

/// How the forms of a trend are written, for error messages.
const TREND_FORMS: &str = "write the change of AWS on-demand prices as a percentage per \
     year or per month, with its sign: -20%/year, -1.5%/month or +5%/year";

/// What a [`TrendRate`]'s change is per.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendPer {
    /// A change per month (730 hours), compounded month by month.
    Month,
    /// A change per year, spread evenly over its twelve months.
    Year,
}

impl TrendPer {
    /// `month` or `year`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrendPer::Month => "month",
            TrendPer::Year => "year",
        }
    }
}

/// A rate of change of prices: `change` per month or per year, as a fraction
/// (−0.2 per year = prices fall 20 % a year).
///
/// Prices compound month by month. The first month of a projection is at today's
/// price; month `k` is at `monthly factor^(k − 1)` of it. A monthly change `m` has the
/// factor `1 + m`; a yearly change `y` has the factor `(1 + y)^(1/12)`, so that twelve
/// months compound to the year's change. Factors are rounded to [`FACTOR_DP`] decimal
/// places.
///
/// ```
/// use sagemeter::compare::{TrendPer, TrendRate};
/// use sagemeter::Decimal;
///
/// let rate: TrendRate = "-20%/year".parse()?;
/// assert_eq!(rate.change, Decimal::new(-2, 1));
/// assert_eq!(rate.per, TrendPer::Year);
/// // 0.8^(1/12) = 0.98157652987375…, to 12 places
/// assert_eq!(rate.monthly_factor()?, Decimal::new(981_576_529_874, 12));
/// assert_eq!(rate.to_string(), "-20%/year");
///
/// // 1 − 0.015 = 0.985 a month
/// let monthly = TrendRate::per_month(Decimal::new(-15, 3))?;
/// assert_eq!(monthly.monthly_factor()?, Decimal::new(985, 3));
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrendRate {
    /// The change per [`per`](Self::per), as a fraction: −0.2 = 20 % cheaper.
    pub change: Decimal,
    /// What the change is per.
    pub per: TrendPer,
}

impl TrendRate {
    /// A change per year, as a fraction (−0.2 for −20 %/year), normalised (−0.20
    /// becomes −0.2).
    pub fn per_year(change: Decimal) -> Result<Self, CompareError> {
        let rate = TrendRate {
            change: change.normalize(),
            per: TrendPer::Year,
        };
        rate.validate()?;
        Ok(rate)
    }

    /// A change per month, as a fraction (−0.015 for −1.5 %/month).
    pub fn per_month(change: Decimal) -> Result<Self, CompareError> {
        let rate = TrendRate {
            change: change.normalize(),
            per: TrendPer::Month,
        };
        rate.validate()?;
        Ok(rate)
    }

    /// Prices that stay as they are (0 %/year).
    pub fn flat() -> Self {
        TrendRate {
            change: Decimal::ZERO,
            per: TrendPer::Year,
        }
    }

    /// Whether prices stay as they are.
    pub fn is_flat(&self) -> bool {
        self.change.is_zero()
    }

    /// Checks the range: above −100 % (a price cannot fall to nothing) and at most
    /// +1,000 % a year, or the monthly rate that compounds to it. Constructors and
    /// parsing call it; call it yourself on a deserialised rate.
    pub fn validate(&self) -> Result<(), CompareError> {
        let out_of_range = |hint: &str| CompareError::OutOfRange {
            what: "price trend",
            value: self.to_string(),
            hint: hint.into(),
        };
        if self.change <= -Decimal::ONE {
            return Err(out_of_range(
                "prices cannot fall by 100% or more: give a change above -100%, e.g. -20%/year",
            ));
        }
        let most = Decimal::from(MAX_YEARLY_CHANGE_PERCENT) / Decimal::from(100);
        let too_steep = "at most +1000%/year (about +22.1%/month) is modelled";
        let yearly_growth = match self.per {
            TrendPer::Year => add(Decimal::ONE, self.change).ok(),
            TrendPer::Month => add(Decimal::ONE, self.change)
                .and_then(|g| power(g, 12))
                .ok(),
        };
        match yearly_growth {
            Some(growth) if growth <= Decimal::ONE + most => {}
            _ => return Err(out_of_range(too_steep)),
        }
        if self.monthly_factor_unchecked().is_none_or(|g| g.is_zero()) {
            return Err(out_of_range(
                "a fall this close to -100% leaves no price after a month; give a gentler \
                 change",
            ));
        }
        Ok(())
    }

    /// The factor prices are multiplied by from one month to the next, rounded to
    /// [`FACTOR_DP`] places: `1 + m` for a monthly change, `(1 + y)^(1/12)` for a
    /// yearly one (computed by Newton's method on decimals, to about 26 places before
    /// rounding).
    pub fn monthly_factor(&self) -> Result<Decimal, CompareError> {
        self.validate()?;
        self.monthly_factor_unchecked()
            .ok_or_else(|| CompareError::OutOfRange {
                what: "price trend",
                value: self.to_string(),
                hint: TREND_FORMS.into(),
            })
    }

    fn monthly_factor_unchecked(&self) -> Option<Decimal> {
        let growth = add(Decimal::ONE, self.change).ok()?;
        let factor = match self.per {
            TrendPer::Month => growth,
            TrendPer::Year => twelfth_root(growth).ok()?,
        };
        Some(round_factor(factor))
    }
}

impl fmt::Display for TrendRate {
    /// `-20%/year`, `+5%/year`, `-1.5%/month`, `0%/year`: the form it is parsed from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = self
            .change
            .checked_mul(Decimal::ONE_HUNDRED)
            .map(|p| {
                if p.is_zero() {
                    "0".to_string()
                } else {
                    p.normalize().to_string()
                }
            })
            .unwrap_or_else(|| format!("{} × 100", self.change.normalize()));
        let sign = if self.change > Decimal::ZERO { "+" } else { "" };
        write!(f, "{sign}{percent}%/{}", self.per.as_str())
    }
}

impl FromStr for TrendRate {
    type Err = CompareError;

    /// `-20%/year`, `-1.5%/month`, `+5%/year` (also `/yr`, `/y`, `/mo`, `/m`, and `−`
    /// for the minus sign).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unparsable = || CompareError::Unparsable {
            what: "a price trend",
            value: s.to_string(),
            hint: TREND_FORMS.into(),
        };
        let (amount, per) = s.trim().split_once('/').ok_or_else(unparsable)?;
        let per = match per.trim().to_ascii_lowercase().as_str() {
            "year" | "yr" | "y" => TrendPer::Year,
            "month" | "mo" | "m" => TrendPer::Month,
            _ => return Err(unparsable()),
        };
        let amount = amount
            .trim()
            .strip_suffix('%')
            .ok_or_else(unparsable)?
            .trim()
            .replace('\u{2212}', "-");
        let digits = amount.strip_prefix('+').unwrap_or(&amount);
        if amount.starts_with('+') && digits.starts_with(['+', '-']) {
            return Err(unparsable());
        }
        let percent = Decimal::from_str(digits).map_err(|_| unparsable())?;
        let change = div(percent, Decimal::ONE_HUNDRED).map_err(|_| unparsable())?;
        let rate = TrendRate {
            change: change.normalize(),
            per,
        };
        rate.validate()?;
        Ok(rate)
    }
}

/// Which rate of change each AWS price follows.
///
/// One rate for every price ([`PriceTrend::Uniform`], what the CLI's `--price-trend
/// -20%/year` states), or a rate per [`PriceKey`] with one for the others
/// ([`PriceTrend::PerKey`], what a trend measured from price history gives). Only AWS
/// on-demand rates follow a trend; see [`Projection`](super::Projection) for what is
/// held at today's price.
///
/// ```
/// use sagemeter::compare::{PriceTrend, TrendRate};
/// use sagemeter::pricing::PriceKey;
/// use sagemeter::Decimal;
///
/// let measured = PriceTrend::per_key(
///     [(PriceKey::hosting("us-east-1", "ml.g5.xlarge"), "-18%/year".parse()?)],
///     TrendRate::flat(),
/// )?;
/// let data = PriceKey::DataIn { region: "us-east-1".into() };
/// assert_eq!(measured.rate_for(&data), TrendRate::flat());
/// assert_eq!(PriceTrend::from(TrendRate::per_year(Decimal::new(-2, 1))?).to_string(), "-20%/year");
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriceTrend {
    /// Every AWS on-demand rate changes at `rate`.
    Uniform {
        /// The rate of change.
        rate: TrendRate,
    },
    /// Each listed price at its own rate, every other price at `otherwise`.
    PerKey {
        /// The rate of each price key.
        rates: Vec<KeyTrend>,
        /// The rate of the prices not listed.
        otherwise: TrendRate,
    },
}

/// One price key's rate of change, in a [`PriceTrend::PerKey`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTrend {
    /// The price.
    pub key: PriceKey,
    /// Its rate of change.
    pub rate: TrendRate,
}

impl KeyTrend {
    /// `key` changes at `rate`.
    pub fn new(key: PriceKey, rate: TrendRate) -> Self {
        KeyTrend { key, rate }
    }
}

impl From<TrendRate> for PriceTrend {
    fn from(rate: TrendRate) -> Self {
        PriceTrend::Uniform { rate }
    }
}

impl PriceTrend {
    /// Every AWS on-demand rate changes at `rate`.
    pub fn uniform(rate: TrendRate) -> Self {
        PriceTrend::Uniform { rate }
    }

    /// A rate per price key (a key listed twice keeps its last rate), `otherwise` for
    /// the prices not listed. Every rate is validated.
    pub fn per_key(
        rates: impl IntoIterator<Item = (PriceKey, TrendRate)>,
        otherwise: TrendRate,
    ) -> Result<Self, CompareError> {
        let mut list: Vec<KeyTrend> = Vec::new();
        for (key, rate) in rates {
            match list.iter_mut().find(|k| k.key == key) {
                Some(known) => known.rate = rate,
                None => list.push(KeyTrend::new(key, rate)),
            }
        }
        let trend = PriceTrend::PerKey {
            rates: list,
            otherwise,
        };
        trend.validate()?;
        Ok(trend)
    }

    /// The rate the price `key` follows.
    pub fn rate_for(&self, key: &PriceKey) -> TrendRate {
        match self {
            PriceTrend::Uniform { rate } => *rate,
            PriceTrend::PerKey { rates, otherwise } => rates
                .iter()
                .rev()
                .find(|k| &k.key == key)
                .map_or(*otherwise, |k| k.rate),
        }
    }

    /// Every rate the trend states, each once, in order (the uniform rate; or the
    /// keys' rates, then `otherwise`).
    pub fn rates(&self) -> Vec<TrendRate> {
        let all: Vec<TrendRate> = match self {
            PriceTrend::Uniform { rate } => vec![*rate],
            PriceTrend::PerKey { rates, otherwise } => rates
                .iter()
                .map(|k| k.rate)
                .chain(std::iter::once(*otherwise))
                .collect(),
        };
        let mut distinct: Vec<TrendRate> = Vec::new();
        for rate in all {
            if !distinct.contains(&rate) {
                distinct.push(rate);
            }
        }
        distinct
    }

    /// Checks every rate (see [`TrendRate::validate`]).
    pub fn validate(&self) -> Result<(), CompareError> {
        self.rates().iter().try_for_each(TrendRate::validate)
    }
}

impl fmt::Display for PriceTrend {
    /// The uniform rate (`-20%/year`), or `per-price trends` for a trend per key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PriceTrend::Uniform { rate } => write!(f, "{rate}"),
            PriceTrend::PerKey { .. } => f.write_str("per-price trends"),
        }
    }
}

/// `x` rounded to [`FACTOR_DP`] places, half away from zero.
pub(crate) fn round_factor(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(FACTOR_DP, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// `base^n` by repeated checked multiplication (each product rounded to a decimal's
/// 28 significant digits).
pub(crate) fn power(base: Decimal, n: u32) -> Result<Decimal, Overflow> {
    (0..n).try_fold(Decimal::ONE, |acc, _| mul(acc, base))
}

/// The positive twelfth root of `a > 0`, by Newton's method on `g^12 = a`:
/// `g ← (11 g + a / g^11) / 12`.
///
/// Starting from `1 + (a − 1) / 12`, which is never below the root (Bernoulli's
/// inequality), the iterates fall monotonically to it; the loop stops when they stop
/// falling, i.e. at the decimal's precision.
///
/// A decimal has at most 28 places, so `g^11` of a small `g` keeps few significant
/// digits: below 10^-12, `a` is scaled by 10^12 (its root by 10) until it is not.
pub(crate) fn twelfth_root(a: Decimal) -> Result<Decimal, Overflow> {
    if a <= Decimal::ZERO {
        return Err(Overflow);
    }
    let small = Decimal::new(1, 12);
    let (mut a, mut shift) = (a, 0u32);
    while a < small {
        a = mul(a, Decimal::from(1_000_000_000_000u64))?;
        shift += 1;
    }
    let root = newton_twelfth_root(a)?;
    (0..shift).try_fold(root, |r, _| div(r, Decimal::TEN))
}

fn newton_twelfth_root(a: Decimal) -> Result<Decimal, Overflow> {
    let twelve = Decimal::from(12);
    let eleven = Decimal::from(11);
    let mut g = add(Decimal::ONE, div(sub(a, Decimal::ONE)?, twelve)?)?;
    // From far above a tiny root the iterates shrink by 11/12 a step: a few hundred
    // steps reach any root a decimal holds, then convergence is quadratic.
    for _ in 0..1000 {
        let next = div(add(mul(eleven, g)?, div(a, power(g, 11)?)?)?, twelve)?;
        if next >= g {
            break;
        }
        g = next;
    }
    Ok(g)
}

/// The shortest span a yearly change is measured over for a projection: 365 days
/// from the date a rate was first listed on to where its span ends (the last date
/// asked for when it is still listed; for a size no longer listed, the date it was
/// first seen no longer listed).
///
/// Compounding a shorter span to a year magnifies one price change out of all
/// proportion: a rate listed at 1.00 on 2026-11-01 and 1.25 from 2026-12-01, measured
/// to 2026-12-02 (1 month and 1 day, 0.086 years), would be
/// 1.25^(1/0.086) − 1 ≈ +1,240 % a year. Such a rate is held flat instead, with a note.
pub const MIN_MEASURED_SPAN_DAYS: i64 = 365;

/// A trend measured from the AWS Price List's history, with what it could not
/// measure.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredTrend {
    /// Each instance-hour and serverless rate (provisioned concurrency's included) at
    /// its measured yearly change; every other price flat.
    pub trend: PriceTrend,
    /// One line per rate: its measured change, or why it stays flat.
    pub notes: Vec<String>,
}

impl MeasuredTrend {
    /// Measures the trend of each instance-hour rate (real-time and asynchronous) and
    /// serverless rate (on demand, and provisioned concurrency's standing charge and
    /// inference duration) `comparison` uses: its yearly change in the published price list versions from `since`
    /// ([`KeyHistory::yearly_change`](crate::pricing::history::KeyHistory::yearly_change):
    /// first to latest listed rate, compounded yearly). Data-processed and ML storage
    /// rates stay flat (AWS has not published a change to them), as does a rate the
    /// versions never list, one listed for less than [`MIN_MEASURED_SPAN_DAYS`], and
    /// one whose measured change is outside what a [`TrendRate`] models (see
    /// [`TrendRate::validate`]); the notes say which and why. A history that cannot be
    /// read whole is an error: a change could hide in a missing version.
    pub async fn from_history(
        comparison: &super::Comparison,
        history: &crate::pricing::history::PriceListHistory,
        since: chrono::NaiveDate,
    ) -> Result<MeasuredTrend, CompareError> {
        let mut keys: Vec<PriceKey> = Vec::new();
        for row in &comparison.plans {
            for rate in &row.rates {
                // Every instance-hour and serverless rate, provisioned concurrency's
                // two included; data processed and ML storage stay flat.
                let measured = match rate.key {
                    PriceKey::Hosting { .. }
                    | PriceKey::AsyncInference { .. }
                    | PriceKey::Serverless { .. }
                    | PriceKey::ProvisionedConcurrency { .. }
                    | PriceKey::ProvisionedConcurrencyUsage { .. } => true,
                    PriceKey::DataIn { .. }
                    | PriceKey::DataOut { .. }
                    | PriceKey::Storage { .. } => false,
                };
                if measured && !keys.contains(&rate.key) {
                    keys.push(rate.key.clone());
                }
            }
        }
        keys.sort();
        let mut rates = Vec::new();
        let mut notes = Vec::new();
        for key in keys {
            let found = history.history(&key, since).await?;
            let series = found.series.iter().find(|s| s.key == key);
            let span = series.and_then(|s| s.trend(found.until));
            let change = series.and_then(|s| s.yearly_change(found.until));
            let versions = found.versions.len();
            match (span, change) {
                (Some(span), Some(_))
                    if (span.latest_on - span.first_on).num_days() < MIN_MEASURED_SPAN_DAYS =>
                {
                    notes.push(format!(
                        "{key}: listed from {} to {} only ({} days), too short to measure a \
                         yearly change (at least {MIN_MEASURED_SPAN_DAYS} days); held flat",
                        span.first_on,
                        span.latest_on,
                        (span.latest_on - span.first_on).num_days()
                    ));
                }
                (_, Some(change)) => {
                    // Rounded to 4 places (0.01 %): the measurement is no finer.
                    let change = change.round_dp(4);
                    match TrendRate::per_year(change) {
                        Ok(rate) => {
                            notes.push(format!(
                                "{key}: {rate} measured from {versions} Price List version(s) \
                                 since {since}"
                            ));
                            rates.push((key, rate));
                        }
                        Err(_) => {
                            let sign = if change > Decimal::ZERO { "+" } else { "" };
                            let percent = change.checked_mul(Decimal::ONE_HUNDRED).map_or_else(
                                || format!("{change} × 100"),
                                |p| p.normalize().to_string(),
                            );
                            notes.push(format!(
                                "{key}: the measured change of {sign}{percent}%/year since \
                                 {since} is outside what is modelled (above -100%, at most \
                                 +{MAX_YEARLY_CHANGE_PERCENT}%/year); held flat"
                            ));
                        }
                    }
                }
                _ => notes.push(format!(
                    "{key}: not listed long enough since {since} to measure; held flat"
                )),
            }
        }
        Ok(MeasuredTrend {
            trend: PriceTrend::per_key(rates, TrendRate::flat())?,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn a_yearly_rate_becomes_the_twelfth_root_of_its_growth_to_twelve_places() {
        // 0.8^(1/12) = 0.981576529873751673626…
        let rate = TrendRate::per_year(d("-0.2")).unwrap();
        assert_eq!(rate.monthly_factor().unwrap(), d("0.981576529874"));
        // 1.05^(1/12) = 1.004074123783…
        let rate = TrendRate::per_year(d("0.05")).unwrap();
        assert_eq!(rate.monthly_factor().unwrap(), d("1.004074123784"));
        // flat: exactly 1
        assert_eq!(TrendRate::flat().monthly_factor().unwrap(), Decimal::ONE);
    }

    #[test]
    fn twelve_compounded_months_give_the_yearly_change_within_rounding() {
        // 0.981576529874^12 = 0.800000000002428…: the 12-place factor is 1.3 × 10^-13
        // above the exact root, twelve times ≈ 2.4 × 10^-12 above 0.8.
        let g = TrendRate::per_year(d("-0.2"))
            .unwrap()
            .monthly_factor()
            .unwrap();
        let year = power(g, 12).unwrap();
        assert!((year - d("0.8")).abs() < d("0.00000000001"), "{year}");
    }

    #[test]
    fn the_twelfth_root_is_exact_to_a_decimals_precision() {
        // 2^12 = 4096; 0.5^12 = 0.000244140625
        assert_eq!(round_factor(twelfth_root(d("4096")).unwrap()), d("2"));
        assert_eq!(
            round_factor(twelfth_root(d("0.000244140625")).unwrap()),
            d("0.5")
        );
        assert_eq!(twelfth_root(Decimal::ONE).unwrap(), Decimal::ONE);
        // the smallest positive decimal: (10^-28)^(1/12) = 0.004641588833612…
        let tiny = twelfth_root(Decimal::new(1, 28)).unwrap();
        assert_eq!(round_factor(tiny), d("0.004641588834"));
        assert_eq!(twelfth_root(Decimal::ZERO), Err(Overflow));
    }

    #[test]
    fn trends_are_written_as_they_are_parsed() {
        for (text, change, per) in [
            ("-20%/year", "-0.2", TrendPer::Year),
            ("-1.5%/month", "-0.015", TrendPer::Month),
            ("+5%/year", "0.05", TrendPer::Year),
            ("5%/yr", "0.05", TrendPer::Year),
            (" \u{2212}3 % / mo ", "-0.03", TrendPer::Month),
            ("0%/y", "0", TrendPer::Year),
        ] {
            let rate: TrendRate = text.parse().unwrap();
            assert_eq!((rate.change, rate.per), (d(change), per), "{text}");
        }
        assert_eq!(
            "-20%/year".parse::<TrendRate>().unwrap().to_string(),
            "-20%/year"
        );
        assert_eq!(
            "+5%/yr".parse::<TrendRate>().unwrap().to_string(),
            "+5%/year"
        );
        assert_eq!(
            "-1.50%/m".parse::<TrendRate>().unwrap().to_string(),
            "-1.5%/month"
        );
    }

    #[test]
    fn a_trend_in_another_form_names_the_forms_accepted() {
        for text in [
            "-20%",
            "-20/year",
            "-0.2/year",
            "-20%/week",
            "history",
            "+-5%/year",
            "",
        ] {
            let err = text.parse::<TrendRate>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "`{text}` is not a price trend: write the change of AWS on-demand prices \
                     as a percentage per year or per month, with its sign: -20%/year, \
                     -1.5%/month or +5%/year"
                )
            );
        }
    }

    #[test]
    fn a_trend_must_leave_a_price_and_rise_at_most_tenfold_a_year() {
        let err = "-100%/year".parse::<TrendRate>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "price trend is out of range (got -100%/year): prices cannot fall by 100% or \
             more: give a change above -100%, e.g. -20%/year"
        );
        assert!("-99.9%/year".parse::<TrendRate>().is_ok());
        assert!("+1000%/year".parse::<TrendRate>().is_ok());
        // 1.2211^12 = 10.990… ≤ 11; 1.2212^12 = 11.001… > 11
        assert!("+22.11%/month".parse::<TrendRate>().is_ok());
        for text in ["+1000.1%/year", "+22.12%/month", "+100000%/month"] {
            let err = text.parse::<TrendRate>().unwrap_err();
            assert!(
                err.to_string().contains("at most +1000%/year"),
                "{text}: {err}"
            );
        }
        // −99.99999999999999 %/month: a factor of 10^-16 a month rounds to 0
        let err = "-99.99999999999999%/month"
            .parse::<TrendRate>()
            .unwrap_err();
        assert!(err.to_string().contains("no price after a month"), "{err}");
    }

    #[test]
    fn a_trend_per_key_gives_each_price_its_rate_and_the_rest_the_default() {
        let g5 = PriceKey::hosting("us-east-1", "ml.g5.xlarge");
        let m5 = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let falling: TrendRate = "-18%/year".parse().unwrap();
        let steeper: TrendRate = "-25%/year".parse().unwrap();
        let trend = PriceTrend::per_key(
            [(g5.clone(), falling), (g5.clone(), steeper)],
            TrendRate::flat(),
        )
        .unwrap();
        assert_eq!(trend.rate_for(&g5), steeper);
        assert_eq!(trend.rate_for(&m5), TrendRate::flat());
        assert_eq!(trend.rates(), vec![steeper, TrendRate::flat()]);
        let json = serde_json::to_value(&trend).unwrap();
        assert_eq!(json["kind"], "per_key");
        assert_eq!(
            json["otherwise"],
            serde_json::json!({"change": "0", "per": "year"})
        );
        assert_eq!(serde_json::from_value::<PriceTrend>(json).unwrap(), trend);
    }
}
