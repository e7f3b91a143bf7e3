#![allow(clippy::unwrap_used)]
use ember_models::onnx::{builder, SessionConfig};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use std::time::Instant;

fn bench(name: &str, mut session: Session, clip: &[f32]) {
    let mut input = Tensor::from_array(([1usize, 576], vec![0f32; 576])).unwrap();
    let mut state = Tensor::from_array(([2usize, 1, 128], vec![0f32; 256])).unwrap();
    let sr = Tensor::from_array(((), vec![16000i64])).unwrap();
    let n = 5;
    let t = Instant::now();
    let mut calls = 0;
    for _ in 0..n {
        for frame in clip.chunks_exact(512) {
            input.extract_tensor_mut().1[64..].copy_from_slice(frame);
            let out = session
                .run(ort::inputs!["input" => &input, "state" => &state, "sr" => &sr])
                .unwrap();
            let next = out["stateN"]
                .try_extract_tensor::<f32>()
                .unwrap()
                .1
                .to_vec();
            drop(out);
            state.extract_tensor_mut().1.copy_from_slice(&next);
            input.extract_tensor_mut().1.copy_within(512.., 0);
            calls += 1;
        }
    }
    let el = t.elapsed();
    println!(
        "{name}: {:.2} ms per audio second, {:.1} us per call",
        el.as_secs_f64() * 1000.0 / (n as f64 * clip.len() as f64 / 16000.0),
        el.as_secs_f64() * 1e6 / calls as f64
    );
}

#[test]
#[ignore]
fn speed() {
    let dir = ember_models::provision::models_dir_default();
    let manifest = ember_models::provision::list(&dir).unwrap();
    ember_models::onnx::init_from_manifest(&manifest).unwrap();
    let model = manifest.find("silero-vad").unwrap().path.clone();
    let clip = ember_dsp::decode_file(std::path::Path::new("/work/shared/data/jfk/jfk.wav"))
        .unwrap()
        .samples;
    let cfg = SessionConfig::default();
    for _ in 0..2 {
        bench(
            "default",
            builder(&cfg).unwrap().commit_from_file(&model).unwrap(),
            &clip,
        );
        bench(
            "ftz",
            builder(&cfg)
                .unwrap()
                .with_flush_to_zero()
                .unwrap()
                .commit_from_file(&model)
                .unwrap(),
            &clip,
        );
        bench(
            "opt basic",
            builder(&cfg)
                .unwrap()
                .with_optimization_level(GraphOptimizationLevel::Level1)
                .unwrap()
                .commit_from_file(&model)
                .unwrap(),
            &clip,
        );
        bench(
            "opt all",
            builder(&cfg)
                .unwrap()
                .with_optimization_level(GraphOptimizationLevel::All)
                .unwrap()
                .commit_from_file(&model)
                .unwrap(),
            &clip,
        );
        bench(
            "no mem pattern",
            builder(&cfg)
                .unwrap()
                .with_memory_pattern(false)
                .unwrap()
                .commit_from_file(&model)
                .unwrap(),
            &clip,
        );
    }
}

#[test]
#[ignore]
fn dump() {
    use ember_dsp::vad::{frame_probabilities, VoiceDetector};
    let dir = ember_models::provision::models_dir_default();
    let mut vad = ember_models::SileroVad::from_models_dir(&dir).unwrap();
    let clip = ember_dsp::decode_file(std::path::Path::new("/work/shared/data/jfk/jfk.wav"))
        .unwrap()
        .samples;
    vad.reset();
    let p = frame_probabilities(&mut vad, &clip).unwrap();
    std::fs::write(
        "/tmp/rust_probs.txt",
        p.iter().map(|x| format!("{x}\n")).collect::<String>(),
    )
    .unwrap();
}
