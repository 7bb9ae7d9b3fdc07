"""A moment typed into the console: a datetime-local field read in the ledger's time zone.

A browser's datetime-local input gives a wall-clock time without an offset
(2026-04-01T10:05 or 2026-04-01T10:05:30). The API refuses such a time in a
query (it could be any of 26 hours of the world); the console knows whose
wall clock it is, CRMLEDGER_TIMEZONE's, the zone every page shows times in,
so it reads the time there and then holds it to the API's own rule for a
moment (api/params.py `Instant`: an offset, a year from 1900 to 8999).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from api.params import Instant

_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


def read_moment(raw: str, zone: str) -> datetime:
    """The moment `raw` names, in `zone` unless it carries its own offset; ValueError in words."""
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "give a date and time such as 2026-04-01T10:05 (the calendar picker writes one)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    try:
        return _INSTANT.validate_python(moment)
    except ValidationError as e:
        raise ValueError(str(e.errors()[0]["msg"]).removeprefix("Value error, ")) from None


def local_value(moment: datetime, zone: str) -> str:
    """`moment` as a datetime-local field's value: wall-clock time in `zone`, to the second."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")
