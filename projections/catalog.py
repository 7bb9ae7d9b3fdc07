"""The read models: their names, their tables and how events change them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from psycopg import Connection, Cursor

from projections.directory import DirectoryFold
from projections.events import ProjectedEvent
from projections.facts import KpiFold
from projections.schema import TABLES


class Fold(Protocol):
    """A read model's change for one batch: read what it needs, fold events, write once."""

    def load(self, conn: Connection, account_ids: set[UUID]) -> None: ...

    def apply(self, e: ProjectedEvent) -> None: ...

    def write(self, cur: Cursor[Any]) -> None: ...


@dataclass(frozen=True)
class ReadModel:
    """A read model: a name, the tables it owns, and how a batch of events changes them."""

    name: str
    tables: tuple[str, ...]
    fold: Callable[[str], Fold]


READ_MODELS: dict[str, ReadModel] = {
    "directory": ReadModel("directory", TABLES["directory"], DirectoryFold),
    "kpis": ReadModel("kpis", TABLES["kpis"], KpiFold),
}
