"""What produced a run: library versions, the commit and whether the tree was dirty, the machine (CPU model and
flags, XLA's flags) and the devices: everything float rounding may depend on."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

def environment() -> dict:
    """What produced a run: versions (None for a distribution not installed), the commit and whether tracked
    files had uncommitted changes (None without git or outside a repository), the machine and devices, and the
    command line that started the run."""
    import flax
    import jax
    import jax.extend
    import jaxlib
    import optax

    distributions = ("orbax-checkpoint", "wandb", "tensorflow-datasets", "tokenizers", "numpy", "scipy")
    commit, changes = git_output("rev-parse", "HEAD"), git_output("status", "--porcelain", "--untracked-files=no")
    return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "optax": optax.__version__, **{name: distribution_version(name) for name in distributions},
            "git_commit": (commit or "").strip() or None, "git_dirty": None if changes is None else bool(changes),
            "jaxlib": jaxlib.__version__, "platform": jax.default_backend(),
            "platform_version": jax.extend.backend.get_backend().platform_version,
            "devices": [d.device_kind for d in jax.devices()], "processes": jax.process_count(),
            "xla_flags": os.environ.get("XLA_FLAGS"), **cpu(), "argv": sys.argv}


def cpu() -> dict:
    """The host CPU's model, instruction-set flags and core count (Linux's /proc/cpuinfo; elsewhere the model
    Python's platform module reports, and no flags)."""
    fields = {}
    if CPUINFO.exists():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return {"cpu_model": fields.get("model name") or platform.processor() or platform.machine() or None,
            "cpu_flags": fields.get("flags", fields.get("Features")), "cpu_count": os.cpu_count()}


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
