//! JSON schemas written into the prompt.
//!
//! Many clients ask for structured output by putting the answer's JSON Schema in a
//! message and asking for JSON: instructor's `JSON` mode (with `response_format:
//! json_object`) and `MD_JSON` mode (a fenced ```json block, no `response_format`),
//! LangChain's output parsers, hand-written prompts. A large model follows the schema;
//! a small one does not, and a `json_object` constraint alone only guarantees *some*
//! JSON. When a request asks for JSON this way and its messages carry exactly one JSON
//! Schema, [`refine`] turns that schema into the decoding constraint, so the answer is
//! what the client will validate against.
//!
//! The server applies this unless `EMBER_LLM_PROMPT_SCHEMAS=false`. Explicit
//! constraints (`json_schema`, a grammar, tools) are never changed.

use serde_json::Value;

use crate::chat::{close_objects, Message, OutputFormat};

/// Characters of message text searched for a schema; longer prompts are searched in
/// their first part only (a schema is near the instructions, and the scan must stay
/// cheap whatever the client sends).
const MAX_SCANNED_CHARS: usize = 64 * 1024;
/// `{` positions tried as the start of a JSON document per message.
const MAX_PARSE_ATTEMPTS: usize = 512;

/// The format to decode with: `format`, or a constraint to the prompt's schema when
/// the request asks for JSON and the system/user messages hold exactly one schema.
/// Its objects are closed ([`close_objects`]): the client wants an instance of that
/// schema, and extra keys would let a small model answer with keys of its own.
///
/// * `json_object` without a schema → that schema (`OutputFormat::JsonSchema`);
/// * no format, and the last user message asks for a ```json block →
///   `OutputFormat::FencedJson` with that schema.
pub fn refine(format: OutputFormat, messages: &[Message]) -> OutputFormat {
    match format {
        OutputFormat::JsonObject => match closed_schema(messages) {
            Some(schema) => OutputFormat::JsonSchema(schema),
            None => OutputFormat::JsonObject,
        },
        OutputFormat::Text if asks_for_json_block(messages) => match closed_schema(messages) {
            Some(schema) => OutputFormat::FencedJson(schema),
            None => OutputFormat::Text,
        },
        other => other,
    }
}

fn closed_schema(messages: &[Message]) -> Option<Value> {
    let mut schema = find_schema(messages)?;
    close_objects(&mut schema);
    Some(schema)
}

/// Whether the last user message asks for a fenced ```json block.
fn asks_for_json_block(messages: &[Message]) -> bool {
    messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .is_some_and(|m| m.content.to_ascii_lowercase().contains("```json"))
}

/// The one JSON Schema (an object schema with `properties`) in the system and user
/// messages; `None` when there is none or several different ones.
pub fn find_schema(messages: &[Message]) -> Option<Value> {
    let mut found: Option<Value> = None;
    for message in messages
        .iter()
        .filter(|m| m.role == "system" || m.role == "user")
    {
        for schema in schemas_in(&message.content) {
            match &found {
                Some(existing) if *existing != schema => return None,
                Some(_) => {}
                None => found = Some(schema),
            }
        }
    }
    found
}

/// Every outermost JSON object in `text` that looks like an object schema.
fn schemas_in(text: &str) -> Vec<Value> {
    let text = match text.char_indices().nth(MAX_SCANNED_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    };
    let mut schemas = Vec::new();
    let mut resume = 0;
    let mut attempts = 0;
    for (start, _) in text.match_indices('{') {
        if start < resume {
            continue; // inside a document already read
        }
        attempts += 1;
        if attempts > MAX_PARSE_ATTEMPTS {
            break;
        }
        let mut documents = serde_json::Deserializer::from_str(&text[start..]).into_iter();
        if let Some(Ok(value)) = documents.next() {
            resume = start + documents.byte_offset();
            if is_object_schema(&value) {
                schemas.push(value);
            }
        }
    }
    schemas
}

/// An object schema: `properties` is an object and `type` is `object` (or absent with
/// a `required` list, as some hand-written schemas have it).
fn is_object_schema(value: &Value) -> bool {
    let Some(map) = value.as_object() else {
        return false;
    };
    if !map.get("properties").is_some_and(Value::is_object) {
        return false;
    }
    match map.get("type") {
        Some(t) => t == "object",
        None => map.get("required").is_some_and(Value::is_array),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    fn user_schema() -> Value {
        json!({"properties": {"name": {"title": "Name", "type": "string"},
                              "age": {"title": "Age", "type": "integer"}},
               "required": ["name", "age"], "title": "User", "type": "object"})
    }

    fn instructions(schema: &Value) -> String {
        format!(
            "As a genius expert, provide the parsed objects in json that match the \
             following json_schema:\n\n{}\n\nMake sure to return an instance of the JSON",
            serde_json::to_string_pretty(schema).unwrap()
        )
    }

    #[test]
    fn json_object_mode_takes_the_schema_in_the_system_message() {
        let messages = [
            message("system", &instructions(&user_schema())),
            message("user", "Extract: Jason is 25 years old."),
        ];
        let mut closed = user_schema();
        closed["additionalProperties"] = json!(false);
        assert_eq!(
            refine(OutputFormat::JsonObject, &messages),
            OutputFormat::JsonSchema(closed)
        );
    }

    #[test]
    fn a_fenced_block_is_constrained_only_when_asked_for() {
        let asking = [
            message("system", &instructions(&user_schema())),
            message(
                "user",
                "Jason is 25.\n\nReturn the correct JSON response within a ```json codeblock.",
            ),
        ];
        assert!(matches!(
            refine(OutputFormat::Text, &asking),
            OutputFormat::FencedJson(schema) if schema["properties"] == user_schema()["properties"]
        ));
        let chatting = [
            message("system", &instructions(&user_schema())),
            message("user", "What does this schema mean?"),
        ];
        assert_eq!(refine(OutputFormat::Text, &chatting), OutputFormat::Text);
    }

    #[test]
    fn nothing_changes_without_exactly_one_schema_or_with_an_explicit_format() {
        let none = [message("user", "Give me {\"a\": 1} as JSON {not json")];
        assert_eq!(
            refine(OutputFormat::JsonObject, &none),
            OutputFormat::JsonObject
        );
        let other = json!({"type": "object", "properties": {"x": {"type": "number"}}});
        let two = [
            message("system", &instructions(&user_schema())),
            message("user", &instructions(&other)),
        ];
        assert_eq!(
            refine(OutputFormat::JsonObject, &two),
            OutputFormat::JsonObject
        );
        // The same schema twice (a retry repeats it) is still one schema.
        let repeated = [
            message("system", &instructions(&user_schema())),
            message("user", &instructions(&user_schema())),
        ];
        assert_eq!(find_schema(&repeated), Some(user_schema()));
        // Assistant and tool messages are not instructions.
        let answered = [message("assistant", &instructions(&user_schema()))];
        assert_eq!(find_schema(&answered), None);
        let explicit = OutputFormat::JsonSchema(json!({"type": "object"}));
        let messages = [message("system", &instructions(&user_schema()))];
        assert_eq!(refine(explicit.clone(), &messages), explicit);
    }

    #[test]
    fn nested_objects_are_read_as_one_document_and_hostile_text_is_bounded() {
        let text = format!("x {} y", serde_json::to_string(&user_schema()).unwrap());
        assert_eq!(schemas_in(&text), vec![user_schema()]);
        // Many unclosed braces: bounded attempts, no schema, no panic.
        let braces = "{".repeat(200_000);
        assert!(schemas_in(&braces).is_empty());
        let instance = json!({"properties": "not an object", "type": "object"});
        assert!(!is_object_schema(&instance));
    }
}
