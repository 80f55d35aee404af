//! What a segmentation run (`--synthetic`) validates on: every other validation image with a
//! defect painted once, from a fixed stream, so that every epoch (and a resumed run) is measured
//! on the same task; and the image AUROC of the clean validation images against the painted ones
//! that `metrics.csv` logs per epoch (`val_auroc`).
//!
//! The validation defects come from another painter than the training anomalies: the scratches,
//! spots, holes, stains, cuts and folds of `cae data make-defects` (`crate::anomaly::defects`)
//! for square grey images. So the validation loss and AUROC measure how the model generalises to
//! defect shapes it was never trained on — the question real defects ask — rather than how well
//! it learnt its own generator; settings are chosen on them. Other images (colour, not square)
//! are validated on the training generator with a fixed stream.

use super::batches::paint_synthetic;
use crate::anomaly::defects::{ALL_KINDS, paint};
use crate::anomaly::metrics::auroc;
use crate::anomaly::score::{DEFAULT_WINDOW, ScoreKind, score_set};
use crate::data::{ImageSet, ImageShape};
use crate::model::Autoencoder;
use crate::synthetic::SyntheticSpec;
use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Validation images with their synthetic anomalies.
#[derive(Debug, Clone)]
pub(super) struct SyntheticVal {
    /// The validation images, every other one with a painted defect.
    pub inputs: ImageSet,
    /// Their `1 × h × w` target masks.
    pub masks: ImageSet,
    /// True where an image got an anomaly.
    pub anomalous: Vec<bool>,
}

impl SyntheticVal {
    /// Paints `spec` on `val`, foreign texture taken from `donors` (the training images).
    pub fn new(val: &ImageSet, donors: &ImageSet, spec: &SyntheticSpec, seed: u64) -> SyntheticVal {
        let mut inputs = val.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (c, h, w) = (val.shape.channels, val.shape.height, val.shape.width);
        let plane = (h * w).max(1);
        let pixels = if donors.is_empty() || val.is_empty() {
            vec![0.0; val.len() * plane]
        } else if c == 1 && h == w {
            let mut masks = Vec::with_capacity(val.len() * plane);
            for (i, image) in inputs.pixels.chunks_mut(plane).enumerate() {
                if i % 2 == 1 {
                    let kind = ALL_KINDS[rng.random_range(0..ALL_KINDS.len())];
                    masks.extend(
                        paint(kind, image, h, &mut rng)
                            .iter()
                            .map(|&m| f32::from(m)),
                    );
                } else {
                    masks.extend(std::iter::repeat_n(0.0, plane));
                }
            }
            masks
        } else {
            paint_synthetic(spec, &mut inputs.pixels, donors, &mut rng)
        };
        let anomalous = pixels
            .chunks(plane)
            .map(|m| m.iter().any(|&v| v > 0.0))
            .collect();
        let masks = ImageSet {
            shape: ImageShape {
                channels: 1,
                ..val.shape
            },
            pixels,
            labels: None,
            class_names: None,
            origins: val.origins.clone(),
        };
        SyntheticVal {
            inputs,
            masks,
            anomalous,
        }
    }

    /// Image AUROC (`mask` score) of the clean validation images (normal) against the
    /// corrupted ones that got an anomaly; `None` when either side is empty.
    pub fn auroc(
        &self,
        model: &Autoencoder,
        clean: &ImageSet,
        batch_size: usize,
        device: &Device,
    ) -> Option<f64> {
        let kind = ScoreKind::Mask {
            window: DEFAULT_WINDOW,
        };
        let normal = score_set(model, clean, kind, batch_size, device, false).ok()?;
        let changed: Vec<usize> = (0..self.anomalous.len())
            .filter(|&i| self.anomalous[i])
            .collect();
        let corrupted = score_set(
            model,
            &self.inputs.select(&changed),
            kind,
            batch_size,
            device,
            false,
        )
        .ok()?;
        let scores: Vec<f64> = normal
            .scores
            .iter()
            .chain(&corrupted.scores)
            .copied()
            .collect();
        let truth: Vec<bool> = (0..scores.len())
            .map(|i| i >= normal.scores.len())
            .collect();
        auroc(&scores, &truth)
    }
}
