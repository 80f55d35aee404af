//! Synthetic defects on texture photographs, written in the MVTec AD layout, for measuring
//! detection and localisation where no real defect data can be downloaded.
//!
//! The photograph is divided into a checkerboard of blocks two patches wide; training patches
//! come from the "white" blocks, test patches from the "black" ones, so no test pixel was ever
//! seen in training while both sides share the photograph's perspective and lighting. Each
//! defect is painted through a soft opacity map; its mask is exactly where the opacity is
//! non-zero, so pixels outside the mask are the photograph's own. Everything is drawn from one
//! ChaCha8 seed: the same seed writes the same files.

mod paint;

pub use paint::paint;

use super::error::AnomalyError;
use crate::output::{OutputDir, Overwrite};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The kinds of defect, each a folder name under `test/` and `ground_truth/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectKind {
    /// A thin curved bright or dark line.
    Scratch,
    /// A small round dark or bright dot.
    Spot,
    /// A larger near-black ellipse with a soft rim.
    Hole,
    /// An irregular translucent blotch.
    Stain,
    /// A straight dark gash with a bright lip.
    Cut,
    /// A band across the patch where the texture is mirrored and shaded.
    Fold,
}

/// Every kind, in folder order.
pub const ALL_KINDS: [DefectKind; 6] = [
    DefectKind::Scratch,
    DefectKind::Spot,
    DefectKind::Hole,
    DefectKind::Stain,
    DefectKind::Cut,
    DefectKind::Fold,
];

impl DefectKind {
    /// The folder name.
    pub fn name(self) -> &'static str {
        match self {
            DefectKind::Scratch => "scratch",
            DefectKind::Spot => "spot",
            DefectKind::Hole => "hole",
            DefectKind::Stain => "stain",
            DefectKind::Cut => "cut",
            DefectKind::Fold => "fold",
        }
    }
}

/// How many patches of what size.
#[derive(Debug, Clone, Serialize)]
pub struct DefectConfig {
    /// Patch side in pixels.
    pub patch: usize,
    /// Defect-free training patches.
    pub train: usize,
    /// Defect-free test patches.
    pub test_good: usize,
    /// Test patches per defect kind.
    pub per_kind: usize,
    pub kinds: Vec<DefectKind>,
    pub seed: u64,
}

/// A grey texture: `height * width` values in [0, 1].
#[derive(Debug, Clone, Copy)]
pub struct Texture<'a> {
    pub pixels: &'a [f32],
    pub height: usize,
    pub width: usize,
}

/// One generated patch: pixels and, for defects, its mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub pixels: Vec<f32>,
    pub mask: Option<Vec<u8>>,
}

/// Checks sizes and counts before anything is drawn.
fn check(texture: Texture<'_>, c: &DefectConfig) -> Result<(), AnomalyError> {
    let bad = |m: String| Err(AnomalyError::InvalidSetting(m));
    if c.patch < 16 {
        return bad(format!(
            "--patch {}: patches must be at least 16 pixels",
            c.patch
        ));
    }
    let block = 2 * c.patch;
    if texture.height < 2 * block || texture.width < 2 * block {
        return bad(format!(
            "the texture is {}x{} (HxW) but --patch {} needs at least {}x{} (two blocks of two patches each way); use a smaller --patch",
            texture.height,
            texture.width,
            c.patch,
            2 * block,
            2 * block
        ));
    }
    if c.train == 0 || c.test_good + c.per_kind * c.kinds.len() == 0 {
        return bad("ask for at least one training and one test patch".into());
    }
    Ok(())
}

/// Cuts a patch at a random position inside a random block of the given checkerboard parity.
fn cut(texture: Texture<'_>, patch: usize, parity: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let block = 2 * patch;
    let (by, bx) = (texture.height / block, texture.width / block);
    let blocks: Vec<(usize, usize)> = (0..by)
        .flat_map(|y| (0..bx).map(move |x| (y, x)))
        .filter(|(y, x)| (y + x) % 2 == parity)
        .collect();
    let (y0, x0) = blocks[rng.random_range(0..blocks.len())];
    let oy = y0 * block + rng.random_range(0..=block - patch);
    let ox = x0 * block + rng.random_range(0..=block - patch);
    let mut out = Vec::with_capacity(patch * patch);
    for y in 0..patch {
        let row = (oy + y) * texture.width + ox;
        out.extend_from_slice(&texture.pixels[row..row + patch]);
    }
    out
}

/// Draws every patch: `(folder, patch)` pairs, training patches first.
pub fn generate(
    texture: Texture<'_>,
    c: &DefectConfig,
) -> Result<Vec<(String, Patch)>, AnomalyError> {
    check(texture, c)?;
    if texture.pixels.len() != texture.height * texture.width {
        return Err(AnomalyError::InvalidSetting(
            "the texture must be one grey image".into(),
        ));
    }
    let mut out = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
    for _ in 0..c.train {
        let pixels = cut(texture, c.patch, 0, &mut rng);
        out.push(("train/good".to_string(), Patch { pixels, mask: None }));
    }
    for _ in 0..c.test_good {
        let pixels = cut(texture, c.patch, 1, &mut rng);
        out.push(("test/good".to_string(), Patch { pixels, mask: None }));
    }
    for &kind in &c.kinds {
        for _ in 0..c.per_kind {
            let mut pixels = cut(texture, c.patch, 1, &mut rng);
            let mask = paint(kind, &mut pixels, c.patch, &mut rng);
            out.push((
                format!("test/{}", kind.name()),
                Patch {
                    pixels,
                    mask: Some(mask),
                },
            ));
        }
    }
    Ok(out)
}

/// Grey PNG bytes of a `side × side` plane of bytes.
fn png(values: impl Iterator<Item = u8>, side: usize) -> Result<Vec<u8>, AnomalyError> {
    let plane: Vec<f32> = values.map(|v| f32::from(v) / 255.0).collect();
    let shape = crate::data::ImageShape {
        channels: 1,
        height: side,
        width: side,
    };
    Ok(crate::denoise::encode_image_png(&plane, shape)?)
}

/// Generates the patches and writes them under `out` in the MVTec AD layout, with a
/// `defects.json` manifest. `out` must be new or empty; with [`Overwrite::Replace`]
/// (`--force`) files of the same names are replaced and others stay (`crate::output`).
pub fn write_layout(
    texture: Texture<'_>,
    c: &DefectConfig,
    out: &Path,
    overwrite: Overwrite,
) -> Result<usize, AnomalyError> {
    let mut dir = OutputDir::prepare(out, overwrite)?;
    let patches = generate(texture, c)?;
    let mut write = |rel: PathBuf, bytes: &[u8]| dir.write(rel, bytes).map(|_| ());
    let mut index: std::collections::BTreeMap<String, usize> = Default::default();
    for (folder, patch) in &patches {
        let i = index.entry(folder.clone()).or_default();
        let name = format!("{i:03}");
        *i += 1;
        let bytes = png(
            patch.pixels.iter().map(|&v| (v * 255.0).round() as u8),
            c.patch,
        )?;
        write(Path::new(folder).join(format!("{name}.png")), &bytes)?;
        if let Some(mask) = &patch.mask {
            let defect = folder.trim_start_matches("test/");
            let bytes = png(mask.iter().map(|&m| m * 255), c.patch)?;
            let path = Path::new("ground_truth")
                .join(defect)
                .join(format!("{name}_mask.png"));
            write(path, &bytes)?;
        }
    }
    let manifest = serde_json::to_vec_pretty(c).unwrap_or_default();
    write(PathBuf::from("defects.json"), &manifest)?;
    Ok(patches.len())
}

#[cfg(test)]
mod tests;
