//! The `hama` grapheme-to-phoneme model (DESIGN §2): an ONNX encoder over the word's
//! characters and an ONNX decoder step run until `<eos>`. Its phoneme ids are the same
//! ids the `hama` acoustic model emits, so they are CTC targets as they are.
//!
//! Words are spelled in batches (one encoder run and one decoder run per step for up to
//! [`BATCH_WORDS`] words): twenty words take about as long as one. Results are cached
//! per word, because transcripts repeat the same few hundred words.

use std::collections::HashMap;
use std::path::Path;

use ort::session::Session;
use ort::value::{DynValue, Tensor};

use crate::error::ModelError;
use crate::onnx::{self, SessionConfig};

/// Words spelled in one batch.
const BATCH_WORDS: usize = 64;
/// Cached spellings before the cache is cleared (a bound, not a tuning knob).
const CACHE_WORDS: usize = 50_000;
/// Characters of one word the encoder sees (the package's own limit).
const MAX_WORD_CHARS: usize = 128;

const PAD: i64 = 0;
const SOS: i64 = 1;
const EOS: i64 = 2;
const UNK: i64 = 1;

/// `g2p_vocab.json`: character inputs and phoneme outputs.
#[derive(serde::Deserialize)]
struct Vocabulary {
    encoder: Vec<String>,
    decoder: Vec<String>,
}

/// A loaded G2P model; one per worker thread (sessions run with `&mut`).
pub struct HamaG2p {
    encoder: Session,
    decoder: Session,
    characters: HashMap<char, i64>,
    /// Whether each decoder id is a phoneme (not a special, space or punctuation).
    is_phoneme: Vec<bool>,
    cache: HashMap<String, Vec<u32>>,
}

impl HamaG2p {
    pub fn load(encoder: &Path, decoder: &Path, vocabulary: &Path) -> Result<Self, ModelError> {
        let load_error = |detail: String| ModelError::Load {
            id: "tdnn_ffn g2p".to_string(),
            path: vocabulary.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(vocabulary).map_err(|e| load_error(e.to_string()))?;
        let vocab: Vocabulary =
            serde_json::from_str(&text).map_err(|e| load_error(e.to_string()))?;
        let characters = super::single_char_ids(&vocab.encoder)
            .into_iter()
            .map(|(c, i)| (c, i as i64))
            .collect();
        let is_phoneme = vocab
            .decoder
            .iter()
            .map(|t| {
                let special = t.starts_with('<') && t.ends_with('>');
                let punctuation = t.chars().all(|c| c.is_ascii_punctuation());
                !(special || punctuation || t.trim().is_empty())
            })
            .collect();
        let config = SessionConfig::default();
        Ok(Self {
            encoder: onnx::session("tdnn_ffn g2p encoder", encoder, &config)?,
            decoder: onnx::session("tdnn_ffn g2p decoder", decoder, &config)?,
            characters,
            is_phoneme,
            cache: HashMap::new(),
        })
    }

    /// Phoneme ids of each word (lower-case spoken words from the text normaliser).
    pub fn spell(&mut self, words: &[String]) -> Result<Vec<Vec<u32>>, ModelError> {
        let missing: Vec<&String> = {
            let mut seen = std::collections::HashSet::new();
            words
                .iter()
                .filter(|w| !self.cache.contains_key(*w) && seen.insert(*w))
                .collect()
        };
        if self.cache.len() + missing.len() > CACHE_WORDS {
            self.cache.clear();
        }
        for batch in missing.chunks(BATCH_WORDS) {
            let spelled = self.spell_batch(batch)?;
            for (word, ids) in batch.iter().zip(spelled) {
                self.cache.insert((*word).clone(), ids);
            }
        }
        Ok(words
            .iter()
            .map(|w| self.cache.get(w).cloned().unwrap_or_default())
            .collect())
    }

    fn spell_batch(&mut self, words: &[&String]) -> Result<Vec<Vec<u32>>, ModelError> {
        let inference = |e: ort::Error| ModelError::Inference(format!("g2p: {e}"));
        let encoded: Vec<Vec<i64>> = words
            .iter()
            .map(|w| {
                let ids: Vec<i64> = w
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .flat_map(char::to_lowercase)
                    .take(MAX_WORD_CHARS)
                    .map(|c| self.characters.get(&c).copied().unwrap_or(UNK))
                    .collect();
                if ids.is_empty() {
                    vec![UNK]
                } else {
                    ids
                }
            })
            .collect();
        let batch = words.len();
        let width = encoded.iter().map(Vec::len).max().unwrap_or(1);
        let mut ids = vec![PAD; batch * width];
        for (row, word) in encoded.iter().enumerate() {
            ids[row * width..row * width + word.len()].copy_from_slice(word);
        }
        let lengths: Vec<i64> = encoded.iter().map(|w| w.len() as i64).collect();
        let input_ids = Tensor::from_array(([batch, width], ids)).map_err(inference)?;
        let input_lengths = Tensor::from_array(([batch], lengths)).map_err(inference)?;
        let mut encoded_out = self
            .encoder
            .run(ort::inputs![
                "input_ids" => &input_ids,
                "input_lengths" => &input_lengths,
            ])
            .map_err(inference)?;
        let mut take = |name: &str| -> Result<DynValue, ModelError> {
            encoded_out
                .remove(name)
                .ok_or_else(|| ModelError::Inference(format!("g2p encoder gave no `{name}`")))
        };
        let encoder_outputs = take("encoder_outputs")?;
        let projected_keys = take("projected_keys")?;
        let encoder_mask = take("encoder_mask")?;
        let mut hidden = take("hidden")?;
        let mut prev_attn = take("prev_attn")?;
        drop(encoded_out);
        let source_len = encoder_outputs
            .shape()
            .get(1)
            .copied()
            .unwrap_or(width as i64)
            .max(1) as usize;
        let positions = Tensor::from_array((
            [1, source_len],
            (0..source_len).map(|i| i as f32).collect::<Vec<_>>(),
        ))
        .map_err(inference)?;

        let mut current = vec![SOS; batch];
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); batch];
        let mut done = vec![false; batch];
        let max_steps = (2 * width + 8).min(96);
        for _ in 0..max_steps {
            let step_ids = Tensor::from_array(([batch, 1], current.clone())).map_err(inference)?;
            let mut step = self
                .decoder
                .run(ort::inputs![
                    "decoder_input_ids" => &step_ids,
                    "encoder_outputs" => &encoder_outputs,
                    "projected_keys" => &projected_keys,
                    "encoder_mask" => &encoder_mask,
                    "prev_attn" => &prev_attn,
                    "hidden" => &hidden,
                    "positions" => &positions,
                ])
                .map_err(inference)?;
            let next: Vec<i64> = step
                .get("next_token_ids")
                .ok_or_else(|| ModelError::Inference("g2p decoder gave no ids".into()))?
                .try_extract_tensor::<i64>()
                .map_err(inference)?
                .1
                .to_vec();
            hidden = step
                .remove("hidden_out")
                .ok_or_else(|| ModelError::Inference("g2p decoder gave no hidden".into()))?;
            prev_attn = step
                .remove("prev_attn_out")
                .ok_or_else(|| ModelError::Inference("g2p decoder gave no attention".into()))?;
            for (row, &id) in next.iter().enumerate().take(batch) {
                if done[row] {
                    continue;
                }
                if id == EOS {
                    done[row] = true;
                } else if self.is_phoneme.get(id as usize).copied().unwrap_or(false) {
                    out[row].push(id as u32);
                }
            }
            if done.iter().all(|d| *d) {
                break;
            }
            current = next;
            current.truncate(batch);
        }
        Ok(out)
    }
}
