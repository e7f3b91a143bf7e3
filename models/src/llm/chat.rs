//! Chat prompts: messages rendered in the model's template. SmolLM2's GGUF template is
//! ChatML (`<|im_start|>role\ncontent<|im_end|>`); it is rendered here rather than by a
//! Jinja engine because the GGUF template also injects a default system prompt, which
//! made answers worse in our runs (DESIGN §3): Ember adds no system prompt the client
//! did not send.

/// One message after the server has flattened the wire shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
}

/// Whether a GGUF chat template is ChatML (the only family rendered here).
pub fn is_chatml(template: &str) -> bool {
    template.contains("<|im_start|>") && template.contains("<|im_end|>")
}

/// The prompt for `messages`, ending with an open assistant turn.
pub fn render_chatml(messages: &[ChatMessage]) -> String {
    let mut prompt = String::new();
    for message in messages {
        prompt.push_str("<|im_start|>");
        prompt.push_str(&message.role);
        prompt.push('\n');
        prompt.push_str(&message.content);
        prompt.push_str("<|im_end|>\n");
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

/// The system text that tells the model which functions it may call and how; the
/// constraint enforces the format, this makes the arguments sensible.
pub fn tools_prompt(
    functions: &[(String, String, serde_json::Value)],
    text_allowed: bool,
) -> String {
    let mut text = String::from(
        "You can call functions. Answer with one JSON object {\"name\": <function name>, \
         \"arguments\": <arguments object>} and nothing else.",
    );
    if text_allowed {
        text.push_str(" If no function fits the request, answer in plain text.");
    }
    text.push_str(" Functions:\n");
    for (name, description, parameters) in functions {
        text.push_str(&format!(
            "- {name}: {description} Parameters (JSON schema): {parameters}\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_has_every_turn_and_an_open_assistant_turn() {
        let messages = [
            ChatMessage {
                role: "user".into(),
                content: "Hi".into(),
            },
            ChatMessage {
                role: "assistant".into(),
                content: "Hello".into(),
            },
        ];
        assert_eq!(
            render_chatml(&messages),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(is_chatml(
            "{% for m in messages %}<|im_start|>{{m.role}}<|im_end|>{% endfor %}"
        ));
    }
}
