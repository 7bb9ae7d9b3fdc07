"""The customer-service work queue: open inquiries and complaints across accounts, oldest first.

Read from the KPI read model's `cases` (one row per inquiry or complaint, its
closing time empty while open) beside the directory's external reference; the
guideline a case's age is held against is the KPI of its kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

# The guideline (projections/guidelines.py) each kind of case is measured by.
TARGET_KPI = {
    "inquiry": "first_response_hours_p90",
    "complaint": "complaint_resolution_hours_p90",
}


def open_cases(
    conn: Connection, schema: str, now: datetime, limit: int = 200
) -> list[dict[str, Any]]:
    """The open cases, oldest first, each with its account's external reference and age in hours."""
    sql = (
        f"SELECT c.account_id, a.external_ref, c.kind, c.case_id, c.opened_at, c.segment,"
        f" c.channel, EXTRACT(EPOCH FROM (%s - c.opened_at)) / 3600.0 AS age_hours"
        f" FROM {schema}.cases c LEFT JOIN {schema}.accounts a USING (account_id)"
        f" WHERE c.closed_at IS NULL"
        f" ORDER BY c.opened_at, c.account_id, c.case_id LIMIT %s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.encode(), (now, limit)).fetchall()
