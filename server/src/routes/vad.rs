//! `POST /v1/audio/vad` (an Ember extension): the speech regions of an upload, as the
//! transcription pipeline would see them. For debugging VAD settings and for clients
//! that only need to know where people talk.
//!
//! Fields: `file`, `vad_model` (`silero` default, `webrtc`), `preprocessing`, and optional
//! segmentation overrides `threshold`, `neg_threshold`, `min_speech_duration_ms`,
//! `min_silence_duration_ms`, `speech_pad_ms`, `max_speech_duration_s` (Silero's names).

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::Json;
use ember_dsp::vad::SegmenterConfig;
use ember_dsp::SAMPLE_RATE;
use ember_protocol::{FormFields, Preprocessing, VadModel};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::pipeline::prepare_upload;
use crate::prepare::{vad_kind, PrepareOptions};
use crate::routes::audio::require_multipart;
use crate::state::AppState;
use crate::upload::read_upload;

pub async fn speech_regions(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let multipart = require_multipart(multipart)?;
    let vad = state.vad()?;
    let upload = read_upload(
        multipart,
        &state.limits.spool_dir,
        state.limits.max_upload_bytes,
    )
    .await?;
    let fields = &upload.fields;
    let vad_model: VadModel = parse_or_default(fields, VadModel::PARAM)?;
    let kind = vad_kind(vad_model, vad)?;
    let segmenter = segmenter_overrides(fields, kind.segmenter_config())?;
    let options = PrepareOptions {
        max_duration: state.limits.max_audio,
        preprocessing: parse_or_default(fields, Preprocessing::PARAM)?,
        vad: Some(kind),
        segmenter: Some(segmenter),
    };
    let prepared = prepare_upload(&state, upload.file.to_path_buf(), options).await?;
    drop(upload);
    let seconds =
        |samples: usize| (samples as f64 * 1000.0 / f64::from(SAMPLE_RATE)).round() / 1000.0;
    let segments: Vec<Value> = prepared
        .speech
        .regions
        .iter()
        .map(|r| json!({"start": seconds(r.start), "end": seconds(r.end)}))
        .collect();
    Ok(Json(json!({
        "object": "vad",
        "vad_model": kind.as_str(),
        "duration": seconds(prepared.samples.len()),
        "speech_duration": seconds(prepared.speech.speech_samples()),
        "segments": segments,
    })))
}

fn parse_or_default<T>(fields: &FormFields, name: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr<Err = ember_protocol::FieldError> + Default,
{
    Ok(fields
        .get(name)
        .map(str::parse)
        .transpose()?
        .unwrap_or_default())
}

/// Applies the optional Silero-style overrides, each range-checked.
fn segmenter_overrides(
    fields: &FormFields,
    mut config: SegmenterConfig,
) -> Result<SegmenterConfig, ApiError> {
    let number = |name: &str, min: f32, max: f32| -> Result<Option<f32>, ApiError> {
        match fields.get(name) {
            None => Ok(None),
            Some(raw) => match raw.trim().parse::<f32>() {
                Ok(v) if v.is_finite() && (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(ApiError::invalid_param(
                    name,
                    format!(
                        "`{name}` must be a number between {min} and {max}; got `{}`",
                        raw.trim()
                    ),
                )),
            },
        }
    };
    if let Some(v) = number("threshold", 0.0, 1.0)? {
        config.threshold = v;
        config.neg_threshold = config.neg_threshold.min(v);
    }
    if let Some(v) = number("neg_threshold", 0.0, 1.0)? {
        config.neg_threshold = v.min(config.threshold);
    }
    if let Some(v) = number("min_speech_duration_ms", 0.0, 60_000.0)? {
        config.min_speech_ms = v as u32;
    }
    if let Some(v) = number("min_silence_duration_ms", 0.0, 60_000.0)? {
        config.min_silence_ms = v as u32;
    }
    if let Some(v) = number("speech_pad_ms", 0.0, 5_000.0)? {
        config.speech_pad_ms = v as u32;
    }
    if let Some(v) = number("max_speech_duration_s", 1.0, 30.0)? {
        config.max_speech_ms = (v * 1000.0) as u32;
    }
    Ok(config)
}
