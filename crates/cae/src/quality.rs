//! Image quality metrics: MSE, MAE, PSNR and SSIM (mean and per-pixel map) on images stored as
//! CHW `f32` slices with values in `[0, 1]`, plus [`QualityAccumulator`] for running means over a
//! data set.
//!
//! Mismatched inputs never panic: every metric takes two slices that must have the same length
//! (and, for SSIM, exactly `channels * height * width` elements). When they do not, or when they
//! are empty, the scalar metrics return `NaN` and [`ssim_map`] returns a map filled with `NaN`.
//! The `NaN` then shows up in any summary built from it instead of silently being a number.

use crate::imageops::reflect;

use serde::Serialize;

/// PSNR reported for identical images (MSE of zero), and the upper bound of every PSNR value.
pub const PSNR_CAP_DB: f64 = 100.0;

/// Gaussian standard deviation of the SSIM window (Wang et al. 2004).
const SSIM_SIGMA: f64 = 1.5;
/// Largest SSIM window radius: `int(3.5 * 1.5 + 0.5) = 5`, an 11×11 window as in scikit-image.
const SSIM_MAX_RADIUS: usize = 5;
const SSIM_K1: f64 = 0.01;
const SSIM_K2: f64 = 0.03;

/// Returns the common length of `a` and `b`, or `None` when they differ or are empty.
fn common_len(a: &[f32], b: &[f32]) -> Option<usize> {
    (a.len() == b.len() && !a.is_empty()).then_some(a.len())
}

/// Mean of squared differences. `NaN` when the slices differ in length or are empty.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    let Some(n) = common_len(a, b) else {
        return f64::NAN;
    };
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    sum / n as f64
}

/// Mean of absolute differences. `NaN` when the slices differ in length or are empty.
pub fn mae(a: &[f32], b: &[f32]) -> f64 {
    let Some(n) = common_len(a, b) else {
        return f64::NAN;
    };
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
        .sum();
    sum / n as f64
}

/// Peak signal-to-noise ratio in dB for a data range of 1: `10 * log10(1 / mse)`.
///
/// Identical images (MSE of zero) give [`PSNR_CAP_DB`] (100 dB) instead of infinity, and no value
/// exceeds that cap, so means over many images stay finite. `NaN` when the slices differ in length
/// or are empty.
pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    psnr_from_mse(mse(a, b))
}

fn psnr_from_mse(mse: f64) -> f64 {
    if mse.is_nan() {
        f64::NAN
    } else if mse <= 0.0 {
        PSNR_CAP_DB
    } else {
        (10.0 * (1.0 / mse).log10()).min(PSNR_CAP_DB)
    }
}

/// Mean structural similarity (SSIM) as in Wang et al. 2004, matching scikit-image's
/// `structural_similarity(data_range=1, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False)` (with `channel_axis=0` for several channels).
///
/// * Local statistics use an 11×11 Gaussian window (σ = 1.5, normalised), K1 = 0.01, K2 = 0.03.
/// * The filter runs over the whole image with reflect padding (`d c b a | a b c d | d c b a`),
///   then — as scikit-image does — a border of `radius` pixels is cropped before averaging, so
///   only pixels whose window lies inside the image count.
/// * Images smaller than the window (side < 11) use the largest odd window that fits, i.e. the
///   Gaussian is truncated at radius `(min(height, width) - 1) / 2` and renormalised; the crop
///   then uses that radius, so at least one pixel always remains. A 1×1 image has a 1×1 window.
/// * The value is computed per channel and the channel values are averaged.
///
/// `shape` is `(channels, height, width)`. Returns `NaN` when either slice does not hold exactly
/// `channels * height * width` values, or when the shape is empty.
pub fn ssim(a: &[f32], b: &[f32], shape: (usize, usize, usize)) -> f64 {
    let (c, h, w) = shape;
    if !shape_fits(a, b, shape) {
        return f64::NAN;
    }
    let radius = window_radius(h, w);
    let kernel = gaussian_kernel(radius);
    let plane = h * w;
    let mut total = 0.0;
    for ch in 0..c {
        let range = ch * plane..(ch + 1) * plane;
        let s = ssim_plane(&a[range.clone()], &b[range], h, w, &kernel);
        let mut sum = 0.0;
        for y in radius..h - radius {
            sum += s[y * w + radius..y * w + w - radius].iter().sum::<f64>();
        }
        let count = (h - 2 * radius) * (w - 2 * radius);
        total += sum / count as f64;
    }
    total / c as f64
}

/// Per-pixel SSIM map, `height * width` values in row-major order, averaged over channels.
///
/// Same window and constants as [`ssim`], but nothing is cropped: border pixels use windows
/// filled by reflect padding, so the map covers the full image (this is scikit-image's
/// `full=True` map). Values are 1 where the images agree locally and lower (possibly negative)
/// where they differ — `1 - map` makes an anomaly heatmap. A shape that does not match the
/// slices gives a map of `height * width` `NaN`s.
pub fn ssim_map(a: &[f32], b: &[f32], shape: (usize, usize, usize)) -> Vec<f32> {
    let (c, h, w) = shape;
    let plane = h.saturating_mul(w);
    if !shape_fits(a, b, shape) {
        return vec![f32::NAN; plane];
    }
    let kernel = gaussian_kernel(window_radius(h, w));
    let mut acc = vec![0.0f64; plane];
    for ch in 0..c {
        let range = ch * plane..(ch + 1) * plane;
        let s = ssim_plane(&a[range.clone()], &b[range], h, w, &kernel);
        for (t, v) in acc.iter_mut().zip(s) {
            *t += v;
        }
    }
    acc.into_iter().map(|v| (v / c as f64) as f32).collect()
}

/// True when the shape is non-empty and both slices hold exactly `c * h * w` values.
fn shape_fits(a: &[f32], b: &[f32], (c, h, w): (usize, usize, usize)) -> bool {
    let n = c.checked_mul(h).and_then(|v| v.checked_mul(w));
    matches!(n, Some(n) if n > 0 && a.len() == n && b.len() == n)
}

/// Window radius: 5 (11×11), shrunk so that the window `2r + 1` fits in the image.
fn window_radius(h: usize, w: usize) -> usize {
    SSIM_MAX_RADIUS.min((h.min(w).saturating_sub(1)) / 2)
}

/// Normalised 1-D Gaussian of σ = 1.5 over `-radius..=radius` (as `scipy.ndimage`).
fn gaussian_kernel(radius: usize) -> Vec<f64> {
    crate::imageops::gaussian_window(SSIM_SIGMA, radius)
}

/// Separable Gaussian filter of an `h × w` plane with reflect padding.
fn filter_plane(src: &[f64], h: usize, w: usize, kernel: &[f64]) -> Vec<f64> {
    let r = (kernel.len() / 2) as isize;
    let mut tmp = vec![0.0; h * w];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &kv) in kernel.iter().enumerate() {
                acc += kv * row[reflect(x as isize + k as isize - r, w)];
            }
            tmp[y * w + x] = acc;
        }
    }
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for (k, &kv) in kernel.iter().enumerate() {
            let sy = reflect(y as isize + k as isize - r, h);
            let src_row = &tmp[sy * w..(sy + 1) * w];
            let dst_row = &mut out[y * w..(y + 1) * w];
            for (d, &s) in dst_row.iter_mut().zip(src_row) {
                *d += kv * s;
            }
        }
    }
    out
}

/// Full (uncropped) SSIM map of one channel, computed in `f64`.
fn ssim_plane(a: &[f32], b: &[f32], h: usize, w: usize, kernel: &[f64]) -> Vec<f64> {
    let x: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
    let y: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
    let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
    let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
    let xy: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p * q).collect();
    let ux = filter_plane(&x, h, w, kernel);
    let uy = filter_plane(&y, h, w, kernel);
    let uxx = filter_plane(&xx, h, w, kernel);
    let uyy = filter_plane(&yy, h, w, kernel);
    let uxy = filter_plane(&xy, h, w, kernel);
    let c1 = SSIM_K1 * SSIM_K1;
    let c2 = SSIM_K2 * SSIM_K2;
    (0..h * w)
        .map(|i| {
            let (mx, my) = (ux[i], uy[i]);
            let vx = uxx[i] - mx * mx;
            let vy = uyy[i] - my * my;
            let vxy = uxy[i] - mx * my;
            let num = (2.0 * mx * my + c1) * (2.0 * vxy + c2);
            let den = (mx * mx + my * my + c1) * (vx + vy + c2);
            num / den
        })
        .collect()
}

/// Running totals of per-image quality over many images of one shape.
///
/// Each [`add`](Self::add) computes the image's MSE, PSNR and SSIM; [`summary`](Self::summary)
/// reports their means (the PSNR is the mean of per-image PSNRs, each capped at
/// [`PSNR_CAP_DB`]). A pair that does not match the shape contributes `NaN`, which makes the
/// affected means `NaN`.
#[derive(Debug, Clone)]
pub struct QualityAccumulator {
    shape: (usize, usize, usize),
    images: usize,
    mse_sum: f64,
    psnr_sum: f64,
    ssim_sum: f64,
}

impl QualityAccumulator {
    /// An empty accumulator for images of `shape = (channels, height, width)`.
    pub fn new(shape: (usize, usize, usize)) -> Self {
        Self {
            shape,
            images: 0,
            mse_sum: 0.0,
            psnr_sum: 0.0,
            ssim_sum: 0.0,
        }
    }

    /// Adds one original/reconstruction pair (CHW slices in `[0, 1]`).
    pub fn add(&mut self, original: &[f32], reconstruction: &[f32]) {
        let (c, h, w) = self.shape;
        let expected = c.saturating_mul(h).saturating_mul(w);
        let m = if original.len() == expected {
            mse(original, reconstruction)
        } else {
            f64::NAN
        };
        self.images += 1;
        self.mse_sum += m;
        self.psnr_sum += psnr_from_mse(m);
        self.ssim_sum += ssim(original, reconstruction, self.shape);
    }

    /// Means so far. With no images added, `images` is 0 and the means are `NaN`.
    pub fn summary(&self) -> QualitySummary {
        let n = self.images as f64;
        let mean = |s: f64| if self.images == 0 { f64::NAN } else { s / n };
        QualitySummary {
            images: self.images,
            mse: mean(self.mse_sum),
            psnr: mean(self.psnr_sum),
            ssim: mean(self.ssim_sum),
        }
    }
}

/// Mean quality over a set of images (see [`QualityAccumulator`]).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QualitySummary {
    /// Number of image pairs added.
    pub images: usize,
    /// Mean per-image MSE.
    pub mse: f64,
    /// Mean per-image PSNR in dB (each capped at [`PSNR_CAP_DB`]).
    pub psnr: f64,
    /// Mean per-image SSIM.
    pub ssim: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deterministic pseudo-random pair used for the scikit-image reference values.
    ///
    /// Values are `k / 2^20` from a 64-bit LCG, and `b = (a + r) / 2` with an independent stream
    /// `r`, so every value is exact in `f32`. Reference numbers came from this script
    /// (scikit-image 0.26, numpy 2.4, scipy), printing `structural_similarity(a, b,
    /// data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    /// full=True)` (with `channel_axis=0` for 3 channels; the full map averaged over channels):
    ///
    /// ```python
    /// M = (1 << 64) - 1
    /// def lcg(seed, n):
    ///     s, out = seed, []
    ///     for _ in range(n):
    ///         s = (s * 6364136223846793005 + 1442695040888963407) & M
    ///         out.append((s >> 44) / float(1 << 20))
    ///     return np.array(out, dtype=np.float64)
    /// def pair(c, h, w, seed):
    ///     a = lcg(seed, c*h*w); r = lcg(seed ^ 0x9E3779B97F4A7C15, c*h*w)
    ///     return a.reshape(c, h, w), ((a + r) / 2.0).reshape(c, h, w)
    /// ```
    ///
    /// For the 7×7 case (smaller than skimage's 11×11 window, which it rejects) the same
    /// formula as skimage's source was evaluated with `ndimage.gaussian_filter(sigma=1.5,
    /// truncate=2.0, mode='reflect')` (radius 3) and a crop of 3; this reimplementation gives
    /// skimage's numbers exactly for the larger shapes.
    fn pair(shape: (usize, usize, usize), seed: u64) -> (Vec<f32>, Vec<f32>) {
        fn lcg(seed: u64, n: usize) -> Vec<f32> {
            let mut s = seed;
            (0..n)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (s >> 44) as f32 / (1u32 << 20) as f32
                })
                .collect()
        }
        let n = shape.0 * shape.1 * shape.2;
        let a = lcg(seed, n);
        let r = lcg(seed ^ 0x9E37_79B9_7F4A_7C15, n);
        let b = a.iter().zip(&r).map(|(x, y)| (x + y) / 2.0).collect();
        (a, b)
    }

    fn close(got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol,
            "got {got}, want {want} (tol {tol})"
        );
    }

    #[test]
    fn simple_known_values() {
        let a = [0.0f32, 0.0, 1.0, 1.0];
        let b = [0.0f32, 0.5, 1.0, 0.0];
        close(mse(&a, &b), (0.25 + 1.0) / 4.0, 1e-12);
        close(mae(&a, &b), 1.5 / 4.0, 1e-12);
        // mse = 0.01 -> 20 dB
        let c = [0.5f32; 10];
        let d = [0.6f32; 10];
        close(mse(&c, &d), 0.01, 1e-8);
        close(psnr(&c, &d), 20.0, 1e-5);
        // mse = 1 -> 0 dB
        close(psnr(&[0.0], &[1.0]), 0.0, 1e-12);
    }

    #[test]
    fn identical_images() {
        let (a, _) = pair((3, 25, 25), 7);
        assert_eq!(mse(&a, &a), 0.0);
        assert_eq!(mae(&a, &a), 0.0);
        assert_eq!(psnr(&a, &a), PSNR_CAP_DB);
        close(ssim(&a, &a, (3, 25, 25)), 1.0, 1e-12);
        assert!(
            ssim_map(&a, &a, (3, 25, 25))
                .iter()
                .all(|&v| (v - 1.0).abs() < 1e-6)
        );
        // Tiny but non-zero error still respects the cap.
        let mut b = a.clone();
        b[0] += 1e-7;
        assert!(psnr(&a, &b) <= PSNR_CAP_DB);
    }

    #[test]
    fn constant_offset_images() {
        // Flat images: variances are 0, so SSIM reduces to the luminance term.
        let shape = (1, 9, 13);
        let a = vec![0.5f32; 9 * 13];
        let b = vec![0.6f32; 9 * 13];
        let (x, y) = (0.5f32 as f64, 0.6f32 as f64);
        let c1 = 1e-4;
        let want = (2.0 * x * y + c1) / (x * x + y * y + c1);
        close(ssim(&a, &b, shape), want, 1e-9);
        for v in ssim_map(&a, &b, shape) {
            close(f64::from(v), want, 1e-6);
        }
        close(mae(&a, &b), 0.1, 1e-6);
    }

    #[test]
    fn matches_scikit_image_reference() {
        // (shape, seed, mse, psnr, mssim, map[0,0], map[h/2,w/2], map[h-1,w-1])
        let cases = [
            (
                (1, 28, 28),
                1,
                0.04340496530233781,
                13.624605866151178,
                0.6549124354666674,
                0.5884638733913169,
                0.7261443307746265,
                0.20236285312774957,
            ),
            (
                (3, 25, 25),
                2,
                0.04031813820671814,
                13.944995307593883,
                0.6760388392064192,
                0.6826478546196824,
                0.6367736487065315,
                0.5032934142013891,
            ),
            (
                (1, 7, 7),
                3,
                0.03366354810258117,
                14.7284011176591,
                0.5670735244029759,
                0.7937231722554514,
                0.5670735244029759,
                0.6627151427265123,
            ),
            (
                (3, 12, 16),
                4,
                0.041275018911732846,
                13.843127190764509,
                0.604146270102701,
                0.4388204255832206,
                0.5825313225651659,
                0.6717054314918638,
            ),
        ];
        for (shape, seed, want_mse, want_psnr, want_ssim, m00, mmid, mlast) in cases {
            let (a, b) = pair(shape, seed);
            close(mse(&a, &b), want_mse, 1e-9);
            close(psnr(&a, &b), want_psnr, 1e-6);
            close(ssim(&a, &b, shape), want_ssim, 1e-3);
            // Computed in f64 throughout, so far tighter than the 1e-3 contract.
            close(ssim(&a, &b, shape), want_ssim, 1e-9);
            let (_, h, w) = shape;
            let map = ssim_map(&a, &b, shape);
            assert_eq!(map.len(), h * w);
            close(f64::from(map[0]), m00, 1e-5);
            close(f64::from(map[(h / 2) * w + w / 2]), mmid, 1e-5);
            close(f64::from(map[h * w - 1]), mlast, 1e-5);
        }
    }

    #[test]
    fn tiny_images_do_not_panic() {
        for shape in [(1, 1, 1), (1, 2, 2), (3, 3, 5), (1, 1, 40), (2, 6, 6)] {
            let (a, b) = pair(shape, 11);
            let s = ssim(&a, &b, shape);
            assert!(s.is_finite() && s <= 1.0, "{shape:?}: {s}");
            close(ssim(&a, &a, shape), 1.0, 1e-12);
            let map = ssim_map(&a, &b, shape);
            assert_eq!(map.len(), shape.1 * shape.2);
            assert!(map.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn mismatched_inputs_give_nan() {
        let a = [0.1f32; 12];
        let b = [0.1f32; 11];
        assert!(mse(&a, &b).is_nan());
        assert!(mae(&a, &b).is_nan());
        assert!(psnr(&a, &b).is_nan());
        assert!(mse(&[], &[]).is_nan());
        assert!(ssim(&a, &b, (1, 3, 4)).is_nan());
        assert!(ssim(&a, &a, (1, 3, 5)).is_nan());
        assert!(ssim(&[], &[], (0, 0, 0)).is_nan());
        let map = ssim_map(&a, &a, (1, 2, 5));
        assert_eq!(map.len(), 10);
        assert!(map.iter().all(|v| v.is_nan()));
        assert!(ssim_map(&a, &a, (0, 4, 4)).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn accumulator_means() {
        let shape = (1, 28, 28);
        let mut acc = QualityAccumulator::new(shape);
        let s0 = acc.summary();
        assert_eq!(s0.images, 0);
        assert!(s0.mse.is_nan() && s0.psnr.is_nan() && s0.ssim.is_nan());

        let (a, b) = pair(shape, 1);
        acc.add(&a, &b);
        acc.add(&a, &a);
        let s = acc.summary();
        assert_eq!(s.images, 2);
        close(s.mse, mse(&a, &b) / 2.0, 1e-12);
        close(s.psnr, (psnr(&a, &b) + PSNR_CAP_DB) / 2.0, 1e-9);
        close(s.ssim, (ssim(&a, &b, shape) + 1.0) / 2.0, 1e-12);

        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"images\":2"), "{json}");

        acc.add(&a[..10], &b[..10]);
        let s = acc.summary();
        assert_eq!(s.images, 3);
        assert!(s.mse.is_nan() && s.psnr.is_nan() && s.ssim.is_nan());
    }
}
