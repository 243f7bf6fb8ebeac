//! The kinds of SageMaker charge a bill names, and which receipt lines are which.

use crate::billing::{Cost, CostLine, LineItem};
use crate::endpoint::VariantBilling;
use crate::pricing::{PriceKey, UsageType};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A kind of Amazon SageMaker charge, as a bill's usage type names it (without
/// its region prefix: `USE1-Host:ml.m5.xlarge` is `Host:ml.m5.xlarge`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UsageClass {
    /// Real-time hosting instance-hours (`Host:<instance type>`; `Hosting:` on a
    /// GovCloud bill).
    Hosting {
        /// Instance type, e.g. `ml.m5.xlarge`.
        instance_type: String,
    },
    /// Asynchronous inference instance-hours (`AsyncInf:<instance type>`).
    AsyncInference {
        /// Instance type.
        instance_type: String,
    },
    /// Serverless compute seconds (`ServerlessInf:Mem-<N>GB`).
    Serverless {
        /// Memory size in GB.
        memory_gb: u32,
    },
    /// Serverless provisioned concurrency (`ProvisionedConcurrency:Mem-<N>GB` and
    /// `…:Usage-<N>GB`, taken together: public sources disagree on which is the
    /// standing charge).
    ProvisionedConcurrency {
        /// Memory size in GB.
        memory_gb: u32,
    },
    /// Data processed in (`Hst:Data-Bytes-In`, or another kind's `Data-Bytes-In`).
    DataIn,
    /// Data processed out (`Hst:Data-Bytes-Out`, or another kind's `Data-Bytes-Out`).
    DataOut,
    /// ML storage volumes of hosting instances (`Host:VolumeUsage.*`).
    Storage,
    /// Any other SageMaker charge (training, notebooks, batch transform, ...):
    /// not an endpoint's.
    Other {
        /// The usage type as billed, without its region prefix as the other
        /// classes (`USE1-Train:ml.p3.2xlarge` is `Train:ml.p3.2xlarge`): a bill
        /// is of one region, and its rows are labelled alike.
        usage_type: String,
    },
}

impl UsageClass {
    /// The class of a billed usage type.
    pub fn from_usage_type(text: &str) -> UsageClass {
        let parsed = UsageType::parse(text);
        let memory_gb = |detail: &str| -> Option<u32> {
            let size = detail
                .strip_prefix("Mem-")
                .or_else(|| detail.strip_prefix("Usage-"))?;
            size.strip_suffix("GB")?.parse().ok()
        };
        let kind = parsed.kind;
        let detail = parsed.detail;
        let other = || UsageClass::Other {
            usage_type: UsageType::without_region_prefix(text).to_owned(),
        };
        // Data processed: `Hst:` for hosting; another kind's (an async or a
        // serverless endpoint's, should AWS bill them apart) is the same charge,
        // at the same rate, as receipts' data lines are.
        if detail.eq_ignore_ascii_case("Data-Bytes-In") {
            return UsageClass::DataIn;
        }
        if detail.eq_ignore_ascii_case("Data-Bytes-Out") {
            return UsageClass::DataOut;
        }
        // `Host` in most regions; a GovCloud bill reads `UGW1-Hosting:ml.g5.24xlarge`.
        if kind.eq_ignore_ascii_case("Host") || kind.eq_ignore_ascii_case("Hosting") {
            if detail.starts_with("ml.") {
                return UsageClass::Hosting {
                    instance_type: detail.to_owned(),
                };
            }
            if detail.starts_with("VolumeUsage") {
                return UsageClass::Storage;
            }
        } else if kind.eq_ignore_ascii_case("AsyncInf") && detail.starts_with("ml.") {
            return UsageClass::AsyncInference {
                instance_type: detail.to_owned(),
            };
        } else if kind.eq_ignore_ascii_case("ServerlessInf") {
            return memory_gb(detail)
                .map_or_else(other, |memory_gb| UsageClass::Serverless { memory_gb });
        } else if kind.eq_ignore_ascii_case("ProvisionedConcurrency") {
            return memory_gb(detail).map_or_else(other, |memory_gb| {
                UsageClass::ProvisionedConcurrency { memory_gb }
            });
        }
        other()
    }

    /// Instance-hours of `instance_type`: an asynchronous endpoint's
    /// (`AsyncInf:`), or a real-time one's (`Host:`).
    pub(crate) fn instance_time(instance_type: &str, asynchronous: bool) -> UsageClass {
        let instance_type = instance_type.to_owned();
        match asynchronous {
            true => UsageClass::AsyncInference { instance_type },
            false => UsageClass::Hosting { instance_type },
        }
    }

    /// The class a receipt line is billed under; `None` for charges that are not
    /// Amazon SageMaker usage (per-inference and per-token fees set by the user).
    pub(crate) fn of_line(cost: &Cost, line: &CostLine) -> Option<UsageClass> {
        match line.item {
            LineItem::DataIn => Some(UsageClass::DataIn),
            LineItem::DataOut => Some(UsageClass::DataOut),
            LineItem::Compute => match cost.billing.as_ref()? {
                VariantBilling::Instance { instance_type, .. } => Some(UsageClass::instance_time(
                    instance_type,
                    cost.usage.operation == crate::usage::Operation::InvokeEndpointAsync,
                )),
                VariantBilling::Serverless {
                    memory_mb,
                    provisioned_concurrency,
                } => {
                    let memory_gb = memory_mb / 1024;
                    // A call beyond the provisioned concurrency is billed on
                    // demand, under the on-demand usage type.
                    Some(
                        if provisioned_concurrency.is_some() && !cost.is_beyond_provisioned() {
                            UsageClass::ProvisionedConcurrency { memory_gb }
                        } else {
                            UsageClass::Serverless { memory_gb }
                        },
                    )
                }
            },
            _ => None,
        }
    }

    /// The on-demand price key of the class in `region`, when it has one rate.
    pub(crate) fn price_key(&self, region: &str) -> Option<PriceKey> {
        let region = region.to_owned();
        Some(match self {
            UsageClass::Hosting { instance_type } => PriceKey::Hosting {
                region,
                instance_type: instance_type.clone(),
            },
            UsageClass::AsyncInference { instance_type } => PriceKey::AsyncInference {
                region,
                instance_type: instance_type.clone(),
            },
            UsageClass::Serverless { memory_gb } => PriceKey::Serverless {
                region,
                memory_gb: *memory_gb,
            },
            UsageClass::DataIn => PriceKey::DataIn { region },
            UsageClass::DataOut => PriceKey::DataOut { region },
            UsageClass::Storage => PriceKey::Storage { region },
            UsageClass::ProvisionedConcurrency { .. } | UsageClass::Other { .. } => return None,
        })
    }

    /// Instance time: billed by the hour whether calls come or not.
    pub(crate) fn is_instance_time(&self) -> bool {
        matches!(
            self,
            UsageClass::Hosting { .. } | UsageClass::AsyncInference { .. }
        )
    }

    /// Charged for standing capacity rather than per call: storage, and provisioned
    /// concurrency (its standing charge and its calls' duration share usage types).
    pub(crate) fn is_standing(&self) -> bool {
        matches!(
            self,
            UsageClass::Storage | UsageClass::ProvisionedConcurrency { .. }
        )
    }
}

impl fmt::Display for UsageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageClass::Hosting { instance_type } => write!(f, "Host:{instance_type}"),
            UsageClass::AsyncInference { instance_type } => write!(f, "AsyncInf:{instance_type}"),
            UsageClass::Serverless { memory_gb } => write!(f, "ServerlessInf:Mem-{memory_gb}GB"),
            UsageClass::ProvisionedConcurrency { memory_gb } => {
                write!(f, "ProvisionedConcurrency:{memory_gb}GB")
            }
            UsageClass::DataIn => f.write_str("Hst:Data-Bytes-In"),
            UsageClass::DataOut => f.write_str("Hst:Data-Bytes-Out"),
            UsageClass::Storage => f.write_str("Host:VolumeUsage"),
            UsageClass::Other { usage_type } => f.write_str(usage_type),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A serverless call billed beyond the provisioned concurrency is AWS's
    /// on-demand serverless usage (`ServerlessInf:Mem-2GB`); the other calls of
    /// the variant, its provisioned concurrency's.
    #[test]
    fn a_call_beyond_the_provisioned_concurrency_is_filed_as_on_demand_serverless() {
        let receipt = |notes: Vec<String>| -> Cost {
            serde_json::from_value(serde_json::json!({
                "call_id": "c", "at": "2026-12-01T00:00:00Z", "endpoint": "pc",
                "variant": "AllTraffic",
                "billing": {"kind": "serverless", "memory_mb": 2048, "provisioned_concurrency": 1},
                "allocation": "processor_sharing",
                "usage": {"operation": "InvokeEndpoint", "latency_us": 800000,
                          "bytes_in": 1, "bytes_out": 1, "outcome": "ok"},
                "lines": [{"item": "compute", "quantity": "0.8", "unit": "seconds",
                           "price": {"status": "priced", "usd_per_unit": "0.00004",
                                     "cost_usd": "0.000032", "provenance": {"source": "snapshot",
                                     "sku": null, "effective_date": null, "fetched_at": null,
                                     "note": null}}}],
                "cost_usd": "0.000032", "currency": "USD",
                "running_client_usd": "0", "running_endpoint_usd": "0",
                "notes": notes
            }))
            .unwrap()
        };
        let beyond = receipt(vec![format!(
            "the call started with 2 calls in flight (itself included), beyond the provisioned \
             concurrency of 1: {}",
            crate::billing::BEYOND_PROVISIONED_NOTE_END
        )]);
        let served = receipt(vec![]);
        assert!(beyond.is_beyond_provisioned() && !served.is_beyond_provisioned());
        assert_eq!(
            UsageClass::of_line(&beyond, &beyond.lines[0]),
            Some(UsageClass::Serverless { memory_gb: 2 })
        );
        assert_eq!(
            UsageClass::of_line(&served, &served.lines[0]),
            Some(UsageClass::ProvisionedConcurrency { memory_gb: 2 })
        );
    }

    #[test]
    fn billed_usage_types_are_read_with_or_without_a_region_prefix() {
        let cases = [
            (
                "USE1-Host:ml.m5.xlarge",
                UsageClass::Hosting {
                    instance_type: "ml.m5.xlarge".into(),
                },
            ),
            (
                "Host:ml.g4dn.xlarge",
                UsageClass::Hosting {
                    instance_type: "ml.g4dn.xlarge".into(),
                },
            ),
            (
                "APN1-AsyncInf:ml.g6.xlarge",
                UsageClass::AsyncInference {
                    instance_type: "ml.g6.xlarge".into(),
                },
            ),
            (
                "USE1-ServerlessInf:Mem-3GB",
                UsageClass::Serverless { memory_gb: 3 },
            ),
            (
                "EU-ProvisionedConcurrency:Usage-4GB",
                UsageClass::ProvisionedConcurrency { memory_gb: 4 },
            ),
            (
                "USE2-ProvisionedConcurrency:Mem-2GB",
                UsageClass::ProvisionedConcurrency { memory_gb: 2 },
            ),
            ("USE1-Hst:Data-Bytes-In", UsageClass::DataIn),
            ("USW2-Hst:Data-Bytes-Out", UsageClass::DataOut),
            // Should AWS bill an async endpoint's data apart, it is data all the same.
            ("USE1-AsyncInf:Data-Bytes-In", UsageClass::DataIn),
            ("AsyncInf:Data-Bytes-Out", UsageClass::DataOut),
            ("USE1-ServerlessInf:Data-Bytes-In", UsageClass::DataIn),
            ("USE1-Host:VolumeUsage.gp2", UsageClass::Storage),
            // A GovCloud bill's hosting instance-hours.
            (
                "UGW1-Hosting:ml.g5.24xlarge",
                UsageClass::Hosting {
                    instance_type: "ml.g5.24xlarge".into(),
                },
            ),
            // Charges of no endpoint: their usage type, without its region
            // prefix as the others', with or without one.
            (
                "USE1-Train:ml.p3.2xlarge",
                UsageClass::Other {
                    usage_type: "Train:ml.p3.2xlarge".into(),
                },
            ),
            (
                "Train:ml.p3.2xlarge",
                UsageClass::Other {
                    usage_type: "Train:ml.p3.2xlarge".into(),
                },
            ),
            (
                "EU-Notebk:ml.t3.medium",
                UsageClass::Other {
                    usage_type: "Notebk:ml.t3.medium".into(),
                },
            ),
            (
                "USE1-ServerlessInf:Mem-xGB",
                UsageClass::Other {
                    usage_type: "ServerlessInf:Mem-xGB".into(),
                },
            ),
            // No region prefix: a head of lower-case letters before its `-`.
            (
                "Studio-Spaces:ml.t3.medium",
                UsageClass::Other {
                    usage_type: "Studio-Spaces:ml.t3.medium".into(),
                },
            ),
        ];
        for (text, class) in cases {
            assert_eq!(UsageClass::from_usage_type(text), class, "{text}");
        }
        // Every label reads alike: no region prefix.
        for (text, label) in [
            ("USE1-Host:ml.m5.xlarge", "Host:ml.m5.xlarge"),
            ("USE1-Train:ml.p3.2xlarge", "Train:ml.p3.2xlarge"),
        ] {
            assert_eq!(UsageClass::from_usage_type(text).to_string(), label);
        }
    }
}
