"""Training batches, prepared in a background thread while the network works on the previous one.

Each batch is a pure function of (seed, rank, iteration): its patches come from a numpy generator and
its augmentation from a torch generator, both seeded with those three numbers. So prefetching never
changes what is drawn, each DDP rank draws different patches, and a resumed run draws exactly the
batches the interrupted one would have: the loader's whole random state is the iteration number.

A thread rather than worker processes: reading a patch from a memory map and torch's augmentation
kernels release the GIL, and on two cores extra processes would only compete with the network for
them (docs/training.md, "Loader").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from amoseg.training.batch import Batch
from amoseg.training.dataset import CacheCase
from amoseg.training.sampling import draw_requests, load_batch


def iteration_seeds(seed: int, rank: int, iteration: int) -> tuple[np.random.Generator, torch.Generator]:
    """The numpy generator for patch positions and the torch generator for augmentation of one batch."""
    sequence = np.random.SeedSequence([seed, rank, iteration])
    patches_state, augment_state = sequence.spawn(2)
    torch_seed = int(augment_state.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    return np.random.default_rng(patches_state), torch.Generator().manual_seed(torch_seed)


@dataclass(frozen=True)
class PatchSource:
    """Makes the training batch of any iteration.

    Attributes:
        cases: training cases.
        patch_size: (x, y, z) voxels.
        batch_size: patches per batch.
        num_classes: C, background included.
        foreground_fraction: probability of a foreground-centred patch.
        seed, rank: with the iteration, seed the batch.
        transform: augmentation applied here (on the CPU), or None to leave it to the caller.
        pin_memory: pin the batch for a fast copy to a GPU.
    """

    cases: Sequence[CacheCase]
    patch_size: tuple[int, int, int]
    batch_size: int
    num_classes: int
    foreground_fraction: float
    seed: int
    rank: int = 0
    transform: Callable[[Batch, torch.Generator], Batch] | None = None
    pin_memory: bool = False

    def batch(self, iteration: int) -> tuple[Batch, torch.Generator]:
        """The batch of ``iteration`` and the generator its augmentation draws from (already used
        when ``transform`` is set)."""
        patch_rng, augment_generator = iteration_seeds(self.seed, self.rank, iteration)
        requests = draw_requests(
            self.cases, self.batch_size, self.patch_size, patch_rng, self.foreground_fraction
        )
        batch = Batch.from_numpy(load_batch(self.cases, requests, self.patch_size, self.num_classes))
        if self.transform is not None:
            batch = self.transform(batch, augment_generator)
        if self.pin_memory:
            batch = batch.pin_memory()
        return batch, augment_generator


class BatchStream:
    """Iterates ``source.batch(i)`` for i = start, start + 1, ...; a thread keeps ``prefetch`` ready.

    Use as a context manager (or call ``close``) so the thread stops. An exception in the thread is
    raised again by ``next``.
    """

    def __init__(self, source: PatchSource, start: int = 0, prefetch: int = 2, threaded: bool = True) -> None:
        self.source = source
        self.next_iteration = start
        self.threaded = threaded
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(
                target=self._produce, args=(start,), daemon=True, name="amoseg-loader"
            )
            self._thread.start()

    def _produce(self, iteration: int) -> None:
        while not self._stop.is_set():
            try:
                item = (iteration, self.source.batch(iteration))
            except BaseException as error:  # handed to the consumer, which raises it
                item = (iteration, error)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item[1], BaseException):
                return
            iteration += 1

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[Batch, torch.Generator]:
        if not self.threaded:
            result = self.source.batch(self.next_iteration)
        else:
            iteration, result = self._queue.get()
            if isinstance(result, BaseException):
                raise result
            assert iteration == self.next_iteration
        self.next_iteration += 1
        return result

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    self._thread.join(timeout=0.05)
            self._thread = None

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
