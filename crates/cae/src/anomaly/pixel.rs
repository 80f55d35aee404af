//! Pixel-level localisation metrics against ground-truth masks: pixel AUROC and PRO, the area
//! under the per-region-overlap curve up to a false positive rate of 0.3, normalised by 0.3 —
//! the MVTec AD evaluation (Bergmann et al. 2021), as anomalib computes it.
//!
//! PRO weighs every connected defect region (8-connectivity) equally, however small, so one
//! large stain cannot hide a missed scratch. The curve is exact: pixels are swept from the
//! highest anomaly-map value down, one curve corner per distinct value.

use super::metrics;

/// Upper FPR limit of the PRO integral (MVTec AD, anomalib).
pub const PRO_FPR_LIMIT: f64 = 0.3;

/// Per-pixel anomaly maps and ground-truth masks of one evaluation set.
#[derive(Debug, Clone, Copy)]
pub struct PixelSet<'a> {
    /// One anomaly map per image, `height * width` values.
    pub maps: &'a [Vec<f32>],
    /// One mask per image, `height * width` values, non-zero = defect.
    pub masks: &'a [Vec<u8>],
    /// Height and width of every map and mask.
    pub size: (usize, usize),
}

/// Pixel AUROC over every pixel of every image. `None` when no pixel (or every pixel) is a
/// defect pixel.
pub fn pixel_auroc(set: PixelSet<'_>) -> Option<f64> {
    let scores: Vec<f64> = set.maps.iter().flatten().map(|&v| f64::from(v)).collect();
    let labels: Vec<bool> = set.masks.iter().flatten().map(|&m| m != 0).collect();
    metrics::auroc(&scores, &labels)
}

/// Connected regions (8-connectivity) of a mask: one id per pixel, `u32::MAX` outside any
/// region, and the pixel count of each region.
pub fn label_regions(mask: &[u8], (h, w): (usize, usize)) -> (Vec<u32>, Vec<usize>) {
    let mut ids = vec![u32::MAX; mask.len()];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len().min(h * w) {
        if mask[start] == 0 || ids[start] != u32::MAX {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0;
        ids[start] = id;
        stack.push(start);
        while let Some(p) = stack.pop() {
            size += 1;
            let (y, x) = (p / w, p % w);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (ny, nx) = (y as i64 + dy, x as i64 + dx);
                    if ny < 0 || nx < 0 || ny >= h as i64 || nx >= w as i64 {
                        continue;
                    }
                    let q = ny as usize * w + nx as usize;
                    if mask[q] != 0 && ids[q] == u32::MAX {
                        ids[q] = id;
                        stack.push(q);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (ids, sizes)
}

/// The PRO curve: `(fpr, pro)` corners from (0, 0), one per distinct map value, highest first.
/// `fpr` is the share of defect-free pixels flagged; `pro` the mean over all regions of the
/// share of the region's pixels flagged. Empty when there is no region or no defect-free pixel.
pub fn pro_curve(set: PixelSet<'_>) -> Vec<(f64, f64)> {
    let (h, w) = set.size;
    let plane = h * w;
    // Per pixel: its score and its weight on the FPR axis (normal) or the PRO axis (region).
    let mut pixels: Vec<(f32, Option<usize>)> = Vec::new();
    let mut region_sizes: Vec<usize> = Vec::new();
    for (map, mask) in set.maps.iter().zip(set.masks) {
        if map.len() != plane || mask.len() != plane {
            return Vec::new();
        }
        let (ids, sizes) = label_regions(mask, set.size);
        let offset = region_sizes.len() as u32;
        region_sizes.extend(sizes);
        for (p, &id) in ids.iter().enumerate() {
            let region = (id != u32::MAX).then(|| (offset + id) as usize);
            pixels.push((map[p], region));
        }
    }
    let normal = pixels.iter().filter(|p| p.1.is_none()).count();
    let regions = region_sizes.len();
    if normal == 0 || regions == 0 {
        return Vec::new();
    }
    let key = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
    pixels.sort_by(|a, b| key(b.0).total_cmp(&key(a.0)));
    let mut curve = vec![(0.0, 0.0)];
    let (mut fp, mut overlap) = (0usize, 0.0f64);
    for k in 0..pixels.len() {
        match pixels[k].1 {
            None => fp += 1,
            Some(r) => overlap += 1.0 / (region_sizes[r] as f64 * regions as f64),
        }
        let last = pixels
            .get(k + 1)
            .is_none_or(|n| key(n.0).total_cmp(&key(pixels[k].0)).is_ne());
        if last {
            curve.push((fp as f64 / normal as f64, overlap.min(1.0)));
        }
    }
    curve
}

/// Area under the PRO curve from FPR 0 to `limit` (trapezoids, the curve interpolated at the
/// limit), divided by `limit` so a perfect detector scores 1. `None` without regions.
pub fn pro_score(set: PixelSet<'_>, limit: f64) -> Option<f64> {
    let curve = pro_curve(set);
    if curve.is_empty() || limit <= 0.0 {
        return None;
    }
    Some(area_until(&curve, limit) / limit)
}

/// Trapezoidal area under a monotone curve of `(x, y)` points for `x` in `[0, limit]`.
fn area_until(curve: &[(f64, f64)], limit: f64) -> f64 {
    let mut area = 0.0;
    for pair in curve.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if x0 >= limit {
            break;
        }
        if x1 <= limit {
            area += (x1 - x0) * (y0 + y1) / 2.0;
        } else {
            let y_at = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
            area += (limit - x0) * (y0 + y_at) / 2.0;
            break;
        }
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_use_eight_connectivity() {
        // Two diagonal pixels touch (one region); the right column is a second region.
        #[rustfmt::skip]
        let mask = [
            1, 0, 0, 1,
            0, 1, 0, 1,
            0, 0, 0, 0,
        ];
        let (ids, sizes) = label_regions(&mask, (3, 4));
        assert_eq!(sizes, vec![2, 2]);
        assert_eq!(ids[0], ids[5]);
        assert_ne!(ids[0], ids[3]);
        assert_eq!(ids[2], u32::MAX);
    }

    #[test]
    fn pro_on_a_tiny_synthetic_mask() {
        // One 4x4 image: region A = 2 pixels (top-left), region B = 1 pixel (bottom-right),
        // 13 normal pixels. The map finds all of B and half of A before any false positive.
        let mut mask = vec![0u8; 16];
        mask[0] = 1;
        mask[1] = 1;
        mask[15] = 1;
        let mut map = vec![0.0f32; 16];
        map[15] = 0.9; // B
        map[0] = 0.8; // half of A
        map[1] = 0.1; // the rest of A ties with nothing above one normal pixel
        map[5] = 0.5; // one normal pixel scores high
        let maps = vec![map];
        let masks = vec![mask];
        let set = PixelSet {
            maps: &maps,
            masks: &masks,
            size: (4, 4),
        };
        let curve = pro_curve(set);
        // Corners: (0,0) → 0.9: B → (0, .5) → 0.8: half of A → (0, .75) → 0.5: one normal →
        // (1/13, .75) → 0.1: rest of A → (1/13, 1) → 0.0: twelve normals → (1, 1).
        let want = [
            (0.0, 0.0),
            (0.0, 0.5),
            (0.0, 0.75),
            (1.0 / 13.0, 0.75),
            (1.0 / 13.0, 1.0),
            (1.0, 1.0),
        ];
        assert_eq!(curve.len(), want.len());
        for (g, w) in curve.iter().zip(want) {
            assert!(
                (g.0 - w.0).abs() < 1e-12 && (g.1 - w.1).abs() < 1e-12,
                "{g:?} vs {w:?}"
            );
        }
        // Area to 0.3: 0.75 over [0, 1/13], then 1 over [1/13, 0.3]; normalised by 0.3.
        let area = 0.75 / 13.0 + (0.3 - 1.0 / 13.0);
        let pro = pro_score(set, 0.3).unwrap();
        assert!((pro - area / 0.3).abs() < 1e-12, "{pro}");
        // Pixel AUROC: 3 defect pixels, 13 normal. 0.9 and 0.8 beat all 13; 0.1 beats the 12
        // zeros. (13 + 13 + 12) / 39.
        let auc = pixel_auroc(set).unwrap();
        assert!((auc - 38.0 / 39.0).abs() < 1e-12, "{auc}");
    }

    #[test]
    fn perfect_maps_score_one_and_no_regions_is_undefined() {
        let masks = vec![vec![0, 1, 1, 0], vec![0, 0, 0, 0]];
        let maps = vec![vec![0.0, 1.0, 1.0, 0.0], vec![0.2, 0.1, 0.0, 0.3]];
        let set = PixelSet {
            maps: &maps,
            masks: &masks,
            size: (2, 2),
        };
        assert!((pro_score(set, 0.3).unwrap() - 1.0).abs() < 1e-12);
        assert!((pixel_auroc(set).unwrap() - 1.0).abs() < 1e-12);
        let clean = vec![vec![0u8; 4]];
        let one = vec![vec![0.5f32; 4]];
        let none = PixelSet {
            maps: &one,
            masks: &clean,
            size: (2, 2),
        };
        assert_eq!(pro_score(none, 0.3), None);
        assert_eq!(pixel_auroc(none), None);
    }
}
