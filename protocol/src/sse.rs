//! Server-sent events for OpenAI `stream=true` transcriptions (PROTOCOL §2.5).
//!
//! Each event is one `data: <json>\n\n` block with no `event:` line, and the stream ends
//! after the `done` event with no `[DONE]` sentinel, as in OpenAI's own example. An error
//! after the headers is a data object with an `error` key, which makes the SDK raise.

use serde::Serialize;

use crate::error::ErrorBody;

/// Content type of an SSE response (PROTOCOL §2.5).
pub const CONTENT_TYPE_SSE: &str = "text/event-stream";

#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: &'a str,
}

#[derive(Serialize)]
struct DoneEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

/// Frames one JSON payload as an SSE event.
fn frame(json: &str) -> String {
    format!("data: {json}\n\n")
}

/// Serialises an event struct of plain strings, which serde_json cannot fail on.
fn to_json_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("SSE events hold only JSON-safe values")
}

/// A `transcript.text.delta` event carrying the next piece of text. `logprobs` is left
/// out: it is optional and only sent for `include[]=logprobs` (PROTOCOL §2.5).
pub fn delta_event(delta: &str) -> String {
    frame(&to_json_string(&DeltaEvent {
        kind: "transcript.text.delta",
        delta,
    }))
}

/// The closing `transcript.text.done` event with the full text. `usage` is optional in
/// the SDK's model and left out, as there are no billed tokens (PROTOCOL §2.5).
pub fn done_event(text: &str) -> String {
    frame(&to_json_string(&DoneEvent {
        kind: "transcript.text.done",
        text,
    }))
}

/// An error after the `200` headers were sent: `data: {"error":{...}}`, the same
/// envelope as an HTTP error body (PROTOCOL §1.3, §2.5).
pub fn error_event(body: &ErrorBody) -> String {
    frame(&body.to_json().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::{json, Value};

    fn payload(event: &str) -> Value {
        let json = event
            .strip_prefix("data: ")
            .and_then(|e| e.strip_suffix("\n\n"))
            .unwrap();
        assert!(!json.contains('\n'), "one line per event: {event:?}");
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn delta_event_shape() {
        let e = delta_event(" see \"you\"\n");
        assert_eq!(
            payload(&e),
            json!({"type": "transcript.text.delta", "delta": " see \"you\"\n"})
        );
    }

    #[test]
    fn done_event_shape() {
        let e = done_event("I see skies of blue");
        assert_eq!(
            e,
            "data: {\"type\":\"transcript.text.done\",\"text\":\"I see skies of blue\"}\n\n"
        );
    }

    #[test]
    fn error_event_shape() {
        let body = ErrorBody::new(ErrorCode::Internal, "decoder crashed");
        let v = payload(&error_event(&body));
        assert_eq!(v["error"]["message"], "decoder crashed");
        assert_eq!(v["error"]["type"], "internal_server_error");
        assert_eq!(v["error"]["code"], "internal");
        assert_eq!(v, body.to_json());
    }
}
