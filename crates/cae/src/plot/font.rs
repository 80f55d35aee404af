//! The embedded chart font: registers `DejaVuSans-subset.ttf` with plotters' `ab_glyph` text
//! backend once per process, under the family name plotters uses by default (`sans-serif`).

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use super::PlotError;

/// A subset of DejaVu Sans (Latin-1, Greek, a few symbols); see `LICENSE-DejaVu.txt`.
static FONT_BYTES: &[u8] = include_bytes!("DejaVuSans-subset.ttf");

/// Family name under which the font is registered; use it in every text style.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the embedded font (once); errors if the font data cannot be parsed.
pub(crate) fn ensure_registered() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}
