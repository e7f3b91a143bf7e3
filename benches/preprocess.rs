//! Loudness preprocessing throughput per preset (`ember_dsp::loudness::apply_preset`).
//!
//! Input: the JFK clip (16 kHz, 11 s) tiled to ~30 s. Throughput is in 16 kHz samples,
//! so 16,000 elements/s is real time. Each iteration copies the clean input into the
//! work buffer first (a memcpy, ~1 % of the cheapest preset), because the presets work
//! in place. `preprocess_stage` times the chain's stages on their own.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember_dsp::loudness::biquad::Biquad;
use ember_dsp::loudness::{apply_preset, gain, limiter, meter, LoudnessPreset};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

/// ~30 s of speech: the JFK clip repeated.
fn input() -> Option<Vec<f32>> {
    let path = PathBuf::from(DATA).join("jfk/jfk.wav");
    let clip = match ember_dsp::decode_file(&path) {
        Ok(audio) => audio.samples,
        Err(err) => {
            eprintln!(
                "skipping preprocess: {} does not decode: {err}",
                path.display()
            );
            return None;
        }
    };
    let target = 30 * ember_dsp::SAMPLE_RATE as usize;
    Some(clip.iter().copied().cycle().take(target).collect())
}

fn preprocess(c: &mut Criterion) {
    let Some(input) = input() else { return };
    let mut work = input.clone();
    let mut group = c.benchmark_group("preprocess");
    group.throughput(Throughput::Elements(input.len() as u64));
    for preset in LoudnessPreset::ALL {
        group.bench_function(BenchmarkId::from_parameter(preset.as_str()), |b| {
            b.iter(|| {
                work.copy_from_slice(&input);
                apply_preset(preset, &mut work, ember_dsp::SAMPLE_RATE)
            })
        });
    }
    group.finish();
}

/// The stages of the chain on their own, to see where the time goes.
fn preprocess_stage(c: &mut Criterion) {
    let Some(input) = input() else { return };
    let rate = ember_dsp::SAMPLE_RATE;
    let mut work = input.clone();
    let mut group = c.benchmark_group("preprocess_stage");
    group.throughput(Throughput::Elements(input.len() as u64));
    group.bench_function("bass_shelf", |b| {
        b.iter(|| {
            work.copy_from_slice(&input);
            Biquad::low_shelf(rate, 250.0, 8.0, 1.0).process_in_place(&mut work);
        })
    });
    group.bench_function("frame_levels", |b| {
        b.iter(|| meter::frame_meter(rate).and_then(|m| meter::frame_levels(m, &input)))
    });
    group.bench_function("true_peak_and_loudness", |b| {
        b.iter(|| meter::output_meter(rate).and_then(|m| meter::output_levels(m, &input)))
    });
    let gains = vec![6.0; input.len().div_ceil(1_600)];
    group.bench_function("apply_gain", |b| {
        b.iter(|| {
            work.copy_from_slice(&input);
            gain::apply_curve(&mut work, &gains, 1_600)
        })
    });
    // Every peak above the ceiling: the limiter's worst case.
    group.bench_function("limiter_busy", |b| {
        b.iter(|| {
            work.copy_from_slice(&input);
            limiter::limit_in_place(&mut work, 0.05, 80, 1.0 - (-1.0f64 / 1_280.0).exp())
        })
    });
    group.finish();
}

criterion_group!(benches, preprocess, preprocess_stage);
criterion_main!(benches);
