//! A run directory from imported weights, on the same contract `cae train` writes
//! (`config.toml`, `best.bpk`, `last.bpk`), plus `imported.json` saying where the weights came
//! from; so `cae eval`, `reconstruct`, `encode`, `anomaly ...` work on it unchanged.

use super::InteropError;
use crate::atomic::write_atomic;
use crate::model::{Autoencoder, weights_to_bytes};
use crate::output::{Overwrite, check_new_run};
use crate::run::RunConfig;
use crate::run::RunDir;
use crate::run::config::{DataConfig, TrainConfig};
use crate::spec::ValidSpec;
use serde::Serialize;
use std::path::Path;

/// Where imported weights came from (`imported.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportRecord {
    /// The file the weights were read from.
    pub source: String,
    /// `safetensors` or `pytorch`.
    pub format: String,
    /// Tensors read.
    pub tensors: usize,
    /// Trainable parameters of the model.
    pub params: usize,
}

/// Creates the run directory `out` for `model`, built from `spec`: `out` must be new or empty
/// (with [`Overwrite::Replace`] it may hold other files, never a run or a run's file names; see
/// `crate::output`). The config is written last: an interrupted import leaves no half-made run.
pub fn write_imported_run(
    out: &Path,
    spec: &ValidSpec,
    model: &Autoencoder,
    record: &ImportRecord,
    overwrite: Overwrite,
) -> Result<RunDir, InteropError> {
    check_new_run(out, overwrite)?;
    let write_err = |path: &Path, source| InteropError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e))?;
    let run = RunDir::new(out);
    let _lock = run.lock("importing")?;
    // Again under the lock: another process may have made a run here meanwhile.
    check_new_run(out, overwrite)?;
    let weights = weights_to_bytes(model)?;
    for path in [run.best(), run.last()] {
        write_atomic(&path, &weights).map_err(|e| write_err(&path, e))?;
    }
    let record_json = serde_json::to_vec_pretty(record)
        .map_err(|e| InteropError::Tensor(format!("imported.json: {e}")))?;
    write_atomic(&run.imported(), &record_json).map_err(|e| write_err(&run.imported(), e))?;
    // No data or training settings came with the weights: the defaults stand in, and commands
    // that read data take it from --data.
    let config = RunConfig {
        arch: spec.spec.clone(),
        input: spec.input.to_string(),
        data: DataConfig::default(),
        train: TrainConfig::default(),
    };
    let text = toml::to_string(&config)
        .map_err(|e| InteropError::Tensor(format!("writing config: {e}")))?;
    write_atomic(&run.config(), text.as_bytes()).map_err(|e| write_err(&run.config(), e))?;
    Ok(run)
}
