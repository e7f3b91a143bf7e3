//! Groups Whisper's BPE tokens into words with times.
//!
//! Whisper marks a word start with a leading space in the token text; punctuation tokens
//! attach to the word before them. Token bytes are joined before UTF-8 decoding because
//! a multi-byte character may be split across tokens. These are whisper.cpp's own token
//! timestamps (`whisper_tokens`), or DTW token times (`whisper`); CTC aligners
//! (`crate::align`) re-time the words afterwards.

/// One decoded text token with its time span (ms, absolute in the audio).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedToken {
    pub bytes: Vec<u8>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub probability: f32,
}

/// A word and its time span (ms) and mean token probability.
#[derive(Debug, Clone, PartialEq)]
pub struct AsrWord {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub probability: f32,
}

/// The longest a DTW-timed token may last: DTW gives each token one moment only, so
/// a token after a pause would otherwise stretch over the pause.
const DTW_MAX_TOKEN_MS: u64 = 500;

/// whisper.cpp's DTW moment of a token (`t_dtw`) falls where the path leaves the token,
/// i.e. near its end (measured on jfk against forced alignments: within ~0.1 s of the
/// word's end, ~0.45 s after its start). Each token so ends at its own moment and
/// starts where the previous one ended, at most [`DTW_MAX_TOKEN_MS`] earlier.
pub fn close_dtw_spans(tokens: &mut [TimedToken], seg_start_ms: u64) {
    let mut previous_end = seg_start_ms;
    for token in tokens.iter_mut() {
        let end = token.start_ms.max(previous_end);
        token.end_ms = end;
        token.start_ms = previous_end.max(end.saturating_sub(DTW_MAX_TOKEN_MS));
        previous_end = end;
    }
}

/// Joins tokens into words, clamping times into `[seg_start, seg_end]` and keeping them
/// monotonic so no word starts before the previous one ended.
pub fn group_words(tokens: &[TimedToken], seg_start_ms: u64, seg_end_ms: u64) -> Vec<AsrWord> {
    let mut groups: Vec<Vec<&TimedToken>> = Vec::new();
    for token in tokens {
        let starts_word = token.bytes.first() == Some(&b' ');
        let is_punct = token
            .bytes
            .iter()
            .all(|b| b.is_ascii_punctuation() && *b != b'\'');
        match groups.last_mut() {
            Some(current) if !starts_word || (is_punct && !current.is_empty()) => {
                current.push(token)
            }
            _ => groups.push(vec![token]),
        }
    }
    let mut words = Vec::with_capacity(groups.len());
    let mut cursor = seg_start_ms;
    for group in groups {
        let bytes: Vec<u8> = group.iter().flat_map(|t| t.bytes.iter().copied()).collect();
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if text.is_empty() {
            continue;
        }
        let start = group
            .first()
            .map_or(cursor, |t| t.start_ms)
            .clamp(cursor, seg_end_ms.max(cursor));
        let end = group
            .last()
            .map_or(start, |t| t.end_ms)
            .clamp(start, seg_end_ms.max(start));
        let probability = group.iter().map(|t| t.probability).sum::<f32>() / group.len() as f32;
        cursor = end;
        words.push(AsrWord {
            text,
            start_ms: start,
            end_ms: end,
            probability,
        });
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(text: &str, start: u64, end: u64) -> TimedToken {
        TimedToken {
            bytes: text.as_bytes().to_vec(),
            start_ms: start,
            end_ms: end,
            probability: 0.5,
        }
    }

    #[test]
    fn joins_subwords_and_punctuation() {
        let tokens = [
            tok(" And", 0, 200),
            tok(" so", 200, 400),
            tok(" Amer", 400, 600),
            tok("icans", 600, 900),
            tok(",", 900, 950),
            tok(" ask", 1000, 1200),
        ];
        let words = group_words(&tokens, 0, 2000);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["And", "so", "Americans,", "ask"]);
        assert_eq!((words[2].start_ms, words[2].end_ms), (400, 950));
    }

    #[test]
    fn split_utf8_is_joined_before_decoding() {
        let e_acute = "é".as_bytes();
        let tokens = [
            TimedToken {
                bytes: vec![b' ', b'c', b'a', b'f', e_acute[0]],
                start_ms: 0,
                end_ms: 100,
                probability: 1.0,
            },
            TimedToken {
                bytes: vec![e_acute[1]],
                start_ms: 100,
                end_ms: 200,
                probability: 1.0,
            },
        ];
        assert_eq!(group_words(&tokens, 0, 500)[0].text, "café");
    }

    #[test]
    fn dtw_moments_end_tokens_and_starts_are_capped() {
        let mut tokens = [
            tok(" a", 300, 300),
            tok(" b", 600, 600),
            tok(" c", 2000, 2000),
        ];
        close_dtw_spans(&mut tokens, 0);
        let spans: Vec<(u64, u64)> = tokens.iter().map(|t| (t.start_ms, t.end_ms)).collect();
        assert_eq!(spans, [(0, 300), (300, 600), (1500, 2000)]);
    }

    #[test]
    fn times_are_clamped_and_monotonic() {
        let tokens = [
            tok(" a", 500, 900),
            tok(" b", 100, 300),
            tok(" c", 2500, 3000),
        ];
        let words = group_words(&tokens, 400, 2000);
        assert_eq!((words[0].start_ms, words[0].end_ms), (500, 900));
        assert_eq!((words[1].start_ms, words[1].end_ms), (900, 900));
        assert_eq!((words[2].start_ms, words[2].end_ms), (2000, 2000));
    }
}
