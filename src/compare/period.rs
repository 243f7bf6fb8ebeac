//! Billing periods and how long they are.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::CompareError;

/// A billing period: what a subscription fee is charged for and what a comparison
/// prices.
///
/// Lengths follow the AWS Pricing Calculator, so that figures here match the ones a
/// team sees there:
///
/// | period | hours | days |
/// | --- | --- | --- |
/// | [`Period::Day`] | 24 | 1 |
/// | [`Period::Month`] | 730 | 730 / 24 = 30.41666… |
/// | [`Period::Year`] | 8,760 (= 12 × 730) | 365 |
///
/// Calls per period and calls per day are related through hours:
/// `calls_per_period = calls_per_day × hours(period) / 24`, so 1,000 calls a day are
/// 30,416.67 calls a month and 365,000 calls a year.
///
/// ```
/// use sagemeter::compare::Period;
/// use sagemeter::Decimal;
///
/// assert_eq!(Period::Month.hours(), Decimal::from(730));
/// assert_eq!("year".parse::<Period>().unwrap(), Period::Year);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// 24 hours.
    Day,
    /// 730 hours (AWS calculators' month).
    Month,
    /// 8,760 hours (365 days, 12 months of 730 hours).
    Year,
}

impl Period {
    /// Hours in one period.
    pub fn hours(self) -> Decimal {
        Decimal::from(self.whole_hours())
    }

    /// Seconds in one period.
    pub fn seconds(self) -> Decimal {
        Decimal::from(self.whole_hours() * 3600)
    }

    /// Days in one period (`hours / 24`; not a whole number for a month).
    pub fn days(self) -> Decimal {
        self.hours() / Decimal::from(24)
    }

    /// How many of `other` fit in one `self` (e.g. 12 months in a year, 1/12 of a
    /// year in a month). Used to amortise fees charged per `other` over `self`.
    pub fn in_units_of(self, other: Period) -> Decimal {
        self.hours() / other.hours()
    }

    /// Lower-case name: `day`, `month`, `year`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Year => "year",
        }
    }

    pub(crate) fn whole_hours(self) -> u64 {
        match self {
            Period::Day => 24,
            Period::Month => 730,
            Period::Year => 8760,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Period {
    type Err = CompareError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "day" | "daily" | "d" => Ok(Period::Day),
            "month" | "monthly" | "mo" => Ok(Period::Month),
            "year" | "yearly" | "annual" | "y" => Ok(Period::Year),
            _ => Err(CompareError::UnknownPeriod(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_is_twelve_months_of_730_hours() {
        assert_eq!(Period::Year.in_units_of(Period::Month), Decimal::from(12));
        assert_eq!(Period::Year.days(), Decimal::from(365));
        assert_eq!(Period::Day.seconds(), Decimal::from(86_400));
    }

    #[test]
    fn unknown_period_names_the_valid_ones() {
        let err = "fortnight".parse::<Period>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown period `fortnight`: use day, month or year"
        );
    }
}
