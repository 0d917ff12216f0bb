"""The run's checkpoints (ablations.checkpoints) and the pair's training loop around them, in-process."""
import threading
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ablations.checkpoints import RunCheckpoints
from ablations.experiment import train_pair
from ablations.stopping import StopRequest, Stopped
from ablations.train import TrainSettings


def states(value: float) -> dict:
    return {"correct": {"w": jnp.full((3, 4), value), "step": jnp.int32(value)},
            "broken": {"w": jnp.full((2,), -value), "step": jnp.int32(value)}}


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_every_variant_is_saved_in_one_checkpoint_per_step_on_the_save_interval(tmp_path):
    checkpoints = RunCheckpoints(tmp_path / "ckpt", save_every=4)
    for step in (2, 4, 6, 8):
        checkpoints.save(step, states(step))
    checkpoints.save(9, states(9), force=True)  # the last step, or a signal: saved off the interval
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["8", "9"]  # max_to_keep=2; 2 and 6 never saved
    assert sorted(p.name for p in (tmp_path / "ckpt" / "9").iterdir() if p.is_dir()) == ["broken", "correct"]
    restored, step = RunCheckpoints(tmp_path / "ckpt", save_every=4).restore(states(0))
    assert step == 9 and same(restored, states(9))


def test_nothing_saved_restores_the_initial_states_at_step_0(tmp_path):
    restored, step = RunCheckpoints(tmp_path / "ckpt", save_every=4).restore(states(1))
    assert step == 0 and same(restored, states(1))


def test_a_state_donated_right_after_an_asynchronous_save_is_saved_as_it_was(tmp_path):
    """The next training chunk donates the state's buffers while the write may still run in the background."""
    bump = jax.jit(lambda tree: jax.tree.map(lambda x: x + 1, tree), donate_argnums=0)
    checkpoints = RunCheckpoints(tmp_path / "ckpt", save_every=1)
    saved = states(5.0)
    checkpoints.save(1, saved)
    for _ in range(20):
        saved = bump(saved)
    checkpoints.close()
    restored, step = RunCheckpoints(tmp_path / "ckpt", save_every=1).restore(states(0))
    assert step == 1 and same(restored, states(5.0))


def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path):
    checkpoints = RunCheckpoints(tmp_path / "ckpt", save_every=2)
    for step in (2, 4):
        checkpoints.save(step, states(step))
    checkpoints.close()
    for path in (tmp_path / "ckpt" / "4" / "broken").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\0" * 7)
    with pytest.warns(UserWarning, match="4 is unreadable .* trying the previous one"):
        restored, step = RunCheckpoints(tmp_path / "ckpt", save_every=2).restore(states(0))
    assert step == 2 and same(restored, states(2)) and (tmp_path / "ckpt" / "4.unreadable").is_dir()


class FakeTrainer:
    """A variant whose chunk adds 1 to its state, or fails at a given chunk."""

    def __init__(self, name, fail_at=None, on_chunk=None):
        self.variant, self.initial = types.SimpleNamespace(name=name), {"x": jnp.zeros(2)}
        self.fail_at, self.on_chunk, self.logged = fail_at, on_chunk, []
        self.bar = types.SimpleNamespace(close=lambda: None)

    def start(self, state, step):
        self.logged = [r for r in self.logged if r["step"] <= step]
        return state

    def train_chunk(self, state, chunk_start):
        if chunk_start == self.fail_at:
            raise OSError("disk full")
        if self.on_chunk:
            self.on_chunk(chunk_start)
        return {"x": state["x"] + 1}, [{"step": chunk_start + 2, "thread": threading.get_ident()}]

    def log(self, rows):
        self.logged += rows


SETTINGS = TrainSettings(steps=10, log_every=2, ckpt_every=4, eval_every=2, warmup=0)


def test_the_variants_train_at_once_and_a_resume_continues_from_the_shared_checkpoint(tmp_path):
    trainers = [FakeTrainer("correct"), FakeTrainer("broken")]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    final = train_pair(trainers, SETTINGS, checkpoints, StopRequest())
    checkpoints.close()
    assert all(float(final[name]["x"][0]) == 5 for name in ("correct", "broken"))
    assert trainers[0].logged[0]["thread"] != trainers[1].logged[0]["thread"]  # one thread each
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["10", "8"]


def test_a_signal_checkpoints_every_variant_at_the_end_of_the_chunk_and_stops(tmp_path):
    stop = StopRequest()
    trainers = [FakeTrainer("correct", on_chunk=lambda start: setattr(stop, "signal", "SIGTERM") if start == 2
                            else None), FakeTrainer("broken")]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    with pytest.raises(Stopped, match="stopped at step 4 by SIGTERM"):
        train_pair(trainers, SETTINGS, checkpoints, stop)
    checkpoints.close()
    resumed = [FakeTrainer("correct"), FakeTrainer("broken")]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    final = train_pair(resumed, SETTINGS, checkpoints, StopRequest())
    checkpoints.close()
    assert [r["step"] for r in resumed[1].logged] == [6, 8, 10] and float(final["broken"]["x"][0]) == 5


def test_an_error_in_one_variant_is_the_error_raised_and_the_last_checkpoint_stays(tmp_path):
    trainers = [FakeTrainer("correct"), FakeTrainer("broken", fail_at=6)]
    checkpoints = RunCheckpoints(tmp_path / "ckpt", SETTINGS.ckpt_every)
    with pytest.raises(OSError, match="disk full"):
        train_pair(trainers, SETTINGS, checkpoints, StopRequest())
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["4"]
