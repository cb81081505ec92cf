"""A person's session: sign in, who is signed in, sign out, change one's own password (``docs/users.md``).

The session id goes in an HttpOnly cookie the page's script cannot read; the CSRF token goes in a cookie it
can, and in the answer, and comes back in ``X-CSRF-Token`` with every request that changes something.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from telemetra.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Services,
    ServicesDep,
    authenticate_session,
    json_body_doc,
    read_model,
)
from telemetra.api.errors import error_responses
from telemetra.api.user_schemas import PasswordChange, SignIn, session_info
from telemetra.errors import Unauthorized
from telemetra.registry.auth import UserPrincipal
from telemetra.registry.sessions import not_signed_in

router = APIRouter(prefix="/api/v1/session", tags=["session"])
BODY_ERRORS = (400, 413, 415, 422)


def _set_cookies(request: Request, response: Response, services: Services, session_id: str, csrf: str) -> None:
    secure = request.url.scheme == "https"  # behind a proxy: as X-Forwarded-Proto says (TELEMETRA_FORWARDED_ALLOW_IPS)
    max_age = services.settings.session_absolute_s
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=max_age, path="/", httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", httponly=False, samesite="lax", secure=secure)


def _clear_cookies(request: Request, response: Response) -> None:
    secure = request.url.scheme == "https"
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
    response.delete_cookie(CSRF_COOKIE, path="/", httponly=False, samesite="lax", secure=secure)


async def _signed_in(request: Request, services: Services) -> UserPrincipal:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        raise not_signed_in()
    return await authenticate_session(request, services, session_id)


async def _info(services: Services, principal: UserPrincipal) -> dict[str, Any]:
    tenant_id = principal.user.tenant_id
    tenant = await services.store.get_tenant(tenant_id) if tenant_id is not None else None
    return session_info(principal, tenant)


@router.post(
    "",
    responses=error_responses(*BODY_ERRORS, 401, 429, 503),
    openapi_extra=json_body_doc(SignIn),
    summary="Sign in (sets the session and CSRF cookies)",
)
async def sign_in(request: Request, response: Response, services: ServicesDep) -> dict[str, Any]:
    """`{"email", "password"}` → the session (`SessionInfo`); a wrong e-mail or password: 401
    `invalid_credentials`, the same answer for both; too many attempts: 429 `too_many_attempts`."""
    body = await read_model(request, services.settings, SignIn)
    client = request.client.host if request.client else "unknown"
    session_id, principal = await services.sessions.sign_in(body.email, body.password, client)
    _set_cookies(request, response, services, session_id, principal.csrf_token)
    return await _info(services, principal)


@router.get("", responses=error_responses(401, 429), summary="Who is signed in")
async def whoami(request: Request, services: ServicesDep) -> dict[str, Any]:
    """The signed-in person and the session's CSRF token; 401 `unauthorized` when not signed in."""
    return await _info(services, await _signed_in(request, services))


@router.delete("", status_code=204, responses=error_responses(403, 429), summary="Sign out")
async def sign_out(request: Request, services: ServicesDep) -> Response:
    """Ends the session (with its CSRF token in `X-CSRF-Token`) and clears the cookies; 204 also when the
    session had already ended."""
    answer = Response(status_code=204)
    try:
        principal = await _signed_in(request, services)
    except Unauthorized:
        _clear_cookies(request, answer)
        return answer
    await services.sessions.sign_out(principal)
    _clear_cookies(request, answer)
    return answer


@router.put(
    "/password",
    status_code=204,
    responses=error_responses(*BODY_ERRORS, 401, 403, 429),
    openapi_extra=json_body_doc(PasswordChange),
    summary="Change your own password (your other sessions end)",
)
async def change_password(request: Request, services: ServicesDep) -> Response:
    """`{"current_password", "new_password"}` → 204; a wrong current password: 403 `wrong_password` (this
    session stays)."""
    principal = await _signed_in(request, services)
    body = await read_model(request, services.settings, PasswordChange)
    await services.sessions.change_password(principal, body.current_password, body.new_password)
    return Response(status_code=204)
