"""Training of one variant, all seeds at once: `vmap` over seeds inside one compiled chunk of
`lax.scan`-ned steps, batches drawn on device from (seed, step), divergence caught in the step."""
from __future__ import annotations

import dataclasses
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ablations.runner import memory
from data import batch_key, sample_batch
from model import GPT, GPTConfig, next_token_loss


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    steps: int = 1500
    batch_size: int = 16
    seq_len: int = 32
    lr: float = 1e-2
    warmup: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    log_every: int = 20  # steps per compiled chunk; metrics are fetched once a chunk
    eval_every: int = 100
    eval_windows: int = 256
    ckpt_every: int = 200
    lr_grid: tuple[float, ...] = ()  # peak learning rates every seed trains at, in one program; empty: lr alone

    def __post_init__(self):
        object.__setattr__(self, "lr_grid", tuple(float(lr) for lr in self.lr_grid))  # a config gives a list
        if any(not (math.isfinite(lr) and lr > 0) for lr in self.lr_grid) or len(set(self.lr_grid)) < len(
                self.lr_grid):
            raise ValueError(f"train.lr_grid={list(self.lr_grid)} must hold distinct finite numbers > 0")
        for name in ("steps", "batch_size", "seq_len", "log_every", "eval_every", "eval_windows", "ckpt_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name}={getattr(self, name)} must be a positive integer")
        for name in ("eval_every", "ckpt_every", "steps"):
            if getattr(self, name) % self.log_every:
                raise ValueError(f"train.{name}={getattr(self, name)} must be a multiple of "
                                 f"train.log_every={self.log_every}")
        if self.warmup >= self.steps:
            raise ValueError(f"train.warmup={self.warmup} must be smaller than steps={self.steps}")
        for name, lowest in (("lr", 0.0), ("grad_clip", 0.0), ("weight_decay", None), ("warmup", None)):
            value = getattr(self, name)  # `not value > lowest` also refuses NaN, which compares false
            if not math.isfinite(value) or (not value > lowest if lowest is not None else value < 0):
                raise ValueError(f"train.{name}={value} must be a finite number "
                                 f"{'> 0' if lowest is not None else '>= 0'}")


def schedule(s: TrainSettings, peak: float | None = None):
    peak = s.lr if peak is None else peak
    return optax.warmup_cosine_decay_schedule(0.0, peak, s.warmup, s.steps, end_value=peak * 0.1)


def optimizer(s: TrainSettings) -> optax.GradientTransformation:
    """Clipped AdamW on the warmup-cosine schedule. On a learning-rate grid the rate is data, not a constant of
    the program (optax.inject_hyperparams): every member of the grid trains in one compiled program, and
    `set_learning_rate` gives each its own rate at each step."""
    matrices = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)  # no decay on norms and biases
    clipped_adamw = lambda learning_rate: optax.chain(
        optax.clip_by_global_norm(s.grad_clip), optax.adamw(learning_rate, weight_decay=s.weight_decay, mask=matrices))
    return optax.inject_hyperparams(clipped_adamw)(learning_rate=0.0) if s.lr_grid else clipped_adamw(schedule(s))


def set_learning_rate(opt_state, learning_rate):
    """The state of `optimizer` on a grid, its learning rate for the next update set."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": learning_rate})


@dataclasses.dataclass(frozen=True)
class Members:
    """What one compiled program trains: every seed at every learning rate of the grid (the lr-major product),
    or every seed at train.lr alone. Members of one seed share its initialisation and its batches."""
    seeds: tuple[int, ...]
    peak_lrs: tuple[float, ...]  # per member; equal to train.lr everywhere without a grid
    grid: bool

    @classmethod
    def of(cls, s: TrainSettings, seeds) -> Members:
        lrs = s.lr_grid or (s.lr,)
        return cls(tuple(seed for _ in lrs for seed in seeds), tuple(lr for lr in lrs for _ in seeds), bool(s.lr_grid))

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def keys(self) -> list:
        """Each member as its log rows name it (tracking.member_of): its seed, and its rate on a grid."""
        return list(zip(self.seeds, self.peak_lrs)) if self.grid else list(self.seeds)

    def arrays(self) -> dict:
        """The training chunk's `members` argument."""
        return {"seed": jnp.asarray(self.seeds), "peak_lr": jnp.asarray(self.peak_lrs, jnp.float32)}


def layer_groups(params) -> list[str]:
    """Top-level parameter groups in depth order: embed, pos_table, block_0..N-1, norm_final, head."""
    order = lambda name: (0 if name in ("embed", "pos_table") else 2 if name in ("norm_final", "head") else 1,
                          int(re.sub(r"\D", "", name) or 0), name)
    return sorted(params["params"], key=order)


def group_norms(tree, groups) -> jax.Array:
    return jnp.stack([optax.tree.norm(tree["params"][g]) for g in groups])  # [G]


def init_state(cfg: GPTConfig, s: TrainSettings, seeds) -> dict:
    """Per-seed parameters and optimizer state, stacked on a leading seed axis (one entry per member of a grid)."""
    dummy = jnp.zeros((1, s.seq_len), jnp.int32)
    params = jax.vmap(lambda seed: GPT(cfg).init(jax.random.key(seed), dummy))(jnp.asarray(seeds))
    return {"params": params, "opt_state": jax.vmap(optimizer(s).init)(params),
            "diverged_at": -jnp.ones(len(seeds), jnp.int32)}


def data_mesh(batch_size: int) -> Mesh | None:
    """Data parallelism over every local device (None on one device): XLA's SPMD partitioner splits
    each batch along "data"; parameters and optimizer state are replicated."""
    devices = jax.devices()
    if len(devices) == 1:
        return None
    if batch_size % len(devices):
        raise ValueError(f"train.batch_size={batch_size} must be a multiple of the {len(devices)} devices")
    return Mesh(np.array(devices), ("data",))


def replicate(tree, mesh: Mesh | None):
    return tree if mesh is None else jax.device_put(tree, NamedSharding(mesh, P()))


def make_train_chunk(cfg: GPTConfig, s: TrainSettings, groups: list[str], align: int, mesh: Mesh | None = None):
    """jit((state, tokens, members, start_step) -> (state, metrics of the chunk's last step [S, ...])): members
    {"seed", "peak_lr": [S]} (`Members.arrays`), S seeds, or seeds x learning rates on a grid. The objective is
    the model's: mistake 9 (cfg.mistakes.argmax_gradient) trains through argmax."""
    model, opt = GPT(cfg), optimizer(s)
    relative = schedule(s, 1.0)  # on a grid: each member's rate is its peak times this
    split = (lambda x: x) if mesh is None else (
        lambda x: jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P("data"))))  # bt: b over devices

    def one_seed_step(params, opt_state, diverged_at, tokens, seed, peak_lr, step):
        # named scopes label the compiled program's ops for `python -m ablations.benchmark --profile`
        with jax.named_scope("batch"):
            inputs, targets = sample_batch(tokens, batch_key(seed, step), s.batch_size, s.seq_len, align)
            inputs, targets = split(inputs), split(targets)
        loss_fn = lambda p: next_token_loss(model.apply(p, inputs), targets,
                                            argmax_gradient=cfg.mistakes.argmax_gradient)
        with jax.named_scope("loss"):
            (objective, cross_entropy), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        with jax.named_scope("optimizer"):
            lr = peak_lr * relative(step) if s.lr_grid else schedule(s)(step)
            if s.lr_grid:
                opt_state = set_learning_rate(opt_state, lr)
            updates, new_opt_state = opt.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
        with jax.named_scope("metrics"):
            grad_norm, param_norm = optax.tree.norm(grads), optax.tree.norm(new_params)
            finite = jnp.isfinite(objective) & jnp.isfinite(grad_norm) & jnp.isfinite(param_norm)
            keep_going = finite & (diverged_at < 0)  # a diverged seed freezes at its last finite state
            choose = lambda new, old: jax.tree.map(lambda a, b: jnp.where(keep_going, a, b), new, old)
            params = choose(new_params, params)
            metrics = {"loss": objective, "train_ce": cross_entropy, "grad_norm": grad_norm, "lr": lr,
                       "param_norm": param_norm, "layer_grad_norms": group_norms(grads, groups)}
            diverged_at = jnp.where(~finite & (diverged_at < 0), step, diverged_at)
            return params, choose(new_opt_state, opt_state), diverged_at, metrics

    all_seeds_step = over_seeds(one_seed_step)

    def chunk(state, tokens, members, start_step):
        seeds, peak_lrs = members["seed"], members["peak_lr"]

        def body(carry, step):
            params, opt_state, diverged_at = carry
            params, opt_state, diverged_at, metrics = all_seeds_step(params, opt_state, diverged_at, tokens,
                                                                     seeds, peak_lrs, step)
            return (params, opt_state, diverged_at), metrics

        carry = (state["params"], state["opt_state"], state["diverged_at"])
        (params, opt_state, diverged_at), metrics = jax.lax.scan(body, carry, start_step + jnp.arange(s.log_every))
        last = jax.tree.map(lambda m: m[-1], metrics)
        return {"params": params, "opt_state": opt_state, "diverged_at": diverged_at}, last

    return jax.jit(chunk, donate_argnums=(0,))


def over_seeds(one_seed_step):
    """vmap over the leading member axis of (params, opt_state, diverged_at, tokens, seeds, peak_lrs, step). A
    single member runs unbatched: on the CPU backend a vmap of one costs ~12% per step."""
    batched = jax.vmap(one_seed_step, in_axes=(0, 0, 0, None, 0, 0, None))

    def all_seeds_step(params, opt_state, diverged_at, tokens, seeds, peak_lrs, step):
        if seeds.shape[0] > 1:
            return batched(params, opt_state, diverged_at, tokens, seeds, peak_lrs, step)
        first, add_axis = (lambda tree: seed_slice(tree, 0)), (lambda tree: jax.tree.map(lambda a: a[None], tree))
        return add_axis(one_seed_step(*first((params, opt_state, diverged_at)), tokens, seeds[0], peak_lrs[0],
                                      step))

    return all_seeds_step


def make_eval(cfg: GPTConfig, members: int, windows: int, seq_len: int):
    """jit((params [S,...], inputs [N,T], targets [N,T]) -> validation cross-entropy [S]): the S members at once,
    or, where their activations would not fit memory.EVAL_GROUP_BYTES, in equal groups one after another."""
    model = GPT(cfg)
    one = lambda params, inputs, targets: next_token_loss(model.apply(params, inputs), targets)[1]
    group = memory.eval_group(cfg, windows, seq_len, members)
    if group >= members:
        return jax.jit(jax.vmap(one, in_axes=(0, None, None)))
    return jax.jit(lambda params, inputs, targets: jax.lax.map(lambda p: one(p, inputs, targets), params,
                                                               batch_size=group))


def seed_slice(tree, index: int):
    return jax.tree.map(lambda leaf: leaf[index], tree)

