//! The column matrices every convolution kernel here is built on, and the per-thread scratch that
//! holds them.
//!
//! A [`Geom`] ties an image `[channels, h, w]` to a grid of positions `[oh, ow]`: position
//! `(oy, ox)` with kernel offset `(ki, kj)` reads image pixel
//! `(oy·sh + ki·dh − top, ox·sw + kj·dw − left)`, zero outside. For a convolution the image is its
//! input and the grid its output; for a transposed convolution ([`super::transposed`]) the image
//! is its output and the grid its input, and [`col2im`] scatters into it. [`im2col`] gathers a
//! range of grid positions into rows `(c, ki, kj)`. Position ranges keep the column tile small
//! enough to stay in cache while gemm consumes it.

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

    /// Image coordinate of grid coordinate 0 for kernel offset `k` along `axis`.
    fn offset(&self, axis: usize, k: usize) -> isize {
        (k * self.dilation[axis]) as isize - self.pad[axis]
    }
}

/// Gathers grid positions `range` (whole grid rows) of `img` (`[channels, h, w]`) into `cols`,
/// a row-major `[rows, range.len()]` matrix.
///
/// Every column row is one kernel tap's view of one plane, and with stride 1 that view is the
/// plane shifted by the tap's offset: [`copy_shifted`]. With larger strides each plane is first
/// split into its stride phases ([`Split`]), and a tap reads one phase at stride 1, so the same
/// shifted copy applies (per-element strided gathers cost most of the time of the stride-2
/// layers of `pytorch-small` before).
pub(crate) fn im2col(img: &[f32], g: &Geom, range: Range<usize>, cols: &mut [f32]) {
    let len = range.len();
    let ow = g.grid[1];
    if ow == 0 || len == 0 || g.img_len() == 0 {
        cols[..g.rows() * len].fill(0.0);
        return;
    }
    debug_assert!(
        range.start.is_multiple_of(ow) && len.is_multiple_of(ow),
        "tiles are whole grid rows"
    );
    let grid_rows = range.start / ow..range.end / ow;
    let mut rows = cols[..g.rows() * len].chunks_exact_mut(len);
    let planes = img[..g.img_len()].chunks_exact(g.img[0] * g.img[1]);
    let taps: Vec<Tap> = g.taps().collect();
    if g.stride == [1, 1] {
        for plane in planes {
            let src = Source::whole(plane, g.img);
            for (tap, row) in taps.iter().copied().zip(rows.by_ref()) {
                copy_shifted(&src.at(tap), grid_rows.clone(), ow, row);
            }
        }
        return;
    }
    let split = Split::new(g);
    with_buffer(&SPLIT, split.len(), |buf| {
        for plane in planes {
            split.split(plane, buf);
            for (tap, row) in taps.iter().zip(rows.by_ref()) {
                copy_shifted(&split.source(buf, *tap), grid_rows.clone(), ow, row);
            }
        }
    });
}

/// Adds `cols` (row-major `[rows, range.len()]`, as [`im2col`] lays it out; whole grid rows)
/// back into `img`: the adjoint of [`im2col`], built the same way (per stride phase, then the
/// phases added back into the plane). Positions of `cols` that read no pixel are set to zero on
/// the way (they are the caller's scratch).
pub(crate) fn col2im(cols: &mut [f32], g: &Geom, range: Range<usize>, img: &mut [f32]) {
    let len = range.len();
    let ow = g.grid[1];
    if ow == 0 || len == 0 || g.img_len() == 0 {
        return;
    }
    debug_assert!(
        range.start.is_multiple_of(ow) && len.is_multiple_of(ow),
        "tiles are whole grid rows"
    );
    let grid_rows = range.start / ow..range.end / ow;
    let mut rows = cols[..g.rows() * len].chunks_exact_mut(len);
    let plane_len = g.img[0] * g.img[1];
    let planes = img[..g.img_len()].chunks_exact_mut(plane_len);
    let taps: Vec<Tap> = g.taps().collect();
    if g.stride == [1, 1] {
        for plane in planes {
            for (tap, row) in taps.iter().zip(rows.by_ref()) {
                let at = Source::whole(&[], g.img).at(*tap);
                add_shifted(row, grid_rows.clone(), ow, plane, &at);
            }
        }
        return;
    }
    let split = Split::new(g);
    with_buffer(&SPLIT, split.len(), |buf| {
        for plane in planes {
            buf.fill(0.0);
            for (tap, row) in taps.iter().zip(rows.by_ref()) {
                let at = split.source(&[], *tap);
                add_shifted(row, grid_rows.clone(), ow, buf, &at);
            }
            split.merge_add(buf, plane);
        }
    });
}

/// One kernel tap: its phase per axis (the tap's image offset modulo the stride) and its shift
/// within that phase (the offset divided by the stride, rounded down).
#[derive(Debug, Clone, Copy)]
struct Tap {
    phase: [usize; 2],
    shift: [isize; 2],
}

impl Geom {
    /// The kernel taps in column-row order (`ki`, then `kj`).
    fn taps(&self) -> impl Iterator<Item = Tap> + use<> {
        let g = *self;
        let tap = move |axis: usize, k: usize| {
            let (off, s) = (g.offset(axis, k), g.stride[axis] as isize);
            (off.rem_euclid(s) as usize, off.div_euclid(s))
        };
        (0..g.kernel[0]).flat_map(move |ki| {
            (0..g.kernel[1]).map(move |kj| {
                let ((py, dy), (px, dx)) = (tap(0, ki), tap(1, kj));
                Tap {
                    phase: [py, px],
                    shift: [dy, dx],
                }
            })
        })
    }
}

/// Where a tap reads: a plane (or one stride phase of it) whose rows are `row_stride` apart
/// starting at `start`, of which `extent` rows × columns are image pixels, read shifted by
/// `shift`.
#[derive(Debug, Clone, Copy)]
struct Source<'a> {
    data: &'a [f32],
    start: usize,
    row_stride: usize,
    extent: [usize; 2],
    shift: [isize; 2],
}

impl<'a> Source<'a> {
    /// A whole plane of side `img`, read at stride 1.
    fn whole(plane: &'a [f32], img: [usize; 2]) -> Source<'a> {
        Source {
            data: plane,
            start: 0,
            row_stride: img[1],
            extent: img,
            shift: [0, 0],
        }
    }

    /// The same plane as `tap` reads it (stride 1: the tap's phase is always 0).
    fn at(self, tap: Tap) -> Source<'a> {
        Source {
            shift: tap.shift,
            ..self
        }
    }

    /// Grid rows `ya..yb` and columns `xa..xb` of a `grid_rows × ow` window that read pixels.
    fn valid(&self, grid_rows: &Range<usize>, ow: usize) -> (Range<usize>, Range<usize>) {
        let clamp = |v: isize, lo: usize, hi: usize| (v.max(lo as isize) as usize).min(hi);
        let [dy, dx] = self.shift;
        let ya = clamp(-dy, grid_rows.start, grid_rows.end);
        let yb = clamp(self.extent[0] as isize - dy, ya, grid_rows.end);
        let xa = clamp(-dx, 0, ow);
        let xb = clamp(self.extent[1] as isize - dx, xa, ow);
        (ya..yb, xa..xb)
    }

    /// With rows as wide as the grid's (`row_stride == ow`): the `len` positions from grid row
    /// `oy`, column 0, read one contiguous run of the `data_len` floats. Returns which of those
    /// positions land inside the data and where the first of them reads; the others fall before
    /// or past it (they wrapped around a row edge, as do those outside the valid columns).
    fn run(&self, oy: usize, len: usize, data_len: usize) -> (Range<usize>, usize) {
        let [dy, dx] = self.shift;
        let first = self.start as isize + (oy as isize + dy) * self.row_stride as isize + dx;
        let skip = ((-first).max(0) as usize).min(len);
        let from = ((first + skip as isize) as usize).min(data_len);
        let take = (len - skip).min(data_len - from);
        (skip..skip + take, from)
    }

    /// Index in `data` of what grid position `(oy, ox)` reads (both valid).
    fn index(&self, oy: usize, ox: usize) -> usize {
        let y = (oy as isize + self.shift[0]) as usize;
        let x = (ox as isize + self.shift[1]) as usize;
        self.start + y * self.row_stride + x
    }
}

/// Fills `row` (grid rows `grid_rows`, `ow` wide) with what each position reads from `src`, zero
/// outside it. When the source rows are as wide as the grid's, grid rows follow each other in the
/// source as they do in `row`: one contiguous copy for them all, after which the positions that
/// wrapped around a row edge are zeroed (small images otherwise spend the gather in per-row copies
/// of a few dozen floats).
fn copy_shifted(src: &Source, grid_rows: Range<usize>, ow: usize, row: &mut [f32]) {
    let (ys, xs) = src.valid(&grid_rows, ow);
    if ys.is_empty() || xs.is_empty() {
        row.fill(0.0);
        return;
    }
    let span = block_span(&ys, &grid_rows, ow);
    row[..span.start].fill(0.0);
    row[span.end..].fill(0.0);
    let block = &mut row[span];
    if src.row_stride == ow {
        let (inside, from) = src.run(ys.start, block.len(), src.data.len());
        block[inside.clone()].copy_from_slice(&src.data[from..][..inside.len()]);
        block[..inside.start].fill(0.0);
        block[inside.end..].fill(0.0);
        for grid_row in block.chunks_exact_mut(ow) {
            grid_row[..xs.start].fill(0.0);
            grid_row[xs.end..].fill(0.0);
        }
    } else {
        for (oy, grid_row) in ys.zip(block.chunks_exact_mut(ow)) {
            let from = src.index(oy, xs.start);
            grid_row[..xs.start].fill(0.0);
            grid_row[xs.clone()].copy_from_slice(&src.data[from..from + xs.len()]);
            grid_row[xs.end..].fill(0.0);
        }
    }
}

/// The positions of a column row (grid rows `grid_rows`, `ow` wide) on the grid rows `ys`.
fn block_span(ys: &Range<usize>, grid_rows: &Range<usize>, ow: usize) -> Range<usize> {
    (ys.start - grid_rows.start) * ow..(ys.end - grid_rows.start) * ow
}

/// The adjoint of [`copy_shifted`]: adds each valid position of `row` into what it read in
/// `dst` (indexed like `at`, whose `data` is unused). With source rows as wide as the grid's,
/// the positions that read nothing are zeroed in `row` and the rows added as one block (per grid
/// row, a 3×3 stride-2 layer adds runs of 7 or 14 values, too short to vectorise).
fn add_shifted(row: &mut [f32], grid_rows: Range<usize>, ow: usize, dst: &mut [f32], at: &Source) {
    let (ys, xs) = at.valid(&grid_rows, ow);
    if ys.is_empty() || xs.is_empty() {
        return;
    }
    let block = &mut row[block_span(&ys, &grid_rows, ow)];
    if at.row_stride == ow {
        for grid_row in block.chunks_exact_mut(ow) {
            grid_row[..xs.start].fill(0.0);
            grid_row[xs.end..].fill(0.0);
        }
        // As in `copy_shifted`: the ends that fall outside `dst` are zeroed positions.
        let (inside, to) = at.run(ys.start, block.len(), dst.len());
        dst[to..][..inside.len()]
            .iter_mut()
            .zip(&block[inside])
            .for_each(|(d, s)| *d += s);
        return;
    }
    for (oy, grid_row) in ys.zip(block.chunks_exact(ow)) {
        let to = at.index(oy, xs.start);
        dst[to..to + xs.len()]
            .iter_mut()
            .zip(&grid_row[xs.clone()])
            .for_each(|(d, s)| *d += s);
    }
}

/// A plane split by stride phase: pixel `(iy, ix)` goes to phase `(iy mod sh, ix mod sw)` at
/// `(iy div sh, ix div sw)`. Every phase is stored as `dims` (the largest phase), its own
/// `extent` of it holding pixels and the rest zero.
#[derive(Debug, Clone, Copy)]
struct Split {
    stride: [usize; 2],
    img: [usize; 2],
    dims: [usize; 2],
}

impl Split {
    fn new(g: &Geom) -> Split {
        Split {
            stride: g.stride,
            img: g.img,
            dims: [0, 1].map(|a| g.img[a].div_ceil(g.stride[a])),
        }
    }

    fn phase_len(&self) -> usize {
        self.dims[0] * self.dims[1]
    }

    /// Floats for all phases of one plane.
    fn len(&self) -> usize {
        self.stride[0] * self.stride[1] * self.phase_len()
    }

    /// Pixels of phase `p` along `axis`.
    fn extent(&self, axis: usize, p: usize) -> usize {
        self.img[axis].saturating_sub(p).div_ceil(self.stride[axis])
    }

    fn phase_start(&self, [py, px]: [usize; 2]) -> usize {
        (py * self.stride[1] + px) * self.phase_len()
    }

    /// Where `tap` reads in a split plane `buf`.
    fn source<'a>(&self, buf: &'a [f32], tap: Tap) -> Source<'a> {
        Source {
            data: buf,
            start: self.phase_start(tap.phase),
            row_stride: self.dims[1],
            extent: [0, 1].map(|a| self.extent(a, tap.phase[a])),
            shift: tap.shift,
        }
    }

    /// Writes the phases of `plane` into `buf`.
    fn split(&self, plane: &[f32], buf: &mut [f32]) {
        let [sh, sw] = self.stride;
        let w = self.img[1];
        for (iy, src) in plane.chunks_exact(w).enumerate() {
            let (py, r) = (iy % sh, iy / sh);
            let row = |px: usize| self.phase_start([py, px]) + r * self.dims[1];
            if sw == 2 {
                // Both column phases in one pass over the image row (vectorised).
                let (a, b) = buf.split_at_mut(row(1));
                let (even, odd) = (&mut a[row(0)..][..self.dims[1]], &mut b[..self.dims[1]]);
                let pairs = src.chunks_exact(2);
                let (n, last) = (pairs.len(), pairs.remainder().first().copied());
                for ((e, o), p) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                    *e = p[0];
                    *o = p[1];
                }
                even[n..].fill(0.0);
                odd[n..].fill(0.0);
                if let Some(v) = last {
                    even[n] = v;
                }
            } else {
                for px in 0..sw {
                    let dst = &mut buf[row(px)..][..self.dims[1]];
                    let taken = src.iter().skip(px).step_by(sw);
                    let ew = self.extent(1, px);
                    dst.iter_mut().zip(taken).for_each(|(d, v)| *d = *v);
                    dst[ew..].fill(0.0);
                }
            }
        }
        // Phases with fewer rows than the largest: zero below their pixels.
        for py in 0..sh {
            for px in 0..sw {
                let start = self.phase_start([py, px]) + self.extent(0, py) * self.dims[1];
                buf[start..self.phase_start([py, px]) + self.phase_len()].fill(0.0);
            }
        }
    }

    /// Adds the phases in `buf` back into `plane`: the adjoint of [`Split::split`].
    fn merge_add(&self, buf: &[f32], plane: &mut [f32]) {
        let [sh, sw] = self.stride;
        let w = self.img[1];
        for (iy, dst) in plane.chunks_exact_mut(w).enumerate() {
            let (py, r) = (iy % sh, iy / sh);
            let row = |px: usize| &buf[self.phase_start([py, px]) + r * self.dims[1]..];
            if sw == 2 {
                let (even, odd) = (row(0), row(1));
                let mut pairs = dst.chunks_exact_mut(2);
                for ((p, e), o) in pairs.by_ref().zip(even).zip(odd) {
                    p[0] += e;
                    p[1] += o;
                }
                let n = w / 2;
                if let [v] = pairs.into_remainder() {
                    *v += even[n];
                }
            } else {
                for px in 0..sw {
                    let taps = dst.iter_mut().skip(px).step_by(sw);
                    taps.zip(row(px)).for_each(|(d, v)| *d += v);
                }
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The stride phases of one plane, for [`im2col`] and [`col2im`] (which run inside a
    /// [`with_scratch`] of their caller's).
    static SPLIT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of at least `len` floats (stale contents), grown as
/// needed and kept for the next call, so the hot loops allocate nothing in steady state.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_buffer(&SCRATCH, len, f)
}

/// [`with_scratch`] on the buffer `key`.
fn with_buffer<R>(
    key: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
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
            // Strided: phase rows as wide as the grid (one block copy per tap), odd sides
            // (phases of unequal size), grids wider than the phases, stride 3, asymmetric.
            geom(2, [8, 8], 3, 2, 1, [1, 1]),
            geom(2, [7, 5], 3, 2, 1, [1, 1]),
            geom(1, [5, 5], 3, 2, 1, [3, 3]),
            geom(1, [8, 9], 2, 2, 1, [0, 0]),
            geom(2, [10, 7], 4, 3, 1, [2, 1]),
            geom(1, [6, 7], 3, 2, 2, [-1, 2]),
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
                let mut part: Vec<f32> = c
                    .chunks(n)
                    .flat_map(|row| row[r.clone()].to_vec())
                    .collect();
                col2im(&mut part, &g, r, &mut back);
            }
            let lhs: f32 = want.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f32 = img.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() <= 1e-3 * lhs.abs().max(1.0), "{g:?}");
        }
    }
}
