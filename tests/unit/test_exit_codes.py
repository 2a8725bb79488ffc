"""Every exit status the CLI can end with is documented: the README's table is the errors module's."""

from __future__ import annotations

import re

from tests.helpers import REPO
from toolkit.errors import EXIT_CODES


def readme_exit_codes() -> dict[int, str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(code): meaning.strip() for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M)}


def test_readme_table_is_the_exit_code_table() -> None:
    documented = readme_exit_codes()
    assert sorted(documented) == sorted(EXIT_CODES)
    for code, meaning in EXIT_CODES.items():
        assert documented[code].startswith(meaning.split(":")[0]), (code, documented[code], meaning)
