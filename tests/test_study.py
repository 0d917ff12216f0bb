"""Studies: a grid of paired runs for one mistake, resumable, summarised in study.json and a figure."""
import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TINY, run_cli_here, run_lab

from ablations import catalogue
from ablations.catalogue import Axis, Study
from ablations.errors import UsageError
from ablations.runner.study_points import check_axes

STUDY = "no_final_norm_depth"
SMALL = [a for a in TINY if not a.startswith("model.n_layers=")] + ["model.n_layers=[1,2]", "wandb.mode=disabled"]


def summary_of(results):
    return json.loads((results / "studies" / STUDY / "study.json").read_text())


def essence(summary):
    """What a study found, without where it ran or how long it took."""
    return summary["finding"], [(p["at"], p["run"], p["verdict"], p["claims"]) for p in summary["points"]]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    results = tmp_path_factory.mktemp("study")
    run_lab(STUDY, *SMALL, f"results_dir={results}", module="ablations.study")
    return results


@pytest.mark.slow
def test_a_tiny_study_records_every_point_with_its_claims_config_and_figure(tiny_study):
    summary = summary_of(tiny_study)
    assert summary["mistake"] == "no_final_norm" and summary["axes"] == [{"key": "model.n_layers", "values": [1, 2]}]
    assert [p["at"] for p in summary["points"]] == [{"model.n_layers": 1}, {"model.n_layers": 2}]
    for point, depth in zip(summary["points"], (1, 2)):
        assert point["config"]["model"]["n_layers"] == depth and point["config"]["steps"] == 4
        (claim,) = point["claims"]
        assert claim["outcome"] in ("reproduced", "opposite", "no effect", "inconclusive")
        assert claim["n"] == 2 and len(claim["ci"]) == 2 and claim["margin"] == 0.01
        assert (tiny_study / "studies" / STUDY / point["run"] / "verdict.json").exists()
    assert "n_layers=1: " in summary["finding"] and "n_layers=2: " in summary["finding"]
    for ext in ("png", "svg"):
        assert (tiny_study / "studies" / STUDY / "figures" / f"study.{ext}").stat().st_size > 5000


@pytest.mark.slow
def test_rerunning_a_study_reuses_every_finished_point(tiny_study):
    before = summary_of(tiny_study)
    out = run_lab(STUDY, *SMALL, f"results_dir={tiny_study}", module="ablations.study").stdout
    assert out.count("already complete") == 2
    assert summary_of(tiny_study) == before


@pytest.mark.slow
def test_a_study_killed_midway_resumes_to_the_same_summary(tiny_study, tmp_path):
    args = [sys.executable, "-m", "ablations.study", STUDY, *SMALL, f"results_dir={tmp_path}"]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (tmp_path / "studies" / STUDY / "study.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # during the second point: the first one is finished and summarised
    process.wait()
    assert [p["at"] for p in summary_of(tmp_path)["points"]][0] == {"model.n_layers": 1}
    run_lab(STUDY, *SMALL, f"results_dir={tmp_path}", module="ablations.study")
    assert essence(summary_of(tmp_path)) == essence(summary_of(tiny_study))


@pytest.mark.slow
def test_a_point_that_diverges_is_recorded_not_fatal(tmp_path):
    run_lab(STUDY, *[a for a in SMALL if not a.startswith("model.n_layers")], "model.n_layers=[1]", "train.lr=1e30",
            f"results_dir={tmp_path}", module="ablations.study")
    (point,) = summary_of(tmp_path)["points"]
    assert point["verdict"].startswith("diverged at step") and point["diverged"]["broken"]


def test_an_unknown_axis_key_or_an_empty_axis_is_refused():
    bad = Study("bad", "?", (Axis("model.n_layer", (1, 2)),), mistake="no_residual")
    with pytest.raises(UsageError, match="unknown axis key 'model.n_layer'"):
        check_axes(bad, bad.axes)
    with pytest.raises(UsageError, match="empty value list"):
        check_axes(bad, (Axis("model.n_layers", ()),))


def test_a_dry_run_names_every_point_and_its_run_directory_and_writes_nothing(tmp_path):
    out = run_cli_here(STUDY, "model.n_layers=[1,2,4]", "dry_run=true", f"results_dir={tmp_path}",
                       module="ablations.study").stdout.splitlines()
    assert [line.split(" -> ")[1].startswith(str(tmp_path / "studies" / STUDY / "no_final_norm")) for line in out] \
        == [True] * 3 and "(n_layers=4)" in out[2]
    assert list(tmp_path.iterdir()) == []


def test_every_declared_study_is_listed_and_checks_out():
    listing = run_cli_here("--list", module="ablations.study").stdout
    for study in catalogue.STUDIES:
        assert study.name in listing and study.question in listing
        check_axes(study, study.axes)  # every declared axis is a real key with well-typed values


@pytest.mark.slow
def test_points_that_differ_only_in_what_is_measured_share_one_training(tmp_path):
    """padding_mask_share's points train the same pair: the second point reuses the first one's training and
    measures it, giving exactly what training it alone gives."""
    common = [*TINY, "wandb.mode=disabled"]
    out = run_lab("padding_mask_share", *common, "probe.padding_share=[0.25,0.5]", f"results_dir={tmp_path / 'study'}",
                  module="ablations.study").stdout
    assert out.count("reused, only measuring") == 1
    summary = json.loads((tmp_path / "study" / "studies" / "padding_mask_share" / "study.json").read_text())
    reused = tmp_path / "study" / "studies" / "padding_mask_share" / summary["points"][1]["run"]
    run_lab("mistake=padding_mask", *common, "probe.padding_share=0.5", f"results_dir={tmp_path / 'alone'}")
    alone = tmp_path / "alone" / "padding_mask" / reused.name  # the same experiment, the same directory name
    for name in ("measurements.json", "verdict.json"):
        assert json.loads((reused / name).read_text()) == json.loads((alone / name).read_text())
    for variant in ("correct", "broken"):
        rows = [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
                for line in (alone / variant / "metrics.jsonl").read_text().splitlines()]
        assert rows == [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
                        for line in (reused / variant / "metrics.jsonl").read_text().splitlines()]
