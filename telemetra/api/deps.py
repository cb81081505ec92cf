"""Dependencies shared by the routes: the services, the caller, the JSON body."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar, overload

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from telemetra.api.openapi import register_body_model
from telemetra.domain.jsonbody import parse_json, refuse_nul
from telemetra.domain.models import KeyKind
from telemetra.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from telemetra.registry.auth import Authenticator, DevicePrincipal, Principal, TenantPrincipal
from telemetra.runtime.services import Services
from telemetra.settings import Settings

__all__ = [
    "Services",
    "get_services",
    "ServicesDep",
    "api_key_header",
    "AdminDep",
    "TenantDep",
    "IngestDep",
    "DeviceDep",
    "OptionalPrincipalDep",
    "enforce_rate_limit",
    "authenticate",
    "authorize",
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
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="An admin, tenant or device key.")
api_key_header = _api_key_header  # for routes that also take a key elsewhere (seed 004's ?api_key=)


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


@overload
async def authorize(
    request: Request, kind: Literal["tenant"], *, full_scope: bool = True
) -> tuple[Services, TenantPrincipal]: ...


@overload
async def authorize(
    request: Request, kind: Literal["device"], *, full_scope: bool = True
) -> tuple[Services, DevicePrincipal]: ...


@overload
async def authorize(request: Request, kind: KeyKind, *, full_scope: bool = True) -> tuple[Services, Principal]: ...


async def authorize(request: Request, kind: KeyKind, *, full_scope: bool = True) -> tuple[Services, Principal]:
    """For a route that takes only the Request (``DirectRoute``): the services and the caller, refused exactly
    as the dependencies below refuse (401, then 429, then 403 for a key of another kind or scope)."""
    services: Services = request.app.state.services
    principal = await authenticate(request, services, request.headers.get(API_KEY_HEADER))
    return services, Authenticator.require(principal, kind, full_scope=full_scope)


async def _principal(
    request: Request, services: ServicesDep, key: Annotated[str | None, Depends(_api_key_header)]
) -> Principal:
    return await authenticate(request, services, key)


async def _optional_principal(
    request: Request, services: ServicesDep, key: Annotated[str | None, Depends(_api_key_header)]
) -> Principal | None:
    return await _principal(request, services, key) if key else None


PrincipalDep = Annotated[Principal, Depends(_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(_optional_principal)]


async def _admin(p: PrincipalDep) -> Principal:
    return Authenticator.require(p, "admin")


async def _tenant(p: PrincipalDep) -> TenantPrincipal:
    return Authenticator.require(p, "tenant")


async def _ingest(p: PrincipalDep) -> TenantPrincipal:
    return Authenticator.require(p, "tenant", full_scope=False)


async def _device(p: PrincipalDep) -> DevicePrincipal:
    return Authenticator.require(p, "device")


AdminDep = Annotated[Principal, Depends(_admin)]
TenantDep = Annotated[TenantPrincipal, Depends(_tenant)]
IngestDep = Annotated[TenantPrincipal, Depends(_ingest)]
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
