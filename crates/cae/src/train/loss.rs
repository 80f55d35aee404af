//! Reconstruction losses on batches, as tensors (so they can be differentiated). SSIM lives in
//! `ssim_loss`.

use super::config::LossKind;
use super::ssim_loss::ssim_loss;
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
    }
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
    fn bce_stays_finite_at_saturation() {
        let v = value(loss(LossKind::Bce, t(&[0.0, 1.0]), t(&[1.0, 0.0])));
        assert!(v.is_finite() && v > 10.0, "{v}");
    }
}
