//! The crate's one error type: why an upload could not become 16 kHz samples.
//!
//! Messages are written for the API user (the server puts them in the error
//! envelope verbatim), so they say what was wrong with the file, not where in our
//! code it failed.

/// Why decoding failed. The server maps each variant to one error code.
#[derive(Debug, thiserror::Error)]
pub enum DspError {
    /// Zero bytes were uploaded.
    #[error("the uploaded file is empty")]
    Empty,
    /// The file parsed but held no audio track, or the track had zero samples.
    #[error("the uploaded file contains no audio")]
    NoAudio,
    /// A container or codec we do not decode (or bytes that are no media at all).
    #[error("unsupported audio format: {format}")]
    Unsupported {
        /// What was found, e.g. `"unknown"`, `"matroska/A_VORBIS"`, `"sample rate 0"`.
        format: String,
    },
    /// A recognised format whose data could not be decoded.
    #[error("could not decode audio: {detail}")]
    Corrupt {
        /// What went wrong, for the user and the log.
        detail: String,
    },
    /// Reading the file itself failed (not a format problem).
    #[error("could not read the audio file: {0}")]
    Io(#[from] std::io::Error),
    /// The audio is longer than the configured maximum (`DecodeOptions::max_duration`).
    #[error("the audio is at least {got_secs:.1} s long, over the limit of {max_secs:.1} s")]
    TooLong {
        /// The configured limit in seconds.
        max_secs: f64,
        /// The duration found: declared by the container, or decoded before giving up.
        got_secs: f64,
    },
}

impl DspError {
    /// Shorthand for [`DspError::Corrupt`].
    pub(crate) fn corrupt(detail: impl Into<String>) -> Self {
        Self::Corrupt {
            detail: detail.into(),
        }
    }

    /// Shorthand for [`DspError::Unsupported`].
    pub(crate) fn unsupported(format: impl Into<String>) -> Self {
        Self::Unsupported {
            format: format.into(),
        }
    }
}
