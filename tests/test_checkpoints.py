"""The run's checkpoints (ablations.runner.checkpoints), in-process."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ablations.runner.checkpoints import RunCheckpoints


def states(value: float) -> dict:
    return {"correct": {"w": jnp.full((3, 4), value), "step": jnp.int32(value)},
            "broken": {"w": jnp.full((2,), -value), "step": jnp.int32(value)}}


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_every_variant_is_saved_in_one_checkpoint_per_step_on_the_save_interval(tmp_path):
    checkpoints = RunCheckpoints(tmp_path / "ckpt", save_every=4)
    for step in (2, 4, 6):
        checkpoints.save(step, states(step))
    checkpoints.save(7, states(7), force=True)  # the last step, or a signal: saved off the interval
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["4", "7"]  # 2 and 6 were never saved
    checkpoints = RunCheckpoints(tmp_path / "ckpt", save_every=4)
    for step in (8, 9):
        checkpoints.save(step, states(step), force=step == 9)
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["8", "9"]  # max_to_keep=2
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


def test_a_trained_run_is_copied_whole_under_a_temporary_name_or_not_at_all(tmp_path):
    from ablations.runner import layout

    trained = tmp_path / "trained"
    checkpoints = RunCheckpoints(layout.checkpoint_dir(trained), save_every=4)
    checkpoints.save(4, states(4))
    checkpoints.close()
    for variant in ("correct", "broken"):
        (trained / variant).mkdir()
        layout.metrics_file(trained / variant).write_text('{"step": 4, "seed": 0}\n')
    assert not layout.copy_training(trained, tmp_path / "other", steps=8)  # no checkpoint at the last step
    assert layout.copy_training(trained, tmp_path / "copy", steps=4)
    restored, step = RunCheckpoints(layout.checkpoint_dir(tmp_path / "copy"), save_every=4).restore(states(0))
    assert step == 4 and same(restored, states(4)) and not (tmp_path / "copy.partial").exists()
    assert layout.metrics_file(tmp_path / "copy" / "broken").read_text() == '{"step": 4, "seed": 0}\n'
    assert not layout.copy_training(trained, tmp_path / "copy", steps=4)  # started already: left alone
    layout.metrics_file(trained / "broken").unlink()
    assert not layout.copy_training(trained, tmp_path / "third", steps=4)  # a variant's metrics missing
    assert not (tmp_path / "third").exists()


def test_a_run_stopped_under_the_previous_layout_is_refused_not_retrained(tmp_path):
    from ablations.runner import layout

    (tmp_path / "run" / "correct" / "ckpt" / "200").mkdir(parents=True)
    with pytest.raises(ValueError, match="previous layout .*correct/ckpt.*run_name=<new>"):
        layout.refuse_old_checkpoints(tmp_path / "run")
    layout.refuse_old_checkpoints(tmp_path / "fresh")  # nothing there: nothing to refuse
