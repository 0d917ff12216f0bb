"""Learning-rate grids (comparison=best_lr): every seed at every rate in one compiled program, each variant chosen
at its best rate on the selection split, the choice and the whole curve kept."""
import json
import math

import jax
import numpy as np
import pytest
from conftest import TINY, run_lab

from ablations import catalogue
from ablations.runner.config import composed, resolve
from ablations.runner.training import Members, TrainSettings, init_state, layer_groups, make_train_chunk, seed_slice
from ablations.science import learning_rates
from model import GPTConfig


def rows_of(final: dict, diverged=None) -> list[dict]:
    """Log rows of a grid: {(seed, lr): final selection loss}, two rows per member (the last one counts)."""
    diverged = diverged or {}
    return [{"step": step, "seed": seed, "peak_lr": lr, "selection_loss": loss + (1.0 if step == 1 else 0.0),
             "val_loss": loss - 0.1, "diverged_at": diverged.get((seed, lr), -1) if step == 2 else -1}
            for step in (1, 2) for (seed, lr), loss in final.items()]


def test_the_chosen_rate_has_the_lowest_mean_final_selection_loss():
    final = {(0, 1e-3): 2.0, (1, 1e-3): 2.2, (0, 3e-3): 1.5, (1, 3e-3): 1.9, (0, 1e-2): 1.6, (1, 1e-2): 1.7}
    choice = learning_rates.choose(rows_of(final), (1e-3, 3e-3, 1e-2), [0, 1])
    assert choice["chosen"] == 1e-2 and choice["at_edge"]  # mean 1.65 beats 1.7; the grid's top end
    assert [entry["score"] for entry in choice["by_lr"]] == pytest.approx([2.1, 1.7, 1.65])
    assert choice["by_lr"][0]["val_loss"] == pytest.approx([1.9, 2.1])


def test_a_diverged_seed_rules_its_rate_out_and_an_inner_choice_is_not_at_an_edge():
    final = {(0, 1e-3): 2.0, (1, 1e-3): 2.0, (0, 3e-3): 1.5, (1, 3e-3): 1.5, (0, 1e-2): 1.0, (1, 1e-2): math.nan}
    choice = learning_rates.choose(rows_of(final, {(1, 1e-2): 7}), (1e-3, 3e-3, 1e-2), [0, 1])
    assert choice["chosen"] == 3e-3 and not choice["at_edge"] and not choice["all_diverged"]
    assert choice["by_lr"][2]["score"] == math.inf and choice["by_lr"][2]["diverged"] == [-1, 7]


def test_when_every_rate_diverged_the_choice_says_so():
    final = {(0, 1e-3): math.nan, (0, 1e-2): math.nan}
    choice = learning_rates.choose(rows_of(final, {(0, 1e-3): 3, (0, 1e-2): 2}), (1e-3, 1e-2), [0])
    assert choice["all_diverged"] and choice["chosen"] == 1e-3


def test_the_one_line_names_the_grid_each_rate_and_an_end_of_the_grid():
    kept = {"rule": learning_rates.RULE, "grid": [1e-3, 3e-3, 1e-2], "chosen": {"correct": 3e-3, "broken": 1e-2},
            "at_edge": ["broken"]}
    line = learning_rates.describe(kept)
    assert "[0.001, 0.003, 0.01]" in line and "correct 0.003" in line and "broken 0.01 (an end of the grid)" in line


def test_members_are_every_seed_at_every_rate_lr_major():
    members = Members.of(TrainSettings(lr_grid=[1e-3, 1e-2]), [4, 5])
    assert members.seeds == (4, 5, 4, 5) and members.peak_lrs == (1e-3, 1e-3, 1e-2, 1e-2) and members.grid
    assert members.keys == [(4, 1e-3), (5, 1e-3), (4, 1e-2), (5, 1e-2)]
    single = Members.of(TrainSettings(lr=3e-3), [4, 5])
    assert single.peak_lrs == (3e-3, 3e-3) and not single.grid and single.keys == [4, 5]


@pytest.mark.parametrize("grid", [[0.0], [1e-3, 1e-3], [math.inf]], ids=["zero", "repeated", "infinite"])
def test_a_grid_of_nonsense_is_refused(grid):
    with pytest.raises(ValueError, match="train.lr_grid"):
        TrainSettings(lr_grid=grid)


def test_best_lr_trains_at_the_grid_the_catalogue_declares_and_holds_out_a_selection_split():
    for spec in catalogue.MISTAKES:
        resolved = resolve(composed([f"mistake={spec.name}", "comparison=best_lr"]))
        assert resolved["train"]["lr_grid"] == list(spec.lr_grid) and len(spec.lr_grid) >= 4
        assert resolved["data"]["selection_share"] == 0.5
        assert spec.lr_grid == tuple(sorted(spec.lr_grid)) and spec.settings.get("train.lr", 1e-2) in spec.lr_grid
        one = resolve(composed([f"mistake={spec.name}"]))  # the default: the one rate of the mistake's settings
        assert one["train"]["lr_grid"] == [] and one["data"]["selection_share"] == 0.0


SETTINGS = TrainSettings(steps=8, batch_size=4, seq_len=16, warmup=2, log_every=2, eval_every=2, ckpt_every=2)
TOKENS = jax.random.randint(jax.random.key(0), (4000,), 0, 20)
CFG = GPTConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=1, max_len=16)


def train_ce(s: TrainSettings, seeds) -> np.ndarray:
    """[chunks, members] training cross-entropy of every member."""
    members = Members.of(s, seeds)
    state = init_state(CFG, s, list(members.seeds))
    chunk = make_train_chunk(CFG, s, layer_groups(seed_slice(state["params"], 0)), 1)
    out = []
    for start in range(0, s.steps, s.log_every):
        state, metrics = chunk(state, TOKENS, members.arrays(), start)
        out.append(np.asarray(metrics["train_ce"]))
    return np.array(out)


@pytest.mark.slow  # compiles three training programs
def test_a_grid_member_trains_as_a_run_at_its_rate_alone():
    """The rate is data in one program; each member follows the run of its own rate up to float rounding (its bits
    depend on the grid it trained in: the grid is part of the run's identity)."""
    grid = train_ce(TrainSettings(**{**SETTINGS.__dict__, "lr_grid": (1e-3, 3e-2)}), [0, 1])
    for column, lr in ((slice(0, 2), 1e-3), (slice(2, 4), 3e-2)):
        alone = train_ce(TrainSettings(**{**SETTINGS.__dict__, "lr": lr}), [0, 1])
        np.testing.assert_allclose(grid[:, column], alone, rtol=2e-4)
    assert np.abs(grid[-1, :2] - grid[-1, 2:]).min() > 1e-3  # the rates differ in effect, not just in name


def grid_and_longer(results):
    """The grid run of a best_lr run, and the longer-budget run that follows it."""
    runs = sorted((results / "narrow_ffn").iterdir(), key=lambda d: (d / "learning_rates.json").exists())
    assert len(runs) == 2 and json.loads((runs[0] / "config.json").read_text())["follows"] == runs[1].name
    return runs[1], runs[0]


@pytest.mark.slow
def test_a_best_lr_run_chooses_each_variants_rate_measures_it_there_plots_the_curve_and_retrains_longer(tmp_path):
    args = ["mistake=narrow_ffn", "comparison=best_lr", *TINY, "wandb.mode=disabled"]
    run_lab(*args, f"results_dir={tmp_path / 'a'}")
    run, longer = grid_and_longer(tmp_path / "a")
    choice = json.loads((run / "learning_rates.json").read_text())
    verdict = json.loads((run / "verdict.json").read_text())
    measured = json.loads((run / "measurements.json").read_text())
    spec = catalogue.lookup("narrow_ffn")
    assert choice["grid"] == list(spec.lr_grid) and verdict["learning_rates"]["grid"] == list(spec.lr_grid)
    for variant in spec.variants:
        picked = choice["variants"][variant]
        scores = [entry["score"] for entry in picked["by_lr"]]
        assert picked["chosen"] == spec.lr_grid[int(np.argmin(scores))] == verdict["learning_rates"]["chosen"][variant]
        assert [m["peak_lr"] for m in measured[variant]] == [picked["chosen"]] * 2  # both seeds, at the chosen rate
        rows = [json.loads(line) for line in (run / variant / "metrics.jsonl").read_text().splitlines()]
        assert {(r["seed"], r["peak_lr"]) for r in rows} == {(s, lr) for s in (0, 1) for lr in spec.lr_grid}
        final = [r for r in rows if r["step"] == 4 and r["peak_lr"] == picked["chosen"]]
        assert [r["val_loss"] for r in final] == [m["val_loss"] for m in measured[variant]]
        assert all("selection_loss" in r for r in final)
    assert (run / "figures" / "lr_sensitivity.png").stat().st_size > 5000
    longer_config, longer_verdict = (json.loads((longer / name).read_text())
                                     for name in ("config.json", "verdict.json"))
    assert longer_config["steps"] == 4 * 4 and longer_config["follows"] == run.name  # TINY's 4 steps, times 4
    assert longer_config["seed"] == 2  # fresh seeds: the grid's were 0 and 1
    assert {v: c["train.lr"] for v, c in longer_config["variants"].items()} == verdict["learning_rates"]["chosen"]
    assert [c["says"] for c in longer_verdict["budgets"]["claims"]] == [c["says"] for c in verdict["claims"]]
    assert longer_verdict["budgets"]["steps"] == [4, 16]
    for claim, before, after in zip(longer_verdict["budgets"]["claims"], verdict["claims"], longer_verdict["claims"]):
        assert (claim["short"], claim["longer"]) == (before["outcome"], after["outcome"])
    rows = [json.loads(line) for line in (longer / "correct" / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == 16 and {r["lr"] for r in rows if r["step"] == 2} != {0.0}
    run_lab(*args, f"results_dir={tmp_path / 'b'}")  # the same grid again: the same bits
    again, _ = grid_and_longer(tmp_path / "b")
    assert again.name == run.name
    strip = lambda path: [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}  # noqa: E731
                          for line in path.read_text().splitlines()]
    for variant in spec.variants:
        assert strip(again / variant / "metrics.jsonl") == strip(run / variant / "metrics.jsonl")
