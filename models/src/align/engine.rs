//! The alignment service: installed CTC aligners and the worker threads that run them.
//!
//! Workers own their ONNX sessions (created on first use per aligner) because `Session::run`
//! takes `&mut self`. Windows are aligned one at a time, so memory is bounded by the
//! largest window ([`ctc::MAX_TRELLIS_CELLS`]), not by the audio.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::acoustic::{CtcAligner, SpelledWord};
use super::ctc::{self, CtcTokens, FrameSpan, LogProbs};
use super::energy::Levels;
use super::manifest::AlignerManifest;
use super::timing::{finish, span_times, FrameClock};
use super::AlignedWord;
use crate::error::ModelError;
use crate::pool::{PoolStats, Priority, WorkerPool};

const SAMPLES_PER_MS: usize = 16;

/// A stretch of audio (sample range) and the words spoken in it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignWindow {
    pub start: usize,
    pub end: usize,
    pub words: Vec<String>,
}

/// What to align.
#[derive(Debug, Clone, PartialEq)]
pub enum AlignInput {
    /// Each window carries its own words (a transcript's segments, padded).
    Windows(Vec<AlignWindow>),
    /// One text over speech chunks in order: words are shared out among the chunks in
    /// proportion to the tokens the model hears in each, then aligned chunk by chunk.
    Text {
        chunks: Vec<(usize, usize)>,
        words: Vec<String>,
    },
}

/// One alignment job.
#[derive(Debug, Clone)]
pub struct AlignRequest {
    /// Aligner name (`tdnn_ffn`, or an installed manifest's name).
    pub aligner: String,
    /// 16 kHz mono.
    pub audio: Arc<Vec<f32>>,
    pub input: AlignInput,
    pub priority: Priority,
}

struct AlignJob {
    request: AlignRequest,
    deadline: Instant,
    span: tracing::Span,
    reply: oneshot::Sender<Result<Vec<AlignedWord>, ModelError>>,
}

/// Installed aligners plus their workers.
pub struct AlignEngine {
    aligners: HashMap<String, Arc<AlignerManifest>>,
    pool: WorkerPool<AlignJob>,
}

impl AlignEngine {
    /// Starts `workers` alignment threads for `aligners` (sessions load on first use).
    pub fn new(
        aligners: Vec<AlignerManifest>,
        workers: usize,
        queue_capacity: usize,
    ) -> Result<Self, ModelError> {
        let aligners: HashMap<String, Arc<AlignerManifest>> = aligners
            .into_iter()
            .map(|m| (m.name.clone(), Arc::new(m)))
            .collect();
        let known = aligners.clone();
        let pool = WorkerPool::spawn(
            "align",
            workers.max(1),
            queue_capacity.max(1),
            |_| HashMap::<String, CtcAligner>::new(),
            move |loaded: &mut HashMap<String, CtcAligner>, job: AlignJob| {
                run_job(loaded, &known, job);
            },
        )
        .map_err(|e| ModelError::Inference(format!("could not start aligner workers: {e}")))?;
        Ok(Self { aligners, pool })
    }

    /// Names of the installed aligners, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.aligners.keys().cloned().collect();
        names.sort();
        names
    }

    /// The manifest of an installed aligner.
    pub fn get(&self, name: &str) -> Option<&AlignerManifest> {
        self.aligners.get(name).map(Arc::as_ref)
    }

    pub fn stats(&self) -> &PoolStats {
        self.pool.stats()
    }

    /// Queues a job; a full queue is `Overloaded` at once.
    pub fn submit(
        &self,
        request: AlignRequest,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Result<Vec<AlignedWord>, ModelError>>, ModelError> {
        if !self.aligners.contains_key(&request.aligner) {
            return Err(ModelError::Unsupported(format!(
                "aligner `{}` is not installed",
                request.aligner
            )));
        }
        let (reply, receiver) = oneshot::channel();
        let priority = request.priority;
        self.pool.try_submit_with(
            priority,
            AlignJob {
                request,
                deadline,
                span: tracing::Span::current(),
                reply,
            },
        )?;
        Ok(receiver)
    }
}

fn run_job(
    loaded: &mut HashMap<String, CtcAligner>,
    known: &HashMap<String, Arc<AlignerManifest>>,
    job: AlignJob,
) {
    let _entered = job.span.enter();
    if job.reply.is_closed() {
        return;
    }
    if Instant::now() >= job.deadline {
        let _ = job.reply.send(Err(ModelError::DeadlineExceeded));
        return;
    }
    let started = Instant::now();
    let name = job.request.aligner.clone();
    let aligner = match loaded.entry(name.clone()) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let Some(manifest) = known.get(&name) else {
                let _ = job.reply.send(Err(ModelError::Unsupported(format!(
                    "aligner `{name}` is not installed"
                ))));
                return;
            };
            match CtcAligner::load(manifest.as_ref().clone()) {
                Ok(a) => e.insert(a),
                Err(err) => {
                    let _ = job.reply.send(Err(err));
                    return;
                }
            }
        }
    };
    let result = align(aligner, &job.request, job.deadline);
    tracing::info!(
        aligner = %name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        ok = result.is_ok(),
        "alignment job finished"
    );
    let _ = job.reply.send(result);
}

fn align(
    aligner: &mut CtcAligner,
    request: &AlignRequest,
    deadline: Instant,
) -> Result<Vec<AlignedWord>, ModelError> {
    let audio = request.audio.as_slice();
    let windows = match &request.input {
        AlignInput::Windows(windows) => windows.clone(),
        AlignInput::Text { chunks, words } => share_words(aligner, audio, chunks, words)?,
    };
    let mut placed: Vec<Option<AlignedWord>> = Vec::new();
    for window in &windows {
        if Instant::now() >= deadline {
            return Err(ModelError::DeadlineExceeded);
        }
        placed.extend(align_window(aligner, audio, window)?);
    }
    let last_ms = (audio.len() / SAMPLES_PER_MS) as u64;
    Ok(finish(placed, (0, last_ms)))
}

/// One window's words with times, `None` where the model could not place them.
fn align_window(
    aligner: &mut CtcAligner,
    audio: &[f32],
    window: &AlignWindow,
) -> Result<Vec<Option<AlignedWord>>, ModelError> {
    let end = window.end.min(audio.len());
    let start = window.start.min(end);
    if window.words.is_empty() {
        return Ok(Vec::new());
    }
    // Shorter than one frame of any model: nothing to align against.
    if end - start < 400 {
        return Ok(vec![None; window.words.len()]);
    }
    let spelled = aligner.spell(&window.words)?;
    let log_probs = aligner.log_probs(&audio[start..end])?;
    let spans = word_spans(&log_probs, &spelled, aligner.tokens());
    let clock = FrameClock {
        offset_ms: start as f64 / SAMPLES_PER_MS as f64,
        frame_ms: (end - start) as f64 / SAMPLES_PER_MS as f64 / log_probs.frames.max(1) as f64,
    };
    let manifest = aligner.manifest();
    let mut times = span_times(
        &spans,
        clock,
        manifest.start_shift_ms,
        manifest.end_shift_ms,
    );
    Levels::new(&audio[start..end], (start / SAMPLES_PER_MS) as u64).extend_ends(&mut times);
    Ok(times)
}

/// Aligns the spoken pieces of every written word and merges each word's pieces into
/// one span. A window the model cannot align at all leaves every word unplaced.
fn word_spans(
    log_probs: &LogProbs,
    spelled: &[SpelledWord],
    tokens: CtcTokens,
) -> Vec<Option<FrameSpan>> {
    let pieces: Vec<Vec<u32>> = spelled.iter().flatten().cloned().collect();
    let piece_spans = match ctc::align_words(log_probs, &pieces, tokens) {
        Ok(spans) => spans,
        Err(err) => {
            tracing::warn!(error = %err, "window not aligned; interpolating its words");
            return vec![None; spelled.len()];
        }
    };
    let mut spans = piece_spans.into_iter();
    spelled
        .iter()
        .map(|word| {
            let own: Vec<FrameSpan> = spans.by_ref().take(word.len()).flatten().collect();
            let first = own.first()?;
            let last = own.last()?;
            Some(FrameSpan {
                start: first.start,
                end: last.end,
                confidence: own.iter().map(|s| s.confidence).sum::<f32>() / own.len() as f32,
            })
        })
        .collect()
}

/// Shares `words` out among `chunks` in proportion to the tokens the greedy decode
/// hears in each (speaking rate varies across a long recording; token counts track it).
fn share_words(
    aligner: &mut CtcAligner,
    audio: &[f32],
    chunks: &[(usize, usize)],
    words: &[String],
) -> Result<Vec<AlignWindow>, ModelError> {
    let chunks: Vec<(usize, usize)> = chunks
        .iter()
        .map(|&(s, e)| (s.min(audio.len()), e.min(audio.len())))
        .filter(|(s, e)| e > s)
        .collect();
    if chunks.len() <= 1 {
        let (start, end) = chunks.first().copied().unwrap_or((0, audio.len()));
        return Ok(vec![AlignWindow {
            start,
            end,
            words: words.to_vec(),
        }]);
    }
    let tokens = aligner.tokens();
    let mut heard = Vec::with_capacity(chunks.len());
    for &(start, end) in &chunks {
        let log_probs = aligner.log_probs(&audio[start..end])?;
        heard.push(log_probs.greedy_token_count(tokens.blank, tokens.word_boundary) as f64);
    }
    let spelled = aligner.spell(words)?;
    let weights: Vec<f64> = spelled
        .iter()
        .map(|w| w.iter().map(Vec::len).sum::<usize>() as f64)
        .collect();
    let assignment = proportional_split(&heard, &weights);
    Ok(chunks
        .iter()
        .zip(assignment)
        .map(|(&(start, end), range)| AlignWindow {
            start,
            end,
            words: words[range].to_vec(),
        })
        .collect())
}

/// Splits items with `weights` into consecutive ranges, one per bucket, so each
/// bucket's share of the weight matches its share of `capacity`. Each word goes to the
/// bucket its weight's midpoint falls in.
fn proportional_split(capacity: &[f64], weights: &[f64]) -> Vec<std::ops::Range<usize>> {
    let total_capacity: f64 = capacity.iter().sum::<f64>().max(f64::EPSILON);
    let total_weight: f64 = weights.iter().sum::<f64>().max(f64::EPSILON);
    let mut bounds = Vec::with_capacity(capacity.len());
    let mut cumulative = 0.0;
    for c in capacity {
        cumulative += c / total_capacity;
        bounds.push(cumulative);
    }
    let mut ranges = vec![0..0; capacity.len()];
    let mut bucket = 0;
    let mut before = 0.0;
    for (index, w) in weights.iter().enumerate() {
        let midpoint = (before + w / 2.0) / total_weight;
        before += w;
        while bucket + 1 < capacity.len() && midpoint > bounds[bucket] {
            bucket += 1;
            ranges[bucket] = index..index;
        }
        ranges[bucket].end = index + 1;
    }
    // Buckets never reached start where the last one ended.
    let mut cursor = 0;
    for range in &mut ranges {
        if range.start < cursor || range.start >= range.end {
            *range = cursor.max(range.start)..cursor.max(range.end);
        }
        cursor = range.end;
    }
    ranges
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn words_are_shared_in_proportion() {
        let ranges = proportional_split(&[10.0, 30.0], &[1.0; 8]);
        assert_eq!(ranges, vec![0..2, 2..8]);
        let ranges = proportional_split(&[1.0, 0.0, 1.0], &[1.0; 4]);
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), 4);
        assert_eq!(ranges[0], 0..2);
        assert_eq!(ranges[2], 2..4);
    }
}
