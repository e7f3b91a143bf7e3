//! Packing speech regions into decode windows, and mapping window times back.
//!
//! Whisper decodes 30 s at a time. The long-form pipeline sends it only speech: the VAD's
//! regions are laid end to end into windows of at most `max_len` samples, so silence
//! between regions never reaches the decoder, and each window is one encoder pass that can
//! run on its own worker. A window remembers where each piece came from, so times the
//! decoder reports inside the window map back to the source audio exactly.

use std::ops::Range;

/// One stretch of source audio placed in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPiece {
    /// First sample in the source audio.
    pub source_start: usize,
    /// First sample in the window.
    pub window_start: usize,
    /// Length in samples.
    pub len: usize,
}

/// Pieces of source audio decoded together, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AudioWindow {
    pub pieces: Vec<WindowPiece>,
}

impl AudioWindow {
    /// Samples in the window.
    pub fn len(&self) -> usize {
        self.pieces.last().map_or(0, |p| p.window_start + p.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The window's audio, copied out of the source (at most `max_len` samples).
    pub fn gather(&self, source: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len());
        for piece in &self.pieces {
            let end = (piece.source_start + piece.len).min(source.len());
            out.extend_from_slice(&source[piece.source_start.min(end)..end]);
        }
        out
    }

    /// Maps a sample position inside the window to the source. Positions past the end
    /// map to the end of the last piece.
    pub fn to_source(&self, window_sample: usize) -> usize {
        self.to_source_within(window_sample, window_sample)
    }

    /// Maps `window_sample` as a position of the piece that holds `anchor`, clamped to
    /// that piece. Whisper often stretches the end of a segment's last word up to the next
    /// speech; a word (or segment end) is mapped within the piece where it starts so it
    /// can never reach across the silence that the window left out.
    pub fn to_source_within(&self, anchor: usize, window_sample: usize) -> usize {
        let index = self
            .pieces
            .partition_point(|p| p.window_start <= anchor)
            .saturating_sub(1);
        match self.pieces.get(index) {
            Some(piece) => {
                piece.source_start
                    + window_sample
                        .saturating_sub(piece.window_start)
                        .min(piece.len)
            }
            None => 0,
        }
    }

    /// [`Self::to_source_within`] in milliseconds at `sample_rate`.
    pub fn to_source_ms_within(&self, anchor_ms: u64, window_ms: u64, sample_rate: u32) -> u64 {
        let rate = u64::from(sample_rate);
        let sample = |ms: u64| usize::try_from(ms * rate / 1000).unwrap_or(usize::MAX);
        self.to_source_within(sample(anchor_ms), sample(window_ms)) as u64 * 1000 / rate
    }

    /// [`Self::to_source`] in milliseconds at `sample_rate`.
    pub fn to_source_ms(&self, window_ms: u64, sample_rate: u32) -> u64 {
        self.to_source_ms_within(window_ms, window_ms, sample_rate)
    }

    /// The source span from the first piece's start to the last piece's end.
    pub fn source_span(&self) -> Range<usize> {
        match (self.pieces.first(), self.pieces.last()) {
            (Some(first), Some(last)) => first.source_start..last.source_start + last.len,
            _ => 0..0,
        }
    }
}

/// Lays sorted, non-overlapping regions end to end into windows of at most `max_len`
/// samples. A region is never split across windows unless it alone is longer than
/// `max_len` (the segmenter splits long speech at quiet points first; this is the
/// backstop), in which case it is cut into `max_len` pieces.
pub fn pack_windows(regions: &[Range<usize>], max_len: usize) -> Vec<AudioWindow> {
    let max_len = max_len.max(1);
    let mut windows = Vec::new();
    let mut current = AudioWindow::default();
    for region in regions.iter().filter(|r| r.end > r.start) {
        let mut start = region.start;
        while start < region.end {
            let len = (region.end - start).min(max_len);
            if current.len() + len > max_len {
                windows.push(std::mem::take(&mut current));
            }
            let window_start = current.len();
            current.pieces.push(WindowPiece {
                source_start: start,
                window_start,
                len,
            });
            start += len;
        }
    }
    if !current.is_empty() {
        windows.push(current);
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_pack_greedily_without_splitting() {
        let windows = pack_windows(&[0..10, 50..60, 100..115, 200..205], 30);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].len(), 20);
        assert_eq!(windows[1].len(), 20);
        assert_eq!(windows[1].source_span(), 100..205);
    }

    #[test]
    fn long_regions_are_cut_at_the_limit() {
        let windows = pack_windows(std::slice::from_ref(&(0..70)), 30);
        let lens: Vec<usize> = windows.iter().map(AudioWindow::len).collect();
        assert_eq!(lens, vec![30, 30, 10]);
        assert_eq!(windows[2].pieces[0].source_start, 60);
    }

    #[test]
    fn times_map_back_piece_by_piece() {
        let window = &pack_windows(&[100..110, 500..520], 100)[0];
        assert_eq!(window.to_source(0), 100);
        assert_eq!(window.to_source(9), 109);
        assert_eq!(window.to_source(10), 500);
        assert_eq!(window.to_source(29), 519);
        assert_eq!(window.to_source(1_000), 520);
        // An end past the first piece stays in the piece where its span started.
        assert_eq!(window.to_source_within(5, 25), 110);
        assert_eq!(window.to_source_within(12, 25), 515);
        assert_eq!(window.to_source_within(12, 3), 500);
        let source: Vec<f32> = (0..600).map(|i| i as f32).collect();
        let audio = window.gather(&source);
        assert_eq!(audio.len(), 30);
        assert_eq!((audio[9], audio[10]), (109.0, 500.0));
    }

    #[test]
    fn milliseconds_map_at_the_sample_rate() {
        // 1 s of speech at 10 s, then 1 s at 20 s, at 16 kHz.
        let window = &pack_windows(&[160_000..176_000, 320_000..336_000], 480_000)[0];
        assert_eq!(window.to_source_ms(500, 16_000), 10_500);
        assert_eq!(window.to_source_ms(1_500, 16_000), 20_500);
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(pack_windows(&[], 30).is_empty());
        assert!(pack_windows(std::slice::from_ref(&(5..5)), 30).is_empty());
        assert_eq!(AudioWindow::default().to_source(3), 0);
    }
}
