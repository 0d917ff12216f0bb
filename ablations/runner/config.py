"""The lab's config, composed by Hydra from the schema (ablations/runner/schema.py: every key and its default),
the YAML presets (`ablations/conf/`), the catalogue's settings for the chosen mistake (registered as the options
of the `mistake` group by `register`) and the command line, which wins. So `--cfg job` prints exactly what runs.
Here too: dotted keys, checks of what the user typed, and every check that can run before anything is written or
compiled."""
from __future__ import annotations

import copy
import difflib
import functools
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from ablations import paths
from ablations.errors import UsageError
from ablations.runner.schema import LabConfig, nullable_keys
from ablations.runner.tracking import wandb_mode
from ablations.runner.training import TrainSettings
from data.sources import SOURCES
from data.synthetic import SyntheticSpec
from data.tokenizers import TOKENIZER_KINDS
from model import GPTConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
_MISTAKES: list[str] = []  # the `mistake` group's options, in the catalogue's order (filled by `register`)
_PROTOCOLS: dict = {}  # the `protocol` group's declared protocols by name (filled by `register`)
EXPLORATORY = "exploratory"
# What a run under a declared protocol may still be given: where it runs and how it is shown, never what it trains
# (the `data` preset is chosen among the protocol's own; no key inside it may be set).
UNDER_PROTOCOL = ("mistake", "data", "protocol", "results_dir", "dry_run", "debug")
UNDER_PROTOCOL_SECTIONS = ("wandb", "distributed")


def nested(settings: dict) -> dict:
    """{"model.n_layers": 8, "steps": 100} -> {"model": {"n_layers": 8}, "steps": 100}."""
    out: dict = {}
    for dotted, value in settings.items():
        *sections, key = dotted.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    return out


def register(mistakes, protocols=(), declared_protocols=lambda spec: {}) -> None:
    """Register the schema (`lab_schema`), one `mistake` option per catalogue entry (its settings, at the top
    level, and what it declares: its grid, and per protocol its seeds, grid and hash) plus `all`, and one `protocol`
    option per declared protocol (its comparison preset, first seed, the mistake's seeds, grid and hash) plus
    `exploratory`, in Hydra's config store. Every command calls it (through ablations.catalogue.register_config)
    before composing; calling it again is a no-op."""
    if _MISTAKES:
        return
    store = ConfigStore.instance()
    store.store(name="lab_schema", node=LabConfig)
    for spec in mistakes:
        store.store(group="mistake", name=spec.name, package="_global_",
                    node={"mistake": spec.name, **nested(spec.settings),
                          "declared": {"lr_grid": list(spec.lr_grid), "protocols": declared_protocols(spec)}})
    store.store(group="mistake", name="all", package="_global_", node={"mistake": "all"})
    store.store(group="protocol", name=EXPLORATORY, package="_global_", node={"protocol": EXPLORATORY})
    for protocol in protocols:
        declared = f"declared.protocols.{protocol.name}"
        store.store(group="protocol", name=protocol.name, package="_global_",
                    node={"defaults": [{"override /comparison": protocol.comparison}], "protocol": protocol.name,
                          "protocol_hash": f"${{{declared}.hash}}", "seed": protocol.first_seed,
                          "seeds": f"${{{declared}.seeds}}", "train": {"lr_grid": f"${{{declared}.lr_grid}}"}})
        _PROTOCOLS[protocol.name] = protocol
    _MISTAKES.extend(spec.name for spec in mistakes)


def groups() -> dict[str, tuple[str, ...]]:
    """The options of each config group: the YAML presets of `data`, `model` and `comparison`, and the mistakes."""
    if not _MISTAKES:
        raise RuntimeError("ablations.runner.config.register(catalogue.MISTAKES) must run before composing")
    presets = lambda group: tuple(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")))  # noqa: E731
    return {"data": presets("data"), "model": presets("model"), "comparison": presets("comparison"),
            "mistake": ("all", *_MISTAKES), "protocol": (EXPLORATORY, *_PROTOCOLS)}


def composed(overrides: list[str]) -> DictConfig:
    """The config Hydra composes for these overrides (outside a Hydra app: studies, checks, tests)."""
    groups()  # refuses to compose before `register`
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def defaults() -> dict:
    """The default config (every mistake's settings aside) as plain data (a fresh copy: composed once a process)."""
    return copy.deepcopy(composed_defaults())


@functools.cache
def composed_defaults() -> dict:
    return OmegaConf.to_container(composed(["mistake=all"]))


def dotted_keys(node, prefix="") -> dict:
    """{"model": {"n_layers": 2}} -> {"model.n_layers": 2}."""
    out = {}
    for key, value in node.items():
        out.update(dotted_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def check_overrides(argv: list[str]) -> None:
    """Unknown keys, group options and wrongly typed values fail here in one line; so does a sweep
    (`mistake=a,b`) without `-m`."""
    base, options = dotted_keys(defaults()), groups()
    multirun = any(a in ("-m", "--multirun") for a in argv)
    texts = [a for a in argv if ("=" in a or a.startswith("~")) and not a.startswith("-")]
    for text, override in zip(texts, parsed(texts)):
        key = override.key_or_group
        if key.startswith("hydra") or key == "defaults":
            continue
        if override.is_delete():
            raise UsageError(f"{text}: the lab's config keys cannot be deleted; give {key}=<value> instead")
        if override.is_sweep_override() and not multirun:
            raise UsageError(f"{text} names several values: add -m (Hydra multirun) to run each, "
                             f"e.g. python -m ablations.run -m {text}")
        if key in options:
            check_choices(key, override.value(), options[key])
            continue
        if key == "follows":
            raise UsageError(f"{text}: follows is set by the lab on the run that retrains a learning-rate grid for "
                             "longer; give comparison=best_lr (or longer_budget=<factor> with train.lr_grid=[...])")
        if key == "protocol_hash":
            raise UsageError(f"{text}: protocol_hash is set by the protocol a run is made under (protocol=<name>), "
                             "from its declaration and the mistake's catalogue entry")
        if key.startswith("declared."):
            raise UsageError(f"{text}: declared.* is what the mistake's catalogue entry declares, not a setting; "
                             "to train at other learning rates give train.lr_grid=[...]")
        if key not in base:
            near = difflib.get_close_matches(key, base, n=3)
            raise UsageError(f"unknown config key {key!r}; " + (f"did you mean {', '.join(near)}?" if near else
                                                                  f"valid keys: {valid_keys(key, base)}"))
        values = override.value()
        for value in (values.list if override.is_sweep_override() else [values]):
            check_value(key, value, base[key])
            if key == "run_name":  # before Hydra, which makes a sweep's directory under results_dir itself
                check_run_name(value)
            elif key == "results_dir":
                paths.writable_directory(value, "results_dir")
    check_protocol(texts)


def check_protocol(texts: list[str]) -> None:
    """A run under a declared protocol takes every setting from it: the command line may choose only the mistake,
    one of the protocol's data presets and where results go; every mistake it names must have its seeds planned;
    and it runs from a clean commit, which every result of it records."""
    given = {text.partition("=")[0].lstrip("+"): text.partition("=")[2] for text in texts}
    name = given.get("protocol", EXPLORATORY)
    if name == EXPLORATORY:
        return
    swept = [f"{k}={v}" for k, v in given.items() if k in ("protocol", "mistake", "data") and "," in v]
    if swept:
        raise UsageError(f"{swept[0]}: a run under a protocol is one command per data preset, without a sweep "
                         "(mistake=all runs every mistake)")
    protocol = _PROTOCOLS[name]
    mistake = given.get("mistake", "all")
    unplanned = [m for m in (_MISTAKES if mistake == "all" else [mistake]) if m not in protocol.seeds]
    if unplanned:
        raise UsageError(f"protocol={name} has no seeds planned for {', '.join(unplanned)} yet: they are planned from "
                         f"the exploratory results in {', '.join(protocol.planned_on)} "
                         f"(python -m ablations.protocol {name} --plan) and declared in "
                         "ablations/catalogue/protocols.py before any run")
    for key in given:
        if key not in UNDER_PROTOCOL and key.partition(".")[0] not in UNDER_PROTOCOL_SECTIONS:
            allowed = [k for k in UNDER_PROTOCOL if k != "protocol"] + [f"{s}.*" for s in UNDER_PROTOCOL_SECTIONS]
            raise UsageError(f"{key}={given[key]}: protocol={name} fixes every setting of its runs; only "
                             f"{', '.join(allowed)} may be given")
    data = given.get("data", "synthetic")
    if data not in protocol.data:
        raise UsageError(f"data={data}: protocol={name} runs on data={' and data='.join(protocol.data)} only")
    from ablations.runner.provenance import git_output

    changes = git_output("status", "--porcelain", "--untracked-files=no")
    if changes is None or changes.strip():
        raise UsageError(f"protocol={name} runs from a clean commit: " +
                         ("this is not a git checkout" if changes is None else
                          "tracked files have uncommitted changes (git status); commit or stash them first"))


def parsed(texts: list[str]) -> list:
    """Hydra's parse of the overrides; a value its grammar refuses is one line with the usual way out."""
    parser = OverridesParser.create()
    overrides = []
    for text in texts:
        try:
            overrides.extend(parser.parse_overrides([text]))
        except HydraException:
            if "=" not in text:
                raise UsageError(f"{text!r} is not key=value (e.g. train.lr=0.001)") from None
            key, _, value = text.partition("=")
            raise UsageError(f"{text!r} is not a key=value Hydra can read (a value with spaces, non-ASCII letters "
                             f"or symbols must be quoted, e.g. '{key}=\"{value}\"')") from None
    return overrides


def valid_keys(key: str, base: dict) -> str:
    """The keys of `key`'s section (`model.`...), or the top-level keys and the sections: a line, not all 48."""
    section = key.rpartition(".")[0]
    inside = [k for k in base if k.rpartition(".")[0] == section]
    if section and inside:
        return ", ".join(inside)
    sections = sorted({k.partition(".")[0] + ".*" for k in base if "." in k})
    return ", ".join([k for k in base if "." not in k] + sections)


def check_choices(key: str, value, choices) -> None:
    for one in (value.list if hasattr(value, "list") else [value]):  # a sweep names several
        if one not in choices:
            raise UsageError(f"{key}={one!r}; valid choices: {', '.join(choices)}")


def check_value(key: str, value, default) -> None:
    choices = {"data.source": SOURCES, "data.tokenizer": TOKENIZER_KINDS}.get(key)
    if choices:
        check_choices(key, value, choices)
    expected = type(default)
    if value is None and default is not None and key not in nullable_keys():
        raise UsageError(f"{key}=null must be of type {expected.__name__} (like the default {default!r}), not null")
    if default is None or value is None or isinstance(value, expected) or (expected is float and type(value) is int):
        return
    raise UsageError(f"{key}={value!r} must be of type {expected.__name__} (like the default {default!r})")


def with_settings(cfg: dict, settings: dict) -> dict:
    """A copy of a resolved config with `settings` applied ({"model.n_layers": 8, "steps": 100})."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in cfg.items()}
    for dotted, value in settings.items():
        section, _, key = dotted.rpartition(".")
        (out[section] if section else out)[key] = value
    return out


def variant_config(spec, resolved: dict, variant: str) -> dict:
    """The config of one variant of `spec` (a catalogue entry): the run's, then the catalogue's settings for that
    variant (a correct variant's `fixes`, the broken one's `broken`), then a study's per-variant settings
    (`resolved["variants"]`, present only when set); interpolations of the run's config resolved."""
    own = spec.broken if variant == "broken" else spec.fixes.get(variant, {})
    settings = {**own, **resolved.get("variants", {}).get(variant, {})}
    return OmegaConf.to_container(OmegaConf.create(with_settings(resolved, settings)), resolve=True)


def variant_model(spec, resolved: dict, variant: str) -> dict:
    return variant_config(spec, resolved, variant)["model"]


def resolve(cfg: DictConfig) -> dict:
    """The composed config (schema defaults, presets, the mistake's settings, the command line) as plain data."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    return resolved


def validate(spec, resolved: dict) -> None:
    """Every check of a resolved config of `spec` (its catalogue entry) that needs no data: sections, every
    variant's model, memory, probes."""
    settings = train_settings(resolved)
    for variant in spec.variants:  # every variant's model (its memory is checked with its data: runner.pair)
        GPTConfig(max_len=settings.seq_len, **variant_model(spec, resolved, variant))
    wandb_mode(resolved["wandb"]["mode"])
    check_data_settings(resolved["data"])
    probe, seq_len = resolved["probe"], settings.seq_len
    if not round(seq_len * probe["length_factor"]) > seq_len:
        raise UsageError(f"probe.length_factor={probe['length_factor']} must reach past the training length "
                         f"(train.seq_len={seq_len}): a factor above 1, e.g. 2.0")
    if not 0 < probe["padding_share"] < 1:
        raise UsageError(f"probe.padding_share={probe['padding_share']} must lie between 0 and 1 (exclusive)")
    check_comparison(settings, resolved)
    if resolved["seeds"] < 1:
        raise UsageError(f"seeds={resolved['seeds']} must be a positive integer")
    if resolved["seed"] < 0:
        raise UsageError(f"seed={resolved['seed']} must be a non-negative integer (the first seed; the run's seeds "
                         "are seed, seed+1, ...)")
    check_run_name(resolved["run_name"])
    paths.writable_directory(resolved["results_dir"], "results_dir")
    given = dotted_keys(resolved)
    for key, (value, why) in spec.refuses.items():  # the catalogue's special cases
        if given[key] == value:
            raise UsageError(f"mistake={resolved['mistake']} cannot run with {key}={value}: {why}")


def check_comparison(settings: TrainSettings, resolved: dict) -> None:
    """A learning-rate grid, its selection split and its longer budget go together (comparison=best_lr sets all
    three); each without the others is refused, naming the one missing."""
    share, longer = resolved["data"]["selection_share"], resolved["longer_budget"]
    if settings.lr_grid and not share > 0:
        raise UsageError(f"train.lr_grid={list(settings.lr_grid)} needs a selection split to choose on: "
                         "data.selection_share=<share of the validation split, e.g. 0.5> (comparison=best_lr sets it)")
    if share > 0 and not settings.lr_grid and resolved["follows"] is None:
        raise UsageError(f"data.selection_share={share} holds out validation data to choose a learning rate on: "
                         "give train.lr_grid=[...] too (comparison=best_lr sets both), or data.selection_share=0")
    if longer < 1:
        raise UsageError(f"longer_budget={longer} must be a positive integer (1: no longer budget)")
    if longer > 1 and not settings.lr_grid:
        raise UsageError(f"longer_budget={longer} retrains each variant at the rate its grid chose: give "
                         "train.lr_grid=[...] too (comparison=best_lr sets both), or longer_budget=1")


def check_run_name(name) -> None:
    """run_name names one directory inside <results_dir>/<mistake>/: a name, never a path."""
    if name is None:
        return
    text = str(name)
    if not text.strip() or text in (".", "..") or any(c in text for c in ("/", "\\", "\0")):
        raise UsageError(f"run_name={text!r} must be one directory name (no /, \\, . or ..; it names "
                         "<results_dir>/<mistake>/<run_name>), or null for the config's hash")


def train_settings(resolved: dict) -> TrainSettings:
    return TrainSettings(steps=resolved["steps"], **resolved["train"])


def check_data_settings(data: dict) -> None:
    """The data section's values, named by their keys (the corpus itself is checked by runner.pair.check_data)."""
    if data["tokenizer"] == "bpe" and data["vocab_size"] is None:
        raise UsageError("data.tokenizer=bpe needs data.vocab_size=<the BPE vocabulary size, e.g. 512>")
    for key in ("vocab_size", "tiny_vocab_size"):  # None: every character of the text
        if data[key] is not None and data[key] < 2:
            raise UsageError(f"data.{key}={data[key]} must be at least 2 (<unk> and one symbol)")
    if not 0 < data["val_fraction"] < 1:
        raise UsageError(f"data.val_fraction={data['val_fraction']} must lie between 0 and 1 (exclusive)")
    if not 0 <= data["selection_share"] < 1:
        raise UsageError(f"data.selection_share={data['selection_share']} must lie in [0, 1) (0: no selection split)")
    if data["n_blocks"] < 1:
        raise UsageError(f"data.n_blocks={data['n_blocks']} must be a positive integer")
    try:
        SyntheticSpec(data["alphabet_size"], data["span"], data["zipf_exponent"])
    except ValueError as error:
        raise UsageError(f"data.{error}") from None
    if data["source"] == "text" and not data["path"]:
        raise UsageError("data.source=text needs data.path=<a UTF-8 file>")
