//! 2-D transposed convolution (groups = 1) on contiguous NCHW f32 slices: forward and all three
//! gradients, built from the convolution kernels with the roles of image and grid swapped.
//!
//! Here the [`Geom`] image is the *output* `[cout, oh, ow]` and its grid the input's `h × w`.
//! The forward pass is [`super::transposed`] plus bias and activation; the input gradient is the
//! ordinary convolution of `dy` with the same weight (`[cin, cout, kh, kw]` read as
//! `[out = cin, in = cout, kh, kw]`); with `cols = im2col(dy[n])` the weight gradient is
//! `dW += x[n] · colsᵀ`.

use super::act::Act;
use super::conv::{self, ConvShape, Grads, Wanted, add_channel_sums, over_chunks};
use super::im2col::{Geom, im2col, with_scratch};
use super::matmul::{View, matmul};
use super::transposed::{Transposed, transposed};
use std::ops::Range;

/// Shapes of one transposed convolution: `x: [batch, cin, h, w]`,
/// `weight: [cin, cout, kh, kw]`, `y: [batch, cout, oh, ow]`; `geom.channels == cout`,
/// `geom.img == [oh, ow]`, `geom.grid == [h, w]`, `geom.pad` the (non-negative) padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvTShape {
    pub batch: usize,
    pub cin: usize,
    pub geom: Geom,
}

impl ConvTShape {
    fn as_transposed(&self) -> Transposed {
        let g = &self.geom;
        Transposed {
            batch: self.batch,
            cin: self.cin,
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

/// `y = act(conv_transpose(x, weight) + bias)`.
pub(crate) fn forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    s: &ConvTShape,
    act: Act,
) -> Vec<f32> {
    transposed(x, weight, bias, &s.as_transposed(), act)
}

/// Gradients of `sum((conv_transpose(x, weight) + bias) ⊙ dy)` with respect to what `want`
/// asks for (`dy` is the gradient before the activation).
pub(crate) fn backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    s: &ConvTShape,
    want: Wanted,
) -> Grads {
    let g = &s.geom;
    let (k, np) = (g.rows(), g.positions());
    let (xl, yl) = (s.cin * np, g.img_len());
    let w = View::rows(s.cin, k);
    let chunk = |images: Range<usize>| -> (Vec<f32>, Vec<f32>) {
        let mut dw = vec![0.0; if want.weight { s.cin * k } else { 0 }];
        let mut db = vec![0.0; if want.bias { g.channels } else { 0 }];
        for n in images {
            let (xn, dy_n) = (&x[n * xl..][..xl], &dy[n * yl..][..yl]);
            if want.weight {
                with_scratch(k * g.tile(), |cols| {
                    for r in g.tiles() {
                        im2col(dy_n, g, r.clone(), cols);
                        let xv = View::strided(s.cin, r.len(), np);
                        let cv = View::rows(k, r.len()).t();
                        matmul(&mut dw, w, &xn[r.start..], xv, cols, cv, true, false);
                    }
                });
            }
            if want.bias {
                add_channel_sums(&mut db, dy_n, g.img[0] * g.img[1]);
            }
        }
        (dw, db)
    };
    let (dw, db) = if want.weight || want.bias {
        over_chunks(s.batch, (s.cin * k, g.channels), chunk)
    } else {
        Default::default()
    };
    let input_grad = ConvShape {
        batch: s.batch,
        cout: s.cin,
        geom: s.geom,
    };
    Grads {
        x: want
            .x
            .then(|| conv::forward(dy, weight, None, &input_grad, Act::Identity)),
        weight: want.weight.then_some(dw),
        bias: want.bias.then_some(db),
    }
}
