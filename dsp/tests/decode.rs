//! Decoding real and generated files end to end through the public API.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use ember_dsp::{
    decode_bytes, decode_bytes_with, decode_file, decode_file_with, resample_to_16k, DecodeOptions,
    DspError, SAMPLE_RATE,
};
use support::*;

const NORTH_WIND: &str = "praat_north_wind/the_north_wind_and_the_sun.wav";

/// The reference for the lossy fixtures: the source WAV through our WAV path.
fn north_wind_reference() -> Vec<f32> {
    decode_file(&data(NORTH_WIND)).unwrap().samples
}

/// A lossy decode must be as long as the source (within `len_tol` samples) and
/// line up with it in time (within 1 ms) with high correlation.
fn assert_matches_reference(name: &str, decoded: &[f32], len_tol: usize, min_corr: f32) {
    let reference = north_wind_reference();
    let diff = decoded.len().abs_diff(reference.len());
    assert!(
        diff <= len_tol,
        "{name}: {} samples vs {} in the source",
        decoded.len(),
        reference.len()
    );
    let (lag, corr) = best_lag(&reference, decoded, 400);
    assert!(lag.abs() <= 16, "{name}: shifted by {lag} samples");
    assert!(corr > min_corr, "{name}: correlation {corr}");
}

#[test]
fn jfk_wav_16k_mono() {
    let audio = decode_file(&data("jfk/jfk.wav")).unwrap();
    assert_eq!(audio.source_sample_rate, 16_000);
    assert_eq!(audio.source_channels, 1);
    assert!(
        audio.samples.len().abs_diff(176_000) <= 1_760,
        "{}",
        audio.samples.len()
    );
    assert_eq!(audio.duration_ms(), audio.samples.len() as u64 / 16);
    assert_eq!(audio.skipped_packets, 0);
    let peak = audio.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(peak > 0.1 && peak <= 1.0, "peak {peak}");
}

#[test]
fn wav_48k_keeps_duration() {
    let path = data("alsa_48k_prompts/Front_Center.wav");
    let bytes = std::fs::read(&path).unwrap();
    let source_frames = (bytes.len() - 44) / 2;
    let audio = decode_file(&path).unwrap();
    assert_eq!(audio.source_sample_rate, 48_000);
    let source_ms = source_frames as f64 / 48.0;
    let got_ms = audio.samples.len() as f64 / 16.0;
    assert!(
        (source_ms - got_ms).abs() < 10.0,
        "{source_ms} ms -> {got_ms} ms"
    );
    // Same result from memory as from disk.
    assert_eq!(decode_bytes(bytes).unwrap(), audio);
}

#[test]
fn asterisk_flac_prompts() {
    let dir = data("asterisk_prompts/en");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "flac") {
            let audio = decode_file(&path).unwrap();
            assert_eq!(audio.source_sample_rate, 16_000, "{path:?}");
            assert!(audio.duration_ms() >= 400, "{path:?}");
            assert!(rms(&audio.samples) > 0.005, "{path:?} is silent");
            count += 1;
        }
    }
    assert!(count >= 10);
}

#[test]
fn flac_matches_its_lossless_length() {
    // 10 s of near-silence in FLAC: exact duration, near-zero level.
    let audio = decode_file(&data("no_speech/silence_10s_16k.flac")).unwrap();
    assert!(
        audio.samples.len().abs_diff(160_000) <= 160,
        "{}",
        audio.samples.len()
    );
}

#[test]
fn mp3_fixture() {
    let audio = decode_file(&fixture("north_wind.mp3")).unwrap();
    assert_eq!(audio.source_sample_rate, 44_100);
    assert_matches_reference("mp3", &audio.samples, 16, 0.95);
}

#[test]
fn m4a_aac_fixture() {
    let audio = decode_file(&fixture("north_wind.m4a")).unwrap();
    assert_matches_reference("m4a", &audio.samples, 400, 0.9);
}

#[test]
fn adts_aac_fixture() {
    let audio = decode_file(&fixture("north_wind.aac")).unwrap();
    assert_eq!(audio.source_sample_rate, 44_100);
    let reference = north_wind_reference();
    assert!(
        audio.samples.len() >= reference.len(),
        "{}",
        audio.samples.len()
    );
    // ADTS carries no priming info: the decode starts 1,024 source samples early.
    let (lag, corr) = best_lag(&reference, &audio.samples, 800);
    assert!((lag - 372).abs() <= 16, "lag {lag}");
    assert!(corr > 0.9, "correlation {corr}");
}

#[test]
fn ogg_vorbis_stereo_fixture_is_downmixed() {
    let audio = decode_file(&fixture("north_wind_stereo.ogg")).unwrap();
    assert_eq!(audio.source_channels, 2);
    assert_matches_reference("vorbis", &audio.samples, 16, 0.95);
    // Both channels carry the source: the average keeps its level.
    let level = rms(&audio.samples) / rms(&north_wind_reference());
    assert!((level - 1.0).abs() < 0.1, "level ratio {level}");
}

#[test]
fn ogg_opus_fixture() {
    let audio = decode_file(&fixture("north_wind.opus")).unwrap();
    // ffmpeg resamples to 48 kHz before libopus and records that as the input rate.
    assert_eq!(audio.source_sample_rate, 48_000);
    assert_matches_reference("ogg opus", &audio.samples, 2, 0.9);
}

#[test]
fn webm_opus_fixture() {
    let audio = decode_file(&fixture("north_wind_live.webm")).unwrap();
    assert_eq!(audio.source_channels, 1);
    // WebM has no end trim: up to one 20 ms packet of padding remains.
    let reference = north_wind_reference();
    assert!(audio.samples.len() >= reference.len() && audio.samples.len() <= reference.len() + 320);
    let (lag, corr) = best_lag(&reference, &audio.samples, 400);
    assert!(lag.abs() <= 16 && corr > 0.9, "lag {lag} corr {corr}");
}

#[test]
fn webm_vorbis_goes_through_symphonia_or_is_unsupported() {
    match decode_file(&fixture("north_wind_vorbis.webm")) {
        Ok(audio) => assert_matches_reference("webm vorbis", &audio.samples, 400, 0.9),
        Err(DspError::Unsupported { format }) => assert!(format.contains("A_VORBIS"), "{format}"),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn generated_ogg_opus_is_trimmed_and_aligned() {
    let source = resample_to_16k(&north_wind_reference(), SAMPLE_RATE);
    let (packets, pre_skip) = opus_packets(&source);
    let file = ogg_opus(&packets, pre_skip, source.len());
    let audio = decode_bytes(file).unwrap();
    assert_eq!(audio.samples.len(), source.len());
    let (lag, corr) = best_lag(&source, &audio.samples, 400);
    assert!(lag.abs() <= 16, "lag {lag}");
    assert!(corr > 0.9, "correlation {corr}");
}

#[test]
fn mediarecorder_style_webm_decodes() {
    let source = north_wind_reference();
    let (packets, pre_skip) = opus_packets(&source);
    let file = live_webm(&packets, pre_skip);
    let audio = decode_bytes(file).unwrap();
    assert_eq!(audio.source_sample_rate, 48_000);
    assert_eq!(
        audio.samples.len(),
        packets.len() * 320 - usize::from(pre_skip) / 3
    );
    let (lag, corr) = best_lag(&source, &audio.samples, 400);
    assert!(lag.abs() <= 16 && corr > 0.9, "lag {lag} corr {corr}");
}

#[test]
fn stereo_wav_is_averaged() {
    let left = sine(440.0, 22_050, 0.5, 0.5);
    let interleaved: Vec<f32> = left.iter().flat_map(|s| [*s, 0.0]).collect();
    let audio = decode_bytes(wav_i16(&to_i16(&interleaved), 22_050, 2)).unwrap();
    assert_eq!(audio.source_channels, 2);
    assert_eq!(audio.source_sample_rate, 22_050);
    assert_eq!(audio.samples.len(), 8_000);
    let mid = &audio.samples[2_000..6_000];
    let level = rms(mid) / (0.25 / 2f32.sqrt());
    assert!((level - 1.0).abs() < 0.02, "level ratio {level}");
}

#[test]
fn empty_input_is_empty() {
    assert!(matches!(decode_bytes(Vec::new()), Err(DspError::Empty)));
    let dir = std::env::temp_dir().join(format!("ember-dsp-empty-{}", std::process::id()));
    std::fs::write(&dir, b"").unwrap();
    let result = decode_file(&dir);
    std::fs::remove_file(&dir).unwrap();
    assert!(matches!(result, Err(DspError::Empty)));
    assert_eq!(DspError::Empty.to_string(), "the uploaded file is empty");
}

#[test]
fn random_bytes_are_unsupported() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..50_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let err = decode_bytes(bytes).unwrap_err();
    assert!(matches!(err, DspError::Unsupported { .. }), "{err}");
    let url = decode_bytes(b"https://example.com/audio.mp3".to_vec()).unwrap_err();
    assert!(matches!(url, DspError::Unsupported { .. }), "{url}");
}

#[test]
fn header_only_wav_has_no_audio() {
    let err = decode_bytes(wav_i16(&[], 16_000, 1)).unwrap_err();
    assert!(matches!(err, DspError::NoAudio), "{err}");
}

#[test]
fn truncated_files_decode_partially_or_fail_cleanly() {
    let cases = [
        std::fs::read(data("asterisk_prompts/en/auth-thankyou.flac")).unwrap(),
        std::fs::read(data("jfk/jfk.wav")).unwrap(),
        std::fs::read(fixture("north_wind.mp3")).unwrap(),
        std::fs::read(fixture("north_wind.m4a")).unwrap(),
        std::fs::read(fixture("north_wind_stereo.ogg")).unwrap(),
        std::fs::read(fixture("north_wind.opus")).unwrap(),
        std::fs::read(fixture("north_wind_live.webm")).unwrap(),
    ];
    for bytes in cases {
        let full = decode_bytes(bytes.clone()).unwrap().samples.len();
        for cut in [
            10,
            30,
            60,
            200,
            1_000,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() - 7,
        ] {
            match decode_bytes(bytes[..cut].to_vec()) {
                Ok(audio) => assert!(audio.samples.len() <= full + 320),
                Err(
                    DspError::Corrupt { .. } | DspError::NoAudio | DspError::Unsupported { .. },
                ) => {}
                Err(e) => panic!("cut at {cut}: unexpected {e:?}"),
            }
        }
    }
    // A truncated WAV or FLAC keeps the audio before the cut. This FLAC has 8 KB of
    // metadata before 16 KB of frames, so 90 % of its bytes hold ~75 % of its audio.
    for (rel, keep, lo, hi) in [
        ("jfk/jfk.wav", 0.5, 0.49, 0.51),
        ("asterisk_prompts/en/auth-thankyou.flac", 0.9, 0.65, 0.85),
    ] {
        let bytes = std::fs::read(data(rel)).unwrap();
        let full = decode_bytes(bytes.clone()).unwrap().samples.len() as f64;
        let cut = (bytes.len() as f64 * keep) as usize;
        let part = decode_bytes(bytes[..cut].to_vec()).unwrap().samples.len() as f64;
        assert!((lo..hi).contains(&(part / full)), "{rel}: {part} of {full}");
    }
}

#[test]
fn corrupted_mp3_skips_bad_packets() {
    let mut bytes = std::fs::read(fixture("north_wind.mp3")).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 3..len / 3 + 400] {
        *b = 0x00;
    }
    let audio = decode_bytes(bytes).unwrap();
    let reference = north_wind_reference();
    assert!(audio.samples.len() > reference.len() / 2);
}

#[test]
fn max_duration_rejects_long_audio() {
    let options = DecodeOptions::with_max_duration(Duration::from_secs(5));
    let err = decode_file_with(&data("jfk/jfk.wav"), &options).unwrap_err();
    match err {
        DspError::TooLong { max_secs, got_secs } => {
            assert_eq!(max_secs, 5.0);
            assert!(got_secs > 5.0, "{got_secs}");
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    // Without a declared duration (Ogg Opus) the limit trips during decoding.
    let opus = std::fs::read(fixture("north_wind.opus")).unwrap();
    let short = DecodeOptions::with_max_duration(Duration::from_millis(500));
    assert!(matches!(
        decode_bytes_with(opus.clone(), &short),
        Err(DspError::TooLong { .. })
    ));
    let long = DecodeOptions::with_max_duration(Duration::from_secs(60));
    assert!(decode_bytes_with(opus, &long).is_ok());
}

#[test]
fn all_packets_bad_is_corrupt() {
    // Code-3 Opus packets declaring zero frames are invalid (RFC 6716 §3.2.5).
    let packets = vec![vec![0x03u8, 0x00, 0x00]; 20];
    let err = decode_bytes(ogg_opus(&packets, 312, 6_400)).unwrap_err();
    assert!(matches!(err, DspError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("could not decode audio: "),
        "{err}"
    );
}

#[test]
fn opus_header_without_audio_is_no_audio() {
    let err = decode_bytes(ogg_opus(&[], 312, 0)).unwrap_err();
    assert!(matches!(err, DspError::NoAudio), "{err:?}");
}
