#!/usr/bin/env python3
"""Words `ember transcribe` emits on clips with no speech, before and after the VAD + guard.

For each model (base, tiny.en) and each configuration, one `ember transcribe` process
transcribes all the no-speech clips (`--format text --output DIR`):
  a_before      --vad-model none,   EMBER_HALLUCINATION_GUARD=false
  b_guard_only  --vad-model none,   guard on
  c_default     --vad-model silero, guard on   (the default pipeline)
  d_webrtc      --vad-model webrtc, guard on
Prints a table: words emitted and the text (first 80 characters). Python 3 stdlib only.
Outputs go to ~/.cache/ember/measure/hallucination/.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import DATA_DIR, MEASURE_DIR, log  # noqa: E402

CLIPS = [
    "no_speech/music_macroform-cold_day_first60s_16k.flac",
    "no_speech/silence_10s_16k.flac",
    "no_speech/alsa_Noise_48k.wav",
]
CONFIGS = [
    ("a_before", "none", "false"),
    ("b_guard_only", "none", "true"),
    ("c_default", "silero", "true"),
    ("d_webrtc", "webrtc", "true"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["base", "tiny.en"])
    ap.add_argument("--configs", nargs="+", default=[c[0] for c in CONFIGS], help="subset of " + " ".join(c[0] for c in CONFIGS))
    ap.add_argument("--out", default=os.path.join(MEASURE_DIR, "hallucination"), help="output folder")
    ap.add_argument("--no-wait", action="store_true", help="skip the wait for a quiet machine")
    args = ap.parse_args()
    base = args.out
    configs = [c for c in CONFIGS if c[0] in args.configs]
    files = [os.path.join(DATA_DIR, c) for c in CLIPS]
    rows, runs = [], []
    for model in args.models:
        for name, vad, guard in configs:
            odir = os.path.join(base, model, name)
            shutil.rmtree(odir, ignore_errors=True)
            os.makedirs(odir)
            cmd = [common.ember_bin(), "transcribe"] + files + ["--model", model, "--language", "en", "--format", "text", "--vad-model", vad, "--output", odir]
            env = {"EMBER_HALLUCINATION_GUARD": guard, "RUST_LOG": "info"}
            note = {} if args.no_wait else common.wait_quiet()
            log("[%s %s] EMBER_HALLUCINATION_GUARD=%s %s" % (model, name, guard, " ".join(cmd)))
            res = common.timed_run(cmd, env, stdout_path=os.path.join(odir, "stdout"), stderr_path=os.path.join(odir, "stderr"))
            with open(os.path.join(odir, "stderr"), errors="replace") as f:
                tl = common.parse_transcribed_lines(f.read())
            runs.append({"model": model, "config": name, "rc": res["rc"], "wall_s": res.get("wall_s"), "contention": res["contention_samples"], "before": note, "transcribed": tl, "cmd": "EMBER_HALLUCINATION_GUARD=%s %s" % (guard, " ".join(cmd))})
            for f in files:
                stem = os.path.splitext(os.path.basename(f))[0]
                p = os.path.join(odir, stem + ".txt")
                text = open(p).read().strip() if os.path.exists(p) else None
                rows.append(
                    {
                        "model": model,
                        "config": name,
                        "clip": stem,
                        "words": len(text.split()) if text is not None else None,
                        "lexical": len(common.normalize(text)) if text is not None else None,
                        "text": text,
                    }
                )
    with open(os.path.join(base, "results.json"), "w") as f:
        json.dump({"rows": rows, "runs": runs}, f, indent=1)

    print("\nwords: whitespace-separated tokens; lexical: words left after stripping punctuation")
    print("\n%-8s %-13s %-40s %5s %7s  %s" % ("model", "config", "clip", "words", "lexical", "text (80 chars)"))
    print("-" * 150)
    for r in rows:
        t = "<no output file>" if r["text"] is None else r["text"].replace("\n", " ")[:80]
        print("%-8s %-13s %-40s %5s %7s  %s" % (r["model"], r["config"], r["clip"][:40], r["words"], r["lexical"], t))
    print("\nper process:")
    for r in runs:
        print("  %-8s %-13s rc=%s wall=%ss contention samples=%d" % (r["model"], r["config"], r["rc"], r["wall_s"], len(r["contention"])))
    print("\ntotal words per model/config:")
    for model in args.models:
        print(
            "  %-8s " % model
            + "  ".join(
                "%s=%d (lexical %d)"
                % (
                    n,
                    sum(r["words"] or 0 for r in rows if r["model"] == model and r["config"] == n),
                    sum(r["lexical"] or 0 for r in rows if r["model"] == model and r["config"] == n),
                )
                for n, _, _ in configs
            )
        )


if __name__ == "__main__":
    main()
