"""The HTTP client: one ``requests.Session``, GEN's auth header, retries, typed errors, bounded work.

:class:`GenClient` knows nothing of actions. It sends a request, retries what is
safe to retry, reads every answer variant GEN documents (204 or 200, with or
without a body; JSON or a proxy's HTML error page) and turns failures into the
typed errors of ``core/errors.py``. Whether a request is safe to repeat is the
caller's word (``safe_to_retry``): a request that is not is retried only when the
server cannot have seen it, and otherwise ends in :class:`OutcomeUnknown`.

Every call is bounded: an overall ``deadline`` covers all attempts and the waits
between them, and bodies are streamed under that clock (a body trickled a byte at a
time ends at the deadline, though each byte beats the read timeout) and under a cap
on their decoded size (``max_response_bytes``, counted while decompressing, so a
small gzip answer cannot unpack into gigabytes).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import math
import random
import re
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Mapping

import orjson
import requests
import requests.adapters

from gen_nodes.core.version import __version__
from gen_nodes.core import settings
from gen_nodes.core.errors import (
    AuthenticationError,
    ConnectionFailed,
    GenError,
    InvalidSetting,
    OutcomeUnknown,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    error_for_status,
)
from gen_nodes.core.redact import Secret

log = logging.getLogger("gen_nodes.http")

DEFAULT_BASE_URL = "https://api.gen.pro/v1"
#: (connect, read) seconds.
DEFAULT_TIMEOUT = (5.0, 30.0)
#: Seconds one call may take in all: every attempt, every wait between them.
DEFAULT_DEADLINE = 60.0
#: The largest answer accepted, in bytes after decompression.
DEFAULT_MAX_RESPONSE_BYTES = 64 << 20
#: Connections kept open per host (requests' default is 10); a server calling concurrently wants more.
DEFAULT_POOL_SIZE = 10
#: Bytes asked of the socket per read while streaming a body.
_READ_SIZE = 64 << 10


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a request again."""

    #: Total tries, the first included.
    attempts: int = 4
    #: First back-off in seconds, doubled on each retry, capped at ``max_backoff``.
    backoff: float = 0.5
    max_backoff: float = 8.0
    #: Honour a server's ``Retry-After`` up to this many seconds; longer, give up at once.
    max_retry_after: float = 60.0
    #: Statuses worth another try (only 429 for requests not safe to repeat).
    statuses: frozenset[int] = field(default=frozenset({429, 502, 503, 504}))

    def delay(self, retry_number: int) -> float:
        """Exponential back-off with jitter: half fixed, half random."""
        full = min(self.max_backoff, self.backoff * (2 ** (retry_number - 1)))
        return full / 2 + random.uniform(0, full / 2)


@dataclass
class ApiResponse:
    """A successful answer: status, headers and the decoded JSON body (None if empty)."""

    status: int
    headers: Mapping[str, str]
    # Kept out of repr(): a create's body holds the new key's secret.
    data: Any = field(repr=False)
    text: str = field(repr=False)


class GenClient:
    """A connection to GEN's API (or the sandbox), reused across calls.

    ``api_key`` defaults to ``$GEN_API_KEY``, ``base_url`` to ``$GEN_BASE_URL`` or
    ``https://api.gen.pro/v1``. ``timeout`` is seconds, or a ``(connect, read)`` pair, per
    attempt and per read; ``deadline`` (default ``$GEN_NODES_DEADLINE`` or 60) is seconds for a
    whole call, retries and waits included; ``max_response_bytes`` (default
    ``$GEN_NODES_MAX_RESPONSE_BYTES`` or 64 MiB) caps an answer's decoded size; ``pool_size``
    is how many connections to GEN stay open for concurrent calls (ignored with ``session``).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | tuple[float, float] | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        max_response_bytes: int | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = settings.current()
        key = api_key if api_key is not None else env.api_key
        # A key read from a file or a CRLF .env often ends in a line break: never part of a key.
        key = key.strip() if key else key
        self._api_key = Secret(key) if key else None
        self.base_url = (base_url or env.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = _checked_timeout(timeout) if timeout is not None else DEFAULT_TIMEOUT
        self.deadline = _positive("deadline", deadline if deadline is not None
                                  else env.deadline or DEFAULT_DEADLINE)
        self.max_response_bytes = int(_positive("max_response_bytes", max_response_bytes
                                                if max_response_bytes is not None
                                                else env.max_response_bytes or DEFAULT_MAX_RESPONSE_BYTES))
        self.pool_size = int(_positive("pool_size", pool_size))
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.session = session or _session(self.pool_size, self.base_url)
        self._headers = {
            "User-Agent": f"gen-nodes/{__version__} python-requests/{requests.__version__}",
            "Accept": "application/json",
        }

    @property
    def identity(self) -> str:
        """Who this client acts as: a SHA-256 of the API key (never the key), or "" without one."""
        if not self._api_key:
            return ""
        return hashlib.sha256(str.__str__(self._api_key).encode()).hexdigest()

    def __repr__(self) -> str:
        key = repr(self._api_key) if self._api_key else "None"
        return f"GenClient(base_url={self.base_url!r}, api_key={key})"

    def __enter__(self) -> "GenClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        safe_to_retry: bool = True,
    ) -> ApiResponse:
        """Send one request (retrying as the policy allows) and return the answer or raise."""
        headers = {**self._headers, "X-API-Key": self._sendable_key()}
        attempts = max(1, self.retry.attempts)
        ends = self._clock() + self.deadline
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            started = time.perf_counter()
            try:
                resp = self._send(method, path, params, json, headers, ends, safe_to_retry, attempt)
            except requests.RequestException as exc:
                delay = self._delay_after_transport_error(exc, method, path, safe_to_retry, attempt, last, ends)
                self._wait(delay, method, path, attempt, type(exc).__name__)
                continue
            log.debug(
                "%s %s -> %s in %.1f ms (attempt %d)",
                method, path, resp.status_code, (time.perf_counter() - started) * 1000, attempt,
            )
            if resp.status_code < 300:
                return _success(resp)
            delay = self._delay_after_status(resp, method, safe_to_retry, attempt, last, ends)
            self._wait(delay, method, path, attempt, str(resp.status_code))
        raise AssertionError("unreachable")  # pragma: no cover

    def _sendable_key(self) -> str:
        """The API key as it goes into the header; refused before any request if missing or unsendable."""
        if not self._api_key:
            raise AuthenticationError(
                "No GEN API key given.",
                hint="${API_KEY} (create one in the GEN dashboard, or try `gen-nodes --sandbox ...` "
                "for a local one).",
            )
        key = str.__str__(self._api_key)
        if not (key.isascii() and key.isprintable()):
            raise AuthenticationError(
                "The API key holds characters that cannot be sent in an HTTP header; nothing was sent.",
                hint="Copy the key again: look for curly quotes, spaces or other pasted characters.",
            )
        return key

    def _send(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any,
              headers: dict[str, str], ends: float, safe: bool, attempt: int) -> requests.Response:
        """One attempt: the response with its body read, or the transport error requests raised."""
        try:
            left = self._left(ends, method, path, safe, attempt - 1)
            # No redirects: requests would resend X-API-Key to wherever GEN (or a proxy) points.
            resp = self.session.request(
                method, self.base_url + path, params=params, json=json, headers=headers,
                timeout=_within(self.timeout, left), allow_redirects=False, stream=True,
            )
            self._read_body(resp, ends, method, path, safe, attempt)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, UnicodeError) as exc:
            # The request could not even be built: no retry can help.
            raise ConnectionFailed(
                f"Cannot send a request to {self.base_url} ({type(exc).__name__}); nothing was sent.",
                hint="Check ${BASE_URL}: it must look like https://api.gen.pro/v1; "
                "and check that the API key holds only the key.",
                attempts=attempt,
            ) from None
        return resp

    def _delay_after_transport_error(self, exc: requests.RequestException, method: str, path: str, safe: bool,
                                     attempt: int, last: bool, ends: float) -> float:
        """Seconds to wait before retrying after ``exc``, or the error that ends the call."""
        error = self._transport_error(exc, method, path, safe, attempt)
        delay = self.retry.delay(attempt)
        if error is None and not last and self._clock() + delay < ends:
            return delay
        if error is None and self._clock() >= ends - 0.01:
            self._left(ends, method, path, safe, attempt)  # the deadline cut it: say so
        raise (error or self._gave_up(exc, attempt)) from None

    def _delay_after_status(self, resp: requests.Response, method: str, safe: bool, attempt: int, last: bool,
                            ends: float) -> float:
        """Seconds to wait before retrying after a status of 300 or more, or the error that ends the call."""
        if resp.status_code < 400:
            raise _redirect_error(resp, self.base_url, safe)
        error = _http_error(resp, attempt)
        if not safe and resp.status_code >= 500:
            raise OutcomeUnknown(
                f"GEN answered {resp.status_code} to a {method} that is not safe to repeat; "
                "it may or may not have been carried out.",
                status=resp.status_code,
                error_code=error.error_code,
                server_message=error.message,
            )
        if last or not (resp.status_code in self.retry.statuses and (safe or resp.status_code == 429)):
            raise error
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        if retry_after is not None and retry_after > self.retry.max_retry_after:
            raise error
        delay = retry_after if retry_after is not None else self.retry.delay(attempt)
        if self._clock() + delay >= ends:  # the wait alone would outlast the deadline
            raise error
        return delay

    def _left(self, ends: float, method: str, path: str, safe: bool, attempts: int) -> float:
        """Seconds left before the deadline; past it, the error that ends the call."""
        left = ends - self._clock()
        if left > 0.01:
            return left
        message = f"No complete answer from GEN within the deadline of {self.deadline:g}s ({attempts} attempt(s))."
        if safe or attempts == 0:
            raise RequestTimeout(message, attempts=attempts)
        raise OutcomeUnknown(f"{message} The {method} {path} request was sent; GEN may or may not have "
                             "carried it out.", attempts=attempts)

    def _read_body(self, resp: requests.Response, ends: float, method: str, path: str, safe: bool,
                   attempt: int) -> None:
        """Read the whole body into ``resp`` under the deadline and the size cap, or close it and raise.

        A read asks the socket once (``read1``), decompressing at most what was asked for, and
        the socket's timeout is cut to the time left, so neither a trickle nor a gzip bomb can
        outrun the checks between reads.
        """
        from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError
        from urllib3.response import BaseHTTPResponse

        raw, chunks, size = resp.raw, [], 0
        if isinstance(raw, BaseHTTPResponse):
            read = partial(raw.read1, _READ_SIZE, decode_content=True)
        else:  # a body replayed from memory (vcrpy's stand-in): nothing to wait for or decode
            read = partial(raw.read, _READ_SIZE)
        try:
            while True:
                left = self._left(ends, method, path, safe, attempt)
                _cut_socket_timeout(raw, min(left, _read_timeout(self.timeout)))
                try:
                    chunk = read()
                except (ReadTimeoutError, socket.timeout) as exc:
                    if self._clock() >= ends:
                        continue  # the deadline, not the read timeout, ended it: _left raises
                    raise requests.exceptions.ReadTimeout(str(exc)) from None
                except ProtocolError as exc:
                    raise requests.exceptions.ChunkedEncodingError(str(exc)) from None
                except DecodeError as exc:
                    raise requests.exceptions.ContentDecodingError(str(exc)) from None
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise self._too_large(resp, method, path, safe)
                chunks.append(chunk)
        except BaseException:
            resp.close()  # never hand a half-read connection back to the pool
            raise
        resp._content = b"".join(chunks)  # what requests' .content, .text and .json() read
        resp._content_consumed = True

    def _too_large(self, resp: requests.Response, method: str, path: str, safe: bool) -> GenError:
        coded = resp.headers.get("Content-Encoding")
        message = (f"GEN's answer to {method} {path} is larger than max_response_bytes "
                   f"({self.max_response_bytes:,} bytes{', decoded from ' + coded if coded else ''}); "
                   "reading stopped there.")
        if not safe and resp.status_code < 300:
            return OutcomeUnknown(f"{message} GEN answered {resp.status_code}, so it most likely carried "
                                  "the request out.", status=resp.status_code)
        return ResponseTooLarge(message, status=resp.status_code)

    def _wait(self, delay: float, method: str, path: str, attempt: int, why: str) -> None:
        log.info("retrying %s %s in %.2fs after %s (attempt %d of %d)",
                 method, path, delay, why, attempt + 1, self.retry.attempts)
        self._sleep(delay)

    def _transport_error(
        self, exc: requests.RequestException, method: str, path: str, safe: bool, attempt: int
    ) -> GenError | None:
        """None if the failure may be retried; else the error to raise."""
        if safe or _never_sent(exc):
            return None
        return OutcomeUnknown(
            f"The connection failed after the {method} {path} request was sent "
            f"({type(exc).__name__}); GEN may or may not have carried it out.",
            attempts=attempt,
        )

    def _gave_up(self, exc: requests.RequestException, attempt: int) -> GenError:
        if isinstance(exc, requests.Timeout):
            return RequestTimeout(
                f"GEN did not answer within the timeout ({_describe(self.timeout)}) after {attempt} attempt(s).",
                attempts=attempt,
            )
        return ConnectionFailed(
            f"Could not connect to {self.base_url} after {attempt} attempt(s) ({type(exc).__name__}).",
            attempts=attempt,
        )


class _GenSession(requests.Session):
    """requests' ``Session`` for one GEN base URL, its environment read once (:func:`_read_environment_once`).

    ``request`` prepares and sends at once (requests' own ``PreparedRequest`` and ``send``) instead of
    merging the session's headers, params, cookies, hooks, proxies and TLS settings into every call
    all over again: about 0.1 ms a call, as much as the rest of the client's own work. Anything that
    merge would change (environment reading back on, cookies a server set, session params, an option
    beyond these, a session header set to None to drop it) goes through requests' ``Session.request``
    as before.
    """

    _LEAN_OPTIONS = frozenset({"timeout", "allow_redirects", "stream"})

    def request(self, method: str, url: str, *, params: Any = None, json: Any = None,  # type: ignore[override]
                headers: Mapping[str, str] | None = None, **options: Any) -> requests.Response:
        if (self.trust_env or self.cookies or self.params or not options.keys() <= self._LEAN_OPTIONS
                or None in self.headers.values()):
            return super().request(method, url, params=params, json=json, headers=headers, **options)
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers={**self.headers, **(headers or {})}, params=params,
                         json=json, auth=self.auth, hooks=self.hooks)
        return self.send(prepared, proxies=self.proxies, verify=self.verify, cert=self.cert, **options)


def _session(pool_size: int, base_url: str) -> requests.Session:
    session = _GenSession()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    _read_environment_once(session, base_url)
    return session


def _read_environment_once(session: requests.Session, base_url: str) -> None:
    """What requests takes from the environment for ``base_url`` (``HTTPS_PROXY``/``NO_PROXY`` and the
    rest, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, ``~/.netrc``), read once, now, by requests' own
    functions; then the session stops looking. requests reads them again on every request, walking
    the whole environment twice (about 0.2 ms a call), though a client only ever calls its base URL."""
    try:
        found = session.merge_environment_settings(base_url, {}, None, None, None)
    except ValueError:  # not a URL (an unclosed IPv6 bracket): the first request refuses it, with a hint
        return
    session.proxies.update(found["proxies"])
    session.verify, session.cert = found["verify"], found["cert"]
    session.auth = requests.utils.get_netrc_auth(base_url)
    session.trust_env = False


def positive_number(value: Any) -> float | None:
    """``value`` as a finite number above zero, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if not isinstance(value, bool) and math.isfinite(number) and number > 0 else None


def _positive(name: str, value: Any) -> float:
    number = positive_number(value)
    if number is None:
        shown = json.dumps(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else str(value)
        raise InvalidSetting(f"{name} must be a finite number above 0, not {shown}.")
    return number


def _checked_timeout(timeout: float | tuple[float, float]) -> float | tuple[float, float]:
    if isinstance(timeout, tuple):
        return (_positive("timeout (connect)", timeout[0]), _positive("timeout (read)", timeout[1]))
    return _positive("timeout", timeout)


def _read_timeout(timeout: float | tuple[float, float]) -> float:
    return timeout[1] if isinstance(timeout, tuple) else timeout


def _within(timeout: float | tuple[float, float], left: float) -> tuple[float, float]:
    """The per-attempt ``(connect, read)`` timeout, never past the time left."""
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return (min(connect, left), min(read, left))


def _cut_socket_timeout(raw: Any, seconds: float) -> None:
    """Let the next socket read wait at most ``seconds`` (the connection may be gone at the end)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _redirect_error(resp: requests.Response, base_url: str, safe_to_retry: bool) -> GenError:
    where = (resp.headers.get("Location") or "another address")[:100]
    message = (f"GEN answered {resp.status_code}, redirecting to {where}; gen-nodes does not follow "
               "redirects, so the API key is never sent anywhere but the base URL.")
    if not safe_to_retry and resp.status_code not in (307, 308):
        # A 301/302/303 after a POST usually means the server acted and points at the result.
        return OutcomeUnknown(message, status=resp.status_code)
    return GenError(
        message,
        status=resp.status_code,
        hint=f"If you trust it, set ${{BASE_URL}} (now {base_url}) to the base URL the redirect points to.",
    )


def _describe(timeout: float | tuple[float, float]) -> str:
    if isinstance(timeout, tuple):
        return f"{timeout[0]:g}s to connect, {timeout[1]:g}s to read"
    return f"{timeout:g}s"


def timeouts(read: float | None) -> tuple[float, float] | None:
    """A ``(connect, read)`` timeout with the default connect timeout; None (the defaults) without ``read``."""
    return (DEFAULT_TIMEOUT[0], read) if read is not None else None


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server: the connection never opened."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (NewConnectionError, ConnectTimeoutError)):
            return True
        stack.extend([getattr(item, "reason", None), item.__cause__, item.__context__])
        stack.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
    return False


def _success(resp: requests.Response) -> ApiResponse:
    text = resp.text if resp.content else ""
    data = _decode(resp.content, text, resp.encoding) if text.strip() else None
    return ApiResponse(resp.status_code, resp.headers, data, text)


def _decode(content: bytes, text: str, encoding: str | None) -> Any:
    """The JSON body, or None. orjson reads a 2 MB list several times faster than ``json``; where it
    is stricter (NaN, integers past 64 bits) or the body is not UTF-8, ``json`` reads the text."""
    if (encoding or "utf-8").lower().replace("-", "").replace("_", "") in ("utf8", "ascii", "usascii"):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except ValueError:
        return None


_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _http_error(resp: requests.Response, attempt: int) -> GenError:
    """The typed error for an error answer, tolerant of any body."""
    status = resp.status_code
    message, code = None, None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw = body.get("error") or body.get("message")
        if isinstance(raw, dict):  # some gateways nest {"error": {"message", "code"}}
            code = raw.get("code")
            raw = raw.get("message")
        message = str(raw) if raw else None
        code = body.get("error_code") or code
    if not message:
        snippet = _SPACE.sub(" ", _TAGS.sub(" ", resp.text or "")).strip()[:200]
        message = f"GEN answered {status} {resp.reason or ''}".rstrip()
        if snippet:
            message += f" (not a GEN error body: {json.dumps(snippet, ensure_ascii=False)})"
    cls = error_for_status(status)
    details: dict[str, Any] = {"status": status, "error_code": code, "attempts": attempt}
    retry_after = _retry_after(resp.headers.get("Retry-After"))
    if cls is RateLimited or (status >= 500 and retry_after is not None):
        details["retry_after"] = retry_after  # a 503 may say when to come back, too
    return cls(message, **details)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
