"""Slower or worse: every claim read at two budgets by the rule fixed in ablations/science/budgets.py."""
import pytest

from ablations.science import budgets


def verdict(*outcomes):
    return {"claims": [{"says": f"claim {i}", "outcome": o} for i, o in enumerate(outcomes)]}


def test_each_claim_is_read_at_both_budgets_by_the_fixed_rule():
    result = budgets.compare(verdict("reproduced", "reproduced", "inconclusive", "no effect", "holds"),
                             verdict("reproduced", "no effect", "reproduced", "inconclusive", "holds"), 1500, 6000)
    assert [c["reading"] for c in result["claims"]] == [
        "holds at both budgets", "slower to train", "shows with longer training", "holds at neither budget",
        "holds at both budgets"]
    assert result["steps"] == [1500, 6000] and result["claims"][1]["short"] == "reproduced"
    assert budgets.describe(result)[1] == "slower to train: reproduced at 1500 steps, no effect at 6000 (claim 1)"


def test_two_budgets_that_decide_different_claims_are_refused():
    with pytest.raises(ValueError, match="different claims"):
        budgets.compare(verdict("reproduced"), {"claims": [{"says": "another", "outcome": "reproduced"}]}, 1, 4)
