//! Every response format is well-formed (srt/vtt parsed back), word and segment times are
//! monotonic and inside the audio, and OpenAI `stream=true` yields deltas then `done`.

use crate::support::{data, form, json, post, server};

const JFK_SECONDS: f64 = 11.0;

/// `HH:MM:SS,mmm` or `HH:MM:SS.mmm` to seconds.
fn cue_time(text: &str) -> f64 {
    let text = text.trim().replace(',', ".");
    let parts: Vec<&str> = text.split(':').collect();
    assert_eq!(parts.len(), 3, "bad cue time {text}");
    let h: f64 = parts[0].parse().expect("hours");
    let m: f64 = parts[1].parse().expect("minutes");
    let s: f64 = parts[2].parse().expect("seconds");
    h * 3600.0 + m * 60.0 + s
}

/// Parses cues back: (start, end, text) per cue.
fn cues(body: &str, separator: &str) -> Vec<(f64, f64, String)> {
    body.split("\n\n")
        .filter_map(|block| {
            let line = block.lines().find(|l| l.contains(" --> "))?;
            let (start, end) = line.split_once(" --> ")?;
            let text: Vec<&str> = block
                .lines()
                .skip_while(|l| !l.contains(" --> "))
                .skip(1)
                .collect();
            assert!(start.contains(separator), "cue time separator in {line}");
            Some((cue_time(start), cue_time(end), text.join(" ")))
        })
        .collect()
}

async fn jfk(format: &str, extra: &[(&str, &str)]) -> (reqwest::header::HeaderMap, String) {
    let mut fields = vec![("response_format", format), ("model", "tiny.en")];
    fields.extend_from_slice(extra);
    let (status, headers, body) = post(
        server(),
        "/v1/audio/transcriptions",
        form(&data("jfk/jfk.wav"), &fields),
    )
    .await;
    assert_eq!(status, 200, "{format}: {body}");
    (headers, body)
}

fn assert_monotonic_cues(cues: &[(f64, f64, String)]) {
    assert!(!cues.is_empty());
    let mut last_end = 0.0;
    for (start, end, text) in cues {
        assert!(
            start <= end && *start >= last_end - 1e-3 && *end <= JFK_SECONDS + 0.01,
            "{cues:?}"
        );
        assert!(!text.trim().is_empty());
        last_end = *end;
    }
}

#[tokio::test]
async fn json_is_exactly_text() {
    let (headers, body) = jfk("json", &[]).await;
    assert!(headers["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("application/json"));
    let v = json(&body);
    let object = v.as_object().expect("object");
    assert_eq!(object.len(), 1, "{body}");
    assert!(v["text"].as_str().unwrap_or_default().contains("country"));
}

#[tokio::test]
async fn text_srt_vtt_parse_back() {
    let (headers, text) = jfk("text", &[]).await;
    assert!(headers["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/plain"));
    assert!(text.ends_with('\n') && text.contains("country"));

    let (_, srt) = jfk("srt", &[]).await;
    assert!(srt.starts_with("1\n"), "{srt}");
    assert_monotonic_cues(&cues(&srt, ","));

    let (_, vtt) = jfk("vtt", &[]).await;
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    assert_monotonic_cues(&cues(&vtt, "."));
}

#[tokio::test]
async fn verbose_json_words_and_segments() {
    // Both wire forms of the granularity list (PROTOCOL §2.1.3).
    for granularity_field in [
        ("timestamp_granularities[]", "word,segment"),
        ("timestamp_granularities", "word,segment"),
    ] {
        let (_, body) = jfk("verbose_json", &[granularity_field]).await;
        let v = json(&body);
        assert_eq!(v["task"], "transcribe");
        assert_eq!(v["language"], "en");
        let duration = v["duration"].as_f64().expect("duration");
        assert!((duration - JFK_SECONDS).abs() < 0.05, "{duration}");
        let words = v["words"].as_array().expect("words");
        assert!(words.len() >= 15, "{} words", words.len());
        let mut last = 0.0;
        for w in words {
            let (start, end) = (
                w["start"].as_f64().expect("start"),
                w["end"].as_f64().expect("end"),
            );
            assert!(
                start >= last - 1e-3 && start <= end && end <= duration + 1e-3,
                "{w}"
            );
            assert!(!w["word"].as_str().unwrap_or_default().trim().is_empty());
            assert_eq!(w["language"], "en");
            last = start;
        }
        let segments = v["segments"].as_array().expect("segments");
        assert!(!segments.is_empty());
        for s in segments {
            for key in [
                "id",
                "seek",
                "start",
                "end",
                "audio_start",
                "audio_end",
                "text",
                "language",
                "tokens",
                "temperature",
                "avg_logprob",
                "compression_ratio",
                "no_speech_prob",
            ] {
                assert!(s.get(key).is_some(), "segment lacks {key}: {s}");
            }
        }
        assert!(v.get("usage").is_none());
    }
}

#[tokio::test]
async fn openai_stream_sends_deltas_then_done() {
    let (headers, body) = jfk("json", &[("stream", "true")]).await;
    assert!(headers["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/event-stream"));
    let events: Vec<serde_json::Value> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(json)
        .collect();
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "transcript.text.delta")
        .map(|e| e["delta"].as_str().unwrap_or_default())
        .collect();
    let done = events.last().expect("events");
    assert_eq!(done["type"], "transcript.text.done", "{body}");
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        squash(&deltas),
        squash(done["text"].as_str().unwrap_or_default())
    );
    assert!(deltas.contains("country"));
}

#[tokio::test]
async fn raw_bytes_named_upload_are_sniffed() {
    let bytes = std::fs::read(data("asterisk_prompts/en/auth-incorrect.flac")).expect("read");
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name("upload")
                .mime_str("application/octet-stream")
                .expect("mime"),
        )
        .text("model", "tiny.en");
    let (status, _, body) = post(server(), "/inference/v1/audio/transcriptions", form).await;
    assert_eq!(status, 200, "{body}");
    assert!(json(&body)["text"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
        .contains("password"));
}
