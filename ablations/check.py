"""`python -m ablations.check [FACTORY] [key=value ...] [--json FILE] [--mistakes a,b]`: audit a transformer
language model for the catalogue's mistakes at random initialisation, on a CPU, in seconds (ablations.audit).

FACTORY is `module.path:callable`, importable from the Python path, returning an ablations.audit.interface.AuditModel
(default: the lab's GPT, ablations.audit.adapters:lab_gpt). `key=value` overrides are passed to it. After the 11
mistakes, a section of bugs people report (ablations/catalogue/reported_bugs.py), each its own check. Exit status:
0 every detector and check clear (or not applicable), 1 a mistake detected, a check fired, or either failed, 2 a
usage error."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
import argparse
import ast
import importlib
import sys

from ablations import catalogue, paths
from ablations.audit.detectors import rule_of
from ablations.audit.interface import FactoryError, accepts
from ablations.audit.printout import as_json, summary, table
from ablations.errors import UsageError

DEFAULT_FACTORY = "ablations.audit.adapters:lab_gpt"
EXIT_CLEAR, EXIT_FOUND, EXIT_USAGE = 0, 1, cli.EXIT_USAGE


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = cli.Parser("python -m ablations.check", __doc__.split("\n\n")[0])
    parser.add_argument("items", nargs="*", metavar="[FACTORY] [key=value ...]",
                        help=f"module.path:callable returning an AuditModel (default {DEFAULT_FACTORY}), "
                             "then overrides passed to it, e.g. d_model=32 seed=1 dtype=bfloat16")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON (stable, no timestamps)")
    parser.add_argument("--mistakes", metavar="a,b",
                        help=f"switch these mistakes on in the lab's GPT; valid: {', '.join(catalogue.BY_NAME)}")
    return parser.parse_args(argv)


def parse_value(text: str):
    """`32` -> 32, `1e-3` -> 0.001, `True` -> True, anything else (bfloat16, rope) stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def split_items(items: list[str]) -> tuple[str, dict]:
    """[FACTORY] key=value ... -> (factory path, overrides)."""
    named = bool(items) and "=" not in items[0]
    factory, overrides = (items[0] if named else DEFAULT_FACTORY), {}
    for item in items[1:] if named else items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"{item!r} is not key=value (expected [FACTORY] key=value ..., the factory first)")
        overrides[key] = parse_value(value)
    return factory, overrides


def load_factory(path: str):
    """`module.path:callable` -> the callable."""
    module_name, sep, attribute = path.partition(":")
    if not (sep and module_name and attribute):
        raise UsageError(f"factory {path!r} is not module.path:callable")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"cannot import factory module {module_name!r} ({error}); expected module.path:callable "
                         "importable from the Python path") from None
    except Exception as error:  # the user's module may fail in any way while importing
        raise UsageError(f"importing factory module {module_name!r} failed: {type(error).__name__}: {error}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        found = "nothing" if factory is None else f"a {type(factory).__name__}"
        raise UsageError(f"factory {path}: {module_name} has {found} named {attribute!r}, expected a callable "
                         "returning an ablations.audit.interface.AuditModel")
    return factory


def switched_mistakes(text: str, factory, path: str, overrides: dict) -> dict:
    """--mistakes a,b -> overrides with mistakes=(a, b), checked against the catalogue's names."""
    if text is None:
        return overrides
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise UsageError(f"--mistakes {text!r} names no mistake; valid choices: {', '.join(catalogue.BY_NAME)}")
    unknown = [name for name in names if name not in catalogue.BY_NAME]
    if unknown:
        raise UsageError(f"unknown mistake {unknown[0]!r}; valid choices: {', '.join(catalogue.BY_NAME)}")
    if not accepts(factory, "mistakes"):
        raise UsageError(f"--mistakes switches mistakes in the lab's GPT; factory {path} takes no mistakes argument")
    if "mistakes" in overrides:
        raise UsageError("mistakes given twice (--mistakes and mistakes=); give one")
    return {**overrides, "mistakes": names}


def write_json(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as error:
        raise UsageError(f"cannot write --json {path} ({error.strerror or error})") from None


def check(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.json is not None:  # checked before the audit, not after it
        paths.writable_file(args.json, "--json", "audit.json")
    path, overrides = split_items(args.items)
    factory = load_factory(path)
    overrides = switched_mistakes(args.mistakes, factory, path, overrides)
    try:
        results, reported = catalogue.full_audit(factory, overrides, name=path)
    except FactoryError as error:
        raise UsageError(str(error)) from None
    if args.json:
        write_json(args.json, as_json(path, overrides, results, reported))
    settings = " ".join(f"{k}={','.join(v) if isinstance(v, tuple) else v}" for k, v in overrides.items())
    print(f"audit of {path} {settings}".rstrip() + " at random initialisation\n")
    rules = {name: rule_of(detector) for name, detector in catalogue.DETECTORS.items()}
    print(table(results, rules) + "\n\n" + summary(results))
    print("\n" + reported_section(results, reported))
    failed = [r for r in results + reported if r["status"] in ("detected", "error")]
    return EXIT_FOUND if failed else EXIT_CLEAR


def reported_section(results: list[dict], reported: list[dict]) -> str:
    """The reported bugs' section: a table of the group's own checks (rows R1, R2, ...), the reported bugs one of
    the 11 catches (with that detector's status above), those the audit cannot see, and a summary line."""
    rules = {name: rule_of(detector) for name, detector in catalogue.REPORTED_DETECTORS.items()}
    status = {r["mistake"]: r["status"] for r in results}
    numbered = {spec.number: spec.name for spec in catalogue.MISTAKES}
    caught = [f"{bug.name} by detector {bug.caught_by} ({status.get(numbered[bug.caught_by], 'not run')})"
              for bug in catalogue.REPORTED_BUGS if bug.caught_by is not None]
    unseen = [bug.name for bug in catalogue.REPORTED_BUGS if bug.unprobed]
    return "\n".join([
        "bugs people report, beyond the 11 (ablations/catalogue/reported_bugs.py)\n",
        table(reported, rules, key="check", prefix="R"), "",
        *([f"caught by one of the 11 above: {', '.join(caught)}"] if caught else []),
        *([f"not seen at initialisation (docs/auditing-a-model.md): {', '.join(unseen)}"] if unseen else []),
        summary(reported, key="check")])


def main(argv: list[str] | None = None) -> int:
    return cli.run(check, argv)


if __name__ == "__main__":
    sys.exit(main())
