//! The error type of the comparison.

use crate::pricing::PriceKey;

/// What was wrong with a plan, a usage profile or a comparison, and what to do.
///
/// Every message names the input that is wrong, the value it had, and how to fix it:
///
/// ```
/// use sagemeter::compare::PerInferencePlan;
/// use sagemeter::Decimal;
///
/// let err = PerInferencePlan::per_call(Decimal::from(-1)).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "price per call (USD) must be greater than zero (got -1): a free plan needs no \
///      comparison; give the price the provider charges per call"
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    /// A value that must be positive is zero or negative.
    #[error("{what} must be greater than zero (got {value}): {hint}")]
    NotPositive {
        /// The input, with its unit.
        what: &'static str,
        /// The value given.
        value: String,
        /// What to do.
        hint: String,
    },
    /// A value that may be zero is negative.
    #[error("{what} must not be negative (got {value}): {hint}")]
    Negative {
        /// The input, with its unit.
        what: &'static str,
        /// The value given.
        value: String,
        /// What to do.
        hint: String,
    },
    /// A value outside the range the model allows.
    #[error("{what} is out of range (got {value}): {hint}")]
    OutOfRange {
        /// The input, with its unit.
        what: &'static str,
        /// The value given.
        value: String,
        /// The allowed range and what to do.
        hint: String,
    },
    /// Inputs that do not make a plan or profile together.
    #[error("{problem}: {hint}")]
    Inconsistent {
        /// What does not fit.
        problem: String,
        /// What to do.
        hint: String,
    },
    /// A value written in a form that is not understood (e.g. a price trend).
    #[error("`{value}` is not {what}: {hint}")]
    Unparsable {
        /// What the value should have been, with its article (`a price trend`).
        what: &'static str,
        /// The value given.
        value: String,
        /// The forms accepted.
        hint: String,
    },
    /// A period name that is not `day`, `month` or `year`.
    #[error("unknown period `{0}`: use day, month or year")]
    UnknownPeriod(String),
    /// A plan needs a figure the usage profile does not have (e.g. tokens per call
    /// for a per-token plan, mean latency for serverless).
    #[error("plan `{plan}` needs {what} in the usage profile: {hint}")]
    ProfileLacks {
        /// The plan's name.
        plan: String,
        /// The missing figure.
        what: &'static str,
        /// How to provide it.
        hint: String,
    },
    /// A plan needs a rate (instance-hour, serverless second, data GB) that the
    /// price source could not give. Never priced at $0.
    #[error("no rate for {key} (needed by plan `{plan}`): {reason}")]
    MissingRate {
        /// The plan that needs it.
        plan: String,
        /// The key that has no rate.
        key: PriceKey,
        /// Why the price source had none.
        reason: String,
    },
    /// The price history a measured trend needs could not be read (whole).
    #[error("the price trend could not be measured: {0}")]
    History(#[from] crate::pricing::history::HistoryError),
    /// A figure of the comparison is too large for an exact decimal (magnitude above
    /// about 7.9 × 10^28 USD or calls): the inputs multiply beyond it. Never a
    /// wrapped, rounded or clamped figure, never a panic.
    #[error("{what} is too large to compute exactly (above about 7.9 × 10^28): {hint}")]
    Overflow {
        /// The figure that overflowed, with the plan(s) it belongs to.
        what: String,
        /// What to do.
        hint: String,
    },
    /// Nothing to compare.
    #[error(
        "nothing to compare: give at least one plan (e.g. a price per call and a subscription)"
    )]
    NoPlans,
    /// Two plans share a name, so rows and break-even points could not be told apart.
    #[error("two plans are named `{0}`: give each plan a distinct name with Plan::named(..)")]
    DuplicatePlanName(String),
    /// The chart could not be drawn or written.
    #[error("could not draw the chart to {path}: {reason}")]
    Chart {
        /// Where the chart was to be written.
        path: String,
        /// What went wrong.
        reason: String,
    },
}
