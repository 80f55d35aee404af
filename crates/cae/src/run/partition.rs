//! The partitions of a run's data — which images it trains on, validates on, monitors and
//! tests on — derived from its saved config, so that training, resuming, thresholding,
//! evaluation and the baselines all see the same images.
//!
//! A run without a normal class splits its images (seeded) into training and validation. A
//! one-class run (`--normal-class`) has:
//!
//! 1. `test`: a seeded `test_fraction` of all images, every class — only `cae anomaly eval`
//!    sees it; never trained on, never used to fit a threshold;
//! 2. of the rest, a seeded `val_fraction` is the validation partition: its normal images drive
//!    early stopping and threshold fitting, its anomalous images are only watched;
//! 3. the remaining normal images are the training set (the remaining anomalous ones are unused).
//!
//! During training the held-out normal and anomalous validation images are logged per epoch
//! as the `normal_mse` and `anomalous_mse` columns of `metrics.csv` and drawn in `monitors.png`.

use super::config::{ConfigError, DataConfig, RunConfig};
use crate::data::{self, DataError, ImageSet};
use crate::infer::check_fits;
use crate::quote::quote;

/// Salt that makes the test split's shuffle independent of the validation split's.
const TEST_SALT: u64 = 0x7e57_7e57_5eed_0001;

/// A held-out set whose mean per-image reconstruction MSE is logged every epoch (e.g. held-out
/// normal and anomalous images in one-class training: the gap between the curves is what a
/// threshold exploits). It never influences training.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// Column name in `metrics.csv` (`<name>_mse`) and legend entry in `monitors.png`.
    pub name: String,
    pub images: ImageSet,
}

/// The images one run trains on, validates on and monitors.
#[derive(Debug, Clone)]
pub struct FitData {
    pub train: ImageSet,
    pub val: ImageSet,
    pub monitors: Vec<Monitor>,
}

/// Why a run's images could not be loaded or partitioned.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// Runs made by `cae import` come without data.
    #[error("the run records no data source (imported weights); pass --data SRC")]
    NoSource,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Load(#[from] DataError),
    /// The images do not fit the model (the message names the conversion to ask for).
    #[error(transparent)]
    Fit(#[from] crate::infer::InferError),
    #[error(
        "--test-fraction needs --normal-class (it holds out a test partition of a one-class run)"
    )]
    TestWithoutNormalClass,
    /// The named normal class is not in the data.
    #[error("{origin}: no class {class}; classes present: {available}", class = quote(.class))]
    UnknownClass {
        origin: String,
        class: String,
        available: String,
    },
    /// `--normal-class` on data without labels.
    #[error(
        "{origin} has no labels, so --normal-class {class} cannot apply; use labelled data (IDX with labels, class folders, .npy with <stem>_labels.npy)"
    )]
    Unlabelled { origin: String, class: String },
    #[error("test_fraction = {0}: must be at least 0 and below 1, e.g. 0.2")]
    TestFraction(f64),
    /// The splits left no normal image to train on.
    #[error(
        "{origin}: no image of the normal class '{class}' is left for training; lower --test-fraction or --val-fraction"
    )]
    NoNormalLeft { origin: String, class: String },
}

/// Loads every image the data settings name.
pub fn load_data(data: &DataConfig, seed: u64) -> Result<ImageSet, PartitionError> {
    if data.source.is_empty() {
        return Err(PartitionError::NoSource);
    }
    let options = data.load_options(seed)?;
    Ok(data::load(&data.source, &options)?)
}

/// Splits (seeded) into training and validation images.
pub fn split_data(
    all: ImageSet,
    data: &DataConfig,
    seed: u64,
) -> Result<(ImageSet, ImageSet), DataError> {
    if data.val_fraction == 0.0 {
        let empty = all.select(&[]);
        return Ok((all, empty));
    }
    all.split(data.val_fraction, seed)
}

/// The partitions of a one-class run.
#[derive(Debug, Clone)]
pub struct OneClassSplit {
    /// Normal training images.
    pub train: ImageSet,
    /// Held-out normal validation images.
    pub val: ImageSet,
    /// Held-out anomalous validation images.
    pub val_anomalous: ImageSet,
    /// The test partition, every class, labels kept.
    pub test: ImageSet,
    /// The label of the normal class.
    pub normal_label: u32,
}

/// Class names (or the label numbers present) for messages.
pub(crate) fn describe_classes(set: &ImageSet) -> String {
    if let Some(names) = &set.class_names {
        return names.join(", ");
    }
    let mut labels = set.labels.clone().unwrap_or_default();
    labels.sort_unstable();
    labels.dedup();
    labels
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The label that `class` names in `set`: a class-folder name, else a label number.
pub fn resolve_normal_class(
    set: &ImageSet,
    class: &str,
    source: &str,
) -> Result<u32, PartitionError> {
    let Some(labels) = &set.labels else {
        return Err(PartitionError::Unlabelled {
            origin: source.to_string(),
            class: class.to_string(),
        });
    };
    let by_name = set
        .class_names
        .as_ref()
        .and_then(|n| n.iter().position(|c| c == class))
        .map(|i| i as u32);
    let label = by_name.or_else(|| class.trim().parse::<u32>().ok());
    match label {
        Some(l) if labels.contains(&l) => Ok(l),
        _ => Err(PartitionError::UnknownClass {
            origin: source.to_string(),
            class: class.to_string(),
            available: describe_classes(set),
        }),
    }
}

/// Images of `set` whose label is (or is not) `label`.
pub(crate) fn with_label(set: &ImageSet, label: u32, keep: bool) -> ImageSet {
    let labels = set.labels.as_deref().unwrap_or_default();
    let idx: Vec<usize> = (0..set.len())
        .filter(|&i| (labels.get(i) == Some(&label)) == keep)
        .collect();
    set.select(&idx)
}

/// Splits a labelled set into the one-class partitions `data` describes.
pub fn one_class_split(
    all: ImageSet,
    data: &DataConfig,
    seed: u64,
) -> Result<OneClassSplit, PartitionError> {
    let class = data.normal_class.as_deref().unwrap_or_default();
    let normal_label = resolve_normal_class(&all, class, &data.source)?;
    let test_fraction = data.test_fraction.unwrap_or(0.0);
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(PartitionError::TestFraction(test_fraction));
    }
    let (rest, test) = if test_fraction > 0.0 {
        all.split(test_fraction, seed ^ TEST_SALT)?
    } else {
        let empty = all.select(&[]);
        (all, empty)
    };
    let (fit_part, val_part) = split_data(rest, data, seed)?;
    let train = with_label(&fit_part, normal_label, true);
    if train.is_empty() {
        return Err(PartitionError::NoNormalLeft {
            origin: data.source.clone(),
            class: class.to_string(),
        });
    }
    Ok(OneClassSplit {
        train,
        val: with_label(&val_part, normal_label, true),
        val_anomalous: with_label(&val_part, normal_label, false),
        test,
        normal_label,
    })
}

/// The images a run trains on, validates on and monitors: the plain seeded split, or, when the
/// data config names a normal class, the one-class partitions with the held-out normal and
/// anomalous validation images as monitors.
pub fn fit_data(all: ImageSet, config: &RunConfig) -> Result<FitData, PartitionError> {
    let seed = config.train.seed;
    if config.data.normal_class.is_none() {
        if config.data.test_fraction.is_some_and(|f| f > 0.0) {
            return Err(PartitionError::TestWithoutNormalClass);
        }
        let (train, val) = split_data(all, &config.data, seed)?;
        return Ok(FitData {
            train,
            val,
            monitors: vec![],
        });
    }
    let split = one_class_split(all, &config.data, seed)?;
    let monitors = vec![
        Monitor {
            name: "normal".into(),
            images: split.val.clone(),
        },
        Monitor {
            name: "anomalous".into(),
            images: split.val_anomalous,
        },
    ];
    Ok(FitData {
        train: split.train,
        val: split.val,
        monitors,
    })
}

/// Loads a run's data, checks it fits the model and partitions it as the run did.
pub fn load_fit_data(config: &RunConfig) -> Result<FitData, PartitionError> {
    let all = load_data(&config.data, config.train.seed)?;
    check_fits(all.shape, config.input_shape()?, &config.data.source)?;
    fit_data(all, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;

    /// 100 one-pixel images, labels i % 4, pixel value = index / 100.
    fn labelled() -> ImageSet {
        ImageSet {
            shape: ImageShape {
                channels: 1,
                height: 1,
                width: 1,
            },
            pixels: (0..100).map(|i| i as f32 / 100.0).collect(),
            labels: Some((0..100).map(|i| i % 4).collect()),
            class_names: None,
            origins: (0..100).map(|i| format!("t#{i}")).collect(),
        }
    }

    fn config(class: &str, test: f64) -> DataConfig {
        DataConfig {
            source: "t".into(),
            normal_class: Some(class.into()),
            test_fraction: Some(test),
            val_fraction: 0.2,
            ..DataConfig::default()
        }
    }

    #[test]
    fn partitions_are_disjoint_seeded_and_one_class() {
        let s = one_class_split(labelled(), &config("2", 0.2), 7).unwrap();
        assert_eq!(s.normal_label, 2);
        assert_eq!(s.test.len(), 20);
        let test_normal = with_label(&s.test, 2, true).len();
        assert_eq!(s.train.len() + s.val.len() + test_normal, 25);
        assert!(s.train.labels.as_ref().unwrap().iter().all(|&l| l == 2));
        assert!(s.val.labels.as_ref().unwrap().iter().all(|&l| l == 2));
        assert!(
            s.val_anomalous
                .labels
                .as_ref()
                .unwrap()
                .iter()
                .all(|&l| l != 2)
        );
        assert_eq!(s.val.len() + s.val_anomalous.len(), 16);
        let mut seen: Vec<&String> = s
            .train
            .origins
            .iter()
            .chain(&s.val.origins)
            .chain(&s.val_anomalous.origins)
            .chain(&s.test.origins)
            .collect();
        let n = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), n, "an image is in two partitions");
        // Same seed, same partitions.
        let again = one_class_split(labelled(), &config("2", 0.2), 7).unwrap();
        assert_eq!(again.test.origins, s.test.origins);
        assert_eq!(again.train.origins, s.train.origins);
    }

    #[test]
    fn normal_class_by_name_number_or_error() {
        let mut set = labelled();
        set.class_names = Some(vec!["a".into(), "b".into(), "good".into(), "d".into()]);
        assert_eq!(resolve_normal_class(&set, "good", "s").unwrap(), 2);
        assert_eq!(resolve_normal_class(&set, "3", "s").unwrap(), 3);
        let e = resolve_normal_class(&set, "cat", "s")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no class 'cat'") && e.contains("good"), "{e}");
        set.labels = None;
        let e = resolve_normal_class(&set, "1", "s")
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no labels"), "{e}");
    }

    #[test]
    fn bad_fractions_are_errors() {
        let e = one_class_split(labelled(), &config("1", 1.0), 1).unwrap_err();
        assert!(e.to_string().contains("test_fraction"), "{e}");
    }
}
