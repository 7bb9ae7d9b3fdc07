"""A directory made before contact fields were sealed loses its clear columns at start."""

from __future__ import annotations

import uuid

import psycopg

from infra.wiring import Services
from projections.store import ReadModelStore

OLD_DIRECTORY = """
CREATE SCHEMA {rm};
CREATE TABLE {rm}.accounts (
    account_id uuid PRIMARY KEY, external_ref text, status text NOT NULL,
    segment text NOT NULL, service_plan text NOT NULL, channel text NOT NULL,
    opened_at timestamptz NOT NULL, opened_day date NOT NULL, closed_at timestamptz,
    closed_day date, close_reason text, details_current_at timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL, version integer NOT NULL,
    name text, email text, phone text, erased boolean NOT NULL DEFAULT false
);
INSERT INTO {rm}.accounts VALUES (gen_random_uuid(), 'OLD-1', 'open', 'gold', 'standard',
    'store', now(), current_date, NULL, NULL, NULL, now(), now(), 1,
    'Olga Oldfield', 'olga@example.com', '+852 1111 2222', false);
"""


def test_the_clear_contact_columns_of_an_old_directory_are_dropped(services: Services) -> None:
    schema = f"t_old_{uuid.uuid4().hex[:8]}_rm"
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(OLD_DIRECTORY.format(rm=schema).encode())
    try:
        store = ReadModelStore(services.pool, schema)
        store.create()
        store.create()  # and again, as every start does
        with psycopg.connect(services.database_url) as conn:
            columns = {
                c
                for (c,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = 'accounts'",
                    (schema,),
                )
            }
            row = conn.execute(
                f"SELECT external_ref, name_sealed FROM {schema}.accounts".encode()
            ).fetchall()
        assert not columns & {"name", "email", "phone"}
        assert {"name_sealed", "email_sealed", "phone_sealed"} <= columns
        assert row == [("OLD-1", None)]  # a rebuild of the directory fills it again
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())
