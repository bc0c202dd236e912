"""Your own network: ``--model FILE.py:FUNCTION``, or a module or builder given from Python.

cnnlab calls ``FUNCTION(input_shape=(C, H, W), num_classes=K)``, which must return a
``torch.nn.Module`` whose output has K values per image; both are checked, with one line each,
before anything trains. A run keeps a copy of what built its model, so it reloads after the
original has moved or changed:

- ``FILE.py:FUNCTION``: the file, as ``RUN/model.py``;
- a module or a function given to ``cnnlab.train(model=...)``: pickled with cloudpickle, which
  stores a class or function defined in a notebook or script by value (its code, not a reference to
  a module that a new kernel lacks), as ``RUN/model.pkl``; a module is copied, so the object you
  passed keeps its own weights.

Loading such a run runs that code, as importing a file does: load runs of your own models only
from people you trust. A run of a built-in model runs no code from its directory.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError

FILE_SPEC = re.compile(r"^(?P<path>.+\.py):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")
PYTHON_PREFIX = "python:"  # models given as Python objects, by their name: "python:MyNet"
SOURCE_FILE, PICKLE_FILE = "model.py", "model.pkl"

# Models given from Python in this process, by name (their builders); a new process has none, and
# loads a run's model from its pickle instead.
_GIVEN: dict[str, Callable] = {}


def is_user_model(name: Any) -> bool:
    return isinstance(name, str) and (FILE_SPEC.match(name) is not None or name.startswith(PYTHON_PREFIX))


def check_spec(name: str) -> str | None:
    """What is wrong with a user model's name, or None: the file must exist and be Python."""
    if name.startswith(PYTHON_PREFIX):
        if name not in _GIVEN:
            return (
                f"was given as a Python object in another process; pass the object again with "
                f"cnnlab.train(model=...) or load the run with cnnlab.load_run(). Received: {name}"
            )
        return None
    match = FILE_SPEC.match(name)
    if match is None:
        return None
    path = Path(match["path"])
    if not path.is_file():
        return f"names {path}, which is not a file; give FILE.py:FUNCTION with an existing file"
    return None


def given(model: Any) -> str:
    """Register a module or a builder passed from Python; returns the name the config records."""
    from torch import nn

    if isinstance(model, nn.Module):
        name = f"{PYTHON_PREFIX}{type(model).__name__}"
        _GIVEN[name] = _Copies(copy.deepcopy(model))  # later changes to the object do not reach the run
    elif callable(model):
        name = f"{PYTHON_PREFIX}{getattr(model, '__name__', type(model).__name__)}"
        _GIVEN[name] = model
    else:
        raise ConfigError(
            "model= takes a built-in model's name, 'FILE.py:FUNCTION', a torch.nn.Module or a function "
            f"(input_shape, num_classes) -> Module. Received: {type(model).__name__}"
        )
    return name


class _Copies:
    """A builder that returns a fresh copy of a given module each time (the module's class is
    what the pickle must carry)."""

    def __init__(self, template):
        self.template = template

    def __call__(self, input_shape, num_classes):
        return copy.deepcopy(self.template)


def _import_file(path: Path, label: str):
    module_name = f"cnnlab_user_model_{abs(hash((str(path.resolve()), path.stat().st_mtime_ns)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--model {label}: cannot import {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a module up by its name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file can raise anything while it is imported
        del sys.modules[module_name]
        raise ConfigError(f"--model {label}: importing {path} failed ({type(exc).__name__}: {exc})") from None
    return module


def builder_from_file(path: Path, function: str, label: str) -> Callable:
    module = _import_file(path, label)
    build = getattr(module, function, None)
    if not callable(build):
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ConfigError(
            f"--model {label}: {path} defines no function {function!r}"
            + (f" (it defines {', '.join(defined[:6])})" if defined else "")
        )
    return build


def builder_of(name: str, run_dir: Path | None = None) -> Callable:
    """The function that builds model ``name``: from the run's own copy when ``run_dir`` is given."""
    if run_dir is not None:
        return _builder_from_run(name, Path(run_dir))
    if name.startswith(PYTHON_PREFIX):
        if name not in _GIVEN:
            raise ConfigError(f"--model {name} {check_spec(name)}")
        return _GIVEN[name]
    match = FILE_SPEC.match(name)
    if match is None:
        raise ConfigError(f"--model {name} is not FILE.py:FUNCTION")
    return builder_from_file(Path(match["path"]), match["function"], name)


def _builder_from_run(name: str, run_dir: Path) -> Callable:
    from cnnlab.errors import RunDirError

    if (run_dir / SOURCE_FILE).is_file() and FILE_SPEC.match(name):
        return builder_from_file(run_dir / SOURCE_FILE, FILE_SPEC.match(name)["function"], name)  # type: ignore[index]
    if (run_dir / PICKLE_FILE).is_file():
        import cloudpickle

        try:
            with open(run_dir / PICKLE_FILE, "rb") as fh:
                saved = cloudpickle.load(fh)
        except Exception as exc:  # unpickling can fail in as many ways as the code it rebuilds
            raise RunDirError(
                f"{run_dir / PICKLE_FILE} cannot be loaded ({type(exc).__name__}: {exc})"
            ) from None
        return saved
    raise RunDirError(
        f"{run_dir} was trained with your own model {name} but holds no {SOURCE_FILE} or "
        f"{PICKLE_FILE} to rebuild it"
    )


def build(name: str, input_shape: tuple[int, int, int], num_classes: int, run_dir: Path | None = None):
    """Call the builder and check what it returns: a ``torch.nn.Module`` with ``num_classes`` outputs."""
    import torch
    from torch import nn

    build_fn = builder_of(name, run_dir)
    try:
        model = build_fn(input_shape=tuple(input_shape), num_classes=num_classes)
    except Exception as exc:  # the user's code can raise anything
        raise ConfigError(
            f"--model {name}: calling it with input_shape={tuple(input_shape)}, num_classes={num_classes} "
            f"raised {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"--model {name} returned a {type(model).__name__}, not a torch.nn.Module; return the network"
        )
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as exc:
        raise ConfigError(
            f"--model {name} fails on a batch of images shaped (2, {', '.join(map(str, input_shape))}) "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        ) from None
    if not isinstance(out, torch.Tensor) or out.shape != (2, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"--model {name} gives outputs of shape {shape} for 2 images, but the dataset has {num_classes} "
            f"classes; its last layer must have {num_classes} outputs (use num_classes)"
        )
    return model.train()


def save_into(name: str, run_dir: Path) -> None:
    """Keep what builds ``name`` in the run directory (``model.py`` or ``model.pkl``)."""
    from cnnlab.fileio import write_atomic

    match = FILE_SPEC.match(name)
    if match is not None:
        source = Path(match["path"]).read_bytes()
        write_atomic(run_dir / SOURCE_FILE, lambda fh: fh.write(source))
        return
    import cloudpickle

    builder = _GIVEN[name]
    defined_by = type(builder.template) if isinstance(builder, _Copies) else builder
    module = sys.modules.get(getattr(defined_by, "__module__", ""), None)
    by_value = module is not None and _is_users_own(module)
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        payload = cloudpickle.dumps(builder)
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    write_atomic(run_dir / PICKLE_FILE, lambda fh: fh.write(payload))


def _is_users_own(module) -> bool:
    """A module of the user's (a script or a file beside the notebook), not an installed package:
    pickled by value, so the run reloads where that file is absent."""
    path = getattr(module, "__file__", None)
    if module.__name__ == "__main__" or path is None:
        return False  # cloudpickle stores __main__'s classes and functions by value already
    return (
        "site-packages" not in path
        and "dist-packages" not in path
        and not module.__name__.startswith("cnnlab")
    )
