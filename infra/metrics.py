"""Prometheus metrics of the Kafka pipeline: relay, ingest, dead letters, read models.

Two kinds of figures:

- what only a consumer knows is set by it as it goes: the ingest's lag per
  partition after each poll batch (consumers/inbound.py) and the dead letters
  by reason as they are sent (consumers/dead_letters.py). They live in the
  process that runs the consumer; with every role in one process (`crmledger
  serve`) that is the API's process too.
- what PostgreSQL knows is read by `refresh` when /metrics is scraped: the
  ledger's position, how far the relay published, how far each read model
  applied. They are right whichever process runs the relay or the projector.

The HTTP metrics are in api/metrics.py. Everything goes to prometheus_client's
default registry, which /metrics serves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import psycopg
from eventsourcing.persistence import PersistenceError
from prometheus_client import Counter, Gauge

from infra.relay import relay_position
from infra.topics import ACCOUNT_EVENTS
from infra.wiring import Services

log = logging.getLogger(__name__)

LEDGER_POSITION = Gauge(
    "crmledger_ledger_position",
    "The event store's highest global position (notification id)",
)
RELAY_POSITION = Gauge(
    "crmledger_relay_position",
    "The last global position the relay published and the broker acknowledged",
    ["topic"],
)
RELAY_LAG = Gauge(
    "crmledger_relay_lag_events",
    "Events stored but not yet published: the ledger's position minus the relay's",
    ["topic"],
)
INGEST_LAG = Gauge(
    "crmledger_ingest_lag_messages",
    "Inbound messages not yet consumed: highwater minus position, after each poll batch",
    ["group", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "crmledger_dead_letters",
    "Inbound messages sent to the dead-letter topic, by reason",
    ["reason"],
)
BROKEN_ACCOUNTS = Gauge(
    "crmledger_broken_accounts",
    "Accounts whose hash chain the continuous verifier found broken (infra/verifier.py)",
)
RELAY_UNREADABLE = Counter(
    "crmledger_relay_unreadable_events",
    "Stored events the relay could not read, published as crmledger.EventUnreadable markers",
    ["topic"],
)
PROJECTION_POSITION = Gauge(
    "crmledger_projection_position",
    "The highest global position a read model applied",
    ["read_model"],
)
PROJECTION_LAG = Gauge(
    "crmledger_projection_lag_events",
    "Events a read model has not applied yet: the ledger's position minus its own",
    ["read_model"],
)
PROJECTION_PARKED = Gauge(
    "crmledger_projection_parked_events",
    "Events a read model set aside because it could not apply them (projections/parking.py)",
    ["read_model"],
)
PARKED = Counter(
    "crmledger_projection_parked",
    "Events parked by the projector in this process, by read model and reason",
    ["read_model", "reason"],
)


def count_parked(read_model: str, reason: str) -> None:
    """Count one event the projector parked."""
    PARKED.labels(read_model, reason).inc()


def set_ingest_lag(group: str, topic: str, lags: Iterable[tuple[int, int]]) -> None:
    """Set the ingest lag of these (partition, lag) pairs."""
    for partition, lag in lags:
        INGEST_LAG.labels(group, topic, str(partition)).set(lag)


def forget_ingest_lag(group: str, topic: str, partitions: Iterable[int]) -> None:
    """Drop the lag of partitions this process no longer consumes (another member has them)."""
    for partition in partitions:
        INGEST_LAG.remove(group, topic, str(partition))


def refresh(services: Services) -> bool:
    """Read the database's figures into the gauges; False (and logged) when it is away.

    A scrape still answers with the figures it has: readiness (/readyz) is
    where an unreachable database shows, not a failed scrape.
    """
    try:
        ledger = services.ledger.recorder.max_notification_id() or 0
        relayed = relay_position(services, ACCOUNT_EVENTS) or 0
        readmodels = services.readmodels.status()
        broken = services.integrity.count()
    except (psycopg.Error, PersistenceError) as e:
        log.warning("metrics: could not read positions from PostgreSQL: %s", e)
        return False
    LEDGER_POSITION.set(ledger)
    BROKEN_ACCOUNTS.set(broken)
    RELAY_POSITION.labels(ACCOUNT_EVENTS).set(relayed)
    RELAY_LAG.labels(ACCOUNT_EVENTS).set(max(ledger - relayed, 0))
    for model in readmodels:
        PROJECTION_POSITION.labels(model["name"]).set(model["position"])
        PROJECTION_LAG.labels(model["name"]).set(model["lag"])
        PROJECTION_PARKED.labels(model["name"]).set(model.get("parked", 0))
    return True
