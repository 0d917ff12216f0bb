"""The confirmatory protocols (ablations/catalogue/protocols.py): what a protocol fixes in a run's config, what it
refuses, its hash, its fresh seeds, the seeds it plans from exploratory results, and how reports label runs."""
import dataclasses
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from ablations import catalogue
from ablations.catalogue.protocols import CONFIRMATORY
from ablations.errors import UsageError
from ablations.reporting.setup import evidence_label, protocol_of
from ablations.runner import config as lab_config
from ablations.runner.identity import run_directory
from ablations.science import planning
from ablations.science.rules import Effect, seeds_needed

PLANNED = dataclasses.replace(CONFIRMATORY, seeds={spec.name: 8 for spec in catalogue.MISTAKES})


@pytest.fixture
def planned(monkeypatch):
    """The confirmatory protocol as if its seeds were planned, run from a clean tree."""
    monkeypatch.setitem(lab_config._PROTOCOLS, CONFIRMATORY.name, PLANNED)
    monkeypatch.setattr("ablations.runner.provenance.git_output", lambda *args: "")


def test_a_protocol_fixes_the_comparison_the_fresh_seeds_and_the_hash_of_each_run():
    composed = lab_config.resolve(lab_config.composed(["mistake=no_residual", "protocol=confirmatory",
                                                       "declared.protocols.confirmatory.seeds=9"]))
    assert composed["protocol"] == "confirmatory" and composed["seed"] == CONFIRMATORY.first_seed
    assert composed["seeds"] == 9 and composed["longer_budget"] == 4
    assert composed["train"]["lr_grid"] == list(CONFIRMATORY.lr_grid(catalogue.lookup("no_residual").lr_grid))
    assert composed["protocol_hash"] == catalogue.PROTOCOL_HASHES["confirmatory", "no_residual"]
    exploratory = lab_config.resolve(lab_config.composed(["mistake=no_residual"]))
    assert exploratory["protocol"] == "exploratory" and exploratory["protocol_hash"] is None
    assert run_directory(composed) != run_directory({**composed, "protocol_hash": "another"})


def test_a_run_under_a_protocol_refuses_every_setting_other_data_a_dirty_tree_and_unplanned_seeds(planned,
                                                                                                   monkeypatch):
    lab_config.check_protocol(["mistake=all", "protocol=confirmatory", "data=shakespeare", "wandb.mode=disabled",
                               "results_dir=/tmp/x"])  # what it may be given
    for texts, words in ((["protocol=confirmatory", "seeds=5"], "seeds=5"),
                         (["protocol=confirmatory", "train.lr=0.1"], "train.lr=0.1"),
                         (["protocol=confirmatory", "data.selection_share=0.2"], "data.selection_share=0.2"),
                         (["protocol=confirmatory", "data=web"], "data=web"),
                         (["protocol=confirmatory", "mistake=post_norm,no_residual"], "without a sweep")):
        with pytest.raises(UsageError, match=words):
            lab_config.check_protocol(texts)
    monkeypatch.setattr("ablations.runner.provenance.git_output", lambda *args: " M model/gpt.py\n")
    with pytest.raises(UsageError, match="uncommitted changes"):
        lab_config.check_protocol(["protocol=confirmatory"])
    monkeypatch.setattr("ablations.runner.provenance.git_output", lambda *args: None)
    with pytest.raises(UsageError, match="not a git checkout"):
        lab_config.check_protocol(["protocol=confirmatory"])
    monkeypatch.setattr("ablations.runner.provenance.git_output", lambda *args: "")
    monkeypatch.setitem(lab_config._PROTOCOLS, CONFIRMATORY.name,
                        dataclasses.replace(PLANNED, seeds={"post_norm": 8}))
    with pytest.raises(UsageError, match="no seeds planned for no_residual"):
        lab_config.check_protocol(["protocol=confirmatory", "mistake=all"])
    lab_config.check_protocol(["protocol=confirmatory", "mistake=post_norm"])


def test_the_hash_moves_with_the_protocol_and_with_the_mistakes_entry_and_nothing_else():
    spec = catalogue.lookup("narrow_ffn")
    base = catalogue.protocol_hash(CONFIRMATORY, spec)
    i, claim = next((i, c) for i, c in enumerate(spec.claims) if hasattr(c.rule, "margin"))
    loose = dataclasses.replace(claim, rule=dataclasses.replace(claim.rule, margin=0.5))
    claims = (*spec.claims[:i], loose, *spec.claims[i + 1:])
    assert catalogue.protocol_hash(CONFIRMATORY, dataclasses.replace(spec, claims=claims)) != base
    assert catalogue.protocol_hash(dataclasses.replace(CONFIRMATORY, max_seeds=20), spec) != base
    assert catalogue.protocol_hash(CONFIRMATORY, dataclasses.replace(spec, title="another title")) == base
    reseeded = lambda mistake: dataclasses.replace(CONFIRMATORY, seeds={**CONFIRMATORY.seeds, mistake: 9})
    assert catalogue.protocol_hash(reseeded("no_residual"), spec) == base
    assert catalogue.protocol_hash(reseeded("narrow_ffn"), spec) != base
    assert catalogue.protocol_hash(dataclasses.replace(CONFIRMATORY, widen_lr_grid=2), spec) != base
    other = catalogue.protocol_hash(CONFIRMATORY, catalogue.lookup("no_residual"))
    assert other != base  # each mistake's runs carry their own entry's hash


@pytest.mark.slow  # starts a Python process
def test_the_hashes_are_the_same_in_another_process():
    again = subprocess.run([sys.executable, "-c", "from ablations import catalogue; import json; "
                            "print(json.dumps({' '.join(k): v for k, v in catalogue.PROTOCOL_HASHES.items()}))"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(again.stdout) == {" ".join(k): v for k, v in catalogue.PROTOCOL_HASHES.items()}  # no id()


def committed_configs():
    return [(path, json.loads(path.read_text())) for path in sorted((ROOT / "results").rglob("config.json"))
            if "ckpt" not in path.parts]


def test_every_committed_exploratory_run_used_seeds_below_every_protocols_first_seed():
    runs = committed_configs()
    assert runs
    for path, config in runs:
        if config.get("protocol", "exploratory") != "exploratory":
            continue
        last = config["seed"] + config["seeds"] - 1 + (config["seeds"] * (config.get("longer_budget", 1) > 1))
        for protocol in catalogue.PROTOCOLS:
            assert last < protocol.first_seed, (path, last)


def test_a_mistake_plans_the_seeds_its_most_demanding_claim_asks_for_within_the_protocols_bounds():
    rule = Effect("val_loss", 0.01, "nats/token")
    near = rule.decide([2.0, 2.1, 2.05], [2.02, 2.14, 2.09])  # an effect of ~0.033, spread ~0.01
    clear = rule.decide([2.0, 2.1, 2.05], [2.5, 2.61, 2.56])
    need = planning.claim_seeds({**near, "says": "near", "kind": "statistical"})
    assert need == seeds_needed(near["mean"], near["std"], near["mean"] - 0.01)
    seeds, needs = planning.mistake_seeds([{**near, "says": "near"}, {**clear, "says": "clear"}], 8, 16)
    assert seeds == min(16, max(8, need)) and needs["clear"] <= needs["near"]
    assert planning.mistake_seeds([], 8, 16)[0] == 8
    # the same claim read in two runs needs what its more demanding run needs, whichever comes last
    assert planning.mistake_seeds([{**near, "says": "x"}, {**clear, "says": "x"}], 2, 99)[1]["x"] == need
    on_margin = Effect("val_loss", 0.5, "").decide([1.0, 1.0], [1.5, 1.5])  # no seed count moves it off
    assert planning.mistake_seeds([{**on_margin, "says": "on the margin"}], 8, 16)[0] == 16


def test_a_report_counts_a_run_as_confirmatory_only_while_its_protocol_is_unchanged():
    current = {("confirmatory", "post_norm"): "abc"}
    made = {"mistake": "post_norm", "protocol": "confirmatory", "protocol_hash": "abc",
            "environment": {"git_dirty": False}}
    assert protocol_of(made, current) == ("confirmatory", None)
    label, why = protocol_of({**made, "environment": {"git_dirty": True}}, current)
    assert label == "exploratory" and "uncommitted" in why
    label, why = protocol_of({**made, "protocol_hash": "old"}, current)
    assert label == "exploratory" and "changed" in why and "old" in why
    assert protocol_of({"mistake": "post_norm"}, current) == ("exploratory", None)  # before protocols existed
    assert evidence_label({"a": made, "b": {"mistake": "b"}}, current) == "mixed: 1 confirmatory, 1 exploratory"


def test_the_protocol_command_shows_each_mistakes_seeds_grid_and_hash(capsys, monkeypatch):
    from ablations import protocol

    assert protocol.main(["confirmatory"]) == 0
    out = capsys.readouterr().out
    for spec in catalogue.MISTAKES:
        grid = ", ".join(f"{lr:g}" for lr in CONFIRMATORY.lr_grid(spec.lr_grid))
        assert (f"{spec.name}: {CONFIRMATORY.seeds[spec.name]} seeds, learning rates {grid}, "
                f"hash {catalogue.PROTOCOL_HASHES['confirmatory', spec.name]}") in out
    unplanned = dataclasses.replace(CONFIRMATORY, seeds={})
    monkeypatch.setitem(catalogue.PROTOCOLS_BY_NAME, CONFIRMATORY.name, unplanned)
    assert protocol.main(["confirmatory"]) == 0
    assert "post_norm: not planned yet, learning rates" in capsys.readouterr().out


# The cheapest claims (mistake 9: the broken model cannot learn; an exact invariant beside it), small enough to train
# twice in CI; a batch of 8 splits evenly over 4 devices.
ROBUST = ["mistake=argmax_gradient", "steps=60", "seeds=4", "train.warmup=5", "train.log_every=20",
          "train.eval_every=20", "train.ckpt_every=60", "train.batch_size=8", "train.seq_len=32",
          "train.eval_windows=16", "model.d_model=16", "model.n_heads=2", "model.n_layers=2", "data.n_blocks=300",
          "wandb.mode=disabled"]


@pytest.mark.slow
def test_no_verdict_that_is_not_fragile_moves_between_one_and_four_devices(tmp_path):
    """Four forced host devices split every batch over a mesh: XLA partitions and rounds differently. An outcome
    more than one standard error from its boundary on both must not move; an exact claim must not move at all."""
    from conftest import run_lab

    verdicts = {}
    for count in (1, 4):
        run_lab(*ROBUST, f"results_dir={tmp_path / str(count)}",
                env={"XLA_FLAGS": f"--xla_force_host_platform_device_count={count}"})
        (run,) = (tmp_path / str(count) / "argmax_gradient").iterdir()
        assert json.loads((run / "environment.json").read_text())["devices"] == ["cpu"] * count
        verdicts[count] = json.loads((run / "verdict.json").read_text())["claims"]
    firm = 0
    for one, four in zip(verdicts[1], verdicts[4], strict=True):
        if one["kind"] == "exact":
            assert one["outcome"] == four["outcome"], one["says"]
        elif not ((one["firmness"] or {}).get("fragile", True) or (four["firmness"] or {}).get("fragile", True)):
            firm += 1
            assert one["outcome"] == four["outcome"], (one["says"], one["outcome"], four["outcome"])
    assert firm >= 1  # the test compares at least one statistical outcome


def test_a_protocol_widens_every_declared_grid_by_whole_steps_of_the_half_decade_series():
    for spec in catalogue.MISTAKES:
        grid = CONFIRMATORY.lr_grid(spec.lr_grid)
        assert grid[CONFIRMATORY.widen_lr_grid:len(grid) - CONFIRMATORY.widen_lr_grid] == spec.lr_grid
    once = dataclasses.replace(CONFIRMATORY, widen_lr_grid=1)
    assert once.lr_grid((1e-3, 3e-3)) == (3e-4, 1e-3, 3e-3, 1e-2)
    assert dataclasses.replace(CONFIRMATORY, widen_lr_grid=2).lr_grid((3e-4, 1e-2)) == (3e-5, 1e-4, 3e-4, 1e-2,
                                                                                     3e-2, 0.1)
    assert dataclasses.replace(CONFIRMATORY, widen_lr_grid=0).lr_grid((1e-3, 3e-3)) == (1e-3, 3e-3)
    with pytest.raises(ValueError, match="not on the series"):
        once.lr_grid((2e-3, 3e-3))
    for wrong in (-1, 1.5, True):
        with pytest.raises(ValueError, match="widen_lr_grid"):
            dataclasses.replace(CONFIRMATORY, widen_lr_grid=wrong)


# An exploratory run ends by quoting each protocol's committed verdict for its mistake on its data
# (ablations.protocol.committed_lines), read from fake committed runs under a results root in tmp_path.
def composed_run(*overrides: str) -> dict:
    return lab_config.resolve(lab_config.composed(["mistake=no_residual", *overrides]))


def commit_run(results, data: str, name: str, says: str, broken: list[float], *, hash_=None, dirty=False,
               follows=None, age=0.0):
    """A finished run of no_residual under the confirmatory protocol in results/confirmatory[/<data>]/: a grid run
    (follows=None, as comparison=best_lr makes it) or the longer budget that follows one; one statistical claim read
    on 8 seeds; today's hash and a clean tree unless told otherwise; `age`: seconds before now it finished."""
    import os
    import time

    from ablations.runner import layout
    from ablations.science.rules import Effect

    config = composed_run("protocol=confirmatory", "declared.protocols.confirmatory.seeds=8", f"data={data}")
    if follows:
        config = lab_config.with_settings(config, {"follows": follows, "train.lr_grid": [], "longer_budget": 1})
    if hash_:
        config["protocol_hash"] = hash_
    claim = {"says": says, "source": "page", "reference": "correct",
             **Effect("val_loss", 0.01, "nats/token").decide([2.0] * 4 + [2.1] * 4, broken)}
    run = layout.protocol_dir(results, CONFIRMATORY, data) / "no_residual" / name
    run.mkdir(parents=True)
    layout.write(run, layout.CONFIG, config)
    layout.write(run, layout.ENVIRONMENT, {"git_commit": "f" * 40, "git_dirty": dirty})
    layout.write(run, layout.VERDICT, {"verdict": f"page claims of {name}", "claims": [claim], "seeds": 8})
    stamp = time.time() - age
    os.utime(run / layout.VERDICT, (stamp, stamp))
    return run, claim


@pytest.fixture
def committed(tmp_path, monkeypatch):
    """The committed results root, empty, in tmp_path."""
    monkeypatch.setattr("ablations.runner.reference.REFERENCE_DIR", tmp_path / "results")
    return tmp_path / "results"


def quoted(*overrides: str) -> list[str]:
    from ablations.protocol import committed_lines

    return committed_lines(composed_run(*overrides), catalogue.PROTOCOLS_BY_NAME, catalogue.PROTOCOL_HASHES)


def test_each_data_preset_of_a_protocol_has_one_committed_results_directory(tmp_path):
    from ablations.runner import layout

    assert layout.protocol_dir(tmp_path, CONFIRMATORY, "synthetic") == tmp_path / "confirmatory"
    assert layout.protocol_dir(tmp_path, CONFIRMATORY, "shakespeare") == tmp_path / "confirmatory" / "shakespeare"
    assert layout.suite_dir(tmp_path / "best_lr", "shakespeare") == tmp_path / "best_lr" / "shakespeare"
    with pytest.raises(ValueError, match="data=synthetic and data=shakespeare"):
        layout.protocol_dir(tmp_path, CONFIRMATORY, "web")


def test_an_exploratory_run_quotes_the_longer_budgets_confirmatory_verdict_on_its_own_data(committed):
    from ablations.runner import layout
    from ablations.science.verdict import claim_line

    grid, _ = commit_run(committed, "synthetic", "grid", "the grid's claim", [2.02] * 8, age=10)
    longer, claim = commit_run(committed, "synthetic", "longer", "does not train", [2.5, 2.6] * 4,
                               follows=grid.name)
    lines = quoted()
    config = layout.read(longer, layout.CONFIG)
    assert lines == ["confirmatory (results/confirmatory/no_residual/longer, 8 seeds): page claims of longer",
                     "   " + claim_line(claim, config).replace("\n", "\n   ")]  # the run's own formatter, nested
    assert lines[1].startswith("   🟧 reproduced (page): does not train\n         correct 2.05")  # longer budget's
    assert "margin 0.01 nats/char" in lines[1]  # the catalogue's nats/token, in the character data's unit
    assert quoted("data=shakespeare") == [  # the copy task's verdict is not Shakespeare's
        "confirmatory: none committed yet for no_residual on shakespeare (python -m ablations.run "
        "protocol=confirmatory mistake=no_residual data=shakespeare results_dir=results/confirmatory/shakespeare)"]
    sh_grid, _ = commit_run(committed, "shakespeare", "sh_grid", "x", [2.02] * 8, age=10)
    commit_run(committed, "shakespeare", "sh_longer", "y", [2.02] * 8, follows=sh_grid.name)
    assert quoted("data=shakespeare")[0].startswith(
        "confirmatory (results/confirmatory/shakespeare/no_residual/sh_longer, 8 seeds)")
    assert quoted("protocol=confirmatory", "declared.protocols.confirmatory.seeds=8") == []  # itself confirmatory
    assert quoted("data.source=text", "data.path=x.txt") == []  # on data no protocol runs on


def test_with_no_confirmatory_run_committed_one_line_says_how_to_make_it(committed):
    assert quoted() == ["confirmatory: none committed yet for no_residual on synthetic (python -m ablations.run "
                        "protocol=confirmatory mistake=no_residual data=synthetic results_dir=results/confirmatory)"]


def test_a_run_with_a_stale_hash_a_dirty_tree_or_only_its_grid_finished_is_not_quoted(committed):
    good_grid, _ = commit_run(committed, "synthetic", "good_grid", "x", [2.02] * 8, age=50)
    commit_run(committed, "synthetic", "good", "x", [2.02] * 8, follows=good_grid.name, age=40)
    newer_grid, _ = commit_run(committed, "synthetic", "newer_grid", "x", [2.02] * 8, age=30)
    commit_run(committed, "synthetic", "dirty", "x", [2.02] * 8, follows=newer_grid.name, dirty=True, age=20)
    commit_run(committed, "synthetic", "stale", "x", [2.02] * 8, follows=newer_grid.name, hash_="0ld0ld0ld0ld",
               age=10)
    commit_run(committed, "synthetic", "lone_grid", "x", [2.02] * 8)  # its longer budget has not finished
    assert quoted()[0].startswith("confirmatory (results/confirmatory/no_residual/good, 8 seeds)")  # the older one
    import shutil

    shutil.rmtree(committed / "confirmatory" / "no_residual" / "good")
    (line,) = quoted()
    assert line.startswith("confirmatory: none committed yet for no_residual on synthetic (python -m ablations.run "
                           "protocol=confirmatory mistake=no_residual data=synthetic "
                           "results_dir=results/confirmatory); not counted: "
                           "results/confirmatory/no_residual/stale: run under protocol confirmatory "
                           "(hash 0ld0ld0ld0ld)")
    shutil.rmtree(committed / "confirmatory" / "no_residual" / "stale")
    (line,) = quoted()
    assert "not counted: results/confirmatory/no_residual/dirty:" in line and "uncommitted changes" in line


def test_the_run_command_ends_an_exploratory_run_that_finished_with_the_quote(committed, tmp_path, monkeypatch):
    from conftest import run_cli_here

    monkeypatch.setattr("ablations.run.run_guarded", lambda *args: True)  # the run itself (tests/test_runs.py)
    ran = run_cli_here("mistake=no_residual", "wandb.mode=disabled", f"results_dir={tmp_path / 'runs'}")
    assert ran.returncode == 0 and ran.stdout.splitlines()[-1] == (
        "   confirmatory: none committed yet for no_residual on synthetic (python -m ablations.run "
        "protocol=confirmatory mistake=no_residual data=synthetic results_dir=results/confirmatory)")
    monkeypatch.setattr("ablations.run.run_guarded", lambda *args: False)  # a failed run quotes nothing
    assert "confirmatory" not in run_cli_here("mistake=no_residual", "wandb.mode=disabled",
                                              f"results_dir={tmp_path / 'runs'}").stdout
