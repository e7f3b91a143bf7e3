//! Text generation: SmolLM2-135M-Instruct (GGUF, candle's quantized llama) with ChatML
//! prompts, seeded sampling, stop strings, token-level round-robin scheduling of
//! concurrent generations, and constrained decoding through `llguidance`.

pub mod chat;
pub mod constraint;
pub mod convert;
pub mod engine;
pub mod gbnf;

pub use engine::{
    FinishReason, GenerationEvent, GenerationRequest, LlmConfig, LlmEngine, SamplingParams,
};

/// Manifest ids of the shipped chat model and its tokenizer (see `packages::MODELS`).
pub const SMOLLM2_ID: &str = "smollm2-135m-instruct";
pub const SMOLLM2_TOKENIZER_ID: &str = "smollm2-135m-instruct-tokenizer";
