"""One module per ``cnnlab`` subcommand, each with ``add_parser(subparsers)`` and ``run(args)``.

``cnnlab.cli`` lists them in COMMANDS; a new subcommand is a new module here plus one name there.
"""
