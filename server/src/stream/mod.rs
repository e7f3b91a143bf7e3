//! Live transcription over WebSockets: the Fireworks streaming protocol (PROTOCOL §3) and
//! the OpenAI realtime transcription session (PROTOCOL §4), both on one recogniser.
//!
//! - [`endpoint`]: incremental VAD endpointing.
//! - [`recognizer`]: utterances, partial/final decodes, stable words, segment window.
//! - [`session`]: the processing loop shared by the dialects (barriers, decodes, metrics).
//! - [`socket`]: receive/process/send loops on an upgraded socket.
//! - [`hub`]: stream slots and shutdown.
//! - [`fireworks`], [`realtime`]: the two wire dialects and their handlers.

pub mod endpoint;
pub mod fireworks;
pub mod hub;
pub mod realtime;
pub mod recognizer;
pub mod session;
pub mod socket;

use std::time::Duration;

use ember_dsp::SAMPLE_RATE;
use ember_models::{AsrRequest, AsrTask};
use ember_protocol::{FormFields, Preprocessing};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;
use crate::prepare::loudness_preset;
use crate::state::AppState;
use endpoint::{EndpointConfig, Endpointer};
use recognizer::{Recognizer, RecognizerConfig};
use session::DecodeSettings;

pub use hub::{StreamConfig, StreamHub};

/// What a dialect asks of the recogniser, from its query or session configuration.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    pub model: Option<String>,
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub temperature: Option<f32>,
    pub preprocessing: Preprocessing,
    /// No endpointing: everything is one utterance until a flush (or a long commit).
    pub skip_vad: bool,
    pub vad_threshold: Option<f32>,
    /// Silence that ends an utterance; `None` = the server's default.
    pub endpoint_silence: Option<Duration>,
    /// Word times are sent: finals are re-timed by the English CTC aligner when the
    /// utterance is English (Whisper token times otherwise).
    pub word_times: bool,
}

/// The dialect-independent half of a new session.
pub struct SessionCore {
    pub recognizer: Recognizer,
    pub endpointer: Endpointer,
    pub settings: DecodeSettings,
    /// The stream slot, held until the session ends.
    pub permit: OwnedSemaphorePermit,
}

/// The recogniser, endpointer, decode settings and stream slot of a new session. Checks
/// the model and language, then takes a slot, so a bad request or a full server is
/// refused before the upgrade (PROTOCOL §1.2, §3.6).
pub async fn build_session(
    state: &AppState,
    options: &StreamOptions,
) -> Result<SessionCore, ApiError> {
    let models = state.models()?;
    let probe = AsrRequest {
        audio: Default::default(),
        task: AsrTask::Transcribe,
        language: options.language.clone(),
        prompt: None,
        temperatures: Vec::new(),
        options: Default::default(),
    };
    let model_id = models.asr.check(options.model.as_deref(), &probe)?;
    let config = state.streams.config().clone();
    let silence_ms = options
        .endpoint_silence
        .map_or(config.endpoint_silence_ms, |d| d.as_millis() as u32);
    let endpoint_config =
        EndpointConfig::for_stream(options.vad_threshold, silence_ms, config.max_utterance_ms);
    let detector = if options.skip_vad {
        None
    } else {
        let state = state.clone();
        let made =
            tokio::task::spawn_blocking(move || state.models().map(|m| m.vad.stream_detector()))
                .await
                .map_err(|e| ApiError::internal(format!("creating the voice detector: {e}")))??;
        Some(made.map_err(ApiError::from)?.1)
    };
    let recognizer = Recognizer::new(
        RecognizerConfig {
            hop_samples: ms_to_samples(config.hop_ms),
            commit_after_samples: ms_to_samples(config.commit_after_ms),
            window_segments: config.window_segments,
            prompt_chars: 200,
            initial_prompt: options.prompt.clone(),
            language: options.language.clone(),
        },
        models.guard.clone(),
    );
    let settings = DecodeSettings {
        model: Some(model_id),
        task: AsrTask::Transcribe,
        temperature: options.temperature,
        preprocessing: loudness_preset(options.preprocessing),
        beam_size: config.beam_size,
        audio_ctx_slack_frames: config
            .short_audio_ctx
            .then_some(config.audio_ctx_slack_ms / 20),
        decode_timeout: config.decode_timeout,
        word_aligner: word_aligner(options, models),
    };
    Ok(SessionCore {
        recognizer,
        endpointer: Endpointer::new(detector, endpoint_config),
        settings,
        permit: state.streams.admit()?,
    })
}

/// The CTC aligner that re-times final words, when word times are asked for. Streams
/// have no `alignment_model` parameter (PROTOCOL §3.2): the English default applies.
fn word_aligner(options: &StreamOptions, models: &crate::state::Models) -> Option<String> {
    if !options.word_times {
        return None;
    }
    match crate::align::word_timer(
        ember_protocol::AlignmentModel::TdnnFfn,
        options.language.as_deref(),
        models.align.as_ref(),
    ) {
        Ok(crate::align::WordTimer::Ctc(name)) => Some(name),
        _ => None,
    }
}

/// Query string pairs, percent-decoded.
pub fn query_fields(query: Option<&str>) -> FormFields {
    FormFields::from_pairs(
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned())),
    )
}

fn ms_to_samples(ms: u32) -> usize {
    (u64::from(ms) * u64::from(SAMPLE_RATE) / 1000) as usize
}
