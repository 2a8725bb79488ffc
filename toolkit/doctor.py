"""``ppc-llm doctor``: for each target, which tools are present or missing (with the apt package
that installs each), and whether a container engine answers for the docker toolchain."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from .container import ENGINES, engine_answers
from .targets import Target


@dataclass(frozen=True)
class ToolCheck:
    tool: str
    package: str
    path: str | None  # None: missing

    def line(self) -> str:
        if self.path:
            return f"  ok       {self.tool:28} {self.path}"
        return f"  MISSING  {self.tool:28} sudo apt-get install {self.package}"


def target_tools(target: Target) -> list[ToolCheck]:
    """The tools building and running ``target`` needs, each with the package that installs it."""
    tc = target.toolchain
    wanted = [(tc.cc, tc.packages[0]), (tc.objdump, tc.packages[0])]
    if target.emulator is not None:
        wanted.append((target.emulator.command, target.emulator.package))
    return [ToolCheck(tool, package, shutil.which(tool)) for tool, package in wanted]


def engine_line(engine: str) -> str:
    if shutil.which(engine) is None:
        package = "docker.io" if engine == "docker" else "podman"
        return f"  MISSING  {engine:28} sudo apt-get install {package}"
    if not engine_answers(engine):
        return f"  down     {engine:28} installed, not answering (bash scripts/docker-engine.sh start)"
    result = subprocess.run([engine, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            timeout=20, check=False)
    version = result.stdout.decode(errors="replace").strip() or "?"
    return f"  ok       {engine:28} answers (server {version})"


def report(targets: list[Target]) -> tuple[list[str], int]:
    """The report's lines and the number of targets missing a tool."""
    lines: list[str] = []
    incomplete = 0
    for target in targets:
        checks = target_tools(target)
        ready = all(c.path for c in checks)
        incomplete += not ready
        lines.append(f"{target.name:8} {'ready' if ready else 'INCOMPLETE'}: {target.description}")
        lines += [c.line() for c in checks]
    lines.append("container engines (--toolchain docker):")
    lines += [engine_line(engine) for engine in ENGINES]
    return lines, incomplete
