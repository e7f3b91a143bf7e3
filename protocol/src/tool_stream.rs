//! Streams a constrained tool-call answer as OpenAI stream deltas while it is written.
//!
//! The model writes `{"name": "<function>", "arguments": {…}}` (or, under
//! `tool_choice: auto`, possibly plain text). OpenAI clients expect the call's name in
//! one delta and its `arguments` string in pieces after it, so that partial-JSON
//! parsers (instructor's `create_partial`) see fields as they come. This splits the
//! generated text into those pieces without waiting for the end.

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Plain text content (no call, or a call cut short before its arguments).
    Text(String),
    /// A call of this function begins; its arguments follow.
    CallStart(String),
    /// More of the call's `arguments` JSON.
    Arguments(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Only whitespace so far: a call or text (`auto`) is not yet known.
    Undecided,
    /// A text answer: deltas pass through.
    Text,
    /// A call whose name and `"arguments":` key are not complete yet.
    Header,
    /// Inside the arguments, which start at `start`; `sent` bytes have gone out.
    Arguments { start: usize, sent: usize },
}

/// Splits one choice's generated text into [`Piece`]s.
#[derive(Debug, Clone)]
pub struct ToolCallStream {
    text: String,
    state: State,
    text_allowed: bool,
}

impl ToolCallStream {
    /// `text_allowed`: the answer may be plain text instead of a call.
    pub fn new(text_allowed: bool) -> Self {
        Self {
            text: String::new(),
            state: State::Undecided,
            text_allowed,
        }
    }

    /// Whether the answer turned out to be a call.
    pub fn is_call(&self) -> bool {
        matches!(self.state, State::Arguments { .. })
    }

    /// Adds generated text and returns what can be sent now. The last character is
    /// held back inside a call: it may be the `}` that closes the wrapper, not the
    /// arguments.
    pub fn push(&mut self, delta: &str) -> Vec<Piece> {
        self.text.push_str(delta);
        let mut pieces = Vec::new();
        if self.state == State::Undecided {
            match self.text.trim_start().chars().next() {
                None => return pieces,
                Some('{') => self.state = State::Header,
                Some(_) if self.text_allowed => {
                    self.state = State::Text;
                    pieces.push(Piece::Text(self.text.clone()));
                    return pieces;
                }
                Some(_) => self.state = State::Header,
            }
        }
        match self.state {
            State::Text => pieces.push(Piece::Text(delta.to_string())),
            State::Header => {
                if let Some((name, start)) = parse_header(&self.text) {
                    pieces.push(Piece::CallStart(name));
                    self.state = State::Arguments { start, sent: start };
                    pieces.extend(self.arguments(false));
                }
            }
            State::Arguments { .. } => pieces.extend(self.arguments(false)),
            State::Undecided => {}
        }
        pieces
    }

    /// The rest, once generation has ended: the remaining arguments without the
    /// wrapper's closing brace, or the whole text if no call ever began.
    pub fn finish(&mut self) -> Vec<Piece> {
        match self.state {
            State::Arguments { .. } => self.arguments(true).into_iter().collect(),
            State::Text => Vec::new(),
            State::Undecided | State::Header => {
                let text = std::mem::take(&mut self.text);
                if text.is_empty() {
                    Vec::new()
                } else {
                    vec![Piece::Text(text)]
                }
            }
        }
    }

    fn arguments(&mut self, done: bool) -> Option<Piece> {
        let State::Arguments { start, sent } = self.state else {
            return None;
        };
        let end = if done {
            let trimmed = self.text.trim_end();
            // A complete call ends with the wrapper's `}`; a cut one has none to drop.
            match trimmed.strip_suffix('}') {
                Some(inner) if is_complete_call(trimmed) => inner.trim_end().len(),
                _ => trimmed.len(),
            }
        } else {
            // Hold back the last character (it may close the wrapper) and whitespace
            // before it (it may separate the arguments from the wrapper's brace).
            let last = self.text.char_indices().last().map_or(0, |(i, _)| i);
            self.text[..last].trim_end().len().max(start)
        };
        if end <= sent {
            return None;
        }
        self.state = State::Arguments { start, sent: end };
        Some(Piece::Arguments(self.text[sent..end].to_string()))
    }
}

fn is_complete_call(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v["name"].is_string() && v.get("arguments").is_some())
}

/// `{ "name" : "<name>" , "arguments" :` with any whitespace: the function name and
/// the byte offset where the arguments begin, once all of it has arrived.
fn parse_header(text: &str) -> Option<(String, usize)> {
    let mut rest = text.trim_start().strip_prefix('{')?;
    rest = rest.trim_start().strip_prefix("\"name\"")?;
    rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let mut strings = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    let name = strings.next()?.ok()?;
    rest = &rest[strings.byte_offset()..];
    rest = rest.trim_start().strip_prefix(',')?;
    rest = rest.trim_start().strip_prefix("\"arguments\"")?;
    rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if rest.is_empty() {
        return None; // the arguments' first character decides nothing yet, but wait for it
    }
    Some((name, text.len() - rest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `deltas`, then finishes; returns all pieces.
    fn run(text_allowed: bool, deltas: &[&str]) -> (Vec<Piece>, bool) {
        let mut stream = ToolCallStream::new(text_allowed);
        let mut pieces: Vec<Piece> = deltas.iter().flat_map(|d| stream.push(d)).collect();
        pieces.extend(stream.finish());
        (pieces, stream.is_call())
    }

    fn arguments(pieces: &[Piece]) -> String {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Arguments(a) => Some(a.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_call_streams_its_name_then_its_arguments_in_pieces() {
        let deltas = [
            "{\"",
            "name",
            "\": \"get",
            "_weather\", \"arg",
            "uments\": {\"",
            "city\": \"Pa",
            "ris\"}",
            "}",
        ];
        let (pieces, is_call) = run(false, &deltas);
        assert!(is_call);
        assert_eq!(pieces[0], Piece::CallStart("get_weather".into()));
        assert_eq!(arguments(&pieces), "{\"city\": \"Paris\"}");
        // Sent while generating, not all at the end.
        assert!(pieces.len() >= 4, "{pieces:?}");
    }

    #[test]
    fn the_closing_braces_may_come_in_one_token() {
        let (pieces, _) = run(
            false,
            &["{\"name\": \"f\", \"arguments\": {\"a\": {\"b\": 1", "}}}"],
        );
        assert_eq!(arguments(&pieces), "{\"a\": {\"b\": 1}}");
    }

    #[test]
    fn text_passes_through_when_allowed() {
        let (pieces, is_call) = run(true, &["  ", "Hello", " there"]);
        assert!(!is_call);
        assert_eq!(
            pieces,
            vec![Piece::Text("  Hello".into()), Piece::Text(" there".into())]
        );
    }

    #[test]
    fn a_call_cut_short_is_sent_as_it_is() {
        // Cut inside the arguments: what was written, with no brace dropped.
        let (pieces, is_call) = run(false, &["{\"name\": \"f\", \"arguments\": {\"a\": 1"]);
        assert!(is_call);
        assert_eq!(arguments(&pieces), "{\"a\": 1");
        // Cut inside the header: the text, as the non-streamed answer gives it.
        let (pieces, is_call) = run(false, &["{\"name\": \"f"]);
        assert!(!is_call);
        assert_eq!(pieces, vec![Piece::Text("{\"name\": \"f".into())]);
    }

    #[test]
    fn names_with_escapes_and_spaced_headers_parse() {
        let (pieces, _) = run(
            false,
            &["{ \"name\" : \"a\\\"b\" ,\n \"arguments\" : ", "{}", " }"],
        );
        assert_eq!(pieces[0], Piece::CallStart("a\"b".into()));
        assert_eq!(arguments(&pieces), "{}");
    }
}
