"""Build a baked project's container image without a Docker engine, and look inside it.

Debian's podman builds with `--isolation chroot` where containers cannot run (no cgroups here),
and a built image can be mounted and entered with `chroot --userspec`. The base is a local Debian
made by debootstrap with Python from the Debian mirror, imported into podman and passed to the
Dockerfile as BASE_IMAGE, so the test needs no container registry; the Python packages still come
from the package index, through the same TLS proxy the host uses (hence the host's CA bundle).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# bookworm's python3 is 3.11: the lowest Python the template supports, so every bake accepts it.
SUITE = "bookworm"
SUITE_PYTHON = "3.11"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Between runs: debootstrap takes about a minute, the cached tarball imports in seconds. Outside
# the checkout (CI starts from a clean clone), like podman's own layer cache.
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "cookiecutter-fastapi-production"
    / "image-base"
)
CA_BUNDLE_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"
TOOLS = ("podman", "debootstrap", "chroot")
FIXED_MTIME = 1_700_000_000


def missing_tools() -> list[str]:
    """What this machine lacks to build and enter images: tools, or root (chroot needs it)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (debootstrap, podman image mount and chroot need it)")
    return missing


def _run(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result


def host_ca_bundle() -> Path:
    """The CA bundle pip is configured with here: it alone holds the TLS proxy's CA."""
    configured = [os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE")]
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.cert"],
        capture_output=True,
        text=True,
        check=False,
    )
    configured.append(pip.stdout.strip() or None)
    for candidate in [*configured, CA_BUNDLE_IN_IMAGE]:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise RuntimeError("no CA bundle found (PIP_CERT, SSL_CERT_FILE, pip's global.cert)")


@contextmanager
def one_builder_at_a_time() -> Iterator[None]:
    """Serialise base and image builds across pytest-xdist workers: the first one builds, and
    the others find its layers in podman's cache instead of building the same in parallel."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def base_image() -> str:
    """A podman image of Debian SUITE with python3 and the host's CA bundle; built once, cached."""
    ca_bundle = host_ca_bundle().read_bytes()
    key = hashlib.sha256(repr((SUITE, MIRROR, BASE_PACKAGES)).encode() + ca_bundle).hexdigest()
    tag = f"localhost/image-test-base:{SUITE}-{key[:12]}"
    if _exists(tag):
        return tag
    tarball = CACHE / f"debian-{SUITE}-{key[:12]}.tar"
    if not tarball.is_file():
        _debootstrap(tarball, ca_bundle)
    _run(
        "podman",
        "import",
        # The host trusts the proxy through this bundle; pip and uv in the build must too.
        "--change",
        f"ENV PIP_CERT={CA_BUNDLE_IN_IMAGE}",
        "--change",
        f"ENV SSL_CERT_FILE={CA_BUNDLE_IN_IMAGE}",
        "--change",
        "ENV LANG=C.UTF-8",
        str(tarball),
        tag,
    )
    return tag


def _debootstrap(tarball: Path, ca_bundle: bytes) -> None:
    rootfs = tarball.with_suffix(".rootfs")
    shutil.rmtree(rootfs, ignore_errors=True)
    include = ",".join(BASE_PACKAGES)
    _run("debootstrap", "--variant=minbase", f"--include={include}", SUITE, str(rootfs), MIRROR)
    (rootfs / CA_BUNDLE_IN_IMAGE.lstrip("/")).write_bytes(ca_bundle)
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / leftover, ignore_errors=True)
    partial = tarball.with_suffix(".partial")
    _run("tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), ".")
    partial.rename(tarball)
    shutil.rmtree(rootfs, ignore_errors=True)


def _exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0


def build(project: Path, base: str, tag: str) -> None:
    """`podman build` the project's Dockerfile on `base`; layers are cached between runs."""
    # Buildah's COPY cache key includes modification times: a fresh bake would reinstall every
    # dependency. Fixed times make an unchanged pyproject.toml and uv.lock hit the cache.
    for path in [project, *project.rglob("*")]:
        os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    _run(
        "podman",
        "build",
        "--isolation",
        "chroot",
        "--network",
        "host",
        # Docker's format keeps HEALTHCHECK (OCI image configs have no field for it).
        "--format",
        "docker",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--tag",
        tag,
        str(project),
        timeout=1800,
    )


@dataclass(frozen=True)
class MountedImage:
    """A built image mounted read-only-ish at `root`, with its configuration."""

    root: Path
    config: Mapping[str, object]
    # podman reports a Docker-format HEALTHCHECK beside Config, not in it.
    healthcheck: Mapping[str, object] | None

    @property
    def user(self) -> str:
        return str(self.config.get("User") or "")

    def env(self, **overrides: str) -> dict[str, str]:
        """The image's ENV, as a container would start with, plus `overrides`."""
        pairs = (item.split("=", 1) for item in _strings(self.config.get("Env")))
        return {**dict(pairs), **overrides}

    def command(self, *args: str) -> list[str]:
        """The entrypoint with `args`, as `docker run IMAGE args...` would run it."""
        return [*_strings(self.config.get("Entrypoint")), *args]

    def run(
        self, argv: list[str], env: Mapping[str, str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the image as its configured user (HOME unset, like a container)."""
        uid, _, gid = self.user.partition(":")
        return subprocess.run(
            ["chroot", f"--userspec={uid}:{gid or uid}", str(self.root), *argv],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
        )


def _strings(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


@contextmanager
def mounted(image: str) -> Iterator[MountedImage]:
    """Mount `image` and yield it; unmounted afterwards."""
    inspected = json.loads(_run("podman", "image", "inspect", image).stdout)[0]
    root = Path(_run("podman", "image", "mount", image).stdout.strip())
    try:
        yield MountedImage(
            root=root,
            config=inspected.get("Config", {}),
            healthcheck=inspected.get("Healthcheck"),
        )
    finally:
        subprocess.run(["podman", "image", "unmount", image], capture_output=True, check=False)
