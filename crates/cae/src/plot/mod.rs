//! PNG pictures: image grids (originals above reconstructions), line charts of training curves
//! and a colormap for heatmaps. Everything here is a pure function that returns an image or the
//! encoded PNG bytes; writing files is the caller's job.
//!
//! Text is drawn with an embedded font (`DejaVuSans-subset.ttf`, see `LICENSE-DejaVu.txt`), so
//! no system font, fontconfig or freetype is needed at run time.

pub mod colormap;
pub mod curve;
pub mod filters;
mod font;
pub mod grid;
pub mod histogram;
pub mod overlay;

pub use colormap::colormap;
pub use curve::{Series, line_chart};
pub use grid::{
    RECONSTRUCTION_GAP, encode_png, image_grid, label_rows, labelled_reconstruction_grid,
    reconstruction_grid,
};
pub use histogram::score_histogram;
pub use overlay::{Overlay, anomaly_overlay, map_top, overlay_sheet};

/// Why a picture could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The requested picture size is unusable.
    #[error("invalid picture size {width}x{height}: {reason}")]
    Size {
        width: u32,
        height: u32,
        reason: &'static str,
    },
    /// The embedded font could not be loaded.
    #[error("could not load the embedded chart font")]
    Font,
    /// Drawing the chart failed.
    #[error("could not draw chart: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("could not encode PNG: {0}")]
    Encode(String),
}
