"""Smoke test of benchmarks/run.py: the benchmark functions run with tiny counts and report well-formed results.

Nothing here is timed against a target: a loaded CI machine must not fail it. Only the
structure of the results and that every ratio is a positive finite number are checked.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


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


def positive_finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def check_summary(summary: dict, n: int) -> None:
    assert summary["n"] == n
    assert isinstance(summary["label"], str) and summary["label"]
    for field in ("median_s", "p90_s", "min_s", "mean_s"):
        assert positive_finite(summary[field]), (field, summary)
    assert summary["min_s"] <= summary["median_s"] <= summary["p90_s"]


def check_result(result: dict, bench_id: str, n_subject: int, n_baseline: int) -> None:
    assert result["id"] == bench_id
    assert {"id", "title", "subject", "baseline", "ratio_median", "ratio_p90", "target", "meets_target",
            "details"} <= set(result)
    check_summary(result["subject"], n_subject)
    check_summary(result["baseline"], n_baseline)
    assert positive_finite(result["ratio_median"])
    assert positive_finite(result["ratio_p90"])
    if result["target"] is None:
        assert result["meets_target"] is None
    else:
        assert positive_finite(result["target"])
        assert isinstance(result["meets_target"], bool)
    json.dumps(result)  # the --json output must be serialisable


def test_engine_overhead_smoke(bench):
    result = bench.bench_engine_overhead(calls=20, block=5, warmup=2)
    check_result(result, "engine_overhead", 20, 20)
    assert result["target"] == 1.10
    details = result["details"]
    assert details["keys"] == 5 and details["schema_warnings"] == 0
    diag = details["diagnostic_no_output_check"]
    assert diag["n"] == 20
    assert positive_finite(diag["ratio_median"]) and positive_finite(diag["ratio_p90"])


def test_cli_cold_start_smoke(bench):
    result = bench.bench_cli_cold_start(runs=2, warmup=0, importtime=True)
    check_result(result, "cli_cold_start", 2, 2)
    assert result["target"] == 1.30
    assert result["details"]["command"][-1] == "actions"
    profile = result["details"]["importtime"]
    assert profile["total_us"] > 0
    assert any(row["module"].startswith("gen_nodes") for row in profile["top_cumulative"])


def test_large_list_smoke(bench):
    result = bench.bench_large_list(keys=200, runs=2, warmup=0)
    check_result(result, "large_list", 2, 2)
    details = result["details"]
    assert details["keys"] == 200 and details["schema_warnings"] == 0
    assert details["response_bytes"] > 200 * 50
    stages = [row["stage"] for row in details["breakdown"]]
    assert any(s.startswith("HTTP + JSON decode") for s in stages)
    assert any(s.startswith("output-schema check") for s in stages)
    assert any(s.startswith("secret wrapping") for s in stages)
    for row in details["breakdown"]:
        assert positive_finite(row["median_s"]) and positive_finite(row["share_of_engine"])
    assert positive_finite(details["sum_of_stages_s"])


def test_report_renders_and_round_trips(bench, tmp_path):
    out = tmp_path / "results.json"
    code = bench.main(["--only", "a,c", "--calls", "10", "--block", "5", "--warmup", "1",
                       "--keys", "50", "--large-runs", "1", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [r["id"] for r in report["results"]] == ["engine_overhead", "large_list"]
    assert report["meta"]["python"]
    table = bench.format_table(report)
    assert "ratio med / p90" in table and "(a) list_api_keys" in table and "(c) list_api_keys" in table
