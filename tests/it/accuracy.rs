//! ASR quality on the real recordings of `../shared/data`, asserted by normalised WER
//! (never exact strings), language detection, and translation into English.

use crate::support::{data, form, json, manifest, post, server};
use crate::wer::{errors, wer};

/// Every English clip through base: overall WER ≤ 10 % (issue 3), per-clip figures printed.
#[tokio::test]
async fn english_clips_with_base() {
    let server = server();
    let mut total_errors = 0;
    let mut total_words = 0;
    for clip in manifest()
        .iter()
        .filter(|c| c.lang.as_deref() == Some("en"))
    {
        let (status, _, body) = post(
            server,
            "/v1/audio/transcriptions",
            form(&data(&clip.audio), &[("model", "base"), ("language", "en")]),
        )
        .await;
        assert_eq!(status, 200, "{}: {body}", clip.audio);
        let text = json(&body)["text"].as_str().unwrap_or_default().to_string();
        let (e, n) = errors(&clip.transcript, &text);
        println!(
            "WER {:>6.1}%  {}  | {}",
            100.0 * e as f64 / n.max(1) as f64,
            clip.audio,
            text
        );
        total_errors += e;
        total_words += n;
    }
    let overall = total_errors as f64 / total_words as f64;
    println!(
        "overall WER {:.2}% over {total_words} words",
        overall * 100.0
    );
    assert!(overall <= 0.10, "overall WER {overall:.3} > 0.10");
}

/// JFK by both models; tiny.en is the fast English-only path.
#[tokio::test]
async fn jfk_with_tiny_en_and_base() {
    let reference = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
    for model in ["tiny.en", "base", "whisper-1"] {
        let (status, _, body) = post(
            server(),
            "/v1/audio/transcriptions",
            form(&data("jfk/jfk.wav"), &[("model", model)]),
        )
        .await;
        assert_eq!(status, 200, "{model}: {body}");
        let text = json(&body)["text"].as_str().unwrap_or_default().to_string();
        let score = wer(reference, &text);
        println!("{model}: WER {:.1}% | {text}", score * 100.0);
        assert!(score <= 0.10, "{model}: WER {score} for {text}");
    }
}

/// Spanish and French prompts: language detected; `/translations` answers in English.
#[tokio::test]
async fn language_detection_and_translation() {
    for (lang, clip, english_words) in [
        (
            "es",
            "asterisk_prompts/es/auth-incorrect.flac",
            ["password", "please"],
        ),
        (
            "fr",
            "asterisk_prompts/fr/auth-incorrect.flac",
            ["password", "your"],
        ),
    ] {
        let (status, _, body) = post(
            server(),
            "/v1/audio/transcriptions",
            form(&data(clip), &[("response_format", "verbose_json")]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["language"], lang, "{clip}: {body}");

        let (status, _, body) = post(
            server(),
            "/v1/audio/translations",
            form(&data(clip), &[("response_format", "verbose_json")]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["task"], "translate");
        let text = v["text"].as_str().unwrap_or_default().to_lowercase();
        let hits = english_words.iter().filter(|w| text.contains(*w)).count();
        assert!(hits >= 1, "{clip}: translation not English enough: {text}");
    }
}
