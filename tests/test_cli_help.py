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


def test_every_command_module_is_registered_runs_its_own_code_and_is_documented():
    """A module under cnnlab/commands that COMMANDS leaves out, a name with no module, a parser that
    runs another command's code, or a command without its page in the user guide: each fails here."""
    import pkgutil
    from pathlib import Path

    import cnnlab.commands

    modules = {m.name for m in pkgutil.iter_modules(cnnlab.commands.__path__)} - {"common"}
    assert modules == {name.replace("-", "_") for name in COMMANDS}
    top = dict((name, sub) for name, sub in _subparsers(build_parser()) if " " not in name)
    assert list(top) == list(COMMANDS)
    for name, sub in top.items():
        assert sub.get_default("func").__module__ == f"cnnlab.commands.{name.replace('-', '_')}"
    guide = Path(__file__).parents[1] / "docs" / "guide"
    undocumented = [name for name in COMMANDS if not (guide / f"{name}.md").is_file()]
    assert undocumented == []
    for name in COMMANDS:
        assert (guide / f"{name}.md").read_text().startswith(f"# `cnnlab {name}`\n"), name


@pytest.mark.parametrize("name, parser", list(_subparsers(build_parser())))
def test_each_option_states_its_default(name, parser):
    for action in parser._actions:
        if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if action.help == argparse.SUPPRESS:  # a hidden old spelling (compare's --compare-out)
            continue
        assert action.help and "default" in action.help.lower(), f"cnnlab {name} {action.option_strings[0]}"
