//! Test servers: each runs the real app with real models on its own runtime thread, so it
//! outlives the per-test tokio runtimes. Started once per configuration (`OnceLock`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use ember_server::auth::ApiKeys;
use ember_server::config::{AsrArgs, WeightType};
use ember_server::stream::{StreamConfig, StreamHub};
use ember_server::{AppState, Limits};

/// The shared test data folder (`../shared/data` beside the repo).
pub fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"))
}

pub fn data(path: &str) -> PathBuf {
    data_dir().join(path)
}

/// One line of `manifest.jsonl`.
#[derive(Debug, Clone)]
pub struct Clip {
    pub audio: String,
    pub lang: Option<String>,
    pub transcript: String,
}

pub fn manifest() -> Vec<Clip> {
    let text = std::fs::read_to_string(data("manifest.jsonl")).expect("read manifest.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("manifest line is JSON");
            Clip {
                audio: v["audio"].as_str().unwrap_or_default().to_string(),
                lang: v["lang"].as_str().map(str::to_string),
                transcript: v["transcript"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("EMBER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(ember_models::provision::models_dir_default)
}

/// How a test server differs from the default one.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub default_model: &'static str,
    pub api_keys: Vec<String>,
    pub max_upload_bytes: u64,
    pub asr_queue: usize,
    pub beam_size: u32,
    /// The hallucination guard (on in production); off to measure what it removes.
    pub hallucination_guard: bool,
    /// Concurrent live streams.
    pub max_streams: usize,
}

impl Default for ServerSpec {
    fn default() -> Self {
        Self {
            default_model: "base",
            api_keys: Vec::new(),
            max_upload_bytes: 1 << 30,
            asr_queue: 16,
            beam_size: 5,
            hallucination_guard: true,
            max_streams: 16,
        }
    }
}

/// A running server's base URL (`http://127.0.0.1:PORT`).
pub struct TestServer {
    pub url: String,
    /// The server's live sessions, so tests can trigger the shutdown flush.
    pub streams: StreamHub,
}

/// Starts a server for `spec` on a dedicated thread and waits until it is healthy.
pub fn start(spec: ServerSpec) -> TestServer {
    let (tx, rx) = std::sync::mpsc::channel::<(SocketAddr, StreamHub)>();
    std::thread::Builder::new()
        .name("test-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let asr = AsrArgs {
                    models_dir: Some(models_dir()),
                    default_model: spec.default_model.to_string(),
                    strict_models: false,
                    weight_type: WeightType::Q8_0,
                    asr_workers: 1,
                    asr_threads: None,
                    asr_queue: spec.asr_queue,
                    beam_size: spec.beam_size,
                    flash_attention: false,
                    hallucination_guard: spec.hallucination_guard,
                    vad_sessions: 2,
                    align_workers: 1,
                    align_queue: 16,
                    workers: Default::default(),
                };
                let limits = Limits {
                    max_upload_bytes: spec.max_upload_bytes,
                    request_timeout: Duration::from_secs(600),
                    max_audio: Duration::from_secs(4 * 3600),
                    language_names: false,
                    spool_dir: std::env::temp_dir(),
                };
                let state = AppState::new(limits, ApiKeys::new(&spec.api_keys), 2)
                    .with_stream_config(StreamConfig {
                        max_streams: spec.max_streams,
                        ..StreamConfig::default()
                    });
                let engine =
                    tokio::task::spawn_blocking(move || ember_server::engine::load_models(&asr))
                        .await
                        .expect("load task")
                        .expect("models load: run `ember models install --set test` first");
                state.set_models(engine);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send((listener.local_addr().expect("addr"), state.streams.clone()))
                    .expect("send addr");
                axum::serve(listener, ember_server::app(state))
                    .await
                    .expect("serve");
            });
        })
        .expect("spawn server thread");
    let (addr, streams) = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("test server did not start");
    TestServer {
        url: format!("http://{addr}"),
        streams,
    }
}

/// The default server (base default, tiny.en available), shared by all tests.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| start(ServerSpec::default()))
}

/// A multipart form with the audio file part and text fields.
pub fn form(path: &std::path::Path, fields: &[(&str, &str)]) -> reqwest::multipart::Form {
    let bytes = std::fs::read(path).expect("read audio");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".into());
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name),
    );
    for (key, value) in fields {
        form = form.text(key.to_string(), value.to_string());
    }
    form
}

/// POSTs a form to `path` and returns (status, headers, body text).
pub async fn post(
    server: &TestServer,
    path: &str,
    form: reqwest::multipart::Form,
) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .multipart(form)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    (status, headers, body)
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
