"""``python -m cnnlab`` is the same as the ``cnnlab`` command."""

from cnnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
