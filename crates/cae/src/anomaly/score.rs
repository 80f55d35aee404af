//! Scoring: how far a reconstruction is from its input, per image (one number) and per pixel
//! (an anomaly map). The score kinds are independent of any model; [`score_set`] runs a trained
//! autoencoder over a set and applies one.
//!
//! | kind | anomaly map (H×W, channels averaged) | image score |
//! | --- | --- | --- |
//! | `mse` | squared error | mean of the map |
//! | `mae` | absolute error | mean of the map |
//! | `ssim` | 1 − SSIM map (11×11 Gaussian window) | 1 − mean SSIM |
//! | `max-smoothed` | squared error, Gaussian-smoothed (σ) | maximum of the map |
//! | `mask` | a segmentation model's predicted anomaly probability, mean-filtered (window) | maximum of the map |
//! | `fused` | `mask`'s map and the aligned patch neighbours' map, each z-scored on normal images, weighted ¾ : ¼ | the same sum of the two image scores (`super::fused`) |
//!
//! `max-smoothed` answers "is there one place that is badly reconstructed?", so a small
//! defect is not averaged away by a large clean background. `mask` is the one kind of a
//! segmentation run (`inspect` trained with `--synthetic`), whose model outputs the map itself;
//! reconstruction kinds need a reconstruction. [`ScoreKind::check_model`] says which fits.

use super::error::AnomalyError;
use crate::data::{ImageSet, ImageShape};
use crate::imageops::{box_filter, gaussian_blur};
use crate::infer::for_each_reconstruction;
use crate::model::Autoencoder;
use crate::quality;
use crate::quote::quote;
use crate::spec::ValidSpec;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Default σ (pixels) of the `max-smoothed` score's Gaussian.
pub const DEFAULT_SIGMA: f64 = 2.0;

/// Default side (pixels) of the `mask` score's mean filter.
pub const DEFAULT_WINDOW: usize = 9;

/// The score kinds' names as `--score` takes them.
const SCORE_NAMES: [&str; 6] = ["mse", "mae", "ssim", "max-smoothed", "mask", "fused"];

/// How an image's reconstruction error becomes a score and an anomaly map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ScoreKind {
    /// Mean squared error; map: squared error.
    Mse,
    /// Mean absolute error; map: absolute error.
    Mae,
    /// 1 − SSIM; map: 1 − the SSIM map.
    Ssim,
    /// Maximum of the Gaussian-smoothed squared error (σ in pixels); map: the smoothed error.
    MaxSmoothed { sigma: f64 },
    /// Maximum of a segmentation model's predicted anomaly map, mean-filtered over a
    /// `window × window` square; map: the filtered prediction.
    Mask { window: usize },
    /// `mask` (`window`) fused with the aligned patch neighbours, the network's part weighted
    /// `weight` (`super::fused`). [`ScoreKind::map`] and [`ScoreKind::image_score`] give the
    /// network's part; `super::fused::Fusion` adds the other, with the norms fitted beside the
    /// threshold.
    Fused { window: usize, weight: f64 },
}

/// A score name, `--sigma` or `--window` that does not make a [`ScoreKind`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreOptionError {
    #[error(
        "unknown score {}: expected mse, mae, ssim, max-smoothed, mask or fused{}",
        quote(.0),
        crate::suggest::did_you_mean(.0, SCORE_NAMES)
    )]
    Unknown(String),
    #[error("--sigma {0}: the smoothing σ must be a number in (0, 64] pixels")]
    Sigma(f64),
    #[error("--window {0}: the mean filter's side must be an odd number of pixels in 1..=255")]
    Window(usize),
    #[error("--sigma only applies to --score max-smoothed, not {0}")]
    SigmaElsewhere(String),
    #[error("--window only applies to --score mask or fused, not {0}")]
    WindowElsewhere(String),
}

impl ScoreKind {
    /// Parses `mse`, `mae`, `ssim`, `max-smoothed` or `mask`; `sigma` applies to
    /// `max-smoothed` only (default [`DEFAULT_SIGMA`]) and must be positive, `window` to `mask`
    /// only (default [`DEFAULT_WINDOW`], odd, 1–255).
    pub fn parse(
        name: &str,
        sigma: Option<f64>,
        window: Option<usize>,
    ) -> Result<ScoreKind, ScoreOptionError> {
        if window.is_some() && !matches!(name, "mask" | "fused") {
            return Err(ScoreOptionError::WindowElsewhere(name.into()));
        }
        let kind = match name {
            "mse" => ScoreKind::Mse,
            "mae" | "l1" => ScoreKind::Mae,
            "ssim" => ScoreKind::Ssim,
            "max-smoothed" | "max_smoothed" => {
                let sigma = sigma.unwrap_or(DEFAULT_SIGMA);
                if !(sigma.is_finite() && sigma > 0.0 && sigma <= 64.0) {
                    return Err(ScoreOptionError::Sigma(sigma));
                }
                return Ok(ScoreKind::MaxSmoothed { sigma });
            }
            "mask" | "fused" => {
                let window = window.unwrap_or(DEFAULT_WINDOW);
                if window.is_multiple_of(2) || !(1..=255).contains(&window) {
                    return Err(ScoreOptionError::Window(window));
                }
                if sigma.is_some() {
                    return Err(ScoreOptionError::SigmaElsewhere(name.into()));
                }
                return Ok(match name {
                    "mask" => ScoreKind::Mask { window },
                    _ => ScoreKind::Fused {
                        window,
                        weight: super::fused::DEFAULT_WEIGHT,
                    },
                });
            }
            other => return Err(ScoreOptionError::Unknown(other.into())),
        };
        if sigma.is_some() {
            return Err(ScoreOptionError::SigmaElsewhere(name.into()));
        }
        Ok(kind)
    }

    /// The anomaly map of one image (`height * width` values) from CHW original and
    /// reconstruction.
    pub fn map(&self, original: &[f32], reconstruction: &[f32], shape: ImageShape) -> Vec<f32> {
        let (c, h, w) = (shape.channels, shape.height, shape.width);
        match *self {
            ScoreKind::Mse => channel_mean(original, reconstruction, shape, |d| d * d),
            ScoreKind::Mae => channel_mean(original, reconstruction, shape, f32::abs),
            ScoreKind::Ssim => quality::ssim_map(original, reconstruction, (c, h, w))
                .into_iter()
                .map(|v| 1.0 - v)
                .collect(),
            ScoreKind::MaxSmoothed { sigma } => {
                let squared = channel_mean(original, reconstruction, shape, |d| d * d);
                gaussian_blur(&squared, (1, h, w), sigma)
            }
            ScoreKind::Mask { window } | ScoreKind::Fused { window, .. } => {
                // The model's output is the map: the first (only) channel.
                match reconstruction.get(..h * w) {
                    Some(p) => box_filter(p, (h, w), window),
                    None => vec![f32::NAN; h * w],
                }
            }
        }
    }

    /// The kind used when neither the user nor a fitted threshold names one: `mask` for a
    /// segmentation model, `mse` for a reconstruction.
    pub fn default_for(spec: &ValidSpec) -> ScoreKind {
        if spec.is_segmentation() {
            ScoreKind::Mask {
                window: DEFAULT_WINDOW,
            }
        } else {
            ScoreKind::Mse
        }
    }

    /// True when the image score is the map's maximum, so one threshold serves both.
    pub fn is_map_maximum(&self) -> bool {
        matches!(self, ScoreKind::MaxSmoothed { .. } | ScoreKind::Mask { .. })
    }

    /// The kind of the network's part: `mask` for `fused`, the kind itself otherwise.
    pub fn model_part(&self) -> ScoreKind {
        match *self {
            ScoreKind::Fused { window, .. } => ScoreKind::Mask { window },
            other => other,
        }
    }

    /// True when the model outputs the map itself (`mask`, `fused`), not a reconstruction.
    pub fn reads_predicted_map(&self) -> bool {
        matches!(self, ScoreKind::Mask { .. } | ScoreKind::Fused { .. })
    }

    /// Checks that this kind can score `spec`'s outputs: `mask` and `fused` need a
    /// segmentation model, every other kind a reconstruction.
    pub fn check_model(&self, spec: &ValidSpec) -> Result<(), AnomalyError> {
        match (self, spec.is_segmentation()) {
            (ScoreKind::Mask { .. } | ScoreKind::Fused { .. }, true)
            | (
                ScoreKind::Mse | ScoreKind::Mae | ScoreKind::Ssim | ScoreKind::MaxSmoothed { .. },
                false,
            ) => Ok(()),
            (ScoreKind::Mask { .. } | ScoreKind::Fused { .. }, false) => {
                Err(AnomalyError::MaskNeedsSegmentation {
                    model: spec.spec.name.clone(),
                })
            }
            (other, true) => Err(AnomalyError::NeedsReconstruction {
                score: other.to_string(),
                model: spec.spec.name.clone(),
            }),
        }
    }

    /// The image score from the image, its reconstruction and its anomaly map.
    pub fn image_score(
        &self,
        original: &[f32],
        reconstruction: &[f32],
        shape: ImageShape,
        map: &[f32],
    ) -> f64 {
        match self {
            ScoreKind::Mse | ScoreKind::Mae => {
                map.iter().map(|&v| f64::from(v)).sum::<f64>() / map.len().max(1) as f64
            }
            ScoreKind::Ssim => {
                let s = (shape.channels, shape.height, shape.width);
                1.0 - quality::ssim(original, reconstruction, s)
            }
            ScoreKind::MaxSmoothed { .. } | ScoreKind::Mask { .. } | ScoreKind::Fused { .. } => map
                .iter()
                .map(|&v| f64::from(v))
                .fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

impl std::fmt::Display for ScoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScoreKind::Mse => f.write_str("mse"),
            ScoreKind::Mae => f.write_str("mae"),
            ScoreKind::Ssim => f.write_str("ssim"),
            ScoreKind::MaxSmoothed { sigma } => write!(f, "max-smoothed (σ {sigma})"),
            ScoreKind::Mask { window } => write!(f, "mask (window {window})"),
            ScoreKind::Fused { window, weight } => write!(
                f,
                "fused (mask window {window} × {weight} + aligned patch neighbours × {}, z-scored on normal images)",
                1.0 - weight
            ),
        }
    }
}

/// Per-pixel `f(original − reconstruction)`, averaged over channels.
fn channel_mean(a: &[f32], b: &[f32], shape: ImageShape, f: impl Fn(f32) -> f32) -> Vec<f32> {
    let plane = shape.height * shape.width;
    let mut out = vec![0.0f32; plane];
    if a.len() != shape.len() || b.len() != shape.len() || shape.channels == 0 {
        return vec![f32::NAN; plane];
    }
    for c in 0..shape.channels {
        let range = c * plane..(c + 1) * plane;
        for ((o, x), y) in out.iter_mut().zip(&a[range.clone()]).zip(&b[range]) {
            *o += f(x - y);
        }
    }
    let n = shape.channels as f32;
    out.iter_mut().for_each(|v| *v /= n);
    out
}

/// Scores and anomaly maps of every image of a set, in order.
#[derive(Debug, Clone)]
pub struct ScoredSet {
    /// The score kind used.
    pub kind: ScoreKind,
    /// One image score per image.
    pub scores: Vec<f64>,
    /// One anomaly map per image (`height * width`).
    pub maps: Vec<Vec<f32>>,
    /// The reconstructions (CHW, clamped to [0, 1]) when asked for.
    pub reconstructions: Option<Vec<Vec<f32>>>,
}

impl ScoredSet {
    /// Each image's anomaly-map maximum (what a pixel threshold is fitted on).
    pub fn map_maxima(&self) -> Vec<f64> {
        self.maps
            .iter()
            .map(|m| {
                m.iter()
                    .map(|&v| f64::from(v))
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect()
    }

    /// An empty set of scores of `kind`, for `n` images, keeping model outputs when asked.
    fn with_capacity(kind: ScoreKind, n: usize, keep_outputs: bool) -> ScoredSet {
        ScoredSet {
            kind,
            scores: Vec::with_capacity(n),
            maps: Vec::with_capacity(n),
            reconstructions: keep_outputs.then(Vec::new),
        }
    }

    /// Scores one image `x` from the model's output `y`.
    fn push(&mut self, x: &[f32], y: &[f32], shape: ImageShape) {
        let map = self.kind.map(x, y, shape);
        self.scores.push(self.kind.image_score(x, y, shape, &map));
        self.maps.push(map);
        if let Some(r) = self.reconstructions.as_mut() {
            r.push(y.to_vec());
        }
    }
}

/// Reconstructs every image of `set` with `model` and scores it with `kind`.
pub fn score_set(
    model: &Autoencoder,
    set: &ImageSet,
    kind: ScoreKind,
    batch_size: usize,
    device: &Device,
    keep_reconstructions: bool,
) -> Result<ScoredSet, AnomalyError> {
    let shape = set.shape;
    let mut out = ScoredSet::with_capacity(kind, set.len(), keep_reconstructions);
    for_each_reconstruction(model, set, batch_size, device, |_, x, y| {
        out.push(x, y, shape)
    })?;
    Ok(out)
}

/// [`score_set`] for images of another size than the model's (one size for the whole set): a
/// fully convolutional model runs on each whole image, one with a dense code on Hann-blended
/// overlapping tiles (`crate::denoise::Denoiser`), and the map covers the image at its own size.
pub fn score_any_size(
    runner: &mut crate::denoise::Denoiser,
    set: &ImageSet,
    kind: ScoreKind,
    keep_reconstructions: bool,
) -> Result<ScoredSet, AnomalyError> {
    let shape = set.shape;
    let mut out = ScoredSet::with_capacity(kind, set.len(), keep_reconstructions);
    for i in 0..set.len() {
        let x = set.image(i);
        let y = runner.denoise(x, shape, &set.origins[i])?;
        out.push(x, &y, shape);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(c: usize, h: usize, w: usize) -> ImageShape {
        ImageShape {
            channels: c,
            height: h,
            width: w,
        }
    }

    #[test]
    fn parses_kinds_and_rejects_bad_sigma() {
        assert_eq!(ScoreKind::parse("mse", None, None), Ok(ScoreKind::Mse));
        assert_eq!(
            ScoreKind::parse("max-smoothed", None, None),
            Ok(ScoreKind::MaxSmoothed { sigma: 2.0 })
        );
        assert!(ScoreKind::parse("max-smoothed", Some(0.0), None).is_err());
        assert!(
            ScoreKind::parse("mse", Some(1.0), None)
                .unwrap_err()
                .to_string()
                .contains("--sigma")
        );
        assert!(
            ScoreKind::parse("psnr", None, None)
                .unwrap_err()
                .to_string()
                .contains("unknown score")
        );
        let json = serde_json::to_string(&ScoreKind::MaxSmoothed { sigma: 1.5 }).unwrap();
        assert_eq!(json, r#"{"kind":"max-smoothed","sigma":1.5}"#);
        assert_eq!(
            ScoreKind::parse("mask", None, None),
            Ok(ScoreKind::Mask {
                window: DEFAULT_WINDOW
            })
        );
        assert!(ScoreKind::parse("mask", None, Some(4)).is_err());
        assert!(
            ScoreKind::parse("mse", None, Some(9))
                .unwrap_err()
                .to_string()
                .contains("--window")
        );
    }

    #[test]
    fn mask_scores_the_filtered_prediction_and_fits_only_segmentation_models() {
        let s = shape(3, 8, 8);
        let x = vec![0.5f32; 3 * 64];
        let mut p = vec![0.0f32; 64];
        p[27] = 0.9;
        let k = ScoreKind::Mask { window: 3 };
        let map = k.map(&x, &p, s);
        assert!((map[27] - 0.1).abs() < 1e-6, "{}", map[27]);
        assert!((k.image_score(&x, &p, s, &map) - 0.1).abs() < 1e-6);
        let seg = crate::spec::ArchSpec::resolve("inspect", &[], None).unwrap();
        let rec = crate::spec::ArchSpec::resolve("upsample", &[], None).unwrap();
        assert!(k.check_model(&seg).is_ok());
        assert!(
            k.check_model(&rec)
                .unwrap_err()
                .to_string()
                .contains("reconstructs its input")
        );
        assert!(
            ScoreKind::Mse
                .check_model(&seg)
                .unwrap_err()
                .to_string()
                .contains("--score mask")
        );
        assert!(ScoreKind::Ssim.check_model(&rec).is_ok());
    }

    #[test]
    fn maps_and_scores_by_hand() {
        // Two channels, 1x2 image: errors (0.2, 0.0) in channel 0 and (0.4, 0.0) in channel 1.
        let s = shape(2, 1, 2);
        let x = [0.5, 0.5, 0.5, 0.5];
        let y = [0.3, 0.5, 0.1, 0.5];
        let mse = ScoreKind::Mse;
        let m = mse.map(&x, &y, s);
        assert!((m[0] - (0.04 + 0.16) / 2.0).abs() < 1e-6 && m[1] == 0.0);
        assert!((mse.image_score(&x, &y, s, &m) - 0.05).abs() < 1e-6);
        let m = ScoreKind::Mae.map(&x, &y, s);
        assert!((m[0] - 0.3).abs() < 1e-6);
        // Identical images: SSIM 1 → score 0, map 0.
        let same = ScoreKind::Ssim.map(&x, &x, s);
        assert!(same.iter().all(|v| v.abs() < 1e-6));
    }

    #[test]
    fn max_smoothed_finds_a_small_defect_that_the_mean_hides() {
        // 16x16: image A has a uniform small error everywhere, image B one bright 2x2 defect
        // with the same total squared error. MSE ties them; max-smoothed ranks B higher.
        let s = shape(1, 16, 16);
        let x = vec![0.5f32; 256];
        let a: Vec<f32> = x.iter().map(|v| v + 0.05).collect();
        let mut b = x.clone();
        let d = (0.05f32 * 0.05 * 256.0 / 4.0).sqrt();
        for p in [7 * 16 + 7, 7 * 16 + 8, 8 * 16 + 7, 8 * 16 + 8] {
            b[p] += d;
        }
        let score = |k: ScoreKind, y: &[f32]| k.image_score(&x, y, s, &k.map(&x, y, s));
        assert!((score(ScoreKind::Mse, &a) - score(ScoreKind::Mse, &b)).abs() < 1e-6);
        let k = ScoreKind::MaxSmoothed { sigma: 1.0 };
        assert!(score(k, &b) > 5.0 * score(k, &a));
    }

    #[test]
    fn blur_keeps_constants_and_mass_and_reflects() {
        let c = gaussian_blur(&[0.25; 20], (1, 4, 5), 1.5);
        assert!(c.iter().all(|v| (v - 0.25).abs() < 1e-6));
        let mut spike = vec![0.0f32; 81];
        spike[40] = 1.0;
        let b = gaussian_blur(&spike, (1, 9, 9), 1.0);
        let sum: f32 = b.iter().sum();
        assert!((sum - 1.0).abs() < 1e-3, "{sum}");
        assert!(b[40] > b[41] && b[41] > b[42] && (b[39] - b[41]).abs() < 1e-7);
    }
}
