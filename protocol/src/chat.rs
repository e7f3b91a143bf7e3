//! `POST /v1/chat/completions` and `/v1/completions` (OpenAI/Fireworks-compatible): the
//! request as sent, its checked form, and the response and stream-chunk bodies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldError;

/// Most choices one request may ask for.
pub const MAX_CHOICES: usize = 8;
/// Most stop strings (OpenAI's limit).
pub const MAX_STOPS: usize = 4;

/// A chat request body as sent (unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct ChatBody {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub messages: Option<Vec<Value>>,
    /// `/v1/completions` only.
    #[serde(default)]
    pub prompt: Option<Value>,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub stop: Option<Value>,
    #[serde(default)]
    pub n: Option<i64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub logprobs: Option<Value>,
    #[serde(default)]
    pub response_format: Option<Value>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
}

/// A message after flattening: text content, and tool calls of earlier assistant turns
/// rendered as the JSON the model would have produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// How output is constrained.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    Text,
    JsonObject,
    JsonSchema(Value),
    /// llama.cpp GBNF (Fireworks grammar mode).
    Grammar(String),
    /// One call of one of these functions (`tool_choice` `required` or a named one).
    ToolCall(Vec<Function>),
    /// One call of one of these functions, or a text answer (`tool_choice` `auto`, the
    /// default when `tools` are given).
    ToolCallOrText(Vec<Function>),
    /// A fenced ```json block holding JSON valid against the schema (see
    /// [`crate::prompt_schema`]; never sent by a client as such).
    FencedJson(Value),
}

impl OutputFormat {
    /// The functions the model may call, if any.
    pub fn functions(&self) -> Option<&[Function]> {
        match self {
            OutputFormat::ToolCall(f) | OutputFormat::ToolCallOrText(f) => Some(f),
            _ => None,
        }
    }
}

/// A checked chat or completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: Option<String>,
    /// Chat messages; empty for `/v1/completions`.
    pub messages: Vec<Message>,
    /// The raw prompt of `/v1/completions`.
    pub prompt: Option<String>,
    pub max_tokens: Option<usize>,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub n: usize,
    pub stream: bool,
    pub logprobs: bool,
    pub format: OutputFormat,
}

fn field(param: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(param, message)
}

impl ChatRequest {
    /// Checks a `/v1/chat/completions` body.
    pub fn chat(body: ChatBody) -> Result<Self, FieldError> {
        let raw = body
            .messages
            .as_ref()
            .ok_or_else(|| field("messages", "`messages` is required"))?;
        if raw.is_empty() {
            return Err(field(
                "messages",
                "`messages` must hold at least one message",
            ));
        }
        let messages = raw
            .iter()
            .enumerate()
            .map(|(i, m)| message(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let mut request = Self::common(&body)?;
        request.messages = messages;
        request.format = output_format(&body)?;
        Ok(request)
    }

    /// Checks a `/v1/completions` body (`prompt` a string or a one-string array).
    pub fn completion(body: ChatBody) -> Result<Self, FieldError> {
        let prompt = match &body.prompt {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
                items[0].as_str().unwrap_or_default().to_string()
            }
            Some(_) => {
                return Err(field(
                    "prompt",
                    "`prompt` must be a string (or an array holding one string)",
                ))
            }
            None => return Err(field("prompt", "`prompt` is required")),
        };
        let mut request = Self::common(&body)?;
        request.prompt = Some(prompt);
        request.format = output_format(&body)?;
        Ok(request)
    }

    fn common(body: &ChatBody) -> Result<Self, FieldError> {
        let max_tokens = match body.max_completion_tokens.or(body.max_tokens) {
            None => None,
            Some(m) if m >= 1 => Some(m as usize),
            Some(m) => {
                return Err(field(
                    "max_tokens",
                    format!("`max_tokens` must be at least 1, got {m}"),
                ))
            }
        };
        let temperature = body.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(field(
                "temperature",
                format!("`temperature` must be between 0 and 2, got {temperature}"),
            ));
        }
        if let Some(p) = body.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(field(
                "top_p",
                format!("`top_p` must be in (0, 1], got {p}"),
            ));
        }
        let top_k = match body.top_k {
            None | Some(0) => None,
            Some(k) if k > 0 => Some(k as usize),
            Some(k) => return Err(field("top_k", format!("`top_k` must be positive, got {k}"))),
        };
        let n = match body.n.unwrap_or(1) {
            n if (1..=MAX_CHOICES as i64).contains(&n) => n as usize,
            n => {
                return Err(field(
                    "n",
                    format!("`n` must be between 1 and {MAX_CHOICES}, got {n}"),
                ))
            }
        };
        let stop = match &body.stop {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect(),
            Some(_) => {
                return Err(field(
                    "stop",
                    "`stop` must be a string or an array of strings",
                ))
            }
        };
        if stop.len() > MAX_STOPS {
            return Err(field(
                "stop",
                format!(
                    "`stop` has {} strings; at most {MAX_STOPS} are allowed",
                    stop.len()
                ),
            ));
        }
        let logprobs = match &body.logprobs {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            // `/v1/completions` sends an integer (top logprobs): any value asks for them.
            Some(Value::Number(_)) => true,
            Some(_) => return Err(field("logprobs", "`logprobs` must be a boolean")),
        };
        Ok(Self {
            model: body.model.clone(),
            messages: Vec::new(),
            prompt: None,
            max_tokens,
            temperature,
            top_p: body.top_p,
            top_k,
            seed: body.seed,
            stop,
            n,
            stream: body.stream.unwrap_or(false),
            logprobs,
            format: OutputFormat::Text,
        })
    }
}

/// A wire message: `content` as a string or text parts; assistant `tool_calls` become
/// the JSON the model would have written.
fn message(index: usize, value: &Value) -> Result<Message, FieldError> {
    let param = format!("messages[{index}]");
    let role = value["role"]
        .as_str()
        .ok_or_else(|| field(&param, format!("`{param}.role` is required")))?;
    if !matches!(role, "system" | "user" | "assistant" | "tool" | "developer") {
        return Err(field(
            &param,
            format!("`{param}.role` `{role}` is not one of system, user, assistant, tool"),
        ));
    }
    let mut content = match &value["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => Ok(p["text"].as_str().unwrap_or_default().to_string()),
                Some(other) => Err(field(
                    &param,
                    format!("content part type `{other}` is not supported by this text model"),
                )),
                None => Err(field(&param, "content parts need a `type`")),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join("\n"),
        Value::Null => String::new(),
        _ => {
            return Err(field(
                &param,
                format!("`{param}.content` must be a string or an array"),
            ))
        }
    };
    if let Some(calls) = value["tool_calls"].as_array() {
        for call in calls {
            let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
            content.push_str(&format!(
                "{{\"name\": {}, \"arguments\": {arguments}}}",
                call["function"]["name"]
            ));
        }
    }
    Ok(Message {
        role: if role == "developer" { "system" } else { role }.to_string(),
        content,
    })
}

fn output_format(body: &ChatBody) -> Result<OutputFormat, FieldError> {
    let tool_choice = body.tool_choice.as_ref().unwrap_or(&Value::Null);
    let functions = tools(body.tools.as_deref().unwrap_or_default())?;
    if !functions.is_empty() && tool_choice.as_str() != Some("none") {
        let chosen = match tool_choice {
            Value::Null => return Ok(OutputFormat::ToolCallOrText(functions)),
            Value::String(s) if s == "auto" => return Ok(OutputFormat::ToolCallOrText(functions)),
            Value::String(s) if s == "required" => functions,
            Value::Object(_) => {
                let name = tool_choice["function"]["name"].as_str().ok_or_else(|| {
                    field("tool_choice", "`tool_choice.function.name` is required")
                })?;
                let function = functions
                    .into_iter()
                    .find(|f| f.name == name)
                    .ok_or_else(|| {
                        field(
                            "tool_choice",
                            format!("`tool_choice` names `{name}`, which is not in `tools`"),
                        )
                    })?;
                vec![function]
            }
            other => {
                return Err(field(
                    "tool_choice",
                    format!(
                    "`tool_choice` must be `none`, `auto`, `required` or a function, got {other}"
                ),
                ))
            }
        };
        return Ok(OutputFormat::ToolCall(chosen));
    }
    let Some(format) = &body.response_format else {
        return Ok(OutputFormat::Text);
    };
    match format["type"].as_str() {
        Some("text") | None if format.get("schema").is_none() => Ok(OutputFormat::Text),
        Some("json_object") => Ok(match format.get("schema").filter(|s| !s.is_null()) {
            Some(schema) => OutputFormat::JsonSchema(schema.clone()),
            None => OutputFormat::JsonObject,
        }),
        Some("json_schema") => {
            let schema = format["json_schema"]["schema"].clone();
            if schema.is_object() {
                Ok(OutputFormat::JsonSchema(schema))
            } else {
                Err(field(
                    "response_format",
                    "`response_format.json_schema.schema` must be a JSON schema object",
                ))
            }
        }
        Some("grammar") => match format["grammar"].as_str() {
            Some(g) if !g.trim().is_empty() => Ok(OutputFormat::Grammar(g.to_string())),
            _ => Err(field("response_format", "`response_format.grammar` must be a GBNF grammar string")),
        },
        other => Err(field(
            "response_format",
            format!(
                "`response_format.type` must be `text`, `json_object`, `json_schema` or `grammar`, got {}",
                other.unwrap_or("nothing")
            ),
        )),
    }
}

/// Objects with `properties` and no `additionalProperties` get `false`: the answer may
/// hold only the declared keys. Used for tool arguments (a function cannot use
/// undeclared ones) and schemas taken from the prompt (the client validates against
/// them); a small model otherwise pads objects with invented keys until `max_tokens`
/// (seen with SmolLM2-135M), or answers with keys of its own.
pub fn close_objects(schema: &mut Value) {
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

fn tools(values: &[Value]) -> Result<Vec<Function>, FieldError> {
    values
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let param = format!("tools[{i}]");
            if tool["type"].as_str().is_some_and(|t| t != "function") {
                return Err(field(&param, format!("`{param}.type` must be `function`")));
            }
            let function = &tool["function"];
            let name = function["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| field(&param, format!("`{param}.function.name` is required")))?;
            Ok(Function {
                name: name.to_string(),
                description: function["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                parameters: function.get("parameters").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// Token counts of a response.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(value: Value) -> Result<ChatRequest, FieldError> {
        ChatRequest::chat(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn messages_parts_tools_and_formats() {
        let r = chat(json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
        ], "stop": "END", "n": 2, "seed": 7}))
        .unwrap();
        assert_eq!(r.messages[1].content, "Hi");
        assert_eq!(
            (r.stop.clone(), r.n, r.seed),
            (vec!["END".to_string()], 2, Some(7))
        );
        assert_eq!(r.format, OutputFormat::Text);
        let r = chat(json!({"messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object", "schema": {"type": "object"}}}))
        .unwrap();
        assert!(matches!(r.format, OutputFormat::JsonSchema(_)));
        let r = chat(json!({"messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
                      {"type": "function", "function": {"name": "g"}}],
            "tool_choice": {"type": "function", "function": {"name": "g"}}})).unwrap();
        assert!(matches!(&r.format, OutputFormat::ToolCall(f) if f.len() == 1 && f[0].name == "g"));
    }

    #[test]
    fn objects_are_closed_unless_the_schema_says_otherwise() {
        let mut schema = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "c": {"type": "object", "properties": {}, "additionalProperties": true}}});
        close_objects(&mut schema);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["a"]["additionalProperties"], false);
        assert_eq!(schema["properties"]["c"]["additionalProperties"], true);
    }

    #[test]
    fn bad_requests_name_the_parameter() {
        for (body, param) in [
            (json!({}), "messages"),
            (json!({"messages": []}), "messages"),
            (
                json!({"messages": [{"role": "robot", "content": "x"}]}),
                "messages[0]",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "temperature": 3}),
                "temperature",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "n": 99}),
                "n",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
                "max_tokens",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "stop": [1]}),
                "stop",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}),
                "response_format",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "h"}}}),
                "tool_choice",
            ),
        ] {
            assert_eq!(chat(body.clone()).unwrap_err().param, param, "{body}");
        }
    }
}
