//! The long-form pipeline end to end: speech separated by long silences comes back with
//! absolute timestamps, nothing decoded over the silence, per-stage timings on request and
//! in `/metrics`.

use crate::audio::{concat, load, silence, wav_form};
use crate::support::{data, json, manifest, post, server};
use crate::wer::wer;

const PARTS: &[&str] = &[
    "jfk/jfk.wav",
    "cmu_arctic_slt_a0009/arctic_a0009.wav",
    "librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0870.wav",
];

fn reference(audio: &str) -> String {
    manifest()
        .into_iter()
        .find(|c| c.audio == audio)
        .map(|c| c.transcript)
        .unwrap_or_else(|| panic!("{audio} is not in manifest.jsonl"))
}

#[tokio::test]
async fn speech_between_long_silences_keeps_absolute_times() {
    // clip, 25 s silence, clip, 40 s silence, clip: 86 s of audio, 21 s of speech.
    let (audio, spans) = concat(&[
        load(&data(PARTS[0])),
        silence(25.0),
        load(&data(PARTS[1])),
        silence(40.0),
        load(&data(PARTS[2])),
    ]);
    let clip_spans = [&spans[0], &spans[2], &spans[4]];
    let response = reqwest::Client::new()
        .post(format!("{}/v1/audio/transcriptions", server().url))
        .header("x-ember-timings", "true")
        .multipart(wav_form(
            &audio,
            &[
                ("model", "base"),
                ("language", "en"),
                ("response_format", "verbose_json"),
                ("timestamp_granularities[]", "segment"),
                ("timestamp_granularities[]", "word"),
            ],
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let body = json(&response.text().await.expect("body"));
    let text = body["text"].as_str().unwrap_or_default();
    let expected: Vec<String> = PARTS.iter().map(|p| reference(p)).collect();
    let score = wer(&expected.join(" "), text);
    println!("WER {:.1}% | {text}", score * 100.0);
    assert!(score <= 0.10, "WER {score}");

    let segments = body["segments"].as_array().expect("segments");
    for segment in segments {
        let (start, end) = (
            segment["start"].as_f64().expect("start"),
            segment["end"].as_f64().expect("end"),
        );
        let middle = (start + end) / 2.0;
        assert!(
            clip_spans
                .iter()
                .any(|s| middle >= s.start - 0.5 && middle <= s.end + 0.5),
            "segment {start}-{end} lies in a silence: {segment}"
        );
    }
    for span in clip_spans {
        assert!(
            segments.iter().any(|s| {
                let start = s["start"].as_f64().unwrap_or(-1.0);
                start >= span.start - 1.0 && start <= span.start + 1.5
            }),
            "no segment starts near {:.1} s",
            span.start
        );
    }
    let words = body["words"].as_array().expect("words");
    let starts: Vec<f64> = words.iter().filter_map(|w| w["start"].as_f64()).collect();
    assert_eq!(starts.len(), words.len());
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "word times go back"
    );
    let duration = body["duration"].as_f64().expect("duration");
    assert!((duration - audio.len() as f64 / 16_000.0).abs() < 0.05);

    let timings = &body["timings"];
    for stage in ["decode", "resample", "preprocess", "vad", "asr"] {
        assert!(
            timings[stage].as_f64().is_some(),
            "no {stage} timing: {timings}"
        );
    }
    assert!(timings["asr"].as_f64().unwrap_or(0.0) > 0.0);
}

#[tokio::test]
async fn timings_only_when_asked_and_metrics_scrape() {
    let (status, _, body) = post(
        server(),
        "/v1/audio/transcriptions",
        crate::support::form(
            &data("jfk/jfk.wav"),
            &[("model", "tiny.en"), ("response_format", "verbose_json")],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        json(&body).get("timings").is_none(),
        "timings without the header"
    );

    let scrape = reqwest::get(format!("{}/metrics", server().url))
        .await
        .expect("metrics");
    assert_eq!(scrape.status().as_u16(), 200);
    let text = scrape.text().await.expect("body");
    for stage in ["decode", "resample", "preprocess", "vad", "asr"] {
        let series = format!("ember_pipeline_stage_seconds_bucket{{stage=\"{stage}\"");
        assert!(text.contains(&series), "missing {series} in:\n{text}");
    }
    assert!(text.contains("ember_pipeline_audio_milliseconds_total"));
    assert!(text.contains("ember_asr_queue_jobs"));
}
