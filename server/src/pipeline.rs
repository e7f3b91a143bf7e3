//! The audio pipeline shared by the HTTP handlers and the CLI: check what the request
//! asks for, prepare the audio on the blocking pool (decode, preprocess, VAD), run the
//! long-form ASR over the speech, build the transcript.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ember_models::{AsrRequest, CancelToken};
use ember_protocol::{AudioRequest, ErrorCode, Task, Transcript};

use crate::align::{self, WordTimer};
use crate::error::ApiError;
use crate::longform::{transcribe_speech, LongformJob, TranscribeEvents};
use crate::metrics::{self, Stage, StageTimings};
use crate::prepare::{prepare_path, vad_kind, PrepareOptions, PreparedAudio};
use crate::state::{AppState, Models};
use crate::transcript::{asr_task, to_transcript};

/// Rejects a VAD or aligner that is not installed, naming the parameter and the
/// installed ones. The aligner only matters when word times are wanted (the Fireworks
/// SDK sends `alignment_model` on every call, PROTOCOL §2.8).
pub fn check_supported(request: &AudioRequest, models: &Models) -> Result<(), ApiError> {
    vad_kind(request.vad_model, &models.vad)?;
    if align::wants_word_times(request) {
        word_timer(request, request.language.as_deref(), models)?;
    }
    Ok(())
}

/// The aligner for a request once its language is known. A translation's words are
/// English text over foreign audio: only Whisper can time them.
pub fn word_timer(
    request: &AudioRequest,
    language: Option<&str>,
    models: &Models,
) -> Result<WordTimer, ApiError> {
    let timer = align::word_timer(request.alignment_model, language, models.align.as_ref())?;
    Ok(match timer {
        WordTimer::Ctc(_) if request.task == Task::Translate => WordTimer::WhisperDtw,
        other => other,
    })
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
    let english_only = align::english_only(&models.asr, request.model.as_deref());
    let mut asr = asr_request(request, Vec::new());
    asr.options.dtw = request.task == Task::Translate && align::wants_word_times(request)
        || align::decode_needs_dtw(request, models.align.as_ref(), english_only);
    let job = LongformJob {
        engine: &models.asr,
        model: request.model.as_deref(),
        request: asr,
        cancel,
        deadline,
        guard: models.guard.as_ref(),
    };
    let started = Instant::now();
    let audio = Arc::new(prepared.samples);
    let output = transcribe_speech(job, &audio, &prepared.speech, &mut events).await?;
    let mut timings = prepared.timings;
    timings.set(Stage::Asr, started.elapsed());
    let mut transcript = to_transcript(output, request.task, duration_ms);
    if align::wants_word_times(request) {
        let started = Instant::now();
        retime_words(models, request, audio, &mut transcript, deadline).await?;
        timings.set(Stage::Align, started.elapsed());
    }
    timings.record();
    let speech_ms =
        prepared.speech.speech_samples() as u64 * 1000 / u64::from(ember_dsp::SAMPLE_RATE);
    ::metrics::counter!(metrics::AUDIO_MS).increment(duration_ms);
    ::metrics::counter!(metrics::SPEECH_MS).increment(speech_ms);
    Ok((transcript, timings))
}

/// Gives the transcript's words the times of the request's aligner. Whisper-timed
/// words (DTW or tokens) already have them from the decode.
async fn retime_words(
    models: &Models,
    request: &AudioRequest,
    audio: Arc<Vec<f32>>,
    transcript: &mut Transcript,
    deadline: Instant,
) -> Result<(), ApiError> {
    let timer = word_timer(request, Some(&transcript.language), models)?;
    match (timer, models.align.as_ref()) {
        (WordTimer::Ctc(name), Some(aligners)) => {
            align::retime_with_ctc(aligners, &name, audio, transcript, deadline).await
        }
        _ => Ok(()),
    }
}
