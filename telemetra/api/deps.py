"""Dependencies shared by the routes: the services, the caller, the JSON body.

A device's own routes (``DeviceDep``, and ``authorize(request, "device")`` for the ingest routes) take its key
or, without one, a login token of seed 003's POST /auth/login."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar, overload

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from telemetra.api.openapi import register_body_model
from telemetra.domain.jsonbody import parse_json, refuse_nul
from telemetra.domain.models import KeyKind
from telemetra.errors import CsrfFailed, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from telemetra.registry.auth import Authenticator, Caller, DevicePrincipal, Principal, TenantCaller, UserPrincipal
from telemetra.registry.roles import Permission, require_permission, require_platform
from telemetra.runtime.services import Services
from telemetra.settings import Settings

__all__ = [
    "Services",
    "get_services",
    "ServicesDep",
    "api_key_header",
    "AdminDep",
    "TenantDep",
    "ReadDep",
    "OperateDep",
    "ManageDep",
    "IngestDep",
    "DeviceDep",
    "CallerDep",
    "OptionalPrincipalDep",
    "needs",
    "enforce_rate_limit",
    "authenticate",
    "authenticate_session",
    "identify",
    "authenticate_device",
    "login_token",
    "authorize",
    "SESSION_COOKIE",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "read_json",
    "read_document",
    "read_model",
    "json_body_doc",
]

Model = TypeVar("Model", bound=BaseModel)


# The dependencies below are coroutines although they never await: FastAPI runs a plain function
# dependency in a worker thread, two thread hops per request on the ingest path.
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
API_KEY_HEADER = "X-API-Key"
BEARER = "bearer "
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="An admin, tenant or device key.")
api_key_header = _api_key_header  # for routes that also take a key elsewhere (seed 004's ?api_key=)
# A person's session (HttpOnly) and the CSRF token the page's script reads and sends back in the header.
SESSION_COOKIE = "telemetra_session"
CSRF_COOKIE = "telemetra_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def enforce_rate_limit(
    request: Request, services: Services, kind: str, *, tenant_id: int | None, device_pk: int | None
) -> None:
    """Count the request against its limit (429 past it); the answer carries the RateLimit-* headers."""
    # The route's template; the raw path (built into a URL only then) when no route matched.
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    verdict = await services.rate_limits.enforce(kind, request.method, route, tenant_id=tenant_id, device_pk=device_pk)
    if verdict is not None:
        request.state.rate_limit_headers = verdict.headers()


async def authenticate(request: Request, services: Services, key: str | None) -> Principal:
    """The caller of a presented key (401 when there is none, or it is unknown, expired or revoked), counted
    against its rate limit (429 past it)."""
    principal = await services.auth.authenticate(key)
    await enforce_rate_limit(
        request,
        services,
        principal.kind,
        tenant_id=principal.tenant_id,
        device_pk=principal.device.pk if principal.device else None,
    )
    return principal


async def authenticate_session(request: Request, services: Services, session_id: str) -> UserPrincipal:
    """The person of a session cookie (401 when it is unknown or ended), whose request, when it changes
    something, carries the session's CSRF token (403 ``csrf_failed``), counted against their tenant's rate."""
    principal = await services.sessions.authenticate(session_id)
    if request.method not in SAFE_METHODS and not services.sessions.csrf_matches(
        principal, request.headers.get(CSRF_HEADER)
    ):
        raise CsrfFailed()
    kind = "tenant" if principal.tenant_id is not None else "admin"
    await enforce_rate_limit(request, services, kind, tenant_id=principal.tenant_id, device_pk=None)
    return principal


async def identify(request: Request, services: Services, key: str | None) -> Caller:
    """The caller: the key sent in X-API-Key when there is one (scripts, devices), else the person of the
    session cookie (a browser cannot send the header); 401 when there is neither."""
    if key:
        return await authenticate(request, services, key)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        return await authenticate_session(request, services, session_id)
    return await authenticate(request, services, None)


def login_token(request: Request) -> str | None:
    """A device login token (seed 003's POST /auth/login) in the `token` header or as `Authorization: Bearer`."""
    token = request.headers.get("token")
    if token is None:
        authorization = request.headers.get("authorization", "")
        if authorization[: len(BEARER)].lower() == BEARER:
            token = authorization[len(BEARER) :].strip()
    return token or None


async def authenticate_device(request: Request, services: Services, key: str | None) -> DevicePrincipal:
    """The caller of a device's own routes: its key in X-API-Key or, when no key is sent, a login token
    (``login_token``); refused as keys are (401, then 429, then 403 for a key of another kind)."""
    if not key:
        token = login_token(request)
        if token is not None:
            device = await services.login.authenticate(token)
            await enforce_rate_limit(request, services, "device", tenant_id=device.tenant_id, device_pk=device.pk)
            return DevicePrincipal.of_token(device)
    return Authenticator.require(await authenticate(request, services, key), "device")


@overload
async def authorize(
    request: Request, kind: Literal["tenant"], *, full_scope: bool = True
) -> tuple[Services, TenantCaller]: ...


@overload
async def authorize(
    request: Request, kind: Literal["device"], *, full_scope: bool = True
) -> tuple[Services, DevicePrincipal]: ...


async def authorize(request: Request, kind: KeyKind, *, full_scope: bool = True) -> tuple[Services, Any]:
    """For a route that takes only the Request (``DirectRoute``): the services and the caller, refused exactly
    as the dependencies below refuse (401, then 429, then 403 for a key of another kind or scope, or a role
    too low). A tenant route also takes a session, looked for only when no key was sent: a key's caller
    pays nothing for it."""
    services: Services = request.app.state.services
    key = request.headers.get(API_KEY_HEADER)
    if kind == "device":
        return services, await authenticate_device(request, services, key)
    if not key and kind == "tenant":
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            person = await authenticate_session(request, services, session_id)
            return services, require_permission(person, "manage" if full_scope else "ingest")
    principal = await authenticate(request, services, key)
    return services, Authenticator.require(principal, kind, full_scope=full_scope)


async def _caller(
    request: Request, services: ServicesDep, key: Annotated[str | None, Depends(_api_key_header)]
) -> Caller:
    return await identify(request, services, key)


async def _optional_caller(
    request: Request, services: ServicesDep, key: Annotated[str | None, Depends(_api_key_header)]
) -> Caller | None:
    if key or request.cookies.get(SESSION_COOKIE):
        return await identify(request, services, key)
    return None


CallerDep = Annotated[Caller, Depends(_caller)]
OptionalPrincipalDep = Annotated[Caller | None, Depends(_optional_caller)]


def needs(permission: Permission) -> Callable[..., Awaitable[TenantCaller]]:
    """A dependency giving a tenant's caller allowed ``permission`` (``registry/roles.py``): a route declares
    what it needs by its parameter's type, ``ReadDep``, ``OperateDep``, ``ManageDep`` or ``IngestDep``."""

    async def dependency(caller: CallerDep) -> TenantCaller:
        return require_permission(caller, permission)

    dependency.__name__ = f"needs_{permission}"
    return dependency


ReadDep = Annotated[TenantCaller, Depends(needs("read"))]
OperateDep = Annotated[TenantCaller, Depends(needs("operate"))]
ManageDep = Annotated[TenantCaller, Depends(needs("manage"))]
IngestDep = Annotated[TenantCaller, Depends(needs("ingest"))]


async def _tenant(request: Request, caller: CallerDep) -> TenantCaller:
    return require_permission(caller, "read" if request.method in SAFE_METHODS else "manage")


# For a route that has not declared its need: reading for GET, admin for anything that changes (fails closed).
TenantDep = Annotated[TenantCaller, Depends(_tenant)]


async def _device(
    request: Request, services: ServicesDep, key: Annotated[str | None, Depends(_api_key_header)]
) -> DevicePrincipal:
    return await authenticate_device(request, services, key)


async def _admin(caller: CallerDep) -> Caller:
    return require_platform(caller)


AdminDep = Annotated[Caller, Depends(_admin)]
DeviceDep = Annotated[DevicePrincipal, Depends(_device)]


async def read_json(request: Request, settings: Settings, *, max_bytes: int | None = None) -> Any:
    """Read and parse the JSON body: 415 for another content type, 413 past the limit, 400 if not JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType()
    limit = max_bytes or settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes; send less per request.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes; send less per request.")
        chunks.append(chunk)
    return parse_json(b"".join(chunks), max_depth=settings.max_json_depth)


async def read_document(request: Request, settings: Settings) -> Any:
    """``read_json`` for a body that is stored as it is, in whole or in part (every body but telemetry, whose
    fields the domain checks one by one): 422 when a string or key holds a NUL, naming where."""
    doc = await read_json(request, settings)
    refuse_nul(doc)
    return doc


async def read_model(request: Request, settings: Settings, model: type[Model]) -> Model:
    """Read the JSON body (``read_document``) and validate it against ``model`` (422 with per-field details)."""
    doc = await read_document(request, settings)
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        errors = [([str(p) for p in err["loc"]], err["msg"]) for err in exc.errors()]
        details = [{"loc": loc, "msg": msg} for loc, msg in errors]
        where = ", ".join(".".join(loc) + ": " + msg for loc, msg in errors[:3])
        raise ValidationFailed(f"Invalid body: {where}", details=details) from exc


def json_body_doc(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """Return ``openapi_extra`` documenting a JSON body read by ``read_json``/``read_model``."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # the models it refers to become components (``openapi.register_body_model``)
    register_body_model(model)
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}
