"""``cnnlab models``: list the registry."""

from __future__ import annotations

NAME = "models"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME, help="list the models in the registry", description="List the models that --model accepts."
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.models import MODELS

    width = max(len(n) for n in MODELS)
    for name, spec in MODELS.items():
        backends = "torch, numpy" if spec.numpy else "torch"
        print(f"{name:<{width}}  {spec.description}  [{backends}]")
    return 0
