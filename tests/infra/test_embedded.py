"""The embedded defaults: a fresh home gets a real PostgreSQL and its own secrets."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.secrets import ConfigError, jwt_secret, master_key
from infra.settings import Settings
from infra.wiring import bootstrap


@pytest.mark.slow
def test_a_fresh_home_starts_an_embedded_database_and_keeps_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    assert settings.embedded

    first = bootstrap(settings)
    try:
        assert "host=" in first.database_url or str(home) in first.database_url
        account = first.ledger.open_account(
            external_ref="EMB-1",
            segment="standard",
            service_plan="standard",
            channel="app",
            customer={"name": "Embedded Ann"},
            occurred_at=datetime.now(UTC),
            meta={"actor": "test"},
        )
    finally:
        first.close()
    for name in ("jwt-secret", "master-key"):
        mode = (home / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, name

    again = bootstrap(Settings(home=home))
    try:
        stored = again.ledger.account(account.id)
        assert again.ledger.personal_data(stored) == {"name": "Embedded Ann"}
        assert again.ledger.verify().ok
    finally:
        again.close()


def test_a_real_database_needs_its_secrets_given(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://db.example/ledger")
    with pytest.raises(ConfigError, match="CRMLEDGER_JWT_SECRET is required"):
        jwt_secret(settings)
    with pytest.raises(ConfigError, match="CRMLEDGER_MASTER_KEY is required"):
        master_key(settings)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"jwt_secret": "short"}, "at least 32"),
        ({"master_key": "not base64!"}, "base64"),
        ({"master_key": "c2hvcnQ="}, "32 bytes"),
    ],
)
def test_weak_secrets_are_refused(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    settings = Settings(home=tmp_path, **overrides)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        jwt_secret(settings) if "jwt_secret" in overrides else master_key(settings)
