"""The ledger's own tables beside the event store: keys, access log, idempotency."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.account_keys (
    account_id uuid PRIMARY KEY,
    wrapped_key bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz
);

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

-- Service performance guidelines: the ledger's own settings, not a read model.
CREATE TABLE IF NOT EXISTS {schema}.guidelines (
    kpi text PRIMARY KEY,
    comparison text NOT NULL CHECK (comparison IN ('at_least', 'at_most')),
    target double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);

CREATE TABLE IF NOT EXISTS {schema}.idempotency_keys (
    actor text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    status integer,
    body bytea,
    headers jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);
"""


def create_tables(pool: ConnectionPool, schema: str) -> None:
    """Create the tables if missing; safe to run at every start, from many processes."""
    with pool.connection() as conn:
        # Concurrent CREATE ... IF NOT EXISTS can still collide; serialise them.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crmledger-ddl'))")
        conn.execute(DDL.format(schema=schema).encode())
