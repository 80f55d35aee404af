//! The flags of `cae eval` and `cae reconstruct`: reconstruction quality of a trained run.

use super::{DataArgs, RunArgs};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The PNG to write (a new file unless --force; never a run's own file).
    #[arg(
        long = "out",
        short = 'o',
        visible_alias = "output",
        value_name = "PNG"
    )]
    pub output: PathBuf,
    /// Replace existing output files (a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    /// How many images.
    #[arg(long, short = 'n', default_value_t = 16)]
    pub count: usize,
    /// Images per row.
    #[arg(long, default_value_t = 8)]
    pub per_row: usize,
    /// Also write these images' raw model outputs (not clamped to [0, 1]) as an N×C×H×W
    /// float32 .npy, e.g. to compare with another framework (same rules as --out).
    #[arg(long, value_name = "NPY")]
    pub npy: Option<PathBuf>,
    /// Pixel scale factor (default: fit small images to ~112 px).
    #[arg(long)]
    pub scale: Option<u32>,
    #[arg(long)]
    pub json: bool,
}
