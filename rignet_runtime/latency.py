"""Latency statistics of a callable: the one timing helper of the exporter and the runtime."""

import time

import numpy as np


def _is_count(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def measure_latency(call, runs=10, warmup=1):
    """Times `call()` `runs` times after `warmup` untimed calls.

    Args:
        call: a callable taking no arguments.
        runs: timed calls, >= 1.
        warmup: untimed calls first (a cold start, allocation and weight packing), >= 0.

    Returns:
        {"median_ms", "p90_ms", "mean_ms", "min_ms", "runs"}: wall-clock milliseconds.
    """
    if not _is_count(runs) or runs < 1:
        raise ValueError(f"runs must be an integer >= 1; received {runs!r}")
    if not _is_count(warmup) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0; received {warmup!r}")
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return latency_statistics(times)


def latency_statistics(samples_ms):
    """Summarises latency samples: the figures every timing in the project reports.

    Args:
        samples_ms: a non-empty sequence of wall-clock milliseconds.

    Returns:
        {"median_ms", "p90_ms", "mean_ms", "min_ms", "runs"}: NumPy's median, the
        linearly interpolated 90th percentile, the mean and the minimum, rounded to microseconds,
        and the number of samples.
    """
    times = np.asarray(samples_ms, np.float64)
    if times.ndim != 1 or times.size == 0:
        raise ValueError(
            f"latency_statistics needs a non-empty list of samples; got {samples_ms!r}"
        )
    return {
        "median_ms": round(float(np.median(times)), 3),
        "p90_ms": round(float(np.percentile(times, 90)), 3),
        "mean_ms": round(float(times.mean()), 3),
        "min_ms": round(float(times.min()), 3),
        "runs": int(times.size),
    }
