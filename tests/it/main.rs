//! The single integration-test binary (DESIGN §1): real servers on port 0 with real
//! converted weights from `EMBER_MODELS_DIR` (installed by `scripts/test.sh`).

mod accuracy;
mod alignment;
mod audio;
mod chat;
mod embeddings;
mod errors;
mod formats;
mod images;
mod lifecycle;
mod longform;
mod no_speech;
mod preprocessing;
mod streaming;
mod support;
mod vad;
mod wer;
