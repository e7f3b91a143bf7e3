//! The generation engine: one scheduler thread owns the model weights and every active
//! sequence (each with its own KV cache, a cheap clone of the weights). It admits
//! queued requests up to `max_active`, prefills each prompt in one forward pass, then
//! gives every active sequence one token per round, so a long generation never starves
//! the others (fair token-level scheduling). Sampling, stop strings, constraints and
//! incremental detokenisation happen per sequence; events stream back on a channel.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::ModelWeights;
use tokenizers::Tokenizer;
use tokio::sync::mpsc::UnboundedSender;

use super::chat::{is_chatml, render_chatml, ChatMessage};
use super::constraint::{byte_level_decode, Constraint, ConstraintFactory, ConstraintSpec};
use crate::asr::CancelToken;
use crate::error::ModelError;
use crate::pool::SubmitError;

/// Engine settings (CLI flags / env).
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Generations interleaved at once; more wait in the queue.
    pub max_active: usize,
    /// Requests that may wait before submissions get 429.
    pub queue_capacity: usize,
    /// Requests that ask for JSON and carry a JSON schema in their prompt are
    /// constrained to it (the server applies this; see `ember_protocol::prompt_schema`).
    pub prompt_schemas: bool,
    /// `tool_choice: auto` may be answered in text (the model chooses). When false,
    /// `auto` with tools calls one of them: SmolLM2-135M, left to choose, answered
    /// weather questions in prose with a weather tool on offer.
    pub auto_tool_text: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            max_active: 4,
            queue_capacity: 32,
            prompt_schemas: true,
            auto_tool_text: false,
        }
    }
}

/// How tokens are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub seed: u64,
}

/// Why a generation ended (OpenAI `finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
}

/// What a generation sends back, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    /// New text (may be empty while a multi-byte character or a possible stop string
    /// is held back) and the token's log-probability under the model.
    Delta {
        text: String,
        token: u32,
        logprob: f32,
    },
    Done {
        reason: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
    Error(String),
}

/// One generation to run.
pub struct GenerationRequest {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    pub constraint: Option<Constraint>,
    pub cancel: CancelToken,
    pub events: UnboundedSender<GenerationEvent>,
}

/// The chat model service.
pub struct LlmEngine {
    id: String,
    tokenizer: Arc<Tokenizer>,
    constraints: Arc<ConstraintFactory>,
    context_length: usize,
    sender: SyncSender<GenerationRequest>,
    config: LlmConfig,
}

impl LlmEngine {
    /// Loads the GGUF weights and the tokenizer, builds the constraint factory and
    /// starts the scheduler thread.
    pub fn load(
        id: &str,
        gguf: &Path,
        tokenizer: &Path,
        config: LlmConfig,
    ) -> Result<Self, ModelError> {
        let load_error = |detail: String| ModelError::Load {
            id: id.to_string(),
            path: gguf.display().to_string(),
            detail,
        };
        let mut reader = BufReader::new(File::open(gguf).map_err(|e| load_error(e.to_string()))?);
        let content =
            gguf_file::Content::read(&mut reader).map_err(|e| load_error(e.to_string()))?;
        let template = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if !is_chatml(&template) {
            return Err(load_error(
                "only ChatML chat templates are supported (`<|im_start|>` … `<|im_end|>`)".into(),
            ));
        }
        let context_length = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .unwrap_or(2048) as usize;
        let weights = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu)
            .map_err(|e| load_error(e.to_string()))?;
        let tokenizer = Tokenizer::from_file(tokenizer).map_err(|e| load_error(e.to_string()))?;
        let eos = tokenizer
            .token_to_id("<|im_end|>")
            .ok_or_else(|| load_error("the tokenizer has no `<|im_end|>`".into()))?;
        let vocab = tokenizer.get_vocab_size(true);
        let mut tokens = vec![Vec::new(); vocab];
        for (text, id) in tokenizer.get_vocab(true) {
            if let Some(slot) = tokens.get_mut(id as usize) {
                *slot = byte_level_decode(&text);
            }
        }
        let specials: Vec<u32> = tokenizer
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect();
        let constraints = ConstraintFactory::new(tokens, eos, &specials)
            .map_err(|e| load_error(e.to_string()))?;
        let tokenizer = Arc::new(tokenizer);
        let (sender, receiver) = mpsc::sync_channel(config.queue_capacity.max(1));
        let scheduler = Scheduler {
            weights,
            tokenizer: Arc::clone(&tokenizer),
            receiver,
            max_active: config.max_active.max(1),
            eos,
        };
        std::thread::Builder::new()
            .name("llm".to_string())
            .spawn(move || scheduler.run())
            .map_err(|e| load_error(format!("could not start the generator: {e}")))?;
        Ok(Self {
            id: id.to_string(),
            tokenizer,
            constraints: Arc::new(constraints),
            context_length,
            sender,
            config,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a JSON schema in the prompt may become the output constraint.
    pub fn prompt_schemas(&self) -> bool {
        self.config.prompt_schemas
    }

    /// Whether `tool_choice: auto` may be answered with text instead of a call.
    pub fn auto_tool_text(&self) -> bool {
        self.config.auto_tool_text
    }

    /// Tokens the model can attend to (prompt plus generated).
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The raw bytes of a token (for `logprobs`).
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        self.tokenizer
            .id_to_token(id)
            .map(|t| byte_level_decode(&t))
            .unwrap_or_default()
    }

    /// Token ids of a chat prompt.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, ModelError> {
        self.encode(&render_chatml(messages))
    }

    /// Token ids of raw text (special-token strings in it are read as special tokens).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Inference(format!("tokenizing: {e}")))
    }

    /// A compiled constraint; a bad schema or grammar is `Unsupported` (a 400).
    pub fn constraint(&self, spec: &ConstraintSpec) -> Result<Constraint, ModelError> {
        self.constraints
            .compile(spec)
            .map_err(|e| ModelError::Unsupported(e.to_string()))
    }

    /// Queues a generation after checking that it fits the context.
    pub fn submit(&self, request: GenerationRequest) -> Result<(), ModelError> {
        let needed = request.prompt.len() + request.max_tokens;
        if needed > self.context_length {
            return Err(ModelError::Unsupported(format!(
                "the prompt has {} tokens and `max_tokens` is {}: {needed} tokens exceed the \
                 model's context length of {}",
                request.prompt.len(),
                request.max_tokens,
                self.context_length
            )));
        }
        match self.sender.try_send(request) {
            Ok(()) => Ok(()),
            Err(e) => Err(ModelError::Overloaded(SubmitError::from_try_send(
                e,
                "generation",
                self.config.queue_capacity,
            ))),
        }
    }
}

/// One generation in progress.
struct Sequence {
    request: GenerationRequest,
    weights: ModelWeights,
    sampler: LogitsProcessor,
    /// Tokens generated so far.
    generated: Vec<u32>,
    /// The last token, to feed next; `None` before the prefill.
    next_input: Option<u32>,
    /// Position of `next_input` in the sequence.
    position: usize,
    /// Text already sent.
    sent: String,
    done: bool,
}

struct Scheduler {
    weights: ModelWeights,
    tokenizer: Arc<Tokenizer>,
    receiver: Receiver<GenerationRequest>,
    max_active: usize,
    eos: u32,
}

impl Scheduler {
    fn run(self) {
        // One thread for every tensor op of the generator, at the lowest priority: the
        // cores belong to ASR first, and one thread per generation beat two here
        // (DESIGN §3). `install` runs the loop on the pool's thread.
        let pool = match rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "llm-compute".to_string())
            .start_handler(|_| crate::pool::lower_thread_priority())
            .build()
        {
            Ok(pool) => pool,
            Err(e) => {
                tracing::error!(error = %e, "could not build the generator thread pool");
                return;
            }
        };
        pool.install(move || self.schedule());
    }

    fn schedule(&self) {
        let mut active: VecDeque<Sequence> = VecDeque::new();
        loop {
            while active.len() < self.max_active {
                let request = if active.is_empty() {
                    match self.receiver.recv() {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                } else {
                    match self.receiver.try_recv() {
                        Ok(r) => r,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                    }
                };
                active.push_back(self.start(request));
            }
            // One token for each active sequence per round.
            for _ in 0..active.len() {
                crate::pool::yield_to_live_audio();
                let Some(mut sequence) = active.pop_front() else {
                    break;
                };
                self.step(&mut sequence);
                if !sequence.done {
                    active.push_back(sequence);
                }
            }
        }
    }

    fn start(&self, request: GenerationRequest) -> Sequence {
        let mut weights = self.weights.clone();
        weights.clear_kv_cache();
        let p = request.sampling;
        let sampling = if p.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match (p.top_k, p.top_p) {
                (Some(k), Some(top_p)) => Sampling::TopKThenTopP {
                    k,
                    p: top_p,
                    temperature: p.temperature,
                },
                (Some(k), None) => Sampling::TopK {
                    k,
                    temperature: p.temperature,
                },
                (None, Some(top_p)) => Sampling::TopP {
                    p: top_p,
                    temperature: p.temperature,
                },
                (None, None) => Sampling::All {
                    temperature: p.temperature,
                },
            }
        };
        Sequence {
            sampler: LogitsProcessor::from_sampling(p.seed, sampling),
            request,
            weights,
            generated: Vec::new(),
            next_input: None,
            position: 0,
            sent: String::new(),
            done: false,
        }
    }

    /// Runs one forward pass (the whole prompt the first time), samples one token and
    /// reports it.
    fn step(&self, seq: &mut Sequence) {
        if seq.request.cancel.is_cancelled() || seq.request.events.is_closed() {
            seq.done = true;
            return;
        }
        let started = Instant::now();
        let (input, position) = match seq.next_input {
            None => (seq.request.prompt.clone(), 0),
            Some(token) => (vec![token], seq.position),
        };
        let logits = match forward(&mut seq.weights, &input, position) {
            Ok(l) => l,
            Err(e) => return self.fail(seq, &e),
        };
        seq.position = position + input.len();
        let token = match sample(seq, logits) {
            Ok(t) => t,
            Err(e) => return self.fail(seq, &e),
        };
        tracing::trace!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "generation step"
        );
        self.accept(seq, token.0, token.1);
    }

    fn accept(&self, seq: &mut Sequence, token: u32, logprob: f32) {
        let constraint_done = match seq.request.constraint.as_mut() {
            Some(c) => match c.commit(token) {
                Ok(()) => c.is_finished(),
                Err(e) => return self.fail(seq, &e.to_string()),
            },
            None => false,
        };
        if token == self.eos {
            return self.finish(seq, FinishReason::Stop, token, logprob);
        }
        seq.generated.push(token);
        seq.next_input = Some(token);
        let text = self
            .tokenizer
            .decode(&seq.generated, true)
            .unwrap_or_default();
        if let Some(cut) = first_stop(&text, &seq.request.stop) {
            let delta = text[..cut]
                .get(seq.sent.len()..)
                .unwrap_or_default()
                .to_string();
            seq.sent = text[..cut].to_string();
            let _ = seq.request.events.send(GenerationEvent::Delta {
                text: delta,
                token,
                logprob,
            });
            return self.done(seq, FinishReason::Stop);
        }
        // Hold back a trailing partial character and any tail that could start a stop.
        let safe = safe_prefix_len(&text, &seq.request.stop);
        let delta = text[..safe]
            .get(seq.sent.len()..)
            .unwrap_or_default()
            .to_string();
        if safe > seq.sent.len() {
            seq.sent = text[..safe].to_string();
        }
        let _ = seq.request.events.send(GenerationEvent::Delta {
            text: delta,
            token,
            logprob,
        });
        if constraint_done {
            return self.flush_and_done(seq, &text, FinishReason::Stop);
        }
        if seq.generated.len() >= seq.request.max_tokens {
            self.flush_and_done(seq, &text, FinishReason::Length);
        }
    }

    /// The end-of-turn token: no text of its own.
    fn finish(&self, seq: &mut Sequence, reason: FinishReason, token: u32, logprob: f32) {
        let text = self
            .tokenizer
            .decode(&seq.generated, true)
            .unwrap_or_default();
        let delta = text.get(seq.sent.len()..).unwrap_or_default().to_string();
        let _ = seq.request.events.send(GenerationEvent::Delta {
            text: delta,
            token,
            logprob,
        });
        self.done(seq, reason);
    }

    fn flush_and_done(&self, seq: &mut Sequence, text: &str, reason: FinishReason) {
        if let Some(rest) = text.get(seq.sent.len()..).filter(|r| !r.is_empty()) {
            let _ = seq.request.events.send(GenerationEvent::Delta {
                text: rest.to_string(),
                token: *seq.generated.last().unwrap_or(&0),
                logprob: 0.0,
            });
        }
        self.done(seq, reason);
    }

    fn done(&self, seq: &mut Sequence, reason: FinishReason) {
        let _ = seq.request.events.send(GenerationEvent::Done {
            reason,
            prompt_tokens: seq.request.prompt.len(),
            completion_tokens: seq.generated.len(),
        });
        seq.done = true;
    }

    fn fail(&self, seq: &mut Sequence, error: &str) {
        let _ = seq.request.events.send(GenerationEvent::Error(format!(
            "generation failed: {error}"
        )));
        seq.done = true;
    }
}

fn forward(weights: &mut ModelWeights, input: &[u32], position: usize) -> Result<Vec<f32>, String> {
    let tensor = Tensor::new(input, &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .map_err(|e| e.to_string())?;
    weights
        .forward(&tensor, position)
        .and_then(|l| l.squeeze(0))
        .and_then(|l| l.to_dtype(candle_core::DType::F32))
        .and_then(|l| l.to_vec1::<f32>())
        .map_err(|e| e.to_string())
}

/// The next token and its log-probability under the unconstrained distribution.
fn sample(seq: &mut Sequence, mut logits: Vec<f32>) -> Result<(u32, f32), String> {
    let log_norm = log_sum_exp(&logits);
    // The unmasked logits, kept only when a mask will change them.
    let mut raw = None;
    if let Some(constraint) = seq.request.constraint.as_mut() {
        raw = Some(logits.clone());
        constraint
            .mask_logits(&mut logits)
            .map_err(|e| e.to_string())?;
    }
    let tensor = Tensor::new(logits.as_slice(), &Device::Cpu).map_err(|e| e.to_string())?;
    let token = seq.sampler.sample(&tensor).map_err(|e| e.to_string())?;
    let logprob = raw
        .as_ref()
        .unwrap_or(&logits)
        .get(token as usize)
        .map_or(f32::NEG_INFINITY, |l| l - log_norm);
    Ok((token, logprob))
}

fn log_sum_exp(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + values.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

/// Byte offset of the earliest stop string in `text`.
fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

/// How much of `text` can be sent now: not a trailing replacement character (a
/// multi-byte character split across tokens) and not a tail that may grow into a stop
/// string.
fn safe_prefix_len(text: &str, stops: &[String]) -> usize {
    let mut end = text.len();
    if text.ends_with('\u{FFFD}') {
        end -= '\u{FFFD}'.len_utf8();
    }
    for stop in stops.iter().filter(|s| !s.is_empty()) {
        for (start, _) in text[..end].char_indices().rev().take(stop.chars().count()) {
            if stop.starts_with(&text[start..end]) {
                end = start;
            }
        }
    }
    end
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stops_cut_text_and_possible_stops_are_held_back() {
        let stops = vec!["END".to_string()];
        assert_eq!(first_stop("abc END x", &stops), Some(4));
        assert_eq!(safe_prefix_len("abc EN", &stops), 4);
        assert_eq!(safe_prefix_len("abc E", &stops), 4);
        assert_eq!(safe_prefix_len("abc x", &stops), 5);
        assert_eq!(safe_prefix_len("ab\u{FFFD}", &[]), 2);
    }
}
