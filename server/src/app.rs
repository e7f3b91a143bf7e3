//! The axum router and its layers: request id, tracing, panic catcher, body limit,
//! auth, request timeout (DESIGN §1 data flow).

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ember_protocol::ErrorCode;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::require_key;
use crate::error::ApiError;
use crate::routes::{alignments, audio, chat, embeddings, images, meta, vad};
use crate::state::AppState;

/// Multipart framing and text fields on top of the audio itself.
const BODY_OVERHEAD_BYTES: u64 = 4 << 20;

/// Every audio route is served under `/v1`, `/inference/v1`, and the Fireworks SDK's
/// doubled `/inference/v1/v1` (PROTOCOL §1.1).
const PREFIXES: &[&str] = &["/v1", "/inference/v1", "/inference/v1/v1"];

/// Builds the application for a state (tests drive this directly).
pub fn app(state: AppState) -> Router {
    let mut api = Router::new();
    for prefix in PREFIXES {
        api = api
            .route(
                &format!("{prefix}/audio/transcriptions"),
                post(audio::transcriptions),
            )
            .route(
                &format!("{prefix}/audio/translations"),
                post(audio::translations),
            )
            .route(
                &format!("{prefix}/audio/alignments"),
                post(alignments::alignments),
            )
            .route(&format!("{prefix}/audio/vad"), post(vad::speech_regions))
            .route(
                &format!("{prefix}/audio/transcriptions/streaming"),
                get(crate::stream::fireworks::handler),
            )
            .route(
                &format!("{prefix}/realtime"),
                get(crate::stream::realtime::handler),
            )
            .route(&format!("{prefix}/models"), get(meta::models))
            .route(
                &format!("{prefix}/embeddings"),
                post(embeddings::embeddings),
            )
            .route(
                &format!("{prefix}/chat/completions"),
                post(chat::chat_completions),
            )
            .route(&format!("{prefix}/completions"), post(chat::completions))
            .route(
                &format!("{prefix}/images/classifications"),
                post(images::classifications),
            )
            .route(
                &format!("{prefix}/images/generations"),
                post(images::generations),
            )
            .route(
                &format!("{prefix}/image_generation/{{*model}}"),
                post(images::generations),
            )
            .route(
                &format!("{prefix}/workflows/{{*model}}"),
                post(images::generations),
            );
    }
    let body_limit = state
        .limits
        .max_upload_bytes
        .saturating_add(BODY_OVERHEAD_BYTES)
        .min(usize::MAX as u64) as usize;
    let api = api
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.keys.clone(),
            require_key,
        ))
        .layer(DefaultBodyLimit::max(body_limit));
    Router::new()
        .route("/health", get(meta::health))
        // Outside auth like `/health`, so a scraper needs no API key; bind Ember to a
        // private interface or filter `/metrics` at the proxy when that matters.
        .route("/metrics", get(crate::metrics::scrape))
        .merge(api)
        .merge(crate::routes::page::routes())
        .fallback(meta::not_found)
        .method_not_allowed_fallback(meta::method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("internal error while handling the request").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Ends a request that runs past the configured timeout with 408; dropping the handler
/// future cancels its ASR job.
async fn request_timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit: Duration = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::Timeout,
            format!("the request did not finish within {} s", limit.as_secs()),
        )
        .into_response(),
    }
}
