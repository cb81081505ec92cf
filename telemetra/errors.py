"""One error hierarchy for the whole platform.

Every error carries a stable machine ``code`` and the HTTP ``status`` it maps to; the API renders them
as ``{"error": <reason phrase>, "code": ..., "message": ...}`` and the ingest workers map them to a nack
or a dead letter. Messages say what happened and what to do next, and never contain a secret.

    TelemetraError (500 internal_error)
    ├── BadRequest (400 bad_request)
    │   └── InvalidJson (400 invalid_json)
    ├── Unauthorized (401 missing_api_key / invalid_api_key / api_key_expired / api_key_revoked /
    │                 invalid_credentials / invalid_token / token_expired / token_revoked / unauthorized)
    ├── Forbidden (403 wrong_key_kind / insufficient_scope / wrong_password / foreign_origin)
    │   ├── ForbiddenRole (403 forbidden_role)
    │   ├── CsrfFailed (403 csrf_failed)
    │   └── DeviceInactive (403 device_inactive)
    ├── NotFound (404 not_found)
    │   ├── UserNotFound (404 user_not_found)
    │   ├── DeviceNotFound (404 device_not_found)
    │   ├── TenantNotFound (404 tenant_not_found)
    │   ├── KeyNotFound (404 key_not_found)
    │   └── CommandNotFound (404 command_not_found)
    ├── MethodNotAllowed (405 method_not_allowed)
    ├── Conflict (409 conflict)
    │   ├── DeviceNameTaken (409 device_name_taken)
    │   ├── DeviceIdTaken (409 device_id_taken)
    │   ├── TenantNameTaken (409 tenant_name_taken)
    │   ├── CommandFinished (409 command_finished)
    │   ├── VersionConflict (409 version_conflict)
    │   ├── KeyNotUsable (409 key_not_usable)
    │   └── EmailTaken (409 email_taken)           (and Conflict own_account)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── ValidationFailed (422 validation_error)
    │   ├── RangeTooLarge (422 range_too_large)
    │   ├── TooManyRows (422 too_many_rows)
    │   ├── UnstorableValue (422 unstorable_value)
    │   └── UnstorableMessage (422 unstorable_message)
    ├── HeadersTooLarge (431 headers_too_large)
    ├── TooManyRequests (429 rate_limited)
    │   └── TooManyAttempts (429 too_many_attempts)
    ├── ServiceUnavailable (503 service_unavailable)
    │   ├── StoreUnavailable (503 database_unavailable)
    │   └── QueryTimeout (503 query_timeout)
    └── ConfigError (raised at start-up; never reaches a client)

A class's ``code`` is its default; ``variants`` names the other codes an instance may carry (``code=...``),
each with its meaning. docs/errors.md is written from these (`telemetra errors-table --write`), and a test
fails when a code raised anywhere in the package is declared nowhere or the page is stale.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "TelemetraError",
    "BadRequest",
    "InvalidJson",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "DeviceNotFound",
    "TenantNotFound",
    "KeyNotFound",
    "MethodNotAllowed",
    "Conflict",
    "DeviceNameTaken",
    "DeviceIdTaken",
    "TenantNameTaken",
    "KeyNotUsable",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "ValidationFailed",
    "UnstorableValue",
    "UnstorableMessage",
    "ServiceUnavailable",
    "StoreUnavailable",
    "ConfigError",
    "DeviceInactive",
    "HeadersTooLarge",
    "RuleNameTaken",
    "ChannelNameTaken",
    "RuleNotFound",
    "ChannelNotFound",
    "AlertNotFound",
    "CommandNotFound",
    "CommandFinished",
    "VersionConflict",
    "TooManyRequests",
    "RangeTooLarge",
    "TooManyRows",
    "QueryTimeout",
    "ForbiddenRole",
    "CsrfFailed",
    "UserNotFound",
    "EmailTaken",
    "TooManyAttempts",
]


class TelemetraError(Exception):
    """Base of every error Telemetra raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    default_message: str = "An internal error occurred; it has been logged."
    # The other codes an instance may carry, with their meaning (docs/errors.md lists them).
    variants: ClassVar[dict[str, str]] = {}
    # False for an error that never reaches a client (left out of docs/errors.md).
    sent_to_clients: ClassVar[bool] = True

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(TelemetraError):
    status, code = 400, "bad_request"
    default_message = "The request is malformed."
    variants = {"http_error": "The request was refused by the HTTP framework before any route ran."}


class InvalidJson(BadRequest):
    code = "invalid_json"
    default_message = "The body is not valid JSON; send a JSON document."


class Unauthorized(TelemetraError):
    status, code = 401, "invalid_api_key"
    default_message = "The API key is missing or unknown; send a valid key in the X-API-Key header."
    variants = {
        "missing_api_key": "No key was sent (X-API-Key header, or where the route's contract puts it).",
        "api_key_expired": "The key is past its expiry; create or rotate a key.",
        "api_key_revoked": "The key was revoked (or rotated and its grace period ended).",
        "invalid_credentials": "Device login (seed 003): wrong device id or password.",
        "missing_token": "Device login (seed 003): no token was sent.",
        "invalid_token": "Device login (seed 003): the token is malformed, or its signature or claims are wrong.",
        "token_expired": "Device login (seed 003): the token is past its expiry; log in again.",
        "token_revoked": "Device login (seed 003): the device's password changed, or the device was deleted.",
        "unauthorized": "A person is not signed in, or the session has ended; sign in again.",
    }


class Forbidden(TelemetraError):
    status, code = 403, "forbidden"
    default_message = "This key may not use this route."
    variants = {
        "wrong_key_kind": "A valid key of another kind (admin, tenant, device) than the route takes.",
        "insufficient_scope": "A tenant key of scope `ingest` on a route that needs scope `full`.",
        "wrong_password": "A person's password change with a wrong current password (the session stays).",
        "foreign_origin": "A session's stream opened from another site than the console's own.",
    }


class DeviceInactive(Forbidden):
    code = "device_inactive"
    default_message = "This device's status is inactive: its telemetry is refused until its status is active again."


class ForbiddenRole(Forbidden):
    """A signed-in person whose role does not allow the route (a viewer sending a command)."""

    code = "forbidden_role"
    default_message = "Your role does not allow this; ask an admin of your tenant."


class CsrfFailed(Forbidden):
    """A state-changing request carried by a session cookie without the page's CSRF token."""

    code = "csrf_failed"
    default_message = (
        "This request changes something and came with a session cookie but without the matching "
        "X-CSRF-Token header; send the value of the telemetra_csrf cookie in it."
    )


class NotFound(TelemetraError):
    status, code = 404, "not_found"
    default_message = "Nothing exists at this address."


class DeviceNotFound(NotFound):
    code = "device_not_found"
    default_message = "No such device in your tenant; check the device id."


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    default_message = "No such tenant; list tenants with GET /api/v1/admin/tenants."


class RuleNotFound(NotFound):
    code = "rule_not_found"
    default_message = "No such rule in your tenant."


class ChannelNotFound(NotFound):
    code = "channel_not_found"
    default_message = "No such channel in your tenant."


class AlertNotFound(NotFound):
    code = "alert_not_found"
    default_message = "No such alert in your tenant."


class KeyNotFound(NotFound):
    code = "key_not_found"
    default_message = "No such key for this tenant."


class CommandNotFound(NotFound):
    code = "command_not_found"
    default_message = "No such command for this device."


class UserNotFound(NotFound):
    code = "user_not_found"
    default_message = "No such user in your tenant."


class MethodNotAllowed(TelemetraError):
    status, code = 405, "method_not_allowed"
    default_message = "This method is not allowed on this route; see /docs."


class Conflict(TelemetraError):
    status, code = 409, "conflict"
    default_message = "The request conflicts with existing data."
    variants = {"own_account": "An admin demoting or disabling their own account; another admin must."}


class DeviceNameTaken(Conflict):
    code = "device_name_taken"
    default_message = "A device with this name already exists in your tenant; choose another name."


class DeviceIdTaken(Conflict):
    code = "device_id_taken"
    default_message = "A device with this id already exists; choose another id or omit it."


class RuleNameTaken(Conflict):
    code = "rule_name_taken"
    default_message = "A rule with this name already exists in your tenant; choose another name."


class ChannelNameTaken(Conflict):
    code = "channel_name_taken"
    default_message = "A channel with this name already exists in your tenant; choose another name."


class TenantNameTaken(Conflict):
    code = "tenant_name_taken"
    default_message = "A tenant with this name already exists; choose another name."


class CommandFinished(Conflict):
    code = "command_finished"
    default_message = "The command is already finished (succeeded, failed or expired); its state is final."


class VersionConflict(Conflict):
    code = "version_conflict"
    default_message = "The desired state has changed since the version you gave; read it again and retry."


class KeyNotUsable(Conflict):
    code = "key_not_usable"
    default_message = "This key is revoked or expired; it cannot be rotated. Create a new key instead."


class EmailTaken(Conflict):
    code = "email_taken"
    default_message = "A user with this e-mail address already exists; choose another address."


class PayloadTooLarge(TelemetraError):
    status, code = 413, "payload_too_large"
    default_message = "The body is larger than the server accepts."


class UnsupportedMediaType(TelemetraError):
    status, code = 415, "unsupported_media_type"
    default_message = "Send the body as JSON with 'Content-Type: application/json'."


class ValidationFailed(TelemetraError):
    status, code = 422, "validation_error"
    default_message = "The body is JSON but does not match what this route expects."
    variants = {
        "invalid_number": "NaN, Infinity, or a literal that reads as 0 although it is not 0 (`1e-400`).",
        "number_out_of_range": "A number other than 0 whose magnitude lies outside 1e-100 to 1e100.",
        "too_deep": "JSON nested deeper than TELEMETRA_MAX_JSON_DEPTH.",
        "too_many_keys": "More keys (or attributes) than a message or device may hold.",
        "invalid_key": "A key that is empty, too long, or holds a NUL or control character.",
        "invalid_string": "A NUL character in a string of the body or in a query parameter (`%00`).",
        "key_collision": 'Two values that flatten to one key (`{"a": {"b": 1}, "a.b": 2}`).',
        "invalid_timestamp": "A message or property time that cannot be read or lies outside the accepted window.",
        "invalid_type": "A message `type` that is not a string of the accepted length without control characters.",
        "invalid_msg_id": "A `msg_id` that is not a string or integer of the accepted length.",
        "value_too_long": "A string value of a message longer than accepted.",
        "invalid_metadata": "A message's `metadata` that is not a JSON object.",
        "invalid_data": "A message holds no values, or its fields do not have the format's shape.",
        "invalid_device_id": "A device id that is not a string of the accepted form.",
        "missing_device_id": "A message of a batch (or a watch) names no device.",
        "device_mismatch": "A device key sent a message naming another device.",
        "invalid_batch": "A batch body that is not a list of 1 to TELEMETRA_MAX_BATCH_MESSAGES messages.",
        "batch_rejected": "No message of a batch was accepted; `details` says why for each.",
        "invalid_config": "A device configuration that is not a JSON object or whose fields do not fit.",
        "invalid_status": "A device status other than `active`, `inactive` or `maintenance`.",
        "invalid_name": "A tenant name that is empty, too long or holds control characters.",
        "invalid_password": "A device password that is not a string of the accepted length.",
        "too_many_devices": "A tenant-wide read over more devices than one answer holds; ask per device.",
        "invalid_ack": "A command acknowledgement with an unknown status or a result that does not fit.",
        "invalid_ttl": "A command time to live outside its bounds.",
        "params_too_large": "Command parameters larger than accepted.",
        "state_too_large": "A desired state larger than accepted.",
        "invalid_time": "A query time that cannot be read, or a range whose end precedes its start.",
        "invalid_interval": "A bucket interval that is not one of the accepted forms.",
        "invalid_timezone": "A time zone name unknown to the IANA database.",
        "invalid_aggregate": "An aggregate other than those the route offers.",
        "too_many_buckets": "A query that would answer more than 10,000 buckets.",
        "no_key": "A statistics query with no key, for a device that has sent no number yet.",
        "not_an_energy_key": "An energy report of a key that is not a power key.",
        "invalid_devices": "A stream's device list that is empty, too long or names a device twice.",
        "invalid_rate_limit": "A rate that is not of the form `N/second|minute|hour|day`.",
        "invalid_rule": "A rule that cannot work: a condition without its key, an unknown channel or device.",
        "invalid_credentials_body": "A sign-in body whose `email` and `password` are not strings.",
        "invalid_email": "A person's e-mail that is not a string or cannot be an address.",
        "invalid_role": "A person's role other than admin, operator or viewer.",
        "invalid_tenant": "A person without a tenant who is not a platform admin.",
        "channel_kind_fixed": "A channel update that changes its kind (webhook, e-mail); create another channel.",
        "invalid_cursor": "A list's `cursor` that is not one the list gave; start again without it.",
        "invalid_channel": "A channel config that does not fit its kind (webhook or e-mail).",
        "outbound_address_refused": "A webhook or mail host that is not a public address (TELEMETRA_OUTBOUND_ALLOW).",
    }


class RangeTooLarge(ValidationFailed):
    """A read's time range is wider than its route allows (TELEMETRA_QUERY_MAX_RANGE_DAYS and its raw twin)."""

    code = "range_too_large"


class TooManyRows(ValidationFailed):
    """A read would hold more rows than TELEMETRA_QUERY_MAX_ROWS."""

    code = "too_many_rows"


class UnstorableValue(ValidationFailed):
    """The database refused a value (a NUL character, a number past its column) that no check caught first;
    the store raises it from the driver's error."""

    code = "unstorable_value"
    default_message = (
        "A value of the request is one the database cannot hold (a NUL character, or a number "
        "out of its range); correct it and retry."
    )


class UnstorableMessage(ValidationFailed):
    """The database refused what it was given to write (a value it cannot hold): the same data fails again.

    The store raises it for a batch it refuses for its content; the pipeline then writes the batch in parts
    until it has narrowed the refusal down to the messages at fault, which alone get it."""

    code = "unstorable_message"
    default_message = (
        "The database cannot store this message (it holds a value the database refuses, such as a "
        "NUL character); it was not stored, and sending it again fails the same way."
    )


class HeadersTooLarge(TelemetraError):
    status, code = 431, "headers_too_large"
    default_message = "The headers are larger than TELEMETRA_MAX_HEADER_BYTES, or more than 100 of them."


class TooManyRequests(TelemetraError):
    status, code = 429, "rate_limited"
    default_message = "Too many requests; wait as long as Retry-After says, then retry."


class TooManyAttempts(TooManyRequests):
    """Sign-in attempts past a budget (per account, per client address)."""

    code = "too_many_attempts"
    default_message = "Too many sign-in attempts; wait as long as Retry-After says, then retry."


class ServiceUnavailable(TelemetraError):
    status, code = 503, "service_unavailable"
    default_message = "The service is temporarily unavailable; retry later."


class StoreUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    default_message = "The database is unreachable; retry later."


class QueryTimeout(ServiceUnavailable):
    """A read ran past its time budget (TELEMETRA_QUERY_TIMEOUT_S) and was stopped."""

    code = "query_timeout"
    default_message = (
        "The query did not finish within its time budget and was stopped; ask for a shorter "
        "range or fewer devices, or retry later."
    )


class ConfigError(TelemetraError):
    code = "config_error"
    sent_to_clients = False
    default_message = "A setting is invalid."
