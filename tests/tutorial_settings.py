"""The tutorial's small settings: what tests/test_tutorial.py runs it with, and what the site's build
(docs/hooks/tutorial.py) runs it with to show its outputs. Standard library only, no side effects."""

import os


def small_settings(data_dir: str | os.PathLike | None, out: str | os.PathLike) -> str:
    """The source of the notebook's parameters cell: a few hundred images, two epochs, one seed.
    ``data_dir`` None lets cnnlab find the real data as it always does."""
    return "\n".join(
        [
            "TRAIN_SIZE = 400",
            "VALID_SIZE = 100",
            "EPOCHS = 2",
            "BATCH_SIZE = 100",
            "SEEDS = 1",
            "OVERFIT_TRAIN_SIZE = 200",
            "OVERFIT_EPOCHS = 3",
            "LR_STEPS = 20",
            f"DATA_DIR = {str(data_dir) if data_dir else None!r}",
            f"OUT = {str(out)!r}",
        ]
    )
