"""`ppc-llm bench`: guest instructions and memory bytes per token under QEMU, and a projection of
tok/s on the real machine.

A TCG plugin (toolkit/plugin/ppcllm_count.c, built here with the host's gcc) counts the guest
instructions per vCPU and passes every memory access through a simulated last-level cache of the
target's shape; the bytes it must fetch from memory are the "bytes per token". Each figure is a
steady state: the difference between two runs of different lengths, divided by the difference in
positions, so start-up (loading the model) drops out. Every prompt position is forced (the prompt
is longer than the run), so both runs do exactly the positions asked for.

The projection is t = a * instructions + b * bytes with the target profile's constants
(``[bench]``); it is labelled a projection wherever it is printed. ``fit`` solves a and b from the
scalar and SIMD fp32 rows and the published tok/s the profile names.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cache as cache_mod, format as fmt, reference
from .cmd import require_tool, run
from .emulate import EngineArgs, UserMode
from .errors import RunError, UsageError
from .fsutil import sha256_bytes
from .models import Model, ModelConfig, Tokenizer
from .models.llama2c import read_checkpoint, read_tokenizer
from .pipeline import build, open_input
from .resources import default_checkpoint, default_tokenizer
from .targets import BenchModel, Target

PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugin" / "ppcllm_count.c"
PLUGIN_FILE = "ppcllm_count.so"
SHAPES_FILE = Path(__file__).resolve().parent / "data" / "shapes.toml"
PERPLEXITY_TEXT = Path(__file__).resolve().parent / "data" / "perplexity.txt"
_VCPU = re.compile(r"^vcpu (\d+) insns (\d+) loaded (\d+) stored (\d+)$")
_CACHE = re.compile(r"^cache line (\d+) sets \d+ ways \d+ accesses \d+ misses (\d+)$")
_PEAK = re.compile(rb"^peak engine memory: (\d+) bytes", re.M)


@dataclass(frozen=True)
class Counts:
    """One run's totals: instructions per vCPU, bytes loaded, bytes fetched through the cache."""

    insns: dict[int, int]
    loaded: int
    fetched: int
    peak_memory: int = 0  # the engine's peak heap (weights, KV cache, buffers), as it reports it


@dataclass(frozen=True)
class Row:
    quant: str
    kernel: str
    threads: int
    instructions_per_token: float
    critical_path_instructions_per_token: float
    bytes_per_token: float
    loaded_bytes_per_token: float
    projected_tok_s: float
    ceiling_tok_s: float
    perplexity_delta_pct: float | None
    peak_memory_bytes: int = 0

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Variant:
    """One build and model to measure."""

    quant: str
    simd: bool
    threads: int


# --------------------------------------------------------------------------- models


def load_shapes() -> dict[str, ModelConfig]:
    data = tomllib.loads(SHAPES_FILE.read_text(encoding="utf-8"))
    return {name: ModelConfig(shared_classifier=True, **fields) for name, fields in data.items()}


def synthetic_tokenizer(vocab_size: int) -> Tokenizer:
    """llama2.c's special pieces and 256 byte tokens, then fillers no prompt can match."""
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    pieces += [b"\x01f%d" % i for i in range(vocab_size - len(pieces))]
    return Tokenizer(tuple(pieces[:vocab_size]), tuple(0.0 for _ in range(vocab_size)), 8)


def random_model(config: ModelConfig, seed: int = 0) -> Model:
    """Random weights (normal, std 0.02; norms 1) of ``config``'s shape: the cost of the real model."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, shape in config.tensor_shapes().items():
        if name.startswith("rms"):
            tensors[name] = np.ones(shape, dtype=np.float32)
        else:
            tensors[name] = (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02))
    return Model(config, dict(tensors), synthetic_tokenizer(config.vocab_size))


def bench_model(shape: str, tokenizer: Path | None) -> tuple[Model, str]:
    """A named shape (random weights) or a model file (llama2.c checkpoint, GGUF or converted);
    and a key for caching conversions."""
    shapes = load_shapes()
    if shape in shapes:
        return random_model(shapes[shape]), f"random-{shape}"
    path = Path(shape)
    if not path.exists():
        raise UsageError(f"--shape {shape}: neither a known shape nor a file",
                         f"known shapes: {', '.join(shapes)}")
    source = open_input(path, tokenizer)  # read once: the model and its key
    return source.model(), source.sha256[:16]


def forced_prompt(model: Model, positions: int) -> bytes:
    """A prompt that encodes to more than ``positions`` tokens, so no position samples."""
    if model.bpe is not None or model.spm is not None:  # GGUF vocabularies: every repetition is several tokens
        return b"Once upon a time " * (positions + 1)
    text = b"a" if model.tokenizer.pieces[3] == b"<0x00>" else b"Once upon a time "
    prompt = text * (positions + 1)
    while len(reference.encode(model.tokenizer, prompt)) <= positions:
        prompt += text
    return prompt


# --------------------------------------------------------------------------- measuring


def build_plugin(cache: Path) -> Path:
    """The counting plugin, compiled once per source version into the cache (a checked entry)."""
    source = PLUGIN_SOURCE.read_bytes()
    key = sha256_bytes(source)

    def fill(folder: Path) -> None:
        cc = require_tool("gcc", "gcc")
        result = run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o", folder / PLUGIN_FILE, PLUGIN_SOURCE,
                      "-lpthread"])
        if result.returncode != 0:
            raise RunError(f"building the counting plugin failed: {result.stderr.decode(errors='replace').strip()}")

    return cache_mod.obtain(cache, "plugins", f"ppcllm_count-{key[:16]}", fill, {"source_sha256": key}) / PLUGIN_FILE


def parse_counts(text: str) -> Counts:
    insns: dict[int, int] = {}
    loaded = fetched = 0
    for line in text.splitlines():
        vcpu = _VCPU.match(line)
        cache = _CACHE.match(line)
        if vcpu:
            insns[int(vcpu.group(1))] = int(vcpu.group(2))
            loaded += int(vcpu.group(3))
        elif cache:
            fetched = int(cache.group(1)) * int(cache.group(2))
    if not insns:
        raise RunError("the counting plugin reported nothing", "is qemu-user built with plugin support?")
    return Counts(insns, loaded, fetched)


def measure(target: Target, engine: Path, model_path: Path, prompt: bytes, positions: int, threads: int,
            plugin: Path, timeout: float) -> Counts:
    """One counted run of ``positions`` forced positions."""
    bench = _bench_model(target)
    with tempfile.TemporaryDirectory(prefix="ppcllm-bench-") as tmp:
        out = Path(tmp) / "counts.txt"
        plugin_arg = (f"{plugin},out={out},cache_bytes={bench.cache_bytes},ways={bench.cache_ways},"
                      f"line={bench.cache_line}")
        args = EngineArgs(model_path, temperature=0, steps=positions, prompt=prompt, threads=threads)
        result = UserMode(target, ("-plugin", plugin_arg)).run(engine, args, timeout)
        if result.returncode != 0:
            raise RunError(f"benchmark run failed: {result.stderr.decode(errors='replace').strip()[-300:]}")
        if not out.is_file():
            raise RunError("the counting plugin wrote no results", "is qemu-user built with plugin support?")
        peak = _PEAK.search(result.stderr)
        return dataclasses.replace(parse_counts(out.read_text()), peak_memory=int(peak.group(1)) if peak else 0)


def _bench_model(target: Target) -> BenchModel:
    if target.bench is None or target.emulator is None:
        raise UsageError(f"target {target.name} has no [bench] model or no emulator",
                         "bench needs an emulated target with a [bench] table in its profile")
    return target.bench


def steady_state(short: Counts, long: Counts, positions: int) -> tuple[float, float, float, float]:
    """(instructions, critical-path instructions, fetched bytes, loaded bytes) per token."""
    if sum(long.insns.values()) <= sum(short.insns.values()):
        raise RunError("the longer benchmark run executed no more instructions than the shorter one",
                       "the engine did not run the forced positions: please report it")
    per_vcpu = {v: (long.insns.get(v, 0) - short.insns.get(v, 0)) / positions for v in long.insns}
    total = sum(per_vcpu.values())
    return (total, max(per_vcpu.values()), (long.fetched - short.fetched) / positions,
            (long.loaded - short.loaded) / positions)


def project(bench: BenchModel, instructions: float, nbytes: float) -> tuple[float, float]:
    """(projected tok/s, ceiling tok/s at the bus peak)."""
    seconds = bench.instruction_seconds * instructions + bench.byte_seconds * nbytes
    return 1.0 / seconds, bench.bus_bytes_per_second / nbytes


def fit(bench: BenchModel, scalar: Row, simd: Row) -> tuple[float, float]:
    """Solve a, b so the scalar and SIMD fp32 rows give the published tok/s."""
    if not bench.published_scalar_tok_s or not bench.published_simd_tok_s:
        raise UsageError("this target's profile names no published tok/s to fit to")
    matrix = np.array([[scalar.critical_path_instructions_per_token, scalar.bytes_per_token],
                       [simd.critical_path_instructions_per_token, simd.bytes_per_token]])
    times = np.array([1.0 / bench.published_scalar_tok_s, 1.0 / bench.published_simd_tok_s])
    a, b = np.linalg.solve(matrix, times)
    if a <= 0 or b <= 0:
        raise RunError(f"the fit gives non-positive constants (a={a:.3g}, b={b:.3g})")
    return float(a), float(b)


# --------------------------------------------------------------------------- quality


def perplexity(model: Model, text: bytes) -> float:
    """exp(mean negative log-likelihood) of ``text`` under ``model``, through the NumPy reference."""
    tokens = reference.encode(model.tokenizer, text)
    transformer = reference.Transformer(model)
    nll = 0.0
    for pos in range(len(tokens) - 1):
        logits = transformer.forward(tokens[pos], pos).astype(np.float64)
        top = logits.max()
        log_z = top + math.log(float(np.exp(logits - top).sum()))
        nll += log_z - logits[tokens[pos + 1]]
    return math.exp(nll / (len(tokens) - 1))


def perplexity_deltas(quants: list[str]) -> dict[str, float]:
    """Perplexity change (%) against f32 on stories260K's real weights and a fixed text."""
    base = read_checkpoint(default_checkpoint(), read_tokenizer(default_tokenizer()))
    text = PERPLEXITY_TEXT.read_bytes()
    ppl = {q: perplexity(fmt.decode(fmt.encode(base, "big", q), q), text) for q in {"f32", *quants}}
    return {q: (ppl[q] / ppl["f32"] - 1.0) * 100.0 for q in quants}


# --------------------------------------------------------------------------- the table


def variants(target: Target, quants: list[str], threads: list[int], baseline: str = "f32") -> list[Variant]:
    """The scalar baseline first (fp32, or the GGUF model's own blocks), then each quantization
    with the target's kernels."""
    rows = [Variant(baseline, False, 1)]
    for quant in quants:
        for count in threads:
            if target.has_simd or quant != "f32" or count != 1:
                rows.append(Variant(quant, target.has_simd, count))
    return list(dict.fromkeys(rows))


def scalar_twin(target: Target) -> Target:
    """The same target without SIMD or threads: the baseline build (the audit still forbids what
    the CPU lacks, but requires no kernel instruction)."""
    isa = dataclasses.replace(target.isa, require=()) if target.isa is not None else None
    return dataclasses.replace(target, simd="none", hardware_threads=1, isa=isa)


def model_file(model: Model, key: str, quant: str, endian: str, cache: Path) -> Path:
    def fill(folder: Path) -> None:
        (folder / "model.bin").write_bytes(fmt.encode(model, endian, None if model.keeps_blocks else quant))

    name = f"{key}-{quant}-{endian}-v{fmt.FORMAT_VERSION}"
    inputs = {"model": key, "quant": quant, "endian": endian, "format_version": str(fmt.FORMAT_VERSION)}
    return cache_mod.obtain(cache, "bench", name, fill, inputs) / "model.bin"


def run_bench(target: Target, model: Model, key: str, quants: list[str], threads: list[int],
              lengths: tuple[int, int], cache: Path, jobs: int, timeout: float) -> list[Row]:
    bench = _bench_model(target)
    short, long = lengths
    if not 0 < short < long or long > model.config.seq_len:
        raise UsageError(f"--lengths {short},{long}: need 0 < first < second <= {model.config.seq_len}")
    plugin = build_plugin(cache)
    gguf = model.keeps_blocks  # a GGUF model runs its own blocks; --quant does not apply
    own = model.matrix_kinds  # a GGUF model's rows are named by its matrices' types (q4_K+q6_K, ...)
    plan = variants(target, [own] if gguf else quants, threads, own if gguf else "f32")
    builds = {simd: build(target if simd else scalar_twin(target), cache).engine for simd in {v.simd for v in plan}}
    files = {q: model_file(model, key, q, target.endian, cache) for q in {v.quant for v in plan}}
    prompt = forced_prompt(model, long)
    tasks = [(v, n) for v in plan for n in (short, long)]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(
            lambda task: measure(target, builds[task[0].simd], files[task[0].quant], prompt, task[1],
                                 task[0].threads, plugin, timeout), tasks))
    counts = {(task[0], task[1]): result for task, result in zip(tasks, results)}
    quality = {} if gguf else perplexity_deltas(sorted({v.quant for v in plan} - {"f32"}))
    rows = []
    for v in plan:
        insns, critical, fetched, loaded = steady_state(counts[(v, short)], counts[(v, long)], long - short)
        projected, ceiling = project(bench, critical, fetched)
        rows.append(Row(v.quant, target.simd if v.simd else "scalar", v.threads, insns, critical, fetched, loaded,
                        projected, ceiling, quality.get(v.quant, 0.0 if v.quant == "f32" else None),
                        counts[(v, long)].peak_memory))
    return rows


def format_table(target: Target, shape: str, rows: list[Row]) -> str:
    bench = _bench_model(target)
    base = rows[0]
    lines = [f"ppc-llm bench: {shape} on {target.name} ({target.description}), steady state per token",
             f"{'quant':6} {'kernel':8} {'thr':>3} {'Minsn/tok':>10} {'crit Minsn':>10} {'MB/tok':>8} "
             f"{'speed-up':>8} {'proj. tok/s':>11} {'ceiling':>8} {'ppl vs f32':>10} {'peak MiB':>9}"]
    for row in rows:
        ppl = "" if row.perplexity_delta_pct is None else f"{row.perplexity_delta_pct:+.2f} %"
        lines.append(
            f"{row.quant:6} {row.kernel:8} {row.threads:>3} {row.instructions_per_token / 1e6:>10.1f} "
            f"{row.critical_path_instructions_per_token / 1e6:>10.1f} {row.bytes_per_token / 1e6:>8.1f} "
            f"{row.projected_tok_s / base.projected_tok_s:>7.2f}x "
            f"{row.projected_tok_s:>11.2f} {row.ceiling_tok_s:>8.2f} {ppl:>10} {row.peak_memory_bytes / 2**20:>9.1f}")
    lines.append(f"MB/tok: bytes fetched from memory through a simulated {bench.cache_bytes // 1024} KiB "
                 f"{bench.cache_ways}-way L2 ({bench.cache_line}-byte lines); instructions counted under QEMU.")
    lines.append(f"proj. tok/s is a PROJECTION, not a measurement: t = {bench.instruction_seconds:.3g} s x insn "
                 f"+ {bench.byte_seconds:.3g} s x byte ({bench.basis}).")
    lines.append(f"ceiling: tok/s if the bus moved {bench.bus_bytes_per_second / 1e9:.2f} GB/s (its peak) and "
                 f"nothing else cost time. ppl vs f32: perplexity change on stories260K (real weights), NumPy reference.")
    lines.append(f"peak MiB: the engine's peak heap (weights, KV cache, buffers; it copies the model, no mmap), "
                 f"against the machine's {target.ram_mib} MiB of RAM.")
    return "\n".join(lines)

