"""The HTTP transport of the Materials Project source: one guarded requests session, and its errors as one line.

Every request the session sends (ours and those mp-api's MPRester sends through it) passes one
`GuardedAdapter`, which

* refuses any URL of another origin (scheme, host, port) than the endpoint's, so a redirect can never
  carry the ``x-api-key`` header (or the endpoint's user:password) anywhere else;
* gives each attempt a deadline for the whole answer, connection to last byte, instead of urllib3's
  timeout per socket read (which a server sending one byte a second never reaches): a watchdog shuts
  the socket down when it passes;
* reads at most a maximum number of bytes (decompressed) of any answer, and much less of a heartbeat.

The watchdog works below requests: our urllib3 connection class registers its socket with the
current request's `_Watch` (thread-local, as mp-api sends pages from a thread pool).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import threading
from urllib.parse import urlsplit

import requests

from screening.errors import DataError, InputError
from screening.safe_io import quote, redact

ENV_KEY = "MP_API_KEY"
ENV_ENDPOINT = "MP_API_ENDPOINT"  # the variable mp-api's MPRester reads
ENV_TIMEOUT = "SCREENING_MP_TIMEOUT"  # seconds for one attempt at a request, connection to last byte
ENV_MAX_RESPONSE = "SCREENING_MP_MAX_RESPONSE_BYTES"  # bytes of one answer, decompressed
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 3600.0
DEFAULT_MAX_RESPONSE_BYTES = 128 << 20  # a 1000-document page of a 9-element system is ~20 MB
HEARTBEAT_MAX_BYTES = 1 << 20  # a heartbeat is a few hundred bytes
MAX_RETRY_AFTER = 60.0  # never wait longer than this on a server's Retry-After
RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = "screening (mp-api client)"
SNAPSHOT_HINT = "drop --source mp to use the embedded snapshot instead"
_CHUNK = 64 << 10


# -- settings -----------------------------------------------------------------------------------

def timeout_setting(timeout: float | None) -> float:
    """The deadline of one attempt in seconds: `timeout`, else $SCREENING_MP_TIMEOUT, else 30."""
    where = "the Materials Project timeout"
    if timeout is None:
        text = os.environ.get(ENV_TIMEOUT, "").strip()
        if not text:
            return DEFAULT_TIMEOUT
        where = f"${ENV_TIMEOUT}"
        if not re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,6})?", text):
            raise InputError(f"{where} must be a number of seconds, not {quote(text)}")
        timeout = float(text)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or not 0 < timeout <= MAX_TIMEOUT:
        raise InputError(f"{where} must be a number of seconds in (0, {MAX_TIMEOUT:g}], not {quote(timeout)}")
    return float(timeout)


def max_response_setting(limit: int | None) -> int:
    """The largest answer read, in bytes: `limit`, else $SCREENING_MP_MAX_RESPONSE_BYTES, else 128 MiB."""
    where = "the largest Materials Project answer"
    if limit is None:
        text = os.environ.get(ENV_MAX_RESPONSE, "").strip()
        if not text:
            return DEFAULT_MAX_RESPONSE_BYTES
        where = f"${ENV_MAX_RESPONSE}"
        if not re.fullmatch(r"[0-9]{1,15}", text):
            raise InputError(f"{where} must be a positive number of bytes, not {quote(text)}")
        limit = int(text)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(f"{where} must be a positive number of bytes, not {quote(limit)}")
    return limit


def check_key(key: str) -> None:
    """Refuse a string that cannot be an API key, without ever quoting it."""
    if not key.isascii():
        raise DataError(f"the API key must be ASCII (${ENV_KEY} holds other characters); {SNAPSHOT_HINT}")
    if not key.isprintable() or any(c.isspace() for c in key):
        raise DataError(f"the API key must not contain spaces, line breaks or control characters "
                         f"(check ${ENV_KEY}); {SNAPSHOT_HINT}")
    if len(key) != 32:
        raise DataError(f"{ENV_KEY} is not a Materials Project API key (those have 32 characters, this one "
                         f"{len(key)}); {SNAPSHOT_HINT}")


def check_endpoint(endpoint: str) -> str:
    """The endpoint URL ending in "/"; refuses anything but a plain http(s) URL of a host."""
    shown = quote(endpoint)
    if not endpoint.isprintable() or any(c.isspace() for c in endpoint):
        raise InputError(f"the Materials Project endpoint {shown} contains spaces or control characters")
    try:
        parts = urlsplit(endpoint)
        parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        raise InputError(f"not an http(s) URL for the Materials Project endpoint: {shown}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(f"not an http(s) URL for the Materials Project endpoint: {shown}")
    if parts.query or parts.fragment or endpoint.endswith(("?", "#")):
        raise InputError(f"the Materials Project endpoint {shown} must not have a query or fragment")
    return endpoint if endpoint.endswith("/") else endpoint + "/"


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme, 0)


def _show_origin(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


# -- errors of the guards -----------------------------------------------------------------------

class GuardError(requests.RequestException):
    """A refusal of the transport itself; its text is one line, what follows "the server at X".

    A requests exception, so that mp-api's ``except RequestException`` handlers pass it on."""


class CrossOriginError(GuardError):
    """A request (a redirect) to another origin than the endpoint's."""


class ResponseTooLargeError(GuardError):
    """An answer larger than the limit."""


class DeadlineError(GuardError, requests.Timeout):
    """An attempt that did not finish within its deadline.

    in_body: it passed while the body was read, after urllib3's retries (as requests reads bodies),
    so that attempt was the only one."""

    in_body = False


# -- the watchdog -------------------------------------------------------------------------------

_current = threading.local()


class _Watch:
    """The deadline of one request's current attempt: shuts the connection's socket down when it passes."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._conn = None
        self._timer: threading.Timer | None = None
        self._fresh = False
        self._lock = threading.Lock()

    def connecting(self, conn) -> None:
        """A new connection for an attempt: its deadline starts here."""
        self._start(conn)
        self._fresh = True

    def requesting(self, conn) -> None:
        """An attempt sends its request (urllib3 retries call this again): on a connection just made
        the deadline runs on, on a reused one it starts now."""
        if not (self._fresh and self._conn is conn):
            self._start(conn)
        self._fresh = False

    def _start(self, conn) -> None:
        self.cancel()
        with self._lock:
            self.expired = False
            self._conn = conn
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            conn = self._conn
        _shutdown(getattr(conn, "sock", None))

    def connected(self, conn) -> None:
        """The connection just got its socket: if the deadline passed meanwhile, end it now."""
        if self.expired:
            _shutdown(conn.sock)

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._conn = None, None


def _shutdown(sock) -> None:
    if sock is not None:
        try:
            # wakes a read blocked in another thread (close() does not); the plain socket's method, as
            # SSLSocket.shutdown would unwrap TLS under the reading thread's feet
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def _connection_classes():
    """urllib3 connection pools whose connections report to the current request's watchdog."""
    if hasattr(_connection_classes, "classes"):
        return _connection_classes.classes
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def watched(base):
        class Watched(base):
            def request(self, *args, **kwargs):
                watch = getattr(_current, "watch", None)
                if watch is not None:
                    watch.requesting(self)
                return super().request(*args, **kwargs)

            def connect(self):
                watch = getattr(_current, "watch", None)
                if watch is not None:
                    watch.connecting(self)
                super().connect()
                if watch is not None:
                    watch.connected(self)

        Watched.__name__ = f"Watched{base.__name__}"
        return Watched

    class WatchedHTTPPool(HTTPConnectionPool):
        ConnectionCls = watched(HTTPConnection)

    class WatchedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = watched(HTTPSConnection)

    _connection_classes.classes = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}
    return _connection_classes.classes


# -- the session --------------------------------------------------------------------------------

def make_session(api_key: str, endpoint: str, timeout: float, retries: int, backoff: float,
                 max_response_bytes: int):
    """A requests session for `endpoint` only, with the guards above and urllib3 retries.

    mp-api's own session retries only 429/502/504 with at most 3 retries and 0.1 s backoff, and
    takes its timeout from each rester (20 s); this one applies the caller's settings everywhere.
    """
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        def get_retry_after(self, response):
            seconds = super().get_retry_after(response)
            return None if seconds is None else min(seconds, MAX_RETRY_AFTER)

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _connection_classes()

        def proxy_manager_for(self, proxy, **proxy_kwargs):
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            manager.pool_classes_by_scheme = _connection_classes()
            return manager

        def send(self, request, stream=False, timeout=None, **kwargs):
            if origin(request.url) != allowed:
                raise CrossOriginError(f"redirected to another origin ({_show_origin(request.url)}): refused, "
                                       f"the API key is only sent to {_show_origin(endpoint)}")
            heartbeat = urlsplit(request.url).path.endswith("/heartbeat")
            watch = _current.watch = _Watch(deadline)
            try:
                try:
                    response = super().send(request, stream=True, timeout=timeout, **kwargs)
                except GuardError:
                    raise
                except requests.RequestException as exc:
                    if watch.expired:
                        raise _deadline_error() from exc
                    raise
                try:
                    _read_body(response, HEARTBEAT_MAX_BYTES if heartbeat else max_response_bytes, heartbeat)
                    if watch.expired:  # a body without a length ends "normally" when its socket is shut
                        raise _deadline_error(in_body=True)
                except GuardError:
                    response.close()
                    raise
                except requests.RequestException as exc:
                    response.close()
                    if watch.expired:
                        raise _deadline_error(in_body=True) from exc
                    raise
                return response
            finally:
                watch.cancel()
                _current.watch = None

    def _deadline_error(in_body=False):
        error = DeadlineError(f"did not answer within {deadline:g} s")
        error.in_body = in_body
        return error

    class TimeoutSession(requests.Session):
        def request(self, method, url, **kwargs):
            kwargs["timeout"] = timeout
            return super().request(method, url, **kwargs)

    allowed = origin(endpoint)
    deadline = timeout
    retry = CappedRetry(total=retries, connect=retries, read=retries, status=retries,
                        other=retries, status_forcelist=RETRY_STATUSES,
                        allowed_methods=frozenset({"GET", "HEAD"}), backoff_factor=backoff,
                        respect_retry_after_header=True, raise_on_status=True)
    session = TimeoutSession()
    session.headers.update({"x-api-key": api_key, "accept": "application/json",
                            "user-agent": USER_AGENT})
    adapter = GuardedAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session



def _read_body(response, limit: int, heartbeat: bool) -> None:
    """Read the whole (decompressed) body into the response, refusing more than `limit` bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > limit:  # (a compressed length is no larger)
        raise _too_large(limit, heartbeat)
    data = bytearray()
    for chunk in response.iter_content(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise _too_large(limit, heartbeat)
    response._content = bytes(data)
    response._content_consumed = True


def _too_large(limit: int, heartbeat: bool):
    hint = "a heartbeat is a few hundred bytes" if heartbeat else f"${ENV_MAX_RESPONSE} raises the limit"
    return ResponseTooLargeError(f"sent an answer larger than {limit} bytes ({hint})")


# -- errors as one line -------------------------------------------------------------------------

def one_line(text, limit: int = 240) -> str:
    text = " ".join(redact(str(text)).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def causes(exc: BaseException):
    """exc and everything it wraps: __cause__/__context__, requests' args, urllib3's .reason."""
    todo, seen = [exc], set()
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        todo += [err.__cause__, err.__context__, getattr(err, "reason", None)]
        todo += [a for a in getattr(err, "args", ()) if isinstance(a, BaseException)]


def explain(exc: BaseException, endpoint: str, timeout: float, retries: int, what: str) -> str:
    """One line for a failed request (after urllib3's retries), for a DataError; credentials redacted.

    endpoint: as it may be shown (without user info)."""
    return redact(_explain(exc, endpoint, timeout, retries, what))


def _explain(exc, endpoint, timeout, retries, what) -> str:
    import urllib3.exceptions as u3

    chain = list(causes(exc))
    attempts = f"{retries + 1} attempt{'s' if retries else ''}"
    guard = next((e for e in chain if isinstance(e, GuardError)), None)
    if isinstance(guard, DeadlineError):
        attempts = "1 attempt: the answer had begun" if guard.in_body else attempts
        return (f"the Materials Project at {endpoint} did not answer within {timeout:g} s, connection to "
                f"last byte ({attempts}; ${ENV_TIMEOUT}) when asked for {what}; try again later, or "
                f"{SNAPSHOT_HINT}")
    if guard is not None:
        return f"the Materials Project at {endpoint} {one_line(guard, 200)} when asked for {what}; {SNAPSHOT_HINT}"
    text = " ".join(str(e) for e in chain)
    refused = [e for e in chain if isinstance(e, (u3.NewConnectionError, u3.NameResolutionError,
                                                  ConnectionRefusedError))]
    if refused:  # (urllib3's NewConnectionError is also a ConnectTimeoutError)
        return (f"cannot reach the Materials Project at {endpoint} ({one_line(refused[-1], 120)}); "
                f"check the network or ${ENV_ENDPOINT}, or {SNAPSHOT_HINT}")
    if any(isinstance(e, (requests.Timeout, u3.TimeoutError, TimeoutError)) for e in chain) \
            or "timed out" in text:
        return (f"the Materials Project at {endpoint} did not answer within {timeout:g} s "
                f"({attempts}) when asked for {what}; try again later, or {SNAPSHOT_HINT}")
    match = re.search(r"too many (\d{3}) error responses", text)
    if match:
        code = int(match.group(1))
        why = "kept rate-limiting (HTTP 429)" if code == 429 else f"kept failing with HTTP {code}"
        return (f"the Materials Project at {endpoint} {why} when asked for {what} ({attempts}); "
                f"try again later, or {SNAPSHOT_HINT}")
    if any(isinstance(e, json.JSONDecodeError) or type(e).__name__ == "JSONDecodeError"
           for e in chain):
        return (f"the Materials Project at {endpoint} sent a truncated or invalid JSON answer "
                f"when asked for {what}; try again, or {SNAPSHOT_HINT}")
    if "does not support the request" in text:  # mp-api's words for HTTP 400
        return (f"the Materials Project at {endpoint} answered HTTP 400 (bad request) when asked for "
                f"{what}: the installed mp-api may not match the server; {SNAPSHOT_HINT}")
    match = re.search(r"error status code (\d{3})", text)
    if match:
        code = int(match.group(1))
        if code in (401, 403):
            return (f"the Materials Project at {endpoint} refused the API key (HTTP {code}): "
                    f"check ${ENV_KEY}, or {SNAPSHOT_HINT}")
        detail = one_line(text.split("with message:", 1)[-1], 120)
        return (f"the Materials Project at {endpoint} answered HTTP {code} when asked for "
                f"{what}: {detail}; {SNAPSHOT_HINT}")
    if any(isinstance(e, (requests.ConnectionError, u3.HTTPError, ConnectionError, OSError))
           for e in chain):
        reason = next((e for e in reversed(chain)
                       if isinstance(e, (OSError, u3.ProtocolError, u3.NewConnectionError))), exc)
        return (f"cannot reach the Materials Project at {endpoint} ({one_line(reason, 120)}); "
                f"check the network or ${ENV_ENDPOINT}, or {SNAPSHOT_HINT}")
    return (f"unexpected answer from the Materials Project at {endpoint} when asked for {what}: "
            f"{type(exc).__name__}: {one_line(exc, 160)}; {SNAPSHOT_HINT}")


# -- mp-api's own heartbeats --------------------------------------------------------------------

_HEARTBEATS: dict[str, dict] = {}
_HEARTBEATS_LOCK = threading.Lock()


def serve_mp_api_heartbeat(endpoint: str, answer: dict) -> None:
    """Answer mp-api's heartbeats for `endpoint` from the one this session already made (`answer`).

    MPRester (the server's emmet version) and each of its resters (database version) ask
    ``GET {endpoint}heartbeat`` through a bare ``requests.get``, outside the session they were given:
    no deadline, no size cap, redirects followed anywhere. Their two (cached, private) static methods
    are wrapped once, so that endpoints this module checked are answered without a request; any
    other endpoint still goes to mp-api's own code.
    """
    with _HEARTBEATS_LOCK:
        _HEARTBEATS[endpoint] = dict(answer)
    from mp_api.client import mprester
    from mp_api.client.core import client as core

    def database(answer):
        batch_ids = answer.get("access_controlled_batch_ids") or []
        ok = isinstance(batch_ids, list) and all(isinstance(b, str) for b in batch_ids)
        return answer["db_version"], list(batch_ids) if ok else []

    def emmet_version(answer):
        from packaging import version

        try:
            return version.parse(str(answer["version"]))
        except (KeyError, version.InvalidVersion):
            return None  # mp-api's own answer when it cannot tell

    _serve(core._Rester, "_get_heartbeat_info", database)
    _serve(mprester.MPRester, "get_emmet_version", emmet_version)


def _serve(cls, name: str, from_answer) -> None:
    current = cls.__dict__.get(name)
    if not isinstance(current, staticmethod) or getattr(current.__func__, "_screening_served", False):
        return
    original = current.__func__

    def served(endpoint):
        with _HEARTBEATS_LOCK:
            answer = _HEARTBEATS.get(endpoint)
        return from_answer(answer) if answer is not None else original(endpoint)

    served._screening_served = True
    setattr(cls, name, staticmethod(served))
