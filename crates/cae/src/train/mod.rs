//! Training: losses, the checkpoint file, and the loop itself.
//!
//! The loop is our own rather than `burn-train`'s `Learner`: we need exact resume (optimizer
//! state, epoch counters and RNG streams restored from one atomic checkpoint), a NaN/Inf guard
//! that keeps the last good checkpoint, per-epoch reconstruction grids and one-class logging,
//! and a small dependency tree (burn-train pulls in a TUI and metrics stack).

mod artifacts;
mod batches;
mod checkpoint;
mod error;
mod fit;
mod loss;
mod objective;
mod resume;
mod session;
pub mod ssim_loss;
pub mod stacked;

pub use checkpoint::{Checkpoint, CheckpointError, EpochRecord, Progress};
pub use error::TrainError;
pub use fit::{Observer, StopReason, TrainOutcome, fit};
pub use loss::loss;
pub use objective::ObjectiveError;
pub use resume::{ResumeChanges, train_resume};
pub use session::{NewRun, train_new};
