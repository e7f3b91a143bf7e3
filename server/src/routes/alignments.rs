//! `POST /v1/audio/alignments` (PROTOCOL §2.7): the client's `text` timed against its
//! audio. Thin: parse, prepare the audio, hand the text to the aligner, render.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use ember_protocol::{
    render, AlignmentModel, AudioRequest, Granularities, RenderOptions, ResponseFormat, Task,
    Transcript,
};

use crate::align::{self, WordTimer};
use crate::error::ApiError;
use crate::longform::TranscribeEvents;
use crate::pipeline::{prepare_options, prepare_upload, transcribe, word_timer};
use crate::routes::audio::require_multipart;
use crate::state::AppState;
use crate::upload::read_upload;

/// The most words one request may align: bounds the work and the response.
pub const MAX_ALIGN_WORDS: usize = 20_000;

pub async fn alignments(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let multipart = require_multipart(multipart)?;
    let deadline = Instant::now() + state.limits.request_timeout;
    let models = state.models()?;
    let upload = read_upload(
        multipart,
        &state.limits.spool_dir,
        state.limits.max_upload_bytes,
    )
    .await?;
    let request = AudioRequest::from_alignment_fields(&upload.fields)?;
    let text = checked_text(request.text.as_deref().unwrap_or_default())?;
    // English unless the client says otherwise: `tdnn_ffn` is an English aligner.
    let language = request.language.clone().unwrap_or_else(|| "en".to_string());
    let timer = word_timer(&request, Some(&language), models)?;
    tracing::info!(
        bytes = upload.size_bytes,
        words = text.split_whitespace().count(),
        aligner = ?timer,
        "alignment request"
    );
    let options = prepare_options(&state, &request)?;
    let prepared = prepare_upload(&state, upload.file.to_path_buf(), options).await?;
    drop(upload);
    let duration_ms = prepared.duration_ms();
    let (words, language) = match (&timer, models.align.as_ref()) {
        (WordTimer::Ctc(name), Some(aligners)) => {
            let regions = prepared.speech.regions.clone();
            let audio = Arc::new(prepared.samples);
            let words =
                align::align_text_with_ctc(aligners, name, audio, &regions, &text, deadline)
                    .await?;
            (words, language)
        }
        _ => {
            // Whisper aligners: transcribe with word times, then map the text onto it.
            let mut heard = request.clone();
            heard.response_format = ResponseFormat::VerboseJson;
            heard.granularities = Granularities::BOTH;
            heard.alignment_model = match timer {
                WordTimer::WhisperTokens => AlignmentModel::WhisperTokens,
                _ => AlignmentModel::Whisper,
            };
            let (transcript, _) = transcribe(
                models,
                &heard,
                prepared,
                deadline,
                TranscribeEvents::default(),
            )
            .await?;
            let language = request
                .language
                .clone()
                .unwrap_or_else(|| transcript.language.clone());
            (align::text_onto_transcript(&text, &transcript), language)
        }
    };
    let transcript = Transcript {
        task: Task::Transcribe,
        language,
        duration_ms,
        text: text.clone(),
        segments: align::sentence_segments(words),
    };
    let rendered = render(
        &transcript,
        &RenderOptions::from_request(&request, state.limits.language_names),
    );
    Ok(([(CONTENT_TYPE, rendered.content_type)], rendered.body).into_response())
}

/// The text with whitespace collapsed; empty or over [`MAX_ALIGN_WORDS`] is a 400.
fn checked_text(text: &str) -> Result<String, ApiError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Err(ApiError::invalid_param(
            "text",
            "`text` is empty: send the transcript to align with the audio",
        ));
    }
    if words.len() > MAX_ALIGN_WORDS {
        return Err(ApiError::invalid_param(
            "text",
            format!(
                "`text` has {} words; at most {MAX_ALIGN_WORDS} can be aligned in one request",
                words.len()
            ),
        ));
    }
    Ok(words.join(" "))
}
