//! Incremental endpointing for live streams: a voice detector plus the shared
//! [`Segmenter`], fed arbitrary chunks, reporting where utterances start, pause and end.
//!
//! The segmentation rules are the batch ones (`ember_dsp::vad::segment`), with stream
//! settings: shorter padding and silence so a final comes soon after the speaker stops.
//! `Paused` is ours: it fires after a short dip, before the segmenter is sure, so the
//! recogniser can start the decode that will most likely be the final one early.

use ember_dsp::vad::{SegmentEvent, Segmenter, SegmenterConfig, VoiceDetector};
use ember_dsp::SAMPLE_RATE;

/// What the endpointer learned from a chunk, in absolute samples since the session start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEvent {
    /// An utterance is confirmed; its padded start.
    Started { start: usize },
    /// The voice stopped `pause` ago at `voice_end`; the utterance may be over.
    Paused { voice_end: usize },
    /// The utterance is over: `start..end`, padded.
    Ended { start: usize, end: usize },
}

/// Stream endpointing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Frame probability rules and padding; `min_silence_ms` is the endpoint silence.
    pub segmenter: SegmenterConfig,
    /// Dip length after which `Paused` fires.
    pub pause_ms: u32,
}

impl EndpointConfig {
    /// Silero's thresholds with stream timings: `silence_ms` of silence ends an
    /// utterance, 150 ms pads on both sides (+100 ms onset for Silero's late onsets),
    /// utterances over `max_utterance_ms` are split at a quiet point.
    pub fn for_stream(threshold: Option<f32>, silence_ms: u32, max_utterance_ms: u32) -> Self {
        let mut segmenter = SegmenterConfig::silero();
        if let Some(t) = threshold {
            segmenter.threshold = t;
            segmenter.neg_threshold = (t - 0.15).max(0.01);
        }
        segmenter.min_speech_ms = 200;
        segmenter.min_silence_ms = silence_ms;
        segmenter.speech_pad_ms = 150;
        segmenter.onset_pad_ms = 100;
        segmenter.max_speech_ms = max_utterance_ms;
        Self {
            segmenter,
            pause_ms: 96,
        }
    }
}

/// A detector and a segmenter over one stream; `None` detector = every frame is speech
/// (`skip_vad`).
pub struct Endpointer {
    detector: Option<Box<dyn VoiceDetector>>,
    segmenter: Segmenter,
    config: EndpointConfig,
    frame: usize,
    /// Samples not yet scored (less than one frame).
    pending: Vec<f32>,
    /// Samples scored so far.
    scored: usize,
    /// Absolute sample where the current segmenter run began (after a `reset`).
    origin: usize,
    /// End of the last frame at or above `neg_threshold` inside an utterance.
    voice_end: Option<usize>,
    /// `Paused` was reported for the current dip.
    pause_reported: bool,
    /// Sum and count of frame probabilities of the open utterance (the guard's score).
    score: (f32, usize),
}

impl std::fmt::Debug for Endpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpointer")
            .field("scored", &self.scored)
            .field("in_speech", &self.segmenter.in_speech())
            .finish_non_exhaustive()
    }
}

/// Frame size when no detector runs (`skip_vad`): 32 ms, like Silero.
const SKIP_VAD_FRAME: usize = 512;

impl Endpointer {
    pub fn new(detector: Option<Box<dyn VoiceDetector>>, config: EndpointConfig) -> Self {
        let frame = detector
            .as_ref()
            .map_or(SKIP_VAD_FRAME, |d| d.frame_samples().max(1));
        Self {
            segmenter: Segmenter::new(&config.segmenter, frame),
            detector,
            config,
            frame,
            pending: Vec::new(),
            scored: 0,
            origin: 0,
            voice_end: None,
            pause_reported: false,
            score: (0.0, 0),
        }
    }

    /// Samples received so far (scored or pending).
    pub fn received(&self) -> usize {
        self.scored + self.pending.len()
    }

    /// Whether an utterance is open.
    pub fn in_speech(&self) -> bool {
        self.segmenter.in_speech()
    }

    /// Mean speech probability of the open (or just ended) utterance.
    pub fn speech_score(&self) -> f32 {
        if self.score.1 == 0 {
            1.0
        } else {
            self.score.0 / self.score.1 as f32
        }
    }

    /// Scores the new samples; a detector failure is reported as an error string.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<EndpointEvent>, String> {
        self.pending.extend_from_slice(samples);
        let mut events = Vec::new();
        let whole = self.pending.len() / self.frame * self.frame;
        let frames: Vec<f32> = self.pending.drain(..whole).collect();
        for frame in frames.chunks_exact(self.frame) {
            let probability = match self.detector.as_mut() {
                Some(d) => d.speech_probability(frame).map_err(|e| e.to_string())?,
                None => 1.0,
            };
            self.scored += self.frame;
            self.step(probability, &mut events);
        }
        Ok(events)
    }

    fn step(&mut self, probability: f32, events: &mut Vec<EndpointEvent>) {
        let was_open = self.segmenter.in_speech();
        for event in self.segmenter.push(probability) {
            match event {
                SegmentEvent::Started { start } => {
                    self.score = (0.0, 0);
                    self.voice_end = Some(self.scored);
                    self.pause_reported = false;
                    events.push(EndpointEvent::Started {
                        start: self.origin + start,
                    });
                }
                SegmentEvent::Ended(region) => {
                    events.push(EndpointEvent::Ended {
                        start: self.origin + region.start,
                        end: self.origin + region.end,
                    });
                    self.voice_end = None;
                }
            }
        }
        if self.segmenter.in_speech() || was_open {
            self.score.0 += probability;
            self.score.1 += 1;
        }
        if !self.segmenter.in_speech() {
            return;
        }
        let l = &self.config.segmenter;
        if probability >= l.neg_threshold {
            self.voice_end = Some(self.scored);
            self.pause_reported = false;
        } else if let Some(voice_end) = self.voice_end {
            let dip = self.scored - voice_end;
            if !self.pause_reported && dip >= ms_to_samples(self.config.pause_ms) {
                self.pause_reported = true;
                events.push(EndpointEvent::Paused { voice_end });
            }
        }
    }

    /// Closes the open utterance at the end of the received audio (a `final` flush) and
    /// starts a fresh segmentation run; detector state is kept (same audio stream).
    pub fn flush(&mut self) -> Option<EndpointEvent> {
        let base = self.origin;
        let region = self.segmenter.finish(self.scored - base);
        self.origin = self.scored;
        self.voice_end = None;
        self.pause_reported = false;
        region.map(|r| EndpointEvent::Ended {
            start: base + r.start,
            end: base + r.end,
        })
    }

    /// Swaps the detector and settings (a mid-session `session.update`); an open
    /// utterance is dropped from the segmentation and the timeline continues.
    pub fn reconfigure(
        &mut self,
        detector: Option<Box<dyn VoiceDetector>>,
        config: EndpointConfig,
    ) {
        self.frame = detector
            .as_ref()
            .map_or(SKIP_VAD_FRAME, |d| d.frame_samples().max(1));
        self.segmenter = Segmenter::new(&config.segmenter, self.frame);
        self.detector = detector;
        self.config = config;
        self.origin = self.scored;
        self.voice_end = None;
        self.pause_reported = false;
    }

    /// Forgets the open utterance and the detector's state (`stt.state.clear`).
    pub fn clear(&mut self) {
        self.segmenter.finish(self.scored - self.origin);
        self.scored += self.pending.len();
        self.pending.clear();
        self.origin = self.scored;
        self.voice_end = None;
        self.pause_reported = false;
        if let Some(d) = self.detector.as_mut() {
            d.reset();
        }
    }
}

fn ms_to_samples(ms: u32) -> usize {
    (u64::from(ms) * u64::from(SAMPLE_RATE) / 1000) as usize
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ember_dsp::vad::VadError;

    /// Scores a frame as speech when its first sample is non-zero.
    struct Level;
    impl VoiceDetector for Level {
        fn frame_samples(&self) -> usize {
            512
        }
        fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, VadError> {
            Ok(if frame[0] != 0.0 { 0.9 } else { 0.0 })
        }
        fn reset(&mut self) {}
    }

    fn endpointer() -> Endpointer {
        Endpointer::new(
            Some(Box::new(Level)),
            EndpointConfig::for_stream(None, 300, 20_000),
        )
    }

    #[test]
    fn reports_start_pause_and_end_in_absolute_samples() {
        let mut e = endpointer();
        let mut events = Vec::new();
        // 1 s silence, 1 s speech, 1 s silence, fed in odd-sized chunks.
        let audio: Vec<f32> = (0..48_000)
            .map(|i| {
                if (16_000..32_000).contains(&i) {
                    0.5
                } else {
                    0.0
                }
            })
            .collect();
        for chunk in audio.chunks(777) {
            events.extend(e.push(chunk).unwrap());
        }
        assert!(
            matches!(events[0], EndpointEvent::Started { start } if (12_000..16_000).contains(&start)),
            "{events:?}"
        );
        assert!(
            matches!(events[1], EndpointEvent::Paused { voice_end } if (32_000..32_600).contains(&voice_end)),
            "{events:?}"
        );
        let EndpointEvent::Ended { start, end } = events[2] else {
            panic!("{events:?}")
        };
        assert!(
            start < 16_000 && (32_000..36_000).contains(&end),
            "{events:?}"
        );
        assert_eq!(events.len(), 3);
        assert!(!e.in_speech());
        assert!(e.speech_score() > 0.5);
    }

    #[test]
    fn flush_closes_an_open_utterance_and_continues_the_timeline() {
        let mut e = endpointer();
        let speech = vec![0.5f32; 16_000];
        let events = e.push(&speech).unwrap();
        assert!(matches!(events[0], EndpointEvent::Started { .. }));
        let Some(EndpointEvent::Ended { start, end }) = e.flush() else {
            panic!("no flush region")
        };
        assert_eq!(start, 0);
        assert!(end >= 15_872, "{end}");
        let more = e.push(&speech).unwrap();
        assert!(
            matches!(more[0], EndpointEvent::Started { start } if start >= 15_872),
            "{more:?}"
        );
    }

    #[test]
    fn skip_vad_treats_everything_as_speech() {
        let mut e = Endpointer::new(None, EndpointConfig::for_stream(None, 300, 20_000));
        let events = e.push(&vec![0.0f32; 8_000]).unwrap();
        assert!(matches!(events[0], EndpointEvent::Started { start: 0 }));
        assert!(e.in_speech());
    }
}
