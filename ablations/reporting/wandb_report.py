"""A W&B Report of the paired ablations: one verdict table, then one section of plots per mistake.

Built with `wandb_workspaces.reports.v2` (checked against wandb-workspaces 0.4.13). Building a report is
pure and offline; only `publish` talks to W&B, and only when an API key is present.

Each mistake's W&B runs share `group = f"{mistake}-{run_dir_name}"` and carry config keys `mistake`,
`variant` ("correct"/"broken") and `seed` (see `ablations.runner.tracking`), so a section's runset is filtered to
its group and grouped by `config.variant`: the plots show mean ± std over seeds, correct vs broken.
"""
from __future__ import annotations

import os
from typing import Any

import wandb_workspaces.reports.v2 as wr

from ablations.science.verdict import claim_line

TITLE = "Transformer mistakes: paired ablations"
DESCRIPTION = ("Each mistake is trained twice on the same seeds and batches: the correct model and the broken "
               "variant. The table gives each claim's outcome; the sections below plot the variants' runs "
               "(mean ± std over seeds).")
LOSS_METRICS = ("train_ce", "val_loss")
GRAD_METRIC = "grad_norm"
LAYER_GRAD_REGEX = r"^grad_norm/.+"  # embed, block_0..block_{N-1}, norm_final, head (when untied)
GROUP_KEY = "variant"


def layer_grad_metrics(n_layers: int | None) -> list[str]:
    """Per-layer grad-norm keys that every model logs (`grad_norm/head` exists only when untied, so the
    plot also sets `metric_regex`, which picks it up along with any block the list does not name)."""
    blocks = [f"grad_norm/block_{i}" for i in range(n_layers)] if n_layers else []
    return ["grad_norm/embed", *blocks, "grad_norm/norm_final"]


def group_filter(group: str) -> str:
    """The runset filter for one W&B group. `Metric('Group')` is the run's group attribute (backend key
    `run.group`). The value is quoted with repr(): the library's own FilterExpr-to-string conversion
    does not escape quotes, so a name containing `'` would not parse."""
    return f"Metric('Group') == {group!r}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) and x == x else "–"


def _effect(claim: dict) -> str:
    if claim.get("kind") != "statistical":
        return "exact" if claim.get("kind") == "exact" else "–"
    lo, hi = claim.get("ci") or (None, None)
    return f"{_num(claim.get('mean'))} [{_num(lo)}, {_num(hi)}]"


def verdict_table(verdicts: list[dict]) -> str:
    """Markdown table: one row per claim, with its outcome, the paired effect and its 95% interval."""
    lines = ["| # | mistake | claim | by | outcome | effect [95% CI] | p | n |", "|---|---|---|---|---|---|---|---|"]
    for v in sorted(verdicts, key=lambda v: (v.get("number") is None, v.get("number") or 0)):
        for claim in v.get("claims") or []:
            row = [v.get("number", ""), v.get("mistake", ""), claim.get("says", ""), claim.get("source", ""),
                   claim.get("outcome", ""), _effect(claim), _num(claim.get("p")), claim.get("n", "")]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def _claim_list(verdict: dict, config: dict) -> str:
    items = [f"- {claim_line(claim, config)}".replace("`", "'") for claim in verdict.get("claims") or []]
    diverged = verdict.get("diverged") or {}
    items += [f"- {variant} diverged: {_cell(steps)}" for variant, steps in diverged.items() if steps]
    return "\n".join(items)


def panel_grid(group: str, project: str, entity: str | None, n_layers: int | None = None,
               grid: bool = False) -> wr.PanelGrid:
    """The plots for one mistake: its runs only, grouped into correct vs broken (and, on a learning-rate grid, by
    rate too: a mean over the rates would be a curve no run followed)."""
    keys = [GROUP_KEY, "peak_lr"] if grid else [GROUP_KEY]
    runset = wr.Runset(entity=entity or "", project=project, name=group, filters=group_filter(group),
                       groupby=[f"config.{key}" for key in keys])
    grouped = dict(groupby=wr.Config(GROUP_KEY), groupby_aggfunc="mean", groupby_rangefunc="stddev")
    panels = [
        wr.LinePlot(title=f"{m} vs step", x="Step", y=[m], layout=wr.Layout(x=8 * i, y=0, w=8, h=6), **grouped)
        for i, m in enumerate(LOSS_METRICS)
    ]
    panels.append(wr.LinePlot(title="grad_norm (global) vs step", x="Step", y=[GRAD_METRIC], log_y=True,
                              layout=wr.Layout(x=16, y=0, w=8, h=6), **grouped))
    panels.append(wr.LinePlot(title="per-layer grad norm vs step", x="Step", y=layer_grad_metrics(n_layers),
                              metric_regex=LAYER_GRAD_REGEX, log_y=True, layout=wr.Layout(x=0, y=6, w=24, h=8),
                              **grouped))
    return wr.PanelGrid(runsets=[runset], panels=panels)


def section_heading(verdict: dict) -> str:
    return f"Mistake {verdict.get('number', '?')}: {verdict.get('mistake', '?')} — {verdict.get('verdict', '?')}"


def build_report(entries: list[tuple[dict, str, dict]], project: str, entity: str | None, *,
                 n_layers: int | None = None) -> wr.Report:
    """A report from (verdict dict, W&B group, run config) triples; the config gives the data's units. Offline:
    nothing here touches the network.

    `entity=None` falls back to $WANDB_ENTITY, else stays empty (W&B's own default would ask the server);
    `publish` fills it in. `n_layers` (or a verdict's own "n_layers") names the per-block grad-norm keys."""
    entity = entity or os.environ.get("WANDB_ENTITY") or ""
    blocks: list = [wr.MarkdownBlock(text=verdict_table([v for v, _, _ in entries]))]
    for verdict, group, config in entries:
        blocks.append(wr.H2(text=section_heading(verdict)))
        text = f"**Claim:** {verdict.get('claim', '')}  \n**W&B group:** `{group}`"
        checks = _claim_list(verdict, config)
        blocks.append(wr.MarkdownBlock(text=text + ("\n\n" + checks if checks else "")))
        blocks.append(panel_grid(group, project, entity, verdict.get("n_layers", n_layers),
                                 grid="learning_rates" in verdict))
    return wr.Report(project=project, entity=entity, title=TITLE, description=DESCRIPTION, blocks=blocks,
                     width="fluid")


def has_api_key() -> bool:
    """Whether a W&B API key is configured locally ($WANDB_API_KEY, netrc or W&B settings); without one,
    nothing touches the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import wandb

    try:  # loads a configured key without checking it with the server; False, not a prompt, without one
        return wandb.login(prompt=False, verify=False)
    except Exception:  # a malformed netrc means: no usable key
        return False


def publish(report: wr.Report) -> str | None:
    """Save the report to W&B and return its URL; None (and no network access) without an API key or
    when WANDB_MODE is offline/disabled."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return None
    if not has_api_key():
        return None
    if not report.entity:
        import wandb

        report.entity = wandb.Api().default_entity
    for block in report.blocks:
        if isinstance(block, wr.PanelGrid):
            for runset in block.runsets:
                runset.entity = runset.entity or report.entity
    report.save()
    return report.url


def offline_instructions(run_dirs: list[str]) -> str:
    """How to publish later from a machine with a key: sync the offline runs, then rebuild the report."""
    syncs = [f"wandb sync {str(d).rstrip('/')}/*/wandb/offline-run-*" for d in run_dirs]
    return "\n".join([*syncs, "python -m ablations.report --wandb"])
