"""The setup block that opens a report: what its runs trained on, with what, how, on which machine and commit, how
long it took and the command that regenerates it, read from the runs' own files (config.json, environment.json,
timing.json, measurements.json) so that a report can be read alone. A value that differs between runs is listed
with the mistakes that ran it."""
from __future__ import annotations

import collections
import shlex
from pathlib import Path

from ablations.runner import layout
from ablations.science.verdict import entropy_unit

def data_name(data: dict) -> str:
    if data["source"] == "synthetic":
        return (f"synthetic copy task (alphabet {data['alphabet_size']}, copied spans of {data['span']}, Zipf "
                f"exponent {data['zipf_exponent']}, {data['n_blocks']:,} blocks; its entropy floor is exact)")
    return {"shakespeare": "tiny Shakespeare (1.1 MB, shipped in data/)", "tfds": f"TFDS {data['tfds_name']}",
            "text": f"text file {data['path']}"}.get(data["source"], data["source"])


def data_short_name(data: dict) -> str:
    """The data in a few words, as a figure's title names it."""
    return {"synthetic": "the synthetic copy task", "shakespeare": "tiny Shakespeare",
            "tfds": f"TFDS {data.get('tfds_name')}", "text": f"the text file {Path(str(data.get('path'))).name}"
            }.get(data["source"], data["source"])


def best_against_best(config: dict) -> bool:
    """Whether a run compares each variant at its own best learning rate (comparison=best_lr: a grid run, or the
    longer budget that follows one), not all at one rate."""
    return bool(config["train"].get("lr_grid")) or bool(config.get("follows"))


def suite_subject(configs: dict[str, dict]) -> str:
    """What a suite's figures show, from its runs' configs: 'All mistakes on tiny Shakespeare, each variant at its
    best learning rate' (a value that differs between runs is named with each of its values)."""
    data = " and ".join(dict.fromkeys(data_short_name(c["data"]) for c in configs.values()))
    best = {best_against_best(c) for c in configs.values()}
    comparison = ("each variant at its best learning rate" if best == {True} else "at one learning rate"
                  if best == {False} else "some at one learning rate, some each variant at its best")
    return f"All mistakes on {data}, {comparison}"


def with_added_keys(config: dict) -> dict:
    """A run's config with the keys added to the lab since, at the values that did what its code did then."""
    from ablations.runner.identity import identity

    return {**config, **identity(config)}


def run_record(run: Path) -> dict:
    """A run's config (with the keys added since) and, under "environment", what produced it."""
    environment = layout.read(run, layout.ENVIRONMENT) if (run / layout.ENVIRONMENT).exists() else {}
    return {**with_added_keys(layout.read(run, layout.CONFIG)), "environment": environment}


def runs_behind(run: Path) -> list[Path]:
    """A run and the grid run its longer budget follows, if any."""
    follows = layout.read(run, layout.CONFIG).get("follows")
    return [run.parent / follows, run] if follows and (run.parent / follows).is_dir() else [run]


def varying(by_mistake: dict[str, object]) -> str:
    """One value, or each value with the mistakes that ran it (the most common first, as 'the others')."""
    groups = collections.defaultdict(list)
    for name, value in by_mistake.items():
        groups[str(value)].append(name)
    if len(groups) == 1:
        return next(iter(groups))
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    return "; ".join([f"{value} ({', '.join(names)})" for value, names in ordered[1:]] +
                     [f"{ordered[0][0]} (the others)"])


def learning_rate(grid_config: dict, config: dict) -> str:
    """The grid and the rule that chose from it (grid_config: the grid run's), and, on a longer budget, the rates it
    chose; a plain run's one rate."""
    grid = grid_config["train"].get("lr_grid") or []
    chosen = {v: s["train.lr"] for v, s in (config.get("variants") or {}).items() if "train.lr" in s}
    if not grid:
        return f"{config['train']['lr']:g}"
    text = f"grid {', '.join(f'{r:g}' for r in grid)}"
    return text + (", chosen " + ", ".join(f"{v} {r:g}" for v, r in chosen.items()) if chosen else "")


def runs_count(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def presets(configs: dict[str, dict]) -> list[str]:
    """The preset overrides that reproduce these runs' data and comparison (a run that predates recording its
    command line)."""
    sources = {c["data"]["source"] for c in configs.values()}
    grids = {best_against_best(c) for c in configs.values()}
    return (["data=shakespeare"] if sources == {"shakespeare"} else []) + \
        (["comparison=best_lr"] if grids == {True} else [])


def command(environment: dict) -> str | None:
    argv = environment.get("argv")
    if not argv:
        return None
    module = "ablations." + Path(argv[0]).stem if argv[0].endswith(".py") else argv[0]
    return shlex.join(["python", "-m", module, *argv[1:]])


def here(command_line: str, results_dir: Path) -> str:
    """A recorded command as it regenerates this report from the repository root: a results_dir given as an
    absolute path to this report's directory (a run made from a worktree) is written as the report names it."""
    words = shlex.split(command_line)
    same = lambda w: w.startswith("results_dir=") and Path(w[12:]).is_absolute() and (  # noqa: E731
        Path(w[12:]).resolve() == Path(results_dir).resolve())
    return shlex.join([f"results_dir={results_dir}" if same(w) else w for w in words])


def protocol_of(record: dict, current: dict) -> tuple[str, str | None]:
    """(what a run is evidence of, why it is not what it was run as), from its run_record. A run under a declared
    protocol counts as exploratory if the protocol's declaration or the mistake's catalogue entry changed since
    (its recorded hash is not today's; `current`: (protocol, mistake) -> hash), or if its tree had uncommitted
    changes."""
    name = record.get("protocol") or "exploratory"
    if name == "exploratory":
        return name, None
    today = current.get((name, record["mistake"]))
    if today != record.get("protocol_hash"):
        return "exploratory", (f"run under protocol {name} (hash {record.get('protocol_hash')}), which has changed "
                               f"since (today {today}): not confirmatory")
    if (record.get("environment") or {}).get("git_dirty") is not False:
        return "exploratory", f"run under protocol {name} from a tree with uncommitted changes: not confirmatory"
    return name, None


def evidence_label(configs: dict[str, dict], current: dict) -> str:
    """The report's label: 'exploratory', one protocol's name, or 'mixed: ...'."""
    kinds = collections.Counter(protocol_of(c, current)[0] for c in configs.values())
    if len(kinds) == 1:
        return next(iter(kinds))
    return "mixed: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items())


def protocol_line(configs: dict[str, dict], current: dict, protocols: dict) -> str:
    label = evidence_label(configs, current)
    refused = [f"{name}: {why}" for name, c in configs.items() if (why := protocol_of(c, current)[1])]
    commits = {(c.get("environment") or {}).get("git_commit") for c in configs.values()
               if protocol_of(c, current)[0] != "exploratory"}
    if len(commits) > 1:
        refused.append(f"the confirmatory runs come from {len(commits)} commits, not one")
    if label == "exploratory" and not refused:
        return ("exploratory: the settings were chosen while the lab was designed, and no protocol was declared "
                "before these runs.")
    describe = lambda p: (f"{p.question} First seed {p.first_seed}; hash per mistake recorded in each run's "
                          "config.json")
    if label in protocols:  # every run counts under one protocol: how much of its plan this report holds
        p = protocols[label]
        head = (f"{label}, declared before these runs ({describe(p)}); {len(configs)} of the {len(p.seeds)} "
                "mistakes it plans are here, and the Holm families below cover those only")
        return "; ".join([head, *refused]) + "."
    declared = [f"{p.name} ({describe(p)})" for name, p in protocols.items()
                if f" {name}" in label]  # "mixed: 2 confirmatory, ..."
    return "; ".join([label, *declared, *refused]) + "."


def setup_lines(results_dir: Path, runs: dict[str, Path], configs: dict[str, dict], current: dict,
                protocols: dict) -> list[str]:
    """The '## Setup' section of a report over `runs` (mistake -> its reported run; `configs`: their run_records);
    `current`: today's hash of each (protocol, mistake), `protocols`: the declared protocols by name."""
    if not runs:
        return []
    behind = {name: runs_behind(run) for name, run in runs.items()}
    recorded = {name: [layout.read(r, layout.ENVIRONMENT) for r in rs if (r / layout.ENVIRONMENT).exists()]
                for name, rs in behind.items()}
    environments = [e for es in recorded.values() for e in es]
    seconds = [layout.read(r, layout.TIMING).get("seconds") for rs in behind.values() for r in rs
               if (r / layout.TIMING).exists()]
    params = {}
    for name, run in runs.items():
        correct = layout.read(run, layout.MEASUREMENTS)["correct"]
        params[name] = f"{correct[0]['n_params']:,}" if correct and "n_params" in correct[0] else "not recorded"
    per = lambda read: varying({n: read(c) for n, c in configs.items()})  # noqa: E731
    key = lambda section, name: per(lambda c: c[section].get(name))  # noqa: E731
    steps = {name: f"{configs[name]['steps']:,} steps" + "".join(
        f" (the grid run it follows: {layout.read(r, layout.CONFIG)['steps']:,})" for r in rs[:-1])
        for name, rs in behind.items()}
    rates = {name: learning_rate(layout.read(rs[0], layout.CONFIG), configs[name]) for name, rs in behind.items()}
    seeds = lambda c: f"{c['seeds']} (seeds {c['seed']}–{c['seed'] + c['seeds'] - 1})"  # noqa: E731
    commits = collections.Counter((e.get("git_commit") or "unknown")[:7] + (" (dirty)" if e.get("git_dirty") else "")
                                  for e in environments)
    machine = lambda e: ", ".join(  # noqa: E731
        [e.get("cpu_model") or "CPU model not recorded"] + ([f"{e['cpu_count']} cores"] if e.get("cpu_count") else []) +
        [f"{e.get('platform')} ({', '.join(e.get('devices') or [])})", f"jax {e.get('jax')}"])
    machines = {name: " and ".join(sorted({machine(e) for e in es})) for name, es in recorded.items() if es}
    commands = sorted({here(c, results_dir) for e in environments if (c := command(e))})
    total = sum(s for s in seconds if s)
    lines = [
        "## Setup", "",
        f"- **Data**: {per(lambda c: data_name(c['data']))}; tokenizer {per(lambda c: c['data']['tokenizer'])}; "
        f"validation {per(lambda c: format(c['data']['val_fraction'], '.0%'))} of the data; losses in "
        f"{per(entropy_unit)}.",
        f"- **Model**: layers {key('model', 'n_layers')}; d_model {key('model', 'd_model')}; heads "
        f"{key('model', 'n_heads')}; FFN {key('model', 'ffn_mult')}·d_model; positions {key('model', 'position')}; "
        f"{key('model', 'dtype')}; attention {key('model', 'attention')}; parameters of the correct model "
        f"{varying(params)}.",
        f"- **Training**: {varying(steps)}; batch {key('train', 'batch_size')} × sequence length "
        f"{key('train', 'seq_len')}; AdamW (weight decay {key('train', 'weight_decay')}, gradient clip "
        f"{key('train', 'grad_clip')}); linear warmup (steps) {key('train', 'warmup')}, then cosine decay to a "
        f"tenth; learning rate {varying(rates)}" + (
            f"; on a grid each variant is compared at its own best: the lowest mean final loss on the selection "
            f"split (the last {selection:.0%} of validation; the claims are measured on the rest)"
            if (selection := max(layout.read(rs[0], layout.CONFIG)["data"].get("selection_share", 0)
                                 for rs in behind.values())) else "") + ".",
        f"- **Seeds**: {per(seeds)} per variant, paired (seed i of every variant shares its initialisation and "
        "batches).",
        f"- **Protocol**: {protocol_line(configs, current, protocols)}",
        f"- **Commit**: {', '.join(f'{c} ({runs_count(n)})' for c, n in commits.items()) or 'not recorded'}.",
        f"- **Machine**: {varying(machines) if machines else 'not recorded'}.",
        "- **Wall time**: " + (f"{total / 3600:.1f} h over {len(seconds)} of {sum(map(len, behind.values()))} runs "
                               "(each run's last training session, timing.json)." if seconds else "not recorded."),
        "- **Regenerate**: " + ("; ".join(f"`{c}`" for c in commands) if commands else
                               "the runs predate the recording of their command: "
                               f"`{shlex.join(['python', '-m', 'ablations.run', 'mistake=all', *presets(configs)])} "
                               f"results_dir={results_dir}`") +
        f", then `python -m ablations.report --results {results_dir}`.",
        ""]
    return lines
