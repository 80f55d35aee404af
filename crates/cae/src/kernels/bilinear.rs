//! Bilinear upsampling off flex, as two matrix products.
//!
//! Burn 0.22's CubeCL backends (wgpu, CUDA) have no backward pass for bilinear interpolation
//! (the kernel panics: "Bilinear interpolation backward is not supported by JIT backend"), so a
//! spec with a bilinear upsample could not train on a GPU. Bilinear interpolation is separable
//! and linear: each plane's output is `A_h · X · A_wᵀ`, with `A` the (out × in) matrix of
//! interpolation weights, built with Burn's own coordinates (`align_corners = false`, edges
//! clamped). Matrix products and reshapes differentiate on every backend. On flex Burn's op runs,
//! which has both passes.

use burn::nn::interpolate::{Interpolate2d, InterpolateMode};
use burn::tensor::{Device, Tensor, TensorData};

/// `u` applied to `x`: Burn's op on flex and for nearest upsampling, the matrix form for
/// bilinear upsampling on any other device.
pub fn upsample_module(u: &Interpolate2d, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    if !matches!(u.mode, InterpolateMode::Linear) || super::is_flex(&device) {
        return u.forward(x);
    }
    let [_, _, h, w] = x.dims();
    let [fh, fw] = u.scale_factor.unwrap_or([1.0, 1.0]);
    let (out_h, out_w) = u.output_size.map_or(
        ((h as f32 * fh) as usize, (w as f32 * fw) as usize),
        |[a, b]| (a, b),
    );
    separable(x, out_h, out_w)
}

/// `x` resized to `out_h × out_w` by the two weight matrices.
fn separable(x: Tensor<4>, out_h: usize, out_w: usize) -> Tensor<4> {
    let device = x.device();
    let [n, c, h, w] = x.dims();
    // Along the width: [n·c·h, w] · A_wᵀ.
    let x = x
        .reshape([n * c * h, w])
        .matmul(weights_transposed(w, out_w, &device));
    // Along the height: the planes turned so that height is the last axis.
    let x = x
        .reshape([n * c, h, out_w])
        .swap_dims(1, 2)
        .reshape([n * c * out_w, h])
        .matmul(weights_transposed(h, out_h, &device));
    x.reshape([n * c, out_w, out_h])
        .swap_dims(1, 2)
        .reshape([n, c, out_h, out_w])
}

/// `Aᵀ`, `[input, output]`: column `o` holds the weights output pixel `o` gives the input pixels.
fn weights_transposed(input: usize, output: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(interpolation_weights(input, output), [input, output]),
        device,
    )
}

/// The bilinear weights of `output` pixels from `input` pixels, `[input, output]` row-major, as
/// Burn's flex op computes them: source coordinate `(o + 0.5)·input/output − 0.5`, the lower
/// neighbour clamped at 0, the upper at `input − 1`.
fn interpolation_weights(input: usize, output: usize) -> Vec<f32> {
    let ratio = input as f64 / output as f64;
    let mut a = vec![0f32; input * output];
    for o in 0..output {
        let source = (o as f64 + 0.5) * ratio - 0.5;
        let low = source.floor().max(0.0) as usize;
        let low = low.min(input - 1);
        let high = (low + 1).min(input - 1);
        let weight = (source - low as f64).max(0.0) as f32;
        a[low * output + o] += 1.0 - weight;
        a[high * output + o] += weight;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::interpolate::Interpolate2dConfig;

    /// The matrix form gives Burn's bilinear op (here on flex) for factors 2, 3 and (2, 3).
    #[test]
    fn matrix_form_equals_burns_bilinear_upsample() {
        let device = Device::flex();
        for factor in [[2.0, 2.0], [3.0, 3.0], [2.0, 3.0]] {
            let u = Interpolate2dConfig::new()
                .with_scale_factor(Some(factor))
                .with_mode(InterpolateMode::Linear)
                .with_align_corners(false)
                .init();
            let values: Vec<f32> = (0..2 * 3 * 5 * 4).map(|i| ((i * 37) % 11) as f32).collect();
            let x = Tensor::<4>::from_data(TensorData::new(values, [2, 3, 5, 4]), &device);
            let expected = u
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let [_, _, h, w] = x.dims();
            let (oh, ow) = (
                (h as f32 * factor[0]) as usize,
                (w as f32 * factor[1]) as usize,
            );
            let got = separable(x, oh, ow);
            let got = got.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(got.len(), expected.len());
            for (a, b) in got.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-4, "factor {factor:?}: {a} against {b}");
            }
        }
    }

    /// Every output pixel's weights sum to 1.
    #[test]
    fn weights_of_each_output_sum_to_one() {
        for (input, output) in [(5, 10), (4, 12), (1, 3)] {
            let a = interpolation_weights(input, output);
            for o in 0..output {
                let sum: f32 = (0..input).map(|i| a[i * output + o]).sum();
                assert!((sum - 1.0).abs() < 1e-6);
            }
        }
    }
}
