//! Starting and resuming runs: creating the run directory (never over an existing run),
//! writing the resolved config, reloading everything for `--resume`.

use super::checkpoint::Checkpoint;
use super::config::{DataConfig, RunConfig, TrainConfig};
use super::fit::{Observer, TrainError, TrainOutcome, check_objective, fit, load_data};
use crate::atomic::{remove_stale_temps, write_atomic};
use crate::run_dir::RunDir;
use crate::spec::ArchSource;
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

/// Creates `out` and trains a new run in it.
pub fn train_new(
    out: &Path,
    new: &NewRun,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let setup = |m: String| TrainError::Setup(m);
    if RunDir::exists(out) {
        return Err(setup(format!(
            "{} already holds a run; continue it with `cae train --resume {}` or pick another --out",
            out.display(),
            out.display()
        )));
    }
    if out.is_file() {
        return Err(setup(format!(
            "{} is a file, not a directory",
            out.display()
        )));
    }
    new.train.check().map_err(setup)?;
    if new.data.source.is_empty() {
        return Err(setup(
            "no data: pass --data (a path or builtin:shapes)".into(),
        ));
    }
    check_resized_shape(new).map_err(setup)?;
    let all = load_data(&new.data, new.train.seed).map_err(setup)?;
    let spec = new
        .arch
        .resolve(&new.params, Some(all.shape))
        .map_err(|e| setup(e.to_string()))?;
    // Checked before the run directory exists, so a refused run leaves nothing behind.
    check_objective(&spec, &new.train).map_err(setup)?;
    let config = RunConfig {
        arch: spec.spec.clone(),
        input: all.shape.to_string(),
        data: new.data.clone(),
        train: new.train.clone(),
    };
    // The plain split, or a one-class run's partitions with its held-out monitors.
    let data = crate::anomaly::partition::fit_data(all, &config).map_err(setup)?;
    std::fs::create_dir_all(out).map_err(|source| TrainError::Write {
        path: out.display().to_string(),
        source,
    })?;
    let run = RunDir::new(out);
    let text = toml::to_string(&config).map_err(|e| setup(format!("writing config: {e}")))?;
    write_atomic(&run.config(), text.as_bytes()).map_err(|source| TrainError::Write {
        path: run.config().display().to_string(),
        source,
    })?;
    fit(&run, &config, &spec, &data, None, observer)
}

/// With `--resize` the data's height and width are known before any image is read, so a
/// model that cannot take them is refused first: `--resize 16384x16384` used to decode and
/// resize every image (2 GiB, 7 s for one) before the spec check said the model was too
/// large. The channels are the data's unless `--channels` forces them, so the shape passes
/// if the model takes it with either 1 or 3; when neither fits, the error is the spec
/// check's own for the first candidate.
fn check_resized_shape(new: &NewRun) -> Result<(), String> {
    let Some(hw) = &new.data.resize else {
        return Ok(());
    };
    // Options the loader would refuse (a side above 16384) get its own message first.
    let options = new.data.load_options(new.train.seed)?;
    options.check().map_err(|e| e.to_string())?;
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
            Err(e) => {
                first_error.get_or_insert_with(|| format!("--resize {hw}: {e}"));
            }
        }
    }
    Err(first_error.unwrap_or_default())
}

/// Continues the run in `dir` from its checkpoint; `epochs` may raise the epoch budget.
pub fn train_resume(
    dir: &Path,
    epochs: Option<usize>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let setup = |m: String| TrainError::Setup(m);
    let run = RunDir::new(dir);
    let mut config = run.read_config().map_err(|e| setup(e.to_string()))?;
    let spec = run.spec(&config).map_err(|e| setup(e.to_string()))?;
    if let Some(e) = epochs {
        config.train.epochs = e;
        let text = toml::to_string(&config).map_err(|e| setup(format!("writing config: {e}")))?;
        write_atomic(&run.config(), text.as_bytes()).map_err(|source| TrainError::Write {
            path: run.config().display().to_string(),
            source,
        })?;
    }
    // Temp files of writes a kill interrupted; the files they were replacing are intact.
    for dir in [run.root.clone(), run.recon_dir()] {
        match remove_stale_temps(&dir) {
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
    let data = crate::anomaly::partition::load_fit_data(&config).map_err(setup)?;
    fit(&run, &config, &spec, &data, checkpoint, observer)
}
