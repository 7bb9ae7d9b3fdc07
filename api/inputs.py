"""How the API reads what callers send: JSON as the inbound consumer reads it, clean queries.

- `ExactJSONRoute`: a route class whose JSON bodies are read by
  infra.inputs.read_json, the reader of the inbound Kafka messages, instead of
  Starlette's `json.loads`: amounts written as JSON numbers keep every digit,
  one written with an exponent (1e3) is told apart and refused, NaN is not
  JSON. So the same body gets the same answer at both doors.
- `clean_query`: an app-wide dependency that refuses any query parameter
  holding a control character (a NUL in `?q=` or `?actor=` would otherwise
  reach PostgreSQL, which cannot store it) with the 422 of a bad parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from infra.inputs import control_character, read_json


class _ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = read_json(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """A route that reads JSON bodies exactly as the inbound consumer reads messages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(_ExactJSONRequest(request.scope, request.receive))

        return exact


async def clean_query(request: Request) -> None:
    """Refuse a request whose query parameters hold a control character (422)."""
    if not request.scope["query_string"]:
        return  # most requests have none: not worth parsing
    errors = []
    for name, value in request.query_params.multi_items():
        why = control_character(name) or control_character(value)
        if why:
            msg = f"Value error, {why}"
            errors.append(
                {"type": "value_error", "loc": ("query", name), "msg": msg, "input": value}
            )
    if errors:
        raise RequestValidationError(errors)
