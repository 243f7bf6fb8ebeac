//! Every endpoint's burn, invocations and flags.

use super::Account;
use super::error::{AccountError, from_sdk};
use super::metrics::{self, Target, VariantUsage};
use crate::billing::{
    ResourcesFrom, compute_key, copy_share, fit_to_instances, round_cost, unreserved_fraction,
};
use crate::endpoint::{
    DiscoveryError, EndpointKind, EndpointProfile, VariantBilling, VariantProfile,
};
use crate::pricing::{InstanceResources, PriceKey, PriceOrigin, PriceSource, Rate, plausible};
use crate::totals::storage_stretch;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// Hours in a month, as AWS's calculators count them (and as `compare` does).
const HOURS_PER_MONTH: u32 = 730;
/// Endpoints described at once.
const DESCRIBE_CONCURRENCY: usize = 8;

/// How far back invocations are counted: `24h`, `7d`, `30d`, from one hour to 90 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    hours: u32,
}

impl Window {
    /// The longest window: CloudWatch keeps hourly datapoints far longer, but a
    /// burn figure is about today's deployment.
    pub const MAX_HOURS: u32 = 90 * 24;

    /// A window of `n` hours (clamped to 1 ..= [`Window::MAX_HOURS`]).
    pub fn hours(n: u32) -> Window {
        Window {
            hours: n.clamp(1, Self::MAX_HOURS),
        }
    }

    /// A window of `n` days.
    pub fn days(n: u32) -> Window {
        Window::hours(n.saturating_mul(24))
    }

    /// Its length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.hours) * 3600)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.hours.is_multiple_of(24) && self.hours > 24 {
            write!(f, "{}d", self.hours / 24)
        } else {
            write!(f, "{}h", self.hours)
        }
    }
}

impl FromStr for Window {
    type Err = String;

    fn from_str(text: &str) -> Result<Window, String> {
        let bad = || {
            format!(
                "`{text}` is not a window: a number of hours or days, e.g. 24h, 7d, 30d (1h to {}d)",
                Self::MAX_HOURS / 24
            )
        };
        let (number, per) = match text.as_bytes().last() {
            Some(b'h') => (&text[..text.len() - 1], 1),
            Some(b'd') => (&text[..text.len() - 1], 24),
            _ => return Err(bad()),
        };
        let n: u32 = number.parse().map_err(|_| bad())?;
        let hours = n.checked_mul(per).ok_or_else(bad)?;
        if hours == 0 || hours > Self::MAX_HOURS {
            return Err(bad());
        }
        Ok(Window { hours })
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Window, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What [`Account::endpoints`] looks at.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct EndpointsOptions {
    /// How far back invocations are counted.
    pub window: Window,
    /// Instance variants whose utilisation (model time ÷ instance time) is below
    /// this share are flagged [`Flag::Underused`] (default 0.10).
    pub underused_below: Decimal,
}

impl EndpointsOptions {
    /// Options for `window`, with the default underuse threshold (10 %).
    pub fn new(window: Window) -> Self {
        EndpointsOptions {
            window,
            underused_below: Decimal::new(10, 2),
        }
    }

    /// Sets the underuse threshold, a share from 0 to 1.
    pub fn underused_below(mut self, share: Decimal) -> Self {
        self.underused_below = share;
        self
    }
}

/// What is wrong (or worth knowing) about a variant.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Burning money, and no invocation in the window (never an asynchronous
    /// endpoint: CloudWatch does not count its calls).
    Idle,
    /// Called, but its instances' time is mostly unused (utilisation below the threshold).
    Underused,
    /// Its burn could not be priced (see [`EndpointRow::unpriced_reason`]).
    Unpriced,
}

impl Flag {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Flag::Idle => "idle",
            Flag::Underused => "underused",
            Flag::Unpriced => "unpriced",
        }
    }
}

/// How a variant is billed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantKind {
    /// Real-time instances, per instance-hour.
    Instance,
    /// Asynchronous inference instances, per instance-hour.
    AsyncInstance,
    /// Serverless: per second of compute, plus provisioned concurrency's standing charge.
    Serverless,
    /// Not known: the endpoint could not be described.
    Unknown,
}

impl VariantKind {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            VariantKind::Instance => "instance",
            VariantKind::AsyncInstance => "async_instance",
            VariantKind::Serverless => "serverless",
            VariantKind::Unknown => "unknown",
        }
    }
}

/// One production variant of one endpoint, or one inference component hosted on a
/// variant (then the row after its variant's, and not in the totals: its burn is
/// part of the variant's).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRow {
    /// Endpoint name.
    pub endpoint: String,
    /// Variant name (`None` when the endpoint could not be described).
    pub variant: Option<String>,
    /// A shadow variant: billed for its instances like a production one, sent
    /// copies of production traffic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// The new fleet of a deployment under way (a blue/green update baking, from
    /// `DescribeEndpoint`'s `PendingDeploymentSummary`): AWS bills its instances
    /// (those up so far) on top of the old fleet's until the old one is retired.
    /// Its row follows its variant's, and is in the totals.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deploying: bool,
    /// The inference component this row is about (`None`: the whole variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_component: Option<String>,
    /// A component's copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies: Option<u32>,
    /// The share of the variant's instances the component's copies reserve (see
    /// `docs/cost-model.md`); `None` on variant rows, or when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_share: Option<Decimal>,
    /// On the row of a variant hosting components: the share of its instances no
    /// component reserves (its burn × this is paid for nothing any model holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreserved_share: Option<Decimal>,
    /// The endpoint's status: `InService`, `Creating`, `Updating`, `Failed`, ...
    pub status: String,
    /// How the variant is billed.
    pub kind: VariantKind,
    /// Instance type, for instance variants.
    pub instance_type: Option<String>,
    /// Instances running now, for instance variants.
    pub instance_count: Option<u32>,
    /// Memory, for serverless variants.
    pub memory_mb: Option<u32>,
    /// Provisioned concurrency, for serverless variants that have some.
    pub provisioned_concurrency: Option<u32>,
    /// What the variant costs per hour whether called or not: instances × rate,
    /// provisioned concurrency × its per-second rate × 3600, ML storage (GB ×
    /// instances × the GB-month rate ÷ 730). `0` for serverless without provisioned
    /// concurrency and for endpoints not billed in their status; `None` when
    /// unpriced, and for a serverless variant used in the window whose per-second
    /// rate is unknown.
    pub usd_per_hour: Option<Decimal>,
    /// The least fresh source among the rates used (live, cache, snapshot).
    pub price_source: Option<PriceOrigin>,
    /// Invocations over [`window_hours`](Self::window_hours) (CloudWatch), the
    /// span the window cost is measured over; `None` when CloudWatch did not
    /// answer, and for asynchronous endpoints (SageMaker publishes no
    /// `Invocations` for them).
    pub invocations: Option<u64>,
    /// Hours of the window the endpoint existed (the window, or less for a newer endpoint).
    pub window_hours: Decimal,
    /// The burn over those hours (its ML storage prorated over the calendar months
    /// they fall in), plus serverless compute estimated from `ModelLatency` × the
    /// serverless rate (with provisioned concurrency n, at most n × those hours'
    /// seconds of it at its inference rate, the rest on demand); `None` when
    /// unpriced (a serverless variant used in the window without a per-second rate
    /// is), and when not known from the deployment now (scaled to zero after calls
    /// in the window; asynchronous at zero instances; serverless with calls in the
    /// window whose compute CloudWatch does not give, no `ModelLatency` or a sum
    /// not used, or whose calls it did not answer for; `Deleting`, `OutOfService`,
    /// `Failed` after serving in the window (calls in it, or an update that failed
    /// in it) or a status not known here, billed earlier for a time not known: see
    /// [`ViewTotals::window_unpriced`]). Data processed is not in it: CloudWatch
    /// publishes no byte counts for endpoints.
    pub window_cost_usd: Option<Decimal>,
    /// window cost ÷ invocations × 1,000, when there were invocations (and the
    /// window cost is known).
    pub usd_per_1000_invocations: Option<Decimal>,
    /// Model time (CloudWatch `ModelLatency`, summed) ÷ instance time (instances ×
    /// window hours), for real-time instance variants with invocations: above 1
    /// when calls overlap.
    pub utilisation: Option<Decimal>,
    /// Idle, underused, unpriced.
    pub flags: Vec<Flag>,
    /// Why the burn is unknown, when [`Flag::Unpriced`].
    pub unpriced_reason: Option<String>,
    /// Things worth knowing (estimates, statuses not billed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The account's endpoints, with totals.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointsView {
    /// The region looked at.
    pub region: String,
    /// The window invocations were counted over.
    pub window: Window,
    /// When the view was made (the window ends there).
    pub at: DateTime<Utc>,
    /// One row per variant, by burn (highest first); unpriced rows last.
    pub rows: Vec<EndpointRow>,
    /// What they add up to.
    pub totals: ViewTotals,
    /// What could not be seen (e.g. CloudWatch not allowed), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the view as a whole leaves out, one sentence each: the cost of
    /// endpoints deleted within the window, which `ListEndpoints` no longer lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The view's note on endpoints deleted within the window: `ListEndpoints` lists
/// the endpoints there are now, and AWS billed a deleted one until its deletion.
const DELETED_NOT_LISTED: &str = "endpoints deleted within the window are not listed \
     (ListEndpoints lists the endpoints there are now): what they cost in the window until \
     their deletion is not in the totals";

/// What the account's endpoints cost.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewTotals {
    /// Endpoints listed.
    pub endpoints: usize,
    /// Burn of every priced variant, USD per hour.
    pub usd_per_hour: Decimal,
    /// The same per month of 730 hours.
    pub usd_per_month: Decimal,
    /// Burn of the idle variants, USD per hour.
    pub idle_usd_per_hour: Decimal,
    /// The same per month of 730 hours.
    pub idle_usd_per_month: Decimal,
    /// Window cost of every priced variant.
    pub window_cost_usd: Decimal,
    /// Variants whose burn is unknown (not in the sums).
    pub unpriced: usize,
    /// Variants whose burn is known and whose window cost is not (scaled to zero
    /// now, after calls in the window or with their calls not known from
    /// CloudWatch, or asynchronous and scaled to zero now, their use not known; serverless, their calls' compute or their calls not
    /// known from CloudWatch; or endpoints `Deleting`, `OutOfService`, `Failed`
    /// after serving in the window, or in a status not known here, billed earlier
    /// for a time not known): not in
    /// `window_cost_usd`, which is then less than the window cost. Left out of JSON
    /// when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub window_unpriced: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One listed endpoint.
struct Listed {
    name: String,
    status: String,
    created: Option<SystemTime>,
    /// `LastModifiedTime`: for an endpoint being updated, when the update began
    /// (or later, if it was modified again since).
    modified: Option<SystemTime>,
}

/// A row being made, with what its figures still need.
struct Draft {
    row: EndpointRow,
    created: Option<SystemTime>,
    /// The endpoint's `LastModifiedTime`.
    modified: Option<SystemTime>,
    /// How long after `created` a `LastModifiedTime` is taken for an update, not
    /// for the endpoint's coming into service (or its creation's failure): see
    /// [`updated_after`].
    updated_after: Duration,
    /// Serverless: USD per second of compute, to price `ModelLatency` (with
    /// provisioned concurrency, its inference rate: for the compute it serves).
    per_use_usd_per_second: Option<Decimal>,
    /// Serverless: why that rate is unknown, when it is.
    per_use_unpriced: Option<String>,
    /// Serverless with provisioned concurrency: the on-demand serverless rate,
    /// USD per second, for the compute beyond what the provisioned concurrency
    /// serves.
    beyond_usd_per_second: Option<Decimal>,
    /// Serverless with provisioned concurrency: why that rate is unknown, when it is.
    beyond_unpriced: Option<String>,
    /// Instance variants: what an instance has, as its rate said (for the shares
    /// of inference components).
    instance: Option<InstanceResources>,
    /// The source of the rate that carried `instance` (`None`: no rate).
    instance_from: Option<PriceOrigin>,
    /// A deployment's new fleet named as a variant running now: CloudWatch counts
    /// its calls under that name with the old fleet's, so it is not asked for on
    /// its own (see [`share_variant_figures`]).
    shares_variant_metrics: bool,
    /// A variant whose calls a deployment's new fleet (with instances up) serves
    /// some of: how many of its calls each fleet served is not known.
    new_fleet_serving: bool,
    /// A billed instance variant with priced ML storage: its instances' rate per
    /// hour and its storage per month, so that the window's storage is prorated
    /// over the calendar months the window falls in, as AWS bills GB-months (the
    /// burn's storage is an average 730-hour month's).
    standing: Option<(Decimal, Decimal)>,
    /// Instance variants with a known rate: USD per instance-hour (what a call's
    /// `ModelLatency` cost at the least, when no instance runs now).
    instance_usd_per_hour: Option<Decimal>,
}

impl Draft {
    /// `row`, dated `created` and `modified`, with no rates, instance or standing
    /// capacity of its own.
    fn bare(row: EndpointRow, created: Option<SystemTime>, modified: Option<SystemTime>) -> Draft {
        Draft {
            row,
            created,
            modified,
            updated_after: PROVISIONING_MARGIN,
            per_use_usd_per_second: None,
            per_use_unpriced: None,
            beyond_usd_per_second: None,
            beyond_unpriced: None,
            instance: None,
            instance_from: None,
            shares_variant_metrics: false,
            new_fleet_serving: false,
            standing: None,
            instance_usd_per_hour: None,
        }
    }

    /// Where the row's span begins: its creation, or `window_start` when it is
    /// older; never after `now` (a creation time after now, another host's clock
    /// or a garbled answer, leaves an empty span, not one in the future). Its
    /// calls are counted, and its cost measured, from there to `now`.
    fn span_start(&self, window_start: SystemTime, now: SystemTime) -> SystemTime {
        self.created
            .map_or(window_start, |c| c.max(window_start))
            .min(now)
    }

    /// An inference component's row, under its variant's `variant`: dated from
    /// the component's creation (its variant's when not given), no rates of its
    /// own, `standing` its part of the variant's.
    fn component(
        row: EndpointRow,
        component: &crate::endpoint::ComponentProfile,
        variant: &Draft,
        standing: Option<(Decimal, Decimal)>,
    ) -> Draft {
        let created = component.created.map(SystemTime::from).or(variant.created);
        Draft {
            standing,
            updated_after: variant.updated_after,
            ..Draft::bare(row, created, variant.modified)
        }
    }
}

impl Account {
    /// Every endpoint of the account and region, each variant's burn, invocations
    /// and flags.
    ///
    /// Errors only when the endpoints cannot be listed (`sagemaker:ListEndpoints`).
    /// An endpoint that cannot be described, a rate that cannot be found or
    /// CloudWatch refusing is a row flagged `unpriced` or a warning instead.
    pub async fn endpoints(
        &self,
        options: &EndpointsOptions,
    ) -> Result<EndpointsView, AccountError> {
        let now = self.time.now();
        let listed = self.list_endpoints().await?;
        let described = self.describe_all(&listed).await;
        let mut drafts = Vec::new();
        for (listed, described) in listed.iter().zip(described) {
            match described {
                Ok(profile) => {
                    let first = drafts.len();
                    for variant in &profile.variants {
                        let mut draft = self.draft(listed, &profile, variant).await;
                        let components = self.component_drafts(&profile, variant, &mut draft).await;
                        drafts.push(draft);
                        drafts.extend(components);
                    }
                    for variant in &profile.shadow_variants {
                        let mut draft = self.draft(listed, &profile, variant).await;
                        draft.row.shadow = true;
                        draft.row.notes.push(
                            "shadow variant: its instances are billed whether or not its \
                             copies of production traffic come"
                                .into(),
                        );
                        drafts.push(draft);
                    }
                    for variant in &profile.pending_variants {
                        let fleet = self.pending_draft(listed, &profile, variant).await;
                        if variant.runs() {
                            for draft in &mut drafts[first..] {
                                if replaced_by(&draft.row, &fleet.row) {
                                    draft.new_fleet_serving = true;
                                }
                            }
                        }
                        drafts.push(fleet);
                    }
                }
                Err(err) => drafts.push(undescribed(listed, &err)),
            }
        }

        let start = now
            .checked_sub(options.window.duration())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let targets: Vec<Target> = drafts
            .iter()
            .filter(|d| counted_by_cloudwatch(d))
            .filter_map(|d| {
                Some(Target {
                    endpoint: d.row.endpoint.clone(),
                    variant: d.row.variant.clone()?,
                    component: d.row.inference_component.clone(),
                    start: d.span_start(start, now),
                })
            })
            .collect();
        let mut warnings = Vec::new();
        let usage = match metrics::fetch(&self.cloudwatch, &targets, now).await {
            Ok(usage) => Some(usage),
            Err(err) => {
                tracing::warn!(target: "sagemeter::account", error = %err,
                    "no invocations from CloudWatch");
                warnings.push(format!("invocations unknown: {err}"));
                None
            }
        };
        let mut usage = usage.map(Vec::into_iter);
        for draft in &mut drafts {
            let used = if counted_by_cloudwatch(draft) {
                match usage.as_mut().and_then(Iterator::next) {
                    Some(Ok(used)) => Some(used),
                    Some(Err(reason)) => {
                        let name = match (&draft.row.inference_component, &draft.row.variant) {
                            (Some(component), _) => format!("{}/{component}", draft.row.endpoint),
                            (None, Some(variant)) => format!("{}/{variant}", draft.row.endpoint),
                            (None, None) => draft.row.endpoint.clone(),
                        };
                        tracing::warn!(target: "sagemeter::account", variant = %name,
                            reason = %reason, "no invocations from CloudWatch");
                        warnings.push(format!("invocations of {name} unknown: {reason}"));
                        None
                    }
                    None => None,
                }
            } else {
                None
            };
            finish(draft, used, now, start, options);
        }
        share_variant_figures(&mut drafts);

        let burn = |r: &EndpointRow| r.usd_per_hour.map_or(Decimal::MIN, |u| u);
        let (components, rest): (Vec<EndpointRow>, Vec<EndpointRow>) = drafts
            .into_iter()
            .map(|d| d.row)
            .partition(|r| r.inference_component.is_some());
        // A deployment's new fleet comes right after the variant it replaces.
        let (new_fleets, mut variants): (Vec<EndpointRow>, Vec<EndpointRow>) = rest
            .iter()
            .cloned()
            .partition(|fleet| fleet.deploying && rest.iter().any(|r| replaced_by(r, fleet)));
        variants.sort_by(|a, b| {
            burn(b)
                .cmp(&burn(a))
                .then_with(|| a.endpoint.cmp(&b.endpoint))
                .then_with(|| a.variant.cmp(&b.variant))
        });
        // Each variant's components right after it, by burn.
        let mut rows = Vec::with_capacity(rest.len() + components.len());
        for variant in variants {
            let mut hosted: Vec<&EndpointRow> = components
                .iter()
                .filter(|c| c.endpoint == variant.endpoint && c.variant == variant.variant)
                .collect();
            hosted.sort_by(|a, b| {
                burn(b)
                    .cmp(&burn(a))
                    .then_with(|| a.inference_component.cmp(&b.inference_component))
            });
            let hosted: Vec<EndpointRow> = hosted.into_iter().cloned().collect();
            let new_fleet: Vec<EndpointRow> = new_fleets
                .iter()
                .filter(|fleet| replaced_by(&variant, fleet))
                .cloned()
                .collect();
            rows.push(variant);
            rows.extend(hosted);
            rows.extend(new_fleet);
        }
        let totals = totals(&rows, listed.len());
        Ok(EndpointsView {
            region: self.region.clone(),
            window: options.window,
            at: now.into(),
            rows,
            totals,
            warnings,
            notes: vec![DELETED_NOT_LISTED.to_owned()],
        })
    }

    /// `ListEndpoints`, every page.
    async fn list_endpoints(&self) -> Result<Vec<Listed>, AccountError> {
        let mut pages = self.sagemaker.list_endpoints().into_paginator().send();
        let mut listed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("ListEndpoints", "sagemaker:ListEndpoints", e))?;
            for summary in page.endpoints() {
                listed.push(Listed {
                    name: summary.endpoint_name().unwrap_or_default().to_owned(),
                    status: summary
                        .endpoint_status()
                        .map_or_else(|| "Unknown".to_owned(), |s| s.as_str().to_owned()),
                    created: summary
                        .creation_time()
                        .and_then(|t| SystemTime::try_from(*t).ok()),
                    modified: summary
                        .last_modified_time()
                        .and_then(|t| SystemTime::try_from(*t).ok()),
                });
            }
        }
        Ok(listed)
    }

    /// Each endpoint's profile, [`DESCRIBE_CONCURRENCY`] at a time, in order.
    async fn describe_all(
        &self,
        listed: &[Listed],
    ) -> Vec<Result<EndpointProfile, DiscoveryError>> {
        let mut out = Vec::with_capacity(listed.len());
        for chunk in listed.chunks(DESCRIBE_CONCURRENCY) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, endpoint) in chunk.iter().enumerate() {
                let client = self.sagemaker.clone();
                let name = endpoint.name.clone();
                tasks.spawn(async move { (i, crate::endpoint::describe(&client, &name).await) });
            }
            let mut answers: Vec<Option<Result<EndpointProfile, DiscoveryError>>> =
                (0..chunk.len()).map(|_| None).collect();
            while let Some(joined) = tasks.join_next().await {
                if let Ok((i, answer)) = joined {
                    answers[i] = Some(answer);
                }
            }
            for (answer, endpoint) in answers.into_iter().zip(chunk) {
                out.push(answer.unwrap_or_else(|| {
                    Err(DiscoveryError::Failed {
                        endpoint: endpoint.name.clone(),
                        message: "the description task failed".into(),
                    })
                }));
            }
        }
        out
    }

    /// A variant's row, priced; invocations come later.
    async fn draft(
        &self,
        listed: &Listed,
        profile: &EndpointProfile,
        variant: &VariantProfile,
    ) -> Draft {
        let mut row = EndpointRow::listed(listed, Some(variant.name.clone()));
        let mut per_use_usd_per_second = None;
        let mut per_use_unpriced = None;
        let mut beyond_usd_per_second = None;
        let mut beyond_unpriced = None;
        let mut instance = None;
        let mut instance_from = None;
        let mut standing = None;
        let mut instance_usd_per_hour = None;
        let burn = match &variant.billing {
            VariantBilling::Instance {
                instance_type,
                instance_count,
            } => {
                row.kind = match profile.kind {
                    EndpointKind::Async => VariantKind::AsyncInstance,
                    _ => VariantKind::Instance,
                };
                row.instance_type = Some(instance_type.clone());
                row.instance_count = Some(*instance_count);
                // A new fleet whose deployment's config could not be described
                // says so below; otherwise no size stated is no size assumed.
                let config_unread = profile.pending_storage_unknown.is_some()
                    && profile
                        .pending_variants
                        .iter()
                        .any(|p| std::ptr::eq(p, variant));
                if variant.volume_size_gb.is_none()
                    && *instance_count > 0
                    && !config_unread
                    && billed_in(&row.status)
                {
                    row.notes.push(
                        "the ML storage is not in the burn: the endpoint config states no \
                         VolumeSizeInGB (SageMaker attaches a volume of the instance type's \
                         default size, none on types with NVMe instance storage)"
                            .into(),
                    );
                }
                self.instance_burn(profile.kind, variant, *instance_count, &mut row)
                    .await
                    .map(|burn| {
                        instance = burn.resources;
                        instance_from = Some(burn.resources_from);
                        instance_usd_per_hour = Some(burn.usd_per_instance_hour);
                        standing = burn.storage_usd_per_month.map(|m| (burn.instances, m));
                        burn.usd_per_hour
                    })
            }
            VariantBilling::Serverless {
                memory_mb,
                provisioned_concurrency,
            } => {
                row.kind = VariantKind::Serverless;
                row.memory_mb = Some(*memory_mb);
                row.provisioned_concurrency = *provisioned_concurrency;
                // Wanted only if CloudWatch shows use: `finish` decides.
                match compute_key(&self.region, profile.kind, &variant.billing) {
                    Ok(key) => match self.rate(&key, &mut row).await {
                        Ok(rate) => per_use_usd_per_second = Some(rate.usd_per_unit),
                        Err(reason) => per_use_unpriced = Some(reason),
                    },
                    Err(err) => per_use_unpriced = Some(err.to_string()),
                }
                // Compute beyond the provisioned concurrency is billed on demand.
                if provisioned_concurrency.is_some() {
                    let on_demand = VariantBilling::Serverless {
                        memory_mb: *memory_mb,
                        provisioned_concurrency: None,
                    };
                    match compute_key(&self.region, profile.kind, &on_demand) {
                        Ok(key) => match self.rate(&key, &mut row).await {
                            Ok(rate) => beyond_usd_per_second = Some(rate.usd_per_unit),
                            Err(reason) => beyond_unpriced = Some(reason),
                        },
                        Err(err) => beyond_unpriced = Some(err.to_string()),
                    }
                }
                self.serverless_burn(*memory_mb, *provisioned_concurrency, &mut row)
                    .await
            }
        };
        if billed_in(&row.status) {
            match burn {
                Ok(usd) => row.usd_per_hour = Some(usd),
                Err(reason) => {
                    row.flags.push(Flag::Unpriced);
                    row.unpriced_reason = Some(reason);
                }
            }
        } else {
            row.usd_per_hour = Some(Decimal::ZERO);
            row.notes.push(format!("not billed while {}", row.status));
            standing = None;
        }
        Draft {
            row,
            created: listed.created,
            modified: listed.modified,
            updated_after: updated_after(profile, listed.created),
            per_use_usd_per_second,
            per_use_unpriced,
            beyond_usd_per_second,
            beyond_unpriced,
            instance,
            instance_from,
            shares_variant_metrics: false,
            new_fleet_serving: false,
            standing,
            instance_usd_per_hour,
        }
    }

    /// The row of a deployment's new fleet: its instances up so far, priced like
    /// its variant's, marked `deploying`.
    async fn pending_draft(
        &self,
        listed: &Listed,
        profile: &EndpointProfile,
        variant: &VariantProfile,
    ) -> Draft {
        let mut draft = self.draft(listed, profile, variant).await;
        draft.row.deploying = true;
        draft.row.shadow = profile
            .shadow_variants
            .iter()
            .any(|s| s.name == variant.name);
        draft.shares_variant_metrics = profile
            .variants
            .iter()
            .chain(&profile.shadow_variants)
            .any(|v| v.name == variant.name);
        // The new fleet is billed from the deployment's start. Without it, the
        // endpoint's last modification stands for it (an estimate: later if the
        // endpoint was modified again since).
        let started = profile.pending_since.map(SystemTime::from);
        draft.created = started.or(listed.modified).or(listed.created);
        draft.row.notes.push(
            if started.is_some() {
                "a deployment's new fleet: billed for its instances up so far, on top of the \
                 old fleet's, until the old one is retired; its window cost counts them from \
                 the deployment's start, at their count now"
            } else {
                "a deployment's new fleet: billed for its instances up so far, on top of the \
                 old fleet's, until the old one is retired; its window cost counts them from \
                 the endpoint's last modification (the update's start), an estimate"
            }
            .into(),
        );
        // Discovery sizes the new fleet's volumes from the deployment's endpoint
        // config; when that could not be described, say what the burn leaves out.
        if let (None, Some(reason), Some(n)) = (
            variant.volume_size_gb,
            profile.pending_storage_unknown.as_deref(),
            draft.row.instance_count.filter(|n| *n > 0),
        ) {
            draft.row.notes.push(format!(
                "the ML storage of its {n} instance{} is not in the burn: {reason}",
                if n == 1 { "" } else { "s" }
            ));
        }
        draft
    }

    /// One row per inference component of `variant`: its reserved share of the
    /// variant's instances and that share of the variant's burn; and on the
    /// variant's own row, the share no component reserves.
    async fn component_drafts(
        &self,
        profile: &EndpointProfile,
        variant: &VariantProfile,
        variant_draft: &mut Draft,
    ) -> Vec<Draft> {
        let hosted: Vec<_> = profile
            .components
            .iter()
            .filter(|c| c.variant == variant.name)
            .collect();
        let VariantBilling::Instance {
            instance_type,
            instance_count,
        } = &variant.billing
        else {
            return Vec::new();
        };
        if hosted.is_empty() {
            return Vec::new();
        }
        if *instance_count == 0 {
            // Scaled to zero: no share of no instance, and no burn; the rows stay,
            // so that the components' calls in the window are shown.
            return hosted
                .iter()
                .map(|component| {
                    let mut row = variant_draft.row.clone();
                    row.inference_component = Some(component.name.clone());
                    row.copies = (!component.is_adapter()).then_some(component.copies);
                    row.notes.clear();
                    row.flags.retain(|f| *f == Flag::Unpriced);
                    row.notes.push(match &component.base {
                        Some(base) => format!(
                            "an adapter of `{base}`: it runs on that component's copies and \
                             reserves nothing of its own (its calls' cost is in that row)"
                        ),
                        None => "its variant has no instance now: it reserves nothing".into(),
                    });
                    Draft::component(row, component, variant_draft, variant_draft.standing)
                })
                .collect();
        }
        let resources = variant_draft.instance.clone();
        // The components that reserve the instances (adapters reserve nothing), each
        // copy's share scaled down as the receipts' are when together they reserve
        // more than the instances hold.
        let reserving: Vec<&crate::endpoint::ComponentProfile> =
            hosted.iter().copied().filter(|c| !c.is_adapter()).collect();
        let mut shares: Vec<_> = reserving
            .iter()
            .map(|c| {
                let share = copy_share(
                    &c.per_copy,
                    instance_type,
                    resources.as_ref(),
                    ResourcesFrom::rate(variant_draft.instance_from),
                );
                (c.name.clone(), share)
            })
            .collect();
        let scaled = fit_to_instances(*instance_count, &reserving, &mut shares);
        let mut next_share = shares.iter().map(|(_, share)| share);
        let mut drafts = Vec::with_capacity(hosted.len());
        for component in &hosted {
            let mut row = variant_draft.row.clone();
            row.inference_component = Some(component.name.clone());
            row.copies = Some(component.copies);
            row.notes.clear();
            row.flags.retain(|f| *f == Flag::Unpriced);
            let mut standing = None;
            if let Some(base) = &component.base {
                // An adapter runs on its base's copies: it reserves nothing, and
                // its calls' share is the base's.
                row.copies = None;
                row.reserved_share = Some(Decimal::ZERO);
                row.usd_per_hour = Some(Decimal::ZERO);
                row.flags.retain(|f| *f != Flag::Unpriced);
                row.unpriced_reason = None;
                row.notes.push(format!(
                    "an adapter of `{base}`: it runs on that component's copies and reserves \
                     nothing of its own (its calls' cost is in that row)"
                ));
            } else if let Some(share) = next_share.next() {
                // One share per reserving component, in their order.
                match share.clone() {
                    Ok(share) => {
                        let reserved = share.of_instance * Decimal::from(component.copies)
                            / Decimal::from(*instance_count);
                        row.reserved_share = Some(reserved.round_dp(6).normalize());
                        row.usd_per_hour = variant_draft
                            .row
                            .usd_per_hour
                            .map(|burn| round_cost(burn * reserved).normalize());
                        standing = variant_draft
                            .standing
                            .map(|(instances, storage)| (instances * reserved, storage * reserved));
                        row.notes.push(format!(
                            "a copy reserves {} of an instance (by {}{})",
                            share.of_instance.round_dp(6).normalize(),
                            share.by.as_str(),
                            if scaled {
                                "; scaled down, as the components together reserve more \
                                 than the instances hold"
                            } else {
                                ""
                            }
                        ));
                    }
                    Err(reason) => {
                        row.usd_per_hour = None;
                        if !row.flags.contains(&Flag::Unpriced) {
                            row.flags.push(Flag::Unpriced);
                        }
                        row.unpriced_reason = Some(reason);
                    }
                }
            }
            drafts.push(Draft::component(row, component, variant_draft, standing));
        }
        let unreserved = unreserved_fraction(
            *instance_count,
            reserving
                .iter()
                .copied()
                .zip(shares.iter().map(|(_, share)| share)),
        );
        if let Some(fraction) = unreserved {
            let row = &mut variant_draft.row;
            row.unreserved_share = Some(fraction.round_dp(6).normalize());
            if let Some(burn) = row.usd_per_hour {
                row.notes.push(format!(
                    "inference components reserve {}% of the instances; {} USD/hour is \
                     reserved by none",
                    ((Decimal::ONE - fraction) * Decimal::ONE_HUNDRED)
                        .round_dp(2)
                        .normalize(),
                    round_cost(burn * fraction).normalize()
                ));
            }
        }
        drafts
    }

    /// Instances × the hourly rate, plus their ML storage when its size is known;
    /// and what an instance has, when the rate says.
    async fn instance_burn(
        &self,
        kind: EndpointKind,
        variant: &VariantProfile,
        count: u32,
        row: &mut EndpointRow,
    ) -> Result<InstanceBurn, String> {
        let key = compute_key(&self.region, kind, &variant.billing).map_err(|e| e.to_string())?;
        let hourly = self.rate(&key, row).await?;
        let instances = hourly.usd_per_unit * Decimal::from(count);
        let mut storage_usd_per_month = None;
        if let Some(gb) = variant.volume_size_gb {
            // The instances are most of the burn: a storage rate that cannot be
            // found leaves their burn shown, and says what it leaves out.
            match self
                .rate(&PriceKey::storage(self.region.as_str()), row)
                .await
            {
                Ok(rate) => {
                    storage_usd_per_month =
                        Some(rate.usd_per_unit * Decimal::from(gb) * Decimal::from(count));
                }
                Err(reason) => row.notes.push(format!(
                    "the ML storage ({gb} GB × {count} instances) is not in the burn: {reason}"
                )),
            }
        }
        let storage_per_hour =
            storage_usd_per_month.map_or(Decimal::ZERO, |m| m / Decimal::from(HOURS_PER_MONTH));
        Ok(InstanceBurn {
            usd_per_hour: round_cost(instances + storage_per_hour),
            instances,
            usd_per_instance_hour: hourly.usd_per_unit,
            storage_usd_per_month,
            resources_from: hourly.provenance.source,
            resources: hourly.instance,
        })
    }

    /// Provisioned concurrency's standing charge, per hour; `0` without it.
    async fn serverless_burn(
        &self,
        memory_mb: u32,
        provisioned: Option<u32>,
        row: &mut EndpointRow,
    ) -> Result<Decimal, String> {
        let Some(n) = provisioned else {
            return Ok(Decimal::ZERO);
        };
        if memory_mb == 0 || !memory_mb.is_multiple_of(1024) {
            return Err(format!(
                "serverless memory size {memory_mb} MB is not a whole number of GB"
            ));
        }
        let key = PriceKey::ProvisionedConcurrency {
            region: self.region.clone(),
            memory_gb: memory_mb / 1024,
        };
        let per_second = self.rate(&key, row).await?.usd_per_unit;
        Ok(round_cost(
            per_second * Decimal::from(n) * Decimal::from(3600),
        ))
    }

    /// The rate of `key`, noting its source on the row (the least fresh wins). A
    /// source's $0, or a rate beyond any SageMaker price, is no rate
    /// ([`plausible`]): the row is unpriced with the reason, never a burn of $0,
    /// and a rate × instances (or × provisioned × 3,600) stays within a `Decimal`.
    async fn rate(&self, key: &PriceKey, row: &mut EndpointRow) -> Result<Rate, String> {
        let rate = plausible(self.prices.price(key).await).map_err(|e| e.to_string())?;
        let source = rate.provenance.source;
        row.price_source = Some(row.price_source.map_or(source, |s| s.max(source)));
        Ok(rate)
    }
}

impl EndpointRow {
    /// A listed endpoint's row, before anything is known of its variant.
    fn listed(listed: &Listed, variant: Option<String>) -> EndpointRow {
        EndpointRow {
            endpoint: listed.name.clone(),
            variant,
            shadow: false,
            deploying: false,
            inference_component: None,
            copies: None,
            reserved_share: None,
            unreserved_share: None,
            status: listed.status.clone(),
            kind: VariantKind::Unknown,
            instance_type: None,
            instance_count: None,
            memory_mb: None,
            provisioned_concurrency: None,
            usd_per_hour: None,
            price_source: None,
            invocations: None,
            window_hours: Decimal::ZERO,
            window_cost_usd: None,
            usd_per_1000_invocations: None,
            utilisation: None,
            flags: Vec::new(),
            unpriced_reason: None,
            notes: Vec::new(),
        }
    }
}

/// Statuses in which an endpoint's instances are billed.
fn billed_in(status: &str) -> bool {
    matches!(
        status,
        "InService" | "Updating" | "SystemUpdating" | "RollingBack" | "UpdateRollbackFailed"
    )
}

/// Statuses not billed now in which an endpoint may have been billed earlier in
/// the window, for a time nothing here tells: `Deleting` and `OutOfService` (its
/// instances were billed while it was in service, until its deletion began or it
/// went out of service), and any status not known here. `Creating` is taken for
/// not billed in the window at all, and so is `Failed` unless
/// [`failed_after_serving`].
fn billed_before(status: &str) -> bool {
    !billed_in(status) && !matches!(status, "Creating" | "Failed")
}

/// Whether an endpoint `Failed` now may have been billed in the window's span:
/// `Failed` is also an update's or a re-scaling's failure, after the endpoint
/// served. It did if it served calls in the span (`used`), or if it was
/// `updated` within the span (its `LastModifiedTime`, when it failed, in the span
/// and later after its creation than its creation may take, [`updated_after`]):
/// an update failed there, not its creation. One whose creation failed, or that
/// failed before the span, was not billed in it. One whose calls CloudWatch was
/// asked for and did not give (`used_unknown`) may have served: not taken for
/// one that did not.
fn failed_after_serving(
    status: &str,
    used: Option<VariantUsage>,
    used_unknown: bool,
    updated: bool,
) -> bool {
    let served =
        used.is_some_and(|u| u.invocations > 0 || u.model_latency_us.is_some_and(|us| us > 0.0));
    status == "Failed" && (served || used_unknown || updated)
}

/// The row of an endpoint that could not be described.
fn undescribed(listed: &Listed, err: &DiscoveryError) -> Draft {
    let reason = match err {
        DiscoveryError::AccessDenied { message, .. } => format!(
            "not allowed to describe the endpoint: grant the IAM actions sagemaker:DescribeEndpoint \
             and sagemaker:DescribeEndpointConfig ({message})"
        ),
        other => other.to_string(),
    };
    let mut row = EndpointRow::listed(listed, None);
    if billed_in(&listed.status) {
        row.flags.push(Flag::Unpriced);
        row.unpriced_reason = Some(reason);
    } else {
        row.usd_per_hour = Some(Decimal::ZERO);
    }
    Draft::bare(row, listed.created, listed.modified)
}

/// Whether CloudWatch is asked for the row's calls: not for an endpoint that could
/// not be described, nor for an asynchronous one (SageMaker publishes no
/// `Invocations`, `InvocationsPerInstance` or `OverheadLatency` for asynchronous
/// endpoints), nor for a deployment's new fleet counted under its variant's name.
fn counted_by_cloudwatch(draft: &Draft) -> bool {
    let row = &draft.row;
    row.variant.is_some() && row.kind != VariantKind::AsyncInstance && !draft.shares_variant_metrics
}

/// Whether `row` is the variant a deployment's new fleet (`fleet`'s row) replaces:
/// the variant's own row (not a component's, nor another new fleet's) of that name.
fn replaced_by(row: &EndpointRow, fleet: &EndpointRow) -> bool {
    !row.deploying
        && row.inference_component.is_none()
        && row.endpoint == fleet.endpoint
        && row.variant == fleet.variant
}

/// What a deployment's new fleet shares with the variant whose name it carries:
/// CloudWatch counts the calls of both fleets under that name, so the variant's
/// row has them all. The new fleet is idle when its variant had no call (neither
/// fleet was called), and the variant's cost per 1,000 calls counts the new
/// fleet's window cost too.
fn share_variant_figures(drafts: &mut [Draft]) {
    for i in 0..drafts.len() {
        if !drafts[i].shares_variant_metrics {
            continue;
        }
        let fleet = &drafts[i].row;
        let Some(j) = drafts.iter().position(|d| replaced_by(&d.row, fleet)) else {
            continue;
        };
        let calls = drafts[j].row.invocations;
        let fleet = &mut drafts[i].row;
        fleet.notes.push(
            "its calls are counted on its variant's row: CloudWatch counts both fleets' \
             calls under the variant's name"
                .into(),
        );
        if calls == Some(0) && fleet.usd_per_hour.is_some_and(|b| b > Decimal::ZERO) {
            fleet.flags.push(Flag::Idle);
        }
    }
    for j in 0..drafts.len() {
        let variant = &drafts[j].row;
        let (Some(calls), Some(own)) = (variant.invocations, variant.window_cost_usd) else {
            continue;
        };
        if calls == 0 || variant.deploying || variant.inference_component.is_some() {
            continue;
        }
        let fleets: Vec<Option<Decimal>> = drafts
            .iter()
            .filter(|d| {
                d.shares_variant_metrics
                    && d.row.endpoint == variant.endpoint
                    && d.row.variant == variant.variant
            })
            .map(|d| d.row.window_cost_usd)
            .collect();
        if fleets.is_empty() {
            continue;
        }
        let both: Option<Decimal> = fleets.into_iter().sum::<Option<Decimal>>().map(|f| f + own);
        let row = &mut drafts[j].row;
        match both {
            Some(cost) => {
                row.usd_per_1000_invocations =
                    Some(round_cost(cost * Decimal::from(1000) / Decimal::from(calls)).normalize());
                row.notes.push(
                    "cost per 1,000 calls counts the window cost of the deployment's new \
                     fleet too: its calls are among these"
                        .into(),
                );
            }
            None => {
                row.usd_per_1000_invocations = None;
                row.notes.push(
                    "no cost per 1,000 calls: the deployment's new fleet, which serves some \
                     of these calls, is unpriced"
                        .into(),
                );
            }
        }
    }
}

/// More model time than any endpoint runs in the longest window (200 concurrent
/// serverless calls, SageMaker's most, for 90 days is 1.6e15 µs): a CloudWatch
/// sum beyond it, or below 0, is no figure to price (nor to overflow on).
const MAX_MODEL_LATENCY_US: f64 = 1e18;

/// What an instance variant burns: per hour (its ML storage at an average
/// 730-hour month), and its parts.
struct InstanceBurn {
    usd_per_hour: Decimal,
    /// The instances' rate per hour.
    instances: Decimal,
    /// One instance's rate per hour.
    usd_per_instance_hour: Decimal,
    /// The ML storage per month, when the volume size and the rate are known.
    storage_usd_per_month: Option<Decimal>,
    resources: Option<InstanceResources>,
    /// Where the rate that carried `resources` came from.
    resources_from: PriceOrigin,
}

/// Why an asynchronous variant has no invocations, per-1,000 cost, utilisation
/// or idle flag.
const ASYNC_NOT_COUNTED: &str = "asynchronous endpoint: SageMaker publishes no CloudWatch \
     `Invocations` for it, so its calls, cost per 1,000 calls, utilisation and idleness \
     are not known here";

/// What an endpoint's creation may take beyond its config's timeouts (the
/// instances' provisioning, the model's registration): an hour. Without the
/// timeouts (an endpoint not described, or a config setting neither), the
/// whole of what a creation is taken to take.
const PROVISIONING_MARGIN: Duration = Duration::from_secs(3600);

/// How long after its creation an endpoint's `LastModifiedTime` is taken for an
/// update, not for its coming into service or its creation's failure: the
/// longest its config lets a variant's instances take to come up (the model
/// data download's timeout and the container startup health check's, each up
/// to an hour, added), and [`PROVISIONING_MARGIN`]. Those of the config it was
/// created with: one created after the endpoint (`created`) came with an
/// update, and says nothing of how long its creation took, which is then taken
/// to take the margin alone.
fn updated_after(profile: &EndpointProfile, created: Option<SystemTime>) -> Duration {
    let config_created = profile.config_created.map(SystemTime::from);
    if config_created.zip(created).is_some_and(|(c, e)| c > e) {
        return PROVISIONING_MARGIN;
    }
    profile
        .variants
        .iter()
        .chain(&profile.shadow_variants)
        .filter_map(VariantProfile::startup_timeouts)
        .max()
        .unwrap_or_default()
        + PROVISIONING_MARGIN
}

/// Adds the window's figures and the flags.
fn finish(
    draft: &mut Draft,
    used: Option<VariantUsage>,
    now: SystemTime,
    window_start: SystemTime,
    options: &EndpointsOptions,
) {
    // The span CloudWatch was asked about: the calls and the cost are of the same.
    let from = draft.span_start(window_start, now);
    // Asked of CloudWatch, and not answered (refused, failed).
    let used_unknown = used.is_none() && counted_by_cloudwatch(draft);
    let row = &mut draft.row;
    // No datapoint of an asynchronous endpoint is "no calls": none is published.
    let used = if row.kind == VariantKind::AsyncInstance {
        row.notes.push(ASYNC_NOT_COUNTED.into());
        None
    } else {
        used
    };
    let seconds = now.duration_since(from).unwrap_or_default().as_secs();
    // Updated within the window (a new config: another instance type or count):
    // the window's figures take the deployment described now for all of it. An
    // endpoint's LastModifiedTime is also when it came into service, or when its
    // creation failed, as late as its config's timeouts let it: only past them
    // and a margin is it an update.
    let updated = draft.modified.filter(|&modified| {
        modified > from
            && modified <= now
            && draft.created.is_some_and(|created| {
                modified
                    .duration_since(created)
                    .is_ok_and(|d| d > draft.updated_after)
            })
    });
    // Billed until its deletion began, it went out of service or it failed after
    // serving, for a time nothing here tells: no window figures (said below).
    let failed_late = failed_after_serving(&row.status, used, used_unknown, updated.is_some());
    let billed_earlier = billed_before(&row.status) || failed_late;
    if let Some(modified) = updated
        && !billed_earlier
    {
        let at = crate::util::utc(modified).map_or_else(String::new, |t| {
            format!(
                " at {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        });
        row.notes.push(format!(
            "updated within the window{at}: its window cost, cost per 1,000 calls and \
             utilisation take the deployment described now for the whole window"
        ));
    }
    row.window_hours = (Decimal::from(seconds) / Decimal::from(3600))
        .round_dp(6)
        .normalize();
    let latency_us = used.and_then(|u| u.model_latency_us);
    let model_seconds = latency_us
        .filter(|us| (0.0..=MAX_MODEL_LATENCY_US).contains(us))
        .and_then(|us| Decimal::try_from(us).ok())
        .map(|us| us / Decimal::from(1_000_000));
    if let (Some(us), None) = (latency_us, model_seconds) {
        row.notes.push(format!(
            "CloudWatch's ModelLatency sum, {us:e} µs, is no possible figure: not used"
        ));
    }

    // Provisioned concurrency n serves at most n × the span's seconds of compute;
    // the rest ran on demand (see docs/cost-model.md): (served, beyond, n).
    let provisioned_split = match (row.kind, row.provisioned_concurrency, model_seconds) {
        (VariantKind::Serverless, Some(n), Some(s)) => {
            let cap = Decimal::from(n) * Decimal::from(seconds);
            Some((s.min(cap), (s - cap).max(Decimal::ZERO), n))
        }
        _ => None,
    };
    if row.kind == VariantKind::Serverless
        && let Some(reason) = &draft.per_use_unpriced
    {
        // Called (or computing) with no per-second rate: the compute it was billed
        // is unknown, and $0 would be a guess. Without use, nothing is billed per
        // use, and the standing burn stands.
        let in_use = used
            .is_some_and(|u| u.invocations > 0 || u.model_latency_us.is_some_and(|us| us > 0.0));
        if in_use && row.usd_per_hour.is_some() {
            row.usd_per_hour = None;
            row.flags.push(Flag::Unpriced);
            row.unpriced_reason = Some(format!(
                "called in the window, and the serverless per-second rate is unknown: {reason}"
            ));
        } else {
            row.notes.push(format!(
                "the serverless per-second rate is unknown ({reason}): calls would be unpriced"
            ));
        }
    } else if let Some(reason) = &draft.beyond_unpriced
        && row.provisioned_concurrency.is_some()
    {
        // Compute beyond the provisioned concurrency, with no on-demand rate: its
        // cost is unknown, as any compute without its rate is. Within it, the
        // on-demand rate is not needed.
        match provisioned_split {
            Some((_, beyond, n)) if beyond > Decimal::ZERO && row.usd_per_hour.is_some() => {
                row.usd_per_hour = None;
                row.flags.push(Flag::Unpriced);
                row.unpriced_reason = Some(format!(
                    "{} s of compute in the window (CloudWatch ModelLatency) beyond the {} s \
                     its provisioned concurrency of {n} serves over {seconds} s is billed at \
                     the on-demand serverless rate, which is unknown: {reason}",
                    beyond.round_dp(6).normalize(),
                    (Decimal::from(n) * Decimal::from(seconds)).normalize(),
                ));
            }
            _ => row.notes.push(format!(
                "the on-demand serverless rate is unknown ({reason}): compute beyond the \
                 provisioned concurrency would be unpriced"
            )),
        }
    }
    // No instance now (scaled to zero), yet calls in the window: they ran on
    // instances since scaled in, for as long as the deployment now does not say.
    // Not a window cost of $0, nor $0 per 1,000 calls. Only in a billed status:
    // an endpoint being created stands at 0 instances without having scaled in,
    // and one billed earlier says so below. Likewise a component at 0 copies on
    // instances that stay up: its copies since scaled in reserved a share of
    // them (an adapter has no copies of its own: `None`).
    let copies_at_zero = row.inference_component.is_some() && row.copies == Some(0);
    let at_zero = (row.instance_count == Some(0) || copies_at_zero)
        && !row.deploying
        && row.usd_per_hour.is_some()
        && billed_in(&row.status);
    let scaled_to_zero_in_use = matches!(row.kind, VariantKind::Instance)
        && at_zero
        && used.is_some_and(|u| u.invocations > 0 || u.model_latency_us.is_some_and(|us| us > 0.0));
    // At zero now, and CloudWatch did not answer for its calls in the window
    // (refused, down, or its query not answered): it may have served calls on
    // instances (or copies) since scaled in, or none. Not a window cost of $0
    // either. An adapter (no copies of its own) burns nothing on any count: its
    // $0 is no guess.
    let adapter = row.inference_component.is_some() && row.copies.is_none();
    let scaled_to_zero_use_unknown =
        matches!(row.kind, VariantKind::Instance) && at_zero && !adapter && used.is_none();
    // An asynchronous endpoint's use is not read (see `ASYNC_NOT_COUNTED`): at 0
    // instances now, it may have scaled out for requests queued in the window, and
    // in again, for a time nothing here tells. Not a window cost of $0 either.
    let async_at_zero = row.kind == VariantKind::AsyncInstance && at_zero;
    if scaled_to_zero_in_use {
        let calls = used.map_or(0, |u| u.invocations);
        // What is known: the calls' model time summed, at the instance rate. Not a
        // bound either way: calls that overlapped on one instance count each, and
        // the instances stood between calls until scaled in.
        let model_time = match (model_seconds, draft.instance_usd_per_hour) {
            (Some(s), Some(rate)) if row.inference_component.is_none() => format!(
                "; the calls' model time (CloudWatch ModelLatency summed, {} s, calls that \
                 overlapped each counted) × {} USD per instance-hour is {} USD, not the \
                 window's cost: overlapping calls shared instances, which stood between \
                 calls too, until scaled in",
                s.normalize(),
                rate.normalize(),
                round_cost(s * rate / Decimal::from(3600)).normalize(),
            ),
            _ => String::new(),
        };
        let held = if row.instance_count == Some(0) {
            "instances"
        } else {
            "copies"
        };
        row.notes.push(format!(
            "scaled to zero now (0 {held}), yet it served {calls} calls in the window, on \
             {held} since scaled in: the window's cost and cost per 1,000 calls are not \
             known from the deployment now{model_time}"
        ));
    }
    if scaled_to_zero_use_unknown {
        let held = if row.instance_count == Some(0) {
            "instances"
        } else {
            "copies"
        };
        row.notes.push(format!(
            "scaled to zero now (0 {held}); CloudWatch did not answer for its calls in the \
             window, so whether it ran on {held} since scaled in, and for how long, is not \
             known: the window's cost is not known from the deployment now (not $0)"
        ));
    }
    // Billed earlier (see `billed_earlier`): not a window cost of $0 either.
    if billed_earlier {
        let why = if failed_late {
            " (it served calls in the window, or an update failed in it: `Failed` is not \
             only a creation's failure)"
        } else {
            ""
        };
        row.notes.push(format!(
            "{} now: billed for its instances while it was in service, until then, which may \
             be within the window{why}: its instance-hours in the window are not known from \
             here, nor its window cost, cost per 1,000 calls and utilisation",
            row.status
        ));
    }
    if async_at_zero {
        row.notes.push(
            "scaled to zero now (0 instances): an asynchronous endpoint scales out for the \
             requests queued and in again, and its use in the window is not known here, so \
             neither is how long instances stood in it: the window's cost is not known from \
             the deployment now"
                .into(),
        );
    }
    // A serverless variant is billed for its calls' compute, which CloudWatch's
    // ModelLatency gives. Calls in the window without it (no datapoint, or a sum
    // no endpoint can reach), or calls not known at all (CloudWatch did not
    // answer), have a compute, and so a window cost, not known here: not $0, nor
    // $0 per 1,000 calls. Only in a billed status (one `Creating` or whose
    // creation failed served nothing), and not for a deployment's new fleet,
    // whose calls and compute are counted on its variant's row.
    let serverless_compute_unknown = row.kind == VariantKind::Serverless
        && row.usd_per_hour.is_some()
        && billed_in(&row.status)
        && !draft.shares_variant_metrics
        && match used {
            None => true,
            Some(u) => model_seconds.is_none() && (u.invocations > 0 || latency_us.is_some()),
        };
    if serverless_compute_unknown {
        let what = match used {
            None => "its calls in the window are not known (CloudWatch did not answer for them)"
                .to_owned(),
            Some(u) if latency_us.is_none() => format!(
                "served {} calls in the window, and CloudWatch has no ModelLatency for them",
                u.invocations
            ),
            Some(u) => format!(
                "served {} calls in the window, and CloudWatch's ModelLatency sum for them is \
                 not used",
                u.invocations
            ),
        };
        row.notes.push(format!(
            "{what}: the compute a serverless variant is billed for per second is not known, \
             and so neither are the window's cost and cost per 1,000 calls (not $0)"
        ));
    }
    if let Some(burn) = row.usd_per_hour.filter(|_| {
        !scaled_to_zero_in_use
            && !scaled_to_zero_use_unknown
            && !async_at_zero
            && !billed_earlier
            && !serverless_compute_unknown
    }) {
        let hours = Decimal::from(seconds) / Decimal::from(3600);
        let mut cost = match draft.standing {
            Some((instances, storage_usd_per_month)) => {
                let until = from + Duration::from_secs(seconds);
                instances * hours + storage_stretch(storage_usd_per_month, from, until)
            }
            None => burn * hours,
        };
        // Calls without their compute have no window cost (above); no call is no
        // compute.
        if row.kind == VariantKind::Serverless
            && let (Some(s), Some(rate)) = (model_seconds, draft.per_use_usd_per_second)
        {
            match provisioned_split {
                None => {
                    cost += s * rate;
                    row.notes.push(
                        "serverless compute estimated from CloudWatch ModelLatency × the \
                         serverless rate"
                            .into(),
                    );
                }
                Some((served, beyond, n)) => {
                    // Unpriced above when there is compute beyond and no rate for it.
                    let on_demand = draft.beyond_usd_per_second.unwrap_or_default();
                    cost += served * rate + beyond * on_demand;
                    // A lower bound only if n held all window: an update within
                    // it may have changed n, and more n before than now
                    // overstates, less understates.
                    let bound = if updated.is_some() {
                        format!(
                            "; updated within the window, it may have had another \
                             provisioned concurrency before: today's ({n}) is taken for \
                             the whole window, standing and cap alike, which can overstate \
                             or understate what was billed"
                        )
                    } else {
                        "; calls beyond the provisioned concurrency at peaks while the sum \
                         stays below that cap are priced at the inference rate here, so \
                         the estimate is a lower bound"
                            .to_owned()
                    };
                    row.notes.push(format!(
                        "serverless compute estimated from CloudWatch ModelLatency: up to \
                         provisioned concurrency × the window's seconds ({n} × {seconds} s) \
                         at the provisioned-concurrency inference rate, {} s beyond it at \
                         the on-demand serverless rate{bound}",
                        beyond.round_dp(6).normalize()
                    ));
                }
            }
        }
        row.window_cost_usd = Some(round_cost(cost).normalize());
    }
    let Some(used) = used else { return };
    row.invocations = Some(used.invocations);
    // An adapter (no copies of its own) runs on its base's copies, whose row
    // carries its calls' cost: its own $0 is no price per call (`adapter`).
    if used.invocations > 0 {
        if let Some(cost) = row.window_cost_usd.filter(|_| !adapter) {
            row.usd_per_1000_invocations = Some(
                round_cost(cost * Decimal::from(1000) / Decimal::from(used.invocations))
                    .normalize(),
            );
        }
        // A component's calls are served by its copies; a variant's by its instances.
        // An adapter has no copies of its own (`None`): it runs on its base's, shared
        // with the base's calls, and burns nothing, so it has no utilisation.
        let instances = row.copies.or(row.instance_count).unwrap_or(0);
        if draft.new_fleet_serving {
            row.notes.push(
                "no utilisation (nor `underused`) while a deployment's new fleet runs: \
                 CloudWatch counts both fleets' calls under the variant's name, and not \
                 how many each served"
                    .into(),
            );
        } else if matches!(row.kind, VariantKind::Instance | VariantKind::AsyncInstance)
            && !adapter
            && !row.deploying
            && !billed_earlier
            && instances > 0
            && seconds > 0
            && let Some(model) = model_seconds
        {
            let utilisation = (model / (Decimal::from(instances) * Decimal::from(seconds)))
                .round_dp(4)
                .normalize();
            row.utilisation = Some(utilisation);
            if utilisation < options.underused_below {
                row.flags.push(Flag::Underused);
            }
        }
    } else if row.usd_per_hour.is_some_and(|b| b > Decimal::ZERO) {
        row.flags.push(Flag::Idle);
    }
}

fn totals(rows: &[EndpointRow], endpoints: usize) -> ViewTotals {
    let mut t = ViewTotals {
        endpoints,
        usd_per_hour: Decimal::ZERO,
        usd_per_month: Decimal::ZERO,
        idle_usd_per_hour: Decimal::ZERO,
        idle_usd_per_month: Decimal::ZERO,
        window_cost_usd: Decimal::ZERO,
        unpriced: 0,
        window_unpriced: 0,
    };
    // A component's burn is part of its variant's.
    for row in rows.iter().filter(|r| r.inference_component.is_none()) {
        match row.usd_per_hour {
            Some(burn) => {
                t.usd_per_hour += burn;
                if row.flags.contains(&Flag::Idle) {
                    t.idle_usd_per_hour += burn;
                }
            }
            None => t.unpriced += 1,
        }
        match row.window_cost_usd {
            Some(cost) => t.window_cost_usd += cost,
            // Its burn is known, its window's cost is not (scaled to zero since,
            // after calls or with its calls not known; serverless, its calls'
            // compute not known; or deleting: billed earlier for a time not known).
            None if row.usd_per_hour.is_some() => t.window_unpriced += 1,
            None => {}
        }
    }
    let month = Decimal::from(HOURS_PER_MONTH);
    t.usd_per_month = (t.usd_per_hour * month).normalize();
    t.idle_usd_per_month = (t.idle_usd_per_hour * month).normalize();
    t.usd_per_hour = t.usd_per_hour.normalize();
    t.idle_usd_per_hour = t.idle_usd_per_hour.normalize();
    t.window_cost_usd = t.window_cost_usd.normalize();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_hours_and_days_and_print_back() {
        assert_eq!("24h".parse::<Window>().unwrap(), Window::hours(24));
        assert_eq!("7d".parse::<Window>().unwrap(), Window::days(7));
        assert_eq!(Window::days(30).to_string(), "30d");
        assert_eq!(Window::hours(24).to_string(), "24h");
        assert_eq!(Window::days(7).duration(), Duration::from_secs(7 * 86_400));
        for bad in ["", "24", "0h", "91d", "-1d", "1w", "h"] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_in_a_status_not_billed_burn_nothing_and_are_not_unpriced() {
        assert!(billed_in("InService") && billed_in("Updating") && billed_in("RollingBack"));
        assert!(!billed_in("Creating") && !billed_in("Failed") && !billed_in("OutOfService"));
        let failed = Listed {
            name: "broken".into(),
            status: "Failed".into(),
            created: None,
            modified: None,
        };
        let gone = DiscoveryError::NotFound {
            endpoint: "broken".into(),
            message: "gone".into(),
        };
        let draft = undescribed(&failed, &gone);
        assert_eq!(draft.row.status, "Failed");
        assert_eq!(draft.row.usd_per_hour, Some(Decimal::ZERO));
        assert!(draft.row.flags.is_empty());
        // The same endpoint in service, undescribable: unpriced, with the reason.
        let listed = Listed {
            status: "InService".into(),
            ..failed
        };
        let draft = undescribed(&listed, &gone);
        assert_eq!(draft.row.usd_per_hour, None);
        assert_eq!(draft.row.flags, [Flag::Unpriced]);
        assert!(draft.row.unpriced_reason.unwrap().contains("gone"));
    }

    fn row(kind: VariantKind, count: Option<u32>, burn: &str) -> Draft {
        let listed = Listed {
            name: "e".into(),
            status: "InService".into(),
            created: None,
            modified: None,
        };
        let mut draft = undescribed(
            &listed,
            &DiscoveryError::Failed {
                endpoint: "e".into(),
                message: String::new(),
            },
        );
        draft.row.variant = Some("AllTraffic".into());
        draft.row.kind = kind;
        draft.row.instance_count = count;
        draft.row.flags.clear();
        draft.row.unpriced_reason = None;
        draft.row.usd_per_hour = Some(burn.parse().unwrap());
        draft
    }

    /// An endpoint updated within the window (another config: its instance type
    /// or count may have changed) says that the window's figures take the
    /// deployment described now for all of it; one that only came into service
    /// after its creation, or was updated before the window, does not.
    #[test]
    fn an_update_within_the_window_is_said_of_its_figures() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let start = now - Duration::from_secs(86_400);
        let options = EndpointsOptions::new(Window::hours(24));
        let noted = |created: SystemTime, modified: SystemTime| {
            let mut draft = row(VariantKind::Instance, Some(1), "0.23");
            (draft.created, draft.modified) = (Some(created), Some(modified));
            finish(&mut draft, None, now, start, &options);
            draft
                .row
                .notes
                .iter()
                .any(|n| n.starts_with("updated within the window at "))
        };
        let week_ago = now - Duration::from_secs(7 * 86_400);
        let hour = Duration::from_secs(3600);
        assert!(noted(week_ago, now - 2 * hour));
        assert!(!noted(week_ago, start - hour), "updated before the window");
        assert!(
            !noted(now - 3 * hour, now - 3 * hour + hour / 6),
            "came into service"
        );
    }

    #[test]
    fn an_instance_variant_without_invocations_is_idle_and_one_with_few_is_underused() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let start = now - Duration::from_secs(86_400);
        let options = EndpointsOptions::new(Window::hours(24));
        let mut idle = row(VariantKind::Instance, Some(1), "0.23");
        finish(
            &mut idle,
            Some(VariantUsage::default()),
            now,
            start,
            &options,
        );
        assert_eq!(idle.row.flags, [Flag::Idle]);
        // 24 h × $0.23 = $5.52
        assert_eq!(idle.row.window_cost_usd, Some("5.52".parse().unwrap()));

        // 100 calls of 0.5 s on 2 instances over 24 h: 50 s ÷ 172,800 s = 0.0003.
        let mut few = row(VariantKind::Instance, Some(2), "0.46");
        let used = VariantUsage {
            invocations: 100,
            model_latency_us: Some(50_000_000.0),
        };
        finish(&mut few, Some(used), now, start, &options);
        assert_eq!(few.row.utilisation, Some("0.0003".parse().unwrap()));
        assert_eq!(few.row.flags, [Flag::Underused]);
        // 24 × 0.46 = 11.04 over 100 calls = 110.4 per 1,000
        assert_eq!(
            few.row.usd_per_1000_invocations,
            Some("110.4".parse().unwrap())
        );

        // Without CloudWatch, no flag is guessed.
        let mut unknown = row(VariantKind::Instance, Some(1), "0.23");
        finish(&mut unknown, None, now, start, &options);
        assert!(unknown.row.flags.is_empty());
        assert_eq!(unknown.row.invocations, None);
    }

    /// Answers no endpoint can give (a creation time 265,000 years ahead, more
    /// model time than the window holds many times over, from a garbled or hostile
    /// answer) make no panic and no figure from them.
    #[test]
    fn impossible_times_and_sums_from_aws_make_no_panic_and_no_figure() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let start = now - Duration::from_secs(86_400);
        let options = EndpointsOptions::new(Window::hours(24));
        // Created after now, with storage to prorate: an empty window.
        let mut future = row(VariantKind::Instance, Some(1), "0.23");
        future.created = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(8_300_000_000_000));
        future.standing = Some(("0.23".parse().unwrap(), "4.2".parse().unwrap()));
        finish(&mut future, None, now, start, &options);
        assert_eq!(future.row.window_hours, Decimal::ZERO);
        assert_eq!(future.row.window_cost_usd, Some(Decimal::ZERO));

        // A serverless ModelLatency sum of 7.9e28 µs at a rate of $1,000,000 a
        // second would overflow any money figure: it is named and not used.
        let mut serverless = row(VariantKind::Serverless, None, "0");
        serverless.per_use_usd_per_second = Some(Decimal::from(1_000_000));
        let used = VariantUsage {
            invocations: u64::MAX,
            model_latency_us: Some(7.9e28),
        };
        finish(&mut serverless, Some(used), now, start, &options);
        // Its calls' compute is then not known, nor its window's cost: not $0.
        assert_eq!(serverless.row.window_cost_usd, None);
        assert_eq!(serverless.row.usd_per_1000_invocations, None);
        assert!(
            serverless
                .row
                .notes
                .iter()
                .any(|n| n.starts_with("CloudWatch's ModelLatency sum, 7.9e28 µs, is no possible")),
            "{:?}",
            serverless.row.notes
        );
    }
}
