//! Whisper ASR through whisper-rs: loaded contexts, worker threads that own their
//! `WhisperState`s, and the job type callers submit.
//!
//! Each worker keeps one state per model (created on first use) because
//! `WhisperState::full` takes `&mut self`. Jobs carry a cancel token and a deadline that
//! whisper.cpp's abort callback polls between graph steps, so a client that disconnects
//! stops its decode, and queued jobs of gone clients are skipped (DESIGN §1 data flow).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::oneshot;
use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, SegmentCallbackData,
    WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::error::ModelError;
use crate::pool::{PoolStats, Priority, WorkerPool};
use crate::registry::{ModelRegistry, WhisperModelSpec};
use crate::words::{group_words, AsrWord, TimedToken};

/// Transcribe in the spoken language, or translate into English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsrTask {
    Transcribe,
    Translate,
}

/// Decoding knobs set once per server (CLI flags / env).
#[derive(Debug, Clone)]
pub struct AsrConfig {
    /// Worker threads, each with its own states.
    pub workers: usize,
    /// ggml threads per worker; workers × threads must not exceed the cores (DESIGN §3).
    pub threads_per_worker: usize,
    /// Jobs that may wait in the queue before submissions get 429.
    pub queue_capacity: usize,
    /// 1 = greedy; > 1 = beam search of this width.
    pub beam_size: u32,
    /// whisper.cpp flash attention (slower encoder on AVX-512 CPUs, DESIGN §3).
    pub flash_attention: bool,
}

impl Default for AsrConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            threads_per_worker: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue_capacity: 16,
            beam_size: 5,
            flash_attention: false,
        }
    }
}

/// What to decode and how.
#[derive(Debug, Clone)]
pub struct AsrRequest {
    /// 16 kHz mono samples.
    pub audio: Arc<Vec<f32>>,
    pub task: AsrTask,
    /// ISO code; `None` auto-detects.
    pub language: Option<String>,
    /// Previous text / vocabulary to prime the decoder.
    pub prompt: Option<String>,
    /// Fallback temperatures in order; empty means the default schedule.
    pub temperatures: Vec<f32>,
    /// Per-job overrides of the engine's decoding settings.
    pub options: DecodeOptions,
}

/// Per-job decoding overrides; the defaults are the engine's batch settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The queue lane: live-stream jobs overtake batch jobs.
    pub priority: Priority,
    /// Beam width instead of the engine's (1 = greedy).
    pub beam_size: Option<u32>,
    /// Encoder context in 20 ms frames (whisper.cpp `audio_ctx`; 1500 = 30 s). A short
    /// utterance encoded with a matching short context costs a fraction of a full
    /// window; `None` = full context.
    pub audio_ctx: Option<u32>,
    /// Never retry at higher temperatures (a partial hypothesis is not worth the time).
    pub no_fallback: bool,
    /// Decode the audio in one pass as one segment (live utterances are < 30 s): no
    /// second seek over the tail, which re-decodes and repeats text on short inputs.
    pub single_segment: bool,
    /// Time words by cross-attention DTW over the model's alignment heads instead of
    /// the timestamp tokens (one extra decoder pass per window; the `whisper` aligner).
    pub dtw: bool,
}

/// Full encoder context of Whisper: 30 s in 20 ms frames.
pub const FULL_AUDIO_CTX: u32 = 1500;

/// The encoder context that covers `samples` of 16 kHz audio plus `slack_frames`
/// (rounded up to 64 frames), capped at the full window.
pub fn audio_ctx_for(samples: usize, slack_frames: u32) -> u32 {
    let frames = (samples as u64).div_ceil(320) as u32 + slack_frames;
    (frames.div_ceil(64) * 64).min(FULL_AUDIO_CTX)
}

/// One decoded segment with times in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct AsrSegment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub tokens: Vec<u32>,
    pub avg_logprob: f32,
    pub compression_ratio: f32,
    pub no_speech_prob: f32,
    pub temperature: f32,
    pub words: Vec<AsrWord>,
}

/// The result of one job.
#[derive(Debug, Clone)]
pub struct AsrOutput {
    /// The ISO code used or detected.
    pub language: String,
    /// The model id that ran.
    pub model: String,
    pub segments: Vec<AsrSegment>,
}

/// Lets the party that submitted a job cancel it; workers poll it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Optional callbacks run on the worker thread while decoding.
#[derive(Default)]
pub struct AsrHooks {
    /// Each new segment's text as soon as whisper.cpp emits it (OpenAI `stream=true`).
    pub on_segment: Option<Box<dyn FnMut(String) + Send>>,
    /// Progress in percent (CLI progress bar).
    pub on_progress: Option<Box<dyn FnMut(i32) + Send>>,
}

/// A queued unit of work.
struct AsrJob {
    model: Arc<LoadedModel>,
    request: AsrRequest,
    cancel: CancelToken,
    deadline: Instant,
    hooks: AsrHooks,
    span: tracing::Span,
    reply: oneshot::Sender<Result<AsrOutput, ModelError>>,
}

/// A loaded ggml model.
struct LoadedModel {
    spec: WhisperModelSpec,
    context: WhisperContext,
    /// The same weights with DTW token timing on, loaded on first use: whisper.cpp
    /// makes DTW a context setting, and it holds back segment callbacks until the
    /// window is timed, so the plain context stays DTW-free.
    dtw_context: OnceLock<Result<WhisperContext, String>>,
}

impl LoadedModel {
    fn context_for(&self, dtw: bool) -> Result<&WhisperContext, ModelError> {
        if !dtw {
            return Ok(&self.context);
        }
        self.dtw_context
            .get_or_init(|| load_context(&self.spec, false, Some(dtw_preset(&self.spec.id))))
            .as_ref()
            .map_err(|e| ModelError::Inference(format!("loading the DTW context: {e}")))
    }
}

/// Opens a ggml file; `dtw` turns on DTW token timing with those alignment heads.
fn load_context(
    spec: &WhisperModelSpec,
    flash_attention: bool,
    dtw: Option<DtwMode<'static>>,
) -> Result<WhisperContext, String> {
    let mut params = WhisperContextParameters::default();
    params.flash_attn(flash_attention && dtw.is_none());
    if let Some(mode) = dtw {
        params.dtw_parameters(DtwParameters {
            mode,
            ..DtwParameters::default()
        });
    }
    WhisperContext::new_with_params(&spec.path, params).map_err(|e| e.to_string())
}

/// The alignment heads whisper.cpp ships for the official model sizes, picked by the
/// model id (`base`, `tiny.en`, an operator's `large-v3-turbo`, …); other models use
/// every head of their top two text layers.
fn dtw_preset(id: &str) -> DtwMode<'static> {
    let id = id.to_ascii_lowercase();
    let base = id
        .strip_suffix("-q8_0")
        .or_else(|| id.strip_suffix("-q5_1"))
        .unwrap_or(&id);
    let preset = match base {
        "tiny.en" => DtwModelPreset::TinyEn,
        "tiny" => DtwModelPreset::Tiny,
        "base.en" => DtwModelPreset::BaseEn,
        "base" => DtwModelPreset::Base,
        "small.en" => DtwModelPreset::SmallEn,
        "small" => DtwModelPreset::Small,
        "medium.en" => DtwModelPreset::MediumEn,
        "medium" => DtwModelPreset::Medium,
        "large-v1" => DtwModelPreset::LargeV1,
        "large-v2" => DtwModelPreset::LargeV2,
        "large-v3" | "large" => DtwModelPreset::LargeV3,
        "large-v3-turbo" | "turbo" => DtwModelPreset::LargeV3Turbo,
        _ => return DtwMode::TopMost { n_top: 2 },
    };
    DtwMode::ModelPreset {
        model_preset: preset,
    }
}

/// The ASR service: loaded models plus the worker pool.
pub struct AsrEngine {
    registry: ModelRegistry,
    models: HashMap<String, Arc<LoadedModel>>,
    pool: WorkerPool<AsrJob>,
    counters: Arc<AsrCounters>,
    config: AsrConfig,
}

/// Outcome counters of ASR jobs (for `/health`, logs and tests).
#[derive(Debug, Default)]
pub struct AsrCounters {
    /// Jobs finished with a result.
    pub completed: AtomicUsize,
    /// Jobs skipped in the queue or aborted mid-decode because their client went away.
    pub cancelled: AtomicUsize,
    /// Jobs that passed their deadline.
    pub deadline_exceeded: AtomicUsize,
}

impl AsrEngine {
    /// Loads every model of the registry (seconds per model) and starts the workers.
    pub fn load(registry: ModelRegistry, config: AsrConfig) -> Result<Self, ModelError> {
        whisper_rs::install_logging_hooks();
        let mut models = HashMap::new();
        for spec in registry.models() {
            let started = Instant::now();
            let context = load_context(spec, config.flash_attention, None).map_err(|detail| {
                ModelError::Load {
                    id: spec.id.clone(),
                    path: spec.path.display().to_string(),
                    detail,
                }
            })?;
            tracing::info!(model = %spec.id, path = %spec.path.display(), elapsed_ms = started.elapsed().as_millis() as u64, "loaded whisper model");
            models.insert(
                spec.id.clone(),
                Arc::new(LoadedModel {
                    spec: spec.clone(),
                    context,
                    dtw_context: OnceLock::new(),
                }),
            );
        }
        let threads = config.threads_per_worker.max(1);
        let beam_size = config.beam_size.max(1);
        let counters = Arc::new(AsrCounters::default());
        let pool = WorkerPool::spawn(
            "asr",
            config.workers.max(1),
            config.queue_capacity.max(1),
            {
                let counters = Arc::clone(&counters);
                move |_| WorkerStates {
                    states: HashMap::new(),
                    counters: Arc::clone(&counters),
                }
            },
            move |states: &mut WorkerStates, job: AsrJob| {
                run_job(states, job, threads, beam_size);
            },
        )
        .map_err(|e| ModelError::Inference(format!("could not start ASR workers: {e}")))?;
        Ok(Self {
            registry,
            models,
            pool,
            counters,
            config,
        })
    }

    /// The model registry (for `/v1/models` and name resolution).
    pub fn registry(&self) -> &ModelRegistry {
        &self.registry
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &AsrConfig {
        &self.config
    }

    /// Job outcome counters.
    pub fn counters(&self) -> &AsrCounters {
        &self.counters
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.pool.workers()
    }

    /// Queue and worker counters.
    pub fn stats(&self) -> &PoolStats {
        self.pool.stats()
    }

    /// Resolves the model name and checks the request against the model's abilities,
    /// so bad requests fail with a 400 before any queueing.
    pub fn check(&self, model: Option<&str>, request: &AsrRequest) -> Result<String, ModelError> {
        let spec = self.registry.resolve(model)?;
        if spec.english_only {
            if request.task == AsrTask::Translate {
                return Err(ModelError::Unsupported(format!(
                    "model `{}` is English-only and cannot translate; use a multilingual model",
                    spec.id
                )));
            }
            if let Some(lang) = request.language.as_deref().filter(|l| *l != "en") {
                return Err(ModelError::Unsupported(format!(
                    "model `{}` is English-only but `language` is `{lang}`",
                    spec.id
                )));
            }
        }
        if let Some(lang) = request.language.as_deref() {
            if whisper_rs::get_lang_id(lang).is_none() {
                return Err(ModelError::Unsupported(format!(
                    "`language` `{lang}` is not a language Whisper knows"
                )));
            }
        }
        Ok(spec.id.clone())
    }

    /// Queues a job; the receiver yields its result. A full queue is `Overloaded` at once.
    pub fn submit(
        &self,
        model: Option<&str>,
        request: AsrRequest,
        cancel: CancelToken,
        deadline: Instant,
        hooks: AsrHooks,
    ) -> Result<oneshot::Receiver<Result<AsrOutput, ModelError>>, ModelError> {
        let id = self.check(model, &request)?;
        let model = self
            .models
            .get(&id)
            .cloned()
            .ok_or_else(|| ModelError::Inference(format!("model `{id}` is not loaded")))?;
        let (reply, receiver) = oneshot::channel();
        let priority = request.options.priority;
        self.pool.try_submit_with(
            priority,
            AsrJob {
                model,
                request,
                cancel,
                deadline,
                hooks,
                span: tracing::Span::current(),
                reply,
            },
        )?;
        Ok(receiver)
    }
}

/// Per-worker whisper states, one per model id and DTW setting, created on first use.
struct WorkerStates {
    states: HashMap<(String, bool), WhisperState>,
    counters: Arc<AsrCounters>,
}

fn run_job(states: &mut WorkerStates, job: AsrJob, threads: usize, beam_size: u32) {
    let _entered = job.span.enter();
    let counters = Arc::clone(&states.counters);
    if job.reply.is_closed() || job.cancel.is_cancelled() {
        tracing::debug!("skipping ASR job: client gone");
        counters.cancelled.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if Instant::now() >= job.deadline {
        counters.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(Err(ModelError::DeadlineExceeded));
        return;
    }
    let started = Instant::now();
    let _live =
        (job.request.options.priority != Priority::Batch).then(crate::pool::LiveDecode::start);
    let result = decode(
        states,
        &job.model,
        job.request,
        &job.cancel,
        job.deadline,
        job.hooks,
        threads,
        beam_size,
    );
    let result = match result {
        Err(_) if job.cancel.is_cancelled() => Err(ModelError::Cancelled),
        Err(_) if Instant::now() >= job.deadline => Err(ModelError::DeadlineExceeded),
        other => other,
    };
    let counter = match &result {
        Ok(_) => &counters.completed,
        Err(ModelError::Cancelled) => &counters.cancelled,
        Err(ModelError::DeadlineExceeded) => &counters.deadline_exceeded,
        Err(_) => &counters.completed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        model = %job.model.spec.id,
        elapsed_ms = started.elapsed().as_millis() as u64,
        ok = result.is_ok(),
        "asr job finished"
    );
    let _ = job.reply.send(result);
}

#[allow(clippy::too_many_arguments)]
fn decode(
    states: &mut WorkerStates,
    model: &LoadedModel,
    request: AsrRequest,
    cancel: &CancelToken,
    deadline: Instant,
    hooks: AsrHooks,
    threads: usize,
    beam_size: u32,
) -> Result<AsrOutput, ModelError> {
    let options = request.options;
    let state = match states.states.entry((model.spec.id.clone(), options.dtw)) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(
            model
                .context_for(options.dtw)?
                .create_state()
                .map_err(|err| ModelError::Inference(format!("creating a whisper state: {err}")))?,
        ),
    };
    let beam_size = options.beam_size.unwrap_or(beam_size).max(1);
    let strategy = if beam_size > 1 {
        SamplingStrategy::BeamSearch {
            beam_size: beam_size as i32,
            patience: -1.0,
        }
    } else {
        SamplingStrategy::Greedy { best_of: 5 }
    };
    let mut params = FullParams::new(strategy);
    params.set_n_threads(threads as i32);
    params.set_translate(request.task == AsrTask::Translate);
    let language = request
        .language
        .clone()
        .unwrap_or_else(|| "auto".to_string());
    params.set_language(Some(language.as_str()));
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    // Token times are always computed (cheap: from the timestamp-token probabilities):
    // the long-form pipeline maps each word back to its own piece of a window.
    params.set_token_timestamps(true);
    // Non-speech tokens (`[Music]`, `♪`, `(applause)`) are never a transcript of speech;
    // suppressing them is the first line of the hallucination guard (crate::guard).
    params.set_suppress_nst(true);
    let (temperature, increment) = temperature_schedule(&request.temperatures);
    params.set_temperature(temperature);
    params.set_temperature_inc(if options.no_fallback { 0.0 } else { increment });
    params.set_single_segment(options.single_segment);
    if let Some(ctx) = options.audio_ctx.filter(|c| *c < FULL_AUDIO_CTX) {
        params.set_audio_ctx(ctx as i32);
    }
    if let Some(prompt) = request.prompt.as_deref() {
        // whisper-rs panics on interior NULs; the prompt is client text.
        params.set_initial_prompt(&prompt.replace('\0', ""));
    }
    let abort_cancel = cancel.clone();
    // The closure type must be the boxed trait object: whisper-rs 0.16 casts the user data
    // back to `F`, which is only sound when `F` is the `Box<dyn FnMut>` it stored.
    let abort: Box<dyn FnMut() -> bool> =
        Box::new(move || abort_cancel.is_cancelled() || Instant::now() >= deadline);
    params.set_abort_callback_safe(abort);
    if let Some(mut on_segment) = hooks.on_segment {
        params.set_segment_callback_safe_lossy(move |data: SegmentCallbackData| {
            on_segment(data.text)
        });
    }
    if let Some(on_progress) = hooks.on_progress {
        params.set_progress_callback_safe(on_progress);
    }
    state
        .full(params, &request.audio)
        .map_err(|e| ModelError::Inference(format!("whisper.cpp: {e}")))?;
    // English-only models have no language tokens: their "detected" id is meaningless.
    let language = match request.language.as_deref() {
        _ if model.spec.english_only => "en".to_string(),
        Some(requested) => requested.to_string(),
        None => whisper_rs::get_lang_str(state.full_lang_id_from_state())
            .unwrap_or("en")
            .to_string(),
    };
    let segments = collect_segments(state, model, temperature, options.dtw);
    Ok(AsrOutput {
        language,
        model: model.spec.id.clone(),
        segments,
    })
}

/// whisper.cpp takes a start temperature and an increment (it retries up to 1.0 when a
/// segment fails its entropy/log-prob checks). A client list `[t0, t1, ...]` maps to
/// `(t0, t1 - t0)`; a single `0` keeps OpenAI's meaning (automatic fallback, +0.2);
/// a single non-zero value is fixed.
pub fn temperature_schedule(temperatures: &[f32]) -> (f32, f32) {
    match temperatures {
        [] => (0.0, 0.2),
        [t] if *t == 0.0 => (0.0, 0.2),
        [t] => (*t, 0.0),
        [t0, t1, ..] => (*t0, (t1 - t0).max(0.0)),
    }
}

fn collect_segments(
    state: &WhisperState,
    model: &LoadedModel,
    temperature: f32,
    dtw: bool,
) -> Vec<AsrSegment> {
    let eot = model.context.token_eot();
    let mut segments = Vec::new();
    for segment in state.as_iter() {
        let start_ms = (segment.start_timestamp().max(0) as u64) * 10;
        let end_ms = (segment.end_timestamp().max(0) as u64) * 10;
        let mut tokens = Vec::new();
        let mut timed = Vec::new();
        let mut logprob_sum = 0.0f32;
        for index in 0..segment.n_tokens() {
            let Some(token) = segment.get_token(index) else {
                continue;
            };
            let data = token.token_data();
            if data.id >= eot {
                continue;
            }
            tokens.push(data.id as u32);
            logprob_sum += data.plog;
            let (t0, t1) = if dtw {
                (data.t_dtw, data.t_dtw)
            } else {
                (data.t0, data.t1)
            };
            timed.push(TimedToken {
                bytes: token.to_bytes().map(<[u8]>::to_vec).unwrap_or_default(),
                start_ms: (t0.max(0) as u64) * 10,
                end_ms: (t1.max(0) as u64) * 10,
                probability: data.p,
            });
        }
        if dtw {
            crate::words::close_dtw_spans(&mut timed, start_ms);
        }
        let text = segment
            .to_str_lossy()
            .map(|s| s.into_owned())
            .unwrap_or_default();
        let avg_logprob = if tokens.is_empty() {
            0.0
        } else {
            logprob_sum / tokens.len() as f32
        };
        segments.push(AsrSegment {
            start_ms,
            end_ms,
            compression_ratio: compression_ratio(&text),
            words: group_words(&timed, start_ms, end_ms),
            text,
            tokens,
            avg_logprob,
            no_speech_prob: segment.no_speech_probability(),
            temperature,
        });
    }
    segments
}

/// gzip-style compression ratio of the text, as Whisper uses to spot repetition loops.
pub fn compression_ratio(text: &str) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    if encoder.write_all(text.as_bytes()).is_err() {
        return 0.0;
    }
    match encoder.finish() {
        Ok(compressed) if !compressed.is_empty() => text.len() as f32 / compressed.len() as f32,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_lists_map_to_start_and_increment() {
        assert_eq!(temperature_schedule(&[]), (0.0, 0.2));
        assert_eq!(temperature_schedule(&[0.0]), (0.0, 0.2));
        assert_eq!(temperature_schedule(&[0.5]), (0.5, 0.0));
        let (t, inc) = temperature_schedule(&[0.0, 0.4, 0.8]);
        assert_eq!(t, 0.0);
        assert!((inc - 0.4).abs() < 1e-6);
    }

    #[test]
    fn audio_ctx_covers_the_audio_with_slack() {
        assert_eq!(audio_ctx_for(16_000, 0), 64);
        assert_eq!(audio_ctx_for(16_000 * 3, 50), 256);
        assert_eq!(audio_ctx_for(16_000 * 40, 50), FULL_AUDIO_CTX);
    }

    #[test]
    fn repetitive_text_compresses_more() {
        let normal = compression_ratio(
            "And so my fellow Americans, ask not what your country can do for you.",
        );
        let looped = compression_ratio(&"thank you ".repeat(30));
        assert!(looped > 2.4 && normal < 2.0, "{normal} {looped}");
    }
}
