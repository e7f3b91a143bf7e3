//! Constrained decoding for the chat LLM: token masks from JSON schemas,
//! Lark grammars and tool-call specs, built on [`llguidance`].
//!
//! # Model
//!
//! * A [`ConstraintFactory`] is built once per model/tokenizer from the raw
//!   bytes of every token id (see [`byte_level_decode`] for byte-level BPE
//!   vocabularies such as SmolLM2's). Building it indexes the vocabulary into
//!   a token trie (~120-200 ms for SmolLM2's 49k tokens); it is
//!   `Send + Sync`, so build it at model load and share it behind an `Arc`.
//! * [`ConstraintFactory::compile`] turns a [`ConstraintSpec`] into a
//!   per-sequence [`Constraint`] (0.4-2 ms for typical specs). An
//!   invalid schema or grammar yields a [`ConstraintError`] whose message names
//!   the problem, suitable for an HTTP 400.
//! * Per decoding step: [`Constraint::mask_logits`] (or
//!   [`Constraint::allowed`]) before sampling (typically 5-100 µs, rarely
//!   ~1 ms), then [`Constraint::commit`] with the sampled token. Stop when the
//!   sampled token is EOS or when [`Constraint::is_finished`] says the grammar
//!   cannot be extended.
//!
//! ```text
//! let factory = ConstraintFactory::new(token_bytes, eos, &special_ids)?;  // once per model
//! let mut c = factory.compile(&ConstraintSpec::JsonObject)?;             // per request (400 on Err)
//! for _ in 0..max_tokens {
//!     let mut logits = model.forward(..)?;                                 // Vec<f32> on the CPU
//!     c.mask_logits(&mut logits)?;                                         // disallowed -> -inf
//!     let tok = sample(&logits);
//!     c.commit(tok)?;
//!     if tok == eos { break; }
//!     emit(tok);
//!     if c.is_finished() { break; }   // e.g. after the closing `}`: only EOS could follow
//! }
//! ```
//!
//! Strings, arrays and numbers are unbounded unless the schema bounds them,
//! so a request must still carry a token limit.
//!
//! # EOS and termination
//!
//! EOS is in the mask exactly when the text so far is a complete member of
//! the grammar's language (e.g. a closed JSON object). When the text is
//! complete *and* cannot be extended (the closing `}` of a JSON object),
//! llguidance stops by itself: [`Constraint::is_finished`] turns true right
//! after that `commit` and the mask then holds only EOS. The caller should
//! end the sequence there without running the model again; committing EOS
//! afterwards is accepted too.
//!
//! # Special tokens
//!
//! Special/control tokens (`<|im_start|>`, `<|im_end|>`, ...) are marked so
//! that grammar text never matches them: a JSON string may not contain a
//! sampled `<|im_end|>` token. Pass *all* special token ids to
//! [`ConstraintFactory::new`]; EOS is always treated as special. Lark grammars
//! can still name special tokens explicitly (`<|im_end|>` syntax).
//!
//! # JSON whitespace
//!
//! By default ([`JsonWhitespace::Compact`]) JSON output has no free whitespace
//! and uses `", "` / `": "` separators. llguidance's own default
//! ([`JsonWhitespace::Flexible`]) allows unbounded whitespace between tokens,
//! which lets small models loop on newlines forever; [`JsonWhitespace::Limited`]
//! allows pretty-printing with bounded runs. A schema may override this with
//! llguidance's `"x-guidance"` key. Generated numbers are valid JSON but may
//! be huge (`1e999`), which `serde_json` refuses to parse by default.
//!
//! # Limits
//!
//! Fast-forward (forced) tokens are not used: the vocabulary is indexed
//! without the real BPE tokenizer, so llguidance treats tokenization as
//! non-canonical and lets the model pick any tokenization of forced text.
//! Backtracking and rollback are not exposed.

use std::collections::HashSet;
use std::fmt;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::{json, Value};
use toktrie::{ApproximateTokEnv, SimpleVob, TokEnv, TokRxInfo, TokTrie};

/// What the output must look like.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstraintSpec {
    /// Any JSON object (OpenAI `response_format: {"type": "json_object"}`).
    JsonObject,
    /// A JSON value valid against this JSON schema (draft 2020-12 subset
    /// supported by llguidance; unsupported keywords are errors).
    JsonSchema(Value),
    /// A grammar in llguidance's Lark dialect; must define a `start` rule.
    Lark(String),
    /// A single tool call: `{"name": <function name>, "arguments": <object>}`
    /// where `arguments` is valid against that function's `parameters`
    /// schema. Each entry is `(name, parameters)`; a `null` parameters schema
    /// means "any object".
    Tools {
        /// `(name, parameters JSON schema)` for each callable function.
        functions: Vec<(String, Value)>,
        /// A plain-text answer is allowed instead of a call (`tool_choice: auto`).
        /// It must not start with `{` or whitespace, so the first token decides.
        text_allowed: bool,
    },
    /// A Markdown fenced block, ```` ```json ```` … ```` ``` ````, holding a JSON value
    /// valid against this schema (for prompts that ask for one).
    FencedJson(Value),
}

/// How much whitespace JSON output may contain (JSON object, JSON schema and
/// tool-call modes; Lark grammars decide for themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonWhitespace {
    /// No free whitespace; separators are `", "` and `": "`.
    #[default]
    Compact,
    /// A whitespace run of at most this many characters between JSON
    /// lexemes (allows pretty-printing, but not endless newlines).
    Limited(u16),
    /// llguidance's default: unbounded whitespace between JSON lexemes.
    Flexible,
}

impl JsonWhitespace {
    fn x_guidance(self) -> Value {
        match self {
            JsonWhitespace::Compact => json!({
                "whitespace_flexible": false,
                "item_separator": ", ",
                "key_separator": ": ",
            }),
            JsonWhitespace::Limited(max) => json!({
                "whitespace_pattern": format!(r"[\x20\x0A\x0D\x09]{{1,{}}}", max.max(1)),
                "item_separator": ",",
                "key_separator": ":",
            }),
            JsonWhitespace::Flexible => json!({ "whitespace_flexible": true }),
        }
    }
}

/// Error from building a factory, compiling a spec, or advancing a
/// constraint. Errors from [`ConstraintFactory::compile`] describe a problem
/// in the client's schema/grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintError(String);

impl ConstraintError {
    fn new(msg: impl Into<String>) -> Self {
        ConstraintError(msg.into())
    }

    /// The error message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConstraintError {}

/// GPT-2 byte-level BPE: bytes that map to the char with the same code point.
const fn is_self_mapped(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// Bytes that GPT-2 maps to `U+0100 + i`, in order (68 of them).
const REMAPPED_BYTES: [u8; 68] = {
    let mut out = [0u8; 68];
    let mut k = 0;
    let mut b = 0usize;
    while b < 256 {
        if !is_self_mapped(b as u8) {
            out[k] = b as u8;
            k += 1;
        }
        b += 1;
    }
    out
};

/// Inverts GPT-2's byte-to-unicode table: turns a byte-level BPE token string
/// (as stored in `tokenizer.json` / GGUF `tokenizer.ggml.tokens`, e.g.
/// `"Ġworld"`) into the raw bytes it stands for (`b" world"`).
///
/// Characters outside the table (e.g. in added tokens such as
/// `<|im_end|>`, which are plain ASCII anyway) are kept as their UTF-8 bytes.
pub fn byte_level_decode(token: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len());
    for c in token.chars() {
        let cp = c as u32;
        if cp < 256 && is_self_mapped(cp as u8) {
            out.push(cp as u8);
        } else if let Some(&b) = cp
            .checked_sub(0x100)
            .and_then(|i| REMAPPED_BYTES.get(i as usize))
        {
            out.push(b);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// Compiles [`ConstraintSpec`]s for one tokenizer. Build once per model.
pub struct ConstraintFactory {
    factory: ParserFactory,
    eos: u32,
    vocab_size: usize,
    json_whitespace: JsonWhitespace,
}

impl fmt::Debug for ConstraintFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConstraintFactory")
            .field("eos", &self.eos)
            .field("vocab_size", &self.vocab_size)
            .field("json_whitespace", &self.json_whitespace)
            .finish_non_exhaustive()
    }
}

impl ConstraintFactory {
    /// Indexes the vocabulary. `tokens[id]` holds the raw bytes of token `id`
    /// (empty for unused ids, which are then never allowed); `eos` is the
    /// end-of-sequence id; `specials` lists the special/control token ids,
    /// whose text grammar literals must not match.
    pub fn new(tokens: Vec<Vec<u8>>, eos: u32, specials: &[u32]) -> Result<Self, ConstraintError> {
        let vocab_size = tokens.len();
        let vocab_u32 =
            u32::try_from(vocab_size).map_err(|_| ConstraintError::new("vocabulary too large"))?;
        if vocab_size == 0 {
            return Err(ConstraintError::new("empty vocabulary"));
        }
        if eos >= vocab_u32 {
            return Err(ConstraintError::new(format!(
                "EOS id {eos} outside vocabulary of {vocab_size} tokens"
            )));
        }
        if let Some(bad) = specials.iter().find(|&&id| id >= vocab_u32) {
            return Err(ConstraintError::new(format!(
                "special token id {bad} outside vocabulary of {vocab_size} tokens"
            )));
        }
        let specials: HashSet<u32> = specials.iter().copied().chain([eos]).collect();
        let mut tokens = tokens;
        for id in &specials {
            let bytes = &mut tokens[*id as usize];
            if bytes.first() != Some(&TokTrie::SPECIAL_TOKEN_MARKER) {
                if bytes.is_empty() {
                    // Nameless special: give it a unique name so it stays distinct.
                    bytes.extend_from_slice(format!("<[{id}]>").as_bytes());
                }
                bytes.insert(0, TokTrie::SPECIAL_TOKEN_MARKER);
            }
        }
        let info = TokRxInfo::new(vocab_u32, eos);
        let trie = TokTrie::from(&info, &tokens);
        let env: TokEnv = std::sync::Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|e| ConstraintError::new(format!("cannot index vocabulary: {e}")))?;
        // No stderr chatter from a server; warnings are available per constraint.
        factory.quiet();
        Ok(ConstraintFactory {
            factory,
            eos,
            vocab_size,
            json_whitespace: JsonWhitespace::default(),
        })
    }

    /// Sets the whitespace policy for JSON modes (default: compact).
    pub fn with_json_whitespace(mut self, ws: JsonWhitespace) -> Self {
        self.json_whitespace = ws;
        self
    }

    /// The EOS token id.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// Number of token ids the masks cover.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Compiles a spec into a fresh per-sequence constraint. Errors name the
    /// problem in the schema/grammar.
    pub fn compile(&self, spec: &ConstraintSpec) -> Result<Constraint, ConstraintError> {
        let (what, grammar) = match spec {
            ConstraintSpec::JsonObject => (
                "JSON object mode",
                TopLevelGrammar::from_json_schema(self.with_ws(json!({"type": "object"}))),
            ),
            ConstraintSpec::JsonSchema(schema) => {
                let schema = match schema {
                    Value::Bool(true) => json!({}),
                    Value::Object(_) => schema.clone(),
                    _ => {
                        return Err(ConstraintError::new(
                            "invalid JSON schema: must be an object or `true`",
                        ))
                    }
                };
                (
                    "invalid JSON schema",
                    TopLevelGrammar::from_json_schema(self.with_ws(schema)),
                )
            }
            ConstraintSpec::Lark(src) => {
                if src.trim().is_empty() {
                    return Err(ConstraintError::new("invalid grammar: empty"));
                }
                ("invalid grammar", TopLevelGrammar::from_lark(src.clone()))
            }
            ConstraintSpec::Tools {
                functions,
                text_allowed,
            } => (
                "invalid tool definitions",
                TopLevelGrammar::from_lark(self.tools_lark(functions, *text_allowed)?),
            ),
            ConstraintSpec::FencedJson(schema) => {
                if !schema.is_object() {
                    return Err(ConstraintError::new(
                        "invalid JSON schema: must be an object",
                    ));
                }
                let schema = self.with_ws(schema.clone());
                (
                    "invalid JSON schema",
                    TopLevelGrammar::from_lark(format!(
                        "start: \"```json\\n\" %json {schema} \"\\n```\"\n"
                    )),
                )
            }
        };
        let parser = match self.factory.create_parser(grammar) {
            Ok(parser) => parser,
            Err(e) => {
                if let ConstraintSpec::Tools { functions, .. } = spec {
                    // Name the function whose parameters schema is broken.
                    for (name, params) in functions {
                        if !params.is_object() {
                            continue; // null / true are always valid
                        }
                        let schema =
                            TopLevelGrammar::from_json_schema(self.with_ws(params.clone()));
                        if let Err(e) = self.factory.create_parser(schema) {
                            return Err(ConstraintError::new(format!(
                                "{what}: parameters of {name:?}: {e}"
                            )));
                        }
                    }
                }
                return Err(ConstraintError::new(format!("{what}: {e}")));
            }
        };
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(ConstraintError::new(format!("{what}: {e}")));
        }
        Ok(Constraint {
            matcher,
            eos: self.eos,
            vocab_size: self.vocab_size,
        })
    }

    /// Adds our whitespace options unless the schema brings its own.
    fn with_ws(&self, mut schema: Value) -> Value {
        if let Value::Object(map) = &mut schema {
            if !map.contains_key("x-guidance") {
                map.insert("x-guidance".into(), self.json_whitespace.x_guidance());
            }
        }
        schema
    }

    /// One Lark alternative per function: the fixed wrapper text around a
    /// nested `%json` grammar for the arguments. Nesting keeps each
    /// parameters schema its own document, so its `$ref`s (`#/$defs/...`)
    /// resolve unchanged.
    fn tools_lark(
        &self,
        functions: &[(String, Value)],
        text_allowed: bool,
    ) -> Result<String, ConstraintError> {
        if functions.is_empty() {
            return Err(ConstraintError::new(
                "invalid tool definitions: no functions given",
            ));
        }
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(functions.len());
        for (name, params) in functions {
            if name.is_empty() {
                return Err(ConstraintError::new(
                    "invalid tool definitions: empty function name",
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(ConstraintError::new(format!(
                    "invalid tool definitions: duplicate function name {name:?}"
                )));
            }
            let schema = match params {
                Value::Null | Value::Bool(true) => json!({"type": "object"}),
                Value::Object(map) => {
                    let mut map = map.clone();
                    match map.get("type") {
                        None => {
                            map.insert("type".into(), json!("object"));
                        }
                        Some(Value::String(t)) if t == "object" => {}
                        Some(other) => {
                            return Err(ConstraintError::new(format!(
                                "invalid tool definitions: parameters of {name:?} must have \
                                 type \"object\", got {other}"
                            )))
                        }
                    }
                    Value::Object(map)
                }
                other => {
                    return Err(ConstraintError::new(format!(
                        "invalid tool definitions: parameters of {name:?} must be a JSON \
                         schema object, got {other}"
                    )))
                }
            };
            let schema = self.with_ws(schema);
            let (item_sep, key_sep) = match self.json_whitespace {
                JsonWhitespace::Compact => (", ", ": "),
                JsonWhitespace::Limited(_) | JsonWhitespace::Flexible => (",", ":"),
            };
            // Serialising a String cannot fail; Lark string literals use JSON syntax.
            let quoted_name = Value::String(name.clone()).to_string();
            let prefix =
                format!("{{\"name\"{key_sep}{quoted_name}{item_sep}\"arguments\"{key_sep}");
            let prefix_lit = Value::String(prefix).to_string();
            rules.push(format!("{prefix_lit} %json {schema} \"}}\""));
        }
        let mut lark = String::from(if text_allowed {
            "start: tool_call | TEXT\nTEXT: /[^{ \\t\\r\\n][\\s\\S]*/\ntool_call: "
        } else {
            "start: tool_call\ntool_call: "
        });
        lark.push_str(&rules.join("\n    | "));
        lark.push('\n');
        Ok(lark)
    }
}

/// Set of allowed next tokens.
#[derive(Clone)]
pub struct TokenMask {
    vob: SimpleVob,
    vocab_size: usize,
}

impl fmt::Debug for TokenMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMask")
            .field("allowed", &self.count())
            .field("vocab_size", &self.vocab_size)
            .finish()
    }
}

impl TokenMask {
    /// Whether `token` may be sampled next.
    pub fn is_allowed(&self, token: u32) -> bool {
        (token as usize) < self.vocab_size && self.vob.is_allowed(token)
    }

    /// Number of allowed tokens.
    pub fn count(&self) -> usize {
        self.vob.num_set()
    }

    /// Allowed token ids, ascending.
    pub fn allowed_ids(&self) -> Vec<u32> {
        self.vob.to_list()
    }

    /// Sets every disallowed entry of `logits` to `-inf`; entries past the
    /// vocabulary (padded logits) are disallowed too.
    pub fn apply(&self, logits: &mut [f32]) {
        let words = self.vob.as_slice();
        for (i, chunk) in logits.chunks_mut(32).enumerate() {
            let word = words.get(i).copied().unwrap_or(0);
            if word == u32::MAX {
                continue;
            }
            if word == 0 {
                chunk.fill(f32::NEG_INFINITY);
                continue;
            }
            for (bit, l) in chunk.iter_mut().enumerate() {
                if (word >> bit) & 1 == 0 {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
    }

    /// The underlying llguidance bit set (bit `id` set = allowed).
    pub fn as_simple_vob(&self) -> &SimpleVob {
        &self.vob
    }
}

/// Decoding state of one sequence under a compiled spec.
pub struct Constraint {
    matcher: Matcher,
    eos: u32,
    vocab_size: usize,
}

impl fmt::Debug for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Constraint")
            .field("stop_reason", &self.matcher.stop_reason())
            .finish_non_exhaustive()
    }
}

impl Constraint {
    /// Allowed next tokens; call before sampling. Once the constraint is
    /// finished this is just EOS. Errors if the constraint is in an error
    /// state (e.g. after a disallowed `commit`).
    pub fn allowed(&mut self) -> Result<TokenMask, ConstraintError> {
        let vob = self.matcher.compute_mask_or_eos().map_err(err)?;
        Ok(TokenMask {
            vob,
            vocab_size: self.vocab_size,
        })
    }

    /// Sets disallowed logits (and any past the vocabulary) to `-inf`.
    pub fn mask_logits(&mut self, logits: &mut [f32]) -> Result<(), ConstraintError> {
        self.allowed()?.apply(logits);
        Ok(())
    }

    /// Advances with the sampled token. A token outside the current mask is
    /// an error and leaves the constraint in an error state. EOS is accepted
    /// whenever it was allowed, including after [`Self::is_finished`].
    pub fn commit(&mut self, token: u32) -> Result<(), ConstraintError> {
        if self.matcher.is_stopped() && !self.matcher.is_error() {
            return if token == self.eos {
                Ok(())
            } else {
                Err(ConstraintError::new(format!(
                    "constraint is complete; only EOS may follow, got token {token}"
                )))
            };
        }
        self.matcher.consume_token(token).map_err(err)
    }

    /// True once the output is complete: EOS was committed, or the grammar
    /// is in a final state that admits no more text (only EOS allowed).
    /// Stop generating; the output so far is valid.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped() && !self.matcher.is_error()
    }

    /// True when the output so far is a complete member of the language,
    /// i.e. EOS is currently allowed.
    pub fn is_accepting(&mut self) -> Result<bool, ConstraintError> {
        if self.is_finished() {
            return Ok(true);
        }
        self.matcher.is_accepting().map_err(err)
    }

    /// The error that broke this constraint, if any.
    pub fn error(&self) -> Option<String> {
        self.matcher.get_error()
    }

    /// Non-fatal warnings from grammar compilation (e.g. ignored keywords).
    pub fn warnings(&mut self) -> Vec<String> {
        self.matcher.grammar_warnings()
    }
}

fn err(e: impl fmt::Display) -> ConstraintError {
    ConstraintError::new(e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn thread_safety() {
        assert_send_sync::<ConstraintFactory>();
        assert_send::<Constraint>();
        assert_send::<TokenMask>();
    }

    #[test]
    fn byte_level_table() {
        assert_eq!(byte_level_decode("Ġworld"), b" world");
        assert_eq!(byte_level_decode("Ċ"), b"\n");
        assert_eq!(byte_level_decode("ĉ"), b"\t");
        assert_eq!(byte_level_decode("<|im_end|>"), b"<|im_end|>");
        // U+0100 is byte 0, U+0143 (the last remapped char) is byte 0xAD.
        assert_eq!(byte_level_decode("\u{100}\u{143}"), vec![0u8, 0xAD]);
        // UTF-8 "é" (C3 A9) is stored as "Ã©".
        assert_eq!(byte_level_decode("Ã©"), "é".as_bytes());
        // Every byte round-trips through the forward table.
        for b in 0..=255u8 {
            let c = if is_self_mapped(b) {
                char::from(b)
            } else {
                let i = REMAPPED_BYTES.iter().position(|&x| x == b).unwrap();
                char::from_u32(0x100 + i as u32).unwrap()
            };
            assert_eq!(byte_level_decode(&c.to_string()), vec![b]);
        }
    }

    /// A small byte-level vocabulary laid out like SmolLM2's: specials at
    /// 0..=2, every single byte, then a few merges in GPT-2 unicode form.
    fn vocab() -> (Vec<Vec<u8>>, u32, Vec<u32>) {
        let mut toks: Vec<Vec<u8>> = vec![
            b"<|endoftext|>".to_vec(),
            b"<|im_start|>".to_vec(),
            b"<|im_end|>".to_vec(),
        ];
        for b in 0..=255u8 {
            toks.push(vec![b]);
        }
        for merge in [
            "{\"",
            "\":",
            "\",",
            "\"}",
            "Ġ\"",
            "Ġ{",
            "Ġ}",
            "true",
            "false",
            "null",
            "name",
            "Ġname",
            "arguments",
            "12",
            "345",
            "ĊĠĠ",
            "ĠĠ",
            "get",
            "_weather",
            "city",
            "Paris",
            "Ġ[",
            "],",
            "\"]",
            "<|im_end|>",
        ] {
            toks.push(byte_level_decode(merge));
        }
        (toks, 2, vec![0, 1, 2])
    }

    fn factory() -> ConstraintFactory {
        let (toks, eos, specials) = vocab();
        ConstraintFactory::new(toks, eos, &specials).unwrap()
    }

    /// xorshift64* for reproducible walks without a dev-dependency.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }
    }

    /// Random decoding walk: uniform over the mask for `wander` steps, then
    /// prefers EOS, then tokens made only of `closers` bytes, then
    /// punctuation-only tokens. Checks at every
    /// step that EOS is allowed exactly when the constraint is accepting.
    fn walk(
        c: &mut Constraint,
        toks: &[Vec<u8>],
        eos: u32,
        rng: &mut Rng,
        wander: usize,
        closers: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        for step in 0..5000 {
            if c.is_finished() {
                let m = c.allowed().unwrap();
                assert_eq!(m.allowed_ids(), vec![eos]);
                return out;
            }
            let m = c.allowed().unwrap();
            let ids = m.allowed_ids();
            assert!(!ids.is_empty());
            assert_eq!(m.is_allowed(eos), c.is_accepting().unwrap());
            let tok = if step < wander {
                ids[rng.below(ids.len())]
            } else if m.is_allowed(eos) {
                eos
            } else {
                let close: Vec<u32> = ids
                    .iter()
                    .copied()
                    .filter(|&t| {
                        let b = &toks[t as usize];
                        !b.is_empty() && b.iter().all(|x| closers.contains(x))
                    })
                    .collect();
                let punct: Vec<u32> = ids
                    .iter()
                    .copied()
                    .filter(|&t| {
                        let b = &toks[t as usize];
                        !b.is_empty() && !b.iter().any(u8::is_ascii_alphanumeric)
                    })
                    .collect();
                if !close.is_empty() {
                    close[rng.below(close.len())]
                } else if !punct.is_empty() {
                    punct[rng.below(punct.len())]
                } else {
                    ids[rng.below(ids.len())]
                }
            };
            c.commit(tok).unwrap();
            if tok == eos {
                assert!(c.is_finished());
                return out;
            }
            out.extend_from_slice(&toks[tok as usize]);
        }
        panic!("walk did not terminate: {}", String::from_utf8_lossy(&out));
    }

    /// Exact RFC 8259 syntax check (serde_json rejects huge exponents).
    mod json_syntax {
        pub fn is_object(s: &[u8]) -> bool {
            let mut p = P { s, i: 0 };
            p.ws();
            s.get(p.i) == Some(&b'{') && p.value() && {
                p.ws();
                p.i == s.len() && std::str::from_utf8(s).is_ok()
            }
        }

        struct P<'a> {
            s: &'a [u8],
            i: usize,
        }

        impl P<'_> {
            fn peek(&self) -> Option<u8> {
                self.s.get(self.i).copied()
            }
            fn eat(&mut self, c: u8) -> bool {
                let ok = self.peek() == Some(c);
                self.i += usize::from(ok);
                ok
            }
            fn ws(&mut self) {
                while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
                    self.i += 1;
                }
            }
            fn lit(&mut self, w: &[u8]) -> bool {
                let ok = self.s[self.i..].starts_with(w);
                self.i += if ok { w.len() } else { 0 };
                ok
            }
            fn digits(&mut self) -> usize {
                let st = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                self.i - st
            }
            fn value(&mut self) -> bool {
                self.ws();
                let ok = match self.peek() {
                    Some(b'{') => self.seq(b'}', true),
                    Some(b'[') => self.seq(b']', false),
                    Some(b'"') => self.string(),
                    Some(b't') => self.lit(b"true"),
                    Some(b'f') => self.lit(b"false"),
                    Some(b'n') => self.lit(b"null"),
                    _ => self.number(),
                };
                self.ws();
                ok
            }
            fn seq(&mut self, close: u8, object: bool) -> bool {
                self.i += 1;
                self.ws();
                if self.eat(close) {
                    return true;
                }
                loop {
                    if object {
                        self.ws();
                        if !(self.string() && {
                            self.ws();
                            self.eat(b':')
                        }) {
                            return false;
                        }
                    }
                    if !self.value() {
                        return false;
                    }
                    if self.eat(close) {
                        return true;
                    }
                    if !self.eat(b',') {
                        return false;
                    }
                }
            }
            fn string(&mut self) -> bool {
                if !self.eat(b'"') {
                    return false;
                }
                while let Some(c) = self.peek() {
                    self.i += 1;
                    match c {
                        b'"' => return true,
                        b'\\' => match self.peek() {
                            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                                self.i += 1
                            }
                            Some(b'u') => {
                                self.i += 1;
                                for _ in 0..4 {
                                    if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                        return false;
                                    }
                                    self.i += 1;
                                }
                            }
                            _ => return false,
                        },
                        0..=0x1f => return false,
                        _ => {}
                    }
                }
                false
            }
            fn number(&mut self) -> bool {
                self.eat(b'-');
                if !self.eat(b'0') && self.digits() == 0 {
                    return false;
                }
                if self.eat(b'.') && self.digits() == 0 {
                    return false;
                }
                if self.eat(b'e') || self.eat(b'E') {
                    let _ = self.eat(b'+') || self.eat(b'-');
                    if self.digits() == 0 {
                        return false;
                    }
                }
                true
            }
        }

        #[test]
        fn checker_works() {
            for ok in [
                &b"{}"[..],
                b"{\"a\": [1, -0.5e+3, \"x\\u00e9\", true, null, {}]}",
            ] {
                assert!(is_object(ok), "{}", String::from_utf8_lossy(ok));
            }
            for bad in [
                &b"{"[..],
                b"[]",
                b"{\"a\":01}",
                b"{\"a\" 1}",
                b"{}}",
                b"{\"a\":1,}",
            ] {
                assert!(!is_object(bad), "{}", String::from_utf8_lossy(bad));
            }
        }
    }

    #[test]
    fn json_object_walks() {
        let f = factory();
        let (toks, eos, _) = vocab();
        let mut rng = Rng(7);
        for _ in 0..30 {
            let mut c = f.compile(&ConstraintSpec::JsonObject).unwrap();
            let out = walk(&mut c, &toks, eos, &mut rng, 12, b"\"}]");
            // serde_json refuses valid numbers such as 1e999, so check syntax by hand.
            assert!(
                json_syntax::is_object(&out),
                "{}",
                String::from_utf8_lossy(&out)
            );
        }
    }

    #[test]
    fn json_schema_walks() {
        let f = factory();
        let (toks, eos, _) = vocab();
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 8},
                "n": {"type": "integer", "minimum": 0, "maximum": 99},
                "ok": {"type": "boolean"}
            },
            "required": ["name", "n"],
            "additionalProperties": false
        });
        let mut rng = Rng(11);
        for _ in 0..30 {
            let mut c = f
                .compile(&ConstraintSpec::JsonSchema(schema.clone()))
                .unwrap();
            let out = walk(&mut c, &toks, eos, &mut rng, 20, b"\"}");
            let v: Value = serde_json::from_slice(&out).unwrap();
            let o = v.as_object().unwrap();
            assert!(o.keys().all(|k| ["name", "n", "ok"].contains(&k.as_str())));
            assert!(o["name"].as_str().unwrap().chars().count() <= 8);
            assert!(o["n"].as_u64().unwrap() <= 99);
            assert!(o.get("ok").is_none_or(Value::is_boolean));
        }
    }

    #[test]
    fn lark_walks() {
        let f = factory();
        let (toks, eos, _) = vocab();
        let g = "start: \"(\" NUM (\",\" NUM)* \")\"\nNUM: /[0-9]{1,3}/\n";
        let mut rng = Rng(3);
        for _ in 0..30 {
            let mut c = f.compile(&ConstraintSpec::Lark(g.into())).unwrap();
            let out = walk(&mut c, &toks, eos, &mut rng, 10, b")");
            let s = String::from_utf8(out).unwrap();
            let inner = s
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .unwrap();
            for n in inner.split(',') {
                assert!((1..=3).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn tools_walks() {
        let f = factory();
        let (toks, eos, _) = vocab();
        let functions = vec![
            (
                "get_weather".to_string(),
                json!({"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"], "additionalProperties": false}),
            ),
            ("a\"b".to_string(), Value::Null),
        ];
        let spec = ConstraintSpec::Tools {
            functions: functions.clone(),
            text_allowed: false,
        };
        let mut rng = Rng(5);
        let mut names = HashSet::new();
        for _ in 0..30 {
            let mut c = f.compile(&spec).unwrap();
            let out = walk(&mut c, &toks, eos, &mut rng, 12, b"\"}");
            let v: Value = serde_json::from_slice(&out).unwrap();
            let name = v["name"].as_str().unwrap();
            let args = v["arguments"].as_object().unwrap();
            match name {
                "get_weather" => {
                    assert!(args["city"].is_string());
                    assert_eq!(args.len(), 1);
                }
                "a\"b" => {}
                other => panic!("unexpected name {other}"),
            }
            names.insert(name.to_string());
        }
        assert_eq!(names.len(), 2);

        // `auto`: a call, or text that does not start like one.
        let spec = ConstraintSpec::Tools {
            functions,
            text_allowed: true,
        };
        let brace = 3 + u32::from(b'{');
        let (mut calls, mut texts) = (0, 0);
        for run in 0..40 {
            let mut c = f.compile(&spec).unwrap();
            let mut out = Vec::new();
            if run % 2 == 0 {
                // A uniform walk rarely picks `{` first: start half the calls by hand.
                c.commit(brace).unwrap();
                out.push(b'{');
            }
            out.extend(walk(&mut c, &toks, eos, &mut rng, 6, b"\"}"));
            match out.first() {
                Some(b'{') => {
                    let v: Value = serde_json::from_slice(&out).unwrap();
                    assert!(v["arguments"].is_object(), "{v}");
                    calls += 1;
                }
                Some(b) => {
                    assert!(!b.is_ascii_whitespace());
                    texts += 1;
                }
                None => panic!("empty output"),
            }
        }
        assert!(calls > 0 && texts > 0, "calls {calls}, texts {texts}");
    }

    #[test]
    fn fenced_json_walks() {
        let f = factory();
        let (toks, eos, _) = vocab();
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}},
                            "required": ["n"], "additionalProperties": false});
        let mut rng = Rng(9);
        for _ in 0..20 {
            let mut c = f
                .compile(&ConstraintSpec::FencedJson(schema.clone()))
                .unwrap();
            let out = walk(&mut c, &toks, eos, &mut rng, 10, b"}`");
            let s = String::from_utf8(out).unwrap();
            let body = s
                .strip_prefix("```json\n")
                .and_then(|s| s.strip_suffix("\n```"))
                .unwrap_or_else(|| panic!("not fenced: {s:?}"));
            let v: Value = serde_json::from_str(body).unwrap();
            // JSON Schema counts 1.0 (and llguidance -0.0) as an integer.
            assert!(v["n"].as_f64().is_some_and(|n| n.fract() == 0.0), "{v}");
        }
    }

    #[test]
    fn object_closes_then_only_eos() {
        let f = factory();
        let (toks, eos, _) = vocab();
        let id = |s: &str| toks.iter().position(|t| t == s.as_bytes()).unwrap() as u32;
        let mut c = f.compile(&ConstraintSpec::JsonObject).unwrap();
        assert!(!c.allowed().unwrap().is_allowed(eos));
        // Special tokens never match grammar text, even their literal bytes.
        assert!(!c.allowed().unwrap().is_allowed(0));
        c.commit(id("{")).unwrap();
        assert!(!c.is_finished());
        c.commit(id("}")).unwrap();
        assert!(c.is_finished());
        assert_eq!(c.allowed().unwrap().allowed_ids(), vec![eos]);
        assert!(c.commit(id("}")).is_err());
        c.commit(eos).unwrap();
        assert!(c.is_finished());
    }

    #[test]
    fn disallowed_commit_is_error() {
        let f = factory();
        let (toks, eos, _) = vocab();
        let id = |s: &str| toks.iter().position(|t| t == s.as_bytes()).unwrap() as u32;
        let mut c = f.compile(&ConstraintSpec::JsonObject).unwrap();
        assert!(c.commit(id("x")).is_err());
        assert!(c.allowed().is_err());
        assert!(!c.is_finished());
        assert!(c.error().is_some());
        // EOS before the value is complete is refused too.
        let mut c = f.compile(&ConstraintSpec::JsonObject).unwrap();
        assert!(c.commit(eos).is_err());
    }

    #[test]
    fn mask_logits_matches_mask() {
        let f = factory();
        let mut c = f.compile(&ConstraintSpec::JsonObject).unwrap();
        let m = c.allowed().unwrap();
        // Padded logits: extra entries must be masked as well.
        let mut logits = vec![0.5f32; f.vocab_size() + 40];
        c.mask_logits(&mut logits).unwrap();
        for (i, l) in logits.iter().enumerate() {
            assert_eq!(l.is_finite(), m.is_allowed(i as u32), "token {i}");
        }
        assert_eq!(logits.iter().filter(|l| l.is_finite()).count(), m.count());
    }

    #[test]
    fn whitespace_modes() {
        let (toks, eos, specials) = vocab();
        let nl = toks.iter().position(|t| t == b"\n").unwrap() as u32;
        let brace = toks.iter().position(|t| t == b"{").unwrap() as u32;
        for (ws, allows_nl) in [
            (JsonWhitespace::Compact, false),
            (JsonWhitespace::Limited(4), true),
            (JsonWhitespace::Flexible, true),
        ] {
            let f = ConstraintFactory::new(toks.clone(), eos, &specials)
                .unwrap()
                .with_json_whitespace(ws);
            let mut c = f.compile(&ConstraintSpec::JsonObject).unwrap();
            c.commit(brace).unwrap();
            assert_eq!(c.allowed().unwrap().is_allowed(nl), allows_nl, "{ws:?}");
        }
        // Limited: a run longer than the bound is refused.
        let f = ConstraintFactory::new(toks.clone(), eos, &specials)
            .unwrap()
            .with_json_whitespace(JsonWhitespace::Limited(2));
        let mut c = f.compile(&ConstraintSpec::JsonObject).unwrap();
        c.commit(brace).unwrap();
        c.commit(nl).unwrap();
        c.commit(nl).unwrap();
        assert!(!c.allowed().unwrap().is_allowed(nl));
    }

    #[test]
    fn invalid_specs_are_errors() {
        let f = factory();
        let bad = [
            ConstraintSpec::JsonSchema(json!({"type": "bogus"})),
            ConstraintSpec::JsonSchema(json!({"type": "object", "properties": 5})),
            ConstraintSpec::JsonSchema(json!(42)),
            ConstraintSpec::Lark("start: foo\n".into()),
            ConstraintSpec::Lark("start: (\"a\"\n".into()),
            ConstraintSpec::Lark("   ".into()),
            ConstraintSpec::Tools {
                functions: vec![],
                text_allowed: false,
            },
            ConstraintSpec::Tools {
                functions: vec![("f".into(), json!({"type": "string"}))],
                text_allowed: false,
            },
            ConstraintSpec::Tools {
                functions: vec![("f".into(), Value::Null), ("f".into(), Value::Null)],
                text_allowed: true,
            },
            ConstraintSpec::FencedJson(json!(true)),
            ConstraintSpec::FencedJson(json!({"type": "bogus"})),
        ];
        for spec in bad {
            let e = f.compile(&spec).unwrap_err();
            assert!(!e.message().is_empty());
            println!("{spec:?} -> {e}");
        }
        let e = f
            .compile(&ConstraintSpec::Lark("start: foo\n".into()))
            .unwrap_err();
        assert!(e.message().contains("foo"), "{e}");
        let e = f
            .compile(&ConstraintSpec::JsonSchema(json!({"type": "bogus"})))
            .unwrap_err();
        assert!(e.message().contains("bogus"), "{e}");
        let e = f
            .compile(&ConstraintSpec::Tools {
                functions: vec![
                    ("fine".into(), Value::Null),
                    (
                        "broken".into(),
                        json!({"properties": {"x": {"type": "nope"}}}),
                    ),
                ],
                text_allowed: false,
            })
            .unwrap_err();
        assert!(
            e.message().contains("\"broken\"") && e.message().contains("nope"),
            "{e}"
        );
    }

    #[test]
    fn factory_rejects_bad_ids() {
        let (toks, _, _) = vocab();
        assert!(ConstraintFactory::new(toks.clone(), 10_000, &[]).is_err());
        assert!(ConstraintFactory::new(toks, 2, &[10_000]).is_err());
        assert!(ConstraintFactory::new(vec![], 0, &[]).is_err());
    }
}
