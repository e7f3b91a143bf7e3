#!/usr/bin/env python3
"""Word-boundary accuracy of forced alignment (`POST /v1/audio/alignments`) on a running server.

Two datasets, each item being a WAV, its reference words with (start, end), and as text the
reference words joined by spaces (one token per reference word):
  known   the espeak-ng set with exact boundaries (scripts/align/make_known_boundaries.py,
          ~/.cache/ember/align-set/: manifest.json, clipNN.wav, clipNN.words.tsv, no header)
  silver  every line of ../shared/data/manifest.jsonl with a `words` TSV (machine alignments
          of real recordings; `start<TAB>end<TAB>word` with a header line)
Every item is posted once per aligner and repetition, sequentially (`response_format=
verbose_json`, `include[]=interpolated`), and the returned words are compared by position.
Per (dataset, aligner): start / end MAE and median absolute error (ms), % of boundaries
(starts and ends pooled) within 50 and 100 ms, mean signed start / end error (bias, ms), real-
time factor (request wall time / audio time, over all repetitions), words flagged
interpolated, responses whose word count differs from the reference (left out of the
figures), and violations (a word with end < start, starting before the previous word's
start, or outside [0, duration + 0.05 s]). Accuracy and counts come from the first
repetition; later ones only add timing. Needs `requests` (the ember venv has it).

Example:
  ~/.cache/ember/venv/bin/python scripts/measure/alignment_accuracy.py \\
      --url http://127.0.0.1:8080 --aligners tdnn_ffn,whisper --json /tmp/align.json
  python3 scripts/measure/alignment_accuracy.py --dry-run     # load and summarise the datasets
"""

import argparse
import json
import os
import statistics
import sys
import time
import wave

try:
    import requests
except ImportError:  # --dry-run works without it
    requests = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE, DATA_DIR, log  # noqa: E402

ALIGNERS = "tdnn_ffn,whisper,whisper_tokens"
TOLERANCE_S = 0.05  # end may exceed the audio duration by this much


def read_tsv(path):
    """[(start, end, word)] from `start<TAB>end<TAB>word` lines; a header line is skipped."""
    rows = []
    with open(path) as f:
        for n, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if n == 0 and parts[0] == "start":
                continue
            if len(parts) != 3:
                raise ValueError("%s:%d: expected 3 fields, got %r" % (path, n + 1, line))
            rows.append((float(parts[0]), float(parts[1]), parts[2]))
    return rows


def wav_seconds(path, fallback):
    try:
        with wave.open(path) as w:
            return w.getnframes() / w.getframerate()
    except (wave.Error, EOFError, OSError):
        return fallback


def load_known(folder):
    if not os.path.exists(os.path.join(folder, "manifest.json")):
        sys.exit("no %s/manifest.json: run python3 scripts/align/make_known_boundaries.py" % folder)
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    items = []
    for clip in manifest["clips"]:
        ref = read_tsv(os.path.join(folder, clip["words_tsv"]))
        if [w for _, _, w in ref] != clip["words"]:
            log("[known] %s: TSV words differ from manifest words" % clip["words_tsv"])
        wav = os.path.join(folder, clip["wav"])
        items.append({"id": os.path.splitext(clip["wav"])[0], "wav": wav, "ref": ref, "duration": wav_seconds(wav, clip["duration"])})
    return items


def load_silver(folder):
    items = []
    with open(os.path.join(folder, "manifest.jsonl")) as f:
        for line in f:
            clip = json.loads(line)
            if not clip.get("words"):
                continue
            wav = os.path.join(folder, clip["audio"])
            ref = read_tsv(os.path.join(folder, clip["words"]))
            items.append({"id": clip["id"], "wav": wav, "ref": ref, "duration": wav_seconds(wav, clip["duration_s"])})
    return items


def post(session, args, item, aligner):
    """(seconds, words or None): one alignment request; HTTP/transport errors are printed."""
    text = " ".join(w for _, _, w in item["ref"])
    data = [("text", text), ("alignment_model", aligner), ("response_format", "verbose_json"), ("include[]", "interpolated")]
    headers = {"Authorization": "Bearer " + args.api_key} if args.api_key else {}
    with open(item["wav"], "rb") as f:
        audio = f.read()
    t0 = time.perf_counter()
    try:
        r = session.post(args.url + "/v1/audio/alignments", data=data, headers=headers,
                         files={"file": (os.path.basename(item["wav"]), audio, "audio/wav")}, timeout=args.timeout)
        seconds = time.perf_counter() - t0
        if r.status_code != 200:
            print("  %s %s: HTTP %d %s" % (aligner, item["id"], r.status_code, r.text[:500]))
            return seconds, None
        return seconds, r.json()["words"]
    except (requests.RequestException, ValueError, KeyError) as e:
        print("  %s %s: %s: %s" % (aligner, item["id"], type(e).__name__, e))
        return time.perf_counter() - t0, None


def violations(words, duration):
    """Words with end < start, a start before the previous word's start, or outside [0, duration + tolerance]."""
    bad, prev = 0, None
    for w in words:
        s, e = w["start"], w["end"]
        if e < s or (prev is not None and s < prev) or s < 0 or e > duration + TOLERANCE_S:
            bad += 1
        prev = s
    return bad


def ms(x):
    return None if x is None else round(1000 * x, 1)


def measure(session, args, dataset, items, aligner):
    st, en = [], []  # signed errors (hyp - ref), seconds
    row = {"dataset": dataset, "aligner": aligner, "items": len(items), "ok": 0, "failed": 0, "count_mismatch": 0, "text_mismatch": 0,
           "interpolated": 0, "violations": 0, "changed_on_repeat": 0, "request_s": 0.0, "audio_s": 0.0, "per_item": []}
    for item in items:
        first = None
        for rep in range(args.repeat):
            seconds, words = post(session, args, item, aligner)
            row["request_s"] += seconds
            row["audio_s"] += item["duration"]
            if rep == 0:
                first = words
                detail = {"id": item["id"], "seconds": [round(seconds, 3)], "words": None if words is None else len(words), "ref_words": len(item["ref"])}
                row["per_item"].append(detail)
            else:
                detail["seconds"].append(round(seconds, 3))
                if words is not None and first is not None and [(w["start"], w["end"]) for w in words] != [(w["start"], w["end"]) for w in first]:
                    row["changed_on_repeat"] += 1
        if first is None:
            row["failed"] += 1
            continue
        if len(first) != len(item["ref"]):
            row["count_mismatch"] += 1
            print("  %s %s: %d words returned for %d reference words" % (aligner, item["id"], len(first), len(item["ref"])))
            continue
        row["ok"] += 1
        row["text_mismatch"] += sum(1 for w, r in zip(first, item["ref"]) if w.get("word") != r[2])
        row["interpolated"] += sum(1 for w in first if w.get("interpolated"))
        detail["violations"] = violations(first, item["duration"])
        row["violations"] += detail["violations"]
        errs = [(w["start"] - r[0], w["end"] - r[1]) for w, r in zip(first, item["ref"])]
        st += [s for s, _ in errs]
        en += [e for _, e in errs]
        detail["start_mae_ms"] = ms(statistics.mean(abs(s) for s, _ in errs))
        detail["end_mae_ms"] = ms(statistics.mean(abs(e) for _, e in errs))
    pooled = [abs(x) for x in st + en]
    row.update({
        "words": len(st),
        "start_mae_ms": ms(statistics.mean(abs(x) for x in st)) if st else None,
        "start_median_ms": ms(statistics.median(abs(x) for x in st)) if st else None,
        "end_mae_ms": ms(statistics.mean(abs(x) for x in en)) if en else None,
        "end_median_ms": ms(statistics.median(abs(x) for x in en)) if en else None,
        "within_50ms_pct": round(100 * sum(x <= 0.05 for x in pooled) / len(pooled), 1) if pooled else None,
        "within_100ms_pct": round(100 * sum(x <= 0.10 for x in pooled) / len(pooled), 1) if pooled else None,
        "start_bias_ms": ms(statistics.mean(st)) if st else None,
        "end_bias_ms": ms(statistics.mean(en)) if en else None,
        "rtf": round(row["request_s"] / row["audio_s"], 4) if row["audio_s"] else None,
    })
    row["request_s"], row["audio_s"] = round(row["request_s"], 3), round(row["audio_s"], 3)
    return row


COLUMNS = [("dataset", "%-7s"), ("aligner", "%-15s"), ("ok", "%4s"), ("words", "%6s"), ("start_mae_ms", "%8s"), ("start_median_ms", "%8s"),
           ("end_mae_ms", "%8s"), ("end_median_ms", "%8s"), ("within_50ms_pct", "%6s"), ("within_100ms_pct", "%6s"), ("start_bias_ms", "%8s"),
           ("end_bias_ms", "%8s"), ("rtf", "%7s"), ("interpolated", "%6s"), ("count_mismatch", "%5s"), ("violations", "%5s"), ("failed", "%5s")]
HEADS = ["dataset", "aligner", "ok", "words", "st MAE", "st med", "en MAE", "en med", "<=50", "<=100", "st bias", "en bias", "RTF", "interp", "n!=", "viol", "fail"]


def print_table(rows):
    print("\nerrors in ms (hyp - ref for bias); <=50 / <=100: % of starts and ends; ok = items with the reference word count")
    print(" ".join(fmt % h for (_, fmt), h in zip(COLUMNS, HEADS)))
    print("-" * 132)
    for row in rows:
        print(" ".join(fmt % ("-" if row[k] is None else row[k]) for k, fmt in COLUMNS))
    for row in rows:
        if row["text_mismatch"] or row["changed_on_repeat"]:
            print("note: %s %s: %d returned words differ from the token, %d items changed times on a repeat"
                  % (row["dataset"], row["aligner"], row["text_mismatch"], row["changed_on_repeat"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL (default http://127.0.0.1:8080)")
    ap.add_argument("--api-key", default=os.environ.get("EMBER_API_KEY"), help="sent as `Authorization: Bearer KEY` (default $EMBER_API_KEY)")
    ap.add_argument("--aligners", default=ALIGNERS, help="comma-separated alignment_model values (default %s)" % ALIGNERS)
    ap.add_argument("--datasets", default="known,silver", help="comma-separated, of known,silver (default both)")
    ap.add_argument("--known-dir", default=os.path.join(CACHE, "align-set"), help="the known-boundary set (default ~/.cache/ember/align-set)")
    ap.add_argument("--data-dir", default=DATA_DIR, help="the shared data folder (default ../shared/data)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N items of each dataset")
    ap.add_argument("--repeat", type=int, default=1, help="requests per item and aligner (default 1; extra ones only add timing)")
    ap.add_argument("--timeout", type=float, default=300.0, help="per-request timeout, s (default 300)")
    ap.add_argument("--json", metavar="PATH", help="also write all the figures (and per-item details) here")
    ap.add_argument("--dry-run", action="store_true", help="load and summarise the datasets; post nothing")
    args = ap.parse_args()
    args.url = args.url.rstrip("/")
    args.repeat = max(1, args.repeat)
    loaders = {"known": lambda: load_known(os.path.expanduser(args.known_dir)), "silver": lambda: load_silver(args.data_dir)}
    datasets = {}
    for name in args.datasets.split(","):
        if name not in loaders:
            sys.exit("unknown dataset %r (known, silver)" % name)
        items = loaders[name]()[: args.limit]
        missing = [it["wav"] for it in items if not os.path.exists(it["wav"])]
        if missing:
            sys.exit("%s: missing audio %s" % (name, missing[:3]))
        datasets[name] = items
        print("%-7s %3d items, %4d words, %6.1f s of audio" % (name, len(items), sum(len(it["ref"]) for it in items), sum(it["duration"] for it in items)))
    if args.dry_run:
        return
    if requests is None:
        sys.exit("needs `requests`: run with ~/.cache/ember/venv/bin/python")
    session = requests.Session()
    rows = []
    for name, items in datasets.items():
        for aligner in args.aligners.split(","):
            log("[%s %s] %d items x %d" % (name, aligner, len(items), args.repeat))
            rows.append(measure(session, args, name, items, aligner))
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"url": args.url, "repeat": args.repeat, "limit": args.limit, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}, f, indent=1)
        log("wrote %s" % args.json)


if __name__ == "__main__":
    main()
