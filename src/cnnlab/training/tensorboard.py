"""TensorBoard event files for a run, the logger users of Keras and Lightning expect.

``--tensorboard`` writes into ``RUN_DIR/tensorboard`` after each saved epoch: the losses, the
accuracies and the learning rate as scalars, and the first convolution's filters as an image
(red positive, blue negative, white zero; each filter averaged over its input channels). Open it
with ``tensorboard --logdir RUN_DIR/tensorboard``. The writer is torch's own
(``torch.utils.tensorboard``), which needs the ``tensorboard`` package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import ConfigError, RunDirError, option

DIRECTORY = "tensorboard"
# metrics.csv column -> TensorBoard tag; "a/b" groups the curves as TensorBoard's panels do.
SCALARS = {
    "train_loss": "loss/train",
    "valid_loss": "loss/valid",
    "train_accuracy": "accuracy/train",
    "valid_accuracy": "accuracy/valid",
    "test_accuracy": "accuracy/test",
    "lr": "learning_rate",
}
FILTERS_TAG = "filters/first_layer"


class TensorBoardLog:
    """One run's event files; ``first_epoch`` > 1 on resume drops events a killed run wrote past its
    last saved epoch, so the curves never show an epoch twice."""

    def __init__(self, run: Path, first_epoch: int = 1):
        try:  # a new run's options were checked for the package; a resume or a broken install is met here
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                f"{option('tensorboard')} cannot load TensorBoard's writer ({exc}); install it with "
                f"`pip install 'cnnlab[tensorboard]'`"
            ) from None
        self.writer: Any = SummaryWriter(
            str(run / DIRECTORY), purge_step=first_epoch if first_epoch > 1 else None
        )

    def epoch(self, row: dict[str, Any], first_conv: np.ndarray | None) -> None:
        step = int(row["epoch"])
        try:
            for column, tag in SCALARS.items():
                if column in row:
                    self.writer.add_scalar(tag, float(row[column]), step)
            if first_conv is not None:
                self.writer.add_image(FILTERS_TAG, filters_image(first_conv), step, dataformats="HWC")
            self.writer.flush()
        except OSError as exc:  # a full disk: the epoch itself is already saved
            raise RunDirError(f"could not write TensorBoard events: {exc.strerror or exc}") from None

    def close(self) -> None:
        self.writer.close()


def filters_image(weights: np.ndarray, scale: int = 8, columns: int = 8) -> np.ndarray:
    """Conv weights (C_out, C_in, kH, kW) -> an RGB image (H, W, 3) in [0, 1]: each filter averaged over
    its input channels, on one symmetric scale, tiled ``columns`` wide, each pixel ``scale`` pixels."""
    kernels = weights.mean(axis=1)  # (C_out, kH, kW)
    kernels = kernels / (float(np.abs(kernels).max()) or 1.0)  # [-1, 1]
    count, kh, kw = kernels.shape
    rows = -(-count // columns)
    grid = np.zeros((rows * (kh + 1) + 1, columns * (kw + 1) + 1))  # one white pixel between filters
    for k, kernel in enumerate(kernels):
        r, c = divmod(k, columns)
        grid[1 + r * (kh + 1) : 1 + r * (kh + 1) + kh, 1 + c * (kw + 1) : 1 + c * (kw + 1) + kw] = kernel
    positive, negative = np.clip(grid, 0, 1), np.clip(-grid, 0, 1)
    rgb = np.stack([1 - negative, 1 - positive - negative, 1 - positive], axis=-1)  # white -> red or blue
    return np.kron(rgb, np.ones((scale, scale, 1))).astype(np.float32)
