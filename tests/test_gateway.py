"""The HTTP gateway in this process (Starlette's ``TestClient``) in front of a real sandbox on loopback.

The document, every action, each error's status and body, idempotent creates (replay of the
secret, once; conflicts; ``outcome_unknown`` replayed, never re-sent; retries of what certainly
failed), the approval flow, and what reaches the logs. The live server, schemathesis, two
processes on one Redis and n8n are in ``test_gateway_live.py``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import pytest

pytest.importorskip("starlette")

from openapi_spec_validator import validate  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from gen_nodes.core import errors  # noqa: E402
from gen_nodes.surfaces.gateway import openapi  # noqa: E402
from gen_nodes.surfaces.gateway.app import build_app  # noqa: E402
from gen_nodes.client.http import GenClient  # noqa: E402
from gen_nodes.core.registry import Registry, default_registry  # noqa: E402
from gen_nodes.sandbox.store import TOKEN_ALPHABET, TOKEN_LENGTH, TOKEN_PREFIX  # noqa: E402
from gen_nodes.core.spec import ActionSpec, Hints  # noqa: E402

from approval_support import CSRF, Inbox, Unreachable  # noqa: E402
from client_support import FAST_RETRY  # noqa: E402
from key_age_support import names, seed_key_ages  # noqa: E402

FULL_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + f"[{TOKEN_ALPHABET}]{{{TOKEN_LENGTH}}}")


@pytest.fixture
def make_gateway(sandbox):
    opened = []

    def make(**options: Any) -> TestClient:
        options.setdefault("store_url", "memory://")
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("timeout", (2.0, 5.0))
        client = TestClient(build_app(base_url=sandbox.base_url, **options), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def gw(make_gateway):
    return make_gateway()


@pytest.fixture
def auth(sandbox):
    return {"X-API-Key": sandbox.api_key}


def keys_named(sandbox, name: str) -> list[dict[str, Any]]:
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        listed = default_registry().run("list_api_keys", {}, client=client)["api_keys"]
    return [key for key in listed if key["name"] == name]


def error_of(response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == type_
    assert body["error"]["message"] and body["error"]["hint"]
    return body["error"]


# -- the document ---------------------------------------------------------------------------------


@pytest.mark.parametrize("confirmation", ["direct", "approval"])
def test_the_document_is_valid_openapi_3_1_with_one_operation_per_action(make_gateway, confirmation):
    doc = make_gateway(confirmation=confirmation).get("/openapi.json").json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "http://testserver"}]
    ops = {path: item["post"] for path, item in doc["paths"].items() if path.startswith("/actions/")}
    assert sorted(op["operationId"] for op in ops.values()) == sorted(default_registry().ids())
    for spec in default_registry():
        op = ops[f"/actions/{spec.id}"]
        assert (op["operationId"], op["summary"], op["description"]) == (spec.id, spec.title, spec.description)
        assert len(op["description"]) <= 300  # GPT Actions' limit
        assert op["x-gen-hints"] == {"read_only": spec.hints.read_only, "destructive": spec.hints.destructive,
                                     "idempotent": spec.hints.idempotent, "open_world": spec.hints.open_world}
        assert op["x-openai-isConsequential"] is (not spec.hints.read_only)
        if spec.hints.destructive:
            assert op["x-openai-isConsequential"] is True
        assert ("202" in op["responses"]) is (spec.hints.destructive and confirmation == "approval")
        assert ("424" in op["responses"]) is (not spec.hints.safe_to_retry)
        # The key as a query parameter, never a header one: importers show the model every parameter
        # and some forward only path and query ones (test_gateway_live: Open WebUI's own code).
        parameters = [(p["name"], p["in"]) for p in op.get("parameters", [])]
        assert parameters == ([] if spec.hints.read_only else [("idempotency_key", "query")])
    security = doc["components"]["securitySchemes"]
    assert security["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                  "description": security["apiKey"]["description"]}
    assert (security["bearer"]["type"], security["bearer"]["scheme"]) == ("http", "bearer")
    assert ("/approvals/{approval_id}" in doc["paths"]) is (confirmation == "approval")


DOCUMENT_IN_A_FRESH_PROCESS = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
from gen_nodes.surfaces.gateway import openapi
from gen_nodes.core.registry import default_registry
print(json.dumps(openapi.document(default_registry(), confirmation="approval"), sort_keys=True))
"""


def test_the_document_does_not_depend_on_what_was_imported_before():
    import subprocess
    import sys

    def document_after(*modules: str) -> str:
        return subprocess.run([sys.executable, "-c", DOCUMENT_IN_A_FRESH_PROCESS, *modules], check=True,
                              capture_output=True, text=True, timeout=120).stdout

    alone = document_after()
    assert document_after("gen_nodes.safety.approvals", "gen_nodes.net.serve", "gen_nodes.surfaces.gateway.app") == alone
    assert json.loads(alone) == openapi.document(default_registry(), confirmation="approval")  # this process too


@pytest.mark.parametrize("confirmation", ["direct", "approval"])
def test_each_route_lists_exactly_the_errors_the_gateway_answers(make_gateway, confirmation):
    doc = make_gateway(confirmation=confirmation).get("/openapi.json").json()
    create = doc["paths"]["/actions/create_api_key"]["post"]["responses"]
    assert create["502"]["description"] == "Error: api_error, server_error, connection, response_too_large."
    assert create["400"]["description"] == "Error: invalid_input."
    answered = {cls.type for cls in openapi.ANSWERED_ERRORS}
    for item in doc["paths"].values():
        for op in item.values():
            for status, response in op["responses"].items():
                if status.startswith("2"):
                    continue
                types = response["description"].removeprefix("Error: ").rstrip(".").split(", ")
                assert set(types) <= answered, (op["operationId"], status, types)
                assert "cannot_serve" not in types and "approval" not in types  # never an HTTP answer
    revoke = doc["paths"]["/actions/revoke_api_key"]["post"]["responses"]
    held = confirmation == "approval"  # a repeat of a held call answers the approval's state
    assert ("410" in revoke) is held and ("denied" in revoke["403"]["description"]) is held
    assert "400" not in doc["paths"]["/actions/get_me"]["post"]["responses"]  # reads take no key


def test_the_moved_error_classes_keep_their_old_import_names():
    from gen_nodes.core.errors import CannotServe
    from gen_nodes.safety.approvals import ApprovalError

    assert CannotServe is errors.CannotServe and ApprovalError is errors.ApprovalError


def test_bodies_are_flat_and_every_ref_stays_inside_the_document(gw):
    doc = gw.get("/openapi.json").json()
    refs = re.findall(r'"\$ref":\s*"([^"]*)"', json.dumps(doc))
    assert refs and all(ref.startswith("#/components/") for ref in refs)
    for path, item in doc["paths"].items():
        for op in item.values():
            if "requestBody" not in op:
                continue
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert schema["type"] == "object" and "properties" in schema
            assert not {"oneOf", "anyOf", "allOf", "$ref", "$id", "$schema"} & set(schema), path
            for name, prop in schema["properties"].items():
                assert prop.get("type") != "object", f"{path}: {name} is a nested object"
                assert "description" in prop
    for name, status in [("invalid_input", "422"), ("not_found", "404"), ("rate_limited", "429"),
                         ("timeout", "504"), ("outcome_unknown", "424"), ("authentication", "401")]:
        described = doc["paths"]["/actions/create_api_key"]["post"]["responses"][status]["description"]
        assert name in described
    assert "Retry-After" in doc["paths"]["/actions/get_me"]["post"]["responses"]["429"]["headers"]


def test_a_plugin_action_is_served_and_documented(sandbox, auth):
    me = default_registry().get("get_me")
    plugin = ActionSpec(id="whoami", title="Who am I", description="The same as get_me, from a plugin.",
                        method="GET", path="/me", input_schema=me.input_schema, output_schema=me.output_schema,
                        hints=Hints(read_only=True))
    registry = Registry([*default_registry(), plugin])
    with TestClient(build_app(registry, store_url="memory://", base_url=sandbox.base_url)) as client:
        doc = client.get("/openapi.json").json()
        assert doc["paths"]["/actions/whoami"]["post"]["operationId"] == "whoami"
        answer = client.post("/actions/whoami", headers=auth)
        assert answer.status_code == 200 and answer.json()["id"] == sandbox.user["id"]


def test_flat_merges_a_top_level_choice_into_one_object():
    schema = {"oneOf": [
        {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
         "required": ["id", "name"]},
        {"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string"}},
         "required": ["id"]},
    ]}
    flat = openapi.flat(schema)
    assert flat == {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}}}
    assert openapi.flat({"allOf": [{"properties": {"a": {}}, "required": ["a"]},
                                   {"properties": {"b": {}}, "required": ["b"]}]})["required"] == ["a", "b"]


def test_the_public_url_is_the_documents_server(make_gateway):
    doc = make_gateway(public_url="https://gen-gateway.example.com/").get("/openapi.json").json()
    assert doc["servers"] == [{"url": "https://gen-gateway.example.com"}]


# -- actions ----------------------------------------------------------------------------------------


def test_the_whole_lifecycle_gives_what_the_engine_gives(gw, auth, sandbox):
    call = lambda action, body=None: gw.post(f"/actions/{action}", headers=auth, json=body)  # noqa: E731
    me = call("get_me")
    assert me.status_code == 200 and me.json()["id"] == sandbox.user["id"]
    created = call("create_api_key", {"name": "gateway ci", "expires_in": "30d"})
    assert created.status_code == 200
    key = created.json()
    assert FULL_TOKEN.fullmatch(key["token"]) and key["name"] == "gateway ci"
    renamed = call("update_api_key", {"id": key["id"], "name": "gateway staging"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "gateway staging"
    assert "token" not in renamed.json()
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        direct = default_registry().run("list_api_keys", {"status": "active"}, client=client)
    over_http = call("list_api_keys", {"status": "active"}).json()
    unused = lambda listed: [{**k, "last_used_at": None} for k in listed["api_keys"]]  # noqa: E731  (moves on each call)
    assert unused(over_http) == unused(json.loads(json.dumps(direct))) and len(over_http["api_keys"]) == 2
    revoked = call("revoke_api_key", {"id": str(key["id"])})
    assert revoked.status_code == 200 and revoked.json() == {"id": str(key["id"]), "revoked": True}
    statuses = {k["id"]: k["status"] for k in call("list_api_keys").json()["api_keys"]}
    assert statuses[key["id"]] == "revoked"


def test_the_time_filters_are_in_the_body_and_refused_when_malformed(gw, auth, sandbox):
    seed_key_ages(sandbox)
    listed = gw.post("/actions/list_api_keys", headers=auth, json={"expiring_within": "7d"})
    assert listed.status_code == 200 and names(listed.json()) == ["soon"]
    assert names(gw.post("/actions/list_api_keys", headers=auth, json={"unused_for": "30d"}).json()) == ["old idle"]
    error = error_of(gw.post("/actions/list_api_keys", headers=auth, json={"expiring_within": "soon"}), 422,
                     "invalid_input")
    assert "$.expiring_within" in error["message"] and error["hint"]
    body = gw.get("/openapi.json").json()["paths"]["/actions/list_api_keys"]["post"]["requestBody"]
    assert {"status", "expiring_within", "unused_for"} == set(body["content"]["application/json"]["schema"]["properties"])


def test_an_action_with_no_required_input_may_be_called_without_a_body(gw, auth):
    assert gw.post("/actions/get_me", headers=auth, content=b"").status_code == 200
    assert gw.post("/actions/list_api_keys", headers=auth).status_code == 200
    error = error_of(gw.post("/actions/revoke_api_key", headers=auth, content=b""), 422, "invalid_input")
    assert "with at least id" in error["hint"]
    error_of(gw.post("/actions/get_me", headers=auth, content=b"\r\n"), 422, "invalid_input")  # not JSON


def test_a_whole_number_written_with_a_fraction_is_an_integer_as_the_document_says(gw, auth, sandbox):
    key = create(gw, auth, None, {"name": "float id"}).json()
    renamed = gw.post("/actions/update_api_key", headers=auth,
                      content=json.dumps({"id": key["id"], "name": "x"}).replace(f'": {key["id"]}', f'": {key["id"]}.0'))
    assert renamed.status_code == 200, renamed.text
    error_of(gw.post("/actions/update_api_key", headers=auth, content=b'{"id": 1.5, "name": "x"}'), 422,
             "invalid_input")


@pytest.mark.parametrize("body, path", [
    ({"name": ""}, "$.name"),
    ({"name": "x", "expires_in": "soon"}, "$.expires_in"),
    ({"name": "x", "colour": "red"}, "$"),
])
def test_bad_input_is_422_with_the_json_path_and_nothing_is_sent(gw, auth, sandbox, body, path):
    error = error_of(gw.post("/actions/create_api_key", headers=auth, json=body), 422, "invalid_input")
    assert path in [e["path"] for e in error["errors"]]
    assert keys_named(sandbox, "x") == []


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b'"text"', b"[" * 5000 + b"]" * 5000])
def test_a_body_that_is_not_a_json_object_is_422(gw, auth, raw):
    error_of(gw.post("/actions/create_api_key", headers=auth, content=raw), 422, "invalid_input")


def test_a_body_over_the_limit_is_413(gw, auth):
    error_of(gw.post("/actions/create_api_key", headers=auth, json={"name": "x" * 100_000}), 413, "invalid_input")


def test_a_request_without_a_key_is_401_in_the_same_error_shape(gw):
    error = error_of(gw.post("/actions/get_me"), 401, "authentication")
    assert "X-API-Key" in error["hint"]
    assert gw.post("/actions/get_me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_a_key_gen_refuses_is_401_with_a_hint_in_the_callers_terms(gw):
    error = error_of(gw.post("/actions/get_me", headers={"X-API-Key": "gen_pat_wrong"}), 401, "authentication")
    assert "GEN_API_KEY" not in error["hint"] and "X-API-Key" in error["hint"]


def test_a_bearer_key_works_like_x_api_key(gw, sandbox):
    answer = gw.post("/actions/get_me", headers={"Authorization": f"Bearer {sandbox.api_key}"})
    assert answer.status_code == 200 and answer.json()["id"] == sandbox.user["id"]


def test_each_request_acts_as_its_own_key(gw, sandbox):
    other, other_key = sandbox.create_user(email="other@example.com")
    mine = gw.post("/actions/get_me", headers={"X-API-Key": sandbox.api_key}).json()
    theirs = gw.post("/actions/get_me", headers={"X-API-Key": other_key}).json()
    assert (mine["id"], theirs["id"]) == (sandbox.user["id"], other["id"])


def test_not_found_is_404_with_gens_message(gw, auth):
    error = error_of(gw.post("/actions/update_api_key", headers=auth, json={"id": 999, "name": "z"}),
                     404, "not_found")
    assert (error["status"], error["message"]) == (404, "Token not found")


def test_rate_limited_is_429_with_retry_after(gw, auth, sandbox):
    sandbox.inject_fault(429, headers={"Retry-After": "120"}, body={"error": "Slow down", "error_code": "rate_limited"})
    answer = gw.post("/actions/list_api_keys", headers=auth)
    error = error_of(answer, 429, "rate_limited")
    assert answer.headers["retry-after"] == "120" and error["retry_after"] == 120


def test_an_upstream_failure_is_502(gw, auth, sandbox):
    sandbox.inject_fault(503, times=3, body="<html>Service Unavailable</html>")
    error = error_of(gw.post("/actions/list_api_keys", headers=auth), 502, "server_error")
    assert error["status"] == 503


def test_a_timeout_is_504(make_gateway, auth, sandbox):
    gw = make_gateway(timeout=(1.0, 0.2))
    sandbox.inject_fault(delay=1.0, times=3, method="GET")
    error_of(gw.post("/actions/list_api_keys", headers=auth), 504, "timeout")


def test_an_uncertain_create_is_424_with_the_candidates(gw, auth, sandbox):
    sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
    error = error_of(gw.post("/actions/create_api_key", headers=auth, json={"name": "maybe"}), 424, "outcome_unknown")
    assert [c["name"] for c in error["candidates"]] == ["maybe"]
    assert not FULL_TOKEN.search(json.dumps(error))


def test_unknown_paths_and_methods_answer_in_the_error_shape(gw, auth):
    error_of(gw.post("/actions/no_such_action", headers=auth), 404, "not_found")
    answer = gw.get("/actions/get_me", headers=auth)
    error_of(answer, 405, "invalid_input")
    assert answer.headers["allow"] == "POST"


def test_a_bug_is_a_500_without_its_text_in_the_answer_or_the_log(make_gateway, auth, caplog, monkeypatch):
    gw = make_gateway()
    from gen_nodes.surfaces.gateway import app as module

    def broken(*args, **kwargs):
        raise RuntimeError(f"boom with {auth['X-API-Key']}")

    monkeypatch.setattr(module, "execute", broken)
    with caplog.at_level(logging.DEBUG):
        answer = gw.post("/actions/get_me", headers=auth)
    assert answer.status_code == 500 and answer.json()["error"]["type"] == "api_error"
    assert "boom" not in answer.text and "boom" not in caplog.text and auth["X-API-Key"] not in caplog.text
    assert "RuntimeError" in caplog.text


# -- idempotency ------------------------------------------------------------------------------------


def create(gw, auth, idem: str | None, body: dict[str, Any]):
    headers = dict(auth, **({"Idempotency-Key": idem} if idem else {}))
    return gw.post("/actions/create_api_key", headers=headers, json=body)


def test_a_repeated_create_replays_the_first_answer_and_its_secret_once(gw, auth, sandbox):
    first = create(gw, auth, "req-1", {"name": "once"})
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = create(gw, auth, "req-1", {"name": "once"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the secret too: the first answer may have been lost
    third = create(gw, auth, "req-1", {"name": "once"})
    assert third.status_code == 200
    assert third.json()["token"] != first.json()["token"] and not FULL_TOKEN.search(third.text)
    assert third.json()["token"].endswith(first.json()["token"][-4:]) and third.json()["token_note"]
    assert len(keys_named(sandbox, "once")) == 1


def test_without_the_header_each_create_makes_a_key(gw, auth, sandbox):
    create(gw, auth, None, {"name": "twice"})
    create(gw, auth, None, {"name": "twice"})
    assert len(keys_named(sandbox, "twice")) == 2


def test_the_same_key_with_another_body_is_refused(gw, auth, sandbox):
    assert create(gw, auth, "req-2", {"name": "first"}).status_code == 200
    error_of(create(gw, auth, "req-2", {"name": "second"}), 422, "idempotency_conflict")
    assert keys_named(sandbox, "second") == []


def test_idempotency_keys_are_per_api_key(gw, sandbox):
    _, other_key = sandbox.create_user()
    a = create(gw, {"X-API-Key": sandbox.api_key}, "shared-id", {"name": "a"})
    b = create(gw, {"X-API-Key": other_key}, "shared-id", {"name": "a"})
    assert a.status_code == b.status_code == 200 and a.json()["id"] != b.json()["id"]


def test_an_uncertain_create_is_replayed_as_uncertain_never_sent_again(gw, auth, sandbox):
    sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
    first = create(gw, auth, "req-3", {"name": "uncertain"})
    error_of(first, 424, "outcome_unknown")
    again = create(gw, auth, "req-3", {"name": "uncertain"})
    assert again.status_code == 424 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(keys_named(sandbox, "uncertain")) == 1  # GEN saw one create, not two


def test_a_failure_that_sent_nothing_is_not_recorded_so_a_retry_runs(gw, auth, sandbox):
    sandbox.inject_fault(429, headers={"Retry-After": "120"}, method="POST")
    error_of(create(gw, auth, "req-4", {"name": "later"}), 429, "rate_limited")
    error_of(create(gw, auth, "req-4", {"name": ""}), 422, "invalid_input")  # bad input opens no record
    retried = create(gw, auth, "req-4", {"name": "later"})
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    assert len(keys_named(sandbox, "later")) == 1


def test_a_create_whose_record_cannot_be_written_still_delivers_the_key_and_is_never_sent_again(
        make_gateway, auth, sandbox, caplog):
    """The record is written after GEN answered (after the answer is sent): a store that fails then
    does not cost the caller the key GEN made; a repeat finds the call unfinished and sends nothing."""
    from gen_nodes.state import StoreError
    from gen_nodes.state.memory import MemoryStore

    class FailsToComplete(MemoryStore):
        def set(self, key, value, *, ttl):
            raise StoreError("Redis at 127.0.0.1:6379 failed: ConnectionError.")

    gw = make_gateway(store=FailsToComplete(), idempotency_wait=0.0)
    first = create(gw, auth, "req-5", {"name": "kept"})
    assert first.status_code == 200 and FULL_TOKEN.search(first.text)
    assert "could not be written (StoreError" in caplog.text and first.json()["token"] not in caplog.text
    error_of(create(gw, auth, "req-5", {"name": "kept"}), 409, "in_progress")
    assert len(keys_named(sandbox, "kept")) == 1


def test_the_record_is_written_after_the_answer_even_when_sending_it_fails():
    """A caller whose answer was lost on the way is the one whose repeat must find the record."""
    import anyio

    from gen_nodes.surfaces.gateway.app import _AnswerThenRecord, _Later

    events = []

    async def send(message):
        events.append(message["type"])
        if message["type"] == "http.response.body":
            raise OSError("the connection was reset")

    later = _Later()
    later(lambda: events.append("record"))
    with pytest.raises(OSError):
        anyio.run(_AnswerThenRecord({"id": 6}, 200, headers={}, later=later), {"type": "http"}, None, send)
    assert events == ["http.response.start", "http.response.body", "record"]


def test_on_a_real_server_the_answer_goes_out_before_the_record_and_a_repeat_waits_for_it(sandbox, auth):
    """Served by uvicorn: the caller has its answer while the record's write is still held; a repeat
    with the same key meanwhile waits for that write, then gets the first answer, not a second key."""
    import threading

    import requests

    from browser_support import Served
    from gen_nodes.state.memory import MemoryStore

    class HeldWrites(MemoryStore):
        def __init__(self):
            super().__init__()
            self.release, self.writing = threading.Event(), threading.Event()

        def set(self, key, value, *, ttl):
            self.writing.set()
            assert self.release.wait(10), "the test never released the write"
            super().set(key, value, ttl=ttl)

    store = HeldWrites()
    served = Served(build_app(base_url=sandbox.base_url, store=store, retry=FAST_RETRY))
    try:
        url, headers = served.url + "/actions/create_api_key", dict(auth, **{"Idempotency-Key": "req-held"})
        first = requests.post(url, headers=headers, json={"name": "held"}, timeout=10)
        assert first.status_code == 200 and not store.release.is_set(), "answered while the record is held"
        assert store.writing.wait(5)
        repeat = {}
        thread = threading.Thread(target=lambda: repeat.update(
            answer=requests.post(url, headers=headers, json={"name": "held"}, timeout=20)))
        thread.start()
        time.sleep(0.3)
        assert "answer" not in repeat, "the repeat waits for the record"
        store.release.set()
        thread.join(20)
    finally:
        store.release.set()
        served.stop()
    assert repeat["answer"].status_code == 200 and repeat["answer"].headers["idempotent-replayed"] == "true"
    assert repeat["answer"].json()["id"] == first.json()["id"] and len(keys_named(sandbox, "held")) == 1


def test_a_call_cut_off_by_a_server_shutdown_still_completes_its_record(make_gateway, auth, sandbox, monkeypatch):
    """uvicorn stopping cancels the requests still running after its grace period (``serve`` gives 5 s):
    the call goes on in its worker thread and, with no answer to send, completes its own record, so
    a repeat to the next gateway on the store gets the key GEN made, not a refusal."""
    import socket
    import threading

    import requests
    import uvicorn

    from gen_nodes.state.memory import MemoryStore

    monkeypatch.setenv("GEN_NODES_STATE_SECRET", "one-secret-for-both-gateways")  # the next one opens the record
    store = MemoryStore()
    sandbox.inject_fault(delay=1.0, method="POST", path="/persisted_tokens")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(build_app(base_url=sandbox.base_url, store=store, retry=FAST_RETRY),
                                           log_level="warning", timeout_graceful_shutdown=0.2))
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/actions/create_api_key"
    headers = dict(auth, **{"Idempotency-Key": "req-shutdown"})
    cut_off = []

    def call():
        try:  # uvicorn answers a cancelled request 500, or closes the connection
            cut_off.append(requests.post(url, headers=headers, json={"name": "cut off"}, timeout=10).status_code)
        except requests.RequestException as exc:
            cut_off.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)  # the create is at GEN, which answers at 1 s
    server.should_exit = True  # the grace period ends before GEN answers
    serving.join(10)
    caller.join(10)
    sock.close()
    assert cut_off and cut_off[0] != 200, "the caller got no answer"
    deadline = time.monotonic() + 10
    while not keys_named(sandbox, "cut off") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the worker thread completes the record once GEN has answered
    again = create(make_gateway(store=store), auth, "req-shutdown", {"name": "cut off"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert FULL_TOKEN.search(again.text) and len(keys_named(sandbox, "cut off")) == 1


def test_an_idempotency_key_that_is_too_long_is_400(gw, auth):
    error_of(create(gw, auth, "k" * 300, {"name": "x"}), 400, "invalid_input")


@pytest.mark.parametrize("where", ["header", "query"])
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_idempotency_key_is_refused_not_ignored(gw, auth, sandbox, where, value):
    name = f"empty-{where}-{len(value)}"
    if where == "header":
        answer = gw.post("/actions/create_api_key", headers=dict(auth, **{"Idempotency-Key": value}),
                         json={"name": name})
    else:
        answer = gw.post(f"/actions/create_api_key?idempotency_key={value}", headers=auth, json={"name": name})
    error = error_of(answer, 400, "invalid_input")
    assert "Idempotency-Key" in error["message"] and "uuid" in error["hint"]
    assert keys_named(sandbox, name) == []


def test_the_query_parameter_is_an_idempotency_key_like_the_header(gw, auth, sandbox):
    url = "/actions/create_api_key?idempotency_key=from-query"
    first = gw.post(url, headers=auth, json={"name": "queried"})
    again = gw.post(url, headers=auth, json={"name": "queried"})
    assert first.status_code == again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    by_header = create(gw, auth, "from-query", {"name": "queried"})  # the same key, however it is sent
    assert by_header.headers["idempotent-replayed"] == "true"
    both = gw.post(url, headers=dict(auth, **{"Idempotency-Key": "from-query"}), json={"name": "queried"})
    assert both.status_code == 200
    error_of(gw.post(url, headers=dict(auth, **{"Idempotency-Key": "other"}), json={"name": "queried"}),
             400, "invalid_input")
    assert len(keys_named(sandbox, "queried")) == 1


def test_the_secret_is_stored_encrypted(make_gateway, auth, tmp_path):
    db = tmp_path / "gateway.db"
    gw = make_gateway(store_url=f"sqlite:///{db}")
    token = create(gw, auth, "req-5", {"name": "sealed"}).json()["token"]
    gw.__exit__(None, None, None)
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("gateway.db*") if p != db)
    assert token.encode() not in raw and token[-20:].encode() not in raw
    assert b"$sealed" in raw


# -- approvals --------------------------------------------------------------------------------------


@pytest.fixture
def inbox():
    return Inbox()


@pytest.fixture
def approving(make_gateway, inbox):
    client = make_gateway(confirmation="approval", notify_targets=[inbox])
    return client, client.app.state.gateway


def click(gw, page_url: str, decision: str):
    """A person opening the approval link in a browser and pressing Approve or Deny."""
    page = gw.get(page_url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    token = CSRF.search(page.text).group(1)
    return gw.post(page_url, data={"csrf": token, "decision": decision}, follow_redirects=False)


def key_status(sandbox, key_id) -> str:
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        listed = default_registry().run("list_api_keys", {}, client=client)["api_keys"]
    return {str(k["id"]): k["status"] for k in listed}[str(key_id)]


def test_approval_mode_answers_202_and_runs_only_after_a_person_approves(approving, auth, sandbox, inbox):
    gw, _ = approving
    key = create(gw, auth, None, {"name": "doomed"}).json()
    asked = gw.post("/actions/revoke_api_key", headers=auth, json={"id": key["id"]})
    assert asked.status_code == 202
    approval = asked.json()["approval"]
    assert set(approval) == {"id", "state", "action", "poll", "expires_at", "preview"}
    assert approval["state"] == "pending" and approval["action"] == "revoke_api_key"
    assert [item["id"] for item in approval["preview"]] == [key["id"]]
    assert asked.headers["location"] == approval["poll"] == f"http://testserver/approvals/{approval['id']}"
    poll = gw.get(f"/approvals/{approval['id']}", headers=auth)
    assert poll.status_code == 202 and poll.headers["retry-after"]
    assert key_status(sandbox, key["id"]) == "active"

    notice = inbox.notice(approval["id"])  # what the person's channel got
    assert notice.title == "Revoke API key" and notice.action == "revoke_api_key"
    assert notice.account["email"] == "user1@sandbox.local" and notice.requested["surface"] == "gateway"
    assert notice.url.startswith("http://testserver/approve/") and approval["id"] not in notice.url
    page = gw.get(notice.url)  # a person's browser: no GEN key needed, nothing decided by looking
    assert page.status_code == 200 and str(key["id"]) in page.text and "Approve: Revoke API key" in page.text
    assert "Sandbox User 1" in page.text and "when the workflow next checks" in page.text
    assert gw.get(f"/approvals/{approval['id']}", headers=auth).status_code == 202
    assert click(gw, notice.url, "approve").status_code == 303
    assert key_status(sandbox, key["id"]) == "active"  # it runs when the runner polls, with the runner's key
    assert "runs when the workflow next checks" in gw.get(notice.url).text
    done = gw.get(f"/approvals/{approval['id']}", headers=auth)
    assert done.status_code == 200 and done.json() == {"id": key["id"], "revoked": True}
    assert key_status(sandbox, key["id"]) == "revoked"
    assert gw.get(f"/approvals/{approval['id']}", headers=auth).json() == done.json()  # kept for pollers
    assert "Approved and done" in gw.get(notice.url).text


def test_a_rotation_waits_for_the_person_who_sees_both_keys_then_runs_once(approving, auth, sandbox, inbox):
    """rotate_api_key, a composite, is held like a revoke: the page shows what each step does."""
    gw, _ = approving
    old = create(gw, auth, None, {"name": "ci", "expires_in": "30d"}).json()
    asked = gw.post("/actions/rotate_api_key", headers=auth, json={"id": old["id"]})
    assert asked.status_code == 202
    approval = asked.json()["approval"]
    assert [item["change"] for item in approval["preview"]] == ["Create API key", "Revoke API key"]
    page = gw.get(inbox.notice(approval["id"]).url)
    assert "What happens" in page.text and "Create API key" in page.text and "in 30d" in page.text
    assert len(keys_named(sandbox, "ci")) == 1  # nothing made before the person decides
    assert click(gw, inbox.notice(approval["id"]).url, "approve").status_code == 303
    done = gw.get(f"/approvals/{approval['id']}", headers=auth)
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    assert FULL_TOKEN.fullmatch(done.json()["new_key"]["token"])  # the caller gets the secret, as for a create
    assert key_status(sandbox, old["id"]) == "revoked" and len(keys_named(sandbox, "ci")) == 2
    # A caller that lost that answer polls again: the secret once more (kept sealed), then masked.
    again = gw.get(f"/approvals/{approval['id']}", headers=auth).json()
    assert again["new_key"]["token"] == done.json()["new_key"]["token"]
    later = gw.get(f"/approvals/{approval['id']}", headers=auth).json()
    assert later["new_key"]["id"] == done.json()["new_key"]["id"] and not FULL_TOKEN.search(json.dumps(later))
    assert not FULL_TOKEN.search(gw.get(inbox.notice(approval["id"]).url).text)  # the page never shows it


def test_what_the_api_returns_opens_and_decides_nothing(approving, auth, sandbox, inbox):
    """A client (a model) holding only the 202, the poll answers, the document and its GEN key."""
    gw, gateway = approving
    key = create(gw, auth, None, {"name": "target"}).json()
    asked = gw.post("/actions/revoke_api_key", headers=auth, json={"id": key["id"]})
    polled = gw.get(asked.headers["location"], headers=auth)
    seen = " ".join([asked.text, json.dumps(dict(asked.headers)), polled.text, json.dumps(dict(polled.headers)),
                     gw.get("/openapi.json").text])
    link = inbox.link(asked.json()["approval"]["id"]).rsplit("/", 1)[1]
    assert link not in seen and "/approve/" not in seen
    for value in set(re.findall(r"[A-Za-z0-9_\-]{8,}", seen)):  # every id-like string it saw, as a link
        for method in ("get", "post"):
            answer = getattr(gw, method)(f"/approve/{value}", headers=auth,
                                         **({"data": {"csrf": "0" * 64, "decision": "approve"}}
                                            if method == "post" else {}))
            assert answer.status_code == 404 and "text/html" in answer.headers["content-type"], value
    assert gateway.approvals.get(asked.json()["approval"]["id"]).state == "pending"
    assert gw.get(asked.headers["location"], headers=auth).status_code == 202
    assert key_status(sandbox, key["id"]) == "active"


def test_nobody_to_ask_fails_the_call_at_once(make_gateway, auth, sandbox):
    gw = make_gateway(confirmation="approval", notify_targets=[Unreachable()])
    key = create(gw, auth, None, {"name": "kept"}).json()
    error = error_of(gw.post("/actions/revoke_api_key", headers=auth, json={"id": key["id"]}), 503, "nobody_to_ask")
    assert "Nobody could be asked" in error["message"] and "--approval-notify" in error["hint"]
    assert key_status(sandbox, key["id"]) == "active"
    documented = gw.get("/openapi.json").json()["paths"]["/actions/revoke_api_key"]["post"]["responses"]
    assert "nobody_to_ask" in documented["503"]["description"]


def test_behind_a_tls_proxy_the_page_accepts_the_public_urls_origin(make_gateway, auth, sandbox, inbox):
    """uvicorn not trusting the proxy's X-Forwarded-Proto sees http://; Chromium posts ``Origin: https://...``."""
    gw = make_gateway(confirmation="approval", notify_targets=[inbox], public_url="https://gw.example")
    key = create(gw, auth, None, {"name": "doomed"}).json()
    asked = gw.post("/actions/revoke_api_key", headers=auth, json={"id": key["id"]})
    link = inbox.link(asked.json()["approval"]["id"])
    assert link.startswith("https://gw.example/approve/")
    path = link.removeprefix("https://gw.example")
    token = CSRF.search(gw.get(path).text).group(1)
    form = {"csrf": token, "decision": "approve"}
    refused = gw.post(path, data=form, headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert refused.status_code == 403
    decided = gw.post(path, data=form, headers={"Origin": "https://gw.example"}, follow_redirects=False)
    assert decided.status_code == 303, decided.text
    assert gw.get(asked.json()["approval"]["poll"].removeprefix("https://gw.example"), headers=auth).status_code == 200
    assert key_status(sandbox, key["id"]) == "revoked"


def test_a_key_cannot_flood_the_person_with_approvals(make_gateway, auth, sandbox, inbox, tmp_path):
    """At most 10 calls of one key wait for a person; the 11th is refused (429) and nobody is asked. The
    count lives in the store: a second gateway on the same store sees the same 10."""
    from gen_nodes.safety.approvals import MAX_PENDING

    store = f"sqlite:///{tmp_path}/shared.db"
    gw = make_gateway(confirmation="approval", notify_targets=[inbox], store_url=store)
    other = make_gateway(confirmation="approval", notify_targets=[inbox], store_url=store)
    held = [gw.post("/actions/revoke_api_key", headers=auth, json={"id": 1}) for _ in range(MAX_PENDING)]
    assert [answer.status_code for answer in held] == [202] * MAX_PENDING
    asked = len(inbox.notices)
    error = error_of(other.post("/actions/revoke_api_key", headers=auth, json={"id": 1}), 429, "too_many_approvals")
    assert f"already has {MAX_PENDING} calls waiting" in error["message"] and "Wait until" in error["hint"]
    assert len(inbox.notices) == asked  # nobody was asked again
    _, someone_else = sandbox.create_user()  # another key has its own count
    assert gw.post("/actions/revoke_api_key", headers={"X-API-Key": someone_else}, json={"id": 1}).status_code == 202
    assert click(gw, inbox.link(held[0].json()["approval"]["id"]), "deny").status_code == 303
    assert other.post("/actions/revoke_api_key", headers=auth, json={"id": 1}).status_code == 202  # a place freed
    documented = gw.get("/openapi.json").json()["paths"]["/actions/revoke_api_key"]["post"]["responses"]
    assert "too_many_approvals" in documented["429"]["description"]
    direct = make_gateway().get("/openapi.json").json()["paths"]["/actions/revoke_api_key"]["post"]["responses"]
    assert "too_many_approvals" not in direct["429"]["description"]


@pytest.fixture
def gen_log_level():
    """``main`` sets the gen_nodes logger's level (--log-level): put it back for the tests after."""
    level = logging.getLogger("gen_nodes").level
    yield
    logging.getLogger("gen_nodes").setLevel(level)


def test_a_webhook_without_its_secret_refuses_to_start_in_one_line(monkeypatch, capsys, gen_log_level):
    from gen_nodes.surfaces.gateway.app import main

    monkeypatch.delenv("GEN_NODES_NOTIFY_SECRET", raising=False)
    assert main(["--confirmation", "approval", "--port", "0", "--approval-notify", "https://hooks.example/x/tok"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "GEN_NODES_NOTIFY_SECRET" in err and "tok" not in err


def test_a_direct_gateway_bound_beyond_loopback_warns_at_start(monkeypatch, capsys, gen_log_level):
    from gen_nodes.surfaces.gateway import app as gateway
    from gen_nodes.net import serve as serving

    monkeypatch.setattr(serving, "serve", lambda app, **options: None)  # bind nothing: only the start-up words
    gateway.main(["--host", "0.0.0.0", "--allow-remote", "--allowed-host", "gw.example:8080"])
    warning = capsys.readouterr().err.strip()
    assert len(warning.splitlines()) == 1 and "--confirmation direct" in warning
    gateway.main(["--host", "0.0.0.0", "--allow-remote", "--allowed-host", "gw.example:8080",
                  "--confirmation", "approval"])
    gateway.main(["--host", "127.0.0.1"])
    assert capsys.readouterr().err == ""


def test_another_key_cannot_see_or_run_an_approval(approving, auth, sandbox, inbox):
    gw, _ = approving
    key = create(gw, auth, None, {"name": "mine"}).json()
    approval = gw.post("/actions/revoke_api_key", headers=auth, json={"id": key["id"]}).json()["approval"]
    click(gw, inbox.link(approval["id"]), "approve")
    _, other_key = sandbox.create_user()
    error_of(gw.get(f"/approvals/{approval['id']}", headers={"X-API-Key": other_key}), 404, "not_found")
    error_of(gw.get("/approvals/made-up-approval-id", headers=auth), 404, "not_found")
    assert key_status(sandbox, key["id"]) == "active"


def test_a_denied_call_is_403_and_an_undecided_one_expires_as_410(make_gateway, auth, sandbox, inbox):
    gw = make_gateway(confirmation="approval", approval_ttl=0.5, notify_targets=[inbox])
    first = create(gw, auth, None, {"name": "kept"}).json()
    denied = gw.post("/actions/revoke_api_key", headers=auth, json={"id": first["id"]}).json()["approval"]
    click(gw, inbox.link(denied["id"]), "deny")
    error_of(gw.get(f"/approvals/{denied['id']}", headers=auth), 403, "denied")
    lapsed = gw.post("/actions/revoke_api_key", headers=auth, json={"id": first["id"]}).json()["approval"]
    time.sleep(0.6)
    error_of(gw.get(f"/approvals/{lapsed['id']}", headers=auth), 410, "expired")
    assert key_status(sandbox, first["id"]) == "active"


def test_a_post_that_is_not_a_click_on_the_page_decides_nothing(approving, auth, sandbox, inbox):
    gw, gateway = approving
    key = create(gw, auth, None, {"name": "guarded"}).json()
    approval = gw.post("/actions/revoke_api_key", headers=auth, json={"id": key["id"]}).json()["approval"]
    url = inbox.link(approval["id"])
    forged = gw.post(url, data={"csrf": "0" * 64, "decision": "approve"}, follow_redirects=False)
    assert forged.status_code == 403 and "text/html" in forged.headers["content-type"]
    token = CSRF.search(gw.get(url).text).group(1)  # the page's cookie, but a request from another site
    cross = gw.post(url, data={"csrf": token, "decision": "approve"},
                    headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert cross.status_code == 403
    assert gateway.approvals.get(approval["id"]).state == "pending"
    assert gw.get(f"/approvals/{approval['id']}", headers=auth).status_code == 202


def test_an_approval_raised_elsewhere_cannot_be_decided_on_the_gateway_page(approving):
    """A Slack approval (or an MCP one) sharing the gateway's store: its own link is still a 404 here."""
    gw, gateway = approving
    held = gateway.approvals.request(action="revoke_api_key", arguments={"id": 1}, principal="p",
                                     context={"surface": "slack", "user": "U1"})
    link = gateway.approvals.link(held.id)
    assert gw.get(f"/approve/{link}").status_code == 404
    assert gw.get(f"/approve/{held.id}").status_code == 404
    assert gateway.approvals.get(held.id).state == "pending"


def test_a_model_sending_back_what_the_202_held_cannot_make_the_call_act(approving, auth, sandbox):
    gw, _ = approving
    key = create(gw, auth, None, {"name": "target"}).json()
    body = gw.post("/actions/revoke_api_key", headers=auth, json={"id": key["id"]}).json()
    strings = [v for v in json.dumps(body).split('"') if len(v) > 6]
    for text in strings:
        for field in ("id", "approval", "approval_id", "confirmation_token", "token"):
            answer = gw.post("/actions/revoke_api_key", headers=dict(auth, **{"Idempotency-Key": text[:200]}),
                             json={"id": key["id"], field: text} if field != "id" else {"id": text})
            assert answer.status_code in (202, 422), answer.text
    assert key_status(sandbox, key["id"]) == "active"


def test_non_destructive_actions_act_at_once_in_approval_mode(approving, auth):
    gw, _ = approving
    assert create(gw, auth, None, {"name": "fine"}).status_code == 200


def test_a_retried_destructive_call_with_the_same_idempotency_key_gets_the_same_approval(approving, auth):
    gw, _ = approving
    headers = dict(auth, **{"Idempotency-Key": "revoke-7"})
    first = gw.post("/actions/revoke_api_key", headers=headers, json={"id": 1}).json()
    again = gw.post("/actions/revoke_api_key", headers=headers, json={"id": 1}).json()
    assert first["approval"]["id"] == again["approval"]["id"]


def hold(gw, auth, key_id, idem: str):
    """A destructive call with an Idempotency-Key, in approval mode: held for a person."""
    return gw.post("/actions/revoke_api_key", headers=dict(auth, **{"Idempotency-Key": idem}), json={"id": key_id})


def test_a_repeat_of_a_held_call_answers_the_approvals_current_state(make_gateway, auth, sandbox):
    gw = make_gateway(confirmation="approval", approval_ttl=0.5)
    key = create(gw, auth, None, {"name": "held"}).json()
    asked = hold(gw, auth, key["id"], "held-1")
    assert asked.status_code == 202
    approval = asked.json()["approval"]
    pending = hold(gw, auth, key["id"], "held-1")
    assert pending.status_code == 202 and pending.json()["approval"]["id"] == approval["id"]
    assert pending.headers["idempotent-replayed"] == "true" and pending.headers["location"] == approval["poll"]
    gw.app.state.gateway.approvals.decide(approval["id"], approve=False, by="a person")
    error_of(hold(gw, auth, key["id"], "held-1"), 403, "denied")  # not a fresh pending
    lapsed = hold(gw, auth, key["id"], "held-2").json()["approval"]
    time.sleep(0.6)
    error_of(hold(gw, auth, key["id"], "held-2"), 410, "expired")
    assert key_status(sandbox, key["id"]) == "active"


def test_a_repeat_of_an_approved_held_call_gives_its_outcome_and_runs_it_once(approving, auth, sandbox):
    gw, gateway = approving
    key = create(gw, auth, None, {"name": "approved"}).json()
    approval = hold(gw, auth, key["id"], "held-3").json()["approval"]
    gateway.approvals.decide(approval["id"], approve=True, by="a person")
    done = hold(gw, auth, key["id"], "held-3")  # the repeat finds it approved and runs it, as a poll would
    assert done.status_code == 200 and done.json() == {"id": key["id"], "revoked": True}
    assert key_status(sandbox, key["id"]) == "revoked"
    assert gw.get(f"/approvals/{approval['id']}", headers=auth).json() == done.json()
    again = hold(gw, auth, key["id"], "held-3")
    assert again.status_code == 200 and again.json() == done.json()
    assert gateway.approvals.get(approval["id"]).state == "done"


def test_a_repeat_of_a_held_call_whose_approval_is_gone_says_so(approving, auth, sandbox):
    gw, gateway = approving
    key = create(gw, auth, None, {"name": "forgotten"}).json()
    approval = hold(gw, auth, key["id"], "held-4").json()["approval"]
    from gen_nodes.safety.approvals import _key as record_name

    gateway.store.delete(record_name(approval["id"]))  # as after its keeping time
    assert gateway.approvals.get(approval["id"]) is None
    error = error_of(hold(gw, auth, key["id"], "held-4"), 404, "not_found")
    assert "no longer kept" in error["message"] and "new Idempotency-Key" in error["hint"]
    assert key_status(sandbox, key["id"]) == "active"


# -- secrets ----------------------------------------------------------------------------------------


def test_keys_and_secrets_never_reach_the_logs(gw, auth, sandbox, caplog):
    with caplog.at_level(logging.DEBUG):
        token = create(gw, auth, "req-log", {"name": "logged"}).json()["token"]
        create(gw, auth, "req-log", {"name": "logged"})
        gw.post("/actions/get_me", headers={"Authorization": f"Bearer {sandbox.api_key}"})
        gw.post("/actions/get_me", headers={"X-API-Key": "gen_pat_" + "x" * 40})
        sandbox.inject_fault(drop=True, after=True, method="POST")
        create(gw, auth, None, {"name": "logged"})
    logged = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    assert "create_api_key" in logged  # the gateway does log its calls
    for secret in (sandbox.api_key, token, "x" * 40):
        assert secret not in logged
    assert not FULL_TOKEN.search(logged)
