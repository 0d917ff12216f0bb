"""The command line: bad input fails in one clear line and loses nothing; W&B offline holds the values."""
import json
import re
import subprocess

import pytest
from conftest import SHARED_TEXT, TINY, run_cli_here, run_lab
from test_input_battery import BATTERY
from wandb_records import history


@pytest.mark.slow
@pytest.mark.parametrize("what", ["mistyped key", "a model wider than the machine"])
def test_in_a_real_process_bad_input_is_still_one_line(what, tmp_path):
    """The battery (tests/test_input_battery.py) runs in this process; two of its cases (Hydra's own check, and
    one past JAX's import) as a user's shell sees them: exit status, and stderr holding the one line and nothing
    from a library."""
    (case,) = [c for c in BATTERY if c.command == "run" and c.what == what]
    typed = {a.split("=", 1)[0] for a in case.args}
    result = run_lab(*case.args, *[a for a in TINY if a.split("=", 1)[0] not in typed], "wandb.mode=disabled",
                     f"results_dir={tmp_path}", check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and all(w in lines[0] for w in case.words), result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_wandb_offline_run_holds_the_logged_values(tmp_path):
    run_lab("mistake=untied_embeddings", *TINY, f"results_dir={tmp_path}", "wandb.mode=offline")
    (run,) = (tmp_path / "untied_embeddings").iterdir()
    local = [json.loads(line) for line in (run / "broken" / "metrics.jsonl").read_text().splitlines()]
    (wandb_file,) = (run / "broken" / "wandb").glob("offline-run-*-s1/run-*.wandb")
    logged = history(wandb_file)
    assert [row["_step"] for row in logged] == [2, 4]
    mine = [row for row in local if row["seed"] == 1]
    for key in ("train_ce", "grad_norm", "val_loss", "grad_norm/head"):
        assert [row[key] for row in logged] == pytest.approx([row[key] for row in mine], rel=1e-6)


@pytest.mark.skipif(not SHARED_TEXT.exists(), reason="tinyshakespeare.txt not beside the repository")
@pytest.mark.slow
def test_real_text_through_the_local_text_path(tmp_path):
    run_lab("mistake=tiny_vocab", *TINY, "data.source=text", f"data.path={SHARED_TEXT}",
            f"results_dir={tmp_path}", "wandb.mode=disabled")
    (run,) = (tmp_path / "tiny_vocab").iterdir()
    measured = json.loads((run / "measurements.json").read_text())
    assert all(m["unk_rate"] == 0.0 for m in measured["correct"])
    assert all(0.05 < m["unk_rate"] < 0.9 for m in measured["broken"])  # 15 characters cannot cover Shakespeare
    assert "entropy_floor" not in measured["correct"][0]  # no known floor for real text


def test_a_sweep_with_one_bad_job_finishes_the_others(tmp_path):
    result = run_cli_here("-m", "mistake=position_overflow,narrow_ffn", "model.position=learned", "dry_run=true",
                          f"results_dir={tmp_path}")
    assert "dry run: mistake=narrow_ffn" in result.stdout  # the job after the bad one ran
    assert result.returncode != 0 and "1 job(s) of the sweep failed: #0 (mistake=position_overflow" in result.stderr


def test_cfg_job_prints_what_runs_and_help_lists_the_choices():
    shown = run_cli_here("mistake=post_norm", "--cfg", "job").stdout
    assert "n_layers: 8" in shown and "lr: 0.003" in shown and "warmup: 0" in shown  # the registry's settings
    assert "n_layers: 3" in run_cli_here("mistake=post_norm", "model.n_layers=3", "--cfg", "job").stdout  # typed wins
    helped = run_cli_here("--help").stdout
    assert all(name in helped for name in ("stale_kv_cache", "no_residual", "nanogpt_cpu", "shakespeare"))


def test_sweep_fans_out_through_hydra_multirun(tmp_path):
    """The grid (mistakes x seeds) as Hydra's multirun launches it; dry_run checks the fan-out only."""
    result = run_cli_here("-m", "mistake=narrow_ffn,post_norm", "seeds=2,3", "dry_run=true",
                          f"results_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    jobs = [line for line in result.stdout.splitlines() if line.startswith("dry run:")]
    assert len(jobs) == 4 and len({line.split("-> ")[1] for line in jobs}) == 4
    grid = {re.search(r"mistake=(\S+) seeds=(\d+)", line).groups() for line in jobs}
    assert grid == {(name, seeds) for name in ("narrow_ffn", "post_norm") for seeds in ("2", "3")}
    assert not any((tmp_path / name).exists() for name in ("narrow_ffn", "post_norm"))


@pytest.mark.slow
def test_an_invalid_wandb_key_falls_back_to_offline_and_training_goes_on(tmp_path):
    result = run_lab("mistake=narrow_ffn", *TINY, f"results_dir={tmp_path}", "wandb.mode=auto",
                     env={"WANDB_API_KEY": "x" * 40})  # run_lab drops a real key; this one is set after
    assert "logging offline instead" in result.stderr
    (run,) = (tmp_path / "narrow_ffn").iterdir()
    assert (run / "verdict.json").exists() and list((run / "correct" / "wandb").glob("offline-run-*"))
    assert "x" * 40 not in "".join(p.read_text(errors="ignore") for p in run.rglob("*") if p.is_file())


@pytest.mark.slow
def test_an_unwritable_results_directory_is_one_line_and_keeps_what_exists(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results directory should be\\n")
    result = run_lab("mistake=narrow_ffn", *TINY, f"results_dir={blocker}", "wandb.mode=disabled", check=False)
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and line == (f"error: results_dir={blocker} is a file, not a directory; give a "
                                               "directory, e.g. results_dir=runs")  # before any work
    assert blocker.read_text() == "a file where the results directory should be\\n"


DISKS = {"full disk": ("size=300k", None, "error: cannot write results", "No space left on device"),  # mid-run
         "read-only disk": ("size=1m", "remount,ro", "error: results_dir=", "read-only file system")}  # before


@pytest.mark.slow
@pytest.mark.parametrize("case", DISKS, ids=list(DISKS))
def test_an_unwritable_disk_is_one_line_and_keeps_what_exists(case, tmp_path):
    options, then, start, reason = DISKS[case]
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        finished = disk / "earlier_result.json"
        finished.write_text('{"verdict": "reproduced"}')
        if then:
            subprocess.run(["mount", "-o", then, str(disk)], check=True)
        result = run_lab("mistake=narrow_ffn", *TINY, f"results_dir={disk}", "wandb.mode=disabled", check=False,
                         env={"TQDM_DISABLE": "1"})  # progress bars aside, stderr is the error alone
        (line,) = result.stderr.strip().splitlines()  # no traceback from orbax, absl or asyncio
        assert result.returncode != 0 and line.startswith(start) and reason in line
        assert finished.read_text() == '{"verdict": "reproduced"}'
    finally:
        subprocess.run(["umount", str(disk)], check=True)
