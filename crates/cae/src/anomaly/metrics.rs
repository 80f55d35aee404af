//! Image-level detection metrics from scores and ground-truth labels: the ROC curve, AUROC
//! (ties count one half), average precision (AUPR), and the confusion matrix, precision, recall
//! and F1 at a threshold.
//!
//! Conventions used everywhere in `anomaly`: anomalous is the positive class, a higher score
//! means more anomalous, and an image is predicted anomalous when `score > threshold`.
//! Metrics are pure functions of `(scores, labels)`; they never pick thresholds for a model.

use serde::Serialize;

/// One point of a ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    /// False positive rate: share of normal images predicted anomalous.
    pub fpr: f64,
    /// True positive rate (recall): share of anomalous images predicted anomalous.
    pub tpr: f64,
    /// Images with a score at or above this value are predicted anomalous at this point.
    pub threshold: f64,
}

/// Counts at one threshold: `tp` anomalous flagged, `fp` normal flagged, `tn`, `fn_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    /// Counts of `score > threshold` against `anomalous`.
    pub fn at(scores: &[f64], anomalous: &[bool], threshold: f64) -> Confusion {
        let mut c = Confusion::default();
        for (&s, &a) in scores.iter().zip(anomalous) {
            match (s > threshold, a) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    /// tp / (tp + fp); 0 when nothing is flagged.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// tp / (tp + fn); 0 when there is no anomalous image.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// fp / (fp + tn); 0 when there is no normal image.
    pub fn fpr(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }

    /// Harmonic mean of precision and recall: 2tp / (2tp + fp + fn); 0 when tp = 0.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// (tp + tn) / all.
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn_)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Number of anomalous and normal labels.
fn counts(anomalous: &[bool]) -> (usize, usize) {
    let pos = anomalous.iter().filter(|&&a| a).count();
    (pos, anomalous.len() - pos)
}

/// Indices sorted by score, highest first (NaN sorts as the lowest score).
fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    let key = |i: usize| {
        if scores[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    order
}

/// Cumulative (tp, fp) after each group of equal scores, highest scores first, with the score
/// of the group: the curve's corners. Tied scores form one group, so ties give a diagonal step.
fn corners(scores: &[f64], anomalous: &[bool]) -> Vec<(usize, usize, f64)> {
    let order = descending(scores);
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        if anomalous[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_group = order
            .get(k + 1)
            .is_none_or(|&j| scores[j].total_cmp(&scores[i]).is_ne());
        if last_of_group {
            out.push((tp, fp, scores[i]));
        }
    }
    out
}

/// The ROC curve from (0, 0) to (1, 1), one corner per distinct score. Empty when either class
/// is missing (the curve is undefined then).
pub fn roc_curve(scores: &[f64], anomalous: &[bool]) -> Vec<RocPoint> {
    let (pos, neg) = counts(anomalous);
    if pos == 0 || neg == 0 || scores.len() != anomalous.len() {
        return Vec::new();
    }
    let mut points = vec![RocPoint {
        fpr: 0.0,
        tpr: 0.0,
        threshold: f64::INFINITY,
    }];
    for (tp, fp, s) in corners(scores, anomalous) {
        points.push(RocPoint {
            fpr: fp as f64 / neg as f64,
            tpr: tp as f64 / pos as f64,
            threshold: s,
        });
    }
    points
}

/// Area under the ROC curve: the probability that a random anomalous image scores higher than
/// a random normal one, ties counting one half (Mann–Whitney U / (n_pos · n_neg)). `None` when
/// either class is missing.
pub fn auroc(scores: &[f64], anomalous: &[bool]) -> Option<f64> {
    let curve = roc_curve(scores, anomalous);
    if curve.is_empty() {
        return None;
    }
    // Trapezoids over the corners are exactly the tie-aware U statistic.
    let area = curve
        .windows(2)
        .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
        .sum();
    Some(area)
}

/// Average precision (area under the precision–recall curve as scikit-learn's
/// `average_precision_score` computes it): Σ (Rₙ − Rₙ₋₁) · Pₙ over the distinct scores, highest
/// first. `None` without anomalous images.
pub fn average_precision(scores: &[f64], anomalous: &[bool]) -> Option<f64> {
    let (pos, _) = counts(anomalous);
    if pos == 0 || scores.len() != anomalous.len() {
        return None;
    }
    let mut ap = 0.0;
    let mut last_recall = 0.0;
    for (tp, fp, _) in corners(scores, anomalous) {
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - last_recall) * precision;
        last_recall = recall;
    }
    Some(ap)
}

/// The threshold with the highest F1 on labelled scores (ties: the lowest such threshold), and
/// that F1. Candidates lie midway between consecutive distinct scores, plus one below the
/// lowest score (everything flagged). `None` without anomalous images.
pub fn best_f1_threshold(scores: &[f64], anomalous: &[bool]) -> Option<(f64, f64)> {
    let (pos, _) = counts(anomalous);
    if pos == 0 || scores.len() != anomalous.len() {
        return None;
    }
    let mut distinct: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let first = *distinct.first()?;
    let mut candidates = vec![first - 1.0f64.max(first.abs())];
    candidates.extend(distinct.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0));
    let mut best: Option<(f64, f64)> = None;
    for t in candidates {
        let f1 = Confusion::at(scores, anomalous, t).f1();
        if best.is_none_or(|(_, b)| f1 > b) {
            best = Some((t, f1));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn auroc_counts_pairs_and_ties_by_hand() {
        // Anomalous scores 0.8, 0.4; normal 0.1, 0.4, 0.35.
        // Pairs (a > n): 0.8 beats all 3; 0.4 beats 0.1 and 0.35 and ties 0.4 → 2.5. U = 5.5 / 6.
        let s = [0.1, 0.4, 0.35, 0.8, 0.4];
        let a = [false, false, false, true, true];
        close(auroc(&s, &a).unwrap(), 5.5 / 6.0);
        // Perfect and inverted rankings.
        close(auroc(&[0.0, 1.0], &[false, true]).unwrap(), 1.0);
        close(auroc(&[1.0, 0.0], &[false, true]).unwrap(), 0.0);
        // All tied: 0.5.
        close(auroc(&[0.3; 4], &[true, false, true, false]).unwrap(), 0.5);
        assert_eq!(auroc(&[0.1, 0.2], &[false, false]), None);
    }

    #[test]
    fn roc_curve_has_one_corner_per_distinct_score() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.4];
        let a = [false, false, false, true, true];
        let c = roc_curve(&s, &a);
        let pts: Vec<(f64, f64)> = c.iter().map(|p| (p.fpr, p.tpr)).collect();
        // 0.8 → (0, .5); 0.4 (one of each) → (1/3, 1); 0.35 → (2/3, 1); 0.1 → (1, 1).
        assert_eq!(pts.len(), 5);
        assert_eq!(pts[0], (0.0, 0.0));
        assert_eq!(pts[1], (0.0, 0.5));
        close(pts[2].0, 1.0 / 3.0);
        assert_eq!(pts[2].1, 1.0);
        assert_eq!(pts[4], (1.0, 1.0));
        assert_eq!(c[2].threshold, 0.4);
    }

    #[test]
    fn average_precision_by_hand() {
        // Ranked: 0.9 A, 0.8 N, 0.7 A, 0.1 N. Recall steps .5 at P=1, .5 at P=2/3.
        let s = [0.9, 0.8, 0.7, 0.1];
        let a = [true, false, true, false];
        close(
            average_precision(&s, &a).unwrap(),
            0.5 * 1.0 + 0.5 * (2.0 / 3.0),
        );
        // Tie between the top anomalous and a normal: one group, P = 1/2 at recall 1/2.
        let s = [0.9, 0.9, 0.7, 0.1];
        close(
            average_precision(&s, &a).unwrap(),
            0.5 * 0.5 + 0.5 * (2.0 / 3.0),
        );
        assert_eq!(average_precision(&[0.1], &[false]), None);
    }

    #[test]
    fn confusion_and_rates_at_a_threshold() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.4];
        let a = [false, false, false, true, true];
        let c = Confusion::at(&s, &a, 0.36);
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 1,
                tn: 2,
                fn_: 0
            }
        );
        close(c.precision(), 2.0 / 3.0);
        close(c.recall(), 1.0);
        close(c.fpr(), 1.0 / 3.0);
        close(c.f1(), 0.8);
        // `score > threshold`: a score equal to the threshold is normal.
        assert_eq!(Confusion::at(&[0.4], &[true], 0.4).tp, 0);
    }

    #[test]
    fn best_f1_picks_the_separating_gap() {
        let s = [0.1, 0.2, 0.3, 0.7, 0.9];
        let a = [false, false, false, true, true];
        let (t, f1) = best_f1_threshold(&s, &a).unwrap();
        close(t, 0.5);
        close(f1, 1.0);
        // No anomalous example: undefined.
        assert_eq!(best_f1_threshold(&[0.1, 0.2], &[false, false]), None);
        // Everything anomalous: flag everything (threshold below the minimum).
        let (t, f1) = best_f1_threshold(&[0.5, 0.6], &[true, true]).unwrap();
        assert!(t < 0.5);
        close(f1, 1.0);
    }
}
