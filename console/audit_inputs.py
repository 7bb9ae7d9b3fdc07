"""The audit pages' filter inputs read from a query string, each error kept for its field.

The API refuses a bad query parameter with a 422 for the whole request; a page
instead shows the message next to the field it concerns and keeps what the
person typed. The limits are the API's (api/routers/audit.py): positions from
0, a page of 1 to 1000, moments between the years 1900 and 8999.

A moment comes from a `datetime-local` input, which has no offset: it is read
in the ledger's time zone (CRMLEDGER_TIMEZONE), the zone every time on the
console is shown in. One typed with an offset keeps it.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from api.params import Instant

_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)
MAX_LIMIT = 1000


class Inputs:
    """Values read from a form or query, and the message of each field that did not read."""

    def __init__(self, raw: dict[str, str], zone: str) -> None:
        self.raw = {k: v.strip() for k, v in raw.items()}
        self.zone = ZoneInfo(zone)
        self.errors: dict[str, str] = {}

    def text(self, name: str) -> str:
        """The field as typed (trimmed), empty when absent."""
        return self.raw.get(name, "")

    def count(self, name: str, default: int, low: int, high: int = 2**63 - 1) -> int:
        """A whole number from `low` to `high`; `default` when empty or wrong (with an error)."""
        text = self.text(name)
        if not text:
            return default
        # Python refuses to read an integer of thousands of digits: no right value is that long.
        if not text.isdigit() or len(text) > 19 or not low <= int(text) <= high:
            top = "" if high == 2**63 - 1 else f" to {high}"
            self.errors[name] = f"give a whole number from {low}{top}"
            return default
        return int(text)

    def account(self, name: str = "account_id") -> UUID | None:
        """An account ID (a UUID), or None when empty or wrong (with an error)."""
        text = self.text(name)
        if not text:
            return None
        try:
            return UUID(text)
        except ValueError:
            self.errors[name] = (
                "an account ID is a UUID, as in 0b6f3c1e-8d2a-4c55-9e7b-1f2a3b4c5d6e"
            )
            return None

    def moment(self, name: str) -> datetime | None:
        """A moment read in the ledger's zone unless typed with an offset; None when empty."""
        text = self.text(name)
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.errors[name] = "give a date and time, as in 2026-04-01T09:30"
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        try:
            return _INSTANT.validate_python(moment)  # the API's own rule for `from` and `to`
        except ValidationError as e:
            self.errors[name] = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
            return None

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        """One of `allowed`, or empty when empty or not among them (with an error)."""
        text = self.text(name)
        if text and text not in allowed:
            self.errors[name] = f"choose one of: {', '.join(allowed)}"
            return ""
        return text
