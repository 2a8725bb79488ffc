"""The docker toolchain with a real engine (scripts/docker-engine.sh starts Debian's dockerd and
imports the base image when none answers): every target builds in a container to the same bytes
as the host toolchain, the audit runs there too, and the binaries pass the golden cases."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, GoldenCase
from toolkit.container import engine_answers
from toolkit.emulate import run_user
from toolkit.toolchain import Build, cached_build

from .conftest import PPC_TARGETS, cli, target

ENGINE_SCRIPT = REPO / "scripts" / "docker-engine.sh"


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[str]:
    """A docker engine that answers, with the base image; stopped afterwards if this started it."""
    started = not engine_answers("docker")
    result = subprocess.run(["bash", str(ENGINE_SCRIPT), "start"], capture_output=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert engine_answers("docker")
    yield "docker"
    if started:
        subprocess.run(["bash", str(ENGINE_SCRIPT), "stop"], capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def docker_builds(docker_engine: str, cache: Path) -> dict[str, Build]:
    return {name: cached_build(target(name), cache, "docker", docker_engine) for name in PPC_TARGETS}


@pytest.mark.parametrize("name", PPC_TARGETS)
def test_docker_build_is_byte_identical_to_host(name: str, docker_builds: dict[str, Build],
                                                builds: dict[str, Build]) -> None:
    docker, host = docker_builds[name], builds[name]
    assert docker.manifest["toolchain"] == "docker" and host.manifest["toolchain"] == "host"
    assert docker.directory != host.directory  # built separately, cached under another key
    assert docker.engine.read_bytes() == host.engine.read_bytes()
    assert docker.manifest["engine_code"] == host.manifest["engine_code"]  # audited in the container


@pytest.mark.parametrize("name", PPC_TARGETS)
def test_docker_build_passes_golden_cases(name: str, docker_builds: dict[str, Build], models: dict[str, Path],
                                          golden: list[GoldenCase]) -> None:
    for case in golden:
        result = run_user(target(name), docker_builds[name].engine, [str(models[name]), *case.engine_args()], 600)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == case.expected


def _containers(engine: str) -> list[str]:
    out = subprocess.run([engine, "ps", "--all", "--format", "{{.Names}}"], capture_output=True, check=True)
    return [n for n in out.stdout.decode().split() if n.startswith("ppc-llm-")]


def test_build_command_with_docker(docker_engine: str, tmp_path: Path, cache: Path,
                                   docker_builds: dict[str, Build]) -> None:
    before = _containers(docker_engine)
    out = tmp_path / "g4"
    result = cli("build", "--target", "g4", "--toolchain", "docker", "--engine", docker_engine, "-o", str(out),
                 cache_dir=cache)
    assert result.returncode == 0, result.stderr.decode()
    assert b"docker exec" in result.stderr and b"ISA audit passed" in result.stderr
    assert (out / "ppcllm").read_bytes() == docker_builds["g4"].engine.read_bytes()
    assert {p.stat().st_uid for p in out.rglob("*")} == {os.getuid()}  # --user: owned by the caller
    assert _containers(docker_engine) == before  # the container was removed


def test_default_toolchain_from_environment(docker_engine: str, tmp_path: Path, cache: Path) -> None:
    env = dict(os.environ, PPC_LLM_TOOLCHAIN="docker")
    result = cli("build", "--target", "g3", "-o", str(tmp_path / "g3"), env=env, cache_dir=cache)
    assert result.returncode == 0, result.stderr.decode()
    assert b"with the docker toolchain" in result.stderr


def test_doctor_sees_the_engine_and_every_target(docker_engine: str) -> None:
    result = cli("doctor")
    assert result.returncode == 0, result.stderr.decode()
    text = result.stderr.decode()
    assert result.stdout == b""
    for name in PPC_TARGETS:
        assert f"\n{name} " in "\n" + text
        assert target(name).toolchain.cc in text
    assert "docker" in text and "answers (server" in text


def test_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("build", "--target", "g4", "--toolchain", "docker", "--engine", "lxc", "-o", str(tmp_path / "x"))
    assert result.returncode == 2
    assert result.stderr.decode().startswith("error: --engine lxc")
