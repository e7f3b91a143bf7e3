//! Normalised word error rate, for asserting ASR quality without exact strings.

/// Lower-case, drop punctuation, spell small numbers, expand common contractions.
pub fn normalise(text: &str) -> Vec<String> {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    cleaned
        .split_whitespace()
        .flat_map(|word| {
            let word = word.trim_matches('\'');
            let spelled = match word.parse::<usize>() {
                Ok(n) if n <= 20 => ember_models::align::english::cardinal(n as u64).join(" "),
                _ => match word {
                    "mr" => "mister".to_string(),
                    "mrs" => "missus".to_string(),
                    "ok" => "okay".to_string(),
                    other => other.replace('\'', ""),
                },
            };
            spelled.split('-').map(str::to_string).collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level edit distance and reference length.
pub fn errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalise(reference);
    let h = normalise(hypothesis);
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut current = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = previous[j] + usize::from(rw != hw);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    (previous[h.len()], r.len())
}

pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (e, n) = errors(reference, hypothesis);
    e as f64 / n.max(1) as f64
}

#[test]
fn wer_counts_edits_after_normalising() {
    assert_eq!(wer("Go forward ten meters.", "go forward 10 meters"), 0.0);
    assert!((wer("a b c d", "a x c") - 0.5).abs() < 1e-9);
    assert_eq!(wer("Mr. Smith", "mister smith"), 0.0);
}
