"""``ppc-llm doctor``: for each target, which tools are present or missing (with the apt package
that installs each), what its ``--system`` runs need (qemu-system, the kernel source, the kernel's
cross-compiler, and once for all the host tools of a kernel build), and whether a container
engine answers for the docker toolchain."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from .container import ENGINES, engine_answers
from .system.kernel import BUILD_TOOLS, Need
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


def system_tools(target: Target) -> list[ToolCheck]:
    """What ``--system`` needs for ``target`` beyond the host's kernel-build tools (none without [system])."""
    if target.system is None:
        return []
    from .system import system_needs

    build_tools = {command for command, _ in BUILD_TOOLS}
    return [_check(need) for need in system_needs(target) if need.what not in build_tools]


def build_tool_checks() -> list[ToolCheck]:
    """The host tools every guest kernel build needs (make, flex, bison, ...)."""
    return [ToolCheck(command, package, shutil.which(command)) for command, package in BUILD_TOOLS]


def _check(need: Need) -> ToolCheck:
    return ToolCheck(need.name, need.package, need.path)


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
    build_tools = build_tool_checks()
    for target in targets:
        checks = target_tools(target)
        ready = all(c.path for c in checks)
        incomplete += not ready
        lines.append(f"{target.name:8} {'ready' if ready else 'INCOMPLETE'}: {target.description}")
        lines += [c.line() for c in checks]
        system = system_tools(target)
        if system:
            system_ready = all(c.path for c in [*system, *build_tools])
            lines.append(f"  --system (full-system QEMU): {'ready' if system_ready else 'INCOMPLETE'}")
            lines += [c.line() for c in system]
    if any(target.system is not None for target in targets):
        lines.append("guest kernel builds (--system, every target):")
        lines += [c.line() for c in build_tools]
    lines.append("container engines (--toolchain docker):")
    lines += [engine_line(engine) for engine in ENGINES]
    return lines, incomplete
