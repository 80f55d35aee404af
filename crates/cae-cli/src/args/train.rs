//! The flags of `cae train` (and of `cae demo`, which trains).

use super::{DataArgs, DeviceArg};
use cae::run::DataConfig;
use clap::Args;
use std::path::PathBuf;

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
    /// Read the training images from their files a batch at a time (decode workers ahead of
    /// the step) instead of decoding the folder into memory first: for image folders (and
    /// MVTec layouts) larger than memory. Same images, same run; validation images are
    /// decoded into memory once, so keep --val-fraction to what fits.
    #[arg(long, conflicts_with = "resume")]
    pub stream: bool,
    /// With --stream: leave out a training file that cannot be read any more (deleted,
    /// truncated, corrupt, resized) and count it, instead of stopping at it; each epoch warns
    /// with the count and the first files. May be turned on when resuming a run that stopped
    /// at such a file.
    #[arg(long)]
    pub skip_bad: bool,
    /// With --stream: keep up to MB MiB of decoded training images between epochs, as their
    /// files store them (8-bit images one byte per value, a quarter of an in-memory set), so
    /// later epochs read no file that fitted; the values trained on are the same. May change
    /// on --resume.
    #[arg(long, value_name = "MB")]
    pub cache_mb: Option<u64>,
    /// Seed of the training/validation/test split alone (default: --seed): runs of different
    /// --seed with one --split-seed hold out the same images, as an ensemble's members or a
    /// comparison of seeds needs.
    #[arg(long, value_name = "SEED")]
    pub split_seed: Option<u64>,
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
    /// dark,texture,crack,line (any of those; share of corrupted images after @, default 0.5).
    /// Loss: focal.
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
    pub one_class: OneClassArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One-class training flags of `cae train`.
#[derive(Debug, Clone, Default, Args)]
pub struct OneClassArgs {
    /// Train on this class only (label number or class-folder name); all others are anomalies,
    /// held out and monitored per epoch (normal_mse, anomalous_mse, monitors.png).
    #[arg(long, value_name = "C")]
    pub normal_class: Option<String>,
    /// With --normal-class: hold out this share of all images as the test partition that
    /// `cae anomaly eval RUN` uses (never trained on, never used for thresholds).
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
}

impl OneClassArgs {
    /// Copies the one-class flags into the run's data settings.
    pub fn apply(&self, data: &mut DataConfig) {
        if self.normal_class.is_some() {
            data.normal_class = self.normal_class.clone();
        }
        if self.test_fraction.is_some() {
            data.test_fraction = self.test_fraction;
        }
    }
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
