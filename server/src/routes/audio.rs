//! `POST /v1/audio/transcriptions` and `/v1/audio/translations` (PROTOCOL §2.2–2.6).
//! Thin: read the upload, parse fields, run the pipeline, render.

use std::convert::Infallible;
use std::time::Instant;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use ember_models::AsrHooks;
use ember_protocol::{render, sse, AudioRequest, ErrorCode, RenderOptions, Task, Transcript};
use futures_util::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::error::ApiError;
use crate::pipeline::{check_supported, decode_upload, transcribe};
use crate::state::AppState;
use crate::upload::read_upload;

pub async fn transcriptions(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    handle(state, Task::Transcribe, multipart).await
}

pub async fn translations(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    handle(state, Task::Translate, multipart).await
}

async fn handle(
    state: AppState,
    task: Task,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let multipart = multipart.map_err(|rejection| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "expected a multipart/form-data body with a `file` part: {}",
                rejection.body_text()
            ),
        )
    })?;
    let deadline = Instant::now() + state.limits.request_timeout;
    let engine = state.engine()?;
    let upload = read_upload(
        multipart,
        &state.limits.spool_dir,
        state.limits.max_upload_bytes,
    )
    .await?;
    let request = AudioRequest::from_fields(task, &upload.fields)?;
    check_supported(&request)?;
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
    let decoded = decode_upload(&state, upload.file.to_path_buf()).await?;
    drop(upload);
    if request.stream && task == Task::Transcribe {
        return Ok(stream_response(state, request, decoded, deadline));
    }
    let transcript = transcribe(engine, &request, decoded, deadline, AsrHooks::default()).await?;
    Ok(render_response(&state, &request, &transcript))
}

fn render_response(state: &AppState, request: &AudioRequest, transcript: &Transcript) -> Response {
    let rendered = render(
        transcript,
        &RenderOptions::from_request(request, state.limits.language_names),
    );
    ([(CONTENT_TYPE, rendered.content_type)], rendered.body).into_response()
}

/// OpenAI `stream=true`: each segment is sent as a `transcript.text.delta` event as soon
/// as whisper.cpp emits it, then `transcript.text.done` (PROTOCOL §2.5).
fn stream_response(
    state: AppState,
    request: AudioRequest,
    decoded: ember_dsp::DecodedAudio,
    deadline: Instant,
) -> Response {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    // Weak: whisper-rs 0.16 never frees the segment callback it is handed, so a strong
    // sender inside it would keep the stream open forever after `done`.
    let delta_sender = sender.downgrade();
    let mut first = true;
    let hooks = AsrHooks {
        on_segment: Some(Box::new(move |text: String| {
            let text = if first {
                text.trim_start().to_string()
            } else {
                text
            };
            first = false;
            if let Some(sender) = delta_sender.upgrade() {
                let _ = sender.send(sse::delta_event(&text));
            }
        })),
        on_progress: None,
    };
    tokio::spawn(async move {
        let work = async {
            let engine = state.engine()?;
            transcribe(engine, &request, decoded, deadline, hooks).await
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
