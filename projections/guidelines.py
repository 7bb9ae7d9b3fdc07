"""Service performance guidelines: a target on a KPI, and whether a value meets it.

Management sets targets in the `guidelines` table; a KPI without a row falls
back to the defaults below (the design's examples and common retail service
levels). A KPI with neither has no target, and the scheme review says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg import Connection

from domain.errors import InvalidCommand
from projections.kpis import KPI_NAMES

Comparison = Literal["at_least", "at_most"]
COMPARISONS: tuple[Comparison, ...] = ("at_least", "at_most")


@dataclass(frozen=True)
class Guideline:
    """A target on one KPI; `updated_by` is None for a default nobody set."""

    kpi: str
    comparison: Comparison
    target: float
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def source(self) -> str:
        return "default" if self.updated_by is None else "set"

    def met(self, value: float | None) -> bool | None:
        """Whether `value` meets the target; None when there is no value to judge."""
        if value is None:
            return None
        if self.comparison == "at_least":
            return value >= self.target
        return value <= self.target


DEFAULTS: dict[str, Guideline] = {
    g.kpi: g
    for g in (
        Guideline("first_response_hours_p90", "at_most", 24.0),
        Guideline("complaint_resolution_hours_p90", "at_most", 72.0),
        Guideline("satisfaction", "at_least", 4.0),
        Guideline("churn_rate", "at_most", 0.05),
        Guideline("new_to_lost_ratio", "at_least", 1.0),
    )
}


def read_guidelines(conn: Connection) -> dict[str, Guideline]:
    """Every KPI's guideline, set or default, in the order of KPI_NAMES.

    Guidelines are the ledger's own data, not a read model: they live beside the
    event store (infra/schema.py), found through the connection's search path,
    so no rebuild or loss of the read-model schema touches them.
    """
    rows = conn.execute(
        b"SELECT kpi, comparison, target, updated_at, updated_by FROM guidelines"
    ).fetchall()
    stored = {row[0]: Guideline(*row) for row in rows}
    merged = {**DEFAULTS, **stored}
    return {kpi: merged[kpi] for kpi in KPI_NAMES if kpi in merged}


def set_guidelines(
    conn: Connection,
    changes: Mapping[str, tuple[Comparison, float] | None],
    actor: str,
) -> None:
    """Set the targets of some KPIs in one transaction; None returns a KPI to its default.

    Raises InvalidCommand for a KPI the design does not define, an unknown
    comparison or a target that is not a finite number; nothing is written then.
    """
    if not changes:
        raise InvalidCommand("give at least one KPI and its target")
    unknown = sorted(set(changes) - set(KPI_NAMES))
    if unknown:
        raise InvalidCommand(
            f"unknown KPI: {', '.join(unknown)}; the KPIs are {', '.join(KPI_NAMES)}"
        )
    for kpi, change in changes.items():
        if change is None:
            continue
        comparison, target = change
        if comparison not in COMPARISONS:
            raise InvalidCommand(f"{kpi}: comparison must be at_least or at_most")
        if not math.isfinite(target):
            raise InvalidCommand(f"{kpi}: the target must be a finite number")
    with conn.transaction():
        for kpi, change in changes.items():
            if change is None:
                conn.execute("DELETE FROM guidelines WHERE kpi = %s", (kpi,))
                continue
            conn.execute(
                "INSERT INTO guidelines (kpi, comparison, target, updated_by)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (kpi) DO UPDATE SET"
                " comparison = EXCLUDED.comparison, target = EXCLUDED.target,"
                " updated_at = now(), updated_by = EXCLUDED.updated_by",
                (kpi, *change, actor),
            )
