//! The hallucination guard: decides which decoded segments are not speech.
//!
//! Whisper invents text over silence, music and noise ("Thank you.", subtitle credits,
//! loops of one phrase). VAD gating keeps most non-speech away from the decoder; this
//! module screens what still comes back, segment by segment, with the checks Whisper's
//! own reference decoder uses (no-speech probability with log-probability, compression
//! ratio) plus two of ours: repetition loops counted on words, and phrases that Whisper is
//! known to hallucinate, dropped only when the VAD says the audio under them is not speech.

use crate::asr::AsrSegment;

/// Thresholds of the guard; the defaults are Whisper's reference values where one exists.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// Drop a segment whose `no_speech_prob` is above this *and* whose mean log-probability
    /// is below [`Self::logprob_threshold`] (Whisper's rule: 0.6).
    pub no_speech_threshold: f32,
    /// See [`Self::no_speech_threshold`] (Whisper: −1.0).
    pub logprob_threshold: f32,
    /// Text that gzips better than this is a loop (Whisper: 2.4).
    pub compression_ratio_threshold: f32,
    /// A run of the same 1–8 word phrase more often than this is a loop ("no no no" is
    /// speech; a fourth time in a row is a decoder loop).
    pub max_phrase_repeats: usize,
    /// Known hallucinated phrases are dropped when the mean VAD speech probability under
    /// them is below this (real "thank you"s said by a speaker score far above it).
    pub phrase_speech_threshold: f32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            no_speech_threshold: 0.6,
            logprob_threshold: -1.0,
            compression_ratio_threshold: 2.4,
            max_phrase_repeats: 3,
            phrase_speech_threshold: 0.5,
        }
    }
}

/// Why a segment was dropped (logged and counted; bounded set for metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Whisper's own no-speech rule.
    NoSpeech,
    /// The text compresses like a loop.
    CompressionRatio,
    /// One phrase repeated many times in a row.
    RepetitionLoop,
    /// A phrase Whisper hallucinates, over audio the VAD does not call speech.
    KnownPhrase,
    /// No spoken word: a bracketed sound annotation, music symbols or punctuation only
    /// (`[Music]`, `♪`, `(applause)`, `.`).
    Annotation,
}

impl DropReason {
    /// Stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSpeech => "no_speech",
            Self::CompressionRatio => "compression_ratio",
            Self::RepetitionLoop => "repetition_loop",
            Self::KnownPhrase => "known_phrase",
            Self::Annotation => "annotation",
        }
    }
}

/// Phrases Whisper emits over non-speech, collected from public bug reports of Whisper
/// servers. Compared after [`normalise`]; a segment must match a whole entry.
const KNOWN_PHRASES: &[&str] = &[
    "thank you",
    "thank you very much",
    "thanks for watching",
    "thank you for watching",
    "thanks for watching and see you next time",
    "thank you so much for watching",
    "please subscribe",
    "please like and subscribe",
    "subscribe to my channel",
    "dont forget to like and subscribe",
    "see you next time",
    "see you in the next video",
    "bye",
    "bye bye",
    "you",
    "so",
    "oh",
    "okay",
    "hmm",
    "subtitles by the amaraorg community",
    "subtitles by",
    "transcription by castingwords",
    "translated by",
    "amaraorg",
    "www mooji org",
    "the end",
    "music",
    "music playing",
    "background music",
    "upbeat music",
    "applause",
    "laughter",
    "silence",
];

/// Screens one segment. `speech_score` is the mean VAD speech probability of the audio
/// under the segment (1.0 when no VAD ran).
pub fn screen_segment(
    segment: &AsrSegment,
    speech_score: f32,
    config: &GuardConfig,
) -> Option<DropReason> {
    let text = segment.text.trim();
    if is_annotation(text) {
        return Some(DropReason::Annotation);
    }
    if segment.no_speech_prob > config.no_speech_threshold
        && segment.avg_logprob < config.logprob_threshold
    {
        return Some(DropReason::NoSpeech);
    }
    if segment.compression_ratio > config.compression_ratio_threshold {
        return Some(DropReason::CompressionRatio);
    }
    if longest_phrase_run(text) > config.max_phrase_repeats {
        return Some(DropReason::RepetitionLoop);
    }
    if speech_score < config.phrase_speech_threshold && is_known_phrase(text) {
        return Some(DropReason::KnownPhrase);
    }
    None
}

/// Lower-case words of letters and digits only, single-spaced.
pub fn normalise(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            word.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the whole text is one of [`KNOWN_PHRASES`] (repeated phrases included).
pub fn is_known_phrase(text: &str) -> bool {
    let normalised = normalise(text);
    !normalised.is_empty() && KNOWN_PHRASES.iter().any(|phrase| *phrase == normalised)
}

/// Whether the text has no spoken word: only sound annotations (`[Music]`,
/// `(upbeat music)`), music symbols or punctuation (`.`, `...`), nothing alphanumeric
/// outside brackets.
pub fn is_annotation(text: &str) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth -= 1,
            c if depth <= 0 && c.is_alphanumeric() => return false,
            _ => {}
        }
    }
    !text.trim().is_empty()
}

/// The most times any phrase of 1–8 words occurs back to back in the text.
pub fn longest_phrase_run(text: &str) -> usize {
    let words: Vec<String> = normalise(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let mut best = usize::from(!words.is_empty());
    for length in 1..=8.min(words.len() / 2) {
        for start in 0..length {
            let mut run = 1;
            let mut at = start;
            while at + 2 * length <= words.len() {
                if words[at..at + length] == words[at + length..at + 2 * length] {
                    run += 1;
                    best = best.max(run);
                } else {
                    run = 1;
                }
                at += length;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(text: &str) -> AsrSegment {
        AsrSegment {
            start_ms: 0,
            end_ms: 2_000,
            text: text.to_string(),
            tokens: Vec::new(),
            avg_logprob: -0.3,
            compression_ratio: crate::asr::compression_ratio(text),
            no_speech_prob: 0.05,
            temperature: 0.0,
            words: Vec::new(),
        }
    }

    #[test]
    fn ordinary_speech_passes() {
        let config = GuardConfig::default();
        let s = segment(" And so my fellow Americans, ask not what your country can do for you.");
        assert_eq!(screen_segment(&s, 0.95, &config), None);
        // Low speech score alone does not drop ordinary text.
        assert_eq!(screen_segment(&s, 0.1, &config), None);
    }

    #[test]
    fn known_phrases_drop_only_without_speech() {
        let config = GuardConfig::default();
        let s = segment(" Thank you.");
        assert_eq!(
            screen_segment(&s, 0.1, &config),
            Some(DropReason::KnownPhrase)
        );
        assert_eq!(screen_segment(&s, 0.9, &config), None);
        assert!(is_known_phrase("Subtitles by the Amara.org community"));
        assert!(is_known_phrase("Music playing."));
        assert!(!is_known_phrase("Thank you for the report on the budget."));
    }

    #[test]
    fn whisper_no_speech_rule_needs_both_conditions() {
        let config = GuardConfig::default();
        let mut s = segment(" Some words here.");
        s.no_speech_prob = 0.9;
        assert_eq!(screen_segment(&s, 1.0, &config), None);
        s.avg_logprob = -1.5;
        assert_eq!(screen_segment(&s, 1.0, &config), Some(DropReason::NoSpeech));
    }

    #[test]
    fn loops_are_detected() {
        let config = GuardConfig::default();
        assert_eq!(longest_phrase_run("I'm going to go. I'm going to go. I'm going to go. I'm going to go. I'm going to go."), 5);
        assert_eq!(longest_phrase_run("one two three"), 1);
        assert_eq!(longest_phrase_run("no no"), 2);
        assert_eq!(longest_phrase_run(""), 0);
        let mut looped = segment(" the the the the the the");
        looped.compression_ratio = 1.0; // isolate the word-run rule
        assert_eq!(
            screen_segment(&looped, 1.0, &config),
            Some(DropReason::RepetitionLoop)
        );
        let long = segment(&" we are here and".repeat(30));
        assert_eq!(
            screen_segment(&long, 1.0, &config),
            Some(DropReason::CompressionRatio)
        );
    }

    #[test]
    fn annotations_are_dropped_but_text_with_them_is_not() {
        assert!(is_annotation("[Music]"));
        assert!(is_annotation(" (upbeat music) [BLANK_AUDIO] "));
        assert!(is_annotation("♪ ♪"));
        assert!(!is_annotation("[Music] Hello there"));
        assert!(!is_annotation("Hello"));
        assert!(!is_annotation(""));
        assert!(is_annotation(" ."));
        assert!(is_annotation("..."));
        assert!(!is_annotation("5."));
    }
}
