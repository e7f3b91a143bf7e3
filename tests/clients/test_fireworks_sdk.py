"""The old Fireworks Python SDK (fireworks-ai 0.15.12) `AudioInference`, unchanged.

It is given the base URL without `/v1` (PROTOCOL §1.1) and appends `/v1/audio/...` itself.
Its response models are pydantic with extra="forbid", so a parse is itself a schema check."""

from __future__ import annotations

import httpx
import pytest
from fireworks.client.audio import AudioInference
from fireworks.client.audio_api import (
    TranscriptionResponse,
    TranscriptionVerboseResponse,
)
from fireworks.client.error import AuthenticationError

from ember_testlib import (
    AUTH_KEY,
    WER_MAX_JFK,
    WER_MAX_SHORT,
    check_cue_transcript,
    check_spans,
    clip,
    normalise,
    parse_srt,
    parse_vtt,
    record_wer,
    wer,
)

ENGLISH_WORDS = {
    "the", "a", "an", "is", "are", "has", "have", "been", "your", "you", "please", "enter", "dial",
    "number", "agent", "followed", "by", "key", "of", "to", "and", "this", "that", "now", "online",
    "in", "with", "for", "currently", "line", "pound", "sign", "connected",
}


@pytest.fixture(scope="module")
def fw(base_url):
    # The SDK's own defaults (model whisper-v3, vad silero, alignment tdnn_ffn) are sent on every call.
    return AudioInference(base_url=base_url, api_key="x", request_timeout=120)


def test_json_bytes(fw, request):
    jfk = clip("jfk")
    result = fw.transcribe(audio=jfk.read_bytes(), language="en")
    assert isinstance(result, TranscriptionResponse)
    w = wer(jfk.transcript, result.text)
    record_wer(request, "fireworks_json_jfk", w)
    assert w <= WER_MAX_JFK, f"WER {w:.3f}: {result.text!r}"


def test_text_path_with_all_optional_fields(fw, request):
    """A path (the SDK reads it; still filename `upload`), every optional field the SDK can
    send, and the text format (the SDK sends `Accept: application/json` even here)."""
    c = clip("arctic_slt_a0009")
    result = fw.transcribe(
        audio=str(c.path),
        model="whisper-v3-turbo",
        vad_model="silero",
        alignment_model="tdnn_ffn",
        prompt="Gregson",
        response_format="text",
        temperature=0.0,
        preprocessing="none",
        language="en",
    )
    assert isinstance(result, str)
    assert not result.lstrip().startswith("{"), f"text format returned JSON: {result!r}"
    w = wer(c.transcript, result)
    record_wer(request, "fireworks_text_arctic", w)
    assert w <= WER_MAX_SHORT, f"WER {w:.3f}: {result!r}"


def test_srt_format(fw, request):
    c = clip("sense_and_sensibility_01_austen_64kb-0920")
    result = fw.transcribe(audio=c.read_bytes(), response_format="srt", language="en")
    assert isinstance(result, str)
    cues = parse_srt(result)
    check_cue_transcript(request, "fireworks_srt_librivox0920", c, cues, "srt", WER_MAX_SHORT, result)


def test_vtt_format(fw, request):
    c = clip("ps_forever2")
    result = fw.transcribe(audio=c.read_bytes(), response_format="vtt", language="en")
    assert isinstance(result, str) and result.startswith("WEBVTT"), result[:60]
    cues = parse_vtt(result)
    check_cue_transcript(request, "fireworks_vtt_forever2", c, cues, "vtt", WER_MAX_SHORT, result)


def test_verbose_json_word_and_segment(fw, request):
    jfk = clip("jfk")
    result = fw.transcribe(
        audio=jfk.read_bytes(),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    # Reaching here means the strict (extra="forbid") pydantic models accepted the body.
    assert isinstance(result, TranscriptionVerboseResponse)
    assert result.task == "transcribe"
    assert result.language in ("en", "english")
    assert abs(result.duration - jfk.duration_s) < 0.1
    assert result.words, "word granularity must give words"
    assert result.segments, "segment granularity must give segments"
    check_spans([(w.start, w.end) for w in result.words], result.duration, "word")
    check_spans([(s.start, s.end) for s in result.segments], result.duration, "segment")
    check_spans([(s.audio_start, s.audio_end) for s in result.segments], result.duration, "segment audio_")
    for w in result.words:
        assert w.language, w
    for s in result.segments:
        assert s.language
    w = wer(jfk.transcript, result.text)
    record_wer(request, "fireworks_verbose_jfk", w)
    assert w <= WER_MAX_JFK, f"WER {w:.3f}: {result.text!r}"
    assert wer(jfk.transcript, " ".join(x.word for x in result.words)) <= WER_MAX_JFK


def test_verbose_json_default_granularity_sdk_default_base_url(base_url):
    """Base URL in the SDK-default shape `.../inference/v1` makes the SDK call
    `/inference/v1/v1/audio/...`; verbose_json without granularities means segments only."""
    fw = AudioInference(base_url=f"{base_url}/inference/v1", api_key="x", request_timeout=120)
    c = clip("ps_cards_005")
    result = fw.transcribe(audio=c.read_bytes(), response_format="verbose_json", language="en")
    assert isinstance(result, TranscriptionVerboseResponse)
    assert result.segments, "the default granularity is segment"
    assert not result.words, "words only when asked for"
    check_spans([(s.start, s.end) for s in result.segments], result.duration, "segment")


def test_translate_verbose_json(fw):
    c = clip("asterisk_fr_agent-alreadyon")
    result = fw.translate(audio=c.read_bytes(), response_format="verbose_json", temperature=0.0)
    assert isinstance(result, TranscriptionVerboseResponse)
    assert result.task == "translate"
    assert result.segments
    check_spans([(s.start, s.end) for s in result.segments], result.duration, "segment")
    words = normalise(result.text)
    print(f"\n[translation] fr -> {result.text!r}")
    assert words and words != normalise(c.transcript)
    assert len(set(words) & ENGLISH_WORDS) >= 2, f"translation does not look English: {result.text!r}"


def test_authentication(auth_base_url):
    c = clip("praat_digit_3_b")
    ok = AudioInference(base_url=auth_base_url, api_key=AUTH_KEY, request_timeout=60)
    assert isinstance(ok.transcribe(audio=c.read_bytes(), language="en"), TranscriptionResponse)
    bad = AudioInference(base_url=auth_base_url, api_key="wrong-key", request_timeout=60)
    transport_error = None
    try:
        with pytest.raises(AuthenticationError) as info:
            bad.transcribe(audio=c.read_bytes())
    except httpx.TransportError as e:
        transport_error = type(e).__name__
    if transport_error:
        pytest.fail(
            f"wrong key: the SDK's async httpx client got {transport_error} instead of the 401 response. "
            "The server answers 401 before reading the multipart body and then closes the connection "
            "with the upload unread (TCP reset), so the client never sees the 401.",
            pytrace=False,
        )
    body = info.value.args[0]
    assert isinstance(body, dict), f"the 401 body must be JSON, got {body!r}"
    assert body["error"]["object"] == "error" and body["error"]["type"] == "invalid_request_error", body


def test_align_verbose_json(fw):
    """`AudioInference.align` (PROTOCOL §2.7): the SDK sends only text, vad_model, alignment_model
    (and the file); the strict verbose model must parse and every token of the text gets a time."""
    jfk = clip("jfk")
    result = fw.align(audio=jfk.read_bytes(), text=jfk.transcript)
    assert isinstance(result, TranscriptionVerboseResponse)
    assert [w.word for w in result.words] == jfk.transcript.split()
    check_spans([(w.start, w.end) for w in result.words], result.duration, "word")
    check_spans([(s.start, s.end) for s in result.segments], result.duration, "segment")
    # jfk's first word is spoken at ~0.3 s and its last ends at ~10.5 s (silver timings).
    assert 0.1 < result.words[0].start < 0.6, result.words[0]
    assert 9.8 < result.words[-1].end < 11.0, result.words[-1]


def test_align_srt_and_bad_aligner(fw):
    jfk = clip("jfk")
    srt = fw.align(audio=jfk.read_bytes(), text=jfk.transcript, response_format="srt")
    assert isinstance(srt, str) and "-->" in srt
    assert normalise(" ".join(cue.text for cue in parse_srt(srt))) == normalise(jfk.transcript)
    with pytest.raises(Exception) as error:
        fw.align(audio=jfk.read_bytes(), text=jfk.transcript, alignment_model="gentle")
    assert "not installed" in str(error.value)
