"""Small helpers the subcommands share, and the training options that train, compare and lr-find take."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from cnnlab.training.config import FIELDS, TrainConfig


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-wrapped epilogs (examples) as written."""


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="directory holding the dataset's files (default: search, see `cnnlab data where`)",
    )


def add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by `cnnlab train`")


def add_config_options(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """One option per TrainConfig field (and --config); ``explicit_options`` reads back what was typed."""
    for field in dataclasses.fields(TrainConfig):
        if field.name in exclude:
            continue
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata["help"]
        if "default" not in help_text:
            help_text += f" (default: {_show(field.default)})"
        # SUPPRESS keeps unset options out of the namespace, so only what the user typed overrides.
        if isinstance(field.default, bool):
            action = argparse.BooleanOptionalAction if field.default else "store_true"
            parser.add_argument(flag, action=action, default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(
                flag,
                type=_type_of(field),
                default=argparse.SUPPRESS,
                choices=_static_choices(field),
                help=help_text,
                metavar=None if _static_choices(field) else field.name.upper(),
            )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a saved config.json to start from; explicit options override it (default: none)",
    )


def explicit_options(args: argparse.Namespace) -> dict:
    """The config fields the user typed (unset options are absent, thanks to SUPPRESS)."""
    return {name: getattr(args, name) for name in FIELDS if hasattr(args, name)}


def _type_of(field: dataclasses.Field):
    """The argparse type for a field, from its annotation (``int | None`` -> int)."""
    if field.name == "betas":
        return _betas
    hint = typing.get_type_hints(TrainConfig)[field.name]
    candidates = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return candidates[0]


def _betas(text: str) -> tuple[float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers B1,B2, got {text!r}") from None
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers B1,B2, got {text!r}")
    return values


def _static_choices(field: dataclasses.Field) -> tuple[str, ...] | None:
    """argparse's choices, from the field's Check; a registry read at check time (models, presets)
    is left to validate(), whose message lists the names."""
    choices = field.metadata["check"].choices
    return choices if isinstance(choices, tuple) else None


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
