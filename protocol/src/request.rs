//! Typed requests for the batch endpoints, parsed from [`FormFields`].
//!
//! Transcriptions, translations and alignments share one field set (PROTOCOL §2.2, §2.6,
//! §2.7). Parsing is lenient about encoding and unknown fields (PROTOCOL §2.1) and strict
//! about values: a bad value is a [`FieldError`] naming the parameter in backticks, the
//! value received and the values allowed (DESIGN §4).

use std::fmt;
use std::str::FromStr;

use crate::error::FieldError;
use crate::form::FormFields;
use crate::language::parse_language;

/// Declares a wire enum with its wire names, `ALL`, `PARAM`, `as_str`, `Display` and a
/// case-insensitive parser whose error lists the allowed values.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, param = $param:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order listed in error messages.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The form field this value arrives in.
            pub const PARAM: &'static str = $param;

            /// The wire spelling of this value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }

            /// Case-insensitive lookup; the error names the field, the value and the choices.
            fn parse_wire(raw: &str) -> Result<Self, FieldError> {
                let wanted = raw.trim().to_ascii_lowercase();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == wanted)
                    .ok_or_else(|| unknown_value(Self::PARAM, raw, Self::ALL.iter().map(|v| v.as_str())))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// The error for a value outside an enum's allowed set.
fn unknown_value<'a>(param: &str, raw: &str, allowed: impl Iterator<Item = &'a str>) -> FieldError {
    let allowed: Vec<String> = allowed.map(|a| format!("`{a}`")).collect();
    FieldError::new(
        param,
        format!(
            "`{param}` must be one of {}; got `{}`",
            allowed.join(", "),
            raw.trim()
        ),
    )
}

wire_enum! {
    /// What the model is asked to do; chosen by the route, and echoed as `task` in
    /// `verbose_json` (PROTOCOL §2.3, §2.6).
    Task, param = "task" {
        /// Same-language transcript (`/audio/transcriptions`, `/audio/alignments`).
        #[default]
        Transcribe => "transcribe",
        /// English output from any language (`/audio/translations`).
        Translate => "translate",
    }
}

impl FromStr for Task {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_wire(s)
    }
}

wire_enum! {
    /// The body format of a batch response (PROTOCOL §2.3).
    ResponseFormat, param = "response_format" {
        /// Exactly `{"text": ...}`.
        #[default]
        Json => "json",
        /// The transcript as plain text.
        Text => "text",
        /// SubRip cues.
        Srt => "srt",
        /// WebVTT cues.
        Vtt => "vtt",
        /// The full object with segments and/or words.
        VerboseJson => "verbose_json",
    }
}

impl FromStr for ResponseFormat {
    type Err = FieldError;
    /// OpenAI's `diarized_json` (PROTOCOL §2.3) gets its own message: it is a real format,
    /// but this server has no diarization model.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("diarized_json") {
            return Err(FieldError::new(
                Self::PARAM,
                "`response_format` value `diarized_json` is not supported by this server \
                 (it has no diarization model); use one of `json`, `text`, `srt`, `vtt`, `verbose_json`",
            ));
        }
        Self::parse_wire(s)
    }
}

wire_enum! {
    /// Fireworks loudness preset applied before recognition (PROTOCOL §2.2).
    Preprocessing, param = "preprocessing" {
        /// Audio as received.
        #[default]
        None => "none",
        /// For variable loudness.
        Dynamic => "dynamic",
        /// For speech-heavy audio such as podcasts.
        SoftDynamic => "soft_dynamic",
        /// Boosts low frequencies.
        BassDynamic => "bass_dynamic",
    }
}

impl FromStr for Preprocessing {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_wire(s)
    }
}

wire_enum! {
    /// Voice-activity detector used to split long audio (Fireworks field, PROTOCOL §2.2;
    /// the Fireworks SDK always sends it, PROTOCOL §2.8).
    VadModel, param = "vad_model" {
        /// Silero VAD, the Fireworks default.
        #[default]
        Silero => "silero",
        /// WebRTC VAD; cheaper, an Ember extension.
        Webrtc => "webrtc",
        /// Fireworks' pyannote-based VAD; served by the nearest local equivalent.
        WhisperxPyannet => "whisperx-pyannet",
    }
}

impl FromStr for VadModel {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_wire(s)
    }
}

wire_enum! {
    /// Word-timing aligner (Fireworks field, PROTOCOL §2.2). The default is `tdnn_ffn`,
    /// the SDK's default, which it always sends (PROTOCOL §2.8).
    AlignmentModel, param = "alignment_model" {
        /// English TDNN-FFN aligner.
        #[default]
        TdnnFfn => "tdnn_ffn",
        /// Multilingual MMS forced aligner.
        MmsFa => "mms_fa",
        /// English Gentle aligner.
        Gentle => "gentle",
        /// Whisper cross-attention DTW (alignment heads), any language; an Ember extension.
        Whisper => "whisper",
        /// Whisper's raw token timestamps, no aligner (cheapest, least exact); Ember.
        WhisperTokens => "whisper_tokens",
    }
}

impl FromStr for AlignmentModel {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_wire(s)
    }
}

/// Which timestamp levels `verbose_json` carries (PROTOCOL §2.4). Default: segments only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Granularities {
    /// Emit top-level `words` (and per-segment `words`).
    pub word: bool,
    /// Emit `segments`.
    pub segment: bool,
}

impl Default for Granularities {
    fn default() -> Self {
        Granularities::SEGMENT
    }
}

impl Granularities {
    /// The field name on the wire.
    pub const PARAM: &'static str = "timestamp_granularities";
    /// Segments only, the default of both APIs (PROTOCOL §2.4).
    pub const SEGMENT: Granularities = Granularities {
        word: false,
        segment: true,
    };
    /// Words only.
    pub const WORD: Granularities = Granularities {
        word: true,
        segment: false,
    };
    /// Both levels; the alignment endpoint's default (PROTOCOL §2.7).
    pub const BOTH: Granularities = Granularities {
        word: true,
        segment: true,
    };

    /// Builds the set from the values gathered by [`FormFields::list`]; an empty list
    /// gives the default, an unknown value is an error.
    pub fn from_values<S: AsRef<str>>(values: &[S]) -> Result<Self, FieldError> {
        if values.is_empty() {
            return Ok(Self::default());
        }
        let mut out = Granularities {
            word: false,
            segment: false,
        };
        for value in values {
            match value.as_ref().trim().to_ascii_lowercase().as_str() {
                "word" => out.word = true,
                "segment" => out.segment = true,
                _ => {
                    return Err(unknown_value(
                        Self::PARAM,
                        value.as_ref(),
                        ["word", "segment"].into_iter(),
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// A validated batch request: everything but the audio itself.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRequest {
    /// Chosen by the route, not by a field.
    pub task: Task,
    /// Model name as sent; the server maps aliases (PROTOCOL §2.1.8). `None` = default.
    pub model: Option<String>,
    /// Lower-case ISO code; `None` = auto-detect. For translations it is the source language.
    pub language: Option<String>,
    /// Vocabulary or style hint for the decoder.
    pub prompt: Option<String>,
    /// Response body format; ignored while streaming (PROTOCOL §2.5).
    pub response_format: ResponseFormat,
    /// Decoding temperatures in fallback order, each in `0..=1` (PROTOCOL §2.1.6).
    /// `None` = the server's default.
    pub temperature: Option<Vec<f32>>,
    /// As parsed, even when the format is not `verbose_json`: renderers only look at it
    /// for `verbose_json` (PROTOCOL §2.4, ignored silently otherwise).
    pub granularities: Granularities,
    /// Voice-activity detector.
    pub vad_model: VadModel,
    /// Word-timing aligner.
    pub alignment_model: AlignmentModel,
    /// Loudness preset.
    pub preprocessing: Preprocessing,
    /// Answer with SSE (PROTOCOL §2.5). Always `false` for translations and alignments.
    pub stream: bool,
    /// Always `false` in a parsed request: `diarize=true` is refused because this server
    /// has no diarizer. Kept so callers can code against the field.
    pub diarize: bool,
    /// `include[]=logprobs` was sent (PROTOCOL §2.2).
    pub include_logprobs: bool,
    /// `include[]=interpolated`: words say whether their time was interpolated (Ember).
    pub include_interpolated: bool,
    /// The transcript to align (`/audio/alignments`, PROTOCOL §2.7).
    pub text: Option<String>,
}

/// Per-endpoint defaults that differ between the batch routes.
struct EndpointDefaults {
    response_format: ResponseFormat,
    granularities: Granularities,
    allow_stream: bool,
}

impl AudioRequest {
    /// Parses a transcription (`Task::Transcribe`) or translation (`Task::Translate`)
    /// request. Unknown fields are ignored (PROTOCOL §2.1.7); `stream` is ignored for
    /// translations, which OpenAI does not stream.
    pub fn from_fields(task: Task, fields: &FormFields) -> Result<AudioRequest, FieldError> {
        let defaults = EndpointDefaults {
            response_format: ResponseFormat::Json,
            granularities: Granularities::SEGMENT,
            allow_stream: task == Task::Transcribe,
        };
        Self::parse(task, fields, &defaults)
    }

    /// Parses an alignment request (PROTOCOL §2.7): `text` is required, the default
    /// format is `verbose_json` and the default granularities are words and segments.
    pub fn from_alignment_fields(fields: &FormFields) -> Result<AudioRequest, FieldError> {
        let defaults = EndpointDefaults {
            response_format: ResponseFormat::VerboseJson,
            granularities: Granularities::BOTH,
            allow_stream: false,
        };
        let request = Self::parse(Task::Transcribe, fields, &defaults)?;
        if request.text.is_none() {
            return Err(FieldError::new(
                "text",
                "`text` is required: the transcript to align with the audio",
            ));
        }
        Ok(request)
    }

    fn parse(
        task: Task,
        fields: &FormFields,
        defaults: &EndpointDefaults,
    ) -> Result<AudioRequest, FieldError> {
        if fields.bool("diarize")? == Some(true) {
            return Err(FieldError::new(
                "diarize",
                "`diarize` is not supported by this server (it has no diarization model); \
                 send `diarize=false` or leave it out",
            ));
        }
        let language = match fields.get("language") {
            Some(raw) => parse_language(raw)?,
            None => None,
        };
        let granularity_values = fields.list(Granularities::PARAM);
        let granularities = if granularity_values.is_empty() {
            defaults.granularities
        } else {
            Granularities::from_values(&granularity_values)?
        };
        Ok(AudioRequest {
            task,
            model: fields.get("model").map(str::to_owned),
            language,
            prompt: fields.get("prompt").map(str::to_owned),
            response_format: parse_opt(fields, ResponseFormat::PARAM)?
                .unwrap_or(defaults.response_format),
            temperature: parse_temperature(fields)?,
            granularities,
            vad_model: parse_opt(fields, VadModel::PARAM)?.unwrap_or_default(),
            alignment_model: parse_opt(fields, AlignmentModel::PARAM)?.unwrap_or_default(),
            preprocessing: parse_opt(fields, Preprocessing::PARAM)?.unwrap_or_default(),
            stream: defaults.allow_stream && fields.bool("stream")?.unwrap_or(false),
            diarize: false,
            include_logprobs: fields.list("include").iter().any(|v| v == "logprobs"),
            include_interpolated: fields.list("include").iter().any(|v| v == "interpolated"),
            text: fields.get("text").map(str::to_owned),
        })
    }
}

/// Parses an optional enum field; absent or empty is `None`.
fn parse_opt<T: FromStr<Err = FieldError>>(
    fields: &FormFields,
    name: &str,
) -> Result<Option<T>, FieldError> {
    fields.get(name).map(str::parse).transpose()
}

/// `temperature` as one value or a fallback list, each within `0..=1` (PROTOCOL §2.2).
fn parse_temperature(fields: &FormFields) -> Result<Option<Vec<f32>>, FieldError> {
    let values = fields.f32_list("temperature")?;
    if let Some(bad) = values.iter().flatten().find(|t| !(0.0..=1.0).contains(*t)) {
        return Err(FieldError::new(
            "temperature",
            format!("`temperature` values must be between 0 and 1, got `{bad}`"),
        ));
    }
    Ok(values)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormFields {
        FormFields::from_pairs(pairs.iter().copied())
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<AudioRequest, FieldError> {
        AudioRequest::from_fields(Task::Transcribe, &form(pairs))
    }

    fn assert_names_param_value_and_choices(
        err: &FieldError,
        param: &str,
        value: &str,
        choices: &[&str],
    ) {
        assert_eq!(err.param, param);
        assert!(
            err.message.contains(&format!("`{param}`")),
            "{}",
            err.message
        );
        assert!(err.message.contains(value), "{}", err.message);
        for choice in choices {
            assert!(
                err.message.contains(&format!("`{choice}`")),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn enums_round_trip_their_wire_names_case_insensitively() {
        for &f in ResponseFormat::ALL {
            assert_eq!(
                f.as_str().to_uppercase().parse::<ResponseFormat>().unwrap(),
                f
            );
        }
        for &v in VadModel::ALL {
            assert_eq!(v.as_str().parse::<VadModel>().unwrap(), v);
        }
        for &a in AlignmentModel::ALL {
            assert_eq!(a.as_str().parse::<AlignmentModel>().unwrap(), a);
        }
        for &p in Preprocessing::ALL {
            assert_eq!(p.as_str().parse::<Preprocessing>().unwrap(), p);
        }
        assert_eq!(" Translate ".parse::<Task>().unwrap(), Task::Translate);
        assert_eq!(Task::Transcribe.as_str(), "transcribe");
        assert_eq!(VadModel::WhisperxPyannet.as_str(), "whisperx-pyannet");
        assert_eq!(Preprocessing::SoftDynamic.to_string(), "soft_dynamic");
    }

    #[test]
    fn enum_errors_name_param_value_and_allowed_values() {
        let err = "xml".parse::<ResponseFormat>().unwrap_err();
        assert_names_param_value_and_choices(
            &err,
            "response_format",
            "xml",
            &["json", "text", "srt", "vtt", "verbose_json"],
        );
        let err = "pyannote".parse::<VadModel>().unwrap_err();
        assert_names_param_value_and_choices(
            &err,
            "vad_model",
            "pyannote",
            &["silero", "webrtc", "whisperx-pyannet"],
        );
        let err = "ctc".parse::<AlignmentModel>().unwrap_err();
        assert_names_param_value_and_choices(
            &err,
            "alignment_model",
            "ctc",
            &["tdnn_ffn", "mms_fa", "gentle", "whisper"],
        );
        let err = "loud".parse::<Preprocessing>().unwrap_err();
        assert_names_param_value_and_choices(
            &err,
            "preprocessing",
            "loud",
            &["none", "dynamic", "soft_dynamic", "bass_dynamic"],
        );
        let err = "align".parse::<Task>().unwrap_err();
        assert_names_param_value_and_choices(&err, "task", "align", &["transcribe", "translate"]);
        let err = Granularities::from_values(&["word", "char"]).unwrap_err();
        assert_names_param_value_and_choices(
            &err,
            "timestamp_granularities",
            "char",
            &["word", "segment"],
        );
    }

    #[test]
    fn diarized_json_is_refused_as_unsupported() {
        let err = "diarized_json".parse::<ResponseFormat>().unwrap_err();
        assert_eq!(err.param, "response_format");
        assert!(err.message.contains("not supported"), "{}", err.message);
    }

    #[test]
    fn defaults_for_a_bare_transcription() {
        let r = parse(&[]).unwrap();
        assert_eq!(
            r,
            AudioRequest {
                task: Task::Transcribe,
                model: None,
                language: None,
                prompt: None,
                response_format: ResponseFormat::Json,
                temperature: None,
                granularities: Granularities::SEGMENT,
                vad_model: VadModel::Silero,
                alignment_model: AlignmentModel::TdnnFfn,
                preprocessing: Preprocessing::None,
                stream: false,
                diarize: false,
                include_logprobs: false,
                include_interpolated: false,
                text: None,
            }
        );
    }

    #[test]
    fn fireworks_sdk_request_parses() {
        let r = parse(&[
            ("model", "whisper-v3"),
            ("vad_model", "silero"),
            ("alignment_model", "mms_fa"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities", "word,segment"),
            ("temperature", "0.0,0.2,0.4"),
            ("preprocessing", "soft_dynamic"),
            ("language", "EN"),
            ("prompt", " um, uh "),
            ("diarize", "False"),
            ("some_future_field", "whatever"),
        ])
        .unwrap();
        assert_eq!(r.model.as_deref(), Some("whisper-v3"));
        assert_eq!(r.alignment_model, AlignmentModel::MmsFa);
        assert_eq!(r.response_format, ResponseFormat::VerboseJson);
        assert_eq!(r.granularities, Granularities::BOTH);
        assert_eq!(r.temperature, Some(vec![0.0, 0.2, 0.4]));
        assert_eq!(r.preprocessing, Preprocessing::SoftDynamic);
        assert_eq!(r.language.as_deref(), Some("en"));
        assert_eq!(r.prompt.as_deref(), Some("um, uh"));
        assert!(!r.diarize);
    }

    #[test]
    fn openai_sdk_request_parses() {
        let r = parse(&[
            ("model", "whisper-1"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("include[]", "logprobs"),
            ("stream", "true"),
            ("chunking_strategy[type]", "server_vad"),
        ])
        .unwrap();
        assert_eq!(r.granularities, Granularities::WORD);
        assert!(r.include_logprobs);
        assert!(r.stream);
    }

    #[test]
    fn granularities_kept_with_non_verbose_format() {
        let r = parse(&[
            ("response_format", "json"),
            ("timestamp_granularities[]", "word"),
        ])
        .unwrap();
        assert_eq!(r.response_format, ResponseFormat::Json);
        assert_eq!(r.granularities, Granularities::WORD);
    }

    #[test]
    fn unknown_granularity_is_an_error() {
        let err = parse(&[("timestamp_granularities[]", "word,sentence")]).unwrap_err();
        assert_eq!(err.param, "timestamp_granularities");
    }

    #[test]
    fn language_auto_and_invalid() {
        assert_eq!(parse(&[("language", "auto")]).unwrap().language, None);
        assert_eq!(
            parse(&[("language", "zh-Hant")])
                .unwrap()
                .language
                .as_deref(),
            Some("zh-hant")
        );
        assert_eq!(
            parse(&[("language", "en-US!")]).unwrap_err().param,
            "language"
        );
    }

    #[test]
    fn temperature_forms_and_range() {
        assert_eq!(
            parse(&[("temperature", "0.2")]).unwrap().temperature,
            Some(vec![0.2])
        );
        assert_eq!(
            parse(&[("temperature", "[0,0.2]")]).unwrap().temperature,
            Some(vec![0.0, 0.2])
        );
        assert_eq!(
            parse(&[("temperature", "1")]).unwrap().temperature,
            Some(vec![1.0])
        );
        let err = parse(&[("temperature", "0.0,1.5")]).unwrap_err();
        assert_eq!(err.param, "temperature");
        assert!(err.message.contains("1.5"), "{}", err.message);
        assert_eq!(
            parse(&[("temperature", "-0.1")]).unwrap_err().param,
            "temperature"
        );
        assert_eq!(
            parse(&[("temperature", "warm")]).unwrap_err().param,
            "temperature"
        );
    }

    #[test]
    fn diarize_true_is_refused_in_any_spelling() {
        for raw in ["true", "True", "1", "yes"] {
            let err = parse(&[("diarize", raw)]).unwrap_err();
            assert_eq!(err.param, "diarize");
            assert!(err.message.contains("not supported"), "{}", err.message);
        }
        assert_eq!(
            parse(&[("diarize", "perhaps")]).unwrap_err().param,
            "diarize"
        );
    }

    #[test]
    fn stream_ignored_for_translations() {
        let f = form(&[("stream", "true")]);
        assert!(
            AudioRequest::from_fields(Task::Transcribe, &f)
                .unwrap()
                .stream
        );
        let t = AudioRequest::from_fields(Task::Translate, &f).unwrap();
        assert!(!t.stream);
        assert_eq!(t.task, Task::Translate);
        assert_eq!(parse(&[("stream", "nah")]).unwrap_err().param, "stream");
    }

    #[test]
    fn bad_enum_field_in_request_names_it() {
        assert_eq!(parse(&[("vad_model", "x")]).unwrap_err().param, "vad_model");
        assert_eq!(
            parse(&[("alignment_model", "x")]).unwrap_err().param,
            "alignment_model"
        );
        assert_eq!(
            parse(&[("preprocessing", "x")]).unwrap_err().param,
            "preprocessing"
        );
        assert_eq!(
            parse(&[("response_format", "diarized_json")])
                .unwrap_err()
                .param,
            "response_format"
        );
    }

    #[test]
    fn alignment_defaults_and_required_text() {
        let r = AudioRequest::from_alignment_fields(&form(&[
            ("text", "hello world"),
            ("stream", "true"),
        ]))
        .unwrap();
        assert_eq!(r.response_format, ResponseFormat::VerboseJson);
        assert_eq!(r.granularities, Granularities::BOTH);
        assert_eq!(r.text.as_deref(), Some("hello world"));
        assert!(!r.stream);
        let explicit = AudioRequest::from_alignment_fields(&form(&[
            ("text", "hi"),
            ("response_format", "srt"),
            ("timestamp_granularities", "segment"),
        ]))
        .unwrap();
        assert_eq!(explicit.response_format, ResponseFormat::Srt);
        assert_eq!(explicit.granularities, Granularities::SEGMENT);
        let err = AudioRequest::from_alignment_fields(&form(&[("text", "  ")])).unwrap_err();
        assert_eq!(err.param, "text");
    }
}
