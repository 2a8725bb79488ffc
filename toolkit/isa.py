"""PowerPC instruction classes for the ISA audit: which mnemonics belong to which extension.

A target profile names the classes its CPU lacks (``[isa] forbid``) and the mnemonics its
kernels must contain (``[isa] require``); ``toolkit.elfcheck`` classifies every instruction of
the engine's own functions (objdump's mnemonics, extended forms and record/overflow variants
included) and fails the build on a forbidden one.
"""

from __future__ import annotations

import re

# The original AltiVec / VMX instruction set (PowerPC 7400/7450, 970, Cell PPE, Xenon), with the
# extended mnemonics objdump prints (vmr = vor, vnot = vnor).
_ALTIVEC = frozenset("""
lvebx lvehx lvewx lvx lvxl lvsl lvsr stvebx stvehx stvewx stvx stvxl
dss dssall dst dstt dstst dststt mfvscr mtvscr
vaddcuw vaddsbs vaddshs vaddsws vaddubm vaddubs vadduhm vadduhs vadduwm vadduws
vsubcuw vsubsbs vsubshs vsubsws vsububm vsububs vsubuhm vsubuhs vsubuwm vsubuws
vmulesb vmulesh vmuleub vmuleuh vmulosb vmulosh vmuloub vmulouh
vmhaddshs vmhraddshs vmladduhm vmsummbm vmsumshm vmsumshs vmsumubm vmsumuhm vmsumuhs
vsumsws vsum2sws vsum4sbs vsum4shs vsum4ubs
vavgsb vavgsh vavgsw vavgub vavguh vavguw
vmaxsb vmaxsh vmaxsw vmaxub vmaxuh vmaxuw vminsb vminsh vminsw vminub vminuh vminuw
vcmpequb vcmpequh vcmpequw vcmpgtsb vcmpgtsh vcmpgtsw vcmpgtub vcmpgtuh vcmpgtuw
vcmpbfp vcmpeqfp vcmpgefp vcmpgtfp
vand vandc vnor vor vxor vmr vnot
vrlb vrlh vrlw vslb vslh vslw vsl vslo vsldoi vsrb vsrh vsrw vsr vsro vsrab vsrah vsraw
vaddfp vsubfp vmaddfp vnmsubfp vmaxfp vminfp vrefp vrsqrtefp vexptefp vlogefp
vrfin vrfip vrfiz vrfim vcfsx vcfux vctsxs vctuxs
vmrghb vmrghh vmrghw vmrglb vmrglh vmrglw vperm vsel vspltb vsplth vspltw vspltisb vspltish vspltisw
vpkpx vpkshss vpkshus vpkswss vpkswus vpkuhum vpkuhus vpkuwum vpkuwus
vupkhpx vupkhsb vupkhsh vupklpx vupklsb vupklsh
""".split())

# Instructions only a 64-bit implementation has (illegal on the 32-bit G3 and G4, whatever the
# ELF class): doubleword loads/stores/rotates/arithmetic, doubleword compares and traps, and the
# doubleword float conversions.
_PPC64 = frozenset("""
ld ldu ldx ldux std stdu stdx stdux lwa lwax lwaux ldarx stdcx
sld srd srad sradi mulld mulldo mulhd mulhdu divd divdu divdo divduo extsw cntlzd
cmpd cmpdi cmpld cmpldi td tdi fcfid fctid fctidz mtmsrd rfid slbie slbia
""".split())
_PPC64_PREFIX = re.compile(r"^(rld|clrldi|clrrdi|clrlsldi|extldi|extrdi|insrdi|rotld|sldi|srdi|td)")

# VSX (ISA 2.06, POWER7 and later): its own register file and mnemonic families.
_VSX_PREFIX = re.compile(r"^(xs|xv|xx|lxv|stxv|lxs|stxs|lxsi|stxsi|mfvsr|mtvsr|mffpr|mtfpr|mfvrd|mtvrd)")

# fsqrt / fsqrts: the optional "general-purpose" group the 970, Cell and Xenon have and the
# 750 and 74xx do not (they call libm's software square root).
_FSQRT = frozenset({"fsqrt", "fsqrts"})

# ISA 2.01 (POWER4, 970) field forms of the CR moves; the 750 and 74xx predate them.
_ISA201 = frozenset({"mfocrf", "mtocrf"})

# ISA 2.02 (POWER5, Cell PPE, Xenon): absent from the 970 and older.
_ISA202 = frozenset({"popcntb", "fre", "frsqrtes"})

# ISA 2.05 and later scalar instructions (POWER6, POWER7, POWER8, POWER9, POWER10): none of the
# targets' CPUs has them.
_ISA205 = frozenset("""
cmpb popcntw popcntd ldbrx stdbrx lfiwax lfiwzx fcpsgn fcfids fcfidu fcfidus fctidu fctiwu fctiduz
fctiwuz divwe divweu divde divdeu bpermd isel prtyw prtyd ftdiv ftsqrt lbarx lharx stbcx sthcx lqarx
stqcx lq stq maddhd maddhdu maddld darn modsw moduw modsd modud cnttzw cnttzd extswsli setb cmprb
cmpeqb addpcis lnia mcrxrx copy paste brh brw brd setbc setbcr setnbc setnbcr
""".split())
_ISA205_PREFIX = re.compile(r"^(isel|p(ld|st|add|nop|l[bhw]|lx|st)|dcffix|dtstsfi)")

# The classes a target profile may name in ``[isa] forbid``, with a phrase for error messages.
CLASSES: dict[str, str] = {
    "vsx": "VSX (POWER7+)",
    "altivec": "AltiVec/VMX",
    "vector207": "vector instructions beyond AltiVec (ISA 2.07+, POWER8+)",
    "ppc64": "64-bit-only",
    "fsqrt": "hardware square root (fsqrt)",
    "isa201": "ISA 2.01 (POWER4/970) CR field moves",
    "isa202": "ISA 2.02 (POWER5/Cell)",
    "isa205": "ISA 2.05+ (POWER6+)",
    "unknown": "undecodable",
}


def base_mnemonic(mnemonic: str) -> str:
    """The mnemonic without its record form (``.``), branch hints (``+``/``-``)."""
    return mnemonic.rstrip(".+-")


def classify(mnemonic: str) -> str | None:
    """The class of an instruction outside the common 32-bit PowerPC base, or None."""
    name = base_mnemonic(mnemonic)
    if name.startswith("."):
        return "unknown"  # objdump's .long / .word for a word it cannot decode
    if _VSX_PREFIX.match(name):
        return "vsx"
    if name in _ALTIVEC:
        return "altivec"
    if name.startswith("v"):
        return "vector207"
    checks: tuple[tuple[str, bool], ...] = (
        ("ppc64", name in _PPC64 or bool(_PPC64_PREFIX.match(name))),
        ("fsqrt", name in _FSQRT),
        ("isa201", name in _ISA201),
        ("isa202", name in _ISA202),
        ("isa205", name in _ISA205 or bool(_ISA205_PREFIX.match(name))),
    )
    return next((cls for cls, hit in checks if hit), None)
