//! The endpoints. Each one reads its images ([`Upload`]), decodes and checks them on the
//! blocking pool ([`Intake`](crate::intake::Intake)), sends them through the batch worker, and
//! builds its answer on the blocking pool again ([`crate::answer`]), so the async threads only
//! move bytes.
//!
//! | endpoint | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/score[?heatmap=1]` | image, or multipart with several | JSON per image |
//! | `POST /v1/heatmap` | one image | PNG overlay |
//! | `POST /v1/reconstruct` | one image | PNG |
//! | `POST /v1/encode` | image, or multipart | JSON latent vector per image |
//! | `GET /healthz` | | JSON status, batching, connection and decode-budget counters |
//! | `GET /v1/model` | | JSON: architecture, input, score, threshold, training |
//!
//! `GET /` (the inspection page) is [`crate::page`]'s.

use crate::answer::{self, ScoreAnswer};
use crate::batcher::{BatchError, Batcher, panic_message};
use crate::budget::DecodeBudget;
use crate::connection::Connections;
use crate::error::ApiError;
use crate::forward::{ModelJob, ModelOutput, Want};
use crate::options::Limits;
use crate::served_run::ServedRun;
use crate::upload::{Upload, UploadedImage};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use cae::data::ImageShape;
use cae::quote::quote;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// One decoded image, ready for the model: its shape (the model's, or its own for a run that
/// takes other sizes) and its CHW pixels.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub shape: ImageShape,
    pub pixels: Arc<[f32]>,
}

/// What every handler shares: the run, the way to the model, the limits.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    run: ServedRun,
    batcher: Batcher<ModelJob, ModelOutput>,
    limits: Limits,
    budget: DecodeBudget,
    connections: Connections,
    started: Instant,
}

impl AppState {
    /// `connections` is the accept loop's registry, reported by `/healthz`.
    pub fn new(
        run: ServedRun,
        batcher: Batcher<ModelJob, ModelOutput>,
        limits: Limits,
        connections: Connections,
    ) -> Self {
        AppState {
            inner: Arc::new(Shared {
                run,
                batcher,
                limits,
                budget: DecodeBudget::new(limits.decode_memory),
                connections,
                started: Instant::now(),
            }),
        }
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    pub fn run(&self) -> &ServedRun {
        &self.inner.run
    }

    /// Checks every image's header, then decodes it on the blocking pool once its worst-case
    /// decode size fits the shared budget. The reservation moves into the blocking task, so
    /// a request that times out still holds it until its decode has really ended.
    async fn prepare(&self, images: Vec<UploadedImage>) -> Result<Vec<Prepared>, ApiError> {
        let mut prepared = Vec::with_capacity(images.len());
        for image in images {
            let name = image.label();
            let header = self.run().intake.admit(&image.bytes, &name)?;
            let reserved = self
                .inner
                .budget
                .reserve(header.decode_bytes(), &name)
                .await?;
            let state = self.clone();
            let (shape, pixels) = blocking(move || {
                let _reserved = reserved;
                state.run().intake.decode(&image.bytes, &name)
            })
            .await?;
            prepared.push(Prepared {
                shape,
                pixels: Arc::from(pixels),
            });
        }
        Ok(prepared)
    }

    /// Sends prepared images through the batch worker; one output per image, in order.
    async fn infer(&self, images: &[Prepared], want: Want) -> Result<Vec<Vec<f32>>, ApiError> {
        let replies = images
            .iter()
            .map(|image| {
                self.inner.batcher.submit(ModelJob {
                    pixels: image.pixels.clone(),
                    shape: image.shape,
                    want,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(batch_error)?;
        let mut outputs = Vec::with_capacity(replies.len());
        for reply in replies {
            let output = reply
                .await
                .map_err(|_| ApiError::internal("the model worker dropped the request"))?
                .map_err(batch_error)?;
            match (output, want) {
                (ModelOutput::Reconstruction(v), Want::Reconstruction)
                | (ModelOutput::Code(v), Want::Code) => outputs.push(v),
                (ModelOutput::Refused(m), _) => return Err(ApiError::unprocessable(m)),
                _ => return Err(ApiError::internal("the model answered the wrong question")),
            }
        }
        Ok(outputs)
    }
}

fn batch_error(e: BatchError) -> ApiError {
    match e {
        BatchError::Overloaded(_) | BatchError::Stopped => ApiError::overloaded(e.to_string()),
        BatchError::Failed(m) => ApiError::internal(m),
    }
}

/// Runs CPU work on the blocking pool; a panic there becomes a 500.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(ApiError::internal(format!(
            "internal error: {}",
            panic_message(&*e.into_panic())
        ))),
        Err(_) => Err(ApiError::internal("the work was cancelled")),
    }
}

/// `heatmap=1` in the query of `/v1/score`; unknown parameters are errors.
pub fn heatmap_flag(query: Option<&str>) -> Result<bool, ApiError> {
    let mut heatmap = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "1"));
        if key != "heatmap" {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {key}: /v1/score takes heatmap=1",
                key = quote(key)
            )));
        }
        heatmap = match value {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "heatmap={other}: expected 1 or 0"
                )));
            }
        };
    }
    Ok(heatmap)
}

fn png(bytes: Vec<u8>) -> Response {
    ([(CONTENT_TYPE, "image/png")], bytes).into_response()
}

/// The answers of a multipart request, in part order.
#[derive(Serialize)]
struct Results<T> {
    results: Vec<T>,
}

/// One answer for a raw body, `{"results": [...]}` for a multipart one.
fn answers<T: Serialize>(multipart: bool, mut list: Vec<T>) -> Response {
    if !multipart && list.len() == 1 {
        return Json(list.remove(0)).into_response();
    }
    Json(Results { results: list }).into_response()
}

pub async fn score(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    upload: Upload,
) -> Result<Response, ApiError> {
    let heatmap = heatmap_flag(query.as_deref())?;
    let names: Vec<Option<String>> = upload.images.iter().map(|i| i.answer_name()).collect();
    let originals = app.prepare(upload.images).await?;
    let recons = app.infer(&originals, Want::Reconstruction).await?;
    let state = app.clone();
    let list = blocking(move || {
        let run = state.run();
        let mut list: Vec<ScoreAnswer> = Vec::with_capacity(originals.len());
        for ((name, x), y) in names.into_iter().zip(&originals).zip(&recons) {
            let mut scored = answer::score(run, name, x.shape, &x.pixels, y)?;
            if heatmap {
                let picture = answer::heatmap_png(run, &scored, &x.pixels, y)?;
                answer::attach_heatmap(&mut scored, &picture);
            }
            list.push(scored.answer);
        }
        Ok(list)
    })
    .await?;
    Ok(answers(upload.multipart, list))
}

pub async fn heatmap(State(app): State<AppState>, upload: Upload) -> Result<Response, ApiError> {
    let image = upload.single("/v1/heatmap")?;
    let originals = app.prepare(vec![image]).await?;
    let recons = app.infer(&originals, Want::Reconstruction).await?;
    let state = app.clone();
    let picture = blocking(move || {
        let run = state.run();
        let x = &originals[0];
        let scored = answer::score(run, None, x.shape, &x.pixels, &recons[0])?;
        answer::heatmap_png(run, &scored, &x.pixels, &recons[0])
    })
    .await?;
    Ok(png(picture))
}

pub async fn reconstruct(
    State(app): State<AppState>,
    upload: Upload,
) -> Result<Response, ApiError> {
    let image = upload.single("/v1/reconstruct")?;
    let originals = app.prepare(vec![image]).await?;
    let recons = app.infer(&originals, Want::Reconstruction).await?;
    let shape = originals[0].shape;
    let picture = blocking(move || answer::image_png(shape, &recons[0])).await?;
    Ok(png(picture))
}

/// The answer of `/v1/encode` for one image.
#[derive(Serialize)]
struct Code {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The bottleneck's shape before flattening, e.g. `8x7x7`.
    shape: String,
    dim: usize,
    latent: Vec<f32>,
}

pub async fn encode(State(app): State<AppState>, upload: Upload) -> Result<Response, ApiError> {
    let names: Vec<Option<String>> = upload.images.iter().map(|i| i.answer_name()).collect();
    let originals = app.prepare(upload.images).await?;
    let codes = app.infer(&originals, Want::Code).await?;
    let shape = &app.run().code_shape;
    let list: Vec<Code> = names
        .into_iter()
        .zip(codes)
        .map(|(name, latent)| Code {
            name,
            shape: shape.clone(),
            dim: latent.len(),
            latent,
        })
        .collect();
    Ok(answers(upload.multipart, list))
}

pub async fn healthz(State(app): State<AppState>) -> Json<serde_json::Value> {
    let (batches, images, largest, failed) = app.inner.batcher.stats().snapshot();
    let budget = &app.inner.budget;
    Json(json!({
        "status": "ok",
        "uptime_s": app.inner.started.elapsed().as_secs_f64(),
        "batches": batches,
        "images": images,
        "largest_batch": largest,
        "failed_batches": failed,
        "connections": app.inner.connections.stats(),
        "decode_memory": { "total": budget.total_bytes(), "free": budget.free_bytes() },
    }))
}

pub async fn model(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(app.run().info())
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no such endpoint: POST /v1/score, /v1/heatmap, /v1/reconstruct, /v1/encode; GET /, \
         /healthz, /v1/model",
    )
}
