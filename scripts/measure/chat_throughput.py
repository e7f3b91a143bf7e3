#!/usr/bin/env python3
"""Generation speed of `POST /v1/chat/completions` (SmolLM2-135M-Instruct on CPU).

  $EMBER_VENV/bin/python scripts/measure/chat_throughput.py --rounds 3 --max-tokens 128 \
      --json ~/.cache/ember/measure/chat.json

Starts one `ember serve` (--bin, default the release build; free port, EMBER_ASR_WORKERS=1,
EMBER_MODELS_DIR passed through), waits for /health, warms up, then per round (every request
`temperature: 0`, `max_tokens` = --max-tokens, streamed; no EOS suppression, so an answer may
end early: completion_tokens is reported with every figure):
  - single: each fixed prompt alone; tokens/s = completion_tokens / wall (request sent ->
    `[DONE]`), TTFT = request sent -> first SSE chunk with non-empty `delta.content`;
  - concurrent: --concurrency (4) streams at once (prompts cycled); aggregate tokens/s = sum
    of completion_tokens / wall of the whole set, per-stream tokens/s and TTFT per stream;
  - constrained vs unconstrained: one prompt with and without a JSON-schema `response_format`
    (a `summary` string up to 2000 chars and an array of strings, so both can run to
    max_tokens); ms/token = wall / completion_tokens, and decode ms/token = (wall - TTFT) /
    (completion_tokens - 1); order alternates by round.
Prints medians over rounds as a table; --json PATH writes every run. Needs `requests`.
"""

import concurrent.futures as cf
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import log  # noqa: E402

try:
    import requests
except ImportError:
    sys.exit("chat_throughput.py needs requests: run it with $EMBER_VENV/bin/python")

LOG_DIR = os.path.join(common.MEASURE_DIR, "chat_throughput")
PROMPTS = [
    "Write a detailed essay about the history of the printing press and its effects on Europe.",
    "Explain in detail how a refrigerator works, covering the compressor, condenser, evaporator and refrigerant.",
    "Describe a day in the life of a lighthouse keeper in the nineteenth century.",
    "Give a long, thorough explanation of why the sky is blue and why sunsets are red.",
]
CONSTRAINED_PROMPT = ("Summarise the causes and consequences of the industrial revolution in detail, "
                      "then list the key inventions.")
SCHEMA = {"type": "object",
          "properties": {"summary": {"type": "string", "maxLength": 2000},
                         "key_points": {"type": "array", "items": {"type": "string"}}},
          "required": ["summary", "key_points"]}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "summary", "schema": SCHEMA}}


def stream_chat(session, url, prompt, max_tokens, response_format=None, stop_event=None):
    """One streamed chat request: wall, TTFT, completion_tokens (final chunk's usage), text,
    finish_reason. With stop_event set mid-stream, the response is closed (which cancels it)."""
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True}
    if response_format:
        body["response_format"] = response_format
    t0 = time.perf_counter()
    res = {"ttft_s": None, "completion_tokens": None, "finish_reason": None, "text": "", "chunks": 0, "done": False}
    with session.post(url + "/v1/chat/completions", json=body, stream=True, timeout=600) as r:
        if r.status_code != 200:
            raise RuntimeError("HTTP %d: %s" % (r.status_code, r.text[:300]))
        for line in r.iter_lines():
            if stop_event is not None and stop_event.is_set():
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                res["done"] = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError("stream error: %s" % chunk["error"])
            for ch in chunk.get("choices", []):
                text = (ch.get("delta") or {}).get("content") or ""
                if text and res["ttft_s"] is None:
                    res["ttft_s"] = time.perf_counter() - t0
                res["chunks"] += bool(text)
                res["text"] += text
                res["finish_reason"] = ch.get("finish_reason") or res["finish_reason"]
            if chunk.get("usage"):
                res["completion_tokens"] = chunk["usage"]["completion_tokens"]
    res["wall_s"] = time.perf_counter() - t0
    n = res["completion_tokens"]
    if n:
        res["tokens_per_s"] = n / res["wall_s"]
        res["ms_per_token"] = 1000 * res["wall_s"] / n
        if res["ttft_s"] is not None and n > 1:
            res["decode_ms_per_token"] = 1000 * (res["wall_s"] - res["ttft_s"]) / (n - 1)
    return res


def concurrent_run(pool, sessions, url, prompts, max_tokens):
    c = len(sessions)
    t0 = time.perf_counter()
    runs = list(pool.map(lambda k: stream_chat(sessions[k], url, prompts[k % len(prompts)], max_tokens), range(c)))
    wall = time.perf_counter() - t0
    total = sum(r["completion_tokens"] or 0 for r in runs)
    return {"wall_s": wall, "completion_tokens": total, "aggregate_tokens_per_s": total / wall, "streams": runs}


def main():
    ap = common.arg_parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=len(PROMPTS), help="use the first N fixed prompts (max %d)" % len(PROMPTS))
    ap.add_argument("--concurrency", type=int, default=4)
    args = common.parse_args(ap)
    prompts = PROMPTS[: max(1, args.prompts)]
    single = {i: [] for i in range(len(prompts))}
    conc, cons = [], {"constrained": [], "unconstrained": []}
    note = None if args.no_wait else common.wait_quiet()
    server = common.Server(args.bin, "chat", LOG_DIR, env={"EMBER_ASR_WORKERS": "1"})
    sessions = [requests.Session() for _ in range(args.concurrency)]
    pool = cf.ThreadPoolExecutor(args.concurrency)
    try:
        server.wait_healthy()
        url = server.url
        stream_chat(sessions[0], url, "Hi", 8)  # warm-up: model pages, first KV cache
        stream_chat(sessions[0], url, "Hi", 8, RESPONSE_FORMAT)
        for rnd in range(1, args.rounds + 1):
            for i, p in enumerate(prompts):
                r = stream_chat(sessions[0], url, p, args.max_tokens)
                single[i].append(r)
                log("[round %d] single p%d  %3s tok  %.1f tok/s  TTFT %.3f s" % (rnd, i, r["completion_tokens"], r.get("tokens_per_s", 0), r["ttft_s"] or -1))
            c = concurrent_run(pool, sessions, url, prompts, args.max_tokens)
            conc.append(c)
            log("[round %d] %dx concurrent  %d tok  aggregate %.1f tok/s  per stream %s tok/s" % (
                rnd, args.concurrency, c["completion_tokens"], c["aggregate_tokens_per_s"],
                [round(s.get("tokens_per_s", 0), 1) for s in c["streams"]]))
            order = ["constrained", "unconstrained"] if rnd % 2 else ["unconstrained", "constrained"]
            for cond in order:
                r = stream_chat(sessions[0], url, CONSTRAINED_PROMPT, args.max_tokens,
                                RESPONSE_FORMAT if cond == "constrained" else None)
                cons[cond].append(r)
                log("[round %d] %-13s %3s tok  %.1f ms/tok  decode %.1f ms/tok  finish %s" % (
                    rnd, cond, r["completion_tokens"], r.get("ms_per_token", 0), r.get("decode_ms_per_token", 0), r["finish_reason"]))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for s in sessions:
            s.close()
        server.stop()

    def row(name, rs, tps=None, per_stream=""):
        m = lambda k, nd=1: common.median([r.get(k) for r in rs], nd)  # noqa: E731
        return (name, m("tokens_per_s") if tps is None else tps, per_stream, m("ttft_s", 3),
                m("completion_tokens", 0), m("ms_per_token"), m("decode_ms_per_token"))

    streams = [s for c in conc for s in c["streams"]]
    rows = [row("single p%d" % i, rs) for i, rs in single.items()]
    rows.append(row("single, all prompts", [r for rs in single.values() for r in rs]))
    rows.append(row("%d concurrent" % args.concurrency, streams, common.median([c["aggregate_tokens_per_s"] for c in conc]),
                    common.median([s.get("tokens_per_s") for s in streams])))
    rows.append(row("unconstrained", cons["unconstrained"]))
    rows.append(row("constrained (JSON)", cons["constrained"]))
    u, c = rows[-2], rows[-1]
    ratio = [round(c[k] / u[k], 2) if c[k] and u[k] else None for k in (5, 6)]
    print("\nmax_tokens=%d, temperature 0, %d round(s); medians (per-stream columns: median over streams)"
          % (args.max_tokens, args.rounds))
    common.print_table(
        ("condition", "tokens/s", "per-stream tok/s", "TTFT p50 (s)", "compl. tokens", "ms/token", "decode ms/token"),
        rows + [("overhead constr/unconstr", "", "", "", "", "%sx" % ratio[0], "%sx" % ratio[1])],
        (24, 8, 16, 12, 13, 8, 15))
    if args.json:
        out = {"binary": common.binary_info(args.bin), "max_tokens": args.max_tokens, "rounds": args.rounds,
               "concurrency": args.concurrency, "prompts": prompts, "constrained_prompt": CONSTRAINED_PROMPT,
               "schema": SCHEMA, "contention": note, "single": {prompts[i]: rs for i, rs in single.items()},
               "concurrent": conc, "constrained": cons,
               "median": {r[0]: dict(zip(("tokens_per_s", "per_stream_tokens_per_s", "ttft_p50_s", "completion_tokens",
                                          "ms_per_token", "decode_ms_per_token"), r[1:])) for r in rows},
               "overhead_ratio": {"ms_per_token": ratio[0], "decode_ms_per_token": ratio[1]}}
        common.write_json(args.json, out)


if __name__ == "__main__":
    main()
