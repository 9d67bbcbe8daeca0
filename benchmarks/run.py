"""gen-nodes benchmarks: each result is a ratio against a baseline measured in the same run.

Run from the project's virtual environment (the one ``gen-nodes`` is installed in)::

    python benchmarks/run.py                      # all three, about a minute on 2 cores
    python benchmarks/run.py --json results.json  # also write the results as JSON

What is measured (every HTTP call goes to a real local sandbox on loopback, served
from a thread of this process; subject and baseline hit the same sandbox):

(a) ``engine_overhead``: one ``list_api_keys`` call through the engine,
    ``registry.run("list_api_keys", {}, client=client)`` with one reused
    ``GenClient``, against a bare ``requests.Session`` GET of the same URL with the
    same ``X-API-Key`` header plus ``raise_for_status()`` and ``.json()`` (what the
    smallest hand-written client does). The account has 5 keys. Both are warmed up,
    then timed call by call in alternating blocks (order reversed every round) to
    cancel drift. Target: median ratio <= 1.10. A third, diagnostic variant runs the
    engine with its output-schema check stubbed out, to show what that check costs.
(b) ``cli_cold_start``: wall time of the ``gen-nodes actions`` console script of this
    environment (``python -m gen_nodes.cli actions`` if there is none) against
    ``python -c "import requests, jsonschema"``, alternating, after a warm-up run of
    each. Target: median ratio <= 1.30. When the target is missed (or with
    ``--importtime``) ``python -X importtime -m gen_nodes.cli actions`` is run once
    and its heaviest imports are reported.
(c) ``large_list``: ``list_api_keys`` returning 10,000 keys, fetched, decoded,
    validated and secret-wrapped through the engine, against a bare GET plus
    ``.json()``. No target; the report breaks the engine's time down into stages,
    each timed on its own: HTTP + JSON decode through ``GenClient.request`` (and
    JSON decoding alone), input validation, shaping, the output-schema check
    (``engine._check_output``, whatever it does at the time), secret wrapping; plus,
    as a diagnostic, jsonschema validation against the bundled (``$ref``-free) schema.

Ratios are subject / baseline, for the medians and for the 90th percentiles.

Flags (all optional):
    --json PATH       also write the results (and run metadata) as JSON to PATH
    --only LIST       comma-separated subset of a,b,c (default: a,b,c)
    --calls N         (a) timed calls per variant (default 2000; at least 1000 for a real run)
    --block N         (a) calls per alternating block (default 25)
    --warmup N        (a) warm-up calls per variant (default 200)
    --cold-runs N     (b) timed runs per command (default 15)
    --keys N          (c) keys in the listed account (default 10000)
    --large-runs N    (c) timed runs per variant and per breakdown stage (default 5)
    --importtime      (b) always run the -X importtime analysis, even when on target
    --no-diagnose     skip the diagnostic variants of (a) and (c)
    --strict          exit with status 1 when a benchmark misses its target

The functions ``bench_engine_overhead``, ``bench_cli_cold_start`` and
``bench_large_list`` return plain dicts (see ``_compare``) and are what
``tests/test_benchmarks_smoke.py`` runs with tiny counts.
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
import time
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from unittest import mock

import requests

TARGETS: dict[str, float | None] = {
    "engine_overhead": 1.10,
    "cli_cold_start": 1.30,
    "large_list": None,  # reported with a breakdown; no target
}

_now = time.perf_counter


# -- statistics ---------------------------------------------------------------------------


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


def _compare(bench_id: str, title: str, subject: tuple[str, Sequence[float]],
             baseline: tuple[str, Sequence[float]], **details: Any) -> dict[str, Any]:
    """One benchmark's result: subject and baseline summaries, their ratios and the target."""
    s = {"label": subject[0], **summarize(subject[1])}
    b = {"label": baseline[0], **summarize(baseline[1])}
    target = TARGETS.get(bench_id)
    ratio_median = _ratio(s["median_s"], b["median_s"])
    return {
        "id": bench_id,
        "title": title,
        "subject": s,
        "baseline": b,
        "ratio_median": ratio_median,
        "ratio_p90": _ratio(s["p90_s"], b["p90_s"]),
        "target": target,
        "meets_target": None if target is None else ratio_median <= target,
        "details": details,
    }


def _timed(fn: Callable[[], Any]) -> float:
    started = _now()
    fn()
    return _now() - started


# -- shared set-up ------------------------------------------------------------------------


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


class _CountWarnings(logging.Handler):
    """Counts the engine's 'answer does not match its output schema' warnings (there should be none)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextmanager
def _count_engine_warnings() -> Iterator[_CountWarnings]:
    handler = _CountWarnings()
    logger = logging.getLogger("gen_nodes.engine")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _no_output_check(spec: Any, output: Any) -> None:
    return None


def _clients(sb: Any):
    from gen_nodes.client import GenClient

    client = GenClient(api_key=sb.api_key, base_url=sb.base_url)
    session = requests.Session()
    url = sb.base_url + "/persisted_tokens"
    headers = {"X-API-Key": sb.api_key}

    def bare() -> Any:
        resp = session.get(url, headers=headers)
        resp.raise_for_status()
        return resp.json()

    return client, session, bare


# -- (a) per-call engine overhead ---------------------------------------------------------


def bench_engine_overhead(calls: int = 2000, block: int = 25, warmup: int = 200, keys: int = 5,
                          diagnose: bool = True) -> dict[str, Any]:
    """(a) ``list_api_keys`` through the engine vs. a bare ``requests.Session`` GET, call by call."""
    from gen_nodes import engine
    from gen_nodes.registry import default_registry

    registry = default_registry()
    with sandbox_with_keys(keys) as sb, _count_engine_warnings() as warned:
        client, session, bare = _clients(sb)
        with client, session:
            def through_engine() -> Any:
                return registry.run("list_api_keys", {}, client=client)

            listed = len(through_engine()["api_keys"])
            if listed != keys or len(bare()) != keys:
                raise RuntimeError(f"expected {keys} keys, the engine listed {listed}")

            # name -> (call, context wrapped around each of its blocks)
            variants: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
                "baseline": (bare, nullcontext),
                "engine": (through_engine, nullcontext),
            }
            if diagnose:
                variants["engine_no_output_check"] = (
                    through_engine, lambda: mock.patch.object(engine, "_check_output", _no_output_check))
            for fn, ctx in variants.values():
                with ctx():
                    for _ in range(warmup):
                        fn()
            samples: dict[str, list[float]] = {name: [] for name in variants}
            order = list(variants)
            rounds = math.ceil(calls / block)
            for r in range(rounds):
                n = min(block, calls - r * block)
                for name in (order if r % 2 == 0 else order[::-1]):
                    fn, ctx = variants[name]
                    out = samples[name]
                    with ctx():
                        for _ in range(n):
                            started = _now()
                            fn()
                            out.append(_now() - started)

    result = _compare(
        "engine_overhead", f"(a) list_api_keys per call, {keys} keys",
        ("engine: registry.run(list_api_keys), reused GenClient", samples["engine"]),
        ("bare requests.Session GET + .json()", samples["baseline"]),
        keys=keys, calls_per_variant=calls, block=block, warmup=warmup,
        schema_warnings=warned.count,
    )
    base_med = result["baseline"]["median_s"]
    result["details"]["overhead_median_s"] = result["subject"]["median_s"] - base_med
    if diagnose:
        diag = summarize(samples["engine_no_output_check"])
        result["details"]["diagnostic_no_output_check"] = {
            "label": "engine with _check_output stubbed out", **diag,
            "ratio_median": _ratio(diag["median_s"], base_med),
            "ratio_p90": _ratio(diag["p90_s"], result["baseline"]["p90_s"]),
            "output_check_median_s": result["subject"]["median_s"] - diag["median_s"],
        }
    return result


# -- (b) CLI cold start -------------------------------------------------------------------


def cli_command() -> tuple[list[str], str]:
    """The ``gen-nodes actions`` command of this environment, and how it was found."""
    scripts = Path(sys.executable).parent
    for candidate in (scripts / "gen-nodes", scripts / "gen-nodes.exe", shutil.which("gen-nodes")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return [str(candidate), "actions"], "console script"
    return [sys.executable, "-m", "gen_nodes.cli", "actions"], "python -m (no console script found)"


BASELINE_IMPORT = "import requests, jsonschema"


def _run_quiet(argv: Sequence[str]) -> None:
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")


def import_profile(top: int = 8) -> dict[str, Any]:
    """``python -X importtime -m gen_nodes.cli actions``: the heaviest imports, cumulative and self (us)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gen_nodes.cli", "actions"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append({"module": name.strip(), "self_us": int(self_us), "cumulative_us": int(cumulative_us),
                     "depth": depth})
    top_level = [r for r in rows if r["depth"] == 0]
    return {
        "total_us": sum(r["cumulative_us"] for r in top_level),
        "top_cumulative": sorted(rows, key=lambda r: -r["cumulative_us"])[:top],
        "top_level": sorted(top_level, key=lambda r: -r["cumulative_us"])[:top],
        "top_self": sorted(rows, key=lambda r: -r["self_us"])[:top],
    }


def bench_cli_cold_start(runs: int = 15, warmup: int = 1, importtime: bool | None = None) -> dict[str, Any]:
    """(b) ``gen-nodes actions`` vs. ``python -c "import requests, jsonschema"``, alternating, wall time."""
    cli, found = cli_command()
    base = [sys.executable, "-c", BASELINE_IMPORT]
    for _ in range(warmup):  # fill the page cache and __pycache__ of both
        _run_quiet(cli)
        _run_quiet(base)
    samples: dict[str, list[float]] = {"cli": [], "baseline": []}
    for r in range(runs):
        pair = (("cli", cli), ("baseline", base)) if r % 2 == 0 else (("baseline", base), ("cli", cli))
        for name, argv in pair:
            samples[name].append(_timed(lambda: _run_quiet(argv)))
    result = _compare(
        "cli_cold_start", "(b) CLI cold start",
        (" ".join(["gen-nodes", *cli[1:]]) if found == "console script" else " ".join(cli[1:]), samples["cli"]),
        (f'python -c "{BASELINE_IMPORT}"', samples["baseline"]),
        command=cli, found_as=found, runs=runs, warmup=warmup,
    )
    if importtime or (importtime is None and not result["meets_target"]):
        result["details"]["importtime"] = import_profile()
    return result


# -- (c) a 10,000-key list ----------------------------------------------------------------


def bench_large_list(keys: int = 10_000, runs: int = 5, warmup: int = 1, diagnose: bool = True) -> dict[str, Any]:
    """(c) ``list_api_keys`` with ``keys`` keys through the engine vs. a bare GET + ``.json()``, with a breakdown."""
    from gen_nodes import engine
    from gen_nodes.redact import hide_secrets
    from gen_nodes.registry import default_registry

    registry = default_registry()
    spec = registry.get("list_api_keys")
    with sandbox_with_keys(keys) as sb, _count_engine_warnings() as warned:
        client, session, bare = _clients(sb)
        with client, session:
            def through_engine() -> Any:
                return registry.run("list_api_keys", {}, client=client)

            listed = len(through_engine()["api_keys"])
            if listed != keys or len(bare()) != keys:
                raise RuntimeError(f"expected {keys} keys, the engine listed {listed}")
            for _ in range(warmup):
                through_engine()
                bare()
            samples: dict[str, list[float]] = {"engine": [], "baseline": []}
            for r in range(runs):
                pair = (("engine", through_engine), ("baseline", bare))
                for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                    samples[name].append(_timed(fn))

            # The breakdown: each stage of engine.execute timed on its own, on the same data.
            response = client.request(spec.method, spec.path, safe_to_retry=True)
            body = session.get(sb.base_url + spec.path, headers={"X-API-Key": sb.api_key}).content
            args = engine.validate_input(spec, {})
            shaped = engine._shape(spec, args, response)
            stages: list[tuple[str, Callable[[], Any]]] = [
                ("HTTP + JSON decode (GenClient.request)",
                 lambda: client.request(spec.method, spec.path, safe_to_retry=True)),
                ("  of which JSON decode alone (json.loads)", lambda: json.loads(body)),
                ("input validation", lambda: engine.validate_input(spec, {})),
                ("shaping (wrap + filter)", lambda: engine._shape(spec, args, response)),
                ("output-schema check (engine._check_output)", lambda: engine._check_output(spec, shaped)),
                ("secret wrapping (hide_secrets)", lambda: hide_secrets(shaped)),
            ]
            if diagnose:
                from jsonschema import Draft202012Validator

                from gen_nodes.schemas import bundled

                flat = Draft202012Validator(bundled(spec.output_schema))
                stages.append(("[diagnostic] output validation, bundled $ref-free schema",
                               lambda: list(flat.iter_errors(shaped))))
            stage_samples: dict[str, list[float]] = {name: [] for name, _ in stages}
            for _ in range(runs):
                for name, fn in stages:
                    stage_samples[name].append(_timed(fn))

    result = _compare(
        "large_list", f"(c) list_api_keys, {keys:,} keys",
        ("engine: fetch, decode, validate, wrap", samples["engine"]),
        ("bare requests.Session GET + .json()", samples["baseline"]),
        keys=keys, runs=runs, warmup=warmup, response_bytes=len(body), schema_warnings=warned.count,
    )
    engine_median = result["subject"]["median_s"]
    breakdown = []
    for name, _ in stages:
        med = statistics.median(stage_samples[name])
        breakdown.append({"stage": name, "median_s": med, "share_of_engine": _ratio(med, engine_median)})
    counted = [b for b in breakdown if not b["stage"].startswith((" ", "["))]
    result["details"]["breakdown"] = breakdown
    result["details"]["sum_of_stages_s"] = sum(b["median_s"] for b in counted)
    result["details"]["per_key_validation_us"] = next(
        b["median_s"] for b in breakdown if b["stage"].startswith("output-schema check")) / keys * 1e6
    return result


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


def format_table(report: dict[str, Any]) -> str:
    """The results as a compact text table, then one block of notes per benchmark."""
    meta = report["meta"]
    head = ("benchmark", "subject med / p90", "baseline med / p90", "ratio med / p90", "target")
    rows = [head]
    for r in report["results"]:
        rows.append((
            r["title"],
            f"{_t(r['subject']['median_s'])} / {_t(r['subject']['p90_s'])}",
            f"{_t(r['baseline']['median_s'])} / {_t(r['baseline']['p90_s'])}",
            f"{r['ratio_median']:.2f} / {r['ratio_p90']:.2f}",
            _verdict(r),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    line = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    out = [f"gen-nodes benchmarks - Python {meta['python']}, {meta['platform']}, {meta['cpus']} CPUs, "
           f"{meta['elapsed_s']:.0f} s", "", line(head), line(["-" * w for w in widths])]
    out += [line(row) for row in rows[1:]]
    for r in report["results"]:
        d = r["details"]
        out += ["", f"{r['title']}:",
                f"  subject:  {r['subject']['label']}  (n={r['subject']['n']})",
                f"  baseline: {r['baseline']['label']}  (n={r['baseline']['n']})"]
        if r["id"] == "engine_overhead":
            out.append(f"  overhead per call (median): {_t(d['overhead_median_s'])}; "
                       f"schema warnings: {d['schema_warnings']}")
            diag = d.get("diagnostic_no_output_check")
            if diag:
                out.append(f"  [diagnostic] {diag['label']}: {_t(diag['median_s'])} / {_t(diag['p90_s'])}, "
                           f"ratio {diag['ratio_median']:.2f} / {diag['ratio_p90']:.2f}; "
                           f"the output check costs {_t(diag['output_check_median_s'])} per call")
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
        elif r["id"] == "large_list":
            out.append(f"  response: {d['response_bytes'] / 1e6:.1f} MB; schema warnings: {d['schema_warnings']}; "
                       f"breakdown (median of {d['runs']} runs each, share of the engine's median):")
            for b in d["breakdown"]:
                out.append(f"    {b['stage']:<58} {_t(b['median_s']):>9}  {b['share_of_engine']:>6.1%}")
            out.append(f"    {'sum of the stages above (diagnostics and sub-rows excluded)':<58} "
                       f"{_t(d['sum_of_stages_s']):>9}  {_ratio(d['sum_of_stages_s'], r['subject']['median_s']):>6.1%}")
            out.append(f"  output-schema check per key: {d['per_key_validation_us']:.1f} us")
    return "\n".join(out)


def run_all(*, only: Sequence[str] = ("a", "b", "c"), calls: int = 2000, block: int = 25, warmup: int = 200,
            cold_runs: int = 15, keys: int = 10_000, large_runs: int = 5, importtime: bool | None = None,
            diagnose: bool = True) -> dict[str, Any]:
    """Run the chosen benchmarks; return ``{"meta": ..., "results": [...]}``."""
    started = _now()
    results = []
    if "a" in only:
        results.append(bench_engine_overhead(calls=calls, block=block, warmup=warmup, diagnose=diagnose))
    if "b" in only:
        results.append(bench_cli_cold_start(runs=cold_runs, importtime=importtime))
    if "c" in only:
        results.append(bench_large_list(keys=keys, runs=large_runs, diagnose=diagnose))
    from gen_nodes import __version__

    meta = {
        "gen_nodes": __version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "requests": requests.__version__,
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
    parser.add_argument("--only", default="a,b,c", help="comma-separated subset of a,b,c (default a,b,c)")
    parser.add_argument("--calls", type=_positive, default=2000, help="(a) timed calls per variant (default 2000)")
    parser.add_argument("--block", type=_positive, default=25, help="(a) calls per alternating block (default 25)")
    parser.add_argument("--warmup", type=int, default=200, help="(a) warm-up calls per variant (default 200)")
    parser.add_argument("--cold-runs", type=_positive, default=15, help="(b) runs per command (default 15)")
    parser.add_argument("--keys", type=_positive, default=10_000, help="(c) keys listed (default 10000)")
    parser.add_argument("--large-runs", type=_positive, default=5, help="(c) runs per variant and stage (default 5)")
    parser.add_argument("--importtime", action="store_true", default=None,
                        help="(b) run the -X importtime analysis even when on target")
    parser.add_argument("--no-diagnose", dest="diagnose", action="store_false",
                        help="skip the diagnostic variants of (a) and (c)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a benchmark misses its target")
    args = parser.parse_args(argv)
    only = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = set(only) - {"a", "b", "c"}
    if unknown or not only:
        parser.error(f"--only takes a comma-separated subset of a,b,c, not {args.only!r}")

    report = run_all(only=only, calls=args.calls, block=args.block, warmup=args.warmup, cold_runs=args.cold_runs,
                     keys=args.keys, large_runs=args.large_runs, importtime=args.importtime,
                     diagnose=args.diagnose)
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nJSON written to {args.json}")
    missed = [r["id"] for r in report["results"] if r["meets_target"] is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
