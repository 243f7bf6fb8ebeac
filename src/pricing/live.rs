//! Live prices from the AWS Price List Query API (`GetProducts`).

use super::document::{
    PriceDocument, Selection, may_price, parse_price_document, parse_price_value, select_rate_at,
    term_dates,
};
use super::{
    BoxFuture, InstanceResources, NextTerm, PriceError, PriceKey, PriceOrigin, PriceSource,
    Provenance, Rate,
};
use aws_sdk_pricing::config::{BehaviorVersion, Region};
use aws_sdk_pricing::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_pricing::operation::get_products::GetProductsError;
use aws_sdk_pricing::types::{Filter, FilterType};
use aws_smithy_async::future::timeout::Timeout;
use aws_smithy_async::rt::sleep::{AsyncSleep, SharedAsyncSleep, default_async_sleep};
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The default bound on one whole look-up, all pages included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Products asked for per page (the API's maximum is 100).
const PAGE_SIZE: i32 = 100;

/// The most pages one look-up follows. The filters narrow a look-up to a few dozen
/// products; a server that keeps paginating past this is not answering the question,
/// and the look-up fails as malformed rather than choose from part of the list.
const MAX_PAGES: usize = 10;

/// Which Price List API endpoint region to use.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PricingRegion {
    /// us-east-1 (default).
    #[default]
    UsEast1,
    /// eu-central-1.
    EuCentral1,
    /// ap-south-1.
    ApSouth1,
    /// cn-northwest-1: the China partition's own Price List endpoint (prices in CNY),
    /// the only one China credentials are accepted by.
    CnNorthwest1,
}

impl PricingRegion {
    /// The region code, e.g. `us-east-1`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PricingRegion::UsEast1 => "us-east-1",
            PricingRegion::EuCentral1 => "eu-central-1",
            PricingRegion::ApSouth1 => "ap-south-1",
            PricingRegion::CnNorthwest1 => "cn-northwest-1",
        }
    }

    /// The Price List endpoint for an application in `region`, chosen by partition:
    /// cn-northwest-1 for the China regions (`cn-*`), whose credentials the global
    /// endpoint refuses; us-east-1 for every other region. GovCloud has no Price List
    /// endpoint of its own: price from a commercial-partition configuration (see
    /// `ClientBuilder::pricing_config`). Nor have the isolated partitions (ISO
    /// regions, the AWS European Sovereign Cloud) one that sagemeter knows of:
    /// [`LivePrices::builder`] does not ask us-east-1 with their credentials, which
    /// it would refuse, and says so instead.
    pub fn for_region(region: &str) -> PricingRegion {
        if region.starts_with("cn-") {
            PricingRegion::CnNorthwest1
        } else {
            PricingRegion::UsEast1
        }
    }
}

/// The AWS partitions (by their regions' prefix) whose credentials the commercial
/// partition's Price List endpoint refuses, and whose own Price List endpoint, if
/// any, sagemeter does not know: the ISO partitions and the AWS European Sovereign
/// Cloud, as the SDK's partition table names them.
const WITHOUT_PRICE_LIST: &[(&str, &str)] = &[
    ("us-iso-", "aws-iso"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc (AWS European Sovereign Cloud)"),
];

/// What to do when the configuration's partition has no Price List sagemeter can
/// reach: the whole of the advice that ends [`LivePrices`]' reason.
pub(crate) const NO_PRICE_LIST_ADVICE: &str = "set price overrides, or give \
    ClientBuilder::pricing_config a configuration of the commercial partition";

/// The partition of `region` when it is one whose Price List sagemeter cannot
/// reach ([`WITHOUT_PRICE_LIST`]).
pub(crate) fn partition_without_price_list(region: &str) -> Option<&'static str> {
    WITHOUT_PRICE_LIST
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map(|(_, partition)| *partition)
}

/// Prices from the AWS Price List Query API, one `GetProducts` look-up per call.
///
/// Not cached: put it behind [`CachedPrices`](super::CachedPrices), as
/// [`default_price_source`](super::default_price_source) does.
///
/// The Price List API is served from a few regions only (us-east-1, eu-central-1,
/// ap-south-1; cn-northwest-1 for the China partition) and answers for every region of
/// its partition, so the pricing client is pinned to one of those whatever region the
/// application runs in ([`PricingRegion::for_region`]). It keeps the rest of the
/// application's [`SdkConfig`](aws_types::SdkConfig): credentials, HTTP client, and the
/// standard endpoint settings (`AWS_ENDPOINT_URL_PRICING`, `AWS_ENDPOINT_URL`, the
/// `services` section of the shared config file, `endpoint_url` set in code).
///
/// Pricing must never hold inference up: a whole look-up (all pages) is bounded by
/// [`LivePricesBuilder::timeout`] (1 s by default) and is tried once; the cache in front
/// of it ([`CachedPrices`](super::CachedPrices)) decides when to try again.
///
/// ```no_run
/// use sagemeter::pricing::{LivePrices, PriceKey, PriceSource, PricingRegion};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), sagemeter::pricing::PriceError> {
/// let sdk_config = aws_config::load_from_env().await;
/// let live = LivePrices::builder(&sdk_config)
///     .pricing_region(PricingRegion::EuCentral1)
///     .timeout(Duration::from_millis(1500))
///     .build();
/// let rate = live.price(&PriceKey::hosting("eu-west-1", "ml.g5.xlarge")).await?;
/// println!("{} USD/{} (SKU {:?})", rate.usd_per_unit, rate.unit, rate.provenance.sku);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LivePrices {
    client: aws_sdk_pricing::Client,
    /// Why every look-up fails without a request: the configuration's partition
    /// has no Price List sagemeter can reach ([`partition_without_price_list`]).
    unreachable: Option<String>,
    timeout: Duration,
    sleep: Option<SharedAsyncSleep>,
    time_source: SharedTimeSource,
}

// Hand-written: the SDK client's Debug prints its configuration, credentials' key id included.
impl std::fmt::Debug for LivePrices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePrices")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Builder for [`LivePrices`]; start with [`LivePrices::builder`].
pub struct LivePricesBuilder {
    config: aws_sdk_pricing::config::Builder,
    pricing_region: PricingRegion,
    /// See [`LivePrices::unreachable`]; cleared by an explicit pricing region.
    unreachable: Option<String>,
    timeout: Duration,
    max_attempts: u32,
    time_source: Option<SharedTimeSource>,
    sleep: Option<SharedAsyncSleep>,
}

/// The Price List client configuration both the live look-ups and the price
/// history start from: the application's SDK configuration (credentials, HTTP
/// client, endpoint URL) with FIPS and dual-stack endpoints turned off, since the
/// Price List has neither (see [`LivePrices::builder`]), and the latest behaviour
/// version when the application set none. The caller sets the region.
pub(super) fn price_list_config(
    sdk_config: &aws_types::SdkConfig,
) -> aws_sdk_pricing::config::Builder {
    // `From<&SdkConfig>` resolves the endpoint URL (service-specific first, then the
    // general one); setting the region afterwards leaves that resolution alone.
    let mut config = aws_sdk_pricing::config::Builder::from(sdk_config);
    // Copied from the SDK config by `From`; the Price List has neither kind of
    // endpoint.
    config.set_use_fips(Some(false));
    config.set_use_dual_stack(Some(false));
    if sdk_config.behavior_version().is_none() {
        config.set_behavior_version(Some(BehaviorVersion::latest()));
    }
    config
}

impl LivePrices {
    /// Live prices with default settings: the Price List endpoint of the SDK config's
    /// partition ([`PricingRegion::for_region`]: us-east-1, or cn-northwest-1 for the
    /// China regions), 1 s per look-up, one attempt.
    pub fn from_sdk_config(sdk_config: &aws_types::SdkConfig) -> Self {
        Self::builder(sdk_config).build()
    }

    /// Starts from the application's SDK configuration (credentials, HTTP client,
    /// endpoint settings); the region is replaced by the pricing region.
    ///
    /// FIPS and dual-stack endpoints (`use_fips`, `use_dual_stack`,
    /// `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`) are turned off for
    /// the pricing client: the Price List API is served only from
    /// `api.pricing.<region>.amazonaws.com` (`.amazonaws.com.cn` in China), with no
    /// FIPS or dual-stack endpoint, so an application that uses them for
    /// SageMaker would otherwise have every price look-up fail. An endpoint URL
    /// set for the Price List (`AWS_ENDPOINT_URL_PRICING`, `AWS_ENDPOINT_URL`,
    /// `endpoint_url`) is used as it is; the SDK refuses FIPS or dual-stack
    /// together with one anyway. To keep pricing requests off endpoints that are
    /// not FIPS, price without the Price List (a [`Snapshot`](super::Snapshot) and
    /// price overrides) or give a client of your own to
    /// [`from_client`](Self::from_client).
    pub fn builder(sdk_config: &aws_types::SdkConfig) -> LivePricesBuilder {
        let config = price_list_config(sdk_config);
        // An endpoint URL of the user's is where they say the Price List is.
        let endpoint_url = sdk_config.endpoint_url().is_some()
            || sdk_config.service_config().is_some_and(|config| {
                let key = aws_types::service_config::ServiceConfigKey::builder()
                    .service_id("Pricing")
                    .env("AWS_ENDPOINT_URL")
                    .profile("endpoint_url")
                    .build();
                key.is_ok_and(|key| config.load_config(key).is_some())
            });
        let region = sdk_config.region().map(|region| region.as_ref());
        let unreachable = region.filter(|_| !endpoint_url).and_then(|region| {
            let partition = partition_without_price_list(region)?;
            Some(format!(
                "the AWS configuration is for {}, in partition {partition}, whose \
                 credentials the Price List endpoints sagemeter knows (us-east-1, \
                 eu-central-1, ap-south-1, and cn-northwest-1 for China) do not accept: \
                 none was asked; {NO_PRICE_LIST_ADVICE}",
                crate::redact::printable(region)
            ))
        });
        LivePricesBuilder {
            config,
            pricing_region: region.map(PricingRegion::for_region).unwrap_or_default(),
            unreachable,
            timeout: DEFAULT_TIMEOUT,
            max_attempts: 1,
            time_source: sdk_config.time_source(),
            sleep: sdk_config.sleep_impl(),
        }
    }

    /// Uses a pricing client exactly as configured (its region, retries and timeouts).
    /// The look-up is still bounded by [`DEFAULT_TIMEOUT`].
    pub fn from_client(client: aws_sdk_pricing::Client) -> Self {
        let time_source = client.config().time_source().unwrap_or_default();
        let sleep = client.config().sleep_impl().or_else(default_async_sleep);
        LivePrices {
            client,
            unreachable: None,
            timeout: DEFAULT_TIMEOUT,
            sleep,
            time_source,
        }
    }

    /// The pricing client in use.
    pub fn client(&self) -> &aws_sdk_pricing::Client {
        &self.client
    }

    async fn look_up(&self, key: &PriceKey) -> Result<Rate, PriceError> {
        if let Some(reason) = &self.unreachable {
            return Err(PriceError::Unavailable {
                reason: reason.clone(),
            });
        }
        let fetch = self.fetch(key);
        let docs = match &self.sleep {
            Some(sleep) => Timeout::new(fetch, sleep.sleep(self.timeout))
                .await
                .map_err(|_| PriceError::Unavailable {
                    reason: format!(
                        "the Price List API did not answer within {} ms",
                        self.timeout.as_millis()
                    ),
                })??,
            None => fetch.await?,
        };
        let fetched_at: DateTime<Utc> = self.time_source.now().into();

        let mut parsed = Vec::with_capacity(docs.len());
        let mut first_error = None;
        let mut bad = 0usize;
        for doc in &docs {
            match parse_price_document(doc) {
                Ok(d) => parsed.push(d),
                // One that may price the key may be the term in effect, or the
                // higher of two: the others' rate could under-state the price, so
                // the look-up fails (the next source in the chain prices the call,
                // saying so) rather than choose without it.
                Err(e) if may_price_unreadable(key, doc) => {
                    let why = match e {
                        PriceError::Malformed { reason } => reason,
                        other => other.to_string(),
                    };
                    return Err(PriceError::Malformed {
                        reason: format!(
                            "a price document that may price {key} could not be read: {why}"
                        ),
                    });
                }
                Err(e) => {
                    bad += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let selection = match (select_rate_at(key, &parsed, Some(fetched_at)), first_error) {
            (Ok(s), _) => s,
            // A garbled document may have been the one we wanted: say so, not "not found".
            (Err(PriceError::NotFound { .. }), Some(PriceError::Malformed { reason })) => {
                return Err(PriceError::Malformed {
                    reason: format!(
                        "{bad} of {} price documents for {key} could not be read; first: {reason}",
                        docs.len()
                    ),
                });
            }
            (Err(e), _) => return Err(e),
        };
        let mut rate = live_rate(key, &parsed, selection, fetched_at, bad);
        // The terms announced for later dates (a price change AWS published ahead
        // of its date), each with the rate the answer gives from then: the cache
        // serves it from its date on. The last one priced leads to the next date
        // alone (a rate is stale from it).
        // A product whose every term is still ahead is priced at its earliest
        // (noted as not yet in effect): that term is the rate, not one after it.
        let served_from = rate
            .provenance
            .effective_date
            .as_deref()
            .and_then(|date| DateTime::parse_from_rfc3339(date).ok())
            .map_or(fetched_at, |date| date.to_utc().max(fetched_at));
        let ahead: Vec<DateTime<Utc>> = term_dates(key, &parsed)
            .into_iter()
            .filter(|date| *date > served_from)
            .take(MAX_TERMS_AHEAD + 1)
            .collect();
        let mut next: Option<Box<NextTerm>> = None;
        for (n, &on) in ahead.iter().enumerate().rev() {
            let announced = (n < MAX_TERMS_AHEAD)
                .then(|| select_rate_at(key, &parsed, Some(on)).ok())
                .flatten()
                .map(|selection| {
                    let mut announced = live_rate(key, &parsed, selection, fetched_at, bad);
                    announced.next_term = next.take();
                    Rate::with_note_before(announced, &announced_note(on, fetched_at))
                });
            next = Some(Box::new(NextTerm {
                on,
                rate: announced,
            }));
        }
        rate.next_term = next;
        Ok(rate)
    }

    /// All `PriceList` strings for the key's filters, following `NextToken`.
    async fn fetch(&self, key: &PriceKey) -> Result<Vec<String>, PriceError> {
        let filters = filters_for(key)?;
        let mut docs = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut page = self
                .client
                .get_products()
                .service_code("AmazonSageMaker")
                .format_version("aws_v1")
                .set_filters(Some(filters.clone()))
                .set_next_token(next_token.take())
                .max_results(PAGE_SIZE)
                .send()
                .await
                .map_err(describe_sdk_error)?;
            docs.append(&mut page.price_list.take().unwrap_or_default());
            match page.next_token.take() {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(docs),
            }
        }
        // A better match may be on a later page: fail, so the chain falls back and says so.
        Err(PriceError::Malformed {
            reason: format!(
                "the Price List API still had more products for {key} after {MAX_PAGES} pages \
                 ({} so far); not choosing from part of the list",
                docs.len()
            ),
        })
    }
}

impl std::fmt::Debug for LivePricesBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePricesBuilder")
            .field("pricing_region", &self.pricing_region)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl LivePricesBuilder {
    /// The Price List endpoint region (default: [`PricingRegion::for_region`] of the
    /// SDK config's region, us-east-1 outside China). The region of the prices asked
    /// for comes from each [`PriceKey`], not from this.
    ///
    /// Without it, a configuration of a partition whose Price List sagemeter cannot
    /// reach (an ISO region, the AWS European Sovereign Cloud) and no endpoint URL
    /// asks nothing: each look-up fails as [`PriceError::Unavailable`], saying
    /// why. Set, the endpoint is asked with that configuration's credentials.
    pub fn pricing_region(mut self, region: PricingRegion) -> Self {
        self.pricing_region = region;
        self.unreachable = None;
        self
    }

    /// The bound on one whole look-up, all pages included (default 1 s). Beyond it the
    /// look-up fails as [`PriceError::Unavailable`] and the caller falls back.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Attempts per request, 1 to 3 (default 1: no retry). The cache in front retries
    /// after its failure backoff; retrying here would only spend the timeout.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.clamp(1, 3);
        self
    }

    /// Where "now" comes from for [`Provenance::fetched_at`] (default: the SDK config's
    /// time source, else the system clock).
    pub fn time_source(mut self, time_source: SharedTimeSource) -> Self {
        self.time_source = Some(time_source);
        self
    }

    /// Builds the pricing client: the SDK config's settings, pinned to the pricing region,
    /// with the look-up timeout as operation timeout and the attempts set above.
    pub fn build(self) -> LivePrices {
        let LivePricesBuilder {
            mut config,
            pricing_region,
            unreachable,
            timeout,
            max_attempts,
            time_source,
            sleep,
        } = self;
        config.set_region(Some(Region::from_static(pricing_region.as_str())));
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(timeout)
            .operation_attempt_timeout(timeout)
            .connect_timeout(timeout)
            .build();
        config.set_timeout_config(Some(timeouts));
        let retry = if max_attempts <= 1 {
            RetryConfig::disabled()
        } else {
            RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(200))
        };
        config.set_retry_config(Some(retry));
        let client = aws_sdk_pricing::Client::from_conf(config.build());
        LivePrices {
            client,
            unreachable,
            timeout,
            sleep: sleep.or_else(default_async_sleep),
            time_source: time_source.unwrap_or_default(),
        }
    }
}

impl PriceSource for LivePrices {
    fn price<'a>(&'a self, key: &'a PriceKey) -> BoxFuture<'a, Result<Rate, PriceError>> {
        Box::pin(self.look_up(key))
    }
}

/// The `TERM_MATCH` filters for a key.
///
/// Instance keys ask for every product of the instance name in the region (one per
/// component, a dozen or so) and let [`select_rate_at`] choose: filtering on `component`
/// too would turn a renamed component into "not found" instead of a reasoned choice.
/// Serverless keys ask for productFamily `ML Serverless` (on-demand and both
/// provisioned-concurrency charges: which product is which charge is decided from each
/// document, not filtered); data keys for operation `Invoke-Endpoint`; storage for
/// productFamily `Storage` (hosting, notebook, processing, ... volumes, told apart by
/// volumeType and usagetype). The usagetype carries a region prefix (`USE1-`, `EU-`,
/// ...) that is not derivable from the region code, so it is matched after the fact, not
/// filtered.
pub(crate) fn filters_for(key: &PriceKey) -> Result<Vec<Filter>, PriceError> {
    filter_pairs(key)
        .into_iter()
        .map(|(field, value)| {
            Filter::builder()
                .r#type(FilterType::TermMatch)
                .field(field)
                .value(value)
                .build()
                .map_err(|e| PriceError::Unavailable {
                    reason: format!("could not build the GetProducts filter {field}: {e}"),
                })
        })
        .collect()
}

/// The `(field, value)` pairs of [`filters_for`]: `productFamily` is the product's own
/// field, every other field a product attribute. Price history reads offer files with
/// the same pairs, so both ways of reading the Price List consider the same products.
pub(crate) fn filter_pairs(key: &PriceKey) -> Vec<(&'static str, String)> {
    let mut pairs: Vec<(&'static str, String)> = vec![("regionCode", key.region().to_owned())];
    match key {
        PriceKey::Hosting { instance_type, .. }
        | PriceKey::AsyncInference { instance_type, .. } => {
            pairs.push(("instanceName", instance_type.clone()));
        }
        PriceKey::Serverless { .. }
        | PriceKey::ProvisionedConcurrency { .. }
        | PriceKey::ProvisionedConcurrencyUsage { .. } => {
            pairs.push(("productFamily", "ML Serverless".to_owned()));
        }
        PriceKey::DataIn { .. } | PriceKey::DataOut { .. } => {
            pairs.push(("operation", "Invoke-Endpoint".to_owned()));
        }
        PriceKey::Storage { .. } => {
            pairs.push(("productFamily", "Storage".to_owned()));
        }
    }
    pairs
}

/// What went wrong, in words that never include credentials or request signatures:
/// only error codes, HTTP statuses and the transport's own error chain.
fn describe_sdk_error(
    err: SdkError<GetProductsError, aws_smithy_runtime_api::http::Response>,
) -> PriceError {
    let unavailable = |reason: String| PriceError::Unavailable { reason };
    match &err {
        SdkError::TimeoutError(_) => {
            unavailable("the Price List API did not answer in time".into())
        }
        SdkError::DispatchFailure(failure) => {
            let what = if failure.is_timeout() {
                "the connection timed out"
            } else if failure.is_io() {
                "the connection failed"
            } else {
                "the request could not be sent"
            };
            let detail = failure
                .as_connector_error()
                .map(|e| format!(": {}", crate::redact::error_chain(e)))
                .unwrap_or_default();
            unavailable(format!(
                "could not reach the Price List API, {what}{detail}"
            ))
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status().as_u16();
            if status >= 500 {
                unavailable(format!("the Price List API failed (HTTP {status})"))
            } else {
                PriceError::Malformed {
                    reason: format!(
                        "the Price List API answered HTTP {status} with a body that is not a \
                         GetProducts response"
                    ),
                }
            }
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = error_code(service.err());
            let is_throttling = service.err().is_throttling_exception()
                || status == 429
                || matches!(
                    code,
                    Some("Throttling" | "ThrottlingException" | "TooManyRequestsException")
                );
            let code_text = code.unwrap_or("no error code");
            if is_throttling {
                unavailable(format!(
                    "the Price List API throttled the request ({code_text}, HTTP {status})"
                ))
            } else if (200..300).contains(&status) {
                PriceError::Malformed {
                    reason: format!(
                        "the Price List API answered HTTP {status} with a body that is not a \
                         GetProducts response"
                    ),
                }
            } else if status >= 500 {
                unavailable(format!(
                    "the Price List API failed ({code_text}, HTTP {status})"
                ))
            } else {
                // Credentials the endpoint does not know (another partition's,
                // GovCloud's) are refused with 403 too: no permission would help.
                let unknown_credentials = matches!(
                    code,
                    Some(
                        "UnrecognizedClientException"
                            | "InvalidClientTokenId"
                            | "InvalidSignatureException"
                    )
                );
                let hint = if unknown_credentials {
                    "; the credentials are not valid at the Price List endpoint (a wrong, \
                     deleted or inactive key, or another partition's, such as GovCloud's, \
                     which must price with a commercial-partition configuration)"
                } else if service.err().is_access_denied_exception() || status == 403 {
                    "; the credentials need pricing:GetProducts"
                } else {
                    ""
                };
                unavailable(format!(
                    "the Price List API refused the request ({code_text}, HTTP {status}){hint}"
                ))
            }
        }
        SdkError::ConstructionFailure(_) => unavailable(format!(
            "the GetProducts request could not be built: {}",
            crate::redact::error_chain(&err)
        )),
        _ => unavailable("GetProducts failed".into()),
    }
}

/// The error code from the response, else the modeled error's name.
fn error_code(err: &GetProductsError) -> Option<&str> {
    err.code().or(match err {
        GetProductsError::AccessDeniedException(_) => Some("AccessDeniedException"),
        GetProductsError::ExpiredNextTokenException(_) => Some("ExpiredNextTokenException"),
        GetProductsError::InternalErrorException(_) => Some("InternalErrorException"),
        GetProductsError::InvalidNextTokenException(_) => Some("InvalidNextTokenException"),
        GetProductsError::InvalidParameterException(_) => Some("InvalidParameterException"),
        GetProductsError::NotFoundException(_) => Some("NotFoundException"),
        GetProductsError::ThrottlingException(_) => Some("ThrottlingException"),
        _ => None,
    })
}

/// Whether a `PriceList` element that could not be read as a price document may
/// price `key`: its product's attributes can be read, and say it may ([`may_price`],
/// the rule the offer files' reader applies to their products). One that is not
/// JSON, or whose product cannot be read either (no SKU), says nothing of what it
/// prices, and one whose attributes say it prices something else (a Training
/// product, for hosting) cannot: those are skipped, noted on the rate.
fn may_price_unreadable(key: &PriceKey, element: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(element) else {
        return false;
    };
    parse_price_value(&serde_json::json!({ "product": value["product"] }))
        .is_ok_and(|doc| may_price(key, &doc))
}

/// How many terms announced ahead of their dates a live rate carries the rates
/// of: AWS announces one change at a time, a few times a year.
const MAX_TERMS_AHEAD: usize = 4;

/// A live rate as `selection` gives it from the answer's `docs`.
fn live_rate(
    key: &PriceKey,
    docs: &[PriceDocument],
    selection: Selection,
    fetched_at: DateTime<Utc>,
    bad: usize,
) -> Rate {
    let mut provenance = Provenance::new(PriceOrigin::Live)
        .with_sku(selection.sku.clone())
        .with_fetched_at(fetched_at);
    if let Some(date) = selection.effective_date {
        provenance = provenance.with_effective_date(date);
    }
    let mut note = selection.reason.unwrap_or_default();
    if bad > 0 {
        if !note.is_empty() {
            note.push_str("; ");
        }
        note.push_str(&format!("skipped {bad} unreadable price document(s)"));
    }
    if !note.is_empty() {
        provenance = provenance.with_note(note);
    }
    let mut rate = Rate::new(key.clone(), selection.usd_per_unit, provenance);
    if matches!(
        key,
        PriceKey::Hosting { .. } | PriceKey::AsyncInference { .. }
    ) && let Some(resources) = docs
        .iter()
        .find(|d| d.sku == selection.sku)
        .and_then(InstanceResources::of_product)
    {
        rate = rate.with_instance(resources);
    }
    rate
}

/// The note on a rate taken from a term an answer announced ahead of its date.
pub(crate) fn announced_note(on: DateTime<Utc>, fetched_at: DateTime<Utc>) -> String {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "rate of the term effective {}, announced in the Price List answer fetched {}",
        at(on),
        at(fetched_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_pricing::Client;
    use aws_sdk_pricing::config::{Credentials, SharedCredentialsProvider};
    use aws_sdk_pricing::operation::get_products::GetProductsOutput;
    use aws_sdk_pricing::types::error::{AccessDeniedException, ThrottlingException};
    use aws_smithy_mocks::{
        MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock,
    };

    fn mocked(rules: &[&Rule]) -> LivePrices {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        let config = aws_sdk_pricing::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .http_client(create_mock_http_client())
            .retry_config(RetryConfig::disabled())
            .interceptor(interceptor)
            .build();
        LivePrices::from_client(Client::from_conf(config))
    }

    fn sdk_config(region: &'static str) -> aws_types::SdkConfig {
        aws_types::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static(region))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "static",
            )))
            .build()
    }

    fn filters(key: &PriceKey) -> Vec<(String, String)> {
        filters_for(key)
            .unwrap()
            .iter()
            .map(|f| {
                assert_eq!(f.r#type(), &FilterType::TermMatch);
                (f.field().to_owned(), f.value().to_owned())
            })
            .collect()
    }

    fn pair(field: &str, value: &str) -> (String, String) {
        (field.to_owned(), value.to_owned())
    }

    #[test]
    fn filters_name_the_region_and_what_the_key_means() {
        let region = || "eu-west-1".to_owned();
        assert_eq!(
            filters(&PriceKey::hosting("eu-west-1", "ml.g5.xlarge")),
            [
                pair("regionCode", "eu-west-1"),
                pair("instanceName", "ml.g5.xlarge")
            ]
        );
        assert_eq!(
            filters(&PriceKey::AsyncInference {
                region: region(),
                instance_type: "ml.g5.xlarge".into()
            }),
            [
                pair("regionCode", "eu-west-1"),
                pair("instanceName", "ml.g5.xlarge")
            ]
        );
        for key in [
            PriceKey::serverless("eu-west-1", 4),
            PriceKey::ProvisionedConcurrency {
                region: region(),
                memory_gb: 4,
            },
            PriceKey::ProvisionedConcurrencyUsage {
                region: region(),
                memory_gb: 4,
            },
        ] {
            assert_eq!(
                filters(&key),
                [
                    pair("regionCode", "eu-west-1"),
                    pair("productFamily", "ML Serverless")
                ]
            );
        }
        for key in [
            PriceKey::DataIn { region: region() },
            PriceKey::DataOut { region: region() },
        ] {
            assert_eq!(
                filters(&key),
                [
                    pair("regionCode", "eu-west-1"),
                    pair("operation", "Invoke-Endpoint")
                ]
            );
        }
        assert_eq!(
            filters(&PriceKey::storage("eu-west-1")),
            [
                pair("regionCode", "eu-west-1"),
                pair("productFamily", "Storage")
            ]
        );
    }

    #[test]
    fn client_is_pinned_to_the_pricing_region_whatever_the_app_region() {
        let live = LivePrices::from_sdk_config(&sdk_config("eu-west-1"));
        assert_eq!(
            live.client().config().region().map(|r| r.as_ref()),
            Some("us-east-1")
        );
        let live = LivePrices::builder(&sdk_config("eu-west-1"))
            .pricing_region(PricingRegion::ApSouth1)
            .build();
        assert_eq!(
            live.client().config().region().map(|r| r.as_ref()),
            Some("ap-south-1")
        );
    }

    #[test]
    fn china_regions_ask_the_china_partitions_price_list_endpoint() {
        // China credentials are refused by the global endpoint: cn-northwest-1 serves
        // the China partition's Price List.
        for app_region in ["cn-north-1", "cn-northwest-1"] {
            let live = LivePrices::from_sdk_config(&sdk_config(app_region));
            assert_eq!(
                live.client().config().region().map(|r| r.as_ref()),
                Some("cn-northwest-1"),
                "{app_region}"
            );
        }
        for app_region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
            assert_eq!(
                PricingRegion::for_region(app_region),
                PricingRegion::UsEast1,
                "{app_region}"
            );
        }
    }

    /// The request `live` sends for a look-up, captured, never answered for real.
    async fn request_of(config: aws_types::sdk_config::Builder) -> String {
        let (http, request) = aws_smithy_http_client::test_util::capture_request(None);
        let live = LivePrices::builder(&config.http_client(http).build()).build();
        let _ = live
            .price(&PriceKey::hosting("eu-west-1", "ml.g5.xlarge"))
            .await;
        request.expect_request().uri().to_owned()
    }

    fn sdk_config_builder(region: &'static str) -> aws_types::sdk_config::Builder {
        aws_types::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static(region))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "static",
            )))
    }

    /// The Price List's documented endpoints are `api.pricing.<region>.amazonaws.com`,
    /// none FIPS or dual-stack: an application that asks for those (for SageMaker)
    /// still has its prices looked up there, not at a host the SDK would make up
    /// (`api.pricing-fips.us-east-1.amazonaws.com`, `api.pricing.us-east-1.api.aws`).
    #[tokio::test]
    async fn fips_and_dual_stack_are_off_for_the_price_list() {
        for (fips, dual_stack) in [(true, false), (false, true), (true, true)] {
            let config = sdk_config_builder("eu-west-1")
                .use_fips(fips)
                .use_dual_stack(dual_stack);
            assert_eq!(
                request_of(config).await,
                "https://api.pricing.us-east-1.amazonaws.com/",
                "use_fips {fips}, use_dual_stack {dual_stack}"
            );
        }
        // An endpoint URL set for it is used as it is (with FIPS on, the SDK
        // refuses it: "FIPS and custom endpoint are not supported").
        let config = sdk_config_builder("eu-west-1")
            .use_fips(true)
            .endpoint_url("http://127.0.0.1:9");
        assert_eq!(request_of(config).await, "http://127.0.0.1:9/");
    }

    /// An application in an ISO region or the AWS European Sovereign Cloud has
    /// credentials the Price List endpoints sagemeter knows do not accept: it asks
    /// none of them, and each look-up says why instead of failing at us-east-1.
    #[tokio::test]
    async fn a_partition_without_a_reachable_price_list_is_not_asked() {
        for (region, partition) in [
            ("eusc-de-east-1", "aws-eusc"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
        ] {
            let (http, request) = aws_smithy_http_client::test_util::capture_request(None);
            let config = sdk_config_builder(region).http_client(http).build();
            let live = LivePrices::builder(&config).build();
            let err = live
                .price(&PriceKey::hosting(region, "ml.m5.xlarge"))
                .await
                .unwrap_err();
            let PriceError::Unavailable { reason } = &err else {
                panic!("{err:?}")
            };
            assert!(
                reason.starts_with(&format!(
                    "the AWS configuration is for {region}, in partition {partition}"
                )),
                "{reason}"
            );
            assert!(
                reason.ends_with(
                    "none was asked; set price overrides, or give \
                     ClientBuilder::pricing_config a configuration of the commercial partition"
                ),
                "{reason}"
            );
            request.expect_no_request();
        }
        // Told where the Price List is (an endpoint URL, or a pricing region), it
        // asks there.
        let config = sdk_config_builder("eusc-de-east-1").endpoint_url("http://127.0.0.1:9");
        assert_eq!(request_of(config).await, "http://127.0.0.1:9/");
        let (http, request) = aws_smithy_http_client::test_util::capture_request(None);
        let config = sdk_config_builder("us-iso-east-1")
            .http_client(http)
            .build();
        let live = LivePrices::builder(&config)
            .pricing_region(PricingRegion::UsEast1)
            .build();
        let _ = live
            .price(&PriceKey::hosting("us-iso-east-1", "ml.m5.xlarge"))
            .await;
        assert_eq!(
            request.expect_request().uri(),
            "https://api.pricing.us-east-1.amazonaws.com/"
        );
        // The commercial partition and GovCloud are asked at us-east-1 as before,
        // and China at cn-northwest-1, its partition's Price List endpoint.
        for (region, asked) in [
            ("eu-west-1", "https://api.pricing.us-east-1.amazonaws.com/"),
            (
                "eu-central-2",
                "https://api.pricing.us-east-1.amazonaws.com/",
            ),
            (
                "us-gov-west-1",
                "https://api.pricing.us-east-1.amazonaws.com/",
            ),
            (
                "cn-north-1",
                "https://api.pricing.cn-northwest-1.amazonaws.com.cn/",
            ),
        ] {
            assert_eq!(
                request_of(sdk_config_builder(region)).await,
                asked,
                "{region}"
            );
        }
    }

    #[test]
    fn timeout_and_attempts_are_set_on_the_client() {
        let live = LivePrices::builder(&sdk_config("eu-west-1"))
            .timeout(Duration::from_millis(700))
            .max_attempts(9)
            .build();
        let config = live.client().config();
        let timeouts = config.timeout_config().unwrap();
        assert_eq!(
            timeouts.operation_timeout(),
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            config.retry_config().unwrap().max_attempts(),
            3,
            "clamped to 3"
        );
        let default = LivePrices::from_sdk_config(&sdk_config("eu-west-1"));
        assert_eq!(
            default
                .client()
                .config()
                .retry_config()
                .unwrap()
                .max_attempts(),
            1
        );
    }

    #[tokio::test]
    async fn pagination_stops_after_a_bounded_number_of_pages() {
        // A server that always has another page.
        let endless = mock!(Client::get_products)
            .then_output(|| GetProductsOutput::builder().next_token("again").build());
        let live = mocked(&[&endless]);
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let err = live.price(&key).await.unwrap_err();
        assert!(matches!(err, PriceError::Malformed { .. }), "{err:?}");
        assert_eq!(endless.num_calls(), MAX_PAGES);
    }

    #[tokio::test]
    async fn a_list_cut_off_at_the_page_bound_is_not_a_live_price() {
        // Every page has a matching product and another page after it.
        let good = r#"{"product":{"sku":"GOOD","productFamily":"ML Instance","attributes":{"regionCode":"us-east-1","instanceName":"ml.m5.xlarge","component":"Hosting","usagetype":"USE1-Host:ml.m5.xlarge"}},"serviceCode":"AmazonSageMaker","terms":{"OnDemand":{"GOOD.JRTCKXETXF":{"effectiveDate":"2026-05-01T00:00:00Z","priceDimensions":{"GOOD.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{"USD":"0.2300000000"}}}}}}}"#;
        let endless = mock!(Client::get_products).then_output(move || {
            GetProductsOutput::builder()
                .price_list(good)
                .next_token("again")
                .build()
        });
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let err = mocked(&[&endless]).price(&key).await.unwrap_err();
        assert_eq!(
            err,
            PriceError::Malformed {
                reason: "the Price List API still had more products for hosting ml.m5.xlarge \
                         in us-east-1 after 10 pages (10 so far); not choosing from part of \
                         the list"
                    .into()
            }
        );
        assert_eq!(endless.num_calls(), MAX_PAGES);
    }

    #[tokio::test]
    async fn throttling_and_access_denied_are_unavailable_with_codes_only() {
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let throttled = mock!(Client::get_products).then_error(|| {
            GetProductsError::ThrottlingException(
                ThrottlingException::builder()
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = mocked(&[&throttled]).price(&key).await.unwrap_err();
        let PriceError::Unavailable { reason } = err else {
            panic!("{err:?}")
        };
        assert!(
            reason.starts_with("the Price List API throttled the request (ThrottlingException"),
            "{reason}"
        );

        let denied = mock!(Client::get_products).then_error(|| {
            GetProductsError::AccessDeniedException(
                AccessDeniedException::builder()
                    .message("User: arn:aws:iam::123456789012:user/x is not authorized")
                    .build(),
            )
        });
        let err = mocked(&[&denied]).price(&key).await.unwrap_err();
        let PriceError::Unavailable { reason } = err else {
            panic!("{err:?}")
        };
        assert!(
            reason.starts_with("the Price List API refused the request (AccessDeniedException"),
            "{reason}"
        );
        assert!(
            reason.ends_with("the credentials need pricing:GetProducts"),
            "{reason}"
        );
        assert!(
            !reason.contains("arn:aws"),
            "service messages are left out: {reason}"
        );
    }

    /// A hosting product with three on-demand terms: 0.23 from 2026-05-01, and two
    /// changes announced ahead, 0.20 from 2026-09-01 and 0.25 from 2026-12-01.
    const ANNOUNCING: &str = r#"{"product":{"sku":"GOOD","productFamily":"ML Instance","attributes":{"regionCode":"us-east-1","instanceName":"ml.m5.xlarge","component":"Hosting","usagetype":"USE1-Host:ml.m5.xlarge","vCpu":"4"}},"serviceCode":"AmazonSageMaker","terms":{"OnDemand":{"GOOD.TERMA":{"effectiveDate":"2026-05-01T00:00:00Z","priceDimensions":{"GOOD.TERMA.DIM":{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{"USD":"0.2300000000"}}}},"GOOD.TERMB":{"effectiveDate":"2026-09-01T00:00:00Z","priceDimensions":{"GOOD.TERMB.DIM":{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{"USD":"0.2000000000"}}}},"GOOD.TERMC":{"effectiveDate":"2026-12-01T00:00:00Z","priceDimensions":{"GOOD.TERMC.DIM":{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{"USD":"0.2500000000"}}}}}}}"#;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    /// The live source on a manual clock, its `GetProducts` answered by `rule`.
    fn announcing(rule: &Rule, time: &aws_smithy_async::test_util::ManualTimeSource) -> LivePrices {
        let config = aws_sdk_pricing::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .http_client(create_mock_http_client())
            .retry_config(RetryConfig::disabled())
            .time_source(SharedTimeSource::new(time.clone()))
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(rule),
            )
            .build();
        LivePrices::from_client(Client::from_conf(config))
    }

    /// A product whose only term is announced ahead is priced at that term (noted
    /// as not yet in effect), and that term is not also announced as its own
    /// successor: at its date nothing replaces the rate served.
    #[tokio::test]
    async fn a_rate_whose_only_term_is_ahead_announces_no_term_after_it() {
        use aws_smithy_async::test_util::ManualTimeSource;
        let only_september = ANNOUNCING
            .replace(r#""GOOD.TERMA":{"effectiveDate":"2026-05-01T00:00:00Z","priceDimensions":{"GOOD.TERMA.DIM":{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{"USD":"0.2300000000"}}}},"#, "")
            .replace(r#","GOOD.TERMC":{"effectiveDate":"2026-12-01T00:00:00Z","priceDimensions":{"GOOD.TERMC.DIM":{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{"USD":"0.2500000000"}}}}"#, "");
        assert!(!only_september.contains("TERMA") && !only_september.contains("TERMC"));
        let rule = mock!(Client::get_products).then_output(move || {
            GetProductsOutput::builder()
                .price_list(only_september.clone())
                .build()
        });
        let time = ManualTimeSource::new(at("2026-08-31T22:00:00Z").into());
        let live = announcing(&rule, &time);
        let rate = live
            .price(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))
            .await
            .unwrap();
        assert_eq!(
            (
                rate.usd_per_unit,
                rate.provenance.effective_date.as_deref(),
                rate.next_term.is_none()
            ),
            (
                rust_decimal::Decimal::new(20, 2),
                Some("2026-09-01T00:00:00Z"),
                true
            )
        );
    }

    /// Two products for the key in one answer: SKUA's term in effect, SKUB's only
    /// term announced for later. The rate is SKUA's until SKUB's date, and SKUB's
    /// date is the term announced ahead, from which the rate is SKUB's.
    #[tokio::test]
    async fn a_product_announced_for_later_is_the_next_term_not_the_rate_now() {
        use aws_smithy_async::test_util::ManualTimeSource;
        let product = |sku: &str, date: &str, usd: &str| {
            format!(
                r#"{{"product":{{"sku":"{sku}","productFamily":"ML Instance","attributes":{{"regionCode":"us-east-1","instanceName":"ml.m5.xlarge","component":"Hosting","usagetype":"USE1-Host:ml.m5.xlarge"}}}},"serviceCode":"AmazonSageMaker","terms":{{"OnDemand":{{"{sku}.JRTCKXETXF":{{"effectiveDate":"{date}","priceDimensions":{{"{sku}.JRTCKXETXF.6YS6EN2CT7":{{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{{"USD":"{usd}"}}}}}}}}}}}}}}"#
            )
        };
        let a = product("SKUA", "2026-05-01T00:00:00Z", "0.2300000000");
        let b = product("SKUB", "2026-12-01T00:00:00Z", "0.3000000000");
        let rule = mock!(Client::get_products).then_output(move || {
            GetProductsOutput::builder()
                .price_list(a.clone())
                .price_list(b.clone())
                .build()
        });
        let time = ManualTimeSource::new(at("2026-11-01T00:00:00Z").into());
        let rate = announcing(&rule, &time)
            .price(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))
            .await
            .unwrap();
        // November at SKUA's $0.23/h: 720 h × $0.23 = $165.60 an instance, not
        // 720 h × $0.30 = $216.00 ($50.40 over).
        assert_eq!(
            (
                rate.usd_per_unit,
                rate.provenance.sku.as_deref(),
                rate.provenance.effective_date.as_deref(),
                rate.provenance.note.as_deref(),
            ),
            (
                rust_decimal::Decimal::new(23, 2),
                Some("SKUA"),
                Some("2026-05-01T00:00:00Z"),
                None
            )
        );
        // From 2026-12-01 SKUB's $0.30/h, the higher of the two then in effect.
        let next = rate.next_term.as_deref().expect("SKUB's term announced");
        assert_eq!(next.on, at("2026-12-01T00:00:00Z"));
        let december = next.rate.as_ref().unwrap();
        assert_eq!(
            (
                december.usd_per_unit,
                december.provenance.sku.as_deref(),
                december.provenance.effective_date.as_deref(),
                december.next_term.is_none()
            ),
            (
                rust_decimal::Decimal::new(30, 2),
                Some("SKUB"),
                Some("2026-12-01T00:00:00Z"),
                true
            )
        );
    }

    /// The answer's terms announced ahead come with the rate: each its own rate,
    /// SKU, effective date and the answer's fetch time, noted as announced, chained
    /// in date order.
    #[tokio::test]
    async fn a_live_rate_carries_the_rates_of_the_terms_its_answer_announced_ahead() {
        use aws_smithy_async::test_util::ManualTimeSource;
        let rule = mock!(Client::get_products)
            .then_output(|| GetProductsOutput::builder().price_list(ANNOUNCING).build());
        let time = ManualTimeSource::new(at("2026-08-31T22:00:00Z").into());
        let live = announcing(&rule, &time);
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let rate = live.price(&key).await.unwrap();
        let fetched = at("2026-08-31T22:00:00Z");
        assert_eq!(
            (rate.usd_per_unit, rate.provenance.effective_date.as_deref()),
            (
                rust_decimal::Decimal::new(23, 2),
                Some("2026-05-01T00:00:00Z")
            )
        );
        let next = rate.next_term.as_deref().unwrap();
        assert_eq!(next.on, at("2026-09-01T00:00:00Z"));
        let september = next.rate.as_ref().unwrap();
        assert_eq!(
            (
                september.usd_per_unit,
                september.provenance.source,
                september.provenance.sku.as_deref(),
                september.provenance.effective_date.as_deref(),
                september.provenance.fetched_at,
                september.provenance.note.as_deref(),
                september.instance.as_ref().and_then(|i| i.vcpu),
            ),
            (
                rust_decimal::Decimal::new(20, 2),
                PriceOrigin::Live,
                Some("GOOD"),
                Some("2026-09-01T00:00:00Z"),
                Some(fetched),
                Some(
                    "rate of the term effective 2026-09-01T00:00:00Z, announced in the Price \
                     List answer fetched 2026-08-31T22:00:00Z"
                ),
                Some(4),
            )
        );
        let after = september.next_term.as_deref().unwrap();
        assert_eq!(after.on, at("2026-12-01T00:00:00Z"));
        let december = after.rate.as_ref().unwrap();
        assert_eq!(
            (
                december.usd_per_unit,
                december.provenance.effective_date.as_deref(),
                december.next_term.is_none()
            ),
            (
                rust_decimal::Decimal::new(25, 2),
                Some("2026-12-01T00:00:00Z"),
                true
            )
        );
    }

    /// An answer listing six terms ahead: the rates of the first four are kept,
    /// chained by date; the fifth's date alone ends the chain (from it the last
    /// rate is stale, and refreshed).
    #[tokio::test]
    async fn a_live_rate_carries_the_rates_of_four_terms_ahead_then_only_the_next_date() {
        use aws_smithy_async::test_util::ManualTimeSource;
        let term = |n: u32, date: &str, usd: &str| {
            format!(
                r#""GOOD.T{n}":{{"effectiveDate":"{date}","priceDimensions":{{"GOOD.T{n}.DIM":{{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{{"USD":"{usd}"}}}}}}}}"#
            )
        };
        let terms = [
            term(0, "2026-05-01T00:00:00Z", "0.2300000000"),
            term(1, "2026-09-01T00:00:00Z", "0.2000000000"),
            term(2, "2026-10-01T00:00:00Z", "0.2100000000"),
            term(3, "2026-11-01T00:00:00Z", "0.2200000000"),
            term(4, "2026-12-01T00:00:00Z", "0.2400000000"),
            term(5, "2027-01-01T00:00:00Z", "0.2500000000"),
            term(6, "2027-02-01T00:00:00Z", "0.2600000000"),
        ]
        .join(",");
        let doc = format!(
            r#"{{"product":{{"sku":"GOOD","productFamily":"ML Instance","attributes":{{"regionCode":"us-east-1","instanceName":"ml.m5.xlarge","component":"Hosting","usagetype":"USE1-Host:ml.m5.xlarge"}}}},"serviceCode":"AmazonSageMaker","terms":{{"OnDemand":{{{terms}}}}}}}"#
        );
        let rule = mock!(Client::get_products)
            .then_output(move || GetProductsOutput::builder().price_list(doc.clone()).build());
        let time = ManualTimeSource::new(at("2026-08-31T22:00:00Z").into());
        let rate = announcing(&rule, &time)
            .price(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))
            .await
            .unwrap();
        let mut chain = Vec::new();
        let mut next = rate.next_term.as_deref();
        while let Some(term) = next {
            chain.push((
                term.on.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                term.rate
                    .as_ref()
                    .map(|r| r.usd_per_unit.normalize().to_string()),
            ));
            next = term.rate.as_ref().and_then(|r| r.next_term.as_deref());
        }
        let entry = |on: &str, usd: Option<&str>| (on.to_owned(), usd.map(str::to_owned));
        assert_eq!(
            chain,
            [
                entry("2026-09-01T00:00:00Z", Some("0.2")),
                entry("2026-10-01T00:00:00Z", Some("0.21")),
                entry("2026-11-01T00:00:00Z", Some("0.22")),
                entry("2026-12-01T00:00:00Z", Some("0.24")),
                entry("2027-01-01T00:00:00Z", None),
            ]
        );
    }

    /// A Price List answer that lists a change announced ahead of its date (0.23 from
    /// 2026-05-01, 0.20 from 2026-09-01), fetched two hours before that date: from
    /// 2026-09-01 the cache serves 0.20, the rate AWS bills from then, without asking
    /// again, and tells the change once.
    #[tokio::test(start_paused = true)]
    async fn a_cached_rate_gives_way_at_its_date_to_the_term_its_answer_announced() {
        use super::super::{CachedPrices, PriceOrigin};
        use aws_smithy_async::test_util::ManualTimeSource;
        use std::sync::{Arc, Mutex};
        let rule = mock!(Client::get_products)
            .then_output(|| GetProductsOutput::builder().price_list(ANNOUNCING).build());
        let time = ManualTimeSource::new(at("2026-08-31T22:00:00Z").into());
        let told: Arc<Mutex<Vec<super::super::PriceChange>>> = Arc::default();
        let observer = told.clone();
        let prices = CachedPrices::builder(announcing(&rule, &time))
            .time_source(SharedTimeSource::new(time.clone()))
            .on_change(move |change| observer.lock().unwrap().push(change.clone()))
            .build();
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let seen = |rate: Rate| {
            (
                rate.provenance.source,
                rate.usd_per_unit,
                rate.provenance.effective_date.as_deref().map(str::to_owned),
                rate.provenance.note.as_deref().map(str::to_owned),
            )
        };
        let date = |d: &str| Some(d.to_owned());
        const ANNOUNCED: &str = "rate of the term effective 2026-09-01T00:00:00Z, announced in \
                                 the Price List answer fetched 2026-08-31T22:00:00Z";

        // 22:00: the term in effect is 0.23's.
        let first = prices.price(&key).await.unwrap();
        assert_eq!(
            seen(first),
            (
                PriceOrigin::Live,
                rust_decimal::Decimal::new(23, 2),
                date("2026-05-01T00:00:00Z"),
                None
            )
        );
        // 00:30, two and a half hours into the 6 h TTL: 0.20's term is in effect, and
        // the answer gave it. (0.20 − 0.23) ÷ 0.23 = −13.0434…% → −13.04%.
        time.advance(Duration::from_secs(2 * 3600 + 1800));
        let at_the_date = prices.price(&key).await.unwrap();
        assert_eq!(
            seen(at_the_date),
            (
                PriceOrigin::Cache,
                rust_decimal::Decimal::new(20, 2),
                date("2026-09-01T00:00:00Z"),
                Some(format!(
                    "price changed: 0.2 per hour (effective 2026-09-01T00:00:00Z), was 0.23 \
                     (effective 2026-05-01T00:00:00Z) (-13.04%); {ANNOUNCED}"
                ))
            )
        );
        let after = prices.price(&key).await.unwrap();
        assert_eq!(
            seen(after),
            (
                PriceOrigin::Cache,
                rust_decimal::Decimal::new(20, 2),
                date("2026-09-01T00:00:00Z"),
                date(ANNOUNCED)
            )
        );
        assert_eq!(rule.num_calls(), 1, "nothing asked again before the TTL");
        let told = told.lock().unwrap();
        assert_eq!(told.len(), 1);
        assert_eq!(
            (told[0].old_usd_per_unit, told[0].new_usd_per_unit),
            (
                rust_decimal::Decimal::new(23, 2),
                rust_decimal::Decimal::new(20, 2)
            )
        );
        assert_eq!(
            told[0].change_percent(),
            Some(rust_decimal::Decimal::new(-1304, 2))
        );
    }

    /// A document for the key whose price cannot be read may be the term in effect,
    /// or the higher of two: the rate of the good one alone ($0.23, where the other
    /// may say $0.25) could under-state the price, so the look-up fails as
    /// malformed (the chain's next source prices the call, saying so). One whose
    /// attributes say it prices something else (Training), or cannot be read, is
    /// skipped, noted.
    #[tokio::test]
    async fn an_unreadable_document_that_may_price_the_key_fails_the_look_up() {
        let document = |sku: &str, component: &str, usage: &str, usd: &str| {
            format!(
                r#"{{"product":{{"sku":"{sku}","productFamily":"ML Instance","attributes":{{"regionCode":"us-east-1","instanceName":"ml.m5.xlarge","component":"{component}","usagetype":"{usage}"}}}},"serviceCode":"AmazonSageMaker","terms":{{"OnDemand":{{"{sku}.JRTCKXETXF":{{"effectiveDate":"2026-05-01T00:00:00Z","priceDimensions":{{"{sku}.JRTCKXETXF.6YS6EN2CT7":{{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{{"USD":"{usd}"}}}}}}}}}}}}}}"#
            )
        };
        let good = document("GOOD", "Hosting", "USE1-Host:ml.m5.xlarge", "0.2300000000");
        let key = PriceKey::hosting("us-east-1", "ml.m5.xlarge");
        let answer = |other: String| {
            let good = good.clone();
            mock!(Client::get_products).then_output(move || {
                GetProductsOutput::builder()
                    .price_list(good.clone())
                    .price_list(other.clone())
                    .build()
            })
        };

        // The same attributes, its price written "0.25 USD".
        let hosting = document("SECOND", "Hosting", "USE1-Host:ml.m5.xlarge", "0.25 USD");
        let err = mocked(&[&answer(hosting)]).price(&key).await.unwrap_err();
        let PriceError::Malformed { reason } = &err else {
            panic!("{err:?}");
        };
        assert!(
            reason.starts_with(
                "a price document that may price hosting ml.m5.xlarge in us-east-1 could not \
                 be read: "
            ) && reason.contains("\"0.25 USD\""),
            "{reason}"
        );

        // A Training product never prices hosting, and one whose product cannot
        // be read (no SKU) says nothing of what it prices: skipped, noted; $0.23
        // stands.
        let training = document("TRAIN", "Training", "USE1-Train:ml.m5.xlarge", "0.25 USD");
        let nameless = document("X", "Hosting", "USE1-Host:ml.m5.xlarge", "0.25 USD")
            .replace(r#""sku":"X","#, "");
        for other in [training, nameless] {
            let rate = mocked(&[&answer(other)]).price(&key).await.unwrap();
            assert_eq!(
                (rate.usd_per_unit, rate.provenance.sku.as_deref()),
                (rust_decimal::Decimal::new(23, 2), Some("GOOD"))
            );
            assert_eq!(
                rate.provenance.note.as_deref(),
                Some("skipped 1 unreadable price document(s)")
            );
        }
    }

    #[tokio::test]
    async fn one_good_document_among_unreadable_ones_is_used_and_noted() {
        let good = r#"{"product":{"sku":"GOOD","productFamily":"ML Instance","attributes":{"regionCode":"us-east-1","instanceName":"ml.m5.xlarge","component":"Hosting","usagetype":"USE1-Host:ml.m5.xlarge"}},"serviceCode":"AmazonSageMaker","terms":{"OnDemand":{"GOOD.JRTCKXETXF":{"effectiveDate":"2026-05-01T00:00:00Z","priceDimensions":{"GOOD.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","beginRange":"0","endRange":"Inf","pricePerUnit":{"USD":"0.2300000000"}}}}}}}"#;
        let rule = mock!(Client::get_products).then_output(move || {
            GetProductsOutput::builder()
                .price_list("{\"product\":")
                .price_list(good)
                .build()
        });
        let rate = mocked(&[&rule])
            .price(&PriceKey::hosting("us-east-1", "ml.m5.xlarge"))
            .await
            .unwrap();
        assert_eq!(rate.usd_per_unit, rust_decimal::Decimal::new(23, 2));
        assert_eq!(rate.provenance.sku.as_deref(), Some("GOOD"));
        assert_eq!(
            rate.provenance.note.as_deref(),
            Some("skipped 1 unreadable price document(s)")
        );
    }
}
