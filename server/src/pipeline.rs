//! The audio pipeline shared by the HTTP handlers and the CLI: check what the request
//! asks for, decode on the blocking pool, queue the ASR job, build the transcript.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_dsp::{DecodeOptions, DecodedAudio};
use ember_models::{AsrEngine, AsrHooks, AsrRequest, CancelToken};
use ember_protocol::{
    AlignmentModel, AudioRequest, ErrorCode, Preprocessing, ResponseFormat, Transcript, VadModel,
};

use crate::error::ApiError;
use crate::state::AppState;
use crate::transcript::{asr_task, to_transcript};
use crate::upload::url_not_supported;

/// Rejects options whose implementation has not landed yet, naming the parameter. The
/// Fireworks SDK's defaults (`vad_model=silero`, `alignment_model=tdnn_ffn`,
/// `preprocessing=none`) always pass: that SDK sends them on every call (PROTOCOL §2.8).
pub fn check_supported(request: &AudioRequest) -> Result<(), ApiError> {
    let checks = [
        (
            Preprocessing::PARAM,
            request.preprocessing.as_str(),
            request.preprocessing == Preprocessing::None,
            "none",
        ),
        (
            VadModel::PARAM,
            request.vad_model.as_str(),
            request.vad_model == VadModel::Silero,
            "silero",
        ),
        (
            AlignmentModel::PARAM,
            request.alignment_model.as_str(),
            request.alignment_model == AlignmentModel::TdnnFfn,
            "tdnn_ffn",
        ),
    ];
    match checks.into_iter().find(|(_, _, available, _)| !available) {
        Some((param, value, _, available)) => Err(ApiError::invalid_param(
            param,
            format!("`{param}` `{value}` is not available in this version of Ember; available: `{available}`"),
        )),
        None => Ok(()),
    }
}

/// Builds the engine request from the wire request and decoded audio.
pub fn asr_request(request: &AudioRequest, audio: Vec<f32>) -> AsrRequest {
    AsrRequest {
        audio: Arc::new(audio),
        task: asr_task(request.task),
        language: request.language.clone(),
        prompt: request.prompt.clone(),
        temperatures: request.temperature.clone().unwrap_or_default(),
        word_timestamps: request.response_format == ResponseFormat::VerboseJson
            && request.granularities.word,
    }
}

/// Decodes a spooled upload on the blocking pool, bounded by the decode slots.
pub async fn decode_upload(state: &AppState, path: PathBuf) -> Result<DecodedAudio, ApiError> {
    let _slot = state
        .decode_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::new(ErrorCode::NotReady, "the server is shutting down"))?;
    let max_duration = state.limits.max_audio;
    tokio::task::spawn_blocking(move || decode_path(&path, max_duration))
        .await
        .map_err(|e| ApiError::internal(format!("decode task failed: {e}")))?
}

/// Synchronous decode with the URL-in-file check (PROTOCOL §2.1.2).
pub fn decode_path(path: &Path, max_duration: Duration) -> Result<DecodedAudio, ApiError> {
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ApiError::internal(format!("reading the upload failed: {e}")))?;
    if ember_dsp::looks_like_url(&head[..read]) {
        return Err(url_not_supported());
    }
    let options = DecodeOptions {
        max_duration: Some(max_duration),
    };
    let started = Instant::now();
    let decoded = ember_dsp::decode_file_with(path, &options)?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        audio_ms = decoded.duration_ms(),
        "decoded upload"
    );
    Ok(decoded)
}

/// Cancels the job when the handler's future is dropped (client disconnected or timed out).
pub struct CancelOnDrop(pub CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Queues the ASR job and waits for it; the transcript carries the audio duration.
pub async fn transcribe(
    engine: &AsrEngine,
    request: &AudioRequest,
    decoded: DecodedAudio,
    deadline: Instant,
    hooks: AsrHooks,
) -> Result<Transcript, ApiError> {
    let duration_ms = decoded.duration_ms();
    let cancel = CancelToken::default();
    let guard = CancelOnDrop(cancel.clone());
    let receiver = engine.submit(
        request.model.as_deref(),
        asr_request(request, decoded.samples),
        cancel,
        deadline,
        hooks,
    )?;
    let output = receiver
        .await
        .map_err(|_| ApiError::internal("the ASR worker failed while processing this request"))??;
    drop(guard);
    Ok(to_transcript(output, request.task, duration_ms))
}
