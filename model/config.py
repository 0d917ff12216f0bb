"""The GPT's configuration: a plain frozen dataclass, checked before anything compiles."""
from __future__ import annotations

import dataclasses

from model.mistakes import Mistakes

POSITIONS = ("rope", "sinusoidal", "learned")
DTYPES = ("float32", "bfloat16")
ATTENTION_KERNELS = ("einsum", "fused")


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 96
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    ffn_mult: int = 4  # d_ff = ffn_mult * d_model
    max_len: int = 64  # training context; the learned table's size
    position: str = "rope"
    dtype: str = "float32"  # compute dtype; parameters stay float32
    attention: str = "einsum"  # einsum: the lab's own; fused: jax.nn.dot_product_attention (cuDNN on a GPU in bf16)
    mistakes: Mistakes = Mistakes()

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_heads", "n_layers", "ffn_mult", "max_len"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"model.{name}={getattr(self, name)!r} must be a positive integer")
        if self.vocab_size >= 2**31:
            raise ValueError(f"model.vocab_size={self.vocab_size} must be below 2**31 (token ids are int32)")
        if self.d_model % self.n_heads:
            raise ValueError(f"model.n_heads={self.n_heads} must divide model.d_model={self.d_model}")
        if self.position not in POSITIONS:
            raise ValueError(f"model.position={self.position!r}; valid choices: {', '.join(POSITIONS)}")
        if self.head_dim % 2:
            raise ValueError(f"model.d_model/model.n_heads={self.head_dim} must be even "
                             "(rotary and sinusoidal codes pair features)")
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype={self.dtype!r}; valid choices: {', '.join(DTYPES)}")
        if self.attention not in ATTENTION_KERNELS:
            raise ValueError(f"model.attention={self.attention!r}; valid choices: {', '.join(ATTENTION_KERNELS)}")

    @property
    def position_kind(self) -> str:
        # Mistake 7 is a learned table sized to the training length, whatever `position` says.
        return "learned" if self.mistakes.position_overflow else self.position

    @property
    def d_ff(self) -> int:
        return self.d_model if self.mistakes.narrow_ffn else self.ffn_mult * self.d_model  # Mistake 3

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def check_length(self, seq_len: int) -> None:
        """A learned table cannot serve positions past its length unless mistake 7 is asked for."""
        if self.position_kind == "learned" and seq_len > self.max_len and not self.mistakes.position_overflow:
            raise ValueError(
                f"sequence length {seq_len} exceeds the learned position table (model.max_len={self.max_len}); "
                "valid choices: model.position=rope or sinusoidal, a longer model.max_len, or mistake=position_overflow"
            )
