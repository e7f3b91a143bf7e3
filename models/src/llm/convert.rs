//! Provisioning of the chat model (DESIGN §2–3): the SmolLM2 GGUF ships as Q4_1, which
//! has no SIMD kernel in candle (8–11 tok/s); re-quantised to Q8_0 it runs 44–57 tok/s
//! with identical greedy output. The tokenizer is written as a `tokenizer.json` built
//! from the GGUF vocabulary, with the pre-tokenizer that matches llama.cpp for
//! `pre = "smollm"` (candle's GGUF tokenizer adds a leading space there).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use serde_json::{json, Value};

/// GGUF token type of control (special) tokens.
const CONTROL_TOKEN: i32 = 3;

fn err(detail: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(detail.to_string())
}

/// Rewrites a GGUF with every Q4_0/Q4_1 tensor re-quantised to Q8_0 (metadata kept).
pub fn requantize_q8_0(source: &Path, target: &mut File) -> std::io::Result<()> {
    let mut reader = BufReader::new(File::open(source)?);
    let content = gguf_file::Content::read(&mut reader).map_err(err)?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(err)?;
        let tensor = match tensor.dtype() {
            GgmlDType::Q4_0 | GgmlDType::Q4_1 => {
                let values = tensor.dequantize(&Device::Cpu).map_err(err)?;
                QTensor::quantize(&values, GgmlDType::Q8_0).map_err(err)?
            }
            _ => tensor,
        };
        tensors.push((name.clone(), tensor));
    }
    let mut metadata: Vec<(&String, &gguf_file::Value)> = content.metadata.iter().collect();
    metadata.sort_by(|a, b| a.0.cmp(b.0));
    let metadata: Vec<(&str, &gguf_file::Value)> =
        metadata.into_iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut writer = BufWriter::new(target);
    gguf_file::write(&mut writer, &metadata, &tensors).map_err(err)?;
    writer.flush()
}

/// Writes a `tokenizer.json` (byte-level BPE) from the GGUF's vocabulary and merges.
pub fn write_tokenizer_json(source: &Path, target: &mut File) -> std::io::Result<()> {
    let mut reader = BufReader::new(File::open(source)?);
    let content = gguf_file::Content::read(&mut reader).map_err(err)?;
    let json = tokenizer_json(&content.metadata)?;
    target.write_all(&serde_json::to_vec(&json)?)
}

fn strings(
    metadata: &std::collections::HashMap<String, gguf_file::Value>,
    key: &str,
) -> std::io::Result<Vec<String>> {
    metadata
        .get(key)
        .ok_or_else(|| err(format!("the GGUF has no `{key}`")))?
        .to_vec()
        .map_err(err)?
        .iter()
        .map(|v| v.to_string().cloned().map_err(err))
        .collect()
}

fn tokenizer_json(
    metadata: &std::collections::HashMap<String, gguf_file::Value>,
) -> std::io::Result<Value> {
    let model = metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if model != "gpt2" {
        return Err(err(format!(
            "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"
        )));
    }
    let tokens = strings(metadata, "tokenizer.ggml.tokens")?;
    let merges = strings(metadata, "tokenizer.ggml.merges")?;
    let types: Vec<i32> = match metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(err)?
            .iter()
            .map(|t| t.to_i32().unwrap_or(1))
            .collect(),
        None => Vec::new(),
    };
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), json!(id)))
        .collect();
    let added: Vec<Value> = tokens
        .iter()
        .enumerate()
        .filter(|(id, _)| types.get(*id) == Some(&CONTROL_TOKEN))
        .map(|(id, t)| {
            json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    }))
}
