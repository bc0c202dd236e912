"""``cnnlab compare`` and ``cnnlab lr-find`` end to end on synthetic data, and compare's parts on
scripted outcomes (no training)."""

import csv
import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.training.lr_find import rate_at, suggest
from tests.conftest import requires_real_data

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
    # Each mean and standard deviation is that of the runs' own summaries, seed by seed.
    spread = 0.0
    for r in rows:
        runs = [out / f"{r['optimizer']}-lr{float(r['lr']):g}-seed{seed}" for seed in (0, 1)]
        summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
        for metric in ("final_valid_accuracy", "best_valid_accuracy", "test_accuracy"):
            values = [s[metric] for s in summaries]
            assert float(r[f"{metric}_mean"]) == pytest.approx(statistics.fmean(values), rel=1e-5)
            assert float(r[f"{metric}_std"]) == pytest.approx(statistics.stdev(values), rel=1e-5, abs=1e-9)
            spread += statistics.stdev(values)
        seconds = statistics.fmean(s["seconds"] for s in summaries)
        assert float(r["seconds_mean"]) == pytest.approx(seconds, rel=1e-5)
    assert spread > 0  # the seeds differ, so a mean that is one seed's value, or a zero spread, shows


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


def _falling_then_exploding(lrs):
    """A loss that falls from 2.3 to 0.8 around lr 1e-3, then rises steeply past 3e-2."""
    return [
        2.3 - 1.5 / (1 + np.exp(-3 * (np.log10(lr) + 3))) + 40 * max(0.0, np.log10(lr) + 1.5) ** 2
        for lr in lrs
    ]


def test_suggest_picks_the_valley_below_the_lowest_loss():
    lrs = list(np.logspace(-6, 0, 61))
    losses = _falling_then_exploding(lrs)
    suggestion, rule, rules = suggest(lrs, losses)
    lowest = lrs[int(np.argmin(losses))]
    assert rule == "valley" and suggestion == rules["valley"] and suggestion < lowest
    assert 1e-4 < suggestion < 1e-2  # inside the fall, not on its flat start nor past its end
    assert rules["minimum/10"] == pytest.approx(lowest / 10)
    assert rules["steepest"] == pytest.approx(1e-3, rel=0.3)
    assert suggest(lrs[:3], losses[:3]) == (None, None, {})


def test_suggest_never_looks_past_the_lowest_loss():
    """The issue's sweep: the smoothed loss is lowest at 0.0187, blows up, then drifts down on a dead
    network; a slope found past the minimum (0.245 once) trains at chance."""
    lrs = list(np.logspace(-6, 0, 60))
    low = int(np.searchsorted(lrs, 0.0187))
    losses = [2.33 - 0.64 * min(1.0, max(0.0, (np.log10(lr) + 4) / 2.27)) for lr in lrs[: low + 1]]
    losses += [4.6 - 0.12 * k for k in range(len(lrs) - low - 1)]  # the blow-up, then the slow drift
    suggestion, rule, rules = suggest(lrs, losses)
    assert suggestion is not None and all(rate < lrs[low] for rate in rules.values())
    # A drift longer than the fall: still nothing past the minimum.
    drifting = losses[: low + 1] + [4.6 - 0.01 * k for k in range(100)]
    rates = list(np.logspace(-6, 2, len(drifting)))
    suggestion, rule, rules = suggest(rates, drifting)
    assert rule == "valley" and all(rate < rates[low] for rate in rules.values())
    # A fall too short for a valley: the lowest rate / 10.
    short = [2.3] * 20 + [2.2, 2.0, 1.9] + [5.0] * 5
    suggestion, rule, _ = suggest(lrs[: len(short)], short)
    assert rule == "minimum/10" and suggestion == pytest.approx(lrs[22] / 10)
    # A loss that never fell: nothing to suggest.
    assert suggest(lrs[:10], [2.3 + 0.1 * k for k in range(10)]) == (None, None, {})


class LossOfRate:
    """An engine whose loss at each step is a function of the rate alone."""

    backend, precision = "scripted", "32"

    def __init__(self, config, loss_of_rate):
        self.config, self.loss_of_rate, self.rate = config, loss_of_rate, 0.0

    def initialize(self, dataset, images):
        pass

    def to_native(self, x):
        return np.asarray(x)

    def set_lr(self, lr):
        self.rate = lr

    def train_batch(self, x, y):
        return self.loss_of_rate(self.rate) * len(y), 0

    def to_host(self, values):
        return [float(v) for v in values]


def test_the_sweep_stops_for_good_once_the_loss_doubles(monkeypatch):
    """A network killed at lr 0.05 settles at chance (2.3), under 4x its lowest loss (0.9) but over
    twice it: the sweep stops there, and the later drift is never seen."""
    from cnnlab.training import lr_find
    from cnnlab.training.config import TrainConfig
    from tests.test_loop import arrays

    def loss(rate):
        return 2.3 if rate > 0.05 else 2.3 - 1.4 * min(1.0, max(0.0, (np.log10(rate) + 5) / 3))

    from cnnlab.data.idx_datasets import FASHION_MNIST

    monkeypatch.setattr(lr_find, "make_engine", lambda config, steps, dataset: LossOfRate(config, loss))
    result = lr_find.sweep(
        TrainConfig(batch_size=4), FASHION_MNIST.dataset, arrays(), lr_find.SweepRange(1e-6, 1.0, 100)
    )
    lowest = np.minimum.accumulate(result.losses)
    crossing = next(i for i, v in enumerate(result.losses) if v > lr_find.STOP_FACTOR * lowest[i])
    assert len(result.lrs) == crossing + 1  # the step that crossed is the last one
    assert len(result.lrs) < 95 and result.suggestion < 0.05 and result.rule == "valley"


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


def _outcome(optimizer, lr, seed, test, final=0.5, best=0.6, seconds=10.0):
    from cnnlab.training.compare import Outcome

    summary = None
    if test is not None:
        summary = {
            "test_accuracy": test,
            "final_valid_accuracy": final,
            "best_valid_accuracy": best,
            "seconds": seconds,
        }
    return Outcome(optimizer, lr, seed, [{"epoch": 1.0}], summary)


def test_summarise_gives_each_configurations_mean_and_sample_std_over_its_finished_seeds():
    from cnnlab.training.compare import COLUMNS, summarise

    outcomes = [
        _outcome("sgd", 0.1, 0, 0.80, final=0.70, best=0.75, seconds=10.0),
        _outcome("adam", 0.001, 0, 0.90, seconds=4.0),
        _outcome("sgd", 0.1, 1, 0.84, final=0.72, best=0.79, seconds=14.0),
        _outcome("sgd", 0.1, 2, 0.89, final=0.77, best=0.77, seconds=15.0),
        _outcome("adam", 0.001, 1, None),  # diverged
    ]
    sgd, adam = summarise(outcomes)
    assert set(sgd) == set(COLUMNS)
    assert (sgd["optimizer"], sgd["lr"], sgd["seeds"], sgd["diverged"]) == ("sgd", 0.1, 3, 0)
    for metric, values in (
        ("test_accuracy", [0.80, 0.84, 0.89]),
        ("final_valid_accuracy", [0.70, 0.72, 0.77]),
        ("best_valid_accuracy", [0.75, 0.79, 0.77]),
    ):
        assert sgd[f"{metric}_mean"] == statistics.fmean(values)
        assert sgd[f"{metric}_std"] == statistics.stdev(values)  # the sample (n - 1) deviation
    assert sgd["seconds_mean"] == 13.0
    # One seed finished and one diverged: its values, a spread of 0, and the divergence counted.
    assert (adam["optimizer"], adam["seeds"], adam["diverged"]) == ("adam", 2, 1)
    assert (adam["test_accuracy_mean"], adam["test_accuracy_std"], adam["seconds_mean"]) == (0.9, 0.0, 4.0)
    (none,) = summarise([_outcome("sgd", 1e9, 0, None)])
    assert none["diverged"] == 1 and np.isnan(none["test_accuracy_mean"]) and np.isnan(none["seconds_mean"])
    assert np.isnan(none["test_accuracy_std"])


def test_the_table_shows_percentages_with_their_spread():
    from cnnlab.training.compare import format_table, summarise

    rows = summarise(
        [_outcome("sgd", 0.1, 0, 0.8, seconds=3.0), _outcome("sgd", 0.1, 1, None)]
        + [_outcome("adam", 0.001, s, 0.8 + s / 10, seconds=2.0) for s in (0, 1)]
    )
    header, rule, sgd, adam = format_table(rows).splitlines()
    assert header.split() == "optimizer lr seeds final valid best valid test seconds".split()
    assert rule == "-" * len(header)
    assert sgd == "sgd            0.1     2    50.00 ± 0.00%    60.00 ± 0.00%    80.00 ± 0.00%      3.0" + (
        "  (1 diverged)"
    )
    assert adam == "adam         0.001     2    50.00 ± 0.00%    60.00 ± 0.00%    85.00 ± 7.07%      2.0"


def test_a_comparison_without_a_validation_split_leaves_its_validation_cells_empty():
    from cnnlab.training.compare import format_table, summarise

    # Runs with --valid-size 0 write null validation scores: no mean of them, and no crash.
    (row,) = summarise([_outcome("sgd", 0.1, s, 0.8, final=None, best=None) for s in (0, 1)])
    assert np.isnan(row["final_valid_accuracy_mean"]) and row["test_accuracy_mean"] == 0.8
    (line,) = format_table([row]).splitlines()[2:]
    assert line.split() == ["sgd", "0.1", "2", "-", "-", "80.00", "±", "0.00%", "10.0"]


def test_the_plan_checks_everything_first_and_picks_each_optimizers_rate():
    from cnnlab.errors import ConfigError
    from cnnlab.training.compare import make_plan

    options = {"optimizer": "sgd", "lr": 0.05, "epochs": 2}
    plan = make_plan(options, ["sgd", "adam", "adamw"], None, 3, None)
    assert plan.grid == [("sgd", 0.05), ("adam", 1e-3), ("adamw", 1e-3)]  # the base keeps its own rate
    assert plan.seeds == [0, 1, 2] and plan.options == options and plan.options is not options
    assert plan.model == "convnet-pool-bn" and plan.config_file is None
    grid = make_plan({}, ["sgd", "adam"], [0.1, 0.2], 1, None).grid
    assert grid == [("sgd", 0.1), ("sgd", 0.2), ("adam", 0.1), ("adam", 0.2)]
    assert make_plan({}, ["adamw"], None, 1000, None).grid == [("adamw", 0.01)]
    for optimizers, seeds, lrs, message in [
        (["sgd", "lion"], 1, None, "--optimizers takes names from sgd, adam, adamw. Received: sgd,lion"),
        ([], 1, None, "--optimizers takes names from"),
        (["sgd"], 0, None, "--seeds must be a whole number from 1 to 1000. Received: 0"),
        (["sgd"], 1001, None, "Received: 1001"),
        (["sgd"], True, None, "Received: True"),
        (["sgd"], 2.0, None, "Received: 2.0"),
        (["sgd"], 1, [0.1, -1.0], "--lr must be a positive number"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            make_plan({}, optimizers, lrs, seeds, None)


class FakeResult:
    def __init__(self, config):
        self.history = [{"epoch": 1, "lr": config.lr, "seed": config.seed}]
        self.summary = {
            "test_accuracy": 0.5 + config.seed / 10,
            "final_valid_accuracy": 0.5,
            "best_valid_accuracy": 0.5,
            "seconds": 7.0,
        }


def fake_train(config, session):
    from cnnlab.errors import DivergedError

    if config.lr > 1:
        rundir = __import__("pathlib").Path(config.out)
        rundir.mkdir()
        (rundir / "metrics.csv").write_text("epoch,train_loss\n1,2.5\n2,0.125\n")
        raise DivergedError(float("nan"))
    return FakeResult(config)


def test_every_run_is_an_ordinary_run_named_after_its_configuration(tmp_path, monkeypatch, capsys):
    from cnnlab.training import compare, run

    trained, sessions = [], []

    def train(config, session):
        trained.append(config)
        sessions.append(session)
        return fake_train(config, session)

    monkeypatch.setattr(run, "train", train)
    plan = compare.make_plan({"epochs": 1, "train_size": 100}, ["sgd"], [0.01, 1e9], 2, None)
    log = []
    outcomes = compare.run_all(plan, tmp_path, log.append)
    assert [(c.optimizer, c.lr, c.seed, c.epochs, c.train_size) for c in trained] == [
        ("sgd", 0.01, 0, 1, 100),
        ("sgd", 0.01, 1, 1, 100),
        ("sgd", 1e9, 0, 1, 100),
        ("sgd", 1e9, 1, 1, 100),
    ]
    assert [c.out for c in trained] == [
        str(tmp_path / name)
        for name in ("sgd-lr0.01-seed0", "sgd-lr0.01-seed1", "sgd-lr1e+09-seed0", "sgd-lr1e+09-seed1")
    ]
    assert log == [
        "sgd-lr0.01-seed0: test accuracy 50.00% (7 s)",
        "sgd-lr0.01-seed1: test accuracy 60.00% (7 s)",
        "sgd-lr1e+09-seed0: diverged after 2 epoch(s)",
        "sgd-lr1e+09-seed1: diverged after 2 epoch(s)",
    ]
    assert [(o.optimizer, o.lr, o.seed) for o in outcomes] == [(c.optimizer, c.lr, c.seed) for c in trained]
    assert (
        outcomes[1].history == [{"epoch": 1, "lr": 0.01, "seed": 1}] and outcomes[1].summary["seconds"] == 7.0
    )
    # A diverged run keeps the epochs it saved, read back from its metrics.csv, and no summary.
    assert outcomes[2].summary is None
    assert outcomes[2].history == [{"epoch": 1.0, "train_loss": 2.5}, {"epoch": 2.0, "train_loss": 0.125}]
    assert compare._partial_history(tmp_path / "never") == []
    # Each run trains quietly: no progress, and nothing of its own logged (compare logs one line a run).
    assert all(s.quiet is True for s in sessions) and not any(s.notebook for s in sessions)
    for session in sessions:
        session.log("a run's own message")
    assert capsys.readouterr().out == ""


def test_a_config_file_is_the_base_of_the_plan_and_of_every_run(tmp_path, monkeypatch):
    from cnnlab.training import compare, run

    base = tmp_path / "base.json"
    base.write_text(json.dumps({"model": "seed", "optimizer": "adam", "lr": 0.005, "valid_size": 1000}))
    options = {"train_size": 58_000}  # fits beside the file's 1,000 validation images, not the default 5,000
    plan = compare.make_plan(options, ["adam", "sgd"], None, 1, str(base))
    assert plan.grid == [("adam", 0.005), ("sgd", 0.1)]  # adam keeps the file's rate
    assert plan.config_file == str(base) and plan.model == "seed"
    trained = []
    monkeypatch.setattr(run, "train", lambda config, session: trained.append(config) or FakeResult(config))
    compare.run_all(plan, tmp_path / "cmp", lambda message: None)
    assert [(c.model, c.optimizer, c.lr, c.train_size, c.valid_size) for c in trained] == [
        ("seed", "adam", 0.005, 58_000, 1000),
        ("seed", "sgd", 0.1, 58_000, 1000),
    ]


def test_a_comparison_writes_its_table_and_plot_in_its_own_directory(tmp_path, monkeypatch):
    from cnnlab.report import overlay
    from cnnlab.training import compare, run

    monkeypatch.setattr(run, "train", fake_train)
    plotted = []
    monkeypatch.setattr(overlay, "plot_overlay", lambda *args, **kwargs: plotted.append((args, kwargs)))
    plan = compare.make_plan({"model": "seed"}, ["adam", "sgd"], [0.01], 2, None)
    log = []
    result = compare.run_comparison(plan, tmp_path / "cmp", log.append)
    assert result.out == tmp_path / "cmp" and len(result.outcomes) == 4
    assert log[0] == f"comparing 2 configuration(s) x 2 seed(s) in {tmp_path / 'cmp'}"
    assert plotted == [
        ((result.outcomes, tmp_path / "cmp" / "compare_loss.png"), {"title": "model seed: adam vs sgd"})
    ]
    with open(tmp_path / "cmp" / "compare.csv") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames) == compare.COLUMNS
    assert [(r["optimizer"], r["seeds"], r["test_accuracy_mean"], r["test_accuracy_std"]) for r in rows] == [
        ("adam", "2", "0.55", "0.0707107"),
        ("sgd", "2", "0.55", "0.0707107"),
    ]
    assert result.rows == compare.summarise(result.outcomes) and str(result) == compare.format_table(
        result.rows
    )
    # Without --out, a new timestamped directory under runs/ named after the comparison.
    monkeypatch.chdir(tmp_path)
    default = compare.run_comparison(plan, None, log.append).out
    assert default.parent == Path("runs") and default.name.endswith("-compare")
    assert (default / "compare.csv").is_file()


@requires_real_data
@pytest.mark.slow
def test_the_issues_sweep_suggests_a_rate_that_learns(tmp_path):
    """`cnnlab.lr_find(steps=60, model='convnet', train_size=5000)` once suggested 0.245, past the
    blow-up, where training gives 10% (chance). Its suggestion must now train."""
    import cnnlab

    found = cnnlab.lr_find(steps=60, model="convnet", train_size=5000, out=str(tmp_path / "lrf"))
    assert found.suggestion < found.sweep.minimum and found.rule in ("valley", "minimum/10")
    run = cnnlab.train(
        model="convnet", train_size=5000, lr=found.suggestion, epochs=1, out=str(tmp_path / "t"), quiet=True
    )
    assert run.summary["test_accuracy"] > 0.5
