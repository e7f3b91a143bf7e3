//! The error-code table and the JSON error envelope both SDKs understand.
//!
//! One table `code -> (status, type, retryable)` (DESIGN §4) and one body shape
//! `{"error":{"object","type","message","param","code"}}` (PROTOCOL §1.3): the Fireworks
//! SDK models `object`/`type`/`message`, the OpenAI SDK reads `code`/`param`/`type`/`message`.
//! This module knows status numbers but not HTTP types; the server maps them.

use serde_json::{json, Value};

/// Every failure the server reports, with its fixed HTTP status, error type and retry advice.
///
/// Keeping the mapping in one table means handlers pick a meaning, never a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A bad, missing or unsupported parameter (400).
    InvalidRequest,
    /// Audio that is empty, corrupt or in a container we cannot decode (400, PROTOCOL §1.3).
    UnsupportedAudio,
    /// Missing or unknown API key (401, PROTOCOL §1.2).
    Unauthorized,
    /// A key without the right to this route (403).
    Forbidden,
    /// Unknown route, or unknown model in strict mode (404, PROTOCOL §1.1, §2.1.8).
    NotFound,
    /// Wrong HTTP method on a known route (405, Fireworks lists it, PROTOCOL §1.1).
    MethodNotAllowed,
    /// Processing passed its deadline (408; retryable).
    Timeout,
    /// Body or file over the configured limit (413, PROTOCOL §1.5).
    PayloadTooLarge,
    /// Over the concurrency or rate limit (429; retryable, send `retry-after`, PROTOCOL §1.4).
    Overloaded,
    /// A bug or an unexpected failure inside the server (500).
    Internal,
    /// A model is still loading (503; retryable, send `retry-after`, PROTOCOL §1.4).
    NotReady,
    /// An upstream fetch (e.g. a `file` URL) timed out (504).
    GatewayTimeout,
}

impl ErrorCode {
    /// Every code, for tables, docs and exhaustive tests.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidRequest,
        ErrorCode::UnsupportedAudio,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Timeout,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Overloaded,
        ErrorCode::Internal,
        ErrorCode::NotReady,
        ErrorCode::GatewayTimeout,
    ];

    /// The HTTP status this code is sent with (PROTOCOL §1.3 "Status use").
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::UnsupportedAudio => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Timeout => 408,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Overloaded => 429,
            ErrorCode::Internal => 500,
            ErrorCode::NotReady => 503,
            ErrorCode::GatewayTimeout => 504,
        }
    }

    /// The envelope's `type`: `invalid_request_error` for 4xx and `internal_server_error`
    /// for 5xx, the two values the Fireworks SDK builds itself (PROTOCOL §1.3).
    pub const fn error_type(self) -> &'static str {
        if self.status() >= 500 {
            "internal_server_error"
        } else {
            "invalid_request_error"
        }
    }

    /// Whether a client may retry the same request unchanged; the server turns `false`
    /// on a 5xx into `x-should-retry: false` so the OpenAI SDK does not re-upload
    /// (PROTOCOL §1.4).
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Timeout | ErrorCode::Overloaded | ErrorCode::NotReady
        )
    }

    /// The machine-readable `code` string of the envelope, snake_case.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedAudio => "unsupported_audio",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::GatewayTimeout => "gateway_timeout",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected form field: which parameter, and a message naming it, the value received
/// and what is allowed (DESIGN §4). Becomes a 400 with `param` set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The wire name of the offending field, e.g. `timestamp_granularities`.
    pub param: String,
    /// Human-readable explanation shown to the caller.
    pub message: String,
}

impl FieldError {
    /// A field error for `param` with a message that should name it in backticks.
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// The content of one error response, independent of transport (HTTP body, SSE event,
/// WebSocket refusal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ErrorBody {
    /// Human-readable explanation shown to the caller.
    pub message: String,
    /// The offending request field, when one is to blame; `null` on the wire otherwise.
    pub param: Option<String>,
    /// The table entry giving status, type and retry advice.
    pub code: ErrorCode,
}

impl ErrorBody {
    /// An error with no `param`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: None,
            code,
        }
    }

    /// Blames a request field, so the OpenAI SDK can show `param`.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The HTTP status of [`ErrorBody::code`].
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The envelope `{"error":{"object":"error","type","message","param","code"}}`
    /// accepted by both SDKs (PROTOCOL §1.3); `param` is `null` when absent.
    pub fn to_json(&self) -> Value {
        json!({
            "error": {
                "object": "error",
                "type": self.code.error_type(),
                "message": self.message,
                "param": self.param,
                "code": self.code.as_str(),
            }
        })
    }
}

impl From<FieldError> for ErrorBody {
    fn from(err: FieldError) -> Self {
        ErrorBody::new(ErrorCode::InvalidRequest, err.message).with_param(err.param)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let table: Vec<(ErrorCode, u16, &str, bool, &str)> = ErrorCode::ALL
            .iter()
            .map(|&c| (c, c.status(), c.error_type(), c.retryable(), c.as_str()))
            .collect();
        let inv = "invalid_request_error";
        let int = "internal_server_error";
        assert_eq!(
            table,
            vec![
                (
                    ErrorCode::InvalidRequest,
                    400,
                    inv,
                    false,
                    "invalid_request"
                ),
                (
                    ErrorCode::UnsupportedAudio,
                    400,
                    inv,
                    false,
                    "unsupported_audio"
                ),
                (ErrorCode::Unauthorized, 401, inv, false, "unauthorized"),
                (ErrorCode::Forbidden, 403, inv, false, "forbidden"),
                (ErrorCode::NotFound, 404, inv, false, "not_found"),
                (
                    ErrorCode::MethodNotAllowed,
                    405,
                    inv,
                    false,
                    "method_not_allowed"
                ),
                (ErrorCode::Timeout, 408, inv, true, "timeout"),
                (
                    ErrorCode::PayloadTooLarge,
                    413,
                    inv,
                    false,
                    "payload_too_large"
                ),
                (ErrorCode::Overloaded, 429, inv, true, "overloaded"),
                (ErrorCode::Internal, 500, int, false, "internal"),
                (ErrorCode::NotReady, 503, int, true, "not_ready"),
                (
                    ErrorCode::GatewayTimeout,
                    504,
                    int,
                    false,
                    "gateway_timeout"
                ),
            ]
        );
    }

    #[test]
    fn envelope_shape_with_param() {
        let body: ErrorBody = FieldError::new("language", "`language` is bad").into();
        assert_eq!(body.status(), 400);
        assert_eq!(
            body.to_json(),
            json!({"error": {
                "object": "error",
                "type": "invalid_request_error",
                "message": "`language` is bad",
                "param": "language",
                "code": "invalid_request",
            }})
        );
    }

    #[test]
    fn envelope_shape_without_param_has_null() {
        let v = ErrorBody::new(ErrorCode::NotReady, "loading").to_json();
        let inner = v["error"].as_object().unwrap();
        assert_eq!(inner.len(), 5);
        assert!(inner["param"].is_null());
        assert_eq!(inner["type"], "internal_server_error");
        assert_eq!(inner["code"], "not_ready");
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    #[test]
    fn field_error_displays_its_message() {
        let err = FieldError::new("stream", "`stream` must be a boolean");
        assert_eq!(err.to_string(), "`stream` must be a boolean");
    }
}
