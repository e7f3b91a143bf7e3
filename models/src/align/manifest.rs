//! What a CTC aligner is: a small JSON manifest naming the ONNX acoustic model, its
//! vocabulary and special tokens, how text becomes tokens, and the model's timing bias.
//!
//! `tdnn_ffn` (the `hama` phoneme model) is described in code from the installed files.
//! Operators add others (e.g. an `mms_fa` export) as `<models>/aligners/<name>/manifest.json`
//! with paths relative to that folder; see the README's alignment section.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::provision::Manifest;

/// Folder of operator-installed aligners inside the models directory.
pub const ALIGNERS_DIR: &str = "aligners";
/// Manifest ids of the `tdnn_ffn` files (see `packages::MODELS`).
pub const TDNN_FFN_ACOUSTIC: &str = "tdnn_ffn-acoustic";
pub const TDNN_FFN_G2P_ENCODER: &str = "tdnn_ffn-g2p-encoder";
pub const TDNN_FFN_G2P_DECODER: &str = "tdnn_ffn-g2p-decoder";
pub const TDNN_FFN_G2P_VOCABULARY: &str = "tdnn_ffn-g2p-vocabulary";

/// How words become the model's token ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TextFrontend {
    /// Each character of the lower-cased word that is a vocabulary entry is a token;
    /// other characters are dropped (character CTC models such as MMS).
    Characters,
    /// English text normalisation, then the `hama` G2P model (phoneme CTC models).
    HamaG2p {
        encoder: PathBuf,
        decoder: PathBuf,
        vocabulary: PathBuf,
    },
}

/// One CTC aligner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignerManifest {
    /// The `alignment_model` value that selects it.
    pub name: String,
    /// ISO codes it is meant for; empty or `*` means any language.
    #[serde(default)]
    pub languages: Vec<String>,
    /// The ONNX model: 16 kHz waveform in, frame log-probabilities (or logits) out.
    pub model: PathBuf,
    /// Name of the `[batch, samples]` f32 input.
    #[serde(default = "default_input")]
    pub input: String,
    /// Name of the optional `[batch]` i64 sample-count input.
    #[serde(default)]
    pub lengths_input: Option<String>,
    /// Name of the `[batch, frames, vocabulary]` f32 output.
    #[serde(default = "default_output")]
    pub output: String,
    /// The output is raw logits: apply log-softmax per frame.
    #[serde(default)]
    pub output_is_logits: bool,
    /// Token strings in id order.
    pub vocabulary: Vec<String>,
    /// The blank token's string.
    pub blank: String,
    /// The word-separator token's string, when the model has one (e.g. `|`, `<wb>`).
    #[serde(default)]
    pub word_boundary: Option<String>,
    pub text: TextFrontend,
    /// CTC models fire late: report word starts this much earlier (ms).
    #[serde(default)]
    pub start_shift_ms: u32,
    /// … and word ends this much later (ms).
    #[serde(default)]
    pub end_shift_ms: u32,
}

fn default_input() -> String {
    "waveform".to_string()
}

fn default_output() -> String {
    "log_probs".to_string()
}

impl AlignerManifest {
    /// Whether this aligner is meant for `language` (an ISO code).
    pub fn supports(&self, language: &str) -> bool {
        self.languages.is_empty()
            || self
                .languages
                .iter()
                .any(|l| l == "*" || l.eq_ignore_ascii_case(language))
    }

    /// Id of a token string.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.vocabulary
            .iter()
            .position(|t| t == token)
            .map(|i| i as u32)
    }

    /// `tdnn_ffn` from the installed `hama` files, when all four are installed.
    pub fn tdnn_ffn(manifest: &Manifest) -> Result<Option<Self>, ModelError> {
        let paths: Option<Vec<PathBuf>> = [
            TDNN_FFN_ACOUSTIC,
            TDNN_FFN_G2P_ENCODER,
            TDNN_FFN_G2P_DECODER,
            TDNN_FFN_G2P_VOCABULARY,
        ]
        .iter()
        .map(|id| manifest.find(id).map(|m| m.path.clone()))
        .collect();
        let Some([model, encoder, decoder, vocabulary]) =
            paths.and_then(|p| <[PathBuf; 4]>::try_from(p).ok())
        else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct G2pVocabulary {
            decoder: Vec<String>,
        }
        let text = std::fs::read_to_string(&vocabulary).map_err(|e| load_error(&vocabulary, e))?;
        let g2p: G2pVocabulary =
            serde_json::from_str(&text).map_err(|e| load_error(&vocabulary, e))?;
        // The acoustic model's outputs are the G2P phonemes, then `<wb>` and `<blank>`.
        let mut tokens = g2p.decoder;
        tokens.push("<wb>".to_string());
        tokens.push("<blank>".to_string());
        Ok(Some(Self {
            name: "tdnn_ffn".to_string(),
            languages: vec!["en".to_string()],
            model,
            input: default_input(),
            lengths_input: Some("waveform_lengths".to_string()),
            output: default_output(),
            output_is_logits: false,
            vocabulary: tokens,
            blank: "<blank>".to_string(),
            word_boundary: Some("<wb>".to_string()),
            text: TextFrontend::HamaG2p {
                encoder,
                decoder,
                vocabulary,
            },
            start_shift_ms: TDNN_FFN_START_SHIFT_MS,
            end_shift_ms: TDNN_FFN_END_SHIFT_MS,
        }))
    }

    /// Reads `<dir>/manifest.json`, resolving relative paths against `dir`.
    pub fn read(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| load_error(&path, e))?;
        let mut manifest: Self = serde_json::from_str(&text).map_err(|e| load_error(&path, e))?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        resolve(&mut manifest.model);
        if let TextFrontend::HamaG2p {
            encoder,
            decoder,
            vocabulary,
        } = &mut manifest.text
        {
            resolve(encoder);
            resolve(decoder);
            resolve(vocabulary);
        }
        if manifest.token_id(&manifest.blank).is_none() {
            return Err(load_error(
                &path,
                format!("blank token `{}` is not in the vocabulary", manifest.blank),
            ));
        }
        if let Some(boundary) = &manifest.word_boundary {
            if manifest.token_id(boundary).is_none() {
                return Err(load_error(
                    &path,
                    format!("word-boundary token `{boundary}` is not in the vocabulary"),
                ));
            }
        }
        Ok(manifest)
    }

    /// Every aligner in `<models>/aligners/*/manifest.json`, sorted by name. A broken
    /// manifest is logged and skipped so one bad folder does not stop the server.
    pub fn read_installed(models_dir: &Path) -> Vec<Self> {
        let Ok(entries) = std::fs::read_dir(models_dir.join(ALIGNERS_DIR)) else {
            return Vec::new();
        };
        let mut found: Vec<Self> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("manifest.json").is_file())
            .filter_map(|dir| match Self::read(&dir) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping aligner manifest");
                    None
                }
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found
    }
}

/// Measured CTC delay of the `hama` model on the known-boundary set (see
/// `scripts/align/README.md`): its first phoneme fires after the word has begun.
const TDNN_FFN_START_SHIFT_MS: u32 = 40;
const TDNN_FFN_END_SHIFT_MS: u32 = 60;

fn load_error(path: &Path, detail: impl ToString) -> ModelError {
    ModelError::Load {
        id: "aligner".to_string(),
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}
