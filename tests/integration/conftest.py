"""Integration tier: real cross-compilers and real QEMU. A missing tool fails these tests (the
toolkit raises ToolMissingError); nothing here is ever skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import format as fmt
from toolkit.pipeline import build, convert, open_input
from toolkit.targets import Target, available_targets, load_target
from toolkit.toolchain import Build

# Every list is derived from the profiles in targets/: a new profile is tested without editing one.
PROFILES = {name: load_target(name) for name in available_targets()}
# A profile that picks its SIMD kernel at run time (g3g4) is run on each of its CPUs by test_g3g4.py.
RUNTIME_SIMD_TARGETS = [name for name, t in PROFILES.items() if t.simd_runtime]
TARGETS = [name for name, t in PROFILES.items() if not t.simd_runtime]
TEST_ONLY_TARGETS = [name for name in TARGETS if PROFILES[name].test_only]  # other big-endian ISAs
SIMD_TARGETS = [name for name in TARGETS if PROFILES[name].has_simd]
PPC_TARGETS = [name for name in TARGETS if PROFILES[name].isa is not None]  # audited targets


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toolkit cache for this session: $PPC_LLM_CACHE (CI keeps it in the checkout) or a temp dir."""
    explicit = os.environ.get("PPC_LLM_CACHE")
    return Path(explicit) if explicit else tmp_path_factory.mktemp("ppc-llm-cache")


@pytest.fixture(scope="session")
def builds(cache: Path) -> dict[str, Build]:
    return {name: build(load_target(name), cache) for name in TARGETS}


@pytest.fixture(scope="session")
def models(cache: Path, bundled_model_paths: tuple[Path, Path]) -> dict[str, Path]:
    """The bundled stories260K converted for each target's byte order."""
    checkpoint, tokenizer = bundled_model_paths
    source = open_input(checkpoint, tokenizer)
    return {name: convert(source, load_target(name), cache).path for name in TARGETS}


def target(name: str) -> Target:
    return load_target(name)


def cli(*args: str, env: dict[str, str] | None = None, cache_dir: Path | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
    """Run `ppc-llm ARGS` as a user would (a real process), capturing bytes."""
    full_env = dict(os.environ if env is None else env)
    if cache_dir is not None:
        full_env["PPC_LLM_CACHE"] = str(cache_dir)
    return subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True, env=full_env,
                          timeout=timeout, check=False)


def write_variant(tmp: Path, source: Path, name: str, edit: "object") -> Path:
    """A damaged copy of a converted file: ``edit`` receives a bytearray to change in place."""
    data = bytearray(source.read_bytes())
    edit(data)  # type: ignore[operator]
    path = tmp / name
    path.write_bytes(bytes(data))
    return path


__all__ = ["PROFILES", "TARGETS", "RUNTIME_SIMD_TARGETS", "TEST_ONLY_TARGETS", "SIMD_TARGETS", "PPC_TARGETS", "cli", "target", "write_variant", "fmt"]
