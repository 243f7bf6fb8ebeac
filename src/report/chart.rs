//! Cost over time as an SVG or PNG chart (feature `charts`): one line per group.
//!
//! Text is laid out with the font embedded in the binary (DejaVu Sans), so drawing
//! needs no system font library. A chart is written whole or not at all: drawn to a
//! temporary file beside the target, renamed over it once complete.
//!
//! ```no_run
//! use sagemeter::report::{GroupBy, ReportOptions, chart, report_file};
//! let report = report_file("calls.jsonl", &ReportOptions::new(GroupBy::Endpoint))?;
//! chart::write(&report, "cost.png", chart::DEFAULT_SIZE)?; // or cost.svg
//! # Ok::<(), sagemeter::report::ReportError>(())
//! ```

use super::{Bucket, Report, ReportError, Series};
use chrono::DateTime;
use plotters::coord::Shift;
use plotters::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::BTreeMap;
use std::path::Path;

/// Width and height in pixels.
pub const DEFAULT_SIZE: (u32, u32) = (1000, 600);

/// Lines drawn at most: the groups after the first `MAX_LINES - 1` (by cost) are
/// summed into one `(other)` line.
pub const MAX_LINES: usize = 10;

/// Time buckets a chart draws at most (over eleven years of hours).
pub const MAX_BUCKETS: i64 = 100_000;

/// Draws the report's [`OverTime`](super::OverTime) series to `path`, as SVG or PNG
/// by its extension (`.svg` or `.png`, any case; any other name is refused before
/// anything is drawn). A drawing that fails leaves `path` as it was.
pub fn write(report: &Report, path: impl AsRef<Path>, size: (u32, u32)) -> Result<(), ReportError> {
    let path = path.as_ref();
    let chart = OverTimeChart::new(report)?;
    crate::chart::write(&chart, path, size)
        .map_err(|e| ReportError::Chart(format!("writing {}: {e}", path.display())))
}

/// Draws the report's [`OverTime`](super::OverTime) series as SVG to `path`, which
/// must be named `.svg` (an SVG under another name is no picture a viewer opens;
/// [`write()`] also draws PNG). Written whole or not at all, as [`write()`].
pub fn write_svg(
    report: &Report,
    path: impl AsRef<Path>,
    size: (u32, u32),
) -> Result<(), ReportError> {
    let path = path.as_ref();
    let is_svg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if !is_svg {
        return Err(ReportError::Chart(format!(
            "writing {}: an SVG chart goes to a file named .svg",
            path.display()
        )));
    }
    write(report, path, size)
}

/// The SVG document of the chart: [`ReportError::Chart`] when there is nothing
/// to draw, [`ReportError::Overflow`] when the groups summed into the `(other)`
/// line add up beyond what a sum holds (amounts no meter wrote).
pub fn render_svg(report: &Report, size: (u32, u32)) -> Result<String, ReportError> {
    let chart = OverTimeChart::new(report)?;
    crate::chart::svg(&chart, size).map_err(ReportError::Chart)
}

/// What is drawn: the lines, checked to have something in them, and their layout.
struct OverTimeChart<'a> {
    report: &'a Report,
    series: Vec<Series>,
    first: DateTime<chrono::Utc>,
    last: DateTime<chrono::Utc>,
}

impl<'a> OverTimeChart<'a> {
    fn new(report: &'a Report) -> Result<Self, ReportError> {
        let series = lines(&report.over_time.series)?;
        let points = series.iter().flat_map(|s| &s.points);
        let (Some(first), Some(last)) = (
            points.clone().map(|p| p.start).min(),
            points.map(|p| p.start).max(),
        ) else {
            return Err(ReportError::Chart(
                "no calls in the range: nothing to chart".into(),
            ));
        };
        // Every bucket from the first to the last is a point (gaps as zeros): a
        // span of more than a chart can show is refused, not drawn point by point.
        let (step, unit) = match report.over_time.bucket {
            Bucket::Hour => (3600, "hours"),
            Bucket::Day => (86_400, "days"),
        };
        let buckets = (last - first).num_seconds() / step + 1;
        if buckets > MAX_BUCKETS {
            return Err(ReportError::Chart(format!(
                "the calls span {buckets} {unit}, more than the {MAX_BUCKETS} a chart draws: \
                 narrow the time range"
            )));
        }
        Ok(OverTimeChart {
            report,
            series,
            first,
            last,
        })
    }
}

impl crate::chart::Drawing for OverTimeChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (report, series, first, last) = (self.report, &self.series, self.first, self.last);
        // x is in buckets since the first one: whole numbers are bucket starts, and
        // gaps without calls stay gaps.
        let step = match report.over_time.bucket {
            Bucket::Hour => 3600,
            Bucket::Day => 86_400,
        };
        let origin = first.timestamp();
        let x_of = move |t: DateTime<chrono::Utc>| (t.timestamp() - origin) as f64 / step as f64;
        let x1 = x_of(last) + 0.5;
        let costs = || {
            series
                .iter()
                .flat_map(|s| &s.points)
                .map(|p| usd(p.cost_usd))
        };
        let y_max = costs().fold(0.0_f64, f64::max).max(1e-9) * 1.1;
        // A negative bucket (a credit written into a ledger) is drawn below zero,
        // inside the chart: a point outside its range overflows the drawing.
        let y_min = costs().fold(0.0_f64, f64::min) * 1.1;
        let unit = match report.over_time.bucket {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        };
        let caption = if report.by == "day" || report.by == "hour" {
            format!("Cost per {unit} (USD)")
        } else {
            format!("Cost per {unit} by {} (USD)", report.by)
        };
        let time_format = match report.over_time.bucket {
            Bucket::Hour => "%m-%d %H:00",
            Bucket::Day => "%Y-%m-%d",
        };

        crate::chart::register_fonts();
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(-0.5..x1, y_min..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|x| {
                // Label bucket starts only.
                if (x - x.round()).abs() > 1e-6 {
                    return String::new();
                }
                DateTime::from_timestamp(origin + x.round() as i64 * step, 0)
                    .map(|t| t.format(time_format).to_string())
                    .unwrap_or_default()
            })
            .y_label_formatter(&|y| money_label(*y))
            .y_desc("USD")
            .draw()
            .map_err(|e| err(&e))?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            // Buckets without calls cost nothing: draw them as zero, not as a
            // straight line across the gap.
            let by_bucket: BTreeMap<i64, f64> = s
                .points
                .iter()
                .map(|p| (x_of(p.start).round() as i64, usd(p.cost_usd)))
                .collect();
            let data: Vec<(f64, f64)> = (0..=x_of(last).round() as i64)
                .map(|i| (i as f64, by_bucket.get(&i).copied().unwrap_or(0.0)))
                .collect();
            chart
                .draw_series(LineSeries::new(data, color.stroke_width(2)).point_size(3))
                .map_err(|e| err(&e))?
                .label(s.key.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        Ok(())
    }
}

/// The series to draw: the first `MAX_LINES - 1` as they are, the rest summed
/// exactly ([`ReportError::Overflow`] when a sum does not fit, or needs more
/// digits than a `Decimal` holds: amounts no meter wrote).
fn lines(series: &[Series]) -> Result<Vec<Series>, ReportError> {
    if series.len() <= MAX_LINES {
        return Ok(series.to_vec());
    }
    let mut kept = series[..MAX_LINES - 1].to_vec();
    let mut other: BTreeMap<_, (u64, Decimal)> = BTreeMap::new();
    let overflow =
        |what: &str| ReportError::overflow(format!("the {what} of the chart's `(other)` line"));
    for s in &series[MAX_LINES - 1..] {
        for p in &s.points {
            let slot = other.entry(p.start).or_default();
            slot.0 = slot
                .0
                .checked_add(p.calls)
                .ok_or_else(|| overflow("calls"))?;
            slot.1 = crate::util::exact_sum(slot.1, p.cost_usd).ok_or_else(|| overflow("cost"))?;
        }
    }
    kept.push(Series {
        key: "(other)".to_owned(),
        points: other
            .into_iter()
            .map(|(start, (calls, cost_usd))| super::Point {
                start,
                calls,
                cost_usd,
            })
            .collect(),
    });
    Ok(kept)
}

fn usd(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn money_label(y: f64) -> String {
    if y == 0.0 {
        "0".to_owned()
    } else if y.abs() < 0.01 {
        format!("{y:.1e}")
    } else if y.abs() < 1.0 {
        format!("{y:.3}")
    } else {
        format!("{y:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{GroupBy, ReportOptions, summarize};

    fn cost(endpoint: &str, at: &str, usd: &str) -> crate::Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": "c", "at": at, "endpoint": endpoint, "variant": "A",
            "allocation": "busy_time",
            "usage": {"operation": "invoke_endpoint", "latency_us": 1000, "bytes_in": 1,
                      "bytes_out": 1, "outcome": "ok"},
            "lines": [], "cost_usd": usd, "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0"
        }))
        .unwrap()
    }

    #[test]
    fn the_chart_is_an_svg_with_one_labelled_line_per_group() {
        let costs = [
            cost("chat", "2026-11-01T09:15:00Z", "0.01"),
            cost("chat", "2026-11-01T10:15:00Z", "0.03"),
            cost("embed", "2026-11-01T09:30:00Z", "0.002"),
        ];
        let report = summarize(&costs, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        let svg = render_svg(&report, DEFAULT_SIZE).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.contains("Cost per hour by endpoint (USD)"));
        // plotters writes each text on its own line.
        assert!(svg.contains("\nchat\n</text>"), "legend");
        assert!(svg.contains("\nembed\n</text>"), "legend");
        assert!(svg.contains("<polyline"), "a line was drawn");
    }

    #[test]
    fn the_chart_is_written_as_png_or_svg_by_its_name_and_nothing_else() {
        let costs = [cost("chat", "2026-11-01T09:15:00Z", "0.01")];
        let report = summarize(&costs, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("cost.PNG");
        write(&report, &png, (200, 120)).unwrap();
        assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
        let svg = dir.path().join("cost.svg");
        write_svg(&report, &svg, (200, 120)).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
        // An SVG is not written under another name, nor anything under an unknown one.
        for (name, svg_only) in [("cost.png", true), ("cost.gif", false), ("cost", false)] {
            let path = dir.path().join(name);
            let err = if svg_only {
                write_svg(&report, &path, (200, 120))
            } else {
                write(&report, &path, (200, 120))
            }
            .unwrap_err();
            assert!(matches!(err, ReportError::Chart(_)), "{name}: {err:?}");
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["cost.PNG", "cost.svg"],
            "no other file, no temporary one"
        );
    }

    /// A credit (a negative cost written into a ledger) is drawn below zero: a
    /// point outside the chart's range overflowed plotters' pixel arithmetic.
    #[test]
    fn a_negative_bucket_is_drawn_below_zero_inside_the_chart() {
        // Only credits: the range's top is next to nothing, and -1 USD was
        // billions of pixels below it.
        let costs = [
            cost("chat", "2026-11-01T09:15:00Z", "-1"),
            cost("chat", "2026-11-01T10:15:00Z", "-0.5"),
        ];
        let report = summarize(&costs, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        let svg = render_svg(&report, DEFAULT_SIZE).unwrap();
        assert!(svg.contains("<polyline"), "a line was drawn");
        // Every point of the line is inside the picture (600 × 400 by default).
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for point in points.split_whitespace() {
            let (x, y) = point.split_once(',').unwrap();
            let (x, y): (i64, i64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((0..=i64::from(DEFAULT_SIZE.0)).contains(&x), "{point}");
            assert!((0..=i64::from(DEFAULT_SIZE.1)).contains(&y), "{point}");
        }
    }

    #[test]
    fn an_empty_report_is_an_error_not_an_empty_picture() {
        let report = summarize(&[], &ReportOptions::default()).unwrap();
        let err = render_svg(&report, DEFAULT_SIZE).unwrap_err();
        assert!(err.to_string().contains("nothing to chart"), "{err}");
    }

    #[test]
    fn a_span_of_more_buckets_than_a_chart_draws_is_refused_not_drawn() {
        // Two calls 9,999 years apart: by the hour 87.6 million buckets, by the
        // day 3.65 million, where drawing each as a point would take gigabytes.
        let costs = [
            cost("chat", "0001-01-01T00:00:00Z", "0.01"),
            cost("chat", "9999-12-31T23:00:00Z", "0.01"),
        ];
        for (by, unit) in [(GroupBy::Hour, "hours"), (GroupBy::Endpoint, "days")] {
            let report = summarize(&costs, &ReportOptions::new(by)).unwrap();
            let err = render_svg(&report, DEFAULT_SIZE).unwrap_err();
            assert!(
                err.to_string().contains(&format!(
                    "{unit}, more than the 100000 a chart draws: narrow the time range"
                )),
                "{err}"
            );
        }
        // 100,000 hours (11.4 years) are drawn.
        let costs = [
            cost("chat", "2020-01-01T00:00:00Z", "0.01"),
            cost("chat", "2031-05-29T15:00:00Z", "0.01"),
        ];
        let report = summarize(&costs, &ReportOptions::new(GroupBy::Hour)).unwrap();
        render_svg(&report, (200, 120)).unwrap();
    }

    #[test]
    fn groups_past_the_limit_are_summed_into_other() {
        let costs: Vec<_> = (0..12)
            .map(|i| cost(&format!("e{i:02}"), "2026-11-01T09:00:00Z", "1"))
            .collect();
        let report = summarize(&costs, &ReportOptions::default()).unwrap();
        let drawn = lines(&report.over_time.series).unwrap();
        assert_eq!(drawn.len(), MAX_LINES);
        let other = drawn.last().unwrap();
        assert_eq!(other.key, "(other)");
        // 12 groups: 9 kept, 3 summed.
        assert_eq!(other.points[0].calls, 3);
    }

    #[test]
    fn an_other_line_that_overflows_is_an_error_not_a_panic() {
        let costs: Vec<_> = (0..12)
            .map(|i| cost(&format!("e{i:02}"), "2026-11-01T09:00:00Z", "1"))
            .collect();
        let mut report = summarize(&costs, &ReportOptions::default()).unwrap();
        // Amounts no meter wrote (a hand-edited report): the groups summed into
        // `(other)` add up beyond Decimal::MAX.
        for series in &mut report.over_time.series[MAX_LINES - 1..] {
            series.points[0].cost_usd = Decimal::MAX;
        }
        let err = render_svg(&report, DEFAULT_SIZE).unwrap_err();
        match &err {
            ReportError::Overflow { ledgers, what, .. } => {
                assert!(ledgers.is_empty());
                assert_eq!(what, "the cost of the chart's `(other)` line");
            }
            other => panic!("not an overflow: {other:?}"),
        }
        assert!(err.to_string().contains("overflows"), "{err}");

        for series in &mut report.over_time.series[MAX_LINES - 1..] {
            series.points[0].cost_usd = Decimal::ONE;
            series.points[0].calls = u64::MAX;
        }
        let err = render_svg(&report, DEFAULT_SIZE).unwrap_err();
        assert!(
            matches!(&err, ReportError::Overflow { what, .. } if what.contains("calls")),
            "{err:?}"
        );
    }

    /// Groups summed into `(other)` of 7 × 10¹⁶, 10⁻¹² and 10¹⁶ USD: the exact
    /// sum, 80,000,000,000,000,000.000000000001, has 17 + 12 = 29 digits, one
    /// more than a `Decimal` holds (8 × 10²⁸ + 1 > 2⁹⁶ − 1 ≈ 7.9 × 10²⁸, at 12
    /// places): refused, not drawn a picodollar short at 11 places.
    #[test]
    fn an_other_line_whose_sum_would_be_rounded_is_an_error() {
        let costs: Vec<_> = (0..12)
            .map(|i| cost(&format!("e{i:02}"), "2026-11-01T09:00:00Z", "1"))
            .collect();
        let mut report = summarize(&costs, &ReportOptions::default()).unwrap();
        let summed = &mut report.over_time.series[MAX_LINES - 1..];
        assert_eq!(summed.len(), 3);
        for (series, usd) in summed.iter_mut().zip([
            Decimal::from(70_000_000_000_000_000u64),
            Decimal::new(1, 12),
            Decimal::from(10_000_000_000_000_000u64),
        ]) {
            series.points[0].cost_usd = usd;
        }
        let err = lines(&report.over_time.series).unwrap_err();
        assert!(
            matches!(&err, ReportError::Overflow { what, .. }
                if what == "the cost of the chart's `(other)` line"),
            "{err:?}"
        );
    }
}
