//! The OpenAI realtime transcription session (PROTOCOL §4): client events parsed
//! leniently, server events built in the shapes of `openai-python`'s realtime types.
//!
//! Both the beta (`transcription_session.update`, `intent=transcription`) and the GA
//! (`session.update` with `session.type = "transcription"`) spellings are read; replies
//! use the spelling the client used.

use serde_json::{json, Value};

/// Which generation of the API the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealtimeFlavor {
    /// `transcription_session.*` events (`?intent=transcription`).
    Beta,
    /// `session.*` events with `type: "transcription"`.
    Ga,
}

/// The session settings a client can change; `None` = unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionUpdate {
    /// PCM sample rate of `append` audio (pcm16 is 24 kHz unless told otherwise).
    pub rate: Option<u32>,
    /// A format this server cannot read (`g711_ulaw`, ...), reported as an error.
    pub unsupported_format: Option<String>,
    pub model: Option<String>,
    pub language: Option<Option<String>>,
    pub prompt: Option<Option<String>>,
    /// `Some(None)` = `turn_detection: null` (manual commits).
    pub turn_detection: Option<Option<TurnDetection>>,
}

/// Server VAD settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnDetection {
    pub threshold: Option<f32>,
    pub silence_duration_ms: Option<u32>,
}

/// A client event.
#[derive(Debug, Clone, PartialEq)]
pub enum RealtimeClientEvent {
    Update {
        flavor: RealtimeFlavor,
        update: SessionUpdate,
        event_id: Option<String>,
    },
    /// Base64 PCM16 little-endian mono.
    Append {
        audio: String,
        event_id: Option<String>,
    },
    Commit {
        event_id: Option<String>,
    },
    Clear {
        event_id: Option<String>,
    },
    /// Not an event this server handles: answered with an `error` event.
    Unsupported {
        kind: String,
        event_id: Option<String>,
    },
    /// Not JSON or no `type`.
    Invalid {
        reason: String,
    },
}

impl RealtimeClientEvent {
    pub fn parse(text: &str) -> Self {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return Self::Invalid {
                    reason: format!("not JSON: {e}"),
                }
            }
        };
        let event_id = value
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            return Self::Invalid {
                reason: "the event has no `type`".to_string(),
            };
        };
        let session = value.get("session").cloned().unwrap_or(Value::Null);
        match kind {
            "transcription_session.update" => Self::Update {
                flavor: RealtimeFlavor::Beta,
                update: beta_update(&session),
                event_id,
            },
            "session.update" => Self::Update {
                flavor: RealtimeFlavor::Ga,
                update: ga_update(&session),
                event_id,
            },
            "input_audio_buffer.append" => Self::Append {
                audio: value
                    .get("audio")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                event_id,
            },
            "input_audio_buffer.commit" => Self::Commit { event_id },
            "input_audio_buffer.clear" => Self::Clear { event_id },
            other => Self::Unsupported {
                kind: other.to_string(),
                event_id,
            },
        }
    }
}

fn transcription_fields(t: &Value, update: &mut SessionUpdate) {
    if !t.is_object() {
        return;
    }
    update.model = t.get("model").and_then(Value::as_str).map(str::to_owned);
    update.language = Some(
        t.get("language")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
    );
    update.prompt = Some(
        t.get("prompt")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    );
}

fn turn_detection(value: Option<&Value>) -> Option<Option<TurnDetection>> {
    match value {
        None => None,
        Some(Value::Null) => Some(None),
        Some(td) => Some(Some(TurnDetection {
            threshold: td
                .get("threshold")
                .and_then(Value::as_f64)
                .map(|t| t as f32),
            silence_duration_ms: td
                .get("silence_duration_ms")
                .and_then(Value::as_u64)
                .map(|ms| ms.min(10_000) as u32),
        })),
    }
}

fn beta_update(session: &Value) -> SessionUpdate {
    let mut update = SessionUpdate::default();
    match session.get("input_audio_format").and_then(Value::as_str) {
        Some("pcm16") | None => {}
        Some(other) => update.unsupported_format = Some(other.to_string()),
    }
    if let Some(t) = session.get("input_audio_transcription") {
        transcription_fields(t, &mut update);
    }
    update.turn_detection = turn_detection(session.get("turn_detection"));
    update
}

fn ga_update(session: &Value) -> SessionUpdate {
    let mut update = SessionUpdate::default();
    let input = session
        .pointer("/audio/input")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(format) = input.get("format") {
        match format.get("type").and_then(Value::as_str) {
            Some("audio/pcm") | None => {
                update.rate = format.get("rate").and_then(Value::as_u64).map(|r| r as u32);
            }
            Some(other) => update.unsupported_format = Some(other.to_string()),
        }
    }
    if let Some(t) = input.get("transcription") {
        transcription_fields(t, &mut update);
    }
    update.turn_detection = turn_detection(input.get("turn_detection"));
    update
}

/// Builds server events with increasing `event_id`s.
#[derive(Debug, Default)]
pub struct RealtimeEvents {
    next: u64,
}

impl RealtimeEvents {
    fn event(&mut self, kind: &str, mut body: Value) -> String {
        self.next += 1;
        if let Some(map) = body.as_object_mut() {
            map.insert("type".into(), kind.into());
            map.insert("event_id".into(), format!("event_{}", self.next).into());
        }
        body.to_string()
    }

    /// `transcription_session.created|updated` or `session.created|updated`.
    pub fn session(&mut self, flavor: RealtimeFlavor, created: bool, session: Value) -> String {
        let kind = match (flavor, created) {
            (RealtimeFlavor::Beta, true) => "transcription_session.created",
            (RealtimeFlavor::Beta, false) => "transcription_session.updated",
            (RealtimeFlavor::Ga, true) => "session.created",
            (RealtimeFlavor::Ga, false) => "session.updated",
        };
        self.event(kind, json!({ "session": session }))
    }

    pub fn speech_started(&mut self, item_id: &str, audio_start_ms: u64) -> String {
        self.event(
            "input_audio_buffer.speech_started",
            json!({ "audio_start_ms": audio_start_ms, "item_id": item_id }),
        )
    }

    pub fn speech_stopped(&mut self, item_id: &str, audio_end_ms: u64) -> String {
        self.event(
            "input_audio_buffer.speech_stopped",
            json!({ "audio_end_ms": audio_end_ms, "item_id": item_id }),
        )
    }

    pub fn committed(&mut self, item_id: &str, previous_item_id: Option<&str>) -> String {
        self.event(
            "input_audio_buffer.committed",
            json!({ "item_id": item_id, "previous_item_id": previous_item_id }),
        )
    }

    pub fn cleared(&mut self) -> String {
        self.event("input_audio_buffer.cleared", json!({}))
    }

    pub fn delta(&mut self, item_id: &str, delta: &str) -> String {
        self.event(
            "conversation.item.input_audio_transcription.delta",
            json!({ "item_id": item_id, "content_index": 0, "delta": delta }),
        )
    }

    pub fn completed(&mut self, item_id: &str, transcript: &str, audio_seconds: f64) -> String {
        self.event(
            "conversation.item.input_audio_transcription.completed",
            json!({
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "usage": { "type": "duration", "seconds": audio_seconds },
            }),
        )
    }

    /// An `error` event; the session stays open (PROTOCOL §4).
    pub fn error(&mut self, code: &str, message: &str, client_event_id: Option<&str>) -> String {
        self.event(
            "error",
            json!({
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": null,
                    "event_id": client_event_id,
                }
            }),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn beta_and_ga_updates_are_read() {
        let beta = RealtimeClientEvent::parse(
            r#"{"type":"transcription_session.update","session":{"input_audio_format":"pcm16",
            "input_audio_transcription":{"model":"whisper-1","language":"en","prompt":""},
            "turn_detection":null}}"#,
        );
        let RealtimeClientEvent::Update { flavor, update, .. } = beta else {
            panic!("{beta:?}")
        };
        assert_eq!(flavor, RealtimeFlavor::Beta);
        assert_eq!(update.language, Some(Some("en".into())));
        assert_eq!(update.prompt, Some(None));
        assert_eq!(update.turn_detection, Some(None));
        let ga = RealtimeClientEvent::parse(
            r#"{"type":"session.update","session":{"type":"transcription","audio":{"input":{
            "format":{"type":"audio/pcm","rate":16000},"turn_detection":{"type":"server_vad",
            "threshold":0.4,"silence_duration_ms":300}}}}}"#,
        );
        let RealtimeClientEvent::Update { flavor, update, .. } = ga else {
            panic!("{ga:?}")
        };
        assert_eq!(flavor, RealtimeFlavor::Ga);
        assert_eq!(update.rate, Some(16_000));
        let td = update.turn_detection.unwrap().unwrap();
        assert_eq!(td.silence_duration_ms, Some(300));
        let ulaw = RealtimeClientEvent::parse(
            r#"{"type":"transcription_session.update","session":{"input_audio_format":"g711_ulaw"}}"#,
        );
        assert!(
            matches!(ulaw, RealtimeClientEvent::Update { update, .. } if update.unsupported_format.as_deref() == Some("g711_ulaw"))
        );
    }

    #[test]
    fn audio_events_and_garbage() {
        assert!(matches!(
            RealtimeClientEvent::parse(r#"{"type":"input_audio_buffer.append","audio":"AAA="}"#),
            RealtimeClientEvent::Append { audio, .. } if audio == "AAA="
        ));
        assert!(matches!(
            RealtimeClientEvent::parse(r#"{"type":"input_audio_buffer.commit","event_id":"c1"}"#),
            RealtimeClientEvent::Commit { event_id: Some(id) } if id == "c1"
        ));
        assert!(matches!(
            RealtimeClientEvent::parse(r#"{"type":"response.create"}"#),
            RealtimeClientEvent::Unsupported { .. }
        ));
        assert!(matches!(
            RealtimeClientEvent::parse("nope"),
            RealtimeClientEvent::Invalid { .. }
        ));
    }

    #[test]
    fn server_events_carry_type_and_ids() {
        let mut events = RealtimeEvents::default();
        let v: Value = serde_json::from_str(&events.completed("item_1", "hi", 1.5)).unwrap();
        assert_eq!(
            v["type"],
            "conversation.item.input_audio_transcription.completed"
        );
        assert_eq!(v["event_id"], "event_1");
        assert_eq!(v["transcript"], "hi");
        let v: Value = serde_json::from_str(&events.committed("item_2", Some("item_1"))).unwrap();
        assert_eq!(v["previous_item_id"], "item_1");
        assert_eq!(v["event_id"], "event_2");
    }
}
