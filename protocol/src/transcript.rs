//! The result of recognition, as the pipeline produces it and the renderers consume it.
//!
//! Times are integer milliseconds here (DESIGN §4); float seconds exist only at the wire,
//! in `render`. Words live inside their segment so per-segment and top-level word lists
//! (PROTOCOL §2.3) come from one source.

use crate::request::Task;

/// A finished transcription, translation or alignment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    /// Echoed as `task` in `verbose_json`.
    pub task: Task,
    /// Lower-case ISO code of the (detected or requested) source language.
    pub language: String,
    /// Length of the input audio.
    pub duration_ms: u64,
    /// The full transcript.
    pub text: String,
    /// Timed segments in order.
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// Every word of every segment, in order; the top-level `words` of `verbose_json`.
    pub fn words(&self) -> impl Iterator<Item = &Word> {
        self.segments.iter().flat_map(|s| s.words.iter())
    }

    /// The segments' texts, trimmed and joined by single spaces (empty ones skipped):
    /// the transcript text when the decoder gives none of its own.
    pub fn joined_text(segments: &[Segment]) -> String {
        let parts: Vec<&str> = segments
            .iter()
            .map(|s| s.text.trim())
            .filter(|s| !s.is_empty())
            .collect();
        parts.join(" ")
    }
}

/// One decoded segment, with Whisper's per-segment statistics that OpenAI clients expect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segment {
    /// Position in the transcript, from 0.
    pub id: u32,
    /// Start in the original audio.
    pub start_ms: u64,
    /// End in the original audio.
    pub end_ms: u64,
    /// Segment text (leading space optional; renderers normalise it).
    pub text: String,
    /// Decoder token ids; may be empty (PROTOCOL §2.3).
    pub tokens: Vec<u32>,
    /// Temperature the accepted decode used.
    pub temperature: f32,
    /// Mean token log-probability.
    pub avg_logprob: f32,
    /// gzip compression ratio of the text (repetition detector).
    pub compression_ratio: f32,
    /// Probability that the segment holds no speech.
    pub no_speech_prob: f32,
    /// Timed words; empty when words were not asked for.
    pub words: Vec<Word>,
}

/// One timed word.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Word {
    /// The word, without surrounding spaces on the wire (PROTOCOL §2.3).
    pub word: String,
    /// Start in the original audio.
    pub start_ms: u64,
    /// End in the original audio.
    pub end_ms: u64,
    /// Recognition confidence in `0..=1`.
    pub probability: f32,
    /// The aligner could not place the word: its time is interpolated between its
    /// neighbours' (PROTOCOL §2.7; on the wire only with `include[]=interpolated`).
    pub interpolated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(w: &str, start_ms: u64) -> Word {
        Word {
            word: w.to_owned(),
            start_ms,
            end_ms: start_ms + 100,
            probability: 0.9,
            interpolated: false,
        }
    }

    #[test]
    fn words_flattens_segments_in_order() {
        let t = Transcript {
            segments: vec![
                Segment {
                    words: vec![word("a", 0), word("b", 100)],
                    ..Segment::default()
                },
                Segment::default(),
                Segment {
                    id: 2,
                    words: vec![word("c", 300)],
                    ..Segment::default()
                },
            ],
            ..Transcript::default()
        };
        let got: Vec<&str> = t.words().map(|w| w.word.as_str()).collect();
        assert_eq!(got, ["a", "b", "c"]);
    }
}
