//! Word timing for every path (PROTOCOL §2.7): which aligner a request gets, re-timing
//! a transcript's words with a CTC aligner, and aligning a client's text
//! (`/v1/audio/alignments`).
//!
//! `alignment_model` picks the aligner: `tdnn_ffn` (the English phoneme CTC model,
//! also the Fireworks SDK's default, which it always sends), an operator-installed CTC
//! aligner such as `mms_fa`, `whisper` (cross-attention DTW, any language) or
//! `whisper_tokens` (raw token times). `tdnn_ffn` for a non-English language, or when it
//! is not installed, falls back to `whisper`: the SDK sends `tdnn_ffn` for every
//! language, and a 400 there would break every non-English word-timestamp call.

use std::sync::Arc;
use std::time::Instant;

use ember_models::align::english::spoken_words;
use ember_models::align::finish;
use ember_models::{
    AlignEngine, AlignInput, AlignRequest, AlignWindow, AlignedWord, AsrEngine, AsrOutput, Priority,
};
use ember_protocol::{AlignmentModel, AudioRequest, Segment, Transcript, Word};

use crate::error::ApiError;

/// How a request's words get their times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordTimer {
    /// A CTC aligner by name.
    Ctc(String),
    /// Whisper cross-attention DTW.
    WhisperDtw,
    /// Whisper's timestamp tokens as decoded.
    WhisperTokens,
}

/// Samples of audio a CTC window may extend past its transcript segment on each side
/// (Whisper segment bounds are often off by a few hundred ms).
const SEGMENT_PAD_SAMPLES: usize = 8_000;
/// Speech chunks of one alignment window for `/v1/audio/alignments` (seconds of audio);
/// bounds the trellis (`ctc::MAX_TRELLIS_CELLS`) and the acoustic model's input.
const TEXT_CHUNK_SAMPLES: usize = 60 * 16_000;
/// A sentence segment of an aligned text ends at a pause this long (ms) ...
const SEGMENT_PAUSE_MS: u64 = 1_500;
/// ... or after this many words.
const SEGMENT_MAX_WORDS: usize = 40;

/// The aligner for `requested` and `language` (`None` = not known yet). Errors name
/// the installed aligners.
pub fn word_timer(
    requested: AlignmentModel,
    language: Option<&str>,
    aligners: Option<&AlignEngine>,
) -> Result<WordTimer, ApiError> {
    let installed = |name: &str| aligners.and_then(|a| a.get(name));
    match requested {
        AlignmentModel::Whisper => Ok(WordTimer::WhisperDtw),
        AlignmentModel::WhisperTokens => Ok(WordTimer::WhisperTokens),
        AlignmentModel::TdnnFfn => {
            let english = language.is_none_or(|l| l == "en");
            match installed("tdnn_ffn") {
                Some(_) if english => Ok(WordTimer::Ctc("tdnn_ffn".to_string())),
                _ => Ok(WordTimer::WhisperDtw),
            }
        }
        other => {
            let name = other.as_str();
            match installed(name) {
                Some(m) if language.is_none_or(|l| m.supports(l)) => {
                    Ok(WordTimer::Ctc(name.to_string()))
                }
                Some(_) => Err(ApiError::invalid_param(
                    AlignmentModel::PARAM,
                    format!(
                        "`alignment_model` `{name}` does not support language `{}`",
                        language.unwrap_or_default()
                    ),
                )),
                None => Err(ApiError::invalid_param(
                    AlignmentModel::PARAM,
                    format!(
                        "`alignment_model` `{name}` is not installed; installed aligners: {}",
                        installed_names(aligners)
                    ),
                )),
            }
        }
    }
}

/// `tdnn_ffn`, …, `whisper`, `whisper_tokens`, in backticks.
fn installed_names(aligners: Option<&AlignEngine>) -> String {
    let mut names: Vec<String> = aligners.map(AlignEngine::names).unwrap_or_default();
    names.push("whisper".into());
    names.push("whisper_tokens".into());
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the decode must run with DTW: the words are wanted and the aligner may turn
/// out to be `whisper` once the language is known.
pub fn decode_needs_dtw(
    request: &AudioRequest,
    aligners: Option<&AlignEngine>,
    english_only_model: bool,
) -> bool {
    if !wants_word_times(request) {
        return false;
    }
    let language = request
        .language
        .as_deref()
        .or(english_only_model.then_some("en"));
    match word_timer(request.alignment_model, language, aligners) {
        Ok(WordTimer::WhisperDtw) => true,
        // Language unknown: tdnn_ffn covers English, DTW everything else.
        Ok(WordTimer::Ctc(_)) => language.is_none() && !english_only_model,
        _ => false,
    }
}

/// Word times are rendered only in `verbose_json` with word granularity (or always,
/// for alignments: the caller checks its own route).
pub fn wants_word_times(request: &AudioRequest) -> bool {
    request.granularities.word
        && request.response_format == ember_protocol::ResponseFormat::VerboseJson
}

/// The alignment window of one segment: its span padded on both sides.
fn segment_window(start_ms: u64, end_ms: u64, words: Vec<String>) -> AlignWindow {
    AlignWindow {
        start: ms_to_samples(start_ms).saturating_sub(SEGMENT_PAD_SAMPLES),
        end: ms_to_samples(end_ms) + SEGMENT_PAD_SAMPLES,
        words,
    }
}

/// Re-times the words of a live stream's decode (times relative to `audio`) in the
/// realtime lane. On failure the Whisper token times stay: a live caption is never
/// held back by its timing.
pub async fn retime_output(
    aligners: &AlignEngine,
    aligner: &str,
    audio: Arc<Vec<f32>>,
    output: &mut AsrOutput,
    deadline: Instant,
) {
    if !aligners
        .get(aligner)
        .is_some_and(|m| m.supports(&output.language))
    {
        return;
    }
    let windows: Vec<AlignWindow> = output
        .segments
        .iter()
        .map(|s| {
            segment_window(
                s.start_ms,
                s.end_ms,
                s.words.iter().map(|w| w.text.clone()).collect(),
            )
        })
        .collect();
    let input = AlignInput::Windows(windows);
    let times = run(
        aligners,
        aligner,
        audio,
        input,
        deadline,
        Priority::Realtime,
    )
    .await;
    let Ok(times) = times else {
        tracing::debug!("stream words keep their Whisper times (aligner busy or failed)");
        return;
    };
    let mut times = times.into_iter();
    for word in output.segments.iter_mut().flat_map(|s| s.words.iter_mut()) {
        if let Some(t) = times.next() {
            word.start_ms = t.start_ms;
            word.end_ms = t.end_ms;
        }
    }
}

/// Re-times a transcript's words with a CTC aligner, one window per segment.
pub async fn retime_with_ctc(
    aligners: &AlignEngine,
    aligner: &str,
    audio: Arc<Vec<f32>>,
    transcript: &mut Transcript,
    deadline: Instant,
) -> Result<(), ApiError> {
    let windows: Vec<AlignWindow> = transcript
        .segments
        .iter()
        .map(|s| {
            segment_window(
                s.start_ms,
                s.end_ms,
                s.words.iter().map(|w| w.word.clone()).collect(),
            )
        })
        .collect();
    let times = run(
        aligners,
        aligner,
        audio,
        AlignInput::Windows(windows),
        deadline,
        Priority::Batch,
    )
    .await?;
    let mut times = times.into_iter();
    for word in transcript
        .segments
        .iter_mut()
        .flat_map(|s| s.words.iter_mut())
    {
        if let Some(t) = times.next() {
            set_time(word, &t);
        }
    }
    Ok(())
}

/// Aligns `text` with the audio's speech by a CTC aligner: speech regions are merged
/// into chunks of up to a minute and the words shared out among them.
pub async fn align_text_with_ctc(
    aligners: &AlignEngine,
    aligner: &str,
    audio: Arc<Vec<f32>>,
    speech: &[std::ops::Range<usize>],
    text: &str,
    deadline: Instant,
) -> Result<Vec<Word>, ApiError> {
    let tokens: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    let chunks = speech_chunks(speech, audio.len());
    let input = AlignInput::Text {
        chunks,
        words: tokens.clone(),
    };
    let times = run(aligners, aligner, audio, input, deadline, Priority::Batch).await?;
    Ok(tokens
        .into_iter()
        .zip(times)
        .map(|(token, t)| timed_word(token, &t))
        .collect())
}

/// Maps the client's text onto a transcript's timed words (the `whisper` aligners
/// for `/v1/audio/alignments`): words that match in order take their times, the rest
/// are interpolated.
pub fn text_onto_transcript(text: &str, transcript: &Transcript) -> Vec<Word> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let heard: Vec<&Word> = transcript.words().collect();
    let key = |w: &str| spoken_words(w).join(" ");
    let token_keys: Vec<String> = tokens.iter().map(|t| key(t)).collect();
    let heard_keys: Vec<String> = heard.iter().map(|w| key(&w.word)).collect();
    let pairs = match_in_order(&token_keys, &heard_keys);
    let placed: Vec<Option<AlignedWord>> = pairs
        .iter()
        .map(|m| {
            m.map(|j| AlignedWord {
                start_ms: heard[j].start_ms,
                end_ms: heard[j].end_ms,
                confidence: heard[j].probability,
                interpolated: false,
            })
        })
        .collect();
    let times = finish(placed, (0, transcript.duration_ms));
    tokens
        .iter()
        .zip(times)
        .map(|(token, t)| timed_word(token.to_string(), &t))
        .collect()
}

/// A client's token with its aligned time.
fn timed_word(token: String, time: &AlignedWord) -> Word {
    let mut word = Word {
        word: token,
        start_ms: 0,
        end_ms: 0,
        probability: 0.0,
        interpolated: false,
    };
    set_time(&mut word, time);
    word
}

/// Words per block when matching long texts: the table is `block²` cells.
const MATCH_BLOCK_WORDS: usize = 2_000;

/// The longest common subsequence of two word lists, as the index in `b` each word of
/// `a` matched. Long lists are matched in proportional blocks so memory stays bounded.
fn match_in_order(a: &[String], b: &[String]) -> Vec<Option<usize>> {
    if a.len() <= MATCH_BLOCK_WORDS || b.is_empty() {
        return match_block(a, b);
    }
    let blocks = a.len().div_ceil(MATCH_BLOCK_WORDS);
    let mut matched = Vec::with_capacity(a.len());
    for k in 0..blocks {
        let (a0, a1) = (k * a.len() / blocks, (k + 1) * a.len() / blocks);
        let (b0, b1) = (k * b.len() / blocks, (k + 1) * b.len() / blocks);
        matched.extend(
            match_block(&a[a0..a1], &b[b0..b1])
                .into_iter()
                .map(|m| m.map(|j| j + b0)),
        );
    }
    matched
}

/// [`match_in_order`] for one block (a band around the diagonal).
fn match_block(a: &[String], b: &[String]) -> Vec<Option<usize>> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return vec![None; n];
    }
    let band = 64 + n.abs_diff(m);
    let diagonal = |i: usize| i * m / n;
    let in_band = |i: usize, j: usize| j + band >= diagonal(i) && j <= diagonal(i) + band;
    // Outside the band cells stay 0, which only loses matches far off the diagonal.
    let mut lengths = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 1..=n {
        for j in 1..=m {
            if !in_band(i - 1, j - 1) {
                continue;
            }
            lengths[at(i, j)] = if a[i - 1] == b[j - 1] && !a[i - 1].is_empty() {
                lengths[at(i - 1, j - 1)] + 1
            } else {
                lengths[at(i - 1, j)].max(lengths[at(i, j - 1)])
            };
        }
    }
    let mut matched = vec![None; n];
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] && !a[i - 1].is_empty() && in_band(i - 1, j - 1) {
            matched[i - 1] = Some(j - 1);
            i -= 1;
            j -= 1;
        } else if lengths[at(i - 1, j)] >= lengths[at(i, j - 1)] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    matched
}

/// Sentence segments over aligned words: a segment ends after `.`, `!` or `?`, at a
/// long pause, or at [`SEGMENT_MAX_WORDS`].
pub fn sentence_segments(words: Vec<Word>) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut current: Vec<Word> = Vec::new();
    let mut words = words.into_iter().peekable();
    while let Some(word) = words.next() {
        let sentence_end = word.word.ends_with(['.', '!', '?', '…']);
        let pause = words
            .peek()
            .is_some_and(|next| next.start_ms >= word.end_ms + SEGMENT_PAUSE_MS);
        current.push(word);
        if sentence_end || pause || current.len() >= SEGMENT_MAX_WORDS || words.peek().is_none() {
            let text = current
                .iter()
                .map(|w| w.word.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            segments.push(Segment {
                id: segments.len() as u32,
                start_ms: current.first().map_or(0, |w| w.start_ms),
                end_ms: current.last().map_or(0, |w| w.end_ms),
                text,
                tokens: Vec::new(),
                temperature: 0.0,
                avg_logprob: 0.0,
                compression_ratio: 0.0,
                no_speech_prob: 0.0,
                words: std::mem::take(&mut current),
            });
        }
    }
    segments
}

async fn run(
    aligners: &AlignEngine,
    aligner: &str,
    audio: Arc<Vec<f32>>,
    input: AlignInput,
    deadline: Instant,
    priority: Priority,
) -> Result<Vec<AlignedWord>, ApiError> {
    let receiver = aligners.submit(
        AlignRequest {
            aligner: aligner.to_string(),
            audio,
            input,
            priority,
        },
        deadline,
    )?;
    receiver
        .await
        .map_err(|_| ApiError::internal("the aligner stopped unexpectedly"))?
        .map_err(ApiError::from)
}

fn set_time(word: &mut Word, time: &AlignedWord) {
    word.start_ms = time.start_ms;
    word.end_ms = time.end_ms;
    word.interpolated = time.interpolated;
    if !time.interpolated {
        word.probability = time.confidence;
    }
}

fn ms_to_samples(ms: u64) -> usize {
    (ms as usize).saturating_mul(16)
}

/// Speech regions merged into chunks of at most [`TEXT_CHUNK_SAMPLES`] (a longer
/// region is cut), covering the audio from the first region to the last.
fn speech_chunks(speech: &[std::ops::Range<usize>], len: usize) -> Vec<(usize, usize)> {
    if speech.is_empty() {
        return vec![(0, len)];
    }
    let mut chunks: Vec<(usize, usize)> = Vec::new();
    for region in speech {
        let mut start = region.start;
        while start < region.end {
            let end = region.end.min(start + TEXT_CHUNK_SAMPLES);
            match chunks.last_mut() {
                Some(last) if end - last.0 <= TEXT_CHUNK_SAMPLES => last.1 = end,
                _ => chunks.push((start, end)),
            }
            start = end;
        }
    }
    chunks
}

/// Whether the engine's model for this request is English-only (its words are English).
pub fn english_only(asr: &AsrEngine, model: Option<&str>) -> bool {
    asr.registry()
        .resolve(model)
        .is_ok_and(|spec| spec.english_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &str) -> Vec<String> {
        words.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn in_order_matching_skips_missing_and_extra_words() {
        let a = strings("the quick brown fox jumps");
        let b = strings("a quick fox jumps high");
        assert_eq!(
            match_in_order(&a, &b),
            vec![None, Some(1), None, Some(2), Some(3)]
        );
    }

    #[test]
    fn chunks_merge_regions_up_to_a_minute() {
        let minute = TEXT_CHUNK_SAMPLES;
        let chunks = speech_chunks(&[0..100, 200..300, minute..minute + 10], minute * 2);
        assert_eq!(chunks, vec![(0, 300), (minute, minute + 10)]);
        let region = 0..minute * 2 + 5;
        let long = speech_chunks(std::slice::from_ref(&region), minute * 3);
        assert_eq!(long.len(), 3);
        assert_eq!(speech_chunks(&[], 50), vec![(0, 50)]);
    }

    #[test]
    fn sentences_end_at_punctuation_and_pauses() {
        let word = |w: &str, s: u64, e: u64| Word {
            word: w.into(),
            start_ms: s,
            end_ms: e,
            probability: 1.0,
            interpolated: false,
        };
        let segments = sentence_segments(vec![
            word("Hello", 0, 300),
            word("there.", 300, 600),
            word("How", 700, 900),
            word("are", 3000, 3200),
        ]);
        let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["Hello there.", "How", "are"]);
        assert_eq!((segments[0].start_ms, segments[0].end_ms), (0, 600));
    }
}
