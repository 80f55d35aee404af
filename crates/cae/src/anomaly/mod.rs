//! One-class classification and anomaly detection with a trained autoencoder: a model trained
//! on normal images only reconstructs normal images well, so reconstruction error flags
//! anomalies.
//!
//! Split as anomalib splits it, so that a model never decides thresholds:
//!
//! - data: [`dataset`] (images with their truth and masks; which images a run scores is
//!   `crate::run::data`; its train/validation/test partitions are `crate::run::partition`), [`defects`] (synthetic defects on texture
//!   patches, written in the MVTec AD layout; the layout itself is `crate::data::mvtec`);
//! - scoring: [`score`] (image scores and anomaly maps from reconstructions), [`fused`] (a
//!   segmentation network's score joined with the aligned patch neighbours');
//! - post-processing: [`threshold`] (fitting, normalisation, `RUN/threshold.json`);
//! - metrics: [`metrics`] (image AUROC, AUPR, F1, …), [`pixel`] (pixel AUROC, PRO), and the
//!   no-learning baselines every evaluation is compared with: the per-pixel Gaussian
//!   ([`baseline`]) and the aligned patch neighbours ([`neighbours`]);
//! - the inference contract and report: [`report`] (score, normalised score, label, map, mask).
//!
//! Pictures (overlays, score histograms) live in `crate::plot`.

pub mod baseline;
pub mod dataset;
pub mod defects;
mod error;
pub mod fused;
pub mod metrics;
pub mod neighbours;
pub mod painted;
pub mod pixel;
pub mod report;
pub mod run_data;
pub mod score;
pub mod threshold;

pub use dataset::AnomalySet;
pub use error::AnomalyError;
pub use report::{Evaluation, Prediction, evaluate, predict};
pub use score::{ScoreKind, ScoredSet, score_set};
pub use threshold::{Threshold, ThresholdMethod};
