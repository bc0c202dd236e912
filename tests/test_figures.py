"""The figures helper: one place makes figures and saves PNGs, importing cnnlab leaves matplotlib's
backend alone, and ``cnnlab report`` and ``cnnlab show filters`` draw the one filters figure."""

import base64
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.report import gallery
from cnnlab.report.curves import history_figure, plot_history
from cnnlab.report.figures import DPI, new_figure, png_bytes, save_png

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"
PNG = b"\x89PNG\r\n\x1a\n"

# Run in a fresh interpreter: select a backend as a notebook would, import every cnnlab module,
# draw and save a figure, then report what matplotlib's state is.
CHILD = r"""
import importlib, pkgutil, sys
import matplotlib
matplotlib.use("svg")  # anything but Agg, as %matplotlib inline or a widget backend would be
import cnnlab
names = [m.name for m in pkgutil.walk_packages(cnnlab.__path__, "cnnlab.") if m.name != "cnnlab.__main__"]
for name in names:
    importlib.import_module(name)
from cnnlab.report.figures import new_figure, png_bytes
fig = new_figure((2, 2))
fig.subplots().plot([0, 1], [1, 0])
assert png_bytes(fig).startswith(b"\x89PNG")
print(len(names), matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_importing_cnnlab_leaves_the_matplotlib_backend_alone():
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC.parent), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    count, backend, pyplot = result.stdout.split()
    assert int(count) > 40  # every module, not an empty walk
    assert backend == "svg", "a cnnlab module changed matplotlib's backend"
    assert pyplot == "False", "a cnnlab module imported matplotlib.pyplot"


def test_one_module_makes_figures_and_saves_pngs():
    """Figure(...) and savefig appear in report/figures.py only; pyplot and matplotlib.use nowhere."""
    makers, savers, forbidden = [], [], []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        name = str(path.relative_to(SRC))
        if re.search(r"\b(Shown)?Figure\(", text):
            makers.append(name)
        if ".savefig(" in text:
            savers.append(name)
        if re.search(r"import matplotlib\.pyplot|from matplotlib import pyplot|matplotlib\.use\(", text):
            forbidden.append(name)
    assert makers == ["report/figures.py"] and savers == ["report/figures.py"], (makers, savers)
    assert not forbidden, forbidden


def test_save_png_is_atomic_and_png_bytes_match(tmp_path):
    fig = new_figure((3, 2))
    fig.subplots().plot([1, 2, 3])
    path = save_png(fig, tmp_path / "x.png")
    assert path == tmp_path / "x.png"
    assert path.read_bytes() == png_bytes(fig)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no temporary left behind
    with Image.open(path) as image:
        assert image.size == (3 * DPI, 2 * DPI)


HISTORY = [
    {
        "epoch": e,
        "train_loss": 1 / e,
        "valid_loss": 1 / e + 0.02 * e,
        "train_accuracy": 0.8 + 0.02 * e,
        "valid_accuracy": 0.78 + 0.015 * e,
    }
    for e in range(1, 6)
]


def test_history_figure_has_twin_loss_axes_and_accuracy(tmp_path):
    fig = history_figure(HISTORY, title="convnet")
    loss, accuracy, valid = fig.axes  # the twin axis is added last
    assert loss.get_ylabel().startswith("train loss") and valid.get_ylabel().startswith("validation loss")
    assert accuracy.get_ylabel() == "accuracy (%)"
    assert fig.get_suptitle() == "convnet"
    plot_history(HISTORY, tmp_path / "loss.png", title="convnet")
    with Image.open(tmp_path / "loss.png") as image:
        assert image.size == (11 * DPI, round(4.2 * DPI))


def _display_points(line):
    return line.get_transform().transform(np.column_stack(line.get_data()))


@pytest.mark.parametrize("epochs", [1, 2])
def test_with_fewer_than_three_epochs_the_two_losses_share_one_scale(epochs):
    """Twin axes stretch each curve over its own scale: two points each become the same diagonal."""
    fig = history_figure(HISTORY[:epochs])
    loss, _, valid = fig.axes
    png_bytes(fig)  # lay it out
    assert loss.get_ylim() == valid.get_ylim()
    train_line, valid_line = loss.get_lines()[0], valid.get_lines()[0]
    assert not np.allclose(_display_points(train_line), _display_points(valid_line))
    three = history_figure(HISTORY[:3])
    assert three.axes[0].get_ylim() != three.axes[2].get_ylim()  # from 3 epochs on: twin scales


@pytest.mark.parametrize("best", [1, 3, 5])
def test_the_lowest_validation_loss_note_stays_inside_its_axes(best):
    history = [dict(row, valid_loss=0.3 + 0.05 * abs(row["epoch"] - best)) for row in HISTORY]
    fig = history_figure(history)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    valid = fig.axes[2]
    [note] = [t for t in valid.texts if t.get_text().startswith("lowest validation loss")]
    assert f"(epoch {best})" in note.get_text()
    inside, box = valid.get_window_extent(renderer), note.get_window_extent(renderer)
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1


def test_history_figure_without_a_validation_split_draws_the_train_curves_alone():
    nan = float("nan")  # what a --valid-size 0 run records in the validation columns
    fig = history_figure([dict(row, valid_loss=nan, valid_accuracy=nan) for row in HISTORY])
    loss, accuracy = fig.axes  # no twin axis for a validation loss
    assert loss.get_title() == "Loss (no validation split)"
    assert [line.get_label() for line in accuracy.get_lines()] == ["train"]


def test_filters_figure_shows_the_mean_over_input_channels():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(5, 3, 3, 3)).astype(np.float32)  # (C_out, C_in, kH, kW)
    fig = gallery.filters_figure(weights, title="run")
    tiles = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(tiles) == 5
    for tile, kernel in zip(tiles, weights):
        np.testing.assert_allclose(tile, kernel.mean(axis=0), rtol=1e-6)
    title = fig.get_suptitle()
    assert title.startswith("run: first-layer filters") and "mean over its 3 input channels" in title


def test_report_and_show_filters_draw_the_same_figure(trained_run, tmp_path, monkeypatch, capsys):
    """Both commands call gallery.filters_figure, with the run's first conv weights and the same
    heading, and write the same pixels."""
    calls = []
    real = gallery.filters_figure

    def spy(weights, title="", **kwargs):
        calls.append((weights.copy(), title))
        return real(weights, title, **kwargs)

    monkeypatch.setattr(gallery, "filters_figure", spy)
    output = tmp_path / "report.html"
    assert main(["report", str(trained_run), "--output", str(output)]) == 0
    assert main(["show", str(trained_run), "filters", "--out", str(tmp_path / "figures")]) == 0
    capsys.readouterr()
    assert len(calls) == 2
    (w_report, title_report), (w_show, title_show) = calls
    np.testing.assert_array_equal(w_report, w_show)
    assert (
        w_report.shape == (32, 1, 3, 3)
        and title_report == title_show == f"convnet ({trained_run.name}), layer 0"
    )
    embedded = re.search(
        r'<img src="data:image/png;base64,([^"]+)" alt="first-layer filters"', output.read_text()
    )
    assert base64.b64decode(embedded.group(1)) == (tmp_path / "figures" / "filters.png").read_bytes()


@pytest.mark.parametrize("columns, count", [(8, 32), (8, 3)])
def test_filters_figure_grid_fits_the_count(columns, count):
    fig = gallery.filters_figure(np.ones((count, 1, 3, 3), np.float32), columns=columns)
    with Image.open(io.BytesIO(png_bytes(fig))) as image:
        assert image.format == "PNG" and image.size[0] >= 3 * DPI
    assert sum(bool(ax.images) for ax in fig.axes) == count
