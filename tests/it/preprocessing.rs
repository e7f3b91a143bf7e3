//! `preprocessing` through the transcription endpoint: every preset is accepted, and
//! `dynamic` rescues speech that is very quiet or changes level mid-file.

use crate::audio::{concat, gain, load, wav_form};
use crate::support::{data, json, manifest, post, server};
use crate::wer::wer;

async fn transcribe(audio: &[f32], preprocessing: &str) -> String {
    let (status, _, body) = post(
        server(),
        "/v1/audio/transcriptions",
        wav_form(
            audio,
            &[
                ("model", "base"),
                ("language", "en"),
                ("preprocessing", preprocessing),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{preprocessing}: {body}");
    json(&body)["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn presets_transcribe_quiet_and_stepped_speech() {
    let clip = "librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav";
    let reference = manifest()
        .into_iter()
        .find(|c| c.audio == clip)
        .map(|c| c.transcript)
        .expect("clip in manifest");
    let speech = load(&data(clip));
    let half = speech.len() / 2;
    let quiet = gain(&speech, -25.0);
    let (stepped, _) = concat(&[speech[..half].to_vec(), gain(&speech[half..], -30.0)]);
    for preset in ["none", "dynamic", "soft_dynamic", "bass_dynamic"] {
        for (name, audio) in [("quiet", &quiet), ("stepped", &stepped)] {
            let text = transcribe(audio, preset).await;
            let score = wer(&reference, &text);
            println!(
                "{preset:<12} {name:<8} WER {:>5.1}% | {text}",
                score * 100.0
            );
            if preset != "none" {
                assert!(score <= 0.15, "{preset} on {name}: WER {score}");
            }
        }
    }
}
