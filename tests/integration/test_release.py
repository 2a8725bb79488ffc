"""`ppc-llm release`: dist/ per target, SHA256SUMS that sha256sum -c accepts, byte-identical
twice over; and the release workflow, checked by actionlint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, GoldenCase
from toolkit.emulate import UserMode
from toolkit.outputs import OWNER_FILE

from .conftest import cli, target

RELEASE_TARGETS = ["g3", "g4", "xenon"]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_release_is_reproducible_and_checksummed(tmp_path: Path, cache: Path, golden: list[GoldenCase]) -> None:
    trees = []
    for attempt in ("one", "two"):
        work = tmp_path / attempt
        work.mkdir()
        result = subprocess.run([sys.executable, "-m", "toolkit", "release", "--targets", ",".join(RELEASE_TARGETS)],
                                cwd=work, capture_output=True, env=_env(cache), timeout=1800, check=False)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b""
        trees.append(_tree(work / "dist"))
    assert trees[0] == trees[1]  # byte-identical
    dist = tmp_path / "one" / "dist"
    assert sorted(p.name for p in dist.iterdir()) == [OWNER_FILE, "SHA256SUMS", *RELEASE_TARGETS]
    assert json.loads((dist / OWNER_FILE).read_text())["files"] == sorted(set(trees[0]) - {OWNER_FILE})
    sums = (dist / "SHA256SUMS").read_text()
    assert "SHA256SUMS" not in sums and "  g4/ppcllm\n" in sums
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dist, capture_output=True, check=False)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert check.stdout.decode().count(": OK") == len(trees[0]) - 2  # all but SHA256SUMS and the owner file
    for name in RELEASE_TARGETS:
        folder = dist / name
        assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "manifest.json", "ppcllm", "stories260K.be.bin"]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["target"] == name and manifest["compiler"] == target(name).toolchain.cc
        assert manifest["compiler_version"] and len(manifest["source_sha256"]) == 64 and manifest["cflags"]
        assert manifest["files"]["ppcllm"]["bytes"] == (folder / "ppcllm").stat().st_size
        assert "./ppcllm stories260K.be.bin" in (folder / "README.txt").read_text()
    # the released binary and model, as copied, tell the golden story
    case = golden[0]
    result = UserMode(target("g4")).run(dist / "g4" / "ppcllm", case.args(dist / "g4" / "stories260K.be.bin"), 600)
    assert result.returncode == 0 and result.stdout == case.expected


def test_release_refuses_an_unknown_target(tmp_path: Path) -> None:
    result = cli("release", "--targets", "g4,amiga", "-o", str(tmp_path / "dist"))
    assert result.returncode == 2
    assert b"unknown target 'amiga'" in result.stderr
    assert not (tmp_path / "dist").exists()


def test_release_workflow_passes_actionlint() -> None:
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    workflow = REPO / ".github" / "workflows" / "release.yml"
    result = subprocess.run([actionlint, str(workflow)], capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    text = workflow.read_text()
    assert "--toolchain docker" in text and "ppc-llm release" in text and "matrix" in text


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a workflow with an undefined matrix key does."""
    broken = tmp_path / "broken.yml"
    broken.write_text((REPO / ".github" / "workflows" / "release.yml").read_text()
                      .replace("${{ matrix.target }} (host toolchain)", "${{ matrix.cpu }} (host toolchain)"))
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    result = subprocess.run([actionlint, str(broken)], capture_output=True, check=False)
    assert result.returncode != 0 and b"cpu" in result.stdout


def _env(cache: Path) -> dict[str, str]:
    import os

    return dict(os.environ, PPC_LLM_CACHE=str(cache), PYTHONPATH=str(REPO))
