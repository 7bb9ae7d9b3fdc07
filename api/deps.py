"""Shared route dependencies: the services, command metadata, If-Match.

The command routes' own dependency (Idempotency-Key, ETag) is api/commands.py.

Dependencies that do no I/O are `async def`: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop for each one on every request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, Header, Request

from api.auth import CurrentUser, Principal
from api.errors import BadRequest
from infra.wiring import Services


async def get_services(request: Request) -> Services:
    """The services the app was built with."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_VERSION = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


async def expected_version(
    if_match: Annotated[str | None, Header(description="the account version (its ETag)")] = None,
) -> int | None:
    """The version the caller expects, from If-Match; None when not given."""
    if if_match is None or if_match.strip() == "*":
        return None
    m = _VERSION.match(if_match)
    if m is None:
        raise BadRequest('If-Match must be an account version such as "3"')
    return int(m.group(1))


ExpectedVersion = Annotated[int | None, Depends(expected_version)]


class CommandContext:
    """Who asks, why, and in which chain of causes: the metadata of every event."""

    def __init__(self, user: Principal, correlation_id: str, causation_id: str | None) -> None:
        self.user = user
        self.correlation_id = correlation_id
        self.causation_id = causation_id

    def meta(self, reason: str | None) -> dict[str, Any]:
        """The metadata stored with the event."""
        return {
            "actor": self.user.sub,
            "department": self.user.department,
            "reason": reason,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "source": "api",
        }

    @staticmethod
    def when(occurred_at: datetime | None) -> datetime:
        """Business time: as given, or now."""
        return occurred_at or datetime.now(UTC)


async def command_context(
    user: CurrentUser,
    x_correlation_id: Annotated[str | None, Header(max_length=128)] = None,
    x_causation_id: Annotated[str | None, Header(max_length=128)] = None,
) -> CommandContext:
    """Build the command context; a correlation id is made up when none is given."""
    return CommandContext(user, x_correlation_id or str(uuid4()), x_causation_id)


Context = Annotated[CommandContext, Depends(command_context)]
