"""`python -m ablations.run mistake=<name>|all [key=value ...]`: paired runs, symptom, verdict, figures.

Hydra conventions: `key=value` overrides, `-m mistake=a,b seeds=3,5` for sweeps. The same command
resumes the same run (its directory is named by a hash of the resolved config); results are never
overwritten."""
from __future__ import annotations

import difflib
import fcntl
import hashlib
import json
import logging
import platform
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from ablations.registry import BY_NAME, MistakeSpec, lookup, with_settings
from ablations.tracking import MetricsSink, usable_mode, wandb_mode
from ablations.verdict import claim_line

CONF_DIR = Path(__file__).parent / "conf"
SOURCES, TOKENIZERS = ("synthetic", "text", "tfds"), ("char", "bpe")


class UsageError(ValueError):
    """A bad command line or config: reported in one line, before anything compiles."""


def dotted_keys(node, prefix="") -> dict:
    out = {}
    for key, value in node.items():
        out.update(dotted_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def check_overrides(argv: list[str]) -> None:
    """Unknown keys, mistake names and wrongly typed values fail here in one line."""
    base = dotted_keys(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml")))
    for override in OverridesParser.create().parse_overrides([a for a in argv if "=" in a and not a.startswith("-")]):
        key = override.key_or_group
        if key.startswith("hydra") or key == "defaults":
            continue
        if key not in base:
            near = difflib.get_close_matches(key, base, n=3)
            hint = f"did you mean {', '.join(near)}?" if near else f"valid keys: {', '.join(base)}"
            raise UsageError(f"unknown config key {key!r}; {hint}")
        values = override.value()
        for value in (values.list if override.is_sweep_override() else [values]):
            check_value(key, value, base[key])


def check_value(key: str, value, default) -> None:
    if key == "mistake":
        if value != "all":
            lookup(value)
        return
    choices = {"data.source": SOURCES, "data.tokenizer": TOKENIZERS}.get(key)
    if choices and value not in choices:
        raise UsageError(f"{key}={value!r}; valid choices: {', '.join(choices)}")
    expected = type(default)
    if default is None or value is None or isinstance(value, expected) or (expected is float and type(value) is int):
        return
    raise UsageError(f"{key}={value!r} must be of type {expected.__name__} (like the default {default!r})")


def resolve(cfg: DictConfig, spec: MistakeSpec, user_keys: set[str]) -> dict:
    """Base config, then the registry's settings for this mistake, then what the user typed."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    return {**with_settings(resolved, spec.settings, keep=user_keys), "mistake": spec.name}


def validate(resolved: dict) -> None:
    from ablations.train import TrainSettings
    from data import load_text
    from model import GPTConfig

    TrainSettings(steps=resolved["steps"], **resolved["train"])
    for settings in ({}, *lookup(resolved["mistake"]).fixes.values()):  # every correct variant's model
        GPTConfig(max_len=resolved["train"]["seq_len"], **with_settings(resolved, settings)["model"])
    wandb_mode(resolved["wandb"]["mode"])
    if resolved["seeds"] < 1:
        raise UsageError(f"seeds={resolved['seeds']} must be a positive integer")
    if resolved["mistake"] == "position_overflow" and resolved["model"]["position"] == "learned":
        raise UsageError("mistake=position_overflow compares against positions that extrapolate: "
                         "model.position=learned would overflow in the correct variant too; valid choices: rope, sinusoidal")
    if resolved["data"]["source"] == "text":
        if not resolved["data"]["path"]:
            raise UsageError("data.source=text needs data.path=<a UTF-8 file>")
        load_text("text", path=resolved["data"]["path"])  # a missing, empty or binary file fails here, in one line


RUN_ONLY_KEYS = ("wandb", "results_dir", "run_name", "dry_run", "distributed", "debug")


def identity(resolved: dict) -> dict:
    """What makes two runs the same experiment (where results go and how they are logged or shown do not)."""
    return {k: v for k, v in resolved.items() if k not in RUN_ONLY_KEYS}


def run_directory(resolved: dict) -> Path:
    digest = hashlib.sha256(json.dumps(identity(resolved), sort_keys=True).encode()).hexdigest()[:10]
    return Path(resolved["results_dir"]) / resolved["mistake"] / (resolved["run_name"] or digest)


def environment() -> dict:
    import flax
    import jax
    import optax

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "optax": optax.__version__, "git_commit": commit.stdout.strip() or None,
            "platform": jax.default_backend(), "devices": [d.device_kind for d in jax.devices()]}


def exclusive_lock(run_dir: Path):
    """Two processes never write into the same run directory at once."""
    handle = (run_dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(f"another process is running {run_dir}; wait for it or pass run_name=<new>") from None
    return handle


def run_one(spec: MistakeSpec, resolved: dict) -> dict:
    from ablations import figures
    from ablations.experiment import Stopped, run_pair

    run_dir = run_directory(resolved)
    saved = run_dir / "config.json"
    refuse_changed_config(saved, resolved)
    if (run_dir / "verdict.json").exists():
        verdict = json.loads((run_dir / "verdict.json").read_text())
        print(f"{spec.name}: already complete in {run_dir} ({verdict['verdict']}); results are never overwritten, "
              "pass run_name=<new> for a fresh run")
        return verdict
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = exclusive_lock(run_dir)
    saved.write_text(json.dumps(resolved, indent=1))
    (run_dir / "environment.json").write_text(json.dumps(environment(), indent=1))
    print(f"== mistake {spec.number} ({spec.name}): {spec.claim}\n   run directory: {run_dir}")
    print(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    if resolved["seeds"] < 2:
        print("   seeds=1: every statistical claim will be inconclusive (a paired interval needs at least 2 seeds)")
    mode, w = resolved["wandb"]["usable_mode"], resolved["wandb"]
    group = f"{spec.name}-{run_dir.name}"
    sinks = lambda variant_dir, seeds, variant: MetricsSink(
        variant_dir, seeds, mode=mode, project=w["project"], entity=w["entity"], group=group,
        config={"mistake": spec.name, "variant": variant, **{k: resolved[k] for k in ("model", "train", "data")}})
    try:
        verdict = run_pair(spec, resolved, run_dir, sinks)
    except Stopped as stop:
        sys.exit(f"{stop}. Resume with the same command: python -m ablations.run {' '.join(sys.argv[1:])}")
    finally:
        lock.close()
    figures.write_figures(run_dir)
    print_verdict(spec, verdict)
    if mode == "offline":
        print(f"   W&B offline: publish with `wandb sync {run_dir}/*/wandb/offline-run-*`")
    return verdict


def refuse_changed_config(saved: Path, resolved: dict) -> None:
    """Resuming under a changed config would mix two experiments in one directory."""
    if not saved.exists():
        return
    before, now = dotted_keys(identity(json.loads(saved.read_text()))), dotted_keys(identity(resolved))
    differing = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if differing:
        raise UsageError(f"{saved.parent} holds a run whose config differs in {', '.join(differing)}; "
                         "resume with the same config, or pass run_name=<new> for a fresh run")


def print_verdict(spec: MistakeSpec, verdict: dict) -> None:
    print(f"{spec.name}: {verdict['verdict']}")
    for claim in verdict["claims"]:
        print(f"   {claim_line(claim)}")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    from ablations import report

    user_keys = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    names = list(BY_NAME) if cfg.mistake == "all" else [cfg.mistake]
    try:
        resolved = [resolve(cfg, lookup(name), user_keys) for name in names]
        for r in resolved:
            validate(r)
    except ValueError as error:  # UsageError, DataError and the configs' own checks: one line, no traceback
        sys.exit(f"error: {error}")
    if cfg.dry_run:
        for r in resolved:
            print(f"dry run: mistake={r['mistake']} seeds={r['seeds']} steps={r['steps']} -> {run_directory(r)}")
        return
    if not cfg.debug:
        quiet_library_noise()
    mode = usable_mode(cfg.wandb.mode)  # once per process, not per run
    for r in resolved:
        r["wandb"]["usable_mode"] = mode
    if cfg.distributed:
        import jax

        jax.distributed.initialize()
    failed = [name for name, r in zip(names, resolved) if not run_guarded(BY_NAME[name], r, suite=len(names) > 1)]
    if cfg.mistake == "all":
        print(f"report: {report.write_markdown(Path(cfg.results_dir))}")
    if failed:
        sys.exit(f"error: {', '.join(failed)} failed (see above); the other results are complete")


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


def main() -> None:
    try:
        check_overrides(sys.argv[1:])
    except ValueError as error:
        sys.exit(f"error: {error}")
    hydra_main()


if __name__ == "__main__":
    main()
