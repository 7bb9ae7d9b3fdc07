"""How many PostgreSQL connections each role may hold, and the name it shows them under.

A server's `max_connections` is shared by every process of every deployment
on it, so each process opens only the pools its roles need, sized for what
they do (docs/design.md, Processes): the API scales with CRMLEDGER_POOL_SIZE,
a background role works one batch at a time in one thread and needs one or
two. A process running several roles (`serve` with every role) holds the sum.

Every connection carries `application_name` `<CRMLEDGER_APPLICATION_NAME>-<role>`
(`-serve` for a process of every role, the bare name for a command), so
pg_stat_activity says who holds what.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Connections at most: our pool, the event store's pool, and connections of their own."""

    ledger: int  # our tables' pool (infra/database.py open_pool)
    store: int  # the event store's pool (eventsourcing's, EventStoreFactory)
    own: int = 0  # held outside the pools: the relay's LISTEN connection

    @property
    def total(self) -> int:
        """Every connection the role may hold at once."""
        return self.ledger + self.store + self.own

    def __add__(self, other: Budget) -> Budget:
        return Budget(self.ledger + other.ledger, self.store + other.store, self.own + other.own)


def role_budget(role: str, pool_size: int) -> Budget:
    """The connections `role` may hold, with CRMLEDGER_POOL_SIZE `pool_size`.

    The API's request threads each hold a connection of one pool or the other
    while they work; a command waits CRMLEDGER_DB_POOL_TIMEOUT at most for one,
    then gets a 503. A background role works in one thread; its nested reads
    (a key from the vault while a page is read) take a second connection of
    our pool.
    """
    if role == "api":
        return Budget(ledger=pool_size, store=pool_size)
    return BACKGROUND[role]


BACKGROUND = {
    "relay": Budget(ledger=1, store=1, own=1),
    "ingest": Budget(ledger=2, store=1),
    "projector": Budget(ledger=2, store=1),
    "verifier": Budget(ledger=2, store=1),
    # A page read and an append in turn, the checkpoint publisher's reads, and
    # its LISTEN connection.
    "notary": Budget(ledger=2, store=1, own=1),
}
ROLES = ("api", *BACKGROUND)
# A command of the CLI (or a test) runs no role: room for a few threads.
COMMAND_LEDGER_FACTOR = 2


def process_budget(roles: Collection[str] | None, pool_size: int) -> Budget:
    """The connections a process of `roles` may hold; None: a command, not a role."""
    if roles is None:
        return Budget(ledger=COMMAND_LEDGER_FACTOR * pool_size, store=pool_size)
    total = Budget(0, 0)
    for role in sorted(roles):
        total = total + role_budget(role, pool_size)
    return total


def application_name(base: str, roles: Collection[str] | None) -> str:
    """The name a process's connections show in pg_stat_activity."""
    if roles is None:
        return base
    if set(roles) >= set(ROLES):
        return f"{base}-serve"
    return f"{base}-{'+'.join(r for r in ROLES if r in roles)}"
