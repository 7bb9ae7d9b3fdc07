"""Dead letters listed and replayed (`crmledger dlq list|replay`), each at most once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka import KafkaProducer
from typer.testing import CliRunner

from consumers.dead_letter_replay import ReplayReport, list_dead_letters, replay_dead_letters
from consumers.inbound import Ingest
from crmledger.cli import app
from domain.account import account_id_for
from infra.topics import INTEGRATION_DLQ, INTEGRATION_EVENTS
from tests.kafka.conftest import (
    SESSION_TIMEOUT_MS,
    Publish,
    Stack,
    cloud_event,
    meta,
    read_topic,
)

CONTENT_TYPE = ("content-type", b"application/cloudevents+json")


@pytest.fixture
def ingest(stack: Stack) -> Iterator[Ingest]:
    """One ingest consumer on the test's broker."""
    consumer = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    yield consumer
    consumer.close()


@pytest.fixture
def cli(stack: Stack) -> Callable[..., Any]:
    """Run `crmledger ...` in this process, on the test's ledger and embedded broker."""
    s = stack.settings
    assert s.jwt_secret is not None and s.master_key is not None
    env = {
        "CRMLEDGER_DATABASE_URL": s.database_url or "",
        "CRMLEDGER_DATABASE_SCHEMA": s.database_schema,
        "CRMLEDGER_READMODEL_SCHEMA": s.readmodel_schema,
        "CRMLEDGER_HOME": str(s.home),  # the CLI finds the test's broker through it
        "CRMLEDGER_KAFKA_PARTITIONS": str(s.kafka_partitions),
        "CRMLEDGER_JWT_SECRET": s.jwt_secret.get_secret_value(),
        "CRMLEDGER_SIGNING_KEY": s.signing_key.get_secret_value() if s.signing_key else "",
        "CRMLEDGER_MASTER_KEY": s.master_key.get_secret_value(),
        "COLUMNS": "250",
    }

    def run(*args: str) -> Any:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result

    return run


def drain(ingest: Ingest, records: int, timeout: float = 20.0) -> None:
    """Poll back to back until the consumer handled `records` records in all."""
    deadline = time.monotonic() + timeout
    while ingest.totals.records < records:
        assert time.monotonic() < deadline, f"handled {ingest.totals.records} of {records}"
        ingest.poll_once(200)


def purchase(subject: str, amount: str) -> dict[str, Any]:
    data = {"amount": amount, "cost": "1.00", "currency": "HKD", "store": "web"}
    return cloud_event("purchase", subject, data)


def history_types(stack: Stack, ref: str) -> list[str]:
    return [type(e).__name__ for e in stack.services.ledger.history(account_id_for(ref))]


def table_rows(output: str) -> list[list[str]]:
    """The data rows of a rich table, as lists of cells."""
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in output.splitlines()
        if line.startswith("│") and not line.startswith("│ partition")
    ]


@pytest.mark.slow  # three rounds of consuming
def test_dead_letters_are_listed_then_replayed_once_after_their_cause_is_fixed(
    stack: Stack, publish: Publish, ingest: Ingest, cli: Callable[..., Any]
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    early = [purchase(f"ext:{ref}", "12.00"), purchase(f"ext:{ref}", "13.00")]
    # Purchases before the account exists, and a message nobody can read.
    publish(early[0], b"<not json/>", early[1], key=ref.encode())
    drain(ingest, 3)
    assert ingest.totals.dead_letters == 3

    listed = cli("dlq", "list")
    rows = table_rows(listed.output)
    assert [(r[0], r[1], r[2], r[3], r[6]) for r in rows] == [
        (rows[0][0], str(offset), ref, error, "no")
        for offset, error in enumerate(["unknown_account", "not_json", "unknown_account"])
    ]
    assert rows[0][5] == f"{INTEGRATION_EVENTS}[{rows[0][0]}]@0"
    assert rows[0][4].startswith("no account ")
    assert "3 dead letters, 0 replayed" in listed.output

    # The cause is fixed: the account is opened. Only the unknown_account ones go back.
    stack.services.ledger.open_account(
        external_ref=ref,
        segment="gold",
        service_plan="standard",
        channel="store",
        customer={"name": "Late Opener"},
        occurred_at=datetime.now(UTC),
        meta=meta(),
    )
    replayed = cli("dlq", "replay", "--error", "unknown_account")
    assert f"replayed 2 dead letters to {INTEGRATION_EVENTS} (0 replayed before)" in replayed.output
    inbound = read_topic(stack.bootstrap, INTEGRATION_EVENTS, 5)  # one partition: in order
    originals, resent = inbound[:3], inbound[3:]
    assert [(r.key, r.value) for r in resent] == [(r.key, r.value) for r in originals[::2]]
    assert all(r.headers == [CONTENT_TYPE] for r in resent), "their own headers only"
    drain(ingest, 5)
    assert history_types(stack, ref) == ["AccountOpened", "PurchaseRecorded", "PurchaseRecorded"]
    history = stack.services.ledger.history(account_id_for(ref))
    assert [e.metadata["causation_id"] for e in history[1:]] == [  # type: ignore[attr-defined]
        m["id"] for m in early
    ]

    again = cli("dlq", "replay", "--error", "unknown_account")
    assert "replayed 0 dead letters" in again.output and "(2 replayed before)" in again.output

    # Still not JSON: replayed, it fails again and comes back as a new dead letter.
    cli("dlq", "replay")
    drain(ingest, 6)
    assert ingest.totals.dead_letters == 4
    letters = read_topic(stack.bootstrap, INTEGRATION_DLQ, 4)
    newest = max(letters, key=lambda r: r.offset)
    assert newest.value == b"<not json/>"
    assert [name for name, _ in newest.headers] == [
        "content-type",
        "error",
        "error_detail",
        "source_topic",
        "source_partition",
        "source_offset",
    ]
    assert dict(newest.headers)["source_offset"] == b"5"  # the replayed copy's offset

    final = cli("dlq", "list")
    assert "4 dead letters, 3 replayed" in final.output
    rows = table_rows(final.output)
    assert [r[6] == "no" for r in rows] == [False, False, False, True]
    assert rows[0][6].endswith(f"-> [{rows[0][0]}]@3") and rows[2][6].endswith("@4")


@pytest.mark.slow  # a group join
def test_two_replays_at_the_same_moment_send_each_dead_letter_once(
    stack: Stack, publish: Publish, ingest: Ingest
) -> None:
    publish(*(f"broken {n}".encode() for n in range(20)))
    drain(ingest, 20)
    reports: list[ReplayReport] = []

    def replay() -> None:
        reports.append(replay_dead_letters(stack.services, stack.bootstrap))

    threads = [threading.Thread(target=replay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    # The second waited on the first one's claims, then found them taken.
    assert sorted((len(r.replayed), r.skipped) for r in reports) == [(0, 20), (20, 0)]
    assert len(read_topic(stack.bootstrap, INTEGRATION_EVENTS, 40)) == 40  # 20, and 20 once more
    letters = list_dead_letters(stack.services, stack.bootstrap)
    assert len(letters) == 20 and all(x.replayed_at is not None for x in letters)
    assert sorted(x.replayed_to[1] for x in letters if x.replayed_to) == list(range(20, 40))


def test_a_truncated_dead_letter_is_listed_but_never_replayed(
    stack: Stack, ingest: Ingest, cli: Callable[..., Any]
) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, max_request_size=4 * 1024 * 1024)
    try:
        producer.send(INTEGRATION_EVENTS, key=b"k", value=b"not JSON " + b"x" * 1_200_000)
        producer.send(INTEGRATION_EVENTS, key=b"k", value=b"not JSON either")
        producer.flush()
    finally:
        producer.close()
    drain(ingest, 2)

    letters = list_dead_letters(stack.services, stack.bootstrap)
    assert [x.truncated for x in letters] == [True, False]
    report = replay_dead_letters(stack.services, stack.bootstrap)
    assert ([x.offset for x in report.replayed], report.skipped, report.truncated) == ([1], 0, 1)
    assert "truncated: not replayable" in cli("dlq", "list").output
    assert "1 truncated: not replayable" in cli("dlq", "replay").output
