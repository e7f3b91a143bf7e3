#!/usr/bin/env python3
"""Throughput of `POST /v1/embeddings` (sentences/s), dynamic batching on vs off, and the
Python reference (plain onnxruntime) on the same sentences.

  $EMBER_VENV/bin/python scripts/measure/embeddings_throughput.py \
      --sentences 512 --concurrency 16 --rounds 3 --threads 1 --json ~/.cache/ember/measure/embed.json

Starts two `ember serve` (EMBER_EMBED_BATCH_TOKENS=--batch-tokens (default 256) "on" and 0 "off", EMBER_EMBED_THREADS
= --threads, EMBER_ASR_WORKERS=1, EMBER_MODELS_DIR passed through) on free ports, warms them up,
then per round, alternating on/off:
  - concurrent: N sentences, C client threads (one requests.Session each), ONE sentence per
    request (the case batching is for); sentences/s = N / wall time of the whole set;
  - one request: all N sentences in one `input` array (split at 2048, the API limit);
and runs `scripts/reference/embeddings_ref.py --bench N --batch 32|1 --threads T`.
Prints the medians over rounds, the on/off ratio and, with --json, writes every figure.
Needs `requests` (the ember venv has it). Same sentence generator and seed as the reference.
"""

import concurrent.futures as cf
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import log  # noqa: E402

sys.path.insert(0, common.REFERENCE_DIR)
from sentences import sentences  # noqa: E402  (the reference's generator: stdlib only)

try:
    import requests
except ImportError:
    sys.exit("embeddings_throughput.py needs requests: run it with $EMBER_VENV/bin/python")

LOG_DIR = os.path.join(common.MEASURE_DIR, "embeddings_throughput")
VENV = os.environ.get("EMBER_VENV", os.path.join(common.CACHE, "venv"))
REF = os.path.join(common.REFERENCE_DIR, "embeddings_ref.py")
MAX_INPUTS = 2048


def post(session, url, texts):
    r = session.post(url + "/v1/embeddings", json={"input": texts}, timeout=300)
    if r.status_code != 200:
        raise RuntimeError("HTTP %d: %s" % (r.status_code, r.text[:300]))
    n = len(r.json()["data"])
    if n != (len(texts) if isinstance(texts, list) else 1):
        raise RuntimeError("got %d embeddings for %d inputs" % (n, len(texts)))


def concurrent_run(pool, sessions, url, texts):
    """N / wall seconds, each of the C threads posting its slice one sentence at a time."""
    c = len(sessions)

    def worker(k):
        for t in texts[k::c]:
            post(sessions[k], url, t)

    t0 = time.perf_counter()
    list(pool.map(worker, range(c)))
    return len(texts) / (time.perf_counter() - t0)


def one_request_run(session, url, texts):
    t0 = time.perf_counter()
    for i in range(0, len(texts), MAX_INPUTS):
        post(session, url, texts[i : i + MAX_INPUTS])
    return len(texts) / (time.perf_counter() - t0)


def reference_run(n, batch, threads):
    cmd = [os.path.join(VENV, "bin", "python"), REF, "--bench", str(n), "--batch", str(batch), "--threads", str(threads)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=common.REPO)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr[-500:]))
    return json.loads(p.stdout.strip().splitlines()[-1])["sentences_per_s"]


def main():
    ap = common.arg_parser(__doc__)
    ap.add_argument("--sentences", type=int, default=512, metavar="N")
    ap.add_argument("--concurrency", type=int, default=16, metavar="C")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-tokens", type=int, default=256, help="EMBER_EMBED_BATCH_TOKENS of the 'on' server")
    ap.add_argument("--threads", type=int, default=1, help="EMBER_EMBED_THREADS and the reference's --threads")
    ap.add_argument("--no-reference", action="store_true", help="skip embeddings_ref.py")
    args = common.parse_args(ap)

    texts = sentences(args.sentences)
    configs = [("on", args.batch_tokens), ("off", 0)]
    res = {c: {"concurrent": [], "one_request": []} for c, _ in configs}
    ref = {"batch32": [], "batch1": []}
    note = None if args.no_wait else common.wait_quiet()
    servers, sessions = {}, []
    pool = cf.ThreadPoolExecutor(args.concurrency)
    try:
        for name, bt in configs:
            servers[name] = common.Server(args.bin, name, LOG_DIR, env={
                "EMBER_EMBED_BATCH_TOKENS": str(bt), "EMBER_EMBED_THREADS": str(args.threads), "EMBER_ASR_WORKERS": "1"})
        for s in servers.values():  # both start loading at once
            s.wait_healthy(timeout=120)
        sessions = [requests.Session() for _ in range(args.concurrency)]
        for s in servers.values():  # warm-up: every session connects, a few batches run
            list(pool.map(lambda k: post(sessions[k], s.url, texts[k % len(texts)]), range(args.concurrency)))
            post(sessions[0], s.url, texts[:64])
        for rnd in range(1, args.rounds + 1):
            for name, _ in configs:
                url = servers[name].url
                res[name]["concurrent"].append(concurrent_run(pool, sessions, url, texts))
                res[name]["one_request"].append(one_request_run(sessions[0], url, texts))
                log("[round %d] batching %-3s  concurrent %.1f s/s  one request %.1f s/s"
                    % (rnd, name, res[name]["concurrent"][-1], res[name]["one_request"][-1]))
            if not args.no_reference:
                for b in (32, 1):
                    ref["batch%d" % b].append(reference_run(args.sentences, b, args.threads))
                log("[round %d] reference  batch 32 %.1f s/s  batch 1 %.1f s/s"
                    % (rnd, ref["batch32"][-1], ref["batch1"][-1]))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for s in sessions:
            s.close()
        for s in servers.values():
            s.stop()

    med = common.median
    rows = [("ember batching on", med(res["on"]["concurrent"]), med(res["on"]["one_request"])),
            ("ember batching off", med(res["off"]["concurrent"]), med(res["off"]["one_request"]))]
    ratio = tuple(round(a / b, 2) for a, b in zip(rows[0][1:], rows[1][1:]))
    print("\nN=%d sentences, C=%d clients, threads=%d, %d round(s); median sentences/s"
          % (args.sentences, args.concurrency, args.threads, args.rounds))
    table = rows + [("ratio on/off",) + tuple("%sx" % r for r in ratio)]
    if not args.no_reference:
        table += [("reference batch 32", "", med(ref["batch32"])), ("reference batch 1", "", med(ref["batch1"]))]
    common.print_table(("config", "concurrent, 1/request", "one request of N"), table, (22, 22, 16))
    if args.json:
        out = {"binary": args.bin, "binary_mtime": time.ctime(os.path.getmtime(args.bin)),
               "sentences": args.sentences, "concurrency": args.concurrency, "threads": args.threads,
               "rounds": args.rounds, "runs": res, "reference_runs": ref, "contention": note,
               "median": {"on": dict(zip(("concurrent", "one_request"), rows[0][1:])),
                          "off": dict(zip(("concurrent", "one_request"), rows[1][1:])),
                          "ratio_on_off": dict(zip(("concurrent", "one_request"), ratio)),
                          "reference_batch32": med(ref["batch32"]), "reference_batch1": med(ref["batch1"])}}
        common.write_json(args.json, out)


if __name__ == "__main__":
    main()
