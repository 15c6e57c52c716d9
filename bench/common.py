"""Shared helpers of the benchmarks: machine description, latency statistics, JSON results.

Latency figures are those of `rignet_keras.runtime.measure_latency` (median, p90, mean and min,
in milliseconds) wherever a benchmark times something: a single callable goes through
`measure_latency` itself; graphs timed against each other in interleaved rounds collect their
samples with `time_calls` or `interleaved_latency` and summarise them with `latency_statistics`.
"""

import json
import os
import platform
import random
import sys
import time

from rignet_keras.runtime import latency_statistics, measure_latency

# The repository root: `python -m bench.NAME` runs from here.
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where the benchmarks write their results.
RESULTS_DIR = os.path.join(REPOSITORY_ROOT, "bench", "results")

__all__ = [
    "INTERLEAVE_ORDERS",
    "REPOSITORY_ROOT",
    "RESULTS_DIR",
    "bench_command",
    "interleaved_latency",
    "latency_statistics",
    "machine",
    "measure_latency",
    "summary_ms",
    "time_calls",
    "write_json",
]


def machine():
    """What ran the benchmark: CPU model, cores, platform, load average, memory, library versions,
    date."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        cpu=cpu,
        cores=os.cpu_count(),
        platform=platform.platform(),
        load_average=[round(v, 2) for v in os.getloadavg()],
        python=platform.python_version(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    for name in ("tensorflow", "keras", "onnxruntime", "ai_edge_litert", "numpy"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    return info


def time_calls(fn, repeats=10, warmup=2):
    """Runs `fn()` `warmup` times untimed, then `repeats` times; returns the seconds of each."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary_ms(times):
    """`latency_statistics` of samples given in seconds (as `time_calls` returns them)."""
    return latency_statistics([1e3 * t for t in times])


INTERLEAVE_ORDERS = ("shuffle", "alternate")


def interleaved_latency(calls, rounds, per_round=1, warmup=2, round_warmup=0, order="shuffle"):
    """Times several callables against each other, so that a busy machine slows all alike.

    Args:
        calls: {key: a callable taking no arguments}.
        rounds: rounds; each times every callable `per_round` times.
        per_round: timed calls of each callable per round.
        warmup: untimed calls of each callable before the first round.
        round_warmup: untimed calls of each callable in each round, before its timed calls.
        order: the callables' order within a round: "shuffle" (a new random order each round,
            seeded), or "alternate" (as given in even rounds, reversed in odd ones).

    Returns:
        {key: `latency_statistics` of its rounds x per_round samples}.
    """
    if order not in INTERLEAVE_ORDERS:
        raise ValueError(f"order must be one of {INTERLEAVE_ORDERS}; received {order!r}")
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples = {key: [] for key in calls}
    keys = list(calls)
    rng = random.Random(0)
    for r in range(rounds):
        if order == "shuffle":
            rng.shuffle(keys)
        elif r > 0:
            keys.reverse()
        for key in keys:
            times = time_calls(calls[key], per_round, warmup=round_warmup)
            samples[key] += [1e3 * t for t in times]
    return {key: latency_statistics(v) for key, v in samples.items()}


def bench_command(name, *args):
    """The command line that runs benchmark `name` in a fresh process (with cwd=REPOSITORY_ROOT):
    `[python, "-m", "bench.NAME", *args]`."""
    return [sys.executable, "-m", f"bench.{name}", *map(str, args)]


def write_json(path, payload):
    """Writes `payload` as JSON atomically (temporary file, then rename)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(path + ".tmp", path)
