"""The wrong-input battery: every command of the lab, given wrong input as a new user would, answers with exactly one
line on stderr naming the bad value (and, where there are any, the valid choices), a non-zero exit (2, a usage
error), before any work, and writes nothing anywhere. In this process (no interpreter start: milliseconds each).

docs/wrong-inputs.md is generated from this table: `python tests/test_input_battery.py` rewrites it, and a test
below fails when it is stale."""
import dataclasses
import time
from pathlib import Path

import pytest
from conftest import ROOT, TINY, run_cli_here

from ablations import catalogue

COMMANDS = ("run", "study", "check", "calibrate", "report", "figures", "benchmark", "protocol")
TIME_LIMIT_S = 20  # per case, generous for a slow machine: each stops before any compiling or training
DOC = ROOT / "docs" / "wrong-inputs.md"
NAMES = ", ".join(catalogue.BY_NAME)


@dataclasses.dataclass(frozen=True)
class Case:
    command: str
    what: str
    args: tuple[str, ...]
    words: tuple[str, ...]  # each must appear in the one line


def cases(command: str, *rows) -> list[Case]:
    return [Case(command, what, tuple(args), tuple(words)) for what, args, words in rows]


N = "mistake=narrow_ffn"
DIST = ("distributed.enabled=true", "distributed.num_processes=2")
RUN = cases(
    "run",
    ("unknown mistake", ["mistake=no_residuals"], ["no_residuals", "no_residual", "stale_kv_cache"]),
    ("no mistake named", ["seeds=2"], ["mistake=<name> is required", "all", "post_norm"]),
    ("non-ASCII value without quotes", ["mistake=残差"], ["mistake=残差", "quoted", 'mistake="残差"']),
    ("non-ASCII value quoted", ['mistake="残差"'], ["残差", "post_norm"]),
    ("a sweep without -m", ["mistake=all,post_norm"], ["mistake=all,post_norm", "-m"]),
    ("unknown model preset", [N, "model=huge"], ["model='huge'", "tiny", "nanogpt_cpu"]),
    ("unknown data preset", [N, "data=web"], ["data='web'", "shakespeare", "synthetic"]),
    ("mistyped key", [N, "model.n_layer=3"], ["model.n_layer", "model.n_layers"]),
    ("mistyped training key", [N, "train.lrr=0.1"], ["train.lrr", "train.lr"]),
    ("unknown key added with +", [N, "+newkey=1"], ["'newkey'", "model.*", "seeds"]),
    ("unknown key of a section, nothing near", [N, "model.zzzzzz=1"], ["model.zzzzzz", "model.d_model"]),
    ("a key deleted", [N, "~steps"], ["~steps", "cannot be deleted"]),
    ("wrong type", [N, "model.n_layers=deep"], ["model.n_layers='deep'", "int"]),
    ("a fraction for an integer", [N, "steps=1.5"], ["steps=1.5", "int"]),
    ("not a boolean", [N, "dry_run=maybe"], ["dry_run='maybe'", "bool"]),
    ("null for a number", [N, "steps=null"], ["steps=null", "int", "not null"]),
    ("zero width", [N, "model.d_model=0"], ["model.d_model=0", "positive"]),
    ("negative depth", [N, "model.n_layers=-1"], ["model.n_layers=-1", "positive"]),
    ("zero feed-forward multiple", [N, "model.ffn_mult=0"], ["model.ffn_mult=0", "positive"]),
    ("heads not dividing d_model", [N, "model.n_heads=5"], ["n_heads=5", "d_model=16"]),
    ("unknown position", [N, "model.position=alibi"], ["alibi", "rope", "sinusoidal"]),
    ("unknown attention kernel", [N, "model.attention=flash"], ["flash", "einsum", "fused"]),
    ("unknown compute dtype", [N, "model.dtype=float8"], ["float8", "float32", "bfloat16"]),
    ("no seeds", [N, "seeds=0"], ["seeds=0", "positive"]),
    ("negative first seed", [N, "seed=-1"], ["seed=-1", "non-negative"]),
    ("seed not a number", [N, "seed=nan"], ["seed=nan", "int"]),
    ("no steps", [N, "steps=0"], ["train.steps=0", "positive"]),
    ("steps not a multiple of the chunk", [N, "steps=5"], ["train.steps=5", "train.log_every=2"]),
    ("evaluation off the chunks", [N, "train.eval_every=3"], ["train.eval_every=3", "train.log_every=2"]),
    ("checkpoints off the chunks", [N, "train.ckpt_every=3"], ["train.ckpt_every=3", "train.log_every=2"]),
    ("warmup as long as training", [N, "train.warmup=4"], ["train.warmup=4", "steps=4"]),
    ("learning rate NaN", [N, "train.lr=nan"], ["train.lr=nan", "finite"]),
    ("learning rate infinite", [N, "train.lr=inf"], ["train.lr=inf", "finite"]),
    ("learning rate zero", [N, "train.lr=0"], ["train.lr=0", "> 0"]),
    ("negative learning rate", [N, "train.lr=-0.01"], ["train.lr=-0.01", "> 0"]),
    ("unknown comparison", [N, "comparison=best"], ["comparison='best'", "best_lr", "one_lr"]),
    ("a rate of zero in the grid", [N, "train.lr_grid=[0,0.01]", "data.selection_share=0.5"],
     ["train.lr_grid=[0.0, 0.01]", "distinct finite numbers > 0"]),
    ("a rate twice in the grid", [N, "train.lr_grid=[0.01,0.01]", "data.selection_share=0.5"],
     ["train.lr_grid=[0.01, 0.01]", "distinct"]),
    ("a grid with nothing to choose on", [N, "train.lr_grid=[0.001,0.01]"],
     ["train.lr_grid=[0.001, 0.01]", "data.selection_share", "comparison=best_lr"]),
    ("the catalogue's grid overridden", [N, "declared.lr_grid=[1]"], ["declared.lr_grid=[1]", "train.lr_grid"]),
    ("a selection share of 1", [N, "data.selection_share=1"], ["data.selection_share=1", "[0, 1)"]),
    ("a selection split without a grid", [N, "data.selection_share=0.5"],
     ["data.selection_share=0.5", "train.lr_grid", "comparison=best_lr"]),
    ("a longer budget without a grid", [N, "longer_budget=4"], ["longer_budget=4", "train.lr_grid"]),
    ("a longer budget of 0", [N, "comparison=best_lr", "longer_budget=0"], ["longer_budget=0", "positive"]),
    ("the run a longer budget follows, given", [N, "follows=abc"], ["follows=abc", "comparison=best_lr"]),
    ("unknown protocol", [N, "protocol=preregistered"], ["protocol='preregistered'", "exploratory", "confirmatory"]),
    ("a setting the protocol fixes", [N, "protocol=confirmatory", "seeds=5"],
     ["seeds=5", "protocol=confirmatory", "mistake", "results_dir"]),
    ("the protocol's hash, given", [N, "protocol_hash=abc"], ["protocol_hash=abc", "protocol=<name>"]),
    ("no gradient clipping threshold", [N, "train.grad_clip=0"], ["train.grad_clip=0", "> 0"]),
    ("negative weight decay", [N, "train.weight_decay=-0.1"], ["train.weight_decay=-0.1", ">= 0"]),
    ("empty batch", [N, "train.batch_size=0"], ["train.batch_size=0", "positive"]),
    ("empty window", [N, "train.seq_len=0"], ["train.seq_len=0", "positive"]),
    ("no evaluation windows", [N, "train.eval_windows=0"], ["train.eval_windows=0", "positive"]),
    ("more evaluation windows than the data has", [N, "train.eval_windows=1000000"],
     ["train.eval_windows=1000000", "windows"]),
    ("a window longer than the data", [N, "train.seq_len=100000"], ["train.seq_len=100000", "too few"]),
    ("unknown source", [N, "data.source=web"], ["web", "synthetic", "text", "tfds"]),
    ("unknown tokenizer", [N, "data.tokenizer=word"], ["word", "char", "bpe"]),
    ("text without a path", [N, "data.source=text"], ["data.path"]),
    ("missing text file", [N, "data.source=text", "data.path=/nonexistent/corpus.txt"], ["/nonexistent/corpus.txt"]),
    ("a directory as the text", [N, "data.source=text", "data.path={dir}"], ["{dir}", "Is a directory"]),
    ("an empty text", [N, "data.source=text", "data.path={empty}"], ["{empty}", "empty"]),
    ("a binary file as the text", [N, "data.source=text", "data.path={binary}"], ["{binary}"]),
    ("a text too short for one window", [N, "data.source=text", "data.path={short}"], ["too few for one window"]),
    ("TFDS offline without a local copy", [N, "data.source=tfds", "data.tfds_download=false",
                                           "data.tfds_dir=/nonexistent/tfds"],
     ["tiny_shakespeare", "data=shakespeare"]),
    ("BPE without a vocabulary size", [N, "data.tokenizer=bpe"], ["data.tokenizer=bpe", "data.vocab_size"]),
    ("a vocabulary of one", [N, "data.vocab_size=1"], ["data.vocab_size=1", "at least 2"]),
    ("validation share above 1", [N, "data.val_fraction=1.5"], ["data.val_fraction=1.5", "between 0 and 1"]),
    ("validation share 0", [N, "data.val_fraction=0"], ["data.val_fraction=0", "between 0 and 1"]),
    ("empty synthetic alphabet", [N, "data.alphabet_size=0"], ["data.alphabet_size=0"]),
    ("no synthetic blocks", [N, "data.n_blocks=0"], ["data.n_blocks=0", "positive"]),
    ("a synthetic span of 0", [N, "data.span=0"], ["data.span=0"]),
    ("tiny vocabulary of 0", ["mistake=tiny_vocab", "data.tiny_vocab_size=0"], ["data.tiny_vocab_size=0"]),
    ("unknown wandb mode", [N, "wandb.mode=cloud"], ["cloud", "offline"]),
    ("length probe that never passes the training length", ["mistake=position_overflow", "probe.length_factor=1.0"],
     ["probe.length_factor=1.0", "above 1"]),
    ("padding share outside (0, 1)", ["mistake=padding_mask", "probe.padding_share=1.5"],
     ["probe.padding_share=1.5", "between 0 and 1"]),
    ("learned table too short for the correct variant", ["mistake=position_overflow", "model.position=learned"],
     ["position_overflow", "rope"]),
    ("a run name that climbs out of the results", [N, "run_name=../../../escape"], ["run_name='../../../escape'",
                                                                                    "one directory name"]),
    ("a run name with a separator", [N, "run_name=a/b"], ["run_name='a/b'", "one directory name"]),
    ("a run name of ..", [N, "run_name=.."], ["run_name='..'", "one directory name"]),
    ("an empty run name", [N, "run_name=''"], ["run_name=''", "one directory name"]),
    ("an empty results directory", [N, "results_dir=''"], ["results_dir=''", "empty"]),
    ("a sweep into an empty results directory", ["-m", N, "results_dir=''"], ["results_dir=''", "empty"]),
    ("a sweep with a run name that climbs out", ["-m", N, "seeds=2,3", "run_name=../x"],
     ["run_name='../x'", "one directory name"]),
    ("a file as the results directory", [N, "results_dir={file}"], ["results_dir={file}", "is a file"]),
    ("a results directory inside a file", [N, "results_dir={file}/runs"], ["{file}", "is a file"]),
    ("a model wider than the machine", [N, "model.d_model=100000000"], ["model.d_model=100000000", "GiB",
                                                                        "this machine has"]),
    ("a model deeper than the machine", [N, "model.n_layers=1000000"], ["model.n_layers=1000000", "GiB"]),
    ("more seeds than the machine holds", [N, "seeds=1000000"], ["seeds=1000000", "GiB"]),
    ("a batch larger than the machine", [N, "train.batch_size=100000000"], ["train.batch_size=100000000", "GiB"]),
    ("a process count that is not a number", [N, "distributed.enabled=true", "distributed.num_processes=two"],
     ["distributed.num_processes='two'", "integer", "null"]),
    ("a process id past the process count", [N, *DIST, "distributed.process_id=5"],
     ["distributed.process_id=5", "distributed.num_processes=2"]),
    ("a join timeout under a second", [N, "distributed.enabled=true", "distributed.timeout_s=0"],
     ["distributed.timeout_s=0", "at least 1"]),
    ("a coordinator address without a port", [N, *DIST, "distributed.process_id=1",
                                              "distributed.coordinator_address=node7"],
     ["distributed.coordinator_address='node7'", "host:port"]),
    ("a coordinator nobody answers at", [N, *DIST, "distributed.process_id=1",
                                         "distributed.coordinator_address=127.0.0.1:1", "distributed.timeout_s=1"],
     ["127.0.0.1:1", "nothing answered", "distributed.timeout_s=1", "process 0"]),
    ("a bad value in a suite", ["mistake=all", "model.d_model=0"], ["model.d_model=0", "positive"]),
)

S = "no_residual_depth"
STUDY = cases(
    "study",
    ("unknown study", ["no_such_study"], ["no_such_study", "no_residual_depth", "padding_mask_share"]),
    ("non-ASCII study name", ["残差"], ["残差", "no_residual_depth"]),
    ("an empty axis", [S, "model.n_layers=[]"], ["model.n_layers", "empty"]),
    ("an axis given one value", [S, "model.n_layers=3"], ["model.n_layers", "axis", "list"]),
    ("mistyped key", [S, "model.n_layer=3"], ["model.n_layer", "did you mean"]),
    ("a wrong type on an axis", [S, "model.n_layers=[1,deep]"], ["deep", "int"]),
    ("a zero on an axis", [S, "model.n_layers=[0,2]"], ["model.n_layers=0", "positive"]),
    ("another mistake", [S, "mistake=post_norm"], ["mistake", "mistake=no_residual"]),
    ("a run name", [S, "run_name=mine"], ["run_name", "named by its config"]),
    ("a bad value for every point", [S, "train.lr=nan"], ["train.lr=nan", "finite"]),
    ("not key=value", [S, "deep"], ["'deep'", "key=value"]),
    ("an empty results directory", [S, "results_dir=''"], ["results_dir", "empty"]),
    ("a file as the results directory", [S, "results_dir={file}"], ["{file}", "is a file"]),
    ("many processes", [S, "distributed.enabled=true"], ["distributed.enabled=true", "one process"]),
    ("unknown option", [S, "--lst"], ["--lst"]),
)

CHECK = cases(
    "check",
    ("unknown mistake", ["--mistakes", "no_residuals"], ["no_residuals", "post_norm"]),
    ("no mistake in --mistakes", ["--mistakes", ""], ["--mistakes ''", "post_norm"]),
    ("mistakes given twice", ["--mistakes", "post_norm", "mistakes=post_norm"], ["mistakes given twice"]),
    ("--mistakes for a factory without mistakes", ["ablations.audit.adapters:hf_gpt2", "--mistakes", "post_norm"],
     ["hf_gpt2", "takes no mistakes"]),
    ("a factory that is not module:callable", ["nonsense", "d_model=8"], ["'nonsense'", "module.path:callable"]),
    ("a factory module that does not exist", ["no_such_module:factory"], ["no_such_module", "module.path:callable"]),
    ("a factory that is not callable", ["ablations.audit.adapters:BLOCK_NAME"], ["BLOCK_NAME", "callable"]),
    ("a factory that does not exist", ["ablations.audit.adapters:nothing_here"], ["nothing_here", "callable"]),
    ("an override the factory does not take", ["depth=3"], ["depth", "n_layers"]),
    ("an override without a value", ["ablations.audit.adapters:lab_gpt", "d_model"], ["'d_model'", "key=value"]),
    ("a width that is not a number", ["d_model=abc"], ["d_model", "abc"]),
    ("heads not dividing the width", ["n_heads=3"], ["n_heads=3", "d_model=32"]),
    ("unknown dtype", ["dtype=float99"], ["float99", "bfloat16"]),
    ("unknown position", ["position=alibi"], ["alibi", "rope"]),
    ("a vocabulary of one", ["vocab_size=1"], ["vocab_size=1", "at least 2"]),
    ("a model wider than the machine", ["d_model=100000"], ["d_model=100000", "GiB", "this machine has"]),
    ("a model deeper than the machine", ["n_layers=100000000"], ["n_layers=100000000", "GiB"]),
    ("a vocabulary larger than the machine", ["vocab_size=1000000000"], ["vocabulary 1,000,000,000", "GiB"]),
    ("a vocabulary past int32 token ids", ["vocab_size=100000000000"], ["vocab_size=100000000000", "2**31"]),
    ("--json a directory", ["--json", "{dir}"], ["--json {dir}", "is a directory"]),
    ("--json in a missing directory", ["--json", "/nonexistent/dir/out.json"], ["/nonexistent/dir/out.json",
                                                                              "no directory"]),
    ("--json empty", ["--json", ""], ["--json ''", "empty"]),
    ("unknown option", ["--jsn", "out.json"], ["--jsn"]),
)

CALIBRATE = cases(
    "calibrate",
    ("a missing table", ["--table", "/nonexistent.jsonl"], ["/nonexistent.jsonl", "no such file"]),
    ("a directory as the table", ["--table", "{dir}"], ["--table {dir}", "not a file"]),
    ("an empty table", ["--table", "{empty}"], ["{empty}", "no readings"]),
    ("a table that is not JSON", ["--table", "{notjson}"], ["{notjson}", "line 1", "not JSON"]),
    ("a table of JSON that is not readings", ["--table", "{notreading}"],
     ["{notreading}", "not a calibration reading"]),
    ("a binary table", ["--table", "{binary}"], ["{binary}", "UTF-8"]),
    ("--out that exists", ["--out", "{existing}"], ["{existing}", "never overwritten"]),
    ("--out in a missing directory", ["--out", "/nonexistent/dir/out.jsonl"], ["/nonexistent/dir/out.jsonl",
                                                                             "no directory"]),
    ("--out a directory", ["--out", "{dir}"], ["--out {dir}", "is a directory"]),
    ("--out empty", ["--out", ""], ["--out ''", "empty"]),
    ("both modes", ["--table", "a", "--out", "b"], ["--out", "--table"]),
    ("a stray argument", ["calibration.jsonl"], ["calibration.jsonl"]),
)

REPORT = cases(
    "report",
    ("a missing results directory", ["--results", "/nonexistent"], ["/nonexistent", "not there"]),
    ("an empty results directory name", ["--results", ""], ["--results ''", "empty"]),
    ("a file as the results", ["--results", "{file}"], ["{file}", "a file"]),
    ("a directory that holds no results", ["--results", "{dir}"], ["{dir}", "no finished run"]),
    ("unknown option", ["--result", "results"], ["--result"]),
    ("a stray argument", ["results"], ["results"]),
    ("both printing modes", ["--table", "--redecide"], ["--table", "--redecide"]),
    ("the table of a directory that holds no results", ["--results", "{dir}", "--table"], ["{dir}",
                                                                                          "no finished run"]),
)

FIGURES = cases(
    "figures",
    ("no run directory", [], ["run_dir"]),
    ("a missing run", ["/nonexistent/run"], ["/nonexistent/run", "not a finished run"]),
    ("a directory that is not a run", ["{dir}"], ["{dir}", "not a finished run"]),
    ("a file", ["{file}"], ["{file}", "not a finished run"]),
    ("a results directory, not a run", ["{dir}", "{file}"], ["{dir}", "<results_dir>/<mistake>/<run>"]),
    ("unknown option", ["--out", "x"], ["--out"]),
)

BENCHMARK = cases(
    "benchmark",
    ("unknown config", ["--configs", "tiny"], ["'tiny'", "nanogpt-cpu"]),
    ("no rounds", ["--rounds", "0"], ["--rounds 0", "at least 1"]),
    ("negative dispatches", ["--dispatches", "-1"], ["--dispatches -1", "at least 0"]),
    ("rounds not a number", ["--rounds", "three"], ["'three'", "int"]),
    ("a Python that does not exist", ["--torch-python", "/nonexistent/python"], ["/nonexistent/python",
                                                                                "no such executable"]),
    ("--out a directory", ["--out", "{dir}"], ["--out {dir}", "is a directory"]),
    ("--out in a missing directory", ["--out", "/nonexistent/dir/b.json"], ["/nonexistent/dir/b.json", "no directory"]),
    ("--out where nothing can be written", ["--out", "/proc/benchmark.json"], ["/proc/benchmark.json",
                                                                               "cannot be written"]),
    ("--out empty", ["--out", ""], ["--out ''", "empty"]),
    ("unknown option", ["--config", "suite"], ["--config"]),
)

PROTOCOL = cases(
    "protocol",
    ("unknown protocol", ["preregistered"], ["'preregistered'", "confirmatory"]),
    ("a plan without a protocol", ["--plan"], ["--plan", "<name>"]),
    ("two protocols", ["confirmatory", "exploratory"], ["exploratory"]),
    ("unknown option", ["--seeds", "8"], ["--seeds"]),
)

BATTERY = [*RUN, *STUDY, *CHECK, *CALIBRATE, *REPORT, *FIGURES, *BENCHMARK, *PROTOCOL]


@pytest.fixture
def inputs(tmp_path) -> dict[str, str]:
    """The files a case may name: {file} a text file, {dir} an empty directory, {empty}, {binary}, ..."""
    folder = tmp_path / "inputs"
    (folder / "dir").mkdir(parents=True)
    files = {"file": "notes\n", "empty": "", "short": "abc", "notjson": "not json\n", "notreading": '{"a": 1}\n',
             "existing": "kept\n"}
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "binary").write_bytes(bytes(range(256)) * 4)
    return {name: str(folder / name) for name in [*files, "binary", "dir"]}


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def filled(text: str, inputs: dict) -> str:
    return text.format(**inputs) if "{" in text else text


@pytest.mark.parametrize("case", BATTERY, ids=[f"{c.command}: {c.what}" for c in BATTERY])
def test_wrong_input_is_one_line_naming_it_before_any_work_and_writes_nothing(case, inputs, tmp_path, monkeypatch):
    args = [filled(a, inputs) for a in case.args]
    if case.command == "run":  # small enough that a case that got through would fail the time limit, not hang
        typed = {a.split("=", 1)[0] for a in args}
        args += [a for a in [*TINY, "wandb.mode=disabled"] if a.split("=", 1)[0] not in typed]
    here = tmp_path / "cwd"  # the default results_dir (runs/) and any stray file would land here
    here.mkdir()
    monkeypatch.chdir(here)
    before = snapshot(tmp_path)
    tic = time.perf_counter()
    result = run_cli_here(*args, module=f"ablations.{case.command}")
    seconds = time.perf_counter() - tic
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in case.words:
        assert filled(word, inputs) in lines[0], lines[0]
    assert result.stdout == ""
    assert snapshot(tmp_path) == before  # nothing written, nothing changed, in the cwd or beside it
    assert seconds < TIME_LIMIT_S


def test_the_battery_covers_every_command_with_over_a_hundred_inputs():
    assert {c.command for c in BATTERY} == set(COMMANDS) and len(BATTERY) >= 100
    assert len({(c.command, c.what) for c in BATTERY}) == len(BATTERY)


def render() -> str:
    lines = ["# Wrong inputs: what each command refuses", "",
             "Generated from the battery in `tests/test_input_battery.py` (`python tests/test_input_battery.py` "
             "rewrites this page; a test fails when it is stale). Every row is tested: the command exits with "
             "status 2 and prints exactly one line on stderr, `error: ...`, holding the words shown, before any "
             "work, and writes nothing. Exit status of every command: 0 done, 1 the work ran and failed (a run "
             "failed, `check` detected a mistake), 2 a usage error, 130 stopped by Ctrl-C or SIGTERM "
             "(`ablations/cli.py`). `{file}`, `{dir}`, `{empty}`, ... stand for a text file, an empty directory, "
             "an empty file, ...; the `run` cases also pass the tests' small sizes (`TINY` in "
             "`tests/conftest.py`).", ""]
    for command in COMMANDS:
        rows = [c for c in BATTERY if c.command == command]
        lines += [f"## `python -m ablations.{command}` ({len(rows)})", "",
                  "| wrong input | given as | the line names |", "|---|---|---|"]
        for c in rows:
            given = " ".join(c.args).replace("|", "\\|") or "(nothing)"
            named = ", ".join(c.words).replace("|", "\\|")
            lines.append(f"| {c.what} | `{given}` | {named} |")
        lines.append("")
    return "\n".join(lines)


def test_the_docs_table_is_the_battery():
    assert DOC.read_text(encoding="utf-8") == render(), "stale: run `python tests/test_input_battery.py`"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC} ({len(BATTERY)} wrong inputs)")
