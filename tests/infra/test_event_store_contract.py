"""What the ledger relies on in eventsourcing, pinned to its version: an upgrade that
changes any of it fails here first, by name.

infra/event_store.py reads eventsourcing's tables and stored format directly (the
log reader, the audit feed's queries, the plain-state decoder, the recorder's
array insert and receipts hook), and a few classes override or call the
library's private methods (listed in that module's docstring). Each test below
holds one of those assumptions against the installed library and the real
PostgreSQL store.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg_pool
from eventsourcing.application import Application, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Transcoder
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.utils import get_topic, resolve_topic

from domain import activities as act
from domain.account import CustomerAccount, event_type_of
from domain.activities import apply_activity
from infra.event_store import EventLog, plain_state, stored_hash_of
from infra.wiring import Services
from tests.support import open_plain

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"
NOW = datetime.now(UTC)
META = {"actor": "t"}


def pinned(package: str) -> str:
    """The version pyproject.toml pins `package` to (`name[extras]==x.y.z`)."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for requirement in dependencies:
        found = re.fullmatch(rf"{re.escape(package)}(\[[^\]]*\])?==(\S+)", requirement)
        if found:
            return found.group(2)
    raise AssertionError(f"{package} is not pinned in pyproject.toml")


def test_the_installed_eventsourcing_is_the_pinned_one() -> None:
    # Every other test here describes this version: pin a new one, then re-check them.
    assert importlib.metadata.version("eventsourcing") == pinned("eventsourcing") == "9.5.6"


def columns(services: Services, table: str) -> dict[str, str]:
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (services.settings.database_schema, table),
        ).fetchall()
    return dict(rows)


def unique_indexes(services: Services, table: str) -> set[str]:
    """Each unique index of `table`, as its column list."""
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (services.settings.database_schema, table),
        ).fetchall()
    return {
        definition.rsplit("(", 1)[1].rstrip(")")
        for (definition,) in rows
        if definition.startswith("CREATE UNIQUE INDEX")
    }


def test_the_events_table_has_the_columns_the_log_reader_and_audit_feed_select(
    services: Services,
) -> None:
    recorder: Any = services.ledger.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    assert recorder.events_table_name == "ledger_events"
    assert recorder.datastore.schema == services.settings.database_schema
    assert columns(services, "ledger_events") == {
        "originator_id": "uuid",
        "originator_version": "bigint",
        "topic": "text",
        "state": "bytea",
        # The global position: the relay, rebuilds, the verifier and the feed page by it.
        "notification_id": "bigint",
    }
    assert unique_indexes(services, "ledger_events") == {
        "originator_id, originator_version",  # the primary key: one row per version
        "notification_id",
    }
    # The relay LISTENs on this channel; the recorder NOTIFYs it in each insert.
    assert recorder.channel_name == "ledger_events"


def test_the_snapshot_table(services: Services) -> None:
    assert services.ledger.snapshots is not None
    assert columns(services, "ledger_snapshots") == {
        "originator_id": "uuid",
        "originator_version": "bigint",
        "topic": "text",
        "state": "bytea",
    }
    assert unique_indexes(services, "ledger_snapshots") == {"originator_id, originator_version"}


def test_the_log_reader_reads_what_the_library_calls_notifications(services: Services) -> None:
    ledger = services.ledger
    account = open_plain(ledger, "Contract Reader")
    apply_activity(account, act.Visit("store", "s1"), NOW, META)
    ledger.save(account)
    recorder: Any = ledger.recorder
    last = recorder.max_notification_id()
    notes = recorder.select_notifications(start=last - 1, limit=2)
    log = EventLog(ledger)
    with services.pool.connection() as conn:
        rows = log.page(conn, last - 2, 2)
        with conn.transaction():
            streamed = list(log.stream(conn, last - 2))
    assert rows == streamed
    assert [(r[0], UUID(r[1]), r[2], r[3], bytes(r[4])) for r in rows] == [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notes
    ]
    assert log.position_of(account.id, 2) == last


def test_the_stored_topic_names_module_and_class(services: Services) -> None:
    account = open_plain(services.ledger, "Contract Topic")
    with services.pool.connection() as conn:
        (topic,) = conn.execute(
            "SELECT topic FROM ledger_events WHERE originator_id = %s", (account.id,)
        ).fetchone() or (None,)
    assert topic == "domain.account:CustomerAccount.AccountOpened"
    assert topic == get_topic(CustomerAccount.AccountOpened)
    assert resolve_topic(topic) is CustomerAccount.AccountOpened
    # What the relay, rebuilds and the feed take for the event's type.
    assert event_type_of(topic) == "AccountOpened" == topic.rsplit(".", 1)[-1]


def test_the_transcoder_stores_typed_values_as_type_and_data(services: Services) -> None:
    transcoder: Transcoder = services.ledger.mapper.transcoder
    value = {
        "u": UUID(int=1),
        "d": Decimal("1.50"),
        "t": datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
    }
    stored = transcoder.encode(value)
    assert stored == (
        b'{"u":{"_type_":"uuid_hex","_data_":"00000000000000000000000000000001"},'
        b'"d":{"_type_":"decimal_str","_data_":"1.50"},'
        b'"t":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05.000600+00:00"}}'
    )
    assert transcoder.decode(stored) == value
    # The plain-state decoder reads the same bytes without the transcoder.
    assert plain_state(stored) == {
        "u": "00000000-0000-0000-0000-000000000001",
        "d": "1.50",
        "t": "2026-01-02T03:04:05.000600+00:00",
    }


def test_a_stored_state_holds_the_envelope_but_not_the_row_columns(services: Services) -> None:
    account = open_plain(services.ledger, "Contract State")
    with services.pool.connection() as conn:
        (state,) = conn.execute(
            "SELECT state FROM ledger_events WHERE originator_id = %s", (account.id,)
        ).fetchone() or (b"",)
    raw = bytes(state)
    assert raw.startswith(b'{"timestamp":{"_type_":"datetime_iso","_data_":"')
    plain = plain_state(raw)
    assert "originator_id" not in plain and "originator_version" not in plain
    assert plain["originator_topic"] == get_topic(CustomerAccount)
    assert stored_hash_of(raw) == plain["hash"] != plain["prev_hash"]


def parameters(function: Callable[..., Any]) -> list[tuple[str, Any]]:
    """A function's parameters by name and kind; `**anything` is just `**`."""
    return [
        ("**" if p.kind is p.VAR_KEYWORD else p.name, p.kind)
        for p in inspect.signature(function).parameters.values()
    ]


def signature_of(*names: str, var_keyword: bool = False) -> list[tuple[str, Any]]:
    kinds = [(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
    return kinds + ([("**", inspect.Parameter.VAR_KEYWORD)] if var_keyword else [])


def test_save_forwards_its_keyword_arguments_down_to_the_recorder_hook(
    services: Services,
) -> None:
    # The receipts ride this path: Application.save(**kwargs) -> insert_events(**kwargs)
    # -> _insert_events(curs, stored_events, **kwargs), in the insert transaction.
    assert parameters(Application.save)[-1] == ("**", inspect.Parameter.VAR_KEYWORD)
    assert parameters(PostgresApplicationRecorder.insert_events) == signature_of(
        "self", "stored_events", var_keyword=True
    )
    ledger = services.ledger
    account = open_plain(ledger, "Contract Forwarding")
    apply_activity(account, act.Visit("store", "s1"), NOW, META)
    recorder: Any = ledger.recorder
    seen: list[dict[str, Any]] = []
    hook = recorder._insert_events

    def spy(curs: Any, stored_events: Any, **kwargs: Any) -> None:
        seen.append(kwargs)
        hook(curs, stored_events, **kwargs)

    recorder._insert_events = spy
    try:
        ledger.save(account, contract_probe="forwarded")
    finally:
        del recorder._insert_events
    # eventsourcing adds its own `tracking` (None here) beside ours.
    assert [kwargs.get("contract_probe") for kwargs in seen] == ["forwarded"]


def overriding(cls: type, name: str) -> type:
    """The class of ours in `cls`'s MRO that defines `name`."""
    for klass in cls.__mro__:
        if name in vars(klass) and not klass.__module__.startswith("eventsourcing"):
            return klass
    raise AssertionError(f"nothing of ours overrides {name} in {cls.__name__}")


def test_the_private_methods_we_override_or_call_keep_their_signatures(
    services: Services,
) -> None:
    recorder_class = type(services.ledger.recorder)
    ledger_class = type(services.ledger)
    # (the library's method, what we expect of it, our class overriding it or None)
    expected: list[tuple[Callable[..., Any], list[tuple[str, Any]], type | None]] = [
        (
            PostgresApplicationRecorder._insert_events,
            signature_of("self", "curs", "stored_events", var_keyword=True),
            recorder_class,
        ),
        (
            PostgresApplicationRecorder._insert_stored_events,
            signature_of("self", "curs", "stored_events", var_keyword=True),
            recorder_class,
        ),
        (PostgresApplicationRecorder._lock_table, signature_of("self", "curs"), None),
        (PostgresApplicationRecorder._notify_channel, signature_of("self", "curs"), None),
        (Application._take_snapshots, signature_of("self", "processing_event"), ledger_class),
        (Repository._use_fastforward_lock, signature_of("self", "aggregate_id"), None),
        (Repository._disuse_fastforward_lock, signature_of("self", "aggregate_id"), None),
    ]
    for method, wanted, ours in expected:
        assert parameters(method) == wanted, method.__qualname__
        if ours is not None:
            mine = getattr(overriding(ours, method.__name__), method.__name__)
            assert parameters(mine) == wanted, mine.__qualname__
    # The aggregate cache's entries, looked at without a get (infra/ledger_store.py).
    assert isinstance(services.ledger.repository.cache.cache, dict)
    # The array insert replaces the aggregate recorder's own one, which it
    # otherwise inherits through the application recorder's.
    assert "_insert_stored_events" in vars(PostgresAggregateRecorder)

    # Aggregate._create: a classmethod taking the event class and keyword arguments.
    create = inspect.getattr_static(Aggregate, "_create")
    assert isinstance(create, classmethod)
    wanted_create = [
        ("event_class", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("id", inspect.Parameter.KEYWORD_ONLY),
        ("**", inspect.Parameter.VAR_KEYWORD),
    ]
    assert parameters(Aggregate._create) == wanted_create
    assert parameters(overriding(CustomerAccount, "_create")._create) == wanted_create

    # psycopg_pool's connect hook, which the fail-fast pools override (infra/database.py).
    assert importlib.metadata.version("psycopg-pool") == pinned("psycopg-pool")
    assert parameters(psycopg_pool.ConnectionPool._connect) == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("timeout", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    # ... and the callbacks of eventsourcing's pool they carry over when they replace it.
    store_pool = services.ledger.recorder.datastore.pool  # type: ignore[attr-defined]
    assert hasattr(store_pool, "_configure") and hasattr(store_pool, "_check")
