//! What the charts of [`compare`](crate::compare), [`report`](crate::report) and
//! [`pricing::history`](crate::pricing::history) share (behind the `charts`
//! feature): the embedded font, and writing a drawing as SVG or PNG.

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::Once;

/// Registers the embedded DejaVu font with plotters, once (charts need no system fonts).
pub(crate) fn register_fonts() {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        // The embedded fonts are valid; a failure here would only lose labels' metrics.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// A chart, drawn on whichever backend it is written with.
pub(crate) trait Drawing {
    /// Draws the whole chart on `root`; why not, in words.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// The drawing as an SVG document of `size` pixels.
pub(crate) fn svg(drawing: &impl Drawing, size: (u32, u32)) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        drawing.draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Writes the drawing to `path`: SVG or PNG by its extension (any case).
pub(crate) fn write(drawing: &impl Drawing, path: &Path, size: (u32, u32)) -> Result<(), String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => std::fs::write(path, svg(drawing, size)?).map_err(|e| e.to_string()),
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            drawing.draw(&root)?;
            root.present().map_err(|e| e.to_string())
        }
        _ => Err("unknown picture format: name the file .svg or .png".into()),
    }
}
