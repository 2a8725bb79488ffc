"""The docker toolchain: the target's cross-gcc inside an image built from docker/ (docker or
podman). Like cibuildwheel's oci_container.py: the container is a context manager that is
always removed, the image is built on demand and tagged by a hash of what makes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from .cmd import echo, run
from .errors import BuildError, ToolMissingError, UsageError
from .fsutil import sha256_bytes
from .resources import docker_dir

ENGINES = ("docker", "podman")
BASE_IMAGE = "debian:bookworm"
IMAGE_REPO = "ppc-llm-toolchain"
KEY_LABEL = "org.ppc-llm.toolchain-key"
ENGINE_HINT = "start one with: bash scripts/docker-engine.sh start (or install docker.io or podman)"


def engine_answers(engine: str, timeout: float = 20) -> bool:
    """Whether ``engine info`` succeeds (the daemon / service is reachable)."""
    if shutil.which(engine) is None:
        return False
    try:
        result = subprocess.run([engine, "info"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def choose_engine(preferred: str | None = None) -> str:
    """``preferred``, else $PPC_LLM_ENGINE, else the first of docker, podman that answers."""
    choice = preferred or os.environ.get("PPC_LLM_ENGINE") or "auto"
    if choice not in ("auto", *ENGINES):
        raise UsageError(f"--engine {choice}: must be auto, docker or podman")
    for engine in ENGINES if choice == "auto" else (choice,):
        if engine_answers(engine):
            return engine
    tried = "docker, podman" if choice == "auto" else choice
    raise ToolMissingError(f"no container engine answers (tried {tried})", ENGINE_HINT)


def image_key(packages: Sequence[str]) -> str:
    """A hash of everything the toolchain image is made from."""
    dockerfile = (docker_dir() / "Dockerfile").read_bytes()
    return sha256_bytes(b"\0".join([dockerfile, BASE_IMAGE.encode(), " ".join(packages).encode()]))


def ensure_image(engine: str, packages: Sequence[str]) -> str:
    """The tag of the toolchain image for ``packages``, building it first when it is missing."""
    key = image_key(packages)
    tag = f"{IMAGE_REPO}:{key[:16]}"
    if subprocess.run([engine, "image", "inspect", tag], capture_output=True, check=False).returncode == 0:
        return tag
    argv = [engine, "build", "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg", f"PACKAGES={' '.join(packages)}",
            "--label", f"{KEY_LABEL}={key}", "-t", tag, str(docker_dir())]
    echo(argv)
    # the classic builder uses the local base image; BuildKit would try to reach a registry
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    result = subprocess.run(argv, capture_output=True, env=env, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
        raise BuildError(f"building the toolchain image {tag} failed: {lines[-1] if lines else 'no output'}",
                         f"is the base image {BASE_IMAGE} there? bash scripts/docker-engine.sh start makes it")
    return tag


def image_id(engine: str, tag: str) -> str:
    """The content id of the image ``tag`` (what a build made in it depends on)."""
    result = subprocess.run([engine, "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, check=False)
    found = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0 or not found:
        raise BuildError(f"{engine} image inspect {tag} failed: {result.stderr.decode(errors='replace').strip()}",
                         ENGINE_HINT)
    return found


class ContainerRunner:
    """Runs the toolchain's commands in one container of ``image``; ``mounts`` appear at their own
    paths, files are written as the invoking user, and the container is always removed."""

    name = "docker"

    def __init__(self, engine: str, image: str, mounts: Sequence[Path] = ()) -> None:
        self.engine = engine
        self.image = image
        self.mounts = [Path(m).resolve() for m in mounts]
        self.container = f"ppc-llm-{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> ContainerRunner:
        argv: list[str | Path] = [self.engine, "run", "--detach", "--rm", "--name", self.container, "--network", "none",
                                  "--user", f"{os.getuid()}:{os.getgid()}", "--env", "LC_ALL=C"]
        for mount in self.mounts:
            argv += ["--volume", f"{mount}:{mount}"]
        argv += [self.image, "sleep", "infinity"]
        result = run(argv)
        if result.returncode != 0:
            raise BuildError(f"starting a {self.engine} container of {self.image} failed: "
                             f"{result.stderr.decode(errors='replace').strip()}", ENGINE_HINT)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        run([self.engine, "rm", "--force", self.container], quiet=True)

    def which(self, tool: str, package: str) -> str:
        result = self.run(["sh", "-c", f'command -v "{tool}"'], cwd=Path("/"), quiet=True)
        path = result.stdout.decode().strip()
        if result.returncode != 0 or not path:
            raise ToolMissingError(f"'{tool}' is not in the toolchain image {self.image}",
                                   f"the image installs the target's packages ({package}, ...): check targets/*.toml")
        return path

    def run(self, argv: Sequence[str | Path], *, cwd: Path, quiet: bool = False) -> subprocess.CompletedProcess[bytes]:
        return run([self.engine, "exec", "--workdir", str(cwd), self.container, *argv], quiet=quiet)
