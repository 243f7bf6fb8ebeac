//! Endpoint discovery: how each endpoint is billed.
//!
//! `DescribeEndpoint` gives each production variant's current instance count or
//! serverless configuration; `DescribeEndpointConfig` gives its instance type and
//! whether the endpoint is asynchronous. The result, an [`EndpointProfile`], is
//! cached and refreshed in the background (autoscaling changes the count): a stale
//! profile is used at once while one refresh runs. A manual profile set with
//! [`ClientBuilder::endpoint_profile`](crate::ClientBuilder::endpoint_profile)
//! always wins, for users without `sagemaker:Describe*` permissions.
//!
//! Endpoints that host inference components ([`ComponentProfile`]) also list and describe
//! their components, with the copies each runs and what each copy reserves.

mod components;

pub use components::{ComponentProfile, CopyReservation};

use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use aws_smithy_async::time::SharedTimeSource;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How one production variant is billed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VariantBilling {
    /// Instance-backed variant: billed per instance-hour whether busy or not.
    Instance {
        /// Instance type, e.g. `ml.m5.xlarge`.
        instance_type: String,
        /// Instances currently running.
        instance_count: u32,
    },
    /// Serverless variant: billed per second of compute at its memory size.
    Serverless {
        /// Memory size in MB (1024 to 6144, in 1024 MB steps).
        memory_mb: u32,
        /// Provisioned concurrency, when configured.
        provisioned_concurrency: Option<u32>,
    },
}

/// One production variant of an endpoint.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantProfile {
    /// Variant name, e.g. `AllTraffic`.
    pub name: String,
    /// How it is billed.
    pub billing: VariantBilling,
    /// Current traffic weight, when known.
    pub weight: Option<f32>,
    /// The ML storage volume attached to each instance, in GB (the endpoint
    /// config's `VolumeSizeInGB`), when set: billed per GB-month whether calls
    /// come or not.
    #[serde(default)]
    pub volume_size_gb: Option<u32>,
    /// The endpoint config's `ModelDataDownloadTimeoutInSeconds`, when set: how
    /// long SageMaker may take to download the model to each instance (up to
    /// 3,600 s) before the endpoint's creation or update fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_data_download_timeout_s: Option<u32>,
    /// The endpoint config's `ContainerStartupHealthCheckTimeoutInSeconds`, when
    /// set: how long the container may take to pass its health check (up to
    /// 3,600 s) before the endpoint's creation or update fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_startup_timeout_s: Option<u32>,
}

impl VariantProfile {
    /// An instance-backed variant.
    pub fn instance(name: impl Into<String>, instance_type: impl Into<String>, count: u32) -> Self {
        VariantProfile {
            name: name.into(),
            billing: VariantBilling::Instance {
                instance_type: instance_type.into(),
                instance_count: count,
            },
            weight: None,
            volume_size_gb: None,
            model_data_download_timeout_s: None,
            container_startup_timeout_s: None,
        }
    }

    /// A serverless variant.
    pub fn serverless(name: impl Into<String>, memory_mb: u32) -> Self {
        VariantProfile {
            name: name.into(),
            billing: VariantBilling::Serverless {
                memory_mb,
                provisioned_concurrency: None,
            },
            weight: None,
            volume_size_gb: None,
            model_data_download_timeout_s: None,
            container_startup_timeout_s: None,
        }
    }

    /// Sets the ML storage volume of each instance, in GB (`VolumeSizeInGB`).
    pub fn with_volume_size_gb(mut self, gb: u32) -> Self {
        self.volume_size_gb = Some(gb);
        self
    }

    /// How long its instances may take to come up by its config's timeouts: the
    /// model data download's and the container startup health check's, added
    /// (one not set counts nothing); `None` when neither is set.
    pub fn startup_timeouts(&self) -> Option<Duration> {
        let (download, startup) = (
            self.model_data_download_timeout_s,
            self.container_startup_timeout_s,
        );
        (download.is_some() || startup.is_some()).then(|| {
            Duration::from_secs(u64::from(download.unwrap_or(0)) + u64::from(startup.unwrap_or(0)))
        })
    }

    /// Whether anything of the variant is up: an instance variant with at least
    /// one instance (a deployment's new fleet starts at none), or a serverless one.
    pub(crate) fn runs(&self) -> bool {
        match self.billing {
            VariantBilling::Instance { instance_count, .. } => instance_count > 0,
            VariantBilling::Serverless { .. } => true,
        }
    }

    /// Sets the provisioned concurrency of a serverless variant (no effect on instances).
    pub fn with_provisioned_concurrency(mut self, concurrency: u32) -> Self {
        if let VariantBilling::Serverless {
            provisioned_concurrency,
            ..
        } = &mut self.billing
        {
            *provisioned_concurrency = Some(concurrency);
        }
        self
    }
}

/// Real-time or asynchronous inference.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    /// Real-time inference (`InvokeEndpoint`, streaming).
    RealTime,
    /// Asynchronous inference (`InvokeEndpointAsync`); instances bill as `AsyncInf`.
    Async,
}

/// Where a profile came from.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSource {
    /// `DescribeEndpoint` + `DescribeEndpointConfig`.
    Discovered,
    /// Set by the user.
    Override,
}

/// How an endpoint is billed: its variants.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointProfile {
    /// Endpoint name.
    pub endpoint: String,
    /// Real-time or async.
    pub kind: EndpointKind,
    /// Production variants.
    pub variants: Vec<VariantProfile>,
    /// Shadow variants: billed for their instances like production ones, sent
    /// copies of production traffic by SageMaker, never a caller's call. Their
    /// standing capacity is accrued with the production variant's (see
    /// [`billed_alongside`](Self::billed_alongside)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow_variants: Vec<VariantProfile>,
    /// The fleet a deployment is bringing up (`PendingDeploymentSummary`: a
    /// blue/green update baking), production and shadow variants alike, at their
    /// current instance counts. AWS bills both fleets until the old one is
    /// retired, so their standing capacity is accrued too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_variants: Vec<VariantProfile>,
    /// Why the pending fleet's ML storage is not accrued, when the deployment's
    /// endpoint config (which alone gives its `VolumeSizeInGB`) could not be
    /// described: its instances are still accrued, and calls priced meanwhile
    /// say so, rather than its storage passing for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_storage_unknown: Option<String>,
    /// When the deployment under way began (`PendingDeploymentSummary.StartTime`):
    /// its new fleet has been billed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_since: Option<chrono::DateTime<chrono::Utc>>,
    /// When the endpoint config the endpoint runs was created
    /// (`DescribeEndpointConfig`'s `CreationTime`). One created after the
    /// endpoint came with an update: the endpoint was not created with it, so
    /// its timeouts say nothing of how long the endpoint's creation took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_created: Option<chrono::DateTime<chrono::Utc>>,
    /// Inference components hosted on the variants' instances (empty for an endpoint
    /// whose variants carry their model), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentProfile>,
    /// Discovered or overridden.
    pub source: ProfileSource,
    /// Described while `Creating`: it stands at nothing until it is in service,
    /// which is looked for every few seconds, as a deployment's switch-over is.
    #[serde(skip)]
    pub(crate) being_created: bool,
}

impl EndpointProfile {
    /// A real-time endpoint profile (for overrides and tests).
    pub fn new(endpoint: impl Into<String>, variants: Vec<VariantProfile>) -> Self {
        EndpointProfile {
            endpoint: endpoint.into(),
            kind: EndpointKind::RealTime,
            variants,
            shadow_variants: Vec::new(),
            pending_variants: Vec::new(),
            pending_storage_unknown: None,
            pending_since: None,
            config_created: None,
            components: Vec::new(),
            source: ProfileSource::Override,
            being_created: false,
        }
    }

    /// Adds a shadow variant (for overrides and tests): its instances are
    /// accrued with the production variant's, never priced on a call.
    pub fn with_shadow_variant(mut self, variant: VariantProfile) -> Self {
        self.shadow_variants.push(variant);
        self
    }

    /// Adds a variant of a deployment under way (for overrides and tests): the
    /// new fleet of a blue/green update, billed while it bakes.
    pub fn with_pending_variant(mut self, variant: VariantProfile) -> Self {
        self.pending_variants.push(variant);
        self
    }

    /// The variants that serve no caller's call but are billed with `production`'s
    /// standing capacity, so its accrual carries them: the shadow variants (AWS
    /// allows one, and then only one production variant), and the pending fleet
    /// of a deployment (its variant of the same name, else, like every fleet no
    /// production variant names, the first production variant's). Nothing
    /// billed is left out of every accrual; on an endpoint with several
    /// production variants and no match by name, which variant carries it is a
    /// choice, not AWS's rule.
    pub fn billed_alongside<'a>(
        &'a self,
        production: &'a VariantProfile,
    ) -> impl Iterator<Item = &'a VariantProfile> + 'a {
        let first = self
            .variants
            .first()
            .is_some_and(|v| std::ptr::eq(v, production) || v.name == production.name);
        let unmatched =
            move |v: &&VariantProfile| first && !self.variants.iter().any(|p| p.name == v.name);
        self.shadow_variants
            .iter()
            .filter(move |v| v.name == production.name || unmatched(v))
            .chain(
                self.pending_variants
                    .iter()
                    .filter(move |v| v.name == production.name || unmatched(v)),
            )
    }

    /// Adds an inference component (for overrides and tests).
    pub fn with_component(mut self, component: ComponentProfile) -> Self {
        self.components.push(component);
        self
    }

    /// The inference component named `name`, if the endpoint hosts it.
    pub fn component(&self, name: &str) -> Option<&ComponentProfile> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The instances behind the endpoint's instance-backed variants, all together,
    /// whatever their weights (the calls that name no variant share only
    /// [`routable_instance_count`](Self::routable_instance_count)).
    pub fn instance_count(&self) -> u32 {
        self.variants
            .iter()
            .map(|v| match v.billing {
                VariantBilling::Instance { instance_count, .. } => instance_count,
                VariantBilling::Serverless { .. } => 0,
            })
            .fold(0u32, u32::saturating_add)
    }

    /// The instances a call that names no variant (no `TargetVariant`) can be
    /// routed to: those of the instance variants SageMaker sends such calls to,
    /// every one whose weight is not 0 (a variant drained to weight 0 with
    /// `UpdateEndpointWeightsAndCapacities` serves only the calls that target
    /// it; a weight not known counts as routable). How many calls at once the
    /// endpoint's processor-sharing clock, which such calls share, shares them
    /// between. When every variant has weight 0 none is preferred, and all the
    /// instances count, as in [`instance_count`](Self::instance_count).
    pub fn routable_instance_count(&self) -> u32 {
        self.routable()
            .map(|v| match v.billing {
                VariantBilling::Instance { instance_count, .. } => instance_count,
                VariantBilling::Serverless { .. } => 0,
            })
            .fold(0u32, u32::saturating_add)
    }

    /// The variants a call that names no variant can be routed to: those whose
    /// weight is not 0 (not known counts as routable), else, every weight being
    /// 0, all of them.
    fn routable(&self) -> impl Iterator<Item = &VariantProfile> {
        let drained = |v: &VariantProfile| v.weight.is_some_and(|w| w <= 0.0);
        let all = self.variants.iter().all(drained);
        self.variants.iter().filter(move |v| all || !drained(v))
    }

    /// Marks the endpoint as asynchronous.
    pub fn asynchronous(mut self) -> Self {
        self.kind = EndpointKind::Async;
        self
    }

    /// The variant that served a call: the one SageMaker named, else the one the
    /// caller targeted, else the only one, else the heaviest by weight (of those
    /// not drained to weight 0, as [`routable_instance_count`](Self::routable_instance_count)
    /// counts them). The second
    /// value says how the choice was made when SageMaker did not name it.
    ///
    /// `None` when SageMaker named a variant the profile does not have (the
    /// profile is stale, e.g. after a blue/green deployment), or, SageMaker
    /// naming none (a failed call), when the caller targeted one it does not
    /// have: the call is not another variant's, whose instances may be priced
    /// quite differently.
    ///
    /// While a deployment brings up a new fleet for the variant, the note says
    /// so: SageMaker does not say which fleet served a call while traffic
    /// shifts, and the call is priced at the current fleet's instances (the
    /// profile is refreshed every few seconds meanwhile, so the switch-over is
    /// soon seen). Without a deployment the notes are static text, as before.
    pub fn variant_for(
        &self,
        invoked: Option<&str>,
        targeted: Option<&str>,
    ) -> Option<(&VariantProfile, Option<Cow<'static, str>>)> {
        let (variant, note) = self.variant_chosen(invoked, targeted)?;
        if self.pending_variants.is_empty() {
            return Some((variant, note.map(Cow::Borrowed)));
        }
        Some((variant, self.deployment_note(variant, note)))
    }

    /// The variant an async settlement is priced at, with notes on how it was
    /// chosen. `InvokeEndpointAsync` names no variant, so `assumed`, the one its
    /// submission took (the only, or heaviest, variant then), is a hint, not
    /// SageMaker's word: it is kept when the profile still has it; else the
    /// variant [`variant_for`](Self::variant_for) takes for a call that names
    /// none, as the submission did, with a note naming both. A variant the
    /// profile lacks is never taken for one SageMaker named (no unpriced
    /// compute, no refresh, for a name SageMaker never gave). `None` only when
    /// the profile has no variant to price at.
    pub(crate) fn variant_assumed(
        &self,
        assumed: &str,
        targeted: Option<&str>,
    ) -> Option<(&VariantProfile, Vec<Cow<'static, str>>)> {
        if let Some((variant, note)) = self.variant_for(Some(assumed), None) {
            let mut notes = Vec::with_capacity(2);
            if self.variants.len() > 1 {
                notes.push(Cow::Borrowed(HEAVIEST_ASSUMED_AT_SUBMISSION));
            }
            notes.extend(note);
            return Some((variant, notes));
        }
        let (variant, note) = self.variant_for(None, targeted)?;
        let mut notes = vec![Cow::Owned(format!(
            "the submission's variant `{assumed}` is no longer the endpoint's; priced at `{}`",
            variant.name
        ))];
        notes.extend(note);
        Some((variant, notes))
    }

    /// [`variant_for`](Self::variant_for) without the deployment's note.
    fn variant_chosen(
        &self,
        invoked: Option<&str>,
        targeted: Option<&str>,
    ) -> Option<(&VariantProfile, Option<&'static str>)> {
        let by_name = |name: &str| self.variants.iter().find(|v| v.name == name);
        if let Some(invoked) = invoked {
            return by_name(invoked).map(|v| (v, None));
        }
        // A variant targeted that the profile lacks (added since it was
        // described, or no such variant) is not another's: the only variant's
        // instances may be priced quite differently.
        if let Some(targeted) = targeted {
            return by_name(targeted).map(|v| (v, Some("variant taken from TargetVariant")));
        }
        // Of the variants such a call can be routed to: not one drained to
        // weight 0 beside one of a weight not known (which ties at 0 here).
        match self.variants.as_slice() {
            [] => None,
            [only] => Some((only, None)),
            _ => self
                .routable()
                .max_by(|a, b| {
                    a.weight
                        .unwrap_or(0.0)
                        .partial_cmp(&b.weight.unwrap_or(0.0))
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .map(|v| (v, Some(HEAVIEST_ASSUMED))),
        }
    }
}

/// How a call that names no variant, on an endpoint of several, is given one.
const HEAVIEST_ASSUMED: &str = "SageMaker did not name the variant: heaviest variant assumed";

/// An async settlement's [`HEAVIEST_ASSUMED`]: its submission took the variant,
/// of those the endpoint had then.
const HEAVIEST_ASSUMED_AT_SUBMISSION: &str = "SageMaker did not name the variant: heaviest \
     variant assumed, at submission (or its only variant then)";

impl EndpointProfile {
    /// `note` (how the variant was chosen), with what a deployment under way for
    /// `served` means for its price: the new fleet of the same name, once some
    /// of it is up, may have served the call.
    fn deployment_note(
        &self,
        served: &VariantProfile,
        note: Option<&'static str>,
    ) -> Option<Cow<'static, str>> {
        let new_fleet = self
            .pending_variants
            .iter()
            .find(|p| p.name == served.name && p.runs());
        let Some(new_fleet) = new_fleet else {
            return note.map(Cow::Borrowed);
        };
        use std::fmt::Write as _;
        let mut text = String::with_capacity(160);
        if let Some(note) = note {
            text.push_str(note);
            text.push_str("; ");
        }
        let _ = write!(
            text,
            "a blue/green deployment is under way; the call may have been served by the \
             new fleet ({}), priced at {}",
            Fleet(&new_fleet.billing),
            PricedAs(&served.billing)
        );
        if let Some(reason) = &self.pending_storage_unknown {
            let _ = write!(
                text,
                "; the new fleet's ML storage is not accrued: {reason}"
            );
        }
        Some(Cow::Owned(text))
    }
}

/// A fleet as a note names it: `ml.g5.xlarge × 2`, `serverless 4096 MB`.
struct Fleet<'a>(&'a VariantBilling);

impl fmt::Display for Fleet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            VariantBilling::Instance {
                instance_type,
                instance_count,
            } => write!(f, "{instance_type} × {instance_count}"),
            VariantBilling::Serverless { memory_mb, .. } => write!(f, "serverless {memory_mb} MB"),
        }
    }
}

/// What a call was priced at, as a note names it: `ml.g5.xlarge`, `serverless 4096 MB`.
struct PricedAs<'a>(&'a VariantBilling);

impl fmt::Display for PricedAs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            VariantBilling::Instance { instance_type, .. } => f.write_str(instance_type),
            billing @ VariantBilling::Serverless { .. } => Fleet(billing).fmt(f),
        }
    }
}

/// Why an endpoint's profile could not be discovered.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The endpoint does not exist.
    #[error("endpoint `{endpoint}` not found: {message}")]
    NotFound {
        /// Endpoint name.
        endpoint: String,
        /// What the service said.
        message: String,
    },
    /// The credentials lack `sagemaker:DescribeEndpoint` / `DescribeEndpointConfig`.
    #[error(
        "not allowed to describe endpoint `{endpoint}` ({message}): grant \
         sagemaker:DescribeEndpoint and sagemaker:DescribeEndpointConfig, or set the profile \
         with ClientBuilder::endpoint_profile"
    )]
    AccessDenied {
        /// Endpoint name.
        endpoint: String,
        /// What the service said.
        message: String,
    },
    /// The description could not be read or used.
    #[error("could not discover endpoint `{endpoint}`: {message}")]
    Failed {
        /// Endpoint name.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
}

/// How long a profile with a deployment under way is used before it is
/// refreshed (at most; `refresh_after` when shorter): SageMaker does not say
/// which fleet served a call while traffic shifts, so calls are priced at the
/// old fleet's instances until a refresh sees the new one take over.
const DEPLOYMENT_REFRESH: Duration = Duration::from_secs(10);

/// How old such a profile must be for the refresh loop, whose ticks are
/// [`DEPLOYMENT_REFRESH`] apart, to describe it again: half a tick short, so that
/// one stamped when its last describe landed is due at the next tick.
const URGENT_REFRESH_SLACKED: Duration = Duration::from_secs(5);

/// Refreshes the refresh loop has under way at once (each a `DescribeEndpoint`
/// and a `DescribeEndpointConfig`, more for inference components): a process
/// that has called thousands of endpoints describes them a few at a time, not in
/// a burst of thousands of requests at each tick, against control-plane limits
/// the account's other tools share. A call's own refresh is not held back by it.
const LOOP_REFRESHES_AT_ONCE: usize = 8;

/// How long the answer for an endpoint never found (its `DescribeEndpoint`
/// failure) is kept once no call asks for it: the refresh loop forgets it then,
/// with its lock, so that names that do not exist (typos, names from requests)
/// do not each stay for the life of the process. Asked again, it is described
/// again.
const FORGET_FAILED_AFTER: Duration = Duration::from_secs(5 * 60);

/// How long after an endpoint was found deleted the refresh loop still looks at
/// it, once per interval, while no call asks for it: long enough to see one
/// deleted and created again (a blue/green by hand, a redeploy), not for the
/// life of the process (a service that calls an endpoint per branch or per test
/// run, each deleted for good, would describe every one of them at each
/// interval). A call asks again whenever it comes.
const DELETED_LOOKED_AT_FOR: Duration = Duration::from_secs(24 * 3600);

/// `at` in milliseconds since the Unix epoch (0 before it), for [`Slot::asked`].
fn epoch_millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Slot {
    profile: Option<(Arc<EndpointProfile>, SystemTime)>,
    error: Option<(DiscoveryError, SystemTime)>,
    refreshing: bool,
    /// When refreshing the profile last failed (the profile is kept meanwhile):
    /// the next refresh waits `retry_failed_after`, not one per call.
    refresh_failed: Option<SystemTime>,
    /// Since when refreshing the profile has failed, every try since, and why
    /// it failed last (the error's text, which carries no identity or signed
    /// request: see [`redact_identity`]). Cleared when a refresh lands a profile
    /// (or finds the endpoint deleted): receipts priced on the kept profile say
    /// so meanwhile ([`Discovery::refresh_failing_note`]).
    failing: Option<(SystemTime, String)>,
    /// A refresh in the background was dropped before it landed (with a runtime
    /// made for one call): the next call past the pause discovers on its way.
    refresh_dropped: bool,
    /// A call showed the profile stale before it was due a refresh
    /// ([`Discovery::refresh_soon`]): the refresh loop describes it as it does an
    /// endpoint with a deployment under way, at its next tick, not at the next
    /// quiet round. Cleared when a profile is stored.
    stale_seen: bool,
    /// Found not to exist (deleted, or not created yet) by its last answer other
    /// than a failure: the next profile found is a change the hook hears of (its
    /// instances stand from then on), however many retries failed between (a
    /// throttled one keeps no `NotFound` in `error`).
    not_found: bool,
    /// When it was first found not to exist since it last had a profile (kept
    /// through failed retries): the refresh loop looks at it again for
    /// [`DELETED_LOOKED_AT_FOR`] from then.
    gone_since: Option<SystemTime>,
    /// Whether a profile was ever found for it (a slot that never had one is
    /// forgotten once not asked for in [`FORGET_FAILED_AFTER`]).
    found: bool,
    /// When a call last asked for it while it had no profile ([`epoch_millis`],
    /// on the discovery's clock).
    asked: std::sync::atomic::AtomicU64,
    /// The generation of its answer: the profile stored, or the endpoint found
    /// not to exist (see [`Discovery::current_generation`]). 0 before either.
    generation: u64,
}

/// Discovers and caches [`EndpointProfile`]s.
#[derive(Clone)]
pub(crate) struct Discovery {
    inner: Arc<DiscoveryInner>,
}

struct DiscoveryInner {
    client: Option<aws_sdk_sagemaker::Client>,
    overrides: crate::FastMap<String, Arc<EndpointProfile>>,
    slots: RwLock<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    cache: RwLock<crate::FastMap<String, Slot>>,
    refresh_after: Duration,
    retry_failed_after: Duration,
    /// How long each discovery request may take (see [`describe_within`]).
    request_timeout: Duration,
    time: SharedTimeSource,
    background: Arc<crate::background::Background>,
    /// How many slots have [`Slot::failing`] set: none (nearly always), and a
    /// receipt's look for the note takes no lock.
    failing: std::sync::atomic::AtomicUsize,
    /// Told of each endpoint whose refresh found a profile other than the one
    /// cached, once the new one is stored: the meter applies it to the accrual
    /// and sharing clocks then, not at the endpoint's next call.
    on_refreshed: std::sync::OnceLock<RefreshHook>,
    /// Whether the meter's refresh loop runs (see [`Discovery::claim_refresh_loop`]).
    refresh_loop: std::sync::atomic::AtomicBool,
    /// The refresh loop's refreshes under way ([`LOOP_REFRESHES_AT_ONCE`]).
    loop_refreshes: Arc<tokio::sync::Semaphore>,
    /// The last generation given to an answer stored ([`Slot::generation`]):
    /// each profile stored, and each endpoint found deleted, gets the next one.
    generations: std::sync::atomic::AtomicU64,
}

/// The claim of the running refresh loop: given back when dropped.
pub(crate) struct RefreshLoop(std::sync::Weak<DiscoveryInner>);

impl Drop for RefreshLoop {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner
                .refresh_loop
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// What [`Discovery`] runs after a refresh changed an endpoint's profile (see
/// [`Discovery::on_refreshed`]): told the endpoint, and whether the profile is the
/// first found where none was cached (after discovery failed, or after the
/// endpoint was found deleted).
pub(crate) type RefreshHook =
    Box<dyn Fn(String, bool) -> crate::util::BoxFuture<'static, ()> + Send + Sync>;

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field(
                "overrides",
                &self.inner.overrides.keys().collect::<Vec<_>>(),
            )
            .field("refresh_after", &self.inner.refresh_after)
            .finish()
    }
}

impl Discovery {
    /// Discovery through `client`; `overrides` win; profiles older than
    /// `refresh_after` are refreshed in the background; each request fails after
    /// `request_timeout`.
    pub(crate) fn new(
        client: Option<aws_sdk_sagemaker::Client>,
        overrides: HashMap<String, Arc<EndpointProfile>>,
        refresh_after: Duration,
        request_timeout: Duration,
        time: SharedTimeSource,
        background: Arc<crate::background::Background>,
    ) -> Self {
        Discovery {
            inner: Arc::new(DiscoveryInner {
                client,
                overrides: overrides.into_iter().collect(),
                slots: RwLock::default(),
                cache: RwLock::default(),
                refresh_after,
                retry_failed_after: refresh_after.min(Duration::from_secs(30)),
                failing: std::sync::atomic::AtomicUsize::new(0),
                request_timeout,
                time,
                background,
                on_refreshed: std::sync::OnceLock::new(),
                refresh_loop: std::sync::atomic::AtomicBool::new(false),
                loop_refreshes: Arc::new(tokio::sync::Semaphore::new(LOOP_REFRESHES_AT_ONCE)),
                generations: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Runs `hook` after each refresh that changed an endpoint's profile (or found the
    /// endpoint deleted), before the refresh counts as done (set once; later calls are
    /// ignored).
    pub(crate) fn on_refreshed(&self, hook: RefreshHook) {
        let _ = self.inner.on_refreshed.set(hook);
    }

    /// How often the meter's refresh loop runs [`refresh_stale`](Self::refresh_stale):
    /// every `refresh_after`, or every [`DEPLOYMENT_REFRESH`] when that is shorter,
    /// so that an endpoint with a deployment under way is looked at every few
    /// seconds even while no call comes.
    pub(crate) fn refresh_tick(&self) -> Duration {
        self.inner.refresh_after.min(DEPLOYMENT_REFRESH)
    }

    /// Starts a background refresh of `endpoint`'s discovered profile (a call
    /// showed it stale) once it is [`refresh_tick`](Self::refresh_tick) old (10 s,
    /// or `refresh_after` when shorter), however recent `refresh_after` would have
    /// it; one at a time, failures backed off as usual. Not at once: while
    /// DescribeEndpoint lags what served the calls (a scale-out, a component's
    /// copies, a new variant), every call would describe the endpoint again as soon
    /// as the last refresh landed, against control-plane limits the account's
    /// other tools share. A profile not due yet is marked: the refresh loop
    /// describes it at its next tick once due, whether another call comes or not.
    pub(crate) fn refresh_soon(&self, endpoint: &str, now: SystemTime) {
        if self.inner.overrides.contains_key(endpoint) {
            return;
        }
        if let Some(slot) = self
            .inner
            .cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(endpoint)
        {
            slot.stale_seen = true;
        }
        self.cached_refreshing_after(endpoint, now, self.refresh_tick(), |_| ());
    }

    /// Claims the running of the refresh loop (see
    /// [`refresh_stale`](Self::refresh_stale)): `None` when it runs already, or
    /// there is nothing to discover. The loop holds the claim while it runs;
    /// dropped (the loop ended, or its runtime went away), the next call starts
    /// one again.
    pub(crate) fn claim_refresh_loop(&self) -> Option<RefreshLoop> {
        let running = &self.inner.refresh_loop;
        if self.inner.client.is_none()
            || running.load(std::sync::atomic::Ordering::Relaxed)
            || running.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return None;
        }
        Some(RefreshLoop(Arc::downgrade(&self.inner)))
    }

    /// Starts a background refresh of every discovered profile older than
    /// [`refresh_after`](Self::refresh_after) at `now` (one at a time per endpoint,
    /// failures backed off as on the call path): autoscaling reaches the accrual
    /// while no call comes. Overrides are never refreshed.
    ///
    /// Run every [`refresh_tick`](Self::refresh_tick): a profile younger than
    /// `refresh_after` less one tick (at least half of `refresh_after`; a call may
    /// have refreshed it) is left alone, any older one is refreshed, so that no
    /// profile gets older than `refresh_after` plus one request and a quiet one
    /// is described about once per `refresh_after`. One with a deployment under
    /// way is refreshed at every tick. An endpoint found deleted is looked at
    /// again as a quiet profile is (once its last look is as old), so that one
    /// created again while no call comes is found, and its instances accrue
    /// from then; one never found is not (it is forgotten, below).
    ///
    /// At most [`LOOP_REFRESHES_AT_ONCE`] of them are under way at once: the
    /// future returned starts them in turn, each once one before it has landed,
    /// and is done when the last has started (the loop awaits it before its next
    /// tick). Each is looked at when its turn comes, on the discovery's clock: one
    /// a call refreshed meanwhile is left alone; and none is started once
    /// `keep_going` says no (the meter was dropped, or is shutting down).
    ///
    /// First it forgets each endpoint never found (no profile was ever described
    /// for it) that no call asked for in [`FORGET_FAILED_AFTER`], and its lock
    /// when no one holds it.
    pub(crate) fn refresh_stale(
        &self,
        keep_going: impl Fn() -> bool + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let left_alone = self
            .inner
            .refresh_after
            .saturating_sub(self.refresh_tick())
            .max(self.inner.refresh_after / 2);
        let now = self.inner.time.now();
        self.forget_unfound(now);
        // Found deleted, its last look at least `left_alone` ago (a step back of
        // the clock: due): it is looked at again, as a quiet profile is, so that
        // one created again while no call comes is found (the hook applies it).
        let looked_at_before = |at: SystemTime| match now.duration_since(at) {
            Ok(age) => age >= left_alone,
            Err(ahead) => ahead.duration() > crate::totals::CLOCK_STEPPED_BACK,
        };
        // (A clock stepped back to before it was found deleted: still watched.)
        let watched = |since: SystemTime| {
            now.duration_since(since)
                .map_or(true, |gone| gone < DELETED_LOOKED_AT_FOR)
        };
        let deleted_due = |slot: &Slot| {
            slot.found
                && slot.not_found
                && slot.profile.is_none()
                && slot.gone_since.is_some_and(watched)
                && slot
                    .error
                    .as_ref()
                    .is_some_and(|(_, at)| looked_at_before(*at))
        };
        let endpoints: Vec<String> = {
            let cache = self.inner.cache.read().unwrap_or_else(|e| e.into_inner());
            cache
                .iter()
                .filter(|(endpoint, slot)| {
                    (slot.profile.is_some() || deleted_due(slot))
                        && !self.inner.overrides.contains_key(*endpoint)
                })
                .map(|(endpoint, _)| endpoint.clone())
                .collect()
        };
        let discovery = self.clone();
        async move {
            for endpoint in endpoints {
                let Ok(turn) = discovery.inner.loop_refreshes.clone().acquire_owned().await else {
                    return;
                };
                if !keep_going() {
                    return;
                }
                let now = discovery.inner.time.now();
                // A deployment's (or a profile a call showed stale) is due a
                // tick's slack early: stamped when its describe landed, it would
                // be just short of due at the next tick, and wait for the one
                // after.
                let (_, refresh) = discovery.cached_and_due(
                    &endpoint,
                    now,
                    left_alone,
                    URGENT_REFRESH_SLACKED,
                    |_| (),
                );
                if let Some(mut refresh) = refresh {
                    refresh.turn = Some(turn);
                    // Refused (no runtime, or shut down), it is dropped unrun and
                    // gives its turn back.
                    discovery.inner.background.spawn(refresh.run());
                }
            }
        }
    }

    /// Forgets each endpoint never found and not asked for in
    /// [`FORGET_FAILED_AFTER`] before `now`, and its lock unless someone holds it.
    fn forget_unfound(&self, now: SystemTime) {
        let cutoff = epoch_millis(now)
            .saturating_sub(u64::try_from(FORGET_FAILED_AFTER.as_millis()).unwrap_or(u64::MAX));
        let mut forgotten = Vec::new();
        {
            let mut cache = self.inner.cache.write().unwrap_or_else(|e| e.into_inner());
            cache.retain(|endpoint, slot| {
                let keep = slot.found
                    || slot.profile.is_some()
                    || slot.refreshing
                    || slot.asked.load(std::sync::atomic::Ordering::Relaxed) > cutoff;
                if !keep {
                    forgotten.push(endpoint.clone());
                }
                keep
            });
        }
        if forgotten.is_empty() {
            return;
        }
        let mut slots = self.inner.slots.write().unwrap_or_else(|e| e.into_inner());
        for endpoint in forgotten {
            // Held by no one but the map (a caller holding it, or about to lock
            // it, has its own share): the next caller makes a new one.
            if slots
                .get(&endpoint)
                .is_some_and(|lock| Arc::strong_count(lock) == 1)
            {
                slots.remove(&endpoint);
            }
        }
    }

    /// How many endpoints the discovery cache holds (found or not).
    #[cfg(test)]
    pub(crate) fn cached_count(&self) -> usize {
        self.inner
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// How many endpoints have a discovery lock.
    #[cfg(test)]
    pub(crate) fn lock_count(&self) -> usize {
        self.inner
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The profile of `endpoint`: the override, else a cached one (refreshing it in
    /// the background when stale), else discovered now (one request per endpoint
    /// however many callers wait for it).
    pub(crate) async fn profile(
        &self,
        endpoint: &str,
    ) -> Result<Arc<EndpointProfile>, DiscoveryError> {
        if let Some(answer) = self.profile_now(endpoint, self.inner.time.now(), owned) {
            return answer;
        }
        let lock = self.slot_lock(endpoint);
        let _guard = lock.lock().await;
        // Another caller may have filled the cache while this one waited.
        if let Some(answer) = self.cached(endpoint, self.inner.time.now(), owned) {
            return answer;
        }
        self.inner.discover_and_store(endpoint).await
    }

    /// When `endpoint`'s cached profile was last described (on the discovery's
    /// clock): `None` for a profile set by hand, or one not described yet.
    #[cfg(feature = "fleet")]
    pub(crate) fn described_at(&self, endpoint: &str) -> Option<SystemTime> {
        if self.inner.overrides.contains_key(endpoint) {
            return None;
        }
        let cache = self.inner.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.get(endpoint)?.profile.as_ref().map(|(_, at)| *at)
    }

    /// The note a receipt priced on `endpoint`'s discovered profile carries while
    /// refreshing that profile fails (throttled, denied, the control plane
    /// down): when the profile was described, since when its refresh has failed
    /// and why. The profile is kept meanwhile (the best figure there is), but an
    /// endpoint scaled since is priced at the count it had: the receipt says so.
    /// `None` while refreshes land, and for a profile set by hand.
    pub(crate) fn refresh_failing_note(&self, endpoint: &str) -> Option<String> {
        // Nearly always none fails: no lock taken then.
        if self
            .inner
            .failing
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
            || self.inner.overrides.contains_key(endpoint)
        {
            return None;
        }
        let cache = self.inner.cache.read().unwrap_or_else(|e| e.into_inner());
        let slot = cache.get(endpoint)?;
        let ((_, described), (since, reason)) = slot.profile.as_ref().zip(slot.failing.as_ref())?;
        let at = |t: SystemTime| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        Some(format!(
            "endpoint profile described at {}; refreshing it has failed since {} ({reason}): \
             priced on that profile, which may not show the instances running now",
            at(*described),
            at(*since)
        ))
    }

    /// The generation of `profile` when it is `endpoint`'s current answer: the
    /// override (generation 0: it never changes), or the profile cached now
    /// (the same, or an equal one described again). `None` for one a caller
    /// took before a refresh stored another, and when none is cached (the
    /// endpoint was found deleted since).
    ///
    /// Generations only grow, per endpoint: each profile stored, and each
    /// deletion found, gets a higher one than any before; the meter applies no
    /// answer after one of a higher generation (see `Meter::set_capacity`).
    pub(crate) fn current_generation(
        &self,
        endpoint: &str,
        profile: &Arc<EndpointProfile>,
    ) -> Option<u64> {
        let same = |current: &Arc<EndpointProfile>| {
            Arc::ptr_eq(current, profile) || **current == **profile
        };
        if let Some(current) = self.inner.overrides.get(endpoint) {
            return same(current).then_some(0);
        }
        let cache = self.inner.cache.read().unwrap_or_else(|e| e.into_inner());
        let slot = cache.get(endpoint)?;
        let (current, _) = slot.profile.as_ref()?;
        same(current).then_some(slot.generation)
    }

    /// The generation of `endpoint`'s current answer when that is that the
    /// endpoint does not exist (found deleted, and no profile found since): see
    /// [`current_generation`](Self::current_generation). `None` for an
    /// override, or while a profile is cached.
    pub(crate) fn deleted_generation(&self, endpoint: &str) -> Option<u64> {
        if self.inner.overrides.contains_key(endpoint) {
            return None;
        }
        let cache = self.inner.cache.read().unwrap_or_else(|e| e.into_inner());
        let slot = cache.get(endpoint)?;
        (slot.profile.is_none() && slot.not_found).then_some(slot.generation)
    }

    /// The answer [`profile`](Self::profile) gives without waiting at `now` (on the
    /// discovery's clock), handed to `f` by reference: the override or a usable
    /// cached answer; `None` when the endpoint must be described first. A caller
    /// that only compares the profile with one it holds takes no share of it; one
    /// that keeps it passes [`owned`].
    pub(crate) fn profile_now<R>(
        &self,
        endpoint: &str,
        now: SystemTime,
        f: impl FnOnce(Result<&Arc<EndpointProfile>, &DiscoveryError>) -> R,
    ) -> Option<R> {
        if let Some(p) = self.inner.overrides.get(endpoint) {
            return Some(f(Ok(p)));
        }
        self.cached(endpoint, now, f)
    }

    /// Cached answer, if usable, handed to `f`. Spawns a background refresh for a
    /// stale profile.
    fn cached<R>(
        &self,
        endpoint: &str,
        now: SystemTime,
        f: impl FnOnce(Result<&Arc<EndpointProfile>, &DiscoveryError>) -> R,
    ) -> Option<R> {
        self.cached_refreshing_after(endpoint, now, self.inner.refresh_after, f)
    }

    /// [`cached`](Self::cached), refreshing a profile older than `stale_after`.
    fn cached_refreshing_after<R>(
        &self,
        endpoint: &str,
        now: SystemTime,
        stale_after: Duration,
        f: impl FnOnce(Result<&Arc<EndpointProfile>, &DiscoveryError>) -> R,
    ) -> Option<R> {
        let (answer, refresh) =
            self.cached_and_due(endpoint, now, stale_after, DEPLOYMENT_REFRESH, f);
        if let Some(refresh) = refresh {
            // Refused (no runtime, or shut down), the refresh is dropped unrun and
            // its guard clears the mark.
            self.inner.background.spawn(refresh.run());
        }
        answer
    }

    /// [`cached_refreshing_after`](Self::cached_refreshing_after)'s answer, and the
    /// refresh it is due (its slot marked refreshing), not started yet: a profile
    /// older than `stale_after`, or than `urgent_after` with a deployment under
    /// way or shown stale by a call.
    fn cached_and_due<R>(
        &self,
        endpoint: &str,
        now: SystemTime,
        stale_after: Duration,
        urgent_after: Duration,
        f: impl FnOnce(Result<&Arc<EndpointProfile>, &DiscoveryError>) -> R,
    ) -> (Option<R>, Option<Refresh>) {
        // A time after `now` is a reading taken before the answer landed (no age),
        // or, more than a second after it, the wall clock stepped back since: then
        // the answer is due, or it would be kept for as long as the step.
        let age = |at: SystemTime| match now.duration_since(at) {
            Ok(age) => age,
            Err(ahead) if ahead.duration() > crate::totals::CLOCK_STEPPED_BACK => Duration::MAX,
            Err(_) => Duration::ZERO,
        };
        let mut spawn_refresh = false;
        let answer = {
            let cache = self.inner.cache.read().unwrap_or_else(|e| e.into_inner());
            let Some(slot) = cache.get(endpoint) else {
                return (None, None);
            };
            // An endpoint never found is kept while it is asked for.
            if slot.profile.is_none() {
                slot.asked
                    .fetch_max(epoch_millis(now), std::sync::atomic::Ordering::Relaxed);
            }
            match (&slot.profile, &slot.error) {
                (_, Some((err, at))) if age(*at) < self.inner.retry_failed_after => {
                    Some(f(Err(err)))
                }
                (Some((profile, at)), _) => {
                    // While a deployment is under way its switch-over is looked
                    // for every few seconds, not every `refresh_after`; as are an
                    // endpoint's creation and a profile a call showed stale.
                    let stale_after = if profile.pending_variants.is_empty()
                        && !profile.being_created
                        && !slot.stale_seen
                    {
                        stale_after
                    } else {
                        stale_after.min(urgent_after)
                    };
                    if age(*at) >= stale_after
                        && !slot.refreshing
                        && slot
                            .refresh_failed
                            .is_none_or(|failed| age(failed) >= self.inner.retry_failed_after)
                    {
                        spawn_refresh = true;
                    }
                    Some(f(Ok(profile)))
                }
                // Failed, and due a retry: the retry runs in the background and
                // the calls meanwhile get the failure at once, as before it was
                // due; none waits for the control plane again. Unless a retry in
                // the background was dropped before it landed (with a runtime made
                // for one call): then a call tries on its way.
                (None, Some((err, _))) if !slot.refresh_dropped => {
                    spawn_refresh = !slot.refreshing;
                    Some(f(Err(err)))
                }
                _ => None,
            }
        };
        let refresh = (spawn_refresh && self.mark_refreshing(endpoint)).then(|| Refresh {
            inner: self.inner.clone(),
            endpoint: endpoint.to_owned(),
            landed: false,
            turn: None,
        });
        (answer, refresh)
    }

    fn mark_refreshing(&self, endpoint: &str) -> bool {
        let mut cache = self.inner.cache.write().unwrap_or_else(|e| e.into_inner());
        match cache.get_mut(endpoint) {
            Some(slot) if !slot.refreshing => {
                slot.refreshing = true;
                true
            }
            _ => false,
        }
    }

    fn slot_lock(&self, endpoint: &str) -> Arc<tokio::sync::Mutex<()>> {
        if let Some(l) = self
            .inner
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(endpoint)
        {
            return l.clone();
        }
        self.inner
            .slots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint.to_owned())
            .or_default()
            .clone()
    }
}

/// A background refresh of one endpoint's profile, its slot marked `refreshing`
/// while it runs (one at a time). Dropped before it lands (the runtime it ran on
/// went away, or it was never spawned), it clears the mark: the next stale call
/// or tick starts another, and the profile goes on being refreshed.
struct Refresh {
    inner: Arc<DiscoveryInner>,
    endpoint: String,
    landed: bool,
    /// Its turn among the refresh loop's (see [`Discovery::refresh_stale`]),
    /// given back when it lands or is dropped.
    turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Refresh {
    async fn run(mut self) {
        // Landing clears the mark.
        let _ = self.inner.discover_and_store(&self.endpoint).await;
        self.landed = true;
    }
}

impl Drop for Refresh {
    fn drop(&mut self) {
        if self.landed {
            return;
        }
        let mut cache = self.inner.cache.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = cache.get_mut(&self.endpoint) {
            slot.refreshing = false;
            slot.refresh_dropped = true;
        }
    }
}

impl DiscoveryInner {
    /// The generation of an answer stored now (under the cache's write lock):
    /// higher than any given before.
    fn next_generation(&self) -> u64 {
        self.generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    async fn discover_and_store(
        &self,
        endpoint: &str,
    ) -> Result<Arc<EndpointProfile>, DiscoveryError> {
        let result = match &self.client {
            Some(client) => describe_within(client, endpoint, Some(self.request_timeout))
                .await
                .map(Arc::new),
            None => Err(DiscoveryError::Failed {
                endpoint: endpoint.to_owned(),
                message: "endpoint discovery is disabled and no profile was set for it".into(),
            }),
        };
        let now = self.time.now();
        let mut changed = false;
        let mut first_found = false;
        let answer = {
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            let slot = cache.entry(endpoint.to_owned()).or_insert(Slot {
                profile: None,
                error: None,
                refreshing: false,
                refresh_failed: None,
                failing: None,
                refresh_dropped: false,
                stale_seen: false,
                not_found: false,
                gone_since: None,
                found: false,
                asked: std::sync::atomic::AtomicU64::new(0),
                generation: 0,
            });
            slot.refreshing = false;
            slot.found |= result.is_ok();
            // Described for a call (or a call's retry): asked for now.
            slot.asked
                .fetch_max(epoch_millis(now), std::sync::atomic::Ordering::Relaxed);
            slot.refresh_failed = None;
            slot.refresh_dropped = false;
            let was_failing = slot.failing.take();
            let answer = match &result {
                Ok(profile) => {
                    // Changed: another profile, or one of an endpoint found deleted
                    // before (created again: its instances stand from now on), or
                    // the first found after discovery failed (throttled, timed
                    // out, denied): the calls meanwhile got the failure, and its
                    // instances stand from now on, not from the next call. (On a
                    // call's own discovery the hook applies what the call applies
                    // again: the same generation, the same rates, no change.)
                    first_found =
                        slot.profile.is_none() && (slot.not_found || slot.error.is_some());
                    changed = match &slot.profile {
                        Some((old, _)) => **old != **profile,
                        None => first_found,
                    };
                    slot.not_found = false;
                    slot.gone_since = None;
                    // Said once a deployment, not at every refresh of it.
                    if let Some(reason) = &profile.pending_storage_unknown
                        && slot
                            .profile
                            .as_ref()
                            .is_none_or(|(old, _)| old.pending_storage_unknown.is_none())
                    {
                        tracing::warn!(target: "sagemeter::endpoint", endpoint, reason,
                            "a deployment's new fleet is accrued without its ML storage");
                    }
                    slot.profile = Some((profile.clone(), now));
                    slot.generation = self.next_generation();
                    slot.error = None;
                    slot.stale_seen = false;
                    result
                }
                Err(err @ DiscoveryError::NotFound { .. }) => {
                    // A deleted endpoint has no profile any more: a change the
                    // hook hears of (its instances are gone).
                    changed = slot.profile.is_some();
                    slot.profile = None;
                    if !slot.not_found || slot.gone_since.is_none() {
                        slot.gone_since = Some(now);
                    }
                    slot.not_found = true;
                    slot.generation = self.next_generation();
                    slot.error = Some((err.clone(), now));
                    result
                }
                Err(err) => {
                    tracing::warn!(target: "sagemeter::endpoint", endpoint, error = %err,
                        "endpoint discovery failed");
                    // Keep the last good profile: a failed refresh does not unprice calls.
                    match &slot.profile {
                        None => {
                            slot.error = Some((err.clone(), now));
                            result
                        }
                        Some((p, _)) => {
                            slot.refresh_failed = Some(now);
                            let since = was_failing.as_ref().map_or(now, |(since, _)| *since);
                            slot.failing = Some((since, err.to_string()));
                            Ok(p.clone())
                        }
                    }
                }
            };
            match (was_failing.is_some(), slot.failing.is_some()) {
                (false, true) => {
                    self.failing
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                (true, false) => {
                    self.failing
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
                _ => {}
            }
            answer
        };
        if changed && let Some(hook) = self.on_refreshed.get() {
            hook(endpoint.to_owned(), first_found).await;
        }
        answer
    }
}

/// `DescribeEndpoint` then `DescribeEndpointConfig`, merged into a profile.
#[cfg(any(feature = "account", test))]
pub(crate) async fn describe(
    client: &aws_sdk_sagemaker::Client,
    endpoint: &str,
) -> Result<EndpointProfile, DiscoveryError> {
    describe_within(client, endpoint, None).await
}

/// [`describe`], failing once `limit` has passed since it began (all its requests
/// together, retries included): a first call to an endpoint waits for its
/// profile, and a control plane that does not answer (and an SDK client without
/// timeouts) must not hold the call's answer for ever.
pub(crate) async fn describe_within(
    client: &aws_sdk_sagemaker::Client,
    endpoint: &str,
    limit: Option<Duration>,
) -> Result<EndpointProfile, DiscoveryError> {
    let limit = limit.and_then(Limit::new);
    let described = within(
        limit,
        endpoint,
        "DescribeEndpoint",
        client.describe_endpoint().endpoint_name(endpoint).send(),
    )
    .await?
    .map_err(|e| classify(endpoint, e))?;
    let config_name = described
        .endpoint_config_name()
        .ok_or_else(|| DiscoveryError::Failed {
            endpoint: endpoint.to_owned(),
            message: "DescribeEndpoint returned no EndpointConfigName".into(),
        })?;
    // A deployment under way names the new fleet's config: the only place its
    // volume size is given. Both configs are described at once, within the limit.
    let pending_config_name = described
        .pending_deployment_summary()
        .and_then(|pending| pending.endpoint_config_name())
        .filter(|name| !name.is_empty());
    let describe_config = |name: &str| {
        within(
            limit,
            endpoint,
            "DescribeEndpointConfig",
            client
                .describe_endpoint_config()
                .endpoint_config_name(name)
                .send(),
        )
    };
    let (config, pending_config) = tokio::join!(describe_config(config_name), async {
        match pending_config_name {
            Some(name) => Some(describe_config(name).await),
            None => None,
        }
    });
    let config = config?.map_err(|e| match classify(endpoint, e) {
        // DescribeEndpoint found the endpoint: its config was deleted while the
        // endpoint is live, which AWS allows. The endpoint still runs, and bills:
        // not a deleted endpoint (whose profile goes, and whose calls fail as unknown).
        DiscoveryError::NotFound { endpoint, message } => DiscoveryError::Failed {
            message: format!(
                "its endpoint config `{config_name}` was deleted while the endpoint is live \
                 (it still runs and bills), so how it is deployed is not known ({message}): \
                 set the profile with ClientBuilder::endpoint_profile"
            ),
            endpoint,
        },
        other => other,
    })?;
    // The new fleet's config failing costs its storage, not the profile: its
    // instances are known from the summary and are billed all the same.
    let (pending_config, pending_storage_unknown) = match (pending_config_name, pending_config) {
        (Some(name), Some(answer)) => {
            match answer.and_then(|a| a.map_err(|e| classify(endpoint, e))) {
                Ok(config) => (Some(config), None),
                Err(err) => (
                    None,
                    Some(format!(
                        "the deployment's endpoint config `{name}` could not be described, so \
                     its volume size is unknown ({err})"
                    )),
                ),
            }
        }
        _ => (None, None),
    };
    let mut profile =
        profile_from_descriptions(endpoint, &described, &config, pending_config.as_ref())?;
    if profile
        .pending_variants
        .iter()
        .any(|v| matches!(v.billing, VariantBilling::Instance { .. }))
    {
        profile.pending_storage_unknown = pending_storage_unknown;
    }
    // Variants without a model host inference components: the models come with them.
    let hosts_components = config
        .production_variants()
        .iter()
        .any(|v| v.model_name().is_none() && v.instance_type().is_some());
    if hosts_components {
        profile.components = components::describe_components(client, endpoint, limit).await?;
    }
    Ok(profile)
}

/// The time limit of one discovery: its length, and when it ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    length: Duration,
    deadline: tokio::time::Instant,
}

impl Limit {
    /// A limit of `length` from now; `None` when the clock cannot hold its end (no
    /// limit, as for a limit too long to reach).
    fn new(length: Duration) -> Option<Self> {
        let deadline = tokio::time::Instant::now().checked_add(length)?;
        Some(Limit { length, deadline })
    }
}

/// The answer to one discovery request, or a failure when the discovery's time
/// limit passes first (no limit: `None`).
pub(crate) async fn within<T>(
    limit: Option<Limit>,
    endpoint: &str,
    operation: &str,
    request: impl std::future::Future<Output = T>,
) -> Result<T, DiscoveryError> {
    let Some(limit) = limit else {
        return Ok(request.await);
    };
    tokio::time::timeout_at(limit.deadline, request)
        .await
        .map_err(|_| DiscoveryError::Failed {
            endpoint: endpoint.to_owned(),
            message: format!(
                "{operation} did not answer within the discovery's time limit ({:?} for all \
                 its requests)",
                limit.length
            ),
        })
}

/// Merges the descriptions. Counts and serverless settings come from the
/// endpoint (current state); instance types and volume sizes from the config;
/// those of a deployment's new fleet from `pending_config`, its endpoint config,
/// when it could be described (else the fleet's volume size is unknown).
///
/// What stands follows the endpoint's status (see [`Standing`]): nothing while
/// it is `Creating` (its fleet being created, which DescribeEndpoint gives as a
/// pending deployment too, included); only what DescribeEndpoint says runs
/// while `Failed`, `OutOfService` or `Deleting`.
pub(crate) fn profile_from_descriptions(
    endpoint: &str,
    described: &aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput,
    config: &aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput,
    pending_config: Option<
        &aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput,
    >,
) -> Result<EndpointProfile, DiscoveryError> {
    let failed = |message: String| DiscoveryError::Failed {
        endpoint: endpoint.to_owned(),
        message,
    };
    use aws_sdk_sagemaker::types::EndpointStatus;
    let standing = match described.endpoint_status() {
        Some(EndpointStatus::Creating) => Standing::Nothing,
        Some(EndpointStatus::Failed | EndpointStatus::OutOfService | EndpointStatus::Deleting) => {
            Standing::Current
        }
        _ => Standing::CurrentOrConfigured,
    };
    let variants = config
        .production_variants()
        .iter()
        .map(|configured| {
            variant_profile(
                configured,
                described.production_variants(),
                standing,
                &failed,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shadow_variants = config
        .shadow_production_variants()
        .iter()
        .map(|configured| {
            variant_profile(
                configured,
                described.shadow_production_variants(),
                standing,
                &failed,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    if variants.is_empty() {
        return Err(failed(
            "the endpoint config has no production variants".into(),
        ));
    }
    // While the endpoint is created, its pending deployment is the fleet being
    // created, not one beside it.
    let pending = described
        .pending_deployment_summary()
        .filter(|_| standing != Standing::Nothing);
    let pending_variants = pending
        .map(|pending| {
            let production = pending_config
                .map(|c| c.production_variants())
                .unwrap_or_default();
            let shadow = pending_config
                .map(|c| c.shadow_production_variants())
                .unwrap_or_default();
            pending
                .production_variants()
                .iter()
                .filter_map(|v| pending_variant_profile(v, production))
                .chain(
                    pending
                        .shadow_production_variants()
                        .iter()
                        .filter_map(|v| pending_variant_profile(v, shadow)),
                )
                .collect()
        })
        .unwrap_or_default();
    Ok(EndpointProfile {
        endpoint: endpoint.to_owned(),
        kind: if config.async_inference_config().is_some() {
            EndpointKind::Async
        } else {
            EndpointKind::RealTime
        },
        variants,
        shadow_variants,
        pending_variants,
        pending_storage_unknown: None,
        pending_since: pending
            .and_then(|p| p.start_time())
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        config_created: config
            .creation_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        components: Vec::new(),
        source: ProfileSource::Discovered,
        being_created: standing == Standing::Nothing,
    })
}

/// One variant of a deployment under way, as billed now: its instances up so far
/// (`CurrentInstanceCount`; none yet: nothing billed), or its serverless config,
/// with the volume size of the same-named variant of its endpoint config
/// (`configured`: empty when that config could not be described).
/// `None` for a variant the summary gives neither for (nothing of it runs yet).
fn pending_variant_profile(
    pending: &aws_sdk_sagemaker::types::PendingProductionVariantSummary,
    configured: &[aws_sdk_sagemaker::types::ProductionVariant],
) -> Option<VariantProfile> {
    let name = pending.variant_name().unwrap_or_default();
    let configured = configured.iter().find(|c| c.variant_name() == Some(name));
    let billing = if let Some(s) = pending.current_serverless_config() {
        VariantBilling::Serverless {
            memory_mb: s.memory_size_in_mb().and_then(|m| u32::try_from(m).ok())?,
            provisioned_concurrency: s
                .provisioned_concurrency()
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0),
        }
    } else {
        VariantBilling::Instance {
            instance_type: pending
                .instance_type()
                .or_else(|| configured?.instance_type())?
                .as_str()
                .to_owned(),
            instance_count: pending
                .current_instance_count()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
        }
    };
    Some(VariantProfile {
        name: name.to_owned(),
        billing,
        weight: pending.current_weight(),
        volume_size_gb: configured
            .and_then(|c| c.volume_size_in_gb())
            .and_then(|gb| u32::try_from(gb).ok()),
        model_data_download_timeout_s: configured
            .and_then(|c| c.model_data_download_timeout_in_seconds())
            .and_then(|s| u32::try_from(s).ok()),
        container_startup_timeout_s: configured
            .and_then(|c| c.container_startup_health_check_timeout_in_seconds())
            .and_then(|s| u32::try_from(s).ok()),
    })
}

/// What of an endpoint's variants stands (is billed), by the endpoint's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// `Creating`: nothing until it is in service, whatever DescribeEndpoint
    /// says of instances being brought up.
    Nothing,
    /// `Failed`, `OutOfService`, `Deleting`: what DescribeEndpoint says runs
    /// (`CurrentInstanceCount`, `CurrentServerlessConfig`'s provisioned
    /// concurrency), nothing without it (a creation that failed ran nothing).
    Current,
    /// Any other status (`InService`, `Updating`, …): what DescribeEndpoint says
    /// runs, else the endpoint config's.
    CurrentOrConfigured,
}

/// One configured variant, with its current state (`current`: the endpoint's
/// description of the variants of its kind) where the endpoint has one, at
/// what `standing` lets stand.
fn variant_profile(
    configured: &aws_sdk_sagemaker::types::ProductionVariant,
    current: &[aws_sdk_sagemaker::types::ProductionVariantSummary],
    standing: Standing,
    failed: &dyn Fn(String) -> DiscoveryError,
) -> Result<VariantProfile, DiscoveryError> {
    let name = configured.variant_name().unwrap_or_default().to_owned();
    let current = current
        .iter()
        .find(|s| s.variant_name() == Some(name.as_str()));
    let running = current.and_then(|c| c.current_serverless_config());
    let serverless = running.or(configured.serverless_config());
    let billing = if let Some(s) = serverless {
        let memory_mb = s
            .memory_size_in_mb()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| failed(format!("variant `{name}` has no serverless memory size")))?;
        let provisioned = match standing {
            Standing::Nothing => None,
            Standing::Current => running,
            Standing::CurrentOrConfigured => Some(s),
        };
        VariantBilling::Serverless {
            memory_mb,
            provisioned_concurrency: provisioned
                .and_then(|s| s.provisioned_concurrency())
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0),
        }
    } else {
        let instance_type = configured
            .instance_type()
            .map(|t| t.as_str().to_owned())
            .ok_or_else(|| {
                failed(format!(
                    "variant `{name}` has neither an instance type nor a serverless config"
                ))
            })?;
        let running = current.and_then(|c| c.current_instance_count());
        let count = match standing {
            Standing::Nothing => 0,
            Standing::Current => running.unwrap_or(0),
            Standing::CurrentOrConfigured => {
                running.or(configured.initial_instance_count()).unwrap_or(1)
            }
        };
        VariantBilling::Instance {
            instance_type,
            instance_count: u32::try_from(count).unwrap_or(0),
        }
    };
    Ok(VariantProfile {
        name,
        billing,
        weight: current
            .and_then(|c| c.current_weight())
            .or(configured.initial_variant_weight()),
        volume_size_gb: configured
            .volume_size_in_gb()
            .and_then(|gb| u32::try_from(gb).ok()),
        model_data_download_timeout_s: configured
            .model_data_download_timeout_in_seconds()
            .and_then(|s| u32::try_from(s).ok()),
        container_startup_timeout_s: configured
            .container_startup_health_check_timeout_in_seconds()
            .and_then(|s| u32::try_from(s).ok()),
    })
}

fn classify<E, R>(endpoint: &str, err: aws_sdk_sagemaker::error::SdkError<E, R>) -> DiscoveryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + 'static,
{
    let code = err.code().unwrap_or_default().to_owned();
    let message = redact_identity(
        &err.message()
            .map(str::to_owned)
            .unwrap_or_else(|| crate::redact::error_chain(&err)),
    );
    let endpoint = endpoint.to_owned();
    if code.contains("AccessDenied") || code == "UnauthorizedOperation" {
        DiscoveryError::AccessDenied { endpoint, message }
    } else if is_not_found(&code, &message) {
        DiscoveryError::NotFound { endpoint, message }
    } else {
        DiscoveryError::Failed { endpoint, message }
    }
}

/// `message`, a failure AWS described, without the caller's identity: the
/// principal of "User: … is not authorized" (`<principal>`), every ARN's account
/// id (`<account>`, IAM and STS ARNs' resource too: roles, sessions, users,
/// policies name people and teams), and any other twelve-digit account id. The
/// action denied (`sagemaker:DescribeEndpoint`) and the service stay, so that
/// the reason still says which permission is missing. Nor anything it quotes of
/// a signed request (the session token: [`crate::redact::without_signed_request`]).
/// Every discovery failure the SDK reports passes through this before it becomes
/// text (receipts, logs, errors).
pub(crate) fn redact_identity(message: &str) -> String {
    const DENIED: &str = " is not authorized";
    let message = crate::redact::without_signed_request(message);
    let mut out = String::with_capacity(message.len());
    let mut rest: &str = &message;
    // The principal: whatever stands between "User: " and " is not authorized"
    // (an ARN, an access key's user id, a federated session).
    while let Some(at) = rest.find("User: ") {
        let start = at + "User: ".len();
        let Some(len) = rest[start..].find(DENIED) else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str("<principal>");
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    redact_accounts(&out)
}

/// [`redact_identity`]'s ARNs and bare account ids.
fn redact_accounts(text: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let ends_arn = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | ')' | ']');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after_word = out.chars().next_back().is_some_and(is_word);
        if !after_word && rest.starts_with("arn:") {
            let len = rest.find(ends_arn).unwrap_or(rest.len());
            // A sentence's full stop is not part of the ARN.
            let len = if rest[..len].ends_with('.') {
                len - 1
            } else {
                len
            };
            out.push_str(&redact_arn(&rest[..len]));
            rest = &rest[len..];
            continue;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !after_word && digits == 12 && !rest[12..].starts_with(is_word) {
            out.push_str("<account>");
            rest = &rest[12..];
            continue;
        }
        // Not at the start of an ARN or account id: copy the word (or character).
        let len = if is_word(c) {
            rest.find(|c: char| !is_word(c)).unwrap_or(rest.len())
        } else {
            c.len_utf8()
        };
        out.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

/// One ARN (`arn:partition:service:region:account:resource`) without its
/// account id, and without its resource when that is an identity (IAM, STS).
fn redact_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, region, account, resource] = parts.as_slice() else {
        return "<arn>".to_owned();
    };
    let account = if account.is_empty() { "" } else { "<account>" };
    let resource = if matches!(*service, "iam" | "sts") {
        "<principal>"
    } else {
        resource
    };
    format!("arn:{partition}:{service}:{region}:{account}:{resource}")
}

/// SageMaker's answer for what does not exist (any more): `ValidationException`
/// "Could not find …" (or "… not found"), or `ResourceNotFound`.
fn is_not_found(code: &str, message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    code == "ValidationException"
        && (lower.contains("could not find") || lower.contains("not found"))
        || code == "ResourceNotFound"
}

/// An answer of discovery, owned: a share of the profile, or a copy of the error.
pub(crate) fn owned(
    answer: Result<&Arc<EndpointProfile>, &DiscoveryError>,
) -> Result<Arc<EndpointProfile>, DiscoveryError> {
    answer.cloned().map_err(DiscoveryError::clone)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
    use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput;
    use aws_sdk_sagemaker::types::{
        EndpointStatus, PendingDeploymentSummary, PendingProductionVariantSummary,
        ProductionVariant, ProductionVariantInstanceType as Type,
        ProductionVariantServerlessConfig, ProductionVariantSummary,
    };
    use aws_smithy_types::error::ErrorMetadata;

    /// `DescribeEndpointConfig` of config `c` with the one `variant`.
    pub(crate) fn config(variant: ProductionVariant) -> DescribeEndpointConfigOutput {
        DescribeEndpointConfigOutput::builder()
            .endpoint_config_name("c")
            .production_variants(variant)
            .build()
    }

    /// Variant `name` of model `m` on `count` × `instance_type` at first.
    pub(crate) fn instances(name: &str, instance_type: Type, count: i32) -> ProductionVariant {
        ProductionVariant::builder()
            .variant_name(name)
            .model_name("m")
            .instance_type(instance_type)
            .initial_instance_count(count)
            .build()
    }

    /// `DescribeEndpoint` of an endpoint on config `c` whose AllTraffic runs
    /// `current` instances, `desired` asked for.
    pub(crate) fn all_traffic(current: i32, desired: i32) -> DescribeEndpointOutput {
        DescribeEndpointOutput::builder()
            .endpoint_config_name("c")
            .production_variants(
                ProductionVariantSummary::builder()
                    .variant_name("AllTraffic")
                    .current_instance_count(current)
                    .desired_instance_count(desired)
                    .build(),
            )
            .build()
    }

    /// Endpoint `e`'s profile from `described` and config `c` of the one
    /// `variant`, its components not asked for.
    fn profile_of(
        described: &DescribeEndpointOutput,
        variant: ProductionVariant,
    ) -> EndpointProfile {
        profile_from_descriptions("e", described, &config(variant), None).unwrap()
    }

    /// What AWS says with an error: its `code` and `message`.
    pub(crate) fn aws_error(code: &str, message: impl Into<String>) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    #[test]
    fn a_variant_scaled_to_zero_has_no_instances_not_its_initial_count() {
        // ManagedInstanceScaling down to 0: DescribeEndpoint says 0 running; the
        // config's InitialInstanceCount (2) is history. AWS bills no instance.
        let described = all_traffic(0, 0);
        let profile = profile_of(&described, instances("AllTraffic", Type::MlG5Xlarge, 2));
        assert_eq!(profile.instance_count(), 0);
    }

    /// AllTraffic's config: serverless, 2,048 MB, at most 5 concurrent calls, 5
    /// of them provisioned.
    fn serverless_2048_provisioned_5() -> ProductionVariant {
        ProductionVariant::builder()
            .variant_name("AllTraffic")
            .model_name("m")
            .serverless_config(
                ProductionVariantServerlessConfig::builder()
                    .memory_size_in_mb(2048)
                    .max_concurrency(5)
                    .provisioned_concurrency(5)
                    .build(),
            )
            .build()
    }

    #[test]
    fn an_update_in_progress_bills_the_running_count_and_the_current_serverless_config() {
        // Scaling 2 → 5: 2 run (and are billed) until the others are in service.
        let described = all_traffic(2, 5);
        let profile = profile_of(&described, instances("AllTraffic", Type::MlG5Xlarge, 1));
        assert_eq!(profile.instance_count(), 2);

        // Serverless, updated from 2 GB / PC 5 to 4 GB / PC 2: what runs is
        // CurrentServerlessConfig, not the config's ServerlessConfig nor the
        // DesiredServerlessConfig.
        let described = DescribeEndpointOutput::builder()
            .endpoint_config_name("c")
            .production_variants(
                ProductionVariantSummary::builder()
                    .variant_name("AllTraffic")
                    .current_serverless_config(
                        ProductionVariantServerlessConfig::builder()
                            .memory_size_in_mb(4096)
                            .max_concurrency(5)
                            .provisioned_concurrency(2)
                            .build(),
                    )
                    .desired_serverless_config(
                        ProductionVariantServerlessConfig::builder()
                            .memory_size_in_mb(6144)
                            .max_concurrency(5)
                            .provisioned_concurrency(4)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let configured = serverless_2048_provisioned_5();
        let profile = profile_of(&described, configured);
        assert_eq!(
            profile.variants[0].billing,
            VariantBilling::Serverless {
                memory_mb: 4096,
                provisioned_concurrency: Some(2)
            }
        );
    }

    #[test]
    fn a_pending_deployments_fleet_is_in_the_profile_and_billed_alongside_its_variant() {
        // Blue/green baking: blue (the endpoint's config) 2 × ml.m5.xlarge; green
        // (PendingDeploymentSummary) 3 × ml.g5.xlarge asked for, 1 up so far, and
        // a shadow of 1 × ml.g5.xlarge not up yet.
        let described = DescribeEndpointOutput::builder()
            .endpoint_config_name("c")
            .production_variants(
                ProductionVariantSummary::builder()
                    .variant_name("AllTraffic")
                    .current_instance_count(2)
                    .build(),
            )
            .pending_deployment_summary(
                PendingDeploymentSummary::builder()
                    .endpoint_config_name("c2")
                    .production_variants(
                        PendingProductionVariantSummary::builder()
                            .variant_name("AllTraffic")
                            .instance_type(Type::MlG5Xlarge)
                            .current_instance_count(1)
                            .desired_instance_count(3)
                            .build(),
                    )
                    .shadow_production_variants(
                        PendingProductionVariantSummary::builder()
                            .variant_name("Challenger")
                            .instance_type(Type::MlG5Xlarge)
                            .desired_instance_count(1)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let profile = profile_of(&described, instances("AllTraffic", Type::MlM5Xlarge, 2));
        assert_eq!(
            profile.pending_variants,
            vec![
                VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 1),
                VariantProfile::instance("Challenger", "ml.g5.xlarge", 0),
            ]
        );
        // Calls are the blue fleet's (the profile's variants); the green fleet
        // and the pending shadow are accrued with its only production variant.
        assert_eq!(profile.instance_count(), 2);
        let alongside: Vec<&str> = profile
            .billed_alongside(&profile.variants[0])
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(alongside, ["AllTraffic", "Challenger"]);
    }

    /// An endpoint being created, as DescribeEndpoint gives it: status
    /// `Creating`, its new fleet in `PendingDeploymentSummary` (config `c`, the
    /// endpoint's own: AWS returns it "when the endpoint is creating or updating
    /// with a new endpoint configuration"), AllTraffic on 1 × ml.g5.xlarge up so
    /// far; with `current`, top-level ProductionVariants too (AWS leaves them
    /// out while creating, but the field is optional either way).
    fn creating(current: Option<i32>) -> DescribeEndpointOutput {
        DescribeEndpointOutput::builder()
            .endpoint_config_name("c")
            .endpoint_status(EndpointStatus::Creating)
            .set_production_variants(current.map(|n| {
                vec![
                    ProductionVariantSummary::builder()
                        .variant_name("AllTraffic")
                        .current_instance_count(n)
                        .build(),
                ]
            }))
            .pending_deployment_summary(
                PendingDeploymentSummary::builder()
                    .endpoint_config_name("c")
                    .production_variants(
                        PendingProductionVariantSummary::builder()
                            .variant_name("AllTraffic")
                            .instance_type(Type::MlG5Xlarge)
                            .current_instance_count(1)
                            .desired_instance_count(1)
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    #[test]
    fn an_endpoint_being_created_stands_at_nothing_not_its_initial_count_nor_its_new_fleet() {
        // Config `c`: AllTraffic, InitialInstanceCount 1 × ml.g5.xlarge, and a
        // shadow of InitialInstanceCount 1. AWS bills an endpoint's instances
        // from when it is InService: while Creating, 0 instances are billed,
        // not the config's 1 (nor 1 + the new fleet's 1 up so far, the same
        // instance counted twice), whether or not ProductionVariants is given.
        let configured = DescribeEndpointConfigOutput::builder()
            .endpoint_config_name("c")
            .production_variants(instances("AllTraffic", Type::MlG5Xlarge, 1))
            .shadow_production_variants(instances("Shadow", Type::MlG5Xlarge, 1))
            .build();
        for current in [None, Some(1)] {
            let described = creating(current);
            let profile = profile_from_descriptions("e", &described, &configured, None).unwrap();
            assert_eq!(profile.instance_count(), 0, "{current:?}");
            assert_eq!(
                profile.shadow_variants,
                vec![VariantProfile::instance("Shadow", "ml.g5.xlarge", 0)],
                "{current:?}"
            );
            assert_eq!(
                profile
                    .billed_alongside(&profile.variants[0])
                    .filter(|v| v.runs())
                    .count(),
                0,
                "{current:?}"
            );
            assert!(profile.pending_variants.is_empty(), "{current:?}");
            assert_eq!(profile.pending_since, None, "{current:?}");
        }

        // Serverless, provisioned concurrency 5 in the config: none stands yet.
        let described = DescribeEndpointOutput::builder()
            .endpoint_config_name("c")
            .endpoint_status(EndpointStatus::Creating)
            .build();
        let serverless = serverless_2048_provisioned_5();
        let profile = profile_of(&described, serverless);
        assert_eq!(
            profile.variants[0].billing,
            VariantBilling::Serverless {
                memory_mb: 2048,
                provisioned_concurrency: None
            }
        );
    }

    #[test]
    fn an_endpoint_failed_or_out_of_service_stands_at_its_current_count_never_its_initial_one() {
        // Config `c`: AllTraffic, InitialInstanceCount 3 × ml.g5.xlarge. A
        // creation that failed gives no CurrentInstanceCount: no instance ran,
        // none is billed (not 3). Failed after serving (an update's failure),
        // out of service or being deleted, DescribeEndpoint says what stands: 2.
        for status in [
            EndpointStatus::Failed,
            EndpointStatus::OutOfService,
            EndpointStatus::Deleting,
        ] {
            let bare = DescribeEndpointOutput::builder()
                .endpoint_config_name("c")
                .endpoint_status(status.clone())
                .build();
            let profile = profile_of(&bare, instances("AllTraffic", Type::MlG5Xlarge, 3));
            assert_eq!(profile.instance_count(), 0, "{status:?}");
            let mut described = all_traffic(2, 2);
            described.endpoint_status = Some(status.clone());
            let profile = profile_of(&described, instances("AllTraffic", Type::MlG5Xlarge, 3));
            assert_eq!(profile.instance_count(), 2, "{status:?}");
        }
        // In service (or updating) without a count, the config's still stands in.
        for status in [EndpointStatus::InService, EndpointStatus::Updating] {
            let bare = DescribeEndpointOutput::builder()
                .endpoint_config_name("c")
                .endpoint_status(status.clone())
                .build();
            let profile = profile_of(&bare, instances("AllTraffic", Type::MlG5Xlarge, 3));
            assert_eq!(profile.instance_count(), 3, "{status:?}");
        }
    }

    #[test]
    fn a_call_sagemaker_says_the_shadow_served_is_not_priced_as_production() {
        let profile = EndpointProfile::new(
            "e",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        )
        .with_shadow_variant(VariantProfile::instance("Shadow", "ml.g5.xlarge", 1));
        assert!(profile.variant_for(Some("Shadow"), None).is_none());
        let (served, _) = profile.variant_for(None, None).unwrap();
        assert_eq!(served.name, "AllTraffic");
        let alongside: Vec<&str> = profile
            .billed_alongside(served)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(alongside, ["Shadow"]);
    }

    /// A failed call (SageMaker names no variant) that targeted `B`, on a profile
    /// of `A` alone (ml.m5.large, $0.115/h; `B` added since, on ml.g5.12xlarge at
    /// $7.09/h): not `A`'s, whose 60 s would price it at 0.115 / 60 =
    /// $0.001917 where `B`'s cost 7.09 / 60 = $0.118167.
    #[test]
    fn a_targeted_variant_the_profile_lacks_is_not_the_only_one() {
        let profile =
            EndpointProfile::new("e", vec![VariantProfile::instance("A", "ml.m5.large", 1)]);
        assert!(profile.variant_for(None, Some("B")).is_none());
        // Targeting the one it has, or nothing, is still `A`.
        let (targeted, note) = profile.variant_for(None, Some("A")).unwrap();
        assert_eq!(targeted.name, "A");
        assert_eq!(note.as_deref(), Some("variant taken from TargetVariant"));
        assert_eq!(profile.variant_for(None, None).unwrap().0.name, "A");
    }

    /// A variant drained to weight 0 takes no call that names no variant:
    /// A (2 instances, weight not known) and B (3, weight 0) route such calls
    /// to A's 2 instances alone, and a failed one (SageMaker names no variant)
    /// is A's, not B's (both weigh 0 to the heaviest-variant choice, where the
    /// last of a tie won). All drained, none is preferred: all 5 count.
    #[test]
    fn a_variant_of_weight_zero_is_not_routed_a_call_that_names_no_variant() {
        let weighted = |name: &str, count: u32, weight: Option<f32>| {
            let mut variant = VariantProfile::instance(name, "ml.m5.xlarge", count);
            variant.weight = weight;
            variant
        };
        let profile = EndpointProfile::new(
            "e",
            vec![weighted("A", 2, None), weighted("B", 3, Some(0.0))],
        );
        assert_eq!(profile.instance_count(), 5);
        assert_eq!(profile.routable_instance_count(), 2);
        assert_eq!(profile.variant_for(None, None).unwrap().0.name, "A");
        // A call targeting B still reaches it.
        assert_eq!(profile.variant_for(None, Some("B")).unwrap().0.name, "B");
        let drained = EndpointProfile::new(
            "e",
            vec![weighted("A", 2, Some(0.0)), weighted("B", 3, Some(0.0))],
        );
        assert_eq!(drained.routable_instance_count(), 5);
    }

    /// A SageMaker client answered by `rules` (any that matches).
    pub(crate) fn mock_client(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_sagemaker::Client {
        use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client};
        let interceptor = rules.iter().fold(
            MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
            |interceptor, rule| interceptor.with_rule(rule),
        );
        aws_sdk_sagemaker::Client::from_conf(
            aws_sdk_sagemaker::Config::builder()
                .behavior_version(aws_sdk_sagemaker::config::BehaviorVersion::latest())
                .region(aws_sdk_sagemaker::config::Region::from_static("us-east-1"))
                .credentials_provider(aws_sdk_sagemaker::config::Credentials::new(
                    "test", "test", None, None, "static",
                ))
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }

    /// Blue: `c`, 2 × ml.g5.xlarge with 30 GB volumes. With `deploying`, green
    /// (`PendingDeploymentSummary`, config `c2`): 2 × ml.g5.12xlarge up.
    fn blue_green(deploying: bool) -> DescribeEndpointOutput {
        let described = DescribeEndpointOutput::builder()
            .endpoint_name("e")
            .endpoint_config_name("c")
            .production_variants(
                ProductionVariantSummary::builder()
                    .variant_name("AllTraffic")
                    .current_instance_count(2)
                    .build(),
            );
        if !deploying {
            return described.build();
        }
        described
            .pending_deployment_summary(
                PendingDeploymentSummary::builder()
                    .endpoint_config_name("c2")
                    .production_variants(
                        PendingProductionVariantSummary::builder()
                            .variant_name("AllTraffic")
                            .instance_type(Type::MlG512Xlarge)
                            .current_instance_count(2)
                            .desired_instance_count(2)
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    /// `DescribeEndpointConfig` of `c` (blue) and of `c2` (green), 30 GB volumes;
    /// `c2` answers `green_fails` instead when given.
    fn configs(green_fails: Option<&'static str>) -> aws_smithy_mocks::Rule {
        use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigError;
        use aws_smithy_mocks::{MockResponse, mock};
        mock!(aws_sdk_sagemaker::Client::describe_endpoint_config).then_compute_response(
            move |input| {
                let name = input.endpoint_config_name().unwrap_or_default();
                let (instance_type, code) = match name {
                    "c2" => (Type::MlG512Xlarge, green_fails),
                    _ => (Type::MlG5Xlarge, None),
                };
                if let Some(code) = code {
                    return MockResponse::Error(DescribeEndpointConfigError::generic(aws_error(
                        code,
                        "User: arn:aws:sts::123456789012:assumed-role/Deployer/ci-run is \
                                 not authorized to perform: sagemaker:DescribeEndpointConfig",
                    )));
                }
                MockResponse::Output(
                    DescribeEndpointConfigOutput::builder()
                        .endpoint_config_name(name)
                        .production_variants(
                            ProductionVariant::builder()
                                .variant_name("AllTraffic")
                                .model_name("m")
                                .instance_type(instance_type)
                                .initial_instance_count(2)
                                .volume_size_in_gb(30)
                                .build(),
                        )
                        .build(),
                )
            },
        )
    }

    #[tokio::test]
    async fn a_pending_fleets_volume_size_comes_from_the_deployments_endpoint_config() {
        use aws_smithy_mocks::mock;
        let endpoint =
            mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(|| blue_green(true));
        let configs = configs(None);
        let client = mock_client(&[&endpoint, &configs]);
        let profile = describe(&client, "e").await.unwrap();
        // Green's 30 GB volumes are billed per GB-month like blue's: the summary
        // does not give them, its config `c2` does.
        assert_eq!(
            profile.pending_variants,
            vec![
                VariantProfile::instance("AllTraffic", "ml.g5.12xlarge", 2).with_volume_size_gb(30)
            ]
        );
        assert_eq!(profile.variants[0].volume_size_gb, Some(30));
        assert_eq!(profile.pending_storage_unknown, None);
        assert_eq!(configs.num_calls(), 2, "blue's config and green's");
    }

    #[tokio::test]
    async fn a_deployments_config_that_cannot_be_described_keeps_its_fleet_and_says_its_storage_is_not_accrued()
     {
        use aws_smithy_mocks::mock;
        let endpoint =
            mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(|| blue_green(true));
        let configs = configs(Some("AccessDeniedException"));
        let client = mock_client(&[&endpoint, &configs]);
        let profile = describe(&client, "e")
            .await
            .expect("the profile is not lost");
        // Green's instances are still accrued; its volume size is unknown, and
        // says why (without the caller's identity).
        assert_eq!(
            profile.pending_variants,
            vec![VariantProfile::instance("AllTraffic", "ml.g5.12xlarge", 2)]
        );
        let reason = profile.pending_storage_unknown.clone().expect("a reason");
        assert!(reason.contains("`c2` could not be described"), "{reason}");
        assert!(
            reason.contains("sagemaker:DescribeEndpointConfig"),
            "{reason}"
        );
        assert!(
            !reason.contains("123456789012") && !reason.contains("Deployer"),
            "{reason}"
        );
        // A call priced meanwhile says both: which fleet may have served it,
        // and that the new fleet's storage is not in the accrual.
        let (_, note) = profile.variant_for(None, None).unwrap();
        let note = note.expect("a note");
        assert!(
            note.contains("the new fleet's ML storage is not accrued"),
            "{note}"
        );
    }

    #[test]
    fn a_call_priced_while_a_deployment_is_under_way_says_which_fleet_may_have_served_it() {
        let blue = VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 2);
        let profile = EndpointProfile::new("e", vec![blue.clone()])
            .with_pending_variant(VariantProfile::instance("AllTraffic", "ml.g5.12xlarge", 2));
        let (served, note) = profile.variant_for(Some("AllTraffic"), None).unwrap();
        assert_eq!(served.name, "AllTraffic");
        assert_eq!(
            note.as_deref(),
            Some(
                "a blue/green deployment is under way; the call may have been served by the new \
                 fleet (ml.g5.12xlarge × 2), priced at ml.g5.xlarge"
            )
        );

        // The choice's own note is kept in front of it.
        let two = EndpointProfile::new(
            "e",
            vec![
                blue.clone(),
                VariantProfile::instance("Canary", "ml.g5.xlarge", 1),
            ],
        )
        .with_pending_variant(VariantProfile::serverless("Canary", 4096));
        let (_, note) = two.variant_for(None, Some("Canary")).unwrap();
        assert_eq!(
            note.as_deref(),
            Some(
                "variant taken from TargetVariant; a blue/green deployment is under way; the \
                 call may have been served by the new fleet (serverless 4096 MB), priced at \
                 ml.g5.xlarge"
            )
        );

        // A new fleet none of which is up yet serves nothing; no deployment: no note.
        let none_up = EndpointProfile::new("e", vec![blue.clone()])
            .with_pending_variant(VariantProfile::instance("AllTraffic", "ml.g5.12xlarge", 0));
        assert_eq!(none_up.variant_for(None, None).unwrap().1, None);
        let steady = EndpointProfile::new("e", vec![blue]);
        assert_eq!(steady.variant_for(None, None).unwrap().1, None);
    }

    /// Waits until the refreshes under way in the background are done.
    async fn settled(background: &crate::background::Background) {
        while background.in_flight() > 0 {
            tokio::task::yield_now().await;
        }
    }

    /// `after` on `time`, a call asks `discovery` for `e`'s profile; waits
    /// for the refresh that may start.
    async fn asked_after(
        discovery: &Discovery,
        time: &aws_smithy_async::test_util::ManualTimeSource,
        background: &crate::background::Background,
        after: Duration,
    ) {
        time.advance(after);
        discovery.profile("e").await.unwrap();
        settled(background).await;
    }

    /// `after` on `time`, a round of the refresh loop; waits for the refreshes
    /// it starts.
    async fn ticked_after(
        discovery: &Discovery,
        time: &aws_smithy_async::test_util::ManualTimeSource,
        background: &crate::background::Background,
        after: Duration,
    ) {
        time.advance(after);
        discovery.refresh_stale(|| true).await;
        settled(background).await;
    }

    /// A manual clock at 1,800,000,000 s past the Unix epoch.
    fn manual_clock() -> aws_smithy_async::test_util::ManualTimeSource {
        aws_smithy_async::test_util::ManualTimeSource::new(
            std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )
    }

    /// Discovery through `client` on `time`, no overrides, profiles refreshed
    /// every 60 s, describes timed out at 5 s; and its background tasks.
    fn discovery_on(
        client: aws_sdk_sagemaker::Client,
        time: &aws_smithy_async::test_util::ManualTimeSource,
    ) -> (Discovery, Arc<crate::background::Background>) {
        let background = Arc::new(crate::background::Background::default());
        let discovery = Discovery::new(
            Some(client),
            HashMap::new(),
            Duration::from_secs(60),
            Duration::from_secs(5),
            SharedTimeSource::new(time.clone()),
            background.clone(),
        );
        (discovery, background)
    }

    /// Discovery of `e` (refreshed every 60 s, on a manual clock) whose
    /// DescribeEndpoint shows the blue/green deployment while `deploying` holds.
    struct Redeploying {
        discovery: Discovery,
        endpoint: aws_smithy_mocks::Rule,
        deploying: Arc<std::sync::atomic::AtomicBool>,
        time: aws_smithy_async::test_util::ManualTimeSource,
        background: Arc<crate::background::Background>,
    }

    fn redeploying() -> Redeploying {
        redeploying_taking(Duration::ZERO)
    }

    /// [`redeploying`], each `DescribeEndpoint` taking `takes` on the manual clock.
    fn redeploying_taking(takes: Duration) -> Redeploying {
        use aws_smithy_mocks::mock;
        use std::sync::atomic::{AtomicBool, Ordering};
        let deploying = Arc::new(AtomicBool::new(true));
        let time = manual_clock();
        let endpoint = mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output({
            let (deploying, time) = (deploying.clone(), time.clone());
            move || {
                time.advance(takes);
                blue_green(deploying.load(Ordering::SeqCst))
            }
        });
        let configs = configs(None);
        let (discovery, background) = discovery_on(mock_client(&[&endpoint, &configs]), &time);
        Redeploying {
            discovery,
            endpoint,
            deploying,
            time,
            background,
        }
    }

    #[tokio::test]
    async fn a_profile_with_a_deployment_under_way_is_refreshed_within_seconds_not_a_minute() {
        use std::sync::atomic::Ordering;
        let Redeploying {
            discovery,
            endpoint,
            deploying,
            time,
            background,
        } = redeploying();

        let first = discovery.profile("e").await.unwrap();
        assert_eq!(first.pending_variants.len(), 1);
        assert_eq!(endpoint.num_calls(), 1);

        // 10 s on, the deployment is still baking: described again (the
        // switch-over is looked for every 10 s), not only after 60 s.
        deploying.store(false, Ordering::SeqCst);
        asked_after(&discovery, &time, &background, Duration::from_secs(10)).await;
        assert_eq!(endpoint.num_calls(), 2);
        // The refresh found the deployment over: the new fleet is the endpoint's.
        let after = discovery.profile("e").await.unwrap();
        assert!(after.pending_variants.is_empty());

        // No deployment any more: back to every 60 s.
        asked_after(&discovery, &time, &background, Duration::from_secs(30)).await;
        assert_eq!(endpoint.num_calls(), 2);
        asked_after(&discovery, &time, &background, Duration::from_secs(30)).await;
        assert_eq!(endpoint.num_calls(), 3);
    }

    /// An endpoint being created stands at nothing, and is described again at
    /// the next tick of the refresh loop (10 s), not once its profile is 50 s
    /// old: an idle endpoint that went in service meanwhile accrues from within
    /// 10 s of it (2 × ml.g5.xlarge at $1.408/h: at most 2 × 1.408 × 10/3600 =
    /// $0.0078 not accrued, where a 60 s refresh left up to 2 × 1.408 × 59/3600
    /// = $0.0462).
    #[tokio::test]
    async fn an_endpoint_being_created_is_described_at_every_tick_not_once_a_minute() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let being_created = Arc::new(AtomicBool::new(true));
        let time = manual_clock();
        let endpoint = aws_smithy_mocks::mock!(aws_sdk_sagemaker::Client::describe_endpoint)
            .then_output({
                let being_created = being_created.clone();
                move || {
                    if being_created.load(Ordering::SeqCst) {
                        creating(None)
                    } else {
                        blue_green(false)
                    }
                }
            });
        let configs = configs(None);
        let (discovery, background) = discovery_on(mock_client(&[&endpoint, &configs]), &time);
        assert_eq!(discovery.profile("e").await.unwrap().instance_count(), 0);
        // In service, 2 × ml.g5.xlarge: found at the next tick.
        being_created.store(false, Ordering::SeqCst);
        ticked_after(&discovery, &time, &background, Duration::from_secs(10)).await;
        assert_eq!(endpoint.num_calls(), 2);
        assert_eq!(discovery.profile("e").await.unwrap().instance_count(), 2);
    }

    /// A deployment under way is described at every tick of the refresh loop
    /// though each describe takes time: its profile, stamped when the describe
    /// landed (0.3 s after it went out), is 9.7 s old at the next tick, and is
    /// still due then.
    #[tokio::test]
    async fn a_deployment_is_described_at_every_tick_though_describes_take_time() {
        let Redeploying {
            discovery,
            endpoint,
            time,
            background,
            ..
        } = redeploying_taking(Duration::from_millis(300));
        // Described at 0, landed at 0.3 s; the ticks at 10, 20 and 30 s.
        discovery.profile("e").await.unwrap();
        for tick in 1..=3 {
            ticked_after(&discovery, &time, &background, Duration::from_millis(9_700)).await;
            assert_eq!(endpoint.num_calls(), 1 + tick, "tick {tick}");
        }
    }

    /// A call that shows a quiet profile stale before it is due a refresh (a
    /// variant it does not list, 3 s after it was described) has it described
    /// at the refresh loop's next tick once 5 s old, with no other call: not at
    /// the quiet round, 50 s on.
    #[tokio::test]
    async fn a_profile_a_call_showed_stale_is_described_at_the_next_tick() {
        use aws_smithy_async::time::TimeSource;
        use std::sync::atomic::Ordering;
        let Redeploying {
            discovery,
            endpoint,
            deploying,
            time,
            background,
        } = redeploying();
        deploying.store(false, Ordering::SeqCst);
        discovery.profile("e").await.unwrap();
        time.advance(Duration::from_secs(3));
        discovery.refresh_soon("e", time.now());
        settled(&background).await;
        assert_eq!(endpoint.num_calls(), 1, "described again 3 s on");
        ticked_after(&discovery, &time, &background, Duration::from_secs(7)).await;
        assert_eq!(endpoint.num_calls(), 2, "not described at the next tick");
        // Described: quiet again, left to the quiet round.
        ticked_after(&discovery, &time, &background, Duration::from_secs(10)).await;
        assert_eq!(endpoint.num_calls(), 2);
    }

    /// A round of the refresh loop starts no refresh once its meter is gone or
    /// shutting down (`keep_going` says no), though endpoints are still due.
    #[tokio::test]
    async fn a_refresh_round_starts_nothing_once_told_to_stop() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let Redeploying {
            discovery,
            endpoint,
            time,
            background,
            ..
        } = redeploying();
        discovery.profile("e").await.unwrap();
        assert_eq!(endpoint.num_calls(), 1);
        time.advance(Duration::from_secs(120));
        let going = Arc::new(AtomicBool::new(false));
        let keep_going = {
            let going = going.clone();
            move || going.load(Ordering::SeqCst)
        };
        discovery.refresh_stale(keep_going.clone()).await;
        settled(&background).await;
        assert_eq!(
            endpoint.num_calls(),
            1,
            "described after being told to stop"
        );
        going.store(true, Ordering::SeqCst);
        discovery.refresh_stale(keep_going).await;
        settled(&background).await;
        assert_eq!(endpoint.num_calls(), 2);
    }

    /// Names that do not exist are not kept for the life of the process: a round
    /// of the refresh loop forgets each one no call asked for in the last five
    /// minutes (its failure and its lock), and one asked for again is described
    /// again, not answered with the old failure.
    #[tokio::test]
    async fn endpoints_never_found_are_forgotten_once_no_call_asks_for_them() {
        use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointError;
        use aws_smithy_mocks::{MockResponse, mock};
        let described =
            mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_compute_response(|input| {
                MockResponse::Error(DescribeEndpointError::generic(aws_error(
                    "ValidationException",
                    format!(
                        "Could not find endpoint \"{}\".",
                        input.endpoint_name().unwrap_or_default()
                    ),
                )))
            });
        let time = manual_clock();
        let (discovery, background) = discovery_on(mock_client(&[&described]), &time);
        for i in 0..1_000 {
            let err = discovery.profile(&format!("typo-{i}")).await.unwrap_err();
            assert!(matches!(err, DiscoveryError::NotFound { .. }), "{err:?}");
        }
        // One DescribeEndpoint per name; each failure and lock kept meanwhile.
        assert_eq!(described.num_calls(), 1_000);
        assert_eq!(discovery.cached_count(), 1_000);
        assert_eq!(discovery.lock_count(), 1_000);

        // 4 minutes on, one of them is asked for again: its failure is 240 s old
        // (past the 30 s retry), so it is answered at once and retried behind.
        time.advance(Duration::from_secs(240));
        assert!(discovery.profile("typo-0").await.is_err());
        settled(&background).await;
        assert_eq!(described.num_calls(), 1_001);

        // 5 min + 1 s after the first calls (61 s after typo-0 was asked): a round
        // forgets the 999 not asked for in 5 minutes, and keeps typo-0.
        ticked_after(&discovery, &time, &background, Duration::from_secs(61)).await;
        assert_eq!(discovery.cached_count(), 1);
        assert_eq!(discovery.lock_count(), 1);
        assert_eq!(described.num_calls(), 1_001, "a round describes no failure");

        // A forgotten name asked for again is described again, once, and the
        // call waits for that answer (not the old failure served at once).
        let err = discovery.profile("typo-7").await.unwrap_err();
        assert!(matches!(err, DiscoveryError::NotFound { .. }), "{err:?}");
        assert_eq!(described.num_calls(), 1_002);
        settled(&background).await;
        assert_eq!(described.num_calls(), 1_002);
        assert_eq!(discovery.cached_count(), 2);
    }

    #[tokio::test]
    async fn the_refresh_loop_looks_at_a_deployment_every_ten_seconds_and_a_quiet_endpoint_once_a_minute()
     {
        use std::sync::atomic::Ordering;
        let Redeploying {
            discovery,
            endpoint,
            deploying,
            time,
            background,
        } = redeploying();
        // The loop ticks every 10 s, not every 60 s: no call is needed for a
        // deployment's switch-over to be seen within seconds.
        assert_eq!(discovery.refresh_tick(), Duration::from_secs(10));
        // One tick of the loop on the manual clock, and the refresh it started.
        let tick = || async {
            ticked_after(&discovery, &time, &background, Duration::from_secs(10)).await;
        };

        discovery.profile("e").await.unwrap();
        assert_eq!(endpoint.num_calls(), 1);
        // A deployment under way: described again at each tick.
        tick().await;
        assert_eq!(endpoint.num_calls(), 2);
        deploying.store(false, Ordering::SeqCst);
        tick().await;
        assert_eq!(
            endpoint.num_calls(),
            3,
            "the tick that sees the switch-over"
        );

        // Quiet and deployed (last described at 20 s): left alone until it is
        // 50 s old (60 s less one tick), so it is described about once a minute
        // (at 70 s and 120 s here), never older than 60 s plus one request.
        for _ in 0..10 {
            tick().await;
        }
        assert_eq!(
            endpoint.num_calls(),
            5,
            "described at 70 s and 120 s, 120 s on"
        );
    }

    #[test]
    fn an_access_denied_reason_names_the_permission_not_the_caller() {
        let said = "User: arn:aws:sts::123456789012:assumed-role/Role/session is not authorized \
                    to perform: sagemaker:DescribeEndpoint on resource: \
                    arn:aws:sagemaker:us-east-1:123456789012:endpoint/x";
        assert_eq!(
            redact_identity(said),
            "User: <principal> is not authorized to perform: sagemaker:DescribeEndpoint on \
             resource: arn:aws:sagemaker:us-east-1:<account>:endpoint/x"
        );
        // Elsewhere in a message: an IAM ARN, a bare account id, a full stop.
        assert_eq!(
            redact_identity(
                "denied by arn:aws:iam::123456789012:policy/TeamAlice in account \
                 123456789012. Request 1234567890123 kept."
            ),
            "denied by arn:aws:iam::<account>:<principal> in account <account>. Request \
             1234567890123 kept."
        );
    }

    #[test]
    fn a_discovery_reason_never_quotes_the_signed_request() {
        // What AWS answers a DescribeEndpoint signed with the wrong secret key: the
        // canonical request it expected follows, session token included.
        let said = "The request signature we calculated does not match the signature you \
                    provided. Check your AWS Secret Access Key and signing method.\n\nThe \
                    Canonical String for this request should have been\n'POST\n/\n\n\
                    x-amz-security-token:SESSION-TOKEN-SECRET\n'";
        let reason = redact_identity(said);
        assert!(!reason.contains("SESSION-TOKEN-SECRET"), "{reason}");
        assert!(
            reason.starts_with(
                "The request signature we calculated does not match the signature you \
                 provided. Check your AWS Secret Access Key and signing method."
            ),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn an_endpoint_whose_config_was_deleted_while_live_is_not_taken_for_a_deleted_endpoint() {
        use aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigError;
        use aws_smithy_mocks::{MockResponse, mock};
        use std::sync::atomic::{AtomicBool, Ordering};
        // `e` runs on config `c`, which is deleted while `e` is live (AWS allows
        // that: the endpoint keeps running, and billing, until it is deleted).
        let deleted = Arc::new(AtomicBool::new(false));
        let described =
            mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_output(|| blue_green(false));
        let config = mock!(aws_sdk_sagemaker::Client::describe_endpoint_config)
            .then_compute_response({
                let deleted = deleted.clone();
                move |_| {
                    if deleted.load(Ordering::SeqCst) {
                        return MockResponse::Error(DescribeEndpointConfigError::generic(
                            aws_error(
                                "ValidationException",
                                "Could not find endpoint configuration \"c\".",
                            ),
                        ));
                    }
                    MockResponse::Output(config(instances("AllTraffic", Type::MlG5Xlarge, 2)))
                }
            });
        let client = mock_client(&[&described, &config]);
        let time = manual_clock();
        let (discovery, background) = discovery_on(client.clone(), &time);
        let known = discovery.profile("e").await.unwrap();
        assert_eq!(
            known.variants,
            vec![VariantProfile::instance("AllTraffic", "ml.g5.xlarge", 2)]
        );

        deleted.store(true, Ordering::SeqCst);
        // Described afresh: a failure to describe, not "endpoint not found".
        let err = describe(&client, "e").await.unwrap_err();
        let DiscoveryError::Failed { endpoint, message } = &err else {
            panic!("not a failure to describe: {err:?}");
        };
        assert_eq!(endpoint, "e");
        assert!(
            message.contains("endpoint config `c` was deleted while the endpoint is live"),
            "{message}"
        );
        // A refresh keeps the last profile, as for any failure to describe: the
        // endpoint's instances are still there (and billed).
        asked_after(&discovery, &time, &background, Duration::from_secs(61)).await;
        // Described at first, by hand above, then by the refresh.
        assert_eq!(described.num_calls(), 3);
        assert_eq!(discovery.profile("e").await.unwrap(), known);
    }

    #[tokio::test]
    async fn a_failed_describes_reason_carries_no_account_id_role_or_session() {
        use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointError;
        use aws_smithy_mocks::mock;
        let denied = mock!(aws_sdk_sagemaker::Client::describe_endpoint).then_error(|| {
            DescribeEndpointError::generic(aws_error(
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/Role/session is not \
                         authorized to perform: sagemaker:DescribeEndpoint on resource: \
                         arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
            ))
        });
        let client = mock_client(&[&denied]);
        let err = describe(&client, "x").await.unwrap_err();
        let DiscoveryError::AccessDenied { message, .. } = &err else {
            panic!("{err:?}");
        };
        // What goes on the unpriced line and into the log: the error's text.
        for text in [message.clone(), err.to_string(), format!("{err:?}")] {
            for identity in ["123456789012", "Role", "session"] {
                assert!(!text.contains(identity), "{identity} in {text}");
            }
        }
        assert!(message.contains("sagemaker:DescribeEndpoint"), "{message}");
    }
}
