//! The account view: what a per-call meter cannot see.
//!
//! Receipts see the calls that went through sagemeter. The largest SageMaker
//! waste is an endpoint nobody calls (instances bill by the hour, busy or not),
//! and the final word is the AWS bill. This module answers both, with feature
//! `account`:
//!
//! - [`Account::endpoints`]: every endpoint of the account and region
//!   (`ListEndpoints`), each variant's deployment (`DescribeEndpoint`,
//!   `DescribeEndpointConfig`), its **burn** (USD per hour at on-demand prices:
//!   instances × rate, provisioned concurrency's standing charge, ML storage), its
//!   invocations and model time from CloudWatch (`AWS/SageMaker` `Invocations`
//!   and `ModelLatency` by `EndpointName` and `VariantName`; not for
//!   asynchronous endpoints, which SageMaker publishes no `Invocations` for), and
//!   flags: `idle`, `underused`, `unpriced`.
//! - [`Account::reconcile`]: what ledgers metered against what Cost Explorer
//!   billed (`GetCostAndUsage`, daily, Amazon SageMaker), day by day and per usage
//!   type or cost allocation tag, the difference explained in named parts. The
//!   bill is read as `AmortizedCost` (Savings Plans at their effective rate), of
//!   one account: the caller's (`sts:GetCallerIdentity`), or the one
//!   [`ReconcileOptions::account`] names (a member account, from a management
//!   account's credentials).
//!
//! ```no_run
//! # async fn run() -> Result<(), sagemeter::account::AccountError> {
//! use sagemeter::account::{Account, EndpointsOptions, Flag, Window};
//!
//! let sdk_config = aws_config::load_from_env().await;
//! let account = Account::new(&sdk_config);
//! let view = account.endpoints(&EndpointsOptions::new(Window::hours(24))).await?;
//! for row in view.rows.iter().filter(|r| r.flags.contains(&Flag::Idle)) {
//!     // A component's row (`inference_component`) is a share of its variant's burn.
//!     let component = row.inference_component.as_deref().unwrap_or("");
//!     println!("{} {component} burns ${:?}/h and nobody called it", row.endpoint, row.usd_per_hour);
//! }
//! # Ok(()) }
//! ```
//!
//! IAM actions: `sagemaker:ListEndpoints`, `sagemaker:DescribeEndpoint`,
//! `sagemaker:DescribeEndpointConfig`, `cloudwatch:GetMetricData` (endpoints; for
//! endpoints hosting inference components also `sagemaker:ListInferenceComponents`
//! and `sagemaker:DescribeInferenceComponent`); `ce:GetCostAndUsage` and, for `tag:`
//! grouping, `sagemaker:DescribeEndpoint` and `sagemaker:ListTags` (reconcile);
//! `pricing:GetProducts` for live prices. A missing one is named in
//! the error ([`AccountError::MissingPermission`]); `endpoints` still lists what
//! it can without CloudWatch.

mod accrual;
mod bill;
mod endpoints;
mod error;
mod metrics;
mod pages;
#[cfg(test)]
mod props;
mod reconcile;
#[cfg(test)]
mod tests;
mod usage_class;

pub use bill::BilledUsage;
pub use endpoints::{
    EndpointRow, EndpointsOptions, EndpointsView, Flag, VariantKind, ViewTotals, Window,
};
pub use error::AccountError;
pub use reconcile::{
    DayVerdict, GroupBy, Metered, Parts, ReconcileOptions, ReconcileRow, Reconciliation,
    SETTLING_TIME, Verdict,
};
pub use usage_class::UsageClass;

use crate::pricing::PriceSource;
use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
use std::fmt;
use std::sync::Arc;

/// The account's endpoints and bill, through the AWS APIs of one region.
///
/// Built from an `SdkConfig`, as the SDK's clients are: `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>` apply to each client it makes.
#[derive(Clone)]
pub struct Account {
    region: String,
    sagemaker: aws_sdk_sagemaker::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    cost_explorer: aws_sdk_costexplorer::Client,
    sts: aws_sdk_sts::Client,
    prices: Arc<dyn PriceSource>,
    time: SharedTimeSource,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("region", &self.region)
            .field("prices", &self.prices)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The account of `sdk_config`, priced by the default chain (live Price List →
    /// cache → bundled snapshot).
    pub fn new(sdk_config: &aws_types::SdkConfig) -> Account {
        Account::builder(sdk_config).build()
    }

    /// A builder, to set the price source or the clock.
    pub fn builder(sdk_config: &aws_types::SdkConfig) -> AccountBuilder {
        AccountBuilder {
            sdk_config: sdk_config.clone(),
            prices: None,
            time: None,
        }
    }

    /// The region this view covers (the SDK config's, else `us-east-1`).
    pub fn region(&self) -> &str {
        &self.region
    }
}

/// Builds an [`Account`].
pub struct AccountBuilder {
    sdk_config: aws_types::SdkConfig,
    prices: Option<Arc<dyn PriceSource>>,
    time: Option<SharedTimeSource>,
}

// Hand-written: the SDK config's Debug prints its credentials' access key id.
impl fmt::Debug for AccountBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountBuilder")
            .field("region", &self.sdk_config.region())
            .field("prices", &self.prices)
            .finish_non_exhaustive()
    }
}

impl AccountBuilder {
    /// Where rates come from (default: [`crate::pricing::default_price_source`]).
    /// An answer of $0, or of more than
    /// [`MAX_SANE_USD_PER_UNIT`](crate::pricing::MAX_SANE_USD_PER_UNIT) a unit, is
    /// taken for no rate, as the meter takes it: the endpoint's row is unpriced
    /// with the reason, and reconcile has no on-demand rate for that charge.
    pub fn price_source(mut self, prices: impl PriceSource + 'static) -> Self {
        self.prices = Some(Arc::new(prices));
        self
    }

    /// The clock that says "now" (default: the SDK config's, else the system's).
    pub fn time_source(mut self, time: SharedTimeSource) -> Self {
        self.time = Some(time);
        self
    }

    /// Makes the clients.
    pub fn build(self) -> Account {
        // The SDK's clients panic when built from a config without a behavior version.
        let conf = &crate::util::with_behavior_version(self.sdk_config);
        let region = conf
            .region()
            .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
        let prices = self
            .prices
            .unwrap_or_else(|| Arc::new(crate::pricing::default_price_source(conf)));
        let time = self
            .time
            .or_else(|| conf.time_source())
            .unwrap_or_else(|| SharedTimeSource::new(SystemTimeSource::new()));
        Account {
            region,
            sagemaker: aws_sdk_sagemaker::Client::new(conf),
            cloudwatch: aws_sdk_cloudwatch::Client::new(conf),
            cost_explorer: aws_sdk_costexplorer::Client::new(conf),
            sts: aws_sdk_sts::Client::new(conf),
            prices,
            time,
        }
    }
}
