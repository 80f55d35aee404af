//! A ×2 nearest upsample followed by a 3×3 `same` convolution, run as one 2×2 convolution on
//! the small image (the sub-pixel decomposition), with about half the multiply-adds and no
//! upsampled copy of the input.
//!
//! Output pixel `(2a + py, 2b + px)` of the pair only ever reads input rows `a − 1, a` (`py = 0`)
//! or `a, a + 1` (`py = 1`), and likewise for columns: the nearest upsample repeats each input
//! pixel over two taps of the 3×3 kernel. So each of the four output phases `(py, px)` is a 2×2
//! convolution of the input whose taps are sums of the 3×3 taps (`py = 0`: rows `{0}, {1, 2}`;
//! `py = 1`: rows `{0, 1}, {2}`). The four phase kernels are stacked as `4·cout` output channels
//! of one 2×2 convolution over the input padded by one pixel, which gives `(h + 1) × (w + 1)`
//! values per channel; phase `(py, px)` is the `h × w` window starting at `(py, px)`, and the
//! phases interleave into the `2h × 2w` output ([`super::phases`], an op of its own with its
//! adjoint as backward). Multiply-adds: `16·(h+1)(w+1)` per channel pair
//! instead of `36·h·w`. The phase kernels are built from the 3×3 one with Burn tensor ops, so
//! autodiff carries the weight gradient back to it; the stored weights are the 3×3 ones.

use super::{Act, conv2d, interleave_phases, runs_on};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::interpolate::{Interpolate2d, InterpolateMode};
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

/// Whether `upsample` then `conv` can run fused: nearest ×2, then a 3×3 stride-1 undilated
/// ungrouped convolution padded by 1 on every side.
pub fn fusable(upsample: &Interpolate2d, conv: &Conv2d) -> bool {
    matches!(upsample.mode, InterpolateMode::Nearest)
        && upsample.output_size.is_none()
        && upsample.scale_factor == Some([2.0, 2.0])
        && conv.kernel_size == [3, 3]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1))
}

/// `act(conv(upsample(x)))` for a [`fusable`] pair, or `None` when the kernels do not run on
/// `x`'s device (Burn's ops gain nothing from the rewrite).
pub fn forward(conv: &Conv2d, act: Act, x: Tensor<4>) -> Option<Tensor<4>> {
    if !runs_on(&x.device()) || x.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    let [batch, _, h, w] = x.dims();
    let weight = phase_kernels(conv.weight.val());
    let cout = weight.dims()[0] / 4;
    let bias = conv.bias.as_ref().map(|b| Tensor::cat(vec![b.val(); 4], 0));
    let options = ConvOptions::new_with_padding([1, 1], [(1, 1), (1, 1)], [1, 1], 1);
    // [batch, (py, px, cout), h + 1, w + 1] → [batch, cout, 2h, 2w]
    let z = conv2d(x, weight, bias, options, act);
    let y = interleave_phases(z, [h, w]);
    debug_assert_eq!(y.dims(), [batch, cout, 2 * h, 2 * w]);
    Some(y)
}

/// The four 2×2 phase kernels of a 3×3 kernel `[cout, cin, 3, 3]`, stacked phase-major:
/// `[4·cout, cin, 2, 2]`, phase `(py, px)` at channels `(2·py + px)·cout ..`.
fn phase_kernels(w: Tensor<4>) -> Tensor<4> {
    let [cout, cin, _, _] = w.dims();
    // Taps 0, 1, 2 along `dim` folded into two: phase 0 → {0}, {1, 2}; phase 1 → {0, 1}, {2}.
    let fold = |w: Tensor<4>, dim: usize, phase: usize| {
        let tap = |k: usize| match dim {
            2 => w.clone().slice([0..cout, 0..cin, k..k + 1, 0..w.dims()[3]]),
            _ => w.clone().slice([0..cout, 0..cin, 0..w.dims()[2], k..k + 1]),
        };
        let parts = if phase == 0 {
            vec![tap(0), tap(1) + tap(2)]
        } else {
            vec![tap(0) + tap(1), tap(2)]
        };
        Tensor::cat(parts, dim)
    };
    let phases = [(0, 0), (0, 1), (1, 0), (1, 1)]
        .map(|(py, px)| fold(fold(w.clone(), 2, py), 3, px))
        .to_vec();
    Tensor::cat(phases, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::interpolate::Interpolate2dConfig;
    use burn::tensor::{Device, Distribution};

    fn pair(device: &Device, cin: usize, cout: usize, bias: bool) -> (Interpolate2d, Conv2d) {
        let up = Interpolate2dConfig::new()
            .with_scale_factor(Some([2.0, 2.0]))
            .with_mode(InterpolateMode::Nearest)
            .init();
        let conv = Conv2dConfig::new([cin, cout], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(bias)
            .init(device);
        (up, conv)
    }

    fn max_rel_err(a: Tensor<4>, b: Tensor<4>) -> f32 {
        let (a, b) = (
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap(),
        );
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
    }

    #[test]
    fn matches_upsample_then_conv_forward_and_gradients() {
        let device = Device::flex().autodiff();
        for (batch, cin, cout, h, w, bias) in [
            (2, 3, 5, 4, 6, true),
            (1, 8, 4, 7, 7, false),
            (3, 1, 2, 1, 3, true),
        ] {
            let (up, conv) = pair(&device, cin, cout, bias);
            assert!(fusable(&up, &conv));
            let x =
                Tensor::<4>::random([batch, cin, h, w], Distribution::Normal(0.0, 1.0), &device)
                    .require_grad();
            let dy = Tensor::<4>::random(
                [batch, cout, 2 * h, 2 * w],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let reference = burn::tensor::activation::relu(conv.forward(up.forward(x.clone())));
            let fused = forward(&conv, Act::Relu, x.clone()).expect("flex runs the kernels");
            assert_eq!(fused.dims(), reference.dims());
            assert!(max_rel_err(fused.clone(), reference.clone()) < 1e-5);

            let grads_ref = (reference * dy.clone()).sum().backward();
            let grads = (fused * dy).sum().backward();
            let dx = |g| x.grad(g).unwrap();
            assert!(max_rel_err(dx(&grads), dx(&grads_ref)) < 1e-4, "dx");
            let dw = |g| conv.weight.val().grad(g).unwrap();
            assert!(max_rel_err(dw(&grads), dw(&grads_ref)) < 1e-4, "dw");
            if bias {
                let db = |g| {
                    let b = conv.bias.as_ref().unwrap().val().grad(g).unwrap();
                    b.reshape([1, 1, 1, cout])
                };
                assert!(max_rel_err(db(&grads), db(&grads_ref)) < 1e-4, "db");
            }
        }
    }

    #[test]
    fn only_nearest_doubling_into_a_same_3x3_fuses() {
        let device = Device::flex();
        let (up, conv) = pair(&device, 2, 2, true);
        assert!(fusable(&up, &conv));
        let bilinear = Interpolate2dConfig::new()
            .with_scale_factor(Some([2.0, 2.0]))
            .with_mode(InterpolateMode::Linear)
            .init();
        assert!(!fusable(&bilinear, &conv));
        let triple = Interpolate2dConfig::new()
            .with_scale_factor(Some([3.0, 3.0]))
            .with_mode(InterpolateMode::Nearest)
            .init();
        assert!(!fusable(&triple, &conv));
        let valid = Conv2dConfig::new([2, 2], [3, 3]).init(&device);
        assert!(!fusable(&up, &valid));
    }
}
