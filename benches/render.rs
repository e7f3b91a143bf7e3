//! Rendering throughput per response format on a long synthetic transcript
//! (1 000 segments × 12 words, roughly an hour of speech).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember_protocol::{
    render, Granularities, RenderOptions, ResponseFormat, Segment, Task, Transcript, Word,
};

fn transcript() -> Transcript {
    let segments: Vec<Segment> = (0..1000u32)
        .map(|id| {
            let start = u64::from(id) * 3_600;
            let words: Vec<Word> = (0..12u64)
                .map(|w| Word {
                    word: format!("word{w}"),
                    start_ms: start + w * 300,
                    end_ms: start + w * 300 + 250,
                    probability: 0.9,
                    interpolated: false,
                })
                .collect();
            Segment {
                id,
                start_ms: start,
                end_ms: start + 3_600,
                text: format!(
                    " {}",
                    words
                        .iter()
                        .map(|w| w.word.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                tokens: (0..20).collect(),
                temperature: 0.0,
                avg_logprob: -0.25,
                compression_ratio: 1.4,
                no_speech_prob: 0.01,
                words,
            }
        })
        .collect();
    let text = Transcript::joined_text(&segments);
    Transcript {
        task: Task::Transcribe,
        language: "en".into(),
        duration_ms: 3_600_000,
        text,
        segments,
    }
}

fn bench_render(c: &mut Criterion) {
    let transcript = transcript();
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(transcript.segments.len() as u64));
    for (name, format) in [
        ("json", ResponseFormat::Json),
        ("text", ResponseFormat::Text),
        ("srt", ResponseFormat::Srt),
        ("vtt", ResponseFormat::Vtt),
        ("verbose_json", ResponseFormat::VerboseJson),
    ] {
        let options = RenderOptions {
            format,
            granularities: Granularities {
                word: true,
                segment: true,
            },
            language_names: false,
            word_flags: false,
        };
        group.bench_with_input(BenchmarkId::from_parameter(name), &options, |b, options| {
            b.iter(|| render(&transcript, options).body.len())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
