//! From frame spans to word times: frame → ms in the window, the model's timing shift,
//! no overlaps, and interpolation for words without a span.

use super::ctc::FrameSpan;
use super::AlignedWord;

/// Where a window's frames lie in the audio.
#[derive(Debug, Clone, Copy)]
pub struct FrameClock {
    /// Window start in the audio (ms).
    pub offset_ms: f64,
    /// Milliseconds per frame (window length / frames: exact for any model stride).
    pub frame_ms: f64,
}

/// Times of one window's words from their spans (`None` = to interpolate later).
pub fn span_times(
    spans: &[Option<FrameSpan>],
    clock: FrameClock,
    start_shift_ms: u32,
    end_shift_ms: u32,
) -> Vec<Option<AlignedWord>> {
    spans
        .iter()
        .map(|span| {
            span.map(|s| {
                let start = clock.offset_ms + s.start as f64 * clock.frame_ms;
                let end = clock.offset_ms + s.end as f64 * clock.frame_ms;
                AlignedWord {
                    start_ms: (start - f64::from(start_shift_ms)).max(clock.offset_ms) as u64,
                    end_ms: (end + f64::from(end_shift_ms)).round() as u64,
                    confidence: s.confidence,
                    interpolated: false,
                }
            })
        })
        .collect()
}

/// Makes the times of all words monotonic and gives unplaced words the gap between
/// their placed neighbours. `bounds` are the audio's first and last ms.
pub fn finish(words: Vec<Option<AlignedWord>>, bounds: (u64, u64)) -> Vec<AlignedWord> {
    let (first, last) = bounds;
    let mut out: Vec<AlignedWord> = Vec::with_capacity(words.len());
    let mut previous_end = first;
    for (index, word) in words.iter().enumerate() {
        let next_start = words[index + 1..]
            .iter()
            .flatten()
            .next()
            .map_or(last, |w| w.start_ms)
            .max(previous_end);
        let word = match word {
            Some(w) => {
                let start = w.start_ms.clamp(previous_end, last);
                let end = w.end_ms.clamp(start, last).min(next_start.max(start));
                AlignedWord {
                    start_ms: start,
                    end_ms: end,
                    ..*w
                }
            }
            None => {
                // Share the gap with the other unplaced words of this run.
                let run = words[index..].iter().take_while(|w| w.is_none()).count() as u64;
                let share = next_start.saturating_sub(previous_end) / run.max(1);
                AlignedWord {
                    start_ms: previous_end,
                    end_ms: (previous_end + share).min(last),
                    confidence: 0.0,
                    interpolated: true,
                }
            }
        };
        previous_end = word.end_ms;
        out.push(word);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn placed(start: u64, end: u64) -> Option<AlignedWord> {
        Some(AlignedWord {
            start_ms: start,
            end_ms: end,
            confidence: 0.9,
            interpolated: false,
        })
    }

    #[test]
    fn frames_become_shifted_ms() {
        let spans = [Some(FrameSpan {
            start: 10,
            end: 20,
            confidence: 0.5,
        })];
        let clock = FrameClock {
            offset_ms: 1000.0,
            frame_ms: 20.0,
        };
        let w = span_times(&spans, clock, 50, 30)[0].unwrap();
        assert_eq!((w.start_ms, w.end_ms), (1150, 1430));
    }

    #[test]
    fn unplaced_words_share_the_gap_and_times_never_overlap() {
        let words = vec![
            placed(100, 500),
            None,
            None,
            placed(900, 1200),
            placed(1100, 1300),
        ];
        let out = finish(words, (0, 2000));
        let spans: Vec<(u64, u64)> = out.iter().map(|w| (w.start_ms, w.end_ms)).collect();
        assert_eq!(
            spans,
            [
                (100, 500),
                (500, 700),
                (700, 900),
                (900, 1100),
                (1100, 1300)
            ]
        );
        assert!(out[1].interpolated && !out[0].interpolated);
    }

    #[test]
    fn times_stay_inside_the_audio() {
        let out = finish(vec![None, placed(50, 5000)], (0, 3000));
        assert_eq!((out[0].start_ms, out[0].end_ms), (0, 50));
        assert_eq!((out[1].start_ms, out[1].end_ms), (50, 3000));
    }
}
