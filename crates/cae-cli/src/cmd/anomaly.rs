//! `cae anomaly threshold|score|eval`: one-class classification and anomaly detection with a
//! trained run. This file holds the loading the three share ([`Context`]); each subcommand
//! lives in `anomaly/`, their flags in `crate::args::anomaly`.

mod eval;
mod score;
mod threshold;

use super::BLOCK;
use crate::args::{AnomalyArgs, AnomalyCommand, PartitionArg, Source};
use cae::anomaly::fused::Fusion;
use cae::anomaly::run_data::anomaly_data;
use cae::anomaly::score::score_any_size;
use cae::anomaly::{AnomalySet, ScoreKind, ScoredSet, Threshold, score_set};
use cae::data::Shard;
use cae::denoise::Denoiser;
use cae::run::{DataRequest, LoadedRun, Partition};

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
    /// The images (all of them, or the current block: [`Context::load_blocks`]).
    pub set: AnomalySet,
    /// Position of `set`'s first image among all the images asked for.
    pub offset: usize,
    /// Where the next block comes from.
    blocks: Blocks,
    /// A fused score's reference and norms, read from the run once (`cae predict` scores
    /// image after image with the same context).
    fusion: std::cell::OnceCell<Fusion>,
}

/// The blocks after the current one.
enum Blocks {
    /// `set` holds every image.
    None,
    /// An image folder, decoded a block at a time: what to ask of it, how many images it
    /// lists in all.
    Folder {
        request: DataRequest,
        partition: Partition,
        total: usize,
    },
    /// A source that is read whole (one file, an MVTec layout, the run's partitions), handed
    /// out a block at a time so that its maps stay a block's.
    Loaded(AnomalySet),
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
        let (run, request, partition) = Context::open(source, partition, shard)?;
        let set = anomaly_data(&run, &request, partition)?;
        Ok(Context::new(run, set, Blocks::None))
    }

    /// [`Context::load_shard`], holding only the first [`BLOCK`] images in `set`;
    /// [`Context::next_block`] moves on. An image folder decodes each block's files as it
    /// comes, so memory does not grow with the folder; other sources are read whole once.
    pub fn load_blocks(
        source: &Source,
        partition: Partition,
        shard: Option<Shard>,
    ) -> anyhow::Result<Context> {
        let (run, request, partition) = Context::open(source, partition, shard)?;
        if let Some(total) = run.listed(&request)? {
            let first = DataRequest {
                window: Some(0..BLOCK),
                ..request.clone()
            };
            let set = anomaly_data(&run, &first, partition)?;
            let blocks = Blocks::Folder {
                request,
                partition,
                total,
            };
            return Ok(Context::new(run, set, blocks));
        }
        let all = anomaly_data(&run, &request, partition)?;
        let (set, blocks) = if all.images.len() > BLOCK {
            (all.block(0..BLOCK), Blocks::Loaded(all))
        } else {
            (all, Blocks::None)
        };
        Ok(Context::new(run, set, blocks))
    }

    /// The run, what is asked of its data and the partition the flags name.
    fn open(
        source: &Source,
        partition: Partition,
        shard: Option<Shard>,
    ) -> anyhow::Result<(LoadedRun, DataRequest, Partition)> {
        let run = source.run.load()?;
        let mut request = source.request(source.data.data.clone())?;
        request.shard = shard;
        Ok((run, request, Context::partition(source, partition)))
    }

    fn new(run: LoadedRun, set: AnomalySet, blocks: Blocks) -> Context {
        Context {
            run,
            set,
            offset: 0,
            blocks,
            fusion: std::cell::OnceCell::new(),
        }
    }

    /// Replaces `set` with the next block; false when the last one was scored.
    pub fn next_block(&mut self) -> anyhow::Result<bool> {
        let start = self.offset + self.set.images.len();
        let range = start..start + BLOCK;
        let set = match &self.blocks {
            Blocks::None => return Ok(false),
            Blocks::Folder { total, .. } if start >= *total => return Ok(false),
            Blocks::Loaded(all) if start >= all.images.len() => return Ok(false),
            Blocks::Folder {
                request, partition, ..
            } => {
                let next = DataRequest {
                    window: Some(range),
                    ..request.clone()
                };
                anomaly_data(&self.run, &next, *partition)?
            }
            Blocks::Loaded(all) => all.block(range),
        };
        self.offset = start;
        self.set = set;
        Ok(true)
    }

    fn partition(source: &Source, partition: Partition) -> Partition {
        match source.partition {
            Some(PartitionArg::Validation) => Partition::Validation,
            Some(PartitionArg::Test) => Partition::Test,
            Some(PartitionArg::Painted) => Partition::Painted,
            None => partition,
        }
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
