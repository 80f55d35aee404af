//! The flags of `cae encode`, `cae probe` and `cae filters`: what a trained run's encoder
//! learnt.

use super::{DataArgs, RunArgs};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The .npy file to write (labels go to <stem>_labels.npy beside it); new files unless
    /// --force, never a run's own files.
    #[arg(
        long = "out",
        short = 'o',
        visible_alias = "output",
        value_name = "NPY"
    )]
    pub output: PathBuf,
    /// Replace existing output files (a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Hold out the last N images as the test split (default: a fifth of the images).
    #[arg(long, value_name = "N")]
    pub test: Option<usize>,
    /// Label budgets, e.g. 100,1000,all.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,all")]
    pub budgets: Vec<String>,
    /// Epochs of the softmax regression (at least 1500 updates are made anyway).
    #[arg(long, default_value_t = 60)]
    pub epochs: usize,
    /// Also fine-tune encoder + linear head, pretrained vs random init.
    #[arg(long)]
    pub finetune: bool,
    /// Labelled images for --finetune.
    #[arg(long, default_value_t = 1000)]
    pub finetune_labels: usize,
    #[arg(long, default_value_t = 30)]
    pub finetune_epochs: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FiltersArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The filter mosaic to write (a new file unless --force; never a run's own file).
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
    /// Also draw the activation maps of every encoder layer for this image.
    #[arg(long, value_name = "IMAGE")]
    pub activations: Option<String>,
    /// Where the activation maps go (default: <output stem>-activations.png).
    #[arg(long, value_name = "PNG")]
    pub activations_out: Option<PathBuf>,
    /// Force 1 (grey) or 3 (RGB) channels for the --activations image.
    #[arg(long, value_name = "1|3")]
    pub channels: Option<usize>,
    /// Resize the --activations image to HxW.
    #[arg(long, value_name = "HxW")]
    pub resize: Option<cae::run::config::Hw>,
    /// Pixels per filter (and per activation map) side, roughly.
    #[arg(long, default_value_t = 48)]
    pub cell: u32,
    /// Activation maps shown per layer.
    #[arg(long, default_value_t = 32)]
    pub maps: usize,
    #[arg(long)]
    pub json: bool,
}
