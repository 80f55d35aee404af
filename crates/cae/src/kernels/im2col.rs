//! The column matrices every convolution kernel here is built on, and the per-thread scratch that
//! holds them.
//!
//! A [`Geom`] ties an image `[channels, h, w]` to a grid of positions `[oh, ow]`: position
//! `(oy, ox)` with kernel offset `(ki, kj)` reads image pixel
//! `(oy·sh + ki·dh − top, ox·sw + kj·dw − left)`, zero outside. For a convolution the image is its
//! input and the grid its output (for one phase of a transposed convolution, see
//! [`super::transposed`], likewise). [`im2col`] gathers a range of grid positions into rows
//! `(c, ki, kj)`. Position ranges keep the column tile small enough to stay in cache while gemm
//! consumes it.

use std::cell::RefCell;
use std::ops::Range;

/// How an image maps onto a grid of kernel positions (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub channels: usize,
    /// Image side `[h, w]`.
    pub img: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding before the image, `[top, left]`; negative crops.
    pub pad: [isize; 2],
    /// Grid side `[oh, ow]`.
    pub grid: [usize; 2],
}

/// Floats of column tile to aim for: 1 MiB. Larger tiles give gemm wider products (its own
/// packing keeps the working set in cache); measured ~12% less CPU time than 128 KiB tiles on
/// the 64-channel convolutions of `dense-latent`, the same on small ones.
const TILE_FLOATS: usize = 256 * 1024;

impl Geom {
    /// Rows of the column matrix: `channels · kh · kw`.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Grid positions: `oh · ow`.
    pub fn positions(&self) -> usize {
        self.grid[0] * self.grid[1]
    }

    /// Values in one image.
    pub fn img_len(&self) -> usize {
        self.channels * self.img[0] * self.img[1]
    }

    /// Grid positions per column tile: whole grid rows.
    pub fn tile(&self) -> usize {
        let ow = self.grid[1].max(1);
        let rows = (TILE_FLOATS / (self.rows() * ow).max(1)).clamp(1, self.grid[0].max(1));
        rows * ow
    }

    /// The position ranges of the column tiles, in order (whole grid rows each).
    pub fn tiles(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let (n, t) = (self.positions(), self.tile());
        (0..n).step_by(t.max(1)).map(move |p| p..(p + t).min(n))
    }

    /// Grid coordinates along `axis` whose image coordinate for kernel offset `k` is inside the
    /// image: `lo..hi`.
    fn valid(&self, axis: usize, k: usize) -> (usize, usize) {
        let s = self.stride[axis] as isize;
        let (img, grid) = (self.img[axis] as isize, self.grid[axis] as isize);
        // image coordinate = o·s + off
        let off = self.offset(axis, k);
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = if img <= off {
            0
        } else {
            (img - off + s - 1) / s
        };
        let lo = lo.min(grid);
        (lo as usize, hi.clamp(lo, grid) as usize)
    }

    /// Image coordinate of grid coordinate 0 for kernel offset `k` along `axis`.
    fn offset(&self, axis: usize, k: usize) -> isize {
        (k * self.dilation[axis]) as isize - self.pad[axis]
    }
}

/// Gathers grid positions `range` (whole grid rows) of `img` (`[channels, h, w]`) into `cols`,
/// a row-major `[rows, range.len()]` matrix.
pub(crate) fn im2col(img: &[f32], g: &Geom, range: Range<usize>, cols: &mut [f32]) {
    let len = range.len();
    let [h, w] = g.img;
    let ow = g.grid[1];
    if ow == 0 || len == 0 {
        return;
    }
    debug_assert!(
        range.start.is_multiple_of(ow) && len.is_multiple_of(ow),
        "tiles are whole grid rows"
    );
    let (oy0, oy1) = (range.start / ow, range.end / ow);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    if g.stride == [1, 1] && ow == w {
        return im2col_shifted(img, g, oy0..oy1, cols);
    }
    let mut rows = cols[..g.rows() * len].chunks_exact_mut(len);
    for plane in img[..g.img_len()].chunks_exact(h * w) {
        for ki in 0..kh {
            let (ylo, yhi) = g.valid(0, ki);
            for kj in 0..kw {
                let (xlo, xhi) = g.valid(1, kj);
                let Some(row) = rows.next() else { return };
                // Image column of grid column `xlo`; `n` values taken `sw` apart.
                let (ix, n) = (((xlo * sw) as isize + g.offset(1, kj)) as usize, xhi - xlo);
                for (oy, dst) in (oy0..oy1).zip(row.chunks_exact_mut(ow)) {
                    if oy < ylo || oy >= yhi || n == 0 {
                        dst.fill(0.0);
                        continue;
                    }
                    let iy = ((oy * sh) as isize + g.offset(0, ki)) as usize;
                    let src = &plane[iy * w..][..w];
                    let (head, rest) = dst.split_at_mut(xlo);
                    let (mid, tail) = rest.split_at_mut(n);
                    head.fill(0.0);
                    tail.fill(0.0);
                    if sw == 1 {
                        mid.copy_from_slice(&src[ix..ix + n]);
                    } else {
                        let taps = src[ix..ix + (n - 1) * sw + 1].iter().step_by(sw);
                        mid.iter_mut().zip(taps).for_each(|(d, s)| *d = *s);
                    }
                }
            }
        }
    }
}

/// [`im2col`] for stride 1 with the grid as wide as the image (`same` padding and the like):
/// then grid rows follow each other in the image as they do in the column row, so a column row
/// is the image shifted by one offset — one contiguous copy for all its valid grid rows, after
/// which the few positions that wrapped around a row edge are zeroed. Small images (16×16,
/// 32×32) otherwise spend most of the gather in per-row copies of a few dozen floats.
fn im2col_shifted(img: &[f32], g: &Geom, grid_rows: Range<usize>, cols: &mut [f32]) {
    let [h, w] = g.img;
    let (oy0, len) = (grid_rows.start, grid_rows.len() * w);
    let [kh, kw] = g.kernel;
    let mut rows = cols[..g.rows() * len].chunks_exact_mut(len);
    for plane in img[..g.img_len()].chunks_exact(h * w) {
        for ki in 0..kh {
            let (ylo, yhi) = g.valid(0, ki);
            let (ya, yb) = (ylo.max(grid_rows.start), yhi.min(grid_rows.end));
            let dy = g.offset(0, ki);
            for kj in 0..kw {
                let (xlo, xhi) = g.valid(1, kj);
                let Some(row) = rows.next() else { return };
                if ya >= yb || xlo >= xhi {
                    row.fill(0.0);
                    continue;
                }
                // Grid rows ya..yb (relative to the tile) read image rows ya+dy.. shifted by dx.
                let (start, end) = ((ya - oy0) * w, (yb - oy0) * w);
                row[..start].fill(0.0);
                row[end..].fill(0.0);
                let shift = dy * w as isize + g.offset(1, kj);
                // Image index of position p (tile-relative start) is ya·w + p + shift; clip the
                // block to the plane, the clipped ends are wrapped positions zeroed below.
                let first = (ya * w) as isize + shift;
                let skip = (-first).max(0) as usize;
                let take = (end - start - skip).min(plane.len() - (first + skip as isize) as usize);
                let src = (first + skip as isize) as usize;
                row[start + skip..start + skip + take].copy_from_slice(&plane[src..src + take]);
                row[start..start + skip].fill(0.0);
                row[start + skip + take..end].fill(0.0);
                for grid_row in row[start..end].chunks_exact_mut(w) {
                    grid_row[..xlo].fill(0.0);
                    grid_row[xhi..].fill(0.0);
                }
            }
        }
    }
}

/// Adds `cols` (row-major `[rows, range.len()]`, as [`im2col`] lays it out; whole grid rows)
/// back into `img`: the adjoint of [`im2col`].
pub(crate) fn col2im(cols: &[f32], g: &Geom, range: Range<usize>, img: &mut [f32]) {
    let len = range.len();
    let [h, w] = g.img;
    let ow = g.grid[1];
    if ow == 0 || len == 0 {
        return;
    }
    debug_assert!(
        range.start.is_multiple_of(ow) && len.is_multiple_of(ow),
        "tiles are whole grid rows"
    );
    let (oy0, oy1) = (range.start / ow, range.end / ow);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let mut rows = cols[..g.rows() * len].chunks_exact(len);
    for plane in img[..g.img_len()].chunks_exact_mut(h * w) {
        for ki in 0..kh {
            let (ylo, yhi) = g.valid(0, ki);
            for kj in 0..kw {
                let (xlo, xhi) = g.valid(1, kj);
                let Some(row) = rows.next() else { return };
                let (ix, n) = (((xlo * sw) as isize + g.offset(1, kj)) as usize, xhi - xlo);
                if n == 0 {
                    continue;
                }
                for (oy, src) in (oy0..oy1).zip(row.chunks_exact(ow)) {
                    if oy < ylo || oy >= yhi {
                        continue;
                    }
                    let iy = ((oy * sh) as isize + g.offset(0, ki)) as usize;
                    let dst = &mut plane[iy * w..][..w];
                    let src = &src[xlo..xhi];
                    if sw == 1 {
                        dst[ix..ix + n]
                            .iter_mut()
                            .zip(src)
                            .for_each(|(d, s)| *d += s);
                    } else {
                        let taps = dst[ix..ix + (n - 1) * sw + 1].iter_mut().step_by(sw);
                        taps.zip(src).for_each(|(d, s)| *d += s);
                    }
                }
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of at least `len` floats (stale contents), grown as
/// needed and kept for the next call, so the hot loops allocate nothing in steady state.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on this thread (a nested rayon task): use a fresh buffer.
        Err(_) => f(&mut vec![0.0; len]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(c: usize, img: [usize; 2], k: usize, s: usize, d: usize, pad: [isize; 2]) -> Geom {
        let out = |i: usize| {
            ((img[i] as isize + 2 * pad[i] - (d * (k - 1)) as isize - 1) / s as isize + 1) as usize
        };
        Geom {
            channels: c,
            img,
            kernel: [k, k],
            stride: [s, s],
            dilation: [d, d],
            pad,
            grid: [out(0), out(1)],
        }
    }

    /// The definition, one element at a time.
    fn naive(img: &[f32], g: &Geom) -> Vec<f32> {
        let n = g.positions();
        let mut cols = vec![0.0; g.rows() * n];
        for (r, row) in cols.chunks_mut(n).enumerate() {
            let (c, ki, kj) = (
                r / (g.kernel[0] * g.kernel[1]),
                (r / g.kernel[1]) % g.kernel[0],
                r % g.kernel[1],
            );
            for (p, v) in row.iter_mut().enumerate() {
                let (oy, ox) = (p / g.grid[1], p % g.grid[1]);
                let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize - g.pad[0];
                let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize - g.pad[1];
                if iy >= 0 && ix >= 0 && (iy as usize) < g.img[0] && (ix as usize) < g.img[1] {
                    *v = img[(c * g.img[0] + iy as usize) * g.img[1] + ix as usize];
                }
            }
        }
        cols
    }

    #[test]
    fn tiled_im2col_matches_the_definition_and_col2im_is_its_adjoint() {
        for g in [
            geom(2, [5, 7], 3, 1, 1, [1, 1]),
            geom(3, [9, 6], 3, 2, 1, [2, 0]),
            geom(1, [6, 6], 7, 1, 1, [6, 6]),
            geom(2, [11, 8], 3, 3, 2, [3, 1]),
            geom(2, [4, 4], 1, 1, 1, [0, 0]),
            geom(2, [9, 7], 2, 1, 1, [-2, -1]),
            // Stride 1, grid as wide as the image: the shifted-copy path.
            geom(2, [6, 5], 3, 1, 2, [2, 2]),
            geom(1, [3, 3], 5, 1, 1, [2, 2]),
            geom(1, [4, 5], 3, 1, 1, [0, 1]),
            geom(3, [1, 1], 3, 1, 1, [1, 1]),
        ] {
            let img: Vec<f32> = (0..g.img_len()).map(|v| v as f32 + 1.0).collect();
            let want = naive(&img, &g);
            let n = g.positions();
            let ow = g.grid[1];
            for tile in [ow, 2 * ow, n] {
                let mut got = vec![0.0; g.rows() * n];
                for p in (0..n).step_by(tile) {
                    let r = p..(p + tile).min(n);
                    let mut cols = vec![f32::NAN; g.rows() * r.len()];
                    im2col(&img, &g, r.clone(), &mut cols);
                    for (row, c) in cols.chunks(r.len()).enumerate() {
                        got[row * n + r.start..row * n + r.end].copy_from_slice(c);
                    }
                }
                assert_eq!(got, want, "{g:?} tile {tile}");
            }
            // col2im is the adjoint: <im2col(x), c> == <x, col2im(c)>.
            let c: Vec<f32> = (0..g.rows() * n)
                .map(|v| ((v * 7) % 5) as f32 - 2.0)
                .collect();
            let mut back = vec![0.0; g.img_len()];
            for r in g.tiles() {
                let part: Vec<f32> = c
                    .chunks(n)
                    .flat_map(|row| row[r.clone()].to_vec())
                    .collect();
                col2im(&part, &g, r, &mut back);
            }
            let lhs: f32 = want.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f32 = img.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() <= 1e-3 * lhs.abs().max(1.0), "{g:?}");
        }
    }
}
