//! Starting runs: checking the output folder (never over a run or the user's files, see
//! `crate::output`), validating everything, then creating the run directory under its lock
//! and writing the resolved config. Resuming lives in `resume`.

use super::checkpoint::Checkpoint;
use super::error::TrainError;
use super::fit::{Observer, TrainOutcome, fit, fit_from};
use super::objective::check_objective;
use crate::atomic::write_atomic;
use crate::data::Fingerprint;
use crate::data::{FileSet, ImageSet, ImageShape, decode_workers};
use crate::output::{Overwrite, check_new_run};
use crate::run::config::{DataConfig, Keep, RunConfig, TrainConfig};
use crate::run::load_data;
use crate::run::{FitData, PartitionError, RunDir, TrainImages, fit_data, stream_fit_data};
use crate::spec::{ArchSource, ValidSpec};
use std::path::Path;

/// What a new run is asked to be: an architecture (preset or file) with parameter overrides,
/// data and training settings. The input shape comes from the data.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub arch: ArchSource,
    pub params: Vec<(String, f64)>,
    pub data: DataConfig,
    pub train: TrainConfig,
}

/// Creates `out` and trains a new run in it. `out` must be new or empty; with
/// [`Overwrite::Replace`] (`--force`) it may hold other files, never one a run writes.
pub fn train_new(
    out: &Path,
    new: &NewRun,
    overwrite: Overwrite,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    check_new_run(out, overwrite)?;
    new.train.check()?;
    if new.data.source.is_empty() {
        return Err(TrainError::NoData);
    }
    check_resized_shape(new)?;
    if new.data.stream && new.train.stacked {
        return Err(super::stacked::StackError::Streamed.into());
    }
    let all = TrainSource::load(&new.data, new.train.seed)?;
    let spec = new.arch.resolve(&new.params, Some(all.shape()))?;
    // Checked before the run directory exists, so a refused run leaves nothing behind.
    check_objective(&spec, &new.train)?;
    let mut data_config = new.data.clone();
    data_config.fingerprint = Some(all.fingerprint()?);
    let mut train = new.train.clone();
    train.keep = Some(
        train
            .keep
            .unwrap_or(Keep::default_for(train.schedule, train.patience)),
    );
    let config = RunConfig {
        arch: spec.spec.clone(),
        input: all.shape().to_string(),
        data: data_config,
        train,
    };
    // The plain split, or a one-class run's partitions with its held-out monitors.
    let data = all.partition(&config)?;
    std::fs::create_dir_all(out).map_err(|source| TrainError::Write {
        path: out.display().to_string(),
        source,
    })?;
    let run = RunDir::new(out);
    let _lock = run.lock("training")?;
    // Again under the lock: another process may have started a run here meanwhile.
    check_new_run(out, overwrite)?;
    let text = toml::to_string(&config).map_err(|source| TrainError::ConfigText {
        what: "config",
        source,
    })?;
    write_atomic(&run.config(), text.as_bytes()).map_err(|source| TrainError::Write {
        path: run.config().display().to_string(),
        source,
    })?;
    fit_run(&run, &config, &spec, &data, None, observer)
}

/// [`fit`] for a new or resumed run; a stacked run without a checkpoint first pretrains its
/// encoder layer by layer (`stack/stage-N/`, `super::stacked`) and starts from those weights.
pub(super) fn fit_run(
    run: &RunDir,
    config: &RunConfig,
    spec: &ValidSpec,
    data: &FitData<TrainImages>,
    checkpoint: Option<Checkpoint>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    if checkpoint.is_none() && config.train.stacked {
        let initial = super::stacked::pretrain(run, config, spec, data, observer)?;
        return fit_from(run, config, spec, data, None, Some(initial), observer);
    }
    fit(run, config, spec, data, checkpoint, observer)
}

/// With `--resize` the data's height and width are known before any image is read, so a
/// model that cannot take them is refused first: `--resize 16384x16384` used to decode and
/// resize every image (2 GiB, 7 s for one) before the spec check said the model was too
/// large. The channels are the data's unless `--channels` forces them, so the shape passes
/// if the model takes it with either 1 or 3; when neither fits, the error is the spec
/// check's own for the first candidate.
fn check_resized_shape(new: &NewRun) -> Result<(), TrainError> {
    let Some(hw) = &new.data.resize else {
        return Ok(());
    };
    // Options the loader would refuse (a side above 16384) get its own message first.
    let options = new.data.load_options(new.train.seed)?;
    options
        .check()
        .map_err(|e| TrainError::Data(crate::run::PartitionError::Load(e)))?;
    let Some((height, width)) = options.resize else {
        return Ok(());
    };
    let candidates = match new.data.channels {
        Some(c) => vec![c],
        None => vec![1, 3],
    };
    let mut first_error = None;
    for channels in candidates {
        let shape = crate::data::ImageShape {
            channels,
            height,
            width,
        };
        match new.arch.resolve(&new.params, Some(shape)) {
            Ok(_) => return Ok(()),
            Err(source) => {
                first_error.get_or_insert(TrainError::Resize {
                    resize: hw.to_string(),
                    source,
                });
            }
        }
    }
    Err(first_error.unwrap_or(TrainError::NoData))
}

/// A run's data as training reads it: decoded into memory, or (`--stream`) an image folder's
/// file list. New runs and resumed ones load it the same way.
pub(super) enum TrainSource {
    Memory(ImageSet),
    /// The file list, and whether files that cannot be read are left out (`--skip-bad`).
    Files(FileSet, bool),
}

impl TrainSource {
    /// Loads (or, streamed, lists and checks) the images `data` names.
    pub(super) fn load(data: &DataConfig, seed: u64) -> Result<TrainSource, TrainError> {
        if !data.stream {
            return Ok(TrainSource::Memory(load_data(data, seed)?));
        }
        if data.source.is_empty() {
            return Err(TrainError::NoData);
        }
        let options = data.load_options(seed)?;
        let files =
            FileSet::open(&data.source, &options, data.skip_bad).map_err(PartitionError::Load)?;
        Ok(TrainSource::Files(files, data.skip_bad))
    }

    pub(super) fn shape(&self) -> ImageShape {
        match self {
            TrainSource::Memory(set) => set.shape,
            TrainSource::Files(files, _) => files.shape,
        }
    }

    /// The data's fingerprint (a streamed folder is decoded once for it, a chunk at a time).
    pub(super) fn fingerprint(&self) -> Result<Fingerprint, TrainError> {
        Ok(match self {
            TrainSource::Memory(set) => Fingerprint::of(set),
            TrainSource::Files(files, skip_bad) => files
                .fingerprint(decode_workers(), *skip_bad)
                .map_err(PartitionError::Load)?,
        })
    }

    /// The run's partitions ([`fit_data`], [`stream_fit_data`]).
    pub(super) fn partition(self, config: &RunConfig) -> Result<FitData<TrainImages>, TrainError> {
        Ok(match self {
            TrainSource::Memory(set) => {
                let data = fit_data(set, config)?;
                FitData {
                    train: TrainImages::Memory(data.train),
                    val: TrainImages::Memory(data.val),
                    monitors: data.monitors,
                }
            }
            TrainSource::Files(files, _) => stream_fit_data(files, config)?,
        })
    }
}
