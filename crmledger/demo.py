"""Demo data: a realistic retail history written through the ledger's real paths.

Accounts are opened with commands, as a staff tool would. Then each customer's
activity arrives either as commands (the call centre's path) or as inbound
CloudEvents on crmledger.integration-events (the point of sale's path), applied
by the ingest consumer. Segments, channels, purchases with costs, visits,
inquiries and their answers, complaints and their resolutions, feedback and
some churn are drawn from a seeded random generator, so a seed always gives the
same history, and loading the same seed twice opens nothing twice.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from kafka import KafkaProducer

from domain import activities as act
from domain.errors import DuplicateAccount
from domain.rules import CHANNELS
from infra.inbound_receipts import applied_events
from infra.topics import CLOUDEVENTS_JSON, INTEGRATION_EVENTS
from infra.wiring import Services

FIRST = ["Ada", "Bo", "Chan", "Dee", "Eli", "Fai", "Gus", "Hana", "Ivy", "Jun", "Kit", "Lam"]
LAST = ["Wong", "Lee", "Chan", "Ng", "Smith", "Ho", "Cheung", "Lau", "Patel", "Garcia"]
STORES = ["central", "mong-kok", "tsim-sha-tsui", "causeway-bay", "web"]
SEGMENT_WEIGHTS = {"standard": 50, "silver": 25, "gold": 15, "vip": 5, "corporate": 5}
STAFF = ["agent-ann", "agent-bob", "agent-cy", "agent-dan"]
SOURCE = "pos/demo"
TYPE_OF = {cls: name for name, cls in act.ACTIVITIES.items()}


@dataclass
class Customer:
    """One demo customer: how the account opens and what happens to it."""

    ref: str
    segment: str
    plan: str
    channel: str
    details: dict[str, str]
    opened_at: datetime
    steps: list[tuple[datetime, act.Activity, str]] = field(default_factory=list)
    closed_at: datetime | None = None
    via_kafka: bool = False


@dataclass
class DemoResult:
    """What a demo load did."""

    customers: int = 0
    commands: int = 0
    messages: int = 0
    applied: int = 0


def plan_history(customers: int, days: int, seed: int) -> list[Customer]:
    """The demo's customers and their histories, the same for the same seed."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    plans = []
    for i in range(customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        opened = now - timedelta(days=rng.uniform(days * 0.3, days), hours=rng.uniform(0, 8))
        customer = Customer(
            ref=f"DEMO-{seed}-{i:05d}",
            segment=rng.choices(list(SEGMENT_WEIGHTS), weights=list(SEGMENT_WEIGHTS.values()))[0],
            plan=rng.choice(["standard", "plus", "premium"]),
            channel=rng.choice(sorted(CHANNELS)),
            details={
                "name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}{i}@example.com",
                "phone": f"+852 {rng.randint(5000, 9999)} {rng.randint(1000, 9999)}",
            },
            opened_at=opened,
            via_kafka=rng.random() < 0.5,
        )
        at = opened
        for n in range(rng.randint(3, 15)):
            at += timedelta(hours=rng.uniform(2, 24 * days / 15))
            if at >= now:
                break
            customer.steps.extend(_activity(rng, n, at, now))
        customer.steps.sort(key=lambda step: step[0])
        last = customer.steps[-1][0] if customer.steps else opened
        if rng.random() < 0.1 and last + timedelta(days=1) < now:
            customer.closed_at = last + timedelta(days=1)
        plans.append(customer)
    return plans


def load_demo(
    services: Services,
    bootstrap: str,
    customers: int = 50,
    days: int = 90,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
    wait: float = 60.0,
) -> DemoResult:
    """Write the demo history; waits (at most `wait` s) for the ingest to apply its messages.

    The ingest consumer must be running (as in `crmledger serve`).
    """
    ledger = services.ledger
    result = DemoResult()
    sent: list[tuple[str, str]] = []
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    try:
        for customer in plan_history(customers, days, seed):
            meta = {"actor": "demo", "department": "customer_service", "source": "api"}
            try:
                account = ledger.open_account(
                    external_ref=customer.ref,
                    segment=customer.segment,
                    service_plan=customer.plan,
                    channel=customer.channel,
                    customer=customer.details,
                    occurred_at=customer.opened_at,
                    meta=meta,
                )
            except DuplicateAccount:
                continue  # loaded before: the demo opens nothing twice
            result.customers += 1
            result.commands += 1
            if customer.via_kafka:
                for message in _messages(customer, account.id):
                    producer.send(
                        INTEGRATION_EVENTS,
                        value=orjson.dumps(message),
                        key=str(account.id).encode(),
                        headers=[("content-type", CLOUDEVENTS_JSON)],
                    )
                    sent.append((message["source"], message["id"]))
            else:
                for at, activity, staff in customer.steps:
                    ledger.record_activity(account.id, activity, at, {**meta, "actor": staff})
                    result.commands += 1
                if customer.closed_at:
                    ledger.close_account(
                        account.id, "customer_request", "", customer.closed_at, meta
                    )
                    result.commands += 1
            if progress:
                progress(1)
        producer.flush()
    finally:
        producer.close()
    result.messages = len(sent)
    result.applied = _wait_until_applied(services, sent, wait)
    return result


def _messages(customer: Customer, account_id: uuid.UUID) -> list[dict[str, Any]]:
    out = []
    steps: list[tuple[datetime, str, dict[str, Any], str]] = [
        (at, TYPE_OF[type(a)], dataclasses.asdict(a), staff) for at, a, staff in customer.steps
    ]
    if customer.closed_at:
        steps.append((customer.closed_at, "account_closed", {"reason": "customer_request"}, SOURCE))
    for at, kind, data, _ in steps:
        out.append(
            {
                "specversion": "1.0",
                "id": str(uuid.uuid5(account_id, f"{kind}-{at.isoformat()}")),
                "source": SOURCE,
                "type": kind,
                "subject": str(account_id),
                "time": at.isoformat(),
                "datacontenttype": "application/json",
                "data": {k: str(v) if isinstance(v, Decimal) else v for k, v in data.items()},
            }
        )
    return out


def _wait_until_applied(services: Services, sent: list[tuple[str, str]], wait: float) -> int:
    deadline = time.monotonic() + wait
    applied = 0
    while True:
        applied = len(applied_events(services.pool, sent))
        if applied == len(sent) or time.monotonic() > deadline:
            return applied
        time.sleep(0.2)


def _activity(
    rng: random.Random, n: int, at: datetime, now: datetime
) -> list[tuple[datetime, act.Activity, str]]:
    staff = rng.choice(STAFF)
    roll = rng.random()
    if roll < 0.45:
        amount = Decimal(rng.randint(50, 5000)) / 4
        cost = (amount * Decimal(str(round(rng.uniform(0.4, 0.8), 2)))).quantize(Decimal("0.01"))
        return [(at, act.Purchase(amount, cost, "HKD", rng.choice(STORES)), staff)]
    if roll < 0.5:
        amount = Decimal(rng.randint(50, 1000)) / 4
        cost = (amount * Decimal("0.6")).quantize(Decimal("0.01"))
        return [(at, act.Refund(amount, cost, "HKD", "central"), staff)]
    if roll < 0.75:
        return [(at, act.Visit(rng.choice(sorted(CHANNELS)), rng.choice(STORES)), staff)]
    if roll < 0.85:
        channel = rng.choice(sorted(CHANNELS))
        topic = rng.choice(["billing", "delivery", "product"])
        steps: list[tuple[datetime, act.Activity, str]] = [
            (at, act.OpenInquiry(f"Q{n}", channel, topic), staff)
        ]
        answered = at + timedelta(hours=rng.uniform(1, 40))
        if rng.random() < 0.9 and answered < now:
            steps.append((answered, act.AnswerInquiry(f"Q{n}", channel), rng.choice(STAFF)))
        return steps
    if roll < 0.92:
        category = rng.choice(["service", "product", "delivery"])
        severity = rng.choice(["low", "medium", "high"])
        steps = [(at, act.LodgeComplaint(f"C{n}", category, severity), staff)]
        resolved = at + timedelta(hours=rng.uniform(4, 96))
        if rng.random() < 0.8 and resolved < now:
            fix = act.ResolveComplaint(f"C{n}", "refund offered", rng.random() < 0.7)
            steps.append((resolved, fix, rng.choice(STAFF)))
        return steps
    return [(at, act.GiveFeedback(rng.randint(2, 5), ""), staff)]
