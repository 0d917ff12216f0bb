"""Character-level and byte-level BPE tokenizers with an explicit <unk> token.

Both reserve id 0 for "<unk>", so a capped vocabulary shows up as a measurable
unknown-token rate rather than silently vanishing characters.
"""

import hashlib
import math
import os
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

UNK_TOKEN = "<unk>"
UNK_ID = 0
DEFAULT_CACHE_DIR = Path("~/.cache/transformer-mistakes-lab/tokenizers").expanduser()
_N_CODEPOINTS = 0x110000
TOKENIZER_KINDS = ("char", "bpe")


def _codepoints(text: str) -> np.ndarray:
    """Unicode code points of `text`, [len(text)] uint32."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


class CharTokenizer:
    """One token per character; characters outside the vocabulary map to <unk>.

    `decode` renders <unk> as U+FFFD, one character per token, so decoded
    text keeps the length of the token sequence.
    """

    unk_id = UNK_ID

    def __init__(self, known_chars: str):
        self.known_chars = known_chars  # id i + 1 is known_chars[i]
        self.vocab_size = len(known_chars) + 1
        self._id_of_codepoint = np.full(_N_CODEPOINTS, UNK_ID, dtype=np.int32)
        self._id_of_codepoint[_codepoints(known_chars)] = np.arange(1, self.vocab_size)
        self._codepoint_of_id = _codepoints("\ufffd" + known_chars)  # [vocab_size]

    @classmethod
    def fit(cls, text: str, vocab_size: int | None = None) -> "CharTokenizer":
        """Keep the `vocab_size - 1` most frequent characters (ties: lower code first).

        `vocab_size=None` keeps every character of `text`.
        """
        if vocab_size is not None and vocab_size < 1:
            raise ValueError(f"vocab_size={vocab_size} must be >= 1 (room for <unk>)")
        codes, counts = np.unique(_codepoints(text), return_counts=True)
        by_frequency = codes[np.lexsort((codes, -counts))]
        kept = by_frequency if vocab_size is None else by_frequency[: vocab_size - 1]
        return cls(kept.astype("<u4").tobytes().decode("utf-32-le"))

    def encode(self, text: str) -> np.ndarray:
        """Token ids, [len(text)] int32."""
        return self._id_of_codepoint[_codepoints(text)]

    def decode(self, ids) -> str:
        """Text of `ids`; <unk> becomes U+FFFD."""
        codes = self._codepoint_of_id[np.asarray(ids, dtype=np.int64)]
        return codes.astype("<u4").tobytes().decode("utf-32-le")


def _train_bpe(text: str, vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE whose alphabet is the bytes seen in `text`."""
    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[UNK_TOKEN], show_progress=False
    )
    tokenizer.train_from_iterator(text.splitlines(keepends=True), trainer)
    return tokenizer


class BpeTokenizer:
    """Byte-level BPE (HF `tokenizers`); bytes unseen in training map to <unk>.

    `decode` renders <unk> as the literal "<unk>", and a literal "<unk>" in
    the input text encodes to the unk id. `vocab_size` is the trained size,
    which exceeds the requested one when the corpus has more distinct bytes.
    """

    unk_id = UNK_ID

    def __init__(self, tokenizer: Tokenizer):
        assert tokenizer.token_to_id(UNK_TOKEN) == UNK_ID
        self._tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def fit(cls, text: str, vocab_size: int, cache_dir=None) -> "BpeTokenizer":
        """Train on `text`, or load the tokenizer cached for (text, vocab_size)."""
        cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        path = cache_dir / f"bpe-{vocab_size}-{digest}.json"
        if path.exists():
            return cls(Tokenizer.from_file(str(path)))
        tokenizer = _train_bpe(text, vocab_size)
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        tokenizer.save(str(staging))
        os.replace(staging, path)  # atomic: concurrent runs never read a half file
        return cls(tokenizer)

    def encode(self, text: str) -> np.ndarray:
        """Token ids, [n_tokens] int32."""
        return np.asarray(self._tokenizer.encode(text).ids, dtype=np.int32)

    def decode(self, ids) -> str:
        """Text of `ids`; <unk> becomes "<unk>"."""
        return self._tokenizer.decode(
            np.asarray(ids).tolist(), skip_special_tokens=False
        )


def make_tokenizer(kind: str, text: str, vocab_size: int | None, cache_dir=None):
    """Fit a tokenizer of `kind` ("char" or "bpe") on `text`."""
    if kind == "char":
        return CharTokenizer.fit(text, vocab_size)
    if kind == "bpe":
        if vocab_size is None:
            raise ValueError("a BPE tokenizer needs an explicit vocab_size")
        return BpeTokenizer.fit(text, vocab_size, cache_dir)
    raise ValueError(
        f"unknown tokenizer kind {kind!r}; choose one of {TOKENIZER_KINDS}"
    )


def unk_rate(ids, unk_id: int) -> float:
    """Fraction of tokens in `ids` equal to `unk_id`."""
    return float(np.mean(np.asarray(ids) == unk_id))


def oov_alphabet_size(text: str, tokenizer) -> int:
    """Number of distinct characters of `text` that `tokenizer` maps to <unk>."""
    return sum(tokenizer.unk_id in tokenizer.encode(char) for char in set(text))


def bits_per_byte(
    total_nats: float, n_bytes: int, n_unk: int = 0, oov_alphabet: int = 0
) -> float:
    """Summed cross-entropy over a text of `n_bytes` UTF-8 bytes, in bits per byte.

        bpb = (total_nats + n_unk * ln(oov_alphabet)) / (n_bytes * ln 2)

    Predicting <unk> does not say which character it stands for, so each of
    the `n_unk` unknown tokens is charged ln(oov_alphabet) extra nats: naming
    one of the `oov_alphabet` unknown characters uniformly. A tokenizer thus
    cannot look good by collapsing characters into <unk>.
    """
    if n_unk > 0 and oov_alphabet < 1:
        raise ValueError(f"n_unk={n_unk} unknown tokens need oov_alphabet >= 1")
    unk_nats = n_unk * math.log(oov_alphabet) if n_unk else 0.0
    return (total_nats + unk_nats) / (n_bytes * math.log(2))
