"""One run of one mistake in its directory: the lock, the saved config and environment, resuming, training and
measuring the pair (runner.pair), then the finish: figures (drawn by the function the command passes in), timing,
the printed verdict and the comparison with the committed reference. The commands (`ablations.run`,
`ablations.study`) resolve configs; this runs them."""
from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from ablations.errors import EXIT_FAILED, EXIT_INTERRUPTED, UsageError
from ablations.runner import hosts, layout
from ablations.runner.config import with_settings
from ablations.runner.identity import refuse_changed_config, run_directory
from ablations.runner.pair import run_pair
from ablations.runner.provenance import environment
from ablations.runner.reference import print_reference_comparison
from ablations.runner.stopping import Stopped
from ablations.runner.tracking import MetricsSink, NullSink
from ablations.science import budgets, learning_rates
from ablations.science.verdict import claim_line, evidence

WriteFigures = Callable[[object, Path], object]  # (catalogue entry, run directory) -> the figures written


def exclusive_lock(run_dir: Path):
    """Two processes never write into the same run directory at once."""
    handle = (run_dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(f"another process is running {run_dir}; wait for it or pass run_name=<new>") from None
    return handle


def run_one(spec, resolved: dict, write_figures: WriteFigures) -> dict | None:
    """Train, measure, judge and plot one mistake (`spec`, its catalogue entry) in its run directory (resumed if it
    has a checkpoint); the verdict (None on a process of a multi-host run other than 0, which trains and writes
    nothing)."""
    run_dir = run_directory(resolved)
    refuse_changed_config(run_dir / layout.CONFIG, resolved)
    layout.refuse_old_checkpoints(run_dir)
    if layout.is_complete(run_dir):
        verdict = layout.read(run_dir, layout.VERDICT)
        if hosts.writes() and not layout.figures_dir(run_dir).is_dir():  # stopped while drawing them
            draw(spec, run_dir, write_figures)
        if hosts.writes():
            print(f"{spec.name}: already complete in {run_dir} ({evidence(verdict)}: {verdict['verdict']}); results "
                  "are never overwritten, pass run_name=<new> for a fresh run")
            print_reference_comparison(run_dir, resolved)
        return verdict
    started = time.perf_counter()
    try:
        with contextlib.ExitStack() as opened:
            error = None
            if hosts.writes():
                try:
                    opened.enter_context(open_run(spec, resolved, run_dir))
                except (ValueError, OSError) as failed:
                    error = failed
            if hosts.any_process(error is not None):  # process 0 could not start: no process trains
                raise error or RuntimeError(f"process 0 could not open {run_dir} (see its error)")
            verdict = run_pair(spec, resolved, run_dir, sink_factory(spec, resolved, run_dir))
    except Stopped as stop:
        print(f"{stop}. Resume with the same command: {resume_command()}", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    if hosts.writes():
        finish(spec, resolved, run_dir, verdict, time.perf_counter() - started, write_figures)
    hosts.barrier(f"{spec.name} measured")  # the other processes wait for process 0's measurements
    return verdict if hosts.writes() else None


def finish(spec, resolved: dict, run_dir: Path, verdict: dict, seconds: float, write_figures: WriteFigures) -> None:
    """Figures, timing, the printed verdict and the comparison with the committed reference (process 0)."""
    draw(spec, run_dir, write_figures)
    layout.write(run_dir, layout.TIMING, {"seconds": round(seconds, 1),
                                          "note": "wall time of the last session that trained it"})
    print_verdict(spec, verdict, resolved)
    print_reference_comparison(run_dir, resolved)
    if resolved["wandb"]["usable_mode"] == "offline":
        print(f"   W&B offline: publish with `wandb sync {run_dir}/*/wandb/offline-run-*`")


def draw(spec, run_dir: Path, write_figures: WriteFigures) -> None:
    """All of a finished run's figures or none: a stop while drawing removes the half-drawn ones (a figures/
    directory this call made), so that the same command draws them again."""
    existed = layout.figures_dir(run_dir).exists()
    try:
        write_figures(spec, run_dir)
    except BaseException:
        if not existed:
            shutil.rmtree(layout.figures_dir(run_dir), ignore_errors=True)
        raise


@contextlib.contextmanager
def open_run(spec, resolved: dict, run_dir: Path):
    """The run directory, locked for this process, with its config and environment written."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(run_dir):
        layout.write(run_dir, layout.CONFIG, resolved)
        layout.write(run_dir, layout.ENVIRONMENT, environment())
        print(f"== mistake {spec.number} ({spec.name}): {spec.claim}\n   run directory: {run_dir}")
        print(OmegaConf.to_yaml(OmegaConf.create(resolved)))
        if resolved["seeds"] < 2:
            print("   seeds=1: every statistical claim will be inconclusive (a paired interval needs at least 2 "
                  "seeds)")
        yield


def sink_factory(spec, resolved: dict, run_dir: Path):
    """(variant_dir, members, variant) -> where that variant's rows go: its JSONL and W&B (process 0), nowhere
    (the other processes of a multi-host run)."""
    if not hosts.writes():
        return lambda variant_dir, members, variant: NullSink()
    w = resolved["wandb"]
    return lambda variant_dir, members, variant: MetricsSink(
        variant_dir, members, mode=w["usable_mode"], project=w["project"], entity=w["entity"],
        group=f"{spec.name}-{run_dir.name}",
        config={"mistake": spec.name, "variant": variant, **{k: resolved[k] for k in ("model", "train", "data")}})


def resume_command() -> str:
    main = sys.modules["__main__"]
    module = main.__spec__.name if getattr(main, "__spec__", None) else sys.argv[0]
    return f"python -m {module} {' '.join(sys.argv[1:])}".strip()


def print_verdict(spec, verdict: dict, config: dict) -> None:
    print(f"{spec.name} ({evidence(verdict)}): {verdict['verdict']}")
    if "learning_rates" in verdict:
        print(f"   {learning_rates.describe(verdict['learning_rates'])}")
    if "budgets" in verdict:
        rates = ", ".join(f"{name} {lr:g}" for name, lr in verdict["budgets"]["learning_rates"].items())
        print(f"   longer budget, each variant at the rate its grid chose ({rates}):")
        for line in budgets.describe(verdict["budgets"]):
            print(f"      {line}")
    for claim in verdict["claims"]:
        print(f"   {claim_line(claim, config)}")


def quiet_library_noise() -> None:
    """orbax (through absl) and asyncio log tracebacks of errors the lab reports in one line; after a
    failed checkpoint write, orbax leaves coroutines unawaited and tensorstore's late callbacks hit its
    closed event loop ("unraisable")."""
    for name in ("absl", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    default = sys.unraisablehook
    closed_loop = lambda error: isinstance(error, RuntimeError) and str(error) == "Event loop is closed"
    sys.unraisablehook = lambda unraisable: None if closed_loop(unraisable.exc_value) else default(unraisable)


def longer_budget_run(resolved: dict) -> dict | None:
    """After a learning-rate grid with longer_budget > 1 (once its verdict is written), the run that retrains each
    variant at the rate the grid chose for it, for longer_budget times the steps, on fresh seeds (the next `seeds`
    after the grid's: the rate was chosen on the grid's seeds, so their luck stays there), measured on the same split.
    It sits beside the grid run, whose directory name it `follows` (part of its identity), and resumes like any run."""
    if resolved["longer_budget"] <= 1 or not resolved["train"]["lr_grid"]:
        return None
    grid_run = run_directory(resolved)
    if not layout.is_complete(grid_run):
        return None
    chosen = layout.read(grid_run, layout.VERDICT)["learning_rates"]["chosen"]
    variants = {name: {**resolved.get("variants", {}).get(name, {}), "train.lr": lr} for name, lr in chosen.items()}
    name = resolved["run_name"]
    return {**with_settings(resolved, {"steps": resolved["steps"] * resolved["longer_budget"], "train.lr_grid": [],
                                       "seed": resolved["seed"] + resolved["seeds"], "longer_budget": 1,
                                       "follows": grid_run.name,
                                       "run_name": None if name is None else f"{name}-x{resolved['longer_budget']}"}),
            "variants": variants}


def run_guarded(spec, resolved: dict, suite: bool, write_figures: WriteFigures) -> bool:
    """Run one mistake. Bad input and an unwritable disk end the process in one line (debug=true: with the
    traceback); in a suite, any other error is reported and the suite goes on."""
    try:
        run_one(spec, resolved, write_figures)
        if (longer := longer_budget_run(resolved)) is not None:  # every process: the run's barriers need them all
            run_one(spec, longer, write_figures)
        return True
    except UsageError:  # the run's own refusals before any work (a changed config, a locked run): exit 2
        raise
    except ValueError as error:  # raised while working: the work failed (exit 1), in one line
        if resolved["debug"]:
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
    except OSError as error:  # a read-only or full results disk: say so in one line; finished runs stay intact
        if resolved["debug"]:
            raise
        sys.exit(f"error: cannot write results ({error})")
    except Exception as error:
        if not suite:
            raise
        traceback.print_exc()
        print(f"error: {spec.name} failed with {type(error).__name__}: {error}", file=sys.stderr)
        return False
