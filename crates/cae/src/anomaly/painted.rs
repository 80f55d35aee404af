//! Painted validation: a run's validation images, every other one with a defect painted once
//! from a fixed stream, so that every epoch (and a resumed run, and a later `cae anomaly eval
//! RUN --partition painted`) is measured on the same task. Training logs its image AUROC per
//! epoch (`val_auroc` in `metrics.csv`); the anomaly commands score it like any labelled set,
//! with its masks, so score settings can be chosen without a single real defect.
//!
//! The defects come from another painter than the training anomalies: the scratches, spots,
//! holes, stains, cuts and folds of `cae data make-defects` (`crate::anomaly::defects`) for
//! square grey images, each kept at a random strength from faint to full ([`PAINT_STRENGTH`]). So the AUROC measures how the model generalises to defect shapes it was
//! never trained on — the question real defects ask — rather than how well it learnt its own
//! generator; settings are chosen on it. Other images (colour, not square) are painted with the
//! run's training generator (`--synthetic`), from a fixed stream.

use super::dataset::AnomalySet;
use super::defects::{ALL_KINDS, paint};
use super::metrics::auroc;
use super::score::{DEFAULT_WINDOW, ScoreKind, score_set};
use crate::data::{ImageSet, ImageShape};
use crate::model::Autoencoder;
use crate::synthetic::SyntheticSpec;
use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How much of each painted change is kept, drawn per image: from 5 % (a defect barely
/// darker or lighter than the part) to all of it. At full strength alone, make-defects'
/// near-black and near-white marks are found by every model worth keeping (validation AUROC
/// 0.99–1.00 on ELPV for all of them), so the set could not tell two settings apart; the faint
/// end keeps it informative, as real defects range from stark to barely visible.
pub const PAINT_STRENGTH: std::ops::RangeInclusive<f32> = 0.05..=1.0;

/// Mixed into the partition seed for the painting stream (the same salt as denoising's fixed
/// validation noise), so the painted set depends on that seed only (the run's, or its
/// `--split-seed`).
pub const PAINT_SALT: u64 = 0x7661_6c00;

/// Validation images with their painted defects.
#[derive(Debug, Clone)]
pub struct PaintedValidation {
    /// The validation images, every other one with a painted defect.
    pub inputs: ImageSet,
    /// Their `1 × h × w` target masks.
    pub masks: ImageSet,
    /// True where an image got a defect.
    pub anomalous: Vec<bool>,
}

impl PaintedValidation {
    /// Paints `val` with the run seed `seed`: make-defects' painter on square grey images,
    /// else `synthetic` (foreign texture from `donors`, the training images). `None` when
    /// neither applies (colour or non-square images of a run trained without `--synthetic`).
    pub fn new(
        val: &ImageSet,
        donors: &ImageSet,
        synthetic: Option<&SyntheticSpec>,
        seed: u64,
    ) -> Option<PaintedValidation> {
        let mut inputs = val.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ PAINT_SALT);
        let (c, h, w) = (val.shape.channels, val.shape.height, val.shape.width);
        let plane = (h * w).max(1);
        let pixels = if donors.is_empty() || val.is_empty() {
            vec![0.0; val.len() * plane]
        } else if c == 1 && h == w {
            let mut masks = Vec::with_capacity(val.len() * plane);
            for (i, image) in inputs.pixels.chunks_mut(plane).enumerate() {
                if i % 2 == 1 {
                    let kind = ALL_KINDS[rng.random_range(0..ALL_KINDS.len())];
                    let clean = image.to_vec();
                    let mask = paint(kind, image, h, &mut rng);
                    let strength = rng.random_range(PAINT_STRENGTH);
                    for (p, c) in image.iter_mut().zip(&clean) {
                        *p = c + strength * (*p - c);
                    }
                    masks.extend(mask.iter().map(|&m| f32::from(m)));
                } else {
                    masks.extend(std::iter::repeat_n(0.0, plane));
                }
            }
            masks
        } else {
            synthetic?.paint_all(&mut inputs.pixels, donors, &mut rng)
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
        Some(PaintedValidation {
            inputs,
            masks,
            anomalous,
        })
    }

    /// The painted images only.
    fn painted(&self) -> ImageSet {
        let changed: Vec<usize> = (0..self.anomalous.len())
            .filter(|&i| self.anomalous[i])
            .collect();
        self.inputs.select(&changed)
    }

    /// Every clean validation image (normal) followed by the painted ones (anomalous, with
    /// their masks): what the anomaly commands score as `--partition painted`.
    pub fn anomaly_set(&self, clean: &ImageSet, source: &str) -> AnomalySet {
        let painted = self.painted();
        let plane = clean.shape.height * clean.shape.width;
        let mut masks = vec![vec![0u8; plane]; clean.len()];
        masks.extend(
            (0..self.anomalous.len())
                .filter(|&i| self.anomalous[i])
                .map(|i| {
                    self.masks
                        .image(i)
                        .iter()
                        .map(|&m| u8::from(m > 0.5))
                        .collect()
                }),
        );
        let mut images = clean.clone();
        images.pixels.extend_from_slice(&painted.pixels);
        images
            .origins
            .extend(painted.origins.iter().map(|o| format!("{o} (painted)")));
        images.labels = None;
        images.class_names = None;
        AnomalySet {
            anomalous: (0..images.len()).map(|i| i >= clean.len()).collect(),
            images,
            masks: Some(masks),
            source: source.to_string(),
        }
    }

    /// Image AUROC (`mask` score) of the clean validation images (normal) against the
    /// painted ones; `None` when either side is empty.
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
        let corrupted = score_set(model, &self.painted(), kind, batch_size, device, false).ok()?;
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
