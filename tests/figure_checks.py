"""What every figure of the lab must satisfy, checked on the drawn matplotlib Figure (not on the PNG): a print width
from the style, no panel without data, a label on every axis that shows ticks (with a unit in parentheses on every
numeric axis), no legend over plotted data, and no text outside the figure or over another panel's title."""
from __future__ import annotations

import re

import numpy as np
from matplotlib.transforms import Bbox

from ablations.reporting.style import WIDTHS

NUMBER = re.compile(r"^[\s−\-+0-9.,eE×]*$")


def numeric(tick: str) -> bool:
    """A tick label that is a number, mathtext's 10^{-3} and a two-line "8\n120" included."""
    return bool(NUMBER.match(re.sub(r"\\mathdefault|[${}^]", "", tick)))


def drawn_texts(fig):
    """Every visible, non-empty text of the figure: titles, labels, tick labels, legends, free text."""
    hidden = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for label in hidden_ticks(axis)}
    return [t for t in fig.findobj(match=lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent"))
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def data_artists(ax):
    """What an axes plots: images, collections with points or paths, lines in data coordinates (not axhline or
    axvline, which span the axes whatever the data)."""
    lines = [line for line in ax.lines if line.get_transform() is ax.transData and len(line.get_xdata())]
    collections = [c for c in ax.collections if len(c.get_offsets()) or c.get_paths()]
    return ax.images + collections + lines


def data_points(ax) -> np.ndarray:
    """Display coordinates of every plotted point of an axes that it shows (line vertices and scatter offsets
    inside its frame; a point beyond the view is clipped, not drawn)."""
    points = []
    for line in ax.lines:
        if line.get_transform() is ax.transData and len(line.get_xdata()):
            xy = np.column_stack([np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)])
            points.append(line.get_transform().transform(xy[np.all(np.isfinite(xy), axis=1)]))
    for collection in ax.collections:
        offsets = np.asarray(collection.get_offsets(), float)
        if len(offsets) and collection.get_offset_transform() is not None:
            points.append(collection.get_offset_transform().transform(offsets[np.all(np.isfinite(offsets), axis=1)]))
    if not points:
        return np.zeros((0, 2))
    points, frame = np.concatenate(points), ax.get_window_extent()
    return points[(points[:, 0] >= frame.x0) & (points[:, 0] <= frame.x1) & (points[:, 1] >= frame.y0)
                  & (points[:, 1] <= frame.y1)]


def hidden_ticks(axis) -> list:
    """Tick labels matplotlib keeps but does not draw: those of ticks outside the axis's view."""
    low, high = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(low), abs(high), 1.0)
    return [label for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            if not low - slack <= tick.get_loc() <= high + slack for label in (tick.label1, tick.label2)]


def shows_ticks(axis) -> list[str]:
    hidden = set(map(id, hidden_ticks(axis)))
    return [t.label1.get_text() for t in axis.get_major_ticks()
            if id(t.label1) not in hidden and t.label1.get_visible() and t.label1.get_text().strip()]


def title(ax) -> str:
    return " ".join(ax.get_title(loc) for loc in ("left", "center", "right") if ax.get_title(loc))


def problems(fig) -> list[str]:
    """Everything wrong with one figure, as readable lines (empty: it passes)."""
    fig.canvas.draw()
    found = []
    width = round(fig.get_size_inches()[0], 3)
    if width not in WIDTHS:
        found.append(f"width {width} in is not one of the style's {WIDTHS}")
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    if not panels:
        found.append("no panels")
    for ax in panels:
        name = title(ax) or ax.get_ylabel() or "a panel"
        if not data_artists(ax):
            found.append(f"{name!r}: an empty panel")
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        name = title(ax) or ax.get_ylabel() or ax.get_label()
        for axis, label in ((ax.xaxis, ax.get_xlabel()), (ax.yaxis, ax.get_ylabel())):
            ticks = shows_ticks(axis)
            if not ticks:
                continue
            if not label.strip():
                found.append(f"{name!r}: an axis with ticks {ticks[:3]} and no label")
            elif all(numeric(t) for t in ticks) and not re.search(r"\(.+\)", label, re.S):
                found.append(f"{name!r}: numeric axis {label!r} names no unit in parentheses")
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in panels:
            points = data_points(ax)
            inside = points[(points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0)
                            & (points[:, 1] < box.y1)] if len(points) else points
            if len(inside):
                found.append(f"a legend covers {len(inside)} plotted points of {title(ax)!r}")
    page = Bbox.from_bounds(0, 0, *fig.canvas.get_width_height()).padded(1)
    for text in drawn_texts(fig):
        extent = text.get_window_extent(renderer)
        if not (page.contains(extent.x0, extent.y0) and page.contains(extent.x1, extent.y1)):
            found.append(f"text {text.get_text()[:50]!r} runs outside the figure")
    titles = [(ax, text) for ax in panels for text in (ax.title, ax._left_title, ax._right_title) if text.get_text()]
    for i, (ax, heading) in enumerate(titles):
        for other, other_heading in titles[i + 1:]:
            if ax is not other and heading.get_window_extent(renderer).overlaps(
                    other_heading.get_window_extent(renderer)):
                found.append(f"titles {heading.get_text()[:30]!r} and {other_heading.get_text()[:30]!r} overlap")
    return found
