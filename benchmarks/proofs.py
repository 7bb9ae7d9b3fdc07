"""Proofs and the cost of the tree: proof latency at N leaves, signing, and the notary's load.

.venv/bin/python -m benchmarks.proofs --events 1000000

- Proof latency: the tree tables are filled directly (COPY) with N synthetic
  leaves and every perfect node above them, as the notary would have written
  them, not by storing N events; then inclusion and consistency proofs are
  generated for random positions and sizes by `LedgerTree`, the code the HTTP
  routes call (the route's reading of the event itself is not in the figure).
  The tree's root is checked against domain/merkle.py's own fold of the
  leaves, and sampled proofs against its verifiers.
- Signing: one checkpoint signed (Ed25519 over the note), and one signed and
  kept as the notary does (root read, sign, insert).
- The tree's cost: commands (single-activity saves from several threads) and
  ingest (batch saves of ten accounts, the ingest's write path without the
  broker) measured in alternating phases with the notary off and on, the
  notary running as its role does (`Notary.run`, its own process; the
  checkpoint publisher, which only sends a note a minute to the broker, is
  left out). The notary's lag behind the store is sampled meanwhile.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    add_activities,
    bench_services,
    open_account,
    timed_commands,
    write_result,
)
from domain import merkle
from infra.merkle_tree import LedgerTree
from infra.notary import Notary
from infra.settings import Settings
from infra.wiring import Services, bootstrap


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of `samples`, in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def fill_tree(services: Services, n: int) -> list[bytes]:
    """COPY n synthetic leaves (positions 1..n) and every perfect node above them."""
    schema = services.settings.database_schema
    leaves = [merkle.leaf_hash(os.urandom(32)) for _ in range(n)]
    with services.pool.connection() as conn, conn.cursor() as cur:
        with cur.copy(
            f"COPY {schema}.merkle_leaves (leaf_index, position, leaf_hash) FROM STDIN".encode()
        ) as copy:
            for i, h in enumerate(leaves):
                copy.write_row((i, i + 1, h))
        level, hashes = 0, leaves
        with cur.copy(
            f"COPY {schema}.merkle_nodes (level, index, hash) FROM STDIN".encode()
        ) as copy:
            while len(hashes) > 1:
                level += 1
                hashes = [
                    merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)
                ]
                for i, h in enumerate(hashes):
                    copy.write_row((level, i, h))
        cur.execute(
            f"UPDATE {schema}.merkle_head SET tree_size = %s, position = %s".encode(), (n, n)
        )
        cur.execute(f"ANALYZE {schema}.merkle_leaves".encode())
        cur.execute(f"ANALYZE {schema}.merkle_nodes".encode())
    return leaves


def proof_latency(services: Services, n: int, samples: int) -> dict[str, Any]:
    """Fill the tree with n leaves and time proofs against it."""
    started = time.perf_counter()
    leaves = fill_tree(services, n)
    fill_seconds = time.perf_counter() - started
    tree: LedgerTree = services.tree
    root = tree.root(n)
    assert root == merkle.root(leaves), "the stored tree's root is not the leaves' root"

    rng = random.Random(13)
    for _ in range(50):  # warm the cache and the prepared statements
        tree.inclusion(rng.randint(1, n), n)
    inclusion: list[float] = []
    for _ in range(samples):
        position = rng.randint(1, n)
        size = rng.randint(position, n)
        t = time.perf_counter()
        proof = tree.inclusion(position, size)
        inclusion.append(time.perf_counter() - t)
        if len(inclusion) % 50 == 0:
            assert merkle.verify_inclusion(
                leaves[position - 1], proof.leaf_index, size, proof.path, proof.root_hash
            )
    latest: list[float] = []
    for _ in range(samples):
        position = rng.randint(1, n)
        t = time.perf_counter()
        tree.inclusion(position)
        latest.append(time.perf_counter() - t)
    consistency: list[float] = []
    for _ in range(samples):
        first = rng.randint(1, n)
        second = rng.randint(first, n)
        t = time.perf_counter()
        proof_c = tree.consistency(first, second)
        consistency.append(time.perf_counter() - t)
        if len(consistency) % 50 == 0:
            assert merkle.verify_consistency(
                first, second, proof_c.first_root, proof_c.second_root, proof_c.path
            )
    assert merkle.verify_consistency(1, n, leaves[0], root, tree.consistency(1, n).path)
    # The same-run baseline: one primary-key read of a leaf, on the same pool.
    lookup: list[float] = []
    schema = services.settings.database_schema
    query = f"SELECT leaf_hash FROM {schema}.merkle_leaves WHERE position = %s".encode()
    for _ in range(samples):
        t = time.perf_counter()
        with services.pool.connection() as conn:
            conn.execute(query, (rng.randint(1, n),), prepare=True).fetchone()
        lookup.append(time.perf_counter() - t)
    base50, base99 = percentiles(lookup)
    inc50, inc99 = percentiles(inclusion)
    cur50, cur99 = percentiles(latest)
    con50, con99 = percentiles(consistency)
    return {
        "tree_leaves": n,
        "tree_fill_seconds": fill_seconds,
        "inclusion_p50_ms": inc50,
        "inclusion_p99_ms": inc99,
        "inclusion_current_size_p50_ms": cur50,
        "inclusion_current_size_p99_ms": cur99,
        "consistency_p50_ms": con50,
        "consistency_p99_ms": con99,
        "baseline_leaf_lookup_p50_ms": base50,
        "baseline_leaf_lookup_p99_ms": base99,
        "proof_samples": samples,
    }


def signing(services: Services, n: int, rounds: int = 500) -> dict[str, Any]:
    """Time signing a checkpoint, and signing and keeping one as the notary does."""
    root = services.tree.root(n)
    signs: list[float] = []
    for _ in range(rounds):
        t = time.perf_counter()
        services.signer.sign(n, root)
        signs.append(time.perf_counter() - t)
    kept: list[float] = []
    schema = services.settings.database_schema
    for _ in range(50):
        with services.pool.connection() as conn:
            conn.execute(f"DELETE FROM {schema}.checkpoints".encode())
        notary = Notary(services, checkpoint_s=0)
        t = time.perf_counter()
        assert notary.checkpoint_if_due() == n
        kept.append(time.perf_counter() - t)
    s50, s99 = percentiles(signs)
    k50, k99 = percentiles(kept)
    return {
        "sign_p50_ms": s50,
        "sign_p99_ms": s99,
        "sign_and_keep_p50_ms": k50,
        "sign_and_keep_p99_ms": k99,
    }


def _run_notary(settings: Settings, stop: Any, ready: Any) -> None:
    """The notary role in a process of its own, until `stop` is set."""
    services = bootstrap(settings)
    try:
        halt = threading.Event()
        threading.Thread(target=lambda: (stop.wait(), halt.set()), daemon=True).start()
        ready.set()
        Notary(services).run(halt)
    finally:
        services.close()


class NotaryProcess:
    """The notary in a child process, started and stopped on demand."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None

    def start(self) -> None:
        self._stop, ready = self._context.Event(), self._context.Event()
        self._process = self._context.Process(
            target=_run_notary, args=(self._settings, self._stop, ready), daemon=True
        )
        self._process.start()
        assert ready.wait(60), "the notary did not start"

    def stop(self) -> None:
        self._stop.set()
        self._process.join(30)


def lag_sampler(services: Services, stop: threading.Event, lags: list[int]) -> None:
    """Sample how many stored events the tree lacks, every 100 ms."""
    schema = services.settings.database_schema
    query = (
        f"SELECT (SELECT coalesce(max(notification_id), 0) FROM {schema}.ledger_events)"
        f" - (SELECT position FROM {schema}.merkle_head)"
    ).encode()
    with services.pool.connection() as conn:
        conn.autocommit = True
        while not stop.wait(0.1):
            row = conn.execute(query).fetchone()
            lags.append(int(row[0]) if row else 0)


def ingest(services: Services, seconds: float) -> float:
    """Batch saves of ten fresh accounts of 100 events each for `seconds`: events per second."""
    ledger = services.ledger
    written = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = []
        for _ in range(10):
            account = open_account(ledger, save=False)
            add_activities(account, 99)
            batch.append(account)
        ledger.record_batch(batch, ())
        written += 1000
    return written / (time.perf_counter() - started)


def tree_cost(services: Services, seconds: float, rounds: int) -> dict[str, Any]:
    """Commands and ingest with the notary off and on, alternating, in the same run."""
    notary = NotaryProcess(services.settings)
    rates: dict[str, list[float]] = {
        "commands_off": [],
        "commands_on": [],
        "ingest_off": [],
        "ingest_on": [],
    }
    lags: list[int] = []
    append_rates: list[float] = []
    append_cpu: list[float] = []  # the notary process's own CPU, microseconds per event
    lag_seconds: list[float] = []  # the lag in events over the phase's rate of events
    catch_up: list[float] = []
    runs: list[tuple[str, Callable[[Services, float], float]]] = [
        ("commands", lambda services, seconds: timed_commands(services, seconds)[0]),
        ("ingest", ingest),
    ]
    for _ in range(rounds):
        for name, run in runs:
            rates[f"{name}_off"].append(run(services, seconds))
            # The backlog of the phase off, appended here, timed: the notary's own rate.
            wall, cpu = time.perf_counter(), time.process_time()
            appended = Notary(services).catch_up()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            append_rates.append(appended / wall)
            append_cpu.append(1e6 * cpu / max(appended, 1))
            notary.start()
            stop = threading.Event()
            phase_lags: list[int] = []
            sampler = threading.Thread(target=lag_sampler, args=(services, stop, phase_lags))
            sampler.start()
            try:
                rate = run(services, seconds)
                rates[f"{name}_on"].append(rate)
                # How long the notary needs, once the load stops, to hold everything stored.
                t = time.perf_counter()
                while True:
                    last = services.ledger.recorder.max_notification_id() or 0
                    if services.tree.head()[1] >= last:
                        break
                    time.sleep(0.01)
                catch_up.append(time.perf_counter() - t)
            finally:
                stop.set()
                sampler.join()
                notary.stop()
            lags.append(max(phase_lags, default=0))
            # Both loads' rates are events per second (a command stores one event).
            lag_seconds.append(max(phase_lags, default=0) / rate)
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "commands_per_s_notary_off": med["commands_off"],
        "commands_per_s_notary_on": med["commands_on"],
        "commands_cost_percent": 100 * (1 - med["commands_on"] / med["commands_off"]),
        "ingest_events_per_s_notary_off": med["ingest_off"],
        "ingest_events_per_s_notary_on": med["ingest_on"],
        "ingest_cost_percent": 100 * (1 - med["ingest_on"] / med["ingest_off"]),
        "notary_append_events_per_s": statistics.median(append_rates),
        "notary_append_cpu_us_per_event": statistics.median(append_cpu),
        "notary_max_lag_events": max(lags, default=0),
        "notary_max_lag_seconds_of_load": max(lag_seconds, default=0.0),
        "notary_catch_up_after_load_max_s": max(catch_up, default=0.0),
        "cost_phase_seconds": seconds,
        "cost_rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="leaves of the proof tree")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0, help="each cost phase")
    parser.add_argument("--rounds", type=int, default=4, help="off/on pairs of each load")
    args = parser.parse_args()

    figures: dict[str, Any] = {}
    with bench_services() as services:
        figures.update(proof_latency(services, args.events, args.samples))
        figures.update(signing(services, args.events))
    with bench_services() as services:
        figures.update(tree_cost(services, args.seconds, args.rounds))
    write_result("proofs", figures)


if __name__ == "__main__":
    main()
