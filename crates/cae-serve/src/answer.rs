//! What the endpoints send back, built with the library's own scoring and pictures: the score
//! and anomaly map from `ScoreKind` (as `cae anomaly score`), label and normalised score from
//! the run's `Threshold` via `anomaly::predict`, the heatmap from `plot::anomaly_overlay`, and
//! plain PNGs from `plot::image_grid`. Pure functions; the handlers run them off the async
//! threads.

use crate::error::ApiError;
use crate::served_run::ServedRun;
use base64::Engine;
use cae::anomaly::{Prediction, predict};
use cae::data::ImageShape;
use cae::plot::{Overlay, anomaly_overlay, encode_png, image_grid, map_top};
use serde::Serialize;

/// The answer for one scored image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreAnswer {
    /// The multipart file name (or part number); absent for a raw body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The raw image score (higher = more anomalous).
    pub score: f64,
    /// Min–max normalised with the threshold at 0.5; null without a threshold.
    pub normalized_score: Option<f64>,
    /// The image threshold; null without one.
    pub threshold: Option<f64>,
    /// `score > threshold`; null without a threshold.
    pub is_anomaly: Option<bool>,
    /// The anomaly overlay (input, reconstruction, error map, mask) as base64 PNG, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heatmap_png_base64: Option<String>,
}

/// One image scored: the answer, and the shape, map and prediction the heatmap needs.
pub struct Scored {
    pub answer: ScoreAnswer,
    shape: ImageShape,
    map: Vec<f32>,
    prediction: Option<Prediction>,
}

/// Scores `original` (of `shape`) against its `reconstruction` (or predicted map) with the run's
/// score kind and threshold; a `fused` score adds the reference images' part.
pub fn score(
    run: &ServedRun,
    name: Option<String>,
    shape: ImageShape,
    original: &[f32],
    reconstruction: &[f32],
) -> Result<Scored, ApiError> {
    let kind = run.score;
    let mut map = kind.map(original, reconstruction, shape);
    let mut score = kind.image_score(original, reconstruction, shape, &map);
    if let Some(fusion) = &run.fusion {
        (score, map) = fusion
            .apply_one(original, shape, score, &map)
            .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    }
    let prediction = run.threshold.as_ref().map(|t| predict(t, score, &map));
    Ok(Scored {
        answer: ScoreAnswer {
            name,
            score,
            normalized_score: prediction.as_ref().map(|p| p.normalized),
            threshold: run.threshold.as_ref().map(|t| t.image),
            is_anomaly: prediction.as_ref().map(|p| p.anomalous),
            heatmap_png_base64: None,
        },
        shape,
        map,
        prediction,
    })
}

/// The overlay picture of a scored image, drawn as `cae anomaly score -o` draws it.
pub fn heatmap_png(
    run: &ServedRun,
    scored: &Scored,
    original: &[f32],
    reconstruction: &[f32],
) -> Result<Vec<u8>, ApiError> {
    let s = scored.shape;
    let top = map_top(run.threshold.as_ref().and_then(|t| t.pixel), &scored.map);
    let a = &scored.answer;
    let caption = match a.is_anomaly {
        Some(anomalous) => format!(
            "{}  score {:.5}  normalised {:.2}",
            if anomalous { "ANOMALOUS" } else { "normal" },
            a.score,
            a.normalized_score.unwrap_or(f64::NAN)
        ),
        None => format!("score {:.5}  (no threshold fitted)", a.score),
    };
    let overlay = Overlay {
        original,
        reconstruction,
        shape: (s.channels, s.height, s.width),
        map: &scored.map,
        map_top: top,
        predicted: scored.prediction.as_ref().and_then(|p| p.mask.as_deref()),
        truth: None,
        caption: &caption,
        segmentation: run.score.reads_predicted_map(),
    };
    let scale = (128 / s.height.max(s.width).max(1)).clamp(1, 8) as u32;
    anomaly_overlay(&overlay, scale).map_err(|e| ApiError::internal(format!("heatmap: {e}")))
}

/// Adds the base64 overlay to the answer.
pub fn attach_heatmap(scored: &mut Scored, png: &[u8]) {
    scored.answer.heatmap_png_base64 = Some(base64::engine::general_purpose::STANDARD.encode(png));
}

/// One CHW image in [0, 1] of `s` as a PNG of the same size.
pub fn image_png(s: ImageShape, pixels: &[f32]) -> Result<Vec<u8>, ApiError> {
    let img = image_grid(&[vec![pixels]], (s.channels, s.height, s.width), 1, 0);
    encode_png(&img).map_err(|e| ApiError::internal(format!("encoding the PNG: {e}")))
}
