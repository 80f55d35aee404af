//! The service in memory (no socket): every endpoint on a run with and without a threshold,
//! every malformed request the README lists, panics and layer errors. A fresh, untrained model
//! is enough: these tests check the contract, not the scores' quality.

use super::*;
use crate::batcher::Batcher;
use crate::connection::Connections;
use crate::options::{Limits, ServeOptions};
use crate::served_run::ServedRun;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use cae::Device;
use cae::anomaly::ScoreKind;
use cae::anomaly::threshold::{FitScores, ThresholdMethod, fit};
use cae::model::{Autoencoder, save_weights};
use cae::run::{DataConfig, RunConfig};
use cae::spec::ArchSpec;
use image::{GrayImage, ImageFormat, Luma};
use std::io::Cursor;
use std::path::PathBuf;
use tower::ServiceExt;

/// A run directory with an untrained `pytorch-small` (1x28x28), removed on drop.
struct TestRun(PathBuf);

impl TestRun {
    fn new(tag: &str, threshold: bool) -> TestRun {
        let dir = std::env::temp_dir().join(format!("cae-serve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let spec = ArchSpec::resolve("pytorch-small", &[], None).unwrap();
        let config = RunConfig {
            arch: spec.spec.clone(),
            input: spec.input.to_string(),
            data: DataConfig {
                source: "test".into(),
                ..Default::default()
            },
            train: Default::default(),
        };
        std::fs::write(dir.join("config.toml"), toml::to_string(&config).unwrap()).unwrap();
        let model = Autoencoder::new(&spec, &Device::flex());
        save_weights(&model, &dir.join("best.bpk")).unwrap();
        if threshold {
            let scores = FitScores {
                scores: &[0.01, 0.02, 0.03],
                map_maxima: &[0.1, 0.2, 0.3],
                anomalous: &[false, false, false],
                source: "test",
            };
            let manual = ThresholdMethod::Manual {
                image: 0.02,
                pixel: Some(0.2),
            };
            fit(ScoreKind::Mse, manual, scores)
                .unwrap()
                .save(&dir)
                .unwrap();
        }
        TestRun(dir)
    }

    fn app(&self, limits: Limits) -> Router {
        let mut options = ServeOptions::new(&self.0);
        options.limits = limits;
        let (run, model) = ServedRun::load(&options).unwrap();
        let mut runner = crate::model_runner(&run, model, &options).unwrap();
        let (batcher, _worker) =
            Batcher::spawn(options.batch, move |jobs| runner.run(jobs)).unwrap();
        router(AppState::new(
            run,
            batcher,
            limits,
            Connections::new(limits.max_connections),
        ))
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn digit_png(w: u32, h: u32) -> Vec<u8> {
    let img = GrayImage::from_fn(w, h, |x, y| Luma([if (x + y) % 7 == 0 { 255 } else { 0 }]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A PNG whose IHDR chunk is rewritten (CRC included) to declare `w`×`h` pixels.
fn claim_size(mut png: Vec<u8>, w: u32, h: u32) -> Vec<u8> {
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = 0xFFFF_FFFFu32;
    for &b in &png[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    png[29..33].copy_from_slice(&(!crc).to_be_bytes());
    png
}

/// A multipart body: `(field name, file name, content type, bytes)` per part.
fn multipart(parts: &[(&str, Option<&str>, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "XcaeBoundaryX";
    let mut body = Vec::new();
    for (name, file, ctype, bytes) in parts {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
        );
        if let Some(f) = file {
            body.extend(format!("; filename=\"{f}\"").bytes());
        }
        body.extend(format!("\r\nContent-Type: {ctype}\r\n\r\n").bytes());
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Sends one request; returns the status, the content type and the body.
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let ctype = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, ctype, bytes.to_vec())
}

async fn send_json(
    app: &Router,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let (status, ctype, bytes) = send(app, method, uri, content_type, body).await;
    assert!(
        ctype.starts_with("application/json"),
        "{uri}: {status} {ctype}"
    );
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(bytes, ImageFormat::Png).unwrap();
    (img.width(), img.height())
}

#[tokio::test]
async fn every_endpoint_answers_on_a_run_without_a_threshold() {
    let run = TestRun::new("plain", false);
    let app = run.app(Limits::default());
    let (s, health) = send_json(&app, "GET", "/healthz", None, vec![]).await;
    assert_eq!((s, health["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, model) = send_json(&app, "GET", "/v1/model", None, vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(model["input"]["shape"], "1x28x28");
    assert_eq!(model["threshold"]["fitted"], false);
    assert_eq!(model["architecture"]["code_len"], 8 * 7 * 7);
    assert_eq!(model["score"]["kind"], "mse");

    let png = digit_png(28, 28);
    let (s, score) = send_json(&app, "POST", "/v1/score", Some("image/png"), png.clone()).await;
    assert_eq!(s, StatusCode::OK, "{score}");
    assert!(score["score"].as_f64().unwrap() > 0.0);
    for null in ["normalized_score", "threshold", "is_anomaly"] {
        assert!(score[null].is_null(), "{null}: {score}");
    }
    let (s, ctype, picture) = send(
        &app,
        "POST",
        "/v1/reconstruct",
        Some("image/png"),
        png.clone(),
    )
    .await;
    assert_eq!((s, ctype.as_str()), (StatusCode::OK, "image/png"));
    assert_eq!(png_size(&picture), (28, 28));
    let (s, ctype, picture) =
        send(&app, "POST", "/v1/heatmap", Some("image/png"), png.clone()).await;
    assert_eq!((s, ctype.as_str()), (StatusCode::OK, "image/png"));
    assert!(png_size(&picture).0 > 4 * 28);
    let (s, code) = send_json(
        &app,
        "POST",
        "/v1/encode",
        Some("application/octet-stream"),
        png,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(code["dim"], 392);
    assert_eq!(code["shape"], "8x7x7");
    assert_eq!(code["latent"].as_array().unwrap().len(), 392);
    let (_, health) = send_json(&app, "GET", "/healthz", None, vec![]).await;
    assert!(health["images"].as_u64().unwrap() >= 4, "{health}");
}

#[tokio::test]
async fn a_larger_image_is_scored_at_its_own_size_when_the_run_did_not_resize() {
    let run = TestRun::new("any-size", false);
    let app = run.app(Limits::default());
    let (s, score) = send_json(
        &app,
        "POST",
        "/v1/score",
        Some("image/png"),
        digit_png(64, 48),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{score}");
    assert!(score["score"].as_f64().unwrap() > 0.0, "{score}");
    let (s, _, picture) = send(
        &app,
        "POST",
        "/v1/reconstruct",
        Some("image/png"),
        digit_png(64, 48),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(png_size(&picture), (64, 48));
    let (s, _, picture) = send(
        &app,
        "POST",
        "/v1/heatmap",
        Some("image/png"),
        digit_png(64, 48),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Four panels of the image's own width side by side.
    assert!(png_size(&picture).0 >= 4 * 64, "{:?}", png_size(&picture));
    // The training size and another size in one multipart request: both answered.
    let (ctype, body) = multipart(&[
        ("image", Some("a.png"), "image/png", &digit_png(28, 28)),
        ("image", Some("b.png"), "image/png", &digit_png(40, 40)),
    ]);
    let (s, list) = send_json(&app, "POST", "/v1/score", Some(ctype.as_str()), body).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["results"].as_array().map(Vec::len), Some(2), "{list}");
}

#[tokio::test]
async fn scores_with_a_threshold_label_normalise_and_draw() {
    let run = TestRun::new("threshold", true);
    let app = run.app(Limits::default());
    let (_, model) = send_json(&app, "GET", "/v1/model", None, vec![]).await;
    assert_eq!(model["threshold"]["fitted"], true);
    assert_eq!(model["threshold"]["image"], 0.02);

    let (s, score) = send_json(
        &app,
        "POST",
        "/v1/score?heatmap=1",
        Some("image/png"),
        digit_png(28, 28),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{score}");
    let value = score["score"].as_f64().unwrap();
    assert_eq!(score["threshold"], 0.02);
    assert_eq!(score["is_anomaly"], value > 0.02);
    let normalized = score["normalized_score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&normalized));
    let picture = base64::engine::general_purpose::STANDARD
        .decode(score["heatmap_png_base64"].as_str().unwrap())
        .unwrap();
    assert!(png_size(&picture).0 > 4 * 28);

    // Several images in one multipart body, a text field ignored; answers in order.
    let a = digit_png(28, 28);
    let blank = {
        let mut out = Cursor::new(Vec::new());
        GrayImage::new(28, 28)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let (ctype, body) = multipart(&[
        ("note", None, "text/plain", b"hello"),
        ("image", Some("a.png"), "image/png", &a),
        ("image", Some("blank.png"), "image/png", &blank),
    ]);
    let (s, many) = send_json(&app, "POST", "/v1/score", Some(ctype.as_str()), body).await;
    assert_eq!(s, StatusCode::OK, "{many}");
    let results = many["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["name"], "a.png");
    assert_eq!(results[1]["name"], "blank.png");
    assert_eq!(
        results[0]["score"], score["score"],
        "batching changed a score"
    );
    assert!(results[0]["heatmap_png_base64"].is_null());
}

#[tokio::test]
async fn malformed_requests_get_4xx_json_and_the_server_goes_on() {
    let run = TestRun::new("malformed", false);
    let limits = Limits {
        max_body_bytes: 64 << 10,
        max_images: 2,
        ..Limits::default()
    };
    let app = run.app(limits);
    let png = digit_png(28, 28);
    let huge_header = claim_size(digit_png(1, 1), 100_000, 100_000);
    let (no_file_type, no_file) = multipart(&[("note", None, "text/plain", b"no image here")]);
    let (three_type, three) = multipart(&[
        ("a", Some("1.png"), "image/png", &png),
        ("b", Some("2.png"), "image/png", &png),
        ("c", Some("3.png"), "image/png", &png),
    ]);
    let (two_type, two) = multipart(&[
        ("a", Some("1.png"), "image/png", &png),
        ("b", Some("2.png"), "image/png", &png),
    ]);
    // (method, uri, content type, body, expected status, a word the message must hold)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/score",
            Some("image/png"),
            b"garbage bytes".to_vec(),
            StatusCode::BAD_REQUEST,
            "not a valid PNG",
        ),
        (
            "POST",
            "/v1/score",
            Some("image/png"),
            vec![],
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            "POST",
            "/v1/score",
            Some("text/plain"),
            png.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
        ),
        (
            "POST",
            "/v1/score",
            None,
            png.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "(none)",
        ),
        (
            "POST",
            "/v1/score",
            Some("image/png"),
            vec![0u8; 128 << 10],
            StatusCode::PAYLOAD_TOO_LARGE,
            "--max-body",
        ),
        (
            "POST",
            "/v1/score",
            Some("image/png"),
            huge_header,
            StatusCode::PAYLOAD_TOO_LARGE,
            "100000x100000",
        ),
        (
            "POST",
            "/v1/encode",
            Some("image/png"),
            digit_png(32, 32),
            StatusCode::UNPROCESSABLE_ENTITY,
            "codes come from 1x28x28 images only",
        ),
        (
            "POST",
            "/v1/score",
            Some(no_file_type.as_str()),
            no_file,
            StatusCode::BAD_REQUEST,
            "no image",
        ),
        (
            "POST",
            "/v1/score",
            Some("multipart/form-data"),
            png.clone(),
            StatusCode::BAD_REQUEST,
            "multipart",
        ),
        (
            "POST",
            "/v1/score",
            Some(three_type.as_str()),
            three,
            StatusCode::PAYLOAD_TOO_LARGE,
            "--max-images",
        ),
        (
            "POST",
            "/v1/heatmap",
            Some(two_type.as_str()),
            two,
            StatusCode::BAD_REQUEST,
            "one image",
        ),
        (
            "POST",
            "/v1/score?color=red",
            Some("image/png"),
            png.clone(),
            StatusCode::BAD_REQUEST,
            "color",
        ),
        (
            "POST",
            "/v1/nothing",
            Some("image/png"),
            png.clone(),
            StatusCode::NOT_FOUND,
            "no such endpoint",
        ),
        (
            "GET",
            "/v1/score",
            None,
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        ),
    ];
    for (method, uri, ctype, body, want, needle) in cases {
        let (s, json) = send_json(&app, method, uri, ctype, body).await;
        let message = json["error"].as_str().unwrap_or_default();
        assert_eq!(s, want, "{method} {uri} {ctype:?}: {json}");
        assert!(
            message.contains(needle),
            "{uri} {ctype:?}: {message:?} lacks {needle:?}"
        );
    }
    let (s, _) = send_json(&app, "POST", "/v1/score", Some("image/png"), png).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_declared_content_length_over_the_limit_is_413_before_the_body_is_read() {
    let run = TestRun::new("declared", false);
    let limits = Limits {
        max_body_bytes: 64 << 10,
        ..Limits::default()
    };
    let app = run.app(limits);
    // A body that never arrives: only an answer from the header can come back.
    let request = Request::post("/v1/score")
        .header("content-type", "image/png")
        .header("content-length", "99999999999")
        .header("expect", "100-continue")
        .body(Body::new(NeverBody))
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(5), app.oneshot(request))
        .await
        .expect("answered from the header")
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("99999999999 bytes (Content-Length)"),
        "{j}"
    );
}

/// A request body whose bytes never arrive.
struct NeverBody;

impl hyper::body::Body for NeverBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_and_the_router_goes_on() {
    async fn boom() -> &'static str {
        panic!("boom")
    }
    let app = harden(
        Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" })),
    );
    let (s, json) = send_json(&app, "GET", "/boom", None, vec![]).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(json["error"].as_str().unwrap().contains("boom"), "{json}");
    let (s, _, body) = send(&app, "GET", "/fine", None, vec![]).await;
    assert_eq!((s, body.as_slice()), (StatusCode::OK, &b"fine"[..]));
}

#[test]
fn layer_errors_map_to_503_and_504() {
    let t = Duration::from_millis(1500);
    let e: BoxError = Box::new(tower::timeout::error::Elapsed::new());
    let a = layer_error(&e, t);
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(a.message.contains("1.5 s"), "{}", a.message);
    let e: BoxError = Box::new(tower::load_shed::error::Overloaded::new());
    assert_eq!(layer_error(&e, t).status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn the_heatmap_flag_takes_1_or_0_and_nothing_else() {
    use crate::handlers::heatmap_flag;
    assert_eq!(heatmap_flag(None), Ok(false));
    assert_eq!(heatmap_flag(Some("heatmap=1")), Ok(true));
    assert_eq!(heatmap_flag(Some("heatmap")), Ok(true));
    assert_eq!(heatmap_flag(Some("heatmap=0")), Ok(false));
    assert!(heatmap_flag(Some("heatmap=maybe")).is_err());
    assert!(heatmap_flag(Some("other=1")).is_err());
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_types_and_ask_nothing_of_elsewhere() {
    let run = TestRun::new("page", false);
    let app = run.app(Limits::default());
    let (s, ctype, body) = send(&app, "GET", "/", None, vec![]).await;
    assert_eq!(
        (s, ctype.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    let html = String::from_utf8(body).unwrap();
    assert!(html.starts_with("<!doctype html>"), "{html}");
    for needle in [
        r#"<meta name="viewport""#,
        r#"<input id="files" "#,
        r#"type="file" multiple"#,
        r#"<label for="files""#,
        r#"aria-live="polite""#,
        r#"href="page.css""#,
        r#"src="page.js""#,
    ] {
        assert!(html.contains(needle), "the page lacks {needle}");
    }
    let mut files = vec![html];
    for (uri, want, needle) in [
        ("/page.css", "text/css; charset=utf-8", ".drop"),
        (
            "/page.js",
            "text/javascript; charset=utf-8",
            "v1/score?heatmap=1",
        ),
    ] {
        let (s, ctype, body) = send(&app, "GET", uri, None, vec![]).await;
        assert_eq!((s, ctype.as_str()), (StatusCode::OK, want), "{uri}");
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(needle), "{uri} lacks {needle}");
        files.push(text);
    }
    // Offline: no CDN, no web font, no other host; the policy header says the same.
    for text in &files {
        for outside in ["http://", "https://", "//cdn", "@import", "url("] {
            assert!(!text.contains(outside), "a page file holds {outside}");
        }
    }
    let response = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    // Other methods on the page are JSON errors like everywhere else.
    let (s, e) = send_json(&app, "POST", "/", Some("image/png"), digit_png(28, 28)).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{e}");
    assert!(e["error"].is_string(), "{e}");
}
