"""Checks on the produced ELF files: header against the target's policy (pyelftools) and the
engine's own instructions (the target's objdump)."""

from __future__ import annotations

import re
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .cmd import require_tool, run
from .errors import BuildError
from .targets import Target

# VSX (POWER7+) mnemonics: none may appear in a target's engine code unless the target has VSX.
_VSX = re.compile(r"^(xs|xv|xx|lxv|stxv|lxs|stxs|mfvsr|mtvsr)")
_FUNC = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_INSN = re.compile(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{2} ){4}\s*([a-z][a-z0-9.+-]*)")


def check_header(path: Path, target: Target) -> dict[str, str]:
    """Raise BuildError unless class, byte order, machine and linking match the target."""
    try:
        with path.open("rb") as handle:
            elf = ELFFile(handle)
            facts = {
                "class": str(elf.elfclass),
                "endian": "little" if elf.little_endian else "big",
                "machine": str(elf["e_machine"]),
                "interpreter": _interpreter(elf),
            }
    except (OSError, ELFError) as exc:
        raise BuildError(f"{path} is not a readable ELF file: {exc}") from None
    policy = target.elf
    problems = []
    if facts["class"] != str(policy.bits):
        problems.append(f"ELF class {facts['class']}, want {policy.bits}")
    if facts["endian"] != policy.endian:
        problems.append(f"{facts['endian']}-endian, want {policy.endian}")
    if facts["machine"] != policy.machine:
        problems.append(f"machine {facts['machine']}, want {policy.machine}")
    if policy.static and facts["interpreter"]:
        problems.append(f"dynamically linked ({facts['interpreter']}), want static")
    if problems:
        raise BuildError(f"{path.name} does not fit target {target.name}: {'; '.join(problems)}")
    return facts


def _interpreter(elf: ELFFile) -> str:
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            return str(segment.get_interp_name())  # type: ignore[attr-defined]
    return ""


def defined_functions(objects: list[Path]) -> set[str]:
    """Names of the functions defined in the project's own object files."""
    names: set[str] = set()
    for obj in objects:
        with obj.open("rb") as handle:
            symtab = ELFFile(handle).get_section_by_name(".symtab")
            if not isinstance(symtab, SymbolTableSection):
                continue
            for sym in symtab.iter_symbols():
                if sym["st_info"]["type"] == "STT_FUNC" and sym["st_shndx"] != "SHN_UNDEF":
                    names.add(sym.name)
    return names


def disassemble(binary: Path, target: Target) -> dict[str, list[str]]:
    """Function name -> mnemonics, from the target's objdump."""
    objdump = require_tool(target.toolchain.objdump, target.toolchain.packages[0])
    result = run([objdump, "-d", binary], quiet=True)
    if result.returncode != 0:
        raise BuildError(f"{target.toolchain.objdump} failed on {binary.name}: {result.stderr.decode(errors='replace').strip()}")
    functions: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in result.stdout.decode(errors="replace").splitlines():
        head = _FUNC.match(line)
        if head:
            # 64-bit ELFv1 labels code entry points ".name" (the plain name is the descriptor)
            name = head.group(1)
            current = functions.setdefault(name[1:] if name.startswith(".") else name, [])
            continue
        insn = _INSN.match(line)
        if insn and current is not None:
            current.append(insn.group(1))
    return functions


def check_engine_code(binary: Path, objects: list[Path], target: Target) -> dict[str, int]:
    """For SIMD targets: the kernels' vmaddfp must be present and no VSX instruction anywhere in
    the engine's own functions (static glibc's run-time-selected variants are not ours)."""
    own = defined_functions(objects)
    listing = disassemble(binary, target)
    mnemonics = [m for name in own for m in listing.get(name, [])]
    vsx = sorted({m for m in mnemonics if _VSX.match(m)})
    if vsx:
        raise BuildError(f"engine code for {target.name} contains VSX instructions: {', '.join(vsx)}",
                         "the target has no VSX: check its cflags in the target profile")
    counts = {"functions": len(own), "instructions": len(mnemonics), "vmaddfp": mnemonics.count("vmaddfp")}
    if target.has_simd and counts["vmaddfp"] == 0:
        raise BuildError(f"no vmaddfp in the engine code for {target.name}: the SIMD kernel was not built")
    return counts
