//! Transposed convolution: the forward pass of `conv_transpose2d` and the input gradient of
//! `conv2d` (the same operation), in the cheaper of two forms.
//!
//! - Stride 1: an ordinary convolution of the input with the kernel flipped in space and
//!   transposed in channels, padded by `d·(k − 1) − pad` — one im2col + gemm per tile with
//!   inner dimension `cin·kh·kw` (or the direct kernels when there are few output channels).
//! - Larger strides: per image, `cols = Wᵀ · x[n]` (`[cout·kh·kw, ih·iw]`) scattered into the
//!   output by col2im. (Splitting the output into stride phases, each a small gather
//!   convolution, was measured slower here: its gemms are too thin for these layer sizes.)

use super::act::{Act, finish};
use super::conv::{self, ConvShape};
use super::im2col::{Geom, col2im, with_scratch};
use super::matmul::{View, matmul};
use rayon::prelude::*;

/// A transposed convolution: `x: [batch, cin, ih, iw]`, `weight: [cin, cout, kh, kw]`,
/// `y: [batch, cout, oh, ow]`, `y[.., i·s + k·d − pad] += x[.., i] · w[.., k]` per axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transposed {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub input: [usize; 2],
    pub output: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding before, `[top, left]` (the output starts this far into the full result).
    pub pad: [usize; 2],
}

/// `y = act(conv_transpose(x, weight) + bias)`: `[batch, cout, oh, ow]`.
pub(crate) fn transposed(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    t: &Transposed,
    act: Act,
) -> Vec<f32> {
    if t.stride == [1, 1] {
        flipped(x, weight, bias, t, act)
    } else {
        scatter(x, weight, bias, t, act)
    }
}

/// Stride 1: `y[o, Y] = Σ w[i, o, k] · x[i, Y + pad − k·d]`, i.e. the convolution of `x` with
/// `wf[o, i, k'] = w[i, o, kh − 1 − k']` over `x` padded by `d·(k − 1) − pad` (negative crops).
fn flipped(x: &[f32], weight: &[f32], bias: Option<&[f32]>, t: &Transposed, act: Act) -> Vec<f32> {
    let [kh, kw] = t.kernel;
    let mut wf = vec![0.0; weight.len()];
    for (n, v) in wf.iter_mut().enumerate() {
        let (o, i) = (n / (t.cin * kh * kw), (n / (kh * kw)) % t.cin);
        let (ki, kj) = ((n / kw) % kh, n % kw);
        *v = weight[((i * t.cout + o) * kh + kh - 1 - ki) * kw + kw - 1 - kj];
    }
    let span = |a: usize| (t.dilation[a] * (t.kernel[a] - 1)) as isize;
    let geom = Geom {
        channels: t.cin,
        img: t.input,
        kernel: t.kernel,
        stride: [1, 1],
        dilation: t.dilation,
        pad: [span(0) - t.pad[0] as isize, span(1) - t.pad[1] as isize],
        grid: t.output,
    };
    let s = ConvShape {
        batch: t.batch,
        cout: t.cout,
        geom,
    };
    conv::forward(x, &wf, bias, &s, act)
}

/// Larger strides: `cols = Wᵀ · x[n]` per tile of input positions, added into `y[n]` by col2im.
fn scatter(x: &[f32], weight: &[f32], bias: Option<&[f32]>, t: &Transposed, act: Act) -> Vec<f32> {
    let g = Geom {
        channels: t.cout,
        img: t.output,
        kernel: t.kernel,
        stride: t.stride,
        dilation: t.dilation,
        pad: t.pad.map(|p| p as isize),
        grid: t.input,
    };
    let (k, np) = (g.rows(), g.positions());
    let (xl, yl) = (t.cin * np, g.img_len());
    let mut y = vec![0.0; t.batch * yl];
    // Few images: let gemm use the threads instead.
    let inner_parallel = t.batch < rayon::current_num_threads();
    let wt = View::rows(t.cin, k).t();
    let image = |(yn, xn): (&mut [f32], &[f32])| {
        with_scratch(k * g.tile(), |cols| {
            for r in g.tiles() {
                let xv = View::strided(t.cin, r.len(), np);
                let c = View::rows(k, r.len());
                matmul(
                    cols,
                    c,
                    weight,
                    wt,
                    &xn[r.start..],
                    xv,
                    false,
                    inner_parallel,
                );
                col2im(cols, &g, r, yn);
            }
        });
        finish(yn, bias, t.output[0] * t.output[1], act);
    };
    y.par_chunks_mut(yl.max(1))
        .zip(x.par_chunks(xl.max(1)))
        .for_each(image);
    y
}
