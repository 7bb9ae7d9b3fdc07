"""A realistic ledger for the read benchmark, loaded through the ledger's own batch path.

Accounts open over 24 months of business time (`occurred_at`) and then buy,
return goods, visit, ask and complain (and are answered), give feedback,
update or confirm their details, move segment or plan; some close, and some
of those are erased. About ten events an account; one account in 200 is a
regular customer opened in the first year with exactly 50 events (the
account page's history). Segments, channels, plans, stores and currencies
come in uneven shares, as a retailer's do.

Loading goes through what the ledger itself offers for many events: the
vault creates each account's key (`PersonalDataVault.encrypt`, from several
threads, as concurrent commands would) and destroys it before an erasure,
the aggregate's commands make the events, and the ledger's batch save (the
`save(*accounts)` that `Ledger.record_batch` makes, here without receipts and
without handing the accounts to the cache, since the loader keeps changing
them) stores a couple of thousand accounts' next events in one transaction,
in business-time order, as the ingest does. No row is written around the
ledger.

The store stamps each event with the moment it was recorded; here that
moment is the event's business time (`recording_clock`), as a ledger that
recorded them over those 24 months would have, so reading an account as of a
year ago finds it as it stood then.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any
from uuid import UUID

from domain import activities as act
from domain.account import CustomerAccount, account_id_for
from domain.chain import ChainedAggregate
from infra.ledger_store import PostgresLedger

MONTHS = 24
SPAN = timedelta(days=730)
SEGMENTS = {"standard": 45, "silver": 25, "gold": 15, "vip": 5, "corporate": 10}
CHANNELS = {"store": 40, "online": 30, "app": 20, "phone": 10}
PLANS = {"basic": 50, "standard": 35, "premium": 15}
STORES = {"central": 30, "mong-kok": 20, "tsim-sha-tsui": 15, "causeway-bay": 10, "sha-tin": 5}
CURRENCIES = {"HKD": 90, "USD": 7, "CNY": 3}
# What an account does, by share: an inquiry and a complaint bring their answer along.
ACTIONS = {
    "purchase": 32,
    "visit": 24,
    "refund": 3,
    "inquiry": 10,
    "complaint": 3,
    "feedback": 8,
    "confirm": 4,
    "update": 3,
    "segment": 2,
    "plan": 1,
}
CLOSED_SHARE, ERASED_SHARE = 0.12, 0.2  # of all accounts; of the closed ones
BUSY_EVERY, BUSY_EVENTS = 200, 50
STAFF = 40
BATCH = 2000  # accounts (about one event each) a save
KEYS_AHEAD = 2000  # keys made ahead of the openings that need them
KEY_THREADS = 6
_A = ["chan", "lee", "wong", "ho", "lam", "cheung", "ng", "leung", "tam", "yip"]
_B = ["", "ton", "ford", "ley", "wick", "more", "stead", "by", "field", "worth"]
_C = ["", "a", "o", "ie", "an", "el", "is", "y", "in", "er"]
# 400 surnames and 100 given names: a surname is shared by 1 account in 400.
SURNAMES = [(a + b + c).title() for a in _A for b in _B for c in _C[:4]]
GIVEN = [(b + a + c).title() for a in _A for b in ("kai", "mei") for c in _C[:5]]
META = {"actor": "pos", "department": "customer_service", "source": "bench"}
STAFF_META = [{**META, "actor": f"staff-{i:02d}"} for i in range(STAFF)]


@dataclass
class Loaded:
    """What a load stored: events, accounts, and what the read benchmark looks up."""

    events: int = 0
    accounts: int = 0
    busy: list[UUID] = field(default_factory=list)
    # One account's searchable fields, per layer: (name, email, phone digits, external_ref).
    samples: list[tuple[str, str, str, str]] = field(default_factory=list)
    ids: list[UUID] = field(default_factory=list)
    rss_mb: float = 0.0  # the loading process's resident memory at the end

    def __add__(self, other: Loaded) -> Loaded:
        """Both loads together."""
        return Loaded(
            self.events + other.events,
            self.accounts + other.accounts,
            self.busy + other.busy,
            self.samples + other.samples,
            self.ids + other.ids,
            max(self.rss_mb, other.rss_mb),
        )


@dataclass
class Plan:
    """One account to be: who, where, and when each thing happens."""

    account_id: UUID
    external_ref: str
    customer: dict[str, str]
    segment: str
    plan: str
    channel: str
    # Everything that happens to it, in its order: the opening first, an erasure last.
    steps: list[tuple[datetime, str, Any]]


def _table(shares: dict[str, int]) -> tuple[list[str], list[int]]:
    return list(shares), list(accumulate(shares.values()))


# The constant shares' names and cumulative weights, made once (by id: they live for good).
_TABLES = {id(d): _table(d) for d in (SEGMENTS, CHANNELS, PLANS, STORES, CURRENCIES, ACTIONS)}


def _pick(rng: random.Random, shares: dict[str, int]) -> str:
    # random.choices(names, weights)[0] without its set-up per call: the same draw.
    names, cumulative = _TABLES.get(id(shares)) or _table(shares)
    return names[bisect(cumulative, rng.random() * cumulative[-1], 0, len(names) - 1)]


@contextmanager
def recording_clock() -> Iterator[Callable[[datetime], None]]:
    """While open, the store stamps events with the moment last set (business time here)."""
    now = [datetime.now(UTC)]
    setattr(ChainedAggregate.Event, "create_timestamp", staticmethod(lambda: now[0]))  # noqa: B010
    try:
        yield lambda moment: now.__setitem__(0, moment)
    finally:
        delattr(ChainedAggregate.Event, "create_timestamp")


def plans(rng: random.Random, layer: int, events: int, end: datetime) -> Iterator[Plan]:
    """Accounts of about ten events each, `events` in all, over the 24 months before `end`."""
    start, made, i = end - SPAN, 0, 0
    while made < events:
        busy = i % BUSY_EVERY == 0
        if busy:
            opened_at = start + timedelta(seconds=rng.uniform(0, 300 * 86400))
            slots = BUSY_EVENTS - 1
        else:
            opened_at = start + timedelta(seconds=rng.uniform(0, (SPAN.days - 1) * 86400))
            slots = min(int(rng.expovariate(1 / 8.0)), 80)
        slots = min(slots, events - made - 1)
        plan = _plan(rng, layer, i, opened_at, end, slots, closing=not busy)
        made += len(plan.steps)
        i += 1
        yield plan


def _plan(
    rng: random.Random,
    layer: int,
    i: int,
    opened_at: datetime,
    end: datetime,
    slots: int,
    *,
    closing: bool,
) -> Plan:
    ref = f"POS-{layer:02d}{i:07d}"
    given, surname = GIVEN[rng.randrange(len(GIVEN))], SURNAMES[rng.randrange(len(SURNAMES))]
    phone = f"9{layer:02d}{i:07d}"
    customer = {
        "name": f"{given} {surname}",
        "email": f"{given}.{surname}.{layer}-{i}@example.com".lower(),
        "phone": f"+852 {phone[:5]} {phone[5:]}",
    }
    live = (end - opened_at).total_seconds()
    times = sorted(
        opened_at + timedelta(seconds=rng.uniform(60, live - 7200)) for _ in range(slots)
    )
    actions: list[tuple[datetime, str, Any]] = []
    for n, at in enumerate(times):
        if len(actions) >= slots:
            break
        kind = _pick(rng, ACTIONS)
        if kind in ("inquiry", "complaint"):
            if len(actions) + 2 > slots:
                kind = "visit"
            else:
                hours = rng.lognormvariate(2.0, 1.0) * (1 if kind == "inquiry" else 4)
                answered = min(at + timedelta(hours=hours), end - timedelta(minutes=1))
                actions.append((answered, kind + "-answer", f"{kind[0]}{n}"))
        actions.append((at, kind, f"{kind[0]}{n}"))
    actions.sort(key=lambda a: a[0])
    if closing and actions and rng.random() < CLOSED_SHARE:
        # Closing replaces the last action, so the account keeps its number of events.
        last = actions[-1][0]
        actions[-1] = (
            last,
            "close",
            _pick(rng, {"customer_request": 6, "inactivity": 3, "fraud": 1}),
        )
        if rng.random() < ERASED_SHARE:
            erased = last + timedelta(days=rng.uniform(1, 60))
            actions.append((min(erased, end - timedelta(minutes=1)), "erase", "request"))
    segment, plan, channel = _pick(rng, SEGMENTS), _pick(rng, PLANS), _pick(rng, CHANNELS)
    opening = (opened_at, "open", None)
    return Plan(account_id_for(ref), ref, customer, segment, plan, channel, [opening, *actions])


def _open(ledger: PostgresLedger, plan: Plan, sealed: dict[str, str]) -> CustomerAccount:
    return CustomerAccount.open(
        external_ref=plan.external_ref,
        segment=plan.segment,
        service_plan=plan.plan,
        channel=plan.channel,
        customer=sealed,
        occurred_at=plan.steps[0][0],
        metadata=META,
        segments=ledger.segments,
        account_id=plan.account_id,
    )


def _act(
    ledger: PostgresLedger,
    account: CustomerAccount,
    at: datetime,
    kind: str,
    arg: Any,
    rng: random.Random,
) -> None:
    staff = STAFF_META[rng.randrange(STAFF)]
    match kind:
        case "purchase" | "refund":
            amount = Decimal(rng.randrange(500, 200_000)) / 100
            cost = (amount * Decimal(rng.uniform(0.4, 0.8))).quantize(Decimal("0.01"))
            sale = act.Purchase if kind == "purchase" else act.Refund
            store = "web" if account.channel == "online" else _pick(rng, STORES)
            account.record(sale(amount, cost, _pick(rng, CURRENCIES), store), at, META)
        case "visit":
            account.record(act.Visit(_pick(rng, CHANNELS), "hk"), at, META)
        case "inquiry":
            topic = rng.choice(("billing", "delivery", "product", "account"))
            account.record(act.OpenInquiry(arg, _pick(rng, CHANNELS), topic), at, META)
        case "inquiry-answer":
            account.record(act.AnswerInquiry(arg, "phone"), at, staff)
        case "complaint":
            severity = rng.choice(("low", "low", "medium", "high"))
            account.record(act.LodgeComplaint(arg, "service", severity), at, META)
        case "complaint-answer":
            resolved = act.ResolveComplaint(arg, "refunded", rng.random() < 0.7)
            account.record(resolved, at, staff)
        case "feedback":
            score = rng.choices(range(1, 6), (5, 5, 15, 35, 40))[0]
            account.record(act.GiveFeedback(score, ""), at, META)
        case "confirm":
            account.confirm_details(at, staff)
        case "update":
            phone = f"+852 6{rng.randrange(10**6, 10**7)}"
            account.update_details(ledger.vault.encrypt(account.id, {"phone": phone}), at, staff)
        case "segment":
            to = _pick(rng, {s: w for s, w in SEGMENTS.items() if s != account.segment})
            account.change_segment(to, at, staff, ledger.segments)
        case "plan":
            to = _pick(rng, {p: w for p, w in PLANS.items() if p != account.service_plan})
            account.change_plan(to, at, staff)
        case "close":
            account.close(arg, "", at, staff)
        case "erase":
            account.erase_personal_data(arg, at, staff)


def load(
    ledger: PostgresLedger, events: int, layer: int, end: datetime, share: int = 0, shares: int = 1
) -> Loaded:
    """Store about `events` events of a fresh layer of accounts (see the module's docstring).

    Every account is planned first; their events are then made and saved in
    the order of their business time, `BATCH` at a time, as a ledger that
    recorded them as they happened holds them. Keys are made in threads
    ahead of the openings that need them. With `shares`, this process stores
    one share of the layer's accounts (every `shares`-th from `share`), the
    other processes the others, at the same time.
    """
    everyone = list(plans(random.Random(layer), layer, events, end))
    planned = everyone[share::shares]
    rng = random.Random(f"{layer}-{share}-{shares}")  # the choices made while building
    order = sorted((step[0], i, j) for i, p in enumerate(planned) for j, step in enumerate(p.steps))
    openings = [i for _, i, j in order if j == 0]
    busy = [p.account_id for i, p in enumerate(everyone) if i % BUSY_EVERY == 0]
    loaded = Loaded(accounts=len(planned), ids=[p.account_id for p in planned])
    mine = set(loaded.ids)
    loaded.busy = [b for b in busy if b in mine]
    if 1 % shares == share:
        c = everyone[1].customer
        digits = "".join(ch for ch in c["phone"] if ch.isdigit())
        loaded.samples.append((c["name"], c["email"], digits, everyone[1].external_ref))
    vault = ledger.vault
    live: dict[int, CustomerAccount] = {}
    batch: dict[int, CustomerAccount] = {}
    erased: list[UUID] = []
    keys: dict[int, Future[dict[str, str]]] = {}
    with recording_clock() as clock, ThreadPoolExecutor(KEY_THREADS) as pool:

        def save() -> None:
            # A key goes before its erasure is stored, as Ledger.erase does.
            for gone in [pool.submit(vault.destroy, a) for a in erased]:
                gone.result()
            ledger.save(*batch.values())
            batch.clear()
            erased.clear()

        ahead = opened = 0
        for at, i, j in order:
            while ahead < min(len(openings), opened + KEYS_AHEAD):
                p = planned[openings[ahead]]
                keys[openings[ahead]] = pool.submit(vault.encrypt, p.account_id, p.customer)
                ahead += 1
            plan, (_, kind, arg) = planned[i], planned[i].steps[j]
            clock(at)
            if kind == "open":
                live[i] = _open(ledger, plan, keys.pop(i).result())
                opened += 1
            else:
                _act(ledger, live[i], at, kind, arg, rng)
                erased += [plan.account_id] if kind == "erase" else []
            batch[i] = live[i]
            if j == len(plan.steps) - 1:
                del live[i]  # its last event: the batch holds it until saved
            if len(batch) >= BATCH:
                save()
        if batch:
            save()
    loaded.events = len(order)
    return loaded
