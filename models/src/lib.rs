//! ember-models (see DESIGN §1).

pub mod align;
pub mod asr;
pub mod classify;
pub mod ct2;
pub mod embed;
pub mod error;
pub mod ggml;
pub mod guard;
pub mod llm;
pub mod onnx;
pub mod packages;
pub mod pool;
pub mod provision;
pub mod registry;
pub mod silero;
pub mod vad;
pub mod words;

pub use align::{AlignEngine, AlignInput, AlignRequest, AlignWindow, AlignedWord, AlignerManifest};
pub use asr::{
    audio_ctx_for, AsrConfig, AsrEngine, AsrHooks, AsrOutput, AsrRequest, AsrSegment, AsrTask,
    CancelToken, DecodeOptions,
};
pub use error::ModelError;
pub use guard::{screen_segment, DropReason, GuardConfig};
pub use pool::{Priority, SubmitError, WorkerPool};
pub use registry::{ModelRegistry, WhisperModelSpec};
pub use silero::SileroVad;
pub use vad::{SpeechMap, VadEngine, VadKind};
pub use words::AsrWord;
