//! Command-line arguments: parsing and validation only. Each command turns these into library
//! types in `cmd/`.

use cae::device::DeviceKind;
use cae::run::{DataRequest, RunDataError};
use cae::train::config::parse_hw;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "cae", version, about = "Convolutional autoencoders: train, reconstruct, evaluate.", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an autoencoder (or continue one with --resume RUN).
    Train(Box<TrainArgs>),
    /// Reconstruction quality of a trained run on a data set: MSE, PSNR, SSIM.
    Eval(EvalArgs),
    /// Picture of originals above their reconstructions.
    Reconstruct(ReconstructArgs),
    /// Layer table, parameters, bottleneck and compression ratio of an architecture.
    Arch(ArchArgs),
    /// Train the `upsample` preset on the built-in shapes (no download), in seconds.
    Demo(DemoArgs),
    /// Time training steps and inference of an architecture on this machine.
    Bench(crate::cmd::bench::BenchArgs),
    /// Denoise image files with a trained run, or score it against classic filters (--data).
    Denoise(crate::cmd::denoise::DenoiseArgs),
    /// Write the latent codes of a data set as .npy (N×D float32) with the labels beside.
    Encode(crate::cmd::encode::EncodeArgs),
    /// Linear probe: softmax regression on codes vs raw pixels for several label budgets.
    Probe(crate::cmd::probe::ProbeArgs),
    /// The learned first-layer filters as a mosaic, and encoder activation maps of one image.
    Filters(crate::cmd::filters::FiltersArgs),
    /// Cut images into square patches, written as one .npy (training data from large photos).
    Patches(crate::cmd::patches::PatchesArgs),
    /// One-class classification and anomaly detection: fit a threshold, score, evaluate.
    Anomaly(crate::cmd::anomaly::AnomalyArgs),
    /// Make data sets: texture patches with synthetic defects, labels files.
    Data(crate::cmd::data_cmd::DataCmdArgs),
    /// Write a run's weights as a PyTorch state dict (.safetensors) with PyTorch's names.
    Export(crate::cmd::export::ExportArgs),
    /// Make a run directory from PyTorch weights (.safetensors or .pt) for a given spec.
    Import(crate::cmd::import::ImportArgs),
    /// Serve a run over HTTP: anomaly scores, heatmaps, reconstructions, latent codes.
    Serve(crate::cmd::serve::ServeArgs),
    /// What a run is: architecture, data rule, epochs and losses, threshold.
    Info(crate::cmd::info::InfoArgs),
    /// One line per image: anomalous or normal, score and normalised score (needs a threshold).
    Predict(crate::cmd::predict::PredictArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(crate::cmd::completions::CompletionsArgs),
}

/// `--device`: the compute backend, checked by clap (`cpu` is another name for flex).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// Burn's pure-Rust CPU backend.
    #[default]
    #[value(alias = "cpu")]
    Flex,
    /// Any GPU through wgpu (cargo feature `wgpu`).
    Wgpu,
    /// NVIDIA CUDA (cargo feature `cuda`).
    Cuda,
}

impl From<DeviceArg> for DeviceKind {
    fn from(d: DeviceArg) -> DeviceKind {
        match d {
            DeviceArg::Flex => DeviceKind::Flex,
            DeviceArg::Wgpu => DeviceKind::Wgpu,
            DeviceArg::Cuda => DeviceKind::Cuda,
        }
    }
}

impl DeviceArg {
    /// The device, or the error that it is not compiled into this binary.
    pub fn device(self) -> anyhow::Result<cae::Device> {
        DeviceKind::from(self).device().map_err(anyhow::Error::msg)
    }
}

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
    pub resize: Option<String>,
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
        let resize = self
            .resize
            .as_deref()
            .map(parse_hw)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        Ok(DataRequest {
            source: self.data.clone(),
            channels: self.channels,
            resize,
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
pub struct TrainArgs {
    /// Continue the run in this directory from its last checkpoint. Only --epochs (more to
    /// extend it), --patience and --device may change; other settings are the run's. A run is
    /// locked while a process trains it: a second --resume is refused, naming the first's PID.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["arch", "config", "param", "out", "force"])]
    pub resume: Option<PathBuf>,
    /// A preset name (see `cae arch --list`) or a TOML spec file.
    #[arg(long)]
    pub arch: Option<String>,
    /// Set a spec parameter, e.g. --param k=2 (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub param: Vec<String>,
    /// A TOML file with `arch`, `[params]`, `[data]` and `[train]`; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run directory to create (default runs/<arch>): a new or empty folder, never a run.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Train into an --out folder that holds other files; they stay, and a file of a name the
    /// run writes (metrics.csv, loss.png, ...) is refused even so.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub data: DataArgs,
    /// Share of images held out for validation, 0 disables [default: 0.1].
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Passes over the training images [default: 10].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per training step [default: 64].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 0.001].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Adam weight decay (L2).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// mse | bce | l1 | sse | ssim | mse+ssim:W | focal (default mse; focal with --synthetic).
    #[arg(long)]
    pub loss: Option<String>,
    /// Seeds the split, the weights, the shuffles, the noise and the synthetic anomalies; the
    /// same seed gives the same run [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after N epochs without a better validation loss.
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Compute device (default flex).
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
    /// Corrupt training inputs (targets stay clean), e.g. gaussian:0.5 or
    /// gaussian:0.3,salt_pepper:0.05 (also mask:P, speckle:SIGMA).
    #[arg(long, value_name = "SPEC")]
    pub noise: Option<String>,
    /// Per-image brightness normalisation, recorded in the run and applied by every later
    /// command and `cae serve`: median scales each image so that its median is 0.5.
    #[arg(long, value_name = "median", conflicts_with = "resume")]
    pub normalize: Option<String>,
    /// Segmentation training on synthetic anomalies (with --arch inspect): normal images are
    /// corrupted on the fly with these kinds and the model learns to predict where, e.g.
    /// dark,texture,crack (share of corrupted images after @, default 0.5). Loss: focal.
    #[arg(long, value_name = "KINDS", conflicts_with = "resume")]
    pub synthetic: Option<String>,
    /// Seeded augmentation, comma-separated: mirror flips (hflip, vflip or flip for both) and
    /// rot90 (quarter turns, square images) only for data whose mirrored or turned image is just
    /// as normal, never digits; brightness:B (±B added) and contrast:C (×(1±C) around the mean)
    /// for varying lighting; crop:SIDE (a random SIDE x SIDE square of each image; fully
    /// convolutional specs, which then score whole images).
    #[arg(long, value_name = "LIST", conflicts_with = "resume")]
    pub augment: Option<String>,
    /// Learning-rate schedule over the epochs: constant or cosine.
    #[arg(long, value_name = "NAME", conflicts_with = "resume")]
    pub schedule: Option<String>,
    /// Which weights later commands use: best (lowest validation loss) or last (the last
    /// epoch) [default: last with --schedule cosine and no --patience, which anneals to the
    /// settled model; else best].
    #[arg(long, value_name = "best|last", conflicts_with = "resume")]
    pub keep: Option<String>,
    /// Pretrain the encoder's conv layers one at a time (stacked CAEs), then fine-tune all.
    #[arg(long)]
    pub stacked: bool,
    /// Epochs per stacked pretraining stage (default: --epochs).
    #[arg(long, value_name = "N")]
    pub stack_epochs: Option<usize>,
    #[command(flatten)]
    pub one_class: crate::cmd::anomaly::OneClassArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory made by `cae train`.
    pub run: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    pub run: PathBuf,
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
    /// Compute device.

    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ArchArgs {
    /// A preset name, a TOML spec file or a run directory.
    #[arg(required_unless_present = "list")]
    pub arch: Option<String>,
    /// Input shape CxHxW (default: the spec's own).
    #[arg(long, value_name = "CxHxW")]
    pub input: Option<String>,
    #[arg(long, value_name = "NAME=VALUE")]
    pub param: Vec<String>,
    /// List the presets.
    #[arg(long)]
    pub list: bool,
    /// Print the resolved spec as TOML instead of the table.
    #[arg(long)]
    pub toml: bool,
    /// Print the PyTorch nn.Sequential the spec stands for (its names are `cae export`'s).
    #[arg(long, conflicts_with = "toml")]
    pub torch: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run directory (default: runs/demo, or runs/demo-N if taken): new or empty.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Train into an --out folder that holds other files (never a run, never over its names).
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    #[arg(long)]
    pub json: bool,
}

/// Clap errors are several lines with usage; users get the first line and a pointer to --help.
pub fn report_parse_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("invalid arguments");
            let first = first.trim_start_matches("error: ");
            // Keep what says how to fix it: the allowed values, or clap's "did you mean".
            let hint: Vec<&str> = lines
                .filter(|l| l.starts_with("[possible values") || l.starts_with("tip: a similar"))
                .collect();
            let hint = match hint.as_slice() {
                [] => String::new(),
                h => format!(" {}", h.join(" ")),
            };
            eprintln!("error: {first}{hint} (see cae --help)");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    /// The training flags' defaults live in the library (`TrainConfig::default`, so that a
    /// `--config` file can fill them); their help must say the same values.
    #[test]
    fn train_help_states_the_library_defaults() {
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("train")
            .expect("a train command")
            .render_long_help()
            .to_string();
        let t = cae::train::TrainConfig::default();
        let d = cae::train::DataConfig::default();
        for (flag, value) in [
            ("epochs", t.epochs.to_string()),
            ("batch-size", t.batch_size.to_string()),
            ("lr", t.lr.to_string()),
            ("seed", t.seed.to_string()),
            ("val-fraction", d.val_fraction.to_string()),
        ] {
            let at = help.find(&format!("--{flag} <")).expect(flag);
            let next = help[at + 2..]
                .find("\n      -")
                .map_or(help.len(), |n| at + 2 + n);
            assert!(
                help[at..next].contains(&format!("[default: {value}]")),
                "--{flag}: {}",
                &help[at..next]
            );
        }
    }
}
