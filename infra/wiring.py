"""The one place where the ledger's parts are put together; tests use it too."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from infra.access_log import AccessLog
from infra.audit_feed import AuditFeed
from infra.canonical import install as install_canonical_json
from infra.checkpoints import CheckpointStore, Signer, ledger_id, origin_of
from infra.connection_budget import application_name, process_budget
from infra.database import database_url, event_store_env, open_pool
from infra.idempotency import IdempotencyStore
from infra.keys import HmacBlindIndex, PostgresKeyVault, blind_index_key
from infra.ledger_store import PostgresLedger
from infra.merkle_tree import LedgerTree
from infra.readmodels import ReadModels
from infra.schema import create_tables, ddl_lock
from infra.secrets import jwt_secret, master_key, signing_key
from infra.settings import Settings
from infra.verifier import BrokenAccounts


@dataclass
class Services:
    """Everything a process role needs, built once and closed once."""

    settings: Settings
    database_url: str
    pool: ConnectionPool
    ledger: PostgresLedger
    vault: PostgresKeyVault
    access_log: AccessLog
    idempotency: IdempotencyStore
    audit_feed: AuditFeed
    readmodels: ReadModels
    jwt_secret: str | None
    integrity: BrokenAccounts
    # The Merkle tree over every event, its kept checkpoints, their signer and
    # the verifier key line auditors check them with (infra/merkle_tree.py,
    # infra/checkpoints.py).
    tree: LedgerTree
    checkpoints: CheckpointStore
    signer: Signer
    verifier_key: str

    def close(self) -> None:
        """Release connections; safe to call twice."""
        self.ledger.close()
        self.pool.close()


def bootstrap(settings: Settings | None = None, roles: Collection[str] | None = None) -> Services:
    """Build the services for `settings` (by default, from the environment).

    The pools are sized for `roles`, the roles the process runs, and their
    connections carry the roles' name (infra/connection_budget.py); None: a
    command's.
    """
    settings = settings or Settings()
    budget = process_budget(roles, settings.pool_size)
    name = application_name(settings.application_name, roles)
    settings = settings.model_copy(update={"application_name": name})
    # Secrets first: a deployment without them stops before touching anything.
    secret, key = jwt_secret(settings), master_key(settings)
    seed = signing_key(settings)
    url = database_url(settings)
    pool = open_pool(url, settings, size=budget.ledger)
    create_tables(pool, settings.database_schema)
    vault = PostgresKeyVault(pool, key, cache_size=settings.key_cache_size)
    install_canonical_json()
    with ddl_lock(pool):  # eventsourcing creates its tables here, unguarded
        ledger = PostgresLedger(
            event_store_env(url, settings, size=budget.store),
            vault=vault,
            segments=frozenset(settings.segments),
        )
    integrity = BrokenAccounts(pool, settings.database_schema)
    integrity.create()
    readmodels = ReadModels(ledger, pool, settings, HmacBlindIndex(blind_index_key(key)))
    readmodels.store.create()
    signer = Signer(origin_of(settings, ledger_id(pool, settings.database_schema)), seed)
    return Services(
        settings=settings,
        database_url=url,
        pool=pool,
        ledger=ledger,
        vault=vault,
        access_log=AccessLog(pool),
        idempotency=IdempotencyStore(pool, settings.idempotency_ttl_hours),
        audit_feed=AuditFeed(pool, ledger),
        readmodels=readmodels,
        jwt_secret=secret,
        integrity=integrity,
        tree=LedgerTree(pool, settings.database_schema),
        checkpoints=CheckpointStore(pool, settings.database_schema),
        signer=signer,
        verifier_key=signer.verifier_key,
    )
