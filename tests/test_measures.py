"""The standard measurements of one seed's training log (ablations.science.measures.standard), on hand-written logs
whose answers are known."""
import math

import pytest

from ablations.science import measures


def log(gradients: list[tuple[float, float]]) -> list[dict]:
    """A seed's rows, one per logged step: (first block's, last block's gradient norm), a validation loss each."""
    return [{"step": 10 * (i + 1), "train_ce": 2.0, "diverged_at": -1, "val_loss": 2.0, "grad_norm": first + last,
             "grad_norm/block_0": first, "grad_norm/block_1": 1.0, "grad_norm/block_2": last}
            for i, (first, last) in enumerate(gradients)]


def depth_ratios(gradients):
    measured = measures.standard(log(gradients), total_steps=10 * len(gradients), floor=None)
    return measured["grad_depth_ratio_median"], measured["grad_depth_ratio"]


def test_the_depth_ratio_is_the_median_over_logged_steps_and_the_first_step_is_kept_beside_it():
    # the first block's gradient is 1000x the last's at the first step, then equal: the gradients stop vanishing
    median, first = depth_ratios([(1e-3, 1.0), (1.0, 1.0), (2.0, 2.0), (1.0, 10.0), (5.0, 5.0)])
    assert first == pytest.approx(-3.0)
    assert median == pytest.approx(0.0)  # log10 ratios -3, 0, 0, -1, 0


def test_rows_with_a_zero_or_non_finite_gradient_are_left_out_of_the_median():
    median, first = depth_ratios([(0.0, 1.0), (1.0, math.inf), (math.nan, 1.0), (10.0, 1.0), (100.0, 1.0), (1.0, 0.0)])
    assert first == -math.inf  # the first step as before: a zero first block reads as infinitely vanished
    assert median == pytest.approx(1.5)  # log10 ratios 1 and 2 alone


def test_all_zero_gradients_give_nan_not_a_crash():
    median, first = depth_ratios([(0.0, 0.0)] * 3)
    assert math.isnan(median) and math.isnan(first)
    assert measures.standard(log([(0.0, 0.0)] * 3), 30, None)["zero_gradient"] == 1.0
