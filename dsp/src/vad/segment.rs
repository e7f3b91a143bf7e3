//! Segmentation: frame speech probabilities → padded speech regions.
//!
//! [`Segmenter`] is the streaming state machine (push one probability per frame, get
//! regions as they close), so the live-stream path can endpoint incrementally;
//! [`segment`] runs it over a whole file, so both paths cut audio identically.
//!
//! Rules, in the order they apply:
//! - **Hysteresis.** Speech starts at a frame whose probability is ≥ `threshold`. It ends
//!   at the first frame of a run of frames below `neg_threshold` that lasts
//!   `min_silence_ms`; frames in between the two thresholds neither start speech nor
//!   interrupt a silence run, and a frame ≥ `threshold` cancels the run (Silero's rules).
//! - **Minimum speech.** Regions shorter than `min_speech_ms` (before padding) are dropped.
//! - **Padding.** Each region grows by `speech_pad_ms` at its end and
//!   `speech_pad_ms + onset_pad_ms` at its start (detectors notice onsets late).
//! - **Merging.** Regions whose padding would overlap are one region: a silence shorter
//!   than both paddings together never ends speech (the effective minimum silence is
//!   `max(min_silence_ms, start pad + end pad)`). Two short bursts close together are thus
//!   judged together against `min_speech_ms`.
//! - **Maximum length.** A region that would exceed `max_speech_ms` *including padding* is
//!   split at the quietest point of its second half (lowest smoothed probability; the middle
//!   of the longest quiet stretch), always between frames. The two pieces meet halfway
//!   across the quiet gap, so they never overlap.
//!
//! Regions come out sorted, disjoint and clamped to the audio. Times are samples at 16 kHz.

use crate::SAMPLE_RATE;

/// Frames on each side of a candidate split point averaged into its score.
const SPLIT_SMOOTHING_FRAMES: usize = 2;
/// Split candidates scoring within this of the quietest one count as equally quiet.
const SPLIT_TOLERANCE: f32 = 0.05;

/// How frame probabilities become regions; see the module docs for the rules. The names
/// mirror Silero's `get_speech_timestamps` (what `/v1/audio/vad` accepts as overrides).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmenterConfig {
    /// Speech starts at a frame with at least this probability.
    pub threshold: f32,
    /// Speech ends only after frames stay below this (≤ `threshold`) for `min_silence_ms`.
    pub neg_threshold: f32,
    /// Shorter regions (before padding) are dropped as clicks and breaths.
    pub min_speech_ms: u32,
    /// Shorter pauses stay inside a region.
    pub min_silence_ms: u32,
    /// Padding added before and after each region.
    pub speech_pad_ms: u32,
    /// Extra padding before each region, on top of `speech_pad_ms`, for the detector's
    /// onset latency.
    pub onset_pad_ms: u32,
    /// Longest region, padding included; longer speech is split at a quiet point. 0 = no
    /// limit.
    pub max_speech_ms: u32,
}

impl SegmenterConfig {
    /// Defaults for Silero's probabilities.
    ///
    /// - `threshold` 0.5 / `neg_threshold` 0.35: Silero's own (neg = threshold − 0.15).
    /// - `min_speech_ms` 250: Silero's; a single word is longer.
    /// - `min_silence_ms` 500: Silero's 100 ms cuts between words, and the pieces are packed
    ///   end to end for Whisper, which then loses the pauses it uses for punctuation and
    ///   segment ends; faster-whisper's 2,000 ms keeps long silences the decoder
    ///   hallucinates in. Half a second separates sentences, not words.
    /// - `speech_pad_ms` 200, `onset_pad_ms` 100: on the shared English clips Silero's raw
    ///   onsets came 0–30 ms after the energy onset but up to 140 ms (median 80) after the
    ///   first word of the forced alignments (soft starts score low), while its raw ends
    ///   were already late (median +90 ms). With 300 ms before and 200 ms after, no start
    ///   or end of those clips was cut (`accuracy_table` in `models/tests/vad.rs`).
    /// - `max_speech_ms` 30,000: one Whisper window, so a region never has to be cut
    ///   blindly when windows are packed.
    pub fn silero() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 250,
            min_silence_ms: 500,
            speech_pad_ms: 200,
            onset_pad_ms: 100,
            max_speech_ms: 30_000,
        }
    }

    /// Defaults for WebRTC's 0/1 decisions: both thresholds 0.5 (no hysteresis band exists),
    /// a longer `min_speech_ms` (300) because WebRTC fires on short noise bursts, and the
    /// same silence, padding and length limits as Silero. WebRTC's decisions already carry a
    /// hangover, so its offsets are late rather than early; no onset padding beyond
    /// `speech_pad_ms` is needed.
    pub fn webrtc() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.5,
            min_speech_ms: 300,
            min_silence_ms: 500,
            speech_pad_ms: 200,
            onset_pad_ms: 0,
            max_speech_ms: 30_000,
        }
    }
}

impl Default for SegmenterConfig {
    /// [`SegmenterConfig::silero`].
    fn default() -> Self {
        Self::silero()
    }
}

/// A stretch of speech, in samples at 16 kHz: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpeechRegion {
    pub start: usize,
    pub end: usize,
}

impl SpeechRegion {
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn start_ms(&self) -> u64 {
        samples_to_ms(self.start)
    }

    pub fn end_ms(&self) -> u64 {
        samples_to_ms(self.end)
    }

    pub fn duration_ms(&self) -> u64 {
        samples_to_ms(self.len())
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SAMPLE_RATE)
}

fn ms_to_samples(ms: u32) -> usize {
    (u64::from(ms) * u64::from(SAMPLE_RATE) / 1000) as usize
}

/// What a [`Segmenter`] learned from a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentEvent {
    /// Speech has lasted `min_speech_ms`: a region is open and will be reported. `start` is
    /// its final padded start.
    Started { start: usize },
    /// A region closed (silence lasted long enough, or it reached `max_speech_ms`).
    Ended(SpeechRegion),
}

/// The limits of a [`SegmenterConfig`] in frames and samples.
#[derive(Debug, Clone)]
struct Limits {
    frame: usize,
    threshold: f32,
    neg_threshold: f32,
    min_speech: usize,
    min_silence: usize,
    pad_start: usize,
    pad_end: usize,
    /// Longest unpadded region, in samples.
    max_raw: Option<usize>,
}

impl Limits {
    fn new(config: &SegmenterConfig, frame_samples: usize) -> Self {
        let frame = frame_samples.max(1);
        let pad_start = ms_to_samples(config.speech_pad_ms.saturating_add(config.onset_pad_ms));
        let pad_end = ms_to_samples(config.speech_pad_ms);
        let max_raw = (config.max_speech_ms > 0).then(|| {
            ms_to_samples(config.max_speech_ms)
                .saturating_sub(pad_start + pad_end + frame)
                .max(frame)
        });
        Self {
            frame,
            threshold: config.threshold,
            neg_threshold: config.neg_threshold.min(config.threshold),
            min_speech: ms_to_samples(config.min_speech_ms),
            min_silence: ms_to_samples(config.min_silence_ms).max(pad_start + pad_end),
            pad_start,
            pad_end,
            max_raw,
        }
    }
}

/// The region being read.
#[derive(Debug, Clone)]
struct OpenRegion {
    start_frame: usize,
    /// First frame of the current run below `neg_threshold`, if one is going on.
    silence_from: Option<usize>,
    /// `Started` was emitted.
    confirmed: bool,
    /// Probabilities from `start_frame` on, for choosing split points (only the first
    /// one when there is no length limit).
    probs: Vec<f32>,
}

/// Streaming segmentation: push one probability per frame, in order.
#[derive(Debug, Clone)]
pub struct Segmenter {
    limits: Limits,
    /// Frames pushed so far.
    frames: usize,
    open: Option<OpenRegion>,
    /// Padded starts never go below this: the end of the last region, or a split point.
    floor: usize,
}

impl Segmenter {
    /// A segmenter for a detector with `frame_samples`-sample frames.
    pub fn new(config: &SegmenterConfig, frame_samples: usize) -> Self {
        Self {
            limits: Limits::new(config, frame_samples),
            frames: 0,
            open: None,
            floor: 0,
        }
    }

    /// Samples covered by the frames pushed so far.
    pub fn samples_seen(&self) -> usize {
        self.frames * self.limits.frame
    }

    /// Whether a region that will be reported is open (a `Started` came and no `Ended` yet).
    pub fn in_speech(&self) -> bool {
        self.open.as_ref().is_some_and(|r| r.confirmed)
    }

    /// Takes the next frame's probability; returns what it decided (usually nothing; at
    /// most an `Ended` and the next `Started`).
    pub fn push(&mut self, probability: f32) -> Vec<SegmentEvent> {
        let mut events = Vec::new();
        let frame = self.frames;
        self.frames += 1;
        self.step(frame, probability, &mut events);
        events
    }

    /// Ends the stream at `total_samples`: closes the open region (if it is long enough),
    /// clamped to the audio, and makes the segmenter ready for a new stream.
    pub fn finish(&mut self, total_samples: usize) -> Option<SpeechRegion> {
        let open = self.open.take();
        let frames = std::mem::take(&mut self.frames);
        let floor = std::mem::take(&mut self.floor);
        let region = open?;
        let l = &self.limits;
        let end_frame = region.silence_from.unwrap_or(frames);
        let start = (region.start_frame * l.frame).min(total_samples);
        let end = (end_frame * l.frame).min(total_samples);
        // A region already announced by `Started` is kept even if the audio ends inside
        // its last (zero-padded) frame and clamping makes it shorter than the minimum.
        let min_len = if region.confirmed {
            1
        } else {
            l.min_speech.max(1)
        };
        if end.saturating_sub(start) < min_len {
            return None;
        }
        Some(SpeechRegion {
            start: start.saturating_sub(l.pad_start).max(floor),
            end: (end + l.pad_end).min(total_samples),
        })
    }

    fn step(&mut self, frame: usize, p: f32, events: &mut Vec<SegmentEvent>) {
        let l = &self.limits;
        let Some(region) = self.open.as_mut() else {
            if p >= l.threshold {
                self.open = Some(OpenRegion {
                    start_frame: frame,
                    silence_from: None,
                    confirmed: false,
                    probs: vec![p],
                });
                self.confirm(frame, events);
            }
            return;
        };
        if l.max_raw.is_some() {
            region.probs.push(p);
        }
        if p >= l.threshold {
            region.silence_from = None;
        } else if p < l.neg_threshold && region.silence_from.is_none() {
            region.silence_from = Some(frame);
        }
        if let Some(silence_from) = region.silence_from {
            if (frame + 1 - silence_from) * l.frame >= l.min_silence {
                self.close(silence_from, None, events);
                return;
            }
        } else {
            self.confirm(frame, events);
        }
        let Some(region) = self.open.as_ref() else {
            return;
        };
        if let Some(max_raw) = self.limits.max_raw {
            if (frame + 1 - region.start_frame) * self.limits.frame > max_raw {
                self.split(frame, events);
            }
        }
    }

    /// Emits `Started` once the open region, through `frame`, is long enough.
    fn confirm(&mut self, frame: usize, events: &mut Vec<SegmentEvent>) {
        let l = &self.limits;
        let floor = self.floor;
        if let Some(region) = self.open.as_mut() {
            if !region.confirmed && (frame + 1 - region.start_frame) * l.frame >= l.min_speech {
                region.confirmed = true;
                let start = (region.start_frame * l.frame)
                    .saturating_sub(l.pad_start)
                    .max(floor);
                events.push(SegmentEvent::Started { start });
            }
        }
    }

    /// Closes the open region at `end_frame` (exclusive); `limit` caps its padded end (a
    /// split point).
    fn close(&mut self, end_frame: usize, limit: Option<usize>, events: &mut Vec<SegmentEvent>) {
        let Some(region) = self.open.take() else {
            return;
        };
        let l = &self.limits;
        let start = region.start_frame * l.frame;
        let end = end_frame * l.frame;
        if end.saturating_sub(start) < l.min_speech.max(1) {
            return;
        }
        let padded = SpeechRegion {
            start: start.saturating_sub(l.pad_start).max(self.floor),
            end: (end + l.pad_end)
                .min(self.frames * l.frame)
                .min(limit.unwrap_or(usize::MAX)),
        };
        if !region.confirmed {
            events.push(SegmentEvent::Started {
                start: padded.start,
            });
        }
        events.push(SegmentEvent::Ended(padded));
        self.floor = self.floor.max(padded.end);
    }

    /// The open region is too long at `frame`: ends it at the quietest point of its second
    /// half and reopens the rest, if it holds speech.
    fn split(&mut self, frame: usize, events: &mut Vec<SegmentEvent>) {
        let Some(region) = self.open.as_ref() else {
            return;
        };
        let l = &self.limits;
        let base = region.start_frame;
        let probs = region.probs.clone();
        let max_frames = l.max_raw.unwrap_or(usize::MAX) / l.frame;
        let cut = base + quietest_boundary(&probs, max_frames.div_ceil(2).max(1));
        let end_frame = base
            + 1
            + probs[..cut - base]
                .iter()
                .rposition(|&p| p >= l.neg_threshold)
                .unwrap_or(0);
        let restart = probs[cut - base..]
            .iter()
            .position(|&p| p >= l.threshold)
            .map(|i| cut + i);
        let boundary = restart.map(|s| (end_frame + s) * l.frame / 2);
        self.close(end_frame, boundary, events);
        // Whether or not the first piece was long enough, the second starts past the cut.
        self.open = None;
        self.floor = self.floor.max(boundary.unwrap_or(0));
        if let Some(restart) = restart {
            // Replaying cannot split again (the rest is at most half the limit) and cannot
            // close (the same frames did not close the longer region).
            for (i, &p) in probs.iter().enumerate().skip(restart - base) {
                self.step(base + i, p, events);
            }
        }
        debug_assert!(self.frames == frame + 1);
    }
}

/// The boundary (index into `probs`, splitting before that frame) in `min_index..len` where
/// the smoothed probability is lowest; the middle of the longest run of near-lowest scores.
fn quietest_boundary(probs: &[f32], min_index: usize) -> usize {
    let len = probs.len();
    let lo = min_index.min(len.saturating_sub(1)).max(1);
    if lo >= len {
        return len;
    }
    let scores: Vec<f32> = (lo..len)
        .map(|k| {
            let window = &probs
                [k.saturating_sub(SPLIT_SMOOTHING_FRAMES)..(k + SPLIT_SMOOTHING_FRAMES).min(len)];
            window.iter().sum::<f32>() / window.len() as f32
        })
        .collect();
    let best = scores.iter().copied().fold(f32::INFINITY, f32::min);
    let quiet = |s: f32| s <= best + SPLIT_TOLERANCE;
    let (mut run_start, mut best_run) = (None, (0, 0));
    for (i, &s) in scores.iter().enumerate() {
        match (quiet(s), run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                if i - start > best_run.1 - best_run.0 {
                    best_run = (start, i);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        if scores.len() - start > best_run.1 - best_run.0 {
            best_run = (start, scores.len());
        }
    }
    lo + (best_run.0 + best_run.1) / 2
}

/// Segments a whole file: `probabilities` from [`super::frame_probabilities`] (frame `i`
/// starts at sample `i * frame_samples`), `total_samples` the audio length (the last frame
/// may be zero-padded past it).
pub fn segment(
    probabilities: &[f32],
    frame_samples: usize,
    total_samples: usize,
    config: &SegmenterConfig,
) -> Vec<SpeechRegion> {
    let mut segmenter = Segmenter::new(config, frame_samples);
    let mut regions = Vec::new();
    for &p in probabilities {
        for event in segmenter.push(p) {
            if let SegmentEvent::Ended(region) = event {
                regions.push(region);
            }
        }
    }
    regions.extend(segmenter.finish(total_samples));
    regions
        .into_iter()
        .filter_map(|r| {
            let end = r.end.min(total_samples);
            (r.start < end).then_some(SpeechRegion {
                start: r.start,
                end,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 ms frames, so frame counts read as centiseconds.
    const F: usize = 160;

    fn bare() -> SegmenterConfig {
        SegmenterConfig {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 0,
            min_silence_ms: 100,
            speech_pad_ms: 0,
            onset_pad_ms: 0,
            max_speech_ms: 0,
        }
    }

    /// `(probability, frames)` runs → one probability per frame.
    fn runs(spec: &[(f32, usize)]) -> Vec<f32> {
        spec.iter()
            .flat_map(|&(p, n)| std::iter::repeat_n(p, n))
            .collect()
    }

    fn frames(regions: &[SpeechRegion]) -> Vec<(usize, usize)> {
        regions.iter().map(|r| (r.start / F, r.end / F)).collect()
    }

    fn seg(probs: &[f32], config: &SegmenterConfig) -> Vec<SpeechRegion> {
        segment(probs, F, probs.len() * F, config)
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(seg(&[], &bare()).is_empty());
        assert!(seg(&[0.0; 500], &bare()).is_empty());
        assert!(seg(&[0.49; 500], &bare()).is_empty());
        assert!(segment(&[0.9; 10], F, 0, &bare()).is_empty());
        let mut s = Segmenter::new(&bare(), F);
        assert_eq!(s.finish(0), None);
    }

    #[test]
    fn hysteresis_keeps_speech_between_the_thresholds() {
        let probs = runs(&[(0.0, 10), (0.6, 1), (0.4, 30), (0.2, 20), (0.0, 20)]);
        assert_eq!(frames(&seg(&probs, &bare())), vec![(10, 41)]);
        // Hovering between the thresholds never starts speech.
        assert!(seg(&runs(&[(0.4, 100)]), &bare()).is_empty());
    }

    #[test]
    fn only_a_frame_above_threshold_interrupts_a_silence_run() {
        // The 0.4 frames do not reset the silence that began at frame 50.
        let probs = runs(&[(0.9, 50), (0.2, 5), (0.4, 3), (0.2, 5), (0.0, 20)]);
        assert_eq!(frames(&seg(&probs, &bare())), vec![(0, 50)]);
        // A 0.6 frame does: the silence restarts after it.
        let probs = runs(&[(0.9, 50), (0.2, 5), (0.6, 1), (0.2, 5), (0.0, 20)]);
        assert_eq!(frames(&seg(&probs, &bare())), vec![(0, 56)]);
    }

    #[test]
    fn short_bursts_are_dropped() {
        let config = SegmenterConfig {
            min_speech_ms: 250,
            ..bare()
        };
        let probs = runs(&[(0.0, 10), (0.9, 24), (0.0, 50), (0.9, 25), (0.0, 50)]);
        assert_eq!(frames(&seg(&probs, &config)), vec![(84, 109)]);
    }

    #[test]
    fn short_pauses_stay_inside_a_region() {
        let config = SegmenterConfig {
            min_silence_ms: 500,
            ..bare()
        };
        let probs = runs(&[
            (0.9, 100),
            (0.0, 49),
            (0.9, 100),
            (0.0, 50),
            (0.9, 10),
            (0.0, 60),
        ]);
        assert_eq!(frames(&seg(&probs, &config)), vec![(0, 249), (299, 309)]);
    }

    #[test]
    fn padding_is_asymmetric_and_clamped_to_the_audio() {
        let config = SegmenterConfig {
            speech_pad_ms: 50,
            onset_pad_ms: 50,
            ..bare()
        };
        let probs = runs(&[(0.0, 100), (0.9, 100), (0.0, 100)]);
        let regions = seg(&probs, &config);
        assert_eq!(
            regions,
            vec![SpeechRegion {
                start: 100 * F - 1_600,
                end: 200 * F + 800
            }]
        );
        // At the edges the padding stops at the audio, also when the last frame is partial.
        let probs = runs(&[(0.0, 2), (0.9, 20)]);
        let total = 21 * F + 7;
        assert_eq!(
            segment(&probs, F, total, &config),
            vec![SpeechRegion {
                start: 0,
                end: total
            }]
        );
    }

    #[test]
    fn regions_whose_padding_would_overlap_merge() {
        let config = SegmenterConfig {
            speech_pad_ms: 200,
            min_speech_ms: 250,
            ..bare()
        };
        // 300 ms apart: shorter than both pads (400 ms), so one region, and the two 150 ms
        // bursts pass the 250 ms minimum together.
        let probs = runs(&[(0.0, 100), (0.9, 15), (0.0, 30), (0.9, 15), (0.0, 100)]);
        let regions = seg(&probs, &config);
        assert_eq!(regions.len(), 1);
        assert_eq!(frames(&regions), vec![(80, 180)]);
        // 500 ms apart: two regions, padded, not touching.
        let probs = runs(&[(0.0, 100), (0.9, 30), (0.0, 50), (0.9, 30), (0.0, 100)]);
        assert_eq!(frames(&seg(&probs, &config)), vec![(80, 150), (160, 230)]);
    }

    #[test]
    fn long_speech_splits_at_the_quietest_point() {
        let config = SegmenterConfig {
            max_speech_ms: 8_000,
            min_silence_ms: 500,
            ..bare()
        };
        // 10 s of speech with a 100 ms dip at 6.0 s, too short to end the region.
        let probs = runs(&[(0.9, 300), (0.6, 100), (0.9, 200), (0.1, 10), (0.9, 390)]);
        assert_eq!(frames(&seg(&probs, &config)), vec![(0, 600), (610, 1000)]);
        // The dip is in the first half: split in the second half instead, at its least
        // confident stretch (the 0.6 run).
        let probs = runs(&[(0.9, 100), (0.1, 10), (0.9, 390), (0.6, 100), (0.9, 400)]);
        let regions = seg(&probs, &config);
        assert_eq!(regions.len(), 2);
        let cut = regions[0].end / F;
        assert!((540..=560).contains(&cut), "{regions:?}");
        assert_eq!(regions[0].end, regions[1].start);
        assert_eq!(regions[1].end, 1000 * F);
    }

    #[test]
    fn uniform_speech_splits_into_adjacent_pieces_within_the_limit() {
        let config = SegmenterConfig {
            max_speech_ms: 3_000,
            speech_pad_ms: 100,
            onset_pad_ms: 50,
            ..bare()
        };
        let probs = runs(&[(0.0, 100), (0.9, 1_000), (0.0, 100)]);
        let regions = seg(&probs, &config);
        assert!(regions.len() >= 4, "{regions:?}");
        assert_eq!(regions[0].start, 100 * F - 2_400);
        assert_eq!(regions.last().expect("regions").end, 1_100 * F + 1_600);
        for pair in regions.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "{regions:?}");
        }
        for r in &regions {
            assert!(r.duration_ms() <= 3_000, "{r:?}");
        }
    }

    #[test]
    fn streaming_events_match_the_offline_regions() {
        let config = SegmenterConfig {
            min_speech_ms: 100,
            speech_pad_ms: 50,
            max_speech_ms: 2_000,
            ..bare()
        };
        let probs = runs(&[
            (0.0, 30),
            (0.9, 5),
            (0.0, 30),
            (0.8, 300),
            (0.0, 40),
            (0.7, 50),
        ]);
        let mut s = Segmenter::new(&config, F);
        let mut started = Vec::new();
        let mut ended = Vec::new();
        for (i, &p) in probs.iter().enumerate() {
            for event in s.push(p) {
                match event {
                    SegmentEvent::Started { start } => {
                        assert_eq!(started.len(), ended.len(), "Started twice");
                        assert!(start <= (i + 1) * F);
                        started.push(start);
                    }
                    SegmentEvent::Ended(r) => {
                        assert_eq!(started.len(), ended.len() + 1, "Ended before Started");
                        assert!(r.end <= (i + 1) * F, "region ends in the future");
                        ended.push(r);
                    }
                }
            }
        }
        assert!(s.in_speech());
        ended.extend(s.finish(probs.len() * F));
        assert!(!s.in_speech());
        assert_eq!(ended, seg(&probs, &config));
        assert_eq!(started, ended.iter().map(|r| r.start).collect::<Vec<_>>());
        assert!(ended.len() >= 3);
    }

    #[test]
    fn regions_are_sorted_disjoint_and_within_limits_for_any_input() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32
        };
        for round in 0..200 {
            // Sticky random walk, so there are runs of speech and silence.
            let len = 50 + round * 13;
            let mut p = 0.0;
            let probs: Vec<f32> = (0..len)
                .map(|_| {
                    if next() < 0.08 {
                        p = next();
                    }
                    p
                })
                .collect();
            let config = SegmenterConfig {
                min_speech_ms: (round % 4) as u32 * 100,
                min_silence_ms: (round % 3) as u32 * 150,
                speech_pad_ms: (round % 5) as u32 * 60,
                onset_pad_ms: (round % 2) as u32 * 40,
                max_speech_ms: [0, 1_000, 2_500][round % 3],
                ..bare()
            };
            let total = len * F - (round % F);
            let regions = segment(&probs, F, total, &config);
            for r in &regions {
                assert!(r.start < r.end && r.end <= total, "{r:?} {config:?}");
                if config.max_speech_ms > 0 {
                    assert!(
                        r.duration_ms() <= u64::from(config.max_speech_ms),
                        "{r:?} {config:?}"
                    );
                }
            }
            for pair in regions.windows(2) {
                assert!(pair[0].end <= pair[1].start, "{regions:?} {config:?}");
            }
        }
    }

    #[test]
    fn region_helpers_convert_to_milliseconds() {
        let r = SpeechRegion {
            start: 16_000,
            end: 40_000,
        };
        assert_eq!(
            (r.start_ms(), r.end_ms(), r.duration_ms()),
            (1_000, 2_500, 1_500)
        );
        assert_eq!(r.range(), 16_000..40_000);
        assert!(!r.is_empty());
    }
}
