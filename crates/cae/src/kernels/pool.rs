//! 2-D max pooling on contiguous NCHW f32 slices: forward (recording each window's argmax) and
//! backward (routing each output gradient to its argmax). Burn's Flex version divides per
//! element and pads asymmetric (`same`) windows with an explicit `-inf` copy of the input;
//! here each output's window is a precomputed range per axis, planes run in parallel, and the
//! argmax stays a plain `u32` per output for the backward pass.
//!
//! Semantics follow Burn's: padding never wins, the first maximum wins ties, NaN wins.

use burn::tensor::ops::MaxPoolOptions;
use rayon::prelude::*;

/// Shapes of one max pooling: `x: [planes, h, w]` (batch × channels planes) → `[planes, oh, ow]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolShape {
    pub planes: usize,
    pub img: [usize; 2],
    pub out: [usize; 2],
    /// Per axis and output coordinate: first input coordinate, valid taps, tap spacing.
    windows: [Vec<(usize, usize)>; 2],
    dilation: [usize; 2],
}

/// No argmax (a window made only of padding).
const NONE: u32 = u32::MAX;

impl PoolShape {
    /// The shapes for `x: [n, c, h, w]` (floor mode only; `None` otherwise).
    pub fn new(dims: [usize; 4], o: &MaxPoolOptions<2>) -> Option<PoolShape> {
        let [n, c, h, w] = dims;
        if o.ceil_mode || h * w >= NONE as usize {
            return None;
        }
        let axis = |i: usize, size: usize| -> Option<Vec<(usize, usize)>> {
            let (k, s, d) = (o.kernel_size[i], o.stride[i], o.dilation[i]);
            let (before, after) = o.padding[i];
            let extent = d * k.checked_sub(1)? + 1;
            let padded = size + before + after;
            if s == 0 || padded < extent {
                return None;
            }
            let out = (padded - extent) / s + 1;
            Some(
                (0..out)
                    .map(|o| {
                        // Input coordinate of tap t: o·s + t·d − before, kept inside 0..size.
                        let first = (0..k).find(|t| o * s + t * d >= before);
                        let Some(t0) = first else { return (0, 0) };
                        let taps = (t0..k)
                            .take_while(|t| o * s + t * d < before + size)
                            .count();
                        (o * s + t0 * d - before, taps)
                    })
                    .collect(),
            )
        };
        let (ys, xs) = (axis(0, h)?, axis(1, w)?);
        Some(PoolShape {
            planes: n * c,
            img: [h, w],
            out: [ys.len(), xs.len()],
            windows: [ys, xs],
            dilation: o.dilation,
        })
    }

    /// Whether output `(oy, ox)`'s window is exactly input rows `2·oy, 2·oy + 1` × columns
    /// `2·ox, 2·ox + 1`, for every output.
    fn is_full_2x2(&self) -> bool {
        self.dilation == [1, 1]
            && self.out[1] > 0
            && self
                .windows
                .iter()
                .all(|axis| axis.iter().enumerate().all(|(o, &win)| win == (2 * o, 2)))
    }

    fn in_plane(&self) -> usize {
        self.img[0] * self.img[1]
    }

    fn out_plane(&self) -> usize {
        self.out[0] * self.out[1]
    }
}

/// The running maximum after seeing `v` at offset `i`: later values win only if larger, or NaN.
#[inline(always)]
fn pick(best: (f32, u32), v: f32, i: usize) -> (f32, u32) {
    if v > best.0 || v.is_nan() {
        (v, i as u32)
    } else {
        best
    }
}

/// Max of every window, and (when `argmax`) each maximum's offset in its input plane.
pub(crate) fn forward(x: &[f32], s: &PoolShape, argmax: bool) -> (Vec<f32>, Vec<u32>) {
    let (ip, op) = (s.in_plane(), s.out_plane());
    let mut y = vec![0.0; s.planes * op];
    let mut idx = vec![0u32; if argmax { s.planes * op } else { 0 }];
    let [dh, dw] = s.dilation;
    let w = s.img[1];
    let full_2x2 = s.is_full_2x2();
    let plane = |yp: &mut [f32], ip_: Option<&mut [u32]>, xp: &[f32]| {
        if full_2x2 {
            return plane_2x2(yp, ip_, xp, w, s.out);
        }
        let mut ip_ = ip_;
        let mut at = 0;
        for &(y0, ny) in &s.windows[0] {
            for &(x0, nx) in &s.windows[1] {
                let (best, arg) = if ny == 2 && nx == 2 && dh == 1 && dw == 1 {
                    // The common full 2×2 window, unrolled.
                    let i = y0 * w + x0;
                    let (r0, r1) = (&xp[i..i + 2], &xp[i + w..i + w + 2]);
                    let m = pick((r0[0], i as u32), r0[1], i + 1);
                    let m = pick(m, r1[0], i + w);
                    pick(m, r1[1], i + w + 1)
                } else {
                    let mut m = (f32::NEG_INFINITY, NONE);
                    for a in 0..ny {
                        let row = (y0 + a * dh) * w + x0;
                        for b in 0..nx {
                            let i = row + b * dw;
                            m = if m.1 == NONE {
                                (xp[i], i as u32)
                            } else {
                                pick(m, xp[i], i)
                            };
                        }
                    }
                    m
                };
                yp[at] = best;
                if let Some(ix) = ip_.as_deref_mut() {
                    ix[at] = arg;
                }
                at += 1;
            }
        }
    };
    let xs = x.par_chunks(ip.max(1));
    if argmax {
        y.par_chunks_mut(op.max(1))
            .zip(idx.par_chunks_mut(op.max(1)))
            .zip(xs)
            .for_each(|((yp, ixp), xp)| plane(yp, Some(ixp), xp));
    } else {
        y.par_chunks_mut(op.max(1))
            .zip(xs)
            .for_each(|(yp, xp)| plane(yp, None, xp));
    }
    (y, idx)
}

/// One plane of a pooling whose every window is a whole 2×2 block at stride 2 (the models'
/// pools on even sides): rows of outputs over row pairs of the input, with selects instead of
/// branches — the comparisons on real activations are unpredictable, and mispredicted branches
/// made this pass cost as much as a convolution. Same ties and NaN rule as [`pick`].
fn plane_2x2(yp: &mut [f32], argmax: Option<&mut [u32]>, xp: &[f32], w: usize, out: [usize; 2]) {
    let [oh, ow] = out;
    #[inline(always)]
    fn max4(p0: &[f32], p1: &[f32], at: u32, w: u32) -> (f32, u32) {
        let (mut m, mut k) = (p0[0], at);
        for (v, i) in [(p0[1], at + 1), (p1[0], at + w), (p1[1], at + w + 1)] {
            let take = v > m || v.is_nan();
            m = if take { v } else { m };
            k = if take { i } else { k };
        }
        (m, k)
    }
    let rows = |oy: usize| {
        let base = 2 * oy * w;
        let pairs = xp[base..base + 2 * ow]
            .chunks_exact(2)
            .zip(xp[base + w..base + w + 2 * ow].chunks_exact(2));
        (base, pairs)
    };
    match argmax {
        Some(ix) => {
            for (oy, (yr, ir)) in yp
                .chunks_exact_mut(ow)
                .zip(ix.chunks_exact_mut(ow))
                .take(oh)
                .enumerate()
            {
                let (base, pairs) = rows(oy);
                for (ox, ((y, i), (p0, p1))) in yr.iter_mut().zip(ir).zip(pairs).enumerate() {
                    (*y, *i) = max4(p0, p1, (base + 2 * ox) as u32, w as u32);
                }
            }
        }
        None => {
            for (oy, yr) in yp.chunks_exact_mut(ow).take(oh).enumerate() {
                let (base, pairs) = rows(oy);
                for (ox, (y, (p0, p1))) in yr.iter_mut().zip(pairs).enumerate() {
                    *y = max4(p0, p1, (base + 2 * ox) as u32, w as u32).0;
                }
            }
        }
    }
}

/// The input gradient: each output gradient added at its window's argmax.
pub(crate) fn backward(dy: &[f32], argmax: &[u32], s: &PoolShape) -> Vec<f32> {
    let (ip, op) = (s.in_plane(), s.out_plane());
    let mut dx = vec![0.0; s.planes * ip];
    dx.par_chunks_mut(ip.max(1))
        .zip(dy.par_chunks(op.max(1)).zip(argmax.par_chunks(op.max(1))))
        .for_each(|(dxp, (gp, ap))| {
            for (&g, &a) in gp.iter().zip(ap) {
                if let Some(d) = dxp.get_mut(a as usize) {
                    *d += g;
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use crate::kernels::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    use burn::tensor::{Device, Distribution, Tensor};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// Output and input gradient of `sum(pool(x) ⊙ r)`, ours or Burn's.
    fn run(
        x: &Tensor<4>,
        r: &Tensor<4>,
        o: &MaxPoolOptions<2>,
        ours: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let x = x.clone().require_grad();
        let y = if ours {
            max_pool2d(x.clone(), o.clone())
        } else {
            burn::tensor::module::max_pool2d(x.clone(), o.clone())
        };
        let grads = (y.clone() * r.clone()).sum().backward();
        (values(y), x.grad(&grads).map(values).unwrap_or_default())
    }

    #[test]
    fn max_pool2d_matches_burn_with_gradients_and_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let device = Device::flex().autodiff();
        for case in 0..60 {
            let k = [rng.random_range(1..=3), rng.random_range(1..=3)];
            let s = [rng.random_range(1..=3), rng.random_range(1..=3)];
            let d = [rng.random_range(1..=2), rng.random_range(1..=2)];
            let pad = |i: usize, rng: &mut ChaCha8Rng| {
                (
                    rng.random_range(0..=k[i] / 2),
                    rng.random_range(0..=k[i] / 2),
                )
            };
            let padding = [pad(0, &mut rng), pad(1, &mut rng)];
            let dims = [rng.random_range(1..=3), rng.random_range(1..=3), 0, 0];
            let side = |i: usize, rng: &mut ChaCha8Rng| rng.random_range(d[i] * (k[i] - 1) + 1..=9);
            let dims = [dims[0], dims[1], side(0, &mut rng), side(1, &mut rng)];
            let mut o = MaxPoolOptions::new(k)
                .with_stride(s)
                .with_dilation(d)
                .with_padding_pairs(padding);
            let mut dims = dims;
            if case < 4 {
                // The models' pools: 2×2, stride 2, `same` (padding after on odd sides).
                o = MaxPoolOptions::new([2, 2]).with_padding_pairs([(0, case % 2), (0, case % 2)]);
                dims = [2, 3, 6 + case % 2, 6 + case % 2];
            }
            let x = Tensor::<4>::random(dims, Distribution::Uniform(-1.0, 1.0), &device);
            // Every other case (and a whole-2×2-window one): ReLU-like inputs, full of tied zeros.
            let x = if case % 2 == 0 && case != 2 {
                x
            } else {
                burn::tensor::activation::relu(x)
            };
            let y_dims = burn::tensor::module::max_pool2d(x.clone(), o.clone()).dims();
            let r = Tensor::<4>::random(y_dims, Distribution::Uniform(-1.0, 1.0), &device);
            let (ours, burn) = (run(&x, &r, &o, true), run(&x, &r, &o, false));
            assert_eq!(ours.0, burn.0, "forward, {dims:?} {o:?}");
            assert_eq!(ours.1, burn.1, "gradient, {dims:?} {o:?}");
        }
    }
}
