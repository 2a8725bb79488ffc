"""The README's command blocks: every fenced ``sh`` block with the comment line before it that says
how it is run and where it starts (the README's "How to read the command blocks").

    <!-- block: ci, starts: empty, id: user-build, makes: build/g4/ppcllm g4-src/Makefile -->
    ```sh
    ppc-llm build --target g4
    ```

Keys: ``block`` (ci, long or entry), ``starts`` (repo, empty, or above: the folder the block
before it left, long blocks only), ``id`` (unique), and optionally ``makes`` (files the block must
leave, relative to where it starts, separated by spaces), ``prints`` (text its stdout must
contain) and ``needs`` (docker: a container engine that answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO

README = REPO / "README.md"
TIERS = ("ci", "long", "entry")
STARTS = ("repo", "empty", "above")
NEEDS = ("docker",)
KEYS = ("block", "starts", "id", "makes", "prints", "needs")
_FENCE = re.compile(r"^(?P<indent> *)(?P<ticks>```+)(?P<info>[^`]*)$")
_MARKER = re.compile(r"^ *<!-- (?P<body>block: .*?) -->\s*$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ABSOLUTE = re.compile(r"""(?:^|[\s'"=(])((?:/|~/)[\w.][^\s'"]*)""", re.MULTILINE)  # /x, ~/x after a space, quote, = or (
SHELL_INFOS = ("sh", "bash", "shell", "console", "zsh", "shell-session")


@dataclass(frozen=True)
class Block:
    """One fenced shell block: its line in the README, its comment's fields and its text."""

    line: int  # 1-based line of the opening fence
    info: str  # the fence's info string (``sh``)
    fields: dict[str, str]  # the comment's keys; empty when there is no comment
    text: str  # the commands, as written (the fence's indentation removed)

    @property
    def tier(self) -> str:
        return self.fields.get("block", "")

    @property
    def starts(self) -> str:
        return self.fields.get("starts", "")

    @property
    def id(self) -> str:
        return self.fields.get("id", f"line-{self.line}")

    @property
    def makes(self) -> list[str]:
        return self.fields.get("makes", "").split()

    @property
    def prints(self) -> str:
        return self.fields.get("prints", "")

    @property
    def needs(self) -> str:
        return self.fields.get("needs", "")

    def problems(self) -> list[str]:
        """What is wrong with this block's comment (nothing for a valid one)."""
        where = f"README.md:{self.line}"
        if self.info != "sh":
            return [f"{where}: a shell block is fenced ```{self.info}: write ```sh (and its comment)"]
        if not self.fields:
            return [f"{where}: sh block without a `<!-- block: ... -->` comment on the line before"]
        found = [f"{where}: unknown key {key!r}" for key in self.fields if key not in KEYS]
        for key, allowed in (("block", TIERS), ("starts", STARTS)):
            if self.fields.get(key) not in allowed:
                found.append(f"{where}: {key}: {self.fields.get(key)!r} is not one of {', '.join(allowed)}")
        if not _ID.match(self.fields.get("id", "")):
            found.append(f"{where}: id {self.fields.get('id')!r}: lower-case letters, digits and '-'")
        if self.starts == "above" and self.tier != "long":
            found.append(f"{where}: starts: above is for long blocks only (a ci block brings its own files)")
        if self.needs and self.needs not in NEEDS:
            found.append(f"{where}: needs: {self.needs!r} is not one of {', '.join(NEEDS)}")
        found += [f"{where}: makes: {path!r} is not a relative path inside the folder"
                  for path in self.makes if path.startswith("/") or ".." in Path(path).parts]
        found += [f"{where}: {match[1]!r}: an absolute path (blocks use relative paths)"
                  for match in _ABSOLUTE.finditer(self.text)]
        return found


def parse_fields(body: str) -> dict[str, str]:
    """``block: ci, starts: repo, id: x`` -> {"block": "ci", ...}; a part without ': ' is kept as
    a key with an empty value, so the check reports it."""
    fields: dict[str, str] = {}
    for part in body.split(", "):
        key, _, value = part.partition(": ")
        fields[key.strip()] = value.strip()
    return fields


def parse(text: str) -> list[Block]:
    """Every fenced block whose info string names a shell, in order."""
    lines = text.split("\n")
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        indent, ticks, info = match["indent"], match["ticks"], match["info"].strip()
        end = index + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        if info in SHELL_INFOS:
            body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[index + 1:end]]
            blocks.append(Block(index + 1, info, _marker_before(lines, index), "\n".join(body) + "\n"))
        index = end + 1
    return blocks


def _marker_before(lines: list[str], fence: int) -> dict[str, str]:
    if fence == 0:
        return {}
    match = _MARKER.match(lines[fence - 1])
    return parse_fields(match["body"]) if match else {}


def readme_blocks() -> list[Block]:
    return parse(README.read_text(encoding="utf-8"))


def ci_blocks() -> list[Block]:
    return [block for block in readme_blocks() if block.tier == "ci"]
