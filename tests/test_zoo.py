"""The audit on the zoo (ablations/audit/zoo): models written apart from the lab's GPT, in other conventions, each
audited correct and with each of the 11 mistakes planted alone (d_model 32, seed 0), through ablations.catalogue.audit.

What is asserted: the correct model is clear on all 11 detectors (it offers every hook: params and loss,
hidden_states, generate, tokenizer, max_len, so none is "not applicable"); each mutant is detected by its own
detector, except where the audit is known to miss it off the lab's calibration (MISSED: strict xfail, the reading
in the reason); and no other detector fires on a mutant unless the mistake really does what that detector measures
(CONSEQUENCES).
The readings are tabled in docs/auditing-a-model.md, "The zoo". Minutes on 2 cores (the Hugging Face models only
where the hf extra is installed); the mutants whose mistake lies outside the forward pass reuse the correct model's
compiled functions."""
import functools

import numpy as np
import pytest

from ablations import catalogue
from ablations.audit.zoo import hf_models  # imports no transformers: each factory does
from ablations.audit.zoo import parallel_gpt, pure_jax_gpt

pytestmark = pytest.mark.slow  # audits 12 models

SETTINGS = {"d_model": 32, "seed": 0}
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


@pytest.mark.parametrize("factory", [pure_jax_gpt.factory, parallel_gpt.factory], ids=["pure_jax_gpt", "parallel_gpt"])
def test_the_correct_models_cached_decoding_agrees_with_its_recompute(factory):
    model = factory(**SETTINGS)
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


# ---------------------------------------------------------------- the second member: parallel_gpt (Flax NNX)
# A parallel block (x + attn(ln(x)) + ffn(ln(x))), LayerNorm and biases, GELU 4d, multi-query attention, ALiBi (no
# position table: position_overflow cannot be planted), GPT-NeoX init. Each mutant is audited on its own detector
# only (the cross-detections, measured once by hand, are in docs/auditing-a-model.md).


PARALLEL_MISSED: dict[str, str] = {}  # mutants the audit misses (a strict xfail with the reading): none at present


@functools.cache
def parallel_records(mistake: str | None = None) -> dict:
    overrides = {**SETTINGS, "mistakes": () if mistake is None else (mistake,)}
    return {r["mistake"]: r for r in catalogue.audit(parallel_gpt.factory, overrides,
                                                     only=None if mistake is None else [mistake])}


def test_parallel_gpt_plants_all_but_position_overflow_and_says_why():
    assert parallel_gpt.ALL_MISTAKES == tuple(catalogue.BY_NAME)
    assert set(parallel_gpt.ALL_MISTAKES) - set(parallel_gpt.MISTAKES) == {"position_overflow"}
    with pytest.raises(ValueError, match="position_overflow cannot be planted in parallel_gpt: ALiBi has no"):
        parallel_gpt.factory(mistakes="position_overflow")
    with pytest.raises(ValueError, match="unknown mistake 'post_norms'"):
        parallel_gpt.factory(mistakes="post_norms")


def test_parallel_gpt_correct_is_clear_on_every_detector():
    results = parallel_records()
    assert {m: r["status"] for m, r in results.items()} == dict.fromkeys(catalogue.DETECTORS, "clear"), results
    assert results["position_overflow"]["why"].startswith("swap past max_len=4")  # ALiBi extrapolates: a reading


@pytest.mark.parametrize("mistake", [pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=PARALLEL_MISSED[m]))
                                     if m in PARALLEL_MISSED else m for m in parallel_gpt.MISTAKES])
def test_each_parallel_gpt_mutant_is_detected_by_its_own_detector(mistake):
    result = parallel_records(mistake)[mistake]
    assert result["status"] == "detected", result


# ---------------------------------------------------------------- Hugging Face's Flax causal LMs (extra: hf)
# ablations/audit/zoo/hf_models.py: GPT-Neo, GPT-J, OPT, Llama, Mistral, BLOOM, Gemma, XGLM from small configs, with the
# mistakes each can carry planted (by config where the library has a switch, else by the wrapper). The correct
# model is audited on all 11 detectors, each mutant on its own.


# the correct model's statuses that are not "clear", because the library model really has the mistake built in
HF_BUILT_IN = {key: "detected" for key in hf_models.BUILT_IN}
# where the audit is wrong or cannot run on the correct model: a strict xfail with the reading
HF_WRONG: dict[tuple[str, str], str] = {}  # none at present
# mutants the audit misses: a strict xfail with the reading (none at present)
HF_MISSED: dict[tuple[str, str], str] = {}


def hf_params(cases, reasons):
    return [pytest.param(*case, id="-".join(case),
                         marks=[pytest.mark.xfail(strict=True, reason=reasons[case])] if case in reasons else [])
            for case in cases]


@functools.cache
def hf_records(family: str, mistake: str | None = None) -> dict:
    """The family's model (mistake planted; None: correct) audited: on all 11 detectors when correct, else on the
    mistake's own."""
    pytest.importorskip("transformers", reason="optional extra: pip install -e '.[hf]'")
    overrides = {**SETTINGS, "mistakes": () if mistake is None else (mistake,)}
    return {r["mistake"]: r for r in catalogue.audit(getattr(hf_models, family), overrides,
                                                     only=None if mistake is None else [mistake])}


def test_hf_zoo_says_what_each_family_cannot_carry():
    pytest.importorskip("transformers", reason="optional extra: pip install -e '.[hf]'")
    assert hf_models.MISTAKES == tuple(catalogue.BY_NAME)
    with pytest.raises(ValueError, match="post_norm cannot be planted in llama: the block's order is code"):
        hf_models.llama(mistakes="post_norm")
    with pytest.raises(ValueError, match="untied_embeddings cannot be planted in llama: built in: Flax Llama"):
        hf_models.llama(mistakes="untied_embeddings")
    with pytest.raises(ValueError, match="unknown mistake 'post_norms'"):
        hf_models.opt(mistakes="post_norms")
    assert all(hf_models.how_planted(family, "argmax_gradient") for family in hf_models.FAMILIES)


@pytest.mark.parametrize("family, detector", hf_params(
    [(family, detector) for family in hf_models.FAMILIES for detector in catalogue.DETECTORS], HF_WRONG))
def test_each_hf_correct_model_reads_clear_unless_the_library_builds_the_mistake_in(family, detector):
    result = hf_records(family)[detector]
    assert result["status"] == HF_BUILT_IN.get((family, detector), "clear"), result


@pytest.mark.parametrize("family, mistake", hf_params(
    [(family, mistake) for family in hf_models.FAMILIES for mistake in hf_models.plantable(family)], HF_MISSED))
def test_each_hf_mutant_is_detected_by_its_own_detector(family, mistake):
    result = hf_records(family, mistake)[mistake]
    assert result["status"] == "detected", result


# ---------------------------------------------------------------- detectors 3 and 6 off the lab's layout (pure_jax_gpt)
# Detector 3 reads the FFN's parameters past attention's (a gated FFN by its equivalent width, 1.5·hidden/d_model),
# detector 6 whether the logits are an affine function of the last hidden state or of it normalised: neither counts
# on the lab's block layout or on how the stream's scale changes with depth. Where the mutant leaves them nothing
# to read, they say so:
BLINDED.update({
    # statistics over the sequence axis: the first token sees the later ones, so no one-token context (3), and the
    # logits follow neither the stream nor the stream normalised token by token (6)
    "norm_wrong_axis": {"narrow_ffn", "no_final_norm"},
    "argmax_gradient": {"narrow_ffn"},  # a flat objective: no gradient tells attention's parameters apart (3)
})


@pytest.mark.parametrize("d_model", (16, 32, 64))
def test_the_ffn_width_reads_swiglus_equivalent_width_and_the_narrow_mutant(d_model):
    for seed in (0, 1, 2):
        [correct], [narrow] = (catalogue.audit(pure_jax_gpt.factory, {"d_model": d_model, "seed": seed, "mistakes": m},
                                               only=("narrow_ffn",)) for m in ((), ("narrow_ffn",)))
        hidden = pure_jax_gpt.ffn_hidden(d_model)  # 8d/3 rounded up: 3·d·hidden / 2d² = 4.5, 4.125, 4.125
        assert correct["status"] == "clear" and correct["value"] == 1.5 * hidden / d_model, correct
        assert narrow["status"] == "detected" and narrow["value"] == 1.5, narrow  # hidden = d: 3·d² / 2d²


@pytest.mark.parametrize("d_model", (16, 32, 64))
def test_the_final_norm_is_read_from_the_output_layer_not_from_the_streams_scale(d_model):
    for seed in (0, 1, 2):
        status = {m: catalogue.audit(pure_jax_gpt.factory, {"d_model": d_model, "seed": seed, "mistakes": m},
                                     only=("no_final_norm",))[0]["status"]
                  for m in ((), ("no_residual",), ("no_final_norm",))}
        assert status == {(): "clear", ("no_residual",): "clear", ("no_final_norm",): "detected"}, (seed, status)


def test_a_residual_free_stream_at_a_small_vocabulary_does_not_read_as_a_missing_final_norm():
    # vocab 32, d_model 16: the logit scale of a final-normed, residual-free model moves 20% between depths 1 and 8
    # (seed 2), which a comparison of scales across depths took for a missing final norm
    for seed in (0, 1, 2):
        [record] = catalogue.audit(pure_jax_gpt.factory, {"d_model": 16, "vocab_size": 32, "seed": seed,
                                                          "mistakes": ("no_residual",)}, only=("no_final_norm",))
        assert record["status"] == "clear", record
