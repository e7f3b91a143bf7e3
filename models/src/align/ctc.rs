//! CTC forced alignment: the best path (Viterbi) through a CTC model's frame
//! log-probabilities that spells a known token sequence, and the frames each word takes.
//!
//! The trellis is the usual CTC one (blank, t1, blank, t2, …, blank; a token may
//! follow the previous one directly unless they are equal). A word-boundary token, when
//! the model has one, is put between words as an *optional* state: the path may pass
//! through it or skip it, because models emit it inconsistently. Memory is one byte
//! per (frame, state) for the back-pointers, so callers align window by window and
//! [`MAX_TRELLIS_CELLS`] refuses anything larger.

/// Frame log-probabilities of one window: `frames × vocab`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LogProbs {
    pub data: Vec<f32>,
    pub frames: usize,
    pub vocab: usize,
}

impl LogProbs {
    fn at(&self, frame: usize, token: u32) -> f32 {
        self.data[frame * self.vocab + token as usize]
    }

    /// Non-blank tokens of the greedy (best-per-frame) decode, repeats collapsed: a
    /// cheap estimate of how many tokens the window holds.
    pub fn greedy_token_count(&self, blank: u32, skip: Option<u32>) -> usize {
        let mut count = 0;
        let mut previous = None;
        for frame in 0..self.frames {
            let row = &self.data[frame * self.vocab..(frame + 1) * self.vocab];
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(blank, |(i, _)| i as u32);
            if Some(best) != previous && best != blank && Some(best) != skip {
                count += 1;
            }
            previous = Some(best);
        }
        count
    }
}

/// Which ids are special in the model's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtcTokens {
    pub blank: u32,
    /// Emitted between words by some models (hama's `<wb>`); optional in the trellis.
    pub word_boundary: Option<u32>,
}

/// The frames `[start, end)` whose path states spell one word, and the mean
/// probability the model gave those states.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameSpan {
    pub start: usize,
    pub end: usize,
    pub confidence: f32,
}

/// Why a window could not be aligned; the caller falls back to interpolated times.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CtcError {
    #[error("{tokens} tokens need at least {needed} frames, the window has {frames}")]
    TooShort {
        tokens: usize,
        needed: usize,
        frames: usize,
    },
    #[error("a {frames}-frame window with {states} states exceeds the trellis limit")]
    TooLarge { frames: usize, states: usize },
    #[error("token id {0} is outside the model's vocabulary")]
    BadToken(u32),
}

/// The largest trellis (frames × states) one alignment may build: 64 MiB of
/// back-pointers, e.g. 2 minutes of speech at 50 frames/s with 10,000 states.
pub const MAX_TRELLIS_CELLS: usize = 64 << 20;

/// One state of the extended label sequence.
#[derive(Debug, Clone, Copy)]
struct State {
    token: u32,
    /// Index of the word whose token this is; `None` for blanks and boundaries.
    word: Option<usize>,
    /// A word-boundary state that the path may skip.
    optional: bool,
}

/// Aligns `words` (each a list of token ids; an empty list is a word the model cannot
/// spell) to the window. Returns one span per word, `None` for empty words.
pub fn align_words(
    log_probs: &LogProbs,
    words: &[Vec<u32>],
    tokens: CtcTokens,
) -> Result<Vec<Option<FrameSpan>>, CtcError> {
    let states = extended_states(words, tokens);
    let spelled = states.iter().filter(|s| s.word.is_some()).count();
    if spelled == 0 {
        return Ok(vec![None; words.len()]);
    }
    for s in &states {
        if s.token as usize >= log_probs.vocab {
            return Err(CtcError::BadToken(s.token));
        }
    }
    let needed = minimum_frames(&states);
    if needed > log_probs.frames {
        return Err(CtcError::TooShort {
            tokens: spelled,
            needed,
            frames: log_probs.frames,
        });
    }
    if log_probs.frames.saturating_mul(states.len()) > MAX_TRELLIS_CELLS {
        return Err(CtcError::TooLarge {
            frames: log_probs.frames,
            states: states.len(),
        });
    }
    let path = viterbi(log_probs, &states);
    Ok(word_spans(log_probs, &states, &path, words.len()))
}

/// blank, w0 tokens (blank between), [blank, boundary], blank, w1 tokens, …, blank.
fn extended_states(words: &[Vec<u32>], tokens: CtcTokens) -> Vec<State> {
    let blank = State {
        token: tokens.blank,
        word: None,
        optional: false,
    };
    let mut states = vec![blank];
    let mut first = true;
    for (index, word) in words.iter().enumerate() {
        if word.is_empty() {
            continue;
        }
        if let (false, Some(boundary)) = (first, tokens.word_boundary) {
            states.push(State {
                token: boundary,
                word: None,
                optional: true,
            });
            states.push(blank);
        }
        first = false;
        for &token in word {
            states.push(State {
                token,
                word: Some(index),
                optional: false,
            });
            states.push(blank);
        }
    }
    states
}

/// Frames the shortest valid path needs: one per token, plus a blank between equal
/// neighbours.
fn minimum_frames(states: &[State]) -> usize {
    let labels: Vec<u32> = states
        .iter()
        .filter(|s| s.word.is_some())
        .map(|s| s.token)
        .collect();
    labels.len() + labels.windows(2).filter(|w| w[0] == w[1]).count()
}

/// The predecessors a state may come from, as back-steps (0 = stay).
fn steps_into(states: &[State], s: usize) -> [Option<u8>; 5] {
    let mut steps = [Some(0), None, None, None, None];
    if s >= 1 {
        steps[1] = Some(1);
    }
    let state = states[s];
    let is_token = state.word.is_some() || state.optional;
    if is_token && s >= 2 && states[s - 2].token != state.token {
        steps[2] = Some(2);
    }
    // Skipping an optional boundary at s-2: come from the blank before it (s-3) or
    // straight from the token before that (s-4).
    if state.word.is_some() && s >= 4 && states[s - 2].optional {
        steps[3] = Some(3);
        if states[s - 4].token != state.token {
            steps[4] = Some(4);
        }
    }
    steps
}

/// The best state per frame.
fn viterbi(log_probs: &LogProbs, states: &[State]) -> Vec<usize> {
    let n = states.len();
    let frames = log_probs.frames;
    let moves: Vec<[Option<u8>; 5]> = (0..n).map(|s| steps_into(states, s)).collect();
    let mut back = vec![0u8; frames * n];
    let mut score = vec![f32::NEG_INFINITY; n];
    let mut next = vec![f32::NEG_INFINITY; n];
    score[0] = log_probs.at(0, states[0].token);
    if n > 1 {
        score[1] = log_probs.at(0, states[1].token);
    }
    // An optional boundary cannot start the path, but the first word's token can.
    for frame in 1..frames {
        for s in 0..n {
            let mut best = f32::NEG_INFINITY;
            let mut arg = 0u8;
            for step in moves[s].iter().flatten() {
                let from = s - *step as usize;
                if score[from] > best {
                    best = score[from];
                    arg = *step;
                }
            }
            next[s] = best + log_probs.at(frame, states[s].token);
            back[frame * n + s] = arg;
        }
        std::mem::swap(&mut score, &mut next);
    }
    // The path ends in the final blank or the last token.
    let mut s = if n >= 2 && score[n - 2] > score[n - 1] {
        n - 2
    } else {
        n - 1
    };
    let mut path = vec![0; frames];
    for frame in (0..frames).rev() {
        path[frame] = s;
        s -= back[frame * n + s] as usize;
    }
    path
}

fn word_spans(
    log_probs: &LogProbs,
    states: &[State],
    path: &[usize],
    words: usize,
) -> Vec<Option<FrameSpan>> {
    let mut spans: Vec<Option<(usize, usize, f32, usize)>> = vec![None; words];
    for (frame, &s) in path.iter().enumerate() {
        let Some(word) = states[s].word else { continue };
        let p = log_probs.at(frame, states[s].token).exp();
        let span = spans[word].get_or_insert((frame, frame + 1, 0.0, 0));
        span.1 = frame + 1;
        span.2 += p;
        span.3 += 1;
    }
    spans
        .into_iter()
        .map(|s| {
            s.map(|(start, end, sum, count)| FrameSpan {
                start,
                end,
                confidence: sum / count.max(1) as f32,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BLANK: u32 = 0;
    const WB: u32 = 4;
    const TOKENS: CtcTokens = CtcTokens {
        blank: BLANK,
        word_boundary: Some(WB),
    };

    /// Log-probs where each frame's listed token has probability 0.9.
    fn frames(best: &[u32]) -> LogProbs {
        let vocab = 5;
        let mut data = vec![(0.1f32 / 4.0).ln(); best.len() * vocab];
        for (f, &t) in best.iter().enumerate() {
            data[f * vocab + t as usize] = 0.9f32.ln();
        }
        LogProbs {
            data,
            frames: best.len(),
            vocab,
        }
    }

    #[test]
    fn words_get_the_frames_that_spell_them() {
        // blank blank 1 1 blank wb blank 2 3 blank
        let lp = frames(&[0, 0, 1, 1, 0, 4, 0, 2, 3, 0]);
        let spans = align_words(&lp, &[vec![1], vec![2, 3]], TOKENS).unwrap();
        let a = spans[0].unwrap();
        let b = spans[1].unwrap();
        assert_eq!((a.start, a.end), (2, 4));
        assert_eq!((b.start, b.end), (7, 9));
        assert!(a.confidence > 0.8);
    }

    #[test]
    fn the_boundary_token_may_be_skipped() {
        let lp = frames(&[1, 1, 2, 2, 0]);
        let spans = align_words(&lp, &[vec![1], vec![2]], TOKENS).unwrap();
        assert_eq!(spans[0].map(|s| (s.start, s.end)), Some((0, 2)));
        assert_eq!(spans[1].map(|s| (s.start, s.end)), Some((2, 4)));
    }

    #[test]
    fn repeated_tokens_need_a_blank_between() {
        // "1 1" as two words with no boundary token: needs a blank or boundary between.
        let lp = frames(&[1, 0, 1]);
        let tokens = CtcTokens {
            blank: BLANK,
            word_boundary: None,
        };
        let spans = align_words(&lp, &[vec![1], vec![1]], tokens).unwrap();
        assert_eq!(spans[0].map(|s| s.start), Some(0));
        assert_eq!(spans[1].map(|s| s.start), Some(2));
        let err = align_words(&frames(&[1, 1]), &[vec![1], vec![1]], tokens).unwrap_err();
        assert!(matches!(err, CtcError::TooShort { needed: 3, .. }));
    }

    #[test]
    fn empty_words_get_no_span_and_do_not_break_the_path() {
        let lp = frames(&[0, 1, 0, 2, 0]);
        let spans = align_words(&lp, &[vec![1], vec![], vec![2]], TOKENS).unwrap();
        assert!(spans[0].is_some() && spans[1].is_none() && spans[2].is_some());
        assert!(align_words(&lp, &[vec![]], TOKENS).unwrap()[0].is_none());
        assert_eq!(
            align_words(&lp, &[vec![9]], TOKENS).unwrap_err(),
            CtcError::BadToken(9)
        );
    }

    #[test]
    fn greedy_count_collapses_repeats_and_skips_blanks() {
        let lp = frames(&[0, 1, 1, 0, 4, 2, 0, 2]);
        assert_eq!(lp.greedy_token_count(BLANK, Some(WB)), 3);
    }
}
