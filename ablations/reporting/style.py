"""The lab's one figure style: print sizes, the style file (lab.mplstyle), colours fixed across every figure, legends
outside the data, and saving as PNG (300 dpi) plus SVG. Every figure writer draws inside `styled` and saves with
`save`, so a figure that goes into a paper is the file the lab wrote."""
from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ablations.runner import layout  # noqa: E402
from ablations.science.rules import NOT_MEASURED  # noqa: E402

STYLE = Path(__file__).with_name("lab.mplstyle")
SINGLE, DOUBLE = 3.5, 7.0  # inches: one column and two columns of a paper; every figure is one of these wide
WIDTHS = (SINGLE, DOUBLE)
FORMATS = ("png", "svg")  # raster for the web, vector for print
DPI = 300

# Okabe & Ito's colour-blind-safe palette: the correct model blue, the broken one vermillion, other correct
# variants ("fixes") green, purple and orange, in every figure.
VARIANT_COLORS = {"correct": "#0072B2", "broken": "#D55E00"}
FIX_COLORS = ("#009E73", "#CC79A7", "#E69F00")
# A study's lines, one per value of its second axis: greys, told apart by their line style and marker, so that no
# line is mistaken for a variant's colour (the blue of "correct" beside a sky blue, say).
LINE_COLORS = ("#000000", "#6e6e6e", "#9a9a9a", "#4a4a4a")
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")
FLOOR_COLOR = "0.35"
ZERO_COLOR = "0.85"  # a heatmap cell whose gradient is exactly zero
# The colour says whether the claim holds: an exact claim that holds shares "reproduced"'s colour, one that fails
# shares "no effect"'s.
OUTCOME_COLORS = {"reproduced": "#d95f02", "holds": "#d95f02", "opposite": "#7570b3", "no effect": "#1b9e77",
                  "fails": "#1b9e77", "inconclusive": "#969696", NOT_MEASURED: "#d9d9d9"}


def color(variant: str, variants) -> str:
    if variant in VARIANT_COLORS:
        return VARIANT_COLORS[variant]
    return FIX_COLORS[[v for v in variants if v not in VARIANT_COLORS].index(variant) % len(FIX_COLORS)]


def styled(draw):
    """A figure writer that draws in the lab's style (fonts and line widths are fixed when the artists are made)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.style.context(STYLE):
            return draw(*args, **kwargs)
    return wrapper


def figure(width: float = DOUBLE, height: float = 2.6, nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure of one of the print widths, with constrained layout (legends placed outside make room)."""
    if width not in WIDTHS:
        raise ValueError(f"figure width {width} in: the lab's figures are {SINGLE} in (one column) or {DOUBLE} in")
    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained", **kwargs)


def legend_below(fig, handles, ncol: int | None = None) -> None:
    """The figure's legend, under its panels and outside every one of them: in `ncol` columns (at most 4 by
    default), fewer where that many would run past the figure's edges."""
    if not handles:
        return
    for columns in range(ncol or min(len(handles), 4), 0, -1):
        legend = fig.legend(handles=handles, loc="outside lower center", ncol=columns)
        if columns == 1 or legend.get_window_extent(fig.canvas.get_renderer()).width <= fig.bbox.width:
            return
        legend.remove()


def wrap(text: str, width: int) -> str:
    return textwrap.fill(text, width, break_long_words=False)


def save(fig, directory: Path, name: str) -> list[Path]:
    """PNG (300 dpi) and SVG under <directory>/figures/, the same bytes each time they are regenerated: the SVG
    carries no date and its element ids come from a fixed salt instead of a random one."""
    out = layout.figures_dir(directory)
    out.mkdir(exist_ok=True)
    paths = [out / f"{name}.{ext}" for ext in FORMATS]
    with plt.rc_context({"svg.hashsalt": "transformer-mistakes-lab", "svg.fonttype": "path"}):
        for path in paths:
            fig.savefig(path, dpi=DPI, metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return paths
