//! The no-learning baseline every evaluation is printed beside: a per-pixel Gaussian. The mean
//! and standard deviation of every pixel over the training images say what a normal image looks
//! like at each place; an image's anomaly map is its σ-smoothed |z-score| (channels averaged),
//! its score the map's maximum. Loaded through the run's own data rule (resize, normalisation),
//! it is what a model must beat to be worth its training: on aligned inspection images (solar
//! cells, printed parts) it is strong, and a user should know when it does as well as the
//! network. The second baseline, the aligned patch neighbours, is `super::neighbours`.

use super::dataset::AnomalySet;
use super::error::AnomalyError;
use super::neighbours::PatchNeighbours;
use super::report::{Evaluation, evaluate};
use super::score::{ScoreKind, ScoredSet};
use super::threshold::{FitScores, ThresholdMethod, fit};
use crate::data::{ImageSet, ImageShape};
use crate::imageops::gaussian_blur;

/// Floor of the per-pixel standard deviation, so that pixels constant over the training images
/// (a black border) do not give infinite z-scores.
const STD_FLOOR: f32 = 1e-2;

/// Per-pixel mean and standard deviation of a set of normal images.
#[derive(Debug, Clone)]
pub struct PixelGaussian {
    pub shape: ImageShape,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// How a baseline map becomes an image score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BaselineScore {
    /// Mean |z| over the image.
    MeanZ,
    /// 99th percentile of |z|.
    P99Z,
    /// Maximum of the Gaussian-smoothed |z| (σ in pixels).
    MaxSmoothedZ { sigma: f64 },
}

impl std::fmt::Display for BaselineScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaselineScore::MeanZ => f.write_str("mean |z|"),
            BaselineScore::P99Z => f.write_str("p99 |z|"),
            BaselineScore::MaxSmoothedZ { sigma } => write!(f, "max of σ {sigma} smoothed |z|"),
        }
    }
}

/// The baseline scores `cae anomaly eval` reports.
pub const BASELINE_SCORES: [BaselineScore; 3] = [
    BaselineScore::MeanZ,
    BaselineScore::P99Z,
    BaselineScore::MaxSmoothedZ { sigma: 2.0 },
];

impl PixelGaussian {
    /// Fits the per-pixel statistics; `None` for an empty set.
    pub fn fit(train: &ImageSet) -> Option<PixelGaussian> {
        let (mean, mut std) = train.pixel_mean_std()?;
        std.iter_mut().for_each(|s| *s = s.max(STD_FLOOR));
        Some(PixelGaussian {
            shape: train.shape,
            mean,
            std,
        })
    }

    /// |z| of one image, channels averaged (`height * width`).
    fn z_map(&self, image: &[f32]) -> Vec<f32> {
        let s = self.shape;
        let plane = s.height * s.width;
        let mut out = vec![0f32; plane];
        for c in 0..s.channels {
            for (p, o) in out.iter_mut().enumerate() {
                let i = c * plane + p;
                *o += ((image[i] - self.mean[i]) / self.std[i]).abs();
            }
        }
        out.iter_mut().for_each(|v| *v /= s.channels.max(1) as f32);
        out
    }

    /// Scores every image of `set` (which must have the fitted shape).
    pub fn score(&self, set: &ImageSet, how: BaselineScore) -> Result<ScoredSet, AnomalyError> {
        if set.shape != self.shape {
            return Err(AnomalyError::BaselineShape {
                fitted: self.shape,
                given: set.shape,
            });
        }
        let (h, w) = (self.shape.height, self.shape.width);
        let mut scores = Vec::with_capacity(set.len());
        let mut maps = Vec::with_capacity(set.len());
        for i in 0..set.len() {
            let z = self.z_map(set.image(i));
            let (score, map) = match how {
                BaselineScore::MeanZ => {
                    let m = z.iter().map(|&v| f64::from(v)).sum::<f64>() / z.len().max(1) as f64;
                    (m, z)
                }
                BaselineScore::P99Z => {
                    let mut sorted: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
                    sorted.sort_by(f64::total_cmp);
                    let p = super::threshold::percentile(&sorted, 99.0).unwrap_or(0.0);
                    (p, z)
                }
                BaselineScore::MaxSmoothedZ { sigma } => {
                    let map = gaussian_blur(&z, (1, h, w), sigma);
                    let m = map
                        .iter()
                        .map(|&v| f64::from(v))
                        .fold(f64::NEG_INFINITY, f64::max);
                    (m, map)
                }
            };
            scores.push(score);
            maps.push(map);
        }
        Ok(ScoredSet {
            // The baseline has no score kind of its own; reports name it by `BaselineScore`.
            kind: ScoreKind::MaxSmoothed { sigma: 2.0 },
            scores,
            maps,
            reconstructions: None,
        })
    }
}

/// One baseline score evaluated like the model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BaselineEvaluation {
    pub baseline: String,
    /// How the map became a score, in words (`mean |z|`, `p99 |z|`, `max of σ 2 smoothed |z|`).
    pub statistic: String,
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

/// Fits the no-learning baselines on a run's training partition (`train`, as the run's data rule
/// loads it: `crate::run::partition`) — the per-pixel Gaussian with each of
/// [`BASELINE_SCORES`], and the aligned patch neighbours (`super::neighbours`) — and evaluates
/// each on `set`; with `method`, each gets its own threshold fitted the same way on the
/// validation partition `val`, so F1, precision and recall compare with the model's.
pub fn evaluate_baselines(
    train: &ImageSet,
    val: &ImageSet,
    set: &AnomalySet,
    method: Option<ThresholdMethod>,
) -> Result<Vec<BaselineEvaluation>, AnomalyError> {
    let gaussian = PixelGaussian::fit(train).ok_or(AnomalyError::NoTrainingImages)?;
    let mut out = Vec::new();
    for how in BASELINE_SCORES {
        let scored = gaussian.score(&set.images, how)?;
        let val_scored = match method {
            Some(_) if !val.is_empty() => Some(gaussian.score(val, how)?),
            _ => None,
        };
        out.push(evaluate_one(
            "per-pixel Gaussian (no learning)",
            how.to_string(),
            &scored,
            val_scored.as_ref(),
            set,
            method,
        )?);
    }
    if let Some(neighbours) = PatchNeighbours::fit(train) {
        let scored = neighbours.score(&set.images)?;
        let val_scored = match method {
            Some(_) if !val.is_empty() => Some(neighbours.score(val)?),
            _ => None,
        };
        out.push(evaluate_one(
            "aligned patch neighbours (no learning)",
            format!(
                "max of σ {} smoothed {p}x{p} patch distance ({} nearest, ±{} px)",
                super::neighbours::SIGMA,
                super::neighbours::NEIGHBOURS,
                super::neighbours::SHIFT,
                p = super::neighbours::PATCH,
            ),
            &scored,
            val_scored.as_ref(),
            set,
            method,
        )?);
    }
    Ok(out)
}

/// One baseline's evaluation on `set`, with a threshold fitted by `method` on the scores of the
/// normal validation images (`val`), when given.
fn evaluate_one(
    baseline: &str,
    statistic: String,
    scored: &ScoredSet,
    val: Option<&ScoredSet>,
    set: &AnomalySet,
    method: Option<ThresholdMethod>,
) -> Result<BaselineEvaluation, AnomalyError> {
    let threshold = match (method, val) {
        (Some(m), Some(val)) => {
            let normal = vec![false; val.scores.len()];
            let maxima = val.map_maxima();
            fit(
                scored.kind,
                m,
                FitScores {
                    scores: &val.scores,
                    map_maxima: &maxima,
                    anomalous: &normal,
                    source: "the validation partition",
                },
            )
            .ok()
        }
        _ => None,
    };
    Ok(BaselineEvaluation {
        baseline: baseline.into(),
        statistic,
        evaluation: evaluate(scored, set, threshold.as_ref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(images: &[Vec<f32>], side: usize) -> ImageSet {
        ImageSet {
            shape: ImageShape {
                channels: 1,
                height: side,
                width: side,
            },
            pixels: images.concat(),
            labels: None,
            class_names: None,
            origins: (0..images.len()).map(|i| i.to_string()).collect(),
        }
    }

    #[test]
    fn a_pixel_far_from_its_training_values_scores_high() {
        let side = 8;
        // Normal images: 0.5 ± 0.1 everywhere (alternating).
        let normal: Vec<Vec<f32>> = (0..10)
            .map(|k| vec![if k % 2 == 0 { 0.4 } else { 0.6 }; side * side])
            .collect();
        let g = PixelGaussian::fit(&set(&normal, side)).unwrap();
        assert!((g.mean[0] - 0.5).abs() < 1e-6 && (g.std[0] - 0.1).abs() < 1e-5);
        let clean = vec![0.5; side * side];
        let mut spot = clean.clone();
        spot[27] = 0.0; // z = 5 at one pixel
        let test = set(&[clean, spot], side);
        for how in BASELINE_SCORES {
            let s = g.score(&test, how).unwrap();
            assert!(s.scores[1] > s.scores[0], "{how}: {:?}", s.scores);
        }
        let mean = g.score(&test, BaselineScore::MeanZ).unwrap();
        assert!(
            (mean.scores[1] - 5.0 / 64.0).abs() < 1e-4,
            "{:?}",
            mean.scores
        );
        assert!(
            g.score(&set(&[vec![0.0; 16]], 4), BaselineScore::MeanZ)
                .is_err()
        );
        assert!(PixelGaussian::fit(&set(&[], side)).is_none());
    }
}
