"""Where metrics go (ablations.tracking): the JSONL, the source of truth, and the W&B mode, in-process."""
import json

import pytest

from ablations import tracking


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
