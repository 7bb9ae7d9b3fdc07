"""/docs and /redoc work offline; every command route carries examples the API accepts.

The pages' every script, style sheet and icon is served by the service itself
(api/docs.py); the examples (api/examples.py) hold the README's bodies and are
each sent, as they are, to a ledger of their own; "Authorize" is a bearer scheme.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_token
from api.examples import EXAMPLES
from tests.support import JWT_SECRET, own_ledger

README = Path(__file__).resolve().parents[2] / "README.md"


class Links(HTMLParser):
    """Every URL a page loads: script src, link href, img src, and the document it reads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name in ("src", "href") or (tag == "redoc" and name == "spec-url")):
                self.urls.append(value)


def loaded_urls(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    # Swagger UI reads its document from the script's `url: '...'`.
    return parser.urls + re.findall(r"url: '([^']+)'", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_outside_the_service(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    html = response.text
    assert "://" not in html, "an absolute URL: the page would reach outside the service"
    urls = loaded_urls(html)
    assert any(u.endswith(".js") for u in urls) and "/openapi.json" in urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url


def test_an_asset_that_is_not_there_is_a_404_problem(client: TestClient) -> None:
    for url in ("/docs-assets/nope.js", "/docs-assets/../../etc/passwd"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"


def test_swagger_ui_keeps_the_token_given_to_authorize_and_validates_nothing_online(
    client: TestClient,
) -> None:
    html = client.get("/docs").text
    assert '"persistAuthorization": true' in html
    assert '"validatorUrl": null' in html


def test_authorize_is_a_bearer_token_on_every_route_that_needs_one(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["HTTPBearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    guarded = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "401" in operation["responses"]:
                guarded += 1
                assert operation.get("security") == [{"HTTPBearer": []}], (method, path)
    assert guarded > 20


def test_every_command_route_has_examples(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    commands = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation and path.startswith("/v1/")
    }
    assert commands == set(EXAMPLES)
    for method, path in commands:
        body = document["paths"][path][method.lower()]["requestBody"]
        examples = body["content"]["application/json"]["examples"]
        assert examples and all(e["summary"] and "value" in e for e in examples.values())


def readme_bodies() -> list[Any]:
    """The JSON bodies the README's curl commands send (-d '...')."""
    text = README.read_text()
    return [json.loads(body) for body in re.findall(r"-d '(\{.*?\})'", text, flags=re.S)]


def test_the_readmes_bodies_are_among_the_examples() -> None:
    bodies = readme_bodies()
    assert len(bodies) >= 4
    examples = [value for named in EXAMPLES.values() for _, value in named.values()]
    for body in bodies:
        assert body in examples, body


@pytest.fixture(scope="module")
def fresh() -> Iterator[TestClient]:
    """The API over a ledger of its own: the examples' external_ref and targets are fixed."""
    with own_ledger() as services, TestClient(create_app(services)) as c:
        yield c


def headers(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(JWT_SECRET, 'docs', [role], ttl=600)}"}


def test_every_example_is_accepted_by_the_api_as_it_is(fresh: TestClient) -> None:
    roles = {"/erase": "admin", "/v1/guidelines": "management"}
    opened = fresh.post(
        "/v1/accounts",
        json=EXAMPLES[("POST", "/v1/accounts")]["open"][1],
        headers=headers("customer_service"),
    )
    assert opened.status_code == 201, opened.text
    account = opened.json()["id"]
    # In the order a day at the store runs: details, activities, moves, closing, erasure.
    order = [key for key in EXAMPLES if key != ("POST", "/v1/accounts")]
    order.sort(key=lambda key: key[1].endswith(("/close", "/erase")))
    for method, path in order:
        role = next((r for end, r in roles.items() if path.endswith(end)), "customer_service")
        for name, (_, value) in EXAMPLES[(method, path)].items():
            response = fresh.request(
                method, path.format(account_id=account), json=value, headers=headers(role)
            )
            assert response.is_success, (method, path, name, response.text)
