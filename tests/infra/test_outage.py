"""PostgreSQL killed under load: fast 503s meanwhile, recovery by itself after, nothing lost."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_token
from infra.database import RECONNECT_WINDOW, FailFastPool
from infra.embedded_postgres import pg_ctl
from infra.wiring import Services
from tests.serving import free_port, fresh_home, start_serve, stop_serve, wait_ready
from tests.support import JWT_SECRET

# Each request during the outage must be answered within this (the issue's bound).
ANSWER_WITHIN_S = 5.0


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def restart_postgres(pgdata: Path) -> None:
    """Start the embedded server again on its data directory and socket, as the library does."""
    socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4]
    deadline = time.monotonic() + 30
    while True:
        try:
            pg_ctl(
                pgdata,
                "-w",
                "-o",
                '-h ""',
                "-o",
                f"-k {socket_dir}",
                "-l",
                str(pgdata / "log"),
                "start",
            )
            return
        except subprocess.CalledProcessError:
            # The killed postmaster's backends may hold its shared memory for a moment.
            assert time.monotonic() < deadline, (pgdata / "log").read_text()[-2000:]
            time.sleep(0.5)


def stop_postgres(pgdata: Path) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):
        pg_ctl(pgdata, "-m", "immediate", "stop")


def new_account() -> dict[str, Any]:
    return {
        "external_ref": f"O-{uuid.uuid4().hex[:12]}",
        "segment": "gold",
        "channel": "store",
        "customer": {"name": "Ann Lee", "email": "ann@example.com"},
    }


@dataclass
class Load:
    """Commands sent back to back from a thread; what each got."""

    base: str
    headers: dict[str, str]
    acknowledged: list[str] = field(default_factory=list)
    answers: list[tuple[float, int, dict[str, str], str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=ANSWER_WITHIN_S) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    r = client.post("/v1/accounts", json=new_account(), headers=self.headers)
                except httpx.HTTPError as e:  # a timeout: no answer within the bound
                    self.errors.append(e)
                    continue
                self.answers.append((sent, r.status_code, dict(r.headers), r.text))
                if r.status_code == 201:
                    self.acknowledged.append(r.json()["id"])


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["type"] == "urn:crmledger:problem:unavailable"


@pytest.fixture
def served() -> Iterator[tuple[str, Path]]:
    """`crmledger serve` on the embedded PostgreSQL and broker of a fresh home."""
    with fresh_home() as home:
        port = free_port()
        child = start_serve(home, port)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(child, base)
            yield base, home / "postgres"
        finally:
            stop_serve(child)
            stop_postgres(home / "postgres")


@pytest.mark.slow
def test_a_killed_postgres_gets_fast_503s_and_the_ledger_recovers_with_every_command_kept(
    served: tuple[str, Path],
) -> None:
    base, pgdata = served
    staff = {"Authorization": f"Bearer {issue_token(JWT_SECRET, 'cs', ['customer_service'])}"}
    auditor = {"Authorization": f"Bearer {issue_token(JWT_SECRET, 'au', ['auditor'])}"}
    load = Load(base, staff)
    loader = threading.Thread(target=load.run)
    loader.start()
    try:
        while len(load.acknowledged) < 20:
            time.sleep(0.05)
        some_account = load.acknowledged[0]
        psutil.Process(postmaster_pid(pgdata)).kill()
        killed_at = time.monotonic()

        with httpx.Client(base_url=base, timeout=ANSWER_WITHIN_S) as client:
            # Every kind of request, more than once: reads, commands, verify, readiness.
            for _ in range(3):
                assert_unavailable(client.get(f"/v1/accounts/{some_account}", headers=staff))
                assert_unavailable(client.post("/v1/accounts", json=new_account(), headers=staff))
                # On an account this process holds in memory: run on the loop, saved in vain.
                visit = {"type": "visit", "channel": "store", "location": "central"}
                activity = f"/v1/accounts/{some_account}/activities"
                assert_unavailable(client.post(activity, json=visit, headers=staff))
                assert_unavailable(client.get("/v1/audit/verify", headers=auditor))
                assert_unavailable(client.get("/v1/accounts", headers=staff))
                ready = client.get("/readyz")
                assert_unavailable(ready)
                assert ready.json()["detail"].startswith("database unreachable")
                assert client.get("/healthz").status_code == 200

        restart_postgres(pgdata)
        with httpx.Client(base_url=base, timeout=ANSWER_WITHIN_S) as client:
            deadline = time.monotonic() + 20
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "not ready again after PostgreSQL returned"
                time.sleep(0.1)
            acknowledged_before = len(load.acknowledged)
            while len(load.acknowledged) <= acknowledged_before:
                assert time.monotonic() < deadline, "commands did not succeed again"
                time.sleep(0.1)
    finally:
        load.stop.set()
        loader.join(30)

    # Every command of the load was answered within the bound: acknowledged
    # before the kill and after the return, a 503 problem with Retry-After between.
    assert not load.errors
    during = [a for a in load.answers if a[0] > killed_at and a[1] != 201]
    assert during, "the load saw the outage"
    for _, status, headers, text in load.answers:
        assert status in (201, 503), text
        if status == 503:
            assert headers["content-type"] == "application/problem+json"
            assert "retry-after" in headers
    with httpx.Client(base_url=base, timeout=ANSWER_WITHIN_S) as client:
        for account_id in load.acknowledged:
            assert client.get(f"/v1/accounts/{account_id}", headers=staff).status_code == 200
        # The refused activities left nothing; the same command is taken again now.
        first = client.get(f"/v1/accounts/{some_account}", headers=staff).json()
        assert first["version"] == 1
        visit = {"type": "visit", "channel": "store", "location": "central"}
        again = client.post(f"/v1/accounts/{some_account}/activities", json=visit, headers=staff)
        assert again.status_code == 201 and again.json()["version"] == 2
        assert client.get("/v1/audit/verify", headers=auditor).json()["ok"] is True
        # The background side came back too: every role runs, and the read models
        # (relay, broker, projector) caught up with the commands after the return.
        admin = {"Authorization": f"Bearer {issue_token(JWT_SECRET, 'ad', ['admin'])}"}
        deadline = time.monotonic() + 30
        while True:
            ready = client.get("/readyz").json()
            models = client.get("/v1/admin/projections", headers=admin).json()
            if ready["status"] == "ready" and all(m["lag"] == 0 for m in models):
                break
            assert time.monotonic() < deadline, (ready, models)
            time.sleep(0.2)


def test_readyz_says_why_quickly_and_healthz_stays_a_liveness_check(services: Services) -> None:
    dead = FailFastPool(
        f"postgresql://postgres@127.0.0.1:{free_port()}/test",
        min_size=1,
        timeout=1.0,
        reconnect_timeout=RECONNECT_WINDOW,
        open=True,
    )
    try:
        with TestClient(create_app(dataclasses.replace(services, pool=dead))) as client:
            ready = client.get("/readyz")
            assert_unavailable(ready)
            assert ready.json()["detail"].startswith("database unreachable: connection")
            assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        dead.close()
