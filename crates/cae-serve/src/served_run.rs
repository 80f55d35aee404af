//! The run being served, loaded once at start-up through the library's run-directory loader:
//! what every request needs to know about it (input rules, score kind, threshold) and what
//! `GET /v1/model` reports. The model itself goes to the batch worker.

use crate::error::ServeError;
use crate::intake::Intake;
use crate::options::ServeOptions;
use cae::anomaly::fused::Fusion;
use cae::anomaly::{ScoreKind, Threshold};
use cae::data::{ImageLimits, ImageShape};
use cae::model::Autoencoder;
use cae::run::RunConfig;
use cae::run::RunDir;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// What the handlers know about the run.
#[derive(Debug, Clone)]
pub struct ServedRun {
    pub root: PathBuf,
    pub config: RunConfig,
    pub input: ImageShape,
    pub intake: Intake,
    /// The score every image gets: the threshold's, else `--score`, else the model kind's
    /// default (`ScoreKind::default_for`).
    pub score: ScoreKind,
    /// `RUN/threshold.json`, when one was fitted.
    pub threshold: Option<Threshold>,
    /// The reference images and norms of a `fused` score (`cae::anomaly::fused`).
    pub fusion: Option<Arc<Fusion>>,
    /// Parameters, the code's shape and size.
    pub parameters: usize,
    pub code_shape: String,
    pub code_len: usize,
    /// `RUN/summary.json`, when training finished.
    pub training: Option<Value>,
}

impl ServedRun {
    /// Loads the run's config, weights and threshold; checks `--score` against the threshold.
    pub fn load(options: &ServeOptions) -> Result<(ServedRun, Autoencoder), ServeError> {
        let dir = RunDir::new(&options.run);
        let loaded = dir.load_model(&options.device)?;
        let threshold = Threshold::load(&options.run)?;
        let score = match (&threshold, options.score) {
            (Some(t), Some(asked)) if asked != t.score => {
                return Err(ServeError::Option(format!(
                    "--score {asked}: {} holds a threshold fitted on the {} score; serve with that \
                     score, or fit a new threshold with `cae anomaly threshold {} --score ...`",
                    options.run.display(),
                    t.score,
                    options.run.display()
                )));
            }
            (Some(t), _) => t.score,
            (None, asked) => asked.unwrap_or_else(|| ScoreKind::default_for(&loaded.spec)),
        };
        score
            .check_model(&loaded.spec)
            .map_err(|e| ServeError::Option(format!("{}: {e}", options.run.display())))?;
        let fusion = match score {
            ScoreKind::Fused { .. } => Some(Arc::new(Fusion::of_threshold(
                &options.run,
                score,
                threshold.as_ref(),
            )?)),
            _ => None,
        };
        let limits = ImageLimits {
            max_side: options.limits.max_side,
            max_pixels: options.limits.max_pixels,
        };
        let intake = Intake::from_config(&loaded.config, limits)
            .map_err(|e| ServeError::Option(format!("{}: {e}", dir.config().display())))?;
        // A summary that cannot be read only costs /v1/model its training figures.
        let training = std::fs::read(dir.summary())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let code = loaded.spec.bottleneck();
        let run = ServedRun {
            root: options.run.clone(),
            input: loaded.spec.input,
            intake,
            score,
            threshold,
            fusion,
            parameters: loaded.spec.total_params(),
            code_shape: code.to_string(),
            code_len: code.len(),
            training,
            config: loaded.config,
        };
        Ok((run, loaded.model))
    }

    /// The body of `GET /v1/model`.
    pub fn info(&self) -> Value {
        let arch = &self.config.arch;
        let threshold = match &self.threshold {
            Some(t) => json!({
                "fitted": true,
                "image": t.image,
                "pixel": t.pixel,
                "method": t.method,
                "normalization": t.normalization,
                "fitted_on": t.fitted_on,
                "expected_fpr": t.expected_fpr,
            }),
            None => json!({
                "fitted": false,
                "note": format!(
                    "no threshold.json: scores are served, is_anomaly and normalized_score are \
                     null; fit one with `cae anomaly threshold {}`",
                    self.root.display()
                ),
            }),
        };
        json!({
            "run": self.root.display().to_string(),
            "architecture": {
                "name": arch.name,
                "description": arch.description,
                "params": arch.params,
                "encoder_layers": arch.encoder.len(),
                "decoder_layers": arch.decoder.len(),
                "parameters": self.parameters,
                "code_shape": self.code_shape,
                "code_len": self.code_len,
            },
            "input": {
                "shape": self.input.to_string(),
                "channels": self.input.channels,
                "height": self.input.height,
                "width": self.input.width,
                "resized": self.intake.resize,
                "channels_converted": self.intake.channels.is_some(),
            },
            "score": self.score,
            "threshold": threshold,
            "training": {
                "data": self.config.data,
                "train": self.config.train,
                "summary": self.training,
            },
        })
    }
}
