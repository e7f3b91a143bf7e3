//! The VAD service: which detectors this server has, a small pool of Silero sessions,
//! and the [`SpeechMap`] of an utterance (regions plus frame probabilities, which the
//! hallucination guard reads back).
//!
//! VAD runs on the caller's blocking thread (it is ~500× real time on one thread, DESIGN
//! §3), not on a worker queue: a detector is checked out of the pool for one file and
//! returned after, so sessions are reused and never shared between threads.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ember_dsp::vad::{
    frame_probabilities, segment, SegmenterConfig, VoiceDetector, WebrtcMode, WebrtcVad,
};

use crate::error::ModelError;
use crate::silero::SileroVad;

/// A voice-activity detector this server can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadKind {
    /// Silero VAD v6 through ONNX Runtime: ignores music, tones and noise bursts.
    Silero,
    /// WebRTC's GMM VAD: 25× cheaper, but calls many non-speech sounds speech.
    Webrtc,
}

impl VadKind {
    /// The wire name (`vad_model`).
    pub fn as_str(self) -> &'static str {
        match self {
            VadKind::Silero => "silero",
            VadKind::Webrtc => "webrtc",
        }
    }

    /// Segmentation defaults tuned per detector (webrtc's output is 0/1).
    pub fn segmenter_config(self) -> SegmenterConfig {
        match self {
            VadKind::Silero => SegmenterConfig::silero(),
            VadKind::Webrtc => SegmenterConfig::webrtc(),
        }
    }
}

/// Where the speech is in an utterance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpeechMap {
    /// Padded speech regions in samples, sorted and disjoint.
    pub regions: Vec<Range<usize>>,
    /// The detector's speech probability per frame.
    pub probabilities: Vec<f32>,
    /// Samples per probability frame.
    pub frame_samples: usize,
}

impl SpeechMap {
    /// No VAD: the whole audio is one region and everything counts as speech.
    pub fn whole(len: usize) -> Self {
        Self {
            regions: std::iter::once(0..len).filter(|r| !r.is_empty()).collect(),
            probabilities: Vec::new(),
            frame_samples: 0,
        }
    }

    /// Samples inside regions.
    pub fn speech_samples(&self) -> usize {
        self.regions.iter().map(|r| r.end - r.start).sum()
    }

    /// Mean speech probability between two times (ms); 1.0 when there are no frame
    /// probabilities (VAD skipped) so nothing is judged non-speech by default.
    pub fn score_ms(&self, start_ms: u64, end_ms: u64) -> f32 {
        if self.frame_samples == 0 || self.probabilities.is_empty() {
            return 1.0;
        }
        let frame_ms =
            (self.frame_samples as u64 * 1000 / u64::from(ember_dsp::SAMPLE_RATE)).max(1);
        let first = (start_ms / frame_ms) as usize;
        let last = (end_ms.div_ceil(frame_ms) as usize).max(first + 1);
        let frames = &self.probabilities
            [first.min(self.probabilities.len())..last.min(self.probabilities.len())];
        if frames.is_empty() {
            return 0.0;
        }
        frames.iter().sum::<f32>() / frames.len() as f32
    }
}

/// The detectors this server has, and pooled Silero sessions.
pub struct VadEngine {
    silero_model: Option<PathBuf>,
    idle_silero: Arc<SileroPool>,
}

/// Idle Silero sessions kept for reuse.
struct SileroPool {
    idle: Mutex<Vec<SileroVad>>,
    /// Sessions kept; more concurrent users create (and then drop) extra ones.
    max_idle: usize,
}

impl SileroPool {
    fn take(&self) -> Option<SileroVad> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn put(&self, mut detector: SileroVad) {
        detector.reset();
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max_idle {
                idle.push(detector);
            }
        }
    }
}

/// A pooled Silero session lent to a live stream for its whole life; it goes back to
/// the pool when the stream ends, so streams reuse sessions instead of creating and
/// dropping one each.
struct LentSilero {
    detector: Option<SileroVad>,
    pool: Arc<SileroPool>,
}

impl VoiceDetector for LentSilero {
    fn frame_samples(&self) -> usize {
        self.detector.as_ref().map_or(
            crate::silero::SILERO_FRAME_SAMPLES,
            VoiceDetector::frame_samples,
        )
    }

    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, ember_dsp::VadError> {
        match self.detector.as_mut() {
            Some(d) => d.speech_probability(frame),
            None => Ok(0.0),
        }
    }

    fn reset(&mut self) {
        if let Some(d) = self.detector.as_mut() {
            d.reset();
        }
    }
}

impl Drop for LentSilero {
    fn drop(&mut self) {
        if let Some(detector) = self.detector.take() {
            self.pool.put(detector);
        }
    }
}

impl VadEngine {
    /// `silero_model` is the ONNX file when Silero is installed (ONNX Runtime must be
    /// initialised first, see [`crate::onnx`]); webrtc is always available.
    pub fn new(silero_model: Option<PathBuf>, max_idle: usize) -> Result<Self, ModelError> {
        let engine = Self {
            silero_model,
            idle_silero: Arc::new(SileroPool {
                idle: Mutex::new(Vec::new()),
                max_idle: max_idle.max(1),
            }),
        };
        // Load one session now so a broken model fails at startup, not on a request.
        if engine.silero_model.is_some() {
            let session = engine.checkout_silero()?;
            engine.checkin_silero(session);
        }
        Ok(engine)
    }

    pub fn has(&self, kind: VadKind) -> bool {
        match kind {
            VadKind::Silero => self.silero_model.is_some(),
            VadKind::Webrtc => true,
        }
    }

    /// The installed detectors, Silero first.
    pub fn installed(&self) -> Vec<VadKind> {
        [VadKind::Silero, VadKind::Webrtc]
            .into_iter()
            .filter(|k| self.has(*k))
            .collect()
    }

    /// Runs a detector over 16 kHz audio with its default segmentation.
    pub fn detect(&self, kind: VadKind, samples: &[f32]) -> Result<SpeechMap, ModelError> {
        self.detect_with(kind, samples, &kind.segmenter_config())
    }

    /// Runs a detector with explicit segmentation settings (`/v1/audio/vad`).
    pub fn detect_with(
        &self,
        kind: VadKind,
        samples: &[f32],
        config: &SegmenterConfig,
    ) -> Result<SpeechMap, ModelError> {
        match kind {
            VadKind::Webrtc => {
                let mut detector = WebrtcVad::new(WebrtcMode::default());
                map_speech(&mut detector, samples, config)
            }
            VadKind::Silero => {
                let mut detector = self.checkout_silero()?;
                let result = map_speech(&mut detector, samples, config);
                self.checkin_silero(detector);
                result
            }
        }
    }

    /// A detector of its own for a live stream (it keeps state across chunks for the
    /// whole session): Silero when installed, else WebRTC. The Silero session comes from
    /// the pool and returns to it when the detector is dropped.
    pub fn stream_detector(&self) -> Result<(VadKind, Box<dyn VoiceDetector>), ModelError> {
        if self.has(VadKind::Silero) {
            let mut detector = self.checkout_silero()?;
            detector.reset();
            let lent = LentSilero {
                detector: Some(detector),
                pool: Arc::clone(&self.idle_silero),
            };
            return Ok((VadKind::Silero, Box::new(lent)));
        }
        Ok((
            VadKind::Webrtc,
            Box::new(WebrtcVad::new(WebrtcMode::default())),
        ))
    }

    fn checkout_silero(&self) -> Result<SileroVad, ModelError> {
        match (self.idle_silero.take(), &self.silero_model) {
            (Some(detector), _) => Ok(detector),
            (None, Some(path)) => SileroVad::new(path),
            (None, None) => Err(ModelError::Unsupported(
                "the Silero VAD model is not installed".to_string(),
            )),
        }
    }

    fn checkin_silero(&self, detector: SileroVad) {
        self.idle_silero.put(detector);
    }
}

fn map_speech(
    detector: &mut dyn VoiceDetector,
    samples: &[f32],
    config: &SegmenterConfig,
) -> Result<SpeechMap, ModelError> {
    detector.reset();
    let frame_samples = detector.frame_samples();
    let probabilities = frame_probabilities(detector, samples)
        .map_err(|e| ModelError::Inference(format!("VAD: {e}")))?;
    let regions = segment(&probabilities, frame_samples, samples.len(), config)
        .into_iter()
        .map(|r| r.range())
        .collect();
    Ok(SpeechMap {
        regions,
        probabilities,
        frame_samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_average_the_frames_under_a_span() {
        let map = SpeechMap {
            regions: SpeechMap::whole(1_600).regions,
            probabilities: vec![1.0, 1.0, 0.0, 0.0],
            frame_samples: 512, // 32 ms
        };
        assert!((map.score_ms(0, 64) - 1.0).abs() < 1e-6);
        assert!((map.score_ms(0, 128) - 0.5).abs() < 1e-6);
        assert_eq!(map.score_ms(64, 128), 0.0);
        assert_eq!(map.score_ms(10_000, 20_000), 0.0);
        assert_eq!(SpeechMap::whole(10).score_ms(0, 5), 1.0);
        assert_eq!(SpeechMap::whole(10).speech_samples(), 10);
        assert!(SpeechMap::whole(0).regions.is_empty());
    }
}
