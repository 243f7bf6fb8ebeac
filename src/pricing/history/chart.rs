//! A price history as a picture (feature `charts`): each key's rate over time, as
//! steps (a rate holds until the version that changes it).
//!
//! ```no_run
//! # use sagemeter::pricing::history::{PriceHistory, MissingVersion, chart};
//! # fn show(history: &PriceHistory, missing: &[MissingVersion]) -> Result<(), sagemeter::pricing::history::HistoryError> {
//! chart::render(history, "ml.c5.2xlarge.svg")?; // or .png
//! // The `partial` and `missing` of an incomplete history: no line where a rate is unknown.
//! chart::render_incomplete(history, missing, "ml.c5.2xlarge.svg")?;
//! # Ok(()) }
//! ```

use super::{HistoryError, KeyHistory, MissingVersion, PriceHistory, PriceKey};
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
    render_incomplete(history, &[], path)
}

/// The chart as an SVG document.
pub fn render_svg(history: &PriceHistory) -> Result<String, HistoryError> {
    render_incomplete_svg(history, &[])
}

/// Draws the `partial` history of an incomplete read
/// ([`HistoryError::Incomplete`]) to `path`, SVG or PNG by its extension: as
/// [`render`], but each key's line is broken over the spans of `missing` that leave
/// its rate unknown (from [`seen_on`](MissingVersion::seen_on) to
/// [`unknown_until`](MissingVersion::unknown_until), or to the end of the chart),
/// and each such span is marked by a grey band, "rates unknown (missing version)".
/// With no `missing`, the same chart as [`render`].
pub fn render_incomplete(
    partial: &PriceHistory,
    missing: &[MissingVersion],
    path: impl AsRef<Path>,
) -> Result<(), HistoryError> {
    let path = path.as_ref();
    let rates = Rates {
        history: partial,
        missing,
    };
    crate::chart::write(&rates, path, SIZE).map_err(|reason| HistoryError::Chart {
        path: path.display().to_string(),
        reason,
    })
}

/// The chart of [`render_incomplete`] as an SVG document.
pub fn render_incomplete_svg(
    partial: &PriceHistory,
    missing: &[MissingVersion],
) -> Result<String, HistoryError> {
    let rates = Rates {
        history: partial,
        missing,
    };
    crate::chart::svg(&rates, SIZE).map_err(|reason| HistoryError::Chart {
        path: "(svg string)".into(),
        reason,
    })
}

/// The legend of the band over a span whose rates are unknown.
const UNKNOWN_LABEL: &str = "rates unknown (missing version)";

/// The band's colour: a light grey the grid shows through.
const BAND: RGBAColor = RGBAColor(190, 190, 190, 0.45);

/// Each key's rate over time, but where `missing` leaves it unknown.
struct Rates<'a> {
    history: &'a PriceHistory,
    missing: &'a [MissingVersion],
}

impl crate::chart::Drawing for Rates<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(self.history, self.missing, root)
    }
}

/// Runs of step points of one key: a gap where it was not listed, or where its
/// rate is unknown, splits the line.
type Runs = Vec<Vec<(f64, f64)>>;

/// A span `(from, to)`, in days since the chart's first date, over which a rate is
/// unknown.
type Gap = (f64, f64);

/// The spans of `missing` (in days since `since`, within the chart) whose rates
/// are unknown for `key`, or for any key when `key` is `None`, sorted by start.
fn gaps(
    missing: &[MissingVersion],
    key: Option<&PriceKey>,
    since: NaiveDate,
    until: NaiveDate,
) -> Vec<Gap> {
    let day = |d: NaiveDate| (d - since).num_days() as f64;
    let mut gaps: Vec<Gap> = missing
        .iter()
        .filter(|m| m.keys.is_empty() || key.is_none_or(|k| m.keys.contains(k)))
        .map(|m| {
            let to = m.unknown_until.unwrap_or(until).min(until);
            (day(m.seen_on).max(0.0), day(to))
        })
        .filter(|(from, to)| from < to)
        .collect();
    gaps.sort_by(|a, b| a.0.total_cmp(&b.0));
    gaps
}

/// Step points `(days since history.since, USD)` of one key: each rate from the date
/// it was seen to the next point (or to the end while still listed), but over the
/// `gaps` (sorted by start), where it is unknown.
fn steps(series: &KeyHistory, since: NaiveDate, until: NaiveDate, gaps: &[Gap]) -> Runs {
    let day = |d: NaiveDate| (d - since).num_days() as f64;
    let mut runs = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (i, point) in series.points.iter().enumerate() {
        let end = series.points.get(i + 1).map_or(until, |next| next.seen_on);
        match point.usd_per_unit.and_then(|u| u.to_f64()) {
            Some(usd) => {
                let (mut from, to) = (day(point.seen_on), day(end));
                let mut cut = false;
                for &(gap_from, gap_to) in gaps {
                    if gap_from < to && gap_to > from {
                        // The rate up to the gap, then no line over it.
                        if gap_from > from {
                            run.push((from, usd));
                            run.push((gap_from, usd));
                        }
                        if !run.is_empty() {
                            runs.push(std::mem::take(&mut run));
                        }
                        from = from.max(gap_to);
                        cut = true;
                    }
                }
                // What is left after the gaps; never a point at a gap's end alone:
                // the rate before the gap is not known to hold there.
                if from < to || (!cut && from == to) {
                    run.push((from, usd));
                    run.push((to, usd));
                }
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
    missing: &[MissingVersion],
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
        .map(|s| {
            let gaps = gaps(missing, Some(&s.key), history.since, history.until);
            (
                s.key.to_string(),
                steps(s, history.since, history.until, &gaps),
            )
        })
        .collect();
    // A band over each span whose rates are unknown for a key drawn.
    let bands: Vec<Gap> = missing
        .iter()
        .filter(|m| m.keys.is_empty() || series.iter().any(|s| m.keys.contains(&s.key)))
        .flat_map(|m| gaps(std::slice::from_ref(m), None, history.since, history.until))
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
    if !bands.is_empty() {
        chart
            .draw_series(
                bands
                    .into_iter()
                    .map(|(from, to)| Rectangle::new([(from, 0.0), (to, y_max)], BAND.filled())),
            )
            .map_err(err)?
            .label(UNKNOWN_LABEL)
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 24, y + 6)], BAND.filled()));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::PriceUnit;
    use crate::pricing::history::PricePoint;
    use rust_decimal::Decimal;

    fn day(month: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, month, 1).unwrap()
    }

    fn key(instance_type: &str) -> PriceKey {
        PriceKey::hosting("us-east-1", instance_type)
    }

    /// `(version month, USD per hour)` points, each from the first of its month.
    fn series(instance_type: &str, points: &[(u32, &str)]) -> KeyHistory {
        KeyHistory {
            key: key(instance_type),
            unit: PriceUnit::Hour,
            points: points
                .iter()
                .map(|&(month, usd)| PricePoint {
                    version: format!("2025{month:02}01000000"),
                    seen_on: day(month),
                    usd_per_unit: Some(usd.parse::<Decimal>().unwrap()),
                    change_percent: None,
                    effective_date: None,
                    sku: None,
                    note: None,
                })
                .collect(),
            last_listed_on: Some(day(3)),
            vcpu: None,
            gpu: None,
        }
    }

    /// What was read of versions V1 (in effect 2025-01-01) and V3 (2025-03-01) from
    /// 2025-01-01 to 2025-04-01: ml.m5.large at 0.115 in both, ml.m5.xlarge at 0.23
    /// then 0.20; V2 (2025-02-01) gave no rate for ml.m5.xlarge, so the history has
    /// no point in February.
    fn partial() -> PriceHistory {
        PriceHistory {
            region: "us-east-1".into(),
            since: day(1),
            until: day(4),
            versions: Vec::new(),
            series: vec![
                series("ml.m5.large", &[(1, "0.115")]),
                series("ml.m5.xlarge", &[(1, "0.23"), (3, "0.20")]),
            ],
        }
    }

    /// V2, missing for ml.m5.xlarge only: its rate from 2025-02-01 until V3 took
    /// over on 2025-03-01 is unknown.
    fn v2_missing() -> MissingVersion {
        MissingVersion {
            version: "20250201000000".into(),
            seen_on: day(2),
            unknown_until: Some(day(3)),
            keys: vec![key("ml.m5.xlarge")],
            reason: "lists hosting ml.m5.xlarge in us-east-1 only at $0: not a price".into(),
        }
    }

    /// The value of `name="…"` in a tag.
    fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
        tag.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in {tag}"))
    }

    /// The points, in pixels, of each line drawn in `colour` (e.g. `#FF7F0E`), but
    /// the last: the legend's sample, drawn after the lines.
    fn lines(svg: &str, colour: &str) -> Vec<Vec<(i64, i64)>> {
        let mut lines: Vec<Vec<(i64, i64)>> = svg
            .split("<polyline")
            .skip(1)
            .filter(|tag| attr(tag, "stroke") == colour)
            .map(|tag| {
                attr(tag, "points")
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect();
        let legend = lines.pop().expect("a legend sample");
        assert_eq!(legend.len(), 2, "the legend's sample is a short line");
        assert_eq!(legend[1].0 - legend[0].0, 24, "{legend:?}");
        lines
    }

    /// The `(x, x + width)` in pixels of each band over unknown rates, but the
    /// legend's sample (drawn last, 24 pixels wide), when there is a band.
    fn bands(svg: &str) -> Vec<(i64, i64)> {
        let mut bands: Vec<(i64, i64)> = svg
            .split("<rect")
            .skip(1)
            .filter(|tag| attr(tag, "fill") == "#BEBEBE")
            .map(|tag| {
                let x: i64 = attr(tag, "x").parse().unwrap();
                let width: i64 = attr(tag, "width").parse().unwrap();
                (x, x + width)
            })
            .collect();
        if let Some(legend) = bands.pop() {
            assert_eq!(legend.1 - legend.0, 24, "the legend's sample: {legend:?}");
        }
        bands
    }

    const LARGE: &str = "#1F77B4";
    const XLARGE: &str = "#FF7F0E";

    #[test]
    fn a_complete_history_draws_each_rate_up_to_the_next_one() {
        let svg = render_svg(&partial()).unwrap();
        // ml.m5.xlarge: one line, 0.23 from 2025-01-01 to 2025-03-01, then down to
        // 0.20 until 2025-04-01: four points, the first two at 0.23's height.
        let xlarge = lines(&svg, XLARGE);
        assert_eq!(xlarge.len(), 1, "{xlarge:?}");
        let points = &xlarge[0];
        assert_eq!(points.len(), 4, "{points:?}");
        assert_eq!(points[0].1, points[1].1);
        assert_eq!(points[1].0, points[2].0, "the step down on 2025-03-01");
        assert!(points[2].1 > points[1].1, "0.20 is drawn below 0.23");
        assert_eq!(lines(&svg, LARGE).len(), 1);
        assert!(bands(&svg).is_empty());
        assert!(!svg.contains(UNKNOWN_LABEL));
    }

    #[test]
    fn a_missing_version_breaks_the_line_of_its_keys_over_a_marked_band() {
        let svg = render_incomplete_svg(&partial(), &[v2_missing()]).unwrap();
        // One band, from 2025-02-01 to 2025-03-01, named in the legend.
        let bands = bands(&svg);
        assert_eq!(bands.len(), 1, "{bands:?}");
        let (band_from, band_to) = bands[0];
        assert!(band_from < band_to);
        assert!(svg.contains(UNKNOWN_LABEL), "the band is in the legend");
        // ml.m5.xlarge: 0.23 from 2025-01-01 to where the band starts, nothing over
        // February, 0.20 from where it ends (2025-03-01) to 2025-04-01.
        let xlarge = lines(&svg, XLARGE);
        assert_eq!(xlarge.len(), 2, "two runs: {xlarge:?}");
        let (before, after) = (&xlarge[0], &xlarge[1]);
        let at_023 = before[0].1;
        assert!(before.iter().all(|p| p.1 == at_023), "{before:?}");
        assert_eq!(
            before.last().unwrap().0,
            band_from,
            "0.23 stops at the band"
        );
        assert_eq!(after[0].0, band_to, "0.20 starts where the band ends");
        assert!(after.iter().all(|p| p.1 > at_023), "0.20 only: {after:?}");
        for point in xlarge.iter().flatten() {
            assert!(
                point.0 <= band_from || point.0 >= band_to,
                "a point inside the band: {point:?}"
            );
        }
        // ml.m5.large, read from V2: its 0.115 runs on across February.
        let large = lines(&svg, LARGE);
        assert_eq!(large.len(), 1, "{large:?}");
        assert!(large[0][0].0 < band_from && large[0].last().unwrap().0 > band_to);
    }

    #[test]
    fn a_version_missing_for_every_key_to_the_end_ends_every_line_where_it_starts() {
        // V3 could not be read and no version after it was: every rate is unknown
        // from 2025-03-01 (day 59 of the chart: 31 + 28) to its end, 2025-04-01
        // (day 90).
        let missing = MissingVersion {
            version: "20250301000000".into(),
            seen_on: day(3),
            unknown_until: None,
            keys: Vec::new(),
            reason: "the file is cut short".into(),
        };
        let history = PriceHistory {
            series: vec![
                series("ml.m5.large", &[(1, "0.115")]),
                series("ml.m5.xlarge", &[(1, "0.23")]),
            ],
            ..partial()
        };
        let (since, until) = (history.since, history.until);
        let missing = [missing];
        for key_history in &history.series {
            let gaps = gaps(&missing, Some(&key_history.key), since, until);
            assert_eq!(gaps, [(59.0, 90.0)]);
            let usd = key_history.points[0]
                .usd_per_unit
                .unwrap()
                .to_f64()
                .unwrap();
            assert_eq!(
                steps(key_history, since, until, &gaps),
                [vec![(0.0, usd), (59.0, usd)]]
            );
        }
        let svg = render_incomplete_svg(&history, &missing).unwrap();
        assert_eq!(bands(&svg).len(), 1);
    }
}
