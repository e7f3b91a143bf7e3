//! Image routes: `POST /v1/images/classifications` (Ember: a multipart `file`, or JSON
//! with a base64 / data-URL `image`) and clear refusals for image generation, whose
//! weights no registry we can reach carries.

use std::time::Instant;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::Json;
use ember_protocol::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::AppState;

/// Largest encoded image accepted.
pub const MAX_IMAGE_BYTES: usize = 20 << 20;

#[derive(Debug, Deserialize)]
pub struct ClassifyBody {
    /// Base64, or a `data:image/...;base64,` URL.
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    top_k: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct LabelOut {
    label: String,
    score: f32,
}

#[derive(Debug, Serialize)]
pub struct ClassifyResponse {
    object: &'static str,
    model: String,
    data: Vec<LabelOut>,
}

pub async fn classifications(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let deadline = Instant::now() + state.limits.request_timeout;
    let is_multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    let body = if is_multipart {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
        read_multipart(multipart).await?
    } else {
        let JsonBody(body) = JsonBody::<ClassifyBody>::from_request(request, &state).await?;
        let image = body
            .image
            .as_deref()
            .ok_or_else(|| ApiError::invalid_param("image", "`image` is required"))?;
        (decode_base64_image(image)?, body.model, body.top_k)
    };
    let (image, model, top_k) = body;
    let engine = state.models()?.classify.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "no image classifier is installed; run `ember models install`",
        )
    })?;
    let model_name = model.unwrap_or_else(|| engine.names()[0].clone());
    let mut scores = engine
        .submit(Some(&model_name), image, deadline)?
        .await
        .map_err(|_| ApiError::internal("the classifier stopped unexpectedly"))??;
    if let Some(k) = top_k {
        if k == 0 {
            return Err(ApiError::invalid_param(
                "top_k",
                "`top_k` must be at least 1",
            ));
        }
        scores.truncate(k);
    }
    Ok(Json(ClassifyResponse {
        object: "list",
        model: model_name,
        data: scores
            .into_iter()
            .map(|s| LabelOut {
                label: s.label,
                score: s.score,
            })
            .collect(),
    }))
}

type ClassifyParts = (Vec<u8>, Option<String>, Option<usize>);

async fn read_multipart(mut multipart: Multipart) -> Result<ClassifyParts, ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("reading the form: {}", e.body_text()),
        )
    };
    let (mut image, mut model, mut top_k) = (None, None, None);
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "file" | "image" => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                        return Err(ApiError::new(
                            ErrorCode::PayloadTooLarge,
                            format!("the image is larger than {MAX_IMAGE_BYTES} bytes"),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                image = Some(bytes);
            }
            "model" => model = Some(field.text().await.map_err(bad)?),
            "top_k" => {
                let text = field.text().await.map_err(bad)?;
                top_k = Some(text.trim().parse().map_err(|_| {
                    ApiError::invalid_param(
                        "top_k",
                        format!("`top_k` must be an integer, got `{text}`"),
                    )
                })?);
            }
            _ => {}
        }
    }
    let image = image.ok_or_else(|| {
        ApiError::invalid_param("file", "a `file` part with the image is required")
    })?;
    Ok((image, model.filter(|m| !m.trim().is_empty()), top_k))
}

/// Bytes of a base64 image or `data:` URL.
fn decode_base64_image(text: &str) -> Result<Vec<u8>, ApiError> {
    let payload = match text.strip_prefix("data:") {
        Some(rest) => rest
            .split_once(";base64,")
            .map(|(_, data)| data)
            .ok_or_else(|| {
                ApiError::invalid_param("image", "a data URL must be `data:<type>;base64,<data>`")
            })?,
        None => text,
    };
    if payload.len() > MAX_IMAGE_BYTES * 4 / 3 + 4 {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the image is larger than {MAX_IMAGE_BYTES} bytes"),
        ));
    }
    ember_protocol::base64::decode(payload.trim())
        .ok_or_else(|| ApiError::invalid_param("image", "`image` is not valid base64"))
}

/// Image generation: no weights exist here, so say so and how one would be set up.
pub async fn generations() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no image-generation model is installed, and this build has no image-generation \
         runtime: no package registry Ember can reach carries image-generation weights, \
         so none can be configured. Image classification is served at \
         POST /v1/images/classifications (see the README, section Images)",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_data_urls_decode() {
        assert_eq!(
            decode_base64_image("data:image/png;base64,aGk=").unwrap(),
            b"hi"
        );
        assert!(decode_base64_image("data:image/png,abc").is_err());
    }
}
