//! The training checkpoint: model weights, optimizer state, epoch counters and the metrics
//! history, in ONE file written atomically, so a `kill -9` at any moment leaves either the old
//! checkpoint or the new one, never a mix. Layout: magic, JSON header, model bytes, optimizer
//! bytes, each length-prefixed, then an FNV-1a checksum of everything before it.

use crate::atomic::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::Path;

const MAGIC: &[u8; 8] = b"CAECKPT1";

/// One epoch's figures: a row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    /// `None` when the run holds out no validation images.
    pub val_loss: Option<f64>,
    pub seconds: f64,
    pub images_per_second: f64,
    /// Segmentation runs: image AUROC of the clean validation images against those with a
    /// painted defect (`train::segmentation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_auroc: Option<f64>,
    /// Mean per-image MSE of each monitored held-out set, by name.
    #[serde(default)]
    pub monitors: std::collections::BTreeMap<String, f64>,
    /// Streamed training images left out of the epoch because they could not be read
    /// (`--skip-bad`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Counters that make `--resume` continue exactly where the run stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs completed.
    pub epoch: usize,
    pub best_loss: f64,
    pub best_epoch: usize,
    /// Epochs since the best one (early stopping).
    pub stale_epochs: usize,
    pub history: Vec<EpochRecord>,
}

/// A checkpoint in memory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub progress: Progress,
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot read checkpoint: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot write checkpoint: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: corrupt checkpoint: {reason}")]
    Corrupt { path: String, reason: String },
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Checkpoint {
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.progress).unwrap_or_default();
        let mut out =
            Vec::with_capacity(header.len() + self.model.len() + self.optimizer.len() + 40);
        out.extend_from_slice(MAGIC);
        for part in [&header, &self.model, &self.optimizer] {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part);
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Checkpoint, CheckpointError> {
        let corrupt = |reason: &str| CheckpointError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        };
        if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a cae checkpoint (bad magic)"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if fnv1a(body) != u64::from_le_bytes(sum.try_into().map_err(|_| corrupt("truncated"))?) {
            return Err(corrupt("checksum mismatch (truncated or modified)"));
        }
        let mut rest = &body[MAGIC.len()..];
        let mut parts = Vec::with_capacity(3);
        for _ in 0..3 {
            if rest.len() < 8 {
                return Err(corrupt("truncated"));
            }
            let (len, tail) = rest.split_at(8);
            let len =
                u64::from_le_bytes(len.try_into().map_err(|_| corrupt("truncated"))?) as usize;
            if tail.len() < len {
                return Err(corrupt("truncated"));
            }
            let (part, tail) = tail.split_at(len);
            parts.push(part.to_vec());
            rest = tail;
        }
        let optimizer = parts.pop().unwrap_or_default();
        let model = parts.pop().unwrap_or_default();
        let header = parts.pop().unwrap_or_default();
        let progress =
            serde_json::from_slice(&header).map_err(|e| corrupt(&format!("bad header: {e}")))?;
        Ok(Checkpoint {
            progress,
            model,
            optimizer,
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        write_atomic(path, &self.to_bytes()).map_err(|source| CheckpointError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Checkpoint::from_bytes(&bytes, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            progress: Progress {
                epoch: 2,
                best_loss: 0.5,
                best_epoch: 1,
                stale_epochs: 1,
                history: vec![EpochRecord {
                    val_auroc: None,
                    monitors: Default::default(),
                    epoch: 1,
                    train_loss: 1.0,
                    val_loss: Some(0.5),
                    seconds: 1.0,
                    images_per_second: 10.0,
                    skipped: 0,
                }],
            },
            model: vec![1, 2, 3],
            optimizer: vec![4, 5],
        }
    }

    #[test]
    fn round_trips() {
        let c = sample();
        let back = Checkpoint::from_bytes(&c.to_bytes(), "x").unwrap();
        assert_eq!(back.progress, c.progress);
        assert_eq!((back.model, back.optimizer), (c.model, c.optimizer));
    }

    #[test]
    fn detects_truncation_and_bit_flips() {
        let bytes = sample().to_bytes();
        for cut in [0, 4, 12, bytes.len() / 2, bytes.len() - 1] {
            let e = Checkpoint::from_bytes(&bytes[..cut], "ck")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("ck: corrupt checkpoint"), "{e}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 0x40;
        assert!(
            Checkpoint::from_bytes(&flipped, "ck")
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
    }
}
