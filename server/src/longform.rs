//! The long-form pipeline: speech regions → ≤ 30 s windows → ASR jobs in parallel →
//! one transcript in source time, screened by the hallucination guard.
//!
//! Only speech reaches Whisper: the VAD's regions are packed end to end into windows
//! (`ember_dsp::pack_windows`), so silence costs nothing and cannot be hallucinated over.
//! Windows run on as many ASR workers as there are, in order (`buffered`), so at most one
//! window copy per worker is alive: memory is the 16 kHz samples plus that working set,
//! whatever the file's length. Windows decode independently; a window never splits a
//! region below the segmenter's maximum, so no word straddles a join.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_dsp::{pack_windows, AudioWindow, SAMPLE_RATE};
use ember_models::{
    screen_segment, AsrEngine, AsrHooks, AsrOutput, AsrRequest, AsrSegment, CancelToken,
    GuardConfig, ModelError, SpeechMap,
};
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::metrics;

/// Whisper's input length: one window is one encoder pass.
pub const MAX_WINDOW_SAMPLES: usize = 30 * SAMPLE_RATE as usize;

/// How long a window after the first waits between tries when the ASR queue is full: the
/// request was admitted with its first window, so later ones queue behind others.
const REQUEUE_DELAY: Duration = Duration::from_millis(25);

/// Receives each kept segment's text.
pub type TextSink = Box<dyn FnMut(&str) + Send>;
/// Receives the percent of windows done.
pub type ProgressSink = Box<dyn FnMut(u32) + Send>;

/// Callbacks run on the async side as windows finish, in order.
#[derive(Default)]
pub struct TranscribeEvents {
    /// Text of each kept segment, in order (OpenAI `stream=true` deltas).
    pub on_text: Option<TextSink>,
    /// Percent of windows done (CLI progress bar).
    pub on_progress: Option<ProgressSink>,
}

/// What one long-form run needs besides the audio.
pub struct LongformJob<'a> {
    pub engine: &'a AsrEngine,
    pub model: Option<&'a str>,
    /// The request template; its `audio` is replaced per window.
    pub request: AsrRequest,
    pub cancel: CancelToken,
    pub deadline: Instant,
    pub guard: Option<&'a GuardConfig>,
}

/// Transcribes the speech of `audio` window by window; segment and word times are in
/// source milliseconds.
pub async fn transcribe_speech(
    job: LongformJob<'_>,
    audio: &[f32],
    speech: &SpeechMap,
    events: &mut TranscribeEvents,
) -> Result<AsrOutput, ApiError> {
    let model_id = job
        .engine
        .check(job.model, &job.request)
        .map_err(ApiError::from)?;
    let windows = pack_windows(&speech.regions, MAX_WINDOW_SAMPLES);
    tracing::debug!(
        windows = windows.len(),
        speech_ms = speech.speech_samples() as u64 * 1000 / u64::from(SAMPLE_RATE),
        "packed speech windows"
    );
    let mut merged = AsrOutput {
        language: job
            .request
            .language
            .clone()
            .unwrap_or_else(|| "en".to_string()),
        model: model_id,
        segments: Vec::new(),
    };
    let total = windows.len();
    let mut done = 0usize;
    let mut remaining = windows.as_slice();
    let mut request = job.request.clone();
    // Without a language, the first window decides it for all: windows decoded apart
    // would otherwise each guess, and a short one can guess wrong.
    if request.language.is_none() && total > 1 {
        let output = run_window(&job, &request, &windows[0], audio, true).await?;
        request.language = Some(output.language.clone());
        merge(&job, speech, &windows[0], output, true, &mut merged, events);
        done += 1;
        report_progress(events, done, total);
        remaining = &windows[1..];
    }
    let first_submitted = done > 0;
    let parallel = job.engine.config().workers.max(1);
    // In order, at most one window per worker in flight (and in memory).
    let mut pending = FuturesOrdered::new();
    let mut upcoming = remaining.iter().enumerate();
    loop {
        while pending.len() < parallel {
            let Some((index, window)) = upcoming.next() else {
                break;
            };
            let strict = index == 0 && !first_submitted;
            let (job, request) = (&job, &request);
            pending.push_back(async move {
                run_window(job, request, window, audio, strict)
                    .await
                    .map(|output| (window, output))
            });
        }
        let Some(result) = pending.next().await else {
            break;
        };
        let (window, output) = result?;
        merge(&job, speech, window, output, done == 0, &mut merged, events);
        done += 1;
        report_progress(events, done, total);
    }
    Ok(merged)
}

/// Runs one window on an ASR worker. Only the request's first window may be refused
/// with 429; later ones wait for queue space until the deadline.
async fn run_window(
    job: &LongformJob<'_>,
    template: &AsrRequest,
    window: &AudioWindow,
    audio: &[f32],
    first: bool,
) -> Result<AsrOutput, ApiError> {
    let request = AsrRequest {
        audio: Arc::new(window.gather(audio)),
        ..template.clone()
    };
    let receiver = loop {
        match job.engine.submit(
            job.model,
            request.clone(),
            job.cancel.clone(),
            job.deadline,
            AsrHooks::default(),
        ) {
            Err(ModelError::Overloaded(_)) if !first && Instant::now() < job.deadline => {
                tokio::time::sleep(REQUEUE_DELAY).await;
            }
            other => break other?,
        }
    };
    let output = receiver
        .await
        .map_err(|_| ApiError::internal("the ASR worker failed while processing this request"))??;
    Ok(output)
}

/// Maps a window's segments to source time, screens them, and appends the survivors.
/// The first window's language is the transcript's.
fn merge(
    job: &LongformJob<'_>,
    speech: &SpeechMap,
    window: &AudioWindow,
    output: AsrOutput,
    first: bool,
    merged: &mut AsrOutput,
    events: &mut TranscribeEvents,
) {
    if first {
        merged.language = output.language;
    }
    for segment in output.segments {
        let segment = to_source_time(segment, window);
        if let Some(guard) = job.guard {
            let score = speech.score_ms(segment.start_ms, segment.end_ms);
            if !guard_keeps(guard, &segment, score) {
                continue;
            }
        }
        if let Some(on_text) = events.on_text.as_mut() {
            on_text(&segment.text);
        }
        merged.segments.push(segment);
    }
}

/// Screens a segment with the hallucination guard, logging and counting what it drops;
/// `speech_score` is the mean VAD probability under the segment.
pub fn guard_keeps(guard: &GuardConfig, segment: &AsrSegment, speech_score: f32) -> bool {
    let Some(reason) = screen_segment(segment, speech_score, guard) else {
        return true;
    };
    tracing::debug!(
        reason = reason.as_str(),
        text = %segment.text,
        speech_score,
        no_speech_prob = segment.no_speech_prob,
        "guard dropped a segment"
    );
    ::metrics::counter!(metrics::GUARD_DROPPED, "reason" => reason.as_str()).increment(1);
    false
}

/// Maps a segment from window to source time. Word ends stay in the piece where the word
/// starts; the segment spans from its first to its last word's piece (whisper.cpp's own
/// segment end can lag into the next piece).
fn to_source_time(mut segment: AsrSegment, window: &AudioWindow) -> AsrSegment {
    let within = |anchor: u64, ms: u64| window.to_source_ms_within(anchor, ms, SAMPLE_RATE);
    let first_start = segment
        .words
        .first()
        .map_or(segment.start_ms, |w| w.start_ms);
    let last_start = segment
        .words
        .last()
        .map_or(segment.start_ms, |w| w.start_ms);
    let start = within(
        first_start,
        segment.start_ms.max(first_start.saturating_sub(1_000)),
    );
    segment.end_ms = within(last_start, segment.end_ms).max(start);
    segment.start_ms = start;
    for word in &mut segment.words {
        let end = within(word.start_ms, word.end_ms);
        word.start_ms = within(word.start_ms, word.start_ms);
        word.end_ms = end.max(word.start_ms);
    }
    segment
}

fn report_progress(events: &mut TranscribeEvents, done: usize, total: usize) {
    if let Some(on_progress) = events.on_progress.as_mut() {
        on_progress((done * 100 / total.max(1)) as u32);
    }
}
