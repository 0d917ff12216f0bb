"""Text sources, tokenizers and batches for the lab (no dependency on model/)."""

from data.dataset import TokenData, batch_key, eval_windows, sample_batch, split_tokens
from data.sources import DataError, load_text
from data.synthetic import (
    SyntheticSpec,
    alphabet,
    block_len,
    entropy_nats,
    generate,
    loss_floor,
    mean_floor,
    symbol_probs,
    window_floor,
)
from data.tokenizers import (
    BpeTokenizer,
    CharTokenizer,
    bits_per_byte,
    make_tokenizer,
    oov_alphabet_size,
    unk_rate,
)

__all__ = [
    "BpeTokenizer",
    "CharTokenizer",
    "DataError",
    "SyntheticSpec",
    "TokenData",
    "alphabet",
    "batch_key",
    "bits_per_byte",
    "block_len",
    "entropy_nats",
    "eval_windows",
    "generate",
    "load_text",
    "loss_floor",
    "make_tokenizer",
    "mean_floor",
    "oov_alphabet_size",
    "sample_batch",
    "split_tokens",
    "symbol_probs",
    "unk_rate",
    "window_floor",
]
