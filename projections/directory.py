"""The account directory: one row per account, for search, reports and due-for-review.

Contact fields are kept decrypted so authorised staff can search them; erasure
blanks them here as it shreds them in the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import dict_row

from projections.events import ProjectedEvent

CONTACT_FIELDS = ("name", "email", "phone")


COLUMNS = (
    "account_id",
    "external_ref",
    "status",
    "segment",
    "service_plan",
    "channel",
    "opened_at",
    "opened_day",
    "closed_at",
    "closed_day",
    "close_reason",
    "details_current_at",
    "last_activity_at",
    "version",
    "name",
    "email",
    "phone",
    "erased",
)

ACTIVITY_TYPES = frozenset(
    {
        "PurchaseRecorded",
        "RefundRecorded",
        "VisitRecorded",
        "InquiryOpened",
        "ComplaintLodged",
        "FeedbackGiven",
    }
)


class DirectoryFold:
    """Folds a batch of events into the directory rows they touch, then writes each once.

    Rows are read once per batch and written once per batch: PostgreSQL slows
    down with every update of the same row inside one transaction, and a
    batch (or a rebuild) holds many events of the same account.
    """

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.rows: dict[UUID, dict[str, Any]] = {}
        self.touched: set[UUID] = set()

    def load(self, conn: Connection, account_ids: set[UUID]) -> None:
        """Read the rows of the batch's accounts."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM {self.schema}.accounts WHERE account_id = ANY(%s)"
        with conn.cursor(row_factory=dict_row) as cur:
            for row in cur.execute(sql.encode(), (list(account_ids),)):
                self.rows[row["account_id"]] = row

    def apply(self, e: ProjectedEvent) -> None:
        """Change the account's row for one event (an event it does not know changes nothing)."""
        d = e.data
        if e.type == "AccountOpened":
            if e.account_id in self.rows:
                return
            customer: Mapping[str, Any] = d.get("customer") or {}
            self.rows[e.account_id] = {
                "account_id": e.account_id,
                "external_ref": d.get("external_ref"),
                "status": "open",
                "segment": d["segment"],
                "service_plan": d["service_plan"],
                "channel": d["channel"],
                "opened_at": e.occurred_at,
                "opened_day": e.day,
                "closed_at": None,
                "closed_day": None,
                "close_reason": None,
                "details_current_at": e.occurred_at,
                "last_activity_at": e.occurred_at,
                "version": e.version,
                **{f: customer.get(f) for f in CONTACT_FIELDS},
                "erased": False,
            }
            self.touched.add(e.account_id)
            return
        row = self.rows.get(e.account_id)
        if row is None:
            return
        if e.type == "DetailsUpdated":
            changed = d.get("customer") or {}
            row.update({f: v for f, v in changed.items() if f in CONTACT_FIELDS})
            row["details_current_at"] = e.occurred_at
        elif e.type == "DetailsConfirmed":
            row["details_current_at"] = e.occurred_at
        elif e.type == "SegmentChanged":
            row["segment"] = d["to_segment"]
        elif e.type == "ServicePlanChanged":
            row["service_plan"] = d["to_plan"]
        elif e.type == "AccountClosed":
            row.update(
                status="closed", closed_at=e.occurred_at, closed_day=e.day, close_reason=d["reason"]
            )
        elif e.type == "PersonalDataErased":
            row.update(erased=True, name=None, email=None, phone=None)
        elif e.type in ACTIVITY_TYPES:
            row["last_activity_at"] = max(row["last_activity_at"], e.occurred_at)
        row["version"] = e.version
        self.touched.add(e.account_id)

    def write(self, cur: Cursor[Any]) -> None:
        """Upsert every touched row, once."""
        if not self.touched:
            return
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
        sql = (
            f"INSERT INTO {self.schema}.accounts ({', '.join(COLUMNS)})"
            f" VALUES ({', '.join(['%s'] * len(COLUMNS))})"
            f" ON CONFLICT (account_id) DO UPDATE SET {updates}"
        )
        cur.executemany(
            sql.encode(), [tuple(self.rows[a][c] for c in COLUMNS) for a in self.touched]
        )


def search_accounts(
    conn: Connection,
    schema: str,
    *,
    segment: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    q: str | None = None,
    q_personal: bool = False,
    after: tuple[datetime, UUID] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Directory rows matching every filter, oldest opening first, after a keyset cursor.

    `q` matches the external reference, and the contact fields too when
    `q_personal` is set (only for roles that may see them unmasked, so a masked
    reader cannot probe for a person by searching).
    """
    where, params = ["true"], []
    for column, value in (("segment", segment), ("status", status), ("channel", channel)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = ("external_ref", *CONTACT_FIELDS) if q_personal else ("external_ref",)
        where.append("(" + " OR ".join(f"{c} ILIKE %s" for c in columns) + ")")
        params.extend([pattern] * len(columns))
    if after is not None:
        where.append("(opened_at, account_id) > (%s, %s)")
        params.extend(after)
    sql = (
        f"SELECT account_id, external_ref, status, segment, service_plan, channel, opened_at,"
        f" closed_at, details_current_at, last_activity_at, name, email, phone, erased"
        f" FROM {schema}.accounts WHERE {' AND '.join(where)}"
        f" ORDER BY opened_at, account_id LIMIT %s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.encode(), [*params, limit]).fetchall()
