"""autoprep: tune the data side of a Keras image classifier.

`tune` searches normalization, augmentation and class-imbalance handling around the user's own
model with Keras Tuner and exports the winning tf.data pipeline as a standalone module.

The package follows one image folder through its stages, one sub-package each:
`data` (index, decode, split) -> `choices` (normalization, augmentation, imbalance, composed into
a `Pipeline`) -> `search` (space, hypermodel, tuners, the loop) -> `run` (results on disk) ->
`export` (the generated module); `cli`, `doctor` and `report` are shells over them.

Public names are loaded on first use, so `import autoprep` (and `autoprep --help`) does not
import TensorFlow until a name that needs it is used.
"""

import os as _os

from autoprep._quiet import import_quietly as _import_quietly
from autoprep.errors import (
    ArgumentError,
    AutoprepError,
    DataError,
    InputConventionWarning,
    ModelError,
    NotFittedError,
    RunDirectoryError,
    UnknownChoiceError,
)

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Public name -> the module that defines it.
_LAZY = {
    "AUGMENTATIONS": "autoprep.choices",
    "IMBALANCE_STRATEGIES": "autoprep.choices",
    "NORMALIZATIONS": "autoprep.choices",
    "ImageFolder": "autoprep.data.decode",
    "read_image_folder": "autoprep.data.decode",
    "Finding": "autoprep.doctor",
    "InputConvention": "autoprep.run.convention",
    "inspect_model": "autoprep.search.model_inputs",
    "Report": "autoprep.doctor",
    "diagnose": "autoprep.doctor",
    "Pipeline": "autoprep.choices.pipeline",
    "TuneResult": "autoprep.run.result",
    "load_result": "autoprep.run.result",
    "tune": "autoprep.search.loop",
    "write_report": "autoprep.report",
    "SearchSpace": "autoprep.search.space",
}

__all__ = [
    "AUGMENTATIONS",
    "ArgumentError",
    "AutoprepError",
    "DataError",
    "Finding",
    "IMBALANCE_STRATEGIES",
    "ImageFolder",
    "InputConvention",
    "InputConventionWarning",
    "ModelError",
    "NORMALIZATIONS",
    "NotFittedError",
    "Pipeline",
    "Report",
    "RunDirectoryError",
    "SearchSpace",
    "TuneResult",
    "UnknownChoiceError",
    "__version__",
    "diagnose",
    "inspect_model",
    "load_result",
    "read_image_folder",
    "tune",
    "write_report",
]


def __getattr__(name):
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    if name not in _LAZY:
        raise AttributeError(f"module 'autoprep' has no attribute {name!r}")
    # The first name that needs TensorFlow imports it, without its start-up lines.
    value = getattr(_import_quietly(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


def _version() -> str:
    """The installed distribution's version (pyproject.toml's), read on first use of
    `autoprep.__version__`; "0+unknown" when autoprep runs from a source tree not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autoprep")
    except PackageNotFoundError:
        return "0+unknown"
