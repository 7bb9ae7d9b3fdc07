"""Input fields the HTTP API and the inbound consumer check alike.

An integrating system gets the same answer for the same customer record
whether it calls the API or publishes to Kafka.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Short = Annotated[str, Field(min_length=1, max_length=100)]
Text = Annotated[str, Field(max_length=1000)]
Money = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=4, allow_inf_nan=False)]
Cost = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4, allow_inf_nan=False)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


def _not_future(d: date) -> date:
    if d > date.today():
        raise ValueError("date_of_birth is in the future")
    return d


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Customer(Strict):
    """Personal fields of a customer; stored encrypted."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = (
        None
    )
    phone: Annotated[str, Field(max_length=32, pattern=r"^\+?[0-9 ()-]{4,31}$")] | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    date_of_birth: Annotated[date, AfterValidator(_not_future)] | None = None
    id_document: Annotated[str, Field(max_length=64)] | None = None

    def fields(self) -> dict[str, str]:
        """The given fields as strings (dates in ISO form), as the vault encrypts them."""
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


class CustomerChanges(Customer):
    """Some personal fields of a customer; at least one."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _some(self) -> CustomerChanges:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give at least one customer field to change")
        return self
