//! The training loop: seeded shuffles, Adam steps, validation, the NaN/Inf guard, early
//! stopping, and after every epoch the run-directory artifacts (weights, checkpoint, metrics,
//! curves, reconstruction grid), each written atomically.

use super::batches::EpochBatches;
use super::checkpoint::{Checkpoint, CheckpointError, EpochRecord, Progress};
use super::loss::loss;
use super::objective::check_objective;
use crate::anomaly::painted::PaintedValidation;
use crate::atomic::write_atomic;
use crate::data::ImageSet;
use crate::infer::{batch_tensor, reconstruct_first};
use crate::model::{Autoencoder, weights_from_bytes, weights_to_bytes};
use crate::noise::NoiseSpec;
use crate::plot::{self, Series};
use crate::run::FitData;
use crate::run::RunDir;
use crate::run::config::{LossKind, RunConfig};
use crate::spec::{Activation, ValidSpec};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Receives progress while training runs (the CLI draws a progress bar from it).
pub trait Observer {
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    fn step(&mut self, _step: usize, _loss: f64, _images_per_second: f64) {}
    fn epoch_end(&mut self, _record: &EpochRecord, _improved: bool) {}
    /// A stacked run starts pretraining stage `stage` of `stages`.
    fn stage(&mut self, _stage: usize, _stages: usize, _what: &str) {}
    /// Something is wrong with the training that does not stop it (a collapsed model).
    fn warn(&mut self, _message: &str) {}
    /// Asked after every step: true stops training there ([`TrainError::Interrupted`]); the
    /// run keeps its last checkpoint, so `--resume` continues exactly.
    fn should_stop(&mut self) -> bool {
        false
    }
}

impl Observer for () {}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Completed,
    EarlyStopped,
}

/// The result of a finished run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainOutcome {
    pub stop: StopReason,
    pub epochs: usize,
    pub best_epoch: usize,
    pub best_loss: f64,
    pub last: Option<EpochRecord>,
}

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "training diverged at epoch {epoch}, step {step}: the loss is {value}; {kept}; lower --lr or check the data for NaN",
        kept = kept_message(*last_good, run)
    )]
    Diverged {
        epoch: usize,
        step: usize,
        value: f64,
        last_good: usize,
        run: String,
    },
    /// The observer asked to stop (Ctrl-C, SIGTERM).
    #[error("stopped {}; continue with: cae train --resume {run}", stopped_after(*epoch))]
    Interrupted { epoch: usize, run: String },
    /// `--data` was not given.
    #[error("no data: pass --data (a path or builtin:shapes)")]
    NoData,
    /// The training partition is empty.
    #[error("{origin}: no training images")]
    NoTrainingImages { origin: String },
    /// The architecture cannot serve the objective (loss, synthetic anomalies, augmentation).
    #[error(transparent)]
    Objective(#[from] super::ObjectiveError),
    /// The architecture could not be resolved for the data.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// `--resize` gives a size the model cannot take.
    #[error("--resize {resize}: {source}")]
    Resize {
        resize: String,
        source: crate::spec::SpecError,
    },
    /// The folder is not a run, or its config or spec cannot be read.
    #[error(transparent)]
    Run(#[from] crate::run::RunDirError),
    /// A resume's changed settings are out of range.
    #[error("{run}: {source}")]
    ResumeSettings {
        run: String,
        source: crate::run::ConfigError,
    },
    /// A resume asked for fewer epochs than the run has trained.
    #[error("--epochs {epochs}: {run} has already trained {done} epochs; give more to continue it")]
    EpochsDone {
        epochs: usize,
        run: String,
        done: usize,
    },
    /// The optimizer's state could not be saved or restored.
    #[error("{path}optimizer state: {message}")]
    Optimizer { path: String, message: String },
    /// A training picture could not be drawn.
    #[error("drawing {what}: {source}")]
    Plot {
        what: &'static str,
        source: crate::plot::PlotError,
    },
    /// The run's config could not be written as TOML.
    #[error("writing {what}: {source}")]
    ConfigText {
        what: &'static str,
        source: toml::ser::Error,
    },
    /// A training setting is out of range or does not combine with another.
    #[error(transparent)]
    Config(#[from] crate::run::ConfigError),
    /// The run's images could not be loaded or partitioned.
    #[error(transparent)]
    Data(#[from] crate::run::PartitionError),
    #[error(transparent)]
    Device(#[from] crate::device::NotCompiled),
    /// The images do not fit the model, or its output could not be read.
    #[error(transparent)]
    Infer(#[from] crate::infer::InferError),
    /// The spec cannot be trained stage by stage.
    #[error(transparent)]
    Stacked(#[from] super::stacked::StackError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Weights(#[from] crate::model::WeightsError),
    /// Another process writes into the run.
    #[error(transparent)]
    Lock(#[from] crate::run::LockError),
    /// The output folder may not become a run.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

/// "after epoch N", or that no epoch had finished.
fn stopped_after(epoch: usize) -> String {
    if epoch == 0 {
        "before the first epoch ended".to_string()
    } else {
        format!("after epoch {epoch}")
    }
}

/// What the divergence message says was kept.
fn kept_message(last_good: usize, run: &str) -> String {
    if last_good == 0 {
        format!("no epoch had finished, so {run} holds no weights yet")
    } else {
        format!("the last good checkpoint (epoch {last_good}) is kept in {run}")
    }
}

/// What usually makes a reconstruction collapse, for the warning.
fn collapse_hint(spec: &ValidSpec, loss: LossKind) -> String {
    let sigmoid = spec.output_activation() == Some(Activation::Sigmoid);
    if sigmoid && loss != LossKind::Bce {
        format!(
            "A sigmoid output trained with --loss {loss} saturates at 0 on mostly dark images: use --loss bce, or an architecture with a linear output"
        )
    } else {
        "Lower --lr, or check that the images are not all alike".to_string()
    }
}

/// Seeds of epoch `epoch`: shuffling and the device RNG (dropout) restart from here on resume.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Trains `spec` on `data.train`, validating on `data.val`, writing artifacts into `run`. With a
/// `resume` checkpoint, continues after its epoch with its model and optimizer state.
pub fn fit(
    run: &RunDir,
    config: &RunConfig,
    spec: &ValidSpec,
    data: &FitData,
    resume: Option<Checkpoint>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    fit_from(run, config, spec, data, resume, None, observer)
}

/// [`fit`], starting a new run from `initial` weights (burnpack bytes of the same spec, e.g. a
/// pretrained encoder) instead of fresh ones; ignored when resuming.
pub fn fit_from(
    run: &RunDir,
    config: &RunConfig,
    spec: &ValidSpec,
    data: &FitData,
    resume: Option<Checkpoint>,
    initial: Option<Vec<u8>>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let (train, val) = (&data.train, &data.val);
    let t = &config.train;
    t.check()?;
    check_objective(spec, t)?;
    if train.is_empty() {
        return Err(TrainError::NoTrainingImages {
            origin: config.data.source.clone(),
        });
    }
    // A new stacked run pretrains its encoder layer by layer first (`stack/stage-N/`).
    let initial = match (initial, &resume) {
        (None, None) if t.stacked => {
            Some(super::stacked::pretrain(run, config, spec, data, observer)?)
        }
        (initial, _) => initial,
    };
    let base = t.device.device()?;
    let device = base.clone().autodiff();

    device.seed(t.seed);
    let mut model = Autoencoder::new(spec, &device);
    let mut adam = AdamConfig::new().with_epsilon(1e-8);
    if t.weight_decay > 0.0 {
        adam = adam.with_weight_decay(Some(WeightDecayConfig::new(t.weight_decay as f32)));
    }
    let mut optimizer = adam.init();
    let mut progress = Progress {
        epoch: 0,
        best_loss: f64::INFINITY,
        best_epoch: 0,
        stale_epochs: 0,
        history: Vec::new(),
    };
    match (initial, &resume) {
        (Some(bytes), None) => {
            weights_from_bytes(&mut model, bytes, &run.root.display().to_string())?
        }
        // A new run's `zscore` layer learns what is normal at each pixel from the training
        // images as loaded (before augmentation or synthetic anomalies); a resumed run has its
        // statistics in the checkpoint.
        (None, None) => {
            model.fit_zscore(train);
        }
        _ => {}
    }
    if let Some(checkpoint) = resume {
        weights_from_bytes(
            &mut model,
            checkpoint.model,
            &run.checkpoint().display().to_string(),
        )?;
        optimizer = optimizer
            .from_bytes(Bytes::from_bytes_vec(checkpoint.optimizer))
            .map_err(|e| TrainError::Optimizer {
                path: format!("{}: ", run.checkpoint().display()),
                message: format!("{e:?}"),
            })?;
        progress = checkpoint.progress;
        // Artifacts of epochs after the checkpoint (a kill between writes) are redone.
        write_metrics(run, &progress.history)?;
    }

    let mut stop = StopReason::Completed;
    if let Some(patience) = t.patience
        && progress.stale_epochs >= patience
    {
        stop = StopReason::EarlyStopped;
    }
    let steps = train.len().div_ceil(t.batch_size);
    // Denoising: validation inputs are corrupted once, with a fixed stream, so that validation
    // losses of different epochs (and of a resumed run) compare the same task.
    let noisy_val = t
        .noise
        .as_ref()
        .map(|n| corrupted_set(val, n, t.seed ^ 0x7661_6c00));
    // Segmentation: validation images get defects of another painter once, the same way.
    let synthetic_val = t
        .synthetic
        .as_ref()
        .and_then(|spec| PaintedValidation::new(val, train, Some(spec), t.seed));
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut epoch = progress.epoch;
    let mut warned_collapse = false;
    while stop == StopReason::Completed && epoch < t.epochs {
        epoch += 1;
        let started = Instant::now();
        observer.epoch_start(epoch, t.epochs, steps);
        device.seed(epoch_seed(t.seed, epoch));
        order.sort_unstable();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(epoch_seed(t.seed, epoch)));

        let batches = EpochBatches {
            set: train,
            order: &order,
            batch_size: t.batch_size,
            noise: t.noise.as_ref(),
            synthetic: t.synthetic.as_ref(),
            augment: t.augment,
            seed: t.seed,
            epoch,
        };
        let lr = t.schedule.rate(t.lr, epoch, t.epochs);
        let mut loss_sum = 0.0;
        // The model moves into the epoch and comes back after its last step.
        model = batches.run(|host_batches| -> Result<Autoencoder, TrainError> {
            let mut model = model;
            for (step, batch) in host_batches.enumerate() {
                let s = batch.shape;
                let dims = [batch.len, s.channels, s.height, s.width];
                let tensor =
                    |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, dims), &device);
                let x = tensor(batch.clean);
                let input = batch.noisy.map_or_else(|| x.clone(), tensor);
                // The target: the clean image, or for segmentation the anomaly mask.
                let target = match batch.mask {
                    Some(mask) => Tensor::<4>::from_data(
                        TensorData::new(mask, [batch.len, 1, s.height, s.width]),
                        &device,
                    ),
                    None => x,
                };
                let y = model.forward(input);
                let mut objective = loss(t.loss, y, target);
                if let Some(penalty) = model.penalty() {
                    objective = objective + penalty;
                }
                let value = objective.clone().into_scalar::<f32>() as f64;
                if !value.is_finite() {
                    return Err(TrainError::Diverged {
                        epoch,
                        step: step + 1,
                        value,
                        last_good: progress.epoch,
                        run: run.root.display().to_string(),
                    });
                }
                loss_sum += value * batch.len as f64;
                let grads = GradientsParams::from_grads(objective.backward(), &model);
                model = optimizer.step(lr, model, grads);
                let seen = (step * t.batch_size + batch.len) as f64;
                observer.step(
                    step + 1,
                    value,
                    seen / started.elapsed().as_secs_f64().max(1e-9),
                );
                if observer.should_stop() {
                    return Err(TrainError::Interrupted {
                        epoch: progress.epoch,
                        run: run.root.display().to_string(),
                    });
                }
            }
            Ok(model)
        })?;
        let train_loss = loss_sum / train.len() as f64;
        let seconds = started.elapsed().as_secs_f64();

        let inference = model.valid();
        let val_loss = if val.is_empty() {
            None
        } else {
            let (input, target) = match &synthetic_val {
                Some(sv) => (&sv.inputs, &sv.masks),
                None => (noisy_val.as_ref().unwrap_or(val), val),
            };
            let v = mean_loss_of(&inference, input, target, t.loss, t.batch_size, &base);
            if !v.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    step: steps,
                    value: v,
                    last_good: progress.epoch,
                    run: run.root.display().to_string(),
                });
            }
            Some(v)
        };
        let mut monitored_mse = std::collections::BTreeMap::new();
        for m in &data.monitors {
            if !m.images.is_empty() {
                let mse = mean_loss(&inference, &m.images, LossKind::Mse, t.batch_size, &base);
                // A NaN here would be saved as `null` and the checkpoint would not load again.
                if !mse.is_finite() {
                    return Err(TrainError::Diverged {
                        epoch,
                        step: steps,
                        value: mse,
                        last_good: progress.epoch,
                        run: run.root.display().to_string(),
                    });
                }
                monitored_mse.insert(m.name.clone(), mse);
            }
        }
        let val_auroc = match &synthetic_val {
            Some(sv) if !val.is_empty() => sv.auroc(&inference, val, t.batch_size, &base),
            _ => None,
        };
        let record = EpochRecord {
            val_auroc,
            monitors: monitored_mse,
            epoch,
            train_loss,
            val_loss,
            seconds,
            images_per_second: train.len() as f64 / seconds,
        };
        let monitored = val_loss.unwrap_or(train_loss);
        let improved = monitored < progress.best_loss;
        progress.epoch = epoch;
        progress.history.push(record.clone());
        if improved {
            progress.best_loss = monitored;
            progress.best_epoch = epoch;
            progress.stale_epochs = 0;
        } else {
            progress.stale_epochs += 1;
        }

        // Artifacts first, the checkpoint last: a kill in between redoes this epoch on resume.
        let weights = weights_to_bytes(&model)?;
        write(&run.last(), &weights)?;
        if improved {
            write(&run.best(), &weights)?;
        }
        write_metrics(run, &progress.history)?;
        let grid_source = match &synthetic_val {
            Some(sv) if !val.is_empty() => &sv.inputs,
            _ if val.is_empty() => train,
            _ => val,
        };
        let labels = if spec.is_segmentation() {
            ["input", "predicted map"]
        } else {
            ["original", "reconstruction"]
        };
        let spread = write_recon_grid(run, &inference, grid_source, epoch, labels, &base)?;
        // A model whose every output is one constant image learns nothing more: say so once
        // (a sigmoid output with MSE on mostly dark images is the usual cause).
        if t.synthetic.is_none() && epoch >= 2 && spread < COLLAPSED_SPREAD && !warned_collapse {
            warned_collapse = true;
            observer.warn(&format!(
                "epoch {epoch}: the reconstructions are all one near-constant image (their spread is {:.1} % of the images'): the model has collapsed. {}",
                100.0 * spread,
                collapse_hint(spec, t.loss)
            ));
        }
        let checkpoint = Checkpoint {
            progress: progress.clone(),
            model: weights,
            optimizer: optimizer
                .into_bytes()
                .map_err(|e| TrainError::Optimizer {
                    path: String::new(),
                    message: format!("{e:?}"),
                })?
                .to_vec(),
        };
        checkpoint.save(&run.checkpoint())?;
        observer.epoch_end(&record, improved);

        if let Some(patience) = t.patience
            && progress.stale_epochs >= patience
        {
            stop = StopReason::EarlyStopped;
        }
    }
    let outcome = TrainOutcome {
        stop,
        epochs: progress.epoch,
        best_epoch: progress.best_epoch,
        best_loss: progress.best_loss,
        last: progress.history.last().cloned(),
    };
    let summary = serde_json::to_vec_pretty(&outcome).unwrap_or_default();
    write(&run.summary(), &summary)?;
    Ok(outcome)
}

/// Mean loss per image over `set`, in inference mode.
fn mean_loss(
    model: &Autoencoder,
    set: &ImageSet,
    kind: LossKind,
    batch_size: usize,
    device: &Device,
) -> f64 {
    mean_loss_of(model, set, set, kind, batch_size, device)
}

/// Mean loss per image of the model's outputs for `inputs` against `targets` (same length).
fn mean_loss_of(
    model: &Autoencoder,
    inputs: &ImageSet,
    targets: &ImageSet,
    kind: LossKind,
    batch_size: usize,
    device: &Device,
) -> f64 {
    let indices: Vec<usize> = (0..targets.len()).collect();
    let mut sum = 0.0;
    for chunk in indices.chunks(batch_size) {
        let y = model.forward(batch_tensor(inputs, chunk, device));
        let x = batch_tensor(targets, chunk, device);
        sum += loss(kind, y, x).into_scalar::<f32>() as f64 * chunk.len() as f64;
    }
    sum / targets.len() as f64
}

/// A copy of `set` with every image corrupted by one stream seeded with `seed`.
fn corrupted_set(set: &ImageSet, noise: &NoiseSpec, seed: u64) -> ImageSet {
    let mut out = set.clone();
    noise.corrupt(&mut out.pixels, &mut ChaCha8Rng::seed_from_u64(seed));
    out
}

fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), TrainError> {
    write_atomic(path, bytes).map_err(|source| TrainError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Rewrites `metrics.csv` and `loss.png` from the history.
fn write_metrics(run: &RunDir, history: &[EpochRecord]) -> Result<(), TrainError> {
    let names: Vec<&String> = history
        .first()
        .map(|r| r.monitors.keys().collect())
        .unwrap_or_default();
    let auroc = history.iter().any(|r| r.val_auroc.is_some());
    let mut csv = String::from("epoch,train_loss,val_loss,seconds,images_per_second");
    if auroc {
        csv.push_str(",val_auroc");
    }
    for n in &names {
        csv.push_str(&format!(",{n}_mse"));
    }
    csv.push('\n');
    for r in history {
        let val = r.val_loss.map(|v| format!("{v:.8}")).unwrap_or_default();
        csv.push_str(&format!(
            "{},{:.8},{val},{:.3},{:.1}",
            r.epoch, r.train_loss, r.seconds, r.images_per_second
        ));
        if auroc {
            let a = r.val_auroc.map(|v| format!("{v:.6}")).unwrap_or_default();
            csv.push_str(&format!(",{a}"));
        }
        for n in &names {
            csv.push_str(
                &r.monitors
                    .get(*n)
                    .map(|v| format!(",{v:.8}"))
                    .unwrap_or_else(|| ",".into()),
            );
        }
        csv.push('\n');
    }
    write(&run.metrics(), csv.as_bytes())?;

    let curve = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let train = curve(&|r| Some(r.train_loss));
    let val = curve(&|r| r.val_loss);
    let mut series = vec![Series {
        name: "train loss",
        points: &train,
    }];
    if !val.is_empty() {
        series.push(Series {
            name: "validation loss",
            points: &val,
        });
    }
    let png = plot::line_chart(
        "Reconstruction loss",
        "epoch",
        "loss",
        &series,
        true,
        (800, 500),
    )
    .map_err(|source| TrainError::Plot {
        what: "loss.png",
        source,
    })?;
    write(&run.loss_plot(), &png)?;

    if !names.is_empty() {
        let curves: Vec<Vec<(f64, f64)>> = names
            .iter()
            .map(|n| curve(&|r| r.monitors.get(*n).copied()))
            .collect();
        let series: Vec<Series> = names
            .iter()
            .zip(&curves)
            .map(|(n, c)| Series { name: n, points: c })
            .collect();
        let png = plot::line_chart(
            "Mean reconstruction error of held-out sets",
            "epoch",
            "MSE per image",
            &series,
            true,
            (800, 500),
        )
        .map_err(|source| TrainError::Plot {
            what: "monitors.png",
            source,
        })?;
        write(&run.monitors_plot(), &png)?;
    }
    Ok(())
}

/// Originals above reconstructions for the first 16 images, `recon/epoch-NNN.png`; returns the
/// spread (standard deviation) of the reconstructed values relative to that of the originals,
/// near 0 when the model collapsed to one constant output.
fn write_recon_grid(
    run: &RunDir,
    model: &Autoencoder,
    set: &ImageSet,
    epoch: usize,
    labels: [&str; 2],
    device: &Device,
) -> Result<f64, TrainError> {
    let (originals, recons) = reconstruct_first(model, set, 16, device)?;
    let spread = spread(recons.iter().flatten().copied())
        / spread(originals.iter().flatten().copied()).max(1e-12);
    let s = set.shape;
    let scale = (112 / s.height.max(s.width)).clamp(1, 4) as u32;
    // A segmentation model's one-channel map is shown in every channel of the image.
    let recons: Vec<Vec<f32>> = recons
        .into_iter()
        .map(|r| match r.len() == s.len() {
            true => r,
            false => r.repeat(s.channels),
        })
        .collect();
    let o: Vec<&[f32]> = originals.iter().map(Vec::as_slice).collect();
    let r: Vec<&[f32]> = recons.iter().map(Vec::as_slice).collect();
    let image = plot::labelled_reconstruction_grid(
        &o,
        &r,
        (s.channels, s.height, s.width),
        8,
        scale,
        labels,
    )
    .map_err(|source| TrainError::Plot {
        what: "the reconstruction grid",
        source,
    })?;
    let png = plot::encode_png(&image).map_err(|source| TrainError::Plot {
        what: "the reconstruction grid",
        source,
    })?;
    let dir = run.recon_dir();
    std::fs::create_dir_all(&dir).map_err(|source| TrainError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    write(&dir.join(format!("epoch-{epoch:03}.png")), &png)?;
    Ok(spread)
}

/// Standard deviation of `values` (0 for none).
fn spread(values: impl Iterator<Item = f32>) -> f64 {
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for v in values {
        n += 1.0;
        sum += f64::from(v);
        sq += f64::from(v) * f64::from(v);
    }
    if n == 0.0 {
        return 0.0;
    }
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0).sqrt()
}

/// Below this spread of the reconstructed values (relative to the originals'), a reconstruction
/// model has collapsed: a collapsed keras-denoise gives 0.009, a working one about 0.9.
const COLLAPSED_SPREAD: f64 = 0.05;
