"""The README's promises: its Python examples run, and CI runs its test command."""
import re
import sys

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def example(first_line: str) -> str:
    (found,) = [text for text in EXAMPLES if text.startswith(first_line)]
    return found


@pytest.mark.slow  # compiles and trains or audits models: tens of seconds
def test_python_api_example_runs(capsys):
    exec(compile(example("import jax\n"), "README.md", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[:2] == ["(2,", "16,"] and float(printed[-1]) > 1e-3  # stale cache differs from recompute


@pytest.mark.slow  # compiles and trains or audits models: tens of seconds
def test_own_model_audit_example_audits_clear_on_the_probes_it_offers(tmp_path, monkeypatch):
    from ablations import catalogue

    (tmp_path / "my_model.py").write_text(example("# my_model.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    results = catalogue.audit(__import__("my_model").make)
    sys.modules.pop("my_model")
    assert {r["status"] for r in results} == {"clear", "not applicable"}
    assert [r["mistake"] for r in results if r["status"] == "not applicable"] == [
        "position_overflow", "tiny_vocab", "stale_kv_cache"]  # the README says which three it cannot see


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    install, test = commands[0].strip(), commands[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[test]"' in ci and 'pip install -e ".[test]"' in install
    assert test.split("&& ")[-1] in ci and "python -m ablations.run mistake=no_residual" in install
