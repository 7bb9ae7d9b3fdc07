"""Input fields the HTTP API and the inbound consumer check alike: text, times, money.

An integrating system gets the same answer for the same record whether it calls
the API or publishes to Kafka: both doors read JSON with `read_json` and check
it with the models of infra/contracts.py, built from these fields. Text refuses
control characters (PostgreSQL cannot store NUL, and a log line must stay one
line), free text may hold line breaks, and format characters stay (names in
many scripts need them); times carry an offset and lie in the domain's range;
an amount is a plain decimal read exactly, never a float, no finer than its
currency. The rules, with examples, are in docs/design.md (Messages).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)

from domain.currencies import MINOR_UNITS
from domain.rules import EARLIEST_DATE, EARLIEST_TIME, MAX_FUTURE, decimals

# ---- JSON as both doors read it ------------------------------------------------------


class InexactNumber(Decimal):
    """A JSON number written with an exponent (1e3): not a plain decimal."""


def _number(literal: str) -> Decimal:
    return InexactNumber(literal) if "e" in literal.lower() else Decimal(literal)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(raw: bytes) -> Any:
    """The JSON document in `raw`: UTF-8 only, numbers with a fraction as exact Decimals.

    Raises json.JSONDecodeError for anything that is not strict JSON in UTF-8
    (NaN and Infinity included, and numbers too long for Python).
    """
    # orjson first, as it is the faster reader; its answer is the standard
    # library's whenever it holds no float (one it could not read exactly).
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _has_float(document):
            return document
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise json.JSONDecodeError("not UTF-8", "", e.start) from None
    try:
        return json.loads(text, parse_float=_number, parse_constant=_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as e:
        raise json.JSONDecodeError(str(e) or "not JSON", "", 0) from None


def _has_float(document: Any) -> bool:
    # Where orjson gave a float, the exact reader is needed (an integer too
    # long for 64 bits comes as a float too).
    stack = [document]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is float:
            return True
        if kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
    return False


# ---- text ------------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def control_character(value: str, *, lines: bool = False) -> str | None:
    """Why `value` is refused as text, or None when it holds no control character.

    With `lines`, tab, line feed and carriage return are allowed (free text).
    """
    found = (_CONTROL_BUT_LINES if lines else _CONTROL).search(value)
    if found is None:
        return None
    return (
        f"control character U+{ord(found.group()):04X} at position {found.start()} is not allowed"
    )


def _refusing(*, lines: bool) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, str) and (why := control_character(value, lines=lines)):
            raise ValueError(why)
        return value

    return BeforeValidator(check)


ONE_LINE = _refusing(lines=False)
FREE_TEXT = _refusing(lines=True)


Short = Annotated[str, Field(min_length=1, max_length=100), ONE_LINE]
Text = Annotated[str, Field(max_length=1000), FREE_TEXT]
Reference = Annotated[str, Field(min_length=1, max_length=64), ONE_LINE]


def one_of(allowed: frozenset[str]) -> Any:
    """The type of a field that takes one of the domain's allowed values."""
    return Annotated[Literal[tuple(sorted(allowed))], ONE_LINE]


# ---- times -----------------------------------------------------------------------------


_NUMERIC = re.compile(r"\s*[-+]?[0-9]+(\.[0-9]*)?\s*")


def _not_a_number(value: Any) -> Any:
    # pydantic would take a number, or a string of digits, as a Unix timestamp.
    if isinstance(value, int | float | Decimal) or (
        isinstance(value, str) and _NUMERIC.fullmatch(value)
    ):
        raise ValueError("give an ISO-8601 string, not a number")
    return value


def _sane_time(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
    t: datetime = handler(_not_a_number(value))
    if t < EARLIEST_TIME:
        raise ValueError("must not be before 1900-01-01")
    if t - datetime.now(UTC) > MAX_FUTURE:
        raise ValueError("must not be more than 5 minutes in the future")
    # pydantic gives its own tzinfo class; events keep the standard one.
    return t.replace(tzinfo=timezone(t.utcoffset() or timedelta(0)))


def _sane_birth(d: date) -> date:
    if d < EARLIEST_DATE:
        raise ValueError("must not be before 1900-01-01")
    if d > date.today():
        raise ValueError("date_of_birth is in the future")
    return d


Time = Annotated[AwareDatetime, WrapValidator(_sane_time)]
BirthDate = Annotated[date, BeforeValidator(_not_a_number), AfterValidator(_sane_birth)]

# ---- money -----------------------------------------------------------------------------

_PLAIN = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")
_NOT_PLAIN = 'must be a plain decimal such as "19.99"'
_WHOLE_DIGITS = 10
_LIMIT = Decimal(10) ** _WHOLE_DIGITS
_MOST_DECIMALS = max(MINOR_UNITS.values())


def _money(*, zero: bool) -> BeforeValidator:
    """An amount's one check: plain, in range, no finer than the currency given before it."""

    # One Python call in place of pydantic's decimal constraints, which run in
    # Python anyway once a validator is attached, and slowly.
    def check(value: Any, info: ValidationInfo) -> Decimal:
        if isinstance(value, str) and (plain := _PLAIN.fullmatch(value)):
            amount = Decimal(value)
            places = len((plain.group(1) or "").rstrip("0"))
        elif isinstance(value, Decimal) and not isinstance(value, InexactNumber):
            amount, places = value, decimals(value)  # a plain JSON number, from read_json
        elif isinstance(value, int) and not isinstance(value, bool):
            amount, places = Decimal(value), 0
        else:
            raise ValueError(_NOT_PLAIN)
        if not amount.is_finite():
            raise ValueError(_NOT_PLAIN)
        if amount < 0 or (amount == 0 and not zero):
            raise ValueError("must be 0 or more" if zero else "must be greater than 0")
        if amount >= _LIMIT:
            raise ValueError(f"must have at most {_WHOLE_DIGITS} digits before the point")
        currency = (info.data or {}).get("currency")
        allowed = MINOR_UNITS.get(currency, _MOST_DECIMALS)
        if places > allowed:
            where = f" in {currency}" if currency in MINOR_UNITS else ""
            raise ValueError(f"must have at most {allowed} decimals{where}")
        return amount

    return BeforeValidator(check)


def _money_schema(minimum: str) -> WithJsonSchema:
    text = {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,4})?$"}
    return WithJsonSchema({"anyOf": [text, {"type": "number", minimum: 0}]})


def _currency(code: Any) -> Any:
    if isinstance(code, str) and code in MINOR_UNITS:
        return code
    if isinstance(code, str) and (why := control_character(code)):
        raise ValueError(why)
    raise ValueError("must be an ISO 4217 currency code such as HKD")


# Declare a currency before the amounts in it: their check reads it.
Currency = Annotated[
    str, BeforeValidator(_currency), WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$"})
]
Amount = Annotated[Decimal, _money(zero=False), _money_schema("exclusiveMinimum")]
Cost = Annotated[Decimal, _money(zero=True), _money_schema("minimum")]


# ---- records ---------------------------------------------------------------------------


class Strict(BaseModel):
    """A message part: unknown fields are refused (a misspelt one would vanish quietly)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Customer(Strict):
    """Personal fields of a customer; stored encrypted."""

    name: Annotated[str, Field(min_length=1, max_length=200), ONE_LINE]
    email: (
        Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), ONE_LINE]
        | None
    ) = None
    phone: (
        Annotated[str, Field(max_length=32, pattern=r"^\+?[0-9 ()-]{4,31}$"), ONE_LINE] | None
    ) = None
    address: Annotated[str, Field(max_length=500), FREE_TEXT] | None = None
    date_of_birth: BirthDate | None = None
    id_document: Annotated[str, Field(max_length=64), ONE_LINE] | None = None

    def fields(self) -> dict[str, str]:
        """The given fields as strings (dates in ISO form), as the vault encrypts them."""
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


class CustomerChanges(Customer):
    """Some personal fields of a customer; at least one."""

    name: Annotated[str, Field(min_length=1, max_length=200), ONE_LINE] | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _some(self) -> CustomerChanges:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give at least one customer field to change")
        return self
