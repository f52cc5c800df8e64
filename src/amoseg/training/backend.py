"""How torch runs a training: deterministic algorithms, cuDNN's choices, threads and the fill of
uninitialized memory, set for the run and given back to the caller afterwards (a program that trains
from Python keeps its own settings). ``CUBLAS_WORKSPACE_CONFIG``, which deterministic CUDA needs, stays
set: it must be there before CUDA starts, and changes nothing for CPU work.

On a CPU, also how the C library's allocator treats the memory torch frees (``keep_freed_memory``); that
one lasts for the rest of the process.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def training_backend(
    *, deterministic: bool, device_type: str = "cpu", threads: int | None = None, fill: bool = False
) -> Iterator[None]:
    """Run the block with these settings, then restore the previous ones.

    Args:
        deterministic: ``torch.use_deterministic_algorithms`` and cuDNN's deterministic mode; off also
            lets cuDNN benchmark its algorithms on a GPU.
        device_type: "cpu", "cuda" or "mps".
        threads: torch's CPU threads (None leaves them).
        fill: in deterministic mode torch fills every new tensor with NaN, so that a kernel reading
            memory it never wrote gives NaN rather than garbage. No kernel of a training step does (runs
            with the fill never produced a NaN loss), so results are the same without it, and on a CPU
            it writes every activation and gradient once more: off unless asked for.
    """
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.get_num_threads(),
    )
    if deterministic and device_type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        torch.use_deterministic_algorithms(deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = fill
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic and device_type == "cuda"
        if threads:
            torch.set_num_threads(int(threads))
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.utils.deterministic.fill_uninitialized_memory = previous[2]
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = previous[3], previous[4]
        torch.set_num_threads(previous[5])


#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
#: Free memory the heap may hold on to instead of giving it back to the system.
KEPT_FREE_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep the memory torch frees, for the rest of the process; whether it could.

    A CPU training step allocates and frees its activations and gradients, tens to hundreds of MB. By
    default glibc maps every block above its threshold (at most 32 MB) fresh from the system and
    unmaps it when freed, and gives a free heap top back: the next step faults every page in again,
    zero-filled by the kernel. On the real-data plan that was 560,000 page faults and 1.8 s of system
    time per 3.4-second step. Served from a heap that keeps up to ``KEPT_FREE_BYTES`` free, a step
    faults almost never (``bench/cpu_step.py --allocator-pairs``, docs/benchmarks.md); the cost is
    that the process's resident memory stays near its peak. Not glibc (macOS, musl): nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # Both are needed: with mapping off every block comes from the heap, and the trim threshold keeps
    # the heap's freed top from going back to the system.
    return bool(mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES)) and bool(mallopt(_M_MMAP_MAX, 0))
