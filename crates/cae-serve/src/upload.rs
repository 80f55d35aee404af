//! Reading the images out of a request: a raw body (`image/png`, `image/jpeg`, `image/bmp`
//! or `application/octet-stream`) holds one image; a `multipart/form-data` body holds one per
//! file part (a part with a file name or an `image/*` type; text fields are ignored). The
//! body-size limit is axum's `DefaultBodyLimit`; every refusal is an [`ApiError`] with the
//! status it deserves (400, 413, 415) instead of axum's plain-text rejections.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use cae::quote::quote;

/// Raw-body content types taken as one image (the bytes decide the format).
pub const IMAGE_TYPES: [&str; 4] = [
    "image/png",
    "image/jpeg",
    "image/bmp",
    "application/octet-stream",
];

/// One uploaded image.
#[derive(Debug, Clone)]
pub struct UploadedImage {
    /// Its part number (from 1) in a multipart body; `None` for a raw body.
    pub part: Option<usize>,
    /// The part's file name, when it has one.
    pub file_name: Option<String>,
    pub bytes: Bytes,
}

impl UploadedImage {
    /// How messages name it: `body`, `part 2` or `part 2 (b.png)`.
    pub fn label(&self) -> String {
        match (self.part, &self.file_name) {
            (None, _) => "body".into(),
            (Some(p), Some(f)) => format!("part {p} ({f})"),
            (Some(p), None) => format!("part {p}"),
        }
    }

    /// How answers name it: the file name, else `part N`; nothing for a raw body.
    pub fn answer_name(&self) -> Option<String> {
        let part = self.part?;
        Some(
            self.file_name
                .clone()
                .unwrap_or_else(|| format!("part {part}")),
        )
    }
}

/// The images of one request, in order.
#[derive(Debug, Clone)]
pub struct Upload {
    pub images: Vec<UploadedImage>,
    /// True for a multipart body (answers are then a list).
    pub multipart: bool,
}

impl Upload {
    /// The one image of an endpoint that answers with one picture.
    pub fn single(mut self, endpoint: &str) -> Result<UploadedImage, ApiError> {
        if self.images.len() != 1 {
            return Err(ApiError::bad_request(format!(
                "{endpoint} takes one image per request, got {}; POST several to /v1/score",
                self.images.len()
            )));
        }
        Ok(self.images.remove(0))
    }
}

/// The media type of a `Content-Type` value, lower case, parameters dropped.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The limits the extractor enforces itself, put in the request extensions by the router
/// (the body limit is applied by `DefaultBodyLimit`; it is here for messages).
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_body_bytes: usize,
    pub max_images: usize,
}

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Upload, ApiError> {
        let limits = req
            .extensions()
            .get::<UploadLimits>()
            .copied()
            .unwrap_or(UploadLimits {
                max_body_bytes: usize::MAX,
                max_images: usize::MAX,
            });
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| media_type(v.to_str().unwrap_or("")));
        match content_type.as_deref() {
            Some("multipart/form-data") => read_multipart(req, state, limits).await,
            Some(t) if IMAGE_TYPES.contains(&t) => {
                let bytes = Bytes::from_request(req, state)
                    .await
                    .map_err(|e| read_error(e.status(), e.body_text(), limits))?;
                if bytes.is_empty() {
                    return Err(ApiError::bad_request(
                        "empty body: send one PNG, JPEG or BMP image",
                    ));
                }
                Ok(Upload {
                    images: vec![UploadedImage {
                        part: None,
                        file_name: None,
                        bytes,
                    }],
                    multipart: false,
                })
            }
            other => Err(ApiError::unsupported_type(format!(
                "content type {}: send an image as image/png, image/jpeg, image/bmp or \
                 application/octet-stream, or several as multipart/form-data",
                other.map_or("(none)".to_string(), |t| quote(t).to_string())
            ))),
        }
    }
}

/// A body that could not be read: 413 when over the limit, else 400 (a broken upload).
fn read_error(status: StatusCode, text: String, limits: UploadLimits) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(format!(
            "the body is over the limit of {} bytes (--max-body)",
            limits.max_body_bytes
        ))
    } else {
        ApiError::bad_request(format!("cannot read the body: {text}"))
    }
}

async fn read_multipart<S: Send + Sync>(
    req: Request,
    state: &S,
    limits: UploadLimits,
) -> Result<Upload, ApiError> {
    let mut multipart = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad_request(format!("multipart body: {}", e.body_text())))?;
    let mut images = Vec::new();
    let mut part = 0;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(read_error(
                    e.status(),
                    format!("multipart body: {}", e.body_text()),
                    limits,
                ));
            }
        };
        part += 1;
        let is_image = field.file_name().is_some()
            || field
                .content_type()
                .is_some_and(|t| media_type(t).starts_with("image/"));
        if !is_image {
            continue;
        }
        if images.len() == limits.max_images {
            return Err(ApiError::too_large(format!(
                "more than {} images in one request (--max-images)",
                limits.max_images
            )));
        }
        let file_name = field
            .file_name()
            .filter(|f| !f.is_empty())
            .map(str::to_string);
        let bytes = field.bytes().await.map_err(|e| {
            read_error(
                e.status(),
                format!("part {part}: {}", e.body_text()),
                limits,
            )
        })?;
        images.push(UploadedImage {
            part: Some(part),
            file_name,
            bytes,
        });
    }
    if images.is_empty() {
        return Err(ApiError::bad_request(
            "the multipart body holds no image: send each image as a file part \
             (curl -F 'image=@digit.png')",
        ));
    }
    Ok(Upload {
        images,
        multipart: true,
    })
}
