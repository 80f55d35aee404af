//! Transposed convolution in gather form: the forward pass of `conv_transpose2d` and the input
//! gradient of `conv2d` (the same operation).
//!
//! Scattering `Wᵀ · x` through col2im makes gemm produce `kh·kw` times more values than the
//! output holds, from an inner dimension of only `cin`. Instead the output is split into its
//! `sh × sw` phases (output rows `r, r + sh, …` and likewise columns): each phase is an ordinary
//! stride-1 convolution of the input with the kernel taps that land on it, flipped — one
//! im2col + gemm with inner dimension `cin · taps`, written straight into place (stride 1) or
//! interleaved into the output (stride > 1).
//!
//! Along one axis, output `Y = i·s + k·d − p` for input `i` and tap `k`. For `Y = r + s·a`, tap `k`
//! contributes iff `s` divides `r + p − k·d`, from input `a + (r + p − k·d) / s`: in order of
//! decreasing `k`, input offsets `c₀, c₀ + d/g, …` with `g = gcd(s, d)`.

use super::direct;
use super::im2col::{Geom, col2im, im2col, with_scratch};
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

/// The taps of one output phase along one axis.
#[derive(Debug, Clone)]
struct AxisPhase {
    /// First output coordinate `r`; the phase holds `r, r + s, …`.
    first: usize,
    /// Outputs in the phase.
    count: usize,
    /// Kernel taps, in order of increasing input offset.
    taps: Vec<usize>,
    /// Input offset of the first tap.
    offset: isize,
    /// Input spacing of successive taps.
    spacing: usize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn axis_phases(t: &Transposed, axis: usize) -> Vec<AxisPhase> {
    let (s, d, k) = (t.stride[axis], t.dilation[axis], t.kernel[axis]);
    let (p, out) = (t.pad[axis] as isize, t.output[axis]);
    (0..s)
        .map(|r| {
            let lead = |ki: usize| r as isize + p - (ki * d) as isize;
            let taps: Vec<usize> = (0..k)
                .rev()
                .filter(|&ki| lead(ki).rem_euclid(s as isize) == 0)
                .collect();
            AxisPhase {
                first: r,
                count: out.saturating_sub(r).div_ceil(s),
                offset: taps
                    .first()
                    .map_or(0, |&ki| lead(ki).div_euclid(s as isize)),
                spacing: d / gcd(s, d),
                taps,
            }
        })
        .collect()
}

/// One output phase: its stride-1 convolution and its weight as `[cout, cin·taps]`.
#[derive(Debug)]
struct Phase {
    y: AxisPhase,
    x: AxisPhase,
    geom: Geom,
    weight: Vec<f32>,
}

/// The phases that receive any taps.
fn phases(t: &Transposed, weight: &[f32]) -> Vec<Phase> {
    let (ys, xs) = (axis_phases(t, 0), axis_phases(t, 1));
    let [kh, kw] = t.kernel;
    let mut out = Vec::new();
    for py in &ys {
        for px in &xs {
            if py.taps.is_empty() || px.taps.is_empty() || py.count == 0 || px.count == 0 {
                continue;
            }
            let geom = Geom {
                channels: t.cin,
                img: t.input,
                kernel: [py.taps.len(), px.taps.len()],
                stride: [1, 1],
                dilation: [py.spacing, px.spacing],
                pad: [-py.offset, -px.offset],
                grid: [py.count, px.count],
            };
            let mut w = Vec::with_capacity(t.cout * geom.rows());
            for co in 0..t.cout {
                for ci in 0..t.cin {
                    for &ki in &py.taps {
                        for &kj in &px.taps {
                            w.push(weight[((ci * t.cout + co) * kh + ki) * kw + kj]);
                        }
                    }
                }
            }
            out.push(Phase {
                y: py.clone(),
                x: px.clone(),
                geom,
                weight: w,
            });
        }
    }
    out
}

/// Writes `vals` (`[cout, range.len()]`, phase positions `range`) into their places in `y`.
fn interleave(
    vals: &[f32],
    ph: &Phase,
    range: std::ops::Range<usize>,
    t: &Transposed,
    y: &mut [f32],
) {
    let [oh, ow] = t.output;
    let (sy, sx) = (t.stride[0], t.stride[1]);
    let cx = ph.x.count;
    for (plane, v) in y
        .chunks_exact_mut(oh * ow)
        .zip(vals.chunks_exact(range.len()))
    {
        let mut p = range.start;
        while p < range.end {
            let (a, b0) = (p / cx, p % cx);
            let b1 = (b0 + range.end - p).min(cx);
            let row = &mut plane[(ph.y.first + sy * a) * ow..][..ow];
            let src = &v[p - range.start..][..b1 - b0];
            for (d, s) in row[ph.x.first + sx * b0..].iter_mut().step_by(sx).zip(src) {
                *d = *s;
            }
            p += b1 - b0;
        }
    }
}

/// Scatter form: per image, `cols = Wᵀ · x[n]` (`[cout·kh·kw, ih·iw]`) added into `y[n]` by
/// col2im. Cheaper than the phases when strided phases make their gemms too thin.
fn scatter(x: &[f32], weight: &[f32], t: &Transposed) -> Vec<f32> {
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
    };
    y.par_chunks_mut(yl.max(1))
        .zip(x.par_chunks(xl.max(1)))
        .for_each(image);
    y
}

/// `y = conv_transpose(x, weight)`: `[batch, cout, oh, ow]`.
pub(crate) fn transposed(x: &[f32], weight: &[f32], t: &Transposed) -> Vec<f32> {
    let use_scatter = match std::env::var("CAE_T").as_deref() {
        Ok("scatter") => true,
        Ok("phase") => false,
        _ => t.stride != [1, 1],
    };
    if use_scatter {
        return scatter(x, weight, t);
    }
    let phases = phases(t, weight);
    let (xl, yl) = (
        t.cin * t.input[0] * t.input[1],
        t.cout * t.output[0] * t.output[1],
    );
    let mut y = vec![0.0; t.batch * yl];
    let inner_parallel = t.batch < rayon::current_num_threads();
    // Stride 1: the single phase is the output itself.
    let direct_out = t.stride == [1, 1];
    let image = |(yn, xn): (&mut [f32], &[f32])| {
        for ph in &phases {
            let g = &ph.geom;
            if t.cout <= direct::MAX_COUT {
                // Few output channels: a direct correlation per phase, not a thin gemm.
                let d = direct::Phase {
                    channels: t.cin,
                    img: t.input,
                    taps: g.kernel,
                    spacing: g.dilation,
                    offset: [-g.pad[0], -g.pad[1]],
                    grid: g.grid,
                };
                let np = g.positions();
                with_scratch(d.scratch() + t.cout * np, |buf| {
                    let (pad, vals) = buf.split_at_mut(d.scratch());
                    let out = if direct_out {
                        &mut yn[..]
                    } else {
                        &mut vals[..]
                    };
                    d.run(xn, &ph.weight, out, pad);
                    if !direct_out {
                        interleave(vals, ph, 0..np, t, yn);
                    }
                });
                continue;
            }
            let (k, np, tile) = (g.rows(), g.positions(), g.tile());
            let w = View::rows(t.cout, k);
            with_scratch(k * tile + t.cout * tile, |buf| {
                let (cols, vals) = buf.split_at_mut(k * tile);
                for r in g.tiles() {
                    im2col(xn, g, r.clone(), cols);
                    let c = View::rows(k, r.len());
                    if direct_out {
                        let d = View::strided(t.cout, r.len(), np);
                        matmul(
                            &mut yn[r.start..],
                            d,
                            &ph.weight,
                            w,
                            cols,
                            c,
                            false,
                            inner_parallel,
                        );
                    } else {
                        let d = View::rows(t.cout, r.len());
                        matmul(vals, d, &ph.weight, w, cols, c, false, inner_parallel);
                        interleave(vals, ph, r, t, yn);
                    }
                }
            });
        }
    };
    y.par_chunks_mut(yl.max(1))
        .zip(x.par_chunks(xl.max(1)))
        .for_each(image);
    y
}
