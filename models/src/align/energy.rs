//! Word-end refinement by signal energy.
//!
//! A CTC model fires once near the start of each phoneme and then emits blanks, so the
//! path says little about where the last phoneme fades out: a drawn-out final vowel
//! ("stay", "he") ends well after its spike. After alignment each word's end is carried
//! forward over the frames that are still loud relative to that word, up to the next
//! word and at most [`MAX_EXTENSION_MS`].

use super::AlignedWord;

const FRAME_SAMPLES: usize = 160;
const FRAME_MS: u64 = 10;
/// The furthest an end moves.
const MAX_EXTENSION_MS: u64 = 300;
/// A frame still belongs to the word while it is within this many dB of the word's
/// loudest frame …
const BELOW_PEAK_DB: f32 = 35.0;
/// … and this far above the window's noise floor (its 10th-percentile frame).
const ABOVE_FLOOR_DB: f32 = 10.0;

/// Frame levels (dB) of a window that starts at `offset_ms` in the audio.
pub struct Levels {
    db: Vec<f32>,
    offset_ms: u64,
    floor_db: f32,
}

impl Levels {
    pub fn new(samples: &[f32], offset_ms: u64) -> Self {
        let db: Vec<f32> = samples
            .chunks(FRAME_SAMPLES)
            .map(|frame| {
                let power = frame.iter().map(|s| s * s).sum::<f32>() / frame.len().max(1) as f32;
                10.0 * (power + 1e-12).log10()
            })
            .collect();
        let mut sorted = db.clone();
        sorted.sort_by(f32::total_cmp);
        let floor_db = sorted.get(sorted.len() / 10).copied().unwrap_or(-120.0);
        Self {
            db,
            offset_ms,
            floor_db,
        }
    }

    fn frame(&self, ms: u64) -> Option<usize> {
        let index = (ms.checked_sub(self.offset_ms)? / FRAME_MS) as usize;
        (index < self.db.len()).then_some(index)
    }

    fn peak(&self, start_ms: u64, end_ms: u64) -> Option<f32> {
        let (a, b) = (self.frame(start_ms)?, self.frame(end_ms.max(start_ms))?);
        self.db[a..=b].iter().copied().reduce(f32::max)
    }

    /// Carries each placed word's end forward over loud frames.
    pub fn extend_ends(&self, words: &mut [Option<AlignedWord>]) {
        let starts: Vec<Option<u64>> = words.iter().map(|w| w.map(|w| w.start_ms)).collect();
        for (index, slot) in words.iter_mut().enumerate() {
            let Some(word) = slot else { continue };
            let Some(peak) = self.peak(word.start_ms, word.end_ms) else {
                continue;
            };
            let threshold = (peak - BELOW_PEAK_DB).max(self.floor_db + ABOVE_FLOOR_DB);
            let limit = starts[index + 1..]
                .iter()
                .flatten()
                .next()
                .copied()
                .unwrap_or(u64::MAX)
                .min(word.end_ms + MAX_EXTENSION_MS);
            let mut end = word.end_ms;
            while end + FRAME_MS <= limit {
                match self.frame(end) {
                    Some(f) if self.db[f] > threshold => end += FRAME_MS,
                    _ => break,
                }
            }
            word.end_ms = end;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ends_follow_a_fading_vowel_but_stop_at_silence_and_the_next_word() {
        // 0-300 ms loud, 300-500 ms fading (-20 dB), then near silence.
        let mut samples = vec![0.5f32; 4800];
        samples.extend(vec![0.05f32; 3200]);
        samples.extend(vec![0.0001f32; 8000]);
        let levels = Levels::new(&samples, 1000);
        let word = |s, e| {
            Some(AlignedWord {
                start_ms: s,
                end_ms: e,
                confidence: 1.0,
                interpolated: false,
            })
        };
        let mut words = [word(1000, 1100)];
        levels.extend_ends(&mut words);
        assert_eq!(words[0].map(|w| w.end_ms), Some(1400));
        let mut words = [word(1000, 1100), word(1250, 1300)];
        levels.extend_ends(&mut words);
        assert_eq!(words[0].map(|w| w.end_ms), Some(1250));
    }
}
