"""The console's command forms, made from the API's own bodies (api/schemas.py).

Each form's inputs come from the contract of its command (infra/contracts.py),
so the console asks for exactly what the API and the inbound topic take, and a
sent form is checked by the same pydantic model, whose messages are shown
next to the fields they concern. A field left empty is not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from api.schemas import ACTIVITY_BODIES, UpdateDetails
from domain.rules import SCORES
from infra.contracts import ACTIVITY_MESSAGES
from infra.inputs import Customer

# The activities in the order a person meets them, with their names in words.
ACTIVITIES: dict[str, str] = {
    m.alias: m.alias.replace("_", " ").capitalize() for m in ACTIVITY_MESSAGES
}
FREE_TEXT = frozenset({"address", "comment", "resolution", "reason"})
DATES = frozenset({"date_of_birth"})


@dataclass(frozen=True)
class Input:
    """One input of a form: its name, label, kind and choices."""

    name: str
    label: str
    kind: Literal["text", "textarea", "select", "decimal", "date", "email", "tel"]
    required: bool = False
    options: tuple[str, ...] = ()


def _input(name: str, annotation: Any, required: bool) -> Input:
    label = name.replace("_", " ").capitalize().replace(" id", " ID").replace("Id ", "ID ")
    if get_origin(annotation) is Literal:
        return Input(name, label, "select", required, tuple(str(a) for a in get_args(annotation)))
    if annotation is bool:
        return Input(name, label, "select", required, ("yes", "no"))
    if name == "score":
        return Input(name, label, "select", required, tuple(str(s) for s in sorted(SCORES)))
    if annotation is Decimal:
        return Input(name, label, "decimal", required)
    if name in FREE_TEXT:
        return Input(name, label, "textarea", required)
    if name in DATES:
        return Input(name, label, "date", required)
    kind: Literal["email", "tel", "text"] = {"email": "email", "phone": "tel"}.get(name, "text")  # type: ignore[assignment]
    return Input(name, label, kind, required)


def inputs_of(model: type[BaseModel], skip: frozenset[str] = frozenset()) -> list[Input]:
    """The inputs of a body model's own fields (not `type` nor `occurred_at`), reason last."""
    names = [n for n in model.model_fields if n not in skip | {"type", "occurred_at"}]
    names.sort(key=lambda n: n == "reason")
    return [
        _input(name, model.model_fields[name].annotation, model.model_fields[name].is_required())
        for name in names
    ]


ACTIVITY_INPUTS = {alias: inputs_of(body) for alias, body in ACTIVITY_BODIES.items()}
# Every customer field may change; none is required (at least one is).
DETAIL_INPUTS = [Input(i.name, i.label, i.kind) for i in inputs_of(Customer)] + [
    Input("reason", "Reason", "textarea")
]


def _given(form: FormData, inputs: list[Input]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for i in inputs:
        raw = form.get(i.name)
        if not isinstance(raw, str) or not raw.strip():
            continue
        value: Any = raw
        if i.options == ("yes", "no"):
            value = {"yes": True, "no": False}.get(raw, raw)
        elif i.name == "score" and raw.isdigit():
            value = int(raw)
        values[i.name] = value
    return values


def field_errors(error: ValidationError, strip: int = 0) -> dict[str, str]:
    """The model's messages by the form field they concern (the path's first `strip` parts off)."""
    messages: dict[str, str] = {}
    for e in error.errors():
        loc = [str(p) for p in e["loc"][strip:]]
        # A discriminated union puts the type's name first: it is not a field.
        if loc and loc[0] in ACTIVITY_BODIES and len(loc) > 1:
            loc = loc[1:]
        messages.setdefault(".".join(loc) or "form", str(e["msg"]).removeprefix("Value error, "))
    return messages


def activity_body(alias: str, form: FormData) -> BaseModel:
    """The API's body for the activity `alias` from a form; raises ValidationError."""
    body = ACTIVITY_BODIES[alias]
    return body.model_validate({"type": alias, **_given(form, ACTIVITY_INPUTS[alias])})


def details_body(form: FormData) -> UpdateDetails:
    """The API's update-details body from a form; raises ValidationError."""
    values = _given(form, DETAIL_INPUTS)
    reason = values.pop("reason", None)
    return UpdateDetails.model_validate({"customer": values, "reason": reason})


def detail_errors(error: ValidationError) -> dict[str, str]:
    """Update-details messages by input name (`customer.email` is the `email` input)."""
    return {
        k.removeprefix("customer.") if k != "customer" else "form": v
        for k, v in field_errors(error).items()
    }
