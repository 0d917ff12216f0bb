"""Beyond the 11: the bugs people report (ablations/catalogue/reported_bugs.py, measured by ablations/audit/reported.py,
printed by `python -m ablations.check` as a section of its own). Every check fires on its planted negative control
in ablations/audit/zoo/pure_jax_gpt.py (`bugs=`) and is clear on the correct pure_jax_gpt (d_model 32, seed 0),
parallel_gpt and the lab's GPT; each bug "caught by detector N" fires that detector on its control; nothing else fires
on a control but what the bug really does (CONSEQUENCES); the Hugging Face zoo is clear on every check it
offers the hooks for. The readings are tabled in docs/auditing-a-model.md, "Beyond the 11: bugs people report".

Unmarked tests use numpy toys and tiny optax trees (no model compiles); the zoo and the lab's GPT are `slow`."""
import functools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ablations import catalogue, check
from ablations.audit import reported
from ablations.audit.adapters import lab_gpt
from ablations.audit.context import Context
from ablations.audit.interface import AuditModel, NotApplicable
from ablations.catalogue.schema import LEAK
from ablations.runner import training
from ablations.audit.zoo import hf_models, parallel_gpt, pure_jax_gpt

SETTINGS = {"d_model": 32, "seed": 0}
CHECKS = list(catalogue.REPORTED_DETECTORS)
MISTAKE_OF = {spec.number: spec.name for spec in catalogue.MISTAKES}
OWN = [(bug.name, control) for bug in catalogue.REPORTED_BUGS if bug.detector is not None for control in bug.controls]
CAUGHT = [(MISTAKE_OF[bug.caught_by], control) for bug in catalogue.REPORTED_BUGS if bug.caught_by is not None
          for control in bug.controls]
CONTROLS = [control for bug in catalogue.REPORTED_BUGS for control in bug.controls]
# what else fires on a control, because the planted bug really does what that detector or check measures: a mask
# that shows the future leaks it into left and right padding and into cached decoding (which sees one position at
# a time); statistics over the batch change with the rows padding changes; dropout with a new key on every call
# changes every forward; a loss shifted twice has no target left in the two-token sequences narrow_ffn reads
# (error). Not applicable (not listed): narrow_ffn and label_shift where the model is not causal, narrow_ffn for
# an unshifted loss (a one-token context reads its own token), no_final_norm under batch statistics and dropout.
CONSEQUENCES = {
    "bidirectional_mask": {"padding_mask", "stale_kv_cache", "right_padding"},
    "causal_mask_off_by_one": {"padding_mask", "stale_kv_cache", "right_padding"},
    "batch_statistics": {"padding_mask", "right_padding"},
    "dropout_in_eval": {"norm_wrong_axis", "padding_mask", "stale_kv_cache", "right_padding", "batch_size"},
}
ERRORS = {"labels_shifted_twice": {"narrow_ffn"}}


# ---------------------------------------------------------------- the catalogue's group


def test_the_group_names_its_reports_and_one_way_each_bug_is_seen():
    assert list(catalogue.REPORTED_BY_NAME) == [bug.name for bug in catalogue.REPORTED_BUGS]
    assert not set(catalogue.REPORTED_BY_NAME) & set(catalogue.BY_NAME)  # a group apart from the 11
    for bug in catalogue.REPORTED_BUGS:
        assert all(re.fullmatch(r"[\w.-]+/[\w.-]+#\d+", report) for report in bug.reports), bug.reports
        assert (bug.name in catalogue.REPORTED_DETECTORS) == (bug.detector is not None)
        if bug.caught_by is not None:
            assert catalogue.DETECTORS[MISTAKE_OF[bug.caught_by]] is not None
        assert bool(bug.controls) != bool(bug.unprobed), bug  # seen: planted; unseen: says why
    # every planted control belongs to one bug, and every consistency check reuses detectors 5/8/11's threshold
    assert sorted(CONTROLS) == sorted(pure_jax_gpt.BUGS)
    assert [catalogue.REPORTED_DETECTORS[name].threshold for name in ("right_padding", "batch_size", "eval_dropout",
                                                                      "label_shift")] == [LEAK] * 4
    with pytest.raises(ValueError, match="exactly one of detector, caught_by, unprobed"):
        catalogue.ReportedBug("x", "y", ("a/b#1",), caught_by=5, unprobed="z")


def test_the_zoo_model_refuses_an_unknown_bug_in_one_line():
    with pytest.raises(ValueError, match=r"^unknown bug 'dropout_in_evals'; valid choices: batch_statistics, "):
        pure_jax_gpt.factory(bugs="dropout_in_evals")


# ---------------------------------------------------------------- the measurements, on numpy toys


class CausalMean:
    """A toy causal LM in numpy: position t's logits are the mean, over the real tokens up to t, of a row per token
    plus a row per position (counted from the row's first real token). `bug` plants one control, as pure_jax_gpt's."""

    def __init__(self, bug: str | None = None, vocab: int = 8, length: int = 16):
        rng = np.random.default_rng(0)
        self.tokens, self.positions = rng.standard_normal((vocab, vocab)), rng.standard_normal((length, vocab))
        self.bug, self.noise = bug, np.random.default_rng(1)

    def __call__(self, tokens, mask):
        tokens = np.asarray(tokens)
        mask = np.ones(tokens.shape, bool) if mask is None else np.asarray(mask, bool)
        positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
        if self.bug == "left_padding_positions":
            positions = np.maximum(np.arange(tokens.shape[1]) - (~mask).sum(axis=1, keepdims=True), 0)
        x = (self.tokens[tokens] + self.positions[positions]) * mask[..., None]
        logits = np.cumsum(x, axis=1) / np.maximum(np.cumsum(mask, axis=1), 1)[..., None]
        if self.bug == "batch_statistics":
            logits = logits / np.sqrt(np.mean(logits ** 2, axis=(0, 2), keepdims=True))
        if self.bug == "dropout_in_eval":
            logits = logits * (self.noise.random(logits.shape) > 0.1) / 0.9
        return logits.astype(np.float32)


def toy_context(forward=None, **fields) -> Context:
    model = AuditModel(forward=forward or CausalMean(), vocab_size=8, n_params=0, **fields)
    return Context(lambda: model, {}, model)


TOY_CONTROLS = {"left_padding_positions": reported.right_padding_gap, "batch_statistics": reported.batch_gap,
                "dropout_in_eval": reported.repeat_gap}


@pytest.mark.parametrize("bug", TOY_CONTROLS)
def test_each_consistency_check_reads_zero_on_a_correct_toy_and_fires_on_its_bug(bug):
    measure = TOY_CONTROLS[bug]
    assert measure(toy_context()).value == 0.0
    assert measure(toy_context(CausalMean(bug))).value > LEAK  # fires
    assert reported.right_padded(np.arange(1, 7).reshape(2, 3), np.array([3, 1]), 0)[0].tolist() == [[1, 2, 3],
                                                                                                      [4, 0, 0]]


def bigram_loss(shift: int, scale: float = 1.0):
    """A bigram model's objective, params {"w": [V, V] logits per token}: the mean cross-entropy of w[tokens[:, t]]
    against tokens[:, t + shift], times `scale`."""
    def loss(params, tokens):
        logits = params["w"][tokens[:, :tokens.shape[1] - shift]]
        return scale * optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, shift:]).mean()
    return loss


def bigram_context(loss, table: np.ndarray) -> Context:
    return toy_context(lambda tokens, mask: table[np.asarray(tokens)], params={"w": jnp.asarray(table)}, loss=loss)


def test_label_shift_reads_which_shift_the_loss_is_and_when_it_cannot_tell():
    table = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    assert reported.label_shift(bigram_context(bigram_loss(1), table)).value == 0.0
    assert reported.label_shift(bigram_context(bigram_loss(0), table)).value > 0.5  # at least 1 - 2 / SEPARATION
    assert reported.label_shift(bigram_context(bigram_loss(2), table)).value > 0.5
    with pytest.raises(NotApplicable, match="rounding hides which one"):  # uniform logits: every shift reads log V
        reported.label_shift(bigram_context(bigram_loss(1), np.zeros((8, 8), np.float32)))
    with pytest.raises(NotApplicable, match="no label shift"):  # a summed, not averaged, cross-entropy
        reported.label_shift(bigram_context(bigram_loss(1, scale=3.0), table))


def decay(optimizer, params=None) -> float:
    params = params or {"w": jnp.ones((4, 4)), "b": jnp.zeros(4), "g": jnp.ones((1, 4))}
    return reported.decayed_norms(toy_context(params=params, optimizer=optimizer)).value


def test_decayed_norms_counts_the_norm_gains_and_biases_an_optimizer_decays():
    by_axes = lambda tree: jax.tree.map(reported.is_matrix, tree)  # noqa: E731
    assert decay(optax.adamw(1e-2, weight_decay=0.1, mask=by_axes)) == 0
    assert decay(optax.adamw(1e-2, weight_decay=0.1)) == 2  # b and g: the zero bias moved off zero first
    assert decay(optax.adamw(1e-2, weight_decay=0.1, mask=lambda tree: jax.tree.map(lambda p: p.ndim >= 2, tree))) \
        == 1  # a [1, D] gain has two axes: masked by ndim, it is decayed
    with pytest.raises(NotApplicable, match="decays nothing"):
        decay(optax.adam(1e-2))
    with pytest.raises(NotApplicable, match="no optimizer"):
        decay(None)
    # the lab's optimizer: warmup from a learning rate of 0, so the second update is the first that moves
    lab = reported.decayed_norms(toy_context(params={"w": jnp.ones((4, 4)), "b": jnp.zeros(4)},
                                             optimizer=training.optimizer(training.TrainSettings())))
    assert lab.value == 0 and "1 of 1 matrices), update 2" in lab.note


# ---------------------------------------------------------------- the check command's section


def fake(name: str, status: str, value: float, key: str = "check") -> dict:
    threshold = catalogue.REPORTED_DETECTORS[name].threshold if key == "check" else 0.1
    return {key: name, "status": status, "value": value, "threshold": threshold,
            "margin": value / threshold if threshold else None, "why": "w; detected when x", "thin_margin": False}


def test_the_section_prints_its_own_rows_apart_from_the_11s():
    results = [fake(name, "clear", 0.0, key="mistake") for name in catalogue.DETECTORS]
    results[-1]["status"] = "detected"  # stale_kv_cache
    section = check.reported_section(results, [fake(name, "clear", 0.0) for name in CHECKS[:-1]]
                                     + [fake(CHECKS[-1], "detected", 2.0)])
    rows = [re.split(r"\s{2,}", line) for line in section.splitlines() if re.match(r"R\d+\s{2,}", line)]
    assert [row[:3] for row in rows] == [[f"R{i}", name, "clear"] for i, name in enumerate(CHECKS[:-1], 1)] + [
        [f"R{len(CHECKS)}", "decayed_norms", "detected"]]
    assert not [line for line in section.splitlines() if re.match(r"\s*\d+\s{2,}", line)]  # not the 11's rows
    assert "padded_decode_positions by detector 11 (detected)" in section
    assert "causal_mask_refactor by detector 5 (clear)" in section
    assert "chunked_cache_continuation, loss_padding_mask" in section
    assert section.splitlines()[-1].startswith(f"1 of {len(CHECKS)} detected: decayed_norms")


# ---------------------------------------------------------------- the zoo and the lab's GPT (slow: compiles models)


@functools.cache
def records(control: str | None = None) -> tuple[dict, dict]:
    """(the 11's records, the reported checks' records) of pure_jax_gpt with `control` planted; once each."""
    results, checks = catalogue.full_audit(pure_jax_gpt.factory, {**SETTINGS, "bugs": (control,) if control else ()})
    return {r["mistake"]: r for r in results}, {r["check"]: r for r in checks}


@pytest.mark.slow
def test_the_correct_zoo_model_is_clear_on_the_11_and_every_check():
    results, checks = records()
    assert {m: r["status"] for m, r in results.items()} == dict.fromkeys(catalogue.DETECTORS, "clear")
    assert {c: (r["status"], r["value"]) for c, r in checks.items()} == dict.fromkeys(CHECKS, ("clear", 0.0))


@pytest.mark.slow
@pytest.mark.parametrize("check_name, control", OWN, ids=[control for _, control in OWN])
def test_each_check_fires_on_its_planted_control(check_name, control):
    result = records(control)[1][check_name]
    assert result["status"] == "detected", result


@pytest.mark.slow
@pytest.mark.parametrize("mistake, control", CAUGHT, ids=[control for _, control in CAUGHT])
def test_each_bug_caught_by_one_of_the_11_fires_that_detector(mistake, control):
    result = records(control)[0][mistake]
    assert result["status"] == "detected", result


@pytest.mark.slow
@pytest.mark.parametrize("control", CONTROLS)
def test_nothing_else_fires_on_a_control_but_what_its_bug_does(control):
    results, checks = records(control)
    own = {bug.name if bug.detector is not None else MISTAKE_OF[bug.caught_by]
           for bug in catalogue.REPORTED_BUGS if control in bug.controls}
    statuses = {**{m: r["status"] for m, r in results.items()}, **{c: r["status"] for c, r in checks.items()}}
    assert {name for name, s in statuses.items() if s == "detected"} == own | CONSEQUENCES.get(control, set())
    assert {name for name, s in statuses.items() if s == "error"} == ERRORS.get(control, set()), results


@pytest.mark.slow
@pytest.mark.parametrize("factory, overrides", [(parallel_gpt.factory, SETTINGS), (lab_gpt, {"d_model": 16})],
                         ids=["parallel_gpt", "lab_gpt"])
def test_the_other_correct_models_are_clear_on_every_check(factory, overrides):
    checks = catalogue.audit_reported(factory, overrides)
    assert {r["check"]: (r["status"], r["value"]) for r in checks} == dict.fromkeys(CHECKS, ("clear", 0.0)), checks


@pytest.mark.slow
@pytest.mark.parametrize("family", hf_models.FAMILIES)
def test_the_hugging_face_zoo_is_clear_on_every_check_it_offers_hooks_for(family):
    pytest.importorskip("transformers")
    checks = {r["check"]: r for r in catalogue.audit_reported(getattr(hf_models, family), SETTINGS)}
    assert checks.pop("decayed_norms")["status"] == "not applicable"  # the wrapper gives no optimizer
    assert {c: (r["status"], r["value"]) for c, r in checks.items()} == dict.fromkeys(checks, ("clear", 0.0)), checks


@pytest.mark.slow
def test_the_check_command_prints_the_group_counts_it_in_the_exit_status_and_writes_it_to_json(tmp_path, capsys):
    out = tmp_path / "audit.json"
    argv = ["ablations.audit.zoo.pure_jax_gpt:factory", "bugs=decay_everything", "--json", str(out)]
    assert check.main(argv) == check.EXIT_FOUND
    printed = capsys.readouterr().out
    body = json.loads(out.read_text())
    assert {r["status"] for r in body["results"]} == {"clear"}  # the 11: the bug is the optimizer's alone
    assert {r["check"]: r["status"] for r in body["reported_bugs"]} == {**dict.fromkeys(CHECKS, "clear"),
                                                                       "decayed_norms": "detected"}
    assert list(body["reported_bugs"][0]) == ["check", "status", "value", "threshold", "margin", "why",
                                              "thin_margin"]
    assert printed.index("0 of 11 detected") < printed.index("bugs people report") < printed.index(
        f"1 of {len(CHECKS)} detected: decayed_norms")
