//! The browser page: `GET /` and the files under `GET /assets/` (live microphone captions
//! over the streaming WebSocket, file upload with waveform and word highlighting). The
//! files live in `server/assets/` and are compiled in, so the page works offline. No
//! state and no auth: the page itself holds no secrets; the API calls it makes are
//! authenticated like any other client's.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const PCM_WORKLET_JS: &str = include_str!("../../assets/pcm-worklet.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Only same-origin scripts, styles and connections (HTTP and WebSocket); blob: URLs for
/// the uploaded file's playback.
const PAGE_CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; \
                        img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The page's routes; merged into the app outside the API's auth layer.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/pcm-worklet.js", get(pcm_worklet_js))
        .route("/assets/app.css", get(app_css))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    let mut response = asset(HTML, INDEX_HTML);
    response
        .headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    response
}

async fn app_js() -> Response {
    asset(JAVASCRIPT, APP_JS)
}

async fn pcm_worklet_js() -> Response {
    asset(JAVASCRIPT, PCM_WORKLET_JS)
}

async fn app_css() -> Response {
    asset(CSS, APP_CSS)
}
