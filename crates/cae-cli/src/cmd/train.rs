//! `cae train`: defaults, then a `--config` file, then flags; or `--resume RUN`.

use super::print_json;
use crate::args::TrainArgs;
use crate::args::parse_params;
use crate::progress::Progress;
use anyhow::{Context, bail};
use cae::output::Overwrite;
use cae::run::RunDir;
use cae::run::{DataConfig, TrainConfig};
use cae::spec::ArchSource;
use cae::train::{NewRun, ResumeChanges, TrainOutcome, train_new, train_resume};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The `--config` file: every section optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TrainFile {
    /// A preset or spec file, or an inline spec table (a run's own `config.toml`).
    arch: Option<ArchSource>,
    /// Written by runs (`config.toml`); the data decides the input, so it is only checked.
    input: Option<String>,
    params: BTreeMap<String, f64>,
    out: Option<PathBuf>,
    data: DataConfig,
    train: TrainConfig,
}

fn read_file(path: &Path) -> anyhow::Result<TrainFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.to_string();
        let first = msg
            .lines()
            .find(|l| !l.trim().is_empty() && !l.contains('|'))
            .unwrap_or("invalid TOML")
            .to_string();
        let detail = msg.lines().last().unwrap_or_default().to_string();
        anyhow::anyhow!("{}: {first}: {detail}", path.display())
    })
}

/// Set by the first Ctrl-C or SIGTERM: training stops after its current step.
static STOP: AtomicBool = AtomicBool::new(false);

/// The first Ctrl-C (or SIGTERM) asks training to stop at the next step, keeping the last
/// checkpoint; a second one ends the process at once.
fn stop_on_signals() {
    // Without a handler (one is installed already) signals keep their default effect, which
    // the checkpoint survives too (see the crash test): nothing to report.
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    stop_on_signals();
    let mut progress = StageNotes(Progress::new(false));
    let (out, outcome) = if let Some(dir) = &a.resume {
        let changes = resume_changes(&a, dir)?;
        let outcome = train_resume(dir, &changes, &mut progress)?;
        (dir.clone(), outcome)
    } else {
        let file = match &a.config {
            Some(p) => read_file(p)?,
            None => TrainFile::default(),
        };
        let (mut data, mut train) = (file.data, file.train);
        apply_flags(&a, &mut data, &mut train)?;
        if let Some(input) = &file.input {
            cae::data::ImageShape::parse(input).map_err(|e| {
                anyhow::anyhow!(
                    "{}: input: {e}",
                    a.config.as_deref().unwrap_or(Path::new("")).display()
                )
            })?;
        }
        let arch = a
            .arch
            .clone()
            .map(ArchSource::Named)
            .or(file.arch)
            .unwrap_or_else(|| ArchSource::Named("pytorch-small".into()));
        let mut params: Vec<(String, f64)> = file.params.into_iter().collect();
        params.extend(parse_params(&a.param)?);
        let out = a
            .out
            .clone()
            .or(file.out)
            .unwrap_or_else(|| PathBuf::from("runs").join(arch.stem()));
        let new = NewRun {
            arch,
            params,
            data,
            train,
        };
        eprintln!("training into {}", out.display());
        let outcome = train_new(&out, &new, Overwrite::from_force(a.force), &mut progress)?;
        (out, outcome)
    };
    report(&out, &outcome, a.json)
}

/// The data and training flags over `data` and `train` (a config file's, or a run's when
/// resuming, where [`resume_changes`] compares the result with the run's own).
fn apply_flags(
    a: &TrainArgs,
    data: &mut DataConfig,
    train: &mut TrainConfig,
) -> anyhow::Result<()> {
    let d = &a.data;
    if let Some(s) = &d.data {
        data.source = s.clone();
    }
    data.channels = d.channels.or(data.channels);
    data.resize = d.resize.map(|r| r.to_string()).or(data.resize.take());
    data.classes = d.classes.clone().or(data.classes.take());
    data.limit = d.limit.or(data.limit);
    if let Some(n) = &a.normalize {
        data.normalize = Some(n.parse().map_err(anyhow::Error::msg)?);
    }
    data.val_fraction = a.val_fraction.unwrap_or(data.val_fraction);
    data.stream |= a.stream;
    data.skip_bad |= a.skip_bad;
    data.cache_mb = a.cache_mb.or(data.cache_mb);
    data.split_seed = a.split_seed.or(data.split_seed);
    a.one_class.apply(data);
    train.epochs = a.epochs.unwrap_or(train.epochs);
    train.batch_size = a.batch_size.unwrap_or(train.batch_size);
    train.lr = a.lr.unwrap_or(train.lr);
    train.weight_decay = a.weight_decay.unwrap_or(train.weight_decay);
    if let Some(l) = &a.loss {
        train.loss = l.parse().map_err(anyhow::Error::msg)?;
    }
    train.seed = a.seed.unwrap_or(train.seed);
    train.patience = a.patience.or(train.patience);
    if let Some(dev) = a.device {
        train.device = dev.into();
    }
    if let Some(noise) = &a.noise {
        train.noise = Some(noise.parse()?);
    }
    if let Some(spec) = &a.synthetic {
        train.synthetic = Some(spec.parse()?);
        // A mask is scored with the focal loss unless the user picked one.
        if a.loss.is_none() && train.loss == cae::run::LossKind::Mse {
            train.loss = cae::run::LossKind::Focal;
        }
    }
    if let Some(f) = &a.augment {
        train.augment = Some(f.parse().map_err(anyhow::Error::msg)?);
    }
    if let Some(s) = &a.schedule {
        train.schedule = s.parse().map_err(anyhow::Error::msg)?;
    }
    if let Some(k) = &a.keep {
        train.keep = Some(k.parse().map_err(anyhow::Error::msg)?);
    }
    train.stacked |= a.stacked;
    train.stack_epochs = a.stack_epochs.or(train.stack_epochs);
    Ok(())
}

/// What `--resume` is asked to change. `--epochs`, `--patience` and `--device` may change and
/// are recorded; every other flag is fixed by the run's checkpoint (optimizer state, seeded
/// streams, partitions) and refused unless it repeats the run's own value, so that nothing
/// given is dropped without a word.
fn resume_changes(a: &TrainArgs, dir: &Path) -> anyhow::Result<ResumeChanges> {
    let config = RunDir::new(dir).read_config()?;
    let (mut data, mut train) = (config.data.clone(), config.train.clone());
    apply_flags(a, &mut data, &mut train)?;
    let (d, t) = (&config.data, &config.train);
    let fixed = [
        ("--data", data.source != d.source),
        ("--channels", data.channels != d.channels),
        ("--resize", data.resize != d.resize),
        ("--classes", data.classes != d.classes),
        ("--limit", data.limit != d.limit),
        ("--val-fraction", data.val_fraction != d.val_fraction),
        ("--split-seed", data.split_seed != d.split_seed),
        ("--normal-class", data.normal_class != d.normal_class),
        ("--test-fraction", data.test_fraction != d.test_fraction),
        ("--batch-size", train.batch_size != t.batch_size),
        ("--lr", train.lr != t.lr),
        ("--weight-decay", train.weight_decay != t.weight_decay),
        ("--loss", train.loss != t.loss),
        ("--seed", train.seed != t.seed),
        ("--noise", train.noise != t.noise),
        ("--stacked", train.stacked != t.stacked),
        ("--stack-epochs", train.stack_epochs != t.stack_epochs),
    ];
    let refused: Vec<&str> = fixed
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(flag, _)| *flag)
        .collect();
    if !refused.is_empty() {
        bail!(
            "{} cannot change on --resume: {} continues with the settings in its config.toml (only --epochs, --patience, --device, --skip-bad and --cache-mb may change); to train with others, start a new run from them: cae train --config {} --out NEW and the new flags",
            refused.join(", "),
            dir.display(),
            RunDir::new(dir).config().display(),
        );
    }
    Ok(ResumeChanges {
        epochs: a.epochs,
        patience: a.patience,
        device: a.device.map(Into::into),
        skip_bad: a.skip_bad,
        cache_mb: a.cache_mb,
    })
}

/// Below this validation AUROC after training, a segmentation run is said to have failed.
const CHANCE_AUROC: f64 = 0.7;

fn report(out: &Path, o: &TrainOutcome, json: bool) -> anyhow::Result<()> {
    // A segmentation model that cannot tell painted defects from clean validation images has
    // learnt to predict "normal" everywhere: never let that pass silently.
    if let Some(auroc) = o.last.as_ref().and_then(|r| r.val_auroc)
        && auroc < CHANCE_AUROC
    {
        eprintln!(
            "warning: after {} epochs the model tells validation images with painted defects from clean ones only at AUROC {auroc:.3} (0.5 is chance): it predicts \"normal\" almost everywhere. The synthetic anomalies may look like this data's own structure; try more epochs or another --lr, and compare with a reconstruction model (--arch upsample)",
            o.epochs
        );
    }
    if json {
        return print_json(&serde_json::json!({ "run": out, "outcome": o }));
    }
    let last = o.last.as_ref();
    let val = last
        .and_then(|r| r.val_loss)
        .map(|v| format!("{v:.6}"))
        .unwrap_or_else(|| "-".into());
    println!(
        "{}: {} epochs ({:?}); best loss {:.6} at epoch {}; last val loss {val}",
        out.display(),
        o.epochs,
        o.stop,
        o.best_loss,
        o.best_epoch
    );
    Ok(())
}

/// The progress bars, plus one line when a stacked run starts a pretraining stage.
struct StageNotes(Progress);

impl cae::train::Observer for StageNotes {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.0.epoch_start(epoch, epochs, steps);
    }
    fn step(&mut self, step: usize, loss: f64, images_per_second: f64) {
        self.0.step(step, loss, images_per_second);
    }
    fn epoch_end(&mut self, record: &cae::train::EpochRecord, improved: bool) {
        self.0.epoch_end(record, improved);
    }
    fn stage(&mut self, stage: usize, stages: usize, what: &str) {
        eprintln!("stacked stage {stage}/{stages}: {what}");
    }
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
    fn should_stop(&mut self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}
