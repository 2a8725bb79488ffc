"""Checks on the produced ELF files: the header against the target's policy (pyelftools) and the
ISA audit of the engine's own instructions (the target's objdump; classes in toolkit/isa.py)."""

from __future__ import annotations

import re
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .errors import BuildError
from .isa import CLASSES as ISA_CLASSES, base_mnemonic, classify
from .runner import HOST_RUNNER, Runner
from .targets import Target

_FUNC = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_INSN = re.compile(r"^\s*[0-9a-f]+:\s+((?:[0-9a-f]{2} ){4})\s*(\.?[a-z][a-z0-9.+-]*)")
_ZERO_WORD = "00 00 00 00 "


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


def disassemble(binary: Path, target: Target, runner: Runner | None = None) -> dict[str, list[str]]:
    """Function name -> mnemonics, from the target's objdump (run by ``runner``: the host's by
    default, a container's for the docker toolchain)."""
    runner = runner or HOST_RUNNER
    objdump = runner.which(target.toolchain.objdump, target.toolchain.packages[0])
    result = runner.run([objdump, "-d", binary], cwd=binary.parent, quiet=True)
    if result.returncode != 0:
        raise BuildError(f"{target.toolchain.objdump} failed on {binary.name}: {result.stderr.decode(errors='replace').strip()}")
    return parse_objdump(result.stdout.decode(errors="replace"))


def parse_objdump(text: str) -> dict[str, list[str]]:
    """Function name -> mnemonics from ``objdump -d`` output; a word objdump cannot decode is
    listed as its directive (``.long``). Primary opcode 0 is no instruction on PowerPC, so such
    words are data in the text: a zero word ends a function's code (on 64-bit ELFv1 gcc puts a
    traceback table after the final blr) and the others are skipped (switch tables after bctr)."""
    functions: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        head = _FUNC.match(line)
        if head:
            # 64-bit ELFv1 labels code entry points ".name" (the plain name is the descriptor)
            name = head.group(1)
            current = functions.setdefault(name[1:] if name.startswith(".") else name, [])
            continue
        insn = _INSN.match(line)
        if insn and current is not None:
            if insn.group(1) == _ZERO_WORD:
                current = None
            elif int(insn.group(1)[:2], 16) >> 2 != 0:
                current.append(insn.group(2))
    return functions


def audit_listing(listing: dict[str, list[str]], own: set[str], target: Target) -> dict[str, int]:
    """The ISA audit over the engine's own functions: raise BuildError on an instruction of a
    class the target forbids (or one objdump cannot decode), or when a mnemonic the target's
    kernels require is absent. Returns instruction counts for the manifest."""
    policy = target.isa
    forbid = set(policy.forbid if policy else ()) | {"unknown"}
    require = policy.require if policy else ()
    mnemonics = [(name, m) for name in sorted(own) for m in listing.get(name, [])]
    counts: dict[str, int] = {"functions": len(own), "instructions": len(mnemonics)}
    found: dict[str, tuple[str, str]] = {}
    for function, mnemonic in mnemonics:
        cls = classify(mnemonic)
        if cls is not None:
            counts[cls] = counts.get(cls, 0) + 1
            found.setdefault(cls, (mnemonic, function))
    bad = [cls for cls in ISA_CLASSES if cls in forbid and cls in found]
    if bad:
        what = "; ".join(f"{counts[cls]} {ISA_CLASSES[cls]} (e.g. {found[cls][0]} in {found[cls][1]})" for cls in bad)
        raise BuildError(f"ISA audit: the engine's code for {target.name} has instructions its CPU lacks: {what}",
                         f"check the cflags in {target.source.name}")
    names = [base_mnemonic(m) for _, m in mnemonics]
    for wanted in require:
        counts[wanted] = names.count(wanted)
        if counts[wanted] == 0:
            raise BuildError(f"ISA audit: no {wanted} in the engine's code for {target.name}: "
                             "the SIMD kernel was not built", f"check simd_cflags in {target.source.name}")
    counts.setdefault("vmaddfp", names.count("vmaddfp"))
    return counts


def check_engine_code(binary: Path, objects: list[Path], target: Target, runner: Runner | None = None) -> dict[str, int]:
    """The ISA audit of ``binary``: only the functions compiled from the rendered sources (named
    by ``objects``), not static glibc, whose run-time-selected variants are not ours."""
    return audit_listing(disassemble(binary, target, runner), defined_functions(objects), target)
