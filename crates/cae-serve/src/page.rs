//! The inspection page at `GET /`: one HTML page where a person drops or picks images and
//! sees, for each, the verdict, the score against the threshold, the normalised score and the
//! heatmap, beside the model card of `GET /v1/model`. Its three files (`page/index.html`,
//! `page/page.css`, `page/page.js`: vanilla JS, no build step) are compiled into the binary,
//! and the page asks nothing of any other server (no CDN, no web fonts), so it works offline.
//! It is a client of the public API only (`/v1/model`, `/v1/score?heatmap=1`): it knows no
//! more about the run than any other client does.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("page/index.html");
const STYLE: &str = include_str!("page/page.css");
const SCRIPT: &str = include_str!("page/page.js");

/// What the page may load: its own stylesheet and script, this server's API, and the heatmaps
/// it receives as `data:` URLs. Nothing inline, nothing from elsewhere.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

/// One of the page's files with its type. `no-cache`: a browser revalidates, so a server
/// upgraded in place never runs an old script against a new API.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (CONTENT_SECURITY_POLICY, POLICY),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /page.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /page.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}
