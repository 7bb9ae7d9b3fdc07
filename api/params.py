"""Query parameter types that several routes share.

A moment in a query (`from`, `to`, `as_of`) must carry a time zone offset: a
naive `2026-04-01T00:00` could mean any of 26 hours of the world, and the
ledger records every moment in UTC. Without one the request is refused as
invalid input, 422 (the same status and problem type, `invalid-request`, as
any other query parameter that does not parse), never guessed as UTC. The
year is bounded (1900 to 9000, as report dates are) so that no comparison or
conversion of the value can overflow.

A day in a query (a report's `from` and `to`) is a plain date, 2026-04-01:
days are those of the reporting time zone, and a time or an offset given with
one would be silently dropped, so it is refused (422) instead.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _aware_and_within_range(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("needs a time zone offset, as in 2026-04-01T10:00:00+08:00 or ...Z")
    if not EARLIEST.year <= moment.year < LATEST.year:
        raise ValueError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return moment


Instant = Annotated[datetime, AfterValidator(_aware_and_within_range)]
"""A moment with a time zone offset, between the years 1900 and 8999."""


_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _plain_date(value: Any) -> Any:
    if isinstance(value, str) and not _PLAIN_DATE.fullmatch(value):
        raise ValueError("must be a date such as 2026-04-01, without a time")
    return value


Day = Annotated[date, BeforeValidator(_plain_date)]
"""A calendar day, written as YYYY-MM-DD and nothing else."""
