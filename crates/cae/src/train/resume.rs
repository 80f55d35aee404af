//! `--resume`: continuing a run from its checkpoint, under the run's lock. What may change is
//! [`ResumeChanges`] (the rest is fixed by the checkpoint: optimizer state, seeded streams,
//! partitions); every change is validated, and the data loaded, before anything is saved, so a
//! refused resume leaves the run as it was.

use super::checkpoint::Checkpoint;
use super::error::TrainError;
use super::fit::{Observer, TrainOutcome};
use super::session::{TrainSource, fit_run};
use crate::atomic::{TempNames, remove_stale_temps, write_atomic};
use crate::device::DeviceKind;
use crate::infer::check_fits;
use crate::run::{RunDir, RunDirError};
use std::path::Path;

/// The settings `--resume` may change; `None` keeps the run's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResumeChanges {
    /// A new epoch budget: at least the epochs already done (more to extend the run).
    pub epochs: Option<usize>,
    /// Early stopping from now on.
    pub patience: Option<usize>,
    /// Where to compute: a run trained on a GPU may continue on the CPU.
    pub device: Option<DeviceKind>,
    /// Leave out streamed files that cannot be read from now on (`--skip-bad`).
    pub skip_bad: bool,
    /// A new decoded-image budget for a streamed run (`--cache-mb`).
    pub cache_mb: Option<u64>,
}

/// Continues the run in `dir` from its checkpoint with `changes` applied (and recorded in its
/// `config.toml` once they are validated and the data has loaded).
pub fn train_resume(
    dir: &Path,
    changes: &ResumeChanges,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let run = RunDir::new(dir);
    // Not a run: say so before a lock file is made in someone's folder.
    if !RunDir::exists(dir) {
        return Err(RunDirError::NotARun(dir.display().to_string()).into());
    }
    let _lock = run.lock("resuming training")?;
    let saved = run.read_config()?;
    let mut config = saved.clone();
    if let Some(e) = changes.epochs {
        config.train.epochs = e;
    }
    if let Some(p) = changes.patience {
        config.train.patience = Some(p);
    }
    if let Some(d) = changes.device {
        config.train.device = d;
    }
    config.data.skip_bad |= changes.skip_bad;
    config.data.cache_mb = changes.cache_mb.or(config.data.cache_mb);
    config
        .data
        .load_options(config.train.seed)
        .map_err(|source| TrainError::ResumeSettings {
            run: dir.display().to_string(),
            source,
        })?;
    config
        .train
        .check()
        .map_err(|source| TrainError::ResumeSettings {
            run: dir.display().to_string(),
            source,
        })?;
    let spec = run.spec(&config)?;
    // Temp files of writes a kill interrupted (the files they were replacing are intact). The
    // lock is held, so no live writer's file is among them.
    for dir in [run.root.clone(), run.recon_dir()] {
        match remove_stale_temps(&dir, TempNames::WithLegacy) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(TrainError::Write {
                    path: dir.display().to_string(),
                    source: e,
                });
            }
            _ => {}
        }
    }
    // A run killed before its first checkpoint starts over; anything else continues.
    let checkpoint = if run.checkpoint().is_file() {
        Some(Checkpoint::load(&run.checkpoint())?)
    } else {
        None
    };
    let done = checkpoint.as_ref().map_or(0, |c| c.progress.epoch);
    if config.train.epochs < done {
        return Err(TrainError::EpochsDone {
            epochs: config.train.epochs,
            run: dir.display().to_string(),
            done,
        });
    }
    let all = TrainSource::load(&config.data, config.train.seed)?;
    check_fits(all.shape(), config.input_shape()?, &config.data.source)?;
    let now = all.fingerprint()?;
    match &config.data.fingerprint {
        Some(then) => {
            if let Some(change) = then.change(&now, &config.data.source) {
                observer.warn(&change);
            }
        }
        None => config.data.fingerprint = Some(now),
    }
    let data = all.partition(&config)?;
    if config != saved {
        let text = toml::to_string(&config).map_err(|source| TrainError::ConfigText {
            what: "config",
            source,
        })?;
        write_atomic(&run.config(), text.as_bytes()).map_err(|source| TrainError::Write {
            path: run.config().display().to_string(),
            source,
        })?;
    }
    fit_run(&run, &config, &spec, &data, checkpoint, observer)
}
