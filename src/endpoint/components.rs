//! Inference components: several models on one endpoint's instances, each
//! reserving accelerators, CPU cores and memory per copy.
//!
//! An endpoint built for inference components has production variants without a
//! `ModelName` (the models come with the components). Its components are listed
//! with `ListInferenceComponents` (filtered by endpoint, paginated) and each is
//! described with `DescribeInferenceComponent`: its variant, its copies
//! (`RuntimeConfig.CurrentCopyCount`) and what one copy reserves
//! (`Specification.ComputeResourceRequirements`). They are refreshed with the
//! endpoint's profile, so a component that scales its copies is seen at the next
//! refresh.

use super::DiscoveryError;
use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Pages of `ListInferenceComponents` followed at most (100 components a page).
const MAX_PAGES: usize = 50;

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
    /// Copies running (`CurrentCopyCount`; the desired count while none is reported).
    pub copies: u32,
    /// What each copy reserves.
    pub per_copy: CopyReservation,
    /// `InferenceComponentStatus` (`InService`, `Creating`, `Updating`, …), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
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
        }
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
    R: std::fmt::Debug,
{
    let code = err.code().unwrap_or_default().to_owned();
    let said = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| aws_smithy_types::error::display::DisplayErrorContext(&err).to_string());
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

/// The endpoint's inference components: listed, then each described.
pub(crate) async fn describe_components(
    client: &aws_sdk_sagemaker::Client,
    endpoint: &str,
    limit: Option<std::time::Duration>,
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

    let mut components = Vec::with_capacity(names.len());
    for name in names {
        let described = super::within(
            limit,
            endpoint,
            "DescribeInferenceComponent",
            client
                .describe_inference_component()
                .inference_component_name(&name)
                .send(),
        )
        .await?
        .map_err(|e| failed(endpoint, "DescribeInferenceComponent", e))?;
        let Some(variant) = described.variant_name() else {
            return Err(DiscoveryError::Failed {
                endpoint: endpoint.to_owned(),
                message: format!("inference component `{name}` names no variant"),
            });
        };
        let requirements = described
            .specification()
            .and_then(|s| s.compute_resource_requirements());
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
        let runtime = described.runtime_config();
        let copies = runtime
            .and_then(|r| r.current_copy_count())
            .or_else(|| runtime.and_then(|r| r.desired_copy_count()))
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0);
        components.push(ComponentProfile {
            name,
            variant: variant.to_owned(),
            copies,
            per_copy,
            status: described
                .inference_component_status()
                .map(|s| s.as_str().to_owned()),
        });
    }
    components.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(components)
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
        use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};
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
        let client = aws_sdk_sagemaker::Client::from_conf(
            aws_sdk_sagemaker::Config::builder()
                .behavior_version(aws_sdk_sagemaker::config::BehaviorVersion::latest())
                .region(aws_sdk_sagemaker::config::Region::from_static("us-east-1"))
                .credentials_provider(aws_sdk_sagemaker::config::Credentials::new(
                    "test", "test", None, None, "static",
                ))
                .http_client(create_mock_http_client())
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(&pages),
                )
                .build(),
        );
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
