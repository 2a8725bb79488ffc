"""Trust: ppc-llm never touches what the user did not give it, reads every input once (pipes and
devices too, bounded by the format), and meets ordinary environment problems with one line and a
documented exit code. Each row is counted in the bad-input catalogue.

Devices and FIFOs are made here with mknod / mkfifo in a temporary folder (never the machine's
/dev/null); read-only disks are real read-only tmpfs mounts (the suite runs as root, as CI does).
"""

from __future__ import annotations

import os
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import catalogue_case
from toolkit import format as fmt
from toolkit.models.llama2c import parse_tokenizer
from toolkit.outputs import OWNER_FILE
from toolkit.resources import llama2_tokenizer

from .conftest import cli

DATA = Path(__file__).resolve().parents[2] / "toolkit" / "data" / "models"
CHECKPOINT = DATA / "stories260K.bin"
TOKENIZER = DATA / "tok512.bin"
REPO = Path(__file__).resolve().parents[2]


def case(label: str) -> AbstractContextManager[None]:
    return catalogue_case(f"trust/{label}")


def tree(folder: Path) -> dict[str, tuple[int, bytes | str]]:
    """Everything under ``folder`` without following links: path -> (mode kind, content/target)."""
    found: dict[str, tuple[int, bytes | str]] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            info = os.lstat(path)
            kind = stat.S_IFMT(info.st_mode)
            content: bytes | str = b""
            if stat.S_ISREG(info.st_mode):
                content = path.read_bytes()
            elif stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            found[str(path.relative_to(folder))] = (kind, content)
    return found


def refused(result: subprocess.CompletedProcess[bytes], code: int, message: str) -> None:
    err = result.stderr.decode(errors="replace")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("+ ")]
    assert result.returncode == code, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), err
    assert len(lines) == 1 or lines[1].startswith("hint: "), err
    assert message.lower() in err.lower(), (message, err)


def run_in(folder: Path, *args: str, env: dict[str, str] | None = None, cache: Path | None = None,
           stdin: bytes | None = None, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
    """`ppc-llm ARGS` started in ``folder`` (relative paths are the user's)."""
    full = dict(os.environ if env is None else env)
    full["PYTHONPATH"] = str(REPO) + os.pathsep + full.get("PYTHONPATH", "")
    if cache is not None:
        full["PPC_LLM_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=folder, input=stdin, capture_output=True,
                          env=full, timeout=timeout, check=False)


# ------------------------------------------------------------------------------------------------
# Outputs: replaced only when ppc-llm wrote them

def test_build_relative_default_output(tmp_path: Path, cache: Path) -> None:
    """`ppc-llm build --target T` exactly as the README writes it: build/T relative to here."""
    with case("build/relative-default-output"):
        result = run_in(tmp_path, "build", "--target", "host", cache=cache)
        assert result.returncode == 0, result.stderr.decode()
        assert (tmp_path / "build" / "host" / "ppcllm").is_file()
        again = run_in(tmp_path, "build", "--target", "host", "-o", "out/rel", cache=cache)
        assert again.returncode == 0, again.stderr.decode()
        assert (tmp_path / "out" / "rel" / "ppcllm").is_file()
        rebuilt = run_in(tmp_path, "build", "--target", "host", "-o", "out/rel", cache=cache)
        assert rebuilt.returncode == 0, rebuilt.stderr.decode()  # its own previous output: replaced


FOREIGN_DIRS = ["file-inside", "empty-subfolder", "symlink-inside", "build-plus-user-file"]


@pytest.mark.parametrize("kind", FOREIGN_DIRS)
def test_build_refuses_foreign_folder(kind: str, tmp_path: Path, cache: Path) -> None:
    with case(f"build/refuses-{kind}"):
        out = tmp_path / "out"
        if kind == "build-plus-user-file":
            assert run_in(tmp_path, "build", "--target", "host", "-o", "out", cache=cache).returncode == 0
            (out / "src" / "notes.txt").write_text("mine")
        else:
            out.mkdir()
            {"file-inside": lambda: (out / "a.txt").write_text("mine"),
             "empty-subfolder": lambda: (out / "sub").mkdir(),
             "symlink-inside": lambda: (out / "link").symlink_to("/etc")}[kind]()
        before = tree(tmp_path)
        result = run_in(tmp_path, "build", "--target", "host", "-o", "out", cache=cache)
        refused(result, 2, "did not write")
        assert tree(tmp_path) == before


def test_build_output_dot_keeps_the_project(tmp_path: Path, cache: Path) -> None:
    """`-o .` in a folder of the user's own files (it once deleted the project)."""
    with case("build/output-dot"):
        (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
        before = tree(tmp_path)
        refused(run_in(tmp_path, "build", "--target", "host", "-o", ".", cache=cache), 2, "did not write")
        assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["build", "emit-source", "release"])
@pytest.mark.parametrize("kind", ["regular-file", "symlink-to-folder", "fifo", "char-device"])
def test_folder_outputs_refuse_non_folders(command: str, kind: str, tmp_path: Path, cache: Path) -> None:
    with case(f"{command}/refuses-{kind}"):
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "keep.txt").write_text("keep")
        out = tmp_path / "out"
        make_node(out, kind, elsewhere)
        before = tree(tmp_path)
        args = {"build": ["build", "--target", "host", "-o", "out"],
                "emit-source": ["build", "--target", "g4", "--emit-source", "out"],
                "release": ["release", "--targets", "g3", "-o", "out"]}[command]
        refused(run_in(tmp_path, *args, cache=cache), 2, "not a directory ppc-llm wrote")
        assert tree(tmp_path) == before


def make_node(path: Path, kind: str, elsewhere: Path) -> None:
    if kind == "regular-file":
        path.write_text("the user's notes")
    elif kind == "symlink-to-folder":
        path.symlink_to(elsewhere)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a null device of our own


@pytest.mark.parametrize("kind", ["foreign-file", "symlink", "fifo", "char-device", "directory"])
def test_convert_refuses_what_it_did_not_write(kind: str, tmp_path: Path) -> None:
    with case(f"convert/refuses-{kind}"):
        out = tmp_path / "model.bin"
        target = tmp_path / "target.bin"
        target.write_bytes(fmt.MAGIC + b"a converted file the link points to")
        {"foreign-file": lambda: out.write_text("the user's file"),
         "symlink": lambda: out.symlink_to(target),
         "fifo": lambda: os.mkfifo(out),
         "char-device": lambda: os.mknod(out, 0o666 | stat.S_IFCHR, os.makedev(1, 3)),
         "directory": lambda: out.mkdir()}[kind]()
        before = tree(tmp_path)
        result = run_in(tmp_path, "convert", str(CHECKPOINT), "-z", str(TOKENIZER), "-o", "model.bin", timeout=60)
        refused(result, 2, "ppc-llm wrote")
        assert tree(tmp_path) == before


def test_convert_replaces_its_own_output(tmp_path: Path) -> None:
    with case("convert/replaces-own-output"):
        first = run_in(tmp_path, "convert", str(CHECKPOINT), "-z", str(TOKENIZER), "-o", "m.bin")
        assert first.returncode == 0, first.stderr.decode()
        second = run_in(tmp_path, "convert", str(CHECKPOINT), "-z", str(TOKENIZER), "--quant", "q8_0", "-o", "m.bin")
        assert second.returncode == 0, second.stderr.decode()
        assert fmt.decode((tmp_path / "m.bin").read_bytes(), "m.bin").quant == "q8_0"


@pytest.mark.parametrize("how", ["same-name", "hard-link"])
def test_convert_refuses_output_that_is_the_input(how: str, tmp_path: Path) -> None:
    """Compared by device and inode: a hard link under another name is the same file."""
    with case(f"convert/output-is-input-{how}"):
        assert run_in(tmp_path, "convert", str(CHECKPOINT), "-z", str(TOKENIZER), "-o", "m.be.bin").returncode == 0
        source = "m.be.bin"
        if how == "hard-link":
            os.link(tmp_path / "m.be.bin", tmp_path / "other.bin")
            source = "other.bin"
        before = tree(tmp_path)
        refused(run_in(tmp_path, "convert", source, "--endian", "little", "-o", "m.be.bin"), 2, "input")
        assert tree(tmp_path) == before


def test_release_refuses_output_holding_the_input(tmp_path: Path, cache: Path) -> None:
    """`release -c models/x.bin -o models` once deleted the model."""
    with case("release/output-holds-input"):
        models = tmp_path / "models"
        models.mkdir()
        (models / "x.bin").write_bytes(CHECKPOINT.read_bytes())
        before = tree(tmp_path)
        result = run_in(tmp_path, "release", "--targets", "g3", "-c", "models/x.bin", "-z", str(TOKENIZER),
                        "-o", "models", cache=cache)
        refused(result, 2, "")
        assert tree(tmp_path) == before


def test_release_refuses_input_inside_its_own_output(tmp_path: Path, cache: Path) -> None:
    """A release folder ppc-llm wrote, but the model given lies inside it: refused by inode."""
    with case("release/input-inside-own-output"):
        assert run_in(tmp_path, "release", "--targets", "g3", "-o", "dist", cache=cache).returncode == 0
        before = tree(tmp_path)
        result = run_in(tmp_path, "release", "--targets", "g3", "-c", "dist/g3/stories260K.be.bin", "-o", "dist",
                        cache=cache)
        refused(result, 2, "input")
        assert tree(tmp_path) == before


def test_release_and_bundle_replace_their_own_output(tmp_path: Path, cache: Path) -> None:
    with case("release/replaces-own-output"):
        for _ in range(2):
            result = run_in(tmp_path, "release", "--targets", "g3", "-o", "dist", cache=cache)
            assert result.returncode == 0, result.stderr.decode()
            bundle = run_in(tmp_path, "build", "--target", "g4", "--emit-source", "src", cache=cache)
            assert bundle.returncode == 0, bundle.stderr.decode()
        assert (tmp_path / "dist" / OWNER_FILE).is_file() and (tmp_path / "src" / OWNER_FILE).is_file()
        check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=tmp_path / "dist", check=False)
        assert check.returncode == 0


# ------------------------------------------------------------------------------------------------
# Inputs that are not regular files: read once, bounded by the format

def converted_reference(tmp_path: Path) -> bytes:
    ref = run_in(tmp_path, "convert", str(CHECKPOINT), "-z", str(TOKENIZER), "-o", "ref.bin")
    assert ref.returncode == 0, ref.stderr.decode()
    return (tmp_path / "ref.bin").read_bytes()


def test_checkpoint_from_stdin_and_fifo(tmp_path: Path) -> None:
    with case("inputs/stdin-and-fifo"):
        expected = converted_reference(tmp_path)
        piped = run_in(tmp_path, "convert", "/dev/stdin", "-z", str(TOKENIZER), "-o", "stdin.bin",
                       stdin=CHECKPOINT.read_bytes())
        assert piped.returncode == 0, piped.stderr.decode()
        assert (tmp_path / "stdin.bin").read_bytes() == expected
        fifo = tmp_path / "tok.fifo"
        os.mkfifo(fifo)
        feeder = threading.Thread(target=lambda: fifo.write_bytes(TOKENIZER.read_bytes()))
        feeder.start()
        fed = run_in(tmp_path, "convert", str(CHECKPOINT), "-z", "tok.fifo", "-o", "fifo.bin", timeout=120)
        feeder.join(timeout=60)
        assert fed.returncode == 0, fed.stderr.decode()
        assert (tmp_path / "fifo.bin").read_bytes() == expected


def endless(fifo: Path, head: bytes) -> threading.Thread:
    """Feed ``head`` then zeros into ``fifo`` until the reader goes away."""
    def feed() -> None:
        try:
            with fifo.open("wb") as out:
                out.write(head)
                block = bytes(1 << 16)
                while True:
                    out.write(block)
        except (BrokenPipeError, OSError):
            return
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("what", ["checkpoint", "tokenizer"])
def test_endless_stream_stops_at_the_format_bound(what: str, tmp_path: Path) -> None:
    """A valid start then zeros forever: an error at the size the start allows, not the OOM killer."""
    with case(f"inputs/endless-{what}"):
        fifo = tmp_path / "fifo-in"
        os.mkfifo(fifo)
        endless(fifo, (CHECKPOINT if what == "checkpoint" else TOKENIZER).read_bytes())
        args = ["fifo-in", "-z", str(TOKENIZER)] if what == "checkpoint" else [str(CHECKPOINT), "-z", "fifo-in"]
        result = run_in(tmp_path, "convert", *args, "-o", "out.bin", timeout=120)
        refused(result, 3, "goes on past")
        assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize("what", ["checkpoint", "tokenizer"])
def test_zero_device_is_refused_at_once(what: str, tmp_path: Path) -> None:
    with case(f"inputs/zero-device-{what}"):
        zero = tmp_path / "zero"
        os.mknod(zero, 0o666 | stat.S_IFCHR, os.makedev(1, 5))  # our own /dev/zero node
        args = ["zero", "-z", str(TOKENIZER)] if what == "checkpoint" else [str(CHECKPOINT), "-z", "zero"]
        refused(run_in(tmp_path, "convert", *args, "-o", "out.bin", timeout=60), 3, "out of range")


def test_gguf_from_a_pipe_is_refused(tmp_path: Path) -> None:
    with case("inputs/gguf-from-pipe"):
        from toolkit.fuzz import tinygguf

        tinygguf.write(tmp_path / "tiny.gguf")
        result = run_in(tmp_path, "convert", "/dev/stdin", "-o", "out.bin", stdin=(tmp_path / "tiny.gguf").read_bytes())
        refused(result, 3, "regular file")


# ------------------------------------------------------------------------------------------------
# The bundled Llama 2 vocabulary

def llama2_checkpoint(path: Path) -> None:
    """A random-weight llama2.c checkpoint of the Llama 2 vocabulary (32000 tokens), tiny dims."""
    dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 2, 32000, 32
    floats = vocab * dim + layers * (2 * dim + 4 * dim * dim + 3 * hidden * dim) + dim + seq * (dim // heads)
    weights = np.random.default_rng(7).standard_normal(floats).astype("<f4") * np.float32(0.1)
    path.write_bytes(struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) + weights.tobytes())


def test_llama2_vocabulary_checkpoint_converts_without_tokenizer(tmp_path: Path, cache: Path) -> None:
    """`ppc-llm convert weights.bin --endian big`, as users type it for stories15M/42M/110M."""
    with case("convert/llama2-vocabulary-default"):
        llama2_checkpoint(tmp_path / "weights.bin")
        result = run_in(tmp_path, "convert", "weights.bin", "--endian", "big")
        err = result.stderr.decode()
        assert result.returncode == 0, err
        assert "bundled tokenizer.bin" in err and "Llama 2" in err, err
        model = fmt.decode((tmp_path / "weights.be.bin").read_bytes(), "weights.be.bin")
        assert model.tokenizer == parse_tokenizer(llama2_tokenizer().read_bytes(), "tokenizer.bin")
        run = run_in(tmp_path, "run-qemu", "--target", "host", "--checkpoint", "weights.bin", "-n", "8", "-s", "1",
                     cache=cache)
        assert run.returncode == 0 and "bundled tokenizer.bin" in run.stderr.decode(), run.stderr.decode()


def test_other_vocabulary_still_needs_its_tokenizer(tmp_path: Path) -> None:
    with case("convert/other-vocabulary-needs-tokenizer"):
        refused(run_in(tmp_path, "convert", str(CHECKPOINT), "--endian", "big"), 3, "--tokenizer")


# ------------------------------------------------------------------------------------------------
# Ordinary environment problems

@contextmanager
def read_only_disk(folder: Path) -> Iterator[Path]:
    mount = folder / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("command", ["convert", "build", "release", "emit-source"])
def test_read_only_disk(command: str, tmp_path: Path, cache: Path) -> None:
    with case(f"env/read-only-disk-{command}"):
        with read_only_disk(tmp_path) as ro:
            args = {"convert": ["convert", str(CHECKPOINT), "-z", str(TOKENIZER), "-o", "ro/m.bin"],
                    "build": ["build", "--target", "host", "-o", "ro/b"],
                    "release": ["release", "--targets", "g3", "-o", "ro/dist"],
                    "emit-source": ["build", "--target", "g4", "--emit-source", "ro/src"]}[command]
            refused(run_in(tmp_path, *args, cache=cache), 3, "read-only file system")
            assert list(ro.iterdir()) == []


@pytest.mark.parametrize("command", ["convert", "build", "emit-source"])
def test_name_too_long(command: str, tmp_path: Path, cache: Path) -> None:
    with case(f"env/name-too-long-{command}"):
        name = "n" * 300
        args = {"convert": ["convert", str(CHECKPOINT), "-z", str(TOKENIZER), "-o", name],
                "build": ["build", "--target", "host", "-o", name],
                "emit-source": ["build", "--target", "g4", "--emit-source", name]}[command]
        refused(run_in(tmp_path, *args, cache=cache), 3, "name too long")
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["yesterday", "-1", "1e9", "99999999999999999999"])
def test_bad_source_date_epoch(value: str, tmp_path: Path, cache: Path) -> None:
    with case(f"env/source-date-epoch-{value}"):
        env = dict(os.environ, SOURCE_DATE_EPOCH=value)
        refused(run_in(tmp_path, "release", "--targets", "g3", "-o", "dist", env=env, cache=cache), 2,
                "SOURCE_DATE_EPOCH")
        assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("value", ["1e10", "1e300"])
def test_huge_timeout(value: str, tmp_path: Path, cache: Path) -> None:
    with case(f"env/huge-timeout-{value}"):
        refused(run_in(tmp_path, "run-qemu", "--target", "host", "-n", "4", "--timeout", value, cache=cache), 2,
                "--timeout")


def test_closed_stdout(tmp_path: Path, cache: Path) -> None:
    """stdout closed (`>&-`) or open read-only: one line, exit 3, before any work."""
    with case("env/closed-stdout"):
        for redirect in (">&-", "1</dev/null"):
            command = f"{sys.executable} -m toolkit run-qemu --target host -n 4 -s 1 {redirect}"
            env = dict(os.environ, PPC_LLM_CACHE=str(cache), PYTHONPATH=str(REPO))
            result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, env=env, check=False)
            refused(result, 3, "standard output is closed")


def test_reader_of_stdout_goes_away(tmp_path: Path, cache: Path) -> None:
    """`ppc-llm run-qemu ... | head -c 16`: quiet, exit 0 (as `yes | head` ends), no traceback."""
    with case("env/stdout-reader-goes-away"):
        command = (f"{sys.executable} -m toolkit run-qemu --target host -n 256 -t 0 -i 'Once upon a time' | head -c 16;"
                   " echo \" status=${PIPESTATUS[0]}\"")
        env = dict(os.environ, PPC_LLM_CACHE=str(cache), PYTHONPATH=str(REPO))
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, env=env, check=False)
        err = result.stderr.decode(errors="replace")
        assert result.stdout.decode().endswith(" status=0\n") and result.stdout.startswith(b"Once upon a time"), \
            (result.stdout, err)
        assert "Traceback" not in err and "error" not in err.lower(), err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_start_up(sig: signal.Signals, tmp_path: Path) -> None:
    """A signal before the CLI has finished importing: "interrupted", exit 130, no traceback."""
    with case(f"env/signal-at-start-up-{sig.name}"):
        env = dict(os.environ, PPC_LLM_TEST_FAULT="startup:STOP", PYTHONPATH=str(REPO))
        proc = subprocess.Popen([sys.executable, "-m", "toolkit", "targets"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        assert proc.stderr.readline() == b"startup\n"
        time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and err == b"interrupted\n", (proc.returncode, err)
        assert out == b""
