//! The streaming recogniser: turns endpointer events and decode results into a window of
//! numbered segments whose words turn final, independent of any wire dialect.
//!
//! - Each utterance (endpointer `Started` … `Ended`) is one segment id. While it is open,
//!   partial hypotheses are decoded over the whole utterance at a fixed hop; consecutive
//!   hypotheses that agree on a word prefix make those words *stable* (LocalAgreement-2).
//! - When the endpointer closes the utterance, a final decode runs and its words are
//!   final for good. A decode started at the first dip of the voice (`Paused`) that
//!   already covers all the speech is reused as the final, so the final does not wait
//!   for a second decode.
//! - An utterance longer than `commit_after` (a monologue without pauses, or `skip_vad`)
//!   commits its stable words except the last as a final segment and continues after
//!   them, so the decoded audio stays bounded.
//! - The previous final text primes the next decode.
//!
//! One decode runs at a time per stream: a partial that would start while another is
//! running is skipped (counted), which is what keeps a slow machine's lag bounded.

use std::collections::VecDeque;

use ember_dsp::SAMPLE_RATE;
use ember_models::{AsrOutput, AsrSegment, GuardConfig};

use super::endpoint::EndpointEvent;

/// Recogniser settings (from the CLI and the stream's query).
#[derive(Debug, Clone)]
pub struct RecognizerConfig {
    /// New audio in an open utterance that triggers the next partial decode.
    pub hop_samples: usize,
    /// An open utterance longer than this commits its stable words.
    pub commit_after_samples: usize,
    /// Most segments a snapshot carries (the newest ones).
    pub window_segments: usize,
    /// Characters of previous final text used as the decoder prompt.
    pub prompt_chars: usize,
    /// The client's prompt, used until there is final text.
    pub initial_prompt: Option<String>,
    /// A fixed language; `None` = detect on the first utterance and keep it.
    pub language: Option<String>,
}

/// Whether a decode may be skipped or superseded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// A hypothesis of the open utterance; droppable.
    Partial,
    /// The utterance's last decode; never dropped.
    Final,
}

/// A decode the session must run and hand back to [`Recognizer::on_result`].
#[derive(Debug, Clone)]
pub struct DecodePlan {
    pub ticket: u64,
    /// The utterance decoded.
    pub key: u64,
    pub kind: PlanKind,
    /// Absolute sample range decoded.
    pub start: usize,
    pub end: usize,
    pub audio: Vec<f32>,
    pub prompt: Option<String>,
    pub language: Option<String>,
    /// A retry after a truncated decode: decode with a wider encoder context.
    pub full_context: bool,
    /// Someone waits on this partial: a barrier, or it is the final candidate at a pause.
    pub urgent: bool,
}

/// A word with absolute times in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct WordView {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub probability: f32,
}

/// A segment as the dialects render it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentView {
    pub id: u64,
    pub text: String,
    pub words: Vec<WordView>,
    /// All words are final; the segment never changes again.
    pub is_final: bool,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Things that happened, for dialects with explicit events (OpenAI realtime).
#[derive(Debug, Clone, PartialEq)]
pub enum RecognizerEvent {
    /// Speech started; `key` names the utterance until it is final.
    SpeechStarted { key: u64, start_ms: u64 },
    /// The endpointer closed the utterance (a final decode follows).
    SpeechStopped { key: u64, end_ms: u64 },
    /// The stable prefix of the utterance grew to this text.
    Stable { key: u64, text: String },
    /// The utterance (or a committed part of it) is final with this text (may be empty).
    Final { key: u64, text: String },
}

#[derive(Debug)]
struct Utterance {
    key: u64,
    start: usize,
    /// Set when the endpointer closed it.
    end: Option<usize>,
    /// End of the voice at the latest dip (for reusing a decode as the final).
    voice_end: Option<usize>,
    /// Segment id, reserved at the start so ids follow time order.
    id: u64,
    hypothesis: Vec<WordView>,
    hypothesis_text: String,
    /// End sample of the decode that produced `hypothesis`.
    decoded_to: usize,
    /// End sample of the decode in flight.
    inflight_to: Option<usize>,
    stable: usize,
    /// Mean VAD score (guard input).
    speech_score: f32,
    /// A partial due at this sample was skipped for lack of a free worker.
    skipped_to: usize,
    /// Decode with a wider encoder context from now on (a decode came back truncated).
    full_context: bool,
    /// The last words committed from this utterance (normalised), to cut the repeat of
    /// them that the next decode starts with when word times were early.
    committed_tail: Vec<String>,
}

/// The per-stream recogniser state.
pub struct Recognizer {
    config: RecognizerConfig,
    guard: Option<GuardConfig>,
    /// Samples from `audio_start` on.
    audio: Vec<f32>,
    audio_start: usize,
    received: usize,
    utterances: VecDeque<Utterance>,
    closed: VecDeque<SegmentView>,
    next_id: u64,
    next_key: u64,
    next_ticket: u64,
    /// The snapshot changed since the last [`Self::take_changed`].
    changed: bool,
    /// Ticket and kind of the decode in flight.
    inflight: Option<(u64, PlanKind)>,
    /// Tickets at or below this belong to a cleared context.
    cleared_below: u64,
    language: Option<String>,
    context: String,
    /// A barrier wants a hypothesis covering audio up to here.
    barrier: Option<usize>,
    events: Vec<RecognizerEvent>,
    /// Partials skipped since the last [`Self::take_skipped`].
    skipped: u64,
}

/// Audio kept before an utterance while idle, for the endpointer's onset padding.
const IDLE_LOOKBACK_SAMPLES: usize = SAMPLE_RATE as usize;
/// whisper.cpp returns nothing for input shorter than 1 s; shorter utterances are padded.
const MIN_DECODE_SAMPLES: usize = SAMPLE_RATE as usize * 11 / 10;
/// A decode covering the voice plus this much silence can stand in for the final.
const FINAL_COVER_SAMPLES: usize = SAMPLE_RATE as usize / 10;
/// An empty decode of at least this much audio with at least this VAD score is retried
/// with a wider context.
const EMPTY_RETRY_SAMPLES: usize = SAMPLE_RATE as usize;
const EMPTY_RETRY_SCORE: f32 = 0.5;
/// Stable words this close to the decoded end are not committed (may still change).
const COMMIT_GUARD_MS: u64 = 1_000;

impl Recognizer {
    pub fn new(config: RecognizerConfig, guard: Option<GuardConfig>) -> Self {
        Self {
            language: config.language.clone(),
            config,
            guard,
            audio: Vec::new(),
            audio_start: 0,
            received: 0,
            utterances: VecDeque::new(),
            closed: VecDeque::new(),
            next_id: 0,
            next_key: 0,
            next_ticket: 1,
            changed: false,
            inflight: None,
            cleared_below: 0,
            context: String::new(),
            barrier: None,
            events: Vec::new(),
            skipped: 0,
        }
    }

    /// Fixes the language (or returns to detection) for the next decodes.
    pub fn set_language(&mut self, language: Option<String>) {
        self.config.language = language.clone();
        self.language = language;
    }

    /// The prompt used until there is final text.
    pub fn set_initial_prompt(&mut self, prompt: Option<String>) {
        self.config.initial_prompt = prompt;
    }

    /// Samples received so far.
    pub fn received(&self) -> usize {
        self.received
    }

    /// The fixed or detected language (`en` until known).
    pub fn language(&self) -> &str {
        self.language.as_deref().unwrap_or("en")
    }

    /// Appends received audio (after the endpointer saw it) and applies its events.
    pub fn push_audio(&mut self, samples: &[f32], events: &[EndpointEvent]) {
        self.audio.extend_from_slice(samples);
        self.received += samples.len();
        for event in events {
            match *event {
                EndpointEvent::Started { start } => {
                    if let Some(previous) = self.utterances.back_mut() {
                        clip_before(previous, start);
                    }
                    let key = self.next_key;
                    self.next_key += 1;
                    let id = self.alloc_id();
                    self.events.push(RecognizerEvent::SpeechStarted {
                        key,
                        start_ms: samples_to_ms(start),
                    });
                    self.utterances.push_back(Utterance {
                        key,
                        start: start.max(self.audio_start),
                        end: None,
                        voice_end: None,
                        id,
                        hypothesis: Vec::new(),
                        hypothesis_text: String::new(),
                        decoded_to: 0,
                        inflight_to: None,
                        stable: 0,
                        speech_score: 1.0,
                        skipped_to: 0,
                        committed_tail: Vec::new(),
                        full_context: false,
                    });
                }
                EndpointEvent::Paused { voice_end } => {
                    if let Some(u) = self.open_mut() {
                        u.voice_end = Some(voice_end);
                    }
                }
                EndpointEvent::Ended { end, .. } => self.end_open(end),
            }
        }
        self.trim_audio();
    }

    /// Closes the open utterance at `end` (endpointer `Ended` or a flush).
    fn end_open(&mut self, end: usize) {
        if let Some(u) = self.open_mut() {
            u.end = Some(end.max(u.start));
            let (key, end_ms) = (u.key, samples_to_ms(end));
            self.events
                .push(RecognizerEvent::SpeechStopped { key, end_ms });
        }
    }

    /// Records the VAD score of the open utterance (for the hallucination guard).
    pub fn set_speech_score(&mut self, score: f32) {
        if let Some(u) = self.utterances.back_mut() {
            u.speech_score = score;
        }
    }

    /// The position a new barrier (checkpoint, trace, `final`) waits for: everything
    /// received so far.
    pub fn barrier_position(&self) -> usize {
        self.received
    }

    /// Sets the earliest pending barrier, so a decode reaching it is scheduled even
    /// without a free worker.
    pub fn set_barrier(&mut self, position: Option<usize>) {
        self.barrier = position;
    }

    /// Whether all audio before `position` is decoded and sent: every utterance that
    /// began before it is final, or open with a hypothesis reaching it.
    pub fn barrier_done(&self, position: usize) -> bool {
        self.utterances
            .iter()
            .filter(|u| u.start < position)
            .all(|u| u.end.is_none() && u.decoded_to >= position)
    }

    /// Forgets the context (`stt.state.clear`): segments, utterances, prompt. Ids keep
    /// increasing (PROTOCOL §3.4 rule 3); a decode in flight is ignored when it returns.
    pub fn clear(&mut self) {
        self.utterances.clear();
        self.closed.clear();
        self.context.clear();
        self.cleared_below = self.next_ticket;
        self.inflight = None;
        self.language = self.config.language.clone();
        self.audio.clear();
        self.audio_start = self.received;
    }

    /// Drops the open utterance (not yet committed) but keeps ended ones, whose finals
    /// are still owed (OpenAI `input_audio_buffer.clear`).
    pub fn discard_open(&mut self) {
        if self.open_mut().is_some() {
            self.utterances.pop_back();
            self.changed = true;
        }
    }

    /// Events since the last call.
    pub fn drain_events(&mut self) -> Vec<RecognizerEvent> {
        std::mem::take(&mut self.events)
    }

    /// Whether a decode is in flight.
    pub fn busy(&self) -> bool {
        self.inflight.is_some()
    }

    /// Whether the snapshot changed since the last call (an update is due).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The next decode to run, if any and if none is in flight. Finals of closed
    /// utterances come first; partials of the open one run every `hop` of new audio when
    /// `spare_worker` (a partial never queues behind other streams' decodes: it is
    /// skipped and counted instead), and always at a dip (the final candidate) or for a
    /// barrier.
    pub fn next_plan(&mut self, spare_worker: bool) -> Option<DecodePlan> {
        if self.inflight.is_some() {
            return None;
        }
        // Closed utterances whose last hypothesis already covers their voice are final.
        while let Some(front) = self.utterances.front() {
            if front.end.is_some() && covers_final(front) {
                self.finalize_front_from_hypothesis();
            } else {
                break;
            }
        }
        let barrier = self.barrier;
        let hop = self.config.hop_samples;
        let received = self.received;
        let plan = self.utterances.iter().enumerate().find_map(|(i, u)| {
            if u.end.is_some() {
                return Some((i, PlanKind::Final, true));
            }
            let new_audio = received.saturating_sub(u.decoded_to.max(u.start));
            let dip_uncovered = u
                .voice_end
                .is_some_and(|v| u.decoded_to < v + FINAL_COVER_SAMPLES && received >= v);
            let barrier_uncovered = barrier.is_some_and(|b| u.decoded_to < b);
            let hop_due =
                received.saturating_sub(u.decoded_to.max(u.start).max(u.skipped_to)) >= hop;
            let urgent = dip_uncovered || barrier_uncovered;
            (new_audio > 0 && ((hop_due && spare_worker) || urgent)).then_some((
                i,
                PlanKind::Partial,
                urgent,
            ))
        });
        let Some((index, kind, urgent)) = plan else {
            self.skip_due_partial(spare_worker);
            return None;
        };
        let utterance = &self.utterances[index];
        let key = utterance.key;
        let full_context = utterance.full_context;
        let start = utterance.start;
        let end = utterance.end.unwrap_or(received).min(received);
        let audio = self.slice(start, end);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.inflight = Some((ticket, kind));
        let prompt = self.prompt();
        let language = self.language.clone();
        if let Some(u) = self.utterances.get_mut(index) {
            u.inflight_to = Some(end);
        }
        Some(DecodePlan {
            ticket,
            key,
            kind,
            start,
            end,
            audio,
            prompt,
            language,
            full_context,
            urgent,
        })
    }

    /// The partial in flight, when it has become useless: the speaker paused (or the
    /// utterance ended) after it started, so it cannot stand in for the final and only
    /// delays it. The session cancels it and starts the final-candidate decode at once.
    pub fn stale_partial(&self) -> Option<u64> {
        let (ticket, PlanKind::Partial) = self.inflight? else {
            return None;
        };
        let stale = self.utterances.iter().any(|u| {
            let Some(to) = u.inflight_to else {
                return false;
            };
            let voice_end = u.voice_end.or(u.end);
            voice_end.is_some_and(|v| {
                to < v + FINAL_COVER_SAMPLES && self.received >= v + FINAL_COVER_SAMPLES
            })
        });
        stale.then_some(ticket)
    }

    /// Counts a partial that was due but could not start.
    pub fn note_skipped_partial(&mut self) {
        self.skipped += 1;
    }

    /// Partials skipped since the last call: hops that passed while a partial was being
    /// decoded, hops with no free worker, and partials the workers had no room for.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// A hop's partial was due but no worker was free: skip it until the next hop.
    fn skip_due_partial(&mut self, spare_worker: bool) {
        if spare_worker {
            return;
        }
        let (hop, received) = (self.config.hop_samples, self.received);
        if let Some(u) = self.utterances.back_mut().filter(|u| u.end.is_none()) {
            if received.saturating_sub(u.decoded_to.max(u.start).max(u.skipped_to)) >= hop {
                u.skipped_to = received;
                self.skipped += 1;
            }
        }
    }

    /// Forgets the decode in flight without a result (queue full, worker error): the
    /// next [`Self::next_plan`] retries.
    pub fn abandon(&mut self, ticket: u64) {
        if self.inflight.is_some_and(|(t, _)| t == ticket) {
            self.inflight = None;
            for u in &mut self.utterances {
                u.inflight_to = None;
            }
        }
    }

    /// Applies a decode result; returns whether the snapshot changed.
    pub fn on_result(&mut self, plan: &DecodePlan, output: AsrOutput) -> bool {
        if self.inflight.is_some_and(|(t, _)| t == plan.ticket) {
            self.inflight = None;
        }
        if plan.kind == PlanKind::Partial {
            let hops = self.received.saturating_sub(plan.end) / self.config.hop_samples.max(1);
            self.skipped += hops as u64;
        }
        if plan.ticket < self.cleared_below {
            return false;
        }
        let Some(index) = self.utterances.iter().position(|u| u.key == plan.key) else {
            return false;
        };
        if self.language.is_none() && !output.segments.is_empty() {
            self.language = Some(output.language.clone());
        }
        let score = self.utterances[index].speech_score;
        let decoded_len = plan.end.saturating_sub(plan.start);
        let (mut words, mut text) = self.words_of(output.segments, plan.start, decoded_len, score);
        let u = &mut self.utterances[index];
        tracing::debug!(
            kind = ?plan.kind,
            start = plan.start,
            end = plan.end,
            utterance_end = ?u.end,
            %text,
            times = ?words.iter().map(|w| (w.start_ms, w.end_ms)).collect::<Vec<_>>(),
            "stream decode result"
        );
        let repeated = repeated_prefix(&u.committed_tail, &words);
        if repeated > 0 {
            words.drain(..repeated);
            text = join_words(&words);
        }
        u.inflight_to = None;
        // A short-context decode that lost words two earlier hypotheses agreed on was cut
        // short (seen with a prompt on short utterances), and one that found nothing in
        // a second of confident speech failed (seen with tiny.en): redo it with a wider
        // context rather than let it become the final.
        let lost_words = words.len() < u.stable;
        let empty_over_speech = words.is_empty()
            && u.speech_score >= EMPTY_RETRY_SCORE
            && plan.end.saturating_sub(plan.start) >= EMPTY_RETRY_SAMPLES;
        if !plan.full_context && (lost_words || empty_over_speech) {
            tracing::debug!(
                got = words.len(),
                stable = u.stable,
                "decode lost stable words; retrying with a wider context"
            );
            u.full_context = true;
            return false;
        }
        u.decoded_to = plan.end;
        let agreed = agreed_prefix(&u.hypothesis, &words);
        let grew = agreed > u.stable;
        u.stable = agreed;
        u.hypothesis = words;
        u.hypothesis_text = text;
        let next_start = self.utterances.get(index + 1).map(|next| next.start);
        let u = &mut self.utterances[index];
        if let Some(next_start) = next_start {
            clip_before(u, next_start);
        }
        self.changed = true;
        if grew {
            let stable_text = join_words(&u.hypothesis[..u.stable]);
            let key = u.key;
            self.events.push(RecognizerEvent::Stable {
                key,
                text: stable_text,
            });
        }
        if plan.kind == PlanKind::Final || (u.end.is_some() && covers_final(u)) {
            if index == 0 {
                self.finalize_front_from_hypothesis();
            }
        } else if u.end.is_none() {
            self.commit_if_long(index);
        }
        true
    }

    /// Moves the front utterance's hypothesis into the closed segments.
    fn finalize_front_from_hypothesis(&mut self) {
        let Some(u) = self.utterances.pop_front() else {
            return;
        };
        self.changed = true;
        let text = u.hypothesis_text.clone();
        self.events.push(RecognizerEvent::Final {
            key: u.key,
            text: text.clone(),
        });
        if !u.hypothesis.is_empty() {
            self.close_segment(u.id, text, u.hypothesis);
        }
    }

    /// Commits the stable words (but the last, and any within a second of the decoded
    /// end) of a long open utterance, and restarts it after them under a new id.
    fn commit_if_long(&mut self, index: usize) {
        let commit_after = self.config.commit_after_samples;
        let Some(u) = self.utterances.get_mut(index) else {
            return;
        };
        if u.decoded_to.saturating_sub(u.start) < commit_after || u.stable < 2 {
            return;
        }
        let limit_ms = samples_to_ms(u.decoded_to).saturating_sub(COMMIT_GUARD_MS);
        let count = u.hypothesis[..u.stable - 1]
            .iter()
            .take_while(|w| w.end_ms <= limit_ms)
            .count();
        if count == 0 {
            return;
        }
        let committed: Vec<WordView> = u.hypothesis.drain(..count).collect();
        u.committed_tail = committed
            .iter()
            .rev()
            .take(TAIL_WORDS)
            .rev()
            .map(|w| word_key(&w.text))
            .collect();
        u.start = ms_to_samples(committed.last().map_or(0, |w| w.end_ms)).max(u.start);
        u.stable = 0;
        u.hypothesis_text = join_words(&u.hypothesis);
        let (key, id) = (u.key, u.id);
        let rest_id = self.alloc_id();
        if let Some(u) = self.utterances.get_mut(index) {
            u.id = rest_id;
        }
        let text = join_words(&committed);
        self.events.push(RecognizerEvent::Final {
            key,
            text: text.clone(),
        });
        self.close_segment(id, text, committed);
    }

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn close_segment(&mut self, id: u64, text: String, words: Vec<WordView>) {
        self.changed = true;
        if !text.is_empty() {
            if !self.context.is_empty() {
                self.context.push(' ');
            }
            self.context.push_str(&text);
            let excess = self
                .context
                .len()
                .saturating_sub(self.config.prompt_chars * 2);
            if excess > 0 {
                let cut = char_boundary_at_or_after(&self.context, excess);
                self.context.drain(..cut);
            }
        }
        let start_ms = words.first().map_or(0, |w| w.start_ms);
        let end_ms = words.last().map_or(start_ms, |w| w.end_ms);
        self.closed.push_back(SegmentView {
            id,
            text,
            words,
            is_final: true,
            start_ms,
            end_ms,
        });
        while self.closed.len() > self.config.window_segments.max(1) {
            self.closed.pop_front();
        }
    }

    /// The current window: closed segments then open hypotheses, ascending ids.
    pub fn snapshot(&self) -> Vec<SegmentView> {
        let mut segments: Vec<SegmentView> = self.closed.iter().cloned().collect();
        for u in &self.utterances {
            if u.hypothesis.is_empty() {
                continue;
            }
            segments.push(SegmentView {
                id: u.id,
                text: u.hypothesis_text.clone(),
                words: u.hypothesis.clone(),
                is_final: false,
                start_ms: u.hypothesis.first().map_or(0, |w| w.start_ms),
                end_ms: u.hypothesis.last().map_or(0, |w| w.end_ms),
            });
        }
        let skip = segments
            .len()
            .saturating_sub(self.config.window_segments.max(1));
        segments.drain(..skip);
        segments
    }

    /// Audio held for utterances not yet final, in samples: what a client sending faster
    /// than the decoders keep up with makes the session buffer.
    pub fn backlog_samples(&self) -> usize {
        self.received.saturating_sub(self.audio_start)
    }

    /// Whether an utterance is open or waiting for its final.
    pub fn has_pending(&self) -> bool {
        !self.utterances.is_empty()
    }

    /// Closes the open utterance at the end of the received audio (a `final` flush).
    pub fn flush_open(&mut self) {
        let end = self.received;
        self.end_open(end);
    }

    fn open_mut(&mut self) -> Option<&mut Utterance> {
        self.utterances.back_mut().filter(|u| u.end.is_none())
    }

    fn prompt(&self) -> Option<String> {
        if self.context.is_empty() {
            return self.config.initial_prompt.clone();
        }
        let cut = self.context.len().saturating_sub(self.config.prompt_chars);
        let cut = char_boundary_at_or_after(&self.context, cut);
        Some(self.context[cut..].to_string())
    }

    /// The samples of `start..end`, padded with silence to what whisper.cpp decodes.
    fn slice(&self, start: usize, end: usize) -> Vec<f32> {
        let from = start.saturating_sub(self.audio_start).min(self.audio.len());
        let to = end.saturating_sub(self.audio_start).min(self.audio.len());
        let mut audio = self.audio[from..to.max(from)].to_vec();
        if audio.len() < MIN_DECODE_SAMPLES {
            audio.resize(MIN_DECODE_SAMPLES, 0.0);
        }
        audio
    }

    /// Drops audio nothing will decode again.
    fn trim_audio(&mut self) {
        let keep_from = self
            .utterances
            .front()
            .map_or(self.received.saturating_sub(IDLE_LOOKBACK_SAMPLES), |u| {
                u.start
            });
        let drop = keep_from
            .saturating_sub(self.audio_start)
            .min(self.audio.len());
        if drop > 0 {
            self.audio.drain(..drop);
            self.audio_start += drop;
        }
    }

    /// Screens and flattens decoded segments into absolute words and text.
    fn words_of(
        &self,
        segments: Vec<AsrSegment>,
        start: usize,
        decoded_len: usize,
        score: f32,
    ) -> (Vec<WordView>, String) {
        let offset_ms = samples_to_ms(start);
        let mut words = Vec::new();
        let mut texts = Vec::new();
        for segment in segments {
            if let Some(guard) = self.guard.as_ref() {
                if !crate::longform::guard_keeps(guard, &segment, score) {
                    continue;
                }
            }
            let text = segment.text.trim();
            if !text.is_empty() {
                texts.push(text.to_string());
            }
            for w in segment.words {
                let word = w.text.trim();
                if word.is_empty() {
                    continue;
                }
                words.push(WordView {
                    text: word.to_string(),
                    start_ms: offset_ms + w.start_ms,
                    end_ms: offset_ms + w.end_ms.max(w.start_ms),
                    probability: w.probability,
                });
            }
        }
        let span_end_ms = offset_ms + samples_to_ms(decoded_len);
        spread_collapsed(&mut words, span_end_ms);
        (words, texts.join(" "))
    }
}

/// Drops hypothesis words from `limit` on when the decode reached past it: a decode
/// planned while the utterance was open can cover audio the segmenter later gave to the
/// next utterance (a split of a long region), and those words belong to that one. Only
/// then: whisper.cpp's token times in short-context single-segment decodes often pile up
/// at the end of the audio, so clipping at a silence endpoint would drop real words.
fn clip_before(u: &mut Utterance, limit: usize) {
    if u.decoded_to.max(u.inflight_to.unwrap_or(0)) <= limit {
        return;
    }
    let limit_ms = samples_to_ms(limit);
    let before = u.hypothesis.len();
    u.hypothesis.retain(|w| w.start_ms < limit_ms);
    if u.hypothesis.len() != before {
        u.hypothesis_text = join_words(&u.hypothesis);
        u.stable = u.stable.min(u.hypothesis.len());
    }
}

/// Spreads runs of words that whisper.cpp stamped with one zero-length time (its token
/// times pile up at the end of short-context single-segment decodes) evenly, by
/// character count, between the previous word's end and the next word's start (or the
/// end of the decoded audio). Interpolated, not aligned: real word timing comes from the
/// aligner.
pub fn spread_collapsed(words: &mut [WordView], span_end_ms: u64) {
    let mut i = 0;
    while i < words.len() {
        let at = words[i].start_ms;
        let run = words[i..]
            .iter()
            .take_while(|w| w.start_ms == at && w.end_ms == at)
            .count();
        if run < 2 {
            i += 1;
            continue;
        }
        let from = if i == 0 {
            at
        } else {
            words[i - 1].end_ms.min(at)
        };
        let to = words
            .get(i + run)
            .map_or(span_end_ms.max(at), |next| next.start_ms)
            .max(from);
        let weights: Vec<u64> = words[i..i + run]
            .iter()
            .map(|w| w.text.chars().count().max(1) as u64)
            .collect();
        let total: u64 = weights.iter().sum();
        let mut cursor = from;
        let mut acc = 0;
        for (w, weight) in words[i..i + run].iter_mut().zip(&weights) {
            acc += weight;
            w.start_ms = cursor;
            cursor = from + (to - from) * acc / total;
            w.end_ms = cursor;
        }
        i += run;
    }
}

/// Whether the utterance's last hypothesis covers its voice (then it is the final).
fn covers_final(u: &Utterance) -> bool {
    let Some(end) = u.end else { return false };
    let voice_end = u.voice_end.unwrap_or(end);
    u.inflight_to.is_none() && u.decoded_to >= (voice_end + FINAL_COVER_SAMPLES).min(end)
}

/// LocalAgreement: how many leading words two hypotheses share (case and punctuation
/// ignored).
pub fn agreed_prefix(previous: &[WordView], current: &[WordView]) -> usize {
    previous
        .iter()
        .zip(current)
        .take_while(|(a, b)| same_word(&a.text, &b.text))
        .count()
}

fn same_word(a: &str, b: &str) -> bool {
    word_key(a) == word_key(b)
}

fn word_key(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Committed words remembered per utterance for [`repeated_prefix`].
const TAIL_WORDS: usize = 8;
/// How far into a new hypothesis a repeat of the committed words is looked for.
const REPEAT_SEARCH_WORDS: usize = 40;

/// How many leading words of `words` repeat already committed text: the hypothesis
/// starts with the end of `tail` (word times were late), or contains the last three or
/// more words of `tail` near its start (they were early and the decode re-read them).
pub fn repeated_prefix(tail: &[String], words: &[WordView]) -> usize {
    if tail.is_empty() || words.is_empty() {
        return 0;
    }
    let keys: Vec<String> = words
        .iter()
        .take(REPEAT_SEARCH_WORDS)
        .map(|w| word_key(&w.text))
        .collect();
    // The whole tail, or its last ≥ 3 words, found as a run: cut through its end.
    let shortest = tail.len().min(3);
    for len in (shortest..=tail.len()).rev() {
        let needle = &tail[tail.len() - len..];
        if let Some(at) = keys.windows(len).position(|w| w == needle) {
            return at + len;
        }
    }
    // A shorter suffix of the tail as the hypothesis's first words.
    (1..shortest)
        .rev()
        .find(|&k| k <= keys.len() && keys[..k] == tail[tail.len() - k..])
        .unwrap_or(0)
}

fn char_boundary_at_or_after(text: &str, index: usize) -> usize {
    (index..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len())
}

fn join_words(words: &[WordView]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SAMPLE_RATE)
}

fn ms_to_samples(ms: u64) -> usize {
    (ms * u64::from(SAMPLE_RATE) / 1000) as usize
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ember_models::{AsrSegment, AsrWord};

    const SECOND: usize = SAMPLE_RATE as usize;

    fn recognizer() -> Recognizer {
        Recognizer::new(
            RecognizerConfig {
                hop_samples: SECOND / 2,
                commit_after_samples: 6 * SECOND,
                window_segments: 10,
                prompt_chars: 50,
                initial_prompt: Some("Glossary".into()),
                language: None,
            },
            None,
        )
    }

    /// An ASR result whose words are spread evenly over the decoded span.
    fn output(text: &str, span_ms: u64) -> AsrOutput {
        let words: Vec<&str> = text.split_whitespace().collect();
        let step = span_ms / words.len().max(1) as u64;
        AsrOutput {
            language: "en".into(),
            model: "test".into(),
            segments: vec![AsrSegment {
                start_ms: 0,
                end_ms: span_ms,
                text: format!(" {text}"),
                tokens: Vec::new(),
                avg_logprob: -0.1,
                compression_ratio: 1.0,
                no_speech_prob: 0.0,
                temperature: 0.0,
                words: words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| AsrWord {
                        text: format!(" {w}"),
                        start_ms: i as u64 * step,
                        end_ms: (i as u64 + 1) * step,
                        probability: 0.9,
                    })
                    .collect(),
            }],
        }
    }

    fn silence(n: usize) -> Vec<f32> {
        vec![0.0; n]
    }

    #[test]
    fn partials_then_a_final_under_one_stable_id() {
        let mut r = recognizer();
        r.push_audio(
            &silence(SECOND),
            &[EndpointEvent::Started { start: SECOND / 2 }],
        );
        let plan = r.next_plan(true).unwrap();
        assert_eq!(plan.kind, PlanKind::Partial);
        assert_eq!(plan.prompt.as_deref(), Some("Glossary"));
        assert!(plan.audio.len() >= MIN_DECODE_SAMPLES);
        assert!(r.next_plan(true).is_none(), "one decode at a time");
        assert!(r.on_result(&plan, output("hello there", 400)));
        let snapshot = r.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert!(!snapshot[0].is_final);
        assert_eq!(snapshot[0].words[0].start_ms, 500, "times are absolute");
        assert_eq!(r.language(), "en");

        r.push_audio(
            &silence(SECOND),
            &[EndpointEvent::Ended {
                start: SECOND / 2,
                end: SECOND + SECOND / 2,
            }],
        );
        let final_plan = r.next_plan(true).unwrap();
        assert_eq!(final_plan.kind, PlanKind::Final);
        r.on_result(&final_plan, output("hello there friend", 900));
        let snapshot = r.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert!(snapshot[0].is_final);
        assert_eq!(snapshot[0].id, 0);
        assert_eq!(snapshot[0].text, "hello there friend");
        // The next decode is primed with the final text.
        r.push_audio(
            &silence(SECOND),
            &[EndpointEvent::Started { start: 2 * SECOND }],
        );
        r.push_audio(&silence(SECOND), &[]);
        let next = r.next_plan(true).unwrap();
        assert_eq!(next.prompt.as_deref(), Some("hello there friend"));
        r.on_result(&next, output("again", 300));
        let ids: Vec<u64> = r.snapshot().iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![0, 1]);
        let events = r.drain_events();
        assert!(events.contains(&RecognizerEvent::Final {
            key: 0,
            text: "hello there friend".into()
        }));
    }

    #[test]
    fn a_decode_started_after_the_pause_becomes_the_final() {
        let mut r = recognizer();
        r.push_audio(&silence(SECOND), &[EndpointEvent::Started { start: 0 }]);
        let partial = r.next_plan(true).unwrap();
        r.on_result(&partial, output("one", 300));
        // The voice stops at 1.2 s; 100+ ms later a dip decode runs over everything.
        r.push_audio(
            &silence(SECOND / 2),
            &[EndpointEvent::Paused {
                voice_end: SECOND + SECOND / 5,
            }],
        );
        let dip = r.next_plan(true).unwrap();
        assert_eq!(dip.kind, PlanKind::Partial);
        assert_eq!(dip.end, SECOND + SECOND / 2);
        r.on_result(&dip, output("one two", 1_000));
        r.push_audio(
            &silence(SECOND / 4),
            &[EndpointEvent::Ended {
                start: 0,
                end: SECOND + SECOND / 3,
            }],
        );
        assert!(
            r.next_plan(true).is_none(),
            "the dip decode covered the voice: no second decode"
        );
        let snapshot = r.snapshot();
        assert!(snapshot[0].is_final);
        assert_eq!(snapshot[0].text, "one two");
    }

    #[test]
    fn a_partial_started_before_the_pause_is_stale() {
        let mut r = recognizer();
        r.push_audio(&silence(SECOND), &[EndpointEvent::Started { start: 0 }]);
        let partial = r.next_plan(true).unwrap();
        assert_eq!(r.stale_partial(), None);
        r.push_audio(
            &silence(SECOND / 2),
            &[EndpointEvent::Paused {
                voice_end: SECOND + SECOND / 5,
            }],
        );
        assert_eq!(r.stale_partial(), Some(partial.ticket));
        r.abandon(partial.ticket);
        let fresh = r.next_plan(true).unwrap();
        assert_eq!(fresh.end, SECOND + SECOND / 2);
    }

    #[test]
    fn long_utterances_commit_stable_words_and_clear_forgets() {
        let mut r = recognizer();
        r.push_audio(&silence(7 * SECOND), &[EndpointEvent::Started { start: 0 }]);
        let words = "a b c d e f g h i j k l m n";
        let first = r.next_plan(true).unwrap();
        r.on_result(&first, output(words, 7_000));
        r.push_audio(&silence(SECOND / 2), &[]);
        let second = r.next_plan(true).unwrap();
        r.on_result(&second, output(words, 7_000));
        let snapshot = r.snapshot();
        assert!(
            snapshot.len() == 2 && snapshot[0].is_final && !snapshot[1].is_final,
            "{snapshot:?}"
        );
        assert!(snapshot[0].end_ms <= 7_500 - COMMIT_GUARD_MS);
        assert!(snapshot[1].id > snapshot[0].id);
        let before = snapshot[1].id;
        r.clear();
        assert!(r.snapshot().is_empty());
        assert!(!r.has_pending());
        r.push_audio(
            &silence(SECOND),
            &[EndpointEvent::Started {
                start: r.received() - SECOND,
            }],
        );
        let plan = r.next_plan(true).unwrap();
        r.on_result(&plan, output("new", 300));
        assert!(
            r.snapshot()[0].id > before,
            "ids keep increasing across a clear"
        );
    }

    #[test]
    fn repeats_of_committed_words_are_cut() {
        let w = |t: &str| WordView {
            text: t.into(),
            start_ms: 0,
            end_ms: 0,
            probability: 1.0,
        };
        let words = |text: &str| text.split(' ').map(w).collect::<Vec<_>>();
        let tail: Vec<String> = ["to", "work", "you", "need", "a", "modem"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // The decode re-read the whole committed sentence.
        assert_eq!(
            repeated_prefix(
                &tail,
                &words("In order for this to work, you need a modem. To execute")
            ),
            10
        );
        // It starts with the last committed word.
        assert_eq!(repeated_prefix(&tail, &words("modem. To execute")), 1);
        assert_eq!(repeated_prefix(&tail, &words("To execute a test")), 0);
        assert_eq!(repeated_prefix(&[], &words("anything")), 0);
    }

    #[test]
    fn collapsed_word_times_are_spread() {
        let w = |t: &str, a: u64, b: u64| WordView {
            text: t.into(),
            start_ms: a,
            end_ms: b,
            probability: 1.0,
        };
        let mut words = vec![
            w("He", 200, 1_200),
            w("sharply", 3_000, 3_000),
            w("and", 3_000, 3_000),
            w("faced", 3_000, 3_000),
        ];
        spread_collapsed(&mut words, 3_500);
        let times: Vec<(u64, u64)> = words.iter().map(|w| (w.start_ms, w.end_ms)).collect();
        assert_eq!(times[0], (200, 1_200));
        assert_eq!(times[1].0, 1_200);
        assert_eq!(times[3].1, 3_500);
        assert!(
            times
                .windows(2)
                .all(|p| p[0].1 <= p[1].0 && p[1].0 < p[1].1),
            "{times:?}"
        );
        let mut single = vec![w("ok", 500, 500)];
        spread_collapsed(&mut single, 900);
        assert_eq!((single[0].start_ms, single[0].end_ms), (500, 500));
    }

    #[test]
    fn backlog_is_the_audio_held_for_unfinished_utterances() {
        let mut r = recognizer();
        r.push_audio(&silence(3 * SECOND), &[]);
        assert!(r.backlog_samples() <= SECOND, "idle keeps one second");
        r.push_audio(
            &silence(2 * SECOND),
            &[EndpointEvent::Started { start: 3 * SECOND }],
        );
        r.push_audio(
            &silence(SECOND),
            &[EndpointEvent::Ended {
                start: 3 * SECOND,
                end: 5 * SECOND,
            }],
        );
        assert_eq!(r.backlog_samples(), 3 * SECOND);
        let plan = r.next_plan(true).unwrap();
        r.on_result(&plan, output("done", 500));
        r.push_audio(&silence(SECOND / 2), &[]);
        assert!(r.backlog_samples() <= SECOND, "{}", r.backlog_samples());
    }

    #[test]
    fn agreement_ignores_case_and_punctuation() {
        let w = |t: &str| WordView {
            text: t.into(),
            start_ms: 0,
            end_ms: 0,
            probability: 1.0,
        };
        let a = [w("Hello,"), w("world"), w("again")];
        let b = [w("hello"), w("World."), w("anew")];
        assert_eq!(agreed_prefix(&a, &b), 2);
        assert_eq!(agreed_prefix(&a, &[]), 0);
    }
}
