"""What the catalogue says about a mistake, as data: its claims (each with the rule and practical margin that
decide it), the settings that make it visible on a 2-core CPU, the variants it trains, its symptom figure, its
audit detector with the calibrated threshold, and the studies that ask where its claims hold. One file per
mistake (`ablations/catalogue/mNN_<name>.py`) declares one `Mistake`; everything else collects from there."""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

from ablations.audit.detectors import Detector

# Settings chosen so that the *correct* variant reliably trains near the entropy floor (never by looking at the
# broken variant): 8 layers need a lower learning rate than the default.
DEEP = {"model.n_layers": 8, "train.lr": 3e-3}
# Learning-rate grids (comparison=best_lr), declared before any run of them: log-spaced by sqrt(10) around the rate
# each depth's correct model was set at (1e-2 for the default 2 layers, 3e-3 for 8), one step above, two below.
LR_GRID = (1e-3, 3e-3, 1e-2, 3e-2)
DEEP_LR_GRID = (3e-4, 1e-3, 3e-3, 1e-2)
DEPTHS = (2, 4, 8, 16)  # the depth axis of the studies that ask from what depth a mistake matters
LOGIT_TOL = 1e-3  # float32 reorderings move logits by ~1e-6; a real leak or mismatch moves them by > 1e-2
# Practical margins, one per unit: an effect smaller than this is not worth a reader's attention.
NATS = 0.01  # nats/token, for every cross-entropy (final, at a point of training, area, past the training length)
BITS = 0.01  # bits/byte
DECADE = 1.0  # log10 units: "vanishing" gradients are at least 10x smaller, relative to the output end
SHARE = 0.01  # a share of tokens (copy accuracy): one percentage point
# The audit's consistency detectors (mistakes 5, 8, 11: a difference beyond rounding, / the context effect): correct
# 0, broken >= 0.645; a tenth of the context's own effect, 6x under the mildest broken model.
LEAK = 0.1


@dataclasses.dataclass(frozen=True)
class Claim:
    """One testable sentence: what it says, who says it ("page": the seed page, "lab": added by the lab),
    the rule that decides it, and which correct variant it compares the broken one against."""
    says: str
    rule: object  # an ablations.science.rules rule: Effect, NoGain, Invariant or Exactly
    source: str = "page"
    reference: str = "correct"  # "correct", or the name of one of the mistake's `fixes`


@dataclasses.dataclass(frozen=True)
class Finding:
    """What a published source reports that bears on one of a mistake's claims, and the outcome it predicts for that
    claim (None: it bears on the claim without predicting its outcome). `explained`: where the lab's outcome differs,
    the measured reason, naming the run or study that measured it ("" while it is unexplained)."""
    claim: str  # the `says` of one of the mistake's claims
    source: str  # authors, year, title
    reports: str  # what the source found, in its own setting
    predicts: str | None = "reproduced"
    explained: str = ""


@dataclasses.dataclass(frozen=True)
class Axis:
    key: str  # a dotted config key ("model.n_layers") or a preset group ("data")
    values: tuple


@dataclasses.dataclass(frozen=True)
class Study:
    """A grid over one or two config keys (any key of the lab's config, or a preset group such as `data`), on top of
    the mistake's own settings and the study's fixed overrides; every point is a full paired run with its seeds."""
    name: str
    question: str
    axes: tuple[Axis, ...]  # one or two; the first is the x axis of the figure, the second draws one line per value
    overrides: tuple[str, ...] = ()  # Hydra overrides for every point ("data=shakespeare", "train.lr=3e-3")
    broken: Callable[[dict], dict] | None = None  # point (axis key -> value) -> the broken variant's own settings
    exploratory: str = ""  # why this study is exploratory only (e.g. declared after a result it asks about was seen)
    mistake: str = ""  # filled in by the catalogue: the mistake whose file declares the study


@dataclasses.dataclass(frozen=True)
class Mistake:
    name: str  # the `mistake=` value and the model.Mistakes switch
    number: int  # the seed page's mistake number
    title: str
    claims: tuple[Claim, ...]
    probes: tuple[str, ...] = ()  # symptom probes beyond the standard measurements (ablations.science.probes)
    settings: dict = dataclasses.field(default_factory=dict)  # dotted config keys -> value, for every variant
    fixes: dict = dataclasses.field(default_factory=dict)  # more correct variants: name -> dotted settings
    symptom_plot: str = "val_loss"  # the measurement the symptom figure shows
    refuses: dict = dataclasses.field(default_factory=dict)  # dotted key -> (value this mistake cannot run with, why)
    broken: dict = dataclasses.field(default_factory=dict)  # dotted settings of the broken variant alone (may
    # interpolate the run's config, OmegaConf's way: "${data.tiny_vocab_size}")
    lr_grid: tuple[float, ...] = LR_GRID  # comparison=best_lr: every variant trains at each, compared at its best
    detector: Detector | None = None  # the audit's detector (None: `python -m ablations.check` says "not calibrated")
    studies: tuple[Study, ...] = ()
    literature: tuple[Finding, ...] = ()  # what published work reports on its claims (beyond the seed page)

    def __post_init__(self):
        if len(self.lr_grid) < 2 or list(self.lr_grid) != sorted(set(self.lr_grid)):
            raise ValueError(f"{self.name}: lr_grid={self.lr_grid} must hold at least 2 distinct rates, in order")
        unknown = [f.claim for f in self.literature if f.claim not in [c.says for c in self.claims]]
        if unknown:
            raise ValueError(f"{self.name}: literature names no claim of this mistake: {unknown}")

    @property
    def variants(self) -> tuple[str, ...]:
        return ("correct", *self.fixes, "broken")

    @property
    def claim(self) -> str:
        """The page's claims in one sentence (the lab's own when the page names no symptom)."""
        page = [c.says for c in self.claims if c.source == "page"]
        return "; ".join(page) if page else "the page names no symptom; lab: " + "; ".join(c.says for c in self.claims)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A confirmatory protocol, declared and committed before any of its runs: what it tests (each source's
    statistical claims, decided as a family with Holm's correction), how (the comparison, from the catalogue's
    rules, margins, learning-rate grids and budgets), on which data, and with which seeds: fresh ones (every
    exploratory run's lie below `first_seed`), as many per mistake as the exploratory runs' measured spread asks
    for (`ablations.science.planning.mistake_seeds`), at least `min_seeds` and at most `max_seeds`. Its hash, with the
    catalogue entry of the mistake, is part of every run it makes: a run whose protocol or entry changed since is
    another experiment, and reports refuse it as confirmatory."""
    name: str
    question: str
    first_seed: int
    planned_on: tuple[str, ...]  # the exploratory results directories the seeds are planned from
    seeds: dict = dataclasses.field(default_factory=dict)  # mistake -> seeds per variant; a mistake not named
    # here cannot run under the protocol yet
    comparison: str = "best_lr"  # the `comparison` preset every run of the protocol uses
    data: tuple[str, ...] = ("synthetic", "shakespeare")  # the `data` presets it runs on
    min_seeds: int = 8
    max_seeds: int = 16
    family_level: float = 0.05  # Holm's family-wise error rate
    widen_lr_grid: int = 0  # rates of the 1-3-10-30 series added at each end of every mistake's declared grid

    def __post_init__(self):
        widen = self.widen_lr_grid
        if isinstance(widen, bool) or not (isinstance(widen, int) and widen >= 0):
            raise ValueError(f"protocol {self.name}: widen_lr_grid={self.widen_lr_grid!r} must be a whole number >= 0")
        if not 2 <= self.min_seeds <= self.max_seeds:
            raise ValueError(f"protocol {self.name}: seeds must satisfy 2 <= min_seeds <= max_seeds")
        outside = {m: n for m, n in self.seeds.items() if not self.min_seeds <= n <= self.max_seeds}
        if outside:
            raise ValueError(f"protocol {self.name}: seeds {outside} lie outside [{self.min_seeds}, {self.max_seeds}]")

    def lr_grid(self, declared: tuple[float, ...]) -> tuple[float, ...]:
        """The grid a mistake trains on under this protocol: its declared grid (rates of the series 1, 3, 10, 30,
        ... x 10^k) with `widen_lr_grid` more rates of that series below its lowest and above its highest."""
        grid = list(declared)
        for _ in range(self.widen_lr_grid):
            grid = [half_decade_step(grid[0], -1), *grid, half_decade_step(grid[-1], +1)]
        return tuple(grid)


def half_decade_step(rate: float, direction: int) -> float:
    """The next rate of the series 1, 3, 10, 30, ... x 10^k above (+1) or below (-1) `rate`, which lies on it."""
    exponent = math.floor(math.log10(rate) + 1e-9)
    mantissa = round(rate / 10 ** exponent)
    if mantissa not in (1, 3) or not math.isclose(rate, mantissa * 10 ** exponent, rel_tol=1e-9):
        raise ValueError(f"learning rate {rate:g} is not on the series 1, 3, 10, 30, ... x 10^k")
    index = 2 * exponent + (mantissa == 3) + direction  # 1e0 -> 0, 3e0 -> 1, 1e1 -> 2, ...
    return float(f"{1 if index % 2 == 0 else 3}e{index // 2}")
