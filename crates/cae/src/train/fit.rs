//! The training loop: seeded shuffles, Adam steps, validation, the NaN/Inf guard, early
//! stopping, and after every epoch the weights and checkpoint (written atomically); the other
//! artifacts (metrics, curves, reconstruction grid) are `super::artifacts`, the errors
//! `super::error`.

use super::artifacts::{write, write_metrics, write_recon_grid};
use super::batches::EpochBatches;
use super::checkpoint::{Checkpoint, EpochRecord, Progress};
use super::error::TrainError;
use super::loss::loss;
use super::objective::check_objective;
use crate::anomaly::painted::PaintedValidation;
use crate::data::ImageSet;
use crate::infer::batch_tensor;
use crate::model::{Autoencoder, weights_from_bytes, weights_to_bytes};
use crate::noise::NoiseSpec;
use crate::run::RunDir;
use crate::run::config::{LossKind, RunConfig};
use crate::run::{FitData, TrainImages};
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

/// The fresh weights of `seed`, drawn on flex whatever the device, so where a run trains does
/// not change its start (a GPU backend draws other random numbers). Burn initialises parameters
/// lazily, on first use: serialising them here draws them all at once from `seed`'s stream,
/// before anything else (an epoch's seed, dropout) moves the device's generator.
fn fresh_weights(spec: &ValidSpec, seed: u64) -> Result<Vec<u8>, TrainError> {
    let flex = Device::flex().autodiff();
    flex.seed(seed);
    Ok(weights_to_bytes(&Autoencoder::new(spec, &flex))?)
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
    data: &FitData<TrainImages>,
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
    data: &FitData<TrainImages>,
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
            weights_from_bytes(&mut model, fresh_weights(spec, t.seed)?, "fresh weights")?;
            if model.has_zscore()
                && let Some((mean, std)) = train.pixel_mean_std().map_err(read_error(run, 1, 0))?
            {
                model.fit_zscore_to(&mean, &std);
            }
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
    let skip_bad = config.data.skip_bad;
    let read_failed = || read_error(run, progress.epoch + 1, progress.epoch);
    // Denoising and segmentation validate on images prepared once (corrupted, painted), so a
    // streamed run decodes its validation images into memory for them; a plain one streams
    // them each epoch.
    let prepared_val = if t.noise.is_some() || t.synthetic.is_some() {
        Some(val.sample(val.len(), skip_bad).map_err(read_failed())?)
    } else {
        None
    };
    // Denoising: validation inputs are corrupted once, with a fixed stream, so that validation
    // losses of different epochs (and of a resumed run) compare the same task.
    let noisy_val = t
        .noise
        .as_ref()
        .zip(prepared_val.as_deref())
        .map(|(n, val)| corrupted_set(val, n, t.seed ^ 0x7661_6c00));
    // Segmentation: validation images get defects of another painter once, the same way.
    let synthetic_val = t
        .synthetic
        .as_ref()
        .zip(prepared_val.as_deref())
        .map(|(spec, val)| -> Result<_, TrainError> {
            let donors = train
                .sample(PAINT_DONORS, skip_bad)
                .map_err(read_failed())?;
            // Seeded as the partitions are: runs of one --split-seed paint the same set.
            let paint_seed = config.data.partition_seed(t.seed);
            Ok(PaintedValidation::new(val, &donors, Some(spec), paint_seed))
        })
        .transpose()?
        .flatten();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut epoch = progress.epoch;
    let mut warned_collapse = false;
    let mut warned_cache = false;
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
            skip_bad,
        };
        let lr = t.schedule.rate(t.lr, epoch, t.epochs);
        let mut loss_sum = 0.0;
        let mut skipped: Vec<String> = Vec::new();
        // The model moves into the epoch and comes back after its last step.
        model = batches.run(|host_batches| -> Result<Autoencoder, TrainError> {
            let mut model = model;
            for (step, batch) in host_batches.enumerate() {
                let batch = batch.map_err(|source| TrainError::Read {
                    epoch,
                    source,
                    last_good: progress.epoch,
                    run: run.root.display().to_string(),
                })?;
                skipped.extend(batch.skipped);
                if batch.len == 0 {
                    continue;
                }
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
        let trained = train.len() - skipped.len();
        if trained == 0 {
            return Err(TrainError::AllSkipped {
                epoch,
                first: skipped.swap_remove(0),
                last_good: progress.epoch,
                run: run.root.display().to_string(),
            });
        }
        let train_loss = loss_sum / trained as f64;
        let seconds = started.elapsed().as_secs_f64();

        let inference = model.valid();
        let val_loss = if val.is_empty() {
            None
        } else {
            let v = match (&synthetic_val, &noisy_val, prepared_val.as_deref()) {
                (Some(sv), _, _) => mean_loss_of(
                    &inference,
                    &sv.inputs,
                    &sv.masks,
                    t.loss,
                    t.batch_size,
                    &base,
                ),
                (None, Some(noisy), Some(clean)) => {
                    mean_loss_of(&inference, noisy, clean, t.loss, t.batch_size, &base)
                }
                _ => {
                    let (v, bad) =
                        streamed_mean_loss(&inference, val, t.loss, t.batch_size, &base, skip_bad)
                            .map_err(read_error(run, epoch, progress.epoch))?;
                    skipped.extend(bad);
                    v
                }
            };
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
        let val_auroc = match (&synthetic_val, prepared_val.as_deref()) {
            (Some(sv), Some(val)) if !val.is_empty() => {
                sv.auroc(&inference, val, t.batch_size, &base)
            }
            _ => None,
        };
        if !skipped.is_empty() {
            observer.warn(&skipped_message(epoch, &skipped));
        }
        if !warned_cache {
            warned_cache = true;
            if let Some(message) = train.cache_usage().and_then(cache_message) {
                observer.warn(&message);
            }
        }
        let record = EpochRecord {
            val_auroc,
            monitors: monitored_mse,
            epoch,
            train_loss,
            val_loss,
            seconds,
            images_per_second: trained as f64 / seconds,
            skipped: skipped.len(),
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
        let first;
        let grid_source = match &synthetic_val {
            Some(sv) if !val.is_empty() => &sv.inputs,
            _ => {
                let shown = if val.is_empty() { train } else { val };
                first = shown.sample(GRID_IMAGES, skip_bad).map_err(read_error(
                    run,
                    epoch,
                    epoch - 1,
                ))?;
                &*first
            }
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

/// [`mean_loss`] over `set`, a streamed one decoded [`VAL_CHUNK_BATCHES`] batches at a time;
/// the sum runs over the same batches in the same order, so it equals the in-memory figure.
/// After the first epoch: the warning that `--cache-mb` was too small to keep every image
/// read, with the budget that would have been enough; `None` when everything fitted.
fn cache_message(used: crate::data::CacheUse) -> Option<String> {
    if used.refused == 0 {
        return None;
    }
    let mib = |bytes: f64| (bytes / f64::from(1 << 20)).ceil() as u64;
    let per_image = used.bytes as f64 / used.images.max(1) as f64;
    let needed = if used.images == 0 {
        String::from("more than that")
    } else {
        format!(
            "about {}",
            mib(per_image * (used.images + used.refused) as f64 * 1.05)
        )
    };
    Some(format!(
        "--cache-mb {} keeps {} of the images read ({} MiB); the other {} are decoded from their files every epoch: --cache-mb {needed} would keep them all",
        mib(used.budget as f64),
        used.images,
        mib(used.bytes as f64),
        used.refused,
    ))
}

/// With `skip_bad`, files that cannot be read are left out of the mean, and their errors
/// returned; without, the first is the error.
fn streamed_mean_loss(
    model: &Autoencoder,
    set: &TrainImages,
    kind: LossKind,
    batch_size: usize,
    device: &Device,
    skip_bad: bool,
) -> Result<(f64, Vec<String>), crate::data::DataError> {
    let files = match set {
        TrainImages::Memory(images) => {
            return Ok((
                mean_loss(model, images, kind, batch_size, device),
                Vec::new(),
            ));
        }
        TrainImages::Files(files) => files,
    };
    let indices: Vec<usize> = (0..files.len()).collect();
    let (mut sum, mut count, mut skipped) = (0.0, 0, Vec::new());
    for chunk in indices.chunks(batch_size * VAL_CHUNK_BATCHES) {
        let images = if skip_bad {
            let (images, bad) = files.read_skipping(chunk, crate::data::decode_workers());
            skipped.extend(bad);
            images
        } else {
            files.read(chunk, crate::data::decode_workers())?
        };
        if images.is_empty() {
            continue;
        }
        sum += mean_loss(model, &images, kind, batch_size, device) * images.len() as f64;
        count += images.len();
    }
    if count == 0 && !skipped.is_empty() {
        // Not one validation image left to validate on.
        return Err(skipped.swap_remove(0));
    }
    let skipped = skipped.iter().map(ToString::to_string).collect();
    Ok((sum / count.max(1) as f64, skipped))
}

/// The warning for the streamed files an epoch left out (`--skip-bad`): how many, and the
/// first few by their errors.
fn skipped_message(epoch: usize, skipped: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut message = format!(
        "epoch {epoch}: skipped {} unreadable image{} (--skip-bad): {}",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" },
        skipped[..skipped.len().min(SHOWN)].join("; ")
    );
    if skipped.len() > SHOWN {
        message.push_str(&format!("; and {} more", skipped.len() - SHOWN));
    }
    message
}

/// Batches of validation images a streamed run decodes at once.
const VAL_CHUNK_BATCHES: usize = 4;

/// A copy of `set` with every image corrupted by one stream seeded with `seed`.
fn corrupted_set(set: &ImageSet, noise: &NoiseSpec, seed: u64) -> ImageSet {
    let mut out = set.clone();
    noise.corrupt(&mut out.pixels, &mut ChaCha8Rng::seed_from_u64(seed));
    out
}

/// Training images a streamed run decodes for the foreign texture of its painted validation
/// defects (an in-memory run draws from all of them).
const PAINT_DONORS: usize = 64;

/// Images in the reconstruction grid (`artifacts::write_recon_grid` draws the first 16).
const GRID_IMAGES: usize = 16;

/// A streamed image of `run` that could not be read in epoch `epoch`, whose last finished
/// epoch (0: none) is `last_good`.
fn read_error(
    run: &RunDir,
    epoch: usize,
    last_good: usize,
) -> impl Fn(crate::data::DataError) -> TrainError + '_ {
    move |source| TrainError::Read {
        epoch,
        source,
        last_good,
        run: run.root.display().to_string(),
    }
}

/// Below this spread of the reconstructed values (relative to the originals'), a reconstruction
/// model has collapsed: a collapsed keras-denoise gives 0.009, a working one about 0.9.
const COLLAPSED_SPREAD: f64 = 0.05;
