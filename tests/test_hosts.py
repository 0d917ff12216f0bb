"""Multi-host (ablations.runner.hosts): two CPU processes joined by jax.distributed train one run; only process 0
writes files, takes the lock and logs, and the run equals one process holding both devices."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import HANG_GUARD_S, ROOT, TINY, run_lab

from ablations.runner import hosts


def test_a_single_process_writes_and_keeps_its_own_arrays():
    tree = {"w": [1.0, 2.0]}
    assert hosts.writes() and hosts.local_copy(tree) is tree


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows_of(run, variant):
    return [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
            for line in (run / variant / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_train_one_run_and_only_process_0_writes_and_logs(tmp_path):
    common = ["mistake=padding_mask", *TINY, "wandb.mode=offline"]
    joined = [*common, f"results_dir={tmp_path / 'two'}", "distributed.enabled=true", "distributed.num_processes=2",
              f"distributed.coordinator_address=127.0.0.1:{free_port()}"]
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "XLA_FLAGS")}
    processes = [subprocess.Popen([sys.executable, "-m", "ablations.run", *joined, f"distributed.process_id={i}"],
                                  cwd=ROOT, env={**env, "WANDB_SILENT": "true"}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    (out0, err0), (out1, err1) = (p.communicate(timeout=HANG_GUARD_S) for p in processes)
    assert [p.returncode for p in processes] == [0, 0], err0[-2000:] + err1[-2000:]
    assert "padding_mask (exploratory): page claims" in out0 and "run directory" in out0
    assert "padding_mask" not in out1 and "run directory" not in out1  # process 1 trains and says nothing
    (run,) = (tmp_path / "two" / "padding_mask").iterdir()
    assert json.loads((run / "environment.json").read_text())["processes"] == 2
    for variant in ("correct", "broken"):
        assert sorted((r["step"], r["seed"]) for r in rows_of(run, variant)) == [(2, 0), (2, 1), (4, 0), (4, 1)]
        assert len(list((run / variant / "wandb").glob("offline-run-*"))) == 2  # one W&B run per seed, once

    alone = tmp_path / "one"  # one process holding the same two devices: the same program, the same numbers
    run_lab(*common, f"results_dir={alone}", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    (single,) = (alone / "padding_mask").iterdir()
    for variant in ("correct", "broken"):
        pairs = list(zip(rows_of(run, variant), rows_of(single, variant), strict=True))
        assert all(joined_row == pytest.approx(single_row, rel=1e-5) for joined_row, single_row in pairs)
    assert json.loads((run / "verdict.json").read_text())["verdict"] == \
        json.loads((single / "verdict.json").read_text())["verdict"]


@pytest.mark.slow
def test_a_signal_to_one_process_stops_both_after_a_checkpoint_and_the_run_resumes(tmp_path):
    kept = [a for a in TINY if not a.startswith(("steps=", "train.ckpt_every="))]
    longer = [*kept, "steps=400", "train.ckpt_every=100"]  # few interval saves: the stop's own save is under test
    joined = ["mistake=padding_mask", *longer, "wandb.mode=disabled", f"results_dir={tmp_path}",
              "distributed.enabled=true", "distributed.num_processes=2"]
    env = {**{k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "XLA_FLAGS")}, "TQDM_DISABLE": "1"}

    def start(port):
        return [subprocess.Popen([sys.executable, "-m", "ablations.run", *joined, f"distributed.process_id={i}",
                                  f"distributed.coordinator_address=127.0.0.1:{port}"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]

    processes = start(free_port())
    metrics = tmp_path / "padding_mask"
    deadline = time.time() + HANG_GUARD_S
    while not list(metrics.glob("*/correct/metrics.jsonl")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    processes[1].send_signal(signal.SIGTERM)  # process 1 only
    (_, err0), (_, err1) = (p.communicate(timeout=HANG_GUARD_S) for p in processes)
    assert processes[0].returncode != 0 and processes[1].returncode != 0
    assert "by a signal to another process; checkpoint saved" in err0 and "Resume with the same command" in err0
    assert "by SIGTERM" in err1
    resumed = start(free_port())
    outputs = [p.communicate(timeout=HANG_GUARD_S) for p in resumed]
    assert [p.returncode for p in resumed] == [0, 0], outputs[0][1][-2000:]
    (run,) = metrics.iterdir()
    rows = [json.loads(line) for line in (run / "broken" / "metrics.jsonl").read_text().splitlines()]
    expected = [(step, seed) for step in range(2, 401, 2) for seed in (0, 1)]
    assert sorted((r["step"], r["seed"]) for r in rows) == expected  # every row once, across the stop
