"""Headless Chromium driven over the raw DevTools protocol (CDP), for the browser-page test.

Only `websocket-client` is needed: no Selenium, Playwright or chromedriver. Chromium is
started with `--remote-debugging-port=0`; it writes the port it picked to
`<user-data-dir>/DevToolsActivePort`, and we attach to the page target's WebSocket."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import wave
from collections import deque
from pathlib import Path

import websocket  # websocket-client

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """Path of a Chromium-family browser: `$EMBER_CHROMIUM`, else the first one on PATH."""
    explicit = os.environ.get("EMBER_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def padded_wav(src: Path, dst: Path, lead_s: float, tail_s: float) -> float:
    """Copies a 16-bit PCM WAV with silence added before and after (for the fake
    microphone: audio produced before the page's audio graph is connected is lost, and
    the trailing silence lets the server mark the last words final). Returns seconds."""
    with wave.open(str(src), "rb") as r:
        channels, width, rate = r.getnchannels(), r.getsampwidth(), r.getframerate()
        frames = r.readframes(r.getnframes())
    if width != 2:
        raise ValueError(f"{src}: want 16-bit PCM, got {8 * width}-bit")
    frame_bytes = channels * width
    lead = b"\0" * (int(lead_s * rate) * frame_bytes)
    tail = b"\0" * (int(tail_s * rate) * frame_bytes)
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(lead + frames + tail)
    return (len(lead) + len(frames) + len(tail)) / frame_bytes / rate


class CdpError(RuntimeError):
    pass


class Page:
    """One page target. Calls are synchronous; events that arrive meanwhile are kept as
    a log of console messages, exceptions and browser log entries (`self.log`)."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.log: deque[str] = deque(maxlen=200)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass

    def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"CDP {method}: no answer within {timeout:.0f} s")
            self.ws.settimeout(remaining)
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise CdpError(f"CDP {method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.log.append(f"console.{params.get('type')}: {args}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exc = details.get("exception", {})
            self.log.append(f"exception: {exc.get('description') or details.get('text')}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.log.append(f"log.{entry.get('level')}: {entry.get('text')} {entry.get('url', '')}".rstrip())

    def evaluate(self, expression: str, await_promise: bool = False, timeout: float = 30.0):
        """Runs JavaScript in the page (as if from a user gesture) and returns its value."""
        result = self.call(
            "Runtime.evaluate",
            timeout=timeout,
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
            userGesture=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            exc = details.get("exception", {})
            raise CdpError(f"JavaScript error: {exc.get('description') or details.get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str, interval: float = 0.25):
        """Polls `expression` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def navigate(self, url: str, timeout: float = 30.0) -> None:
        self.call("Page.navigate", url=url)
        time.sleep(0.2)
        self.wait_for("document.readyState === 'complete'", timeout, f"{url} to load")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


class Chromium:
    """A headless Chromium process with a throwaway profile, opened on `url`. Use as a
    context manager: the browser and all its child processes are killed on exit."""

    def __init__(self, binary: str, url: str, fake_audio: Path | None = None, startup_timeout: float = 60.0):
        self.binary = binary
        self.url = url
        self.fake_audio = fake_audio
        self.startup_timeout = startup_timeout
        self.tmp = Path(tempfile.mkdtemp(prefix="ember-chromium-"))
        self.proc: subprocess.Popen | None = None
        self.page: Page | None = None
        self.log_path = self.tmp / "chromium.log"
        self._final_log: str | None = None

    def args(self) -> list[str]:
        args = [
            self.binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--mute-audio",
            "--window-size=1100,800",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.tmp / 'profile'}",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
        ]
        if self.fake_audio is not None:
            args.append(f"--use-file-for-fake-audio-capture={self.fake_audio}%noloop")
        args.append(self.url)
        return args

    def __enter__(self) -> "Chromium":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.args(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() reaches the children
        )
        log.close()
        port_file = self.tmp / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout
        port = None
        while port is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium wrote no DevToolsActivePort within {self.startup_timeout:.0f} s")
            try:
                first = port_file.read_text().splitlines()[0].strip()
                port = int(first) if first else None
            except (OSError, IndexError, ValueError):
                pass
            if port is None:
                time.sleep(0.2)
        ws_url = None
        while ws_url is None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                targets = json.load(resp)
            pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
            if pages:
                ws_url = pages[0]["webSocketDebuggerUrl"]
            elif time.monotonic() > deadline:
                raise TimeoutError(f"no page target in chromium: {targets}")
            else:
                time.sleep(0.2)
        self.page = Page(ws_url)
        self.page.call("Runtime.enable")
        self.page.call("Page.enable")
        self.page.call("Log.enable")

    def stop(self) -> None:
        if self.page is not None:
            self.page.close()
            self.page = None
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.proc is not None:
            # Children left in the group after the browser itself exited.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._final_log is None:
            self._final_log = self._read_log()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no chromium log>"

    def log_tail(self, lines: int = 30) -> str:
        text = self._final_log if self._final_log is not None else self._read_log()
        return "\n".join(text.splitlines()[-lines:])
