#!/usr/bin/env python3
"""Builds a word-alignment test set whose word boundaries are known exactly.

Every word is synthesised on its own by espeak-ng, resampled to 16 kHz, trimmed to its
audible extent, and the words are then laid end to end with random silent gaps, so each
word's start and end in the clip follow from the concatenation itself. See README.md.

Standard library only. Needs espeak-ng on PATH (scripts/ensure-espeak.sh installs it).
"""
import argparse
import hashlib
import json
import math
import multiprocessing
import os
import random
import re
import struct
import subprocess
import sys
import time
import wave
from array import array
from operator import mul
from pathlib import Path

FORMAT_VERSION = 1

# English voices that exist in stock espeak-ng 1.51 (no mbrola): base voice + variant.
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-x-rp+m2", "en-us+m5", "en+f4"]
RATE_WPM = (130, 220)
WORDS_PER_CLIP = (6, 14)
TOKEN_SHARE = 0.10  # chance that a word slot holds a token needing text normalisation
GAP_S = (0.05, 0.60)  # between one word's end and the next word's start
EDGE_S = (0.20, 0.50)  # before the first word and after the last
TRIM_DB = -40.0  # a 10 ms frame is speech if within this of the word's loudest frame
MARGIN = 160  # samples (10 ms) of sub-threshold audio kept on each side of a word, faded
NOISE_DBFS = -60.0  # white noise over the whole clip so silence is not digital zero

SR_IN, SR_OUT = 22050, 16000  # espeak-ng writes 22050 Hz; 16000/22050 = 320/441
UP, DOWN = 320, 441
FRAME = SR_OUT // 100

# ~300 common words of one to four syllables, including some proper nouns.
WORDS = """
the a and of to in is it you that he was for on are with as his they be at one have
this from or had by word but what some we can out other were all there when up use
your how said an each she which do their time if will way about many then them write
would like so these her long make thing see him two has look more day could go come
did number sound no most people my over know water than call first who may down side
been now find any new work part take get place made live where after back little only
round man year came show every good me give our under name very through just form
sentence great think say help low line differ turn cause much mean before move right
boy old too same tell does set three want air well also play small end put home read
hand port large spell add even land here must big high such follow act why ask men
change went light kind off need house picture try us again animal point mother world
near build self earth father head stand own page should country found answer school
grow study still learn plant cover food sun four between state keep eye never last
let thought city tree cross farm hard start might story saw far sea draw left late
run while press close night real life few north open seem together next white children
begin got walk example ease paper group always music those both mark often letter
until mile river car feet care second book carry took science eat room friend began
idea fish mountain stop once base hear horse cut sure watch color face wood main
enough plain girl usual young ready above ever red list though feel talk bird soon
body dog family direct pose leave song measure door product black short numeral class
wind question happen complete ship area half rock order fire south problem piece told
knew pass since top whole king space heard best hour better true during hundred five
remember step early hold west ground interest reach fast verb sing listen six table
travel less morning ten simple several vowel toward war lay against pattern slow
center love person money serve appear road map rain rule govern pull cold notice
voice unit power town fine certain fly fall lead cry dark machine note wait plan
figure star box noun field rest correct able pound done beauty drive stood contain
front teach week final gave green quick develop ocean warm free minute strong special
mind behind clear tail produce fact street inch multiply nothing course stay wheel
full force blue object decide surface deep moon island foot system busy test record
boat common gold possible plane instead dry wonder laugh thousand ago ran check game
shape equate miss brought heat snow tire bring yes distant fill east paint language
among elephant umbrella banana tomorrow yesterday beautiful chocolate computer
telephone vegetable adventure calendar library
London Paris Tokyo Sarah Michael Amazon Texas Canada Jupiter Monday Wednesday
September Elizabeth Chicago Africa Oxford Victoria Jennifer Robert Thomas Maria
Everest Beethoven Shakespeare Einstein Australia Brazil
""".split()

# Tokens an aligner must normalise to words; espeak-ng reads them itself (note that it says
# "$5" as "dollar five" and "1999" as "nineteen hundred ninety nine").
TOKENS = ["42", "1999", "3rd", "$5", "10%", "7", "2024", "15th", "100", "$20", "50%",
          "1st", "2nd", "365", "12", "3.5", "2008", "90%", "21st", "11th"]


def to_host(a):
    """WAV data is little-endian; flip 16-bit samples on a big-endian host."""
    if sys.byteorder == "big":
        a.byteswap()
    return a


def synth(voice, rate, word):
    """Speaks one word; returns its 22050 Hz samples with espeak's silent ends cut off."""
    proc = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", word],
                          capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        raise RuntimeError(f"espeak-ng -v {voice} failed on {word!r}: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    # espeak-ng streams to stdout, so the header's lengths are bogus: take the data after
    # the canonical 44-byte header (checked) rather than trusting wave's frame count.
    head = proc.stdout[:44]
    fmt = struct.unpack_from("<HHI", head, 20) + struct.unpack_from("<H", head, 34)
    if head[:4] != b"RIFF" or head[36:40] != b"data" or fmt != (1, 1, SR_IN, 16):
        raise RuntimeError(f"unexpected WAV header from espeak-ng for {word!r}: {fmt}")
    x = to_host(array("h", proc.stdout[44:44 + (len(proc.stdout) - 44) // 2 * 2]))
    # espeak pads with exact zeros; dropping them (keeping filter room) saves resampling.
    first = next((i for i, v in enumerate(x) if v), 0)
    last = next((i for i in range(len(x) - 1, -1, -1) if x[i]), len(x) - 1)
    return x[max(0, first - 64):last + 65]


def _kernels(half=16, cutoff_hz=6700.0):
    """Polyphase Blackman-windowed-sinc table: one 2*half-tap kernel per output phase."""
    fc = cutoff_hz / SR_IN  # cycles per input sample
    table = []
    for p in range(UP):
        frac = p / UP  # the output sample sits this far past input sample i0
        taps = []
        for j in range(-half + 1, half + 1):
            t = j - frac
            w = 0.42 + 0.5 * math.cos(math.pi * t / half) + 0.08 * math.cos(2 * math.pi * t / half)
            s = 2 * fc * (math.sin(2 * math.pi * fc * t) / (2 * math.pi * fc * t) if t else 1.0)
            taps.append(s * w)
        total = sum(taps)
        table.append([v / total for v in taps])  # unity gain at DC for every phase
    return half, table


KERNELS = None  # built lazily, once per process


def resample(x):
    """22050 Hz -> 16000 Hz with a 32-tap windowed-sinc low-pass (cutoff 6.7 kHz)."""
    global KERNELS
    if KERNELS is None:
        KERNELS = _kernels()
    half, table = KERNELS
    xp = [0.0] * half + list(x) + [0.0] * half
    out = []
    for n in range(len(x) * UP // DOWN):
        i0, p = divmod(n * DOWN, UP)
        # input samples i0-half+1 .. i0+half sit at xp[i0+1 .. i0+2*half]
        out.append(sum(map(mul, table[p], xp[i0 + 1:i0 + 2 * half + 1])))
    return out


def trim(y):
    """Finds the word's audible extent in 16 kHz samples y.

    Frames of 10 ms within TRIM_DB of the loudest frame count as speech; the first and last
    such frames are then refined to the first/last sample reaching the threshold's RMS
    level. Returns (segment, offset of the speech start in it, speech length)."""
    energies = [sum(v * v for v in y[i:i + FRAME]) / FRAME
                for i in range(0, len(y) - FRAME + 1, FRAME)]
    if not energies or max(energies) <= 0:
        raise RuntimeError("word synthesised to silence")
    thr = max(energies) * 10 ** (TRIM_DB / 10)
    active = [i for i, e in enumerate(energies) if e >= thr]
    amp = math.sqrt(thr)
    lo, hi = active[0] * FRAME, (active[-1] + 1) * FRAME
    # Refine inside [frame before, first active frame] (and mirrored at the end); an active
    # frame's RMS reaches amp, so some sample in it does too.
    start = next(i for i in range(max(0, lo - FRAME), hi) if abs(y[i]) >= amp)
    end = next(i for i in range(min(len(y), hi + FRAME) - 1, start - 1, -1) if abs(y[i]) >= amp) + 1
    a, b = max(0, start - MARGIN), min(len(y), end + MARGIN)
    seg = y[a:b]
    # Fade the kept margins (all below threshold) so the cut edges do not click.
    for k in range(start - a):
        seg[k] *= k / (start - a)
    for k in range(b - end):
        seg[-1 - k] *= k / (b - end)
    return seg, start - a, end - start


def make_clip(job):
    """Builds one clip; returns its audio (16 kHz floats) and word boundaries (samples)."""
    index, seed, out_dir, stem = job
    rng = random.Random(f"{seed}:{index}")  # str seeds hash stably across runs/processes
    voice = VOICES[index % len(VOICES)]
    rate = rng.randint(*RATE_WPM)
    count = rng.randint(*WORDS_PER_CLIP)
    pool = rng.sample(WORDS, count)
    words = [rng.choice(TOKENS) if rng.random() < TOKEN_SHARE else w for w in pool]

    def silence(lo_s, hi_s):
        return round(rng.uniform(lo_s, hi_s) * SR_OUT)

    audio, spans = [], []
    pending = silence(*EDGE_S)  # silence owed before the next word's speech start
    for word in words:
        seg, lead, length = trim(resample(synth(voice, rate, word)))
        # The gap is measured between speech edges, so the faded margins count toward it.
        assert pending >= lead, "GAP_S minimum must exceed two margins"
        audio.extend([0.0] * (pending - lead))
        start = len(audio) + lead
        audio.extend(seg)
        spans.append((start, start + length, word))
        tail = len(seg) - lead - length
        pending = silence(*GAP_S) - tail
    audio.extend([0.0] * (silence(*EDGE_S) - (len(audio) - spans[-1][1])))

    sigma = 32767 * 10 ** (NOISE_DBFS / 20)
    pcm = array("h", (max(-32768, min(32767, round(v + rng.gauss(0.0, sigma)))) for v in audio))
    out = Path(out_dir)
    with wave.open(str(out / f"{stem}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR_OUT)
        w.writeframes(to_host(pcm).tobytes())
    (out / f"{stem}.words.tsv").write_text(
        "".join(f"{s / SR_OUT:.3f}\t{e / SR_OUT:.3f}\t{wd}\n" for s, e, wd in spans))
    (out / f"{stem}.txt").write_text(" ".join(words) + "\n")
    return {"wav": f"{stem}.wav", "words_tsv": f"{stem}.words.tsv", "txt": f"{stem}.txt",
            "voice": voice, "rate": rate, "words": words,
            "duration": round(len(pcm) / SR_OUT, 3)}


def espeak_version():
    try:
        proc = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit("error: espeak-ng not found; run scripts/ensure-espeak.sh")
    return proc.stdout.split(" Data at")[0].strip()  # drop the install path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="~/.cache/ember/align-set", help="output directory")
    ap.add_argument("--clips", type=int, default=24, help="number of clips")
    ap.add_argument("--seed", type=int, default=7, help="random seed")
    args = ap.parse_args()
    out = Path(args.out).expanduser()
    t0 = time.monotonic()

    # The hash covers this script's own source, so any change to it rebuilds the set.
    key = json.dumps({"format": FORMAT_VERSION, "clips": args.clips, "seed": args.seed,
                      "espeak": espeak_version(), "source": Path(__file__).read_text()},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except ValueError:
            old = {}
        files = [c[k] for c in old.get("clips", []) for k in ("wav", "words_tsv", "txt")]
        if old.get("params_hash") == digest and all((out / f).exists() for f in files):
            print(f"align set up to date: {out} ({len(old['clips'])} clips)")
            return

    out.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)  # an interrupted run must not look complete
    for f in out.iterdir():  # drop clips of an earlier, differently sized set
        if re.fullmatch(r"clip\d+\.(wav|words\.tsv|txt)", f.name):
            f.unlink()

    width = max(2, len(str(args.clips)))
    jobs = [(i, args.seed, str(out), f"clip{i + 1:0{width}d}") for i in range(args.clips)]
    with multiprocessing.Pool(min(os.cpu_count() or 1, max(1, args.clips))) as pool:
        clips = pool.map(make_clip, jobs)

    manifest = {"format": FORMAT_VERSION, "params_hash": digest,
                "params": {"clips": args.clips, "seed": args.seed}, "espeak": espeak_version(),
                "sample_rate": SR_OUT, "clips": clips}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    n_words = sum(len(c["words"]) for c in clips)
    total = sum(c["duration"] for c in clips)
    voices = sorted({c["voice"] for c in clips})
    print(f"align set: {len(clips)} clips, {n_words} words, {total:.1f} s of audio, "
          f"voices {','.join(voices)}, in {time.monotonic() - t0:.1f} s -> {out}")


if __name__ == "__main__":
    main()
