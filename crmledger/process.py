"""The process that runs the roles: api, relay, ingest, projector, verifier, notary, retention.

`crmledger serve` runs them all in one process; `--only ROLE` runs one per
process, as production does (consumers scale by partitions). Background roles
run in worker threads that restart them after failures; the API runs in the
foreground under uvicorn. With no Kafka configured, the first role that needs
it starts the embedded broker and every role of the process shares it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console

from infra.broker import kafka_bootstrap
from infra.wiring import Services
from infra.worker import Worker

log = logging.getLogger(__name__)

ROLES = ("api", "relay", "ingest", "projector", "verifier", "notary")
RETENTION_INTERVAL_S = 24 * 3600


class RetentionJob:
    """Erases expired personal data now and then once a day."""

    def __init__(self, services: Services, interval: float = RETENTION_INTERVAL_S) -> None:
        self._services = services
        self._interval = interval

    def run(self, stop: threading.Event) -> None:
        """Run the retention job until `stop` is set."""
        settings = self._services.settings
        meta = {"actor": "retention-job", "department": "admin", "reason": "retention"}
        while not stop.is_set():
            erased = self._services.ledger.erase_expired(
                settings.retention_days, datetime.now(UTC), {**meta, "source": "job"}
            )
            if erased:
                log.info("retention: erased the personal data of %d accounts", len(erased))
            stop.wait(self._interval)

    def close(self) -> None:
        """Nothing to release: the services belong to the process."""


def start_background(services: Services, roles: set[str], console: Console) -> list[Worker]:
    """Start the background roles among `roles` (and the daily retention job)."""
    from consumers.inbound import start_ingest
    from consumers.projector import start_projector
    from infra.relay import start_relay

    starters: dict[str, Callable[[Services, str | None], Worker]] = {
        "relay": start_relay,
        "ingest": start_ingest,
        "projector": start_projector,
    }
    workers = []
    # The notary's tree and signing need no broker; its checkpoint publisher does.
    wanted = [r for r in ROLES if r in roles and (r in starters or r == "notary")]
    if wanted:
        bootstrap = kafka_bootstrap(services.settings)
        where = "embedded broker" if services.settings.kafka_bootstrap is None else "cluster"
        console.print(f"kafka: {bootstrap} ({where}); roles: {', '.join(wanted)}")
        # No fixed address for an embedded broker: a worker looks it up at each
        # restart, so a broker that stopped is started again (infra/relay.py).
        address = bootstrap if services.settings.kafka_bootstrap else None
        workers = [starters[role](services, address) for role in wanted if role in starters]
        if "notary" in wanted:
            from infra.notary import start_notary

            workers.extend(start_notary(services, address))
    if "api" in roles:
        workers.append(Worker("retention", lambda: RetentionJob(services)).start())
    if "verifier" in roles:
        # No broker needed: it reads the ledger only (infra/verifier.py).
        from infra.verifier import start_verifier

        workers.append(start_verifier(services))
    return workers


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM: the foreground of a process without the API."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
