"""Smoke test of benchmarks/run.py: the benchmark functions run with tiny counts and report well-formed results.

Nothing here is timed against a target: a loaded CI machine must not fail it. Only the
structure of the results and that every ratio is a positive finite number are checked.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest
import requests

from gen_nodes.core.registry import default_registry

RUN_PY = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
CHECK_ENV = "GEN_NODES_CHECK_OUTPUT"


@pytest.fixture(scope="module")
def bench():
    # Loaded by path: benchmarks/ is not part of the installed package (CI installs a wheel).
    spec = importlib.util.spec_from_file_location("gen_nodes_benchmarks_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture
def env_untouched():
    """The benchmarks set GEN_NODES_CHECK_OUTPUT around some blocks; it must be as before afterwards."""
    before = os.environ.get(CHECK_ENV)
    yield
    assert os.environ.get(CHECK_ENV) == before


def positive_finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def check_summary(summary: dict, n: int) -> None:
    assert summary["n"] == n
    assert isinstance(summary["label"], str) and summary["label"]
    for field in ("median_s", "p90_s", "min_s", "mean_s"):
        assert positive_finite(summary[field]), (field, summary)
    assert summary["min_s"] <= summary["median_s"] <= summary["p90_s"]


def check_result(result: dict, bench_id: str, n: int, extra: int = 0) -> None:
    """A timed result: subject, baseline and ``extra`` rows of ``n`` samples each, every ratio positive."""
    assert result["id"] == bench_id
    assert {"id", "title", "subject", "baseline", "ratio_median", "ratio_p90", "extra", "target", "meets_target",
            "details"} <= set(result)
    check_summary(result["baseline"], n)
    assert len(result["extra"]) == extra
    for row in (result["subject"], *result["extra"]):
        check_summary(row, n)
        assert positive_finite(row["ratio_median"]) and positive_finite(row["ratio_p90"])
    assert (result["ratio_median"], result["ratio_p90"]) == (result["subject"]["ratio_median"],
                                                            result["subject"]["ratio_p90"])
    if result["target"] is None:
        assert result["meets_target"] is None
    else:
        assert positive_finite(result["target"])
        assert isinstance(result["meets_target"], bool)
    json.dumps(result)  # the --json output must be serialisable


def rendered(bench, *results) -> str:
    meta = {"python": "3", "platform": "test", "cpus": 1, "check_output_env": None, "elapsed_s": 0.0}
    return bench.format_table({"meta": meta, "results": list(results)})


def test_schedule_alternates_and_counts(bench):
    blocks = list(bench.schedule(["x", "y"], 7, 3))
    assert blocks == [("x", 3), ("y", 3), ("y", 3), ("x", 3), ("x", 1), ("y", 1)]


def test_check_output_policy_sets_and_restores(bench, monkeypatch):
    monkeypatch.setenv(CHECK_ENV, "never")
    with bench.check_output_policy("always"):
        assert os.environ[CHECK_ENV] == "always"
    with bench.check_output_policy(None):
        assert CHECK_ENV not in os.environ
    assert os.environ[CHECK_ENV] == "never"


def test_engine_overhead_smoke(bench, env_untouched):
    result = bench.bench_engine_overhead(calls=20, block=5, warmup=2)
    check_result(result, "engine_overhead", 20, extra=1)
    assert result["target"] == 1.10
    assert "first" in result["extra"][0]["label"]
    details = result["details"]
    assert details["keys"] == 5 and details["schema_warnings"] == 0
    assert math.isfinite(details["overhead_median_s"]) and math.isfinite(details["output_check_median_s"])


def test_cli_cold_start_smoke(bench):
    result = bench.bench_cli_cold_start(runs=2, warmup=0, importtime=True)
    check_result(result, "cli_cold_start", 2)
    assert result["target"] == 1.30
    assert result["details"]["command"][-1] == "actions"
    profile = result["details"]["importtime"]
    assert profile["total_us"] > 0
    assert any(row["module"].startswith("gen_nodes") for row in profile["top_cumulative"])


def test_large_list_smoke(bench, env_untouched):
    result = bench.bench_large_list(keys=200, runs=2, warmup=0)
    check_result(result, "large_list", 2, extra=1)
    assert result["target"] == 1.15
    details = result["details"]
    assert details["keys"] == 200 and details["schema_warnings"] == 0
    assert details["response_bytes"] > 200 * 50
    stages = {row["stage"].strip().split(" (")[0]: row for row in details["breakdown"]}
    assert {"HTTP + JSON decode", "input validation", "secret wrapping", "output-schema check"} <= set(stages)
    for row in details["breakdown"]:
        assert positive_finite(row["median_s"]) and positive_finite(row["share_of_default"])
    assert positive_finite(details["sum_default_s"]) and positive_finite(details["per_key_check_us"])


def test_sandbox_process_serves_the_keys(bench):
    with bench.sandbox_process(30) as sb:
        listed = requests.get(sb.base_url + "/persisted_tokens", headers={"X-API-Key": sb.api_key}).json()
    assert len(listed) == 30


def test_cli_large_list_smoke(bench):
    timed, memory = bench.bench_cli_large_list(keys=100, runs=1, warmup=0)
    check_result(timed, "cli_large_list", 1)
    check_result(memory, "cli_large_list_memory", 1)
    assert timed["target"] == memory["target"] == 1.5 and memory["unit"] == "MiB"
    assert 5 < memory["subject"]["median_s"] < 2000 and 5 < memory["baseline"]["median_s"] < 2000  # MiB
    assert timed["details"]["command"][-2:] == ["run", "list_api_keys"]
    table = rendered(bench, timed, memory)
    assert "MiB" in table and "(h)" in table


def test_run_measured_reports_a_failing_command(bench):
    with pytest.raises(RuntimeError, match="exited 3"):
        bench.run_measured([sys.executable, "-c", "import sys; sys.exit(3)"], os.environ)


def test_tool_list_size(bench):
    from gen_nodes.surfaces.llm.anthropic import anthropic_tools
    from gen_nodes.core.registry import default_registry
    from gen_nodes.runtime.tools import build_tools

    result = bench.bench_tool_list_size()
    assert result["id"] == "tool_list_size" and result["target"] is None and result["meets_target"] is None
    formats = {row["format"].split(" ")[0]: row for row in result["formats"]}
    assert set(formats) == {"openai", "openai-responses", "anthropic", "mcp"}
    for row in formats.values():
        assert row["tools"] == len(default_registry()) and positive_finite(row["chars"]) and positive_finite(row["tokens"])
    expected = json.dumps(anthropic_tools(build_tools(default_registry())), separators=(",", ":"), ensure_ascii=False)
    assert formats["anthropic"]["chars"] == len(expected)  # compact JSON of the real export
    if "chars/4" in result["estimator"]:
        assert formats["anthropic"]["tokens"] == math.ceil(len(expected) / 4)
    longest = result["longest_description"]
    assert longest["tool"].startswith("gen_") and 0 < longest["chars"] <= result["descriptions_chars"]
    assert formats["mcp"]["chars"] > result["output_schemas_chars"] > 0  # only MCP carries output schemas
    json.dumps(result)
    assert "chars" in rendered(bench, result)


def test_mcp_cold_start_smoke(bench):
    pytest.importorskip("mcp")
    result = bench.bench_mcp_cold_start(runs=1, warmup=0)
    check_result(result, "mcp_cold_start", 1, extra=1)
    details = result["details"]
    assert details["command"][-1] == "mcp" and details["tools_listed"] == len(default_registry())
    assert positive_finite(details["closing"]["median_s"]) and positive_finite(details["ratio_median_with_closing"])
    assert "(e) gen-nodes mcp" in rendered(bench, result)


def test_mcp_call_latency_smoke(bench, env_untouched):
    pytest.importorskip("mcp")
    result = bench.bench_mcp_call_latency(calls=4, block=2, warmup=1)
    check_result(result, "mcp_call_latency", 4)
    assert result["target"] == 1.05 and result["details"]["keys"] == 5
    assert "MCPServer peer" in result["baseline"]["label"]
    assert "(f) MCP tools/call" in rendered(bench, result)


def test_mcp_large_list_smoke(bench, env_untouched):
    pytest.importorskip("mcp")
    result = bench.bench_mcp_large_list(calls=2, block=1, warmup=0, keys=300)
    check_result(result, "mcp_large_list", 2)
    assert result["target"] == 1.20 and result["details"]["keys"] == 300


def test_the_peer_serves_the_same_tools(bench):
    pytest.importorskip("mcp")
    import anyio

    from gen_nodes.core.registry import default_registry
    from gen_nodes.runtime.tools import build_tools

    async def listed(params):
        async with bench.mcp_session(params) as session:
            return sorted(tool.name for tool in (await session.list_tools()).tools)

    with bench.sandbox_process(1) as sb:
        peer = bench.mcp_pair(sb)["peer"]
        assert anyio.run(listed, peer) == sorted(tool.name for tool in build_tools(default_registry()))


def test_report_renders_and_round_trips(bench, tmp_path):
    out = tmp_path / "results.json"
    code = bench.main(["--only", "a,c,d", "--calls", "10", "--block", "5", "--warmup", "1",
                       "--keys", "50", "--large-runs", "1", "--big-keys", "120", "--big-runs", "1",
                       "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [r["id"] for r in report["results"]] == ["engine_overhead", "large_list", "large_list_big",
                                                    "tool_list_size"]
    assert report["meta"]["python"]
    table = bench.format_table(report)
    assert "ratio med / p90" in table and "(a) list_api_keys" in table and "(c) list_api_keys, 120 keys" in table
    assert "(d) exported tool list" in table and "check first answer only" in table


def test_only_rejects_unknown(bench):
    with pytest.raises(SystemExit):
        bench.main(["--only", "a,z"])


def test_gateway_call_smoke(bench, env_untouched):
    pytest.importorskip("starlette")
    result = bench.bench_gateway_call(calls=6, block=3, warmup=1)
    check_result(result, "gateway_call", 6, extra=1)
    assert result["target"] is None and result["details"]["keys"] == 5
    assert math.isfinite(result["details"]["gateway_overhead_median_s"])
    assert "(i) list_api_keys through the gateway" in rendered(bench, result)


def test_gateway_throughput_smoke(bench, env_untouched):
    pytest.importorskip("starlette")
    result = bench.bench_gateway_throughput(clients=3, per_client=2, rounds=2)
    check_result(result, "gateway_throughput", 3 * 2 * 2, extra=0)  # each variant: 2 rounds of 3 clients x 2 calls
    details = result["details"]
    assert result["target"] == 1.05 and positive_finite(details["throughput_ratio"])  # issue 16 §3
    assert all(positive_finite(x) for x in details["throughput_per_s"].values())
    assert "calls/s" in rendered(bench, result)


def test_idempotent_create_smoke(bench, env_untouched):
    pytest.importorskip("starlette")
    result = bench.bench_idempotent_create(calls=4, block=2, warmup=1)
    redis_on_path = result["details"]["redis_skipped"] is None
    check_result(result, "idempotent_create", 4, extra=3 if redis_on_path else 1)  # + each store's writes alone
    assert result["target"] == 1.20
    added = result["details"]["added_median_s"]
    assert len(added) == (2 if redis_on_path else 1) and all(math.isfinite(x) for x in added.values())
    if redis_on_path:  # the Redis row against the same create on its own gateway process
        redis = result["extra"][0]
        check_summary(redis["baseline"], 4)
        assert redis["ratio_median"] == redis["median_s"] / redis["baseline"]["median_s"]
        assert added[redis["label"]] == redis["median_s"] - redis["baseline"]["median_s"]
    assert set(result["details"]["store_writes_median_s"]) == ({"sqlite", "redis"} if redis_on_path else {"sqlite"})
    table = rendered(bench, result)
    assert "(l) create_api_key through the gateway" in table and "added by the Idempotency-Key" in table
    assert "the store's two writes alone" in table


def test_approval_round_trip_smoke(bench, env_untouched):
    pytest.importorskip("starlette")
    result = bench.bench_approval_round_trip(runs=2)
    check_result(result, "approval_round_trip", 2, extra=3)
    notified, answered, decided = (row["median_s"] for row in result["extra"])
    assert notified <= answered <= result["subject"]["median_s"]  # the gateway notifies, then answers 202
    assert notified <= decided <= result["subject"]["median_s"]  # the poll's 200 comes after the decision
    assert result["target"] is None and result["details"]["retry_after_s"] >= 1
    assert "(m) revoke_api_key held for approval" in rendered(bench, result)


def test_chatops_smoke(bench, env_untouched):
    pytest.importorskip("slack_bolt")
    result = bench.bench_chatops(commands=3, rounds=2)
    check_result(result, "chatops", 3 * 2, extra=2)  # each app: 2 rounds of 3 commands
    details = result["details"]
    assert result["target"] == 1.20 and positive_finite(details["ack_p99_ratio"])
    assert all(positive_finite(x) for x in details["ack_p99_s"].values())
    assert "ack p99" in rendered(bench, result)
