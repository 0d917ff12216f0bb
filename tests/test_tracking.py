"""Where metrics go (ablations.runner.tracking): the JSONL, the source of truth, and the W&B mode, in-process."""
import json

import pytest

from ablations.runner import tracking


def sink(tmp_path) -> tracking.MetricsSink:
    return tracking.MetricsSink(tmp_path, [0, 1], mode="disabled", project="p", entity=None, group="g",
                                config={"variant": "correct"})


def rows(step: int) -> list[dict]:
    return [{"step": step, "seed": seed, "loss": 1.0 / step} for seed in (0, 1)]


def test_rows_are_appended_to_the_jsonl_and_a_resume_truncates_after_its_checkpoint(tmp_path):
    metrics = sink(tmp_path)
    for step in (2, 4, 6):
        metrics.log(rows(step))
    assert [r["step"] for r in tracking.read_jsonl(tmp_path / "metrics.jsonl")] == [2, 2, 4, 4, 6, 6]
    resumed = sink(tmp_path)
    resumed.truncate_after(4)  # the checkpoint restored was step 4: the rows of step 6 are trained again
    resumed.log(rows(6))
    assert tracking.read_jsonl(tmp_path / "metrics.jsonl") == rows(2) + rows(4) + rows(6)
    resumed.summarize(0, {"val_loss": 1.5})
    resumed.close()  # disabled: nothing to finish, nothing written beside the JSONL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_a_torn_last_line_from_a_kill_is_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(rows(2)[0]) + "\n" + '{"step": 4, "se')
    assert tracking.read_jsonl(path) == rows(2)[:1]
    assert tracking.read_jsonl(tmp_path / "missing.jsonl") == []


def test_auto_mode_is_online_with_a_key_and_offline_without(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert tracking.wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tracking.wandb_mode("auto") == "online"
    assert tracking.wandb_mode("disabled") == "disabled"
    with pytest.raises(ValueError, match="wandb.mode='cloud'; valid choices: auto, online, offline, disabled"):
        tracking.wandb_mode("cloud")


def test_the_null_sink_of_a_process_other_than_0_answers_everything_a_sink_is_asked():
    asked = {name for name in vars(tracking.MetricsSink) if not name.startswith("_")} - {"start"}
    assert asked == {"truncate_after", "log", "summarize", "close"}
    null = tracking.NullSink()
    assert all(getattr(null, name)(*args) is None for name, args in
               (("truncate_after", (2,)), ("log", (rows(2),)), ("summarize", (0, {})), ("close", ())))


class FakeRun:
    def __init__(self, resumed: bool):
        self.resumed, self.logged, self.summary, self.finished = resumed, [], {}, False

    def finish(self) -> None:
        self.finished = True

    def log(self, values: dict, step: int) -> None:
        self.logged.append((step, values))


@pytest.mark.parametrize("resumed", [False, True])
def test_an_online_run_that_begins_from_copied_training_is_given_its_history_a_resumed_one_is_not(
        tmp_path, monkeypatch, resumed):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(2) + rows(4) + rows(6)))
    monkeypatch.setattr(tracking.MetricsSink, "start", lambda self, seed: FakeRun(resumed))
    online = tracking.MetricsSink(tmp_path, [0, 1], mode="online", project="p", entity=None, group="g",
                                  config={"variant": "correct"})
    online.truncate_after(4)  # e.g. a study point starting from a copied checkpoint at step 4
    expected = [] if resumed else [(2, {"loss": 0.5}), (4, {"loss": 0.25})]  # W&B already holds a resumed run's
    assert [run.logged for run in online.runs.values()] == [expected, expected]
    online.log(rows(6))
    assert [run.logged[-1] for run in online.runs.values()] == [(6, {"loss": 1.0 / 6})] * 2


def test_on_a_learning_rate_grid_each_seed_at_each_rate_is_its_own_run(tmp_path, monkeypatch):
    """The members of a grid (seed, rate) each get their W&B run and only their rows, online and offline."""
    grid_rows = [{"step": 2, "seed": seed, "peak_lr": lr, "loss": seed + lr} for lr in (1e-3, 1e-2) for seed in (0, 1)]
    members = [(0, 1e-3), (1, 1e-3), (0, 1e-2), (1, 1e-2)]
    assert [tracking.member_of(r) for r in grid_rows] == members
    assert tracking.member_name((1, 1e-2)) == "s1-lr0.01" and tracking.member_name(3) == "s3"
    monkeypatch.setattr(tracking.MetricsSink, "start", lambda self, member: FakeRun(False))
    for mode in ("online", "offline"):
        directory = tmp_path / mode
        directory.mkdir()
        sink = tracking.MetricsSink(directory, members, mode=mode, project="p", entity=None, group="g",
                                    config={"variant": "correct"})
        sink.log(grid_rows)
        sink.close() if mode == "offline" else None
        assert {m: run.logged for m, run in sink.runs.items()} == {
            m: [(2, {"loss": m[0] + m[1]})] for m in members}, mode
