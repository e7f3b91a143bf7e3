//! `POST /v1/chat/completions` and `/v1/completions` (OpenAI/Fireworks-compatible).
//! Thin: check the request, build the prompt and the output constraint, start one
//! generation per choice on the LLM engine, then answer with JSON or SSE chunks ending
//! in `data: [DONE]`.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ember_models::llm::chat::{tools_prompt, ChatMessage};
use ember_models::llm::constraint::{Constraint, ConstraintSpec};
use ember_models::llm::{
    FinishReason, GenerationEvent, GenerationRequest, LlmEngine, SamplingParams,
};
use ember_models::CancelToken;
use ember_protocol::chat::{close_objects, ChatBody, ChatRequest, OutputFormat, Usage};
use ember_protocol::prompt_schema;
use ember_protocol::tool_stream::{Piece, ToolCallStream};
use ember_protocol::ErrorCode;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::error::ApiError;
use crate::json::JsonBody;
use crate::pipeline::CancelOnDrop;
use crate::state::AppState;

/// Generated tokens when the client sets no `max_tokens` (chat); the context still
/// bounds it. `/v1/completions` keeps OpenAI's default of 16.
const DEFAULT_CHAT_MAX_TOKENS: usize = 1024;
const DEFAULT_COMPLETION_MAX_TOKENS: usize = 16;

/// Which endpoint is answering (the shapes differ).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Completion,
}

pub async fn chat_completions(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ChatBody>,
) -> Result<Response, ApiError> {
    let request = ChatRequest::chat(body)?;
    respond(&state, request, Endpoint::Chat).await
}

pub async fn completions(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ChatBody>,
) -> Result<Response, ApiError> {
    let request = ChatRequest::completion(body)?;
    respond(&state, request, Endpoint::Completion).await
}

fn engine(state: &AppState) -> Result<&LlmEngine, ApiError> {
    state.models()?.llm.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "no chat model is installed; run `ember models install`",
        )
    })
}

async fn respond(
    state: &AppState,
    request: ChatRequest,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let llm = engine(state)?;
    let mut output = output_constraint(llm, &request)?;
    let prompt = prompt_tokens(llm, &request, &output.format)?;
    let max_tokens = request.max_tokens.unwrap_or(match endpoint {
        Endpoint::Chat => DEFAULT_CHAT_MAX_TOKENS
            .min(llm.context_length().saturating_sub(prompt.len()))
            .max(1),
        Endpoint::Completion => DEFAULT_COMPLETION_MAX_TOKENS,
    });
    let seed = request.seed.unwrap_or_else(random_seed);
    let cancel = CancelToken::default();
    let mut receivers = Vec::with_capacity(request.n);
    for choice in 0..request.n {
        let constraint = output.next_constraint(llm)?;
        let (events, receiver) = unbounded_channel();
        llm.submit(GenerationRequest {
            prompt: prompt.clone(),
            max_tokens,
            sampling: SamplingParams {
                temperature: request.temperature,
                top_p: request.top_p,
                top_k: request.top_k,
                seed: seed.wrapping_add(choice as u64),
            },
            stop: request.stop.clone(),
            constraint,
            cancel: cancel.clone(),
            events,
        })?;
        receivers.push(receiver);
    }
    let meta = Meta {
        id: format!(
            "{}-{}",
            if endpoint == Endpoint::Chat {
                "chatcmpl"
            } else {
                "cmpl"
            },
            uuid::Uuid::new_v4().simple()
        ),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: request
            .model
            .clone()
            .unwrap_or_else(|| llm.id().to_string()),
        endpoint,
        calls: match output.format {
            OutputFormat::ToolCall(_) => Calls::Required,
            OutputFormat::ToolCallOrText(_) => Calls::Optional,
            _ => Calls::None,
        },
        logprobs: request.logprobs,
        prompt_tokens: prompt.len(),
    };
    if request.stream {
        return Ok(stream(state.clone(), meta, receivers, cancel));
    }
    let _guard = CancelOnDrop(cancel);
    let mut choices = Vec::with_capacity(receivers.len());
    let mut completion_tokens = 0;
    for (index, receiver) in receivers.into_iter().enumerate() {
        let outcome = collect(receiver).await?;
        completion_tokens += outcome.completion_tokens;
        choices.push(meta.choice(llm, index, &outcome));
    }
    Ok(Json(json!({
        "id": meta.id,
        "object": meta.object(false),
        "created": meta.created,
        "model": meta.model,
        "choices": choices,
        "usage": usage(meta.prompt_tokens, completion_tokens),
    }))
    .into_response())
}

fn usage(prompt_tokens: usize, completion_tokens: usize) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

fn random_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The prompt: ChatML messages (with the tool instructions as a system message), or the
/// raw completion prompt.
fn prompt_tokens(
    llm: &LlmEngine,
    request: &ChatRequest,
    format: &OutputFormat,
) -> Result<Vec<u32>, ApiError> {
    if let Some(prompt) = &request.prompt {
        return Ok(llm.encode(prompt)?);
    }
    let mut messages: Vec<ChatMessage> = request
        .messages
        .iter()
        .map(|m| ChatMessage {
            role: m.role.clone(),
            content: m.content.clone(),
        })
        .collect();
    if let Some(functions) = format.functions() {
        let described: Vec<(String, String, Value)> = functions
            .iter()
            .map(|f| (f.name.clone(), f.description.clone(), f.parameters.clone()))
            .collect();
        let text_allowed = matches!(format, OutputFormat::ToolCallOrText(_));
        messages.insert(
            0,
            ChatMessage {
                role: "system".into(),
                content: tools_prompt(&described, text_allowed),
            },
        );
    }
    Ok(llm.chat_prompt(&messages)?)
}

/// The output format, its constraint spec, and that spec compiled once before anything
/// is submitted (a bad schema or grammar is a 400 then); the first choice uses that
/// compilation, further choices compile their own.
struct Output {
    format: OutputFormat,
    spec: Option<ConstraintSpec>,
    compiled: Option<Constraint>,
}

impl Output {
    /// A fresh constraint for the next choice (`None` when output is free).
    fn next_constraint(&mut self, llm: &LlmEngine) -> Result<Option<Constraint>, ApiError> {
        if let Some(compiled) = self.compiled.take() {
            return Ok(Some(compiled));
        }
        Ok(self.spec.as_ref().map(|s| llm.constraint(s)).transpose()?)
    }
}

/// The output format and its constraint: the request's, or a schema its prompt asks
/// for (see [`prompt_schema`]). A schema taken from the prompt that does not compile is
/// dropped with a log line: the client never sent it as a constraint. `auto` tool
/// choice becomes a required call unless the server lets the model answer in text.
fn output_constraint(llm: &LlmEngine, request: &ChatRequest) -> Result<Output, ApiError> {
    let format = match &request.format {
        OutputFormat::ToolCallOrText(functions) if !llm.auto_tool_text() => {
            OutputFormat::ToolCall(functions.clone())
        }
        other => other.clone(),
    };
    if llm.prompt_schemas() {
        let refined = prompt_schema::refine(format.clone(), &request.messages);
        if refined != format {
            let spec = constraint_spec(&refined)?;
            match spec.as_ref().map(|s| llm.constraint(s)).transpose() {
                Ok(compiled) => {
                    tracing::debug!("output constrained to the JSON schema in the prompt");
                    return Ok(Output {
                        format: refined,
                        spec,
                        compiled,
                    });
                }
                Err(e) => tracing::info!(error = %e, "the JSON schema in the prompt was not used"),
            }
        }
    }
    let spec = constraint_spec(&format)?;
    let compiled = spec.as_ref().map(|s| llm.constraint(s)).transpose()?;
    Ok(Output {
        format,
        spec,
        compiled,
    })
}

fn constraint_spec(format: &OutputFormat) -> Result<Option<ConstraintSpec>, ApiError> {
    Ok(match format {
        OutputFormat::Text => None,
        OutputFormat::JsonObject => Some(ConstraintSpec::JsonObject),
        OutputFormat::JsonSchema(schema) => Some(ConstraintSpec::JsonSchema(schema.clone())),
        OutputFormat::Grammar(gbnf) => {
            let lark = ember_models::llm::gbnf::gbnf_to_lark(gbnf).map_err(|e| {
                ApiError::invalid_param("response_format", format!("invalid GBNF grammar: {e}"))
            })?;
            Some(ConstraintSpec::Lark(lark))
        }
        OutputFormat::FencedJson(schema) => Some(ConstraintSpec::FencedJson(schema.clone())),
        OutputFormat::ToolCall(functions) | OutputFormat::ToolCallOrText(functions) => {
            Some(ConstraintSpec::Tools {
                functions: functions
                    .iter()
                    .map(|f| {
                        let mut parameters = f.parameters.clone();
                        close_objects(&mut parameters);
                        (f.name.clone(), parameters)
                    })
                    .collect(),
                text_allowed: matches!(format, OutputFormat::ToolCallOrText(_)),
            })
        }
    })
}

/// One finished choice.
struct Outcome {
    text: String,
    tokens: Vec<(u32, f32)>,
    reason: FinishReason,
    completion_tokens: usize,
}

async fn collect(mut receiver: UnboundedReceiver<GenerationEvent>) -> Result<Outcome, ApiError> {
    let mut outcome = Outcome {
        text: String::new(),
        tokens: Vec::new(),
        reason: FinishReason::Stop,
        completion_tokens: 0,
    };
    while let Some(event) = receiver.recv().await {
        match event {
            GenerationEvent::Delta {
                text,
                token,
                logprob,
            } => {
                outcome.text.push_str(&text);
                outcome.tokens.push((token, logprob));
            }
            GenerationEvent::Done {
                reason,
                completion_tokens,
                ..
            } => {
                outcome.reason = reason;
                outcome.completion_tokens = completion_tokens;
                return Ok(outcome);
            }
            GenerationEvent::Error(e) => return Err(ApiError::internal(e)),
        }
    }
    Err(ApiError::internal("the generator stopped unexpectedly"))
}

/// Whether the answer is a tool call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Calls {
    /// No tools (or `tool_choice: none`).
    None,
    /// `required` or a named function: the answer is a call.
    Required,
    /// `auto`: a call or text, as the model chooses.
    Optional,
}

/// What every response and chunk repeats.
struct Meta {
    id: String,
    created: u64,
    model: String,
    endpoint: Endpoint,
    calls: Calls,
    logprobs: bool,
    prompt_tokens: usize,
}

impl Meta {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completion, _) => "text_completion",
        }
    }

    /// `is_call`: this choice's answer is a (complete) tool call.
    fn finish_reason(reason: FinishReason, is_call: bool) -> &'static str {
        match reason {
            FinishReason::Length => "length",
            FinishReason::Stop if is_call => "tool_calls",
            FinishReason::Stop => "stop",
        }
    }

    fn choice(&self, llm: &LlmEngine, index: usize, outcome: &Outcome) -> Value {
        let logprobs = self.logprobs.then(|| logprobs_json(llm, &outcome.tokens));
        let finish_reason = Self::finish_reason(outcome.reason, false);
        let call = (self.calls != Calls::None && outcome.reason == FinishReason::Stop)
            .then(|| tool_call(&outcome.text))
            .flatten();
        match (self.endpoint, call) {
            (Endpoint::Completion, _) => json!({
                "index": index, "text": outcome.text, "finish_reason": finish_reason,
                "logprobs": logprobs,
            }),
            (Endpoint::Chat, Some(call)) => json!({
                "index": index,
                "message": {"role": "assistant", "content": null, "tool_calls": [call]},
                "finish_reason": "tool_calls", "logprobs": logprobs,
            }),
            (Endpoint::Chat, None) => json!({
                "index": index,
                "message": {"role": "assistant", "content": outcome.text},
                "finish_reason": finish_reason,
                "logprobs": logprobs,
            }),
        }
    }
}

/// `{"name": …, "arguments": {…}}` as an OpenAI tool call (arguments as a JSON string).
fn tool_call(text: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(text).ok()?;
    let name = value["name"].as_str()?;
    Some(json!({
        "id": call_id(),
        "type": "function",
        "function": {"name": name, "arguments": value["arguments"].to_string()},
    }))
}

fn call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

fn logprobs_json(llm: &LlmEngine, tokens: &[(u32, f32)]) -> Value {
    let content: Vec<Value> = tokens
        .iter()
        .map(|&(id, logprob)| {
            let bytes = llm.token_bytes(id);
            json!({
                "token": String::from_utf8_lossy(&bytes),
                "logprob": logprob,
                "bytes": bytes,
                "top_logprobs": [],
            })
        })
        .collect();
    json!({ "content": content })
}

/// SSE: one chunk per text delta (a tool call as its name, then pieces of its
/// arguments), a final chunk with the finish reason and usage, then `[DONE]`.
fn stream(
    state: AppState,
    meta: Meta,
    receivers: Vec<UnboundedReceiver<GenerationEvent>>,
    cancel: CancelToken,
) -> Response {
    let (sender, output) = unbounded_channel::<String>();
    tokio::spawn(async move {
        let _guard = CancelOnDrop(cancel);
        let Ok(llm) = engine(&state) else { return };
        let indexed = receivers
            .into_iter()
            .enumerate()
            .map(|(i, r)| UnboundedReceiverStream::new(r).map(move |e| (i, e)));
        let mut events = futures_util::stream::select_all(indexed);
        let mut calls: Vec<Option<ToolCallStream>> = (0..events.len())
            .map(|_| {
                (meta.endpoint == Endpoint::Chat && meta.calls != Calls::None)
                    .then(|| ToolCallStream::new(meta.calls == Calls::Optional))
            })
            .collect();
        let mut completion_tokens = 0;
        let mut open = calls.len();
        let frame = |value: Value| format!("data: {value}\n\n");
        while let Some((index, event)) = events.next().await {
            let chunks = match event {
                GenerationEvent::Delta {
                    text,
                    token,
                    logprob,
                } => match &mut calls[index] {
                    Some(call) => call
                        .push(&text)
                        .into_iter()
                        .map(|piece| meta.piece_chunk(index, piece))
                        .collect(),
                    None if text.is_empty() => Vec::new(),
                    None => {
                        let logprobs = meta
                            .logprobs
                            .then(|| logprobs_json(llm, &[(token, logprob)]));
                        vec![meta.delta_chunk(index, json!({"content": text}), &text, logprobs)]
                    }
                },
                GenerationEvent::Done {
                    reason,
                    completion_tokens: n,
                    ..
                } => {
                    completion_tokens += n;
                    open -= 1;
                    let (mut chunks, is_call) = match &mut calls[index] {
                        Some(call) => (
                            call.finish()
                                .into_iter()
                                .map(|piece| meta.piece_chunk(index, piece))
                                .collect(),
                            call.is_call(),
                        ),
                        None => (Vec::new(), false),
                    };
                    let mut finish = meta.finish_chunk(index, Meta::finish_reason(reason, is_call));
                    if open == 0 {
                        finish["usage"] = json!(usage(meta.prompt_tokens, completion_tokens));
                    }
                    chunks.push(finish);
                    chunks
                }
                GenerationEvent::Error(e) => {
                    let _ = sender.send(frame(
                        json!({"error": {"message": e, "type": "server_error"}}),
                    ));
                    return;
                }
            };
            for chunk in chunks {
                if sender.send(frame(chunk)).is_err() {
                    return;
                }
            }
        }
        let _ = sender.send("data: [DONE]\n\n".to_string());
    });
    let body = UnboundedReceiverStream::new(output).map(Ok::<_, Infallible>);
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

impl Meta {
    fn chunk(&self, choice: Value) -> Value {
        json!({
            "id": self.id, "object": self.object(true), "created": self.created,
            "model": self.model, "choices": [choice],
        })
    }

    fn delta_chunk(
        &self,
        index: usize,
        delta: Value,
        text: &str,
        logprobs: Option<Value>,
    ) -> Value {
        self.chunk(match self.endpoint {
            Endpoint::Chat => {
                json!({"index": index, "delta": delta, "finish_reason": null, "logprobs": logprobs})
            }
            Endpoint::Completion => {
                json!({"index": index, "text": text, "finish_reason": null, "logprobs": logprobs})
            }
        })
    }

    /// A piece of a tool-call answer as a chat delta.
    fn piece_chunk(&self, index: usize, piece: Piece) -> Value {
        let delta = match piece {
            Piece::Text(text) => json!({"content": text}),
            Piece::CallStart(name) => json!({
                "role": "assistant",
                "tool_calls": [{"index": 0, "id": call_id(), "type": "function",
                                "function": {"name": name, "arguments": ""}}],
            }),
            Piece::Arguments(arguments) => {
                json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]})
            }
        };
        self.delta_chunk(index, delta, "", None)
    }

    fn finish_chunk(&self, index: usize, reason: &str) -> Value {
        self.chunk(match self.endpoint {
            Endpoint::Chat => json!({"index": index, "delta": {}, "finish_reason": reason}),
            Endpoint::Completion => json!({"index": index, "text": "", "finish_reason": reason}),
        })
    }
}
