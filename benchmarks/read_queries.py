"""The reads the read benchmark times: reports, directory searches, the account page.

Each is what an HTTP route runs, called in the process (no HTTP, no response
model), on two ledgers in turn (N events and N/10): a report is
`ReadModels.report` and then `report_document` (JSON) or `csv_text` (CSV), as
api/routers/reports.py does, the query timed once a run with each format's
writing added to it (a paged report, the accounts due for review: its first
page as the route serves it by default, `ReadModels.report_page`, with its
count and next cursor); a search, an account read and a history are the route
functions of api/routers/accounts.py themselves, with the key reads, the
decryption and the access-log row each writes.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import Response

from api.auth import Principal
from api.routers import accounts as routes
from api.views import encode_cursor, encode_page_cursor
from benchmarks.ledger_mix import Loaded
from infra.wiring import Services
from projections.report_output import csv_text, report_document
from projections.reports import REPORTS, Report, page_asked

DUE = "accounts-due-for-review"

READER = Principal("bench-reader", frozenset({"customer_service"}), "customer_service")
Samples = dict[str, list[float]]
# A query's rounds stop after this many seconds, once MIN_RUNS are timed: a report
# answering tens of thousands of rows would otherwise take a minute.
BUDGET_S, MIN_RUNS = 8.0, 12
# One timed call of a query on one side, given the run's number: its timings by name (ms).
Call = Callable[[int], dict[str, float]]


@dataclass(frozen=True)
class Window:
    """A report's range: [start, end) and the bucket of its rows."""

    name: str
    start: date
    end: date
    period: str
    fixed: bool  # a fixed span (month, quarter), whose cost should not grow with the ledger


def windows(end: date) -> list[Window]:
    """The last full month, the last full quarter and the 12 full months before `end`."""
    month_end = end.replace(day=1)
    month_start = _months_before(month_end, 1)
    quarter_end = month_end.replace(month=(month_end.month - 1) // 3 * 3 + 1)
    return [
        Window("month", month_start, month_end, "month", True),
        Window("quarter", _months_before(quarter_end, 3), quarter_end, "quarter", True),
        Window("trend12", _months_before(month_end, 12), month_end, "month", False),
    ]


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def p50_p95(samples: list[float]) -> tuple[float, float]:
    """The median and the 95th percentile (nearest rank) of `samples`."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def alternate(
    calls: dict[str, Call], runs: int, warmup: int, budget: float = BUDGET_S
) -> dict[str, Samples]:
    """Each side's call in turn, `warmup` untimed rounds then `runs`: side -> name -> ms.

    The sides take turns within every round (the first one swapped each round),
    so a burst of load on the machine falls on both alike and their ratio holds.
    A query slow enough to pass `budget` seconds stops at MIN_RUNS rounds.
    """
    out: dict[str, Samples] = {side: defaultdict(list) for side in calls}
    order = list(calls)
    started = time.perf_counter()
    for i in range(warmup + runs):
        if i >= warmup + MIN_RUNS and time.perf_counter() - started > budget:
            break
        for side in order if i % 2 == 0 else order[::-1]:
            timings = calls[side](i)
            if i >= warmup:
                for name, ms in timings.items():
                    out[side][name].append(ms)
    return out


def _ms(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def reports(
    sides: dict[str, Services], end: date, runs: int, warmup: int
) -> tuple[dict[str, Samples], set[str]]:
    """Every report in every window, as JSON and as CSV, on each side; and the fixed-range names."""
    out: dict[str, Samples] = {side: {} for side in sides}
    fixed: set[str] = set()
    for report in REPORTS.values():
        done: dict[date, tuple[dict[str, Samples], dict[str, int]]] = {}
        for w in windows(end):
            # Due for review reads no start: its month and 12 months are one query, timed once.
            key = w.end if report.name == DUE else w.start
            if key not in done:
                rows: dict[str, int] = {}
                calls = {side: _report_call(s, report, w, rows, side) for side, s in sides.items()}
                done[key] = alternate(calls, runs, warmup), rows
            samples, rows = done[key]
            for side in sides:
                for fmt in ("json", "csv"):
                    out[side][f"report_{report.name}_{w.name}_{fmt}"] = samples[side][fmt]
                out[side][f"report_{report.name}_{w.name}_rows"] = [float(rows[side])]
            # Due for review has no range: its answer is the first page of every account due
            # (and their count), whatever the span.
            if w.fixed and report.name != DUE:
                fixed |= {f"report_{report.name}_{w.name}_{fmt}" for fmt in ("json", "csv")}
    return out, fixed


def _report_call(
    services: Services, report: Report, w: Window, rows: dict[str, int], side: str
) -> Call:
    # The query once a run, each format's writing added to it: the route does one or the other.
    # A paged report is read as the route reads it by default: its first page.
    def call(_: int) -> dict[str, float]:
        t0 = time.perf_counter()
        if report.paged is None:
            scope, got = services.readmodels.report(
                report, start=w.start, end=w.end, period=w.period
            )
        else:
            scope, page = services.readmodels.report_page(
                report, page_asked(report), start=w.start, end=w.end, period=w.period
            )
            got = page.rows
            if page.next_key:
                encode_page_cursor(report.name, page.next_key)
        t1 = time.perf_counter()
        report_document(report, scope, got)
        t2 = time.perf_counter()
        csv_text(report.columns_for(scope), got)
        t3 = time.perf_counter()
        rows[side] = len(got)
        return {"json": (t2 - t0) * 1000, "csv": (t1 - t0 + t3 - t2) * 1000}

    return call


def searches(
    sides: dict[str, Services], loaded: Loaded, runs: int, warmup: int
) -> dict[str, Samples]:
    """The directory by each searchable field, by segment and by status, and a page deep in.

    The accounts searched for are in both ledgers (their first layer is the same).
    """
    name, email, phone, ref = loaded.samples[0]
    cases: dict[str, dict[str, Any]] = {
        "search_name": {"q": name},
        "search_surname": {"q": name.split()[-1]},
        "search_email": {"q": email},
        "search_phone": {"q": phone},
        "search_external_ref": {"q": ref},
        "search_segment": {"segment": "gold"},
        "search_status_closed": {"status": "closed"},
        "search_segment_deep_page": {"segment": "gold"},
    }
    out: dict[str, Samples] = {side: {} for side in sides}
    for label, params in cases.items():
        calls = {}
        for side, services in sides.items():
            args: dict[str, Any] = {"segment": None, "status": None, "channel": None, "q": None}
            args |= {"cursor": _middle("gold", services) if "deep" in label else None}
            args |= {"limit": 50} | params
            assert routes.directory(READER, services, **args).items, f"{label} found nothing"
            calls[side] = _search_call(services, args)
        for side, samples in alternate(calls, runs, warmup).items():
            out[side][label] = samples["ms"]
    return out


def _search_call(services: Services, args: dict[str, Any]) -> Call:
    return lambda _: {"ms": _ms(lambda: routes.directory(READER, services, **args))}


def _middle(segment: str, services: Services) -> str:
    """The cursor of the segment's middle account: a page as deep as half its accounts."""
    rm = services.settings.readmodel_schema
    with services.pool.connection() as conn:
        (count,) = conn.execute(
            f"SELECT count(*) FROM {rm}.accounts WHERE segment = %s".encode(), (segment,)
        ).fetchone() or (0,)
        row = conn.execute(
            f"SELECT opened_at, account_id FROM {rm}.accounts WHERE segment = %s"
            " ORDER BY opened_at, account_id OFFSET %s LIMIT 1".encode(),
            (segment, count // 2),
        ).fetchone()
    assert row is not None, f"no {segment} account"
    return encode_cursor(row[0], row[1])


def account_page(
    sides: dict[str, Services], busy: list[UUID], as_of: datetime, runs: int, warmup: int
) -> dict[str, Samples]:
    """A regular customer's account, its 50 events of history, and the account as of `as_of`.

    Each run reads another account (the same on each side), dropped from the
    ledger's cache first (untimed), so every read loads from the store, as a
    random account's would.
    """

    def current(services: Services, account_id: UUID) -> None:
        routes.read_account(account_id, READER, services, Response(), version=None, as_of=None)

    def history(services: Services, account_id: UUID) -> None:
        out = routes.history(account_id, READER, services, Response())
        assert len(out.events) == 50, len(out.events)

    def then(services: Services, account_id: UUID) -> None:
        routes.read_account(account_id, READER, services, Response(), version=None, as_of=as_of)

    out: dict[str, Samples] = {side: {} for side in sides}
    for label, read in (
        ("account_current", current),
        ("account_history_50", history),
        ("account_as_of_year_ago", then),
    ):
        calls = {side: _cold_call(services, busy, read) for side, services in sides.items()}
        for side, samples in alternate(calls, runs, warmup).items():
            out[side][label] = samples["ms"]
    return out


def _cold_call(
    services: Services, busy: list[UUID], read: Callable[[Services, UUID], None]
) -> Call:
    cache = services.ledger.repository.cache

    def call(i: int) -> dict[str, float]:
        account_id = busy[i % len(busy)]
        if cache is not None:
            with suppress(KeyError):
                cache.get(account_id, evict=True)
        return {"ms": _ms(lambda: read(services, account_id))}

    return call


def as_of_moment(end: datetime) -> datetime:
    """A moment a year before the end of the business time."""
    return end - timedelta(days=365)
