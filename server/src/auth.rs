//! API-key check for every route but `/health`, accepting every form clients use
//! (PROTOCOL §1.2): `Authorization` with or without `Bearer`, `X-API-Key`, and the
//! `Authorization` / `api_key` query parameters that browsers need.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ember_protocol::ErrorCode;

use crate::error::ApiError;

/// The configured keys; empty means the server is open.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Arc<HashSet<String>>);

impl ApiKeys {
    pub fn new(keys: &[String]) -> Self {
        Self(Arc::new(
            keys.iter()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
        ))
    }

    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    fn accepts(&self, presented: Option<&str>) -> bool {
        self.is_open() || presented.is_some_and(|key| self.0.contains(key))
    }
}

/// The key a request presents, header first, then query.
pub fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = ["authorization", "x-api-key"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok().map(str::to_string));
    let from_query = || {
        query.and_then(|q| {
            q.split('&').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                matches!(name, "Authorization" | "authorization" | "api_key")
                    .then(|| percent_decode(value))
            })
        })
    };
    from_header
        .or_else(from_query)
        .map(|raw| strip_bearer(&raw))
}

fn strip_bearer(raw: &str) -> String {
    let trimmed = raw.trim();
    match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => trimmed[7..].trim().to_string(),
        _ => trimmed.to_string(),
    }
}

/// Minimal `%XX` and `+` decoding for a query value (keys are ASCII).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// Middleware: 401 with the error envelope when keys are configured and none matches.
pub async fn require_key(State(keys): State<ApiKeys>, request: Request, next: Next) -> Response {
    let key = presented_key(request.headers(), request.uri().query());
    if keys.accepts(key.as_deref()) {
        return next.run(request).await;
    }
    let message = if key.is_none() {
        "missing API key: send `Authorization: Bearer <key>`"
    } else {
        "invalid API key"
    };
    drain_body(request).await;
    ApiError::new(ErrorCode::Unauthorized, message).into_response()
}

/// Most of a rejected upload is read and dropped before answering: a client still
/// sending its body when the server closes the connection sees a broken connection
/// instead of the 401. Bodies beyond this bound are cut off.
const DRAIN_LIMIT_BYTES: usize = 32 << 20;

async fn drain_body(request: Request) {
    use http_body_util::BodyExt;
    let mut body = request.into_body();
    let mut drained = 0usize;
    while drained < DRAIN_LIMIT_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn every_documented_form_is_read() {
        let none = HeaderMap::new();
        assert_eq!(
            presented_key(&headers("authorization", "Bearer k1"), None).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(&headers("authorization", "bearer  k1 "), None).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(&headers("authorization", "k1"), None).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(&headers("x-api-key", "k1"), None).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(&none, Some("Authorization=k1")).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(&none, Some("a=b&Authorization=Bearer%20k1")).as_deref(),
            Some("k1")
        );
        assert_eq!(
            presented_key(&none, Some("api_key=k1")).as_deref(),
            Some("k1")
        );
        assert_eq!(presented_key(&none, Some("other=1")), None);
    }

    #[test]
    fn open_server_accepts_anything() {
        assert!(ApiKeys::new(&[]).accepts(None));
        let keys = ApiKeys::new(&["secret".into()]);
        assert!(keys.accepts(Some("secret")));
        assert!(!keys.accepts(Some("wrong")));
        assert!(!keys.accepts(None));
    }

    #[test]
    fn bad_percent_escapes_do_not_panic() {
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
