import json

import pytest

from cnnlab.errors import ConfigError
from cnnlab.training.config import PRESETS, TrainConfig, resolve


def test_defaults_are_the_fast_convnet_recipe():
    config = resolve({})
    assert (config.model, config.optimizer, config.schedule) == ("convnet-pool-bn", "adamw", "onecycle")
    assert (config.batch_size, config.whiten, config.epochs) == (128, True, 8)
    assert config.valid_size == 5_000 and config.train_images(60_000) == 55_000


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_do_not_inherit_the_default_whitening(preset):
    # Each preset was measured with whitening on or off (the docs' results page), so each pins it: a later
    # change of the default must not change what a preset trains.
    assert "whiten" in PRESETS[preset]
    assert resolve({"preset": preset}).whiten is PRESETS[preset]["whiten"]
    assert resolve({"preset": "fast-cpu"}).whiten is True and resolve({"preset": "best-cpu"}).whiten is False


def test_a_runs_title_names_its_preset_only_when_it_has_one():
    # The default recipe is not "custom": a run without a preset is named by its model alone.
    assert resolve({}).title == "convnet-pool-bn"
    assert resolve({"preset": "best-cpu"}).title == "vgg-mini (best-cpu)"
    assert resolve({"preset": "best-cpu", "model": "resnet-mini"}).title == "resnet-mini (best-cpu)"


def test_seed_preset_is_the_notebook_final_run():
    config = resolve({"preset": "seed"})
    assert (config.model, config.train_size, config.valid_size, config.batch_size) == (
        "seed",
        10_000,
        1_000,
        512,
    )
    assert (config.optimizer, config.lr, config.momentum, config.epochs, config.schedule) == (
        "sgd",
        0.1,
        0.9,
        30,
        "constant",
    )
    first = resolve({"preset": "seed-first"})
    assert (first.epochs, first.lr) == (1, 0.001)


def test_precedence_defaults_config_preset_explicit(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 7, "lr": 0.5, "patience": 4}))
    config = resolve({"preset": "seed", "lr": 0.02}, str(path))
    assert config.epochs == 30  # preset over config file
    assert config.lr == 0.02  # explicit over preset
    assert config.patience == 4  # config file over defaults
    assert resolve({}, str(path)).epochs == 7


def test_saved_config_round_trips(tmp_path):
    config = resolve({"preset": "seed", "betas": (0.8, 0.9)})
    config.save(tmp_path / "c.json")
    again = resolve({}, str(tmp_path / "c.json"))
    assert again == config and again.betas == (0.8, 0.9)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr": -0.1}, "--lr must be a positive number. Received: -0.1"),
        ({"lr": float("nan")}, "--lr"),
        ({"batch_size": 0}, "--batch-size must be a whole number from 1 to 100000000. Received: 0"),
        ({"epochs": 0}, "--epochs"),
        (
            {"train_size": 59_000, "valid_size": 2_000},
            "must fit in the 60,000 training images of fashion-mnist",
        ),
        ({"model": "resnet9000"}, "--model must be one of"),
        ({"optimizer": "rmsprop"}, "--optimizer"),
        ({"momentum": 1.0}, "--momentum"),
        ({"betas": (0.9,)}, "--betas"),
        ({"weight_decay": -1.0}, "--weight-decay"),
        ({"valid_size": -1}, "--valid-size"),
        ({"threads": 0}, "--threads"),
        ({"preset": "fastest"}, "--preset must be one of"),
    ],
)
def test_invalid_options_are_refused_with_the_name_and_value(values, message):
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(".", r"\.").replace("+", r"\+")
    ):
        resolve(values)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"learning_rate": 0.1}', "unknown option"),
        ('{"lr": "fast"}', "invalid configuration|--lr"),
    ],
)
def test_bad_config_files(tmp_path, content, message):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        resolve({}, str(path))
    with pytest.raises(ConfigError, match="no such file"):
        resolve({}, str(tmp_path / "absent.json"))


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "no such file"),
        ("{not json", "is not valid JSON (Expecting property name enclosed in double quotes at line 1)"),
        ("[1, 2]", "must hold a JSON object of options"),
        ('{"lrr": 0.1, "epocs": 2}', "has unknown option(s) epocs, lrr"),
    ],
)
def test_a_config_file_error_keeps_the_file_and_the_reason_apart(tmp_path, content, reason):
    """``--config FILE``'s problem names the file as given; a run's own config.json names the run's
    file once, with the same reason (not "--config ...", not the file twice)."""
    from cnnlab.errors import RunDirError
    from cnnlab.training.config import ConfigFileError, config_of_run

    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigFileError) as caught:
        resolve({}, str(path))
    assert (caught.value.path, caught.value.reason) == (str(path), reason)
    joined = ": " if content is None else " "
    assert str(caught.value) == f"--config {path}{joined}{reason}"
    with pytest.raises(RunDirError) as caught:
        config_of_run(tmp_path)
    assert str(caught.value) == f"{path} is not a valid cnnlab config ({reason})"


def test_a_bad_value_in_a_runs_config_is_the_runs_problem(tmp_path):
    from cnnlab.errors import RunDirError
    from cnnlab.training.config import config_of_run

    (tmp_path / "config.json").write_text('{"lr": -1}')
    with pytest.raises(RunDirError) as caught:
        config_of_run(tmp_path)
    reason = "--lr must be a positive number. Received: -1"
    assert str(caught.value) == f"{tmp_path / 'config.json'} is not a valid cnnlab config ({reason})"


def test_every_preset_is_valid():
    for name in PRESETS:
        assert isinstance(resolve({"preset": name}), TrainConfig)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_an_unknown_preset_in_a_config_is_refused(backend):
    """A config file can name a preset without going through resolve()'s lookup."""
    with pytest.raises(ConfigError, match="--preset must be one of"):
        TrainConfig(backend=backend, preset="fastest", ema=None)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"hflip": "yes"}, "--hflip must be true or false. Received: 'yes'"),
        ({"epochs": True}, "--epochs must be a whole number from 1 to 10000. Received: True"),
        ({"epochs": 8.0}, "--epochs must be a whole number"),
        ({"epochs": 10**12}, "--epochs must be a whole number from 1 to 10000"),
        ({"seed": -1}, "--seed must be a whole number from 0 to 4294967295"),
        ({"threads": 1_000_000}, "--threads must be a whole number from 1 to 1024"),
        ({"lr": "fast"}, "--lr must be a positive number. Received: 'fast'"),
        ({"lr": float("inf")}, "--lr must be a positive number"),
        ({"gamma": 0.0}, r"--gamma must be in \(0, 1\]"),
        ({"warmup_epochs": -1.0}, "--warmup-epochs must be"),
        ({"step_epochs": 0}, "--step-epochs must be"),
        ({"betas": (0.9, 1.0)}, "--betas must be two numbers"),
        ({"preset": ["seed"]}, "--preset must be one of"),
    ],
)
def test_types_and_ranges_are_exact(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(") if "\\" not in message else message):
        resolve(values)


def test_a_huge_value_is_echoed_in_one_short_line():
    with pytest.raises(ConfigError) as caught:
        resolve({"seed": 10**5000})
    assert len(str(caught.value)) < 160 and "\n" not in str(caught.value)


def test_every_option_declares_its_check_and_the_cli_reads_its_choices():
    import argparse

    from cnnlab.commands.common import add_config_options
    from cnnlab.training.checks import Check
    from cnnlab.training.config import FIELDS

    parser = argparse.ArgumentParser()
    add_config_options(parser)
    for name, field in FIELDS.items():
        check = field.metadata["check"]
        assert isinstance(check, Check), name
        assert check.problem(field.default) is None, f"{name}'s default fails its own check"
        if isinstance(check.choices, tuple):
            action = next(a for a in parser._actions if a.dest == name)
            assert tuple(action.choices) == check.choices, name


# Property-based: any value in any field is either accepted (and then within the field's declared
# limits) or refused with a one-line ConfigError naming the option; never another exception.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-(10**5000), max_value=10**5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.floats(-2, 2), max_size=3),
)
NUMERIC_FIELDS = [
    name
    for name, f in __import__("cnnlab.training.config", fromlist=["FIELDS"]).FIELDS.items()
    if f.metadata["check"].kind in (int, float, bool, tuple)
]


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NUMERIC_FIELDS), value=ANY_VALUE)
def test_any_value_is_accepted_within_limits_or_refused_by_name(name, value):
    from cnnlab.training.config import FIELDS, flag

    check = FIELDS[name].metadata["check"]
    try:
        config = TrainConfig(**{name: value})
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(flag(name)) or "--" in message, message
        assert "\n" not in message and len(message) < 300
        return
    kept = getattr(config, name)
    assert check.problem(kept) is None
    if check.kind is int and kept is not None:
        assert type(kept) is int and check.low <= kept <= check.high
    if check.kind is bool:
        assert type(kept) is bool


def test_a_saved_config_keeps_its_overrides_of_its_preset(tmp_path):
    """config.json from `--preset best-cpu --epochs 2` must load (and rerun) with 2 epochs, not 18."""
    import json

    saved = resolve({"preset": "best-cpu", "epochs": 2}).to_dict()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(saved))
    assert resolve({}, str(path)).epochs == 2
    assert resolve({"lr": 0.1}, str(path)).epochs == 2
    assert resolve({"preset": "best-cpu"}, str(path)).epochs == 18  # naming the preset again applies it
    hand_written = tmp_path / "hand.json"
    hand_written.write_text(json.dumps({"preset": "seed", "seed": 3}))
    loaded = resolve({}, str(hand_written))
    assert (loaded.model, loaded.epochs, loaded.seed) == ("seed", 30, 3)


def test_the_seed_preset_pins_its_chosen_seed_and_an_explicit_seed_wins():
    assert resolve({"preset": "seed"}).seed == 1
    assert resolve({"preset": "seed-first"}).seed == 10
    assert resolve({"preset": "seed", "seed": 0}).seed == 0
    assert resolve({}).seed == 0  # other runs keep the default
