//! The images an anomaly command scores, read back through a run's data rule: a source the
//! command names (an MVTec AD folder's `test/`, labelled data with a normal class, unlabelled
//! data taken as all normal), or one of the run's own held-out partitions (validation, test,
//! the painted validation set). The rule itself (channels, resize, normalisation, partitions)
//! is the run contract's, `crate::run`; this module adds the truth labels, masks and painted
//! defects that only anomaly detection needs, so that `run` never depends on `anomaly`.

use super::painted::PaintedValidation;
use super::{AnomalyError, AnomalySet};
use crate::data::{self, LoadOptions, mvtec};
use crate::infer::check_fits;
use crate::run::partition::{
    FitData, describe_classes, fit_data, load_data, one_class_split, resolve_normal_class,
    split_data,
};
use crate::run::{
    DEFAULT_NORMAL_NAMES, DataRequest, LoadedRun, Partition, PartitionError, RunConfig,
};
use std::path::Path;

/// The images an anomaly command works on, with their truth: `request.source` (an MVTec AD
/// folder's `test/`, labelled data with a normal class, or unlabelled data, all normal),
/// else the run's own `partition`. Channels follow the run's `--channels`, as in `LoadedRun::data`.
pub fn anomaly_data(
    run: &LoadedRun,
    request: &DataRequest,
    partition: Partition,
) -> Result<AnomalySet, AnomalyError> {
    let config = &run.config;
    let input = config.input_shape()?;
    let options = request.options(config, config.data.channels)?;
    let set = match &request.source {
        Some(source) => load_source(source, config, request, &options)?,
        None => load_partition(&run.dir.root, config, partition)?.shard(request.shard),
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
    set.non_empty(hint)
}

fn load_source(
    source: &str,
    config: &RunConfig,
    request: &DataRequest,
    options: &LoadOptions,
) -> Result<AnomalySet, AnomalyError> {
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
            return Err(PartitionError::Unlabelled {
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
            });
        }
        let painted = PaintedValidation::new(
            &val,
            &train,
            config.train.synthetic.as_ref(),
            config.data.partition_seed(seed),
        )
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
                let mut images = split.val;
                images.append(split.val_anomalous)?;
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
        }),
    }
}
