"""Every table in one module per schema, each statement naming its schema."""

from __future__ import annotations

import re
from pathlib import Path

from infra import schema as ledger_schema
from infra.wiring import Services
from projections import schema as readmodel_schema

ROOT = Path(__file__).parents[2]
PRODUCTION = ("api", "consumers", "crmledger", "domain", "infra", "projections")
SCHEMA_MODULES = {ROOT / "infra" / "schema.py", ROOT / "projections" / "schema.py"}
DDL = re.compile(
    r"\b(CREATE (OR REPLACE |UNIQUE )?(TABLE|INDEX|FUNCTION|TRIGGER|RULE|SCHEMA|TYPE)"
    r"|ALTER TABLE|DROP (TABLE|TRIGGER|INDEX|COLUMN))\b"
)
CREATED = re.compile(r"CREATE TABLE IF NOT EXISTS (\S+)\.(\w+)")


def tables_in(services: Services, schema: str) -> set[str]:
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {name for (name,) in rows}


def test_no_production_module_but_the_two_schema_modules_holds_ddl() -> None:
    holders = {
        str(path.relative_to(ROOT))
        for package in PRODUCTION
        for path in (ROOT / package).rglob("*.py")
        if path not in SCHEMA_MODULES and DDL.search(path.read_text())
    }
    assert holders == set()


def test_every_ledger_table_is_created_in_the_ledger_schema_at_start(services: Services) -> None:
    schema = services.settings.database_schema
    statements = ledger_schema.ddl(schema)
    created = CREATED.findall(statements)
    assert {qualifier for qualifier, _ in created} == {schema}
    assert [table for _, table in created] == list(ledger_schema.TABLES)
    # eventsourcing's own two tables sit beside ours (infra/event_store.py).
    assert tables_in(services, schema) == {
        *ledger_schema.TABLES,
        "ledger_events",
        "ledger_snapshots",
    }


def test_every_read_model_table_is_created_in_the_read_model_schema(services: Services) -> None:
    schema = services.settings.readmodel_schema
    created = CREATED.findall(readmodel_schema.ddl(schema))
    assert {qualifier for qualifier, _ in created} == {schema}
    names = {table for _, table in created}
    assert "parked_events" in names and "account_tokens" in names
    assert tables_in(services, schema) == names
