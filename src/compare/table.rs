//! The comparison as a plain-text table.

use rust_decimal::Decimal;
use std::fmt;

use super::format::{bytes, calls, usd};
use super::{Comparison, PriceBasis, PriceTrend, Projection};

/// The table the CLI prints: one row per plan, cheapest first (a plan that cannot
/// serve the calls last, marked `over capacity`), then the break-even points in
/// words and the notes.
///
/// ```text
/// 100,000 calls per month (730 h) in us-east-1
///
/// plan          cost/month  per 1,000 calls  vs cheapest  prices
/// subscription      500.00           5.0000     cheapest  stated
/// pay per use     1,250.00          12.5000      +750.00  stated
///
/// Break-even:
/// - subscription is cheaper above 40,000 calls per month; pay per use below
/// ```
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.profile;
        writeln!(
            f,
            "{} calls per {} ({} h) in {}",
            calls(p.calls_per_period),
            self.period,
            // Whole hours (24, 730, 8,760), grouped as every other figure is.
            calls(self.hours_per_period),
            // Read from a ledger: no control character of its reaches the terminal.
            crate::redact::printable(&self.region)
        )?;
        let mut per_call = Vec::new();
        if !p.mean_latency.is_zero() {
            let ms = Decimal::from_i128_with_scale(p.mean_latency.as_nanos() as i128, 6);
            per_call.push(format!("{} ms", ms.normalize()));
        }
        if !p.bytes_in_per_call.is_zero() || !p.bytes_out_per_call.is_zero() {
            per_call.push(format!(
                "{} in, {} out",
                bytes(p.bytes_in_per_call),
                bytes(p.bytes_out_per_call)
            ));
        }
        if !p.tokens_in_per_call.is_zero() || !p.tokens_out_per_call.is_zero() {
            // `?` for a count no metered call reported (and none stated): unknown,
            // not zero.
            let tokens = |mean: Decimal, reported: Option<u64>| match reported {
                Some(0) if mean.is_zero() => "?".to_string(),
                _ => calls(mean),
            };
            let reported = p.tokens_reported;
            per_call.push(format!(
                "{} tokens in, {} tokens out",
                tokens(p.tokens_in_per_call, reported.map(|r| r.tokens_in)),
                tokens(p.tokens_out_per_call, reported.map(|r| r.tokens_out))
            ));
        }
        if !per_call.is_empty() {
            writeln!(f, "per call: {}", per_call.join(", "))?;
        }
        writeln!(f)?;

        let header = [
            "plan".to_string(),
            format!("cost/{}", self.period),
            "per 1,000 calls".to_string(),
            "vs cheapest".to_string(),
            "prices".to_string(),
        ];
        let rows: Vec<[String; 5]> = self
            .plans
            .iter()
            .map(|row| {
                [
                    row.plan.name.clone(),
                    usd(row.cost_usd, 2),
                    row.usd_per_1000_calls
                        .map(|x| usd(x, 4))
                        .unwrap_or_else(|| "-".into()),
                    if row.over_capacity {
                        "over capacity".into()
                    } else if row.difference_to_cheapest_usd.is_zero() {
                        "cheapest".into()
                    } else {
                        format!("+{}", usd(row.difference_to_cheapest_usd, 2))
                    },
                    row.rate_source.clone(),
                ]
            })
            .collect();
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line = format!(
                "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        if self.cheapest.is_none() {
            writeln!(
                f,
                "No plan can serve {} calls per {}: each is over capacity (see the notes)",
                calls(p.calls_per_period),
                self.period
            )?;
        }

        if !self.break_evens.is_empty() {
            writeln!(f)?;
            writeln!(f, "Break-even:")?;
            for be in &self.break_evens {
                writeln!(f, "- {}", be.summary)?;
            }
        }
        let notes: Vec<String> = self
            .plans
            .iter()
            .flat_map(|row| {
                row.notes
                    .iter()
                    .map(move |n| format!("- {}: {n}", row.plan.name))
            })
            .collect();
        if !notes.is_empty() {
            writeln!(f)?;
            writeln!(f, "Notes:")?;
            for note in notes {
                writeln!(f, "{note}")?;
            }
        }
        Ok(())
    }
}

/// The month-by-month table the CLI prints after the comparison: each plan's cost in
/// each month, the cheapest that month, the totals over the horizon (the cheapest
/// named of the plans that can serve the calls, those over capacity listed under the
/// table), how each plan's price moves, and each commitment's outlook in a sentence.
/// A projection read back (it is `Deserialize`) that holds fewer months than its
/// `horizon_months` shows the months it holds, a month missing from one plan as `-`;
/// it never panics.
///
/// ```text
/// Price trend: AWS on-demand rates -1%/month (monthly factor 0.99) over 6 months; month 1 is at today's prices
///
/// month  ml.m5.xlarge x1  subscription  cheapest
///     1           167.90        160.00  subscription
///   ...
///     6           159.67        160.00  ml.m5.xlarge x1
/// total           982.55        960.00  subscription
///
/// How prices move:
/// - ml.m5.xlarge x1: follows the trend (AWS on-demand rates)
/// - subscription: a commitment at today's fee for the whole horizon (not an AWS price)
///
/// Commitments against paying per use:
/// - subscription stops being cheaper than ml.m5.xlarge x1 in month 6 at -1%/month; over 6 months it still saves 22.55 USD
/// ```
impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let months = match self.horizon_months {
            1 => "1 month".to_string(),
            h => format!("{h} months"),
        };
        match &self.trend {
            PriceTrend::Uniform { rate } => {
                let factor = self
                    .factors
                    .iter()
                    .find(|x| x.rate == *rate)
                    .map(|x| format!(" (monthly factor {})", x.monthly_factor.normalize()))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "Price trend: AWS on-demand rates {rate}{factor} over {months}; month 1 \
                     is at today's prices"
                )?;
            }
            PriceTrend::PerKey { rates, otherwise } => {
                writeln!(
                    f,
                    "Price trend: AWS on-demand rates per price over {months}; month 1 is at \
                     today's prices"
                )?;
                for k in rates {
                    writeln!(f, "- {}: {}", k.key, k.rate)?;
                }
                writeln!(f, "- other prices: {otherwise}")?;
            }
        }
        writeln!(f)?;

        let mut header = vec!["month".to_string()];
        header.extend(self.plans.iter().map(|p| p.name.clone()));
        header.push("cheapest".into());
        // The months the projection holds, up to its horizon: a deserialised one may
        // hold fewer than it says (a month missing from a plan shows as `-`).
        let held = self
            .plans
            .iter()
            .map(|p| p.monthly_usd.len())
            .chain(std::iter::once(self.cheapest_by_month.len()))
            .max()
            .unwrap_or(0);
        let shown = held.min(usize::try_from(self.horizon_months).unwrap_or(usize::MAX));
        let missing = || "-".to_string();
        let mut rows: Vec<Vec<String>> = (0..shown)
            .map(|i| {
                let mut row = vec![(i + 1).to_string()];
                row.extend(
                    self.plans
                        .iter()
                        .map(|p| p.monthly_usd.get(i).map_or_else(missing, |m| usd(*m, 2))),
                );
                row.push(
                    self.cheapest_by_month
                        .get(i)
                        .cloned()
                        .unwrap_or_else(missing),
                );
                row
            })
            .collect();
        let mut total = vec!["total".to_string()];
        total.extend(self.plans.iter().map(|p| usd(p.total_usd, 2)));
        // Chosen as each month's cheapest is, of the plans that can serve the calls;
        // a projection read back from before it was recorded shows `-`.
        total.push(if self.cheapest_over_horizon.is_empty() {
            missing()
        } else {
            self.cheapest_over_horizon.clone()
        });
        rows.push(total);

        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let last = header.len() - 1;
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i == 0 {
                    // "month" left, the month numbers (and "total") right under it
                    if cell == "month" || cell == "total" {
                        line.push_str(&format!("{cell:<w$}", w = widths[0]));
                    } else {
                        line.push_str(&format!("{cell:>w$}", w = widths[0]));
                    }
                } else if i == last {
                    line.push_str(&format!("  {cell}"));
                } else {
                    line.push_str(&format!("  {cell:>w$}", w = widths[i]));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        let over: Vec<&str> = self
            .plans
            .iter()
            .filter(|p| p.over_capacity)
            .map(|p| p.name.as_str())
            .collect();
        if !over.is_empty() && over.len() == self.plans.len() {
            writeln!(
                f,
                "No plan can serve the calls: the cheapest is named of them all"
            )?;
        } else if !over.is_empty() {
            writeln!(
                f,
                "Over capacity, never named the cheapest: {}",
                over.join(", ")
            )?;
        }

        writeln!(f)?;
        writeln!(f, "How prices move:")?;
        for p in &self.plans {
            writeln!(
                f,
                "- {}: {}",
                p.name,
                p.basis.describe(p.renews_every_months)
            )?;
        }
        writeln!(f)?;
        if self.commitments.is_empty() {
            let any_commitment = self.plans.iter().any(|p| p.basis == PriceBasis::Commitment);
            if any_commitment {
                writeln!(f, "No plan paid as used to weigh the commitments against.")?;
            } else {
                writeln!(
                    f,
                    "No commitment (subscription or savings plan) among the plans: nothing is \
                     locked at today's price."
                )?;
            }
        } else {
            writeln!(f, "Commitments against paying per use:")?;
            for o in &self.commitments {
                writeln!(f, "- {}", o.summary)?;
            }
        }
        Ok(())
    }
}
