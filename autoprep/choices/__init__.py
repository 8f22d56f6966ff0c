"""One definition per preprocessing choice, each registered by name."""

from autoprep.choices.augmentation import AUGMENTATIONS, FLIP_MODES
from autoprep.choices.imbalance import IMBALANCE_STRATEGIES
from autoprep.choices.normalization import NORMALIZATIONS

__all__ = [
    "AUGMENTATIONS",
    "FLIP_MODES",
    "IMBALANCE_STRATEGIES",
    "NORMALIZATIONS",
]
