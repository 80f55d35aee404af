//! What a segmentation run (`--synthetic`) validates on: the validation images with synthetic
//! anomalies painted once, from a fixed stream, so that every epoch (and a resumed run) is
//! measured on the same task; and the image AUROC of clean against corrupted validation images
//! that `metrics.csv` logs per epoch (`val_synthetic_auroc`), the figure that says whether the
//! model is learning to tell them apart.

use super::batches::paint_synthetic;
use crate::anomaly::metrics::auroc;
use crate::anomaly::score::{DEFAULT_WINDOW, ScoreKind, score_set};
use crate::data::{ImageSet, ImageShape};
use crate::model::Autoencoder;
use crate::synthetic::SyntheticSpec;
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Validation images with their synthetic anomalies.
#[derive(Debug, Clone)]
pub(super) struct SyntheticVal {
    /// The corrupted images (about `probability` of them changed).
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
        let pixels = if donors.is_empty() || val.is_empty() {
            vec![0.0; val.len() * val.shape.height * val.shape.width]
        } else {
            paint_synthetic(spec, &mut inputs.pixels, donors, &mut rng)
        };
        let plane = (val.shape.height * val.shape.width).max(1);
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
