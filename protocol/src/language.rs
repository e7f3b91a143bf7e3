//! Language codes and names: the Whisper language table and the `language` field rules.
//!
//! OpenAI examples send a lower-case English *name* in `verbose_json` (`"english"`),
//! Fireworks sends ISO codes (PROTOCOL §2.3); requests carry ISO-639-1 codes plus a few
//! longer ones such as `haw`, `yue`, `zh-hant` (PROTOCOL §2.2). One table serves both ways.

use crate::error::FieldError;

/// The languages Whisper knows, `(ISO code, lower-case English name)`, in Whisper's order.
const LANGUAGES: [(&str, &str); 100] = [
    ("en", "english"),
    ("zh", "chinese"),
    ("de", "german"),
    ("es", "spanish"),
    ("ru", "russian"),
    ("ko", "korean"),
    ("fr", "french"),
    ("ja", "japanese"),
    ("pt", "portuguese"),
    ("tr", "turkish"),
    ("pl", "polish"),
    ("ca", "catalan"),
    ("nl", "dutch"),
    ("ar", "arabic"),
    ("sv", "swedish"),
    ("it", "italian"),
    ("id", "indonesian"),
    ("hi", "hindi"),
    ("fi", "finnish"),
    ("vi", "vietnamese"),
    ("he", "hebrew"),
    ("uk", "ukrainian"),
    ("el", "greek"),
    ("ms", "malay"),
    ("cs", "czech"),
    ("ro", "romanian"),
    ("da", "danish"),
    ("hu", "hungarian"),
    ("ta", "tamil"),
    ("no", "norwegian"),
    ("th", "thai"),
    ("ur", "urdu"),
    ("hr", "croatian"),
    ("bg", "bulgarian"),
    ("lt", "lithuanian"),
    ("la", "latin"),
    ("mi", "maori"),
    ("ml", "malayalam"),
    ("cy", "welsh"),
    ("sk", "slovak"),
    ("te", "telugu"),
    ("fa", "persian"),
    ("lv", "latvian"),
    ("bn", "bengali"),
    ("sr", "serbian"),
    ("az", "azerbaijani"),
    ("sl", "slovenian"),
    ("kn", "kannada"),
    ("et", "estonian"),
    ("mk", "macedonian"),
    ("br", "breton"),
    ("eu", "basque"),
    ("is", "icelandic"),
    ("hy", "armenian"),
    ("ne", "nepali"),
    ("mn", "mongolian"),
    ("bs", "bosnian"),
    ("kk", "kazakh"),
    ("sq", "albanian"),
    ("sw", "swahili"),
    ("gl", "galician"),
    ("mr", "marathi"),
    ("pa", "punjabi"),
    ("si", "sinhala"),
    ("km", "khmer"),
    ("sn", "shona"),
    ("yo", "yoruba"),
    ("so", "somali"),
    ("af", "afrikaans"),
    ("oc", "occitan"),
    ("ka", "georgian"),
    ("be", "belarusian"),
    ("tg", "tajik"),
    ("sd", "sindhi"),
    ("gu", "gujarati"),
    ("am", "amharic"),
    ("yi", "yiddish"),
    ("lo", "lao"),
    ("uz", "uzbek"),
    ("fo", "faroese"),
    ("ht", "haitian creole"),
    ("ps", "pashto"),
    ("tk", "turkmen"),
    ("nn", "nynorsk"),
    ("mt", "maltese"),
    ("sa", "sanskrit"),
    ("lb", "luxembourgish"),
    ("my", "myanmar"),
    ("bo", "tibetan"),
    ("tl", "tagalog"),
    ("mg", "malagasy"),
    ("as", "assamese"),
    ("tt", "tatar"),
    ("haw", "hawaiian"),
    ("ln", "lingala"),
    ("ha", "hausa"),
    ("ba", "bashkir"),
    ("jw", "javanese"),
    ("su", "sundanese"),
    ("yue", "cantonese"),
];

/// The lower-case English name of a code (`"en"` -> `"english"`), for the OpenAI-style
/// `language` in `verbose_json` (PROTOCOL §2.3). A regional code such as `zh-hant` falls
/// back to its base language.
pub fn language_name(code: &str) -> Option<&'static str> {
    let code = code.to_ascii_lowercase();
    let lookup = |c: &str| LANGUAGES.iter().find(|(k, _)| *k == c).map(|(_, n)| *n);
    lookup(&code).or_else(|| lookup(code.split('-').next().unwrap_or_default()))
}

/// The code of a lower-case English name (`"english"` -> `"en"`), so a request that sends
/// a name, as Whisper's own CLI accepts, still works.
pub fn language_code(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    LANGUAGES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

/// Normalises the request's `language` field (PROTOCOL §2.2): lower-cased, `_` read as
/// `-`; `auto` or empty means auto-detect (`Ok(None)`); a known English name becomes its
/// code; otherwise it must look like an ISO code (2-3 letters, optionally `-` and 2-4
/// letters, e.g. `zh-hant`).
pub fn parse_language(raw: &str) -> Result<Option<String>, FieldError> {
    let lang = raw.trim().to_ascii_lowercase().replace('_', "-");
    if lang.is_empty() || lang == "auto" {
        return Ok(None);
    }
    if let Some(code) = language_code(&lang) {
        return Ok(Some(code.to_owned()));
    }
    let letters = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
    };
    let valid = match lang.split_once('-') {
        None => letters(&lang, 2, 3),
        Some((base, region)) => letters(base, 2, 3) && letters(region, 2, 4),
    };
    if valid {
        Ok(Some(lang))
    } else {
        Err(FieldError::new(
            "language",
            format!(
                "`language` must be an ISO-639-1 code such as `en`, `yue` or `zh-hant` (or `auto`), got `{}`",
                raw.trim()
            ),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        assert_eq!(language_name("en"), Some("english"));
        assert_eq!(language_name("YUE"), Some("cantonese"));
        assert_eq!(language_name("zh-hant"), Some("chinese"));
        assert_eq!(language_name("xx"), None);
        assert_eq!(language_code("English"), Some("en"));
        for (code, name) in LANGUAGES {
            assert_eq!(language_code(name), Some(code));
            assert_eq!(language_name(code), Some(name));
        }
    }

    #[test]
    fn parse_language_accepts_codes_names_and_auto() {
        assert_eq!(parse_language("EN").unwrap(), Some("en".to_owned()));
        assert_eq!(parse_language(" haw ").unwrap(), Some("haw".to_owned()));
        assert_eq!(
            parse_language("zh-Hant").unwrap(),
            Some("zh-hant".to_owned())
        );
        assert_eq!(
            parse_language("zh_hans").unwrap(),
            Some("zh-hans".to_owned())
        );
        assert_eq!(parse_language("german").unwrap(), Some("de".to_owned()));
        assert_eq!(parse_language("auto").unwrap(), None);
        assert_eq!(parse_language("").unwrap(), None);
    }

    #[test]
    fn parse_language_rejects_garbage() {
        for raw in ["e", "english!", "en-", "12", "toolong", "zh-hantxx"] {
            let err = parse_language(raw).unwrap_err();
            assert_eq!(err.param, "language");
            assert!(err.message.contains(raw), "{}", err.message);
        }
    }
}
