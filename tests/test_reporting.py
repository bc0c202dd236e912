"""The evaluate and report workflows as library functions (cnnlab.runs.reporting), the run
loader's config, and report.html's structure read back with an HTML parser."""

import json
import shutil

import pytest

from cnnlab.runs.loader import load_run


@pytest.fixture
def preset_run(trained_run, tmp_path):
    """A copy of the trained run whose config.json names a preset its own values override, as
    `cnnlab train --preset convnet-full --epochs 2 --lr 0.01 ...` would save it."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / "config.json").read_text())
    config["preset"] = "convnet-full"  # epochs=20, lr=6e-3, translate=1, hflip, ema=0.99, ...
    (run / "config.json").write_text(json.dumps(config))
    return run, config


def test_loaded_config_is_the_saved_one_even_with_a_preset(preset_run):
    run, saved = preset_run
    config = load_run(run).config
    assert config.preset == "convnet-full"
    assert config.to_dict() == {**saved, "betas": tuple(saved["betas"])}
    assert (config.epochs, config.lr, config.translate) == (2, 0.01, 0)
