"""KPI facts: how events add to the daily counters, the cases and the migrations.

Every fact lands on the day the event occurred (in the reporting time zone)
and on the account's segment at that moment, which this read model keeps in its
own kpi_accounts table (each account's events arrive in order), so it can be
rebuilt without the directory. The channel is the activity's own channel where
it has one (visits, inquiries), else the channel the account was opened through.

A batch is folded in memory first: counters are summed per (day, segment,
channel) and written with one upsert per key, because PostgreSQL slows down
with every update of the same row inside one transaction, and most events of a
batch land on a few busy days.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

from projections.events import ProjectedEvent
from projections.flows import add_up, count_account, moved, new_deltas

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
SALES = ("purchases", "refunds", "turnover", "profit")
ACCOUNT_FLOWS = ("opened", "ended")
CASE_COLUMNS = (
    "account_id",
    "kind",
    "case_id",
    "opened_at",
    "segment",
    "channel",
    "closed_at",
    "closed_day",
    "closed_by",
    "hours",
    "satisfied",
)


@dataclass
class KpiAccount:
    """Where an account's facts belong."""

    segment: str
    channel: str
    opened_day: date
    closed_day: date | None = None


@dataclass
class Closing:
    """An inquiry answered or a complaint resolved whose opening is already stored."""

    account_id: UUID
    kind: str
    case_id: str
    opened_at: datetime
    closed_at: datetime
    closed_day: date
    closed_by: str | None
    hours: float
    satisfied: bool | None


class KpiFold:
    """Folds a batch of events into KPI facts and writes each changed row once."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.accounts: dict[UUID, KpiAccount] = {}
        # Where each loaded account stood before the batch, to move its flows from.
        self.before: dict[UUID, KpiAccount] = {}
        self.touched: set[UUID] = set()
        self.counts: defaultdict[tuple[date, str, str], defaultdict[str, Any]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.sales: defaultdict[tuple[date, str, str, str, str], defaultdict[str, Any]] = (
            defaultdict(lambda: defaultdict(int))
        )
        self.sales_monthly: defaultdict[tuple[date, str, str, str, str], defaultdict[str, Any]] = (
            defaultdict(lambda: defaultdict(int))
        )
        self.opened: dict[tuple[UUID, str, str], dict[str, Any]] = {}
        self.new_cases: list[dict[str, Any]] = []
        self.closings: list[Closing] = []
        self.migrations: list[tuple[UUID, int, date, str, str]] = []

    def load(self, conn: Connection, account_ids: set[UUID]) -> None:
        """Read where the batch's accounts belong."""
        rows = conn.execute(
            f"SELECT account_id, segment, channel, opened_day, closed_day"
            f" FROM {self.schema}.kpi_accounts WHERE account_id = ANY(%s)".encode(),
            (list(account_ids),),
        )
        for account_id, segment, channel, opened_day, closed_day in rows:
            self.accounts[account_id] = KpiAccount(segment, channel, opened_day, closed_day)
            self.before[account_id] = KpiAccount(segment, channel, opened_day, closed_day)
        # Open cases, so every case's hours are computed here the same way.
        rows = conn.execute(
            f"SELECT account_id, kind, case_id, opened_at FROM {self.schema}.cases"
            " WHERE account_id = ANY(%s) AND closed_at IS NULL".encode(),
            (list(account_ids),),
        )
        for account_id, kind, case_id, opened_at in rows:
            self.opened[(account_id, kind, case_id)] = {"opened_at": opened_at, "stored": True}

    def apply(self, e: ProjectedEvent) -> None:
        """Add one event's facts (an event it does not know adds nothing)."""
        d = e.data
        if e.type == "AccountOpened":
            if e.account_id not in self.accounts:
                self.accounts[e.account_id] = KpiAccount(d["segment"], d["channel"], e.day)
                self.touched.add(e.account_id)
                self._count(e, "new_customers", 1)
            return
        account = self.accounts.get(e.account_id)
        if account is None:
            return
        match e.type:
            case "AccountClosed":
                account.closed_day = e.day
                self.touched.add(e.account_id)
                self._count(e, "lost_customers", 1)
            case "PurchaseRecorded" | "RefundRecorded":
                sign = 1 if e.type == "PurchaseRecorded" else -1
                amount, cost = e.decimal("amount"), e.decimal("cost")
                self._money(e, account, "purchases" if sign == 1 else "refunds", sign, amount, cost)
            case "VisitRecorded":
                self._count(e, "visits", 1, d["channel"])
            case "InquiryOpened":
                self._count(e, "inquiries", 1, d["channel"])
                self._open_case(e, account, "inquiry", d["inquiry_id"], d["channel"])
            case "InquiryAnswered":
                self._close_case(e, "inquiry", d["inquiry_id"], None)
            case "ComplaintLodged":
                self._count(e, "complaints", 1)
                self._open_case(e, account, "complaint", d["complaint_id"], account.channel)
            case "ComplaintResolved":
                self._close_case(e, "complaint", d["complaint_id"], bool(d["satisfied"]))
            case "FeedbackGiven":
                self._count(e, "feedback_count", 1)
                self._count(e, "feedback_sum", int(d["score"]))
            case "SegmentChanged":
                self.counts[(e.day, d["from_segment"], account.channel)]["migrations_out"] += 1
                account.segment = d["to_segment"]
                self.touched.add(e.account_id)
                self._count(e, "migrations_in", 1)
                self.migrations.append(
                    (e.account_id, e.version, e.day, d["from_segment"], d["to_segment"])
                )

    def write(self, cur: Cursor[Any]) -> None:
        """Write the batch: accounts, counters, sales, cases, migrations."""
        rm = self.schema
        if self.touched:
            cur.executemany(
                f"INSERT INTO {rm}.kpi_accounts (account_id, segment, channel, opened_day,"
                " closed_day) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (account_id) DO UPDATE"
                " SET segment = EXCLUDED.segment, closed_day = EXCLUDED.closed_day".encode(),
                [
                    (a, k.segment, k.channel, k.opened_day, k.closed_day)
                    for a in self.touched
                    for k in (self.accounts[a],)
                ],
            )
        add_up(
            cur,
            f"{rm}.kpi_account_flows",
            ("grain", "day", "segment", "channel"),
            ACCOUNT_FLOWS,
            self._account_flows(),
        )
        add_up(cur, f"{rm}.daily_facts", ("day", "segment", "channel"), COUNTERS, self.counts)
        sales_keys = ("segment", "channel", "store", "currency")
        add_up(cur, f"{rm}.sales_daily", ("day", *sales_keys), SALES, self.sales)
        add_up(cur, f"{rm}.sales_monthly", ("month", *sales_keys), SALES, self.sales_monthly)
        if self.new_cases:
            values = ", ".join(["%s"] * len(CASE_COLUMNS))
            cur.executemany(
                f"INSERT INTO {rm}.cases ({', '.join(CASE_COLUMNS)})"
                f" VALUES ({values}) ON CONFLICT DO NOTHING".encode(),
                [tuple(c[k] for k in CASE_COLUMNS) for c in self.new_cases],
            )
        if self.closings:
            cur.executemany(
                f"UPDATE {rm}.cases SET closed_at = %s, closed_day = %s, closed_by = %s,"
                " hours = %s, satisfied = %s"
                " WHERE account_id = %s AND kind = %s AND case_id = %s AND opened_at = %s".encode(),
                [
                    (
                        *(c.closed_at, c.closed_day, c.closed_by, c.hours, c.satisfied),
                        *(c.account_id, c.kind, c.case_id, c.opened_at),
                    )
                    for c in self.closings
                ],
            )
        if self.migrations:
            cur.executemany(
                f"INSERT INTO {rm}.segment_changes (account_id, version, day, from_segment,"
                " to_segment) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING".encode(),
                self.migrations,
            )

    # ---- folding ----------------------------------------------------------------------

    def _account_flows(self) -> dict[tuple[Any, ...], defaultdict[str, int]]:
        deltas = new_deltas()
        for account_id in self.touched:
            before, after = self.before.get(account_id), self.accounts[account_id]
            if before == after:
                continue
            for sign, k in ((-1, before), (1, after)):
                if k is not None:
                    where = (k.segment, k.channel)
                    count_account(deltas, where, k.opened_day, k.closed_day, sign, ACCOUNT_FLOWS)
        return moved(deltas)

    def _count(self, e: ProjectedEvent, counter: str, n: int, channel: str | None = None) -> None:
        account = self.accounts[e.account_id]
        self.counts[(e.day, account.segment, channel or account.channel)][counter] += n

    def _money(
        self,
        e: ProjectedEvent,
        account: KpiAccount,
        count: str,
        sign: int,
        amount: Decimal,
        cost: Decimal,
    ) -> None:
        turnover, profit = sign * amount, sign * (amount - cost)
        where = (account.segment, account.channel, e.data["store"], e.data["currency"])
        for bucket in (
            self.counts[(e.day, account.segment, account.channel)],
            self.sales[(e.day, *where)],
            self.sales_monthly[(e.day.replace(day=1), *where)],
        ):
            bucket[count] += 1
            bucket["turnover"] += turnover
            bucket["profit"] += profit

    def _open_case(
        self, e: ProjectedEvent, account: KpiAccount, kind: str, case_id: str, channel: str
    ) -> None:
        case = {
            "account_id": e.account_id,
            "kind": kind,
            "case_id": case_id,
            "opened_at": e.occurred_at,
            "segment": account.segment,
            "channel": channel,
            "closed_at": None,
            "closed_day": None,
            "closed_by": None,
            "hours": None,
            "satisfied": None,
        }
        self.opened[(e.account_id, kind, case_id)] = case
        self.new_cases.append(case)

    def _close_case(
        self, e: ProjectedEvent, kind: str, case_id: str, satisfied: bool | None
    ) -> None:
        # The same id may be reused once a case closed: only an open case closes.
        case = self.opened.pop((e.account_id, kind, case_id), None)
        if case is None:
            return
        hours = max((e.occurred_at - case["opened_at"]).total_seconds() / 3600.0, 0.0)
        if case.get("stored"):
            self.closings.append(
                Closing(
                    e.account_id,
                    kind,
                    case_id,
                    case["opened_at"],
                    e.occurred_at,
                    e.day,
                    e.actor,
                    hours,
                    satisfied,
                )
            )
            return
        case.update(
            closed_at=e.occurred_at,
            closed_day=e.day,
            closed_by=e.actor,
            hours=hours,
            satisfied=satisfied,
        )
