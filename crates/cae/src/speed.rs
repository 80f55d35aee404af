//! Measuring how fast a model trains and infers on this machine: timed training steps
//! (forward + MSE + backward + Adam) and inference passes on a fixed random batch, after warm-up.
//! Powers `cae bench` and the side-by-side comparisons with PyTorch in `bench/`.

use crate::model::Autoencoder;
use crate::run::LossKind;
use crate::spec::ValidSpec;
use crate::train::loss;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use serde::Serialize;
use std::time::Instant;

/// What to time.
#[derive(Debug, Clone, Copy)]
pub struct SpeedSettings {
    pub batch: usize,
    pub warmup: usize,
    pub steps: usize,
}

/// Timings of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTiming {
    /// Median milliseconds per step.
    pub ms_per_step: f64,
    pub images_per_second: f64,
    /// Achieved arithmetic rate (training counts 3× the forward FLOPs).
    pub gflops: f64,
    /// Every step, in milliseconds.
    pub samples_ms: Vec<f64>,
}

/// Training and inference timings of one model.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedReport {
    pub arch: String,
    pub input: String,
    pub batch: usize,
    pub params: usize,
    pub forward_gflop_per_image: f64,
    pub train: PhaseTiming,
    pub infer: PhaseTiming,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        f64::NAN
    } else {
        s[s.len() / 2]
    }
}

fn phase(samples_ms: Vec<f64>, batch: usize, flops_per_step: f64) -> PhaseTiming {
    let ms = median(&samples_ms);
    PhaseTiming {
        ms_per_step: ms,
        images_per_second: batch as f64 * 1000.0 / ms,
        gflops: flops_per_step / (ms * 1e6),
        samples_ms,
    }
}

/// Why a speed measurement could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SpeedError {
    #[error("batch and steps must be at least 1")]
    Settings,
    #[error("device error: {0}")]
    Device(String),
    #[error("the loss became {0} while timing")]
    Diverged(f32),
}

/// Times `settings.steps` training steps and inference passes of `spec` on `device`.
pub fn measure(
    spec: &ValidSpec,
    device: &Device,
    settings: SpeedSettings,
) -> Result<SpeedReport, SpeedError> {
    if settings.batch == 0 || settings.steps == 0 {
        return Err(SpeedError::Settings);
    }
    let s = spec.input;
    let shape = [settings.batch, s.channels, s.height, s.width];
    let train_device = device.clone().autodiff();
    train_device.seed(0);
    let mut model = Autoencoder::new(spec, &train_device);
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let x = Tensor::<4>::random(shape, Distribution::Uniform(0.0, 1.0), &train_device);
    let mut train_ms = Vec::with_capacity(settings.steps);
    for step in 0..settings.warmup + settings.steps {
        let started = Instant::now();
        let objective = loss(LossKind::Mse, model.forward(x.clone()), x.clone());
        let value = objective.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(objective.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
        train_device
            .sync()
            .map_err(|e| SpeedError::Device(format!("{e:?}")))?;
        if !value.is_finite() {
            return Err(SpeedError::Diverged(value));
        }
        if step >= settings.warmup {
            train_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }

    let inference = Autoencoder::new(spec, device);
    let x = Tensor::<4>::random(shape, Distribution::Uniform(0.0, 1.0), device);
    let mut infer_ms = Vec::with_capacity(settings.steps);
    for step in 0..settings.warmup + settings.steps {
        let started = Instant::now();
        let y = inference.forward(x.clone());
        let _ = y.into_data();
        if step >= settings.warmup {
            infer_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let flops = spec.forward_flops() as f64 * settings.batch as f64;
    Ok(SpeedReport {
        arch: spec.spec.name.clone(),
        input: s.to_string(),
        batch: settings.batch,
        params: spec.total_params(),
        forward_gflop_per_image: spec.forward_flops() as f64 / 1e9,
        train: phase(train_ms, settings.batch, 3.0 * flops),
        infer: phase(infer_ms, settings.batch, flops),
    })
}
