"""A small known history for the report tests, every figure of it worked out by hand.

The review range is April 2026, [2026-04-01, 2026-05-01): 30 days, so the
scheme review's previous period is [2026-03-02, 2026-04-01).

| account | segment | plan | channel | opened | afterwards |
|---|---|---|---|---|---|
| A | gold | standard | store | 2026-03-05 | |
| B | silver | standard | online | 2026-03-10 | closed 2026-04-10 |
| C | gold | premium | app | 2026-04-02 | moved to vip 2026-04-20 |
| D | standard | standard | store | 2026-04-05 | |
| E | silver | standard | store | 2025-01-10 | details never confirmed |
| F | standard | standard | phone | 2025-02-01 | details confirmed 2026-03-01 |
| G | silver | standard | online | 2026-03-03 | closed 2026-03-20 |
| H | standard | standard | store | 2025-01-01 | personal data erased 2026-03-15 |

March (previous period): B buys 40.00 (cost 30.00), visits once, asks one
inquiry answered after 30 hours by agent-0, and gives feedback 4.

April: A buys 100.00 (cost 60.00) and refunds 10.00 (cost 6.00) at "central",
C buys 50.50 (cost 20.25) at "web", D buys 20.00 USD (cost 5.00) at
"central". Visits: A once (store), C twice (app). A's five phone inquiries are
answered after 2 and 4 hours by agent-0 and 6, 8 and 10 hours by agent-1; C's
online inquiry stays open. Complaints are resolved after 24 hours (A, agent-1,
satisfied), 48 hours (C, agent-1, not satisfied) and 6 hours (D, supervisor,
satisfied). Feedback: A 5, C 2 and 4.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from domain import activities as act
from infra.wiring import Services

META = {"actor": "clerk-1", "department": "customer_service"}


def day(month: int, d: int, year: int = 2026, hours: float = 9) -> datetime:
    """A moment of the history: 09:00 UTC on that day, plus or minus hours."""
    return datetime(year, month, d, tzinfo=UTC) + timedelta(hours=hours)


def build(services: Services) -> dict[str, UUID]:
    """Write the history through the ledger and rebuild the read models; returns the ids."""
    ledger = services.ledger

    def open_(ref: str, segment: str, channel: str, when: datetime, plan: str = "standard") -> UUID:
        return ledger.open_account(
            external_ref=ref,
            segment=segment,
            service_plan=plan,
            channel=channel,
            customer={"name": f"Customer {ref}", "email": f"{ref.lower()}@example.com"},
            occurred_at=when,
            meta=META,
        ).id

    def do(account: UUID, activity: act.Activity, when: datetime, actor: str = "clerk-1") -> None:
        ledger.record_activity(account, activity, when, {**META, "actor": actor})

    ids = {
        "H": open_("H", "standard", "store", day(1, 1, 2025)),
        "E": open_("E", "silver", "store", day(1, 10, 2025)),
        "F": open_("F", "standard", "phone", day(2, 1, 2025)),
    }
    ledger.confirm_details(ids["F"], day(3, 1), META)
    ids["G"] = open_("G", "silver", "online", day(3, 3))
    ids["A"] = open_("A", "gold", "store", day(3, 5))
    ids["B"] = open_("B", "silver", "online", day(3, 10))
    a, b = ids["A"], ids["B"]
    do(b, act.Purchase(Decimal("40.00"), Decimal("30.00"), "HKD", "central"), day(3, 12))
    do(b, act.Visit("online", "web"), day(3, 12))
    do(b, act.OpenInquiry("QM", "online", "delivery"), day(3, 12))
    do(b, act.AnswerInquiry("QM", "online"), day(3, 12, hours=9 + 30), actor="agent-0")
    do(b, act.GiveFeedback(4, ""), day(3, 13))
    ledger.erase(ids["H"], "request", day(3, 15), META)
    ledger.close_account(ids["G"], "inactivity", "", day(3, 20), META)

    ids["C"] = c = open_("C", "gold", "app", day(4, 2), plan="premium")
    ids["D"] = d = open_("D", "standard", "store", day(4, 5))
    do(a, act.Purchase(Decimal("100.00"), Decimal("60.00"), "HKD", "central"), day(4, 3))
    do(c, act.Purchase(Decimal("50.50"), Decimal("20.25"), "HKD", "web"), day(4, 6))
    do(a, act.Refund(Decimal("10.00"), Decimal("6.00"), "HKD", "central"), day(4, 8))
    do(d, act.Purchase(Decimal("20.00"), Decimal("5.00"), "USD", "central"), day(4, 9))
    do(a, act.Visit("store", "central"), day(4, 9))
    do(c, act.Visit("app", "home"), day(4, 9))
    do(c, act.Visit("app", "home"), day(4, 10))
    ledger.close_account(b, "customer_request", "", day(4, 10), META)
    for n, (hours, agent) in enumerate(
        ((2, "agent-0"), (4, "agent-0"), (6, "agent-1"), (8, "agent-1"), (10, "agent-1"))
    ):
        do(a, act.OpenInquiry(f"Q{n}", "phone", "billing"), day(4, 11 + n))
        do(a, act.AnswerInquiry(f"Q{n}", "phone"), day(4, 11 + n, hours=9 + hours), actor=agent)
    do(a, act.LodgeComplaint("K1", "service", "high"), day(4, 15))
    do(a, act.ResolveComplaint("K1", "apology", True), day(4, 16), actor="agent-1")
    do(c, act.LodgeComplaint("K2", "product", "low"), day(4, 16))
    do(c, act.ResolveComplaint("K2", "refund", False), day(4, 18), actor="agent-1")
    do(d, act.LodgeComplaint("K3", "queue", "medium"), day(4, 17))
    do(d, act.ResolveComplaint("K3", "apology", True), day(4, 17, hours=15), actor="supervisor")
    do(a, act.GiveFeedback(5, ""), day(4, 18))
    do(c, act.GiveFeedback(2, ""), day(4, 18))
    do(c, act.GiveFeedback(4, ""), day(4, 19))
    ledger.change_segment(c, "vip", day(4, 20), META)
    do(c, act.OpenInquiry("Q9", "online", "delivery"), day(4, 21))
    for name in ("directory", "kpis"):
        services.readmodels.rebuild(name)
    return ids
