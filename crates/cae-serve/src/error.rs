//! The two ways things fail: [`ApiError`], what one request gets back (a status code and a
//! `{"error": "..."}` body; the server goes on), and [`ServeError`], why the server could not
//! start or stopped badly.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cae::data::DataError;

/// A failed request: its HTTP status and a one-line message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the body is not what the endpoint takes (garbage, empty, no image part).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 413: the body, an image's declared size or the number of images is over a limit.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 415: a content type the endpoint does not take.
    pub fn unsupported_type(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }

    /// 422: a well-formed image the model cannot take (wrong size or channels).
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 503: the server is at its concurrency or queue limit; retrying later may work.
    pub fn overloaded(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500: a bug or a model failure; the message says which.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The status an uploaded image's decoding error deserves: 413 for a declared size over
    /// the limits, 422 for a channel count that cannot be converted, 400 for the rest (bytes
    /// that are not an image, truncated files).
    pub fn from_image(e: DataError) -> ApiError {
        let status = match e {
            DataError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            DataError::Channels { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// Why the server could not start, or stopped other than by a signal.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The run directory could not be loaded.
    #[error(transparent)]
    Run(#[from] cae::run::RunDirError),
    /// `RUN/threshold.json` exists but is unusable.
    #[error(transparent)]
    Threshold(#[from] cae::anomaly::AnomalyError),
    /// An option is out of range, or conflicts with the run.
    #[error("{0}")]
    Option(String),
    /// A batching option is out of range.
    #[error(transparent)]
    Batch(#[from] crate::batcher::BatchOptionError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The runtime, the listener or the model worker failed.
    #[error("{0}")]
    Runtime(String),
}
