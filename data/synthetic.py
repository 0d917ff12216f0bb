"""Synthetic copy-task text whose irreducible loss is known exactly.

One block = `span` fresh symbols drawn i.i.d. from a Zipf distribution, then
'|', then an exact copy of the same `span` symbols, then '\\n'. Fresh symbols
cost exactly `entropy_nats(spec)`; delimiters and copies are predictable from
the context, so they cost nothing. Copying needs attention over the context.
"""

import string
from dataclasses import dataclass

import numpy as np

COPY_MARK = "|"
BLOCK_END = "\n"
# 94 printable 1-byte ASCII characters, most frequent rank first.
_SYMBOLS = (
    string.ascii_lowercase
    + string.ascii_uppercase
    + string.digits
    + string.punctuation.replace(COPY_MARK, "")
    + " "
)


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of the synthetic source (the lab's defaults: 16-character blocks, two to a 32-token window)."""

    alphabet_size: int = 64
    span: int = 7
    zipf_exponent: float = 1.1

    def __post_init__(self):
        if not 1 <= self.alphabet_size <= len(_SYMBOLS):
            raise ValueError(
                f"alphabet_size={self.alphabet_size} must be in [1, {len(_SYMBOLS)}]"
            )
        if self.span < 1:
            raise ValueError(f"span={self.span} must be >= 1")


def block_len(spec: SyntheticSpec) -> int:
    """Characters per block: span fresh + '|' + span copied + '\\n'."""
    return 2 * spec.span + 2


def alphabet(spec: SyntheticSpec) -> str:
    """The symbols, ordered by frequency rank (most frequent first)."""
    return _SYMBOLS[: spec.alphabet_size]


def symbol_probs(spec: SyntheticSpec) -> np.ndarray:
    """Zipf probabilities p_k ∝ 1/(k+1)^s, [alphabet_size], decreasing."""
    weights = 1.0 / np.arange(1, spec.alphabet_size + 1) ** spec.zipf_exponent
    return weights / weights.sum()


def entropy_nats(spec: SyntheticSpec) -> float:
    """Shannon entropy of one fresh symbol, in nats."""
    probs = symbol_probs(spec)
    return float(-(probs * np.log(probs)).sum())


def generate(spec: SyntheticSpec, n_blocks: int, seed: int) -> str:
    """`n_blocks` blocks of text, a deterministic function of (spec, n_blocks, seed)."""
    rng = np.random.default_rng(seed)
    ranks = rng.choice(
        spec.alphabet_size, size=(n_blocks, spec.span), p=symbol_probs(spec)
    )
    symbol_bytes = np.frombuffer(alphabet(spec).encode("ascii"), dtype=np.uint8)
    fresh = symbol_bytes[ranks]  # [n_blocks, span]
    blocks = np.empty((n_blocks, block_len(spec)), dtype=np.uint8)
    blocks[:, : spec.span] = fresh
    blocks[:, spec.span] = ord(COPY_MARK)
    blocks[:, spec.span + 1 : -1] = fresh
    blocks[:, -1] = ord(BLOCK_END)
    return blocks.tobytes().decode("ascii")


def loss_floor(spec: SyntheticSpec, seq_len: int) -> np.ndarray:
    """Irreducible next-token loss (nats) per target position, [seq_len].

    The window's input starts at a block boundary; target t is window
    character t + 1 (character 0 is only ever an input). Windows may span
    several blocks. Assumes every symbol is its own token (full vocabulary):
    with a smaller vocabulary or BPE the achievable loss differs.
    """
    position_in_block = np.arange(1, seq_len + 1) % block_len(spec)  # [seq_len]
    return np.where(position_in_block < spec.span, entropy_nats(spec), 0.0)


def mean_floor(spec: SyntheticSpec, seq_len: int) -> float:
    """Mean of `loss_floor` over a window of `seq_len` targets."""
    return float(loss_floor(spec, seq_len).mean())


def window_floor(spec: SyntheticSpec, target_windows: list[str]) -> float:
    """The irreducible mean loss (nats/token) of these particular aligned target windows: each fresh
    symbol costs its own -log p, structure costs 0. Its expectation is `mean_floor`; a finite
    evaluation set sits above or below that by chance, and this is the floor it can be held to."""
    nll = dict(zip(alphabet(spec), -np.log(symbol_probs(spec))))
    fresh = loss_floor(spec, len(target_windows[0])) > 0
    costs = [[nll[char] if is_fresh else 0.0 for char, is_fresh in zip(window, fresh)] for window in target_windows]
    return float(np.mean(costs))
