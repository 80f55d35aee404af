//! The flags of `cae denoise` (file mode and benchmark mode).

use super::{DataArgs, RunArgs};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DenoiseArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Image files to denoise (PNG, JPEG, BMP; or any source `--data` takes).
    pub inputs: Vec<PathBuf>,
    /// Folder for the denoised PNGs (created if missing; new or empty unless --force).
    #[arg(
        long = "out",
        short = 'o',
        visible_alias = "output",
        value_name = "DIR"
    )]
    pub output: Option<PathBuf>,
    /// Write into a non-empty -o folder and over an existing --grid, replacing files of the
    /// names written (other files stay; the inputs and a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    /// Corrupt the input images first (e.g. gaussian:0.1) and score the result.
    #[arg(long, value_name = "SPEC")]
    pub add_noise: Option<String>,
    /// Benchmark mode: noise models to score on `--data` (repeatable), e.g. gaussian:0.5.
    #[arg(long, value_name = "SPEC")]
    pub noise: Vec<String>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Benchmark on the last N images only (e.g. digits the run never trained on).
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Benchmark picture: rows clean / noisy / median / Gaussian / CAE per noise model.
    #[arg(long, value_name = "PNG")]
    pub grid: Option<PathBuf>,
    /// Images per noise model in the picture.
    #[arg(long, default_value_t = 8)]
    pub samples: usize,
    /// Seed of the noise streams.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long)]
    pub json: bool,
}
