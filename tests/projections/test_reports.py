"""Report figures for the known history of tests/projections/history.py, worked out by hand."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest

from domain.errors import InvalidCommand, NotFound
from infra.wiring import Services
from projections.guidelines import DEFAULTS, read_guidelines, set_guidelines
from projections.kpis import KPI_NAMES
from projections.report_output import csv_text, json_rows
from projections.reports import (
    DEFAULT_PAGE,
    MAX_PAGE,
    REPORTS,
    NotPaged,
    Page,
    page_asked,
    report_named,
    report_scope,
    run_page,
    run_report,
)
from projections.schema import ddl
from projections.scheme_review import trend
from tests.projections import history
from tests.support import TEST_DATABASE_URL, drop_schema, own_ledger

APRIL = {"start": date(2026, 4, 1), "end": date(2026, 5, 1)}


@pytest.fixture(scope="module")
def known() -> Iterator[tuple[Services, dict[str, UUID]]]:
    with own_ledger() as services:
        ids = history.build(services)
        yield services, ids


@pytest.fixture(scope="module")
def services(known: tuple[Services, dict[str, UUID]]) -> Services:
    return known[0]


def report(services: Services, name: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of a report, checking that every row has exactly the report's columns."""
    chosen = REPORTS[name]
    scope = report_scope(chosen, segments=services.settings.segments, **{**APRIL, **params})
    with services.pool.connection() as conn:
        rows = run_report(conn, services.settings.readmodel_schema, chosen, scope)
    for row in rows:
        assert tuple(row) == chosen.columns_for(scope)
    return rows


def test_accounts_summary_counts_opened_closed_and_active_by_segment_plan_channel(
    services: Services,
) -> None:
    rows = report(services, "accounts-summary")
    got = [
        (
            r["segment"],
            r["service_plan"],
            r["channel"],
            r["opened"],
            r["closed"],
            r["active_at_end"],
        )
        for r in rows
    ]
    # G opened and closed in March: nothing to say about April. C is counted where it is now.
    assert got == [
        ("gold", "standard", "store", 0, 0, 1),
        ("silver", "standard", "online", 0, 1, 0),
        ("silver", "standard", "store", 0, 0, 1),
        ("standard", "standard", "phone", 0, 0, 1),
        ("standard", "standard", "store", 1, 0, 2),
        ("vip", "premium", "app", 1, 0, 1),
    ]
    stores = report(services, "accounts-summary", channel="store", segment="standard")
    assert [(r["opened"], r["active_at_end"]) for r in stores] == [(1, 2)]


def test_accounts_due_for_review_lists_stale_open_accounts_without_personal_data(
    known: tuple[Services, dict[str, UUID]],
) -> None:
    services, ids = known
    (due,) = report(services, "accounts-due-for-review")
    # A year before May 1st: only E; F confirmed in March, H is erased, B and G are closed.
    assert due["account_id"] == ids["E"] and due["external_ref"] == "E"
    assert (due["segment"], due["channel"]) == ("silver", "store")
    assert "Customer E" not in str(due) and "e@example.com" not in str(due)
    month = report(services, "accounts-due-for-review", days=30)
    assert [r["external_ref"] for r in month] == ["E", "F", "A"]  # stalest first
    assert (
        report(services, "accounts-due-for-review", days=30, segment="gold")[0]["external_ref"]
        == "A"
    )


def test_segment_analysis_follows_each_account_in_the_segment_it_was_in(
    services: Services,
) -> None:
    rows = report(services, "segment-analysis", start=date(2026, 3, 1))
    got = {
        (r["period_start"].month, r["segment"]): (
            r["size_at_start"],
            r["size_at_end"],
            r["new_customers"],
            r["lost_customers"],
            r["migrations_in"],
            r["migrations_out"],
            r["new_to_lost_ratio"],
            r["churn_rate"],
        )
        for r in rows
    }
    assert got == {
        (3, "gold"): (0, 1, 1, 0, 0, 0, None, None),
        (3, "silver"): (1, 2, 2, 1, 0, 0, 2.0, 1.0),  # E, then B and G in, G out
        (3, "standard"): (2, 2, 0, 0, 0, 0, None, 0.0),
        (4, "gold"): (1, 1, 1, 0, 0, 1, None, 0.0),  # C in, then moved to vip
        (4, "silver"): (2, 1, 0, 1, 0, 0, 0.0, 0.5),
        (4, "standard"): (2, 3, 1, 0, 0, 0, None, 0.0),
        (4, "vip"): (0, 1, 0, 0, 1, 0, None, None),
    }
    assert [r["period_end"] for r in rows] == [date(2026, 4, 1)] * 3 + [date(2026, 5, 1)] * 4


def test_financial_summary_splits_money_by_store_and_currency(services: Services) -> None:
    rows = report(services, "financial-summary")
    got = [
        tuple(r[c] for c in ("segment", "channel", "store", "currency"))
        + tuple(r[c] for c in ("purchases", "refunds", "turnover", "profit"))
        for r in rows
    ]
    assert got == [
        ("gold", "app", "web", "HKD", 1, 0, Decimal("50.50"), Decimal("30.25")),
        ("gold", "store", "central", "HKD", 1, 1, Decimal("90.00"), Decimal("36.00")),
        ("standard", "store", "central", "USD", 1, 0, Decimal("20.00"), Decimal("15.00")),
    ]


def test_periods_are_cut_to_the_range(services: Services) -> None:
    weeks = report(services, "financial-summary", period="week", segment="gold")
    # April 1st is a Wednesday: the first week runs from it to Monday the 6th.
    assert [(w["period_start"], w["period_end"], w["store"], w["turnover"]) for w in weeks] == [
        (date(2026, 4, 1), date(2026, 4, 6), "central", Decimal("100.00")),
        (date(2026, 4, 6), date(2026, 4, 13), "web", Decimal("50.50")),
        (date(2026, 4, 6), date(2026, 4, 13), "central", Decimal("-10.00")),
    ]


def test_service_kpis_give_means_and_p90s_of_the_cases_closed(services: Services) -> None:
    (april,) = report(services, "service-kpis")
    assert april["period_start"] == date(2026, 4, 1)
    assert april["inquiries"] == 6  # five answered, C's still open
    assert april["first_response_hours_mean"] == pytest.approx(6.0)
    assert april["first_response_hours_p90"] == pytest.approx(9.2)  # 8 + 0.6 * (10 - 8)
    assert april["complaints"] == 3
    assert april["complaint_resolution_hours_mean"] == pytest.approx(26.0)  # (6 + 24 + 48) / 3
    assert april["complaint_resolution_hours_p90"] == pytest.approx(43.2)  # 24 + 0.8 * 24
    assert april["satisfaction"] == pytest.approx(11 / 3)


def test_service_kpis_split_by_channel(services: Services) -> None:
    rows = {r["channel"]: r for r in report(services, "service-kpis", split="channel")}
    assert sorted(rows) == ["app", "online", "phone", "store"]
    assert rows["phone"]["inquiries"] == 5
    assert rows["phone"]["first_response_hours_p90"] == pytest.approx(9.2)
    assert rows["online"]["inquiries"] == 1
    assert rows["online"]["first_response_hours_mean"] is None
    # Complaints belong to the account's channel: A and D (store), C (app).
    assert rows["store"]["complaints"] == 2
    assert rows["store"]["complaint_resolution_hours_p90"] == pytest.approx(22.2)  # 6 + 0.9 * 18
    assert rows["app"]["complaint_resolution_hours_mean"] == pytest.approx(48.0)
    assert (rows["store"]["satisfaction"], rows["app"]["satisfaction"]) == (5.0, 3.0)


def test_staff_performance_credits_who_answered_or_resolved(services: Services) -> None:
    rows = report(services, "staff-performance")
    assert [r["actor"] for r in rows] == ["agent-0", "agent-1", "supervisor"]
    agent0, agent1, supervisor = rows
    assert (agent0["inquiries_answered"], agent0["first_response_hours_mean"]) == (2, 3.0)
    assert agent0["complaints_resolved"] == 0 and agent0["satisfied_share"] is None
    assert (agent1["inquiries_answered"], agent1["first_response_hours_mean"]) == (3, 8.0)
    assert (agent1["complaints_resolved"], agent1["complaint_resolution_hours_mean"]) == (2, 36.0)
    assert agent1["satisfied_share"] == 0.5
    assert (supervisor["complaints_resolved"], supervisor["satisfied_share"]) == (1, 1.0)
    assert supervisor["complaint_resolution_hours_mean"] == pytest.approx(6.0)
    # agent-0's March answer lies outside April.
    march = report(services, "staff-performance", start=date(2026, 3, 1), end=date(2026, 4, 1))
    assert [(r["actor"], r["first_response_hours_mean"]) for r in march] == [("agent-0", 30.0)]


def review(services: Services, **params: Any) -> dict[str, dict[str, Any]]:
    return {r["kpi"]: r for r in report(services, "scheme-review", **params)}


def test_scheme_review_sets_every_kpi_against_its_default_target_and_march(
    services: Services,
) -> None:
    rows = review(services)
    p90 = rows["first_response_hours_p90"]
    assert (p90["value"], p90["comparison"], p90["target"]) == (pytest.approx(9.2), "at_most", 24)
    assert p90["met"] is True and p90["deviation"] == pytest.approx(-14.8)
    assert (p90["previous"], p90["trend"]) == (30.0, "down")
    churn = rows["churn_rate"]  # B of A, B, E, F, H; in March G of E, F, H
    assert (churn["value"], churn["met"], churn["deviation"]) == (0.2, False, pytest.approx(0.15))
    assert (churn["previous"], churn["trend"]) == (pytest.approx(1 / 3), "down")
    satisfaction = rows["satisfaction"]
    assert satisfaction["met"] is False
    assert satisfaction["deviation"] == pytest.approx(11 / 3 - 4)
    assert (satisfaction["previous"], satisfaction["trend"]) == (4.0, "down")
    ratio = rows["new_to_lost_ratio"]
    assert (ratio["value"], ratio["met"], ratio["deviation"], ratio["previous"]) == (2, True, 1, 3)
    resolution = rows["complaint_resolution_hours_p90"]
    assert (resolution["value"], resolution["met"]) == (pytest.approx(43.2), True)
    assert (resolution["previous"], resolution["trend"]) == (None, None)  # none in March
    turnover = rows["turnover"]  # 100 + 50.50 - 10 + 20 (USD counted alike), March 40
    assert (turnover["value"], turnover["previous"], turnover["trend"]) == (160.5, 40, "up")
    assert (turnover["target"], turnover["met"], turnover["deviation"]) == (None, None, None)
    assert rows["lost_customers"]["trend"] == "flat"
    assert tuple(rows) == KPI_NAMES


def test_scheme_review_uses_targets_management_set(services: Services) -> None:
    with services.pool.connection() as conn:
        set_guidelines(
            conn,
            {"turnover": ("at_least", 150.0), "first_response_hours_p90": ("at_most", 8.0)},
            "head-of-service",
        )
    try:
        rows = review(services)
        assert (rows["turnover"]["met"], rows["turnover"]["deviation"]) == (True, 10.5)
        p90 = rows["first_response_hours_p90"]
        assert (p90["target"], p90["met"], p90["deviation"]) == (8.0, False, pytest.approx(1.2))
        with services.pool.connection() as conn:
            stored = read_guidelines(conn)
        assert stored["turnover"].updated_by == "head-of-service"
        assert stored["satisfaction"] == DEFAULTS["satisfaction"]
    finally:
        with services.pool.connection() as conn:
            set_guidelines(conn, {"turnover": None, "first_response_hours_p90": None}, "x")
    with services.pool.connection() as conn:
        back = read_guidelines(conn)
    assert "turnover" not in back
    assert back["first_response_hours_p90"] == DEFAULTS["first_response_hours_p90"]


def test_scheme_review_filters_both_periods_alike(services: Services) -> None:
    rows = review(services, channel="online")
    # Online: B (closed in April, so churn 1 of B) and its March purchase; C's inquiry.
    assert (rows["turnover"]["value"], rows["turnover"]["previous"]) == (0, 40)
    assert (rows["churn_rate"]["value"], rows["churn_rate"]["met"]) == (1.0, False)
    assert (rows["inquiries"]["value"], rows["inquiries"]["trend"]) == (1, "flat")


def test_trend_is_flat_only_for_equal_values() -> None:
    assert trend(0.30000000000000004, 0.3) == "flat"
    assert (trend(2, 1), trend(1, 2), trend(None, 1), trend(1, None)) == ("up", "down", None, None)


def test_guidelines_survive_a_rebuild_of_the_read_models(services: Services) -> None:
    with services.pool.connection() as conn:
        set_guidelines(conn, {"visits": ("at_least", 2.0)}, "head-of-service")
    try:
        services.readmodels.rebuild("kpis")
        rows = review(services)
        assert (rows["visits"]["target"], rows["visits"]["met"]) == (2.0, True)
    finally:
        with services.pool.connection() as conn:
            set_guidelines(conn, {"visits": None}, "x")


def test_guidelines_refuse_unknown_kpis_and_bad_targets(services: Services) -> None:
    bad: list[dict[str, Any]] = [
        {"happiness": ("at_least", 1.0)},
        {"turnover": ("exactly", 1.0)},
        {"turnover": ("at_least", float("nan"))},
        {},
    ]
    for changes in bad:
        with services.pool.connection() as conn, pytest.raises(InvalidCommand):
            set_guidelines(conn, changes, "x")
    with services.pool.connection() as conn:
        assert "turnover" not in read_guidelines(conn)


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"start": date(2026, 5, 1), "end": date(2026, 4, 1)}, "before"),
        ({"start": date(2026, 4, 1), "end": date(2026, 4, 1)}, "before"),
        ({"period": "year"}, "period"),
        ({"segment": "platinum"}, "segment"),
        ({"channel": "fax"}, "channel"),
        ({"split": "segment"}, "cannot be split"),
        ({"days": 30}, "takes no days"),
        ({"start": date(1800, 1, 1)}, "between"),
        ({"start": date(2000, 1, 1), "end": date(2026, 1, 1), "period": "day"}, "periods"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, Any], mentions: str) -> None:
    with pytest.raises(InvalidCommand, match=mentions):
        report_scope(REPORTS["financial-summary"], segments=["gold"], **{**APRIL, **params})


def test_the_default_range_is_the_last_90_days_including_today() -> None:
    chosen = REPORTS["accounts-summary"]
    scope = report_scope(chosen, segments=[], today=date(2026, 6, 30))
    assert (scope.start, scope.end) == (date(2026, 4, 2), date(2026, 7, 1))
    scope = report_scope(chosen, segments=[], start=date(2026, 1, 1))
    assert (scope.start, scope.end) == (date(2026, 1, 1), date(2026, 4, 1))
    scope = report_scope(REPORTS["accounts-due-for-review"], segments=[], end=date(2026, 1, 1))
    assert (scope.start, scope.days) == (date(2025, 10, 3), 365)


def test_an_unknown_report_is_not_found() -> None:
    with pytest.raises(NotFound, match="accounts-summary"):
        report_named("everything")


def test_csv_has_a_header_and_never_a_formula() -> None:
    columns = ("store", "turnover", "met", "value", "when")
    first = ("=HYPERLINK(1)", Decimal("-10.00"), True, None, date(2026, 4, 1))
    second = ("central, east", Decimal("5"), False, 9.200000000000001, date(2026, 4, 2))
    rows = [dict(zip(columns, first, strict=True)), dict(zip(columns, second, strict=True))]
    assert csv_text(columns, rows).splitlines() == [
        "store,turnover,met,value,when",
        "'=HYPERLINK(1),-10.00,true,,2026-04-01",
        '"central, east",5,false,9.2,2026-04-02',
    ]
    assert json_rows(columns[:2], rows[:1]) == [{"store": "=HYPERLINK(1)", "turnover": "-10.00"}]


# ---- the accounts due for review, a page at a time -----------------------------------------


@pytest.fixture(scope="module")
def crowd() -> Iterator[tuple[psycopg.Connection, str, list[tuple[datetime, UUID]]]]:
    """A directory of its own, in a schema of its own, with 35 accounts due a year before
    2026-01-01 (some at the same moment, so only the account id orders them), and others that
    are not: recent, closed, erased. Yields the connection, the schema and the due keys in
    the order the report gives them."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    rm = f"{schema}_rm"
    base = datetime(2024, 3, 1, 9, tzinfo=UTC)
    due: list[tuple[datetime, UUID]] = []
    rows = []
    for n in range(60):
        moment = base + timedelta(hours=6 * (n // 4))  # four accounts a moment: ties to break
        status, erased = "open", False
        if n % 7 == 3:
            status = "closed"
        elif n % 11 == 5:
            erased = True
        elif n >= 44:
            moment = datetime(2025, 6, 1, tzinfo=UTC)  # confirmed lately: not due
        account_id = uuid.uuid4()
        rows.append((account_id, f"R{n}", status, "gold" if n % 2 else "silver", moment, erased))
        if status == "open" and not erased and moment.year == 2024:
            due.append((moment, account_id))
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
        conn.execute(ddl(rm).encode())
        with conn.cursor() as cur:
            insert = (
                f"INSERT INTO {rm}.accounts (account_id, external_ref, status, segment,"
                " service_plan, channel, opened_at, opened_day, details_current_at,"
                " last_activity_at, version, erased)"
                " VALUES (%s, %s, %s, %s, 'standard', 'store', %s, %s::date, %s, %s, 1, %s)"
            )
            cur.executemany(
                insert.encode(), [(i, r, st, seg, m, m, m, m, e) for i, r, st, seg, m, e in rows]
            )
        conn.autocommit = False
        try:
            yield conn, rm, sorted(due)
        finally:
            conn.rollback()
    drop_schema(schema)


DUE_REPORT = REPORTS["accounts-due-for-review"]


def walk(
    conn: psycopg.Connection, rm: str, limit: int, **params: Any
) -> tuple[list[list[tuple[datetime, UUID]]], set[int]]:
    """Every page of the due accounts, `limit` a page, following each page's key: the keys of
    each page's rows, and the totals the pages gave."""
    scope = report_scope(DUE_REPORT, segments=["gold", "silver"], end=date(2026, 1, 1), **params)
    pages, totals, after = [], set(), None
    for _ in range(200):
        page = run_page(conn, rm, DUE_REPORT, scope, page_asked(DUE_REPORT, limit, after))
        conn.rollback()
        assert all(tuple(row) == DUE_REPORT.columns for row in page.rows)
        pages.append([(row["details_current_at"], row["account_id"]) for row in page.rows])
        totals.add(page.total)
        if page.next_key is None:
            return pages, totals
        assert page.next_key == pages[-1][-1] and len(page.rows) == limit
        after = page.next_key
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("limit", [1, 4, 5, 34, 35, 36, 500])
def test_due_pages_give_every_account_due_once_in_the_reports_order(
    crowd: tuple[psycopg.Connection, str, list[tuple[datetime, UUID]]], limit: int
) -> None:
    conn, rm, due = crowd
    assert len(due) == 35
    pages, totals = walk(conn, rm, limit)
    assert [key for page in pages for key in page] == due  # each once, stalest first
    assert totals == {35}
    assert len(pages) == -(-35 // limit)  # no empty page after a full last one
    scope = report_scope(DUE_REPORT, segments=[], end=date(2026, 1, 1))
    whole = run_report(conn, rm, DUE_REPORT, scope)
    conn.rollback()
    assert [(r["details_current_at"], r["account_id"]) for r in whole] == due  # the export's


def test_due_pages_keep_the_filters_and_the_age(
    crowd: tuple[psycopg.Connection, str, list[tuple[datetime, UUID]]],
) -> None:
    conn, rm, due = crowd
    gold_ids = {
        r[0] for r in conn.execute(f"SELECT account_id FROM {rm}.accounts WHERE segment = 'gold'")
    }
    conn.rollback()
    pages, totals = walk(conn, rm, 3, segment="gold")
    assert [k for page in pages for k in page] == [k for k in due if k[1] in gold_ids]
    assert totals == {len(pages[0]) * (len(pages) - 1) + len(pages[-1])}
    # 670 days before 2026-01-01 is 2024-03-02: only the details current on March 1st are due.
    pages, totals = walk(conn, rm, 2, days=670)
    assert date(2026, 1, 1) - timedelta(days=670) == date(2024, 3, 2)
    assert [k for page in pages for k in page] == [k for k in due if k[0].day == 1]
    assert totals == {sum(1 for k in due if k[0].day == 1)} and len(pages) > 1
    # Nothing due: one empty page, no key to go on from.
    assert walk(conn, rm, 10, days=36500) == ([[]], {0})


def test_a_due_page_after_the_last_key_or_any_moment_is_empty_or_goes_on_from_it(
    crowd: tuple[psycopg.Connection, str, list[tuple[datetime, UUID]]],
) -> None:
    conn, rm, due = crowd
    scope = report_scope(DUE_REPORT, segments=[], end=date(2026, 1, 1))

    def page_after(key: tuple[datetime, UUID] | None) -> list[UUID]:
        page = run_page(conn, rm, DUE_REPORT, scope, page_asked(DUE_REPORT, 100, key))
        conn.rollback()
        return [row["account_id"] for row in page.rows]

    assert page_after(due[-1]) == []
    assert page_after((datetime(9999, 12, 31, 23, 59, tzinfo=UTC), uuid.UUID(int=0))) == []
    assert page_after((datetime(1, 1, 1, tzinfo=UTC), uuid.UUID(int=0))) == [k[1] for k in due]
    # A key that is no account's goes on from where it would stand.
    tie = sorted({k[0] for k in due})[1]  # a moment of several accounts, ordered by id
    assert page_after((tie, uuid.UUID(int=0))) == [k[1] for k in due if k[0] >= tie]
    assert page_after((tie, uuid.UUID(int=2**128 - 1))) == [k[1] for k in due if k[0] > tie]


@pytest.mark.parametrize(
    ("limit", "mentions"), [(0, "limit must be"), (-1, "limit must be"), (5001, "limit must be")]
)
def test_a_page_out_of_bounds_is_refused(limit: int, mentions: str) -> None:
    with pytest.raises(InvalidCommand, match=mentions):
        page_asked(DUE_REPORT, limit)
    assert page_asked(DUE_REPORT) == Page(DEFAULT_PAGE) and DEFAULT_PAGE == 500
    assert page_asked(DUE_REPORT, MAX_PAGE).limit == MAX_PAGE == 5000


def test_only_the_due_report_is_paged() -> None:
    assert [r.name for r in REPORTS.values() if r.paged] == ["accounts-due-for-review"]
    with pytest.raises(NotPaged, match="not paged"):
        page_asked(REPORTS["service-kpis"])
    with pytest.raises(NotPaged, match="not paged"):
        page_asked(REPORTS["staff-performance"], 10)
