//! One loaded CTC aligner: the ONNX acoustic model that turns a window of audio into
//! frame log-probabilities, and the text frontend that turns words into its token ids.

use std::collections::HashMap;

use ort::session::Session;
use ort::value::Tensor;

use super::ctc::{CtcTokens, LogProbs};
use super::english::spoken_words;
use super::g2p::HamaG2p;
use super::manifest::{AlignerManifest, TextFrontend};
use crate::error::ModelError;
use crate::onnx::{self, SessionConfig};

/// Text → token ids for one aligner.
enum Frontend {
    Characters(HashMap<char, u32>),
    Hama(Box<HamaG2p>),
}

/// The sessions of one aligner, owned by one worker thread.
pub struct CtcAligner {
    manifest: AlignerManifest,
    session: Session,
    frontend: Frontend,
    tokens: CtcTokens,
}

/// One written word as the aligner sees it: the token ids of each spoken word it is
/// read as (`$5` → `five`, `dollars`). Empty when nothing in it can be spelled.
pub type SpelledWord = Vec<Vec<u32>>;

impl CtcAligner {
    pub fn load(manifest: AlignerManifest) -> Result<Self, ModelError> {
        let session = onnx::session(&manifest.name, &manifest.model, &SessionConfig::default())?;
        let frontend = match &manifest.text {
            TextFrontend::Characters => Frontend::Characters(
                super::single_char_ids(&manifest.vocabulary)
                    .into_iter()
                    .filter(|(c, _)| c.is_alphanumeric() || *c == '\'')
                    .map(|(c, i)| (c, i as u32))
                    .collect(),
            ),
            TextFrontend::HamaG2p {
                encoder,
                decoder,
                vocabulary,
            } => Frontend::Hama(Box::new(HamaG2p::load(encoder, decoder, vocabulary)?)),
        };
        let missing = |what: &str, token: &str| ModelError::Load {
            id: manifest.name.clone(),
            path: manifest.model.display().to_string(),
            detail: format!("{what} token `{token}` is not in the vocabulary"),
        };
        let blank = manifest
            .token_id(&manifest.blank)
            .ok_or_else(|| missing("blank", &manifest.blank))?;
        let word_boundary = match &manifest.word_boundary {
            Some(t) => Some(manifest.token_id(t).ok_or_else(|| missing("boundary", t))?),
            None => None,
        };
        Ok(Self {
            tokens: CtcTokens {
                blank,
                word_boundary,
            },
            manifest,
            session,
            frontend,
        })
    }

    pub fn manifest(&self) -> &AlignerManifest {
        &self.manifest
    }

    pub fn tokens(&self) -> CtcTokens {
        self.tokens
    }

    /// Token ids of each written word.
    pub fn spell(&mut self, words: &[String]) -> Result<Vec<SpelledWord>, ModelError> {
        let spoken: Vec<Vec<String>> = words.iter().map(|w| spoken_words(w)).collect();
        match &mut self.frontend {
            Frontend::Characters(map) => Ok(spoken
                .iter()
                .map(|pieces| {
                    pieces
                        .iter()
                        .map(|p| p.chars().filter_map(|c| map.get(&c).copied()).collect())
                        .filter(|ids: &Vec<u32>| !ids.is_empty())
                        .collect()
                })
                .collect()),
            Frontend::Hama(g2p) => {
                let flat: Vec<String> = spoken.iter().flatten().cloned().collect();
                let mut spelled = g2p.spell(&flat)?.into_iter();
                Ok(spoken
                    .iter()
                    .map(|pieces| {
                        pieces
                            .iter()
                            .filter_map(|_| spelled.next())
                            .filter(|ids| !ids.is_empty())
                            .collect()
                    })
                    .collect())
            }
        }
    }

    /// Frame log-probabilities of 16 kHz `samples`.
    pub fn log_probs(&mut self, samples: &[f32]) -> Result<LogProbs, ModelError> {
        let inference = |e: ort::Error| ModelError::Inference(format!("aligner: {e}"));
        let waveform =
            Tensor::from_array(([1, samples.len()], samples.to_vec())).map_err(inference)?;
        let lengths = Tensor::from_array(([1], vec![samples.len() as i64])).map_err(inference)?;
        let mut inputs = ort::inputs![self.manifest.input.as_str() => &waveform];
        if let Some(name) = &self.manifest.lengths_input {
            inputs.push((name.clone().into(), (&lengths).into()));
        }
        let outputs = self.session.run(inputs).map_err(inference)?;
        let value = outputs.get(&self.manifest.output).ok_or_else(|| {
            ModelError::Inference(format!("aligner gave no `{}`", self.manifest.output))
        })?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(inference)?;
        let (frames, vocab) = match shape.as_ref() {
            [1, frames, vocab] => (*frames as usize, *vocab as usize),
            other => {
                return Err(ModelError::Inference(format!(
                    "aligner output has shape {other:?}, expected [1, frames, vocabulary]"
                )))
            }
        };
        let mut data = data[..frames * vocab].to_vec();
        if self.manifest.output_is_logits {
            for row in data.chunks_mut(vocab) {
                log_softmax(row);
            }
        }
        Ok(LogProbs {
            data,
            frames,
            vocab,
        })
    }
}

fn log_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|x| (x - max).exp()).sum();
    let log_sum = max + sum.ln();
    row.iter_mut().for_each(|x| *x -= log_sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_normalises() {
        let mut row = [1.0f32, 2.0, 3.0];
        log_softmax(&mut row);
        let total: f32 = row.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
