"""The in-memory model every reader returns and every writer and the reference consume.

A ``Model`` is a config, an ordered mapping of tensor name -> float32 array, and a tokenizer.
Tensor names and shapes (``L`` layers, ``D`` dim, ``H`` hidden, ``K`` kv dim, ``V`` vocab):

    tok_embeddings (V, D)      rms_att (L, D)          wq (L, D, D)     wk (L, K, D)
    wv (L, K, D)               wo (L, D, D)            rms_ffn (L, D)   w1 (L, H, D)
    w2 (L, D, H)               w3 (L, H, D)            rms_final (D,)   wcls (V, D), only
    when the classifier is not shared with the embeddings.

Matrices are stored as llama2.c stores them: ``out = W @ x`` with W of shape (out, in).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import InputError
from ..quant import BlockTensor, LayerStack, QuantTensor
from .bpe import BPE
from .spm import SPM
from .chat import ChatFormat

Tensor = np.ndarray | QuantTensor | BlockTensor | LayerStack


@dataclass(frozen=True)
class ModelConfig:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool
    rope_theta: float = 10000.0
    norm_eps: float = float(np.float32(1e-5))  # stored as f32, as llama2.c's 1e-5f
    qkv_bias: bool = False  # the Q/K/V projections add biases bq, bk, bv (qwen2)
    rope_freqs: bool = False  # RoPE's angles divided by the factors rope_freqs (Llama 3.x)
    head_dim: int = 0  # a head's size where it is not dim / n_heads (qwen3); 0: dim / n_heads
    qk_norm: bool = False  # per-head RMS norm of q and k before RoPE, weights q_norm, k_norm (qwen3)

    @property
    def head_size(self) -> int:
        return self.head_dim or self.dim // self.n_heads

    @property
    def q_dim(self) -> int:
        """The attention's width: n_heads * head_size (dim, unless head_dim says otherwise)."""
        return self.n_heads * self.head_size

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_size

    def validate(self, source: str) -> None:
        """Raise InputError when the shape cannot describe a llama-style model."""
        fields = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len")
        for name in fields:
            value = getattr(self, name)
            if not 0 < value < 1 << 24:
                raise InputError(f"{source}: {name} = {value} is out of range (1 .. {1 << 24})",
                                 "is this a llama2.c checkpoint?")
        if self.head_dim == 0 and (self.dim % self.n_heads or (self.dim // self.n_heads) % 2):
            raise InputError(f"{source}: dim {self.dim} is not an even multiple of n_heads {self.n_heads}")
        if not 0 <= self.head_dim < 1 << 16 or self.head_dim % 2 or self.q_dim >= 1 << 24:
            raise InputError(f"{source}: head size {self.head_dim} is odd or out of range")
        if not (0 < self.rope_theta < 1e30) or not (0 <= self.norm_eps < 1e30):  # NaN fails both
            raise InputError(f"{source}: rope theta {self.rope_theta} or norm epsilon {self.norm_eps} is invalid")
        if self.n_heads % self.n_kv_heads:
            raise InputError(f"{source}: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every tensor this config needs, in file order."""
        L, D, H, K, V, Q = self.n_layers, self.dim, self.hidden_dim, self.kv_dim, self.vocab_size, self.q_dim
        shapes: dict[str, tuple[int, ...]] = {
            "tok_embeddings": (V, D),
            "rms_att": (L, D),
            "wq": (L, Q, D),
            "wk": (L, K, D),
            "wv": (L, K, D),
            "wo": (L, D, Q),
            "rms_ffn": (L, D),
            "w1": (L, H, D),
            "w2": (L, D, H),
            "w3": (L, H, D),
            "rms_final": (D,),
        }
        if not self.shared_classifier:
            shapes["wcls"] = (V, D)
        if self.qkv_bias:
            shapes.update({"bq": (L, Q), "bk": (L, K), "bv": (L, K)})
        if self.rope_freqs:
            shapes["rope_freqs"] = (self.head_size // 2,)
        if self.qk_norm:
            shapes.update({"q_norm": (L, self.head_size), "k_norm": (L, self.head_size)})
        return shapes


@dataclass(frozen=True)
class Tokenizer:
    """A llama2.c (sentencepiece-derived) vocabulary: byte pieces and merge scores."""

    pieces: tuple[bytes, ...]
    scores: tuple[float, ...]
    max_token_length: int

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)


class Activations(Enum):
    """The activations a model's block-quantized matrices multiply: which kernels run them."""

    INT8 = "int8"    # quantized to int8 per group of 32 at run time (the kinds ``--quant`` makes)
    FLOAT32 = "f32"  # float32, as they are (blocks taken over as they were stored, any block kind)


@dataclass(frozen=True)
class Model:
    """``bpe`` is set for GPT-2 byte-level BPE vocabularies (the pieces in ``tokenizer`` are then
    raw bytes with zero scores). ``chat``: the chat turn format derived from the model's chat
    template (``models/chat.py``), None without one.
    ``activations``: what its block-quantized matrices multiply (``Activations``).
    ``notes``: what converting it chose that its user should hear (``convert`` prints them)."""

    config: ModelConfig
    tensors: dict[str, Tensor]
    tokenizer: Tokenizer
    bpe: BPE | None = None
    spm: SPM | None = None
    chat: ChatFormat | None = None
    activations: Activations = Activations.INT8
    notes: tuple[str, ...] = ()

    def classifier(self) -> Tensor:
        return self.tensors["tok_embeddings"] if self.config.shared_classifier else self.tensors["wcls"]

    @property
    def quant(self) -> str:
        """'f32', or the block quantization of the matrices."""
        wq = self.tensors["wq"]
        return wq.kind if isinstance(wq, QuantTensor) else "f32"

    @property
    def matrix_kinds(self) -> str:
        """The matrices' types, e.g. 'q4_K+q6_K+q8_0' for a GGUF Q4_K_M file (what `convert` says)."""
        from ..quant import tensor_kind

        kinds: set[str] = set()
        for name in ("tok_embeddings", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls"):
            t = self.tensors.get(name)
            if isinstance(t, LayerStack):
                kinds.update(t.kinds)
            elif t is not None:
                kinds.add(tensor_kind(t))
        return "+".join(sorted(kinds))

    @property
    def keeps_blocks(self) -> bool:
        """True when its matrices stay as they are (``--quant`` does not apply): blocks that
        multiply float32 activations are not re-made as the int8-activation kinds."""
        return self.activations is Activations.FLOAT32
