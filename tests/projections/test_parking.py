"""What the projector parks and what it raises; the relay's marker read defensively."""

from __future__ import annotations

from decimal import InvalidOperation
from uuid import uuid4

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from projections.parking import UNREADABLE, describe, is_transient, unreadable_marker


@pytest.mark.parametrize(
    "error",
    [
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        psycopg.IntegrityError("duplicate"),
        OverflowError("date value out of range"),
        ValueError("Invalid isoformat string"),
        KeyError("segment"),
        InvalidOperation(),
    ],
)
def test_an_error_of_the_event_is_parked(error: Exception) -> None:
    assert not is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.UndefinedTable("relation does not exist"),
        PoolTimeout("couldn't get a connection"),
        ConnectionRefusedError(),
    ],
)
def test_an_error_of_the_database_is_raised_not_parked(error: Exception) -> None:
    # Parking on these would set aside every event an outage touches.
    assert is_transient(error)


def test_a_parked_error_says_what_failed_in_few_words() -> None:
    assert describe(KeyError("segment")) == ("KeyError", "missing 'segment'")
    assert describe(ValueError("x" * 2000))[1] == "x" * 500


def test_the_relays_marker_is_read_whatever_it_lacks() -> None:
    account = uuid4()
    full = {
        "type": "crmledger.EventUnreadable",
        "subject": str(account),
        "position": "42",
        "hash": "ab" * 32,
        "data": {"error": "JSONDecodeError: unexpected end of data"},
    }
    marker = unreadable_marker(full)
    assert marker is not None
    assert (marker.position, marker.account_id, marker.reason) == (42, account, UNREADABLE)
    assert "ab" * 32 in marker.error and "JSONDecodeError" in marker.error
    # Only in the data, the subject not an account: still parked by position.
    sparse = unreadable_marker(
        {"type": "crmledger.EventUnreadable", "subject": "?", "data": {"position": 7}}
    )
    assert sparse is not None and (sparse.position, sparse.account_id) == (7, None)
    # No position anywhere, or none a bigint holds: nothing to park it at.
    assert unreadable_marker({"type": "crmledger.EventUnreadable", "data": "x"}) is None
    assert unreadable_marker({"position": 2**63}) is None
