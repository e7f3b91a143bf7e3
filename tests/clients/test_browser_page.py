"""The browser page at `/`, driven in headless Chromium over the DevTools protocol.

Live captions: Chromium's fake microphone plays jfk.wav (padded with silence) into the
page, which resamples it in an AudioWorklet and streams it over the WebSocket; the
captions must show the speech and final words. Upload: the page's own upload path
(`window.emberTranscribeBlob`) gets the same file; the transcript must appear as word
spans with a waveform, and clicking a word must seek and highlight it. Screenshots go to
`$EMBER_ARTIFACTS_DIR` (default `~/.cache/ember/artifacts`). Skipped when no Chromium is
installed (`scripts/ensure-browser.sh` installs it); the asset test always runs."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

import pytest
import requests

from ember_testlib import REPO_ROOT, clip, normalise, record_wer, wer

sys.path.insert(0, str(REPO_ROOT / "tests" / "browser"))

from chromium_cdp import CdpError, Chromium, find_browser, padded_wav  # noqa: E402

# jfk: "... ask not what your country can do for you, ask what you can do for your country."
EXPECTED_WORDS = set("ask not what your country can do for you".split())
MIN_EXPECTED = 3
LEAD_S, TAIL_S = 1.0, 3.0
LIVE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
UPLOAD_TIMEOUT_S = 120.0

LIVE_STATE_JS = """(() => {
  const status = document.getElementById('status');
  return {
    captions: document.getElementById('captions').innerText,
    status: status.textContent,
    statusError: status.classList.contains('error'),
    finals: document.querySelectorAll('#captions .final').length,
    partials: document.querySelectorAll('#captions .partial').length,
    running: document.getElementById('start').disabled,
  };
})()"""


def artifacts_dir() -> Path:
    explicit = os.environ.get("EMBER_ARTIFACTS_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("EMBER_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ember"
    )
    return Path(cache) / "artifacts"


def expected_hits(text: str) -> set[str]:
    return EXPECTED_WORDS & set(normalise(text))


def test_page_and_assets_served(base_url):
    for path, content_type in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/pcm-worklet.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ]:
        r = requests.get(base_url + path, timeout=10)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:200]}"
        assert r.headers.get("content-type", "").startswith(content_type), (path, r.headers)
        assert r.headers.get("cache-control") == "no-cache", (path, r.headers)
        # Works offline: nothing is loaded from another host.
        assert "http://" not in r.text and "https://" not in r.text, f"{path} refers to another host"
    html = requests.get(base_url + "/", timeout=10).text
    for element in ('id="captions"', 'id="status"', 'id="transcript"', 'id="waveform"'):
        assert element in html


@pytest.fixture(scope="module")
def chromium_binary() -> str:
    binary = find_browser()
    if not binary:
        pytest.skip(
            "no Chromium found (chromium, chromium-browser, google-chrome, or $EMBER_CHROMIUM); "
            "scripts/ensure-browser.sh installs it"
        )
    return binary


@pytest.fixture(scope="module")
def fake_mic_wav(tmp_path_factory) -> Path:
    # 1 s of lead silence covers the page's audio-graph setup after getUserMedia; 3 s of
    # trailing silence lets the server finalise the last words before we press Stop.
    path = tmp_path_factory.mktemp("browser") / "jfk-padded.wav"
    padded_wav(clip("jfk").path, path, lead_s=LEAD_S, tail_s=TAIL_S)
    return path


@pytest.fixture(scope="module")
def browser(chromium_binary, base_url, fake_mic_wav):
    with Chromium(chromium_binary, base_url + "/", fake_audio=fake_mic_wav) as chromium:
        try:
            chromium.page.wait_for(
                "document.readyState === 'complete' && typeof window.emberTranscribeBlob === 'function'",
                30,
                "the page and app.js to load",
            )
        except (TimeoutError, CdpError) as e:
            pytest.fail(f"{e}\n{diagnostics(chromium)}", pytrace=False)
        yield chromium


def diagnostics(chromium: Chromium) -> str:
    parts = []
    if chromium.page is not None:
        try:
            body = chromium.page.evaluate("document.body ? document.body.innerText : '<no body>'")
            parts.append("page text:\n" + str(body)[:1500])
        except Exception as e:  # noqa: BLE001 - diagnostics only
            parts.append(f"page text unavailable: {e}")
        parts.append("page log:\n" + "\n".join(list(chromium.page.log)[-40:]))
    parts.append("chromium log (tail):\n" + chromium.log_tail(20))
    return "\n\n".join(parts)


def screenshot(chromium: Chromium, name: str) -> None:
    try:
        path = chromium.page.screenshot(artifacts_dir() / name)
        print(f"\n[browser] screenshot: {path}")
    except Exception as e:  # noqa: BLE001 - a missing screenshot must not hide the real failure
        print(f"\n[browser] screenshot {name} failed: {e}")


@pytest.mark.streaming
def test_live_captions(browser, request):
    page = browser.page
    started = time.monotonic()
    first_caption = first_final = None
    state: dict = {}
    audio_s = LEAD_S + clip("jfk").duration_s + TAIL_S
    try:
        page.evaluate("document.getElementById('start').click()")
        while True:
            state = page.evaluate(LIVE_STATE_JS)
            now = time.monotonic() - started
            if first_caption is None and state["captions"].strip():
                first_caption = now
            if first_final is None and state["finals"] > 0:
                first_final = now
            if state["statusError"] or not state["running"]:
                pytest.fail(f"live session ended: status {state['status']!r}\n{diagnostics(browser)}", pytrace=False)
            # Let the fake microphone play everything (so the captions cover the whole
            # clip), then stop once the expected words and a final word are there. Words
            # become final after a pause (text_timeout_seconds) or at the final flush, so
            # Stop also goes ahead a few seconds after the audio without a final word.
            if len(expected_hits(state["captions"])) >= MIN_EXPECTED and now > audio_s:
                if state["finals"] > 0:
                    break
                if now > audio_s + 5.0:
                    print(f"\n[browser] live: no final word {now:.1f} s after Start; pressing Stop")
                    break
            if now > LIVE_TIMEOUT_S:
                pytest.fail(
                    f"after {LIVE_TIMEOUT_S:.0f} s the captions are {state['captions']!r} "
                    f"({state['finals']} final words), status {state['status']!r}; want {MIN_EXPECTED} of "
                    f"{sorted(EXPECTED_WORDS)} and a final word\n{diagnostics(browser)}",
                    pytrace=False,
                )
            time.sleep(0.5)
        final_note = f"first final word {first_final:.1f} s" if first_final is not None else "no final word yet"
        print(f"\n[browser] live: first caption {first_caption:.1f} s, {final_note} after Start; captions: {state['captions']!r}")
        if first_final is not None:
            request.node.user_properties.append(("browser_first_final_s", round(first_final, 1)))

        # Stop: the page sends {"checkpoint_id":"final"}, waits for the echo, then closes.
        stop_at = time.monotonic()
        page.evaluate("document.getElementById('stop').click()")
        try:
            page.wait_for(
                "!document.getElementById('start').disabled && "
                "document.getElementById('status').textContent.startsWith('Stopped')",
                STOP_TIMEOUT_S,
                "the session to stop",
            )
        except TimeoutError:
            state = page.evaluate(LIVE_STATE_JS)
            pytest.fail(f"Stop did not finish: status {state['status']!r}\n{diagnostics(browser)}", pytrace=False)
        state = page.evaluate(LIVE_STATE_JS)
        print(f"[browser] stop took {time.monotonic() - stop_at:.1f} s; final captions: {state['captions']!r}")
        assert state["status"] == "Stopped", (
            f"no final checkpoint reply: status {state['status']!r}\n{diagnostics(browser)}"
        )
        assert state["finals"] > 0, f"no final word after Stop: {state}"
        assert state["partials"] == 0, f"non-final words left after the final flush: {state}"
        assert len(expected_hits(state["captions"])) >= MIN_EXPECTED, state
        record_wer(request, "browser_live_wer_jfk", wer(clip("jfk").transcript, state["captions"]))
    except (TimeoutError, CdpError) as e:
        pytest.fail(f"{e}\n{diagnostics(browser)}", pytrace=False)
    finally:
        screenshot(browser, "browser-captions.png")


def test_upload_transcript(browser):
    page = browser.page
    try:
        page.evaluate("document.getElementById('tab-file').click()")

        # An error answer must be shown, not leave the page stuck.
        bad = page.evaluate(
            "window.emberTranscribeBlob(new Blob(['this is not audio'], {type: 'audio/wav'}), 'bad.wav')",
            await_promise=True,
            timeout=UPLOAD_TIMEOUT_S,
        )
        status = page.evaluate(
            "[document.getElementById('file-status').textContent, "
            "document.getElementById('file-status').classList.contains('error')]"
        )
        assert bad and not bad["ok"], bad
        assert status[1] and status[0].startswith("HTTP 4"), f"error not shown: {status}"

        wav_b64 = base64.b64encode(clip("jfk").read_bytes()).decode("ascii")
        started = time.monotonic()
        result = page.evaluate(
            f"""(async () => {{
  const bin = atob('{wav_b64}');
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return await window.emberTranscribeBlob(new Blob([bytes], {{type: 'audio/wav'}}), 'jfk.wav');
}})()""",
            await_promise=True,
            timeout=UPLOAD_TIMEOUT_S,
        )
        elapsed = time.monotonic() - started
        assert result and result["ok"], f"upload failed: {result}\n{diagnostics(browser)}"
        words = page.evaluate("Array.from(document.querySelectorAll('#transcript .word')).map(e => e.textContent)")
        print(f"\n[browser] upload: {len(words)} words in {elapsed:.1f} s: {' '.join(words)!r}")
        assert len(words) > 5, words
        assert len(expected_hits(" ".join(words))) >= MIN_EXPECTED, words

        drawn = page.evaluate(
            """(() => {
  const c = document.getElementById('waveform');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
})()"""
        )
        assert drawn > 100, f"waveform canvas is blank ({drawn} painted pixels)"

        # Clicking a word seeks the player there and highlights it (paused at once, so
        # playback cannot move the highlight on before we look).
        target = page.evaluate(
            """(() => {
  const w = document.querySelectorAll('#transcript .word')[4];
  w.click();
  document.getElementById('player').pause();
  return {word: w.textContent, start: Number(w.dataset.start)};
})()"""
        )
        page.wait_for(
            "(document.querySelector('#transcript .word.current') || {}).textContent === "
            f"{json.dumps(target['word'])}",
            10,
            f"the clicked word {target['word']!r} to be highlighted",
        )
        current = page.evaluate(
            "({word: document.querySelector('#transcript .word.current').textContent, "
            "time: document.getElementById('player').currentTime})"
        )
        assert current["time"] >= target["start"] - 0.05, (target, current)
        print(f"[browser] clicked {target}, highlighted {current}")

        # While playing, the highlight follows the audio.
        page.evaluate("document.getElementById('player').play().then(() => true)", await_promise=True)
        page.wait_for(
            "(document.querySelector('#transcript .word.current') || {}).textContent !== "
            f"{json.dumps(target['word'])} && document.getElementById('player').currentTime > {current['time'] + 0.3}",
            10,
            "the highlight to move on during playback",
        )
    except (TimeoutError, CdpError) as e:
        pytest.fail(f"{e}\n{diagnostics(browser)}", pytrace=False)
    finally:
        screenshot(browser, "browser-upload.png")
