"""The ISA audit's instruction classes and verdicts, the new profiles, toolchain/engine choice,
bundles, SHA256SUMS and doctor: no processes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from toolkit import container, doctor
from toolkit.bundle import bundle_files
from toolkit.elfcheck import audit_listing, parse_objdump
from toolkit.errors import BuildError, InputError, ToolMissingError, UsageError
from toolkit.isa import classify
from toolkit.release import sha256sums
from toolkit.targets import available_targets, load_target, load_target_file
from toolkit.toolchain import build_key, choose_toolchain
from toolkit.render import render


@pytest.mark.parametrize(("mnemonic", "cls"), [
    ("vmaddfp", "altivec"), ("lvx", "altivec"), ("vcmpeqfp.", "altivec"), ("vmr", "altivec"),
    ("vaddudm", "vector207"), ("vgbbd", "vector207"), ("xxlor", "vsx"), ("lxvd2x", "vsx"), ("mfvsrd", "vsx"),
    ("ld", "ppc64"), ("stdu", "ppc64"), ("rldicl", "ppc64"), ("sldi", "ppc64"), ("cmpdi", "ppc64"),
    ("fcfid", "ppc64"), ("mulld.", "ppc64"), ("fsqrt", "fsqrt"), ("mfocrf", "isa201"), ("popcntb", "isa202"),
    ("popcntd", "isa205"), ("isel", "isa205"), ("lfiwax", "isa205"), ("cmpb", "isa205"), (".long", "unknown"),
    ("lwz", None), ("stwu", None), ("fmadds", None), ("bne+", None), ("mr", None), ("cmpwi", None),
    ("rlwinm", None), ("fres", None), ("blr", None),
])
def test_classify(mnemonic: str, cls: str | None) -> None:
    assert classify(mnemonic) == cls


OBJDUMP = """
0000000010000400 <.ppcllm_matmul_altivec>:
    10000400:	10 00 01 0e 	vmaddfp v0,v0,v0,v0
    10000404:	4e 80 04 20 	bctr
    10000408:	00 00 01 9c 	.long 0x19c
    1000040c:	4e 80 00 20 	blr
    10000410:	00 00 00 00 	.long 0x0
    10000414:	80 00 00 00 	lwz     r0,0(0)

0000000010000420 <memset_power7>:
    10000420:	f0 00 04 96 	xxlor   vs0,vs0,vs0
    10000424:	ff ff ff ff 	.long 0xffffffff
"""


def test_parse_objdump_skips_data_words_and_traceback_tables() -> None:
    listing = parse_objdump(OBJDUMP)
    assert listing["ppcllm_matmul_altivec"] == ["vmaddfp", "bctr", "blr"]  # ".name" entry point -> name
    assert listing["memset_power7"] == ["xxlor", ".long"]


def _policy(name: str, **changes: object) -> object:
    profile = load_target(name)
    assert profile.isa is not None
    return dataclasses.replace(profile, isa=dataclasses.replace(profile.isa, **changes))


def test_audit_looks_only_at_the_engines_own_functions() -> None:
    listing = parse_objdump(OBJDUMP)
    counts = audit_listing(listing, {"ppcllm_matmul_altivec"}, _policy("xenon", require=("vmaddfp",)))  # type: ignore[arg-type]
    assert counts["vmaddfp"] == 1 and counts["altivec"] == 1 and "vsx" not in counts
    with pytest.raises(BuildError, match=r"1 VSX \(POWER7\+\) \(e.g. xxlor in memset_power7\)"):
        audit_listing(listing, {"ppcllm_matmul_altivec", "memset_power7"}, load_target("xenon"))


def test_audit_fails_on_forbidden_class_and_missing_kernel() -> None:
    listing = {"main": ["lwz", "vmaddfp", "blr"], "f": ["ld", "std"]}
    with pytest.raises(BuildError, match="AltiVec/VMX.*vmaddfp in main"):
        audit_listing(listing, {"main"}, load_target("g3"))
    with pytest.raises(BuildError, match="64-bit-only"):
        audit_listing(listing, {"f"}, load_target("g4"))
    with pytest.raises(BuildError, match="no vaddfp in the engine.s code for g4"):
        audit_listing(listing, {"main"}, load_target("g4"))
    with pytest.raises(BuildError, match="undecodable"):
        audit_listing({"main": [".long"]}, {"main"}, load_target("host"))


def test_every_profile_loads_and_powerpc_ones_have_an_audit() -> None:
    names = available_targets()
    assert {"g3", "g4", "g4dual", "g5", "ps3", "xenon", "host"} <= set(names)
    for name in names:
        profile = load_target(name)
        if profile.emulator is not None and not profile.test_only:
            assert profile.isa is not None and profile.isa.stand_in
            assert ("altivec" in profile.isa.forbid) == (not profile.has_simd)
            assert ("ppc64" in profile.isa.forbid) == (profile.word_bits == 32)
            assert "vsx" in profile.isa.forbid
            assert bool(profile.isa.require) == profile.has_simd
    assert load_target("ps3").ram_mib == 256 and load_target("g5").hardware_threads == 2
    assert load_target("g4dual").hardware_threads == 2 and load_target("g3").emulator.args == ("-cpu", "750")  # type: ignore[union-attr]


def test_unknown_isa_class_is_an_input_error(tmp_path: Path) -> None:
    text = (load_target("g4").source.read_text()).replace('"isa205"]', '"isa205", "mmx"]')
    path = tmp_path / "g4.toml"
    path.write_text(text)
    with pytest.raises(InputError, match="unknown instruction class 'mmx'"):
        load_target_file(path)


def test_toolchain_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PPC_LLM_TOOLCHAIN", raising=False)
    assert choose_toolchain(None) == "host"
    monkeypatch.setenv("PPC_LLM_TOOLCHAIN", "docker")
    assert choose_toolchain(None) == "docker" and choose_toolchain("host") == "host"
    with pytest.raises(UsageError, match="toolchain 'qemu'"):
        choose_toolchain("qemu")


def test_build_key_unchanged_for_host_and_distinct_for_docker() -> None:
    g4 = load_target("g4")
    sources = render(g4)
    host = build_key(g4, sources, "12.2.0")
    assert host == build_key(g4, sources, "12.2.0", "host")
    assert host != build_key(g4, sources, "12.2.0", "docker")


def test_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PPC_LLM_ENGINE", raising=False)
    answering = {"podman"}
    monkeypatch.setattr(container, "engine_answers", lambda engine, timeout=20: engine in answering)
    assert container.choose_engine(None) == "podman"
    with pytest.raises(ToolMissingError, match=r"no container engine answers \(tried docker\)"):
        container.choose_engine("docker")
    with pytest.raises(UsageError):
        container.choose_engine("lxc")
    monkeypatch.setenv("PPC_LLM_ENGINE", "docker")
    answering.add("docker")
    assert container.choose_engine(None) == "docker"


def test_image_key_follows_the_dockerfile_and_packages() -> None:
    a = container.image_key(["gcc-powerpc-linux-gnu"])
    assert a == container.image_key(["gcc-powerpc-linux-gnu"])
    assert a != container.image_key(["gcc-powerpc64-linux-gnu"])


def test_bundle_has_makefile_readme_and_sources() -> None:
    files = bundle_files(load_target("g4"))
    assert {"Makefile", "README", "ppcllm.c", "kernels_altivec.c", "kerneltest.c"} <= set(files)
    makefile = files["Makefile"]
    assert "CPUFLAGS = -mcpu=7450 -mno-altivec" in makefile and "-faltivec" in makefile
    assert "-mno-fused-madd" in makefile and "-ffp-contract=off" in makefile
    assert "SIMD = 1" in makefile and "\t$(CC)" in makefile  # recipes start with a tab
    assert "kernels_altivec" not in "".join(bundle_files(load_target("g3")))


def test_sha256sums_lists_every_file_but_itself(tmp_path: Path) -> None:
    (tmp_path / "g4").mkdir()
    (tmp_path / "g4" / "ppcllm").write_bytes(b"abc")
    (tmp_path / "SHA256SUMS").write_text("old")
    text = sha256sums(tmp_path)
    assert text == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  g4/ppcllm\n"


def test_doctor_names_missing_tools_and_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor.shutil, "which", lambda tool: None if tool.startswith("qemu") else f"/usr/bin/{tool}")
    monkeypatch.setattr(doctor, "engine_answers", lambda engine, timeout=20: False)
    lines, incomplete = doctor.report([load_target("g4"), load_target("host")])
    text = "\n".join(lines)
    assert incomplete == 1
    assert "g4       INCOMPLETE" in text and "MISSING  qemu-ppc" in text and "apt-get install qemu-user" in text
    assert "host     ready" in text
    assert "not answering" in text
