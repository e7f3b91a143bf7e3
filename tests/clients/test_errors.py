"""Error envelope and status codes over plain HTTP (requests), PROTOCOL §1.2-1.3."""

from __future__ import annotations

import pytest
import requests

from ember_testlib import AUTH_KEY, AUTH_MAX_UPLOAD_BYTES, clip

TIMEOUT = 60


def assert_error(r: requests.Response, status: int, param: str | None = None) -> dict:
    """Status, JSON content type, the shared error shape, and x-request-id."""
    assert r.status_code == status, f"want {status}, got {r.status_code}: {r.text[:500]}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers.get("content-type")
    assert r.headers.get("x-request-id"), f"no x-request-id header on {status}"
    body = r.json()
    err = body.get("error")
    assert isinstance(err, dict), f"no `error` object: {body}"
    assert err.get("object") == "error", body
    want_type = "invalid_request_error" if status < 500 else "internal_server_error"
    assert err.get("type") == want_type, body
    assert isinstance(err.get("message"), str) and err["message"], body
    if param is not None:
        assert err.get("param") == param, body
    return err


def tiny_audio() -> tuple[str, bytes, str]:
    return ("digit.wav", clip("praat_digit_1_b").read_bytes(), "audio/wav")


# --------------------------------------------------------------------------- auth


def post_no_file(url: str, headers=None, params=None) -> requests.Response:
    """A request that gets past auth cheaply: no `file`, so an authorised one ends in 400."""
    return requests.post(
        f"{url}/v1/audio/transcriptions",
        files={"model": (None, "whisper-1")},
        headers=headers or {},
        params=params,
        timeout=TIMEOUT,
    )


def test_bad_key_401(auth_base_url):
    r = requests.post(
        f"{auth_base_url}/v1/audio/transcriptions",
        headers={"Authorization": "Bearer wrong-key"},
        files={"file": tiny_audio(), "model": (None, "whisper-1")},
        timeout=TIMEOUT,
    )
    assert_error(r, 401)


def test_missing_key_401(auth_base_url):
    assert_error(post_no_file(auth_base_url), 401)


@pytest.mark.parametrize(
    "headers,params",
    [
        ({"Authorization": f"Bearer {AUTH_KEY}"}, None),
        ({"Authorization": f"bearer {AUTH_KEY}"}, None),
        ({"Authorization": AUTH_KEY}, None),  # Fireworks docs' curl form, no `Bearer`
        ({}, {"Authorization": AUTH_KEY}),
        ({}, {"Authorization": f"Bearer {AUTH_KEY}"}),
    ],
    ids=["bearer", "bearer-lowercase", "raw-header", "query", "query-bearer"],
)
def test_accepted_key_forms(auth_base_url, headers, params):
    # Past auth, the request fails only for its missing file.
    assert_error(post_no_file(auth_base_url, headers, params), 400, param="file")


def test_upload_over_limit_413(auth_base_url):
    payload = b"RIFF" + b"\0" * (AUTH_MAX_UPLOAD_BYTES + 200_000)
    r = requests.post(
        f"{auth_base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {AUTH_KEY}"},
        files={"file": ("big.wav", payload, "audio/wav"), "model": (None, "whisper-1")},
        timeout=TIMEOUT,
    )
    assert_error(r, 413)


# --------------------------------------------------------------------------- request errors


def test_missing_file_400(base_url):
    assert_error(post_no_file(base_url), 400, param="file")


def test_missing_file_400_translations(base_url):
    r = requests.post(f"{base_url}/v1/audio/translations", files={"model": (None, "whisper-1")}, timeout=TIMEOUT)
    assert_error(r, 400, param="file")


def test_undecodable_audio_400(base_url):
    r = requests.post(
        f"{base_url}/v1/audio/transcriptions",
        files={"file": ("noise.bin", b"this is not audio at all " * 200, "application/octet-stream")},
        timeout=TIMEOUT,
    )
    assert_error(r, 400)


def test_bad_response_format_400(base_url):
    r = requests.post(
        f"{base_url}/v1/audio/transcriptions",
        files={"file": tiny_audio(), "response_format": (None, "xml")},
        timeout=TIMEOUT,
    )
    assert_error(r, 400, param="response_format")


def test_unknown_route_404(base_url):
    assert_error(requests.get(f"{base_url}/v1/no/such/route", timeout=TIMEOUT), 404)
    assert_error(requests.post(f"{base_url}/v1/audio/nonsense", timeout=TIMEOUT), 404)


def test_get_on_transcriptions_405(base_url):
    assert_error(requests.get(f"{base_url}/v1/audio/transcriptions", timeout=TIMEOUT), 405)
    assert_error(requests.get(f"{base_url}/v1/audio/translations", timeout=TIMEOUT), 405)


def test_request_id_on_success(base_url):
    r = requests.get(f"{base_url}/health", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers.get("x-request-id")
    # A caller-supplied id is echoed back.
    r = requests.get(f"{base_url}/health", headers={"x-request-id": "client-chosen-id"}, timeout=TIMEOUT)
    assert r.headers.get("x-request-id") == "client-chosen-id"
