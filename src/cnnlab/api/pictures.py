"""The pictures of a trained run, as ``Run`` methods that return matplotlib Figures: the confusion
matrix and the most confident mistakes (``cnnlab evaluate``, the report), the first layer's
filters (``cnnlab show filters``, the report), and for one image its feature maps, max pooling and
translation invariance (``cnnlab show``). Each draws with the function the command draws with.

``image`` is a test image's index (its true class is then named), or any image ``Run.prepare``
takes: a path, a PIL image, an array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnlab.api.edge import api_edge
from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnlab.report.display import Figures
    from cnnlab.report.metrics import Evaluation
    from cnnlab.runs.loader import LoadedRun

__all__ = ["RunPictures"]


class RunPictures:
    """Picture methods for ``Run``, which provides ``_trained()``, ``_evaluation(split, data_dir)``,
    ``_input(image, data_dir)`` and ``_test_images(data_dir)``."""

    @api_edge
    def plot_confusion(self, split: str = "test", data_dir: str | None = None) -> Figure:
        """The confusion matrix on ``split``: counts, coloured by the share of the true class."""
        from cnnlab.report.confusion import confusion_figure, confusion_title

        ev = self._evaluation(split, data_dir)
        return confusion_figure(
            ev.confusion, confusion_title(ev, self._trained().config.model), ev.class_names
        )

    @api_edge
    def plot_mistakes(self, n: int = 30, split: str = "test", data_dir: str | None = None) -> Figure:
        """The ``n`` most confident mistakes on ``split``, with true and predicted class."""
        from cnnlab.report.gallery import misclassified_figure

        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 200:
            raise ConfigError(f"n must be a whole number from 1 to 200. Received: {n!r}")
        return misclassified_figure(self._evaluation(split, data_dir), limit=n)

    @api_edge
    def show_filters(self) -> Figure:
        """The first convolution's filters, each with its weights written in."""
        from cnnlab.inspect.features import filters_of

        try:
            return filters_of(self._trained())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @api_edge
    def show_features(self, image: Any = 0, data_dir: str | None = None) -> Figures:
        """For ``image``, every conv and pool layer's feature maps: one figure per layer."""
        from cnnlab.inspect.features import features_figures
        from cnnlab.report.display import Figures

        pixels, name = self._input(image, data_dir)
        return Figures(fig for _, fig in features_figures(self._trained(), pixels, name))

    @api_edge
    def show_pooling(self, image: Any = 0, data_dir: str | None = None) -> Figure:
        """Max pooling on a real feature map of ``image``, with a close-up in numbers."""
        from cnnlab.inspect.pooling import pooling_figure

        pixels, name = self._input(image, data_dir)
        return pooling_figure(self._trained(), pixels, name)[0]

    @api_edge
    def show_invariance(self, image: Any = 0, data_dir: str | None = None) -> Figure:
        """``image`` shifted 0-4 pixels: how much each layer's output and the prediction change
        (and, over 200 test images, how often the prediction stays)."""
        from cnnlab.inspect.invariance import SAMPLE, invariance_figure, measure

        pixels, name = self._input(image, data_dir)
        trained = self._trained()
        result = measure(trained, pixels, self._test_images(data_dir)[:SAMPLE])
        return invariance_figure(trained, pixels, name, result)

    # Provided by Run.
    def _trained(self) -> LoadedRun:
        raise NotImplementedError

    def _evaluation(self, split: str, data_dir: str | None) -> Evaluation:
        raise NotImplementedError

    def _input(self, image: Any, data_dir: str | None) -> tuple[Any, str]:
        raise NotImplementedError

    def _test_images(self, data_dir: str | None) -> Any:
        raise NotImplementedError
