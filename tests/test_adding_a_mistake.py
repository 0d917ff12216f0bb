"""docs/adding-a-mistake.md is true: its edits, applied to a copy of the code, add a working 12th mistake.

The doc's convention, which this test reads:
- `<!-- walk-through: PATH -->` on the line right before a fenced code block marks that block as an edit of PATH
  (relative to the repository root).
- A ```diff block is one hunk of a unified diff without its header: lines starting with " " are context, "-"
  removed, "+" added (an empty line is a blank context line). The hunk's old side (its context and "-" lines, in
  order) must occur exactly once, as consecutive lines, in the file as it is at that point; it is replaced by
  the new side (context and "+" lines). Several blocks may edit one file; they apply in the doc's order.
- A ```python block is the whole text of a new file; PATH must not exist yet.
- `<!-- walk-through: output of python -m ablations.check -->` marks the audit's promised table lines (header and
  the new mistake's row), checked against the real output.

The copy holds the repository's `ablations/`, `model/` and `data/` (no `results/`, so no reference comparison);
every command runs with the copy as working directory and first on PYTHONPATH, in a subprocess, as a
contributor would run it."""
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "adding-a-mistake.md"
COPIED = ("ablations", "model", "data")
NAME, NUMBER = "unscaled_attention", 12
EDITED = {"model/mistakes.py", "model/gpt.py", f"ablations/catalogue/m{NUMBER}_{NAME}.py"}  # the doc's three
TINY = ["steps=4", "seeds=2", "train.warmup=1", "train.log_every=2", "train.eval_every=2", "train.ckpt_every=2",
        "train.batch_size=4", "train.seq_len=32", "train.eval_windows=8", "model.d_model=16", "model.n_heads=2",
        "model.n_layers=2", "data.n_blocks=300", "wandb.mode=disabled"]
MARKED = re.compile(r"^[ \t]*<!-- walk-through: (.+?) -->[ \t]*\n(?:[ \t]*\n)*([ \t]*)```(\w*)\n(.*?)^[ \t]*```[ \t]*$",
                    flags=re.S | re.M)
OUTPUT = "output of python -m ablations.check"


def marked_blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """(target, language, lines) of every marked block, in order; the fence's indentation is removed."""
    blocks = []
    for target, indent, language, body in MARKED.findall(text):
        lines = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in body.splitlines()]
        blocks.append((target.strip(), language, lines))
    return blocks


def sides(hunk: list[str]) -> tuple[list[str], list[str]]:
    old, new = [], []
    for line in hunk:
        mark, rest = (line[:1], line[1:]) if line else (" ", "")
        if mark not in " -+":
            raise ValueError(f"hunk line {line!r} starts with neither ' ', '-' nor '+'")
        if mark in " -":
            old.append(rest)
        if mark in " +":
            new.append(rest)
    return old, new


def apply_hunk(text: str, hunk: list[str], where: str) -> str:
    old, new = sides(hunk)
    lines = text.splitlines()
    starts = [i for i in range(len(lines) - len(old) + 1) if lines[i:i + len(old)] == old]
    assert len(starts) == 1, f"{where}: the hunk's old side occurs {len(starts)} times (must be once):\n" + \
        "\n".join(old)
    i = starts[0]
    return "\n".join(lines[:i] + new + lines[i + len(old):]) + ("\n" if text.endswith("\n") else "")


def apply_walk_through(copy: Path, blocks) -> set[str]:
    """Apply the doc's edit blocks to the copy; the paths they name."""
    named = set()
    for target, language, lines in blocks:
        if target == OUTPUT:
            continue
        path = copy / target
        if language == "diff":
            path.write_text(apply_hunk(path.read_text(), lines, target))
        elif language == "python":
            assert not path.exists(), f"{target} is given whole but exists already"
            path.write_text("\n".join(lines) + "\n")
        else:
            raise AssertionError(f"block for {target}: language {language!r}, expected diff or python")
        named.add(target)
    return named


def changed_files(original: Path, copy: Path, rel: str = "") -> set[str]:
    """Files that differ, or exist on one side only, between original/rel and copy/rel (recursively)."""
    cmp = filecmp.dircmp(original / rel, copy / rel, ignore=["__pycache__"])
    found = {f"{rel}/{name}".lstrip("/") for name in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files}
    filecmp.clear_cache()
    for name in cmp.common_files:  # dircmp compares by stat signature; compare contents to be sure
        if not filecmp.cmp(original / rel / name, copy / rel / name, shallow=False):
            found.add(f"{rel}/{name}".lstrip("/"))
    for sub in cmp.common_dirs:
        found |= changed_files(original, copy, f"{rel}/{sub}".lstrip("/"))
    return found


def run_in(copy: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    env.update({"WANDB_SILENT": "true", "PYTHONPATH": os.pathsep.join([str(copy), env.get("PYTHONPATH", "")])})
    result = subprocess.run([sys.executable, *args], cwd=copy, capture_output=True, text=True, env=env,
                            timeout=HANG_GUARD_S)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
                             f"stderr:\n{result.stderr[-3000:]}")
    return result


def table_rows(text: str) -> list[list[str]]:
    """The audit table's numbered rows, split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if re.match(r"\s*\d+\s{2,}", line)]


INSPECT = f"""
import json
from ablations import catalogue
from ablations.audit.calibration import calibration_models
from ablations.runner import config
import ablations, model
catalogue.register_config()
spec = catalogue.lookup({NAME!r})
print(json.dumps({{
    "files": [ablations.__file__, model.__file__],
    "count": len(catalogue.MISTAKES), "switches": list(model.names_of_all()),
    "names": [s.name for s in catalogue.MISTAKES], "numbers": [s.number for s in catalogue.MISTAKES],
    "options": list(config.groups()["mistake"]), "detectors": list(catalogue.DETECTORS),
    "calibration": list(calibration_models(catalogue.DETECTORS)),
    "detector": repr(spec.detector), "studies": [s.name for s in catalogue.STUDIES if s.mistake == spec.name],
    "claims": [{{"says": c.says, "source": c.source, "metric": c.rule.metric, "margin": c.rule.margin,
                "unit": c.rule.unit}} for c in spec.claims],
}}))
"""


@pytest.mark.slow  # copies the code and runs four commands in subprocesses (about a minute on 2 cores)
def test_the_walk_through_adds_a_twelfth_mistake_in_three_files(tmp_path):
    text = DOC.read_text()
    blocks = marked_blocks(text)
    copy = tmp_path / "repo"
    for name in COPIED:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    assert not set().union(*(changed_files(ROOT, copy, name) for name in COPIED))  # a faithful copy to start from

    named = apply_walk_through(copy, blocks)
    changed = set().union(*(changed_files(ROOT, copy, name) for name in COPIED))
    assert named == EDITED, named
    assert changed == EDITED, changed  # exactly the three files the doc names, and nothing else
    assert all(f"`{path}`" in text for path in EDITED) and "**three files**" in text
    assert f"# Mistake {NUMBER}:" in (copy / "model" / "gpt.py").read_text()  # the tagged line

    # the catalogue, the switches, the runner's options, the audit and the calibration all count 12
    facts = json.loads(run_in(copy, "-c", INSPECT).stdout)
    assert all(Path(f).resolve().is_relative_to(copy.resolve()) for f in facts["files"]), facts["files"]
    assert facts["count"] == len(facts["switches"]) == NUMBER
    assert facts["names"] == facts["switches"] == facts["detectors"] and facts["names"][-1] == NAME
    assert facts["numbers"] == list(range(1, NUMBER + 1))
    assert facts["options"] == ["all", *facts["names"]]
    assert facts["calibration"][-1] == NAME and len(facts["calibration"]) == NUMBER + 2  # + correct, sinusoidal
    assert facts["detector"] == "None" and facts["studies"] == [f"{NAME}_head_dim"]
    claims = facts["claims"]
    assert claims == [{"says": claims[0]["says"], "source": "lab", "metric": "val_loss", "margin": 0.01,
                       "unit": "nats/token"}]
    assert claims[0]["says"] in text

    # 1. the dry run: exit 0, a run directory
    dry = run_in(copy, "-m", "ablations.run", f"mistake={NAME}", "dry_run=true")
    assert re.search(rf"dry run: mistake={NAME} seeds=\d+ steps=\d+ -> \S*{NAME}/[0-9a-f]+", dry.stdout), dry.stdout

    # 2. a tiny real run: exit 0, verdict.json with the doc's claim, decided by its rule; the report's row 12
    results = tmp_path / "results"
    run_in(copy, "-m", "ablations.run", f"mistake={NAME}", *TINY, f"results_dir={results}")
    (verdict_path,) = (results / NAME).glob("*/verdict.json")
    verdict = json.loads(verdict_path.read_text())
    assert verdict["mistake"] == NAME and verdict["number"] == NUMBER
    (claim,) = verdict["claims"]
    assert claim["says"] == claims[0]["says"] and claim["source"] == "lab" and claim["metric"] == "val_loss"
    assert claim["margin"] == 0.01 and claim["unit"] == "nats/token" and claim["n"] == 2
    assert claim["kind"] == "statistical"
    assert claim["outcome"] in ("reproduced", "opposite", "no effect", "inconclusive")
    run_in(copy, "-m", "ablations.report", "--results", str(results))
    report = (results / "REPORT.md").read_text()
    assert f"| {NUMBER} | {NAME} | {claim['says']} | lab |" in report and f"- **{NUMBER}. {NAME}**" in report

    # 3. the audit: exit 0 or 1, the new mistake the 12th row with the status the doc promises
    audit = run_in(copy, "-m", "ablations.check", "--mistakes", NAME, "d_model=16", check=False)
    assert audit.returncode in (0, 1), audit.stderr
    rows = table_rows(audit.stdout)
    assert [row[1] for row in rows] == facts["names"], audit.stdout
    (promised,) = [lines for target, _, lines in blocks if target == OUTPUT]
    (promised_row,) = [row for row in table_rows("\n".join(promised)) if row[1] == NAME]
    assert rows[-1][:3] == promised_row[:3] == [str(NUMBER), NAME, "not calibrated"], (rows[-1], promised_row)
    assert rows[-1][-1] == promised_row[-1]  # the why
    (promised_summary,) = [line.strip() for line in promised if f"of {NUMBER} detected" in line]
    assert promised_summary in audit.stdout, audit.stdout
