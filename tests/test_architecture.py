"""The house's shape: dependencies run one way (commands -> catalogue -> the rooms -> model/, data/), and every
table of mistakes is collected from the catalogue, which agrees with the model's switches."""
import ast
from pathlib import Path

from conftest import ROOT

from ablations import catalogue
from model import Mistakes, names_of_all

ROOMS = ("science", "runner", "audit", "reporting", "perf")
# Which rooms each room may import: acyclic, and none imports the catalogue or a command.
ALLOWED = {"science": set(), "runner": {"science"}, "audit": {"science", "runner"},
           "reporting": {"science", "runner"}, "perf": {"runner"}}


def layer(module: str) -> str | None:
    """The layer of a module of this repository (None: a library)."""
    parts = module.split(".")
    if parts[0] in ("model", "data"):
        return parts[0]
    if parts[0] != "ablations":
        return None
    if len(parts) == 1 or parts[1] in ("errors", "paths"):
        return "base"
    if parts[1] in ROOMS or parts[1] in ("catalogue", "conf"):
        return parts[1]
    return "commands"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def edges() -> list[tuple[str, str, str]]:
    """(importing file, its layer, imported layer) for every import between this repository's layers."""
    out = []
    for path in sorted([*(ROOT / "ablations").rglob("*.py"), *(ROOT / "model").rglob("*.py"),
                        *(ROOT / "data").rglob("*.py")]):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        mine = layer(module)
        for name in imports(path):
            theirs = layer(name)
            if theirs is not None and theirs != mine and not (theirs == "ablations" or name == "ablations"):
                out.append((str(path.relative_to(ROOT)), mine, theirs))
    return out


def test_dependencies_run_one_way():
    wrong = []
    for path, mine, theirs in edges():
        if theirs == "base" and mine not in ("model", "data"):
            continue
        if mine in ("model", "data"):
            ok = theirs in ("model", "data")
        elif mine in ROOMS:
            ok = theirs in ALLOWED[mine] or theirs in ("model", "data")
        elif mine == "catalogue":
            ok = theirs in ROOMS or theirs in ("model", "data")
        else:  # commands and their shared helper may import anything
            ok = True
        if not ok:
            wrong.append(f"{path} ({mine}) imports {theirs}")
    assert not wrong, wrong
    assert {(mine, theirs) for _, mine, theirs in edges()} >= {("commands", "catalogue"), ("catalogue", "audit")}


def test_nothing_the_lab_installs_imports_its_tests():
    """A command that imported tests/ would work only from a checkout's root (the calibration's zoo lives in
    ablations/audit/zoo for that reason)."""
    sources = sorted([*(ROOT / "ablations").rglob("*.py"), *(ROOT / "model").rglob("*.py"),
                      *(ROOT / "data").rglob("*.py")])
    wrong = [f"{path.relative_to(ROOT)} imports {name}" for path in sources for name in imports(path)
             if name.split(".")[0] in ("tests", "conftest")]
    assert not wrong, wrong
    assert len(sources) > 50


def test_the_catalogue_and_the_model_switches_name_the_same_mistakes():
    assert tuple(spec.name for spec in catalogue.MISTAKES) == names_of_all()
    assert [spec.number for spec in catalogue.MISTAKES] == list(range(1, len(names_of_all()) + 1))
    assert all(Mistakes.of(spec.name).active() == (spec.name,) for spec in catalogue.MISTAKES)
    assert list(catalogue.DETECTORS) == list(catalogue.BY_NAME)
    assert all(study.mistake in catalogue.BY_NAME for study in catalogue.STUDIES)
    assert len({study.name for study in catalogue.STUDIES}) == len(catalogue.STUDIES)


def test_each_catalogue_file_declares_its_own_mistake():
    for path in sorted((ROOT / "ablations" / "catalogue").glob("m[0-9][0-9]_*.py")):
        number, name = path.stem[1:3], path.stem[4:]
        spec = catalogue.lookup(name)
        assert spec.number == int(number), path
