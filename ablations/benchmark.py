"""`python -m ablations.benchmark [--configs nanogpt-cpu suite] [--profile] [--suite] [--torch-python PY] [--out F]`:
the lab's training step timed (compile time, memory, step time, tokens/s, MFU), its account per part with
--profile, and the PyTorch eager baseline beside it (ablations/perf/benchmark.py)."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
import argparse
import shutil
import sys

from ablations import catalogue, paths
from ablations.errors import UsageError
from ablations.perf import benchmark


def parse_args(argv) -> argparse.Namespace:
    parser = cli.Parser("python -m ablations.benchmark", __doc__)
    parser.add_argument("--configs", nargs="+", default=["nanogpt-cpu", "suite"], choices=list(benchmark.CONFIGS))
    parser.add_argument("--dispatches", type=int, default=10,
                        help="timed dispatches of log_every steps each; 0: compile only (memory of the program)")
    parser.add_argument("--suite", action="store_true", help="also time a whole `mistake=all` run")
    parser.add_argument("--profile", action="store_true",
                        help="account of one step of each timed config: ms per part against its matmul floor")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="a Python with torch installed: times the PyTorch eager baseline of nanogpt-cpu")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of the lab and the PyTorch baseline (medians compared)")
    parser.add_argument("--out", default="benchmark.json")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.dispatches < 0:
        raise UsageError(f"--rounds {args.rounds}, --dispatches {args.dispatches}: rounds must be at least 1, "
                         "dispatches at least 0")
    if "nanogpt-cpu" in args.configs and args.dispatches and shutil.which(args.torch_python) is None:
        raise UsageError(f"--torch-python {args.torch_python}: no such executable; give a Python with torch, e.g. "
                         f"--torch-python {sys.executable}")
    paths.writable_file(args.out, "--out", "benchmark.json")  # before the minutes of timing, not after
    return args


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda args: benchmark.main(parse_args(args), catalogue.MISTAKES), argv)


if __name__ == "__main__":
    sys.exit(main())
