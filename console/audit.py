"""The audit pages' first part: verify the ledger (or one account) with progress, and the digest.

A verification reads every stored row in store order, as `GET /v1/audit/verify`
does, through the same pieces (infra/verification.py's `stored_records` fed to
domain/integrity.py's `ChainVerifier`), but in a background job (console/jobs.py)
so the page shows how far it got, and it lists every broken account with where
it first breaks, not only the first. The whole ledger is verified up to the
position it had when the job started, so the progress has an end.

The digest is `GET /v1/audit/digest`'s own function. It reads every event too,
so the page asks for it with htmx once loaded instead of making the page wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from api.auth import Permission, Principal
from api.routers.audit import digest as digest_route
from console.audit_inputs import Inputs
from console.jobs import Job, JobsBusy, job_page, jobs_of, polled
from console.rendering import ConsoleRoute, fragment, render, status_of
from console.staff import CheckedForm, Staff, permit, services_of
from domain.errors import AccountNotFound, LedgerError
from domain.integrity import Break, ChainVerifier
from infra.verification import check_position, stored_records
from infra.wiring import Services

router = APIRouter(prefix="/console/audit", route_class=ConsoleRoute, include_in_schema=False)

KIND = "verify"
PAGE = 5000  # rows a query, as the API's verification reads them
_HEX = frozenset("0123456789abcdef")


def audit_tabs(user: Principal) -> list[tuple[str, str]]:
    """The audit pages this person may open: (address, label)."""
    tabs = [
        ("/console/audit", "Verify and digest"),
        ("/console/audit/events", "Event feed"),
        ("/console/audit/access-log", "Access log"),
    ]
    if user.may(Permission.DATA_ACCESS_REQUEST):
        tabs.append(("/console/audit/personal-data", "Personal data"))
    return tabs


@dataclass(frozen=True)
class Verified:
    """What a verification found: counts, every broken account's first break, the digest."""

    account_id: UUID | None
    events: int
    accounts: int
    breaks: list[Break]
    position: int | None
    digest: str | None
    kept_digest: str | None

    @property
    def digest_matches(self) -> bool | None:
        """Whether a kept digest still holds; None when none was given."""
        return None if self.kept_digest is None else self.kept_digest == self.digest

    @property
    def ok(self) -> bool:
        return not self.breaks and self.digest_matches is not False


def verification(
    services: Services, account_id: UUID | None, up_to: int | None, kept: str | None
) -> Callable[[Job], Verified]:
    """The work of one verification job: the API's chain check, reporting its progress."""

    def work(job: Job) -> Verified:
        verifier = ChainVerifier()
        records = stored_records(services.ledger.recorder, account_id, PAGE, up_to)
        for count, record in enumerate(records, start=1):
            verifier.check(record)
            # Positions may skip (a rolled-back insert): the position says how far, not the count.
            job.reached(count if account_id is not None else record.position)
        report = verifier.finish()
        whole = account_id is None
        return Verified(
            account_id=account_id,
            events=report.events,
            accounts=report.accounts,
            breaks=sorted(verifier.breaks.values(), key=lambda b: (b.position, b.version)),
            position=report.position if whole else None,
            digest=report.digest if whole else None,
            kept_digest=kept,
        )

    return work


def _fields(form: FormData, *names: str) -> dict[str, str]:
    # Only text fields, each cut to a length no right value reaches.
    return {n: v[:200] for n in names if isinstance(v := form.get(n), str)}


def audit_page(
    request: Request, user: Principal, template: str, status: int = 200, **context: object
) -> Response:
    """An audit page with the section's tabs, and its form's values and errors (none by default)."""
    return render(
        request,
        template,
        user,
        status,
        tabs=audit_tabs(user),
        values=context.pop("values", {}),
        errors=context.pop("errors", {}),
        **context,
    )


def _page(request: Request, user: Principal, status: int = 200, **context: object) -> Response:
    return audit_page(request, user, "audit.html", status, **context)


@router.get("", name="console_audit")
def audit(request: Request, user: Staff) -> Response:
    """Verify the ledger or one account; the current digest (loaded once the page shows)."""
    permit(user, Permission.AUDIT)
    return _page(request, user)


@router.get("/digest", name="console_audit_digest")
def digest(request: Request, user: Staff) -> Response:
    """The ledger digest now: the fragment for htmx, else the audit page showing it."""
    permit(user, Permission.AUDIT)
    kept = digest_route(user=user, services=services_of(request), position=None)
    if polled(request):
        return fragment(request, "audit_digest.html", {"digest": kept})
    return _page(request, user, digest=kept)


@router.post("/verify", name="console_audit_verify")
def start_verify(
    request: Request,
    user: Staff,
    form: CheckedForm,
) -> Response:
    """Start a verification (the whole ledger, one account, or against a kept digest)."""
    permit(user, Permission.AUDIT)
    services = services_of(request)
    inputs = Inputs(_fields(form, "account_id", "digest", "position"), "UTC")
    account = inputs.account()
    kept = inputs.text("digest").lower() or None
    at = inputs.count("position", 0, 1) or None
    errors = inputs.errors
    if kept is not None and (len(kept) != 64 or not set(kept) <= _HEX):
        errors["digest"] = "a digest is 64 hexadecimal characters"
    # The API's rules for a kept digest: with its position, over the whole ledger.
    if kept is not None and at is None and "position" not in errors:
        errors["position"] = "give the position the kept digest was taken at"
    if at is not None and kept is None and "digest" not in errors:
        errors["digest"] = "give the digest kept at that position"
    if kept is not None and account is not None:
        errors["account_id"] = "a digest covers the whole ledger: leave the account ID empty"
    if errors:
        return _page(request, user, 422, values=inputs.raw, errors=errors)
    recorder = services.ledger.recorder
    try:
        if account is not None:
            last = recorder.select_events(account, desc=True, limit=1)
            if not last:
                raise AccountNotFound(f"no account {account}")
            total = last[0].originator_version
        elif at is not None:
            check_position(recorder, at)
            total = at
        else:
            at = recorder.max_notification_id() or None
            total = at or 0
    except LedgerError as e:
        field = "account_id" if account is not None else "position"
        return _page(request, user, status_of(e), values=inputs.raw, errors={field: str(e)})
    key = f"{account or 'ledger'}@{at or ''}:{kept or ''}"
    title = f"account {account}" if account else "the whole ledger"
    if at is not None:
        title += f" up to position {at}"
    try:
        job = jobs_of(request.app).start(
            KIND, key, user.sub, total, verification(services, account, at, kept), title
        )
    except JobsBusy as e:
        return _page(request, user, 503, values=inputs.raw, errors={"form": f"{e}."})
    return RedirectResponse(f"/console/audit/verify/{job.id}", status_code=303)


@router.get("/verify/{job_id}", name="console_audit_verification")
def verification_page(request: Request, user: Staff, job_id: str) -> Response:
    """A verification's progress, then its result; htmx polls the fragment every second."""
    permit(user, Permission.AUDIT)
    return job_page(
        request,
        user,
        job_id,
        kind=KIND,
        progress="audit_progress.html",
        page="audit_verify.html",
        tabs=audit_tabs(user),
    )
