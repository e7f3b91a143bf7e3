"""Shared helpers for the real-client suite: test data, text normalisation, WER,
SRT/VTT parsing and timestamp checks. No third-party dependencies."""

from __future__ import annotations

import difflib
import json
import os
import re
import statistics
import unicodedata
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("EMBER_TEST_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()

# The auth server fixture runs with these.
AUTH_KEY = "secret-key"
AUTH_MAX_UPLOAD_BYTES = 1_000_000

# Thresholds, set from measurement with margin. Measured 2026-11 on Whisper base (q8_0,
# beam 5, debug build): jfk normalised WER 0.000 in json, text, srt, vtt, verbose_json and
# SSE through both SDKs; short clips 0.000-0.053 (librivox 0870 0.045, 0920 0.053).
# jfk word starts vs the pocketsphinx alignment: median |error| 0.23 s.
WER_MAX_JFK = 0.15
# Short clips (3-7 s): one wrong word already costs 5-25 %.
WER_MAX_SHORT = 0.35


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path
    lang: str | None
    transcript: str
    duration_s: float
    words_tsv: Path | None

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def reference_words(self) -> list[tuple[float, float, str]]:
        """(start, end, word) from the clip's forced-alignment TSV."""
        assert self.words_tsv is not None, f"{self.id} has no word timings"
        rows = []
        for line in self.words_tsv.read_text(encoding="utf-8").splitlines()[1:]:
            if not line.strip():
                continue
            start, end, word = line.split("\t")[:3]
            rows.append((float(start), float(end), word))
        return rows


def _load_manifest() -> dict[str, Clip]:
    manifest = DATA_DIR / "manifest.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"test audio manifest not found at {manifest}; set EMBER_TEST_DATA to the shared data folder"
        )
    clips = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        clips[row["id"]] = Clip(
            id=row["id"],
            path=DATA_DIR / row["audio"],
            lang=row.get("lang"),
            transcript=row.get("transcript") or "",
            duration_s=float(row["duration_s"]),
            words_tsv=(DATA_DIR / row["words"]) if row.get("words") else None,
        )
    return clips


_CLIPS: dict[str, Clip] | None = None


def clip(clip_id: str) -> Clip:
    global _CLIPS
    if _CLIPS is None:
        _CLIPS = _load_manifest()
    return _CLIPS[clip_id]


# ---------------------------------------------------------------------------------------
# Text normalisation and WER

_NUMBER_WORDS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
    "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten",
}


def normalise(text: str) -> list[str]:
    """Lower-case, strip accents and punctuation, split into words.
    Apostrophes are dropped inside words (``you'd`` -> ``youd``), hyphens split words,
    and lone digits 0-10 are spelled out so ``10`` and ``ten`` compare equal."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("\u2019", "'").replace("'", "")
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return [_NUMBER_WORDS.get(w, w) for w in text.split()]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def squash_ws(text: str) -> str:
    return " ".join(text.split())


def record_wer(request, name: str, value: float) -> None:
    """Prints a measured WER so it shows with `pytest -s` and in the junit properties."""
    request.node.user_properties.append((name, round(value, 4)))
    print(f"\n[wer] {name} = {value:.4f}")


# ---------------------------------------------------------------------------------------
# Subtitle parsing

@dataclass(frozen=True)
class Cue:
    index: str | None
    start: float
    end: float
    text: str


_SRT_TIME = r"(\d{2,}):(\d{2}):(\d{2}),(\d{3})"
_VTT_TIME = r"(?:(\d{2,}):)?(\d{2}):(\d{2})\.(\d{3})"


def _secs(h, m, s, ms) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000.0


def _blocks(text: str) -> list[list[str]]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks, cur = [], []
    for line in text.split("\n"):
        if line.strip() == "":
            if cur:
                blocks.append(cur)
                cur = []
        else:
            cur.append(line)
    if cur:
        blocks.append(cur)
    return blocks


def parse_srt(text: str) -> list[Cue]:
    cues = []
    timing = re.compile(rf"^{_SRT_TIME} --> {_SRT_TIME}$")
    for block in _blocks(text):
        assert len(block) >= 2, f"SRT block too short: {block!r}"
        assert block[0].strip().isdigit(), f"SRT cue must start with its number: {block!r}"
        m = timing.match(block[1].strip())
        assert m, f"bad SRT timing line {block[1]!r} (want HH:MM:SS,mmm --> HH:MM:SS,mmm)"
        g = m.groups()
        cues.append(Cue(block[0].strip(), _secs(*g[:4]), _secs(*g[4:]), "\n".join(block[2:])))
    return cues


def parse_vtt(text: str) -> list[Cue]:
    blocks = _blocks(text)
    assert blocks and blocks[0][0].startswith("WEBVTT"), f"VTT must start with WEBVTT: {text[:80]!r}"
    timing = re.compile(rf"^{_VTT_TIME} --> {_VTT_TIME}(?:\s.*)?$")
    cues = []
    for block in blocks[1:]:
        if block[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        index = None
        if not timing.match(block[0].strip()):
            index, block = block[0], block[1:]
        assert block, f"VTT cue without timing: {index!r}"
        m = timing.match(block[0].strip())
        assert m, f"bad VTT timing line {block[0]!r} (want HH:MM:SS.mmm --> HH:MM:SS.mmm)"
        g = m.groups()
        cues.append(Cue(index, _secs(*g[:4]), _secs(*g[4:]), "\n".join(block[1:])))
    return cues


# ---------------------------------------------------------------------------------------
# Timestamp checks

def check_spans(spans: list[tuple[float, float]], duration: float, what: str, slack: float = 0.05) -> None:
    """Each span has 0 <= start <= end <= duration (+slack); starts and ends never go back."""
    assert spans, f"no {what}"
    prev_start = prev_end = 0.0
    for i, (start, end) in enumerate(spans):
        assert 0.0 <= start <= end, f"{what}[{i}]: start {start} > end {end} (or negative)"
        assert end <= duration + slack, f"{what}[{i}]: end {end} is past the duration {duration}"
        assert start >= prev_start - 1e-6, f"{what}[{i}]: start {start} goes back before {prev_start}"
        assert end >= prev_end - 1e-6, f"{what}[{i}]: end {end} goes back before {prev_end}"
        prev_start, prev_end = start, end


def check_cues(cues: list[Cue], duration: float, what: str) -> None:
    assert cues, f"{what}: no cues"
    check_spans([(c.start, c.end) for c in cues], duration, f"{what} cue", slack=0.5)
    numbers = [c.index for c in cues if c.index is not None and c.index.strip().isdigit()]
    if numbers:
        assert numbers == [str(i) for i in range(1, len(numbers) + 1)], f"{what}: cue numbers {numbers}"


def check_cue_transcript(request, name: str, c, cues: list[Cue], what: str, limit: float, raw: str) -> None:
    """Cue times and numbering are valid, and the cue text matches the clip's reference within `limit` WER."""
    check_cues(cues, c.duration_s, what)
    w = wer(c.transcript, " ".join(q.text for q in cues))
    record_wer(request, name, w)
    assert w <= limit, f"WER {w:.3f}: {raw!r}"


def word_start_errors(ref: list[tuple[float, float, str]], hyp: list[tuple[float, float, str]]) -> list[float]:
    """|start difference| for hypothesis words matched, in order, to reference words."""
    ref_n = [normalise(w)[0] if normalise(w) else "" for _, _, w in ref]
    hyp_n = [" ".join(normalise(w)) for _, _, w in hyp]
    errors = []
    sm = difflib.SequenceMatcher(a=ref_n, b=hyp_n, autojunk=False)
    for block in sm.get_matching_blocks():
        for k in range(block.size):
            errors.append(abs(ref[block.a + k][0] - hyp[block.b + k][0]))
    return errors


def median(values: list[float]) -> float:
    return statistics.median(values)
