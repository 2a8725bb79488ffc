"""Every ``ci`` block of the README runs exactly as written (``pytest -m readme``).

Each block's text goes unchanged into a script run with ``bash -euo pipefail``, in the folder its
comment names (tests/readme_blocks.py):

- ``starts: repo``: "the repository root after the quick start". A fresh folder holding a copy of
  the checkout's files (``git ls-files``: tracked and untracked-but-not-ignored, as in the working
  tree, so no build output, cache or venv comes along) and ``.venv``, a link to the virtual
  environment running these tests: what the quick start leaves in a fresh clone. A copy, not the
  checkout itself, so a block's outputs never land in the checkout, and not a ``git clone``, so
  uncommitted work is what is tested (in CI, a fresh clone, the two are the same).
- ``starts: empty``: a fresh empty folder.

The environment is the caller's with: PATH starting with the venv's ``bin/`` (this interpreter's
folder), ``PPC_LLM_CACHE`` the session's cache (so blocks reuse the builds and conversions of the
suite and of each other: the cache is keyed by content), and ``HOME`` a fresh folder, so nothing
in the user's home is leaned on. pip keeps the user's own configuration and download cache
(``PIP_CONFIG_FILE``, ``PIP_CACHE_DIR``, found before HOME is replaced): the SmolLM2 block
downloads as the user's pip would. Stdin is empty. A block that ``needs: docker`` gets an engine
that answers (scripts/docker-engine.sh, as the docker tests do).

The block must exit 0, leave the files its ``makes:`` names (non-empty) and print its
``prints:`` text on stdout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, shared_dir
from tests.readme_blocks import Block, ci_blocks
from toolkit.container import engine_answers

pytestmark = pytest.mark.readme

ENGINE_SCRIPT = REPO / "scripts" / "docker-engine.sh"
BLOCK_TIMEOUT = 1800.0


def copy_checkout(destination: Path) -> None:
    """The checkout's files (tracked and not ignored, from the working tree), and .venv -> the venv."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and not source.is_symlink():  # a deleted tracked file is not copied
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (destination / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)


def pip_settings() -> dict[str, str]:
    """pip's download cache and user configuration file, as found with the real HOME."""
    settings = {"PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR")
                or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip")}
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    for config in (config_home / "pip" / "pip.conf", Path.home() / ".pip" / "pip.conf"):
        if "PIP_CONFIG_FILE" not in os.environ and config.is_file():
            settings["PIP_CONFIG_FILE"] = str(config)
            break
    return settings


def block_env(cache: Path, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(pip_settings())
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PPC_LLM_CACHE"] = str(cache)
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="session")
def readme_docker_engine() -> Iterator[None]:
    """A docker engine that answers, with the base image; stopped afterwards if this started it."""
    started = not engine_answers("docker")
    result = subprocess.run(["bash", str(ENGINE_SCRIPT), "start"], capture_output=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    yield
    if started:
        subprocess.run(["bash", str(ENGINE_SCRIPT), "stop"], capture_output=True, timeout=120, check=False)


def block_params() -> list[object]:
    """One case per ci block; with none found, one case that fails (never an empty, skipped set)."""
    return [pytest.param(block, id=block.id) for block in ci_blocks()] or [pytest.param(None, id="no-ci-blocks")]


@pytest.mark.parametrize("block", block_params())
def test_readme_block_runs_as_written(block: Block | None, cache: Path, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    if block is None:
        pytest.fail("README.md has no `<!-- block: ci, ... -->` blocks")
    if block.needs == "docker":
        request.getfixturevalue("readme_docker_engine")
    start, home = tmp_path / "start", tmp_path / "home"
    start.mkdir()
    home.mkdir()
    if block.starts == "repo":  # a fresh clone, with ../shared beside it as in CI
        copy_checkout(start)
        (tmp_path / "shared").symlink_to(shared_dir().resolve(), target_is_directory=True)
    script = tmp_path / f"{block.id}.sh"
    script.write_text(block.text, encoding="utf-8")
    result = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=start, env=block_env(cache, home),
                            input=b"", capture_output=True, timeout=BLOCK_TIMEOUT, check=False)
    code, stdout, stderr = result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    assert code == 0, f"README.md:{block.line} ({block.id}) exited {code}\n{stderr[-4000:]}\n{stdout[-4000:]}"
    missing = [path for path in block.makes if not (start / path).is_file() or (start / path).stat().st_size == 0]
    assert not missing, f"README.md:{block.line} ({block.id}) left no {missing}"
    assert block.prints in stdout, f"README.md:{block.line} ({block.id}) did not print {block.prints!r}:\n{stdout[-2000:]}"
