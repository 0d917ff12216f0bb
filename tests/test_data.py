"""Synthetic source (exact entropy, loss floor) and batches pure in (seed, step)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data import (
    SyntheticSpec,
    alphabet,
    batch_key,
    block_len,
    entropy_nats,
    eval_windows,
    generate,
    loss_floor,
    mean_floor,
    sample_batch,
    split_tokens,
    symbol_probs,
)

# ---------------------------------------------------------------- synthetic


def test_alphabet_is_distinct_one_byte_printable_without_structure_chars():
    spec = SyntheticSpec(alphabet_size=94)
    symbols = alphabet(spec)
    assert len(set(symbols)) == 94
    assert all(
        char.isprintable() and len(char.encode("utf-8")) == 1 for char in symbols
    )
    assert "|" not in symbols and "\n" not in symbols
    with pytest.raises(ValueError):
        SyntheticSpec(alphabet_size=95)


def test_symbol_probs_are_zipf_most_frequent_first():
    probs = symbol_probs(SyntheticSpec(alphabet_size=4, zipf_exponent=1.0))
    np.testing.assert_allclose(probs, np.array([12, 6, 4, 3]) / 25)


def test_entropy_nats_limits_and_hand_value():
    assert entropy_nats(SyntheticSpec(alphabet_size=1)) == 0.0
    assert entropy_nats(
        SyntheticSpec(alphabet_size=10, zipf_exponent=0.0)
    ) == pytest.approx(math.log(10))
    probs = np.array([12, 6, 4, 3]) / 25
    expected = -sum(p * math.log(p) for p in probs)
    assert entropy_nats(
        SyntheticSpec(alphabet_size=4, zipf_exponent=1.0)
    ) == pytest.approx(expected)


def test_generate_blocks_copy_their_span_and_match_the_exact_entropy():
    spec = SyntheticSpec()
    n_blocks = 20_000
    text = generate(spec, n_blocks, seed=0)
    assert len(text) == n_blocks * block_len(spec) == n_blocks * 16
    blocks = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(n_blocks, -1)
    fresh = blocks[:, : spec.span]  # [n_blocks, span]
    assert (blocks[:, spec.span] == ord("|")).all()
    assert (blocks[:, spec.span + 1 : -1] == fresh).all()
    assert (blocks[:, -1] == ord("\n")).all()

    rank_of_byte = np.full(256, -1)
    rank_of_byte[np.frombuffer(alphabet(spec).encode("ascii"), dtype=np.uint8)] = (
        np.arange(spec.alphabet_size)
    )
    ranks = rank_of_byte[fresh].ravel()
    assert (ranks >= 0).all()
    surprisal = -np.log(symbol_probs(spec)[ranks])
    standard_error = surprisal.std() / math.sqrt(surprisal.size)
    assert abs(surprisal.mean() - entropy_nats(spec)) < 4 * standard_error


def test_generate_is_deterministic_per_seed():
    spec = SyntheticSpec(alphabet_size=8, span=5)
    assert generate(spec, 50, seed=1) == generate(spec, 50, seed=1)
    assert generate(spec, 50, seed=1) != generate(spec, 50, seed=2)


def test_loss_floor_hand_checked():
    # Blocks "xy|xy\n": window characters 0..13, target t is character t + 1.
    spec = SyntheticSpec(alphabet_size=4, span=2, zipf_exponent=1.0)
    h = entropy_nats(spec)
    expected = h * np.array([1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1])
    #                        y  |  x  y  \n x  y  |  x  y  \n x  y
    np.testing.assert_allclose(loss_floor(spec, 13), expected)
    assert mean_floor(spec, 6) == pytest.approx(2 * h / 6)


def test_loss_floor_over_two_32_character_blocks():
    spec = SyntheticSpec(span=15)
    floor = loss_floor(spec, 64)
    fresh_targets = np.flatnonzero(floor)
    np.testing.assert_array_equal(fresh_targets, np.r_[0:14, 31:46, 63])
    assert mean_floor(spec, 32) == pytest.approx(15 * entropy_nats(spec) / 32)


# ---------------------------------------------------------------- batches


def test_split_is_contiguous_aligned_and_train_windows_never_reach_val():
    ids = np.arange(1000, dtype=np.int32)
    train, val = split_tokens(ids, val_fraction=0.1, align=32)
    assert len(train) == 896
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)
    inputs, targets = sample_batch(jnp.asarray(train), batch_key(0, 0), 512, 31, 32)
    assert int(targets.max()) < len(train) <= int(val.min())


def test_sample_batch_is_a_pure_function_of_seed_and_step():
    tokens = jnp.arange(10_000, dtype=jnp.int32)
    first = sample_batch(tokens, batch_key(7, 3), 8, 16, 4)
    again = sample_batch(tokens, batch_key(7, 3), 8, 16, 4)
    next_step = sample_batch(tokens, batch_key(7, 4), 8, 16, 4)
    other_seed = sample_batch(tokens, batch_key(8, 3), 8, 16, 4)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], next_step[0])
    assert not np.array_equal(first[0], other_seed[0])


def test_sample_batch_with_traced_step_matches_eager():
    tokens = jnp.arange(500, dtype=jnp.int32)

    def scan_body(carry, step):
        return carry, sample_batch(tokens, batch_key(3, step), 4, 10, 5)[0]

    _, scanned = jax.lax.scan(scan_body, None, jnp.arange(3))  # [3, B, T]
    for step in range(3):
        np.testing.assert_array_equal(
            scanned[step], sample_batch(tokens, batch_key(3, step), 4, 10, 5)[0]
        )


def test_sample_batch_covers_every_aligned_start_uniformly():
    # 4 aligned starts (0, 8, 16, 24) leave room for 9 tokens in 33.
    tokens = jnp.arange(33, dtype=jnp.int32)
    inputs, _ = sample_batch(tokens, batch_key(0, 0), 8000, 8, 8)
    starts, counts = np.unique(np.asarray(inputs[:, 0]), return_counts=True)
    np.testing.assert_array_equal(starts, [0, 8, 16, 24])
    assert np.abs(counts - 2000).max() < 5 * math.sqrt(8000 * 0.25 * 0.75)


@settings(max_examples=12, deadline=None)  # each example compiles its own shapes
@given(
    batch_size=st.integers(1, 6),
    seq_len=st.integers(1, 40),
    align=st.integers(1, 40),
    spare=st.integers(0, 100),
    step=st.integers(0, 2**31 - 1),
)
def test_sample_batch_windows_are_aligned_shifted_and_in_range(
    batch_size, seq_len, align, spare, step
):
    n_tokens = seq_len + 1 + spare
    tokens = jnp.arange(n_tokens, dtype=jnp.int32)
    inputs, targets = sample_batch(
        tokens, batch_key(0, step), batch_size, seq_len, align
    )
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    assert inputs.shape == targets.shape == (batch_size, seq_len)
    assert inputs.dtype == targets.dtype == np.int32
    assert (inputs[:, 0] % align == 0).all()
    np.testing.assert_array_equal(inputs, inputs[:, :1] + np.arange(seq_len))
    np.testing.assert_array_equal(targets, inputs + 1)
    assert targets.max() < n_tokens


def test_sample_batch_rejects_too_short_tokens():
    with pytest.raises(ValueError, match="seq_len=8"):
        sample_batch(jnp.arange(8, dtype=jnp.int32), batch_key(0, 0), 2, 8, 1)


def test_eval_windows_are_evenly_spaced_aligned_and_deterministic():
    tokens = np.arange(1000, dtype=np.int32)
    inputs, targets = eval_windows(tokens, 4, 15, 32)
    np.testing.assert_array_equal(
        inputs[:, 0], [0, 224, 480, 736]
    )  # 31 starts: k = 0, 7, 15, 23
    np.testing.assert_array_equal(targets, inputs + 1)
    again, _ = eval_windows(tokens, 4, 15, 32)
    np.testing.assert_array_equal(inputs, again)
    with pytest.raises(ValueError):
        eval_windows(tokens, 32, 15, 32)


def test_window_floor_is_exact_per_window_and_averages_to_the_mean_floor():
    from data import SyntheticSpec, alphabet, block_len, generate, mean_floor, symbol_probs, window_floor

    spec = SyntheticSpec()
    text = generate(spec, 4000, seed=3)
    n = block_len(spec)
    windows = [text[i * n + 1:(i + 2) * n + 1] for i in range(1999)]  # targets of aligned 2-block windows
    nll = dict(zip(alphabet(spec), -np.log(symbol_probs(spec))))
    first = windows[0]
    fresh = first[:spec.span - 1] + first[n - 1:n - 1 + spec.span] + first[-1]  # the last target opens block 3
    by_hand = sum(nll[c] for c in fresh) / len(first)
    assert window_floor(spec, [first]) == pytest.approx(by_hand, rel=1e-12)
    assert window_floor(spec, windows) == pytest.approx(mean_floor(spec, 2 * n), rel=0.02)
