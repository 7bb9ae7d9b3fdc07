"""The console's dead-letter pages over HTTP without a browser, on the real PostgreSQL ledger
and a real embedded Kafka broker: listed (escaped, cut), replayed one and all through the
code of `crmledger dlq replay`, and the broker away said in words."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from consumers.dead_letter_replay import list_dead_letters
from consumers.inbound import Ingest
from infra.topics import INTEGRATION_EVENTS
from infra.wiring import Services
from tests.console.test_sessions import csrf_of, dev_signed_in
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Stack, cloud_event, stacked


def test_dead_letters_say_in_words_when_the_broker_is_away(
    services: Services, tmp_path: Path
) -> None:
    closed = dev_signed_in(services, role="admin", kafka_bootstrap="127.0.0.1:1")
    started = time.monotonic()
    page = closed.get("/console/admin/dead-letters")
    assert page.status_code == 503
    assert "The message broker cannot be reached" in page.text
    assert "the Kafka broker at 127.0.0.1:1 does not answer" in page.text
    assert time.monotonic() - started < 10
    token = csrf_of(page.text)
    for path in ("/console/admin/dead-letters/replay", "/console/admin/dead-letters/0/3/replay"):
        answer = closed.post(path, data={"csrf_token": token})
        assert answer.status_code == 503 and "cannot be reached" in answer.text
    # The embedded default with no broker running on its home: the page starts none.
    nothing = dev_signed_in(services, role="admin", home=tmp_path / "home")
    page = nothing.get("/console/admin/dead-letters")
    assert page.status_code == 503 and "no embedded broker was started on this home" in page.text
    assert not (tmp_path / "home").exists()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A ledger on a fresh schema and an embedded broker with its topics (one partition)."""
    with stacked(tmp_path, partitions=1) as made:
        yield made


def dead_lettered(stack: Stack, *messages: bytes) -> None:
    """Publish inbound messages the ingest cannot apply, and let it dead-letter them."""
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)
    for m in messages:
        producer.send(INTEGRATION_EVENTS, key=b"k-1", value=m)
    producer.flush()
    producer.close()
    ingest = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        deadline = time.monotonic() + 30
        while ingest.totals.dead_letters < len(messages):
            assert time.monotonic() < deadline, "the ingest did not dead-letter them"
            ingest.poll_once(200)
    finally:
        ingest.close()


@pytest.mark.slow  # a broker and a consumer group
def test_dead_letters_are_listed_escaped_and_replayed_one_and_all(stack: Stack) -> None:
    purchase = cloud_event(
        "purchase",
        f"ext:NOBODY-{uuid.uuid4().hex[:6]}",
        {"amount": "9.50", "cost": "1.00", "currency": "HKD", "store": "web"},
    )
    dead_lettered(stack, b"<script>alert('x')</script>" + b"A" * 400, orjson.dumps(purchase))
    admin = dev_signed_in(stack.services, role="admin")
    page = admin.get("/console/admin/dead-letters")
    assert page.status_code == 200, page.text
    assert "2 dead letters, 2 not replayed yet." in page.text
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;AAAA" in page.text  # escaped
    assert "A" * 160 not in page.text and "…</code>" in page.text  # the preview is cut
    assert "427 bytes" in page.text
    assert "not json" in page.text and "unknown account" in page.text
    assert "not recorded" not in page.text  # when each was dead-lettered is known

    token = csrf_of(page.text)
    answer = admin.post("/console/admin/dead-letters/0/1/replay", data={"csrf_token": token})
    assert answer.status_code == 200  # followed the redirect to the list
    assert "Replayed 1 dead letter to crmledger.integration-events (0 replayed before)." in (
        answer.text
    )
    letters = {x.offset: x for x in list_dead_letters(stack.services, stack.bootstrap)}
    assert letters[1].replayed_at is not None and letters[0].replayed_at is None

    only = admin.get("/console/admin/dead-letters?error=not_json")
    assert "1 dead letter of reason not json, 1 not replayed yet" in only.text
    answer = admin.post(
        "/console/admin/dead-letters/replay", data={"csrf_token": token, "error": "not_json"}
    )
    assert "Replayed 1 dead letter to crmledger.integration-events (0 replayed before)." in (
        answer.text
    )
    again = admin.post("/console/admin/dead-letters/replay", data={"csrf_token": token})
    assert "Replayed 0 dead letters to crmledger.integration-events (2 replayed before)." in (
        again.text
    )
    assert all(x.replayed_at for x in list_dead_letters(stack.services, stack.bootstrap))
    missing = admin.post("/console/admin/dead-letters/0/99/replay", data={"csrf_token": token})
    assert missing.status_code == 404 and "no dead letter at partition 0, offset 99" in missing.text
