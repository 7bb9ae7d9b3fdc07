"""The checkpoint signing key and the ledger's origin: given, generated, or refused."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from uuid import UUID

import pytest

from infra.checkpoints import Signer, ledger_id
from infra.secrets import ConfigError, signing_key
from infra.settings import Settings
from infra.signed_note import open_checkpoint
from infra.wiring import bootstrap
from tests.support import drop_schema, make_settings, own_ledger


def test_a_real_database_needs_the_signing_key_given(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://db.example/ledger")
    with pytest.raises(ConfigError, match="CRMLEDGER_SIGNING_KEY is required"):
        signing_key(settings)
    assert not any(tmp_path.iterdir())


def test_the_embedded_default_generates_one_key_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    first = signing_key(settings)
    again = signing_key(Settings(home=tmp_path / "home"))
    path = tmp_path / "home" / "signing-key"
    assert len(first) == 32 and again == first
    assert base64.b64decode(path.read_text()) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "value, message",
    [("not base64!", "must be base64"), (base64.b64encode(b"short").decode(), "32-byte")],
)
def test_a_malformed_signing_key_is_refused(tmp_path: Path, value: str, message: str) -> None:
    settings = Settings(home=tmp_path, signing_key=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        signing_key(settings)


def test_the_default_origin_names_the_ledger_and_stays_across_starts() -> None:
    settings = make_settings()
    first = bootstrap(settings)
    try:
        made = ledger_id(first.pool, settings.database_schema)
        assert first.signer.origin == f"crmledger/{made}"
        assert isinstance(made, UUID)
        again = bootstrap(settings)
        try:
            assert again.signer.origin == first.signer.origin
            assert again.verifier_key == first.verifier_key
        finally:
            again.close()
    finally:
        first.close()
        drop_schema(settings.database_schema)


def test_a_configured_origin_names_the_checkpoints_and_the_key() -> None:
    with own_ledger(ledger_origin="example.com/crm-ledger") as services:
        assert services.verifier_key.startswith("example.com/crm-ledger+")
        note = services.signer.sign(3, b"\x07" * 32)
        checkpoint = open_checkpoint(note, services.verifier_key)
        assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (
            "example.com/crm-ledger",
            3,
            b"\x07" * 32,
        )


def test_another_key_does_not_verify_a_checkpoint() -> None:
    signer = Signer("crmledger/test", os.urandom(32))
    other = Signer("crmledger/test", os.urandom(32))
    note = signer.sign(1, b"\x01" * 32)
    assert open_checkpoint(note, signer.verifier_key).size == 1
    with pytest.raises(ValueError):
        open_checkpoint(note, other.verifier_key)
