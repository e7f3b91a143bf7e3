//! `POST /v1/audio/vad`: speech regions of an upload, per detector, with validated
//! overrides, and the `vad_model` checks shared with the transcription endpoints.

use crate::audio::{concat, load, silence, wav_form};
use crate::support::{data, form, json, post, server};

#[tokio::test]
async fn regions_of_padded_speech_for_both_detectors() {
    let (audio, spans) = concat(&[silence(2.0), load(&data("jfk/jfk.wav")), silence(3.0)]);
    let clip = &spans[1];
    for model in ["silero", "webrtc"] {
        let (status, _, body) = post(
            server(),
            "/v1/audio/vad",
            wav_form(&audio, &[("vad_model", model)]),
        )
        .await;
        assert_eq!(status, 200, "{model}: {body}");
        let body = json(&body);
        assert_eq!(body["vad_model"], model);
        let segments = body["segments"].as_array().expect("segments");
        assert!(!segments.is_empty(), "{model}: no speech found");
        let first = segments[0]["start"].as_f64().expect("start");
        let last = segments[segments.len() - 1]["end"].as_f64().expect("end");
        println!(
            "{model}: {} regions, {first:.2}-{last:.2} s",
            segments.len()
        );
        // JFK's speech starts ~0.3 s into the clip and ends ~0.4 s before its end.
        assert!(
            first >= clip.start - 0.1 && first <= clip.start + 1.0,
            "{model}: start {first}"
        );
        assert!(
            last >= clip.end - 1.5 && last <= clip.end + 0.6,
            "{model}: end {last}"
        );
        let speech = body["speech_duration"].as_f64().expect("speech_duration");
        assert!(speech > 7.0 && speech < 11.5, "{model}: speech {speech}");
    }
}

#[tokio::test]
async fn silence_has_no_regions() {
    for model in ["silero", "webrtc"] {
        let (status, _, body) = post(
            server(),
            "/v1/audio/vad",
            form(
                &data("no_speech/silence_10s_16k.flac"),
                &[("vad_model", model)],
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let body = json(&body);
        assert_eq!(body["segments"].as_array().map(Vec::len), Some(0), "{body}");
        assert!((body["duration"].as_f64().unwrap_or(0.0) - 10.0).abs() < 0.1);
    }
}

#[tokio::test]
async fn uninstalled_and_invalid_vad_settings_are_400() {
    for route in ["/v1/audio/vad", "/v1/audio/transcriptions"] {
        let (status, _, body) = post(
            server(),
            route,
            form(&data("jfk/jfk.wav"), &[("vad_model", "whisperx-pyannet")]),
        )
        .await;
        assert_eq!(status, 400, "{route}: {body}");
        let error = &json(&body)["error"];
        assert_eq!(error["param"], "vad_model");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("`silero`") && message.contains("`webrtc`"),
            "{message}"
        );
    }
    let (status, _, body) = post(
        server(),
        "/v1/audio/vad",
        form(&data("jfk/jfk.wav"), &[("threshold", "1.5")]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["error"]["param"], "threshold");
}
