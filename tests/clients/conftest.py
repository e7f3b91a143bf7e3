"""Starts real `ember serve` processes for the client suite.

Two servers at most per session: an open one (`server`) used by almost every test, and
one with `--api-keys secret-key --max-upload-bytes 1000000` (`auth_server`) for auth and
size-limit tests, started only when a test asks for it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ember_testlib import AUTH_KEY, AUTH_MAX_UPLOAD_BYTES, REPO_ROOT  # noqa: E402

LISTEN_RE = re.compile(r"ember listening on (http://\S+)")
LISTEN_TIMEOUT_S = 60.0
HEALTH_TIMEOUT_S = float(os.environ.get("EMBER_HEALTH_TIMEOUT", "120"))


def pytest_configure(config):
    # fireworks-ai 0.15 uses pydantic-v1 style validators in modules we do not test.
    config.addinivalue_line("filterwarnings", "ignore:Pydantic V1 style:DeprecationWarning")
    config.addinivalue_line("markers", "streaming: needs the WebSocket routes (PROTOCOL §3 streaming, §4 realtime)")


def ember_binary() -> Path:
    explicit = os.environ.get("EMBER_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ember" / "target"
    )
    return Path(target) / "debug" / "ember"


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    log_path: Path
    args: list[str]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])


def _drain(stream, sink, lines: deque, found: threading.Event, url_box: list) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        sink.write(line)
        sink.flush()
        lines.append(line)
        if not found.is_set():
            m = LISTEN_RE.search(line)
            if m:
                url_box.append(m.group(1).rstrip("/"))
                found.set()
    stream.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def start_server(extra_args: list[str], name: str, tmp_root: Path) -> Server:
    binary = ember_binary()
    if not binary.is_file():
        pytest.fail(
            f"ember binary not found at {binary}: build it (cargo build -p ember-server) "
            "or set EMBER_BIN / CARGO_TARGET_DIR",
            pytrace=False,
        )
    args = [str(binary), "serve", "--host", "127.0.0.1", "--port", "0"]
    models_dir = os.environ.get("EMBER_MODELS_DIR")
    if models_dir:
        args += ["--models-dir", models_dir]
    args += extra_args
    log_path = tmp_root / f"{name}.log"
    log = open(log_path, "w", encoding="utf-8")
    log.write("$ " + " ".join(args) + "\n")
    log.flush()
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    # The open server must stay open whatever the caller's environment says.
    env.pop("EMBER_API_KEYS", None)
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
        env=env,
    )
    found, url_box, lines = threading.Event(), [], deque(maxlen=200)
    threading.Thread(target=_drain, args=(proc.stdout, log, lines, found, url_box), daemon=True).start()
    server = Server("", proc, log_path, args)

    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while not found.wait(0.1):
        if proc.poll() is not None:
            pytest.fail(
                f"`{' '.join(args)}` exited with {proc.returncode} before listening:\n{server.log_tail()}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"no 'ember listening on' line within {LISTEN_TIMEOUT_S:.0f} s:\n{server.log_tail()}", pytrace=False)
    server.base_url = url_box[0]

    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last = None
    while True:
        if proc.poll() is not None:
            pytest.fail(f"ember exited with {proc.returncode} while loading models:\n{server.log_tail()}", pytrace=False)
        try:
            r = requests.get(f"{server.base_url}/health", timeout=5)
            last = f"{r.status_code} {r.text[:300]}"
            if r.status_code == 200:
                break
        except requests.RequestException as e:
            last = repr(e)
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(
                f"/health not 200 within {HEALTH_TIMEOUT_S:.0f} s (last: {last}):\n{server.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.25)
    return server


@pytest.fixture(scope="session")
def _server_tmp():
    with tempfile.TemporaryDirectory(prefix="ember-client-tests-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def server(_server_tmp) -> Server:
    srv = start_server([], "open", _server_tmp)
    yield srv
    _stop(srv.process)


@pytest.fixture(scope="session")
def base_url(server) -> str:
    """Base URL (no trailing slash, no /v1) of the open server."""
    return server.base_url


@pytest.fixture(scope="session")
def auth_server(_server_tmp) -> Server:
    srv = start_server(
        ["--api-keys", AUTH_KEY, "--max-upload-bytes", str(AUTH_MAX_UPLOAD_BYTES)], "auth", _server_tmp
    )
    yield srv
    _stop(srv.process)


@pytest.fixture(scope="session")
def auth_base_url(auth_server) -> str:
    return auth_server.base_url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of each running server's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {}) or {}
    for name in ("server", "auth_server"):
        srv = funcargs.get(name)
        if isinstance(srv, Server):
            report.sections.append((f"ember {name} log (tail)", srv.log_tail(30)))


_MEASURED: list[tuple[str, str, object]] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        for name, value in report.user_properties:
            _MEASURED.append((report.nodeid.split("::")[-1], name, value))


def pytest_terminal_summary(terminalreporter):
    """Prints the measured WERs and timing errors, so every run records them."""
    if _MEASURED:
        terminalreporter.write_sep("-", "measured (WER is normalised word error rate)")
        for test, name, value in _MEASURED:
            terminalreporter.write_line(f"{name:32s} {value!s:8s} ({test})")
