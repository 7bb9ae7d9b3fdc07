"""The review of the service scheme: every KPI of a range against its guideline and the past.

The range [start, end) is one period. Each KPI is set against its target (met,
deviation = value - target) and against the period of the same length just
before (trend). Segment and channel filters narrow both periods alike.
"""

from __future__ import annotations

import math
from typing import Any

from psycopg import Connection

from projections.guidelines import read_guidelines
from projections.kpis import KPI_NAMES, Scope, service_kpis

SCHEME_REVIEW_COLUMNS = (
    "kpi",
    "value",
    "comparison",
    "target",
    "met",
    "deviation",
    "previous",
    "trend",
)


def scheme_review(conn: Connection, schema: str, scope: Scope) -> list[dict[str, Any]]:
    """One row per KPI of KPI_NAMES: value, target, met, deviation, previous value, trend."""
    length = scope.end - scope.start
    now = _kpis(conn, schema, scope, scope.start, scope.end)
    before = _kpis(conn, schema, scope, scope.start - length, scope.start)
    guidelines = read_guidelines(conn)
    rows = []
    for kpi in KPI_NAMES:
        value, previous = _number(now[kpi]), _number(before[kpi])
        guideline = guidelines.get(kpi)
        target = guideline.target if guideline else None
        rows.append(
            {
                "kpi": kpi,
                "value": value,
                "comparison": guideline.comparison if guideline else None,
                "target": target,
                "met": guideline.met(value) if guideline else None,
                "deviation": value - target if value is not None and target is not None else None,
                "previous": previous,
                "trend": trend(value, previous),
            }
        )
    return rows


def trend(value: float | None, previous: float | None) -> str | None:
    """up, down or flat from `previous` to `value`; None when either is missing."""
    if value is None or previous is None:
        return None
    if math.isclose(value, previous, rel_tol=1e-9, abs_tol=1e-12):
        return "flat"
    return "up" if value > previous else "down"


def _kpis(conn: Connection, schema: str, scope: Scope, start: Any, end: Any) -> dict[str, Any]:
    whole = Scope(start, end, "range", segment=scope.segment, channel=scope.channel)
    (row,) = service_kpis(conn, schema, whole)
    return row


def _number(value: Any) -> float | None:
    # Money comes as Decimal, counts as int, times as float: one type to compare with targets.
    return None if value is None else float(value)
