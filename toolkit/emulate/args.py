"""The engine's command line (``main.c``'s options): one type that every argv the toolkit builds
comes from, in one order (the model, then -t -p -s -n -N -i -f -K -M -r -R -T -c -m -y). A field
left None is an option not given, so the engine's own default applies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EngineArgs:
    model: Path | None = None  # None: no model argument (the kernel test, a usage check)
    temperature: float | None = None
    topp: float | None = None
    seed: int | None = None
    steps: int | None = None
    prompt: str | bytes | None = None
    threads: int | None = None
    ctx: int | None = None
    mode: str | None = None  # main.c's -m: "chat" or "encode"; None: generate
    system_prompt: str | bytes | None = None
    n_predict: int | None = None
    prompt_file: Path | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    repeat_last_n: int | None = None

    def flags(self, prompt_file: str | None = None) -> list[str | bytes]:
        """The options after the model (numbers as Python's repr: 0.9, 1.0, 7); ``prompt_file``:
        the prompt file's path where the engine runs (a full-system guest's), else its own."""
        if prompt_file is None and self.prompt_file is not None:
            prompt_file = str(self.prompt_file)
        pairs: list[tuple[str, object]] = [
            ("-t", self.temperature), ("-p", self.topp), ("-s", self.seed), ("-n", self.steps), ("-N", self.n_predict),
            ("-i", self.prompt), ("-f", prompt_file), ("-K", self.top_k), ("-M", self.min_p),
            ("-r", self.repeat_penalty), ("-R", self.repeat_last_n), ("-T", self.threads), ("-c", self.ctx),
            ("-m", self.mode), ("-y", self.system_prompt)]
        return [item for flag, value in pairs if value is not None for item in (flag, _text(value))]

    def argv(self) -> list[str | bytes]:
        """The engine's arguments: the model's path, then ``flags``."""
        return [*([str(self.model)] if self.model is not None else []), *self.flags()]


def _text(value: object) -> str | bytes:
    return value if isinstance(value, (str, bytes)) else repr(value)
