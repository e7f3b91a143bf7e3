//! `GET /v1/realtime?intent=transcription`: the OpenAI realtime transcription session
//! (PROTOCOL §4) on the same recogniser as the Fireworks stream.
//!
//! Audio arrives as base64 PCM16 in JSON (`input_audio_buffer.append`), at 24 kHz unless
//! the session says otherwise, and is resampled to 16 kHz. Each utterance is one item:
//! server VAD reports `speech_started`/`speech_stopped` and commits it; deltas carry the
//! words as they become stable (append-only, as OpenAI's are) and `completed` carries
//! the final transcript. With `turn_detection: null` the client commits by hand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ember_dsp::{s16le_to_f32, Resampler16k};
use ember_protocol::realtime::{
    RealtimeClientEvent, RealtimeEvents, RealtimeFlavor, SessionUpdate,
};
use serde_json::json;

use super::recognizer::RecognizerEvent;
use super::session::{Reconfigure, SessionInput, SessionOutput};
use super::socket::{close, start_session, Inbound, Outbound, SessionParts};
use super::{build_session, query_fields, StreamOptions};
use crate::state::AppState;

/// The input rate of `pcm16` in OpenAI's API.
const DEFAULT_RATE: u32 = 24_000;

/// State both halves of the dialect read: event ids and the turn-detection mode.
#[derive(Default)]
struct Shared {
    events: Mutex<RealtimeEvents>,
    server_vad: AtomicBool,
}

impl Shared {
    fn with_events<T>(&self, f: impl FnOnce(&mut RealtimeEvents) -> T) -> T {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut events)
    }
}

/// Upgrades after auth, model check and slot admission (errors are HTTP JSON).
pub async fn handler(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return super::fireworks::not_a_websocket(rejection),
    };
    let fields = query_fields(query.as_deref());
    let flavor = if fields.get("intent") == Some("transcription") {
        RealtimeFlavor::Beta
    } else {
        RealtimeFlavor::Ga
    };
    // Speaches' `transcription_model`, Together's `input_audio_format=pcm_s16le_16000`.
    let model = fields
        .get("transcription_model")
        .or_else(|| fields.get("model"))
        .map(str::to_owned);
    let rate = match fields.get("input_audio_format") {
        Some(f) if f.ends_with("16000") => 16_000,
        _ => DEFAULT_RATE,
    };
    let language = fields
        .get("language")
        .and_then(|l| ember_protocol::parse_language(l).ok().flatten());
    let options = StreamOptions {
        model: model.clone(),
        language: language.clone(),
        ..StreamOptions::default()
    };
    let core = match build_session(&state, &options).await {
        Ok(core) => core,
        Err(error) => return error.into_response(),
    };
    let resampler = match Resampler16k::new(rate) {
        Ok(r) => r,
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    let shared = Arc::new(Shared::default());
    shared.server_vad.store(true, Ordering::Relaxed);
    let session = session_object(
        Some(model.as_deref().unwrap_or("whisper-1")),
        language.as_deref(),
        None,
        json!({"type": "server_vad", "threshold": 0.5, "silence_duration_ms": state.streams.config().endpoint_silence_ms}),
    );
    let greeting = vec![shared.with_events(|e| e.session(flavor, true, session))];
    let parts = SessionParts {
        inbound: RealtimeInbound {
            resampler,
            shared: Arc::clone(&shared),
        },
        outbound: RealtimeOutbound {
            shared,
            items: HashMap::new(),
            next_item: 0,
            last_committed: None,
        },
        core,
        greeting,
    };
    start_session(upgrade, state, parts)
}

/// The transcription-session object of the `*.created` / `*.updated` events.
fn session_object(
    model: Option<&str>,
    language: Option<&str>,
    prompt: Option<&str>,
    turn_detection: serde_json::Value,
) -> serde_json::Value {
    json!({
        "object": "realtime.transcription_session",
        "input_audio_format": "pcm16",
        "input_audio_transcription": {
            "model": model,
            "language": language,
            "prompt": prompt.unwrap_or_default(),
        },
        "turn_detection": turn_detection,
    })
}

struct RealtimeInbound {
    resampler: Resampler16k,
    shared: Arc<Shared>,
}

impl RealtimeInbound {
    fn error(&self, code: &str, message: &str, event_id: Option<&str>) -> Vec<SessionInput> {
        let frame = self
            .shared
            .with_events(|e| e.error(code, message, event_id));
        vec![SessionInput::Reply(frame)]
    }

    fn update(
        &mut self,
        flavor: RealtimeFlavor,
        update: SessionUpdate,
        event_id: Option<&str>,
    ) -> Vec<SessionInput> {
        if let Some(format) = update.unsupported_format.as_deref() {
            return self.error(
                "invalid_value",
                &format!("input audio format `{format}` is not supported; send `pcm16` (16-bit little-endian PCM)"),
                event_id,
            );
        }
        if let Some(rate) = update.rate.filter(|r| *r != self.resampler.input_rate()) {
            match Resampler16k::new(rate) {
                Ok(r) => self.resampler = r,
                Err(e) => return self.error("invalid_value", &e.to_string(), event_id),
            }
        }
        let vad = update
            .turn_detection
            .clone()
            .map(|td| td.map(|t| (t.threshold, t.silence_duration_ms)));
        if let Some(mode) = &vad {
            self.shared
                .server_vad
                .store(mode.is_some(), Ordering::Relaxed);
        }
        let turn_detection = match update.turn_detection.clone().flatten() {
            Some(td) => json!({
                "type": "server_vad",
                "threshold": td.threshold,
                "silence_duration_ms": td.silence_duration_ms,
            }),
            None if self.shared.server_vad.load(Ordering::Relaxed) => json!({"type": "server_vad"}),
            None => serde_json::Value::Null,
        };
        let session = session_object(
            update.model.as_deref(),
            update.language.clone().flatten().as_deref(),
            update.prompt.clone().flatten().as_deref(),
            turn_detection,
        );
        let language = update
            .language
            .map(|l| l.and_then(|raw| ember_protocol::parse_language(&raw).ok().flatten()));
        let reply = self
            .shared
            .with_events(|e| e.session(flavor, false, session));
        vec![
            SessionInput::Configure(Reconfigure {
                language,
                prompt: update.prompt,
                vad,
            }),
            SessionInput::Reply(reply),
        ]
    }
}

impl Inbound for RealtimeInbound {
    fn binary(&mut self, _data: &[u8]) -> Result<Vec<SessionInput>, (u16, String)> {
        Ok(self.error(
            "invalid_value",
            "binary frames are not part of the realtime API; send `input_audio_buffer.append` events",
            None,
        ))
    }

    fn text(&mut self, text: &str) -> Result<Vec<SessionInput>, (u16, String)> {
        Ok(match RealtimeClientEvent::parse(text) {
            RealtimeClientEvent::Append { audio, event_id } => {
                match base64::engine::general_purpose::STANDARD.decode(audio.trim()) {
                    Ok(bytes) => {
                        let samples = self.resampler.process(&s16le_to_f32(&bytes));
                        if samples.is_empty() {
                            Vec::new()
                        } else {
                            vec![SessionInput::Audio(samples)]
                        }
                    }
                    Err(e) => self.error(
                        "invalid_value",
                        &format!("`audio` is not valid base64: {e}"),
                        event_id.as_deref(),
                    ),
                }
            }
            RealtimeClientEvent::Commit { .. } => vec![SessionInput::Barrier {
                flush: true,
                reply: None,
            }],
            RealtimeClientEvent::Clear { .. } => {
                let reply = self.shared.with_events(|e| e.cleared());
                vec![SessionInput::Clear {
                    reply: Some(reply),
                    committed_too: false,
                }]
            }
            RealtimeClientEvent::Update {
                flavor,
                update,
                event_id,
            } => self.update(flavor, update, event_id.as_deref()),
            RealtimeClientEvent::Unsupported { kind, event_id } => self.error(
                "unknown_event",
                &format!("`{kind}` is not supported by this transcription-only session"),
                event_id.as_deref(),
            ),
            RealtimeClientEvent::Invalid { reason } => {
                if text.len() > 1 << 16 {
                    return Err((close::TOO_BIG, "unparseable event".into()));
                }
                self.error("invalid_event", &reason, None)
            }
        })
    }
}

/// Per-utterance item state.
struct Item {
    id: String,
    /// Text sent in deltas so far.
    sent: String,
    start_ms: u64,
    end_ms: u64,
}

struct RealtimeOutbound {
    shared: Arc<Shared>,
    items: HashMap<u64, Item>,
    next_item: u64,
    last_committed: Option<String>,
}

impl RealtimeOutbound {
    fn item(&mut self, key: u64) -> &mut Item {
        let next = &mut self.next_item;
        self.items.entry(key).or_insert_with(|| {
            *next += 1;
            Item {
                id: format!("item_{next:06}"),
                sent: String::new(),
                start_ms: 0,
                end_ms: 0,
            }
        })
    }

    /// The part of `text` not yet sent as deltas, when `text` extends what was sent.
    fn delta(&mut self, key: u64, text: &str) -> Option<String> {
        let item = self.item(key);
        let rest = text.strip_prefix(item.sent.as_str())?;
        if rest.trim().is_empty() {
            return None;
        }
        let delta = if item.sent.is_empty() {
            rest.trim_start().to_string()
        } else {
            rest.to_string()
        };
        item.sent = text.to_string();
        let id = item.id.clone();
        Some(self.shared.with_events(|e| e.delta(&id, &delta)))
    }

    fn event(&mut self, event: RecognizerEvent, frames: &mut Vec<String>) {
        let server_vad = self.shared.server_vad.load(Ordering::Relaxed);
        match event {
            RecognizerEvent::SpeechStarted { key, start_ms } => {
                let item = self.item(key);
                item.start_ms = start_ms;
                let id = item.id.clone();
                if server_vad {
                    frames.push(self.shared.with_events(|e| e.speech_started(&id, start_ms)));
                }
            }
            RecognizerEvent::SpeechStopped { key, end_ms } => {
                let item = self.item(key);
                item.end_ms = end_ms;
                let id = item.id.clone();
                if server_vad {
                    frames.push(self.shared.with_events(|e| e.speech_stopped(&id, end_ms)));
                }
                let previous = self.last_committed.replace(id.clone());
                frames.push(
                    self.shared
                        .with_events(|e| e.committed(&id, previous.as_deref())),
                );
            }
            RecognizerEvent::Stable { key, text } => {
                frames.extend(self.delta(key, &text));
            }
            RecognizerEvent::Final { key, text } => {
                frames.extend(self.delta(key, &text));
                // A long utterance commits in parts: each part completes its own item.
                if let Some(item) = self.items.remove(&key) {
                    let seconds = item.end_ms.saturating_sub(item.start_ms) as f64 / 1000.0;
                    frames.push(
                        self.shared
                            .with_events(|e| e.completed(&item.id, text.trim(), seconds)),
                    );
                }
            }
        }
    }
}

impl Outbound for RealtimeOutbound {
    fn render(&mut self, output: SessionOutput) -> Vec<String> {
        let mut frames = Vec::new();
        match output {
            SessionOutput::Update { events, .. } => {
                for event in events {
                    self.event(event, &mut frames);
                }
            }
            SessionOutput::Frame(frame) => frames.push(frame),
            SessionOutput::Fatal(message) => {
                frames.push(
                    self.shared
                        .with_events(|e| e.error("server_error", &message, None)),
                );
            }
        }
        frames
    }
}
