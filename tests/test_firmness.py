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
    claims = [{"kind": "statistical", "outcome": "reproduced", "firmness": {"p": 0.001}},
              {"kind": "statistical", "outcome": "opposite", "firmness": {"p": 0.03}},
              {"kind": "statistical", "outcome": "inconclusive", "firmness": {"p": 0.2}},
              {"kind": "statistical", "outcome": "inconclusive", "firmness": None},  # no interval: counted, p = 1
              {"kind": "exact", "outcome": "holds", "firmness": None}]  # not tested: left out
    decided = firmness.family(claims)
    assert [c["family_outcome"] for c in decided] == ["reproduced", "inconclusive", "inconclusive", "inconclusive"]
    assert [c["holm_p"] for c in decided] == pytest.approx([0.004, 0.09, 0.4, 1.0])


@pytest.mark.parametrize("pairs, decided, fragile", [((5, 0), False, True), ((6, 0), True, True),
                                                     ((7, 0), True, False), ((1, 1), False, False)])
def test_a_share_is_fragile_when_one_pair_of_seeds_decides_it(pairs, decided, fragile):
    only_correct, only_broken = pairs
    correct = [True] * only_correct + [False] * only_broken
    result = ConvergedShare().decide(correct, [not c for c in correct])
    assert (result["outcome"] != "inconclusive") is decided
    assert result["firmness"]["fragile"] is fragile


def test_no_spread_decides_at_an_infinite_distance_and_on_the_margin_at_none():
    decided = LOSS.decide([1.0, 1.0, 1.0], [1.5, 1.5, 1.5])
    assert decided["outcome"] == "reproduced" and decided["firmness"]["distance_se"] == math.inf
    assert decided["firmness"]["room"] == pytest.approx(0.49)
    on_margin = Effect("val_loss", 0.5, "").decide([1.0, 1.0], [1.5, 1.5])  # exactly the margin
    assert on_margin["outcome"] == "inconclusive"
    assert on_margin["firmness"]["distance_se"] == 0 and on_margin["firmness"]["fragile"]


def test_an_old_verdict_whose_reference_diverged_gets_no_firmness_and_its_own_margin_otherwise():
    from ablations.science.verdict import firmness_of

    specs, verdicts = fake_verdicts([(0.2, 0)])
    recorded = {k: v for k, v in verdicts[specs[0].name]["claims"][0].items() if k != "firmness"}
    assert firmness_of(specs[0], {**recorded, "why": "the correct variant diverged at step 40"}) is None
    wider = firmness_of(specs[0], {**recorded, "margin": 0.15})
    assert wider["distance_se"] < firmness_of(specs[0], recorded)["distance_se"]


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
        reworded = {**older, "says": "a claim the catalogue has since reworded"}  # its rule found by its description
        assert firmness_of(spec, reworded) == pytest.approx(recorded["firmness"])
        assert firmness_of(spec, {**reworded, "rule": "a rule the catalogue never had"}) is None


def test_the_report_decides_the_pages_claims_as_one_family_and_names_an_outcome_holm_takes_back():
    from ablations.catalogue import MISTAKES
    from ablations.reporting.markdown import family_section

    def claim(says, outcome, p, distance):
        return {"says": says, "source": "page", "kind": "statistical", "outcome": outcome,
                "firmness": {"p": p, "distance_se": distance, "fragile": distance < 1, "nearest": outcome}}

    specs = MISTAKES[:3]
    verdicts = {specs[0].name: {"claims": [claim("clear", "reproduced", 0.001, 5.0)]},
                specs[1].name: {"claims": [claim("marginal", "reproduced", 0.03, 0.4)]},
                specs[2].name: {"claims": [claim("undecided", "inconclusive", 0.5, 2.0)]}}
    lines = family_section(specs, verdicts)
    text = "\n".join(lines)
    assert "### The page's claims: 1 of 3 outcomes stand after Holm's correction; 1 fragile" in text
    (marginal,) = [line for line in lines if "| marginal |" in line]  # 0.03 · 2 = 0.06: taken back
    assert "| 0.03 | 0.06 | inconclusive (was reproduced) | 0.4 SE ⚠ fragile |" in marginal
    (clear,) = [line for line in lines if "| clear |" in line]
    assert "| 0.001 | 0.003 | reproduced | 5 SE |" in clear
