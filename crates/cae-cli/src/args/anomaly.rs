//! The flags of `cae anomaly threshold|score|eval` and `cae predict`: the run and images they
//! share ([`Source`]), the score they use ([`ScoreChoice`]) and each subcommand's own.

use super::{DataArgs, RunArgs};
use anyhow::bail;
use cae::anomaly::{ScoreKind, Threshold};
use cae::run::DataRequest;
use cae::spec::ValidSpec;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Overlay pictures `anomaly score -o` writes unless told otherwise: enough to look through,
/// not one per image of a large set.
pub const DEFAULT_MAX_OVERLAYS: usize = 100;

#[derive(Debug, Args)]
pub struct AnomalyArgs {
    #[command(subcommand)]
    pub command: AnomalyCommand,
}

#[derive(Debug, Subcommand)]
pub enum AnomalyCommand {
    /// Fit the decision threshold on held-out images; stored in RUN/threshold.json (replacing
    /// an earlier one), with the run locked meanwhile.
    Threshold(ThresholdArgs),
    /// Score, normalised score and label per image; overlay pictures with -o DIR.
    Score(ScoreArgs),
    /// Image AUROC, AUPR, F1, precision, recall; pixel AUROC and PRO with masks; pictures with -o.
    Eval(AnomalyEvalArgs),
}

/// The run and the images a subcommand works on.
#[derive(Debug, Args)]
pub struct Source {
    #[command(flatten)]
    pub run: RunArgs,
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
}

impl Source {
    /// What these flags ask of `source` (or, for `None`, of the run's own partitions); the run's
    /// data rule fills in the rest (`cae::run::LoadedRun::anomaly_data`).
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
    /// mse | mae | ssim | max-smoothed | mask | fused (default: the threshold's, else mask for
    /// a segmentation run and mse for a reconstruction; fused is fitted with its threshold).
    #[arg(long, value_name = "KIND")]
    pub score: Option<String>,
    /// σ in pixels of the max-smoothed score's Gaussian (default 2).
    #[arg(long, value_name = "PX")]
    pub sigma: Option<f64>,
    /// Side in pixels of the mask (and fused) score's mean filter (odd, default 9).
    #[arg(long, value_name = "PX")]
    pub window: Option<usize>,
}

impl ScoreChoice {
    /// The asked kind, if any.
    pub fn asked(&self) -> anyhow::Result<Option<ScoreKind>> {
        match (&self.score, self.sigma, self.window) {
            (None, None, None) => Ok(None),
            (None, Some(_), _) => bail!("--sigma needs --score max-smoothed"),
            (None, _, Some(_)) => bail!("--window needs --score mask or fused"),
            (Some(s), sigma, window) => Ok(Some(ScoreKind::parse(s, sigma, window)?)),
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

#[derive(Debug, Args)]
pub struct ThresholdArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub score: ScoreChoice,
    /// This percentile (0-100) of the normal images' scores.
    #[arg(long, value_name = "P", group = "method")]
    pub percentile: Option<f64>,
    /// Target false positive rate on unseen normal images, e.g. 0.01 (normal images only).
    #[arg(long, value_name = "RATE", group = "method")]
    pub fpr: Option<f64>,
    /// The F1-optimal threshold (needs normal and anomalous images).
    #[arg(long, group = "method")]
    pub f1: bool,
    /// A threshold given by hand.
    #[arg(long, value_name = "X", group = "method")]
    pub value: Option<f64>,
    /// With --value: the pixel threshold for predicted masks (default: none, or --value for
    /// --score max-smoothed).
    #[arg(long, value_name = "X", requires = "value")]
    pub pixel_value: Option<f64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub score: ScoreChoice,
    /// Write scores.csv and one overlay PNG per image into this folder (new or empty unless
    /// --force).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// At most this many overlay pictures, of the first images (scores.csv lists every image)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_OVERLAYS)]
    pub max_overlays: usize,
    /// Also write one contact sheet PNG of overlays: the first 8 truly anomalous images above the
    /// first 4 truly normal ones (the first 12 images when the truth is unknown).
    #[arg(long, value_name = "PNG")]
    pub sheet: Option<PathBuf>,
    /// Write into a non-empty --out folder and over an existing --sheet, replacing files of the
    /// names written (other files stay; a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    /// Score only block K of N of the sorted images (K from 0, e.g. a Kubernetes Indexed Job's
    /// $JOB_COMPLETION_INDEX/4): the shards' --jsonl outputs, concatenated in order, are the
    /// unsharded output. Image folders decode only their shard's files. With -o, give each
    /// shard its own folder (names count from 0 within a shard).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// One JSON object per image and line (no summary), for concatenating shards.
    #[arg(long)]
    pub jsonl: bool,
}

#[derive(Debug, Args)]
pub struct AnomalyEvalArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub score: ScoreChoice,
    /// Write histogram.png, roc.png, pro.png (with masks) and scores.csv into this folder (new
    /// or empty unless --force).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into a non-empty --out folder, replacing files of the names written (other files
    /// stay; a run's own files are refused even so).
    #[arg(long)]
    pub force: bool,
    /// Skip the no-learning per-pixel Gaussian baseline (fitted on the run's training
    /// partition) that is otherwise evaluated beside the model.
    #[arg(long)]
    pub no_baseline: bool,
    #[arg(long)]
    pub json: bool,
}

// `cae predict RUN IMAGE…`: RUN needs a fitted threshold (`cae anomaly threshold RUN`), which
// the command's about line says.
#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Image files (PNG, JPEG, BMP).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// One JSON object per image (JSON lines).
    #[arg(long)]
    pub json: bool,
}
