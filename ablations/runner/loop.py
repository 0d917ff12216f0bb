"""The pair's training loop: every variant of a pair (all its seeds at once) trained chunk by chunk, the
variants' chunks at once, one thread each; rows logged, then the run's checkpoint saved; a signal
checkpoints and stops. Resumes from the run's newest checkpoint."""
from __future__ import annotations

import concurrent.futures
import time

import jax
import numpy as np
from tqdm import tqdm

import data as data_lib
from ablations.runner import hosts
from ablations.runner.checkpoints import RunCheckpoints
from ablations.runner.stopping import StopRequest, Stopped
from ablations.runner.training import (Members, TrainSettings, data_mesh, init_state, layer_groups, make_eval,
                                       make_train_chunk, replicate, seed_slice)
from model import GPTConfig


class VariantTrainer:
    """One variant's compiled training chunk, evaluation, data and progress bar; every seed (at every learning rate
    of a grid) trains together. With a selection split, each evaluation also scores it: the split on which a grid
    chooses the variant's learning rate, apart from the one its claims are measured on."""

    def __init__(self, name: str, model_cfg: GPTConfig, tokens: data_lib.TokenData, sink, s: TrainSettings,
                 seeds: list[int], bar_label: str, bar_position: int, selection: np.ndarray | None = None):
        self.name, self.sink, self.s, self.seeds = name, sink, s, seeds
        self.members = Members.of(s, seeds)
        self.initial = init_state(model_cfg, s, list(self.members.seeds))
        self.groups = layer_groups(seed_slice(self.initial["params"], 0))
        self.mesh = data_mesh(s.batch_size)
        self.chunk = make_train_chunk(model_cfg, s, self.groups, tokens.align, self.mesh)
        self.evaluate = make_eval(model_cfg, len(self.members), s.eval_windows, s.seq_len)
        self.val_inputs, self.val_targets = data_lib.eval_windows(tokens.val, s.eval_windows, s.seq_len, tokens.align)
        self.selection_windows = None if selection is None else data_lib.eval_windows(
            selection, s.eval_windows, s.seq_len, tokens.align)
        self.train_tokens = replicate(jax.numpy.asarray(tokens.train), self.mesh)
        self.member_arrays = replicate(self.members.arrays(), self.mesh)
        quiet = {} if hosts.writes() else {"disable": True}  # else tqdm's defaults (and TQDM_* settings) hold
        self.bar = tqdm(total=s.steps, desc=bar_label, unit="step", dynamic_ncols=True, position=bar_position, **quiet)

    def start(self, step: int) -> None:
        """Resume the log and the progress bar at `step`."""
        self.sink.truncate_after(step)
        self.bar.update(step - self.bar.n)

    def train_chunk(self, state: dict, chunk_start: int) -> tuple[dict, list[dict]]:
        """One chunk of `log_every` steps of every seed, and its log rows (one host sync)."""
        tic = time.perf_counter()
        state, metrics = self.chunk(state, self.train_tokens, self.member_arrays, chunk_start)
        metrics = jax.device_get(metrics)
        tokens_per_s = self.s.log_every * self.s.batch_size * self.s.seq_len * len(self.members) / (
            time.perf_counter() - tic)
        step = chunk_start + self.s.log_every
        evaluated = step % self.s.eval_every == 0 or step == self.s.steps  # the final loss is the last step's
        val = self.evaluate(state["params"], self.val_inputs, self.val_targets) if evaluated else None
        selection_losses = (self.evaluate(state["params"], *self.selection_windows)
                            if evaluated and self.selection_windows is not None else None)
        rows = [metric_row(metrics, self.groups, i, seed, step, tokens_per_s, val, state)
                for i, seed in enumerate(self.members.seeds)]
        for i, row in enumerate(rows):
            if self.members.grid:
                row["peak_lr"] = self.members.peak_lrs[i]
            if selection_losses is not None:
                row["selection_loss"] = float(selection_losses[i])
        return state, rows

    def log(self, rows: list[dict]) -> None:
        self.sink.log(rows)
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
    names = [t.name for t in trainers]
    # placed as training needs them (replicated over every process's devices), so that a checkpoint restores
    # straight into that placement: no process holds an array another process would have to send it
    states, start = checkpoints.restore({t.name: replicate(t.initial, t.mesh) for t in trainers})
    for t in trainers:
        t.initial = None  # restored or not, the trainer's copy of the initial state is not needed again
        t.start(start)
    if start and hosts.writes():
        print(f"resuming from step {start} of {s.steps} (its checkpoint in {checkpoints.directory})")
    step, stopping = start, False
    try:
        with concurrent.futures.ThreadPoolExecutor(hosts.concurrent_programs(len(trainers))) as pool:
            for chunk_start in range(start, s.steps, s.log_every):
                done = list(pool.map(lambda t: t.train_chunk(states[t.name], chunk_start), trainers))
                step = chunk_start + s.log_every
                for name, t, (states[name], rows) in zip(names, trainers, done):
                    t.log(rows)
                stopping = hosts.any_process(bool(stop.signal))  # read once: the save and the stop agree
                checkpoints.save(step, states, force=step == s.steps or stopping)
                if stopping:
                    break
    finally:
        for t in trainers:
            t.bar.close()
    if stopping:  # also at the last step: the training is saved, measuring waits for the rerun
        raise Stopped(f"stopped at step {step} of {s.steps} by {stop.signal or 'a signal to another process'}; "
                      "checkpoint saved")
    return states


def metric_row(metrics, groups, i, seed, step, tokens_per_s, val, state) -> dict:
    row = {"step": step, "seed": seed, **{k: float(metrics[k][i]) for k in
                                          ("loss", "train_ce", "grad_norm", "lr", "param_norm")},
           **{f"grad_norm/{g}": float(metrics["layer_grad_norms"][i][j]) for j, g in enumerate(groups)},
           "tokens_per_s": tokens_per_s, "diverged_at": int(state["diverged_at"][i])}
    if val is not None:
        row["val_loss"] = float(val[i])
    return row
