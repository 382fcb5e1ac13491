"""BUILD-CONTAINER: the Dockerfile keeps the properties docs/deployment.md promises, as you edit it.

These read the files; CI's image job builds and scans the image, and the template's own tests
build it and look inside (no compiler, the user, `check-config`, the installed packages).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    pairs = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def test_base_image_is_pinned_by_digest() -> None:
    """Every FROM uses BASE_IMAGE, whose default names a digest: a rebuild gets the same bytes."""
    instructions = _instructions()
    base = [args for name, args in instructions if name == "ARG" and args.startswith("BASE_IMAGE=")]
    assert len(base) == 1, base
    assert DIGEST.search(base[0]), base
    froms = [args.split()[0] for name, args in instructions if name == "FROM"]
    assert froms
    assert all(image == "${BASE_IMAGE}" for image in froms), froms


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    users = [args for name, args in _final_stage() if name == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    arg_defaults = dict(
        args.split("=", 1) for name, args in _instructions() if name == "ARG" and "=" in args
    )
    uid = re.sub(r"\$\{(\w+)\}", lambda m: arg_defaults.get(m.group(1), ""), users[-1])
    user, _, group = uid.partition(":")
    assert user.isdigit(), users[-1]
    assert int(user) != 0, users[-1]
    assert group == "" or int(group) != 0, users[-1]


def test_final_stage_installs_nothing() -> None:
    """The final stage copies the builder's result: no package manager, no compiler."""
    runs = " ".join(args for name, args in _final_stage() if name == "RUN")
    for installer in ("apt-get", "pip ", "uv ", "gcc"):
        assert installer not in runs, installer
    copies = [args for name, args in _final_stage() if name == "COPY"]
    assert copies
    assert all(args.startswith("--from=builder") for args in copies), copies


def test_image_declares_health_stop_signal_and_entrypoint() -> None:
    final = dict(_final_stage())
    assert "/health/live" in final["HEALTHCHECK"]
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert final["ENTRYPOINT"].startswith('["')
    assert final["CMD"].startswith('["serve"')


def test_build_context_is_an_allow_list_without_secrets() -> None:
    """.dockerignore excludes everything, then allows what the image needs: never .env or tests."""
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed <= {"pyproject.toml", "uv.lock", "README.md", "alembic.ini", "migrations", "src"}
    assert "**/.env*" in lines
