//! The interleave step of [`super::upsample_conv`]: four phase outputs, computed as `4·cout`
//! channels of one convolution over `(h + 1) × (w + 1)` positions, woven into a `2h × 2w` image,
//! and its adjoint for the backward pass. Plain strided copies over `[batch, cout]` planes in
//! parallel; Burn's slice + stack did the same with generic copies and cost as much as the
//! convolution it served.

use rayon::prelude::*;

/// Sizes: `z: [batch, 4·cout, h + 1, w + 1]` (phase `(py, px)` at channels `(2·py + px)·cout..`)
/// and `y: [batch, cout, 2h, 2w]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phases {
    pub batch: usize,
    pub cout: usize,
    /// `[h, w]`: the input side of the upsample, half the output side.
    pub half: [usize; 2],
}

impl Phases {
    fn z_plane(&self) -> usize {
        (self.half[0] + 1) * (self.half[1] + 1)
    }

    fn y_plane(&self) -> usize {
        4 * self.half[0] * self.half[1]
    }

    /// Offset in `z` of plane `(n, phase, co)`.
    fn z_at(&self, n: usize, phase: usize, co: usize) -> usize {
        ((n * 4 + phase) * self.cout + co) * self.z_plane()
    }
}

/// `y[n, c, 2a + py, 2b + px] = z[n, (2py + px)·cout + c, a + py, b + px]`.
pub(crate) fn interleave(z: &[f32], p: &Phases) -> Vec<f32> {
    let [h, w] = p.half;
    let mut y = vec![0.0; p.batch * p.cout * p.y_plane()];
    y.par_chunks_mut(p.y_plane().max(1))
        .enumerate()
        .for_each(|(plane, yp)| {
            let (n, co) = (plane / p.cout, plane % p.cout);
            for (phase, (py, px)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                let zp = &z[p.z_at(n, phase, co)..][..p.z_plane()];
                for a in 0..h {
                    let src = &zp[(a + py) * (w + 1) + px..][..w];
                    let dst = &mut yp[(2 * a + py) * 2 * w + px..];
                    for (b, &v) in src.iter().enumerate() {
                        dst[2 * b] = v;
                    }
                }
            }
        });
    y
}

/// The adjoint of [`interleave`]: `dz` with each `dy` value at its source, zero elsewhere (the
/// first or last row and column of a phase that no output reads).
pub(crate) fn deinterleave(dy: &[f32], p: &Phases) -> Vec<f32> {
    let [h, w] = p.half;
    let mut dz = vec![0.0; p.batch * 4 * p.cout * p.z_plane()];
    dz.par_chunks_mut(p.z_plane().max(1))
        .enumerate()
        .for_each(|(plane, zp)| {
            let (n, phase, co) = (plane / (4 * p.cout), (plane / p.cout) % 4, plane % p.cout);
            let (py, px) = (phase / 2, phase % 2);
            let yp = &dy[(n * p.cout + co) * p.y_plane()..][..p.y_plane()];
            for a in 0..h {
                let src = &yp[(2 * a + py) * 2 * w + px..];
                let dst = &mut zp[(a + py) * (w + 1) + px..][..w];
                for (b, d) in dst.iter_mut().enumerate() {
                    *d = src[2 * b];
                }
            }
        });
    dz
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_places_each_phase_and_deinterleave_is_its_adjoint() {
        let p = Phases {
            batch: 2,
            cout: 3,
            half: [2, 3],
        };
        let z: Vec<f32> = (0..2 * 12 * 12).map(|v| v as f32).collect();
        let y = interleave(&z, &p);
        for n in 0..2 {
            for c in 0..3 {
                for oy in 0..4 {
                    for ox in 0..6 {
                        let (a, py, b, px) = (oy / 2, oy % 2, ox / 2, ox % 2);
                        let want = z[p.z_at(n, 2 * py + px, c) + (a + py) * 4 + b + px];
                        assert_eq!(y[((n * 3 + c) * 4 + oy) * 6 + ox], want);
                    }
                }
            }
        }
        let dy: Vec<f32> = (0..y.len()).map(|v| ((v * 7) % 11) as f32 - 5.0).collect();
        let dz = deinterleave(&dy, &p);
        let lhs: f32 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
        let rhs: f32 = z.iter().zip(&dz).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
