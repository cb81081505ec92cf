"""Mosquitto's password hash and files: our hash has the broker's shape, and the broker's tool agrees with us."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from telemetra.domain.mosquitto_auth import (
    MOSQUITTO_PBKDF2_ITERATIONS,
    acl_file,
    check_send_topic,
    mosquitto_hash,
    password_file,
    verify_mosquitto_hash,
)

MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
HASH_SHAPE = re.compile(r"\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")
DEVICE_KEY = "tlmd_Xq3v-8pQm2s9aZ_wLk0RtYbN4cD7eF1gH5jK6lM2nO0"


def require_mosquitto_passwd() -> str:
    """The tool's path; its absence fails the test (`make test` installs the mosquitto package)."""
    if not shutil.which(MOSQUITTO_PASSWD):
        pytest.fail(f"{MOSQUITTO_PASSWD} is required (install the mosquitto package)", pytrace=False)
    return MOSQUITTO_PASSWD


def test_our_hash_has_mosquittos_shape_and_verifies() -> None:
    line_hash = mosquitto_hash(DEVICE_KEY)
    match = HASH_SHAPE.fullmatch(line_hash)
    assert match, line_hash
    assert int(match[1]) == MOSQUITTO_PBKDF2_ITERATIONS
    assert len(base64.b64decode(match[2])) == 12 and len(base64.b64decode(match[3])) == 64
    assert verify_mosquitto_hash(DEVICE_KEY, line_hash)
    assert not verify_mosquitto_hash(DEVICE_KEY + "x", line_hash)


def test_each_hash_gets_its_own_salt() -> None:
    assert mosquitto_hash(DEVICE_KEY) != mosquitto_hash(DEVICE_KEY)


def test_a_given_salt_and_iteration_count_are_used() -> None:
    salt = bytes(range(12))
    line_hash = mosquitto_hash("pw", salt=salt, iterations=7)
    assert line_hash == mosquitto_hash("pw", salt=salt, iterations=7)
    assert line_hash.startswith(f"$7$7${base64.b64encode(salt).decode()}$")
    assert verify_mosquitto_hash("pw", line_hash)


@pytest.mark.parametrize("kwargs", [{"salt": b"short"}, {"iterations": 0}])
def test_hash_parameters_the_broker_would_refuse_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        mosquitto_hash("pw", **kwargs)


@pytest.mark.parametrize(
    "line_hash",
    [
        "plain",
        "$6$c2FsdA==$aGFzaA==",
        "$7$x$AAAAAAAAAAAAAAAA$" + "A" * 88,
        "$7$101$not*base64$" + "A" * 88,
        "$7$101$AAAA$" + "A" * 88,
    ],
)
def test_a_malformed_hash_is_an_error_not_a_mismatch(line_hash: str) -> None:
    with pytest.raises(ValueError):
        verify_mosquitto_hash("pw", line_hash)


@pytest.mark.parametrize("password", [DEVICE_KEY, "pässwörd with spaces"])
def test_a_hash_from_mosquitto_passwd_verifies_with_ours(tmp_path: Path, password: str) -> None:
    tool = require_mosquitto_passwd()
    file = tmp_path / "passwd"
    subprocess.run([tool, "-b", "-c", str(file), "device-1", password], check=True, capture_output=True, timeout=30)
    username, _, line_hash = file.read_text().rstrip("\n").partition(":")
    assert username == "device-1"
    assert HASH_SHAPE.fullmatch(line_hash), line_hash
    assert verify_mosquitto_hash(password, line_hash)
    assert not verify_mosquitto_hash(password + "!", line_hash)


def test_password_file_lines_are_sorted_with_a_trailing_newline() -> None:
    text = password_file([("dev-b", "$7$hb"), ("dev-a", "$7$ha"), ("telemetra", "$7$hs")])
    assert text == "dev-a:$7$ha\ndev-b:$7$hb\ntelemetra:$7$hs\n"
    assert password_file([]) == ""


@pytest.mark.parametrize("username", ["dev:1", "dev\n1", "dev\r", "", "dev\x00"])
def test_password_file_refuses_usernames_the_file_cannot_hold(username: str) -> None:
    with pytest.raises(ValueError):
        password_file([("ok", "$7$h"), (username, "$7$h")])


def test_password_file_refuses_a_username_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        password_file([("telemetra", "$7$a"), ("telemetra", "$7$b")])


def test_acl_confines_devices_to_their_own_id_and_names_the_service_user() -> None:
    text = acl_file("telemetra-worker")
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules[:6] == [
        "pattern write devices/%u/telemetry",
        "pattern write devices/%u/state",
        "pattern write devices/%u/commands/ack",
        "pattern write devices/%u/attributes",
        "pattern read devices/%u/commands",
        "pattern read devices/%u/desired",
    ]
    assert rules[6] == "user telemetra-worker"
    assert "topic write devices/+/commands" in rules[7:] and "topic read devices/+/telemetry" in rules[7:]
    assert text.endswith("\n")


@pytest.mark.parametrize("service_user", ["", "a:b", "a\nb", " worker"])
def test_acl_refuses_a_service_user_it_cannot_write(service_user: str) -> None:
    with pytest.raises(ValueError):
        acl_file(service_user)


def test_acl_follows_the_send_command_topic() -> None:
    fixed = acl_file("telemetra-worker", "plant/switches")
    assert "topic write plant/switches\n" in fixed and "send_command" not in fixed
    assert not [line for line in fixed.splitlines() if line.startswith("pattern read plant")]
    per_device = acl_file("telemetra-worker", "orders/{device_id}/switch")
    assert "pattern read orders/%u/switch\n" in per_device and "topic write orders/+/switch\n" in per_device
    assert "topic write send_command\n" in acl_file("telemetra-worker")  # the default


@pytest.mark.parametrize(
    "topic", ["", "a/+/b", "a/#", "a/x{device_id}", "{device_id}/{device_id}", "a/%u", "a\nb", "a\x00"]
)
def test_a_send_topic_that_cannot_be_published_or_granted_is_refused(topic: str) -> None:
    assert check_send_topic(topic) is not None
    with pytest.raises(ValueError):
        acl_file("telemetra-worker", topic)


def test_the_setting_is_checked_at_start() -> None:
    from pydantic import ValidationError

    from telemetra.settings import Settings

    assert Settings(_env_file=None, send_command_topic="a/{device_id}").send_command_topic == "a/{device_id}"
    with pytest.raises(ValidationError, match="send_command_topic"):
        Settings(_env_file=None, send_command_topic="a/+")
