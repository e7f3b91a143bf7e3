#!/usr/bin/env python3
"""Long-form measurement for `ember transcribe`: wall time, real-time factor, peak RSS, WER.

Builds 30- and 60-minute 16 kHz mono WAVs out of the shared English clips separated by
seeded random silences, transcribes them with the release `ember` binary under
`/usr/bin/time -v`, and compares with the clips transcribed one by one.

Subcommands (all write into ~/.cache/ember/measure/, never into the repository):
  build    make clips/<id>.wav (16 kHz mono) and long_<N>min.{wav,json}
  clips    transcribe every distinct clip once (one process, --output DIR)
  run      one timed run of a long file (--minutes, --workers, --threads, --tag, --format)
  layout   alternate EMBER_ASR_WORKERS=1/THREADS=2 and WORKERS=2/THREADS=1 on the 30-min file
  long60   one run of the 60-min file with the faster layout from `layout`
  timestamps  one verbose_json run of the 30-min file: where words land against the clips
  table    print the results table from the stored results
  tscheck  timestamp check of a stored verbose_json output of a long file
  all      build, clips, layout, long60, timestamps, table

Python 3 stdlib only. Decoding: 16 kHz mono 16-bit WAVs are read with `wave`; every other clip
(FLAC, 44.1/48 kHz WAV) is decoded and resampled to 16 kHz mono by `ffmpeg` when it is on PATH.
With --wav-only (or without ffmpeg) only the WAV clips are used and non-16 kHz ones are resampled
by linear interpolation in pure Python.
"""

import argparse
import array
import glob
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import DATA_DIR, MEASURE_DIR, log  # noqa: E402

SR = 16000
CLIPS_DIR = os.path.join(MEASURE_DIR, "clips")
RESULTS_DIR = os.environ.get("EMBER_MEASURE_RESULTS", os.path.join(MEASURE_DIR, "results"))
LAYOUTS = {"1x2": ("1", "2"), "2x1": ("2", "1")}


# ------------------------------------------------------------------ audio


def read_wav_16k(path):
    with wave.open(path, "rb") as w:
        ch, sw, sr, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if sw != 2:
        raise ValueError("%s: %d-byte samples, want 16-bit" % (path, sw))
    a = array.array("h")
    a.frombytes(raw)
    if sys.byteorder == "big":
        a.byteswap()
    if ch > 1:
        a = array.array("h", (int(sum(a[i : i + ch]) / ch) for i in range(0, len(a), ch)))
    if sr != SR:
        a = resample_linear(a, sr, SR)
    return a


def resample_linear(a, sr_in, sr_out):
    """Pure-Python linear interpolation (no anti-alias filter; fine for speech going down to 16 kHz
    from 44.1/48 kHz in a measurement, not for production)."""
    n_out = int(len(a) * sr_out / sr_in)
    out = array.array("h", bytes(2 * n_out))
    step = sr_in / sr_out
    last = len(a) - 1
    for k in range(n_out):
        x = k * step
        i = int(x)
        f = x - i
        j = i + 1 if i < last else last
        out[k] = int(round(a[i] * (1 - f) + a[j] * f))
    return out


def decode_ffmpeg(path):
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-ac", "1", "-ar", str(SR), "-f", "s16le", "-"],
        check=True,
        capture_output=True,
    ).stdout
    a = array.array("h")
    a.frombytes(raw)
    if sys.byteorder == "big":
        a.byteswap()
    return a


def write_wav(path, samples):
    tmp = path + ".tmp"
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        data = samples
        if sys.byteorder == "big":
            data = array.array("h", samples)
            data.byteswap()
        w.writeframes(data.tobytes())
    os.replace(tmp, path)


def english_clips(wav_only):
    use_ffmpeg = shutil.which("ffmpeg") is not None and not wav_only
    clips, skipped = [], []
    with open(os.path.join(DATA_DIR, "manifest.jsonl")) as f:
        entries = [json.loads(l) for l in f if l.strip()]
    for e in sorted((e for e in entries if e.get("lang") == "en"), key=lambda e: e["id"]):
        path = os.path.join(DATA_DIR, e["audio"])
        is_wav = path.lower().endswith(".wav")
        if is_wav and e.get("sample_rate") == SR and e.get("channels") == 1:
            how = "wave"
        elif use_ffmpeg:
            how = "ffmpeg"
        elif is_wav:
            how = "wave+linear"
        else:
            skipped.append(e["id"])
            continue
        clips.append((e, path, how))
    return clips, skipped


def cmd_build(args):
    os.makedirs(CLIPS_DIR, exist_ok=True)
    clips, skipped = english_clips(args.wav_only)
    loaded = []
    for e, path, how in clips:
        a = decode_ffmpeg(path) if how == "ffmpeg" else read_wav_16k(path)
        out = os.path.join(CLIPS_DIR, e["id"] + ".wav")
        write_wav(out, a)
        loaded.append({"id": e["id"], "src": e["audio"], "how": how, "n": len(a), "transcript": e["transcript"], "wav": out})
    speech_s = sum(c["n"] for c in loaded) / SR
    log("clips: %d (%.1f s of audio), skipped %s" % (len(loaded), speech_s, skipped or "none"))
    with open(os.path.join(MEASURE_DIR, "clips.json"), "w") as f:
        json.dump({"clips": loaded, "skipped": skipped, "wav_only": args.wav_only}, f, indent=1)
    by_id = {c["id"]: c for c in loaded}
    for minutes in args.minutes:
        rng = random.Random(args.seed)
        noise_rng = random.Random(args.seed + 1)
        target = minutes * 60 * SR
        out = array.array("h")
        layout = []
        rounds = 0
        while len(out) < target:
            rounds += 1
            order = sorted(by_id)
            rng.shuffle(order)
            for cid in order:
                gap = int(rng.uniform(0.5, 20.0) * SR)
                out.extend(silence(gap, args.noise_dbfs, noise_rng))
                c = by_id[cid]
                clip = array.array("h")
                with wave.open(c["wav"], "rb") as w:
                    clip.frombytes(w.readframes(w.getnframes()))
                start = len(out)
                out.extend(clip)
                layout.append({"id": cid, "start": start / SR, "end": len(out) / SR, "transcript": c["transcript"]})
                if len(out) >= target:
                    break
        out.extend(silence(SR, args.noise_dbfs, noise_rng))
        name = "long_%dmin" % minutes
        write_wav(os.path.join(MEASURE_DIR, name + ".wav"), out)
        meta = {
            "seed": args.seed,
            "noise_dbfs": args.noise_dbfs,
            "duration_s": len(out) / SR,
            "speech_s": sum(x["end"] - x["start"] for x in layout),
            "clips_placed": len(layout),
            "rounds": rounds,
            "layout": layout,
            "reference": " ".join(x["transcript"] for x in layout),
        }
        with open(os.path.join(MEASURE_DIR, name + ".json"), "w") as f:
            json.dump(meta, f, indent=1)
        log(
            "%s.wav: %.1f s (%.1f min), %d clips in %d shuffled rounds, %.1f s of clip audio, %d reference words"
            % (name, meta["duration_s"], meta["duration_s"] / 60, len(layout), rounds, meta["speech_s"], len(common.normalize(meta["reference"])))
        )


def silence(n, noise_dbfs, rng):
    if noise_dbfs is None:
        return array.array("h", bytes(2 * n))
    amp = 32767 * 10 ** (noise_dbfs / 20) * 3 ** 0.5  # uniform noise with that RMS
    return array.array("h", (int(rng.uniform(-amp, amp)) for _ in range(n)))


# ------------------------------------------------------------------ runs


def load_meta(minutes):
    with open(os.path.join(MEASURE_DIR, "long_%dmin.json" % minutes)) as f:
        return json.load(f)


def save_result(tag, res):
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, tag + ".json"), "w") as f:
        json.dump(res, f, indent=1)


def load_results():
    out = {}
    for p in sorted(glob.glob(os.path.join(RESULTS_DIR, "*.json"))):
        with open(p) as f:
            out[os.path.basename(p)[:-5]] = json.load(f)
    return out


def per_clip_report(meta, w):
    """Attribute alignment errors to clip occurrences: lost clips (all reference words deleted)
    and insertion runs of >= 3 words (duplicates or hallucinations)."""
    owner = []
    for k, x in enumerate(meta["layout"]):
        owner += [k] * len(common.normalize(x["transcript"]))
    errs = [0] * len(meta["layout"])
    dels = [0] * len(meta["layout"])
    runs, run, last_owner = [], [], -1
    for op, ri, hj in w["ops"]:
        if ri is not None:
            last_owner = owner[ri]
        if op == "I":
            run.append(w["hyp"][hj])
            errs[max(0, last_owner)] += 1
            continue
        if len(run) >= 3:
            runs.append({"after_clip": last_owner, "words": " ".join(run)})
        run = []
        if op in ("S", "D"):
            errs[owner[ri]] += 1
        if op == "D":
            dels[owner[ri]] += 1
    if len(run) >= 3:
        runs.append({"after_clip": last_owner, "words": " ".join(run)})
    lost = []
    for k, x in enumerate(meta["layout"]):
        nref = len(common.normalize(x["transcript"]))
        if nref and dels[k] == nref:
            lost.append({"k": k, "id": x["id"], "start": round(x["start"], 2), "text": x["transcript"][:60]})
    worst = sorted(
        (
            {"k": k, "id": x["id"], "start": round(x["start"], 2), "errors": errs[k], "ref_words": len(common.normalize(x["transcript"]))}
            for k, x in enumerate(meta["layout"])
            if errs[k]
        ),
        key=lambda d: -d["errors"],
    )[:10]
    return {"lost_clips": lost, "insertion_runs": runs[:20], "insertion_runs_n": len(runs), "worst_clips": worst}


def timestamp_report(meta, vj, tol=0.5):
    """Where verbose_json words land against the clip intervals of the long file."""
    iv = [(x["start"], x["end"]) for x in meta["layout"]]
    words = vj.get("words") or [wd for s in vj.get("segments", []) for wd in s.get("words", [])]
    outside, backwards, prev = [], 0, -1.0
    per_clip = [0] * len(iv)
    for wd in words:
        s, e = wd["start"], wd["end"]
        if s < prev - 1e-6:
            backwards += 1
        prev = s
        mid = (s + e) / 2
        hit = None
        for k in range(len(iv)):
            a, b = iv[k]
            if a - tol <= mid <= b + tol:
                hit = k
                break
        if hit is None:
            outside.append({"word": wd["word"], "start": s, "end": e})
        else:
            per_clip[hit] += 1
    segs = vj.get("segments", [])
    seg_back = sum(1 for a, b in zip(segs, segs[1:]) if b["start"] < a["start"] - 1e-6)
    seg_span = []
    for sg in segs:
        ks = [k for k, (a, b) in enumerate(iv) if sg["start"] < b + tol and sg["end"] > a - tol]
        if len(ks) > 1:
            seg_span.append({"start": sg["start"], "end": sg["end"], "clips": len(ks), "text": sg["text"][:60]})
    empty = [
        {"k": k, "id": meta["layout"][k]["id"], "start": round(iv[k][0], 2)}
        for k in range(len(iv))
        if per_clip[k] == 0 and common.normalize(meta["layout"][k]["transcript"])
    ]
    # Each verbose_json word, normalised, aligned to the reference: a matched word should lie
    # in the clip its reference word comes from (±tol). Offsets are from that clip's interval.
    owner = []
    for k, x in enumerate(meta["layout"]):
        owner += [k] * len(common.normalize(x["transcript"]))
    toks, tok_word = [], []
    for n, wd in enumerate(words):
        for t in common.normalize(wd["word"]):
            toks.append(t)
            tok_word.append(n)
    _, _, _, ops = common.align(common.normalize(meta["reference"]), toks)
    matched, wrong, offsets, wrong_ex = 0, 0, [], []
    for op, ri, hj in ops:
        if op != "=":
            continue
        matched += 1
        wd = words[tok_word[hj]]
        a, b = iv[owner[ri]]
        off = 0.0 if a - tol <= wd["start"] <= b + tol else (wd["start"] - a if wd["start"] < a else wd["start"] - b)
        if off:
            wrong += 1
            offsets.append(off)
            if len(wrong_ex) < 10:
                wrong_ex.append({"word": wd["word"], "start": wd["start"], "end": wd["end"], "clip": meta["layout"][owner[ri]]["id"], "clip_start": round(a, 2), "offset_s": round(off, 2)})
    offsets.sort(key=abs)
    return {
        "words": len(words),
        "matched_words": matched,
        "matched_words_starting_outside_their_clip": wrong,
        "outside_offsets_s_median_max": [round(offsets[len(offsets) // 2], 2), round(offsets[-1], 2)] if offsets else None,
        "misplaced_examples": wrong_ex,
        "segments": len(segs),
        "words_outside_clips": len(outside),
        "outside_examples": outside[:10],
        "words_out_of_order": backwards,
        "segments_out_of_order": seg_back,
        "segments_spanning_clips": len(seg_span),
        "span_examples": seg_span[:5],
        "clips_without_words": len(empty),
        "empty_examples": empty[:10],
        "duration_field": vj.get("duration"),
    }


def one_run(minutes, workers, threads, tag, fmt="text", model="base"):
    meta = load_meta(minutes)
    wav = os.path.join(MEASURE_DIR, "long_%dmin.wav" % minutes)
    rdir = os.path.join(RESULTS_DIR, "runs")
    os.makedirs(rdir, exist_ok=True)
    ext = "json" if fmt == "verbose_json" else "txt"
    out_path = os.path.join(rdir, "%s.%s" % (tag, ext))
    err_path = os.path.join(rdir, "%s.stderr" % tag)
    note = common.wait_quiet()
    env = {"RUST_LOG": "info", "EMBER_ASR_WORKERS": workers, "EMBER_ASR_THREADS": threads}
    for k in ("EMBER_HALLUCINATION_GUARD", "EMBER_BEAM_SIZE"):  # defaults: guard on, beam 5
        os.environ.pop(k, None)
    cmd = [common.ember_bin(), "transcribe", wav, "--model", model, "--language", "en", "--format", fmt]
    log("[run %s] %s  (workers=%s threads=%s)" % (tag, " ".join(cmd), workers, threads))
    res = common.timed_run(cmd, env, stdout_path=out_path, stderr_path=err_path)
    with open(err_path, errors="replace") as f:
        tl = common.parse_transcribed_lines(f.read())
    with open(out_path) as f:
        out_text = f.read()
    if fmt == "verbose_json":
        vj = json.loads(out_text)
        hyp = vj["text"]
        res["timestamps"] = timestamp_report(meta, vj)
    else:
        hyp = out_text
    w = common.wer(meta["reference"], hyp)
    res.update(
        {
            "tag": tag,
            "binary": binary_id(),
            "minutes": minutes,
            "workers": workers,
            "threads": threads,
            "format": fmt,
            "model": model,
            "cmd": "EMBER_ASR_WORKERS=%s EMBER_ASR_THREADS=%s RUST_LOG=info /usr/bin/time -v %s" % (workers, threads, " ".join(cmd)),
            "audio_s": meta["duration_s"],
            "speech_s": meta["speech_s"],
            "rtf": res.get("wall_s", res["wall_outer_s"]) / meta["duration_s"],
            "transcribed_log": tl,
            "wer": {k: v for k, v in w.items() if k not in ("ops", "ref", "hyp")},
            "clip_report": per_clip_report(meta, w),
            "contention_before": note,
            "output": out_path,
            "hyp_norm": " ".join(w["hyp"]),
        }
    )
    save_result(tag, res)
    log(
        "[run %s] rc=%s wall=%.1f s RTF=%.3f RSS=%.0f MB WER=%.2f%% (S%d D%d I%d of %d) contention samples=%d"
        % (tag, res["rc"], res.get("wall_s", 0), res["rtf"], (res["max_rss_kb"] or 0) / 1024, 100 * w["wer"], w["sub"], w["del"], w["ins"], w["ref_words"], len(res["contention_samples"]))
    )
    return res


def binary_id():
    """Path, mtime and sha256 prefix of the ember binary that ran."""
    import hashlib

    path = common.ember_bin()
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return "%s mtime=%s sha256=%s" % (path, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.path.getmtime(path))), digest)


def cmd_clips(args):
    with open(os.path.join(MEASURE_DIR, "clips.json")) as f:
        clips = json.load(f)["clips"]
    odir = os.path.join(RESULTS_DIR, "runs", "clips_out")
    shutil.rmtree(odir, ignore_errors=True)
    os.makedirs(odir)
    files = [c["wav"] for c in clips]
    cmd = [common.ember_bin(), "transcribe"] + files + ["--model", args.model, "--language", "en", "--format", "text", "--output", odir]
    note = common.wait_quiet()
    err_path = os.path.join(RESULTS_DIR, "runs", "clips.stderr")
    env = {"RUST_LOG": "info", "EMBER_ASR_WORKERS": "1", "EMBER_ASR_THREADS": "2"}
    log("[clips] %d files in one process" % len(files))
    res = common.timed_run(cmd, env, stdout_path=os.path.join(RESULTS_DIR, "runs", "clips.stdout"), stderr_path=err_path)
    hyp = {}
    for c in clips:
        p = os.path.join(odir, c["id"] + ".txt")
        hyp[c["id"]] = open(p).read() if os.path.exists(p) else None
    missing = [k for k, v in hyp.items() if v is None]
    per = []
    for c in clips:
        w = common.wer(c["transcript"], hyp[c["id"]] or "")
        per.append({"id": c["id"], "wer": round(w["wer"], 3), "ref_words": w["ref_words"], "hyp": (hyp[c["id"]] or "").strip()[:80]})
    res.update(
        {
            "tag": "clips",
            "binary": binary_id(),
            "cmd": "EMBER_ASR_WORKERS=1 EMBER_ASR_THREADS=2 " + " ".join(cmd[:2]) + " <%d clip wavs> " % len(files) + " ".join(cmd[2 + len(files) :]),
            "hyp": hyp,
            "missing": missing,
            "per_clip": per,
            "audio_s": sum(c["n"] for c in clips) / SR,
            "contention_before": note,
        }
    )
    # WER of the one-by-one transcripts concatenated in each long file's order
    for minutes in (30, 60):
        try:
            meta = load_meta(minutes)
        except FileNotFoundError:
            continue
        cat = " ".join((hyp[x["id"]] or "").strip() for x in meta["layout"])
        w = common.wer(meta["reference"], cat)
        res["concat_%dmin" % minutes] = {k: v for k, v in w.items() if k not in ("ops", "ref", "hyp")}
        res["concat_%dmin_norm" % minutes] = " ".join(w["hyp"])
    save_result("clips", res)
    log("[clips] wall=%.1f s, missing=%s, concat WER 30 min=%.2f%%" % (res.get("wall_s", 0), missing, 100 * res.get("concat_30min", {}).get("wer", float("nan"))))


def cmd_run(args):
    one_run(args.minutes, str(args.workers), str(args.threads), args.tag, args.format, args.model)


def cmd_layout(args):
    for r in range(1, args.runs + 1):
        for name in ("1x2", "2x1"):
            w, t = LAYOUTS[name]
            one_run(30, w, t, "L30_%s_r%d" % (name, r))


def quiet(r):
    """No other busy process seen before or during the run."""
    return not r.get("contention_samples") and not r.get("contention_before", {}).get("busy_at_run")


def better_layout():
    res = load_results()
    walls = {name: [v["wall_s"] for k, v in res.items() if k.startswith("L30_%s_" % name) and v.get("wall_s") and quiet(v)] for name in LAYOUTS}
    if not all(walls.values()):
        return "1x2", walls
    best = min(walls, key=lambda n: statistics.mean(walls[n]))
    return best, walls


def cmd_long60(args):
    best, walls = better_layout()
    w, t = LAYOUTS[best]
    log("[long60] layout %s (30-min walls %s)" % (best, walls))
    one_run(60, w, t, "L60_%s" % best)


def cmd_timestamps(args):
    best, _ = better_layout()
    w, t = LAYOUTS[best]
    one_run(30, w, t, "TS30_%s" % best, fmt="verbose_json")


def cmd_tscheck(args):
    meta = load_meta(args.minutes)
    with open(args.file) as f:
        vj = json.load(f)
    print(json.dumps(timestamp_report(meta, vj), indent=1))


def fmt_s(x):
    return "%.1f" % x if isinstance(x, (int, float)) else "-"


def cmd_table(args):
    res = load_results()
    bins = sorted({r.get("binary", "?") for r in res.values()})
    print("results: %s\nbinary: %s" % (RESULTS_DIR, "\n        ".join(bins)))
    print("\n== long files ==")
    for m in (30, 60):
        try:
            meta = load_meta(m)
        except FileNotFoundError:
            continue
        print(
            "long_%dmin.wav: %.1f s audio, %d clips placed (%.1f s of clip audio), %d reference words, seed %d, silence %s"
            % (m, meta["duration_s"], meta["clips_placed"], meta["speech_s"], len(common.normalize(meta["reference"])), meta["seed"], "digital zero" if meta["noise_dbfs"] is None else "%g dBFS noise" % meta["noise_dbfs"])
        )
    print("\n== runs (base, --language en, beam default) ==")
    hdr = "%-16s %-6s %8s %8s %6s %8s %7s %5s %5s %5s %6s %s" % ("tag", "layout", "audio_s", "wall_s", "RTF", "RSS_MB", "WER%", "S", "D", "I", "cpu%", "contention")
    print(hdr)
    print("-" * len(hdr))
    for tag, r in res.items():
        if tag == "clips":
            continue
        w = r["wer"]
        cont = len(r.get("contention_samples", [])) + (1 if r.get("contention_before", {}).get("busy_at_run") else 0)
        print(
            "%-16s %-6s %8.1f %8s %6.3f %8.0f %7.2f %5d %5d %5d %6s %s"
            % (tag, "%sx%s" % (r["workers"], r["threads"]), r["audio_s"], fmt_s(r.get("wall_s")), r["rtf"], (r["max_rss_kb"] or 0) / 1024, 100 * w["wer"], w["sub"], w["del"], w["ins"], r.get("cpu_pct"), "busy x%d" % cont if cont else "quiet")
        )
    if "clips" in res:
        c = res["clips"]
        print("\n== WER: long file vs clips one by one (same reference, same order) ==")
        for m in (30, 60):
            key = "concat_%dmin" % m
            longs = [r for t, r in res.items() if t != "clips" and r.get("minutes") == m]
            if key in c and longs:
                lw = ", ".join("%s %.2f%%" % (r["tag"], 100 * r["wer"]["wer"]) for r in longs)
                print("%d min: one-by-one %.2f%% (S%d D%d I%d of %d) | long: %s" % (m, 100 * c[key]["wer"], c[key]["sub"], c[key]["del"], c[key]["ins"], c[key]["ref_words"], lw))
        print("one-by-one process: %d clips, %.1f s audio, wall %s s, RSS %.0f MB, missing outputs %s" % (len(c["per_clip"]), c["audio_s"], fmt_s(c.get("wall_s")), (c["max_rss_kb"] or 0) / 1024, c["missing"] or "none"))
    best, walls = better_layout()
    if all(walls.values()):
        a, b = statistics.mean(walls["1x2"]), statistics.mean(walls["2x1"])
        print("\n== worker layout, 30-min file (quiet runs only) ==")
        print("1 worker x 2 threads: %s -> mean %.1f s" % (walls["1x2"], a))
        print("2 workers x 1 thread: %s -> mean %.1f s" % (walls["2x1"], b))
        print("ratio 2x1 / 1x2 = %.3f  (better: %s)" % (b / a, best))
    for tag, r in res.items():
        if tag.startswith("L60") and quiet(r):
            mb = (r["max_rss_kb"] or 0) / 1024
            samples = r["audio_s"] * SR * 4 / 2**20
            print("\n60-min %s: wall %.1f s, RTF %.3f, peak RSS %.0f MiB (f32 samples alone %.0f MiB)" % (tag, r["wall_s"], r["rtf"], mb, samples))
    for tag, r in res.items():
        if "timestamps" in r:
            print("\n== timestamps (%s, verbose_json) ==" % tag)
            print(json.dumps({k: v for k, v in r["timestamps"].items()}, indent=1)[:3000])
    for tag, r in res.items():
        cr = r.get("clip_report")
        if cr and (cr["lost_clips"] or cr["insertion_runs_n"]):
            print("\n%s: lost clips %d, insertion runs>=3 words %d" % (tag, len(cr["lost_clips"]), cr["insertion_runs_n"]))
            for x in cr["lost_clips"][:8]:
                print("   lost  %s" % x)
            for x in cr["insertion_runs"][:8]:
                print("   ins   %s" % x)
    texts = {t: r.get("hyp_norm") for t, r in res.items() if t.startswith("L30_")}
    if len(set(texts.values())) > 1:
        print("\nNOTE: the 30-min transcripts differ between runs:", {t: len(v.split()) for t, v in texts.items()})
    elif texts:
        print("\n30-min transcripts identical across %d runs (normalised)." % len(texts))


def cmd_all(args):
    cmd_build(args)
    cmd_clips(args)
    cmd_layout(args)
    cmd_long60(args)
    if not args.no_timestamps:
        cmd_timestamps(args)
    cmd_table(args)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def build_opts(p):
        p.add_argument("--seed", type=int, default=20261123)
        p.add_argument("--minutes", type=int, nargs="+", default=[30, 60])
        p.add_argument("--wav-only", action="store_true", help="only the .wav clips, pure-Python resampling")
        p.add_argument("--noise-dbfs", type=float, default=None, help="fill gaps with seeded noise at this RMS instead of zeros")

    p = sub.add_parser("build")
    build_opts(p)
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("clips")
    p.add_argument("--model", default="base")
    p.set_defaults(func=cmd_clips)
    p = sub.add_parser("run")
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tag", required=True)
    p.add_argument("--format", default="text", choices=["text", "verbose_json"])
    p.add_argument("--model", default="base")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("layout")
    p.add_argument("--runs", type=int, default=2)
    p.set_defaults(func=cmd_layout)
    sub.add_parser("long60").set_defaults(func=cmd_long60)
    sub.add_parser("timestamps").set_defaults(func=cmd_timestamps)
    sub.add_parser("table").set_defaults(func=cmd_table)
    p = sub.add_parser("tscheck", help="timestamp check of a stored verbose_json output")
    p.add_argument("file")
    p.add_argument("--minutes", type=int, default=30)
    p.set_defaults(func=cmd_tscheck)
    p = sub.add_parser("all")
    build_opts(p)
    p.add_argument("--model", default="base")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--no-timestamps", action="store_true")
    p.set_defaults(func=cmd_all)
    args = ap.parse_args()
    if not os.path.exists(common.ember_bin()):
        sys.exit("no ember binary at %s (cargo build --release -p ember-server, or set EMBER_BIN)" % common.ember_bin())
    os.makedirs(MEASURE_DIR, exist_ok=True)
    args.func(args)


if __name__ == "__main__":
    t0 = time.time()
    main()
    log("done in %.0f s" % (time.time() - t0))
