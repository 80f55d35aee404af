//! Tests for threshold fitting, the FPR promise, normalisation and the threshold file.

use super::*;

fn fit_normal(method: ThresholdMethod, scores: &[f64]) -> Result<Threshold, AnomalyError> {
    let labels = vec![false; scores.len()];
    fit(
        ScoreKind::Mse,
        method,
        FitScores {
            scores,
            map_maxima: scores,
            anomalous: &labels,
            source: "test",
        },
    )
}

#[test]
fn percentile_interpolates_like_numpy() {
    let s = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert_eq!(percentile(&s, 50.0), Some(3.0));
    assert!((percentile(&s, 90.0).unwrap() - 4.6).abs() < 1e-12); // rank 3.6
    assert_eq!(percentile(&s, 100.0), Some(5.0));
    assert_eq!(percentile(&[], 50.0), None);
    let t = fit_normal(
        ThresholdMethod::Percentile(90.0),
        &[5.0, 1.0, 3.0, 2.0, 4.0],
    )
    .unwrap();
    assert!((t.image - 4.6).abs() < 1e-12);
    assert_eq!(t.fitted_on.normal, 5);
}

#[test]
fn fpr_uses_the_order_statistic_with_the_expected_rate() {
    // 99 normal scores 1..=99; target 0.05: k+1 = floor(0.05 * 100) = 5 → 5th largest = 95,
    // expected FPR 5/100; on these scores exactly 4 lie above it.
    let s: Vec<f64> = (1..=99).map(f64::from).collect();
    let (t, e) = fpr_threshold(&s, 0.05).unwrap();
    assert_eq!((t, e), (95.0, 0.05));
    assert_eq!(s.iter().filter(|&&v| v > t).count(), 4);
    // Too few images for the target: the maximum, with its honest expected rate.
    let (t, e) = fpr_threshold(&[3.0, 1.0, 2.0], 0.01).unwrap();
    assert_eq!((t, e), (3.0, 0.25));
    // Works with no anomalous image at all, and rejects a bad target.
    let th = fit_normal(ThresholdMethod::Fpr(0.05), &s).unwrap();
    assert_eq!(th.expected_fpr, Some(0.05));
    assert!(fit_normal(ThresholdMethod::Fpr(1.5), &s).is_err());
}

#[test]
fn fpr_threshold_holds_on_unseen_normal_scores() {
    // Fit on 2,000 normal scores, measure on 50,000 unseen ones of the same (skewed)
    // distribution: the measured FPR lands within half a point of each target.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut draw = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|_| (-(1.0 - rng.random::<f64>()).ln()).powf(1.5))
            .collect()
    };
    let fit_on = draw(2000);
    let unseen = draw(50_000);
    for target in [0.01, 0.05, 0.1] {
        let t = fit_normal(ThresholdMethod::Fpr(target), &fit_on).unwrap();
        let flagged = unseen.iter().filter(|&&s| t.is_anomalous(s)).count();
        let measured = flagged as f64 / unseen.len() as f64;
        assert!(
            (measured - target).abs() < 0.005,
            "target {target}: measured {measured}"
        );
    }
}

#[test]
fn f1_needs_both_classes_and_normal_only_methods_need_normals() {
    let e = fit_normal(ThresholdMethod::F1, &[0.1, 0.2]).unwrap_err();
    assert!(e.to_string().contains("0 anomalous"), "{e}");
    let scores = [0.1, 0.2, 0.9];
    let labels = [false, false, true];
    let data = FitScores {
        scores: &scores,
        map_maxima: &scores,
        anomalous: &labels,
        source: "s",
    };
    let t = fit(ScoreKind::Mse, ThresholdMethod::F1, data).unwrap();
    assert!((t.image - 0.55).abs() < 1e-12);
    let only_anomalous = FitScores {
        anomalous: &[true, true, true],
        ..data
    };
    let e = fit(
        ScoreKind::Mse,
        ThresholdMethod::Percentile(99.0),
        only_anomalous,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no normal images"), "{e}");
}

#[test]
fn normalisation_puts_the_threshold_at_one_half() {
    let t = fit_normal(ThresholdMethod::Percentile(50.0), &[0.0, 1.0, 2.0]).unwrap();
    assert_eq!(t.image, 1.0);
    assert_eq!(t.normalize(1.0), 0.5);
    assert_eq!(t.normalize(1.5), 0.75);
    assert_eq!(t.normalize(10.0), 1.0);
    assert_eq!(t.normalize(-10.0), 0.0);
    assert!(t.is_anomalous(1.01) && !t.is_anomalous(1.0));
    assert_eq!(t.mask(&[0.5, 1.5]), Some(vec![0, 1]));
}

#[test]
fn manual_pixel_threshold_follows_max_smoothed_only() {
    let data = FitScores {
        scores: &[0.1],
        map_maxima: &[0.2],
        anomalous: &[false],
        source: "s",
    };
    let m = ThresholdMethod::Manual {
        image: 0.3,
        pixel: None,
    };
    assert_eq!(fit(ScoreKind::Mse, m, data).unwrap().pixel, None);
    let k = ScoreKind::MaxSmoothed { sigma: 2.0 };
    assert_eq!(fit(k, m, data).unwrap().pixel, Some(0.3));
}

#[test]
fn saves_loads_and_requires() {
    let dir = std::env::temp_dir().join(format!("cae-threshold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(Threshold::load(&dir).unwrap().is_none());
    let e = Threshold::require(&dir).unwrap_err().to_string();
    assert!(e.contains("cae anomaly threshold"), "{e}");
    let t = fit_normal(ThresholdMethod::Fpr(0.2), &[1.0, 2.0, 3.0, 4.0]).unwrap();
    t.save(&dir).unwrap();
    assert_eq!(Threshold::require(&dir).unwrap(), t);
    std::fs::write(Threshold::path(&dir), b"{").unwrap();
    assert!(
        Threshold::load(&dir)
            .unwrap_err()
            .to_string()
            .contains("threshold.json")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
