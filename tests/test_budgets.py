"""Slower or worse: every claim read at two budgets by the rule fixed in ablations/science/budgets.py."""
from ablations.science import budgets


def verdict(*outcomes):
    return {"claims": [{"says": f"claim {i}", "outcome": o} for i, o in enumerate(outcomes)]}


def test_each_claim_is_read_at_both_budgets_by_the_fixed_rule():
    result = budgets.compare(
        verdict("reproduced", "reproduced", "inconclusive", "no effect", "holds", "reproduced", "reproduced",
                "not measured"),
        verdict("reproduced", "no effect", "reproduced", "inconclusive", "fails", "inconclusive", "opposite",
                "not measured"),
        1500, 6000)
    assert [c["reading"] for c in result["claims"]] == [
        "holds at both budgets", "slower to train", "shows with longer training",
        "holds at neither budget (no effect, then inconclusive)", "slower to train",
        "holds at the short budget; longer: inconclusive", "holds at the short budget; longer: opposite",
        "not measured at either budget"]
    assert result["steps"] == [1500, 6000] and result["claims"][1]["short"] == "reproduced"
    assert budgets.describe(result)[1] == "slower to train: reproduced at 1500 steps, no effect at 6000 (claim 1)"


def test_a_claim_the_short_budget_lacks_is_not_compared():
    longer = {"claims": [{"says": "claim 0", "outcome": "reproduced"}, {"says": "another", "outcome": "holds"}]}
    result = budgets.compare(verdict("reproduced"), longer, 1, 4)
    assert [c["reading"] for c in result["claims"]] == ["holds at both budgets",
                                                         "not compared: the short budget has no such claim"]
