//! The second no-learning baseline: every image compared, patch by patch, with its nearest
//! training images, each allowed to shift by a few pixels. The per-pixel Gaussian
//! (`super::baseline`) sums all training images into one mean and spread per place, so two kinds
//! of normal part (three or four busbars, cut corners or none) blur into one wide normal, and a
//! part lying a pixel off its mean looks like a defect along every edge. Here the reference is
//! the K training images most like the scored one (on a small thumbnail), and a pixel is normal
//! when some nearby patch of one of them matches it: what is left is what no normal part shows
//! anywhere near that place. On ELPV cells (validation with painted defects) it scored 0.96
//! where the Gaussian scored 0.89.
//!
//! Map: √(smallest mean squared difference of the 5×5 patch around a pixel to the patches of the
//! K = 30 nearest training images shifted by up to ±2 pixels), σ 2 smoothed; image score: its
//! maximum.

use super::error::AnomalyError;
use super::score::{ScoreKind, ScoredSet};
use crate::data::{ImageSet, ImageShape};
use crate::imageops::{box_filter, gaussian_blur};
use rayon::prelude::*;

/// Training images an image is compared with.
pub const NEIGHBOURS: usize = 30;
/// Largest shift, in pixels, of a training image against the scored one.
pub const SHIFT: isize = 2;
/// Side of the compared patch.
pub const PATCH: usize = 5;
/// σ of the smoothing of the distance map.
pub const SIGMA: f64 = 2.0;
/// Side of the thumbnail the nearest training images are picked on (about; block means).
const THUMB: usize = 32;

/// The training images, with their thumbnails.
#[derive(Debug, Clone)]
pub struct PatchNeighbours {
    pub shape: ImageShape,
    images: Vec<Vec<f32>>,
    thumbs: Vec<Vec<f32>>,
}

/// Block means of every channel of `image` (`block × block` blocks, the remainder dropped).
fn thumbnail(image: &[f32], s: ImageShape) -> Vec<f32> {
    let block = (s.height.max(s.width) / THUMB).max(1);
    let (th, tw) = ((s.height / block).max(1), (s.width / block).max(1));
    let mut out = Vec::with_capacity(s.channels * th * tw);
    for c in 0..s.channels {
        let plane = &image[c * s.height * s.width..(c + 1) * s.height * s.width];
        for ty in 0..th {
            for tx in 0..tw {
                let mut sum = 0f32;
                let mut n = 0f32;
                for y in ty * block..((ty + 1) * block).min(s.height) {
                    for x in tx * block..((tx + 1) * block).min(s.width) {
                        sum += plane[y * s.width + x];
                        n += 1.0;
                    }
                }
                out.push(sum / n.max(1.0));
            }
        }
    }
    out
}

impl PatchNeighbours {
    /// Keeps the training images; `None` for an empty set.
    pub fn fit(train: &ImageSet) -> Option<PatchNeighbours> {
        if train.is_empty() {
            return None;
        }
        let images: Vec<Vec<f32>> = (0..train.len()).map(|i| train.image(i).to_vec()).collect();
        let thumbs = images.iter().map(|im| thumbnail(im, train.shape)).collect();
        Some(PatchNeighbours {
            shape: train.shape,
            images,
            thumbs,
        })
    }

    /// The distance map of one image (`height * width`, before smoothing).
    fn distance_map(&self, image: &[f32]) -> Vec<f32> {
        let s = self.shape;
        let (h, w, plane) = (s.height, s.width, s.height * s.width);
        let thumb = thumbnail(image, s);
        let mut order: Vec<(f32, usize)> = self
            .thumbs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let d = t.iter().zip(&thumb).map(|(a, b)| (a - b) * (a - b)).sum();
                (d, i)
            })
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut best = vec![f32::INFINITY; plane];
        let mut diff = vec![0f32; plane];
        let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
        for &(_, r) in order.iter().take(NEIGHBOURS) {
            let reference = &self.images[r];
            for dy in -SHIFT..=SHIFT {
                for dx in -SHIFT..=SHIFT {
                    diff.iter_mut().for_each(|d| *d = 0.0);
                    for c in 0..s.channels {
                        let (x_plane, r_plane) = (
                            &image[c * plane..(c + 1) * plane],
                            &reference[c * plane..(c + 1) * plane],
                        );
                        for y in 0..h {
                            let ry = clamp(y as isize + dy, h);
                            for x in 0..w {
                                let rx = clamp(x as isize + dx, w);
                                let e = x_plane[y * w + x] - r_plane[ry * w + rx];
                                diff[y * w + x] += e * e;
                            }
                        }
                    }
                    let patch = box_filter(&diff, (h, w), PATCH);
                    for (b, p) in best.iter_mut().zip(&patch) {
                        *b = b.min(*p / s.channels as f32);
                    }
                }
            }
        }
        best.iter().map(|v| v.max(0.0).sqrt()).collect()
    }

    /// The σ-smoothed distance map of one image of the fitted shape (`height * width`).
    pub fn map(&self, image: &[f32]) -> Vec<f32> {
        let (h, w) = (self.shape.height, self.shape.width);
        gaussian_blur(&self.distance_map(image), (1, h, w), SIGMA)
    }

    /// Scores every image of `set` (which must have the fitted shape), in parallel.
    pub fn score(&self, set: &ImageSet) -> Result<ScoredSet, AnomalyError> {
        if set.shape != self.shape {
            return Err(AnomalyError::BaselineShape {
                fitted: self.shape,
                given: set.shape,
            });
        }
        let maps: Vec<Vec<f32>> = (0..set.len())
            .into_par_iter()
            .map(|i| self.map(set.image(i)))
            .collect();
        let mut scored = ScoredSet {
            // Reports name the statistic in words; the map is a maximum-scored map.
            kind: ScoreKind::MaxSmoothed { sigma: SIGMA },
            scores: Vec::new(),
            maps,
            reconstructions: None,
        };
        scored.scores = scored.map_maxima();
        Ok(scored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(images: &[Vec<f32>], side: usize) -> ImageSet {
        ImageSet {
            shape: ImageShape {
                channels: 1,
                height: side,
                width: side,
            },
            pixels: images.concat(),
            labels: None,
            class_names: None,
            origins: (0..images.len()).map(|i| i.to_string()).collect(),
        }
    }

    /// A bright bar at column `at` of a dark 16×16 image.
    fn bar(at: usize) -> Vec<f32> {
        let side = 16;
        (0..side * side)
            .map(|i| if i % side == at { 0.9 } else { 0.1 })
            .collect()
    }

    #[test]
    fn a_shifted_normal_part_is_normal_and_a_spot_is_not() {
        // Normal parts: the bar at column 7 or 8 (two kinds of part, one pixel apart).
        let train: Vec<Vec<f32>> = (0..6).map(|k| bar(7 + k % 2)).collect();
        let n = PatchNeighbours::fit(&set(&train, 16)).unwrap();
        // A bar two pixels off (within the shift) is a normal part; a dark spot on the bar is
        // not, and it is lit where it is.
        let shifted = bar(9);
        let mut spot = bar(7);
        spot[8 * 16 + 7] = 0.1;
        spot[8 * 16 + 2] = 0.9;
        let scored = n.score(&set(&[shifted, spot], 16)).unwrap();
        assert!(scored.scores[0] < 1e-3, "{:?}", scored.scores);
        assert!(scored.scores[1] > 0.05, "{:?}", scored.scores);
        let map = &scored.maps[1];
        let peak = (0..map.len())
            .max_by(|&a, &b| map[a].total_cmp(&map[b]))
            .unwrap();
        assert!(
            (peak / 16).abs_diff(8) <= 2 && (peak % 16) <= 8,
            "peak at {peak}"
        );
        // The per-pixel Gaussian of the same parts flags the shifted bar as strongly as a
        // defect: its mean has the bar at 7.5.
        let g = super::super::baseline::PixelGaussian::fit(&set(&train, 16)).unwrap();
        let gs = g
            .score(
                &set(&[bar(9)], 16),
                super::super::baseline::BaselineScore::MaxSmoothedZ { sigma: 2.0 },
            )
            .unwrap();
        assert!(gs.scores[0] > 1.0, "{:?}", gs.scores);
    }

    #[test]
    fn refuses_another_shape_and_an_empty_set() {
        let n = PatchNeighbours::fit(&set(&[bar(3)], 16)).unwrap();
        assert!(n.score(&set(&[vec![0.0; 64]], 8)).is_err());
        assert!(PatchNeighbours::fit(&set(&[], 16)).is_none());
    }
}
