"""Request and response bodies of the report and guideline routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class ReportOut(BaseModel):
    """A report as JSON: its parameters, its columns and flat rows (money as exact strings).

    A paged report (accounts-due-for-review) answers one page of its rows and
    adds `limit`, `total` and `next_cursor`.
    """

    report: str
    title: str
    from_: date = Field(alias="from", description="first day, included")
    to: date = Field(description="last day, excluded")
    period: Literal["day", "week", "month", "quarter"] | None = Field(
        description="the bucket of periodic reports; null for the others"
    )
    segment: str | None
    channel: str | None
    split: Literal["segment", "channel"] | None
    days: int | None = Field(description="the review age of accounts-due-for-review")
    columns: list[str]
    rows: list[dict[str, Any]]
    # A paged report's only (accounts-due-for-review); the other reports' answers lack them.
    limit: int | None = Field(None, description="paged reports only: the most rows a page holds")
    total: int | None = Field(None, description="paged reports only: the rows of every page")
    next_cursor: str | None = Field(
        None, description="paged reports only: pass as `cursor` for the next page; null at the end"
    )


class ReportInfoOut(BaseModel):
    name: str
    title: str
    departments: list[str]
    columns: list[str]
    periodic: bool
    options: list[str]


class ReportListOut(BaseModel):
    reports: list[ReportInfoOut]


class GuidelineIn(BaseModel):
    """A target on one KPI."""

    model_config = ConfigDict(extra="forbid")

    comparison: Literal["at_least", "at_most"]
    target: Annotated[float, Field(allow_inf_nan=False)]


class GuidelineOut(GuidelineIn):
    source: Literal["default", "set"]
    updated_at: datetime | None
    updated_by: str | None


class GuidelinesIn(RootModel[dict[str, GuidelineIn | None]]):
    """Targets by KPI name; null returns a KPI to its default."""


class GuidelinesOut(RootModel[dict[str, GuidelineOut]]):
    """Every KPI that has a target, set or default, by KPI name."""
