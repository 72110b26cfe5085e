"""How the C allocator keeps memory the workers free, so large arrays reuse it.

The close works on arrays of every team at once (teams x cycles matrices of a few megabytes,
dozens of them for a short while).  By default glibc's allocator serves blocks that large with
fresh memory mappings and hands them back to the kernel on release (and trims the heap's free
top as soon as it passes 128 KiB), so every such array is new memory that the kernel must fault
in page by page -- measured in the close, that cost more than the arithmetic on the arrays.
``keep_freed_memory`` lets blocks up to ``MMAP_THRESHOLD`` come from the heap and keeps up to
``keep`` bytes free at its top, so the next array reuses pages the process already has.  The
process keeps that much memory between tasks instead of returning it at once.

Linux with glibc only (``mallopt``); anywhere else it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

# mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 * 1024 * 1024


def keep_freed_memory(keep: int) -> bool:
    """Keep up to ``keep`` bytes of freed memory in the process (see the module docstring);
    0 leaves the allocator as it is.  True when the allocator took the settings."""
    if keep <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no C library to load, or one without mallopt (musl)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    taken = bool(mallopt(_M_MMAP_THRESHOLD, min(MMAP_THRESHOLD, keep))) and bool(
        mallopt(_M_TRIM_THRESHOLD, keep)
    )
    logger.info("event=allocator keep_bytes=%d taken=%s", keep, taken)
    return taken
