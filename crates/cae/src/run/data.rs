//! The data rule: how a run's images are loaded after training, in one place, so that every
//! command, the server and the benches read a run's data the same way. A run's config records
//! what its training loader did (`--channels`, `--resize`, `--normalize`, the seed); a
//! [`DataRequest`] says what a command was pointed at and which of those settings it overrides;
//! [`LoadedRun::data`] and [`LoadedRun::anomaly_data`] turn the two into images, or, with no
//! source, into the run's own held-out partitions ([`Partition`]). The server, which takes one
//! uploaded image at a time, reads the same rule through [`ImageRule`].
//!
//! One channel rule for every command and the server: colour is converted only as the run's
//! `--channels` (or the command's own `--channels`) says, and images with another channel
//! count than the model's are an error that names the flag to pass — never a silent
//! conversion. Sizes differ in one place only: [`LoadedRun::anomaly_data`] scores other sizes
//! at their own size when the run was trained without `--resize` (whole or in tiles).

use super::LoadedRun;
use super::config::{ConfigError, RunConfig, parse_hw};
use super::partition::{
    FitData, describe_classes, fit_data, load_data, one_class_split, resolve_normal_class,
    split_data,
};
use crate::anomaly::painted::PaintedValidation;
use crate::anomaly::{AnomalyError, AnomalySet};
use crate::data::{self, DataError, ImageSet, ImageShape, LoadOptions, Normalize, Shard, mvtec};
use crate::infer::check_fits;
use std::path::Path;

/// Class-folder names taken as the normal class when none is named.
pub const DEFAULT_NORMAL_NAMES: [&str; 2] = ["good", "normal"];

/// Why a run's images could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RunDataError {
    /// The run's config does not state a usable rule (its input shape or `resize`).
    #[error("{0}")]
    Rule(String),
    /// A recorded setting does not parse (its input shape, its `resize`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No source was given, and only the anomaly commands fall back on the run's partitions.
    #[error("--data is required (a path or builtin:shapes)")]
    NoSource,
    /// The source could not be loaded.
    #[error(transparent)]
    Load(#[from] DataError),
    /// The images do not fit the model; the message names the conversion to ask for.
    #[error(transparent)]
    Fit(#[from] crate::infer::InferError),
    /// The source holds no image.
    #[error("{origin}: no images")]
    Empty { origin: String },
    /// The run's own partitions could not be rebuilt.
    #[error(transparent)]
    Partition(#[from] crate::run::PartitionError),
    /// An MVTec AD folder is malformed.
    #[error(transparent)]
    Layout(#[from] crate::data::mvtec::MvtecError),
    /// The images have no usable truth (no normal class, an unknown one, no such partition).
    #[error(transparent)]
    Anomaly(#[from] AnomalyError),
}

/// Which held-out part of a run's own data to use when no source is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Validation images: threshold fitting.
    Validation,
    /// Test images: evaluation and scoring.
    Test,
    /// The normal validation images, then every other one again with a painted defect
    /// (`crate::anomaly::painted`): training's `val_auroc` set, with masks, for choosing score
    /// settings without real defects.
    Painted,
}

/// What a command asks of a run's data: a source (or none, for the run's own partitions) and
/// the settings it overrides; everything left `None` is the run's own.
#[derive(Debug, Clone, Default)]
pub struct DataRequest {
    /// A data source; `None` means the run's own held-out partition.
    pub source: Option<String>,
    /// The normal class of labelled data (default: the run's, then a `good`/`normal` folder).
    pub normal_class: Option<String>,
    /// Force 1 or 3 channels (default: see the module docs).
    pub channels: Option<usize>,
    /// Resize to (height, width) (default: the run's `resize`).
    pub resize: Option<(usize, usize)>,
    /// Keep only these labels.
    pub classes: Option<Vec<u32>>,
    /// Use only the first N images.
    pub limit: Option<usize>,
    /// Keep only this block of the images.
    pub shard: Option<Shard>,
}

impl DataRequest {
    /// A request for `source` with the run's own settings.
    pub fn source(source: impl Into<String>) -> DataRequest {
        DataRequest {
            source: Some(source.into()),
            ..DataRequest::default()
        }
    }

    /// The loader options for `config`'s run, channels defaulting to `channels`.
    fn options(
        &self,
        config: &RunConfig,
        channels: Option<usize>,
    ) -> Result<LoadOptions, ConfigError> {
        let resize = match self.resize {
            Some(hw) => Some(hw),
            None => config.data.resize.as_deref().map(parse_hw).transpose()?,
        };
        Ok(LoadOptions {
            channels: self.channels.or(channels),
            resize,
            classes: self.classes.clone(),
            limit: self.limit,
            normalize: config.data.normalize,
            seed: config.train.seed,
            shard: self.shard,
        })
    }
}

/// The rule for single images (the server's uploads), read from a run's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRule {
    /// What the model takes.
    pub input: ImageShape,
    /// True when the run was trained with `--resize`: other sizes are resized to `input`.
    pub resize: bool,
    /// The channel count the run forced with `--channels`.
    pub channels: Option<usize>,
    /// The run's per-image brightness normalisation, applied last.
    pub normalize: Option<Normalize>,
}

impl ImageRule {
    /// The rule of `config`; a `resize` that contradicts the input is an error.
    pub fn of(config: &RunConfig) -> Result<ImageRule, RunDataError> {
        let input = config.input_shape()?;
        let resize = match config.data.resize.as_deref() {
            Some(hw) => {
                let (h, w) = parse_hw(hw)?;
                if (h, w) != (input.height, input.width) {
                    return Err(RunDataError::Rule(format!(
                        "the run resized to {h}x{w} but its model takes {input}; the config is inconsistent"
                    )));
                }
                true
            }
            None => false,
        };
        Ok(ImageRule {
            input,
            resize,
            channels: config.data.channels,
            normalize: config.data.normalize,
        })
    }
}

impl LoadedRun {
    /// The images of `request.source` for this run's model: channels and size default to the
    /// conversions the run was trained with (`--channels`, `--resize` in its config), never to
    /// a silent conversion of images that do not fit: those are an error that names the flag
    /// to pass.
    pub fn data(&self, request: &DataRequest) -> Result<ImageSet, RunDataError> {
        let Some(source) = &request.source else {
            return Err(RunDataError::NoSource);
        };
        let input = self.config.input_shape()?;
        let options = request.options(&self.config, self.config.data.channels)?;
        let set = data::load(source, &options)?;
        check_fits(set.shape, input, source)?;
        if set.is_empty() {
            return Err(RunDataError::Empty {
                origin: source.clone(),
            });
        }
        Ok(set)
    }

    /// The images an anomaly command works on, with their truth: `request.source` (an MVTec AD
    /// folder's `test/`, labelled data with a normal class, or unlabelled data, all normal),
    /// else the run's own `partition`. Channels follow the run's `--channels`, as in [`LoadedRun::data`].
    pub fn anomaly_data(
        &self,
        request: &DataRequest,
        partition: Partition,
    ) -> Result<AnomalySet, RunDataError> {
        let config = &self.config;
        let input = config.input_shape()?;
        let options = request.options(config, config.data.channels)?;
        let set = match &request.source {
            Some(source) => load_source(source, config, request, &options)?,
            None => load_partition(&self.dir.root, config, partition)?.shard(request.shard),
        };
        // A run trained without --resize scores images of other sizes at their own size (whole,
        // or in tiles: `score::score_any_size`); only the channels must match.
        let native = config.data.resize.is_none() && request.resize.is_none();
        if !(native && set.images.shape.channels == input.channels) {
            check_fits(set.images.shape, input, &set.source)?;
        }
        let hint = match &request.source {
            Some(_) => "point --data at a folder or file with images",
            None => "pass --data SRC",
        };
        Ok(set.non_empty(hint)?)
    }
}

/// Joins two sets of the same shape.
fn concat(mut a: ImageSet, b: ImageSet) -> ImageSet {
    a.pixels.extend_from_slice(&b.pixels);
    a.origins.extend(b.origins);
    if let (Some(la), Some(lb)) = (a.labels.as_mut(), b.labels) {
        la.extend(lb);
    }
    a
}

fn load_source(
    source: &str,
    config: &RunConfig,
    request: &DataRequest,
    options: &LoadOptions,
) -> Result<AnomalySet, RunDataError> {
    let path = Path::new(source);
    if path.is_dir() && mvtec::is_layout(path) {
        let t = mvtec::load_test(path, options)?;
        let set = AnomalySet {
            anomalous: t.images.labels.iter().flatten().map(|&l| l != 0).collect(),
            images: t.images,
            masks: Some(t.masks),
            source: format!("{source} (test/)"),
        };
        return Ok(set.shard(options.shard));
    }
    let images = data::load(source, options)?;
    let named = request
        .normal_class
        .as_deref()
        .or(config.data.normal_class.as_deref());
    if images.labels.is_none() {
        if let Some(class) = request.normal_class.as_deref() {
            return Err(AnomalyError::Unlabelled {
                origin: source.to_string(),
                class: class.to_string(),
            }
            .into());
        }
        return Ok(AnomalySet::all_normal(images, source));
    }
    let default = images.class_names.as_ref().and_then(|names| {
        DEFAULT_NORMAL_NAMES
            .iter()
            .find(|n| names.iter().any(|c| c == *n))
            .map(|n| n.to_string())
    });
    let Some(class) = named.map(str::to_string).or(default) else {
        return Err(AnomalyError::NoNormalClass {
            origin: source.to_string(),
            available: describe_classes(&images),
        }
        .into());
    };
    let normal = resolve_normal_class(&images, &class, source)?;
    Ok(AnomalySet::one_vs_rest(images, normal, source))
}

fn load_partition(
    run: &Path,
    config: &RunConfig,
    partition: Partition,
) -> Result<AnomalySet, RunDataError> {
    let run_name = run.display().to_string();
    let seed = config.train.seed;
    let all = load_data(&config.data, seed)?;
    let what = match partition {
        Partition::Validation => "validation",
        Partition::Test => "test",
        Partition::Painted => "painted validation",
    };
    let source = format!("the {what} partition of {run_name}");
    if partition == Partition::Painted {
        // Training's own partitions, so this is exactly the set `val_auroc` was logged on.
        let FitData { train, val, .. } = fit_data(all, config)?;
        if val.is_empty() {
            return Err(AnomalyError::NoPartition {
                run: run_name,
                reason:
                    "the run holds out no validation images (it was trained with --val-fraction 0)"
                        .into(),
            }
            .into());
        }
        let painted = PaintedValidation::new(&val, &train, config.train.synthetic.as_ref(), seed)
            .ok_or_else(|| AnomalyError::NoPartition {
                run: run_name.clone(),
                reason: format!(
                    "defects are painted on square grey images, or with the run's --synthetic anomalies; its images are {} and it was trained without --synthetic",
                    val.shape
                ),
            })?;
        return Ok(painted.anomaly_set(&val, &source));
    }
    if config.data.normal_class.is_some() {
        let split = one_class_split(all, &config.data, seed)?;
        return Ok(match partition {
            Partition::Validation => {
                let images = concat(split.val, split.val_anomalous);
                AnomalySet::one_vs_rest(images, split.normal_label, &source)
            }
            Partition::Test if split.test.is_empty() => {
                return Err(AnomalyError::NoPartition {
                    run: run_name,
                    reason: "the run holds out no test partition (it was trained without --test-fraction)"
                        .into(),
                }.into());
            }
            Partition::Test | Partition::Painted => {
                AnomalySet::one_vs_rest(split.test, split.normal_label, &source)
            }
        });
    }
    let root = Path::new(&config.data.source);
    match partition {
        Partition::Validation => {
            let (_, val) = split_data(all, &config.data, seed)?;
            Ok(AnomalySet::all_normal(val, &source))
        }
        Partition::Test if root.is_dir() && mvtec::is_layout(root) => {
            let options = config
                .data
                .load_options(seed)?;
            let t = mvtec::load_test(root, &options)?;
            Ok(AnomalySet {
                anomalous: t.images.labels.iter().flatten().map(|&l| l != 0).collect(),
                images: t.images,
                masks: Some(t.masks),
                source: format!("{} (test/)", config.data.source),
            })
        }
        Partition::Test | Partition::Painted => Err(AnomalyError::NoPartition {
            run: run_name,
            reason: "the run has no test partition (train with --normal-class C --test-fraction F, or on an MVTec AD folder)".into(),
        }.into()),
    }
}
