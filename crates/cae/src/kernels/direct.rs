//! Direct (no column matrix) stride-1 convolution for layers with few output channels, such as
//! a decoder's last `32 → 1` layer. There im2col + gemm degenerates into a matrix-vector product
//! streaming a column matrix `cin·kh·kw` times the size of the output through memory; here every
//! output row block instead accumulates in registers over `cin·kh·kw` shifted input rows.
//!
//! The source planes are first copied into a zero-bordered buffer, so the inner loops have fixed
//! trip counts and no bounds logic; they are compiled twice, with and without AVX2 + FMA, and the
//! CPU picks at run time.

use super::act::{Act, finish};
use super::conv::{ConvShape, Grads, Wanted, add_channel_sums, over_chunks};
use super::im2col::with_scratch;
use rayon::prelude::*;

/// Output values per register block (two AVX vectors).
const BW: usize = 16;
/// Layers with at most this many output channels use these kernels (at stride 1).
pub(crate) const MAX_COUT: usize = 4;

/// Whether the direct kernels handle `s`.
pub(crate) fn applies(s: &ConvShape) -> bool {
    s.cout <= MAX_COUT && s.geom.stride == [1, 1]
}

/// Zero-bordered copies of `channels` planes: `buf[c, r, q] = img[c, r + dy, q + dx]` (zero
/// outside `img`), `rows × width` per plane.
#[derive(Debug, Clone, Copy)]
struct Padded {
    channels: usize,
    rows: usize,
    width: usize,
    /// Source plane `[h, w]`.
    img: [usize; 2],
    /// Source coordinate of buffer element `(0, 0)`.
    shift: [isize; 2],
}

impl Padded {
    fn len(&self) -> usize {
        self.channels * self.rows * self.width
    }

    fn fill(&self, img: &[f32], buf: &mut [f32]) {
        let [h, w] = self.img;
        let planes = buf[..self.len()].chunks_exact_mut(self.rows * self.width);
        for (plane, src) in planes.zip(img.chunks_exact(h * w)) {
            for (r, row) in plane.chunks_exact_mut(self.width).enumerate() {
                row.fill(0.0);
                let sr = r as isize + self.shift[0];
                if sr < 0 || sr >= h as isize {
                    continue;
                }
                let src = &src[sr as usize * w..][..w];
                // Buffer columns q with 0 ≤ q + shift < w.
                let q0 = (-self.shift[1]).max(0) as usize;
                let q1 = ((w as isize - self.shift[1]).max(0) as usize).min(self.width);
                if q1 > q0 {
                    let s0 = (q0 as isize + self.shift[1]) as usize;
                    row[q0..q1].copy_from_slice(&src[s0..s0 + q1 - q0]);
                }
            }
        }
    }
}

/// `out[o, y, x] = Σ w[o, i, ki, kj] · src[i, y + ki·dh, x + kj·dw]` over `oh × ow`.
#[inline(always)]
fn correlate<const FMA: bool>(
    src: &[f32],
    p: &Padded,
    w: &[f32],
    (kernel, dilation): ([usize; 2], [usize; 2]),
    out: &mut [f32],
    [oh, ow]: [usize; 2],
) {
    let [kh, kw] = kernel;
    let taps = p.channels * kh * kw;
    for (o, plane) in out.chunks_exact_mut(oh * ow).enumerate() {
        let wo = &w[o * taps..][..taps];
        for (y, orow) in plane.chunks_exact_mut(ow).enumerate() {
            for xb in (0..ow).step_by(BW) {
                let mut acc = [0.0f32; BW];
                for (i, wi) in wo.chunks_exact(kh * kw).enumerate() {
                    for (ki, wk) in wi.chunks_exact(kw).enumerate() {
                        let row = &src[(i * p.rows + y + ki * dilation[0]) * p.width + xb..];
                        for (kj, &wv) in wk.iter().enumerate() {
                            let s = &row[kj * dilation[1]..][..BW];
                            for l in 0..BW {
                                acc[l] = if FMA {
                                    wv.mul_add(s[l], acc[l])
                                } else {
                                    acc[l] + wv * s[l]
                                };
                            }
                        }
                    }
                }
                let n = BW.min(ow - xb);
                orow[xb..xb + n].copy_from_slice(&acc[..n]);
            }
        }
    }
}

/// `dw[o, i, ki, kj] += Σ g[o, y, x] · src[i, y + ki·dh, x + kj·dw]`; `g` is `[o, oh, gw]`
/// with zeros past `ow` in each row.
#[inline(always)]
fn weight_grad<const FMA: bool>(
    src: &[f32],
    p: &Padded,
    g: &[f32],
    gw: usize,
    (kernel, dilation): ([usize; 2], [usize; 2]),
    oh: usize,
    dw: &mut [f32],
) {
    let [kh, kw] = kernel;
    let taps = p.channels * kh * kw;
    for (o, dwo) in dw.chunks_exact_mut(taps).enumerate() {
        let go = &g[o * oh * gw..][..oh * gw];
        for (t, d) in dwo.iter_mut().enumerate() {
            let (i, ki, kj) = (t / (kh * kw), (t / kw) % kh, t % kw);
            let base = (i * p.rows + ki * dilation[0]) * p.width + kj * dilation[1];
            let mut acc = [0.0f32; BW];
            for (y, grow) in go.chunks_exact(gw).enumerate() {
                let srow = &src[base + y * p.width..][..gw];
                for (gs, ss) in grow.chunks_exact(BW).zip(srow.chunks_exact(BW)) {
                    for l in 0..BW {
                        acc[l] = if FMA {
                            gs[l].mul_add(ss[l], acc[l])
                        } else {
                            acc[l] + gs[l] * ss[l]
                        };
                    }
                }
            }
            *d += acc.iter().sum::<f32>();
        }
    }
}

/// Whether this CPU runs the AVX2 + FMA builds of the kernels.
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`correlate`] compiled for AVX2 + FMA, or portable where the CPU lacks them.
#[allow(clippy::too_many_arguments)]
fn correlate_any(
    src: &[f32],
    p: &Padded,
    w: &[f32],
    kd: ([usize; 2], [usize; 2]),
    out: &mut [f32],
    grid: [usize; 2],
) {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        #[target_feature(enable = "avx2,fma")]
        fn fast(
            src: &[f32],
            p: &Padded,
            w: &[f32],
            kd: ([usize; 2], [usize; 2]),
            out: &mut [f32],
            grid: [usize; 2],
        ) {
            correlate::<true>(src, p, w, kd, out, grid)
        }
        // SAFETY: `fast` only requires AVX2 and FMA, which `has_fma` just found on this CPU.
        return unsafe { fast(src, p, w, kd, out, grid) };
    }
    correlate::<false>(src, p, w, kd, out, grid)
}

/// [`weight_grad`] compiled for AVX2 + FMA, or portable where the CPU lacks them.
fn weight_grad_any(
    src: &[f32],
    p: &Padded,
    g: &[f32],
    gw: usize,
    kd: ([usize; 2], [usize; 2]),
    oh: usize,
    dw: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        #[target_feature(enable = "avx2,fma")]
        fn fast(
            src: &[f32],
            p: &Padded,
            g: &[f32],
            gw: usize,
            kd: ([usize; 2], [usize; 2]),
            oh: usize,
            dw: &mut [f32],
        ) {
            weight_grad::<true>(src, p, g, gw, kd, oh, dw)
        }
        // SAFETY: `fast` only requires AVX2 and FMA, which `has_fma` just found on this CPU.
        return unsafe { fast(src, p, g, gw, kd, oh, dw) };
    }
    weight_grad::<false>(src, p, g, gw, kd, oh, dw)
}

fn round_up(v: usize) -> usize {
    v.div_ceil(BW) * BW
}

/// The forward source layout: `x` with the convolution's padding, wide enough for whole blocks.
fn input_layout(s: &ConvShape) -> Padded {
    let g = &s.geom;
    let span = |i: usize| g.dilation[i] * (g.kernel[i] - 1);
    Padded {
        channels: g.channels,
        rows: g.grid[0] + span(0),
        width: round_up(g.grid[1]) + span(1),
        img: g.img,
        shift: [-g.pad[0], -g.pad[1]],
    }
}

/// `y = act(conv(x, weight) + bias)` for a shape [`applies`] accepts.
pub(crate) fn forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
    act: Act,
) -> Vec<f32> {
    let g = &s.geom;
    let p = input_layout(s);
    let yl = s.cout * g.positions();
    let mut y = vec![0.0; s.batch * yl];
    let kd = (g.kernel, g.dilation);
    let images = y
        .par_chunks_mut(yl.max(1))
        .zip(x.par_chunks(g.img_len().max(1)));
    images.for_each(|(yn, xn)| {
        with_scratch(p.len(), |buf| {
            p.fill(xn, buf);
            correlate_any(buf, &p, weight, kd, yn, g.grid);
        });
        finish(yn, bias, g.positions(), act);
    });
    y
}

/// `dx`: the correlation of `dy`, bordered by the kernel's span, with the weight flipped in space
/// and transposed in channels: `dx[i, y, x] = Σ wf[i, o, ki, kj] · dy'[o, y + ki·dh, x + kj·dw]`.
fn input_grad(dy: &[f32], weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let g = &s.geom;
    let [kh, kw] = g.kernel;
    let span = [g.dilation[0] * (kh - 1), g.dilation[1] * (kw - 1)];
    let pd = Padded {
        channels: s.cout,
        rows: g.img[0] + span[0],
        width: round_up(g.img[1]) + span[1],
        img: g.grid,
        shift: [g.pad[0] - span[0] as isize, g.pad[1] - span[1] as isize],
    };
    let mut flipped = vec![0.0; weight.len()];
    for (t, v) in flipped.iter_mut().enumerate() {
        let (i, o) = (t / (s.cout * kh * kw), (t / (kh * kw)) % s.cout);
        let (ki, kj) = ((t / kw) % kh, t % kw);
        *v = weight[((o * g.channels + i) * kh + kh - 1 - ki) * kw + kw - 1 - kj];
    }
    let (xl, yl) = (g.img_len(), s.cout * g.positions());
    let mut dx = vec![0.0; s.batch * xl];
    let kd = (g.kernel, g.dilation);
    let images = dx.par_chunks_mut(xl.max(1)).zip(dy.par_chunks(yl.max(1)));
    images.for_each(|(dxn, dy_n)| {
        with_scratch(pd.len(), |buf| {
            pd.fill(dy_n, buf);
            correlate_any(buf, &pd, &flipped, kd, dxn, g.img);
        })
    });
    dx
}

/// Gradients of `sum((conv(x, weight) + bias) ⊙ dy)` for a shape [`applies`] accepts.
pub(crate) fn backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    s: &ConvShape,
    want: Wanted,
) -> Grads {
    let g = &s.geom;
    let (xl, yl, taps) = (g.img_len(), s.cout * g.positions(), g.rows());
    let px = input_layout(s);
    // dy rows widened to whole blocks, zeros past the row's end.
    let gw = round_up(g.grid[1]);
    let pg = Padded {
        channels: s.cout,
        rows: g.grid[0],
        width: gw,
        img: g.grid,
        shift: [0, 0],
    };
    let chunk = |images: std::ops::Range<usize>| {
        let mut dw = vec![0.0; if want.weight { s.cout * taps } else { 0 }];
        let mut db = vec![0.0; if want.bias { s.cout } else { 0 }];
        for n in images {
            let (xn, dy_n) = (&x[n * xl..][..xl], &dy[n * yl..][..yl]);
            if want.weight {
                with_scratch(px.len() + pg.len(), |buf| {
                    let (src, grad) = buf.split_at_mut(px.len());
                    px.fill(xn, src);
                    pg.fill(dy_n, grad);
                    let kd = (g.kernel, g.dilation);
                    weight_grad_any(src, &px, grad, gw, kd, g.grid[0], &mut dw);
                });
            }
            if want.bias {
                add_channel_sums(&mut db, dy_n, g.positions());
            }
        }
        (dw, db)
    };
    let (dw, db) = if want.weight || want.bias {
        over_chunks(s.batch, (s.cout * taps, s.cout), chunk)
    } else {
        Default::default()
    };
    Grads {
        x: want.x.then(|| input_grad(dy, weight, s)),
        weight: want.weight.then_some(dw),
        bias: want.bias.then_some(db),
    }
}
