"""/metrics shows the pipeline: relay position and lag, ingest lag, dead letters, projection lag."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from consumers.inbound import Ingest
from domain.activities import Visit
from infra.relay import Relay
from infra.topics import ACCOUNT_EVENTS, INTEGRATION_EVENTS
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Publish, Stack, cloud_event, meta, open_account

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_show_the_pipeline_after_some_traffic(stack: Stack, publish: Publish) -> None:
    services = stack.services
    account = open_account(services)
    subject = str(account.id)
    money = {"amount": "5", "cost": "1", "currency": "HKD", "store": "s"}
    buys = [cloud_event("purchase", subject, money) for _ in range(8)]
    stranger = cloud_event(
        "visit", f"ext:nobody-{uuid.uuid4()}", {"channel": "app", "location": "x"}
    )
    # Ten messages on one partition (one key), two of them bad.
    publish(*buys[:4], b"not json", *buys[4:], stranger)
    group = f"metrics-{uuid.uuid4().hex[:6]}"  # its own labels in the process-wide registry
    ingest = Ingest(
        services, stack.bootstrap, group=group, session_timeout_ms=SESSION_TIMEOUT_MS, max_records=3
    )
    client = TestClient(create_app(services))
    try:
        before = scrape(client)
        deadline = time.monotonic() + 15
        batch = ingest.poll_once(200)
        while not batch.records:  # back to back until joined and fed
            assert time.monotonic() < deadline
            batch = ingest.poll_once(200)
        assert batch.records == 3
        (held,) = {tp.partition for tp in batch.next_offsets}
        first = scrape(client)
        labels = {"group": group, "topic": INTEGRATION_EVENTS}
        assert sample(first, "crmledger_ingest_lag_messages", partition=str(held), **labels) == 7
        while ingest.totals.records < 10:
            assert time.monotonic() < deadline
            ingest.poll_once(200)
        drained = scrape(client)
        assert sample(drained, "crmledger_ingest_lag_messages", partition=str(held), **labels) == 0
    finally:
        ingest.close()
    # A consumer that left the group reports no lag: the partition's next owner will.
    assert (
        sample(scrape(client), "crmledger_ingest_lag_messages", partition=str(held), **labels)
        is None
    )

    relay = Relay(services, stack.bootstrap)
    try:
        relay.publish_pending()
    finally:
        relay.close()
    services.ledger.record_activity(account.id, Visit("store", "x"), datetime.now(UTC), meta())
    services.readmodels.rebuild("kpis")  # one read model up to date, the other never fed
    after = scrape(client)

    ledger = 1 + 8 + 1
    assert sample(after, "crmledger_ledger_position") == ledger
    assert sample(after, "crmledger_relay_position", topic=ACCOUNT_EVENTS) == ledger - 1
    assert sample(after, "crmledger_relay_lag_events", topic=ACCOUNT_EVENTS) == 1
    for reason in ("not_json", "unknown_account"):
        count = after[("crmledger_dead_letters_total", frozenset({("reason", reason)}))]
        assert count - (sample(before, "crmledger_dead_letters_total", reason=reason) or 0) == 1
    assert sample(after, "crmledger_projection_lag_events", read_model="kpis") == 0
    assert sample(after, "crmledger_projection_position", read_model="kpis") == ledger
    assert sample(after, "crmledger_projection_lag_events", read_model="directory") == ledger
