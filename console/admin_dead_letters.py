"""The admin pages' dead letters: the inbound messages the ingest could not apply, and replay.

Listing and replaying are `crmledger dlq list` and `dlq replay`'s own functions
(consumers/dead_letter_replay.py), so a letter goes back at most once whoever
replays it, from the page or the command line. When it was dead-lettered
comes from `inbound_dead_lettered`, which the ingest writes once the broker
acknowledged the letter (a letter a pruned receipt no longer names shows none).

Both need the broker. The page looks for it quickly first (the configured
cluster, or the embedded broker another process of this home runs: the page
never starts one, which would be empty) and, when it is away, says so in
words with a 503 instead of waiting out the client's own timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from kafka.errors import KafkaError

from api.auth import Permission, Principal
from console.admin import admin_tabs
from console.rendering import ConsoleRoute, flash, render
from console.staff import CheckedForm, Staff, permit, services_of
from consumers.dead_letter_replay import (
    DeadLetter,
    ReplayReport,
    list_dead_letters,
    replay_dead_letters,
)
from domain.errors import NotFound
from infra.broker import ADDRESS_FILE, cluster_id
from infra.settings import Settings
from infra.topics import INTEGRATION_EVENTS
from infra.wiring import Services

router = APIRouter(
    prefix="/console/admin/dead-letters", route_class=ConsoleRoute, include_in_schema=False
)

PROBE_MS = 3000  # how long the page looks for the broker before it says it is away
LIST_SECONDS = 15.0
SHOWN = 200  # letters a page lists, newest first
PREVIEW = 160  # characters of a payload shown
BROKER_ERRORS = (KafkaError, TimeoutError, OSError, ValueError)
T = TypeVar("T")


class BrokerAway(Exception):
    """The broker cannot be reached: nothing can be listed or replayed now."""


@dataclass(frozen=True)
class Letter:
    """A dead letter as the page shows it."""

    letter: DeadLetter
    sent_at: datetime | None
    preview: str
    size: int


def preview(value: bytes | None) -> tuple[str, int]:
    """The start of a payload as text (undecodable bytes and control characters replaced)."""
    if value is None:
        return "", 0
    # A character is at most 4 bytes: that many decode to at least PREVIEW characters.
    text = value[: PREVIEW * 4].decode(errors="replace")
    shown = "".join(c if c.isprintable() else "\ufffd" for c in text[:PREVIEW])
    cut = len(text) > PREVIEW or len(value) > PREVIEW * 4
    return shown + ("…" if cut else ""), len(value)


def broker_of(settings: Settings) -> tuple[str, str]:
    """The broker's address and cluster id, or BrokerAway in words."""
    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        try:
            bootstrap = (Path(settings.home) / ADDRESS_FILE).read_text().strip()
        except OSError:
            bootstrap = ""
        if not bootstrap:
            raise BrokerAway(
                "no Kafka broker runs for this ledger: CRMLEDGER_KAFKA_BOOTSTRAP is not set"
                " and no embedded broker was started on this home"
            )
    try:
        return bootstrap, cluster_id(bootstrap, timeout_ms=PROBE_MS)
    except BROKER_ERRORS as e:
        reason = f"the Kafka broker at {bootstrap} does not answer ({type(e).__name__})"
        raise BrokerAway(reason) from e


def at_broker(settings: Settings, call: Callable[[str], T]) -> tuple[str, T]:
    """The broker's cluster id and `call(bootstrap)`'s answer; BrokerAway in words if it fails."""
    bootstrap, cluster = broker_of(settings)
    try:
        return cluster, call(bootstrap)
    except BROKER_ERRORS as e:
        raise BrokerAway(f"the Kafka broker stopped answering ({type(e).__name__})") from e


def _sent_times(services: Services, cluster: str) -> dict[tuple[int, int], datetime]:
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT dlq_partition, dlq_offset, sent_at FROM inbound_dead_lettered"
            " WHERE cluster_id = %s",
            (cluster,),
        ).fetchall()
    return {(int(p), int(o)): at for p, o, at in rows}


def _away_page(request: Request, user: Principal, reason: str) -> Response:
    return render(request, "admin_dead_letters.html", user, 503, tabs=admin_tabs(user), away=reason)


@router.get("", name="console_admin_dead_letters")
def dead_letters(
    request: Request, user: Staff, error: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    """The dead letters, newest first: when, why, from where, a payload preview, replayed or not."""
    permit(user, Permission.OPERATE)
    services = services_of(request)
    try:
        cluster, letters = at_broker(
            services.settings, lambda b: list_dead_letters(services, b, timeout=LIST_SECONDS)
        )
    except BrokerAway as e:
        return _away_page(request, user, str(e))
    errors = sorted({x.error for x in letters})
    error = error if error in errors else ""  # a reason no letter has: all of them
    chosen = [x for x in letters if not error or x.error == error]
    times = _sent_times(services, cluster)
    shown = []
    for x in chosen:
        text, size = preview(x.value)
        shown.append(Letter(x, times.get((x.partition, x.offset)), text, size))
    # Newest first: by when it was dead-lettered, else by offset.
    shown.sort(key=lambda s: (s.sent_at is not None, s.sent_at, s.letter.offset), reverse=True)
    return render(
        request,
        "admin_dead_letters.html",
        user,
        tabs=admin_tabs(user),
        letters=shown[:SHOWN],
        total=len(chosen),
        replayable=sum(1 for x in chosen if x.replayed_at is None and not x.truncated),
        errors=errors,
        error=error,
        shown_max=SHOWN,
    )


def _replayed(report: ReplayReport) -> str:
    count = len(report.replayed)
    words = f"Replayed {count} dead letter{'s' if count != 1 else ''} to {INTEGRATION_EVENTS}"
    words += f" ({report.skipped} replayed before"
    if report.truncated:
        words += f", {report.truncated} truncated: not replayable"
    return words + ")."


@router.post("/replay", name="console_admin_replay_all")
def replay_all(request: Request, user: Staff, form: CheckedForm) -> Response:
    """Replay every dead letter not replayed before (of one error, when the list was filtered)."""
    permit(user, Permission.OPERATE)
    services = services_of(request)
    error = form.get("error")
    error = error if isinstance(error, str) and error else None
    try:
        _, report = at_broker(
            services.settings, lambda b: replay_dead_letters(services, b, error=error)
        )
    except BrokerAway as e:
        return _away_page(request, user, str(e))
    flash(request, _replayed(report))
    back = "/console/admin/dead-letters" + (f"?{urlencode({'error': error})}" if error else "")
    return RedirectResponse(back, status_code=303)


@router.post("/{partition}/{offset}/replay", name="console_admin_replay_one")
def replay_one(
    request: Request, user: Staff, partition: int, offset: int, form: CheckedForm
) -> Response:
    """Replay the dead letter at this partition and offset, unless it was replayed before."""
    permit(user, Permission.OPERATE)
    services = services_of(request)
    try:
        _, report = at_broker(
            services.settings, lambda b: replay_dead_letters(services, b, at=(partition, offset))
        )
    except BrokerAway as e:
        return _away_page(request, user, str(e))
    if not (report.replayed or report.skipped or report.truncated):
        raise NotFound(f"no dead letter at partition {partition}, offset {offset}")
    flash(request, _replayed(report))
    return RedirectResponse("/console/admin/dead-letters", status_code=303)
