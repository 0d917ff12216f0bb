"""The README's promises: its Python example runs, and CI runs its test command."""
import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_python_api_example_runs(capsys):
    (example,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[:2] == ["(2,", "16,"] and float(printed[-1]) > 1e-3  # stale cache differs from recompute


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    install, test = commands[0].strip(), commands[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[test]"' in ci and 'pip install -e ".[test]"' in install
    assert test.split("&& ")[-1] in ci and "python -m ablations.run mistake=no_residual" in install
