"""Hints speak in the caller's terms: a model sees tool names and is told who sets the key; the
CLI names its options; Python names its arguments; a base URL without /v1 is named as the cause."""

from __future__ import annotations

import pytest

from gen_nodes.client.http import GenClient
from gen_nodes.runtime.dispatch import Dispatcher
from gen_nodes.core.errors import AuthenticationError, NotFound
from gen_nodes.core.terms import CLI_TERMS, HTTP_TOOL_TERMS, PYTHON_TERMS, TOOL_TERMS, Terms


def test_a_model_is_told_the_tool_name_not_the_action_id(sandbox, client):
    result = Dispatcher(client=client, confirmation="none").call("gen_update_api_key", {"id": 999, "name": "x"})
    hint = result.content["error"]["hint"]
    assert result.content["error"]["type"] == "not_found"
    assert "gen_list_api_keys" in hint


def test_tool_names_follow_the_dispatchers_prefix(client):
    result = Dispatcher(client=client, prefix="acme_", confirmation="none").call(
        "acme_update_api_key", {"id": 999, "name": "x"})
    assert "acme_list_api_keys" in result.content["error"]["hint"]
    assert "gen_list_api_keys" not in result.content["error"]["hint"]


def test_a_refused_key_is_explained_per_surface(sandbox):
    error = AuthenticationError("no")
    assert "api_key=" in error.hint and "--api-key" not in error.hint
    assert "--api-key" in error.to_dict(CLI_TERMS)["hint"]
    tool_hint = error.to_dict(TOOL_TERMS)["hint"]
    assert "ask the user" in tool_hint
    http_hint = error.to_dict(HTTP_TOOL_TERMS)["hint"]
    assert "Set GEN_API_KEY" not in http_hint and "GEN_API_KEY" not in http_hint
    assert "Authorization: Bearer" in http_hint


def test_a_dispatcher_for_http_servers_speaks_of_the_request_header(sandbox):
    client = GenClient(api_key="gen_pat_" + "x" * 40, base_url=sandbox.base_url)
    result = Dispatcher(client=client, terms=HTTP_TOOL_TERMS).call("gen_get_me", {})
    hint = result.content["error"]["hint"]
    assert result.content["error"]["type"] == "authentication"
    assert "GEN_API_KEY" not in hint and "X-API-Key" in hint


def test_templates_leave_other_dollar_signs_and_braces_alone():
    assert Terms().render("costs $5 {x} ${UNKNOWN_THING} ${list_api_keys}") == \
        "costs $5 {x} ${UNKNOWN_THING} list_api_keys"
    assert Terms(action_prefix="gen_").render("${revoke_api_key}") == "gen_revoke_api_key"


def test_str_of_an_error_reads_in_python_terms():
    assert "call list_api_keys" in str(NotFound("gone"))
    assert "${" not in str(NotFound("gone")) and PYTHON_TERMS.render(NotFound("x").hint_template) == NotFound("x").hint


@pytest.mark.parametrize("path, actions", [
    ("", ["get_me", "list_api_keys", "revoke_api_key"]),
    ("/api", ["get_me", "list_api_keys", "revoke_api_key"]),
    ("/v1/v1", ["get_me", "list_api_keys"]),  # a path naming no object: the address is wrong
])
def test_a_base_url_without_v1_is_named_as_the_cause(sandbox, registry, path, actions):
    root = sandbox.base_url.rsplit("/v1", 1)[0]
    client = GenClient(api_key=sandbox.api_key, base_url=root + path)
    for action in actions:
        arguments = {"id": 6} if action == "revoke_api_key" else {}
        with pytest.raises(NotFound) as caught:
            registry.run(action, arguments, client=client)
        assert "GEN_BASE_URL" in caught.value.hint and "/v1" in caught.value.hint
        assert "No such object" not in caught.value.hint


def test_an_unknown_id_under_the_right_base_url_is_still_no_such_object(client, registry):
    with pytest.raises(NotFound) as caught:
        registry.run("revoke_api_key", {"id": 999}, client=client)
    assert "No such object" in caught.value.hint


def test_every_surface_speaks_in_terms_from_the_one_terms_module():
    """No surface defines its own Terms: each uses a named instance (or function) of core/terms.py."""
    from gen_nodes.core import terms
    from gen_nodes.surfaces.gateway import app as gateway
    from gen_nodes.surfaces.n8n import node as n8n

    assert gateway.TERMS is terms.GATEWAY_TERMS and n8n.N8N_TERMS is terms.N8N_TERMS
    temporal = pytest.importorskip("gen_nodes.surfaces.temporal")
    assert temporal.TEMPORAL_TERMS is terms.TEMPORAL_TERMS
    assert "'gen_default'" in terms.airflow_terms("gen_default").API_KEY
    chat = terms.chat_terms({"revoke_api_key": "`/ops keys revoke ID`"}, "/ops")
    assert chat.action("revoke_api_key") == "`/ops keys revoke ID`" and "`/ops login`" in chat.API_KEY


def test_no_surface_module_builds_a_terms_of_its_own():
    import pathlib
    import re

    import gen_nodes

    root = pathlib.Path(gen_nodes.__file__).parent
    built = [str(path.relative_to(root)) for path in root.rglob("*.py")
             if path.name != "terms.py" and re.search(r"\bTerms\(|\(Terms\)", path.read_text())]
    assert built == []
