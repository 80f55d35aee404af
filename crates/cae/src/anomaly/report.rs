//! The inference contract and the evaluation report.
//!
//! Every image gets one [`Prediction`]: image score, normalised score, predicted label,
//! anomaly map and predicted mask — the model only reconstructs; scores come from
//! [`super::score`], labels and masks from a [`Threshold`]. [`evaluate`] compares scores and maps
//! with the truth: image AUROC and AUPR always, confusion matrix, precision, recall and F1 at the
//! threshold when there is one, pixel AUROC and PRO when masks are known, and AUROC per class.

use super::dataset::AnomalySet;
use super::error::AnomalyError;
use super::metrics::{Confusion, auroc, average_precision};
use super::pixel::{PRO_FPR_LIMIT, PixelSet, pixel_auroc, pro_score};
use super::score::{ScoreKind, ScoredSet};
use super::threshold::Threshold;
use serde::Serialize;

/// What one image is predicted to be.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The raw image score.
    pub score: f64,
    /// The min–max normalised score (threshold at 0.5).
    pub normalized: f64,
    /// True when predicted anomalous.
    pub anomalous: bool,
    /// The anomaly map (`height * width`).
    pub map: Vec<f32>,
    /// The predicted mask (1 = anomalous pixel), when the threshold has a pixel threshold.
    pub mask: Option<Vec<u8>>,
}

/// Applies a threshold to one scored image.
pub fn predict(threshold: &Threshold, score: f64, map: &[f32]) -> Prediction {
    Prediction {
        score,
        normalized: threshold.normalize(score),
        anomalous: threshold.is_anomalous(score),
        map: map.to_vec(),
        mask: threshold.mask(map),
    }
}

/// Metrics that depend on the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct AtThreshold {
    pub threshold: f64,
    pub confusion: Confusion,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub fpr: f64,
    pub accuracy: f64,
}

/// Pixel-level metrics.
#[derive(Debug, Clone, Serialize)]
pub struct PixelMetrics {
    pub auroc: Option<f64>,
    /// Normalised area under the PRO curve up to `pro_fpr_limit`.
    pub pro: Option<f64>,
    pub pro_fpr_limit: f64,
}

/// AUROC of one anomalous class against all normal images.
#[derive(Debug, Clone, Serialize)]
pub struct ClassAuroc {
    pub class: String,
    pub images: usize,
    pub auroc: f64,
}

/// The evaluation of a run on a labelled set.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub source: String,
    pub score: ScoreKind,
    pub images: usize,
    pub normal: usize,
    pub anomalous: usize,
    pub image_auroc: f64,
    pub image_aupr: f64,
    pub at_threshold: Option<AtThreshold>,
    pub pixel: Option<PixelMetrics>,
    pub per_class: Vec<ClassAuroc>,
}

/// Evaluates scores against the truth of `set`.
pub fn evaluate(
    scored: &ScoredSet,
    set: &AnomalySet,
    threshold: Option<&Threshold>,
) -> Result<Evaluation, AnomalyError> {
    let (normal, anomalous) = set.counts();
    let scores = &scored.scores;
    let truth = &set.anomalous;
    let (Some(image_auroc), Some(image_aupr)) =
        (auroc(scores, truth), average_precision(scores, truth))
    else {
        return Err(AnomalyError::NeedsBoth {
            what: "evaluation".into(),
            origin: set.source.clone(),
            normal,
            anomalous,
        });
    };
    let at_threshold = threshold.map(|t| {
        let c = Confusion::at(scores, truth, t.image);
        AtThreshold {
            threshold: t.image,
            confusion: c,
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            fpr: c.fpr(),
            accuracy: c.accuracy(),
        }
    });
    let pixel = set.masks.as_ref().map(|masks| {
        let s = set.images.shape;
        let pixels = PixelSet {
            maps: &scored.maps,
            masks,
            size: (s.height, s.width),
        };
        PixelMetrics {
            auroc: pixel_auroc(pixels),
            pro: pro_score(pixels, PRO_FPR_LIMIT),
            pro_fpr_limit: PRO_FPR_LIMIT,
        }
    });
    Ok(Evaluation {
        source: set.source.clone(),
        score: scored.kind,
        images: set.images.len(),
        normal,
        anomalous,
        image_auroc,
        image_aupr,
        at_threshold,
        pixel,
        per_class: per_class(scored, set),
    })
}

/// AUROC of each anomalous class (by label) against every normal image, when there are labels
/// and more than one anomalous class.
fn per_class(scored: &ScoredSet, set: &AnomalySet) -> Vec<ClassAuroc> {
    let Some(labels) = &set.images.labels else {
        return Vec::new();
    };
    let mut classes: Vec<u32> = labels
        .iter()
        .zip(&set.anomalous)
        .filter(|(_, a)| **a)
        .map(|(l, _)| *l)
        .collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() < 2 {
        return Vec::new();
    }
    let names = set.images.class_names.as_ref();
    classes
        .into_iter()
        .filter_map(|c| {
            let keep: Vec<usize> = (0..labels.len())
                .filter(|&i| !set.anomalous[i] || labels[i] == c)
                .collect();
            let s: Vec<f64> = keep.iter().map(|&i| scored.scores[i]).collect();
            let t: Vec<bool> = keep.iter().map(|&i| set.anomalous[i]).collect();
            let auroc = auroc(&s, &t)?;
            Some(ClassAuroc {
                class: names
                    .and_then(|n| n.get(c as usize).cloned())
                    .unwrap_or_else(|| c.to_string()),
                images: t.iter().filter(|&&a| a).count(),
                auroc,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::threshold::{FitScores, ThresholdMethod, fit};
    use crate::data::{ImageSet, ImageShape};

    fn set(labels: Vec<u32>, normal: u32, masks: Option<Vec<Vec<u8>>>) -> AnomalySet {
        let n = labels.len();
        let images = ImageSet {
            shape: ImageShape {
                channels: 1,
                height: 1,
                width: 2,
            },
            pixels: vec![0.0; 2 * n],
            labels: Some(labels),
            class_names: None,
            origins: (0..n).map(|i| format!("t#{i}")).collect(),
        };
        let mut s = AnomalySet::one_vs_rest(images, normal, "t");
        s.masks = masks;
        s
    }

    #[test]
    fn evaluates_images_pixels_classes_and_the_threshold() {
        // Labels: 0 normal (twice), 1 and 2 anomalous. Class 1 separates, class 2 does not.
        let truth = set(
            vec![0, 0, 1, 2],
            0,
            Some(vec![vec![0, 0], vec![0, 0], vec![1, 0], vec![0, 1]]),
        );
        let scored = ScoredSet {
            kind: ScoreKind::Mse,
            scores: vec![0.1, 0.3, 0.9, 0.2],
            maps: vec![
                vec![0.1, 0.1],
                vec![0.3, 0.2],
                vec![0.9, 0.1],
                vec![0.0, 0.2],
            ],
            reconstructions: None,
        };
        let t = fit(
            ScoreKind::Mse,
            ThresholdMethod::Manual {
                image: 0.25,
                pixel: None,
            },
            FitScores {
                scores: &[0.1],
                map_maxima: &[0.1],
                anomalous: &[false],
                source: "t",
            },
        )
        .unwrap();
        let e = evaluate(&scored, &truth, Some(&t)).unwrap();
        // Pairs: 0.9 beats both normals; 0.2 beats 0.1 only → 3/4.
        assert!((e.image_auroc - 0.75).abs() < 1e-12);
        let at = e.at_threshold.unwrap();
        assert_eq!(
            (at.confusion.tp, at.confusion.fp, at.confusion.fn_),
            (1, 1, 1)
        );
        assert_eq!(e.per_class.len(), 2);
        assert_eq!(e.per_class[0].auroc, 1.0);
        assert_eq!(e.per_class[1].auroc, 0.5);
        let px = e.pixel.unwrap();
        // Defect pixels 0.9 and 0.2 against normal 0.1, 0.1, 0.3, 0.2, 0.1, 0.0.
        // 0.9 beats 6; 0.2 beats 0.1 x3 and 0.0, ties 0.2 → 4.5. (6 + 4.5) / 12.
        assert!((px.auroc.unwrap() - 10.5 / 12.0).abs() < 1e-12);
        // Prediction contract.
        let p = predict(&t, 0.9, &[0.9, 0.1]);
        assert!(p.anomalous && p.normalized > 0.5 && p.mask.is_none());
    }

    #[test]
    fn one_class_only_is_an_error() {
        let truth = set(vec![0, 0], 0, None);
        let scored = ScoredSet {
            kind: ScoreKind::Mse,
            scores: vec![0.1, 0.2],
            maps: vec![vec![0.0; 2]; 2],
            reconstructions: None,
        };
        let e = evaluate(&scored, &truth, None).unwrap_err().to_string();
        assert!(e.contains("2 normal and 0 anomalous"), "{e}");
    }
}
