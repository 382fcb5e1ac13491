"""deploy/kubernetes/rollout.sh orders a release: migrations to completion first, then the rest,
with the image by digest. Run against a fake kubectl that records its calls (no cluster here) and
renders with the real one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # PyYAML: no stubs in the test requirements

from tests.kubernetes_render import Object, kubectl, pod_specs

FAKE_KUBECTL = """#!/usr/bin/env bash
# Records each call; renders with the real kubectl; answers `get job` with $JOB_STATE.
echo "$*" >>"$LOG_DIR/calls"
case "$1" in
  kustomize) exec "$REAL_KUBECTL" "$@" ;;
  get) printf '%s' "$JOB_STATE" ;;
  apply) cp "$3" "$LOG_DIR/applied-$(wc -l <"$LOG_DIR/calls" | tr -d ' ').yaml" ;;
esac
"""
DIGEST_IMAGE = "registry.example.com/acme-service@sha256:" + "ab" * 32
# deploy/kubernetes/base/redis.yaml's image, pinned by digest like compose.yaml's.
REDIS_IMAGE = (
    "redis:7.4.11-bookworm@sha256:c6eabf748fc7a61dbb5a705c78bcf3d6377b1127a97d0ce965c11c44ba46896f"
)


def run_rollout(project: Path, tmp_path: Path, image: str, job_state: str) -> tuple[int, list[str]]:
    """Run rollout.sh against a fake kubectl; its exit status and the kubectl calls it made."""
    tmp_path.mkdir(exist_ok=True)
    fake = tmp_path / "kubectl"
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(0o755)
    (tmp_path / "calls").touch()
    result = subprocess.run(
        ["bash", str(project / "deploy/kubernetes/rollout.sh"), image],
        env={
            "PATH": "/usr/bin:/bin",
            "KUBECTL": str(fake),
            "REAL_KUBECTL": kubectl(),
            "LOG_DIR": str(tmp_path),
            "JOB_STATE": job_state,
            "POLL_SECONDS": "0",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    return result.returncode, [
        " ".join(call.split()[: 1 if call.startswith("kustomize") else 2]) for call in calls
    ]


def test_rollout_migrates_first_then_rolls_out_the_digest(
    default_project: Path, tmp_path: Path
) -> None:
    """Old Job deleted, settings and the Job applied, its completion awaited, then everything
    applied with the image by digest, then each rollout watched."""
    status, calls = run_rollout(default_project, tmp_path, DIGEST_IMAGE, "Complete")
    assert status == 0
    assert calls == [
        "kustomize",
        "delete job",
        "apply -f",
        "get job",
        "apply -f",
        "rollout status",
        "rollout status",
        "rollout status",
    ]
    first = (tmp_path / "calls").read_text().splitlines()[2]
    assert "--selector app.kubernetes.io/component in (config, migrations)" in first
    applied = render_file(tmp_path / "applied-5.yaml")
    images = {c["image"] for _, pod in pod_specs(applied) for c in pod["containers"]}
    assert images == {DIGEST_IMAGE, REDIS_IMAGE}


def render_file(path: Path) -> list[Object]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def test_rollout_stops_when_migrations_fail_or_the_image_is_a_tag(
    default_project: Path, tmp_path: Path
) -> None:
    """A failed Job ends the rollout before the new release is applied; a tag is refused."""
    status, calls = run_rollout(default_project, tmp_path / "failed", DIGEST_IMAGE, "Failed")
    assert status == 1
    assert calls.count("apply -f") == 1
    assert "rollout status" not in calls
    status, calls = run_rollout(default_project, tmp_path / "tag", "acme-service:1.0", "Complete")
    assert status == 2
    assert calls == []
