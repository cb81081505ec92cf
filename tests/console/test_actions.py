"""What a person does in the console, end to end: register a device and see its key once, watch a value
arrive live, switch a device on, write a rule (and see the API's error beside the field), acknowledge the
alert it raises, read the energy report; and what the console refuses: a viewer's changes, another tenant's
device, markup in a device's name."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Console, new_context, shoot, sign_in
from tests.receivers import WebhookReceiver

HOSTILE_NAME = "<img src=x onerror=window.__xss=1>"


def _register(console: Console, device_id: str, name: str | None = None, device_type: str = "sensor") -> str:
    answer = console.api(
        "POST",
        "/api/v1/devices/register",
        json={"id": device_id, "name": name or device_id, "device_type": device_type},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["device"]["api_key"]


def _send(console: Console, device_key: str, data: dict, timestamp: str | None = None) -> None:
    body: dict = {"data": data}
    if timestamp:
        body["timestamp"] = timestamp
    answer = console.api("POST", "/api/v1/devices/telemetry", key=device_key, json=body)
    assert answer.status_code == 201, answer.text


@pytest.fixture
def page(admin_page: Page) -> Page:
    return admin_page


def test_register_a_device_and_see_its_key_once(page: Page, console: Console) -> None:
    page.goto(console.url + "/console/devices")
    page.get_by_role("button", name="Register a device").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Device id").fill("boiler-7")
    dialog.get_by_label("Name").fill("Boiler 7")
    dialog.get_by_role("button", name="Register").click()
    secret = page.get_by_role("dialog").get_by_label("secret shown once")
    expect(secret).not_to_have_value("")
    key = secret.input_value()
    shoot(page, "register-key-once", full_page=False)
    _send(console, key, {"temperature": 21.5})  # the key shown works
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert key not in page.content()
    expect(page.get_by_role("link", name="Boiler 7")).to_be_visible()
    assert console.outside_requests == []
    # Neither the key nor the session went into any address the browser asked for.
    session = next(c["value"] for c in page.context.cookies() if c["name"] == "telemetra_session")
    assert not [url for url in console.request_urls if key in url or session in url]


def test_a_value_sent_over_http_appears_live(page: Page, console: Console) -> None:
    key = _register(console, "live-1", "Live one")
    _send(console, key, {"temperature": 20.0})
    page.goto(console.url + "/console/devices/live-1")
    expect(page.locator(".live-state")).to_have_text("● live")
    _send(console, key, {"temperature": 42.25})
    expect(page.locator('dd[data-key="temperature"] .value')).to_have_text("42.25", timeout=2000)


def test_switch_on_from_the_page_is_acknowledged_by_the_device(page: Page, console: Console) -> None:
    key = _register(console, "plug-1", "Plug one")
    _send(console, key, {"power": 1})
    page.goto(console.url + "/console/devices/plug-1")
    expect(page.locator(".live-state")).to_have_text("● live")
    page.get_by_role("button", name="switch on").click()
    expect(page.locator("[data-command]").first).to_contain_text("queued")
    # The device client: its heartbeat hands it the command, it acknowledges.
    commands = console.api("POST", "/api/v1/devices/heartbeat", key=key).json()["commands"]
    assert [(c["name"], c["params"]) for c in commands] == [("switch", {"switch": True})]
    ack = console.api(
        "POST", f"/api/v1/devices/commands/{commands[0]['id']}/ack", key=key, json={"status": "succeeded"}
    )
    assert ack.status_code == 200, ack.text
    expect(page.locator("[data-command]").first).to_contain_text("succeeded", timeout=3000)
    shoot(page, "device-command")


def test_rule_editor_shows_the_api_error_beside_the_field_then_the_alert_arrives(page: Page, console: Console) -> None:
    key = _register(console, "boiler-9", "Boiler 9")
    _send(console, key, {"temperature": 50})
    page.goto(console.url + "/console/rules")
    page.get_by_role("button", name="New rule").click()
    page.get_by_label("Name").fill("boiler too hot")
    page.get_by_label("Key").fill("temperature")
    page.get_by_label("Value").fill("very hot")
    page.get_by_role("button", name="Create rule").click()
    value_field = page.locator('.field[data-field="condition.value"]')
    expect(value_field.locator(".field-error")).to_contain_text("number")
    shoot(page, "rule-error")
    page.get_by_label("Value").fill("80")
    page.get_by_label("Severity").select_option("critical")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("tbody tr", has_text="boiler too hot")).to_have_count(1)
    page.goto(console.url + "/console/alerts")
    expect(page.get_by_text("No active alerts")).to_be_visible()
    page.wait_for_timeout(500)  # the page's stream is open
    _send(console, key, {"temperature": 95})
    row = page.locator("tbody tr", has_text="boiler-9")
    expect(row).to_contain_text("boiler too hot", timeout=5000)
    shoot(page, "alerts-active")
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("No active alerts")).to_be_visible()
    page.get_by_label("state").select_option("acknowledged")
    expect(page.locator("tbody tr", has_text="boiler-9")).to_contain_text("acknowledged")


def test_energy_bars_table_and_csv(page: Page, console: Console) -> None:
    key = _register(console, "meter-e1", "Meter E1", device_type="meter")
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    for minutes in range(0, 150, 10):  # 1 kW for two and a half hours
        _send(console, key, {"instant_power": 1000.0}, (start + timedelta(minutes=minutes)).isoformat())
    page.goto(console.url + "/console/energy")
    page.get_by_label("Device").select_option("meter-e1")
    page.get_by_label("Day").fill(start.strftime("%Y-%m-%d"))
    page.get_by_label("Day").dispatch_event("change")
    expect(page.locator("svg.chart rect.bar:not(.zero)").first).to_be_visible()
    expect(page.locator("tbody tr").first).to_contain_text("1,000")
    shoot(page, "energy")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = Path(download.value.path()).read_text()
    assert text.startswith("time,energy_wh\n") and "1000" in text


def test_a_viewer_sees_no_changes_and_the_api_refuses_them(browser, console: Console) -> None:
    key = _register(console, "view-1", "Viewed one")
    _send(console, key, {"temperature": 1})
    context = new_context(browser, console)
    try:
        page = context.new_page()
        sign_in(page, console, "viewer")
        expect(page.locator(".who .badge")).to_have_text("viewer")
        expect(page.get_by_role("link", name="Users")).to_have_count(0)
        page.goto(console.url + "/console/devices")
        expect(page.get_by_role("link", name="Viewed one")).to_be_visible()
        expect(page.get_by_role("button", name="Register a device")).to_have_count(0)
        expect(page.get_by_role("button", name="Edit")).to_have_count(0)
        page.goto(console.url + "/console/devices/view-1")
        expect(page.get_by_role("heading", name="Commands")).to_be_visible()
        expect(page.get_by_role("button", name="switch on")).to_have_count(0)
        expect(page.get_by_role("button", name="Save desired state")).to_have_count(0)
        expect(page.get_by_role("button", name="Delete")).to_have_count(0)
        shoot(page, "viewer-device")
        page.goto(console.url + "/console/rules")
        expect(page.get_by_role("heading", name="Rules")).to_be_visible()
        expect(page.get_by_role("button", name="New rule")).to_have_count(0)
        csrf = next(c["value"] for c in context.cookies() if c["name"] == "telemetra_csrf")
        refused = context.request.post(
            console.url + "/api/v1/devices/view-1/commands",
            data={"name": "switch", "params": {"switch": True}},
            headers={"X-CSRF-Token": csrf},
        )
        assert refused.status == 403
        assert refused.json()["code"] == "forbidden_role"
    finally:
        context.close()


def test_markup_in_a_device_name_is_shown_as_text(page: Page, console: Console) -> None:
    key = _register(console, "hostile-1", HOSTILE_NAME)
    _send(console, key, {HOSTILE_NAME: 1, "note": "<b>bold</b>"})
    page.goto(console.url + "/console/devices?q=hostile")
    expect(page.get_by_text(HOSTILE_NAME).first).to_be_visible()
    page.goto(console.url + "/console/devices/hostile-1")
    expect(page.locator("main h1")).to_contain_text(HOSTILE_NAME)
    expect(page.locator(".chart-item h3", has_text=HOSTILE_NAME)).to_be_visible()  # the key, as a chart's title
    expect(page.locator("dl.latest-values").get_by_text("<b>bold</b>")).to_be_visible()
    assert page.locator("main img").count() == 0 and page.locator("main b").count() == 0
    assert page.evaluate("window.__xss") is None


def test_another_tenants_device_is_not_found(page: Page, console: Console) -> None:
    other = console.api("POST", "/api/v1/admin/tenants", key=console.admin_key, json={"name": "other"})
    assert other.status_code == 201, other.text
    answer = console.api(
        "POST", "/api/v1/devices/register", key=other.json()["api_key"], json={"id": "theirs-1", "name": "Theirs"}
    )
    assert answer.status_code == 201, answer.text
    page.goto(console.url + "/console/devices/theirs-1")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("Theirs")).to_have_count(0)


def test_no_csp_violation_and_nothing_from_outside(console: Console) -> None:
    """Last in the module: what every page above logged."""
    time.sleep(0.1)
    assert not console.outside_requests, console.outside_requests
    violations = [e for e in console.console_errors if "Content Security Policy" in e or "page error" in e]
    assert not violations, violations


def test_edit_rotate_the_key_and_delete_from_the_device_page(page: Page, console: Console) -> None:
    old_key = _register(console, "edit-1", "Before")
    page.goto(console.url + "/console/devices/edit-1")
    page.get_by_role("button", name="Edit").click()
    page.get_by_role("dialog").get_by_label("Name").fill("After")
    page.get_by_role("dialog").get_by_label("Location").fill("cellar")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="After")).to_be_visible()
    expect(page.locator("dl.meta")).to_contain_text("cellar")
    page.get_by_role("button", name="New key").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate key").click()
    secret = page.get_by_role("dialog").get_by_label("secret shown once")
    expect(secret).not_to_have_value("")
    new_key = secret.input_value()
    page.get_by_role("button", name="Done").click()
    assert new_key not in page.content()
    _send(console, new_key, {"temperature": 3})
    refused = console.api("POST", "/api/v1/devices/telemetry", key=old_key, json={"data": {"temperature": 4}})
    assert refused.status_code == 401
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(console.url + "/console/devices")
    assert console.api("GET", "/api/v1/devices/edit-1").status_code == 404


def test_a_channel_is_created_edited_tested_and_its_log_read(page: Page, console: Console) -> None:
    receiver = WebhookReceiver(secret="").start()
    try:
        page.goto(console.url + "/console/channels")
        expect(page.get_by_text("No channels yet")).to_be_visible()
        page.get_by_role("button", name="New channel").click()
        page.get_by_label("Name").fill("ops hook")
        page.get_by_label("URL").fill("http://10.0.0.1/hook")  # a private address the operator did not allow
        page.get_by_role("button", name="Create channel").click()
        expect(page.locator('.field[data-field="config.url"] .field-error')).to_contain_text("not a public address")
        page.get_by_label("URL").fill(receiver.url)
        page.get_by_role("button", name="Create channel").click()
        secret = page.get_by_role("dialog").get_by_label("secret shown once")
        expect(secret).not_to_have_value("")
        receiver.secret = secret.input_value()
        page.get_by_role("button", name="Done").click()
        assert receiver.secret not in page.content()
        row = page.locator("tbody tr", has_text="ops hook")
        row.get_by_role("button", name="Edit").click()
        page.get_by_label("Name").fill("night hook")
        page.get_by_role("button", name="Save channel").click()
        row = page.locator("tbody tr", has_text="night hook")
        expect(row).to_be_visible()
        row.get_by_role("button", name="Send a test").click()
        expect(page.get_by_text("Test delivered to night hook")).to_be_visible()
        assert receiver.requests and receiver.requests[0].signature_ok
        row.get_by_role("button", name="Delivery log").click()
        expect(page.get_by_role("heading", name="Delivery log: night hook")).to_be_visible()
        shoot(page, "channels-log")
    finally:
        receiver.stop()


def test_watch_shows_the_picked_devices_messages_as_they_arrive(page: Page, console: Console) -> None:
    key = _register(console, "watched-1", "Watched one")
    _send(console, key, {"level": 1})
    page.goto(console.url + "/console/watch")
    page.get_by_label("find devices").fill("watched")
    expect(page.locator(".checks label")).to_have_count(1)
    page.get_by_label("Watched one (watched-1)").check()
    expect(page).to_have_url(console.url + "/console/watch?devices=watched-1")
    expect(page.locator(".live-state")).to_have_text("● live")
    _send(console, key, {"level": 7})
    expect(page.locator(".log li").first).to_contain_text("level 7", timeout=2000)
    shoot(page, "watch-live")


def test_an_operator_sets_the_desired_state_and_sees_the_delta(browser, console: Console) -> None:
    key = _register(console, "thermo-1", "Thermostat")
    _send(console, key, {"setpoint": 19})
    context = new_context(browser, console)
    try:
        page = context.new_page()
        sign_in(page, console, "operator")
        page.goto(console.url + "/console/devices/thermo-1")
        expect(page.get_by_role("button", name="Edit")).to_have_count(0)  # devices are the admin's
        state = page.get_by_label("Desired state (JSON)")
        expect(state).to_have_value("{}")
        state.fill('{"setpoint": 22}')
        page.get_by_role("button", name="Save desired state").click()
        expect(page.get_by_text("Desired (version 1)")).to_be_visible()
        expect(page.locator("pre.json").last).to_contain_text('"setpoint": 22')  # the delta
        # Someone else changes it meanwhile: saving on the stale version says so beside the field.
        other = console.api("PUT", "/api/v1/devices/thermo-1/desired", json={"state": {"setpoint": 18}, "version": 1})
        assert other.status_code == 200, other.text
        state.fill('{"setpoint": 25}')
        page.get_by_role("button", name="Save desired state").click()
        expect(page.locator('.field[data-field="state"] .field-error')).to_contain_text("someone changed it")
        shoot(page, "desired-conflict")
    finally:
        context.close()


def test_a_tenant_admin_adds_a_user_who_signs_in_with_the_one_time_password(
    page: Page, browser, console: Console
) -> None:
    page.goto(console.url + "/console/users")
    page.get_by_role("button", name="Add a user").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("E-mail").fill("new.person@example.com")
    dialog.get_by_label("Name").fill("New Person")
    dialog.get_by_label("Role").select_option("operator")
    dialog.get_by_role("button", name="Add user").click()
    secret = page.get_by_role("dialog").get_by_label("secret shown once")
    expect(secret).not_to_have_value("")
    password = secret.input_value()
    page.get_by_role("button", name="Done").click()
    assert password not in page.content()
    row = page.locator("tbody tr", has_text="new.person@example.com")
    expect(row.get_by_label("role of new.person@example.com")).to_have_value("operator")
    shoot(page, "users")
    other = new_context(browser, console)
    try:
        person = other.new_page()
        person.goto(console.url + "/console/")
        person.get_by_label("E-mail").fill("new.person@example.com")
        person.get_by_label("Password").fill(password)
        person.get_by_role("button", name="Sign in").click()
        expect(person.locator(".who .badge")).to_have_text("operator")
    finally:
        other.close()
