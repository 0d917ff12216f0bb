"""The benchmark's comparison with PyTorch eager: a Python that cannot run it is "not measured", in one line."""
from ablations.benchmark import torch_reference


def test_a_missing_torch_python_is_not_measured_in_one_line(capsys):
    assert torch_reference("/nonexistent/bin/python") is None
    assert capsys.readouterr().out.strip().splitlines() == [
        "PyTorch eager baseline not measured (/nonexistent/bin/python: No such file or directory)"]
