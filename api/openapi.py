"""The OpenAPI document lists the problems each route can really answer.

FastAPI documents a route's success and its 422 only. The refusals come from
the route's parts, so they are read from them, one rule each:

| status | when |
|---|---|
| 400 | a JSON body (malformed JSON), an If-Match header (one that does not parse), or ALSO |
| 401, 403 | the route needs a bearer token (its dependencies read api.auth's bearer scheme) |
| 404 | a path parameter (no such account, report, read model) or ALSO |
| 409 | a path `{account_id}` (its state, a broken hash chain) or an Idempotency-Key in flight |
| 412 | an If-Match header |
| 413 | a body (bodies past 64 KB, api/metrics.py) |
| 422 | any parameter or body (and an Idempotency-Key reused with another body) |
| 500 | every route (an unexpected error, with a correlation id) |
| 503 | every route that reads the services (database away) or needs a token (provider's keys) |

ALSO names the few refusals a route's handler raises from its own checks.
Each is application/problem+json with the Problem schema, unless the route
declares that status itself. The request examples of the command routes are
added too (api/examples.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel, ConfigDict, Field

from api.auth import bearer
from api.deps import get_services
from api.errors import PROBLEM, routes_of
from api.examples import add_examples


class Problem(BaseModel):
    """An RFC 9457 problem: a stable `type`, a `title` in words, a `detail` on this request."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="urn:crmledger:problem:<code>; stable, branch on it")
    title: str = Field(description="the problem in words")
    status: int
    detail: str = Field(description="what was wrong with this request")
    instance: str = Field(description="the path of the request")


DESCRIPTIONS = {
    400: "Bad request: malformed JSON, or a header or parameters that do not fit together",
    401: "Unauthenticated: no valid bearer token",
    403: "Forbidden: the token's roles do not allow this",
    404: "Not found",
    409: "Conflict with the account's state, its hash chain, or a request still running",
    412: "Precondition failed: If-Match names another version of the account",
    413: "Body too large (more than 64 KB)",
    422: "Invalid request: parameters or body break a rule",
    500: "Internal server error, with a correlation id",
    503: "Unavailable: the database (or the OpenID provider's keys) cannot be reached now;"
    " retry after Retry-After",
}

# Refusals a handler raises from its own checks, by (method, path).
ALSO: dict[tuple[str, str], set[int]] = {
    ("GET", "/v1/audit/verify"): {400, 404},
    ("GET", "/v1/audit/digest"): {404},
    ("GET", "/v1/audit/checkpoint"): {404},  # none kept (at that size)
    ("GET", "/v1/audit/proofs/inclusion"): {404},  # a size or position not in the tree
    ("GET", "/v1/audit/proofs/consistency"): {404},
    ("POST", "/v1/admin/projections/parked/retry"): {404},
    ("GET", "/v1/accounts/{account_id}"): {400},
    ("GET", "/v1/accounts"): {400},  # a cursor this API did not give
    ("GET", "/v1/reports/{name}"): {400},  # a cursor this API did not give for the report
}


def install(app: FastAPI) -> None:
    """Make `app.openapi()` add the problem responses to the generated document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            add_problems(document, app)
            add_examples(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_problems(document: dict[str, Any], app: FastAPI) -> None:
    """Add each route's problem responses (and the Problem schema) to `document`."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    ref = {"$ref": "#/components/schemas/Problem"}
    for route in _routes(app):
        for method in route.methods:
            operation = document["paths"].get(route.path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(problems_of(route.dependant, method, route.path)):
                declared = responses.get(str(status))
                # What a route declares itself (readyz's own 503, say) stays; FastAPI's
                # own 422 (application/json) is not what the API answers.
                if declared is None or _fastapi_validation_error(declared):
                    responses[str(status)] = {
                        "description": DESCRIPTIONS[status],
                        "content": {PROBLEM: {"schema": ref}},
                    }
    if "HTTPValidationError" not in json.dumps(document["paths"]):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def _fastapi_validation_error(response: dict[str, Any]) -> bool:
    return "#/components/schemas/HTTPValidationError" in json.dumps(response)


def problems_of(dependant: Dependant, method: str, path: str) -> set[int]:
    """The problem statuses a route with this dependant can answer (the table above)."""
    parts = list(_walk(dependant))
    calls = {d.call for d in parts}
    headers = {f.alias.lower() for d in parts for f in d.header_params}
    body = any(d.body_params for d in parts)
    params = body or any(d.path_params or d.query_params or d.header_params for d in parts)
    statuses = {500}
    if get_services in calls:
        statuses.add(503)
    if bearer in calls:
        statuses |= {401, 403, 503}
    if any(d.path_params for d in parts):
        statuses.add(404)
    if "{account_id}" in path or "idempotency-key" in headers:
        statuses.add(409)
    if "if-match" in headers:
        statuses |= {400, 412}
    if body:
        statuses |= {400, 413}
    if params:
        statuses.add(422)
    return statuses | ALSO.get((method, path), set())


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def _routes(app: FastAPI) -> Iterator[Any]:
    return (r for r in routes_of(app) if getattr(r, "dependant", None) is not None)
