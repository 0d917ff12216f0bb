"""What each run records about the environment that produced it (environment.json)."""
import subprocess
from importlib import metadata

from conftest import ROOT

from ablations.runner.provenance import distribution_version, environment

RECORDED = ("orbax-checkpoint", "wandb", "tensorflow-datasets", "tokenizers", "numpy", "scipy")


def test_environment_records_distribution_versions_and_git_state():
    recorded = environment()
    for name in RECORDED:
        assert recorded[name] == metadata.version(name), name
    for key in ("python", "jax", "jaxlib", "flax", "optax", "platform", "platform_version", "devices", "cpu_model",
                "cpu_count"):
        assert recorded[key], key
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                            capture_output=True, text=True).stdout
    in_repository = head.returncode == 0
    assert recorded["git_commit"] == (head.stdout.strip() if in_repository else None)
    assert recorded["git_dirty"] is (bool(status) if in_repository else None)


def test_environment_records_the_cpu_model_and_flags_and_xla_flags(tmp_path, monkeypatch):
    from ablations.runner import provenance

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: fpu avx2 fma\n\n"
                       "processor\t: 1\nmodel name\t: Example CPU 9000\nflags\t\t: fpu avx2 fma\n")
    monkeypatch.setattr(provenance, "CPUINFO", cpuinfo)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    recorded = environment()
    assert recorded["cpu_model"] == "Example CPU 9000" and recorded["cpu_flags"] == "fpu avx2 fma"
    assert recorded["xla_flags"] == "--xla_force_host_platform_device_count=4"


def test_missing_distribution_and_missing_git_are_recorded_as_none(monkeypatch):
    assert distribution_version("no-such-distribution-for-the-lab") is None
    monkeypatch.setenv("PATH", "")  # no git executable to be found
    recorded = environment()
    assert recorded["git_commit"] is None and recorded["git_dirty"] is None


# ---------------------------------------------------------------- the comparison with the committed reference


def fake_run(directory, config, value, verdict="reproduced"):
    import json

    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "verdict.json").write_text(json.dumps({"verdict": verdict}))
    (directory / "measurements.json").write_text(json.dumps(
        {"correct": [{"val_loss": 1.5, "steps_to_floor": None}], "broken": [{"val_loss": value, "n_params": 10}]}))
    return directory


def test_a_run_is_compared_with_the_reference_of_the_same_experiment(tmp_path, monkeypatch, capsys):
    import json

    from ablations.runner import reference as runs

    config = {"mistake": "no_residual", "steps": 100, "model": {"n_layers": 8}, "results_dir": "x", "run_name": None}
    monkeypatch.setattr(runs, "REFERENCE_DIR", tmp_path / "results")
    reference = fake_run(tmp_path / "results" / "no_residual" / "abc", config, 3.25)
    newer = {**config, "probe": {"padding_share": 0.5}}  # a key added to the lab after the reference was recorded
    same = fake_run(tmp_path / "runs" / "same", newer, 3.25)
    runs.print_reference_comparison(same, newer)
    line = capsys.readouterr().out
    assert "identical to the reference results/no_residual/abc (4 measurements, bit for bit)" in line
    assert "predates probe.padding_share" in line and \
        json.loads((same / "reference.json").read_text())["differing"] == 0

    moved = fake_run(tmp_path / "runs" / "moved", config, 3.0, verdict="inconclusive")
    runs.print_reference_comparison(moved, config)
    line = capsys.readouterr().out
    assert "differs from the reference results/no_residual/abc: 1 of 4 measurements" in line
    assert "largest |difference| 0.25 (broken seed #0 val_loss: 3 vs 3.25)" in line and "verdict differs" in line

    other = fake_run(tmp_path / "runs" / "other", {**config, "steps": 200}, 3.0)  # another experiment: no reference
    runs.print_reference_comparison(other, {**config, "steps": 200})
    assert capsys.readouterr().out == "" and not (other / "reference.json").exists()
    runs.print_reference_comparison(reference, config)  # the reference itself (a maintainer regenerating it)
    assert capsys.readouterr().out == ""


def test_two_runs_train_the_same_pair_when_they_differ_only_in_what_is_measured():
    from ablations.runner.identity import same_training

    base = {"mistake": "padding_mask", "seeds": 3, "train": {"lr": 0.01}, "probe": {"padding_share": 0.5},
            "results_dir": "a", "run_name": None}
    assert same_training(base, {**base, "probe": {"padding_share": 0.25}, "results_dir": "b"})
    assert not same_training(base, {**base, "train": {"lr": 0.02}})
    assert not same_training(base, {**base, "seeds": 5})


def test_a_key_added_later_keeps_older_run_directories_at_the_value_that_reproduces_them():
    from ablations.runner.identity import run_directory, same_training

    before = {"mistake": "no_residual", "seeds": 3, "model": {"d_model": 64}, "results_dir": "r", "run_name": None}
    einsum = {**before, "model": {"d_model": 64, "attention": "einsum"}}
    fused = {**before, "model": {"d_model": 64, "attention": "fused"}}
    assert run_directory(einsum) == run_directory(before)  # the lab's own attention is what ran before the key
    assert run_directory(fused) != run_directory(before)
    assert same_training(einsum, before) and not same_training(fused, before)
    assert einsum["model"] == {"d_model": 64, "attention": "einsum"}  # the config itself is left as it was


def test_a_reference_that_predates_a_key_counts_as_its_earlier_value(tmp_path, monkeypatch):
    """A committed run from before model.attention ran the einsums: it is the reference of an einsum run (nothing
    listed as predated) and not of a fused one."""
    from ablations.runner import layout
    from ablations.runner import reference as runs

    reference = tmp_path / "results" / "no_residual" / "abc"
    config = {"mistake": "no_residual", "seeds": 3, "model": {"d_model": 64}, "results_dir": "results",
              "run_name": None}
    reference.mkdir(parents=True)
    layout.write(reference, layout.CONFIG, config)
    layout.write(reference, layout.VERDICT, {"verdict": "reproduced"})
    monkeypatch.setattr(runs, "REFERENCE_DIR", tmp_path / "results")
    mine = tmp_path / "runs" / "no_residual" / "abc"
    einsum = {**config, "model": {"d_model": 64, "attention": "einsum"}, "results_dir": "runs"}
    assert runs.reference_run(mine, einsum) == (reference, [])
    assert runs.reference_run(mine, {**einsum, "model": {"d_model": 64, "attention": "fused"}}) is None
