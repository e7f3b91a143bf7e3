//! Forced alignment: word times from a CTC acoustic model (DESIGN §2 aligners).
//!
//! [`AlignEngine`] owns the installed CTC aligners and a worker pool; a job is audio plus
//! either windows that each carry their words (a transcript's segments) or one text to
//! spread over speech chunks (`/v1/audio/alignments`). Every input word comes back with
//! a time: words the model cannot spell, or windows that cannot be aligned, get times
//! interpolated between their neighbours and are flagged.

pub mod acoustic;
pub mod ctc;
pub mod energy;
pub mod engine;
pub mod english;
pub mod g2p;
pub mod manifest;
pub mod timing;

pub use engine::{AlignEngine, AlignInput, AlignRequest, AlignWindow};
pub use manifest::{AlignerManifest, TextFrontend};
pub use timing::finish;

/// `token → id` for the vocabulary entries that are one character long (the tokens a
/// character-level frontend can emit).
pub(crate) fn single_char_ids(tokens: &[String]) -> Vec<(char, usize)> {
    tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some((c, i)),
                _ => None,
            }
        })
        .collect()
}

/// The time of one input word.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignedWord {
    pub start_ms: u64,
    pub end_ms: u64,
    /// Mean model probability of the word's frames; 0 when interpolated.
    pub confidence: f32,
    /// The model could not place the word; its time lies between its neighbours'.
    pub interpolated: bool,
}
