"""Shared helpers of the benchmarks: machine description, timing, atomic JSON results."""

import json
import os
import platform
import statistics
import time


def machine():
    """What ran the benchmark: CPU model, cores, memory, library versions, date."""
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
    """Median, 10th and 90th percentile of a list of seconds, in milliseconds."""
    ordered = sorted(times)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return dict(
        median_ms=1e3 * statistics.median(ordered),
        p10_ms=1e3 * pick(0.1),
        p90_ms=1e3 * pick(0.9),
        runs=len(ordered),
    )


def write_json(path, payload):
    """Writes `payload` as JSON atomically (temporary file, then rename)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(path + ".tmp", path)
