//! The fleet table's keys and its one unit of money, in pure functions.
//!
//! Every item is a scope's spend (and budget, and the leases of it) in one
//! period: partition key `pk` = `scope#<scope>`, sort key `sk` = `<period>#<start>`.
//!
//! `<scope>` is `fleet` (every call), `endpoint:<name>` or `tag:<key>=<value>`;
//! `<period>#<start>` is `hour#2026-12-01T20`, `day#2026-12-01` or `month#2026-12`
//! (UTC). Money is integer pico-USD (10⁻¹² USD, the receipts' precision).

use crate::budget::{BudgetPeriod, BudgetScope};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// Decimal places of a pico-USD.
pub(crate) const PICO_SCALE: u32 = 12;

/// What an endpoint's partition key ([`scope_pk`]) is its name behind.
pub(crate) const ENDPOINT_PK_PREFIX: &str = "scope#endpoint:";

/// The partition key of `scope`'s items.
pub(crate) fn scope_pk(scope: &BudgetScope) -> String {
    match scope {
        BudgetScope::Client => "scope#fleet".to_owned(),
        BudgetScope::Endpoint { name } => format!("{ENDPOINT_PK_PREFIX}{name}"),
        BudgetScope::Tag { key, value } => format!("scope#tag:{key}={value}"),
        // Refused by `check_scope`: named apart all the same.
        BudgetScope::EachTagValue { key } => format!("scope#each-tag:{key}"),
    }
}

/// The most bytes DynamoDB takes in a partition key value (UTF-8).
pub(crate) const MAX_PK_BYTES: usize = 2048;

/// Whether the table can keep `scope`'s budget: [`scope_pk`] names it alone (not
/// a tag key holding `=`, whose `tag:<key>=<value>` would also be another tag's:
/// `a=b`=`c` and `a`=`b=c`) in at most [`MAX_PK_BYTES`] (DynamoDB refuses every
/// request of a longer key), and it is one budget (not one per tag value, whose
/// values are not known ahead). Else what is wrong, and what to do.
pub(crate) fn check_scope(scope: &BudgetScope) -> Result<(), (String, &'static str)> {
    let too_long = |what: &str, hint| {
        let bytes = scope_pk(scope).len();
        (bytes > MAX_PK_BYTES).then(|| {
            (
                format!(
                    "a fleet budget's {what} makes its table key {bytes} bytes long, more than \
                     the {MAX_PK_BYTES} DynamoDB takes"
                ),
                hint,
            )
        })
    };
    let long = match scope {
        BudgetScope::Tag { key, .. } if key.contains('=') => {
            return Err((
                format!("a fleet budget's tag key cannot hold `=` (got `{key}`)"),
                "its table item would be shared with another tag's",
            ));
        }
        BudgetScope::EachTagValue { key } => {
            return Err((
                format!("a budget for each value of tag `{key}` is not kept across a fleet"),
                "give each value its own BudgetScope::tag budget, or keep this one without \
                 the fleet",
            ));
        }
        BudgetScope::Tag { .. } => too_long(
            "tag key and value",
            "keep the tag's key and value within 2,037 bytes together (UTF-8), or keep this \
             budget without the fleet",
        ),
        BudgetScope::Endpoint { .. } => too_long(
            "endpoint name",
            "name the endpoint as SageMaker does (at most 63 characters)",
        ),
        BudgetScope::Client => None,
    };
    long.map_or(Ok(()), Err)
}

/// The scope a partition key names (the inverse of [`scope_pk`]).
pub(crate) fn scope_of_pk(pk: &str) -> Option<BudgetScope> {
    let scope = pk.strip_prefix("scope#")?;
    if scope == "fleet" {
        return Some(BudgetScope::Client);
    }
    if let Some(name) = scope.strip_prefix("endpoint:") {
        // A sharing clock of a variant or an inference component (its name
        // holds the separator no endpoint name can): an item of loads, no scope.
        if name.contains(crate::totals::COMPONENT_SEPARATOR) {
            return None;
        }
        return Some(BudgetScope::endpoint(name));
    }
    let (key, value) = scope.strip_prefix("tag:")?.split_once('=')?;
    Some(BudgetScope::tag(key, value))
}

/// The sort key of the period of `period` that starts at `start`.
pub(crate) fn period_sk(period: BudgetPeriod, start: DateTime<Utc>) -> String {
    match period {
        BudgetPeriod::Hour => format!("hour#{}", start.format("%Y-%m-%dT%H")),
        BudgetPeriod::Day => format!("day#{}", start.format("%Y-%m-%d")),
        BudgetPeriod::Month => format!("month#{}", start.format("%Y-%m")),
    }
}

/// The period and its start a sort key names (the inverse of [`period_sk`]), and
/// whatever follows them (`""` in every item sagemeter writes).
pub(crate) fn period_of_sk(sk: &str) -> Option<(BudgetPeriod, DateTime<Utc>, &str)> {
    let (kind, rest) = sk.split_once('#')?;
    let (start, tail) = match rest.find('#') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (period, text) = match kind {
        "hour" => (BudgetPeriod::Hour, format!("{start}:00:00Z")),
        "day" => (BudgetPeriod::Day, format!("{start}T00:00:00Z")),
        "month" => (BudgetPeriod::Month, format!("{start}-01T00:00:00Z")),
        _ => return None,
    };
    let at = DateTime::parse_from_rfc3339(&text)
        .ok()?
        .with_timezone(&Utc);
    Some((period, at, tail))
}

/// `usd` in whole pico-USD, rounded half to even at 12 places (receipts already
/// are); `None` beyond `i128`.
pub(crate) fn to_pico(usd: Decimal) -> Option<i128> {
    let rounded = usd.round_dp(PICO_SCALE);
    let scale = rounded.scale();
    rounded
        .mantissa()
        .checked_mul(10i128.checked_pow(PICO_SCALE - scale)?)
}

/// `d` in whole milliseconds (`i64::MAX` past it): how the table keeps times and
/// spans.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `pico` pico-USD as USD (12 places, trailing zeros removed).
pub(crate) fn from_pico(pico: i128) -> Decimal {
    // |pico| < 2⁹⁶ for any sum of receipts (7.9·10¹⁶ USD); saturate beyond.
    let bound = (1i128 << 96) - 1;
    Decimal::from_i128_with_scale(pico.clamp(-bound, bound), PICO_SCALE).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_name_scopes_and_periods_and_read_back() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 20, 41, 7).unwrap();
        for scope in [
            BudgetScope::Client,
            BudgetScope::endpoint("chat-prod"),
            BudgetScope::tag("team", "search=blue"),
        ] {
            assert_eq!(scope_of_pk(&scope_pk(&scope)), Some(scope));
        }
        assert_eq!(scope_pk(&BudgetScope::Client), "scope#fleet");
        // The load items of a targeted variant's and an inference component's
        // sharing clocks are no scope `fleet status` lists.
        assert_eq!(scope_of_pk("scope#endpoint:ab\u{1f}\u{1f}A"), None);
        assert_eq!(scope_of_pk("scope#endpoint:ep\u{1f}comp"), None);
        for (period, sk) in [
            (BudgetPeriod::Hour, "hour#2026-12-01T20"),
            (BudgetPeriod::Day, "day#2026-12-01"),
            (BudgetPeriod::Month, "month#2026-12"),
        ] {
            let start = period.start_of(at);
            assert_eq!(period_sk(period, start), sk);
            assert_eq!(period_of_sk(sk), Some((period, start, "")));
        }
        assert_eq!(
            BudgetPeriod::Month.end_of(BudgetPeriod::Month.start_of(at)),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn money_is_whole_pico_dollars() {
        // $0.000015972222 (a 23 ms ml.g5.xlarge call at $2.50/h, rounded at 12
        // places) is 15 972 222 pico-USD, and back.
        let usd: Decimal = "0.000015972222".parse().unwrap();
        assert_eq!(to_pico(usd), Some(15_972_222));
        assert_eq!(from_pico(15_972_222), usd);
        assert_eq!(to_pico("25".parse().unwrap()), Some(25_000_000_000_000));
        assert_eq!(from_pico(25_000_000_000_000).to_string(), "25");
        // Half to even at the 13th place, as receipts round.
        assert_eq!(to_pico("0.0000000000005".parse().unwrap()), Some(0));
        assert_eq!(to_pico("0.0000000000015".parse().unwrap()), Some(2));
    }
}
