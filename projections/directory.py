"""The account directory: one row per account, for search, reports and due-for-review.

Contact fields are kept decrypted so authorised staff can search them; erasure
blanks them here as it shreds them in the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import dict_row

from projections.events import ProjectedEvent
from projections.sql import Statement

CONTACT_FIELDS = ("name", "email", "phone")


def directory_changes(e: ProjectedEvent) -> list[Statement]:
    """How one event changes the accounts table."""
    d = e.data
    if e.type == "AccountOpened":
        customer: Mapping[str, Any] = d.get("customer") or {}
        return [
            Statement(
                "INSERT INTO {rm}.accounts (account_id, external_ref, status, segment,"
                " service_plan, channel, opened_at, opened_day, details_current_at,"
                " last_activity_at, version, name, email, phone)"
                " VALUES (%s, %s, 'open', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (account_id) DO NOTHING",
                (
                    e.account_id,
                    d.get("external_ref"),
                    d["segment"],
                    d["service_plan"],
                    d["channel"],
                    e.occurred_at,
                    e.day,
                    e.occurred_at,
                    e.occurred_at,
                    e.version,
                    *(customer.get(f) for f in CONTACT_FIELDS),
                ),
            )
        ]
    if e.type == "DetailsUpdated":
        changed = {f: v for f, v in (d.get("customer") or {}).items() if f in CONTACT_FIELDS}
        sets = "".join(f", {f} = %s" for f in changed)
        return [_touch(e, "details_current_at = %s" + sets, (e.occurred_at, *changed.values()))]
    if e.type == "DetailsConfirmed":
        return [_touch(e, "details_current_at = %s", (e.occurred_at,))]
    if e.type == "SegmentChanged":
        return [_touch(e, "segment = %s", (d["to_segment"],))]
    if e.type == "ServicePlanChanged":
        return [_touch(e, "service_plan = %s", (d["to_plan"],))]
    if e.type == "AccountClosed":
        return [
            _touch(
                e,
                "status = 'closed', closed_at = %s, closed_day = %s, close_reason = %s",
                (e.occurred_at, e.day, d["reason"]),
            )
        ]
    if e.type == "PersonalDataErased":
        return [_touch(e, "erased = true, name = NULL, email = NULL, phone = NULL", ())]
    if e.type in ACTIVITY_TYPES:
        return [_touch(e, "last_activity_at = greatest(last_activity_at, %s)", (e.occurred_at,))]
    return []  # an event this read model does not know: skipped, position still advances


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


def _touch(e: ProjectedEvent, sets: str, params: tuple[Any, ...]) -> Statement:
    return Statement(
        f"UPDATE {{rm}}.accounts SET {sets}, version = %s WHERE account_id = %s",
        (*params, e.version, e.account_id),
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
