"""What produced a run: library versions, the commit and whether the tree was dirty, the devices."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

def environment() -> dict:
    """What produced a run: versions (None for a distribution not installed), the commit and whether tracked
    files had uncommitted changes (None without git or outside a repository), and the devices."""
    import flax
    import jax
    import optax

    distributions = ("orbax-checkpoint", "wandb", "tensorflow-datasets", "tokenizers", "numpy", "scipy")
    commit, changes = git_output("rev-parse", "HEAD"), git_output("status", "--porcelain", "--untracked-files=no")
    return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "optax": optax.__version__, **{name: distribution_version(name) for name in distributions},
            "git_commit": (commit or "").strip() or None, "git_dirty": None if changes is None else bool(changes),
            "platform": jax.default_backend(), "devices": [d.device_kind for d in jax.devices()],
            "processes": jax.process_count()}


def distribution_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_output(*args: str) -> str | None:
    """stdout of a git command run in this package's directory; None without git or outside a repository."""
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent)
    except OSError:
        return None
    return result.stdout if result.returncode == 0 else None
