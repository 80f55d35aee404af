//! Batch normalisation with its activation fused, on contiguous `[batch, channels, plane]` f32
//! slices: the batch statistics, the normalising pass, and the backward pass from the output.
//!
//! Burn's default `batch_norm_train` builds the statistics out of tensor ops: each of mean and
//! variance swaps the batch and channel axes into a contiguous copy first, and the backward
//! pass makes two more such copies and about ten element-wise passes; the ReLU after it is one
//! more op each way. On the `inspect` network (fourteen conv-BN-ReLU triples at 128×128) that
//! was a third of a training step. Here the statistics are per-plane sums reduced per channel
//! (no copy, planes in parallel, f64 sums), the output is written once with the activation
//! applied, and the backward pass is two passes: per-plane sums of the gradient and of the
//! gradient times the centred input, then the input gradient written over the output gradient.
//!
//! Semantics are Burn's: biased variance (what the running statistics take), `epsilon` added to
//! the variance, ReLU's gradient 0 where its output is 0.

use super::act::Act;
use rayon::prelude::*;

/// The layout of a normalised tensor: `batch` samples of `channels` planes of `plane` values
/// (`[n, c, h, w]` has plane `h·w`; `[n, features]` plane 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl NormShape {
    /// The layout of a tensor of `dims` (rank ≥ 2), or `None` for a rank below 2 or no values.
    pub fn of(dims: &[usize]) -> Option<NormShape> {
        let (&batch, rest) = dims.split_first()?;
        let (&channels, planes) = rest.split_first()?;
        let s = NormShape {
            batch,
            channels,
            plane: planes.iter().product(),
        };
        (s.batch * s.channels * s.plane > 0).then_some(s)
    }

    /// Values per channel (the count each statistic is taken over).
    fn per_channel(&self) -> f64 {
        (self.batch * self.plane) as f64
    }
}

/// Sums `f(plane index, plane)` over the planes of each channel: planes in parallel, each
/// plane's figures added per channel in plane order (so the result does not depend on the
/// thread count).
fn per_channel_sums<const K: usize>(
    x: &[f32],
    s: &NormShape,
    f: impl Fn(usize, &[f32]) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let planes: Vec<[f64; K]> = x
        .par_chunks_exact(s.plane)
        .enumerate()
        .map(|(i, p)| f(i, p))
        .collect();
    let mut sums = vec![[0.0; K]; s.channels];
    for (i, p) in planes.iter().enumerate() {
        let acc = &mut sums[i % s.channels];
        for k in 0..K {
            acc[k] += p[k];
        }
    }
    sums
}

/// `Σ f(v)` over a plane in f64, four lanes (vectorises; the sum of 16,384 values keeps
/// float precision).
fn plane_sum(values: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut lanes = [0.0f64; 4];
    let chunks = values.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for k in 0..4 {
            lanes[k] += f(c[k]);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// The batch mean and biased variance of each channel (the variance from the centred values,
/// as Burn computes it).
pub(crate) fn batch_stats(x: &[f32], s: &NormShape) -> (Vec<f32>, Vec<f32>) {
    let n = s.per_channel();
    let sums = per_channel_sums::<1>(x, s, |_, p| [plane_sum(p, f64::from)]);
    let mean: Vec<f64> = sums.iter().map(|[v]| v / n).collect();
    let squares = per_channel_sums::<1>(x, s, |i, p| {
        let m = mean[i % s.channels];
        [plane_sum(p, |v| (f64::from(v) - m).powi(2))]
    });
    let var = squares.iter().map(|[v]| (v / n) as f32).collect();
    (mean.iter().map(|&m| m as f32).collect(), var)
}

/// `1 / sqrt(var + epsilon)` per channel.
pub(crate) fn inv_std(var: &[f32], epsilon: f64) -> Vec<f32> {
    var.iter()
        .map(|&v| (1.0 / (f64::from(v) + epsilon).sqrt()) as f32)
        .collect()
}

/// `act(x · scale[c] + shift[c])` for every value of channel `c`.
pub(crate) fn affine(x: &[f32], s: &NormShape, scale: &[f32], shift: &[f32], act: Act) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_exact_mut(s.plane)
        .zip(x.par_chunks_exact(s.plane))
        .enumerate()
        .for_each(|(i, (y, x))| {
            let c = i % s.channels;
            let (a, b) = (scale[c], shift[c]);
            match act {
                Act::Identity => y.iter_mut().zip(x).for_each(|(y, &x)| *y = x * a + b),
                Act::Relu => y
                    .iter_mut()
                    .zip(x)
                    .for_each(|(y, &x)| *y = (x * a + b).max(0.0)),
                Act::Sigmoid => y
                    .iter_mut()
                    .zip(x)
                    .for_each(|(y, &x)| *y = 1.0 / (1.0 + (-(x * a + b)).exp())),
            }
        });
    y
}

/// The scale and shift that normalise with `mean` and `inv_std` and then apply `gamma`, `beta`.
pub(crate) fn scale_shift(
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(inv_std).map(|(g, i)| g * i).collect();
    let shift = beta
        .iter()
        .zip(mean.iter().zip(&scale))
        .map(|(b, (m, a))| b - m * a)
        .collect();
    (scale, shift)
}

/// What the backward pass needs from the forward one.
pub(crate) struct Saved<'a> {
    pub x: &'a [f32],
    /// The output, when the activation's gradient needs it.
    pub y: Option<&'a [f32]>,
    pub mean: &'a [f32],
    pub inv_std: &'a [f32],
    pub gamma: &'a [f32],
    pub act: Act,
}

/// The gradients of the input (written over `dy`, the gradient of the output), of `gamma` and
/// of `beta`.
pub(crate) fn backward(saved: &Saved, dy: &mut [f32], s: &NormShape) -> (Vec<f32>, Vec<f32>) {
    if let Some(y) = saved.y {
        saved.act.grad_in_place(y, dy);
    }
    let (x, mean, inv_std) = (saved.x, saved.mean, saved.inv_std);
    // Σ dy and Σ dy·(x − mean) per channel.
    let planes: Vec<[f64; 2]> = dy
        .par_chunks_exact(s.plane)
        .zip(x.par_chunks_exact(s.plane))
        .enumerate()
        .map(|(i, (g, x))| {
            let m = mean[i % s.channels];
            let (mut sg, mut sgx) = ([0.0f64; 4], [0.0f64; 4]);
            let (gc, xc) = (g.chunks_exact(4), x.chunks_exact(4));
            let tail: (f64, f64) = gc
                .remainder()
                .iter()
                .zip(xc.remainder())
                .fold((0.0, 0.0), |(a, b), (&g, &x)| {
                    (a + f64::from(g), b + f64::from(g) * f64::from(x - m))
                });
            for (g, x) in gc.zip(xc) {
                for k in 0..4 {
                    sg[k] += f64::from(g[k]);
                    sgx[k] += f64::from(g[k]) * f64::from(x[k] - m);
                }
            }
            [
                sg.iter().sum::<f64>() + tail.0,
                sgx.iter().sum::<f64>() + tail.1,
            ]
        })
        .collect();
    let mut sums = vec![[0.0f64; 2]; s.channels];
    for (i, p) in planes.iter().enumerate() {
        let acc = &mut sums[i % s.channels];
        acc[0] += p[0];
        acc[1] += p[1];
    }
    let n = s.per_channel();
    let dbeta: Vec<f32> = sums.iter().map(|[g, _]| *g as f32).collect();
    let dgamma: Vec<f32> = sums
        .iter()
        .zip(inv_std)
        .map(|([_, gx], &i)| (gx * f64::from(i)) as f32)
        .collect();
    // dx = γ·σ⁻¹·(dy − mean(dy) − (x − μ)·σ⁻²·mean(dy·(x − μ))).
    let coef: Vec<[f32; 3]> = (0..s.channels)
        .map(|c| {
            let i = f64::from(inv_std[c]);
            [
                (f64::from(saved.gamma[c]) * i) as f32,
                (sums[c][0] / n) as f32,
                (sums[c][1] / n * i * i) as f32,
            ]
        })
        .collect();
    dy.par_chunks_exact_mut(s.plane)
        .zip(x.par_chunks_exact(s.plane))
        .enumerate()
        .for_each(|(i, (g, x))| {
            let c = i % s.channels;
            let ([k, a, b], m) = (coef[c], mean[c]);
            g.iter_mut()
                .zip(x)
                .for_each(|(g, &x)| *g = k * (*g - a - (x - m) * b));
        });
    (dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> NormShape {
        NormShape {
            batch: 3,
            channels: 2,
            plane: 5,
        }
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    #[test]
    fn stats_are_the_mean_and_biased_variance_of_each_channel() {
        let s = shape();
        let x = values(30, 1);
        let (mean, var) = batch_stats(&x, &s);
        for c in 0..2 {
            let vals: Vec<f64> = (0..3)
                .flat_map(|n| x[(n * 2 + c) * 5..][..5].iter().map(|&v| f64::from(v)))
                .collect();
            let m = vals.iter().sum::<f64>() / 15.0;
            let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 15.0;
            assert!((f64::from(mean[c]) - m).abs() < 1e-6, "{} {m}", mean[c]);
            assert!((f64::from(var[c]) - v).abs() < 1e-6, "{} {v}", var[c]);
        }
    }

    /// The loss `Σ w·y` of `y = act(bn(x))` and its numeric gradients against `backward`.
    #[test]
    fn backward_matches_numeric_gradients() {
        let s = shape();
        let (x, w) = (values(30, 3), values(30, 9));
        let (gamma, beta) = (vec![1.5f32, -0.7], vec![0.2f32, 0.4]);
        let eps = 1e-5;
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            let (mean, var) = batch_stats(x, &s);
            let (a, b) = scale_shift(&mean, &inv_std(&var, eps), gamma, beta);
            let y = affine(x, &s, &a, &b, Act::Relu);
            y.iter().zip(&w).map(|(y, w)| f64::from(y * w)).sum()
        };
        let (mean, var) = batch_stats(&x, &s);
        let istd = inv_std(&var, eps);
        let (a, b) = scale_shift(&mean, &istd, &gamma, &beta);
        let y = affine(&x, &s, &a, &b, Act::Relu);
        let mut dx = w.clone();
        let saved = Saved {
            x: &x,
            y: Some(&y),
            mean: &mean,
            inv_std: &istd,
            gamma: &gamma,
            act: Act::Relu,
        };
        let (dgamma, dbeta) = backward(&saved, &mut dx, &s);
        let h = 1e-3f32;
        let numeric = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * f64::from(h));
        for i in [0, 7, 13, 29] {
            let d = numeric(&|e| {
                let mut x2 = x.clone();
                x2[i] += e;
                loss(&x2, &gamma, &beta)
            });
            assert!(
                (d - f64::from(dx[i])).abs() < 2e-2,
                "dx[{i}] {} vs {d}",
                dx[i]
            );
        }
        for c in 0..2 {
            let dg = numeric(&|e| {
                let mut g = gamma.clone();
                g[c] += e;
                loss(&x, &g, &beta)
            });
            let db = numeric(&|e| {
                let mut b = beta.clone();
                b[c] += e;
                loss(&x, &gamma, &b)
            });
            assert!(
                (dg - f64::from(dgamma[c])).abs() < 2e-2,
                "dgamma {} vs {dg}",
                dgamma[c]
            );
            assert!(
                (db - f64::from(dbeta[c])).abs() < 2e-2,
                "dbeta {} vs {db}",
                dbeta[c]
            );
        }
    }

    #[test]
    fn a_shape_needs_two_axes_and_values() {
        assert_eq!(NormShape::of(&[4]), None);
        assert_eq!(NormShape::of(&[0, 3, 2, 2]), None);
        assert_eq!(
            NormShape::of(&[4, 3, 2, 5]),
            Some(NormShape {
                batch: 4,
                channels: 3,
                plane: 10
            })
        );
        assert_eq!(NormShape::of(&[4, 3]).map(|s| s.plane), Some(1));
    }
}
