"""Figures regenerated from the same data are the same files, byte for byte."""
import numpy as np

from ablations.reporting import figures


def small_figure():
    """Lines, a seed band, an image with a colour bar, a legend and text: clip paths, images and glyphs get ids."""
    fig, (left, right) = figures.plt.subplots(1, 2, figsize=(4, 2))
    steps = np.arange(10)
    left.plot(steps, np.exp(-steps / 4), label="correct")
    left.fill_between(steps, np.exp(-steps / 3), np.exp(-steps / 5), alpha=0.2)
    left.legend()
    fig.colorbar(right.imshow(np.arange(12.0).reshape(3, 4)), ax=right)
    right.set_title("grad norm")
    return fig


def test_regenerated_png_and_svg_are_byte_identical(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    paths = figures.save(small_figure(), first, "small") + figures.save(small_figure(), second, "small")
    first_png, first_svg, second_png, second_svg = (path.read_bytes() for path in paths)
    assert b"<dc:date>" not in first_svg
    assert first_svg == second_svg
    assert first_png == second_png
