"""--tensorboard writes event files that TensorBoard's own reader reads back as the run's metrics."""

import csv

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.training import tensorboard

pytest.importorskip("tensorboard")  # an optional extra: cnnlab[tensorboard]

SMALL = ["--train-size", "300", "--valid-size", "100", "--batch-size", "50", "--lr", "0.01", "--quiet"]


def read_events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / tensorboard.DIRECTORY), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_scalars_per_epoch_match_metrics_csv(synthetic_dir, tmp_path, backend):
    run = tmp_path / "run"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--epochs", "3", *SMALL]
    assert (
        main([*args, "--tensorboard", "--backend", backend, *(["--ema", "0"] if backend == "numpy" else [])])
        == 0
    )
    events = read_events(run)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    for column, tag in tensorboard.SCALARS.items():
        if column not in rows[0]:
            continue
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2, 3], tag
        assert np.allclose([e.value for e in logged], [float(r[column]) for r in rows], rtol=1e-4), tag
    images = events.Images(tensorboard.FILTERS_TAG)
    assert [i.step for i in images] == [1, 2, 3]
    assert images[-1].width == 8 * (8 * 4 + 1) and images[-1].height > 0  # 32 filters of 3x3, 8 per row


def test_resume_continues_the_curves_without_repeating_an_epoch(synthetic_dir, tmp_path, monkeypatch):
    from cnnlab.training import loop

    run = tmp_path / "run"
    args = [
        "train",
        "--data-dir",
        str(synthetic_dir),
        "--out",
        str(run),
        "--epochs",
        "3",
        "--tensorboard",
        *SMALL,
    ]
    original = loop.Progress.end_epoch

    def interrupt_after_two(self, row):
        original(self, row)
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop.Progress, "end_epoch", interrupt_after_two)
    assert main(args) == 130
    monkeypatch.setattr(loop.Progress, "end_epoch", original)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    steps = [e.step for e in read_events(run).Scalars("loss/train")]
    assert steps == [1, 2, 3]


def test_filters_image_is_red_for_positive_and_blue_for_negative():
    weights = np.zeros((2, 1, 1, 1), np.float32)
    weights[0, 0, 0, 0], weights[1, 0, 0, 0] = 1.0, -1.0
    image = tensorboard.filters_image(weights, scale=1, columns=2)
    assert image.shape == (3, 5, 3)
    assert np.allclose(image[1, 1], [1, 0, 0]) and np.allclose(image[1, 3], [0, 0, 1])
    assert np.allclose(image[0, 0], [1, 1, 1])  # the white border


def test_tensorboard_option_is_off_by_default_and_writes_nothing(trained_run):
    assert not (trained_run / tensorboard.DIRECTORY).exists()


def without_tensorboard(monkeypatch, broken: bool):
    """tensorboard not installed (``broken=False``: nothing to find), or installed but failing to import."""
    import importlib.util
    import sys

    real = importlib.util.find_spec
    if not broken:

        def find_spec(name, *rest):
            return None if name == "tensorboard" else real(name, *rest)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it raises ImportError


def test_a_finished_tensorboard_run_loads_where_tensorboard_is_not_installed(
    synthetic_dir, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--epochs", "1", "--tensorboard"]
    assert main([*args, *SMALL]) == 0
    without_tensorboard(monkeypatch, broken=False)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data-dir", str(synthetic_dir)]) == 0
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("broken", [False, True])
def test_a_resume_that_cannot_load_tensorboard_is_one_line_and_keeps_the_run(
    synthetic_dir, tmp_path, monkeypatch, capsys, broken
):
    run = tmp_path / "run"
    args = ["train", "--data-dir", str(synthetic_dir), "--out", str(run), "--epochs", "1", "--tensorboard"]
    assert main([*args, *SMALL]) == 0
    saved = (run / "metrics.csv").read_bytes(), (run / "checkpoint.pt").read_bytes()
    without_tensorboard(monkeypatch, broken)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "--tensorboard cannot load TensorBoard's writer" in err
    assert "pip install 'cnnlab[tensorboard]'" in err
    assert ((run / "metrics.csv").read_bytes(), (run / "checkpoint.pt").read_bytes()) == saved
