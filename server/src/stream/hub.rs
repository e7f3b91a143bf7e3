//! Live-session bookkeeping: stream-slot admission, the settings every session shares,
//! and shutdown. axum's graceful shutdown does not wait for upgraded sockets (DESIGN §1),
//! so sessions are spawned on a [`TaskTracker`] and told to finish through a token.

use std::sync::Arc;
use std::time::Duration;

use ember_protocol::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::ApiError;

/// Stream settings from the CLI (see `config::StreamArgs` for their meaning).
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub max_streams: usize,
    pub idle_timeout: Duration,
    pub ping_interval: Duration,
    pub max_frame_bytes: usize,
    pub endpoint_silence_ms: u32,
    pub hop_ms: u32,
    pub commit_after_ms: u32,
    pub max_utterance_ms: u32,
    pub window_segments: usize,
    pub beam_size: u32,
    pub short_audio_ctx: bool,
    pub audio_ctx_slack_ms: u32,
    pub decode_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            max_streams: 16,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            max_frame_bytes: 1 << 20,
            endpoint_silence_ms: 400,
            hop_ms: 500,
            commit_after_ms: 20_000,
            max_utterance_ms: 28_000,
            window_segments: 100,
            beam_size: 1,
            short_audio_ctx: true,
            audio_ctx_slack_ms: 4_000,
            decode_timeout: Duration::from_secs(60),
        }
    }
}

/// Shared by all sessions through the app state.
#[derive(Clone)]
pub struct StreamHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    config: StreamConfig,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl StreamHub {
    pub fn new(config: StreamConfig) -> Self {
        Self {
            inner: Arc::new(HubInner {
                slots: Arc::new(Semaphore::new(config.max_streams.max(1))),
                config,
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
        }
    }

    pub fn config(&self) -> &StreamConfig {
        &self.inner.config
    }

    /// Takes a stream slot, or 429 before the upgrade when all are in use (PROTOCOL §1.4).
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(ApiError::new(
                ErrorCode::NotReady,
                "the server is shutting down",
            ));
        }
        Arc::clone(&self.inner.slots)
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::Overloaded,
                    format!(
                        "all {} streaming slots are in use; retry later or raise EMBER_MAX_STREAMS",
                        self.inner.config.max_streams
                    ),
                )
            })
    }

    /// Fires when the server shuts down: sessions flush their finals and close with 1001.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Runs a session on the tracker so shutdown can wait for it.
    pub fn spawn<F>(&self, session: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.tracker.spawn(session);
    }

    /// Sessions running now.
    pub fn active(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Tells every session to finish and waits up to `grace` for them.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let open = self.inner.tracker.len();
        if open > 0 {
            tracing::info!(sessions = open, "flushing live sessions before exit");
        }
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                sessions = self.inner.tracker.len(),
                "live sessions did not finish within the shutdown grace period"
            );
        }
    }
}
