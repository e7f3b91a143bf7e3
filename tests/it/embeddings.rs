//! `POST /v1/embeddings`: equality with the Python reference (plain onnxruntime on the
//! same int8 file, `scripts/reference/embeddings_ref.py`), batching, `dimensions`,
//! base64, token-id input and errors.

use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::support::server;

/// 100 varied sentences: short, long, punctuation, numbers, accents, a 300-word one.
fn sentences() -> Vec<String> {
    let words = "the quick brown fox jumps over a lazy dog while speech servers stream \
                 captions to users who search transcripts for dates names and numbers like \
                 42 or 3.14 and cafés naïve résumé internationalisation"
        .split_whitespace()
        .collect::<Vec<_>>();
    let mut out: Vec<String> = (0..99)
        .map(|i| {
            let len = 3 + (i * 7) % 40;
            let text: Vec<&str> = (0..len)
                .map(|j| words[(i * 13 + j * 5) % words.len()])
                .collect();
            format!("{}{}", text.join(" "), if i % 3 == 0 { "?" } else { "." })
        })
        .collect();
    out.push(
        words
            .iter()
            .cycle()
            .take(300)
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
    );
    out
}

async fn embed(body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/embeddings", server().url))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

fn vectors(body: &Value) -> Vec<Vec<f32>> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .expect("float embedding")
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                .collect()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b)).max(1e-12)
}

/// The Python reference's vectors for `texts` (needs the test venv).
fn reference(texts: &[String]) -> Value {
    let python = std::env::var("EMBER_VENV")
        .map(|v| format!("{v}/bin/python"))
        .unwrap_or_else(|_| "python3".to_string());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/reference/embeddings_ref.py"
    );
    let mut child = Command::new(python)
        .arg(script)
        .arg("--ids")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run embeddings_ref.py (scripts/test.sh installs its venv)");
    let input = json!({ "inputs": texts }).to_string();
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), input.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("reference output");
    assert!(output.status.success(), "embeddings_ref.py failed");
    serde_json::from_slice(&output.stdout).expect("reference JSON")
}

#[tokio::test]
async fn embeddings_match_the_python_reference() {
    let texts = sentences();
    let (status, body) = embed(json!({"input": texts, "model": "all-MiniLM-L6-v2"})).await;
    assert_eq!(status, 200, "{body}");
    let ours = vectors(&body);
    let theirs = reference(&texts);
    let theirs: Vec<Vec<f32>> =
        serde_json::from_value(theirs["embeddings"].clone()).expect("vectors");
    assert_eq!(ours.len(), 100);
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| cosine(a, b))
        .fold(f32::INFINITY, f32::min);
    eprintln!("embeddings vs reference: worst cosine {worst:.6}");
    assert!(worst >= 0.999, "worst cosine {worst}");
    assert!(ours.iter().all(|v| v.len() == 384));
    // Token counts include [CLS]/[SEP]; the 300-word input is truncated at 256.
    let expected: usize = serde_json::from_value::<Vec<usize>>(reference(&texts)["tokens"].clone())
        .expect("tokens")
        .iter()
        .sum();
    assert_eq!(
        body["usage"]["prompt_tokens"].as_u64(),
        Some(expected as u64)
    );
}

#[tokio::test]
async fn batched_requests_give_the_single_request_vectors() {
    let texts: Vec<String> = sentences().into_iter().take(24).collect();
    let (_, together) = embed(json!({ "input": texts })).await;
    let together = vectors(&together);
    // Concurrent one-input requests: the batcher coalesces them with each other.
    let singles =
        futures_util::future::join_all(texts.iter().map(|t| embed(json!({ "input": t })))).await;
    for (index, (status, body)) in singles.iter().enumerate() {
        assert_eq!(*status, 200);
        let single = &vectors(body)[0];
        // The int8 weights are dequantised to f32; ORT's kernels block the matrix
        // products differently for different batch shapes, so only the last float
        // bits may move.
        let c = cosine(single, &together[index]);
        assert!(c >= 0.9999, "input {index}: cosine {c}");
    }
}

#[tokio::test]
async fn dimensions_base64_and_token_ids() {
    let (_, full) = embed(json!({"input": "speech to text"})).await;
    let full = &vectors(&full)[0];
    let (status, short) = embed(json!({"input": "speech to text", "dimensions": 64})).await;
    assert_eq!(status, 200);
    let short = &vectors(&short)[0];
    assert_eq!(short.len(), 64);
    let norm: f32 = short.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    assert!(cosine(short, &full[..64]) > 0.9999);

    let (_, encoded) = embed(json!({"input": "speech to text", "encoding_format": "base64"})).await;
    let text = encoded["data"][0]["embedding"]
        .as_str()
        .expect("base64 string");
    let bytes = ember_protocol::base64::decode(text).expect("valid base64");
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(&decoded, full);

    // The reference tokenizer's ids without [CLS]/[SEP]: the server adds them.
    let reference_ids: Vec<u32> =
        serde_json::from_value(reference(&["speech to text".to_string()])["ids"][0].clone())
            .expect("ids");
    let inner = &reference_ids[1..reference_ids.len() - 1];
    let (status, by_ids) = embed(json!({ "input": [inner] })).await;
    assert_eq!(status, 200, "{by_ids}");
    assert!(cosine(&vectors(&by_ids)[0], full) > 0.9999);
}

#[tokio::test]
async fn embedding_errors_are_400s_naming_the_parameter() {
    let many: Vec<String> = (0..2049).map(|i| format!("s{i}")).collect();
    for (body, param) in [
        (json!({"input": ""}), "input"),
        (json!({"input": []}), "input"),
        (json!({ "input": many }), "input"),
        (json!({"input": [[1, 2], "x"]}), "input"),
        (json!({"input": "x", "dimensions": 1000}), "dimensions"),
        (
            json!({"input": "x", "encoding_format": "hex"}),
            "encoding_format",
        ),
        (json!({"model": "x"}), "input"),
    ] {
        let (status, error) = embed(body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["param"], param, "{error}");
    }
    let (status, error) = embed(json!({"input": [[999999]]})).await;
    assert_eq!(status, 400, "{error}");
    let response = reqwest::Client::new()
        .post(format!("{}/v1/embeddings", server().url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
}
