//! 2-D convolution (groups = 1) on contiguous NCHW f32 slices: the forward pass and all three
//! gradients, images spread over the rayon pool.
//!
//! Per image `n`, with `cols = im2col(x[n])` (`[cin·kh·kw, oh·ow]`, built one cache-sized tile
//! of positions at a time) and `W` the weight as a `[cout, cin·kh·kw]` matrix:
//! `y[n] = act(W · cols + b)` and `dW += dy[n] · colsᵀ`; the input gradient is the transposed
//! convolution of `dy` ([`super::transposed`]). Layers with few output channels use
//! [`super::direct`] instead. Weight gradients are summed per chunk of images and the chunks
//! added in a fixed order, so results do not depend on thread timing.

use super::act::{Act, finish};
use super::direct;
use super::im2col::{Geom, im2col, with_scratch};
use super::matmul::{View, matmul};
use super::transposed::{Transposed, transposed};
use rayon::prelude::*;
use std::ops::Range;

/// Shapes of one convolution: `x: [batch, cin, h, w]`, `weight: [cout, cin, kh, kw]`,
/// `y: [batch, cout, oh, ow]`. `geom` maps the input image onto the output grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub batch: usize,
    pub cout: usize,
    pub geom: Geom,
}

impl ConvShape {
    fn x_len(&self) -> usize {
        self.geom.img_len()
    }

    fn y_len(&self) -> usize {
        self.cout * self.geom.positions()
    }

    /// The transposed convolution that maps `dy` to `dx`.
    fn input_grad(&self) -> Transposed {
        let g = &self.geom;
        Transposed {
            batch: self.batch,
            cin: self.cout,
            cout: g.channels,
            input: g.grid,
            output: g.img,
            kernel: g.kernel,
            stride: g.stride,
            dilation: g.dilation,
            pad: g.pad.map(|p| p.max(0) as usize),
        }
    }
}

/// Which gradients to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub x: bool,
    pub weight: bool,
    pub bias: bool,
}

/// Gradients of a convolution, `None` where not wanted.
#[derive(Debug, Default)]
pub(crate) struct Grads {
    pub x: Option<Vec<f32>>,
    pub weight: Option<Vec<f32>>,
    pub bias: Option<Vec<f32>>,
}

/// Whether a `[cin·1·1]` kernel reads the image as is (no column copy needed).
fn is_pointwise(g: &Geom) -> bool {
    g.kernel == [1, 1] && g.stride == [1, 1] && g.pad == [0, 0] && g.grid == g.img
}

/// Per-channel sums of `planes` (`[c, plane]`) added into `acc`.
pub(crate) fn add_channel_sums(acc: &mut [f32], planes: &[f32], plane: usize) {
    for (a, p) in acc.iter_mut().zip(planes.chunks_exact(plane.max(1))) {
        *a += sum(p);
    }
}

/// The sum of `v` in eight interleaved partial sums, which the compiler keeps in one vector
/// register (a plain `iter().sum()` must add in order, one value at a time: the bias gradients
/// took 4 % of a `keras-denoise` training step that way).
fn sum(v: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Runs `chunk(images)` over the batch split into a few chunks per thread, in parallel, and sums
/// the chunks' `(dW, db)` shares (`lens` long) in chunk order.
pub(crate) fn over_chunks<F>(batch: usize, lens: (usize, usize), chunk: F) -> (Vec<f32>, Vec<f32>)
where
    F: Fn(Range<usize>) -> (Vec<f32>, Vec<f32>) + Sync,
{
    let chunks = batch.min(4 * rayon::current_num_threads()).max(1);
    let per = batch.div_ceil(chunks).max(1);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..batch.div_ceil(per))
        .into_par_iter()
        .map(|c| chunk(c * per..((c + 1) * per).min(batch)))
        .collect();
    let mut sums = (vec![0.0; lens.0], vec![0.0; lens.1]);
    for (w, b) in &partials {
        sums.0.iter_mut().zip(w).for_each(|(a, v)| *a += v);
        sums.1.iter_mut().zip(b).for_each(|(a, v)| *a += v);
    }
    sums
}

/// `y = act(conv(x, weight) + bias)`.
pub(crate) fn forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
    act: Act,
) -> Vec<f32> {
    if direct::applies(s) {
        return direct::forward(x, weight, bias, s, act);
    }
    let g = &s.geom;
    let (k, np) = (g.rows(), g.positions());
    let mut y = vec![0.0; s.batch * s.y_len()];
    // Few images: let gemm use the threads instead.
    let inner_parallel = s.batch < rayon::current_num_threads();
    let w = View::rows(s.cout, k);
    let image = |(yn, xn): (&mut [f32], &[f32])| {
        if is_pointwise(g) {
            let (d, c) = (View::rows(s.cout, np), View::rows(k, np));
            matmul(yn, d, weight, w, xn, c, false, inner_parallel);
        } else {
            with_scratch(k * g.tile(), |cols| {
                for r in g.tiles() {
                    im2col(xn, g, r.clone(), cols);
                    let d = View::strided(s.cout, r.len(), np);
                    let c = View::rows(k, r.len());
                    matmul(
                        &mut yn[r.start..],
                        d,
                        weight,
                        w,
                        cols,
                        c,
                        false,
                        inner_parallel,
                    );
                }
            });
        }
        finish(yn, bias, np, act);
    };
    y.par_chunks_mut(s.y_len().max(1))
        .zip(x.par_chunks(s.x_len().max(1)))
        .for_each(image);
    y
}

/// Gradients of `sum((conv(x, weight) + bias) ⊙ dy)` with respect to what `want` asks for
/// (`dy` is the gradient before the activation).
pub(crate) fn backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    s: &ConvShape,
    want: Wanted,
) -> Grads {
    if direct::applies(s) {
        return direct::backward(x, weight, dy, s, want);
    }
    let g = &s.geom;
    let (k, np, xl, yl) = (g.rows(), g.positions(), s.x_len(), s.y_len());
    let chunk = |images: Range<usize>| -> (Vec<f32>, Vec<f32>) {
        let mut dw = vec![0.0; if want.weight { s.cout * k } else { 0 }];
        let mut db = vec![0.0; if want.bias { s.cout } else { 0 }];
        for n in images {
            let (xn, dy_n) = (&x[n * xl..][..xl], &dy[n * yl..][..yl]);
            if want.weight {
                with_scratch(k * g.tile(), |cols| {
                    for r in g.tiles() {
                        im2col(xn, g, r.clone(), cols);
                        let dyv = View::strided(s.cout, r.len(), np);
                        let cv = View::rows(k, r.len()).t();
                        matmul(
                            &mut dw,
                            View::rows(s.cout, k),
                            &dy_n[r.start..],
                            dyv,
                            cols,
                            cv,
                            true,
                            false,
                        );
                    }
                });
            }
            if want.bias {
                add_channel_sums(&mut db, dy_n, np);
            }
        }
        (dw, db)
    };
    let (dw, db) = if want.weight || want.bias {
        over_chunks(s.batch, (s.cout * k, s.cout), chunk)
    } else {
        Default::default()
    };
    Grads {
        x: want
            .x
            .then(|| transposed(dy, weight, None, &s.input_grad(), Act::Identity)),
        weight: want.weight.then_some(dw),
        bias: want.bias.then_some(db),
    }
}
