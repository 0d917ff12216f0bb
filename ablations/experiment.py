"""One paired experiment: the correct and the broken variant (and any other correct variant the registry
names) trained on the same seeds and batches, then measured by the registry's probes and judged by its rules."""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

import data as data_lib
from ablations import hosts, layout, measures
from ablations import probes as probe_lib
from ablations.checkpoints import RunCheckpoints
from ablations.stopping import StopRequest, Stopped
from ablations.config import train_settings, variant_config, variant_model
from ablations.registry import MistakeSpec
from ablations.tracking import MetricsSink, NullSink, read_jsonl
from ablations.verdict import decide
from ablations.train import (TrainSettings, data_mesh, init_state, layer_groups, make_eval, make_train_chunk,
                             n_params, replicate, seed_slice)
from model import GPTConfig, Mistakes, generate, make_forward


@dataclasses.dataclass
class Corpus:
    """A tokenized text plus what probes need to read it honestly."""
    tokens: data_lib.TokenData
    bytes_per_token: float
    oov_alphabet: int
    synthetic: data_lib.SyntheticSpec | None
    tokenizer: object


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
    tokens = data_lib.TokenData(train, val, tokenizer.vocab_size, tokenizer.unk_id, align)
    return Corpus(tokens, len(text.encode()) / len(ids), data_lib.oov_alphabet_size(text, tokenizer), synthetic,
                  tokenizer)


def variant_data(spec: MistakeSpec, cfg: dict) -> dict[str, dict]:
    """Each variant's data config and seed (the broken variant of mistake 10 tokenizes with too few symbols:
    the registry's `broken` settings)."""
    return {name: {**variant_config(cfg, name)["data"], "seed": cfg["seed"]} for name in spec.variants}


def check_data(spec: MistakeSpec, cfg: dict) -> None:
    """Build every corpus the run will read and its evaluation windows, before anything is written or compiled:
    a file too short, windows the data does not have or a missing TFDS copy fail here, in one line."""
    s = train_settings(cfg)
    for data in {json.dumps(d, sort_keys=True): d for d in variant_data(spec, cfg).values()}.values():
        corpus = load_corpus(data)
        for split, tokens in (("train", corpus.tokens.train), ("validation", corpus.tokens.val)):
            if len(tokens) <= s.seq_len:
                raise ValueError(f"the {split} split has {len(tokens)} tokens, too few for one window of "
                                 f"train.seq_len={s.seq_len}; give more text or a shorter train.seq_len")
        try:
            probe_inputs(corpus, s, cfg["probe"])
        except ValueError as error:
            raise ValueError(f"train.eval_windows={s.eval_windows} (at train.seq_len={s.seq_len} and "
                             f"probe.length_factor={cfg['probe']['length_factor']}): {error} of the validation split; "
                             "lower train.eval_windows or give more text") from None


def probe_inputs(corpus: Corpus, s: TrainSettings, probe: dict) -> probe_lib.ProbeInputs:
    t = corpus.tokens
    inputs, targets = data_lib.eval_windows(t.val, s.eval_windows, s.seq_len, t.align)
    long_len = round(s.seq_len * probe["length_factor"])
    long_inputs, long_targets = data_lib.eval_windows(t.val, s.eval_windows, long_len, t.align)
    span = corpus.synthetic.span if corpus.synthetic else None
    return probe_lib.ProbeInputs(inputs, targets, long_inputs, long_targets, t.unk_id, corpus.bytes_per_token,
                                 corpus.oov_alphabet, span, probe["padding_share"])


class VariantTrainer:
    """One variant's compiled training chunk, evaluation, data and progress bar; every seed trains together."""

    def __init__(self, variant: "Variant", s: TrainSettings, seeds: list[int], bar_label: str, bar_position: int):
        self.variant, self.s, self.seeds = variant, s, seeds
        tokens = variant.corpus.tokens
        self.initial = init_state(variant.model_cfg, s, seeds)
        self.groups = layer_groups(seed_slice(self.initial["params"], 0))
        self.mesh = data_mesh(s.batch_size)
        self.chunk = make_train_chunk(variant.model_cfg, s, self.groups, tokens.align, self.mesh)
        self.evaluate = make_eval(variant.model_cfg)
        self.val_inputs, self.val_targets = data_lib.eval_windows(tokens.val, s.eval_windows, s.seq_len, tokens.align)
        self.train_tokens = replicate(jax.numpy.asarray(tokens.train), self.mesh)
        self.seed_array = replicate(jax.numpy.asarray(seeds), self.mesh)
        quiet = {} if hosts.writes() else {"disable": True}  # else tqdm's defaults (and TQDM_* settings) hold
        self.bar = tqdm(total=s.steps, desc=bar_label, unit="step", dynamic_ncols=True, position=bar_position, **quiet)

    def start(self, state: dict, step: int) -> dict:
        self.variant.sink.truncate_after(step)
        self.bar.update(step - self.bar.n)
        return replicate(state, self.mesh)

    def train_chunk(self, state: dict, chunk_start: int) -> tuple[dict, list[dict]]:
        """One chunk of `log_every` steps of every seed, and its log rows (one host sync)."""
        tic = time.perf_counter()
        state, metrics = self.chunk(state, self.train_tokens, self.seed_array, chunk_start)
        metrics = jax.device_get(metrics)
        tokens_per_s = self.s.log_every * self.s.batch_size * self.s.seq_len * len(self.seeds) / (
            time.perf_counter() - tic)
        step = chunk_start + self.s.log_every
        val = self.evaluate(state["params"], self.val_inputs, self.val_targets) if step % self.s.eval_every == 0 \
            else None
        return state, [metric_row(metrics, self.groups, i, seed, step, tokens_per_s, val, state)
                       for i, seed in enumerate(self.seeds)]

    def log(self, rows: list[dict]) -> None:
        self.variant.sink.log(rows)
        self.bar.update(self.s.log_every)
        self.bar.set_postfix(loss=f"{np.mean([r['loss'] for r in rows]):.3f}",
                             tok_s=f"{rows[0]['tokens_per_s']:,.0f}")


def train_pair(trainers: list[VariantTrainer], s: TrainSettings, checkpoints: RunCheckpoints,
               stop: StopRequest) -> dict[str, dict]:
    """Train the variants chunk by chunk, resuming from the run's newest checkpoint. Each chunk runs the
    variants at once, one thread each (the suite's small models keep about one core busy per op; JAX's
    asynchronous dispatch from one thread does not overlap them on CPU); rows are logged, then the run's
    checkpoint is saved (a checkpoint at step N implies the rows of step N are on disk). A signal checkpoints
    every variant at the end of the chunk and stops."""
    names = [t.variant.name for t in trainers]
    states, start = checkpoints.restore({t.variant.name: t.initial for t in trainers})
    states = {t.variant.name: t.start(states[t.variant.name], start) for t in trainers}
    step = start
    with concurrent.futures.ThreadPoolExecutor(hosts.concurrent_programs(len(trainers))) as pool:
        for chunk_start in range(start, s.steps, s.log_every):
            done = list(pool.map(lambda t: t.train_chunk(states[t.variant.name], chunk_start), trainers))
            step = chunk_start + s.log_every
            for name, t, (states[name], rows) in zip(names, trainers, done):
                t.log(rows)
            checkpoints.save(step, states, force=step == s.steps or bool(stop.signal))
            if stop.signal:
                break
    for t in trainers:
        t.bar.close()
    if stop.signal and step < s.steps:
        raise Stopped(f"stopped at step {step} by {stop.signal}; checkpoint saved")
    return states


def metric_row(metrics, groups, i, seed, step, tokens_per_s, val, state) -> dict:
    row = {"step": step, "seed": seed, **{k: float(metrics[k][i]) for k in
                                          ("loss", "train_ce", "grad_norm", "lr", "param_norm")},
           **{f"grad_norm/{g}": float(metrics["layer_grad_norms"][i][j]) for j, g in enumerate(groups)},
           "tokens_per_s": tokens_per_s, "diverged_at": int(state["diverged_at"][i])}
    if val is not None:
        row["val_loss"] = float(val[i])
    return row


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


def measure(spec: MistakeSpec, model_cfg: GPTConfig, params, rows: list[dict], steps: int,
            inputs: probe_lib.ProbeInputs, floor: float | None) -> dict:
    """The standard measurements of one trained seed (rows: its log), plus the registry's probes for this mistake."""
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


def prepare_variants(spec: MistakeSpec, cfg: dict, run_dir: Path, s: TrainSettings, seeds: list[int],
                     sink_factory) -> list[Variant]:
    """The correct variant, the registry's other correct variants (fixes), and the broken one, each with its model
    (a study may give the broken variant its own, e.g. a wider d_model at an equal parameter count)."""
    corpora, variants = {}, []
    for name, data in variant_data(spec, cfg).items():
        key = json.dumps(data, sort_keys=True)
        if key not in corpora:  # variants share a corpus unless the registry changes their data
            corpora[key] = load_corpus(data)
        corpus = corpora[key]
        mistakes = Mistakes.of(spec.name) if name == "broken" else Mistakes()
        model_cfg = GPTConfig(vocab_size=corpus.tokens.vocab_size, max_len=s.seq_len, mistakes=mistakes,
                              **variant_model(cfg, name))
        if hosts.writes():
            (run_dir / name).mkdir(parents=True, exist_ok=True)
        variants.append(Variant(name, model_cfg, corpus, run_dir / name, sink_factory(run_dir / name, seeds, name)))
    return variants


def run_pair(spec: MistakeSpec, cfg: dict, run_dir: Path, sink_factory) -> dict | None:
    """Train the variants (chunk by chunk, at once), measure them, write measurements.json and verdict.json;
    return the verdict (None on a process of a multi-host run other than 0: it trains, process 0 measures)."""
    s = train_settings(cfg)
    seeds = list(range(cfg["seed"], cfg["seed"] + cfg["seeds"]))
    variants = prepare_variants(spec, cfg, run_dir, s, seeds, sink_factory)
    trainers = [VariantTrainer(v, s, seeds, f"{spec.name}:{v.name}", position) for position, v in enumerate(variants)]
    checkpoints = RunCheckpoints(layout.checkpoint_dir(run_dir), s.ckpt_every)
    try:
        with StopRequest() as stop:
            states = train_pair(trainers, s, checkpoints, stop)
    finally:
        checkpoints.close()
    if not hosts.writes():
        return None
    measured = {v.name: measure_variant(spec, v, hosts.local_copy(states[v.name]), s, cfg["probe"], seeds)
                for v in variants}
    layout.write(run_dir, layout.MEASUREMENTS, measured)
    verdict = decide(spec, measured, variants[0].model_cfg)
    layout.write(run_dir, layout.VERDICT, verdict)
    return verdict


def measure_variant(spec: MistakeSpec, v: Variant, state: dict, s: TrainSettings, probe: dict,
                    seeds: list[int]) -> list[dict]:
    """Every seed's measurements, from its log and its trained parameters; summarised to W&B."""
    rows = read_jsonl(layout.metrics_file(v.directory))
    inputs = probe_inputs(v.corpus, s, probe)
    floor = entropy_floor(v.corpus, inputs)
    measured = [measure(spec, v.model_cfg, seed_slice(state["params"], i), [r for r in rows if r["seed"] == seed],
                        s.steps, inputs, floor) for i, seed in enumerate(seeds)]
    for seed, values in zip(seeds, measured):
        v.sink.summarize(seed, {k: val for k, val in values.items() if isinstance(val, (int, float))})
    v.sink.close()
    return measured
