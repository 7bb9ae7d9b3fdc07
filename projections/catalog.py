"""The read models: their names, their tables and how events change them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from projections.directory import directory_changes
from projections.events import ProjectedEvent
from projections.facts import fact_changes
from projections.schema import TABLES
from projections.sql import Statement


@dataclass(frozen=True)
class ReadModel:
    """A read model: a name, the tables it owns, and its event-to-SQL function."""

    name: str
    tables: tuple[str, ...]
    changes: Callable[[ProjectedEvent], list[Statement]]


READ_MODELS: dict[str, ReadModel] = {
    "directory": ReadModel("directory", TABLES["directory"], directory_changes),
    "kpis": ReadModel("kpis", TABLES["kpis"], fact_changes),
}
