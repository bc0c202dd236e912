"""``cnnlab compare`` and ``cnnlab lr-find`` end to end on synthetic data."""

import csv

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.training.lr_find import rate_at, suggest

SMALL = ["--train-size", "300", "--valid-size", "100", "--batch-size", "50"]


def test_compare_writes_table_and_overlay(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            "--optimizers",
            "sgd,adam",
            "--seeds",
            "2",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--data-dir",
            str(synthetic_dir),
            *SMALL,
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "compare.csv")))
    # the base config is AdamW, so each gets its conventional rate
    assert [(r["optimizer"], float(r["lr"])) for r in rows] == [("sgd", 0.1), ("adam", 0.001)]
    for r in rows:
        assert r["seeds"] == "2" and r["diverged"] == "0"
        assert 0 <= float(r["test_accuracy_mean"]) <= 1 and float(r["test_accuracy_std"]) >= 0
        assert float(r["best_valid_accuracy_mean"]) >= float(r["final_valid_accuracy_mean"]) - 1e-9
    assert (out / "compare_loss.png").stat().st_size > 10_000
    assert len(list(out.glob("*-seed*"))) == 4  # every run kept as an ordinary run directory
    assert "±" in printed and "sgd" in printed and "adam" in printed


def test_compare_with_lrs_grid_and_a_diverging_config(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            "--optimizers",
            "sgd",
            "--lrs",
            "0.01,1e9",
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--schedule",
            "constant",
            "--compare-out",
            str(out),
            "--data-dir",
            str(synthetic_dir),
            *SMALL,
        ]
    )
    assert code == 0
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert [r["diverged"] for r in rows] == ["0", "1"]
    assert "1 diverged" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizers", "sgd,lion"], "--optimizers takes names from"),
        (["--seeds", "0"], "--seeds must be a whole number from 1 to 1000"),
        (["--lrs", "0.1,-1"], "--lr must be a positive number"),
    ],
)
def test_compare_refuses_bad_options(tmp_path, capsys, args, message):
    assert main(["compare", "--compare-out", str(tmp_path / "c"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_rate_at_is_exponential():
    rates = [rate_at(s, 5, 1e-4, 1.0) for s in range(5)]
    np.testing.assert_allclose(rates, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_suggest_finds_the_steepest_descent():
    lrs = list(np.logspace(-6, 0, 61))
    # a loss that falls fastest at lr = 1e-3, with flat ends
    losses = [2.3 - 1.5 / (1 + np.exp(-3 * (np.log10(lr) + 3))) for lr in lrs]
    assert suggest(lrs, losses) == pytest.approx(1e-3, rel=0.3)
    assert suggest(lrs[:3], losses[:3]) is None


def test_lr_find_end_to_end(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "lrf"
    assert (
        main(["lr-find", "--steps", "30", "--out", str(out), "--data-dir", str(synthetic_dir), *SMALL]) == 0
    )
    printed = capsys.readouterr().out
    assert "suggested learning rate:" in printed
    rows = list(csv.DictReader(open(out / "lr_find.csv")))
    lrs = [float(r["lr"]) for r in rows]
    assert 5 <= len(rows) <= 30 and lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-6)
    assert (out / "lr_find.png").stat().st_size > 10_000


def test_lr_find_refuses_bad_ranges(tmp_path, capsys):
    assert main(["lr-find", "--start-lr", "1", "--end-lr", "0.1", "--out", str(tmp_path / "x")]) == 2
    assert "--start-lr must be > 0 and below --end-lr" in capsys.readouterr().err
