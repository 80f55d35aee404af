//! The run directory: the contract between `cae train` and every command after it.
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

pub mod lock;

pub use lock::{LockError, RunLock};

use crate::data::ImageShape;
use crate::model::{Autoencoder, load_weights};
use crate::spec::{ArchSpec, ValidSpec};
use crate::train::RunConfig;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

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
        "{0}: the run has no weights yet (best.bpk); it was stopped before its first epoch ended"
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
        let input: ImageShape = config.input_shape().map_err(cfg_err)?;
        let text = toml::to_string(&config.arch).map_err(|e| cfg_err(e.to_string()))?;
        ArchSpec::resolve_text(
            &self.config().display().to_string(),
            &text,
            &[],
            Some(input),
        )
        .map_err(|e| cfg_err(e.to_string()))
    }

    /// Loads the trained model (best weights) with its config and spec, ready for inference.
    pub fn load_model(&self, device: &Device) -> Result<LoadedRun, RunDirError> {
        let config = self.read_config()?;
        let spec = self.spec(&config)?;
        let best = self.best();
        if !best.is_file() {
            return Err(RunDirError::NoWeights(self.root.display().to_string()));
        }
        let mut model = Autoencoder::new(&spec, device);
        load_weights(&mut model, &best)?;
        Ok(LoadedRun {
            config,
            spec,
            model,
        })
    }

    pub fn exists(path: &Path) -> bool {
        path.join("config.toml").is_file()
    }

    /// Takes the run's lock for the life of the returned guard ([`RunLock`]); `what` says what
    /// the holder does, for the message another process gets.
    pub fn lock(&self, what: &str) -> Result<RunLock, LockError> {
        RunLock::acquire(&self.root, what)
    }
}

/// A trained run, loaded.
#[derive(Debug)]
pub struct LoadedRun {
    pub config: RunConfig,
    pub spec: ValidSpec,
    pub model: Autoencoder,
}
