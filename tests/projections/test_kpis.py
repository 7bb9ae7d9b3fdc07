"""KPI figures for a small known history, worked out by hand and compared."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain import activities as act
from infra.wiring import Services
from projections.kpis import Scope, service_kpis
from tests.support import own_ledger

META = {"actor": "clerk-1", "department": "customer_service"}
D = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def at(days: float, hours: float = 0) -> datetime:
    return D + timedelta(days=days, hours=hours)


@pytest.fixture(scope="module")
def known() -> Iterator[Services]:
    """A history small enough to compute its KPIs by hand."""
    with own_ledger() as services:
        ledger = services.ledger

        def open_(ref: str, segment: str, channel: str, when: datetime) -> UUID:
            return ledger.open_account(
                external_ref=ref,
                segment=segment,
                service_plan="standard",
                channel=channel,
                customer={"name": ref},
                occurred_at=when,
                meta=META,
            ).id

        def do(
            account: UUID, activity: act.Activity, when: datetime, actor: str = "clerk-1"
        ) -> None:
            ledger.record_activity(account, activity, when, {**META, "actor": actor})

        # February: two accounts exist before March starts; one more is closed in February.
        a = open_("A", "gold", "store", datetime(2026, 2, 1, tzinfo=UTC))
        b = open_("B", "silver", "online", datetime(2026, 2, 3, tzinfo=UTC))
        old = open_("OLD", "silver", "store", datetime(2026, 2, 4, tzinfo=UTC))
        ledger.close_account(old, "inactivity", "", datetime(2026, 2, 20, tzinfo=UTC), META)
        # March: two new, one lost.
        c = open_("C", "gold", "app", at(0))
        open_("D", "standard", "store", at(1))
        ledger.close_account(b, "customer_request", "", at(2), META)
        do(a, act.Purchase(Decimal("100.00"), Decimal("60.00"), "HKD", "central"), at(0, 1))
        do(c, act.Purchase(Decimal("50.50"), Decimal("20.25"), "HKD", "web"), at(3))
        do(a, act.Refund(Decimal("10.00"), Decimal("6.00"), "HKD", "central"), at(4))
        do(a, act.Visit("store", "central"), at(5))
        do(c, act.Visit("app", "home"), at(5))
        do(c, act.Visit("app", "home"), at(6))
        # Inquiries answered after 2, 4, 6, 8 and 10 hours; one more stays open.
        for n, hours in enumerate((2, 4, 6, 8, 10)):
            do(a, act.OpenInquiry(f"Q{n}", "phone", "billing"), at(7 + n))
            do(a, act.AnswerInquiry(f"Q{n}", "phone"), at(7 + n, hours), actor=f"agent-{n % 2}")
        do(c, act.OpenInquiry("Q9", "online", "delivery"), at(20))
        # Complaints resolved after 24 and 48 hours.
        do(a, act.LodgeComplaint("K1", "service", "high"), at(12))
        do(a, act.ResolveComplaint("K1", "apology", True), at(13))
        do(c, act.LodgeComplaint("K2", "product", "low"), at(14))
        do(c, act.ResolveComplaint("K2", "refund", False), at(16))
        do(a, act.GiveFeedback(5, ""), at(15))
        do(c, act.GiveFeedback(2, ""), at(15))
        do(c, act.GiveFeedback(4, ""), at(16))
        ledger.change_segment(c, "vip", at(17), META)
        for name in ("directory", "kpis"):
            services.readmodels.rebuild(name)
        yield services


def kpis(services: Services, **scope: object) -> list[dict[str, object]]:
    with services.pool.connection() as conn:
        return service_kpis(
            conn,
            services.settings.readmodel_schema,
            Scope(**{"start": date(2026, 3, 1), "end": date(2026, 4, 1), **scope}),  # type: ignore[arg-type]
        )


def test_march_figures_match_the_definitions(known: Services) -> None:
    (march,) = kpis(known, period="month")
    assert march["period_start"] == date(2026, 3, 1)
    assert march["turnover"] == Decimal("140.50")  # 100 + 50.50 - 10
    assert march["profit"] == Decimal("66.25")  # 40 + 30.25 - 4
    assert march["visits"] == 3
    assert march["inquiries"] == 6
    assert march["first_response_hours_mean"] == pytest.approx(6.0)
    # p90 of 2, 4, 6, 8, 10 by linear interpolation: 8 + 0.6 * 2
    assert march["first_response_hours_p90"] == pytest.approx(9.2)
    assert march["complaints"] == 2
    assert march["complaint_resolution_hours_mean"] == pytest.approx(36.0)
    assert march["complaint_resolution_hours_p90"] == pytest.approx(45.6)  # 24 + 0.9 * 24
    assert (march["new_customers"], march["lost_customers"]) == (2, 1)
    assert march["new_to_lost_ratio"] == 2.0
    assert march["active_at_start"] == 2  # A and B; OLD closed in February
    assert march["churn_rate"] == 0.5
    assert march["satisfaction"] == pytest.approx(11 / 3)


def test_weeks_bucket_by_occurred_at(known: Services) -> None:
    weeks = kpis(known, period="week")
    assert [w["period_start"] for w in weeks][:2] == [date(2026, 2, 23), date(2026, 3, 2)]
    first_week = weeks[1]
    assert first_week["turnover"] == Decimal("140.50")
    assert first_week["new_customers"] == 2 and first_week["visits"] == 3  # Mon 2 to Sun 8


def test_kpis_split_by_segment_and_filtered_by_channel(known: Services) -> None:
    by_segment = {r["segment"]: r for r in kpis(known, period="month", split="segment")}
    assert by_segment["gold"]["turnover"] == Decimal("140.50")
    assert by_segment["gold"]["new_customers"] == 1
    assert by_segment["standard"]["new_customers"] == 1
    assert by_segment["silver"]["lost_customers"] == 1
    assert by_segment["vip"]["turnover"] == 0
    (app,) = kpis(known, period="month", channel="app")
    assert app["visits"] == 2 and app["new_customers"] == 1
