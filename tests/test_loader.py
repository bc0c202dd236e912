"""The one run loader: which weights a run reports (early stopping's best, the EMA average, the last
epoch's), the model it builds from them, and one clear line for every mismatch."""

import json
import shutil

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import FASHION_MNIST
from cnnlab.errors import RunDirError
from cnnlab.models import build_model
from cnnlab.runs.loader import _model_with_weights, load_run, reported_weights
from cnnlab.training.checkpoint import save_checkpoint
from cnnlab.training.config import TrainConfig

FASHION = FASHION_MNIST.dataset

BEST, LAST = {"w": "best epoch's"}, {"w": "last epoch's"}
EMA = {"module.w": "averaged", "n_averaged": 7}


@pytest.mark.parametrize(
    "patience, checkpoint, expected",
    [
        (2, {"best_model": BEST, "ema": EMA, "model": LAST}, BEST),
        (2, {"best_model": BEST, "model": LAST}, BEST),
        (None, {"best_model": BEST, "ema": EMA, "model": LAST}, {"w": "averaged"}),  # n_averaged dropped
        (None, {"best_model": BEST, "model": LAST}, LAST),  # a best model no longer asked for is unused
        (2, {"best_model": "damaged", "ema": EMA, "model": LAST}, {"w": "averaged"}),
        (2, {"ema": "damaged", "model": LAST}, LAST),
        (None, {}, None),
    ],
)
def test_the_reported_weights_are_the_best_then_the_average_then_the_last(patience, checkpoint, expected):
    assert reported_weights(TrainConfig(patience=patience), checkpoint) == expected


def test_ema_weights_load_into_a_plain_model():
    """AveragedModel's own state_dict, as a torch run saves it, gives the averaged network's weights."""
    from cnnlab.training.torch_engine import TorchEngine

    config = TrainConfig(ema=0.5, precision="32", device="cpu", batch_size=8)
    engine = TorchEngine(config, 1, FASHION)
    images = np.random.default_rng(0).integers(0, 255, (8, 1, 28, 28), dtype=np.uint8)
    engine.train_batch(engine.to_native(images), engine.to_native(np.arange(8) % 10))
    engine.train_batch(engine.to_native(images), engine.to_native(np.arange(8) % 10))
    state = engine.state_dict()
    weights = reported_weights(config, state)
    averaged = engine.ema.module.state_dict()
    assert weights.keys() == averaged.keys() == state["model"].keys()
    assert all(torch.equal(weights[k], averaged[k]) for k in weights)
    assert not torch.equal(weights["0.weight"], state["model"]["0.weight"])


def make_run(path, config: TrainConfig, engine_state: dict, summary: dict | None = None):
    path.mkdir()
    config.save(path / "config.json")
    history = [{"epoch": 1, "valid_loss": 0.5}]
    save_checkpoint(
        path / "checkpoint.pt", engine_state=engine_state, config=config.to_dict(), history=history
    )
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_load_run_builds_the_model_with_the_reported_weights_in_eval_mode(tmp_path):
    config = TrainConfig(model="seed", dropout=0.25, patience=3)
    best, last = (build_model("seed", (1, 28, 28), 10, dropout=0.25).state_dict() for _ in range(2))
    run = make_run(tmp_path / "run", config, {"model": last, "best_model": best}, {"test_accuracy": 0.5})
    loaded = load_run(str(run))
    assert loaded.path == run and loaded.config == config and not loaded.model.training
    assert loaded.history == [{"epoch": 1, "valid_loss": 0.5}] and loaded.summary == {"test_accuracy": 0.5}
    state = loaded.model.state_dict()
    assert all(torch.equal(state[k], best[k]) for k in best)
    assert not all(torch.equal(state[k], last[k]) for k in last)
    dropout = [m for m in loaded.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropout and all(m.p == 0.25 for m in dropout)  # built as the run's config says
    assert load_run(make_run(tmp_path / "unfinished", config, {"model": last})).summary is None
    as_arrays = {k: v.numpy() for k, v in best.items()}  # NumPy arrays are taken as well as tensors
    state = _model_with_weights(run, config, FASHION, as_arrays).state_dict()
    assert all(torch.equal(state[k], best[k]) for k in best)


def test_load_run_refuses_weights_that_are_not_the_configs_model(tmp_path):
    config = TrainConfig(model="convnet")
    weights = build_model("convnet", (1, 28, 28), 10).state_dict()
    run = make_run(tmp_path / "other", config, {"model": weights})
    (run / "config.json").write_text(json.dumps({**config.to_dict(), "model": "seed"}))
    with pytest.raises(RunDirError) as exc:
        load_run(run)
    assert str(exc.value) == (
        f"{run / 'checkpoint.pt'} holds weights of model 'convnet' but {run / 'config.json'} says "
        "model 'seed'; the two files come from different runs"
    )
    with pytest.raises(
        RunDirError, match=r"checkpoint.pt holds no model weights; is it a cnnlab checkpoint\?"
    ):
        load_run(make_run(tmp_path / "none", config, {"optimizer": {}}))
    wrong = {k: v[..., :1] if v.dim() > 1 else v for k, v in weights.items()}
    with pytest.raises(RunDirError) as exc:
        load_run(make_run(tmp_path / "misfit", config, {"model": wrong}))
    message = str(exc.value)
    prefix = f"{tmp_path / 'misfit' / 'checkpoint.pt'} does not fit model 'convnet' ("
    assert message.startswith(prefix) and message.endswith(")")
    torch_says = message[len(prefix) : -1]  # torch's own explanation, its many lines made one and cut short
    assert torch_says.startswith("Error(s) in loading state_dict for Sequential: size mismatch for 0.weight:")
    assert len(torch_says) == 200 and "\n" not in torch_says and "  " not in torch_says


def test_evaluate_scores_early_stoppings_best_weights_not_the_last(early_stopped_run, tmp_path, capsys):
    """Best and last weights differ in accuracy here, so evaluating the wrong ones shows."""
    run, _ = early_stopped_run
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    state = load_run(run).model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in checkpoint["best_model"].items())
    summary = json.loads((run / "summary.json").read_text())
    assert main(["evaluate", str(run), "--out", str(tmp_path / "best")]) == 0
    best = json.loads((tmp_path / "best" / "evaluation-test.json").read_text())["accuracy"]
    assert best == summary["test_accuracy"]  # float32 training, float32 evaluation: the same images right

    # The same run as if it had not used early stopping: evaluate scores the last epoch's EMA weights.
    last_run = tmp_path / "last"
    shutil.copytree(run, last_run)
    config = json.loads((last_run / "config.json").read_text())
    (last_run / "config.json").write_text(json.dumps({**config, "patience": None}))
    assert main(["evaluate", str(last_run), "--out", str(tmp_path / "last-eval")]) == 0
    last = json.loads((tmp_path / "last-eval" / "evaluation-test.json").read_text())["accuracy"]
    assert abs(best - last) > 0.1, (best, last)
    capsys.readouterr()
