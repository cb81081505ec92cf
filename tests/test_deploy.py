"""The deployment files (Dockerfile, compose, Kubernetes, Prometheus, Grafana) against the real Telemetra.

No Docker engine, Kubernetes, Prometheus or Grafana runs here. What can be checked is checked against
the code: every setting they pass exists, every route they probe answers, every metric and label their
queries use is one Telemetra exports, every file they mount or copy exists. Building the image and
running the stacks is not tested here."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from telemetra.api.app import create_app
from telemetra.settings import Settings
from tests.conftest import TEST_ADMIN_KEY

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# Labels Prometheus adds to every scraped series, and the bucket label of histograms.
SCRAPE_LABELS = {"job", "instance"}


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _instruction(name: str) -> list[str]:
    return [args for instruction, args in _dockerfile() if instruction == name]


def _yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _containers() -> list[dict]:
    return [
        container
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for doc in _yaml_documents(path)
        if doc["kind"] in ("Deployment", "StatefulSet")
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def _assert_settings(names: set[str], where: str) -> None:
    fields = {f"TELEMETRA_{name.upper()}" for name in Settings.model_fields}
    unknown = {name for name in names if name.startswith("TELEMETRA_")} - fields
    assert not unknown, f"{where} sets what Telemetra does not read: {sorted(unknown)}"


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=sqlite_url, admin_key=TEST_ADMIN_KEY, _env_file=None), None)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            yield http


def _metric_labels() -> dict[str, set[str]]:
    """Every Telemetra metric's name (as exposed, with the suffixes of its type) and its label names."""
    exposed: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # the registry has no public list of its collectors
        if not isinstance(collector, MetricWrapperBase) or not collector._name.startswith("telemetra_"):
            continue
        labels = set(collector._labelnames)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(collector._type, [""])
        for suffix in suffixes:
            name = collector._name + suffix if not collector._name.endswith(suffix) else collector._name
            exposed[name] = labels | ({"le"} if suffix == "_bucket" else set())
    return exposed


def _queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every Prometheus alert rule and Grafana panel."""
    found = [
        (f"alert {rule['alert']}", rule["expr"])
        for group in _yaml_documents(DEPLOY / "prometheus" / "alerts.yml")[0]["groups"]
        for rule in group["rules"]
    ]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "telemetra.json").read_text())
    found += [
        (f"panel {panel['title']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    return found


async def test_every_query_uses_metrics_and_labels_telemetra_exports(client: httpx.AsyncClient) -> None:
    exposition = (await client.get("/metrics")).text
    exported = _metric_labels()
    for name in exported:  # the registry read above is what /metrics serves
        family = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert f"# TYPE {family}" in exposition or f"# TYPE {name}" in exposition, name
    queries = _queries()
    assert len(queries) >= 20
    for where, expr in queries:
        names = set(re.findall(r"\b(telemetra_[a-z_]+)", expr))
        assert names or "up{" in expr, f"{where}: no Telemetra metric in {expr}"
        for name in names:
            assert name in exported, f"{where}: {name} is not a metric Telemetra exports"
        known = set().union(*(exported[name] for name in names)) | SCRAPE_LABELS
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in (part.strip() for part in group.split(",")):
                assert label in known, f"{where}: grouped by {label}, which {sorted(names)} do not have"
        for name, matchers in re.findall(r"(telemetra_[a-z_]+)\{([^}]*)\}", expr):
            for label in re.findall(r"(\w+)\s*=~?", matchers):
                assert label in exported[name] | SCRAPE_LABELS, f"{where}: {name} has no label {label}"


def test_label_values_the_queries_pick_are_ones_the_code_writes() -> None:
    """A matcher on a value the code never writes would make a panel or an alert silently empty."""
    source = "\n".join(path.read_text() for path in (ROOT / "telemetra").rglob("*.py"))
    for where, expr in _queries():
        for value in re.findall(r'\w+="([^"]+)"', expr):
            if value != "telemetra":  # the scrape job's name, set in prometheus.yml
                assert f'"{value}"' in source, f"{where}: no code writes the label value {value!r}"


def test_grafana_provisioning_finds_the_dashboard_and_its_datasource() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "telemetra.json").read_text())
    datasource = _yaml_documents(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")[0]
    uids = {source["uid"] for source in datasource["datasources"]}
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids repeat"
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] in uids
    provider = _yaml_documents(DEPLOY / "grafana" / "provisioning" / "dashboards" / "telemetra.yaml")[0]
    compose = _yaml_documents(DEPLOY / "compose.yaml")[0]
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert any(source["url"] == "http://prometheus:9090" for source in datasource["datasources"])


async def test_prometheus_scrapes_the_metrics_route_on_the_exposed_port(client: httpx.AsyncClient) -> None:
    config = _yaml_documents(DEPLOY / "prometheus" / "prometheus.yml")[0]
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file()
    job = config["scrape_configs"][0]
    assert (await client.get(job["metrics_path"])).status_code == 200
    host, port = job["static_configs"][0]["targets"][0].split(":")
    assert host in _yaml_documents(DEPLOY / "compose.yaml")[0]["services"]
    assert _instruction("EXPOSE") == [port]


async def test_health_checks_and_probes_ask_routes_that_answer(client: httpx.AsyncClient) -> None:
    (healthcheck,) = _instruction("HEALTHCHECK")
    paths = set(re.findall(r"http://127\.0\.0\.1:\d+(/[a-z]+)", healthcheck))
    for container in _containers():
        for probe in ("readinessProbe", "livenessProbe"):
            if "httpGet" in container.get(probe, {}):
                paths.add(container[probe]["httpGet"]["path"])
    assert "/health" in paths
    for path in paths:
        assert (await client.get(path)).status_code == 200, path


def test_the_image_copies_what_exists_and_runs_as_the_user_the_manifests_expect() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for args in _instruction("COPY"):
        for source in shlex.split(args)[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert f"!{source}" in ignored or f"!{source}/" in ignored, (
                f"{source} is left out of the build by .dockerignore"
            )
    (user,) = _instruction("USER")
    assert f"--uid {user}" in _instruction("RUN")[0]
    for container in _containers():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in _yaml_documents(path):
            if doc["kind"] in ("Deployment", "StatefulSet"):
                assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)


def test_every_setting_passed_is_one_telemetra_reads() -> None:
    env = {args.split("=", 1)[0] for args in " ".join(_instruction("ENV")).split() if "=" in args}
    _assert_settings(env, "Dockerfile")
    compose = _yaml_documents(DEPLOY / "compose.yaml")[0]
    for name, service in compose["services"].items():
        _assert_settings(set(service.get("environment", {})), f"compose.yaml {name}")
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in _yaml_documents(path):
            if doc["kind"] == "ConfigMap":
                _assert_settings(set(doc["data"]), path.name)
    for container in _containers():
        _assert_settings({item["name"] for item in container.get("env", [])}, container["name"])


def test_compose_secrets_are_all_in_the_example_env_file_and_mounts_exist() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "compose.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required and required <= example, sorted(required - example)
    compose = _yaml_documents(DEPLOY / "compose.yaml")[0]
    build = compose["services"]["telemetra"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source


def _secrets_created() -> dict[str, set[str]]:
    """The secrets (and their keys) the `kubectl create secret generic` commands in the manifests' comments make."""
    created: dict[str, set[str]] = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        command = ""
        for line in path.read_text().splitlines():
            line = line.lstrip("# ").rstrip()
            if command or line.startswith("kubectl create secret generic"):
                command += " " + line.rstrip("\\")
                if not line.endswith("\\"):
                    name = command.split()[4]
                    created.setdefault(name, set()).update(re.findall(r"--from-literal=([\w-]+)=", command))
                    command = ""
    return created


def test_kubernetes_secrets_referenced_are_the_ones_the_instructions_create() -> None:
    created = _secrets_created()
    assert created["telemetra"] == {"database-url", "admin-key", "jwt-secret"}
    for container in _containers():
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in created.get(ref["name"], set()), f"secret {ref['name']}/{ref['key']} never created"


def test_the_commands_the_containers_run_exist() -> None:
    compose = _yaml_documents(DEPLOY / "compose.yaml")[0]
    commands = [json.loads(args) for args in _instruction("CMD")] + [c["args"] for c in _containers()]
    commands += [
        service["command"]
        for service in compose["services"].values()
        if service.get("image", "").startswith("telemetra") and "command" in service
    ]
    for command in commands:
        assert command[0] == "telemetra"
        result = subprocess.run(
            [sys.executable, "-m", "telemetra", command[1], "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        for option in (word for word in command[2:] if word.startswith("--")):
            assert option in result.stdout, f"telemetra {command[1]} has no {option}"


def test_mqtt_workers_keep_one_client_id_each_and_share_only_when_several() -> None:
    """A worker's client id names its broker session: a pod name, stable across restarts and one per worker;
    a share group only with several workers (Mosquitto 2.0 loses a share group's messages over its restart)."""
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in _yaml_documents(path):
            if doc["kind"] not in ("Deployment", "StatefulSet"):
                continue
            for container in doc["spec"]["template"]["spec"]["containers"]:
                env = {item["name"]: item for item in container.get("env", [])}
                if "TELEMETRA_MQTT_URL" not in env:
                    continue
                assert doc["kind"] == "StatefulSet", f"{path.name}: MQTT workers need stable names"
                client_id = env["TELEMETRA_MQTT_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
                assert client_id == "metadata.name"
                shared = env.get("TELEMETRA_MQTT_SHARED_GROUP", {}).get("value")
                assert bool(shared) == (doc["spec"]["replicas"] > 1), f"{path.name}: share group vs replicas"
    compose = _yaml_documents(DEPLOY / "compose.yaml")[0]
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        if "TELEMETRA_MQTT_URL" in env:
            Settings(
                **{key.removeprefix("TELEMETRA_").lower(): value for key, value in env.items() if "${" not in value},
                _env_file=None,
            )  # the settings accept the combination
            assert not env.get("TELEMETRA_MQTT_SHARED_GROUP") and "deploy" not in service, name
