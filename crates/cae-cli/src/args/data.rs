//! How a command is pointed at images (`--data`, `--channels`, `--resize`, ...), and the
//! flags of `cae data` and `cae patches`, which make data sets.

use cae::run::config::Hw;
use cae::run::{DataRequest, RunDataError};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// How images are loaded (shared by every command that reads data).
#[derive(Debug, Clone, Args, Default)]
pub struct DataArgs {
    /// IDX file, .npy, CIFAR .bin, image folder, or builtin:shapes[:N[xSIDE]].
    #[arg(long, value_name = "SRC")]
    pub data: Option<String>,
    /// Force 1 (grey) or 3 (RGB) channels.
    #[arg(long, value_name = "1|3")]
    pub channels: Option<usize>,
    /// Resize every image to HxW.
    #[arg(long, value_name = "HxW")]
    pub resize: Option<Hw>,
    /// Keep only these labels, e.g. 1,7.
    #[arg(long, value_delimiter = ',', value_name = "LABELS")]
    pub classes: Option<Vec<u32>>,
    /// Use only the first N images.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

impl DataArgs {
    /// What these flags ask of a run's data (`--data` may be absent: the run's own partitions).
    pub fn request(&self) -> anyhow::Result<DataRequest> {
        Ok(DataRequest {
            source: self.data.clone(),
            channels: self.channels,
            resize: self.resize.map(|r| (r.height, r.width)),
            classes: self.classes.clone(),
            limit: self.limit,
            ..DataRequest::default()
        })
    }

    /// [`DataArgs::request`] for a command that needs `--data`.
    pub fn required(&self) -> anyhow::Result<DataRequest> {
        if self.data.is_none() {
            return Err(RunDataError::NoSource.into());
        }
        self.request()
    }
}

#[derive(Debug, Args)]
pub struct PatchesArgs {
    /// Image files or any other source (each is loaded on its own, so sizes may differ).
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// The .npy file to write (a new file unless --force; never a run's own file).
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
    /// Patch side in pixels.
    #[arg(long, default_value_t = 32)]
    pub side: usize,
    /// Step between patches (default: the side, i.e. no overlap).
    #[arg(long)]
    pub stride: Option<usize>,
    /// Force 1 (grey) or 3 (RGB) channels.
    #[arg(long, value_name = "1|3")]
    pub channels: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DataCmdArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Cut train and test patches from a texture photograph, some with synthetic defects
    /// (scratch, spot, hole, stain, cut, fold) and their masks, in the MVTec AD layout.
    MakeDefects(MakeDefectsArgs),
    /// Write a labels .npy: --counts 100,100 gives 100 zeros then 100 ones.
    MakeLabels(MakeLabelsArgs),
    /// Write the images of a data source (IDX, .npy, CIFAR, folder, builtin:shapes) as PNG
    /// files, named by index and label.
    ExportPng(ExportPngArgs),
}

#[derive(Debug, Args)]
pub struct ExportPngArgs {
    /// IDX file, .npy, CIFAR .bin, image folder, or builtin:shapes[:N[xSIDE]].
    pub source: String,
    /// Folder to write into (new or empty unless --force).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Write only the first N images.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub limit: usize,
    /// Force 1 (grey) or 3 (RGB) channels.
    #[arg(long, value_name = "1|3")]
    pub channels: Option<usize>,
    /// Write into a non-empty --out folder, replacing files of the names written.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct MakeDefectsArgs {
    /// The texture photograph (any image; converted to grey).
    pub texture: String,
    /// Folder to create (new or empty unless --force).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Write into a non-empty --out folder, replacing files of the names written (other files
    /// stay; a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    /// Patch side in pixels.
    #[arg(long, default_value_t = 64)]
    pub patch: usize,
    /// Defect-free training patches (train/good).
    #[arg(long, default_value_t = 300)]
    pub train: usize,
    /// Defect-free test patches (test/good).
    #[arg(long, default_value_t = 60)]
    pub test_good: usize,
    /// Test patches per defect kind.
    #[arg(long, default_value_t = 15)]
    pub per_kind: usize,
    /// Defect kinds, e.g. scratch,hole (default: all six).
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub kinds: Option<Vec<String>>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MakeLabelsArgs {
    /// How many images of each label, in order: 100,100 → label 0 ×100, then label 1 ×100.
    #[arg(long, value_delimiter = ',', required = true, value_name = "N,N,...")]
    pub counts: Vec<usize>,
    /// The .npy file to write (name it <stem>_labels.npy beside <stem>.npy); a new file unless
    /// --force.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Replace an existing --out file (a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
}
