//! Turns the engine's output into the wire `Transcript` (the models crate does not
//! know the protocol crate; this is the one place they meet).

use ember_models::{AsrOutput, AsrTask};
use ember_protocol::{Segment, Task, Transcript, Word};

/// Maps the wire task onto the engine's.
pub fn asr_task(task: Task) -> AsrTask {
    match task {
        Task::Transcribe => AsrTask::Transcribe,
        Task::Translate => AsrTask::Translate,
    }
}

/// Builds the transcript; `duration_ms` is the decoded audio's length.
pub fn to_transcript(output: AsrOutput, task: Task, duration_ms: u64) -> Transcript {
    let segments: Vec<Segment> = output
        .segments
        .into_iter()
        .filter(|s| !s.text.trim().is_empty())
        .enumerate()
        .map(|(index, s)| Segment {
            id: index as u32,
            start_ms: s.start_ms.min(duration_ms),
            end_ms: s.end_ms.min(duration_ms).max(s.start_ms.min(duration_ms)),
            text: s.text,
            tokens: s.tokens,
            temperature: s.temperature,
            avg_logprob: s.avg_logprob,
            compression_ratio: s.compression_ratio,
            no_speech_prob: s.no_speech_prob,
            words: s
                .words
                .into_iter()
                .map(|w| Word {
                    word: w.text,
                    start_ms: w.start_ms.min(duration_ms),
                    end_ms: w.end_ms.min(duration_ms),
                    probability: w.probability,
                    interpolated: false,
                })
                .collect(),
        })
        .collect();
    let text = Transcript::joined_text(&segments);
    Transcript {
        task,
        language: output.language,
        duration_ms,
        text,
        segments,
    }
}
