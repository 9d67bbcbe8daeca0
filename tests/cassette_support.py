"""Recording and replaying GEN cassettes: where requests go, and scrubbing what gets written.

Record (against an in-process sandbox, the default recording target)::

    python -m pytest tests/test_cassettes.py --record-mode=rewrite

Re-record against the real GEN API (fault-injection, variant and revoke-all tests
skip and keep their sandbox cassettes)::

    GEN_RECORD_API_KEY=... [GEN_RECORD_BASE_URL=https://api.gen.pro/v1] \\
        python -m pytest tests/test_cassettes.py --record-mode=rewrite

Replay (the default, ``--record-mode=none``): the client talks to the canonical
``https://api.gen.pro/v1`` with a placeholder key, no sandbox runs, and the
network is blocked, so a request missing from its cassette fails instead of
reaching any server.

Scrubbing happens while recording (vcrpy's ``before_record_request`` and
``before_record_response``): the sandbox or real base URL becomes the canonical
one, secret headers become ``<GEN_API_KEY>``, every ``token`` field of a JSON body
(nested too) becomes ``gen_pat_<REDACTED>`` with Content-Length kept right, and any
known secret value left anywhere else is replaced too. The sandbox runs on a
fixed clock and ``Date`` headers are dropped, so re-recording changes nothing
unless behaviour changed. Secrets are found by
where they sit (header name, field name) or by their exact value, never by prefix.
"""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import yaml

from gen_nodes.client.http import GenClient, RetryPolicy
from gen_nodes.core.redact import SECRET_FIELDS as _CLIENT_SECRET_FIELDS
from gen_nodes.sandbox import Sandbox

#: Top-level folder holding every cassette (YAML).
CASSETTE_DIR = Path(__file__).resolve().parent.parent / "cassettes"

CANONICAL_BASE_URL = "https://api.gen.pro/v1"
KEY_PLACEHOLDER = "<GEN_API_KEY>"
TOKEN_PLACEHOLDER = "gen_pat_<REDACTED>"

#: Recording against the real API: the key to use, and optionally where GEN is.
RECORD_KEY_ENV = "GEN_RECORD_API_KEY"
RECORD_URL_ENV = "GEN_RECORD_BASE_URL"

#: The sandbox's clock while recording, so bodies (created_at, expires_at...) are stable.
SANDBOX_NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

#: JSON fields whose string value is a secret wherever they appear in a body.
SECRET_FIELDS = frozenset(_CLIENT_SECRET_FIELDS | {"token", "api_key", "access_token", "refresh_token", "secret"})
#: Request headers that carry credentials; their value becomes the placeholder.
SECRET_REQUEST_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
#: Response headers never worth keeping (session cookies).
DROPPED_RESPONSE_HEADERS = frozenset({"set-cookie"})
#: Response headers that change on every recording and mean nothing to the client.
VOLATILE_RESPONSE_HEADERS = frozenset({"date"})
#: A known secret shorter than this is not searched for in free text (too many false hits).
MIN_SECRET_LENGTH = 8

#: What a leaked key looks like in a cassette file (the scan's last line of defence).
LEAK_PATTERN = re.compile(r"(gen_pat_|gen_|ref_)[A-Za-z0-9]{20,}")


class ScrubError(RuntimeError):
    """A response could not be checked for secrets, so it must not be written."""


# -- scrubbing -----------------------------------------------------------------


def scrub_json(data: Any, fields: frozenset[str] = SECRET_FIELDS) -> tuple[Any, list[str]]:
    """``data`` with every secret field's string value replaced, and the values replaced."""
    found: list[str] = []

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in fields and isinstance(item, str) and item != TOKEN_PLACEHOLDER:
                    found.append(item)
                    out[key] = TOKEN_PLACEHOLDER
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(data), found


@dataclass
class Scrubber:
    """The record-time filters of one cassette; knows the secrets seen so far.

    ``base_url`` is the URL actually recorded against (rewritten to the canonical
    one); ``secrets`` maps a known secret value to the placeholder replacing it.
    Tokens found in responses are remembered, so a later request using one as its
    key, or a body echoing it, is scrubbed too.
    """

    base_url: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    def __deepcopy__(self, memo: dict) -> "Scrubber":
        # pytest-recording deep-copies vcr_config (and with it these bound methods) before
        # recording; a copy would miss the base URL and keys that gen_target sets afterwards.
        return self

    def remember(self, secret: str | None, placeholder: str = KEY_PLACEHOLDER) -> None:
        if secret and len(secret) >= MIN_SECRET_LENGTH and secret not in (KEY_PLACEHOLDER, TOKEN_PLACEHOLDER):
            self.secrets[secret] = placeholder

    def vcr_config(self) -> dict[str, Any]:
        """Keyword arguments for ``vcr.use_cassette`` (pytest-recording's ``vcr_config``)."""
        return {
            "before_record_request": self.request,
            "before_record_response": self.response,
            # A gzip'd body could hide a token from the JSON scrubber: store it decoded.
            "decode_compressed_response": True,
            # The record mode comes from --record-mode only (a value here would win over it).
        }

    # -- text -------------------------------------------------------------

    def _replace_known(self, text: str) -> str:
        # Longest first, so a secret containing another is replaced whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, self.secrets[secret])
        return text

    def _canonical_uri(self, uri: str) -> str:
        base = (self.base_url or "").rstrip("/")
        if base and base != CANONICAL_BASE_URL and (uri == base or uri.startswith(base + "/") or uri.startswith(base + "?")):
            uri = CANONICAL_BASE_URL + uri[len(base):]
        return uri

    # -- requests ---------------------------------------------------------

    def request(self, request: Any) -> Any:
        """before_record_request: canonical URL, no credential in headers, URI or body.

        vcrpy hands us a deep copy (and applies this to live requests too before
        matching them in replay), so changing it never changes what is sent.
        """
        request.uri = self._replace_known(self._canonical_uri(request.uri))
        for name, value in list(request.headers.items()):
            if name.lower() in SECRET_REQUEST_HEADERS:
                request.headers[name] = KEY_PLACEHOLDER
            elif isinstance(value, str):
                request.headers[name] = self._replace_known(value)
        body = request.body
        if isinstance(body, (bytes, str)) and body:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            new = self._scrub_body_text(text)
            if new != text:
                request.body = new.encode("utf-8") if isinstance(body, bytes) else new
        return request

    # -- responses --------------------------------------------------------

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """before_record_response: no token in the body, no secret in headers, Content-Length right."""
        headers: dict[str, list[str]] = response.get("headers") or {}
        for name in list(headers):
            if name.lower() in DROPPED_RESPONSE_HEADERS | VOLATILE_RESPONSE_HEADERS:
                del headers[name]
            else:
                headers[name] = [self._replace_known(str(v)) for v in headers[name]]

        body = response.get("body") or {}
        raw = body.get("string")
        if not raw:
            return response
        encoding = [v for k, vs in headers.items() if k.lower() == "content-encoding" for v in vs]
        if any(e.lower() not in ("identity", "") for e in encoding):
            raise ScrubError(f"cannot scrub a {encoding} response body; record without that encoding")
        was_bytes = isinstance(raw, bytes)
        text = raw.decode("utf-8", "replace") if was_bytes else raw
        new = self._scrub_body_text(text)
        if new != text:
            data = new.encode("utf-8")
            body["string"] = data if was_bytes else new
            for name in headers:
                if name.lower() == "content-length":
                    headers[name] = [str(len(data))]
        return response

    def _scrub_body_text(self, text: str) -> str:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, (dict, list)):
            scrubbed, found = scrub_json(data)
            for secret in found:
                self.remember(secret, TOKEN_PLACEHOLDER)
            if found:
                text = json.dumps(scrubbed)
        return self._replace_known(text)


# -- leak scan -------------------------------------------------------------------


def cassette_files(folder: Path = CASSETTE_DIR) -> list[Path]:
    """Every file under ``folder``, whatever its name."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def find_leaks(path: Path) -> list[str]:
    """What in this cassette file looks like a secret or an unstable URL; empty when clean."""
    text = path.read_text(encoding="utf-8", errors="replace")
    problems = [f"{path.name}: key-like value {m.group(0)[:12]}... at offset {m.start()}"
                for m in LEAK_PATTERN.finditer(text)]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return problems + [f"{path.name}: not YAML ({exc})"]
    interactions = doc.get("interactions") if isinstance(doc, dict) else None
    if not isinstance(interactions, list):
        return problems + [f"{path.name}: not a vcrpy cassette (no interactions list)"]
    for number, interaction in enumerate(interactions, 1):
        where = f"{path.name} #{number}"
        request = interaction.get("request") or {}
        response = interaction.get("response") or {}
        uri = str(request.get("uri", ""))
        if not uri.startswith(CANONICAL_BASE_URL + "/"):
            problems.append(f"{where}: request URI {uri!r} is not under {CANONICAL_BASE_URL}")
        for name, values in (request.get("headers") or {}).items():
            if name.lower() in SECRET_REQUEST_HEADERS:
                if any(v != KEY_PLACEHOLDER for v in _as_list(values)):
                    problems.append(f"{where}: request header {name} is not {KEY_PLACEHOLDER}")
        for name in (response.get("headers") or {}):
            if name.lower() in DROPPED_RESPONSE_HEADERS:
                problems.append(f"{where}: response header {name} was kept")
        for label, body in (("request", request.get("body")), ("response", (response.get("body") or {}).get("string"))):
            if not isinstance(body, str) or not body.strip():
                continue
            try:
                data = json.loads(body)
            except ValueError:
                continue
            _, found = scrub_json(data)
            if found:
                problems.append(f"{where}: {label} body has {len(found)} secret field(s) not replaced")
    return problems


def _as_list(values: Any) -> list[Any]:
    return list(values) if isinstance(values, (list, tuple)) else [values]


# -- where the requests go -------------------------------------------------------


def recording(config: Any) -> bool:
    """True when pytest runs with a record mode other than ``none``."""
    return config.getoption("--record-mode") not in (None, "none")


def recording_real_api(config: Any) -> bool:
    """True when recording against the real GEN API (a key in ``$GEN_RECORD_API_KEY``)."""
    return recording(config) and bool(os.environ.get(RECORD_KEY_ENV))


@dataclass
class GenTarget:
    """The GEN a cassette test talks to: a sandbox, the real API, or (replay) the cassette.

    ``client`` is signed in (in replay with the placeholder key, at the canonical
    URL). ``waits`` lists every back-off delay the client asked for; the delays
    are really slept only while recording.
    """

    mode: str  # "replay", "sandbox" or "real"
    client: GenClient
    sandbox: Sandbox | None
    waits: list[float]
    _stack: ExitStack
    _retry: RetryPolicy

    @property
    def recording(self) -> bool:
        return self.mode != "replay"

    def inject_fault(self, status: int | None = None, **kwargs: Any) -> None:
        """``Sandbox.inject_fault`` while recording against the sandbox; nothing in replay.

        Runs in Python, outside any HTTP, so the cassette holds only what the
        client saw. Tests calling it are marked sandbox-only and never get here
        against the real API.
        """
        if self.mode == "sandbox":
            assert self.sandbox is not None
            self.sandbox.inject_fault(status, **kwargs)
        elif self.mode == "real":
            raise RuntimeError("fault injection needs the sandbox; mark this test sandbox_only")

    def client_with_key(self, api_key: str) -> GenClient:
        """Another client to the same place, sending ``api_key`` (closed at teardown)."""
        return self._stack.enter_context(self._new_client(api_key))

    def _new_client(self, api_key: str, base_url: str | None = None) -> GenClient:
        client = GenClient(api_key=api_key, base_url=base_url or self.client.base_url, retry=self._retry,
                           timeout=(5.0, 30.0), sleep=self._sleep)
        if self.mode == "real":
            # Only encodings vcrpy can decode, so the scrubber can read every body.
            client.session.headers["Accept-Encoding"] = "gzip, deflate"
        return client

    def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.recording:
            time.sleep(seconds)


@contextmanager
def open_gen_target(record_mode: str, scrubber: Scrubber, *, retry: RetryPolicy,
                    variant: str = "reference") -> Iterator[GenTarget]:
    """The target for one cassette test, chosen from the record mode and the environment."""
    with ExitStack() as stack:
        if record_mode == "none":
            mode, sandbox, key, base_url = "replay", None, KEY_PLACEHOLDER, CANONICAL_BASE_URL
        elif os.environ.get(RECORD_KEY_ENV):
            if variant != "reference":
                raise RuntimeError(f"the {variant!r} variant exists only in the sandbox; mark the test sandbox_only")
            mode, sandbox = "real", None
            key = os.environ[RECORD_KEY_ENV]
            base_url = os.environ.get(RECORD_URL_ENV) or CANONICAL_BASE_URL
        else:
            mode = "sandbox"
            sandbox = stack.enter_context(Sandbox(variant=variant, clock=lambda: SANDBOX_NOW))
            key, base_url = sandbox.api_key, sandbox.base_url
        scrubber.base_url = base_url
        scrubber.remember(key, KEY_PLACEHOLDER)
        target = GenTarget(mode, None, sandbox, [], stack, retry)  # type: ignore[arg-type]
        target.client = stack.enter_context(target._new_client(key, base_url))
        yield target


def interactions(cassette: Any) -> list[str]:
    """``"METHOD /path"`` (below /v1) of every request in the cassette, in order."""
    out = []
    for request in cassette.requests:
        parts = urlsplit(request.uri)
        path = parts.path[len("/v1"):] if parts.path.startswith("/v1") else parts.path
        out.append(f"{request.method} {path}" + (f"?{parts.query}" if parts.query else ""))
    return out


def assert_requests(cassette: Any, *expected: str) -> None:
    """The cassette holds exactly these requests, and in replay each was played once."""
    assert interactions(cassette) == list(expected)
    if cassette.rewound:  # loaded from disk: replaying
        assert cassette.play_count == len(expected)
        assert cassette.all_played
