//! [`SileroVad`]: Silero VAD v6 (`silero_vad.onnx` from the `silero-vad` wheel, DESIGN §2)
//! through ONNX Runtime, behind `ember_dsp::vad::VoiceDetector`.
//!
//! The model scores 512-sample (32 ms) frames at 16 kHz. Each call sees the frame prefixed
//! with the last 64 samples of the previous one (its context) and carries an LSTM state
//! `[2, 1, 128]` from call to call, exactly as Silero's Python wrapper does; `reset` zeroes
//! both. One thread scores ~500× real time (DESIGN §3), so VAD needs no worker pool: a
//! detector is owned by whichever blocking thread prepares the file.

use std::path::Path;

use ember_dsp::vad::{VadError, VoiceDetector};
use ort::session::Session;
use ort::value::Tensor;

use crate::error::ModelError;
use crate::onnx::{self, SessionConfig};
use crate::provision::Manifest;

/// Samples per Silero frame at 16 kHz (32 ms).
pub const SILERO_FRAME_SAMPLES: usize = 512;
/// Samples of the previous frame prepended to each input.
const CONTEXT_SAMPLES: usize = 64;
const INPUT_SAMPLES: usize = CONTEXT_SAMPLES + SILERO_FRAME_SAMPLES;
const STATE_SHAPE: [usize; 3] = [2, 1, 128];
/// Manifest id of the model.
pub const SILERO_ID: &str = "silero-vad";

/// Input and output names of the v6 graph (checked at load).
const INPUT: &str = "input";
const STATE: &str = "state";
const SAMPLE_RATE: &str = "sr";
const OUTPUT: &str = "output";
const STATE_OUT: &str = "stateN";

/// One Silero VAD session and its stream state.
pub struct SileroVad {
    session: Session,
    /// `[1, 64 + 512]`: context then frame.
    input: Tensor<f32>,
    /// `[2, 1, 128]` recurrent state.
    state: Tensor<f32>,
    /// Scalar 16000.
    sample_rate: Tensor<i64>,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroVad").finish_non_exhaustive()
    }
}

impl SileroVad {
    /// Opens the model with one thread. ONNX Runtime must be loaded ([`onnx::init`]).
    pub fn new(model: &Path) -> Result<Self, ModelError> {
        Self::with_config(model, &SessionConfig::default())
    }

    /// Opens the model with explicit session threading.
    pub fn with_config(model: &Path, config: &SessionConfig) -> Result<Self, ModelError> {
        let session = onnx::session(SILERO_ID, model, config)?;
        let load_error = |detail: String| ModelError::Load {
            id: SILERO_ID.to_string(),
            path: model.display().to_string(),
            detail,
        };
        let has =
            |outlets: &[ort::value::Outlet], name: &str| outlets.iter().any(|o| o.name() == name);
        let expected = [INPUT, STATE, SAMPLE_RATE]
            .iter()
            .all(|n| has(session.inputs(), n))
            && [OUTPUT, STATE_OUT]
                .iter()
                .all(|n| has(session.outputs(), n));
        if !expected {
            return Err(load_error(format!(
                "not a Silero VAD v5/v6 graph: expected inputs input, state, sr and outputs output, stateN; it has {}",
                onnx::describe(&session)
            )));
        }
        let tensor_error = |e: ort::Error| load_error(e.to_string());
        Ok(Self {
            session,
            input: Tensor::from_array(([1, INPUT_SAMPLES], vec![0.0_f32; INPUT_SAMPLES]))
                .map_err(tensor_error)?,
            state: Tensor::from_array((STATE_SHAPE, vec![0.0_f32; STATE_SHAPE.iter().product()]))
                .map_err(tensor_error)?,
            sample_rate: Tensor::from_array(((), vec![i64::from(ember_dsp::SAMPLE_RATE)]))
                .map_err(tensor_error)?,
        })
    }

    /// Loads ONNX Runtime and Silero from what a models directory's manifest lists.
    pub fn from_manifest(manifest: &Manifest) -> Result<Self, ModelError> {
        onnx::init_from_manifest(manifest)?;
        let model = manifest.find(SILERO_ID).ok_or_else(|| ModelError::Load {
            id: SILERO_ID.to_string(),
            path: String::new(),
            detail: "Silero VAD is not installed; run `ember models install`".to_string(),
        })?;
        Self::new(&model.path)
    }

    /// [`Self::from_manifest`] for the manifest in `dir` (e.g.
    /// [`crate::provision::models_dir_default`]).
    pub fn from_models_dir(dir: &Path) -> Result<Self, ModelError> {
        let manifest = crate::provision::list(dir).map_err(|e| ModelError::Load {
            id: SILERO_ID.to_string(),
            path: dir.display().to_string(),
            detail: e.to_string(),
        })?;
        Self::from_manifest(&manifest)
    }

    fn run(&mut self) -> Result<f32, ort::Error> {
        let mut outputs = self.session.run(ort::inputs![
            INPUT => &self.input,
            STATE => &self.state,
            SAMPLE_RATE => &self.sample_rate,
        ])?;
        let probability = match outputs.get(OUTPUT) {
            Some(value) => value.try_extract_tensor::<f32>()?.1.first().copied(),
            None => None,
        }
        .ok_or_else(|| ort::Error::new("the model returned no `output` probability"))?;
        let state = outputs
            .remove(STATE_OUT)
            .ok_or_else(|| ort::Error::new("the model returned no `stateN`"))?;
        let (_, next) = state.try_extract_tensor::<f32>()?;
        let (_, current) = self.state.try_extract_tensor_mut::<f32>()?;
        if next.len() != current.len() {
            return Err(ort::Error::new(format!(
                "`stateN` has {} values, expected {}",
                next.len(),
                current.len()
            )));
        }
        current.copy_from_slice(next);
        Ok(probability)
    }
}

impl VoiceDetector for SileroVad {
    fn frame_samples(&self) -> usize {
        SILERO_FRAME_SAMPLES
    }

    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, VadError> {
        let inference = |e: ort::Error| VadError::Inference {
            detector: "silero",
            detail: e.to_string(),
        };
        if frame.len() != SILERO_FRAME_SAMPLES {
            return Err(VadError::FrameLength {
                detector: "silero",
                expected: SILERO_FRAME_SAMPLES,
                got: frame.len(),
            });
        }
        {
            let (_, input) = self
                .input
                .try_extract_tensor_mut::<f32>()
                .map_err(inference)?;
            input[CONTEXT_SAMPLES..].copy_from_slice(frame);
        }
        let probability = self.run().map_err(inference)?;
        // The next frame's context is the end of this one.
        let (_, input) = self
            .input
            .try_extract_tensor_mut::<f32>()
            .map_err(inference)?;
        input.copy_within(SILERO_FRAME_SAMPLES.., 0);
        Ok(probability)
    }

    fn reset(&mut self) {
        // Extraction only fails for non-f32 tensors, which these never are.
        if let Ok((_, state)) = self.state.try_extract_tensor_mut::<f32>() {
            state.fill(0.0);
        }
        if let Ok((_, input)) = self.input.try_extract_tensor_mut::<f32>() {
            input.fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::ModelKind;
    use crate::provision::{list, models_dir_default};

    /// The installed detector, or `None` (with a note) when this machine has no Silero.
    fn detector() -> Option<SileroVad> {
        let dir = models_dir_default();
        let manifest = list(&dir).expect("readable manifest");
        if manifest.find(SILERO_ID).is_none() || manifest.first_of(ModelKind::Runtime).is_none() {
            eprintln!(
                "skipping: Silero VAD / ONNX Runtime not installed in {} (run `ember models install`)",
                dir.display()
            );
            return None;
        }
        Some(SileroVad::from_models_dir(&dir).expect("Silero loads"))
    }

    /// A 300 Hz buzz with harmonics and a syllable-rate envelope: not speech, but not silence.
    fn buzz(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let envelope = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
                let wave: f32 = (1..6)
                    .map(|h| (2.0 * std::f32::consts::PI * 300.0 * h as f32 * t).sin() / h as f32)
                    .sum();
                0.2 * envelope * wave
            })
            .collect()
    }

    #[test]
    fn silero_graph_has_the_expected_inputs_and_outputs() {
        let Some(vad) = detector() else { return };
        let described = onnx::describe(&vad.session);
        eprintln!("silero_vad.onnx: {described}");
        let find = |outlets: &[ort::value::Outlet], name: &str| {
            outlets
                .iter()
                .find(|o| o.name() == name)
                .map(|o| o.dtype().to_string())
                .unwrap_or_default()
        };
        assert!(
            find(vad.session.inputs(), INPUT).starts_with("Tensor<f32>"),
            "{described}"
        );
        assert!(
            find(vad.session.inputs(), STATE).starts_with("Tensor<f32>"),
            "{described}"
        );
        assert!(
            find(vad.session.inputs(), SAMPLE_RATE).starts_with("Tensor<i64>"),
            "{described}"
        );
        assert!(
            find(vad.session.outputs(), OUTPUT).starts_with("Tensor<f32>"),
            "{described}"
        );
        assert!(
            find(vad.session.outputs(), STATE_OUT).starts_with("Tensor<f32>"),
            "{described}"
        );
    }

    #[test]
    fn silero_state_carries_over_and_reset_forgets_it() {
        let Some(mut vad) = detector() else { return };
        let audio = buzz(SILERO_FRAME_SAMPLES * 40);
        let run = |vad: &mut SileroVad| -> Vec<f32> {
            audio
                .chunks_exact(SILERO_FRAME_SAMPLES)
                .map(|f| vad.speech_probability(f).expect("frame scores"))
                .collect()
        };
        let first = run(&mut vad);
        assert!(first.iter().all(|p| (0.0..=1.0).contains(p)), "{first:?}");
        // Without a reset the second pass starts from the first one's state and context.
        let continued = run(&mut vad);
        assert_ne!(first[0], continued[0]);
        vad.reset();
        assert_eq!(run(&mut vad), first);
    }

    #[test]
    fn silero_rejects_wrong_frame_sizes_and_scores_silence_low() {
        let Some(mut vad) = detector() else { return };
        assert!(matches!(
            vad.speech_probability(&[0.0; 480]),
            Err(VadError::FrameLength {
                expected: 512,
                got: 480,
                ..
            })
        ));
        for _ in 0..20 {
            let p = vad
                .speech_probability(&[0.0; SILERO_FRAME_SAMPLES])
                .expect("scores");
            assert!(p < 0.1, "digital silence scored {p}");
        }
    }

    #[test]
    fn silero_reports_missing_files_as_load_errors() {
        if detector().is_none() {
            return;
        }
        let err = SileroVad::new(Path::new("/nonexistent/silero_vad.onnx")).expect_err("must fail");
        assert!(matches!(err, ModelError::Load { .. }), "{err}");
    }
}
