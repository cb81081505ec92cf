"""Every shell example of the README and docs/ runs against a fresh server, and answers what its page says.

One server and one database per page (`serve --demo --simulate 3` in a data folder of its own); the page's
``sh`` blocks run in order as one bash script, with ``http://127.0.0.1:8000`` pointed at that server. A page
whose examples use a broker gets brokers of its own, on free ports, in place of the machine's MQTT
(``127.0.0.1:1883``) and NATS (``127.0.0.1:4222``): what it publishes never reaches another test's server. The
notation is described in ``tests/docs/examples.py`` and on docs/README.md's "How the examples are checked".
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.brokers import OwnProcess, start_mosquitto, start_nats
from tests.docs.examples import ANY, Step, matches, parse_expected, script_of, skipped_blocks, steps_of
from tests.servers import Server

ROOT = Path(__file__).resolve().parents[2]
DOCS_URL = "http://127.0.0.1:8000"
PAGES = sorted(
    str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")] if "```sh" in p.read_text()
)
MQTT_ADDRESS, NATS_ADDRESS = "127.0.0.1:1883", "127.0.0.1:4222"
# What a page's server runs with, beyond the demo: the brokers its examples publish to (their addresses as the
# page writes them; each is replaced by a broker of the test's own).
SERVER_ARGS: dict[str, tuple[str, ...]] = {
    "docs/sending-data.md": ("--mqtt", f"mqtt://{MQTT_ADDRESS}", "--nats", f"nats://{NATS_ADDRESS}"),
    "docs/commands-and-state.md": ("--mqtt", f"mqtt://{MQTT_ADDRESS}"),
    "docs/compatibility-apis.md": ("--mqtt", f"mqtt://{MQTT_ADDRESS}"),
}


def test_the_notation() -> None:
    page = """
```sh
curl -X POST http://127.0.0.1:8000/a -d '{
  "x": 1
}'
# → 201 {"id": …, "key": "tlmd_…",
#        "items": [{"a": 1}, …], …}
echo hi
KEY=$(telemetra demo-key)   # the demo tenant's key
echo "it's" '"quoted"'
```
```sh
# not run here: it starts a server
make run
```
"""
    steps = steps_of(page)
    assert skipped_blocks(page) == [(13, "it starts a server")]
    assert [s.command.splitlines()[0] for s in steps] == [
        "curl -X POST http://127.0.0.1:8000/a -d '{",
        "echo hi",
        "KEY=$(telemetra demo-key)   # the demo tenant's key",
        """echo "it's" '"quoted"'""",
    ]
    (expectation,) = steps[0].expect
    assert expectation.status == 201
    expected = parse_expected(expectation.body)
    assert expected == {"id": ANY, "key": "tlmd_…", "items": [{"a": 1}, ANY]}
    assert matches(expected, {"id": 7, "key": "tlmd_abc", "items": [{"a": 1, "b": 2}, {"c": 3}], "more": None})
    assert not matches(expected, {"id": 7, "key": "tlmt_abc", "items": [{"a": 1}]})
    assert not matches(expected, {"key": "tlmd_abc", "items": [{"a": 1}]})
    assert not matches({"items": [{"a": 1}]}, {"items": [{"a": 1}, {"a": 2}]})
    assert not matches({"ok": True}, {"ok": 1}) and matches(parse_expected('{…, "a": 1}'), {"a": 1, "b": 0})


# The only reasons an example may be left out: it starts the server or a worker (the test starts its own),
# it needs Docker or Kubernetes, or it would change the machine's broker.
SKIP_REASONS = (
    "it starts ",
    "it changes the machine's broker",
    "it takes over sessions on your broker",
    "Docker",
    "Kubernetes",
)


def test_only_what_cannot_run_here_is_left_out() -> None:
    unjustified = [
        f"{page}:{line}: {reason or '(no reason)'}"
        for page in PAGES
        for line, reason in skipped_blocks((ROOT / page).read_text())
        if not reason.startswith(SKIP_REASONS)
    ]
    assert not unjustified, (
        "blocks left out for a reason other than " + repr(SKIP_REASONS) + ":\n" + "\n".join(unjustified)
    )


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_of(page: str, tmp_path: Path) -> None:
    steps = steps_of((ROOT / page).read_text())
    assert steps, f"{page} has sh blocks but none runs"
    data_dir = tmp_path / "data"
    args = " ".join(SERVER_ARGS.get(page, ()))
    brokers: list[OwnProcess] = []
    addresses: dict[str, str] = {}
    server = None
    try:
        if MQTT_ADDRESS in args:
            (tmp_path / "mqtt").mkdir()
            brokers.append(start_mosquitto(tmp_path / "mqtt"))
            addresses[MQTT_ADDRESS] = f"127.0.0.1:{brokers[-1].port}"
        if NATS_ADDRESS in args:
            (tmp_path / "nats").mkdir()
            brokers.append(start_nats(tmp_path / "nats"))
            addresses[NATS_ADDRESS] = f"127.0.0.1:{brokers[-1].port}"
        server = Server(
            f"sqlite:///{data_dir / 'telemetra.db'}",
            "--demo",
            "--simulate",
            "3",
            *(_at(arg, addresses) for arg in SERVER_ARGS.get(page, ())),
            data_dir=str(data_dir),
        )
        trace = tmp_path / "trace"
        trace.mkdir()
        script = _at(script_of(steps, str(trace)), {DOCS_URL: server.url, "127.0.0.1:8000": server.url[7:]})
        script = _at(script, addresses)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRA_")}
        # mktemp in an example writes into the test's folder, which pytest cleans up.
        env.update(
            TELEMETRA_DATA_DIR=str(data_dir),
            PATH=f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
            TMPDIR=str(tmp_path),
        )
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
            f.write(script)
        done = subprocess.run(["bash", f.name], cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    finally:
        if server is not None:
            server.stop()
        for broker in brokers:
            broker.stop()
    reached = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("@@step ")]
    last = reached[-1] if reached else 0
    server_log = f"\nthe server's log ends with:\n{server.stderr[-1500:]}" if server is not None else ""
    assert done.returncode == 0, _failure(
        page, steps[last], f"exit {done.returncode}\n{done.stderr[-2000:]}{server_log}"
    )
    assert reached == list(range(len(steps)))
    for n, step in enumerate(steps):
        for expectation in step.expect:
            status_file, body_file = trace / f"{n}.status", trace / f"{n}.body"
            assert status_file.exists(), _failure(page, step, "the command made no HTTP request")
            status = int(status_file.read_text() or 0)
            body = body_file.read_text() if body_file.exists() else ""
            assert status == expectation.status, _failure(
                page, step, f"status {status}, not {expectation.status}: {body[:500]}"
            )
            if expectation.body:
                assert _body_matches(expectation.body, body), _failure(
                    page, step, f"body does not match line {expectation.line}:\n{body[:1500]}"
                )


def _at(text: str, addresses: dict[str, str]) -> str:
    for written, actual in addresses.items():
        text = text.replace(written, actual)
    return text


def _body_matches(expected_text: str, body: str) -> bool:
    if expected_text[0] in "{[":
        try:
            actual = json.loads(body)
        except ValueError:
            return False
        return matches(parse_expected(expected_text), actual)
    return matches(f"…{expected_text}…", body)


def _failure(page: str, step: Step, why: str) -> str:
    return f"{page}:{step.line}: {step.command.splitlines()[0]}\n{why}"
