//! English text normalisation for alignment: what a written token sounds like, as plain
//! lower-case words a G2P model can spell.
//!
//! Every token of a transcript must get a time, including `$5.50`, `1999`, `3rd`, `10%`,
//! `Dr.` and `FBI` (WhisperX drops such words). The aligner spells the spoken form and
//! reports the time under the original token. A token with nothing pronounceable (`—`,
//! an emoji) gives an empty list and is interpolated by the caller.

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [(u64, &str); 4] = [
    (1_000_000_000_000, "trillion"),
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
];

/// Abbreviations read as words (lower case, without the dot).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("mr", "mister"),
    ("mrs", "missus"),
    ("ms", "miz"),
    ("dr", "doctor"),
    ("prof", "professor"),
    ("st", "saint"),
    ("jr", "junior"),
    ("sr", "senior"),
    ("vs", "versus"),
    ("etc", "et cetera"),
    ("approx", "approximately"),
    ("dept", "department"),
    ("govt", "government"),
    ("mt", "mount"),
    ("ft", "feet"),
    ("km", "kilometers"),
    ("kg", "kilograms"),
    ("lb", "pounds"),
    ("lbs", "pounds"),
];

/// Symbols that are read as words when they stand alone or inside a token.
const SYMBOLS: &[(char, &str)] = &[
    ('&', "and"),
    ('+', "plus"),
    ('@', "at"),
    ('=', "equals"),
    ('#', "number"),
];

/// Currency signs and the unit names they are read with (singular, plural, cents).
const CURRENCIES: &[(char, &str, &str, &str)] = &[
    ('$', "dollar", "dollars", "cents"),
    ('£', "pound", "pounds", "pence"),
    ('€', "euro", "euros", "cents"),
    ('¥', "yen", "yen", "sen"),
];

const LETTER_NAMES: [&str; 26] = [
    "ay",
    "bee",
    "see",
    "dee",
    "ee",
    "ef",
    "gee",
    "aitch",
    "eye",
    "jay",
    "kay",
    "el",
    "em",
    "en",
    "oh",
    "pee",
    "cue",
    "are",
    "es",
    "tee",
    "you",
    "vee",
    "double you",
    "ex",
    "why",
    "zee",
];

/// The spoken words of one written token (split on whitespace by the caller).
pub fn spoken_words(token: &str) -> Vec<String> {
    let mut out = Vec::new();
    let core = trim_edges(token);
    if core.is_empty() {
        // A lone symbol (`&`, `%`) still has a reading.
        for c in token.chars() {
            push_symbol(c, &mut out);
        }
        return out;
    }
    let lowered = core.to_lowercase();
    let bare = lowered.trim_end_matches('.');
    if let Some((_, reading)) = ABBREVIATIONS.iter().find(|(a, _)| *a == bare) {
        // Only with a dot or capitalised: "st" inside a sentence is an abbreviation
        // anyway; "ms"/"ft" are rare as words.
        push_words(reading, &mut out);
        return out;
    }
    if let Some(words) = currency(core) {
        return words;
    }
    if let Some(number) = core.strip_suffix('%') {
        if let Some(mut words) = number_words(number) {
            words.push("percent".to_string());
            return words;
        }
    }
    if let Some(words) = ordinal(&lowered) {
        return words;
    }
    if let Some(words) = number_words(core) {
        return words;
    }
    if is_initialism(core) {
        for c in core.chars().filter(char::is_ascii_alphabetic) {
            push_words(
                LETTER_NAMES[(c.to_ascii_lowercase() as u8 - b'a') as usize],
                &mut out,
            );
        }
        return out;
    }
    for piece in split_runs(core) {
        if piece.chars().all(|c| c.is_ascii_digit()) {
            out.extend(number_words(&piece).unwrap_or_default());
        } else if piece.chars().count() == 1 && !piece.chars().all(char::is_alphabetic) {
            piece.chars().for_each(|c| push_symbol(c, &mut out));
        } else {
            out.push(piece.to_lowercase());
        }
    }
    out
}

/// The token without the punctuation around it; a minus sign before a digit stays.
fn trim_edges(token: &str) -> &str {
    let end_trimmed = token.trim_end_matches(is_edge_punctuation);
    let start = end_trimmed
        .char_indices()
        .find(|&(i, c)| {
            !is_edge_punctuation(c)
                || (c == '-' && end_trimmed[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        })
        .map_or(end_trimmed.len(), |(i, _)| i);
    &end_trimmed[start..]
}

/// Punctuation that wraps a token without being read.
fn is_edge_punctuation(c: char) -> bool {
    (c.is_ascii_punctuation() && !matches!(c, '$' | '%' | '&' | '+' | '@' | '#' | '='))
        || matches!(
            c,
            '“' | '”' | '‘' | '’' | '«' | '»' | '—' | '–' | '…' | '¿' | '¡'
        )
}

fn push_symbol(c: char, out: &mut Vec<String>) {
    if let Some((_, word)) = SYMBOLS.iter().find(|(s, _)| *s == c) {
        push_words(word, out);
    } else if c == '%' {
        out.push("percent".to_string());
    }
}

fn push_words(text: &str, out: &mut Vec<String>) {
    out.extend(text.split_whitespace().map(str::to_string));
}

/// Letters, apostrophes and digits in runs: `mp3` → `mp`, `3`; `rock-n-roll` → three;
/// symbols inside become their own runs.
fn split_runs(core: &str) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut kind = 0u8; // 1 letters, 2 digits
    for c in core.chars() {
        let k = if c.is_alphabetic() || (c == '\'' && kind == 1) {
            1
        } else if c.is_ascii_digit() {
            2
        } else {
            0
        };
        if k != kind || k == 0 {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            if k == 0 {
                if SYMBOLS.iter().any(|(s, _)| *s == c) {
                    runs.push(c.to_string());
                }
                kind = 0;
                continue;
            }
            kind = k;
        }
        current.push(c);
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// `FBI`, `BBC`, `USA`: all capitals, 2–3 letters or without a vowel, read letter by
/// letter. Longer ones with vowels (`NASA`, `NATO`) are read as words.
fn is_initialism(core: &str) -> bool {
    let letters: Vec<char> = core.chars().filter(|c| *c != '.').collect();
    let all_caps = letters.iter().all(|c| c.is_ascii_uppercase());
    let has_vowel = letters.iter().any(|c| "AEIOU".contains(*c));
    all_caps && (2..=6).contains(&letters.len()) && (letters.len() <= 3 || !has_vowel)
}

/// `$5`, `$5.50`, `£3`, `$1,000`, `5$`.
fn currency(core: &str) -> Option<Vec<String>> {
    let (sign, amount) = CURRENCIES.iter().find_map(|c| {
        core.strip_prefix(c.0)
            .or_else(|| core.strip_suffix(c.0))
            .map(|rest| (c, rest))
    })?;
    let (whole, cents) = match amount.split_once('.') {
        Some((w, c)) if c.len() == 2 && c.chars().all(|d| d.is_ascii_digit()) => (w, Some(c)),
        Some(_) => return None,
        None => (amount, None),
    };
    let value = parse_integer(whole)?;
    let mut words = cardinal(value);
    words.push(if value == 1 { sign.1 } else { sign.2 }.to_string());
    if let Some(c) = cents.and_then(|c| c.parse::<u64>().ok()).filter(|c| *c > 0) {
        words.push("and".to_string());
        words.extend(cardinal(c));
        words.push(sign.3.to_string());
    }
    Some(words)
}

/// `1st`, `22nd`, `103rd`, `4th`.
fn ordinal(lowered: &str) -> Option<Vec<String>> {
    let digits = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|s| lowered.strip_suffix(s))?;
    let value = parse_integer(digits)?;
    let mut words = cardinal(value);
    let last = words.pop()?;
    words.push(ordinal_word(&last));
    Some(words)
}

fn ordinal_word(cardinal: &str) -> String {
    match cardinal {
        "one" => "first".into(),
        "two" => "second".into(),
        "three" => "third".into(),
        "five" => "fifth".into(),
        "eight" => "eighth".into(),
        "nine" => "ninth".into(),
        "twelve" => "twelfth".into(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    }
}

/// Integers (`42`, `1,000`), years (`1999` → nineteen ninety-nine), decimals
/// (`3.14` → three point one four) and negatives.
fn number_words(text: &str) -> Option<Vec<String>> {
    if let Some(rest) = text.strip_prefix('-') {
        let mut words = vec!["minus".to_string()];
        words.extend(number_words(rest)?);
        return Some(words);
    }
    if let Some((whole, fraction)) = text.split_once('.') {
        if fraction.is_empty() || !fraction.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut words = if whole.is_empty() {
            Vec::new()
        } else {
            cardinal(parse_integer(whole)?)
        };
        words.push("point".to_string());
        for d in fraction.bytes() {
            words.push(ONES[(d - b'0') as usize].to_string());
        }
        return Some(words);
    }
    if text.len() == 4 && text.chars().all(|c| c.is_ascii_digit()) {
        let year: u64 = text.parse().ok()?;
        if (1100..2000).contains(&year) || (2010..2100).contains(&year) {
            return Some(year_words(year));
        }
    }
    parse_integer(text).map(cardinal)
}

fn parse_integer(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let grouped = text.contains(',');
    if grouped {
        let groups: Vec<&str> = text.split(',').collect();
        let ok = groups[0].len() <= 3
            && !groups[0].is_empty()
            && groups[1..].iter().all(|g| g.len() == 3);
        if !ok {
            return None;
        }
    }
    let digits: String = text.chars().filter(|c| *c != ',').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// 1999 → nineteen ninety nine; 1905 → nineteen oh five; 1900 → nineteen hundred.
fn year_words(year: u64) -> Vec<String> {
    let (high, low) = (year / 100, year % 100);
    let mut words = cardinal(high);
    match low {
        0 => words.push("hundred".to_string()),
        1..=9 => {
            words.push("oh".to_string());
            words.extend(cardinal(low));
        }
        _ => words.extend(cardinal(low)),
    }
    words
}

/// Cardinal number words, e.g. 1,234 → one thousand two hundred thirty four.
pub fn cardinal(value: u64) -> Vec<String> {
    if value == 0 {
        return vec!["zero".to_string()];
    }
    let mut words = Vec::new();
    let mut rest = value;
    for (scale, name) in SCALES {
        if rest >= scale {
            words.extend(cardinal(rest / scale));
            words.push(name.to_string());
            rest %= scale;
        }
    }
    if rest >= 100 {
        words.push(ONES[(rest / 100) as usize].to_string());
        words.push("hundred".to_string());
        rest %= 100;
    }
    if rest >= 20 {
        words.push(TENS[(rest / 10) as usize].to_string());
        rest %= 10;
        if rest > 0 {
            words.push(ONES[rest as usize].to_string());
        }
    } else if rest > 0 {
        words.push(ONES[rest as usize].to_string());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(token: &str) -> String {
        spoken_words(token).join(" ")
    }

    #[test]
    fn plain_words_lose_edge_punctuation() {
        assert_eq!(said("Americans,"), "americans");
        assert_eq!(said("\"country's\""), "country's");
        assert_eq!(said("well-known"), "well known");
        assert_eq!(said("café."), "café");
    }

    #[test]
    fn numbers_years_ordinals_and_decimals() {
        assert_eq!(said("42"), "forty two");
        assert_eq!(said("1,234"), "one thousand two hundred thirty four");
        assert_eq!(said("1999"), "nineteen ninety nine");
        assert_eq!(said("1905"), "nineteen oh five");
        assert_eq!(said("2005"), "two thousand five");
        assert_eq!(said("2024."), "twenty twenty four");
        assert_eq!(said("3rd"), "third");
        assert_eq!(said("21st"), "twenty first");
        assert_eq!(said("40th"), "fortieth");
        assert_eq!(said("3.14"), "three point one four");
        assert_eq!(said("-5"), "minus five");
    }

    #[test]
    fn currency_percent_and_symbols() {
        assert_eq!(said("$5"), "five dollars");
        assert_eq!(said("$1"), "one dollar");
        assert_eq!(said("$5.50"), "five dollars and fifty cents");
        assert_eq!(said("£20"), "twenty pounds");
        assert_eq!(said("10%"), "ten percent");
        assert_eq!(said("&"), "and");
        assert_eq!(said("AT&T"), "at and t");
        assert_eq!(said("mp3"), "mp three");
    }

    #[test]
    fn abbreviations_and_initialisms() {
        assert_eq!(said("Dr."), "doctor");
        assert_eq!(said("Mr"), "mister");
        assert_eq!(said("etc."), "et cetera");
        assert_eq!(said("FBI"), "ef bee eye");
        assert_eq!(said("U.S."), "you es");
        assert_eq!(said("NASA"), "nasa");
        assert_eq!(said("I"), "i");
    }

    #[test]
    fn unpronounceable_tokens_are_empty() {
        assert!(spoken_words("—").is_empty());
        assert!(spoken_words("...").is_empty());
        assert!(spoken_words("🙂").is_empty());
    }
}
