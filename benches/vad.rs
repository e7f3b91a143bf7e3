//! Voice-activity detection throughput: frame scoring plus segmentation of ~30 s of real
//! speech (four shared clips end to end), per detector.
//!
//! Throughput is in 16 kHz input samples (× 16,000 = audio seconds per second). Silero
//! needs ONNX Runtime and the model in `$EMBER_MODELS_DIR` (`ember models install`) and is
//! skipped without them; both run on one thread.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember_dsp::vad::{frame_probabilities, segment, SegmenterConfig, VoiceDetector, WebrtcVad};
use ember_models::SileroVad;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

const CLIPS: &[&str] = &[
    "jfk/jfk.wav",
    "librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0870.wav",
    "librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0920.wav",
    "librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0890.wav",
];

fn speech() -> Vec<f32> {
    let mut samples = Vec::new();
    for clip in CLIPS {
        match ember_dsp::decode_file(&Path::new(DATA).join(clip)) {
            Ok(audio) => samples.extend_from_slice(&audio.samples),
            Err(e) => eprintln!("skipping {clip}: {e}"),
        }
    }
    samples
}

fn silero() -> Option<SileroVad> {
    let dir = ember_models::provision::models_dir_default();
    SileroVad::from_models_dir(&dir)
        .map_err(|e| eprintln!("skipping silero: {e}"))
        .ok()
}

/// Scores and segments `samples` from a fresh stream; returns the region count.
fn detect(detector: &mut dyn VoiceDetector, samples: &[f32], config: &SegmenterConfig) -> usize {
    detector.reset();
    match frame_probabilities(detector, samples) {
        Ok(probs) => segment(&probs, detector.frame_samples(), samples.len(), config).len(),
        Err(e) => panic!("VAD failed: {e}"),
    }
}

fn vad(c: &mut Criterion) {
    let samples = speech();
    let mut group = c.benchmark_group("vad");
    group.throughput(Throughput::Elements(samples.len() as u64));
    if let Some(mut silero) = silero() {
        let config = SegmenterConfig::silero();
        group.bench_function(BenchmarkId::from_parameter("silero"), |b| {
            b.iter(|| detect(&mut silero, &samples, &config))
        });
    }
    let mut webrtc = WebrtcVad::default();
    let config = SegmenterConfig::webrtc();
    group.bench_function(BenchmarkId::from_parameter("webrtc"), |b| {
        b.iter(|| detect(&mut webrtc, &samples, &config))
    });
    group.finish();
}

criterion_group!(benches, vad);
criterion_main!(benches);
