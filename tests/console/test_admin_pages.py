"""The console's admin pages over HTTP without a browser, on the real PostgreSQL ledger:
read-model status and rebuilds with progress, guidelines, and every refusal
(test_admin_dead_letters.py: the dead letters on a real embedded broker)."""

from __future__ import annotations

import re
import threading
import time

import psycopg
from fastapi.testclient import TestClient

from console.jobs import jobs_of
from infra.wiring import Services
from projections.catalog import READ_MODELS
from projections.guidelines import read_guidelines
from tests.console.test_sessions import csrf_of, dev_signed_in
from tests.support import TEST_DATABASE_URL, open_plain, own_ledger

HX = {"HX-Request": "true"}


def rebuilt(client: TestClient, name: str, timeout: float = 60) -> str:
    """Rebuild a read model from the admin page's button and poll until done; the fragment."""
    token = csrf_of(client.get("/console/admin").text)
    answer = client.post(
        f"/console/admin/read-models/{name}/rebuild",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    location = str(answer.headers["location"])
    assert re.fullmatch(r"/console/admin/rebuilds/[0-9a-f]{32}", location)
    deadline = time.monotonic() + timeout
    while (poll := client.get(location, headers=HX)).status_code == 200:
        assert 'hx-trigger="every 1s"' in poll.text and "<progress" in poll.text
        assert time.monotonic() < deadline, "the rebuild did not finish"
        time.sleep(0.05)
    assert poll.status_code == 286, poll.text
    return str(poll.text)


def test_the_read_models_status_and_a_rebuild_with_progress_to_done(services: Services) -> None:
    for i in range(3):
        open_plain(services.ledger, f"Rebuild Case {i}")
    admin = dev_signed_in(services, role="admin", name="Root Admin")
    page = admin.get("/console/admin")
    assert page.status_code == 200
    for name in READ_MODELS:
        assert f'<tr id="model-{name}">' in page.text
        assert f'action="/console/admin/read-models/{name}/rebuild"' in page.text
    assert "none since this API process started" in page.text

    done = rebuilt(admin, "directory")
    last = services.ledger.recorder.max_notification_id()
    found = re.search(r"Done: (\d+) events? replayed into directory", done)
    assert found
    events = int(found[1])
    assert 3 <= events <= (last or 0)
    status = {s["name"]: s for s in services.readmodels.status()}["directory"]
    assert status["position"] >= events  # the rebuild moved the read model to the ledger's end
    page = admin.get("/console/admin")
    row = re.search(r'<tr id="model-directory">.*?</tr>', page.text, re.S)
    assert row and f"{events} events, 0 parked, by dev:Root Admin" in row.group(0)
    # The job's own page, done, shows what it did without polling.
    job = re.search(r'href="(/console/admin/rebuilds/[0-9a-f]{32})"', row.group(0))
    assert job and "every 1s" not in admin.get(job.group(1)).text


def test_an_auditor_reads_the_status_without_rebuild_buttons_and_may_not_rebuild(
    services: Services,
) -> None:
    auditor = dev_signed_in(services, role="auditor")
    page = auditor.get("/console/admin")
    assert page.status_code == 200 and '<tr id="model-kpis">' in page.text
    assert "/rebuild" not in page.text and "Dead letters" not in page.text
    answer = auditor.post(
        "/console/admin/read-models/kpis/rebuild", data={"csrf_token": csrf_of(page.text)}
    )
    assert answer.status_code == 403 and "this needs one of the roles: admin" in answer.text
    assert jobs_of(auditor.app).latest("rebuild", "kpis") is None  # type: ignore[arg-type]


def test_a_rebuild_or_a_replay_without_the_csrf_token_is_refused_and_does_nothing(
    services: Services,
) -> None:
    admin = dev_signed_in(services, role="admin")
    before = {s["name"]: s["position"] for s in services.readmodels.status()}
    for sent in ({}, {"csrf_token": "forged"}):
        for path in (
            "/console/admin/read-models/kpis/rebuild",
            "/console/admin/dead-letters/replay",
            "/console/admin/dead-letters/0/0/replay",
            "/console/admin/guidelines",
        ):
            answer = admin.post(path, data={**sent, "satisfaction-target": "1"})
            assert answer.status_code == 403, path
            assert "did not come from this session" in answer.text
    assert jobs_of(admin.app).latest("rebuild", "kpis") is None  # type: ignore[arg-type]
    assert {s["name"]: s["position"] for s in services.readmodels.status()} == before


def test_an_unknown_read_model_is_a_404_page(services: Services) -> None:
    admin = dev_signed_in(services, role="admin")
    token = csrf_of(admin.get("/console/admin").text)
    answer = admin.post("/console/admin/read-models/nope/rebuild", data={"csrf_token": token})
    assert answer.status_code == 404 and "no read model &#39;nope&#39;" in answer.text


def test_who_reaches_which_admin_page(services: Services) -> None:
    refused = {
        "marketing": ["/console/admin", "/console/admin/dead-letters"],
        "customer_service": ["/console/admin", "/console/admin/dead-letters"],
        "auditor": ["/console/admin/dead-letters"],
        "management": ["/console/admin/dead-letters"],
        "integration": ["/console/admin/guidelines"],
    }
    for role, paths in refused.items():
        client = dev_signed_in(services, role=role)
        for path in paths:
            assert client.get(path).status_code == 403, (role, path)
    # Management sets guidelines but reads no projection: its admin page is the guidelines.
    management = dev_signed_in(services, role="management")
    answer = management.get("/console/admin", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/admin/guidelines"
    assert 'id="guidelines-form"' in management.get("/console/admin/guidelines").text
    assert 'href="/console/admin"' in management.get("/console/accounts").text  # in the nav
    # Roles that only read guidelines see the table, not the form, and may not post it.
    marketing = dev_signed_in(services, role="marketing")
    page = marketing.get("/console/admin/guidelines")
    assert page.status_code == 200 and 'id="guidelines-form"' not in page.text
    assert 'href="/console/admin"' not in page.text  # no Admin in the nav
    answer = marketing.post("/console/admin/guidelines", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 403


def test_guidelines_are_saved_through_the_apis_validation_and_storage() -> None:
    with own_ledger() as services:
        admin = dev_signed_in(services, role="admin", name="Guide Setter")
        page = admin.get("/console/admin/guidelines")
        token = csrf_of(page.text)
        shown = dict(re.findall(r'name="([a-z0-9_]+-was)" value="([^"]*)"', page.text))
        assert shown["satisfaction-was"] == "at_least|4" and shown["turnover-was"] == "|"
        form = {"csrf_token": token, **shown}
        unchanged = {
            f"{k.removesuffix('-was')}-{part}": v.split("|")[i]
            for k, v in shown.items()
            for i, part in enumerate(("comparison", "target"))
        }

        # Nothing changed: nothing sent.
        answer = admin.post("/console/admin/guidelines", data={**form, **unchanged})
        assert answer.status_code == 422 and "Nothing was changed" in answer.text

        # The API's messages next to their fields, and nothing saved.
        bad = {**unchanged, "satisfaction-target": "lots", "turnover-target": "5"}
        answer = admin.post("/console/admin/guidelines", data={**form, **bad})
        assert answer.status_code == 422
        assert re.search(
            r'id="g-satisfaction-target-error">Input should be a valid number', answer.text
        )
        assert 'id="g-turnover-comparison-error">choose at least or at most' in answer.text
        assert 'aria-describedby="g-satisfaction-target-error"' in answer.text
        assert 'value="lots"' in answer.text  # what was typed stays
        with services.pool.connection() as conn:
            assert read_guidelines(conn)["satisfaction"].updated_by is None
        infinite = {**unchanged, "churn_rate-target": "1e999"}
        answer = admin.post("/console/admin/guidelines", data={**form, **infinite})
        assert 'id="g-churn_rate-target-error">Input should be a finite number' in answer.text

        # Only what changed is saved, in the setter's name.
        good = {
            **unchanged,
            "satisfaction-target": "4.5",
            "turnover-comparison": "at_least",
            "turnover-target": "100000",
        }
        answer = admin.post("/console/admin/guidelines", data={**form, **good})
        assert answer.status_code == 200  # followed the redirect
        assert "Guidelines saved: turnover, satisfaction." in answer.text
        with services.pool.connection() as conn:
            now = read_guidelines(conn)
        assert now["satisfaction"].target == 4.5
        assert now["satisfaction"].updated_by == "dev:Guide Setter"
        assert (now["turnover"].comparison, now["turnover"].target) == ("at_least", 100000.0)
        assert now["churn_rate"].updated_by is None  # untouched rows were not sent

        # Back to the default; a KPI without one emptied has no target again.
        page = admin.get("/console/admin/guidelines")
        shown = dict(re.findall(r'name="([a-z0-9_]+-was)" value="([^"]*)"', page.text))
        assert shown["satisfaction-was"] == "at_least|4.5"
        reset = {
            **good,
            "satisfaction-reset": "yes",
            "turnover-comparison": "",
            "turnover-target": "",
        }
        answer = admin.post(
            "/console/admin/guidelines", data={"csrf_token": csrf_of(page.text), **shown, **reset}
        )
        assert "Guidelines saved: turnover, satisfaction." in answer.text
        with services.pool.connection() as conn:
            now = read_guidelines(conn)
        assert now["satisfaction"].target == 4.0 and now["satisfaction"].updated_by is None
        assert "turnover" not in now


def test_a_rebuild_that_fails_says_why_and_leaves_the_read_model_as_it_was() -> None:
    with own_ledger(db_statement_timeout_ms=300) as services:
        open_plain(services.ledger, "Locked Out")
        services.readmodels.rebuild("kpis")  # its position rows exist
        before = services.readmodels.status()
        admin = dev_signed_in(services, role="admin")
        token = csrf_of(admin.get("/console/admin").text)
        schema = services.settings.readmodel_schema
        with psycopg.connect(TEST_DATABASE_URL) as conn:
            # The projector's lock order: holding the position rows keeps a rebuild waiting.
            conn.execute(
                f"SELECT 1 FROM {schema}.positions WHERE projection = 'kpis' FOR UPDATE".encode()
            )
            answer = admin.post(
                "/console/admin/read-models/kpis/rebuild",
                data={"csrf_token": token},
                follow_redirects=False,
            )
            location = answer.headers["location"]
            deadline = time.monotonic() + 20
            while (poll := admin.get(location, headers=HX)).status_code == 200:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            conn.rollback()
        assert "The rebuild failed, and the read model is as it was before" in poll.text
        assert "Database busy: canceling statement due to statement timeout" in poll.text
        assert services.readmodels.status() == before
        row = re.search(r'<tr id="model-kpis">.*?</tr>', admin.get("/console/admin").text, re.S)
        assert row and ">failed</a>" in row.group(0)


def test_a_rebuild_asked_while_too_many_jobs_run_says_so_and_starts_nothing(
    services: Services,
) -> None:
    admin = dev_signed_in(services, role="admin")
    runner = jobs_of(admin.app)  # type: ignore[arg-type]
    gate = threading.Event()
    held = [
        runner.start("verify", f"held-{i}", "x", 1, lambda job: gate.wait(20)) for i in range(3)
    ]
    try:
        token = csrf_of(admin.get("/console/admin").text)
        answer = admin.post("/console/admin/read-models/kpis/rebuild", data={"csrf_token": token})
        assert answer.status_code == 200  # back on the status page
        assert (
            "The rebuild of kpis did not start: 3 jobs are running;"
            " try again when one has finished." in answer.text
        )
        assert runner.latest("rebuild", "kpis") is None
    finally:
        gate.set()
    deadline = time.monotonic() + 10
    while any(job.running for job in held):
        assert time.monotonic() < deadline
        time.sleep(0.02)
