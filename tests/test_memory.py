"""ablations/runner/memory.py: parameters counted exactly, activations a lower bound of XLA's own account, and a
program that cannot fit refused in one line naming its sizes."""
import dataclasses

import pytest

from ablations.errors import UsageError
from ablations.runner import memory
from model import GPTConfig, Mistakes

SMALL = GPTConfig(vocab_size=65, d_model=32, n_heads=2, n_layers=3, max_len=16)


@pytest.mark.parametrize("cfg", [SMALL, dataclasses.replace(SMALL, position="learned", n_layers=5),
                                 dataclasses.replace(SMALL, mistakes=Mistakes.of("untied_embeddings")),
                                 dataclasses.replace(SMALL, mistakes=Mistakes.of("narrow_ffn"), n_layers=1)])
def test_parameters_of_any_depth_are_counted_exactly_from_one_and_two_blocks(cfg):
    assert memory.parameter_bytes(cfg) == memory.traced_parameter_bytes(cfg)


def test_the_suite_default_fits():
    memory.check_training({"correct": SMALL, "broken": SMALL}, batch_size=16, seq_len=32, eval_windows=256, seeds=3)


GIANTS = {  # the five sizes a user can make too large, each alone
    "d_model": ({"d_model": 10**8}, {}, "model.d_model=100000000"),
    "n_layers": ({"n_layers": 10**6}, {}, "model.n_layers=1000000"),
    "vocab_size": ({"vocab_size": 10**9}, {}, "vocabulary 1,000,000,000"),
    "seeds": ({}, {"seeds": 10**6}, "seeds=1000000"),
    "batch_size": ({}, {"batch_size": 10**8}, "train.batch_size=100000000"),
}


@pytest.mark.parametrize("name", GIANTS)
def test_a_program_larger_than_the_machine_is_refused_naming_its_sizes(name, monkeypatch):
    model, run, named = GIANTS[name]
    monkeypatch.setattr(memory, "machine_memory", lambda: 16 * 2**30)
    sizes = {"batch_size": 16, "seq_len": 32, "eval_windows": 256, "seeds": 3, **run}
    with pytest.raises(UsageError, match=r"needs at least [\d,.]+ GiB \(.*parameters and AdamW state .* activations "
                                         r".*\); this machine has 16.0 GiB") as refused:
        memory.check_training({"correct": dataclasses.replace(SMALL, **model)}, **sizes)
    assert named in str(refused.value)


def test_an_audit_larger_than_the_machine_is_refused(monkeypatch):
    monkeypatch.setattr(memory, "machine_memory", lambda: 2**30)
    with pytest.raises(UsageError, match=r"the audit at d_model=100000, .* needs at least .* this machine has 1.0 GiB"):
        memory.check_audit(dataclasses.replace(SMALL, d_model=100_000), batch=4, seq_len=16)


@pytest.mark.slow
def test_the_estimate_is_a_lower_bound_of_the_compiled_programs_memory():
    """Measured once for five configs (nanogpt-cpu, d 64-256, 2-8 layers, T 32-256): XLA's buffer assignment
    needs 1.35-1.68x the estimate. Here two small ones."""
    from ablations.perf import benchmark
    from ablations.runner.training import TrainSettings

    for cfg, settings, seeds in [(SMALL, TrainSettings(steps=40, batch_size=8, seq_len=16, log_every=20), 2),
                                 (dataclasses.replace(SMALL, d_model=64, n_heads=4, max_len=64),
                                  TrainSettings(steps=40, batch_size=4, seq_len=64, log_every=20), 1)]:
        bench = benchmark.Bench("test", cfg, settings, seeds=seeds)
        compiled = benchmark.compile_bench(bench)
        xla = benchmark.program_memory_mb(compiled.program) * 2**20
        estimate = seeds * (memory.STATE_COPIES * memory.parameter_bytes(cfg)
                            + memory.activation_bytes(cfg, settings.batch_size, settings.seq_len, every_layer=True))
        assert estimate <= xla, (estimate, xla)


def test_an_evaluation_of_many_members_runs_in_equal_groups_each_within_the_budget():
    copy_task = dataclasses.replace(SMALL, d_model=64, n_heads=4, n_layers=2, max_len=32)
    per_member = memory.activation_bytes(copy_task, 256, 32, every_layer=False)
    assert memory.eval_group(copy_task, 256, 32, members=3) == 3  # a suite's seeds: all at once, as before
    group = memory.eval_group(copy_task, 256, 32, members=96)  # 16 seeds x 6 learning rates
    assert group < 96 and group * per_member <= memory.EVAL_GROUP_BYTES
    assert memory.eval_group(copy_task, 256, 32, members=97) * per_member <= memory.EVAL_GROUP_BYTES
    assert memory.eval_group(dataclasses.replace(copy_task, d_model=2**14), 256, 32, members=5) == 1


def test_an_evaluation_in_groups_gives_each_member_the_loss_it_gets_all_at_once(monkeypatch):
    import jax
    import numpy as np

    from ablations.runner.training import TrainSettings, init_state, make_eval
    members, windows = 5, 8
    settings = TrainSettings(steps=20, batch_size=2, seq_len=16, warmup=1)
    params = init_state(SMALL, settings, list(range(members)))["params"]
    inputs = jax.random.randint(jax.random.key(0), (windows, 16), 0, SMALL.vocab_size)
    targets = jax.random.randint(jax.random.key(1), (windows, 16), 0, SMALL.vocab_size)
    together = make_eval(SMALL, members, windows, 16)(params, inputs, targets)
    per_member = memory.activation_bytes(SMALL, windows, 16, every_layer=False)
    monkeypatch.setattr(memory, "EVAL_GROUP_BYTES", 2 * per_member)  # groups of 2, 2 and a remainder of 1
    assert memory.eval_group(SMALL, windows, 16, members) == 2
    grouped = make_eval(SMALL, members, windows, 16)(params, inputs, targets)
    assert grouped.shape == (members,) and len(set(np.asarray(together).tolist())) == members
    np.testing.assert_allclose(grouped, together, rtol=1e-6)
