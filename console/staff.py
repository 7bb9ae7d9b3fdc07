"""Who may use a console page: the signed-in staff member, the roles matrix, checked forms.

The roles matrix is api/auth.py's, the same the API applies to bearer tokens;
a console page asks for a permission as an API route does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from api.auth import MATRIX, Forbidden, Permission, Principal
from console.rendering import CsrfRefused
from console.sessions import CSRF_FIELD, SignInRequired, csrf_ok, signed_in
from infra.wiring import Services


def services_of(request: Request) -> Services:
    """The services the app was built with."""
    services: Services = request.app.state.services
    return services


async def staff(request: Request) -> Principal:
    """The signed-in staff member; anyone else is sent to the sign-in page."""
    user = signed_in(request, services_of(request).settings)
    if user is None:
        raise SignInRequired
    request.state.staff = user  # so a refusal page still shows who is signed in
    return user


Staff = Annotated[Principal, Depends(staff)]


def permit(user: Principal, *permissions: Permission) -> None:
    """Refuse (403) unless `user` holds one of `permissions`, in the API's words."""
    if not any(user.may(p) for p in permissions):
        allowed = sorted(set().union(*(MATRIX[p] for p in permissions)))
        raise Forbidden(f"this needs one of the roles: {', '.join(allowed)}")


async def checked_form(request: Request) -> FormData:
    """The posted form, refused (403) unless it carries this session's CSRF token."""
    form = await request.form()
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise CsrfRefused
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]
