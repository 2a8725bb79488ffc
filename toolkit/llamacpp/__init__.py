"""llama.cpp as the reference: its source, vendored in the PyPI sdist of llama-cpp-python (which
has no git metadata, so the sdist's version and SHA-256 name it), built on the host with CMake
(CPU only, static, ``GGML_NATIVE=OFF``) together with ``llamaref.c``, our small program against
``libllama``: tokenize, greedy generation with each step's top-1/top-2 logit margin, and
llama.cpp's own quantizer. Both the sdist and the build are cache entries (toolkit/cache.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..cache import obtain
from ..errors import BuildError, InputError, ToolMissingError
from ..fsutil import sha256_bytes, sha256_file

__all__ = ["SDIST", "SDIST_SHA256", "LlamaRef", "Step", "host_llamaref"]

SDIST_NAME, SDIST_VERSION = "llama-cpp-python", "0.3.36"
SDIST = f"{SDIST_NAME}=={SDIST_VERSION}"
SDIST_FILE = f"llama_cpp_python-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
VENDOR = f"llama_cpp_python-{SDIST_VERSION}/vendor/llama.cpp"
CMAKE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=OFF",
               "-DLLAMA_BUILD_COMMON=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_TOOLS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_OPENSSL=OFF")
STATIC_LIBS = ("src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a", "ggml/src/libggml-base.a")
PROGRAM = "llamaref"


def _source() -> Path:
    return Path(__file__).resolve().parent / "llamaref.c"


def _need(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise ToolMissingError(f"{tool} is not installed (needed to build llama.cpp, the reference)",
                               f"apt-get install {package}")
    return found


def sdist(cache: Path) -> Path:
    """The sdist's tarball, downloaded once with pip and checked against its SHA-256."""
    def fill(folder: Path) -> None:
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                                   SDIST, "-d", tmp], capture_output=True, text=True, check=False)
            got = Path(tmp) / SDIST_FILE
            if proc.returncode != 0 or not got.is_file():
                raise InputError(f"cannot download {SDIST} (llama.cpp's source): {proc.stderr.strip()[-300:]}",
                                 "check that PyPI can be reached")
            digest = sha256_file(got)
            if digest != SDIST_SHA256:
                raise InputError(f"{SDIST_FILE} has SHA-256 {digest}, not {SDIST_SHA256}",
                                 "the sdist on the index changed: check it and update SDIST_SHA256")
            got.replace(folder / SDIST_FILE)

    entry = obtain(cache, "llamacpp", f"sdist-{SDIST_SHA256[:16]}", fill, {"sdist": SDIST, "sha256": SDIST_SHA256})
    return entry / SDIST_FILE


def _extract(tarball: Path, into: Path) -> Path:
    """Only vendor/llama.cpp out of the sdist."""
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name == VENDOR or m.name.startswith(VENDOR + "/")]
        archive.extractall(into, members=members, filter="data")
    return into / VENDOR


def _run(argv: list[str], what: str, log: Path) -> None:
    """Run one build step, its output into log; progress lines (ninja's [n/m]) to stderr."""
    with log.open("ab") as sink, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.write(line)
            if line.startswith(b"["):
                print(f"llama.cpp: {line.decode(errors='replace').strip()[:100]}", file=sys.stderr, flush=True)
    if proc.returncode != 0:
        tail = log.read_bytes()[-600:].decode(errors="replace").strip().splitlines()
        raise BuildError(f"building llama.cpp failed at {what}: {tail[-1] if tail else 'no output'}",
                         f"the whole log: {log}")


def _build(folder: Path, tarball: Path) -> None:
    cmake, ninja, cxx = _need("cmake", "cmake"), _need("ninja", "ninja-build"), _need("g++", "g++")
    jobs = str(max(1, min(os.cpu_count() or 1, 4)))
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        work = Path(tmp)
        log = work / "build.log"
        src = _extract(tarball, work / "src")
        out = work / "build"
        _run([cmake, "-S", str(src), "-B", str(out), "-G", "Ninja", *CMAKE_FLAGS], "cmake", log)
        _run([ninja, "-C", str(out), "-j", jobs, "llama"], "ninja", log)
        _run([cxx, "-O2", "-x", "c", str(_source()), "-x", "none", "-I", str(src / "include"),
              "-I", str(src / "ggml" / "include"), *[str(out / lib) for lib in STATIC_LIBS],
              "-lpthread", "-lm", "-o", str(folder / PROGRAM)], "linking llamaref", log)


def _key() -> str:
    """What the build is made from: the sdist, llamaref.c, the flags and the libraries linked."""
    made_from = "\n".join((SDIST_SHA256, sha256_file(_source()), *CMAKE_FLAGS, *STATIC_LIBS))
    return sha256_bytes(made_from.encode())[:16]


@dataclass(frozen=True)
class Step:
    """One step of llama.cpp: its greedy token, that token's lead over the second (top-1 minus
    top-2 logit), whether it ends generation, and how far the token fed instead (``forced``)
    was below it (0 when nothing was forced)."""

    token: int
    margin: float
    eog: bool
    gap: float = 0.0


@dataclass(frozen=True)
class LlamaRef:
    binary: Path

    def _call(self, args: list[str], stdin: bytes, timeout: float) -> bytes:
        proc = subprocess.run([str(self.binary), *args], input=stdin, capture_output=True, timeout=timeout,
                              check=False)
        if proc.returncode != 0:
            raise InputError(f"llama.cpp ({args[0]}) failed: {proc.stderr.decode(errors='replace').strip()[-300:]}")
        return proc.stdout

    def tokenize(self, model: Path, texts: list[str], add_special: bool = False,
                 parse_special: bool = True) -> list[list[int]]:
        """llama.cpp's ids for each text (special tokens parsed unless told not to)."""
        data = b"".join(text.encode() + b"\0" for text in texts)
        out = self._call(["tokenize", str(model), str(int(add_special)), str(int(parse_special))], data, 600)
        lines = out.decode().split("\n")[:len(texts)]
        return [[int(v) for v in line.split()] for line in lines]

    def generate(self, model: Path, prompt: list[int], steps: int, forced: list[int] | None = None,
                 timeout: float = 900) -> list[Step]:
        """Greedy generation from the prompt's ids, 1 thread, f32 KV cache, no flash attention;
        with ``forced``, those ids are fed instead of llama.cpp's own choices (teacher forcing)."""
        stdin = " ".join(map(str, prompt)) + ("" if forced is None else " | " + " ".join(map(str, forced)))
        out = self._call(["generate", str(model), str(steps)], stdin.encode(), timeout)
        rows = [line.split() for line in out.decode().splitlines()]
        return [Step(int(t), float(m), e == "1", float(g)) for t, m, e, g in rows]

    def quantize(self, source: Path, dest: Path, mix: str) -> None:
        """llama.cpp's quantizer into ``mix`` (Q8_0, Q4_K_M, ...); a quantized source is requantized
        from its dequantized weights."""
        self._call(["quantize", str(source), str(dest), mix], b"", 1800)


def host_llamaref(cache: Path) -> LlamaRef:
    """The llamaref program for this machine (built once per sdist, program and flags)."""
    tarball = sdist(cache)
    entry = obtain(cache, "llamacpp", f"host-{_key()}", lambda folder: _build(folder, tarball),
                   {"sdist": SDIST, "sha256": SDIST_SHA256, "cmake": " ".join(CMAKE_FLAGS)})
    return LlamaRef(entry / PROGRAM)
