"""The pre-generation hook refuses bad answers at once; the post-generation hook trims options."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from cookiecutter.exceptions import FailedHookException

from tests.baking import TEMPLATE_ROOT, bake

GOOD_ANSWERS = {
    "project_slug": "acme-service",
    "author_name": "Acme Engineering",
    "author_email": "engineering@example.com",
    "description": "A production-ready FastAPI service.",
    "python_version": "3.11",
    "ci": "github",
}


def _pre_gen_hook() -> ModuleType:
    # Unrendered, the hook is still plain Python: its checks are importable and testable directly.
    path = TEMPLATE_ROOT / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("pre_gen_project", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("answers", "complaint"),
    [
        pytest.param({"project_slug": "Acme Service"}, "project_slug", id="slug-with-space"),
        pytest.param({"project_slug": "1acme"}, "project_slug", id="slug-starts-with-digit"),
        pytest.param({"project_slug": "acme_service"}, "project_slug", id="slug-underscore"),
        pytest.param({"project_slug": "acme--service"}, "project_slug", id="slug-double-hyphen"),
        pytest.param({"project_slug": "acme-"}, "project_slug", id="slug-trailing-hyphen"),
        pytest.param({"python_version": "3.9"}, "python_version", id="python-3.9"),
        pytest.param({"author_email": "engineering"}, "author_email", id="email-no-at"),
        pytest.param({"author_email": "a@b"}, "author_email", id="email-no-domain-dot"),
        pytest.param({"author_email": "a b@example.com"}, "author_email", id="email-space"),
        pytest.param({"description": 'The "best" API'}, "description", id="description-quote"),
    ],
)
def test_rejected_answer_fails_and_leaves_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str], complaint: str
) -> None:
    """A bad answer raises FailedHookException, names the answer on stderr, and bakes nothing."""
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    output = tmp_path / "out"
    assert not output.exists() or list(output.iterdir()) == []
    assert complaint in capfd.readouterr().err


def test_every_bad_answer_is_reported_at_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Several bad answers are all named in the one failure message."""
    with pytest.raises(FailedHookException):
        bake(tmp_path, project_slug="1acme", python_version="3.9", author_email="nobody")
    err = capfd.readouterr().err
    assert "project_slug '1acme'" in err
    assert "python_version '3.9'" in err
    assert "author_email 'nobody'" in err


def test_good_answers_raise_no_problem() -> None:
    """The default answers pass every check."""
    assert _pre_gen_hook().problems(GOOD_ANSWERS) == []


def test_unknown_ci_is_a_problem() -> None:
    """A `ci` outside github/none is refused even where cookiecutter let it through."""
    problems = _pre_gen_hook().problems({**GOOD_ANSWERS, "ci": "gitlab"})
    assert problems == ["ci 'gitlab' must be one of github, none"]


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_supported_python_versions_are_accepted(python_version: str) -> None:
    """3.11, 3.12 and 3.13 are the supported targets."""
    assert _pre_gen_hook().problems({**GOOD_ANSWERS, "python_version": python_version}) == []
