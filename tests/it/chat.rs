//! `/v1/chat/completions` and `/v1/completions` on SmolLM2-135M: seeded sampling, stop
//! and max_tokens, SSE reassembly, constrained outputs (JSON schema, GBNF grammar,
//! tool calls, schemas written in the prompt), streamed tool calls and errors.

use serde_json::{json, Value};

use crate::support::server;

async fn post_json(path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server().url))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

async fn chat(body: Value) -> Value {
    let (status, reply) = post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{reply}");
    reply
}

fn content(reply: &Value) -> &str {
    reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test]
async fn seeded_sampling_is_reproducible_and_limits_hold() {
    let body = json!({"messages": user("Write a short poem about the sea."),
                      "temperature": 0.9, "top_p": 0.95, "seed": 42, "max_tokens": 24});
    let (a, b) = (chat(body.clone()).await, chat(body.clone()).await);
    assert_eq!(content(&a), content(&b));
    assert!(a["usage"]["completion_tokens"].as_u64().unwrap_or(99) <= 24);
    let mut other = body.clone();
    other["seed"] = json!(7);
    let c = chat(other).await;
    assert_ne!(
        content(&a),
        content(&c),
        "different seeds gave the same text"
    );

    let short = chat(
        json!({"messages": user("Count from one to twenty."), "max_tokens": 5, "temperature": 0}),
    )
    .await;
    assert_eq!(short["choices"][0]["finish_reason"], "length");
    assert_eq!(short["usage"]["completion_tokens"], 5);

    let stopped = chat(
        json!({"messages": user("List three colours, separated by commas."),
                              "temperature": 0, "stop": [","], "max_tokens": 40}),
    )
    .await;
    assert!(!content(&stopped).contains(','), "{stopped}");
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");

    let two = chat(json!({"messages": user("Say hello."), "n": 2, "temperature": 1.0, "seed": 1, "max_tokens": 8})).await;
    assert_eq!(two["choices"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn streaming_reassembles_to_the_same_text() {
    let body = json!({"messages": user("What is the capital of France?"), "temperature": 0, "max_tokens": 30});
    let whole = chat(body.clone()).await;
    let mut assembled = String::new();
    let mut finish = None;
    for chunk in stream_chunks(body).await {
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            assembled.push_str(piece);
        }
        if let Some(reason) = chunk["choices"][0]["finish_reason"].as_str() {
            finish = Some(reason.to_string());
        }
    }
    assert_eq!(assembled, content(&whole));
    assert!(finish.is_some());
}

/// The chunks of `body` sent with `stream: true`, checked to end with `[DONE]`.
async fn stream_chunks(mut body: Value) -> Vec<Value> {
    body["stream"] = json!(true);
    let text = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server().url))
        .json(&body)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    events[..events.len() - 1]
        .iter()
        .map(|event| {
            let chunk: Value = serde_json::from_str(event).expect("chunk JSON");
            assert_eq!(chunk["object"], "chat.completion.chunk");
            chunk
        })
        .collect()
}

/// A schema with required fields of several types, an enum and an array.
fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "role": {"type": "string", "enum": ["speaker", "listener", "moderator"]},
            "topics": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 3}
        },
        "required": ["name", "age", "role", "topics"],
        "additionalProperties": false
    })
}

fn valid_person(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    object.len() == 4
        && value["name"]
            .as_str()
            .is_some_and(|s| s.chars().count() <= 40)
        && value["age"].as_u64().is_some_and(|a| a <= 150)
        && ["speaker", "listener", "moderator"].contains(&value["role"].as_str().unwrap_or(""))
        && value["topics"]
            .as_array()
            .is_some_and(|t| t.len() <= 3 && t.iter().all(Value::is_string))
}

#[tokio::test]
async fn json_schema_output_always_validates() {
    let subjects = [
        "Alice, 34, moderated the budget meeting",
        "Bob is 61 and listened quietly",
        "a 19 year old student who spoke about climate",
        "Dr. Chen, aged 45, talked about vaccines and travel",
        "the transcript of a podcast with two hosts",
    ];
    let mut valid = 0;
    let total = 50;
    for i in 0..total {
        let subject = subjects[i % subjects.len()];
        let format = if i % 2 == 0 {
            json!({"type": "json_schema", "json_schema": {"name": "person", "schema": person_schema()}})
        } else {
            json!({"type": "json_object", "schema": person_schema()})
        };
        let reply = chat(json!({
            "messages": user(&format!("Extract the person from: {subject}. Answer in JSON.")),
            "response_format": format, "temperature": 0.7, "seed": i, "max_tokens": 120
        }))
        .await;
        let text = content(&reply);
        match serde_json::from_str::<Value>(text) {
            Ok(value) if valid_person(&value) => valid += 1,
            _ => eprintln!("invalid output {i}: {text}"),
        }
    }
    assert_eq!(valid, total, "{valid} of {total} outputs validated");
}

/// Clients such as instructor (JSON, MD_JSON modes) write the schema into a message
/// and ask for JSON without sending it as a constraint; Ember constrains to it.
#[tokio::test]
async fn a_schema_written_in_the_prompt_constrains_the_answer() {
    let instructions = format!(
        "Extract the person as JSON that matches this JSON schema:\n{}\nReturn an \
         instance, not the schema.",
        serde_json::to_string_pretty(&person_schema()).expect("schema")
    );
    let subjects = [
        "Alice, 34, moderated the budget meeting",
        "Bob is 61 and listened quietly",
        "a 19 year old student who spoke about climate",
    ];
    for (i, subject) in subjects.iter().enumerate() {
        let messages = json!([{"role": "system", "content": instructions},
                              {"role": "user", "content": subject}]);
        let reply = chat(
            json!({"messages": messages, "response_format": {"type": "json_object"},
                                "temperature": 0.7, "seed": i, "max_tokens": 120}),
        )
        .await;
        let value: Value = serde_json::from_str(content(&reply)).expect("JSON");
        assert!(valid_person(&value), "json_object: {value}");
        // No response_format, but a fenced ```json block asked for.
        let messages = json!([{"role": "system", "content": instructions},
                              {"role": "user", "content": format!("{subject}\n\nAnswer in a ```json code block.")}]);
        let reply =
            chat(json!({"messages": messages, "temperature": 0.7, "seed": i, "max_tokens": 140}))
                .await;
        let text = content(&reply);
        let inner = text
            .strip_prefix("```json\n")
            .and_then(|t| t.strip_suffix("\n```"))
            .unwrap_or_else(|| panic!("not a fenced block: {text}"));
        let value: Value = serde_json::from_str(inner).expect("JSON in the block");
        assert!(valid_person(&value), "fenced: {value}");
    }
}

#[tokio::test]
async fn grammar_mode_output_is_in_the_language() {
    // The Fireworks docs' grammar-mode example: a diagnosis classifier.
    let grammar = r#"root ::= diagnosis
diagnosis ::= "arthritis" | "dengue" | "urinary tract infection" | "impetigo" | "cervical spondylosis""#;
    let allowed = [
        "arthritis",
        "dengue",
        "urinary tract infection",
        "impetigo",
        "cervical spondylosis",
    ];
    for (i, symptoms) in [
        "My joints ache and are swollen in the morning.",
        "High fever, rash and pain behind the eyes after a mosquito bite.",
        "It burns when I pee.",
        "Crusty sores around the nose of my child.",
        "Neck stiffness and pain radiating into the shoulder.",
    ]
    .iter()
    .enumerate()
    {
        let reply = chat(json!({
            "messages": [{"role": "system", "content": "Classify the symptoms as one diagnosis."},
                         {"role": "user", "content": symptoms}],
            "response_format": {"type": "grammar", "grammar": grammar},
            "temperature": 0.5, "seed": i, "max_tokens": 20
        }))
        .await;
        assert!(allowed.contains(&content(&reply)), "{reply}");
    }
    let (status, error) = post_json(
        "/v1/chat/completions",
        &json!({"messages": user("x"), "response_format": {"type": "grammar", "grammar": "root ::= undefined_rule"}}),
    )
    .await;
    assert_eq!(status, 400, "{error}");
}

#[tokio::test]
async fn tool_calls_validate_against_the_function_schema() {
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 40},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                "required": ["city", "unit"]}}},
        {"type": "function", "function": {"name": "create_reminder", "description": "Set a reminder.",
            "parameters": {"type": "object", "properties": {
                "text": {"type": "string", "maxLength": 60},
                "minutes": {"type": "integer", "minimum": 1, "maximum": 1440}},
                "required": ["text", "minutes"]}}}
    ]);
    for (i, (prompt, choice)) in [
        ("What's the weather in Paris?", json!("required")),
        (
            "Remind me to call mum in 20 minutes.",
            json!({"type": "function", "function": {"name": "create_reminder"}}),
        ),
        ("Is it raining in Tokyo?", json!("auto")),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = chat(
            json!({"messages": user(prompt), "tools": tools, "tool_choice": choice,
                                "temperature": 0.3, "seed": i, "max_tokens": 80}),
        )
        .await;
        let choice = &reply["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "{reply}");
        let call = &choice["message"]["tool_calls"][0];
        let arguments: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or(""))
                .expect("arguments JSON");
        match call["function"]["name"].as_str() {
            Some("get_weather") => {
                assert!(arguments["city"].is_string());
                assert!(
                    ["celsius", "fahrenheit"].contains(&arguments["unit"].as_str().unwrap_or(""))
                );
            }
            Some("create_reminder") => {
                assert!(arguments["text"].is_string());
                assert!(arguments["minutes"]
                    .as_u64()
                    .is_some_and(|m| (1..=1440).contains(&m)));
            }
            other => panic!("unknown function {other:?}"),
        }
    }
}

/// A streamed tool call sends the function name first, then its arguments in pieces
/// as they are generated; they add up to the non-streamed call.
#[tokio::test]
async fn streamed_tool_calls_arrive_in_pieces() {
    let body = json!({
        "messages": user("What's the weather in Paris, in celsius?"),
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 40},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                "required": ["city", "unit"]}}}],
        "tool_choice": "required", "temperature": 0, "max_tokens": 60,
    });
    let whole = chat(body.clone()).await;
    let expected = &whole["choices"][0]["message"]["tool_calls"][0]["function"];
    let chunks = stream_chunks(body).await;
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert!(
        calls.len() >= 3,
        "the call came in {} piece(s)",
        calls.len()
    );
    assert_eq!(calls[0]["function"]["name"], expected["name"]);
    assert!(calls[0]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("call_")));
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    let streamed: Value = serde_json::from_str(&arguments).expect("arguments JSON");
    let non_streamed: Value =
        serde_json::from_str(expected["arguments"].as_str().expect("arguments")).expect("JSON");
    assert_eq!(streamed, non_streamed);
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("tool_calls"));
}

#[tokio::test]
async fn completions_and_errors() {
    let (status, reply) = post_json(
        "/v1/completions",
        &json!({"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["object"], "text_completion");
    assert!(reply["choices"][0]["text"].is_string());
    let long = "word ".repeat(9000);
    let (status, error) = post_json(
        "/v1/chat/completions",
        &json!({"messages": user(&long), "max_tokens": 10}),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("context length") && message.contains("8192"),
        "{message}"
    );
    for body in [
        json!({"messages": []}),
        json!({"messages": user("x"), "temperature": 5}),
        json!({"messages": user("x"), "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "bogus"}}}}),
    ] {
        let (status, error) = post_json("/v1/chat/completions", &body).await;
        assert_eq!(status, 400, "{body}: {error}");
    }
    let (status, reply) = post_json(
        "/v1/chat/completions",
        &json!({"messages": user("Hi"), "logprobs": true, "max_tokens": 3, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200);
    let logprobs = reply["choices"][0]["logprobs"]["content"]
        .as_array()
        .expect("logprobs");
    assert!(
        !logprobs.is_empty()
            && logprobs
                .iter()
                .all(|l| l["logprob"].as_f64().is_some_and(|p| p <= 0.0))
    );
}
