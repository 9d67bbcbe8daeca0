"""The generated n8n package (``gen-nodes export n8n``) in a real headless n8n, against real sandboxes.

The n8n install is cached in ``.cache/n8n/`` (first run: about 4 minutes; see
``tests/n8n_support.py``). Each ``n8n execute`` starts n8n afresh (several seconds),
so each test runs one workflow holding many nodes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gen_nodes.surfaces.n8n.node import HUMAN_REVIEW, N8N_TERMS, PACKAGE_NAME, node_description
from gen_nodes.core.errors import InvalidInput, NotFound
from gen_nodes.core.registry import default_registry
from gen_nodes.sandbox import Sandbox
from gen_nodes.sandbox.store import hash_token
from gen_nodes.core.validation import bundled
from doc_support import snippet
from key_age_support import DAY, names, seed_key_ages
from n8n_support import node_error, node_output, node_runs, workflow

NODE_TYPE = f"{PACKAGE_NAME}.gen"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The package as the CLI writes it."""
    out = tmp_path_factory.mktemp("export") / PACKAGE_NAME
    proc = subprocess.run([sys.executable, "-m", "gen_nodes.surfaces.cli", "export", "n8n", "--out", str(out)],
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["path"] == str(out.resolve())
    return out


@pytest.fixture(scope="module")
def home(n8n, package, tmp_path_factory):
    """One N8N_USER_FOLDER with the package installed as a community node."""
    home = n8n.home(tmp_path_factory.mktemp("n8n-home"))
    home.install_package(package)
    return home


def gen_node(node_name: str, operation: str, credential: str, *, continue_on_fail: bool = False, **params) -> dict:
    """A GEN node; ``params`` are its parameters (the action's input fields)."""
    node = {
        "name": node_name,
        "type": NODE_TYPE,
        "typeVersion": 1,
        "parameters": {"operation": operation, **params},
        "credentials": {"genApi": {"id": credential, "name": credential}},
    }
    if continue_on_fail:
        node["onError"] = "continueRegularOutput"
    return node


def credential(cred_id: str, sandbox: Sandbox) -> dict:
    return {"id": cred_id, "name": cred_id, "type": "genApi",
            "data": {"apiKey": sandbox.api_key, "baseUrl": sandbox.base_url}}


def literal(value) -> str:
    """A parameter value that n8n hands over exactly as this JSON value."""
    return "={{ %s }}" % json.dumps(value)


def cli_run(sandbox: Sandbox, action: str, arguments: dict, api_key: str | None = None) -> tuple[int, dict]:
    """What ``gen-nodes run`` prints: (exit code, output or {"error": ...})."""
    env = {**os.environ, "GEN_API_KEY": api_key or sandbox.api_key, "GEN_BASE_URL": sandbox.base_url}
    proc = subprocess.run([sys.executable, "-m", "gen_nodes.surfaces.cli", "run", action, "--input", json.dumps(arguments), "--yes"],
                          capture_output=True, text=True, env=env, timeout=60)
    return proc.returncode, json.loads(proc.stdout if proc.returncode == 0 else proc.stderr)


def assert_not_in_folder(folder: Path, *secrets: str) -> None:
    """No file under ``folder`` (n8n's database, logs, binary data) holds any of ``secrets``."""
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret.encode() in data for secret in secrets), path


def assert_no_secret(result: dict, *secrets: str) -> None:
    text = json.dumps(result)
    for secret in secrets:
        assert secret not in text


# ---- the package itself -----------------------------------------------------------------

def test_package_layout(package):
    manifest = json.loads((package / "package.json").read_text())
    assert manifest["name"] == PACKAGE_NAME
    assert "n8n-community-node-package" in manifest["keywords"]
    assert manifest["n8n"]["n8nNodesApiVersion"] == 1
    for listed in manifest["n8n"]["nodes"] + manifest["n8n"]["credentials"]:
        assert (package / listed).is_file(), listed
    node_js = (package / "nodes/Gen/Gen.node.js").read_text()
    # Plain JS that node can parse; the one shared function, no per-action code.
    subprocess.run(["node", "--check", str(package / "nodes/Gen/Gen.node.js")], check=True)
    assert node_js.count("function") == 0 and "genResponse" in node_js
    assert "X-API-Key" in (package / "credentials/GenApi.credentials.js").read_text()


def test_description_follows_the_specs():
    specs = list(default_registry())
    description = node_description(specs)
    assert description["name"] == "gen" and description["usableAsTool"] is True
    operation, *params = description["properties"]
    params = [p for p in params if p["type"] != "notice"]
    options = {o["value"]: o for o in operation["options"]}
    assert list(options) == [s.id for s in specs]
    for spec in specs:
        option = options[spec.id]
        if spec.composite:  # no request of its own: n8n calls genSteps instead of sending one
            assert option["routing"] == {"send": {"preSend": ["__genValidate__"], "paginate": True},
                                         "operations": {"pagination": "__genSteps__"}}
        else:
            assert option["routing"]["request"]["method"] == spec.method
        assert spec.title in option["name"]
        assert ("destructive" in option["name"].lower()) == spec.hints.destructive
        assert ("destructive" in option["description"].lower()) == spec.hints.destructive
        schema = bundled(spec.input_schema)
        shown = {p["name"]: p for p in params if spec.id in p["displayOptions"]["show"]["operation"]}
        assert set(shown) == set(schema.get("properties", {}))
        for name, param in shown.items():
            assert param["required"] == (name in schema.get("required", ()))
            assert param["description"] == schema["properties"][name].get("description", "")
    # `name` is optional for create, required for rename, optional for rotate with its own description:
    # three parameters. A parameter is shared across operations only where it is identical, so no two
    # are equal but for where shown.
    names = {p["displayOptions"]["show"]["operation"][0]: p for p in params if p["name"] == "name"}
    assert {op: p["required"] for op, p in names.items()} == {
        "create_api_key": False, "update_api_key": True, "rotate_api_key": False}
    bare = [json.dumps({k: v for k, v in p.items() if k != "displayOptions"}, sort_keys=True) for p in params]
    assert len(bare) == len(set(bare))


def test_destructive_operations_tell_the_builder_to_turn_on_human_review(package):
    """n8n's Human-in-the-loop for AI tool calls gates a tool; the node says to turn it on, per the specs."""
    specs = list(default_registry())
    operation, notice, *_ = node_description(specs)["properties"]
    destructive = [s.id for s in specs if s.hints.destructive]
    assert sorted(destructive) == ["revoke_all_api_keys", "revoke_api_key", "rotate_api_key"]
    for option in operation["options"]:
        asks = "turn on human review" in option["description"] and HUMAN_REVIEW in option["description"]
        assert asks == (option["value"] in destructive), option["value"]
    # A notice in the node's panel, shown only while a destructive operation is chosen.
    assert notice["type"] == "notice" and HUMAN_REVIEW in notice["displayName"]
    assert notice["displayOptions"] == {"show": {"operation": destructive}}
    assert "Human-in-the-loop for AI tool calls" in HUMAN_REVIEW
    # As generated: the node's JavaScript and the package README carry it.
    assert (package / "nodes/Gen/Gen.node.js").read_text().count(HUMAN_REVIEW) == len(destructive) + 1
    assert HUMAN_REVIEW in (package / "README.md").read_text()
    # A registry without destructive actions gets no notice.
    read_only = [s for s in specs if not s.hints.destructive]
    assert all(p["type"] != "notice" for p in node_description(read_only)["properties"])


# ---- in a real n8n ------------------------------------------------------------------------

def test_lifecycle(home):
    with Sandbox() as sandbox:
        home.import_credentials([credential("gen-life", sandbox)])
        wf = workflow(
            gen_node("List before", "list_api_keys", "gen-life"),
            gen_node("Create", "create_api_key", "gen-life", name="made by n8n", expires_in="30d"),
            gen_node("Rename", "update_api_key", "gen-life", id="={{ $('Create').item.json.id }}", name="renamed by n8n"),
            gen_node("Revoke", "revoke_api_key", "gen-life", id="={{ $('Create').item.json.id }}"),
            gen_node("List revoked", "list_api_keys", "gen-life", status="revoked"),
        )
        result = home.run_workflow(wf)
        assert node_error(result) is None, node_error(result)

        [before] = node_output(result, "List before")  # one item: {"api_keys": [...]}
        assert [k["name"] for k in before["api_keys"]] == ["sandbox bootstrap"]
        [created] = node_output(result, "Create")
        assert created["name"] == "made by n8n" and created["status"] == "active"
        assert created["token"] and created["expires_at"]
        # The token is the new key's real secret (revoked by now, so looked up by its hash).
        row = sandbox.store._conn.execute("SELECT id FROM keys WHERE hash = ?", (hash_token(created["token"]),)).fetchone()
        assert row is not None and row["id"] == created["id"]
        [renamed] = node_output(result, "Rename")
        assert renamed["id"] == created["id"] and renamed["name"] == "renamed by n8n" and "token" not in renamed
        assert node_output(result, "Revoke") == [{"id": created["id"], "revoked": True}]
        [revoked] = node_output(result, "List revoked")
        assert [(k["id"], k["name"], k["status"]) for k in revoked["api_keys"]] == [(created["id"], "renamed by n8n", "revoked")]
        # The credential's key never shows in what n8n prints, nor anywhere in its folder
        # (database with the saved execution, logs): n8n keeps the credential encrypted.
        assert_no_secret(result, sandbox.api_key)
        assert sandbox.api_key not in result["_stdout"] + result["_stderr"]
        assert_not_in_folder(home.folder, sandbox.api_key)


def test_the_time_filters_in_real_n8n(home):
    """Parameters typed as a person types them: "7d", "30d", and seconds as text."""
    with Sandbox() as sandbox:
        seed_key_ages(sandbox)
        home.import_credentials([credential("gen-ages", sandbox)])
        result = home.run_workflow(workflow(
            gen_node("Expiring", "list_api_keys", "gen-ages", expiring_within="7d"),
            gen_node("Idle", "list_api_keys", "gen-ages", unused_for="30d"),
            gen_node("Within seconds", "list_api_keys", "gen-ages", status="active", expiring_within=str(31 * DAY)),
            gen_node("Bad span", "list_api_keys", "gen-ages", continue_on_fail=True, unused_for="30 days"),
            parallel=True,
        ))
        assert names(node_output(result, "Expiring")[0]) == ["soon"]
        assert names(node_output(result, "Idle")[0]) == ["old idle"]
        assert names(node_output(result, "Within seconds")[0]) == ["soon", "later"]
        [refused] = node_output(result, "Bad span")
        assert "$.unused_for" in json.dumps(refused)


def test_gen_errors_reach_n8n(home):
    with Sandbox() as sandbox:
        home.import_credentials([credential("gen-err", sandbox)])
        wf = workflow(
            gen_node("Revoke missing (continue)", "revoke_api_key", "gen-err", continue_on_fail=True, id="999999"),
            gen_node("Revoke missing", "revoke_api_key", "gen-err", id="999999"),
        )
        result = home.run_workflow(wf)
        code, cli = cli_run(sandbox, "revoke_api_key", {"id": "999999"})
        assert code == 4
        expected = {k: cli["error"][k] for k in ("type", "message", "status", "error_code")}
        assert expected["type"] == "not_found" and expected["message"] == "Token not found"  # GEN's words
        # The hint in n8n's terms (the CLI's names its own flags).
        expected["hint"] = N8N_TERMS.render(NotFound.default_hint)
        assert expected["hint"] == "No such object for this account; call list_api_keys to see the ids you can use."

        # Continue On Fail: the item carries the same error JSON the CLI prints.
        [item] = node_output(result, "Revoke missing (continue)")
        assert item == {"error": expected}

        # Otherwise the node fails with GEN's message, and our hint as the description.
        error = node_error(result, "Revoke missing")
        assert error["message"] == expected["message"]
        assert error["description"] == expected["hint"]
        assert str(error.get("httpCode")) == "404"
        assert node_error(result)["message"] == expected["message"]
        assert_no_secret(result, sandbox.api_key)


# ---- parity: every action's output equals `gen-nodes run`'s ------------------------------

FROZEN = datetime(2026, 3, 9, 10, 0, 0, tzinfo=timezone.utc)


def _twin_sandboxes(variant: str):
    """Two sandboxes in the same state at the same frozen time: keys 2-7, key 3 revoked."""
    pair = []
    for _ in range(2):
        sb = Sandbox(clock=lambda: FROZEN, variant=variant).start()
        sb.store.seed_keys(sb.user["id"], 6)
        sb.store.revoke_key(sb.user["id"], 3)
        pair.append(sb)
    return pair


def _cases():
    """Every action with every example input of its schema (a plugin's actions too)."""
    for spec in default_registry():
        for index, example in enumerate(bundled(spec.input_schema).get("examples") or [{}]):
            yield f"{spec.id}#{index}", spec.id, example


@pytest.mark.parametrize("variant", ["reference", "openapi"])
def test_every_action_matches_gen_nodes_run(home, variant):
    """Both answer styles GEN documents: integer ids and 204 revokes (its reference page), string
    ids and revokes answered 200 with a message (its OpenAPI file)."""
    cases = list(_cases())
    pairs = {case: _twin_sandboxes(variant) for case, _, _ in cases}
    try:
        home.import_credentials([credential(f"parity-{variant}-{n}", pairs[case][0]) for n, (case, _, _) in enumerate(cases)])
        nodes = [
            gen_node(case, action, f"parity-{variant}-{n}", continue_on_fail=True,
                     **{field: literal(value) for field, value in example.items()})
            for n, (case, action, example) in enumerate(cases)
        ]
        result = home.run_workflow(workflow(*nodes, parallel=True))
        assert node_error(result) is None, node_error(result)
        for case, action, example in cases:
            n8n_sandbox, cli_sandbox = pairs[case]
            [got] = node_output(result, case)
            code, expected = cli_run(cli_sandbox, action, example)
            assert code == 0, (case, expected)
            for made, want in ((got, expected), (got.get("new_key"), expected.get("new_key"))):
                if want and "token" in want:  # a new secret each time: equal in kind, not in value
                    assert isinstance(made.pop("token"), str) and want.pop("token")
            assert got == expected, case
            assert_no_secret(result, n8n_sandbox.api_key)
    finally:
        for pair in pairs.values():
            for sb in pair:
                sb.stop()


def test_credential_test_and_ai_tool(home):
    """The editor's "Test" button, through the REST API of a started n8n: GET /me with the key.
    And the node is offered to AI Agents: n8n derives a tool variant (``genTool``) from ``usableAsTool``."""
    with Sandbox() as sandbox, home.serve() as server:
        types = {t["name"]: t for t in server.session.get(f"{server.url}/types/nodes.json", timeout=60).json()}
        assert {NODE_TYPE, NODE_TYPE + "Tool"} <= set(types)

        good = server.test_credential("genApi", {"apiKey": sandbox.api_key, "baseUrl": sandbox.base_url + "/"}, "good")
        assert good["status"] == "OK", good
        bad = server.test_credential("genApi", {"apiKey": "gen_pat_not_a_key_000000", "baseUrl": sandbox.base_url}, "bad")
        assert bad["status"] == "Error" and "Authorization failed" in bad["message"], bad
        assert "gen_pat_not_a_key_000000" not in json.dumps(bad)


def test_custom_extension_folder(n8n, package, tmp_path):
    """The README's second way: N8N_CUSTOM_EXTENSIONS names the folder; the type is CUSTOM.gen."""
    home = n8n.home(tmp_path / "home", env={"N8N_CUSTOM_EXTENSIONS": str(package)})
    with Sandbox() as sandbox:
        home.import_credentials([credential("gen-ext", sandbox)])
        node = gen_node("Me", "get_me", "gen-ext")
        node["type"] = "CUSTOM.gen"
        result = home.run_workflow(workflow(node))
        assert node_error(result) is None, node_error(result)
        code, expected = cli_run(sandbox, "get_me", {})
        assert code == 0 and node_output(result, "Me") == [expected]


def test_npm_pack_and_install(package, tmp_path):
    """The README's tarball route: `npm pack`, then `npm install` in ~/.n8n/nodes, offline."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("no npm on PATH")  # the n8n fixture brings its own; this checks the README's commands
    proc = subprocess.run([npm, "pack", "--pack-destination", str(tmp_path)], cwd=package,
                          capture_output=True, text=True, check=True)
    tarball = tmp_path / proc.stdout.strip().splitlines()[-1]
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    (nodes / "package.json").write_text(json.dumps({"name": "installed-nodes", "private": True}))
    subprocess.run([npm, "install", "--offline", "--no-audit", "--no-fund", str(tarball)],
                   cwd=nodes, capture_output=True, text=True, check=True)
    installed = nodes / "node_modules" / PACKAGE_NAME
    manifest = json.loads((installed / "package.json").read_text())
    for listed in manifest["n8n"]["nodes"] + manifest["n8n"]["credentials"]:
        assert (installed / listed).is_file()
    assert json.loads((nodes / "package.json").read_text())["dependencies"][PACKAGE_NAME]
    assert not (nodes / "node_modules" / "n8n-workflow").exists()  # n8n's own copy is used


# ---- the input check before sending: the same verdicts as the engine's --------------------

_ODD_VALUES = [True, None, [], {}, "", "abc", "30 days", "30d", "6", 0, -1, 6, 2.5, "x" * 256, "active", "gone"]


def _input_cases():
    """Every action: its examples, each property set to each odd value, no input, an unknown field."""
    for spec in default_registry():
        schema = bundled(spec.input_schema)
        base = (schema.get("examples") or [{}])[0]
        yield spec.id, {}
        yield spec.id, {**base, "bogus": 1}
        for example in schema.get("examples") or []:
            yield spec.id, example
        for name in schema.get("properties", {}):
            for value in _ODD_VALUES:
                yield spec.id, {**base, name: value}


def generic_functions(n8n, package, tmp_path, script: str, data):
    """What ``script`` prints as JSON, run by node with the package's GenericFunctions.js as
    ``process.argv[1]`` and ``data`` as ``data`` (n8n-workflow is a stub: nothing here throws to n8n)."""
    stub = tmp_path / "node_modules" / "n8n-workflow"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "index.js").write_text("class E extends Error {}\nmodule.exports = { NodeApiError: E, NodeOperationError: E };\n")
    proc = subprocess.run([str(n8n.node_dir / "bin" / "node"), "-e",
                           "const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));" + script,
                           str(package / "nodes/Gen/GenericFunctions.js")],
                          input=json.dumps(data), capture_output=True, text=True, check=True,
                          env={**os.environ, "NODE_PATH": str(tmp_path / "node_modules")})
    return json.loads(proc.stdout)


def test_input_checks_match_the_engine(n8n, package, tmp_path):
    """GenericFunctions.js checks the input with the action's schema before sending; for every
    case it must find problems at the same JSON paths as gen-nodes (jsonschema) does."""
    from gen_nodes.core.validation import problems

    cases = list(_input_cases())
    found = generic_functions(n8n, package, tmp_path, "const { problems, OPERATIONS } = require(process.argv[1]);"
                              "console.log(JSON.stringify(data.map(([op, input]) => problems(OPERATIONS[op].input, input, '$'))));",
                              cases)
    registry = default_registry()
    for (action, arguments), js in zip(cases, found):
        py = problems(registry.get(action).input_schema, arguments)
        assert sorted({p["path"] for p in js}) == sorted({p["path"] for p in py}), (action, arguments, js, py)


def test_bad_input_is_refused_before_sending(home):
    with Sandbox() as sandbox:
        sandbox.inject_fault(503, times=1000)  # a trap: any request that reaches GEN takes one
        home.import_credentials([credential("gen-bad", sandbox)])
        wf = workflow(
            gen_node("Rename bad id (continue)", "update_api_key", "gen-bad", continue_on_fail=True, id="abc", name="x"),
            gen_node("Create bad expiry", "create_api_key", "gen-bad", name="ci", expires_in="30 days"),
        )
        result = home.run_workflow(wf)
        assert sandbox.faults._faults and sandbox.faults._faults[0].times == 1000  # nothing was sent

        code, cli = cli_run(sandbox, "create_api_key", {"name": "ci", "expires_in": "30 days"})
        assert code == 2 and cli["error"]["type"] == "invalid_input"
        error = node_error(result, "Create bad expiry")
        assert error["message"].startswith("Invalid input for create_api_key: $.expires_in: '30 days' is not valid")
        assert error["description"] == N8N_TERMS.render(InvalidInput.default_hint)
        [item] = node_runs(result, "Rename bad id (continue)")[0]["data"]["main"][0]
        assert "$.id" in json.dumps(item)


def test_a_plugin_action_becomes_an_operation():
    """Nothing in the generator is per action: a plugin's spec with a query field, a body
    envelope, a path field and a client-side filter compiles like the built-ins."""
    from gen_nodes.core.spec import ActionSpec, Hints, Response

    spec = ActionSpec(
        id="find_things", title="Find things", description="Find things by kind.", method="POST",
        path="/spaces/{space}/things/search",
        input_schema={"type": "object", "required": ["space"], "properties": {
            "space": {"type": "integer", "minimum": 1, "description": "The space."},
            "q": {"type": "string", "description": "Text to look for."},
            "limit": {"type": "integer", "description": "At most this many."},
            "kind": {"enum": ["a", "b"], "description": "Only things of this kind."}}},
        output_schema={"type": "object"}, hints=Hints(read_only=True),
        inputs={"space": "path", "q": "query", "kind": "filter"}, body_envelope="search",
        response=Response(wrap="things"),
    )
    description = node_description([*default_registry(), spec])
    operation, *params = description["properties"]
    [option] = [o for o in operation["options"] if o["value"] == "find_things"]
    assert option["routing"]["request"] == {
        "method": "POST", "url": '=/spaces/{{ encodeURIComponent(String($parameter["space"])) }}/things/search'}
    mine = {p["name"]: p for p in params if p["displayOptions"]["show"]["operation"] == ["find_things"]}
    assert set(mine) == {"space", "q", "limit", "kind"}
    assert mine["q"]["routing"]["send"]["type"] == "query" and mine["q"]["routing"]["send"]["property"] == "q"
    assert mine["limit"]["routing"]["send"]["property"] == "search.limit" and mine["limit"]["type"] == "number"
    assert "routing" not in mine["space"] and "routing" not in mine["kind"]  # in the URL; filtered after
    assert [o["value"] for o in mine["kind"]["options"]] == ["", "a", "b"]
    [shape, last] = option["routing"]["output"]["postReceive"]
    assert shape["type"] == "set" and '"things"' in shape["properties"]["value"] and '$parameter["kind"]' in shape["properties"]["value"]
    assert last == "__genResponse__"


def test_the_n8n_credential_links_to_the_guide_on_api_keys_not_the_api(tmp_path, registry):
    from gen_nodes.surfaces.n8n.node import credential_description, write_package

    url = credential_description()["documentationUrl"]
    assert url == "https://api.gen.pro/guides/authentication/"
    write_package(registry, tmp_path / "package")
    [credential] = (tmp_path / "package" / "credentials").glob("*.credentials.js")
    [line] = [line for line in credential.read_text().splitlines() if "documentationUrl" in line]
    assert url in line


# ---- a composite action (rotate_api_key): its steps run inside one operation --------------

def _requests_seen(sandbox: Sandbox, method: str):
    """A fault that changes nothing and counts the ``method`` requests that reach the sandbox."""
    sandbox.inject_fault(method=method, times=1000)
    fault = sandbox.faults._faults[-1]
    return lambda: 1000 - fault.times


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _keys(sandbox: Sandbox) -> dict[int, dict]:
    return {key["id"]: key for key in sandbox.store.list_keys(sandbox.user["id"])}


def _rotate_sandboxes() -> dict[str, Sandbox]:
    """One sandbox per case, at a frozen time; "twin" is "plain"'s copy for `gen-nodes run`.
    Each holds key 2, "ci deploy", made 45 days and 5 hours before it expires (rounded: 45 days)
    but "half" holds one of 2.5 days (Python's round gives 2), and "revoked" key 2 is revoked."""
    lifetimes = {"plain": 45 * DAY + 5 * 3600, "twin": 45 * DAY + 5 * 3600, "half": 60 * 3600,
                 "partial": 45 * DAY + 5 * 3600, "dropped": 45 * DAY, "revoked": 45 * DAY}
    out = {}
    for case, lifetime in lifetimes.items():
        sb = Sandbox(clock=lambda: FROZEN).start()
        sb.store.create_key(sb.user["id"], "ci deploy", lifetime)
        if case == "revoked":
            sb.store.revoke_key(sb.user["id"], 2)
        out[case] = sb
    return out


def test_rotate_in_real_n8n(home):
    """rotate_api_key is one operation: list, then one POST, then one DELETE, compiled from the steps."""
    boxes = _rotate_sandboxes()
    try:
        posts = {case: _requests_seen(sb, "POST") for case, sb in boxes.items()}
        deletes = {case: _requests_seen(sb, "DELETE") for case, sb in boxes.items()}
        boxes["partial"].inject_fault(503, method="DELETE", times=5)  # queued after the counter: it shadows it
        boxes["partial"].faults._faults.sort(key=lambda f: f.status is None)
        boxes["dropped"].inject_fault(method="DELETE", drop=True)  # no answer at all: not a thrown error either
        boxes["dropped"].faults._faults.sort(key=lambda f: not f.drop)
        home.import_credentials([credential(f"rotate-{case}", sb) for case, sb in boxes.items()])
        result = home.run_workflow(workflow(
            gen_node("Rotate", "rotate_api_key", "rotate-plain", id="2"),
            gen_node("Rotate half", "rotate_api_key", "rotate-half", id="2", name="ci deploy 2027"),
            gen_node("Rotate partial", "rotate_api_key", "rotate-partial", id="2"),
            gen_node("Rotate dropped", "rotate_api_key", "rotate-dropped", id="2"),
            gen_node("Rotate revoked", "rotate_api_key", "rotate-revoked", continue_on_fail=True, id="2"),
            gen_node("Rotate missing", "rotate_api_key", "rotate-revoked", continue_on_fail=True, id="99"),
            parallel=True,
        ))
        assert node_error(result) is None, node_error(result)

        # Success: the output `gen-nodes run` prints (but the new secret), one POST, one DELETE.
        [rotated] = node_output(result, "Rotate")
        code, expected = cli_run(boxes["twin"], "rotate_api_key", {"id": "2"})
        assert code == 0 and rotated["status"] == "succeeded"
        assert isinstance(rotated["new_key"].pop("token"), str) and expected["new_key"].pop("token")
        assert rotated == expected
        new = rotated["new_key"]
        assert new["name"] == "ci deploy" and rotated["revoked"] == {"id": "2", "revoked": True}
        assert (_when(new["expires_at"]) - _when(new["created_at"])).total_seconds() == 45 * DAY
        assert (posts["plain"](), deletes["plain"]()) == (1, 1)
        assert [(k["id"], k["name"], k["status"]) for k in _keys(boxes["plain"]).values() if k["id"] != 1] == [
            (2, "ci deploy", "revoked"), (new["id"], "ci deploy", "active")]

        # A lifetime of 2.5 days rounds as Python does (to even: 2 days); the name given is used.
        [half] = node_output(result, "Rotate half")
        assert half["status"] == "succeeded" and half["new_key"]["name"] == "ci deploy 2027"
        assert (_when(half["new_key"]["expires_at"]) - FROZEN).total_seconds() == 2 * DAY

        # The revoke fails (503): status partial, the new key with its secret, the old one still active.
        [partial] = node_output(result, "Rotate partial")
        assert partial["status"] == "partial" and partial["failed_step"] == "revoke"
        assert partial["error"]["type"] == "server_error" and partial["error"]["status"] == 503
        assert partial["new_key"]["token"].startswith("gen_pat_") and "revoked" not in partial
        assert partial["next"].startswith("The new key was created and works, but the old key (id 2) was not revoked")
        keys = _keys(boxes["partial"])
        assert keys[2]["status"] == "active" and keys[partial["new_key"]["id"]]["status"] == "active"
        row = boxes["partial"].store._conn.execute("SELECT id FROM keys WHERE hash = ?",
                                                    (hash_token(partial["new_key"]["token"]),)).fetchone()
        assert row["id"] == partial["new_key"]["id"]  # the secret handed back is the new key's
        assert posts["partial"]() == 1
        [dropped] = node_output(result, "Rotate dropped")
        assert dropped["status"] == "partial" and dropped["error"]["type"] == "connection"
        assert dropped["new_key"]["token"] and _keys(boxes["dropped"])[2]["status"] == "active"

        # A revoked key, or no such key: nothing is made, the error says so (as the CLI words it).
        [revoked] = node_output(result, "Rotate revoked")
        code, cli = cli_run(boxes["revoked"], "rotate_api_key", {"id": "2"})
        assert code != 0 and revoked["error"]["message"] == cli["error"]["message"]
        assert revoked["error"]["type"] == "rejected" and "status is revoked" in revoked["error"]["message"]
        assert revoked["error"]["hint"] == "Call list_api_keys to find one that qualifies."
        [missing] = node_output(result, "Rotate missing")
        assert missing["error"]["type"] == "not_found" and "No API key with id 99" in missing["error"]["message"]
        assert posts["revoked"]() == 0 and len(_keys(boxes["revoked"])) == 2
        for case in ("plain", "half", "partial", "dropped", "revoked"):
            assert_no_secret(result, boxes[case].api_key)
    finally:
        for sb in boxes.values():
            sb.stop()


def test_rotate_fails_the_node_and_refuses_retry_on_fail(home):
    """Without Continue On Fail a refused rotation fails the node with the message and hint; with
    Retry On Fail on, a rotation or a create (not safe to repeat) is refused before anything is sent,
    while an idempotent operation runs and n8n retries it."""
    with Sandbox() as sandbox:
        old = sandbox.store.create_key(sandbox.user["id"], "ci deploy")[0]["id"]
        sandbox.store.revoke_key(sandbox.user["id"], old)
        home.import_credentials([credential("rotate-fail", sandbox)])
        result = home.run_workflow(workflow(gen_node("Rotate revoked", "rotate_api_key", "rotate-fail", id=str(old))))
        error = node_error(result, "Rotate revoked")
        assert "cannot be used: its status is revoked" in error["message"]
        assert error["description"] == "Call list_api_keys to find one that qualifies."

        sandbox.inject_fault(503, times=1000)  # a trap: any request that reaches GEN takes one
        before = _keys(sandbox)
        # A create is not safe to repeat either; a rename (idempotent) may be retried.
        for operation, params in (("rotate_api_key", {"id": "1"}), ("create_api_key", {"name": "ci"})):
            retried = gen_node("With retries", operation, "rotate-fail", **params)
            retried.update(retryOnFail=True, maxTries=2, waitBetweenTries=0)
            error = node_error(home.run_workflow(workflow(retried)), "With retries")
            assert error["message"].startswith(f"{operation} is not safe to repeat, and this node has Retry On Fail on")
            assert "Nothing was sent" in error["message"]
            assert "Turn off Settings > Retry On Fail" in error["description"]
            assert sandbox.faults._faults[0].times == 1000 and _keys(sandbox) == before
        renamed = gen_node("With retries", "update_api_key", "rotate-fail", id="1", name="x")
        renamed.update(retryOnFail=True, maxTries=2, waitBetweenTries=0)
        error = node_error(home.run_workflow(workflow(renamed)), "With retries")
        assert "Retry On Fail" not in error["message"] and error["httpCode"] == "503"
        assert sandbox.faults._faults[0].times == 1000 - 2  # sent, and retried once by n8n


def test_step_values_match_the_engine(n8n, package, tmp_path):
    """genSteps' valueOf (GenericFunctions.js) resolves every kind of declared value as
    composite.value_of does: inputs, outputs and their fields, the first with a value, and
    lifetimes rounded to whole days as Python rounds (half to even, at least 1d), naive times as UTC."""
    from gen_nodes.core.composite import value_of
    from gen_nodes.core.spec import FirstOf, Input, Lifetime, Output
    from gen_nodes.surfaces.n8n.node import _ref

    start = "2026-03-09T10:00:00Z"
    ends = ["2026-03-09T19:36:00Z", "2026-03-10T22:00:00Z", "2026-03-11T22:00:00Z", "2026-03-12T22:00:00Z",
            "2026-06-07T10:00:00+02:00", "2026-04-23T15:00:00", None, "not a time"]
    refs = [Input("name"), Input("gone"), Output("old"), Output("old", "name"), Output("missing", "name"),
            FirstOf((Input("gone"), Output("old", "name"), "fallback")), FirstOf((Input("gone"),)), "constant", 7,
            Lifetime("old", "created_at", "expires_at")]
    cases = [({"name": "given"}, {"old": {"name": "ci", "created_at": start, "expires_at": end}}) for end in ends]
    got = generic_functions(n8n, package, tmp_path, "const { valueOf } = require(process.argv[1]); const [refs, cases] = data;"
                            "console.log(JSON.stringify(cases.map(([input, outputs]) =>"
                            " refs.map((r) => valueOf(r, input, outputs) ?? null))));",
                            [[_ref(r) for r in refs], cases])
    expected = [[value_of(r, args, outputs) for r in refs] for args, outputs in cases]
    assert got == expected
    lifetimes = [row[-1] for row in expected]
    assert lifetimes == ["1d", "2d", "2d", "4d", "90d", "45d", None, None]  # 0.4, 1.5, 2.5, 3.5 days ...


def test_a_plugin_composite_becomes_an_operation():
    """A composite a plugin declares compiles as rotate_api_key does: the same routing, its steps
    and result as data for genSteps; a step naming an action the node lacks is refused when generating."""
    from gen_nodes.core.spec import ActionSpec, Hints, Input, Output, Step
    from gen_nodes.surfaces.n8n.node import operations_table

    spec = ActionSpec(
        id="rename_and_list", title="Rename and list", description="Rename a key, then list the keys.",
        method="", path="", hints=Hints(idempotent=True), output_schema={"type": "object"},
        input_schema={"type": "object", "required": ["id", "name"], "properties": {
            "id": {"type": "string", "description": "The key."}, "name": {"type": "string", "description": "Its name."}}},
        steps=(Step("renamed", "update_api_key", input={"id": Input("id"), "name": Input("name")}),
               Step("keys", "list_api_keys", input={"status": "active"}, partial="Renamed {id}; list again.")),
        result={"key": Output("renamed"), "active": Output("keys", "api_keys")},
    )
    specs = [*default_registry(), spec]
    [option] = [o for o in node_description(specs)["properties"][0]["options"] if o["value"] == spec.id]
    assert option["routing"]["operations"] == {"pagination": "__genSteps__"} and "request" not in option["routing"]
    entry = operations_table(specs)[spec.id]
    assert entry["safeToRetry"] is True and entry["steps"] == [
        {"name": "renamed", "action": "update_api_key", "input": {"id": {"input": "id"}, "name": {"input": "name"}},
         "pick": None, "partial": None},
        {"name": "keys", "action": "list_api_keys", "input": {"status": {"const": "active"}}, "pick": None,
         "partial": "Renamed {id}; list again."}]
    assert entry["result"] == {"key": {"output": "renamed", "field": None}, "active": {"output": "keys", "field": "api_keys"}}
    with pytest.raises(ValueError, match="rename_and_list's steps run update_api_key, which the node does not have"):
        operations_table([s for s in specs if s.id != "update_api_key"])


# ---- the key-rotation recipe of docs/key-health.md, run as printed there ----------------

SECRETS_FOLDER = "/home/node/gen-secrets"


def _recipe(secrets: Path) -> dict:
    """The workflow under the "n8n" heading of docs/key-health.md, its files written to ``secrets``."""
    recipe = json.loads(snippet("n8n", "json"))
    [store] = [node for node in recipe["nodes"] if node["type"] == "n8n-nodes-base.readWriteFile"]
    assert store["parameters"]["fileName"].startswith(f"={SECRETS_FOLDER}/")
    store["parameters"]["fileName"] = store["parameters"]["fileName"].replace(SECRETS_FOLDER, str(secrets), 1)
    secrets.mkdir()
    return recipe


def _recipe_home(n8n, package, folder: Path, recipe: dict, sandbox: Sandbox):
    """A fresh n8n folder with the package and the credential the recipe's GEN nodes name."""
    [named] = {json.dumps(node["credentials"]["genApi"]) for node in recipe["nodes"] if node["type"] == NODE_TYPE}
    home = n8n.home(folder)
    home.install_package(package)
    home.import_credentials([{**json.loads(named), "type": "genApi",
                              "data": {"apiKey": sandbox.api_key, "baseUrl": sandbox.base_url}}])
    return home


def _seed_expiring(sandbox: Sandbox) -> None:
    """Keys 2 "ci deploy" and 3 "nightly export" (90-day keys) expire in 3 days, key 4 "billing" in 60."""
    user = sandbox.user["id"]
    sandbox.store.create_key(user, "ci deploy", 90 * DAY)
    sandbox.store.create_key(user, "nightly export", 90 * DAY)
    sandbox.store.advance(87 * DAY)
    sandbox.store.create_key(user, "billing", 60 * DAY)


def _stored_secrets(sandbox: Sandbox, secrets: Path) -> dict[str, str]:
    """{file name: secret} of what the recipe wrote; each must be a working key (get_me answers)."""
    stored = {path.name: path.read_text() for path in secrets.iterdir()}
    for token in stored.values():
        code, me = cli_run(sandbox, "get_me", {}, api_key=token)
        assert code == 0 and me["id"] == sandbox.user["id"], me
    return stored


def test_the_key_rotation_recipe_in_real_n8n(n8n, package, tmp_path):
    """The page's workflow, unchanged but for its folder: run from its Manual Trigger (n8n's CLI
    starts no Schedule Trigger), it rotates exactly the keys expiring within 14 days and stores
    secrets that work; n8n keeps neither the GEN key nor a new secret."""
    recipe = _recipe(tmp_path / "secrets")
    triggers = {node["name"]: node for node in recipe["nodes"] if node["type"].endswith("Trigger")}
    assert sorted(node["type"] for node in triggers.values()) == [
        "n8n-nodes-base.manualTrigger", "n8n-nodes-base.scheduleTrigger"]
    for name in triggers:  # the schedule starts the same chain the test starts
        assert recipe["connections"][name]["main"] == [[{"node": "List expiring keys", "type": "main", "index": 0}]]
    with Sandbox() as sandbox:
        _seed_expiring(sandbox)
        posts, deletes = _requests_seen(sandbox, "POST"), _requests_seen(sandbox, "DELETE")
        home = _recipe_home(n8n, package, tmp_path / "n8n", recipe, sandbox)
        result = home.execute(home.import_workflow(recipe))
        assert node_error(result) is None, node_error(result)

        assert (posts(), deletes()) == (2, 2)
        keys = _keys(sandbox)
        assert [(k["id"], k["name"], k["status"]) for k in keys.values() if k["id"] <= 4] == [
            (1, "sandbox bootstrap", "active"), (2, "ci deploy", "revoked"), (3, "nightly export", "revoked"),
            (4, "billing", "active")]  # billing expires in 60 days: left alone
        assert sorted((k["name"], k["status"]) for k in keys.values() if k["id"] > 4) == [
            ("ci deploy", "active"), ("nightly export", "active")]
        stored = _stored_secrets(sandbox, tmp_path / "secrets")
        assert sorted(stored) == ["ci_deploy.token", "nightly_export.token"]
        for file, token in stored.items():  # each file holds its own key's successor, which keeps the 90 days
            row = sandbox.store._conn.execute("SELECT id FROM keys WHERE hash = ?", (hash_token(token),)).fetchone()
            new = keys[row["id"]]
            assert row["id"] > 4 and file == new["name"].replace(" ", "_") + ".token" and new["status"] == "active"
            assert (_when(new["expires_at"]) - _when(new["created_at"])).total_seconds() == 90 * DAY
        assert node_runs(result, "Old keys still work") == []
        assert_no_secret(result, sandbox.api_key)
        assert_not_in_folder(home.folder, sandbox.api_key, *stored.values())


def test_the_key_rotation_recipe_keeps_partial_rotations_visible(n8n, package, tmp_path):
    """Revokes failing: the new secrets are stored all the same, then the run fails naming each old key."""
    recipe = _recipe(tmp_path / "secrets")
    with Sandbox() as sandbox:
        _seed_expiring(sandbox)
        sandbox.inject_fault(503, method="DELETE", times=5)
        home = _recipe_home(n8n, package, tmp_path / "n8n", recipe, sandbox)
        result = home.execute(home.import_workflow(recipe))

        error = node_error(result, "Old keys still work")
        assert error["message"].startswith("Rotated but not revoked, so the old keys still work")
        assert "key 2 (ci deploy, replaced by key " in error["message"] and "key 3 (nightly export" in error["message"]
        assert node_error(result)["message"] == error["message"]
        assert [k["status"] for k in _keys(sandbox).values()] == ["active"] * 6
        stored = _stored_secrets(sandbox, tmp_path / "secrets")
        assert sorted(stored) == ["ci_deploy.token", "nightly_export.token"]
        assert_not_in_folder(home.folder, sandbox.api_key, *stored.values())
