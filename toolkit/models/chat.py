"""Chat turn formats derived from a model's own ``tokenizer.chat_template`` (a jinja2 template).

The template is rendered as Hugging Face's ``apply_chat_template`` renders it (a sandboxed,
immutable jinja2 environment with ``trim_blocks``, ``lstrip_blocks`` and the ``loopcontrols``
extension; ``raise_exception``, ``tojson``, ``strftime_now``, ``bos_token``, ``eos_token``,
``add_generation_prompt``) on probe conversations whose messages are marker strings; the text
around the markers gives the per-role strings the engine concatenates:

    no system prompt:   first         + user + user_suffix
    a system prompt:    system_prefix + system + system_suffix + user + user_suffix
    every later turn:   user_prefix   + user + user_suffix      (after the previous reply)

``user_suffix`` ends with the generation prompt; ``user_prefix`` starts with what closes the
previous reply. A template whose rendering of a conversation is not that concatenation (checked
on three and four messages) is refused (``InputError``, naming what differs). A date the
template asks for (``strftime_now``) is rendered once, at conversion, and frozen into the
strings (``ChatFormat.date`` says which). Template variables beyond those (Qwen3's
``enable_thinking``) come from ``kwargs``, as llama.cpp's ``--chat-template-kwargs`` passes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import InputError

# llama.cpp's end-of-generation tokens, by their text (src/llama-vocab.cpp), when the vocabulary has them
EOG_NAMES = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
             "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
             "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
             "<\uff5cend\u2581of\u2581sentence\uff5c>", "[e~[")
MAX_STOPS = 16  # the engine's chat stop list (PPCLLM_MAX_CHAT_STOPS)
SYSTEM, USER, REPLY, USER2 = "\x01S\x01", "\x01U1\x01", "\x01A1\x01", "\x01U2\x01"
NO_CHAT = "convert it with `ppc-llm convert --no-chat` (no chat mode), or chat with another model"


@dataclass(frozen=True)
class ChatFormat:
    """What the engine feeds around each message (see the module's doc), the template's default
    system prompt (None: it inserts none), whether it takes a system prompt at all, whether it
    folds the system prompt into the first user turn, and the token ids that end a reply.
    ``date``: the date the template rendered (frozen at conversion), if it asked for one."""

    first: str
    system_prefix: str
    system_suffix: str
    user_prefix: str
    user_suffix: str
    default_system: str | None
    system_role: bool
    folded: bool
    stops: tuple[int, ...]
    date: str | None = field(default=None, compare=False)

    def strings(self) -> tuple[str, str, str, str, str, str]:
        """The strings in the blob's order (toolkit/format/blobs.py)."""
        return (self.first, self.system_prefix, self.system_suffix, self.user_prefix, self.user_suffix,
                self.default_system or "")

    def conversation(self, users: Sequence[str], replies: Sequence[str], system: str | None = None) -> str:
        """The text the engine feeds for ``users`` (one more than ``replies``), each reply as the
        model produced it (its stop token not included)."""
        text = self.first if system is None else self.system_prefix + system + self.system_suffix
        for i, user in enumerate(users):
            text += (self.user_prefix if i else "") + user + self.user_suffix + (replies[i] if i < len(replies) else "")
        return text


@dataclass
class _Clock:
    """strftime_now, frozen: the one moment every probe renders, and what it rendered."""

    now: datetime
    rendered: list[str] = field(default_factory=list)

    def strftime_now(self, fmt: str) -> str:
        text = self.now.strftime(fmt)
        self.rendered.append(text)
        return text


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


class _Renderer:
    """The template compiled once in Hugging Face's environment; ``render`` one conversation."""

    def __init__(self, template: str, variables: Mapping[str, Any], clock: _Clock, source: str) -> None:
        from jinja2.exceptions import TemplateError
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = clock.strftime_now
        self.variables = dict(variables)
        self.source = source
        try:
            self.template = env.from_string(template)
        except TemplateError as exc:
            raise _refuse(source, f"does not compile: {exc}") from None

    def render(self, messages: list[dict[str, str]], generation: bool = True) -> str:
        return str(self.template.render(messages=messages, add_generation_prompt=generation, **self.variables))

    def must(self, messages: list[dict[str, str]], generation: bool = True) -> str:
        """render, a failure refused (any exception: a template may raise anything on odd input)."""
        try:
            return self.render(messages, generation)
        except Exception as exc:  # noqa: BLE001 (jinja2 passes the template's own errors through)
            raise _refuse(self.source, f"fails on a {len(messages)}-message conversation: {exc}") from None


def _refuse(source: str, what: str) -> InputError:
    return InputError(f"{source}: its chat template (tokenizer.chat_template) {what}; ppc-llm cannot chat with it",
                      NO_CHAT)


def _msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _split(text: str, markers: Sequence[str], source: str, what: str) -> list[str]:
    """The text before, between and after the markers, each found once, in order."""
    parts: list[str] = []
    rest = text
    for marker in markers:
        if rest.count(marker) != 1 or text.count(marker) != 1:
            raise _refuse(source, f"does not show each message once in order ({what})")
        head, rest = rest.split(marker)
        parts.append(head)
    return parts + [rest]


def derive(template: str, *, bos_token: str, eos_token: str, add_bos: bool, stops: Sequence[int],
           kwargs: Mapping[str, Any] | None = None, source: str = "model", now: datetime | None = None) -> ChatFormat:
    """The ChatFormat of ``template`` (see the module's doc); a leading ``bos_token`` is left to
    the tokenizer when it adds BOS itself (``add_bos``)."""
    clock = _Clock(now or datetime.now())
    r = _Renderer(template, {**(kwargs or {}), "bos_token": bos_token, "eos_token": eos_token}, clock, source)
    first, user_suffix = _split(r.must([_msg("user", USER)]), [USER], source, "one user message")
    _, reply_open, user_prefix, end = _split(
        r.must([_msg("user", USER), _msg("assistant", REPLY), _msg("user", USER2)]), [USER, REPLY, USER2], source,
        "user, assistant, user")
    if not user_suffix.startswith(reply_open) or end != user_suffix:
        raise _refuse(source, "renders user, assistant, user as other than the concatenation of its turns")
    system_role, system_prefix, system_suffix = _system(r, reply_open, user_prefix, user_suffix, source)
    default = _default_system(r, first, system_prefix, system_suffix) if system_role else None
    folded = system_role and system_prefix == first
    if folded and r.must([_msg("user", SYSTEM + system_suffix + USER)]) != \
            system_prefix + SYSTEM + system_suffix + USER + user_suffix:
        raise _refuse(source, "folds the system prompt into the first user turn by no clean rule")
    if add_bos and bos_token:
        first, system_prefix = (text[len(bos_token):] if text.startswith(bos_token) else text
                                for text in (first, system_prefix))
    date = clock.rendered[0] if clock.rendered else None
    return ChatFormat(first, system_prefix, system_suffix, user_prefix, user_suffix, default, system_role, folded,
                      tuple(stops), date)


def _system(r: _Renderer, reply_open: str, user_prefix: str, user_suffix: str, source: str) -> tuple[bool, str, str]:
    """(whether the template takes a system prompt, what precedes it, what follows it up to the
    first user message), the concatenation checked on four messages."""
    try:
        text = r.render([_msg("system", SYSTEM), _msg("user", USER)])
    except Exception:  # noqa: BLE001 (Gemma's templates raise: "System role not supported")
        return False, "", ""
    prefix, suffix, end = _split(text, [SYSTEM, USER], source, "system, user")
    whole = r.must([_msg("system", SYSTEM), _msg("user", USER), _msg("assistant", REPLY), _msg("user", USER2)])
    if end != user_suffix or \
            whole != prefix + SYSTEM + suffix + USER + reply_open + REPLY + user_prefix + USER2 + user_suffix:
        raise _refuse(source, "renders system, user, assistant, user as other than the concatenation of its turns")
    return True, prefix, suffix


def _default_system(r: _Renderer, first: str, prefix: str, suffix: str) -> str | None:
    """The system prompt the template inserts when none is given (possibly empty: Llama 3's), or None."""
    if len(first) < len(prefix) + len(suffix) or not (first.startswith(prefix) and first.endswith(suffix)):
        return None
    default = first[len(prefix):len(first) - len(suffix)]
    try:
        same = r.render([_msg("system", default), _msg("user", USER)]) == first + USER + \
            r.render([_msg("user", USER)]).split(USER)[1]
    except Exception:  # noqa: BLE001
        return None
    return default if same else None


def stop_ids(pieces: Sequence[bytes], special: Sequence[int], eos: int, eot: int | None) -> tuple[int, ...]:
    """The ids that end a reply: eos, eot, and the vocabulary's control tokens llama.cpp treats
    as end of generation (EOG_NAMES), in that order, each once, at most MAX_STOPS."""
    names = {name.encode("utf-8") for name in EOG_NAMES}
    ids = [eos] + ([eot] if eot is not None else []) + [i for i in special if pieces[i] in names]
    return tuple(dict.fromkeys(i for i in ids if 0 <= i < len(pieces)))[:MAX_STOPS]


def chat_kwargs(text: str) -> dict[str, Any]:
    """``--chat-template-kwargs``: a JSON object of template variables."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--chat-template-kwargs: not JSON ({exc.msg})",
                         "pass an object, e.g. '{\"enable_thinking\": false}'") from None
    if not isinstance(value, dict):
        raise InputError("--chat-template-kwargs: not a JSON object", "pass an object, e.g. '{\"enable_thinking\": false}'")
    return value
