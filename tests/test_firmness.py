"""How firmly an outcome is decided (p of its own test, distance from the boundary in standard errors, fragility),
and Holm's correction over a family (ablations.science.firmness)."""
import math

import numpy as np
import pytest
from scipy import stats

from ablations.science import firmness
from ablations.science.rules import ConvergedShare, Effect, NoGain

LOSS = Effect("val_loss", 0.01, "nats/token")


def sample(effect, spread, n, seed):
    rng = np.random.default_rng(seed)
    correct = rng.normal(2.0, 0.1, n)
    return correct, correct + effect + rng.normal(0.0, spread, n)


@pytest.mark.parametrize("rule", [LOSS, Effect("val_loss", 0.01, "", higher=False), NoGain("val_loss", 0.01, "")])
def test_p_is_below_the_level_exactly_when_the_rule_decides_and_the_distance_has_the_sign_of_the_decision(rule):
    for seed in range(300):
        rng = np.random.default_rng(seed)
        result = rule.decide(*sample(rng.normal(0, 0.02), rng.uniform(1e-4, 0.03), int(rng.integers(2, 9)), seed))
        firm = result["firmness"]
        assert (firm["p"] < 0.05) == (result["outcome"] != "inconclusive"), result
        assert firm["distance_se"] >= 0 or math.isclose(firm["distance_se"], 0, abs_tol=1e-9)
        if result["outcome"] != "inconclusive":
            assert firm["nearest"] == result["outcome"]


def test_with_no_margin_the_p_of_a_reproduced_effect_is_the_paired_t_tests():
    correct, broken = sample(0.05, 0.02, 5, 0)
    result = Effect("val_loss", 0.0, "").decide(correct, broken)
    assert result["outcome"] == "reproduced"
    assert result["firmness"]["p"] == pytest.approx(stats.ttest_rel(broken, correct).pvalue, rel=1e-9)


def test_an_interval_half_a_standard_error_past_its_margin_is_fragile_and_one_far_past_it_is_not():
    differences = np.array([-1.0, 0.0, 1.0])  # std 1, se 1/sqrt(3)
    se, quantile = 1 / math.sqrt(3), stats.t.ppf(0.975, 2)
    for past, fragile in ((0.5, True), (3.0, False)):
        shift = LOSS.margin + (quantile + past) * se
        result = LOSS.decide(np.zeros(3), differences + shift)
        assert result["outcome"] == "reproduced"
        assert result["firmness"]["distance_se"] == pytest.approx(past)
        assert result["firmness"]["fragile"] is fragile


def test_an_undecided_interval_names_the_outcome_it_is_nearest_and_how_far_it_falls_short():
    result = LOSS.decide(*sample(0.03, 0.02, 3, 1))
    assert result["outcome"] == "inconclusive"
    assert result["firmness"]["nearest"] == "reproduced" and result["firmness"]["distance_se"] > 0


def test_no_interval_no_firmness():
    assert LOSS.decide([1.0], [2.0])["firmness"] is None
    assert LOSS.decide([1.0, 1.0], [2.0, float("nan")])["firmness"] is None


def test_holm_matches_the_step_down_by_hand():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> kept monotone at 0.06
    assert firmness.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert firmness.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert firmness.holm([]) == []


def test_a_family_keeps_an_outcome_only_while_its_adjusted_p_stays_below_the_level():
    claims = [{"outcome": "reproduced", "firmness": {"p": 0.001}}, {"outcome": "opposite", "firmness": {"p": 0.03}},
              {"outcome": "inconclusive", "firmness": {"p": 0.2}}, {"outcome": "holds", "firmness": None}]
    decided = firmness.family(claims)
    assert [c["family_outcome"] for c in decided] == ["reproduced", "inconclusive", "inconclusive"]
    assert [c["holm_p"] for c in decided] == pytest.approx([0.003, 0.06, 0.2])


@pytest.mark.parametrize("pairs, decided, fragile", [((5, 0), False, True), ((6, 0), True, True),
                                                     ((7, 0), True, False), ((1, 1), False, False)])
def test_a_share_is_fragile_when_one_pair_of_seeds_decides_it(pairs, decided, fragile):
    only_correct, only_broken = pairs
    correct = [True] * only_correct + [False] * only_broken
    result = ConvergedShare().decide(correct, [not c for c in correct])
    assert (result["outcome"] != "inconclusive") is decided
    assert result["firmness"]["fragile"] is fragile


def fake_verdicts(effects):
    """Verdicts of the first statistical page claim of some catalogue mistakes, decided by its real rule."""
    from ablations.catalogue import MISTAKES

    verdicts, specs = {}, []
    for (spec, claim), (effect, seed) in zip(((s, c) for s in MISTAKES for c in s.claims[:1]
                                              if hasattr(c.rule, "regions") and c.source == "page"), effects):
        correct, broken = sample(effect if claim.rule.__dict__.get("higher", True) else -effect, 0.01, 4, seed)
        decided = claim.rule.decide(correct, broken)
        verdicts[spec.name] = {"claims": [{"says": claim.says, "source": claim.source, "reference": "correct",
                                            **decided}]}
        specs.append(spec)
    return specs, verdicts


def test_a_verdict_recorded_without_firmness_gets_it_from_its_catalogue_rule():
    from ablations.science.verdict import firmness_of

    specs, verdicts = fake_verdicts([(0.2, 0), (0.0, 1)])
    for spec in specs:
        recorded = verdicts[spec.name]["claims"][0]
        older = {k: v for k, v in recorded.items() if k != "firmness"}
        assert firmness_of(spec, older) == pytest.approx(recorded["firmness"])
        assert firmness_of(spec, {**older, "says": "a claim the catalogue never made"}) is None


def test_the_report_decides_the_pages_claims_as_one_family():
    from ablations.reporting.markdown import family_section

    # one clear effect, one just past its margin (its p survives alone, not times three), one with no effect
    specs, verdicts = fake_verdicts([(0.3, 0), (0.03, 1), (0.0, 2)])
    lines = family_section(specs, verdicts)
    ps = [verdicts[s.name]["claims"][0]["firmness"]["p"] for s in specs]
    adjusted = firmness.holm(ps)
    stand = sum(p < 0.05 and verdicts[s.name]["claims"][0]["outcome"] != "inconclusive"
                for s, p in zip(specs, adjusted))
    assert f"### The page's claims: {stand} of 3 outcomes stand after Holm's correction" in "\n".join(lines)
    rows = [line for line in lines if line.startswith(f"| {specs[0].number} |")]
    assert len(rows) == 1 and f"| {adjusted[0]:.3g} |" in rows[0]
