#!/usr/bin/env python3
"""Latency and concurrency of the Fireworks streaming WebSocket (PROTOCOL §3) of a release
`ember serve`. Needs websocket-client (e.g. run it with $EMBER_VENV/bin/python, which has
the pinned tests/clients/requirements.txt); everything else is the standard library.

  latency      For each clip: a fresh connection (`model=M&language=en&timestamp_granularities=word`),
               the clip then >= 2 s of digital silence in real-time 50 ms frames, then
               `{"checkpoint_id":"final"}`. Speech onset / end inside the clip come from the
               forced alignment when the clip has one, else an energy detector (--bounds).
               onset->first partial: first message with any word, minus the send time of the
                 frame holding the onset sample.
               end->final: first message (after the frame holding the end-of-speech sample was
                 sent) whose words are all is_final, covering the end of the clip (a word ending
                 within 1.5 s of it, or nothing non-final afterwards), minus that frame's send
                 time. Silence keeps flowing (up to --extra-silence s more) until that happens;
                 if it never does, the clip counts as "missed" (only the flush finalised it).
               flush: `final` sent -> reply received.
  concurrency  For K = 1, 2, ...: K connections in parallel, each streaming clips back to back
               (2 s silence after each) in real time for --duration s, a trace probe
               (`trace_id` = send time.time()) every 10 frames. Reply lag = receive - send.
               K is bounded when every stream finished, lag p95 <= --lag-bound and the lag
               p50 of the last third of the run is at most --growth-bound above the first
               third's. The sweep stops at the first unbounded K (unless --no-stop).
               Per utterance, end->final as above (by word timestamps in session time).
  table        Reprint the tables from the stored results.

One server per model (`--default-model M`, and `model=M` in the query); extra server flags
go after `--`, e.g. `-- --asr-workers 1 --asr-threads 2`. Results are merged into
~/.cache/ember/measure/stream_latency.json; server logs next to it.
"""

import argparse
import array
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import DATA_DIR, MEASURE_DIR, log  # noqa: E402

try:
    import websocket  # websocket-client
except ImportError:  # pragma: no cover
    sys.exit("stream_latency.py needs websocket-client: run it with $EMBER_VENV/bin/python "
             "(scripts/client-tests.sh creates it) or `pip install websocket-client`")

RESULTS = os.path.join(MEASURE_DIR, "stream_latency.json")
LOG_DIR = os.path.join(MEASURE_DIR, "stream_latency")
SR = 16000
FRAME_BYTES = 1600  # 50 ms
FRAME_S = 0.05
DEFAULT_CLIPS = [
    "jfk",
    "sense_and_sensibility_01_austen_64kb-0870",
    "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890",
    "sense_and_sensibility_01_austen_64kb-0920",
    "sense_and_sensibility_01_austen_64kb-0930",
    "ps_goforward",
    "ps_forever2",
    "arctic_slt_a0009",
    "ps_cards_005",
]
# An utterance's final must contain a final word ending within this of the end of speech.
END_COVER_S = 1.5


# ---------------------------------------------------------------- clips


class Clip:
    def __init__(self, row):
        self.id = row["id"]
        self.path = os.path.join(DATA_DIR, row["audio"])
        self.transcript = row.get("transcript") or ""
        self.words_tsv = os.path.join(DATA_DIR, row["words"]) if row.get("words") else None
        self.sample_rate = row.get("sample_rate")
        self._pcm = None

    @property
    def pcm(self):
        """s16le 16 kHz mono bytes (16 kHz mono WAVs directly, the rest through ffmpeg)."""
        if self._pcm is None:
            try:
                with wave.open(self.path, "rb") as w:
                    if (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SR):
                        self._pcm = w.readframes(w.getnframes())
            except (wave.Error, EOFError):
                pass
            if self._pcm is None:
                if not shutil.which("ffmpeg"):
                    sys.exit("%s is not a 16 kHz mono WAV and ffmpeg is not on PATH" % self.path)
                self._pcm = subprocess.run(
                    ["ffmpeg", "-v", "error", "-i", self.path, "-f", "s16le", "-ac", "1", "-ar", str(SR), "-"],
                    check=True, capture_output=True).stdout
        return self._pcm

    @property
    def duration(self):
        return len(self.pcm) / 2 / SR

    def energy_bounds(self, frame_s=0.02, rel_db=-25.0, run=3):
        """First / last 20 ms frame of a run of >= `run` frames whose RMS is within rel_db of
        the clip's loudest frame (runs ignore clicks; the threshold is relative to the peak)."""
        a = array.array("h")
        a.frombytes(self.pcm)
        n = int(frame_s * SR)
        rms = [math.sqrt(sum(x * x for x in a[i:i + n]) / n) for i in range(0, len(a) - n + 1, n)]
        th = max(rms) * 10 ** (rel_db / 20)
        above = [r >= th for r in rms]
        starts = [i for i in range(len(above) - run + 1) if all(above[i:i + run])]
        if not starts:
            return 0.0, self.duration
        return starts[0] * frame_s, min(self.duration, (starts[-1] + run) * frame_s)

    def align_bounds(self):
        if not self.words_tsv:
            return None
        rows = []
        with open(self.words_tsv, encoding="utf-8") as f:
            for line in f.read().splitlines()[1:]:
                if line.strip():
                    p = line.split("\t")
                    rows.append((float(p[0]), float(p[1])))
        return (rows[0][0], rows[-1][1]) if rows else None

    def bounds(self, mode):
        if mode in ("auto", "align"):
            b = self.align_bounds()
            if b:
                return b[0], b[1], "align"
            if mode == "align":
                sys.exit("%s has no forced alignment; use --bounds energy or auto" % self.id)
        on, off = self.energy_bounds()
        return on, off, "energy"


def load_clips(ids):
    rows = {}
    with open(os.path.join(DATA_DIR, "manifest.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows[r["id"]] = r
    missing = [i for i in ids if i not in rows]
    if missing:
        sys.exit("unknown clip ids: %s" % missing)
    return [Clip(rows[i]) for i in ids]


# ---------------------------------------------------------------- stats


def pct(values, p):
    """Linear-interpolated percentile; None for no values."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    k = (len(v) - 1) * p / 100.0
    lo = int(math.floor(k))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt(x, nd=2):
    return "-" if x is None else ("%.*f" % (nd, x))


def binary_info(path):
    """common.binary_info on one line: `path mtime=... sha256=...`."""
    return "%(path)s mtime=%(mtime)s sha256=%(sha256)s" % common.binary_info(path)


# ---------------------------------------------------------------- server


class Server(common.Server):
    """`ember serve --default-model M` (+ the flags after `--`), healthy once constructed;
    exits with a hint when the binary is missing or the server does not come up."""

    def __init__(self, model, extra):
        binary = common.ember_bin()
        if not os.path.isfile(binary):
            sys.exit("no ember binary at %s (cargo build --release -p ember-server, or set EMBER_BIN)" % binary)
        super().__init__(binary, model, LOG_DIR, ["--default-model", model] + list(extra))
        try:
            self.wait_healthy(timeout=300)
        except RuntimeError as e:
            self.stop()
            sys.exit(str(e))

    def metrics(self):
        try:
            with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
                text = r.read().decode("utf-8", "replace")
        except Exception as e:
            return ["<metrics unavailable: %r>" % e]
        return [line for line in text.splitlines() if line.startswith("ember_stream")]


# ---------------------------------------------------------------- a connection


class Stream:
    """One WebSocket with a reader thread; `events` = [(monotonic, wall, message dict)]."""

    def __init__(self, url, on_message=None):
        self.ws = websocket.create_connection(url, header=["Authorization: bench"], timeout=60)
        self.events = []
        self.error = None
        self.closed = False
        self.cv = threading.Condition()
        self.on_message = on_message
        self._stop = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                opcode, data = self.ws.recv_data()
            except websocket.WebSocketTimeoutException:
                if self._stop:
                    return
                continue
            except Exception as e:
                with self.cv:
                    if not self._stop:
                        self.error = repr(e)
                    self.closed = True
                    self.cv.notify_all()
                return
            mono, wall = time.monotonic(), time.time()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                with self.cv:
                    self.closed = True
                    if not self._stop:
                        self.error = "server closed the stream"
                    self.cv.notify_all()
                return
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            try:
                msg = json.loads(data.decode("utf-8"))
            except ValueError:
                continue
            with self.cv:
                self.events.append((mono, wall, msg))
                self.cv.notify_all()
            if self.on_message:
                self.on_message(msg)

    def send_json(self, obj):
        self.ws.send(json.dumps(obj))

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            i = 0
            while True:
                while i < len(self.events):
                    if pred(self.events[i][2]):
                        return i
                    i += 1
                if self.closed or time.monotonic() > deadline:
                    return None
                self.cv.wait(0.5)

    def close(self):
        self._stop = True
        try:
            self.ws.send_close()
        except Exception:
            pass
        self.reader.join(timeout=5)
        try:
            self.ws.shutdown()
        except Exception:
            pass


def is_transcription(m):
    return isinstance(m, dict) and isinstance(m.get("segments"), list)


def words_of(m):
    return [w for s in m["segments"] for w in s.get("words", [])]


def covers_end(m, end_s, start_limit=None):
    """All words (starting before start_limit, if given) final, and a final word ends
    within END_COVER_S of end_s (word times are session-relative)."""
    ws = words_of(m)
    if start_limit is not None:
        ws = [w for w in ws if w.get("start", 0.0) < start_limit]
    if not ws or not all(w.get("is_final") for w in ws):
        return False
    return max(w.get("end", 0.0) for w in ws) >= end_s - END_COVER_S


def final_text(m):
    return " ".join(s.get("text", "") for s in m["segments"])


# ---------------------------------------------------------------- latency


def latency_clip(server, model, c, args):
    onset, eos, source = c.bounds(args.bounds)
    done = threading.Event()

    def on_message(msg):
        if is_transcription(msg) and covers_end(msg, eos):
            done.set()

    url = "%s?model=%s&language=en&timestamp_granularities=word" % (server.ws_url, model)
    st = Stream(url, on_message)
    frames = [c.pcm[i:i + FRAME_BYTES] for i in range(0, len(c.pcm), FRAME_BYTES)]
    n_speech = len(frames)
    base = n_speech + int(round(args.silence / FRAME_S))
    cap = base + int(round(args.extra_silence / FRAME_S))
    zero = b"\x00" * FRAME_BYTES
    sent = []
    t0 = time.monotonic()
    i = 0
    try:
        while True:
            if i >= base and (done.is_set() or i >= cap):
                break
            delay = t0 + i * FRAME_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            st.ws.send_binary(frames[i] if i < n_speech else zero)
            sent.append(time.monotonic())
            i += 1
        t_flush = time.monotonic()
        st.send_json({"checkpoint_id": "final"})
        idx = st.wait_for(lambda m: m.get("checkpoint_id") == "final", timeout=120)
    finally:
        st.close()
    res = {"clip": c.id, "onset_s": round(onset, 3), "eos_s": round(eos, 3), "bounds": source,
           "frames_sent": len(sent), "silence_s": round((len(sent) - n_speech) * FRAME_S, 2), "error": st.error}
    if idx is None:
        res["error"] = res["error"] or "no checkpoint reply"
        return res
    t_reply = st.events[idx][0]
    res["flush_s"] = round(t_reply - t_flush, 3)
    pre = [(t, m) for t, _, m in st.events[:idx] if is_transcription(m) and t < t_flush]
    res["messages"] = len(pre)
    t_onset = sent[min(int(onset * SR) * 2 // FRAME_BYTES, len(sent) - 1)]
    t_eos = sent[min(int(eos * SR) * 2 // FRAME_BYTES, len(sent) - 1)]
    first = next((t for t, m in pre if words_of(m)), None)
    res["first_partial_s"] = None if first is None else round(first - t_onset, 3)
    fin = None
    for k, (t, m) in enumerate(pre):
        if t < t_eos or not words_of(m) or not all(w.get("is_final") for w in words_of(m)):
            continue
        later_nonfinal = any(not w.get("is_final") for _, m2 in pre[k + 1:] for w in words_of(m2))
        if covers_end(m, eos) or not later_nonfinal:
            fin = t
            break
    res["final_s"] = None if fin is None else round(fin - t_eos, 3)
    last = [m for _, _, m in st.events[:idx] if is_transcription(m)]
    text = final_text(last[-1]) if last else ""
    w = common.wer(c.transcript, text)
    res["text"] = text
    res["wer"] = round(w["wer"], 4)
    return res


def summarize_latency(rows):
    ok = [r for r in rows if not r.get("error")]
    return {
        "clips": len(rows),
        "errors": len(rows) - len(ok),
        "first_partial_p50": pct([r.get("first_partial_s") for r in ok], 50),
        "first_partial_p95": pct([r.get("first_partial_s") for r in ok], 95),
        "final_p50": pct([r.get("final_s") for r in ok], 50),
        "final_p95": pct([r.get("final_s") for r in ok], 95),
        "final_missed": sum(1 for r in ok if r.get("final_s") is None),
        "flush_p50": pct([r.get("flush_s") for r in ok], 50),
        "flush_p95": pct([r.get("flush_s") for r in ok], 95),
        "wer_mean": (sum(r["wer"] for r in ok if "wer" in r) / len(ok)) if ok else None,
    }


def run_latency(server, model, clips, args):
    note = {} if args.no_wait else common.wait_quiet()
    rows = []
    for c in clips:
        r = latency_clip(server, model, c, args)
        log("[latency %s] %-44s partial %s s  final %s s  flush %s s  WER %s %s" % (
            model, c.id, fmt(r.get("first_partial_s")), fmt(r.get("final_s")), fmt(r.get("flush_s")),
            fmt(r.get("wer"), 3), r.get("error") or ""))
        rows.append(r)
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "contention_before": note, "clips": rows,
            "summary": summarize_latency(rows), "silence_s": args.silence, "bounds": args.bounds}


# ---------------------------------------------------------------- concurrency


def build_timeline(clips, start, duration_s, gap_s):
    """Clips back to back from index `start` (cycling), each followed by gap_s of silence,
    until duration_s is reached. Returns pcm and [(clip id, onset, eos) in session seconds]."""
    parts, marks, pos, k = [], [], 0.0, start
    while pos < duration_s:
        c = clips[k % len(clips)]
        on, off, _ = c.bounds("auto")
        marks.append((c.id, pos + on, pos + off))
        parts.append(c.pcm)
        parts.append(b"\x00\x00" * int(gap_s * SR))
        pos += c.duration + gap_s
        k += 1
    return b"".join(parts), marks


def conc_stream(server, model, clips, idx, args, out):
    pcm, marks = build_timeline(clips, idx * 3, args.duration, args.silence)
    rec = {"stream": idx, "probes": [], "utterances": [], "error": None}
    out[idx] = rec
    try:
        st = Stream("%s?model=%s&language=en&timestamp_granularities=word" % (server.ws_url, model))
    except Exception as e:
        rec["error"] = "connect: %r" % e
        return
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    sent = []
    probes = {}
    t0 = time.monotonic()
    try:
        for i, fr in enumerate(frames):
            delay = t0 + i * FRAME_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            st.ws.send_binary(fr)
            sent.append((time.monotonic(), time.time()))
            if args.probe_every and (i + 1) % args.probe_every == 0:
                tid = "%.6f" % time.time()
                probes[tid] = i
                st.send_json({"event_id": "probe-%d" % i, "object": "stt.input.trace", "trace_id": tid})
            if st.closed:
                break
        t_flush = time.monotonic()
        st.send_json({"event_id": "end", "object": "stt.input.trace", "trace_id": "final"})
        fidx = st.wait_for(lambda m: m.get("trace_id") == "final", timeout=180)
    except Exception as e:
        rec["error"] = repr(e)
        st.close()
        return
    st.close()
    if st.error:
        rec["error"] = st.error
    if fidx is None:
        rec["error"] = rec["error"] or "no final trace reply"
        return
    rec["flush_s"] = round(st.events[fidx][0] - t_flush, 3)
    for mono, wall, m in st.events:
        tid = m.get("trace_id")
        if m.get("object") == "stt.output.trace" and tid in probes:
            rec["probes"].append((round(float(tid) - t0_wall(sent), 3), round(wall - float(tid), 4)))
    missing = len(probes) - len(rec["probes"])
    rec["probes_unanswered"] = missing
    msgs = [(t, m) for t, _, m in st.events[:fidx] if is_transcription(m)]
    for cid, on, off in marks:
        k = min(int(off * SR) * 2 // FRAME_BYTES, len(sent) - 1)
        if int(off * SR) * 2 // FRAME_BYTES >= len(sent):
            continue  # clip cut by the end of the run
        t_eos = sent[k][0]
        # The next utterance starts after the gap: words starting past this one's end + 0.3 s
        # belong to it and may still be partial.
        fin = next((t for t, m in msgs if t >= t_eos and covers_end(m, off, start_limit=off + 0.3)), None)
        rec["utterances"].append({"clip": cid, "eos": round(off, 2), "final_s": None if fin is None else round(fin - t_eos, 3)})


def t0_wall(sent):
    return sent[0][1] if sent else 0.0


def run_k(server, model, clips, k, args):
    out = [None] * k
    threads = [threading.Thread(target=conc_stream, args=(server, model, clips, i, args, out), daemon=True) for i in range(k)]
    busy = []

    def sample():
        time.sleep(min(10, args.duration / 2))
        busy.extend(common.contention_during({server.proc.pid}))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(timeout=args.duration + 300)
    sampler.join(timeout=5)
    streams = [o or {"error": "thread did not finish"} for o in out]
    probes = sorted(p for s in streams for p in s.get("probes", []))
    lags = [lag for _, lag in probes]
    span = max((t for t, _ in probes), default=0.0)
    first = [lag for t, lag in probes if t <= span / 3]
    last = [lag for t, lag in probes if t >= 2 * span / 3]
    finals = [u["final_s"] for s in streams for u in s.get("utterances", [])]
    errors = [s["error"] for s in streams if s.get("error")]
    unanswered = sum(s.get("probes_unanswered", 0) for s in streams)
    res = {
        "k": k,
        "probes": len(lags),
        "probes_unanswered": unanswered,
        "lag_p50": pct(lags, 50),
        "lag_p95": pct(lags, 95),
        "lag_max": max(lags) if lags else None,
        "lag_p50_first_third": pct(first, 50),
        "lag_p50_last_third": pct(last, 50),
        "final_p50": pct(finals, 50),
        "final_p95": pct(finals, 95),
        "utterances": len(finals),
        "final_missed": sum(1 for f in finals if f is None),
        "flush_p50": pct([s.get("flush_s") for s in streams], 50),
        "errors": errors,
        "contention_during": busy[:3],
    }
    growth = None
    if res["lag_p50_first_third"] is not None and res["lag_p50_last_third"] is not None:
        growth = res["lag_p50_last_third"] - res["lag_p50_first_third"]
    res["lag_growth"] = growth
    if args.probe_every:
        res["bounded"] = bool(
            not errors and lags and unanswered == 0 and res["lag_p95"] <= args.lag_bound
            and growth is not None and growth <= args.growth_bound)
    else:  # no probes: judge by the finals instead
        res["bounded"] = bool(not errors and finals and res["final_missed"] == 0 and res["final_p95"] <= args.lag_bound + 1.5)
    res["probe_every"] = args.probe_every
    res["streams"] = streams
    return res


def run_concurrency(server, model, clips, args):
    note = {} if args.no_wait else common.wait_quiet()
    runs = []
    max_ok = 0
    for k in args.ks:
        r = run_k(server, model, clips, k, args)
        log("[concurrency %s] K=%d lag p50 %s p95 %s max %s (first/last third %s/%s)  final p50 %s p95 %s missed %d/%d  %s%s" % (
            model, k, fmt(r["lag_p50"]), fmt(r["lag_p95"]), fmt(r["lag_max"]), fmt(r["lag_p50_first_third"]),
            fmt(r["lag_p50_last_third"]), fmt(r["final_p50"]), fmt(r["final_p95"]), r["final_missed"], r["utterances"],
            "bounded" if r["bounded"] else "NOT bounded", (" errors: %s" % r["errors"][:2]) if r["errors"] else ""))
        runs.append(r)
        if r["bounded"]:
            max_ok = max(max_ok, k)
        elif not args.no_stop:
            break
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "contention_before": note, "duration_s": args.duration,
            "lag_bound_s": args.lag_bound, "growth_bound_s": args.growth_bound, "runs": runs, "max_bounded_k": max_ok}


# ---------------------------------------------------------------- output


def load_results():
    try:
        with open(RESULTS, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"models": {}}


def save_results(res):
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    tmp = RESULTS + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, RESULTS)


def print_tables(res):
    models = res.get("models", {})
    print("\n### Streaming latency (one connection per clip, real-time 50 ms frames)\n")
    print("| model | clips | onset→first partial p50 / p95 (s) | end→final p50 / p95 (s) | missed finals | flush p50 / p95 (s) | mean WER | when |")
    print("|---|---|---|---|---|---|---|---|")
    for model, d in models.items():
        lat = d.get("latency")
        if not lat:
            continue
        s = lat["summary"]
        print("| %s | %d | %s / %s | %s / %s | %d | %s / %s | %s | %s |" % (
            model, s["clips"], fmt(s["first_partial_p50"]), fmt(s["first_partial_p95"]), fmt(s["final_p50"]),
            fmt(s["final_p95"]), s["final_missed"], fmt(s["flush_p50"]), fmt(s["flush_p95"]), fmt(s["wer_mean"], 3),
            lat["when"]))
    print("\n### Concurrency (K parallel real-time streams)\n")
    print("| model | probe every | K | probes | lag p50 / p95 / max (s) | lag p50 first → last third (s) | end→final p50 / p95 (s) | missed | bounded |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, d in models.items():
        for key in sorted(k for k in d if k.startswith("concurrency")):
            for r in d[key]["runs"]:
                pe = r.get("probe_every", 10)
                print("| %s | %s | %d | %d%s | %s / %s / %s | %s → %s | %s / %s | %d/%d | %s |" % (
                    model, ("%d frames" % pe) if pe else "none", r["k"], r["probes"],
                    (" (+%d unanswered)" % r["probes_unanswered"]) if r["probes_unanswered"] else "",
                    fmt(r["lag_p50"]), fmt(r["lag_p95"]), fmt(r["lag_max"]), fmt(r["lag_p50_first_third"]),
                    fmt(r["lag_p50_last_third"]), fmt(r["final_p50"]), fmt(r["final_p95"]), r["final_missed"],
                    r["utterances"],
                    "yes" if r["bounded"] else ("no (%s)" % "; ".join(r["errors"])[:60] if r["errors"] else "no")))
    for model, d in models.items():
        for key in sorted(k for k in d if k.startswith("concurrency")):
            conc = d[key]
            pe = conc["runs"][0].get("probe_every", 10) if conc["runs"] else 10
            print("\nmax bounded K for %s, %s: %d (%s, %d s runs)" % (
                model, "trace probe every %d frames" % pe if pe else "no probes",
                conc["max_bounded_k"],
                "p95 lag <= %.1f s, growth <= %.1f s" % (conc["lag_bound_s"], conc["growth_bound_s"]) if pe
                else "every utterance final, end->final p95 <= %.1f s" % (conc["lag_bound_s"] + 1.5),
                conc["duration_s"]))
    for model, d in models.items():
        if d.get("metrics"):
            print("\n/metrics of the %s server (ember_stream*):" % model)
            for line in d["metrics"]:
                if "_bucket{" not in line:
                    print("    " + line)
    if res.get("binary"):
        print("\nbinary: %s; server flags: %s" % (res["binary"], res.get("serve_args")))


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="?", default="all", choices=["all", "latency", "concurrency", "table"])
    ap.add_argument("--models", default="tiny.en,base", help="comma-separated (default tiny.en,base)")
    ap.add_argument("--clips", default=",".join(DEFAULT_CLIPS), help="comma-separated manifest ids")
    ap.add_argument("--n-clips", type=int, default=10, help="use the first N of --clips (default 10)")
    ap.add_argument("--silence", type=float, default=2.0, help="silence after each clip, s (default 2)")
    ap.add_argument("--extra-silence", type=float, default=4.0,
                    help="latency: more silence while waiting for the final, s (default 4)")
    ap.add_argument("--bounds", default="auto", choices=["auto", "energy", "align"],
                    help="speech onset/end: forced alignment when the clip has one (auto), or energy")
    ap.add_argument("--ks", default="1,2,3,4", help="concurrency levels (default 1,2,3,4)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of audio per stream per K (default 30)")
    ap.add_argument("--lag-bound", type=float, default=1.5, help="p95 trace lag bound, s (default 1.5)")
    ap.add_argument("--growth-bound", type=float, default=0.5, help="allowed lag p50 growth first->last third, s")
    ap.add_argument("--probe-every", type=int, default=10,
                    help="concurrency: a trace probe every N frames (default 10 as in the cookbook; 0 = none)")
    ap.add_argument("--no-stop", action="store_true", help="run every K even after an unbounded one")
    ap.add_argument("--no-wait", action="store_true", help="skip the wait for a quiet machine")
    args = ap.parse_args(argv)
    args.ks = [int(x) for x in args.ks.split(",") if x]
    res = load_results()
    if args.what == "table":
        print_tables(res)
        return
    clips = load_clips([x for x in args.clips.split(",") if x][: args.n_clips])
    res["binary"] = binary_info(common.ember_bin()) if os.path.isfile(common.ember_bin()) else common.ember_bin()
    res["serve_args"] = extra
    for model in [m for m in args.models.split(",") if m]:
        server = Server(model, extra)
        try:
            d = res["models"].setdefault(model, {})
            if args.what in ("all", "latency"):
                d["latency"] = run_latency(server, model, clips, args)
                save_results(res)
            if args.what in ("all", "concurrency"):
                key = "concurrency" if args.probe_every == 10 else "concurrency_probe%d" % args.probe_every
                d[key] = run_concurrency(server, model, clips, args)
                save_results(res)
            d["metrics"] = server.metrics()
            save_results(res)
        finally:
            server.stop()
    print_tables(res)
    log("results: %s" % RESULTS)


if __name__ == "__main__":
    main()
