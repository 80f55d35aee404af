//! Pixel primitives every part of the library uses, each in one place: the `reflect` border,
//! the Gaussian blur, the 3×3 median, the box (mean) filter and the median brightness. They work
//! on planar CHW `f32` images and follow scipy.ndimage's defaults (`reflect` border
//! `d c b a | a b c d | d c b a`, Gaussian truncated at 4σ), so figures match the Python tools
//! users compare with.

/// Index into `0..n` with `reflect` borders (edge pixel repeated).
pub fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - 1 - m;
    }
    m as usize
}

/// 3×3 median of every channel (`scipy.ndimage.median_filter(size=3)` per channel).
pub fn median3(image: &[f32], (c, h, w): (usize, usize, usize)) -> Vec<f32> {
    let plane = h * w;
    let mut out = vec![0.0; image.len()];
    if image.len() != c * plane {
        return out;
    }
    let mut window = [0.0f32; 9];
    for ch in 0..c {
        let src = &image[ch * plane..(ch + 1) * plane];
        let dst = &mut out[ch * plane..(ch + 1) * plane];
        for y in 0..h {
            for x in 0..w {
                let mut k = 0;
                for dy in -1..=1 {
                    let sy = reflect(y as isize + dy, h);
                    for dx in -1..=1 {
                        window[k] = src[sy * w + reflect(x as isize + dx, w)];
                        k += 1;
                    }
                }
                window.sort_unstable_by(f32::total_cmp);
                dst[y * w + x] = window[4];
            }
        }
    }
    out
}

/// Normalised 1-D Gaussian of standard deviation `sigma` over `-radius..=radius`: the one
/// kernel behind the blur (truncated at 4σ), the SSIM metric and the SSIM loss (σ 1.5 windows).
pub fn gaussian_window(sigma: f64, radius: usize) -> Vec<f64> {
    let r = radius as isize;
    let raw: Vec<f64> = (-r..=r)
        .map(|i| (-0.5 * (i * i) as f64 / (sigma * sigma)).exp())
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|v| v / sum).collect()
}

/// Normalised Gaussian of standard deviation `sigma`, truncated at 4σ (scipy's default).
fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    gaussian_window(sigma, (4.0 * sigma + 0.5) as usize)
}

/// Gaussian blur of every channel (`scipy.ndimage.gaussian_filter(sigma)` per channel). A
/// `sigma` of 0 (or less) returns the image unchanged.
pub fn gaussian_blur(image: &[f32], (c, h, w): (usize, usize, usize), sigma: f64) -> Vec<f32> {
    let plane = h * w;
    if sigma <= 0.0 || image.len() != c * plane {
        return image.to_vec();
    }
    let kernel = gaussian_kernel(sigma);
    let r = (kernel.len() / 2) as isize;
    let mut out = vec![0.0; image.len()];
    let mut tmp = vec![0.0f64; plane];
    for ch in 0..c {
        let src = &image[ch * plane..(ch + 1) * plane];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = kernel
                    .iter()
                    .enumerate()
                    .map(|(k, kv)| {
                        kv * f64::from(src[y * w + reflect(x as isize + k as isize - r, w)])
                    })
                    .sum();
            }
        }
        let dst = &mut out[ch * plane..(ch + 1) * plane];
        for y in 0..h {
            for x in 0..w {
                let v: f64 = kernel
                    .iter()
                    .enumerate()
                    .map(|(k, kv)| kv * tmp[reflect(y as isize + k as isize - r, h) * w + x])
                    .sum();
                dst[y * w + x] = v as f32;
            }
        }
    }
    out
}

/// Mean over a `size × size` window (odd `size`; even sizes round up) of an `h × w` plane,
/// reflect borders (`scipy.ndimage.uniform_filter`); `size` 1 returns the plane.
pub fn box_filter(plane: &[f32], (h, w): (usize, usize), size: usize) -> Vec<f32> {
    if size <= 1 || plane.len() != h * w || h == 0 || w == 0 {
        return plane.to_vec();
    }
    let r = (size / 2) as isize;
    let n = (2 * r + 1) as f64;
    let mut rows = vec![0.0f64; h * w];
    for y in 0..h {
        let line = &plane[y * w..(y + 1) * w];
        // Running sum along the row.
        let mut acc: f64 = (-r..=r).map(|d| f64::from(line[reflect(d, w)])).sum();
        for x in 0..w {
            rows[y * w + x] = acc / n;
            let (out, inn) = (x as isize - r, x as isize + r + 1);
            acc += f64::from(line[reflect(inn, w)]) - f64::from(line[reflect(out, w)]);
        }
    }
    let mut out = vec![0.0f32; h * w];
    for x in 0..w {
        let mut acc: f64 = (-r..=r).map(|d| rows[reflect(d, h) * w + x]).sum();
        for y in 0..h {
            out[y * w + x] = (acc / n) as f32;
            let (gone, new) = (y as isize - r, y as isize + r + 1);
            acc += rows[reflect(new, h) * w + x] - rows[reflect(gone, h) * w + x];
        }
    }
    out
}

/// The median of `values` (the mean of the two middle values for an even count); 0 when empty.
pub fn median(values: &[f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    let mid = v.len() / 2;
    let (_, &mut upper, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    if v.len() % 2 == 1 {
        return upper;
    }
    let lower = v[..mid].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    0.5 * (lower + upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_removes_isolated_salt() {
        let mut img = vec![0.2f32; 25];
        img[12] = 1.0;
        let out = median3(&img, (1, 5, 5));
        assert!(out.iter().all(|&v| v == 0.2), "{out:?}");
        // reflect border (scipy gives all ones here too)
        let out = median3(&[0.0, 1.0, 1.0, 1.0], (1, 2, 2));
        assert_eq!(out, vec![1.0; 4]);
    }

    #[test]
    fn median_matches_scipy_on_a_ramp() {
        // scipy 1.17: ndimage.median_filter(np.arange(9.).reshape(3,3), size=3)
        let img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let out = median3(&img, (1, 3, 3));
        assert_eq!(out, vec![1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 7.0]);
    }

    /// Issue 16: the blur, the SSIM metric and the SSIM loss each built their own Gaussian;
    /// all three now take `gaussian_window`.
    #[test]
    fn one_gaussian_window_for_the_blur_the_ssim_metric_and_the_ssim_loss() {
        let w = gaussian_window(1.5, 5);
        assert_eq!(w.len(), 11);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((w[5] - 0.26603).abs() < 1e-4, "{}", w[5]);
        assert!((0..11).all(|i| (w[i] - w[10 - i]).abs() < 1e-15));
        // The blur's kernel is the same window truncated at 4σ.
        assert_eq!(gaussian_kernel(1.5), gaussian_window(1.5, 6));
    }

    #[test]
    fn gaussian_matches_scipy() {
        // scipy 1.17 `ndimage.gaussian_filter` of a 5x5 impulse, sigma=1 (truncate 4, reflect):
        // centre 0.15915589, right neighbour 0.09658632, diagonal 0.05861496.
        let mut img = vec![0.0f32; 25];
        img[12] = 1.0;
        let out = gaussian_blur(&img, (1, 5, 5), 1.0);
        assert!((out[12] - 0.159_155_89).abs() < 1e-6, "{}", out[12]);
        assert!((out[13] - 0.096_586_32).abs() < 1e-6, "{}", out[13]);
        assert!((out[18] - 0.058_614_96).abs() < 1e-6, "{}", out[18]);
        // mass is kept by reflect borders
        let sum: f32 = gaussian_blur(&img, (1, 5, 5), 2.0).iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        assert_eq!(gaussian_blur(&img, (1, 5, 5), 0.0), img);
    }

    #[test]
    fn reflect_mirrors_like_scipy() {
        assert_eq!(reflect(-1, 4), 0);
        assert_eq!(reflect(4, 4), 3);
        assert_eq!(reflect(-6, 4), 2);
    }

    #[test]
    fn box_filter_matches_scipy_uniform_filter() {
        // scipy 1.17: ndimage.uniform_filter(np.arange(12.).reshape(3, 4), size=3)[1]
        //   = [4.33333333, 5.0, 6.0, 6.66666667]
        let img: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let out = box_filter(&img, (3, 4), 3);
        let want = [4.333_333_5, 5.0, 6.0, 6.666_666_5];
        for (o, w) in out[4..8].iter().zip(want) {
            assert!((o - w).abs() < 1e-5, "{out:?}");
        }
        let c = box_filter(&[0.25; 30], (5, 6), 5);
        assert!(c.iter().all(|v| (v - 0.25).abs() < 1e-6));
        assert_eq!(box_filter(&img, (3, 4), 1), img);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
