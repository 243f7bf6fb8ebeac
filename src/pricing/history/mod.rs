//! Price history: what a rate was in each published version of the AWS Price List.
//!
//! AWS publishes the SageMaker price list as versions, one file per region per
//! version. [`PriceListHistory`] finds the versions in effect over a span of dates
//! (`ListPriceLists`, one call per sampled date: the API answers "which version was in
//! effect on this date"), downloads each version's file once (`GetPriceListFileUrl`,
//! then the file itself, a few MB) into a disk cache, reads it as a stream, and picks
//! the rate of a [`PriceKey`] in it with the same rules as live prices. The result, a
//! [`PriceHistory`], lists the rate where it changed: first listed, each change with
//! its percentage, and no longer listed.
//!
//! ```no_run
//! use sagemeter::pricing::PriceKey;
//! use sagemeter::pricing::history::PriceListHistory;
//! use chrono::NaiveDate;
//!
//! # async fn run() -> Result<(), sagemeter::pricing::history::HistoryError> {
//! let sdk_config = aws_config::load_from_env().await;
//! let history = PriceListHistory::builder(&sdk_config).build();
//! let since = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
//! let found = history
//!     .history(&PriceKey::hosting("us-east-1", "ml.c5.2xlarge"), since)
//!     .await?;
//! for point in &found.series[0].points {
//!     println!("{:?} {:?} {:?}", point.effective_date, point.usd_per_unit, point.change_percent);
//! }
//! # Ok(()) }
//! ```
//!
//! What it needs: the IAM actions `pricing:ListPriceLists` and
//! `pricing:GetPriceListFileUrl`, and HTTPS access to the file URLs they return.
//! Versions are immutable, so a downloaded version is kept in the cache
//! ([`default_cache_dir`]`/price-lists/…`) and never fetched again. A cache that
//! cannot be written costs only the caching: versions are then read from temporary
//! files (with a warning), never reported missing.
//!
//! The whole read is bounded in time ([`PriceListHistoryBuilder::time_limit`]); when a
//! version cannot be read (cut short, refused, out of time), or lists a key only at
//! $0 or with no usable rate (no rate, and not the one before either: the version is
//! then missing for that key, and read for the others it prices), or the rate
//! before the first version read is needed and cannot be known, the answer is
//! [`HistoryError::Incomplete`], which names each missing version and carries what was
//! read.

mod download;
mod offer;
#[cfg(test)]
mod props;
mod trend;
mod versions;

#[cfg(feature = "charts")]
pub mod chart;

pub use download::default_cache_dir;
pub use trend::{SizeTrend, Trend, years_between};
pub use versions::PriceListVersion;

use super::document::{PriceDocument, clip, only_ahead_of, select_rate_at, term_dates};
use super::{InstanceResources, PriceError, PriceKey, PriceUnit};
use aws_sdk_pricing::config::Region;
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use offer::{Offer, OfferFilter};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long reading a history may take by default, listing and downloads together.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(300);

/// The largest price list file downloaded, by default: 512 MiB, a hundred times a
/// region's SageMaker file (about 4 MB), so that a download that does not end (a
/// broken or hostile server) cannot fill the disk before the time limit.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 512 << 20;

/// The first date a history reads from: 2017-11-01, the month Amazon SageMaker
/// launched (29 November 2017). No SageMaker price list exists before it, so an
/// earlier `since` is read from here: asking `ListPriceLists` about each month
/// since 1900 would be some 1,500 calls that can find nothing.
pub const SAGEMAKER_PRICE_LISTS_SINCE: NaiveDate = match NaiveDate::from_ymd_opt(2017, 11, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// `since`, or [`SAGEMAKER_PRICE_LISTS_SINCE`] when it is earlier.
fn from_launch(since: NaiveDate) -> NaiveDate {
    since.max(SAGEMAKER_PRICE_LISTS_SINCE)
}

/// One price where it changed: first listed, changed, or no longer listed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricePoint {
    /// The price list version it was first seen in (e.g. `20250301000000`).
    pub version: String,
    /// The first sampled date that version was in effect on; for a rate that took
    /// effect inside a version (the version lists a term with a later
    /// `effectiveDate`, beside the one in effect or, for a product it lists only with
    /// such a term, alone), that term's date (UTC).
    pub seen_on: NaiveDate,
    /// USD per unit; `None` when the version no longer lists the product.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub usd_per_unit: Option<Decimal>,
    /// (new − old) ÷ old × 100, rounded to 2 places, from the previous listed rate
    /// (across "no longer listed" points: a key listed again at 0.25 after 0.20 is
    /// +25.00); `None` for the first listing, for "no longer listed", and for a key
    /// listed again at the rate it was last listed at.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub change_percent: Option<Decimal>,
    /// The on-demand term's `effectiveDate`, as AWS wrote it.
    pub effective_date: Option<String>,
    /// The product's SKU.
    pub sku: Option<String>,
    /// Why this product was chosen, when it was a choice (e.g. a free tier not applied).
    pub note: Option<String>,
}

/// The history of one key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHistory {
    /// What is priced.
    pub key: PriceKey,
    /// The unit of every rate.
    pub unit: PriceUnit,
    /// First listing, each change, and "no longer listed", oldest first.
    pub points: Vec<PricePoint>,
    /// The last date a version read lists it on (the latest `seen_on` of a version
    /// or of a term that took effect inside one), `None` if none does.
    pub last_listed_on: Option<NaiveDate>,
    /// vCPUs per instance (`vCpu` attribute of the latest listing), for instance keys.
    pub vcpu: Option<u32>,
    /// GPUs per instance (`gpu` attribute of the latest listing), for instance keys.
    pub gpu: Option<u32>,
}

impl KeyHistory {
    /// The first listed rate, with its point.
    pub fn first(&self) -> Option<&PricePoint> {
        self.points.iter().find(|p| p.usd_per_unit.is_some())
    }

    /// The latest listed rate (the product may have been delisted since: see
    /// [`points`](Self::points)).
    pub fn latest(&self) -> Option<&PricePoint> {
        self.points.iter().rev().find(|p| p.usd_per_unit.is_some())
    }

    /// Changes of the rate (points that have a `change_percent`).
    pub fn changes(&self) -> impl Iterator<Item = &PricePoint> {
        self.points.iter().filter(|p| p.change_percent.is_some())
    }
}

/// What was read: the versions, and a history per key found in them.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceHistory {
    /// The region the versions are for.
    pub region: String,
    /// The first and last dates sampled (`since` is never before
    /// [`SAGEMAKER_PRICE_LISTS_SINCE`]).
    pub since: NaiveDate,
    /// See [`since`](Self::since).
    pub until: NaiveDate,
    /// Every version read, in the order they took effect (by `seen_on`: a
    /// version's id, its publication time, can be earlier than an older version's).
    pub versions: Vec<PriceListVersion>,
    /// One history per key, in key order.
    pub series: Vec<KeyHistory>,
}

/// A version that could not be read, or was read and gives no rate for a key it
/// lists (only $0, or no usable rate): its rates over its span are unknown, for
/// every key or only for [`keys`](Self::keys).
///
/// Also the version in effect before the first one read, when that one lists a key
/// only with a rate announced for after `since` and the rate before it cannot be
/// known (the version before cannot be found, cannot be read, or gives no usable
/// rate for the key): then [`seen_on`](Self::seen_on) is `since`, and
/// [`keys`](Self::keys) the keys it was needed for (empty when they are every key
/// the versions read list).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingVersion {
    /// The version (e.g. `20250301000000`); `before <version>` for the version in
    /// effect before the first one read when it could not be found.
    pub version: String,
    /// The first sampled date it was in effect on.
    pub seen_on: NaiveDate,
    /// Where the rates it leaves unknown are known again: the first sampled date of
    /// the next version read for its keys. When that version lists one of them only
    /// at a rate announced for later, the rate billed until that date is this
    /// version's, unknown: then it is where that key's rate is known again (the
    /// announced rate's date, or a later version's that gives a rate or no longer
    /// lists it), the latest of such keys. The history holds no point dated in the
    /// span from [`seen_on`](Self::seen_on) (an earlier version's terms dated inside
    /// it are cut: this version may have replaced them), but for a key whose rate
    /// is known earlier (in a family, a size the next version prices from its first
    /// date). `None`: unknown to the end of the span (no later version read, or a
    /// key's rate never known again).
    #[serde(default)]
    pub unknown_until: Option<NaiveDate>,
    /// The keys whose rates it leaves unknown; empty: every key. A version read
    /// whole that gives no rate for some keys it lists and a rate for others is
    /// missing only for the former: the others' rates in it are read, and it is
    /// among [`PriceHistory::versions`]. One that gives a rate for none of them,
    /// or that could not be read, is missing for every key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<PriceKey>,
    /// Why (never a URL's signature or a credential).
    pub reason: String,
}

/// The keys a version read is missing for (its entry in `missing` that names
/// keys; none: it is read for every key).
fn missing_for<'a>(missing: &'a [MissingVersion], version: &PriceListVersion) -> &'a [PriceKey] {
    missing
        .iter()
        .find(|m| {
            !m.keys.is_empty() && m.version == version.version && m.seen_on == version.seen_on
        })
        .map_or(&[], |m| m.keys.as_slice())
}

/// Why a history could not be read, or not whole.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The versions could not be listed (`ListPriceLists`), so nothing was read.
    #[error("listing the price list versions failed: {reason}")]
    List {
        /// What went wrong.
        reason: String,
    },
    /// The request cannot be answered as asked.
    #[error("{reason}")]
    Invalid {
        /// What is wrong with it.
        reason: String,
    },
    /// A chart could not be drawn or written.
    #[error("cannot draw the chart {path}: {reason}")]
    Chart {
        /// The file asked for.
        path: String,
        /// Why.
        reason: String,
    },
    /// Some versions could not be read; `partial` is what the others say (a change
    /// may hide in a missing version).
    #[error("the price history is incomplete: {}", describe_missing(missing))]
    Incomplete {
        /// What the versions that were read say.
        partial: Box<PriceHistory>,
        /// The versions not read, and why.
        missing: Vec<MissingVersion>,
    },
}

/// The history reads the global partition's Price List (in USD, from us-east-1),
/// which lists no China region: the China partition's is another endpoint, in CNY,
/// with China credentials. Asked for one, the answer would be "not listed", which
/// is not true; say so instead.
fn outside_china(region: &str) -> Result<(), HistoryError> {
    if region.starts_with("cn-") {
        return Err(HistoryError::Invalid {
            reason: format!(
                "price history reads the global Price List (USD), which does not list \
                 {region}: the China regions are priced in CNY by the China partition's \
                 Price List, which price history does not read"
            ),
        });
    }
    Ok(())
}

fn describe_missing(missing: &[MissingVersion]) -> String {
    missing
        .iter()
        .map(|m| {
            let rates = match m.keys.as_slice() {
                [] => "rates".to_owned(),
                keys => format!("rates of {}", first_three(keys)),
            };
            let span = match m.unknown_until {
                Some(until) => format!("{rates} unknown from then until {until}"),
                None => format!("{rates} unknown from then on"),
            };
            format!(
                "version {} (in effect {}; {span}): {}",
                m.version, m.seen_on, m.reason
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads price history from the AWS Price List; see the [module](self) docs.
#[derive(Clone)]
pub struct PriceListHistory {
    client: aws_sdk_pricing::Client,
    connector: SharedHttpConnector,
    cache_dir: Option<PathBuf>,
    time_limit: Duration,
    max_file_bytes: u64,
    until: Option<NaiveDate>,
}

// Hand-written: the SDK client's Debug prints its configuration.
impl std::fmt::Debug for PriceListHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceListHistory")
            .field("cache_dir", &self.cache_dir)
            .field("time_limit", &self.time_limit)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// Builder for [`PriceListHistory`]; start with [`PriceListHistory::builder`].
pub struct PriceListHistoryBuilder {
    config: aws_sdk_pricing::config::Builder,
    connector: Option<SharedHttpConnector>,
    cache_dir: Option<PathBuf>,
    time_limit: Duration,
    max_file_bytes: u64,
    until: Option<NaiveDate>,
}

impl PriceListHistory {
    /// Starts from the application's SDK configuration (credentials, endpoint
    /// settings such as `AWS_ENDPOINT_URL_PRICING`); the Price List API is called in
    /// us-east-1, with the SDK's standard retries. FIPS and dual-stack endpoints are
    /// turned off, as for live look-ups (the Price List has neither; see
    /// [`LivePrices::builder`](super::LivePrices::builder)).
    pub fn builder(sdk_config: &aws_types::SdkConfig) -> PriceListHistoryBuilder {
        let mut config = super::live::price_list_config(sdk_config);
        config.set_region(Some(Region::from_static("us-east-1")));
        config.set_retry_config(Some(RetryConfig::standard()));
        config.set_timeout_config(Some(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(20))
                .connect_timeout(Duration::from_secs(5))
                .build(),
        ));
        PriceListHistoryBuilder {
            config,
            connector: None,
            cache_dir: default_cache_dir(),
            time_limit: DEFAULT_TIME_LIMIT,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            until: None,
        }
    }

    /// The directory versions are cached in (`None`: not cached).
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// The versions of `region`'s price list in effect from `since` to the last
    /// sampled date (today unless [`PriceListHistoryBuilder::until`] says otherwise),
    /// in the order they took effect, including any whose file is offered in no format that can be
    /// read (no `json`: each says why in [`PriceListVersion::unreadable`], and
    /// [`history`](Self::history) reports those missing). See
    /// [`PriceListVersion`] for how dates are sampled. A `since` before
    /// [`SAGEMAKER_PRICE_LISTS_SINCE`] is read from that date.
    pub async fn versions(
        &self,
        region: &str,
        since: NaiveDate,
    ) -> Result<Vec<PriceListVersion>, HistoryError> {
        outside_china(region)?;
        let since = from_launch(since);
        let until = self.until_date(since)?;
        versions::list(&self.client, region, since, until).await
    }

    /// The history of one key's rate, from `since` (or from
    /// [`SAGEMAKER_PRICE_LISTS_SINCE`] when `since` is earlier: the answer's
    /// [`PriceHistory::since`] says which).
    pub async fn history(
        &self,
        key: &PriceKey,
        since: NaiveDate,
    ) -> Result<PriceHistory, HistoryError> {
        let wanted = key.clone();
        self.read(key.region(), since, OfferFilter::for_key(key), move |_| {
            vec![wanted.clone()]
        })
        .await
    }

    /// The history of every real-time hosting instance type of a family
    /// (`ml.g5` → `ml.g5.xlarge`, `ml.g5.2xlarge`, …) in a region, from `since` as
    /// for [`history`](Self::history).
    pub async fn family(
        &self,
        region: &str,
        family: &str,
        since: NaiveDate,
    ) -> Result<PriceHistory, HistoryError> {
        let family = family.trim_end_matches('.');
        let well_formed = family.starts_with("ml.")
            && family.len() > 3
            && family[3..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !well_formed {
            return Err(HistoryError::Invalid {
                reason: format!(
                    "`{family}` is not an instance family: use ml.<family>, e.g. ml.g5"
                ),
            });
        }
        let region_owned = region.to_owned();
        self.read(
            region,
            since,
            OfferFilter::for_family(region, family),
            move |docs| {
                let mut names: Vec<&str> = docs
                    .iter()
                    .filter_map(|d| d.attribute("instanceName"))
                    .collect();
                names.sort_unstable();
                names.dedup();
                names
                    .into_iter()
                    .map(|name| PriceKey::hosting(region_owned.clone(), name))
                    .collect()
            },
        )
        .await
    }

    fn until_date(&self, since: NaiveDate) -> Result<NaiveDate, HistoryError> {
        let today = Utc::now().date_naive();
        let until = self.until.unwrap_or(today);
        // No version is published for a day to come: counted as listed unchanged,
        // the days to come would water a trend down (0.9 over 2 years is −5.13 %
        // a year; "until" 4 years later, −1.74 %).
        if until > today {
            return Err(HistoryError::Invalid {
                reason: format!(
                    "--until {until} is after today ({today}): the Price List publishes no \
                     version of a day to come"
                ),
            });
        }
        if until < SAGEMAKER_PRICE_LISTS_SINCE {
            return Err(HistoryError::Invalid {
                reason: format!(
                    "--until {until} is before Amazon SageMaker's launch (November 2017): \
                     no SageMaker price list exists before {SAGEMAKER_PRICE_LISTS_SINCE}"
                ),
            });
        }
        if since > until {
            return Err(HistoryError::Invalid {
                reason: format!("--since {since} is after the last date asked for ({until})"),
            });
        }
        Ok(until)
    }

    /// Lists the versions, reads each (from the cache, else downloaded) within the
    /// time limit, and builds one history per key that `keys_in` finds.
    async fn read(
        &self,
        region: &str,
        since: NaiveDate,
        filter: OfferFilter,
        keys_in: impl Fn(&[PriceDocument]) -> Vec<PriceKey>,
    ) -> Result<PriceHistory, HistoryError> {
        outside_china(region)?;
        let since = from_launch(since);
        let until = self.until_date(since)?;
        let now = tokio::time::Instant::now();
        // A limit too long for the clock to add is no limit: a year is as good.
        let deadline = now
            .checked_add(self.time_limit)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
        let limit = self.time_limit;
        let listed =
            tokio::time::timeout_at(deadline, versions::list(&self.client, region, since, until))
                .await
                .map_err(|_| HistoryError::List {
                    reason: format!(
                        "listing did not finish within the time limit of {} s",
                        limit.as_secs()
                    ),
                })??;

        // Where each version's span ends: the next version takes over (read or not),
        // the last one runs to the last date asked for.
        let ends: Vec<NaiveDate> = listed
            .iter()
            .skip(1)
            .map(|v| v.seen_on)
            .chain(std::iter::once(until.succ_opt().unwrap_or(until)))
            .collect();
        let mut read = Vec::new();
        let mut missing = Vec::new();
        for (version, end) in listed.into_iter().zip(ends) {
            let outcome = if let Some(why) = version.unreadable.clone() {
                Err(why)
            } else if tokio::time::Instant::now() >= deadline {
                Err(format!(
                    "not read: the time limit of {} s was reached",
                    limit.as_secs()
                ))
            } else {
                match tokio::time::timeout_at(deadline, self.offer(&version, &filter)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!(
                        "not read whole within the time limit of {} s",
                        limit.as_secs()
                    )),
                }
            };
            match outcome {
                Ok(offer) => {
                    tracing::debug!(
                        target: "sagemeter::pricing",
                        version = %version.version,
                        file_version = offer.version.as_deref().unwrap_or("-"),
                        products = offer.products_read,
                        candidates = offer.documents.len(),
                        "read a price list version"
                    );
                    let mut version = version;
                    version.published = offer.publication_date.clone();
                    // A product that may price a key could not be read: the
                    // version's rates are unknown (it may be the one in effect, or
                    // the higher of two), not those of the others alone. A key it
                    // lists only at $0, or with no usable rate, has no rate in it:
                    // not the rate before either. The keys it does give a rate for
                    // are read from it; when it gives one for none, it is missing
                    // whole.
                    let unusable = match products_unread(&offer) {
                        Some(reason) => Some((Vec::new(), reason)),
                        None => no_rate(&offer, version.seen_on, end, &keys_in).map(|none| {
                            if none.others_listed {
                                let those = match none.keys.len() {
                                    1 => "that key",
                                    _ => "those keys",
                                };
                                let reason = format!(
                                    "{}, so its rates for {those} are unknown (the other \
                                     keys' rates in it are read)",
                                    none.why
                                );
                                (none.keys, reason)
                            } else {
                                (
                                    Vec::new(),
                                    format!("{}, so its rates are unknown", none.why),
                                )
                            }
                        }),
                    };
                    let whole = unusable.as_ref().is_some_and(|(keys, _)| keys.is_empty());
                    if let Some((keys, reason)) = unusable {
                        missing.push(MissingVersion {
                            version: version.version.clone(),
                            seen_on: version.seen_on,
                            unknown_until: None,
                            keys,
                            reason,
                        });
                    }
                    if !whole {
                        read.push((version, offer));
                    }
                }
                Err(reason) => missing.push(MissingVersion {
                    version: version.version.clone(),
                    seen_on: version.seen_on,
                    unknown_until: None,
                    keys: Vec::new(),
                    reason,
                }),
            }
        }
        // Each missing version's span ends where the next version read for one of
        // its keys (any, when it is missing for every key) takes over: a version
        // missing for the same keys continues the span. When that version lists a
        // key of it only at a rate announced for later, the rate before that date
        // is the missing version's, unknown: the span runs on to where the rates
        // of those keys are known again (the latest of them; `None` when one never
        // is), as before the first version read (below).
        let unread = unread_dates(&missing);
        let ends = span_ends(&read, &unread, until);
        let spans: Vec<(Option<NaiveDate>, Option<String>)> = missing
            .iter()
            .map(|m| {
                let next = read.iter().position(|(v, _)| {
                    let gap = missing_for(&missing, v);
                    v.seen_on > m.seen_on
                        && (m.keys.is_empty() || m.keys.iter().any(|key| !gap.contains(key)))
                });
                let Some(next) = next else {
                    return (None, None);
                };
                let (version, offer) = &read[next];
                let gap = missing_for(&missing, version);
                let start = version.seen_on.and_time(NaiveTime::MIN).and_utc();
                let keys = match m.keys.as_slice() {
                    [] => keys_in(&offer.documents),
                    keys => keys.to_vec(),
                };
                let ahead: Vec<PriceKey> = keys
                    .into_iter()
                    .filter(|key| !gap.contains(key))
                    .filter(|key| matches!(listing(key, &offer.documents, start), Ok(None)))
                    .collect();
                if ahead.is_empty() {
                    return (Some(version.seen_on), None);
                }
                let known = ahead
                    .iter()
                    .map(|key| known_again(key, &read, &ends, &missing, next))
                    .collect::<Option<Vec<_>>>()
                    .map(|dates| dates.into_iter().fold(version.seen_on, NaiveDate::max));
                let (those, is) = match ahead.len() {
                    1 => ("its rate", "is"),
                    _ => ("their rates", "are"),
                };
                let why = format!(
                    "; version {} after it lists {} only at a rate announced for later, \
                     and until then {those} {is} this version's, unknown",
                    version.version,
                    first_three(&ahead)
                );
                (known, Some(why))
            })
            .collect();
        for (m, (until, why)) in missing.iter_mut().zip(spans) {
            m.unknown_until = until;
            if let Some(why) = why {
                m.reason.push_str(&why);
            }
        }

        // The first version read may list a key only with a rate announced for a
        // date after `since`: the rate billed until then is the one of the version
        // before it, which the dates sampled never asked for. It is read then.
        // Only when no version that could not be read took effect before it: the
        // rate before is then that version's, unknown.
        let since_at = since.and_time(NaiveTime::MIN).and_utc();
        let opening: Vec<PriceKey> = match read.first() {
            Some((first, offer)) if nothing_unread_before(first, &unread) => {
                // Not a key the first version is missing for: its rate through that
                // version is unknown, whatever the version before says.
                let gap = missing_for(&missing, first);
                keys_in(&offer.documents)
                    .into_iter()
                    .filter(|key| !gap.contains(key))
                    .filter(|key| matches!(listing(key, &offer.documents, since_at), Ok(None)))
                    .collect()
            }
            _ => Vec::new(),
        };
        let before = match read.first() {
            Some((first, _)) if !opening.is_empty() => {
                self.version_before(region, since, first, &filter, deadline, &opening)
                    .await
            }
            _ => Before::None,
        };
        let (before, unknown_before) = match before {
            Before::None => (None, None),
            Before::Read(version, offer) => (Some((version, offer)), None),
            // The rate before could not be known: from `since` to where the rates
            // of the keys it was needed for are known again (the latest of them;
            // `None` when one never is), they are unknown, as over a version that
            // could not be read. Only for those keys: the others the first version
            // prices are read from it (every key when they are all of them).
            Before::Unknown { version, reason } => {
                let unknown_until = opening
                    .iter()
                    .map(|key| known_again(key, &read, &ends, &missing, 0))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|dates| dates.into_iter().max());
                let every = read
                    .iter()
                    .flat_map(|(_, offer)| keys_in(&offer.documents))
                    .all(|key| opening.contains(&key));
                let keys = if every { Vec::new() } else { opening.clone() };
                let entry = MissingVersion {
                    version,
                    seen_on: since,
                    unknown_until,
                    keys,
                    reason,
                };
                (None, Some(entry))
            }
        };
        let history = build_history(region, since, until, before, read, &missing, &keys_in);
        if let Some(unknown) = unknown_before {
            missing.insert(0, unknown);
        }
        if missing.is_empty() {
            Ok(history)
        } else {
            Err(HistoryError::Incomplete {
                partial: Box::new(history),
                missing,
            })
        }
    }

    /// The version in effect the day before `first` took effect (found by asking
    /// `ListPriceLists`: `first`'s id is its publication time, not that date), read
    /// for the rate of the `opening` keys (those `first` lists only with a rate
    /// announced for after `since`) until `first`'s own. Only asked when `first` is
    /// in effect on `since` (no version was on a sampled date before it otherwise).
    /// [`Before::None`] when no version was in effect before `first`;
    /// [`Before::Unknown`] when that rate cannot be known: a `ListPriceLists` call
    /// fails, the version cannot be read (or not within the time limit), or it
    /// lists an opening key with no usable rate ([`no_rate`], on `since`). A version
    /// that does not list a key, or lists it only with a rate announced for later
    /// still, says it was not priced before `first`'s rate.
    async fn version_before(
        &self,
        region: &str,
        since: NaiveDate,
        first: &PriceListVersion,
        filter: &OfferFilter,
        deadline: tokio::time::Instant,
        opening: &[PriceKey],
    ) -> Before {
        if first.seen_on != since {
            return Before::None;
        }
        let what = format!(
            "the version in effect before {0} (its rate holds until the later rate {0} \
             announces)",
            first.version
        );
        let unknown = |version: &PriceListVersion, why: String| Before::Unknown {
            version: version.version.clone(),
            reason: format!("{what} could not be read: {why}"),
        };
        let found = tokio::time::timeout_at(
            deadline,
            versions::in_effect_before(
                &self.client,
                region,
                first,
                since,
                SAGEMAKER_PRICE_LISTS_SINCE,
            ),
        )
        .await;
        let version = match found {
            Ok(Ok(Some(version))) => version,
            Ok(Ok(None)) => return Before::None,
            outcome => {
                let why = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!(
                        "the time limit of {} s was reached",
                        self.time_limit.as_secs()
                    ),
                };
                return Before::Unknown {
                    version: format!("before {}", first.version),
                    reason: format!("{what} could not be found: {why}"),
                };
            }
        };
        if let Some(why) = version.unreadable.clone() {
            return unknown(&version, why);
        }
        if tokio::time::Instant::now() >= deadline {
            return unknown(
                &version,
                format!(
                    "not read: the time limit of {} s was reached",
                    self.time_limit.as_secs()
                ),
            );
        }
        let offer = match tokio::time::timeout_at(deadline, self.offer(&version, filter)).await {
            Ok(Ok(offer)) => offer,
            Ok(Err(why)) => return unknown(&version, why),
            Err(_) => {
                return unknown(
                    &version,
                    format!(
                        "not read whole within the time limit of {} s",
                        self.time_limit.as_secs()
                    ),
                );
            }
        };
        if let Some(why) = products_unread(&offer) {
            return unknown(&version, why);
        }
        // Its rate on `since`: the one in force until `first`'s announced rate.
        if let Some(none) = no_rate(&offer, since, since, &|_| opening.to_vec()) {
            return Before::Unknown {
                version: version.version.clone(),
                reason: format!("{what} {}, so its rates are unknown", none.why),
            };
        }
        let mut version = version;
        version.published = offer.publication_date.clone();
        Before::Read(version, offer)
    }

    /// One version's candidates: from the cache when it has the file, else downloaded
    /// (to a `.part` file, moved into the cache only once read whole, deleted in every
    /// other case).
    async fn offer(
        &self,
        version: &PriceListVersion,
        filter: &OfferFilter,
    ) -> Result<Offer, String> {
        // Its place in the cache, named by the version and region as the Price
        // List gave them: only names that cannot climb out of the cache (a region
        // code, a version of digits), else it is read from a temporary file.
        let cached = self
            .cache_dir
            .as_ref()
            .filter(|_| cache_safe(&version.version, &version.region))
            .map(|dir| {
                dir.join("price-lists")
                    .join("AmazonSageMaker")
                    .join("USD")
                    .join(&version.version)
                    .join(format!("{}.json", version.region))
            });
        if let Some(path) = cached.as_ref().filter(|p| p.is_file()) {
            match parse_file(path.clone(), filter.clone())
                .await
                .and_then(|offer| of_version(offer, version))
            {
                Ok(offer) => return Ok(offer),
                Err(why) => {
                    // Only whole, readable files are moved into the cache: this one was
                    // damaged since. Fetch it again.
                    tracing::warn!(
                        target: "sagemeter::pricing",
                        version = %version.version,
                        file = %path.display(),
                        "cached price list unreadable ({why}); downloading it again"
                    );
                    let _ = std::fs::remove_file(path);
                }
            }
        }

        let url = versions::file_url(&self.client, version).await?;
        // Where the download goes: a `.part` file beside its place in the cache, or,
        // when the cache cannot be written (no cache, a read-only home), one in the
        // temporary directory that is read and then deleted.
        let ((part, file), keep) = match &cached {
            Some(path) => match writable_part(path) {
                Ok(part) => (part, Some(path)),
                Err(why) => {
                    tracing::warn!(
                        target: "sagemeter::pricing",
                        version = %version.version,
                        "price list not cached ({why}); reading it from a temporary file"
                    );
                    (temp_part()?, None)
                }
            },
            None => (temp_part()?, None),
        };
        // Deletes the part file however this ends, also when the future is dropped
        // mid-download (the time limit).
        let part = PartFile(part);
        let result = async {
            download::download(&self.connector, &url, file, &part.0, self.max_file_bytes).await?;
            of_version(parse_file(part.0.clone(), filter.clone()).await?, version)
        }
        .await;
        if let (Ok(_), Some(path)) = (&result, keep)
            && let Err(e) = std::fs::rename(&part.0, path)
        {
            tracing::warn!(
                    target: "sagemeter::pricing",
                    file = %path.display(),
                    "could not keep the price list in the cache: {e}"
            );
        }
        result
    }
}

/// `offer`, read from the file of `version`, unless the file names another
/// version: its rates are not that version's (a proxy, or a URL answering another
/// version's file), so it is neither read as it nor kept in the cache under its
/// name. A file that names no version is taken as the one asked for.
fn of_version(offer: Offer, version: &PriceListVersion) -> Result<Offer, String> {
    match offer.version.as_deref() {
        Some(found) if found != version.version => Err(format!(
            "the file downloaded for it is version `{}`, not {}",
            clip(found),
            version.version
        )),
        _ => Ok(offer),
    }
}

/// What the version in effect before the first one read says of the rate before
/// that one's (see [`PriceListHistory::version_before`]).
enum Before {
    /// No version was in effect before it, or none was asked for: no rate before.
    None,
    /// Read, with a usable rate (or none listed) for each key it was asked for.
    Read(PriceListVersion, Offer),
    /// The rate before cannot be known: the version (its id, or `before <id of the
    /// first one read>` when it could not be found) and why.
    Unknown {
        /// The version.
        version: String,
        /// Why.
        reason: String,
    },
}

/// Why a version read whole still has unknown rates: candidates (products that may
/// price a key) that could not be read, by SKU and why (the first three).
fn products_unread(offer: &Offer) -> Option<String> {
    if offer.unreadable.is_empty() {
        return None;
    }
    let shown: Vec<&str> = offer
        .unreadable
        .iter()
        .take(3)
        .map(String::as_str)
        .collect();
    let more = match offer.unreadable.len() {
        n if n > 3 => format!(" and {} more", n - 3),
        _ => String::new(),
    };
    Some(format!(
        "{} product(s) that may price it could not be read ({}{more}): its rates are unknown",
        offer.unreadable.len(),
        shown.join("; ")
    ))
}

/// The keys a version read whole gives no rate for (see [`no_rate`]).
struct NoRate {
    /// Those keys, in the order `keys_in` gives them.
    keys: Vec<PriceKey>,
    /// Whether it lists another key with a rate (or one announced for later): then
    /// it is missing for `keys` only.
    others_listed: bool,
    /// Why, naming the keys (the first three of each kind).
    why: String,
}

/// Why a version read whole gives no rate for some keys it lists: on the first
/// date it answers for, or on a term's date inside its span (before `end`, where
/// the next version takes over), the products in effect for the key list only $0
/// (no paid tier after a free one), or give no usable rate (products that
/// contradict each other, prices in another currency only, no tier from 0 in the
/// key's unit). That is no price, and not the rate before it either: the key's
/// rate through the version's span is unknown, so the version is missing for it,
/// as one that cannot be read is.
fn no_rate(
    offer: &Offer,
    seen_on: NaiveDate,
    end: NaiveDate,
    keys_in: &dyn Fn(&[PriceDocument]) -> Vec<PriceKey>,
) -> Option<NoRate> {
    let docs = &offer.documents;
    let start = seen_on.and_time(NaiveTime::MIN).and_utc();
    let mut keys = Vec::new();
    let mut others_listed = false;
    let mut zero = Vec::new();
    let mut unusable = Vec::new();
    for key in keys_in(docs) {
        let found =
            moments(&key, docs, seen_on, end)
                .into_iter()
                .find_map(|(day, at)| match listing(&key, docs, at) {
                    Ok(_) | Err(PriceError::NotFound { .. }) => None,
                    Err(error) => Some((day, error)),
                });
        let Some((day, error)) = found else {
            others_listed |= listing(&key, docs, start).is_ok();
            continue;
        };
        let named = if day > seen_on {
            format!("{key} (from {day})")
        } else {
            key.to_string()
        };
        match error {
            PriceError::ZeroOnly { .. } => zero.push(named),
            PriceError::OtherCurrency { currencies, .. } => {
                unusable.push(format!("{named} (priced only in {currencies}, not USD)"))
            }
            PriceError::Malformed { reason } => unusable.push(format!("{named} ({reason})")),
            other => unusable.push(format!("{named} ({other})")),
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut why = Vec::new();
    if !zero.is_empty() {
        why.push(format!(
            "lists {} only at $0: not a price",
            first_three(&zero)
        ));
    }
    if !unusable.is_empty() {
        why.push(format!(
            "gives no usable rate for {}",
            first_three(&unusable)
        ));
    }
    (!why.is_empty()).then(|| NoRate {
        keys,
        others_listed,
        why: why.join("; "),
    })
}

/// The first three of `items`, and how many more.
fn first_three<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(3).map(T::to_string).collect();
    match items.len() {
        n if n > 3 => format!("{} and {} more", shown.join(", "), n - 3),
        _ => shown.join(", "),
    }
}

/// Whether a version and region are names that keep a path in the cache: a
/// version of digits (`20250301000000`), a region of lower-case letters, digits and
/// dashes (`us-east-1`). Anything else (a region `/tmp/x` from a mistyped
/// environment, a version `..`) would put the file, or delete one, elsewhere.
fn cache_safe(version: &str, region: &str) -> bool {
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A download's `.part` file, deleted when dropped (after a rename into the cache
/// there is nothing left to delete).
struct PartFile(PathBuf);

impl Drop for PartFile {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                target: "sagemeter::pricing",
                file = %self.0.display(),
                "could not delete a partial price list download: {e}"
            ),
        }
    }
}

/// The `.part` file for `cached`, created empty beside it (with its directories) to
/// be sure the cache can be written.
fn writable_part(cached: &Path) -> Result<(PathBuf, std::fs::File), String> {
    let dir = cached.parent().unwrap_or(cached);
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the cache directory {}: {e}", dir.display()))?;
    create_part(|| part_path(cached))
        .map_err(|e| format!("cannot write in the cache directory {}: {e}", dir.display()))
}

/// A `.part` file in the temporary directory, unique to this process and call.
fn temp_part() -> Result<(PathBuf, std::fs::File), String> {
    let dir = std::env::temp_dir();
    create_part(|| {
        dir.join(format!(
            "sagemeter-price-list-{}-{}.part",
            std::process::id(),
            PART_COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    })
    .map_err(|e| format!("cannot write a file in {}: {e}", dir.display()))
}

/// A new file (0600) at the first of `name`'s paths that nothing is at: never one
/// that exists already, nor through a symbolic link someone put at the name (the
/// download would be written where it points, and read back as a price list).
fn create_part(name: impl FnMut() -> PathBuf) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    crate::util::create_at_a_free_name(name, |path| options.open(path))
}

static PART_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<name>.<pid>.part` beside `path`: two processes filling the cache at once each
/// write their own file, and the rename makes one of them win whole.
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".{}-{}.part",
        std::process::id(),
        PART_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    path.with_file_name(name)
}

/// Reads a file on a blocking thread: parsing a few MB takes tens of milliseconds.
async fn parse_file(path: PathBuf, filter: OfferFilter) -> Result<Offer, String> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        offer::read_offer(std::io::BufReader::with_capacity(256 * 1024, file), &filter)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("reading the price list stopped: {e}"))?
}

impl PriceListHistoryBuilder {
    /// Where versions are cached; `None` downloads every time and keeps nothing.
    /// Default: [`default_cache_dir`]. A directory that cannot be created or written
    /// is treated as `None` for each version that needs a download (with a warning).
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// The longest a whole read may take, listing and downloads together (default
    /// [`DEFAULT_TIME_LIMIT`], 5 minutes). Versions not read by then are reported in
    /// [`HistoryError::Incomplete`] with what was read. A limit too long for the
    /// clock (such as `Duration::MAX`) is no limit.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// The largest price list file downloaded (default [`DEFAULT_MAX_FILE_BYTES`],
    /// 512 MiB): a longer download is stopped, its part file deleted, and the version
    /// reported unread.
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// The last date sampled (default: today, UTC).
    pub fn until(mut self, date: NaiveDate) -> Self {
        self.until = Some(date);
        self
    }

    /// The HTTP connector for file downloads (default: the same rustls connector the
    /// SDK uses, 5 s to connect, 30 s without data at most).
    pub fn http_connector(mut self, connector: SharedHttpConnector) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Builds it.
    pub fn build(self) -> PriceListHistory {
        let connector = self.connector.unwrap_or_else(|| {
            let settings = HttpConnectorSettings::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(30))
                .build();
            aws_smithy_http_client::default_connector(
                &settings,
                aws_smithy_async::rt::sleep::default_async_sleep(),
            )
            .expect("the rustls-aws-lc feature of aws-smithy-http-client is enabled")
        });
        PriceListHistory {
            client: aws_sdk_pricing::Client::from_conf(self.config.build()),
            connector,
            cache_dir: self.cache_dir,
            time_limit: self.time_limit,
            max_file_bytes: self.max_file_bytes,
            until: self.until,
        }
    }
}

impl std::fmt::Debug for PriceListHistoryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceListHistoryBuilder")
            .field("cache_dir", &self.cache_dir)
            .field("time_limit", &self.time_limit)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// What one key is in one version.
struct Listing {
    usd_per_unit: Decimal,
    sku: String,
    effective_date: Option<String>,
    note: Option<String>,
    vcpu: Option<u32>,
    gpu: Option<u32>,
}

/// What `key` is in a version's `docs` as of `at`: of a product's several dated
/// terms, the one in effect then. A product whose every term is still ahead of `at`
/// (announced for a later date) is not in effect: it is left out, and when only such
/// products price `key` the answer is `Ok(None)`, "listed, the rate before holds":
/// the new rate takes effect on its own date, a moment of its own (see [`moments`]).
fn listing(
    key: &PriceKey,
    docs: &[PriceDocument],
    at: DateTime<Utc>,
) -> Result<Option<Listing>, PriceError> {
    let in_effect: std::borrow::Cow<'_, [PriceDocument]> =
        if docs.iter().any(|d| only_ahead_of(d, at)) {
            docs.iter()
                .filter(|d| !only_ahead_of(d, at))
                .cloned()
                .collect::<Vec<_>>()
                .into()
        } else {
            docs.into()
        };
    let selection = match select_rate_at(key, &in_effect, Some(at)) {
        Ok(selection) => selection,
        // Nothing in effect prices the key, but a product announced for later does.
        Err(PriceError::NotFound { .. })
            if in_effect.len() < docs.len()
                && !matches!(
                    select_rate_at(key, docs, Some(at)),
                    Err(PriceError::NotFound { .. })
                ) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    let resources = docs
        .iter()
        .find(|d| d.sku == selection.sku)
        .and_then(InstanceResources::of_product);
    Ok(Some(Listing {
        usd_per_unit: selection.usd_per_unit,
        vcpu: resources.as_ref().and_then(|r| r.vcpu),
        gpu: resources.as_ref().and_then(|r| r.accelerators),
        sku: selection.sku,
        effective_date: selection.effective_date,
        note: selection.reason,
    }))
}

/// The moments a version answers for `key`: the first date it was in effect on, then
/// each later term `effectiveDate` before `end` (the next version takes over then,
/// read or not; for the last version, the day after the last date asked for). A version can
/// list a product's current term next to one that takes effect later; AWS bills the
/// term in effect on the day, so each is a point of the history on its own date.
fn moments(
    key: &PriceKey,
    docs: &[PriceDocument],
    seen_on: NaiveDate,
    end: NaiveDate,
) -> Vec<(NaiveDate, DateTime<Utc>)> {
    let start = seen_on.and_time(NaiveTime::MIN).and_utc();
    let mut moments = vec![(seen_on, start)];
    moments.extend(
        term_dates(key, docs)
            .into_iter()
            .filter(|d| *d > start && d.date_naive() < end)
            .map(|d| (d.date_naive(), d)),
    );
    moments
}

/// The first dates of the versions not read for any key: a version missing for
/// some keys only is read for the others, and for them it is no unread version.
fn unread_dates(missing: &[MissingVersion]) -> Vec<NaiveDate> {
    missing
        .iter()
        .filter(|m| m.keys.is_empty())
        .map(|m| m.seen_on)
        .collect()
}

/// Whether no version that could not be read (`unread`: their first dates) took
/// effect before `first`, the first version read: only then can the version in
/// effect before `first` stand for the rate before it (otherwise that rate is the
/// unread version's, unknown).
fn nothing_unread_before(first: &PriceListVersion, unread: &[NaiveDate]) -> bool {
    unread.iter().all(|d| *d > first.seen_on)
}

/// Where each version read stops answering: where the next version takes over,
/// read or not (`unread`: the first dates of those not read for any key), the last
/// one on the day after `until`.
fn span_ends(
    read: &[(PriceListVersion, Offer)],
    unread: &[NaiveDate],
    until: NaiveDate,
) -> Vec<NaiveDate> {
    read.iter()
        .enumerate()
        .map(|(i, (v, _))| {
            let next_read = read.get(i + 1).map(|(next, _)| next.seen_on);
            let next_unread = unread.iter().copied().filter(|d| *d > v.seen_on).min();
            [next_read, next_unread]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| until.succ_opt().unwrap_or(until))
        })
        .collect()
}

/// Where `key`'s rate is known again, from the version `read[from]` on, when the
/// rate before is unknown: the first moment ([`moments`], within the version's
/// span `ends[i]`) a version read for the key gives its rate or does not list it.
/// Not one that lists it only at a rate announced for later: the rate before still
/// holds then, and that is the one unknown. Versions missing for the key are
/// passed over. `None`: not up to the last date asked for.
fn known_again(
    key: &PriceKey,
    read: &[(PriceListVersion, Offer)],
    ends: &[NaiveDate],
    missing: &[MissingVersion],
    from: usize,
) -> Option<NaiveDate> {
    read.iter()
        .zip(ends)
        .skip(from)
        .filter(|((version, _), _)| !missing_for(missing, version).contains(key))
        .find_map(|((version, offer), end)| {
            moments(key, &offer.documents, version.seen_on, *end)
                .into_iter()
                .find(|(_, at)| !matches!(listing(key, &offer.documents, *at), Ok(None)))
                .map(|(day, _)| day)
        })
}

/// Turns the versions read (in the order they took effect) into one history per key: a point where a
/// key is first listed, where its rate changes (at a version, or at a term's
/// `effectiveDate` inside one), and where it is no longer listed. `missing` are the
/// versions that could not be read, or not for some keys: a version's own terms
/// count only until the next version takes over, read or not (what an unread
/// version billed is unknown, and it may have replaced them). A version among
/// `read` that `missing` names with keys is read for the other keys only: for
/// those it gives no point, and they are not "no longer listed" in it.
/// `before` is the version in effect before the first one read, when that one
/// lists a key only with a rate announced for after `since`: the key's rate until
/// then is `before`'s.
fn build_history(
    region: &str,
    since: NaiveDate,
    until: NaiveDate,
    before: Option<(PriceListVersion, Offer)>,
    read: Vec<(PriceListVersion, Offer)>,
    missing: &[MissingVersion],
    keys_in: &dyn Fn(&[PriceDocument]) -> Vec<PriceKey>,
) -> PriceHistory {
    let mut series: BTreeMap<PriceKey, KeyHistory> = BTreeMap::new();
    let mut versions = Vec::with_capacity(read.len() + 1);
    let unread = unread_dates(missing);
    let unread = unread.as_slice();
    // `before` stands for the rate before the first version read only when no
    // unread version came between them.
    let before = before.filter(|_| {
        read.first()
            .is_some_and(|(first, _)| nothing_unread_before(first, unread))
    });
    let first_version = read.first().map(|(v, _)| v.version.clone());
    let ends = span_ends(&read, unread, until);
    if let Some((earlier, _)) = &before {
        versions.push(earlier.clone());
    }
    for ((version, offer), end) in read.into_iter().zip(ends) {
        let keys = keys_in(&offer.documents);
        let mut listed_now = Vec::new();
        // The keys it is missing for: unknown through its span.
        let mut unknown_now = missing_for(missing, &version).to_vec();
        for key in keys {
            if unknown_now.contains(&key) {
                continue;
            }
            let entry = series.entry(key.clone()).or_insert_with(|| KeyHistory {
                unit: key.unit(),
                key: key.clone(),
                points: Vec::new(),
                last_listed_on: None,
                vcpu: None,
                gpu: None,
            });
            for (seen_on, at) in moments(&key, &offer.documents, version.seen_on, end) {
                match listing(&key, &offer.documents, at) {
                    // Announced for a later date only: the rate before holds until
                    // then (the key is listed, not gone).
                    Ok(None) => {
                        // Announced for later in the first version read: until then
                        // the rate is the version before's, dated `since`.
                        let opening = Some(&version.version) == first_version.as_ref()
                            && seen_on == version.seen_on
                            && entry.points.is_empty();
                        if let Some((earlier, offer)) = before.as_ref().filter(|_| opening)
                            && let Ok(Some(then)) = listing(&key, &offer.documents, at)
                        {
                            entry.points.push(PricePoint {
                                version: earlier.version.clone(),
                                seen_on,
                                usd_per_unit: Some(then.usd_per_unit),
                                change_percent: None,
                                effective_date: then.effective_date,
                                sku: Some(then.sku),
                                note: Some(format!(
                                    "in effect until a later rate of version {}, which lists \
                                     only that one",
                                    version.version
                                )),
                            });
                            entry.vcpu = then.vcpu.or(entry.vcpu);
                            entry.gpu = then.gpu.or(entry.gpu);
                        }
                        if entry
                            .points
                            .last()
                            .is_some_and(|p| p.usd_per_unit.is_some())
                        {
                            entry.last_listed_on = entry.last_listed_on.max(Some(seen_on));
                        }
                        if !listed_now.contains(&key) {
                            listed_now.push(key.clone());
                        }
                    }
                    Ok(Some(now)) => {
                        let before = entry.points.last().and_then(|p| p.usd_per_unit);
                        // A key listed again after "no longer listed" changes from the
                        // rate it was last listed at (the same rate is no change).
                        let last_listed = entry.points.iter().rev().find_map(|p| p.usd_per_unit);
                        if before != Some(now.usd_per_unit) {
                            entry.points.push(PricePoint {
                                version: version.version.clone(),
                                seen_on,
                                usd_per_unit: Some(now.usd_per_unit),
                                change_percent: last_listed
                                    .filter(|old| *old != now.usd_per_unit)
                                    .and_then(|old| {
                                        super::change::percent_change(old, now.usd_per_unit)
                                    })
                                    .map(|mut percent| {
                                        percent.rescale(2);
                                        percent
                                    }),
                                effective_date: now.effective_date,
                                sku: Some(now.sku),
                                note: now.note,
                            });
                        }
                        entry.last_listed_on = entry.last_listed_on.max(Some(seen_on));
                        entry.vcpu = now.vcpu.or(entry.vcpu);
                        entry.gpu = now.gpu.or(entry.gpu);
                        if !listed_now.contains(&key) {
                            listed_now.push(key.clone());
                        }
                    }
                    Err(error) => {
                        tracing::debug!(
                            target: "sagemeter::pricing",
                            version = %version.version,
                            key = %key,
                            "no rate in this version on {seen_on}: {error}"
                        );
                        // Listed, but with no usable rate: not "no longer listed"
                        // either. (`read` makes such a version missing for the key,
                        // whether only at $0, in another currency or contradicting
                        // itself.)
                        if !matches!(error, PriceError::NotFound { .. })
                            && !unknown_now.contains(&key)
                        {
                            unknown_now.push(key.clone());
                        }
                    }
                }
            }
        }
        // Keys listed before and not in this version: no longer listed. (A version
        // with a product that may price a key and cannot be read is never here: it
        // is missing, its rates unknown; nor is a key it is missing for.)
        for (key, entry) in series.iter_mut() {
            let was_listed = entry
                .points
                .last()
                .is_some_and(|p| p.usd_per_unit.is_some());
            if was_listed && !listed_now.contains(key) && !unknown_now.contains(key) {
                entry.points.push(PricePoint {
                    version: version.version.clone(),
                    seen_on: version.seen_on,
                    usd_per_unit: None,
                    change_percent: None,
                    effective_date: None,
                    sku: None,
                    note: Some("no longer listed".into()),
                });
            }
        }
        versions.push(version);
    }
    PriceHistory {
        region: region.to_owned(),
        since,
        until,
        versions,
        series: series
            .into_values()
            .filter(|s| !s.points.is_empty())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::document::parse_price_document;

    /// A download's file is new, 0600, and never a link planted at its name
    /// (the download would be written where it points and read as a price list).
    #[cfg(unix)]
    #[test]
    fn a_part_file_is_never_made_through_a_link_at_its_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("notes.txt");
        std::fs::write(&victim, b"mine").unwrap();
        let names = [dir.path().join("a.part"), dir.path().join("b.part")];
        std::os::unix::fs::symlink(&victim, &names[0]).unwrap();
        let mut next = names.iter().cloned();
        let (path, mut file) = create_part(|| next.next().unwrap()).unwrap();
        assert_eq!(path, names[1]);
        std::io::Write::write_all(&mut file, b"price list").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"mine");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    /// The Price List has no FIPS or dual-stack endpoint (only
    /// `api.pricing.<region>.amazonaws.com`): an application that asks for those
    /// (for SageMaker) still has its price history listed there, as live look-ups are,
    /// not at a host the SDK would make up (`api.pricing-fips.us-east-1.amazonaws.com`,
    /// `api.pricing.us-east-1.api.aws`).
    #[tokio::test]
    async fn fips_and_dual_stack_are_off_for_the_price_history() {
        for (fips, dual_stack) in [(true, false), (false, true), (true, true)] {
            let (http, request) = aws_smithy_http_client::test_util::capture_request(None);
            let config = aws_types::SdkConfig::builder()
                .behavior_version(aws_sdk_pricing::config::BehaviorVersion::latest())
                .region(Region::from_static("eu-west-1"))
                .credentials_provider(aws_sdk_pricing::config::SharedCredentialsProvider::new(
                    aws_sdk_pricing::config::Credentials::new("test", "test", None, None, "static"),
                ))
                .use_fips(fips)
                .use_dual_stack(dual_stack)
                .http_client(http)
                .build();
            let history = PriceListHistory::builder(&config)
                .cache_dir(None)
                .until(on(2))
                .build();
            // One date sampled: one ListPriceLists request.
            let _ = history.versions("eu-west-1", on(2)).await;
            let uri = request.expect_request().uri().to_owned();
            assert_eq!(
                uri, "https://api.pricing.us-east-1.amazonaws.com/",
                "use_fips {fips}, use_dual_stack {dual_stack}"
            );
        }
    }

    #[test]
    fn only_a_digit_version_and_a_region_code_name_a_file_in_the_cache() {
        assert!(cache_safe("20250301000000", "us-east-1"));
        for (version, region) in [
            ("20250301000000", "/tmp/victim"),
            ("20250301000000", "../../etc"),
            ("20250301000000", "US-EAST-1"),
            ("20250301000000", ""),
            ("..", "us-east-1"),
            ("2025/../..", "us-east-1"),
            ("", "us-east-1"),
        ] {
            assert!(!cache_safe(version, region), "{version:?} {region:?}");
        }
    }

    /// The ml.m5.xlarge hosting product at `usd` an hour.
    fn hosting(usd: &str) -> PriceDocument {
        parse_price_document(&format!(
            r#"{{"product":{{"sku":"S","productFamily":"ML Instance","attributes":{{
              "regionCode":"us-east-1","instanceName":"ml.m5.xlarge","component":"Hosting",
              "usagetype":"USE1-Host:ml.m5.xlarge"}}}},
              "terms":{{"OnDemand":{{"S.JRTCKXETXF":{{"priceDimensions":{{"S.JRTCKXETXF.R":{{
              "unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{{"USD":"{usd}"}}}}}}}}}}}}}}"#
        ))
        .unwrap()
    }

    fn on(month: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, month, 1).unwrap()
    }

    /// Version `2025<month>01000000`, listing ml.m5.xlarge at `usd` (`None`: not at all).
    fn version(month: u32, usd: Option<&str>) -> (PriceListVersion, Offer) {
        let v = format!("2025{month:02}01000000");
        let version = PriceListVersion {
            arn: format!("arn:aws:pricing:::price-list/aws/AmazonSageMaker/USD/{v}/us-east-1"),
            version: v,
            region: "us-east-1".into(),
            seen_on: on(month),
            published: None,
            unreadable: None,
        };
        let offer = Offer {
            documents: usd.map(hosting).into_iter().collect(),
            ..Offer::default()
        };
        (version, offer)
    }

    /// The ml.m5.xlarge hosting product with several on-demand terms, each
    /// `(offerTermCode, effectiveDate, USD per hour)`, as one version lists them.
    fn hosting_terms(terms: &[(&str, &str, &str)]) -> PriceDocument {
        let on_demand: Vec<String> = terms
            .iter()
            .map(|(code, date, usd)| {
                format!(
                    r#""S.{code}":{{"sku":"S","offerTermCode":"{code}","effectiveDate":"{date}",
                    "priceDimensions":{{"S.{code}.R":{{"unit":"Hrs","beginRange":"0",
                    "endRange":"Inf","pricePerUnit":{{"USD":"{usd}"}}}}}}}}"#
                )
            })
            .collect();
        parse_price_document(&format!(
            r#"{{"product":{{"sku":"S","productFamily":"ML Instance","attributes":{{
              "regionCode":"us-east-1","instanceName":"ml.m5.xlarge","component":"Hosting",
              "usagetype":"USE1-Host:ml.m5.xlarge"}}}},
              "terms":{{"OnDemand":{{{}}}}}}}"#,
            on_demand.join(",")
        ))
        .unwrap()
    }

    /// Version `2025<month>01000000`, listing the ml.m5.xlarge hosting product with
    /// the on-demand `terms` of [`hosting_terms`].
    fn version_with_terms(month: u32, terms: &[(&str, &str, &str)]) -> (PriceListVersion, Offer) {
        let (version, mut offer) = version(month, None);
        offer.documents = vec![hosting_terms(terms)];
        (version, offer)
    }

    /// The history of ml.m5.xlarge hosting in us-east-1 from `since` to `until`,
    /// from the versions `read`, with `unread` the first dates of those not read.
    fn m5_history(
        since: NaiveDate,
        until: NaiveDate,
        read: Vec<(PriceListVersion, Offer)>,
        unread: &[NaiveDate],
    ) -> PriceHistory {
        build_history(
            "us-east-1",
            since,
            until,
            None,
            read,
            &not_read(unread),
            &|_| vec![PriceKey::hosting("us-east-1", "ml.m5.xlarge")],
        )
    }

    /// The versions `2025<month>01000000` in effect from `dates`, not read.
    fn not_read(dates: &[NaiveDate]) -> Vec<MissingVersion> {
        dates
            .iter()
            .map(|d| MissingVersion {
                version: d.format("%Y%m%d000000").to_string(),
                seen_on: *d,
                unknown_until: None,
                keys: Vec::new(),
                reason: "not read".into(),
            })
            .collect()
    }

    #[test]
    fn each_term_counts_from_its_effective_date_within_the_version_that_lists_it() {
        let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        let (v1, january) = version_with_terms(
            1,
            &[
                ("OLDTERM001", "2024-06-01T00:00:00Z", "0.3000000000"),
                ("JRTCKXETXF", "2024-12-01T00:00:00Z", "0.2500000000"),
                ("NEWTERM001", "2025-02-15T00:00:00Z", "0.2000000000"),
                // Announced in January for a date after the next version took over, and
                // not carried into it: never in effect.
                ("NEWTERM002", "2025-03-10T00:00:00Z", "0.1900000000"),
            ],
        );
        let (v3, march) = version_with_terms(
            3,
            &[
                ("NEWTERM001", "2025-02-15T00:00:00Z", "0.2000000000"),
                // After the last date asked for (2025-04-01): not part of the history.
                ("NEWTERM003", "2025-06-01T00:00:00Z", "0.1800000000"),
            ],
        );
        let history = m5_history(on(1), on(4), vec![(v1, january), (v3, march)], &[]);
        let series = &history.series[0];
        let points: Vec<_> = series
            .points
            .iter()
            .map(|p| {
                (
                    p.version.as_str(),
                    p.seen_on,
                    p.usd_per_unit,
                    p.change_percent,
                    p.effective_date.as_deref(),
                )
            })
            .collect();
        let usd = |s: &str| Some(s.parse::<Decimal>().unwrap());
        assert_eq!(
            points,
            [
                // On 2025-01-01 the term in effect is the latest not after that day:
                // 2024-12-01's $0.25 (2024-06-01's $0.30 is superseded).
                (
                    "20250101000000",
                    day(1, 1),
                    usd("0.25"),
                    None,
                    Some("2024-12-01T00:00:00Z")
                ),
                // The January version's third term takes effect on 2025-02-15, before
                // the March version: (0.20 − 0.25) ÷ 0.25 × 100 = −20.00 %.
                (
                    "20250101000000",
                    day(2, 15),
                    usd("0.20"),
                    usd("-20.00"),
                    Some("2025-02-15T00:00:00Z")
                ),
                // March: $0.20 on 2025-03-01 (the 2025-06-01 term is after 2025-04-01),
                // no change, no point.
            ]
        );
        assert_eq!(series.last_listed_on, Some(day(3, 1)));
    }

    /// AWS bills the term whose `effectiveDate` has passed: a version that lists a
    /// product only at a rate announced for later leaves the rate before in effect
    /// until that date.
    #[test]
    fn a_rate_announced_for_later_takes_effect_on_its_own_date_not_the_versions() {
        let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        let usd = |s: &str| Some(s.parse::<Decimal>().unwrap());
        let read = || {
            vec![
                version_with_terms(1, &[("JRTCKXETXF", "2024-12-01T00:00:00Z", "1.0000000000")]),
                // In effect from 2025-03-01, listing only $0.80 from 2025-03-15.
                version_with_terms(3, &[("NEWTERM001", "2025-03-15T00:00:00Z", "0.8000000000")]),
            ]
        };
        let points = |history: &PriceHistory| -> Vec<_> {
            history.series[0]
                .points
                .iter()
                .map(|p| {
                    (
                        p.version.clone(),
                        p.seen_on,
                        p.usd_per_unit,
                        p.change_percent,
                    )
                })
                .collect()
        };

        // Asked up to 2025-03-10: $0.80 is not in effect by then; $1.00 held all along.
        let history = m5_history(on(1), day(3, 10), read(), &[]);
        assert_eq!(
            points(&history),
            [("20250101000000".into(), day(1, 1), usd("1.00"), None)]
        );
        // Still listed (at $1.00) on 2025-03-01, not "no longer listed".
        assert_eq!(history.series[0].last_listed_on, Some(day(3, 1)));

        // Asked up to 2025-04-01: $0.80 from its own date, 2025-03-15, not from the
        // version's 2025-03-01: (0.80 − 1.00) ÷ 1.00 × 100 = −20.00 %.
        let history = m5_history(on(1), on(4), read(), &[]);
        assert_eq!(
            points(&history),
            [
                ("20250101000000".into(), day(1, 1), usd("1.00"), None),
                (
                    "20250301000000".into(),
                    day(3, 15),
                    usd("0.80"),
                    usd("-20.00")
                ),
            ]
        );
    }

    /// An instance type whose first listing is announced for a later date is first
    /// listed on that date, and not at all when the date is after the span.
    #[test]
    fn a_type_first_announced_for_later_is_first_listed_on_its_date() {
        let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        let read = || {
            vec![version_with_terms(
                1,
                &[("JRTCKXETXF", "2025-01-20T00:00:00Z", "0.5000000000")],
            )]
        };
        let history = m5_history(on(1), on(2), read(), &[]);
        let points: Vec<_> = history.series[0]
            .points
            .iter()
            .map(|p| (p.seen_on, p.usd_per_unit))
            .collect();
        assert_eq!(points, [(day(1, 20), Some(Decimal::new(5, 1)))]);
        // Up to 2025-01-10 it is not yet in effect: no history at all.
        assert!(m5_history(on(1), day(1, 10), read(), &[]).series.is_empty());
    }

    #[test]
    fn a_versions_later_terms_stop_where_an_unread_version_takes_over() {
        let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        let (v1, january) = version_with_terms(
            1,
            &[
                ("JRTCKXETXF", "2024-12-01T00:00:00Z", "0.2500000000"),
                ("NEWTERM001", "2025-02-15T00:00:00Z", "0.2000000000"),
                // Dated inside the March version's span: March was not read, so whether
                // it still listed this term is unknown.
                ("NEWTERM002", "2025-04-10T00:00:00Z", "0.1900000000"),
            ],
        );
        let (v6, june) =
            version_with_terms(6, &[("NEWTERM003", "2025-05-20T00:00:00Z", "0.1800000000")]);
        // The March version (on(3)) was not read.
        let history = m5_history(on(1), on(7), vec![(v1, january), (v6, june)], &[on(3)]);
        let points: Vec<_> = history.series[0]
            .points
            .iter()
            .map(|p| (p.version.as_str(), p.seen_on, p.usd_per_unit))
            .collect();
        let usd = |s: &str| Some(s.parse::<Decimal>().unwrap());
        assert_eq!(
            points,
            [
                ("20250101000000", day(1, 1), usd("0.25")),
                // 2025-02-15 is before March: January's own term holds.
                ("20250101000000", day(2, 15), usd("0.20")),
                // No 2025-04-10 point from January: it is inside March's span. June's
                // rate counts from June, the first date that version answers for.
                ("20250601000000", day(6, 1), usd("0.18")),
            ]
        );
    }

    /// The version before the first one read stands for the rate until that one's
    /// announced term only when nothing came between them: after a version that
    /// could not be read, the rate before is that version's, unknown.
    #[test]
    fn no_rate_opens_the_history_from_before_a_version_that_could_not_be_read() {
        let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        let usd = |s: &str| Some(s.parse::<Decimal>().unwrap());
        // December 2024's version: $0.25 from 2024-12-01.
        let (mut december, december_offer) =
            version_with_terms(1, &[("JRTCKXETXF", "2024-12-01T00:00:00Z", "0.2500000000")]);
        december.version = "20241201000000".into();
        december.seen_on = NaiveDate::from_ymd_opt(2024, 12, 1).unwrap();
        // January's version (in effect on 2025-01-01) was not read. February's lists
        // only $0.20 from 2025-03-01.
        let february =
            version_with_terms(2, &[("NEWTERM001", "2025-03-01T00:00:00Z", "0.2000000000")]);
        let history = build_history(
            "us-east-1",
            on(1),
            on(4),
            Some((december, december_offer)),
            vec![february],
            &not_read(&[on(1)]),
            &|_| vec![PriceKey::hosting("us-east-1", "ml.m5.xlarge")],
        );
        let points: Vec<_> = history.series[0]
            .points
            .iter()
            .map(|p| {
                (
                    p.version.as_str(),
                    p.seen_on,
                    p.usd_per_unit,
                    p.change_percent,
                )
            })
            .collect();
        // From 2025-02-01 to 2025-03-01 the rate is January's, unknown: not
        // December's $0.25. $0.20 is first listed on its own date, no change to
        // work out from.
        assert_eq!(points, [("20250201000000", day(3, 1), usd("0.20"), None)]);
    }

    #[tokio::test]
    async fn a_china_region_is_refused_as_not_in_the_global_price_list_not_as_never_listed() {
        let conf = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let history = PriceListHistory::builder(&conf).build();
        let since = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let key = PriceKey::hosting("cn-north-1", "ml.m5.xlarge");
        for answer in [
            history.history(&key, since).await.map(|_| ()),
            history
                .family("cn-northwest-1", "ml.m5", since)
                .await
                .map(|_| ()),
            history.versions("cn-north-1", since).await.map(|_| ()),
        ] {
            match answer {
                Err(HistoryError::Invalid { reason }) => {
                    assert!(reason.contains("China"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_relisted_rate_changes_from_the_previous_listed_rate() {
        let read = vec![
            version(1, Some("0.20")),
            version(2, None),
            version(3, Some("0.25")),
            version(4, None),
            version(5, Some("0.25")),
        ];
        let history = m5_history(on(1), on(5), read, &[]);
        let points: Vec<_> = history.series[0]
            .points
            .iter()
            .map(|p| (p.seen_on, p.usd_per_unit, p.change_percent))
            .collect();
        let usd = |s: &str| Some(s.parse::<Decimal>().unwrap());
        assert_eq!(
            points,
            [
                (on(1), usd("0.20"), None),
                (on(2), None, None),
                // Listed again at 0.25, the last listed rate being 0.20:
                // (0.25 − 0.20) ÷ 0.20 × 100 = +25.00 %.
                (on(3), usd("0.25"), usd("25.00")),
                (on(4), None, None),
                // Listed again at the rate it had: a point, but not a change.
                (on(5), usd("0.25"), None),
            ]
        );
        assert_eq!(history.series[0].changes().count(), 1);
    }
}
