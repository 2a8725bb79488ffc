"""Fuzzing and allocation-failure injection for the generated C's loaders.

The engine is rendered for the ``host`` target and compiled with clang, AddressSanitizer and
UndefinedBehaviorSanitizer (``-fno-sanitize-recover=all``: any report is a crash), together with
one harness from this folder:

    loader      harness            fuzz input
    model       fuzz_model.c       a whole converted model file (header, table, tensors, tokenizer)
    tokenizer   fuzz_tokenizer.c   the embedded tokenizer blob of a valid small model
    prompt      fuzz_prompt.c      the prompt given to ppcllm_generate (any bytes)
    bpe         fuzz_blob.c        the "bpe" blob (GPT-2 BPE tables) of a small GGUF-derived model
    chat        fuzz_blob.c        the "chat" blob (the turn format: strings, flags, stop ids) of that model
    bpe_prompt  fuzz_prompt.c      the prompt, BPE-encoded by that model (any bytes)

driven by libFuzzer from seeds this module writes (converted stories260K in both byte orders and
f32 / q8_0 / q4_0, a small model with the same tokenizer, and the tiny GGUF model of
``tinygguf.py`` converted in both byte orders). The last three start from that tiny GGUF model
(``tiny_bpe.le.bin``: Q8_0 / Q4_1, vocabulary 280, ChatML), not the 100 MB SmolLM2. ``alloc_fail.c`` fails allocation
N = 1 .. total of a full run and checks each ends cleanly with nothing leaked.

Every crash found is kept as a regression input under ``tests/fuzz/regressions/<loader>/``; the
test suite replays them. The long run (README, "Reliability"):

    python -m toolkit.fuzz --runs 1000000            # every loader, one million executions each
"""

from __future__ import annotations

import dataclasses
import re
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import cache, format as fmt
from ..buildplan import ENGINE_PROGRAM, BuildPlan, plan
from ..cmd import require_tool
from ..errors import BuildError, ToolMissingError
from ..fsutil import atomic_write_bytes, sha256_bytes
from ..models import Model, ModelConfig, Tensor
from ..models.llama2c import read_checkpoint, read_tokenizer, tokenizer_bytes
from ..render import render
from ..resources import default_checkpoint, default_tokenizer
from ..targets import load_target
from ..toolchain import compiler_version

HARNESS_DIR = Path(__file__).resolve().parent
LOADERS = ("model", "tokenizer", "prompt", "bpe", "chat", "bpe_prompt")
# loader -> (harness source, extra compiler flags); the BPE loaders start from the tiny GGUF model
HARNESSES = {"model": ("fuzz_model.c", ()), "tokenizer": ("fuzz_tokenizer.c", ()), "prompt": ("fuzz_prompt.c", ()),
             "bpe": ("fuzz_blob.c", ('-DFUZZ_BLOB="bpe"',)), "chat": ("fuzz_blob.c", ('-DFUZZ_BLOB="chat"',)),
             "bpe_prompt": ("fuzz_prompt.c", ())}
BPE_LOADERS = ("bpe", "chat", "bpe_prompt")
BOUNDED_MAX_LEN = 65536  # the in-suite run cuts the 1 MB stories260K seeds: ~100x more executions
FUZZ_TARGET = "host"  # the engine library of its build plan (toolkit/buildplan.py), with the flags below on top
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all")
FUZZ_CFLAGS = ("-g", "-O1", "-fno-omit-frame-pointer",
               "-Wno-unused-function")  # harness.h helpers are shared, not all used by each harness
CLANG_PACKAGES = "clang libclang-rt-14-dev libfuzzer-14-dev"
# Base of the tokenizer and prompt harnesses, and the smallest seeds: the bundled tokenizer on a
# tiny random model, so an execution costs microseconds rather than loading 1 MB of weights.
TINY = ModelConfig(dim=16, hidden_dim=32, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=512, seq_len=16,
                   shared_classifier=True)


@dataclass(frozen=True)
class FuzzBuild:
    directory: Path
    base: Path  # the valid little-endian model the tokenizer and prompt harnesses start from

    def binary(self, name: str) -> Path:
        return self.directory / name

    @property
    def bpe_base(self) -> Path:
        """The tiny GGUF model converted little-endian: base of the bpe, chat and bpe_prompt harnesses."""
        return self.directory / "tiny_bpe.le.bin"

    def base_for(self, loader: str) -> Path:
        return self.bpe_base if loader in BPE_LOADERS else self.base

    @property
    def engine(self) -> Path:
        """The command-line program (main.c) of the host target under ASan + UBSan."""
        return self.directory / "ppcllm_asan"


# For running ppcllm_asan: a failed allocation returns NULL (the engine reports it) instead of
# aborting, and nothing above 2 GiB is granted (a KV cache of terabytes must fail, not swap).
ASAN_ENV = {"ASAN_OPTIONS": "allocator_may_return_null=1:max_allocation_size_mb=2048:detect_leaks=1",
            "UBSAN_OPTIONS": "print_stacktrace=1"}


@dataclass(frozen=True)
class FuzzResult:
    loader: str
    executions: int
    seconds: float
    crashes: tuple[Path, ...]
    log_tail: str


def _clang() -> str:
    return require_tool("clang", CLANG_PACKAGES)


def fuzz_cflags(built: BuildPlan) -> tuple[str, ...]:
    """The plan's flags of the engine library (the fuzz target has no SIMD file), then the fuzz
    build's own: debug information, -O1 and the sanitizers."""
    return built.base_cflags + FUZZ_CFLAGS + SANITIZE


def _compile(built: BuildPlan, clang: str, out: Path, sources: list[Path], extra: tuple[str, ...],
             include: Path) -> None:
    argv = [clang, *fuzz_cflags(built), *extra, f"-I{include}", "-o", str(out), *map(str, sources), *built.libs]
    result = subprocess.run(argv, capture_output=True, check=False)
    if result.returncode == 0:
        return
    err = result.stderr.decode(errors="replace")
    if "libclang_rt.fuzzer" in err or "libclang_rt.asan" in err or "libclang_rt.ubsan" in err:
        raise ToolMissingError("clang's sanitizer or libFuzzer runtime is not installed",
                               f"install it with: sudo apt-get install {CLANG_PACKAGES}")
    first = next((line for line in err.splitlines() if "error" in line), err.strip()[:200])
    raise BuildError(f"building the fuzz harness {out.name} failed: {first}", "this is a bug: please report it")


def tiny_model(seed: int = 0) -> Model:
    """A small random model with the bundled tokenizer (vocabulary 512)."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, Tensor] = {name: (rng.standard_normal(shape) * 0.5).astype(np.float32)
                                  for name, shape in TINY.tensor_shapes().items()}
    return Model(TINY, tensors, read_tokenizer(default_tokenizer()))


# a tiny GGUF's tensors in kept block types, differing by layer (stored per layer when converted)
KEPT_MIX = {"token_embd.weight": "Q5_0", "blk.0.attn_q.weight": "IQ4_NL", "blk.1.attn_q.weight": "Q5_1",
            "blk.0.ffn_down.weight": "Q4_K", "blk.1.ffn_down.weight": "Q6_K"}


def tiny_bpe_model(kept: bool = False) -> Model:
    """The tiny GGUF llama model (tinygguf.py: BPE vocabulary 280, Q8_0 / Q4_1, ChatML; ``kept``:
    some tensors in KEPT_MIX's types), read as `ppc-llm convert` reads it."""
    import tempfile

    from gguf import GGMLQuantizationType

    from ..models.gguf import read_gguf
    from . import tinygguf

    types = {name: GGMLQuantizationType[kind] for name, kind in KEPT_MIX.items()} if kept else None
    with tempfile.TemporaryDirectory() as tmp:
        path = tinygguf.write(Path(tmp) / "tiny.gguf", tensor_types=types)
        return read_gguf(path, path.read_bytes())


def build(work: Path) -> FuzzBuild:
    """Every harness, compiled into the cache entry ``work/builds/<key>`` (toolkit/cache.py: reused
    while the sources, harnesses, clang and flags are unchanged)."""
    clang = _clang()
    target = load_target(FUZZ_TARGET)
    built = plan(target)
    sources = render(target)
    harnesses = sorted(HARNESS_DIR.glob("*.[ch]"))
    inputs = {"source_sha256": sources.digest(), "clang_version": compiler_version(clang),
              "harnesses_sha256": sha256_bytes(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in harnesses)),
              "flags": " ".join(fuzz_cflags(built) + built.libs)}
    key = sha256_bytes("\0".join(f"{k}={v}" for k, v in sorted(inputs.items())).encode())[:16]

    def fill(directory: Path) -> None:
        src = directory / "src"
        src.mkdir()
        for file in sources.files:
            (src / file.name).write_text(file.text, encoding="utf-8")
        engine = [src / source.name for source in built.library]
        for loader in LOADERS:
            harness, flags = HARNESSES[loader]
            _compile(built, clang, directory / f"fuzz_{loader}", engine + [HARNESS_DIR / harness],
                     ("-fsanitize=fuzzer", *flags), src)
        _compile(built, clang, directory / "alloc_fail", engine + [HARNESS_DIR / "alloc_fail.c"], (), src)
        program = [src / name for name in built.program(ENGINE_PROGRAM).sources]  # main.c, cli_chat.c, the library
        _compile(built, clang, directory / "ppcllm_asan", program, (), src)  # the CLI, sanitized
        atomic_write_bytes(directory / "tiny.le.bin", fmt.encode(tiny_model(), "little"))
        atomic_write_bytes(directory / "tiny_bpe.le.bin", fmt.encode(tiny_bpe_model(), "little"))

    directory = cache.obtain(work, "builds", f"build-{key}", fill, inputs)
    return FuzzBuild(directory, directory / "tiny.le.bin")


def write_seeds(corpus: Path, loader: str) -> None:
    """The seed inputs for ``loader`` (written once; libFuzzer adds what it finds beside them)."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for name, payload in _seeds(loader).items():
        atomic_write_bytes(corpus / name, payload)


def _seeds(loader: str) -> dict[str, bytes]:
    if loader in BPE_LOADERS:
        return _bpe_seeds(loader)
    tokenizer = read_tokenizer(default_tokenizer())
    if loader == "tokenizer":
        return {"tok512.le": tokenizer_bytes(tokenizer, "<"),
                "short.le": tokenizer_bytes(tokenizer, "<")[:300]}
    if loader == "prompt":
        return {"once": b"Once upon a time", "utf8": "caf\u00e9 \U0001f600 na\u00efve".encode(),
                "invalid": b"\xff\xfe\xc3 \x80\x80<0x41>", "empty": b""}
    stories = read_checkpoint(default_checkpoint(), tokenizer)
    seeds = {f"tiny.{endian}.{quant}": fmt.encode(tiny_model(), endian, quant)
             for endian in ("little", "big") for quant in fmt.QUANT_DTYPES}
    seeds.update({f"stories260K.{endian}.{quant}": fmt.encode(stories, endian, quant)
                  for endian in ("little", "big") for quant in fmt.QUANT_DTYPES})
    seeds.update({f"tiny_bpe.{endian}": fmt.encode(tiny_bpe_model(), endian) for endian in ("little", "big")})
    seeds.update({f"tiny_kept.{endian}": fmt.encode(tiny_bpe_model(kept=True), endian) for endian in ("little", "big")})
    return seeds


def _bpe_seeds(loader: str) -> dict[str, bytes]:
    model = tiny_bpe_model()
    assert model.bpe is not None
    if loader == "bpe":
        full = fmt.bpe_blob(model.bpe, "<")
        # the same tables with only the first 8 character-class ranges (ASCII letters, digits, space)
        words = list(struct.unpack(f"<{len(full) // 4}I", full))
        head = 8 + 256 + words[1] + 4 * words[2]
        words[3] = 8
        return {"tiny_bpe.le": full, "few_ranges.le": struct.pack(f"<{head + 24}I", *words[:head + 24])}
    if loader == "chat":
        assert model.chat is not None
        utf8 = dataclasses.replace(model.chat, default_system="caf\u00e9 <|im_start|> 42 \U0001f600", folded=True)
        return {"default-system": fmt.chat_blob(model.chat, "<"), "utf8": fmt.chat_blob(utf8, "<"),
                "none": fmt.chat_blob(dataclasses.replace(model.chat, default_system=None, system_role=False), "<")}
    return {"once": b"Once upon a time, the 123 cafe", "chatml": b"<|im_start|>user\nhi<|im_end|>\n<|im_start|>",
            "apostrophes": b"it's we're I'll they've 'd 'm   \t\n\n  x", "utf8": "caf\u00e9 \U0001f600 \u0663\u0664".encode(),
            "invalid": b"\xff\xfe\xc3 \x80\x80<|im_end|\xe2\x82", "empty": b""}


_DONE = re.compile(rb"Done (\d+) runs in (\d+) second")
_STAT = re.compile(rb"^#(\d+)\s", re.M)  # progress lines (not a stack trace's frames)
_UNITS = re.compile(rb"stat::number_of_executed_units: (\d+)")


def fuzz(fb: FuzzBuild, loader: str, corpus: Path, artifacts: Path, runs: int, max_seconds: int,
         max_len: int = 0, seed: int = 0, timeout: float | None = None) -> FuzzResult:
    """Run libFuzzer on ``loader`` for ``runs`` executions (or ``max_seconds``), single process;
    ``max_len`` > 0 caps the input size (larger seeds are cut: faster, for the bounded run);
    ``seed`` > 0 makes the run repeatable."""
    write_seeds(corpus, loader)
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [str(fb.binary(f"fuzz_{loader}")), f"-runs={runs}", f"-max_total_time={max_seconds}",
            "-rss_limit_mb=2048", "-timeout=10", "-print_final_stats=1", f"-artifact_prefix={artifacts}/",
            *([f"-max_len={max_len}"] if max_len > 0 else []), *([f"-seed={seed}"] if seed > 0 else []),
            str(corpus)]
    env = {"PPCLLM_FUZZ_BASE": str(fb.base_for(loader)), "PATH": "/usr/bin:/bin",
           "ASAN_OPTIONS": "detect_leaks=1:allocator_may_return_null=1",
           "UBSAN_OPTIONS": "print_stacktrace=1"}
    before = set(artifacts.iterdir())
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, env=env, check=False,
                            timeout=timeout if timeout is not None else max_seconds * 2 + 120)
    seconds = time.monotonic() - started
    log = result.stderr
    done = _UNITS.search(log) or _DONE.search(log)
    stats = _STAT.findall(log)
    executions = int(done.group(1)) if done else int(stats[-1]) if stats else 0
    crashes = tuple(sorted(set(artifacts.iterdir()) - before))
    tail = log.decode(errors="replace")[-4000:]
    if result.returncode != 0 and not crashes:
        crashes = (Path(f"<exit status {result.returncode}>"),)
    return FuzzResult(loader, executions, seconds, crashes, tail)


def replay(fb: FuzzBuild, loader: str, inputs: list[Path], base: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the harness once over each input (regressions), from ``base`` (default: the tiny
    model): exit 0 when none crashes."""
    env = {"PPCLLM_FUZZ_BASE": str(base or fb.base_for(loader)), "PATH": "/usr/bin:/bin",
           "ASAN_OPTIONS": "detect_leaks=1:allocator_may_return_null=1"}
    argv = [str(fb.binary(f"fuzz_{loader}")), "-runs=1", *map(str, inputs)]
    return subprocess.run(argv, capture_output=True, env=env, check=False, timeout=600)


def alloc_fail(fb: FuzzBuild, model: Path, prompt: str = "Once upon a time") -> tuple[int, subprocess.CompletedProcess[bytes]]:
    """Run the allocation-failure injection over ``model``: (allocations in a full run, result)."""
    env = {"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": "detect_leaks=1"}
    result = subprocess.run([str(fb.binary("alloc_fail")), str(model), prompt], capture_output=True, env=env,
                            check=False, timeout=600)
    found = re.search(rb"alloc_fail: (\d+) allocations", result.stdout)
    return (int(found.group(1)) if found else 0), result
