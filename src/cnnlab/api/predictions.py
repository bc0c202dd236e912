"""What ``Run.predict`` returns: the probabilities as one array, the top classes, and the inputs the
model saw, so a surprising prediction can be checked against what was actually classified."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, overload

import numpy as np

__all__ = ["Predictions"]


@dataclasses.dataclass(frozen=True)
class Predictions(Sequence[dict[str, Any]]):
    """One prediction per image. ``probabilities`` is (N, classes) (softmax, with the run's
    test-time augmentation), ``inputs`` the prepared uint8 images (N, C, H, W), ``inverted`` which
    photos were inverted. ``predictions[i]`` is a dict as ``cnnlab predict --json`` prints:
    ``{"image", "top": [{"class", "probability"}, ...], "inverted"}``."""

    names: list[str]
    probabilities: np.ndarray  # float32 (N, classes)
    inputs: np.ndarray  # uint8 (N, C, H, W)
    inverted: list[bool]
    class_names: tuple[str, ...]
    k: int  # how many classes ``top`` lists

    @property
    def labels(self) -> np.ndarray:
        """The most probable class index of each image (N,)."""
        return self.probabilities.argmax(1)

    @property
    def classes(self) -> list[str]:
        """The most probable class name of each image."""
        return [self.class_names[k] for k in self.labels]

    @property
    def top(self) -> list[list[dict[str, Any]]]:
        """The ``k`` most probable classes of each image, most probable first."""
        best = np.argsort(-self.probabilities, axis=1, kind="stable")[:, : self.k]
        return [
            [{"class": self.class_names[c], "probability": float(p[c])} for c in row]
            for p, row in zip(self.probabilities, best)
        ]

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        """Image ``index`` as {"image", "top", "inverted"}; a slice gives a list of them."""
        rows = [
            {"image": name, "top": top, "inverted": inverted}
            for name, top, inverted in zip(self.names, self.top, self.inverted)
        ]
        return rows[index]

    def plot(self, columns: int = 8):
        """Each input as the model saw it, with its most probable class and probability."""
        from cnnlab.report.figures import new_figure, show_image

        count = len(self)
        cols = min(count, columns)
        rows = math.ceil(count / cols)
        fig = new_figure((1.6 * cols, 1.9 * rows + 0.4))
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax in axes:
            ax.axis("off")
        for ax, name, image, top, inverted in zip(axes, self.names, self.inputs, self.top, self.inverted):
            show_image(ax, image)
            mark = " (inverted)" if inverted else ""
            ax.set_title(f"{_short(name)}{mark}\n{top[0]['class']} {top[0]['probability']:.0%}", fontsize=8)
        fig.suptitle("What the model saw, and what it predicts", fontsize=10)
        return fig

    def _repr_html_(self) -> str:
        from cnnlab.report.display import image_tag, table

        header = ("image", *(f"#{i + 1}" for i in range(self.k)), "inverted")
        rows = [
            (name, *(f"{t['class']} {t['probability']:.1%}" for t in top), "yes" if inverted else "")
            for name, top, inverted in zip(self.names, self.top, self.inverted)
        ]
        picture = image_tag(self.plot(), "the inputs as the model saw them") if len(self) <= 64 else ""
        return f"<div>{table(header, rows, first_is_header=True)}{picture}</div>"

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}: {c}" for n, c in zip(self.names[:3], self.classes[:3]))
        more = f", ... ({len(self)} images)" if len(self) > 3 else ""
        return f"Predictions({shown}{more})"


def _short(name: str, limit: int = 18) -> str:
    """A long path cut from the left, where its file name is kept."""
    return name if len(name) <= limit else "..." + name[-(limit - 3) :]
