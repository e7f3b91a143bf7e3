//! `POST /v1/embeddings` (OpenAI-compatible, as Fireworks serves it): the request with
//! its four `input` shapes, validation with parameter-named messages, and the response.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// Most inputs one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// The request body as sent.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingsBody {
    /// Absent is `null`, refused with a message naming `input`.
    #[serde(default)]
    pub input: serde_json::Value,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub dimensions: Option<i64>,
}

/// One input: text, or token ids the client tokenised itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddingInput {
    Text(String),
    Tokens(Vec<u32>),
}

/// How vectors are sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingFormat {
    /// JSON arrays of floats.
    #[default]
    Float,
    /// Little-endian f32 bytes, base64 (what the OpenAI Python SDK asks for by default).
    Base64,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    pub inputs: Vec<EmbeddingInput>,
    pub model: Option<String>,
    pub encoding_format: EncodingFormat,
    /// Truncate to this many dimensions and re-normalise.
    pub dimensions: Option<usize>,
}

impl EmbeddingsRequest {
    /// Checks the body: `input` is a string, an array of strings, an array of token
    /// ids or an array of arrays of token ids, non-empty, at most [`MAX_INPUTS`].
    pub fn from_body(body: EmbeddingsBody) -> Result<Self, FieldError> {
        let inputs = parse_input(&body.input)?;
        let encoding_format = match body.encoding_format.as_deref().map(str::trim) {
            None | Some("") | Some("float") => EncodingFormat::Float,
            Some("base64") => EncodingFormat::Base64,
            Some(other) => {
                return Err(FieldError::new(
                    "encoding_format",
                    format!("`encoding_format` must be `float` or `base64`, got `{other}`"),
                ))
            }
        };
        let dimensions = match body.dimensions {
            None => None,
            Some(d) if d >= 1 => Some(d as usize),
            Some(d) => {
                return Err(FieldError::new(
                    "dimensions",
                    format!("`dimensions` must be a positive integer, got {d}"),
                ))
            }
        };
        Ok(Self {
            inputs,
            model: body.model,
            encoding_format,
            dimensions,
        })
    }
}

fn parse_input(input: &serde_json::Value) -> Result<Vec<EmbeddingInput>, FieldError> {
    use serde_json::Value;
    let bad = |detail: &str| {
        FieldError::new(
            "input",
            format!(
                "`input` must be a string, an array of strings, an array of token ids or an \
                 array of arrays of token ids; {detail}"
            ),
        )
    };
    let inputs = match input {
        Value::String(s) => vec![EmbeddingInput::Text(s.clone())],
        Value::Array(items) if items.is_empty() => {
            return Err(FieldError::new("input", "`input` is an empty array"))
        }
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .map(|v| EmbeddingInput::Text(v.as_str().unwrap_or_default().to_string()))
            .collect(),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            vec![EmbeddingInput::Tokens(token_ids(items).ok_or_else(
                || bad("token ids must be integers from 0 to 4294967295"),
            )?)]
        }
        Value::Array(items) if items.iter().all(Value::is_array) => items
            .iter()
            .map(|v| {
                let ids = v
                    .as_array()
                    .and_then(|a| token_ids(a))
                    .ok_or_else(|| bad("each inner array must hold integer token ids"))?;
                Ok(EmbeddingInput::Tokens(ids))
            })
            .collect::<Result<_, FieldError>>()?,
        Value::Array(_) => return Err(bad("the array mixes kinds")),
        Value::Null => return Err(FieldError::new("input", "`input` is required")),
        _ => return Err(bad("got another JSON type")),
    };
    if inputs.len() > MAX_INPUTS {
        return Err(FieldError::new(
            "input",
            format!(
                "`input` has {} items; at most {MAX_INPUTS} are allowed per request",
                inputs.len()
            ),
        ));
    }
    for (index, input) in inputs.iter().enumerate() {
        let empty = match input {
            EmbeddingInput::Text(t) => t.trim().is_empty(),
            EmbeddingInput::Tokens(t) => t.is_empty(),
        };
        if empty {
            return Err(FieldError::new(
                "input",
                format!("`input[{index}]` is empty; every input must have content"),
            ));
        }
    }
    Ok(inputs)
}

fn token_ids(items: &[serde_json::Value]) -> Option<Vec<u32>> {
    items
        .iter()
        .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
        .collect()
}

/// One vector on the wire.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingData {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingVector,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingsUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

/// The response body.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingsResponse {
    pub object: &'static str,
    pub data: Vec<EmbeddingData>,
    pub model: String,
    pub usage: EmbeddingsUsage,
}

impl EmbeddingsResponse {
    /// Builds the body from the vectors in input order and the tokens they took.
    pub fn new(
        model: String,
        vectors: Vec<Vec<f32>>,
        format: EncodingFormat,
        prompt_tokens: usize,
    ) -> Self {
        let data = vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| EmbeddingData {
                object: "embedding",
                index,
                embedding: match format {
                    EncodingFormat::Float => EmbeddingVector::Float(v),
                    EncodingFormat::Base64 => EmbeddingVector::Base64(base64_f32(&v)),
                },
            })
            .collect();
        Self {
            object: "list",
            data,
            model,
            usage: EmbeddingsUsage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        }
    }
}

/// Little-endian f32 bytes in standard base64 (OpenAI's `encoding_format=base64`).
pub fn base64_f32(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    crate::base64::encode(&bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<EmbeddingsRequest, FieldError> {
        EmbeddingsRequest::from_body(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn all_four_input_shapes() {
        let one = parse(json!({"input": "hi"})).unwrap();
        assert_eq!(one.inputs, [EmbeddingInput::Text("hi".into())]);
        assert_eq!(parse(json!({"input": ["a", "b"]})).unwrap().inputs.len(), 2);
        assert_eq!(
            parse(json!({"input": [1, 2, 3]})).unwrap().inputs,
            [EmbeddingInput::Tokens(vec![1, 2, 3])]
        );
        assert_eq!(
            parse(json!({"input": [[1], [2, 3]]})).unwrap().inputs.len(),
            2
        );
    }

    #[test]
    fn bad_inputs_name_the_parameter() {
        for body in [
            json!({"input": []}),
            json!({"input": [""]}),
            json!({"input": ["a", 1]}),
            json!({"input": [-1]}),
            json!({"input": {"a": 1}}),
            json!({"model": "x"}),
        ] {
            let err = EmbeddingsRequest::from_body(serde_json::from_value(body.clone()).unwrap_or(
                EmbeddingsBody {
                    input: serde_json::Value::Null,
                    model: None,
                    encoding_format: None,
                    dimensions: None,
                },
            ))
            .unwrap_err();
            assert_eq!(err.param, "input", "{body}");
        }
        let many: Vec<String> = (0..=MAX_INPUTS).map(|i| i.to_string()).collect();
        assert!(parse(json!({ "input": many })).is_err());
        assert_eq!(
            parse(json!({"input": "a", "dimensions": 0}))
                .unwrap_err()
                .param,
            "dimensions"
        );
        assert_eq!(
            parse(json!({"input": "a", "encoding_format": "hex"}))
                .unwrap_err()
                .param,
            "encoding_format"
        );
    }

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 = 00 00 80 3f
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 2.0]), "AACAPwAAAEA=");
    }
}
