"""The account's rules: the allowed values and the checks every command makes.

Kept apart from the aggregate (domain/account.py) because the contracts at
both doors (infra/contracts.py, infra/inputs.py) refuse the same values with
the same limits before a command reaches the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.currencies import MINOR_UNITS
from domain.errors import InvalidCommand

PERSONAL_FIELDS = ("name", "email", "phone", "address", "date_of_birth", "id_document")
CHANNELS = frozenset({"store", "online", "app", "phone"})
CLOSE_REASONS = frozenset({"customer_request", "inactivity", "fraud", "deceased", "other"})
SEVERITIES = frozenset({"low", "medium", "high"})
ERASE_REASONS = frozenset({"request", "retention"})
MAX_FUTURE = timedelta(minutes=5)
# No business time, and no date of birth, before this: older ones are typing errors.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
EARLIEST_DATE = date(1900, 1, 1)
SCORES = range(1, 6)
DEFAULT_SEGMENTS = frozenset({"standard", "silver", "gold", "vip", "corporate"})

ACCOUNT_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmledger/accounts")

Metadata = Mapping[str, Any]
Ciphertexts = Mapping[str, str]


def account_id_for(external_ref: str) -> UUID:
    """The id of the account opened for a source system's customer number."""
    return uuid5(ACCOUNT_NAMESPACE, external_ref)


def event_type_of(topic: str) -> str:
    """The event's type name (`AccountOpened`) from its stored topic."""
    return topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]


# The allowed values of each choice a command takes, by the field's name.
CHOICES: dict[str, frozenset[str]] = {
    "channel": CHANNELS,
    "reason": CLOSE_REASONS,
    "severity": SEVERITIES,
}


def check_segment(segment: str, segments: frozenset[str]) -> None:
    """Refuse a segment outside the configured list."""
    check_choice("segment", segment, segments)


def check_choice(name: str, value: str, allowed: frozenset[str]) -> None:
    """Refuse a value outside its allowed set, naming the allowed ones."""
    if value not in allowed:
        raise InvalidCommand(f"{name} must be one of {', '.join(sorted(allowed))}; got {value!r}")


def check_money(amount: Decimal, cost: Decimal, currency: str) -> None:
    """Amounts are positive decimals, costs not negative, both in an ISO 4217 currency's units."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidCommand("amount must be a positive decimal")
    if not isinstance(cost, Decimal) or not cost.is_finite() or cost < 0:
        raise InvalidCommand("cost must be a decimal of zero or more")
    if currency not in MINOR_UNITS:
        raise InvalidCommand("currency must be an ISO 4217 code such as HKD")
    for name, value in (("amount", amount), ("cost", cost)):
        if decimals(value) > MINOR_UNITS[currency]:
            raise InvalidCommand(f"{name} has more decimals than {currency} has")


def decimals(value: Decimal) -> int:
    """How many decimals the value needs (19.990 needs 2)."""
    exponent = value.normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def check_time(occurred_at: datetime) -> None:
    """Business time must carry a time zone, be from 1900 on and at most 5 minutes ahead."""
    if occurred_at.tzinfo is None:
        raise InvalidCommand("occurred_at needs a time zone offset")
    if occurred_at < EARLIEST_TIME:
        raise InvalidCommand("occurred_at is before 1900")
    if occurred_at - datetime.now(occurred_at.tzinfo) > MAX_FUTURE:
        raise InvalidCommand("occurred_at is more than 5 minutes in the future")


def check_score(score: int) -> None:
    """A satisfaction score is a whole number from 1 to 5."""
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        raise InvalidCommand("score must be a whole number from 1 to 5")
