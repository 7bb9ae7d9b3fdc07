"""Inbound integration events: CloudEvents 1.0 over Kafka, in either content mode.

`parse(value, headers)` turns a message into one of the inbound event models,
or raises `NotJSON` or pydantic's `ValidationError`. Both content modes of the
CloudEvents Kafka binding are read, as the official SDK writes them: structured
(the whole event as JSON; also a message with no CloudEvents headers, as the
first publishers sent it) and binary (`ce_*` headers, the data as the value).
Integrators publish under the name the ledger publishes the event with
(`crmledger.PurchaseRecorded`), the older names being aliases; `data` is the
message's contract (infra/contracts.py), the one the HTTP bodies derive from,
so both doors refuse the same input with the same words. Rules that depend on
configuration or state are the domain's, so its error names the reason
(docs/design.md, Messages).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from domain import activities as act
from domain.account import account_id_for
from infra import contracts as c
from infra.inputs import ONE_LINE, Strict, Time, control_character, read_json

EXTERNAL_PREFIX = "ext:"
CE_HEADER = "ce_"
STRUCTURED = "application/cloudevents"
Headers = Iterable[tuple[str, bytes | None]]

_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,50}")
Attribute = Annotated[str, Field(min_length=1, max_length=200), ONE_LINE]


class NotJSON(ValueError):
    """The message value is not JSON at all."""


def _account_reference(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    if why := control_character(v):
        raise ValueError(why)
    if v.startswith(EXTERNAL_PREFIX):
        if len(v) == len(EXTERNAL_PREFIX):
            raise ValueError("subject ext: needs an external_ref after the colon")
        return v
    try:
        UUID(v)
    except ValueError:
        raise ValueError("subject must be an account id or ext:<external_ref>") from None
    return v


# "application/json; charset=utf-8" is JSON too.
JSONMediaType = Annotated[str, Field(pattern=r"(?i)^application/json\s*(;.*)?$")]


class Envelope(BaseModel):
    """The CloudEvents attributes every inbound event has."""

    # Extension attributes are allowed, as CloudEvents allows them.
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Attribute
    source: Attribute
    type: str
    subject: Annotated[
        str, Field(min_length=1, max_length=200), BeforeValidator(_account_reference)
    ]
    time: Time
    datacontenttype: JSONMediaType | None = None
    data: Strict

    @model_validator(mode="after")
    def _extensions_are_clean(self) -> Envelope:
        for name, value in self.__pydantic_extra__.items() if self.__pydantic_extra__ else ():
            if not _EXTENSION_NAME.fullmatch(name):
                raise ValueError(f"extension attribute {name!r}: names are a-z and 0-9 only")
            if isinstance(value, str):
                why = control_character(value) or ("too long" if len(value) > 1000 else None)
                if why:
                    raise ValueError(f"extension attribute {name}: {why}")
            elif not isinstance(value, int):  # bool is an int
                raise ValueError(f"extension attribute {name}: a string, integer or boolean")
        return self

    @property
    def external_ref(self) -> str | None:
        """The external_ref named by the subject, if it names one."""
        if self.subject.startswith(EXTERNAL_PREFIX):
            return self.subject[len(EXTERNAL_PREFIX) :]
        return None

    @property
    def account_id(self) -> UUID:
        """The account the event is about."""
        ref = self.external_ref
        return account_id_for(ref) if ref is not None else UUID(self.subject)

    def extension(self, name: str) -> str | None:
        """An extension attribute as a string, or None when absent."""
        value = (self.model_extra or {}).get(name)
        return None if value is None else str(value)


class Opening(Envelope):
    """An account opening: its subject and its data name one external_ref."""

    data: c.OpenAccount

    @model_validator(mode="after")
    def _one_external_ref(self) -> Opening:
        given, named = self.data.external_ref, self.external_ref
        if given and named and given != named:
            raise ValueError("data.external_ref differs from the subject's")
        if given and named is None and account_id_for(given) != UUID(self.subject):
            raise ValueError("subject is not the account id of data.external_ref")
        return self

    @property
    def opening_ref(self) -> str | None:
        """The external_ref the account is opened with."""
        return self.data.external_ref or self.external_ref


class Activity(Envelope):
    """A service activity on an account."""

    data: c.Activity

    def command(self) -> act.Activity:
        """The domain's command value for this activity."""
        return self.data.command()


def _inbound(message: c.Message, base: type[Envelope] = Envelope) -> Any:
    """The inbound event model of a message: its names as `type`, its contract as `data`."""
    return create_model(
        message.title(),
        __base__=base,
        __module__=__name__,
        type=(Literal[message.names], ...),
        data=(message.contract, ...),
    )


AccountOpened = _inbound(c.ACCOUNT_MESSAGES[0], Opening)
DetailsUpdated = _inbound(c.ACCOUNT_MESSAGES[1])
AccountClosed = _inbound(c.ACCOUNT_MESSAGES[2])
ACTIVITY_EVENTS = {m.alias: _inbound(m, Activity) for m in c.ACTIVITY_MESSAGES}

InboundEvent = Envelope
_MODELS = (AccountOpened, DetailsUpdated, AccountClosed, *ACTIVITY_EVENTS.values())
_TAGS = frozenset(name for m in c.MESSAGES for name in m.names)
_inbound_events: TypeAdapter[Envelope] = TypeAdapter(
    Annotated[Union[_MODELS], Field(discriminator="type")]  # noqa: UP007  (built at run time)
)


def parse(value: bytes | None, headers: Headers | None = None) -> Envelope:
    """The inbound event in a message, in structured or binary content mode.

    Raises NotJSON when the value (the event, or its data) is not JSON, and
    ValidationError when it is not a valid CloudEvent of an inbound type.
    """
    attributes = binary_attributes(headers or ())
    if attributes is None:
        document = _json(value)
    else:
        document = attributes if value is None else {**attributes, "data": _json(value)}
    return _inbound_events.validate_python(document)


def _json(value: bytes | None) -> Any:
    if value is None:
        raise NotJSON("the message has no value")
    try:
        return read_json(value)
    except json.JSONDecodeError as e:
        raise NotJSON(str(e)) from None


def binary_attributes(headers: Headers) -> dict[str, Any] | None:
    """The CloudEvent attributes of a binary-mode message's headers; None for structured mode."""
    attributes: dict[str, Any] = {}
    content_type: str | None = None
    problems: list[InitErrorDetails] = []
    for name, raw in headers:
        lowered = name.lower()
        if lowered != "content-type" and not lowered.startswith(CE_HEADER):
            continue
        try:
            text = (raw or b"").decode("utf-8")
        except UnicodeDecodeError:
            problems.append(_header_problem(name, "is not UTF-8"))
            continue
        if lowered == "content-type":
            content_type = text
            continue
        attribute = lowered[len(CE_HEADER) :]
        if attribute in attributes:
            problems.append(_header_problem(name, "is given twice"))
        attributes[attribute] = text
    binary = "specversion" in attributes and not (content_type or "").startswith(STRUCTURED)
    if not binary:
        return None
    if problems:
        raise ValidationError.from_exception_data("CloudEvent", problems)
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    return attributes


def _header_problem(name: str, what: str) -> InitErrorDetails:
    error = PydanticCustomError("header", "header {name} {what}", {"name": name, "what": what})
    return {"type": error, "loc": (name,), "input": None}


def describe(error: ValidationError) -> str:
    """A short, one-line account of what is wrong with a message."""
    parts = []
    for item in error.errors()[:5]:
        loc = list(item["loc"])
        if loc and loc[0] in _TAGS:  # which of the union's types: the message's own `type`
            loc = loc[1:]
        where = ".".join(str(p) for p in loc) or "message"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
