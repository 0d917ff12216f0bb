"""The checkpoints of one run, orbax's way: one CheckpointManager for the run directory, every variant's state
saved together as one Composite item (so all variants resume from the same step), asynchronously, on the
manager's own save interval. A failed write is reported as the OSError it is."""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from ablations.runner import hosts


class RunCheckpoints:
    """Open (restoring the newest readable checkpoint), save every `save_every` steps, close (waiting for the
    last asynchronous write). An unreadable checkpoint is moved aside (kept as <step>.unreadable) with a
    warning, never silently."""

    def __init__(self, directory: Path, save_every: int):
        self.directory = Path(directory).absolute()
        with write_errors_as_os_errors(self.directory):
            self.manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
                max_to_keep=2, enable_async_checkpointing=True, cleanup_tmp_directories=True,
                save_decision_policy=ocp.checkpoint_managers.FixedIntervalPolicy(save_every)))

    def restore(self, states: dict[str, dict]) -> tuple[dict[str, dict], int]:
        """The states of the newest checkpoint that restores, and its step; `states` and 0 if there is none."""
        abstract = {name: jax.tree.map(ocp.utils.to_shape_dtype_struct, state) for name, state in states.items()}
        steps = sorted(self.manager.all_steps(), reverse=True)
        for step in steps:
            try:
                restored = self.manager.restore(step, args=ocp.args.Composite(
                    **{name: ocp.args.StandardRestore(tree) for name, tree in abstract.items()}))
            except Exception as error:  # orbax raises many kinds for truncated or garbled files
                warnings.warn(f"checkpoint {self.directory}/{step} is unreadable ({type(error).__name__}); kept "
                              f"as {step}.unreadable, trying the previous one", stacklevel=2)
                if hosts.writes():
                    (self.directory / str(step)).rename(self.directory / f"{step}.unreadable")
                hosts.barrier(f"checkpoint {step} moved aside")
                self.manager.reload()
                continue
            return {name: restored[name] for name in states}, step
        if steps:
            raise RuntimeError(f"no checkpoint in {self.directory} is readable; move it away to start over")
        return states, 0

    def save(self, step: int, states: dict[str, dict], force: bool = False) -> None:
        """Start writing `states` at `step` if the save interval (or `force`) says so; returns at once."""
        with write_errors_as_os_errors(self.directory):
            self.manager.save(step, args=ocp.args.Composite(
                **{name: ocp.args.StandardSave(state) for name, state in states.items()}), force=force)

    def close(self) -> None:
        """Wait for the last write, then release the manager (also when the write failed)."""
        with write_errors_as_os_errors(self.directory):
            try:
                self.manager.wait_until_finished()
            finally:
                self.manager.close()


@contextlib.contextmanager
def write_errors_as_os_errors(directory: Path):
    """orbax reports a failed write as a ValueError or RuntimeError of its own; make it the OSError it is, in
    one line, so the runner says "cannot write results"."""
    try:
        yield
    except (ValueError, RuntimeError) as error:
        text = f"{error} {error.__cause__ or ''}"
        if "os_error_code" not in text and "Error writing" not in text:
            raise  # not a write failure: a bug, with its traceback
        reason = "No space left on device" if "os_error_code='28'" in text else str(error).splitlines()[0][:200]
        raise OSError(f"checkpoint write under {directory} failed: {reason}") from error
