"""The charts of the report pages: what each report draws, as Chart.js configurations.

A chart shows only figures that are in the page's table (the table is its
text alternative), summed where the chart takes a coarser view: the trend of
the service KPIs over the periods, segment sizes, new against lost customers,
turnover per currency, each staff member's cases. The scheme review and the
accounts due for review are lists to read, not shapes to see: no chart.
Colours are the browser script's (console/static/report-charts.js).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from projections.report_format import label
from projections.report_queries import ReportScope
from projections.reports import Report

Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Chart:
    """One chart: its kind, the categories along its x axis, and named series of figures."""

    key: str
    title: str
    kind: str  # "line" or "bar"
    labels: list[str]
    series: list[tuple[str, list[float | None]]]
    unit: str
    whole: bool = True  # counts: no tick at 0.5 of an account

    def described(self) -> str:
        """The canvas's accessible name: what it shows and where its figures are in words."""
        names = ", ".join(name for name, _ in self.series)
        return f"Chart: {self.title} ({names}). The table below holds the same figures."

    def config(self) -> dict[str, Any]:
        """The Chart.js configuration (colours are added in the browser)."""
        y: dict[str, Any] = {"beginAtZero": True, "title": {"display": True, "text": self.unit}}
        if self.whole:
            y["ticks"] = {"precision": 0}
        return {
            "type": self.kind,
            "data": {
                "labels": self.labels,
                "datasets": [
                    {"label": name, "data": data, "maxBarThickness": 72}
                    for name, data in self.series
                ],
            },
            "options": {
                "responsive": True,
                "maintainAspectRatio": False,
                "animation": False,  # a report is read, not watched; screenshots are stable
                "spanGaps": True,
                "plugins": {"legend": {"position": "bottom"}},
                # A line's first and last points stand clear of the chart's edges.
                "scales": {"x": {"offset": True}, "y": y},
            },
        }


def period_label(start: date, period: str) -> str:
    """A period on a chart's axis: a day, the week of its Monday, a month, a quarter."""
    if period == "month":
        return start.strftime("%b %Y")
    if period == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    if period == "week":
        return f"week of {start.isoformat()}"
    return start.isoformat()


def charts(report: Report, scope: ReportScope, rows: Rows) -> list[Chart]:
    """The charts of `report` over `rows` (none when there are no rows)."""
    draw = _DRAWN.get(report.name)
    return draw(scope, rows) if draw and rows else []


def _figure(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def _periods(scope: ReportScope, rows: Rows) -> tuple[list[date], list[str]]:
    starts = sorted({row["period_start"] for row in rows})
    return starts, [period_label(s, scope.period) for s in starts]


def _summed(rows: Rows, key: Callable[[Mapping[str, Any]], Any], column: str) -> dict[Any, float]:
    totals: dict[Any, float] = defaultdict(float)
    for row in rows:
        totals[key(row)] += float(row[column] or 0)
    return totals


def _service_kpis(scope: ReportScope, rows: Rows) -> list[Chart]:
    starts, labels = _periods(scope, rows)
    if scope.split:
        # One line per segment or channel: the guideline's KPI, first response p90.
        groups = sorted({str(row[scope.split]) for row in rows})
        at = {(row["period_start"], str(row[scope.split])): row for row in rows}
        series = [
            (
                group,
                [
                    _figure(at[(s, group)]["first_response_hours_p90"])
                    if (s, group) in at
                    else None
                    for s in starts
                ],
            )
            for group in groups
        ]
        title = f"First response p90 per period, by {scope.split}"
        return [Chart("times", title, "line", labels, series, "hours", whole=False)]
    by_start = {row["period_start"]: row for row in rows}
    times = [
        (label(c), [_figure(by_start[s][c]) for s in starts])
        for c in (
            "first_response_hours_mean",
            "first_response_hours_p90",
            "complaint_resolution_hours_mean",
            "complaint_resolution_hours_p90",
        )
    ]
    cases = [
        (label(c), [_figure(by_start[s][c]) for s in starts]) for c in ("inquiries", "complaints")
    ]
    return [
        Chart(
            "times",
            "Response and resolution times per period",
            "line",
            labels,
            times,
            "hours",
            whole=False,
        ),
        Chart("cases", "Inquiries and complaints per period", "bar", labels, cases, "cases"),
    ]


def _segment_analysis(scope: ReportScope, rows: Rows) -> list[Chart]:
    starts, labels = _periods(scope, rows)
    last = max(starts)
    sizes = {
        str(row["segment"]): float(row["size_at_end"])
        for row in rows
        if row["period_start"] == last
    }
    segments = sorted(sizes)
    new = _summed(rows, lambda r: r["period_start"], "new_customers")
    lost = _summed(rows, lambda r: r["period_start"], "lost_customers")
    flows: list[tuple[str, list[float | None]]] = [
        ("New customers", [new[s] for s in starts]),
        ("Lost customers", [lost[s] for s in starts]),
    ]
    size_series: list[tuple[str, list[float | None]]] = [
        ("Size at end", [sizes[s] for s in segments])
    ]
    return [
        Chart(
            "sizes",
            "Segment sizes at the end of the range",
            "bar",
            segments,
            size_series,
            "accounts",
        ),
        Chart("flows", "New against lost customers per period", "bar", labels, flows, "accounts"),
    ]


def _financial_summary(scope: ReportScope, rows: Rows) -> list[Chart]:
    starts, labels = _periods(scope, rows)
    series: list[tuple[str, list[float | None]]] = []
    for currency in sorted({str(row["currency"]) for row in rows}):
        mine = [row for row in rows if row["currency"] == currency]
        for column in ("turnover", "profit"):
            totals = _summed(mine, lambda r: r["period_start"], column)
            series.append((f"{label(column)} {currency}", [totals.get(s) for s in starts]))
    title = "Turnover and profit per period"
    return [Chart("money", title, "bar", labels, series, "amount", whole=False)]


def _accounts_summary(scope: ReportScope, rows: Rows) -> list[Chart]:
    segments = sorted({str(row["segment"]) for row in rows})
    active = _summed(rows, lambda r: str(r["segment"]), "active_at_end")
    opened = _summed(rows, lambda r: str(r["segment"]), "opened")
    closed = _summed(rows, lambda r: str(r["segment"]), "closed")
    sizes: list[tuple[str, list[float | None]]] = [("Active at end", [active[s] for s in segments])]
    flows: list[tuple[str, list[float | None]]] = [
        ("Opened", [opened[s] for s in segments]),
        ("Closed", [closed[s] for s in segments]),
    ]
    return [
        Chart("sizes", "Active accounts by segment at the end", "bar", segments, sizes, "accounts"),
        Chart("flows", "Opened against closed by segment", "bar", segments, flows, "accounts"),
    ]


def _staff_performance(scope: ReportScope, rows: Rows) -> list[Chart]:
    actors = [str(row["actor"] or "unknown") for row in rows]
    series = [
        (label(c), [_figure(row[c]) for row in rows])
        for c in ("inquiries_answered", "complaints_resolved")
    ]
    return [Chart("cases", "Cases closed per staff member", "bar", actors, series, "cases")]


_DRAWN: dict[str, Callable[[ReportScope, Rows], list[Chart]]] = {
    "service-kpis": _service_kpis,
    "segment-analysis": _segment_analysis,
    "financial-summary": _financial_summary,
    "accounts-summary": _accounts_summary,
    "staff-performance": _staff_performance,
}
