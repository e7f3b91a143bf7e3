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

/// OpenAI-style model list: installed models plus the hosted aliases that map onto the default.
pub async fn models(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let engine = state.engine()?;
    let registry = engine.registry();
    let entry = |id: &str, maps_to: &str| {
        json!({
            "id": id,
            "object": "model",
            "created": 0,
            "owned_by": "ember",
            "kind": "audio",
            "maps_to": maps_to,
            "supports_chat": false,
            "supports_image_input": false,
            "supports_tools": false,
        })
    };
    let mut data: Vec<serde_json::Value> = registry.models().map(|m| entry(&m.id, &m.id)).collect();
    data.extend(
        ember_models::registry::DEFAULT_ALIASES
            .iter()
            .map(|alias| entry(alias, registry.default_id())),
    );
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
