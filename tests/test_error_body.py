"""One error tree and one error body: every ``GenError`` subclass is defined in ``core/errors.py``,
and every HTTP and JSON-RPC error body gen-nodes answers is ``net.errors.error_body`` of an error."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import gen_nodes
from gen_nodes.core.errors import AuthenticationError, GenError, NotFound, unexpected_failure
from gen_nodes.core.terms import GATEWAY_TERMS, HTTP_TOOL_TERMS
from gen_nodes.net.errors import error_body

OPTIONAL = ("airflow", "temporalio", "slack_bolt", "slack_sdk", "nacl", "langchain", "langchain_core", "agents",
            "openai", "anthropic")


def _every_module() -> list[str]:
    loaded = []
    for info in pkgutil.walk_packages(gen_nodes.__path__, "gen_nodes."):
        try:
            importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra not installed here
            if exc.name is None or exc.name.split(".")[0] not in OPTIONAL:
                raise
        loaded.append(info.name)
    return loaded


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_gen_error_subclass_lives_in_the_errors_module():
    _every_module()
    elsewhere = {f"{cls.__module__}.{cls.__qualname__}" for cls in _subclasses(GenError)
                 if cls.__module__.startswith("gen_nodes.") and cls.__module__ != "gen_nodes.core.errors"}
    assert elsewhere == set()


def test_an_http_error_body_is_the_errors_dict_in_the_surfaces_terms():
    exc = AuthenticationError("refused", hint="Then ${API_KEY}.")
    assert error_body(exc, GATEWAY_TERMS) == {"error": exc.to_dict(GATEWAY_TERMS)}
    assert GATEWAY_TERMS.API_KEY in error_body(exc, GATEWAY_TERMS)["error"]["hint"]


def test_a_json_rpc_error_body_carries_the_same_dict_as_its_data():
    exc = AuthenticationError("This request carries no GEN API key.", hint="Send ${API_KEY}.")
    body = error_body(exc, HTTP_TOOL_TERMS, jsonrpc_code=-32001)
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32001
    assert body["error"]["data"] == exc.to_dict(HTTP_TOOL_TERMS)
    assert body["error"]["message"] == f"{exc.message} {exc.to_dict(HTTP_TOOL_TERMS)['hint']}"


def test_a_bug_is_named_by_class_never_by_its_text():
    body = error_body(unexpected_failure(ValueError("gen_pat_secret"), where="the gateway"))
    assert body["error"]["message"] == "Unexpected failure in the gateway (ValueError)."
    assert "secret" not in str(body) and body["error"]["type"] == "api_error"


# -- the HTTP answers built from it ---------------------------------------------------------------


@pytest.fixture
def gateway(sandbox):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from gen_nodes.surfaces.gateway.app import build_app

    with TestClient(build_app(base_url=sandbox.base_url, store_url="memory://"), raise_server_exceptions=False) as gw:
        yield gw


def test_the_gateways_own_refusals_are_error_bodies(gateway):
    unknown = gateway.get("/no/such/path")
    assert unknown.status_code == 404
    assert unknown.json() == error_body(NotFound("404: Not Found", hint=(
        "See GET /openapi.json for the operations: POST /actions/{action}.")), GATEWAY_TERMS)
    no_key = gateway.post("/actions/get_me", json={})
    assert no_key.status_code == 401 and set(no_key.json()["error"]) >= {"type", "message", "hint", "status",
                                                                         "error_code"}


def test_the_host_guard_and_the_body_cap_answer_error_bodies():
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from gen_nodes.net.guard import HostGuard
    from gen_nodes.net.middleware import body_too_large

    guarded = TestClient(HostGuard(Starlette(), hosts=["good.example"]), base_url="http://evil.example")
    refused = guarded.get("/")
    assert refused.status_code == 421 and refused.json()["error"]["type"] == "invalid_input"
    assert set(refused.json()["error"]) >= {"type", "message", "hint", "status", "error_code"}
    too_large = body_too_large(10)
    assert too_large.status_code == 413 and b'"type":"invalid_input"' in too_large.body.replace(b" ", b"")


def test_an_unexpected_failure_of_the_gateway_is_one_error_body(gateway, sandbox, monkeypatch):
    from gen_nodes.surfaces.gateway import app as module

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(module, "execute", broken)
    answer = gateway.post("/actions/get_me", headers={"X-API-Key": sandbox.api_key}, json={})
    assert answer.status_code == 500
    assert answer.json() == error_body(unexpected_failure(where="the gen-nodes gateway"), GATEWAY_TERMS)
