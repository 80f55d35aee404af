//! The flags of `cae export` and `cae import`: PyTorch weights (or an ONNX model) out of a run,
//! PyTorch weights into one.

use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run directory made by `cae train` or `cae import`.
    pub run: PathBuf,
    /// The file to write, its format told by the extension: .safetensors (PyTorch state dict)
    /// or .onnx (ONNX model). A new file unless --force; never a run's own file.
    #[arg(
        long = "out",
        short = 'o',
        visible_alias = "output",
        value_name = "FILE"
    )]
    pub output: PathBuf,
    /// Replace existing output files (a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    /// Which weights: the best epoch's or the last epoch's (default: the ones the run keeps,
    /// its `keep` setting, as every other command uses).
    #[arg(long, value_enum)]
    pub weights: Option<Which>,
    /// What to export: the whole model, or the encoder alone (image in, code out; the
    /// encoder's tensors only in a .safetensors file).
    #[arg(long, value_enum, default_value = "model")]
    pub part: PartArg,
    #[arg(long)]
    pub json: bool,
}

/// `--part`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PartArg {
    Model,
    Encoder,
}

impl From<PartArg> for cae::interop::ExportPart {
    fn from(p: PartArg) -> Self {
        match p {
            PartArg::Model => cae::interop::ExportPart::Model,
            PartArg::Encoder => cae::interop::ExportPart::Encoder,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Which {
    Best,
    Last,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The weights: .safetensors, or a torch.save checkpoint (.pt/.pth) of a state dict.
    pub model: PathBuf,
    /// A preset name or TOML spec file (default: the spec a `cae export` file carries).
    #[arg(long)]
    pub arch: Option<String>,
    /// Set a spec parameter, e.g. --param latent=32 (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub param: Vec<String>,
    /// Input shape CxHxW (default: the spec's own).
    #[arg(long, value_name = "CxHxW")]
    pub input: Option<String>,
    /// Run directory to create: a new or empty folder, never a run.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Import into an --out folder that holds other files; they stay, and a file of a name a
    /// run writes (best.bpk, config.toml, ...) is refused even so.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub json: bool,
}
