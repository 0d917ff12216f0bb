"""The lab's argparse commands share one style (ablations/cli.py): a usage error of any kind is one line on stderr,
`error: ...` naming the bad value, exit status 2, before any work."""
import pytest
from conftest import run_cli_here

USAGE_ERRORS = {
    "figures: no run directory": ("ablations.figures", [], ["run_dir"]),
    "figures: not a run": ("ablations.figures", ["/nonexistent/run"], ["/nonexistent/run", "not a finished run"]),
    "report: no results there": ("ablations.report", ["--results", "/nonexistent"], ["/nonexistent", "directory"]),
    "study: unknown study": ("ablations.study", ["no_such_study"], ["no_such_study", "no_residual_depth"]),
    "calibrate: missing table": ("ablations.calibrate", ["--table", "/nonexistent.jsonl"], ["/nonexistent.jsonl"]),
    "calibrate: both modes": ("ablations.calibrate", ["--table", "a", "--out", "b"], ["--out", "--table"]),
    "benchmark: unknown config": ("ablations.benchmark", ["--configs", "tiny"], ["'tiny'", "nanogpt-cpu"]),
    "benchmark: no rounds": ("ablations.benchmark", ["--rounds", "0"], ["--rounds 0", "at least 1"]),
    "check: unknown mistake": ("ablations.check", ["--mistakes", "no_residuals"], ["no_residuals", "post_norm"]),
}


@pytest.mark.parametrize("module,args,words", USAGE_ERRORS.values(), ids=USAGE_ERRORS)
def test_a_usage_error_is_one_line_and_exit_2(module, args, words):
    result = run_cli_here(*args, module=module)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert result.stdout == ""
