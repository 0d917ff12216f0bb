"""The orbax checkpoints of one variant: open (restoring the newest readable one), and write one at a time,
a failed write reported as the OSError it is."""
from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path

import jax
import orbax.checkpoint as ocp


# orbax coordinates asynchronous saves through process-wide state (operation ids): two managers saving
# at once from the two variants' threads can wait on each other forever (seen: a 300 s timeout). So
# saves are synchronous, and the threads take turns for every orbax operation.
ORBAX_LOCK = threading.Lock()


def checkpoint_manager(directory: Path) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(directory.absolute(), options=ocp.CheckpointManagerOptions(
        max_to_keep=2, enable_async_checkpointing=False))


def open_checkpoints(directory: Path, state: dict) -> tuple[ocp.CheckpointManager, dict, int]:
    """The manager, and the state of the newest checkpoint that restores (step 0: none yet). An
    unreadable checkpoint is moved aside (kept as <step>.unreadable) with a warning, never silently."""
    manager = checkpoint_manager(directory)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    steps = sorted(manager.all_steps(), reverse=True)
    for step in steps:
        try:
            return manager, manager.restore(step, args=ocp.args.StandardRestore(abstract)), step
        except Exception as error:  # orbax raises many kinds for truncated or garbled files
            warnings.warn(f"checkpoint {directory}/{step} is unreadable ({type(error).__name__}); kept as "
                          f"{step}.unreadable, trying the previous one", stacklevel=2)
            (directory / str(step)).rename(directory / f"{step}.unreadable")
            manager.reload()
    if steps:
        raise RuntimeError(f"no checkpoint in {directory} is readable; move it away to start over")
    return manager, state, 0


@contextlib.contextmanager
def checkpoint_writes(directory: Path):
    """One orbax write at a time (ORBAX_LOCK). orbax reports a failed write as a ValueError of its own;
    make it the OSError it is, in one line, so the runner says "cannot write results"."""
    try:
        with ORBAX_LOCK:
            yield
    except (ValueError, RuntimeError) as error:
        text = f"{error} {error.__cause__ or ''}"
        if "os_error_code" not in text and "Error writing" not in text:
            raise  # not a write failure: a bug, with its traceback
        reason = "No space left on device" if "os_error_code='28'" in text else str(error).splitlines()[0][:200]
        raise OSError(f"checkpoint write under {directory} failed: {reason}") from error
