"""Chat turn formats derived from real templates against llama.cpp (README "Chat templates").

The templates are llama.cpp's own test templates (models/templates/*.jinja in the pinned sdist,
read from its tarball); each is set as ``tokenizer.chat_template`` of a tiny random-weight GGUF
with SmolLM2's real vocabulary plus the control tokens the template spells
(tests/gguf_models.py). The oracle: the prompt ids the engine feeds for a turn (``-x 2``) equal
llama.cpp's tokenization (special tokens parsed, BOS as the vocabulary adds it) of Hugging Face's
own rendering of the conversation (transformers' ``render_jinja_template``, with the generation
prompt); a conversation of several turns is checked as the engine concatenates it (the
strings from the converted file) against the same rendering.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from toolkit import format as fmt
from toolkit.emulate import run_user
from toolkit.llamacpp import VENDOR, LlamaRef, host_llamaref, sdist
from toolkit.pipeline import build, open_input
from tests.gguf_models import TINY, Chat, spm_vocabulary, write_llama
from tests.helpers import shared_dir, smollm_gguf

from .conftest import cli, target

LLAMA3 = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
# TinyLlama-1.1B-Chat-v1.0's template (Zephyr's turns; its <|user|> markers are plain text in the
# Llama 2 vocabulary) and Gemma 3's (the system prompt folded into the first user turn), as their
# tokenizer_config.json files give them: llama.cpp's sdist has neither
TINYLLAMA = ("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] "
             "+ eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + "
             "eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + "
             "eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n"
             "{% endif %}\n{% endfor %}")
GEMMA3 = ("{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- set first_user_prefix = "
          "messages[0]['content'] + '\n\n' -%}\n    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n"
          "    {%- set first_user_prefix = \"\" -%}\n    {%- set loop_messages = messages -%}\n{%- endif -%}\n"
          "{%- for message in loop_messages -%}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
          "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
          "    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n"
          "    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
          "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
          "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n"
          "    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n"
          "            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n"
          "            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n"
          "            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n"
          "        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n"
          "    {{ '<end_of_turn>\n' }}\n{%- endfor -%}\n"
          "{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n")
INLINE = {"TinyLlama": TINYLLAMA, "Gemma-3": GEMMA3}
# template file (None: SmolLM2's own; a key of INLINE: that text), the tokens it needs, bos,
# add_bos, template kwargs, the vocabulary: SmolLM2's BPE, or the Llama 2 SentencePiece one with or
# without a space prefix (TinyLlama's, Gemma's)
SMOLLM2, SPM, SPM_NO_PREFIX = "smollm2", "spm", "spm-no-prefix"
CASES: dict[str, tuple[str | None, tuple[str, ...], str | None, bool, dict[str, Any]]] = {
    "SmolLM2": (None, (), None, False, {}),
    "Qwen2.5": ("Qwen-Qwen2.5-7B-Instruct", (), None, False, {}),
    "Qwen3": ("Qwen-Qwen3-0.6B", ("<think>", "</think>"), None, False, {}),
    "Qwen3-no-thinking": ("Qwen-Qwen3-0.6B", ("<think>", "</think>"), None, False, {"enable_thinking": False}),
    "Llama-3.2": ("meta-llama-Llama-3.2-3B-Instruct", LLAMA3, "<|begin_of_text|>", True, {}),
    "Gemma-2": ("google-gemma-2-2b-it", ("<bos>", "<start_of_turn>", "<end_of_turn>"), "<bos>", True, {}),
    "Phi-3.5": ("microsoft-Phi-3.5-mini-instruct", ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"), None,
                False, {}),
    "SmolLM3": ("HuggingFaceTB-SmolLM3-3B", ("<think>", "</think>"), None, False, {}),
    "TinyLlama": ("TinyLlama", (), "<s>", True, {}),
    "Gemma-3": ("Gemma-3", ("<bos>", "<start_of_turn>", "<end_of_turn>"), "<bos>", True, {}),
}
VOCABULARIES = {"TinyLlama": SPM, "Gemma-3": SPM_NO_PREFIX}  # the rest: SMOLLM2
USER, SYSTEM = "Hello there, who are you?", "Be brief."
PROMPT_IDS = re.compile(rb"^prompt ids:((?: \d+)*)$", re.M)


@pytest.fixture(scope="module")
def llamaref(cache: Path) -> LlamaRef:
    return host_llamaref(cache)


@pytest.fixture(scope="module")
def templates(cache: Path) -> dict[str, str]:
    """llama.cpp's templates by file stem, read from the sdist's tarball."""
    folder = f"{VENDOR}/models/templates/"
    with tarfile.open(sdist(cache)) as tar:
        return {m.name[len(folder):-len(".jinja")]: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.name.startswith(folder) and m.name.endswith(".jinja")}


def _template(name: str, templates: dict[str, str]) -> str:
    stem = CASES[name][0]
    if stem in INLINE:
        return INLINE[stem]
    if stem is None:
        from gguf import GGUFReader

        return str(GGUFReader(smollm_gguf(), "r").fields["tokenizer.chat_template"].contents())
    return templates[stem]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, templates: dict[str, str]) -> dict[str, Path]:
    """The tiny GGUF of each case."""
    folder = tmp_path_factory.mktemp("templates")
    out = {}
    for name, (stem, added, bos, add_bos, _) in CASES.items():
        chat = Chat(_template(name, templates), added, bos, add_bos)
        kind = VOCABULARIES.get(name, SMOLLM2)
        vocabulary = None if kind == SMOLLM2 else spm_vocabulary(shared_dir() / "models" / "tokenizer.bin", kind == SPM)
        out[name] = write_llama(folder / f"{name}.gguf", TINY, smollm_gguf(), chat=chat, vocabulary=vocabulary)
    return out


def _convert(gguf: Path, name: str, endian: str) -> tuple[Path, fmt.Header]:
    model = open_input(gguf, None).model(True, CASES[name][4])
    path = gguf.with_suffix(f".{endian}.bin")
    path.write_bytes(fmt.encode(model, endian))
    return path, fmt.read_header_file(path)


def _rendered(template: str, messages: list[dict[str, str]], name: str, gguf: Path) -> str:
    """Hugging Face's rendering of messages, the leading BOS left to a tokenizer that adds it."""
    from transformers.utils.chat_template_utils import render_jinja_template

    bos, eos = _bos_eos(gguf)
    text = render_jinja_template(conversations=[messages], chat_template=template, add_generation_prompt=True,
                                 bos_token=bos, eos_token=eos, **CASES[name][4])[0][0]
    return text[len(bos):] if CASES[name][3] and text.startswith(bos) else text


def _bos_eos(gguf: Path) -> tuple[str, str]:
    from gguf import GGUFReader

    fields = GGUFReader(gguf, "r").fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    return (str(tokens[int(fields["tokenizer.ggml.bos_token_id"].contents())]),
            str(tokens[int(fields["tokenizer.ggml.eos_token_id"].contents())]))


def _prompt_ids(cache: Path, name: str, model: Path, args: list[str]) -> list[int]:
    profile = target(name)
    ran = run_user(profile, build(profile, cache).engine, [str(model), "-m", "chat", "-t", "0", "-n", "1", "-x", "2",
                                                          *args], timeout=600)
    assert ran.returncode == 0, ran.stderr.decode(errors="replace")[-2000:]
    found = PROMPT_IDS.search(ran.stderr)
    assert found, ran.stderr[-2000:]
    return [int(v) for v in found.group(1).split()]


@pytest.mark.parametrize("name", list(CASES))
def test_prompt_ids_equal_llamacpp_tokens_of_the_rendering(name: str, models: dict[str, Path], templates: dict[str, str],
                                                          llamaref: LlamaRef, cache: Path) -> None:
    gguf = models[name]
    path, _ = _convert(gguf, name, "little")
    chat = fmt.decode(path.read_bytes(), str(path)).chat
    assert chat is not None
    template = _template(name, templates)
    conversations: list[tuple[list[str], list[dict[str, str]]]] = [(["-i", USER], [{"role": "user", "content": USER}])]
    if chat.system_role:
        conversations.append((["-y", SYSTEM, "-i", USER],
                              [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]))
    for args, messages in conversations:
        text = _rendered(template, messages, name, gguf)
        expected = llamaref.tokenize(gguf, [text], add_special=CASES[name][3], parse_special=True)[0]
        assert _prompt_ids(cache, "host", path, args) == expected, (name, args, text)


@pytest.mark.parametrize("name", [n for n in CASES if n != "Qwen3-no-thinking"])
def test_a_conversation_is_the_rendering_of_its_turns(name: str, models: dict[str, Path],
                                                      templates: dict[str, str]) -> None:
    """Three user turns with two replies, as the engine concatenates them, against the rendering
    (Qwen3 without thinking keeps the empty thinking block of its generation prompt in the
    history, which its template drops: README)."""
    path, _ = _convert(models[name], name, "little")
    chat = fmt.decode(path.read_bytes(), str(path)).chat
    assert chat is not None
    users, replies = ["First question?", "Second one.", "Third."], ["An answer.", "Another answer."]
    messages = [{"role": role, "content": text} for u, r in zip(users, replies + [""])
                for role, text in (("user", u), ("assistant", r))][:-1]
    assert chat.conversation(users, replies) == _rendered(_template(name, templates), messages, name, models[name])


def test_gemma_2_refuses_a_system_prompt(models: dict[str, Path], cache: Path) -> None:
    path, _ = _convert(models["Gemma-2"], "Gemma-2", "little")
    ran = run_user(target("host"), build(target("host"), cache).engine,
                   [str(path), "-m", "chat", "-n", "1", "-y", SYSTEM, "-i", USER], timeout=600)
    assert ran.returncode == 1 and b"takes no system prompt" in ran.stderr, ran.stderr


def test_llama_3_on_g4_feeds_the_host_ids(models: dict[str, Path], cache: Path) -> None:
    """The big-endian file on g4 under QEMU: the same prompt ids as the host's little-endian one."""
    big, _ = _convert(models["Llama-3.2"], "Llama-3.2", "big")
    little, _ = _convert(models["Llama-3.2"], "Llama-3.2", "little")
    args = ["-y", SYSTEM, "-i", USER]
    assert _prompt_ids(cache, "g4", big, args) == _prompt_ids(cache, "host", little, args)


def test_convert_says_it_froze_the_date(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "llama3.bin"
    result = cli("convert", str(models["Llama-3.2"]), "--endian", "little", "-o", str(out))
    assert result.returncode == 0, result.stderr
    chat = fmt.decode(out.read_bytes(), str(out)).chat
    assert chat is not None and "Today Date: " in chat.system_prefix
    date = chat.system_prefix.split("Today Date: ")[1].split("\n")[0]
    assert f"frozen at conversion as {date!r}".encode() in result.stderr, result.stderr
