//! SSIM as a differentiable training loss, in Burn tensors.
//!
//! The same statistic as [`crate::quality::ssim`] (Wang et al. 2004 as scikit-image computes it:
//! 11×11 Gaussian window of σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1, population
//! covariances), written with tensor ops so gradients flow through it. The window is applied as
//! two depthwise 1-D convolutions (a `groups = channels` conv2d with a `k×1`, then a `1×k`
//! kernel) without padding: scikit-image filters with reflect padding and then crops a border of
//! `radius` pixels before averaging, which leaves exactly the pixels a `valid` convolution
//! computes. Images smaller than the window use the largest odd window that fits, as there.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

const SIGMA: f64 = 1.5;
const MAX_RADIUS: usize = 5;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// Normalised 1-D Gaussian over `-radius..=radius` (`imageops::gaussian_window`, as f32).
fn gaussian(radius: usize) -> Vec<f32> {
    crate::imageops::gaussian_window(SIGMA, radius)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// Gaussian-window means of every channel of `x` (`[b, c, h, w]` → `[b, c, h−2r, w−2r]`).
fn window_mean(x: Tensor<4>, radius: usize) -> Tensor<4> {
    let [_, c, _, _] = x.dims();
    let k = 2 * radius + 1;
    let g = gaussian(radius);
    let device = x.device();
    let weights: Vec<f32> = (0..c).flat_map(|_| g.iter().copied()).collect();
    let vertical = Tensor::<4>::from_data(TensorData::new(weights.clone(), [c, 1, k, 1]), &device);
    let horizontal = Tensor::<4>::from_data(TensorData::new(weights, [c, 1, 1, k]), &device);
    let options = || ConvOptions::new([1, 1], [0, 0], [1, 1], c);
    let x = conv2d(x, vertical, None, options());
    conv2d(x, horizontal, None, options())
}

/// Mean SSIM of `a` against `b` (both `[batch, c, h, w]`, values in [0, 1]) over every image,
/// channel and valid pixel; a scalar tensor that can be differentiated.
pub fn ssim_mean(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let [_, c, h, w] = a.dims();
    let radius = MAX_RADIUS.min(h.min(w).saturating_sub(1) / 2);
    // One depthwise pass over the five maps the statistics need.
    let stacked = Tensor::cat(
        vec![
            a.clone(),
            b.clone(),
            a.clone().powi_scalar(2),
            b.clone().powi_scalar(2),
            a * b,
        ],
        1,
    );
    let filtered = window_mean(stacked, radius);
    let part = |i: usize| filtered.clone().narrow(1, i * c, c);
    let (mx, my, mxx, myy, mxy) = (part(0), part(1), part(2), part(3), part(4));
    let mx2 = mx.clone().powi_scalar(2);
    let my2 = my.clone().powi_scalar(2);
    let mxmy = mx * my;
    let vx = mxx - mx2.clone();
    let vy = myy - my2.clone();
    let vxy = mxy - mxmy.clone();
    let num = (mxmy.mul_scalar(2.0).add_scalar(C1)) * (vxy.mul_scalar(2.0).add_scalar(C2));
    let den = (mx2 + my2).add_scalar(C1) * (vx + vy).add_scalar(C2);
    (num / den).mean()
}

/// `1 − SSIM`: 0 for identical images.
pub fn ssim_loss(output: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    ssim_mean(output, target).neg().add_scalar(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality;
    use burn::tensor::Device;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn tensor(values: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random::<f32>()).collect()
    }

    #[test]
    fn matches_the_reference_ssim() {
        let device = Device::flex();
        // Sizes with the full 11x11 window, a shrunk window, and colour.
        for (c, h, w) in [(1, 28, 28), (1, 7, 9), (3, 16, 20)] {
            let n = c * h * w;
            let a = random(2 * n, 1);
            // b: a blurred, noisy relative of a, so SSIM is far from 0 and 1.
            let b: Vec<f32> = a
                .iter()
                .zip(random(2 * n, 2))
                .map(|(x, r)| (0.6 * x + 0.4 * r).clamp(0.0, 1.0))
                .collect();
            let expected = (quality::ssim(&a[..n], &b[..n], (c, h, w))
                + quality::ssim(&a[n..], &b[n..], (c, h, w)))
                / 2.0;
            let got = ssim_mean(
                tensor(&a, [2, c, h, w], &device),
                tensor(&b, [2, c, h, w], &device),
            )
            .into_scalar::<f32>() as f64;
            assert!(
                (got - expected).abs() < 1e-4,
                "{c}x{h}x{w}: tensor {got} vs reference {expected}"
            );
            assert!(expected > 0.2 && expected < 0.95, "{expected}");
        }
    }

    #[test]
    fn identical_images_have_zero_loss() {
        let device = Device::flex();
        let a = random(28 * 28, 5);
        let l = ssim_loss(
            tensor(&a, [1, 1, 28, 28], &device),
            tensor(&a, [1, 1, 28, 28], &device),
        )
        .into_scalar::<f32>();
        assert!(l.abs() < 1e-5, "{l}");
    }

    #[test]
    fn gradient_steps_raise_ssim() {
        // Gradient descent on the pixels of `x` towards `target` must raise SSIM: the gradient
        // is real, not zero or of the wrong sign.
        let device = Device::flex().autodiff();
        let target = random(20 * 20, 8);
        let mut x = random(20 * 20, 9);
        let start = quality::ssim(&x, &target, (1, 20, 20));
        for _ in 0..20 {
            let xt = tensor(&x, [1, 1, 20, 20], &device).require_grad();
            let loss = ssim_loss(xt.clone(), tensor(&target, [1, 1, 20, 20], &device));
            let grads = loss.backward();
            let g = xt
                .grad(&grads)
                .map(|g| g.into_data().try_into_vec::<f32>().unwrap())
                .unwrap();
            for (v, d) in x.iter_mut().zip(g) {
                *v -= 20.0 * d;
            }
        }
        let end = quality::ssim(&x, &target, (1, 20, 20));
        assert!(end > start + 0.2, "SSIM {start} -> {end}");
    }
}
