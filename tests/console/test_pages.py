"""Every page of the console renders the server's real data, within its weight, with nothing from outside."""

from __future__ import annotations

import gzip
import time

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import Console, new_context, shoot, sign_in

MAX_FIRST_LOAD_BYTES = 300_000


def _wait_for_simulated_devices(console: Console) -> list[dict]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        items = console.api("GET", "/api/v1/fleet/devices").json().get("items", [])
        if len(items) >= 3 and all(item["latest"] for item in items):
            return items
        time.sleep(0.3)
    raise AssertionError("the simulated devices sent nothing")


def test_sign_in_shows_tenant_and_role_then_sign_out(context: BrowserContext, console: Console) -> None:
    page = context.new_page()
    page.goto(console.url + "/")
    expect(page).to_have_url(console.url + "/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shoot(page, "signin")
    page.get_by_label("E-mail").fill("ann@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong e-mail or password.")).to_be_visible()
    sign_in(page, console, "admin")
    expect(page.locator(".tenant")).to_have_text("demo")
    expect(page.locator(".who .badge")).to_have_text("admin")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(console.url + "/console/devices")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_every_page_renders_real_data(admin_page: Page, console: Console) -> None:
    page = admin_page
    devices = _wait_for_simulated_devices(console)
    device_id = devices[0]["device_id"]

    page.goto(console.url + "/console/")
    expect(page.locator(".stat.online .stat-value")).to_have_text("3")
    expect(page.locator(".overview svg.chart")).to_be_visible()
    shoot(page, "overview")

    page.get_by_role("link", name="Devices", exact=True).click()
    expect(page.locator("table tbody tr")).to_have_count(len(devices))
    expect(page.locator("tbody .dot.online").first).to_be_visible()
    shoot(page, "devices")

    page.get_by_role("link", name=devices[0]["name"] or device_id).first.click()
    expect(page.locator("dl.latest-values dt").first).to_be_visible()
    expect(page.locator(".charts svg.chart polyline, .charts svg.chart circle").first).to_be_visible()
    expect(page.get_by_role("heading", name="Raw messages")).to_be_visible()
    page.wait_for_timeout(300)
    shoot(page, "device")

    for name, heading in [
        ("alerts", "Alerts"),
        ("rules", "Rules"),
        ("channels", "Channels"),
        ("energy", "Energy"),
        ("watch", "Watch"),
        ("users", "Users"),
        ("account", "Your account"),
    ]:
        page.goto(f"{console.url}/console/{name}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        page.wait_for_timeout(400)
        shoot(page, name)
    expect(page.get_by_text("ann@example.com").first).to_be_visible()
    assert not console.outside_requests
    assert not [e for e in console.console_errors if "Content Security Policy" in e], console.console_errors


def test_first_load_of_a_page_is_small(console: Console) -> None:
    """The shell, its stylesheet, its scripts and the largest page module, gzip-compressed."""
    with httpx.Client(base_url=console.url, headers={"Accept-Encoding": "gzip"}) as client:
        total = _first_load_bytes(client)
    assert total < MAX_FIRST_LOAD_BYTES, total


def _first_load_bytes(client: httpx.Client) -> int:
    paths = ["/console/devices/x", "/console/static/console.css", "/console/static/icon.svg"]
    paths += [f"/console/static/js/{m}.js" for m in ("main", "api", "dom", "format", "live", "ui", "chart")]
    paths += [f"/console/static/js/pages/{m}.js" for m in ("device", "device_charts", "device_commands")]
    paths += [f"/console/static/js/pages/{m}.js" for m in ("device_forms", "device_panels")]
    total = 0
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 200, path
        total += (
            len(gzip.compress(answer.content))
            if answer.headers.get("content-encoding") != "gzip"
            else int(answer.headers.get("content-length", len(answer.content)))
        )
    return total


def test_docs_work_without_network(context: BrowserContext, console: Console) -> None:
    page = context.new_page()
    page.goto(console.url + "/docs")
    expect(page.get_by_text("Telemetra").first).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible(timeout=10_000)
    page.goto(console.url + "/redoc")
    expect(page.locator("h1").first).to_contain_text("Telemetra", timeout=10_000)
    expect(page.locator("h2", has_text="Register a device").first).to_be_visible()
    # ReDoc's bundle asks its maker's site for the small logo of its "API docs by Redocly" footer: blocked here,
    # as it would be on a closed network, and nothing else is missing.
    assert [url for url in console.outside_requests if not url.endswith("/logo-mini.svg")] == []


def test_platform_admin_sees_tenants_their_keys_and_users(
    context: BrowserContext, console: Console, platform_admin: str
) -> None:
    page = context.new_page()
    sign_in(page, console, "platform")
    expect(page).to_have_url(console.url + "/console/admin")
    expect(page.locator(".who .badge")).to_have_text("platform admin")
    expect(page.get_by_role("link", name="Devices")).to_have_count(0)
    row = page.locator("tbody tr", has_text="demo")
    row.get_by_role("button", name="Keys and users").click()
    expect(page.get_by_role("heading", name="Tenant: demo")).to_be_visible()
    expect(page.get_by_role("cell", name="ann@example.com")).to_be_visible()
    expect(page.get_by_role("cell", name="demo-run")).to_be_visible()
    shoot(page, "admin")


def test_the_keyboard_alone_reaches_a_page_and_its_form(admin_page: Page, console: Console) -> None:
    page = admin_page
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(25):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Rules":
            break
    page.keyboard.press("Enter")
    expect(page).to_have_url(console.url + "/console/rules")
    new_rule = page.get_by_role("button", name="New rule")
    new_rule.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.type("typed rule")
    page.keyboard.press("Escape")  # nothing breaks; the form stays for the person to finish or cancel
    expect(page.get_by_label("Name")).to_have_value("typed rule")


def test_a_phone_width_folds_the_menu(browser, console: Console, admin_state: dict) -> None:
    phone = new_context(browser, console, storage_state=admin_state, viewport={"width": 375, "height": 740})
    try:
        page = phone.new_page()
        page.goto(console.url + "/console/rules")
        expect(page.get_by_role("navigation", name="main")).to_be_hidden()
        page.get_by_role("button", name="Menu").click()
        expect(page.get_by_role("navigation", name="main")).to_be_visible()
        page.get_by_role("link", name="Alerts").click()
        expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
        expect(page.get_by_role("navigation", name="main")).to_be_hidden()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shoot(page, "phone-alerts")
    finally:
        phone.close()
