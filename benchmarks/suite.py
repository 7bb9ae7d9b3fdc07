"""Every benchmark in one run: figures, their same-run baselines, targets, ratios.

    make bench        (or: .venv/bin/python -m benchmarks.suite)

Each benchmark runs in its own process (python -m benchmarks.NAME) against the
real PostgreSQL and an embedded broker, and writes benchmarks/results/NAME.json
(relay also projector.json, million also memory.json: the projector and
memory per role run on the ledger relay and million built, rather than load
their own); this script then prints the table and writes
benchmarks/results.json, with the seconds each benchmark took.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from projections.reports import REPORTS

HERE = Path(__file__).parent
RUNS: list[tuple[str, list[str]]] = [
    ("baselines", []),
    ("account_load", []),
    ("http_commands", ["--seconds", "7"]),
    ("ingest", ["--messages", "20000", "--accounts", "300"]),
    ("relay", ["--events", "100000", "--project"]),  # then the projector, on its events
    ("end_to_end", ["--seconds", "8"]),  # --rate: E2E_RATE_VS_SAVE x this run's save
    (
        "million",
        [
            *("--events", os.environ.get("BENCH_EVENTS", "1000000")),
            # Twice the caches' default bound: past it, the API's memory should stay flat.
            *("--memory-accounts", os.environ.get("BENCH_MEMORY_ACCOUNTS", "20000")),
        ],
    ),
    # Shorter phases than each benchmark's own defaults: `make bench` under 10 minutes.
    # The notary's cost keeps its four off/on rounds of 3 s: shorter, its noise
    # (one run at 3 x 2.5 s read 0.88x) swamps the 10% it judges.
    ("proofs", ["--events", os.environ.get("BENCH_EVENTS", "1000000")]),
    (
        "reads",
        [
            *("--events", os.environ.get("BENCH_EVENTS", "1000000")),
            *("--rounds", "3", "--seconds", "2", "--runs", "20"),
        ],
    ),
]
# Commands on one API process against a route that does nothing on it (issue 14).
HTTP_VS_FLOOR = 0.50
# Results a benchmark writes besides its own.
ALSO_WRITES = {"relay": ("projector",), "million": ("memory",)}
MEMORY_TARGET_MB = 300
# The API's memory is asked for after this many accounts; fewer are measured in the suite.
MEMORY_ACCOUNTS = 100_000


@dataclass
class Figure:
    """One measured figure against its target and baseline."""

    name: str
    value: float
    unit: str
    target: str
    met: bool | None  # None: shown for scale, no target
    baseline: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None


# The absolute targets of the first issues, as ratios to the same-run baseline of
# the run that set them (2026-11-23: library single-event save 1,010 events/s,
# executemany of 1,000 rows 106,549 rows/s). This machine runs 3-4x slower on
# some days than on others: a ratio judges the code, an absolute figure the day.
SET_BY_SAVE = 1_010.0
SET_BY_EXECUTEMANY = 106_549.0
RELAY_VS_SAVE = 30_000 / SET_BY_SAVE  # relay >= 30,000/s
VERIFY_VS_SAVE = 50_000 / SET_BY_SAVE  # verify >= 50,000/s
PROJECTION_VS_MANY = 40_000 / SET_BY_EXECUTEMANY  # projection >= 40,000/s
REBUILD_VS_MANY = 1_000_000 / 20 / SET_BY_EXECUTEMANY  # 1,000,000 events in < 20 s
E2E_RATE_VS_SAVE = 500 / SET_BY_SAVE  # p99 < 250 ms at 500 commands/s


def args_of(name: str, args: list[str], results: dict[str, dict[str, Any]]) -> list[str]:
    """The benchmark's arguments; end to end runs at its rate scaled to this run's save."""
    if name != "end_to_end":
        return args
    save = results["baselines"]["library_single_save_events_per_s"]
    return [*args, "--rate", f"{E2E_RATE_VS_SAVE * save:.0f}"]


def figures(r: dict[str, dict[str, Any]]) -> list[Figure]:
    """The issue's figures and targets, from the benchmarks' results."""
    base = r["baselines"]
    save = base["library_single_save_events_per_s"]
    many = base["executemany_1000_rows_per_s"]
    http, ingest, e2e = r["http_commands"], r["ingest"], r["end_to_end"]
    million, load = r["million"], r["account_load"]

    def vs(name: str, value: float, unit: str, target: str, met: bool, b: str, bv: float) -> Figure:
        return Figure(name, value, unit, target, met, b, bv, value / bv)

    ingest_rates = [
        ("1 consumer after its group join", ingest["events_per_s_after_join"]),
        (
            f"{ingest['consumer_processes']} consumer processes",
            ingest["events_per_s_consumer_processes"],
        ),
    ]
    floor = http["one_process_empty_route_requests_per_s"]
    return [
        vs(
            "HTTP commands, 1 API process",
            http["one_process_commands_per_s"],
            "commands/s",
            f">= {HTTP_VS_FLOOR:.2f}x the empty route on the same process",
            http["one_process_commands_per_s"] >= HTTP_VS_FLOOR * floor,
            "the empty route",
            floor,
        ),
        vs(
            f"HTTP commands, {http['replicas']} API processes",
            http["commands_per_s"],
            "commands/s",
            ">= 4x library single-event save",
            http["commands_per_s"] >= 4 * save,
            "library single-event save",
            save,
        ),
        Figure(
            "HTTP GET /healthz (a route that does nothing), 1 API process",
            http["one_process_empty_route_requests_per_s"],
            "requests/s",
            "none: the framework's floor, for scale",
            None,
        ),
        Figure(
            f"HTTP p99 at half load, {http['replicas']} API processes",
            http["half_load_p99_ms"],
            "ms",
            "< 50 ms",
            http["half_load_p99_ms"] < 50,
        ),
        *(
            vs(
                f"inbound ingest, {label}",
                rate,
                "events/s",
                ">= 40,000/s or >= 1.0x executemany",
                rate >= 40_000 or rate >= many,
                "executemany of 1,000",
                many,
            )
            for label, rate in ingest_rates
        ),
        vs(
            "relay publish",
            r["relay"]["publish_events_per_s"],
            "events/s",
            f">= {RELAY_VS_SAVE:.1f}x library single-event save (30,000/s when set)",
            r["relay"]["publish_events_per_s"] >= RELAY_VS_SAVE * save,
            "library single-event save",
            save,
        ),
        vs(
            "projection apply",
            r["projector"]["events_per_s"],
            "events/s",
            f">= {PROJECTION_VS_MANY:.2f}x executemany of 1,000 (40,000/s when set)",
            r["projector"]["events_per_s"] >= PROJECTION_VS_MANY * many,
            "executemany of 1,000",
            many,
        ),
        Figure(
            f"end to end p99 at {e2e['achieved_commands_per_s']:.0f} of"
            f" {e2e['target_commands_per_s']:.0f} commands/s",
            e2e["p99_ms"],
            "ms",
            f"< 250 ms at {E2E_RATE_VS_SAVE:.2f}x library single-event save (500/s when set)",
            e2e["p99_ms"] < 250
            and e2e["achieved_commands_per_s"] >= 0.98 * e2e["target_commands_per_s"],
        ),
        vs(
            f"rebuild of {million['events']:,} events ({million['rebuild_seconds']:.1f} s)",
            million["rebuild_events_per_s"],
            "events/s",
            f">= {REBUILD_VS_MANY:.2f}x executemany of 1,000 (1,000,000 in < 20 s when set)",
            million["rebuild_events_per_s"] >= REBUILD_VS_MANY * many
            and million["events"] >= 1_000_000,
            "executemany of 1,000",
            many,
        ),
        vs(
            f"verify of {million['events']:,} events",
            million["verify_events_per_s"],
            "events/s",
            f">= {VERIFY_VS_SAVE:.1f}x library single-event save (50,000/s when set)",
            million["verify_events_per_s"] >= VERIFY_VS_SAVE * save,
            "library single-event save",
            save,
        ),
        Figure(
            "account of 10,000 events, current p50",
            load["current_from_snapshot_p50_ms"],
            "ms",
            "< 5 ms",
            load["current_from_snapshot_p50_ms"] < 5,
        ),
        Figure(
            "account of 10,000 events, as_of p50",
            load["as_of_p50_ms"],
            "ms",
            "< 5 ms",
            load["as_of_p50_ms"] < 5,
        ),
        *proof_figures(r["proofs"]),
        *read_figures(r["reads"]),
        # BENCH_MEMORY_ACCOUNTS=0 leaves memory per role out.
        *(memory_figures(r["memory"]) if "memory" in r else ()),
    ]


def proof_figures(p: dict[str, Any]) -> list[Figure]:
    """Proofs over the Merkle tree, signing, and the notary's cost beside it off (same run)."""
    leaves = f"{p['tree_leaves']:,} leaves"

    def cost(name: str, on: str, off: str, unit: str) -> Figure:
        return Figure(
            f"{name} with the notary on",
            p[on],
            unit,
            ">= 0.90x the notary off (cost < 10%)",
            p[on] >= 0.9 * p[off],
            "the notary off, same run",
            p[off],
            p[on] / p[off],
        )

    return [
        Figure(
            f"inclusion proof p99, {leaves}",
            p["inclusion_p99_ms"],
            "ms",
            "< 5 ms",
            p["inclusion_p99_ms"] < 5 and p["tree_leaves"] >= 1_000_000,
        ),
        Figure(f"inclusion proof p50, {leaves}", p["inclusion_p50_ms"], "ms", "none", None),
        Figure(
            f"consistency proof p99, {leaves}",
            p["consistency_p99_ms"],
            "ms",
            "< 5 ms",
            p["consistency_p99_ms"] < 5 and p["tree_leaves"] >= 1_000_000,
        ),
        Figure(
            "one primary-key read p99 (for scale)",
            p["baseline_leaf_lookup_p99_ms"],
            "ms",
            "none: the database's floor",
            None,
        ),
        Figure("checkpoint signing p50", p["sign_p50_ms"], "ms", "none", None),
        Figure("checkpoint signed and kept p50", p["sign_and_keep_p50_ms"], "ms", "none", None),
        cost("commands", "commands_per_s_notary_on", "commands_per_s_notary_off", "commands/s"),
        cost(
            "ingest", "ingest_events_per_s_notary_on", "ingest_events_per_s_notary_off", "events/s"
        ),
    ]


def read_figures(p: dict[str, Any]) -> list[Figure]:
    """Reads at N events and at N/10 in the same run (benchmarks/reads.py), and writes beside."""
    n = f"{p['events']:,} events"
    out = []
    for window, label, limit in (
        ("quarter", "a quarter", 100),
        ("trend12", "12 months by month", 250),
    ):
        for report in REPORTS:
            p95 = max(p[f"report_{report}_{window}_{fmt}_p95_ms"] for fmt in ("json", "csv"))
            out.append(
                Figure(
                    f"{report}, {label}, p95 (JSON or CSV), {n}",
                    p95,
                    "ms",
                    f"< {limit} ms",
                    p95 < limit,
                )
            )
    for kind, label in (("search", "directory search"), ("account_page", "account page")):
        name, p95 = p[f"worst_{kind}"], p[f"worst_{kind}_p95_ms"]
        out.append(Figure(f"{label} p95, slowest ({name}), {n}", p95, "ms", "< 50 ms", p95 < 50))
    steepest = p["steepest_fixed_growth_ratio"]
    over = len(p["fixed_queries_over_2x"])
    out += [
        Figure(
            f"growth N/(N/10) of fixed-range queries, steepest ({p['steepest_fixed_growth']});"
            f" {over} of {p['fixed_queries']} over 2x",
            steepest,
            "x",
            "<= 2x",
            steepest <= 2,
        ),
        Figure(
            f"commands with {n} in place",
            p["commands_per_s_full_ledger"],
            "commands/s",
            ">= 0.90x an empty ledger",
            p["commands_full_vs_empty"] >= 0.9,
            "an empty ledger, same run",
            p["commands_per_s_empty_ledger"],
            p["commands_full_vs_empty"],
        ),
        Figure(
            f"command p99 with {n} in place",
            p["commands_p99_ms_full_ledger"],
            "ms",
            "<= 1.10x an empty ledger",
            p["commands_p99_full_vs_empty"] <= 1.1,
            f"an empty ledger's {p['commands_p99_ms_empty_ledger']:.1f} ms, same run",
            None,  # a time, not a rate: the table prints baselines as rates
            p["commands_p99_full_vs_empty"],
        ),
        Figure(f"resident memory after loading {n}", p["rss_after_load_mb"], "MiB", "none", None),
        Figure(
            f"load of {n} (batch saves, 2 processes)",
            p["load_events_per_s"],
            "events/s",
            "none",
            None,
        ),
        Figure(f"rebuild of {n}, realistic mix", p["rebuild_seconds"], "s", "none", None),
        Figure("reads benchmark, whole run", p["seconds"], "s", "none", None),
    ]
    return out


def memory_figures(m: dict[str, Any]) -> list[Figure]:
    """Each role's resident memory on the loaded ledger; the API's after many accounts."""
    limit = f"< {MEMORY_TARGET_MB} MiB, after and at its peak"
    events = f"{m['events']:,} events"
    out = [
        Figure(
            f"resident memory, API process, started on {events}",
            m["rss_mb_api"],
            "MiB",
            f"< {MEMORY_TARGET_MB} MiB",
            m["rss_mb_api"] < MEMORY_TARGET_MB,
        ),
        *(
            Figure(
                f"resident memory, {role} process, after {events} relayed and projected"
                f" (peak {m[f'rss_mb_{role}_peak']:.0f} MiB)",
                m[f"rss_mb_{role}"],
                "MiB",
                limit,
                max(m[f"rss_mb_{role}"], m[f"rss_mb_{role}_peak"]) < MEMORY_TARGET_MB,
            )
            for role in ("relay", "ingest", "projector")
        ),
    ]
    accounts, after = m["api_accounts_commanded"], m["api_rss_mb_after_accounts"]
    out.append(
        Figure(
            f"resident memory, API process, after {accounts:,} distinct accounts commanded"
            f" over HTTP (peak {m['api_rss_mb_peak_accounts']:.0f} MiB)",
            after,
            "MiB",
            limit,
            max(after, m["api_rss_mb_peak_accounts"]) < MEMORY_TARGET_MB,
        )
    )
    growth = m["api_growth_mb_per_10k"]
    if accounts < MEMORY_ACCOUNTS and growth is not None:
        # Past the caches' bound the growth should be flat: it is carried on in a straight line.
        at = after + max(growth, 0.0) * (MEMORY_ACCOUNTS - accounts) / 10_000
        out.append(
            Figure(
                f"the same at {MEMORY_ACCOUNTS:,} accounts, extrapolated from its growth"
                f" from {m['api_growth_from_accounts']:,} to {accounts:,} accounts"
                f" ({growth:.1f} MiB per 10,000)",
                at,
                "MiB",
                f"< {MEMORY_TARGET_MB} MiB",
                at < MEMORY_TARGET_MB,
            )
        )
    return out


def main() -> None:
    results: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for name, args in RUNS:
        print(f"-- {name}", flush=True)
        command = [sys.executable, "-m", f"benchmarks.{name}", *args_of(name, args, results)]
        written = [HERE / "results" / f"{r}.json" for r in (name, *ALSO_WRITES.get(name, ()))]
        for path in written:
            path.unlink(missing_ok=True)  # no figure of an earlier run is read as this one's
        t = time.perf_counter()
        subprocess.run(command, check=True)
        seconds[name] = time.perf_counter() - t
        for path in written:
            if path.exists() or path.stem == name:
                results[path.stem] = json.loads(path.read_text())["figures"]
    table = figures(results)
    report = {
        "at": datetime.now(UTC).isoformat(),
        "seconds": time.perf_counter() - started,
        "seconds_per_benchmark": seconds,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "baselines": results["baselines"],
        "figures": [asdict(f) for f in table],
        "raw": results,
    }
    (HERE / "results.json").write_text(json.dumps(report, indent=2))
    print()
    print("| figure | value | target | met | baseline | ratio |")
    print("|---|---|---|---|---|---|")
    for f in table:
        ratio = f"{f.ratio:.2f}x {f.baseline}" if f.ratio is not None else ""
        base = f"{f.baseline_value:,.0f}/s" if f.baseline_value is not None else ""
        met = "" if f.met is None else "yes" if f.met else "no"
        print(f"| {f.name} | {f.value:,.1f} {f.unit} | {f.target} | {met} | {base} | {ratio} |")
    print(f"\nbaselines: {json.dumps({k: round(v) for k, v in results['baselines'].items()})}")
    print("seconds: " + ", ".join(f"{name} {s:.0f}" for name, s in seconds.items()))
    print(f"total {report['seconds']:.0f} s; written to benchmarks/results.json")


if __name__ == "__main__":
    main()
