"""Process-parallel map with a bounded number of tasks in flight.

``ProcessPoolExecutor.map`` submits every task at once and keeps every finished result until it is
consumed in order; with large per-case results that holds many cases in memory. This keeps at most
``2 * workers`` tasks submitted and yields results as they complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers(workers: int | None, tasks: int) -> int:
    """``workers`` or the CPU count, never more than there are tasks, at least one."""
    return max(1, min(workers or os.cpu_count() or 1, tasks))


def bounded_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """Yield ``function(item)`` for every item, in completion order; in-process when ``workers`` is 1."""
    if workers <= 1:
        for item in items:
            yield function(item)
        return
    iterator = iter(items)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: set[Future] = set()
        for item in iterator:
            pending.add(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                next_item = next(iterator, None)
                if next_item is not None:
                    pending.add(pool.submit(function, next_item))
