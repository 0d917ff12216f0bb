"""Reliability: bit-identical reruns and resumes after SIGKILL/SIGTERM, corrupt checkpoints,
changed configs and concurrent runs."""
import fcntl
import json
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TINY, run_lab
from wandb_records import history

LONGER = [a for a in TINY if not a.startswith(("steps=", "train.ckpt_every="))] + [
    "steps=24", "train.ckpt_every=4", "wandb.mode=disabled"]


def comparable(run):
    """Every logged number (timings aside), the measurements and the verdict of a run."""
    metrics = {v: [{k: x for k, x in json.loads(line).items() if k != "tokens_per_s"}
                   for line in (run / v / "metrics.jsonl").read_text().splitlines()] for v in ("correct", "broken")}
    return metrics, json.loads((run / "measurements.json").read_text()), json.loads((run / "verdict.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    results = tmp_path_factory.mktemp("reliability")
    run_lab("mistake=padding_mask", *LONGER, f"results_dir={results}", "run_name=reference")
    return results


@pytest.mark.slow
def test_same_command_twice_is_bit_identical(reference):
    run_lab("mistake=padding_mask", *LONGER, f"results_dir={reference}", "run_name=again")
    assert comparable(reference / "padding_mask" / "again") == comparable(reference / "padding_mask" / "reference")


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(reference):
    args = [sys.executable, "-m", "ablations.run", "mistake=padding_mask", *LONGER, f"results_dir={reference}",
            "run_name=killed"]
    rng, kills = random.Random(0), 0
    while kills < 4:
        process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=rng.uniform(3.0, 9.0))
            break  # finished before the kill
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
    run_lab(*args[3:])  # the same command, to completion
    assert kills >= 2
    assert comparable(reference / "padding_mask" / "killed") == comparable(reference / "padding_mask" / "reference")


def terminate_after_two_rows(args: list[str], metrics) -> str:
    """Start a run, SIGTERM it once its metrics hold two rows; its stderr."""
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0, stderr
    return stderr


@pytest.mark.slow
def test_sigterm_checkpoints_says_how_to_resume_and_resumes(reference):
    args = [sys.executable, "-m", "ablations.run", "mistake=padding_mask", *LONGER, f"results_dir={reference}",
            "run_name=terminated"]
    stderr = terminate_after_two_rows(args, reference / "padding_mask" / "terminated" / "correct" / "metrics.jsonl")
    assert "Resume with the same command" in stderr, stderr
    run_lab(*args[3:])
    assert comparable(reference / "padding_mask" / "terminated") == \
        comparable(reference / "padding_mask" / "reference")


@pytest.mark.slow
def test_a_stopped_and_resumed_offline_run_is_one_wandb_run_per_variant_and_seed(tmp_path):
    offline = [a for a in LONGER if not a.startswith("wandb.")] + ["wandb.mode=offline", "run_name=offline"]
    args = [sys.executable, "-m", "ablations.run", "mistake=padding_mask", *offline, f"results_dir={tmp_path}"]
    run = tmp_path / "padding_mask" / "offline"
    terminate_after_two_rows(args, run / "correct" / "metrics.jsonl")
    run_lab(*args[3:])
    seeds = int(next(a for a in TINY if a.startswith("seeds=")).split("=")[1])
    for variant in ("correct", "broken"):
        folders = sorted((run / variant / "wandb").glob("offline-run-*"))
        assert [f.name.rsplit("-", 1)[1] for f in folders] == [f"s{seed}" for seed in range(seeds)], folders
        (wandb_file,) = (run / variant / "wandb").glob(f"offline-run-*-s{seeds - 1}/run-*.wandb")
        local = [json.loads(line) for line in (run / variant / "metrics.jsonl").read_text().splitlines()]
        assert [row["_step"] for row in history(wandb_file)] == [row["step"] for row in local
                                                                 if row["seed"] == seeds - 1]


@pytest.mark.slow
def test_corrupt_newest_checkpoint_falls_back_with_a_warning(reference):
    run = shutil.copytree(reference / "padding_mask" / "reference", reference / "padding_mask" / "corrupt")
    for name in ("verdict.json", "measurements.json"):
        (run / name).unlink()
    (run / "config.json").write_text((run / "config.json").read_text().replace('"reference"', '"corrupt"'))
    newest = max((run / "ckpt").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)
    for path in (newest / "broken").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\0" * 7)
    result = run_lab("mistake=padding_mask", *LONGER, f"results_dir={reference}", "run_name=corrupt")
    assert "unreadable" in result.stderr and "trying the previous one" in result.stderr
    assert comparable(run) == comparable(reference / "padding_mask" / "reference")


@pytest.mark.slow
def test_resume_with_a_changed_config_is_refused_naming_the_keys(reference):
    result = run_lab("mistake=padding_mask", *LONGER, "train.lr=0.02", "seeds=3", f"results_dir={reference}",
                     "run_name=reference", check=False)
    assert result.returncode != 0 and "already complete" not in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert "seeds" in line and "train.lr" in line and "run_name=<new>" in line


@pytest.mark.slow
def test_a_run_directory_in_use_is_refused(reference, tmp_path):
    run_lab("mistake=untied_embeddings", *LONGER[:-1], "steps=4", "wandb.mode=disabled", "train.ckpt_every=2",
            f"results_dir={tmp_path}", "run_name=busy")
    run = tmp_path / "untied_embeddings" / "busy"
    (run / "verdict.json").unlink()
    with (run / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = run_lab("mistake=untied_embeddings", *LONGER[:-1], "steps=4", "wandb.mode=disabled",
                         "train.ckpt_every=2", f"results_dir={tmp_path}", "run_name=busy", check=False)
    assert result.returncode != 0 and "another process is running" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig,name", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_stop_while_the_command_starts_is_one_line_and_writes_nothing(sig, name, tmp_path):
    """Half a second in, the command is still importing JAX and Hydra (cli.exit_while_starting)."""
    process = subprocess.Popen([sys.executable, "-m", "ablations.run", "mistake=padding_mask", *LONGER,
                                f"results_dir={tmp_path}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(0.5)
    process.send_signal(sig)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == [f"error: stopped by {name} before the command finished; what had finished "
                                        "is kept, and the same command resumes from it"], err
    assert list(tmp_path.iterdir()) == []


def interrupting(*_, **__):
    raise KeyboardInterrupt


def figures_half_drawn(spec, run_dir):
    (run_dir / "figures").mkdir(exist_ok=True)
    (run_dir / "figures" / "loss.png").write_bytes(b"half a png")
    raise KeyboardInterrupt


# where a Ctrl-C outside training can land (in training it only sets a flag: runner/stopping.py), as
# (module, name, replacement) patched for the interrupted run
MOMENTS = {
    "initialising the state": ("ablations.runner.loop", "init_state", interrupting),
    "measuring": ("ablations.runner.pair", "measure", interrupting),
    "drawing the figures": ("ablations.run", "write_figures", figures_half_drawn),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
def test_ctrl_c_at_any_moment_is_one_line_and_the_rerun_finishes_the_same_run(moment, reference, monkeypatch,
                                                                             capsys):
    import importlib

    from conftest import run_cli_here

    args = ["mistake=padding_mask", *LONGER, f"results_dir={reference}", f"run_name={moment.replace(' ', '-')}"]
    module, name, replacement = MOMENTS[moment]
    with monkeypatch.context() as patched:
        patched.setattr(importlib.import_module(module), name, replacement)
        stopped = run_cli_here(*args)
    lines = stopped.stderr.strip().splitlines()
    assert stopped.returncode == 130 and lines[-1].startswith("error: stopped by Ctrl-C"), stopped.stderr
    assert not any("Traceback" in line for line in lines)
    run = reference / "padding_mask" / moment.replace(" ", "-")
    assert not (run / "verdict.json").exists() or moment == "drawing the figures"
    rerun = run_cli_here(*args)
    assert rerun.returncode == 0, rerun.stderr
    if moment == "measuring":
        assert "resuming from step 24 of 24" in rerun.stdout
    assert comparable(run) == comparable(reference / "padding_mask" / "reference")
    assert (run / "figures" / "loss.png").read_bytes() != b"half a png"
