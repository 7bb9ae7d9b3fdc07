"""`crmledger audit`, `dlq` and `retention`: the auditor's export and the operators' jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from consumers.dead_letter_replay import list_dead_letters, replay_dead_letters
from crmledger.cli_proofs import audit_check, audit_proof
from crmledger.cli_support import command_services, console
from infra.broker import kafka_bootstrap
from infra.topics import INTEGRATION_EVENTS

audit = typer.Typer(help="Auditor tools.", no_args_is_help=True)
audit.command("proof")(audit_proof)  # proofs checked without the database: cli_proofs.py
audit.command("check")(audit_check)
dlq = typer.Typer(help="Dead letters of the inbound integration topic.", no_args_is_help=True)
retention = typer.Typer(help="The retention job.", no_args_is_help=True)

OnlyError = Annotated[str | None, typer.Option(help="only dead letters with this error")]


@audit.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="the JSON Lines file to write")],
    after: Annotated[int, typer.Option(help="export events after this position")] = 0,
    actor: Annotated[str, typer.Option(help="who exports, for the access log")] = "cli",
) -> None:
    """Stream the global event log, decrypted, to a JSON Lines file."""
    from api.auth import Principal
    from api.views import audit_events_out

    user = Principal(actor, frozenset({"auditor"}), "audit")
    written = 0
    with command_services() as services:
        last = services.ledger.recorder.max_notification_id() or 0
        with out.open("w") as f, Progress(console=console, transient=True) as progress:
            task = progress.add_task("exporting events", total=max(last - after, 0))
            while True:
                page = services.audit_feed.page(after, 1000)
                for event in audit_events_out(services, page.events, user):
                    f.write(event.model_dump_json() + "\n")
                written += len(page.events)
                progress.advance(task, page.next_after - after)
                if page.next_after == after:
                    break
                after = page.next_after
    console.print(f"exported {written} events to {out} (up to position {after})")


@dlq.command("list")
def dlq_list(
    error: OnlyError = None,
) -> None:
    """Show the dead letters: where, why, where from, and whether replayed."""
    with command_services() as services:
        letters = list_dead_letters(services, kafka_bootstrap(services.settings))
    letters = [x for x in letters if error is None or x.error == error]
    table = Table("partition", "offset", "key", "error", "error_detail", "source", "replayed")
    for x in letters:
        key = "" if x.key is None else x.key.decode(errors="replace")
        replayed = "no" if x.replayed_at is None else f"{x.replayed_at:%Y-%m-%d %H:%M:%S}"
        if x.truncated:
            replayed = "truncated: not replayable"
        if x.replayed_to is not None:
            replayed += f" -> [{x.replayed_to[0]}]@{x.replayed_to[1]}"
        table.add_row(
            str(x.partition), str(x.offset), key, x.error, x.error_detail, x.source, replayed
        )
    console.print(table)
    done = sum(x.replayed_at is not None for x in letters)
    console.print(f"{len(letters)} dead letters, {done} replayed")


@dlq.command("replay")
def dlq_replay(
    error: OnlyError = None,
) -> None:
    """Send dead letters back to the integration topic as they arrived; each one at most once."""
    with command_services() as services:
        report = replay_dead_letters(services, kafka_bootstrap(services.settings), error=error)
    console.print(
        f"replayed {len(report.replayed)} dead letters to {INTEGRATION_EVENTS}"
        f" ({report.skipped} replayed before"
        + (f", {report.truncated} truncated: not replayable" if report.truncated else "")
        + ")"
    )


@retention.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option(help="list what would be erased, erase nothing")] = False,
) -> None:
    """Erase the personal data of accounts closed longer than CRMLEDGER_RETENTION_DAYS."""
    meta = {"actor": "retention-job", "department": "admin", "reason": "retention", "source": "cli"}
    with command_services() as services:
        days = services.settings.retention_days
        erased = services.ledger.erase_expired(days, datetime.now(UTC), meta, dry_run=dry_run)
    verb = "would erase" if dry_run else "erased"
    console.print(f"retention ({days} days): {verb} {len(erased)} accounts")
    for account_id in erased:
        console.print(f"  {account_id}")
