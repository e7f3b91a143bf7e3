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
use ember_models::llm::constraint::ConstraintSpec;
use ember_models::llm::{
    FinishReason, GenerationEvent, GenerationRequest, LlmEngine, SamplingParams,
};
use ember_models::CancelToken;
use ember_protocol::chat::{ChatBody, ChatRequest, OutputFormat, Usage};
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
    let prompt = prompt_tokens(llm, &request)?;
    let max_tokens = request.max_tokens.unwrap_or(match endpoint {
        Endpoint::Chat => DEFAULT_CHAT_MAX_TOKENS
            .min(llm.context_length().saturating_sub(prompt.len()))
            .max(1),
        Endpoint::Completion => DEFAULT_COMPLETION_MAX_TOKENS,
    });
    let spec = constraint_spec(&request.format)?;
    let seed = request.seed.unwrap_or_else(random_seed);
    let cancel = CancelToken::default();
    let mut receivers = Vec::with_capacity(request.n);
    for choice in 0..request.n {
        let constraint = spec.as_ref().map(|s| llm.constraint(s)).transpose()?;
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
        tool_call: matches!(request.format, OutputFormat::ToolCall(_)),
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
fn prompt_tokens(llm: &LlmEngine, request: &ChatRequest) -> Result<Vec<u32>, ApiError> {
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
    if let OutputFormat::ToolCall(functions) = &request.format {
        let described: Vec<(String, String, Value)> = functions
            .iter()
            .map(|f| (f.name.clone(), f.description.clone(), f.parameters.clone()))
            .collect();
        messages.insert(
            0,
            ChatMessage {
                role: "system".into(),
                content: tools_prompt(&described),
            },
        );
    }
    Ok(llm.chat_prompt(&messages)?)
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
        OutputFormat::ToolCall(functions) => Some(ConstraintSpec::Tools {
            functions: functions
                .iter()
                .map(|f| {
                    let mut parameters = f.parameters.clone();
                    close_objects(&mut parameters);
                    (f.name.clone(), parameters)
                })
                .collect(),
        }),
    })
}

/// Tool arguments may hold only the declared properties: objects with `properties`
/// and no `additionalProperties` get `false`. A function cannot use undeclared
/// arguments, and a small model otherwise pads calls with invented keys until
/// `max_tokens` (seen with SmolLM2-135M).
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
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

/// What every response and chunk repeats.
struct Meta {
    id: String,
    created: u64,
    model: String,
    endpoint: Endpoint,
    tool_call: bool,
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

    fn finish_reason(&self, reason: FinishReason) -> &'static str {
        match reason {
            FinishReason::Length => "length",
            FinishReason::Stop if self.tool_call => "tool_calls",
            FinishReason::Stop => "stop",
        }
    }

    fn choice(&self, llm: &LlmEngine, index: usize, outcome: &Outcome) -> Value {
        let logprobs = self.logprobs.then(|| logprobs_json(llm, &outcome.tokens));
        let finish_reason = self.finish_reason(outcome.reason);
        match self.endpoint {
            Endpoint::Completion => json!({
                "index": index, "text": outcome.text, "finish_reason": finish_reason,
                "logprobs": logprobs,
            }),
            Endpoint::Chat => match self.tool_call.then(|| tool_call(&outcome.text)).flatten() {
                Some(call) if outcome.reason == FinishReason::Stop => json!({
                    "index": index,
                    "message": {"role": "assistant", "content": null, "tool_calls": [call]},
                    "finish_reason": "tool_calls", "logprobs": logprobs,
                }),
                _ => json!({
                    "index": index,
                    "message": {"role": "assistant", "content": outcome.text},
                    "finish_reason": if self.tool_call { "length" } else { finish_reason },
                    "logprobs": logprobs,
                }),
            },
        }
    }
}

/// `{"name": …, "arguments": {…}}` as an OpenAI tool call (arguments as a JSON string).
fn tool_call(text: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(text).ok()?;
    let name = value["name"].as_str()?;
    Some(json!({
        "id": format!("call_{}", uuid::Uuid::new_v4().simple()),
        "type": "function",
        "function": {"name": name, "arguments": value["arguments"].to_string()},
    }))
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

/// SSE: one chunk per text delta (tool calls in one chunk when complete), a final
/// chunk with the finish reason and usage, then `[DONE]`.
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
        let mut texts = vec![String::new(); events.len()];
        let mut completion_tokens = 0;
        let mut open = texts.len();
        let frame = |value: Value| format!("data: {value}\n\n");
        while let Some((index, event)) = events.next().await {
            let chunk = match event {
                GenerationEvent::Delta {
                    text,
                    token,
                    logprob,
                } => {
                    if meta.tool_call || text.is_empty() {
                        texts[index].push_str(&text);
                        continue;
                    }
                    texts[index].push_str(&text);
                    let logprobs = meta
                        .logprobs
                        .then(|| logprobs_json(llm, &[(token, logprob)]));
                    meta.delta_chunk(index, json!({"content": text}), &text, logprobs)
                }
                GenerationEvent::Done {
                    reason,
                    completion_tokens: n,
                    ..
                } => {
                    completion_tokens += n;
                    open -= 1;
                    let mut finish = meta.finish_chunk(index, reason);
                    if meta.tool_call {
                        // The whole call once it parses; otherwise (cut by `max_tokens`)
                        // the text, as the non-streamed answer gives it.
                        let delta = match tool_call(&texts[index]) {
                            Some(mut call) => {
                                call["index"] = json!(0);
                                json!({"role": "assistant", "tool_calls": [call]})
                            }
                            None => json!({"role": "assistant", "content": texts[index]}),
                        };
                        let first = meta.delta_chunk(index, delta, &texts[index], None);
                        if sender.send(frame(first)).is_err() {
                            return;
                        }
                    }
                    if open == 0 {
                        finish["usage"] = json!(usage(meta.prompt_tokens, completion_tokens));
                    }
                    finish
                }
                GenerationEvent::Error(e) => {
                    let _ = sender.send(frame(
                        json!({"error": {"message": e, "type": "server_error"}}),
                    ));
                    return;
                }
            };
            if sender.send(frame(chunk)).is_err() {
                return;
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

    fn finish_chunk(&self, index: usize, reason: FinishReason) -> Value {
        let reason = self.finish_reason(reason);
        self.chunk(match self.endpoint {
            Endpoint::Chat => json!({"index": index, "delta": {}, "finish_reason": reason}),
            Endpoint::Completion => json!({"index": index, "text": "", "finish_reason": reason}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_argument_objects_are_closed_unless_the_schema_says_otherwise() {
        let mut schema = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "c": {"type": "object", "properties": {}, "additionalProperties": true}}});
        close_objects(&mut schema);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["a"]["additionalProperties"], false);
        assert_eq!(schema["properties"]["c"]["additionalProperties"], true);
    }
}
