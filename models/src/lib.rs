//! ember-models (see DESIGN §1).

pub mod asr;
pub mod ct2;
pub mod error;
pub mod ggml;
pub mod packages;
pub mod pool;
pub mod provision;
pub mod registry;
pub mod words;

pub use asr::{
    AsrConfig, AsrEngine, AsrHooks, AsrOutput, AsrRequest, AsrSegment, AsrTask, CancelToken,
};
pub use error::ModelError;
pub use pool::{SubmitError, WorkerPool};
pub use registry::{ModelRegistry, WhisperModelSpec};
pub use words::AsrWord;
