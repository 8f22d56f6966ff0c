"""`frame_stack_reserved`: calls made under it do not map and unmap CPython's frame stack."""

import sys

import pytest

import autoprep
from autoprep._frame_stack import ROOM_BYTES, frame_stack_reserved
from autoprep.errors import ModelError

resource = pytest.importorskip("resource")  # page faults are counted by getrusage (Unix)

chunked_frames = pytest.mark.skipif(
    sys.implementation.name != "cpython" or sys.version_info < (3, 11),
    reason="frames live in mapped chunks from CPython 3.11 on")

DEPTHS = range(0, 240, 4)  # 240 small frames: more than a 16 KiB chunk of frame stack


def _down(n):
    return _down(n - 1) if n else 0


def _faults_at(depth, calls=300):
    """Page faults of `calls` calls 30 frames deep, made `depth` frames below here."""
    if depth:
        return _faults_at(depth - 1, calls)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        _down(30)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def most_faults():
    """The most page faults of the same loop at any of DEPTHS (the worst place to run it)."""
    return max(_faults_at(depth) for depth in DEPTHS)


@chunked_frames
def test_a_loop_over_a_chunks_end_faults_on_every_call_and_not_under_the_reserved_frame():
    assert most_faults() >= 250  # the thrashing being fixed: one fault a call, at some depth
    assert frame_stack_reserved(most_faults)() < 30


def test_the_decorated_function_is_the_same_function():
    def divide(a, b=1, *, exact=False):
        """Divides."""
        if exact and a % b:
            raise ValueError("inexact")
        return a / b

    reserved = frame_stack_reserved(divide)
    assert reserved(6, b=3) == 2 and reserved(5) == 5
    assert reserved.__doc__ == "Divides." and reserved.__wrapped__ is divide
    with pytest.raises(ValueError, match="inexact"):
        reserved(5, 2, exact=True)
    assert ROOM_BYTES >= 64 * 1024


@chunked_frames
def test_tune_runs_the_users_model_with_the_frame_stack_reserved(image_folder, tmp_path):
    seen = []

    def model_fn(input_shape, num_classes):
        seen.append(most_faults())
        raise RuntimeError("stop here")

    with pytest.raises(ModelError):
        autoprep.tune(model_fn, image_folder, max_trials=1, epochs=1, directory=tmp_path / "runs",
                      verbose=0)
    assert seen and max(seen) < 30
