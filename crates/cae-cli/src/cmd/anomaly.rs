//! `cae anomaly threshold|score|eval`: one-class classification and anomaly detection with a
//! trained run. This file holds the arguments the three share (run, data, normal class, score)
//! and the loading they share; each subcommand lives in `anomaly/`. `--normal-class` and
//! `--test-fraction` for `cae train` are defined here too ([`OneClassArgs`]).

mod eval;
mod score;
mod threshold;

use crate::args::DataArgs;
use crate::args::DeviceArg;
use anyhow::bail;
use cae::Device;
use cae::anomaly::score::score_any_size;
use cae::anomaly::{AnomalySet, ScoreKind, ScoredSet, Threshold, score_set};
use cae::data::Shard;
use cae::denoise::Denoiser;
use cae::run::{DataRequest, LoadedRun, Partition, RunDir};
use cae::spec::ValidSpec;
use cae::train::DataConfig;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct AnomalyArgs {
    #[command(subcommand)]
    pub command: AnomalyCommand,
}

#[derive(Debug, Subcommand)]
pub enum AnomalyCommand {
    /// Fit the decision threshold on held-out images; stored in RUN/threshold.json (replacing
    /// an earlier one), with the run locked meanwhile.
    Threshold(threshold::ThresholdArgs),
    /// Score, normalised score and label per image; overlay pictures with -o DIR.
    Score(score::ScoreArgs),
    /// Image AUROC, AUPR, F1, precision, recall; pixel AUROC and PRO with masks; pictures with -o.
    Eval(eval::EvalArgs),
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

/// Copies the one-class flags into the run's data settings.
pub fn apply_one_class(args: &OneClassArgs, data: &mut DataConfig) {
    if args.normal_class.is_some() {
        data.normal_class = args.normal_class.clone();
    }
    if args.test_fraction.is_some() {
        data.test_fraction = args.test_fraction;
    }
}

pub fn run(a: AnomalyArgs) -> anyhow::Result<()> {
    match a.command {
        AnomalyCommand::Threshold(t) => threshold::run(t),
        AnomalyCommand::Score(s) => score::run(s),
        AnomalyCommand::Eval(e) => eval::run(e),
    }
}

/// The run and the images a subcommand works on.
#[derive(Debug, Args)]
pub struct Source {
    /// A run directory made by `cae train`.
    pub run: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// The normal class of labelled --data (label number or class-folder name; default: the
    /// run's, or a folder named good/normal); every other class is anomalous.
    #[arg(long, value_name = "C")]
    pub normal_class: Option<String>,
    /// Without --data: which held-out partition of the run to use (threshold: validation;
    /// score, eval: test). `painted`: the validation images, then every other one with a
    /// painted defect (what training's val_auroc measures), masks included.
    #[arg(long, value_enum, conflicts_with = "data")]
    pub partition: Option<PartitionArg>,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
}

/// `--partition`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PartitionArg {
    Validation,
    Test,
    Painted,
}

/// `--score`, `--sigma` and `--window`.
#[derive(Debug, Args)]
pub struct ScoreChoice {
    /// mse | mae | ssim | max-smoothed | mask (default: the threshold's, else mask for a
    /// segmentation run and mse for a reconstruction).
    #[arg(long, value_name = "KIND")]
    pub score: Option<String>,
    /// σ in pixels of the max-smoothed score's Gaussian (default 2).
    #[arg(long, value_name = "PX")]
    pub sigma: Option<f64>,
    /// Side in pixels of the mask score's mean filter (odd, default 9).
    #[arg(long, value_name = "PX")]
    pub window: Option<usize>,
}

impl ScoreChoice {
    /// The asked kind, if any.
    pub fn asked(&self) -> anyhow::Result<Option<ScoreKind>> {
        match (&self.score, self.sigma, self.window) {
            (None, None, None) => Ok(None),
            (None, Some(_), _) => bail!("--sigma needs --score max-smoothed"),
            (None, _, Some(_)) => bail!("--window needs --score mask"),
            (Some(s), sigma, window) => Ok(Some(
                ScoreKind::parse(s, sigma, window).map_err(anyhow::Error::msg)?,
            )),
        }
    }

    /// The asked kind, else the threshold's, else the run's default
    /// ([`ScoreKind::default_for`]).
    pub fn resolve(
        &self,
        threshold: Option<&Threshold>,
        spec: &ValidSpec,
    ) -> anyhow::Result<ScoreKind> {
        Ok(match (self.asked()?, threshold) {
            (Some(k), _) => k,
            (None, Some(t)) => t.score,
            (None, None) => ScoreKind::default_for(spec),
        })
    }
}

/// A loaded run, its device and the images to work on.
pub struct Context {
    pub path: PathBuf,
    pub run: LoadedRun,
    pub device: Device,
    pub set: AnomalySet,
}

impl Source {
    /// Loads the run and the data (`--data`, else `--partition`, else the run's held-out
    /// `partition`).
    pub fn load(&self, partition: Partition) -> anyhow::Result<Context> {
        self.load_shard(partition, None)
    }

    /// [`Source::load`], keeping only the images of `shard`.
    pub fn load_shard(
        &self,
        partition: Partition,
        shard: Option<Shard>,
    ) -> anyhow::Result<Context> {
        let device = self.device.device()?;
        let run = RunDir::new(&self.run).load_model(&device)?;
        let mut request = self.request(self.data.data.clone())?;
        request.shard = shard;
        let partition = match self.partition {
            Some(PartitionArg::Validation) => Partition::Validation,
            Some(PartitionArg::Test) => Partition::Test,
            Some(PartitionArg::Painted) => Partition::Painted,
            None => partition,
        };
        let set = run.anomaly_data(&request, partition)?;
        Ok(Context {
            path: self.run.clone(),
            run,
            device,
            set,
        })
    }

    /// What these flags ask of `source` (or, for `None`, of the run's own partitions); the run's
    /// data rule fills in the rest ([`LoadedRun::anomaly_data`]).
    pub fn request(&self, source: Option<String>) -> anyhow::Result<DataRequest> {
        let request = DataRequest {
            source,
            normal_class: self.normal_class.clone(),
            ..self.data.request()?
        };
        if request.source.is_none() && (self.normal_class.is_some() || self.data.classes.is_some())
        {
            bail!(
                "--normal-class and --classes apply to --data; without --data the run's own partitions are used"
            );
        }
        Ok(request)
    }
}

impl Context {
    /// Scores every image with `kind`.
    pub fn score(
        &self,
        kind: ScoreKind,
        batch_size: usize,
        keep: bool,
    ) -> anyhow::Result<ScoredSet> {
        kind.check_model(&self.run.spec)
            .map_err(anyhow::Error::msg)?;
        if self.set.images.shape != self.run.spec.input {
            // Another size than the model's: whole images or blended tiles.
            let run = RunDir::new(&self.path).load_model(&self.device)?;
            let mut runner = Denoiser::new(run, &self.device)?;
            return score_any_size(&mut runner, &self.set.images, kind, keep)
                .map_err(anyhow::Error::msg);
        }
        score_set(
            &self.run.model,
            &self.set.images,
            kind,
            batch_size.max(1),
            &self.device,
            keep,
        )
        .map_err(anyhow::Error::msg)
    }
}
