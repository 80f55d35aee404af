//! What an anomaly command scores: images with a normal/anomalous truth and, when known,
//! ground-truth masks — from a labelled set and a normal class (MNIST one-vs-rest), from an
//! MVTec AD folder (`test/` with masks), from a `normal/` + `abnormal/` folder pair, from an
//! unlabelled source (all normal), or from a run's own held-out partitions.

use super::error::AnomalyError;
use super::painted::PaintedValidation;
use super::partition::{describe_classes, one_class_split, resolve_normal_class};
use crate::data::{self, ImageSet, LoadOptions, mvtec};
use crate::infer::check_fits;
use crate::train::{FitData, RunConfig, load_data, split_data};
use std::path::Path;

/// Class-folder names taken as the normal class when none is named.
pub const DEFAULT_NORMAL_NAMES: [&str; 2] = ["good", "normal"];

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
        let keep: Vec<usize> = shard.range(self.images.len()).collect();
        AnomalySet {
            images: self.images.select(&keep),
            anomalous: keep.iter().map(|&i| self.anomalous[i]).collect(),
            masks: self
                .masks
                .map(|m| keep.iter().map(|&i| m[i].clone()).collect()),
            source: format!("{} (shard {}/{})", self.source, shard.index, shard.count),
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

/// Which held-out part of a run's own data to use when no `--data` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Validation images: threshold fitting.
    Validation,
    /// Test images: evaluation and scoring.
    Test,
    /// The normal validation images, then every other one again with a painted defect
    /// ([`super::painted`]): training's `val_auroc` set, with masks, for choosing score
    /// settings without real defects.
    Painted,
}

/// Where an anomaly command's images come from.
#[derive(Debug, Clone, Default)]
pub struct DataRequest {
    /// A data source; `None` means the run's own held-out partition.
    pub source: Option<String>,
    /// The normal class of labelled data (default: the run's, then a `good`/`normal` folder).
    pub normal_class: Option<String>,
    /// How to load `source` (channels and size should match the model).
    pub options: LoadOptions,
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

/// Loads the images a command asked for; see the module docs.
pub fn load_set(
    run: &Path,
    config: &RunConfig,
    request: &DataRequest,
    partition: Partition,
) -> Result<AnomalySet, AnomalyError> {
    let input = config.input_shape().map_err(AnomalyError::Model)?;
    let set = match &request.source {
        Some(source) => load_source(source, config, request)?,
        None => load_partition(run, config, partition)?.shard(request.options.shard),
    };
    // A run trained without --resize scores images of other sizes at their own size (whole, or
    // in tiles: `score::score_any_size`); only the channels must match.
    let native = config.data.resize.is_none() && request.options.resize.is_none();
    if !(native && set.images.shape.channels == input.channels) {
        check_fits(set.images.shape, input, &set.source).map_err(AnomalyError::Model)?;
    }
    let hint = match &request.source {
        Some(_) => "point --data at a folder or file with images",
        None => "pass --data SRC",
    };
    set.non_empty(hint)
}

fn load_source(
    source: &str,
    config: &RunConfig,
    request: &DataRequest,
) -> Result<AnomalySet, AnomalyError> {
    let path = Path::new(source);
    if path.is_dir() && mvtec::is_layout(path) {
        let t = mvtec::load_test(path, &request.options)?;
        let set = AnomalySet {
            anomalous: t.images.labels.iter().flatten().map(|&l| l != 0).collect(),
            images: t.images,
            masks: Some(t.masks),
            source: format!("{source} (test/)"),
        };
        return Ok(set.shard(request.options.shard));
    }
    let images = data::load(source, &request.options)?;
    let named = request
        .normal_class
        .as_deref()
        .or(config.data.normal_class.as_deref());
    if images.labels.is_none() {
        if let Some(class) = request.normal_class.as_deref() {
            return Err(AnomalyError::Unlabelled {
                origin: source.to_string(),
                class: class.to_string(),
            });
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
        });
    };
    let normal = resolve_normal_class(&images, &class, source)?;
    Ok(AnomalySet::one_vs_rest(images, normal, source))
}

fn load_partition(
    run: &Path,
    config: &RunConfig,
    partition: Partition,
) -> Result<AnomalySet, AnomalyError> {
    let run_name = run.display().to_string();
    let seed = config.train.seed;
    let all = load_data(&config.data, seed).map_err(AnomalyError::Model)?;
    let what = match partition {
        Partition::Validation => "validation",
        Partition::Test => "test",
        Partition::Painted => "painted validation",
    };
    let source = format!("the {what} partition of {run_name}");
    if partition == Partition::Painted {
        // Training's own partitions, so this is exactly the set `val_auroc` was logged on.
        let FitData { train, val, .. } =
            super::partition::fit_data(all, config).map_err(AnomalyError::Model)?;
        if val.is_empty() {
            return Err(AnomalyError::NoPartition {
                run: run_name,
                reason:
                    "the run holds out no validation images (it was trained with --val-fraction 0)"
                        .into(),
            });
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
                });
            }
            Partition::Test | Partition::Painted => {
                AnomalySet::one_vs_rest(split.test, split.normal_label, &source)
            }
        });
    }
    let root = Path::new(&config.data.source);
    match partition {
        Partition::Validation => {
            let (_, val) = split_data(all, &config.data, seed).map_err(AnomalyError::Model)?;
            Ok(AnomalySet::all_normal(val, &source))
        }
        Partition::Test if root.is_dir() && mvtec::is_layout(root) => {
            let options = config
                .data
                .load_options(seed)
                .map_err(AnomalyError::Model)?;
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
        }),
    }
}
