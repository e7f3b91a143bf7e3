//! `POST /v1/embeddings` (OpenAI/Fireworks-compatible). Thin: validate, tokenise on the
//! blocking pool, queue on the batching embedder, render.

use std::time::Instant;

use axum::extract::State;
use axum::Json;
use ember_models::embed::{truncate_dimensions, EmbedInput};
use ember_protocol::embeddings::{
    EmbeddingInput, EmbeddingsBody, EmbeddingsRequest, EmbeddingsResponse,
};
use ember_protocol::ErrorCode;

use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::AppState;

pub async fn embeddings(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<EmbeddingsBody>,
) -> Result<Json<EmbeddingsResponse>, ApiError> {
    let request = EmbeddingsRequest::from_body(body)?;
    let deadline = Instant::now() + state.limits.request_timeout;
    let engine = state.models()?.embed.as_ref().ok_or_else(no_model)?;
    if let Some(d) = request.dimensions.filter(|d| *d > engine.dimension()) {
        return Err(ApiError::invalid_param(
            "dimensions",
            format!(
                "`dimensions` is {d}; model `{}` has {} dimensions",
                engine.id(),
                engine.dimension()
            ),
        ));
    }
    let inputs: Vec<EmbedInput> = request
        .inputs
        .iter()
        .map(|i| match i {
            EmbeddingInput::Text(t) => EmbedInput::Text(t.clone()),
            EmbeddingInput::Tokens(t) => EmbedInput::Tokens(t.clone()),
        })
        .collect();
    let tokenizing = state.clone();
    let sequences = tokio::task::spawn_blocking(move || {
        let engine = tokenizing.models()?.embed.as_ref().ok_or_else(no_model)?;
        engine.tokenize(&inputs).map_err(ApiError::from)
    })
    .await
    .map_err(|e| ApiError::internal(format!("tokenizing failed: {e}")))??;
    let tokens = sequences.iter().map(Vec::len).sum();
    let mut vectors = engine
        .submit(sequences, deadline)?
        .await
        .map_err(|_| ApiError::internal("the embedder stopped unexpectedly"))??;
    if let Some(d) = request.dimensions {
        vectors.iter_mut().for_each(|v| truncate_dimensions(v, d));
    }
    Ok(Json(EmbeddingsResponse::new(
        engine.id().to_string(),
        vectors,
        request.encoding_format,
        tokens,
    )))
}

fn no_model() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no embedding model is installed; run `ember models install`",
    )
}
