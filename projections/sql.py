"""A read model's change: SQL statements with their parameters, run by the projector."""

from __future__ import annotations

from typing import Any, NamedTuple


class Statement(NamedTuple):
    """One SQL statement; `{rm}` in it names the read-model schema."""

    sql: str
    params: tuple[Any, ...]
