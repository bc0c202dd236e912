"""Every subcommand's --help lists each option with its default."""

import argparse

import pytest

from cnnlab.cli import COMMANDS, build_parser


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def test_every_command_is_registered():
    names = {name for name, _ in _subparsers(build_parser())}
    assert set(COMMANDS) <= names


@pytest.mark.parametrize("name, parser", list(_subparsers(build_parser())))
def test_each_option_states_its_default(name, parser):
    for action in parser._actions:
        if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if action.help == argparse.SUPPRESS:  # a hidden old spelling (compare's --compare-out)
            continue
        assert action.help and "default" in action.help.lower(), f"cnnlab {name} {action.option_strings[0]}"
