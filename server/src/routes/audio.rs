//! `POST /v1/audio/transcriptions` and `/v1/audio/translations` (PROTOCOL §2.2–2.6).
//! Thin: read the upload, parse fields, run the pipeline, render.

use std::convert::Infallible;
use std::time::Instant;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ember_protocol::{
    render, sse, AudioRequest, ErrorCode, RenderOptions, ResponseFormat, Task, Transcript,
};
use futures_util::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::error::ApiError;
use crate::longform::TranscribeEvents;
use crate::metrics::{StageTimings, TIMINGS_HEADER};
use crate::pipeline::{check_supported, prepare_options, prepare_upload, transcribe};
use crate::prepare::PreparedAudio;
use crate::state::AppState;
use crate::upload::read_upload;

pub async fn transcriptions(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    handle(state, Task::Transcribe, &headers, multipart).await
}

pub async fn translations(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    handle(state, Task::Translate, &headers, multipart).await
}

/// The multipart body, or a 400 in the error envelope saying what was expected.
pub fn require_multipart(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Multipart, ApiError> {
    multipart.map_err(|rejection| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "expected a multipart/form-data body with a `file` part: {}",
                rejection.body_text()
            ),
        )
    })
}

async fn handle(
    state: AppState,
    task: Task,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let multipart = require_multipart(multipart)?;
    let deadline = Instant::now() + state.limits.request_timeout;
    let models = state.models()?;
    let engine = &models.asr;
    let upload = read_upload(
        multipart,
        &state.limits.spool_dir,
        state.limits.max_upload_bytes,
    )
    .await?;
    let request = AudioRequest::from_fields(task, &upload.fields)?;
    check_supported(&request, models)?;
    // Fail fast on model/language problems before decoding a large file.
    engine.check(
        request.model.as_deref(),
        &crate::pipeline::asr_request(&request, Vec::new()),
    )?;
    tracing::info!(
        task = task.as_str(),
        bytes = upload.size_bytes,
        file_name = upload.file_name.as_deref().unwrap_or(""),
        model = request.model.as_deref().unwrap_or(""),
        "audio request"
    );
    let options = prepare_options(&state, &request)?;
    let prepared = prepare_upload(&state, upload.file.to_path_buf(), options).await?;
    drop(upload);
    if request.stream && task == Task::Transcribe {
        return Ok(stream_response(state, request, prepared, deadline));
    }
    let (transcript, timings) = transcribe(
        models,
        &request,
        prepared,
        deadline,
        TranscribeEvents::default(),
    )
    .await?;
    let timings = wants_timings(headers).then_some(timings);
    Ok(render_response(&state, &request, &transcript, timings))
}

/// `x-ember-timings: true` (or `1`) asks for per-stage timings in `verbose_json`.
fn wants_timings(headers: &HeaderMap) -> bool {
    headers
        .get(TIMINGS_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn render_response(
    state: &AppState,
    request: &AudioRequest,
    transcript: &Transcript,
    timings: Option<StageTimings>,
) -> Response {
    let rendered = render(
        transcript,
        &RenderOptions::from_request(request, state.limits.language_names),
    );
    let body = match timings {
        Some(timings) if request.response_format == ResponseFormat::VerboseJson => {
            with_timings(rendered.body, &timings)
        }
        _ => rendered.body,
    };
    ([(CONTENT_TYPE, rendered.content_type)], body).into_response()
}

/// Adds `"timings": {stage: seconds}` to a rendered `verbose_json` body.
fn with_timings(body: String, timings: &StageTimings) -> String {
    match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut object)) => {
            object.insert("timings".to_string(), timings.to_json());
            serde_json::Value::Object(object).to_string()
        }
        _ => body,
    }
}

/// OpenAI `stream=true`: the kept segments of each window are sent as
/// `transcript.text.delta` events as soon as the window is decoded and screened, then
/// `transcript.text.done` (PROTOCOL §2.5).
fn stream_response(
    state: AppState,
    request: AudioRequest,
    prepared: PreparedAudio,
    deadline: Instant,
) -> Response {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let delta_sender = sender.clone();
    let mut first = true;
    let events = TranscribeEvents {
        on_text: Some(Box::new(move |text: &str| {
            let text = if first { text.trim_start() } else { text };
            first = false;
            let _ = delta_sender.send(sse::delta_event(text));
        })),
        on_progress: None,
    };
    tokio::spawn(async move {
        let work = async {
            let models = state.models()?;
            transcribe(models, &request, prepared, deadline, events)
                .await
                .map(|(transcript, _)| transcript)
        };
        // Dropping `work` when the client hangs up cancels the ASR job.
        tokio::select! {
            result = work => {
                let event = match result {
                    Ok(transcript) => sse::done_event(&transcript.text),
                    Err(error) => sse::error_event(&error.body()),
                };
                let _ = sender.send(event);
            }
            () = sender.closed() => tracing::info!("stream client disconnected"),
        }
    });
    let body = UnboundedReceiverStream::new(receiver).map(Ok::<_, Infallible>);
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
