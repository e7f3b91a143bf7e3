//! Shared application state: the loaded models (set once loading finishes, so `/health`
//! can say 503 until then), limits, the decode slots and the metrics handle.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ember_models::classify::ClassifyEngine;
use ember_models::embed::EmbedEngine;
use ember_models::llm::LlmEngine;
use ember_models::{AlignEngine, AsrEngine, GuardConfig, VadEngine};
use ember_protocol::ErrorCode;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use crate::auth::ApiKeys;
use crate::config::ServeArgs;
use crate::error::ApiError;
use crate::stream::{StreamConfig, StreamHub};

/// Limits and switches handlers need, copied out of the CLI config.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub request_timeout: Duration,
    pub max_audio: Duration,
    pub language_names: bool,
    pub spool_dir: PathBuf,
}

/// The inference engines, loaded together in the background.
pub struct Models {
    pub asr: AsrEngine,
    pub vad: VadEngine,
    /// The hallucination guard's thresholds; `None` when the operator turned it off.
    pub guard: Option<GuardConfig>,
    /// CTC forced aligners; `None` when none is installed (or ONNX Runtime is missing):
    /// words are then timed by Whisper DTW.
    pub align: Option<AlignEngine>,
    /// Sentence embeddings; `None` when not installed.
    pub embed: Option<EmbedEngine>,
    /// Image classifiers; `None` when none is installed.
    pub classify: Option<ClassifyEngine>,
    /// The chat model; `None` when not installed.
    pub llm: Option<LlmEngine>,
}

impl Limits {
    pub fn from_args(args: &ServeArgs) -> Self {
        Self {
            max_upload_bytes: args.max_upload_bytes,
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            max_audio: Duration::from_secs(args.max_audio_secs.max(1)),
            language_names: args.language_names,
            spool_dir: crate::upload::spool_dir(args.spool_dir.as_ref()),
        }
    }
}

/// Everything a handler can reach.
#[derive(Clone)]
pub struct AppState {
    models: Arc<OnceLock<Models>>,
    pub limits: Arc<Limits>,
    pub keys: ApiKeys,
    /// Bounds concurrent decodes on the blocking pool.
    pub decode_slots: Arc<Semaphore>,
    /// Renders `GET /metrics`.
    pub metrics: PrometheusHandle,
    /// Live stream slots, settings and shutdown.
    pub streams: StreamHub,
}

impl AppState {
    pub fn new(limits: Limits, keys: ApiKeys, decode_concurrency: usize) -> Self {
        Self {
            models: Arc::new(OnceLock::new()),
            limits: Arc::new(limits),
            keys,
            decode_slots: Arc::new(Semaphore::new(decode_concurrency.max(1))),
            metrics: crate::metrics::install(),
            streams: StreamHub::new(StreamConfig::default()),
        }
    }

    /// Replaces the stream settings (before serving).
    pub fn with_stream_config(mut self, config: StreamConfig) -> Self {
        self.streams = StreamHub::new(config);
        self
    }

    /// Installs the loaded models; the server turns healthy.
    pub fn set_models(&self, models: Models) {
        if self.models.set(models).is_err() {
            tracing::warn!("models were already set");
        }
    }

    /// The loaded models, or 503 while they are still loading.
    pub fn models(&self) -> Result<&Models, ApiError> {
        self.models
            .get()
            .ok_or_else(|| ApiError::new(ErrorCode::NotReady, "models are still loading"))
    }

    /// The ASR engine, or 503 while models are still loading.
    pub fn engine(&self) -> Result<&AsrEngine, ApiError> {
        self.models().map(|m| &m.asr)
    }

    /// The VAD engine, or 503 while models are still loading.
    pub fn vad(&self) -> Result<&VadEngine, ApiError> {
        self.models().map(|m| &m.vad)
    }
}
