"""The training fast path: one compilation per variant, data parallelism over devices, bf16 compute."""
import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import ROOT

from ablations.runner.training import (Members, TrainSettings, data_mesh, init_state, layer_groups, make_train_chunk,
                                       seed_slice)
from model import GPTConfig

SETTINGS = TrainSettings(steps=40, batch_size=8, seq_len=16, warmup=2, log_every=4, eval_every=4, ckpt_every=4)
TOKENS = jax.random.randint(jax.random.key(0), (4000,), 0, 20)


def losses(cfg: GPTConfig, chunks: int, mesh=None, seeds=(0, 1)):
    state = init_state(cfg, SETTINGS, list(seeds))
    chunk = make_train_chunk(cfg, SETTINGS, layer_groups(seed_slice(state["params"], 0)), 1, mesh)
    out = []
    for i in range(chunks):
        state, metrics = chunk(state, TOKENS, Members.of(SETTINGS, seeds).arrays(), i * SETTINGS.log_every)
        out.append(np.asarray(metrics["train_ce"]))
    return np.array(out), chunk


@pytest.mark.slow  # compiles and trains or audits models: tens of seconds
def test_training_compiles_once_per_variant():
    _, chunk = losses(GPTConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=1, max_len=16), chunks=3)
    assert chunk._cache_size() == 1


@pytest.mark.slow  # compiles and trains or audits models: tens of seconds
def test_a_single_seed_runs_unbatched_and_trains_like_that_seed_among_others():
    cfg = GPTConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=1, max_len=16)
    alone, _ = losses(cfg, chunks=3, seeds=(1,))
    together, _ = losses(cfg, chunks=3, seeds=(0, 1))
    assert alone.shape == (3, 1)
    np.testing.assert_allclose(alone[:, 0], together[:, 1], rtol=1e-5)


@pytest.mark.slow  # compiles and trains or audits models: tens of seconds
def test_bfloat16_compute_trains_like_float32():
    small = dict(vocab_size=20, d_model=16, n_heads=2, n_layers=1, max_len=16)
    full, _ = losses(GPTConfig(**small), chunks=3)
    half, _ = losses(GPTConfig(**small, dtype="bfloat16"), chunks=3)
    assert np.all(np.isfinite(half)) and not np.array_equal(full, half)
    np.testing.assert_allclose(half, full, atol=0.05)


SHARDED = """
import json, sys
sys.path.insert(0, "tests")
import jax
from test_fast_path import SETTINGS, losses
from ablations.runner.training import data_mesh
from model import GPTConfig
mesh = data_mesh(SETTINGS.batch_size)
values, _ = losses(GPTConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=1, max_len=16), 3, mesh)
print(json.dumps({"devices": jax.device_count(), "mesh": None if mesh is None else mesh.shape["data"],
                  "losses": values.tolist()}))
"""


def run_on_cpu_devices(count: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SHARDED], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_four_cpu_devices_give_the_losses_of_one():
    one, four = run_on_cpu_devices(1), run_on_cpu_devices(4)
    assert (one["devices"], one["mesh"], four["devices"], four["mesh"]) == (1, None, 4, 4)
    np.testing.assert_allclose(four["losses"], one["losses"], rtol=1e-5)


def test_batch_must_split_evenly_over_devices(monkeypatch):
    monkeypatch.setattr(jax, "devices", lambda: ["d0", "d1", "d2"])
    try:
        data_mesh(8)
    except ValueError as error:
        assert "train.batch_size=8" in str(error) and "3 devices" in str(error)
    else:
        raise AssertionError("a batch of 8 over 3 devices must be refused")


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow  # compiles and trains or audits models: tens of seconds
def test_memory_does_not_grow_with_steps():
    cfg = GPTConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=1, max_len=16)
    state = init_state(cfg, SETTINGS, [0, 1])
    chunk = make_train_chunk(cfg, SETTINGS, layer_groups(seed_slice(state["params"], 0)), 1)
    seeds = Members.of(SETTINGS, [0, 1]).arrays()
    for i in range(20):  # warm up: compilation and allocator pools
        state, metrics = chunk(state, TOKENS, seeds, i * SETTINGS.log_every)
    jax.device_get(metrics)
    after_few = resident_mb()
    for i in range(20, 520):  # 2,000 more steps
        state, metrics = chunk(state, TOKENS, seeds, i * SETTINGS.log_every)
        jax.device_get(metrics)
    assert resident_mb() - after_few < 20, (after_few, resident_mb())


@pytest.mark.slow
def test_benchmark_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "ablations.benchmark", "--configs", "nanogpt-cpu",
                             "--dispatches", "2", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    assert "measured f32 matmul peak" in result.stdout and "nanogpt-cpu" in result.stdout
    row, *reference = json.loads(out.read_text())["rows"]  # + the PyTorch eager baseline where torch is installed
    assert len(reference) == (importlib.util.find_spec("torch") is not None)
    assert all(r["config"] == "nanogpt-cpu: lab vs PyTorch eager, interleaved" and r["lab_speedup"] > 0
               for r in reference)
    assert row["params"] == 4 * 12 * 128 * 128 + 4 * 13 * 128 + 65 * 128 + 2 * 128  # the classic baby GPT
    assert row["tokens_per_s"] > 0 and 0 < row["mfu"] < 1 and row["compile_s"] > 0
    assert row["attention"] == "einsum" and "einsum" in result.stdout  # the kernel that ran, in the table too
