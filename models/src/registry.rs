//! Which Whisper models are installed and how API model names map onto them.
//!
//! Clients send names of hosted models (`whisper-1`, `whisper-v3`, `whisper-v3-turbo`,
//! `accounts/fireworks/models/<x>`, PROTOCOL §2.1.8). None of those weights exist in a
//! package registry, so the alias table maps them to the operator's default model; the
//! README says so plainly. Exact ids of installed models (and any ggml file an operator
//! drops into the custom folder) are always accepted as they are.

use std::path::{Path, PathBuf};

use crate::error::ModelError;

/// One Whisper ggml file that can be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhisperModelSpec {
    /// The id clients may send, e.g. `base` or `tiny.en`.
    pub id: String,
    /// The ggml file.
    pub path: PathBuf,
    /// `.en` models cannot translate or detect languages.
    pub english_only: bool,
}

impl WhisperModelSpec {
    /// A spec for a ggml file; English-only when the id ends in `.en` (whisper.cpp's naming).
    pub fn new(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        let id = id.into();
        let english_only = id.ends_with(".en");
        Self {
            id,
            path: path.into(),
            english_only,
        }
    }
}

/// Hosted-model names that stand for "the default model" (documented in the README).
pub const DEFAULT_ALIASES: &[&str] = &[
    "whisper-1",
    "whisper-v3",
    "whisper-v3-turbo",
    "whisper-large-v3",
    "whisper-large-v3-turbo",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
];

/// Prefix the Fireworks SDK and docs put before model names.
const FIREWORKS_PREFIX: &str = "accounts/fireworks/models/";

/// The installed models plus the alias rules.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    models: Vec<WhisperModelSpec>,
    default_id: String,
    strict: bool,
}

impl ModelRegistry {
    /// `default_id` must name one of `models`; `strict` turns unknown names into errors
    /// instead of the default model.
    pub fn new(
        models: Vec<WhisperModelSpec>,
        default_id: &str,
        strict: bool,
    ) -> Result<Self, ModelError> {
        if !models.iter().any(|m| m.id == default_id) {
            return Err(ModelError::UnknownModel {
                requested: default_id.to_string(),
                installed: ids(&models),
            });
        }
        Ok(Self {
            models,
            default_id: default_id.to_string(),
            strict,
        })
    }

    /// Adds every `*.bin` ggml file in `dir` as a model whose id is the file stem without a
    /// leading `ggml-` (so an operator's `ggml-large-v3-turbo.bin` becomes `large-v3-turbo`).
    pub fn with_custom_dir(mut self, dir: &Path) -> Self {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return self;
        };
        let mut found: Vec<WhisperModelSpec> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .filter_map(|p| {
                let stem = p.file_stem()?.to_str()?.to_string();
                let id = stem.strip_prefix("ggml-").unwrap_or(&stem).to_string();
                Some(WhisperModelSpec::new(id, p))
            })
            .filter(|spec| !self.models.iter().any(|m| m.id == spec.id))
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        self.models.extend(found);
        self
    }

    /// Every installed model, default first.
    pub fn models(&self) -> impl Iterator<Item = &WhisperModelSpec> {
        let default = self.models.iter().filter(|m| m.id == self.default_id);
        default.chain(self.models.iter().filter(|m| m.id != self.default_id))
    }

    /// The id of the default model.
    pub fn default_id(&self) -> &str {
        &self.default_id
    }

    /// Maps a client's `model` field to an installed model (PROTOCOL §2.1.8).
    pub fn resolve(&self, requested: Option<&str>) -> Result<&WhisperModelSpec, ModelError> {
        let name = requested.map(str::trim).unwrap_or("");
        let name = name.strip_prefix(FIREWORKS_PREFIX).unwrap_or(name);
        let lowered = name.to_ascii_lowercase();
        let bare = lowered.strip_prefix("whisper-").unwrap_or(&lowered);
        let exact = self
            .models
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(name) || m.id.eq_ignore_ascii_case(bare));
        if let Some(model) = exact {
            return Ok(model);
        }
        if name.is_empty() || DEFAULT_ALIASES.contains(&lowered.as_str()) || !self.strict {
            if !name.is_empty() && !DEFAULT_ALIASES.contains(&lowered.as_str()) {
                tracing::debug!(requested = name, "unknown model name, using the default");
            }
            return self.default_model();
        }
        Err(ModelError::UnknownModel {
            requested: name.to_string(),
            installed: ids(&self.models),
        })
    }

    fn default_model(&self) -> Result<&WhisperModelSpec, ModelError> {
        self.models
            .iter()
            .find(|m| m.id == self.default_id)
            .ok_or_else(|| ModelError::UnknownModel {
                requested: self.default_id.clone(),
                installed: ids(&self.models),
            })
    }
}

fn ids(models: &[WhisperModelSpec]) -> String {
    models
        .iter()
        .map(|m| format!("`{}`", m.id))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn registry(strict: bool) -> ModelRegistry {
        ModelRegistry::new(
            vec![
                WhisperModelSpec::new("base", "/m/ggml-base.bin"),
                WhisperModelSpec::new("tiny.en", "/m/ggml-tiny.en.bin"),
            ],
            "base",
            strict,
        )
        .unwrap()
    }

    #[test]
    fn hosted_aliases_map_to_default() {
        let r = registry(true);
        for name in [
            "whisper-1",
            "whisper-v3",
            "whisper-v3-turbo",
            "accounts/fireworks/models/whisper-v3",
            "",
        ] {
            assert_eq!(r.resolve(Some(name)).unwrap().id, "base", "{name}");
        }
        assert_eq!(r.resolve(None).unwrap().id, "base");
    }

    #[test]
    fn installed_ids_match_with_or_without_prefixes() {
        let r = registry(true);
        assert_eq!(r.resolve(Some("tiny.en")).unwrap().id, "tiny.en");
        assert_eq!(r.resolve(Some("whisper-tiny.en")).unwrap().id, "tiny.en");
        assert_eq!(r.resolve(Some("Whisper-Base")).unwrap().id, "base");
        assert!(r.resolve(Some("tiny.en")).unwrap().english_only);
    }

    #[test]
    fn unknown_names_depend_on_strictness() {
        assert_eq!(registry(false).resolve(Some("nope")).unwrap().id, "base");
        let err = registry(true).resolve(Some("nope")).unwrap_err();
        assert!(err.to_string().contains("`base`, `tiny.en`"), "{err}");
    }

    #[test]
    fn default_must_exist() {
        assert!(ModelRegistry::new(vec![], "base", false).is_err());
    }

    #[test]
    fn custom_dir_adds_ggml_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ggml-large-v3-turbo.bin"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let r = registry(true).with_custom_dir(dir.path());
        assert_eq!(
            r.resolve(Some("large-v3-turbo")).unwrap().id,
            "large-v3-turbo"
        );
        assert_eq!(r.models().count(), 3);
        assert_eq!(r.models().next().unwrap().id, "base");
    }
}
