//! Which price list versions were in effect, and where their files are.
//!
//! `ListPriceLists` answers for one date at a time: given a service, a currency, a
//! region and an `EffectiveDate`, the price list (ARN) in effect on that date. The
//! versions over a span are found by asking for a sample of dates: the first date,
//! the first of every month after it, and the last date. A version in effect for
//! less than a month between two samples can be missed; its successor is still
//! found, and the term's `effectiveDate` says when a new rate took effect.

use super::HistoryError;
use aws_sdk_pricing::error::{ProvideErrorMetadata, SdkError};
use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// Pages of `ListPriceLists` followed per date at most (one region answers with one).
const MAX_PAGES: usize = 10;

/// One published version of a region's SageMaker price list.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceListVersion {
    /// The version, from the ARN (e.g. `20250301000000`: its publication time, UTC).
    pub version: String,
    /// `arn:aws:pricing:::price-list/aws/AmazonSageMaker/USD/<version>/<region>`.
    pub arn: String,
    /// The region it prices.
    pub region: String,
    /// The first sampled date it was in effect on.
    pub seen_on: NaiveDate,
    /// The file's `publicationDate`, once read (e.g. `2025-03-01T00:00:00Z`).
    pub published: Option<String>,
    /// Why its file cannot be read, when `ListPriceLists` offers it in no format
    /// sagemeter reads (e.g. `no JSON file offered (formats: csv)`): its rates are
    /// unknown, and a history over its span is incomplete. `None` for a version
    /// whose file can be read (every version a history was built from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// The dates asked for: `since`, the first of each month after it, and `until`.
pub(crate) fn sample_dates(since: NaiveDate, until: NaiveDate) -> Vec<NaiveDate> {
    let mut dates = vec![since];
    let mut next = since
        .with_day(1)
        .and_then(|d| d.checked_add_months(Months::new(1)));
    while let Some(date) = next.filter(|d| *d < until) {
        dates.push(date);
        next = date.checked_add_months(Months::new(1));
    }
    if until > since {
        dates.push(until);
    }
    dates
}

/// The version segment of a price list ARN (the part before the region).
fn version_of(arn: &str) -> Option<&str> {
    let mut parts = arn.rsplit('/');
    let _region = parts.next()?;
    parts.next().filter(|v| !v.is_empty())
}

/// The versions in effect from `since` to `until`, in the order they took effect
/// (by [`PriceListVersion::seen_on`], then version), each once. A version
/// that offers no `json` file is listed too, with why it cannot be read
/// ([`PriceListVersion::unreadable`]): it was in effect, so leaving it out would pass
/// its span off as the previous version's.
pub(crate) async fn list(
    client: &aws_sdk_pricing::Client,
    region: &str,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<PriceListVersion>, HistoryError> {
    if since > until {
        return Err(HistoryError::Invalid {
            reason: format!("--since {since} is after the last date asked for ({until})"),
        });
    }
    let mut found: Vec<PriceListVersion> = Vec::new();
    for date in sample_dates(since, until) {
        let at = date.and_time(NaiveTime::MIN).and_utc().timestamp();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = client
                .list_price_lists()
                .service_code("AmazonSageMaker")
                .currency_code("USD")
                .region_code(region)
                .effective_date(aws_smithy_types::DateTime::from_secs(at))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| HistoryError::List {
                    reason: describe(e, "ListPriceLists", date),
                })?;
            for list in page.price_lists() {
                let Some(arn) = list.price_list_arn() else {
                    continue;
                };
                if list.region_code().is_some_and(|r| r != region)
                    || found.iter().any(|v| v.arn == arn)
                {
                    continue;
                }
                let Some(version) = version_of(arn) else {
                    return Err(HistoryError::List {
                        reason: format!("ListPriceLists answered an ARN without a version: {arn}"),
                    });
                };
                // Once per version: a version already found is skipped above.
                let formats = list.file_formats();
                let unreadable = (!formats.is_empty() && !formats.iter().any(|f| f == "json"))
                    .then(|| {
                        tracing::warn!(
                            target: "sagemeter::pricing",
                            version,
                            "price list version offers no json file; its rates are unknown"
                        );
                        format!("no JSON file offered (formats: {})", formats.join(", "))
                    });
                found.push(PriceListVersion {
                    version: version.to_owned(),
                    arn: arn.to_owned(),
                    region: region.to_owned(),
                    seen_on: date,
                    published: None,
                    unreadable,
                });
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        if next_token.is_some() {
            // Never the last page: a list cut short would read as versions missing.
            return Err(HistoryError::List {
                reason: format!(
                    "ListPriceLists for {date} still had pages after {MAX_PAGES}: stopped \
                     rather than miss versions"
                ),
            });
        }
    }
    // In the order they took effect: a history takes each version's span to end
    // where the next one's begins. A version's id is its publication time, which
    // can be earlier than an older version's when it was published ahead of its
    // date, so it is only the tie-break.
    found.sort_by(|a, b| (a.seen_on, &a.version).cmp(&(b.seen_on, &b.version)));
    Ok(found)
}

/// What `ListPriceLists` answers for one day, next to a version `first`.
enum OnDay {
    /// `first` was in effect.
    First,
    /// Another version was, or none (`None`).
    Other(Option<PriceListVersion>),
}

async fn on_day(
    client: &aws_sdk_pricing::Client,
    region: &str,
    first: &PriceListVersion,
    day: NaiveDate,
) -> Result<OnDay, HistoryError> {
    let listed = list(client, region, day, day).await?;
    Ok(if listed.iter().any(|v| v.version == first.version) {
        OnDay::First
    } else {
        OnDay::Other(listed.into_iter().next())
    })
}

/// The version in effect on the last day before `first` took effect, `first` being
/// in effect on `on`; `None` when none was (or `first` was in effect from `floor`
/// on). Its [`seen_on`](PriceListVersion::seen_on) is that day.
///
/// No date in a version's listing says when it took effect: its id is its
/// publication time, and a version published ahead of its date (on 2024-12-20, to
/// take effect on 2025-03-01) has one older than the version it follows (in effect
/// from 2025-01-01). So `ListPriceLists` is asked: first about the day the id
/// names (most versions take effect the day they are published), then, while
/// `first` is still in effect, about days further back by doubling steps, never
/// before `floor`; then the span between the last day another version (or none)
/// was in effect and the first day `first` was is halved until they are a day
/// apart. The version in effect is never an older one again once `first` is (each
/// date's answer is the latest effective date not after it), so this finds the
/// day: two calls for a version that took effect the day it was published, eight
/// for one published 71 days ahead.
pub(crate) async fn in_effect_before(
    client: &aws_sdk_pricing::Client,
    region: &str,
    first: &PriceListVersion,
    on: NaiveDate,
    floor: NaiveDate,
) -> Result<Option<PriceListVersion>, HistoryError> {
    let earlier = |day: NaiveDate, back: u64| {
        day.checked_sub_days(Days::new(back))
            .map(|d| d.max(floor))
            .filter(|d| *d < day)
    };
    let published = first
        .version
        .get(..8)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        .filter(|d| *d >= floor && *d < on);
    // `hi`: the earliest day `first` is known to be in effect on.
    let mut hi = on;
    let mut probe = published.or_else(|| earlier(on, 1));
    let mut back = 1;
    let (mut lo, mut answer) = loop {
        let Some(day) = probe else {
            return Ok(None);
        };
        match on_day(client, region, first, day).await? {
            OnDay::First => {
                hi = day;
                probe = earlier(hi, back);
                back = back.saturating_mul(2);
            }
            OnDay::Other(version) => break (day, version),
        }
    };
    while (hi - lo).num_days() > 1 {
        let mid = lo + Days::new(((hi - lo).num_days() / 2) as u64);
        match on_day(client, region, first, mid).await? {
            OnDay::First => hi = mid,
            OnDay::Other(version) => (lo, answer) = (mid, version),
        }
    }
    Ok(answer)
}

/// The URL of a version's `json` file (presigned: never shown whole).
pub(crate) async fn file_url(
    client: &aws_sdk_pricing::Client,
    version: &super::PriceListVersion,
) -> Result<String, String> {
    let answer = client
        .get_price_list_file_url()
        .price_list_arn(&version.arn)
        .file_format("json")
        .send()
        .await
        .map_err(|e| describe(e, "GetPriceListFileUrl", version.seen_on))?;
    answer
        .url()
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "GetPriceListFileUrl answered without a URL".to_owned())
}

/// An SDK error in words: its code and HTTP status, the IAM action when refused, the
/// transport's error chain otherwise. Never a request's headers or signature.
fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: SdkError<E, aws_smithy_runtime_api::http::Response>,
    operation: &str,
    date: NaiveDate,
) -> String {
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("an unnamed error");
            let hint = if status == 403 || code == "AccessDeniedException" {
                format!("; the credentials need pricing:{operation}")
            } else {
                String::new()
            };
            format!("{operation} for {date} was refused ({code}, HTTP {status}){hint}")
        }
        SdkError::TimeoutError(_) => format!("{operation} for {date} timed out"),
        _ => format!(
            "{operation} for {date} failed: {}",
            crate::redact::error_chain(&err)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn samples_the_first_date_each_month_and_the_last() {
        assert_eq!(
            sample_dates(date(2025, 1, 15), date(2025, 4, 2)),
            [
                date(2025, 1, 15),
                date(2025, 2, 1),
                date(2025, 3, 1),
                date(2025, 4, 1),
                date(2025, 4, 2)
            ]
        );
        assert_eq!(
            sample_dates(date(2025, 1, 1), date(2025, 2, 1)),
            [date(2025, 1, 1), date(2025, 2, 1)]
        );
        assert_eq!(
            sample_dates(date(2025, 1, 1), date(2025, 1, 1)),
            [date(2025, 1, 1)]
        );
    }

    #[test]
    fn the_version_is_the_arn_segment_before_the_region() {
        assert_eq!(
            version_of(
                "arn:aws:pricing:::price-list/aws/AmazonSageMaker/USD/20250301000000/us-east-1"
            ),
            Some("20250301000000")
        );
        assert_eq!(version_of("nonsense"), None);
    }

    /// A Price List client whose answers come from `interceptor`'s rules.
    fn mocked(interceptor: aws_smithy_mocks::MockResponseInterceptor) -> aws_sdk_pricing::Client {
        aws_sdk_pricing::Client::from_conf(
            aws_sdk_pricing::Config::builder()
                .behavior_version(aws_sdk_pricing::config::BehaviorVersion::latest())
                .region(aws_sdk_pricing::config::Region::from_static("us-east-1"))
                .credentials_provider(aws_sdk_pricing::config::Credentials::new(
                    "test", "test", None, None, "static",
                ))
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }

    /// The JSON file of SageMaker's `version` in us-east-1, as ListPriceLists lists it.
    fn listed(version: &str) -> aws_sdk_pricing::types::PriceList {
        aws_sdk_pricing::types::PriceList::builder()
            .price_list_arn(format!(
                "arn:aws:pricing:::price-list/aws/AmazonSageMaker/USD/{version}/us-east-1"
            ))
            .region_code("us-east-1")
            .file_formats("json")
            .build()
    }

    /// A mocked `ListPriceLists`: each `(date, version)` answers for that date.
    fn answering(days: &[(NaiveDate, &'static str)]) -> aws_sdk_pricing::Client {
        use aws_sdk_pricing::operation::list_price_lists::ListPriceListsOutput;
        use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for &(date, version) in days {
            let at = date.and_time(NaiveTime::MIN).and_utc().timestamp();
            let rule = mock!(aws_sdk_pricing::Client::list_price_lists)
                .match_requests(move |r| {
                    r.effective_date() == Some(&aws_smithy_types::DateTime::from_secs(at))
                })
                .then_output(move || {
                    ListPriceListsOutput::builder()
                        .price_lists(listed(version))
                        .build()
                });
            interceptor = interceptor.with_rule(&rule);
        }
        mocked(interceptor)
    }

    /// A version's id is its publication time. One published on 2024-12-20 to take
    /// effect on 2025-03-01 took over from one published (and in effect) on
    /// 2025-01-01: it comes after it, though its id is smaller.
    #[tokio::test]
    async fn versions_are_listed_in_the_order_they_took_effect_not_by_id() {
        let client = answering(&[
            (date(2025, 1, 1), "20250101000000"),
            (date(2025, 2, 1), "20250101000000"),
            (date(2025, 3, 1), "20241220000000"),
        ]);
        let listed = list(&client, "us-east-1", date(2025, 1, 1), date(2025, 3, 1))
            .await
            .unwrap();
        let order: Vec<_> = listed
            .iter()
            .map(|v| (v.version.as_str(), v.seen_on))
            .collect();
        assert_eq!(
            order,
            [
                ("20250101000000", date(2025, 1, 1)),
                ("20241220000000", date(2025, 3, 1))
            ]
        );
    }

    /// A mocked `ListPriceLists` that answers for any date as AWS does: of the
    /// `(effective date, version)`s, the one with the latest effective date not after
    /// it (none before the first). `asked` keeps the dates asked for.
    fn in_effect_by_date(
        versions: &'static [(NaiveDate, &'static str)],
        asked: std::sync::Arc<std::sync::Mutex<Vec<NaiveDate>>>,
    ) -> aws_sdk_pricing::Client {
        use aws_sdk_pricing::operation::list_price_lists::ListPriceListsOutput;
        use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
        let rule =
            mock!(aws_sdk_pricing::Client::list_price_lists).then_compute_output(move |request| {
                let secs = request.effective_date().map_or(0, |d| d.secs());
                let day = chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap()
                    .date_naive();
                asked.lock().unwrap().push(day);
                let lists = versions
                    .iter()
                    .filter(|(effective, _)| *effective <= day)
                    .max_by_key(|(effective, _)| *effective)
                    .map(|(_, version)| listed(version));
                ListPriceListsOutput::builder()
                    .set_price_lists(Some(lists.into_iter().collect()))
                    .build()
            });
        mocked(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&rule),
        )
    }

    /// The version before one published ahead of its date is the one in effect the
    /// day before that date, not the day before its publication: 20241220000000,
    /// published on 2024-12-20 to take effect on 2025-03-01, follows 20250101000000
    /// (in effect from 2025-01-01), not 20241201000000 (in effect on 2024-12-19).
    #[tokio::test]
    async fn the_version_before_is_the_one_in_effect_the_day_before_the_first_took_effect() {
        static VERSIONS: [(NaiveDate, &str); 3] = [
            (
                NaiveDate::from_ymd_opt(2024, 12, 1).unwrap(),
                "20241201000000",
            ),
            (
                NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                "20250101000000",
            ),
            (
                NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
                "20241220000000",
            ),
        ];
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let client = in_effect_by_date(&VERSIONS, asked.clone());
        let since = date(2025, 3, 1);
        let first = list(&client, "us-east-1", since, since)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(first.version, "20241220000000");
        let floor = date(2017, 11, 1);
        let before = in_effect_before(&client, "us-east-1", &first, since, floor)
            .await
            .unwrap()
            .unwrap();
        // 2025-02-28 is the last day before 2025-03-01.
        assert_eq!(
            (before.version.as_str(), before.seen_on),
            ("20250101000000", date(2025, 2, 28))
        );
        // Asked about 2024-12-20 (its id's day: 20241201000000 then), then the span
        // up to 2025-03-01 halved until a day apart, each answer before it
        // 20250101000000: 71 days, + 35 = 2025-01-24; 36, + 18 = 02-11; 18, + 9 =
        // 02-20; 9, + 4 = 02-24; 5, + 2 = 02-26; 3, + 1 = 02-27; 2, + 1 = 02-28.
        let asked = asked.lock().unwrap().clone();
        assert_eq!(
            asked[1..],
            [
                date(2024, 12, 20),
                date(2025, 1, 24),
                date(2025, 2, 11),
                date(2025, 2, 20),
                date(2025, 2, 24),
                date(2025, 2, 26),
                date(2025, 2, 27),
                date(2025, 2, 28),
            ]
        );

        // Published and in effect on the same day (20250101000000 from 2025-01-01):
        // the day before, 2024-12-31, has 20241201000000.
        let first = list(&client, "us-east-1", date(2025, 1, 1), date(2025, 1, 1))
            .await
            .unwrap()
            .remove(0);
        let before = in_effect_before(&client, "us-east-1", &first, date(2025, 1, 1), floor)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (before.version.as_str(), before.seen_on),
            ("20241201000000", date(2024, 12, 31))
        );
        // The first version of all has none before it.
        let first = list(&client, "us-east-1", date(2024, 12, 1), date(2024, 12, 1))
            .await
            .unwrap()
            .remove(0);
        let none = in_effect_before(&client, "us-east-1", &first, date(2024, 12, 1), floor)
            .await
            .unwrap();
        assert_eq!(none, None);
    }

    #[tokio::test]
    async fn a_list_that_never_ends_is_an_error_not_versions_missing() {
        use aws_sdk_pricing::operation::list_price_lists::ListPriceListsOutput;
        use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
        // Every page lists the same version and hands a token for the next.
        let pages = mock!(aws_sdk_pricing::Client::list_price_lists).then_output(|| {
            ListPriceListsOutput::builder()
                .price_lists(listed("20261101000000"))
                .next_token("more")
                .build()
        });
        let client = mocked(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&pages),
        );
        let day = date(2026, 11, 15);
        let err = list(&client, "us-east-1", day, day).await.unwrap_err();
        assert_eq!(pages.num_calls(), MAX_PAGES);
        assert!(
            err.to_string()
                .contains("for 2026-11-15 still had pages after 10"),
            "{err}"
        );
    }
}
