"""Child servers that die with the process that started them, and the pids of those that did not.

`spawn` starts a server (the embedded broker) in its own session, so a Ctrl-C
in the terminal reaches our process first, which stops its workers and then
the server. On Linux the child also gets PR_SET_PDEATHSIG (SIGKILL): the
kernel kills it when its parent dies, even by SIGKILL. The kernel means the
parent *thread*, so children are spawned from one thread that lives as long as
the process. Elsewhere, and for servers we did not spawn (PostgreSQL detaches
itself), the pid files in CRMLEDGER_HOME let the next run stop what a killed
run left behind (infra/broker.py, infra/embedded_postgres.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil

_PR_SET_PDEATHSIG = 1
# One thread for every spawn: it lives until the interpreter shuts down.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmledger-spawner")


def _die_with_parent_hook() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    # Resolved here, before any fork: the hook runs between fork and exec and
    # must not import or allocate much.
    prctl = ctypes.CDLL(name, use_errno=True).prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return hook


_hook = _die_with_parent_hook()


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """Start `command` in its own session, killed by the kernel if this process dies."""

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, start_new_session=True, preexec_fn=_hook, **popen)

    return _spawner.submit(start).result()


def process_alive(pid: int) -> bool:
    """True when `pid` is a running process (a zombie, dead but not reaped, is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_process(pid: int, named: str, timeout: float = 5.0) -> bool:
    """Stop process `pid` if it is alive and its command names `named`; True if it was stopped.

    The name check keeps a recycled pid (another program's now) from being killed.
    """
    try:
        process = psutil.Process(pid)
        if not any(named in part for part in [*process.cmdline()[:1], process.name()]):
            return False
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    except psutil.Error:
        return False
    return True
