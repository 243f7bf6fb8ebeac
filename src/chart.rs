//! What the charts of [`compare`](crate::compare), [`report`](crate::report) and
//! [`pricing::history`](crate::pricing::history) share (behind the `charts`
//! feature): the embedded font, and writing a drawing as SVG or PNG.

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::{FontStyle, register_font};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

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
///
/// The picture is drawn to a temporary file beside `path` and renamed over it only
/// once whole: a drawing that fails leaves `path` as it was (no half-drawn file) and
/// no temporary file behind.
pub(crate) fn write(drawing: &impl Drawing, path: &Path, size: (u32, u32)) -> Result<(), String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let ext = match ext.as_deref() {
        Some(ext @ ("svg" | "png")) => ext.to_owned(),
        _ => return Err("unknown picture format: name the file .svg or .png".into()),
    };
    // Drawn in a directory of its own (made 0700, never one that exists): the
    // encoders open their file by name, and a name beside `path` in a shared
    // directory could be a link planted to a file of the user's.
    let staging = staging_beside(path).map_err(|e| {
        format!(
            "cannot make a temporary directory beside {}: {e}",
            path.display()
        )
    })?;
    let temp = staging.join(format!("picture.{ext}"));
    let drawn = (|| {
        if ext == "svg" {
            std::fs::write(&temp, svg(drawing, size)?).map_err(|e| e.to_string())
        } else {
            let root = BitMapBackend::new(&temp, size).into_drawing_area();
            drawing.draw(&root)?;
            root.present().map_err(|e| e.to_string())
            // A root dropped without `present` (the draw failed) writes what it has:
            // to the temporary file, deleted below.
        }
    })()
    .and_then(|()| std::fs::rename(&temp, path).map_err(|e| e.to_string()));
    if drawn.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    let _ = std::fs::remove_dir(&staging);
    drawn
}

/// A new directory `.<name>.<pid>-<n>.tmp` in `path`'s directory (same file system
/// for the rename), owner-only; never one that exists already.
fn staging_beside(path: &Path) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let next = || {
        path.with_file_name(format!(
            ".{name}.{}-{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    };
    crate::util::create_at_a_free_name(next, |dir| builder.create(dir)).map(|(dir, ())| dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::{RED, WHITE};

    /// Paints the background, then fails.
    struct Failing;

    impl Drawing for Failing {
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            Err("the axis cannot be laid out".into())
        }
    }

    /// Paints the background.
    struct Filled;

    impl Drawing for Filled {
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
            root.fill(&RED).map_err(|e| e.to_string())
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_drawing_leaves_the_file_as_it_was_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["chart.png", "chart.svg"] {
            let path = dir.path().join(name);
            std::fs::write(&path, b"the chart of yesterday").unwrap();
            let err = write(&Failing, &path, (40, 30)).unwrap_err();
            assert_eq!(err, "the axis cannot be laid out");
            assert_eq!(std::fs::read(&path).unwrap(), b"the chart of yesterday");
        }
        assert_eq!(names(dir.path()), ["chart.png", "chart.svg"]);
    }

    #[test]
    fn a_drawing_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("chart.PNG");
        std::fs::write(&png, b"old").unwrap();
        write(&Filled, &png, (40, 30)).unwrap();
        assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
        let svg = dir.path().join("chart.svg");
        write(&Filled, &svg, (40, 30)).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
        assert_eq!(names(dir.path()), ["chart.PNG", "chart.svg"]);
    }

    /// Links planted at the names a drawing would be made at (in a shared
    /// directory, to a file of the user's) are neither written through nor put
    /// in the chart's place.
    #[cfg(unix)]
    #[test]
    fn links_at_the_temporary_names_are_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("notes.txt");
        std::fs::write(&victim, b"mine").unwrap();
        let pid = std::process::id();
        for n in 0..50 {
            for name in [
                format!(".chart.svg.{pid}-{n}.tmp"),
                format!(".chart.svg.{pid}-{n}.tmp.svg"),
            ] {
                std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
            }
        }
        let chart = dir.path().join("chart.svg");
        write(&Filled, &chart, (40, 30)).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"mine");
        let meta = std::fs::symlink_metadata(&chart).unwrap();
        assert!(meta.is_file(), "the chart is a file, not a link");
        assert!(std::fs::read_to_string(&chart).unwrap().contains("<svg"));
    }
}
