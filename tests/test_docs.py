"""The documentation's promises: its Python examples run, every relative link points to a file (and heading) that
exists, the README stays a front door, and CI runs the README's test command."""
import re
import sys
import unicodedata

import pytest
from conftest import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md"]
MAX_README_LINES = 250


def examples(path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def example(path, first_line: str) -> str:
    (found,) = [text for text in examples(path) if text.startswith(first_line)]
    return found


def run_example(path, first_line: str) -> None:
    exec(compile(example(path, first_line), str(path.relative_to(ROOT)), "exec"), {})


@pytest.mark.slow  # compiles a GPT and decodes with and without the cache: tens of seconds
def test_python_api_example_runs(capsys):
    run_example(ROOT / "docs" / "python-api.md", "import jax\n")
    printed = capsys.readouterr().out.split()
    assert printed[:2] == ["(2,", "16,"] and float(printed[-1]) > 1e-3  # stale cache differs from recompute


def test_catalogue_example_runs(capsys):
    run_example(ROOT / "docs" / "python-api.md", "from ablations import catalogue\n")
    printed = capsys.readouterr().out.splitlines()
    from ablations import catalogue

    assert len(printed) == len(catalogue.MISTAKES) + 1 and printed[0].startswith("1 post_norm ('correct', 'broken')")


@pytest.mark.slow  # audits a model: tens of seconds
def test_python_api_audit_example_detects_post_norm(capsys):
    run_example(ROOT / "docs" / "python-api.md", "from ablations.audit.adapters import lab_gpt\n")
    assert capsys.readouterr().out.strip() == "['post_norm']"


@pytest.mark.slow  # audits a model: tens of seconds
def test_own_model_audit_example_audits_clear_on_the_detectors_it_offers(tmp_path, monkeypatch):
    from ablations import catalogue

    (tmp_path / "my_model.py").write_text(example(ROOT / "docs" / "auditing-a-model.md", "# my_model.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    results = catalogue.audit(__import__("my_model").make)
    sys.modules.pop("my_model")
    uncalibrated = {name for name, d in catalogue.DETECTORS.items() if d is None or d.threshold is None}
    assert {r["status"] for r in results if r["mistake"] not in uncalibrated} == {"clear", "not applicable"}
    assert [r["mistake"] for r in results if r["status"] == "not applicable"] == [
        "position_overflow", "tiny_vocab", "stale_kv_cache"]  # the page says which three it cannot see


def prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = heading.strip().lower().replace("`", "")
    kept = "".join(c for c in heading if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", re.sub(r"^```.*?^```", "", path.read_text(),
                                                                flags=re.S | re.M), flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_and_heading_that_exist(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(page.read_text())):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.relative_to(ROOT)}")
    assert not broken, broken


def test_the_readme_is_a_front_door_that_links_every_docs_page():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    docs = ROOT / "docs"
    linked = set(re.findall(r"\]\(docs/([^)#\s]+)", text))
    assert {p.name for p in docs.glob("*.md")} <= linked, sorted({p.name for p in docs.glob("*.md")} - linked)


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    install, test = commands[0].strip(), commands[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[test]"' in ci and 'pip install -e ".[test]"' in install
    assert test.split("&& ")[-1] in ci and "python -m ablations.run mistake=no_residual" in install
