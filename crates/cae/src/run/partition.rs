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
use crate::data::{
    self, DataError, FileSet, ImageSet, Partitionable, decode_workers, split_indices,
};
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

/// The images one run trains on, validates on and monitors. The training images are an
/// [`ImageSet`] in memory, or for training (`--stream`) a [`TrainImages`].
#[derive(Debug, Clone)]
pub struct FitData<T = ImageSet> {
    pub train: T,
    pub val: T,
    pub monitors: Vec<Monitor>,
}

/// The images training draws its batches from and validates on: in memory, or an image folder
/// read a batch at a time (`--stream`; a denoising or segmentation run's validation images and
/// a one-class run's monitor images are decoded into memory once).
#[derive(Debug, Clone)]
pub enum TrainImages {
    Memory(ImageSet),
    Files(FileSet),
}

impl TrainImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            TrainImages::Memory(set) => set.len(),
            TrainImages::Files(files) => files.len(),
        }
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of every image.
    pub fn shape(&self) -> data::ImageShape {
        match self {
            TrainImages::Memory(set) => set.shape,
            TrainImages::Files(files) => files.shape,
        }
    }

    /// How full a streamed set's decoded-image cache is (`--cache-mb`).
    pub fn cache_usage(&self) -> Option<data::CacheUse> {
        match self {
            TrainImages::Memory(_) => None,
            TrainImages::Files(files) => files.cache_usage(),
        }
    }

    /// The images at `indices`, in that order: copied, or decoded from their files.
    pub fn read(&self, indices: &[usize]) -> Result<ImageSet, DataError> {
        match self {
            TrainImages::Memory(set) => Ok(set.select(indices)),
            TrainImages::Files(files) => files.read(indices, decode_workers()),
        }
    }

    /// The first `n` images (or all, when fewer) in memory: the foreign texture of painted
    /// validation defects, the pictures of a run without validation images. With `skip_bad`,
    /// streamed files that cannot be read are left out (`--skip-bad`).
    pub fn sample(
        &self,
        n: usize,
        skip_bad: bool,
    ) -> Result<std::borrow::Cow<'_, ImageSet>, DataError> {
        match self {
            TrainImages::Memory(set) => Ok(std::borrow::Cow::Borrowed(set)),
            TrainImages::Files(files) => {
                let first: Vec<usize> = (0..n.min(files.len())).collect();
                Ok(std::borrow::Cow::Owned(if skip_bad {
                    files.read_skipping(&first, decode_workers()).0
                } else {
                    files.read(&first, decode_workers())?
                }))
            }
        }
    }

    /// The per-pixel mean and standard deviation over every image ([`ImageSet::pixel_mean_std`]),
    /// streamed sets a chunk at a time.
    pub fn pixel_mean_std(&self) -> Result<Option<data::MeanStd>, DataError> {
        match self {
            TrainImages::Memory(set) => Ok(set.pixel_mean_std()),
            TrainImages::Files(files) => {
                let mut stats = data::PixelStats::new(files.shape.len());
                let all: Vec<usize> = (0..files.len()).collect();
                for chunk in all.chunks(64) {
                    stats.add(&files.read(chunk, decode_workers())?);
                }
                Ok(stats.finish())
            }
        }
    }
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
pub fn split_data<S: Partitionable>(
    all: S,
    data: &DataConfig,
    seed: u64,
) -> Result<(S, S), DataError> {
    if data.val_fraction == 0.0 {
        let empty = all.subset(&[]);
        return Ok((all, empty));
    }
    split(&all, data.val_fraction, data.partition_seed(seed))
}

/// [`split_indices`] applied to `set`.
fn split<S: Partitionable>(set: &S, fraction: f64, seed: u64) -> Result<(S, S), DataError> {
    let (train, val) = split_indices(set.count(), fraction, seed)?;
    Ok((set.subset(&train), set.subset(&val)))
}

/// The partitions of a one-class run.
#[derive(Debug, Clone)]
pub struct OneClassSplit<S = ImageSet> {
    /// Normal training images.
    pub train: S,
    /// Held-out normal validation images.
    pub val: S,
    /// Held-out anomalous validation images.
    pub val_anomalous: S,
    /// The test partition, every class, labels kept.
    pub test: S,
    /// The label of the normal class.
    pub normal_label: u32,
}

/// Class names (or the label numbers present) for messages.
pub(crate) fn describe_classes<S: Partitionable>(set: &S) -> String {
    if let Some(names) = set.class_list() {
        return names.join(", ");
    }
    let mut labels = set.label_list().unwrap_or_default().to_vec();
    labels.sort_unstable();
    labels.dedup();
    labels
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The label that `class` names in `set`: a class-folder name, else a label number.
pub fn resolve_normal_class<S: Partitionable>(
    set: &S,
    class: &str,
    source: &str,
) -> Result<u32, PartitionError> {
    let Some(labels) = set.label_list() else {
        return Err(PartitionError::Unlabelled {
            origin: source.to_string(),
            class: class.to_string(),
        });
    };
    let by_name = set
        .class_list()
        .and_then(|n| n.iter().position(|c| c == class))
        .map(|i| i as u32);
    let label = by_name.or_else(|| class.trim().parse::<u32>().ok());
    // A class the set names is valid without images of it here: one block of a folder scored
    // a block at a time may hold none of them.
    let named = |l: u32| set.class_list().is_some_and(|n| (l as usize) < n.len());
    match label {
        Some(l) if named(l) || labels.contains(&l) => Ok(l),
        _ => Err(PartitionError::UnknownClass {
            origin: source.to_string(),
            class: class.to_string(),
            available: describe_classes(set),
        }),
    }
}

/// Images of `set` whose label is (or is not) `label`.
pub(crate) fn with_label<S: Partitionable>(set: &S, label: u32, keep: bool) -> S {
    let labels = set.label_list().unwrap_or_default();
    let idx: Vec<usize> = (0..set.count())
        .filter(|&i| (labels.get(i) == Some(&label)) == keep)
        .collect();
    set.subset(&idx)
}

/// Splits a labelled set into the one-class partitions `data` describes.
pub fn one_class_split<S: Partitionable>(
    all: S,
    data: &DataConfig,
    seed: u64,
) -> Result<OneClassSplit<S>, PartitionError> {
    let class = data.normal_class.as_deref().unwrap_or_default();
    let split_seed = data.partition_seed(seed);
    let normal_label = resolve_normal_class(&all, class, &data.source)?;
    let test_fraction = data.test_fraction.unwrap_or(0.0);
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(PartitionError::TestFraction(test_fraction));
    }
    let (rest, test) = if test_fraction > 0.0 {
        split(&all, test_fraction, split_seed ^ TEST_SALT)?
    } else {
        let empty = all.subset(&[]);
        (all, empty)
    };
    let (fit_part, val_part) = split_data(rest, data, seed)?;
    let train = with_label(&fit_part, normal_label, true);
    if train.count() == 0 {
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
    let (train, val, monitors) = fit_partitions(all, config)?;
    Ok(FitData {
        train,
        val,
        monitors: monitors
            .into_iter()
            .map(|(name, images)| Monitor { name, images })
            .collect(),
    })
}

/// [`fit_data`] of a streamed run: the same partitions of the folder's file list, the training
/// files left on disk, the validation and monitor images decoded into memory.
pub fn stream_fit_data(
    all: FileSet,
    config: &RunConfig,
) -> Result<FitData<TrainImages>, PartitionError> {
    // After the fingerprint pass (which reads every file once): the cache is filled by the
    // reads of training, which the partitions share.
    let all = all.with_cache(config.data.cache_mb.unwrap_or(0));
    let (train, val, monitors) = fit_partitions(all, config)?;
    let workers = decode_workers();
    let mut loaded = Vec::with_capacity(monitors.len());
    for (name, files) in monitors {
        loaded.push(Monitor {
            name,
            images: files.load(workers)?,
        });
    }
    Ok(FitData {
        train: TrainImages::Files(train),
        val: TrainImages::Files(val),
        monitors: loaded,
    })
}

/// Training, validation and named monitor partitions of `all` (see [`fit_data`]).
type Partitions<S> = (S, S, Vec<(String, S)>);

fn fit_partitions<S: Partitionable + Clone>(
    all: S,
    config: &RunConfig,
) -> Result<Partitions<S>, PartitionError> {
    let seed = config.train.seed;
    if config.data.normal_class.is_none() {
        if config.data.test_fraction.is_some_and(|f| f > 0.0) {
            return Err(PartitionError::TestWithoutNormalClass);
        }
        let (train, val) = split_data(all, &config.data, seed)?;
        return Ok((train, val, vec![]));
    }
    let split = one_class_split(all, &config.data, seed)?;
    let monitors = vec![
        ("normal".to_string(), split.val.clone()),
        ("anomalous".to_string(), split.val_anomalous),
    ];
    Ok((split.train, split.val, monitors))
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
    fn a_split_seed_holds_out_the_same_images_whatever_the_run_seed() {
        let fixed = DataConfig {
            split_seed: Some(3),
            ..config("2", 0.2)
        };
        let a = one_class_split(labelled(), &fixed, 7).unwrap();
        let b = one_class_split(labelled(), &fixed, 8).unwrap();
        assert_eq!(a.test.origins, b.test.origins);
        assert_eq!(a.val.origins, b.val.origins);
        assert_eq!(a.train.origins, b.train.origins);
        // Without it the run's seed splits, and seeds 7 and 8 hold out other images.
        let c = one_class_split(labelled(), &config("2", 0.2), 8).unwrap();
        assert_ne!(c.val.origins, b.val.origins);
        let plain = DataConfig {
            normal_class: None,
            test_fraction: None,
            ..fixed
        };
        let (_, v7) = split_data(labelled(), &plain, 7).unwrap();
        let (_, v8) = split_data(labelled(), &plain, 8).unwrap();
        assert_eq!(v7.origins, v8.origins);
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
