"""The names of the search algorithms, importable without TensorFlow (the CLI lists them)."""

from autoprep.errors import ArgumentError

TUNERS = ("bayesian", "random", "hyperband")


def check_tuner(name: str) -> str:
    if name not in TUNERS:
        raise ArgumentError(f"`tuner` must be one of {', '.join(TUNERS)}. Received: tuner={name!r}")
    return name
