//! The one error type of the inference side of `ember-models` (provisioning and
//! conversion have their own). The server maps each variant to an HTTP status in one place.

use crate::pool::SubmitError;

/// Why an ASR request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The requested model name matches no installed model (strict mode only).
    #[error("model `{requested}` is not installed; installed models: {installed}")]
    UnknownModel {
        requested: String,
        installed: String,
    },
    /// The request asks for something the chosen model cannot do (e.g. translate with an `.en` model).
    #[error("{0}")]
    Unsupported(String),
    /// The ASR queue is full; retry later.
    #[error(transparent)]
    Overloaded(#[from] SubmitError),
    /// The client went away; the job was skipped or aborted.
    #[error("the request was cancelled")]
    Cancelled,
    /// The job passed its deadline before or while decoding.
    #[error("transcription did not finish within the request deadline")]
    DeadlineExceeded,
    /// A model file could not be loaded.
    #[error("could not load model `{id}` from {path}: {detail}")]
    Load {
        id: String,
        path: String,
        detail: String,
    },
    /// whisper.cpp failed while decoding, or a worker died.
    #[error("inference failed: {0}")]
    Inference(String),
}
