import contextlib
import importlib
import io
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ablations import catalogue

catalogue.register_config()  # what every command does first: the tests compose configs in-process too

# The fast subset compiles as the audit does (ablations.audit.numerics.FAST_COMPILE): XLA's backend optimisations
# off, ~3x faster compiles on a CPU, results equal up to float32 rounding. The full suite, and every command a
# test starts in a subprocess, compile as users do.
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
# pytest-xdist's workers inherit the flags their controller set: the user's are what is left without ours.
USER_XLA_FLAGS = os.environ.get("XLA_FLAGS", "").replace(FAST_COMPILE_FLAGS, "").strip() or None


def pytest_configure(config):
    """Before any test initialises JAX's backend (which reads XLA_FLAGS once)."""
    if "not slow" in config.getoption("markexpr"):
        os.environ["XLA_FLAGS"] = f"{USER_XLA_FLAGS or ''} {FAST_COMPILE_FLAGS}".strip()

ROOT = Path(__file__).resolve().parents[1]
SHARED_TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"

# How long a command a test starts may take before the test calls it hung: a guard, not a speed target (speed is
# `python -m ablations.benchmark`'s). Generous, so that a machine shared with a training run or with other test
# workers, where the tiny suite has taken over 15 minutes, does not fail a correct command.
HANG_GUARD_S = 1800

# A configuration small enough that every mistake trains, probes and plots in seconds.
TINY = ["steps=4", "seeds=2", "train.warmup=1", "train.log_every=2", "train.eval_every=2", "train.ckpt_every=2",
        "train.batch_size=4", "train.seq_len=32", "train.eval_windows=8", "model.d_model=16", "model.n_heads=2",
        "model.n_layers=2", "data.n_blocks=300"]


def run_lab(*args, module="ablations.run", check=True, env=None):
    """Run a lab command in a subprocess, as a user would, from the repository root."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "XLA_FLAGS")}
    full_env.update({"XLA_FLAGS": USER_XLA_FLAGS} if USER_XLA_FLAGS else {})
    full_env.update({"WANDB_SILENT": "true", **(env or {})})
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                            env=full_env, timeout=HANG_GUARD_S)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
                             f"stderr:\n{result.stderr[-3000:]}")
    return result


def run_cli_here(*args, module="ablations.run"):
    """Run a lab command line in this process (no interpreter start, no JAX import: milliseconds, not
    seconds), for the commands that stop before training; what a user would see, as a CompletedProcess:
    its exit status, stdout, and stderr with the exit message Python would print."""
    from hydra.core.global_hydra import GlobalHydra

    cli = importlib.import_module(module)
    GlobalHydra.instance().clear()
    getattr(cli, "FAILED_JOBS", []).clear()
    out, err, code = io.StringIO(), io.StringIO(), 0
    argv, sys.argv = sys.argv, [module, *args]
    levels = {name: logging.getLogger(name).level for name in ("absl", "asyncio")}  # quiet_library_noise's
    hook = sys.unraisablehook
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            code = cli.main()  # an argparse command returns its exit status; a Hydra app raises SystemExit
    except SystemExit as stop:
        code = stop.code
    finally:
        sys.argv, sys.unraisablehook = argv, hook
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    if isinstance(code, str):
        err.write(code + "\n")
    return subprocess.CompletedProcess([module, *args], 1 if isinstance(code, str) else code or 0,
                                       out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory):
    """The whole suite (every mistake of the catalogue) end to end on the tiny configuration, once per session."""
    results = tmp_path_factory.mktemp("suite")
    run_lab("mistake=all", *TINY, f"results_dir={results}", "wandb.mode=disabled")
    return results


def fake_devices(platform: str, version: str, capability: str = "9.0", kind: str = "NVIDIA H100 80GB HBM3"):
    """A stand-in for `jax.devices` on another machine: platform ("gpu", "cpu", "tpu"), the client's
    platform_version ("cuda 12080", "rocm 6.3"), on a GPU the compute capability, and the device kind."""
    client = type("Client", (), {"platform_version": version})()
    device = type("Device", (), {"platform": platform, "client": client, "compute_capability": capability,
                                 "device_kind": kind})()
    return lambda: [device]
