"""Mosquitto's own password and ACL files, written from the device registry.

Devices authenticate to the broker with username = device id and password = the device's API key, and
may publish only under their own id. Telemetra keeps only a SHA-256 of each key (``domain.keys``), which
the broker cannot check a password against: the broker's hash must be computed while the plain key is
known, i.e. when a key is created or rotated, and stored beside it for the sync that writes these files.

The hash is the line ``mosquitto_passwd`` 2.0 writes (checked against Mosquitto's source:
apps/mosquitto_passwd/mosquitto_passwd.c ``output_new_password`` and common/password_mosq.c ``pw__hash``,
``base64__encode``): ``$7$<iterations>$<base64 salt>$<base64 key>``, where 7 is ``pw_sha512_pbkdf2``, the
key is PBKDF2-HMAC-SHA512 over the password's bytes, 64 bytes long, the salt 12 random bytes, and base64 is
the standard alphabet with padding and no line breaks. The 2.0 broker drops any entry whose salt is not
12 bytes or whose key is not 64, so those sizes are fixed here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

__all__ = [
    "MOSQUITTO_PBKDF2_ITERATIONS",
    "DEVICE_PLACEHOLDER",
    "mosquitto_hash",
    "verify_mosquitto_hash",
    "password_file",
    "acl_file",
    "check_send_topic",
]

# Mosquitto's default (PW_DEFAULT_ITERATIONS in 2.0). It is low because the broker runs the hash on every
# CONNECT, and our passwords are API keys with 256 random bits: no guess list exists for a slow hash to slow.
MOSQUITTO_PBKDF2_ITERATIONS = 101

PBKDF2_SHA512_TYPE = "7"  # pw_sha512_pbkdf2 in Mosquitto's enum mosquitto_pwhash_type
SALT_BYTES = 12
# In TELEMETRA_SEND_COMMAND_TOPIC, a topic level that seed 001's POST /send fills with the device's id.
DEVICE_PLACEHOLDER = "{device_id}"
DERIVED_KEY_BYTES = 64


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_PBKDF2_ITERATIONS) -> str:
    """Return ``password`` hashed as a Mosquitto password-file entry (the part after ``username:``)."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    elif len(salt) != SALT_BYTES:
        raise ValueError(f"Mosquitto 2.0 accepts only a {SALT_BYTES}-byte salt")
    derived = _derive(password, salt, iterations)
    return f"${PBKDF2_SHA512_TYPE}${iterations}${_b64(salt)}${_b64(derived)}"


def verify_mosquitto_hash(password: str, line_hash: str) -> bool:
    """Return whether ``password`` matches ``line_hash``; ValueError when the hash is not a ``$7$`` one."""
    iterations, salt, expected = _parse(line_hash)
    return hmac.compare_digest(_derive(password, salt, iterations), expected)


def password_file(entries: Iterable[tuple[str, str]]) -> str:
    """Return a Mosquitto password file: a ``username:hash`` line per entry, sorted by username."""
    lines: dict[str, str] = {}
    for username, line_hash in entries:
        _check_username(username)
        if username in lines:
            # The broker would keep one of the two silently; a clash (a device named like the service
            # user, say) is a registry problem to surface, not to resolve by chance.
            raise ValueError(f"username {username!r} appears twice")
        lines[username] = f"{username}:{line_hash}\n"
    return "".join(lines[username] for username in sorted(lines))


def check_send_topic(topic: str) -> str | None:
    """Return why ``topic`` cannot be seed 001's command topic, or None when it can.

    It is published to, so it holds no wildcard; ``{device_id}`` may stand for one whole level (each device
    then has a topic of its own, which the ACL lets it read, and the worker writes ``+`` in its place)."""
    if not topic or "\0" in topic or any(ord(char) < 32 for char in topic):
        return "the command topic is empty or holds a control character"
    levels = topic.split("/")
    if any(wild in level for level in levels for wild in ("+", "#")):
        return "the command topic is published to: it may not hold the wildcards + or #"
    with_placeholder = [level for level in levels if DEVICE_PLACEHOLDER in level]
    if len(with_placeholder) > 1 or (with_placeholder and with_placeholder[0] != DEVICE_PLACEHOLDER):
        return (
            f"{DEVICE_PLACEHOLDER} may stand once, for one whole level of the command topic (a/{DEVICE_PLACEHOLDER}/b)"
        )
    if "%" in topic:
        return "the command topic may not hold % (the broker's ACL reads %u and %c as names)"
    return None


def acl_file(service_user: str, send_topic: str = "send_command") -> str:
    """Return a Mosquitto ACL file: every device confined to ``devices/<its id>/``, plus the worker's rights.

    ``pattern`` lines apply to every authenticated user, with ``%u`` replaced by the username, so one file
    serves any number of devices and needs no rewrite when a device is added. Mosquitto 2.0 itself denies
    pattern access to a username containing ``+``, ``#`` or ``/``, so a device cannot widen its own rule.
    ``send_topic`` is seed 001's command topic (TELEMETRA_SEND_COMMAND_TOPIC): the worker writes it, and with
    ``{device_id}`` in it each device reads its own; one topic for every device is read by no device, since
    it carries the orders of every tenant's devices (a gateway reads it with a login of its own, added by hand).
    """
    _check_username(service_user)
    if service_user != service_user.strip():
        raise ValueError("the service user cannot start or end with a blank: the broker would not match it")
    problem = check_send_topic(send_topic)
    if problem is not None:
        raise ValueError(problem)
    per_device = DEVICE_PLACEHOLDER in send_topic
    device_send_rule = (
        [f"pattern read {send_topic.replace(DEVICE_PLACEHOLDER, '%u')}"]  # seed 001's orders for it (POST /send)
        if per_device
        else [f"# {send_topic} (POST /send) carries every device's orders: no device reads it."]
    )
    return "\n".join(
        [
            "# Written by Telemetra from its device registry; edits are overwritten.",
            "",
            "# Devices (username = device id): each only under its own id.",
            "pattern write devices/%u/telemetry",  # measurements it sends
            "pattern write devices/%u/state",  # online/offline, also its last will
            "pattern write devices/%u/commands/ack",  # results of the commands it was sent
            "pattern write devices/%u/attributes",  # attributes it reports about itself
            "pattern read devices/%u/commands",  # commands addressed to it
            "pattern read devices/%u/desired",  # desired state (configuration) addressed to it
            *device_send_rule,
            "",
            # Shared subscriptions ($share/<group>/<filter>) need no rule of their own in Mosquitto 2.0: its
            # acl_file check allows every SUBSCRIBE ("FIXME - implement ACL subscription strings" in
            # mosquitto_acl_check_default) and checks READ when a message is delivered, against the message's
            # own topic (subs__send), so `$share/telemetra/devices/+/telemetry` is governed by the
            # `devices/+/telemetry` rule below. A `$share/#` rule would grant nothing. Every member of a share
            # group must have the read right: the broker picks one member and drops the message if that one
            # is denied.
            f"# The Telemetra worker ({service_user}): reads what devices send, writes what they are sent.",
            f"user {service_user}",
            "topic read devices/+/telemetry",  # ingest
            "topic read devices/+/state",  # connection tracking
            "topic read devices/+/commands/ack",  # command results
            "topic write devices/+/commands",  # commands to a device
            "topic write devices/+/desired",  # desired state to a device
            f"topic write {send_topic.replace(DEVICE_PLACEHOLDER, '+')}",  # seed 001's command topic (POST /send)
            "",
        ]
    )


def _derive(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", _password_bytes(password), salt, iterations, DERIVED_KEY_BYTES)


def _password_bytes(password: str) -> bytes:
    # Mosquitto hashes strlen(password) bytes: after a NUL the broker would check a shorter password.
    if "\0" in password:
        raise ValueError("a Mosquitto password cannot contain a NUL character")
    return password.encode("utf-8")


def _parse(line_hash: str) -> tuple[int, bytes, bytes]:
    parts = line_hash.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != PBKDF2_SHA512_TYPE or not parts[2].isdigit():
        raise ValueError("not a Mosquitto $7$ (PBKDF2-SHA512) hash")
    iterations, salt, derived = int(parts[2]), _unb64(parts[3]), _unb64(parts[4])
    if iterations < 1 or len(salt) != SALT_BYTES or len(derived) != DERIVED_KEY_BYTES:
        raise ValueError("a Mosquitto $7$ hash has iterations >= 1, a 12-byte salt and a 64-byte key")
    return iterations, salt, derived


def _check_username(username: str) -> None:
    # The rules of mosquitto_passwd (is_username_valid): ':' ends the username in the file, and a control
    # character such as a line break would start a line of the sender's choosing.
    if not username or ":" in username or any(ord(char) < 32 or ord(char) == 127 for char in username):
        raise ValueError(f"username {username!r} is empty or holds ':' or a control character (a line break)")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("invalid base64 in a Mosquitto hash") from exc
