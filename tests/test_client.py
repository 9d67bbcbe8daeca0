"""GenClient over real loopback HTTP against the sandbox: errors, retries, timeouts, unknown outcomes.

No mocks: every request goes through ``requests`` to a real server. Faults come from
``Sandbox.inject_fault``. A counting transport adapter (a real ``HTTPAdapter``) tells
how many requests left the client, and an injected ``sleep`` records the back-off
waits instead of spending them.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from contextlib import contextmanager

import pytest
import requests

import gen_nodes
from gen_nodes.client.http import DEFAULT_BASE_URL, GenClient, RetryPolicy
from gen_nodes.core.errors import (AuthenticationError, ConnectionFailed, GenError, NotFound, OutcomeUnknown, PermissionDenied, RateLimited, Rejected, RequestTimeout, ServerError)
from gen_nodes.core.terms import CLI_TERMS
from gen_nodes.sandbox import Sandbox

from client_support import FAST_RETRY, counting_session


class Sleeps(list):
    """An injected ``sleep`` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(sandbox: Sandbox | None = None, *, api_key: str | None = None, base_url: str | None = None,
                retry: RetryPolicy = FAST_RETRY, timeout=(2.0, 5.0)):
    session, adapter = counting_session()
    sleeps = Sleeps()
    client = GenClient(
        api_key=api_key if api_key is not None else sandbox.api_key,
        base_url=base_url or sandbox.base_url,
        retry=retry,
        timeout=timeout,
        session=session,
        sleep=sleeps,
    )
    return client, adapter, sleeps


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def bootstrap_key(sandbox: Sandbox) -> dict:
    [key] = [k for k in sandbox.store.list_keys(sandbox.user["id"]) if k["name"] == "sandbox bootstrap"]
    return key


@pytest.fixture
def counted(sandbox):
    client, adapter, sleeps = make_client(sandbox)
    with client:
        yield client, adapter, sleeps


# -- configuration ----------------------------------------------------------------


def test_user_agent_names_the_package_and_version(sandbox, counted):
    client, adapter, _ = counted
    seen = {}
    client.session.hooks["response"].append(lambda r, *a, **k: seen.update(r.request.headers))
    response = client.request("GET", "/me")
    assert response.status == 200 and response.data["id"] == sandbox.user["id"]
    assert seen["User-Agent"].startswith(f"gen-nodes/{gen_nodes.__version__} ")
    assert gen_nodes.__version__ == "0.1.0"
    assert seen["Accept"] == "application/json"
    assert seen["X-API-Key"] == sandbox.api_key  # sent as a header, and only there
    assert adapter.sent == [("GET", "/v1/me")]


def test_defaults_come_from_the_environment(sandbox, monkeypatch):
    monkeypatch.setenv("GEN_API_KEY", sandbox.api_key)
    monkeypatch.setenv("GEN_BASE_URL", sandbox.base_url + "/")
    with GenClient() as client:
        assert client.base_url == sandbox.base_url  # trailing slash dropped
        assert client.timeout == (5.0, 30.0)
        assert client.request("GET", "/me").data["email"] == sandbox.user["email"]
    # The one-line Python entry point reads the same variables.
    assert gen_nodes.run("get_me")["id"] == sandbox.user["id"]
    # Arguments win over the environment.
    monkeypatch.setenv("GEN_API_KEY", "gen_pat_wrong")
    assert gen_nodes.run("get_me", api_key=sandbox.api_key)["id"] == sandbox.user["id"]
    with pytest.raises(AuthenticationError):
        gen_nodes.run("get_me")


def test_default_base_url_is_gen(monkeypatch):
    monkeypatch.delenv("GEN_BASE_URL", raising=False)
    assert GenClient(api_key="x").base_url == DEFAULT_BASE_URL == "https://api.gen.pro/v1"


def test_missing_key_is_refused_before_anything_is_sent(sandbox, monkeypatch):
    monkeypatch.delenv("GEN_API_KEY", raising=False)
    client, adapter, _ = make_client(sandbox, api_key="")
    with client, pytest.raises(AuthenticationError) as caught:
        client.request("GET", "/me")
    assert caught.value.type == "authentication" and caught.value.exit_code == 3
    assert "GEN_API_KEY" in caught.value.hint
    assert caught.value.status is None
    assert adapter.sent == []
    assert bootstrap_key(sandbox)["last_used_at"] is None


def test_session_and_connection_are_reused(sandbox, counted):
    client, adapter, _ = counted
    session = client.session
    for _ in range(5):
        client.request("GET", "/me")
    client.request("GET", "/persisted_tokens")
    assert client.session is session
    assert adapter.count() == 6
    pools = [adapter.poolmanager.pools[key] for key in adapter.poolmanager.pools.keys()]
    assert len(pools) == 1
    assert pools[0].num_requests == 6
    assert pools[0].num_connections == 1  # one TCP connection for all six requests


# -- error statuses ---------------------------------------------------------------


def test_401_is_an_authentication_error_and_not_retried(sandbox):
    client, adapter, sleeps = make_client(sandbox, api_key="gen_pat_" + "x" * 40)
    with client, pytest.raises(AuthenticationError) as caught:
        client.request("GET", "/me")
    error = caught.value
    assert (error.type, error.exit_code, error.status, error.error_code) == ("authentication", 3, 401, "unauthorized")
    assert error.message == "Invalid, revoked or expired API key"
    assert "GEN_API_KEY" in error.hint
    assert adapter.count() == 1 and sleeps == []
    assert error.to_dict()["type"] == "authentication"


def test_403_is_permission_denied(sandbox, counted):
    client, adapter, sleeps = counted
    sandbox.inject_fault(403, body={"error": "Not allowed for this key", "error_code": "permission_denied"})
    with pytest.raises(PermissionDenied) as caught:
        client.request("GET", "/persisted_tokens")
    error = caught.value
    assert (error.type, error.exit_code, error.status) == ("permission", 3, 403)
    assert (error.error_code, error.message) == ("permission_denied", "Not allowed for this key")
    assert adapter.count() == 1 and sleeps == []


def test_404_is_not_found(sandbox, counted):
    client, adapter, _ = counted
    with pytest.raises(NotFound) as caught:
        client.request("PATCH", "/persisted_tokens/424242", json={"persisted_token": {"name": "x"}})
    error = caught.value
    assert (error.type, error.exit_code, error.status, error.error_code) == ("not_found", 4, 404, "not_found")
    assert error.message == "Token not found"
    assert "list_api_keys" in error.hint
    assert adapter.count() == 1


def test_422_from_the_server_is_rejected_and_not_retried(sandbox, counted):
    client, adapter, sleeps = counted
    with pytest.raises(Rejected) as caught:
        client.request("POST", "/persisted_tokens", json={"expires_in": "soon"}, safe_to_retry=False)
    error = caught.value
    assert (error.type, error.status, error.error_code) == ("rejected", 422, "validation_error")
    assert "expires_in" in error.message
    assert adapter.count() == 1 and sleeps == []


def test_error_body_without_error_code(sandbox, counted):
    client, _, _ = counted
    sandbox.inject_fault(422, body={"error": "Name has already been taken"})
    with pytest.raises(Rejected) as caught:
        client.request("GET", "/me")
    assert caught.value.message == "Name has already been taken"
    assert caught.value.error_code is None
    assert caught.value.to_dict()["error_code"] is None


def test_html_error_page_becomes_a_readable_message(sandbox, counted):
    client, adapter, sleeps = counted
    page = ("<html><head><title>502 Bad Gateway</title></head>\n<body><center><h1>502 Bad Gateway</h1>"
            "</center><hr><center>nginx</center></body></html>")
    sandbox.inject_fault(502, body=page, times=3)
    with pytest.raises(ServerError) as caught:
        client.request("GET", "/me")
    message = caught.value.message
    assert message.startswith("GEN answered 502 Bad Gateway")
    assert "502 Bad Gateway 502 Bad Gateway nginx" in message
    assert "<" not in message and "\n" not in message
    assert caught.value.error_code is None and caught.value.status == 502
    assert adapter.count() == 3 and len(sleeps) == 2


def test_empty_error_body(sandbox, counted):
    client, _, _ = counted
    sandbox.inject_fault(404)
    with pytest.raises(NotFound) as caught:
        client.request("GET", "/me")
    assert caught.value.message == "GEN answered 404 Not Found"


# -- retries ----------------------------------------------------------------------


def test_429_with_retry_after_is_retried_then_succeeds(sandbox, counted):
    client, adapter, sleeps = counted
    sandbox.inject_fault(429, times=2, body={"error": "Slow down", "error_code": "rate_limited"},
                         headers={"Retry-After": "1"})
    response = client.request("GET", "/me")
    assert response.status == 200 and response.data["id"] == sandbox.user["id"]
    assert sleeps == [1.0, 1.0]  # Retry-After honoured exactly
    assert adapter.count() == 3


def test_429_every_time_is_rate_limited_with_retry_after(sandbox, counted):
    client, adapter, sleeps = counted
    sandbox.inject_fault(429, times=5, body={"error": "Slow down", "error_code": "rate_limited"},
                         headers={"Retry-After": "2"})
    with pytest.raises(RateLimited) as caught:
        client.request("GET", "/persisted_tokens")
    error = caught.value
    assert (error.type, error.exit_code, error.status, error.error_code) == ("rate_limited", 5, 429, "rate_limited")
    assert error.retry_after == 2.0 and error.to_dict()["retry_after"] == 2.0
    assert "wait 2 seconds" in error.hint
    assert adapter.count() == FAST_RETRY.attempts and sleeps == [2.0, 2.0]


def test_retry_after_above_the_cap_gives_up_at_once(sandbox, counted):
    client, adapter, sleeps = counted
    sandbox.inject_fault(429, times=3, body={"error": "Slow down"}, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited) as caught:
        client.request("GET", "/me")
    assert caught.value.retry_after == 3600.0
    assert "3600" in caught.value.hint
    assert adapter.count() == 1 and sleeps == []


def test_429_without_retry_after_backs_off_exponentially(sandbox):
    policy = RetryPolicy(attempts=4, backoff=0.001, max_backoff=0.003)
    client, adapter, sleeps = make_client(sandbox, retry=policy)
    sandbox.inject_fault(429, times=3)
    with client:
        assert client.request("GET", "/me").status == 200
    assert adapter.count() == 4 and len(sleeps) == 3
    # Half fixed, half jitter, doubling, capped.
    assert 0.0005 <= sleeps[0] <= 0.001
    assert 0.001 <= sleeps[1] <= 0.002
    assert 0.0015 <= sleeps[2] <= 0.003


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", "/persisted_tokens", None),
        ("PATCH", "/persisted_tokens/{key}", {"persisted_token": {"name": "renamed"}}),
        ("DELETE", "/persisted_tokens/{key}/revoke", None),
    ],
)
@pytest.mark.parametrize("status", [502, 503, 504])
def test_5xx_retried_for_idempotent_methods_then_succeeds(sandbox, counted, method, path, json, status):
    client, adapter, sleeps = counted
    key = bootstrap_key(sandbox)["id"]
    sandbox.inject_fault(status, times=2, method=method, body={"error": "upstream trouble"})
    response = client.request(method, path.format(key=key), json=json)
    assert response.status in (200, 204)
    assert adapter.count(method) == 3 and len(sleeps) == 2
    if method == "PATCH":
        assert response.data["name"] == "renamed"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_5xx_every_time_is_a_server_error_after_the_attempts(sandbox, counted, method):
    client, adapter, sleeps = counted
    sandbox.inject_fault(503, times=10, method=method, body={"error": "Service Unavailable",
                                                             "error_code": "unavailable"})
    with pytest.raises(ServerError) as caught:
        client.request(method, {"GET": "/me", "PATCH": "/persisted_tokens/1", "DELETE": "/persisted_tokens/1/revoke"}[method],
                       json={"persisted_token": {"name": "x"}} if method == "PATCH" else None)
    error = caught.value
    assert (error.type, error.exit_code, error.status, error.error_code) == ("server_error", 5, 503, "unavailable")
    assert error.details["attempts"] == FAST_RETRY.attempts
    assert adapter.count(method) == FAST_RETRY.attempts and len(sleeps) == FAST_RETRY.attempts - 1


def test_500_is_retried_only_if_configured(sandbox, counted):
    client, adapter, _ = counted
    sandbox.inject_fault(500, times=3, body={"error": "boom"})
    with pytest.raises(ServerError):
        client.request("GET", "/me")
    assert adapter.count() == 1  # 500 is not in the retried statuses


def test_connection_refused_is_retried_then_connection_failed(sandbox):
    url = closed_port_url()
    client, adapter, sleeps = make_client(sandbox, base_url=url)
    with client, pytest.raises(ConnectionFailed) as caught:
        client.request("GET", "/me")
    error = caught.value
    assert (error.type, error.exit_code, error.status) == ("connection", 5, None)
    assert url in error.message and "3 attempt(s)" in error.message
    assert "GEN_BASE_URL" in error.hint
    assert adapter.count() == 3 and len(sleeps) == 2


def test_read_timeout_on_get_is_retried_then_request_timeout(sandbox):
    client, adapter, sleeps = make_client(sandbox, timeout=(2.0, 0.15))
    sandbox.inject_fault(delay=1.0, times=3, method="GET", path="/me")
    started = time.perf_counter()
    with client, pytest.raises(RequestTimeout) as caught:
        client.request("GET", "/me")
    assert time.perf_counter() - started < 2.0
    error = caught.value
    assert (error.type, error.exit_code) == ("timeout", 5)
    assert "3 attempt(s)" in error.message and "timeout=" in error.hint
    assert "--timeout" in error.to_dict(CLI_TERMS)["hint"]
    assert adapter.count("GET") == 3 and len(sleeps) == 2


def test_read_timeout_then_answer_succeeds(sandbox):
    client, adapter, _ = make_client(sandbox, timeout=(2.0, 0.15))
    sandbox.inject_fault(delay=1.0, times=1, method="GET", path="/me")
    with client:
        assert client.request("GET", "/me").data["id"] == sandbox.user["id"]
    assert adapter.count() == 2


# -- POST: retried only when the server cannot have acted -------------------------------


def test_post_connection_refused_is_retried(sandbox):
    client, adapter, sleeps = make_client(sandbox, base_url=closed_port_url())
    with client, pytest.raises(ConnectionFailed) as caught:
        client.request("POST", "/persisted_tokens", json={"name": "ci"}, safe_to_retry=False)
    assert caught.value.details["attempts"] == 3
    assert adapter.count("POST") == 3 and len(sleeps) == 2


def test_post_429_is_retried_and_creates_one_key(sandbox, counted):
    client, adapter, sleeps = counted
    sandbox.inject_fault(429, times=1, method="POST", headers={"Retry-After": "0"})
    response = client.request("POST", "/persisted_tokens", json={"name": "after 429"}, safe_to_retry=False)
    assert response.status == 201 and response.data["name"] == "after 429"
    assert adapter.count("POST") == 2 and sleeps == [0.0]
    names = [k["name"] for k in sandbox.store.list_keys(sandbox.user["id"])]
    assert names.count("after 429") == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_5xx_is_outcome_unknown_without_retry(sandbox, counted, status):
    client, adapter, sleeps = counted
    sandbox.inject_fault(status, times=5, method="POST", body={"error": "Service Unavailable"})
    with pytest.raises(OutcomeUnknown) as caught:
        client.request("POST", "/persisted_tokens", json={"name": "ci"}, safe_to_retry=False)
    error = caught.value
    assert (error.type, error.exit_code, error.status) == ("outcome_unknown", 7, status)
    assert error.details["server_message"] == "Service Unavailable"
    assert "Do not simply retry" in error.hint
    assert adapter.count("POST") == 1 and sleeps == []


def test_post_dropped_after_the_server_acted_is_outcome_unknown(sandbox, counted):
    client, adapter, sleeps = counted
    sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
    with pytest.raises(OutcomeUnknown) as caught:
        client.request("POST", "/persisted_tokens", json={"name": "ci"}, safe_to_retry=False)
    assert caught.value.status is None and "may or may not" in caught.value.message
    assert adapter.count("POST") == 1 and sleeps == []
    # The server did create it: that is exactly why a retry would have been wrong.
    assert [k["name"] for k in sandbox.store.list_keys(sandbox.user["id"])].count("ci") == 1


def test_post_read_timeout_is_outcome_unknown_without_retry(sandbox):
    client, adapter, sleeps = make_client(sandbox, timeout=(2.0, 0.15))
    sandbox.inject_fault(delay=0.5, method="POST", path="/persisted_tokens")
    with client, pytest.raises(OutcomeUnknown) as caught:
        client.request("POST", "/persisted_tokens", json={"name": "slow"}, safe_to_retry=False)
    assert "ReadTimeout" in caught.value.message
    assert adapter.count("POST") == 1 and sleeps == []


def test_no_retry_policy_sends_once(sandbox):
    client, adapter, sleeps = make_client(sandbox, retry=RetryPolicy(attempts=1))
    sandbox.inject_fault(503, times=2)
    with client, pytest.raises(ServerError):
        client.request("GET", "/me")
    assert adapter.count() == 1 and sleeps == []


# -- answer variants ------------------------------------------------------------------


def test_204_and_200_answers_are_read(sandbox, counted):
    client, _, _ = counted
    created = client.request("POST", "/persisted_tokens", json={"name": "x"}, safe_to_retry=False).data
    response = client.request("DELETE", f"/persisted_tokens/{created['id']}/revoke")
    assert (response.status, response.data, response.text) == (204, None, "")
    sandbox.inject_fault(200, method="DELETE", body={"message": "Token revoked"})
    response = client.request("DELETE", f"/persisted_tokens/{created['id']}/revoke")
    assert (response.status, response.data) == (200, {"message": "Token revoked"})
    sandbox.inject_fault(200, method="DELETE")
    response = client.request("DELETE", f"/persisted_tokens/{created['id']}/revoke")
    assert (response.status, response.data) == (200, None)


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " "])
def test_key_with_trailing_whitespace_is_not_a_connection_problem(sandbox, suffix):
    """A key read from a file or a CRLF .env keeps its line end; that is no reason to retry
    4 times and then blame the network. Either the key is used trimmed, or it is refused at
    once as an authentication problem; nothing is retried."""
    client, adapter, sleeps = make_client(sandbox, api_key=sandbox.api_key + suffix)
    with client:
        try:
            assert client.request("GET", "/me").data["id"] == sandbox.user["id"]
        except AuthenticationError as exc:
            assert sandbox.api_key not in str(exc) + repr(exc)
        assert sleeps == []
        assert adapter.count() <= 1


@contextmanager
def recording_server(status: int = 200, headers: dict[str, str] | None = None):
    """A loopback HTTP server that answers every request alike and records the headers it got."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            seen.append({k.lower(): v for k, v in self.headers.items()}
                        | {"(request)": f"{self.command} {self.path} {self.rfile.read(length)!r}"})
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("method, safe", [("GET", True), ("POST", False)])
def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(method, safe):
    with recording_server() as (elsewhere, elsewhere_saw):
        with recording_server(302, {"Location": elsewhere + "/v1/persisted_tokens"}) as (base, _):
            client = GenClient(api_key="gen_pat_" + "k" * 40, base_url=base + "/v1", retry=FAST_RETRY)
            with pytest.raises(GenError) as caught:
                client.request(method, "/persisted_tokens", safe_to_retry=safe)
    assert caught.value.status == 302 and elsewhere in caught.value.message
    assert elsewhere_saw == []
    if safe:
        assert caught.value.type == "api_error" and "GEN_BASE_URL" in caught.value.hint
    else:  # a create answered with a redirect most likely happened
        assert isinstance(caught.value, OutcomeUnknown)


def test_proxy_settings_are_read_once_when_the_client_is_made(monkeypatch):
    """requests reads HTTP_PROXY, NO_PROXY and the rest again on every call (walking the whole
    environment); the client reads them once, with requests' own functions, when it is made."""
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with recording_server() as (proxy, proxy_saw):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        client = GenClient(api_key="gen_pat_" + "k" * 40, base_url="http://gen.invalid/v1", retry=FAST_RETRY)
        monkeypatch.setenv("HTTP_PROXY", closed_port_url())  # too late for this client
        assert client.request("GET", "/persisted_tokens").data == {}
        client.close()
    assert [seen["host"] for seen in proxy_saw] == ["gen.invalid"], "the proxy set when it was made"


def test_the_lean_session_sends_what_requests_own_session_would(monkeypatch, tmp_path):
    """The client's own session prepares each request at once instead of merging its settings again
    (``_GenSession``): what reaches the server (method, path and query, body, headers, netrc
    credentials) is what requests' ``Session.request`` sends; so is a cookie the server set."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    def both(server_headers=None):
        with recording_server(headers=server_headers) as (base, saw):
            for session in (None, requests.Session()):
                client = GenClient(api_key="gen_pat_" + "k" * 40, base_url=base + "/v1", retry=FAST_RETRY,
                                   session=session)
                client.request("POST", "/persisted_tokens", json={"name": "x"}, params={"a": "1"},
                               safe_to_retry=False)
                client.request("GET", "/persisted_tokens", params={"b": "2"})
                client.close()
        return saw

    saw = both()
    assert len(saw) == 4 and saw[:2] == saw[2:], "the same requests, header for header"
    assert saw[0]["(request)"] == """POST /v1/persisted_tokens?a=1 b'{"name": "x"}'"""
    assert saw[1]["(request)"] == "GET /v1/persisted_tokens?b=2 b''"
    assert saw[0]["authorization"].startswith("Basic ") and "cookie" not in saw[0]
    saw = both({"Set-Cookie": "seen=1; Path=/"})
    assert saw[:2] == saw[2:] and saw[1]["cookie"] == "seen=1", "a cookie the server set goes back, as requests does"


def test_a_session_header_set_to_none_is_dropped_as_requests_drops_it():
    """requests' way to remove a default header (``session.headers[name] = None``) still works on the
    client's own session: it goes through ``Session.request`` then."""
    with recording_server() as (base, saw):
        client = GenClient(api_key="gen_pat_" + "k" * 40, base_url=base + "/v1", retry=FAST_RETRY)
        client.session.headers["Accept-Encoding"] = None
        assert client.request("GET", "/persisted_tokens").data == {}
        client.close()
    # requests' default (gzip, deflate) is gone; http.client's own "identity" stands in, as with requests
    assert saw[0]["accept-encoding"] == "identity" and type(client.session).__name__ == "_GenSession"


@pytest.mark.parametrize("base_url", ["http://[::1", "nonsense"])
def test_a_base_url_that_is_no_url_is_refused_at_the_first_request_with_a_hint(base_url):
    """Reading the proxy settings for the base URL (when the client is made) must not turn a broken
    base URL into a bare ValueError: the request refuses it, naming the setting, as before."""
    client = GenClient(api_key="gen_pat_" + "k" * 40, base_url=base_url, retry=FAST_RETRY)
    with pytest.raises(ConnectionFailed, match="nothing was sent") as caught:
        client.request("GET", "/persisted_tokens")
    assert "BASE_URL" in caught.value.hint


def test_the_repr_of_an_answer_holds_no_created_secret(client):
    answer = client.request("POST", "/persisted_tokens", json={"name": "repr"}, safe_to_retry=False)
    token = answer.data["token"]
    assert token not in repr(answer)


@pytest.mark.parametrize("key", ["gen_pat_\u201cQZX9secret\u201d", "gen_pat_QZX9secret\x00"])
def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it(sandbox, key):
    client = GenClient(api_key=key, base_url=sandbox.base_url, retry=FAST_RETRY)
    with pytest.raises(AuthenticationError) as caught:
        client.request("GET", "/me")
    assert "QZX9" not in str(caught.value) and "QZX9" not in repr(caught.value)
    assert "nothing was sent" in caught.value.message
