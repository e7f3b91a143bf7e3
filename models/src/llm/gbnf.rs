//! GBNF → Lark translation for grammar-constrained generation.
//!
//! Clients ask for constrained output with llama.cpp GBNF grammars (Fireworks' "grammar mode":
//! `response_format={"type":"grammar","grammar":"<GBNF>"}`), but the constraint engine,
//! `llguidance`, reads its own Lark dialect, not GBNF. This module owns that bridge: it parses
//! GBNF the way llama.cpp's `llama_grammar_parser` does (same escapes, newline rules, repetition
//! limits, tokens `<[id]>`/`!<[id]>`/`<text>`, and "the last definition of a rule wins"), reports
//! mistakes with line and column, and prints a Lark grammar with the same language whose start
//! rule is `start`.
//!
//! Matching the language takes care: GBNF matches character by character, while llguidance's
//! lexer is greedy (a lexeme keeps going while the next byte can extend it). Rules that only spell
//! characters become Lark terminals (UPPERCASE, one regex each, which makes token masks about 100×
//! cheaper than one lexeme per character), but only where greediness cannot cut off a valid parse:
//! nothing that may follow the terminal can extend it, and no other lexeme in rule context starts
//! with a character it starts with. Otherwise the rule stays a Lark rule, and clashing multi-character
//! string literals are split into one-character lexemes, which cannot clash (see `Facts`).

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

/// llama.cpp refuses repetition minimums above this and treats larger maximums as unbounded.
const MAX_REPETITION: u64 = 2000;
/// Deepest nesting of groups (and of parenthesised repetitions) accepted; llguidance's Lark
/// parser stops at 30 levels, and the recursive passes here must stay shallow.
const MAX_DEPTH: usize = 25;

/// Why a GBNF grammar could not be translated; the message names the line/column and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GbnfError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for GbnfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GBNF grammar error at line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for GbnfError {}

/// One item of a GBNF sequence.
#[derive(Debug, Clone)]
enum Node {
    /// A string literal (possibly empty).
    Lit(String),
    /// A character class as inclusive code-point ranges (surrogates already cut out).
    Class {
        negated: bool,
        ranges: Vec<(u32, u32)>,
    },
    /// `.`: any single character, newline included.
    Any,
    /// A reference to another rule by its GBNF name.
    Ref(String),
    /// A tokenizer token, already in Lark form (`<[123]>`, `<[^123]>`, `<think>`).
    Token(String),
    /// A parenthesised list of alternatives.
    Group(Vec<Vec<Node>>),
    /// `node{min,max}`; `max == None` means unbounded.
    Repeat {
        node: Box<Node>,
        min: u64,
        max: Option<u64>,
    },
}

type Alternatives = Vec<Vec<Node>>;

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Groups currently open.
    depth: usize,
    /// Rules in order of first definition; a later definition replaces the body (as llama.cpp).
    rules: Vec<(String, Alternatives)>,
    /// Every rule reference with its position, to report undefined rules.
    refs: Vec<(String, usize)>,
}

/// Parentheses the node may need in Lark (a repetition of a repetition or literal may add one).
fn depth(node: &Node) -> usize {
    match node {
        Node::Group(alts) => 1 + alts.iter().flatten().map(depth).max().unwrap_or(0),
        Node::Repeat { node, .. } => {
            depth(node) + usize::from(matches!(**node, Node::Repeat { .. } | Node::Lit(_)))
        }
        _ => 0,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl Parser {
    fn err(&self, pos: usize, message: impl Into<String>) -> GbnfError {
        let before = &self.chars[..pos.min(self.chars.len())];
        let line = before.iter().filter(|&&c| c == '\n').count() + 1;
        let column = before.iter().rev().take_while(|&&c| c != '\n').count() + 1;
        GbnfError {
            line,
            column,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Skips blanks and `#` comments; newlines only where `newline_ok`.
    fn skip_space(&mut self, newline_ok: bool) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' => self.pos += 1,
                '\r' | '\n' if newline_ok => self.pos += 1,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\r' && c != '\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn parse_grammar(&mut self) -> Result<(), GbnfError> {
        self.skip_space(true);
        if self.peek().is_none() {
            return Err(self.err(self.pos, "empty grammar: expected at least `root ::= ...`"));
        }
        while self.peek().is_some() {
            self.parse_rule()?;
        }
        Ok(())
    }

    fn parse_name(&mut self) -> Result<String, GbnfError> {
        let start = self.pos;
        while self.peek().is_some_and(is_word_char) {
            self.pos += 1;
        }
        if start == self.pos {
            let found = self
                .peek()
                .map_or("end of input".to_string(), |c| format!("`{c}`"));
            return Err(self.err(start, format!("expected a rule name, found {found}")));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn parse_rule(&mut self) -> Result<(), GbnfError> {
        let name = self.parse_name()?;
        self.skip_space(false);
        if self.chars.get(self.pos..self.pos + 3) != Some(&[':', ':', '='][..]) {
            return Err(self.err(self.pos, format!("expected `::=` after rule name `{name}`")));
        }
        self.pos += 3;
        self.skip_space(true);
        let alts = self.parse_alternates(false)?;
        match self.peek() {
            None => {}
            Some('\n') => self.pos += 1,
            Some('\r') => {
                self.pos += if self.chars.get(self.pos + 1) == Some(&'\n') {
                    2
                } else {
                    1
                }
            }
            Some(c) => {
                let msg =
                    format!("unexpected `{c}`: expected an item, `|`, or the end of the line");
                return Err(self.err(self.pos, msg));
            }
        }
        self.skip_space(true);
        match self.rules.iter_mut().find(|(n, _)| *n == name) {
            Some(rule) => rule.1 = alts,
            None => self.rules.push((name, alts)),
        }
        Ok(())
    }

    fn parse_alternates(&mut self, nested: bool) -> Result<Alternatives, GbnfError> {
        let mut alts = vec![self.parse_sequence(nested)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            self.skip_space(true);
            alts.push(self.parse_sequence(nested)?);
        }
        Ok(alts)
    }

    fn parse_sequence(&mut self, nested: bool) -> Result<Vec<Node>, GbnfError> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            let start = self.pos;
            let node = match c {
                '"' => {
                    self.pos += 1;
                    let mut lit = String::new();
                    while self.peek() != Some('"') {
                        let at = self.pos;
                        let cp = self.parse_char(start, "string literal")?;
                        let msg = format!("U+{cp:04X} is not a Unicode scalar value");
                        lit.push(char::from_u32(cp).ok_or_else(|| self.err(at, msg))?);
                    }
                    self.pos += 1;
                    Node::Lit(lit)
                }
                '[' => self.parse_class()?,
                '<' | '!' => self.parse_token()?,
                '(' => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(self.err(start, format!("groups nest deeper than {MAX_DEPTH}")));
                    }
                    self.pos += 1;
                    self.skip_space(true);
                    let alts = self.parse_alternates(true)?;
                    self.depth -= 1;
                    match self.peek() {
                        Some(')') => self.pos += 1,
                        None => return Err(self.err(start, "unterminated group: missing `)`")),
                        Some(c) => {
                            return Err(self.err(self.pos, format!("expected `)`, found `{c}`")))
                        }
                    }
                    let node = Node::Group(alts);
                    if depth(&node) > MAX_DEPTH {
                        return Err(self.err(start, format!("groups nest deeper than {MAX_DEPTH}")));
                    }
                    node
                }
                '.' => {
                    self.pos += 1;
                    Node::Any
                }
                '*' | '+' | '?' | '{' => {
                    let (min, max) = self.parse_repetition(nested)?;
                    let Some(last) = seq.pop() else {
                        return Err(
                            self.err(start, format!("`{c}` has no preceding item to repeat"))
                        );
                    };
                    let node = Node::Repeat {
                        node: Box::new(last),
                        min,
                        max,
                    };
                    if depth(&node) > MAX_DEPTH {
                        return Err(self.err(start, format!("groups nest deeper than {MAX_DEPTH}")));
                    }
                    node
                }
                c if is_word_char(c) => {
                    let name = self.parse_name()?;
                    self.refs.push((name.clone(), start));
                    Node::Ref(name)
                }
                _ => break,
            };
            seq.push(node);
            self.skip_space(nested);
        }
        Ok(seq)
    }

    /// One possibly escaped character of a literal or class opened at `open`.
    fn parse_char(&mut self, open: usize, what: &str) -> Result<u32, GbnfError> {
        let at = self.pos;
        let unterminated = |p: &Self| p.err(open, format!("unterminated {what}"));
        let c = self.bump().ok_or_else(|| unterminated(self))?;
        if c != '\\' {
            return Ok(c as u32);
        }
        let e = self.bump().ok_or_else(|| unterminated(self))?;
        let digits = match e {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            't' => return Ok(0x09),
            'r' => return Ok(0x0D),
            'n' => return Ok(0x0A),
            '\\' | '"' | '[' | ']' | '-' => return Ok(e as u32),
            _ => return Err(self.err(at, format!("unknown escape `\\{e}`"))),
        };
        let mut value = 0u32;
        for _ in 0..digits {
            let Some(d) = self.peek().and_then(|c| c.to_digit(16)) else {
                return Err(self.err(at, format!("escape `\\{e}` needs {digits} hex digits")));
            };
            value = value * 16 + d;
            self.pos += 1;
        }
        Ok(value)
    }

    fn parse_class(&mut self) -> Result<Node, GbnfError> {
        let open = self.pos;
        self.pos += 1;
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err(open, "unterminated character class")),
                Some(']') => break,
                Some(_) => {}
            }
            let at = self.pos;
            let lo = self.parse_char(open, "character class")?;
            let mut hi = lo;
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&c| c != ']') {
                self.pos += 1;
                hi = self.parse_char(open, "character class")?;
            }
            if hi > 0x10FFFF {
                return Err(self.err(
                    at,
                    format!("U+{hi:X} is beyond the last code point U+10FFFF"),
                ));
            }
            if lo > hi {
                return Err(self.err(at, format!("range U+{lo:04X}-U+{hi:04X} is reversed")));
            }
            // Cut surrogates out: they are not characters, and regexes reject them.
            let lo = if (0xD800..=0xDFFF).contains(&lo) {
                0xE000
            } else {
                lo
            };
            let hi = if (0xD800..=0xDFFF).contains(&hi) {
                0xD7FF
            } else {
                hi
            };
            if lo > hi {
                return Err(self.err(at, "surrogate code points are not characters"));
            }
            ranges.push((lo, hi));
        }
        self.pos += 1;
        if ranges.is_empty() {
            return Err(self.err(open, "empty character class"));
        }
        Ok(Node::Class { negated, ranges })
    }

    /// `<[id]>`, `!<[id]>` or `<text>` (llama.cpp's tokenizer tokens).
    fn parse_token(&mut self) -> Result<Node, GbnfError> {
        let start = self.pos;
        let negated = self.peek() == Some('!');
        if negated {
            self.pos += 1;
        }
        if self.bump() != Some('<') {
            return Err(self.err(start, "expected `<` after `!`"));
        }
        let mut body = String::new();
        loop {
            match self.bump() {
                None => return Err(self.err(start, "unterminated token: missing `>`")),
                Some('>') => break,
                Some(c) => body.push(c),
            }
        }
        if let Some(id) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
            let caret = if negated { "^" } else { "" };
            return match id.parse::<u32>() {
                Ok(id) => Ok(Node::Token(format!("<[{caret}{id}]>"))),
                Err(_) => Err(self.err(start, format!("bad token id `{id}`"))),
            };
        }
        if negated {
            return Err(self.err(
                start,
                format!("`!<{body}>` is not supported; use `!<[id]>`"),
            ));
        }
        if body.is_empty() || body.chars().any(|c| c.is_whitespace() || c == '<') {
            return Err(self.err(start, format!("bad token `<{body}>`")));
        }
        Ok(Node::Token(format!("<{body}>")))
    }

    fn parse_int(&mut self, open: usize) -> Result<u64, GbnfError> {
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.err(self.pos, "expected a number in repetition"));
        }
        let mut value = 0u64;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d)))
                .ok_or_else(|| self.err(open, "repetition count is too large"))?;
            self.pos += 1;
        }
        Ok(value)
    }

    /// `*`, `+`, `?`, `{m}`, `{m,}` or `{m,n}` as (min, max).
    fn parse_repetition(&mut self, nested: bool) -> Result<(u64, Option<u64>), GbnfError> {
        let open = self.pos;
        match self.bump() {
            Some('*') => return Ok((0, None)),
            Some('+') => return Ok((1, None)),
            Some('?') => return Ok((0, Some(1))),
            _ => {}
        }
        self.skip_space(nested);
        let min = self.parse_int(open)?;
        self.skip_space(nested);
        let max = match self.bump() {
            Some('}') => Some(min),
            Some(',') => {
                self.skip_space(nested);
                let max = match self.peek() {
                    Some(c) if c.is_ascii_digit() => Some(self.parse_int(open)?),
                    _ => None,
                };
                self.skip_space(nested);
                if self.bump() != Some('}') {
                    return Err(self.err(open, "unterminated repetition: missing `}`"));
                }
                max
            }
            _ => return Err(self.err(open, "expected `,` or `}` in repetition")),
        };
        if min > MAX_REPETITION {
            let msg = format!("repetition minimum {min} exceeds the limit of {MAX_REPETITION}");
            return Err(self.err(open, msg));
        }
        match max {
            Some(max) if max < min => Err(self.err(
                open,
                format!("repetition maximum {max} is below minimum {min}"),
            )),
            Some(max) if max > MAX_REPETITION => Ok((min, None)), // as llama.cpp
            _ => Ok((min, max)),
        }
    }
}

/// Translates a GBNF grammar (start rule `root`) into llguidance Lark syntax (start rule `start`).
///
/// Rule names are lower-cased with `-` turned into `_` (terminals are the upper-case form), made
/// unique with a `_2`, `_3`... suffix where two names would clash; `root` becomes `start`.
pub fn gbnf_to_lark(gbnf: &str) -> Result<String, GbnfError> {
    let mut p = Parser {
        chars: gbnf.chars().collect(),
        pos: 0,
        depth: 0,
        rules: vec![],
        refs: vec![],
    };
    p.parse_grammar()?;
    let index: HashMap<&str, usize> = p
        .rules
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    for (name, pos) in &p.refs {
        if !index.contains_key(name.as_str()) {
            return Err(p.err(*pos, format!("undefined rule `{name}`")));
        }
    }
    let Some(&root) = index.get("root") else {
        return Err(p.err(0, "missing `root` rule (the grammar's start)"));
    };
    let facts = Facts::new(&p.rules, index);
    let (terminal, split) = facts.choose_terminals(root);

    let mut used: HashSet<String> = HashSet::from(["start".to_string()]);
    let mut names = HashMap::new();
    for (i, (name, _)) in p.rules.iter().enumerate() {
        let lark = if i == root {
            "start".to_string()
        } else {
            let mut base: String = name
                .chars()
                .map(|c| {
                    if c == '-' {
                        '_'
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
                base.insert_str(0, "r_");
            }
            let mut candidate = base.clone();
            for n in 2.. {
                if !used.contains(&candidate) {
                    break;
                }
                candidate = format!("{base}_{n}");
            }
            used.insert(candidate.clone());
            if terminal[i] {
                candidate.to_ascii_uppercase()
            } else {
                candidate
            }
        };
        names.insert(name.as_str(), lark);
    }

    let emit = Emit { names, split };
    let mut out = String::new();
    for (i, (name, alts)) in p.rules.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}: {}",
            emit.names[name.as_str()],
            emit.alts(alts, !terminal[i])
        );
    }
    Ok(out)
}

/// A set of code points: sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Chars(Vec<(u32, u32)>);

impl Chars {
    fn from_ranges(mut ranges: Vec<(u32, u32)>) -> Self {
        ranges.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Chars(out)
    }

    fn of_str(s: &str) -> Self {
        Self::from_ranges(s.chars().map(|c| (c as u32, c as u32)).collect())
    }

    fn class(negated: bool, ranges: &[(u32, u32)]) -> Self {
        let set = Self::from_ranges(ranges.to_vec());
        if !negated {
            return set;
        }
        let (mut out, mut next) = (Vec::new(), 0);
        for &(lo, hi) in &set.0 {
            if lo > next {
                out.push((next, lo - 1));
            }
            next = hi + 1;
        }
        if next <= 0x10FFFF {
            out.push((next, 0x10FFFF));
        }
        Chars(out)
    }

    /// Adds `other`; returns whether that changed the set.
    fn add(&mut self, other: &Chars) -> bool {
        if other.0.is_empty() {
            return false;
        }
        let merged = Self::from_ranges(self.0.iter().chain(&other.0).copied().collect());
        let changed = merged != *self;
        *self = merged;
        changed
    }

    fn intersects(&self, other: &Chars) -> bool {
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        while let (Some(&&x), Some(&&y)) = (a.peek(), b.peek()) {
            if x.1 < y.0 {
                a.next();
            } else if y.1 < x.0 {
                b.next();
            } else {
                return true;
            }
        }
        false
    }
}

/// For each set, whether it shares a code point with another set of the list.
fn overlapping(sets: &[&Chars]) -> Vec<bool> {
    let mut ranges: Vec<(u32, u32, usize)> = sets
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.0.iter().map(move |&(lo, hi)| (lo, hi, i)))
        .collect();
    ranges.sort_unstable();
    let mut hit = vec![false; sets.len()];
    let mut top: Option<(u32, usize)> = None; // the furthest range end so far, and its set
    for (lo, hi, i) in ranges {
        match top {
            Some((end, owner)) if lo <= end => {
                hit[i] = true;
                hit[owner] = true;
                if hi > end {
                    top = Some((hi, i));
                }
            }
            _ => top = Some((hi, i)),
        }
    }
    hit
}

/// How a would-be terminal behaves under greedy lexing.
#[derive(Debug, Clone, Default)]
struct Shape {
    /// Characters that can extend one of its complete matches (an over-approximation).
    cont: Chars,
    /// Every character it can contain.
    all: Chars,
    /// Its longest match in characters, capped at 2.
    len: u8,
}

/// How to make a conflicting lexeme safe.
enum Fix {
    None,
    Demote(usize),
    Split(String),
}

/// Grammar-wide facts used to decide which rules can be Lark terminals.
///
/// llguidance lexes greedily: a lexeme keeps going while the next byte can extend it. A terminal
/// is therefore kept only if (1) no character that could follow it can also extend it, and (2) no
/// other lexeme in rule context starts with a character it starts with (otherwise the lexer may
/// pick the longer one when the shorter was meant). Conflicting terminals are demoted to rules and
/// conflicting string literals are split into one-character lexemes, which cannot conflict.
struct Facts<'a> {
    rules: &'a [(String, Alternatives)],
    index: HashMap<&'a str, usize>,
    nullable: Vec<bool>,
    first: Vec<Chars>,
}

impl<'a> Facts<'a> {
    fn new(rules: &'a [(String, Alternatives)], index: HashMap<&'a str, usize>) -> Self {
        let n = rules.len();
        let mut f = Facts {
            rules,
            index,
            nullable: vec![false; n],
            first: vec![Chars::default(); n],
        };
        let mut changed = true;
        while changed {
            changed = false;
            for (i, (_, alts)) in rules.iter().enumerate() {
                let nullable = alts.iter().any(|s| f.seq_nullable(s));
                let mut first = f.first[i].clone();
                for seq in alts {
                    first.add(&f.seq_first(seq));
                }
                if nullable != f.nullable[i] || first != f.first[i] {
                    (f.nullable[i], f.first[i], changed) = (nullable, first, true);
                }
            }
        }
        f
    }

    fn rule(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn nullable(&self, node: &Node) -> bool {
        match node {
            Node::Lit(s) => s.is_empty(),
            Node::Class { .. } | Node::Any | Node::Token(_) => false,
            Node::Ref(name) => self.rule(name).is_some_and(|i| self.nullable[i]),
            Node::Group(alts) => alts.iter().any(|s| self.seq_nullable(s)),
            Node::Repeat { node, min, max } => *min == 0 || *max == Some(0) || self.nullable(node),
        }
    }

    fn seq_nullable(&self, seq: &[Node]) -> bool {
        seq.iter().all(|n| self.nullable(n))
    }

    /// Characters that can start a non-empty match.
    fn first(&self, node: &Node) -> Chars {
        match node {
            Node::Lit(s) => s
                .chars()
                .next()
                .map_or_else(Chars::default, |c| Chars::of_str(&c.to_string())),
            Node::Class { negated, ranges } => Chars::class(*negated, ranges),
            Node::Any => Chars(vec![(0, 0x10FFFF)]),
            Node::Token(_) | Node::Repeat { max: Some(0), .. } => Chars::default(),
            Node::Ref(name) => self
                .rule(name)
                .map_or_else(Chars::default, |i| self.first[i].clone()),
            Node::Group(alts) => {
                let mut first = Chars::default();
                for seq in alts {
                    first.add(&self.seq_first(seq));
                }
                first
            }
            Node::Repeat { node, .. } => self.first(node),
        }
    }

    fn seq_first(&self, seq: &[Node]) -> Chars {
        let mut first = Chars::default();
        for node in seq {
            first.add(&self.first(node));
            if !self.nullable(node) {
                break;
            }
        }
        first
    }

    fn shape(&self, node: &Node, memo: &mut [Option<Shape>]) -> Shape {
        match node {
            Node::Lit(s) => Shape {
                cont: Chars::default(),
                all: Chars::of_str(s),
                len: s.chars().take(2).count() as u8,
            },
            Node::Class { .. } | Node::Any => Shape {
                cont: Chars::default(),
                all: self.first(node),
                len: 1,
            },
            Node::Token(_) | Node::Repeat { max: Some(0), .. } => Shape::default(),
            Node::Ref(name) => self
                .rule(name)
                .map_or_else(Shape::default, |i| self.rule_shape(i, memo)),
            Node::Group(alts) => self.alts_shape(alts, memo),
            Node::Repeat {
                node: inner,
                min,
                max,
            } => {
                let (shape, first) = (self.shape(inner, memo), self.first(inner));
                let mut cont = shape.cont.clone();
                if *max != Some(*min) {
                    cont.add(&first); // another copy may start
                }
                if *max != Some(1) && shape.cont.intersects(&first) {
                    cont.add(&shape.all); // copies may split differently
                }
                let len = if shape.len == 0 || *max == Some(1) {
                    shape.len
                } else {
                    2
                };
                Shape {
                    cont,
                    all: shape.all,
                    len,
                }
            }
        }
    }

    fn rule_shape(&self, i: usize, memo: &mut [Option<Shape>]) -> Shape {
        if let Some(shape) = &memo[i] {
            return shape.clone();
        }
        let everything = Chars(vec![(0, 0x10FFFF)]);
        memo[i] = Some(Shape {
            cont: everything.clone(),
            all: everything,
            len: 2,
        }); // cycles: assume the worst
        let shape = self.alts_shape(&self.rules[i].1, memo);
        memo[i] = Some(shape.clone());
        shape
    }

    fn alts_shape(&self, alts: &[Vec<Node>], memo: &mut [Option<Shape>]) -> Shape {
        let mut out = Shape::default();
        let firsts: Vec<Chars> = alts.iter().map(|s| self.seq_first(s)).collect();
        let clash = overlapping(&firsts.iter().collect::<Vec<_>>());
        for (seq, clash) in alts.iter().zip(clash) {
            let shape = self.seq_shape(seq, memo);
            out.cont.add(&shape.cont);
            if clash {
                out.cont.add(&shape.all); // a match of another branch may be a prefix of this one
            }
            out.all.add(&shape.all);
            out.len = out.len.max(shape.len);
        }
        if alts.iter().any(|s| self.seq_nullable(s)) {
            for first in &firsts {
                out.cont.add(first); // the empty match may be extended by any branch
            }
        }
        out
    }

    fn seq_shape(&self, seq: &[Node], memo: &mut [Option<Shape>]) -> Shape {
        let mut acc = Shape::default();
        for node in seq {
            let shape = self.shape(node, memo);
            let mut cont = shape.cont.clone();
            if self.nullable(node) {
                cont.add(&acc.cont);
            }
            if acc.cont.intersects(&self.first(node)) {
                cont.add(&acc.all); // the split point between the two parts is ambiguous
                cont.add(&shape.all);
            }
            acc.all.add(&shape.all);
            acc.cont = cont;
            acc.len = (acc.len + shape.len).min(2);
        }
        acc
    }

    /// Characters that can directly follow each rule, seen from rule (non-terminal) context.
    fn follows(&self, terminal: &[bool]) -> Vec<Chars> {
        let mut follow = vec![Chars::default(); self.rules.len()];
        let mut changed = true;
        while changed {
            changed = false;
            for (i, (_, alts)) in self.rules.iter().enumerate() {
                if !terminal[i] {
                    let after = follow[i].clone();
                    for seq in alts {
                        changed |= self.follow_seq(seq, &after, &mut follow);
                    }
                }
            }
        }
        follow
    }

    fn follow_seq(&self, seq: &[Node], after: &Chars, follow: &mut [Chars]) -> bool {
        let (mut after, mut changed) = (after.clone(), false);
        for node in seq.iter().rev() {
            changed |= self.follow_node(node, &after, follow);
            let first = self.first(node);
            if self.nullable(node) {
                after.add(&first);
            } else {
                after = first;
            }
        }
        changed
    }

    fn follow_node(&self, node: &Node, after: &Chars, follow: &mut [Chars]) -> bool {
        match node {
            Node::Ref(name) => self.rule(name).is_some_and(|i| follow[i].add(after)),
            Node::Group(alts) => alts
                .iter()
                .fold(false, |c, seq| self.follow_seq(seq, after, follow) | c),
            Node::Repeat {
                node: inner, max, ..
            } => {
                let mut after = after.clone();
                if max.is_none_or(|m| m > 1) {
                    after.add(&self.first(inner));
                }
                self.follow_node(inner, &after, follow)
            }
            _ => false,
        }
    }

    /// Whether `node` only spells characters through terminals (so it can live in a terminal).
    fn lexical(&self, node: &Node, terminal: &[bool]) -> bool {
        match node {
            Node::Lit(_) | Node::Class { .. } | Node::Any => true,
            Node::Token(_) => false,
            Node::Ref(name) => self.rule(name).is_some_and(|i| terminal[i]),
            Node::Group(alts) => alts.iter().flatten().all(|n| self.lexical(n, terminal)),
            Node::Repeat { node, .. } => self.lexical(node, terminal),
        }
    }

    /// Rule-context lexemes, deduplicated, as (first characters, fix if it conflicts).
    /// `long[i]`: rule `i` is a terminal that can match more than one character (`Some(false)`: a
    /// one-character terminal; `None`: not a terminal).
    fn lexemes(
        &self,
        node: &Node,
        long: &[Option<bool>],
        split: &HashSet<String>,
        out: &mut HashMap<String, (Chars, Fix)>,
    ) {
        match node {
            Node::Lit(s) if s.chars().nth(1).is_some() && !split.contains(s) => {
                out.entry(quote(s))
                    .or_insert_with(|| (self.first(node), Fix::Split(s.clone())));
            }
            Node::Lit(_) | Node::Class { .. } | Node::Any => {
                for c in self.lit_or_class_chars(node) {
                    out.entry(format!("{:?}", c.0)).or_insert((c, Fix::None));
                }
            }
            Node::Ref(name) => match self.rule(name) {
                Some(i) if long[i] == Some(true) => {
                    out.entry(format!("T{i}"))
                        .or_insert_with(|| (self.first[i].clone(), Fix::Demote(i)));
                }
                Some(i) if long[i] == Some(false) => {
                    out.entry(format!("{:?}", self.first[i].0))
                        .or_insert((self.first[i].clone(), Fix::None));
                }
                _ => {}
            },
            Node::Group(alts) => alts
                .iter()
                .flatten()
                .for_each(|n| self.lexemes(n, long, split, out)),
            Node::Repeat { node, .. } => self.lexemes(node, long, split, out),
            Node::Token(_) => {}
        }
    }

    /// The one-character lexemes of a (split) literal, class or `.`.
    fn lit_or_class_chars(&self, node: &Node) -> Vec<Chars> {
        match node {
            Node::Lit(s) => s.chars().map(|c| Chars::of_str(&c.to_string())).collect(),
            _ => vec![self.first(node)],
        }
    }

    /// Which rules become Lark terminals, and which literals must be split into characters.
    fn choose_terminals(&self, root: usize) -> (Vec<bool>, HashSet<String>) {
        let n = self.rules.len();
        let body_lexical =
            |i: usize, t: &[bool]| self.rules[i].1.iter().flatten().all(|n| self.lexical(n, t));
        let mut terminal = vec![false; n];
        let mut grew = true;
        while grew {
            grew = false;
            for i in (0..n).filter(|&i| i != root) {
                if !terminal[i] && body_lexical(i, &terminal) {
                    (terminal[i], grew) = (true, true);
                }
            }
        }
        let (mut split, mut memo) = (HashSet::new(), vec![None; n]);
        loop {
            let mut shrunk = true;
            while shrunk {
                shrunk = false;
                for i in 0..n {
                    if terminal[i] && !body_lexical(i, &terminal) {
                        (terminal[i], shrunk) = (false, true);
                    }
                }
            }
            let follow = self.follows(&terminal);
            let mut fixed = false;
            for i in 0..n {
                if terminal[i] && self.rule_shape(i, &mut memo).cont.intersects(&follow[i]) {
                    (terminal[i], fixed) = (false, true);
                }
            }
            if !fixed {
                let long: Vec<Option<bool>> = (0..n)
                    .map(|i| terminal[i].then(|| self.rule_shape(i, &mut memo).len > 1))
                    .collect();
                let mut lexemes = HashMap::new();
                for (_, alts) in self
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !terminal[*i])
                    .map(|(_, r)| r)
                {
                    alts.iter()
                        .flatten()
                        .for_each(|node| self.lexemes(node, &long, &split, &mut lexemes));
                }
                let lexemes: Vec<(Chars, Fix)> = lexemes.into_values().collect();
                let hits = overlapping(&lexemes.iter().map(|(c, _)| c).collect::<Vec<_>>());
                for ((_, fix), hit) in lexemes.into_iter().zip(hits) {
                    match fix {
                        Fix::Demote(i) if hit => (terminal[i], fixed) = (false, true),
                        Fix::Split(s) if hit => fixed |= split.insert(s),
                        _ => {}
                    }
                }
            }
            if !fixed {
                return (terminal, split);
            }
        }
    }
}

/// Prints the AST as Lark.
struct Emit<'a> {
    names: HashMap<&'a str, String>,
    /// Literals printed one character per lexeme in rule context.
    split: HashSet<String>,
}

impl Emit<'_> {
    fn alts(&self, alts: &[Vec<Node>], rule_ctx: bool) -> String {
        let seqs: Vec<String> = alts
            .iter()
            .map(|seq| {
                let items: Vec<String> =
                    seq.iter().filter_map(|n| self.node(n, rule_ctx)).collect();
                if items.is_empty() {
                    "\"\"".to_string()
                } else {
                    items.join(" ")
                }
            })
            .collect();
        seqs.join(" | ")
    }

    fn is_split(&self, node: &Node, rule_ctx: bool) -> bool {
        matches!(node, Node::Lit(s) if rule_ctx && self.split.contains(s))
    }

    /// The Lark text for one item; `None` when it only matches the empty string.
    fn node(&self, node: &Node, rule_ctx: bool) -> Option<String> {
        match node {
            Node::Lit(s) if s.is_empty() => None,
            Node::Lit(s) if self.is_split(node, rule_ctx) => Some(
                s.chars()
                    .map(|c| quote(&c.to_string()))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Node::Lit(s) => Some(quote(s)),
            Node::Class {
                negated: false,
                ranges,
            } if ranges.len() == 1 && ranges[0].0 == ranges[0].1 => {
                char::from_u32(ranges[0].0).map(|c| quote(&c.to_string()))
            }
            Node::Class { negated, ranges } => {
                let mut rx = String::from(if *negated { "/[^" } else { "/[" });
                for &(lo, hi) in ranges {
                    push_class_char(&mut rx, lo);
                    if hi != lo {
                        rx.push('-');
                        push_class_char(&mut rx, hi);
                    }
                }
                rx.push_str("]/");
                Some(rx)
            }
            Node::Any => Some("/(?s:.)/".to_string()),
            Node::Ref(name) => self.names.get(name.as_str()).cloned(),
            Node::Token(t) => Some(t.clone()),
            Node::Group(alts) => Some(format!("({})", self.alts(alts, rule_ctx))),
            Node::Repeat { max: Some(0), .. } => None,
            Node::Repeat {
                node: inner,
                min,
                max,
            } => {
                let mut text = self.node(inner, rule_ctx)?;
                if matches!(**inner, Node::Repeat { .. }) || self.is_split(inner, rule_ctx) {
                    text = format!("({text})");
                }
                let _ = match (min, max) {
                    (0, None) => write!(text, "*"),
                    (1, None) => write!(text, "+"),
                    (0, Some(1)) => write!(text, "?"),
                    (1, Some(1)) => Ok(()),
                    (m, None) => write!(text, "{{{m},}}"),
                    (m, Some(n)) if m == n => write!(text, "{{{m}}}"),
                    (m, Some(n)) => write!(text, "{{{m},{n}}}"),
                };
                Some(text)
            }
        }
    }
}

/// A Lark (JSON-style) string literal; everything outside printable ASCII is `\u`-escaped.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                for unit in c.encode_utf16(&mut [0u16; 2]) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// One code point inside a `/[...]/` regex class.
fn push_class_char(rx: &mut String, cp: u32) {
    match char::from_u32(cp) {
        Some(c @ ('\\' | ']' | '[' | '^' | '-' | '&' | '~')) => {
            rx.push('\\');
            rx.push(c);
        }
        Some('\n') => rx.push_str("\\n"),
        Some('\t') => rx.push_str("\\t"),
        Some('\r') => rx.push_str("\\r"),
        Some(c) if (' '..='~').contains(&c) && c != '/' => rx.push(c),
        _ => {
            let _ = write!(rx, "\\x{{{cp:X}}}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The grammar-mode example of Fireworks' docs (a medical diagnosis classifier).
    pub(crate) const FIREWORKS_DIAGNOSIS: &str = r#"root      ::= diagnosis
diagnosis ::= "arthritis" | "dengue" | "urinary tract infection" | "impetigo" | "cervical spondylosis"
"#;

    /// llama.cpp `grammars/json.gbnf`.
    pub(crate) const JSON_GBNF: &str = r#"# Constrains output to valid JSON: object, array, string, number, boolean, or null.
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
"#;

    /// llama.cpp `grammars/list.gbnf`.
    pub(crate) const LIST_GBNF: &str = r#"root ::= item+

# Excludes various line break characters
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
"#;

    /// llama.cpp `grammars/arithmetic.gbnf`.
    pub(crate) const ARITHMETIC_GBNF: &str = r#"root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
"#;

    fn lark(gbnf: &str) -> String {
        gbnf_to_lark(gbnf).unwrap()
    }

    fn err(gbnf: &str) -> (usize, usize, String) {
        let e = gbnf_to_lark(gbnf).unwrap_err();
        assert!(e
            .to_string()
            .contains(&format!("line {}, column {}", e.line, e.column)));
        (e.line, e.column, e.message)
    }

    #[test]
    fn simple_alternatives_and_references() {
        assert_eq!(
            lark(r#"root ::= "yes" | "no""#),
            "start: \"yes\" | \"no\"\n"
        );
        assert_eq!(
            lark("root ::= greeting \" world\"\ngreeting ::= \"hello\" | \"hi\"\n"),
            "start: GREETING \" world\"\nGREETING: \"hello\" | \"hi\"\n"
        );
        assert_eq!(lark("root ::= | \"a\""), "start: \"\" | \"a\"\n");
    }

    #[test]
    fn names_are_mapped_without_collisions() {
        let out = lark(
            "root ::= my-rule MyRule start x 9lives\nmy-rule ::= \"a\"\nMyRule ::= \"b\" myrule\n\
             myrule ::= \"c\"\nstart ::= \"d\"\nx ::= \"e\" x?\n9lives ::= \"f\"\n",
        );
        assert_eq!(
            out,
            "start: MY_RULE MYRULE START_2 x R_9LIVES\nMY_RULE: \"a\"\nMYRULE: \"b\" MYRULE_2\n\
             MYRULE_2: \"c\"\nSTART_2: \"d\"\nx: \"e\" x?\nR_9LIVES: \"f\"\n"
        );
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(
            lark(r#"root ::= "\x41\u00e9\n\t\r\"\\\U0001F600/é""#),
            "start: \"A\\u00e9\\n\\t\\r\\\"\\\\\\ud83d\\ude00/\\u00e9\"\n"
        );
        assert_eq!(
            lark(r#"root ::= "\x7f\x01""#),
            "start: \"\\u007f\\u0001\"\n"
        );
    }

    #[test]
    fn classes_and_any_become_regexes() {
        assert_eq!(
            lark(
                r#"root ::= [^"\\\x7F\x00-\x1F] [a-z0-9_] [-a] [a-] [/\]\[^&~] [x] . [\u0100-\U0010FFFF]"#
            ),
            "start: /[^\"\\\\\\x{7F}\\x{0}-\\x{1F}]/ /[a-z0-9_]/ /[\\-a]/ /[a\\-]/ \
             /[\\x{2F}\\]\\[\\^&~]/ \"x\" /(?s:.)/ /[\\x{100}-\\x{10FFFF}]/\n"
                .replace("&~", "\\&\\~")
        );
        // Surrogates are cut out of ranges.
        assert_eq!(
            lark(r"root ::= [\u0000-\uDFFF]"),
            "start: /[\\x{0}-\\x{D7FF}]/\n"
        );
    }

    #[test]
    fn repetitions() {
        assert_eq!(
            lark(
                r#"root ::= "a"{3} "b"{2,} "c"{2,5} "d"{0,1} "e"{0} "f"{1} "g"{1,3000} "h"+? ("i" "j")*"#
            ),
            "start: \"a\"{3} \"b\"{2,} \"c\"{2,5} \"d\"? \"f\" \"g\"+ (\"h\"+)? (\"i\" \"j\")*\n"
        );
        assert_eq!(lark("root ::= \"a\" { 2 , 4 }"), "start: \"a\"{2,4}\n");
        assert_eq!(lark(r#"root ::= "x"{0}"#), "start: \"\"\n");
    }

    #[test]
    fn layout_comments_and_continuations() {
        let out = lark(
            "# leading comment\r\nroot ::= # after ::=\r\n  \"a\" |\r\n  (\r\n \"b\" # inside\r\n \"c\"\r\n )\r\n",
        );
        assert_eq!(out, "start: \"a\" | (\"b\" \"c\")\n");
    }

    #[test]
    fn later_definition_replaces_earlier_as_in_llama_cpp() {
        assert_eq!(
            lark("root ::= x\nx ::= \"old\"\nx ::= \"new\"\n"),
            "start: X\nX: \"new\"\n"
        );
    }

    #[test]
    fn recursion_and_tokens_stay_rules() {
        assert_eq!(
            lark("root ::= list <[7]> !<[8]>* <think>\nlist ::= \"a\" list | \"a\"\n"),
            "start: list <[7]> <[^8]>* <think>\nlist: \"a\" list | \"a\"\n"
        );
        assert_eq!(lark("root ::= t\nt ::= <[1]>\n"), "start: t\nt: <[1]>\n");
    }

    #[test]
    fn fireworks_diagnosis_example() {
        assert_eq!(
            lark(FIREWORKS_DIAGNOSIS),
            "start: DIAGNOSIS\nDIAGNOSIS: \"arthritis\" | \"dengue\" | \"urinary tract infection\" \
             | \"impetigo\" | \"cervical spondylosis\"\n"
        );
    }

    #[test]
    fn llama_cpp_sample_grammars() {
        let json = lark(JSON_GBNF);
        assert!(json.starts_with("start: object\n"));
        assert!(json.contains(
            "\nvalue: object | array | STRING | NUMBER | (\"true\" | \"false\" | \"null\") WS\n"
        ));
        assert!(json.contains(
            "\nSTRING: \"\\\"\" (/[^\"\\\\\\x{7F}\\x{0}-\\x{1F}]/ | \"\\\\\" (/[\"\\\\bfnrt]/ \
             | \"u\" /[0-9a-fA-F]/{4}))* \"\\\"\" WS\n"
        ));
        assert!(json.contains("\nWS: \"\" | \" \" | \"\\n\" /[ \\t]/{0,20}\n"));
        assert_eq!(
            lark(LIST_GBNF),
            "start: ITEM+\nITEM: \"- \" /[^\\r\\n\\x{B}\\x{C}\\x{85}\\x{2028}\\x{2029}]/+ \"\\n\"\n"
        );
        assert_eq!(
            lark(ARITHMETIC_GBNF),
            "start: (expr \"=\" ws term \"\\n\")+\nexpr: term (/[\\-+*\\x{2F}]/ term)*\n\
             term: ident | num | \"(\" ws expr \")\" ws\nident: /[a-z]/ /[a-z0-9_]/* ws\n\
             num: /[0-9]/+ ws\nws: /[ \\t\\n]/*\n"
        );
    }

    #[test]
    fn terminals_are_kept_only_where_greedy_lexing_is_safe() {
        // `WORD` could swallow the "s" that must follow it.
        assert_eq!(
            lark("root ::= word \"s\"\nword ::= [a-z]+\n"),
            "start: word \"s\"\nword: /[a-z]/+\n"
        );
        // ... but not the "!" (a terminal), nor the end of input.
        assert_eq!(
            lark("root ::= word \"!\"\nword ::= [a-z]+\n"),
            "start: WORD \"!\"\nWORD: /[a-z]/+\n"
        );
        // "ab" would swallow the "b" meant to follow "a": split it into one-character lexemes.
        assert_eq!(
            lark("root ::= (\"a\" | \"ab\") \"b\""),
            "start: (\"a\" | \"a\" \"b\") \"b\"\n"
        );
        // `.` overlaps everything, so `pair` (two characters) cannot be one lexeme beside it.
        assert_eq!(
            lark("root ::= sep? pair\nsep ::= \"-\"\npair ::= . .\n"),
            "start: SEP? pair\nSEP: \"-\"\npair: /(?s:.)/ /(?s:.)/\n"
        );
        // A terminal that uses a demoted rule is demoted too.
        assert_eq!(
            lark("root ::= a \"x\"\na ::= \"<\" b\nb ::= [x]*\n"),
            "start: a \"x\"\na: \"<\" b\nb: \"x\"*\n"
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("", 1, 1, "empty grammar"),
            ("# only a comment\n\n", 3, 1, "empty grammar"),
            ("item ::= \"a\"\n", 1, 1, "missing `root`"),
            (
                "root ::= item\nitem ::= \"a\" other\n",
                2,
                14,
                "undefined rule `other`",
            ),
            ("root ::= \"abc\n", 1, 10, "unterminated string literal"),
            ("root ::= [a-z\n", 1, 10, "unterminated character class"),
            ("root ::= []", 1, 10, "empty character class"),
            ("root ::= (\"a\" \"b\"\n", 1, 10, "unterminated group"),
            ("root ::= (\"a\" ]", 1, 15, "expected `)`, found `]`"),
            ("root ::= \"a\")", 1, 13, "unexpected `)`"),
            ("root ::= \"\\q\"", 1, 11, "unknown escape `\\q`"),
            ("root ::= \"\\x4\"", 1, 11, "needs 2 hex digits"),
            ("root ::= [\\u12]", 1, 11, "needs 4 hex digits"),
            ("root ::= \"\\uD800\"", 1, 11, "not a Unicode scalar value"),
            ("root ::= [\\uD800]", 1, 11, "surrogate"),
            ("root ::= [z-a]", 1, 11, "reversed"),
            (
                "root ::= [\\U00110000]",
                1,
                11,
                "beyond the last code point",
            ),
            ("root ::= \"a\"{5,3}", 1, 13, "maximum 3 is below minimum 5"),
            ("root ::= \"a\"{2001}", 1, 13, "exceeds the limit of 2000"),
            ("root ::= \"a\"{99999999999999999999}", 1, 13, "too large"),
            ("root ::= \"a\"{,3}", 1, 14, "expected a number"),
            ("root ::= \"a\"{2,3", 1, 13, "missing `}`"),
            ("root ::= \"a\"{2;", 1, 13, "expected `,` or `}`"),
            ("root ::= * \"a\"", 1, 10, "no preceding item"),
            ("root \"a\"", 1, 6, "expected `::=`"),
            ("root ::= \"a\"\n  \"b\"\n", 2, 3, "expected a rule name"),
            ("root ::= !<think>", 1, 10, "not supported"),
            ("root ::= <[12x]>", 1, 10, "bad token id"),
            ("root ::= <think", 1, 10, "unterminated token"),
        ];
        for &(gbnf, line, column, needle) in cases {
            let (l, c, msg) = err(gbnf);
            assert!(msg.contains(needle), "{gbnf:?}: {msg:?} lacks {needle:?}");
            assert_eq!((l, c), (line, column), "{gbnf:?}: {msg}");
        }
        let nested = format!("root ::= {}\"a\"", "(".repeat(26));
        let message = "groups nest deeper than 25".to_string();
        assert_eq!(err(&nested), (1, 35, message.clone()));
        assert_eq!(
            err(&format!("root ::= \"a\"{}", "+".repeat(26))),
            (1, 38, message)
        );
    }
}
