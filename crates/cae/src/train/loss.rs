//! Losses on batches, as tensors (so they can be differentiated): reconstruction losses, and the
//! focal loss of segmentation runs. SSIM lives in `ssim_loss`.

use super::ssim_loss::ssim_loss;
use crate::run::config::LossKind;
use burn::tensor::Tensor;

/// The loss of `output` against `target`, both `[batch, c, h, w]`; a scalar tensor.
pub fn loss(kind: LossKind, output: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let batch = output.dims()[0] as f64;
    match kind {
        LossKind::Mse => (output - target).powi_scalar(2).mean(),
        LossKind::L1 => (output - target).abs().mean(),
        LossKind::Sse => (output - target)
            .powi_scalar(2)
            .sum()
            .mul_scalar(0.5 / batch),
        LossKind::Bce => {
            // Clamped like Keras so that a saturated sigmoid gives a large, finite loss.
            let eps = 1e-7;
            let p = output.clamp(eps, 1.0 - eps);
            let positive = target.clone() * p.clone().log();
            let negative = target.neg().add_scalar(1.0) * p.neg().add_scalar(1.0).log();
            (positive + negative).mean().neg()
        }
        LossKind::Ssim => ssim_loss(output, target),
        LossKind::MseSsim(w) => {
            let mse = (output.clone() - target.clone()).powi_scalar(2).mean();
            mse.mul_scalar(1.0 - w) + ssim_loss(output, target).mul_scalar(w)
        }
        LossKind::Focal => focal(output, target, 2.0),
    }
}

/// Focal loss `−y(1−p)^γ ln p − (1−y)p^γ ln(1−p)`, averaged: cross-entropy with easy pixels
/// (the vast clean background of an anomaly mask) weighted down, so that the few anomalous
/// pixels drive learning. `output` holds probabilities (a sigmoid), clamped away from 0 and 1.
fn focal(output: Tensor<4>, target: Tensor<4>, gamma: f64) -> Tensor<1> {
    let eps = 1e-6;
    let p = output.clamp(eps, 1.0 - eps);
    let q = p.clone().neg().add_scalar(1.0);
    let positive = target.clone() * q.clone().powf_scalar(gamma) * p.clone().log();
    let negative = target.neg().add_scalar(1.0) * p.powf_scalar(gamma) * q.log();
    (positive + negative).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(values: &[f32]) -> Tensor<4> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [1, 1, 1, values.len()]),
            &Device::flex(),
        )
    }

    fn value(x: Tensor<1>) -> f32 {
        x.into_scalar::<f32>()
    }

    #[test]
    fn losses_have_their_textbook_values() {
        let (y, x) = (t(&[0.5, 1.0]), t(&[0.0, 1.0]));
        assert!((value(loss(LossKind::Mse, y.clone(), x.clone())) - 0.125).abs() < 1e-6);
        assert!((value(loss(LossKind::L1, y.clone(), x.clone())) - 0.25).abs() < 1e-6);
        assert!((value(loss(LossKind::Sse, y.clone(), x.clone())) - 0.125).abs() < 1e-6);
        // -(ln 0.5 + ln(1-1e-7))/2 ≈ 0.3466
        assert!((value(loss(LossKind::Bce, y, x)) - 0.346_574).abs() < 1e-4);
    }

    #[test]
    fn ssim_losses_mix_as_documented() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..64).map(|i| (i % 7) as f32 / 7.0).collect(),
                [1, 1, 8, 8],
            ),
            &device,
        );
        let y = x.clone().mul_scalar(0.5);
        let mse = value(loss(LossKind::Mse, y.clone(), x.clone()));
        let ssim = value(loss(LossKind::Ssim, y.clone(), x.clone()));
        let mixed = value(loss(LossKind::MseSsim(0.25), y, x));
        assert!(ssim > 0.01 && ssim < 1.0, "{ssim}");
        assert!((mixed - (0.75 * mse + 0.25 * ssim)).abs() < 1e-6, "{mixed}");
    }

    #[test]
    fn focal_loss_weights_down_easy_pixels() {
        // p = 0.9 on a positive: −(0.1)² ln 0.9 = 0.0010536; p = 0.6 on a negative:
        // −0.36 ln 0.4 = 0.329866; mean 0.16546.
        let v = value(loss(LossKind::Focal, t(&[0.9, 0.6]), t(&[1.0, 0.0])));
        assert!((v - 0.165_46).abs() < 1e-4, "{v}");
        // An easy pixel costs far less than under cross-entropy.
        let easy = value(loss(LossKind::Focal, t(&[0.95]), t(&[1.0])));
        let ce = value(loss(LossKind::Bce, t(&[0.95]), t(&[1.0])));
        assert!(easy < ce / 100.0, "{easy} vs {ce}");
        let saturated = value(loss(LossKind::Focal, t(&[0.0, 1.0]), t(&[1.0, 0.0])));
        assert!(saturated.is_finite() && saturated > 5.0, "{saturated}");
    }

    #[test]
    fn bce_stays_finite_at_saturation() {
        let v = value(loss(LossKind::Bce, t(&[0.0, 1.0]), t(&[1.0, 0.0])));
        assert!(v.is_finite() && v > 10.0, "{v}");
    }
}
