"""Demo data: a small, realistic retail history written through the real commands."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain import activities as act
from domain.account import CHANNELS
from domain.errors import LedgerError
from domain.ledger import Ledger

FIRST = ["Ada", "Bo", "Chan", "Dee", "Eli", "Fai", "Gus", "Hana", "Ivy", "Jun", "Kit", "Lam"]
LAST = ["Wong", "Lee", "Chan", "Ng", "Smith", "Ho", "Cheung", "Lau", "Patel", "Garcia"]
STORES = ["central", "mong-kok", "tsim-sha-tsui", "causeway-bay", "web"]
SEGMENT_WEIGHTS = {"standard": 50, "silver": 25, "gold": 15, "vip": 5, "corporate": 5}


def load_demo(
    ledger: Ledger,
    customers: int = 50,
    days: int = 90,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Open `customers` accounts with `days` of activity; returns the events written."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    meta = {"actor": "demo", "department": "customer_service", "source": "api"}
    written = 0
    for i in range(customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        opened = now - timedelta(days=rng.uniform(days * 0.5, days), hours=rng.uniform(0, 8))
        segment = rng.choices(list(SEGMENT_WEIGHTS), weights=list(SEGMENT_WEIGHTS.values()))[0]
        try:
            account = ledger.open_account(
                external_ref=f"DEMO-{seed}-{i:05d}",
                segment=segment,
                service_plan=rng.choice(["standard", "plus", "premium"]),
                channel=rng.choice(sorted(CHANNELS)),
                customer={
                    "name": f"{first} {last}",
                    "email": f"{first.lower()}.{last.lower()}{i}@example.com",
                    "phone": f"+852 {rng.randint(5000, 9999)} {rng.randint(1000, 9999)}",
                },
                occurred_at=opened,
                meta=meta,
            )
        except LedgerError:
            continue  # loaded before: the demo is idempotent per seed
        events = 1
        at = opened
        for n in range(rng.randint(3, 15)):
            at += timedelta(hours=rng.uniform(2, 24 * days / 15))
            if at >= now:
                break
            activity = _activity(rng, n)
            ledger.record_activity(account.id, activity, at, meta)
            events += 1
            if isinstance(activity, act.OpenInquiry) and rng.random() < 0.9:
                answer = act.AnswerInquiry(activity.inquiry_id, activity.channel)
                ledger.record_activity(
                    account.id, answer, at + timedelta(hours=rng.uniform(1, 40)), meta
                )
                events += 1
            if isinstance(activity, act.LodgeComplaint) and rng.random() < 0.8:
                fix = act.ResolveComplaint(
                    activity.complaint_id, "refund offered", rng.random() < 0.7
                )
                ledger.record_activity(
                    account.id, fix, at + timedelta(hours=rng.uniform(4, 96)), meta
                )
                events += 1
        if rng.random() < 0.1:
            close_at = min(at + timedelta(days=1), now)
            ledger.close_account(account.id, "customer_request", "", close_at, meta)
            events += 1
        written += events
        if progress:
            progress(1)
    return written


def _activity(rng: random.Random, n: int) -> act.Activity:
    roll = rng.random()
    if roll < 0.45:
        amount = Decimal(rng.randint(50, 5000)) / 4
        cost = (amount * Decimal(rng.uniform(0.4, 0.8))).quantize(Decimal("0.01"))
        return act.Purchase(amount, cost, "HKD", rng.choice(STORES))
    if roll < 0.5:
        amount = Decimal(rng.randint(50, 1000)) / 4
        return act.Refund(
            amount, (amount * Decimal("0.6")).quantize(Decimal("0.01")), "HKD", "central"
        )
    if roll < 0.75:
        return act.Visit(rng.choice(sorted(CHANNELS)), rng.choice(STORES))
    if roll < 0.85:
        return act.OpenInquiry(
            f"Q{n}", rng.choice(sorted(CHANNELS)), rng.choice(["billing", "delivery", "product"])
        )
    if roll < 0.92:
        return act.LodgeComplaint(
            f"C{n}",
            rng.choice(["service", "product", "delivery"]),
            rng.choice(["low", "medium", "high"]),
        )
    return act.GiveFeedback(rng.randint(2, 5), "")
