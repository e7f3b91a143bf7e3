//! Loudness presets on signals with known answers: the real JFK clip and synthetic
//! speech-like, tonal, noise and pathological (square, clicks, inter-sample-peak) inputs.
//! Levels are measured independently with the `ebur128` crate and a Goertzel filter.

#![allow(clippy::unwrap_used)]

use std::f64::consts::PI;
use std::path::PathBuf;

use ebur128::{EbuR128, Mode};
use ember_dsp::loudness::{apply_preset, LoudnessPreset, TRUE_PEAK_CEILING_DBTP};
use ember_dsp::{decode_file, SAMPLE_RATE};

const RATE: u32 = SAMPLE_RATE;
const PROCESSING: [LoudnessPreset; 3] = [
    LoudnessPreset::Dynamic,
    LoudnessPreset::SoftDynamic,
    LoudnessPreset::BassDynamic,
];

// ---- inputs ----

fn jfk() -> Vec<f32> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"))
        .join("jfk/jfk.wav");
    decode_file(&path).unwrap().samples
}

/// Speech-like: a 120 Hz harmonic series (1/k amplitudes up to 4 kHz) with a 4 Hz
/// syllable envelope, 1.6 s phrases and 0.4 s pauses; peak ≈ `amp`.
fn synthetic_speech(secs: f64, amp: f64) -> Vec<f32> {
    let n = (secs * f64::from(RATE)) as usize;
    let harmonics: Vec<(f64, f64)> = (1..=33)
        .map(|k| (120.0 * k as f64, 1.0 / k as f64))
        .collect();
    let norm: f64 = harmonics.iter().map(|h| h.1).sum();
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            let in_phrase = t % 2.0 < 1.6;
            let syllable = (PI * 4.0 * t).sin().powi(2);
            let envelope = if in_phrase { syllable } else { 0.0 };
            let wave: f64 = harmonics
                .iter()
                .map(|&(f, a)| a * (2.0 * PI * f * t).sin())
                .sum();
            (amp * envelope * wave / norm) as f32
        })
        .collect()
}

/// Deterministic white noise, uniform in ±`amp` (RMS = amp / √3).
fn white_noise(len: usize, amp: f32, seed: u64) -> Vec<f32> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            amp * (2.0 * unit - 1.0) as f32
        })
        .collect()
}

fn tones(freqs: &[f64], amp: f64, secs: f64) -> Vec<f32> {
    let n = (secs * f64::from(RATE)) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            freqs
                .iter()
                .map(|f| amp * (2.0 * PI * f * t).sin())
                .sum::<f64>() as f32
        })
        .collect()
}

fn gain(x: &mut [f32], db: f64) {
    let g = 10f64.powf(db / 20.0) as f32;
    x.iter_mut().for_each(|s| *s *= g);
}

// ---- measurements ----

fn integrated_lufs(x: &[f32]) -> f64 {
    let mut meter = EbuR128::new(1, RATE, Mode::I).unwrap();
    meter.add_frames_f32(x).unwrap();
    meter.loudness_global().unwrap()
}

fn true_peak_dbtp(x: &[f32]) -> f64 {
    let mut meter = EbuR128::new(1, RATE, Mode::TRUE_PEAK).unwrap();
    meter.add_frames_f32(x).unwrap();
    20.0 * meter.true_peak(0).unwrap().log10()
}

fn rms_dbfs(x: &[f32]) -> f64 {
    let ms = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    10.0 * ms.log10()
}

/// Power of `x` at `freq` (Goertzel).
fn goertzel(x: &[f32], freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * PI * freq / f64::from(RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Energy in the 60–200 Hz band over energy in the 1–4 kHz band, in dB, summing
/// Goertzel powers on a grid of bins.
fn bass_to_presence_db(x: &[f32], bass_bins: &[f64], presence_bins: &[f64]) -> f64 {
    let bass: f64 = bass_bins.iter().map(|&f| goertzel(x, f)).sum();
    let presence: f64 = presence_bins.iter().map(|&f| goertzel(x, f)).sum();
    10.0 * (bass / presence).log10()
}

fn processed(preset: LoudnessPreset, x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    apply_preset(preset, &mut y, RATE);
    y
}

// ---- 1. variable loudness is evened out ----

/// `signal` with its second half 30 dB quieter (or the first, when `quiet_first`).
fn with_quiet_half(signal: &[f32], quiet_first: bool) -> Vec<f32> {
    let mut x = signal.to_vec();
    let mid = x.len() / 2;
    let quiet = if quiet_first {
        &mut x[..mid]
    } else {
        &mut x[mid..]
    };
    gain(quiet, -30.0);
    x
}

fn half_difference_lu(x: &[f32]) -> f64 {
    let mid = x.len() / 2;
    integrated_lufs(&x[..mid]) - integrated_lufs(&x[mid..])
}

fn assert_halves_evened(name: &str, signal: &[f32]) {
    // Real speech is not equally loud in both halves to begin with (JFK: 3.9 LU).
    let natural = half_difference_lu(signal);
    for quiet_first in [false, true] {
        let x = with_quiet_half(signal, quiet_first);
        let before = half_difference_lu(&x);
        let step = if quiet_first { -30.0 } else { 30.0 };
        assert!(
            (before - natural - step).abs() < 0.5,
            "{name}: input {before}"
        );

        let dynamic = processed(LoudnessPreset::Dynamic, &x);
        let after = half_difference_lu(&dynamic);
        eprintln!("{name} quiet_first={quiet_first}: {before:.1} LU -> dynamic {after:.2} LU");
        assert!(
            after.abs() <= 3.0,
            "{name} quiet_first={quiet_first}: {after} LU apart"
        );
        let level = integrated_lufs(&dynamic);
        assert!(
            (-23.0..=-17.0).contains(&level),
            "{name}: output at {level} LUFS"
        );

        // `soft_dynamic` is gentler by design: it keeps a good part of the step.
        let soft = half_difference_lu(&processed(LoudnessPreset::SoftDynamic, &x));
        eprintln!("{name} quiet_first={quiet_first}: soft_dynamic {soft:.2} LU");
        assert!(
            soft.abs() > after.abs() + 5.0 && soft.abs() < before.abs(),
            "{soft}"
        );
    }
}

#[test]
fn dynamic_evens_out_a_30_db_step_in_real_speech() {
    assert_halves_evened("jfk", &jfk());
}

#[test]
fn dynamic_evens_out_a_30_db_step_in_synthetic_speech() {
    assert_halves_evened("synthetic", &synthetic_speech(12.0, 0.5));
}

#[test]
fn presets_bring_speech_to_the_target() {
    let mut x = jfk();
    for offset_db in [-25.0, 0.0, 12.0] {
        let mut y = x.clone();
        gain(&mut y, offset_db);
        for preset in PROCESSING {
            let report = apply_preset(preset, &mut y.clone(), RATE);
            let out = report.output_lufs.unwrap();
            eprintln!("{} at {offset_db:+} dB: {report:?}", preset.as_str());
            assert!((-23.0..=-17.0).contains(&out), "{}: {out}", preset.as_str());
        }
    }
    // The report's output loudness is the measured one.
    let report = apply_preset(LoudnessPreset::Dynamic, &mut x, RATE);
    assert!((report.output_lufs.unwrap() - integrated_lufs(&x)).abs() < 0.01);
}

// ---- 2. bass_dynamic boosts the bass relative to the presence band ----

#[test]
fn bass_dynamic_raises_bass_against_presence() {
    let bass = [80.0, 120.0, 160.0];
    let presence = [1_500.0, 2_500.0, 3_500.0];
    let all: Vec<f64> = bass.iter().chain(&presence).copied().collect();
    let x = tones(&all, 0.05, 5.0);
    let steady = 8_000..x.len() - 8_000;
    let plain = bass_to_presence_db(
        &processed(LoudnessPreset::Dynamic, &x)[steady.clone()],
        &bass,
        &presence,
    );
    let boosted = bass_to_presence_db(
        &processed(LoudnessPreset::BassDynamic, &x)[steady],
        &bass,
        &presence,
    );
    let lift = boosted - plain;
    eprintln!("multi-tone: bass/presence {plain:.2} dB (dynamic) vs {boosted:.2} dB (bass_dynamic): +{lift:.2} dB");
    // Measured +7.43 dB: the shelf gives +7.9/+7.55/+6.8 dB at 80/120/160 Hz and
    // < 0.02 dB at 1.5–3.5 kHz. 8 dB (the shelf's DC gain) is the physical maximum.
    assert!((5.0..=8.0).contains(&lift), "{lift}");

    // The same on white noise, with Goertzel bins every 5 Hz (bass) and 50 Hz (presence).
    let noise = white_noise(5 * RATE as usize, 0.1, 7);
    let bass_bins: Vec<f64> = (12..=40).map(|k| f64::from(k) * 5.0).collect();
    let presence_bins: Vec<f64> = (20..=80).map(|k| f64::from(k) * 50.0).collect();
    let plain = bass_to_presence_db(
        &processed(LoudnessPreset::Dynamic, &noise),
        &bass_bins,
        &presence_bins,
    );
    let boosted = bass_to_presence_db(
        &processed(LoudnessPreset::BassDynamic, &noise),
        &bass_bins,
        &presence_bins,
    );
    let lift = boosted - plain;
    eprintln!("white noise: 60-200 Hz vs 1-4 kHz lifted by +{lift:.2} dB");
    // Measured +7.20 dB (60–200 Hz: +8.0…+5.6 dB).
    assert!((5.0..=8.0).contains(&lift), "{lift}");
}

// ---- 3. silence stays silence ----

#[test]
fn digital_silence_stays_exactly_zero() {
    for preset in PROCESSING {
        for len in [1, 100, 16_000, 10 * RATE as usize] {
            let y = processed(preset, &vec![0.0; len]);
            assert!(
                y.iter().all(|&v| v.to_bits() == 0),
                "{} {len}",
                preset.as_str()
            );
        }
    }
}

#[test]
fn a_very_low_noise_floor_is_not_boosted() {
    // Uniform noise of RMS −75 dBFS.
    let amp = (10f64.powf(-75.0 / 20.0) * 3f64.sqrt()) as f32;
    let noise = white_noise(10 * RATE as usize, amp, 3);
    let input_rms = rms_dbfs(&noise);
    assert!((input_rms + 75.0).abs() < 0.1, "{input_rms}");
    for preset in PROCESSING {
        let out = rms_dbfs(&processed(preset, &noise));
        assert!(out < -60.0, "{}: {out} dBFS", preset.as_str());
        // Not even a little (the bass shelf adds its own ~+0.3 dB on white noise).
        assert!(out - input_rms < 1.0, "{}: {out} dBFS", preset.as_str());
    }
}

#[test]
fn noise_in_a_long_pause_between_quiet_speech_is_not_pumped_up() {
    // Speech at about −45 LUFS (needs ~+25 dB) around 10 s of −72 dBFS noise: a naive
    // AGC would lift the noise to about −47 dBFS.
    let mut speech = jfk();
    let level = integrated_lufs(&speech);
    gain(&mut speech, -45.0 - level);
    let amp = (10f64.powf(-72.0 / 20.0) * 3f64.sqrt()) as f32;
    let gap = white_noise(10 * RATE as usize, amp, 11);
    let mut x = speech.clone();
    x.extend_from_slice(&gap);
    x.extend_from_slice(&speech);
    let middle = speech.len() + 3 * RATE as usize..speech.len() + 7 * RATE as usize;
    for preset in PROCESSING {
        let y = processed(preset, &x);
        let noise_out = rms_dbfs(&y[middle.clone()]);
        let speech_out = integrated_lufs(&y[..speech.len()]);
        eprintln!(
            "{}: speech {speech_out:.1} LUFS, gap {noise_out:.1} dBFS",
            preset.as_str()
        );
        assert!(
            noise_out < -69.0,
            "{}: gap at {noise_out} dBFS",
            preset.as_str()
        );
        assert!(
            speech_out > -35.0,
            "{}: speech at {speech_out}",
            preset.as_str()
        );
    }
}

// ---- 4. none is a bit-exact passthrough ----

#[test]
fn none_is_bit_exact() {
    let mut x = jfk();
    x.extend(white_noise(1_000, 3.0, 5));
    x.extend([
        f32::MIN_POSITIVE / 4.0,
        -0.0,
        f32::MAX,
        f32::NAN,
        f32::INFINITY,
    ]);
    let mut y = x.clone();
    let report = apply_preset(LoudnessPreset::None, &mut y, RATE);
    assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(report, Default::default());
}

// ---- 5. never above −1 dBTP ----

fn assert_true_peak_ok(name: &str, x: &[f32]) {
    for preset in PROCESSING {
        let mut y = x.to_vec();
        let report = apply_preset(preset, &mut y, RATE);
        let tp = true_peak_dbtp(&y);
        eprintln!("{name} / {}: {tp:.2} dBTP, {report:?}", preset.as_str());
        assert!(
            tp <= TRUE_PEAK_CEILING_DBTP,
            "{name} / {}: {tp} dBTP",
            preset.as_str()
        );
        assert!(y.iter().all(|v| v.is_finite()));
        let reported = report.output_true_peak_dbtp.unwrap();
        assert!((reported - tp).abs() < 0.01, "{reported} vs {tp}");
    }
}

#[test]
fn full_scale_square_wave_stays_under_the_ceiling() {
    // 500 Hz, 16 samples at +1 then 16 at −1.
    let x: Vec<f32> = (0..5 * RATE as usize)
        .map(|i| if (i / 16) % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    assert!(true_peak_dbtp(&x) > 0.0);
    assert_true_peak_ok("square", &x);
}

#[test]
fn boosted_and_clipped_speech_stays_under_the_ceiling() {
    let mut x = jfk();
    gain(&mut x, 20.0);
    assert!(true_peak_dbtp(&x) > 15.0);
    assert_true_peak_ok("jfk +20 dB", &x);
    let clipped: Vec<f32> = x.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
    assert_true_peak_ok("jfk +20 dB clipped", &clipped);
}

#[test]
fn sparse_clicks_are_limited() {
    // Half-scale clicks every 50 ms read only about −32 LUFS, so the dynamic gain
    // lifts them by ~12 dB to +6 dBFS and only the limiter brings them down.
    let mut x = vec![0.0f32; 5 * RATE as usize];
    for i in (400..x.len()).step_by(800) {
        x[i] = 0.5;
    }
    assert_true_peak_ok("clicks", &x);
    let mut y = x.clone();
    let report = apply_preset(LoudnessPreset::Dynamic, &mut y, RATE);
    assert!(report.max_gain_db_applied > 10.0, "{report:?}");
    assert!(report.limiter_max_reduction_db > 7.0, "{report:?}");
}

#[test]
fn inter_sample_peaks_are_trimmed() {
    // Quiet speech (lifted by ~25 dB) with short bursts of fs/4 sampled at 45°: every
    // burst sample is 3 dB under the true peak, so the sample-peak limiter alone would
    // leave ~+1.5 dBTP; the final trim catches it.
    let mut x = jfk();
    gain(&mut x, -30.0);
    for start in (RATE as usize..x.len() - 64).step_by(2 * RATE as usize) {
        for i in 0..64 {
            x[start + i] += (0.2 * (PI / 2.0 * i as f64 + PI / 4.0).sin()) as f32;
        }
    }
    assert_true_peak_ok("fs/4 bursts", &x);
    let report = apply_preset(LoudnessPreset::Dynamic, &mut x, RATE);
    assert!(report.trim_db < -1.0, "{report:?}");
}

#[test]
fn quiet_speech_with_a_loud_click_stays_under_the_ceiling() {
    let mut x = jfk();
    gain(&mut x, -30.0);
    let at = x.len() / 2;
    x[at] = 0.9;
    x[at + 1] = -0.9;
    assert_true_peak_ok("quiet jfk + click", &x);
}

// ---- 6. tiny inputs ----

#[test]
fn empty_and_tiny_inputs_do_not_panic() {
    for preset in LoudnessPreset::ALL {
        let mut empty: [f32; 0] = [];
        apply_preset(preset, &mut empty, RATE);
        for len in [
            1, 2, 15, 16, 17, 100, 1_599, 1_600, 1_601, 6_399, 6_400, 6_401,
        ] {
            let x = white_noise(len, 1.0, len as u64);
            let mut y = x.clone();
            apply_preset(preset, &mut y, RATE);
            assert!(y.iter().all(|v| v.is_finite()), "{} {len}", preset.as_str());
            if preset != LoudnessPreset::None {
                let tp = true_peak_dbtp(&y);
                assert!(
                    tp <= TRUE_PEAK_CEILING_DBTP,
                    "{} {len}: {tp}",
                    preset.as_str()
                );
            }
        }
    }
}
