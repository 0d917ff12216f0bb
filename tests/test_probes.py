"""The symptom probes (ablations.science.probes) on stand-in models whose answers are known, no training: each probe
sees a model only through LanguageModel, so a hand-written forward and generate exercise it exactly."""
import math

import numpy as np
import pytest

from ablations.science import probes

V, N, T = 8, 6, 12
RNG = np.random.default_rng(0)
INPUTS = RNG.integers(1, V, (N, T))
TARGETS = np.roll(INPUTS, -1, axis=1)


def inputs(**changes) -> probes.ProbeInputs:
    long = RNG.integers(1, V, (N, 2 * T))
    base = dict(inputs=INPUTS, targets=TARGETS, long_inputs=long, long_targets=np.roll(long, -1, axis=1), unk_id=0,
                bytes_per_token=1.0, oov_alphabet=5, copy_span=None)
    return probes.ProbeInputs(**{**base, **changes})


def one_hot(tokens) -> np.ndarray:
    return np.eye(V, dtype=np.float32)[np.asarray(tokens)]


def model(forward, generate=None) -> probes.LanguageModel:
    return probes.LanguageModel(forward=forward, generate=generate)


CAUSAL = model(lambda tokens, mask: np.cumsum(one_hot(tokens), axis=1))  # position t sees tokens <= t
LEAKY = model(lambda tokens, mask: one_hot(tokens) + one_hot(tokens).mean(axis=1, keepdims=True))  # sees all
CURRENT_TOKEN = model(lambda tokens, mask: one_hot(tokens))  # sees its own token only: padding cannot move it
ABSOLUTE = model(lambda tokens, mask: one_hot(tokens) + np.arange(tokens.shape[1])[None, :, None])  # index


def test_causality_is_zero_for_a_causal_model_and_positive_for_one_that_sees_the_future():
    assert probes.causality(CAUSAL, inputs())["causal_leak"] == 0.0
    assert probes.causality(LEAKY, inputs())["causal_leak"] > 0.01


def ordinary_loss(lm: probes.LanguageModel, data: probes.ProbeInputs) -> float:
    return float(probes.token_losses(lm.forward(data.inputs, None), data.targets).mean())


def test_prefix_loss_equals_the_ordinary_loss_for_a_causal_model_and_differs_for_one_that_sees_the_future():
    data = inputs()
    assert abs(probes.prefix_loss(CAUSAL, data)["prefix_val_loss"] - ordinary_loss(CAUSAL, data)) < 1e-5
    assert abs(probes.prefix_loss(LEAKY, data)["prefix_val_loss"] - ordinary_loss(LEAKY, data)) > 1e-3


@pytest.mark.slow  # a forward per prefix length: T compiles per model
@pytest.mark.parametrize("norm_wrong_axis", [False, True])
def test_prefix_loss_of_the_labs_gpt_is_its_ordinary_loss_unless_its_norm_leaks_the_future(norm_wrong_axis):
    import jax
    import jax.numpy as jnp

    from model import GPT, GPTConfig, Mistakes, make_forward

    cfg = GPTConfig(vocab_size=V, d_model=16, n_heads=2, n_layers=2, max_len=T,
                    mistakes=Mistakes(norm_wrong_axis=norm_wrong_axis))
    params = GPT(cfg).init(jax.random.key(0), jnp.zeros((1, T), jnp.int32))
    forward = make_forward(cfg)
    lm = model(lambda tokens, mask: forward(params, jnp.asarray(tokens), mask))
    data = inputs()
    gap = abs(probes.prefix_loss(lm, data)["prefix_val_loss"] - ordinary_loss(lm, data))
    assert gap > 1e-3 if norm_wrong_axis else gap < 1e-4, gap


def test_left_padding_moves_each_row_right_behind_pad_tokens():
    tokens, mask = probes.left_padded(np.array([[1, 2, 3, 4], [5, 6, 7, 8]]), np.array([4, 2]), pad_id=0)
    assert tokens.tolist() == [[1, 2, 3, 4], [0, 0, 5, 6]]
    assert mask.tolist() == [[True] * 4, [False, False, True, True]]


def test_padding_gap_is_zero_when_padding_cannot_reach_real_tokens_and_positive_when_positions_shift():
    measured = probes.padding(CURRENT_TOKEN, inputs())
    assert measured["padding_gap"] == 0.0
    uniform = model(lambda tokens, mask: np.zeros((*np.shape(tokens), V), np.float32))
    assert probes.padding(uniform, inputs())["padded_val_loss"] == pytest.approx(math.log(V))
    assert probes.padding(ABSOLUTE, inputs())["padding_gap"] >= 1.0  # a row padded by k moves k positions


def test_cache_gap_is_the_largest_difference_between_cached_and_recomputed_logits():
    def generate(prompts, mask, n_new, use_cache):
        logits = np.zeros((len(prompts), n_new, V), np.float32)
        logits[0, -1, 3] = 0.25 if use_cache else 0.0
        return np.zeros((len(prompts), n_new), int), logits

    assert probes.cache(model(None, generate), inputs())["cache_gap"] == 0.25


def test_copy_accuracy_scores_the_generated_span_and_is_not_measured_without_a_copy_task():
    span = 4
    perfect = model(None, lambda prompts, mask, n, use_cache: (prompts[:, :n], None))
    off_by_one = model(None, lambda prompts, mask, n, use_cache: ((prompts[:, :n] + 1) % V, None))
    assert probes.copy(perfect, inputs(copy_span=span)) == {"copy_accuracy": 1.0}
    assert probes.copy(off_by_one, inputs(copy_span=span)) == {"copy_accuracy": 0.0}
    assert probes.copy(perfect, inputs()) == {}


def test_length_degradation_is_the_loss_past_the_training_length_minus_the_loss_within():
    def forward(tokens, mask):  # uniform within the training length, sure of the wrong token past it
        logits = np.zeros((*tokens.shape, V), np.float32)
        logits[:, T:, :] = -10.0
        logits[:, T:, 0] = 10.0  # targets are never 0
        return logits

    measured = probes.length(model(forward), inputs())
    assert measured["loss_within_train_len"] == pytest.approx(math.log(V), rel=1e-5)
    assert measured["loss_past_train_len"] == pytest.approx(20.0, abs=1e-3)
    assert measured["length_degradation"] == pytest.approx(20.0 - math.log(V), abs=1e-3)
    assert len(measured["loss_by_position"]) == 2 * T


def test_vocab_charges_each_unk_the_cost_of_naming_its_character():
    targets = TARGETS.copy()
    targets[:, :3] = 0  # a quarter of the targets are <unk>
    uniform = model(lambda tokens, mask: np.zeros((*np.shape(tokens), V), np.float32))
    measured = probes.vocab(uniform, inputs(targets=targets))
    assert measured["unk_rate"] == 0.25
    n = targets.size
    assert measured["bits_per_byte"] == pytest.approx((n * math.log(V) + n / 4 * math.log(5)) / (n * math.log(2)))


def test_every_probe_named_by_the_registry_exists():
    from ablations.catalogue import MISTAKES

    assert {name for spec in MISTAKES for name in spec.probes} <= set(probes.PROBES)
