"""One paired experiment: the correct and the broken variant (and any other correct variant the catalogue
names) trained on the same seeds and batches, then measured by the mistake's symptom probes and judged by its
rules."""
from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import numpy as np

import data as data_lib
from ablations.runner import hosts, layout, memory
from ablations.runner.checkpoints import RunCheckpoints
from ablations.runner.config import train_settings, variant_config, variant_model
from ablations.runner.loop import VariantTrainer, train_pair
from ablations.runner.stopping import StopRequest
from ablations.runner.tracking import MetricsSink, NullSink, member_of, read_jsonl
from ablations.runner.training import Members, TrainSettings, seed_slice
from ablations.science import budgets, learning_rates, measures
from ablations.science import probes as probe_lib
from ablations.science.verdict import decide
from model import GPTConfig, Mistakes, generate, make_forward, n_params


@dataclasses.dataclass
class Corpus:
    """A tokenized text plus what probes need to read it honestly."""
    tokens: data_lib.TokenData
    bytes_per_token: float
    oov_alphabet: int
    synthetic: data_lib.SyntheticSpec | None
    tokenizer: object
    selection: np.ndarray | None = None  # the validation split's tail on which a grid chooses learning rates


def load_corpus(cfg: dict) -> Corpus:
    """Text from a variant's data config (`data` section plus the run's seed), tokenized."""
    spec = data_lib.SyntheticSpec(cfg["alphabet_size"], cfg["span"], cfg["zipf_exponent"])
    text = data_lib.load_text(cfg["source"], path=cfg["path"], tfds_name=cfg["tfds_name"], tfds_dir=cfg["tfds_dir"],
                              tfds_download=cfg["tfds_download"], synthetic=spec, n_blocks=cfg["n_blocks"],
                              seed=cfg["seed"])
    tokenizer = data_lib.make_tokenizer(cfg["tokenizer"], text, cfg["vocab_size"])
    ids = tokenizer.encode(text)
    synthetic = spec if cfg["source"] == "synthetic" and cfg["tokenizer"] == "char" else None
    align = data_lib.block_len(spec) if synthetic else 1
    train, val = data_lib.split_tokens(ids, cfg["val_fraction"], align)
    selection = None
    if cfg["selection_share"] > 0:  # claims are measured on the head of the validation split, choices made on its tail
        val, selection = data_lib.split_tokens(val, cfg["selection_share"], align)
    tokens = data_lib.TokenData(train, val, tokenizer.vocab_size, tokenizer.unk_id, align)
    return Corpus(tokens, len(text.encode()) / len(ids), data_lib.oov_alphabet_size(text, tokenizer), synthetic,
                  tokenizer, selection)


def variant_corpora(spec, cfg: dict) -> dict[str, Corpus]:
    """Each variant's corpus, from its data config and the run's seed; variants share one unless the catalogue
    changes their data (the broken variant of mistake 10 tokenizes with too few symbols: its `broken` settings)."""
    loaded, corpora = {}, {}
    for name in spec.variants:
        data = {**variant_config(spec, cfg, name)["data"], "seed": cfg["seed"]}
        key = json.dumps(data, sort_keys=True)
        if key not in loaded:
            loaded[key] = load_corpus(data)
        corpora[name] = loaded[key]
    return corpora


def check_data(spec, cfg: dict) -> None:
    """Build every corpus the run will read and its evaluation windows, before anything is written or compiled:
    a file too short, windows the data does not have or a missing TFDS copy fail here, in one line."""
    s = train_settings(cfg)
    corpora = variant_corpora(spec, cfg)
    for corpus in {id(c): c for c in corpora.values()}.values():
        splits = [("train", corpus.tokens.train), ("validation", corpus.tokens.val)]
        if corpus.selection is not None:
            splits.append(("selection", corpus.selection))
            try:
                data_lib.eval_windows(corpus.selection, s.eval_windows, s.seq_len, corpus.tokens.align)
            except ValueError as error:
                raise ValueError(f"train.eval_windows={s.eval_windows} at data.selection_share="
                                 f"{cfg['data']['selection_share']}: {error} of the selection split; lower "
                                 "train.eval_windows or give more text") from None
        for split, tokens in splits:
            if len(tokens) <= s.seq_len:
                raise ValueError(f"the {split} split has {len(tokens)} tokens, too few for one window of "
                                 f"train.seq_len={s.seq_len}; give more text or a shorter train.seq_len")
        try:
            probe_inputs(corpus, s, cfg["probe"])
        except ValueError as error:
            raise ValueError(f"train.eval_windows={s.eval_windows} (at train.seq_len={s.seq_len} and "
                             f"probe.length_factor={cfg['probe']['length_factor']}): {error} of the validation split; "
                             "lower train.eval_windows or give more text") from None
    memory.check_training(variant_models(spec, cfg, corpora, s), s.batch_size, s.seq_len, s.eval_windows,
                          len(Members.of(s, range(cfg["seeds"]))))


def probe_inputs(corpus: Corpus, s: TrainSettings, probe: dict) -> probe_lib.ProbeInputs:
    t = corpus.tokens
    inputs, targets = data_lib.eval_windows(t.val, s.eval_windows, s.seq_len, t.align)
    long_len = round(s.seq_len * probe["length_factor"])
    long_inputs, long_targets = data_lib.eval_windows(t.val, s.eval_windows, long_len, t.align)
    span = corpus.synthetic.span if corpus.synthetic else None
    return probe_lib.ProbeInputs(inputs, targets, long_inputs, long_targets, t.unk_id, corpus.bytes_per_token,
                                 corpus.oov_alphabet, span, probe["padding_share"])


def language_model(model_cfg: GPTConfig, params) -> probe_lib.LanguageModel:
    forward = make_forward(model_cfg)
    return probe_lib.LanguageModel(
        forward=lambda tokens, mask: forward(params, tokens, mask),
        generate=lambda prompts, mask, n_new, use_cache: generate(model_cfg, params, prompts, mask, n_new,
                                                                  use_cache=use_cache))


def entropy_floor(corpus: Corpus, inputs: probe_lib.ProbeInputs) -> float | None:
    """The exact floor of the evaluation windows, where the source makes it known (synthetic, no <unk>)."""
    if corpus.synthetic is None or corpus.tokens.unk_id in inputs.targets:
        return None
    return data_lib.window_floor(corpus.synthetic, [corpus.tokenizer.decode(row) for row in inputs.targets])


def measure(spec, model_cfg: GPTConfig, params, rows: list[dict], steps: int,
            inputs: probe_lib.ProbeInputs, floor: float | None) -> dict:
    """The standard measurements of one trained seed (rows: its log), plus the catalogue's probes for this mistake."""
    out = {**measures.standard(rows, steps, floor), "n_params": n_params(params)}
    lm = language_model(model_cfg, params)
    for name in spec.probes:
        out.update(probe_lib.PROBES[name](lm, inputs))
    return out


@dataclasses.dataclass
class Variant:
    """One side of a pair, ready to train: its model, its corpus, where its results go."""
    name: str
    model_cfg: GPTConfig
    corpus: Corpus
    directory: Path
    sink: MetricsSink | NullSink


def variant_models(spec, cfg: dict, corpora: dict[str, Corpus], s: TrainSettings) -> dict[str, GPTConfig]:
    """Each variant's model: the broken one with its mistake switched on, each sized to its corpus's vocabulary."""
    return {name: GPTConfig(vocab_size=corpus.tokens.vocab_size, max_len=s.seq_len,
                            mistakes=Mistakes.of(spec.name) if name == "broken" else Mistakes(),
                            **variant_model(spec, cfg, name)) for name, corpus in corpora.items()}


def prepare_variants(spec, cfg: dict, run_dir: Path, s: TrainSettings, seeds: list[int],
                     sink_factory) -> list[Variant]:
    """The correct variant, the catalogue's other correct variants (fixes), and the broken one, each with its model
    (a study may give the broken variant its own, e.g. a wider d_model at an equal parameter count)."""
    variants = []
    corpora = variant_corpora(spec, cfg)
    for (name, corpus), model_cfg in zip(corpora.items(), variant_models(spec, cfg, corpora, s).values()):
        if hosts.writes():
            (run_dir / name).mkdir(parents=True, exist_ok=True)
        members = Members.of(variant_train_settings(spec, cfg, name), seeds).keys  # W&B: a run per seed (and rate)
        variants.append(Variant(name, model_cfg, corpus, run_dir / name, sink_factory(run_dir / name, members, name)))
    return variants


def run_pair(spec, cfg: dict, run_dir: Path, sink_factory) -> dict | None:
    """Train the variants (chunk by chunk, at once), measure them, write measurements.json and verdict.json;
    return the verdict (None on a process of a multi-host run other than 0: it trains, process 0 measures)."""
    s = train_settings(cfg)
    seeds = list(range(cfg["seed"], cfg["seed"] + cfg["seeds"]))
    variants = prepare_variants(spec, cfg, run_dir, s, seeds, sink_factory)
    trainers = [VariantTrainer(v.name, v.model_cfg, v.corpus.tokens, v.sink, variant_train_settings(spec, cfg, v.name),
                               seeds, f"{spec.name}:{v.name}", position, v.corpus.selection)
                for position, v in enumerate(variants)]
    checkpoints = RunCheckpoints(layout.checkpoint_dir(run_dir), s.ckpt_every)
    try:
        with StopRequest() as stop:
            states = train_pair(trainers, s, checkpoints, stop)
    except BaseException:
        with contextlib.suppress(OSError):  # the error under way is the one to report, not a failed last write
            checkpoints.close()
        raise
    checkpoints.close()
    if not hosts.writes():
        return None
    lr_choice = choose_learning_rates(variants, s, seeds) if s.lr_grid else None
    if lr_choice is not None:
        layout.write(run_dir, layout.LEARNING_RATES, lr_choice)
    chosen = lambda name: lr_choice["variants"][name]["chosen"] if lr_choice else None  # noqa: E731
    measured = {v.name: measure_variant(spec, v, hosts.local_copy(states[v.name]), s, cfg["probe"], seeds,
                                        chosen(v.name)) for v in variants}
    layout.write(run_dir, layout.MEASUREMENTS, measured)
    verdict = {**decide(spec, measured, variants[0].model_cfg),
               "protocol": {"name": cfg["protocol"], "hash": cfg["protocol_hash"]}}
    if lr_choice is not None:
        verdict["learning_rates"] = learning_rates.summary(lr_choice)
    if cfg["follows"]:  # a longer budget: every claim read beside its outcome on the grid this run retrains
        grid_run = run_dir.parent / cfg["follows"]
        verdict["budgets"] = {**budgets.compare(layout.read(grid_run, layout.VERDICT), verdict,
                                                layout.read(grid_run, layout.CONFIG)["steps"], s.steps),
                              "grid_run": grid_run.name,
                              "learning_rates": {v.name: variant_train_settings(spec, cfg, v.name).lr
                                                 for v in variants}}
    layout.write(run_dir, layout.VERDICT, verdict)
    return verdict


def variant_train_settings(spec, cfg: dict, name: str) -> TrainSettings:
    """A variant's training settings: the run's, with any of the variant's own (a longer budget retrains each variant
    at the learning rate its grid chose); everything but the rate is the pair's."""
    own = train_settings({**cfg, "train": variant_config(spec, cfg, name)["train"]})
    shared = dataclasses.replace(own, lr=train_settings(cfg).lr)
    if shared != train_settings(cfg):
        raise ValueError(f"variant {name} of {spec.name} changes training settings other than train.lr")
    return own


def choose_learning_rates(variants: list[Variant], s: TrainSettings, seeds: list[int]) -> dict:
    """Each variant's learning rate, chosen on the selection split from its log (ablations.science.learning_rates)."""
    choices = {v.name: learning_rates.choose(read_jsonl(layout.metrics_file(v.directory)), s.lr_grid, seeds)
               for v in variants}
    return {"rule": learning_rates.RULE, "grid": list(s.lr_grid), "seeds": seeds, "variants": choices}


def measure_variant(spec, v: Variant, state: dict, s: TrainSettings, probe: dict, seeds: list[int],
                    peak_lr: float | None = None) -> list[dict]:
    """Every seed's measurements, from its log and its trained parameters (on a grid: at the learning rate chosen
    for the variant, `peak_lr`); summarised to W&B."""
    rows = read_jsonl(layout.metrics_file(v.directory))
    inputs = probe_inputs(v.corpus, s, probe)
    floor = entropy_floor(v.corpus, inputs)
    members = Members.of(s, seeds)
    wanted = [(seed, peak_lr) if members.grid else seed for seed in seeds]
    measured = []
    for member in wanted:
        index = members.keys.index(member)
        values = measure(spec, v.model_cfg, seed_slice(state["params"], index),
                         [r for r in rows if member_of(r) == member], s.steps, inputs, floor)
        measured.append({**values, "peak_lr": peak_lr} if members.grid else values)
    for member, values in zip(wanted, measured):
        v.sink.summarize(member, {k: val for k, val in values.items() if isinstance(val, (int, float))})
    v.sink.close()
    return measured
