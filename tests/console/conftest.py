"""Browser tests of the console: a real `telemetra serve` (SQLite, its own data folder) and Debian's Chromium
driven by Playwright, one of each per module. Every request to anywhere but the server is blocked and recorded,
and so is every console message, so a test can say that the page loaded nothing from outside and broke no CSP.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.servers import Server

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "console-test-password-1"
USERS = {
    "admin": "ann@example.com",
    "operator": "otto@example.com",
    "viewer": "vic@example.com",
    "platform": "root@example.com",
}


@dataclass
class Console:
    """The server under test, a tenant key for setting things up, and what the browser saw."""

    server: Server
    key: str
    admin_key: str
    data_dir: Path | None = None
    outside_requests: list[str] = field(default_factory=list)
    request_urls: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": key or self.key}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)


def _key(keys_text: str, label: str) -> str:
    match = re.search(re.escape(label) + r"[^\n]*: (\S+)\s*$", keys_text, re.M)
    assert match, f"no {label!r} in the keys file"
    return match.group(1)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data = tmp_path_factory.mktemp("console-data")
    server = Server(
        f"sqlite:///{data}/telemetra.db",
        "--demo",
        "--simulate",
        "3",
        # Webhooks of the tests are received on this machine, which an operator allows the same way.
        env={
            "TELEMETRA_DATA_DIR": str(data),
            "TELEMETRA_ONLINE_WINDOW_S": "60",
            "TELEMETRA_OUTBOUND_ALLOW": "127.0.0.1/32",
        },
    )
    try:
        keys = server.keys()
        demo = json.loads((data / "telemetra.db.demo").read_text())  # what `serve --demo` keeps for later runs
        found = Console(server, demo["key"], _key(keys, "Admin key"))
        found.data_dir = data
        for role, email in USERS.items():
            if role == "platform":
                continue  # made by the CLI when a test asks for it (platform_admin)
            answer = found.api(
                "POST", "/api/v1/users", json={"email": email, "name": role.title(), "role": role, "password": PASSWORD}
            )
            assert answer.status_code == 201, answer.text
        yield found
    finally:
        server.stop()


@pytest.fixture(scope="module")
def platform_admin(console: Console) -> str:
    """A platform admin (no tenant), made as an operator does: `telemetra user create --platform-admin`."""
    data, email = console.data_dir, USERS["platform"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRA_")}
    env |= {"TELEMETRA_DATABASE_URL": f"sqlite:///{data}/telemetra.db", "TELEMETRA_DATA_DIR": str(data)}
    made = subprocess.run(
        [sys.executable, "-m", "telemetra", "user", "create", email, "--platform-admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return email


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield browser
    browser.close()


def new_context(browser: Browser, console: Console, **options: Any) -> BrowserContext:
    """A fresh browser profile whose requests may reach the server only; console messages are recorded."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
    origin = console.url

    def _route(route: Any) -> None:
        console.request_urls.append(route.request.url)
        if route.request.url.startswith(origin) or route.request.url.startswith(("blob:", "data:")):
            route.continue_()
        else:
            console.outside_requests.append(route.request.url)
            route.abort()

    context.route("**/*", _route)

    def _watch(page: Page) -> None:
        page.on(
            "console",
            lambda message: console.console_errors.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: console.console_errors.append(f"page error: {error}"))

    context.on("page", _watch)
    return context


@pytest.fixture
def context(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    context = new_context(browser, console)
    yield context
    context.close()


def sign_in(page: Page, console: Console, role: str = "admin") -> None:
    page.goto(console.url + "/console/")
    page.get_by_label("E-mail").fill(USERS[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="main").wait_for()


def shoot(page: Page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


@pytest.fixture(scope="module")
def admin_state(browser: Browser, console: Console) -> dict:
    """The admin's signed-in cookies, made once a module (a sign-in checks an argon2 hash: slow on purpose)."""
    context = new_context(browser, console)
    page = context.new_page()
    sign_in(page, console, "admin")
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def admin_page(browser: Browser, console: Console, admin_state: dict) -> Iterator[Page]:
    """A fresh profile with the admin signed in, on the Overview."""
    context = new_context(browser, console, storage_state=admin_state)
    page = context.new_page()
    page.goto(console.url + "/console/")
    page.get_by_role("navigation", name="main").wait_for()
    yield page
    context.close()
