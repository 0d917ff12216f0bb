"""The verdict of a pair: every claim of a mistake decided by its rule on the paired per-seed
measurements, a summary a reader takes in at a glance (which of the page's claims hold), and the
one-line form of each claim that commands print and reports quote."""
from __future__ import annotations

import collections
import dataclasses
import math
import warnings

from ablations.science import firmness, measures
from ablations.science.rules import CONFIDENCE, HOLDS, MAX_SEEDS, NOT_MEASURED, ConvergedShare, Effect, NoGain

# One mark per outcome wherever a verdict is printed or written. The mark says whether the claim holds: an exact
# claim that holds shares "reproduced"'s mark, one that fails shares "no effect"'s.
MARKS = {"reproduced": "🟧", "holds": "🟧", "opposite": "🟪", "no effect": "🟩", "fails": "🟩", "inconclusive": "⬜",
         NOT_MEASURED: "➖"}


CONVERGES = ("the broken variant converges (final loss within "
             f"{measures.FLOOR_TOLERANCE} of the floor) in fewer seeds than the correct one")


def converged_seeds(measured: dict[str, list[dict]], variant: str) -> list[bool] | None:
    """Which seeds of a variant learned the task (final loss within FLOOR_TOLERANCE of the exact floor); None where
    the data has no known floor."""
    seeds = measured[variant]
    if not seeds or any(m.get("entropy_floor") is None for m in seeds):
        return None
    return [measures.converged(m) for m in seeds]


def split(flags: list[bool] | None) -> bool:
    return flags is not None and 0 < sum(flags) < len(flags)


def mixture(measured: dict[str, list[dict]], reference: str) -> dict | None:
    """Where the seeds of the reference or the broken variant split into converged and not: each variant's
    converged seeds, and the seeds where the reference converged, which a statistical claim is then read on (a
    reference seed that did not learn the task is no fair comparison; a broken one that did not is the effect)."""
    flags = {v: converged_seeds(measured, v) for v in (reference, "broken")}
    if any(f is None for f in flags.values()) or not any(split(f) for f in flags.values()):
        return None
    return {"converged": flags, "read_on": [i for i, ok in enumerate(flags[reference]) if ok]}


def decide_on_converged(claim, measured: dict[str, list[dict]], seeds: dict, model_cfg) -> dict:
    """A statistical claim on a mixture: read on the seeds where the reference converged (the t interval over a
    bimodal sample would describe no seed)."""
    values = lambda v: [measured[v][i][claim.rule.metric] for i in seeds["read_on"]]  # noqa: E731
    counts = ", ".join(f"{v} {sum(f)}/{len(f)}" for v, f in seeds["converged"].items())
    head = f"seeds split (converged: {counts}); read on the {len(seeds['read_on'])} seeds where the " \
           f"{claim.reference} variant converged"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean and spread of no seed at all are NaN
        result = claim.rule.decide(values(claim.reference), values("broken"), model_cfg)
    return {**result, "why": f"{head}: {result['why']}", "mixture": seeds}


def share_claim(measured: dict[str, list[dict]]) -> dict | None:
    """Where the seeds of the correct or the broken variant split into converged and not (data with an exact floor:
    the synthetic copy task), the share of seeds that converge, broken against correct: a claim of its own
    (rules.ConvergedShare)."""
    correct, broken = converged_seeds(measured, "correct"), converged_seeds(measured, "broken")
    if correct is None or broken is None or not (split(correct) or split(broken)):
        return None
    return {"says": CONVERGES, "source": "lab", "reference": "correct", "derived": True,
            **ConvergedShare().decide(correct, broken)}


def decide(spec, measured: dict[str, list[dict]], model_cfg) -> dict:
    """spec: the mistake's catalogue entry (its claims); measured: variant -> per-seed measurements. A
    statistical claim against a reference variant that diverged is inconclusive: its last finite state is no
    fair comparison. A broken variant that diverged is a finding of its own (the summary starts with it) and its
    claims are still decided. Where seeds split into converged and not, a statistical claim is read on the seeds
    where the reference converged, and the share that converges is a claim of its own (after the catalogue's)."""
    diverged = {v: [m["diverged_at"] for m in seeds if m["diverged_at"] >= 0] for v, seeds in measured.items()}
    claims = []
    for claim in spec.claims:
        metric = claim.rule.metric
        if any(metric not in m for variant in (claim.reference, "broken") for m in measured[variant]):
            claims.append({"says": claim.says, "source": claim.source, "reference": claim.reference, "metric": metric,
                           "rule": claim.rule.describe(), "kind": "none", "outcome": NOT_MEASURED,
                           "why": f"this data gives no {metric}", "n": len(measured["broken"])})
            continue
        seeds = mixture(measured, claim.reference) if hasattr(claim.rule, "margin") else None
        result = (decide_on_converged(claim, measured, seeds, model_cfg) if seeds else
                  claim.rule.decide([m[metric] for m in measured[claim.reference]],
                                    [m[metric] for m in measured["broken"]], model_cfg))
        if result["kind"] == "statistical" and diverged[claim.reference]:
            result.update(outcome="inconclusive", seeds_needed=None, firmness=None,
                          why=f"the {claim.reference} variant diverged at step {min(diverged[claim.reference])}")
        claims.append({"says": claim.says, "source": claim.source, "reference": claim.reference, **result})
    if (converges := share_claim(measured)) is not None:
        claims.append(converges)
    return {"mistake": spec.name, "number": spec.number, "title": spec.title, "claim": spec.claim,
            "verdict": summary(claims, diverged.get("broken")), "claims": claims, "diverged": diverged,
            "seeds": len(measured["broken"])}


def evidence(verdict: dict) -> str:
    """"exploratory", or the name of the declared protocol the run was made under (a verdict written before
    protocols were recorded is exploratory: no protocol was declared then)."""
    return (verdict.get("protocol") or {}).get("name") or "exploratory"


def tally(claims: list[dict], source: str) -> str | None:
    """'2 of 2 hold', '0 of 1 holds (1 opposite)' for the claims of one source; None if it has none."""
    mine = [c for c in claims if c["source"] == source]
    if not mine:
        return None
    held = sum(c["outcome"] in HOLDS for c in mine)
    others = collections.Counter(c["outcome"] for c in mine if c["outcome"] not in HOLDS)
    rest = f" ({', '.join(f'{n} {outcome}' for outcome, n in others.items())})" if others else ""
    return f"{held} of {len(mine)} {'holds' if len(mine) == 1 else 'hold'}{rest}"


def summary(claims: list[dict], broken_diverged=None) -> str:
    """'page claims: 1 of 2 hold (1 inconclusive); lab claims: 1 of 1 holds'."""
    page, lab = tally(claims, "page"), tally(claims, "lab")
    parts = [f"page claims: {page}" if page else "the page names no symptom"] + ([f"lab claims: {lab}"] if lab else [])
    prefix = f"diverged at step {min(broken_diverged)}; " if broken_diverged else ""
    return prefix + "; ".join(parts)


def _g(x) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def numbers(c: dict) -> str:
    """The evidence behind one claim's outcome, in one line."""
    if c["kind"] == "none":
        return c["why"]
    if c["kind"] == "share":
        part = lambda s: f"{s['k']}/{s['n']} [{_g(s['ci'][0])}, {_g(s['ci'][1])}]"  # noqa: E731
        return (f"converged: correct {part(c['correct'])}, broken {part(c['broken'])} (95% exact intervals); "
                f"exact McNemar p={_g(c['p'])}: {c['why']}" + fragile_note(c))
    side = lambda s: f"{_g(s['mean'])} ± {_g(s['std'])}"  # noqa: E731
    sides = f"{c['reference']} {side(c['correct'])}, broken {side(c['broken'])}"
    if c["kind"] == "exact":
        return f"{sides} (n={c['n']}; {c['rule']})"
    lo, hi = c["ci"]
    text = (f"{sides}; effect {_g(c['mean'])} [95% CI {_g(lo)}, {_g(hi)}], p={_g(c['p'])}, n={c['n']}, "
            f"margin {c['margin']:g} {c['unit']}: {c['why']}")
    return text + seeds_note(c) + fragile_note(c)


def fragile_note(c: dict) -> str:
    firm = c.get("firmness")
    if not firm or not firm["fragile"]:
        return ""
    if firm["distance_se"] is None:
        return "; fragile: one pair of seeds decides it"
    return f"; fragile: {firm['distance_se']:.2g} SE from deciding {firm['nearest']}" \
        if c["outcome"] == "inconclusive" else f"; fragile: {firm['distance_se']:.2g} SE from its boundary"


def at_margin(rule, c: dict):
    """A statistical rule at the margin a recorded claim was decided with (the catalogue's may have moved since)."""
    return dataclasses.replace(rule, margin=c["margin"]) if "margin" in c and hasattr(rule, "margin") else rule


def rule_of(spec, c: dict):
    """The catalogue rule that decided a recorded claim of `spec` (its catalogue entry): the rule of the catalogue
    claim that says what it says, or, for a claim the catalogue has since reworded, the rule (against the same
    reference where several fit) whose description, at the claim's recorded margin, is the one recorded with it;
    None where the catalogue no longer has such a rule."""
    rule = next((claim.rule for claim in spec.claims if claim.says == c["says"]), None)
    if rule is not None or "rule" not in c:
        return rule
    described = [claim for claim in spec.claims if at_margin(claim.rule, c).describe() == c["rule"]]
    found = [claim for claim in described if claim.reference == c.get("reference")] or described
    return found[0].rule if found else None


def recorded_rule(c: dict):
    """The statistical rule a claim's recorded description names, rebuilt from its recorded metric, margin and unit
    (for a claim whose rule the catalogue no longer has); None where no statistical rule describes itself so."""
    if not all(k in c for k in ("rule", "metric", "margin", "unit")):
        return None
    metric, margin, unit = c["metric"], c["margin"], c["unit"]
    candidates = (Effect(metric, margin, unit, True), Effect(metric, margin, unit, False), NoGain(metric, margin, unit))
    return next((rule for rule in candidates if rule.describe() == c["rule"]), None)


def decided_by(spec, c: dict):
    """The rule that decided a recorded claim: its catalogue rule (rule_of), or, where the catalogue no longer has
    it, the rule its recorded description names (recorded_rule); None where neither is known."""
    return rule_of(spec, c) or recorded_rule(c)


def boundaries(spec, c: dict) -> tuple[float, ...] | None:
    """The decision boundaries of the rule that decided a statistical claim (decided_by), at its recorded margin, on
    the claimed-positive scale of its effect, in its unit, from the rule's own `regions()`: an `Effect` decides
    against -m and +m, a `NoGain` only against -m (a gain beyond m). None where the rule is not known or is not
    statistical."""
    rule = decided_by(spec, c)
    if rule is None or not hasattr(rule, "regions"):
        return None
    ends = {end for region in at_margin(rule, c).regions() for end in (region.above, region.below) if end is not None}
    return tuple(sorted(ends))


def firmness_of(spec, c: dict) -> dict | None:
    """How firmly a claim is decided (ablations.science.firmness): as recorded with it, or, for a verdict written
    before firmness was recorded, from its catalogue rule (rule_of) on the same recorded numbers; None for a claim
    whose rule the catalogue no longer has."""
    if "firmness" in c or c["kind"] not in ("statistical", "share"):
        return c.get("firmness")
    if c["kind"] == "share":
        return firmness.share(tuple(c["discordant"]), 1 - CONFIDENCE)
    if "variant diverged at step" in c.get("why", ""):  # decided inconclusive whatever the interval says
        return None
    rule = rule_of(spec, c)
    if rule is None:
        return None
    return firmness.statistical(c, at_margin(rule, c).regions(), CONFIDENCE)


def seeds_note(c: dict) -> str:
    """For an interval that straddles a decision boundary: how many seeds would likely decide it."""
    if c["outcome"] != "inconclusive" or "straddles" not in c["why"]:
        return ""
    needed = c.get("seeds_needed")
    return f"; ~{needed} seeds would likely decide it" if needed else f"; more than {MAX_SEEDS} seeds would be needed"


ENTROPY_UNIT = {"char": "nats/char", "bpe": "nats/BPE token"}


def entropy_unit(config: dict) -> str:
    """The cross-entropy unit of a run's data: a character-level tokenizer makes a token one character."""
    return ENTROPY_UNIT.get(config["data"]["tokenizer"], "nats/token")


def in_data_units(text: str, config: dict) -> str:
    """The catalogue states cross-entropy margins per token; on character data a token is a character."""
    return text.replace("nats/token", entropy_unit(config))


def claim_line(c: dict, config: dict) -> str:
    """A claim's outcome and numbers, as a run prints it, in the units of the run's data (config)."""
    return in_data_units(f"{MARKS[c['outcome']]} {c['outcome']} ({c['source']}): {c['says']}\n      {numbers(c)}",
                         config)
