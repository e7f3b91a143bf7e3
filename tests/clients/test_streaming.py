"""Real streaming clients against `GET /v1/audio/transcriptions/streaming` (PROTOCOL §3)
and `/v1/realtime?intent=transcription` (§4), with websocket-client.

Each test replays one client's flow from the PROTOCOL §3.8 checklist:

- the Fireworks cookbook notebook (2025-10): `WebSocketApp`, header auth, 50 ms chunks
  paced in real time, `{"checkpoint_id":"final"}`;
- the cookbook `python/main.py` (2025-07) and the Rust client: 1600 B chunks as fast as
  possible, `stt.input.trace` with `trace_id:"final"`, state replaced per message;
- the LiveKit plugin: its query string (`urlencode(doseq=True)`, so `vad_kwargs=threshold`),
  and its `_process_stream_event` FINAL/INTERIM logic reimplemented;
- control messages (trace, checkpoint, state clear), odd-length and empty frames, non-JSON
  text, auth on the upgrade (401) and the stream limit (429);
- the OpenAI realtime transcription session (beta dialect) with server VAD and manual commit.

Every transcription message is checked against §3.4 (`check_transcription`) and every
session against the cross-message rules (`SegmentHistory`): integer ids that never go
back, newest segment last, final words never rewritten.
Paced tests use tiny.en (`model=` query) unless accuracy is the point."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import wave
from urllib.parse import urlencode

import pytest
import requests
import websocket

from ember_testlib import (
    AUTH_KEY,
    WER_MAX_JFK,
    WER_MAX_SHORT,
    clip,
    normalise,
    record_wer,
    squash_ws,
    wer,
)

pytestmark = pytest.mark.streaming

STREAM_PATH = "/v1/audio/transcriptions/streaming"
REALTIME_PATH = "/v1/realtime"
SAMPLE_RATE = 16000
CHUNK_BYTES = 1600  # 50 ms of s16le mono at 16 kHz
CHUNK_S = 0.05
TAIL_SILENCE_S = 1.5
FAST_MODEL = "tiny.en"
WAIT_S = 90.0  # upper bound for any single server reply (debug build, 2 cores)
# Streaming may decode differently from the batch endpoint (windows, greedy partials):
# allowed WER above the batch WER of the same clip, plus one word of slack.
STREAM_VS_BATCH_POINTS = 0.02

# ---------------------------------------------------------------------------------------
# audio


def pcm16(clip_id: str) -> bytes:
    """The clip's raw s16le 16 kHz mono samples (the shared 16 kHz WAVs only)."""
    c = clip(clip_id)
    with wave.open(str(c.path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE), c.path
        return w.readframes(w.getnframes())


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(round(seconds * SAMPLE_RATE))


def split(data: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def resample_16k_to_24k(pcm: bytes) -> bytes:
    """Linear interpolation (out[n] = in[n * 2/3]); stdlib only, no audioop."""
    n_in = len(pcm) // 2
    src = memoryview(pcm).cast("h")
    n_out = n_in * 3 // 2
    out = bytearray(n_out * 2)
    dst = memoryview(out).cast("h")
    for n in range(n_out):
        pos = n * 2 / 3
        i = int(pos)
        frac = pos - i
        a = src[i]
        b = src[i + 1] if i + 1 < n_in else a
        dst[n] = int(round(a + (b - a) * frac))
    return bytes(out)


# ---------------------------------------------------------------------------------------
# URLs and connections


def ws_base(base_url: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return ("wss://" if scheme == "https" else "ws://") + rest


def stream_url(base_url: str, query: str = "") -> str:
    return ws_base(base_url) + STREAM_PATH + (f"?{query}" if query else "")


class Conn:
    """A websocket-client connection with a reader thread. `events` holds
    (monotonic receive time, message) in arrival order; text frames are parsed as JSON
    (a text frame that is not JSON is kept as the raw string, binary as bytes)."""

    def __init__(self, url: str, header=None, timeout: float = 30.0):
        self.url = url
        self.ws = websocket.create_connection(url, header=header or [], timeout=timeout)
        self.events: list[tuple[float, object]] = []
        self.close_frame: tuple[int | None, str] | None = None
        self.error: str | None = None
        self.cv = threading.Condition()
        self._stopping = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                opcode, data = self.ws.recv_data()
            except websocket.WebSocketTimeoutException:
                if self._stopping:
                    break
                continue
            except Exception as e:  # connection gone
                with self.cv:
                    if not self._stopping and self.close_frame is None:
                        self.error = repr(e)
                    self.cv.notify_all()
                return
            now = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                with self.cv:
                    self.close_frame = (code, bytes(data[2:]).decode("utf-8", "replace"))
                    self.cv.notify_all()
                return
            if opcode == websocket.ABNF.OPCODE_TEXT:
                text = data.decode("utf-8")
                try:
                    msg: object = json.loads(text)
                except ValueError:
                    msg = text
            else:
                msg = bytes(data)
            with self.cv:
                self.events.append((now, msg))
                self.cv.notify_all()

    # sending
    def send_audio(self, chunk: bytes) -> None:
        self.ws.send_binary(chunk)

    def send_json(self, obj) -> None:
        self.ws.send(json.dumps(obj))

    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def stream(self, pcm: bytes, *, chunk: int = CHUNK_BYTES, pace: float | None = CHUNK_S) -> list[float]:
        """Sends pcm in `chunk`-byte binary frames; with `pace`, one frame per `pace` s on an
        absolute schedule (no drift). Returns the monotonic send time of each frame."""
        sent = []
        t0 = time.monotonic()
        for i, part in enumerate(split(pcm, chunk)):
            if pace:
                delay = t0 + i * pace - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.send_audio(part)
            sent.append(time.monotonic())
        return sent

    # receiving
    def wait_for(self, pred, timeout: float = WAIT_S, start: int = 0, what: str = "message") -> int:
        """Index in `events` of the first message from `start` on with pred(msg) true."""
        deadline = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.events):
                    if pred(self.events[i][1]):
                        return i
                    i += 1
                if self.close_frame is not None or self.error is not None:
                    raise AssertionError(
                        f"connection ended while waiting for {what}: close={self.close_frame} "
                        f"error={self.error}; last messages: {self.tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout:.0f} s; last messages: {self.tail()}")
                self.cv.wait(min(left, 1.0))

    def messages(self) -> list:
        with self.cv:
            return [m for _, m in self.events]

    def tail(self, n: int = 3) -> str:
        return " | ".join(json.dumps(m)[:300] if not isinstance(m, bytes) else f"<{len(m)} bytes>" for _, m in self.events[-n:])

    def close(self) -> None:
        self._stopping = True
        try:
            self.ws.send_close()
        except Exception:
            pass
        self._reader.join(timeout=5)
        try:
            self.ws.shutdown()
        except Exception:
            pass


def reply_to(key: str, value: str):
    return lambda m: isinstance(m, dict) and m.get(key) == value


def is_transcription(m) -> bool:
    return isinstance(m, dict) and ("segments" in m or m.get("task") in ("transcribe", "translate"))


# ---------------------------------------------------------------------------------------
# §3.4 message checks

WORD_KEYS = {"word", "language", "probability", "hallucination_score", "is_final"}
SEGMENT_KEYS = {"id", "seek", "text", "language", "words"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_times(obj: dict, wanted: bool, what: str) -> None:
    """`start`/`end` present and ordered when that granularity was asked for, else absent."""
    shown = json.dumps(obj)[:300]
    if wanted:
        assert _is_num(obj.get("start")) and _is_num(obj.get("end")), f"{what} start/end missing: {shown}"
        assert 0 <= obj["start"] <= obj["end"], f"{what} span: {shown}"
    else:
        assert "start" not in obj and "end" not in obj, f"{what} start/end sent without {what} granularity: {shown}"


def check_transcription(msg: dict, *, word_ts: bool = False, segment_ts: bool = False) -> None:
    """One transcription update, per PROTOCOL §3.4."""
    where = json.dumps(msg)[:400]
    assert msg.get("task") == "transcribe", f"task must be 'transcribe': {where}"
    assert isinstance(msg.get("language"), str), f"language: {where}"
    assert isinstance(msg.get("text"), str), f"text: {where}"
    assert isinstance(msg.get("words"), list), f"words: {where}"
    segs = msg.get("segments")
    assert isinstance(segs, list) and segs, f"segments must be a non-empty list: {where}"
    prev_id = None
    flat = []
    for s in segs:
        missing = SEGMENT_KEYS - set(s)
        assert not missing, f"segment lacks {missing}: {json.dumps(s)[:300]}"
        assert _is_int(s["id"]), f"segment id must be an integer, got {s['id']!r}"
        assert prev_id is None or s["id"] > prev_id, f"segment ids not ascending: {[x['id'] for x in segs]}"
        prev_id = s["id"]
        assert _is_int(s["seek"]), f"seek must be an int: {s['seek']!r}"
        assert isinstance(s["text"], str) and isinstance(s["language"], str)
        assert not s["text"].startswith(" "), f"segment text has a leading space: {s['text']!r}"
        check_times(s, segment_ts, "segment")
        seen_nonfinal = False
        for w in s["words"]:
            missing = WORD_KEYS - set(w)
            assert not missing, f"word lacks {missing}: {w}"
            assert isinstance(w["word"], str) and isinstance(w["is_final"], bool), f"word: {w}"
            assert _is_num(w["probability"]) and _is_num(w["hallucination_score"]), f"word: {w}"
            assert not w["word"].startswith(" "), f"word has a leading space: {w['word']!r}"
            check_times(w, word_ts, "word")
            if w["is_final"]:
                assert not seen_nonfinal, f"a final word after a non-final one in segment {s['id']}: {json.dumps(s)[:400]}"
            else:
                seen_nonfinal = True
            flat.append(w["word"])
    assert [w.get("word") for w in msg["words"]] == flat, "top-level words must be the segments' words, flattened"
    assert squash_ws(msg["text"]) == squash_ws(" ".join(s["text"] for s in segs)), (
        f"text must be the segment texts joined with ' ': {msg['text']!r} vs {[s['text'] for s in segs]}"
    )


class SegmentHistory:
    """Cross-message rules of one session: the newest segment id never goes back, final
    words are never rewritten, and a segment whose words are all final never changes."""

    def __init__(self) -> None:
        self.newest = None
        self.final_prefix: dict[int, list[str]] = {}
        self.frozen: dict[int, tuple[str, list[str]]] = {}
        self.count = 0

    def add(self, msg: dict) -> None:
        self.count += 1
        segs = msg["segments"]
        newest = segs[-1]["id"]
        assert self.newest is None or newest >= self.newest, f"newest segment id went back: {self.newest} -> {newest}"
        self.newest = newest
        for s in segs:
            sid = s["id"]
            words = [w["word"] for w in s["words"]]
            if sid in self.frozen:
                assert (s["text"], words) == self.frozen[sid], (
                    f"segment {sid} changed after all its words were final: {self.frozen[sid]} -> {(s['text'], words)}"
                )
            prev = self.final_prefix.get(sid, [])
            assert words[: len(prev)] == prev, f"final words of segment {sid} changed: {prev} -> {words}"
            k = 0
            while k < len(s["words"]) and s["words"][k]["is_final"]:
                k += 1
            if k > len(prev):
                self.final_prefix[sid] = words[:k]
            if words and k == len(words):
                self.frozen[sid] = (s["text"], words)


def all_final(msg: dict) -> bool:
    return all(w["is_final"] for s in msg["segments"] for w in s["words"])


def segments_text(segs: dict) -> str:
    return " ".join(segs[k] for k in sorted(segs))


def batch_transcript(base_url: str, pcm: bytes, model: str = "base") -> str:
    """The batch endpoint's text for the same samples (as a WAV upload)."""
    import io

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    r = requests.post(
        f"{base_url}/v1/audio/transcriptions",
        files={"file": ("clip.wav", buf.getvalue(), "audio/wav")},
        data={"model": model, "language": "en", "response_format": "json"},
        timeout=120,
    )
    assert r.status_code == 200, f"batch transcription: {r.status_code} {r.text[:300]}"
    return r.json()["text"]


# ---------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def streaming_route(base_url) -> str:
    """Fails every test here with one clear message when the server has no streaming route."""
    url = stream_url(base_url)
    try:
        ws = websocket.create_connection(url, timeout=15)
    except websocket.WebSocketBadStatusException as e:
        pytest.fail(
            f"GET {STREAM_PATH} did not upgrade (HTTP {e.status_code}): the streaming route is missing or broken",
            pytrace=False,
        )
    ws.close()
    return url


# ---------------------------------------------------------------------------------------
# Fireworks cookbook notebook (2025-10): WebSocketApp, checkpoint final


def test_cookbook_notebook_flow(base_url, streaming_route, request):
    """The notebook's flow with the server's default model (base): WER within a couple of
    points of the batch endpoint on the same audio."""
    jfk = clip("jfk")
    speech = pcm16("jfk")
    audio_chunks = split(speech + silence(TAIL_SILENCE_S))

    batch_text = batch_transcript(base_url, speech)
    batch_wer = wer(jfk.transcript, batch_text)
    record_wer(request, "batch_base_jfk", batch_wer)

    lock = threading.Lock()
    segments: dict = {}
    received: list[tuple[float, dict]] = []
    problems: list[str] = []
    sent_all = threading.Event()
    done = threading.Event()
    t_audio_done = []

    def on_open(ws):
        def stream_audio(ws):
            for chunk in audio_chunks:
                ws.send(chunk, opcode=websocket.ABNF.OPCODE_BINARY)
                time.sleep(CHUNK_S)
            t_audio_done.append(time.monotonic())
            ws.send(json.dumps({"checkpoint_id": "final"}), opcode=websocket.ABNF.OPCODE_TEXT)
            sent_all.set()

        threading.Thread(target=stream_audio, args=(ws,), daemon=True).start()

    def on_message(ws, message):
        message = json.loads(message)
        received.append((time.monotonic(), message))
        if message.get("checkpoint_id") == "final":
            done.set()
            ws.close()
            return
        newest = message["segments"][-1]  # the notebook indexes the newest segment on every message
        with lock:
            segments.update({segment["id"]: segment["text"] for segment in message["segments"]})
            for k in [k for k in segments if k > newest["id"]]:
                del segments[k]

    def on_error(ws, error):
        problems.append(repr(error))

    params = urllib.parse.urlencode({"language": "en"})
    app = websocket.WebSocketApp(
        f"{streaming_route}?{params}",
        header={"Authorization": "anything-goes"},
        on_open=on_open,
        on_message=on_message,
        on_error=on_error,
    )
    runner = threading.Thread(target=app.run_forever, daemon=True)
    runner.start()
    runner.join(timeout=len(audio_chunks) * CHUNK_S * 1.5 + WAIT_S)
    if runner.is_alive():
        app.close()
    assert not problems, f"client callbacks failed: {problems}"
    assert sent_all.is_set(), "the sender thread did not finish"
    assert done.is_set(), f"no {{'checkpoint_id': 'final'}} reply; last: {[m for _, m in received[-3:]]}"

    reply_idx = next(i for i, (_, m) in enumerate(received) if m.get("checkpoint_id") == "final")
    assert received[reply_idx][1] == {"checkpoint_id": "final"}, f"checkpoint reply: {received[reply_idx][1]}"
    transcripts = [m for _, m in received[:reply_idx]]
    assert transcripts, "no transcription message before the final checkpoint reply"
    history = SegmentHistory()
    for m in transcripts:
        assert is_transcription(m), f"unexpected message: {m}"
        check_transcription(m)
        history.add(m)
    assert all_final(transcripts[-1]), f"last message before the reply is not all final: {json.dumps(transcripts[-1])[:400]}"
    partials_while_streaming = [t for t, m in received[:reply_idx] if t < t_audio_done[0]]
    assert partials_while_streaming, "no transcription message arrived while audio was still being sent"

    text = segments_text(segments)
    w = wer(jfk.transcript, text)
    record_wer(request, "stream_notebook_base_jfk", w)
    limit = min(WER_MAX_JFK, batch_wer + STREAM_VS_BATCH_POINTS + 1.0 / len(normalise(jfk.transcript)))
    assert w <= limit, f"streaming WER {w:.3f} > {limit:.3f} (batch {batch_wer:.3f}: {batch_text!r}): {text!r}"
    print(f"\n[notebook] {len(transcripts)} messages, {len(partials_while_streaming)} while streaming: {text!r}")


# ---------------------------------------------------------------------------------------
# cookbook python/main.py (2025-07) and the Rust client: fast send, trace final


def test_trace_final_dialect_fast_send(base_url, streaming_route, request):
    """1600 B chunks as fast as the socket takes them, then trace `final`; the client
    replaces its state with each message's segments, so the last message before the
    reply must carry the whole context, all final. Comma-joined granularities (TS client)
    and the key in the query (`Authorization=Bearer%20...`) ride along."""
    c1, c2 = clip("jfk"), clip("sense_and_sensibility_01_austen_64kb-0870")
    pcm = pcm16(c1.id) + silence(1.0) + pcm16(c2.id) + silence(0.5)
    query = "model=tiny.en&language=en&timestamp_granularities=word,segment&Authorization=Bearer%20some-key"

    state: dict = {}
    received: list[dict] = []
    problems: list[str] = []
    done = threading.Event()

    def stream_audio(ws):
        for chunk in split(pcm):
            ws.send(chunk, opcode=websocket.ABNF.OPCODE_BINARY)
        ws.send(
            json.dumps({"event_id": "streaming_complete", "object": "stt.input.trace", "trace_id": "final"}),
            opcode=websocket.ABNF.OPCODE_TEXT,
        )

    def on_open(ws):
        threading.Thread(target=stream_audio, args=(ws,), daemon=True).start()

    def on_message(ws, message):
        data = json.loads(message)
        received.append(data)
        if data.get("trace_id") == "final":
            done.set()
            ws.close()
            return
        if "segments" in data:
            state.clear()
            state.update({segment["id"]: segment["text"] for segment in data["segments"]})

    app = websocket.WebSocketApp(
        f"{streaming_route}?{query}",
        header={"Authorization": "fw_dummy"},
        on_open=on_open,
        on_message=on_message,
        on_error=lambda ws, e: problems.append(repr(e)),
    )
    runner = threading.Thread(target=app.run_forever, daemon=True)
    runner.start()
    runner.join(timeout=WAIT_S * 2)
    if runner.is_alive():
        app.close()
    assert not problems, f"client callbacks failed: {problems}"
    assert done.is_set(), f"no trace reply with trace_id 'final'; last: {received[-3:]}"

    reply = received[-1]
    assert reply == {"event_id": "streaming_complete", "object": "stt.output.trace", "trace_id": "final"}, reply
    transcripts = received[:-1]
    assert transcripts and all(is_transcription(m) for m in transcripts), [m for m in transcripts if not is_transcription(m)][:2]
    history = SegmentHistory()
    for m in transcripts:
        check_transcription(m, word_ts=True, segment_ts=True)
        history.add(m)
    last = transcripts[-1]
    assert all_final(last), f"last transcription before the final trace reply is not all final: {json.dumps(last)[:400]}"

    text = segments_text(state)
    w = wer(c1.transcript + " " + c2.transcript, text)
    record_wer(request, "stream_trace_final_tiny_jfk+0870", w)
    assert w <= WER_MAX_SHORT, f"WER {w:.3f}: {text!r}"
    total_s = len(pcm) / 2 / SAMPLE_RATE
    starts = [wd["start"] for s in last["segments"] for wd in s["words"]]
    ends = [wd["end"] for s in last["segments"] for wd in s["words"]]
    assert starts == sorted(starts), f"word starts go back: {starts}"
    assert max(ends) <= total_s + 0.5, f"word end {max(ends)} past the audio sent ({total_s:.2f} s)"
    # The second clip starts at 12 s of session time: timestamps are session-relative.
    second = [wd for s in last["segments"] for wd in s["words"] if normalise(wd["word"]) == ["leisure"]]
    if second:
        assert second[0]["start"] >= c1.duration_s + 1.0 - 0.5, f"'leisure' at {second[0]['start']} s: not session-relative"


# ---------------------------------------------------------------------------------------
# LiveKit plugin


class LiveKitEmulation:
    """LiveKit's `SpeechStream._process_stream_event` (livekit-plugins-fireworksai), rewritten:
    FINAL when the last word of the newest (max id) segment is final; it then clears its state,
    remembers the segment's word count and from then on skips older ids and takes only the
    words past that count in the same id."""

    def __init__(self) -> None:
        self.state: dict = {}
        self.final_lengths: dict = {}
        self.last_final_id = -1
        self.events: list[tuple[str, str]] = []

    def process(self, data: dict) -> None:
        if not data.get("segments"):
            return
        newest = max(data["segments"], key=lambda s: s["id"])  # TypeError with string ids
        newest_id = newest["id"]
        for seg in data["segments"]:
            sid = seg["id"]
            if sid < self.last_final_id:
                continue
            if sid == self.last_final_id:
                done = self.final_lengths.get(sid, 0)
                words = seg.get("words", [])
                if done < len(words):
                    self.state[sid] = " ".join(w["word"] for w in words[done:]).strip()
                else:
                    self.state.pop(sid, None)
            else:
                self.state[sid] = seg["text"]
        for sid in [k for k in self.state if k > newest_id]:
            del self.state[sid]
        transcript = " ".join(t for _, t in sorted(self.state.items(), key=lambda kv: int(kv[0])))
        if not transcript:
            return
        words = newest.get("words") or []
        if words and words[-1].get("is_final") is True:
            self.events.append(("FINAL", transcript))
            self.state.clear()
            self.last_final_id = newest_id
            self.final_lengths[newest_id] = len(words)
        else:
            self.events.append(("INTERIM", transcript))

    def finals(self) -> list[str]:
        return [t for kind, t in self.events if kind == "FINAL"]


def test_livekit_plugin_flow(base_url, streaming_route, request):
    """LiveKit's query string and header, 50 ms paced frames, two utterances with 1.5 s of
    silence after each, `{"checkpoint_id":"final"}`; FINAL transcripts per its logic."""
    clips = [clip("arctic_slt_a0009"), clip("sense_and_sensibility_01_austen_64kb-0880")]
    live_config = {
        "model": FAST_MODEL,
        "language": "en",
        "prompt": "A read English sentence.",
        "temperature": 0.0,
        "skip_vad": False,
        "vad_kwargs": {"threshold": 0.15},
        "text_timeout_seconds": 1.0,
        "response_format": "verbose_json",
        "timestamp_granularities": ["word", "segment"],
    }
    query = urlencode({k: v for k, v in live_config.items() if v is not None}, doseq=True)
    assert "vad_kwargs=threshold&" in query and query.count("timestamp_granularities=") == 2, query
    assert "skip_vad=False" in query and "temperature=0.0" in query, query

    pcm = b"".join(pcm16(c.id) + silence(TAIL_SILENCE_S) for c in clips)
    conn = Conn(f"{streaming_route}?{query}", header={"User-Agent": "LiveKit Agents", "Authorization": "fw_dummy"})
    try:
        conn.stream(pcm)
        t_flush = time.monotonic()
        conn.send_json({"checkpoint_id": "final"})
        reply_idx = conn.wait_for(reply_to("checkpoint_id", "final"), what="checkpoint final reply")
    finally:
        conn.close()
    events = conn.events
    assert reply_idx > 0, "no transcription message before the checkpoint reply"
    assert events[reply_idx][1] == {"checkpoint_id": "final"}, events[reply_idx][1]
    lk = LiveKitEmulation()
    history = SegmentHistory()
    finals_before_flush = 0
    for t, m in events[:reply_idx]:
        assert is_transcription(m), f"unexpected message before the reply: {m}"
        check_transcription(m, word_ts=True, segment_ts=True)
        history.add(m)
        n = len(lk.finals())
        lk.process(m)
        if len(lk.finals()) > n and t < t_flush:
            finals_before_flush += 1
    assert all_final(events[reply_idx - 1][1]), "last message before the reply is not all final"

    finals = lk.finals()
    print(f"\n[livekit] {len(finals)} FINAL ({finals_before_flush} before the flush): {finals}")
    assert finals_before_flush >= 1, (
        "no FINAL before `final` was sent: words never became final after 1.5 s of silence "
        f"(text_timeout_seconds=1.0); events {lk.events[-5:]}"
    )
    assert len(finals) >= len(clips), f"{len(finals)} FINAL transcripts for {len(clips)} utterances: {finals}"
    w = wer(" ".join(c.transcript for c in clips), " ".join(finals))
    record_wer(request, "stream_livekit_tiny_arctic+0880", w)
    assert w <= WER_MAX_SHORT, f"WER {w:.3f}: {finals}"

    last = events[reply_idx - 1][1]
    words = [wd for s in last["segments"] for wd in s["words"]]
    starts = [wd["start"] for wd in words]
    assert starts == sorted(starts), f"word starts go back: {starts}"
    total_s = len(pcm) / 2 / SAMPLE_RATE
    assert all(wd["end"] <= total_s + 0.5 for wd in words), f"word end past {total_s:.2f} s"
    seg_spans = [(s["start"], s["end"]) for s in last["segments"]]
    assert [a for a, _ in seg_spans] == sorted(a for a, _ in seg_spans), f"segment starts go back: {seg_spans}"


# ---------------------------------------------------------------------------------------
# control messages and unusual input


def test_control_messages_and_odd_frames(base_url, streaming_route, request):
    """Non-JSON and unknown text frames are ignored; odd-length and empty binary frames are
    reassembled (a lost byte would turn the rest into noise); a trace is a barrier (the
    message before its reply covers all the audio); checkpoint and clear are answered in
    their own dialect; after a clear the old context is gone."""
    jfk, arctic = clip("jfk"), clip("arctic_slt_a0009")
    conn = Conn(f"{streaming_route}?model={FAST_MODEL}&language=en", header=["Authorization: Bearer x"])
    try:
        conn.send_text("this is not json")
        conn.send_json({"object": "stt.unknown.thing", "event_id": "u1"})
        conn.send_json({"hello": "world"})
        conn.send_text("[1, 2, 3]")
        conn.send_audio(b"")
        pcm = pcm16(jfk.id) + silence(0.5)
        sizes = [1601, 799, 3, 2047, 1, 1600]
        pos, k = 0, 0
        while pos < len(pcm):
            n = sizes[k % len(sizes)]
            conn.send_audio(pcm[pos : pos + n])
            pos += n
            k += 1
            if k % 40 == 0:
                conn.send_audio(b"")
        conn.send_json({"event_id": "e1", "object": "stt.input.trace", "trace_id": "t1"})
        i_trace = conn.wait_for(reply_to("trace_id", "t1"), what="trace reply t1")
        conn.send_json({"checkpoint_id": "c-1"})
        i_ckpt = conn.wait_for(reply_to("checkpoint_id", "c-1"), start=i_trace, what="checkpoint reply c-1")
        conn.send_json({"event_id": "e2", "object": "stt.state.clear", "reset_id": "r1"})
        i_clear = conn.wait_for(reply_to("reset_id", "r1"), start=i_ckpt, what="state cleared r1")
        conn.stream(pcm16(arctic.id) + silence(0.5), pace=None)
        conn.send_json({"event_id": "e3", "object": "stt.input.trace", "trace_id": "final"})
        i_final = conn.wait_for(reply_to("trace_id", "final"), start=i_clear, what="trace final reply")
        assert conn.close_frame is None and conn.error is None, f"session ended early: {conn.close_frame} {conn.error}"
    finally:
        conn.close()

    msgs = [m for _, m in conn.events]
    assert msgs[i_trace] == {"event_id": "e1", "object": "stt.output.trace", "trace_id": "t1"}, msgs[i_trace]
    assert msgs[i_ckpt] == {"checkpoint_id": "c-1"}, msgs[i_ckpt]
    assert msgs[i_clear] == {"event_id": "e2", "object": "stt.state.cleared", "reset_id": "r1"}, msgs[i_clear]
    assert msgs[i_final] == {"event_id": "e3", "object": "stt.output.trace", "trace_id": "final"}, msgs[i_final]
    stray = [m for m in msgs if not is_transcription(m) and m not in (msgs[i_trace], msgs[i_ckpt], msgs[i_clear], msgs[i_final])]
    assert not stray, f"unexpected non-transcription messages (errors for ignored input?): {stray[:3]}"
    for m in msgs:
        if is_transcription(m):
            check_transcription(m)
    history = SegmentHistory()
    for m in msgs[:i_clear]:
        if is_transcription(m):
            history.add(m)

    before = [m for m in msgs[:i_trace] if is_transcription(m)]
    assert before, "no transcription before the trace reply"
    w = wer(jfk.transcript, " ".join(s["text"] for s in before[-1]["segments"]))
    record_wer(request, "stream_odd_frames_tiny_jfk_at_barrier", w)
    assert w <= WER_MAX_JFK, f"WER {w:.3f} at the trace barrier (odd frames mis-assembled?): {before[-1]['text']!r}"

    after = [m for m in msgs[i_clear:i_final] if is_transcription(m)]
    assert after, "no transcription after the clear"
    assert all_final(after[-1]), "last message before the final trace reply is not all final"
    w = wer(arctic.transcript, " ".join(s["text"] for s in after[-1]["segments"]))
    record_wer(request, "stream_after_clear_tiny_arctic", w)
    assert w <= WER_MAX_SHORT, f"WER {w:.3f} after stt.state.clear (old context kept?): {after[-1]['text']!r}"


def test_final_without_audio(streaming_route):
    """`final` on a session that got no audio: the reply comes, and no empty-segments message."""
    conn = Conn(streaming_route)
    try:
        conn.send_json({"checkpoint_id": "final"})
        i = conn.wait_for(reply_to("checkpoint_id", "final"), timeout=15, what="checkpoint final reply")
        time.sleep(0.3)
    finally:
        conn.close()
    for m in conn.messages()[:i]:
        assert is_transcription(m), m
        check_transcription(m)
    assert conn.events[i][1] == {"checkpoint_id": "final"}


def test_websocket_auth(auth_base_url):
    """401 before the upgrade without a key or with a wrong one; every key form of §1.2 accepted."""
    url = stream_url(auth_base_url)
    for header, query in [([], ""), (["Authorization: wrong"], ""), ([], "Authorization=wrong")]:
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(url + (f"?{query}" if query else ""), header=header, timeout=15)
        assert info.value.status_code == 401, f"{header} {query}: HTTP {info.value.status_code}"
        body = info.value.resp_body
        if body:
            parsed = json.loads(body)
            assert isinstance(parsed.get("error"), dict), parsed
            assert parsed["error"].get("type") == "invalid_request_error", parsed
    accepted = [
        ([f"Authorization: {AUTH_KEY}"], ""),
        ([f"Authorization: Bearer {AUTH_KEY}"], ""),
        ([], f"Authorization={AUTH_KEY}"),
        ([], "Authorization=" + urllib.parse.quote(f"Bearer {AUTH_KEY}")),
        ([], f"api_key={AUTH_KEY}"),
    ]
    for header, query in accepted:
        conn = Conn(url + (f"?{query}" if query else ""), header=header)
        try:
            conn.send_json({"checkpoint_id": "hello"})
            conn.wait_for(reply_to("checkpoint_id", "hello"), timeout=15, what=f"checkpoint reply ({header} {query})")
        finally:
            conn.close()


@pytest.fixture(scope="module")
def limited_server(_server_tmp):
    """A third server, only for these tests: one stream at most, 3 s idle timeout, tiny.en."""
    from conftest import _stop, start_server

    srv = start_server(
        ["--max-streams", "1", "--stream-idle-timeout-secs", "3", "--default-model", FAST_MODEL], "limited", _server_tmp
    )
    yield srv
    _stop(srv.process)


def test_stream_limit_429(limited_server):
    """With `--max-streams 1` a second concurrent upgrade gets 429; the slot frees on close."""
    url = stream_url(limited_server.base_url)
    first = Conn(url)
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(url, timeout=15)
        assert info.value.status_code == 429, f"HTTP {info.value.status_code}"
    finally:
        first.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            again = Conn(url)
            break
        except websocket.WebSocketBadStatusException as e:
            assert e.status_code == 429, e.status_code
            assert time.monotonic() < deadline, "the stream slot was not released within 10 s of the close"
            time.sleep(0.2)
    try:
        again.send_json({"checkpoint_id": "x"})
        again.wait_for(reply_to("checkpoint_id", "x"), timeout=15, what="checkpoint reply")
    finally:
        again.close()


def test_idle_stream_closed(limited_server):
    """A stream that sends nothing for `--stream-idle-timeout-secs` is closed (1000/1001), not
    left open (websocket-client answers the server's pings meanwhile)."""
    conn = Conn(stream_url(limited_server.base_url))
    try:
        t0 = time.monotonic()
        with conn.cv:
            while conn.close_frame is None and conn.error is None and time.monotonic() - t0 < 15:
                conn.cv.wait(0.5)
        waited = time.monotonic() - t0
    finally:
        conn.close()
    assert conn.close_frame is not None, f"idle stream not closed after {waited:.1f} s (error {conn.error})"
    assert conn.close_frame[0] in (1000, 1001), f"close code {conn.close_frame}"
    assert 2.0 <= waited <= 10.0, f"closed after {waited:.1f} s with a 3 s idle timeout"
    for m in conn.messages():
        assert isinstance(m, dict) and isinstance(m.get("error", ""), str), f"error frames carry a string: {m}"


def test_oversized_frame_closes_1009(streaming_route):
    """A binary frame over the 1 MiB limit (PROTOCOL §1.5) closes the stream with 1009."""
    conn = Conn(f"{streaming_route}?model={FAST_MODEL}")
    try:
        conn.send_audio(b"\x00" * (2 * 1024 * 1024))
        t0 = time.monotonic()
        with conn.cv:
            while conn.close_frame is None and conn.error is None and time.monotonic() - t0 < 15:
                conn.cv.wait(0.5)
    finally:
        conn.close()
    assert conn.close_frame is not None and conn.close_frame[0] == 1009, f"close {conn.close_frame}, error {conn.error}"
    for m in conn.messages():
        assert isinstance(m, dict) and isinstance(m.get("error"), str), f"only a string error may precede the close: {m}"


def test_variant_keys_and_audio_after_final(streaming_route, request):
    """The 2026 doc variant (`type` / `context_id`) is answered with the keys mirrored;
    `language=en-US` and `timestamp_granularities[]=word` are accepted; audio sent after a
    `final` continues the same context: new segment ids, earlier final segments unchanged."""
    a, b = clip("arctic_slt_a0009"), clip("sense_and_sensibility_01_austen_64kb-0880")
    conn = Conn(f"{streaming_route}?model={FAST_MODEL}&language=en-US&timestamp_granularities%5B%5D=word")
    try:
        conn.send_json({"event_id": "v1", "type": "stt.state.clear", "context_id": "ctx-1"})
        i = conn.wait_for(reply_to("event_id", "v1"), timeout=15, what="cleared reply")
        conn.send_json({"event_id": "v2", "type": "stt.input.trace", "trace_id": "tr-1"})
        j = conn.wait_for(reply_to("trace_id", "tr-1"), timeout=15, what="trace reply (type key)")
        conn.stream(pcm16(a.id) + silence(0.5), pace=None)
        conn.send_json({"checkpoint_id": "final"})
        k1 = conn.wait_for(reply_to("checkpoint_id", "final"), what="first final")
        conn.stream(pcm16(b.id) + silence(0.5), pace=None)
        conn.send_json({"checkpoint_id": "final"})
        k2 = conn.wait_for(reply_to("checkpoint_id", "final"), start=k1 + 1, what="second final")
        assert conn.close_frame is None and conn.error is None, "the session must stay open after `final`"
    finally:
        conn.close()
    msgs = conn.messages()
    cleared = msgs[i]
    assert cleared.get("context_id") == "ctx-1" and cleared.get("event_id") == "v1", f"cleared reply: {cleared}"
    assert cleared.get("type") == "stt.state.cleared" or cleared.get("object") == "stt.state.cleared", cleared
    assert msgs[j].get("trace_id") == "tr-1" and "stt.output.trace" in (msgs[j].get("type"), msgs[j].get("object")), msgs[j]
    history = SegmentHistory()
    for m in msgs:
        if is_transcription(m):
            check_transcription(m, word_ts=True)
            assert m["language"] == "en", f"language {m['language']!r} for en-US"
            history.add(m)
    first = [m for m in msgs[:k1] if is_transcription(m)]
    second = [m for m in msgs[k1:k2] if is_transcription(m)]
    assert first and second, "a transcription before each final reply"
    assert all_final(first[-1]) and all_final(second[-1])
    first_ids = {s["id"] for s in first[-1]["segments"]}
    new = [s for s in second[-1]["segments"] if s["id"] not in first_ids]
    assert new and min(s["id"] for s in new) > max(first_ids), f"after `final` new audio needs new ids: {first_ids} vs {[s['id'] for s in second[-1]['segments']]}"
    w = wer(b.transcript, " ".join(s["text"] for s in new))
    record_wer(request, "stream_after_final_tiny_0880", w)
    assert w <= WER_MAX_SHORT, f"WER {w:.3f}: {[s['text'] for s in new]}"
    starts = [wd["start"] for s in new for wd in s["words"]]
    assert starts and min(starts) >= a.duration_s + 0.5 - 0.3, f"timestamps after `final` restart instead of continuing: {starts[:3]}"


# ---------------------------------------------------------------------------------------
# OpenAI realtime transcription session (beta dialect)


def realtime_conn(base_url: str) -> Conn:
    url = ws_base(base_url) + REALTIME_PATH + "?intent=transcription"
    try:
        return Conn(url, header=["Authorization: Bearer x", "OpenAI-Beta: realtime=v1"])
    except websocket.WebSocketBadStatusException as e:
        pytest.fail(f"GET {REALTIME_PATH}?intent=transcription did not upgrade (HTTP {e.status_code})", pytrace=False)


def of_type(t: str):
    return lambda m: isinstance(m, dict) and m.get("type") == t


def session_update(turn_detection) -> dict:
    return {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": turn_detection,
        },
    }


def append_events(pcm24: bytes, ms: int = 100) -> list[dict]:
    step = 24000 * 2 * ms // 1000
    return [
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm24[i : i + step]).decode("ascii")}
        for i in range(0, len(pcm24), step)
    ]


def test_openai_realtime_server_vad(base_url, request):
    """24 kHz base64 PCM16 in 100 ms appends (paced at 2x real time), then silence: the server
    VAD opens and closes the turn, commits it and transcribes it."""
    jfk = clip("jfk")
    pcm24 = resample_16k_to_24k(pcm16(jfk.id) + silence(TAIL_SILENCE_S))
    speech_end_ms = jfk.reference_words()[-1][1] * 1000  # 10.46 s (forced alignment)
    conn = realtime_conn(base_url)
    try:
        conn.send_json(session_update({"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}))
        conn.wait_for(of_type("transcription_session.updated"), timeout=15, what="transcription_session.updated")
        t0 = time.monotonic()
        for i, ev in enumerate(append_events(pcm24)):
            delay = t0 + i * 0.05 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.send_json(ev)

        def settled(_m) -> bool:
            ms = [m for _, m in conn.events if isinstance(m, dict)]
            count = lambda t: sum(1 for m in ms if m.get("type") == t)  # noqa: E731
            started = count("input_audio_buffer.speech_started")
            ends = [m.get("audio_end_ms") or 0 for m in ms if m.get("type") == "input_audio_buffer.speech_stopped"]
            return (
                started >= 1
                and max(ends, default=0) >= speech_end_ms - 1000
                and count("input_audio_buffer.speech_stopped") == started
                and count("input_audio_buffer.committed") >= started
                and count("conversation.item.input_audio_transcription.completed") >= count("input_audio_buffer.committed")
            )

        conn.wait_for(settled, what="speech_started/stopped/committed/completed for every turn")
    finally:
        conn.close()

    msgs = [m for _, m in conn.events if isinstance(m, dict)]
    errors = [m for m in msgs if m.get("type") == "error"]
    assert not errors, f"error events: {errors}"
    types = [m.get("type") for m in msgs]
    committed = [m for m in msgs if m.get("type") == "input_audio_buffer.committed"]
    started = [m for m in msgs if m.get("type") == "input_audio_buffer.speech_started"]
    stopped = [m for m in msgs if m.get("type") == "input_audio_buffer.speech_stopped"]
    completed = {m["item_id"]: m for m in msgs if m.get("type") == "conversation.item.input_audio_transcription.completed"}
    deltas: dict[str, list[str]] = {}
    for m in msgs:
        if m.get("type") == "conversation.item.input_audio_transcription.delta":
            deltas.setdefault(m["item_id"], []).append(m["delta"])
    for s, e in zip(started, stopped):
        assert s["item_id"] == e["item_id"], (s, e)
        assert isinstance(s["audio_start_ms"], int) and isinstance(e["audio_end_ms"], int), (s, e)
        assert 0 <= s["audio_start_ms"] < e["audio_end_ms"] <= len(pcm24) // 48 + 50, (s, e)
    assert types.index("input_audio_buffer.speech_started") < types.index("input_audio_buffer.speech_stopped")
    assert started[0]["audio_start_ms"] <= jfk.reference_words()[0][0] * 1000 + 500, started[0]
    transcripts = []
    for c in committed:
        item = c["item_id"]
        assert item in completed, f"committed item {item} has no completed transcription: {types}"
        assert item in deltas, f"no transcription delta for {item}"
        transcript = completed[item]["transcript"]
        assert squash_ws("".join(deltas[item])) == squash_ws(transcript), f"deltas {deltas[item]} vs {transcript!r}"
        transcripts.append(transcript)
    assert committed[0]["item_id"] == started[0]["item_id"], (committed[0], started[0])
    chain = [c.get("previous_item_id") for c in committed]
    assert chain == [None] + [c["item_id"] for c in committed[:-1]], f"previous_item_id chain {chain}"
    w = wer(jfk.transcript, " ".join(transcripts))
    record_wer(request, "realtime_server_vad_jfk", w)
    print(f"\n[realtime] {len(committed)} turns: {transcripts}")
    assert w <= WER_MAX_JFK, f"WER {w:.3f}: {transcripts}"


def test_openai_realtime_manual_commit(base_url, request):
    """`turn_detection: null`: no VAD events; an explicit commit gives committed + completed."""
    c = clip("sense_and_sensibility_01_austen_64kb-0880")
    pcm24 = resample_16k_to_24k(pcm16(c.id))
    conn = realtime_conn(base_url)
    try:
        conn.send_json(session_update(None))
        conn.wait_for(of_type("transcription_session.updated"), timeout=15, what="transcription_session.updated")
        for ev in append_events(pcm24):
            conn.send_json(ev)
        conn.send_json({"type": "input_audio_buffer.commit", "event_id": "commit-1"})
        i = conn.wait_for(of_type("input_audio_buffer.committed"), what="input_audio_buffer.committed")
        item = conn.events[i][1]["item_id"]
        j = conn.wait_for(
            lambda m: of_type("conversation.item.input_audio_transcription.completed")(m) and m.get("item_id") == item,
            start=i,
            what="transcription completed",
        )
    finally:
        conn.close()
    msgs = [m for _, m in conn.events if isinstance(m, dict)]
    assert not [m for m in msgs if m.get("type") == "error"], msgs
    vad = [m["type"] for m in msgs if m.get("type", "").startswith("input_audio_buffer.speech_")]
    assert not vad, f"VAD events with turn_detection null: {vad}"
    transcript = conn.events[j][1]["transcript"]
    w = wer(c.transcript, transcript)
    record_wer(request, "realtime_manual_commit_0880", w)
    assert w <= WER_MAX_SHORT, f"WER {w:.3f}: {transcript!r}"


def test_openai_realtime_clear_keeps_committed_item(base_url):
    """`input_audio_buffer.clear` drops only uncommitted audio (OpenAI semantics): a turn the
    server VAD already committed still gets its `completed` (or `failed`) event."""
    c = clip("arctic_slt_a0009")
    conn = realtime_conn(base_url)
    try:
        conn.send_json(session_update({"type": "server_vad"}))
        conn.wait_for(of_type("transcription_session.updated"), timeout=15, what="transcription_session.updated")
        for ev in append_events(resample_16k_to_24k(pcm16(c.id) + silence(TAIL_SILENCE_S))):
            conn.send_json(ev)
        i = conn.wait_for(of_type("input_audio_buffer.committed"), what="input_audio_buffer.committed")
        item = conn.events[i][1]["item_id"]
        conn.send_json({"type": "input_audio_buffer.clear", "event_id": "clear-1"})
        conn.wait_for(of_type("input_audio_buffer.cleared"), start=i, timeout=15, what="input_audio_buffer.cleared")
        conn.wait_for(
            lambda m: isinstance(m, dict)
            and m.get("item_id") == item
            and m.get("type")
            in ("conversation.item.input_audio_transcription.completed", "conversation.item.input_audio_transcription.failed"),
            start=i,
            timeout=15,
            what=f"completed/failed for the committed item {item} after a clear",
        )
    finally:
        conn.close()


def test_sigterm_flushes_finals_and_closes_1001(_server_tmp):
    """SIGTERM to a real `ember serve`: the open stream gets its last words as final and a
    1001 close before the process exits (axum alone would drop upgraded sockets)."""
    from conftest import _stop, start_server

    srv = start_server(["--default-model", FAST_MODEL, "--shutdown-grace-secs", "30"], "sigterm", _server_tmp)
    try:
        conn = Conn(stream_url(srv.base_url, "language=en"))
        conn.stream(pcm16("jfk"), pace=None)
        conn.send_json({"checkpoint_id": "in"})
        conn.wait_for(reply_to("checkpoint_id", "in"), what="checkpoint reply")
        srv.process.terminate()
        deadline = time.monotonic() + 60
        with conn.cv:
            while conn.close_frame is None and conn.error is None and time.monotonic() < deadline:
                conn.cv.wait(1.0)
        assert conn.close_frame is not None, f"no close frame (error={conn.error}); {conn.tail()}"
        assert conn.close_frame[0] == 1001, conn.close_frame
        updates = [m for m in conn.messages() if is_transcription(m)]
        assert updates and all_final(updates[-1]), conn.tail()
        assert "country" in updates[-1]["text"].lower(), updates[-1]["text"]
        assert srv.process.wait(timeout=30) == 0, "ember did not exit cleanly after SIGTERM"
    finally:
        _stop(srv.process)
