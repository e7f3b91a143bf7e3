//! ember-dsp: the synchronous signal code of Ember (DESIGN §1).
//!
//! Everything here runs on a blocking thread and knows nothing of HTTP, tokio or
//! models: it turns uploaded bytes into 16 kHz mono `f32` samples, the one format
//! every model consumes.
//!
//! - [`sniff()`] tells containers apart by their magic bytes.
//! - [`decode_file`] / [`decode_bytes`] decode any supported upload incrementally
//!   (symphonia for WAV/FLAC/MP3/Vorbis/AAC, `ogg`/`matroska-demuxer` + `opus-rs`
//!   for Opus), downmix and resample to [`SAMPLE_RATE`].
//! - [`Resampler16k`] and [`mix`] are the streaming building blocks, reusable by
//!   the live-stream path.
//! - [`loudness`] applies the `preprocessing` presets (EBU R128 dynamic normalisation,
//!   bass shelf, true-peak limiting) in place.
//! - [`vad`] scores frames for speech (the [`VoiceDetector`] trait, WebRTC) and turns the
//!   scores into padded speech regions.

pub mod decode;
pub mod error;
pub mod loudness;
pub mod mix;
pub mod pcm;
pub mod resample;
pub mod sniff;
pub mod vad;
pub mod window;

pub use decode::{
    decode_bytes, decode_bytes_with, decode_file, decode_file_with, DecodeOptions, DecodedAudio,
};
pub use error::DspError;
pub use loudness::{apply_preset, LoudnessPreset, LoudnessReport, PresetParams};
pub use pcm::{s16le_to_f32, PcmAssembler};
pub use resample::{resample_to_16k, Resampler16k};
pub use sniff::{looks_like_url, sniff, Container};
pub use vad::{SpeechRegion, VadError, VoiceDetector};
pub use window::{pack_windows, AudioWindow, WindowPiece};

/// The sample rate of every buffer this crate hands out: what Whisper, Silero VAD
/// and the CTC aligner all expect.
pub const SAMPLE_RATE: u32 = 16_000;
