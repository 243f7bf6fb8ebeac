//! Checked decimal arithmetic: every step of the comparison fits in a `Decimal` or
//! says so. `rust_decimal`'s operators panic on overflow; these never do.
//!
//! A step answers [`Overflow`], which the caller turns into a
//! [`CompareError::Overflow`] naming the figure it was computing
//! ([`Overflow::of`]).

use rust_decimal::Decimal;

use super::CompareError;

/// A step that did not fit in a `Decimal` (magnitude above about 7.9 × 10^28), or a
/// division by zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

impl Overflow {
    /// The error for the figure `what` (e.g. "the cost of plan `per token` for
    /// 10^15 calls per month"), with what to do.
    pub(crate) fn of(self, what: impl Into<String>, hint: impl Into<String>) -> CompareError {
        CompareError::Overflow {
            what: what.into(),
            hint: hint.into(),
        }
    }
}

/// What to do when a plan's price times the profile's volume overflows.
pub(crate) const HINT_INPUTS: &str = "the inputs multiply to more than an exact decimal holds: \
     check the units of the prices (per call, per token, per hour, per GB) and lower the \
     prices, fees or volumes (calls, tokens or bytes per call)";

pub(crate) fn add(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_add(b).ok_or(Overflow)
}

pub(crate) fn sub(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_sub(b).ok_or(Overflow)
}

pub(crate) fn mul(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_mul(b).ok_or(Overflow)
}

/// `a / b`; dividing by zero is an [`Overflow`] too.
pub(crate) fn div(a: Decimal, b: Decimal) -> Result<Decimal, Overflow> {
    a.checked_div(b).ok_or(Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_beyond_a_decimal_are_overflows_not_panics() {
        assert_eq!(add(Decimal::MAX, Decimal::ONE), Err(Overflow));
        assert_eq!(sub(Decimal::MIN, Decimal::ONE), Err(Overflow));
        assert_eq!(mul(Decimal::MAX, Decimal::TWO), Err(Overflow));
        assert_eq!(div(Decimal::MAX, Decimal::new(5, 1)), Err(Overflow));
        assert_eq!(div(Decimal::ONE, Decimal::ZERO), Err(Overflow));
    }

    #[test]
    fn steps_that_fit_are_exact() {
        // 0.1 + 0.2 = 0.3; 0.3 − 0.1 = 0.2; 1.5 × 4 = 6; 1 / 8 = 0.125
        assert_eq!(
            add(Decimal::new(1, 1), Decimal::new(2, 1)),
            Ok(Decimal::new(3, 1))
        );
        assert_eq!(
            sub(Decimal::new(3, 1), Decimal::new(1, 1)),
            Ok(Decimal::new(2, 1))
        );
        assert_eq!(
            mul(Decimal::new(15, 1), Decimal::from(4)),
            Ok(Decimal::from(6))
        );
        assert_eq!(
            div(Decimal::ONE, Decimal::from(8)),
            Ok(Decimal::new(125, 3))
        );
    }
}
