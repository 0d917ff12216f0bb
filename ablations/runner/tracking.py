"""Where metrics go: a JSONL file per variant (always) and one W&B run per (variant, seed), or per (variant, seed,
learning rate) on a learning-rate grid."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from ablations.runner.layout import metrics_file

MODES = ("auto", "online", "offline", "disabled")


def wandb_mode(requested: str) -> str:
    """auto: online when an API key is present, offline otherwise (sync later with `wandb sync`)."""
    if requested not in MODES:
        raise ValueError(f"wandb.mode={requested!r}; valid choices: {', '.join(MODES)}")
    if requested != "auto":
        return requested
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def usable_mode(requested: str) -> str:
    """The resolved mode, checked once per process: a rejected key or an unreachable server falls back
    to offline with a warning (sync later with `wandb sync`), and training goes on."""
    mode = wandb_mode(requested)
    if mode != "online":
        return mode
    import wandb

    try:
        wandb.login(key=os.environ.get("WANDB_API_KEY"), verify=True, timeout=15, prompt=False)
        return "online"
    except Exception as error:  # wandb raises its own error types for auth and network failures
        warnings.warn(f"W&B online is unavailable ({type(error).__name__}); logging offline instead", stacklevel=2)
        return "offline"


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a torn last line (a write cut by a kill) is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def member_of(row: dict):
    """The member of a variant a log row belongs to: its seed, and its peak learning rate on a grid."""
    return (row["seed"], row["peak_lr"]) if "peak_lr" in row else row["seed"]


def member_name(member) -> str:
    return f"s{member[0]}-lr{member[1]:g}" if isinstance(member, tuple) else f"s{member}"


class MetricsSink:
    """Appends rows to `<variant_dir>/metrics.jsonl`, the source of truth, and mirrors them to W&B: one run per
    member (a seed, or a seed at one learning rate of a grid: `member_of`). Online, rows go to W&B as they come
    and a resumed run continues the same W&B run (its id). Offline, where W&B cannot resume a run, the mirror is
    written once, from the JSONL, when the variant finishes: a run killed and resumed any number of times still
    leaves one offline run per member."""

    def __init__(self, variant_dir: Path, members, *, mode: str, project: str, entity, group: str, config: dict):
        self.path = metrics_file(variant_dir)
        self.members, self.mode, self.runs, self.summaries = list(members), mode, {}, {}
        self.settings = dict(project=project, entity=entity, group=group, resume="allow", dir=str(variant_dir),
                             config=config, reinit="create_new")
        if mode == "online":
            self.runs = {member: self.start(member) for member in self.members}

    def start(self, member):
        import wandb

        run_id = f"{self.settings['group']}-{self.settings['config']['variant']}-{member_name(member)}"
        which = {"seed": member[0], "peak_lr": member[1]} if isinstance(member, tuple) else {"seed": member}
        settings = dict(self.settings, name=run_id, id=run_id, mode=self.mode,
                        config={**self.settings["config"], **which}, settings=wandb.Settings(silent=True))
        try:
            return wandb.init(**settings)
        except Exception as error:  # a bad key or unreachable server must not stop the science
            warnings.warn(f"W&B {self.mode} failed ({type(error).__name__}); falling back to offline", stacklevel=2)
            return wandb.init(**{**settings, "mode": "offline"})

    def truncate_after(self, step: int) -> None:
        """On resume: keep only rows up to the restored checkpoint's step. Online, a W&B run that begins here
        rather than resuming its own (a study point starting from another point's training, a run begun
        offline) is given the kept rows first, so that it holds the whole history too."""
        kept = [row for row in read_jsonl(self.path) if row["step"] <= step]
        self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))
        for member, run in self.runs.items():
            if not run.resumed:
                for row in (r for r in kept if member_of(r) == member):
                    run.log(values_of(row), step=row["step"])

    def log(self, rows: list[dict]) -> None:
        with self.path.open("a") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
            f.flush()
            os.fsync(f.fileno())
        for row in rows:
            if member_of(row) in self.runs:
                self.runs[member_of(row)].log(values_of(row), step=row["step"])

    def summarize(self, member, values: dict) -> None:
        self.summaries[member] = {**self.summaries.get(member, {}), **values}

    def close(self) -> None:
        """Finish the W&B runs; offline, first write each member's run from the JSONL."""
        if self.mode == "offline":
            rows = read_jsonl(self.path)
            for member in self.members:
                self.runs[member] = self.start(member)
                for row in rows:
                    if member_of(row) == member:
                        self.runs[member].log(values_of(row), step=row["step"])
        for member, run in self.runs.items():
            run.summary.update(self.summaries.get(member, {}))
            run.finish()


class NullSink:
    """Where the rows of a process other than 0 of a multi-host run go: nowhere (process 0 logs them)."""

    def truncate_after(self, step: int) -> None:
        pass

    def log(self, rows: list[dict]) -> None:
        pass

    def summarize(self, member, values: dict) -> None:
        pass

    def close(self) -> None:
        pass


def values_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("seed", "peak_lr", "variant", "step")}
