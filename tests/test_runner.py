"""The runner end to end: every mistake trains, is probed, judged, plotted and reported."""
import json
import shutil

import numpy as np
import pytest
from conftest import TINY, run_lab

from ablations.catalogue import MISTAKES
from ablations.science.rules import EXACT, STATISTICAL, Invariant
from ablations.science.verdict import CONVERGES


def run_dir_of(results, name):
    (run,) = [p for p in (results / name).iterdir() if p.is_dir()]
    return run


@pytest.mark.slow
@pytest.mark.parametrize("spec", MISTAKES, ids=lambda s: s.name)
def test_every_mistake_writes_metrics_checkpoints_figures_and_a_verdict(tiny_suite, spec):
    run = run_dir_of(tiny_suite, spec.name)
    config = json.loads((run / "config.json").read_text())
    assert config["mistake"] == spec.name and config["model"]["n_layers"] == 2  # the user's override wins
    for variant in spec.variants:
        rows = [json.loads(line) for line in (run / variant / "metrics.jsonl").read_text().splitlines()]
        assert sorted((r["step"], r["seed"]) for r in rows) == [(2, 0), (2, 1), (4, 0), (4, 1)]
        assert all("grad_norm/block_1" in r and "val_loss" in r for r in rows)
        assert (run / "ckpt" / "4" / variant).is_dir()  # one checkpoint of the run holds every variant
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["verdict"].startswith(("page claims: ", "the page names no symptom", "diverged at step"))
    says = [c["says"] for c in verdict["claims"]]
    assert says in ([c.says for c in spec.claims], [c.says for c in spec.claims] + [CONVERGES])  # + where seeds split
    for claim in verdict["claims"]:
        assert claim["outcome"] in (STATISTICAL if claim["kind"] in ("statistical", "share") else EXACT)
        if claim["kind"] == "statistical":  # the interval, p and n of the paired differences are recorded
            assert claim["n"] == 2 and len(claim["ci"]) == 2 and len(claim["differences"]) == 2 and "p" in claim
    measured = json.loads((run / "measurements.json").read_text())
    assert list(measured) == list(spec.variants)
    for key in ("val_loss_at_25", "val_loss_at_50", "val_loss_auc", "steps_to_floor", "grad_depth_ratio",
                "grad_depth_ratio_median"):
        assert all(key in m for m in measured["correct"])
    for name in ("card", "loss", "grad_norms", "symptom", "claims"):
        for ext in ("png", "svg"):
            assert (run / "figures" / f"{name}.{ext}").stat().st_size > 5000
    assert (run / "environment.json").exists()


@pytest.mark.parametrize("spec", [s for s in MISTAKES if any(isinstance(c.rule, Invariant) for c in s.claims)],
                         ids=lambda s: s.name)
@pytest.mark.slow
def test_exact_invariants_hold_even_at_tiny_scale(tiny_suite, spec):
    verdict = json.loads((run_dir_of(tiny_suite, spec.name) / "verdict.json").read_text())
    invariants = [c for c, claim in zip(verdict["claims"], spec.claims) if isinstance(claim.rule, Invariant)]
    assert invariants and all(c["outcome"] == "holds" for c in invariants), invariants


@pytest.mark.slow
def test_suite_report_lists_every_mistake_with_figures(tiny_suite):
    report = (tiny_suite / "REPORT.md").read_text()
    for spec in MISTAKES:
        assert all(f"| {spec.number} | {spec.name} | {claim.says} |" in report for claim in spec.claims)
        assert f"{spec.name}/" in report and "figures/symptom.png" in report and "figures/claims.png" in report
    assert (tiny_suite / "figures" / "claims.png").stat().st_size > 5000  # every claim of the suite in one figure
    setup = report[report.index("## Setup"):report.index("## At a glance")]
    for field in ("Data", "Model", "Training", "Seeds", "Protocol", "Commit", "Machine", "Wall time", "Regenerate"):
        assert f"- **{field}**:" in setup, field
    assert "synthetic copy task" in setup and "nats/char" in setup and "nats/token" not in report
    assert "`python -m ablations.run mistake=all" in setup and f"results_dir={tiny_suite}" in setup
    assert "## The claims as families (Holm–Bonferroni)" in report and "### The page's claims:" in report
    assert "## Against the literature" in report and "Xiong et al. 2020" in report


@pytest.mark.slow
def test_figures_regenerate_from_saved_metrics_without_training(tiny_suite, tmp_path):
    run = shutil.copytree(run_dir_of(tiny_suite, "no_residual"), tmp_path / "copy")
    shutil.rmtree(run / "figures")
    shutil.rmtree(run / "ckpt")  # nothing to retrain from: figures must come from metrics alone
    printed = run_lab(str(run), module="ablations.figures").stdout.split()
    assert len(printed) == 10 and all((run / "figures").joinpath(p.rsplit("/", 1)[1]).exists() for p in printed)


@pytest.mark.slow
def test_on_real_text_a_claim_that_needs_the_copy_task_is_not_measured_and_the_run_completes(tmp_path):
    run_lab("mistake=stale_kv_cache", "data=shakespeare", *TINY, f"results_dir={tmp_path}", "wandb.mode=disabled")
    run = run_dir_of(tmp_path, "stale_kv_cache")
    claims = {c["metric"]: c["outcome"] for c in json.loads((run / "verdict.json").read_text())["claims"]}
    assert claims == {"cache_gap": "holds", "copy_accuracy": "not measured"}
    assert (run / "figures" / "symptom.png").exists() and (run / "timing.json").exists()


@pytest.mark.slow
def test_rerun_of_a_complete_run_never_overwrites(tiny_suite):
    run = run_dir_of(tiny_suite, "narrow_ffn")
    before = (run / "verdict.json").read_text(), (run / "correct" / "metrics.jsonl").read_text()
    out = run_lab("mistake=narrow_ffn", *TINY, f"results_dir={tiny_suite}", "wandb.mode=disabled")
    assert "already complete" in out.stdout
    assert before == ((run / "verdict.json").read_text(), (run / "correct" / "metrics.jsonl").read_text())


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint_with_identical_metrics(tiny_suite, tmp_path):
    """Cut a finished run back to its step-2 checkpoint, rerun the same command: same final metrics."""
    reference = run_dir_of(tiny_suite, "padding_mask")
    results = tmp_path / "results"
    interrupted = results / "padding_mask" / reference.name
    shutil.copytree(reference, interrupted)
    shutil.rmtree(interrupted / "ckpt" / "4")
    for variant in ("correct", "broken"):
        lines = (interrupted / variant / "metrics.jsonl").read_text().splitlines()
        (interrupted / variant / "metrics.jsonl").write_text(
            "\n".join(lines[:2] + ["{\"step\": 4, \"seed\": 0}"]) + "\n")
    for name in ("verdict.json", "measurements.json", "config.json"):
        (interrupted / name).unlink() if name != "config.json" else None
    config = json.loads((interrupted / "config.json").read_text())
    config["results_dir"] = str(results)
    (interrupted / "config.json").write_text(json.dumps(config, indent=1))
    run_lab("mistake=padding_mask", *TINY, f"results_dir={results}", "wandb.mode=disabled")
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
                          for line in text.splitlines()]
    for variant in ("correct", "broken"):
        assert strip((interrupted / variant / "metrics.jsonl").read_text()) == \
            strip((reference / variant / "metrics.jsonl").read_text())
    assert json.loads((interrupted / "verdict.json").read_text())["verdict"] == \
        json.loads((reference / "verdict.json").read_text())["verdict"]


@pytest.mark.slow
def test_divergence_is_a_finding_not_a_crash(tmp_path):
    run_lab("mistake=narrow_ffn", *TINY, "train.lr=1e30", f"results_dir={tmp_path}", "wandb.mode=disabled")
    (run,) = (tmp_path / "narrow_ffn").iterdir()
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["verdict"].startswith("diverged at step ")
    assert verdict["diverged"]["correct"] and verdict["diverged"]["broken"]
    assert (run / "figures" / "loss.png").exists()
    measured = json.loads((run / "measurements.json").read_text())
    assert all(np.isfinite(m["val_loss"]) for v in ("correct", "broken") for m in measured[v])  # last finite state


@pytest.mark.slow
def test_wandb_report_is_built_offline_and_says_how_to_publish(tiny_suite):
    out = run_lab("--results", str(tiny_suite), "--wandb", module="ablations.report").stdout
    assert "REPORT.md" in out and "wandb sync" in out and "python -m ablations.report --wandb" in out


@pytest.mark.slow
@pytest.mark.parametrize("steps,eval_every", [(8, 4), (6, 4), (2, 4)], ids=["a multiple", "not a multiple", "below"])
def test_the_final_loss_is_the_last_steps_whatever_eval_every_is(steps, eval_every, tmp_path):
    run_lab("mistake=narrow_ffn", *TINY, f"steps={steps}", f"train.eval_every={eval_every}", "train.warmup=1",
            f"results_dir={tmp_path}", "wandb.mode=disabled")
    run = run_dir_of(tmp_path, "narrow_ffn")
    measured = json.loads((run / "measurements.json").read_text())
    for variant in ("correct", "broken"):
        rows = [json.loads(line) for line in (run / variant / "metrics.jsonl").read_text().splitlines()]
        for seed, final in enumerate(measured[variant]):
            evals = [r for r in rows if r["seed"] == seed and "val_loss" in r]
            assert evals[-1]["step"] == steps and final["val_loss"] == evals[-1]["val_loss"]
            assert [r["step"] for r in evals] == sorted({*range(eval_every, steps + 1, eval_every), steps})


@pytest.mark.slow
def test_redeciding_fresh_runs_with_todays_rules_gives_their_recorded_outcomes(tiny_suite):
    """`report --redecide` puts each recorded outcome beside today's rules' on the same measurements: on runs made
    with today's rules the two agree on every claim, and nothing is written."""
    before = sorted(p.name for p in tiny_suite.iterdir())
    out = run_lab("--results", str(tiny_suite), "--redecide", module="ablations.report").stdout
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) >= sum(len(spec.claims) for spec in MISTAKES)
    assert all(row[3] == row[4] for row in rows), [row for row in rows if row[3] != row[4]]
    assert sorted(p.name for p in tiny_suite.iterdir()) == before
