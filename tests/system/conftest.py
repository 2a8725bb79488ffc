"""System tier: full-system QEMU boots of a real PowerPC Linux (guest kernels built from Debian's
linux-source on first use, then cached). A missing tool fails these tests; nothing is skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolkit.pipeline import build, convert, open_input
from toolkit.system.kernel import Kernel, cached_kernel
from toolkit.targets import available_targets, load_target
from toolkit.toolchain import Build

# every profile with a [system] table (a new one is system-tested without editing a list)
SYSTEM_TARGETS = [name for name in available_targets() if load_target(name).system is not None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/system/" in str(item.fspath):
            item.add_marker(pytest.mark.system)


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$PPC_LLM_CACHE (CI keeps it in the checkout, so kernels survive between runs) or a temp dir."""
    explicit = os.environ.get("PPC_LLM_CACHE")
    return Path(explicit) if explicit else tmp_path_factory.mktemp("ppc-llm-cache")


@pytest.fixture(scope="session")
def kernels(cache: Path) -> dict[str, Kernel]:
    return {name: cached_kernel(load_target(name), cache) for name in SYSTEM_TARGETS}


@pytest.fixture(scope="session")
def system_builds(cache: Path) -> dict[str, Build]:
    return {name: build(load_target(name), cache) for name in SYSTEM_TARGETS}


@pytest.fixture(scope="session")
def system_models(cache: Path, bundled_model_paths: tuple[Path, Path]) -> dict[str, Path]:
    checkpoint, tokenizer = bundled_model_paths
    source = open_input(checkpoint, tokenizer)
    return {name: convert(source, load_target(name), cache).path for name in SYSTEM_TARGETS}
