"""Resolve a `--model` spec (`path/to/file.py:function` or `package.module:function`)."""

import importlib
import importlib.util
import os
import sys

from autoprep.errors import ArgumentError


def load_model_fn(spec: str):
    """Returns the callable named by `spec`.

    Raises:
        ArgumentError: naming the spec and what is wrong with it.
    """
    module_part, sep, attr = str(spec).rpartition(":")
    if not sep or not module_part or not attr:
        raise ArgumentError(
            "`--model` must look like `path/to/file.py:function` or `package.module:function`. "
            f"Received: {spec!r}"
        )
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        module = _import_file(module_part, spec)
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as error:
            raise ArgumentError(
                f"`--model` {spec!r}: cannot import {module_part!r} ({error})."
            ) from None
    model_fn = getattr(module, attr, None)
    if not callable(model_fn):
        raise ArgumentError(
            f"`--model` {spec!r}: {module_part!r} has no function {attr!r}. "
            "Define `def build_model(input_shape, num_classes): ...` there."
        )
    return model_fn


def _import_file(path, spec):
    if not os.path.isfile(path):
        raise ArgumentError(f"`--model` {spec!r}: file {path!r} does not exist.")
    name = "autoprep_user_model_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    directory = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, directory)  # lets the file import its neighbours
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise ArgumentError(
            f"`--model` {spec!r}: importing {path!r} failed with "
            f"{type(error).__name__}: {error}"
        ) from error
    finally:
        sys.path.remove(directory)
    return module
