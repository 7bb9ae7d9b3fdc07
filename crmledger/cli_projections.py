"""`crmledger projections`: the read models' status, rebuilds and parked events.

Rebuilds replay the event store with a progress bar; parked events are the
ones a read model set aside (projections/parking.py): listed, and retried
from the store, one or all.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import Progress

from crmledger.cli_support import command_services, console, fail
from projections.catalog import READ_MODELS
from projections.parking import ParkedEvent

projections = typer.Typer(help="The read models.", no_args_is_help=True)


@projections.command("status")
def projections_status() -> None:
    """Show each read model's position and lag behind the ledger."""
    from rich.table import Table

    with command_services() as services:
        rows = services.readmodels.status()
    table = Table("read model", "position", "ledger", "lag", "parked")
    for row in rows:
        table.add_row(
            row["name"],
            str(row["position"]),
            str(row["ledger_position"]),
            str(row["lag"]),
            str(row.get("parked", 0)),
        )
    console.print(table)


@projections.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="the read model to rebuild")] = None,
    all_: Annotated[bool, typer.Option("--all", help="rebuild every read model")] = False,
) -> None:
    """Rebuild read models from the event store, with a progress bar."""
    if (name is None) == (not all_):
        fail("name one read model or give --all")
    names = list(READ_MODELS) if all_ else [name or ""]
    for each in names:
        _known_read_model(each)
    with command_services() as services:
        total = services.ledger.recorder.max_notification_id() or 0
        with Progress(console=console) as progress:
            task = progress.add_task(f"rebuilding {', '.join(names)}", total=total)
            started = time.perf_counter()
            outcome = services.readmodels.rebuild(
                *names, progress=lambda n: progress.advance(task, n)
            )
            progress.update(task, completed=total)
        seconds = time.perf_counter() - started
        console.print(f"{', '.join(names)}: {outcome.events} events in {seconds:.1f} s")
        positions = outcome.positions()
        if positions:
            shown = ", ".join(map(str, positions[:50])) + (" ..." if len(positions) > 50 else "")
            console.print(
                f"parked {len(positions)} events it could not apply, at positions {shown}"
                " (crmledger projections parked)",
                soft_wrap=True,
            )


def _known_read_model(name: str | None) -> None:
    if name is not None and name not in READ_MODELS:
        fail(f"no read model {name!r}; known: {', '.join(READ_MODELS)}")


def _print_parked(rows: list[ParkedEvent], verb: str = "parked") -> None:
    for r in rows:
        console.print(
            f"{r.projection} position {r.position} (partition {r.partition}, account"
            f" {r.account_id}, {r.event_type or 'unknown type'}): {verb}, {r.reason}:"
            f" {r.error_class}: {r.error} (attempts {r.attempts},"
            f" parked {r.parked_at:%Y-%m-%d %H:%M:%S})",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )


@projections.command("parked")
def projections_parked(
    read_model: Annotated[str | None, typer.Option(help="only this read model's")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many")] = 1000,
) -> None:
    """List the events the read models set aside because they could not apply them."""
    _known_read_model(read_model)
    with command_services() as services:
        rows = services.readmodels.store.parked(read_model, limit=limit)
    _print_parked(rows)
    console.print(f"{len(rows)} parked events")


@projections.command("retry")
def projections_retry(
    position: Annotated[int | None, typer.Argument(help="the parked event's position")] = None,
    read_model: Annotated[str | None, typer.Option(help="only this read model's")] = None,
) -> None:
    """Apply parked events again (every one, or the one at POSITION); exit 1 if any fails again."""
    _known_read_model(read_model)
    with command_services() as services:
        if position is not None and not services.readmodels.store.parked(read_model, position):
            fail(f"no parked event at position {position}")
        applied, still = services.readmodels.retry(read_model, position)
    _print_parked(applied, "applied")
    _print_parked(still, "still parked")
    console.print(f"{len(applied)} applied, {len(still)} still parked")
    if still:
        raise typer.Exit(1)
