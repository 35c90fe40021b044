"""Medians of repeated timings; one BLAS thread for every engine."""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
ONE_THREAD = dict.fromkeys(THREAD_VARIABLES, "1")


def use_one_thread() -> None:
    """Must run before numpy (or torch) is first imported: BLAS reads these at load time."""
    os.environ.update(ONE_THREAD)


def calibrate(fn: Callable[[], object], min_batch_seconds: float) -> int:
    """How many calls make one timed batch last at least ``min_batch_seconds``."""
    fn()  # warm-up: first-call caches, lazy imports
    number = 1
    while (elapsed := batch_seconds(fn, number)) < min_batch_seconds:
        number *= 2 if elapsed == 0 else max(2, int(min_batch_seconds / elapsed) + 1)
    return number


def interleaved_medians(
    fns: dict[str, Callable[[], object]], *, repeats: int, min_batch_seconds: float
) -> dict[str, float]:
    """Median seconds per call of each function. Batches of the functions alternate, so that
    a change in the machine's load (it is shared) hits every engine alike."""
    numbers = {name: calibrate(fn, min_batch_seconds) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(batch_seconds(fn, numbers[name]) / numbers[name])
    return {name: statistics.median(times) for name, times in samples.items()}


def batch_seconds(fn: Callable[[], object], number: int) -> float:
    """Seconds for ``number`` calls; the garbage collector is paused within, as in timeit."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return time.perf_counter() - start
    finally:
        gc.enable()
