"""The pair's training loop (ablations.runner.loop) around the run's checkpoints, with stand-in variants."""
import threading
import types

import jax.numpy as jnp
import pytest

from ablations.runner.checkpoints import RunCheckpoints
from ablations.runner.loop import train_pair
from ablations.runner.stopping import StopRequest, Stopped
from ablations.runner.training import TrainSettings


class FakeTrainer:
    """A variant whose chunk adds 1 to its state, or fails at a given chunk."""

    def __init__(self, name, fail_at=None, on_chunk=None):
        self.name, self.initial, self.mesh = name, {"x": jnp.zeros(2)}, None  # one device
        self.fail_at, self.on_chunk, self.logged = fail_at, on_chunk, []
        self.bar = types.SimpleNamespace(close=lambda: None)

    def start(self, step):
        self.logged = [r for r in self.logged if r["step"] <= step]

    def train_chunk(self, state, chunk_start):
        if chunk_start == self.fail_at:
            raise OSError("disk full")
        if self.on_chunk:
            self.on_chunk(chunk_start)
        return {"x": state["x"] + 1}, [{"step": chunk_start + 2}]

    def log(self, rows):
        self.logged += rows


SETTINGS = TrainSettings(steps=10, log_every=2, ckpt_every=4, eval_every=2, warmup=0)


def test_the_variants_train_at_once_and_a_resume_continues_from_the_shared_checkpoint(tmp_path):
    both_running = threading.Barrier(2, timeout=30)  # passes only if the two variants' chunks run at once
    trainers = [FakeTrainer(name, on_chunk=lambda start: both_running.wait()) for name in ("correct", "broken")]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    final = train_pair(trainers, SETTINGS, checkpoints, StopRequest())
    checkpoints.close()
    assert all(float(final[name]["x"][0]) == 5 for name in ("correct", "broken"))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["10", "8"]


def test_a_signal_checkpoints_every_variant_at_the_end_of_the_chunk_and_stops(tmp_path, capsys):
    stop = StopRequest()
    trainers = [FakeTrainer("correct", on_chunk=lambda start: setattr(stop, "signal", "SIGTERM") if start == 4
                            else None), FakeTrainer("broken")]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    with pytest.raises(Stopped, match="stopped at step 6 of 10 by SIGTERM"):
        train_pair(trainers, SETTINGS, checkpoints, stop)
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["4", "6"]  # 6 is off the interval: forced
    resumed = [FakeTrainer("correct"), FakeTrainer("broken")]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    final = train_pair(resumed, SETTINGS, checkpoints, StopRequest())
    checkpoints.close()
    assert [r["step"] for r in resumed[1].logged] == [8, 10] and float(final["broken"]["x"][0]) == 5
    assert "resuming from step 6 of 10" in capsys.readouterr().out


def test_an_error_in_one_variant_is_the_error_raised_and_the_last_checkpoint_stays(tmp_path):
    trainers = [FakeTrainer("correct"), FakeTrainer("broken", fail_at=6)]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    with pytest.raises(OSError, match="disk full"):
        train_pair(trainers, SETTINGS, checkpoints, StopRequest())
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["4"]


def test_a_signal_in_the_last_chunk_still_stops_before_measuring(tmp_path):
    stop = StopRequest()
    trainers = [FakeTrainer("correct", on_chunk=lambda start: setattr(stop, "signal", "SIGINT") if start == 8
                            else None), FakeTrainer("broken")]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    with pytest.raises(Stopped, match="stopped at step 10 of 10 by SIGINT"):
        train_pair(trainers, SETTINGS, checkpoints, stop)
    checkpoints.close()
    assert "10" in [p.name for p in (tmp_path / "ckpt").iterdir()]  # the rerun resumes there and only measures
