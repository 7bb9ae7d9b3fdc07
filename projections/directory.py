"""The account directory: one row per account, for search, reports and due-for-review.

Contact fields (name, email, phone) are kept as the events carry them: AES-GCM
ciphertext under the account's key, decrypted by the API for the caller who may
see them. They are searched through blind-index tokens (domain.privacy), one
row per field and search term in `account_tokens`, which the events bring with
them (infra/readmodels.py computes them), so nothing here holds personal data
in clear and a database backup of the directory is ciphertext only. Erasure
drops the ciphertext and the tokens, as it shreds the key.

The external reference (a customer number of a source system, not personal in
the design: it is in clear in every event and message) stays in clear, so roles
that see contact fields masked can still find an account by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import dict_row

from projections.events import ProjectedEvent
from projections.flows import add_up, count_account, moved, new_deltas

CONTACT_FIELDS = ("name", "email", "phone")
# The directory's column for each contact field: its ciphertext.
SEALED = {f: f"{f}_sealed" for f in CONTACT_FIELDS}
NO_TOKENS: Mapping[str, tuple[bytes, ...]] = {}
# What account_flows counts of each account, and where: its place now and its days.
FLOW_COLUMNS = ("segment", "service_plan", "channel", "opened_day", "closed_day")
ACCOUNT_FLOWS = ("opened", "closed", "ended")


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
    *SEALED.values(),
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
        # Per account, the fields whose tokens this batch replaces, with their new tokens.
        self.tokens: dict[UUID, dict[str, tuple[bytes, ...]]] = {}
        self.opened: set[UUID] = set()  # accounts with no row before this batch: no old tokens
        # Where each loaded account stood before the batch, to move its flows from.
        self.before: dict[UUID, tuple[Any, ...]] = {}

    def load(self, conn: Connection, account_ids: set[UUID]) -> None:
        """Read the rows of the batch's accounts."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM {self.schema}.accounts WHERE account_id = ANY(%s)"
        with conn.cursor(row_factory=dict_row) as cur:
            for row in cur.execute(sql.encode(), (list(account_ids),)):
                self.rows[row["account_id"]] = row
                self.before[row["account_id"]] = tuple(row[c] for c in FLOW_COLUMNS)

    def apply(self, e: ProjectedEvent) -> None:
        """Change the account's row for one event (an event it does not know changes nothing)."""
        d = e.data
        if e.type == "AccountOpened":
            if e.account_id in self.rows:
                return
            customer: Mapping[str, Any] = d.get("customer") or {}
            self.opened.add(e.account_id)
            self.tokens[e.account_id] = dict(e.tokens or NO_TOKENS)
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
                **{SEALED[f]: customer.get(f) for f in CONTACT_FIELDS},
                "erased": False,
            }
            self.touched.add(e.account_id)
            return
        row = self.rows.get(e.account_id)
        if row is None:
            return
        if e.type == "DetailsUpdated":
            changed = d.get("customer") or {}
            contact = [f for f in CONTACT_FIELDS if f in changed]
            row.update({SEALED[f]: changed[f] for f in contact})
            tokens = e.tokens or NO_TOKENS
            self.tokens.setdefault(e.account_id, {}).update({f: tokens.get(f, ()) for f in contact})
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
            row.update({"erased": True, **dict.fromkeys(SEALED.values())})
            self.tokens[e.account_id] = dict.fromkeys(CONTACT_FIELDS, ())
        elif e.type in ACTIVITY_TYPES:
            row["last_activity_at"] = max(row["last_activity_at"], e.occurred_at)
        row["version"] = e.version
        self.touched.add(e.account_id)

    def write(self, cur: Cursor[Any]) -> None:
        """Upsert every touched row, once, and replace the tokens of the fields that changed."""
        if not self.touched:
            return
        self._write_rows(cur)
        self._write_tokens(cur)
        add_up(
            cur,
            f"{self.schema}.account_flows",
            ("grain", "day", "segment", "service_plan", "channel"),
            ACCOUNT_FLOWS,
            self._flows(),
        )

    def _flows(self) -> dict[tuple[Any, ...], Any]:
        deltas = new_deltas()
        for account_id in self.touched:
            row = self.rows[account_id]
            after = tuple(row[c] for c in FLOW_COLUMNS)
            before = self.before.get(account_id)
            if before == after:
                continue  # an activity: the account stays where it was
            for sign, state in ((-1, before), (1, after)):
                if state is not None:
                    *where, opened_day, closed_day = state
                    count_account(deltas, tuple(where), opened_day, closed_day, sign, ACCOUNT_FLOWS)
        return moved(deltas)

    def _write_rows(self, cur: Cursor[Any]) -> None:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
        sql = (
            f"INSERT INTO {self.schema}.accounts ({', '.join(COLUMNS)})"
            f" VALUES ({', '.join(['%s'] * len(COLUMNS))})"
            f" ON CONFLICT (account_id) DO UPDATE SET {updates}"
        )
        cur.executemany(
            sql.encode(), [tuple(self.rows[a][c] for c in COLUMNS) for a in self.touched]
        )

    def _write_tokens(self, cur: Cursor[Any]) -> None:
        table = f"{self.schema}.account_tokens"
        gone = [(a, f) for a, fields in self.tokens.items() if a not in self.opened for f in fields]
        if gone:
            cur.execute(
                f"DELETE FROM {table} t USING unnest(%s::uuid[], %s::text[]) AS d(account_id, kind)"
                f" WHERE t.account_id = d.account_id AND t.kind = d.kind".encode(),
                ([a for a, _ in gone], [f for _, f in gone]),
            )
        new = [
            (a, f, token)
            for a, fields in self.tokens.items()
            for f, tokens in fields.items()
            for token in tokens
        ]
        if new:
            cur.execute(
                f"INSERT INTO {table} (account_id, kind, token)"
                f" SELECT * FROM unnest(%s::uuid[], %s::text[], %s::bytea[])"
                f" ON CONFLICT DO NOTHING".encode(),
                ([a for a, _, _ in new], [f for _, f, _ in new], [t for _, _, t in new]),
            )


@dataclass(frozen=True)
class DirectoryQuery:
    """A directory search: an external reference, and the tokens of the personal fields asked for.

    An account matches when its external reference equals `external_ref`, or
    when it holds every token given for one field (every word of a name, the
    email, the phone). Without tokens only the external reference is searched.
    """

    external_ref: str
    tokens: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)


def search_accounts(
    conn: Connection,
    schema: str,
    *,
    segment: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    query: DirectoryQuery | None = None,
    after: tuple[datetime, UUID] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Directory rows matching every filter, oldest opening first, after a keyset cursor.

    Contact fields come sealed (`name_sealed`, ...): the caller decrypts them
    for whoever may see them.
    """
    where: list[str] = ["true"]
    params: list[Any] = []
    for column, value in (("segment", segment), ("status", status), ("channel", channel)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if query is not None:
        # One list of matching ids, so each match is looked up by its key: an OR of
        # the conditions would test every account of the directory.
        matches = [f"SELECT account_id FROM {schema}.accounts WHERE external_ref = %s"]
        params.append(query.external_ref)
        for kind, tokens in query.tokens.items():
            if not tokens:
                continue
            first, *others = dict.fromkeys(tokens)  # each token once, in order
            # An account holding every token of the field: a join on the primary
            # key lets PostgreSQL start from the rarest token and look the others
            # up, where grouping read every account holding any of them (an
            # email's words, searched as a name, are in many names).
            joins = "".join(
                f" JOIN {schema}.account_tokens t{i} ON t{i}.account_id = t0.account_id"
                f" AND t{i}.kind = %s AND t{i}.token = %s"
                for i in range(1, len(others) + 1)
            )
            matches.append(
                f"SELECT t0.account_id FROM {schema}.account_tokens t0{joins}"
                f" WHERE t0.kind = %s AND t0.token = %s"
            )
            params.extend([*(v for token in others for v in (kind, token)), kind, first])
        where.append(f"account_id IN ({' UNION ALL '.join(matches)})")
    if after is not None:
        where.append("(opened_at, account_id) > (%s, %s)")
        params.extend(after)
    sql = (
        f"SELECT account_id, external_ref, status, segment, service_plan, channel, opened_at,"
        f" closed_at, details_current_at, last_activity_at, {', '.join(SEALED.values())}, erased"
        f" FROM {schema}.accounts WHERE {' AND '.join(where)}"
        f" ORDER BY opened_at, account_id LIMIT %s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.encode(), [*params, limit]).fetchall()
