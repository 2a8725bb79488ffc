"""Rendering is a function of the target alone: two fresh processes with a different hash seed,
locale, time zone and working directory render byte-identical sources and bundles for every
profile (build keys, cache entries and release hashes rest on it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from toolkit.targets import available_targets

REPO = Path(__file__).resolve().parents[2]

# Each process prints {target: {file: sha256}} for the rendered engine and the source bundle.
SNIPPET = """
import hashlib, json
from toolkit.bundle import bundle_files
from toolkit.render import render
from toolkit.targets import available_targets, load_target
out = {}
for name in available_targets():
    target = load_target(name)
    files = {"render/" + f.name: f"{int(f.simd)}:" + f.text for f in render(target).files}
    files.update({"bundle/" + n: t for n, t in bundle_files(target).items()})
    out[name] = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in sorted(files.items())}
print(json.dumps(out, sort_keys=True))
"""


def _render_in_process(cwd: Path, hashseed: str, locale: str, tz: str) -> dict[str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHONHASHSEED"))}
    env.update(PYTHONHASHSEED=hashseed, LC_ALL=locale, LANG=locale, TZ=tz,
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", SNIPPET], cwd=cwd, env=env, capture_output=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    result: dict[str, dict[str, str]] = json.loads(proc.stdout)
    return result


def test_two_processes_render_the_same_bytes_for_every_profile(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    first = _render_in_process(tmp_path / "a", "0", "C", "UTC")
    second = _render_in_process(tmp_path / "b" / "deeper", "4242", "C.UTF-8", "America/Los_Angeles")
    assert sorted(first) == available_targets()
    for name, files in first.items():
        assert any(n.startswith("render/") and n.endswith(".c") for n in files), name
        assert "bundle/Makefile" in files, name
        assert files == second[name], f"{name}: rendering depends on the process"
