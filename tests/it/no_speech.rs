//! The hallucination guard: music, silence and noise produce no text on either endpoint,
//! with every model.

use crate::support::{data, form, json, post, server};

const NO_SPEECH: &[&str] = &[
    "no_speech/music_macroform-cold_day_first60s_16k.flac",
    "no_speech/silence_10s_16k.flac",
    "no_speech/alsa_Noise_48k.wav",
];

async fn text_of(route: &str, clip: &str, fields: &[(&str, &str)]) -> String {
    let (status, _, body) = post(server(), route, form(&data(clip), fields)).await;
    assert_eq!(status, 200, "{route} {clip}: {body}");
    json(&body)["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn no_speech_clips_give_empty_text_for_every_model() {
    for clip in NO_SPEECH {
        for model in ["base", "tiny.en"] {
            let text = text_of("/v1/audio/transcriptions", clip, &[("model", model)]).await;
            assert_eq!(text, "", "{model} transcribed {clip} as {text:?}");
        }
        let text = text_of("/v1/audio/translations", clip, &[("model", "base")]).await;
        assert_eq!(text, "", "base translated {clip} as {text:?}");
    }
}
