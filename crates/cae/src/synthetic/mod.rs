//! Synthetic anomalies for self-supervised inspection models (DRAEM-style, Zavrtanik et al.
//! 2021): normal training images are corrupted on the fly and a segmentation model learns to
//! predict where. Real defects are never needed; the model learns "what does not belong here"
//! from normal images alone.
//!
//! Four kinds, each painted through a mask that is also the training target:
//!
//! | kind | region | change |
//! | --- | --- | --- |
//! | `dark` | thresholded Perlin noise (blobs of several scales) | darkened by 20–80 % (inactive areas, stains) |
//! | `texture` | thresholded Perlin noise | blended with foreign texture: another training image turned and shifted, or a generated noise texture |
//! | `crack` | 1–3 thin random-walk lines | darkened by 30–90 % (cracks, scratches, broken fingers) |
//! | `line` | 1–4 straight segments along an image axis, 0.4–1.5 px wide | darkened by 20–80 % of their coverage (finger interruptions, scratches along a machining direction) |
//!
//! They are deliberately unlike `cae data make-defects` (`crate::anomaly::defects`), which paints
//! the test defects of the texture benchmarks and the validation defects of segmentation runs: a
//! model trained here is never shown the defects it is validated or measured on.
//!
//! Everything is drawn from the caller's [`ChaCha8Rng`], so a stream seeded per epoch and step
//! gives the same corruption after a resume.

mod crack;
mod line;
mod perlin;

use crate::data::ImageSet;
use crate::imageops::{box_filter, gaussian_blur};
use crate::quote::quote;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One kind of synthetic anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntheticKind {
    Dark,
    Texture,
    Crack,
    Line,
}

const NAMES: [(&str, SyntheticKind); 4] = [
    ("dark", SyntheticKind::Dark),
    ("texture", SyntheticKind::Texture),
    ("crack", SyntheticKind::Crack),
    ("line", SyntheticKind::Line),
];

impl SyntheticKind {
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(n, _)| n)
    }
}

/// Which synthetic anomalies a segmentation run trains on and how often an image gets one.
///
/// Written `dark,texture,crack,line` (any subset, any order), optionally followed by `@P` for the
/// share of training images that are corrupted (default 0.5, as DRAEM); stored in run configs as
/// that text.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    pub kinds: Vec<SyntheticKind>,
    /// Probability that an image is corrupted at all.
    pub probability: f64,
}

/// The default share of corrupted training images.
pub const DEFAULT_PROBABILITY: f64 = 0.5;

/// Why a synthetic-anomaly spec is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyntheticError {
    #[error(
        "synthetic anomalies {text}: unknown kind {kind}; use any of dark, texture, crack, line (e.g. dark,texture,crack@0.5)", kind = quote(.kind), text = quote(.text))]
    Unknown { text: String, kind: String },
    #[error(
        "synthetic anomalies {text}: the probability after '@' must be a number in (0, 1], got {value}", text = quote(.text), value = quote(.value))]
    Probability { text: String, value: String },
    #[error("synthetic anomalies are empty: use e.g. dark,texture,crack")]
    Empty,
}

impl std::str::FromStr for SyntheticSpec {
    type Err = SyntheticError;
    fn from_str(text: &str) -> Result<SyntheticSpec, SyntheticError> {
        let (list, probability) = match text.split_once('@') {
            Some((list, p)) => {
                let bad = || SyntheticError::Probability {
                    text: text.to_string(),
                    value: p.trim().to_string(),
                };
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(p > 0.0 && p <= 1.0) {
                    return Err(bad());
                }
                (list, p)
            }
            None => (text, DEFAULT_PROBABILITY),
        };
        let mut kinds = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let kind = NAMES
                .iter()
                .find(|(n, _)| *n == item)
                .map(|(_, k)| *k)
                .ok_or_else(|| SyntheticError::Unknown {
                    text: text.to_string(),
                    kind: item.to_string(),
                })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            return Err(SyntheticError::Empty);
        }
        Ok(SyntheticSpec { kinds, probability })
    }
}

impl fmt::Display for SyntheticSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
        write!(f, "{}@{}", names.join(","), self.probability)
    }
}

impl Serialize for SyntheticSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for SyntheticSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SyntheticSpec, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One image of a batch, planar CHW, and where foreign texture may come from.
pub struct Canvas<'a> {
    pub pixels: &'a mut [f32],
    /// `(channels, height, width)`.
    pub shape: (usize, usize, usize),
    /// Other images of the same shape (the training set), for `texture`.
    pub donors: &'a dyn Fn(&mut ChaCha8Rng) -> &'a [f32],
}

impl SyntheticSpec {
    /// Paints anomalies on every image of `images` (`[n, c, h, w]` of `donors`' shape) with one
    /// stream, drawing foreign texture from `donors`; returns the `[n, 1, h, w]` masks.
    pub fn paint_all(
        &self,
        images: &mut [f32],
        donors: &ImageSet,
        rng: &mut ChaCha8Rng,
    ) -> Vec<f32> {
        let s = donors.shape;
        let pick =
            |rng: &mut ChaCha8Rng| -> &[f32] { donors.image(rng.random_range(0..donors.len())) };
        let mut masks = Vec::with_capacity(images.len() / s.channels.max(1));
        for image in images.chunks_mut(s.len().max(1)) {
            masks.extend(self.corrupt(
                Canvas {
                    pixels: image,
                    shape: (s.channels, s.height, s.width),
                    donors: &pick,
                },
                rng,
            ));
        }
        masks
    }

    /// Corrupts `canvas` in place (or leaves it, with probability 1 − `probability`) and returns
    /// the `height × width` target mask: 1 where the image was changed, else 0.
    pub fn corrupt(&self, canvas: Canvas<'_>, rng: &mut ChaCha8Rng) -> Vec<f32> {
        let (c, h, w) = canvas.shape;
        let none = vec![0.0; h * w];
        if canvas.pixels.len() != c * h * w || !rng.random_bool(self.probability) {
            return none;
        }
        let kind = self.kinds[rng.random_range(0..self.kinds.len())];
        let (alpha, target) = match kind {
            SyntheticKind::Crack => {
                let lines = crack::draw(h, w, rng);
                let target = lines.iter().map(|&v| f32::from(v > 0.3)).collect();
                (lines, target)
            }
            SyntheticKind::Line => {
                let lines = line::draw(h, w, rng);
                // Thinner than a pixel, a line is a faint row: mark every pixel it visibly covers.
                let target = lines.iter().map(|&v| f32::from(v > 0.15)).collect();
                (lines, target)
            }
            SyntheticKind::Dark | SyntheticKind::Texture => blob(h, w, rng),
        };
        if target.iter().sum::<f32>() < 4.0 {
            return none;
        }
        let plane = h * w;
        match kind {
            SyntheticKind::Dark | SyntheticKind::Crack | SyntheticKind::Line => {
                let depth = match kind {
                    SyntheticKind::Dark | SyntheticKind::Line => rng.random_range(0.2..0.8),
                    _ => rng.random_range(0.3..0.9),
                };
                for ch in 0..c {
                    let p = &mut canvas.pixels[ch * plane..(ch + 1) * plane];
                    for (v, a) in p.iter_mut().zip(&alpha) {
                        *v *= 1.0 - depth * a;
                    }
                }
            }
            SyntheticKind::Texture => {
                let source = foreign_texture(&canvas, rng);
                let opacity = rng.random_range(0.3..1.0);
                for ((v, t), i) in canvas.pixels.iter_mut().zip(&source).zip(0..) {
                    let a = opacity * alpha[i % plane];
                    *v = *v * (1.0 - a) + a * t;
                }
            }
        }
        target
    }
}

/// A blob mask: Perlin noise of a random scale, thresholded and softened. Returns the soft
/// opacity (zero beyond 2 pixels of the target) and the hard target (opacity > ½).
fn blob(h: usize, w: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
    let cells = 1usize << rng.random_range(1..5);
    let field = perlin::noise(h, w, [cells, cells], rng);
    let level = rng.random_range(0.2..0.5);
    let hard: Vec<f32> = field.iter().map(|&v| f32::from(v > level)).collect();
    let mut soft = gaussian_blur(&hard, (1, h, w), 0.7);
    let target: Vec<f32> = soft.iter().map(|&v| f32::from(v > 0.5)).collect();
    // The soft rim stays within 2 pixels of the target, so nothing changes unmarked far away.
    let near = box_filter(&target, (h, w), 5);
    for (s, n) in soft.iter_mut().zip(near) {
        // Less than one target pixel in the 5×5 window (running sums leave rounding residue).
        if n < 0.5 / 25.0 {
            *s = 0.0;
        }
    }
    (soft, target)
}

/// Texture that does not belong: another training image, turned by a multiple of 90° (when
/// square) and shifted circularly, or a generated noise texture around the image's mean.
fn foreign_texture(canvas: &Canvas<'_>, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let (c, h, w) = canvas.shape;
    let plane = h * w;
    if rng.random_bool(0.5) {
        let donor = (canvas.donors)(rng);
        let turns = if h == w { rng.random_range(0..4) } else { 0 };
        let (dy, dx) = (rng.random_range(0..h), rng.random_range(0..w));
        let mut out = vec![0.0; c * plane];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    // Source pixel of (y, x) after `turns` quarter turns, then the shift.
                    let (mut sy, mut sx) = ((y + dy) % h, (x + dx) % w);
                    for _ in 0..turns {
                        (sy, sx) = (sx, h - 1 - sy);
                    }
                    out[ch * plane + y * w + x] = donor[ch * plane + sy * w + sx];
                }
            }
        }
        out
    } else {
        let mean = canvas.pixels.iter().sum::<f32>() / canvas.pixels.len().max(1) as f32;
        let cells = 1usize << rng.random_range(2..6);
        let amplitude = rng.random_range(0.5..2.0) * mean.max(0.1);
        let field = perlin::noise(h, w, [cells, cells], rng);
        (0..c)
            .flat_map(|_| field.iter().map(|&v| (mean + amplitude * v).max(0.0)))
            .collect()
    }
}

#[cfg(test)]
mod tests;
