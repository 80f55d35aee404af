//! The run: the contract between `cae train` and every command after it, owned here whole —
//! the directory's layout and paths ([`RunDir`]), the lock of a process writing into it
//! ([`lock`]), the trained model read back ([`LoadedRun`]), the rule for how a run's images are
//! loaded ([`data`]: channels, resize, normalisation, held-out partitions). The CLI, the server
//! and the benches all go through it, so they read a run the same way. What only anomaly
//! detection reads back (truth labels, masks, painted defects: `crate::anomaly::run_data`) and
//! the one-record summary that also shows the threshold (`crate::info`, `cae info`) live above
//! it, so `run` imports neither.
//!
//! ```text
//! RUN/
//!   config.toml       resolved architecture + data + training settings
//!   best.bpk          weights with the lowest validation loss
//!   last.bpk          weights after the last finished epoch
//!   checkpoint.bin    model + optimizer + epoch + best loss + history (for --resume)
//!   metrics.csv       epoch, train_loss, val_loss, seconds, images_per_second (+ val_auroc, monitors)
//!   loss.png          the loss curves
//!   monitors.png      per-epoch error of monitored held-out sets (one-class runs)
//!   recon/epoch-NNN.png  originals above reconstructions, per epoch
//!   summary.json      final figures
//!   imported.json     where the weights came from (runs made by `cae import` instead of training)
//!   threshold.json    the anomaly threshold (`cae anomaly threshold`)
//!   .lock             held by the process writing into the run ([`lock`])
//! ```
//!
//! The run owns these names: no command writes over them except the one that makes them
//! ([`RunDir::owns`], enforced for every user-named output by `crate::output`).

pub mod config;
pub mod data;
mod loaded;
pub mod lock;
pub mod partition;

pub use config::{ConfigError, DataConfig, LossKind, RunConfig, TrainConfig};
pub use data::{DEFAULT_NORMAL_NAMES, DataRequest, ImageRule, Partition, RunDataError};
pub use loaded::LoadedRun;
pub use lock::{LockError, RunLock};
pub use partition::{
    FitData, Monitor, PartitionError, TrainImages, fit_data, load_data, load_fit_data, split_data,
    stream_fit_data,
};

use crate::data::ImageShape;
use crate::spec::{ArchSpec, ValidSpec};
use config::Keep;
use std::path::{Path, PathBuf};

/// The files a run owns at its top level: what `train`, `import`, `anomaly threshold` and
/// `demo` write there, and the lock.
pub const ARTIFACTS: &[&str] = &[
    "config.toml",
    "best.bpk",
    "last.bpk",
    "checkpoint.bin",
    "metrics.csv",
    "loss.png",
    "monitors.png",
    "summary.json",
    "imported.json",
    "threshold.json",
    "reference.safetensors",
    "reconstruction.png",
    lock::LOCK_FILE,
];

/// The folders a run owns whole: per-epoch grids and the stages of a stacked run.
pub const ARTIFACT_DIRS: &[&str] = &["recon", "stack"];

/// Paths inside a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

/// Why a run directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{0}: not a cae run directory (no config.toml); train one with `cae train --out {0}`")]
    NotARun(String),
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error(
        "{0}: missing, so the run has no weights yet; it was stopped before its first epoch ended"
    )]
    NoWeights(String),
    #[error(transparent)]
    Weights(#[from] crate::model::WeightsError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn best(&self) -> PathBuf {
        self.root.join("best.bpk")
    }
    pub fn last(&self) -> PathBuf {
        self.root.join("last.bpk")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.bin")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn loss_plot(&self) -> PathBuf {
        self.root.join("loss.png")
    }
    /// Curves of the monitored held-out sets (one-class training).
    pub fn monitors_plot(&self) -> PathBuf {
        self.root.join("monitors.png")
    }
    pub fn recon_dir(&self) -> PathBuf {
        self.root.join("recon")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    /// Where imported weights came from (`cae import`).
    pub fn imported(&self) -> PathBuf {
        self.root.join("imported.json")
    }

    /// Reads `config.toml`.
    pub fn read_config(&self) -> Result<RunConfig, RunDirError> {
        let path = self.config();
        if !path.is_file() {
            return Err(RunDirError::NotARun(self.root.display().to_string()));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| RunDirError::Io {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| RunDirError::Config {
            path: path.display().to_string(),
            message: crate::toml_error::one_line(&e),
        })
    }

    /// The run's checked architecture.
    pub fn spec(&self, config: &RunConfig) -> Result<ValidSpec, RunDirError> {
        let cfg_err = |message: String| RunDirError::Config {
            path: self.config().display().to_string(),
            message,
        };
        let input: ImageShape = config.input_shape().map_err(|e| cfg_err(e.to_string()))?;
        let text = toml::to_string(&config.arch).map_err(|e| cfg_err(e.to_string()))?;
        ArchSpec::resolve_text(
            &self.config().display().to_string(),
            &text,
            &[],
            Some(input),
        )
        .map_err(|e| cfg_err(e.to_string()))
    }

    /// The weights every command after training uses: `best.bpk`, or `last.bpk` for a run
    /// that keeps its last epoch (`keep = "last"`).
    pub fn kept(&self, config: &RunConfig) -> PathBuf {
        match config.train.keep.unwrap_or_default() {
            Keep::Best => self.best(),
            Keep::Last => self.last(),
        }
    }

    pub fn exists(path: &Path) -> bool {
        path.join("config.toml").is_file()
    }

    /// Whether `rel`, a path relative to a run's root, is one of the run's own files or
    /// folders ([`ARTIFACTS`], [`ARTIFACT_DIRS`] and everything under them).
    pub fn owns(rel: &Path) -> bool {
        let mut parts = rel.components().filter_map(|c| match c {
            std::path::Component::Normal(n) => n.to_str(),
            _ => None,
        });
        match (parts.next(), parts.next()) {
            (Some(first), _) if ARTIFACT_DIRS.contains(&first) => true,
            (Some(first), None) => ARTIFACTS.contains(&first),
            _ => false,
        }
    }

    /// Takes the run's lock for the life of the returned guard ([`RunLock`]); `what` says what
    /// the holder does, for the message another process gets.
    pub fn lock(&self, what: &str) -> Result<RunLock, LockError> {
        RunLock::acquire(&self.root, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owns_its_artifacts_and_folders_only() {
        for rel in [
            "best.bpk",
            "checkpoint.bin",
            ".lock",
            "recon/epoch-001.png",
            "stack/stage-1/best.bpk",
            "recon",
        ] {
            assert!(RunDir::owns(Path::new(rel)), "{rel}");
        }
        for rel in ["eval/roc.png", "grid.png", "best.bpk/x", "scores.csv", ""] {
            assert!(!RunDir::owns(Path::new(rel)), "{rel}");
        }
    }
}
