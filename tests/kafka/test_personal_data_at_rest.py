"""No table holds a customer's name, email or phone in clear, whichever door they came in by.

The whole pipeline runs (HTTP and inbound Kafka into the ledger, the relay, the
projector into the read models), then every column of every table of the
test's schemas is read as text (bytea also decoded as UTF-8) and searched for
the customers' clear values (and those of a dead-lettered message). Erasure
then takes the directory's ciphertext and blind-index tokens away, and a
search by name no longer finds the customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from consumers.inbound import start_ingest
from consumers.projector import start_projector
from domain.account import account_id_for
from infra.relay import start_relay
from infra.topics import INTEGRATION_DLQ
from infra.worker import Worker
from tests.kafka.conftest import (
    SESSION_TIMEOUT_MS,
    Publish,
    Stack,
    cloud_event,
    read_topic,
    wait_until,
)

Auth = Callable[..., dict[str, str]]

# Distinctive values, one set per door; the updates bring new ones.
BY_HTTP = {"name": "Zebulon Quixotica", "email": "zq.unique@example.org", "phone": "+852 9137 4682"}
HTTP_UPDATE = {"phone": "+852 6021 7395"}
BY_KAFKA = {
    "name": "Wilhelmina Vortigern",
    "email": "wv.unique@example.net",
    "phone": "+852 6358 2719",
}
KAFKA_UPDATE = {"email": "wv.second@example.net", "phone": "+852 5703 1846"}
# In a message that breaks a rule: it goes to the dead-letter topic, and nothing
# the ledger keeps about it may hold these either.
DEAD_LETTERED = {
    "name": "Ximena Ruritania",
    "email": "xr.unique@example.com",
    "phone": "+852 6482 9173",
}


def needles() -> set[str]:
    """Every clear value, its words and the phones' digits, lower-cased."""
    found: set[str] = set()
    for fields in (BY_HTTP, HTTP_UPDATE, BY_KAFKA, KAFKA_UPDATE, DEAD_LETTERED):
        for field, value in fields.items():
            found.add(value.lower())
            if field == "name":
                found.update(word.lower() for word in value.split())
            if field == "phone":
                digits = "".join(c for c in value if c.isdigit())
                found.update({digits, digits[3:]})  # with and without the country code
    return found


def clear_values_at_rest(database_url: str, schema: str) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every clear value found in the schemas `schema*`."""
    hits = []
    wanted = needles()
    with psycopg.connect(database_url) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type"
            " FROM information_schema.columns WHERE table_schema LIKE %s"
            " ORDER BY table_schema, table_name, column_name",
            (schema + "%",),
        ).fetchall()
        assert len(columns) > 20, columns  # the ledger's tables and the read models
        for table_schema, table, column, data_type in columns:
            name = sql.Identifier(table_schema, table)
            col = sql.Identifier(column)
            query = sql.SQL("SELECT {col}::text, {raw} FROM {name} WHERE {col} IS NOT NULL").format(
                col=col,
                raw=col if data_type == "bytea" else sql.NULL,
                name=name,
            )
            for as_text, raw in conn.execute(query):
                text = as_text.lower()
                if raw is not None:
                    text += "\n" + bytes(raw).decode("utf-8", errors="ignore").lower()
                hits += [(f"{table_schema}.{table}", column, n) for n in wanted if n in text]
    return hits


@pytest.fixture
def pipeline(stack: Stack) -> Iterator[list[Worker]]:
    """The relay, the ingest and the projector, running as `serve` runs them."""
    workers = [
        start_relay(stack.services, stack.bootstrap),
        start_ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS),
        start_projector(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS),
    ]
    yield workers
    for worker in workers:
        worker.stop()


def projected(stack: Stack, events: int) -> Callable[[], bool]:
    """True once the ledger holds `events` events and every read model has applied them."""

    def check() -> bool:
        status = stack.services.readmodels.status()
        return all(s["position"] == s["ledger_position"] == events for s in status)

    return check


def search(client: TestClient, auth: Auth, q: str) -> list[dict[str, Any]]:
    """The directory's answer to `q` for customer service."""
    response = client.get("/v1/accounts", params={"q": q}, headers=auth("customer_service"))
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_no_table_holds_personal_data_in_clear_and_erasure_drops_the_tokens(
    stack: Stack, publish: Publish, pipeline: list[Worker], auth: Auth
) -> None:
    services = stack.services
    client = TestClient(create_app(services))
    cs = auth("customer_service")
    # Through HTTP, with an idempotency key (its record is a table too).
    opened = client.post(
        "/v1/accounts",
        json={
            "external_ref": f"ZQ-{uuid.uuid4().hex[:8]}",
            "segment": "gold",
            "channel": "store",
            "customer": {**BY_HTTP, "date_of_birth": "1980-02-29"},
        },
        headers={**cs, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert opened.status_code == 201, opened.text
    http_id = opened.json()["id"]
    updated = client.patch(
        f"/v1/accounts/{http_id}", json={"customer": HTTP_UPDATE}, headers={**cs, "If-Match": '"1"'}
    )
    assert updated.status_code == 200, updated.text
    # Through Kafka, behind a message that is dead-lettered (same key: handled first).
    ref = f"WV-{uuid.uuid4().hex[:8]}"
    publish(
        cloud_event(
            "account_opened",
            f"ext:XR-{uuid.uuid4().hex[:8]}",
            {"segment": "no-such-segment", "channel": "online", "customer": DEAD_LETTERED},
        ),
        cloud_event(
            "account_opened",
            f"ext:{ref}",
            {"segment": "vip", "channel": "online", "customer": BY_KAFKA},
        ),
        cloud_event("details_updated", f"ext:{ref}", {"customer": KAFKA_UPDATE}),
    )
    wait_until(projected(stack, 4), timeout=30)
    assert len(read_topic(stack.bootstrap, INTEGRATION_DLQ, 1)) == 1

    # The directory finds both customers by their current details, and shows them.
    (http_item,) = search(client, auth, "QUIXOTICA zebulon")
    assert http_item["id"] == http_id and http_item["contact"]["phone"] == HTTP_UPDATE["phone"]
    assert [i["id"] for i in search(client, auth, "85260217395")] == [http_id]
    assert search(client, auth, BY_HTTP["phone"]) == []  # replaced by the update
    (kafka_item,) = search(client, auth, "WV.Second@example.net")
    assert kafka_item["id"] == str(account_id_for(ref))
    assert kafka_item["contact"] == {"name": BY_KAFKA["name"], **KAFKA_UPDATE}
    assert client.get(f"/v1/accounts/{http_id}", headers=cs).status_code == 200

    hits = clear_values_at_rest(services.database_url, stack.settings.database_schema)
    assert not hits, sorted({(table, column) for table, column, _ in hits})

    erased = client.post(f"/v1/accounts/{http_id}/erase", headers=auth("admin"))
    assert erased.status_code == 200, erased.text
    wait_until(projected(stack, 5), timeout=30)
    assert search(client, auth, "Quixotica") == []
    schema = stack.settings.readmodel_schema
    with psycopg.connect(services.database_url) as conn:
        row = conn.execute(
            f"SELECT name_sealed, email_sealed, phone_sealed, erased FROM {schema}.accounts"
            f" WHERE account_id = %s".encode(),
            (uuid.UUID(http_id),),
        ).fetchone()
        tokens = conn.execute(
            f"SELECT account_id, count(*) FROM {schema}.account_tokens GROUP BY 1".encode()
        ).fetchall()
    assert row == (None, None, None, True)
    # Only the Kafka customer's tokens are left: two name words, an email, a phone.
    assert tokens == [(account_id_for(ref), 4)]
    assert all(w.failures == 0 for w in pipeline)
