"""Room on CPython's frame stack for autoprep's long calls; the one place that does it.

Since Python 3.11, CPython keeps the frames of running Python functions in chunks of memory,
one stack of chunks per thread (16 KiB a chunk, more for a larger frame). A call that does not
fit in its thread's last chunk maps a new one (mmap), and the return from that chunk's first
frame unmaps it (munmap). So a loop whose calls go back and forth over the end of a chunk
maps, touches (a page fault) and unmaps memory on every call: several microseconds a crossing
(results/frame_stack.md). Keras' training loop and Keras Tuner's search are deep, and whether
their loops cross a chunk's end depends on how deep the stack under them is: in a search of
one-epoch trials on small images, the room below removed 9,700 to 18,700 page faults a trial
(half to two thirds of them) and about 8 % of its CPU time (results/frame_stack.md).

`frame_stack_reserved(function)` runs `function` under one frame that asks for ROOM_BYTES of
value stack it never uses. CPython gives a frame that large a chunk of its own, its size
doubled up to a power of two, and the frames called under it fill the rest of that chunk
(about ROOM_BYTES more, thousands of frames), which stays mapped until `function` returns. Only
the pages that frames touch become memory; the rest is address space. Other interpreters, and
CPython before 3.11 (whose frames are objects of their own), call `function` as it is.
"""

import functools
import struct
import sys
import types

ROOM_BYTES = 256 * 1024  # frames called under the reserved one fit in this many bytes


def _call(function, args, kwargs):
    return function(*args, **kwargs)


def _reserving(call):
    """`call` with ROOM_BYTES more value stack: its frame gets a chunk of its own."""
    code = call.__code__
    # A word of value stack is a pointer; one word more than ROOM_BYTES and the chunk doubles
    # to twice ROOM_BYTES.
    words = ROOM_BYTES // struct.calcsize("P") + 1
    return types.FunctionType(code.replace(co_stacksize=code.co_stacksize + words),
                              call.__globals__, call.__name__)


_HAS_CHUNKS = sys.implementation.name == "cpython" and sys.version_info >= (3, 11)
_reserved_call = _reserving(_call) if _HAS_CHUNKS else _call


def frame_stack_reserved(function):
    """Decorator: `function` runs with ROOM_BYTES of frame stack kept mapped under it."""

    @functools.wraps(function)
    def reserved(*args, **kwargs):
        return _reserved_call(function, args, kwargs)

    return reserved
