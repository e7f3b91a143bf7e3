//! Voice-activity detection: the [`VoiceDetector`] trait every detector implements (WebRTC
//! here, Silero in `ember-models`), the frame loop [`frame_probabilities`], and the
//! segmentation that turns frame probabilities into padded [`SpeechRegion`]s
//! ([`Segmenter`] for streams, [`segment()`] for whole files).
//!
//! Detectors only score fixed-size frames of 16 kHz audio; every decision about where speech
//! starts and ends lives in [`segment`](mod@segment), so the HTTP path and the live-stream
//! path cut audio the same way whatever the detector.

pub mod segment;
pub mod webrtc;

pub use segment::{segment, SegmentEvent, Segmenter, SegmenterConfig, SpeechRegion};
pub use webrtc::{WebrtcMode, WebrtcVad};

/// Why a detector could not score a frame.
#[derive(Debug, thiserror::Error)]
pub enum VadError {
    /// The caller passed a frame of the wrong size (detectors score fixed-size frames).
    #[error("a {detector} VAD frame must have {expected} samples at 16 kHz; got {got}")]
    FrameLength {
        detector: &'static str,
        expected: usize,
        got: usize,
    },
    /// The detector's runtime failed (e.g. ONNX Runtime for Silero).
    #[error("{detector} VAD failed: {detail}")]
    Inference {
        detector: &'static str,
        detail: String,
    },
}

/// A frame-wise voice-activity detector over 16 kHz mono audio.
///
/// Detectors are stateful (recurrent state, adaptive noise models): feed frames in order
/// and call [`reset`](Self::reset) between unrelated streams. `Send` so a detector can be
/// pooled and handed to whichever blocking thread serves the next file.
pub trait VoiceDetector: Send {
    /// Samples per frame at 16 kHz (Silero 512 = 32 ms, WebRTC 480 = 30 ms).
    fn frame_samples(&self) -> usize;

    /// The probability that `frame` (exactly [`frame_samples`](Self::frame_samples) samples,
    /// nominally in −1..1) contains speech, in 0..=1. Detectors without a score return 0 or 1.
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, VadError>;

    /// Forgets everything seen so far, so the next frame starts a new stream.
    fn reset(&mut self);
}

/// Scores `samples` frame by frame, zero-padding the last partial frame; one probability per
/// frame, frame `i` covering samples `i * frame_samples ..`. Does not
/// [`reset`](VoiceDetector::reset) the detector first, so a stream can be fed in chunks
/// that are multiples of the frame size.
pub fn frame_probabilities(
    detector: &mut dyn VoiceDetector,
    samples: &[f32],
) -> Result<Vec<f32>, VadError> {
    let frame_samples = detector.frame_samples().max(1);
    let mut probabilities = Vec::with_capacity(samples.len().div_ceil(frame_samples));
    let mut frames = samples.chunks_exact(frame_samples);
    for frame in frames.by_ref() {
        probabilities.push(detector.speech_probability(frame)?);
    }
    let rest = frames.remainder();
    if !rest.is_empty() {
        let mut last = vec![0.0; frame_samples];
        last[..rest.len()].copy_from_slice(rest);
        probabilities.push(detector.speech_probability(&last)?);
    }
    Ok(probabilities)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores a frame by its first sample and records frame lengths.
    struct Echo {
        lengths: Vec<usize>,
    }

    impl VoiceDetector for Echo {
        fn frame_samples(&self) -> usize {
            4
        }
        fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, VadError> {
            self.lengths.push(frame.len());
            Ok(frame[3])
        }
        fn reset(&mut self) {
            self.lengths.clear();
        }
    }

    #[test]
    fn frames_cover_the_input_and_the_last_one_is_zero_padded() {
        let mut echo = Echo {
            lengths: Vec::new(),
        };
        let samples = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.25, 0.25];
        let probs = frame_probabilities(&mut echo, &samples).expect("runs");
        assert_eq!(probs, vec![1.0, 0.5, 0.0]);
        assert_eq!(echo.lengths, vec![4, 4, 4]);
        assert!(frame_probabilities(&mut echo, &[])
            .expect("runs")
            .is_empty());
    }
}
