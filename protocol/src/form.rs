//! Lenient access to the text fields of a multipart or urlencoded form.
//!
//! Clients encode the same request in many ways (PROTOCOL §2.1): arrays as repeated
//! `name[]`, as `name=a,b`, as `name[]=a,b`, as indexed `name[0]`, or as a JSON array
//! string; booleans as `true`/`True`/`1`/`yes`; temperatures as one float or a list.
//! [`FormFields`] keeps every field in arrival order and offers accessors that accept
//! all of these, so the request parser never has to care which client spoke.

use crate::error::FieldError;

/// Ordered multimap of the form's text fields, in the order they arrived.
///
/// A multimap because arrays arrive as repeated keys (PROTOCOL §2.1.3) and because a
/// repeated scalar should resolve to the last value, as most form parsers do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormFields {
    fields: Vec<(String, String)>,
}

impl FormFields {
    /// An empty form; fill it with [`FormFields::push`] while reading the body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a form from `(name, value)` pairs, keeping their order.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut form = Self::new();
        for (name, value) in pairs {
            form.push(name, value);
        }
        form
    }

    /// Appends one field; duplicates are kept because arrays arrive as repeated keys.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push((name.into(), value.into()));
    }

    /// Every field in arrival order, for logging or for fields this crate does not model.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of fields, duplicates included.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the form carried no text field at all.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// True when any field has exactly this name (even with an empty value).
    pub fn contains(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }

    /// The last non-empty value of exactly `name`, trimmed.
    ///
    /// Empty values count as absent: SDKs send `prompt=""` for "not set", and a later
    /// duplicate should win as in most form parsers.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Every item of the array field `base`, trimmed, lower-cased, deduplicated, in order.
    ///
    /// Gathers the keys `base`, `base[]` and `base[N]`, and splits each value on `,`
    /// or reads it as a JSON array string (PROTOCOL §2.1.3). Lower-casing suits the
    /// enum-valued arrays (`timestamp_granularities`, `include`); use
    /// [`FormFields::list_raw`] where case matters.
    pub fn list(&self, base: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in self.list_items(base) {
            let item = item.to_lowercase();
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }

    /// Like [`FormFields::list`] but keeps the case, for free-text arrays such as
    /// `keywords[]` or `known_speaker_names[]` (PROTOCOL §2.1.3).
    pub fn list_raw(&self, base: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in self.list_items(base) {
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }

    /// A boolean in any spelling seen from clients: `true/false/1/0/yes/no`, any case
    /// (PROTOCOL §2.1.5: Python's `str(True)` gives `True`). `Ok(None)` when absent.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, FieldError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(FieldError::new(
                name,
                format!("`{name}` must be a boolean (true, false, 1, 0, yes or no), got `{raw}`"),
            )),
        }
    }

    /// One float or a list of floats: `0.2`, `0.0,0.2,0.4` or `[0,0.2]` (PROTOCOL §2.1.6,
    /// where a temperature list means fallback decoding). `Ok(None)` when absent or `[]`.
    /// Non-finite numbers are refused.
    pub fn f32_list(&self, name: &str) -> Result<Option<Vec<f32>>, FieldError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let inner = strip_brackets(raw).unwrap_or(raw);
        let mut values = Vec::new();
        for item in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.parse::<f32>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(FieldError::new(
                        name,
                        format!(
                            "`{name}` must be a number or a comma-separated list of numbers, got `{raw}`"
                        ),
                    ))
                }
            }
        }
        Ok((!values.is_empty()).then_some(values))
    }

    /// A non-negative integer such as `max_speakers`. Accepts `3` and, because numbers
    /// arrive as `str(float)` from some clients (PROTOCOL §2.1.6), also `3.0`.
    pub fn u32(&self, name: &str) -> Result<Option<u32>, FieldError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        if let Ok(v) = raw.parse::<u32>() {
            return Ok(Some(v));
        }
        match raw.parse::<f64>() {
            Ok(v) if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) => {
                // The range and fraction checks above make the cast exact.
                Ok(Some(v as u32))
            }
            _ => Err(FieldError::new(
                name,
                format!("`{name}` must be a non-negative integer, got `{raw}`"),
            )),
        }
    }

    /// The members of a nested object sent as bracketed keys, e.g.
    /// `chunking_strategy[type]=server_vad` gives `("type", "server_vad")`
    /// (PROTOCOL §2.1.4). The flat form `chunking_strategy=auto` is read with
    /// [`FormFields::get`]. Values are trimmed; empty ones are skipped.
    pub fn nested(&self, base: &str) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                let sub = k.strip_prefix(base)?.strip_prefix('[')?.strip_suffix(']')?;
                let value = v.trim();
                (!sub.is_empty() && !value.is_empty()).then(|| (sub.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// The trimmed, non-empty items of every `base` / `base[]` / `base[N]` field.
    fn list_items(&self, base: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| is_array_key(k, base))
            .flat_map(|(_, v)| split_array_value(v))
            .collect()
    }
}

/// True for `base`, `base[]` and `base[N]` (the regex `^base(\[\d*\])?$` of PROTOCOL §2.1.3).
fn is_array_key(key: &str, base: &str) -> bool {
    match key.strip_prefix(base) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|index| index.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// Splits one array value: a JSON array string (`["word","segment"]`) or a comma list.
fn split_array_value(value: &str) -> Vec<String> {
    let value = value.trim();
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(value) {
        return items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(s) => s.trim().to_owned(),
                other => other.to_string(),
            })
            .filter(|s| !s.is_empty())
            .collect();
    }
    // Not valid JSON, e.g. `[word, segment]` or `['word']`: drop the brackets and quotes.
    let inner = strip_brackets(value).unwrap_or(value);
    inner
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\'').trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The inside of `[...]`, if the value is wrapped in square brackets.
fn strip_brackets(value: &str) -> Option<&str> {
    value.trim().strip_prefix('[')?.strip_suffix(']')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormFields {
        FormFields::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn get_takes_last_non_empty_trimmed_value_of_exact_key() {
        let f = form(&[
            ("model", " whisper-1 "),
            ("model", "whisper-v3"),
            ("model", "  "),
        ]);
        assert_eq!(f.get("model"), Some("whisper-v3"));
        assert_eq!(f.get("prompt"), None);
        assert_eq!(form(&[("prompt", "")]).get("prompt"), None);
        assert_eq!(form(&[("model[]", "x")]).get("model"), None);
    }

    #[test]
    fn list_repeated_brackets_openai_sdk() {
        let f = form(&[
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
        ]);
        assert_eq!(f.list("timestamp_granularities"), ["word", "segment"]);
    }

    #[test]
    fn list_comma_joined_without_brackets_fireworks_sdk() {
        let f = form(&[("timestamp_granularities", "word,segment")]);
        assert_eq!(f.list("timestamp_granularities"), ["word", "segment"]);
    }

    #[test]
    fn list_brackets_and_comma_cookbook() {
        let f = form(&[("timestamp_granularities[]", " Word , SEGMENT ")]);
        assert_eq!(f.list("timestamp_granularities"), ["word", "segment"]);
    }

    #[test]
    fn list_indexed_keys() {
        let f = form(&[
            ("timestamp_granularities[0]", "segment"),
            ("timestamp_granularities[1]", "word"),
        ]);
        assert_eq!(f.list("timestamp_granularities"), ["segment", "word"]);
    }

    #[test]
    fn list_json_array_string() {
        let f = form(&[("timestamp_granularities", r#"["word", "segment"]"#)]);
        assert_eq!(f.list("timestamp_granularities"), ["word", "segment"]);
        let loose = form(&[("timestamp_granularities", "['word', segment]")]);
        assert_eq!(loose.list("timestamp_granularities"), ["word", "segment"]);
    }

    #[test]
    fn list_dedupes_keeps_order_and_ignores_other_keys() {
        let f = form(&[
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities", "segment,word"),
            ("timestamp_granularities[x]", "nope"),
            ("timestamp_granularities_extra", "nope"),
            ("timestamp_granularities[]", ""),
        ]);
        assert_eq!(f.list("timestamp_granularities"), ["word", "segment"]);
        assert!(f.list("include").is_empty());
    }

    #[test]
    fn list_raw_keeps_case() {
        let f = form(&[("keywords[]", "Ember"), ("keywords[]", "WebRTC,Ember")]);
        assert_eq!(f.list_raw("keywords"), ["Ember", "WebRTC"]);
        assert_eq!(f.list("keywords"), ["ember", "webrtc"]);
    }

    #[test]
    fn bool_accepts_every_spelling() {
        for (raw, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("Yes", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("no", false),
            ("NO", false),
        ] {
            assert_eq!(
                form(&[("diarize", raw)]).bool("diarize").unwrap(),
                Some(want),
                "{raw}"
            );
        }
        assert_eq!(form(&[]).bool("diarize").unwrap(), None);
    }

    #[test]
    fn bool_rejects_other_values_naming_the_param() {
        let err = form(&[("stream", "maybe")]).bool("stream").unwrap_err();
        assert_eq!(err.param, "stream");
        assert!(err.message.contains("`stream`"), "{}", err.message);
        assert!(err.message.contains("maybe"), "{}", err.message);
    }

    #[test]
    fn f32_list_single_comma_and_json_forms() {
        let get = |raw: &str| {
            form(&[("temperature", raw)])
                .f32_list("temperature")
                .unwrap()
        };
        assert_eq!(get("0.2"), Some(vec![0.2]));
        assert_eq!(get("0.0,0.2,0.4"), Some(vec![0.0, 0.2, 0.4]));
        assert_eq!(get("[0,0.2]"), Some(vec![0.0, 0.2]));
        assert_eq!(get(" [ 0.0 , 1 ] "), Some(vec![0.0, 1.0]));
        assert_eq!(get("[]"), None);
        assert_eq!(form(&[]).f32_list("temperature").unwrap(), None);
    }

    #[test]
    fn f32_list_rejects_garbage_and_non_finite() {
        for raw in ["hot", "0.2,x", "NaN", "inf", "[0.1, abc]"] {
            let err = form(&[("temperature", raw)])
                .f32_list("temperature")
                .unwrap_err();
            assert_eq!(err.param, "temperature", "{raw}");
            assert!(err.message.contains(raw), "{}", err.message);
        }
    }

    #[test]
    fn u32_accepts_int_and_integral_float() {
        assert_eq!(form(&[("n", "3")]).u32("n").unwrap(), Some(3));
        assert_eq!(form(&[("n", "3.0")]).u32("n").unwrap(), Some(3));
        assert_eq!(form(&[]).u32("n").unwrap(), None);
        for raw in ["-1", "2.5", "x", "1e20"] {
            assert_eq!(
                form(&[("n", raw)]).u32("n").unwrap_err().param,
                "n",
                "{raw}"
            );
        }
    }

    #[test]
    fn nested_reads_bracketed_members() {
        let f = form(&[
            ("chunking_strategy[type]", "server_vad"),
            ("chunking_strategy[threshold]", "0.5"),
            ("chunking_strategy", "auto"),
            ("chunking_strategy[]", "ignored"),
        ]);
        assert_eq!(
            f.nested("chunking_strategy"),
            vec![
                ("type".to_owned(), "server_vad".to_owned()),
                ("threshold".to_owned(), "0.5".to_owned())
            ]
        );
        assert_eq!(f.get("chunking_strategy"), Some("auto"));
    }
}
