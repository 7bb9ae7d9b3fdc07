"""The command path: commands on the cached account, rerun when another process wrote since;
commands awaited on an event loop, their access-log row committed with their events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from uuid import UUID

import pytest

from domain import activities as act
from domain.account import CustomerAccount
from domain.errors import AccountClosed, StaleVersion
from infra.access_log import read_row
from infra.wiring import Services, bootstrap
from tests.support import open_plain

NOW = datetime.now(UTC)
META = {"actor": "t"}
VISIT = act.Visit("store", "central")


@pytest.fixture
def other(services: Services) -> Iterator[Services]:
    """Another process on the same ledger."""
    second = bootstrap(services.settings)
    yield second
    second.close()


def cached(services: Services, name: str = "Path Person") -> CustomerAccount:
    account = open_plain(services.ledger, name)
    services.ledger.account(account.id)  # in this process's cache
    return account


def visit(services: Services, account_id: UUID, expected: int | None = None) -> CustomerAccount:
    return services.ledger.record_activity(account_id, VISIT, NOW, META, expected)


def awaited(
    services: Services,
    account_id: UUID,
    expected: int | None = None,
    along: Callable[[CustomerAccount], Sequence[object]] | None = None,
) -> CustomerAccount:
    ledger = services.ledger
    verb = lambda: ledger.record_activity(account_id, VISIT, NOW, META, expected)  # noqa: E731
    return asyncio.run(ledger.command_async(verb, account_id, expected, along))


def reads_of(services: Services, account_id: UUID) -> list[str]:
    return [e.what for e in services.access_log.query(account_id=account_id)]


@pytest.mark.parametrize("run", [visit, awaited], ids=["thread", "event loop"])
def test_a_command_after_another_process_wrote_runs_on_the_stored_account(
    services: Services, other: Services, run: Callable[..., CustomerAccount]
) -> None:
    account = cached(services)
    visit(other, account.id)
    visit(other, account.id)

    done = run(services, account.id)

    assert done.version == 4
    assert [e.originator_version for e in services.ledger.history(account.id)] == [1, 2, 3, 4]
    assert services.ledger.verify(account.id).ok


@pytest.mark.parametrize("run", [visit, awaited], ids=["thread", "event loop"])
def test_a_rule_is_judged_on_the_stored_account_not_on_the_cached_one(
    services: Services, other: Services, run: Callable[..., CustomerAccount]
) -> None:
    account = cached(services)
    other.ledger.close_account(account.id, "other", "moved away", NOW, META)

    with pytest.raises(AccountClosed):
        run(services, account.id)
    assert len(services.ledger.history(account.id)) == 2


@pytest.mark.parametrize("run", [visit, awaited], ids=["thread", "event loop"])
def test_if_match_is_checked_against_the_stored_version(
    services: Services, other: Services, run: Callable[..., CustomerAccount]
) -> None:
    account = cached(services)
    visit(other, account.id)  # the store is at 2, this process's cache at 1

    with pytest.raises(StaleVersion):
        run(services, account.id, 1)
    assert run(services, account.id, 2).version == 3


def test_a_commands_access_log_row_commits_with_its_events_or_not_at_all(
    services: Services, other: Services
) -> None:
    account = cached(services)

    def logged(changed: CustomerAccount) -> Sequence[object]:
        return (read_row("clerk", ["customer_service"], changed.id, "activity", ["name"]),)

    awaited(services, account.id, along=logged)
    assert reads_of(services, account.id) == ["activity"]

    other.ledger.close_account(account.id, "other", "moved away", NOW, META)
    with pytest.raises(AccountClosed):
        awaited(services, account.id, along=logged)
    assert reads_of(services, account.id) == ["activity"]  # the refused one showed nothing


def test_an_open_on_the_event_loop_is_saved_with_its_key(services: Services) -> None:
    ledger = services.ledger

    def opening() -> CustomerAccount:
        return ledger.open_account(
            external_ref=None,
            segment="gold",
            service_plan="standard",
            channel="store",
            customer={"name": "Loop Opened"},
            occurred_at=NOW,
            meta=META,
        )

    opened = asyncio.run(ledger.command_async(opening))

    assert ledger.personal_data(ledger.account(opened.id)) == {"name": "Loop Opened"}


def test_access_log_arrays_keep_any_text(services: Services) -> None:
    account = open_plain(services.ledger, "Array Person")
    odd = ["plain", 'quote"d', "back\\slash", "comma,brace{}", "", "ünï cödé", "NULL"]

    services.access_log.record("clerk", odd, account.id, "read", odd)

    (entry,) = services.access_log.query(account_id=account.id)
    assert entry.roles == sorted(odd) and entry.fields == sorted(odd)


def test_a_command_runs_on_the_loop_only_when_its_account_and_key_are_in_memory(
    services: Services, other: Services
) -> None:
    account = cached(services)
    assert services.ledger._in_memory(account.id)
    # Opened by another process: neither the account nor its key is here yet.
    stranger = open_plain(other.ledger, "Elsewhere")
    assert not services.ledger._in_memory(stranger.id)
    assert not services.ledger._in_memory(None)
    done = awaited(services, stranger.id)  # in a thread, which loads the account
    assert done.version == 2 and not services.ledger._in_memory(stranger.id)
    services.ledger.personal_data(done)  # as the command's answer does: its key comes too
    assert services.ledger._in_memory(stranger.id)
