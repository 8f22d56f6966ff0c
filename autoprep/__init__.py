"""autoprep: tune the data side of a Keras image classifier.

`tune` searches normalization, augmentation and class-imbalance handling around the user's own
model with Keras Tuner and exports the winning tf.data pipeline as a standalone module.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from autoprep.choices import AUGMENTATIONS, IMBALANCE_STRATEGIES, NORMALIZATIONS  # noqa: E402
from autoprep.data import ImageFolder, read_image_folder  # noqa: E402
from autoprep.doctor import Finding, Report, diagnose  # noqa: E402
from autoprep.errors import (  # noqa: E402
    ArgumentError,
    AutoprepError,
    DataError,
    ModelError,
    RunDirectoryError,
    UnknownChoiceError,
)
from autoprep.pipeline import Pipeline  # noqa: E402
from autoprep.result import TuneResult, load_result  # noqa: E402
from autoprep.search import tune  # noqa: E402
from autoprep.space import SearchSpace  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AUGMENTATIONS",
    "IMBALANCE_STRATEGIES",
    "NORMALIZATIONS",
    "ArgumentError",
    "AutoprepError",
    "DataError",
    "Finding",
    "ImageFolder",
    "ModelError",
    "Pipeline",
    "Report",
    "RunDirectoryError",
    "SearchSpace",
    "TuneResult",
    "UnknownChoiceError",
    "diagnose",
    "load_result",
    "read_image_folder",
    "tune",
]
