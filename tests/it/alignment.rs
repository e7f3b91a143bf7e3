//! Forced alignment (PROTOCOL §2.7): `/v1/audio/alignments` and word times on
//! transcriptions, measured against exactly known boundaries (the espeak-ng set made by
//! `scripts/align/make_known_boundaries.py`) and the silver timings in `../shared/data`.
//! Thresholds come from `scripts/measure/alignment_accuracy.py` runs with margin.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_models::{AlignEngine, AlignInput, AlignRequest, AlignWindow, AlignerManifest, Priority};

use crate::support::{data, data_dir, form, json, models_dir, post, server};

/// Measured 27.9 ms (starts) and 35.6 ms (ends) on the known-boundary set.
const KNOWN_START_MAE_MS: f64 = 45.0;
const KNOWN_END_MAE_MS: f64 = 50.0;
/// Measured 32.5 / 30.7 ms on the silver set (whose own error is ~0.1 s).
const SILVER_MAE_MS: f64 = 55.0;

/// One clip with reference word times (seconds).
struct Reference {
    audio: PathBuf,
    words: Vec<(f64, f64, String)>,
}

impl Reference {
    fn text(&self) -> String {
        self.words
            .iter()
            .map(|w| w.2.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn read_tsv(path: &Path) -> Vec<(f64, f64, String)> {
    std::fs::read_to_string(path)
        .expect("read words tsv")
        .lines()
        .filter(|l| !l.starts_with("start") && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split('\t');
            let start = parts.next().and_then(|s| s.parse().ok()).expect("start");
            let end = parts.next().and_then(|s| s.parse().ok()).expect("end");
            (start, end, parts.next().unwrap_or_default().to_string())
        })
        .collect()
}

/// The espeak-ng set with exact boundaries, generated on first use (cached).
fn known_set() -> Vec<Reference> {
    let dir = std::env::var_os("EMBER_ALIGN_SET").map_or_else(
        || {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".cache/ember/align-set")
        },
        PathBuf::from,
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/align/make_known_boundaries.py"
    );
    let status = Command::new("python3")
        .arg(script)
        .arg("--out")
        .arg(&dir)
        .status()
        .expect(
            "run make_known_boundaries.py (needs python3 and espeak-ng: scripts/ensure-espeak.sh)",
        );
    assert!(status.success(), "generating the known-boundary set failed");
    let manifest: serde_json::Value =
        json(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"));
    manifest["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .map(|clip| Reference {
            audio: dir.join(clip["wav"].as_str().expect("wav")),
            words: read_tsv(&dir.join(clip["words_tsv"].as_str().expect("tsv"))),
        })
        .collect()
}

/// Real recordings with silver (machine or hand) word timings.
fn silver_set() -> Vec<Reference> {
    let text = std::fs::read_to_string(data("manifest.jsonl")).expect("manifest.jsonl");
    text.lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let words = v["words"].as_str()?;
            Some(Reference {
                audio: data_dir().join(v["audio"].as_str()?),
                words: read_tsv(&data_dir().join(words)),
            })
        })
        .collect()
}

/// Absolute start and end errors (ms) of every word, after checking the response:
/// one word per token, in order, times monotonic and inside the audio.
fn word_errors(reference: &Reference, body: &serde_json::Value) -> (Vec<f64>, Vec<f64>) {
    let words = body["words"].as_array().expect("words");
    assert_eq!(words.len(), reference.words.len(), "{body}");
    let duration = body["duration"].as_f64().expect("duration");
    let mut previous_end = 0.0;
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    for (word, (start, end, token)) in words.iter().zip(&reference.words) {
        assert_eq!(word["word"], token.as_str());
        let (s, e) = (
            word["start"].as_f64().expect("start"),
            word["end"].as_f64().expect("end"),
        );
        assert!(
            s >= previous_end - 1e-6 && e >= s && e <= duration + 1e-6,
            "{token}: {s}-{e} after {previous_end} in {duration} s"
        );
        previous_end = e;
        starts.push((s - start).abs() * 1000.0);
        ends.push((e - end).abs() * 1000.0);
    }
    (starts, ends)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Aligns every clip and returns the start and end MAE (ms).
async fn measure(set: &[Reference], aligner: &str) -> (f64, f64) {
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    for reference in set {
        let text = reference.text();
        let fields = [("text", text.as_str()), ("alignment_model", aligner)];
        let (status, _, body) = post(
            server(),
            "/v1/audio/alignments",
            form(&reference.audio, &fields),
        )
        .await;
        assert_eq!(status, 200, "{}: {body}", reference.audio.display());
        let (s, e) = word_errors(reference, &json(&body));
        starts.extend(s);
        ends.extend(e);
    }
    (mean(&starts), mean(&ends))
}

#[tokio::test]
async fn tdnn_ffn_finds_known_word_boundaries() {
    let set = known_set();
    assert!(set.len() >= 20, "known set has {} clips", set.len());
    let (start_mae, end_mae) = measure(&set, "tdnn_ffn").await;
    eprintln!("known set tdnn_ffn: start MAE {start_mae:.1} ms, end MAE {end_mae:.1} ms");
    assert!(
        start_mae <= KNOWN_START_MAE_MS,
        "start MAE {start_mae:.1} ms"
    );
    assert!(end_mae <= KNOWN_END_MAE_MS, "end MAE {end_mae:.1} ms");
}

#[tokio::test]
async fn tdnn_ffn_beats_whisper_token_times_on_real_recordings() {
    let set = silver_set();
    assert!(set.len() >= 6);
    let (start_mae, end_mae) = measure(&set, "tdnn_ffn").await;
    let (token_start, token_end) = measure(&set, "whisper_tokens").await;
    eprintln!(
        "silver set: tdnn_ffn {start_mae:.1}/{end_mae:.1} ms, whisper tokens {token_start:.1}/{token_end:.1} ms"
    );
    assert!(start_mae <= SILVER_MAE_MS && end_mae <= SILVER_MAE_MS);
    assert!(start_mae + end_mae < token_start + token_end);
}

#[tokio::test]
async fn every_token_gets_a_time_and_unspeakable_ones_are_flagged() {
    let jfk = data("jfk/jfk.wav");
    let text = "And so my fellow Americans — ask not what your country can do for you, \
                ask what you can do for your country. 🙂";
    let fields = [
        ("text", text),
        ("include[]", "interpolated"),
        ("response_format", "verbose_json"),
    ];
    let (status, _, body) = post(server(), "/v1/audio/alignments", form(&jfk, &fields)).await;
    assert_eq!(status, 200, "{body}");
    let body = json(&body);
    let words = body["words"].as_array().expect("words");
    assert_eq!(words.len(), text.split_whitespace().count());
    let flagged: Vec<&str> = words
        .iter()
        .filter(|w| w["interpolated"] == true)
        .map(|w| w["word"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(flagged, ["—", "🙂"], "{body}");
    // Sentences: two segments, the second starting at the second "ask".
    let segments = body["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), 2, "{body}");
    assert!(segments[0]["text"]
        .as_str()
        .is_some_and(|t| t.ends_with("country.")));
    // Without `include[]` the strict SDK schema sees no extra field.
    let (_, _, plain) = post(
        server(),
        "/v1/audio/alignments",
        form(&jfk, &[("text", "ask not")]),
    )
    .await;
    assert!(json(&plain)["words"][0].get("interpolated").is_none());
}

#[tokio::test]
async fn alignment_formats_and_errors() {
    let jfk = data("jfk/jfk.wav");
    let text = ("text", "And so my fellow Americans, ask not.");
    for (format, needle) in [("srt", "-->"), ("vtt", "WEBVTT"), ("json", "\"text\"")] {
        let (status, _, body) = post(
            server(),
            "/inference/v1/audio/alignments",
            form(&jfk, &[text, ("response_format", format)]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(needle), "{format}: {body}");
    }
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "`text` is required"),
        (&[("text", "   ")], "`text` is"),
        (&[text, ("alignment_model", "mms_fa")], "`tdnn_ffn`"),
        (&[text, ("alignment_model", "ctc")], "alignment_model"),
    ];
    for (fields, needle) in cases {
        let (status, _, body) = post(server(), "/v1/audio/alignments", form(&jfk, fields)).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(needle), "{needle}: {body}");
    }
}

#[tokio::test]
async fn transcription_words_use_the_aligner() {
    let jfk = data("jfk/jfk.wav");
    let reference = Reference {
        audio: jfk.clone(),
        words: read_tsv(&data("jfk/jfk.words.pocketsphinx.tsv")),
    };
    let mut errors = Vec::new();
    for aligner in ["tdnn_ffn", "whisper", "whisper_tokens"] {
        let fields = [
            ("model", "tiny.en"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("alignment_model", aligner),
        ];
        let (status, _, body) =
            post(server(), "/v1/audio/transcriptions", form(&jfk, &fields)).await;
        assert_eq!(status, 200, "{body}");
        let body = json(&body);
        let words = body["words"].as_array().expect("words");
        // tiny.en hears jfk word for word (22 words); compare where the words match.
        let heard: Vec<(f64, f64)> = words
            .iter()
            .map(|w| {
                (
                    w["start"].as_f64().unwrap_or(-1.0),
                    w["end"].as_f64().unwrap_or(-1.0),
                )
            })
            .collect();
        assert!(heard
            .windows(2)
            .all(|p| p[1].0 >= p[0].1 - 1e-6 && p[0].1 >= p[0].0));
        if heard.len() == reference.words.len() {
            let mae: f64 = mean(
                &heard
                    .iter()
                    .zip(&reference.words)
                    .flat_map(|(h, r)| [(h.0 - r.0).abs(), (h.1 - r.1).abs()])
                    .collect::<Vec<_>>(),
            ) * 1000.0;
            eprintln!("jfk transcription words with {aligner}: MAE {mae:.1} ms");
            errors.push((aligner, mae));
        }
    }
    let mae = |name: &str| errors.iter().find(|e| e.0 == name).map(|e| e.1);
    let (Some(tdnn), Some(tokens)) = (mae("tdnn_ffn"), mae("whisper_tokens")) else {
        panic!("tiny.en did not hear jfk word for word: {errors:?}");
    };
    assert!(
        tdnn < tokens,
        "tdnn_ffn {tdnn:.1} ms vs tokens {tokens:.1} ms"
    );
}

#[tokio::test]
async fn non_english_words_fall_back_to_whisper_dtw() {
    let clip = crate::support::manifest()
        .into_iter()
        .find(|c| c.lang.as_deref() == Some("fr") && c.audio.contains("asterisk"))
        .expect("a French clip");
    // The Fireworks SDK always sends `alignment_model=tdnn_ffn`; French gets DTW.
    let fields = [
        ("model", "base"),
        ("language", "fr"),
        ("alignment_model", "tdnn_ffn"),
        ("response_format", "verbose_json"),
        ("timestamp_granularities", "word,segment"),
    ];
    let (status, _, body) = post(
        server(),
        "/v1/audio/transcriptions",
        form(&data(&clip.audio), &fields),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body = json(&body);
    let duration = body["duration"].as_f64().expect("duration");
    let words = body["words"].as_array().expect("words");
    assert!(words.len() >= 3, "{body}");
    let mut previous = 0.0;
    for w in words {
        let (s, e) = (
            w["start"].as_f64().expect("s"),
            w["end"].as_f64().expect("e"),
        );
        assert!(
            s >= previous - 1e-6 && e >= s && e <= duration + 1e-6,
            "{body}"
        );
        previous = e;
    }
}

/// An operator-installed CTC aligner through the manifest, with the character
/// frontend: the `hama` acoustic model driven by letters instead of G2P phonemes (its
/// phoneme set includes most English letters) stands in for an `mms_fa` export, which
/// no registry we can reach ships.
#[tokio::test]
async fn operator_manifest_with_character_frontend_aligns() {
    let provisioned = ember_models::provision::list(&models_dir()).expect("manifest");
    ember_models::onnx::init_from_manifest(&provisioned).expect("onnx runtime");
    let tdnn = AlignerManifest::tdnn_ffn(&provisioned)
        .expect("read")
        .expect("tdnn_ffn installed");
    let folder = tempfile::tempdir().expect("tempdir");
    let manifest = serde_json::json!({
        "name": "mms_fa",
        "languages": ["*"],
        "model": tdnn.model,
        "lengths_input": "waveform_lengths",
        "vocabulary": tdnn.vocabulary,
        "blank": "<blank>",
        "word_boundary": "<wb>",
        "text": {"kind": "characters"},
    });
    std::fs::write(folder.path().join("manifest.json"), manifest.to_string()).expect("write");
    let installed = AlignerManifest::read(folder.path()).expect("manifest parses");
    let engine = AlignEngine::new(vec![installed], 1, 4).expect("engine");
    assert_eq!(engine.names(), ["mms_fa"]);

    let reference = read_tsv(&data("jfk/jfk.words.pocketsphinx.tsv"));
    let samples = crate::audio::load(&data("jfk/jfk.wav"));
    let words: Vec<String> = reference.iter().map(|w| w.2.clone()).collect();
    let receiver = engine
        .submit(
            AlignRequest {
                aligner: "mms_fa".into(),
                audio: Arc::new(samples.clone()),
                input: AlignInput::Windows(vec![AlignWindow {
                    start: 0,
                    end: samples.len(),
                    words,
                }]),
                priority: Priority::Batch,
            },
            Instant::now() + Duration::from_secs(60),
        )
        .expect("submit");
    let times = receiver.await.expect("reply").expect("aligned");
    assert_eq!(times.len(), reference.len());
    let mae = mean(
        &times
            .iter()
            .zip(&reference)
            .map(|(t, r)| (t.start_ms as f64 / 1000.0 - r.0).abs() * 1000.0)
            .collect::<Vec<_>>(),
    );
    eprintln!("character frontend on jfk: start MAE {mae:.1} ms");
    assert!(mae < 250.0, "start MAE {mae:.1} ms");
}
