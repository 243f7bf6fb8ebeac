//! What the charts of [`compare`](crate::compare) and [`report`](crate::report)
//! share: the embedded font (behind the `charts` feature).

use plotters::style::{FontStyle, register_font};
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
