"""The deployment files parse, hold what production needs, and only set real settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.settings import Settings

INFRA = Path(__file__).resolve().parents[3] / "infra"
K8S = INFRA / "k8s"
SETTINGS = {name.upper() for name in Settings.model_fields}
#: Variables for Python and uv themselves, not for the service.
RUNTIME_VARS = re.compile(r"^(PATH|PYTHON\w*|UV_\w+|VIRTUAL_ENV)$")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def k8s_documents() -> dict[str, dict[str, Any]]:
    """Every manifest under infra/k8s by kind (one object per file)."""
    docs = [load(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"]
    return {doc["kind"]: doc for doc in docs}


def dockerfile_stages() -> list[tuple[str, list[str]]]:
    """(FROM line, instructions) per stage, with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (INFRA / "Dockerfile").read_text())
    stages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def dockerfile_env(instructions: list[str]) -> set[str]:
    names: set[str] = set()
    for line in instructions:
        if line.upper().startswith("ENV "):
            names |= set(re.findall(r"(\w+)=", line[4:]))
    return names


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 3
    assert all(re.search(r"\sAS\s+\w+", line, re.IGNORECASE) for line, _ in stages)
    build = next(body for line, body in stages if line.endswith(" AS build"))
    assert any("uv sync --frozen --no-dev" in line for line in build)
    runtime_from, runtime = stages[-1]
    assert "slim" in runtime_from
    users = [line.split()[1] for line in runtime if line.upper().startswith("USER ")]
    assert users, "the runtime stage must switch user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    healthcheck = next(line for line in runtime if line.upper().startswith("HEALTHCHECK "))
    assert "urllib.request" in healthcheck
    assert "/health" in healthcheck
    assert runtime[-1] == 'CMD ["python", "-m", "server"]'
    assert "HOST=0.0.0.0" in " ".join(runtime)


def test_dockerignore_keeps_secrets_and_environments_out_of_the_image() -> None:
    ignored = (INFRA.parent / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", ".git", "data", "tests"):
        assert entry in ignored


def test_compose_runs_the_full_stack_with_healthchecks_and_ordered_start() -> None:
    compose = load(INFRA / "compose.yml")
    services = compose["services"]
    assert {"agent", "postgres", "redis", "searxng", "prometheus", "grafana"} <= services.keys()
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
    agent = services["agent"]
    assert agent["build"]["dockerfile"] == "infra/Dockerfile"
    for dependency in ("postgres", "redis"):
        assert agent["depends_on"][dependency]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    env = agent["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["HOST"] == "0.0.0.0"
    mounts = " ".join(services["prometheus"]["volumes"])
    assert "./monitoring:/etc/prometheus" in mounts


def test_compose_test_services_use_non_default_ports() -> None:
    services = load(INFRA / "compose.test.yml")["services"]
    published = {
        name: [str(p).rsplit(":", 2)[-2] for p in service["ports"]]
        for name, service in services.items()
    }
    assert published["postgres"]
    assert "5432" not in published["postgres"]
    assert published["redis"]
    assert "6379" not in published["redis"]
    assert all("healthcheck" in service for service in services.values())


def test_kubernetes_runs_stateless_non_root_replicas_with_probes_and_draining() -> None:
    docs = k8s_documents()
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Secret",
    } <= docs.keys()
    deployment = docs["Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # The grace period covers the preStop sleep plus the service's own drain time.
    grace = float(docs["ConfigMap"]["data"]["SHUTDOWN_GRACE_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + grace
    refs = {
        ref.get("configMapRef", ref.get("secretRef", {})).get("name")
        for ref in container["envFrom"]
    }
    assert refs == {docs["ConfigMap"]["metadata"]["name"], docs["Secret"]["metadata"]["name"]}
    labels = spec["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == labels
    assert (
        docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
        == deployment["metadata"]["name"]
    )
    assert docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2


def test_kustomization_lists_files_that_exist_and_not_the_example_secret() -> None:
    kustomization = load(K8S / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"]


def deployment_env_names() -> dict[str, set[str]]:
    """Every environment variable the deployment files hand to the service, by file."""
    compose = load(INFRA / "compose.yml")["services"]["agent"]["environment"]
    docs = k8s_documents()
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    runtime_env = dockerfile_env(dockerfile_stages()[-1][1])
    return {
        "compose.yml": set(compose),
        "k8s/configmap.yaml": set(docs["ConfigMap"]["data"]),
        "k8s/secret.example.yaml": set(docs["Secret"]["stringData"]),
        "k8s/deployment.yaml": {e["name"] for e in container.get("env", [])},
        "Dockerfile": {name for name in runtime_env if not RUNTIME_VARS.match(name)},
    }


@pytest.mark.parametrize("source", sorted(deployment_env_names()))
def test_every_variable_the_deployment_sets_is_a_setting(source: str) -> None:
    names = deployment_env_names()[source]
    unknown = sorted(name for name in names if name.upper() not in SETTINGS)
    assert not unknown, f"{source} sets variables server/settings/ does not read: {unknown}"


def test_the_consistency_check_would_catch_a_typo() -> None:
    assert "REDIS_URL" in SETTINGS
    assert "REDIS_ULR" not in SETTINGS
    assert "DATABASE_URL" in deployment_env_names()["compose.yml"]


def test_kubernetes_mounts_a_valid_provider_file_from_a_generated_config_map() -> None:
    from pydantic import SecretStr

    from server.settings.provider_file import load_provider_file

    docs = k8s_documents()
    (generated,) = load(K8S / "kustomization.yaml")["configMapGenerator"]
    assert generated["files"] == ["agent.toml"]
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == generated["name"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    path = Path(docs["ConfigMap"]["data"]["AGENT_CONFIG"])
    assert str(path.parent) == mount["mountPath"]
    assert path.name == "agent.toml"
    # Every key the file names is in the Secret, and the file passes the start-up check.
    secrets = docs["Secret"]["stringData"]
    loaded = load_provider_file(
        K8S / "agent.toml",
        secret=lambda name: SecretStr(secrets[name]) if name in secrets else None,
        default_timeout=60.0,
        default_retries=1,
    )
    assert {"default", "local", "cheap"} <= loaded.models.keys()
    assert loaded.summary_model == "cheap"
    assert "AGENT_MODELS" not in docs["ConfigMap"]["data"]  # the file's [models] replace it
