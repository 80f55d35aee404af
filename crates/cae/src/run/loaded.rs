//! [`LoadedRun`]: a trained run read back for inference — its config, checked spec and kept
//! weights, plus the run directory they came from. Every command after training starts from
//! one ([`RunDir::load_model`]) and asks it for its images by the run's own rule
//! ([`LoadedRun::data`], [`LoadedRun::anomaly_data`], in `super::data`).

use super::{RunDir, RunDirError};
use crate::model::{Autoencoder, load_weights};
use crate::run::RunConfig;
use crate::spec::ValidSpec;
use burn::tensor::Device;

/// A trained run, loaded.
#[derive(Debug)]
pub struct LoadedRun {
    /// Where the run lives; messages name it, and its held-out partitions are re-derived from it.
    pub dir: RunDir,
    pub config: RunConfig,
    pub spec: ValidSpec,
    pub model: Autoencoder,
    /// The device the model is on.
    pub device: Device,
}

impl RunDir {
    /// Loads the trained model (its kept weights, [`RunDir::kept`]) with its config and spec,
    /// ready for inference.
    pub fn load_model(&self, device: &Device) -> Result<LoadedRun, RunDirError> {
        let config = self.read_config()?;
        let spec = self.spec(&config)?;
        let weights = self.kept(&config);
        if !weights.is_file() {
            return Err(RunDirError::NoWeights(weights.display().to_string()));
        }
        let mut model = Autoencoder::new(&spec, device);
        load_weights(&mut model, &weights)?;
        Ok(LoadedRun {
            dir: self.clone(),
            config,
            spec,
            model,
            device: device.clone(),
        })
    }
}
