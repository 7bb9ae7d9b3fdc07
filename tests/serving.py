"""`crmledger serve` as a child process on the embedded defaults, for the process-level tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import JWT_SECRET


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_home() -> Iterator[Path]:
    """A CRMLEDGER_HOME (not yet created) outside pytest's base directory, removed after.

    As root the embedded PostgreSQL runs as its own user, which must reach the
    data directory; a pytest session starting elsewhere makes pytest-of-<user>
    private (0700) again, under a server that is starting.
    """
    top = Path(tempfile.mkdtemp(prefix="crmledger-"))
    top.chmod(0o755)
    try:
        yield top / "home"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def embedded_env(home: Path) -> dict[str, str]:
    """The environment of a `crmledger` run on the embedded defaults under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMLEDGER_")}
    env.update(
        {
            "CRMLEDGER_HOME": str(home),
            "CRMLEDGER_JWT_SECRET": JWT_SECRET,
            "CRMLEDGER_KAFKA_SESSION_TIMEOUT_MS": "3000",
        }
    )
    return env


def start_serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    """`crmledger serve` on `home`, its output in a log file beside the home."""
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"serve-{port}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "crmledger", "serve", "--port", str(port)],
            env=embedded_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_ready(child: subprocess.Popen[bytes], base: str, timeout: float = 90) -> None:
    """Wait until the served API says it is ready; fail if the process exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert child.poll() is None, "serve exited"
        assert time.monotonic() < deadline, "serve did not become ready"
        time.sleep(0.2)


def stop_serve(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not leave within a minute."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
