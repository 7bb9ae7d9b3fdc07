"""Every table of the ledger's PostgreSQL schema (CRMLEDGER_DATABASE_SCHEMA), in one place.

eventsourcing creates its own two tables in the same schema, `ledger_events`
and `ledger_snapshots`, with the Ledger's recorder (infra/event_store.py); what we rely
on in them is held by tests/infra/test_event_store_contract.py. Everything else
the ledger keeps beside its events is created here: `create_tables` runs at
every start (infra/wiring.py), from many processes at once, and is idempotent.
The read models' tables live in their own schema and module
(projections/schema.py): they are disposable, rebuilt from the events, and
projections may not import infra. No other module holds DDL.

Every statement names its schema: a table never lands wherever a session's
search_path happens to point. The one-time migrations of older tables sit
beside the table they change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg_pool import ConnectionPool

# Statements per table, in creation order; `{schema}` is the ledger's schema.
TABLES: dict[str, str] = {
    "account_keys": """
CREATE TABLE IF NOT EXISTS {schema}.account_keys (
    account_id uuid PRIMARY KEY,
    wrapped_key bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz
);
""",
    "access_log": """
CREATE TABLE IF NOT EXISTS {schema}.access_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    roles text[] NOT NULL,
    account_id uuid NOT NULL,
    what text NOT NULL,
    fields text[] NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_account ON {schema}.access_log (account_id, at);
CREATE INDEX IF NOT EXISTS access_log_actor ON {schema}.access_log (actor, at);

-- The access log is append-only: the database refuses edits, whoever asks.
CREATE OR REPLACE FUNCTION {schema}.access_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the access log is append-only';
END $$;
DROP TRIGGER IF EXISTS access_log_append_only ON {schema}.access_log;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON {schema}.access_log
    FOR EACH ROW EXECUTE FUNCTION {schema}.access_log_append_only();
""",
    # Service performance guidelines: the ledger's own settings, not a read model.
    "guidelines": """
CREATE TABLE IF NOT EXISTS {schema}.guidelines (
    kpi text PRIMARY KEY,
    comparison text NOT NULL CHECK (comparison IN ('at_least', 'at_most')),
    target double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);
""",
    # Idempotency keys keep the outcome of a command (account, version), never a
    # response body, and `key` is the SHA-256 of the client's key: a replay
    # renders the account again for its caller, and no personal data sits here
    # in clear (infra/idempotency.py).
    "idempotency_keys": """
CREATE TABLE IF NOT EXISTS {schema}.idempotency_keys (
    actor text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    status integer,
    account_id uuid,
    version integer,
    erased boolean,
    headers jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);
-- A table made before kept response bodies, personal data in clear: its rows
-- cannot be replayed without them, so they go with the column (once).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = '{schema}'
               AND table_name = 'idempotency_keys' AND column_name = 'body') THEN
        DELETE FROM {schema}.idempotency_keys;
        ALTER TABLE {schema}.idempotency_keys DROP COLUMN body;
        ALTER TABLE {schema}.idempotency_keys ADD COLUMN account_id uuid,
            ADD COLUMN version integer, ADD COLUMN erased boolean;
    END IF;
END $$;
-- Claims prune expired keys oldest first.
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON {schema}.idempotency_keys (created_at);
""",
    # How far the relay has published each topic, and to which broker cluster
    # (infra/relay.py).
    "relay_positions": """
CREATE TABLE IF NOT EXISTS {schema}.relay_positions (
    topic text PRIMARY KEY,
    cluster_id text NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
""",
    # Accounts whose hash chain breaks, where it first does (infra/verifier.py).
    "broken_accounts": """
CREATE TABLE IF NOT EXISTS {schema}.broken_accounts (
    account_id uuid PRIMARY KEY,
    version bigint NOT NULL,
    position bigint NOT NULL,
    reason text NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now()
);
""",
    # Inbound receipts, written in the events' transaction by the recorder
    # (infra/inbound_receipts.py): the next offset per partition, and each
    # applied CloudEvent (source, id).
    "inbound_offsets": """
CREATE TABLE IF NOT EXISTS {schema}.inbound_offsets (
    cluster_id text NOT NULL,
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, consumer_group, topic, partition)
);
""",
    "inbound_applied": """
CREATE TABLE IF NOT EXISTS {schema}.inbound_applied (
    source text NOT NULL,
    event_id text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);
-- Pruning takes the oldest receipts first.
CREATE INDEX IF NOT EXISTS inbound_applied_at ON {schema}.inbound_applied (applied_at);
""",
    # Inbound messages the broker acknowledged on the dead-letter topic
    # (infra/dead_lettered.py).
    "inbound_dead_lettered": """
CREATE TABLE IF NOT EXISTS {schema}.inbound_dead_lettered (
    cluster_id text NOT NULL,
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    reason text NOT NULL,
    dlq_partition integer NOT NULL,
    dlq_offset bigint NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, consumer_group, topic, partition, kafka_offset)
);
""",
    # Dead letters replayed to the integration topic, so each is replayed once
    # (consumers/dead_letter_replay.py).
    "dead_letter_replays": """
CREATE TABLE IF NOT EXISTS {schema}.dead_letter_replays (
    cluster_id text NOT NULL,
    partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    error text NOT NULL,
    replayed_at timestamptz NOT NULL DEFAULT now(),
    replayed_partition integer,
    replayed_offset bigint,
    PRIMARY KEY (cluster_id, partition, kafka_offset)
);
""",
    # The ledger's own identity, made once: the default checkpoint origin is
    # `crmledger/<ledger_id>` (infra/checkpoints.py). One row, whoever starts first.
    "ledger_identity": """
CREATE TABLE IF NOT EXISTS {schema}.ledger_identity (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    ledger_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.ledger_identity (ledger_id) VALUES (gen_random_uuid())
    ON CONFLICT (one) DO NOTHING;
""",
    # The RFC 9162 Merkle tree over every event (infra/merkle_tree.py). Level 0
    # lives in merkle_leaves: a leaf row is needed anyway to map a ledger
    # position to its leaf index, so its hash sits there rather than twice.
    # `fallback` names how a leaf was made when the event's own hash could not
    # be read (NULL for every sound event).
    "merkle_leaves": """
CREATE TABLE IF NOT EXISTS {schema}.merkle_leaves (
    leaf_index bigint PRIMARY KEY,
    position bigint UNIQUE NOT NULL,
    leaf_hash bytea NOT NULL,
    fallback text
);
""",
    # Every perfect subtree of level 1 and more: (level, index) covers the
    # leaves [index * 2^level, (index + 1) * 2^level).
    "merkle_nodes": """
CREATE TABLE IF NOT EXISTS {schema}.merkle_nodes (
    level smallint NOT NULL,
    index bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (level, index)
);
""",
    # The tree's size and the last ledger position in it: one row, locked by
    # each append, written in the same transaction as the leaves and nodes.
    "merkle_head": """
CREATE TABLE IF NOT EXISTS {schema}.merkle_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    tree_size bigint NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.merkle_head (tree_size, position) VALUES (0, 0) ON CONFLICT (one) DO NOTHING;
""",
    # Signed checkpoints (C2SP tlog-checkpoint) by tree size; published_at is
    # set once the broker acknowledged it on crmledger.checkpoints (infra/notary.py).
    "checkpoints": """
CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
    tree_size bigint PRIMARY KEY,
    root_hash bytea NOT NULL,
    note text NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS checkpoints_unpublished ON {schema}.checkpoints (tree_size)
    WHERE published_at IS NULL;
""",
}


def ddl(schema: str, *tables: str) -> str:
    """The statements creating `tables` (every table when none is named) in `schema`."""
    chosen = tables or tuple(TABLES)
    body = "".join(TABLES[name] for name in chosen)
    return f"CREATE SCHEMA IF NOT EXISTS {schema};\n" + body.format(schema=schema)


@contextmanager
def ddl_lock(pool: ConnectionPool) -> Iterator[None]:
    """One process at a time in the block: for DDL that takes no lock of its own.

    Processes started together (compose starts every role at once) would run
    eventsourcing's CREATE TABLE and CREATE OR REPLACE FUNCTION at the same
    moment, and collide ("tuple concurrently updated", a duplicate type).
    """
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('crmledger-ddl-store'))")
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('crmledger-ddl-store'))")


def create_tables(pool: ConnectionPool, schema: str, *tables: str) -> None:
    """Create `tables` (every table when none is named) if missing.

    Safe to run at every start, from many processes.
    """
    with pool.connection() as conn:
        # Concurrent CREATE ... IF NOT EXISTS can still collide; serialise them.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crmledger-ddl'))")
        conn.execute(ddl(schema, *tables).encode())
