//! Where two plans cost the same.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::UsageProfile;
use super::engine::PlanCost;
use super::format::{calls as fmt_calls, percent};

/// Crossings beyond this many calls per period are not reported: at such volumes the
/// plans never break even in practice.
pub const MAX_BREAK_EVEN_CALLS: u64 = 1_000_000_000_000_000_000;

/// Which of two plans is cheaper at each call volume, and the volumes where they cost
/// the same.
///
/// Both plans are [`CostCurve`](super::CostCurve)s of calls per period `U`. For two
/// straight lines with fixed parts `F` and per-call parts `v` the crossing is
/// `U* = (F_a − F_b) / (v_b − v_a)` — for pay per use `X` against a subscription `P`
/// over `T` periods, `U* = P·T / X`. A subscription with a quota is piecewise
/// linear, so against pay per use there can be no crossing, one, or two (cheaper only
/// between them, when the overage costs more than pay per use). Plans with the same
/// per-call cost never cross: one is cheaper at every volume.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakEven {
    /// The two plans, in the order they were given.
    pub plans: [String; 2],
    /// Call volumes where the two cost the same (cheaper plan changes), ascending.
    pub points: Vec<BreakEvenPoint>,
    /// The volume ranges with the plan that is cheaper in each, from 0 calls up.
    pub regions: Vec<Region>,
    /// The analysis in one sentence, e.g. "subscription is cheaper above 40,000
    /// calls per month; pay per use below".
    pub summary: String,
}

/// A call volume where two plans cost the same.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakEvenPoint {
    /// Calls per period at the crossing (exact, may be fractional).
    pub calls_per_period: Decimal,
    /// What either plan costs there.
    pub cost_usd: Decimal,
    /// For instance plans of the pair: their utilisation at this volume (busy ÷
    /// provisioned time), keyed by plan name. Empty when no instance plan is involved
    /// or the latency is unknown.
    pub utilisation: BTreeMap<String, Decimal>,
}

/// A range of call volumes `[from_calls, to_calls)` in which one plan is cheaper.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Lower end of the range (calls per period).
    pub from_calls: Decimal,
    /// Upper end; `None` = no upper end.
    pub to_calls: Option<Decimal>,
    /// The cheaper plan's name; `None` where both cost the same.
    pub cheaper: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    A,
    B,
    Same,
}

pub(crate) fn break_even(a: &PlanCost, b: &PlanCost, profile: &UsageProfile) -> BreakEven {
    let (ca, cb) = (&a.curve, &b.curve);
    let diff = |u: Decimal| ca.cost_usd(u) - cb.cost_usd(u);
    let max_calls = Decimal::from(MAX_BREAK_EVEN_CALLS);

    // Segments on which the difference is linear: split at each curve's kink.
    let mut starts = vec![Decimal::ZERO];
    starts.extend(
        [ca.kink(), cb.kink()]
            .into_iter()
            .flatten()
            .filter(|k| *k > Decimal::ZERO),
    );
    starts.sort();
    starts.dedup();

    let mut events: Vec<Decimal> = Vec::new();
    for (i, &lo) in starts.iter().enumerate() {
        let hi = starts.get(i + 1).copied();
        let slope = ca.marginal_usd_per_call(lo) - cb.marginal_usd_per_call(lo);
        let at_lo = diff(lo);
        if slope.is_zero() {
            if at_lo.is_zero() {
                // The plans coincide on this whole segment: its ends are events.
                events.extend(Some(lo).filter(|lo| *lo > Decimal::ZERO));
                events.extend(hi);
            }
            continue;
        }
        let Some(root) = at_lo
            .checked_div(slope)
            .and_then(|step| lo.checked_sub(step))
        else {
            continue; // beyond any representable volume
        };
        if root >= lo && root > Decimal::ZERO && root <= max_calls && hi.is_none_or(|hi| root <= hi)
        {
            events.push(root.normalize());
        }
    }
    events.sort();
    events.dedup();

    // The cheaper plan between consecutive events; merge neighbours with the same verdict.
    let verdict = |u: Decimal| {
        let d = diff(u);
        if d < Decimal::ZERO {
            Verdict::A
        } else if d > Decimal::ZERO {
            Verdict::B
        } else {
            Verdict::Same
        }
    };
    let mut regions: Vec<(Decimal, Option<Decimal>, Verdict)> = Vec::new();
    let mut lo = Decimal::ZERO;
    for (i, &hi) in events
        .iter()
        .chain(std::iter::once(&Decimal::MAX))
        .enumerate()
    {
        let last = i == events.len();
        let probe = if last {
            lo + lo.max(Decimal::ONE)
        } else {
            (lo + hi) / Decimal::TWO
        };
        let v = verdict(probe);
        let to = (!last).then_some(hi);
        match regions.last_mut() {
            Some(prev) if prev.2 == v => prev.1 = to,
            _ => regions.push((lo, to, v)),
        }
        lo = hi;
    }

    let name = |v: Verdict| match v {
        Verdict::A => Some(a.plan.name.clone()),
        Verdict::B => Some(b.plan.name.clone()),
        Verdict::Same => None,
    };
    let points: Vec<BreakEvenPoint> = regions
        .iter()
        .filter_map(|r| r.1)
        .map(|u| BreakEvenPoint {
            calls_per_period: u,
            cost_usd: ca.cost_usd(u),
            utilisation: [a, b]
                .into_iter()
                .filter_map(|p| utilisation_at(p, profile, u).map(|x| (p.plan.name.clone(), x)))
                .collect(),
        })
        .collect();
    let summary = summarise(a, b, &regions, &points, profile);
    BreakEven {
        plans: [a.plan.name.clone(), b.plan.name.clone()],
        points,
        regions: regions
            .into_iter()
            .map(|(from, to, v)| Region {
                from_calls: from,
                to_calls: to,
                cheaper: name(v),
            })
            .collect(),
        summary,
    }
}

/// `calls × latency / provisioned seconds` for an instance plan.
fn utilisation_at(plan: &PlanCost, profile: &UsageProfile, calls: Decimal) -> Option<Decimal> {
    let provisioned = plan.provisioned_seconds?;
    if profile.mean_latency.is_zero() || provisioned.is_zero() {
        return None;
    }
    let latency = Decimal::from_i128_with_scale(profile.mean_latency.as_nanos() as i128, 9);
    Some((calls * latency / provisioned).normalize())
}

fn summarise(
    a: &PlanCost,
    b: &PlanCost,
    regions: &[(Decimal, Option<Decimal>, Verdict)],
    points: &[BreakEvenPoint],
    profile: &UsageProfile,
) -> String {
    let plan = |v: Verdict| match v {
        Verdict::A => a.plan.name.as_str(),
        Verdict::B => b.plan.name.as_str(),
        Verdict::Same => "",
    };
    let per = format!("calls per {}", profile.period);
    let n = |u: &Decimal| fmt_calls(*u);
    // "(ml.m5.xlarge x1 at 38.1% utilisation)" after the sentence, per crossing.
    let busy: Vec<String> = points
        .iter()
        .filter(|p| !p.utilisation.is_empty())
        .map(|p| {
            let who: Vec<String> = p
                .utilisation
                .iter()
                .map(|(name, x)| {
                    let beyond = if *x > Decimal::ONE {
                        ", more than it serves one call at a time"
                    } else {
                        ""
                    };
                    format!("{name} at {} utilisation{beyond}", percent(*x))
                })
                .collect();
            if points.len() == 1 {
                who.join(", ")
            } else {
                format!("at {}: {}", n(&p.calls_per_period), who.join(", "))
            }
        })
        .collect();
    let busy = if busy.is_empty() {
        String::new()
    } else {
        format!(" ({})", busy.join("; "))
    };
    match regions {
        [(_, _, Verdict::Same)] => format!(
            "{} and {} cost the same at every volume",
            a.plan.name, b.plan.name
        ),
        [(_, _, v)] => {
            let other = if *v == Verdict::A { b } else { a };
            let cheaper = if *v == Verdict::A { a } else { b };
            format!(
                "{} is cheaper at every volume: it never breaks even with {} ({} USD less at \
                 {} {per})",
                cheaper.plan.name,
                other.plan.name,
                super::format::usd(other.cost_usd - cheaper.cost_usd, 2),
                fmt_calls(profile.calls_per_period),
            )
        }
        [(_, Some(u), below), (_, None, above)]
            if *below != Verdict::Same && *above != Verdict::Same =>
        {
            format!(
                "{} is cheaper above {} {per}{busy}; {} below",
                plan(*above),
                n(u),
                plan(*below)
            )
        }
        _ => {
            // "pay per use is cheaper below 32,000 calls per month, subscription between
            // 32,000 and 53,333, pay per use above 53,333"
            let clauses: Vec<String> = regions
                .iter()
                .enumerate()
                .map(|(i, (from, to, v))| {
                    let unit = if i == 0 {
                        format!(" {per}")
                    } else {
                        String::new()
                    };
                    let range = match (from.is_zero(), to) {
                        (true, Some(to)) => format!("below {}{unit}", n(to)),
                        (false, Some(to)) => format!("between {} and {}{unit}", n(from), n(to)),
                        (_, None) => format!("above {}{unit}", n(from)),
                    };
                    match (i, v) {
                        (0, Verdict::Same) => format!("both cost the same {range}"),
                        (_, Verdict::Same) => format!("the same {range}"),
                        (0, v) => format!("{} is cheaper {range}", plan(*v)),
                        (_, v) => format!("{} {range}", plan(*v)),
                    }
                })
                .collect();
            format!("{}{busy}", clauses.join(", "))
        }
    }
}
