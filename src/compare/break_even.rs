//! Where two plans cost the same.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::arith::{Overflow, add, div, mul, sub};
use super::engine::{CostCurve, PlanCost, calls_at_once, capacity_basis, served};
use super::format::{calls as fmt_calls, percent};
use super::{CompareError, PlanModel, UsageProfile};

/// What to do when the costs where two plans might cross are beyond a decimal.
const HINT_BREAK_EVEN: &str = "the plans' costs at the volumes where they could cross are \
     beyond an exact decimal: check the units of the prices (per call, per token, per hour, \
     per GB) and lower the prices, fees or volumes per call";

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
///
/// The points and regions are where the cost curves cross, at any volume. A plan
/// cannot serve more calls than its capacity
/// ([`PlanCost::capacity_calls`](super::PlanCost::capacity_calls)): a crossing
/// beyond the capacity of either plan lists it in
/// [`BreakEvenPoint::beyond_capacity`], and the summary says the plan would be
/// cheaper only there, which of the two is cheaper at every volume both can serve
/// ("ml.m5.xlarge x1 would be cheaper only above 3,358,000 calls per month, beyond
/// the 3,285,000 it can serve at 1 call per instance: pay per use is cheaper at
/// every volume it can serve").
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakEven {
    /// The two plans, in the order they were given.
    pub plans: [String; 2],
    /// Call volumes where the two cost the same (cheaper plan changes), ascending.
    pub points: Vec<BreakEvenPoint>,
    /// The volume ranges with the plan that is cheaper in each, from 0 calls up.
    pub regions: Vec<Region>,
    /// The capacity of each plan of the pair whose capacity is known, keyed by plan
    /// name ([`PlanCost::capacity_calls`](super::PlanCost::capacity_calls)): the
    /// regions past it are volumes that plan cannot serve.
    #[serde(default)]
    pub capacity_calls: BTreeMap<String, Decimal>,
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
    /// For plans of the pair that provision capacity (instances, provisioned
    /// concurrency): their utilisation at this volume (busy ÷ provisioned time),
    /// keyed by plan name. Empty when neither does or the latency is unknown.
    pub utilisation: BTreeMap<String, Decimal>,
    /// The plans of the pair that cannot serve this many calls (more than their
    /// [`capacity_calls`](BreakEven::capacity_calls)): the crossing is one they
    /// would make only beyond what they serve. Empty when both can.
    #[serde(default)]
    pub beyond_capacity: Vec<String>,
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

pub(crate) fn break_even(
    a: &PlanCost,
    b: &PlanCost,
    profile: &UsageProfile,
) -> Result<BreakEven, CompareError> {
    let (ca, cb) = (&a.curve, &b.curve);
    let pair = format!("`{}` and `{}`", a.plan.name, b.plan.name);
    let crossing = |o: Overflow| {
        o.of(
            format!("the difference in cost between plans {pair} where they could break even"),
            HINT_BREAK_EVEN,
        )
    };
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
    // The plans cross or part beyond MAX_BREAK_EVEN_CALLS (on the last, unbounded
    // segment, one between two kinks past it, or where a stretch of equal cost ends).
    let mut crosses_beyond = false;
    // Where they do, when a decimal holds it: the verdict above the last event is
    // the one below these.
    let mut beyond: Vec<Decimal> = Vec::new();
    for (i, &lo) in starts.iter().enumerate() {
        let hi = starts.get(i + 1).copied();
        // The difference's slope right of `u`.
        let slope_at = |u: Decimal| {
            ca.try_marginal_usd_per_call(u)
                .and_then(|ma| sub(ma, cb.try_marginal_usd_per_call(u)?))
                .map_err(crossing)
        };
        let slope = slope_at(lo)?;
        let at_lo = difference(ca, cb, lo).map_err(crossing)?;
        if slope.is_zero() {
            if at_lo.is_zero() {
                // The plans coincide on this whole segment: its ends are events, those
                // past MAX_BREAK_EVEN_CALLS changes beyond, unless the plans coincide
                // on the segment beside it too (the same cost equal at 0 on both
                // sides: two like plans whose common kink is past it do not part).
                let before = match i.checked_sub(1) {
                    Some(j) => !slope_at(starts[j])?.is_zero(),
                    None => false,
                };
                let after = match hi {
                    Some(hi) => !slope_at(hi)?.is_zero(),
                    None => false,
                };
                for (end, parts) in [
                    (Some(lo).filter(|lo| *lo > Decimal::ZERO), before),
                    (hi, after),
                ] {
                    let Some(end) = end else { continue };
                    if end <= max_calls {
                        events.push(end);
                    } else if parts {
                        crosses_beyond = true;
                        beyond.push(end);
                    }
                }
            }
            continue;
        }
        let Ok(root) = div(at_lo, slope).and_then(|step| sub(lo, step)) else {
            // Beyond any representable volume: ahead when the difference and its
            // slope have opposite signs (it shrinks towards zero).
            crosses_beyond |= hi.is_none() && at_lo.is_sign_negative() != slope.is_sign_negative();
            continue;
        };
        // A root off the segment is where the lines would cross, not where they do.
        let on_segment = root >= lo && root > Decimal::ZERO && hi.is_none_or(|hi| root <= hi);
        if on_segment && root <= max_calls {
            events.push(root.normalize());
        } else if on_segment {
            // Past MAX_BREAK_EVEN_CALLS, on the last segment or between two kinks
            // beyond it (provisioned concurrency can serve more calls than that).
            crosses_beyond = true;
            beyond.push(root);
        }
    }
    events.sort();
    events.dedup();

    // The cheaper plan between consecutive events; merge neighbours with the same verdict.
    let verdict = |u: Decimal| -> Result<Verdict, Overflow> {
        let d = difference(ca, cb, u)?;
        Ok(if d < Decimal::ZERO {
            Verdict::A
        } else if d > Decimal::ZERO {
            Verdict::B
        } else {
            Verdict::Same
        })
    };
    let mut regions: Vec<(Decimal, Option<Decimal>, Verdict)> = Vec::new();
    let mut lo = Decimal::ZERO;
    for (i, &hi) in events
        .iter()
        .chain(std::iter::once(&Decimal::MAX))
        .enumerate()
    {
        let last = i == events.len();
        // The last range runs on past MAX_BREAK_EVEN_CALLS: its verdict is the one
        // before the plans cross or part again beyond it, not one past that.
        let next = if last {
            beyond.iter().copied().filter(|x| *x > lo).min()
        } else {
            Some(hi)
        };
        let probe = match next {
            Some(hi) => add(lo, hi).and_then(|x| div(x, Decimal::TWO)),
            None => add(lo, lo.max(Decimal::ONE)),
        };
        let v = probe.and_then(verdict).map_err(crossing)?;
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
        .map(|u| {
            let at = |figure: &str| {
                let what = format!(
                    "{figure} where plans {pair} break even ({} calls per {})",
                    fmt_calls(u),
                    profile.period
                );
                move |o: Overflow| o.of(what.clone(), HINT_BREAK_EVEN)
            };
            let mut utilisation = BTreeMap::new();
            for p in [a, b] {
                let busy = utilisation_at(p, profile, u)
                    .map_err(at(&format!("the utilisation of `{}`", p.plan.name)))?;
                if let Some(x) = busy {
                    utilisation.insert(p.plan.name.clone(), x);
                }
            }
            Ok(BreakEvenPoint {
                calls_per_period: u,
                cost_usd: ca.try_cost_usd(u).map_err(at("the cost"))?,
                utilisation,
                beyond_capacity: [a, b]
                    .iter()
                    .filter(|p| p.capacity_calls.is_some_and(|c| u > c))
                    .map(|p| p.plan.name.clone())
                    .collect(),
            })
        })
        .collect::<Result<_, CompareError>>()?;
    let summary = summarise(a, b, &regions, &points, profile, crosses_beyond)?;
    Ok(BreakEven {
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
        capacity_calls: [a, b]
            .iter()
            .filter_map(|p| Some((p.plan.name.clone(), p.capacity_calls?)))
            .collect(),
    })
}

/// `cost_a(u) − cost_b(u)`, part by part: fixed parts, per-call parts, overage. Two
/// large costs that nearly agree differ by a small figure, which this reaches
/// without computing either cost.
fn difference(ca: &CostCurve, cb: &CostCurve, u: Decimal) -> Result<Decimal, Overflow> {
    let fixed = sub(ca.fixed_usd, cb.fixed_usd)?;
    let per_call = mul(sub(ca.usd_per_call, cb.usd_per_call)?, u)?;
    let d = add(fixed, per_call)?;
    sub(add(d, overage(ca, u)?)?, overage(cb, u)?)
}

/// What the calls above a curve's included calls add at `u` calls.
fn overage(curve: &CostCurve, u: Decimal) -> Result<Decimal, Overflow> {
    match (curve.included_calls, curve.overage_usd_per_call) {
        (Some(included), Some(overage)) if u > included => mul(overage, sub(u, included)?),
        _ => Ok(Decimal::ZERO),
    }
}

/// `calls × latency / provisioned seconds` for a plan that provisions capacity.
fn utilisation_at(
    plan: &PlanCost,
    profile: &UsageProfile,
    calls: Decimal,
) -> Result<Option<Decimal>, Overflow> {
    let Some(provisioned) = plan.provisioned_seconds else {
        return Ok(None);
    };
    if profile.mean_latency.is_zero() || provisioned.is_zero() {
        return Ok(None);
    }
    let latency = Decimal::from_i128_with_scale(profile.mean_latency.as_nanos() as i128, 9);
    let serving = mul(provisioned, Decimal::from(calls_at_once(&plan.plan)))?;
    Ok(Some(div(mul(calls, latency)?, serving)?.normalize()))
}

/// The analysis in one sentence. When a crossing lies beyond the capacity of the
/// plan of the pair that serves fewer calls (the first, on a tie), it is stated as
/// one that plan would make only there, after what the crossings within it say.
fn summarise(
    a: &PlanCost,
    b: &PlanCost,
    regions: &[(Decimal, Option<Decimal>, Verdict)],
    points: &[BreakEvenPoint],
    profile: &UsageProfile,
    crosses_beyond: bool,
) -> Result<String, CompareError> {
    let limited = [a, b]
        .into_iter()
        .filter_map(|p| Some((p.capacity_calls?, p)))
        .reduce(|least, x| if x.0 < least.0 { x } else { least });
    let Some((capacity, limited)) = limited else {
        return summarise_costs(a, b, regions, points, profile, crosses_beyond, true);
    };
    let Some(first) = points.iter().position(|p| p.calls_per_period > capacity) else {
        return summarise_costs(a, b, regions, points, profile, crosses_beyond, true);
    };
    let plan = |v: Verdict| match v {
        Verdict::A => Some(a),
        Verdict::B => Some(b),
        Verdict::Same => None,
    };
    let per = format!("calls per {}", profile.period);
    // The regions up to the capacity, the last one open: volumes the plan can serve.
    let mut within = regions[..=first].to_vec();
    if let Some(last) = within.last_mut() {
        last.1 = None;
    }
    let u = fmt_calls(points[first].calls_per_period);
    let basis = capacity_basis(&limited.plan);
    let can_serve = |who: &str| format!("the {} {who} can serve {basis}", served(capacity));
    let tail = match plan(regions[first + 1].2) {
        Some(p) => format!(
            "{} would be cheaper only above {u} {per}, beyond {}",
            p.plan.name,
            can_serve(if p.plan.name == limited.plan.name {
                "it"
            } else {
                &limited.plan.name
            })
        ),
        None => format!(
            "{} and {} would cost the same only above {u} {per}, beyond {}",
            a.plan.name,
            b.plan.name,
            can_serve(&limited.plan.name)
        ),
    };
    Ok(match within.as_slice() {
        [(_, _, v)] => match plan(*v) {
            Some(p) => format!(
                "{tail}: {} is cheaper at every volume it can serve",
                p.plan.name
            ),
            None => format!(
                "{tail}: {} and {} cost the same at every volume {} can serve",
                a.plan.name, b.plan.name, limited.plan.name
            ),
        },
        _ => format!(
            "{}; {tail}",
            summarise_costs(a, b, &within, &points[..first], profile, false, false)?
        ),
    })
}

/// The analysis in one sentence, of where the cost curves cross. With `ends`, the
/// range of volumes a plan is cheaper in up to the highest ends at its capacity,
/// when known ("…, up to the 3,285,000 it can serve at 1 call per instance").
fn summarise_costs(
    a: &PlanCost,
    b: &PlanCost,
    regions: &[(Decimal, Option<Decimal>, Verdict)],
    points: &[BreakEvenPoint],
    profile: &UsageProfile,
    crosses_beyond: bool,
    ends: bool,
) -> Result<String, CompareError> {
    let plan = |v: Verdict| match v {
        Verdict::A => a.plan.name.as_str(),
        Verdict::B => b.plan.name.as_str(),
        Verdict::Same => "",
    };
    let per = format!("calls per {}", profile.period);
    let n = |u: &Decimal| fmt_calls(*u);
    // Where the plan cheaper at the highest volumes stops serving: its capacity,
    // unless the plans may cross again before it (beyond the volumes reported).
    let capacity_of = |v: Verdict| {
        let p = match v {
            Verdict::A => a,
            Verdict::B => b,
            Verdict::Same => return None,
        };
        p.capacity_calls
            .filter(|c| ends && (!crosses_beyond || *c <= Decimal::from(MAX_BREAK_EVEN_CALLS)))
            .map(|c| (c, capacity_basis(&p.plan)))
    };
    let up_to = |v: Verdict| {
        capacity_of(v)
            .map(|(c, basis)| format!(", up to the {} it can serve {basis}", served(c)))
            .unwrap_or_default()
    };
    // The last region's plan stops being cheaper past the volumes reported.
    let beyond = if crosses_beyond {
        format!(" (up to 10^18 {per}: they cross again beyond)")
    } else {
        String::new()
    };
    // "(ml.m5.xlarge x1 at 38.1% utilisation)" after the sentence, per crossing.
    let busy: Vec<String> = points
        .iter()
        .filter(|p| !p.utilisation.is_empty())
        .map(|p| {
            let who: Vec<String> = p
                .utilisation
                .iter()
                .map(|(name, x)| {
                    let serverless = [a, b].iter().any(|p| {
                        p.plan.name == *name && matches!(p.plan.model, PlanModel::Serverless(_))
                    });
                    let beyond = match (*x > Decimal::ONE, serverless) {
                        (false, _) => "",
                        (true, false) => ", more than it can serve",
                        (true, true) => ", more than its provisioned concurrency serves",
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
    Ok(match regions {
        [(_, _, Verdict::Same)] if crosses_beyond => format!(
            "{} and {} cost the same at every volume up to 10^18 {per}: they part only beyond",
            a.plan.name, b.plan.name
        ),
        [(_, _, Verdict::Same)] => format!(
            "{} and {} cost the same at every volume",
            a.plan.name, b.plan.name
        ),
        [(_, _, v)] => {
            let other = if *v == Verdict::A { b } else { a };
            let cheaper = if *v == Verdict::A { a } else { b };
            let less = sub(other.cost_usd, cheaper.cost_usd).map_err(|o| {
                o.of(
                    format!(
                        "the difference between plans `{}` and `{}`",
                        other.plan.name, cheaper.plan.name
                    ),
                    super::arith::HINT_INPUTS,
                )
            })?;
            if less.is_zero() {
                // The plans touch at the profile's volume and nowhere else.
                format!(
                    "{} costs the same as {} at {} {per} and less at every other volume",
                    cheaper.plan.name,
                    other.plan.name,
                    fmt_calls(profile.calls_per_period),
                )
            } else if let Some((c, basis)) = capacity_of(*v) {
                format!(
                    "{} is cheaper at every volume up to the {} it can serve {basis}: it {} \
                     with {} ({} USD less at {} {per})",
                    cheaper.plan.name,
                    served(c),
                    if crosses_beyond {
                        format!("would break even only beyond 10^18 {per}")
                    } else {
                        "never breaks even".into()
                    },
                    other.plan.name,
                    super::format::usd(less, 2),
                    fmt_calls(profile.calls_per_period),
                )
            } else if crosses_beyond {
                format!(
                    "{} is cheaper at every volume up to 10^18 {per}: it breaks even with {} \
                     only beyond ({} USD less at {} {per})",
                    cheaper.plan.name,
                    other.plan.name,
                    super::format::usd(less, 2),
                    fmt_calls(profile.calls_per_period),
                )
            } else {
                format!(
                    "{} is cheaper at every volume: it never breaks even with {} ({} USD less \
                     at {} {per})",
                    cheaper.plan.name,
                    other.plan.name,
                    super::format::usd(less, 2),
                    fmt_calls(profile.calls_per_period),
                )
            }
        }
        [(_, Some(u), below), (_, None, above)]
            if *below != Verdict::Same && *above != Verdict::Same =>
        {
            // A crossing below one call: in whole calls, cheaper from the first.
            let first = if *u < Decimal::ONE {
                ", so from the first call"
            } else {
                ""
            };
            format!(
                "{} is cheaper above {} {per}{first}{}{beyond}{busy}; {} below",
                plan(*above),
                n(u),
                up_to(*above),
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
                        (_, None) => format!("above {}{unit}{}", n(from), up_to(*v)),
                    };
                    match (i, v) {
                        (0, Verdict::Same) => format!("both cost the same {range}"),
                        (_, Verdict::Same) => format!("the same {range}"),
                        (0, v) => format!("{} is cheaper {range}", plan(*v)),
                        (_, v) => format!("{} {range}", plan(*v)),
                    }
                })
                .collect();
            format!("{}{beyond}{busy}", clauses.join(", "))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Comparison, Period, Plan, RateTable, ServerlessPlan, UsageProfile};
    use rust_decimal::Decimal;
    use std::time::Duration;

    /// Two like plans whose common kink lies past the largest volume reported cost
    /// the same on both sides of it: they never part, beyond or not.
    #[test]
    fn like_plans_whose_common_kink_is_past_the_largest_volume_never_part() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let plan = ServerlessPlan::new(1024)
            .unwrap()
            .with_provisioned_concurrency(200)
            .unwrap();
        let rates = RateTable::new("us-east-1")
            .with_rate(plan.duration_key("us-east-1"), d("0.0000233"))
            .unwrap()
            .with_rate(plan.standing_key("us-east-1").unwrap(), d("0.0000048"))
            .unwrap()
            .with_rate(
                plan.beyond_provisioned_key("us-east-1").unwrap(),
                d("0.00004"),
            )
            .unwrap();
        // Over a year at 4 ns a call, 200 provisioned serve 200 × 31,536,000 s ÷
        // 4 × 10^-9 s = 1.5768 × 10^18 calls, past 10^18: both plans have that kink.
        let profile = UsageProfile::builder()
            .period(Period::Year)
            .calls_per_period(0)
            .mean_latency(Duration::from_nanos(4))
            .build()
            .unwrap();
        let plans = [
            Plan::from(plan.clone()).named("a"),
            Plan::from(plan).named("b"),
        ];
        let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
        assert_eq!(
            comparison.plan("a").unwrap().curve.included_calls,
            Some(d("1576800000000000000"))
        );
        assert_eq!(
            comparison.break_evens[0].summary,
            "a and b cost the same at every volume"
        );
    }
}
