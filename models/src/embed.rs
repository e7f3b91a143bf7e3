//! Sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) through ORT, WordPiece through the
//! `tokenizers` crate, mean pooling over the attention mask and L2 normalisation, with
//! dynamic batching.
//!
//! One batcher thread owns the session. It takes the first waiting request, then keeps
//! taking requests for at most `max_wait` or until the token budget is full, sorts all
//! their sequences by length and runs them in as few ORT batches as the budget allows
//! (padding costs little when neighbours have similar lengths), as
//! text-embeddings-inference does. Many small concurrent requests then cost about what
//! one large request costs. The queue is bounded: a full queue is `Overloaded` (429).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::Tensor;
use tokenizers::Tokenizer;
use tokio::sync::oneshot;

use crate::error::ModelError;
use crate::onnx::{self, SessionConfig};
use crate::pool::SubmitError;

/// Manifest ids of the shipped model and tokenizer (see `packages::MODELS`).
pub const MINILM_MODEL_ID: &str = "all-minilm-l6-v2";
pub const MINILM_TOKENIZER_ID: &str = "all-minilm-l6-v2-tokenizer";

/// Settings of the embedding worker.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    /// Longest input in tokens (with `[CLS]`/`[SEP]`); all-MiniLM-L6-v2 was trained at 256.
    pub max_tokens: usize,
    /// Cut longer inputs to `max_tokens` (true) or refuse them with a 400 (false).
    pub truncate: bool,
    /// Padded tokens (sequences × longest) one ORT batch may hold; 0 turns batching off
    /// (every sequence runs alone). Big batches pay on accelerators; on small CPUs
    /// their activations outgrow the cache (see the server's default).
    pub batch_tokens: usize,
    /// How long the batcher waits for more requests once it has one.
    pub max_wait: Duration,
    /// Requests that may wait before submissions get 429.
    pub queue_capacity: usize,
    /// ORT intra-op threads.
    pub threads: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            truncate: true,
            batch_tokens: 256,
            max_wait: Duration::from_millis(2),
            queue_capacity: 64,
            threads: 1,
        }
    }
}

/// One input as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedInput {
    Text(String),
    /// Model token ids; `[CLS]`/`[SEP]` are added when missing.
    Tokens(Vec<u32>),
}

/// Vectors in input order and the tokens they took.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: usize,
}

/// Where a submitted job's vectors arrive.
pub type EmbedReceiver = oneshot::Receiver<Result<Vec<Vec<f32>>, ModelError>>;

struct EmbedJob {
    sequences: Vec<Vec<u32>>,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, ModelError>>,
}

/// Counters for health, logs and the batching benchmark.
#[derive(Debug, Default)]
pub struct EmbedStats {
    /// ORT runs.
    pub batches: AtomicUsize,
    /// Sequences embedded.
    pub sequences: AtomicUsize,
}

/// The embedding service.
pub struct EmbedEngine {
    id: String,
    tokenizer: Arc<Tokenizer>,
    config: EmbedConfig,
    sender: SyncSender<EmbedJob>,
    stats: Arc<EmbedStats>,
    dimension: usize,
    vocabulary: usize,
    cls: u32,
    sep: u32,
}

/// Hidden size of all-MiniLM-L6-v2.
const DIMENSION: usize = 384;

impl EmbedEngine {
    /// Loads the tokenizer and model and starts the batcher thread.
    pub fn load(
        id: &str,
        model: &Path,
        tokenizer: &Path,
        config: EmbedConfig,
    ) -> Result<Self, ModelError> {
        let load_error = |detail: String| ModelError::Load {
            id: id.to_string(),
            path: tokenizer.display().to_string(),
            detail,
        };
        let mut tok = Tokenizer::from_file(tokenizer).map_err(|e| load_error(e.to_string()))?;
        // The file pins truncation and padding at 128: lengths are ours to decide.
        tok.with_padding(None);
        tok.with_truncation(None)
            .map_err(|e| load_error(e.to_string()))?;
        let special = |name: &str| {
            tok.token_to_id(name)
                .ok_or_else(|| load_error(format!("the tokenizer has no `{name}`")))
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        let vocabulary = tok.get_vocab_size(true);
        let session = onnx::session(
            id,
            model,
            &SessionConfig {
                intra_threads: config.threads.max(1),
                ..SessionConfig::default()
            },
        )?;
        let (sender, receiver) = mpsc::sync_channel(config.queue_capacity.max(1));
        let stats = Arc::new(EmbedStats::default());
        let worker = BatchWorker {
            session,
            receiver,
            config: config.clone(),
            stats: Arc::clone(&stats),
        };
        std::thread::Builder::new()
            .name("embed".to_string())
            .spawn(move || worker.run())
            .map_err(|e| ModelError::Inference(format!("could not start the embedder: {e}")))?;
        Ok(Self {
            id: id.to_string(),
            tokenizer: Arc::new(tok),
            config,
            sender,
            stats,
            dimension: DIMENSION,
            vocabulary,
            cls,
            sep,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    pub fn stats(&self) -> &EmbedStats {
        &self.stats
    }

    /// Token ids of each input, with `[CLS]`/`[SEP]`, truncated or refused per the
    /// configuration. CPU work: call it off the async executor for large requests.
    pub fn tokenize(&self, inputs: &[EmbedInput]) -> Result<Vec<Vec<u32>>, ModelError> {
        let texts: Vec<&str> = inputs
            .iter()
            .filter_map(|i| match i {
                EmbedInput::Text(t) => Some(t.as_str()),
                EmbedInput::Tokens(_) => None,
            })
            .collect();
        let mut encoded = self
            .tokenizer
            .encode_batch(texts, true)
            .map_err(|e| ModelError::Inference(format!("tokenizing: {e}")))?
            .into_iter();
        inputs
            .iter()
            .enumerate()
            .map(|(index, input)| {
                let ids = match input {
                    EmbedInput::Text(_) => encoded
                        .next()
                        .map(|e| e.get_ids().to_vec())
                        .unwrap_or_default(),
                    EmbedInput::Tokens(ids) => self.wrap_ids(index, ids)?,
                };
                self.fit(index, ids)
            })
            .collect()
    }

    fn wrap_ids(&self, index: usize, ids: &[u32]) -> Result<Vec<u32>, ModelError> {
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.vocabulary) {
            return Err(ModelError::Unsupported(format!(
                "`input[{index}]` has token id {bad}; this model's vocabulary has {} ids",
                self.vocabulary
            )));
        }
        let mut out = Vec::with_capacity(ids.len() + 2);
        if ids.first() != Some(&self.cls) {
            out.push(self.cls);
        }
        out.extend_from_slice(ids);
        if ids.last() != Some(&self.sep) {
            out.push(self.sep);
        }
        Ok(out)
    }

    fn fit(&self, index: usize, mut ids: Vec<u32>) -> Result<Vec<u32>, ModelError> {
        let max = self.config.max_tokens.max(2);
        if ids.len() <= max {
            return Ok(ids);
        }
        if !self.config.truncate {
            return Err(ModelError::Unsupported(format!(
                "`input[{index}]` has {} tokens; this model takes at most {max} \
                 (the server refuses longer inputs instead of truncating them)",
                ids.len()
            )));
        }
        ids.truncate(max - 1);
        ids.push(self.sep);
        Ok(ids)
    }

    /// Embeds tokenised sequences; the receiver yields L2-normalised vectors in order.
    pub fn submit(
        &self,
        sequences: Vec<Vec<u32>>,
        deadline: Instant,
    ) -> Result<EmbedReceiver, ModelError> {
        let (reply, receiver) = oneshot::channel();
        let job = EmbedJob {
            sequences,
            deadline,
            reply,
        };
        match self.sender.try_send(job) {
            Ok(()) => Ok(receiver),
            Err(e) => Err(ModelError::Overloaded(SubmitError::from_try_send(
                e,
                "embedding",
                self.config.queue_capacity,
            ))),
        }
    }
}

/// Keeps the first `dimensions` values and re-normalises (the default model is not
/// Matryoshka-trained: shorter vectors lose more than such models would).
pub fn truncate_dimensions(vector: &mut Vec<f32>, dimensions: usize) {
    if dimensions < vector.len() {
        vector.truncate(dimensions);
        normalise(vector);
    }
}

fn normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    vector.iter_mut().for_each(|v| *v /= norm);
}

/// The batcher thread.
struct BatchWorker {
    session: Session,
    receiver: Receiver<EmbedJob>,
    config: EmbedConfig,
    stats: Arc<EmbedStats>,
}

impl BatchWorker {
    fn run(mut self) {
        crate::pool::lower_thread_priority();
        while let Ok(first) = self.receiver.recv() {
            let jobs = self.gather(first);
            self.serve(jobs);
        }
    }

    /// The first job plus whatever arrives within `max_wait`, up to the token budget.
    fn gather(&self, first: EmbedJob) -> Vec<EmbedJob> {
        let mut tokens: usize = first.sequences.iter().map(Vec::len).sum();
        let mut jobs = vec![first];
        if self.config.batch_tokens == 0 {
            return jobs;
        }
        let until = Instant::now() + self.config.max_wait;
        while tokens < self.config.batch_tokens {
            let left = until.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(job) => {
                    tokens += job.sequences.iter().map(Vec::len).sum::<usize>();
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        jobs
    }

    fn serve(&mut self, jobs: Vec<EmbedJob>) {
        let now = Instant::now();
        let (live, late): (Vec<EmbedJob>, Vec<EmbedJob>) = jobs
            .into_iter()
            .filter(|j| !j.reply.is_closed())
            .partition(|j| j.deadline > now);
        for job in late {
            let _ = job.reply.send(Err(ModelError::DeadlineExceeded));
        }
        // (job, sequence) of every sequence, shortest first.
        let mut order: Vec<(usize, usize)> = live
            .iter()
            .enumerate()
            .flat_map(|(j, job)| (0..job.sequences.len()).map(move |s| (j, s)))
            .collect();
        order.sort_by_key(|&(j, s)| live[j].sequences[s].len());
        let mut results: Vec<Vec<Option<Vec<f32>>>> =
            live.iter().map(|j| vec![None; j.sequences.len()]).collect();
        let mut failure: Option<String> = None;
        for batch in self.batches(&live, &order) {
            crate::pool::yield_to_live_audio();
            let sequences: Vec<&[u32]> = batch
                .iter()
                .map(|&(j, s)| live[j].sequences[s].as_slice())
                .collect();
            match self.embed_batch(&sequences) {
                Ok(vectors) => {
                    for (&(j, s), v) in batch.iter().zip(vectors) {
                        results[j][s] = Some(v);
                    }
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        for (job, vectors) in live.into_iter().zip(results) {
            let reply = match (&failure, vectors.into_iter().collect::<Option<Vec<_>>>()) {
                (None, Some(vectors)) => Ok(vectors),
                (Some(e), _) => Err(ModelError::Inference(format!("embedding: {e}"))),
                (None, None) => Err(ModelError::Inference("embedding: missing vector".into())),
            };
            let _ = job.reply.send(reply);
        }
    }

    /// Consecutive runs of `order` whose padded size stays within the token budget.
    fn batches(&self, live: &[EmbedJob], order: &[(usize, usize)]) -> Vec<Vec<(usize, usize)>> {
        let mut batches: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut current: Vec<(usize, usize)> = Vec::new();
        for &(j, s) in order {
            // Sorted by length: this sequence is the longest of the batch so far.
            let len = live[j].sequences[s].len();
            let fits = self.config.batch_tokens > 0
                && (current.len() + 1) * len <= self.config.batch_tokens;
            if !fits && !current.is_empty() {
                batches.push(std::mem::take(&mut current));
            }
            current.push((j, s));
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
    }

    fn embed_batch(&mut self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, ort::Error> {
        let batch = sequences.len();
        let width = sequences.iter().map(|s| s.len()).max().unwrap_or(1);
        let mut ids = vec![0i64; batch * width];
        let mut mask = vec![0i64; batch * width];
        for (row, seq) in sequences.iter().enumerate() {
            for (col, &id) in seq.iter().enumerate() {
                ids[row * width + col] = i64::from(id);
                mask[row * width + col] = 1;
            }
        }
        let input_ids = Tensor::from_array(([batch, width], ids))?;
        let attention_mask = Tensor::from_array(([batch, width], mask))?;
        let token_type_ids = Tensor::from_array(([batch, width], vec![0i64; batch * width]))?;
        let outputs = self.session.run(ort::inputs![
            "input_ids" => &input_ids,
            "attention_mask" => &attention_mask,
            "token_type_ids" => &token_type_ids,
        ])?;
        let hidden = outputs
            .get("last_hidden_state")
            .ok_or_else(|| ort::Error::new("the model gave no `last_hidden_state`"))?;
        let (shape, data) = hidden.try_extract_tensor::<f32>()?;
        let dim = shape.get(2).copied().unwrap_or(0) as usize;
        let mut vectors = Vec::with_capacity(batch);
        for (row, seq) in sequences.iter().enumerate() {
            let mut pooled = vec![0f32; dim];
            for col in 0..seq.len() {
                let offset = (row * width + col) * dim;
                for (p, h) in pooled.iter_mut().zip(&data[offset..offset + dim]) {
                    *p += h;
                }
            }
            let count = seq.len().max(1) as f32;
            pooled.iter_mut().for_each(|p| *p /= count);
            normalise(&mut pooled);
            vectors.push(pooled);
        }
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.sequences.fetch_add(batch, Ordering::Relaxed);
        Ok(vectors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fewer_dimensions_are_renormalised() {
        let mut v = vec![0.6, 0.8, 0.0];
        truncate_dimensions(&mut v, 1);
        assert_eq!(v, [1.0]);
        let mut w = vec![0.6, 0.8];
        truncate_dimensions(&mut w, 5);
        assert_eq!(w, [0.6, 0.8]);
    }
}
