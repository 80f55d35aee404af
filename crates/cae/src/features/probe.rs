//! The linear probe: how much of the label is linearly readable from a trained encoder's codes,
//! compared with the raw pixels, when only a few labels are available.
//!
//! The last `test` images of the set are the test split (the rest is the labelled pool); for
//! each label budget a class-balanced, seeded subset of the pool trains one softmax regression
//! on codes and one on pixels, both scored on the same test images.

use super::softmax::{Softmax, SoftmaxConfig};
use super::{FeatureError, encode};
use crate::data::ImageSet;
use crate::model::Autoencoder;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Accuracy of both classifiers for one label budget.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeRow {
    /// Labelled training images used.
    pub labels: usize,
    pub codes_accuracy: f64,
    pub pixels_accuracy: f64,
}

/// The probe's result.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub pool: usize,
    pub test: usize,
    pub classes: usize,
    pub code_dim: usize,
    pub pixel_dim: usize,
    pub rows: Vec<ProbeRow>,
}

/// The labels of `set`, or an error naming the source.
pub fn labels_of(set: &ImageSet) -> Result<&[u32], FeatureError> {
    set.labels.as_deref().ok_or_else(|| FeatureError::NoLabels {
        origin: set
            .origins
            .first()
            .map(|o| o.split('#').next().unwrap_or(o).to_string())
            .unwrap_or_default(),
    })
}

/// Splits `set` into (pool, test): the last `test` images are the test split.
pub fn split_tail(set: &ImageSet, test: usize) -> Result<(ImageSet, ImageSet), FeatureError> {
    let n = set.len();
    if test == 0 || test >= n {
        return Err(FeatureError::Split { images: n, test });
    }
    let pool: Vec<usize> = (0..n - test).collect();
    let tail: Vec<usize> = (n - test..n).collect();
    Ok((set.select(&pool), set.select(&tail)))
}

/// `n` indices of `labels`, class-balanced (round robin over classes in a seeded order).
pub fn balanced_subset(labels: &[u32], n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for i in order {
        per_class[labels[i] as usize].push(i);
    }
    let mut picked = Vec::with_capacity(n.min(labels.len()));
    let mut round = 0;
    while picked.len() < n.min(labels.len()) {
        for members in &per_class {
            if let Some(&i) = members.get(round)
                && picked.len() < n
            {
                picked.push(i);
            }
        }
        round += 1;
    }
    picked.sort_unstable();
    picked
}

/// Runs the probe for each budget (`None` = the whole pool).
pub fn probe(
    model: &Autoencoder,
    set: &ImageSet,
    test: usize,
    budgets: &[Option<usize>],
    cfg: &SoftmaxConfig,
    device: &Device,
) -> Result<ProbeReport, FeatureError> {
    let labels = labels_of(set)?;
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let (pool, test_set) = split_tail(set, test)?;
    let (codes, code_dim) = encode(model, set, 128, device)?;
    let pixel_dim = set.shape.len();
    let pool_n = pool.len();
    let rows_of = |values: &[f32], dim: usize, idx: &[usize]| -> Vec<f32> {
        idx.iter()
            .flat_map(|&i| values[i * dim..(i + 1) * dim].iter().copied())
            .collect()
    };
    let test_idx: Vec<usize> = (pool_n..set.len()).collect();
    let test_labels: Vec<u32> = test_idx.iter().map(|&i| labels[i]).collect();
    let test_codes = rows_of(&codes, code_dim, &test_idx);
    let mut rows = Vec::new();
    for budget in budgets {
        let n = budget.unwrap_or(pool_n).min(pool_n);
        let idx = balanced_subset(&labels[..pool_n], n, cfg.seed);
        let y: Vec<u32> = idx.iter().map(|&i| labels[i]).collect();
        let on_codes = Softmax::fit(&rows_of(&codes, code_dim, &idx), code_dim, &y, classes, cfg);
        let on_pixels = Softmax::fit(
            &rows_of(&set.pixels, pixel_dim, &idx),
            pixel_dim,
            &y,
            classes,
            cfg,
        );
        rows.push(ProbeRow {
            labels: idx.len(),
            codes_accuracy: on_codes.accuracy(&test_codes, &test_labels),
            pixels_accuracy: on_pixels.accuracy(&test_set.pixels, &test_labels),
        });
    }
    Ok(ProbeReport {
        pool: pool_n,
        test: test_set.len(),
        classes,
        code_dim,
        pixel_dim,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_balanced_and_seeded() {
        let labels: Vec<u32> = (0..100).map(|i| (i % 7 % 3) as u32).collect();
        let s = balanced_subset(&labels, 9, 1);
        let count = |c| s.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!((count(0), count(1), count(2)), (3, 3, 3));
        assert_eq!(s, balanced_subset(&labels, 9, 1));
        assert_ne!(s, balanced_subset(&labels, 9, 2));
        assert_eq!(balanced_subset(&labels, 1000, 1).len(), 100);
    }
}
