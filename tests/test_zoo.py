"""The audit on the zoo (tests/zoo): models written apart from the lab's GPT, in other conventions, each audited
correct and with each of the 11 mistakes planted alone (d_model 32, seed 0), through ablations.catalogue.audit.

What is asserted: the correct model is clear on all 11 detectors (it offers every hook: params and loss,
hidden_states, generate, tokenizer, max_len, so none is "not applicable"); each mutant is detected by its own
detector, except where the audit is known to miss it off the lab's calibration (MISSED: strict xfail, the reading
in the reason); and no other detector fires on a mutant unless the mistake really does what that detector measures
(CONSEQUENCES).
The readings are tabled in docs/auditing-a-model.md, "The zoo". 40-60 s on 2 cores: 12 audits, the mutants whose
mistake lies outside the forward pass reuse the correct model's compiled functions."""
import functools

import numpy as np
import pytest

from ablations import catalogue
from zoo import pure_jax_gpt

pytestmark = pytest.mark.slow  # audits 12 models

SETTINGS = {"d_model": 32, "seed": 0}  # no_residual is detected here on a thin margin, and missed at d_model 16
# mutants the audit misses, with why (a strict xfail: a fix of the detector makes these tests fail until updated);
# none at present
MISSED: dict[str, str] = {}
# detectors that fire on another mistake's model because that mistake really does what they measure: statistics
# over the sequence axis leak across positions, so left padding and one-token cached decoding change the logits
CONSEQUENCES = {"norm_wrong_axis": {"padding_mask", "stale_kv_cache"}}
# detectors that cannot measure a mutant, and why (none at present)
BLINDED: dict[str, set] = {}


@functools.cache
def records(mistake: str | None = None) -> dict:
    """mistake -> its record, auditing the zoo model with `mistake` planted (None: the correct model); once each."""
    overrides = {**SETTINGS, "mistakes": () if mistake is None else (mistake,)}
    return {r["mistake"]: r for r in catalogue.audit(pure_jax_gpt.factory, overrides)}


def test_the_zoo_model_plants_the_catalogues_mistakes_and_refuses_others():
    assert pure_jax_gpt.MISTAKES == tuple(catalogue.BY_NAME)
    with pytest.raises(ValueError, match="unknown mistake 'post_norms'; valid choices: post_norm, "):
        pure_jax_gpt.factory(mistakes="post_norms")


def test_the_correct_model_is_clear_on_every_detector():
    results = records()
    assert {m: r["status"] for m, r in results.items()} == dict.fromkeys(catalogue.DETECTORS, "clear"), results
    assert results["position_overflow"]["why"].startswith("raises past max_len=4: ValueError")  # refuses, not clamps


def test_the_correct_models_cached_decoding_agrees_with_its_recompute():
    model = pure_jax_gpt.factory(**SETTINGS)
    prompts = np.arange(1, 33, dtype=np.int32).reshape(4, 8)
    mask = np.arange(8)[None] >= np.array([[0], [1], [3], [5]])  # left padding
    (cached, cached_logits), (recomputed, recomputed_logits) = (model.generate(prompts, mask, 8, use_cache)
                                                                for use_cache in (True, False))
    np.testing.assert_array_equal(cached, recomputed)
    np.testing.assert_allclose(cached_logits, recomputed_logits, atol=1e-4)


@pytest.mark.parametrize("mistake", [pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=MISSED[m]))
                                     if m in MISSED else m for m in pure_jax_gpt.MISTAKES])
def test_each_mutant_is_detected_by_its_own_detector(mistake):
    result = records(mistake)[mistake]
    assert result["status"] == "detected", result


@pytest.mark.parametrize("mistake", pure_jax_gpt.MISTAKES)
def test_no_other_detector_fires_on_a_mutant_unless_the_mistake_causes_it(mistake):
    others = {m: r["status"] for m, r in records(mistake).items() if m != mistake}
    expected = {m: "detected" if m in CONSEQUENCES.get(mistake, ()) else
                "not applicable" if m in BLINDED.get(mistake, ()) else "clear" for m in others}
    assert others == expected, records(mistake)
