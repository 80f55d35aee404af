//! `cae anomaly threshold|score|eval`: one-class classification and anomaly detection with a
//! trained run. This file holds the loading the three share ([`Context`]); each subcommand
//! lives in `anomaly/`, their flags in `crate::args::anomaly`.

mod eval;
mod score;
mod threshold;

use crate::args::{AnomalyArgs, AnomalyCommand, PartitionArg, Source};
use cae::anomaly::fused::Fusion;
use cae::anomaly::run_data::anomaly_data;
use cae::anomaly::score::score_any_size;
use cae::anomaly::{AnomalySet, ScoreKind, ScoredSet, Threshold, score_set};
use cae::data::Shard;
use cae::denoise::Denoiser;
use cae::run::{LoadedRun, Partition};

pub fn run(a: AnomalyArgs) -> anyhow::Result<()> {
    match a.command {
        AnomalyCommand::Threshold(t) => threshold::run(t),
        AnomalyCommand::Score(s) => score::run(s),
        AnomalyCommand::Eval(e) => eval::run(e),
    }
}

/// A loaded run and the images to work on.
pub struct Context {
    pub run: LoadedRun,
    pub set: AnomalySet,
    /// A fused score's reference and norms, read from the run once (`cae predict` scores
    /// image after image with the same context).
    fusion: std::cell::OnceCell<Fusion>,
}

impl Context {
    /// Loads the run and the data (`--data`, else `--partition`, else the run's held-out
    /// `partition`).
    pub fn load(source: &Source, partition: Partition) -> anyhow::Result<Context> {
        Context::load_shard(source, partition, None)
    }

    /// [`Context::load`], keeping only the images of `shard`.
    pub fn load_shard(
        source: &Source,
        partition: Partition,
        shard: Option<Shard>,
    ) -> anyhow::Result<Context> {
        let run = source.run.load()?;
        let mut request = source.request(source.data.data.clone())?;
        request.shard = shard;
        let partition = match source.partition {
            Some(PartitionArg::Validation) => Partition::Validation,
            Some(PartitionArg::Test) => Partition::Test,
            Some(PartitionArg::Painted) => Partition::Painted,
            None => partition,
        };
        let set = anomaly_data(&run, &request, partition)?;
        Ok(Context {
            run,
            set,
            fusion: std::cell::OnceCell::new(),
        })
    }

    /// Scores every image with `kind`; a `fused` kind takes its norms from `threshold` (fitted
    /// on it) and its reference images from the run.
    pub fn score(
        &self,
        kind: ScoreKind,
        threshold: Option<&Threshold>,
        batch_size: usize,
        keep: bool,
    ) -> anyhow::Result<ScoredSet> {
        let model = self.score_model(kind, batch_size, keep)?;
        if !matches!(kind, ScoreKind::Fused { .. }) {
            return Ok(model);
        }
        if let Some(f) = self.fusion.get().filter(|f| f.kind == kind) {
            return Ok(f.apply(model, &self.set.images)?);
        }
        let loaded = Fusion::of_threshold(&self.run.dir.root, kind, threshold)?;
        let scored = loaded.apply(model, &self.set.images)?;
        let _ = self.fusion.set(loaded);
        Ok(scored)
    }

    /// The network's part of `kind` (all of it but for `fused`) for every image.
    pub fn score_model(
        &self,
        kind: ScoreKind,
        batch_size: usize,
        keep: bool,
    ) -> anyhow::Result<ScoredSet> {
        kind.check_model(&self.run.spec)?;
        let kind = kind.model_part();
        if self.set.images.shape != self.run.spec.input {
            // Another size than the model's: whole images or blended tiles.
            let run = self.run.dir.load_model(&self.run.device)?;
            let mut runner = Denoiser::new(run, &self.run.device)?;
            return Ok(score_any_size(&mut runner, &self.set.images, kind, keep)?);
        }
        Ok(score_set(
            &self.run.model,
            &self.set.images,
            kind,
            batch_size.max(1),
            &self.run.device,
            keep,
        )?)
    }
}
