"""The filter sliding over the input, drawn frame by frame into a GIF.

In the manner of the convolution-arithmetic figures (Dumoulin & Visin, "A guide to
convolution arithmetic for deep learning", 2016): the input in blue, its zero padding as
dashed white cells, the kernel's taps shaded dark with their weights in the corner (spread
apart by the dilation, stepped by the stride), and the output in green, filling in one value
per frame. Frames are drawn with matplotlib's Agg canvas and joined by Pillow.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np

from cnnlab.errors import spelled
from cnnlab.fileio import write_atomic
from cnnlab.inspect.convolve import Example, channel_names, explain, explain_channels
from cnnlab.training.rundir import prepare_output

__all__ = ["animate", "gif_bytes", "MAX_FRAMES", "MAX_CELLS", "MAX_CHANNELS"]

MAX_FRAMES = 200  # one frame per output value; beyond this a GIF teaches nothing
MAX_CELLS = 14  # padded input side, so the numbers stay readable
MAX_CHANNELS = 3

INPUT, PAD, TAP = "#9ecae1", "#ffffff", "#08306b"
TINTS = ("#fcbba1", "#c7e9c0", "#9ecae1")  # a colour image's red, green and blue channels
OUTPUT, TODO, CURRENT = "#a1d99b", "#f7f7f7", "#238b45"


def _animate_name() -> str:
    """What the user called: the option or the method."""
    return spelled("--animate", "animate()")


def _check(example: Example) -> None:
    c, hp, wp = example.padded.shape
    frames = example.weight.shape[0] * example.out_hw[0] * example.out_hw[1]
    if c > MAX_CHANNELS:
        raise ValueError(f"{_animate_name()} draws at most {MAX_CHANNELS} input channels. Received: {c}")
    if max(hp, wp) > MAX_CELLS:
        raise ValueError(
            f"{_animate_name()} draws a padded input of at most {MAX_CELLS}x{MAX_CELLS}. Received: {hp}x{wp}"
        )
    if frames > MAX_FRAMES:
        raise ValueError(f"{_animate_name()} draws at most {MAX_FRAMES} output values. Received: {frames}")


def _grid(ax, values, colors, font, edge="#4a4a4a", dashed=None):
    """Cells of ``values`` coloured by ``colors`` (same shape); ``dashed`` marks padding cells."""
    from matplotlib.patches import Rectangle

    for (r, c), v in np.ndenumerate(values):
        pad = dashed is not None and dashed[r, c]
        ax.add_patch(
            Rectangle(
                (c, r),
                1,
                1,
                facecolor=colors[r][c],
                edgecolor="#9a9a9a" if pad else edge,
                linestyle="--" if pad else "-",
                lw=1,
            )
        )
        dark = colors[r][c] in (TAP, CURRENT)
        if v is not None and (dark or not pad):  # a tap on padding shows the zero it reads
            ax.text(
                c + 0.5,
                r + 0.45,
                _fmt(v),
                ha="center",
                va="center",
                fontsize=font,
                color="white" if dark else "black",
                fontweight="bold" if dark else "normal",
            )
    ax.set_xlim(-0.1, values.shape[1] + 0.1)
    ax.set_ylim(values.shape[0] + 0.1, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")


def _fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.2g}"


def _frame(example: Example, output: np.ndarray, o: int, i: int, j: int, line: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    from cnnlab.report.figures import new_figure

    xp = example.padded
    channels, hp, wp = xp.shape
    top, _, left, _ = example.pads
    real = np.zeros((hp, wp), bool)
    real[top : top + example.x.shape[1], left : left + example.x.shape[2]] = True
    ho, wo = example.out_hw
    cell = 0.42  # inches per cell
    widths = [wp] * channels + [wo]
    fig_width = cell * (sum(widths) + 2.2 * len(widths)) + 0.6
    text = textwrap.wrap(line, width=int(fig_width * 100 / 8.5), break_on_hyphens=False)  # 9 pt monospace
    fig = new_figure((fig_width, cell * max(hp, ho) + 1.3 + 0.2 * len(text)), layout=None, dpi=100)
    canvas = FigureCanvasAgg(fig)  # a GIF frame is the Agg canvas's pixels, not a PNG
    bottom = (0.25 + 0.2 * len(text)) / fig.get_figheight()
    axes = fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths, "wspace": 0.35})
    fig.subplots_adjust(left=0.03, right=0.97, top=1 - 0.75 / fig.get_figheight(), bottom=bottom)
    axes = np.atleast_1d(axes)
    taps = example.taps(i, j)
    names = channel_names(example)
    for c in range(channels):
        tint = TINTS[c] if channels == 3 else INPUT
        colors = [[tint if real[r, s] else PAD for s in range(wp)] for r in range(hp)]
        for _, _, r, s in taps:
            colors[r][s] = TAP
        values = np.empty((hp, wp), object)
        values[:] = xp[c]
        _grid(axes[c], values, colors, 10, dashed=~real)
        for p, q, r, s in taps:  # the weight, small, in the tap's corner
            axes[c].text(
                s + 0.93,
                r + 0.93,
                _fmt(example.weight[o, c, p, q]),
                ha="right",
                va="bottom",
                fontsize=7,
                color="#fdd49e",
            )
        label = f"input{f', {names[c]}' if channels > 1 else ''}"
        axes[c].set_title(f"{label} ({hp}x{wp} padded)" if real.sum() < real.size else label, fontsize=10)
    done = o * ho * wo + i * wo + j
    colors = [
        [CURRENT if (r, s) == (i, j) else OUTPUT if r * wo + s < i * wo + j else TODO for s in range(wo)]
        for r in range(ho)
    ]
    values = np.empty((ho, wo), object)
    for r in range(ho):
        for s in range(wo):
            values[r, s] = output[o, r, s] if r * wo + s <= i * wo + j else None
    _grid(axes[-1], values, colors, 10)
    axes[-1].set_title(f"output{f' channel {o}' if example.weight.shape[0] > 1 else ''}", fontsize=10)
    (sh, sw), (dh, dw), (kh, kw) = example.stride, example.dilation, example.weight.shape[2:]
    pad = (
        example.padding
        if isinstance(example.padding, str)
        else "x".join(map(str, sorted(set(example.padding))))
    )
    fig.suptitle(
        f"{kh}x{kw} kernel, stride {sh if sh == sw else f'{sh}x{sw}'}, padding {pad}, "
        f"dilation {dh if dh == dw else f'{dh}x{dw}'}   (value {done + 1} of "
        f"{example.weight.shape[0] * ho * wo})",
        fontsize=11,
    )
    fig.text(0.5, 0.03, "\n".join(text), ha="center", va="bottom", fontsize=9, family="monospace")
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    return image


def animate(example: Example, output: np.ndarray, path: str | Path, ms_per_frame: int = 900) -> int:
    """Write the GIF to ``path``; returns the number of frames. ``output`` is (C_out, H_out, W_out).
    The whole file is made in memory first, then written atomically: a full disk leaves no half GIF."""
    from PIL import Image

    image_format = Image.registered_extensions().get(Path(path).suffix.lower())
    if image_format is None:
        raise ValueError(f"unknown file extension {Path(path).suffix!r}: name the animation FILE.gif")
    frames = _frames(example, output)
    buffer = io.BytesIO()
    _save(frames, buffer, ms_per_frame, format=image_format)
    target = prepare_output(path, "--animate", create=False)
    write_atomic(target, lambda fh: fh.write(buffer.getbuffer()), stream=True)
    return len(frames)


def gif_bytes(example: Example, output: np.ndarray, ms_per_frame: int = 900) -> tuple[bytes, int]:
    """(the GIF as bytes, the number of frames), for a notebook to show without a file."""
    frames = _frames(example, output)
    buffer = io.BytesIO()
    _save(frames, buffer, ms_per_frame, format="GIF")
    return buffer.getvalue(), len(frames)


def _frames(example: Example, output: np.ndarray) -> list:
    _check(example)
    # A colour image's frames say each channel's sum: the three add up to the output value.
    lines = iter(explain_channels(example, output) if example.x.shape[0] == 3 else explain(example, output))
    ho, wo = example.out_hw
    return [
        _frame(example, output, o, i, j, next(lines))
        for o in range(example.weight.shape[0])
        for i in range(ho)
        for j in range(wo)
    ]


def _save(frames: list, target, ms_per_frame: int, format: str | None = None) -> None:
    """Join the frames into ``target``, a path (its extension names the format) or a file object."""
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * 3]  # linger on the full output
    frames[0].save(
        target,
        format=format,
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=0,
        optimize=True,
    )
