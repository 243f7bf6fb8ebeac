//! The comparison as a plain-text table.

use rust_decimal::Decimal;
use std::fmt;

use super::Comparison;
use super::format::{bytes, calls, usd};

/// The table the CLI prints: one row per plan, cheapest first, then the break-even
/// points in words and the notes.
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
            self.hours_per_period,
            self.region
        )?;
        let mut per_call = Vec::new();
        if !p.mean_latency.is_zero() {
            let ms = Decimal::from_i128_with_scale(p.mean_latency.as_nanos() as i128, 6);
            per_call.push(format!("{} ms", ms.normalize()));
        }
        if p.bytes_in_per_call > 0 || p.bytes_out_per_call > 0 {
            per_call.push(format!(
                "{} in, {} out",
                bytes(p.bytes_in_per_call),
                bytes(p.bytes_out_per_call)
            ));
        }
        if p.tokens_in_per_call > 0 || p.tokens_out_per_call > 0 {
            per_call.push(format!(
                "{} tokens in, {} tokens out",
                p.tokens_in_per_call, p.tokens_out_per_call
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
                    if row.difference_to_cheapest_usd.is_zero() {
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
