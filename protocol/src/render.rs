//! Batch response bodies: json, text, srt, vtt and verbose_json (PROTOCOL §2.3).
//!
//! The `verbose_json` shape is the superset that parses both in the OpenAI SDK and in the
//! strict (`extra="forbid"`) models of the fireworks-ai 0.15 SDK: every field either
//! requires is present, and nothing either refuses (`usage`, `speaker_id`) is sent.
//! Times turn from integer ms into float seconds here and nowhere else.

use serde::Serialize;

use crate::language::language_name;
use crate::request::{AudioRequest, Granularities, ResponseFormat};
use crate::transcript::{Segment, Transcript, Word};

/// Content type of `json` and `verbose_json` bodies (PROTOCOL §2.3).
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of `text`, `srt` and `vtt` bodies; both SDKs return them raw (PROTOCOL §2.3).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// What to render, taken from the request plus one server setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// Body format.
    pub format: ResponseFormat,
    /// Which timestamp levels `verbose_json` carries; other formats ignore it (PROTOCOL §2.4).
    pub granularities: Granularities,
    /// Send `language` as a lower-case English name (`"english"`, as OpenAI's examples do)
    /// instead of the ISO code (PROTOCOL §2.3 "Ambiguous").
    pub language_names: bool,
    /// Words carry `interpolated` (`include[]=interpolated`, an Ember extension). Off by
    /// default: the strict Fireworks SDK models must still parse.
    pub word_flags: bool,
}

impl RenderOptions {
    /// The options a parsed request asks for, with the server's `language_names` switch.
    pub fn from_request(request: &AudioRequest, language_names: bool) -> Self {
        Self {
            format: request.response_format,
            granularities: request.granularities,
            language_names,
            word_flags: request.include_interpolated,
        }
    }
}

/// A response body ready to send with status 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Value for the `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// Renders a transcript in the requested format, byte-for-byte as PROTOCOL §2.3 describes.
pub fn render(t: &Transcript, opts: &RenderOptions) -> Rendered {
    match opts.format {
        ResponseFormat::Json => Rendered {
            content_type: CONTENT_TYPE_JSON,
            body: to_json_string(&JsonBody {
                text: &full_text(t),
            }),
        },
        ResponseFormat::Text => Rendered {
            content_type: CONTENT_TYPE_TEXT,
            body: format!("{}\n", full_text(t)),
        },
        ResponseFormat::Srt => Rendered {
            content_type: CONTENT_TYPE_TEXT,
            body: render_srt(t),
        },
        ResponseFormat::Vtt => Rendered {
            content_type: CONTENT_TYPE_TEXT,
            body: render_vtt(t),
        },
        ResponseFormat::VerboseJson => Rendered {
            content_type: CONTENT_TYPE_JSON,
            body: render_verbose(t, opts),
        },
    }
}

/// Serialises a body struct. Only strings, integers, floats and arrays of them are
/// serialised, which serde_json cannot fail on.
fn to_json_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("response bodies hold only JSON-safe values")
}

/// The transcript text, trimmed; joined from the segments when the text is empty.
fn full_text(t: &Transcript) -> String {
    let text = t.text.trim();
    if !text.is_empty() || t.segments.is_empty() {
        return text.to_owned();
    }
    Transcript::joined_text(&t.segments)
}

/// `json` is exactly `{"text": ...}`: the Fireworks SDK refuses any other key, `usage`
/// included (PROTOCOL §2.3).
#[derive(Serialize)]
struct JsonBody<'a> {
    text: &'a str,
}

/// One subtitle cue: times and single-line text.
struct Cue {
    start_ms: u64,
    end_ms: u64,
    text: String,
}

/// The cues for srt and vtt: one per segment with text. A transcript with text but no
/// segments gets one cue over the whole audio so no text is lost.
fn cues(t: &Transcript) -> Vec<Cue> {
    let mut cues: Vec<Cue> = t
        .segments
        .iter()
        .map(|s| Cue {
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            text: cue_text(&s.text),
        })
        .filter(|c| !c.text.is_empty())
        .collect();
    if cues.is_empty() && t.segments.is_empty() {
        let text = cue_text(&t.text);
        if !text.is_empty() {
            cues.push(Cue {
                start_ms: 0,
                end_ms: t.duration_ms,
                text,
            });
        }
    }
    cues
}

/// Cue text on one line with single spaces: a blank line inside a cue would end it, and
/// `-->` inside a cue is forbidden in WebVTT.
fn cue_text(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("-->", "->")
}

/// `HH:MM:SS<sep>mmm`; hours take more digits past 99.
fn timestamp(ms: u64, sep: char) -> String {
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let seconds = ms / 1000 % 60;
    let millis = ms % 1000;
    format!("{hours:02}:{minutes:02}:{seconds:02}{sep}{millis:03}")
}

/// SubRip: numbered cues, `HH:MM:SS,mmm`, a blank line after each cue (PROTOCOL §2.3).
fn render_srt(t: &Transcript) -> String {
    let mut out = String::new();
    for (i, cue) in cues(t).iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(cue.start_ms, ','),
            timestamp(cue.end_ms, ','),
            cue.text
        ));
    }
    out
}

/// WebVTT: `WEBVTT`, a blank line, then cues with `HH:MM:SS.mmm` (PROTOCOL §2.3).
fn render_vtt(t: &Transcript) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues(t) {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(cue.start_ms, '.'),
            timestamp(cue.end_ms, '.'),
            cue.text
        ));
    }
    out
}

/// Integer ms as float seconds; division is correctly rounded, so `1001` prints `1.001`.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// An `f32` statistic as the `f64` with the same shortest decimal form, so `-0.286f32`
/// prints `-0.286` rather than `-0.28600001335144043`. Non-finite values become `0.0`
/// because both SDKs require a number there.
fn stat(x: f32) -> f64 {
    if x.is_finite() {
        x.to_string().parse().unwrap_or(0.0)
    } else {
        0.0
    }
}

/// Top level of `verbose_json` (PROTOCOL §2.3): no `usage` (the Fireworks SDK refuses it).
#[derive(Serialize)]
struct VerboseBody<'a> {
    task: &'static str,
    language: &'a str,
    duration: f64,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<WireWord<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<WireSegment<'a>>>,
}

/// Segment: the union of OpenAI's and the Fireworks SDK's required fields (PROTOCOL §2.3);
/// no `speaker_id`, which the Fireworks SDK refuses unless diarizing.
#[derive(Serialize)]
struct WireSegment<'a> {
    id: u32,
    seek: u64,
    start: f64,
    end: f64,
    audio_start: f64,
    audio_end: f64,
    text: String,
    language: &'a str,
    tokens: &'a [u32],
    temperature: f64,
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<WireWord<'a>>>,
}

/// Word: `language` is required by the Fireworks SDK; `hallucination_score` is its
/// default 0.0 (PROTOCOL §2.3).
#[derive(Serialize)]
struct WireWord<'a> {
    word: &'a str,
    start: f64,
    end: f64,
    language: &'a str,
    probability: f64,
    hallucination_score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    interpolated: Option<bool>,
}

fn wire_word<'a>(w: &'a Word, language: &'a str, flags: bool) -> WireWord<'a> {
    WireWord {
        word: w.word.trim(),
        start: seconds(w.start_ms),
        end: seconds(w.end_ms),
        language,
        probability: stat(w.probability),
        hallucination_score: 0.0,
        interpolated: flags.then_some(w.interpolated),
    }
}

fn wire_segment<'a>(
    s: &'a Segment,
    language: &'a str,
    with_words: bool,
    flags: bool,
) -> WireSegment<'a> {
    let text = s.text.trim();
    WireSegment {
        id: s.id,
        // Whisper's seek is in 10 ms frames; round(start * 100) when unknown (PROTOCOL §2.3).
        seek: s.start_ms.saturating_add(5) / 10,
        start: seconds(s.start_ms),
        end: seconds(s.end_ms),
        // Positions in the original audio, the same as start/end (PROTOCOL §2.3).
        audio_start: seconds(s.start_ms),
        audio_end: seconds(s.end_ms),
        // OpenAI segment text starts with a space (PROTOCOL §2.3).
        text: if text.is_empty() {
            String::new()
        } else {
            format!(" {text}")
        },
        language,
        tokens: &s.tokens,
        temperature: stat(s.temperature),
        avg_logprob: stat(s.avg_logprob),
        compression_ratio: stat(s.compression_ratio),
        no_speech_prob: stat(s.no_speech_prob),
        words: with_words.then(|| {
            s.words
                .iter()
                .map(|w| wire_word(w, language, flags))
                .collect()
        }),
    }
}

/// `verbose_json`: `segments` with segment granularity (the default), `words` (top level
/// and per segment) with word granularity (PROTOCOL §2.3, §2.4).
fn render_verbose(t: &Transcript, opts: &RenderOptions) -> String {
    let language = if opts.language_names {
        language_name(&t.language).unwrap_or(&t.language)
    } else {
        &t.language
    };
    let g = opts.granularities;
    let body = VerboseBody {
        task: t.task.as_str(),
        language,
        duration: seconds(t.duration_ms),
        text: full_text(t),
        words: g.word.then(|| {
            t.words()
                .map(|w| wire_word(w, language, opts.word_flags))
                .collect()
        }),
        segments: g.segment.then(|| {
            t.segments
                .iter()
                .map(|s| wire_segment(s, language, g.word, opts.word_flags))
                .collect()
        }),
    };
    to_json_string(&body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::request::Task;
    use serde_json::Value;

    fn word(w: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            word: w.to_owned(),
            start_ms,
            end_ms,
            probability: 0.98,
            interpolated: false,
        }
    }

    fn sample() -> Transcript {
        Transcript {
            task: Task::Transcribe,
            language: "en".to_owned(),
            duration_ms: 8_470,
            text: " The beach was fun. People swam.".to_owned(),
            segments: vec![
                Segment {
                    id: 0,
                    start_ms: 0,
                    end_ms: 1_001,
                    text: " The beach was fun.".to_owned(),
                    tokens: vec![50364, 440],
                    temperature: 0.0,
                    avg_logprob: -0.286,
                    compression_ratio: 1.236,
                    no_speech_prob: 0.0099,
                    words: vec![word(" The", 0, 240), word("beach", 240, 600)],
                },
                Segment {
                    id: 1,
                    start_ms: 3_325,
                    end_ms: 3_723_004,
                    text: "People\nswam. ".to_owned(),
                    tokens: vec![],
                    temperature: 0.2,
                    avg_logprob: f32::NEG_INFINITY,
                    compression_ratio: 1.0,
                    no_speech_prob: 0.5,
                    words: vec![word("People", 3_325, 3_700)],
                },
            ],
        }
    }

    fn opts(format: ResponseFormat, granularities: Granularities) -> RenderOptions {
        RenderOptions {
            format,
            granularities,
            language_names: false,
            word_flags: false,
        }
    }

    fn verbose(t: &Transcript, g: Granularities, names: bool) -> Value {
        let r = render(
            t,
            &RenderOptions {
                format: ResponseFormat::VerboseJson,
                granularities: g,
                language_names: names,
                word_flags: false,
            },
        );
        assert_eq!(r.content_type, "application/json");
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn timestamps_edge_cases() {
        assert_eq!(timestamp(0, ','), "00:00:00,000");
        assert_eq!(timestamp(1_001, ','), "00:00:01,001");
        assert_eq!(timestamp(59_999, '.'), "00:00:59.999");
        assert_eq!(timestamp(60_000, '.'), "00:01:00.000");
        assert_eq!(timestamp(3_723_004, ','), "01:02:03,004");
        assert_eq!(timestamp(360_000_000, ','), "100:00:00,000");
    }

    #[test]
    fn json_is_exactly_one_text_key() {
        let r = render(&sample(), &opts(ResponseFormat::Json, Granularities::BOTH));
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.body, r#"{"text":"The beach was fun. People swam."}"#);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    #[test]
    fn text_ends_with_newline() {
        let r = render(
            &sample(),
            &opts(ResponseFormat::Text, Granularities::SEGMENT),
        );
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        assert_eq!(r.body, "The beach was fun. People swam.\n");
    }

    #[test]
    fn text_falls_back_to_segment_text() {
        let mut t = sample();
        t.text = String::new();
        let r = render(&t, &opts(ResponseFormat::Text, Granularities::SEGMENT));
        assert_eq!(r.body, "The beach was fun. People\nswam.\n");
    }

    #[test]
    fn srt_numbered_cues() {
        let r = render(
            &sample(),
            &opts(ResponseFormat::Srt, Granularities::SEGMENT),
        );
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        assert_eq!(
            r.body,
            "1\n00:00:00,000 --> 00:00:01,001\nThe beach was fun.\n\n\
             2\n00:00:03,325 --> 01:02:03,004\nPeople swam.\n\n"
        );
    }

    #[test]
    fn vtt_header_and_dot_times() {
        let r = render(
            &sample(),
            &opts(ResponseFormat::Vtt, Granularities::SEGMENT),
        );
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        assert_eq!(
            r.body,
            "WEBVTT\n\n\
             00:00:00.000 --> 00:00:01.001\nThe beach was fun.\n\n\
             00:00:03.325 --> 01:02:03.004\nPeople swam.\n\n"
        );
    }

    #[test]
    fn empty_transcript_subtitles_are_well_formed() {
        let t = Transcript::default();
        assert_eq!(
            render(&t, &opts(ResponseFormat::Srt, Granularities::SEGMENT)).body,
            ""
        );
        assert_eq!(
            render(&t, &opts(ResponseFormat::Vtt, Granularities::SEGMENT)).body,
            "WEBVTT\n\n"
        );
        assert_eq!(
            render(&t, &opts(ResponseFormat::Text, Granularities::SEGMENT)).body,
            "\n"
        );
    }

    #[test]
    fn subtitles_skip_empty_segments_and_renumber() {
        let mut t = sample();
        t.segments[0].text = "   ".to_owned();
        let srt = render(&t, &opts(ResponseFormat::Srt, Granularities::SEGMENT)).body;
        assert!(srt.starts_with("1\n00:00:03,325 --> "), "{srt}");
        assert!(!srt.contains("\n2\n"), "{srt}");
    }

    #[test]
    fn subtitles_without_segments_get_one_cue() {
        let t = Transcript {
            duration_ms: 2_500,
            text: "hello --> there".to_owned(),
            ..Transcript::default()
        };
        let vtt = render(&t, &opts(ResponseFormat::Vtt, Granularities::SEGMENT)).body;
        assert_eq!(
            vtt,
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nhello -> there\n\n"
        );
    }

    #[test]
    fn verbose_json_default_has_segments_with_every_required_field() {
        let v = verbose(&sample(), Granularities::SEGMENT, false);
        let top = v.as_object().unwrap();
        let mut keys: Vec<&str> = top.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["duration", "language", "segments", "task", "text"]);
        assert_eq!(v["task"], "transcribe");
        assert_eq!(v["language"], "en");
        assert_eq!(v["duration"], 8.47);
        assert_eq!(v["text"], "The beach was fun. People swam.");

        let seg = v["segments"][0].as_object().unwrap();
        let mut seg_keys: Vec<&str> = seg.keys().map(String::as_str).collect();
        seg_keys.sort_unstable();
        assert_eq!(
            seg_keys,
            [
                "audio_end",
                "audio_start",
                "avg_logprob",
                "compression_ratio",
                "end",
                "id",
                "language",
                "no_speech_prob",
                "seek",
                "start",
                "temperature",
                "text",
                "tokens"
            ]
        );
        assert_eq!(seg["text"], " The beach was fun.");
        assert_eq!(seg["end"], 1.001);
        assert_eq!(seg["audio_end"], 1.001);
        assert_eq!(seg["avg_logprob"], -0.286);
        assert_eq!(seg["tokens"], serde_json::json!([50364, 440]));
        let seg1 = &v["segments"][1];
        assert_eq!(seg1["seek"], 333);
        assert_eq!(seg1["temperature"], 0.2);
        assert_eq!(seg1["avg_logprob"], 0.0);
        assert_eq!(seg1["text"], " People\nswam.");
    }

    #[test]
    fn verbose_json_seconds_keep_three_decimals_in_the_text() {
        let body = render(
            &sample(),
            &opts(ResponseFormat::VerboseJson, Granularities::SEGMENT),
        )
        .body;
        assert!(body.contains(r#""end":1.001,"#), "{body}");
        assert!(body.contains(r#""end":3723.004,"#), "{body}");
        assert!(body.contains(r#""start":3.325,"#), "{body}");
    }

    #[test]
    fn verbose_json_words_top_level_and_per_segment() {
        let v = verbose(&sample(), Granularities::BOTH, false);
        let words = v["words"].as_array().unwrap();
        assert_eq!(words.len(), 3);
        let w = words[0].as_object().unwrap();
        let mut keys: Vec<&str> = w.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "end",
                "hallucination_score",
                "language",
                "probability",
                "start",
                "word"
            ]
        );
        assert_eq!(w["word"], "The");
        assert_eq!(w["end"], 0.24);
        assert_eq!(w["probability"], 0.98);
        assert_eq!(w["hallucination_score"], 0.0);
        assert_eq!(w["language"], "en");
        assert_eq!(v["segments"][0]["words"].as_array().unwrap().len(), 2);
        assert_eq!(v["segments"][1]["words"][0]["word"], "People");
    }

    #[test]
    fn verbose_json_word_only_omits_segments() {
        let v = verbose(&sample(), Granularities::WORD, false);
        assert!(v.get("segments").is_none());
        assert_eq!(v["words"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn verbose_json_never_has_usage_or_speaker_id() {
        for g in [
            Granularities::SEGMENT,
            Granularities::WORD,
            Granularities::BOTH,
        ] {
            let body = render(&sample(), &opts(ResponseFormat::VerboseJson, g)).body;
            assert!(!body.contains("usage"), "{body}");
            assert!(!body.contains("speaker_id"), "{body}");
        }
    }

    #[test]
    fn verbose_json_language_names_switch() {
        let v = verbose(&sample(), Granularities::BOTH, true);
        assert_eq!(v["language"], "english");
        assert_eq!(v["segments"][0]["language"], "english");
        assert_eq!(v["words"][0]["language"], "english");
        let mut t = sample();
        t.language = "xx".to_owned();
        assert_eq!(verbose(&t, Granularities::SEGMENT, true)["language"], "xx");
    }

    #[test]
    fn verbose_json_translate_task() {
        let mut t = sample();
        t.task = Task::Translate;
        assert_eq!(
            verbose(&t, Granularities::SEGMENT, false)["task"],
            "translate"
        );
    }

    #[test]
    fn options_from_request() {
        let req = AudioRequest::from_fields(
            Task::Transcribe,
            &crate::form::FormFields::from_pairs([("response_format", "srt")]),
        )
        .unwrap();
        let o = RenderOptions::from_request(&req, true);
        assert_eq!(o.format, ResponseFormat::Srt);
        assert_eq!(o.granularities, Granularities::SEGMENT);
        assert!(o.language_names);
    }
}
