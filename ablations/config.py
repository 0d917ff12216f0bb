"""The lab's config: Hydra's YAML (`ablations/conf/`) holds the defaults, the registry adds each mistake's
settings, the command line wins. Here: dotted keys, checks of what the user typed, the resolved config
of a run, and every check that can run before anything is written or compiled."""
from __future__ import annotations

import difflib
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from ablations.registry import MistakeSpec, lookup
from ablations.tracking import wandb_mode
from data.sources import SOURCES
from data.tokenizers import TOKENIZER_KINDS


class UsageError(ValueError):
    """A bad command line or config: reported in one line, before anything compiles."""


CONF_DIR = Path(__file__).parent / "conf"
GROUPS = {group: tuple(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))) for group in ("data",)}


def defaults() -> dict:
    """The default config as Hydra composes it (config.yaml and the default of each group), as plain data."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_container(compose("config"))


def dotted_keys(node, prefix="") -> dict:
    """{"model": {"n_layers": 2}} -> {"model.n_layers": 2}."""
    out = {}
    for key, value in node.items():
        out.update(dotted_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def check_overrides(argv: list[str]) -> None:
    """Unknown keys, mistake names and wrongly typed values fail here in one line."""
    base = dotted_keys(defaults())
    for override in OverridesParser.create().parse_overrides([a for a in argv if "=" in a and not a.startswith("-")]):
        key = override.key_or_group
        if key.startswith("hydra") or key == "defaults":
            continue
        if key in GROUPS:
            check_choices(key, override.value(), GROUPS[key])
            continue
        if key not in base:
            near = difflib.get_close_matches(key, base, n=3)
            hint = f"did you mean {', '.join(near)}?" if near else f"valid keys: {', '.join(base)}"
            raise UsageError(f"unknown config key {key!r}; {hint}")
        values = override.value()
        for value in (values.list if override.is_sweep_override() else [values]):
            check_value(key, value, base[key])


def check_choices(key: str, value, choices) -> None:
    for one in (value.list if hasattr(value, "list") else [value]):  # a sweep names several
        if one not in choices:
            raise UsageError(f"{key}={one!r}; valid choices: {', '.join(choices)}")


def check_value(key: str, value, default) -> None:
    if key == "mistake":
        if value != "all":
            lookup(value)
        return
    choices = {"data.source": SOURCES, "data.tokenizer": TOKENIZER_KINDS}.get(key)
    if choices:
        check_choices(key, value, choices)
    expected = type(default)
    if default is None or value is None or isinstance(value, expected) or (expected is float and type(value) is int):
        return
    raise UsageError(f"{key}={value!r} must be of type {expected.__name__} (like the default {default!r})")


def with_settings(cfg: dict, settings: dict, keep=frozenset()) -> dict:
    """A copy of a resolved config with `settings` applied ({"model.n_layers": 8, "steps": 100}), except the
    keys in `keep` (what the user typed wins)."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in cfg.items()}
    for dotted, value in settings.items():
        if dotted in keep:
            continue
        section, _, key = dotted.rpartition(".")
        (out[section] if section else out)[key] = value
    return out


def variant_model(resolved: dict, variant: str) -> dict:
    """The model section of one variant: the run's, then the registry's settings for that variant (a correct
    variant's `fixes`), then a study's per-variant settings (`resolved["variants"]`, present only when set)."""
    settings = {**lookup(resolved["mistake"]).fixes.get(variant, {}), **resolved.get("variants", {}).get(variant, {})}
    return with_settings(resolved, settings)["model"]


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
    for variant in lookup(resolved["mistake"]).variants:  # every variant's model
        GPTConfig(max_len=resolved["train"]["seq_len"], **variant_model(resolved, variant))
    wandb_mode(resolved["wandb"]["mode"])
    probe, seq_len = resolved["probe"], resolved["train"]["seq_len"]
    if not round(seq_len * probe["length_factor"]) > seq_len:
        raise UsageError(f"probe.length_factor={probe['length_factor']} must reach past the training length "
                         f"(train.seq_len={seq_len}): a factor above 1, e.g. 2.0")
    if not 0 < probe["padding_share"] < 1:
        raise UsageError(f"probe.padding_share={probe['padding_share']} must lie between 0 and 1 (exclusive)")
    if resolved["seeds"] < 1:
        raise UsageError(f"seeds={resolved['seeds']} must be a positive integer")
    if resolved["mistake"] == "position_overflow" and resolved["model"]["position"] == "learned":
        raise UsageError("mistake=position_overflow compares against positions that extrapolate: "
                         "model.position=learned would overflow in the correct variant too; valid choices: rope, sinusoidal")
    if resolved["data"]["source"] == "text":
        if not resolved["data"]["path"]:
            raise UsageError("data.source=text needs data.path=<a UTF-8 file>")
        load_text("text", path=resolved["data"]["path"])  # a missing, empty or binary file fails here, in one line
