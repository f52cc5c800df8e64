"""Training's torch settings apply inside the block and are given back after it, even on an error;
the allocator setting keeps freed memory for the next allocation."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from amoseg.training.backend import training_backend

# Allocates, writes and frees 64 MiB four times through the C library, and prints the page faults
# that took: with the allocator's defaults every block is mapped afresh and each page faults again.
_FAULTS = """
import ctypes, resource, sys
from amoseg.training.backend import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 64 * 2**20
def cycle():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
cycle()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    cycle()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def _settings():
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.get_num_threads(),
    )


def test_the_settings_hold_inside_and_are_restored_after_an_error():
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        before = _settings()
        with pytest.raises(RuntimeError), training_backend(deterministic=False, threads=threads + 1):
            assert _settings()[:3] == (False, False, False)
            assert torch.get_num_threads() == threads + 1
            raise RuntimeError("stop")
        assert _settings() == before
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)


def test_deterministic_mode_fills_new_tensors_only_when_asked():
    with training_backend(deterministic=True, fill=True):
        assert torch.empty(64).isnan().all()
    with training_backend(deterministic=True):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory


def _faults(mode: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True)
    kept, faults = done.stdout.split()
    return kept, int(faults)


def test_freed_memory_is_kept_for_the_next_allocation():
    kept, faults_kept = _faults("keep")
    if kept != "True":
        pytest.skip("the C library is not glibc: it has no mallopt to set")
    _, faults_default = _faults("default")
    assert faults_default >= 4  # every block faulted in again
    assert faults_kept * 10 < faults_default
