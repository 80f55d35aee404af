//! [`AnomalyError`]: every way scoring, thresholding or evaluating can fail. Each message is
//! one line that names the run or data involved, says what is wrong and what to do; the CLI
//! prints them verbatim.

use crate::data::DataError;
use crate::data::mvtec::MvtecError;

/// An error of the anomaly-detection workflow.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    /// The output path is refused (a run's file, an existing file without --force, ...).
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),

    /// Labels are needed but the run has no threshold.
    #[error(
        "{run}: no threshold fitted yet (threshold.json is missing), so images cannot be labelled; fit one with `cae anomaly threshold {run} --percentile 99` (or --fpr, --f1, --value)"
    )]
    NoThreshold { run: String },

    /// `threshold.json` exists but cannot be read.
    #[error("{path}: unreadable threshold file ({message}); refit it with `cae anomaly threshold`")]
    ThresholdFile { path: String, message: String },

    /// A threshold method's number is out of range.
    #[error("{0}")]
    InvalidThreshold(String),

    /// A normal-only threshold was asked of data without normal images.
    #[error(
        "no normal images in {origin} to fit a threshold on; give data with normal images (or name the normal class with --normal-class)"
    )]
    NoNormal { origin: String },

    /// Something needs both classes and one is missing.
    #[error(
        "{what} needs normal and anomalous images, but {origin} holds {normal} normal and {anomalous} anomalous"
    )]
    NeedsBoth {
        what: String,
        origin: String,
        normal: usize,
        anomalous: usize,
    },

    /// The data holds no image at all.
    #[error("{origin}: no images to score; {hint}")]
    Empty { origin: String, hint: String },

    /// Labelled data without a normal class.
    #[error(
        "{origin} has labels {available} but no normal class was named; pass --normal-class C (all other classes are anomalous)"
    )]
    NoNormalClass { origin: String, available: String },

    /// A run's partitions could not be rebuilt, or the normal class is not in the data.
    #[error(transparent)]
    Partition(#[from] crate::run::PartitionError),

    /// A run's config or data could not be read back.
    #[error(transparent)]
    RunData(#[from] crate::run::RunDataError),

    /// A run's recorded settings do not parse.
    #[error(transparent)]
    Config(#[from] crate::run::ConfigError),

    /// A one-class setting is out of range.
    #[error("{0}")]
    InvalidSetting(String),

    /// The run has no held-out partition of the kind asked for.
    #[error("{run}: {reason}; pass --data SRC")]
    NoPartition { run: String, reason: String },

    /// A threshold fitted for one score kind was asked to label another.
    #[error(
        "{run}: the threshold was fitted on score {fitted} but {asked} was asked; refit with `cae anomaly threshold {run} --score {asked_name}` or drop --score"
    )]
    ScoreMismatch {
        run: String,
        fitted: String,
        asked: String,
        asked_name: String,
    },

    /// Data could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),

    /// An MVTec AD folder is malformed.
    #[error(transparent)]
    Layout(#[from] MvtecError),

    /// The images do not fit the model, or its output could not be read.
    #[error(transparent)]
    Infer(#[from] crate::infer::InferError),

    /// A model could not run on an image of another size than its training size.
    #[error(transparent)]
    AnySize(#[from] crate::denoise::DenoiseError),

    /// A score name, `--sigma` or `--window` is invalid.
    #[error(transparent)]
    ScoreOption(#[from] super::score::ScoreOptionError),

    /// `--score mask` on a model that reconstructs its input.
    #[error(
        "scores mask and fused read a predicted anomaly map, but {model} reconstructs its input; use mse, mae, ssim or max-smoothed (or train --arch inspect --synthetic ...)"
    )]
    MaskNeedsSegmentation { model: String },

    /// A reconstruction score on a segmentation model.
    #[error(
        "score {score} compares an image with its reconstruction, but {model} is a segmentation model that predicts an anomaly map; use --score mask"
    )]
    NeedsReconstruction { score: String, model: String },

    /// A no-learning statistic (the per-pixel Gaussian, the patch neighbours, a fused score's
    /// reference) was asked to score images of another shape than it was fitted on.
    #[error(
        "the no-learning statistic was fitted on {fitted} images and cannot score {given} ones; score images of the training size (--resize)"
    )]
    BaselineShape {
        fitted: crate::data::ImageShape,
        given: crate::data::ImageShape,
    },

    /// A no-learning statistic (a baseline, a fused score's reference) has no training images.
    #[error(
        "the no-learning statistics (the baselines, a fused score's reference) are fitted on the run's training images, and its training partition holds none"
    )]
    NoTrainingImages,
    /// A picture could not be encoded.
    #[error(transparent)]
    Png(#[from] crate::denoise::PngError),

    /// Too few normal images to fit a norm on.
    #[error(
        "{what} is fitted on the spread of normal images' scores, and only {normal} normal image(s) were given; fit on more (a larger --val-fraction, or --data)"
    )]
    TooFewNormal { what: String, normal: usize },

    /// The reference images of a fused score cannot be read or written.
    #[error(
        "{path}: reference images of the fused score {message}; refit with `cae anomaly threshold RUN --score fused ...`"
    )]
    Reference { path: String, message: String },

    /// `--score fused` on a run whose threshold was not fitted with it.
    #[error(
        "{run}: the fused score is fitted together with its threshold (the normal images' spread of both parts), and this run's threshold {found}; fit one with `cae anomaly threshold {run} --score fused --fpr 0.05`"
    )]
    NeedsFusion { run: String, found: String },

    /// A file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}
