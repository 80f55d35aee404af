//! Model weights on disk, in Burn's burnpack format (it keeps parameter ids, so an optimizer
//! state saved beside them still lines up after a reload). Files are written atomically.

use super::Autoencoder;
use crate::atomic::write_atomic;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use std::path::Path;

/// Why weights could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: cannot read weights: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot write weights: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: not valid weights for this architecture: {message}")]
    Format { origin: String, message: String },
}

/// The model's weights as burnpack bytes.
pub fn weights_to_bytes(model: &Autoencoder) -> Result<Vec<u8>, WeightsError> {
    let mut store = BurnpackStore::from_bytes(None);
    let format = |message: String| WeightsError::Format {
        origin: "model".into(),
        message,
    };
    model
        .save_into(&mut store)
        .map_err(|e| format(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| format(e.to_string()))?;
    Ok(bytes.to_vec())
}

/// Loads burnpack bytes into `model` (built from the same spec); every tensor must match.
pub fn weights_from_bytes(
    model: &mut Autoencoder,
    bytes: Vec<u8>,
    origin: &str,
) -> Result<(), WeightsError> {
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    let result = model
        .load_from(&mut store)
        .map_err(|e| WeightsError::Format {
            origin: origin.into(),
            message: e.to_string(),
        })?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        let mut problems: Vec<String> = result
            .missing
            .iter()
            .map(|m| format!("missing {m:?}"))
            .collect();
        problems.extend(result.errors.iter().map(|e| e.to_string()));
        return Err(WeightsError::Format {
            origin: origin.into(),
            message: problems.join("; "),
        });
    }
    Ok(())
}

/// Writes the weights to `path` atomically.
pub fn save_weights(model: &Autoencoder, path: &Path) -> Result<(), WeightsError> {
    let bytes = weights_to_bytes(model)?;
    write_atomic(path, &bytes).map_err(|source| WeightsError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Reads weights from `path` into `model`.
pub fn load_weights(model: &mut Autoencoder, path: &Path) -> Result<(), WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    weights_from_bytes(model, bytes, &path.display().to_string())
}
