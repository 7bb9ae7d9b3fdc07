"""The console's command forms, made from the API's own bodies (api/schemas.py).

Each form's inputs come from the contract of its command (infra/contracts.py),
so the console asks for exactly what the API and the inbound topic take, and a
sent form is checked by the same pydantic model, whose messages are shown
next to the fields they concern. A field left empty is not sent. Choices the
contract leaves to configuration (segments) are the configured ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from api.schemas import (
    ACTIVITY_BODIES,
    ChangePlan,
    ChangeSegment,
    CloseAccount,
    ConfirmDetails,
    OpenAccount,
    UpdateDetails,
)
from domain.rules import SCORES
from infra.contracts import ACTIVITY_MESSAGES
from infra.inputs import Customer

# The activities in the order a person meets them, with their names in words.
ACTIVITIES: dict[str, str] = {
    m.alias: m.alias.replace("_", " ").capitalize() for m in ACTIVITY_MESSAGES
}
FREE_TEXT = frozenset({"address", "comment", "resolution", "reason", "note"})
DATES = frozenset({"date_of_birth"})
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Input:
    """One input of a form: its name, label, kind and choices."""

    name: str
    label: str
    kind: Literal["text", "textarea", "select", "decimal", "date", "email", "tel"]
    required: bool = False
    options: tuple[str, ...] = ()
    # A first, empty choice, so a person picks on purpose rather than taking the first.
    prompt: str = ""
    hint: str = ""  # shown under the input and named by its aria-describedby


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


def nested_errors(error: ValidationError, prefix: str = "customer") -> dict[str, str]:
    """Messages by input name where the body nests some inputs (`customer.email` is `email`),
    as the update-details and open-account bodies do; the nest's own message is the form's."""
    return {
        ("form" if k == prefix else k.removeprefix(f"{prefix}.")): v
        for k, v in field_errors(error).items()
    }


detail_errors = nested_errors


def _choosing(inputs: list[Input], name: str, options: Sequence[str], prompt: str) -> list[Input]:
    # A field the contract types as text but whose values the settings or the account decide.
    return [
        replace(i, kind="select", required=True, options=tuple(options), prompt=prompt)
        if i.name == name
        else i
        for i in inputs
    ]


# ---- the account commands ---------------------------------------------------------------

CUSTOMER_INPUTS = inputs_of(Customer)
_CUSTOMER_NAMES = frozenset(i.name for i in CUSTOMER_INPUTS)


# What the open form says beyond the field names of its contract.
_OPEN_WORDS: dict[str, dict[str, Any]] = {
    "external_ref": {
        "label": "Customer number",
        "hint": "the customer's number in the source system",
    },
    "service_plan": {"hint": "standard when left empty"},
    "channel": {"prompt": "choose a channel"},
}


def open_inputs(segments: Sequence[str]) -> list[Input]:
    """The open-account form: the account's choices, the customer's fields, the reason last."""
    own = inputs_of(OpenAccount, skip=frozenset({"customer"}))
    account = [replace(i, **_OPEN_WORDS.get(i.name, {})) for i in own]
    account = _choosing(account, "segment", segments, "choose a segment")
    reason = [i for i in account if i.name == "reason"]
    return [i for i in account if i.name != "reason"] + CUSTOMER_INPUTS + reason


def open_body(form: FormData, segments: Sequence[str]) -> OpenAccount:
    """The API's open-account body from a form; raises ValidationError."""
    values = _given(form, open_inputs(segments))
    customer = {k: values.pop(k) for k in list(values) if k in _CUSTOMER_NAMES}
    return OpenAccount.model_validate({**values, "customer": customer})


def confirm_inputs() -> list[Input]:
    """The confirm-details form: only an optional reason, so confirming is one click."""
    return [replace(i, kind="text", label="Reason (optional)") for i in inputs_of(ConfirmDetails)]


def segment_inputs(segments: Sequence[str], current: str) -> list[Input]:
    """The change-segment form: the configured segments but the account's own."""
    others = [s for s in segments if s != current]
    inputs = [
        replace(i, label="New segment") if i.name == "segment" else i
        for i in inputs_of(ChangeSegment)
    ]
    return _choosing(inputs, "segment", others, "choose a segment")


def plan_inputs(current: str) -> list[Input]:
    """The change-plan form: a plan's name (plans are not a fixed list), the reason."""
    return [
        replace(i, label="New service plan", hint=f"now {current}")
        if i.name == "service_plan"
        else i
        for i in inputs_of(ChangePlan)
    ]


def close_inputs() -> list[Input]:
    """The close form: why (one of the domain's close reasons) and a note."""
    inputs = inputs_of(CloseAccount)
    inputs.sort(key=lambda i: i.name != "reason")  # the choice first, the note after it
    return [
        replace(i, label="Why the account closes", prompt="choose a reason")
        if i.name == "reason"
        else i
        for i in inputs
    ]


def command_body(model: type[M], form: FormData, inputs: list[Input]) -> M:
    """The API's body `model` from a form of flat `inputs`; raises ValidationError."""
    return model.model_validate(_given(form, inputs))
