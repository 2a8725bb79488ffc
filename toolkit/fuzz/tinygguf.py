"""A tiny synthetic GGUF llama model (SmolLM2's layout, a few kB), for the bad-input catalogue
and as the base of the BPE fuzz harnesses: dim 64, hidden 256, 2 layers, 4 heads (2 KV heads),
context 64; a GPT-2 byte-level vocabulary of the 256 byte tokens, a few merges and the three
ChatML control tokens; Q8_0 embeddings and feed-forward, Q4_1 attention, F32 norms; SmolLM2's
ChatML chat template. Written with the ``gguf`` package's GGUFWriter.

Keyword overrides make the damaged variants the catalogue needs (``arch``, ``drop`` metadata
keys, ``tokenizer_model``, ``pre``, extra ``merges``, ``tensor_types``, a ``missing`` tensor,
``extra`` u32 metadata, a data ``alignment``); header-level damage (magic, counts, lengths) is done on the bytes by the
caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..models.bpe import byte_decoder
from ..quant import BLOCK_FORMATS, BlockFormat

DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, CONTEXT = 64, 256, 2, 4, 2, 64
CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
MERGE_WORDS = ("Ġt", "he", "Ġthe", "in", "Ġa", "on", "er", "Ġo", "Ġs", "en", "Ġon", "ce", "Ġu", "Ġup", "Ġti", "me",
               "Ġtime", "Ġonce", "Ġw", "as", "Ġwas")
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a tiny test model.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def _vocabulary() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges): byte tokens in GPT-2's stand-in characters, merged words
    built from them, control tokens last."""
    chars = sorted(byte_decoder(), key=lambda ch: byte_decoder()[ch])
    tokens = list(chars)
    merges: list[str] = []
    for word in MERGE_WORDS:
        # split into the longest known prefix and the rest, both already tokens
        for cut in range(len(word) - 1, 0, -1):
            left, right = word[:cut], word[cut:]
            if left in tokens and right in tokens:
                merges.append(f"{left} {right}")
                tokens.append(word)
                break
        else:
            raise AssertionError(word)
    types = [1] * len(tokens) + [3] * len(CONTROL_TOKENS)
    return tokens + list(CONTROL_TOKENS), types, merges


def random_blocks(fmt: BlockFormat, rows: int, nb: int, rng: np.random.Generator,
                  scale: float = 0.05) -> np.ndarray:
    """GGUF blocks of a kept type (rows, nb, block bytes): random bytes for every code and scale
    field, finite fp16 values (normal, times ``scale``) for d / dmin / m (IQ4_XS's u16 scales_h
    stays random bytes)."""
    blocks = rng.integers(0, 256, (rows, nb, fmt.block_bytes), dtype=np.uint8)
    for name, start, size, item in fmt.fields:
        if item == 2 and name != "scales_h":
            halves = (rng.standard_normal(rows * nb) * scale).astype(np.float16)
            blocks[:, :, start:start + size] = np.frombuffer(halves.tobytes(), np.uint8).reshape(rows, nb, 2)
    return blocks


def write(path: Path, *, arch: str = "llama", drop: tuple[str, ...] = (), tokenizer_model: str = "gpt2",
          pre: str = "smollm", extra_merges: tuple[str, ...] = (), tensor_types: dict[str, Any] | None = None,
          missing: str | None = None, chat: bool = True, extra: dict[str, int] | None = None,
          alignment: int | None = None, seed: int = 0) -> Path:
    """Write the tiny GGUF model to ``path`` (see the module's doc for the overrides)."""
    from gguf import GGMLQuantizationType as T
    from gguf import GGUFWriter
    from gguf.quants import quantize

    rng = np.random.default_rng(seed)
    tokens, types, merges = _vocabulary()
    vocab = len(tokens)
    writer = GGUFWriter(str(path), arch)
    if alignment is not None:  # general.alignment, and the data really aligned to it
        writer.add_custom_alignment(alignment)
    head = DIM // HEADS
    meta: list[tuple[str, str, Any]] = [
        ("general.name", "string", "tiny-test"),
        (f"{arch}.context_length", "uint32", CONTEXT),
        (f"{arch}.embedding_length", "uint32", DIM),
        (f"{arch}.feed_forward_length", "uint32", HIDDEN),
        (f"{arch}.block_count", "uint32", LAYERS),
        (f"{arch}.attention.head_count", "uint32", HEADS),
        (f"{arch}.attention.head_count_kv", "uint32", KV_HEADS),
        (f"{arch}.rope.freq_base", "float32", 10000.0),
        (f"{arch}.attention.layer_norm_rms_epsilon", "float32", 1e-5),
        (f"{arch}.rope.dimension_count", "uint32", head),
        ("tokenizer.ggml.model", "string", tokenizer_model),
        ("tokenizer.ggml.pre", "string", pre),
        ("tokenizer.ggml.tokens", "array", tokens),
        ("tokenizer.ggml.token_type", "array", types),
        ("tokenizer.ggml.merges", "array", merges + list(extra_merges)),
        ("tokenizer.ggml.bos_token_id", "uint32", vocab - 3),
        ("tokenizer.ggml.eos_token_id", "uint32", vocab - 3),
        ("tokenizer.ggml.add_bos_token", "bool", False),
    ]
    if chat:
        meta.append(("tokenizer.chat_template", "string", CHAT_TEMPLATE))
    meta = [m for m in meta if m[0] not in drop] + [(key, "uint32", value) for key, value in (extra or {}).items()]
    for key, value_type, value in meta:
        if value_type == "string":
            writer.add_string(key, value)
        elif value_type == "uint32":
            writer.add_uint32(key, value)
        elif value_type == "float32":
            writer.add_float32(key, value)
        elif value_type == "bool":
            writer.add_bool(key, value)
        else:
            writer.add_array(key, value)
    shapes: dict[str, tuple[int, int] | tuple[int]] = {"token_embd.weight": (vocab, DIM), "output_norm.weight": (DIM,)}
    for layer in range(LAYERS):
        b = f"blk.{layer}."
        shapes.update({b + "attn_norm.weight": (DIM,), b + "ffn_norm.weight": (DIM,),
                       b + "attn_q.weight": (DIM, DIM), b + "attn_k.weight": (KV_HEADS * head, DIM),
                       b + "attn_v.weight": (KV_HEADS * head, DIM), b + "attn_output.weight": (DIM, DIM),
                       b + "ffn_gate.weight": (HIDDEN, DIM), b + "ffn_up.weight": (HIDDEN, DIM),
                       b + "ffn_down.weight": (DIM, HIDDEN)})
    kinds = {name: (T.F32 if len(shape) == 1 else T.Q4_1 if ".attn_" in name else T.Q8_0)
             for name, shape in shapes.items()}
    kinds.update(tensor_types or {})
    order = [n for n in shapes if n != missing]
    for name in order:
        shape, kind = shapes[name], T(kinds[name])
        data = (rng.standard_normal(shape) * (1.0 if len(shape) == 1 else 0.2)).astype(np.float32)
        if len(shape) == 1:
            data = 1.0 + 0.1 * data
        if kind == T.F32:
            writer.add_tensor(name, data)
        elif kind in (T.Q8_0, T.Q4_0, T.Q4_1):
            writer.add_tensor(name, quantize(data, kind), raw_dtype=kind)
        elif kind.name.lower().replace("_k", "_K") in BLOCK_FORMATS:  # random codes, small finite scales
            fmt = BLOCK_FORMATS[kind.name.lower().replace("_k", "_K")]
            blocks = random_blocks(fmt, shape[0], shape[-1] // fmt.block, rng)
            writer.add_tensor(name, blocks.reshape(shape[0], -1), raw_dtype=kind)
        else:  # a type ppc-llm does not convert: bytes of the right size are enough
            from gguf import GGML_QUANT_SIZES
            block, size = GGML_QUANT_SIZES[kind]
            raw = rng.integers(0, 256, (shape[0], shape[-1] // block * size), dtype=np.uint8)
            writer.add_tensor(name, raw, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
