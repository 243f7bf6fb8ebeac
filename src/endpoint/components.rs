//! Inference components: several models on one endpoint's instances, each
//! reserving accelerators, CPU cores and memory per copy.
//!
//! An endpoint built for inference components has production variants without a
//! `ModelName` (the models come with the components). Its components are listed
//! with `ListInferenceComponents` (filtered by endpoint, paginated) and each is
//! described with `DescribeInferenceComponent` (a few at a time): its variant, its
//! copies deployed (`RuntimeConfig.CurrentCopyCount`) and what one copy reserves
//! (`Specification.ComputeResourceRequirements`). An *adapter* (a LoRA adapter,
//! `Specification.BaseInferenceComponentName`) reserves nothing of its own: its
//! calls run on its base component's copies. They are refreshed with the
//! endpoint's profile, so a component that scales its copies is seen at the next
//! refresh; one deleted between the listing and its description is left out.

use super::DiscoveryError;
use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Pages of `ListInferenceComponents` followed at most (100 components a page).
const MAX_PAGES: usize = 50;

/// `DescribeInferenceComponent` requests in flight at once.
const DESCRIBES_AT_ONCE: usize = 8;

/// What one copy of an inference component reserves on an instance
/// (`ComputeResourceRequirements`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReservation {
    /// `NumberOfAcceleratorDevicesRequired` (GPUs, Inferentia/Trainium devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerators: Option<Decimal>,
    /// `NumberOfCpuCoresRequired` (vCPUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<Decimal>,
    /// `MinMemoryRequiredInMb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
}

impl CopyReservation {
    /// A copy that reserves `n` accelerator devices.
    pub fn accelerators(n: Decimal) -> Self {
        CopyReservation {
            accelerators: Some(n),
            ..CopyReservation::default()
        }
    }

    /// A copy that reserves CPU cores and memory (instance types without accelerators).
    pub fn cpu_and_memory(cpu_cores: Decimal, memory_mb: u32) -> Self {
        CopyReservation {
            accelerators: None,
            cpu_cores: Some(cpu_cores),
            memory_mb: Some(memory_mb),
        }
    }
}

/// One inference component of an endpoint.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentProfile {
    /// `InferenceComponentName`: what calls name.
    pub name: String,
    /// The production variant whose instances host it.
    pub variant: String,
    /// Copies deployed (`CurrentCopyCount`; 0 while none is reported: copies
    /// requested but not yet deployed hold nothing of the instances).
    pub copies: u32,
    /// What each copy reserves (nothing for an adapter).
    pub per_copy: CopyReservation,
    /// `InferenceComponentStatus` (`InService`, `Creating`, `Updating`, …), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The base component of an adapter (`BaseInferenceComponentName`): the adapter's
    /// calls run on the base's copies, at the base's share of the instances, and
    /// the adapter reserves nothing of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// When the component was created (`CreationTime`), when given: its copies
    /// have held their share of the instances since, often well after the
    /// endpoint's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

impl ComponentProfile {
    /// A component of `variant` with `copies` copies, each reserving `per_copy`.
    pub fn new(
        name: impl Into<String>,
        variant: impl Into<String>,
        copies: u32,
        per_copy: CopyReservation,
    ) -> Self {
        ComponentProfile {
            name: name.into(),
            variant: variant.into(),
            copies,
            per_copy,
            status: None,
            base: None,
            created: None,
        }
    }

    /// An adapter of `base` (a component of the same endpoint): its calls run on
    /// the base's copies and are priced at the base's share of an instance.
    pub fn adapter(
        name: impl Into<String>,
        variant: impl Into<String>,
        base: impl Into<String>,
    ) -> Self {
        ComponentProfile {
            name: name.into(),
            variant: variant.into(),
            copies: 0,
            per_copy: CopyReservation::default(),
            status: None,
            base: Some(base.into()),
            created: None,
        }
    }

    /// The same component, created at `at` (for overrides and tests).
    pub fn created_at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.created = Some(at);
        self
    }

    /// Whether this is an adapter of another component.
    pub fn is_adapter(&self) -> bool {
        self.base.is_some()
    }
}

/// An `f32` of the API as the decimal it was written as (`0.5`, not
/// `0.5000000000000000277…`): its shortest round-trip text, parsed.
fn decimal_of(value: f32) -> Option<Decimal> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    value.to_string().parse().ok()
}

/// Why the components could not be found, with the permission to grant when refused.
fn failed<E, R>(
    endpoint: &str,
    operation: &str,
    err: aws_sdk_sagemaker::error::SdkError<E, R>,
) -> DiscoveryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = err.code().unwrap_or_default().to_owned();
    let said = super::redact_identity(
        &err.message()
            .map(str::to_owned)
            .unwrap_or_else(|| crate::redact::error_chain(&err)),
    );
    let message = if code.contains("AccessDenied") {
        format!(
            "not allowed to {operation} ({said}): grant sagemaker:ListInferenceComponents and \
             sagemaker:DescribeInferenceComponent, or set the profile with \
             ClientBuilder::endpoint_profile"
        )
    } else {
        format!("{operation} failed: {said}")
    };
    DiscoveryError::Failed {
        endpoint: endpoint.to_owned(),
        message,
    }
}

/// The endpoint's inference components: listed, then each described (a few at a
/// time), all within the discovery's time `limit`.
pub(crate) async fn describe_components(
    client: &aws_sdk_sagemaker::Client,
    endpoint: &str,
    limit: Option<super::Limit>,
) -> Result<Vec<ComponentProfile>, DiscoveryError> {
    let mut names = Vec::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = super::within(
            limit,
            endpoint,
            "ListInferenceComponents",
            client
                .list_inference_components()
                .endpoint_name_equals(endpoint)
                .max_results(100)
                .set_next_token(next_token.take())
                .send(),
        )
        .await?
        .map_err(|e| failed(endpoint, "ListInferenceComponents", e))?;
        names.extend(
            page.inference_components()
                .iter()
                .filter_map(|c| c.inference_component_name().map(str::to_owned)),
        );
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    if next_token.is_some() {
        // Components missing would give the others their instances' time.
        return Err(DiscoveryError::Failed {
            endpoint: endpoint.to_owned(),
            message: format!(
                "ListInferenceComponents still had pages after {MAX_PAGES} ({} components): \
                 stopped rather than leave components out",
                names.len()
            ),
        });
    }

    // A few descriptions at a time: an endpoint with dozens of components is
    // described in a few round trips, not one after another. Dropping this future
    // (the caller gave up) aborts those in flight with the set.
    let mut pending = names.into_iter();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut described = Vec::new();
    loop {
        while in_flight.len() < DESCRIBES_AT_ONCE {
            let Some(name) = pending.next() else { break };
            let (client, endpoint) = (client.clone(), endpoint.to_owned());
            in_flight.spawn(async move { describe_one(&client, &endpoint, name, limit).await });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let answer = joined.map_err(|e| DiscoveryError::Failed {
            endpoint: endpoint.to_owned(),
            message: format!("describing an inference component failed: {e}"),
        })??;
        described.extend(answer);
    }
    let mut components = adapters_on_their_base_variant(endpoint, described);
    components.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(components)
}

/// One component as `DescribeInferenceComponent` tells it; `None` when it was
/// deleted since it was listed.
async fn describe_one(
    client: &aws_sdk_sagemaker::Client,
    endpoint: &str,
    name: String,
    limit: Option<super::Limit>,
) -> Result<Option<ComponentProfile>, DiscoveryError> {
    let answer = super::within(
        limit,
        endpoint,
        "DescribeInferenceComponent",
        client
            .describe_inference_component()
            .inference_component_name(&name)
            .send(),
    )
    .await?;
    let described = match answer {
        Ok(described) => described,
        Err(err)
            if super::is_not_found(
                err.code().unwrap_or_default(),
                err.message().unwrap_or_default(),
            ) =>
        {
            tracing::debug!(target: "sagemeter::endpoint", endpoint, component = %name,
                "inference component deleted since it was listed: left out");
            return Ok(None);
        }
        Err(err) => return Err(failed(endpoint, "DescribeInferenceComponent", err)),
    };
    let specification = described.specification();
    let base = specification
        .and_then(|s| s.base_inference_component_name())
        .filter(|b| !b.is_empty())
        .map(str::to_owned);
    let requirements = specification.and_then(|s| s.compute_resource_requirements());
    let per_copy = CopyReservation {
        accelerators: requirements
            .and_then(|r| r.number_of_accelerator_devices_required())
            .and_then(decimal_of),
        cpu_cores: requirements
            .and_then(|r| r.number_of_cpu_cores_required())
            .and_then(decimal_of),
        memory_mb: requirements
            .and_then(|r| r.min_memory_required_in_mb())
            .and_then(|m| u32::try_from(m).ok()),
    };
    // Copies deployed, not those asked for: a component still being created holds
    // nothing of the instances yet.
    let copies = described
        .runtime_config()
        .and_then(|r| r.current_copy_count())
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0);
    let variant = match (described.variant_name(), &base) {
        (Some(variant), _) => variant.to_owned(),
        // An adapter runs where its base does: its variant is found from the base's.
        (None, Some(_)) => String::new(),
        (None, None) => {
            return Err(DiscoveryError::Failed {
                endpoint: endpoint.to_owned(),
                message: format!("inference component `{name}` names no variant"),
            });
        }
    };
    Ok(Some(ComponentProfile {
        name,
        variant,
        copies,
        per_copy,
        status: described
            .inference_component_status()
            .map(|s| s.as_str().to_owned()),
        base,
        created: described
            .creation_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
    }))
}

/// Adapters that named no variant take their base's. One whose base is not among
/// the components is left out, with a WARN: its calls are then unpriced, saying
/// the component was not discovered, rather than the whole endpoint unknown.
fn adapters_on_their_base_variant(
    endpoint: &str,
    mut components: Vec<ComponentProfile>,
) -> Vec<ComponentProfile> {
    for i in 0..components.len() {
        if !components[i].variant.is_empty() {
            continue;
        }
        let base = components[i].base.as_deref().unwrap_or_default();
        if let Some(found) = components
            .iter()
            .find(|c| c.name == base && !c.is_adapter())
        {
            components[i].variant = found.variant.clone();
        }
    }
    components.retain(|c| {
        let kept = !c.variant.is_empty();
        if !kept {
            tracing::warn!(target: "sagemeter::endpoint", endpoint, component = %c.name,
                base = c.base.as_deref().unwrap_or_default(),
                "adapter names no variant and its base component was not found: left out");
        }
        kept
    });
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_floats_become_the_decimals_they_were_written_as() {
        assert_eq!(decimal_of(1.0), Some(Decimal::ONE));
        assert_eq!(decimal_of(0.5), Some(Decimal::new(5, 1)));
        assert_eq!(decimal_of(0.1), Some(Decimal::new(1, 1)));
        assert_eq!(decimal_of(-1.0), None);
        assert_eq!(decimal_of(f32::NAN), None);
    }

    #[tokio::test]
    async fn a_list_that_never_ends_is_an_error_not_a_list_cut_short() {
        use aws_sdk_sagemaker::operation::list_inference_components::ListInferenceComponentsOutput;
        use aws_sdk_sagemaker::types::InferenceComponentSummary;
        use aws_smithy_mocks::mock;
        // Every page names a component and hands a token for the next.
        let pages = mock!(aws_sdk_sagemaker::Client::list_inference_components).then_output(|| {
            ListInferenceComponentsOutput::builder()
                .inference_components(
                    InferenceComponentSummary::builder()
                        .inference_component_name("again")
                        .inference_component_arn("arn:ic/again")
                        .endpoint_name("shared")
                        .endpoint_arn("arn:endpoint/shared")
                        .creation_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                        .last_modified_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                        .build(),
                )
                .next_token("more")
                .build()
        });
        let client = super::super::tests::mock_client(&[&pages]);
        let err = describe_components(&client, "shared", None)
            .await
            .unwrap_err();
        assert_eq!(pages.num_calls(), MAX_PAGES);
        assert!(
            err.to_string()
                .contains("still had pages after 50 (50 components)"),
            "{err}"
        );
    }
}
