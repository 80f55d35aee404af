//! A safe, bounds-checked front to the `gemm` crate's f32 matrix product, the one place the
//! kernels call into `unsafe` code. Operands are strided views into slices, so transposes and
//! column tiles of a row-major matrix cost nothing.

use gemm::Parallelism;

/// A `rows × cols` matrix inside a slice: element `(i, j)` lives at `i * rs + j * cs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub rows: usize,
    pub cols: usize,
    /// Row stride, in elements.
    pub rs: usize,
    /// Column stride, in elements.
    pub cs: usize,
}

impl View {
    /// A dense row-major matrix.
    pub fn rows(rows: usize, cols: usize) -> View {
        View {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The first `cols` columns of a row-major matrix whose rows are `stride` apart.
    pub fn strided(rows: usize, cols: usize, stride: usize) -> View {
        View {
            rows,
            cols,
            rs: stride,
            cs: 1,
        }
    }

    /// The transpose (same memory).
    pub fn t(self) -> View {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Elements from the first to one past the last addressed.
    fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`. `parallel` lets gemm split the product over
/// the rayon pool (for when the caller has no outer parallelism to offer).
///
/// # Panics
/// On mismatched dimensions, views reaching past their slices, or a destination view whose
/// elements overlap — all internal invariants of the kernels, never user input.
// Three (slice, view) pairs and two flags, as gemm's own call takes them; a struct per call
// site would only rename the arguments.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    dst: &mut [f32],
    d: View,
    a: &[f32],
    av: View,
    b: &[f32],
    bv: View,
    accumulate: bool,
    parallel: bool,
) {
    assert!(
        av.rows == d.rows && bv.cols == d.cols && av.cols == bv.rows,
        "matmul: {av:?} · {bv:?} → {d:?}"
    );
    assert!(d.span() <= dst.len() && av.span() <= a.len() && bv.span() <= b.len());
    // Row-major destination with disjoint rows: no two (i, j) share an element, so gemm's
    // threads never write the same location.
    assert!(d.cs == 1 && (d.rows <= 1 || d.rs >= d.cols));
    if d.rows == 0 || d.cols == 0 {
        return;
    }
    let parallelism = if parallel && rayon::current_num_threads() > 1 {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
    let isz = |v: usize| v as isize;
    // SAFETY: the asserts above check that every element the three views address lies inside
    // its slice, and that the destination's elements are distinct. `dst` is borrowed mutably,
    // so it aliases neither `a` nor `b`. With `read_dst == false` gemm never reads `dst`, so its
    // previous contents (possibly stale scratch) do not matter.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            av.cols,
            dst.as_mut_ptr(),
            isz(d.cs),
            isz(d.rs),
            accumulate,
            a.as_ptr(),
            isz(av.cs),
            isz(av.rs),
            b.as_ptr(),
            isz(bv.cs),
            isz(bv.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], av: View, b: &[f32], bv: View) -> Vec<f32> {
        let mut out = vec![0.0; av.rows * bv.cols];
        for i in 0..av.rows {
            for j in 0..bv.cols {
                out[i * bv.cols + j] = (0..av.cols)
                    .map(|k| a[i * av.rs + k * av.cs] * b[k * bv.rs + j * bv.cs])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn strided_transposed_and_accumulated_products_match_the_naive_ones() {
        let a: Vec<f32> = (0..35).map(|v| (v as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..42).map(|v| (v as f32 * 0.11).cos()).collect();
        // a: 5×7 row-major; b stored as 6×7, used transposed (7×6).
        let (av, bv) = (View::rows(5, 7), View::rows(6, 7).t());
        let want = naive(&a, av, &b, bv);
        let mut got = vec![f32::NAN; 5 * 9];
        matmul(
            &mut got,
            View::strided(5, 6, 9),
            &a,
            av,
            &b,
            bv,
            false,
            false,
        );
        for i in 0..5 {
            for j in 0..6 {
                assert!((got[i * 9 + j] - want[i * 6 + j]).abs() < 1e-5);
            }
        }
        let mut acc = want.clone();
        matmul(&mut acc, View::rows(5, 6), &a, av, &b, bv, true, true);
        for (x, w) in acc.iter().zip(&want) {
            assert!((x - 2.0 * w).abs() < 1e-5);
        }
    }
}
