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

-- Idempotency keys keep the outcome of a command (account, version), never a
-- response body, and `key` is the SHA-256 of the client's key: a replay renders
-- the account again for its caller, and no personal data sits here in clear
-- (infra/idempotency.py).
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
"""


def create_tables(pool: ConnectionPool, schema: str) -> None:
    """Create the tables if missing; safe to run at every start, from many processes."""
    with pool.connection() as conn:
        # Concurrent CREATE ... IF NOT EXISTS can still collide; serialise them.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crmledger-ddl'))")
        conn.execute(DDL.format(schema=schema).encode())
