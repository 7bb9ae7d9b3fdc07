"""KPI facts: how each event adds to the daily counters, cases and migrations.

Every fact lands on the day the event occurred (in the reporting time zone)
and on the account's segment at that moment, which this read model keeps in its
own kpi_accounts table (each account's events arrive in order), so it can be
rebuilt without the directory. The channel is the activity's own channel where
it has one (visits, inquiries), else the channel the account was opened through.
"""

from __future__ import annotations

from decimal import Decimal

from projections.events import ProjectedEvent
from projections.sql import Statement

COUNTERS = (
    "new_customers",
    "lost_customers",
    "purchases",
    "refunds",
    "turnover",
    "profit",
    "visits",
    "inquiries",
    "complaints",
    "feedback_count",
    "feedback_sum",
    "migrations_in",
    "migrations_out",
)


def fact_changes(e: ProjectedEvent) -> list[Statement]:
    """How one event changes the KPI facts (run after the directory's change)."""
    d = e.data
    match e.type:
        case "AccountOpened":
            opened = Statement(
                "INSERT INTO {rm}.kpi_accounts (account_id, segment, channel, opened_day)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (e.account_id, d["segment"], d["channel"], e.day),
            )
            return [opened, _add(e, {"new_customers": 1})]
        case "AccountClosed":
            closed = Statement(
                "UPDATE {rm}.kpi_accounts SET closed_day = %s WHERE account_id = %s",
                (e.day, e.account_id),
            )
            return [closed, _add(e, {"lost_customers": 1})]
        case "PurchaseRecorded" | "RefundRecorded":
            amount, cost = e.decimal("amount"), e.decimal("cost")
            sign = 1 if e.type == "PurchaseRecorded" else -1
            count = "purchases" if sign == 1 else "refunds"
            return [
                _add(e, {count: 1, "turnover": sign * amount, "profit": sign * (amount - cost)}),
                _sale(e, count, sign * amount, sign * (amount - cost)),
            ]
        case "VisitRecorded":
            return [_add(e, {"visits": 1}, channel=d["channel"])]
        case "InquiryOpened":
            return [
                _add(e, {"inquiries": 1}, channel=d["channel"]),
                _open_case(e, "inquiry", d["inquiry_id"], d["channel"]),
            ]
        case "InquiryAnswered":
            return [_close_case(e, "inquiry", d["inquiry_id"], None)]
        case "ComplaintLodged":
            return [
                _add(e, {"complaints": 1}),
                _open_case(e, "complaint", d["complaint_id"], None),
            ]
        case "ComplaintResolved":
            return [_close_case(e, "complaint", d["complaint_id"], bool(d["satisfied"]))]
        case "FeedbackGiven":
            return [_add(e, {"feedback_count": 1, "feedback_sum": int(d["score"])})]
        case "SegmentChanged":
            moved = Statement(
                "UPDATE {rm}.kpi_accounts SET segment = %s WHERE account_id = %s",
                (d["to_segment"], e.account_id),
            )
            return [moved, *_migration(e, d["from_segment"], d["to_segment"])]
    return []


def _add(
    e: ProjectedEvent, counts: dict[str, int | Decimal], *, channel: str | None = None
) -> Statement:
    names = list(counts)
    columns = ", ".join(names)
    updates = ", ".join(f"{n} = {{rm}}.daily_facts.{n} + EXCLUDED.{n}" for n in names)
    values = ", ".join(["%s"] * len(names))
    return Statement(
        f"INSERT INTO {{rm}}.daily_facts (day, segment, channel, {columns})"
        f" SELECT %s, a.segment, coalesce(%s, a.channel), {values}"
        " FROM {rm}.kpi_accounts a WHERE a.account_id = %s"
        f" ON CONFLICT (day, segment, channel) DO UPDATE SET {updates}",
        (e.day, channel, *counts.values(), e.account_id),
    )


def _sale(e: ProjectedEvent, count: str, turnover: Decimal, profit: Decimal) -> Statement:
    d = e.data
    return Statement(
        "INSERT INTO {rm}.sales_daily"
        f" (day, segment, channel, store, currency, {count}, turnover, profit)"
        " SELECT %s, a.segment, a.channel, %s, %s, 1, %s, %s"
        " FROM {rm}.kpi_accounts a WHERE a.account_id = %s"
        " ON CONFLICT (day, segment, channel, store, currency) DO UPDATE SET"
        f" {count} = {{rm}}.sales_daily.{count} + 1,"
        " turnover = {rm}.sales_daily.turnover + EXCLUDED.turnover,"
        " profit = {rm}.sales_daily.profit + EXCLUDED.profit",
        (e.day, d["store"], d["currency"], turnover, profit, e.account_id),
    )


def _open_case(e: ProjectedEvent, kind: str, case_id: str, channel: str | None) -> Statement:
    return Statement(
        "INSERT INTO {rm}.cases (account_id, kind, case_id, opened_at, segment, channel)"
        " SELECT a.account_id, %s, %s, %s, a.segment, coalesce(%s, a.channel)"
        " FROM {rm}.kpi_accounts a WHERE a.account_id = %s ON CONFLICT DO NOTHING",
        (kind, case_id, e.occurred_at, channel, e.account_id),
    )


def _close_case(e: ProjectedEvent, kind: str, case_id: str, satisfied: bool | None) -> Statement:
    # The same id may be reused after the first case closed: close the open one.
    return Statement(
        "UPDATE {rm}.cases SET closed_at = %s, closed_day = %s, closed_by = %s,"
        " hours = greatest(extract(epoch FROM %s - opened_at) / 3600.0, 0), satisfied = %s"
        " WHERE account_id = %s AND kind = %s AND case_id = %s AND closed_at IS NULL",
        (e.occurred_at, e.day, e.actor, e.occurred_at, satisfied, e.account_id, kind, case_id),
    )


def _migration(e: ProjectedEvent, from_segment: str, to_segment: str) -> list[Statement]:
    # The account has moved already: count out of the old segment by its name.
    out_of_old = Statement(
        "INSERT INTO {rm}.daily_facts (day, segment, channel, migrations_out)"
        " SELECT %s, %s, a.channel, 1 FROM {rm}.kpi_accounts a WHERE a.account_id = %s"
        " ON CONFLICT (day, segment, channel) DO UPDATE SET"
        " migrations_out = {rm}.daily_facts.migrations_out + 1",
        (e.day, from_segment, e.account_id),
    )
    record = Statement(
        "INSERT INTO {rm}.segment_changes (account_id, version, day, from_segment, to_segment)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (e.account_id, e.version, e.day, from_segment, to_segment),
    )
    return [_add(e, {"migrations_in": 1}), out_of_old, record]
