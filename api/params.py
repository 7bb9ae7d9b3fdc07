"""Query parameter types that several routes share.

A moment in a query (`from`, `to`, `as_of`) must carry a time zone offset: a
naive `2026-04-01T00:00` could mean any of 26 hours of the world, and the
ledger records every moment in UTC. Without one the request is refused as
invalid input, 422 (the same status and problem type, `invalid-request`, as
any other query parameter that does not parse), never guessed as UTC. The
year is bounded (1900 to 9000, as report dates are) so that no comparison or
conversion of the value can overflow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _within_range(moment: datetime) -> datetime:
    if not EARLIEST.year <= moment.year < LATEST.year:
        raise ValueError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return moment


Instant = Annotated[AwareDatetime, AfterValidator(_within_range)]
"""A moment with a time zone offset, between the years 1900 and 8999."""
