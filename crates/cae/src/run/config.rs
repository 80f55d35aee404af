//! What a training run is made of — data, optimisation and loss settings — with the defaults in
//! one place. Config files and the CLI fill the same structs; unknown keys are errors.

use crate::data::{DataError, ImageShape, LoadOptions, Normalize};
use crate::device::DeviceKind;
use crate::quote::{InvalidValue, quote};
use serde::{Deserialize, Serialize};

/// A setting that cannot be used as given.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An `HxW` size that is not one.
    #[error("size {}: expected HxW{}, e.g. 64x64", quote(text), if *positive { " with positive integers" } else { "" })]
    Size {
        text: String,
        /// The form was right but a side was not a positive integer.
        positive: bool,
    },
    /// A number outside its range: `epochs must be at least 1`, `lr must be a positive
    /// number, got NaN`.
    #[error("{setting} must be {rule}{}", got.as_ref().map(|g| format!(", got {g}")).unwrap_or_default())]
    Range {
        setting: &'static str,
        rule: &'static str,
        got: Option<String>,
    },
    /// Settings that do not combine (the message says which and what to do).
    #[error("{0}")]
    Conflict(String),
    /// The recorded input shape does not parse.
    #[error(transparent)]
    Input(#[from] DataError),
}

impl ConfigError {
    fn range(setting: &'static str, rule: &'static str, got: Option<String>) -> ConfigError {
        ConfigError::Range { setting, rule, got }
    }
}

/// Where the images come from and how they are prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// A path (IDX, .npy, CIFAR .bin, image folder) or `builtin:shapes`.
    pub source: String,
    pub channels: Option<usize>,
    /// `HxW`
    pub resize: Option<String>,
    pub classes: Option<Vec<u32>>,
    pub limit: Option<usize>,
    /// Share of the images held out for validation (seeded split).
    pub val_fraction: f64,
    /// One-class training: the normal class (a label number, or a class-folder name such as
    /// `good`); only its images are trained on, every other class is anomalous. See
    /// `crate::run::partition`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normal_class: Option<String>,
    /// One-class training: share of all images held out (seeded) as the test partition that
    /// `cae anomaly eval` uses; never trained on nor used for thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// Per-image brightness normalisation, applied wherever the run's images are loaded
    /// (training, every later command, `cae serve`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalize>,
    /// What the source gave when the run started (count, shape, content hash), written by
    /// `cae train`; `--resume` warns when the source now gives other images. Runs from before
    /// fingerprints have none and get one on their next resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<crate::data::Fingerprint>,
    /// Training reads the training images from their files a batch at a time instead of
    /// decoding the whole folder into memory (`--stream`; image folders and MVTec layouts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// A streamed training image that cannot be read is left out of its epoch and counted
    /// instead of stopping the run (`--skip-bad`; only with `stream`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_bad: bool,
    /// MiB of decoded training images a streamed run keeps between epochs (`--cache-mb`; only
    /// with `stream`); the values trained on are the same with or without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_mb: Option<u64>,
    /// Seeds the training/validation (and test) split apart from the run's seed
    /// (`--split-seed`), so runs of several seeds hold out the same images: what an ensemble,
    /// or a comparison of seeds on one validation set, needs. Unset: the run's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: String::new(),
            channels: None,
            resize: None,
            classes: None,
            limit: None,
            val_fraction: 0.1,
            normal_class: None,
            test_fraction: None,
            normalize: None,
            fingerprint: None,
            stream: false,
            skip_bad: false,
            cache_mb: None,
            split_seed: None,
        }
    }
}

impl DataConfig {
    /// The seed of the partitions: `split_seed`, else the run's `seed`.
    pub fn partition_seed(&self, seed: u64) -> u64 {
        self.split_seed.unwrap_or(seed)
    }
}

/// Why `skip_bad` needs `stream`.
const SKIP_BAD_WITHOUT_STREAM: &str = "--skip-bad leaves out files that go bad while a --stream run reads them; a run without --stream decodes every file before training starts, where a bad one is reported at once: add --stream, or remove the file";

/// Why `cache_mb` needs `stream`.
const CACHE_WITHOUT_STREAM: &str = "--cache-mb keeps decoded images between the epochs of a --stream run; a run without --stream holds every image in memory already: add --stream, or drop --cache-mb";

impl DataConfig {
    /// The loader options these settings stand for.
    pub fn load_options(&self, seed: u64) -> Result<LoadOptions, ConfigError> {
        let resize = match &self.resize {
            None => None,
            Some(s) => Some(parse_hw(s)?),
        };
        if self.skip_bad && !self.stream {
            return Err(ConfigError::Conflict(SKIP_BAD_WITHOUT_STREAM.to_string()));
        }
        if self.cache_mb.is_some() && !self.stream {
            return Err(ConfigError::Conflict(CACHE_WITHOUT_STREAM.to_string()));
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(ConfigError::range(
                "val_fraction",
                "in [0, 1)",
                Some(self.val_fraction.to_string()),
            ));
        }
        Ok(LoadOptions {
            channels: self.channels,
            resize,
            classes: self.classes.clone(),
            limit: self.limit,
            normalize: self.normalize,
            seed,
            shard: None,
            window: None,
        })
    }
}

/// Parses `HxW` (e.g. `64x64`).
/// An image size as the user writes it, `HxW` (`--resize 128x128`), checked when parsed: the
/// type a command-line flag takes, so a bad size is refused before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hw {
    pub height: usize,
    pub width: usize,
}

impl std::str::FromStr for Hw {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Hw, ConfigError> {
        let (height, width) = parse_hw(s)?;
        Ok(Hw { height, width })
    }
}

impl std::fmt::Display for Hw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

pub fn parse_hw(s: &str) -> Result<(usize, usize), ConfigError> {
    let size = |positive| ConfigError::Size {
        text: s.to_string(),
        positive,
    };
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(|| size(false))?;
    match (h.trim().parse::<usize>(), w.trim().parse::<usize>()) {
        (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok((h, w)),
        _ => Err(size(true)),
    }
}

/// The training objective.
///
/// Stored in configs as its text (`"mse"`, `"ssim"`, `"mse+ssim:0.5"`), so run configs written
/// before the SSIM losses existed still load.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LossKind {
    /// Mean squared error per pixel (PyTorch `MSELoss`).
    #[default]
    Mse,
    /// Binary cross-entropy per pixel (needs outputs in (0, 1): a sigmoid last layer).
    Bce,
    /// Mean absolute error per pixel.
    L1,
    /// ½‖I − Ĩ‖² per image, averaged over the batch (the galeone CAE's objective).
    Sse,
    /// `1 − SSIM` (11×11 Gaussian window, as `cae eval` measures it).
    Ssim,
    /// `(1 − w)·MSE + w·(1 − SSIM)` with the SSIM weight `w` in [0, 1].
    MseSsim(f64),
    /// Focal loss (γ = 2, Lin et al. 2017) of a predicted anomaly map against the synthetic
    /// anomaly mask: segmentation runs (`--synthetic`). Needs outputs in (0, 1).
    Focal,
}

impl std::str::FromStr for LossKind {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let unknown = |other: &str| {
            InvalidValue::new(
                "unknown loss",
                other,
                "expected mse, bce, l1, sse, ssim, mse+ssim:WEIGHT (e.g. mse+ssim:0.5) or focal",
            )
        };
        match s.trim() {
            "mse" => Ok(LossKind::Mse),
            "bce" => Ok(LossKind::Bce),
            "l1" | "mae" => Ok(LossKind::L1),
            "sse" => Ok(LossKind::Sse),
            "ssim" => Ok(LossKind::Ssim),
            "focal" => Ok(LossKind::Focal),
            "mse+ssim" => Ok(LossKind::MseSsim(0.5)),
            other => match other.strip_prefix("mse+ssim:") {
                Some(w) => match w.trim().parse::<f64>() {
                    Ok(w) if (0.0..=1.0).contains(&w) => Ok(LossKind::MseSsim(w)),
                    _ => Err(InvalidValue::new(
                        "loss",
                        other,
                        "the SSIM weight must be a number in [0, 1], e.g. mse+ssim:0.5",
                    )),
                },
                None => Err(unknown(other)),
            },
        }
    }
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LossKind::Mse => f.write_str("mse"),
            LossKind::Bce => f.write_str("bce"),
            LossKind::L1 => f.write_str("l1"),
            LossKind::Sse => f.write_str("sse"),
            LossKind::Ssim => f.write_str("ssim"),
            LossKind::MseSsim(w) => write!(f, "mse+ssim:{w}"),
            LossKind::Focal => f.write_str("focal"),
        }
    }
}

impl Serialize for LossKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for LossKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LossKind, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam L2 weight decay.
    pub weight_decay: f64,
    pub loss: LossKind,
    /// Same seed, same machine → same weights.
    pub seed: u64,
    /// Stop after this many epochs without a better validation loss.
    pub patience: Option<usize>,
    pub device: DeviceKind,
    /// Corruption of the training inputs (denoising autoencoder); the targets stay clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<crate::noise::NoiseSpec>,
    /// Greedy layer-wise pretraining of the encoder's conv layers before end-to-end training
    /// (stacked CAEs, Masci et al. 2011).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stacked: bool,
    /// Epochs per pretraining stage of a stacked run (default: `epochs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_epochs: Option<usize>,
    /// Segmentation training: normal inputs corrupted on the fly with these synthetic
    /// anomalies, the target being where they were painted (`crate::synthetic`). Needs a
    /// segmentation architecture (`output_channels`, e.g. the `inspect` preset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<crate::synthetic::SyntheticSpec>,
    /// Seeded augmentation of the training images (before any corruption); off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<crate::data::Augment>,
    /// How the learning rate changes over the epochs.
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    pub schedule: LrSchedule,
    /// Which weights every later command uses: `best` (lowest validation loss) or `last`.
    /// Unset means [`Keep::default_for`] the schedule when a run is made; a run's config always
    /// records it, and configs from before it existed read as `best`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<Keep>,
}

/// The weights a run is used with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// `best.bpk`: the epoch with the lowest validation loss.
    #[default]
    Best,
    /// `last.bpk`: the last finished epoch.
    Last,
}

impl Keep {
    /// `last` after a full cosine schedule, which anneals the rate to 0 so that the final
    /// weights are the settled model (what DRAEM and the PyTorch twins score); `best` otherwise:
    /// a constant rate keeps the weights moving, and early stopping (`patience`) ends
    /// `patience` epochs after the best one, before the annealing.
    pub fn default_for(schedule: LrSchedule, patience: Option<usize>) -> Keep {
        match (schedule, patience) {
            (LrSchedule::Cosine, None) => Keep::Last,
            _ => Keep::Best,
        }
    }
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Keep::Best => "best",
            Keep::Last => "last",
        })
    }
}

impl std::str::FromStr for Keep {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Keep, InvalidValue> {
        match s.trim() {
            "best" => Ok(Keep::Best),
            "last" => Ok(Keep::Last),
            other => Err(InvalidValue::new(
                "--keep",
                other,
                "expected best (lowest validation loss) or last (last epoch)",
            )),
        }
    }
}

/// The learning rate of each epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// `lr` throughout.
    #[default]
    Constant,
    /// Half a cosine from `lr` at the first epoch towards 0 after the last (Loshchilov & Hutter
    /// 2017): large steps early, a settled model at the end.
    Cosine,
}

impl LrSchedule {
    fn is_constant(&self) -> bool {
        *self == LrSchedule::Constant
    }

    /// The rate of epoch `epoch` (1-based) of `epochs`.
    pub fn rate(self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let t = (epoch.saturating_sub(1)) as f64 / epochs.max(1) as f64;
                lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

impl std::str::FromStr for LrSchedule {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<LrSchedule, InvalidValue> {
        match s.trim() {
            "constant" => Ok(LrSchedule::Constant),
            "cosine" => Ok(LrSchedule::Cosine),
            other => Err(InvalidValue::new(
                "unknown learning-rate schedule",
                other,
                "expected constant or cosine",
            )),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 0.0,
            loss: LossKind::Mse,
            seed: 42,
            patience: None,
            device: DeviceKind::Flex,
            noise: None,
            stacked: false,
            stack_epochs: None,
            synthetic: None,
            augment: None,
            schedule: LrSchedule::Constant,
            keep: None,
        }
    }
}

impl TrainConfig {
    /// Checks ranges before any work starts.
    pub fn check(&self) -> Result<(), ConfigError> {
        let range = ConfigError::range;
        if self.epochs == 0 {
            return Err(range("epochs", "at least 1", None));
        }
        if self.batch_size == 0 {
            return Err(range("batch_size", "at least 1", None));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(range("lr", "a positive number", Some(self.lr.to_string())));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(range(
                "weight_decay",
                "≥ 0",
                Some(self.weight_decay.to_string()),
            ));
        }
        if self.patience == Some(0) {
            return Err(range("patience", "at least 1", None));
        }
        if self.stack_epochs == Some(0) {
            return Err(range("stack_epochs", "at least 1", None));
        }
        let conflict = |m: &str| Err(ConfigError::Conflict(m.to_string()));
        if self.synthetic.is_some() && self.noise.is_some() {
            return conflict(
                "--synthetic and --noise do not combine: a segmentation run's inputs are corrupted by its synthetic anomalies",
            );
        }
        if self.synthetic.is_some() && self.stacked {
            return conflict(
                "--stacked pretrains a reconstruction; it does not apply to --synthetic (segmentation) runs",
            );
        }
        let segmentation = self.synthetic.is_some();
        match self.loss {
            LossKind::Focal | LossKind::Bce if segmentation => Ok(()),
            other if segmentation => conflict(&format!(
                "loss {other} compares reconstructions; a --synthetic (segmentation) run predicts a mask: use --loss focal or bce"
            )),
            LossKind::Focal => conflict(
                "loss focal scores a predicted anomaly mask; it needs --synthetic (a segmentation run)",
            ),
            _ => Ok(()),
        }
    }
}

/// Everything a run was trained with: written to `config.toml` in the run directory and read
/// back by every later command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The resolved architecture (parameters filled in).
    pub arch: crate::spec::ArchSpec,
    /// The shape the model takes.
    pub input: String,
    pub data: DataConfig,
    pub train: TrainConfig,
}

impl RunConfig {
    /// The shape the model takes, as recorded.
    pub fn input_shape(&self) -> Result<ImageShape, ConfigError> {
        Ok(ImageShape::parse(&self.input)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_losses() {
        assert_eq!(parse_hw("64x32").unwrap(), (64, 32));
        assert_eq!(
            parse_hw("64").unwrap_err().to_string(),
            "size '64': expected HxW, e.g. 64x64"
        );
        assert_eq!(
            parse_hw("0x3").unwrap_err().to_string(),
            "size '0x3': expected HxW with positive integers, e.g. 64x64"
        );
        assert_eq!("bce".parse::<LossKind>(), Ok(LossKind::Bce));
        assert!(
            "ssim2"
                .parse::<LossKind>()
                .unwrap_err()
                .to_string()
                .contains("unknown loss 'ssim2'")
        );
    }

    #[test]
    fn checks_ranges() {
        assert!(TrainConfig::default().check().is_ok());
        assert!(
            TrainConfig {
                epochs: 0,
                ..Default::default()
            }
            .check()
            .is_err()
        );
        assert!(
            TrainConfig {
                lr: f64::NAN,
                ..Default::default()
            }
            .check()
            .is_err()
        );
        assert!(
            TrainConfig {
                patience: Some(0),
                ..Default::default()
            }
            .check()
            .is_err()
        );
        let data = DataConfig {
            val_fraction: 1.0,
            ..Default::default()
        };
        assert_eq!(
            data.load_options(0).unwrap_err().to_string(),
            "val_fraction must be in [0, 1), got 1"
        );
        let lr = TrainConfig {
            lr: -1.0,
            ..Default::default()
        };
        assert!(matches!(
            lr.check().unwrap_err(),
            ConfigError::Range { setting: "lr", got: Some(g), .. } if g == "-1"
        ));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<TrainConfig>("epochs = 3\nlearning_rate = 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("learning_rate"), "{e}");
        let t: TrainConfig = toml::from_str("epochs = 3\nloss = \"bce\"\n").unwrap();
        assert_eq!((t.epochs, t.loss, t.batch_size), (3, LossKind::Bce, 64));
    }
}
