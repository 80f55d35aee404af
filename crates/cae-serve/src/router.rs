//! The routes and the layers that keep the server up: on the `/v1` model endpoints a
//! concurrency limit that sheds load (503) and a request timeout (504); everywhere the body
//! limit — a `Content-Length` over it is a 413 from the header, before a byte of the body is
//! read or `100 Continue` is sent —, a panic catcher (500) and a last layer that turns any
//! error response that is not JSON yet — axum's own 404/405 and rejections — into
//! `{"error": "..."}`.

use crate::error::ApiError;
use crate::handlers::{self, AppState};
use crate::page;
use crate::upload::UploadLimits;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Router};
use std::time::Duration;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower_http::catch_panic::CatchPanicLayer;

/// The whole service.
pub fn router(state: AppState) -> Router {
    let limits = state.limits();
    let timeout = limits.timeout;
    let guarded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e: BoxError| async move {
            layer_error(&e, timeout)
        }))
        .layer(TimeoutLayer::new(timeout))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrency));
    let app = Router::new()
        .route("/v1/score", post(handlers::score))
        .route("/v1/heatmap", post(handlers::heatmap))
        .route("/v1/reconstruct", post(handlers::reconstruct))
        .route("/v1/encode", post(handlers::encode))
        .route_layer(guarded)
        .route("/healthz", get(handlers::healthz))
        .route("/v1/model", get(handlers::model))
        .route("/", get(page::index))
        .route("/page.css", get(page::style))
        .route("/page.js", get(page::script))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limits.max_body_bytes,
            refuse_declared_oversize,
        ))
        .layer(Extension(UploadLimits {
            max_body_bytes: limits.max_body_bytes,
            max_images: limits.max_images,
        }))
        .with_state(state);
    harden(app)
}

/// A body whose `Content-Length` is over the limit gets 413 at once. Without this the limit
/// only bites once that many bytes have arrived, so a client declaring 99999999999 bytes and
/// sending few held its request until the timeout, and one asking `Expect: 100-continue` was
/// told to go ahead. hyper sends `100 Continue` only when the body is first read, which now
/// never happens for such a request.
async fn refuse_declared_oversize(
    axum::extract::State(max_body_bytes): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > max_body_bytes as u64 => ApiError::too_large(format!(
            "the body declares {n} bytes (Content-Length), over the limit of {max_body_bytes} \
             bytes (--max-body)"
        ))
        .into_response(),
        _ => next.run(request).await,
    }
}

/// The layers every route gets, outermost last: panics become 500 JSON, and error responses
/// that are not JSON become JSON.
pub fn harden(app: Router) -> Router {
    app.layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::map_response(json_errors))
}

/// What the timeout and load-shedding layers' errors mean to a client.
pub fn layer_error(e: &BoxError, timeout: Duration) -> ApiError {
    if e.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the request took longer than {:.1} s (--timeout)",
                timeout.as_secs_f64()
            ),
        )
    } else if e.is::<tower::load_shed::error::Overloaded>() {
        ApiError::overloaded(
            "the server is at its concurrency limit (--max-concurrency); retry later",
        )
    } else {
        ApiError::internal(format!("internal error: {e}"))
    }
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(format!(
        "internal error: the handler panicked: {}",
        crate::batcher::panic_message(&*panic)
    ))
    .into_response()
}

/// Longest plain-text error body carried over into the JSON message.
const MAX_ERROR_TEXT: usize = 4096;

/// Rewrites 4xx/5xx responses whose body is not JSON as `{"error": "<their text>"}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let body = serde_json::json!({ "error": text }).to_string();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests;
