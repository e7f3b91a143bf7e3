#!/usr/bin/env python3
"""Isolation: does a real-time transcription stream keep its end-of-speech -> final latency
(within --bound, 1.5x, of the unloaded value) while chat generation and embeddings run?

  $EMBER_VENV/bin/python scripts/measure/isolation.py --rounds 3 --n-clips 10 \
      --json ~/.cache/ember/measure/isolation.json

Starts one `ember serve --default-model M` (--bin, default the release build; free port,
EMBER_ASR_WORKERS=1, EMBER_MODELS_DIR passed through) and reuses stream_latency.py's
`latency` measurement clip by clip (fresh WebSocket per clip, `model=M&language=en`, the clip
then >= 2 s of silence in real-time 50 ms frames; end->final = first all-final message
covering the end of speech minus the send time of the frame holding it). Conditions,
alternated by round (odd rounds unloaded first, even rounds loaded first):
  - unloaded: nothing else runs;
  - loaded: one thread keeps one streamed chat generation running (`max_tokens` 256,
    temperature 0, prompts cycled, a new one as soon as one ends) and another posts
    `/v1/embeddings` with 32 sentences each, back to back; the load starts --settle s before
    the first clip and stops (the chat stream is closed, which cancels it) after the last.
Reports end->final p50 / p95 per condition (clips pooled over rounds; also with a missed
final counted at the flush reply, which the verdict uses), the loaded/unloaded ratios, and
the load actually applied (chat chunks/s, embedded sentences/s). Needs
websocket-client and requests: run it with $EMBER_VENV/bin/python.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import stream_latency as sl  # noqa: E402  (exits with a hint when websocket-client is missing)
from chat_throughput import PROMPTS, requests, stream_chat  # noqa: E402
from common import log  # noqa: E402
from embeddings_throughput import post as embed_post, sentences  # noqa: E402

LOG_DIR = os.path.join(common.MEASURE_DIR, "isolation")


class Load:
    """One continuous streamed chat generation + back-to-back embedding requests."""

    def __init__(self, url, max_tokens, batch):
        self.url, self.max_tokens, self.batch = url, max_tokens, batch
        self.stop_event = threading.Event()
        self.chat_chunks = self.chat_done = self.embed_sentences = 0
        self.errors = []
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._chat, self._embed)]

    def _chat(self):
        with requests.Session() as s:
            k = 0
            while not self.stop_event.is_set():
                try:
                    r = stream_chat(s, self.url, PROMPTS[k % len(PROMPTS)], self.max_tokens, stop_event=self.stop_event)
                    self.chat_chunks += r["chunks"]
                    self.chat_done += r["done"]
                except Exception as e:  # keep loading; report it
                    self.errors.append("chat: %r" % e)
                    time.sleep(1)
                k += 1

    def _embed(self):
        texts = sentences(512)
        with requests.Session() as s:
            k = 0
            while not self.stop_event.is_set():
                batch = [texts[(k + i) % len(texts)] for i in range(self.batch)]
                try:
                    embed_post(s, self.url, batch)
                    self.embed_sentences += len(batch)
                except Exception as e:
                    self.errors.append("embeddings: %r" % e)
                    time.sleep(1)
                k += self.batch

    def start(self):
        self.t0 = time.perf_counter()
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=120)
        wall = time.perf_counter() - self.t0
        return {"wall_s": round(wall, 2), "chat_chunks_per_s": round(self.chat_chunks / wall, 1),
                "chat_generations_finished": self.chat_done,
                "embed_sentences_per_s": round(self.embed_sentences / wall, 1), "errors": self.errors[:5]}


def run_condition(server, clips, args, loaded, rnd):
    load = None
    if loaded:
        load = Load(server.url, args.chat_max_tokens, args.embed_batch)
        load.start()
        time.sleep(args.settle)
    rows = []
    try:
        for c in clips:
            r = sl.latency_clip(server, args.model, c, args)
            r["round"] = rnd
            r["final_or_flush_s"] = final_or_flush(r)
            rows.append(r)
            log("[round %d %-8s] %-44s final %s s  flush %s s  WER %s %s" % (
                rnd, "loaded" if loaded else "unloaded", c.id, sl.fmt(r.get("final_s")), sl.fmt(r.get("flush_s")),
                sl.fmt(r.get("wer"), 3), r.get("error") or ""))
    finally:
        applied = load.stop() if load else None
    if applied:
        log("[round %d loaded  ] load: chat %.1f chunks/s (%d finished), embeddings %.1f sentences/s%s" % (
            rnd, applied["chat_chunks_per_s"], applied["chat_generations_finished"], applied["embed_sentences_per_s"],
            ("  errors: %s" % applied["errors"][:2]) if applied["errors"] else ""))
    return rows, applied


def final_or_flush(r):
    """end->final, or for a missed final end->flush reply (frames sent after the end-of-speech
    frame x 50 ms + flush), so that misses count as slow instead of dropping out."""
    if r.get("final_s") is not None or r.get("flush_s") is None:
        return r.get("final_s")
    k_eos = int(r["eos_s"] * sl.SR) * 2 // sl.FRAME_BYTES
    return round((r["frames_sent"] - 1 - k_eos) * sl.FRAME_S + r["flush_s"], 3)


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def main():
    ap = common.arg_parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="tiny.en", help="streaming model (default tiny.en)")
    ap.add_argument("--clips", default=",".join(sl.DEFAULT_CLIPS), help="comma-separated manifest ids")
    ap.add_argument("--n-clips", type=int, default=10, help="use the first N of --clips per condition and round")
    ap.add_argument("--silence", type=float, default=2.0, help="silence after each clip, s (as stream_latency)")
    ap.add_argument("--extra-silence", type=float, default=4.0, help="more silence while waiting for the final, s")
    ap.add_argument("--bounds", default="auto", choices=["auto", "energy", "align"])
    ap.add_argument("--chat-max-tokens", type=int, default=256)
    ap.add_argument("--embed-batch", type=int, default=32, help="sentences per embeddings request")
    ap.add_argument("--settle", type=float, default=3.0, help="s of load before the first loaded clip")
    ap.add_argument("--bound", type=float, default=1.5, help="allowed loaded/unloaded ratio")
    args = common.parse_args(ap)
    clips = sl.load_clips([x for x in args.clips.split(",") if x][: args.n_clips])
    for c in clips:
        c.pcm  # decode up front, not inside a timed condition
    rows = {"unloaded": [], "loaded": []}
    loads = []
    note = None if args.no_wait else common.wait_quiet()
    server = common.Server(args.bin, "isolation", LOG_DIR, ["--default-model", args.model],
                           env={"EMBER_ASR_WORKERS": "1"})
    try:
        server.wait_healthy()
        sl.latency_clip(server, args.model, clips[0], args)  # warm-up: model load, first session
        stream_chat(requests.Session(), server.url, "Hi", 8)
        for rnd in range(1, args.rounds + 1):
            for cond in (["unloaded", "loaded"] if rnd % 2 else ["loaded", "unloaded"]):
                r, applied = run_condition(server, clips, args, cond == "loaded", rnd)
                rows[cond] += r
                if applied:
                    loads.append(applied)
    finally:
        server.stop()

    summ = {c: sl.summarize_latency(rs) for c, rs in rows.items()}
    for c, rs in rows.items():
        ok = [r.get("final_or_flush_s") for r in rs if not r.get("error")]
        summ[c].update(final_or_flush_p50=sl.pct(ok, 50), final_or_flush_p95=sl.pct(ok, 95))
    u, lo = summ["unloaded"], summ["loaded"]
    rat = {k: ratio(lo[k], u[k]) for k in ("final_p50", "final_p95", "final_or_flush_p50", "final_or_flush_p95")}
    within = all(rat[k] is not None and rat[k] <= args.bound for k in ("final_or_flush_p50", "final_or_flush_p95")) \
        and lo["errors"] == 0
    med = lambda k: sl.pct([x[k] for x in loads], 50)  # noqa: E731
    print("\nmodel %s, %d clip(s) x %d round(s) per condition, real-time 50 ms frames; load: 1 chat stream "
          "(max_tokens %d) + embeddings (%d sentences/request)" % (args.model, len(clips), args.rounds,
                                                                   args.chat_max_tokens, args.embed_batch))
    print("| condition | clips | end→final p50 / p95 (s) | missed | missed at flush: p50 / p95 (s) | onset→partial p50 (s) "
          "| flush p50 (s) | WER | chat chunks/s | embed sentences/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in ("unloaded", "loaded"):
        s = summ[c]
        print("| %s | %d%s | %s / %s | %d | %s / %s | %s | %s | %s | %s | %s |" % (
            c, s["clips"], (" (%d errors)" % s["errors"]) if s["errors"] else "", sl.fmt(s["final_p50"]),
            sl.fmt(s["final_p95"]), s["final_missed"], sl.fmt(s["final_or_flush_p50"]), sl.fmt(s["final_or_flush_p95"]),
            sl.fmt(s["first_partial_p50"]), sl.fmt(s["flush_p50"]),
            sl.fmt(s["wer_mean"], 3), sl.fmt(med("chat_chunks_per_s"), 1) if c == "loaded" and loads else "-",
            sl.fmt(med("embed_sentences_per_s"), 1) if c == "loaded" and loads else "-"))
    print("| ratio loaded/unloaded | | %sx / %sx | | %sx / %sx | | | | | |" % (
        rat["final_p50"], rat["final_p95"], rat["final_or_flush_p50"], rat["final_or_flush_p95"]))
    print("\nend→final (missed finals counted at the flush reply) within %.1fx of unloaded, p50 and p95: %s"
          % (args.bound, "YES" if within else "NO"))
    if args.json:
        out = {"binary": common.binary_info(args.bin), "model": args.model, "rounds": args.rounds,
               "clips": [c.id for c in clips], "chat_max_tokens": args.chat_max_tokens,
               "embed_batch": args.embed_batch, "bound": args.bound, "contention": note,
               "summary": summ, "ratio_loaded_unloaded": rat, "within_bound": within, "load": loads, "runs": rows}
        common.write_json(args.json, out)


if __name__ == "__main__":
    main()
