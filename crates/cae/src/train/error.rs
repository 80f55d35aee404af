//! [`TrainError`]: every way starting, resuming or running a training can fail, each a one-line
//! message that names the run or setting and what to do.

use super::checkpoint::CheckpointError;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "training diverged at epoch {epoch}, step {step}: the loss is {value}; {kept}; lower --lr or check the data for NaN",
        kept = kept_message(*last_good, run)
    )]
    Diverged {
        epoch: usize,
        step: usize,
        value: f64,
        last_good: usize,
        run: String,
    },
    /// The observer asked to stop (Ctrl-C, SIGTERM).
    #[error("stopped {}; continue with: cae train --resume {run}", stopped_after(*epoch))]
    Interrupted { epoch: usize, run: String },
    /// `--data` was not given.
    /// A streamed image could not be read while training ran; the run keeps the checkpoint
    /// of its last finished epoch.
    #[error("epoch {epoch}: {source}; {}: fix or remove the file, then continue with: cae train --resume {run} (add --skip-bad to leave out files that cannot be read)", kept_message(*last_good, run))]
    Read {
        epoch: usize,
        source: crate::data::DataError,
        last_good: usize,
        run: String,
    },

    /// `--skip-bad` left out every training image of an epoch.
    #[error("epoch {epoch}: no training image could be read (--skip-bad skipped them all; the first: {first}); {}", kept_message(*last_good, run))]
    AllSkipped {
        epoch: usize,
        first: String,
        last_good: usize,
        run: String,
    },
    #[error("no data: pass --data (a path or builtin:shapes)")]
    NoData,
    /// The training partition is empty.
    #[error("{origin}: no training images")]
    NoTrainingImages { origin: String },
    /// The architecture cannot serve the objective (loss, synthetic anomalies, augmentation).
    #[error(transparent)]
    Objective(#[from] super::ObjectiveError),
    /// The architecture could not be resolved for the data.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// `--resize` gives a size the model cannot take.
    #[error("--resize {resize}: {source}")]
    Resize {
        resize: String,
        source: crate::spec::SpecError,
    },
    /// The folder is not a run, or its config or spec cannot be read.
    #[error(transparent)]
    Run(#[from] crate::run::RunDirError),
    /// A resume's changed settings are out of range.
    #[error("{run}: {source}")]
    ResumeSettings {
        run: String,
        source: crate::run::ConfigError,
    },
    /// A resume asked for fewer epochs than the run has trained.
    #[error("--epochs {epochs}: {run} has already trained {done} epochs; give more to continue it")]
    EpochsDone {
        epochs: usize,
        run: String,
        done: usize,
    },
    /// The optimizer's state could not be saved or restored.
    #[error("{path}optimizer state: {message}")]
    Optimizer { path: String, message: String },
    /// A training picture could not be drawn.
    #[error("drawing {what}: {source}")]
    Plot {
        what: &'static str,
        source: crate::plot::PlotError,
    },
    /// The run's config could not be written as TOML.
    #[error("writing {what}: {source}")]
    ConfigText {
        what: &'static str,
        source: toml::ser::Error,
    },
    /// A training setting is out of range or does not combine with another.
    #[error(transparent)]
    Config(#[from] crate::run::ConfigError),
    /// The run's images could not be loaded or partitioned.
    #[error(transparent)]
    Data(#[from] crate::run::PartitionError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// The images do not fit the model, or its output could not be read.
    #[error(transparent)]
    Infer(#[from] crate::infer::InferError),
    /// The spec cannot be trained stage by stage.
    #[error(transparent)]
    Stacked(#[from] super::stacked::StackError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Weights(#[from] crate::model::WeightsError),
    /// Another process writes into the run.
    #[error(transparent)]
    Lock(#[from] crate::run::LockError),
    /// The output folder may not become a run.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

/// "after epoch N", or that no epoch had finished.
fn stopped_after(epoch: usize) -> String {
    if epoch == 0 {
        "before the first epoch ended".to_string()
    } else {
        format!("after epoch {epoch}")
    }
}

/// What the divergence message says was kept.
fn kept_message(last_good: usize, run: &str) -> String {
    if last_good == 0 {
        format!("no epoch had finished, so {run} holds no weights yet")
    } else {
        format!("the last good checkpoint (epoch {last_good}) is kept in {run}")
    }
}
