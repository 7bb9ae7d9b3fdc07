"""`crmledger serve` as a process: it serves, and on SIGTERM it leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import JWT_SECRET, drop_schema, make_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


@pytest.mark.slow
def test_serve_runs_every_role_and_stops_its_embedded_broker_on_sigterm(tmp_path: Path) -> None:
    settings = make_settings(home=tmp_path / "home")
    assert settings.master_key is not None
    port = free_port()
    env = {
        **os.environ,
        "CRMLEDGER_DATABASE_URL": settings.database_url or "",
        "CRMLEDGER_DATABASE_SCHEMA": settings.database_schema,
        "CRMLEDGER_READMODEL_SCHEMA": settings.readmodel_schema,
        "CRMLEDGER_JWT_SECRET": JWT_SECRET,
        "CRMLEDGER_MASTER_KEY": settings.master_key.get_secret_value(),
        "CRMLEDGER_HOME": str(settings.home),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "crmledger", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert child.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        address_file = settings.home / "kafka-bootstrap"
        broker = address_file.read_text().strip()
        assert port_open(broker)

        child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 0
        assert not port_open(broker), "the embedded broker stopped with the process"
        assert not address_file.exists()
    finally:
        if child.poll() is None:
            child.kill()
        drop_schema(settings.database_schema)
