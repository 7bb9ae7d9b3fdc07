"""Run `crmledger serve` in child processes on the benchmark's ledger, one role each or all.

As in production (docs/design.md: each role its own process), the API scales by
replicas: `api_replicas` starts several `serve --only api` processes on one
ledger, and the load client spreads its connections over them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx

from infra.broker import EMBEDDED_SESSION_TIMEOUT_MS
from infra.wiring import Services


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(services: Services, *roles: str, kafka: str | None = None) -> Iterator[str]:
    """One role (all when none is named) in a child process; yields the API's URL.

    Without the API role nothing answers on the URL, and this returns at once.
    """
    settings = services.settings
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="crmledger-serve-") as home:
        env = {
            **os.environ,
            "CRMLEDGER_DATABASE_URL": services.database_url,
            "CRMLEDGER_DATABASE_SCHEMA": settings.database_schema,
            "CRMLEDGER_READMODEL_SCHEMA": settings.readmodel_schema,
            "CRMLEDGER_JWT_SECRET": services.jwt_secret or "",
            "CRMLEDGER_MASTER_KEY": settings.master_key.get_secret_value()
            if settings.master_key
            else "",
            "CRMLEDGER_HOME": home,
            "CRMLEDGER_POOL_SIZE": "10",
        }
        if kafka:
            # The benchmarks' broker is an embedded Tansu: consumers join it in
            # half their session timeout, so keep the embedded default's.
            env["CRMLEDGER_KAFKA_BOOTSTRAP"] = kafka
            env["CRMLEDGER_KAFKA_SESSION_TIMEOUT_MS"] = str(EMBEDDED_SESSION_TIMEOUT_MS)
        command = [sys.executable, "-m", "crmledger", "serve", "--port", str(port)]
        if roles:
            (role,) = roles
            command += ["--only", role]
        child = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while roles in ((), ("api",)):
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError("the API did not start")
                time.sleep(0.2)
            yield url
        finally:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


@contextmanager
def api_replicas(services: Services, n: int) -> Iterator[list[str]]:
    """`n` API processes on the same ledger; yields their URLs."""
    with ExitStack() as stack:
        yield [stack.enter_context(serving(services, "api")) for _ in range(n)]
