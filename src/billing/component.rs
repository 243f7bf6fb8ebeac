//! Inference components: the share of an instance one copy reserves, and the share
//! of a variant's instances nobody reserved.
//!
//! A component's copy reserves accelerators, CPU cores and memory on an instance
//! ([`CopyReservation`]). Its share of the instance is decided by one resource:
//!
//! - **accelerators**, when the copy reserves some: `accelerators ÷ the instance's
//!   accelerators` (1 of an ml.g5.12xlarge's 4 GPUs is 0.25 of the instance);
//! - otherwise the **dominant** of CPU and memory: the larger of `cores ÷ vCPUs` and
//!   `memory ÷ the instance's memory` (a copy that takes 2 of 4 vCPUs and 4 of 16 GiB
//!   reserves half the instance: nothing else fits in the cores it leaves).
//!
//! The instance's resources come from the Price List's product attributes (`gpu`,
//! `vCpu`, `memory`) carried by the instance-hour rate, or from
//! [`ClientBuilder::instance_resources`](crate::ClientBuilder::instance_resources).
//! When they are unknown, the share is unknown and the call's compute line says so
//! (never a guess, never $0).

use super::{
    Allocation, CostLine, FS_PER_NANOSECOND, LineItem, QuantityUnit, RateResult, SharedTime,
    compute_line, unpriced,
};
use crate::endpoint::{ComponentProfile, CopyReservation, VariantBilling};
use crate::pricing::{InstanceResources, PriceOrigin};
use crate::usage::Usage;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Which resource decides a copy's share of an instance.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservedBy {
    /// Accelerator devices (GPUs, Inferentia or Trainium devices).
    Accelerators,
    /// vCPUs (the larger share, for a copy without accelerators).
    Cpu,
    /// Memory (the larger share, for a copy without accelerators).
    Memory,
}

impl ReservedBy {
    /// `accelerators`, `cpu` or `memory`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservedBy::Accelerators => "accelerators",
            ReservedBy::Cpu => "cpu",
            ReservedBy::Memory => "memory",
        }
    }
}

/// The share of one instance a copy of a component reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CopyShare {
    /// Between 0 (exclusive) and 1.
    pub(crate) of_instance: Decimal,
    pub(crate) by: ReservedBy,
}

/// Where an instance's resources were looked for: what a copy's share says when
/// they are unknown. Only a live Price List answer (or a cached one) carries them;
/// a reason must not say the Price List "did not say" when it was never asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourcesFrom {
    /// Stated with `ClientBuilder::instance_resources`.
    Stated,
    /// Carried by the instance-hour rate, which came from this source.
    Rate(PriceOrigin),
    /// The instance-hour rate is unknown, so nothing carried them.
    NoRate,
}

impl ResourcesFrom {
    /// The resources carried by `rate` (`None`: the rate is unknown).
    pub(crate) fn rate(rate: Option<PriceOrigin>) -> Self {
        rate.map_or(ResourcesFrom::NoRate, ResourcesFrom::Rate)
    }

    /// Why the resources are unknown, in a few words.
    fn why_unknown(self) -> &'static str {
        match self {
            ResourcesFrom::Stated => "ClientBuilder::instance_resources states none",
            ResourcesFrom::Rate(PriceOrigin::Live) => "the Price List did not say",
            ResourcesFrom::Rate(PriceOrigin::Cache) => "the cached Price List answer did not say",
            ResourcesFrom::Rate(PriceOrigin::Snapshot) => {
                "the rate is from the price snapshot, which carries no instance resources: \
                 only a live Price List answer does"
            }
            ResourcesFrom::Rate(PriceOrigin::Override) => {
                "the rate is a price override, which carries no instance resources"
            }
            ResourcesFrom::NoRate => "the instance's rate, which would carry them, is unknown",
        }
    }
}

/// The share of an `instance_type` instance that one copy reserving `per_copy`
/// takes, or why it cannot be known (`from`: where `resources` came from).
pub(crate) fn copy_share(
    per_copy: &CopyReservation,
    instance_type: &str,
    resources: Option<&InstanceResources>,
    from: ResourcesFrom,
) -> Result<CopyShare, String> {
    let state = "state them with ClientBuilder::instance_resources";
    let why = from.why_unknown();
    if let Some(wanted) = per_copy.accelerators.filter(|a| *a > Decimal::ZERO) {
        let Some(have) = resources.and_then(|r| r.accelerators) else {
            return Err(format!(
                "the accelerators of an {instance_type} are unknown ({why}); {state}"
            ));
        };
        if have == 0 {
            return Err(format!(
                "a copy reserves {wanted} accelerator(s) but an {instance_type} has none"
            ));
        }
        return within_one(
            wanted / Decimal::from(have),
            ReservedBy::Accelerators,
            instance_type,
        );
    }
    // Each resource the copy reserves: its share of the instance, or `None` when the
    // instance's amount of it is unknown (then so is the dominant share).
    let cpu = per_copy
        .cpu_cores
        .filter(|c| *c > Decimal::ZERO)
        .map(|cores| {
            let vcpu = resources.and_then(|r| r.vcpu).filter(|v| *v > 0)?;
            Some(cores / Decimal::from(vcpu))
        });
    let memory = per_copy.memory_mb.filter(|m| *m > 0).map(|mb| {
        let gib = resources
            .and_then(|r| r.memory_gib)
            .filter(|g| *g > Decimal::ZERO)?;
        (Decimal::from(mb) / Decimal::from(1024)).checked_div(gib)
    });
    let unknown = match (cpu, memory) {
        (Some(None), Some(None)) => Some(format!("the vCPUs and memory of an {instance_type} are")),
        (Some(None), _) => Some(format!("the vCPUs of an {instance_type} are")),
        (_, Some(None)) => Some(format!("the memory of an {instance_type} is")),
        _ => None,
    };
    if let Some(unknown) = unknown {
        return Err(format!(
            "{unknown} unknown ({why}) while a copy reserves some, so its share of the \
             instance is unknown; {state}"
        ));
    }
    match (cpu.flatten(), memory.flatten()) {
        (Some(c), Some(m)) if m > c => within_one(m, ReservedBy::Memory, instance_type),
        (Some(c), _) => within_one(c, ReservedBy::Cpu, instance_type),
        (None, Some(m)) => within_one(m, ReservedBy::Memory, instance_type),
        (None, None) => {
            Err("the component reserves no accelerators, CPU cores or memory per copy".to_owned())
        }
    }
}

fn within_one(share: Decimal, by: ReservedBy, instance_type: &str) -> Result<CopyShare, String> {
    if share > Decimal::ONE {
        return Err(format!(
            "a copy reserves more {} than an {instance_type} has ({} of an instance)",
            by.as_str(),
            share.round_dp(4).normalize()
        ));
    }
    // Rounded down to 18 places, as `fit_to_instances` rounds (down: the copies
    // never reserve more than the instances have): a share like 2 ÷ 48 vCPUs left
    // at 28 places has a mantissa of about 4·10²⁶, and times the femtoseconds of a
    // call longer than a millisecond it would pass 128 bits. A share below 10⁻¹⁸
    // (no real copy's) is kept as it is rather than made 0.
    let rounded = share.round_dp_with_strategy(18, rust_decimal::RoundingStrategy::ToZero);
    Ok(CopyShare {
        of_instance: if rounded.is_zero() { share } else { rounded },
        by,
    })
}

/// The compute line of a call to inference component `name`: the copy-hours the
/// call was allocated (by the component's sharing clock, over its copies; or its
/// busy time under other allocations) × the share of an instance one copy
/// reserves, as instance-hours, rounded down like every processor-sharing share.
/// Unpriced, with why, when the variant does not host the component or its share
/// is unknown.
pub(crate) fn component_compute_line(
    name: &str,
    share: Option<&Result<CopyShare, String>>,
    billing: &VariantBilling,
    usage: &Usage,
    allocation: Allocation,
    shared_copy_time: Option<SharedTime>,
    rate: &RateResult,
) -> CostLine {
    let share = match share {
        Some(Ok(share)) => share,
        Some(Err(why)) => {
            return unpriced(
                LineItem::Compute,
                Decimal::ZERO,
                QuantityUnit::InstanceHours,
                format!("inference component `{name}`: {why}"),
            );
        }
        None => {
            return unpriced(
                LineItem::Compute,
                Decimal::ZERO,
                QuantityUnit::InstanceHours,
                format!(
                    "inference component `{name}` is not among the variant's components as \
                     discovered: its share of the instances is unknown"
                ),
            );
        }
    };
    let copy_time = match (allocation, shared_copy_time) {
        (Allocation::ProcessorSharing, Some(shared)) => shared,
        _ => SharedTime::from_fs(usage.latency.as_nanos().saturating_mul(FS_PER_NANOSECOND)),
    };
    // The copy's share of an instance, rounded down to the instance-femtosecond,
    // then priced once, as any processor-sharing share.
    let instance_time = copy_time.times(share.of_instance);
    compute_line(
        billing,
        usage,
        Allocation::ProcessorSharing,
        Some(instance_time),
        None,
        rate,
    )
}

/// The copy shares of the components on a variant's `instances` (in
/// `components`' order, each with its share), scaled down when the copies reserve
/// more than the instances in all, each counted by its own dominant resource (a
/// CPU-heavy and a memory-heavy component side by side on one instance can each
/// hold most of it): each known share × instances ÷ Σ copies × share, rounded
/// down, so that the components' receipts never add up to more than the
/// instances cost. Returns whether they were scaled.
pub(crate) fn fit_to_instances(
    instances: u32,
    components: &[&ComponentProfile],
    shares: &mut [(String, Result<CopyShare, String>)],
) -> bool {
    let reserved: Decimal = components
        .iter()
        .zip(shares.iter())
        .filter_map(|(c, (_, share))| {
            let share = share.as_ref().ok()?;
            share.of_instance.checked_mul(Decimal::from(c.copies))
        })
        .fold(Decimal::ZERO, |sum, s| sum.saturating_add(s));
    let instances = Decimal::from(instances);
    if instances.is_zero() || reserved <= instances {
        return false;
    }
    for (_, share) in shares.iter_mut() {
        if let Ok(share) = share {
            share.of_instance = (share.of_instance * instances / reserved)
                .round_dp_with_strategy(18, rust_decimal::RoundingStrategy::ToZero);
        }
    }
    true
}

/// The share of a variant's `instances` that no component reserves: 1 − Σ copies ×
/// copy share ÷ instances, at least 0; `None` when a component's share is unknown.
pub(crate) fn unreserved_fraction<'a>(
    instances: u32,
    components: impl IntoIterator<Item = (&'a ComponentProfile, &'a Result<CopyShare, String>)>,
) -> Option<Decimal> {
    if instances == 0 {
        return None;
    }
    let mut reserved = Decimal::ZERO;
    for (component, share) in components {
        let share = share.as_ref().ok()?;
        reserved += share.of_instance * Decimal::from(component.copies);
    }
    let fraction = Decimal::ONE - reserved / Decimal::from(instances);
    Some(fraction.max(Decimal::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resources carried by a live Price List answer.
    const LIVE: ResourcesFrom = ResourcesFrom::Rate(PriceOrigin::Live);

    /// The reason says where the resources were looked for: the Price List "did not
    /// say" only when it was asked.
    #[test]
    fn an_unknown_share_says_where_the_resources_were_looked_for() {
        let one_gpu = CopyReservation::accelerators(Decimal::ONE);
        let unknown =
            |from: ResourcesFrom| copy_share(&one_gpu, "ml.g5.12xlarge", None, from).unwrap_err();
        let state = "; state them with ClientBuilder::instance_resources";
        assert_eq!(
            unknown(ResourcesFrom::Rate(PriceOrigin::Snapshot)),
            format!(
                "the accelerators of an ml.g5.12xlarge are unknown (the rate is from the \
                 price snapshot, which carries no instance resources: only a live Price \
                 List answer does){state}"
            )
        );
        assert_eq!(
            unknown(LIVE),
            format!(
                "the accelerators of an ml.g5.12xlarge are unknown (the Price List did not \
                 say){state}"
            )
        );
        assert_eq!(
            unknown(ResourcesFrom::Rate(PriceOrigin::Cache)),
            format!(
                "the accelerators of an ml.g5.12xlarge are unknown (the cached Price List \
                 answer did not say){state}"
            )
        );
        assert_eq!(
            unknown(ResourcesFrom::Rate(PriceOrigin::Override)),
            format!(
                "the accelerators of an ml.g5.12xlarge are unknown (the rate is a price \
                 override, which carries no instance resources){state}"
            )
        );
        assert_eq!(
            unknown(ResourcesFrom::NoRate),
            format!(
                "the accelerators of an ml.g5.12xlarge are unknown (the instance's rate, \
                 which would carry them, is unknown){state}"
            )
        );
        // CPU and memory shares say the same.
        let copy = CopyReservation::cpu_and_memory(Decimal::ONE, 1024);
        let err = copy_share(
            &copy,
            "ml.m5.xlarge",
            None,
            ResourcesFrom::Rate(PriceOrigin::Snapshot),
        )
        .unwrap_err();
        assert!(
            err.starts_with(
                "the vCPUs and memory of an ml.m5.xlarge are unknown (the rate is from the \
                 price snapshot"
            ),
            "{err}"
        );
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn g5_12xlarge() -> InstanceResources {
        InstanceResources::new(48, 192, 4)
    }

    #[test]
    fn accelerators_decide_when_a_copy_reserves_some() {
        let one_gpu = CopyReservation::accelerators(Decimal::ONE);
        let share = copy_share(&one_gpu, "ml.g5.12xlarge", Some(&g5_12xlarge()), LIVE).unwrap();
        assert_eq!(share.of_instance, dec("0.25"));
        assert_eq!(share.by, ReservedBy::Accelerators);
        let three = CopyReservation::accelerators(Decimal::from(3));
        let share = copy_share(&three, "ml.g5.12xlarge", Some(&g5_12xlarge()), LIVE).unwrap();
        assert_eq!(share.of_instance, dec("0.75"));
    }

    #[test]
    fn without_accelerators_the_dominant_of_cpu_and_memory_decides() {
        // ml.m5.xlarge: 4 vCPUs, 16 GiB.
        let m5 = InstanceResources::new(4, 16, 0);
        // 1 of 4 vCPUs (0.25) and 8 of 16 GiB (0.5): memory decides, half an instance.
        let copy = CopyReservation::cpu_and_memory(Decimal::ONE, 8192);
        let share = copy_share(&copy, "ml.m5.xlarge", Some(&m5), LIVE).unwrap();
        assert_eq!(
            (share.of_instance, share.by),
            (dec("0.5"), ReservedBy::Memory)
        );
        // 2 of 4 vCPUs (0.5) and 2 of 16 GiB (0.125): CPU decides.
        let copy = CopyReservation::cpu_and_memory(Decimal::TWO, 2048);
        let share = copy_share(&copy, "ml.m5.xlarge", Some(&m5), LIVE).unwrap();
        assert_eq!((share.of_instance, share.by), (dec("0.5"), ReservedBy::Cpu));
    }

    #[test]
    fn an_unknown_or_impossible_share_says_why() {
        let one_gpu = CopyReservation::accelerators(Decimal::ONE);
        let err = copy_share(&one_gpu, "ml.g5.12xlarge", None, LIVE).unwrap_err();
        assert!(
            err.contains("accelerators of an ml.g5.12xlarge are unknown"),
            "{err}"
        );
        assert!(err.contains("ClientBuilder::instance_resources"), "{err}");
        let m5 = InstanceResources::new(4, 16, 0);
        let err = copy_share(&one_gpu, "ml.m5.xlarge", Some(&m5), LIVE).unwrap_err();
        assert_eq!(
            err,
            "a copy reserves 1 accelerator(s) but an ml.m5.xlarge has none"
        );
        let five = CopyReservation::accelerators(Decimal::from(5));
        let err = copy_share(&five, "ml.g5.12xlarge", Some(&g5_12xlarge()), LIVE).unwrap_err();
        assert!(
            err.starts_with("a copy reserves more accelerators than"),
            "{err}"
        );
        let nothing = CopyReservation::default();
        assert!(copy_share(&nothing, "ml.m5.xlarge", Some(&m5), LIVE).is_err());
    }

    #[test]
    fn a_reserved_resource_the_instance_does_not_state_leaves_the_share_unknown() {
        // An ml.m5.xlarge whose vCPUs (4) are known and memory is not. A copy of 1
        // core and 12 GiB takes 1/4 of the cores and an unknown share of the memory
        // (on the real 16 GiB it would be 3/4, the dominant share): no guess.
        let cpu_known = InstanceResources {
            vcpu: Some(4),
            ..InstanceResources::default()
        };
        let copy = CopyReservation::cpu_and_memory(Decimal::ONE, 12 * 1024);
        let err = copy_share(&copy, "ml.m5.xlarge", Some(&cpu_known), LIVE).unwrap_err();
        assert!(
            err.contains("the memory of an ml.m5.xlarge is unknown"),
            "{err}"
        );
        assert!(err.contains("ClientBuilder::instance_resources"), "{err}");
        // Memory known (16 GiB), vCPUs not: a copy of 2 cores and 4 GiB.
        let memory_known = InstanceResources {
            memory_gib: Some(Decimal::from(16)),
            ..InstanceResources::default()
        };
        let copy = CopyReservation::cpu_and_memory(Decimal::TWO, 4096);
        let err = copy_share(&copy, "ml.m5.xlarge", Some(&memory_known), LIVE).unwrap_err();
        assert!(
            err.contains("the vCPUs of an ml.m5.xlarge are unknown"),
            "{err}"
        );
        // Neither known: both named.
        let err = copy_share(&copy, "ml.m5.xlarge", None, LIVE).unwrap_err();
        assert!(
            err.contains("the vCPUs and memory of an ml.m5.xlarge are unknown"),
            "{err}"
        );
        // What the copy does not reserve may be unknown: 1 of 4 vCPUs is 1/4 of
        // the instance; 4 of 16 GiB is 1/4 too.
        let cores = CopyReservation {
            cpu_cores: Some(Decimal::ONE),
            ..CopyReservation::default()
        };
        let share = copy_share(&cores, "ml.m5.xlarge", Some(&cpu_known), LIVE).unwrap();
        assert_eq!(
            (share.of_instance, share.by),
            (dec("0.25"), ReservedBy::Cpu)
        );
        let memory = CopyReservation {
            memory_mb: Some(4096),
            ..CopyReservation::default()
        };
        let share = copy_share(&memory, "ml.m5.xlarge", Some(&memory_known), LIVE).unwrap();
        assert_eq!(
            (share.of_instance, share.by),
            (dec("0.25"), ReservedBy::Memory)
        );
    }

    #[test]
    fn a_share_is_rounded_down_at_18_places_so_a_calls_time_times_it_fits_128_bits() {
        // 2 of an ml.g5.12xlarge's 48 vCPUs: 2 ÷ 48 = 0.041666…, rounded down at 18
        // places (not left at 28, 0.0416666666666666666666666667).
        let copy = CopyReservation::cpu_and_memory(Decimal::TWO, 1024);
        let share = copy_share(&copy, "ml.g5.12xlarge", Some(&g5_12xlarge()), LIVE).unwrap();
        assert_eq!(
            (share.of_instance, share.by),
            (dec("0.041666666666666666"), ReservedBy::Cpu)
        );
        // Its mantissa is at most 10¹⁸, so times the femtoseconds of any call up to
        // 3.4·10²⁰ fs (94 h) it stays within 128 bits: the fast path.
        let mantissa = share.of_instance.mantissa().unsigned_abs();
        assert!(mantissa <= 10u128.pow(18), "{mantissa}");
        assert!(mantissa.checked_mul(3_600_000 * 10u128.pow(15)).is_some());
        // A call of 1 s on the copy, one ml.g5.12xlarge at a stated 7.2 USD/h:
        // 10¹⁵ fs × 0.041666666666666666 = 41,666,666,666,666.666 → 41,666,666,666,666
        // instance-fs (rounded down); × 7.2 USD/h ÷ 3.6·10¹⁸ fs/h
        // = 83,333,333,333,332 × 10⁻¹⁸ USD → 0.000083333333 (rounded down at 12
        // places). The hours shown: 41,666,666,666,666 ÷ 3.6 = 11,574,074,074,073.88
        // atto-hours → 0.000011574074074073 h.
        let billing = VariantBilling::Instance {
            instance_type: "ml.g5.12xlarge".into(),
            instance_count: 1,
        };
        let usage = Usage::new(
            crate::usage::Operation::InvokeEndpoint,
            std::time::Duration::from_secs(1),
        );
        let rate: RateResult = Ok(crate::pricing::Rate::new(
            crate::pricing::PriceKey::hosting("us-east-1", "ml.g5.12xlarge"),
            dec("7.2"),
            crate::pricing::Provenance::new(PriceOrigin::Override),
        ));
        let line = component_compute_line(
            "llm",
            Some(&Ok(share)),
            &billing,
            &usage,
            Allocation::BusyTime,
            None,
            &rate,
        );
        assert_eq!(line.cost_usd(), Some(dec("0.000083333333")));
        assert_eq!(line.quantity, dec("0.000011574074074073"));
    }

    #[test]
    fn the_unreserved_fraction_is_what_no_copy_holds() {
        // 2 × ml.g5.12xlarge (8 GPUs): 1 copy of 1 GPU and 1 copy of 3 GPUs hold 4.
        let a = ComponentProfile::new(
            "a",
            "AllTraffic",
            1,
            CopyReservation::accelerators(Decimal::ONE),
        );
        let b = ComponentProfile::new(
            "b",
            "AllTraffic",
            1,
            CopyReservation::accelerators(Decimal::from(3)),
        );
        let shares = [
            copy_share(&a.per_copy, "ml.g5.12xlarge", Some(&g5_12xlarge()), LIVE),
            copy_share(&b.per_copy, "ml.g5.12xlarge", Some(&g5_12xlarge()), LIVE),
        ];
        let pairs = [(&a, &shares[0]), (&b, &shares[1])];
        assert_eq!(unreserved_fraction(2, pairs), Some(dec("0.5")));
        // Overcommitted: never below 0.
        assert_eq!(unreserved_fraction(1, pairs), Some(Decimal::ZERO));
        let unknown = Err("unknown".to_owned());
        assert_eq!(unreserved_fraction(2, [(&a, &unknown)]), None);
    }

    #[test]
    fn shares_that_reserve_more_than_the_instances_are_scaled_to_fit() {
        // One ml.m5.4xlarge (16 vCPUs, 64 GiB): a copy of 10 cores and 8 GiB holds
        // 10/16 = 0.625 of it by CPU, a copy of 4 cores and 40 GiB 40/64 = 0.625 by
        // memory; together 1.25 instances of 1. Scaled by 1 ÷ 1.25: 0.5 each.
        let m5_4xlarge = InstanceResources::new(16, 64, 0);
        let a = ComponentProfile::new(
            "a",
            "AllTraffic",
            1,
            CopyReservation::cpu_and_memory(Decimal::from(10), 8 * 1024),
        );
        let b = ComponentProfile::new(
            "b",
            "AllTraffic",
            1,
            CopyReservation::cpu_and_memory(Decimal::from(4), 40 * 1024),
        );
        let mut shares = vec![
            (
                "a".to_owned(),
                copy_share(&a.per_copy, "ml.m5.4xlarge", Some(&m5_4xlarge), LIVE),
            ),
            (
                "b".to_owned(),
                copy_share(&b.per_copy, "ml.m5.4xlarge", Some(&m5_4xlarge), LIVE),
            ),
        ];
        assert_eq!(shares[0].1.as_ref().unwrap().of_instance, dec("0.625"));
        assert_eq!(shares[1].1.as_ref().unwrap().of_instance, dec("0.625"));
        assert!(fit_to_instances(1, &[&a, &b], &mut shares));
        for (name, share) in &shares {
            assert_eq!(share.as_ref().unwrap().of_instance, dec("0.5"), "{name}");
        }
        let pairs = [(&a, &shares[0].1), (&b, &shares[1].1)];
        assert_eq!(unreserved_fraction(1, pairs), Some(Decimal::ZERO));
        // On two instances they fit as they are.
        let mut fits = vec![
            (
                "a".to_owned(),
                copy_share(&a.per_copy, "ml.m5.4xlarge", Some(&m5_4xlarge), LIVE),
            ),
            (
                "b".to_owned(),
                copy_share(&b.per_copy, "ml.m5.4xlarge", Some(&m5_4xlarge), LIVE),
            ),
        ];
        assert!(!fit_to_instances(2, &[&a, &b], &mut fits));
        assert_eq!(fits[0].1.as_ref().unwrap().of_instance, dec("0.625"));
    }
}
