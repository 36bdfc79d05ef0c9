"""deploy/k8s is checked (issue 12, item 5): every manifest passes Kubernetes' schema validation
(kubernetes-validate, offline: its schemas are in the wheel), and what the cluster needs from
us is there: resources, probes on the paths the app serves, a disruption budget and an
autoscaler per Deployment, settings that exist, secrets from a Secret, Temporal on PostgreSQL,
NATS on three nodes with a file store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from assistance.app import _mount_health
from assistance.settings import Settings
from composition.parts import PARTS, TARGETS
from services.bugs.settings import BugsSettings
from services.evolutions.settings import EvolutionsSettings
from services.site.settings import SiteSettings
from services.training.settings import TrainingSettings

K8S = Path(__file__).parents[2] / "deploy" / "k8s"
MANIFESTS = ("config.yaml", "ingress.yaml", "parts.yaml")
HELM_VALUES = ("temporal-values.yaml", "nats-values.yaml")
SECRETS = {"DATABASE_URL", "MAIL_SIGNING_KEY", "IMAP_PASSWORD"}
KUBERNETES = "1.30.0"  # the oldest version still supported that the manifests must fit


def _resources() -> list[dict[str, Any]]:
    found = []
    for name in MANIFESTS:
        text = (K8S / name).read_text(encoding="utf-8")
        found += [doc for doc in yaml.safe_load_all(text) if doc]
    return found


def _of(kind: str) -> list[dict[str, Any]]:
    return [r for r in _resources() if r["kind"] == kind]


def _env_names() -> set[str]:
    """Every name a process reads from its environment: the kernel's settings and each
    service's own (with its prefix)."""
    names = {field.upper() for field in Settings.model_fields}
    others: list[type[BaseSettings]] = [
        BugsSettings,
        EvolutionsSettings,
        SiteSettings,
        TrainingSettings,
    ]
    for cls in others:
        prefix = str(cls.model_config.get("env_prefix", ""))
        names |= {f"{prefix}{field}".upper() for field in cls.model_fields}
    return names


@pytest.mark.parametrize("name", MANIFESTS)
def test_every_manifest_passes_the_schema_validation(name: str) -> None:
    docs = [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]
    assert docs
    for version in (KUBERNETES, kubernetes_validate.latest_version()):
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)  # raises when invalid


def test_the_validation_does_reject_a_broken_manifest() -> None:
    deployment = _of("Deployment")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_every_part_has_a_deployment_a_budget_and_an_autoscaler() -> None:
    deployments = {d["metadata"]["name"]: d for d in _of("Deployment")}
    assert set(deployments) == {f"assistance-{part}" for part in TARGETS}
    budgets = {b["metadata"]["name"]: b for b in _of("PodDisruptionBudget")}
    scalers = {h["metadata"]["name"]: h for h in _of("HorizontalPodAutoscaler")}
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"] == labels, name
        target = scalers[name]["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert scalers[name]["spec"]["minReplicas"] >= 2, name  # the budget lets one go
        assert deployment["spec"]["replicas"] == scalers[name]["spec"]["minReplicas"]


def test_every_container_has_resources_and_probes_on_the_served_paths() -> None:
    app = FastAPI()
    _mount_health(app, None, [])
    served = {getattr(route, "path", None) for route in app.routes}
    assert {"/healthz", "/readyz"} <= served
    for deployment in _of("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            where = f"{deployment['metadata']['name']}/{container['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert {"cpu", "memory"} <= set(resources["limits"]), where
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            part = container["args"][container["args"].index("--target") + 1]
            assert deployment["metadata"]["name"] == f"assistance-{part}"
        # the graceful stop (notice + grace, config.yaml) fits in the pod's grace period
        config = _of("ConfigMap")[0]["data"]
        stop = float(config["SHUTDOWN_NOTICE_SECONDS"]) + float(config["SHUTDOWN_GRACE_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] > stop


def test_env_names_are_real_settings_and_secrets_come_from_a_secret() -> None:
    known = _env_names()
    config = _of("ConfigMap")
    assert [c["metadata"]["name"] for c in config] == ["assistance-config"]
    data = config[0]["data"]
    assert set(data) <= known, set(data) - known
    assert not set(data) & SECRETS
    assert data["ENVIRONMENT"] == "production"  # refuses a default MAIL_SIGNING_KEY
    for deployment in _of("Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in container.get("env", [])}
        assert names <= known, names - known
        assert not names & SECRETS, "a secret as a literal value"
        refs = [next(iter(ref)) for ref in container["envFrom"]]
        assert refs == ["configMapRef", "secretRef"]
    everything = "\n".join((K8S / n).read_text(encoding="utf-8") for n in MANIFESTS)
    assert "change-me-in-production" not in everything


def test_the_ingress_routes_to_services_that_exist() -> None:
    services = {s["metadata"]["name"] for s in _of("Service")}
    for rule in _of("Ingress")[0]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["name"] in services, path


def test_every_public_route_reaches_the_part_that_serves_it() -> None:
    """The Ingress picks the longest matching prefix: each route of each part's router (the
    site's own pages aside, which `/` sends to the site) must land on that part's Service."""
    paths = [p for r in _of("Ingress")[0]["spec"]["rules"] for p in r["http"]["paths"]]

    def served_by(route: str) -> str:
        matching = [
            p for p in paths if route == p["path"] or route.startswith(p["path"].rstrip("/") + "/")
        ]
        best = max(matching, key=lambda p: len(p["path"]))
        return str(best["backend"]["service"]["name"])

    wrong = []
    for part in PARTS:
        if part.router is None:
            continue
        for route in part.router.routes:
            path = getattr(route, "path", "")
            public = path.startswith(("/api/", "/feeds"))
            if public and served_by(path) != f"assistance-{part.name}":
                wrong.append(f"{path} ({part.name}) goes to {served_by(path)}")
    assert wrong == []


def test_temporal_persists_in_postgresql() -> None:
    values = yaml.safe_load((K8S / "temporal-values.yaml").read_text(encoding="utf-8"))
    persistence = values["server"]["config"]["persistence"]
    for store in ("default", "visibility"):
        assert persistence[store]["driver"] == "sql"
        assert persistence[store]["sql"]["driver"].startswith("postgres")
    assert values["cassandra"]["enabled"] is False
    assert values["server"]["config"]["numHistoryShards"] >= 512


def test_nats_runs_three_nodes_on_a_file_store() -> None:
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text(encoding="utf-8"))
    config = values["config"]
    assert config["cluster"]["enabled"] is True
    assert config["cluster"]["replicas"] == 3
    assert config["jetstream"]["enabled"] is True
    assert config["jetstream"]["fileStore"]["enabled"] is True
    assert config["jetstream"]["memoryStore"]["enabled"] is False
    assert _of("ConfigMap")[0]["data"]["NATS_REPLICAS"] == "3"  # streams at 3 replicas
