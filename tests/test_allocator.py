"""The workers' allocator settings (``config.allocator``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config.allocator import keep_freed_memory


def test_nothing_is_changed_when_nothing_is_to_be_kept():
    assert keep_freed_memory(0) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_the_allocator_takes_the_settings_and_large_blocks_then_come_from_the_heap():
    # in a fresh process, so this one's allocator is left alone: before, a 48 MiB block is a
    # mapping of its own (glibc never serves more than 32 MiB from the heap by default, however
    # often such blocks are freed); after, it comes from the heap
    probe = """
import ctypes, ctypes.util, sys
from config.allocator import keep_freed_memory
libc = ctypes.CDLL(ctypes.util.find_library("c"))
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def mapped_blocks():
    idle = libc.mallinfo2().hblks
    block = libc.malloc(48 * 1024 * 1024)
    count = libc.mallinfo2().hblks - idle
    libc.free(block)
    return count
before = mapped_blocks()
taken = keep_freed_memory(256 * 1024 * 1024)
print(before, taken, mapped_blocks())
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    before, taken, after = int(out[0]), out[1], int(out[2])
    assert taken == "True"
    assert (before, after) == (1, 0)


def test_the_worker_keeps_the_configured_amount_as_it_starts(settings, monkeypatch):
    import config.allocator
    from config.celery import worker_heap_kept

    kept = []
    monkeypatch.setattr(config.allocator, "keep_freed_memory", kept.append)
    settings.PULSE_WORKER_HEAP_KEEP_MB = 200
    worker_heap_kept()
    settings.PULSE_WORKER_HEAP_KEEP_MB = 0
    worker_heap_kept()
    assert kept == [200 * 1024 * 1024, 0]
