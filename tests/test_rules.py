"""The decision rules and the verdict of a pair, on synthetic measurements (no training)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ablations.catalogue import MISTAKES
from ablations.catalogue.schema import NATS
from ablations.science.rules import (CONFIDENCE, HOLDS, POWER, ConvergedShare, Effect, Exactly, Invariant, NoGain,
                                    paired, seeds_needed)
from ablations.science.verdict import CONVERGES, decide, numbers, summary
from model import GPTConfig

LOSS = Effect("val_loss", NATS, "nats/token")
CLAIMS = [(spec, claim) for spec in MISTAKES for claim in spec.claims]


def seed_measurements(spec, rng, n, shift=0.0):
    """n seeds of every metric the mistake's claims read, the same draws for every variant plus `shift`."""
    values = [{c.rule.metric: float(rng.normal(1.0, 0.05)) for c in spec.claims} | {"diverged_at": -1}
              for _ in range(n)]
    return {v: [{k: (x + shift if k != "diverged_at" and v == "broken" else x) for k, x in m.items()} for m in values]
            for v in spec.variants}


@pytest.mark.parametrize("spec, claim", CLAIMS, ids=lambda x: getattr(x, "name", None) or x.rule.metric)
@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_identical_variants_never_show_an_effect(spec, claim, n):
    """A switch that does nothing must never read as an effect of the mistake, on any claim."""
    measured = seed_measurements(spec, np.random.default_rng(n), n)
    result = claim.rule.decide([m[claim.rule.metric] for m in measured[claim.reference]],
                               [m[claim.rule.metric] for m in measured["broken"]], GPTConfig())
    if isinstance(claim.rule, NoGain):  # a claim of absence: nothing changed is exactly "no gain" (given 2 seeds)
        assert result["outcome"] == ("reproduced" if n >= 2 else "inconclusive")
    else:
        assert result["outcome"] in ("no effect", "fails") if n >= 2 or result["kind"] == "exact" else \
            result["outcome"] == "inconclusive"


@pytest.mark.parametrize("spec", [s for s in MISTAKES if any(c.source == "page" for c in s.claims)],
                         ids=lambda s: s.name)
def test_identical_variants_never_make_all_of_a_mistakes_page_claims_hold(spec):
    verdict = decide(spec, seed_measurements(spec, np.random.default_rng(0), 3), GPTConfig())
    page = [c["outcome"] for c in verdict["claims"] if c["source"] == "page"]
    assert not all(outcome in HOLDS for outcome in page) and \
        not verdict["verdict"].startswith(f"page claims: {len(page)} of")


@pytest.mark.parametrize("rule", [LOSS, Effect("copy_accuracy", 0.01, "of tokens", higher=False),
                                  NoGain("val_loss", NATS, "nats/token")], ids=lambda r: type(r).__name__)
def test_one_seed_is_always_inconclusive(rule):
    for broken in (1.0, 5.0, -5.0):
        result = rule.decide([1.0], [broken])
        assert result["outcome"] == "inconclusive" and "at least 2" in result["why"]


def noisy(mean_shift, spread=0.002, n=5, seed=0):
    rng = np.random.default_rng(seed)
    correct = rng.normal(1.4, 0.05, n)
    return correct, correct + mean_shift + rng.normal(0, spread, n)


def test_an_effect_well_beyond_the_margin_is_reproduced_and_reversed_is_opposite():
    correct, broken = noisy(0.5)
    assert LOSS.decide(correct, broken)["outcome"] == "reproduced"
    assert LOSS.decide(broken, correct)["outcome"] == "opposite"
    lower_is_claimed = Effect("copy_accuracy", 0.01, "of tokens", higher=False)
    assert lower_is_claimed.decide(broken, correct)["outcome"] == "reproduced"
    assert lower_is_claimed.decide(correct, broken)["outcome"] == "opposite"


def test_a_tiny_effect_with_a_tight_interval_is_no_effect_and_a_loose_one_inconclusive():
    assert LOSS.decide(*noisy(0.001, spread=0.001))["outcome"] == "no effect"
    loose = LOSS.decide(*noisy(0.001, spread=0.05, n=3))
    assert loose["outcome"] == "inconclusive" and "straddles" in loose["why"] and loose["seeds_needed"] > 3


def test_a_significant_effect_inside_the_margin_is_not_reproduced():
    """p < 0.05 against zero is not enough: the interval must clear the practical margin."""
    result = LOSS.decide(*noisy(0.005, spread=0.0005, n=8))
    assert result["p"] < 0.001 and result["outcome"] == "no effect"


def test_no_gain_needs_evidence_against_a_gain():
    assert NoGain("val_loss", NATS, "").decide(*noisy(0.0, spread=0.001))["outcome"] == "reproduced"
    assert NoGain("val_loss", NATS, "").decide(*noisy(-0.5))["outcome"] == "opposite"  # a real gain
    assert NoGain("val_loss", NATS, "").decide(*noisy(0.0, spread=0.05, n=3))["outcome"] == "inconclusive"


@settings(deadline=None, max_examples=50)
@given(st.lists(st.tuples(st.floats(0.5, 5), st.floats(-1, 1)), min_size=2, max_size=12))
def test_interval_and_p_are_scipys_paired_t_test(pairs):
    correct = np.array([c for c, _ in pairs])
    broken = correct + np.array([d for _, d in pairs])
    ours = paired(correct, broken)
    diffs = broken - correct
    if np.all(diffs == diffs[0]):
        assert ours["ci"] == [float(diffs[0])] * 2
        return
    reference = stats.ttest_rel(broken, correct)
    interval = reference.confidence_interval(CONFIDENCE)
    assert ours["p"] == pytest.approx(reference.pvalue, nan_ok=True)
    assert ours["ci"] == pytest.approx([interval.low, interval.high])
    half = stats.t.ppf(0.975, len(pairs) - 1) * np.std(diffs, ddof=1) / math.sqrt(len(pairs))
    assert ours["ci"] == pytest.approx([diffs.mean() - half, diffs.mean() + half])


def test_seeds_needed_is_the_smallest_n_with_the_power_asked_for():
    mean, std, distance = 0.03, 0.02, 0.02
    n = seeds_needed(mean, std, distance)
    width = lambda k: (stats.t.ppf(0.975, k - 1) + stats.t.ppf(POWER, k - 1)) * std / math.sqrt(k)  # noqa: E731
    assert width(n) < distance <= width(n - 1)
    assert seeds_needed(mean, std, 0.0) is None and seeds_needed(mean, 10.0, 1e-6) is None


def test_exact_rules_hold_or_fail_on_every_seed():
    leak = Invariant("causal_leak", 1e-3)
    assert leak.decide([0, 1e-5], [3.0, 40.0])["outcome"] == "holds"
    assert leak.decide([0, 1e-5], [3.0, 1e-4])["outcome"] == "fails"  # one broken seed is clean
    assert leak.decide([0, 0.5], [3.0, 40.0])["outcome"] == "fails"  # the correct model leaks too
    assert leak.decide([0], [float("nan")])["outcome"] == "holds"  # NaN is a violation, not a pass
    params = Exactly("n_params", lambda cfg: cfg.vocab_size * cfg.d_model, "vocab*d")
    cfg = GPTConfig(vocab_size=10, d_model=8)
    assert params.decide([100, 100], [180, 180], cfg)["outcome"] == "holds"
    assert params.decide([100, 100], [180, 181], cfg)["outcome"] == "fails"


def test_a_diverged_reference_makes_statistical_claims_inconclusive_and_a_diverged_broken_variant_is_named():
    spec = next(s for s in MISTAKES if s.name == "argmax_gradient")
    measured = seed_measurements(spec, np.random.default_rng(1), 3, shift=1.0)
    measured["correct"][1]["diverged_at"] = 40
    verdict = decide(spec, measured, GPTConfig())
    loss = next(c for c in verdict["claims"] if c["kind"] == "statistical")
    assert loss["outcome"] == "inconclusive" and "correct variant diverged at step 40" in loss["why"]
    measured["correct"][1]["diverged_at"], measured["broken"][0]["diverged_at"] = -1, 60
    assert decide(spec, measured, GPTConfig())["verdict"].startswith("diverged at step 60; page claims:")


def test_summary_says_which_page_claims_hold():
    claim = lambda source, outcome: {"source": source, "outcome": outcome}  # noqa: E731
    assert summary([claim("page", "reproduced"), claim("page", "inconclusive"), claim("lab", "holds")]) == \
        "page claims: 1 of 2 hold (1 inconclusive); lab claims: 1 of 1 holds"
    assert summary([claim("lab", "opposite")]) == "the page names no symptom; lab claims: 0 of 1 holds (1 opposite)"


def test_the_converged_share_is_an_exact_mcnemar_test_on_the_pairs_with_exact_intervals():
    rule = ConvergedShare()
    result = rule.decide([True] * 8, [False] * 8)  # 8 discordant pairs, all one way
    assert result["outcome"] == "reproduced" and result["p"] == pytest.approx(stats.binomtest(8, 8).pvalue)
    assert result["correct"]["ci"] == pytest.approx(list(stats.binomtest(8, 8).proportion_ci(CONFIDENCE, "exact")))
    assert result["mean"] == 1.0 and result["discordant"] == [8, 0]  # + is the claimed direction
    assert rule.decide([False] * 8, [True] * 8)["outcome"] == "opposite"
    three = rule.decide([True] * 3, [False] * 3)  # the most extreme pairs of 3 seeds: p = 0.25, no decision
    assert three["outcome"] == "inconclusive" and three["p"] == pytest.approx(0.25)
    concordant = rule.decide([True, False, True], [True, False, True])  # no discordant pair: nothing to test
    assert concordant["outcome"] == "inconclusive" and concordant["p"] == 1.0


FLOOR = 1.388


def on_the_copy_task(correct, broken, spec_name="narrow_ffn"):
    spec = next(s for s in MISTAKES if s.name == spec_name)
    seeds = lambda losses: [{"val_loss": x, "entropy_floor": FLOOR, "diverged_at": -1, "n_params": 1}  # noqa: E731
                            for x in losses]
    return spec, {"correct": seeds(correct), "broken": seeds(broken)}


def test_seeds_split_into_converged_and_not_are_read_on_the_seeds_where_the_reference_converged():
    spec, measured = on_the_copy_task([1.39, 2.10, 1.40, 1.39], [1.42, 1.43, 1.60, 1.425])
    verdict = decide(spec, measured, GPTConfig())
    loss = next(c for c in verdict["claims"] if c.get("metric") == "val_loss")
    assert loss["mixture"]["read_on"] == [0, 2, 3] and loss["n"] == 3  # the broken seed that failed stays: effect
    assert loss["mixture"]["converged"] == {"correct": [True, False, True, True], "broken": [True, True, False, True]}
    assert loss["differences"] == pytest.approx([1.42 - 1.39, 1.60 - 1.40, 1.425 - 1.39])
    assert "seeds split (converged: correct 3/4, broken 3/4); read on the 3 seeds where the correct" in loss["why"]
    share = verdict["claims"][-1]
    assert share["says"] == CONVERGES and share["kind"] == "share" and share["source"] == "lab"
    assert share["discordant"] == [1, 1] and share["outcome"] == "inconclusive"
    assert "converged: correct 3/4" in numbers(share) and "broken 3/4" in numbers(share)


def test_one_converged_reference_seed_is_too_few_and_says_why():
    spec, measured = on_the_copy_task([1.39, 2.10, 2.2], [3.2, 3.3, 3.25])
    loss = next(c for c in decide(spec, measured, GPTConfig())["claims"] if c.get("metric") == "val_loss")
    assert loss["outcome"] == "inconclusive" and "at least 2" in loss["why"] and loss["mixture"]["read_on"] == [0]


def test_a_sample_that_does_not_split_is_read_on_every_seed_and_has_no_share_claim():
    spec, measured = on_the_copy_task([1.39, 1.40, 1.39], [3.2, 3.3, 3.25])  # correct all converge, broken none
    verdict = decide(spec, measured, GPTConfig())
    loss = next(c for c in verdict["claims"] if c.get("metric") == "val_loss")
    assert "mixture" not in loss and loss["n"] == 3 and loss["outcome"] == "reproduced"
    assert [c["says"] for c in verdict["claims"]] == [c.says for c in spec.claims]


def test_without_a_known_floor_there_is_no_share_claim_and_no_mixture():
    spec, measured = on_the_copy_task([1.39, 2.10, 1.40], [1.42, 1.43, 1.60])
    for seeds in measured.values():
        for m in seeds:
            m["entropy_floor"] = None
    verdict = decide(spec, measured, GPTConfig())
    assert [c["says"] for c in verdict["claims"]] == [c.says for c in spec.claims]
    assert all("mixture" not in c for c in verdict["claims"])
