"""The W&B report is built offline, filters each section to its mistake's group, and never publishes
without a key."""
import pytest

wr = pytest.importorskip("wandb_workspaces.reports.v2")

from wandb_workspaces import expr  # noqa: E402

from ablations.reporting import wandb_report  # noqa: E402


def verdict(number, mistake, claim, outcome, correct_mean, broken_mean, effect):
    side = lambda mean, std: {"mean": mean, "std": std, "n": 3, "values": [mean] * 3}  # noqa: E731
    return {"mistake": mistake, "number": number, "claim": claim, "verdict": outcome,
            "claims": [{"says": claim, "source": "page", "reference": "correct", "kind": "statistical",
                        "outcome": "reproduced" if outcome == "reproduced" else "no effect",
                        "metric": "val_loss", "rule": "val_loss: broken higher than correct by more than 0.01",
                        "mean": effect, "ci": [effect - 0.05, effect + 0.05], "p": 0.004, "n": 3, "margin": 0.01,
                        "unit": "nats/token", "why": "the interval lies beyond +0.01", "seeds_needed": None,
                        "correct": side(correct_mean, 0.01), "broken": side(broken_mean, 0.02)}],
            "diverged": {"correct": [], "broken": [] if outcome != "diverged at step 40" else [0]}}


CHARACTERS = {"data": {"tokenizer": "char"}}  # a run config, as far as the report reads it: the data's units
ENTRIES = [
    (verdict(2, "no_residual", "a deep transformer without residuals does not train", "reproduced",
             1.2, 1.6, 0.41), "no_residual-run_a", CHARACTERS),
    (verdict(5, "no_causal_mask", "attention without a causal mask cheats | leaks", "not reproduced",
             1.3, 1.31, 0.01), "no_causal_mask-run_b", CHARACTERS),
]


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """No key anywhere, offline mode, and any attempt to reach W&B fails loudly."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    import wandb

    def refuse(*args, **kwargs):
        raise AssertionError("touched the W&B API")

    monkeypatch.setattr(wandb, "Api", refuse)
    monkeypatch.setattr(wr.interface, "_get_api", refuse)
    monkeypatch.setattr(wr.interface, "execute_graphql", refuse)


def grids(report):
    return [b for b in report.blocks if isinstance(b, wr.PanelGrid)]


def test_report_structure(no_network):
    report = wandb_report.build_report(ENTRIES, project="mistakes", entity=None, n_layers=4)
    assert isinstance(report, wr.Report)
    assert report.title == "Transformer mistakes: paired ablations"
    assert report.project == "mistakes" and report.entity == "" and report.description

    headings = [b.text for b in report.blocks if isinstance(b, wr.H2)]
    assert headings == ["Mistake 2: no_residual — reproduced", "Mistake 5: no_causal_mask — not reproduced"]
    # each heading is followed (after its notes) by that mistake's grid
    kinds = [type(b).__name__ for b in report.blocks]
    assert kinds == ["MarkdownBlock", "H2", "MarkdownBlock", "PanelGrid", "H2", "MarkdownBlock", "PanelGrid"]
    notes = report.blocks[2].text  # the catalogue's nats/token, in the character data's unit
    assert "margin 0.01 nats/char" in notes and "nats/token" not in notes

    assert len(grids(report)) == 2
    for grid, (v, group, _) in zip(grids(report), ENTRIES):
        (runset,) = grid.runsets
        assert runset.project == "mistakes"
        assert runset.groupby == ["config.variant"]
        tree = expr.expr_to_filters(runset.filters)  # the library's own parser
        assert (tree.op, tree.key.section, tree.key.name, tree.value) == ("=", "run", "group", group)

        ys = {m for p in grid.panels for m in p.y}
        assert {"train_ce", "val_loss", "grad_norm", "grad_norm/embed", "grad_norm/norm_final"} <= ys
        assert {f"grad_norm/block_{i}" for i in range(4)} <= ys
        assert all(p.x == "Step" for p in grid.panels)
        # (Config.__eq__ builds a filter expression, so compare type and name, not ==)
        assert all(isinstance(p.groupby, wr.Config) and p.groupby.name == "variant" for p in grid.panels)
        assert all((p.groupby_aggfunc, p.groupby_rangefunc) == ("mean", "stddev") for p in grid.panels)
        grad_panels = [p for p in grid.panels if any(m.startswith("grad_norm") for m in p.y)]
        assert len(grad_panels) == 2 and all(p.log_y for p in grad_panels)
        assert any(p.metric_regex and "grad_norm/" in p.metric_regex for p in grad_panels)


def test_verdict_table(no_network):
    report = wandb_report.build_report(ENTRIES, project="mistakes", entity="lab")
    table = report.blocks[0].text
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 2
    assert "| reproduced |" in rows[0] and "no_residual" in rows[0] and "| 2 |" in rows[0]
    assert "| no effect |" in rows[1] and "no_causal_mask" in rows[1]
    assert "0.41 [0.36, 0.46]" in rows[0] and "| 0.004 | 3 |" in rows[0]
    assert "cheats \\| leaks" in rows[1]  # a pipe in a claim must not split the row
    assert all(line.count(" | ") == 7 for line in table.splitlines()[2:])  # with the escaped pipe unsplit
    # with an entity the runsets carry it too
    assert all(g.runsets[0].entity == "lab" for g in grids(report))


def test_report_serializes_offline(no_network):
    """The whole report converts to W&B's wire format without a server (runsets without an entity
    skip the project lookup), with the group filter and variant grouping in place."""
    report = wandb_report.build_report(ENTRIES, project="mistakes", entity=None)
    spec = report._to_model().spec.model_dump(by_alias=True, exclude_none=True)
    dumped = str(spec)
    assert "no_residual-run_a" in dumped and "no_causal_mask-run_b" in dumped
    assert "variant.value" in dumped and "'yLogScale': True" in dumped


def test_publish_without_key_never_saves(no_network, monkeypatch):
    calls = []
    monkeypatch.setattr(wr.Report, "save", lambda self, *a, **k: calls.append(self))
    report = wandb_report.build_report(ENTRIES, project="mistakes", entity=None)
    assert wandb_report.publish(report) is None
    monkeypatch.delenv("WANDB_MODE")  # no key is enough on its own
    assert wandb_report.has_api_key() is False
    assert wandb_report.publish(report) is None
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a key, but offline mode: still nothing
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_report.publish(report) is None
    assert calls == []


def test_publish_with_key_saves_and_returns_url(no_network, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "online")
    calls = []

    def fake_save(self, *args, **kwargs):
        calls.append(self)
        self.id = "abc123"
        return self

    monkeypatch.setattr(wr.Report, "save", fake_save)
    monkeypatch.setattr(wr.Report, "url", property(lambda self: f"https://wandb.ai/{self.entity}/r--{self.id}"))
    report = wandb_report.build_report(ENTRIES, project="mistakes", entity="lab")
    assert wandb_report.publish(report) == "https://wandb.ai/lab/r--abc123"
    assert calls == [report]


def test_offline_instructions():
    text = wandb_report.offline_instructions(["runs/a/", "runs/b"])
    assert text.splitlines() == ["wandb sync runs/a/*/wandb/offline-run-*",
                                 "wandb sync runs/b/*/wandb/offline-run-*",
                                 "python -m ablations.report --wandb"]
