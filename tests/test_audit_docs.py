"""docs/auditing-a-model.md's factory for a model that is not Flax ("A model that is not Flax") works as written:
the page's block, saved as the module it names, audits clear on all 11 detectors through the command the page
gives, the mistake it can plant is detected, and what the page says of it (its length, the refusal of a vocabulary
smaller than its tokenizer) is what the code does."""
import json
import re
import sys

import pytest
from conftest import ROOT

from ablations import catalogue, check

PAGE = ROOT / "docs" / "auditing-a-model.md"
MODULE = "tiny_jax_lm"  # the block's first line names it: "# tiny_jax_lm.py — then: python -m ablations.check ..."


def example_block() -> str:
    """The one ```python block of the page whose first line is `# tiny_jax_lm.py`."""
    (block,) = [text for text in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
                if text.startswith(f"# {MODULE}.py")]
    return block


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The page's block as an importable module, tiny_jax_lm (forgotten again afterwards)."""
    (tmp_path / f"{MODULE}.py").write_text(example_block())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield
    sys.modules.pop(MODULE, None)


@pytest.mark.slow  # one full audit through the command: ~15 s on 2 shared cores
def test_the_pure_jax_example_audits_clear_on_all_11_with_the_pages_command(example, tmp_path, capsys):
    command = example_block().splitlines()[0].split("python -m ablations.check ")[1].split()  # as the page says
    assert command == [f"{MODULE}:make", "d_model=32"]
    assert check.main([*command, "--json", str(tmp_path / "audit.json")]) == check.EXIT_CLEAR, capsys.readouterr()
    results = json.loads((tmp_path / "audit.json").read_text())["results"]
    assert [r["mistake"] for r in results] == list(catalogue.DETECTORS)  # all 11, none left out
    assert {r["mistake"]: r["status"] for r in results} == {name: "clear" for name in catalogue.DETECTORS}


@pytest.mark.slow  # compiles the forward and the decoder: a few seconds
def test_the_mistake_the_pure_jax_example_can_plant_is_detected(example):
    make = __import__(MODULE).make
    (planted,) = catalogue.audit(make, {"d_model": 32, "mistakes": ("stale_kv_cache",)}, only=("stale_kv_cache",))
    assert planted["status"] == "detected", planted


def test_the_pure_jax_example_is_as_long_as_the_page_says():
    (stated,) = re.findall(r"with every hook but `optimizer`, in (\d+) lines", PAGE.read_text())
    lines = len(example_block().splitlines())
    assert lines == int(stated) and lines < 90


def test_the_pure_jax_examples_tokenizer_refuses_a_smaller_vocabulary_as_the_page_says(example, capsys):
    """build() refuses before any detector runs, in the one line the page quotes (its tokenizer states 128)."""
    quoted = re.search(r"`vocab_size=64`\s+stops the audit with `(error: [^`]*)`", PAGE.read_text(), flags=re.S)
    assert check.main([f"{MODULE}:make", "vocab_size=64"]) == check.EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [" ".join(quoted.group(1).split())], lines
