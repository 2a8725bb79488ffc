"""``ppc-llm release``: dist/ with, per target, the static binary, the converted model, a README
for the person copying it onto the machine and a manifest; and dist/SHA256SUMS.

Reproducible: the same commit gives the same bytes (the builds are deterministic, file lists are
sorted, no timestamps are written, file times are set to $SOURCE_DATE_EPOCH, 0 by default).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path


from . import __version__
from .errors import UsageError
from .fsutil import sha256_file, staged_dir
from .outputs import OWNER_FILE, check_inputs_outside, check_output_dir, write_owner_manifest
from .pipeline import build, convert, open_input
from .render import ENGINE_PROGRAM, template_environment
from .targets import Target
from .toolchain import Build

SUMS = "SHA256SUMS"


MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: what every file system and os.utime accept


def _epoch() -> int:
    """$SOURCE_DATE_EPOCH (seconds since 1970, as reproducible-builds.org defines it), 0 by default."""
    text = os.environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        epoch = int(text.strip())
    except ValueError:
        epoch = -1
    if not 0 <= epoch <= MAX_EPOCH:
        raise UsageError(f"SOURCE_DATE_EPOCH={text!r} is not a number of seconds in [0, {MAX_EPOCH}]",
                         "unset it, or set it to a Unix time such as the last commit's: git log -1 --format=%ct")
    return epoch


def _readme(target: Target, build: Build, model: str) -> str:
    env = template_environment("bundle")
    note = f"the model, {target.endian}-endian, tokenizer embedded"
    return env.get_template("RELEASE.txt.j2").render(
        version=__version__, target={"name": target.name, "description": target.description}, bits=target.word_bits,
        compiler=build.manifest["compiler"], compiler_version=build.manifest["compiler_version"],
        model=model, model_note=note)


def _target_folder(folder: Path, target: Target, build: Build, model_path: Path, model_name: str) -> None:
    folder.mkdir()
    shutil.copyfile(build.engine, folder / ENGINE_PROGRAM)
    (folder / ENGINE_PROGRAM).chmod(0o755)
    shutil.copyfile(model_path, folder / model_name)
    (folder / "README.txt").write_text(_readme(target, build, model_name), encoding="utf-8")
    manifest = {key: build.manifest[key] for key in sorted(build.manifest) if key != "binaries"}
    manifest["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                         for p in sorted(folder.iterdir())}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def sha256sums(root: Path) -> str:
    """`sha256sum` format for every file under ``root`` (sorted, paths relative), but SHA256SUMS."""
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and p.relative_to(root).as_posix() not in (SUMS, OWNER_FILE))
    return "".join(f"{sha256_file(p)}  {p.relative_to(root).as_posix()}\n" for p in files)


def write_release(targets: Sequence[Target], checkpoint: Path, tokenizer: Path | None, dest: Path, cache: Path,
                  toolchain: str | None = None, engine: str | None = None) -> list[Path]:
    """Build every target and write ``dest`` (replaced whole); the files written, sorted."""
    epoch = _epoch()
    dest = Path(os.path.abspath(dest))
    check_output_dir(dest)
    check_inputs_outside(dest, [checkpoint, tokenizer])
    source = open_input(checkpoint, tokenizer)  # read once for every target
    with staged_dir(dest) as work:
        for target in sorted(targets, key=lambda t: t.name):
            engine_build = build(target, cache, toolchain, engine)
            model_path = convert(source, target, cache).path
            model_name = f"{checkpoint.name.split('.')[0]}.{'be' if target.endian == 'big' else 'le'}.bin"
            _target_folder(work / target.name, target, engine_build, model_path, model_name)
        (work / SUMS).write_text(sha256sums(work), encoding="utf-8")
        write_owner_manifest(work, "release")
        for path in [work, *work.rglob("*")]:
            os.utime(path, (epoch, epoch))
    return sorted(p for p in dest.rglob("*") if p.is_file())
