"""How a report's figures read to a person: the kind of each cell, its label and its text.

One place decides that money has its currency's minor units, hours one
decimal, shares a percent sign and a guideline's outcome the words met or
missed, so the console's pages and downloads and the command line's tables
agree. The JSON of the API is written elsewhere (report_output.json_value) and
keeps its exact values.

A cell's kind comes from its column, except in the scheme review, whose value,
target, deviation and previous columns hold a different KPI on every row: there
the row's `kpi` decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from domain.currencies import MINOR_UNITS


class Kind(StrEnum):
    """What a report cell holds, which says how it is written."""

    TEXT = "text"
    COUNT = "count"
    MONEY = "money"
    HOURS = "hours"
    SCORE = "score"
    SHARE = "share"
    RATIO = "ratio"
    DAY = "day"
    MOMENT = "moment"
    MET = "met"
    COMPARISON = "comparison"
    KPI = "kpi"


NUMERIC = frozenset({Kind.COUNT, Kind.MONEY, Kind.HOURS, Kind.SCORE, Kind.SHARE, Kind.RATIO})

# Money whose row names no currency (the scheme review's turnover and profit add every
# currency: the KPIs assume one trading currency) gets the most common minor unit.
DEFAULT_MINOR_UNITS = 2

# Decimals shown for the kinds that are not money.
PLACES = {Kind.HOURS: 1, Kind.SCORE: 1, Kind.SHARE: 1, Kind.RATIO: 2, Kind.COUNT: 0}

_COUNTS = (
    "opened",
    "closed",
    "active_at_end",
    "size_at_start",
    "size_at_end",
    "new_customers",
    "lost_customers",
    "migrations_in",
    "migrations_out",
    "purchases",
    "refunds",
    "visits",
    "inquiries",
    "complaints",
    "inquiries_answered",
    "complaints_resolved",
)
_HOURS = (
    "first_response_hours_mean",
    "first_response_hours_p90",
    "complaint_resolution_hours_mean",
    "complaint_resolution_hours_p90",
)

COLUMN_KINDS: dict[str, Kind] = {
    **dict.fromkeys(_COUNTS, Kind.COUNT),
    **dict.fromkeys(_HOURS, Kind.HOURS),
    "turnover": Kind.MONEY,
    "profit": Kind.MONEY,
    "satisfaction": Kind.SCORE,
    "churn_rate": Kind.SHARE,
    "satisfied_share": Kind.SHARE,
    "new_to_lost_ratio": Kind.RATIO,
    "period_start": Kind.DAY,
    "period_end": Kind.DAY,
    "details_current_at": Kind.MOMENT,
    "met": Kind.MET,
    "comparison": Kind.COMPARISON,
    "kpi": Kind.KPI,
}

# The scheme review's columns whose kind is the row's KPI's.
BY_KPI = frozenset({"value", "target", "deviation", "previous"})

LABELS: dict[str, str] = {
    "period_start": "Period from",
    "period_end": "Period to (excluded)",
    "segment": "Segment",
    "service_plan": "Plan",
    "channel": "Channel",
    "opened": "Opened",
    "closed": "Closed",
    "active_at_end": "Active at end",
    "account_id": "Account ID",
    "external_ref": "Customer number",
    "details_current_at": "Details current since",
    "size_at_start": "Size at start",
    "size_at_end": "Size at end",
    "new_customers": "New customers",
    "lost_customers": "Lost customers",
    "migrations_in": "Moved in",
    "migrations_out": "Moved out",
    "new_to_lost_ratio": "New to lost",
    "churn_rate": "Churn",
    "store": "Store",
    "currency": "Currency",
    "purchases": "Purchases",
    "refunds": "Refunds",
    "turnover": "Turnover",
    "profit": "Profit",
    "visits": "Visits",
    "inquiries": "Inquiries",
    "first_response_hours_mean": "First response, mean (h)",
    "first_response_hours_p90": "First response, p90 (h)",
    "complaints": "Complaints",
    "complaint_resolution_hours_mean": "Resolution, mean (h)",
    "complaint_resolution_hours_p90": "Resolution, p90 (h)",
    "satisfaction": "Satisfaction",
    "actor": "Staff member",
    "inquiries_answered": "Inquiries answered",
    "complaints_resolved": "Complaints resolved",
    "satisfied_share": "Satisfied",
    "kpi": "KPI",
    "value": "Value",
    "comparison": "Guideline",
    "target": "Target",
    "deviation": "Against target",
    "previous": "Previous period",
    "trend": "Trend",
}


def label(column: str) -> str:
    """A column's name as a heading a person reads: `churn_rate` is `Churn`."""
    return LABELS.get(column) or column.replace("_", " ").capitalize()


def kind_of(column: str, row: Mapping[str, Any]) -> Kind:
    """The kind of `column`'s cell in `row` (the scheme review's figures follow its KPI)."""
    if column in BY_KPI and "kpi" in row:
        return COLUMN_KINDS.get(str(row["kpi"]), Kind.RATIO)
    return COLUMN_KINDS.get(column, Kind.TEXT)


def is_numeric(column: str, row: Mapping[str, Any]) -> bool:
    """Whether the cell is a figure (aligned right, a number in a spreadsheet)."""
    return kind_of(column, row) in NUMERIC


def places(kind: Kind, row: Mapping[str, Any]) -> int:
    """How many decimals a figure of `kind` has: money its row's currency's minor units."""
    if kind is Kind.MONEY:
        return MINOR_UNITS.get(str(row.get("currency") or ""), DEFAULT_MINOR_UNITS)
    return PLACES.get(kind, 2)


def number(value: Any, kind: Kind, row: Mapping[str, Any]) -> Decimal | None:
    """The figure rounded as it is shown (a share as a fraction); None when there is none.

    Decimal, so money stays exact and a float's noise (9.200000000000001) never
    shows. A count is whole, unless it is a target someone set with a fraction.
    """
    if value is None or isinstance(value, bool):
        return None
    exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    decimals = places(kind, row) + (2 if kind is Kind.SHARE else 0)
    if kind is Kind.COUNT and exact != exact.to_integral_value():
        decimals = 2
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)


def shown(column: str, row: Mapping[str, Any], zone: str = "UTC") -> str:
    """The cell as a person reads it on a page or in a terminal; an empty string for none.

    Figures have thousands separators and their decimals, shares a percent
    sign; the deviation from a target carries its sign.
    """
    value = row.get(column)
    kind = kind_of(column, row)
    if kind in NUMERIC:
        figure = number(value, kind, row)
        if figure is None:
            return ""
        if kind is Kind.SHARE:
            figure = figure.scaleb(2)
        decimals = max(0, -int(figure.as_tuple().exponent))
        sign = "+" if column == "deviation" and figure > 0 else ""
        text = f"{sign}{figure:,.{decimals}f}"
        return f"{text}%" if kind is Kind.SHARE else text
    if kind is Kind.MET and value is None and "kpi" in row:
        # The scheme review says why a KPI is neither met nor missed.
        return "no target" if row.get("target") is None else "no figure"
    return _words(kind, value, zone)


def plain(column: str, row: Mapping[str, Any]) -> str:
    """The cell as a CSV file holds it: figures without separators, a share as a fraction.

    A spreadsheet reads these as numbers in any locale that uses a decimal
    point; money has its currency's minor units, hours one decimal.
    """
    value = row.get(column)
    kind = kind_of(column, row)
    if kind in NUMERIC:
        figure = number(value, kind, row)
        return "" if figure is None else str(figure)
    if kind is Kind.MOMENT and isinstance(value, datetime):
        return value.isoformat()
    if kind is Kind.KPI:
        return "" if value is None else str(value)
    if kind is Kind.MET:
        return shown(column, row)
    return _words(kind, value, "UTC") if kind is not Kind.TEXT else _text(value)


def met_words(value: Any) -> str:
    """A guideline's outcome in words: met, missed, or empty when there is nothing to judge."""
    if value is None:
        return ""
    return "met" if value else "missed"


def _words(kind: Kind, value: Any, zone: str) -> str:
    if value is None:
        return ""
    if kind is Kind.MET:
        return met_words(value)
    if kind is Kind.COMPARISON:
        return str(value).replace("_", " ")
    if kind is Kind.KPI:
        return label(str(value))
    if kind is Kind.DAY and isinstance(value, date):
        return value.isoformat()
    if kind is Kind.MOMENT and isinstance(value, datetime):
        return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
