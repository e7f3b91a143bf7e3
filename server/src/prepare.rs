//! The CPU stages before ASR, run together on the blocking pool: decode (with
//! downmix and resampling), loudness preprocessing, voice activity detection.
//! Each stage is timed for the metrics and for `verbose_json` timings.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use ember_dsp::loudness::{apply_preset, LoudnessPreset};
use ember_dsp::vad::SegmenterConfig;
use ember_dsp::DecodeOptions;
use ember_models::{SpeechMap, VadEngine, VadKind};
use ember_protocol::{Preprocessing, VadModel};

use crate::error::ApiError;
use crate::metrics::{Stage, StageTimings};
use crate::upload::url_not_supported;

/// What the preparation does with an upload.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    pub max_duration: Duration,
    pub preprocessing: Preprocessing,
    /// `None` skips VAD: the whole audio is one region (used when a caller needs every
    /// sample decoded, e.g. alignment of a given text).
    pub vad: Option<VadKind>,
    /// Segmentation settings; `None` = the detector's defaults.
    pub segmenter: Option<SegmenterConfig>,
}

/// Audio ready for the ASR windows.
#[derive(Debug)]
pub struct PreparedAudio {
    /// 16 kHz mono, preprocessed.
    pub samples: Vec<f32>,
    pub speech: SpeechMap,
    pub timings: StageTimings,
}

impl PreparedAudio {
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(ember_dsp::SAMPLE_RATE)
    }
}

/// The loudness preset of a wire `preprocessing` value.
pub fn loudness_preset(preprocessing: Preprocessing) -> LoudnessPreset {
    match preprocessing {
        Preprocessing::None => LoudnessPreset::None,
        Preprocessing::Dynamic => LoudnessPreset::Dynamic,
        Preprocessing::SoftDynamic => LoudnessPreset::SoftDynamic,
        Preprocessing::BassDynamic => LoudnessPreset::BassDynamic,
    }
}

/// The detector of a wire `vad_model` value, if this server has it.
pub fn vad_kind(model: VadModel, engine: &VadEngine) -> Result<VadKind, ApiError> {
    let kind = match model {
        VadModel::Silero => Some(VadKind::Silero),
        VadModel::Webrtc => Some(VadKind::Webrtc),
        VadModel::WhisperxPyannet => None,
    };
    match kind.filter(|k| engine.has(*k)) {
        Some(kind) => Ok(kind),
        None => Err(ApiError::invalid_param(
            VadModel::PARAM,
            format!(
                "`vad_model` `{}` is not installed on this server; installed: {}",
                model.as_str(),
                engine
                    .installed()
                    .iter()
                    .map(|k| format!("`{}`", k.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Decodes, preprocesses and segments a spooled upload (blocking).
pub fn prepare_path(
    path: &Path,
    options: &PrepareOptions,
    vad: &VadEngine,
) -> Result<PreparedAudio, ApiError> {
    reject_url_upload(path)?;
    let mut timings = StageTimings::default();
    let started = Instant::now();
    let decoded = ember_dsp::decode_file_with(
        path,
        &DecodeOptions::with_max_duration(options.max_duration),
    )?;
    timings.set(Stage::Resample, decoded.resample_time);
    timings.set(
        Stage::Decode,
        started.elapsed().saturating_sub(decoded.resample_time),
    );
    prepare_samples(decoded.samples, options, vad, timings)
}

/// Preprocesses and segments decoded 16 kHz samples (blocking).
pub fn prepare_samples(
    mut samples: Vec<f32>,
    options: &PrepareOptions,
    vad: &VadEngine,
    mut timings: StageTimings,
) -> Result<PreparedAudio, ApiError> {
    let started = Instant::now();
    let preset = loudness_preset(options.preprocessing);
    let report = apply_preset(preset, &mut samples, ember_dsp::SAMPLE_RATE);
    timings.set(Stage::Preprocess, started.elapsed());
    if preset != LoudnessPreset::None {
        tracing::debug!(preset = ?preset, report = ?report, "preprocessed audio");
    }
    let started = Instant::now();
    let speech = match options.vad {
        Some(kind) => {
            let config = options
                .segmenter
                .clone()
                .unwrap_or_else(|| kind.segmenter_config());
            vad.detect_with(kind, &samples, &config)?
        }
        None => SpeechMap::whole(samples.len()),
    };
    timings.set(Stage::Vad, started.elapsed());
    tracing::debug!(
        audio_ms = samples.len() as u64 / 16,
        speech_ms = speech.speech_samples() as u64 / 16,
        regions = speech.regions.len(),
        "prepared audio"
    );
    Ok(PreparedAudio {
        samples,
        speech,
        timings,
    })
}

/// A file part holding a URL instead of audio gets its own message (PROTOCOL §2.1.2).
fn reject_url_upload(path: &Path) -> Result<(), ApiError> {
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ApiError::internal(format!("reading the upload failed: {e}")))?;
    if ember_dsp::looks_like_url(&head[..read]) {
        return Err(url_not_supported());
    }
    Ok(())
}
