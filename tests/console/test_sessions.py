"""Console sessions, CSRF, the dev sign-in and error pages, over HTTP without a browser."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from console import accounts as account_pages
from console.signin import principal_of
from infra.wiring import Services
from tests.support import open_plain


def console(services: Services, base_url: str = "http://testserver", **settings: Any) -> TestClient:
    """A client of the app over the session's services with these settings changed."""
    changed = services.settings.model_copy(update=settings)
    app = create_app(dataclasses.replace(services, settings=changed))
    return TestClient(app, base_url=base_url)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def dev_signed_in(
    services: Services, role: str = "customer_service", name: str = "Dora Dev", **settings: Any
) -> TestClient:
    """A client signed in through the dev sign-in of an embedded-default configuration."""
    client = console(services, database_url=None, **settings)
    token = csrf_of(client.get("/console/dev-sign-in").text)
    answer = client.post(
        "/console/dev-sign-in",
        data={"csrf_token": token, "name": name, "role": role, "next": "/console/accounts"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/accounts"
    return client


def test_the_dev_sign_in_exists_only_without_a_database_url(services: Services) -> None:
    with_url = console(services)
    assert with_url.get("/console/dev-sign-in").status_code == 404
    posted = with_url.post("/console/dev-sign-in", data={"name": "x", "role": "admin"})
    assert posted.status_code == 404
    assert "Development sign-in" not in with_url.get("/console/sign-in").text

    embedded = console(services, database_url=None)
    page = embedded.get("/console/dev-sign-in")
    assert page.status_code == 200
    assert "For development only." in page.text
    assert "Development sign-in" in embedded.get("/console/sign-in").text


def test_the_dev_sign_in_refuses_an_unknown_role_and_an_empty_name(services: Services) -> None:
    client = console(services, database_url=None)
    token = csrf_of(client.get("/console/dev-sign-in").text)
    answer = client.post(
        "/console/dev-sign-in", data={"csrf_token": token, "name": " ", "role": "root"}
    )
    assert answer.status_code == 422
    assert "give a name of 1 to 100 characters" in answer.text
    assert "choose one of: customer_service" in answer.text
    assert client.get("/console/accounts", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_httponly_lax_for_the_console_only_and_secure_over_https(
    services: Services,
) -> None:
    client = console(services, database_url=None)
    cookie = client.get("/console/dev-sign-in").headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "path=/console;" in cookie.lower()
    assert "secure" not in cookie.lower()
    over_https = console(services, base_url="https://testserver", database_url=None)
    assert "secure" in over_https.get("/console/dev-sign-in").headers["set-cookie"].lower()
    # The API's own routes neither read nor set a session.
    assert "set-cookie" not in client.get("/healthz").headers


def test_a_form_without_this_sessions_csrf_token_is_refused_and_records_nothing(
    services: Services,
) -> None:
    account = open_plain(services.ledger, "Csrf Case")
    client = dev_signed_in(services)
    url = f"/console/accounts/{account.id}/activities"
    form = {"type": "visit", "channel": "store", "location": "Mong Kok"}
    for sent in ({}, {"csrf_token": "forged"}):
        answer = client.post(url, data={**form, **sent})
        assert answer.status_code == 403
        assert "The form did not come from this session" in answer.text
    assert services.ledger.account(account.id).version == 1
    token = csrf_of(client.get(f"/console/accounts/{account.id}").text)
    answer = client.post(url, data={**form, "csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert services.ledger.account(account.id).version == 2


def test_an_update_from_a_page_that_went_stale_is_refused_in_words(services: Services) -> None:
    account = open_plain(services.ledger, "Stale Page")
    client = dev_signed_in(services)
    token = csrf_of(client.get(f"/console/accounts/{account.id}").text)
    services.ledger.update_details(
        account.id, {"email": "new@example.com"}, datetime.now(UTC), {"actor": "t"}, None
    )
    answer = client.post(
        f"/console/accounts/{account.id}/details",
        data={"csrf_token": token, "version": "1", "phone": "+852 5555 0000"},
    )
    assert answer.status_code == 412
    assert "Someone changed the account since this page was loaded" in answer.text
    assert services.ledger.account(account.id).version == 2


def test_sign_out_needs_the_token_and_ends_the_session(services: Services) -> None:
    client = dev_signed_in(services)
    assert client.post("/console/sign-out").status_code == 403
    token = csrf_of(client.get("/console/accounts").text)
    assert client.post("/console/sign-out", data={"csrf_token": token}).status_code == 200
    answer = client.get("/console/accounts", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/accounts"


def test_a_fragment_polled_after_the_session_ended_sends_the_window_to_sign_in(
    services: Services,
) -> None:
    client = console(services)
    page = "http://testserver/console/admin?tab=read-models"
    answer = client.get(
        "/console/admin/rebuilds/abc",
        headers={"HX-Request": "true", "HX-Current-URL": page},
        follow_redirects=False,
    )
    # Not the sign-in page swapped into the fragment: htmx moves the whole window.
    assert answer.status_code == 204 and not answer.content
    assert (
        answer.headers["HX-Redirect"] == "/console/sign-in?next=/console/admin%3Ftab%3Dread-models"
    )
    plain = client.get("/console/admin/rebuilds/abc", follow_redirects=False)
    assert plain.status_code == 303 and "HX-Redirect" not in plain.headers


def test_an_idle_session_ends(services: Services) -> None:
    client = dev_signed_in(services, console_idle_minutes=0.01)
    time.sleep(1)
    answer = client.get("/console/accounts", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in")


def test_reads_in_the_console_write_the_apis_access_log_rows(services: Services) -> None:
    account = open_plain(services.ledger, "Logged Read")
    name = f"Auditor {uuid.uuid4().hex[:6]}"
    client = dev_signed_in(services, role="auditor", name=name)
    assert client.get(f"/console/accounts/{account.id}").status_code == 200
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT what FROM access_log WHERE actor = %s AND account_id = %s",
            (f"dev:{name}", account.id),
        ).fetchall()
    assert sorted(r[0] for r in rows) == ["history", "read"]


def test_refusals_and_failures_are_pages_never_a_stack_trace(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dev_signed_in(services, role="marketing")
    missing = client.get(f"/console/accounts/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert client.get("/console/accounts/not-an-id").status_code == 400
    assert client.get("/console/no-such-page").status_code == 404
    assert client.get("/console/accounts/open?account_id=nope").status_code == 404
    refused = client.get("/console/work-queue")
    assert refused.status_code == 403
    assert "this needs one of the roles: customer_service, integration" in refused.text

    finance = dev_signed_in(services, role="finance")
    assert finance.get("/console/accounts").status_code == 200  # the open-by-ID box only
    assert finance.get("/console/accounts?q=Broken").status_code == 403
    assert dev_signed_in(services, role="integration").get("/console/accounts").status_code == 403

    account = open_plain(services.ledger, "Broken Page")

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(account_pages, "account_out", boom)
    failed = client.get(f"/console/accounts/{account.id}")
    assert failed.status_code == 500
    assert "Quote this reference" in failed.text
    assert "secret internals" not in failed.text and "Traceback" not in failed.text


def test_the_providers_claims_give_roles_and_department_as_the_api_reads_them() -> None:
    user = principal_of({"sub": "s1", "roles": "marketing  root finance"}, "roles")
    assert user.roles == frozenset({"marketing", "finance"})
    assert user.department == "marketing"
    user = principal_of({"sub": "s2", "groups": ["admin"], "department": "ops"}, "groups")
    assert (user.roles, user.department) == (frozenset({"admin"}), "ops")
    assert principal_of({"sub": "s3", "roles": 7}, "roles").roles == frozenset()
    nested = {"sub": "s4", "realm_access": {"roles": ["auditor"]}}
    assert principal_of(nested, "realm_access.roles").roles == frozenset({"auditor"})
