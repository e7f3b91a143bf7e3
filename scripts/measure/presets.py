#!/usr/bin/env python3
"""WER of each `preprocessing` preset on quiet and level-stepped speech.

For every 16 kHz English clip built by `longform.py build` (in ~/.cache/ember/measure/clips),
writes two variants: the clip attenuated by 25 dB, and the clip whose second half is 30 dB
quieter. Each preset transcribes all variants in one `ember transcribe` process (base,
English); the script prints WER per preset and variant, pooled over the clips.

Usage: scripts/measure/presets.py [--model base]   (after `longform.py build`)
"""

import argparse
import array
import json
import os
import subprocess
import sys
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import MEASURE_DIR, log  # noqa: E402

CLIPS_DIR = os.path.join(MEASURE_DIR, "clips")
OUT_DIR = os.path.join(MEASURE_DIR, "presets")
PRESETS = ["none", "dynamic", "soft_dynamic", "bass_dynamic"]


def read(path):
    with wave.open(path, "rb") as w:
        a = array.array("h")
        a.frombytes(w.readframes(w.getnframes()))
    return a


def write(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())


def scaled(samples, db, start=0):
    factor = 10 ** (db / 20.0)
    out = array.array("h", samples)
    for i in range(start, len(out)):
        out[i] = int(round(out[i] * factor))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="base")
    args = parser.parse_args()
    meta_path = os.path.join(MEASURE_DIR, "clips.json")
    if not os.path.exists(meta_path):
        sys.exit("run `scripts/measure/longform.py build` first (it writes clips.json)")
    with open(meta_path) as f:
        meta = json.load(f)["clips"]
    refs = {c["id"]: c["transcript"] for c in meta}
    clips = sorted(c["wav"] for c in meta)
    variants_dir = os.path.join(OUT_DIR, "audio")
    os.makedirs(variants_dir, exist_ok=True)
    inputs = []
    for clip in clips:
        stem = os.path.splitext(os.path.basename(clip))[0]
        if stem not in refs:
            continue
        samples = read(clip)
        for name, variant in (("quiet", scaled(samples, -25.0)),
                              ("stepped", scaled(samples, -30.0, len(samples) // 2))):
            path = os.path.join(variants_dir, "%s__%s.wav" % (stem, name))
            write(path, variant)
            inputs.append((stem, name, path))
    rows = []
    for preset in PRESETS:
        out = os.path.join(OUT_DIR, preset)
        os.makedirs(out, exist_ok=True)
        cmd = [common.ember_bin(), "transcribe", *[p for _, _, p in inputs], "--model", args.model,
               "--language", "en", "--format", "text", "--preprocessing", preset, "--output", out]
        log("running", preset, "on", len(inputs), "files")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in ("quiet", "stepped"):
            ref_words = hyp_errors = 0
            for stem, variant, path in inputs:
                if variant != name:
                    continue
                hyp = open(os.path.join(out, "%s__%s.txt" % (stem, name))).read()
                score = common.wer(refs[stem], hyp)
                ref_words += score["ref_words"]
                hyp_errors += score["sub"] + score["del"] + score["ins"]
            rows.append((preset, name, 100.0 * hyp_errors / max(ref_words, 1), ref_words))
    print("%-13s %-8s %8s %7s" % ("preset", "variant", "WER %", "words"))
    for preset, name, w, n in rows:
        print("%-13s %-8s %8.2f %7d" % (preset, name, w, n))


if __name__ == "__main__":
    main()
