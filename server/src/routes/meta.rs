//! `GET /health`, `GET /v1/models`, and the JSON 404/405 fallbacks (PROTOCOL §1.1).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ember_protocol::ErrorCode;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// 200 once the models are loaded, 503 (with `retry-after`) before.
pub async fn health(State(state): State<AppState>) -> Response {
    match state.engine() {
        Ok(engine) => Json(json!({
            "status": "ok",
            "models": engine.registry().models().map(|m| m.id.clone()).collect::<Vec<_>>(),
            "asr_queue": engine.stats().queued(),
            "asr_running": engine.stats().running(),
            "asr_completed": engine.counters().completed.load(Ordering::Relaxed),
            "asr_cancelled": engine.counters().cancelled.load(Ordering::Relaxed),
        }))
        .into_response(),
        Err(error) => error.into_response(),
    }
}

/// OpenAI-style model list: every installed model with its `kind` (`audio`,
/// `alignment`, `embedding`, `image_classification`), plus the hosted aliases that map
/// onto the default ASR model.
pub async fn models(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let models = state.models()?;
    let registry = models.asr.registry();
    let entry = |id: &str, kind: &str, maps_to: &str| {
        json!({
            "id": id,
            "object": "model",
            "created": 0,
            "owned_by": "ember",
            "kind": kind,
            "maps_to": maps_to,
            "supports_chat": false,
            "supports_image_input": kind == "image_classification",
            "supports_tools": false,
        })
    };
    let mut data: Vec<serde_json::Value> = registry
        .models()
        .map(|m| entry(&m.id, "audio", &m.id))
        .collect();
    data.extend(
        ember_models::registry::DEFAULT_ALIASES
            .iter()
            .map(|alias| entry(alias, "audio", registry.default_id())),
    );
    let aligners = models.align.as_ref().map(|a| a.names()).unwrap_or_default();
    for name in aligners
        .iter()
        .map(String::as_str)
        .chain(["whisper", "whisper_tokens"])
    {
        data.push(entry(name, "alignment", name));
    }
    if let Some(embed) = &models.embed {
        data.push(entry(embed.id(), "embedding", embed.id()));
    }
    for name in models
        .classify
        .as_ref()
        .map(|c| c.names())
        .unwrap_or_default()
    {
        data.push(entry(&name, "image_classification", &name));
    }
    if let Some(llm) = &models.llm {
        let mut chat = entry(llm.id(), "chat", llm.id());
        chat["supports_chat"] = json!(true);
        chat["supports_tools"] = json!(true);
        chat["context_length"] = json!(llm.context_length());
        data.push(chat);
    }
    Ok(Json(json!({ "object": "list", "data": data })))
}

/// Unknown path: 404 in the error envelope.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

/// Known path, wrong method: 405 in the error envelope.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}
