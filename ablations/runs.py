"""One run of the lab: its directory under the results layout (named by a hash of what makes it the same
experiment), its lock, its saved config and environment, training and measuring the pair, figures and
the printed verdict. The CLIs (`ablations.run`, `ablations.study`) resolve configs; this runs them."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import platform
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

from omegaconf import OmegaConf

from ablations import hosts, layout
from ablations.config import UsageError, dotted_keys
from ablations.registry import MistakeSpec
from ablations.tracking import MetricsSink, NullSink
from ablations.verdict import claim_line

RUN_ONLY_KEYS = ("wandb", "results_dir", "run_name", "dry_run", "distributed", "debug")
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "results"  # the committed reference results (README)


# Keys added to the config after runs were committed, each with the value that does what the code did before it.
ADDED_LATER = {"model.attention": "einsum"}


def identity(resolved: dict) -> dict:
    """What makes two runs the same experiment (where results go and how they are logged or shown do not); a key
    added later that a saved config predates is filled in at the value that did what the code did then."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in resolved.items() if k not in RUN_ONLY_KEYS}
    for section, key, before in added_later():
        if isinstance(out.get(section), dict):
            out[section].setdefault(key, before)
    return out


def added_later() -> list[tuple[str, str, object]]:
    """ADDED_LATER as (section, key, earlier value)."""
    return [(*dotted.split("."), before) for dotted, before in ADDED_LATER.items()]


MEASURE_ONLY_KEYS = ("probe",)  # settings of what is measured after training, not of the training


def same_training(a: dict, b: dict) -> bool:
    """Whether two runs train exactly the same pair (same program, data, seeds and steps): they differ at most
    in what is measured afterwards."""
    strip = lambda resolved: {k: v for k, v in identity(resolved).items() if k not in MEASURE_ONLY_KEYS}
    return strip(a) == strip(b)


def run_directory(resolved: dict) -> Path:
    """Named by a hash of the run's identity; a key added later is left out at the value that did what the code
    did before it, so the run directories made before it keep their names."""
    named = identity(resolved)
    for section, key, before in added_later():
        if isinstance(named.get(section), dict) and named[section].get(key) == before:
            del named[section][key]
    digest = hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()[:10]
    return Path(resolved["results_dir"]) / resolved["mistake"] / (resolved["run_name"] or digest)


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


def exclusive_lock(run_dir: Path):
    """Two processes never write into the same run directory at once."""
    handle = (run_dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(f"another process is running {run_dir}; wait for it or pass run_name=<new>") from None
    return handle


def run_one(spec: MistakeSpec, resolved: dict) -> dict | None:
    """Train, measure, judge and plot one mistake in its run directory (resumed if it has a checkpoint); the
    verdict (None on a process of a multi-host run other than 0, which trains and writes nothing)."""
    from ablations.experiment import run_pair
    from ablations.stopping import Stopped

    run_dir = run_directory(resolved)
    refuse_changed_config(run_dir / layout.CONFIG, resolved)
    layout.refuse_old_checkpoints(run_dir)
    if layout.is_complete(run_dir):
        verdict = layout.read(run_dir, layout.VERDICT)
        if hosts.writes():
            print(f"{spec.name}: already complete in {run_dir} ({verdict['verdict']}); results are never "
                  "overwritten, pass run_name=<new> for a fresh run")
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
        sys.exit(f"{stop}. Resume with the same command: {resume_command()}")
    if hosts.writes():
        finish(spec, resolved, run_dir, verdict, time.perf_counter() - started)
    hosts.barrier(f"{spec.name} measured")  # the other processes wait for process 0's measurements
    return verdict if hosts.writes() else None


def finish(spec: MistakeSpec, resolved: dict, run_dir: Path, verdict: dict, seconds: float) -> None:
    """Figures, timing, the printed verdict and the comparison with the committed reference (process 0)."""
    from ablations import figures

    figures.write_figures(run_dir)
    layout.write(run_dir, layout.TIMING, {"seconds": round(seconds, 1),
                                          "note": "wall time of the last session that trained it"})
    print_verdict(spec, verdict)
    print_reference_comparison(run_dir, resolved)
    if resolved["wandb"]["usable_mode"] == "offline":
        print(f"   W&B offline: publish with `wandb sync {run_dir}/*/wandb/offline-run-*`")


@contextlib.contextmanager
def open_run(spec: MistakeSpec, resolved: dict, run_dir: Path):
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


def sink_factory(spec: MistakeSpec, resolved: dict, run_dir: Path):
    """(variant_dir, seeds, variant) -> where that variant's rows go: its JSONL and W&B (process 0), nowhere
    (the other processes of a multi-host run)."""
    if not hosts.writes():
        return lambda variant_dir, seeds, variant: NullSink()
    w = resolved["wandb"]
    return lambda variant_dir, seeds, variant: MetricsSink(
        variant_dir, seeds, mode=w["usable_mode"], project=w["project"], entity=w["entity"],
        group=f"{spec.name}-{run_dir.name}",
        config={"mistake": spec.name, "variant": variant, **{k: resolved[k] for k in ("model", "train", "data")}})


def resume_command() -> str:
    main = sys.modules["__main__"]
    module = main.__spec__.name if getattr(main, "__spec__", None) else sys.argv[0]
    return f"python -m {module} {' '.join(sys.argv[1:])}".strip()


def refuse_changed_config(saved: Path, resolved: dict) -> None:
    """Resuming under a changed config would mix two experiments in one directory."""
    if not saved.exists():
        return
    before, now = dotted_keys(identity(json.loads(saved.read_text()))), dotted_keys(identity(resolved))
    differing = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if differing:
        raise UsageError(f"{saved.parent} holds a run whose config differs in {', '.join(differing)}; "
                         "resume with the same config, or pass run_name=<new> for a fresh run")


def reference_run(run_dir: Path, resolved: dict) -> tuple[Path, list[str]] | None:
    """The committed run of the same experiment, and the config keys it predates: the same directory name under
    REFERENCE_DIR, else a run of the same mistake whose config agrees on every key it has (a key added to the
    lab after it was recorded is listed, unless ADDED_LATER gives the value it had then: it is compared at that
    value). None when there is none, or when this run is that reference."""
    now = dotted_keys(identity(resolved))
    for reference in layout.all_finished_runs(REFERENCE_DIR, resolved["mistake"]):
        if reference.resolve() == run_dir.resolve():
            return None
        before = dotted_keys(identity(layout.read(reference, layout.CONFIG)))
        if all(now.get(key, object()) == value for key, value in before.items()):
            return reference, sorted(now.keys() - before.keys())
    return None


def compare_measurements(mine: dict, reference: dict) -> dict:
    """Every number (or None: never reached the floor) of measurements.json ({variant: [per-seed {name: value}]})
    against the reference's."""
    pairs = [(f"{variant} seed #{i} {name}", value, reference[variant][i].get(name))
             for variant, seeds in mine.items() if variant in reference
             for i, values in enumerate(seeds) if i < len(reference[variant])
             for name, value in values.items() if value is None or isinstance(value, (int, float))]
    differing = [(where, a, b) for where, a, b in pairs if a != b]
    gaps = [(abs(a - b), where, a, b) for where, a, b in differing
            if isinstance(a, (int, float)) and isinstance(b, (int, float))]
    return {"compared": len(pairs), "differing": len(differing), "largest": max(gaps, default=None)}


def print_reference_comparison(run_dir: Path, resolved: dict) -> None:
    """One line: this run's measurements against the committed reference (written once to reference.json)."""
    found = reference_run(run_dir, resolved)
    if found is None:
        return
    reference, newer_keys = found
    result = compare_measurements(*(layout.read(d, layout.MEASUREMENTS) for d in (run_dir, reference)))
    verdicts = [layout.read(d, layout.VERDICT)["verdict"] for d in (run_dir, reference)]
    where = reference.relative_to(REFERENCE_DIR.parent)
    if result["differing"] == 0:
        line = f"identical to the reference {where} ({result['compared']} measurements, bit for bit)"
    else:
        gap = result["largest"]
        largest = f"; largest |difference| {gap[0]:.3g} ({gap[1]}: {gap[2]:.6g} vs {gap[3]:.6g})" if gap else ""
        line = (f"differs from the reference {where}: {result['differing']} of {result['compared']} measurements"
                f"{largest}; verdict {'the same' if verdicts[0] == verdicts[1] else 'differs: ' + verdicts[1]}")
    if newer_keys:
        line += f" (the reference predates {', '.join(newer_keys)})"
    print(f"   reference: {line}")
    if not (run_dir / layout.REFERENCE).exists():
        layout.write(run_dir, layout.REFERENCE, {"reference": str(where), "predates": newer_keys, **result,
                                                 "same_verdict": verdicts[0] == verdicts[1], "line": line})


def print_verdict(spec: MistakeSpec, verdict: dict) -> None:
    print(f"{spec.name}: {verdict['verdict']}")
    for claim in verdict["claims"]:
        print(f"   {claim_line(claim)}")


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


def run_guarded(spec: MistakeSpec, resolved: dict, suite: bool) -> bool:
    """Run one mistake. Bad input and an unwritable disk end the process in one line (debug=true: with the
    traceback); in a suite, any other error is reported and the suite goes on."""
    try:
        run_one(spec, resolved)
        return True
    except ValueError as error:
        if resolved["debug"]:
            raise
        sys.exit(f"error: {error}")
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
