"""The schema of the lab's config and every default it has, Hydra's way: structured configs (dataclasses) hold the
keys, their types and their defaults; YAML files under `ablations/conf/` hold the presets (`model=`, `data=`);
each mistake's catalogue entry holds its settings (the options of the `mistake` group). Sections that mirror a
dataclass the code runs with (training, the model, the synthetic source) take its fields and defaults from it, so
no default is written twice. A key whose default is null (Any) is checked where it is read, in one line."""
from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Optional

from ablations.runner.training import TrainSettings
from ablations.science.probes import ProbeInputs
from data.synthetic import SyntheticSpec
from model import GPTConfig

# vocab_size and max_len come from the data and train.seq_len; mistakes from the `mistake` group
MODEL_KEYS = ("d_model", "n_heads", "n_layers", "ffn_mult", "position", "dtype", "attention")


def section_of(cls, name: str, keys=None, skip=()):
    """A structured config with some of a dataclass's fields, their types and their defaults."""
    hints = typing.get_type_hints(cls)
    fields = [(f.name, hints[f.name], dataclasses.field(default=f.default)) for f in dataclasses.fields(cls)
              if (keys is None or f.name in keys) and f.name not in skip]
    return dataclasses.make_dataclass(name, fields)


TrainSection = section_of(TrainSettings, "TrainSection", skip=("steps",))  # steps sits at the top level
ModelSection = section_of(GPTConfig, "ModelSection", keys=MODEL_KEYS)


@dataclasses.dataclass
class DataSection:
    source: str = "synthetic"  # synthetic | shakespeare | text | tfds (data.sources.SOURCES)
    path: Any = None  # data.source=text: a local UTF-8 file
    tfds_name: str = "tiny_shakespeare"
    tfds_dir: Any = None
    tfds_download: bool = True  # false: use only a prepared local copy (TFDS retries a missing network for minutes)
    tokenizer: str = "char"  # char | bpe
    vocab_size: Any = None  # null: every character of the text (char); bpe needs a number
    tiny_vocab_size: Optional[int] = 16  # mistake 10's vocabulary (null: every character; catalogue/m10_tiny_vocab.py)
    n_blocks: int = 20000  # synthetic: blocks of (span fresh symbols | copy)
    val_fraction: float = 0.1
    selection_share: float = 0.0  # of the validation split: its tail, held out for choosing learning rates (0: none)
    alphabet_size: int = SyntheticSpec.alphabet_size
    span: int = SyntheticSpec.span
    zipf_exponent: float = SyntheticSpec.zipf_exponent


@dataclasses.dataclass
class ProbeSection:  # settings of the symptom probes measured on trained pairs (ablations.science.probes)
    length_factor: float = 2.0  # position_overflow: evaluate on windows this many times the training length
    padding_share: float = ProbeInputs.padding_share  # padding_mask: its rows' left padding cycles over [0, this share)


@dataclasses.dataclass
class DeclaredSection:  # what the chosen mistake's catalogue entry declares, set by the `mistake` group; not settings
    lr_grid: list = dataclasses.field(default_factory=list)  # comparison=best_lr trains every variant at each rate
    protocols: dict = dataclasses.field(default_factory=dict)  # protocol name -> {seeds, hash} for this mistake


@dataclasses.dataclass
class WandbSection:
    mode: str = "auto"  # auto (online with WANDB_API_KEY, else offline) | online | offline | disabled
    project: str = "transformer-mistakes-lab"
    entity: Any = None


@dataclasses.dataclass
class DistributedSection:  # multi-host (ablations/runner/hosts.py): every process trains, only process 0 writes
    enabled: bool = False
    coordinator_address: Any = None  # host:port of process 0; null: from the cluster's environment (SLURM, ...)
    num_processes: Any = None
    process_id: Any = None
    timeout_s: int = 300  # how long a process waits for the coordinator and for every process to join


@functools.cache
def nullable_keys(cls=None, prefix: str = "") -> frozenset[str]:
    """The dotted keys whose schema type takes null (Any or Optional): the keys a user may set to null."""
    cls = cls or LabConfig
    out = set()
    for name, kind in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(kind):
            out |= nullable_keys(kind, f"{prefix}{name}.")
        elif kind is Any or type(None) in typing.get_args(kind):
            out.add(f"{prefix}{name}")
    return frozenset(out)


@dataclasses.dataclass
class LabConfig:
    mistake: str = "all"  # one of the catalogue's mistakes, or all; ablations.run asks for it
    seeds: int = 3  # seeds per variant, trained together (vmap)
    seed: int = 0  # first seed; seeds are seed, seed+1, ...
    steps: int = TrainSettings.steps
    results_dir: str = "runs"  # your runs; the committed reference results are in results/
    run_name: Any = None  # default: a hash of the resolved config, so the same command resumes the same run
    dry_run: bool = False  # print what each job would run (and where) without training
    longer_budget: int = 1  # on a learning-rate grid: then retrain each variant at its chosen rate for this many
    # times the steps, and read every claim at both budgets (comparison=best_lr: 4; 1: no second budget)
    follows: Any = None  # set by the lab on a longer-budget run: the run directory of the grid it retrains
    protocol: str = "exploratory"  # or a declared confirmatory protocol (ablations/catalogue/protocols.py), which
    # fixes the comparison, the seeds and every setting
    protocol_hash: Any = None  # set by the protocol: a hash of its declaration and this mistake's catalogue entry
    debug: bool = False  # true: library logs (orbax, absl, asyncio) and full tracebacks, not one-line errors
    declared: DeclaredSection = dataclasses.field(default_factory=DeclaredSection)
    distributed: DistributedSection = dataclasses.field(default_factory=DistributedSection)
    probe: ProbeSection = dataclasses.field(default_factory=ProbeSection)
    wandb: WandbSection = dataclasses.field(default_factory=WandbSection)
    train: TrainSection = dataclasses.field(default_factory=TrainSection)
    data: DataSection = dataclasses.field(default_factory=DataSection)
    model: ModelSection = dataclasses.field(default_factory=ModelSection)
