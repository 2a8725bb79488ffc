"""Target profiles: ``targets/*.toml`` loaded into frozen dataclasses and validated.

Everything a target means lives in its TOML file; code asks the Target questions
(``target.simd``, ``target.emulator``) and never tests a target's name.
"""

from __future__ import annotations

import platform
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, UsageError
from .isa import CLASSES as ISA_CLASSES
from .resources import targets_dir

SIMD_KINDS = ("none", "altivec")
_NATIVE_MACHINES = {"x86_64": "EM_X86_64", "amd64": "EM_X86_64", "aarch64": "EM_AARCH64",
                    "arm64": "EM_AARCH64", "ppc64le": "EM_PPC64", "ppc64": "EM_PPC64",
                    "s390x": "EM_S390", "i686": "EM_386", "riscv64": "EM_RISCV"}


@dataclass(frozen=True)
class Toolchain:
    cc: str
    objdump: str
    packages: tuple[str, ...]
    cflags: tuple[str, ...]
    simd_cflags: tuple[str, ...]
    ldflags: tuple[str, ...]


@dataclass(frozen=True)
class ElfPolicy:
    machine: str
    bits: int
    endian: str
    static: bool


@dataclass(frozen=True)
class Emulator:
    command: str
    args: tuple[str, ...]
    package: str


@dataclass(frozen=True)
class IsaPolicy:
    """What the ISA audit checks in the engine's own code (see toolkit/isa.py for the classes)."""

    forbid: tuple[str, ...]   # instruction classes the CPU lacks
    require: tuple[str, ...]  # mnemonics the kernels must contain (the SIMD kernel was built)
    stand_in: str             # what runs the code under QEMU where there is no exact CPU model


@dataclass(frozen=True)
class BenchModel:
    """How `bench` projects tok/s on the real machine: t = a * instructions + b * memory bytes,
    with a memory system simulated as one cache (the last level) in front of the bus."""

    instruction_seconds: float     # a
    byte_seconds: float            # b
    bus_bytes_per_second: float    # the bus peak, for the ceiling
    cache_bytes: int
    cache_ways: int
    cache_line: int
    basis: str                     # how a and b were obtained (shown with every projection)
    published_scalar_tok_s: float  # measured on the real machine, for `bench --fit` (0: none)
    published_simd_tok_s: float


@dataclass(frozen=True)
class System:
    """Full-system QEMU: the machine, its serial ports, and the guest kernel built for it."""

    command: str                 # qemu-system-ppc / qemu-system-ppc64
    package: str                 # the apt package that installs it
    args: tuple[str, ...]        # machine and CPU (-m comes from ram_mib)
    console: str                 # kernel console: the first serial port (kernel messages, stderr)
    channel: str                 # the program's stdout: the second serial port, raw
    kernel_config: Path          # config fragment for allnoconfig (resolved beside the profile)
    kernel_arch: str             # ARCH= for the kernel build
    kernel_cross: str            # CROSS_COMPILE= for the kernel build
    kernel_image: str            # the file under the build directory that QEMU boots (-kernel)
    kernel_source: str           # the kernel source tarball
    kernel_package: str          # the apt package that installs it
    cmdline: tuple[str, ...]     # extra kernel command-line words


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    word_bits: int
    endian: str
    simd: str
    ram_mib: int
    hardware_threads: int
    toolchain: Toolchain
    elf: ElfPolicy
    emulator: Emulator | None
    source: Path
    bench: BenchModel | None = None
    simd_runtime: bool = False  # SIMD kernels chosen at run time from the CPU's features
    isa: IsaPolicy | None = None
    system: System | None = None
    test_only: bool = False  # a portability check (other big-endian ISAs), not a machine to ship for

    @property
    def has_simd(self) -> bool:
        return self.simd != "none"


# key -> (type, required) for each table; nested tables are validated by their own schema
_SCHEMA: dict[str, dict[str, tuple[type[Any], bool]]] = {
    "": {"name": (str, True), "description": (str, True), "word_bits": (int, True), "endian": (str, True),
         "simd_runtime": (bool, False), "test_only": (bool, False),
         "simd": (str, True), "ram_mib": (int, True), "hardware_threads": (int, True),
         "toolchain": (dict, True), "elf": (dict, True), "emulator": (dict, False),
         "isa": (dict, False), "bench": (dict, False), "system": (dict, False)},
    "toolchain": {"cc": (str, True), "objdump": (str, True), "packages": (list, True), "cflags": (list, True),
                  "simd_cflags": (list, True), "ldflags": (list, True)},
    "elf": {"machine": (str, True), "bits": (int, True), "endian": (str, True), "static": (bool, True)},
    "emulator": {"command": (str, True), "args": (list, True), "package": (str, True)},
    "bench": {"instruction_seconds": (float, True), "byte_seconds": (float, True),
              "bus_bytes_per_second": (float, True), "cache_bytes": (int, True), "cache_ways": (int, True),
              "cache_line": (int, True), "basis": (str, True), "published_scalar_tok_s": (float, False),
              "published_simd_tok_s": (float, False)},
    "isa": {"forbid": (list, True), "require": (list, True), "stand_in": (str, False)},
    "system": {"command": (str, True), "package": (str, True), "args": (list, True), "console": (str, True),
               "channel": (str, True), "kernel_config": (str, True), "kernel_arch": (str, True),
               "kernel_cross": (str, True), "kernel_image": (str, True), "kernel_source": (str, True),
               "kernel_package": (str, True), "cmdline": (list, True)},
}


def _check_table(table: dict[str, Any], section: str, source: Path) -> None:
    schema = _SCHEMA[section]
    where = f"{source}: " + (f"[{section}] " if section else "")
    for key, value in table.items():
        if key not in schema:
            raise InputError(f"{where}unknown key '{key}'", f"allowed keys: {', '.join(schema)}")
        expected, _ = schema[key]
        if type(value) is not expected:
            raise InputError(f"{where}key '{key}' must be {expected.__name__}, not {type(value).__name__}")
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise InputError(f"{where}key '{key}' must be a list of strings")
        if isinstance(value, dict):
            _check_table(value, key, source)
    for key, (_, required) in schema.items():
        if required and key not in table:
            raise InputError(f"{where}missing key '{key}'")


def _native_endian(value: str) -> str:
    return sys.byteorder if value == "native" else value


def _isa(table: dict[str, Any] | None, source: Path) -> IsaPolicy | None:
    if table is None:
        return None
    unknown = [name for name in table["forbid"] if name not in ISA_CLASSES]
    if unknown:
        raise InputError(f"{source}: [isa] forbid: unknown instruction class '{unknown[0]}'",
                         f"known classes: {', '.join(ISA_CLASSES)}")
    return IsaPolicy(tuple(table["forbid"]), tuple(table["require"]), table.get("stand_in", ""))


def _build(data: dict[str, Any], source: Path) -> Target:
    tc, elf, emu = data["toolchain"], data["elf"], data.get("emulator")
    if data["simd"] not in SIMD_KINDS:
        raise InputError(f"{source}: key 'simd' must be one of {', '.join(SIMD_KINDS)}, not '{data['simd']}'")
    for key, value in (("endian", data["endian"]), ("elf.endian", elf["endian"])):
        if value not in ("big", "little", "native"):
            raise InputError(f"{source}: key '{key}' must be big, little or native, not '{value}'")
    if data["name"] != source.stem:
        raise InputError(f"{source}: name '{data['name']}' differs from the file name", "rename one of them")
    bits = elf["bits"] or (64 if sys.maxsize > 2**32 else 32)
    machine = elf["machine"]
    if machine == "native":
        machine = _NATIVE_MACHINES.get(platform.machine().lower(), "unknown")
    return Target(
        name=data["name"], description=data["description"], word_bits=data["word_bits"] or bits,
        endian=_native_endian(data["endian"]), simd=data["simd"], ram_mib=data["ram_mib"],
        hardware_threads=data["hardware_threads"],
        toolchain=Toolchain(tc["cc"], tc["objdump"], tuple(tc["packages"]), tuple(tc["cflags"]),
                            tuple(tc["simd_cflags"]), tuple(tc["ldflags"])),
        elf=ElfPolicy(machine, bits, _native_endian(elf["endian"]), elf["static"]),
        emulator=Emulator(emu["command"], tuple(emu["args"]), emu["package"]) if emu else None,
        source=source,
        bench=_bench(data.get("bench")),
        simd_runtime=data.get("simd_runtime", False),
        isa=_isa(data.get("isa"), source),
        system=_system(data.get("system"), source),
        test_only=data.get("test_only", False),
    )


def _bench(table: dict[str, Any] | None) -> BenchModel | None:
    if table is None:
        return None
    return BenchModel(table["instruction_seconds"], table["byte_seconds"], table["bus_bytes_per_second"],
                      table["cache_bytes"], table["cache_ways"], table["cache_line"], table["basis"],
                      table.get("published_scalar_tok_s", 0.0), table.get("published_simd_tok_s", 0.0))


def _system(table: dict[str, Any] | None, source: Path) -> System | None:
    if table is None:
        return None
    fragment = source.parent / table["kernel_config"]
    if not fragment.is_file():
        raise InputError(f"{source}: [system] kernel_config '{table['kernel_config']}' does not exist",
                         f"expected {fragment}")
    return System(command=table["command"], package=table["package"], args=tuple(table["args"]),
                  console=table["console"], channel=table["channel"], kernel_config=fragment,
                  kernel_arch=table["kernel_arch"], kernel_cross=table["kernel_cross"],
                  kernel_image=table["kernel_image"], kernel_source=table["kernel_source"],
                  kernel_package=table["kernel_package"], cmdline=tuple(table["cmdline"]))


def load_target_file(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read target profile {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    _check_table(data, "", path)
    return _build(data, path)


def available_targets(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or targets_dir()).glob("*.toml"))


def load_target(name: str, directory: Path | None = None) -> Target:
    directory = directory or targets_dir()
    path = directory / f"{name}.toml"
    if not path.is_file():
        raise UsageError(f"unknown target '{name}'", f"available targets: {', '.join(available_targets(directory))}")
    return load_target_file(path)
