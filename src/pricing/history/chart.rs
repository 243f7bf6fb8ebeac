//! A price history as a picture (feature `charts`): each key's rate over time, as
//! steps (a rate holds until the version that changes it).
//!
//! ```no_run
//! # use sagemeter::pricing::history::{PriceHistory, chart};
//! # fn show(history: &PriceHistory) -> Result<(), sagemeter::pricing::history::HistoryError> {
//! chart::render(history, "ml.c5.2xlarge.svg")?; // or .png
//! # Ok(()) }
//! ```

use super::{HistoryError, KeyHistory, PriceHistory};
use chrono::NaiveDate;
use plotters::coord::Shift;
use plotters::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use std::path::Path;

/// Pixel size of the chart.
pub const SIZE: (u32, u32) = (1100, 600);

/// Lines drawn at most (the first keys in key order).
pub const MAX_LINES: usize = 12;

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `history` to `path`: SVG or PNG by its extension.
pub fn render(history: &PriceHistory, path: impl AsRef<Path>) -> Result<(), HistoryError> {
    let path = path.as_ref();
    crate::chart::write(&Rates(history), path, SIZE).map_err(|reason| HistoryError::Chart {
        path: path.display().to_string(),
        reason,
    })
}

/// The chart as an SVG document.
pub fn render_svg(history: &PriceHistory) -> Result<String, HistoryError> {
    crate::chart::svg(&Rates(history), SIZE).map_err(|reason| HistoryError::Chart {
        path: "(svg string)".into(),
        reason,
    })
}

/// Each key's rate over time.
struct Rates<'a>(&'a PriceHistory);

impl crate::chart::Drawing for Rates<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(self.0, root)
    }
}

/// Runs of step points of one key: a gap where it was not listed splits the line.
type Runs = Vec<Vec<(f64, f64)>>;

/// Step points `(days since history.since, USD)` of one key: each rate from the date
/// it was seen to the next point (or to the end while still listed).
fn steps(series: &KeyHistory, since: NaiveDate, until: NaiveDate) -> Runs {
    let day = |d: NaiveDate| (d - since).num_days() as f64;
    let mut runs = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (i, point) in series.points.iter().enumerate() {
        let end = series.points.get(i + 1).map_or(until, |next| next.seen_on);
        match point.usd_per_unit.and_then(|u| u.to_f64()) {
            Some(usd) => {
                run.push((day(point.seen_on), usd));
                run.push((day(end), usd));
            }
            None => {
                if !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
            }
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

fn draw<DB: DrawingBackend>(
    history: &PriceHistory,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    crate::chart::register_fonts();
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let series: Vec<&KeyHistory> = history.series.iter().take(MAX_LINES).collect();
    if series.is_empty() {
        return Err("no rate was listed in the versions read: nothing to chart".into());
    }
    let lines: Vec<(String, Runs)> = series
        .iter()
        .map(|s| (s.key.to_string(), steps(s, history.since, history.until)))
        .collect();
    let y_top = lines
        .iter()
        .flat_map(|(_, runs)| runs.iter().flatten().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let y_max = if y_top > 0.0 { y_top * 1.15 } else { 1.0 };
    let x_max = ((history.until - history.since).num_days() as f64).max(1.0);
    let unit = series[0].unit;
    let since = history.since;

    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "On-demand rate over time, {} (Price List versions)",
                history.region
            ),
            ("sans-serif", 24).into_font(),
        )
        .margin(24)
        .x_label_area_size(56)
        .y_label_area_size(96)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("date")
        .y_desc(format!("USD per {unit}"))
        .x_label_formatter(&|x| {
            (since + chrono::Days::new(x.max(0.0) as u64))
                .format("%Y-%m-%d")
                .to_string()
        })
        .y_label_formatter(&|y| format!("${y:.4}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()
        .map_err(err)?;
    for (i, (name, runs)) in lines.into_iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut labelled = false;
        for run in runs {
            let drawn = chart
                .draw_series(LineSeries::new(run, colour.stroke_width(3)))
                .map_err(err)?;
            if !labelled {
                labelled = true;
                drawn.label(name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}
