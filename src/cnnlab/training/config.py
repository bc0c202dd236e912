"""The training configuration: one dataclass, a default and a reason per field, presets.

Precedence, lowest first: the defaults below < ``--config FILE`` < ``--preset`` < options given
on the command line. The resolved config is saved as ``config.json`` in every run directory,
and ``cnnlab train --config RUN/config.json`` reruns it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from cnnlab.data import TRAIN_TOTAL
from cnnlab.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "32", "bf16", "16-mixed")


def _field(default, help: str, **kwargs):
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


@dataclasses.dataclass
class TrainConfig:
    model: str = _field("convnet", "model name from the registry (`cnnlab models` lists them)")
    backend: str = _field(
        "torch", "torch, or numpy for cnnlab's from-scratch engine", choices=("torch", "numpy")
    )
    optimizer: str = _field("adamw", "optimizer", choices=OPTIMIZERS)
    # The default recipe (lr, betas, pct_start, label smoothing, EMA) was tuned for the earliest 90% with
    # convnet at batch 256 on 2 CPU cores, and checked on seeds not used in tuning (README, results).
    lr: float = _field(1e-2, "learning rate (the peak rate under the one-cycle schedule)")
    momentum: float = _field(0.9, "SGD momentum")
    # A shorter memory than Adam's (0.9, 0.999) follows the high one-cycle rate better early on.
    betas: tuple[float, float] = _field((0.85, 0.99), "Adam/AdamW betas, as B1,B2")
    weight_decay: float = _field(5e-4, "weight decay (decoupled for adamw, L2 for sgd/adam)")
    schedule: str = _field("onecycle", "learning-rate schedule", choices=SCHEDULES)
    # 5% rather than torch's 30% or fastai's 25%: with 8 epochs of convnet it put the default run over
    # 90% test accuracy an epoch sooner (README, results).
    pct_start: float = _field(0.05, "with --schedule onecycle: the fraction of the run spent warming up")
    warmup_epochs: float = _field(0.0, "linear warm-up before the schedule, in epochs (fractions allowed)")
    step_epochs: int = _field(10, "with --schedule step: epochs between decays")
    gamma: float = _field(0.1, "with --schedule step: the factor applied at each decay")
    label_smoothing: float = _field(0.1, "cross-entropy label smoothing (Szegedy et al. 2016)")
    grad_clip: float | None = _field(None, "clip the gradient's global norm to this; default: no clipping")
    dropout: float = _field(0.0, "dropout before the last linear layer")
    translate: int = _field(0, "augmentation: random shift of up to this many pixels (pad and crop)")
    hflip: bool = _field(False, "augmentation: random horizontal flips")
    # An average over the last ~30 steps: +0.5 to 1 point while the rate is still high mid-run.
    ema: float | None = _field(
        0.97,
        "keep an exponential moving average of the weights with this decay "
        "and evaluate with it; 0 turns it off",
    )
    tta: bool = _field(False, "test-time augmentation: average predictions over the image and its mirror")
    patience: int | None = _field(
        None,
        "early stopping: stop after this many epochs without a lower "
        "validation loss and restore the best weights; default: off",
    )
    # 8 epochs of convnet take about a minute on 2 CPU cores with bf16 (README, results).
    epochs: int = _field(8, "passes over the training split")
    # 256 balances steps per second against steps per epoch on 2 CPU cores.
    batch_size: int = _field(256, "images per optimizer step")
    train_size: int | None = _field(None, "training images; default: all 60,000 minus the validation split")
    valid_size: int = _field(5000, "validation images, held out of the 60,000 training images")
    seed: int = _field(0, "seed for the split, the initial weights and the batch order")
    out: str | None = _field(None, "run directory; default: runs/<timestamp>-<model>")
    data_dir: str | None = _field(
        None, "directory holding the Fashion-MNIST .gz files; default: search (`cnnlab data where`)"
    )
    device: str = _field("auto", "where to train", choices=DEVICES)
    threads: int | None = _field(None, "CPU threads for torch; default: torch's choice")
    # bf16 autocast plus channels_last doubles convnet's speed on CPUs with AVX512-BF16 (README, speed-ups).
    precision: str = _field(
        "auto",
        "arithmetic: 32, bf16 (autocast), 16-mixed (fp16 autocast + GradScaler); "
        "default: auto = bf16 where the CPU or GPU runs it natively, else 32",
        choices=PRECISIONS,
    )
    channels_last: bool = _field(True, "NHWC memory layout for convolutions")
    compile: bool = _field(False, "torch.compile the model (slow start, sometimes faster steps)")
    preset: str | None = _field(None, "a named recipe, listed below; default: none")
    eval_test_every_epoch: bool = _field(
        False, "add a test_accuracy column per epoch (for speed benchmarks only)"
    )

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]  # a JSON list; validate() checks its length
        self.validate()

    @property
    def resolved_train_size(self) -> int:
        return self.train_size if self.train_size is not None else TRAIN_TOTAL - self.valid_size

    def validate(self) -> None:
        from cnnlab.models import BACKENDS, MODELS

        def refuse(name: str, why: str) -> None:
            raise ConfigError(f"--{name.replace('_', '-')} {why}. Received: {getattr(self, name)!r}")

        if self.model not in MODELS:
            refuse("model", f"must be one of {', '.join(MODELS)}")
        if self.backend not in BACKENDS:
            refuse("backend", f"must be one of {', '.join(BACKENDS)}")
        if self.optimizer not in OPTIMIZERS:
            refuse("optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            refuse("schedule", f"must be one of {', '.join(SCHEDULES)}")
        if self.device not in DEVICES:
            refuse("device", f"must be one of {', '.join(DEVICES)}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            refuse("lr", "must be a positive number")
        if not 0 <= self.momentum < 1:
            refuse("momentum", "must be in [0, 1)")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            refuse("betas", "must be two numbers in [0, 1), as B1,B2")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            refuse("weight_decay", "must be >= 0")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                refuse(name, "must be a whole number >= 1")
        if self.valid_size < 0:
            refuse("valid_size", "must be >= 0")
        if self.train_size is not None and self.train_size < 1:
            refuse("train_size", "must be >= 1")
        if self.resolved_train_size + self.valid_size > TRAIN_TOTAL:
            raise ConfigError(
                f"--train-size {self.resolved_train_size} + --valid-size {self.valid_size} "
                f"exceeds the {TRAIN_TOTAL} training images; lower one of them"
            )
        if self.threads is not None and self.threads < 1:
            refuse("threads", "must be >= 1")
        if not 0 <= self.label_smoothing < 1:
            refuse("label_smoothing", "must be in [0, 1)")
        if not 0 <= self.dropout < 1:
            refuse("dropout", "must be in [0, 1)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            refuse("grad_clip", "must be > 0")
        if self.ema == 0:
            self.ema = None
        if self.ema is not None and not 0 < self.ema < 1:
            refuse("ema", "must be in (0, 1), e.g. 0.999, or 0 for off")
        if self.patience is not None and self.patience < 1:
            refuse("patience", "must be >= 1")
        if self.patience is not None and self.valid_size == 0:
            refuse("patience", "needs a validation split (--valid-size > 0)")
        if not 0 <= self.translate <= 8:
            refuse("translate", "must be between 0 and 8 pixels")
        if not 0 < self.pct_start < 1:
            refuse("pct_start", "must be in (0, 1), e.g. 0.3 as torch's OneCycleLR")
        if self.warmup_epochs < 0 or self.step_epochs < 1 or not 0 < self.gamma <= 1:
            raise ConfigError(
                "--warmup-epochs must be >= 0, --step-epochs >= 1 and --gamma in (0, 1]. "
                f"Received: {self.warmup_epochs}, {self.step_epochs}, {self.gamma}"
            )
        if self.precision not in PRECISIONS:
            refuse("precision", f"must be one of {', '.join(PRECISIONS)}")
        if self.preset is not None and self.preset not in PRESETS:
            refuse("preset", f"must be one of {', '.join(PRESETS)}")
        if self.backend == "numpy":
            self._validate_numpy_backend()

    def _validate_numpy_backend(self) -> None:
        from cnnlab.models import MODELS

        if MODELS[self.model].build_numpy is None:
            scratch_models = ", ".join(n for n, s in MODELS.items() if s.build_numpy)
            raise ConfigError(
                f"--model {self.model} has no numpy backend; use --backend torch or one of: {scratch_models}"
            )
        torch_only = {
            "dropout": 0.0,
            "translate": 0,
            "hflip": False,
            "tta": False,
            "grad_clip": None,
            "compile": False,
        }
        used = [name for name, off in torch_only.items() if getattr(self, name) != off]
        if used:
            flags = ", ".join("--" + n.replace("_", "-") for n in used)
            raise ConfigError(
                f"{flags} {'is' if len(used) == 1 else 'are'} not supported by the numpy "
                "backend; use --backend torch or drop it"
            )
        if self.device == "cuda" or self.precision not in ("auto", "32"):
            raise ConfigError(
                "the numpy backend runs in float32 on the CPU; drop --device cuda and --precision"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        from cnnlab.runs.layout import write_json

        write_json(path, self.to_dict())


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}

# Each preset names what differs from the defaults, and pins what its published figures were measured with.
PRESETS: dict[str, dict[str, Any]] = {
    "seed": dict(  # the notebook's final run, as written
        model="seed",
        train_size=10_000,
        valid_size=1_000,
        batch_size=512,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=0.0,
        schedule="constant",
        epochs=30,
        precision="32",
        ema=None,
        label_smoothing=0.0,
    ),
    "seed-first": dict(  # the notebook's first training cell
        model="seed",
        train_size=10_000,
        valid_size=1_000,
        batch_size=512,
        optimizer="sgd",
        lr=0.001,
        momentum=0.9,
        weight_decay=0.0,
        schedule="constant",
        epochs=1,
        precision="32",
        ema=None,
        label_smoothing=0.0,
    ),
    "convnet-full": dict(  # convnet on the full training set, longer, with light augmentation
        model="convnet",
        epochs=20,
        translate=1,
        hflip=True,
        label_smoothing=0.1,
        lr=6e-3,
        betas=(0.9, 0.999),
        pct_start=0.15,
        ema=0.99,
    ),
    "best-cpu": dict(  # the best accuracy in ten minutes on 2 CPU cores
        model="vgg-mini",
        epochs=17,
        batch_size=256,
        lr=6e-3,
        weight_decay=5e-2,
        translate=1,
        hflip=True,
        label_smoothing=0.1,
        tta=True,
        betas=(0.9, 0.999),
        pct_start=0.15,
        ema=0.99,
    ),
}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The fields of a saved config.json; unknown keys are refused so typos don't pass silently."""
    try:
        values = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path} must hold a JSON object of options")
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"--config {path} has unknown option(s) {', '.join(unknown)}")
    return values


def resolve(explicit: dict[str, Any], config_file: str | None = None) -> TrainConfig:
    """Build the config from the layers: defaults < config file < preset < explicit options."""
    values: dict[str, Any] = {}
    if config_file:
        values.update(read_config_file(config_file))
    preset = explicit.get("preset", values.get("preset"))
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"--preset must be one of {', '.join(PRESETS)}. Received: {preset!r}")
        values.update(PRESETS[preset])
        values["preset"] = preset
    values.update(explicit)
    try:
        return TrainConfig(**values)
    except TypeError as exc:  # a wrongly typed value in a hand-edited config file
        raise ConfigError(f"invalid configuration: {exc}") from None
