//! What an anomaly command scores: images with a normal/anomalous truth and, when known,
//! ground-truth masks ([`AnomalySet`]). Which images those are for a run — a labelled set and a
//! normal class (MNIST one-vs-rest), an MVTec AD folder (`test/` with masks), a `normal/` +
//! `abnormal/` folder pair, an unlabelled source (all normal), or the run's own held-out
//! partitions — is the run's data rule, `crate::run::data`.

use super::error::AnomalyError;
use crate::data::ImageSet;

/// Images with their truth.
#[derive(Debug, Clone)]
pub struct AnomalySet {
    pub images: ImageSet,
    /// True for anomalous images.
    pub anomalous: Vec<bool>,
    /// Ground-truth masks (`height * width`, 1 = defect), when the data has them.
    pub masks: Option<Vec<Vec<u8>>>,
    /// Where the images came from, for messages and reports.
    pub source: String,
}

impl AnomalySet {
    /// Every image normal.
    pub fn all_normal(images: ImageSet, source: &str) -> AnomalySet {
        AnomalySet {
            anomalous: vec![false; images.len()],
            images,
            masks: None,
            source: source.to_string(),
        }
    }

    /// Images whose label is `normal` are normal, all others anomalous.
    pub fn one_vs_rest(images: ImageSet, normal: u32, source: &str) -> AnomalySet {
        let labels = images.labels.clone().unwrap_or_default();
        AnomalySet {
            anomalous: labels.iter().map(|&l| l != normal).collect(),
            images,
            masks: None,
            source: source.to_string(),
        }
    }

    /// Only the images of `shard` (all of them for `None`), with their truth and masks.
    pub fn shard(self, shard: Option<crate::data::Shard>) -> AnomalySet {
        let Some(shard) = shard else {
            return self;
        };
        let mut part = self.block(shard.range(self.images.len()));
        part.source = format!("{} (shard {}/{})", self.source, shard.index, shard.count);
        part
    }

    /// A copy of the images at `range` (clipped), with their truth and masks: one block of a
    /// set scored a block at a time.
    pub fn block(&self, range: std::ops::Range<usize>) -> AnomalySet {
        let keep: Vec<usize> = crate::data::clip(&range, self.images.len()).collect();
        AnomalySet {
            images: self.images.select(&keep),
            anomalous: keep.iter().map(|&i| self.anomalous[i]).collect(),
            masks: self
                .masks
                .as_ref()
                .map(|m| keep.iter().map(|&i| m[i].clone()).collect()),
            source: self.source.clone(),
        }
    }

    /// (normal, anomalous) counts.
    pub fn counts(&self) -> (usize, usize) {
        let a = self.anomalous.iter().filter(|&&x| x).count();
        (self.anomalous.len() - a, a)
    }

    /// An error unless the set holds at least one image.
    pub fn non_empty(self, hint: &str) -> Result<AnomalySet, AnomalyError> {
        if self.images.is_empty() {
            return Err(AnomalyError::Empty {
                origin: self.source,
                hint: hint.to_string(),
            });
        }
        Ok(self)
    }
}
