//! Prometheus metrics: the process-wide recorder, the metric names, and `GET /metrics`.
//!
//! Names follow DESIGN §4 (`ember_<area>_<what>_<unit>`) with bounded labels only: the
//! pipeline stage, the guard's drop reason, the VAD model. Histograms are rendered as
//! buckets so dashboards can compute quantiles across instances.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Seconds spent in one pipeline stage of one request, labelled `stage`.
pub const STAGE_SECONDS: &str = "ember_pipeline_stage_seconds";
/// Audio milliseconds transcribed by the batch endpoints.
pub const AUDIO_MS: &str = "ember_pipeline_audio_milliseconds_total";
/// Audio milliseconds the VAD called speech (what reached the decoder).
pub const SPEECH_MS: &str = "ember_pipeline_speech_milliseconds_total";
/// Segments the hallucination guard removed, labelled `reason`.
pub const GUARD_DROPPED: &str = "ember_guard_dropped_segments_total";
/// Jobs waiting in the ASR queue (sampled at scrape time).
pub const ASR_QUEUED: &str = "ember_asr_queue_jobs";
/// ASR jobs running on a worker (sampled at scrape time).
pub const ASR_RUNNING: &str = "ember_asr_running_jobs";

/// Live sessions open now (both dialects).
pub const STREAM_SESSIONS: &str = "ember_stream_sessions";
/// Seconds from the arrival of a decode's last sample to its result: how far a live
/// stream's transcript trails the speaker.
pub const STREAM_LAG_SECONDS: &str = "ember_stream_lag_seconds";
/// Seconds per live decode, labelled `kind` (`partial` or `final`).
pub const STREAM_DECODE_SECONDS: &str = "ember_stream_decode_seconds";
/// Partial hypotheses skipped because the previous decode was still running, no ASR
/// worker was free, or the lane was full (finals are never skipped).
pub const STREAM_PARTIALS_SKIPPED: &str = "ember_stream_partials_skipped_total";

/// Pipeline stages timed per request (also the keys of the `timings` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Decode,
    Resample,
    Preprocess,
    Vad,
    Asr,
    Align,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Decode,
        Stage::Resample,
        Stage::Preprocess,
        Stage::Vad,
        Stage::Asr,
        Stage::Align,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Resample => "resample",
            Stage::Preprocess => "preprocess",
            Stage::Vad => "vad",
            Stage::Asr => "asr",
            Stage::Align => "align",
        }
    }
}

/// Bucket bounds in seconds: 1 ms to 10 min, roughly ×2.5 apart.
const STAGE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0,
    150.0, 600.0,
];

/// Installs the global recorder once per process (tests start many servers in one
/// process) and returns the handle that renders the scrape body.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(STAGE_SECONDS.to_string()), STAGE_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Prefix("ember_stream_".to_string()),
                        STAGE_BUCKETS,
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_histogram!(
        STAGE_SECONDS,
        metrics::Unit::Seconds,
        "Time spent per request in each pipeline stage"
    );
    metrics::describe_counter!(
        AUDIO_MS,
        metrics::Unit::Milliseconds,
        "Audio transcribed by the batch endpoints"
    );
    metrics::describe_counter!(
        SPEECH_MS,
        metrics::Unit::Milliseconds,
        "Audio the VAD classified as speech"
    );
    metrics::describe_counter!(GUARD_DROPPED, "Segments removed by the hallucination guard");
    metrics::describe_gauge!(ASR_QUEUED, "ASR jobs waiting for a worker");
    metrics::describe_gauge!(ASR_RUNNING, "ASR jobs running on a worker");
    metrics::describe_gauge!(STREAM_SESSIONS, "Live streaming sessions open");
    metrics::describe_histogram!(
        STREAM_LAG_SECONDS,
        metrics::Unit::Seconds,
        "Delay from a live decode's last audio sample arriving to its result"
    );
    metrics::describe_histogram!(
        STREAM_DECODE_SECONDS,
        metrics::Unit::Seconds,
        "Duration of live decodes by kind"
    );
    metrics::describe_counter!(
        STREAM_PARTIALS_SKIPPED,
        "Partial hypotheses skipped because decoding fell behind"
    );
}

/// Records one stage's duration.
pub fn record_stage(stage: Stage, elapsed: Duration) {
    metrics::histogram!(STAGE_SECONDS, "stage" => stage.as_str()).record(elapsed.as_secs_f64());
}

/// `GET /metrics`: the Prometheus text format.
pub async fn scrape(State(state): State<AppState>) -> Response {
    if let Ok(engine) = state.engine() {
        let stats = engine.stats();
        metrics::gauge!(ASR_QUEUED).set(stats.queued() as f64);
        metrics::gauge!(ASR_RUNNING).set(stats.running() as f64);
    }
    let body = state.metrics.render();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// One request's time per stage: recorded to the histograms, and returned in
/// `verbose_json` when the client asks with the [`TIMINGS_HEADER`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings([Duration; Stage::ALL.len()]);

/// Request header that adds a `timings` object (seconds per stage) to `verbose_json`.
/// Off by default: the strict Fireworks SDK models must see only the fields they know.
pub const TIMINGS_HEADER: &str = "x-ember-timings";

impl StageTimings {
    pub fn set(&mut self, stage: Stage, elapsed: Duration) {
        self.0[stage as usize] = elapsed;
    }

    pub fn get(&self, stage: Stage) -> Duration {
        self.0[stage as usize]
    }

    /// Records every stage to [`STAGE_SECONDS`].
    pub fn record(&self) {
        for stage in Stage::ALL {
            record_stage(stage, self.get(stage));
        }
    }

    /// `{"decode": 0.012, ...}` in seconds.
    pub fn to_json(&self) -> serde_json::Value {
        Stage::ALL
            .iter()
            .map(|&stage| {
                let secs = (self.get(stage).as_secs_f64() * 1e6).round() / 1e6;
                (stage.as_str().to_string(), serde_json::json!(secs))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}
