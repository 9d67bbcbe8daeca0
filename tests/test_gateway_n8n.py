"""An n8n workflow whose HTTP Request nodes call the gateway: the path of GEN's own n8n guide,
with the gateway in front. A real headless n8n (``n8n_support``) runs it against ``gen-nodes
serve`` in front of the sandbox: it creates a key (with an ``Idempotency-Key``) and lists the
keys; a second run with the same ``Idempotency-Key`` replays the create instead of making a
second key; a failing call fails the node with the gateway's message.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette")
# The headless n8n of the n8n node's tests (tests/n8n_support.py, fixture `n8n` in conftest.py).
n8n_support = pytest.importorskip("n8n_support")
node_error, node_output, workflow = n8n_support.node_error, n8n_support.node_output, n8n_support.workflow
from gateway_support import GatewayProcess, keys_named  # noqa: E402



@pytest.fixture(scope="module")
def gateway(sb, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gateway-n8n")
    process = GatewayProcess("--base-url", sb.base_url, "--store", f"sqlite:///{folder / 'gateway.db'}",
                             log=folder / "gateway.log")
    yield process
    process.stop()


def http_request(name: str, url: str, body: dict | None = None, headers: dict | None = None,
                 continue_on_fail: bool = False) -> dict:
    """An n8n HTTP Request node (v4.2): POST with the GEN key from a Header Auth credential."""
    parameters = {
        "method": "POST",
        "url": url,
        "authentication": "genericCredentialType",
        "genericAuthType": "httpHeaderAuth",
        "sendHeaders": bool(headers),
        "headerParameters": {"parameters": [{"name": k, "value": v} for k, v in (headers or {}).items()]},
        "sendBody": True,
        "specifyBody": "json",
        "jsonBody": json.dumps(body or {}),
        "options": {},
    }
    node = {"name": name, "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "parameters": parameters,
            "credentials": {"httpHeaderAuth": {"id": "gen1", "name": "GEN via gateway"}}}
    if continue_on_fail:
        node["onError"] = "continueRegularOutput"
    return node


def test_an_n8n_workflow_creates_and_lists_keys_through_the_gateway(n8n, gateway, sb, tmp_path):
    user, key = sb.create_user(email="n8n@example.com")
    credentials = [{"id": "gen1", "name": "GEN via gateway", "type": "httpHeaderAuth",
                    "data": {"name": "X-API-Key", "value": key}}]
    flow = workflow(
        http_request("Create key", f"{gateway.url}/actions/create_api_key", {"name": "made by n8n", "expires_in": "30d"},
                     headers={"Idempotency-Key": "n8n-run-1"}),
        http_request("List keys", f"{gateway.url}/actions/list_api_keys", {"status": "active"}),
        name="GEN through the gateway",
    )
    home = n8n.home(tmp_path / "n8n")
    first = home.run_workflow(flow, credentials)
    assert node_error(first) is None, node_error(first)
    [created] = node_output(first, "Create key")
    assert created["name"] == "made by n8n" and created["token"].startswith("gen_pat_")
    [listed] = node_output(first, "List keys")
    assert created["id"] in [k["id"] for k in listed["api_keys"]]

    # The same workflow again, as a retry would: the create is replayed, not made twice.
    again = home.run_workflow(flow)
    assert node_error(again) is None, node_error(again)
    assert node_output(again, "Create key")[0]["id"] == created["id"]
    assert len(keys_named(sb, key, "made by n8n")) == 1


def test_a_failing_call_fails_the_node_with_the_gateways_message(n8n, gateway, sb, tmp_path):
    _, key = sb.create_user()
    credentials = [{"id": "gen1", "name": "GEN via gateway", "type": "httpHeaderAuth",
                    "data": {"name": "X-API-Key", "value": key}}]
    home = n8n.home(tmp_path / "n8n")
    failed = home.run_workflow(workflow(
        http_request("Rename", f"{gateway.url}/actions/update_api_key", {"id": 999999, "name": "x"})), credentials)
    error = node_error(failed, "Rename")
    # n8n reads `error.message` from the body: GEN's own words, not "[object Object]".
    assert error["name"] == "NodeApiError" and error["description"] == "Token not found"
    kept = home.run_workflow(workflow(
        http_request("Rename", f"{gateway.url}/actions/update_api_key", {"id": 999999, "name": "x"},
                     continue_on_fail=True)))
    [item] = node_output(kept, "Rename")
    assert item["error"]["message"].startswith("404 - ")
    body = json.loads(json.loads(item["error"]["message"][len("404 - "):]))  # the gateway's answer, as n8n quotes it
    assert (body["error"]["type"], body["error"]["message"]) == ("not_found", "Token not found")
    assert key not in json.dumps(kept)
