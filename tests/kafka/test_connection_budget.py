"""Each role's process holds no more PostgreSQL connections than its budget, under load.

The roles run as production runs them, one `crmledger serve --only ROLE` child
each, on a real PostgreSQL and an embedded broker; commands over HTTP and
inbound messages flow through every role while the connections are counted
twice: by application_name in pg_stat_activity, and by each child's own
sockets to the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from kafka import KafkaProducer

from api.auth import issue_token
from crmledger.process import ROLES
from infra.connection_budget import BACKGROUND, Budget, process_budget, role_budget
from infra.wiring import bootstrap
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Stack, cloud_event, send, wait_until
from tests.serving import free_port
from tests.support import JWT_SECRET, TEST_DATABASE_URL, drop_schema, env_for, make_settings

POOL_SIZE = 3  # small, so the API's load fills its pools
CLIENTS = 16  # more request threads than the API's budget
LOAD_S = 6.0
INBOUND = 60


@contextmanager
def role(
    stack: Stack, name: str, base: str, tmp: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`serve --only name` on the stack's ledger and broker; yields the child and its URL."""
    port = free_port()
    log = tmp / f"{name}.log"
    env = {
        **os.environ,
        **env_for(stack.settings),
        "CRMLEDGER_HOME": str(tmp / f"home-{name}"),
        "CRMLEDGER_KAFKA_BOOTSTRAP": stack.bootstrap,
        "CRMLEDGER_KAFKA_PARTITIONS": str(stack.settings.kafka_partitions),
        "CRMLEDGER_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "CRMLEDGER_POOL_SIZE": str(POOL_SIZE),
        "CRMLEDGER_APPLICATION_NAME": base,
        "COLUMNS": "200",
    }
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "crmledger", "serve", "--port", str(port), "--only", name],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert child.poll() is None, f"{name} exited:\n{log.read_text(errors='replace')}"
        if name == "api":
            try:
                return httpx.get(url + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        text = log.read_text(errors="replace")
        return "database:" in text and ("roles:" in text or name == "verifier")

    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert time.monotonic() < deadline, f"{name} not ready:\n{log.read_text()}"
            time.sleep(0.2)
        yield child, url
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


class Counter:
    """The most connections each role held at once, by name and by its process's sockets."""

    def __init__(self, base: str, children: dict[str, int]) -> None:
        self.base = base
        self.children = children  # role -> pid
        self.by_name: dict[str, int] = {}
        self.by_socket: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Counter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _sample(self) -> None:
        query = (
            "SELECT application_name, count(*) FROM pg_stat_activity"
            " WHERE application_name LIKE %s GROUP BY 1"
        )
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
            while not self._stop.is_set():
                for name, count in conn.execute(query, (self.base + "-%",)).fetchall():
                    key = name.removeprefix(self.base + "-")
                    self.by_name[key] = max(self.by_name.get(key, 0), count)
                for key, pid in self.children.items():
                    sockets = psutil.Process(pid).net_connections(kind="tcp")
                    count = sum(1 for s in sockets if s.raddr and s.raddr.port == 5432)
                    self.by_socket[key] = max(self.by_socket.get(key, 0), count)
                time.sleep(0.05)


def load_api(url: str, seconds: float) -> tuple[list[str], dict[int, int]]:
    """CLIENTS threads commanding as fast as they can; the accounts opened and the statuses."""
    token = issue_token(JWT_SECRET, "budget", ["customer_service"])
    headers = {"Authorization": f"Bearer {token}"}
    opened: list[str] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            body = {"segment": "gold", "channel": "store", "customer": {"name": f"Load {i}"}}
            answer = http.post("/v1/accounts", json=body)
            with lock:
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code != 201:
                return
            account = answer.json()["id"]
            with lock:
                opened.append(account)
            visit = {"type": "visit", "channel": "store", "location": "central"}
            while time.monotonic() < deadline:
                answer = http.post(f"/v1/accounts/{account}/activities", json=visit)
                with lock:
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return opened, statuses


def publish_inbound(address: str, n: int) -> None:
    """`n` accounts opened by an integrating system, each with a visit."""
    producer = KafkaProducer(bootstrap_servers=address, linger_ms=5)
    for i in range(n):
        ref = f"budget-{i}"
        data = {"segment": "gold", "channel": "store", "customer": {"name": f"Inbound {i}"}}
        send(producer, ref.encode(), cloud_event("account_opened", f"ext:{ref}", data))
        visit = {"channel": "online", "location": "web"}
        send(producer, ref.encode(), cloud_event("visit", f"ext:{ref}", visit))
    producer.flush()
    producer.close()


@pytest.mark.slow
def test_every_role_stays_within_its_connection_budget_under_load(
    stack: Stack, tmp_path: Path
) -> None:
    base = f"t{uuid.uuid4().hex[:10]}"
    with ExitStack() as started:
        children = {r: started.enter_context(role(stack, r, base, tmp_path)) for r in ROLES}
        pids = {r: child.pid for r, (child, _) in children.items()}
        with Counter(base, pids) as counter:
            publish_inbound(stack.bootstrap, INBOUND)
            opened, statuses = load_api(children["api"][1], LOAD_S)
            accounts = f"SELECT count(*) FROM {stack.settings.readmodel_schema}.accounts"

            def projected() -> bool:
                with psycopg.connect(TEST_DATABASE_URL) as conn:
                    row = conn.execute(accounts.encode()).fetchone()
                return row is not None and row[0] >= len(opened) + INBOUND

            # Every role worked: the inbound accounts were ingested, and every
            # account was relayed and projected, while the connections were counted.
            wait_until(projected, timeout=120, every=0.2)
        for r, (child, _) in children.items():
            assert child.poll() is None, f"{r} exited"

    # Opening and recording an activity both answer 201; a full pool may answer 503.
    assert opened and statuses.get(201, 0) > CLIENTS, statuses
    assert set(statuses) <= {201, 503}, statuses
    for r in ROLES:
        budget = role_budget(r, POOL_SIZE).total
        # Named: every role's connections say whose they are.
        assert 1 <= counter.by_name.get(r, 0) <= budget, (r, counter.by_name, budget)
        assert counter.by_socket[r] <= budget, (r, counter.by_socket, budget)
    # The load reached the API's pools: more than a background role may hold.
    assert counter.by_socket["api"] > role_budget("relay", POOL_SIZE).total, counter.by_socket


def test_a_process_opens_pools_of_its_roles_size_named_for_them() -> None:
    settings = make_settings(pool_size=4, application_name="budgeted")
    services = bootstrap(settings, roles={"relay"})
    try:
        relay = role_budget("relay", 4)
        assert services.pool.max_size == relay.ledger
        assert services.ledger.recorder.datastore.pool.max_size == relay.store
        with psycopg.connect(TEST_DATABASE_URL) as conn:
            names = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity"
                " WHERE application_name LIKE 'budgeted%' GROUP BY 1"
            ).fetchall()
        # At rest: one connection in each pool, both named for the role.
        assert names == [("budgeted-relay", 2)]
    finally:
        services.close()
        drop_schema(settings.database_schema)


def test_serve_with_every_role_holds_the_sum_of_their_budgets() -> None:
    every = process_budget(set(ROLES), 5)
    assert every == sum((role_budget(r, 5) for r in ROLES), Budget(0, 0))
    # docs/design.md: 2 x CRMLEDGER_POOL_SIZE and the background roles' budgets.
    background = sum(BACKGROUND[r].total for r in ROLES if r != "api")
    assert every.total == 2 * 5 + background
    assert process_budget({"projector"}, 50).total == 3  # a background role ignores the size
