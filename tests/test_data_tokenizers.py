"""Char and BPE tokenizers, the unknown-token rate and bits-per-byte accounting."""

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import data.tokenizers
from data import (
    BpeTokenizer,
    CharTokenizer,
    SyntheticSpec,
    alphabet,
    bits_per_byte,
    block_len,
    generate,
    make_tokenizer,
    oov_alphabet_size,
    symbol_probs,
    unk_rate,
)

CORPUS = "the cat sat on the mat.\nthe dog sat on the log!\n" * 50


def test_char_round_trip_and_explicit_unk():
    tokenizer = CharTokenizer.fit(CORPUS)
    assert tokenizer.unk_id == 0
    assert tokenizer.vocab_size == len(set(CORPUS)) + 1
    ids = tokenizer.encode(CORPUS)
    assert ids.dtype == np.int32 and len(ids) == len(CORPUS)
    assert (ids > 0).all()
    assert tokenizer.decode(ids) == CORPUS
    np.testing.assert_array_equal(
        tokenizer.encode("cat€"), np.r_[tokenizer.encode("cat"), 0]
    )
    assert tokenizer.decode(tokenizer.encode("cat€")) == "cat\ufffd"


def test_char_vocab_keeps_most_frequent_and_breaks_ties_by_code():
    tokenizer = CharTokenizer.fit("cccbbxa", vocab_size=3)
    assert tokenizer.known_chars == "cb"
    np.testing.assert_array_equal(tokenizer.encode("abcx"), [0, 2, 1, 0])
    assert CharTokenizer.fit("xa", vocab_size=2).known_chars == "a"


def test_char_vocab_cap_gives_the_zipf_tail_as_unk_rate():
    spec = SyntheticSpec()
    n_blocks = 20_000
    text = generate(spec, n_blocks, seed=0)
    n_known_symbols = (
        8  # well separated in frequency from rank 8, and below '|' and '\n'
    )
    tokenizer = CharTokenizer.fit(text, vocab_size=1 + 2 + n_known_symbols)
    assert set(tokenizer.known_chars) == set("|\n" + alphabet(spec)[:n_known_symbols])

    fresh_share = (
        2 * spec.span / block_len(spec)
    )  # fresh and copied symbols per character
    tail_mass = symbol_probs(spec)[n_known_symbols:].sum()
    standard_error = fresh_share * math.sqrt(
        tail_mass * (1 - tail_mass) / (n_blocks * spec.span)
    )
    rate = unk_rate(tokenizer.encode(text), tokenizer.unk_id)
    assert abs(rate - fresh_share * tail_mass) < 4 * standard_error
    assert oov_alphabet_size(text, tokenizer) == spec.alphabet_size - n_known_symbols


def test_char_encodes_a_megabyte_fast():
    text = generate(SyntheticSpec(), 32_000, seed=0)  # 1 MB
    tokenizer = CharTokenizer.fit(text, vocab_size=40)
    start = time.perf_counter()
    tokenizer.encode(text)
    assert time.perf_counter() - start < 0.5


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=200), cap=st.integers(1, 20))
def test_char_round_trip_on_random_text(text, cap):
    full = CharTokenizer.fit(text)
    assert full.decode(full.encode(text)) == text
    capped = CharTokenizer.fit(text, vocab_size=cap)
    assert capped.vocab_size <= cap
    expected = "".join(c if c in capped.known_chars else "\ufffd" for c in text)
    assert capped.decode(capped.encode(text)) == expected


def test_bpe_round_trips_known_text_and_marks_unseen_bytes_unk(tmp_path):
    tokenizer = BpeTokenizer.fit(CORPUS, vocab_size=60, cache_dir=tmp_path)
    assert tokenizer.unk_id == 0
    ids = tokenizer.encode("the cat sat on the log.\n")
    assert ids.dtype == np.int32 and tokenizer.unk_id not in ids
    assert len(ids) < len("the cat sat on the log.\n")  # merges happened
    assert tokenizer.decode(ids) == "the cat sat on the log.\n"
    assert tokenizer.unk_id in tokenizer.encode("the zebra")
    assert oov_alphabet_size("the zebra", tokenizer) == 3  # 'z', 'b', 'r' never seen


def test_bpe_second_fit_loads_from_cache(tmp_path, monkeypatch):
    first = BpeTokenizer.fit(CORPUS, vocab_size=60, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("bpe-60-*.json")

    def fail(*args):
        raise AssertionError("retrained despite a cached tokenizer")

    monkeypatch.setattr(data.tokenizers, "_train_bpe", fail)
    second = BpeTokenizer.fit(CORPUS, vocab_size=60, cache_dir=tmp_path)
    np.testing.assert_array_equal(second.encode(CORPUS), first.encode(CORPUS))
    with pytest.raises(AssertionError, match="retrained"):
        BpeTokenizer.fit(CORPUS, vocab_size=61, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="retrained"):
        BpeTokenizer.fit(CORPUS + "x", vocab_size=60, cache_dir=tmp_path)


def test_make_tokenizer_kinds(tmp_path):
    assert isinstance(make_tokenizer("char", CORPUS, None), CharTokenizer)
    assert isinstance(
        make_tokenizer("bpe", CORPUS, 60, cache_dir=tmp_path), BpeTokenizer
    )
    with pytest.raises(ValueError, match="'wordpiece'.*char.*bpe") as error:
        make_tokenizer("wordpiece", CORPUS, 60)
    assert "\n" not in str(error.value)


def test_unk_rate():
    assert unk_rate(np.array([0, 1, 2, 0]), unk_id=0) == 0.5


def test_bits_per_byte_hand_numbers_and_unk_charge():
    assert bits_per_byte(100 * math.log(2), n_bytes=50) == pytest.approx(2.0)
    # 3 unks among 4 unknown characters cost 3 * 2 bits over 6 bytes.
    assert bits_per_byte(0.0, n_bytes=6, n_unk=3, oov_alphabet=4) == pytest.approx(1.0)
    assert bits_per_byte(
        6 * math.log(2), n_bytes=6, n_unk=3, oov_alphabet=4
    ) == pytest.approx(2.0)
    assert bits_per_byte(1.0, n_bytes=1, n_unk=5, oov_alphabet=1) == pytest.approx(
        1 / math.log(2)
    )
    with pytest.raises(ValueError):
        bits_per_byte(1.0, n_bytes=1, n_unk=1, oov_alphabet=0)
