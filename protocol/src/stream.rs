//! The Fireworks realtime streaming protocol (PROTOCOL §3): query parameters, client
//! control frames and the server's messages.
//!
//! Everything here is lenient on input — a stream is never refused for an odd parameter
//! or an unknown control frame (PROTOCOL §3.6) — and exact on output: the message shapes
//! are the ones the real clients of PROTOCOL §3.8 parse.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::form::FormFields;
use crate::language::parse_language;
use crate::request::{Granularities, Preprocessing};

/// The range LiveKit documents for `text_timeout_seconds` is 1–29 s (PROTOCOL §3.2); we
/// accept shorter values down to this, for clients that want faster finals.
pub const MIN_TEXT_TIMEOUT_SECS: f32 = 0.1;
/// Upper end of `text_timeout_seconds` (PROTOCOL §3.2).
pub const MAX_TEXT_TIMEOUT_SECS: f32 = 29.0;

/// A stream's settings, parsed from the upgrade request's query (PROTOCOL §3.2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamParams {
    /// Model name as sent; the server maps aliases. `None` = default.
    pub model: Option<String>,
    /// ISO code without region (`en-US` → `en`); `None` = detect.
    pub language: Option<String>,
    /// Decoder prompt for the first utterance.
    pub prompt: Option<String>,
    /// Decoding temperature; `None` = the server's schedule.
    pub temperature: Option<f32>,
    /// Which times to send; both off unless asked (PROTOCOL §3.2 default null).
    pub granularities: Granularities,
    /// Treat all audio as speech (no VAD endpointing).
    pub skip_vad: bool,
    /// Silero `threshold` from `vad_kwargs`, when it was sent as JSON.
    pub vad_threshold: Option<f32>,
    /// Silence before words become final; `None` = the server's default.
    pub text_timeout_secs: Option<f32>,
    /// Loudness preset applied to each decoded window.
    pub preprocessing: Preprocessing,
    /// Values that were ignored, with the reason, for the session log.
    pub ignored: Vec<String>,
}

impl StreamParams {
    /// Parses the query; never fails: unparseable values are listed in `ignored` and
    /// left at their defaults (PROTOCOL §3.6 "ignore or coerce; never refuse").
    pub fn from_query(fields: &FormFields) -> Self {
        let mut ignored = Vec::new();
        let mut note = |what: String| ignored.push(what);
        let language = fields.get("language").and_then(|raw| {
            // `en-US` → `en`: Whisper knows languages, not regions (PROTOCOL §3.2).
            let base = raw.split(['-', '_']).next().unwrap_or(raw);
            match parse_language(base) {
                Ok(code) => code,
                Err(e) => {
                    note(e.message);
                    None
                }
            }
        });
        let temperature = fields
            .get("temperature")
            .and_then(|raw| match raw.parse::<f32>() {
                Ok(t) if (0.0..=1.0).contains(&t) => Some(t),
                _ => {
                    note(format!("`temperature` `{raw}` is not a number in 0..=1"));
                    None
                }
            });
        let mut granularities = Granularities {
            word: false,
            segment: false,
        };
        for value in fields.list(Granularities::PARAM) {
            match value.as_str() {
                "word" => granularities.word = true,
                "segment" => granularities.segment = true,
                other => note(format!(
                    "`timestamp_granularities` value `{other}` is unknown"
                )),
            }
        }
        let skip_vad = fields.bool("skip_vad").unwrap_or_else(|e| {
            note(e.message);
            None
        });
        let vad_threshold = fields.get("vad_kwargs").and_then(|raw| {
            let threshold = serde_json::from_str::<Value>(raw)
                .ok()
                .and_then(|v| v.get("threshold").and_then(Value::as_f64))
                .map(|t| t as f32)
                .filter(|t| (0.0..=1.0).contains(t));
            if threshold.is_none() {
                // LiveKit sends only the dict's keys (`vad_kwargs=threshold`, PROTOCOL §3.2).
                note(format!(
                    "`vad_kwargs` `{raw}` has no JSON `threshold` in 0..=1"
                ));
            }
            threshold
        });
        let text_timeout_secs =
            fields
                .get("text_timeout_seconds")
                .and_then(|raw| match raw.parse::<f32>() {
                    Ok(t) if t.is_finite() => {
                        Some(t.clamp(MIN_TEXT_TIMEOUT_SECS, MAX_TEXT_TIMEOUT_SECS))
                    }
                    _ => {
                        note(format!("`text_timeout_seconds` `{raw}` is not a number"));
                        None
                    }
                });
        let preprocessing = fields
            .get(Preprocessing::PARAM)
            .and_then(|raw| match raw.parse::<Preprocessing>() {
                Ok(p) => Some(p),
                Err(e) => {
                    note(e.message);
                    None
                }
            })
            .unwrap_or_default();
        Self {
            model: fields.get("model").map(str::to_owned),
            language,
            prompt: fields.get("prompt").map(str::to_owned),
            temperature,
            granularities,
            skip_vad: skip_vad.unwrap_or(false),
            vad_threshold,
            text_timeout_secs,
            preprocessing,
            ignored,
        }
    }
}

/// Which key names a control frame used, so the reply mirrors them (PROTOCOL §3.4 d).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlSpelling {
    /// `object` + `reset_id` (documented).
    Object,
    /// `type` + `context_id` (the 2026 summary).
    Type,
}

/// A JSON text frame from the client, classified per PROTOCOL §3.3.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientControl {
    /// `{"checkpoint_id": ...}`; `"final"` ends the input.
    Checkpoint { id: String },
    /// `stt.input.trace`; `trace_id == "final"` ends the input.
    Trace {
        event_id: Option<String>,
        trace_id: String,
    },
    /// `stt.state.clear`: forget the context.
    Clear {
        event_id: Option<String>,
        reset_id: Option<String>,
        spelling: ControlSpelling,
    },
    /// Anything else: logged and ignored.
    Unknown { reason: String },
}

/// The id that means "end of input, flush everything" (PROTOCOL §3.5).
pub const FINAL_ID: &str = "final";

impl ClientControl {
    /// Classifies a text frame; never fails.
    pub fn parse(text: &str) -> Self {
        let unknown = |reason: String| ClientControl::Unknown { reason };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return unknown(format!("not JSON: {e}")),
        };
        let Some(object) = value.as_object() else {
            return unknown("not a JSON object".to_string());
        };
        if let Some(id) = object.get("checkpoint_id") {
            return ClientControl::Checkpoint { id: id_string(id) };
        }
        let event_id = object.get("event_id").map(id_string);
        let (kind, spelling) = match (object.get("object"), object.get("type")) {
            (Some(Value::String(k)), _) => (k.as_str(), ControlSpelling::Object),
            (_, Some(Value::String(k))) => (k.as_str(), ControlSpelling::Type),
            _ => return unknown("no `checkpoint_id`, `object` or `type`".to_string()),
        };
        match kind {
            "stt.input.trace" => ClientControl::Trace {
                event_id,
                trace_id: object.get("trace_id").map(id_string).unwrap_or_default(),
            },
            "stt.state.clear" => ClientControl::Clear {
                event_id,
                reset_id: object
                    .get("reset_id")
                    .or_else(|| object.get("context_id"))
                    .map(id_string),
                spelling,
            },
            other => unknown(format!("unknown control `{other}`")),
        }
    }

    /// Whether this control ends the input and asks for a full flush.
    pub fn is_final(&self) -> bool {
        match self {
            ClientControl::Checkpoint { id } => id == FINAL_ID,
            ClientControl::Trace { trace_id, .. } => trace_id == FINAL_ID,
            _ => false,
        }
    }

    /// The reply frame, echoing the client's ids in its own dialect (PROTOCOL §3.4 b–d);
    /// `None` for unknown frames.
    pub fn reply(&self) -> Option<String> {
        let mut reply = Map::new();
        match self {
            ClientControl::Checkpoint { id } => {
                reply.insert("checkpoint_id".into(), Value::String(id.clone()));
            }
            ClientControl::Trace { event_id, trace_id } => {
                insert_opt(&mut reply, "event_id", event_id);
                reply.insert("object".into(), "stt.output.trace".into());
                reply.insert("trace_id".into(), Value::String(trace_id.clone()));
            }
            ClientControl::Clear {
                event_id,
                reset_id,
                spelling,
            } => {
                insert_opt(&mut reply, "event_id", event_id);
                reply.insert("object".into(), "stt.state.cleared".into());
                insert_opt(&mut reply, "reset_id", reset_id);
                if *spelling == ControlSpelling::Type {
                    reply.insert("type".into(), "stt.state.cleared".into());
                    insert_opt(&mut reply, "context_id", reset_id);
                }
            }
            ClientControl::Unknown { .. } => return None,
        }
        Some(Value::Object(reply).to_string())
    }
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), Value::String(v.clone()));
    }
}

/// Ids are strings on the wire, but clients send numbers too (`time.time()` traces).
fn id_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The fatal-error frame sent before closing (PROTOCOL §3.4 e): `error` is a string
/// because the Rust client ignores anything else.
pub fn error_frame(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// A word of a stream update (PROTOCOL §3.4): no leading space; times only when asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamWord {
    pub word: String,
    pub language: String,
    pub probability: f32,
    pub hallucination_score: f32,
    pub is_final: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
}

/// A segment of a stream update: integer id, stable for the session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamSegment {
    pub id: u64,
    pub seek: u64,
    pub text: String,
    pub language: String,
    pub words: Vec<StreamWord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
}

/// A transcription update: the current window of segments, ascending, never empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamUpdate {
    pub task: &'static str,
    pub language: String,
    /// The segment texts joined with one space (PROTOCOL §3.4 rule 2).
    pub text: String,
    /// The segments' words, flattened.
    pub words: Vec<StreamWord>,
    pub segments: Vec<StreamSegment>,
}

impl StreamUpdate {
    /// Builds an update from segments in ascending id order; `None` when there are none,
    /// because an update without segments breaks the cookbook client (PROTOCOL §3.4 rule 5).
    pub fn new(language: &str, segments: Vec<StreamSegment>) -> Option<Self> {
        if segments.is_empty() {
            return None;
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let words = segments.iter().flat_map(|s| s.words.clone()).collect();
        Some(Self {
            task: "transcribe",
            language: language.to_string(),
            text,
            words,
            segments,
        })
    }

    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> StreamParams {
        StreamParams::from_query(&FormFields::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn livekit_query_parses_without_refusal() {
        let p = query(&[
            ("model", "whisper-v3"),
            ("language", "en-US"),
            ("temperature", "0.0"),
            ("skip_vad", "False"),
            ("vad_kwargs", "threshold"),
            ("text_timeout_seconds", "1.0"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities", "word"),
            ("timestamp_granularities", "segment"),
        ]);
        assert_eq!(p.language.as_deref(), Some("en"));
        assert_eq!(p.temperature, Some(0.0));
        assert!(!p.skip_vad);
        assert_eq!(p.vad_threshold, None);
        assert_eq!(p.text_timeout_secs, Some(1.0));
        assert!(p.granularities.word && p.granularities.segment);
        assert_eq!(p.ignored.len(), 1, "{:?}", p.ignored);
    }

    #[test]
    fn comma_granularities_json_vad_kwargs_and_bad_values() {
        let p = query(&[
            ("timestamp_granularities", "word,segment"),
            ("vad_kwargs", r#"{"threshold":0.15}"#),
            ("temperature", "hot"),
            ("skip_vad", "maybe"),
            ("text_timeout_seconds", "100"),
        ]);
        assert!(p.granularities.word && p.granularities.segment);
        assert_eq!(p.vad_threshold, Some(0.15));
        assert_eq!(p.temperature, None);
        assert!(!p.skip_vad);
        assert_eq!(p.text_timeout_secs, Some(MAX_TEXT_TIMEOUT_SECS));
        assert_eq!(p.ignored.len(), 2);
        let none = query(&[]);
        assert!(!none.granularities.word && !none.granularities.segment);
    }

    #[test]
    fn control_frames_are_classified_and_echoed_in_their_dialect() {
        let c = ClientControl::parse(r#"{"checkpoint_id":"final"}"#);
        assert!(c.is_final());
        assert_eq!(c.reply().unwrap(), r#"{"checkpoint_id":"final"}"#);
        let t = ClientControl::parse(
            r#"{"event_id":"e1","object":"stt.input.trace","trace_id":1700000000.5}"#,
        );
        assert!(!t.is_final());
        let reply: Value = serde_json::from_str(&t.reply().unwrap()).unwrap();
        assert_eq!(reply["object"], "stt.output.trace");
        assert_eq!(reply["event_id"], "e1");
        assert_eq!(reply["trace_id"], "1700000000.5");
        let clear =
            ClientControl::parse(r#"{"event_id":"e","type":"stt.state.clear","context_id":"c"}"#);
        let reply: Value = serde_json::from_str(&clear.reply().unwrap()).unwrap();
        assert_eq!(reply["object"], "stt.state.cleared");
        assert_eq!(reply["reset_id"], "c");
        assert_eq!(reply["context_id"], "c");
        for bad in ["hello", "[1]", r#"{"object":"stt.other"}"#, "{}"] {
            assert!(matches!(
                ClientControl::parse(bad),
                ClientControl::Unknown { .. }
            ));
        }
    }

    #[test]
    fn updates_join_text_and_omit_unasked_times() {
        let word = StreamWord {
            word: "Hello".into(),
            language: "en".into(),
            probability: 0.9,
            hallucination_score: 0.0,
            is_final: true,
            start: None,
            end: None,
        };
        let seg = |id, text: &str| StreamSegment {
            id,
            seek: 0,
            text: text.into(),
            language: "en".into(),
            words: vec![word.clone()],
            start: None,
            end: None,
        };
        assert!(StreamUpdate::new("en", vec![]).is_none());
        let update = StreamUpdate::new("en", vec![seg(0, "Hello"), seg(1, "there")]).unwrap();
        let json: Value = serde_json::from_str(&update.to_json()).unwrap();
        assert_eq!(json["text"], "Hello there");
        assert_eq!(json["task"], "transcribe");
        assert_eq!(json["segments"][1]["id"], 1);
        assert!(json["segments"][0].get("start").is_none());
        assert!(json["words"][0].get("end").is_none());
        assert_eq!(json["words"].as_array().unwrap().len(), 2);
    }
}
