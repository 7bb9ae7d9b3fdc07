"""What every test suite shares: the test database, settings in a fresh schema, a JWT secret.

Each test session (and any test that needs a ledger of its own) works in its
own PostgreSQL schema pair on the test server (CRMLEDGER_TEST_DATABASE_URL, by
default the machine's 127.0.0.1:5432/test) and drops it at the end, so runs
never see each other's events.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Notification

from domain import activities as act
from domain.account import CustomerAccount, event_type_of
from domain.integrity import data_of, event_hash
from domain.ledger import Ledger
from infra.outbound_events import cloudevent
from infra.settings import Settings
from infra.wiring import Services, bootstrap

TEST_DATABASE_URL = os.environ.get(
    "CRMLEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
JWT_SECRET = "test-secret-" + "x" * 40

# One activity of each kind, in an order an account accepts them.
EVERY_ACTIVITY: tuple[act.Activity, ...] = (
    act.Purchase(Decimal("19.90"), Decimal("7.5"), "HKD", "web"),
    act.Refund(Decimal("1.00"), Decimal("0.40"), "HKD", "web"),
    act.Visit("app", "home"),
    act.OpenInquiry("Q1", "phone", "billing"),
    act.AnswerInquiry("Q1", "phone"),
    act.LodgeComplaint("C1", "service", "high"),
    act.ResolveComplaint("C1", "refunded", True),
    act.GiveFeedback(5, 'great ✓ "quoted"'),
)


def open_plain(ledger: Ledger, name: str, external_ref: str | None = None) -> CustomerAccount:
    """An account opened through the ledger now, with only a name."""
    return ledger.open_account(
        external_ref=external_ref,
        segment="gold",
        service_plan="standard",
        channel="store",
        customer={"name": name},
        occurred_at=datetime.now(UTC),
        meta={"actor": "t"},
    )


def make_settings(**overrides: object) -> Settings:
    """Settings for a test on the test server, in a fresh schema unless one is given."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    values: dict[str, object] = {
        "database_url": TEST_DATABASE_URL,
        "database_schema": schema,
        "readmodel_schema": f"{schema}_rm",
        "jwt_secret": JWT_SECRET,
        "master_key": base64.b64encode(os.urandom(32)).decode(),
        "signing_key": base64.b64encode(os.urandom(32)).decode(),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def own_ledger(**overrides: object) -> Iterator[Services]:
    """Services over a fresh schema pair, dropped when the block ends."""
    settings = make_settings(**overrides)
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()
        drop_schema(settings.database_schema)


def env_for(settings: Settings) -> dict[str, str]:
    """The CRMLEDGER_* variables that point a CLI run at the ledger of `settings`."""
    assert settings.master_key is not None
    return {
        "CRMLEDGER_DATABASE_URL": settings.database_url or "",
        "CRMLEDGER_DATABASE_SCHEMA": settings.database_schema,
        "CRMLEDGER_READMODEL_SCHEMA": settings.readmodel_schema,
        "CRMLEDGER_HOME": str(settings.home),
        "CRMLEDGER_JWT_SECRET": JWT_SECRET,
        "CRMLEDGER_MASTER_KEY": settings.master_key.get_secret_value(),
        **signing_key_env(settings),
    }


def signing_key_env(settings: Settings) -> dict[str, str]:
    """CRMLEDGER_SIGNING_KEY of `settings`, for a subprocess on its ledger (required with a URL)."""
    key = settings.signing_key
    return {"CRMLEDGER_SIGNING_KEY": key.get_secret_value()} if key is not None else {}


def drop_schema(schema: str) -> None:
    """Remove a test schema, its read-model schema and everything in them."""
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema}, {schema}_rm CASCADE".encode())


def forge(services: Services, account_id: UUID, version: int, change: dict[str, Any]) -> None:
    """Alter one event and recompute every hash after it, as a careful forger would."""
    ledger = services.ledger
    transcoder = ledger.mapper.transcoder
    prev = None
    with services.pool.connection() as conn:
        for stored in ledger.recorder.select_events(account_id, gt=version - 1):
            state = transcoder.decode(stored.state)
            if stored.originator_version == version:
                state.update(change)
            state["prev_hash"] = prev or state["prev_hash"]
            state["hash"] = prev = event_hash(
                state["prev_hash"],
                account_id,
                stored.originator_version,
                stored.topic.rsplit(".", 1)[-1],
                state["occurred_at"],
                state["metadata"],
                data_of(state),
            )
            conn.execute(
                "UPDATE ledger_events SET state = %s"
                " WHERE originator_id = %s AND originator_version = %s",
                (transcoder.encode(state), account_id, stored.originator_version),
            )


def key_destroyed(services: Services, account_id: UUID) -> bool:
    """True once the account's key was destroyed (its row stays, emptied)."""
    with services.pool.connection() as conn:
        row = conn.execute(
            "SELECT destroyed_at IS NOT NULL FROM account_keys WHERE account_id = %s",
            (account_id,),
        ).fetchone()
    return bool(row and row[0])


def event_id(account_id: UUID, version: int) -> UUID:
    """The outbound event id as its definition says: uuid5 of the account id and the version."""
    return uuid.uuid5(account_id, str(version))


def outbound_event(notification: Notification, state: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudEvent of a decoded stored event: what the relay's fast path must equal."""
    account_id = notification.originator_id
    if not isinstance(account_id, UUID):
        account_id = UUID(str(account_id))
    return cloudevent(
        notification.id,
        str(account_id),
        account_id.bytes,
        notification.originator_version,
        event_type_of(notification.topic),
        state,
    )
