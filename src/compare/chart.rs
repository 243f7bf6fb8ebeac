//! Cost against calls per period for each plan, break-even points marked: the
//! comparison as a picture (feature `charts`). And with a price trend, each plan's
//! cost month by month with the month a commitment stops being cheaper marked
//! ([`render_trend`]).
//!
//! Text is laid out with a font embedded in the binary (DejaVu Sans), so drawing needs
//! no system font library. Decimals become `f64` only here, at the drawing edge.
//!
//! ```no_run
//! # use sagemeter::compare::{Comparison, chart};
//! # fn show(comparison: &Comparison) -> Result<(), sagemeter::compare::CompareError> {
//! chart::render(comparison, "plans.svg")?; // or plans.png
//! # Ok(()) }
//! # use sagemeter::compare::Projection;
//! # fn trend(projection: &Projection) -> Result<(), sagemeter::compare::CompareError> {
//! chart::render_trend(projection, "plans-trend.svg")?;
//! # Ok(()) }
//! ```

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::path::Path;

use super::engine::served;
use super::format::calls as fmt_calls;
use super::{CompareError, Comparison, CostCurve, PlanCost, Projection};

/// Pixel size of a chart.
pub const SIZE: (u32, u32) = (1100, 650);

/// The picture formats a chart can be written in.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    /// Scalable vector graphics (text stays text).
    Svg,
    /// A PNG bitmap.
    Png,
}

impl ChartFormat {
    /// The format named by a path's extension (`.svg` or `.png`, any case).
    pub fn from_path(path: &Path) -> Result<Self, CompareError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(ChartFormat::Svg),
            Some("png") => Ok(ChartFormat::Png),
            _ => Err(CompareError::Chart {
                path: path.display().to_string(),
                reason: "unknown picture format: name the file .svg or .png".into(),
            }),
        }
    }
}

/// Draws `comparison` to `path`, as SVG or PNG according to its extension.
pub fn render(comparison: &Comparison, path: impl AsRef<Path>) -> Result<(), CompareError> {
    let path = path.as_ref();
    ChartFormat::from_path(path)?;
    crate::chart::write(&Plans(comparison), path, SIZE).map_err(|reason| CompareError::Chart {
        path: path.display().to_string(),
        reason,
    })
}

/// The chart as an SVG document.
pub fn render_svg(comparison: &Comparison) -> Result<String, CompareError> {
    crate::chart::svg(&Plans(comparison), SIZE).map_err(in_svg)
}

/// A chart error while making an SVG string (no file involved).
fn in_svg(reason: String) -> CompareError {
    CompareError::Chart {
        path: "(svg string)".into(),
        reason,
    }
}

/// Cost against calls per period, per plan.
struct Plans<'a>(&'a Comparison);

impl crate::chart::Drawing for Plans<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(self.0, root)
    }
}

/// Each plan's cost per month under a price trend.
struct Months<'a>(&'a Projection);

impl crate::chart::Drawing for Months<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_trend(self.0, root)
    }
}

/// One line per plan, in data units: the points where its slope changes, from 0 to
/// `x_max` calls, or to the plan's capacity
/// ([`capacity_calls`](super::PlanCost::capacity_calls)) when that is less: a plan
/// serves no more calls than that, so its line ends there.
pub fn plan_lines(comparison: &Comparison, x_max: Decimal) -> Vec<(String, Vec<(f64, f64)>)> {
    comparison
        .plans
        .iter()
        .map(|row| {
            let end = line_end(row, x_max);
            let mut xs = vec![Decimal::ZERO];
            xs.extend(row.curve.kink().filter(|k| *k > Decimal::ZERO && *k < end));
            xs.push(end);
            let points = xs
                .into_iter()
                .map(|x| (f(x), cost_f64(&row.curve, x)))
                .collect();
            (row.plan.name.clone(), points)
        })
        .collect()
}

/// Where a plan's line ends: at `x_max`, or at its capacity when that is less.
fn line_end(row: &PlanCost, x_max: Decimal) -> Decimal {
    row.capacity_calls
        .filter(|c| *c < x_max)
        .unwrap_or(x_max)
        .max(Decimal::ZERO)
}

/// The cost at `calls` as a point to draw: exact when it fits in a decimal, else in
/// `f64` (a chart's axis may run past the volumes the comparison priced).
fn cost_f64(curve: &CostCurve, calls: Decimal) -> f64 {
    curve.try_cost_usd(calls).map(f).unwrap_or_else(|_| {
        let x = f(calls);
        let mut cost = f(curve.fixed_usd) + f(curve.usd_per_call) * x;
        if let (Some(included), Some(overage)) = (curve.included_calls, curve.overage_usd_per_call)
            && calls > included
        {
            cost += f(overage) * (x - f(included));
        }
        cost
    })
}

/// The calls axis runs to 1.2 × the largest of: the profile's calls, the break-even
/// points and quota ends within 20 × the profile's calls (all of them when the profile
/// has none).
pub fn x_max(comparison: &Comparison) -> Decimal {
    let now = comparison.profile.calls_per_period;
    let cap = if now.is_zero() {
        Decimal::MAX
    } else {
        now.checked_mul(Decimal::from(20)).unwrap_or(Decimal::MAX)
    };
    let points = comparison
        .break_evens
        .iter()
        .flat_map(|be| be.points.iter().map(|p| p.calls_per_period));
    let kinks = comparison.plans.iter().filter_map(|row| row.curve.kink());
    let largest = points
        .chain(kinks)
        .filter(|u| *u <= cap)
        .chain(std::iter::once(now))
        .max()
        .unwrap_or_default();
    if largest.is_zero() {
        Decimal::from(1000)
    } else {
        largest.checked_mul(Decimal::new(12, 1)).unwrap_or(largest)
    }
}

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::MAX)
}

/// Labels written just above the x axis at their x, stacked in rows so that none
/// overlaps the one before it in its row (a label is about 8 px a character):
/// `(x, row, text)`. `pixel_x` maps an x to the backend's pixels.
fn stacked(
    labels: impl IntoIterator<Item = (f64, String)>,
    pixel_x: impl Fn(f64) -> i32,
) -> Vec<(f64, i32, String)> {
    let mut row_ends: Vec<i32> = Vec::new();
    let mut out = Vec::new();
    for (x, text) in labels {
        let left = pixel_x(x) + 4;
        let width = 8 * text.chars().count() as i32;
        let row = match row_ends.iter().position(|end| *end + 6 < left) {
            Some(row) => row,
            None => {
                row_ends.push(i32::MIN);
                row_ends.len() - 1
            }
        };
        row_ends[row] = left + width;
        out.push((x, row as i32, text));
    }
    out
}

/// A break-even's number of calls: as the table writes it below 1,000 (`0.0001`,
/// `12.5`: a fraction of a call keeps two significant digits, where [`compact`]
/// would round it to `0`), [`compact`] from there (`3.36M`).
fn mark_calls(v: f64) -> String {
    match Decimal::try_from(v) {
        Ok(calls) if v.abs() < 1e3 => fmt_calls(calls),
        _ => compact(v),
    }
}

/// `40000` → `40k`, `1250000` → `1.25M`.
fn compact(v: f64) -> String {
    let (scaled, suffix) = if v.abs() >= 1e9 {
        (v / 1e9, "G")
    } else if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = format!("{scaled:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{suffix}")
}

fn draw<DB: DrawingBackend>(
    comparison: &Comparison,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    crate::chart::register_fonts();
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;

    let period = comparison.period;
    let x_max_dec = x_max(comparison);
    let lines = plan_lines(comparison, x_max_dec);
    let x_max = f(x_max_dec);
    let y_top = lines
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let y_max = if y_top > 0.0 { y_top * 1.1 } else { 1.0 };

    let caption = format!(
        "Cost per {period} by billing plan ({} {})",
        comparison.region,
        if comparison.profile.calls_per_period.is_zero() {
            String::new()
        } else {
            format!(
                "· you: {} calls per {period}",
                fmt_calls(comparison.profile.calls_per_period)
            )
        }
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption.trim_end(), ("sans-serif", 24).into_font())
        .margin(24)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("calls per {period}"))
        .y_desc(format!("cost per {period} (USD)"))
        .x_label_formatter(&|x| compact(*x))
        .y_label_formatter(&|y| format!("${}", compact(*y)))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()
        .map_err(err)?;

    for (i, ((name, points), row)) in lines.into_iter().zip(&comparison.plans).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        // A line ending at the plan's capacity says so, in the legend and with a bar
        // across its end.
        let ends = row.capacity_calls.filter(|c| *c < x_max_dec);
        let last = points.last().copied();
        let label = match ends {
            Some(c) => format!("{name} (serves up to {} calls)", served(c)),
            None => name,
        };
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(3)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
            });
        if let (Some(_), Some(end)) = (ends, last) {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(end)
                        + PathElement::new(vec![(0, -10), (0, 10)], colour.stroke_width(3)),
                ))
                .map_err(err)?;
        }
    }

    // Where you are now.
    let now = f(comparison.profile.calls_per_period);
    if now > 0.0 && now <= x_max {
        let grey = RGBColor(90, 90, 90);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(now, 0.0), (now, y_max)],
                8,
                6,
                grey.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!(
                "your usage: {} calls",
                fmt_calls(comparison.profile.calls_per_period)
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(2))
            });
    }

    // Break-even points: a marker on the crossing, a dotted drop line to the calls
    // axis, and the call volume written just above the axis (stacked when close). A
    // crossing beyond the capacity of a plan of the pair, one it would make only at
    // volumes it cannot serve, has a hollow marker of its own.
    let (mut marks, mut beyond): (Vec<_>, Vec<_>) = comparison
        .break_evens
        .iter()
        .flat_map(|be| be.points.iter())
        .map(|p| {
            (
                f(p.calls_per_period),
                f(p.cost_usd),
                !p.beyond_capacity.is_empty(),
            )
        })
        .partition(|(x, _, _)| *x <= x_max);
    marks.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    marks.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.2 == b.2);
    let marks: Vec<Mark> = marks
        .into_iter()
        .map(|(x, y, hollow)| Mark {
            x,
            y,
            text: format!("{} calls", mark_calls(x)),
            hollow,
        })
        .collect();
    draw_marks(
        &mut chart,
        &marks,
        "break-even point",
        "break-even beyond a plan's capacity",
    )?;
    // Crossings past the axis (it ends near the profile's volume) are named in the
    // legend, not left out unsaid.
    beyond.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    beyond.dedup_by(|a, b| a.0 == b.0 && a.2 == b.2);
    if !beyond.is_empty() {
        let at: Vec<String> = beyond
            .iter()
            .map(|(x, _, past_capacity)| {
                if *past_capacity {
                    format!("{} (beyond a plan's capacity)", mark_calls(*x))
                } else {
                    mark_calls(*x)
                }
            })
            .collect();
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(err)?
            .label(format!(
                "break-even beyond the axis: {} calls",
                at.join(", ")
            ))
            .legend(|(x, y)| {
                // An arrow: one polyline out to the tip and back along each barb.
                let tip = (x + 20, y);
                let path = vec![(x + 4, y), tip, (x + 14, y - 5), tip, (x + 14, y + 5)];
                PathElement::new(path, BLACK.stroke_width(2))
            });
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// A point where plans cross, to mark: where, its label, and whether its ring is
/// hollow (a crossing of a kind apart, e.g. beyond a plan's capacity).
struct Mark {
    x: f64,
    y: f64,
    text: String,
    hollow: bool,
}

/// Marks the points where plans cross, each labelled: a dotted drop line to the x
/// axis, its label just above the axis (stacked when close), and a ring on the
/// point, with `legend` naming the filled rings and `hollow_legend` the hollow ones.
fn draw_marks<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    marks: &[Mark],
    legend: &str,
    hollow_legend: &str,
) -> Result<(), String> {
    if marks.is_empty() {
        return Ok(());
    }
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let grey = RGBColor(120, 120, 120);
    for &Mark { x, y, .. } in marks {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, 0.0), (x, y)],
                3,
                4,
                grey.stroke_width(1),
            ))
            .map_err(err)?;
    }
    let label_style = ("sans-serif", 14).into_font().color(&BLACK);
    let labels = stacked(marks.iter().map(|m| (m.x, m.text.clone())), |x| {
        chart.backend_coord(&(x, 0.0)).0
    });
    chart
        .draw_series(labels.into_iter().map(|(x, row, text)| {
            EmptyElement::at((x, 0.0)) + Text::new(text, (4, -20 - 18 * row), label_style.clone())
        }))
        .map_err(err)?;
    let (hollow, filled): (Vec<&Mark>, Vec<&Mark>) = marks.iter().partition(|m| m.hollow);
    // Each kind of ring: its marks, the disc inside and the ring around it (radius
    // and style), its legend, and the legend's key. A filled ring is a black disc
    // in a ring of its own; a hollow one, a white disc ringed in black.
    let kinds = [
        (
            filled,
            (6, BLACK.filled()),
            (9, BLACK.stroke_width(2)),
            legend,
            BLACK.filled(),
        ),
        (
            hollow,
            (7, WHITE.filled()),
            (7, BLACK.stroke_width(2)),
            hollow_legend,
            BLACK.stroke_width(2),
        ),
    ];
    for (marks, (inner, inside), (outer, around), label, key) in kinds {
        if marks.is_empty() {
            continue;
        }
        chart
            .draw_series(marks.iter().map(|m| {
                EmptyElement::at((m.x, m.y))
                    + Circle::new((0, 0), inner, inside)
                    + Circle::new((0, 0), outer, around)
            }))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 12, y), 6, key));
    }
    Ok(())
}

/// The legend of a comparison's chart, at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(|e| e.to_string())
}

/// Draws `projection` (each plan's cost per month over the horizon, crossovers
/// marked) to `path`, as SVG or PNG according to its extension.
pub fn render_trend(projection: &Projection, path: impl AsRef<Path>) -> Result<(), CompareError> {
    let path = path.as_ref();
    ChartFormat::from_path(path)?;
    crate::chart::write(&Months(projection), path, SIZE).map_err(|reason| CompareError::Chart {
        path: path.display().to_string(),
        reason,
    })
}

/// The month-by-month chart of `projection` as an SVG document.
pub fn render_trend_svg(projection: &Projection) -> Result<String, CompareError> {
    crate::chart::svg(&Months(projection), SIZE).map_err(in_svg)
}

/// Where a commitment's cheaper side changes: the month, the commitment's cost in
/// it, and whether it stops (true) or starts being cheaper. None for a pair with a
/// plan that cannot serve the calls: the two are not weighed.
fn crossovers(projection: &Projection) -> Vec<(u32, f64, bool)> {
    let mut marks: Vec<(u32, f64, bool)> = projection
        .commitments
        .iter()
        .filter(|o| o.over_capacity.is_empty())
        .filter_map(|o| {
            let (month, stops) = match (o.stops_being_cheaper_in_month, o.becomes_cheaper_in_month)
            {
                (Some(m), _) => (m, true),
                (None, Some(m)) => (m, false),
                (None, None) => return None,
            };
            // Months count from 1; a month 0 (a projection read back from JSON
            // may say so) is no month of the chart: not marked.
            let index = (month as usize).checked_sub(1)?;
            let cost = projection.plan(&o.commitment)?.monthly_usd.get(index)?;
            Some((month, f(*cost), stops))
        })
        .collect();
    marks.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    marks.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    marks
}

fn draw_trend<DB: DrawingBackend>(
    projection: &Projection,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    crate::chart::register_fonts();
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;

    let horizon = projection.horizon_months;
    let lines: Vec<(&str, Vec<(f64, f64)>)> = projection
        .plans
        .iter()
        .map(|p| {
            let points = p
                .monthly_usd
                .iter()
                .enumerate()
                .map(|(i, cost)| ((i + 1) as f64, f(*cost)))
                .collect();
            (p.name.as_str(), points)
        })
        .collect();
    let y_top = lines
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let y_max = if y_top > 0.0 { y_top * 1.15 } else { 1.0 };
    let x_range = 0.5..(horizon as f64 + 0.5);

    let caption = format!(
        "Cost per month by billing plan at {} over {} month{}",
        projection.trend,
        horizon,
        if horizon == 1 { "" } else { "s" }
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 24).into_font())
        .margin(24)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(x_range, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("month (1 = today's prices)")
        .y_desc("cost per month (USD)")
        .x_labels(horizon.min(13) as usize)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 && *x >= 1.0 {
                format!("{}", x.round() as i64)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("${}", compact(*y)))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()
        .map_err(err)?;

    for (i, (name, points)) in lines.into_iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
            });
        if horizon <= 36 {
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, colour.filled())),
                )
                .map_err(err)?;
        }
    }

    // Crossovers: a ring on the commitment's cost, a dotted drop line to the month
    // axis, and "month N" just above it (stacked when close).
    let marks: Vec<Mark> = crossovers(projection)
        .into_iter()
        .map(|(month, y, stops)| {
            let text = if stops {
                format!("month {month}: commitment no longer cheaper")
            } else {
                format!("month {month}: commitment cheaper")
            };
            Mark {
                x: month as f64,
                y,
                text,
                hollow: false,
            }
        })
        .collect();
    draw_marks(&mut chart, &marks, "commitment crosses paying per use", "")?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One ml.m5.xlarge at 0.23 USD/h against a 160 USD subscription, 1,000 calls a
    /// month, projected over 12 months at -1%/month.
    fn instance_against_subscription_falling_one_percent() -> Projection {
        use crate::compare::{InstancePlan, Plan, RateTable, SubscriptionPlan, UsageProfile};
        use crate::pricing::PriceKey;

        let profile = UsageProfile::builder()
            .calls_per_period(1000)
            .build()
            .unwrap();
        let plans = [
            Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap()),
            Plan::from(
                SubscriptionPlan::builder()
                    .fee_usd(Decimal::from(160))
                    .build()
                    .unwrap(),
            ),
        ];
        let rates = RateTable::new("us-east-1")
            .with_rate(
                PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
                Decimal::new(23, 2),
            )
            .unwrap();
        let comparison = Comparison::compute(&profile, &plans, &rates).unwrap();
        let trend = "-1%/month"
            .parse::<super::super::TrendRate>()
            .unwrap()
            .into();
        Projection::compute(&comparison, &trend, 12).unwrap()
    }

    #[test]
    fn the_trend_chart_names_every_plan_and_marks_the_crossover_month() {
        // 167.90 × 0.99^5 = 159.67 < 160: month 6
        let projection = instance_against_subscription_falling_one_percent();
        let svg = render_trend_svg(&projection).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for text in [
            "ml.m5.xlarge x1",
            "subscription",
            "month 6: commitment no longer cheaper",
            "at -1%/month over 12 months",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    /// A projection read back from JSON may name month 0 as where a commitment's
    /// cheaper side changes (months count from 1): the chart is drawn without that
    /// mark, never a panic.
    #[test]
    fn a_crossover_in_month_zero_is_not_marked_never_a_panic() {
        let projection = instance_against_subscription_falling_one_percent();
        let mut json = serde_json::to_value(&projection).unwrap();
        assert_eq!(json["commitments"][0]["stops_being_cheaper_in_month"], 6);
        for (stops, becomes) in [(Some(0), None), (None, Some(0))] {
            json["commitments"][0]["stops_being_cheaper_in_month"] = serde_json::json!(stops);
            json["commitments"][0]["becomes_cheaper_in_month"] = serde_json::json!(becomes);
            let read: Projection = serde_json::from_value(json.clone()).unwrap();
            let svg = render_trend_svg(&read).unwrap();
            assert!(svg.contains("subscription"), "{stops:?} {becomes:?}");
            assert!(!svg.contains("month 0"), "{stops:?} {becomes:?}");
        }
    }

    /// 4,000,000 calls a month of 800 ms against one ml.m5.xlarge at 0.23 USD/h and a
    /// price of 0.00005 USD a call.
    fn beyond_one_instance(more: &[crate::compare::Plan]) -> Comparison {
        beyond_one_instance_at(800, more)
    }

    /// [`beyond_one_instance`] with calls of `latency_ms`.
    fn beyond_one_instance_at(latency_ms: u64, more: &[crate::compare::Plan]) -> Comparison {
        use crate::compare::{InstancePlan, PerInferencePlan, Plan, RateTable, UsageProfile};
        use crate::pricing::PriceKey;
        let profile = UsageProfile::builder()
            .calls_per_period(4_000_000)
            .mean_latency(std::time::Duration::from_millis(latency_ms))
            .build()
            .unwrap();
        let mut plans = vec![
            Plan::from(InstancePlan::new("ml.m5.xlarge", 1).unwrap()),
            Plan::from(PerInferencePlan::per_call(Decimal::new(5, 5)).unwrap()),
        ];
        plans.extend_from_slice(more);
        let rates = RateTable::new("us-east-1")
            .with_rate(
                PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
                Decimal::new(23, 2),
            )
            .unwrap();
        Comparison::compute(&profile, &plans, &rates).unwrap()
    }

    #[test]
    fn a_plan_line_ends_at_its_capacity_and_a_break_even_beyond_it_is_marked_apart() {
        let comparison = beyond_one_instance(&[]);
        // The axis runs to 1.2 × 4,000,000 = 4,800,000 calls. One instance serves
        // 730 h × 3,600 s ÷ 0.8 s = 3,285,000 calls: its line ends there, at
        // 730 × 0.23 = 167.90; pay per use runs to the axis' end, 4,800,000 × 0.00005
        // = 240.
        let x_max = x_max(&comparison);
        assert_eq!(x_max, Decimal::from(4_800_000));
        let lines = plan_lines(&comparison, x_max);
        let line = |name: &str| lines.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let instance = line("ml.m5.xlarge x1");
        let (x, y) = *instance.last().unwrap();
        assert!(x <= 3_285_000.0, "{x}");
        assert_eq!((x, y), (3_285_000.0, 167.90));
        assert_eq!(*line("pay per use").last().unwrap(), (4_800_000.0, 240.0));

        // They cost the same at 167.90 ÷ 0.00005 = 3,358,000 calls, beyond the
        // instance's capacity: a mark of its own, not a break-even point.
        let be = &comparison.break_evens[0].points[0];
        assert_eq!(be.calls_per_period, Decimal::from(3_358_000));
        let svg = render_svg(&comparison).unwrap();
        for text in [
            "ml.m5.xlarge x1 (serves up to 3,285,000 calls)",
            "break-even beyond a plan&apos;s capacity",
            "3.36M calls",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(!svg.contains(">break-even point<"), "{svg}");
    }

    /// The legend gives a capacity as the table does: whole calls, rounded down,
    /// never more than the plan serves.
    #[test]
    fn the_legend_rounds_a_capacity_down_as_the_table_does() {
        // One instance serves 730 h × 3,600 s ÷ 0.7 s = 2,628,000 ÷ 0.7
        // = 3,754,285.71… calls; 3,754,286 calls of 0.7 s would take 2,628,000.2 s,
        // more than the 2,628,000 s it runs.
        let comparison = beyond_one_instance_at(700, &[]);
        let svg = render_svg(&comparison).unwrap();
        assert!(
            svg.contains("ml.m5.xlarge x1 (serves up to 3,754,285 calls)"),
            "{svg}"
        );
        assert!(!svg.contains("3,754,286"), "{svg}");
    }

    #[test]
    fn the_trend_chart_marks_no_crossover_with_a_plan_over_capacity() {
        use crate::compare::{Plan, SubscriptionPlan};
        // The subscription of 160 would stop being cheaper than the instance
        // (167.90 × 0.99^(k − 1)) in month 6, as above, but the instance serves only
        // 3,285,000 of the 4,000,000 calls.
        let subscription = Plan::from(
            SubscriptionPlan::builder()
                .fee_usd(Decimal::from(160))
                .build()
                .unwrap(),
        );
        let comparison = beyond_one_instance(&[subscription]);
        let trend = "-1%/month"
            .parse::<super::super::TrendRate>()
            .unwrap()
            .into();
        let projection = Projection::compute(&comparison, &trend, 12).unwrap();
        assert!(crossovers(&projection).is_empty());
        let svg = render_trend_svg(&projection).unwrap();
        assert!(!svg.contains("commitment no longer cheaper"), "{svg}");
    }

    /// 1,000 calls a month at 1 USD a call against a subscription of 0.0001 USD:
    /// they cost the same at 0.0001 ÷ 1 = 0.0001 calls a month, which the table
    /// writes "0.0001"; the chart's mark says the same, not "0 calls".
    #[test]
    fn a_break_even_below_one_call_is_marked_as_the_table_writes_it() {
        use crate::compare::{PerInferencePlan, Plan, RateTable, SubscriptionPlan, UsageProfile};
        let profile = UsageProfile::builder()
            .calls_per_period(1_000)
            .mean_latency(std::time::Duration::from_millis(100))
            .build()
            .unwrap();
        let plans = [
            Plan::from(PerInferencePlan::per_call(Decimal::ONE).unwrap()),
            Plan::from(
                SubscriptionPlan::builder()
                    .fee_usd(Decimal::new(1, 4))
                    .build()
                    .unwrap(),
            ),
        ];
        let comparison =
            Comparison::compute(&profile, &plans, &RateTable::new("us-east-1")).unwrap();
        let at = comparison.break_evens[0].points[0].calls_per_period;
        assert_eq!(at, Decimal::new(1, 4));
        assert_eq!(fmt_calls(at), "0.0001");
        let svg = render_svg(&comparison).unwrap();
        assert!(svg.contains("0.0001 calls"), "{svg}");
        assert!(!svg.contains(">0 calls<"), "{svg}");
        assert_eq!(mark_calls(3_358_000.0), "3.36M");
        assert_eq!(mark_calls(12.5), "12.5");
    }

    #[test]
    fn axis_numbers_are_compact() {
        assert_eq!(compact(40_000.0), "40k");
        assert_eq!(compact(1_250_000.0), "1.25M");
        assert_eq!(compact(12.5), "12.5");
        assert_eq!(compact(0.0), "0");
    }
}
