//! Thresholds: fitting them (percentile or target false positive rate from normal images only,
//! F1-optimal on labelled images, or a manual value), min–max normalisation that puts the
//! threshold at 0.5 (as anomalib reports scores), and the `RUN/threshold.json` file every later
//! command reads.
//!
//! Two thresholds are fitted with the same method: `image` on image scores decides the label,
//! `pixel` on each image's anomaly-map maximum decides the predicted mask (`map > pixel`), so
//! a normal image shows an empty mask as often as it gets a normal label.

use super::error::AnomalyError;
use super::fused::FusionNorms;
use super::metrics::best_f1_threshold;
use super::score::ScoreKind;
use crate::atomic::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the threshold inside a run directory.
pub const THRESHOLD_FILE: &str = "threshold.json";

/// How a threshold is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ThresholdMethod {
    /// This percentile (0–100, linear interpolation as NumPy) of the normal images' scores.
    Percentile(f64),
    /// The order statistic of the normal scores whose expected false positive rate on unseen
    /// normal images, (k + 1) / (n + 1), is the largest not above this target.
    Fpr(f64),
    /// The F1-optimal threshold on labelled images.
    F1,
    /// A value given by hand (the pixel threshold too, when given).
    Manual { image: f64, pixel: Option<f64> },
}

impl ThresholdMethod {
    /// Checks the method's number is in range.
    pub fn check(&self) -> Result<(), AnomalyError> {
        let bad = |m: String| Err(AnomalyError::InvalidThreshold(m));
        match *self {
            ThresholdMethod::Percentile(p) if !(0.0..=100.0).contains(&p) => {
                bad(format!("--percentile {p}: must lie in [0, 100], e.g. 99"))
            }
            ThresholdMethod::Fpr(f) if !(f > 0.0 && f < 1.0) => bad(format!(
                "--fpr {f}: must lie strictly between 0 and 1, e.g. 0.01"
            )),
            ThresholdMethod::Manual { image, pixel }
                if !image.is_finite() || pixel.is_some_and(|p| !p.is_finite()) =>
            {
                bad("--value must be a finite number".into())
            }
            _ => Ok(()),
        }
    }

    /// True when only normal images are needed.
    pub fn normal_only(&self) -> bool {
        !matches!(self, ThresholdMethod::F1)
    }
}

impl std::fmt::Display for ThresholdMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThresholdMethod::Percentile(p) => write!(f, "percentile {p} of normal scores"),
            ThresholdMethod::Fpr(t) => write!(f, "target false positive rate {t}"),
            ThresholdMethod::F1 => f.write_str("F1-optimal"),
            ThresholdMethod::Manual { .. } => f.write_str("manual"),
        }
    }
}

/// Scores of the images a threshold is fitted on.
#[derive(Debug, Clone, Copy)]
pub struct FitScores<'a> {
    /// Image scores.
    pub scores: &'a [f64],
    /// Each image's anomaly-map maximum.
    pub map_maxima: &'a [f64],
    /// True for anomalous images.
    pub anomalous: &'a [bool],
    /// Where they came from, for messages.
    pub source: &'a str,
}

/// Min and max image score of the fitting images, for normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MinMax {
    pub min: f64,
    pub max: f64,
}

/// What the threshold was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedOn {
    pub source: String,
    pub normal: usize,
    pub anomalous: usize,
}

/// A fitted threshold, as stored in `RUN/threshold.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The score the thresholds apply to.
    pub score: ScoreKind,
    pub method: ThresholdMethod,
    /// An image is anomalous when its score is above this.
    pub image: f64,
    /// A pixel is in the predicted mask when its anomaly-map value is above this.
    pub pixel: Option<f64>,
    pub normalization: MinMax,
    pub fitted_on: FittedOn,
    /// For `fpr`: the expected false positive rate on unseen normal images.
    pub expected_fpr: Option<f64>,
    /// For a `fused` score: the two parts' norms, fitted on the same normal images
    /// (`super::fused`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionNorms>,
}

/// `p`-th percentile (0–100) of sorted values, linear interpolation (NumPy's default).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// The threshold for a target FPR on `normal` scores (any order) and its expected FPR on unseen
/// normal images: the (k + 1)-th largest score with k + 1 = ⌊target · (n + 1)⌋ (at least 1),
/// so (k + 1) / (n + 1) ≤ target whenever n ≥ 1 / target − 1.
pub fn fpr_threshold(normal: &[f64], target: f64) -> Option<(f64, f64)> {
    let n = normal.len();
    if n == 0 {
        return None;
    }
    let mut desc = normal.to_vec();
    desc.sort_by(|a, b| b.total_cmp(a));
    let k1 = ((target * (n + 1) as f64).floor() as usize).clamp(1, n);
    Some((desc[k1 - 1], k1 as f64 / (n + 1) as f64))
}

fn sorted(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut s: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    s
}

/// Fits a threshold on scored images.
pub fn fit(
    score: ScoreKind,
    method: ThresholdMethod,
    data: FitScores<'_>,
) -> Result<Threshold, AnomalyError> {
    method.check()?;
    let normal_of = |v: &[f64]| {
        sorted(
            v.iter()
                .zip(data.anomalous)
                .filter(|(_, a)| !**a)
                .map(|(s, _)| *s),
        )
    };
    let normal = normal_of(data.scores);
    let normal_maxima = normal_of(data.map_maxima);
    let anomalous = data.anomalous.iter().filter(|&&a| a).count();
    let needs_both = || AnomalyError::NeedsBoth {
        what: "an F1-optimal threshold".into(),
        origin: data.source.to_string(),
        normal: normal.len(),
        anomalous,
    };
    if method.normal_only()
        && normal.is_empty()
        && !matches!(method, ThresholdMethod::Manual { .. })
    {
        return Err(AnomalyError::NoNormal {
            origin: data.source.to_string(),
        });
    }
    let (image, pixel, expected_fpr) = match method {
        ThresholdMethod::Percentile(p) => {
            (percentile(&normal, p), percentile(&normal_maxima, p), None)
        }
        ThresholdMethod::Fpr(t) => {
            let (image, expected) = fpr_threshold(&normal, t).ok_or_else(needs_both)?;
            let pixel = fpr_threshold(&normal_maxima, t).map(|p| p.0);
            (Some(image), pixel, Some(expected))
        }
        ThresholdMethod::F1 => {
            if normal.is_empty() {
                return Err(needs_both());
            }
            let image = best_f1_threshold(data.scores, data.anomalous).ok_or_else(needs_both)?;
            let pixel = best_f1_threshold(data.map_maxima, data.anomalous).map(|p| p.0);
            (Some(image.0), pixel, None)
        }
        ThresholdMethod::Manual { image, pixel } => {
            let pixel = pixel.or(score.is_map_maximum().then_some(image));
            (Some(image), pixel, None)
        }
    };
    let image = image.ok_or_else(|| AnomalyError::NoNormal {
        origin: data.source.to_string(),
    })?;
    let all = sorted(data.scores.iter().copied());
    let normalization = match (all.first(), all.last()) {
        (Some(&min), Some(&max)) => MinMax { min, max },
        _ => MinMax {
            min: 0.0,
            max: 2.0 * image.abs().max(f64::MIN_POSITIVE),
        },
    };
    Ok(Threshold {
        score,
        method,
        image,
        pixel,
        normalization,
        fitted_on: FittedOn {
            source: data.source.to_string(),
            normal: normal.len(),
            anomalous,
        },
        expected_fpr,
        fusion: None,
    })
}

impl Threshold {
    /// True when `score` is above the image threshold.
    pub fn is_anomalous(&self, score: f64) -> bool {
        score > self.image
    }

    /// anomalib's min–max normalisation: `(score − threshold) / (max − min) + 0.5`, clamped to
    /// [0, 1]; the threshold maps to 0.5 (a zero range counts as 1).
    pub fn normalize(&self, score: f64) -> f64 {
        let range = self.normalization.max - self.normalization.min;
        let range = if range.is_finite() && range > 0.0 {
            range
        } else {
            1.0
        };
        ((score - self.image) / range + 0.5).clamp(0.0, 1.0)
    }

    /// The predicted mask of an anomaly map (1 where `map > pixel threshold`), when there is a
    /// pixel threshold.
    pub fn mask(&self, map: &[f32]) -> Option<Vec<u8>> {
        let t = self.pixel?;
        Some(map.iter().map(|&v| u8::from(f64::from(v) > t)).collect())
    }

    /// `RUN/threshold.json`.
    pub fn path(run: &Path) -> PathBuf {
        run.join(THRESHOLD_FILE)
    }

    /// Writes the threshold into the run directory (atomically). The caller holds the run's
    /// lock (`RunDir::lock`), as every writer into a run does.
    pub fn save(&self, run: &Path) -> Result<PathBuf, AnomalyError> {
        let path = Threshold::path(run);
        let text = serde_json::to_vec_pretty(self).map_err(|e| AnomalyError::ThresholdFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &text).map_err(|source| AnomalyError::Write {
            path: path.display().to_string(),
            source,
        })?;
        Ok(path)
    }

    /// Reads the run's threshold, `None` when none was fitted.
    pub fn load(run: &Path) -> Result<Option<Threshold>, AnomalyError> {
        let path = Threshold::path(run);
        if !path.is_file() {
            return Ok(None);
        }
        let bad = |message: String| AnomalyError::ThresholdFile {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| bad(e.to_string()))
    }

    /// Reads the run's threshold; an error saying how to fit one when there is none.
    pub fn require(run: &Path) -> Result<Threshold, AnomalyError> {
        Threshold::load(run)?.ok_or_else(|| AnomalyError::NoThreshold {
            run: run.display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
