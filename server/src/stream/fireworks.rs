//! `GET /v1/audio/transcriptions/streaming`: the Fireworks streaming dialect
//! (PROTOCOL §3). Binary s16le frames and JSON control frames in; transcription updates
//! with integer segment ids and `is_final` words, and echoed control replies, out.

use std::time::Duration;

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use ember_dsp::PcmAssembler;
use ember_protocol::stream::{
    error_frame, ClientControl, StreamParams, StreamSegment, StreamUpdate, StreamWord,
};
use ember_protocol::{ErrorCode, Granularities};

use super::recognizer::{SegmentView, WordView};
use super::session::{SessionInput, SessionOutput};
use super::socket::{start_session, Inbound, Outbound, SessionParts};
use super::{build_session, query_fields, StreamOptions};
use crate::error::ApiError;
use crate::state::AppState;

/// Upgrades to a Fireworks stream after auth (a layer), model checks and slot admission,
/// so refusals are HTTP errors with the JSON body (PROTOCOL §1.2, §3.6).
pub async fn handler(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return not_a_websocket(rejection),
    };
    let params = StreamParams::from_query(&query_fields(query.as_deref()));
    if !params.ignored.is_empty() {
        tracing::info!(ignored = ?params.ignored, "stream query values ignored");
    }
    let options = StreamOptions {
        model: params.model.clone(),
        language: params.language.clone(),
        prompt: params.prompt.clone(),
        temperature: params.temperature,
        preprocessing: params.preprocessing,
        skip_vad: params.skip_vad,
        vad_threshold: params.vad_threshold,
        endpoint_silence: params.text_timeout_secs.map(Duration::from_secs_f32),
        word_times: params.granularities.word,
    };
    let core = match build_session(&state, &options).await {
        Ok(core) => core,
        Err(error) => return error.into_response(),
    };
    let parts = SessionParts {
        inbound: FireworksInbound::default(),
        outbound: FireworksOutbound {
            granularities: params.granularities,
            last_sent: None,
        },
        core,
        greeting: Vec::new(),
    };
    start_session(upgrade, state, parts)
}

/// A plain GET (no upgrade headers) gets the JSON error body, not axum's text.
pub fn not_a_websocket(rejection: WebSocketUpgradeRejection) -> Response {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("this endpoint is a WebSocket: connect with an upgrade request ({rejection})"),
    )
    .into_response()
}

/// Client frames: PCM with an odd-byte carry, and control messages (PROTOCOL §3.3).
#[derive(Default)]
pub struct FireworksInbound {
    pcm: PcmAssembler,
}

impl Inbound for FireworksInbound {
    fn binary(&mut self, data: &[u8]) -> Result<Vec<SessionInput>, (u16, String)> {
        let samples = self.pcm.push(data);
        Ok(if samples.is_empty() {
            Vec::new()
        } else {
            vec![SessionInput::Audio(samples)]
        })
    }

    fn text(&mut self, text: &str) -> Result<Vec<SessionInput>, (u16, String)> {
        let control = ClientControl::parse(text);
        let input = match &control {
            ClientControl::Unknown { reason } => {
                tracing::debug!(%reason, "ignoring a stream text frame");
                return Ok(Vec::new());
            }
            ClientControl::Clear { .. } => SessionInput::Clear {
                reply: control.reply(),
                committed_too: true,
            },
            ClientControl::Checkpoint { .. } | ClientControl::Trace { .. } => {
                SessionInput::Barrier {
                    flush: control.is_final(),
                    reply: control.reply(),
                }
            }
        };
        Ok(vec![input])
    }
}

/// Server frames: transcription updates per PROTOCOL §3.4, replies as they come.
pub struct FireworksOutbound {
    granularities: Granularities,
    /// The last update sent; an identical one is not repeated.
    last_sent: Option<String>,
}

impl Outbound for FireworksOutbound {
    fn render(&mut self, output: SessionOutput) -> Vec<String> {
        match output {
            SessionOutput::Update {
                language,
                segments,
                flush,
                ..
            } => {
                let segments = segments
                    .iter()
                    .map(|s| self.segment(s, &language))
                    .collect();
                let Some(update) = StreamUpdate::new(&language, segments) else {
                    return Vec::new();
                };
                let json = update.to_json();
                if !flush && self.last_sent.as_deref() == Some(json.as_str()) {
                    return Vec::new();
                }
                self.last_sent = Some(json.clone());
                vec![json]
            }
            SessionOutput::Frame(frame) => vec![frame],
            SessionOutput::Fatal(message) => vec![error_frame(&message)],
        }
    }
}

impl FireworksOutbound {
    fn segment(&self, segment: &SegmentView, language: &str) -> StreamSegment {
        let seconds = |ms: u64| ms as f64 / 1000.0;
        let times = self.granularities.segment;
        StreamSegment {
            id: segment.id,
            seek: segment.start_ms / 10,
            text: segment.text.clone(),
            language: language.to_string(),
            words: segment
                .words
                .iter()
                .map(|w| self.word(w, language, segment.is_final))
                .collect(),
            start: times.then(|| seconds(segment.start_ms)),
            end: times.then(|| seconds(segment.end_ms)),
        }
    }

    fn word(&self, word: &WordView, language: &str, is_final: bool) -> StreamWord {
        let seconds = |ms: u64| ms as f64 / 1000.0;
        let times = self.granularities.word;
        StreamWord {
            word: word.text.clone(),
            language: language.to_string(),
            probability: word.probability,
            hallucination_score: 0.0,
            is_final,
            start: times.then(|| seconds(word.start_ms)),
            end: times.then(|| seconds(word.end_ms)),
        }
    }
}
