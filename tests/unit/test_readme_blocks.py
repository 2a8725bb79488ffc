"""The README's command blocks are all marked (tests/readme_blocks.py): every ``sh`` block says how
it is run and where it starts, every ``long`` block is in the README's long-tier table, and the
``entry`` blocks are the scripts CI itself runs."""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO
from tests.readme_blocks import README, Block, parse, readme_blocks

pytestmark = pytest.mark.readme

LONG_TIER_HEADING = "## The long tier"


def test_every_shell_block_has_a_valid_comment() -> None:
    blocks = readme_blocks()
    problems = [problem for block in blocks for problem in block.problems()]
    assert not problems, "\n".join(problems)
    assert {(block.tier, block.starts) for block in blocks} >= {("ci", "repo"), ("ci", "empty"), ("entry", "repo")}


def test_block_ids_are_unique() -> None:
    ids = [block.id for block in readme_blocks()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_a_block_starting_above_has_one_above_it() -> None:
    blocks = readme_blocks()
    assert blocks[0].starts != "above"


def _long_tier_rows() -> dict[str, list[str]]:
    """The long-tier table: block id -> its other cells."""
    text = README.read_text(encoding="utf-8")
    assert LONG_TIER_HEADING in text, f"README.md has no {LONG_TIER_HEADING!r} section"
    section = text.split(LONG_TIER_HEADING, 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(r"`[a-z0-9-]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_long_block_is_in_the_long_tier_table_with_a_time() -> None:
    rows = _long_tier_rows()
    long_ids = {block.id for block in readme_blocks() if block.tier == "long"}
    assert long_ids, "no long blocks: then drop the long-tier table"
    assert set(rows) == long_ids, f"table {sorted(rows)} vs long blocks {sorted(long_ids)}"
    assert all(len(cells) == 3 and cells[-1] for cells in rows.values()), rows  # section, what, time


def test_entry_blocks_are_the_scripts_ci_runs() -> None:
    entries = [block for block in readme_blocks() if block.tier == "entry"]
    commands = [line for block in entries for line in block.text.splitlines() if line.strip()]
    assert commands == ["bash scripts/quickstart.sh", "bash scripts/test.sh"]
    assert all((REPO / command.split()[1]).is_file() for command in commands)
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_the_quick_starts_story_is_a_ci_block() -> None:
    """scripts/quickstart.sh ends by telling the story; the same command is in a block CI runs."""
    last = (REPO / "scripts" / "quickstart.sh").read_text(encoding="utf-8").strip().splitlines()[-1]
    match = re.fullmatch(r'exec \.venv/bin/(ppc-llm .*?) "\$@"', last)
    assert match, last
    ci_lines = [line.split("#")[0].strip() for block in readme_blocks() if block.tier == "ci"
                for line in block.text.splitlines()]
    assert match[1] in ci_lines


# The parser itself, on small READMEs.

def _one(text: str) -> Block:
    blocks = parse(text)
    assert len(blocks) == 1
    return blocks[0]


def test_an_unmarked_block_is_reported() -> None:
    block = _one("Text\n\n```sh\nls\n```\n")
    assert block.problems() == ["README.md:3: sh block without a `<!-- block: ... -->` comment on the line before"]


def test_a_comment_not_right_before_the_fence_does_not_count() -> None:
    assert _one("<!-- block: ci, starts: repo, id: a -->\n\n```sh\nls\n```\n").problems()


def test_a_bash_fence_is_reported() -> None:
    block = _one("<!-- block: ci, starts: repo, id: a -->\n```bash\nls\n```\n")
    assert block.problems() == ["README.md:2: a shell block is fenced ```bash: write ```sh (and its comment)"]


@pytest.mark.parametrize("comment, problem", [
    ("block: often, starts: repo, id: a", "block: 'often' is not one of ci, long, entry"),
    ("block: ci, starts: home, id: a", "starts: 'home' is not one of repo, empty, above"),
    ("block: ci, starts: repo", "id None: lower-case letters, digits and '-'"),
    ("block: ci, starts: above, id: a", "starts: above is for long blocks only (a ci block brings its own files)"),
    ("block: ci, starts: repo, id: a, colour: red", "unknown key 'colour'"),
    ("block: ci, starts: repo, id: a, needs: gpu", "needs: 'gpu' is not one of docker"),
    ("block: ci, starts: repo, id: a, makes: ../out", "makes: '../out' is not a relative path inside the folder"),
    ("block: ci, starts: repo, id: a, makes: /tmp/out", "makes: '/tmp/out' is not a relative path inside the folder"),
], ids=["tier", "starts", "no-id", "above-in-ci", "unknown-key", "needs", "makes-up", "makes-absolute"])
def test_a_bad_comment_is_reported(comment: str, problem: str) -> None:
    assert _one(f"<!-- {comment} -->\n```sh\nls\n```\n").problems() == [f"README.md:2: {problem}"]


@pytest.mark.parametrize("command, path", [
    ("ppc-llm build --target g4 -o /tmp/g4", "/tmp/g4"),
    ("cp ~/models/stories260K.bin .", "~/models/stories260K.bin"),
    ("ppc-llm convert x.bin --output=/srv/x.be.bin", "/srv/x.be.bin"),
    ("cd /work && ls", "/work"),
    ('python -c "open(\'/etc/passwd\')"', "/etc/passwd"),
], ids=["output", "home", "option-equals", "cd", "quoted"])
def test_an_absolute_path_in_a_block_is_reported(command: str, path: str) -> None:
    block = _one(f"<!-- block: ci, starts: empty, id: a -->\n```sh\n{command}\n```\n")
    assert block.problems() == [f"README.md:2: {path!r}: an absolute path (blocks use relative paths)"]


def test_relative_paths_and_variables_are_not_absolute() -> None:
    text = "ppc-llm bench --target g4|xenon  # MB/s, 1/2\ncd dist && cat $PPC_LLM_CACHE/fuzz ./a ../b\n"
    assert _one(f"<!-- block: ci, starts: empty, id: a -->\n```sh\n{text}```\n").problems() == []


def test_fields_and_an_indented_block_are_read() -> None:
    text = ("- item:\n\n  <!-- block: ci, starts: empty, id: x-1, makes: a b/c, prints: Once upon a time -->\n"
            "  ```sh\n  ppc-llm run-qemu \\\n      -i hi\n  ```\n\n```\noutput, not a command\n```\n")
    block = _one(text)
    assert block.problems() == []
    assert (block.line, block.tier, block.starts, block.id) == (4, "ci", "empty", "x-1")
    assert block.makes == ["a", "b/c"] and block.prints == "Once upon a time"
    assert block.text == "ppc-llm run-qemu \\\n    -i hi\n"
