"""Which failures park a message and which are the infrastructure's, to be retried."""

from __future__ import annotations

import eventsourcing.persistence as es
import psycopg
import pytest
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from psycopg_pool import PoolTimeout

from consumers.dead_letters import dead_letter_reason, error_detail, is_infrastructure
from infra.database import DatabaseUnavailable


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("server closed the connection"),
        psycopg.errors.QueryCanceled("statement timeout"),
        psycopg.InterfaceError("the connection is closed"),
        PoolTimeout("couldn't get a connection after 5.00 sec"),
        DatabaseUnavailable("the database is unreachable"),
        psycopg.errors.LockNotAvailable("lock timeout"),
        es.OperationalError("server closed the connection"),
        es.InterfaceError("the connection is closed"),
        KafkaTimeoutError("no broker"),
        KafkaConnectionError("socket disconnected"),
        ConnectionRefusedError(),
        TimeoutError(),
    ],
)
def test_an_outage_is_retried_never_dead_lettered(error: Exception) -> None:
    assert is_infrastructure(error)
    assert dead_letter_reason(error) is None


@pytest.mark.parametrize(
    "error",
    [
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        es.DataError("invalid byte sequence"),
        es.ProgrammingError("cannot adapt type"),
        MessageSizeTooLargeError("too large"),
        KeyError("customer"),
        RecursionError(),
    ],
)
def test_any_other_error_parks_the_message_as_unexpected(error: Exception) -> None:
    assert not is_infrastructure(error)
    assert dead_letter_reason(error) == "unexpected_error"


def test_an_unexpected_error_names_its_type() -> None:
    assert error_detail(KeyError("customer")) == "KeyError: 'customer'"
