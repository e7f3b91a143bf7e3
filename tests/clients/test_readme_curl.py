"""Every `curl` command in README.md's ```bash blocks runs against a live server.

The README uses `$EMBER_URL` and `$EMBER_API_KEY`, and audio paths relative to the repo
root (e.g. `../shared/data/jfk/jfk.wav`). Each command runs through bash in the repo root
with those variables set, `--fail-with-body -sS` added, and must exit 0 (HTTP 2xx)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time

import pytest

from ember_testlib import REPO_ROOT

README = REPO_ROOT / "README.md"
CURL_TIMEOUT_S = 120
STREAM_END_GRACE_S = 5
FENCE_OPEN = re.compile(r"^\s*```+\s*(bash|sh|shell|console)\b", re.IGNORECASE)
FENCE_CLOSE = re.compile(r"^\s*```+\s*$")


def extract_curl_commands(text: str) -> list[str]:
    """`curl ...` commands in bash fences; backslash-continued lines are joined."""
    commands, in_bash, pending = [], False, None
    for line in text.splitlines():
        if not in_bash:
            if FENCE_OPEN.match(line):
                in_bash = True
            continue
        if FENCE_CLOSE.match(line):
            in_bash, pending = False, None
            continue
        stripped = line.strip()
        if pending is not None:
            pending += " " + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                commands.append(pending)
                pending = None
            continue
        body = stripped[2:] if stripped.startswith("$ ") else stripped
        if body.startswith("curl "):
            if body.endswith("\\"):
                pending = body.rstrip("\\").strip()
            else:
                commands.append(body)
    return commands


def _commands() -> list[str]:
    if not README.is_file():
        return []
    return extract_curl_commands(README.read_text(encoding="utf-8"))


COMMANDS = _commands()


def with_fail_flags(cmd: str) -> str:
    """Puts `--fail-with-body -sS` right after `curl` unless the command already fails on HTTP errors."""
    tokens = shlex.split(cmd, posix=True)
    flags = []
    if not any(t in ("--fail-with-body", "-f", "--fail") for t in tokens):
        flags.append("--fail-with-body")
    if not any(t in ("-sS", "-Ss") for t in tokens):
        flags.append("-sS")
    if any("stream=true" in t for t in tokens) and not any(t in ("-N", "--no-buffer") for t in tokens):
        flags.append("-N")  # so SSE events reach us as they come, not at exit
    if not flags:
        return cmd
    return "curl " + " ".join(flags) + cmd[len("curl"):]


def test_extractor_handles_continuations():
    text = "```bash\ncurl -X POST \\\n  -F a=b \\\n  $EMBER_URL/x\n# curl not this\ncurl $EMBER_URL/y\n```\n```\ncurl skipped\n```\n"
    assert extract_curl_commands(text) == ["curl -X POST -F a=b $EMBER_URL/x", "curl $EMBER_URL/y"]
    assert with_fail_flags("curl -s $EMBER_URL/health").startswith("curl --fail-with-body -sS -s ")


@pytest.mark.parametrize(
    "command",
    COMMANDS or [None],
    ids=[f"line{i + 1}" for i in range(len(COMMANDS))] or ["no-curl-in-readme"],
)
def test_readme_curl(command, base_url):
    if command is None:
        pytest.fail(
            f"{README} has no `curl ...` line inside a ```bash block: the README must show how to call "
            "the server with curl (using $EMBER_URL, $EMBER_API_KEY and paths like ../shared/data/jfk/jfk.wav)",
            pytrace=False,
        )
    env = dict(os.environ, EMBER_URL=base_url, EMBER_API_KEY=os.environ.get("EMBER_API_KEY", "any-key"))
    full = with_fail_flags(command)
    returncode, stdout, stderr = run_bash(full, env)
    assert returncode == 0, (
        f"README command failed (exit {returncode}):\n$ {full}\n"
        f"stdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}"
    )
    tokens = shlex.split(command)
    writes_file = any(t in ("-o", "--output", "-O", "--remote-name") for t in tokens) or ">" in command
    if not writes_file:
        assert stdout.strip(), f"README command printed nothing:\n$ {full}"


def run_bash(full: str, env: dict) -> tuple[int, str, str]:
    """Runs the command; an SSE response must end soon after its `transcript.text.done` event."""
    proc = subprocess.Popen(
        ["bash", "-c", full], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = bytearray(), bytearray()

    def pump(stream, sink):
        for chunk in iter(lambda: stream.read1(65536), b""):
            sink.extend(chunk)

    threads = [threading.Thread(target=pump, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err), daemon=True)]
    for t in threads:
        t.start()
    deadline, done_at = time.monotonic() + CURL_TIMEOUT_S, None
    while proc.poll() is None:
        time.sleep(0.1)
        if done_at is None and b"transcript.text.done" in out:
            done_at = time.monotonic()
        if done_at is not None and time.monotonic() - done_at > STREAM_END_GRACE_S:
            proc.kill()
            proc.wait()
            pytest.fail(
                f"the server sent transcript.text.done but kept the SSE response open for more than "
                f"{STREAM_END_GRACE_S} s (curl never exits):\n$ {full}\nstdout: {out.decode('utf-8', 'replace')[-1500:]}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(
                f"README command did not finish within {CURL_TIMEOUT_S} s:\n$ {full}\n"
                f"stdout so far: {out.decode('utf-8', 'replace')[-1500:]}",
                pytrace=False,
            )
    for t in threads:
        t.join(5)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
