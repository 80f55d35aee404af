//! The fused score (`--score fused`): a segmentation network's `mask` score joined with the
//! aligned patch neighbours' (`super::neighbours`), the no-learning statistic that comes closest
//! to the network on aligned parts. The two err on different cells — the network on faint thin
//! cracks it was never painted, the neighbours on a part that no training image shows — so
//! their sum ranks better than either (ELPV's painted validation: 0.985 against 0.975 for the
//! network alone, in the prototype that chose the weight; the README gives the figures).
//!
//! Each part is z-scored with the mean and spread of its image scores over the normal images the
//! threshold is fitted on, so that neither part's units decide: image score
//! `w · z_model(model score) + (1 − w) · z_neighbours(neighbour score)`, `w` = [`DEFAULT_WEIGHT`];
//! the map is the same sum, pixel by pixel, of the two maps under the same transforms. The image
//! score is therefore not the map's maximum: the pixel threshold is fitted on map maxima as for
//! every kind.
//!
//! What it needs beside the model: the two norms (in `RUN/threshold.json`, [`FusionNorms`]) and
//! the run's training images as its data rule loads them (`RUN/reference.safetensors`, written
//! when the threshold is fitted, so that a run copied to a server scores alike without its
//! training folder).

use super::error::AnomalyError;
use super::neighbours::PatchNeighbours;
use super::score::{ScoreKind, ScoredSet};
use crate::atomic::write_atomic;
use crate::data::{ImageSet, ImageShape};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Weight of the network's part (the neighbours get the rest): ¾, chosen on the painted
/// validation set of the prototype (ELPV mono), never on test images.
pub const DEFAULT_WEIGHT: f64 = 0.75;

/// File of the reference images inside a run directory.
pub const REFERENCE_FILE: &str = "reference.safetensors";

/// Name of the one tensor in the reference file (N×C×H×W, f32).
const REFERENCE_TENSOR: &str = "images";

/// Mean and standard deviation of one part's image scores over normal images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZNorm {
    pub mean: f64,
    pub std: f64,
}

impl ZNorm {
    /// Of the finite `values`; `None` with fewer than two. A zero spread (every normal image
    /// scored alike) is floored so that the z-score stays finite.
    pub fn fit(values: impl Iterator<Item = f64>) -> Option<ZNorm> {
        let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
        if v.len() < 2 {
            return None;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        let floor = 1e-9 * mean.abs().max(1e-9);
        Some(ZNorm {
            mean,
            std: var.sqrt().max(floor),
        })
    }

    /// `(v − mean) / std`.
    pub fn z(&self, v: f64) -> f64 {
        (v - self.mean) / self.std
    }
}

/// The two parts' norms, as `RUN/threshold.json` stores them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionNorms {
    /// The network's `mask` score.
    pub model: ZNorm,
    /// The aligned patch neighbours' score.
    pub neighbours: ZNorm,
}

/// Everything a fused score needs beside the model's output: the reference images and the norms.
#[derive(Debug, Clone)]
pub struct Fusion {
    /// The fused kind (the model part's window and the weight).
    pub kind: ScoreKind,
    pub norms: FusionNorms,
    neighbours: PatchNeighbours,
    reference: ImageSet,
}

impl Fusion {
    /// Fits the norms on the normal images among `images` (`anomalous` flags the others), whose
    /// model part is `model` (the `mask` scores of the same images, in order), with `train` as
    /// the reference; returns the fusion and the fused scores of `images`.
    pub fn fit(
        kind: ScoreKind,
        train: ImageSet,
        model: ScoredSet,
        images: &ImageSet,
        anomalous: &[bool],
    ) -> Result<(Fusion, ScoredSet), AnomalyError> {
        let neighbours = PatchNeighbours::fit(&train).ok_or(AnomalyError::NoTrainingImages)?;
        let theirs = neighbours.score(images)?;
        let normal = |scores: &[f64]| -> Vec<f64> {
            scores
                .iter()
                .zip(anomalous)
                .filter(|(_, a)| !**a)
                .map(|(s, _)| *s)
                .collect()
        };
        let fit = |scores: &[f64]| {
            let normal = normal(scores);
            ZNorm::fit(normal.iter().copied()).ok_or(AnomalyError::TooFewNormal {
                what: "a fused score".into(),
                normal: normal.len(),
            })
        };
        let norms = FusionNorms {
            model: fit(&model.scores)?,
            neighbours: fit(&theirs.scores)?,
        };
        let fusion = Fusion {
            kind,
            norms,
            neighbours,
            reference: train,
        };
        let fused = fusion.combine(model, theirs);
        Ok((fusion, fused))
    }

    /// The fusion of a run whose threshold was fitted on `kind` with `norms`: the reference from
    /// `RUN/reference.safetensors`.
    pub fn load(run: &Path, kind: ScoreKind, norms: FusionNorms) -> Result<Fusion, AnomalyError> {
        let path = Fusion::reference_path(run);
        let shown = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|e| AnomalyError::Reference {
            path: shown.clone(),
            message: match e.kind() {
                std::io::ErrorKind::NotFound => "missing".into(),
                _ => e.to_string(),
            },
        })?;
        let reference = read_reference(&bytes).map_err(|message| AnomalyError::Reference {
            path: shown,
            message,
        })?;
        let neighbours = PatchNeighbours::fit(&reference).ok_or(AnomalyError::NoTrainingImages)?;
        Ok(Fusion {
            kind,
            norms,
            neighbours,
            reference,
        })
    }

    /// The fusion a `kind` score of the run at `run` uses: the norms `threshold` was fitted with
    /// (it must have been fitted on this `kind`) and the run's reference images.
    pub fn of_threshold(
        run: &Path,
        kind: ScoreKind,
        threshold: Option<&super::Threshold>,
    ) -> Result<Fusion, AnomalyError> {
        let needs = |found: String| AnomalyError::NeedsFusion {
            run: run.display().to_string(),
            found,
        };
        match threshold {
            None => Err(needs("is missing".into())),
            Some(t) if t.score != kind => Err(needs(format!("is on score {}", t.score))),
            Some(t) => match t.fusion {
                Some(norms) => Fusion::load(run, kind, norms),
                None => Err(needs("holds no fusion norms".into())),
            },
        }
    }

    /// `RUN/reference.safetensors`.
    pub fn reference_path(run: &Path) -> PathBuf {
        run.join(REFERENCE_FILE)
    }

    /// Writes the reference images into the run (atomically; the caller holds the run's lock).
    pub fn save_reference(&self, run: &Path) -> Result<PathBuf, AnomalyError> {
        let path = Fusion::reference_path(run);
        let fail = |message: String| AnomalyError::Reference {
            path: path.display().to_string(),
            message,
        };
        let bytes = write_reference(&self.reference).map_err(fail)?;
        write_atomic(&path, &bytes).map_err(|source| AnomalyError::Write {
            path: path.display().to_string(),
            source,
        })?;
        Ok(path)
    }

    /// The shape the reference images have (and the scored images must have).
    pub fn shape(&self) -> ImageShape {
        self.neighbours.shape
    }

    /// Fuses the model part of a whole set (`mask` scores of `images`, in order) with the
    /// neighbours' scores of the same images.
    pub fn apply(&self, model: ScoredSet, images: &ImageSet) -> Result<ScoredSet, AnomalyError> {
        let theirs = self.neighbours.score(images)?;
        Ok(self.combine(model, theirs))
    }

    /// Fuses one image's model part (its `mask` score and map) with its neighbours' part.
    pub fn apply_one(
        &self,
        image: &[f32],
        shape: ImageShape,
        model_score: f64,
        model_map: &[f32],
    ) -> Result<(f64, Vec<f32>), AnomalyError> {
        if shape != self.shape() {
            return Err(AnomalyError::BaselineShape {
                fitted: self.shape(),
                given: shape,
            });
        }
        let map = self.neighbours.map(image);
        let score = map
            .iter()
            .map(|&v| f64::from(v))
            .fold(f64::NEG_INFINITY, f64::max);
        Ok((
            self.fuse_score(model_score, score),
            self.fuse_map(model_map, &map),
        ))
    }

    fn weight(&self) -> f64 {
        match self.kind {
            ScoreKind::Fused { weight, .. } => weight,
            _ => DEFAULT_WEIGHT,
        }
    }

    fn fuse_score(&self, model: f64, neighbours: f64) -> f64 {
        let w = self.weight();
        w * self.norms.model.z(model) + (1.0 - w) * self.norms.neighbours.z(neighbours)
    }

    fn fuse_map(&self, model: &[f32], neighbours: &[f32]) -> Vec<f32> {
        model
            .iter()
            .zip(neighbours)
            .map(|(&m, &n)| self.fuse_score(f64::from(m), f64::from(n)) as f32)
            .collect()
    }

    fn combine(&self, model: ScoredSet, theirs: ScoredSet) -> ScoredSet {
        let scores = model
            .scores
            .iter()
            .zip(&theirs.scores)
            .map(|(&m, &n)| self.fuse_score(m, n))
            .collect();
        let maps = model
            .maps
            .iter()
            .zip(&theirs.maps)
            .map(|(m, n)| self.fuse_map(m, n))
            .collect();
        ScoredSet {
            kind: self.kind,
            scores,
            maps,
            reconstructions: model.reconstructions,
        }
    }
}

/// The reference images as safetensors bytes (one N×C×H×W f32 tensor).
fn write_reference(set: &ImageSet) -> Result<Vec<u8>, String> {
    let s = set.shape;
    let bytes: Vec<u8> = set.pixels.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(
        Dtype::F32,
        vec![set.len(), s.channels, s.height, s.width],
        &bytes,
    )
    .map_err(|e| e.to_string())?;
    safetensors::serialize([(REFERENCE_TENSOR, view)], None).map_err(|e| e.to_string())
}

/// Reads what [`write_reference`] wrote; a message saying what is wrong otherwise.
fn read_reference(bytes: &[u8]) -> Result<ImageSet, String> {
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| format!("not a reference file ({e})"))?;
    let t = file
        .tensor(REFERENCE_TENSOR)
        .map_err(|_| format!("holds no tensor {REFERENCE_TENSOR:?}"))?;
    let &[n, channels, height, width] = t.shape() else {
        return Err(format!("tensor of shape {:?}, not N×C×H×W", t.shape()));
    };
    if t.dtype() != Dtype::F32 || n == 0 || channels == 0 || height == 0 || width == 0 {
        return Err(format!(
            "tensor of {:?} {:?}, not a non-empty f32 image stack",
            t.dtype(),
            t.shape()
        ));
    }
    let pixels: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = pixels.iter().position(|v| !v.is_finite()) {
        return Err(format!("value {} at index {i} is not finite", pixels[i]));
    }
    let shape = ImageShape {
        channels,
        height,
        width,
    };
    Ok(ImageSet::unlabelled(shape, pixels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::score::DEFAULT_WINDOW;

    fn kind() -> ScoreKind {
        ScoreKind::Fused {
            window: DEFAULT_WINDOW,
            weight: DEFAULT_WEIGHT,
        }
    }

    /// `n` 8×8 images, each a gradient plus `k`-th small variation.
    fn images(n: usize) -> ImageSet {
        let shape = ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let pixels = (0..n)
            .flat_map(|k| (0..64).map(move |p| 0.2 + 0.005 * (p % 8) as f32 + 0.01 * k as f32))
            .collect();
        ImageSet::unlabelled(shape, pixels)
    }

    fn model_part(scores: &[f64]) -> ScoredSet {
        ScoredSet {
            kind: ScoreKind::Mask {
                window: DEFAULT_WINDOW,
            },
            scores: scores.to_vec(),
            maps: scores.iter().map(|&s| vec![s as f32; 64]).collect(),
            reconstructions: None,
        }
    }

    #[test]
    fn z_norm_of_known_values_and_too_few() {
        let z = ZNorm::fit([1.0, 2.0, 3.0, f64::NAN].into_iter()).unwrap();
        assert!((z.mean - 2.0).abs() < 1e-12 && (z.std - 1.0).abs() < 1e-12);
        assert!((z.z(4.0) - 2.0).abs() < 1e-12);
        assert!(ZNorm::fit([1.0].into_iter()).is_none());
        let flat = ZNorm::fit([0.5, 0.5].into_iter()).unwrap();
        assert!(flat.z(0.6).is_finite());
    }

    #[test]
    fn fused_score_is_the_weighted_sum_of_the_z_scores_and_fits_on_normals_only() {
        let train = images(4);
        let scored = images(4);
        // The fourth image is anomalous: its model score is far out and must not move the norm.
        let model = model_part(&[0.1, 0.2, 0.3, 5.0]);
        let (fusion, fused) =
            Fusion::fit(kind(), train, model, &scored, &[false, false, false, true]).unwrap();
        assert!((fusion.norms.model.mean - 0.2).abs() < 1e-12);
        assert!((fusion.norms.model.std - 0.1).abs() < 1e-12);
        // The scored images are the training images: their neighbour distance is 0.
        for (i, m) in [0.1, 0.2, 0.3, 5.0].iter().enumerate() {
            let expect = DEFAULT_WEIGHT * fusion.norms.model.z(*m)
                + (1.0 - DEFAULT_WEIGHT) * fusion.norms.neighbours.z(0.0);
            assert!((fused.scores[i] - expect).abs() < 1e-6, "{i}");
        }
        assert_eq!(fused.kind, kind());
        assert!(fused.scores[3] > fused.scores[2]);
        // One image on its own gives what the set gave.
        let (one, map) = fusion
            .apply_one(scored.image(3), scored.shape, 5.0, &fused_map_source(5.0))
            .unwrap();
        assert!((one - fused.scores[3]).abs() < 1e-9);
        assert!((map[10] - fused.maps[3][10]).abs() < 1e-5);
        // Another size is refused.
        let small = ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        assert!(
            fusion
                .apply_one(&[0.0; 16], small, 0.0, &[0.0; 16])
                .is_err()
        );
    }

    fn fused_map_source(s: f64) -> Vec<f32> {
        vec![s as f32; 64]
    }

    #[test]
    fn too_few_normal_images_are_an_error() {
        let err = Fusion::fit(
            kind(),
            images(3),
            model_part(&[0.1, 0.2]),
            &images(2),
            &[false, true],
        )
        .unwrap_err();
        assert!(err.to_string().contains("1 normal"), "{err}");
    }

    #[test]
    fn the_reference_round_trips_and_a_bad_file_is_one_message() {
        let dir = crate::data::fixture::TempDir::new("fused-reference");
        let (fusion, _) = Fusion::fit(
            kind(),
            images(3),
            model_part(&[0.1, 0.2, 0.3]),
            &images(3),
            &[false; 3],
        )
        .unwrap();
        fusion.save_reference(dir.path()).unwrap();
        let back = Fusion::load(dir.path(), kind(), fusion.norms).unwrap();
        assert_eq!(back.reference.pixels, fusion.reference.pixels);
        assert_eq!(back.shape(), fusion.shape());
        std::fs::write(Fusion::reference_path(dir.path()), b"garbage").unwrap();
        let err = Fusion::load(dir.path(), kind(), fusion.norms).unwrap_err();
        assert!(err.to_string().contains("reference.safetensors"), "{err}");
        std::fs::remove_file(Fusion::reference_path(dir.path())).unwrap();
        let err = Fusion::load(dir.path(), kind(), fusion.norms).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
