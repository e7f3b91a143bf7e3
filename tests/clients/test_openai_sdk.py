"""The official OpenAI Python SDK, unchanged, pointed at Ember (`base_url=.../v1`)."""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest
from openai.types.audio import TranscriptionVerbose

from ember_testlib import (
    AUTH_KEY,
    WER_MAX_JFK,
    WER_MAX_SHORT,
    check_cue_transcript,
    check_spans,
    clip,
    median,
    normalise,
    parse_srt,
    parse_vtt,
    record_wer,
    squash_ws,
    wer,
    word_start_errors,
)

STREAM_END_GRACE_S = 5
MODEL = "whisper-1"  # the hosted alias OpenAI users send; maps to the default model
ENGLISH_WORDS = {
    "the", "a", "an", "is", "are", "has", "have", "been", "was", "your", "you", "please", "enter",
    "number", "agent", "followed", "by", "key", "of", "to", "and", "this", "that", "already", "in",
    "with", "for", "on", "it", "be", "not", "sign", "pound", "logged", "authenticated",
}


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def jfk_verbose(client):
    """One verbose_json (word + segment) transcription of jfk, shared by the checks below."""
    jfk = clip("jfk")
    raw = client.audio.transcriptions.with_raw_response.create(
        file=open(jfk.path, "rb"),
        model=MODEL,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    return raw, json.loads(raw.text), raw.parse()


# --------------------------------------------------------------------------- json, text, srt, vtt


def test_json_with_file_object(client, request):
    jfk = clip("jfk")
    with open(jfk.path, "rb") as f:
        result = client.audio.transcriptions.create(file=f, model=MODEL)
    assert isinstance(result.text, str) and result.text.strip()
    w = wer(jfk.transcript, result.text)
    record_wer(request, "openai_json_jfk", w)
    assert w <= WER_MAX_JFK, f"WER {w:.3f} > {WER_MAX_JFK}: {result.text!r}"


def test_text_raw_bytes_44k_with_optional_fields(client, request):
    """Raw bytes (httpx sends filename `upload`, application/octet-stream: the server must sniff
    WAV), 44.1 kHz input resampled server-side, the optional fields, and the text format."""
    c = clip("praat_north_wind")
    result = client.audio.transcriptions.create(
        file=c.read_bytes(),
        model=MODEL,
        response_format="text",
        language="en",
        prompt="A fable by Aesop.",
        temperature=0.0,
    )
    assert isinstance(result, str), f"text format must come back as str, got {type(result)}"
    assert not result.lstrip().startswith("{"), f"text format returned JSON: {result!r}"
    w = wer(c.transcript, result)
    record_wer(request, "openai_text_bytes_north_wind", w)
    assert w <= WER_MAX_SHORT, f"WER {w:.3f}: {result!r}"


def test_srt_format(client, request):
    jfk = clip("jfk")
    result = client.audio.transcriptions.create(
        file=open(jfk.path, "rb"), model=MODEL, response_format="srt", language="en"
    )
    assert isinstance(result, str)
    cues = parse_srt(result)
    check_cue_transcript(request, "openai_srt_jfk", jfk, cues, "srt", WER_MAX_JFK, result)


def test_vtt_format(client, request):
    c = clip("sense_and_sensibility_01_austen_64kb-0870")
    result = client.audio.transcriptions.create(
        file=(c.path.name, c.read_bytes()), model=MODEL, response_format="vtt", language="en"
    )
    assert isinstance(result, str)
    assert result.startswith("WEBVTT"), f"vtt must start with WEBVTT: {result[:60]!r}"
    cues = parse_vtt(result)
    check_cue_transcript(request, "openai_vtt_librivox0870", c, cues, "vtt", WER_MAX_SHORT, result)


# --------------------------------------------------------------------------- verbose_json


def test_verbose_json_schema(jfk_verbose):
    raw, body, parsed = jfk_verbose
    assert raw.headers.get("content-type", "").startswith("application/json")
    assert raw.headers.get("x-request-id"), "every response must carry x-request-id"
    # Strict validation against the SDK's own models (the SDK itself does not validate).
    TranscriptionVerbose.model_validate(body)
    for seg in body["segments"]:
        # OpenAI's typed segment requires these (PROTOCOL §2.3).
        for key in ("id", "seek", "start", "end", "text", "tokens", "temperature",
                    "avg_logprob", "compression_ratio", "no_speech_prob"):
            assert key in seg, f"segment lacks `{key}`: {seg}"
    assert body.get("task") == "transcribe"
    assert body["language"] in ("en", "english"), body["language"]
    assert abs(parsed.duration - clip("jfk").duration_s) < 0.1, parsed.duration


def test_verbose_json_words_and_segments(jfk_verbose, request):
    _, _, parsed = jfk_verbose
    jfk = clip("jfk")
    assert parsed.words, "timestamp_granularities=[word,segment] must give words"
    assert parsed.segments, "timestamp_granularities=[word,segment] must give segments"
    check_spans([(w.start, w.end) for w in parsed.words], parsed.duration, "word")
    check_spans([(s.start, s.end) for s in parsed.segments], parsed.duration, "segment")
    for w in parsed.words:
        assert w.word.strip(), f"empty word: {w}"
    w_text = wer(jfk.transcript, parsed.text)
    w_words = wer(jfk.transcript, " ".join(w.word for w in parsed.words))
    w_segs = wer(jfk.transcript, " ".join(s.text for s in parsed.segments))
    record_wer(request, "openai_verbose_text_jfk", w_text)
    record_wer(request, "openai_verbose_words_jfk", w_words)
    assert w_text <= WER_MAX_JFK and w_words <= WER_MAX_JFK and w_segs <= WER_MAX_JFK, (w_text, w_words, w_segs)
    assert normalise(parsed.text) == normalise(" ".join(s.text for s in parsed.segments))


def test_verbose_json_word_times_match_reference(jfk_verbose, request):
    """Word starts against the pocketsphinx forced alignment (silver, ±0.3 s)."""
    _, _, parsed = jfk_verbose
    ref = clip("jfk").reference_words()
    errors = word_start_errors(ref, [(w.start, w.end, w.word) for w in parsed.words])
    assert len(errors) >= 0.8 * len(ref), f"only {len(errors)}/{len(ref)} words matched the reference"
    med = median(errors)
    within = sum(e <= 0.5 for e in errors) / len(errors)
    request.node.user_properties.append(("word_start_median_err_s", round(med, 3)))
    print(f"\n[timing] jfk word-start median |err| = {med:.3f} s, {within:.0%} within 0.5 s")
    assert med <= 0.35, f"median word-start error {med:.3f} s"
    assert within >= 0.8, f"only {within:.0%} of word starts within 0.5 s of the reference"


# --------------------------------------------------------------------------- translation


def test_translation_spanish_to_english(client, request):
    c = clip("asterisk_es_agent-alreadyon")
    with open(c.path, "rb") as f:
        result = client.audio.translations.create(file=f, model=MODEL)
    words = normalise(result.text)
    print(f"\n[translation] es -> {result.text!r}")
    assert words, "empty translation"
    assert words != normalise(c.transcript), "translation returned the Spanish transcript"
    english = [w for w in words if w in ENGLISH_WORDS]
    assert len(set(english)) >= 2, f"translation does not look English: {result.text!r}"
    spanish_vocab = set(normalise(c.transcript)) - {"agente"}
    overlap = sum(w in spanish_vocab for w in words) / len(words)
    assert overlap < 0.3, f"{overlap:.0%} of the words are Spanish: {result.text!r}"


# --------------------------------------------------------------------------- streaming


def test_stream_true_sse(client, request):
    jfk = clip("jfk")
    stream = client.audio.transcriptions.create(file=open(jfk.path, "rb"), model=MODEL, stream=True, language="en")
    events, finished, errors = [], threading.Event(), []

    def consume():
        try:
            for event in stream:
                events.append(event)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            finished.set()

    threading.Thread(target=consume, daemon=True).start()
    deadline = time.monotonic() + 120
    done_at = None
    while not finished.wait(0.1):
        if done_at is None and any(e.type == "transcript.text.done" for e in events):
            done_at = time.monotonic()
        if done_at is not None and time.monotonic() - done_at > STREAM_END_GRACE_S:
            stream.close()
            pytest.fail(
                f"the server sent transcript.text.done but did not end the SSE response within "
                f"{STREAM_END_GRACE_S} s: `for event in stream` never returns. Events: {[e.type for e in events]}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            stream.close()
            pytest.fail(f"no end of stream within 120 s; events: {[e.type for e in events]}", pytrace=False)
    if errors:
        raise errors[0]
    types = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert deltas, f"no transcript.text.delta events, got {types}"
    assert types.count("transcript.text.done") == 1, f"want exactly one done event: {types}"
    assert types[-1] == "transcript.text.done", f"done must be the last event: {types}"
    done = events[-1]
    assert squash_ws(done.text) == squash_ws("".join(deltas)), (done.text, deltas)
    w = wer(jfk.transcript, done.text)
    record_wer(request, "openai_stream_jfk", w)
    assert w <= WER_MAX_JFK, f"WER {w:.3f}: {done.text!r}"


# --------------------------------------------------------------------------- misc


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert ids, "model list is empty"
    assert "base" in ids, ids


def test_auth_with_key(auth_base_url):
    c = clip("praat_digit_1_b")
    good = openai.OpenAI(base_url=f"{auth_base_url}/v1", api_key=AUTH_KEY, max_retries=0, timeout=60)
    result = good.audio.transcriptions.create(file=c.read_bytes(), model=MODEL, response_format="text")
    assert isinstance(result, str)

    bad = openai.OpenAI(base_url=f"{auth_base_url}/v1", api_key="wrong-key", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.audio.transcriptions.create(file=c.read_bytes(), model=MODEL)
    err = info.value
    assert err.status_code == 401
    assert err.request_id, "401 must carry x-request-id"
    assert isinstance(err.body, dict) and err.body.get("type") == "invalid_request_error", err.body


def test_embeddings_sdk_base64_and_float(client):
    """The SDK asks for base64 by default and decodes it to floats itself."""
    texts = ["The quick brown fox.", "A sentence about speech recognition servers."]
    result = client.embeddings.create(model="text-embedding-3-small", input=texts)
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 384 for d in result.data)
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
    for a, b in zip(result.data, floats.data):
        assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding)) < 1e-6
    assert result.usage.prompt_tokens > 0
    short = client.embeddings.create(model="all-MiniLM-L6-v2", input="hello", dimensions=32)
    assert len(short.data[0].embedding) == 32
    with pytest.raises(openai.BadRequestError) as error:
        client.embeddings.create(model="all-MiniLM-L6-v2", input=[])
    assert "input" in str(error.value)
