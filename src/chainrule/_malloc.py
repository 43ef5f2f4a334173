"""Keep freed memory in the process between training steps (glibc only).

An eager step allocates and frees the same large temporaries every time. glibc's default is
to hand large blocks to the OS with mmap and give freed memory at the top of the heap back
(trim), so the next step takes every page again as a page fault: on the large benchmark MLP,
about 1,700 faults a step, more time than the arithmetic. PyTorch avoids this with its own
caching allocator; NumPy has none. chainrule therefore asks glibc, once, at the first
backward pass, to serve blocks up to 32 MB from the heap and to keep up to 128 MB of freed
heap. Memory is still reused inside the process; it is returned to the OS later than by
default. Set ``CHAINRULE_KEEP_HEAP=0`` in the environment to leave the allocator alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def keep_heap() -> bool:
    """Apply the setting once; True if glibc accepted it."""
    global _done
    if _done:
        return False
    _done = True
    if not sys.platform.startswith("linux") or os.environ.get("CHAINRULE_KEEP_HEAP") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):     # not glibc (musl, ...): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, 128 * 1024 * 1024))
