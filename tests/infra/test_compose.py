"""The production-like compose stack stays in step with the code it runs.

No Docker engine runs here, so the file is checked for what `docker compose
config` would need and for what the ledger needs of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from crmledger.process import ROLES
from infra.settings import Settings

ROOT = Path(__file__).parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "infra" / "compose.yaml").read_text())
    return loaded


def test_every_role_runs_in_its_own_container() -> None:
    services = compose()["services"]
    for role in ROLES:
        command = services[role]["command"]
        assert command[:3] == ["serve", "--only", role], role
        assert services[role]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    services = compose()["services"]
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert "zookeeper" not in services
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "the ledger creates its topics"


def test_every_variable_given_to_the_ledger_is_a_setting_and_secrets_have_no_default() -> None:
    environment = compose()["services"]["api"]["environment"]
    fields = {f"CRMLEDGER_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= fields
    for secret in ("CRMLEDGER_JWT_SECRET", "CRMLEDGER_MASTER_KEY"):
        assert ":?" in environment[secret], f"{secret} must be required, never defaulted"
    assert "CRMLEDGER_DATABASE_URL" in environment and "CRMLEDGER_KAFKA_BOOTSTRAP" in environment


def test_the_image_holds_every_package_of_the_distribution() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("crmledger", "domain", "projections", "api", "consumers", "infra"):
        assert f"COPY {package} ./{package}" in dockerfile
