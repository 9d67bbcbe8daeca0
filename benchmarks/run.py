"""gen-nodes benchmarks: every timing is a ratio against a baseline measured in the same run.

Run from the project's virtual environment (the one ``gen-nodes`` is installed in)::

    python benchmarks/run.py                      # all of them, a few minutes on 2 cores
    python benchmarks/run.py --json results.json  # also write the results as JSON

Every HTTP call goes to a real local sandbox on loopback: in a thread of this process for
(a), (e), in a process of its own for (c), (f), (g), (h) (so serializing a large list does not
run inside the timings); subject and baseline hit the same sandbox. The engine checks every
answer against its output schema (``GEN_NODES_CHECK_OUTPUT`` unset); diagnostic rows marked
``first`` set ``GEN_NODES_CHECK_OUTPUT=first`` around their blocks only (restored after).

(a) ``engine_overhead``: ``registry.run("list_api_keys", {}, client=client)`` with one
    reused ``GenClient`` (5 keys) vs. a bare ``requests.Session`` GET of the same URL with
    the same ``X-API-Key`` plus ``raise_for_status()`` and ``.json()``. Warmed up, then
    timed call by call in alternating blocks (order reversed every round). Target: median
    ratio <= 1.10.
(b) ``cli_cold_start``: wall time of the ``gen-nodes actions`` console script (``python -m
    gen_nodes.surfaces.cli actions`` if there is none) vs. ``python -c "import requests, jsonschema"``,
    alternating, after a warm-up run of each. Target: median ratio <= 1.30. When missed (or
    with ``--importtime``), ``python -X importtime -m gen_nodes.surfaces.cli actions`` runs once and
    its heaviest imports are reported.
(c) ``large_list``, ``large_list_big``: ``list_api_keys`` returning 10,000 (and 100,000) keys
    through the engine, fetched, decoded, checked, vs. a bare GET plus ``.json()``. Target:
    <= 1.15 each. A breakdown times each stage of the engine on its own.
(d) ``tool_list_size``: the six tools as exported for OpenAI Chat Completions (strict),
    OpenAI Responses (strict), Anthropic and MCP ``tools/list`` (what ``gen-nodes tools
    --format ...`` prints with its defaults), in characters of compact JSON
    (``separators=(",", ":")``) and estimated tokens: ``tiktoken`` ``o200k_base`` when it is
    installed, else characters / 4 (a rough rule for English and JSON). Plus the longest
    tool description. Not timed.
(e) ``mcp_cold_start``: from just before spawning ``gen-nodes mcp`` (stdio, console script
    next to ``sys.executable``, else ``python -m gen_nodes.surfaces.cli mcp``) with the SDK's
    ``stdio_client`` until ``tools/list`` has answered, vs. the wall time of
    ``python -c "import mcp"`` as a subprocess. Closing is reported apart. No target.
(f) ``mcp_call_latency``: ``tools/call gen_list_api_keys`` (5 keys) over one long-lived stdio
    session to ``gen-nodes mcp`` vs. the same call to ``benchmarks/mcp_peer.py``, a minimal
    server on the official SDK's ``MCPServer`` with the same six tools (a bare
    ``requests.Session``, typed returns checked by pydantic). Both sessions open at once,
    timed call by call in alternating blocks; the client's own outputSchema check is left
    out on both (``send_request``). Target: <= 1.05.
(g) ``mcp_large_list``: the same with 10,000 keys. Target: <= 1.20.
(h) ``cli_large_list``, ``cli_large_list_memory``: the whole process ``gen-nodes run
    list_api_keys`` at 100,000 keys vs. a bare script (``requests`` GET, ``.json()``,
    ``print(json.dumps(..., indent=2))``), output to /dev/null: wall time and peak resident
    memory (``wait4``), alternating. Target: <= 1.5 each.

(i) ``gateway_call``: ``POST /actions/list_api_keys`` (5 keys) to ``gen-nodes serve`` (a process of
    its own, SQLite store) over one kept-alive connection vs. a direct ``registry.run`` in this
    process, both against ``gen-nodes sandbox`` in a process of its own; timed call by call in
    alternating blocks. Diagnostic row: the same POST to ``benchmarks/minimal_gateway.py``, a
    minimal Starlette app forwarding to the sandbox with ``requests``, served the same way. No
    target: the gateway adds an HTTP hop; the diagnostic row shows how much is the gateway's own.
(j) ``gateway_throughput``: 20 client threads, each on its own connection, each sending 50 calls
    at once, against the gateway and against the minimal app, in alternating rounds (6 by
    default) after a warm-up round each. Subject/baseline rows are the per-call latencies;
    throughput is calls per second of wall time per round (median over rounds). Target: at most
    1.05 on the latency median ratio and on throughput (the minimal app's calls per second over
    the gateway's).
(k) ``chatops``: 50 signed ``/gen keys list`` slash commands posted at once (a thread each, each
    with its own ``response_url`` on the suite's Slack double, ``tests/chat_support.py``) to gen-nodes'
    Slack app (``build_asgi``, the user's key bound as ``/gen login`` binds it) and to
    ``benchmarks/minimal_bolt.py``, a minimal Bolt app that acks and makes the same GEN call in a
    lazy listener; each served in a process of its own (``benchmarks/slack_server.py``), rounds alternating (4 by default) after
    a warm-up round each. Rows: the ack's latency, and the time until the answer reached
    ``response_url``. Target: the ack's p99 at most 1.20 times the baseline's and under 300 ms.
(l) ``idempotent_create``: ``POST /actions/create_api_key`` to ``gen-nodes serve`` with a fresh
    ``Idempotency-Key`` each call (so each is recorded: the first call's cost, not a replay's), on a
    SQLite store and on a Redis store (a private ``redis-server`` on loopback, started as the suite
    starts it; the Redis row is reported as skipped when there is no ``redis-server`` on PATH), vs.
    the same create without one on the same gateway process (each store has its own gateway, and two
    processes get different shares of a shared machine's CPU); one sandbox, call by call in
    alternating blocks. Target: median ratio <= 1.20 and under 1 ms added, for each store.
(m) ``approval_round_trip``: ``revoke_api_key`` on ``gen-nodes serve --confirmation approval`` whose
    ``--approval-notify`` target is ``benchmarks/approval_person.py``, a webhook on loopback that at
    once opens the page link it was sent and approves (a real GET, then the form's POST with its
    cookie, token and the page's Origin, as a browser would); the client polls every 5 ms until the
    poll's 200. Timed from the request to that 200, with the 202, the notice and the decision as
    steps; baseline: the same revoke on a gateway that acts at once (``--confirmation none``). No
    target: reported.

Ratios are subject / baseline, for the medians and for the 90th percentiles.

Flags (all optional):
    --json PATH       also write the results (and run metadata) as JSON to PATH
    --only LIST       comma-separated subset of a,b,c,d,e,f,g,h,i,j,k,l,m (default: all)
    --calls N         (a) timed calls per variant (default 2000; at least 1000 for a real run)
    --block N         (a), (f) calls per alternating block (default 25)
    --warmup N        (a), (f) warm-up calls per variant (default 200; at most 100 for (f))
    --cold-runs N     (b) timed runs per command (default 15)
    --keys N          (c) keys in the listed account (default 10000)
    --large-runs N    (c) timed runs per variant and per breakdown stage (default 5)
    --big-keys N      (c), (h) keys of the large list (default 100000)
    --big-runs N      (c) timed runs per variant at --big-keys (default 3)
    --mcp-runs N      (e) timed runs per command (default 15)
    --mcp-calls N     (f) timed calls per variant (default 1000)
    --mcp-large-calls N  (g) timed calls per variant (default 30)
    --cli-runs N      (h) timed runs per command (default 5)
    --gateway-calls N (i) timed calls per variant (default 1000)
    --clients N       (j) concurrent clients (default 20)
    --per-client N    (j) calls per client per round (default 50)
    --load-rounds N   (j) timed rounds per variant, alternating (default 6)
    --chat-commands N (k) concurrent slash commands per round (default 50)
    --chat-rounds N   (k) timed rounds per app, alternating (default 4)
    --idem-calls N    (l) timed creates per variant (default 300)
    --approval-runs N (m) timed approval round trips (default 20)
    --importtime      (b) always run the -X importtime analysis, even when on target
    --strict          exit with status 1 when a benchmark misses its target

Each ``bench_*`` function returns a plain dict (see ``compare``; (d) has its own shape) and
is what ``tests/test_benchmarks_smoke.py`` runs with tiny counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager, contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import requests

TARGETS: dict[str, float | None] = {
    "engine_overhead": 1.10,
    "cli_cold_start": 1.30,
    "large_list": 1.15,
    "large_list_big": 1.15,
    "tool_list_size": None,
    "mcp_cold_start": None,
    "mcp_call_latency": 1.05,
    "mcp_large_list": 1.20,
    "cli_large_list": 1.50,
    "cli_large_list_memory": 1.50,
    "gateway_call": None,
    "gateway_throughput": 1.05,
    "chatops": 1.20,
    "idempotent_create": 1.20,
    "approval_round_trip": None,
}
BENCHMARKS = "abcdefghijklm"
CHECK_ENV = "GEN_NODES_CHECK_OUTPUT"

_now = time.perf_counter


# -- statistics and timing ----------------------------------------------------------------


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """Median, 90th percentile, min and mean (seconds) of ``samples``."""
    if not samples:
        raise ValueError("no samples")
    xs = sorted(samples)
    p90 = statistics.quantiles(xs, n=10, method="inclusive")[8] if len(xs) > 1 else xs[0]
    return {"n": len(xs), "median_s": statistics.median(xs), "p90_s": p90, "min_s": xs[0],
            "mean_s": statistics.fmean(xs)}


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def compare(bench_id: str, title: str, subject: tuple[str, Sequence[float]], baseline: tuple[str, Sequence[float]],
            extra: Sequence[tuple[str, Sequence[float]]] = (), **details: Any) -> dict[str, Any]:
    """One timed benchmark: subject, baseline and ``extra`` rows summarized, each row's ratios to the
    baseline, and the target."""
    b = {"label": baseline[0], **summarize(baseline[1])}

    def row(label: str, samples: Sequence[float]) -> dict[str, Any]:
        s = {"label": label, **summarize(samples)}
        return {**s, "ratio_median": _ratio(s["median_s"], b["median_s"]), "ratio_p90": _ratio(s["p90_s"], b["p90_s"])}

    s = row(*subject)
    target = TARGETS.get(bench_id)
    return {
        "id": bench_id, "title": title, "subject": s, "baseline": b,
        "ratio_median": s["ratio_median"], "ratio_p90": s["ratio_p90"],
        "extra": [row(*e) for e in extra],
        "target": target, "meets_target": None if target is None else s["ratio_median"] <= target,
        "details": details,
    }


def _timed(fn: Callable[[], Any]) -> float:
    started = _now()
    fn()
    return _now() - started


def schedule(names: Sequence[str], calls: int, block: int) -> Iterator[tuple[str, int]]:
    """``(name, n)``: ``calls`` calls per name in blocks of ``block``, the order reversed every
    round so that drift and warm-up effects fall on every variant alike."""
    names = list(names)
    for r in range(math.ceil(calls / block)):
        n = min(block, calls - r * block)
        yield from ((name, n) for name in (names if r % 2 == 0 else names[::-1]))


def time_interleaved(variants: Mapping[str, Callable[[], Any]], calls: int, block: int = 1, warmup: int = 0,
                     policies: Mapping[str, str | None] | None = None) -> dict[str, list[float]]:
    """Each variant's per-call times. ``policies[name]`` is the check policy set around that variant's blocks."""
    policies = policies or {}

    def env(name: str) -> Any:
        return check_output_policy(policies[name]) if name in policies else nullcontext()

    for name, fn in variants.items():
        with env(name):
            for _ in range(warmup):
                fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for name, n in schedule(list(variants), calls, block):
        fn, out = variants[name], samples[name]
        with env(name):
            for _ in range(n):
                started = _now()
                fn()
                out.append(_now() - started)
    return samples


# -- shared set-up ------------------------------------------------------------------------


@contextmanager
def check_output_policy(policy: str | None) -> Iterator[None]:
    """``GEN_NODES_CHECK_OUTPUT=policy`` for the block (None: unset, the default), restored after.

    gen-nodes reads its settings once per process, so both changes are followed by a reload."""
    from gen_nodes.core import settings

    saved = os.environ.pop(CHECK_ENV, None)
    if policy is not None:
        os.environ[CHECK_ENV] = policy
    settings.reload()
    try:
        yield
    finally:
        os.environ.pop(CHECK_ENV, None)
        if saved is not None:
            os.environ[CHECK_ENV] = saved
        settings.reload()


@contextmanager
def sandbox_with_keys(total: int) -> Iterator[Any]:
    """A started sandbox whose signed-in user has exactly ``total`` keys (bootstrap key included)."""
    from gen_nodes.sandbox import Sandbox

    sb = Sandbox().start()
    try:
        have = len(sb.store.list_keys(sb.user["id"]))
        if total > have:
            sb.store.seed_keys(sb.user["id"], total - have)
        yield sb
    finally:
        sb.stop()


_SANDBOX_PROCESS = """
import json, sys
from gen_nodes.sandbox import Sandbox
sb = Sandbox().start()
have = len(sb.store.list_keys(sb.user["id"]))
if int(sys.argv[1]) > have:
    sb.store.seed_keys(sb.user["id"], int(sys.argv[1]) - have)
print(json.dumps({"base_url": sb.base_url, "api_key": sb.api_key}), flush=True)
sys.stdin.read()
sb.stop()
"""


class _Remote:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url, self.api_key = base_url, api_key


@contextmanager
def sandbox_process(total: int) -> Iterator[Any]:
    """A sandbox in a process of its own (``base_url``, ``api_key``) with ``total`` keys: its work
    (serializing the list) then runs beside the measured code, not inside its timings."""
    proc = subprocess.Popen([sys.executable, "-c", _SANDBOX_PROCESS, str(total)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        yield _Remote(ready["base_url"], ready["api_key"])
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def engine_warnings() -> Iterator[list[logging.LogRecord]]:
    """The engine's 'answer does not match its output schema' warnings logged in the block (there should be none)."""
    records: list[logging.LogRecord] = []
    handler, logger = logging.Handler(logging.WARNING), logging.getLogger("gen_nodes.core.engine")
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@contextmanager
def engine_and_bare(sb: Any, keys: int) -> Iterator[tuple[Any, Callable[[], Any], Callable[[], Any]]]:
    """``(client, through_engine, bare)``: list_api_keys through the engine and by a bare GET, both checked."""
    from gen_nodes.client.http import GenClient
    from gen_nodes.core.registry import default_registry

    registry = default_registry()
    headers, url = {"X-API-Key": sb.api_key}, sb.base_url + "/persisted_tokens"
    with GenClient(api_key=sb.api_key, base_url=sb.base_url) as client, requests.Session() as session:
        def through_engine() -> Any:
            return registry.run("list_api_keys", {}, client=client)

        def bare() -> Any:
            resp = session.get(url, headers=headers)
            resp.raise_for_status()
            return resp.json()

        with check_output_policy(None):  # the first, checked answer: the timed default calls come after it
            listed = len(through_engine()["api_keys"])
        if listed != keys or len(bare()) != keys:
            raise RuntimeError(f"expected {keys} keys, the engine listed {listed}")
        yield client, through_engine, bare


def console_command(*args: str) -> tuple[list[str], str]:
    """``gen-nodes ARGS`` of this environment (the console script next to sys.executable), and how it was found."""
    scripts = Path(sys.executable).parent
    for candidate in (scripts / "gen-nodes", scripts / "gen-nodes.exe", shutil.which("gen-nodes")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return [str(candidate), *args], "console script"
    return [sys.executable, "-m", "gen_nodes.surfaces.cli", *args], "python -m (no console script found)"


def _run_quiet(argv: Sequence[str]) -> None:
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")


def _shown(argv: Sequence[str], found: str) -> str:
    return " ".join(["gen-nodes" if found == "console script" else "python", *argv[1:]])


# -- (a) per-call engine overhead ---------------------------------------------------------


def bench_engine_overhead(calls: int = 2000, block: int = 25, warmup: int = 200, keys: int = 5) -> dict[str, Any]:
    """(a) ``list_api_keys`` through the engine (default: every answer checked) vs. a bare GET."""
    with sandbox_with_keys(keys) as sb, engine_warnings() as warned, engine_and_bare(sb, keys) as (_, engine, bare):
        samples = time_interleaved({"engine": engine, "first": engine, "baseline": bare}, calls, block, warmup,
                                   policies={"engine": None, "first": "first", "baseline": None})
    result = compare(
        "engine_overhead", f"(a) list_api_keys per call, {keys} keys",
        ("engine, every answer checked (default)", samples["engine"]),
        ("bare requests.Session GET + .json()", samples["baseline"]),
        extra=[("[diagnostic] engine, check first answer only", samples["first"])],
        keys=keys, calls_per_variant=calls, block=block, warmup=warmup, schema_warnings=len(warned),
    )
    d, base = result["details"], result["baseline"]["median_s"]
    d["overhead_median_s"] = result["subject"]["median_s"] - base
    d["output_check_median_s"] = result["subject"]["median_s"] - result["extra"][0]["median_s"]
    return result


# -- (b) CLI cold start -------------------------------------------------------------------


BASELINE_IMPORT = "import requests, jsonschema"


def import_profile(top: int = 8) -> dict[str, Any]:
    """``python -X importtime -m gen_nodes.surfaces.cli actions``: the heaviest imports, cumulative and self (us)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gen_nodes.surfaces.cli", "actions"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        rows.append({"module": name.strip(), "self_us": int(self_us), "cumulative_us": int(cumulative_us),
                     "depth": (len(name) - len(name.lstrip())) // 2})
    top_level = [r for r in rows if r["depth"] == 0]
    return {
        "total_us": sum(r["cumulative_us"] for r in top_level),
        "top_cumulative": sorted(rows, key=lambda r: -r["cumulative_us"])[:top],
        "top_level": sorted(top_level, key=lambda r: -r["cumulative_us"])[:top],
        "top_self": sorted(rows, key=lambda r: -r["self_us"])[:top],
    }


def bench_cli_cold_start(runs: int = 15, warmup: int = 1, importtime: bool | None = None) -> dict[str, Any]:
    """(b) ``gen-nodes actions`` vs. ``python -c "import requests, jsonschema"``, alternating, wall time."""
    cli, found = console_command("actions")
    base = [sys.executable, "-c", BASELINE_IMPORT]
    # warm-up fills the page cache and __pycache__ of both
    samples = time_interleaved({"cli": lambda: _run_quiet(cli), "baseline": lambda: _run_quiet(base)},
                               runs, warmup=warmup)
    result = compare("cli_cold_start", "(b) CLI cold start", (_shown(cli, found), samples["cli"]),
                     (f'python -c "{BASELINE_IMPORT}"', samples["baseline"]),
                     command=cli, found_as=found, runs=runs, warmup=warmup)
    if importtime or (importtime is None and not result["meets_target"]):
        result["details"]["importtime"] = import_profile()
    return result


# -- (c) a 10,000-key (and a 100,000-key) list -------------------------------------------


def bench_large_list(keys: int = 10_000, runs: int = 5, warmup: int = 1, bench_id: str = "large_list") -> dict[str, Any]:
    """(c) ``list_api_keys`` with ``keys`` keys through the engine (every answer checked) vs. a bare GET +
    ``.json()``, the sandbox in its own process, with a breakdown of the engine's stages."""
    import orjson

    from gen_nodes.core import engine
    from gen_nodes.core.registry import default_registry

    spec = default_registry().get("list_api_keys")
    with sandbox_process(keys) as sb, engine_warnings() as warned, \
            engine_and_bare(sb, keys) as (client, through_engine, bare):
        samples = time_interleaved({"engine": through_engine, "first": through_engine, "baseline": bare},
                                   runs, warmup=warmup, policies={"engine": None, "first": "first", "baseline": None})
        # Each stage of engine.execute timed on its own, on the same data (kind "sub": part of the stage above).
        response = client.request(spec.method, spec.path, safe_to_retry=True)
        body = requests.get(sb.base_url + spec.path, headers={"X-API-Key": sb.api_key}).content
        args = engine.validate_input(spec, {})
        shaped = engine._shape(spec, args, response)
        stages = [
            ("HTTP + JSON decode (GenClient.request)",
             lambda: client.request(spec.method, spec.path, safe_to_retry=True), "stage"),
            ("  of which JSON decode alone (orjson.loads)", lambda: orjson.loads(body), "sub"),
            ("  [the baseline's decode: json.loads]", lambda: json.loads(body), "sub"),
            ("input validation", lambda: engine.validate_input(spec, {}), "stage"),
            ("shaping (wrap + filter)", lambda: engine._shape(spec, args, response), "stage"),
            ("output-schema check (compiled)", lambda: engine._check_output(spec, shaped), "stage"),
            ("secret wrapping (engine._hide_secrets)", lambda: engine._hide_secrets(spec, response, shaped), "stage"),
        ]
        timed = time_interleaved({name: fn for name, fn, _ in stages}, runs)

    title = f"(c) list_api_keys, {keys:,} keys"
    result = compare(
        bench_id, title,
        ("engine, every answer checked (default)", samples["engine"]),
        ("bare requests.Session GET + .json()", samples["baseline"]),
        extra=[("[diagnostic] engine, check first answer only", samples["first"])],
        keys=keys, runs=runs, warmup=warmup, response_bytes=len(body), schema_warnings=len(warned),
    )
    default_med = result["subject"]["median_s"]
    d = result["details"]
    d["breakdown"] = []
    for name, _, kind in stages:
        median = statistics.median(timed[name])
        d["breakdown"].append({"stage": name, "kind": kind, "median_s": median,
                               "share_of_default": _ratio(median, default_med)})
    d["sum_default_s"] = sum(b["median_s"] for b in d["breakdown"] if b["kind"] == "stage")
    check = next(b for b in d["breakdown"] if b["stage"].startswith("output-schema check"))
    d["per_key_check_us"] = check["median_s"] / keys * 1e6
    return result


# -- (d) size of the exported tool list -----------------------------------------------------


def token_counter() -> tuple[str, Callable[[str], int]]:
    """tiktoken's o200k_base when installed (and its data at hand), else characters / 4."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("o200k_base")
        return "tiktoken o200k_base", lambda text: len(encoding.encode(text))
    except Exception:  # not installed (not a dependency), or its data cannot be had offline
        return "chars/4 (rough estimate; tiktoken is not installed)", lambda text: math.ceil(len(text) / 4)


def bench_tool_list_size() -> dict[str, Any]:
    """(d) The exported tool list per format: compact-JSON characters and estimated tokens."""
    from gen_nodes.surfaces.llm.anthropic import anthropic_tools
    from gen_nodes.surfaces.llm.openai import chat_completions_tools, responses_tools
    from gen_nodes.core.registry import default_registry
    from gen_nodes.runtime.tools import build_tools, mcp_definition

    tools = build_tools(default_registry())  # as `gen-nodes tools`: prefix gen_, confirmation token
    estimator, count = token_counter()
    exports = {
        "openai (chat completions, strict)": chat_completions_tools(tools),
        "openai-responses (strict)": responses_tools(tools),
        "anthropic": anthropic_tools(tools),
        "mcp (tools/list)": [mcp_definition(tool) for tool in tools],
    }
    compact = lambda data: json.dumps(data, separators=(",", ":"), ensure_ascii=False)  # noqa: E731
    formats = [{"format": name, "tools": len(exported), "chars": len(compact(exported)),
                "tokens": count(compact(exported))} for name, exported in exports.items()]
    longest = max(tools, key=lambda t: len(t.description))
    return {
        "id": "tool_list_size", "title": f"(d) exported tool list, {len(tools)} tools",
        "target": None, "meets_target": None, "estimator": estimator, "formats": formats,
        "descriptions_chars": sum(len(t.description) for t in tools),
        "input_schemas_chars": sum(len(compact(t.input_schema)) for t in tools),
        "output_schemas_chars": sum(len(compact(t.output_schema)) for t in tools),  # in the MCP format only
        "longest_description": {"tool": longest.name, "chars": len(longest.description),
                                "tokens": count(longest.description)},
    }


# -- (e), (f) the MCP server over stdio -----------------------------------------------------


def mcp_server_params(sb: Any) -> tuple[Any, str]:
    """How to start ``gen-nodes mcp`` (stdio) against ``sb``; the SDK passes only ``env`` plus HOME, PATH, ..."""
    from mcp import StdioServerParameters

    argv, found = console_command("mcp")
    env = {"GEN_API_KEY": sb.api_key, "GEN_BASE_URL": sb.base_url}
    return StdioServerParameters(command=argv[0], args=argv[1:], env=env), _shown(argv, found)


@asynccontextmanager
async def mcp_session(params: Any) -> Any:
    """A ``ClientSession`` on a freshly spawned server, initialized (handshake era); its stderr in the error."""
    from mcp import ClientSession, stdio_client

    with tempfile.TemporaryFile("w+") as errlog:
        try:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    yield session
        except Exception as exc:
            errlog.seek(0)
            raise RuntimeError(f"gen-nodes mcp failed ({type(exc).__name__}); its stderr: "
                               f"{errlog.read()[-800:]}") from exc


async def _cold_tools_list(params: Any) -> tuple[float, float, int]:
    """Seconds from spawn to the tools/list answer, seconds to close, number of tools."""
    started = _now()
    async with mcp_session(params) as session:
        listed = len((await session.list_tools()).tools)
        answered = _now()
    return answered - started, _now() - answered, listed


def bench_mcp_cold_start(runs: int = 15, warmup: int = 1) -> dict[str, Any]:
    """(e) ``gen-nodes mcp``: spawn to ``tools/list`` answered vs. ``python -c "import mcp"``, alternating."""
    import anyio

    commands = {"baseline": [sys.executable, "-c", "import mcp"],
                "imports": [sys.executable, "-c", "import gen_nodes.surfaces.mcp.server"]}
    from gen_nodes.core.registry import default_registry

    expected = len(default_registry())
    samples: dict[str, list[float]] = {"server": [], "closing": [], "baseline": [], "imports": []}
    with sandbox_with_keys(1) as sb:
        params, shown = mcp_server_params(sb)
        for i, (name, _) in enumerate(schedule(["server", "baseline", "imports"], warmup + runs, 1)):
            if name == "server":
                to_list, closing, listed = anyio.run(_cold_tools_list, params)
                if listed != expected:
                    raise RuntimeError(f"tools/list gave {listed} tools, expected {expected}")
                timed = {"server": to_list, "closing": closing}
            else:
                timed = {name: _timed(lambda: _run_quiet(commands[name]))}
            if i >= 3 * warmup:
                for key, value in timed.items():
                    samples[key].append(value)
    result = compare(
        "mcp_cold_start", "(e) gen-nodes mcp: spawn to tools/list",
        (f"{shown}: spawn to tools/list answered", samples["server"]),
        ('python -c "import mcp" (start, import, exit)', samples["baseline"]),
        extra=[("[diagnostic] import gen_nodes.surfaces.mcp.server", samples["imports"])],
        runs=runs, warmup=warmup, command=[params.command, *params.args], tools_listed=expected,
    )
    closing = summarize(samples["closing"])
    result["details"]["closing"] = closing  # closing the session: stdin EOF, server exit, reaped
    result["details"]["ratio_median_with_closing"] = _ratio(
        result["subject"]["median_s"] + closing["median_s"], result["baseline"]["median_s"])
    return result


PEER = Path(__file__).resolve().parent / "mcp_peer.py"


def mcp_pair(sb: Any) -> dict[str, Any]:
    """Server parameters of ``gen-nodes mcp`` and of the peer (``benchmarks/mcp_peer.py``), both on ``sb``."""
    from mcp import StdioServerParameters

    ours, _ = mcp_server_params(sb)
    env = {"GEN_API_KEY": sb.api_key, "GEN_BASE_URL": sb.base_url}
    return {"gen-nodes": ours, "peer": StdioServerParameters(command=sys.executable, args=[str(PEER)], env=env)}


async def raw_call_tool(session: Any, name: str) -> Any:
    """``tools/call`` without the client's own outputSchema check (jsonschema, which would dominate
    a large list on both sides alike): what is timed is the server and the transport."""
    import mcp_types as types

    return await session.send_request(
        types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments={})), types.CallToolResult)


def bench_mcp_vs_peer(keys: int, calls: int, block: int, warmup: int, bench_id: str) -> dict[str, Any]:
    """(f), (g) ``tools/call gen_list_api_keys`` on ``gen-nodes mcp`` vs. the peer, one long-lived stdio
    session each, the sandbox in its own process, timed call by call in alternating blocks."""
    import anyio

    async def measure(pair: dict[str, Any]) -> dict[str, list[float]]:
        from contextlib import AsyncExitStack

        async with AsyncExitStack() as stack:
            sessions = {name: await stack.enter_async_context(mcp_session(params)) for name, params in pair.items()}

            async def call(name: str) -> None:
                result = await raw_call_tool(sessions[name], "gen_list_api_keys")
                if result.is_error or len(result.structured_content["api_keys"]) != keys:
                    raise RuntimeError(f"{name}: tools/call gen_list_api_keys failed: {result.content[0].text[:300]}")

            for _ in range(warmup):
                for name in sessions:
                    await call(name)
            samples: dict[str, list[float]] = {name: [] for name in sessions}
            for name, n in schedule(list(sessions), calls, block):
                for _ in range(n):
                    started = _now()
                    await call(name)
                    samples[name].append(_now() - started)
            return samples

    with sandbox_process(keys) as sb, check_output_policy(None):
        samples = anyio.run(measure, mcp_pair(sb))
    return compare(
        bench_id, f"({'f' if bench_id == 'mcp_call_latency' else 'g'}) MCP tools/call gen_list_api_keys, {keys:,} keys",
        ("gen-nodes mcp (stdio), every answer checked", samples["gen-nodes"]),
        ("minimal MCPServer peer (official SDK, pydantic output check)", samples["peer"]),
        keys=keys, calls_per_variant=calls, block=block, warmup=warmup,
    )


def bench_mcp_call_latency(calls: int = 1000, block: int = 25, warmup: int = 100, keys: int = 5) -> dict[str, Any]:
    """(f) the 5-key list over MCP: gen-nodes vs. the peer."""
    return bench_mcp_vs_peer(keys, calls, block, warmup, "mcp_call_latency")


def bench_mcp_large_list(calls: int = 30, block: int = 3, warmup: int = 2, keys: int = 10_000) -> dict[str, Any]:
    """(g) the 10,000-key list over MCP: gen-nodes vs. the peer."""
    return bench_mcp_vs_peer(keys, calls, block, warmup, "mcp_large_list")


# -- (h) the whole process, 100,000 keys ---------------------------------------------------

BARE_SCRIPT = """
import json, os, requests
resp = requests.get(os.environ["GEN_BASE_URL"] + "/persisted_tokens", headers={"X-API-Key": os.environ["GEN_API_KEY"]})
resp.raise_for_status()
print(json.dumps({"api_keys": resp.json()}, indent=2))
"""


# Linux starts a child's peak-memory count at its parent's size, so the command is started by this
# small launcher, not by the benchmark process (hundreds of MiB after the large lists).
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"seconds": time.perf_counter() - started, "maxrss_kib": usage.ru_maxrss,
                  "code": os.waitstatus_to_exitcode(status)}))
"""


def run_measured(argv: Sequence[str], env: Mapping[str, str]) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of one run of ``argv``, its output discarded."""
    with tempfile.TemporaryFile() as errlog:
        done = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=errlog, env=dict(env), check=False)
        measured = json.loads(done.stdout or b"{}") if done.returncode == 0 else {}
        if measured.get("code") != 0:
            errlog.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {measured.get('code', done.returncode)}: "
                               f"{errlog.read()[-500:]!r}")
    return measured["seconds"], measured["maxrss_kib"] * 1024  # Linux reports kilobytes


def bench_cli_large_list(keys: int = 100_000, runs: int = 5, warmup: int = 1) -> list[dict[str, Any]]:
    """(h) ``gen-nodes run list_api_keys`` (a process of its own) vs. a bare script doing GET, ``.json()`` and
    printing the same JSON: wall time and peak memory, alternating, the sandbox in its own process."""
    cli, found = console_command("run", "list_api_keys")
    bare = [sys.executable, "-c", BARE_SCRIPT]
    with sandbox_process(keys) as sb:
        env = {k: v for k, v in os.environ.items() if k != CHECK_ENV}
        env.update(GEN_API_KEY=sb.api_key, GEN_BASE_URL=sb.base_url)
        seconds: dict[str, list[float]] = {"cli": [], "bare": []}
        peak: dict[str, list[float]] = {"cli": [], "bare": []}
        for i, (name, _) in enumerate(schedule(["cli", "bare"], warmup + runs, 1)):
            took, rss = run_measured(cli if name == "cli" else bare, env)
            if i >= 2 * warmup:
                seconds[name].append(took)
                peak[name].append(rss / 2**20)
    details = {"keys": keys, "runs": runs, "warmup": warmup, "command": cli, "found_as": found}
    timed = compare("cli_large_list", f"(h) {_shown(cli, found)}, {keys:,} keys: wall time",
                    ("whole process, every answer checked", seconds["cli"]),
                    ("bare script: requests GET, .json(), print(json.dumps(..., indent=2))", seconds["bare"]),
                    **details)
    memory = compare("cli_large_list_memory", f"(h) the same: peak memory (RSS)",
                     ("whole process", peak["cli"]), ("the same bare script", peak["bare"]), **details)
    memory["unit"] = "MiB"
    return [timed, memory]


# -- (i), (j) the HTTP gateway -----------------------------------------------------------------

GATEWAY_START_TIMEOUT = 60


@contextmanager
def _served(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A server process started by ``argv`` that prints ``{"url": ...}`` first; its URL, stopped after."""
    errlog = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errlog, stdin=subprocess.DEVNULL, text=True,
                            env=None if env is None else {**os.environ, **env})
    try:
        line = proc.stdout.readline()
        if not line:
            errlog.seek(0)
            raise RuntimeError(f"{' '.join(argv)} did not start: {errlog.read()[-800:]}")
        yield json.loads(line)["url"]
    finally:
        errlog.close()
        _stop(proc, timeout=15)


def _stop(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate ``proc``; kill it if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def gateway_command(base_url: str, store: Path | str) -> list[str]:
    """``gen-nodes serve`` on a free port; ``store`` is a SQLite file or a store URL (``redis://...``)."""
    url = store if isinstance(store, str) else f"sqlite:///{store}"
    argv, _ = console_command("serve", "--port", "0", "--base-url", base_url, "--store", url)
    return argv


def baseline_command(base_url: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve().parent / "minimal_gateway.py"), base_url]


def _lister(url: str, api_key: str, keys: int) -> tuple[requests.Session, Callable[[], Any]]:
    session = requests.Session()

    def call() -> Any:
        answer = session.post(f"{url}/actions/list_api_keys", headers={"X-API-Key": api_key})
        answer.raise_for_status()
        if len(answer.json()["api_keys"]) != keys:
            raise RuntimeError(f"{url} listed {len(answer.json()['api_keys'])} keys, expected {keys}")
        return answer

    return session, call


def bench_gateway_call(calls: int = 1000, block: int = 25, warmup: int = 100, keys: int = 5) -> dict[str, Any]:
    """(i) ``POST /actions/list_api_keys`` through ``gen-nodes serve`` vs. a direct engine call, call by call."""
    from gen_nodes.client.http import GenClient
    from gen_nodes.core.registry import default_registry

    registry = default_registry()
    with sandbox_process(keys) as sb, tempfile.TemporaryDirectory() as tmp, \
            _served(gateway_command(sb.base_url, Path(tmp) / "gateway.db")) as gateway, \
            _served(baseline_command(sb.base_url)) as minimal, \
            GenClient(api_key=sb.api_key, base_url=sb.base_url) as client, check_output_policy(None):
        api_key = sb.api_key
        session, through_gateway = _lister(gateway, api_key, keys)
        minimal_session, through_minimal = _lister(minimal, api_key, keys)
        with session, minimal_session:
            samples = time_interleaved({
                "gateway": through_gateway,
                "engine": lambda: registry.run("list_api_keys", {}, client=client),
                "minimal": through_minimal,
            }, calls, block=block, warmup=warmup)
    result = compare(
        "gateway_call", f"(i) list_api_keys through the gateway, {keys} keys",
        ("POST /actions/list_api_keys to gen-nodes serve (loopback)", samples["gateway"]),
        ("direct engine call (registry.run)", samples["engine"]),
        extra=[("[diagnostic] the same POST to a minimal Starlette app + requests", samples["minimal"])],
        keys=keys, calls_per_variant=calls, block=block, warmup=warmup,
    )
    result["details"]["gateway_overhead_median_s"] = result["subject"]["median_s"] - result["extra"][0]["median_s"]
    return result


def _load_round(url: str, api_key: str, keys: int, clients: int, per_client: int) -> tuple[float, list[float]]:
    """``clients`` threads, each with its own connection, each sending ``per_client`` calls at once;
    the round's wall time and every call's latency."""
    import threading

    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[BaseException] = []

    def client_thread(out: list[float]) -> None:
        session, call = _lister(url, api_key, keys)
        with session:
            call()  # connect before the clock starts
            barrier.wait()
            try:
                for _ in range(per_client):
                    started = _now()
                    call()
                    out.append(_now() - started)
            except BaseException as exc:  # reported after the round
                failures.append(exc)

    threads = [threading.Thread(target=client_thread, args=(latencies[i],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = _now()
    for thread in threads:
        thread.join()
    wall = _now() - started
    if failures:
        raise RuntimeError(f"a client of {url} failed: {failures[0]!r}")
    return wall, [x for per in latencies for x in per]


def bench_gateway_throughput(clients: int = 20, per_client: int = 50, rounds: int = 6, keys: int = 5) -> dict[str, Any]:
    """(j) ``clients`` concurrent clients on the gateway vs. on a minimal Starlette app that calls the
    sandbox with ``requests``; rounds alternate between the two. Target: at most 1.05 on latency
    (median per call) and on throughput (the minimal app's calls per second over the gateway's)."""
    samples: dict[str, list[float]] = {"gateway": [], "minimal": []}
    per_call: dict[str, list[float]] = {"gateway": [], "minimal": []}
    with sandbox_process(keys) as sb, tempfile.TemporaryDirectory() as tmp, \
            _served(gateway_command(sb.base_url, Path(tmp) / "gateway.db")) as gateway, \
            _served(baseline_command(sb.base_url)) as minimal, check_output_policy(None):
        api_key = sb.api_key
        urls = {"gateway": gateway, "minimal": minimal}
        for name in urls:  # warm-up round each: threads, connections, the first (checked) answer
            _load_round(urls[name], api_key, keys, clients, max(1, per_client // 5))
        for name, _ in schedule(["gateway", "minimal"], rounds, 1):
            wall, latencies = _load_round(urls[name], api_key, keys, clients, per_client)
            samples[name] += latencies
            per_call[name].append(wall / (clients * per_client))
    result = compare(
        "gateway_throughput", f"(j) {clients} concurrent clients, list_api_keys, {keys} keys",
        ("gen-nodes serve: latency per call", samples["gateway"]),
        ("minimal Starlette app + requests: latency per call", samples["minimal"]),
        clients=clients, per_client=per_client, rounds=rounds, keys=keys,
    )
    throughput = {name: 1 / statistics.median(values) for name, values in per_call.items()}
    ratio = _ratio(throughput["minimal"], throughput["gateway"])
    result["details"].update(throughput_per_s=throughput, throughput_ratio=ratio)
    if result["target"] is not None:
        result["meets_target"] = result["ratio_median"] <= result["target"] and ratio <= result["target"]
    return result


def _module_beside(folder: str, name: str) -> Any:
    """The module ``name`` from ``folder`` relative to this file (benchmarks/ and tests/ are not installed)."""
    import importlib

    sys.path.insert(0, str((Path(__file__).resolve().parent / folder).resolve()))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


# -- (k) chat-ops ------------------------------------------------------------------------------

#: (k) the signing secret both Slack apps check (the benchmark signs as Slack does, with slack_sdk).
SLACK_SECRET = "bench-signing-secret-0123456789abcdef"
#: (k) a p99 ack at most this long (seconds), besides the ratio target.
ACK_P99_LIMIT_S = 0.3


def _arrivals_recorder(chat: Any) -> Any:
    """The suite's Slack double (Web API and every ``response_url`` on loopback), also keeping when
    each request arrived (perf_counter) by path."""

    class Arrivals(chat.Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.arrived: dict[str, float] = {}

        def answer(self, entry: Any) -> tuple[int, Any]:
            self.arrived[entry.path] = _now()
            return super().answer(entry)

    return Arrivals()


def _slash_round(events: str, web: Any, chat: Any, tag: str, commands: int) -> tuple[list[float], list[float]]:
    """``commands`` signed ``/gen keys list`` posted at once (a thread each); each one's ack latency
    and the time until its answer reached its own ``response_url``."""
    import threading

    barrier = threading.Barrier(commands)
    acks, answers = [0.0] * commands, [0.0] * commands
    paths = [f"/response/{tag}/{i}/" for i in range(commands)]
    failures: list[str] = []

    def command(i: int) -> None:
        body, headers = chat.slack_signed(SLACK_SECRET, chat.slash_form("keys list", web.url + paths[i]))
        barrier.wait()
        started = _now()
        ack = requests.post(events, data=body, headers=headers, timeout=30)
        acks[i] = _now() - started
        if ack.status_code != 200:
            failures.append(f"ack {ack.status_code}")
        web.wait_for(paths[i], timeout=60)
        answers[i] = web.arrived[paths[i]] - started

    threads = [threading.Thread(target=command, args=(i,)) for i in range(commands)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures or not all(answers):
        raise RuntimeError(f"{events}: {failures[:1] or 'an answer did not reach its response_url'}")
    return acks, answers


@contextmanager
def _slack_apps(sb: Any, web: Any) -> Iterator[dict[str, str]]:
    """``{"gen-nodes": url, "minimal": url}``: both Slack apps (``benchmarks/slack_server.py``), each
    served in a process of its own, the same way."""
    script = str(Path(__file__).resolve().parent / "slack_server.py")
    env = {"BENCH_SLACK_SECRET": SLACK_SECRET, "BENCH_GEN_KEY": sb.api_key}
    argv = lambda which: [sys.executable, script, which, sb.base_url, web.url + "/api/"]  # noqa: E731
    with _served(argv("gen-nodes"), env=env) as ours, _served(argv("minimal"), env=env) as theirs:
        yield {"gen-nodes": ours + "/slack/events", "minimal": theirs + "/slack/events"}


def bench_chatops(commands: int = 50, rounds: int = 4, keys: int = 5) -> dict[str, Any]:
    """(k) ``commands`` concurrent ``/gen keys list`` to gen-nodes' Slack app vs. a minimal Bolt app
    (``benchmarks/minimal_bolt.py``), rounds alternating, one sandbox, each app in a process of its own.
    Target: p99 ack at most 1.2 times the baseline's and under 300 ms."""
    chat = _module_beside("../tests", "chat_support")
    acks: dict[str, list[float]] = {"gen-nodes": [], "minimal": []}
    answers: dict[str, list[float]] = {"gen-nodes": [], "minimal": []}
    with sandbox_process(keys) as sb, _arrivals_recorder(chat) as web, _slack_apps(sb, web) as apps, \
            check_output_policy(None):
        for name in apps:  # warm-up round each
            _slash_round(apps[name], web, chat, f"{name}-warm", commands)
        for r, (name, _) in enumerate(schedule(list(apps), rounds, 1)):
            ack, answer = _slash_round(apps[name], web, chat, f"{name}-{r}", commands)
            acks[name] += ack
            answers[name] += answer
    p99 = {name: statistics.quantiles(xs, n=100, method="inclusive")[98] for name, xs in acks.items()}
    result = compare(
        "chatops", f"(k) {commands} concurrent Slack /gen keys list: the ack",
        ("gen-nodes' Slack app: ack", acks["gen-nodes"]), ("minimal Bolt app (lazy listener): ack", acks["minimal"]),
        extra=[("gen-nodes: the answer at response_url", answers["gen-nodes"]),
               ("minimal Bolt app: the answer at response_url", answers["minimal"])],
        commands=commands, rounds=rounds, keys=keys, ack_p99_s=p99, ack_p99_ratio=_ratio(p99["gen-nodes"], p99["minimal"]),
    )
    result["meets_target"] = result["details"]["ack_p99_ratio"] <= result["target"] and p99["gen-nodes"] < ACK_P99_LIMIT_S
    return result


# -- (l) idempotent create --------------------------------------------------------------------

#: (l) at most this much time an Idempotency-Key may add to a create (median), besides the ratio target.
IDEMPOTENCY_ADDED_LIMIT_S = 1e-3


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A private redis-server on loopback (``tests/redis_support.start_redis``, the suite's own), its URL;
    None when there is no ``redis-server`` on PATH, so the caller reports its row as skipped."""
    if shutil.which("redis-server") is None:
        yield None
        return
    proc, url = _module_beside("../tests", "redis_support").start_redis()
    try:
        yield url
    finally:
        _stop(proc, timeout=10)


def _state_secret() -> dict[str, str]:
    """A shared store (Redis) encrypts what it keeps: a fresh ``GEN_NODES_STATE_SECRET`` for this run."""
    import secrets

    return {"GEN_NODES_STATE_SECRET": secrets.token_hex(32)}


def _creator(url: str, api_key: str, with_key: bool) -> tuple[requests.Session, Callable[[], Any]]:
    """A session and a call that creates one key through the gateway at ``url``, with a fresh
    ``Idempotency-Key`` each call when ``with_key`` (each is a first call: the store records it)."""
    import uuid

    session = requests.Session()

    def call() -> Any:
        headers = {"X-API-Key": api_key}
        if with_key:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        answer = session.post(f"{url}/actions/create_api_key", headers=headers, json={"name": "bench"})
        answer.raise_for_status()
        if answer.headers.get("Idempotent-Replayed"):
            raise RuntimeError(f"{url} replayed a create that had a new Idempotency-Key")
        return answer

    return session, call


def _store_writes(store: Any) -> Callable[[], Any]:
    """What any first call with an Idempotency-Key costs a store at least, from this process: the
    record opened (``add``) and completed (``set``), with values the size of the gateway's."""
    import uuid

    opened = {"fingerprint": "f" * 64, "state": "in_progress", "lease_until": time.time() + 600}
    done = {"fingerprint": "f" * 64, "state": "done", "response": {
        "status": 200, "headers": {}, "body": {"id": 1, "name": "bench", "created_at": "2026-01-01T00:00:00Z",
                                               "token": {"$sealed": "s" * 140, "mask": "gen_pat_…ssss"}}}}

    def writes() -> None:
        key = "bench-floor:" + uuid.uuid4().hex
        if not store.add(key, opened, ttl=600):
            raise RuntimeError("a fresh key was already in the store")
        store.set(key, done, ttl=600)

    return writes


def bench_idempotent_create(calls: int = 300, block: int = 10, warmup: int = 20) -> dict[str, Any]:
    """(l) ``POST /actions/create_api_key`` with a fresh ``Idempotency-Key`` (SQLite store; and a
    gateway on a Redis store when ``redis-server`` is on PATH) vs. the same create without one on the
    same gateway, call by call in alternating blocks, one sandbox. Target: median ratio <= 1.2 and
    under 1 ms added, each store. Diagnostic rows: each store's two writes alone (the floor)."""
    from gen_nodes.state import open_store

    with sandbox_process(1) as sb, tempfile.TemporaryDirectory() as tmp, redis_server() as redis_url, \
            _served(gateway_command(sb.base_url, Path(tmp) / "gateway.db")) as gateway, \
            (_served(gateway_command(sb.base_url, redis_url), env=_state_secret()) if redis_url else nullcontext()) \
            as redis_gateway, \
            check_output_policy(None):
        stores = {"sqlite_floor": open_store(f"sqlite:///{tmp}/floor.db")}
        variants = {"plain": _creator(gateway, sb.api_key, False), "sqlite": _creator(gateway, sb.api_key, True)}
        if redis_gateway:
            stores["redis_floor"] = open_store(redis_url)
            variants["redis"] = _creator(redis_gateway, sb.api_key, True)
            variants["plain_redis"] = _creator(redis_gateway, sb.api_key, False)
        calls_by_name = {name: call for name, (_, call) in variants.items()}
        calls_by_name.update({name: _store_writes(store) for name, store in stores.items()})
        try:
            samples = time_interleaved(calls_by_name, calls, block=block, warmup=warmup)
        finally:
            for session, _ in variants.values():
                session.close()
            for store in stores.values():
                store.close()
    return _idempotent_create_result(samples, calls_per_variant=calls, block=block, warmup=warmup,
                                     redis_url=redis_url)


def _idempotent_create_result(samples: dict[str, list[float]], *, redis_url: str | None,
                              **details: Any) -> dict[str, Any]:
    """(l)'s result: each store's row against the same create without a key on its own gateway; the
    stores' two writes alone as diagnostic rows; the target checked on the store rows."""
    extra = [("with an Idempotency-Key, Redis store", samples["redis"])] if "redis" in samples else []
    floors = [("[diagnostic] the SQLite store's two writes alone (add, set), from the benchmark's process",
               samples["sqlite_floor"])]
    if "redis_floor" in samples:
        floors.append(("[diagnostic] the Redis store's two writes alone (add, set), from the benchmark's process",
                       samples["redis_floor"]))
    result = compare(
        "idempotent_create", "(l) create_api_key through the gateway: with an Idempotency-Key vs. without",
        ("with an Idempotency-Key, SQLite store", samples["sqlite"]),
        ("the same create without one", samples["plain"]), extra=[*extra, *floors], **details,
        redis_skipped=None if redis_url else "no redis-server on PATH (Debian's redis-server package)",
    )
    rows = [result["subject"], *result["extra"][:len(extra)]]
    if extra:
        _against_own_baseline(rows[1], ("the same create without one, on that gateway", samples["plain_redis"]))
    added = {row["label"]: row["median_s"] - row.get("baseline", result["baseline"])["median_s"] for row in rows}
    result["details"]["added_median_s"] = added
    result["details"]["store_writes_median_s"] = {label: row["median_s"] for label, row in
                                                  zip(("sqlite", "redis"), result["extra"][len(extra):])}
    result["meets_target"] = all(row["ratio_median"] <= result["target"] for row in rows) and \
        all(x < IDEMPOTENCY_ADDED_LIMIT_S for x in added.values())
    return result


def _against_own_baseline(row: dict[str, Any], baseline: tuple[str, Sequence[float]]) -> None:
    """Give an extra row a baseline of its own (and its ratios against it): the Redis store is served by
    a gateway process of its own, and on a shared machine two processes get different shares of the
    CPU, so it is compared with the same create on that process."""
    own = {"label": baseline[0], **summarize(baseline[1])}
    row.update(baseline=own, ratio_median=_ratio(row["median_s"], own["median_s"]),
               ratio_p90=_ratio(row["p90_s"], own["p90_s"]))


# -- (m) the approval round trip ---------------------------------------------------------------

#: (m) how often the benchmark's client polls an approval (a real client waits ``Retry-After``).
APPROVAL_POLL_EVERY_S = 0.005


def _approval_round_trip(gateway: str, direct: str, api_key: str, person: Any) -> dict[str, float]:
    """One revoke held for approval: seconds from the request to the 202, the notice, the decision and
    the poll's 200; and the same revoke (of another key) on the gateway that acts at once."""
    headers = {"X-API-Key": api_key}
    doomed = [requests.post(f"{direct}/actions/create_api_key", headers=headers, json={"name": "bench-approval"},
                            timeout=30).json()["id"] for _ in range(2)]
    started = _now()
    asked = requests.post(f"{gateway}/actions/revoke_api_key", headers=headers, json={"id": doomed[0]}, timeout=30)
    answered = _now()
    if asked.status_code != 202:
        raise RuntimeError(f"the approval gateway answered {asked.status_code}, not 202")
    approval = asked.json()["approval"]
    while True:
        polled = requests.get(approval["poll"], headers=headers, timeout=30)
        if polled.status_code == 200:
            break
        if polled.status_code != 202:
            raise RuntimeError(f"polling the approval answered {polled.status_code}")
        time.sleep(APPROVAL_POLL_EVERY_S)
    done = _now()
    if polled.json() != {"id": doomed[0], "revoked": True}:
        raise RuntimeError("the approved revoke did not answer its outcome")
    person_times = person.wait(approval["id"])
    at_once = _timed(lambda: requests.post(f"{direct}/actions/revoke_api_key", headers=headers,
                                           json={"id": doomed[1]}, timeout=30).raise_for_status())
    return {"round_trip": done - started, "answered": answered - started,
            "notified": person_times["notified"] - started, "decided": person_times["decided"] - started,
            "at_once": at_once, "retry_after": float(asked.headers["Retry-After"])}


def bench_approval_round_trip(runs: int = 20) -> dict[str, Any]:
    """(m) ``revoke_api_key`` on ``gen-nodes serve --confirmation approval`` with a webhook target whose
    person approves through the page link at once: the request, the notice (the gateway notifies before
    it answers), its 202, the decision, the poll's 200; vs. the same revoke on a gateway that acts at once. No target: reported."""
    WebhookPerson = _module_beside(".", "approval_person").WebhookPerson  # noqa: N806 (a class)
    steps: dict[str, list[float]] = {}
    with sandbox_process(1) as sb, tempfile.TemporaryDirectory() as tmp, WebhookPerson() as person:
        approval = [*gateway_command(sb.base_url, Path(tmp) / "approval.db"), "--confirmation", "approval",
                    "--approval-notify", person.url]
        with _served(approval, env={"GEN_NODES_NOTIFY_SECRET": "bench-notify-secret"}) as gateway, \
                _served(gateway_command(sb.base_url, Path(tmp) / "direct.db")) as direct, check_output_policy(None):
            _approval_round_trip(gateway, direct, sb.api_key, person)  # warm-up: connections, first answers
            for _ in range(runs):
                for step, seconds in _approval_round_trip(gateway, direct, sb.api_key, person).items():
                    steps.setdefault(step, []).append(seconds)
    return compare(
        "approval_round_trip", "(m) revoke_api_key held for approval: request to the poll's answer",
        ("request -> 202 -> notify -> the page's GET and POST -> the poll's 200", steps["round_trip"]),
        ("the same revoke on a gateway that acts at once", steps["at_once"]),
        extra=[("of which: the webhook notified (before the 202)", steps["notified"]),
               ("the 202 answered", steps["answered"]),
               ("the person's decision posted", steps["decided"])],
        runs=runs, poll_every_s=APPROVAL_POLL_EVERY_S, retry_after_s=statistics.median(steps["retry_after"]),
    )


# -- report -------------------------------------------------------------------------------


def _t(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def _verdict(result: dict[str, Any]) -> str:
    if result["target"] is None:
        return "(no target)"
    return f"<= {result['target']:.2f} " + ("OK" if result["meets_target"] else "MISS")


def _waiting_notes(r: dict[str, Any], d: dict[str, Any]) -> list[str]:
    """The notes of (k), (l), (m): where users wait on chat-ops, idempotency and approvals."""
    out: list[str] = []
    if r["id"] == "chatops":
        p99 = d["ack_p99_s"]
        out.append(f"  ack p99: gen-nodes {_t(p99['gen-nodes'])}, minimal Bolt app {_t(p99['minimal'])}; ratio "
                   f"{d['ack_p99_ratio']:.2f} (target <= {r['target']:.2f} and under {_t(ACK_P99_LIMIT_S)}); "
                   f"{d['commands']} commands x {d['rounds']} rounds, alternating")
    elif r["id"] == "idempotent_create":
        added = ", ".join(f"{label}: {_t(x)}" for label, x in d["added_median_s"].items())
        out.append(f"  added by the Idempotency-Key (median): {added} (target: under "
                   f"{_t(IDEMPOTENCY_ADDED_LIMIT_S)} and ratio <= {r['target']:.2f}, each store)")
        floors = ", ".join(f"{store} {_t(x)}" for store, x in d["store_writes_median_s"].items())
        out.append(f"  the store's two writes alone (the floor of any first call; median): {floors}")
        if d["redis_skipped"]:
            out.append(f"  Redis store: skipped, {d['redis_skipped']}")
    elif r["id"] == "approval_round_trip":
        out.append(f"  the person approves as soon as the webhook is notified; the client polls every "
                   f"{_t(d['poll_every_s'])} (a real client waits the Retry-After, {d['retry_after_s']:.0f} s)")
    return out


def _notes(r: dict[str, Any]) -> list[str]:
    """The lines under a benchmark's title in the report that only that benchmark has."""
    out: list[str] = []
    d = r.get("details", {})
    if r["id"] == "engine_overhead":
        out.append(f"  overhead per call (median): {_t(d['overhead_median_s'])}; checking every answer adds "
                   f"{_t(d['output_check_median_s'])}; schema warnings: {d['schema_warnings']}")
    elif r["id"] == "cli_cold_start":
        out.append(f"  command: {' '.join(d['command'])} ({d['found_as']})")
        imp = d.get("importtime")
        if imp:
            out.append(f"  -X importtime, all imports: {_t(imp['total_us'] / 1e6)}; heaviest top-level:")
            out += [f"    {x['module']:<32} {_t(x['cumulative_us'] / 1e6):>9} cumulative"
                    for x in imp["top_level"][:6]]
            out.append("  heaviest by cumulative time:")
            out += [f"    {x['module']:<32} {_t(x['cumulative_us'] / 1e6):>9} cumulative, "
                    f"{_t(x['self_us'] / 1e6)} self" for x in imp["top_cumulative"][:6]]
    elif r["id"] in ("large_list", "large_list_big"):
        out.append(f"  response: {d['response_bytes'] / 1e6:.1f} MB; schema warnings: {d['schema_warnings']}; "
                   f"breakdown (median of {d['runs']} runs each; share of the engine's median):")
        for b in d["breakdown"]:
            out.append(f"    {b['stage']:<54} {_t(b['median_s']):>9}  {b['share_of_default']:>6.1%}")
        out.append(f"    {'sum of the stages':<54} {_t(d['sum_default_s']):>9}")
        out.append(f"  output-schema check per key: {d['per_key_check_us']:.2f} us")
    elif r["id"] == "tool_list_size":
        out.append(f"  compact JSON; tokens: {r['estimator']}")
        out += [f"    {f['format']:<36} {f['chars']:>6,} chars  ~{f['tokens']:>5,} tokens" for f in r["formats"]]
        ld = r["longest_description"]
        out.append(f"  of which: tool descriptions {r['descriptions_chars']:,} chars, input schemas (plain) "
                   f"{r['input_schemas_chars']:,}, output schemas (MCP only) {r['output_schemas_chars']:,}")
        out.append(f"  longest tool description: {ld['tool']}, {ld['chars']} chars (~{ld['tokens']} tokens)")
    elif r["id"] == "mcp_cold_start":
        out.append(f"  command: {' '.join(d['command'])}; then closing the session (server exit): "
                   f"{_t(d['closing']['median_s'])} median, not counted; ratio with it: "
                   f"{d['ratio_median_with_closing']:.2f}")
    elif r["id"] == "gateway_call":
        out.append(f"  the gateway's own work over a minimal app doing the same POST (validation, shaping, error "
                   f"mapping, its middleware): {_t(d['gateway_overhead_median_s'])} per call (median)")
    elif r["id"] == "gateway_throughput":
        tp = d["throughput_per_s"]
        out.append(f"  throughput: gateway {tp['gateway']:.0f} calls/s, minimal app {tp['minimal']:.0f} calls/s; "
                   f"ratio {d['throughput_ratio']:.2f} (target <= {r['target']:.2f}); {d['clients']} clients x "
                   f"{d['per_client']} calls x {d['rounds']} rounds, alternating")
    elif r["id"] in ("chatops", "idempotent_create", "approval_round_trip"):
        out += _waiting_notes(r, d)
    elif r["id"] == "cli_large_list":
        out.append(f"  command: {' '.join(d['command'])} ({d['found_as']}); output to /dev/null")
    return out


def format_table(report: dict[str, Any]) -> str:
    """The timings as a compact table (extra rows indented under their benchmark), then notes per benchmark."""
    meta = report["meta"]
    timed = [r for r in report["results"] if "subject" in r]
    head = ("benchmark", "subject med / p90", "baseline med / p90", "ratio med / p90", "target")
    rows = [head]
    for r in timed:
        fmt = (lambda x: f"{x:.0f} MiB") if r.get("unit") == "MiB" else _t
        pair = lambda s: f"{fmt(s['median_s'])} / {fmt(s['p90_s'])}"  # noqa: E731
        rows.append((r["title"], pair(r["subject"]), pair(r["baseline"]),
                     f"{r['ratio_median']:.2f} / {r['ratio_p90']:.2f}", _verdict(r)))
        rows += [(f"  {e['label']}", pair(e), pair(e["baseline"]) if "baseline" in e else "(same baseline)",
                  f"{e['ratio_median']:.2f} / {e['ratio_p90']:.2f}", "") for e in r["extra"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    line = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    out = [f"gen-nodes benchmarks - Python {meta['python']}, {meta['platform']}, {meta['cpus']} CPUs, "
           f"{CHECK_ENV}={meta['check_output_env'] or '(unset)'}, {meta['elapsed_s']:.0f} s"]
    if timed:
        out += ["", line(head), line(["-" * w for w in widths]), *map(line, rows[1:])]
    for r in report["results"]:
        out += ["", f"{r['title']}:"]
        if "subject" in r:
            out += [f"  subject:  {r['subject']['label']}  (n={r['subject']['n']})",
                    f"  baseline: {r['baseline']['label']}  (n={r['baseline']['n']})"]
            out += [f"  also:     {e['label']}  (n={e['n']})" + (f", vs. {e['baseline']['label']}" if "baseline" in e
                                                                   else "") for e in r["extra"]]
        out += _notes(r)
    return "\n".join(out)


def run_all(*, only: Sequence[str] = tuple(BENCHMARKS), calls: int = 2000, block: int = 25, warmup: int = 200,
            cold_runs: int = 15, keys: int = 10_000, large_runs: int = 5, big_keys: int = 100_000, big_runs: int = 3,
            mcp_runs: int = 15, mcp_calls: int = 1000, mcp_large_calls: int = 30, cli_runs: int = 5,
            importtime: bool | None = None, gateway_calls: int = 1000, clients: int = 20, per_client: int = 50,
            load_rounds: int = 6, idem_calls: int = 300, approval_runs: int = 20,
            chat_commands: int = 50, chat_rounds: int = 4) -> dict[str, Any]:
    """Run the chosen benchmarks; return ``{"meta": ..., "results": [...]}``."""
    started = _now()
    check_env = os.environ.get(CHECK_ENV)
    runners = {
        "a": lambda: bench_engine_overhead(calls=calls, block=block, warmup=warmup),
        "b": lambda: bench_cli_cold_start(runs=cold_runs, importtime=importtime),
        "c": lambda: [bench_large_list(keys=keys, runs=large_runs),
                      bench_large_list(keys=big_keys, runs=big_runs, bench_id="large_list_big")],
        "d": bench_tool_list_size,
        "e": lambda: bench_mcp_cold_start(runs=mcp_runs),
        "f": lambda: bench_mcp_call_latency(calls=mcp_calls, block=block, warmup=min(warmup, 100)),
        "g": lambda: bench_mcp_large_list(calls=mcp_large_calls, block=max(1, min(block, mcp_large_calls // 10))),
        "h": lambda: bench_cli_large_list(keys=big_keys, runs=cli_runs),
        "i": lambda: bench_gateway_call(calls=gateway_calls, block=block, warmup=min(warmup, 100)),
        "j": lambda: bench_gateway_throughput(clients=clients, per_client=per_client, rounds=load_rounds),
        "k": lambda: bench_chatops(commands=chat_commands, rounds=chat_rounds),
        "l": lambda: bench_idempotent_create(calls=idem_calls, block=min(block, 10), warmup=min(warmup, 20)),
        "m": lambda: bench_approval_round_trip(runs=approval_runs),
    }
    results = []
    for key in BENCHMARKS:
        if key in only:
            produced = runners[key]()
            results += produced if isinstance(produced, list) else [produced]
    from gen_nodes import __version__

    meta = {
        "gen_nodes": __version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "requests": requests.__version__,
        "check_output_env": check_env,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "elapsed_s": _now() - started,
    }
    return {"meta": meta, "results": results}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gen-nodes benchmarks (see the module docstring).")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of " + ",".join(BENCHMARKS))
    parser.add_argument("--calls", type=_positive, default=2000, help="(a) timed calls per variant (default 2000)")
    parser.add_argument("--block", type=_positive, default=25, help="(a), (f) calls per alternating block (default 25)")
    parser.add_argument("--warmup", type=int, default=200, help="(a), (f) warm-up calls per variant (default 200)")
    parser.add_argument("--cold-runs", type=_positive, default=15, help="(b) runs per command (default 15)")
    parser.add_argument("--keys", type=_positive, default=10_000, help="(c) keys listed (default 10000)")
    parser.add_argument("--large-runs", type=_positive, default=5, help="(c) runs per variant and stage (default 5)")
    parser.add_argument("--big-keys", type=_positive, default=100_000,
                        help="(c), (h) keys of the large list (default 100000)")
    parser.add_argument("--big-runs", type=_positive, default=3, help="(c) runs per variant at --big-keys (default 3)")
    parser.add_argument("--mcp-runs", type=_positive, default=15, help="(e) runs per command (default 15)")
    parser.add_argument("--mcp-calls", type=_positive, default=1000, help="(f) timed calls per variant (default 1000)")
    parser.add_argument("--mcp-large-calls", type=_positive, default=30,
                        help="(g) timed calls per variant, 10,000 keys (default 30)")
    parser.add_argument("--cli-runs", type=_positive, default=5, help="(h) runs per command (default 5)")
    parser.add_argument("--gateway-calls", type=_positive, default=1000, help="(i) timed calls per variant (default 1000)")
    parser.add_argument("--clients", type=_positive, default=20, help="(j) concurrent clients (default 20)")
    parser.add_argument("--per-client", type=_positive, default=50, help="(j) calls per client per round (default 50)")
    parser.add_argument("--load-rounds", type=_positive, default=6, help="(j) timed rounds per variant, alternating (default 6)")
    parser.add_argument("--chat-commands", type=_positive, default=50,
                        help="(k) concurrent slash commands per round (default 50)")
    parser.add_argument("--chat-rounds", type=_positive, default=4,
                        help="(k) timed rounds per app, alternating (default 4)")
    parser.add_argument("--idem-calls", type=_positive, default=300,
                        help="(l) timed creates per variant (default 300)")
    parser.add_argument("--approval-runs", type=_positive, default=20,
                        help="(m) timed approval round trips (default 20)")
    parser.add_argument("--importtime", action="store_true", default=None,
                        help="(b) run the -X importtime analysis even when on target")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a benchmark misses its target")
    args = parser.parse_args(argv)
    only = [part.strip() for part in args.only.split(",") if part.strip()]
    if not only or set(only) - set(BENCHMARKS):
        parser.error(f"--only takes a comma-separated subset of {','.join(BENCHMARKS)}, not {args.only!r}")

    report = run_all(only=only, calls=args.calls, block=args.block, warmup=args.warmup, cold_runs=args.cold_runs,
                     keys=args.keys, large_runs=args.large_runs, big_keys=args.big_keys, big_runs=args.big_runs,
                     mcp_runs=args.mcp_runs, mcp_calls=args.mcp_calls, mcp_large_calls=args.mcp_large_calls,
                     cli_runs=args.cli_runs, importtime=args.importtime, gateway_calls=args.gateway_calls,
                     clients=args.clients, per_client=args.per_client, load_rounds=args.load_rounds,
                     idem_calls=args.idem_calls, approval_runs=args.approval_runs,
                     chat_commands=args.chat_commands, chat_rounds=args.chat_rounds)
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nJSON written to {args.json}")
    missed = [r["id"] for r in report["results"] if r["meets_target"] is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
