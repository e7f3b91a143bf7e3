//! A live session's processing loop, shared by every wire dialect: audio and control
//! inputs in, recogniser snapshots, events and replies out.
//!
//! The loop owns the [`Recognizer`] and the [`Endpointer`]. Voice detection runs on the
//! blocking pool (it is model inference); decodes run on the ASR workers in the
//! realtime lane. Barriers (checkpoints, traces, `final`) hold further input until every
//! earlier sample is decoded and its update sent (PROTOCOL §3.5).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_dsp::loudness::{apply_preset, LoudnessPreset};
use ember_dsp::SAMPLE_RATE;
use ember_models::{
    audio_ctx_for, AsrOutput, AsrRequest, AsrTask, CancelToken, DecodeOptions, ModelError, Priority,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::endpoint::{EndpointConfig, Endpointer};
use super::recognizer::{DecodePlan, PlanKind, Recognizer, RecognizerEvent, SegmentView};
use crate::metrics;
use crate::pipeline::CancelOnDrop;
use crate::state::AppState;

/// What the dialect's receive loop hands the session.
#[derive(Debug)]
pub enum SessionInput {
    /// 16 kHz mono samples.
    Audio(Vec<f32>),
    /// Reply with `reply` once all earlier audio is decoded; `flush` first closes the
    /// open utterance so every word turns final (`final`).
    Barrier { flush: bool, reply: Option<String> },
    /// Forget the context, then send `reply`. `committed_too: false` keeps utterances
    /// that already ended (OpenAI's clear drops only uncommitted audio).
    Clear {
        reply: Option<String>,
        committed_too: bool,
    },
    /// Change the session's settings (OpenAI `session.update`).
    Configure(Reconfigure),
    /// Send this frame in order with the rest of the output.
    Reply(String),
}

/// Settings a client may change mid-session; `None` = unchanged.
#[derive(Debug, Clone, Default)]
pub struct Reconfigure {
    pub language: Option<Option<String>>,
    pub prompt: Option<Option<String>>,
    /// `Some(None)` = no endpointing (manual commits); `Some(Some((threshold,
    /// silence_ms)))` = VAD endpointing with these settings.
    pub vad: Option<Option<(Option<f32>, Option<u32>)>>,
}

/// What the session hands the dialect's send loop.
#[derive(Debug)]
pub enum SessionOutput {
    /// The recogniser's state changed: the current segment window and new events.
    Update {
        language: String,
        segments: Vec<SegmentView>,
        events: Vec<RecognizerEvent>,
        /// Sent even when unchanged: the last message of a `final` flush.
        flush: bool,
    },
    /// A ready-made frame (a control reply).
    Frame(String),
    /// A fatal error: send it and close with 1011.
    Fatal(String),
}

/// How a session decodes, fixed at connect.
#[derive(Debug, Clone)]
pub struct DecodeSettings {
    pub model: Option<String>,
    pub task: AsrTask,
    pub temperature: Option<f32>,
    pub preprocessing: LoudnessPreset,
    /// Beam width of stream decodes (1 = greedy).
    pub beam_size: u32,
    /// Shrink the encoder context to the utterance plus this many 20 ms frames
    /// (whisper.cpp `audio_ctx`); `None` = the full 30 s context.
    pub audio_ctx_slack_frames: Option<u32>,
    /// Longest a single decode may take.
    pub decode_timeout: Duration,
    /// CTC aligner that re-times the words of finals (and of decodes that may become
    /// finals); `None` = Whisper token times.
    pub word_aligner: Option<String>,
}

/// Wait between tries when the realtime lane is full and a final must still run.
const FINAL_RETRY: Duration = Duration::from_millis(20);

type DecodeFuture = Pin<Box<dyn Future<Output = DecodeOutcome> + Send>>;

enum DecodeOutcome {
    Done(DecodePlan, Result<AsrOutput, ModelError>),
    /// A partial the workers had no room for.
    Rejected(DecodePlan),
}

/// Arrival times of audio, to measure how far results lag behind the speaker.
#[derive(Debug, Default)]
struct ArrivalClock {
    marks: VecDeque<(usize, Instant)>,
}

impl ArrivalClock {
    fn mark(&mut self, total_samples: usize) {
        self.marks.push_back((total_samples, Instant::now()));
        // ~30 s of 50 ms chunks; older marks only matter for stale decodes.
        while self.marks.len() > 600 {
            self.marks.pop_front();
        }
    }

    /// When sample `at` had arrived.
    fn arrival(&self, at: usize) -> Option<Instant> {
        self.marks
            .iter()
            .find(|(samples, _)| *samples >= at)
            .map(|(_, when)| *when)
    }
}

/// Runs a session until its input closes or `stop` fires; on `shutdown`, flushes finals
/// first. Returns when the outputs are all queued.
#[allow(clippy::too_many_arguments)]
pub async fn process_loop(
    state: AppState,
    settings: DecodeSettings,
    mut recognizer: Recognizer,
    endpointer: Endpointer,
    mut inputs: mpsc::Receiver<SessionInput>,
    outputs: mpsc::Sender<SessionOutput>,
    shutdown: CancellationToken,
) {
    let mut endpointer = Some(endpointer);
    let mut inflight: Option<DecodeFuture> = None;
    // Cancels the decode in flight when it is superseded or the session ends.
    let mut inflight_cancel = CancelOnDrop(CancelToken::default());
    // Replies waiting for the audio before them to be decoded, in arrival order. Input
    // keeps flowing meanwhile, so frequent traces do not stall the stream.
    let mut pending: VecDeque<PendingReply> = VecDeque::new();
    let mut clock = ArrivalClock::default();
    let mut shutting_down = false;
    loop {
        if inflight.is_none() {
            if let Some(plan) = recognizer.next_plan(spare_worker(&state)) {
                inflight_cancel = CancelOnDrop(CancelToken::default());
                inflight = Some(start_decode(&state, &settings, &inflight_cancel.0, plan));
            }
        }
        let skipped = recognizer.take_skipped();
        if skipped > 0 {
            ::metrics::counter!(metrics::STREAM_PARTIALS_SKIPPED).increment(skipped);
        }
        if recognizer.take_changed() && !send_update(&mut recognizer, &outputs, false).await {
            return;
        }
        while let Some(front) = pending.front() {
            if !recognizer.barrier_done(front.position) {
                break;
            }
            let Some(done) = pending.pop_front() else {
                break;
            };
            if done.flush && !send_update(&mut recognizer, &outputs, true).await {
                return;
            }
            if let Some(frame) = done.reply {
                if outputs.send(SessionOutput::Frame(frame)).await.is_err() {
                    return;
                }
            }
            if done.shutdown {
                return;
            }
        }
        recognizer.set_barrier(pending.front().map(|p| p.position));
        tokio::select! {
            outcome = async { inflight.as_mut().expect("guarded").await }, if inflight.is_some() => {
                inflight = None;
                let sent = match outcome {
                    DecodeOutcome::Rejected(plan) => {
                        recognizer.abandon(plan.ticket);
                        recognizer.note_skipped_partial();
                        true
                    }
                    DecodeOutcome::Done(plan, Ok(output)) => {
                        if let Some(arrived) = clock.arrival(plan.end) {
                            ::metrics::histogram!(metrics::STREAM_LAG_SECONDS)
                                .record(arrived.elapsed().as_secs_f64());
                        }
                        recognizer.on_result(&plan, output);
                        true
                    }
                    DecodeOutcome::Done(plan, Err(error)) => {
                        recognizer.abandon(plan.ticket);
                        if matches!(error, ModelError::Cancelled) {
                            continue;
                        }
                        tracing::error!(%error, "stream decode failed");
                        let _ = outputs
                            .send(SessionOutput::Fatal(format!("transcription failed: {error}")))
                            .await;
                        return;
                    }
                };
                if !sent {
                    return;
                }
            }
            input = inputs.recv(), if pending.len() < MAX_PENDING_REPLIES
                && recognizer.backlog_samples() < MAX_BACKLOG_SAMPLES
                && !shutting_down => {
                let Some(input) = input else { return };
                match input {
                    SessionInput::Audio(samples) => {
                        let Some(mut detector) = endpointer.take() else { return };
                        let joined = tokio::task::spawn_blocking(move || {
                            let events = detector.push(&samples);
                            let score = detector.speech_score();
                            (detector, events, samples, score)
                        })
                        .await;
                        let Ok((detector, events, samples, score)) = joined else { return };
                        endpointer = Some(detector);
                        let events = match events {
                            Ok(events) => events,
                            Err(error) => {
                                let _ = outputs.send(SessionOutput::Fatal(format!("voice detection failed: {error}"))).await;
                                return;
                            }
                        };
                        recognizer.push_audio(&samples, &events);
                        recognizer.set_speech_score(score);
                        if let Some(ticket) = recognizer.stale_partial() {
                            inflight_cancel.0.cancel();
                            inflight = None;
                            recognizer.abandon(ticket);
                        }
                        clock.mark(recognizer.received());
                        if !send_events(&mut recognizer, &outputs).await {
                            return;
                        }
                    }
                    SessionInput::Barrier { flush, reply } => {
                        if flush {
                            flush_open(&mut endpointer, &mut recognizer);
                            if !send_events(&mut recognizer, &outputs).await {
                                return;
                            }
                        }
                        pending.push_back(PendingReply {
                            position: recognizer.barrier_position(),
                            reply,
                            flush,
                            shutdown: false,
                        });
                    }
                    SessionInput::Reply(frame) => {
                        if outputs.send(SessionOutput::Frame(frame)).await.is_err() {
                            return;
                        }
                    }
                    SessionInput::Configure(change) => {
                        if let Err(error) = reconfigure(&state, change, &mut endpointer, &mut recognizer).await {
                            let _ = outputs.send(SessionOutput::Fatal(error)).await;
                            return;
                        }
                    }
                    SessionInput::Clear { reply, committed_too } => {
                        if let Some(e) = endpointer.as_mut() {
                            e.clear();
                        }
                        if committed_too {
                            recognizer.clear();
                            inflight_cancel.0.cancel();
                            inflight = None;
                        } else {
                            recognizer.discard_open();
                        }
                        if let Some(frame) = reply {
                            if outputs.send(SessionOutput::Frame(frame)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            () = shutdown.cancelled(), if !shutting_down => {
                // Server shutdown: finish what was said, then the dialect closes (1001).
                shutting_down = true;
                flush_open(&mut endpointer, &mut recognizer);
                pending.push_back(PendingReply {
                    position: recognizer.barrier_position(),
                    reply: None,
                    flush: true,
                    shutdown: true,
                });
            }
        }
    }
}

/// Finals, and partials a client waits on (barrier, or the decode at a pause that
/// usually becomes the final), take the top lane; routine partials the one below.
fn plan_priority(plan: &DecodePlan) -> Priority {
    if plan.kind == PlanKind::Final || plan.urgent {
        Priority::Realtime
    } else {
        Priority::Partial
    }
}

/// A control reply waiting for the audio before it.
struct PendingReply {
    /// Samples received when the control arrived.
    position: usize,
    reply: Option<String>,
    /// Send a full update first (`final`).
    flush: bool,
    /// End the session after it (server shutdown).
    shutdown: bool,
}

/// Controls waiting at once before the session stops reading input (a client spamming
/// traces gets back-pressure, not unbounded memory).
const MAX_PENDING_REPLIES: usize = 64;

/// Audio a session buffers for utterances not yet final before it stops reading the
/// socket (2 minutes, ~7.7 MB of f32): a client sending hours of audio at once is slowed
/// to the decoders' pace instead of growing memory.
const MAX_BACKLOG_SAMPLES: usize = 120 * ember_dsp::SAMPLE_RATE as usize;

/// Whether an ASR worker is free now (nothing queued, not all busy).
fn spare_worker(state: &AppState) -> bool {
    state.models().is_ok_and(|m| {
        let stats = m.asr.stats();
        stats.queued() == 0 && stats.running() < m.asr.workers()
    })
}

/// Applies a mid-session settings change; a new detector is made on the blocking pool.
async fn reconfigure(
    state: &AppState,
    change: Reconfigure,
    endpointer: &mut Option<Endpointer>,
    recognizer: &mut Recognizer,
) -> Result<(), String> {
    if let Some(language) = change.language {
        recognizer.set_language(language);
    }
    if let Some(prompt) = change.prompt {
        recognizer.set_initial_prompt(prompt);
    }
    let Some(vad) = change.vad else {
        return Ok(());
    };
    let config = state.streams.config();
    let (threshold, silence_ms) = vad.unwrap_or((None, None));
    let endpoint_config = EndpointConfig::for_stream(
        threshold,
        silence_ms.unwrap_or(config.endpoint_silence_ms).max(100),
        config.max_utterance_ms,
    );
    let detector = match vad {
        None => None,
        Some(_) => {
            let state = state.clone();
            let made = tokio::task::spawn_blocking(move || {
                state
                    .models()
                    .map_err(|e| e.to_string())
                    .and_then(|m| m.vad.stream_detector().map_err(|e| e.to_string()))
            })
            .await
            .map_err(|e| e.to_string())??;
            Some(made.1)
        }
    };
    if let Some(e) = endpointer.as_mut() {
        e.reconfigure(detector, endpoint_config);
    }
    Ok(())
}

/// Closes the open utterance at the end of the received audio.
fn flush_open(endpointer: &mut Option<Endpointer>, recognizer: &mut Recognizer) {
    if let Some(e) = endpointer.as_mut() {
        e.flush();
    }
    recognizer.flush_open();
}

/// Sends pending recogniser events (speech start/stop) without a snapshot change.
async fn send_events(recognizer: &mut Recognizer, outputs: &mpsc::Sender<SessionOutput>) -> bool {
    let events = recognizer.drain_events();
    if events.is_empty() {
        return true;
    }
    outputs
        .send(SessionOutput::Update {
            language: recognizer.language().to_string(),
            segments: Vec::new(),
            events,
            flush: false,
        })
        .await
        .is_ok()
}

async fn send_update(
    recognizer: &mut Recognizer,
    outputs: &mpsc::Sender<SessionOutput>,
    flush: bool,
) -> bool {
    outputs
        .send(SessionOutput::Update {
            language: recognizer.language().to_string(),
            segments: recognizer.snapshot(),
            events: recognizer.drain_events(),
            flush,
        })
        .await
        .is_ok()
}

/// Submits a plan to the ASR workers. Partials give up when the realtime lane is full;
/// finals wait for room (they are never dropped).
fn start_decode(
    state: &AppState,
    settings: &DecodeSettings,
    cancel: &CancelToken,
    mut plan: DecodePlan,
) -> DecodeFuture {
    let state = state.clone();
    let settings = settings.clone();
    let cancel = cancel.clone();
    Box::pin(async move {
        let mut audio = std::mem::take(&mut plan.audio);
        if settings.preprocessing != LoudnessPreset::None {
            let preset = settings.preprocessing;
            audio = match tokio::task::spawn_blocking(move || {
                apply_preset(preset, &mut audio, SAMPLE_RATE);
                audio
            })
            .await
            {
                Ok(audio) => audio,
                Err(_) => return DecodeOutcome::Rejected(plan),
            };
        }
        let request = AsrRequest {
            options: DecodeOptions {
                priority: plan_priority(&plan),
                beam_size: Some(settings.beam_size),
                // A retry after a truncated decode gets three times the slack: enough
                // for the cases seen, at a fraction of the full context's cost.
                audio_ctx: settings.audio_ctx_slack_frames.map(|slack| {
                    let slack = if plan.full_context { slack * 3 } else { slack };
                    audio_ctx_for(audio.len(), slack)
                }),
                no_fallback: plan.kind == PlanKind::Partial,
                single_segment: true,
                dtw: false,
            },
            audio: Arc::new(audio),
            task: settings.task,
            language: plan.language.clone(),
            prompt: plan.prompt.clone(),
            temperatures: settings.temperature.map(|t| vec![t]).unwrap_or_default(),
        };
        let Ok(models) = state.models() else {
            return DecodeOutcome::Done(
                plan,
                Err(ModelError::Inference("models are not loaded".into())),
            );
        };
        let started = Instant::now();
        tracing::debug!(kind = ?plan.kind, samples = request.audio.len(), ctx = ?request.options.audio_ctx, "stream decode");
        let receiver = loop {
            let deadline = Instant::now() + settings.decode_timeout;
            match models.asr.submit(
                settings.model.as_deref(),
                request.clone(),
                cancel.clone(),
                deadline,
                Default::default(),
            ) {
                Ok(receiver) => break receiver,
                Err(ModelError::Overloaded(_)) if plan.kind == PlanKind::Partial => {
                    return DecodeOutcome::Rejected(plan);
                }
                Err(ModelError::Overloaded(_)) if !cancel.is_cancelled() => {
                    tokio::time::sleep(FINAL_RETRY).await;
                }
                Err(error) => return DecodeOutcome::Done(plan, Err(error)),
            }
        };
        let result = receiver.await.unwrap_or_else(|_| {
            Err(ModelError::Inference(
                "the ASR worker dropped the job".into(),
            ))
        });
        let result = match (result, settings.word_aligner.as_deref()) {
            (Ok(mut output), Some(aligner)) if plan.kind == PlanKind::Final || plan.urgent => {
                let deadline = Instant::now() + settings.decode_timeout;
                if let Some(aligners) = models.align.as_ref() {
                    crate::align::retime_output(
                        aligners,
                        aligner,
                        Arc::clone(&request.audio),
                        &mut output,
                        deadline,
                    )
                    .await;
                }
                Ok(output)
            }
            (result, _) => result,
        };
        let kind = match plan.kind {
            PlanKind::Partial => "partial",
            PlanKind::Final => "final",
        };
        ::metrics::histogram!(metrics::STREAM_DECODE_SECONDS, "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        DecodeOutcome::Done(plan, result)
    })
}
