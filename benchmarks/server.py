"""Run `crmledger serve` in child processes on the benchmark's ledger, one role each or all.

As in production (docs/design.md: each role its own process), the API scales by
replicas: `api_replicas` starts several `serve --only api` processes on one
ledger, and the load client spreads its connections over them.

A child never fails silently: its output goes to a log file, and a child that
exits or does not become ready raises with the tail of that log. Readiness is
polled (the API's /healthz; a background role's start-up lines), with a
generous deadline (CRMLEDGER_BENCH_START_S, 300 s by default) for a slow or
busy machine.
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
from pathlib import Path

import httpx

from infra.broker import EMBEDDED_SESSION_TIMEOUT_MS
from infra.wiring import Services

START_S = float(os.environ.get("CRMLEDGER_BENCH_START_S", "300"))
# The pool size of each child: the API's budget (infra/connection_budget.py).
POOL_SIZE = 10
TAIL_LINES = 40
# What `serve` prints once its services are open, and once its broker roles start.
_OPENED, _STARTED = "database:", "roles:"
_BROKER_ROLES = {"relay", "ingest", "projector"}


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChildFailed(RuntimeError):
    """A served child exited or did not become ready; the message ends with its output."""


class Served:
    """One `serve` child: its API's URL, its application_name, and its output."""

    def __init__(self, child: subprocess.Popen[bytes], url: str, log: Path, name: str) -> None:
        self.child = child
        self.url = url
        self.log = log
        self.name = name  # what its connections say in pg_stat_activity

    def output(self) -> str:
        """The tail of what the child printed."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        return "\n".join(lines[-TAIL_LINES:]) or "(no output)"

    def failed(self, why: str) -> ChildFailed:
        """An error saying `why`, with the child's exit status and output."""
        status = self.child.poll()
        state = "running" if status is None else f"exited with status {status}"
        return ChildFailed(f"{self.name}: {why} ({state}); its last output:\n{self.output()}")

    def check(self) -> None:
        """Raise ChildFailed if the child has exited."""
        if self.child.poll() is not None:
            raise self.failed("the process ended")

    def wait_ready(self, roles: tuple[str, ...], deadline_s: float = START_S) -> None:
        """Poll until the child serves (API) or has started its roles; raise with its output."""
        deadline = time.monotonic() + deadline_s
        while not self._ready(roles):
            self.check()
            if time.monotonic() > deadline:
                raise self.failed(f"not ready within {deadline_s:g} s")
            time.sleep(0.2)

    def _ready(self, roles: tuple[str, ...]) -> bool:
        if roles in ((), ("api",)):
            try:
                return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return _OPENED in text and (_STARTED in text or not _BROKER_ROLES & set(roles))


def bench_name(services: Services) -> str:
    """The application_name of the benchmark's connections, which its children's start with."""
    return services.settings.database_schema


@contextmanager
def serving(services: Services, *roles: str, kafka: str | None = None) -> Iterator[Served]:
    """One role (all when none is named) in a child process, started and ready.

    Without the API role nothing answers on the URL; the child counts as ready
    once it has started its roles.
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
            "CRMLEDGER_SIGNING_KEY": settings.signing_key.get_secret_value()
            if settings.signing_key
            else "",
            "CRMLEDGER_MASTER_KEY": settings.master_key.get_secret_value()
            if settings.master_key
            else "",
            "CRMLEDGER_HOME": home,
            "CRMLEDGER_POOL_SIZE": str(POOL_SIZE),
            # One name per child (replicas share a role): `<schema>-<port>-<role>`.
            "CRMLEDGER_APPLICATION_NAME": f"{bench_name(services)}-{port}",
            # A wide console: rich wraps its lines at 80 columns in a file.
            "COLUMNS": "200",
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
        log = Path(home) / "serve.log"
        with log.open("wb") as out:
            child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        name = f"{bench_name(services)}-{port}-{roles[0] if roles else 'serve'}"
        served = Served(child, f"http://127.0.0.1:{port}", log, name)
        try:
            served.wait_ready(roles)
            yield served
        finally:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)


@contextmanager
def api_replicas(services: Services, n: int) -> Iterator[list[str]]:
    """`n` API processes on the same ledger; yields their URLs."""
    with ExitStack() as stack:
        yield [stack.enter_context(serving(services, "api")).url for _ in range(n)]
