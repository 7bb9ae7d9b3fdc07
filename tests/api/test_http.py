"""The HTTP edge: unexpected errors, the body limit, titles, methods, datetimes, the OpenAPI.

Some tests talk to a real uvicorn server (in a thread, over the session's
services) because what they check is the server's: whether it keeps a
connection, and whether it waits for a body it was not asked to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.metrics import MAX_BODY
from infra.wiring import Services

Auth = Callable[..., dict[str, str]]
PROBLEM = "application/problem+json"
INTERNAL = "urn:crmledger:problem:internal-error"


def problem(response: Any, status: int, type_: str) -> dict[str, Any]:
    """The problem+json body of a response with `status` and problem type suffix `type_`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:crmledger:problem:{type_}"
    return body


@pytest.fixture
def failing_digest(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /v1/audit/digest fails with an error nobody expected."""

    def fail(position: int | None = None) -> Any:
        raise RuntimeError("the digest broke")

    monkeypatch.setattr(services.ledger, "digest", fail)


@pytest.fixture(scope="module")
def server(services: Services) -> Iterator[tuple[str, int]]:
    """A real uvicorn (httptools, as `serve` runs) over the session's services."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(services), http="httptools", log_config=None)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not running.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield sock.getsockname()
    running.should_exit = True
    thread.join(10)
    sock.close()


# ---- unexpected errors ------------------------------------------------------------------


def _about_the_error(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The error records of the API and of the server (not those of other threads' work)."""
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("crmledger.api", "uvicorn"))
    ]


@pytest.mark.usefixtures("failing_digest")
def test_an_unexpected_error_is_a_500_problem_logged_once_with_the_callers_correlation_id(
    client: TestClient, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    headers = auth("auditor", **{"X-Correlation-Id": "ticket-4711"})
    response = client.get("/v1/audit/digest", headers=headers)
    body = problem(response, 500, "internal-error")
    assert body["title"] == "Internal server error"
    assert body["correlation_id"] == response.headers["X-Correlation-Id"] == "ticket-4711"
    assert "ticket-4711" in body["detail"] and "the digest broke" not in body["detail"]
    assert "connection" not in response.headers
    logged = _about_the_error(caplog)
    assert len(logged) == 1
    assert "ticket-4711" in logged[0].getMessage()
    assert logged[0].exc_info is not None and "the digest broke" in str(logged[0].exc_info[1])
    # The same client goes on.
    assert client.get("/v1/audit/events", headers=auth("auditor")).status_code == 200


@pytest.mark.parametrize("given", [None, "", "two words", "x" * 129, "tab\there"])
@pytest.mark.usefixtures("failing_digest")
def test_without_a_usable_correlation_id_a_500_gets_a_new_one(
    client: TestClient, auth: Auth, given: str | None
) -> None:
    headers = auth("auditor") if given is None else auth("auditor", **{"X-Correlation-Id": given})
    response = client.get("/v1/audit/digest", headers=headers)
    body = problem(response, 500, "internal-error")
    assert body["correlation_id"] == response.headers["X-Correlation-Id"]
    UUID(body["correlation_id"])


@pytest.mark.slow
@pytest.mark.usefixtures("failing_digest")
def test_a_500_keeps_the_connection_of_a_real_server_and_is_logged_once(
    server: tuple[str, int], auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    conn = http.client.HTTPConnection(*server, timeout=10)
    conn.auto_open = 0  # a closed connection must fail the next request, not reconnect
    conn.connect()
    headers = auth("auditor", **{"X-Correlation-Id": "over-the-wire"})
    conn.request("GET", "/v1/audit/digest", headers=headers)
    first = conn.getresponse()
    body = first.read()
    assert first.status == 500 and first.getheader("content-type") == PROBLEM, body
    assert first.getheader("x-correlation-id") == "over-the-wire"
    assert not first.will_close and first.getheader("connection") is None
    conn.request("GET", "/v1/audit/events?limit=1", headers=auth("auditor"))
    second = conn.getresponse()
    assert second.status == 200, second.read()
    second.read()
    conn.close()
    logged = _about_the_error(caplog)
    assert [r.name for r in logged] == ["crmledger.api"]  # not uvicorn's as well
    assert "over-the-wire" in logged[0].getMessage() and logged[0].exc_info is not None


# ---- the body limit --------------------------------------------------------------------


def test_a_declared_oversized_body_is_refused_before_it_is_read(
    client: TestClient, auth: Auth
) -> None:
    response = client.post(
        "/v1/accounts", content=b"{" + b" " * MAX_BODY + b"}", headers=auth("customer_service")
    )
    body = problem(response, 413, "body-too-large")
    assert body["title"] == "Body too large"
    assert response.headers["connection"] == "close"


def test_a_chunked_body_is_refused_once_64_kb_were_read_and_the_rest_is_never_read(
    services: Services, auth: Auth
) -> None:
    chunk = b" " * 16384
    sent = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(50 * 1024 * 1024 // len(chunk)):
            sent += len(chunk)
            yield chunk

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.post(
                "/v1/accounts", content=fifty_megabytes(), headers=auth("customer_service")
            )

    response = asyncio.run(post())
    problem(response, 413, "body-too-large")
    assert "content-length" not in response.request.headers
    assert MAX_BODY < sent <= MAX_BODY + len(chunk)


@pytest.mark.slow
def test_a_real_server_answers_413_to_a_chunked_body_without_waiting_for_its_end(
    server: tuple[str, int], auth: Auth
) -> None:
    token = auth("customer_service")["Authorization"]
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(
            b"POST /v1/accounts HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nAuthorization: " + token.encode() + b"\r\n\r\n"
        )
        chunk = b" " * 16384
        for _ in range(MAX_BODY // len(chunk) + 1):  # past the limit, and never the last chunk
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        received = b""
        while b"\r\n\r\n" not in received or not received.endswith(b"}"):
            data = sock.recv(65536)
            assert data, received
            received += data
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), head
        assert b"application/problem+json" in head.lower()
        assert b"connection: close" in head.lower()
        assert b"body-too-large" in body
        # The server hangs up rather than reading the rest to find a next request.
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(65536) == b""


# ---- titles and methods -------------------------------------------------------------------


def test_trace_and_other_unknown_methods_answer_405_with_allow(
    client: TestClient, auth: Auth
) -> None:
    for method in ("TRACE", "DELETE", "OPTIONS"):
        response = client.request(method, "/v1/accounts", headers=auth("admin"))
        body = problem(response, 405, "method-not-allowed")
        assert body["title"] == "Method not allowed"
        assert response.headers["allow"] == "GET, POST"
        assert method in body["detail"]
    response = client.request("TRACE", "/v1/guidelines", headers=auth("admin"))
    assert problem(response, 405, "method-not-allowed") and response.headers["allow"] == "GET, PUT"


def test_error_titles_are_words_and_types_are_codes(client: TestClient, auth: Auth) -> None:
    key = {"Idempotency-Key": f"titles-{time.time_ns()}"}
    opening = {"segment": "gold", "channel": "store", "customer": {"name": "Ann Lee"}}
    first = client.post("/v1/accounts", json=opening, headers=auth("customer_service", **key))
    assert first.status_code == 201, first.text
    digest = "0" * 64
    cases = [
        (client.get("/nowhere"), 404, "not-found", "Not found"),
        (client.get("/v1/audit/events"), 401, "unauthenticated", "Unauthenticated"),
        (client.get("/v1/audit/events", headers=auth("marketing")), 403, "forbidden", "Forbidden"),
        (
            client.get(f"/v1/audit/verify?digest={digest}", headers=auth("auditor")),
            400,
            "bad-request",
            "Bad request",
        ),
        (
            client.get("/v1/audit/events?limit=0", headers=auth("auditor")),
            422,
            "invalid-request",
            "Invalid request",
        ),
        (
            client.post(
                "/v1/accounts",
                content=b"{",
                headers=auth("customer_service", **{"Content-Type": "application/json"}),
            ),
            400,
            "malformed-json",
            "Malformed JSON",
        ),
        (
            client.post(
                "/v1/accounts",
                json={**opening, "segment": "silver"},
                headers=auth("customer_service", **key),
            ),
            422,
            "idempotency-key-reused",
            "Idempotency key reused",
        ),
        (
            client.get("/v1/reports/everything", headers=auth("auditor")),
            404,
            "unknown-report",
            "Unknown report",
        ),
    ]
    for response, status, type_, title in cases:
        assert problem(response, status, type_)["title"] == title
        assert re.fullmatch(r"[A-Z][a-z]+( [A-Za-z]+)*", title)


# ---- datetimes in queries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/audit/events", {"from": "2026-04-01T00:00:00"}),
        ("/v1/audit/events", {"to": "2026-04-01T00:00:00"}),
        ("/v1/audit/events", {"from": "2026-04-01"}),
        ("/v1/audit/events", {"from": "0001-01-01T00:00:00+14:00"}),
        ("/v1/audit/events", {"to": "9999-12-31T23:59:59-14:00"}),
        ("/v1/audit/access-log", {"from": "2026-04-01T00:00:00"}),
        ("/v1/audit/access-log", {"to": "2026-04-01T00:00:00"}),
        (f"/v1/accounts/{uuid4()}", {"as_of": "2026-04-01T00:00:00"}),
        (f"/v1/accounts/{uuid4()}", {"as_of": "0001-01-01T00:00:00+14:00"}),
        ("/v1/reports/service-kpis", {"from": "2026-04-01T10:00:00"}),
        ("/v1/reports/service-kpis", {"to": "2026-04-01T00:00:00+02:00"}),
    ],
)
def test_a_query_datetime_without_a_time_zone_or_out_of_range_is_422(
    client: TestClient, auth: Auth, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, params=params, headers=auth("auditor"))
    body = problem(response, 422, "invalid-request")
    (name,) = params
    assert name in body["detail"]


def test_a_query_datetime_with_an_offset_is_taken(client: TestClient, auth: Auth) -> None:
    params = {"from": "2026-04-01T00:00:00+14:00", "to": "2999-01-01T00:00:00Z"}
    for path in ("/v1/audit/events", "/v1/audit/access-log"):
        assert client.get(path, params=params, headers=auth("auditor")).status_code == 200


# ---- the OpenAPI -----------------------------------------------------------------------------


def test_the_openapi_lists_the_problems_each_route_can_answer(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert set(document["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
    }
    paths = document["paths"]

    def problems(path: str, method: str) -> set[str]:
        responses = paths[path][method]["responses"]
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"][PROBLEM]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (path, status)
        return {s for s in responses if s.startswith(("4", "5"))}

    every = {"401", "403", "500", "503"}
    assert problems("/v1/accounts/{account_id}", "patch") == every | {
        "400",
        "404",
        "409",
        "412",
        "413",
        "422",
    }
    assert problems("/v1/accounts/{account_id}/history", "get") == every | {"404", "409", "422"}
    assert problems("/v1/reports/{name}", "get") == every | {"400", "404", "422"}
    assert problems("/v1/guidelines", "put") == every | {"400", "413", "422"}
    assert problems("/v1/audit/events", "get") == every | {"422"}
    assert problems("/healthz", "get") == {"500"}
