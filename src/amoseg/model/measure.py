"""Measure one training step of a planned network: wall time and peak memory.

torch and MONAI are imported inside the functions: ``import monai`` takes seconds.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from amoseg.planning.plan import Plan


@dataclass(frozen=True)
class StepMeasurement:
    """One measured training step.

    Attributes:
        seconds: wall time of one step (forward, loss, backward, SGD update), best of the timed repeats.
        peak_memory_gb: CUDA peak allocation, or on CPU the peak resident memory above what the process
            held before the network was built (GB, 1e9 bytes).
        device: "cuda" or "cpu".
        threads: torch CPU threads used (CPU only).
        patch_size: (x, y, z) voxels.
        batch_size: patches per step.
    """

    seconds: float
    peak_memory_gb: float
    device: str
    threads: int
    patch_size: tuple[int, int, int]
    batch_size: int


def measure_step(
    plan: Plan,
    *,
    patch_size: tuple[int, int, int] | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    threads: int | None = None,
    repeats: int = 2,
) -> StepMeasurement:
    """Time one training step of the plan's network on random data and measure its peak memory.

    One untimed warm-up step, then ``repeats`` timed steps. The loss is cross-entropy over the main
    output and every deep-supervision output, as training will use; the update is SGD with momentum.

    Args:
        plan: the plan whose network, patch and batch are measured.
        patch_size, batch_size: override the plan's (e.g. a smaller patch to keep a test short).
        device: "cpu" or "cuda"; default the plan's device when available, else CPU.
        threads: torch CPU threads for the measurement (default: leave torch's setting).
        repeats: timed steps.
    """
    import torch

    from amoseg.model.network import build_network, for_device

    patch = tuple(int(v) for v in (patch_size or plan.patch_size))
    batch = int(batch_size or plan.batch_size)
    if device is None:
        device = "cuda" if plan.device == "cuda" and torch.cuda.is_available() else "cpu"
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        _reset_peak(device)
        baseline = _resident_bytes() if device == "cpu" else 0
        network = for_device(build_network(plan), device)  # the layout training and prediction use
        optimizer = torch.optim.SGD(network.parameters(), lr=1e-3, momentum=0.99, nesterov=True)
        generator = torch.Generator().manual_seed(0)
        image = torch.randn((batch, 1, *patch), generator=generator).to(device)
        target = torch.randint(0, plan.network.out_channels, (batch, *patch), generator=generator).to(device)
        seconds = []
        for step in range(repeats + 1):
            _synchronize(device)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            output = network(image)
            heads = output.unbind(1) if output.dim() == 6 else (output,)
            loss = sum(torch.nn.functional.cross_entropy(head, target) for head in heads)
            loss.backward()
            optimizer.step()
            _synchronize(device)
            if step:
                seconds.append(time.perf_counter() - start)
        peak = _peak_bytes(device) - baseline
    finally:
        torch.set_num_threads(previous_threads)
    return StepMeasurement(
        seconds=min(seconds),
        peak_memory_gb=peak / 1e9,
        device=device,
        threads=torch.get_num_threads() if threads is None else threads,
        patch_size=patch,
        batch_size=batch,
    )


def _synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    # Memory freed by earlier work may still be held by the C allocator and would be reused unseen;
    # hand it back first, then reset the kernel's peak resident size (VmHWM) for this process.
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        return int(torch.cuda.max_memory_allocated())
    return _status_kib("VmHWM") * 1024 if Path("/proc/self/status").exists() else _maxrss_bytes()


def _resident_bytes() -> int:
    return _status_kib("VmRSS") * 1024 if Path("/proc/self/status").exists() else _maxrss_bytes()


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _maxrss_bytes() -> int:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
