//! Shared application state: the ASR engine (set once loading finishes, so `/health`
//! can say 503 until then), limits, and the decode slots.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ember_models::AsrEngine;
use ember_protocol::ErrorCode;
use tokio::sync::Semaphore;

use crate::auth::ApiKeys;
use crate::config::ServeArgs;
use crate::error::ApiError;

/// Limits and switches handlers need, copied out of the CLI config.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub request_timeout: Duration,
    pub max_audio: Duration,
    pub language_names: bool,
    pub spool_dir: PathBuf,
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
    engine: Arc<OnceLock<AsrEngine>>,
    pub limits: Arc<Limits>,
    pub keys: ApiKeys,
    /// Bounds concurrent decodes on the blocking pool.
    pub decode_slots: Arc<Semaphore>,
}

impl AppState {
    pub fn new(limits: Limits, keys: ApiKeys, decode_concurrency: usize) -> Self {
        Self {
            engine: Arc::new(OnceLock::new()),
            limits: Arc::new(limits),
            keys,
            decode_slots: Arc::new(Semaphore::new(decode_concurrency.max(1))),
        }
    }

    /// Installs the loaded engine; the server turns healthy.
    pub fn set_engine(&self, engine: AsrEngine) {
        if self.engine.set(engine).is_err() {
            tracing::warn!("ASR engine was already set");
        }
    }

    /// The engine, or 503 while models are still loading.
    pub fn engine(&self) -> Result<&AsrEngine, ApiError> {
        self.engine
            .get()
            .ok_or_else(|| ApiError::new(ErrorCode::NotReady, "models are still loading"))
    }
}
