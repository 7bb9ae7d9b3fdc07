"""Prometheus metrics of the HTTP API, the body size limit and the last word on errors.

One plain ASGI middleware rather than `@app.middleware("http")`: Starlette's
BaseHTTPMiddleware runs every request through an extra task and memory
streams, CPU the API spends on every command.

- The body limit counts the bytes the app actually reads, whatever the
  Content-Length says (a chunked body has none): past MAX_BODY the read
  fails with a 413 problem and nothing more is read. A 413 closes the
  connection (`Connection: close`), so the server does not go on reading
  the unread rest of the body just to find the next request.
- An exception no route handles is answered here as a 500 problem
  (`urn:crmledger:problem:internal-error`) with a correlation id, the
  request's X-Correlation-Id if it gave a usable one, also sent back in that
  header, and logged once, with its traceback and that id. It is not
  re-raised: Starlette's ServerErrorMiddleware would answer text/plain and
  re-raise it, and uvicorn would log it a second time and close the
  connection. Only when the response had already begun (nothing can be said
  any more) does the exception go on to the server, which closes the
  connection, as it must with a cut-off body.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem

MAX_BODY = 64 * 1024
CORRELATION_HEADER = "X-Correlation-Id"

log = logging.getLogger("crmledger.api")

REQUESTS = Counter(
    "crmledger_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "crmledger_http_request_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# What we echo back from a caller's correlation id: printable, no spaces, short.
_USABLE_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


class BodyTooLarge(HTTPException):
    """The request body ran past MAX_BODY while it was being read."""

    code = "body_too_large"

    def __init__(self) -> None:
        super().__init__(
            413, f"bodies are limited to {MAX_BODY} bytes", headers={"Connection": "close"}
        )


class Measured:
    """Limit bodies as they are read, answer unexpected errors, count and time each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await _too_large(scope)(scope, receive, send)
            REQUESTS.labels(scope["method"], "unmatched", "413").inc()
            return
        status = 500
        response_started = response_done = False
        read = 0

        async def receiving() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > MAX_BODY:
                    raise BodyTooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal status, response_started, response_done
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                response_done = True
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except Exception as exc:
            if response_started and not response_done:
                raise
            if isinstance(exc, BodyTooLarge) and not response_started:
                await _too_large(scope)(scope, receive, sending)
                return
            correlation_id = _correlation_id(scope)
            log.error(
                "unexpected error on %s %s, correlation id %s",
                scope["method"],
                scope["path"],
                correlation_id,
                exc_info=exc,
            )
            if not response_started:
                await _internal_error(scope, correlation_id)(scope, receive, sending)
        finally:
            # The router leaves the matched route in the scope: label by its
            # template, not the raw path, so ids do not explode the series.
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            LATENCY.labels(method, template).observe(time.perf_counter() - started)
            REQUESTS.labels(method, template, str(status)).inc()


def _too_large(scope: Scope) -> ASGIApp:
    detail = f"bodies are limited to {MAX_BODY} bytes"
    return problem(413, BodyTooLarge.code, detail, scope["path"], headers={"Connection": "close"})


def _internal_error(scope: Scope, correlation_id: str) -> ASGIApp:
    detail = (
        "the service failed on this request; it was logged with the correlation id "
        f"{correlation_id}: quote it when you report this"
    )
    return problem(
        500,
        "internal_error",
        detail,
        scope["path"],
        headers={CORRELATION_HEADER: correlation_id},
        correlation_id=correlation_id,
    )


def _correlation_id(scope: Scope) -> str:
    given = _header(scope, CORRELATION_HEADER.lower().encode())
    if given is not None and _USABLE_ID.match(given):
        return given
    return str(uuid.uuid4())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
