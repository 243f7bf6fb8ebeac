//! The metered client: the SDK's SageMaker Runtime client, plus a cost on every response.
//!
//! Three ways in, from most to least change to existing code:
//! - [`Client`]: `client.invoke_endpoint()…send()` returns [`Metered`] output;
//!   `invoke_endpoint_with_response_stream()` a [`MeteredResponseStream`] whose receipt
//!   is made when the stream ends, fails or is dropped; `invoke_endpoint_async()` an
//!   [`AsyncInvocation`] with a submission receipt, settled when the output lands.
//! - [`SendMeteredExt`]: keep the SDK's fluent builder, end it with
//!   `.send_metered(&meter)` instead of `.send()`.
//! - [`MeteringInterceptor`]: register it on the SDK client's `Config`; every
//!   `InvokeEndpoint` through a plain `aws_sdk_sagemakerruntime::Client` is priced and
//!   logged, with no change at the call sites (the receipt goes to logs, totals and
//!   sinks only); streams and async calls go through budgets with compute unpriced.

mod async_invoke;
mod call;
mod interceptor;
mod invoke;
mod meter;
mod stream;

#[cfg(feature = "fleet")]
pub(crate) use async_invoke::SETTLEMENT_CLAIM;
pub(crate) use async_invoke::{
    ACCEPTED_MORE_THAN_ONCE_NOTE, ACCEPTED_THEN_FAILED_NOTE, CLOCKS_DISAGREE, DATA_IN_UNKNOWN,
    DATA_OUT_UNKNOWN, DROPPED_SUBMISSION_NOTE,
};
pub use async_invoke::{
    AsyncCompletion, AsyncInvocation, InvokeEndpointAsync, PendingInference, SettleRefused,
};
pub use call::{MAX_ASYNC_INLINE_BYTES, MAX_ASYNC_INPUT_BYTES, MAX_REQUEST_BYTES};
pub use interceptor::MeteringInterceptor;
pub(crate) use interceptor::NOT_SEEN as NOT_SEEN_BY_INTERCEPTOR;
pub use invoke::{InvokeEndpoint, SendMeteredExt};
pub use meter::Meter;
pub use stream::{
    InvokeEndpointWithResponseStream, MeteredEventReceiver, MeteredResponseStream, StreamEvent,
    StreamReceipt,
};

use crate::billing::{Allocation, BadPrice, UsageCharges, check_usd_per_unit};
use crate::budget::{Budget, Budgets};
use crate::config_error::ConfigError;
use crate::endpoint::{Discovery, EndpointProfile};
use crate::pricing::{
    CachedPrices, InstanceResources, LivePrices, PriceKey, PriceSource, Snapshot,
};
use crate::sink::{CostLogSink, CostMetrics, CostSink};
use crate::totals::Totals;
use crate::usage::TokenCounter;
use crate::{Cost, Result};
use aws_smithy_async::time::SharedTimeSource;
use call::AttemptWatch;
use meter::MeterInner;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

#[doc(no_inline)]
pub use crate::billing::MAX_SANE_USD_PER_UNIT;

/// How long each discovery request may take by default (see
/// [`ClientBuilder::discovery_timeout`]).
const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// An SDK output together with what the call cost.
///
/// Derefs to the output, so existing code keeps working:
/// `response.body()` is the SDK's body; `response.cost()` is the receipt.
#[derive(Debug, Clone)]
pub struct Metered<T> {
    output: T,
    cost: Cost,
}

impl<T> Metered<T> {
    pub(crate) fn new(output: T, cost: Cost) -> Self {
        Metered { output, cost }
    }

    /// The cost receipt.
    pub fn cost(&self) -> &Cost {
        &self.cost
    }

    /// The SDK output, without the receipt.
    pub fn into_inner(self) -> T {
        self.output
    }

    /// The SDK output and the receipt.
    pub fn into_parts(self) -> (T, Cost) {
        (self.output, self.cost)
    }
}

impl<T> Deref for Metered<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.output
    }
}

impl<T> AsRef<T> for Metered<T> {
    fn as_ref(&self) -> &T {
        &self.output
    }
}

/// A SageMaker Runtime client whose every call returns its cost.
///
/// ```no_run
/// # async fn run() -> sagemeter::Result<()> {
/// use aws_sdk_sagemakerruntime::primitives::Blob;
/// let sdk_config = aws_config::load_from_env().await;
/// let client = sagemeter::Client::new(&sdk_config);
/// let response = client
///     .invoke_endpoint()
///     .endpoint_name("my-endpoint")
///     .content_type("application/json")
///     .body(Blob::new(r#"{"inputs":"hello"}"#))
///     .send()
///     .await?;
/// println!("{} -> {}", String::from_utf8_lossy(response.body().unwrap().as_ref()), response.cost());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    runtime: aws_sdk_sagemakerruntime::Client,
    meter: Meter,
    /// Set when `runtime` is for another region than the meter's endpoints: every
    /// call is refused with it, before anything is sent (see [`Client::from_parts`]).
    wrong_region: Option<Arc<ConfigError>>,
}

// Hand-written: the SDK client's Debug prints its configuration, credentials' key id included.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("meter", &self.meter)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with default settings: live prices (cached, snapshot fallback),
    /// endpoint discovery, processor-sharing allocation.
    ///
    /// # Panics
    /// When the SDK config has no region (the SDK's own client cannot call SageMaker
    /// without one either). [`Client::builder`]`(..).build()` returns that as an
    /// error. A config without a behavior version gets the latest, as the Price
    /// List client does.
    pub fn new(sdk_config: &aws_types::SdkConfig) -> Self {
        Self::builder(sdk_config)
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder for non-default settings.
    pub fn builder(sdk_config: &aws_types::SdkConfig) -> ClientBuilder {
        ClientBuilder::new(sdk_config)
    }

    /// A client from an existing SDK client and meter.
    ///
    /// The client keeps a copy of `runtime` with one interceptor added (unless it
    /// has it already): it counts each metered call's attempts, and lets requests
    /// sent outside a metered call pass untouched.
    ///
    /// `runtime` must be for the region of the meter's endpoints
    /// ([`Meter::endpoint_region`]): a meter prices, accrues and budgets one
    /// region's endpoints. A client whose `runtime` is for another region refuses
    /// every call, before anything is sent or reserved, with an
    /// [`Error::Config`](crate::Error::Config) naming both regions
    /// ([`ClientBuilder::runtime_client`] refuses it at `build()`). Meter each
    /// region with a meter of its own.
    pub fn from_parts(runtime: aws_sdk_sagemakerruntime::Client, meter: Meter) -> Self {
        let wrong_region = runtime.config().region().and_then(|region| {
            meter
                .check_region(
                    "Client::from_parts",
                    "the SageMaker Runtime client",
                    region.as_ref(),
                )
                .err()
                .map(Arc::new)
        });
        Client {
            runtime: AttemptWatch::on(runtime),
            meter,
            wrong_region,
        }
    }

    /// `InvokeEndpoint`, metered. Mirrors the SDK's fluent builder.
    pub fn invoke_endpoint(&self) -> InvokeEndpoint {
        InvokeEndpoint::new(
            self.runtime.invoke_endpoint(),
            self.meter.clone(),
            self.wrong_region.clone(),
        )
    }

    /// `InvokeEndpointWithResponseStream`, metered. Mirrors the SDK's fluent builder;
    /// the stream it returns is read the same way and carries its receipt.
    ///
    /// In a function returning [`sagemeter::Result`](crate::Result), `?` on
    /// `recv()` makes a failure midway an [`Error::ResponseStream`](crate::Error::ResponseStream),
    /// whose `Debug` withholds the model's message (the SDK error's own `Debug`
    /// quotes it).
    ///
    /// ```no_run
    /// # async fn run(client: sagemeter::Client) -> sagemeter::Result<()> {
    /// use aws_sdk_sagemakerruntime::primitives::Blob;
    /// use aws_sdk_sagemakerruntime::types::ResponseStream;
    /// let mut response = client
    ///     .invoke_endpoint_with_response_stream()
    ///     .endpoint_name("my-llm")
    ///     .content_type("application/json")
    ///     .body(Blob::new(r#"{"inputs":"hello","stream":true}"#))
    ///     .send()
    ///     .await?;
    /// let receipt = response.receipt(); // resolves even if the loop stops early
    /// while let Some(event) = response.body.recv().await? {
    ///     if let ResponseStream::PayloadPart(part) = event {
    ///         print!("{}", String::from_utf8_lossy(part.bytes().unwrap().as_ref()));
    ///     }
    /// }
    /// println!("\n{}", response.cost().unwrap()); // or receipt.await
    /// # Ok(()) }
    /// ```
    pub fn invoke_endpoint_with_response_stream(&self) -> InvokeEndpointWithResponseStream {
        InvokeEndpointWithResponseStream::new(
            self.runtime.invoke_endpoint_with_response_stream(),
            self.meter.clone(),
            self.wrong_region.clone(),
        )
    }

    /// `InvokeEndpointAsync`, metered. Mirrors the SDK's fluent builder; the
    /// [`AsyncInvocation`] it returns carries the submission receipt and settles the
    /// rest when the output lands.
    ///
    /// ```no_run
    /// # async fn run(client: sagemeter::Client, output: Vec<u8>) -> sagemeter::Result<()> {
    /// use sagemeter::client::AsyncCompletion;
    /// let invocation = client
    ///     .invoke_endpoint_async()
    ///     .endpoint_name("my-async-endpoint")
    ///     .input_location("s3://my-bucket/requests/42.json")
    ///     .input_bytes(18_342) // the input is in S3: its size is billed as data in
    ///     .send()
    ///     .await?;
    /// println!("queued {:?}: {}", invocation.inference_id(), invocation.cost());
    /// // ... later, when the SNS notification says the output is at output_location():
    /// let settled = invocation
    ///     .settle(AsyncCompletion::processed_for(std::time::Duration::from_secs(42)).output(&output))
    ///     .await;
    /// println!("settled: {settled}");
    /// # Ok(()) }
    /// ```
    pub fn invoke_endpoint_async(&self) -> InvokeEndpointAsync {
        InvokeEndpointAsync::new(
            self.runtime.invoke_endpoint_async(),
            self.meter.clone(),
            self.wrong_region.clone(),
        )
    }

    /// Waits for the calls in flight and background work, then flushes and closes
    /// the sinks (the ledger), writes the fleet's spend not written yet and gives
    /// back its leases, within ten seconds in all; see
    /// [`Meter::shutdown_within`]. Call it before the runtime ends (after a
    /// server's graceful shutdown): a client merely dropped loses the fleet's
    /// increments since its last flush and holds its leases until they lapse. Its
    /// ledgers and [`Queued`](crate::sink::Queued) sinks lose nothing they
    /// accepted: the drop of the last handle to one hands its sink every receipt
    /// and shuts it down, blocking the dropping thread (a Tokio worker, in a task)
    /// until it is done.
    pub async fn shutdown(&self) -> Result<()> {
        self.meter.shutdown().await
    }

    /// [`shutdown`](Self::shutdown) within `timeout` in all (a pod's grace
    /// period): see [`Meter::shutdown_within`], which first waits for the calls
    /// in flight.
    pub async fn shutdown_within(&self, timeout: std::time::Duration) -> Result<()> {
        self.meter.shutdown_within(timeout).await
    }

    /// The meter behind this client (totals, profiles, rates).
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The SDK client underneath, for anything sagemeter does not wrap.
    pub fn runtime(&self) -> &aws_sdk_sagemakerruntime::Client {
        &self.runtime
    }
}

/// Builds a [`Client`] or a [`Meter`]. Options are checked in `build()`.
///
/// ```no_run
/// # async fn run() -> sagemeter::Result<()> {
/// use sagemeter::endpoint::{EndpointProfile, VariantProfile};
/// use sagemeter::pricing::PriceKey;
/// let sdk_config = aws_config::load_from_env().await;
/// let client = sagemeter::Client::builder(&sdk_config)
///     // Without sagemaker:Describe* permissions: say how the endpoint is deployed.
///     .endpoint_profile(EndpointProfile::new(
///         "my-endpoint",
///         vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 1)],
///     ))
///     // A negotiated rate wins over the Price List.
///     .price_override(PriceKey::hosting("us-east-1", "ml.g5.xlarge"), "1.20".parse().unwrap())
///     .build()?;
/// # Ok(()) }
/// ```
pub struct ClientBuilder {
    sdk_config: aws_types::SdkConfig,
    region: Option<String>,
    prices: Option<Arc<dyn PriceSource>>,
    pricing_config: Option<aws_types::SdkConfig>,
    /// Key, USD per unit, and whether $0 was meant (`free_of_charge`).
    price_overrides: Vec<(PriceKey, Decimal, bool)>,
    profiles: Vec<EndpointProfile>,
    instance_resources: Vec<(String, InstanceResources)>,
    charges: Vec<(String, UsageCharges)>,
    allocation: Allocation,
    max_concurrency_per_instance: u32,
    token_counter: Option<Arc<dyn TokenCounter>>,
    default_tags: BTreeMap<String, String>,
    discovery: bool,
    discovery_refresh: Duration,
    discovery_timeout: Duration,
    sagemaker: Option<aws_sdk_sagemaker::Client>,
    runtime: Option<aws_sdk_sagemakerruntime::Client>,
    sinks: Vec<meter::MeteredSink>,
    budgets: Vec<Budget>,
    metric_tag_labels: Vec<String>,
    metrics: bool,
    time: Option<SharedTimeSource>,
    #[cfg(feature = "fleet")]
    fleet: Option<crate::fleet::FleetConfig>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("region", &self.region)
            .field("allocation", &self.allocation)
            .field("profiles", &self.profiles)
            .finish_non_exhaustive()
    }
}

/// How far from the system clock the SDK config's time source may read at build
/// and still be taken for it.
const SYSTEM_CLOCK_TOLERANCE: Duration = Duration::from_secs(1);

/// Whether `time` reads the system clock: within [`SYSTEM_CLOCK_TOLERANCE`] of it
/// now. A manual clock (a test's) is set to a time of its own.
fn reads_the_system_clock(time: &SharedTimeSource) -> bool {
    let (read, system) = (time.now(), std::time::SystemTime::now());
    let apart = read
        .duration_since(system)
        .unwrap_or_else(|behind| behind.duration());
    apart <= SYSTEM_CLOCK_TOLERANCE
}

/// The SDK config the builder makes its clients from (runtime, discovery, fleet
/// table, Price List): `sdk_config` itself, or, when it has no region, it with
/// the endpoints' region, without which those clients could send nothing
/// ("Missing Region") while the meter says its calls go to `endpoint_region`.
fn with_region_of_endpoints(
    sdk_config: aws_types::SdkConfig,
    endpoint_region: &str,
) -> aws_types::SdkConfig {
    if sdk_config
        .region()
        .is_some_and(|r| !r.as_ref().trim().is_empty())
    {
        return sdk_config;
    }
    sdk_config
        .into_builder()
        .region(aws_types::region::Region::new(endpoint_region.to_owned()))
        .build()
}

impl ClientBuilder {
    fn new(sdk_config: &aws_types::SdkConfig) -> Self {
        ClientBuilder {
            sdk_config: sdk_config.clone(),
            region: None,
            prices: None,
            pricing_config: None,
            price_overrides: Vec::new(),
            profiles: Vec::new(),
            instance_resources: Vec::new(),
            charges: Vec::new(),
            allocation: Allocation::default(),
            max_concurrency_per_instance: 1,
            token_counter: None,
            default_tags: BTreeMap::new(),
            discovery: true,
            discovery_refresh: Duration::from_secs(60),
            discovery_timeout: DEFAULT_DISCOVERY_TIMEOUT,
            sagemaker: None,
            runtime: None,
            sinks: Vec::new(),
            budgets: Vec::new(),
            metric_tag_labels: Vec::new(),
            metrics: true,
            time: None,
            #[cfg(feature = "fleet")]
            fleet: None,
        }
    }

    /// Shares running totals and budgets with every process using the same fleet
    /// table (see [`crate::fleet`]): enforced budgets hold across the fleet, and
    /// receipts carry [`Cost::running_fleet_usd`].
    #[cfg(feature = "fleet")]
    pub fn fleet(mut self, config: crate::fleet::FleetConfig) -> Self {
        self.fleet = Some(config);
        self
    }

    /// The region to price calls in (default: the SDK config's region). Only the
    /// pricing: calls go to the region of the endpoints metered
    /// ([`Meter::endpoint_region`]), which is the
    /// [`runtime_client`](Self::runtime_client)'s region when one is given, else
    /// the SDK config's, else this one; a
    /// [`sagemaker_client`](Self::sagemaker_client) (or, without one, the SDK
    /// config) must be for it too while discovery is on. The fleet table uses the
    /// SDK config's region. An SDK config with no region gets the endpoints' for
    /// the clients made from it (runtime, discovery, fleet table, Price List), which
    /// would otherwise send nothing ("Missing Region").
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Replaces the default price chain (live → cache → snapshot).
    pub fn price_source(mut self, source: impl PriceSource + 'static) -> Self {
        self.prices = Some(Arc::new(source));
        self
    }

    /// A separate AWS configuration for the Price List API (default: the SDK config
    /// given to the builder). Useful to price live from real AWS while the runtime
    /// calls go to a local emulator. The pricing client is pinned to the Price List
    /// endpoint of this configuration's partition (us-east-1; cn-northwest-1 for the
    /// China regions) whatever region it names; in GovCloud, which has no Price List
    /// endpoint, give a commercial-partition configuration here, and in an ISO
    /// region or the AWS European Sovereign Cloud too (their Price List is not one
    /// sagemeter can reach: without one, calls are priced from overrides and the
    /// snapshot, each receipt saying why).
    pub fn pricing_config(mut self, config: &aws_types::SdkConfig) -> Self {
        self.pricing_config = Some(config.clone());
        self
    }

    /// A fixed rate for one key (e.g. a negotiated price), in USD per the key's unit.
    /// Receipts mark it `override`. A rate of $0 is refused at `build()` (a
    /// misplaced value must not price calls at nothing); say
    /// [`free_of_charge`](Self::free_of_charge) when it is free on purpose. So is a
    /// key of another region than the client's, which no call would ever use.
    pub fn price_override(mut self, key: PriceKey, usd_per_unit: Decimal) -> Self {
        self.price_overrides.push((key, usd_per_unit, false));
        self
    }

    /// Prices one key at $0 on purpose (e.g. usage covered by a credit or a free
    /// trial). Receipts mark the rate `override`, with a note saying it was
    /// configured as free.
    pub fn free_of_charge(mut self, key: PriceKey) -> Self {
        self.price_overrides.push((key, Decimal::ZERO, true));
        self
    }

    /// How an endpoint is deployed, instead of discovering it.
    pub fn endpoint_profile(mut self, profile: EndpointProfile) -> Self {
        self.profiles.push(profile);
        self
    }

    /// What one instance of `instance_type` has (vCPUs, memory, accelerators), for
    /// inference components' shares when the price source does not say (the bundled
    /// snapshot and price overrides carry no attributes; live Price List rates do).
    /// Wins over the price source.
    pub fn instance_resources(
        mut self,
        instance_type: impl Into<String>,
        resources: InstanceResources,
    ) -> Self {
        self.instance_resources
            .push((instance_type.into(), resources));
        self
    }

    /// Per-inference and per-token charges for an endpoint (on top of compute).
    pub fn usage_charges(mut self, endpoint: impl Into<String>, charges: UsageCharges) -> Self {
        self.charges.push((endpoint.into(), charges));
        self
    }

    /// How instance time is allocated to calls (default:
    /// [`Allocation::ProcessorSharing`]).
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// How many calls one instance serves at full speed (default 1), for
    /// [`Allocation::ProcessorSharing`]: with `m`, a call in flight with `n - 1`
    /// others on `k` instances is allocated `min(1/m, k/n)` of an instance. Set it
    /// to the model server's batch size or worker count when calls run side by
    /// side without slowing each other down. Must be at least 1.
    pub fn max_concurrency_per_instance(mut self, calls: u32) -> Self {
        self.max_concurrency_per_instance = calls;
        self
    }

    /// How tokens are read from response bodies (default: OpenAI `usage`, then TGI `details`).
    pub fn token_counter(mut self, counter: impl TokenCounter + 'static) -> Self {
        self.token_counter = Some(Arc::new(counter));
        self
    }

    /// A tag put on every receipt of this client.
    pub fn default_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.default_tags.insert(key.into(), value.into());
        self
    }

    /// Turns endpoint discovery off: only profiles set with
    /// [`endpoint_profile`](Self::endpoint_profile) are priced.
    pub fn without_discovery(mut self) -> Self {
        self.discovery = false;
        self
    }

    /// How old a discovered profile may get before it is refreshed in the
    /// background (default 60 s).
    pub fn discovery_refresh(mut self, after: Duration) -> Self {
        self.discovery_refresh = after;
        self
    }

    /// How long discovering an endpoint may take, all its requests together
    /// (`DescribeEndpoint`, `DescribeEndpointConfig`, the inference-component calls,
    /// a few of those at a time), retries included (default 5 s).
    ///
    /// A call to an endpoint whose profile is not known yet waits for it after
    /// SageMaker answered: this bounds that wait when the control plane does not
    /// answer. Past it, discovery has failed, as for any other reason: the call's
    /// compute is unpriced with the reason, and discovery is tried again after 30 s
    /// (or [`discovery_refresh`](Self::discovery_refresh), when shorter),
    /// in the background (the calls meanwhile get the failure at once; a call waits
    /// again only after such a retry was dropped before it landed, with a runtime
    /// made for one call).
    pub fn discovery_timeout(mut self, timeout: Duration) -> Self {
        self.discovery_timeout = timeout;
        self
    }

    /// The SageMaker (control plane) client used for discovery (default: from the
    /// SDK config). It must be for the region of the endpoints metered
    /// ([`Meter::endpoint_region`]): one of another region is refused at `build()`
    /// with an [`Error::Config`](crate::Error::Config), and so is the default one
    /// when the SDK config is for another region than a
    /// [`runtime_client`](Self::runtime_client) given with
    /// [`region`](Self::region).
    pub fn sagemaker_client(mut self, client: aws_sdk_sagemaker::Client) -> Self {
        self.sagemaker = Some(client);
        self
    }

    /// The SageMaker Runtime client to wrap (default: from the SDK config). The
    /// client wraps a copy of it with one interceptor more, which counts each
    /// call's attempts (see [`Client::from_parts`]). It must be for the SDK
    /// config's region, the region calls are priced in: one of another region is
    /// refused at `build()` with an [`Error::Config`](crate::Error::Config). With
    /// [`region`](Self::region) (another region's rates on purpose), its region is
    /// the region of the endpoints metered ([`Meter::endpoint_region`]).
    pub fn runtime_client(mut self, client: aws_sdk_sagemakerruntime::Client) -> Self {
        self.runtime = Some(client);
        self
    }

    /// Another place every receipt goes: after the cost log line and the metrics,
    /// in the order sinks are added (see [`crate::sink`]).
    pub fn sink(mut self, sink: impl CostSink + 'static) -> Self {
        self.sinks.push(meter::MeteredSink::given(sink));
        self
    }

    /// A spending limit (enforced or alerting); see [`crate::budget`].
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budgets.push(budget);
        self
    }

    /// Tag keys whose values become labels of the `metrics` counters and
    /// histograms (default: none). Each distinct value is a time series: list only
    /// tags with a few fixed values (team, environment), never ids; past
    /// [`MAX_TAG_LABEL_VALUES`](crate::sink::MAX_TAG_LABEL_VALUES) values per key
    /// the rest are labelled `_other`. See [`CostMetrics`].
    pub fn metric_tag_labels<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metric_tag_labels = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Emits no per-call `metrics` (by default every receipt is counted through the
    /// `metrics` facade; see [`CostMetrics`]). The three rare counters,
    /// `sagemeter_price_changes_total`, `sagemeter_sink_dropped_total` and
    /// `sagemeter_budget_refused_total`, are still counted.
    ///
    /// For applications that install no metrics recorder: the facade cannot say
    /// whether one is installed, so emitting to its no-op recorder still finds the
    /// call's label set and calls each counter: 0.7–2 µs a call on the machine
    /// of the README's Benchmarks. Receipts, logs, ledgers and budgets are not
    /// affected.
    pub fn without_metrics(mut self) -> Self {
        self.metrics = false;
        self
    }

    /// The clock for accrual and caches (default: the SDK config's time source).
    ///
    /// The system clock's steps forward (NTP, a clock set by hand) are not time
    /// the instances served or stood: they are checked against a clock that does
    /// not step and not counted. Time the host was suspended (a laptop asleep, a
    /// VM paused) is counted: the instances ran meanwhile, and AWS bills them
    /// (on Linux the check's clock counts it, `CLOCK_BOOTTIME`; on other systems
    /// a suspension may be taken for a step and left out).
    ///
    /// A clock set here moves as it says (a test's manual clock), and so does
    /// the SDK config's unless it reads within a second of the system clock when
    /// the client is built (taken then for the system clock, as is no time
    /// source at all): a manual clock set on the SDK config at a time of its own
    /// is counted as it moves.
    pub fn time_source(mut self, time: SharedTimeSource) -> Self {
        self.time = Some(time);
        self
    }

    /// Builds the meter alone (for [`SendMeteredExt`] and [`MeteringInterceptor`]).
    pub fn build_meter(self) -> Result<Meter> {
        self.build_parts().map(|(_, meter)| meter)
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let (runtime, meter) = self.build_parts()?;
        Ok(Client::from_parts(runtime, meter))
    }

    fn build_parts(mut self) -> Result<(aws_sdk_sagemakerruntime::Client, Meter)> {
        // The SDK's clients panic when built from a config without a behavior
        // version (one made with `SdkConfig::builder()`).
        self.sdk_config = crate::util::with_behavior_version(self.sdk_config);
        self.pricing_config = self.pricing_config.map(crate::util::with_behavior_version);
        // The region calls are priced in: the builder's `region`, else the SDK
        // config's (where the endpoints are, see below).
        let sdk_region = self
            .sdk_config
            .region()
            .map(|r| r.to_string())
            .filter(|r| !r.trim().is_empty());
        let priced_on_purpose = self.region.is_some();
        let region = self.region.or_else(|| sdk_region.clone()).ok_or_else(|| {
            ConfigError::new("ClientBuilder::region", "no region")
                .hint("set one in the AWS config (AWS_REGION) or with ClientBuilder::region")
        })?;
        if region.trim().is_empty() {
            return Err(
                ConfigError::new("ClientBuilder::region", "the region must not be empty").into(),
            );
        }
        if self.max_concurrency_per_instance == 0 {
            return Err(ConfigError::new(
                "ClientBuilder::max_concurrency_per_instance",
                "max_concurrency_per_instance must be at least 1 (calls one instance \
                 serves at full speed)",
            )
            .into());
        }
        if self.discovery_timeout.is_zero() {
            return Err(ConfigError::new(
                "ClientBuilder::discovery_timeout",
                "discovery_timeout must be longer than zero",
            )
            .into());
        }
        if self.discovery_refresh.is_zero() {
            return Err(ConfigError::new(
                "ClientBuilder::discovery_refresh",
                "discovery_refresh must be longer than zero",
            )
            .into());
        }
        let region: Arc<str> = region.into();
        // The region of the endpoints: where every call goes, and where discovery
        // must ask. Priced at another region's rates on purpose (`region` set), it
        // is the runtime client's region, else the SDK config's, else the pricing
        // region; otherwise the SDK config's, and a runtime client of another
        // region is refused below (its calls would be priced at the SDK config's
        // region's rates).
        let runtime_region = self
            .runtime
            .as_ref()
            .and_then(|runtime| runtime.config().region())
            .map(|r| r.as_ref())
            .filter(|r| !r.trim().is_empty());
        let endpoints = match (priced_on_purpose, runtime_region) {
            (true, Some(runtime_region)) => Some(runtime_region),
            _ => sdk_region.as_deref(),
        };
        let endpoint_region: Arc<str> = match endpoints {
            Some(endpoints) if endpoints != &*region => endpoints.into(),
            _ => region.clone(),
        };
        // An SDK client of another region would send calls (or ask for profiles)
        // there, and this meter would price them as its own region's.
        let check = |option, what, other: Option<&str>| match other {
            Some(other) if other != &*endpoint_region => Err(meter::other_region(
                &region,
                &endpoint_region,
                option,
                what,
                other,
            )),
            _ => Ok(()),
        };
        check(
            "ClientBuilder::runtime_client",
            "the SageMaker Runtime client",
            runtime_region,
        )?;
        if self.discovery {
            match &self.sagemaker {
                Some(sagemaker) => check(
                    "ClientBuilder::sagemaker_client",
                    "the SageMaker client (for endpoint discovery)",
                    sagemaker.config().region().map(|r| r.as_ref()),
                )?,
                // The default discovery client is the SDK config's: of another
                // region than a runtime client given, it would ask there.
                None => check(
                    "ClientBuilder::sagemaker_client",
                    "the SageMaker client for endpoint discovery, made from the SDK config,",
                    sdk_region.as_deref(),
                )
                .map_err(|err| {
                    err.hint(format!(
                        "give ClientBuilder::sagemaker_client a SageMaker client for {}, or \
                         turn discovery off (ClientBuilder::without_discovery) and give the \
                         endpoints' profiles",
                        crate::redact::printable(&endpoint_region)
                    ))
                })?,
            }
        }
        self.sdk_config = with_region_of_endpoints(self.sdk_config, &endpoint_region);
        let mut price_overrides = crate::FastMap::default();
        for (key, usd, free) in self.price_overrides {
            const OPTION: &str = "ClientBuilder::price_override";
            // Calls are priced in the client's region only: an override of another
            // would never apply, and list prices would, without a word.
            if key.region() != &*region {
                return Err(ConfigError::new(
                    OPTION,
                    format!(
                        "price override for {key} is for {}, and this client prices calls \
                         in {region}",
                        key.region()
                    ),
                )
                .hint(format!(
                    "give the override's key the region {region}, or build the client for {}",
                    key.region()
                ))
                .into());
            }
            if usd.is_zero() && !free {
                return Err(
                    ConfigError::new(OPTION, format!("price override for {key} is $0"))
                        .hint(format!(
                            "a call would be priced at nothing; if it is free on purpose, say so \
                         with ClientBuilder::free_of_charge({key:?})"
                        ))
                        .into(),
                );
            }
            match check_usd_per_unit(usd) {
                Err(BadPrice::Negative) => {
                    return Err(ConfigError::new(
                        OPTION,
                        format!("price override for {key} is negative ({usd})"),
                    )
                    .into());
                }
                Err(BadPrice::AboveSane) => {
                    return Err(ConfigError::new(
                        OPTION,
                        format!("price override for {key} is {usd} USD per {}", key.unit()),
                    )
                    .hint(format!(
                        "above {MAX_SANE_USD_PER_UNIT}, which no SageMaker price comes near \
                         (check the unit: per hour, second or GB)"
                    ))
                    .into());
                }
                Ok(()) => {}
            }
            let mut rate = meter::override_rate(key.clone(), usd);
            if free {
                rate.provenance = rate
                    .provenance
                    .with_note("configured as free of charge (ClientBuilder::free_of_charge)");
            }
            price_overrides.insert(key, rate);
        }
        let mut profiles = HashMap::new();
        for profile in self.profiles {
            const OPTION: &str = "ClientBuilder::endpoint_profile";
            if profile.endpoint.trim().is_empty() {
                return Err(
                    ConfigError::new(OPTION, "an endpoint profile has an empty name").into(),
                );
            }
            if profile.variants.is_empty() {
                return Err(ConfigError::new(
                    OPTION,
                    format!(
                        "the profile of endpoint `{}` has no variants",
                        profile.endpoint
                    ),
                )
                .into());
            }
            profiles.insert(profile.endpoint.clone(), Arc::new(profile));
        }
        let mut charges = crate::FastMap::default();
        for (endpoint, c) in self.charges {
            c.validate()
                .map_err(|e| e.within(format_args!("usage charges of `{endpoint}`")))?;
            charges.insert(endpoint, c);
        }
        let metrics = CostMetrics::with_tag_labels(self.metric_tag_labels).map_err(|mut e| {
            e.option = "ClientBuilder::metric_tag_labels";
            e
        })?;
        // Every receipt goes to the cost log line, then to the metrics, then to the
        // caller's sinks: one list, in that order.
        let mut sinks = Vec::with_capacity(self.sinks.len() + 2);
        sinks.push(meter::MeteredSink::new(Arc::new(CostLogSink)));
        if self.metrics {
            crate::sink::describe_metrics();
            sinks.push(meter::MeteredSink::naming_components(Arc::new(metrics)));
        }
        sinks.extend(self.sinks);
        // The system clock's steps forward are checked against a clock that does
        // not step; a clock of the application's moves as it says (see `time_source`).
        let system_clock = match (&self.time, self.sdk_config.time_source()) {
            (Some(_), _) => false,
            (None, None) => true,
            (None, Some(sdk_time)) => reads_the_system_clock(&sdk_time),
        };
        let time = self
            .time
            .or_else(|| self.sdk_config.time_source())
            .unwrap_or_default();
        let sagemaker = self.discovery.then(|| {
            self.sagemaker
                .unwrap_or_else(|| aws_sdk_sagemaker::Client::new(&self.sdk_config))
        });
        let prices = match self.prices {
            Some(prices) => prices,
            None => {
                let pricing_config = self.pricing_config.as_ref().unwrap_or(&self.sdk_config);
                // A price change goes to every sink (a ledger writes a record of it).
                let told: Vec<Arc<dyn CostSink>> =
                    sinks.iter().map(|metered| metered.sink.clone()).collect();
                Arc::new(
                    CachedPrices::builder(
                        LivePrices::builder(pricing_config)
                            .time_source(time.clone())
                            .build(),
                    )
                    .fallback(Snapshot::bundled())
                    .time_source(time.clone())
                    .on_change(move |change| crate::sink::tell_price_change(&told, change))
                    .build(),
                )
            }
        };
        #[cfg(feature = "fleet")]
        if let Some(fleet) = &self.fleet {
            fleet.validate(&self.budgets)?;
        }
        #[cfg(feature = "fleet")]
        let budgets = Arc::new(Budgets::new(
            self.budgets,
            self.fleet.is_some(),
            time.clone(),
        ));
        #[cfg(not(feature = "fleet"))]
        let budgets = Arc::new(Budgets::new(self.budgets, false, time.clone()));
        let totals = Totals::with_max_concurrency_per_instance(self.max_concurrency_per_instance)
            .with_monotonic_reference(system_clock);
        #[cfg(feature = "fleet")]
        let fleet = self.fleet.map(|config| {
            crate::fleet::Fleet::new(
                config,
                &self.sdk_config,
                budgets.clone(),
                totals.handle(),
                time.clone(),
            )
        });
        let runtime = self
            .runtime
            .unwrap_or_else(|| aws_sdk_sagemakerruntime::Client::new(&self.sdk_config));
        let background = Arc::new(crate::background::Background::default());
        let data_in_key = PriceKey::DataIn {
            region: region.to_string(),
        };
        let data_out_key = PriceKey::DataOut {
            region: region.to_string(),
        };
        let meter = Meter {
            inner: Arc::new(MeterInner {
                region,
                endpoint_region,
                discovery: Discovery::new(
                    sagemaker,
                    profiles,
                    self.discovery_refresh,
                    self.discovery_timeout,
                    time.clone(),
                    background.clone(),
                ),
                background,
                calls: Default::default(),
                prices,
                price_overrides,
                instance_resources: self.instance_resources.into_iter().collect(),
                data_in_key,
                data_out_key,
                allocation: self.allocation,
                charges,
                token_counter: self.token_counter,
                default_tags: self.default_tags,
                totals,
                id: meter::new_meter_id(),
                budgets,
                #[cfg(feature = "fleet")]
                fleet,
                sinks,
                time,
                seq: Default::default(),
                warned: Default::default(),
                noted: Default::default(),
                prepared: Default::default(),
                capacity_applied: Default::default(),
                settled: Default::default(),
            }),
        };
        Ok((runtime, meter))
    }
}
