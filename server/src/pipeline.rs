//! The audio pipeline shared by the HTTP handlers and the CLI: check what the request
//! asks for, prepare the audio on the blocking pool (decode, preprocess, VAD), run the
//! long-form ASR over the speech, build the transcript.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ember_models::{AsrRequest, CancelToken, VadEngine};
use ember_protocol::{AlignmentModel, AudioRequest, ErrorCode, Transcript};

use crate::error::ApiError;
use crate::longform::{transcribe_speech, LongformJob, TranscribeEvents};
use crate::metrics::{self, Stage, StageTimings};
use crate::prepare::{prepare_path, vad_kind, PrepareOptions, PreparedAudio};
use crate::state::{AppState, Models};
use crate::transcript::{asr_task, to_transcript};

/// Rejects options whose implementation has not landed yet, naming the parameter. The
/// Fireworks SDK's default `alignment_model=tdnn_ffn` always passes: that SDK sends it on
/// every call (PROTOCOL §2.8). VAD models are checked against the installed ones.
pub fn check_supported(request: &AudioRequest, vad: &VadEngine) -> Result<(), ApiError> {
    vad_kind(request.vad_model, vad)?;
    if request.alignment_model != AlignmentModel::TdnnFfn {
        let value = request.alignment_model.as_str();
        let param = AlignmentModel::PARAM;
        return Err(ApiError::invalid_param(
            param,
            format!("`{param}` `{value}` is not available in this version of Ember; available: `tdnn_ffn`"),
        ));
    }
    Ok(())
}

/// Builds the engine request from the wire request and 16 kHz audio.
pub fn asr_request(request: &AudioRequest, audio: Vec<f32>) -> AsrRequest {
    AsrRequest {
        audio: Arc::new(audio),
        task: asr_task(request.task),
        language: request.language.clone(),
        prompt: request.prompt.clone(),
        temperatures: request.temperature.clone().unwrap_or_default(),
        options: Default::default(),
    }
}

/// How a request's audio is prepared.
pub fn prepare_options(
    state: &AppState,
    request: &AudioRequest,
) -> Result<PrepareOptions, ApiError> {
    Ok(PrepareOptions {
        max_duration: state.limits.max_audio,
        preprocessing: request.preprocessing,
        vad: Some(vad_kind(request.vad_model, state.vad()?)?),
        segmenter: None,
    })
}

/// Prepares a spooled upload on the blocking pool, bounded by the decode slots.
pub async fn prepare_upload(
    state: &AppState,
    path: PathBuf,
    options: PrepareOptions,
) -> Result<PreparedAudio, ApiError> {
    let _slot = state
        .decode_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::new(ErrorCode::NotReady, "the server is shutting down"))?;
    let state = state.clone();
    tokio::task::spawn_blocking(move || prepare_path(&path, &options, state.vad()?))
        .await
        .map_err(|e| ApiError::internal(format!("audio preparation failed: {e}")))?
}

/// Cancels the job when the handler's future is dropped (client disconnected or timed out).
pub struct CancelOnDrop(pub CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Runs ASR over the prepared audio's speech and builds the transcript; the timings
/// come back with the ASR stage filled in and are recorded to the metrics.
pub async fn transcribe(
    models: &Models,
    request: &AudioRequest,
    prepared: PreparedAudio,
    deadline: Instant,
    mut events: TranscribeEvents,
) -> Result<(Transcript, StageTimings), ApiError> {
    let duration_ms = prepared.duration_ms();
    let cancel = CancelToken::default();
    let _guard = CancelOnDrop(cancel.clone());
    let job = LongformJob {
        engine: &models.asr,
        model: request.model.as_deref(),
        request: asr_request(request, Vec::new()),
        cancel,
        deadline,
        guard: models.guard.as_ref(),
    };
    let started = Instant::now();
    let output = transcribe_speech(job, &prepared.samples, &prepared.speech, &mut events).await?;
    let mut timings = prepared.timings;
    timings.set(Stage::Asr, started.elapsed());
    timings.record();
    let speech_ms =
        prepared.speech.speech_samples() as u64 * 1000 / u64::from(ember_dsp::SAMPLE_RATE);
    ::metrics::counter!(metrics::AUDIO_MS).increment(duration_ms);
    ::metrics::counter!(metrics::SPEECH_MS).increment(speech_ms);
    Ok((to_transcript(output, request.task, duration_ms), timings))
}
