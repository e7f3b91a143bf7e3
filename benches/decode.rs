//! Decode + downmix + resample throughput per input format (`ember_dsp::decode_file`).
//!
//! Throughput is in 16 kHz output samples, so formats compare as "audio seconds per
//! second" (× 16,000). Inputs are the shared real-speech clips and the small lossy
//! fixtures of `dsp/tests/fixtures` (see its README).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dsp/tests/fixtures");

fn inputs() -> Vec<(&'static str, PathBuf)> {
    let data = PathBuf::from(DATA);
    let fixtures = PathBuf::from(FIXTURES);
    vec![
        ("wav_16k", data.join("jfk/jfk.wav")),
        ("wav_48k", data.join("alsa_48k_prompts/Front_Center.wav")),
        (
            "wav_44k1",
            data.join("praat_north_wind/the_north_wind_and_the_sun.wav"),
        ),
        (
            "flac_16k",
            data.join("no_speech/music_macroform-cold_day_first60s_16k.flac"),
        ),
        ("mp3_44k1", fixtures.join("north_wind.mp3")),
        ("m4a_aac_44k1", fixtures.join("north_wind.m4a")),
        (
            "ogg_vorbis_stereo_44k1",
            fixtures.join("north_wind_stereo.ogg"),
        ),
        ("ogg_opus", fixtures.join("north_wind.opus")),
        ("webm_opus", fixtures.join("north_wind_live.webm")),
    ]
}

fn decode_resample(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_resample");
    for (name, path) in inputs() {
        let Ok(audio) = ember_dsp::decode_file(&path) else {
            eprintln!("skipping {name}: {} does not decode", path.display());
            continue;
        };
        group.throughput(Throughput::Elements(audio.samples.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &path, |b, path| {
            b.iter(|| ember_dsp::decode_file(path).map(|a| a.samples.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, decode_resample);
criterion_main!(benches);
