"""The bad-input catalogue: every input the toolkit and the generated C program read, damaged in
each way a file from the internet can be, one row per case.

Toolkit rows run `ppc-llm` as a user would and check: the documented exit code, one error line
(and at most one hint line) on stderr, no traceback, and no partial output (the output folder
holds exactly what it held before, the previous output byte for byte). Engine rows run the
generated program (host build under ASan + UBSan, and the G4 build under qemu-ppc) and check: the
exit status, no signal, one line on stderr, no sanitizer report. The count of cases tried and
passed is printed at the end of the run (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import CATALOGUE, catalogue_case
from toolkit import format as fmt
from toolkit import fuzz
from toolkit.emulate import run_user
from toolkit.models import Model
from toolkit.models.llama2c import HEADER
from toolkit.toolchain import Build

from .conftest import cli, target

CHECKPOINT = Path(__file__).resolve().parents[2] / "toolkit" / "data" / "models" / "stories260K.bin"
TOKENIZER = CHECKPOINT.with_name("tok512.bin")
PREVIOUS = fmt.MAGIC + b"previous output, must survive\n"  # ppc-llm's magic: an output it may replace


case = catalogue_case  # each row: `with case(label):`


# ------------------------------------------------------------------------------------------------
# Damaged inputs

Edit = Callable[[bytearray], None]


def header_field(index: int, value: int) -> Edit:
    """Set llama2.c header field ``index`` (dim, hidden, layers, heads, kv_heads, vocab, seq_len)."""
    return lambda d: struct.pack_into("<i", d, 4 * index, value)


def truncate(keep: Callable[[int], int]) -> Edit:
    def edit(d: bytearray) -> None:
        del d[keep(len(d)):]
    return edit


CHECKPOINT_CASES: list[tuple[str, Edit, str]] = [
    ("empty", truncate(lambda n: 0), "too short"),
    ("truncated-header", truncate(lambda n: 10), "too short"),
    ("truncated-half", truncate(lambda n: n // 2), "truncated"),
    ("truncated-1-byte", truncate(lambda n: n - 1), "truncated"),
    ("dim-zero", header_field(0, 0), "out of range"),
    ("layers-negative", header_field(2, -5), "out of range"),
    ("dim-huge", header_field(0, 1 << 30), "out of range"),
    ("heads-not-dividing-dim", header_field(3, 7), "multiple"),
    ("vocab-inconsistent-with-size", header_field(5, 1000), "header describes"),
    ("seq-len-inconsistent-with-size", header_field(6, 4096), "header describes"),
    ("product-overflows-32-bit", lambda d: (header_field(0, 1 << 16)(d), header_field(1, 1 << 16)(d),
                                            header_field(3, 1 << 10)(d), header_field(4, 1 << 10)(d)), "header describes"),
    ("versioned-export", lambda d: d.__setitem__(slice(0, 4), b"ak42"), "not supported"),
    ("wrong-file-type", lambda d: d.__setitem__(slice(0, len(d)), b"\x89PNG\r\n\x1a\n" + bytes(100)), "out of range"),
]


def tok_record(d: bytearray, index: int) -> int:
    """Offset of token ``index``'s (score, len) record in a llama2.c tokenizer."""
    pos = 4
    for _ in range(index):
        (length,) = struct.unpack_from("<i", d, pos + 4)
        pos += 8 + length
    return pos


TOKENIZER_CASES: list[tuple[str, Edit, str]] = [
    ("empty", truncate(lambda n: 0), "too short"),
    ("truncated-in-token", truncate(lambda n: n - 3), "token"),
    ("max-len-zero", lambda d: struct.pack_into("<i", d, 0, 0), "out of range"),
    ("negative-length", lambda d: struct.pack_into("<i", d, tok_record(d, 5) + 4, -4), "invalid length"),
    ("huge-length", lambda d: struct.pack_into("<i", d, tok_record(d, 5) + 4, 0x7FFFFFFF), "invalid length"),
    ("vocab-mismatch", lambda d: d.__delitem__(slice(tok_record(d, 300), None)), "tokens but"),
]


def converted_field(offset: int, code: str, value: object) -> Callable[[bytearray, str], None]:
    return lambda d, bo: struct.pack_into(bo + code, d, offset, value)


def entry_field(index: int, offset: int, code: str, value: object) -> Callable[[bytearray, str], None]:
    return lambda d, bo: struct.pack_into(bo + code, d, fmt.HEADER_SIZE + index * fmt.ENTRY_SIZE + offset, value)


def last_entry(offset: int, code: str, value: object) -> Callable[[bytearray, str], None]:
    def edit(d: bytearray, bo: str) -> None:
        (count,) = struct.unpack_from(bo + "I", d, 32)
        entry_field(count - 1, offset, code, value)(d, bo)
    return edit


def tokenizer_blob(offset_in_blob: int, code: str, value: object) -> Callable[[bytearray, str], None]:
    def edit(d: bytearray, bo: str) -> None:
        (count,) = struct.unpack_from(bo + "I", d, 32)
        (start,) = struct.unpack_from(bo + "Q", d, fmt.HEADER_SIZE + (count - 1) * fmt.ENTRY_SIZE + 56)
        struct.pack_into(bo + code, d, start + offset_in_blob, value)
    return edit


def cut(keep: Callable[[int], int]) -> Callable[[bytearray, str], None]:
    def edit(d: bytearray, bo: str) -> None:
        del d[keep(len(d)):]
    return edit


ConvEdit = Callable[[bytearray, str], None]
# label, edit, engine message part (the toolkit's own reader must refuse each too: exit 3)
CONVERTED_CASES: list[tuple[str, ConvEdit, str]] = [
    ("empty", cut(lambda n: 0), "truncated"),
    ("truncated-header", cut(lambda n: 100), "truncated"),
    ("truncated-half", cut(lambda n: n // 2), "truncated"),
    ("truncated-1-byte", cut(lambda n: n - 1), "truncated"),
    ("wrong-magic", lambda d, bo: d.__setitem__(slice(0, 4), b"GGUF"), "bad magic"),
    ("invalid-byte-order-mark", lambda d, bo: d.__setitem__(slice(8, 12), b"\x01\x02\x03\x04"), "byte-order mark"),
    ("future-version", converted_field(12, "I", fmt.FORMAT_VERSION + 1), "format version"),
    ("header-size", converted_field(16, "I", 64), "header size"),
    ("alignment-zero", converted_field(20, "I", 0), "alignment"),
    ("file-size-field", converted_field(24, "Q", 1 << 40), "size"),
    ("no-tensors", converted_field(32, "I", 0), "tensor count"),
    ("tensor-count-huge", converted_field(32, "I", 0xFFFFFFFF), "tensor count"),
    ("dim-zero", converted_field(36, "I", 0), "config"),
    ("dim-huge", converted_field(36, "I", 0xFFFFFFFF), "config"),
    ("heads-not-dividing-dim", converted_field(48, "I", 7), "config"),
    ("unknown-quantization", converted_field(76, "I", 9), "quantization"),
    ("rope-theta-nan", converted_field(68, "f", float("nan")), "rope"),
    ("tensor-outside-file", entry_field(0, 56, "Q", 1 << 40), "outside the file"),
    ("tensor-misaligned", lambda d, bo: entry_field(1, 56, "Q", struct.unpack_from(bo + "Q", d, fmt.HEADER_SIZE + 64 + 56)[0] + 4)(d, bo),
     "misaligned"),
    ("tensors-overlap", lambda d, bo: entry_field(2, 56, "Q", struct.unpack_from(bo + "Q", d, fmt.HEADER_SIZE + 56)[0])(d, bo),
     "overlaps"),
    ("tensor-dims-huge", entry_field(0, 40, "I", 0x80000001), "too large"),
    ("tensor-ndim-zero", entry_field(0, 36, "I", 0), "malformed"),
    ("tensor-dtype-unknown", entry_field(0, 32, "I", 99), "malformed"),
    ("tensor-missing", lambda d, bo: d.__setitem__(slice(fmt.HEADER_SIZE, fmt.HEADER_SIZE + 7), b"nothing"), "unexpected"),
    ("tokenizer-missing", last_entry(0, "9s", b"tokenizeX"), "unexpected"),
    ("tokenizer-max-len-zero", tokenizer_blob(0, "I", 0), "max token length"),
    ("tokenizer-negative-length", tokenizer_blob(8, "i", -4), "invalid length"),
    ("tokenizer-huge-length", tokenizer_blob(8, "I", 0x7FFFFFFF), "invalid length"),
    ("tokenizer-truncated", last_entry(40, "I", 100), "truncated"),
]

# on a q8_0 file: the header's quantization and the matrices' must agree (the long fuzzing run
# found an f32 header over q8_0 matrices: the int8 input buffer was never allocated)
QUANTIZED_CASES: list[tuple[str, ConvEdit, str]] = [
    ("f32-header-over-q8_0-matrices", converted_field(76, "I", fmt.DTYPE_F32), "tensor: tok_embeddings"),
    ("q4_0-header-over-q8_0-matrices", converted_field(76, "I", fmt.DTYPE_Q4_0), "tensor: tok_embeddings"),
    ("q4_1-without-float-activations", converted_field(76, "I", fmt.DTYPE_Q4_1), "quantization"),
]
# (quantization of the undamaged file: None is f32, label, edit, engine message part)
FILE_CASES: list[tuple[str | None, str, ConvEdit, str]] = \
    [(None, *c) for c in CONVERTED_CASES] + [("q8_0", *c) for c in QUANTIZED_CASES]
FILE_IDS = [label if quant is None else f"{quant}-{label}" for quant, label, _, _ in FILE_CASES]


def file_case(quant: str | None, label: str) -> str:
    return f"converted/{label}" if quant is None else f"converted-{quant}/{label}"


# What the toolkit (`convert` of the damaged file) says for each converted-file row: it reads the
# file itself, so its words differ from the engine's.
TOOLKIT_FILE_MESSAGES: dict[str, str] = {
    "converted/empty": "file is 0 bytes",
    "converted/truncated-header": "not a ppc-llm converted file",
    "converted/truncated-half": "file has 24649",
    "converted/truncated-1-byte": "file has 49298",
    "converted/wrong-magic": "GGUF version",
    "converted/invalid-byte-order-mark": "byte-order mark 01020304",
    "converted/future-version": f"format version {fmt.FORMAT_VERSION + 1}",
    "converted/header-size": "header size 64",
    "converted/alignment-zero": "alignment 0",
    "converted/file-size-field": "header says 1099511627776 bytes",
    "converted/no-tensors": "no embedded tokenizer",
    "converted/tensor-count-huge": "4294967295 entries",
    "converted/dim-zero": "dim = 0",
    "converted/dim-huge": "dim = 4294967295",
    "converted/heads-not-dividing-dim": "n_heads 7",
    "converted/unknown-quantization": "quantization code 9",
    "converted/rope-theta-nan": "rope theta nan",
    "converted/tensor-outside-file": "tensor tok_embeddings lies outside",
    "converted/tensor-misaligned": "tensor rms_att lies outside the file, overlaps, is misaligned",
    "converted/tensors-overlap": "tensor wq lies outside the file, overlaps",
    "converted/tensor-dims-huge": "tensor tok_embeddings lies outside",
    "converted/tensor-ndim-zero": "0 dimensions",
    "converted/tensor-dtype-unknown": "wrong type or shape",
    "converted/tensor-missing": "tensor tok_embeddings is missing",
    "converted/tokenizer-missing": "no embedded tokenizer",
    "converted/tokenizer-max-len-zero": "max token length 0",
    "converted/tokenizer-negative-length": "invalid length -4",
    "converted/tokenizer-huge-length": "invalid length 2147483647",
    "converted/tokenizer-truncated": "7 tokens, model has 512",
    "converted-q8_0/f32-header-over-q8_0-matrices": "tensor tok_embeddings is missing or has the wrong type",
    "converted-q8_0/q4_0-header-over-q8_0-matrices": "tensor tok_embeddings is missing or has the wrong type",
    "converted-q8_0/q4_1-without-float-activations": "q4_1 weights without the float-activation flag",
    "converted-bpe/tokenizer-kind-unknown": "tokenizer kind 7",
    "converted-bpe/flags-unknown": "flags 128",
    "converted-bpe/bpe-missing": "no embedded bpe data",
    "converted-bpe/bpe-size-not-words": "BPE tokenizer data is truncated",
    "converted-bpe/bpe-size-too-small": "tensor bpe lies outside",
    "converted-bpe/bpe-reserved-word-set": "reserved word out of range",
    "converted-bpe/bpe-special-count-huge": "wrong size",
    "converted-bpe/bpe-merge-count-huge": "wrong size",
    "converted-bpe/bpe-range-count-wrong": "wrong size",
    "converted-bpe/bpe-bos-outside-vocabulary": "bos / eos id",
    "converted-bpe/bpe-add-bos-not-boolean": "add_bos flag",
    "converted-bpe/bpe-pre-tokenizer-unknown": "the pre-tokenizer",
    "converted-bpe/bpe-byte-token-outside-vocabulary": "token outside the vocabulary",
    "converted-bpe/bpe-merge-token-outside-vocabulary": "token outside the vocabulary",
    "converted-bpe/bpe-merges-unsorted": "merges not sorted",
    "converted-bpe/chat-missing": "no embedded chat data",
    "converted-bpe/chat-flag-unknown": "chat template data is malformed",
    "converted-bpe/chat-flag-without-blob": "no embedded chat data",
}


# ------------------------------------------------------------------------------------------------
# The checks

@dataclass(frozen=True)
class Outcome:
    returncode: int
    stderr: str


def check_toolkit(result: subprocess.CompletedProcess[bytes], code: int, message: str, out_dir: Path,
                  before: dict[str, bytes]) -> None:
    err = result.stderr.decode(errors="replace")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("+ ")]  # echoed commands
    assert result.returncode == code, err
    assert "Traceback" not in err, err
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), err
    assert len(lines) == 1 or lines[1].startswith("hint: "), err
    assert message.lower() in err.lower(), (message, err)
    assert snapshot(out_dir) == before, "partial or changed output"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """The output folder, holding a previous output that every failed command must leave intact."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "model.bin").write_bytes(PREVIOUS)
    return folder


def convert(out_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess[bytes], dict[str, bytes]]:
    before = snapshot(out_dir)
    return cli("convert", *args, "-o", str(out_dir / "model.bin")), before


# ------------------------------------------------------------------------------------------------
# Toolkit rows: llama2.c checkpoints, tokenizers, converted files, options, resources

@pytest.mark.parametrize("label,edit,message", CHECKPOINT_CASES, ids=[c[0] for c in CHECKPOINT_CASES])
def test_toolkit_checkpoint(label: str, edit: Edit, message: str, tmp_path: Path, out_dir: Path) -> None:
    with case(f"toolkit/checkpoint/{label}"):
        data = bytearray(CHECKPOINT.read_bytes())
        edit(data)
        bad = tmp_path / "bad.bin"
        bad.write_bytes(bytes(data))
        result, before = convert(out_dir, str(bad), "--tokenizer", str(TOKENIZER))
        check_toolkit(result, 3, message, out_dir, before)


@pytest.mark.parametrize("label,edit,message", TOKENIZER_CASES, ids=[c[0] for c in TOKENIZER_CASES])
def test_toolkit_tokenizer(label: str, edit: Edit, message: str, tmp_path: Path, out_dir: Path) -> None:
    with case(f"toolkit/tokenizer/{label}"):
        data = bytearray(TOKENIZER.read_bytes())
        edit(data)
        bad = tmp_path / "tok.bin"
        bad.write_bytes(bytes(data))
        result, before = convert(out_dir, str(CHECKPOINT), "--tokenizer", str(bad))
        check_toolkit(result, 3, message, out_dir, before)


def test_toolkit_tokenizer_with_non_utf8_pieces_is_accepted(tmp_path: Path, out_dir: Path) -> None:
    """Pieces are bytes (llama2.c prints them raw): non-UTF-8 is data, not damage."""
    with case("toolkit/tokenizer/non-utf8-piece-accepted"):
        data = bytearray(TOKENIZER.read_bytes())
        start = tok_record(data, 300) + 8
        (length,) = struct.unpack_from("<i", data, tok_record(data, 300) + 4)
        data[start:start + length] = b"\xff" * length
        tok = tmp_path / "tok.bin"
        tok.write_bytes(bytes(data))
        result, _ = convert(out_dir, str(CHECKPOINT), "--tokenizer", str(tok))
        assert result.returncode == 0, result.stderr.decode()
        assert (out_dir / "model.bin").read_bytes()[:8] == fmt.MAGIC


@pytest.mark.parametrize("quant,label,edit,message", FILE_CASES, ids=FILE_IDS)
def test_toolkit_converted_file(quant: str | None, label: str, edit: ConvEdit, message: str, tmp_path: Path,
                                out_dir: Path) -> None:
    with case(f"toolkit/{file_case(quant, label)}"):
        data = bytearray(fmt.encode(fuzz.tiny_model(), "big", quant))
        edit(data, ">")
        bad = tmp_path / "bad.be.bin"
        bad.write_bytes(bytes(data))
        result, before = convert(out_dir, str(bad), "--endian", "little")
        check_toolkit(result, 3, TOOLKIT_FILE_MESSAGES[file_case(quant, label)], out_dir, before)


@pytest.mark.parametrize("label,args,code,message", [
    ("directory-as-checkpoint", ["{tmp}", "--tokenizer", str(TOKENIZER)], 3, "directory"),
    ("missing-checkpoint", ["{tmp}/none.bin", "--tokenizer", str(TOKENIZER)], 3, "does not exist"),
    ("directory-as-tokenizer", [str(CHECKPOINT), "--tokenizer", "{tmp}"], 3, "directory"),
    ("missing-tokenizer", [str(CHECKPOINT), "--tokenizer", "{tmp}/none.bin"], 3, "does not exist"),
    ("checkpoint-without-tokenizer", [str(CHECKPOINT)], 3, "tokenizer"),
    ("bad-endian", [str(CHECKPOINT), "--tokenizer", str(TOKENIZER), "--endian", "middle"], 2, "endian"),
    ("bad-quant", [str(CHECKPOINT), "--tokenizer", str(TOKENIZER), "--quant", "q3_k"], 2, "quant"),
], ids=lambda v: v if isinstance(v, str) and not v.startswith(("{", "/", "-")) else None)
def test_toolkit_convert_inputs(label: str, args: list[str], code: int, message: str, tmp_path: Path,
                                out_dir: Path) -> None:
    with case(f"toolkit/convert/{label}"):
        result, before = convert(out_dir, *(a.replace("{tmp}", str(tmp_path)) for a in args))
        check_toolkit(result, code, message, out_dir, before)


def test_toolkit_output_is_a_directory(tmp_path: Path, out_dir: Path) -> None:
    with case("toolkit/convert/output-is-a-directory"):
        before = snapshot(out_dir)
        result = cli("convert", str(CHECKPOINT), "--tokenizer", str(TOKENIZER), "-o", str(out_dir))
        check_toolkit(result, 2, "directory", out_dir, before)


def test_toolkit_unwritable_output_folder(tmp_path: Path, out_dir: Path) -> None:
    """The output's folder cannot be made (a file is in the way; root ignores permission bits)."""
    with case("toolkit/convert/unwritable-output-folder"):
        blocker = out_dir / "model.bin"
        before = snapshot(out_dir)
        result = cli("convert", str(CHECKPOINT), "--tokenizer", str(TOKENIZER), "-o", str(blocker / "x.bin"))
        check_toolkit(result, 3, "cannot write", out_dir, before)


RUN_OPTION_CASES = [
    ("negative-steps", ["-n", "-1"], 2, "steps"),
    ("negative-temperature", ["-t", "-0.5"], 2, "temperature"),
    ("nan-temperature", ["-t", "nan"], 2, "temperature"),
    ("top-p-above-1", ["-p", "1.5"], 2, "top-p"),
    ("top-p-below-0", ["-p", "-0.1"], 2, "top-p"),
    ("negative-seed", ["-s", "-3"], 2, "seed"),
    ("unknown-target", ["--target", "pdp11"], 2, "unknown target"),
    ("missing-checkpoint", ["--checkpoint", "/nonexistent/model.bin"], 3, "does not exist"),
    ("unknown-option", ["--frobnicate"], 2, "frobnicate"),
    ("steps-past-int", ["-n", str(2**31)], 2, "steps"),
    ("context-zero", ["--ctx", "0"], 2, "--ctx"),
    ("context-past-int", ["--ctx", str(2**31)], 2, "--ctx"),
    ("seed-past-int", ["-s", str(2**31)], 2, "seed"),
    ("threads-zero", ["--threads", "0"], 2, "--threads"),
    ("threads-not-a-number", ["--threads", "two"], 2, "--threads"),
    ("timeout-negative", ["--timeout", "-1"], 2, "--timeout"),
    ("timeout-nan", ["--timeout", "nan"], 2, "--timeout"),
    ("system-prompt-without-chat", ["--system-prompt", "Be brief."], 2, "--chat"),
]


BENCH_OPTION_CASES = [
    ("lengths-reversed", ["--lengths", "5,2"], 2, "--lengths"),
    ("lengths-not-numbers", ["--lengths", "a,b"], 2, "--lengths"),
    ("jobs-zero", ["--jobs", "0"], 2, "--jobs"),
    ("threads-zero", ["--threads", "1,0"], 2, "--threads"),
    ("timeout-nan", ["--timeout", "nan"], 2, "--timeout"),
    ("unknown-quant", ["--quant", "q4_1"], 2, "--quant"),
    ("unknown-shape", ["--shape", "stories7B"], 2, "--shape"),
]


@pytest.mark.parametrize("label,args,code,message", BENCH_OPTION_CASES, ids=[c[0] for c in BENCH_OPTION_CASES])
def test_toolkit_bench_options(label: str, args: list[str], code: int, message: str, cache: Path,
                               tmp_path: Path) -> None:
    with case(f"toolkit/bench/{label}"):
        result = cli("bench", "--target", "g4", "--shape", "stories260K", *args, cache_dir=cache)
        check_toolkit(result, code, message, tmp_path, {})
        assert result.stdout == b""


@pytest.mark.parametrize("label,args,code,message", RUN_OPTION_CASES, ids=[c[0] for c in RUN_OPTION_CASES])
def test_toolkit_run_options(label: str, args: list[str], code: int, message: str, cache: Path,
                             builds: dict[str, Build], tmp_path: Path) -> None:
    with case(f"toolkit/run-qemu/{label}"):
        result = cli("run-qemu", "--target", "host", *args, cache_dir=cache)
        check_toolkit(result, code, message, tmp_path, {})
        assert result.stdout == b""


@pytest.mark.parametrize("label,prompt", [
    ("empty", b""), ("invalid-utf8", b"\xff\xfe bad \xc3"), ("longer-than-context", b"Once upon a time " * 200),
], ids=["empty", "invalid-utf8", "longer-than-context"])
def test_toolkit_prompts_are_normal_input(label: str, prompt: bytes, cache: Path, builds: dict[str, Build]) -> None:
    with case(f"toolkit/prompt/{label}-accepted"):
        result = cli("run-qemu", "--target", "host", "-t", "0", "-n", "40", "-i", os.fsdecode(prompt), cache_dir=cache)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert "Traceback" not in result.stderr.decode(errors="replace")


def test_toolkit_disk_full_while_converting(tmp_path: Path) -> None:
    """A real full disk: a 256 KiB tmpfs holding the previous output; the 1 MB conversion fails
    with one line, exit 3, and the previous output is intact with no temporary file left."""
    with case("toolkit/resources/disk-full"):
        mount = tmp_path / "small"
        mount.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                 capture_output=True, check=False).returncode == 0
        env = None if mounted else dict(os.environ, PPC_LLM_TEST_FAULT="write:ENOSPC")  # not root: simulated
        try:
            (mount / "model.bin").write_bytes(PREVIOUS)
            before = snapshot(mount)
            result = cli("convert", str(CHECKPOINT), "--tokenizer", str(TOKENIZER), "-o", str(mount / "model.bin"),
                         env=env)
            check_toolkit(result, 3, "no space left", mount, before)
            assert sorted(p.name for p in mount.iterdir()) == ["model.bin"]
        finally:
            if mounted:
                subprocess.run(["umount", str(mount)], check=False)


# ------------------------------------------------------------------------------------------------
# Engine rows: the generated program, ASan host build and G4 under QEMU

ENGINES = ["host-asan", "g4"]


@pytest.fixture(scope="module")
def asan_build(cache: Path) -> fuzz.FuzzBuild:
    return fuzz.build(cache / "fuzz")


def run_engine(engine: str, args: list[str | bytes], asan: fuzz.FuzzBuild, builds: dict[str, Build]) -> Outcome:
    if engine == "host-asan":
        result = subprocess.run([str(asan.engine), *args], capture_output=True, check=False, timeout=300,
                                env={**fuzz.ASAN_ENV, "PATH": "/usr/bin:/bin"})
        return Outcome(result.returncode, result.stderr.decode(errors="replace"))
    ran = run_user(target(engine), builds[engine].engine, args, timeout=300)
    return Outcome(ran.returncode, ran.stderr.decode(errors="replace"))


def check_engine(outcome: Outcome, code: int, message: str) -> None:
    # ASan's note that it returned NULL for a refused allocation (allocator_may_return_null) is
    # not a report: the engine's own line must follow
    err = "".join(line for line in outcome.stderr.splitlines(keepends=True)
                  if "WARNING: AddressSanitizer failed to allocate" not in line)
    assert outcome.returncode == code, err  # a signal would be negative (or 128 + n through a shell)
    assert "Sanitizer" not in err and "runtime error" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert message.lower() in err.lower(), (message, err)


def engine_model(engine: str, tmp_path: Path, quant: str | None = None) -> tuple[Path, bytearray, str]:
    endian = "little" if engine == "host-asan" else "big"
    data = bytearray(fmt.encode(fuzz.tiny_model(), endian, quant))
    return tmp_path / "model.bin", data, fmt.ENDIANS[endian]


@pytest.mark.parametrize("quant,label,edit,message", FILE_CASES, ids=FILE_IDS)
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_converted_file(engine: str, quant: str | None, label: str, edit: ConvEdit, message: str,
                               tmp_path: Path, asan_build: fuzz.FuzzBuild, builds: dict[str, Build]) -> None:
    with case(f"engine-{engine}/{file_case(quant, label)}"):
        path, data, bo = engine_model(engine, tmp_path, quant)
        edit(data, bo)
        path.write_bytes(bytes(data))
        check_engine(run_engine(engine, [str(path), "-n", "4"], asan_build, builds), 1, message)


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_other_byte_order(engine: str, tmp_path: Path, asan_build: fuzz.FuzzBuild,
                                 builds: dict[str, Build]) -> None:
    with case(f"engine-{engine}/converted/other-byte-order"):
        path = tmp_path / "model.bin"
        path.write_bytes(fmt.encode(fuzz.tiny_model(), "big" if engine == "host-asan" else "little"))
        check_engine(run_engine(engine, [str(path)], asan_build, builds), 1, "ppc-llm convert --endian")


@pytest.mark.parametrize("label,kind,code,message", [
    ("missing-file", "missing", 1, "cannot open"),
    ("directory", "directory", 1, "cannot read"),
    ("wrong-file-type", "text", 1, "bad magic"),
], ids=["missing-file", "directory", "wrong-file-type"])
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_model_paths(engine: str, label: str, kind: str, code: int, message: str, tmp_path: Path,
                            asan_build: fuzz.FuzzBuild, builds: dict[str, Build]) -> None:
    with case(f"engine-{engine}/files/{label}"):
        path = {"missing": tmp_path / "none.bin", "directory": tmp_path}.get(kind, tmp_path / "readme.txt")
        if kind == "text":
            path.write_text("This is not a model, it is a README file with enough text to fill a header.\n" * 4)
        check_engine(run_engine(engine, [str(path)], asan_build, builds), code, message)


ENGINE_OPTION_CASES = [
    ("negative-temperature", ["-t", "-1"], "temperature"),
    ("top-p-above-1", ["-p", "1.5"], "top-p"),
    ("negative-steps", ["-n", "-3"], "steps"),
    ("seed-not-a-number", ["-s", "x"], "seed"),
    ("unknown-option", ["-q", "1"], "unknown option"),
    ("option-without-value", ["-t"], "needs a value"),
    ("threads-zero", ["-T", "0"], "threads"),
]


@pytest.mark.parametrize("label,args,message", ENGINE_OPTION_CASES, ids=[c[0] for c in ENGINE_OPTION_CASES])
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_options(engine: str, label: str, args: list[str], message: str, tmp_path: Path,
                        asan_build: fuzz.FuzzBuild, builds: dict[str, Build]) -> None:
    with case(f"engine-{engine}/options/{label}"):
        path, data, _ = engine_model(engine, tmp_path)
        path.write_bytes(bytes(data))
        check_engine(run_engine(engine, [str(path), *args], asan_build, builds), 2, message)


@pytest.mark.parametrize("label,prompt", [
    ("empty", b""), ("invalid-utf8", b"\xff\xfe bad \xc3\x80\x80\x80\x80"), ("longer-than-context", b"Once upon a time " * 40),
], ids=["empty", "invalid-utf8", "longer-than-context"])
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_prompts_are_normal_input(engine: str, label: str, prompt: bytes, tmp_path: Path,
                                         asan_build: fuzz.FuzzBuild, builds: dict[str, Build]) -> None:
    with case(f"engine-{engine}/prompt/{label}-accepted"):
        path, data, _ = engine_model(engine, tmp_path)
        path.write_bytes(bytes(data))
        outcome = run_engine(engine, [str(path), "-t", "0", "-i", prompt], asan_build, builds)
        assert outcome.returncode == 0, outcome.stderr
        assert "Sanitizer" not in outcome.stderr and "runtime error" not in outcome.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_context_too_large(engine: str, tmp_path: Path, asan_build: fuzz.FuzzBuild,
                                  builds: dict[str, Build]) -> None:
    """seq_len 2^24 and the whole context asked for (-c; by default the engine allocates at most
    2048 positions): the KV caches (8 GiB) overflow a 32-bit size_t on the G4 and exceed what the
    host may allocate (ASan: 2 GiB): one line, exit 1, nothing allocated half-way."""
    with case(f"engine-{engine}/converted/context-too-large"):
        base = fuzz.tiny_model()
        cfg = dataclasses.replace(base.config, dim=64, n_heads=2, n_kv_heads=2, seq_len=1 << 24)
        rng = np.random.default_rng(0)
        tensors = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in cfg.tensor_shapes().items()}
        path = tmp_path / "model.bin"
        path.write_bytes(fmt.encode(Model(cfg, tensors, base.tokenizer), "little" if engine == "host-asan" else "big"))
        expected = {"host-asan": "out of memory allocating the KV cache", "g4": "too large for this machine's address space"}
        check_engine(run_engine(engine, [str(path), "-n", "2", "-c", str(1 << 24)], asan_build, builds), 1,
                     expected[engine])


def test_catalogue_covers_every_input() -> None:
    """Not a case: the table has a row for every input kind the issue names."""
    kinds = {label.split("/")[1] for label in CATALOGUE} if CATALOGUE else set()
    assert not kinds or {"checkpoint", "tokenizer", "converted"} <= kinds


_ = shutil  # (kept for local debugging of failing rows: copy the damaged file out)


# ------------------------------------------------------------------------------------------------
# GGUF files (toolkit rows): a tiny synthetic llama GGUF (toolkit/fuzz/tinygguf.py, 150 kB), damaged
# in its header bytes or written with a wrong piece, through `convert` and `run-qemu --target host`

def _gguf_tensor_info(d: bytearray, name: str) -> int:
    """Offset of the dimension count that follows tensor ``name`` in the tensor table."""
    key = struct.pack("<Q", len(name)) + name.encode()
    at = d.find(key)
    assert at > 0, name
    return at + len(key)


def _gguf_set(offset: int, code: str, value: int) -> Edit:
    return lambda d: struct.pack_into("<" + code, d, offset, value)


def _gguf_tensor_field(name: str, field: str, value: int) -> Edit:
    def edit(d: bytearray) -> None:
        at = _gguf_tensor_info(d, name)
        (n_dims,) = struct.unpack_from("<I", d, at)
        offset, code = {"ndim": (at, "I"), "dim0": (at + 4, "Q"), "type": (at + 4 + 8 * n_dims, "I")}[field]
        struct.pack_into("<" + code, d, offset, value)
    return edit


def _gguf_rename(old: str, new: str) -> Edit:
    def edit(d: bytearray) -> None:
        at = _gguf_tensor_info(d, old) - len(old)
        d[at:at + len(new)] = new.encode()
    return edit


KV0_TYPE = 24 + 8 + len("general.architecture")  # the first metadata entry's value type
GGUF_BYTE_CASES: list[tuple[str, Edit, str]] = [
    ("empty", truncate(lambda n: 0), "GGUF magic runs past the end"),
    ("bad-magic", lambda d: d.__setitem__(slice(0, 4), b"GGUX"), "bad magic"),
    ("version-1", _gguf_set(4, "I", 1), "version 1"),
    ("big-endian-version", _gguf_set(4, "I", 0x03000000), "big-endian"),
    ("tensor-count-huge", _gguf_set(8, "Q", 1 << 62), "tensors"),
    ("tensor-count-past-end", lambda d: struct.pack_into("<Q", d, 8, struct.unpack_from("<Q", d, 8)[0] + 1000), "0 dimensions"),
    ("kv-count-huge", _gguf_set(16, "Q", 0xFFFFFFFFFFFFFFFF), "metadata entries"),
    ("kv-count-past-end", lambda d: struct.pack_into("<Q", d, 16, struct.unpack_from("<Q", d, 16)[0] + 5), "metadata key claims"),
    ("string-length-huge", _gguf_set(24, "Q", 1 << 62), "claims"),
    ("string-length-past-end", _gguf_set(24, "Q", 10_000_000), "past the end"),
    ("value-type-unknown", _gguf_set(KV0_TYPE, "I", 99), "value type 99"),
    ("truncated-in-header", truncate(lambda n: 200), "past the end"),
    ("truncated-in-data", truncate(lambda n: n - 1000), "outside the file"),
    ("truncated-1-byte", truncate(lambda n: n - 1), "outside the file"),
    ("tensor-ndim-zero", _gguf_tensor_field("token_embd.weight", "ndim", 0), "0 dimensions"),
    ("tensor-ndim-huge", _gguf_tensor_field("token_embd.weight", "ndim", 0x7FFFFFFF), "dimensions"),
    ("tensor-dim-zero", _gguf_tensor_field("token_embd.weight", "dim0", 0), "absurd dimensions"),
    ("tensor-dim-huge", _gguf_tensor_field("token_embd.weight", "dim0", 1 << 40), "absurd dimensions"),
    ("tensor-type-unknown", _gguf_tensor_field("token_embd.weight", "type", 99), "unknown type 99"),
    ("tensor-duplicate-name", _gguf_rename("blk.1.attn_q.weight", "blk.0.attn_q.weight"), "appears twice"),
    ("tensor-unexpected-name", _gguf_rename("blk.1.attn_q.weight", "blk.1.attn_x.weight"), "unexpected tensor"),
]


def _written(**kw: object) -> Callable[[Path], Path]:
    from toolkit.fuzz import tinygguf
    return lambda path: tinygguf.write(path, **kw)  # type: ignore[arg-type]


GGUF_WRITTEN_CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("wrong-architecture", _written(arch="gptneox"), "architecture 'gptneox'"),
    ("missing-metadata", _written(drop=("llama.embedding_length",)), "llama.embedding_length is missing"),
    ("missing-vocabulary", _written(drop=("tokenizer.ggml.tokens",)), "tokenizer.ggml.tokens is missing"),
    ("missing-merges", _written(drop=("tokenizer.ggml.merges",)), "tokenizer.ggml.merges is missing"),
    ("tokenizer-model-unknown", _written(tokenizer_model="bert"), "tokenizer model 'bert'"),
    ("sentencepiece-add-eos", _written(tokenizer_model="llama", extra={"tokenizer.ggml.add_eos_token": 1}),
     "add_eos_token"),
    ("pre-tokenizer-unknown", _written(pre="tekken"), "pre-tokenizer 'tekken'"),
    ("merge-unknown-tokens", _written(extra_merges=("zq xy",)), "not in the vocabulary"),
    ("merge-without-space", _written(extra_merges=("Ġthe",)), "not in the vocabulary"),
    ("vocab-size-mismatch", _written(extra={"llama.vocab_size": 999}), "vocab_size"),
    ("bos-outside-vocabulary", _written(drop=("tokenizer.ggml.bos_token_id",),
                                        extra={"tokenizer.ggml.bos_token_id": 100000}), "outside the vocabulary"),
    ("alignment-not-power-of-2", _written(extra={"general.alignment": 48}), "alignment"),
    ("split-file-part", _written(extra={"split.no": 0, "split.count": 3}), "split into 3 GGUF files"),
    ("heads-not-dividing-dim", _written(drop=("llama.attention.head_count",),
                                        extra={"llama.attention.head_count": 5}), "n_heads 5"),
    ("context-zero", _written(drop=("llama.context_length",), extra={"llama.context_length": 0}), "seq_len = 0"),
    ("partial-rope", _written(drop=("llama.rope.dimension_count",), extra={"llama.rope.dimension_count": 8}),
     "partial rope"),
    ("tensor-missing", _written(missing="blk.1.ffn_up.weight"), "missing"),
    ("tensor-type-iq2_xxs", _written(tensor_types={"blk.0.ffn_down.weight": 16}), "IQ2_XXS"),
    ("tensor-type-k-quant-rows", _written(tensor_types={"blk.0.attn_q.weight": 12}), "absurd dimensions"),
]
GGUF_COMMANDS = ["convert", "run-qemu"]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from toolkit.fuzz import tinygguf
    return tinygguf.write(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def check_gguf_command(command: str, bad: Path, message: str, out_dir: Path, cache: Path) -> None:
    if command == "convert":
        result, before = convert(out_dir, str(bad), "--endian", "big")
        check_toolkit(result, 3, message, out_dir, before)
    else:
        models_before = sorted((cache / "models").glob("*")) if (cache / "models").exists() else []
        result = cli("run-qemu", "--target", "host", "--checkpoint", str(bad), "-n", "4", cache_dir=cache)
        check_toolkit(result, 3, message, out_dir, snapshot(out_dir))
        assert result.stdout == b""
        assert sorted((cache / "models").glob("*")) == models_before, "a converted file was left behind"


@pytest.mark.parametrize("label,edit,message", GGUF_BYTE_CASES, ids=[c[0] for c in GGUF_BYTE_CASES])
@pytest.mark.parametrize("command", GGUF_COMMANDS)
def test_toolkit_gguf_bytes(command: str, label: str, edit: Edit, message: str, tiny_gguf: Path, tmp_path: Path,
                            out_dir: Path, cache: Path) -> None:
    with case(f"toolkit/gguf/{command}/{label}"):
        data = bytearray(tiny_gguf.read_bytes())
        edit(data)
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(bytes(data))
        check_gguf_command(command, bad, message, out_dir, cache)


@pytest.mark.parametrize("label,write,message", GGUF_WRITTEN_CASES, ids=[c[0] for c in GGUF_WRITTEN_CASES])
@pytest.mark.parametrize("command", GGUF_COMMANDS)
def test_toolkit_gguf_content(command: str, label: str, write: Callable[[Path], Path], message: str,
                              tmp_path: Path, out_dir: Path, cache: Path) -> None:
    with case(f"toolkit/gguf/{command}/{label}"):
        check_gguf_command(command, write(tmp_path / "bad.gguf"), message, out_dir, cache)


def test_toolkit_gguf_valid_tiny_model_converts_and_runs(tiny_gguf: Path, out_dir: Path, cache: Path) -> None:
    """The positive control of the GGUF rows: the undamaged tiny model converts and runs."""
    with case("toolkit/gguf/valid-tiny-model-accepted"):
        result, _ = convert(out_dir, str(tiny_gguf), "--endian", "big")
        assert result.returncode == 0, result.stderr.decode()
        assert (out_dir / "model.bin").read_bytes()[:8] == fmt.MAGIC
        for extra in ([], ["--chat"]):
            ran = cli("run-qemu", "--target", "host", "--checkpoint", str(tiny_gguf), "-t", "0", "-n", "4",
                      "-i", "Once upon a time", *extra, cache_dir=cache)
            assert ran.returncode == 0, ran.stderr.decode(errors="replace")
            assert "Traceback" not in ran.stderr.decode(errors="replace")


# ------------------------------------------------------------------------------------------------
# GGUF-derived converted files (BPE tokenizer, ChatML): the toolkit's reader and the engine

@pytest.fixture(scope="module")
def bpe_model() -> Model:
    return fuzz.tiny_bpe_model()


def named_entry(d: bytearray, bo: str, name: str) -> tuple[int, int]:
    """(table offset, data offset) of the tensor ``name`` in a converted file."""
    (count,) = struct.unpack_from(bo + "I", d, 32)
    for i in range(count):
        at = fmt.HEADER_SIZE + i * fmt.ENTRY_SIZE
        if d[at:at + fmt.NAME_BYTES].rstrip(b"\0") == name.encode():
            return at, struct.unpack_from(bo + "Q", d, at + 56)[0]
    raise AssertionError(name)


def blob_word(name: str, index: int, value: int) -> ConvEdit:
    def edit(d: bytearray, bo: str) -> None:
        struct.pack_into(bo + "I", d, named_entry(d, bo, name)[1] + 4 * index, value)
    return edit


def rename(name: str, new: bytes) -> ConvEdit:
    return lambda d, bo: d.__setitem__(slice(named_entry(d, bo, name)[0], named_entry(d, bo, name)[0] + len(new)), new)


def blob_size_delta(name: str, delta: int) -> ConvEdit:
    """Change the blob's size in the table by ``delta`` bytes (wrapping: a huge size)."""
    def edit(d: bytearray, bo: str) -> None:
        at = named_entry(d, bo, name)[0] + 40
        struct.pack_into(bo + "I", d, at, (struct.unpack_from(bo + "I", d, at)[0] + delta) % (1 << 32))
    return edit


def merge_word(merge: int, field: int, value: int) -> ConvEdit:
    def edit(d: bytearray, bo: str) -> None:
        start = named_entry(d, bo, "bpe")[1]
        (n_special,) = struct.unpack_from(bo + "I", d, start + 4)
        struct.pack_into(bo + "I", d, start + 4 * (8 + 256 + n_special + 4 * merge + field), value)
    return edit


BPE_CONVERTED_CASES: list[tuple[str, ConvEdit, str]] = [
    ("tokenizer-kind-unknown", converted_field(80, "I", 7), "tokenizer kind"),
    ("flags-unknown", converted_field(84, "I", 0x80), "flags"),
    ("bpe-missing", rename("bpe", b"bpX"), "unexpected"),
    ("bpe-size-not-words", blob_size_delta("bpe", -2), "bpe"),
    ("bpe-size-too-small", blob_size_delta("bpe", -4 * 1000000), "too large: bpe"),
    ("bpe-reserved-word-set", blob_word("bpe", 0, 1), "bpe"),
    ("bpe-special-count-huge", blob_word("bpe", 1, 0xFFFFFFFF), "bpe"),
    ("bpe-merge-count-huge", blob_word("bpe", 2, 0x40000000), "bpe"),
    ("bpe-range-count-wrong", blob_word("bpe", 3, 1), "bpe"),
    ("bpe-bos-outside-vocabulary", blob_word("bpe", 4, 100000), "bpe"),
    ("bpe-add-bos-not-boolean", blob_word("bpe", 6, 2), "bpe"),
    ("bpe-pre-tokenizer-unknown", blob_word("bpe", 7, 5), "bpe"),
    ("bpe-byte-token-outside-vocabulary", blob_word("bpe", 8 + 65, 5000), "bpe"),
    ("bpe-merge-token-outside-vocabulary", merge_word(0, 3, 5000), "bpe"),
    ("bpe-merges-unsorted", merge_word(0, 0, 279), "bpe"),
    ("chat-missing", rename("chat", b"chaX"), "unexpected"),
    ("chat-flag-unknown", blob_word("chat", 0, 0x80), "chat"),
    ("chat-flag-without-blob", lambda d, bo: (converted_field(84, "I", 3)(d, bo), rename("chat", b"chaX")(d, bo)), "tensor: chaX"),
]


@pytest.mark.parametrize("label,edit,message", BPE_CONVERTED_CASES, ids=[c[0] for c in BPE_CONVERTED_CASES])
def test_toolkit_converted_bpe_file(label: str, edit: ConvEdit, message: str, bpe_model: Model, tmp_path: Path,
                                    out_dir: Path) -> None:
    with case(f"toolkit/converted-bpe/{label}"):
        data = bytearray(fmt.encode(bpe_model, "big"))
        edit(data, ">")
        bad = tmp_path / "bad.be.bin"
        bad.write_bytes(bytes(data))
        result, before = convert(out_dir, str(bad), "--endian", "little")
        check_toolkit(result, 3, TOOLKIT_FILE_MESSAGES[f"converted-bpe/{label}"], out_dir, before)


@pytest.mark.parametrize("label,edit,message", BPE_CONVERTED_CASES, ids=[c[0] for c in BPE_CONVERTED_CASES])
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_converted_bpe_file(engine: str, label: str, edit: ConvEdit, message: str, bpe_model: Model,
                                   tmp_path: Path, asan_build: fuzz.FuzzBuild, builds: dict[str, Build]) -> None:
    with case(f"engine-{engine}/converted-bpe/{label}"):
        endian = "little" if engine == "host-asan" else "big"
        data = bytearray(fmt.encode(bpe_model, endian))
        edit(data, fmt.ENDIANS[endian])
        path = tmp_path / "model.bin"
        path.write_bytes(bytes(data))
        check_engine(run_engine(engine, [str(path), "-n", "4"], asan_build, builds), 1, message)


LONG = b"Once upon a time, there was a tiny model. " * 20
# label, model ("chat" or "plain": without a chat template), engine arguments, exit status, message
# (None: normal input, exit 0, anything on stderr but no sanitizer report)
BPE_ENGINE_CASES: list[tuple[str, str, list[str | bytes], int, str | None]] = [
    ("prompt-empty", "chat", ["-t", "0", "-i", ""], 0, None),
    ("prompt-invalid-utf8", "chat", ["-t", "0", "-n", "12", "-i", b"\xff\xfe bad \xc3\x80\x80 \xe2\x82 \xf0\x9f"], 0, None),
    ("prompt-control-tokens", "chat", ["-t", "0", "-n", "12", "-i", b"<|im_start|><|im_end|><|endoftext|><|im_"], 0, None),
    ("prompt-longer-than-context", "chat", ["-t", "0", "-c", "8", "-i", LONG], 0, None),
    ("encode-invalid-utf8", "chat", ["-m", "encode", "-i", b"\xff\xfe\xc3 \x80 caf\xc3\xa9 12345 it's"], 0, None),
    ("encode-longer-than-context", "chat", ["-m", "encode", "-c", "8", "-i", LONG], 0, None),
    ("chat-invalid-utf8", "chat", ["-m", "chat", "-t", "0", "-n", "8", "-i", b"\xff\xfe \xc3(\xe2\x82"], 0, None),
    ("chat-longer-than-context", "chat", ["-m", "chat", "-c", "8", "-i", LONG], 3, "has filled the context"),
    ("chat-system-longer-than-context", "chat", ["-m", "chat", "-y", LONG, "-i", "hi"], 3, "has filled the context"),
    ("chat-without-template", "plain", ["-m", "chat", "-i", "hi"], 2, "no chat template"),
    ("system-prompt-without-chat", "chat", ["-y", "be brief", "-i", "hi"], 2, "-m chat"),
    ("mode-unknown", "chat", ["-m", "translate"], 2, "mode"),
    ("context-zero", "chat", ["-c", "0"], 2, "context"),
    ("context-not-a-number", "chat", ["-c", "many"], 2, "context"),
    ("context-above-model", "chat", ["-c", "100000", "-n", "4"], 0, None),
    ("show-ids-3", "chat", ["-x", "3"], 2, "-x"),
]


@pytest.mark.parametrize("label,kind,args,code,message", BPE_ENGINE_CASES, ids=[c[0] for c in BPE_ENGINE_CASES])
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_bpe_model(engine: str, label: str, kind: str, args: list[str | bytes], code: int,
                          message: str | None, bpe_model: Model, tmp_path: Path, asan_build: fuzz.FuzzBuild,
                          builds: dict[str, Build]) -> None:
    with case(f"engine-{engine}/bpe/{label}"):
        model = bpe_model if kind == "chat" else dataclasses.replace(bpe_model, chat=None)
        path = tmp_path / "model.bin"
        path.write_bytes(fmt.encode(model, "little" if engine == "host-asan" else "big"))
        outcome = run_engine(engine, [str(path), *args], asan_build, builds)
        if message is not None:
            check_engine(outcome, code, message)
        else:
            assert outcome.returncode == code, outcome.stderr
            assert "Sanitizer" not in outcome.stderr and "runtime error" not in outcome.stderr, outcome.stderr
