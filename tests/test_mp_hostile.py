"""A hostile or broken Materials Project endpoint, through the real CLI and the real mp-api client.

Redirects elsewhere, answers that drip or never end, huge answers, credentials in the endpoint URL
and malformed keys: each ends with exit status 2 and one line on stderr, within the deadline, and
neither the key nor a password ever reaches another server, stdout, stderr, the logs or the cache.
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import time

import pytest

from fake_mp_server import FakeMPServer
from screening.cli import main
from screening.data import mp_http, mp_source
from screening.data.mp_source import load_mp_entries
from screening.errors import DataError

KEY = "fedcba9876543210fedcba9876543210"  # 32 characters, like a real key
PASSWORD = "s3cr3t-pw"
ARGV = ["window", "Li2O", "--source", "mp", "--json"]


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(mp_source.ENV_BACKOFF, "0")
    for name in ("MP_API_KEY", "MP_API_ENDPOINT", mp_http.ENV_TIMEOUT, mp_http.ENV_MAX_RESPONSE):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server(table, monkeypatch):
    with FakeMPServer(table) as fake:
        monkeypatch.setenv("MP_API_KEY", KEY)
        monkeypatch.setenv("MP_API_ENDPOINT", fake.url)
        yield fake


@pytest.fixture
def other(table):
    """A second server (another port): it records whatever reaches it."""
    with FakeMPServer(table) as fake:
        yield fake


def run(capsys, argv=ARGV):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fails_in_one_line(capsys, *needles, argv=ARGV) -> str:
    code, out, err = run(capsys, argv)
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("screening: error: "), err
    assert out == ""
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def cache_texts(tmp_path) -> list[str]:
    folder = tmp_path / "cache"
    texts = []
    for path in folder.rglob("*") if folder.exists() else ():
        if path.is_file():
            raw = path.read_bytes()
            texts.append((gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("latin-1"))
    return texts


def assert_never_shown(secret: str, *texts: str) -> None:
    """Neither the secret nor any 8-character piece of it (a key cut by a line break)."""
    pieces = {secret[i:i + 8] for i in range(len(secret) - 7)} if len(secret) >= 8 else {secret}
    for text in texts:
        for piece in pieces:
            assert piece not in text, (piece, text[:300])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- item 3: the key never follows a redirect to another origin -----------------------------------

@pytest.mark.parametrize("path", ["/heartbeat", "/materials/thermo"])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_another_origin_is_refused_and_the_key_stays(server, other, capsys, tmp_path,
                                                                 path, status):
    server.add_fault("redirect", path=path, status=status, location=other.url, times=100)
    line = fails_in_one_line(capsys, "redirected to another origin", other.url[len("http://"):-1], server.url)
    assert other.requests == []  # nothing at all reached the other server
    assert_never_shown(KEY, line, *cache_texts(tmp_path))


def test_a_redirect_within_the_endpoint_is_followed(server, table, capsys):
    server.add_fault("redirect", status=307, location=server.url, times=1)
    code, out, err = run(capsys)
    assert code == 0, err
    assert server.count() == 2
    assert all(r.headers.get("x-api-key") == KEY for r in server.requests)


@pytest.mark.parametrize("url, same", [("http://127.0.0.1:8000/x", True), ("HTTP://127.0.0.1:8000/", True),
                                       ("https://127.0.0.1:8000/", False), ("http://127.0.0.1:8001/", False),
                                       ("http://localhost:8000/", False),
                                       ("http://user:pw@127.0.0.1:8000/", True)])
def test_origin(url, same):
    assert (mp_http.origin(url) == mp_http.origin("http://127.0.0.1:8000/")) is same


def test_https_to_http_is_another_origin():
    assert mp_http.origin("https://api.materialsproject.org/") == ("https", "api.materialsproject.org", 443)
    assert mp_http.origin("http://api.materialsproject.org/") != mp_http.origin("https://api.materialsproject.org/")


def test_every_request_goes_through_the_guarded_session(server, capsys):
    """mp-api's resters ask for the heartbeat with a bare requests.get (no deadline, no size cap):
    served from the guarded session's answer instead, so every request carries our user agent."""
    code, _, err = run(capsys)
    assert code == 0, err
    assert server.count("/materials/thermo") == 1
    assert server.count("/heartbeat") == 1
    agents = {v for r in server.requests for k, v in r.headers.items() if k.lower() == "user-agent"}
    assert agents == {mp_http.USER_AGENT} and all(len(r.headers) > 0 for r in server.requests)


# -- item 4: a deadline per attempt, a size cap per answer ----------------------------------------

@pytest.mark.parametrize("kind", ["drip", "drip-body"])
@pytest.mark.parametrize("path", ["/heartbeat", "/materials/thermo"])
def test_a_dripping_answer_ends_at_the_deadline(server, capsys, tmp_path, monkeypatch, kind, path):
    monkeypatch.setenv(mp_http.ENV_TIMEOUT, "0.5")
    fault = server.add_fault(kind, path=path, delay=0.05, times=100, duration=20)
    start = time.monotonic()
    fails_in_one_line(capsys, "did not answer within 0.5 s", "connection to last byte", mp_http.ENV_TIMEOUT)
    elapsed = time.monotonic() - start
    assert elapsed < 6, elapsed  # 4 attempts of 0.5 s at most, the drip would go on for 20 s
    assert fault.sent < 1000
    assert cache_texts(tmp_path) == []


def test_an_attempt_dripping_its_headers_is_retried(server, table):
    server.add_fault("drip", delay=0.05, times=1, duration=20)
    start = time.monotonic()
    mp = load_mp_entries(["Li", "O"], api_key=KEY, endpoint=server.url, timeout=0.5, retries=1)
    assert time.monotonic() - start < 5
    assert mp.row_of("Li2O") is not None
    assert server.count() == 2


def test_an_answer_dripping_its_body_is_not_retried(server):
    """(requests reads a body after urllib3's retries, so a body cut short never was retried)"""
    server.add_fault("drip-body", delay=0.05, times=1, duration=20)
    start = time.monotonic()
    with pytest.raises(DataError) as excinfo:
        load_mp_entries(["Li", "O"], api_key=KEY, endpoint=server.url, timeout=0.5, retries=1)
    assert time.monotonic() - start < 3
    assert "did not answer within 0.5 s" in str(excinfo.value) and "1 attempt" in str(excinfo.value)
    assert server.count() == 1


@pytest.mark.parametrize("kind", ["endless", "huge", "huge-unsized"])
def test_an_answer_past_the_size_limit_is_refused(server, capsys, tmp_path, monkeypatch, kind):
    monkeypatch.setenv(mp_http.ENV_MAX_RESPONSE, "300000")
    fault = server.add_fault(kind, size=50 << 20, times=100, duration=20)
    start = time.monotonic()
    fails_in_one_line(capsys, "larger than 300000 bytes", mp_http.ENV_MAX_RESPONSE, server.url)
    assert time.monotonic() - start < 10
    # the client hung up soon after the limit (socket buffers hold a few MB at most)
    assert fault.sent < 16 << 20, fault.sent
    assert cache_texts(tmp_path) == []


def test_a_huge_heartbeat_is_refused_under_the_default_limits(server, capsys):
    fault = server.add_fault("huge", path="/heartbeat", size=400 << 20, times=100, duration=20)
    fails_in_one_line(capsys, f"larger than {mp_http.HEARTBEAT_MAX_BYTES} bytes (a heartbeat is", "heartbeat")
    assert fault.sent < 16 << 20, fault.sent  # refused on its Content-Length, not read


def test_real_answers_pass_under_a_small_limit(server, capsys, monkeypatch):
    monkeypatch.setenv(mp_http.ENV_MAX_RESPONSE, str(4 << 20))
    code, _, err = run(capsys)
    assert code == 0, err


@pytest.mark.parametrize("name, value", [(mp_http.ENV_TIMEOUT, "0"), (mp_http.ENV_TIMEOUT, "-1"),
                                         (mp_http.ENV_TIMEOUT, "nan"), (mp_http.ENV_TIMEOUT, "1e9"),
                                         (mp_http.ENV_TIMEOUT, "99999"), (mp_http.ENV_MAX_RESPONSE, "0"),
                                         (mp_http.ENV_MAX_RESPONSE, "abc"),
                                         (mp_http.ENV_MAX_RESPONSE, "1" * 40)])
def test_bad_limit_settings_are_one_line(server, capsys, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    fails_in_one_line(capsys, name)
    assert server.requests == []


# -- item 5: credentials in the endpoint and the key are never shown -----------------------------

def test_user_info_of_an_unreachable_endpoint_is_not_printed(monkeypatch, capsys):
    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setenv("MP_API_ENDPOINT", "http://alice:secret@127.0.0.1:9/")
    line = fails_in_one_line(capsys, "cannot reach the Materials Project", "127.0.0.1:9")
    assert "secret" not in line and "alice" not in line


@pytest.mark.parametrize("fault", [None, ("status", 400), ("status", 500), ("truncated", None)])
def test_user_info_is_never_printed_stored_or_logged(server, capsys, caplog, tmp_path, monkeypatch, fault):
    endpoint = server.url.replace("http://", f"http://alice:{PASSWORD}@")
    monkeypatch.setenv("MP_API_ENDPOINT", endpoint)
    if fault is not None:
        server.add_fault(fault[0], status=fault[1] or 500, times=100)
    with caplog.at_level(logging.DEBUG):
        code, out, err = run(capsys)
    assert code == (0 if fault is None else 2), err
    if fault is None:
        source = json.loads(out)["provenance"]["data_source"]
        assert source["kind"] == "materials-project"
        assert source["path"] == server.url.replace("http://", "http://***@")
        assert len(cache_texts(tmp_path)) == 1
    else:
        assert len(err.splitlines()) == 1
    for secret in (PASSWORD, KEY):
        assert_never_shown(secret, out, err, caplog.text, *cache_texts(tmp_path))
    # the password still went to its own server, as HTTP basic authentication
    assert all(r.headers.get("Authorization", "").startswith("Basic ") for r in server.requests)


@pytest.mark.parametrize("cut", ["\n", "\r", "\t", " ", "\x1b", "\x7f"])
def test_a_key_with_a_line_break_or_control_character_is_not_echoed(server, capsys, monkeypatch, cut):
    key = KEY[:16] + cut + KEY[16:31]  # still 32 characters
    monkeypatch.setenv("MP_API_KEY", key)
    line = fails_in_one_line(capsys, "the API key must not contain", "MP_API_KEY")
    assert_never_shown(KEY[:16], line)
    assert_never_shown(KEY[16:31], line)
    assert server.requests == []


@pytest.mark.parametrize("char", ["é", "\u2603", "\U0001f511"])
def test_a_non_ascii_key_is_one_line(server, capsys, monkeypatch, char):
    monkeypatch.setenv("MP_API_KEY", KEY[:31] + char)
    line = fails_in_one_line(capsys, "the API key must be ASCII")
    assert_never_shown(KEY[:31], line)
    assert server.requests == []


def test_a_refused_key_is_not_echoed(server, capsys, tmp_path):
    server.add_fault("status", path="/heartbeat", status=401, times=100)
    line = fails_in_one_line(capsys, "HTTP 401")
    assert_never_shown(KEY, line)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:99999/", "http://127.0.0.1:x/", "http:///nohost",
                                      "http://127.0.0.1:8000/?a=1", "http://127.0.0.1:8000/#f",
                                      "http://exa mple.org/", "file:///etc/passwd"])
def test_malformed_endpoints_are_one_line(monkeypatch, capsys, endpoint):
    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setenv("MP_API_ENDPOINT", endpoint)
    fails_in_one_line(capsys, "Materials Project endpoint")


def test_errors_from_the_api_are_redacted_without_the_cli(server):
    """The library's own exceptions carry no secrets either (not only what the CLI prints)."""
    endpoint = server.url.replace("http://", f"http://alice:{PASSWORD}@")
    server.add_fault("status", status=400, times=100)
    with pytest.raises(DataError) as excinfo:
        load_mp_entries(["Li", "O"], api_key=KEY, endpoint=endpoint, timeout=5, retries=0)
    assert_never_shown(PASSWORD, str(excinfo.value))
    assert "answered HTTP 400 (bad request)" in str(excinfo.value)


def test_a_closed_port_behind_user_info(monkeypatch, capsys):
    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setenv("MP_API_ENDPOINT", f"http://bob:{PASSWORD}@127.0.0.1:{free_port()}/")
    line = fails_in_one_line(capsys, "cannot reach")
    assert_never_shown(PASSWORD, line)
